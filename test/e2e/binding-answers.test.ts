// What the FUSE binding answers on its own thread (src/native/answers.c, channel.c), through a real
// mount of a hand-made table with a dispatcher that records what reaches JavaScript: listings before
// the table is handed over wait for it, lookups and listings come from the table, reads of files whose
// blocks are published come from those blocks (a read across two of them too), and only misses, links
// and retracted blocks reach the dispatcher. Everything here is read asynchronously: this process's
// main thread is the one answering what the dispatcher gets.
import { constants } from 'node:fs'
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import t from 'tap'
import type { Dispatch } from '../../src/native/binding'
import { encodeDirents } from '../../src/serve/dirents'
import { mountFuse, OP, type Mounted } from '../../src/serve/fuse'
import { child, NONE, TableBuilder, type Table } from '../../src/serve/table'
import { tmpDir } from '../helpers/tmp'

const { S_IFDIR, S_IFREG, S_IFLNK } = constants
const NAMES: Record<number, string> = Object.fromEntries(Object.entries(OP).map(([k, v]) => [v, k]))

/** root: a.h (bytes 0-10 of the "tar"), sub/ (b.h: bytes 10-15), l -> a.h; the view starts at a.h. */
function table(): { table: Table; viewFrom: number } {
  const b = new TableBuilder()
  const root = b.add(NONE, '', S_IFDIR | 0o555)
  const viewFrom = b.count
  b.add(root, 'a.h', S_IFREG | 0o644, 10, 0)
  const sub = b.add(root, 'sub', S_IFDIR | 0o755)
  b.add(sub, 'b.h', S_IFREG | 0o644, 5, 10)
  b.targets.set(b.add(root, 'l', S_IFLNK | 0o777), 'a.h')
  return { table: b.table(), viewFrom }
}

/** The tar's bytes as two blocks, [0, 8) and [8, 20): a.h spans both. */
const STARTS = new Float64Array([0, 8, 20])
const TAR = Buffer.from('ABCDEFGHIJKLMNOPQRST')

t.test('the binding answers from the table and published blocks; JavaScript gets the rest', async (t) => {
  const mnt = tmpDir(t)
  const { table: tab, viewFrom } = table()
  const seen: string[] = []
  const create = (reply: Parameters<Parameters<typeof mountFuse>[1]>[0], name: Buffer): Dispatch => {
    const listing = Buffer.alloc(64 * 1024)
    return (op, id, ino, off, size, nameLength) => {
      seen.push(NAMES[op] ?? String(op))
      const node = ino - 1
      switch (op) {
        case OP.table:
          return m.answerFrom(tab)
        case OP.lookup: {
          const c = child(tab, node, name, 0, nameLength)
          return c === NONE ? reply.entry(id, 0, 0, 0) : reply.entry(id, c + 1, tab.mode[c], 3)
        }
        case OP.getattr:
          return reply.attr(id, ino, tab.mode[node], 0)
        case OP.readlink:
          return reply.readlink(id, Buffer.from(tab.targets.get(node)!))
        case OP.readdir:
          return reply.buf(id, encodeDirents(tab, node, off, size, listing))
        case OP.read: {
          // JavaScript's answer is lower case, so a test can tell who answered.
          const start = tab.offset[node] + off
          const end = Math.min(start + size, tab.offset[node] + tab.size[node])
          return reply.buf(id, Buffer.from(TAR.toString('latin1', start, end).toLowerCase(), 'latin1'))
        }
        default:
          return reply.err(id, 38)
      }
    }
  }
  // Requests reach the dispatcher only once this has returned, so `m` is set by then.
  const m: Mounted = mountFuse(mnt, create, { allowOther: false, nonempty: false, mtime: 1_700_000_000 })
  t.teardown(async () => {
    m.detach()
    await m.ended
  })

  const names = await fs.readdir(mnt)
  t.same(names.sort(), ['a.h', 'l', 'sub'], 'a listing before the table was handed over waits for it')
  t.equal(seen.filter((s) => s === 'table').length, 1, 'the binding asked JavaScript for the table once')
  t.throws(() => m.answerFrom(tab), /table already/, 'a second table is refused')

  seen.length = 0
  t.equal((await fs.stat(path.join(mnt, 'sub', 'b.h'))).size, 5, 'stat of a file below: from the table')
  await t.rejects(fs.stat(path.join(mnt, 'sub', 'none.h')), { code: 'ENOENT' }, 'a missing name')
  t.same(await fs.readdir(path.join(mnt, 'sub')), ['b.h'], 'a listing: from the table')
  t.equal(await fs.readlink(path.join(mnt, 'l')), 'a.h', 'a link')
  // A link's size is its target's length, which JavaScript keeps: it answers its lookup too.
  t.same(seen, ['lookup', 'readlink'], 'of these only the link reached JavaScript')

  seen.length = 0
  t.equal(await fs.readFile(path.join(mnt, 'a.h'), 'latin1'), 'abcdefghij', 'no block shared yet: JavaScript reads')
  t.same(seen, ['read'])

  // Blocks shared: reads whose bytes are all published are answered from them.
  const sharer = m.shareBlocks(tab.offset, viewFrom, STARTS)
  t.throws(() => sharer.publish(0, Buffer.alloc(7)), /not the block's bytes/, 'a Buffer of the wrong size is refused')
  t.throws(() => sharer.retract(2), /no such block/, 'so is a block that does not exist')
  t.throws(() => m.shareBlocks(tab.offset, viewFrom, STARTS), /only once/, 'blocks are shared once')
  sharer.publish(1, TAR.subarray(8, 20))
  seen.length = 0
  const readFresh = async (rel: string): Promise<string> => {
    // O_DIRECT: past the kernel's page cache, so every read reaches the filesystem.
    const h = await fs.open(path.join(mnt, rel), constants.O_RDONLY | constants.O_DIRECT)
    try {
      const buf = Buffer.alloc(4096)
      const { bytesRead } = await h.read(buf, 0, 4096, 0)
      return buf.toString('latin1', 0, bytesRead)
    } finally {
      await h.close()
    }
  }
  t.equal(await readFresh('sub/b.h'), 'KLMNO', 'a file within a published block: the block bytes')
  t.same(seen, [], 'without JavaScript')
  t.equal(await readFresh('a.h'), 'abcdefghij', 'a file whose first block is not published: JavaScript')
  sharer.publish(0, TAR.subarray(0, 8))
  seen.length = 0
  t.equal(await readFresh('a.h'), 'ABCDEFGHIJ', 'across two published blocks: both')
  t.same(seen, [])
  t.equal(sharer.touched[0] + sharer.touched[1], 2, 'both blocks are marked read for the cache')
  sharer.retract(1)
  t.equal(await readFresh('sub/b.h'), 'klmno', 'after a retract: JavaScript again')
  t.same(seen, ['read'])
  const answered = m.stats().answered
  t.ok(answered.read >= 2 && answered.lookup >= 1 && answered.readdir >= 1, JSON.stringify(answered))
  // 2 listings and 5 opens of files above. Kernels from 5.1 take the binding's ENOSYS to the first
  // OPEN and OPENDIR as "no handles here" and send no more of either.
  const [major, minor] = os.release().split('.').map(Number)
  if (major > 5 || (major === 5 && minor >= 1))
    t.equal(m.stats().opens, 2, 'one OPENDIR and one OPEN reached the binding')
  else t.ok(m.stats().opens >= 7, 'every open reached the binding (a kernel before 5.1)')
})
