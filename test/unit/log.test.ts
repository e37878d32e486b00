// The shipped logger (src/log.ts) against pino itself: for the same calls it must write the records
// pino writes (the format tools read), one JSON object per line, synchronously, at the levels asked;
// its terminal lines are short and plain. The other unit tests log through pino, so this is the one
// place the logger that ships is checked.
import { mkdtempSync, readFileSync, rmSync, closeSync, fstatSync, openSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import pino from 'pino'
import t from 'tap'
import { createLogger, errorsToJournal, isJournal, journalLine, type Level, type Logger } from '../../src/log'

type Record_ = Record<string, unknown>

const dir = mkdtempSync(path.join(os.tmpdir(), 'kheadersfs-log-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
let n = 0

function records(file: string): Record_[] {
  const text = readFileSync(file, 'utf8')
  t.ok(text === '' || text.endsWith('\n'), `${path.basename(file)}: every record ends its line`)
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record_)
}

/** The same calls through ours and through pino (each to its own file), as parsed records. */
function both(level: Level, calls: (log: Logger) => void): { ours: Record_[]; theirs: Record_[] } {
  const ours = path.join(dir, `ours-${++n}`, 'nested', 'log.json') // the directory is created
  calls(createLogger({ level, destination: ours }))
  const theirs = path.join(dir, `pino-${n}.json`)
  const dest = pino.destination({ dest: theirs, sync: true })
  calls(pino({ level, base: { pid: process.pid }, name: 'kheadersfs' }, dest))
  dest.flushSync()
  return { ours: records(ours), theirs: records(theirs) }
}

/** Records without the fields that differ between two writes of the same call (the clock). */
const timeless = (rs: Record_[]): Record_[] =>
  rs.map((r) => {
    const { time, ...rest } = r
    t.type(time, 'number', 'time is epoch milliseconds')
    return rest
  })

t.test('records are pino records: fields, levels, messages, children', async (t) => {
  const { ours, theirs } = both('info', (log) => {
    log.info('plain message')
    log.warn({ mountpoint: '/proc-ext', blocks: 3 }, 'with fields')
    log.error({ nested: { a: [1, 2] } }, 'nested fields')
    log.debug('below the level: not written')
    const child = log.child({ component: 'daemon' })
    child.info({ op: 'read' }, 'from a child')
    child.child({ mountpoint: '/x' }).fatal('grandchild')
    log.info({ only: 'fields' })
  })
  t.equal(ours.length, 6, 'debug is not written at info')
  t.same(timeless(ours), timeless(theirs), 'the same records as pino writes')
  t.same(
    ours.map((r) => r.level),
    [30, 40, 50, 30, 60, 30],
  )
  t.equal(ours[4].component, 'daemon', 'a child keeps its parent bindings')
})

t.test('errors serialize as pino serializes err (type, message, stack, own fields)', async (t) => {
  const e = Object.assign(new RangeError('too deep'), { code: 'E_DEEP' })
  const { ours, theirs } = both('info', (log) => log.error({ err: e }, 'failed'))
  const [o] = timeless(ours)
  const [p] = timeless(theirs)
  t.same(o, p, 'same record as pino')
  t.match(o.err, { type: 'RangeError', message: 'too deep', code: 'E_DEEP', stack: /RangeError: too deep/ })
})

t.test('a child may have its own level; silent writes nothing', async (t) => {
  const file = path.join(dir, 'levels.json')
  const log = createLogger({ level: 'warn', destination: file })
  log.info('not written')
  log.child({ c: 1 }, { level: 'debug' }).debug('written by the chattier child')
  createLogger({ level: 'silent', destination: file }).fatal('never')
  t.same(
    records(file).map((r) => [r.level, r.msg]),
    [[20, 'written by the chattier child']],
  )
})

t.test('what JSON cannot hold does not lose the line: BigInt, cycles', async (t) => {
  const file = path.join(dir, 'odd.json')
  const log = createLogger({ level: 'info', destination: file })
  const cyc: Record_ = { name: 'loop' }
  cyc.self = cyc
  log.info({ big: 2n ** 70n, cyc }, 'odd values')
  const [r] = records(file)
  t.equal(r.big, '1180591620717411303424', 'BigInt as its decimal string')
  t.same(r.cyc, { name: 'loop', self: '[Circular]' })
  t.equal(r.msg, 'odd values')
})

t.test('written at once, by descriptor too: the last line before a crash is in the file', async (t) => {
  const file = path.join(dir, 'fd.json')
  const fd = openSync(file, 'a')
  const log = createLogger({ level: 'info', destination: fd, name: 'other' })
  log.info({ k: 'v' }, 'first')
  t.equal(records(file).length, 1, 'on disk before anything else runs')
  log.info('second')
  closeSync(fd)
  t.same(
    records(file).map((r) => [r.name, r.msg, r.pid]),
    [
      ['other', 'first', process.pid],
      ['other', 'second', process.pid],
    ],
  )
})

t.test('pretty: one short line per record for a terminal', async (t) => {
  const file = path.join(dir, 'pretty.txt')
  const log = createLogger({ level: 'info', destination: file, pretty: true })
  log.info('packed')
  log.warn({ path: 'include/x.h', size: 3 }, 'skipped a file')
  log.error({ list: [1, 2] }, 'failed')
  t.equal(
    readFileSync(file, 'utf8'),
    'kheadersfs: packed\n' +
      'kheadersfs: warning: skipped a file (path=include/x.h, size=3)\n' +
      'kheadersfs: error: failed (list=[1,2])\n',
  )
})

t.test('the journal: detected by the stream itself, not the variable alone', async (t) => {
  const file = path.join(dir, 'journal.txt')
  const fd = openSync(file, 'a')
  t.teardown(() => closeSync(fd))
  const st = fstatSync(fd, { bigint: true })
  const stream = `${st.dev}:${st.ino}`
  t.ok(isJournal(fd, { JOURNAL_STREAM: stream }), 'the descriptor whose device:inode JOURNAL_STREAM names')
  t.notOk(isJournal(fd, {}), 'no JOURNAL_STREAM')
  t.notOk(isJournal(fd, { JOURNAL_STREAM: `${st.dev}:${st.ino + 1n}` }), 'another inode: stderr sent elsewhere')
  t.notOk(isJournal(fd, { JOURNAL_STREAM: 'garbage' }))
  t.notOk(isJournal(9999, { JOURNAL_STREAM: stream }), 'a closed descriptor')
})

t.test('journal lines: sd-daemon priority prefixes, one line per record, no JSON', async (t) => {
  const file = path.join(dir, 'journal-lines.txt')
  const fd = openSync(file, 'a')
  const st = fstatSync(fd, { bigint: true })
  const log = createLogger({ level: 'trace', destination: fd, env: { JOURNAL_STREAM: `${st.dev}:${st.ino}` } })
  log.fatal('fatal')
  log.error({ err: 'Cannot use image x: truncated' }, 'failed to start')
  log.warn({ path: 'a b', n: 3 }, 'warned')
  log.info('mounted')
  log.debug({ op: 'read' }, 'debug')
  log.trace('trace')
  log.error({ err: new Error('two\nlines') }, 'with a stack')
  log.info('a\nb')
  closeSync(fd)
  const lines = readFileSync(file, 'utf8').split('\n')
  t.equal(lines.pop(), '', 'every line ends')
  t.same(lines.slice(0, 6), [
    '<2>fatal',
    '<3>failed to start (err=Cannot use image x: truncated)',
    '<4>warned (path=a b, n=3)',
    '<6>mounted',
    '<7>debug (op=read)',
    '<7>trace',
  ])
  t.equal(lines.length, 8, 'newlines in values do not start lines of their own')
  t.match(lines[6], /^<3>with a stack \(err=\{"type":"Error","message":"two\\nlines","stack":"Error: two\\nlines\\n/)
  t.equal(lines[7], '<6>"a\\nb"')
  t.equal(journalLine('{"level":30,"msg":"x","pid":1,"time":2,"name":"kheadersfs"}'), '<6>x\n')

  const other = path.join(dir, 'not-journal.txt')
  const fd2 = openSync(other, 'a')
  createLogger({ level: 'info', destination: fd2, env: { JOURNAL_STREAM: `${st.dev}:${st.ino}` } }).warn('json')
  closeSync(fd2)
  t.match(records(other), [{ level: 40, msg: 'json' }], 'another file under the same variable: JSON records')
})

t.test("the CLI's error line: <3> before each line in the journal, untouched elsewhere", async (t) => {
  const file = path.join(dir, 'errors.txt')
  const fd = openSync(file, 'a')
  t.teardown(() => closeSync(fd))
  const st = fstatSync(fd, { bigint: true })
  const out: string[] = []
  const sink = { write: (s: string) => out.push(s) }
  errorsToJournal(sink, fd, { JOURNAL_STREAM: `${st.dev}:${st.ino}` }).write('kheadersfs: a\nsecond line\n')
  errorsToJournal(sink, fd, {}).write('kheadersfs: b\n')
  t.same(out, ['<3>kheadersfs: a\n<3>second line\n', 'kheadersfs: b\n'])
})
