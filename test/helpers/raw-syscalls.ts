// Syscalls Node's fs cannot make, for the reliability suite: xattr calls and positioned reads at a
// negative offset. One perl process per batch (perl is installed by .ci/setup; its syscall() reaches
// the kernel directly).
import { spawnSync } from 'node:child_process'
import os from 'node:os'

const SYSCALLS: Record<string, Record<string, number>> = {
  x64: { setxattr: 188, lsetxattr: 189, getxattr: 191, listxattr: 194, removexattr: 197, pread64: 17 },
  arm64: { setxattr: 5, lsetxattr: 6, getxattr: 8, listxattr: 11, removexattr: 14, pread64: 67 },
}

export const HAVE_RAW_SYSCALLS = SYSCALLS[os.arch()] !== undefined

export interface RawOp {
  op: 'setxattr' | 'lsetxattr' | 'getxattr' | 'listxattr' | 'removexattr' | 'pread'
  path: Buffer
  name?: string
  value?: string
  /** pread only: offset (may be negative) and length. */
  offset?: number
  length?: number
}

const PERL = String.raw`
use strict; use Errno;
my %nr = map { split /=/ } split /,/, $ARGV[0];
sub en { my $r = shift; return "ok $r" if $r >= 0; for my $k (sort keys %!) { next if $k eq 'ENOTSUP' || $k eq 'EWOULDBLOCK' || $k eq 'EDEADLOCK'; return "err $k" if $!{$k} } return "err ?" }
while (my $line = <STDIN>) {
  chomp $line; my ($op, $p, $n, $v, $off, $len) = split /\t/, $line, -1;
  $p = pack("H*", $p); $n = pack("H*", $n); $v = pack("H*", $v);
  my $r;
  if ($op eq 'pread') {
    if (!open(my $f, '<', $p)) { print en(-1), "\n"; next } else {
      my $buf = "\0" x $len; $r = syscall($nr{pread64}, fileno($f), $buf, $len + 0, $off + 0);
      print en($r), ($r > 0 ? " " . unpack("H*", substr($buf, 0, $r)) : ""), "\n"; close $f; next }
  } elsif ($op eq 'setxattr' || $op eq 'lsetxattr') { $r = syscall($nr{$op}, $p, $n, $v, length($v), 0) }
  elsif ($op eq 'getxattr') { my $buf = "\0" x 256; $r = syscall($nr{getxattr}, $p, $n, $buf, 256) }
  elsif ($op eq 'listxattr') { my $buf = "\0" x 4096; $r = syscall($nr{listxattr}, $p, $buf, 4096) }
  elsif ($op eq 'removexattr') { $r = syscall($nr{removexattr}, $p, $n) }
  print en($r), "\n";
}`

/** Run raw syscalls in one perl process (as `user` if given); each answer is "ok N [hex bytes]" or "err ECODE". */
export function rawSyscalls(ops: RawOp[], user?: string): string[] {
  const nr = SYSCALLS[os.arch()]
  if (nr === undefined || ops.length === 0) return ops.map(() => 'skipped')
  const hex = (s: string | Buffer | undefined): string => Buffer.from(s ?? '').toString('hex')
  const input =
    ops
      .map((o) =>
        [o.op, hex(o.path), hex(o.name), hex(o.value), String(o.offset ?? 0), String(o.length ?? 0)].join('\t'),
      )
      .join('\n') + '\n'
  const perl = [
    'perl',
    '-e',
    PERL,
    Object.entries(nr)
      .map(([k, v]) => `${k}=${v}`)
      .join(','),
  ]
  const argv = user === undefined ? perl : ['runuser', '-u', user, '--', ...perl]
  const r = spawnSync(argv[0], argv.slice(1), { input, encoding: 'utf8', maxBuffer: 256 * 2 ** 20 })
  if (r.status !== 0) throw new Error(`perl syscalls failed: ${r.stderr}`)
  const lines = r.stdout.split('\n').filter((l) => l !== '')
  if (lines.length !== ops.length)
    throw new Error(`perl answered ${lines.length} of ${ops.length} syscalls: ${r.stderr}`)
  return lines
}
