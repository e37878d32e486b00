#!/usr/bin/env bash
# packaging/addons.sh ARCH [FUSE_SRC] — build kheadersfs's two native addons for a Debian architecture
# on this x86-64 host and print the directory that holds them:
#   DIR/kheadersfs/kheadersfs_fuse.node              (src/native: kheadersfs's FUSE binding and xz block
#                                                     decoder, DT_NEEDED libfuse.so.2 and liblzma.so.5)
#   DIR/lzma-native/build/Release/lzma_native.node   (lzma-native, bundled xz 5.2.3 linked statically)
# FUSE_SRC is the directory with the addon's *.c, *.h and binding.gyp (default: the checkout's src/native;
# build.sh passes the packaged commit's).
# ARCH: amd64 | arm64 | armhf | armhf-time32. arm64 and armhf are cross-compiled (g++-aarch64-linux-gnu,
# g++-arm-linux-gnueabihf from `.ci/setup --boards`) against the target's libfuse.so.2 and liblzma.so.5,
# taken from `apt-get download libfuse2:ARCH liblzma5:ARCH liblzma-dev:ARCH`. armhf is built for the 64-bit time_t ABI of Debian trixie
# (libfuse2t64, Ubuntu 24.04+): -D_TIME_BITS=64 -D_FILE_OFFSET_BITS=64, because libfuse2t64 hands
# the addon `struct stat`/`struct timespec` with 64-bit time fields. armhf-time32 is the same armhf
# build for the 32-bit time_t ABI of Debian 12 / Raspberry Pi OS bookworm / Ubuntu 22.04 (libfuse2):
# -D_FILE_OFFSET_BITS=64 only. glibc gives the time64 ABI its own entry points (__clock_gettime64,
# __fcntl_time64, ...; GLIBC_2.34), so the check below tells the two ABIs apart from the imports.
#
# DIR is /var/cache/kheadersfs/addons/<key>, key = arch + the addon packages' versions + the node
# headers' version + libfuse2's and liblzma's versions + this script's sha256: a rerun with nothing changed prints
# the cached DIR at once. Nothing under node_modules/ is modified: the sources are copied to a
# scratch directory first. node-gyp (npm's own) compiles against /usr/include/node and never
# downloads anything.
set -euo pipefail
export LC_ALL=C

ARCH=${1:?usage: packaging/addons.sh amd64|arm64|armhf|armhf-time32 [FUSE_SRC]}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FUSE_SRC=${2:-$ROOT/src/native}
NM=$ROOT/node_modules
CACHE=${KHEADERSFS_ADDON_CACHE:-${KHEADERSFS_CACHE:-/var/cache/kheadersfs}/addons}
NODE_GYP=/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js
log() { echo "addons.sh[$ARCH]: $*" >&2; }
die() { log "$*"; exit 1; }

case $ARCH in
  amd64) TRIPLET=x86_64-linux-gnu GYP_ARCH=x64 ELF_MACHINE='X86-64' ;;
  arm64) TRIPLET=aarch64-linux-gnu GYP_ARCH=arm64 ELF_MACHINE='AArch64' ;;
  armhf | armhf-time32) TRIPLET=arm-linux-gnueabihf GYP_ARCH=arm ELF_MACHINE='ARM' ;;
  *) die "unknown architecture \"$ARCH\" (amd64, arm64, armhf or armhf-time32)" ;;
esac
DEB_ARCH=${ARCH%-time32} # the Debian architecture: libfuse2 and the toolchain are armhf's for both ABIs

[ -d "$NM/lzma-native" ] || die "node_modules is missing: run npm ci first"
[ -f "$FUSE_SRC/kheadersfs_fuse.c" ] && [ -f "$FUSE_SRC/binding.gyp" ] || die "no kheadersfs_fuse.c and binding.gyp in $FUSE_SRC"
[ -f /usr/include/lzma.h ] || die "no /usr/include/lzma.h (install liblzma-dev)"
[ -f /usr/include/node/node_api.h ] || die "no node headers in /usr/include/node"
[ -f /usr/include/fuse/fuse.h ] || die "no /usr/include/fuse (install libfuse-dev)"
[ -f "$NODE_GYP" ] || die "no node-gyp at $NODE_GYP"

pkgver() { node -p "require('$NM/$1/package.json').version"; }
FUSE_VER=$(cat "$FUSE_SRC"/*.[ch] "$FUSE_SRC/binding.gyp" | sha256sum | cut -c1-16)
LZMA_VER=$(pkgver lzma-native)
NAA_VER=$(pkgver node-addon-api)
NODE_HDR=$(sed -n 's/^#define NODE_\(MAJOR\|MINOR\|PATCH\)_VERSION \([0-9]*\).*/\2/p' /usr/include/node/node_version.h | paste -sd.)
LIBFUSE_VER=$(apt-cache policy "libfuse2:$DEB_ARCH" 2>/dev/null | sed -n 's/^ *Candidate: //p')
[ -n "$LIBFUSE_VER" ] && [ "$LIBFUSE_VER" != "(none)" ] || die "apt knows no libfuse2:$DEB_ARCH (dpkg --add-architecture $DEB_ARCH; apt-get update)"
LIBLZMA_VER=$(apt-cache policy "liblzma-dev:$DEB_ARCH" 2>/dev/null | sed -n 's/^ *Candidate: //p')
[ -n "$LIBLZMA_VER" ] && [ "$LIBLZMA_VER" != "(none)" ] || die "apt knows no liblzma-dev:$DEB_ARCH (dpkg --add-architecture $DEB_ARCH; apt-get update)"
SELF=$(sha256sum "$0" | cut -c1-64)
KEY_TEXT="arch=$ARCH kheadersfs-fuse=$FUSE_VER lzma-native=$LZMA_VER node-addon-api=$NAA_VER node-headers=$NODE_HDR libfuse2=$LIBFUSE_VER liblzma=$LIBLZMA_VER script=$SELF"
KEY=$ARCH-$(printf '%s' "$KEY_TEXT" | sha256sum | cut -c1-16)
OUT=$CACHE/$KEY

if [ -f "$OUT/KEY" ] && [ -f "$OUT/kheadersfs/kheadersfs_fuse.node" ] && [ -f "$OUT/lzma-native/build/Release/lzma_native.node" ]; then
  log "cached: $OUT"
  echo "$OUT"
  exit 0
fi

mkdir -p "$CACHE"
WORK=$(mktemp -d "$CACHE/.build-$ARCH.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
log "building into $OUT ($KEY_TEXT)"

# Scratch copies: node resolves node-addon-api from scratch/node_modules, as in a project.
S=$WORK/src
mkdir -p "$S/node_modules"
for m in lzma-native node-addon-api; do
  cp -a "$NM/$m" "$S/node_modules/$m"
done
rm -rf "$S/node_modules/lzma-native/build"
mkdir -p "$S/kheadersfs"
cp "$FUSE_SRC"/*.[ch] "$FUSE_SRC/binding.gyp" "$S/kheadersfs/"

# Compiler flags: no debug info, and the scratch path never reaches the binaries (reproducible,
# no build-machine path in the package).
FLAGS="-O2 -ffile-prefix-map=$WORK=/build"
case $ARCH in
  armhf) FLAGS="$FLAGS -D_FILE_OFFSET_BITS=64 -D_TIME_BITS=64" ;;
  armhf-time32) FLAGS="$FLAGS -D_FILE_OFFSET_BITS=64" ;;
esac

if [ "$ARCH" = amd64 ]; then
  export CC=gcc CXX=g++ AR=ar LINK=g++ STRIP=strip
else
  export CC=$TRIPLET-gcc CXX=$TRIPLET-g++ AR=$TRIPLET-ar LINK=$TRIPLET-g++ STRIP=$TRIPLET-strip
  export CC_host=gcc CXX_host=g++ AR_host=ar LINK_host=g++
  command -v "$CXX" >/dev/null || die "no $CXX: run bash .ci/setup --boards"
fi

# --- the target's libfuse.so.2 and liblzma.so.5, and pkg-config files that point binding.gyp at them --
PC=$WORK/pkgconfig
mkdir -p "$PC"
# target_debs NAME VERSION PKG...: the packages for DEB_ARCH, unpacked once into $CACHE/NAME-ARCH-VERSION/x
# (apt-get download + dpkg-deb -x); prints $CACHE/NAME-ARCH-VERSION.
target_debs() {
  local name=$1 ver=$2 dir tmp deb
  shift 2
  dir=$CACHE/$name-$DEB_ARCH-$ver
  if [ ! -d "$dir/x" ]; then
    tmp=$(mktemp -d "$CACHE/.$name-$DEB_ARCH.XXXXXX")
    (cd "$tmp" && apt-get download -q "${@/%/:$DEB_ARCH=$ver}" >&2)
    for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$tmp/x"; done
    rm -rf "$dir"
    mkdir -p "$dir"
    mv "$tmp/x" "$dir/x"
    rm -rf "$tmp"
  fi
  echo "$dir"
}
# dev_link DIR PKG SONAME LINK: DIR/lib holding LINK, the unversioned name the linker wants, to the
# SONAME.* library PKG unpacked in DIR/x; prints DIR/lib. The packages' own links do not serve:
# libfuse-dev is not downloaded, and liblzma-dev's link is absolute (/lib/TRIPLET/...).
dev_link() {
  local so
  so=$(find "$1/x" -name "$3.*" -type f | head -n 1)
  [ -n "$so" ] || die "$2:$DEB_ARCH has no $3.*"
  mkdir -p "$1/lib"
  ln -sfn "$so" "$1/lib/$4"
  echo "$1/lib"
}
if [ "$ARCH" = amd64 ]; then
  PKG_CONFIG_LIBDIR_TARGET=
else
  FUSE_DIR=$(target_debs libfuse2 "$LIBFUSE_VER" libfuse2)
  FUSE_LIB=$(dev_link "$FUSE_DIR" libfuse2 libfuse.so.2 libfuse.so) || exit 1
  cat >"$PC/fuse.pc" <<EOF
Name: fuse
Description: libfuse2 for $DEB_ARCH (headers from the host's libfuse-dev)
Version: ${LIBFUSE_VER%%-*}
Libs: -L$FUSE_LIB -lfuse -pthread
Cflags: -I/usr/include/fuse -D_FILE_OFFSET_BITS=64
EOF
  # liblzma-dev:ARCH brings lzma.h and the liblzma.so link. Its headers are copied alone: -I/usr/include
  # would put the host's libc headers before the cross compiler's.
  LZMA_DIR=$(target_debs liblzma "$LIBLZMA_VER" liblzma5 liblzma-dev)
  LZMA_LIB=$(dev_link "$LZMA_DIR" liblzma5 liblzma.so.5 liblzma.so) || exit 1
  mkdir -p "$WORK/lzma-include"
  cp -r "$LZMA_DIR/x/usr/include/lzma.h" "$LZMA_DIR/x/usr/include/lzma" "$WORK/lzma-include/"
  cat >"$PC/liblzma.pc" <<EOF
Name: liblzma
Description: liblzma for $DEB_ARCH
Version: ${LIBLZMA_VER%%-*}
Libs: -L$LZMA_LIB -llzma
Cflags: -I$WORK/lzma-include
EOF
  PKG_CONFIG_LIBDIR_TARGET=$PC
fi

gyp() { # gyp DIR — node-gyp rebuild for the target arch, offline, against /usr/include/node
  (cd "$1" && CFLAGS="$FLAGS" CXXFLAGS="$FLAGS" node "$NODE_GYP" rebuild --nodedir=/usr --arch="$GYP_ARCH" \
    --jobs="$(nproc)" --loglevel=warn >"$WORK/$(basename "$1").log" 2>&1) ||
    { tail -n 40 "$WORK/$(basename "$1").log" >&2; die "node-gyp failed in $(basename "$1")"; }
}

# --- kheadersfs's FUSE binding ----------------------------------------------------------------
log "kheadersfs_fuse ($FUSE_VER)"
if [ -n "$PKG_CONFIG_LIBDIR_TARGET" ]; then
  PKG_CONFIG_LIBDIR=$PKG_CONFIG_LIBDIR_TARGET gyp "$S/kheadersfs"
else
  gyp "$S/kheadersfs"
fi

# --- lzma-native -------------------------------------------------------------------------------
if [ "$ARCH" = amd64 ]; then
  # lzma-native's own linux-x64 prebuild (N-API, bundled xz 5.2.3): what npm installs on x64.
  mkdir -p "$S/node_modules/lzma-native/build/Release"
  cp "$NM/lzma-native/prebuilds/linux-x64/node.napi.node" "$S/node_modules/lzma-native/build/Release/lzma_native.node"
else
  # Its binding.gyp runs liblzma-config.sh (xz 5.2.3's ./configure, no --host) at gyp time: in the
  # scratch copy, give configure the target triplet so it cross-compiles instead of running test
  # programs. Still the bundled xz 5.2.3, so compressed output is the same bytes as on x86-64.
  log "lzma-native $LZMA_VER (xz 5.2.3, --host=$TRIPLET)"
  sed -i "s|^sh xz-\*/configure |sh xz-*/configure --host=$TRIPLET |" "$S/node_modules/lzma-native/liblzma-config.sh"
  grep -q -- "--host=$TRIPLET" "$S/node_modules/lzma-native/liblzma-config.sh" || die "could not patch liblzma-config.sh"
  gyp "$S/node_modules/lzma-native"
fi

# --- collect, strip, check ---------------------------------------------------------------------
R=$WORK/out
mkdir -p "$R/kheadersfs" "$R/lzma-native/build/Release"
cp "$S/kheadersfs/build/Release/kheadersfs_fuse.node" "$R/kheadersfs/kheadersfs_fuse.node"
cp "$S/node_modules/lzma-native/build/Release/lzma_native.node" "$R/lzma-native/build/Release/lzma_native.node"
for f in "$R/kheadersfs/kheadersfs_fuse.node" "$R/lzma-native/build/Release/lzma_native.node"; do
  "$STRIP" --strip-unneeded --remove-section=.comment --remove-section=.note "$f"
  m=$(readelf -h "$f" | sed -n 's/^ *Machine: *//p')
  case $m in
    *"$ELF_MACHINE"*) ;;
    *) die "$f: machine \"$m\", expected $ELF_MACHINE" ;;
  esac
  if [ "$DEB_ARCH" = armhf ]; then
    readelf -h "$f" | grep -q 'hard-float' || die "$f: not hard-float"
  fi
  if grep -aqE "$WORK|/work/|/root/|/tmp/|/var/cache" "$f"; then die "$f: contains a build-machine path"; fi
  log "$(file -b "$f" | cut -d, -f1-3): $(basename "$f")"
done
readelf -d "$R/kheadersfs/kheadersfs_fuse.node" | grep -q 'NEEDED.*\[libfuse\.so\.2\]' || die "kheadersfs_fuse.node: no DT_NEEDED libfuse.so.2"
readelf -d "$R/kheadersfs/kheadersfs_fuse.node" | grep -q 'NEEDED.*\[liblzma\.so\.5\]' || die "kheadersfs_fuse.node: no DT_NEEDED liblzma.so.5"
# The time_t ABI, from the glibc entry points the addons import: armhf (time64) must use the
# *64/*_time64 ones (else _TIME_BITS did not take), armhf-time32 none of them (else it would need
# glibc's time64 ABI, and libfuse2 would hand it 32-bit time fields).
if [ "$DEB_ARCH" = armhf ]; then
  t64=$(for f in "$R/kheadersfs/kheadersfs_fuse.node" "$R/lzma-native/build/Release/lzma_native.node"; do
    readelf -W --dyn-syms "$f" | awk '$7 == "UND" { print $8 }'
  done | grep -E '^__[A-Za-z0-9_]*64@GLIBC_2\.34$' | sort -u | paste -sd' ' || true)
  if [ "$ARCH" = armhf ] && [ -z "$t64" ]; then die "the armhf addons import no time64 glibc symbol: not the 64-bit time_t ABI"; fi
  if [ "$ARCH" = armhf-time32 ] && [ -n "$t64" ]; then die "the armhf-time32 addons import time64 glibc symbols ($t64): not the 32-bit time_t ABI"; fi
  log "time_t ABI: ${t64:-32-bit (no time64 imports)}"
fi
printf '%s\n' "$KEY_TEXT" >"$R/KEY"

rm -rf "$OUT"
mv "$R" "$OUT"
log "done: $OUT"
echo "$OUT"
