#!/usr/bin/env bash
# Run the whole suite with tap and end with one plain line: "N passed, N failed[, N skipped]".
# Coverage is off: tap 21 exits 1 below 100% coverage even when every test passes, and the e2e tests
# spend their time in child processes (the CLI, the daemon) where coverage says little.
set -uo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp /tmp/kheadersfs-test.XXXXXX)
trap 'rm -f "$log"' EXIT
# packaging checks the .debs that `npm test` built just before; board installs them into emulated
# Debian boards (qemu-user) and builds modules there: minutes per file under emulation, hence the
# long per-file timeout (a hang detector, not a speed limit).
dirs=(dist/test/unit dist/test/e2e dist/test/stress dist/test/packaging dist/test/board)
if [ $# -gt 0 ]; then dirs=("$@"); fi
npx --no-install tap --reporter=tap --disable-coverage --timeout=3600 --jobs=1 "${dirs[@]}" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
summary=$(grep -E '^# \{ total' "$log" | tail -n 1)
num() { echo "$summary" | grep -oE "$1: [0-9]+" | grep -oE '[0-9]+' || echo 0; }
pass=$(num pass); fail=$(num fail); skip=$(num skip); todo=$(num todo)
if [ -z "$summary" ]; then fail=$((fail + 1)); echo "# no summary from tap (crashed?)"; fi
line="$pass passed, $fail failed"
if [ "$skip" != 0 ] || [ "$todo" != 0 ]; then line="$line, $((skip + todo)) skipped"; fi
echo "$line"
if [ "$rc" != 0 ] && [ "$fail" = 0 ]; then exit "$rc"; fi
[ "$fail" = 0 ]
