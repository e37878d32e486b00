#!/usr/bin/env bash
# packaging/tarball.sh STAGE OUT.tar.gz — the root file system tarball for systems without dpkg (Yocto,
# Buildroot): the installed tree of a .deb's staging directory STAGE (from build.sh) without DEBIAN/ and
# the Debian changelog and kernel hooks, installed with `tar -xzf OUT.tar.gz -C /`. Layout and removal: docs/packaging.md.
#
# Safe by construction: every entry is under usr/ (the .deb's /sbin/mount.kheadersfs goes to
# usr/sbin). A top-level directory entry such as sbin/ would make GNU tar replace a merged-/usr system's
# /sbin -> usr/sbin link by a directory (unless --keep-directory-symlink), hiding /sbin's contents.
# usr/lib/kheadersfs/FILES lists what the tarball installs (files and links, then its directories below
# usr/bin, usr/lib, usr/sbin, usr/share, deepest first), for removal. Reproducible: needs SOURCE_DATE_EPOCH (every mtime), sorted names, owner
# root:root by number, pax headers without atime/ctime or a process id, gzip -n.
set -euo pipefail
export LC_ALL=C TZ=UTC
umask 022
die() { echo "tarball.sh: $*" >&2; exit 1; }
[ $# -eq 2 ] || die "usage: tarball.sh STAGE OUT.tar.gz"
STAGE=$1
OUT=$2
: "${SOURCE_DATE_EPOCH:?tarball.sh: SOURCE_DATE_EPOCH is not set}"
[ -d "$STAGE/usr" ] || die "$STAGE is not a staged package tree (no usr/)"

W=$STAGE.rootfs
rm -rf "$W"
cp -a "$STAGE" "$W"
rm -rf "$W/DEBIAN" "$W/usr/share/doc/kheadersfs/changelog"*
# etc/ holds the kernel hooks and their settings: Debian's kernel packages run /etc/kernel/*.d, which
# Yocto's and Buildroot's kernels never do (their recipes pack the image at build time instead).
rm -rf "$W/etc"
if [ -d "$W/sbin" ]; then
  mkdir -p "$W/usr/sbin"
  mv "$W/sbin/"* "$W/usr/sbin/"
  rmdir "$W/sbin"
fi
top=$(ls -A "$W")
[ "$top" = usr ] || die "entries outside usr/ in the tarball tree: $(echo "$top" | tr '\n' ' ')"

LIST=usr/lib/kheadersfs/FILES
{
  (cd "$W" && find usr ! -type d && echo "$LIST") | sort -u
  # Then the directories, children before parents, for `rmdir` when empty (as dpkg does): shared ones
  # such as usr/share/man/man8 go only if nothing else is in them; the FHS ones never.
  (cd "$W" && find usr -mindepth 2 -type d | grep -vxE 'usr/(bin|sbin|lib|share)' | sed 's|$|/|') | sort -r
} | sed 's|^|/|' >"$W/$LIST"
chmod 644 "$W/$LIST"

tar --sort=name --format=pax --pax-option='exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime' \
  --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner -C "$W" -cf - usr | gzip -9n >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
rm -rf "$W"
echo "tarball.sh: $OUT: $(stat -c %s "$OUT") bytes, $(tar -tzf "$OUT" | grep -vc '/$') files and links" >&2
