#!/usr/bin/env bash
# packaging/build.sh [TARGET...] — Debian binary packages of kheadersfs (default: amd64 arm64 armhf armhf-time32)
#   -> build/packages/kheadersfs_<version>_<arch>.deb, each checked with lintian (no E: allowed),
#   and build/packages/kheadersfs-<version>-<target>.tar.gz, the same tree for systems without dpkg
#   (Yocto, Buildroot: packaging/tarball.sh).
# armhf-time32 is armhf for 32-bit time_t systems (Debian 12, Raspberry Pi OS bookworm, Ubuntu 22.04):
#   -> kheadersfs_<version>~deb12_armhf.deb, Version <version>~deb12 (sorts below <version>, so an
#   upgrade to trixie replaces it with the 64-bit time_t armhf package), Depends libfuse2.
# Needs `bash .ci/setup --boards` (cross compilers, dpkg-dev, lintian, man-db, foreign dpkg archs)
# and `npm ci`. Reproducible: SOURCE_DATE_EPOCH (default: the last git commit's time) sets every
# mtime and the manual page's date (the Debian changelog is made from CHANGELOG.md); dpkg-deb sorts the members.
# What goes into a package, and why, is in docs/packaging.md.
#
# Source: the last commit (git archive HEAD of src/, mount/, systemd/, docs/kheadersfs.1.md and the documents
# the page refers to, package.json, package-lock.json, tsconfig.json), so a package is exactly a commit and uncommitted
# work in the checkout never leaks in; KHEADERSFS_PACKAGE_SOURCE=worktree packages the working tree,
# KHEADERSFS_PACKAGE_SOURCE=<commit> that commit (its time is then SOURCE_DATE_EPOCH).
set -euo pipefail
export LC_ALL=C TZ=UTC
umask 022
log() { echo "build.sh: $*" >&2; }
die() { log "$*"; exit 1; }

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
ARCHS=("$@")
[ ${#ARCHS[@]} -gt 0 ] || ARCHS=(amd64 arm64 armhf armhf-time32)
REV=${KHEADERSFS_PACKAGE_SOURCE:-HEAD}
if [ "$REV" = worktree ]; then
  export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
else
  REV=$(git rev-parse --verify "$REV^{commit}") || die "KHEADERSFS_PACKAGE_SOURCE: no commit \"$REV\""
  export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct "$REV")}
fi
CACHE=${KHEADERSFS_CACHE:-/var/cache/kheadersfs}
APP=usr/lib/kheadersfs/app
OUT=$ROOT/build/packages
STAGE=$ROOT/build/stage
MARK='installed by "kheadersfs install-helpers"'

for a in "${ARCHS[@]}"; do
  case $a in amd64 | arm64 | armhf | armhf-time32) ;; *) die "unknown target \"$a\" (amd64, arm64, armhf, armhf-time32)" ;; esac
done
for t in dpkg-deb lintian man gzip; do command -v $t >/dev/null || die "no $t: run bash .ci/setup --boards"; done
[ -x node_modules/.bin/marked-man ] && [ -x node_modules/.bin/tsc ] || die "dev dependencies missing: run npm ci"
mkdir -p "$OUT" "$STAGE"

# --- 0. the source tree ----------------------------------------------------------------------------
if [ "$REV" = worktree ]; then
  SRC=$ROOT
  TSCONFIG=packaging/tsconfig.json
else
  SRC=$ROOT/build/source
  rm -rf "$SRC"
  mkdir -p "$SRC"
  git archive --format=tar "$REV" src mount systemd packaging/debian docs/kheadersfs.1.md docs/image-format.md docs/design.md CHANGELOG.md LICENSE package.json package-lock.json tsconfig.json | tar -x -C "$SRC"
  printf '{ "extends": "./tsconfig.json", "compilerOptions": { "rootDir": ".", "outDir": "../tsc/dist", "sourceMap": false, "incremental": false }, "include": ["src/**/*.ts"] }\n' >"$SRC/tsconfig.package.json"
  TSCONFIG=$SRC/tsconfig.package.json
  log "source: git $(git rev-parse --short "$REV")"
fi
VERSION=$(node -p "require('$SRC/package.json').version")
# Maintainer and homepage: package.json, or the distributor's KHEADERSFS_MAINTAINER/_HOMEPAGE/_BUGS.
MAINTAINER=$(node packaging/metadata.js "$SRC/package.json" maintainer)
HOMEPAGE=$(node packaging/metadata.js "$SRC/package.json" homepage)

# --- 1. the JavaScript: src only (no tests), no source maps ------------------------------------
log "compiling src/ (tsc -p $TSCONFIG)"
rm -rf build/tsc
node_modules/.bin/tsc -p "$TSCONFIG"
# build/tsc is laid out like a checkout (dist/src, package.json, the mount/ and systemd/ templates),
# so that its own `kheadersfs install-helpers` runs here with this host's node and renders the
# helper, the units and the CLI wrapper into each package below (step 4).
cp "$SRC/package.json" build/tsc/
cp -r "$SRC/mount" "$SRC/systemd" build/tsc/
mkdir -p build/tsc/packaging && cp -r "$SRC/packaging/debian" build/tsc/packaging/

# --- 2. production node_modules, from package-lock.json, cached per lockfile --------------------
LOCKSUM=$(cat "$SRC/package-lock.json" "$SRC/package.json" | sha256sum | cut -c1-16)
PROD=$CACHE/prod-modules/$LOCKSUM
if [ ! -d "$PROD/node_modules" ]; then
  log "npm ci --omit=dev --ignore-scripts (cache $PROD)"
  mkdir -p "$CACHE/prod-modules"
  tmp=$(mktemp -d "$CACHE/prod-modules/.tmp.XXXXXX")
  cp "$SRC/package.json" "$SRC/package-lock.json" "$tmp/"
  (cd "$tmp" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
  rm -rf "$PROD"
  mv "$tmp" "$PROD"
fi

# --- 3. the manual page and the completion scripts: the same renderer and generator as a checkout's
# `npm run build` and `kheadersfs completion SHELL` ----------------------------------------------------
log "manual page from docs/kheadersfs.1.md (packaging/man.mjs)"
MAN=build/tsc/dist/man/kheadersfs.1
node packaging/man.mjs "$SRC/docs/kheadersfs.1.md" "$MAN"
# Rendered in the C locale (ASCII device) too: every glyph has an ASCII form there.
warn=$(MANWIDTH=80 man --warnings -l "$MAN" 2>&1 >/dev/null || true)
[ -z "$warn" ] || die "the manual page renders with warnings: $warn"
mkdir -p "$STAGE/completion"
for sh in bash zsh fish; do node build/tsc/dist/src/cli.js completion $sh >"$STAGE/completion/$sh"; done

for TARGET in "${ARCHS[@]}"; do
  log "=== $TARGET"
  # TARGET names the build (addons, stage); ARCH and DEB_VERSION are the package's.
  case $TARGET in
    armhf-time32) ARCH=armhf DEB_VERSION=$VERSION~deb12 ;;
    *) ARCH=$TARGET DEB_VERSION=$VERSION ;;
  esac
  ADDONS=$(bash packaging/addons.sh "$TARGET" "$SRC/src/native")
  R=$STAGE/$TARGET
  rm -rf "$R"
  mkdir -p "$R/DEBIAN" "$R/$APP/dist" "$R/usr/share/man/man1" "$R/usr/share/doc/kheadersfs" \
    "$R/usr/share/bash-completion/completions" "$R/usr/share/zsh/vendor-completions" "$R/usr/share/fish/vendor_completions.d"

  # The app: compiled src and a trimmed package.json (version.ts reads it). No mount/ or systemd/:
  # nothing in the app reads them at run time (the package installs the rendered files itself).
  cp -r build/tsc/dist/src "$R/$APP/dist/src"
  node packaging/deb-meta.js app-package-json "$SRC/package.json" >"$R/$APP/package.json"

  # Production node_modules, pruned to what runs on this architecture.
  cp -r "$PROD/node_modules" "$R/$APP/node_modules"
  NMD=$R/$APP/node_modules
  rm -rf "$NMD/.bin" "$NMD/.package-lock.json"
  # Build-time-only packages (C headers for the addons): nothing requires them at run time.
  rm -rf "$NMD/node-addon-api" "$NMD/napi-macros"
  # The copyright file lists the modules kept, with the holders from their license files (read now:
  # the license files themselves are removed below).
  node packaging/deb-meta.js copyright "$NMD" "$APP" >"$STAGE/copyright.$TARGET"
  # lzma-native: prebuilds of other platforms (its linux-arm64 ones are x86-64 anyway), the bundled
  # xz tarballs and Windows DLLs, the C++ sources, the build scripts, its own CLI.
  rm -rf "$NMD/lzma-native/"{prebuilds,deps,src,bin,binding.gyp,liblzma-build.sh,liblzma-config.sh}
  # The addons for this architecture: lzma-native's where node-gyp-build looks first, kheadersfs's FUSE
  # binding where dist/src/native/binding.js loads it (as node-gyp leaves it in a checkout).
  install -D -m 644 "$ADDONS/lzma-native/build/Release/lzma_native.node" "$NMD/lzma-native/build/Release/lzma_native.node"
  install -D -m 644 "$ADDONS/kheadersfs/kheadersfs_fuse.node" "$R/$APP/src/native/build/Release/kheadersfs_fuse.node"
  # Documentation, type declarations and test junk of the modules (licenses go to the copyright file), and every
  # prebuilds/ directory (bare-* carry prebuilds for the Bare runtime, which node never loads).
  find "$NMD" \( -iname '*.md' -o -iname '*.markdown' -o -iname 'LICENSE*' -o -iname 'LICENCE*' \
    -o -iname 'COPYING*' -o -iname '.npmignore' -o -iname '.eslintrc*' -o -iname '.travis.yml' \
    -o -iname '.editorconfig' -o -iname '*.map' -o -iname '.github' -o -name 'test' -o -name 'tests' \
    -o -name '.prettierrc*' -o -name 'tsconfig.json' -o -name '.nycrc' -o -name '.airtap.yml' \
    -o -name '*.ts' -o -name '*.mts' -o -name '*.cts' -o -name '.git*' -o -name '.husky' -o -name '*.html' -o -name '*.sh' -o -name 'build-test.js' \
    -o -name 'prebuilds' -o -name 'benchmarks' -o -name 'docs' -o -name 'example*' \) -prune \
    -exec rm -rf {} +

  # Completion: bash-completion loads its script on the first <TAB> after "kheadersfs"; Debian's zsh and
  # fish look in vendor-completions and vendor_completions.d.
  cp "$STAGE/completion/bash" "$R/usr/share/bash-completion/completions/kheadersfs"
  cp "$STAGE/completion/zsh" "$R/usr/share/zsh/vendor-completions/_kheadersfs"
  cp "$STAGE/completion/fish" "$R/usr/share/fish/vendor_completions.d/kheadersfs.fish"

  # Manual page, the documents its SEE ALSO names, copyright, changelog.
  gzip -9n <"$MAN" >"$R/usr/share/man/man1/kheadersfs.1.gz"
  for d in image-format design; do gzip -9n <"$SRC/docs/$d.md" >"$R/usr/share/doc/kheadersfs/$d.md.gz"; done
  # mount.kheadersfs(8): the helper is described in kheadersfs(1).
  mkdir -p "$R/usr/share/man/man8"
  printf '.so man1/kheadersfs.1\n' | gzip -9n >"$R/usr/share/man/man8/mount.kheadersfs.8.gz"
  cp "$STAGE/copyright.$TARGET" "$R/usr/share/doc/kheadersfs/copyright"
  node packaging/changelog.js debian "$SRC/CHANGELOG.md" kheadersfs "$DEB_VERSION" "$MAINTAINER" |
    gzip -9n >"$R/usr/share/doc/kheadersfs/changelog.gz"

  # Modes: directories and files 755/644.
  find "$R" -type d -exec chmod 755 {} +
  find "$R" -type f -exec chmod 644 {} +
  # Scripts with a #! line (cli.js, node-gyp-build's bin.js, ...) are executable, as npm makes them.
  find "$R/$APP" -type f -exec sh -c 'for f; do [ "$(head -c 2 "$f")" = "#!" ] && chmod 755 "$f"; done; true' sh {} +

  # The CLI wrapper, the mount(8) helper and the units: the same install plan as a checkout's
  # `kheadersfs install-helpers`, pointed at the packaged node and app, with its modes (the two
  # entry points 755, the units 644). --for-package leaves out install-helpers' MARK, so
  # `kheadersfs install-helpers` never replaces or removes the packaged files.
  node build/tsc/dist/src/cli.js install-helpers --for-package --destdir "$R" --node /usr/bin/node --app "/$APP" \
    --bindir /usr/bin --helperdir /sbin --unitdir /usr/lib/systemd/system >/dev/null

  # Nothing of this machine inside, and no install-helpers MARK outside the app's own code.
  if grep -rlaE '/work/|/root/|/tmp/|/var/cache/' "$R" | grep -v "^$R/DEBIAN/" >"$STAGE/leaks.$TARGET"; then
    die "build-machine paths in: $(tr '\n' ' ' <"$STAGE/leaks.$TARGET")"
  fi
  if grep -rlF "$MARK" "$R" --exclude-dir=app >/dev/null; then die "install-helpers' MARK in a packaged file"; fi

  # Kernel hooks (docs/packaging.md, "Kernel hooks"): the hooks and their settings are conffiles (the
  # install plan staged them under etc/); postinst handles the /usr/src trigger, postrm purges.
  (cd "$R" && find etc -type f | sort | sed 's|^|/|') >"$R/DEBIAN/conffiles"
  install -m 755 "$SRC/packaging/debian/postinst" "$SRC/packaging/debian/postrm" "$R/DEBIAN/"
  install -m 644 "$SRC/packaging/debian/triggers" "$R/DEBIAN/triggers"

  # Depends: the library packages the ELF files need (libc6/libstdc++6 from their symbol versions).
  glibc=$(for f in $(find "$R" -name '*.node'); do readelf -W --dyn-syms "$f"; done | grep -oE 'GLIBC_[0-9]+\.[0-9]+' | sed 's/GLIBC_//' | sort -uV | tail -n 1)
  case $TARGET in
    armhf) FUSEDEP='libfuse2t64' ;;         # built for the 64-bit time_t ABI (see addons.sh)
    armhf-time32) FUSEDEP='libfuse2' ;;     # the 32-bit time_t ABI: bookworm's libfuse2 only
    *) FUSEDEP='libfuse2t64 | libfuse2' ;;
  esac
  DEPENDS="nodejs (>= 18.19), $FUSEDEP, liblzma5, fuse3 | fuse, libc6 (>= $glibc), libgcc-s1, libstdc++6 (>= 12)"

  # Recommends xz-utils: reading kheaders.txz with tar needs xz, which minimal images lack.
  SIZE=$(node packaging/deb-meta.js installed-size "$R")
  cat >"$R/DEBIAN/control" <<EOF
Package: kheadersfs
Version: $DEB_VERSION
Architecture: $ARCH
Maintainer: $MAINTAINER
Homepage: $HOMEPAGE
Installed-Size: $SIZE
Depends: $DEPENDS
Recommends: xz-utils
Section: utils
Priority: optional
Description: kernel headers and config of the running kernel over FUSE
 kheadersfs does from user space what CONFIG_IKHEADERS and IKCONFIG_PROC do
 for kernels built without them: "kheadersfs pack" turns a kernel build tree
 into one image file on the build host, and "kheadersfs mount" serves the
 running kernel's headers (kheaders.txz, a browsable tree) and config.gz
 from memory on the target, like "modprobe kheaders". Unmounting frees the
 memory.
 .
 This package holds the CLI, the mount.kheadersfs helper for mount(8) and
 fstab, and systemd units (not enabled). Images go to /lib/modules/RELEASE/
 or /usr/lib/kheadersfs/.
EOF
  node packaging/deb-meta.js md5sums "$R" >"$R/DEBIAN/md5sums"
  chmod 644 "$R/DEBIAN/control" "$R/DEBIAN/md5sums"

  find "$R" -newermt "@$SOURCE_DATE_EPOCH" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  DEB=$OUT/kheadersfs_${DEB_VERSION}_$ARCH.deb
  rm -f "$DEB"
  dpkg-deb --root-owner-group -Zxz --build "$R" "$DEB" >&2

  # lintian: errors fail the build; the warnings left are explained in docs/packaging.md.
  lintian --no-tag-display-limit "$DEB" >"$OUT/kheadersfs_${DEB_VERSION}_$ARCH.lintian" 2>&1 || true
  if grep -q '^E:' "$OUT/kheadersfs_${DEB_VERSION}_$ARCH.lintian"; then
    cat "$OUT/kheadersfs_${DEB_VERSION}_$ARCH.lintian" >&2
    die "lintian reports errors for $DEB"
  fi
  log "$DEB: $(stat -c %s "$DEB") bytes, Installed-Size $SIZE KiB, lintian: $(grep -c '^W:' "$OUT/kheadersfs_${DEB_VERSION}_$ARCH.lintian" || true) warnings"
  echo "$DEB"

  # The root file system tarball: the same installed tree, for Yocto and Buildroot images.
  bash packaging/tarball.sh "$R" "$OUT/kheadersfs-$VERSION-$TARGET.tar.gz"
  echo "$OUT/kheadersfs-$VERSION-$TARGET.tar.gz"
done
