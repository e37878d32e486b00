// resolveInArchive: where a symbolic link of the header archive leads, followed one name at a time
// through the archive's other links, as the kernel would follow it in an extracted tree.
import t from 'tap'
import { MAX_LINK_HOPS, resolveInArchive } from '../../src/image/links'

const resolve = (from: string, links: Record<string, string>) =>
  resolveInArchive(from, links[from], new Map(Object.entries(links)))

t.test('links that stay inside the archive resolve to the archive path they name', async (t) => {
  t.same(resolve('include/linux/link.h', { 'include/linux/link.h': 'kernel.h' }), {
    inside: true,
    path: 'include/linux/kernel.h',
  })
  t.same(
    resolve('include/dt-bindings/input/linux-event-codes.h', {
      'include/dt-bindings/input/linux-event-codes.h': '../../uapi/linux/input-event-codes.h',
    }),
    { inside: true, path: 'include/uapi/linux/input-event-codes.h' },
    'up and down again',
  )
  t.same(
    resolve('include/a.h', { 'include/a.h': './/sub/./b.h' }),
    { inside: true, path: 'include/sub/b.h' },
    'empty and "." components are skipped',
  )
  t.same(
    resolve('include/missing.h', { 'include/missing.h': '../nowhere/missing.h' }),
    { inside: true, path: 'nowhere/missing.h' },
    'dangling inside the archive: inside (it reads nothing from elsewhere)',
  )
  t.same(resolve('include/up', { 'include/up': '..' }), { inside: true, path: '' }, 'to the root itself')
  t.same(resolve('top', { top: 'include/../arch' }), { inside: true, path: 'arch' }, 'a link at the top')
  t.same(
    resolve('include/a.h', { 'include/a.h': 'd/x.h', 'include/d': '.' }),
    { inside: true, path: 'include/x.h' },
    'through a link to its own directory',
  )
})

t.test('links are followed through other links', async (t) => {
  t.same(
    resolve('include/x.h', { 'include/asm': '../arch/x86/include/asm', 'include/x.h': 'asm/page.h' }),
    { inside: true, path: 'arch/x86/include/asm/page.h' },
    'through a link to a directory',
  )
  t.same(
    resolve('include/x.h', { 'include/up': '..', 'include/x.h': 'up/arch/page.h' }),
    { inside: true, path: 'arch/page.h' },
    'through a link to a parent, staying inside',
  )
  t.same(
    resolve('a/l0', { 'a/l0': 'l1', 'a/l1': '../b/l2', 'b/l2': '../a/real.h' }),
    { inside: true, path: 'a/real.h' },
    'a chain of links',
  )
  // l0 -> l1 -> ... -> lN -> real.h: N links followed after l0's own target.
  const chain = (n: number): Record<string, string> => {
    const links: Record<string, string> = {}
    for (let i = 0; i < n; i++) links[`d/l${i}`] = `l${i + 1}`
    links[`d/l${n}`] = 'real.h'
    return links
  }
  t.same(
    resolve('d/l0', chain(MAX_LINK_HOPS)),
    { inside: true, path: 'd/real.h' },
    `${MAX_LINK_HOPS} links in a row are followed`,
  )
  t.same(
    resolve('d/l0', chain(MAX_LINK_HOPS + 1)),
    { inside: false, why: `it loops: more than ${MAX_LINK_HOPS} links in a row` },
    `${MAX_LINK_HOPS + 1} are not`,
  )
})

t.test('links that lead out of the archive or loop are not inside, and say why', async (t) => {
  t.same(resolve('include/x.h', { 'include/x.h': '/etc/passwd' }), {
    inside: false,
    why: 'an absolute path leads out of the archive',
  })
  t.same(resolve('include/x.h', { 'include/x.h': '//etc/passwd' }), {
    inside: false,
    why: 'an absolute path leads out of the archive',
  })
  t.same(
    resolve('include/linux/x.h', { 'include/linux/x.h': '../../../etc/passwd' }),
    { inside: false, why: "it climbs above the archive's root" },
    'climbing out at the top',
  )
  t.same(
    resolve('x', { x: '..' }),
    { inside: false, why: "it climbs above the archive's root" },
    '".." from a link at the top',
  )
  t.same(
    resolve('include/x.h', { 'include/x.h': 'linux/../../../tmp/evil.h' }),
    { inside: false, why: "it climbs above the archive's root" },
    'down and then out',
  )
  t.same(
    resolve('include/x.h', { 'include/up': '..', 'include/x.h': 'up/../../tmp/evil.h' }),
    { inside: false, why: "it climbs above the archive's root (through include/up)" },
    'through a link to a parent: inside as text, outside when followed',
  )
  t.same(
    resolve('include/x.h', {
      'include/x.h': 'a/b/../../../etc',
      'include/a': 'deep/deeper',
      'include/deep/deeper/b': '/',
    }),
    { inside: false, why: 'it goes through include/deep/deeper/b, a link to the absolute /' },
    'through a link (reached through another link) to an absolute path',
  )
  t.same(
    resolve('include/x.h', { 'include/etc': '/etc', 'include/x.h': 'etc/passwd' }),
    { inside: false, why: 'it goes through include/etc, a link to the absolute /etc' },
    'through a link to an absolute path',
  )
  t.same(
    resolve('include/a.h', { 'include/a.h': 'b.h', 'include/b.h': 'a.h' }),
    { inside: false, why: `it loops: more than ${MAX_LINK_HOPS} links in a row` },
    'a 2-link loop',
  )
  t.same(
    resolve('include/a.h', { 'include/a.h': 'a.h' }),
    { inside: false, why: `it loops: more than ${MAX_LINK_HOPS} links in a row` },
    'a link to itself',
  )
  t.same(
    resolve('include/a.h', { 'include/a.h': 'd/x.h', 'include/d': 'd/..' }),
    { inside: false, why: `it loops: more than ${MAX_LINK_HOPS} links in a row` },
    'a directory link through itself (ELOOP for the kernel too)',
  )
})
