#!/usr/bin/env bash
# Baseline for the pack benchmark: the kernel's own CONFIG_IKHEADERS pipeline (kernel/gen_kheaders.sh,
# as described in ../shared/ARCHITECTURE.md §4), reproduced for a split or O= tree:
#   copy every *.h under include/ and arch/$SRCARCH/include/ from srctree, then objtree (cpio -pd),
#   strip /* */ comments without "SPDX" with perl's regex, then
#   tar --sort=name --owner=0 --group=0 --numeric-owner --mode=u=rw,go=r,a+X | xz (-6, one block).
# Usage: kernel-pipeline.sh SRCTREE OBJTREE SRCARCH OUT.tar.xz
set -euo pipefail
srctree=$1 objtree=$2 arch=$3 out=$4
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for tree in "$srctree" "$objtree"; do
  (cd "$tree" && for d in include/ "arch/$arch/include/"; do [ -d "$d" ] && find "$d" -name '*.h'; done) |
    (cd "$tree" && cpio --quiet -pdu "$work/cpio" 2>/dev/null)
done
find "$work/cpio" -type f -print0 | xargs -0 -P8 -n1 perl -pi -e 'BEGIN {undef $/;}; s/\/\*((?!SPDX).)*?\*\///smg;'
tar --owner=0 --group=0 --sort=name --numeric-owner --mode=u=rw,go=r,a+X -I xz -cf "$out" -C "$work/cpio" .
