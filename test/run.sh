#!/usr/bin/env bash
# Run tests with tap and end with one plain line: "N passed, N failed[, N skipped]".
#   test/run.sh              the whole suite, in two lanes side by side (below)
#   test/run.sh PATH...      these files or directories of dist/test, one after another
# Coverage is off: tap 21 exits 1 below 100% coverage even when every test passes, and the e2e tests
# spend their time in child processes (the CLI, the daemon) where coverage says little.
#
# The two lanes share nothing a test asserts on (each mount has its own mountpoint and run
# directory; the boards run in their own roots) and each is mostly one process at a time, so on two
# cores they take about as long as the longer one:
#   boards  the .debs (packaging/build.sh), the cached fixtures (test/fixtures/prepare.ts: emulated
#           roots, cross-built kernels), then every file that needs them: packaging, the boards,
#           the cross-built kernels' e2e test and the systemd unit test.
#   host    unit, e2e and stress: everything else, which needs only this machine.
# Then, alone, what asserts on the whole machine's mounts: the odd mountpoint names test stops each
# mount with umount(8), which other mounts and namespaces made meanwhile (the boards) can make busy.
# Per-file timeout: a hang detector, not a speed limit (a board file takes minutes under emulation).
set -uo pipefail
cd "$(dirname "$0")/.."

tap() { npx --no-install tap --reporter=tap --disable-coverage --timeout=3600 --jobs=1 "$@" 2>&1; }

# "pass fail skip" from a tap log's final summary; "0 1 0" when it has none (tap crashed).
counts() {
  local summary
  summary=$(grep -E '^# \{ total' "$1" | tail -n 1)
  if [ -z "$summary" ]; then
    echo "0 1 0"
    return
  fi
  num() { echo "$summary" | grep -oE "$1: [0-9]+" | grep -oE '[0-9]+' || echo 0; }
  echo "$(num pass) $(num fail) $(($(num skip) + $(num todo)))"
}

# The failed files and assertions of one tap log, indented as tap nests them, so that the last lines of a
# red run name what failed (the CI record keeps only the tail of a long log).
failures() { # LANE LOG
  grep -E '^ *not ok ' "$2" | grep -v ' # TODO' | head -n 40 | sed "s/^/# failed in $1: /"
}

report() { # pass fail skip
  local line="$1 passed, $2 failed"
  [ "$3" != 0 ] && line="$line, $3 skipped"
  echo "$line"
  [ "$2" = 0 ]
}

logs=$(mktemp -d /tmp/kheadersfs-test.XXXXXX)
trap 'rm -rf "$logs"' EXIT

if [ $# -gt 0 ]; then
  tap "$@" | tee "$logs/one"
  rc=${PIPESTATUS[0]}
  read -r pass fail skip < <(counts "$logs/one")
  failures here "$logs/one"
  report "$pass" "$fail" "$skip"
  ok=$?
  if [ "$rc" != 0 ] && [ "$fail" = 0 ]; then exit "$rc"; fi
  exit $ok
fi

BOARD_FILES=(dist/test/packaging dist/test/board dist/test/e2e/cross-kernel.test.js dist/test/stress/systemd-unit.test.js)
SOLO_FILES=(dist/test/stress/mountpoint-names.test.js)
host_files=()
for f in dist/test/unit/*.test.js dist/test/e2e/*.test.js dist/test/stress/*.test.js; do
  case " ${BOARD_FILES[*]} ${SOLO_FILES[*]} " in *" $f "*) continue ;; esac
  host_files+=("$f")
done

start=$(date +%s)
lane_boards() {
  local t0
  t0=$(date +%s)
  if ! bash packaging/build.sh >"$logs/packaging.log" 2>&1; then
    tail -n 40 "$logs/packaging.log"
    echo "# packaging/build.sh failed"
    return 1
  fi
  echo "# packages built in $(($(date +%s) - t0)) s"
  t0=$(date +%s)
  if ! node dist/test/fixtures/prepare.js >"$logs/fixtures.log" 2>&1; then
    tail -n 40 "$logs/fixtures.log"
    echo "# test/fixtures/prepare.ts failed"
    return 1
  fi
  echo "# fixtures ready in $(($(date +%s) - t0)) s"
  tap "${BOARD_FILES[@]}"
}

# Each lane's lines carry its name, so the interleaved log still reads per lane.
(lane_boards | tee "$logs/boards" | sed -u 's/^/[boards] /') &
boards_pid=$!
tap "${host_files[@]}" | tee "$logs/host" | sed -u 's/^/[host] /'
wait "$boards_pid"
tap "${SOLO_FILES[@]}" | tee "$logs/solo" | sed -u 's/^/[solo] /'

read -r hp hf hs < <(counts "$logs/host")
read -r bp bf bs < <(counts "$logs/boards")
read -r sp sf ss < <(counts "$logs/solo")
failures host "$logs/host"
failures boards "$logs/boards"
failures alone "$logs/solo"
echo "# lanes: host $hp passed, $hf failed; boards $bp passed, $bf failed; then alone $sp passed, $sf failed;" \
  "$(($(date +%s) - start)) s in all"
report $((hp + bp + sp)) $((hf + bf + sf)) $((hs + bs + ss))
