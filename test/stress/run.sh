#!/usr/bin/env bash
# `npm run stress`: the reliability suite at full scale; writes docs/reliability.md from its figures.
set -uo pipefail
cd "$(dirname "$0")/../.."
figures=$(mktemp /tmp/kheadersfs-figures.XXXXXX)
trap 'rm -f "$figures"' EXIT
start=$(date +%s)
KHEADERSFS_STRESS=${KHEADERSFS_STRESS:-full} KHEADERSFS_FIGURES=$figures bash test/run.sh dist/test/stress
rc=$?
node dist/test/helpers/stress-report.js "$figures" docs/reliability.md $(( $(date +%s) - start ))
exit $rc
