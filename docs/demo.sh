#!/usr/bin/env bash
# The whole story on one machine, as root (README quick start, `npm run demo`):
# pack Debian's linux-headers into an image, load it at /proc-ext like `modprobe kheaders`, extract
# the headers with tar, build a module against them, read the config, unload like `rmmod`.
# Idempotent: the image is cached under /var/cache/kheadersfs and reused; everything else it creates
# (mountpoint, build directories) is removed again.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kheadersfs() { node "$root/dist/src/cli.js" "$@"; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

mnt=/proc-ext
cache=/var/cache/kheadersfs
work=$(mktemp -d /tmp/kheadersfs-demo.XXXXXX)
created_mnt=0
cleanup() {
  if findmnt -n "$mnt" >/dev/null 2>&1; then kheadersfs umount --lazy "$mnt" >/dev/null 2>&1 || true; fi
  if [ "$created_mnt" = 1 ]; then rmdir "$mnt" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# The sample kernel tree: Debian's linux-headers-amd64 (installed by .ci/setup).
tree=$(ls -d /usr/src/linux-headers-*-amd64 2>/dev/null | sort -V | tail -n 1)
[ -n "$tree" ] || { echo "demo: no /usr/src/linux-headers-*-amd64; run .ci/setup as root" >&2; exit 1; }
release=$(sed -n 's/.*UTS_RELEASE "\(.*\)"/\1/p' "$tree/include/generated/utsrelease.h")
image=$cache/kheaders-$release.img

say "1. pack (build host): $tree -> $image"
mkdir -p "$cache"
if [ -f "$image" ] && kheadersfs verify "$image" >/dev/null 2>&1; then
  echo "reusing the cached image $image"
else
  kheadersfs pack --kernel "$tree" -o "$image"
fi
kheadersfs info "$image"

say "2. mount (board): like modprobe kheaders"
force=()
if [ "$(uname -r)" != "$release" ]; then
  echo "the running kernel is $(uname -r), the sample tree is $release: loading with --force (as modprobe -f would)"
  force=(--force)
fi
if [ ! -d "$mnt" ]; then mkdir "$mnt"; created_mnt=1; fi
t0=$(date +%s%N)
kheadersfs mount --image "$image" "${force[@]}" "$mnt"
echo "mounted in $(( ($(date +%s%N) - t0) / 1000000 )) ms (the command returns once the files are readable)"
ls -l "$mnt"
kheadersfs status

say "3. the seed's flow: tar -xf $mnt/kheaders.txz -C ~/headers && make -C ~/headers M=\$PWD modules"
mkdir -p "$work/headers" "$work/hello"
tar -xf "$mnt/kheaders.txz" -C "$work/headers"
cp "$root/test/fixtures/hello/hello.c" "$root/test/fixtures/hello/Makefile" "$work/hello/"
make -s -C "$work/headers" M="$work/hello" modules
echo "built $(ls "$work/hello/hello.ko")"
echo "vermagic: $(modinfo -F vermagic "$work/hello/hello.ko")"

say "4. beyond the kernel: build straight from $mnt/kheaders, nothing extracted"
ls "$mnt/kheaders"
rm -rf "$work/hello2" && mkdir -p "$work/hello2"
cp "$root/test/fixtures/hello/hello.c" "$root/test/fixtures/hello/Makefile" "$work/hello2/"
t0=$(date +%s%N)
make -s -C "$mnt/kheaders" M="$work/hello2" modules
echo "built $(ls "$work/hello2/hello.ko") from the mount in $(( ($(date +%s%N) - t0) / 1000000 )) ms; vermagic: $(modinfo -F vermagic "$work/hello2/hello.ko")"

say "5. the config, like /proc/config.gz"
zcat "$mnt/config.gz" | head -n 8 || true # head closes the pipe early

say "6. umount: like rmmod kheaders"
pid=$(kheadersfs status --json | node -e 'const r=JSON.parse(require("fs").readFileSync(0,"utf8")).find(m=>m.mountpoint==="'"$mnt"'"); console.log(r ? r.pid : "")')
umount "$mnt"
for _ in $(seq 100); do grep -qs '^State:.*[RSD]' "/proc/$pid/status" || break; sleep 0.01; done
if grep -qs '^State:.*[RSD]' "/proc/$pid/status"; then echo "daemon $pid still running" >&2; exit 1; fi
echo "daemon $pid has exited; kheadersfs mounts left:"
kheadersfs status
echo
echo "demo finished: image cached at $image"
