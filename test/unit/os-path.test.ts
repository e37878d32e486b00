// Paths as bytes (src/os-path.ts): every byte string survives decode → encode, including the bytes
// that are not UTF-8; valid UTF-8 decodes as UTF-8; argv carries the raw bytes to a child process
// through hex, and rawArgv reads the exact bytes the kernel was given, where process.argv has U+FFFD.
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import t from 'tap'
import { argvForChild, decodeOsPath, encodeOsPath, fsPath, HEX_ARGS_ENV } from '../../src/os-path'
import { prng } from '../helpers/prng'
import { tmpDir } from '../helpers/tmp'

t.test('decode → encode gives back the bytes, for any bytes', async (t) => {
  const rand = prng(20261202)
  for (let i = 0; i < 2000; i++) {
    const bytes = Buffer.from(Array.from({ length: Math.floor(rand() * 40) }, () => Math.floor(rand() * 256)))
    const s = decodeOsPath(bytes)
    if (!encodeOsPath(s).equals(bytes)) {
      t.fail(`round trip of ${bytes.toString('hex')}`)
      return
    }
  }
  t.pass('2000 random byte strings')
  for (const hex of ['ff', 'c3', 'c328', 'e28228', 'f09f98', 'eda080', 'c0af', 'f4908080', '2fff2f']) {
    const b = Buffer.from(hex, 'hex')
    t.ok(encodeOsPath(decodeOsPath(b)).equals(b), `invalid UTF-8 ${hex} round-trips`)
    t.notOk(decodeOsPath(b).includes('\ufffd'), `${hex}: no replacement character`)
  }
})

t.test('valid UTF-8 decodes as UTF-8; invalid bytes as U+DC80..U+DCFF', async (t) => {
  t.equal(decodeOsPath(Buffer.from('/proc-ext/ü €/😀')), '/proc-ext/ü €/😀')
  t.equal(decodeOsPath(Buffer.from([0x2f, 0x61, 0xff, 0xfe])), '/a\udcff\udcfe')
  t.equal(decodeOsPath(Buffer.from([0xc3, 0xbc, 0xc3])), 'ü\udcc3', 'a truncated sequence at the end')
  t.ok(encodeOsPath('/a\udcff').equals(Buffer.from([0x2f, 0x61, 0xff])))
  t.equal(fsPath('/proc-ext'), '/proc-ext', 'plain UTF-8 stays a string for fs calls')
  t.same(fsPath('/a\udcff'), Buffer.from([0x2f, 0x61, 0xff]), 'raw bytes go to fs calls as a Buffer')
  t.equal(JSON.parse(JSON.stringify('/a\udcff')), '/a\udcff', 'JSON keeps the raw byte (state files)')
})

t.test('argvForChild hex-encodes exactly the arguments with raw bytes, and says where', async (t) => {
  t.same(argvForChild(['mount', '/a b', '--x']), { args: ['mount', '/a b', '--x'], env: {} })
  t.same(argvForChild(['mount', '/m\udcff', '-o', 'x']), {
    args: ['mount', Buffer.from('/m\xff', 'latin1').toString('hex'), '-o', 'x'],
    env: { [HEX_ARGS_ENV]: '1' },
  })
})

t.test('rawArgv: the exact bytes of the arguments, also through a child with hex arguments', async (t) => {
  // A script, as the CLI is (with -e, process.argv has no script entry).
  const probe = path.join(tmpDir(t), 'probe.js')
  const lib = JSON.stringify(require.resolve('../../src/os-path'))
  writeFileSync(
    probe,
    `const p = require(${lib})
    process.stdout.write(JSON.stringify({ raw: p.rawArgv().map((a) => p.encodeOsPath(a).toString('hex')), node: process.argv.slice(2) }))`,
  )
  // A shell passes bytes as they are: printf makes /m<ff><fe> and a tab.
  const r = spawnSync('sh', ['-c', `exec "$0" "$1" one "$(printf '/m\\377\\376\\tx')" ''`, process.execPath, probe], {
    encoding: 'utf8',
  })
  t.equal(r.status, 0, r.stderr)
  const out = JSON.parse(r.stdout) as { raw: string[]; node: string[] }
  t.same(out.raw, ['6f6e65', '2f6dfffe0978', ''], 'the bytes the kernel got, the empty argument too')
  t.ok(out.node[1].includes('\ufffd'), 'process.argv alone has lost them (the reason for rawArgv)')
  const { args, env } = argvForChild(['one', decodeOsPath(Buffer.from('2f6dfffe0978', 'hex'))])
  const c = spawnSync(process.execPath, [probe, ...args], { encoding: 'utf8', env: { ...process.env, ...env } })
  t.same((JSON.parse(c.stdout) as { raw: string[] }).raw, ['6f6e65', '2f6dfffe0978'], 'through hex to a child')
})
