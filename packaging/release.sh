#!/usr/bin/env bash
# packaging/release.sh — `npm run release`: the set of files a release of the last commit publishes
#   -> build/release/ (KHEADERSFS_RELEASE_DIR moves it):
#      kheadersfs_<ver>_{amd64,arm64,armhf}.deb, kheadersfs_<ver>~deb12_armhf.deb   (packaging/build.sh)
#      kheadersfs-<ver>-<arch>.tar.gz                   root file system tarballs (Yocto, Buildroot)
#      kheadersfs-<ver>.tgz                             the npm tarball (compiles the FUSE addon on install)
#      RELEASE-NOTES.md                                 CHANGELOG.md's section + what each file is for
#      SHA256SUMS                                       of all of the above (sha256sum -c SHA256SUMS)
# Everything is made from the commit (git archive), never from the checkout's files, so two checkouts of
# one commit give the same bytes; SOURCE_DATE_EPOCH is the commit's time. Metadata: package.json, or the
# distributor's KHEADERSFS_MAINTAINER / KHEADERSFS_HOMEPAGE / KHEADERSFS_BUGS (packaging/metadata.js).
set -euo pipefail
export LC_ALL=C TZ=UTC
umask 022
log() { echo "release.sh: $*" >&2; }
die() { log "$*"; exit 1; }

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
REV=$(git rev-parse --verify HEAD^{commit}) || die "not a git checkout: a release is made from a commit"
export KHEADERSFS_PACKAGE_SOURCE=$REV
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct "$REV")}
VERSION=$(git show "$REV:package.json" | node -p 'JSON.parse(require("fs").readFileSync(0, "utf8")).version')
OUT=${KHEADERSFS_RELEASE_DIR:-$ROOT/build/release}
[ -z "$(git status --porcelain --untracked-files=no)" ] ||
  log "the checkout has uncommitted changes: they are not in the release (commit $(git rev-parse --short "$REV"))"
mkdir -p "$ROOT/build"
# The notes come first: a version with no CHANGELOG.md section is not released.
NOTES=$(git show "$REV:CHANGELOG.md" >"$ROOT/build/CHANGELOG.release.md" 2>/dev/null &&
  node packaging/changelog.js notes "$ROOT/build/CHANGELOG.release.md" "$VERSION" 2>/dev/null) ||
  die "CHANGELOG.md of $(git rev-parse --short "$REV") has no \"## [$VERSION] - YYYY-MM-DD\" section: add one"

rm -rf "$OUT"
mkdir -p "$OUT"
done=0
trap '[ "$done" = 1 ] || { rm -rf "$OUT"; log "failed: nothing left in $OUT"; }' EXIT

# --- the Debian packages and the root file system tarballs ------------------------------------
log "packages (packaging/build.sh)"
bash packaging/build.sh | while read -r f; do cp "$f" "$OUT/"; done
[ -n "$(ls "$OUT")" ] || die "packaging/build.sh made nothing"

# --- the npm tarball: the commit's files, the JavaScript build.sh compiled from them -------------
log "npm tarball"
NPM=$ROOT/build/npm
rm -rf "$NPM"
mkdir -p "$NPM"
git archive --format=tar "$REV" README.md LICENSE CHANGELOG.md mount systemd docs/kheadersfs.1.md docs/image-format.md docs/design.md \
  src/native/kheadersfs_fuse.c src/native/answers.c src/native/channel.c src/native/session.h \
  src/native/xz_decode.c src/native/xz_decode.h src/native/binding.gyp | tar -x -C "$NPM"
git show "$REV:package.json" >"$ROOT/build/package.release.json"
node packaging/metadata.js "$ROOT/build/package.release.json" --json >"$NPM/package.json"
cp -r build/tsc/dist "$NPM/dist"
find "$NPM" -newermt "@$SOURCE_DATE_EPOCH" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
(cd "$NPM" && npm pack --ignore-scripts --pack-destination "$OUT" --loglevel=error >/dev/null)
[ -f "$OUT/kheadersfs-$VERSION.tgz" ] || die "npm pack wrote no kheadersfs-$VERSION.tgz"

# --- release notes and checksums ---------------------------------------------------------------
log "RELEASE-NOTES.md, SHA256SUMS"
for_what() {
  case $1 in
    *~deb12_armhf.deb) echo 'Debian 12, Raspberry Pi OS (bookworm, 32-bit), Ubuntu 22.04 on armhf: 32-bit `time_t`, libfuse2' ;;
    *_armhf.deb) echo 'Debian 13, Ubuntu 24.04 and newer on armhf (armv7): 64-bit `time_t`, libfuse2t64' ;;
    *_arm64.deb) echo 'Debian 12 and 13, Ubuntu, Raspberry Pi OS 64-bit on arm64' ;;
    *_amd64.deb) echo 'Debian 12 and 13, Ubuntu on amd64' ;;
    *-armhf-time32.tar.gz) echo 'root file system without dpkg (Yocto, Buildroot), armhf, glibc with 32-bit `time_t`' ;;
    *-armhf.tar.gz) echo 'root file system without dpkg (Yocto, Buildroot), armhf, glibc with 64-bit `time_t`' ;;
    *.tar.gz) f=${1%.tar.gz} && echo "root file system without dpkg (Yocto, Buildroot), ${f##*-}, glibc" ;;
    *.tgz) echo 'npm: `npm install -g` builds the FUSE addon on install (libfuse-dev, g++, make, python3)' ;;
  esac
}
{
  printf '# kheadersfs %s\n\n%s\n\n## Files\n\n| file | size | for |\n|---|---:|---|\n' "$VERSION" "$NOTES"
  for f in $(cd "$OUT" && ls | grep -vx 'RELEASE-NOTES.md.tmp'); do
    printf '| `%s` | %s | %s |\n' "$f" "$(stat -c %s "$OUT/$f" | numfmt --to=iec --suffix=B)" "$(for_what "$f")"
  done
  printf '\nCheck the downloads with `sha256sum -c SHA256SUMS`. Install: see README.md, "Install".\n'
  printf 'Built from commit %s (SOURCE_DATE_EPOCH %s); `npm run release` at that commit makes the same bytes.\n' \
    "$REV" "$SOURCE_DATE_EPOCH"
} >"$OUT/RELEASE-NOTES.md.tmp"
mv "$OUT/RELEASE-NOTES.md.tmp" "$OUT/RELEASE-NOTES.md"
(cd "$OUT" && ls | grep -vx SHA256SUMS | xargs sha256sum >SHA256SUMS)
find "$OUT" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
done=1
log "$OUT:"
(cd "$OUT" && ls -l | tail -n +2 >&2)
echo "$OUT"
