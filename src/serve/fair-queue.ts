// The order in which block decodes run. A decode takes tens of milliseconds and only a few run at once,
// so whoever queues the most would otherwise make everyone wait: root's decodes go first (its module
// builds are what the daemon is for), then the other users' in turn, one decode each, so that a flood
// of reads by one user delays another user's read by at most one decode per user waiting.

export interface Ticket {
  /** A reader `uid` waits for this job too: move it to root's turn if `uid` is root and it has not started. */
  promote(uid: number): void
}

export interface QueueStats {
  /** Jobs waiting now, and at most so far. */
  queued: number
  peakQueued: number
  /** Jobs started, and of those, root's. */
  started: number
  startedForRoot: number
  /** Non-root jobs started while a root job waited (0 by construction: the property tests check). */
  rootOvertaken: number
  /**
   * Per user (uid → n): the most jobs of *other* users that started while one job of this user
   * waited. Root: 0. Another user: at most one per user ahead of it in turn, whatever the flood.
   */
  waitedBehind: Record<number, number>
}

interface Job {
  uid: number
  /** Jobs of other users started while this one waited. */
  behind: number
  start(): void
}

export class FairQueue {
  private running = 0
  /** uid → its waiting jobs, oldest first. */
  private readonly queues = new Map<number, Job[]>()
  /** Non-root users with waiting jobs, whose turn comes first at the front. */
  private readonly turns: number[] = []
  private queued = 0
  private readonly counts = { peakQueued: 0, started: 0, startedForRoot: 0, rootOvertaken: 0 }
  private readonly behind = new Map<number, number>()

  constructor(private readonly concurrency: number) {}

  run<T>(uid: number, fn: () => Promise<T>): { promise: Promise<T>; ticket: Ticket } {
    let job!: Job
    let started = false
    const promise = new Promise<T>((resolve, reject) => {
      job = {
        uid,
        behind: 0,
        start: () => {
          started = true
          this.running++
          fn()
            .then(resolve, reject)
            .finally(() => {
              this.running--
              this.pump()
            })
        },
      }
    })
    this.enqueue(job)
    this.pump()
    return {
      promise,
      ticket: {
        promote: (who) => {
          if (started || who !== 0 || job.uid === 0) return
          this.remove(job)
          job.uid = 0
          this.enqueue(job)
        },
      },
    }
  }

  stats(): QueueStats {
    return { queued: this.queued, ...this.counts, waitedBehind: Object.fromEntries(this.behind) }
  }

  private enqueue(job: Job): void {
    let q = this.queues.get(job.uid)
    if (q === undefined) {
      q = []
      this.queues.set(job.uid, q)
      if (job.uid !== 0) this.turns.push(job.uid)
    }
    q.push(job)
    this.queued++
    if (this.queued > this.counts.peakQueued) this.counts.peakQueued = this.queued
  }

  private remove(job: Job): void {
    const q = this.queues.get(job.uid)!
    q.splice(q.indexOf(job), 1)
    this.queued--
    if (q.length === 0) this.drop(job.uid)
  }

  private drop(uid: number): void {
    this.queues.delete(uid)
    const i = this.turns.indexOf(uid)
    if (i >= 0) this.turns.splice(i, 1)
  }

  private pump(): void {
    while (this.running < this.concurrency) {
      const job = this.next()
      if (job === undefined) return
      this.counts.started++
      if (job.uid === 0) this.counts.startedForRoot++
      else if ((this.queues.get(0)?.length ?? 0) > 0) this.counts.rootOvertaken++
      // Every job of another user still waiting is now behind one more; kept per user (a few dozen).
      for (const [uid, q] of this.queues) {
        if (uid === job.uid) continue
        for (const waiting of q) waiting.behind++
        const most = q.reduce((m, w) => Math.max(m, w.behind), 0)
        const known = this.behind.has(uid) || this.behind.size < 64
        if (known && most > (this.behind.get(uid) ?? 0)) this.behind.set(uid, most)
      }
      job.start()
    }
  }

  private next(): Job | undefined {
    const root = this.queues.get(0)
    const uid = root !== undefined ? 0 : this.turns.shift()
    if (uid === undefined) return undefined
    const q = this.queues.get(uid)!
    const job = q.shift()!
    this.queued--
    if (q.length === 0) this.queues.delete(uid)
    else if (uid !== 0) this.turns.push(uid)
    return job
  }
}
