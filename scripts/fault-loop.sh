#!/usr/bin/env bash
# Runs one fault scenario (a gtest filter over the fault or rebalance tests) N times in a row and
# tallies the results: how many runs passed, and per run the lost and duplicated counts its
# RELIABILITY| line reports. The log of every failed run is kept. For flakiness hunts and for the
# loops docs/RELIABILITY.md cites; not part of make test.
#
#   scripts/fault-loop.sh FILTER [RUNS] [BUILD_DIR]     defaults: 30 runs, build/dev
#   e.g. scripts/fault-loop.sh Faults.BrokersDownThenUpAndLeadersMoved 30
#
# The binaries must be built (cmake --build build/dev --target loginflow integration_faults_test
# integration_rebalance_test). Prints one line per run and a summary; exit 0 when every run
# passed, 1 otherwise. Logs: BUILD_DIR/fault-loop/<filter>-<run>.log (failed runs only).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
filter=${1:?usage: fault-loop.sh FILTER [RUNS] [BUILD_DIR]}
runs=${2:-30}
build=${3:-build/dev}
case "$build" in /*) ;; *) build="$root/$build" ;; esac
case "$filter" in
  Rebalance*|Strategies*) bin="$build/test/integration_rebalance_test" ;;
  *) bin="$build/test/integration_faults_test" ;;
esac
[ -x "$bin" ] || { echo "fault-loop: $bin not found; build it first" >&2; exit 2; }
logs="$build/fault-loop"
mkdir -p "$logs"
safe=$(echo "$filter" | tr -c 'A-Za-z0-9_.\n-' '_')

passed=0
failed=0
start=$(date +%s)
for i in $(seq 1 "$runs"); do
  log="$logs/$safe-$i.log"
  t0=$(date +%s)
  if "$bin" --gtest_color=no --gtest_filter="$filter" >"$log" 2>&1; then
    status=passed
    passed=$((passed + 1))
  else
    status=FAILED
    failed=$((failed + 1))
  fi
  # RELIABILITY|fault|load|events|lost|duplicated|recovery_ms|notes (one per test in the filter)
  counts=$(awk -F'|' '/^RELIABILITY\|/ { printf "%s lost %s, duplicated %s, recovery %s ms; ", $2, $5, $6, $7 }' "$log")
  echo "run $i/$runs: $status in $(( $(date +%s) - t0 )) s${counts:+; $counts}"
  if [ "$status" = passed ]; then rm -f "$log"; else echo "  log kept: $log"; fi
done
echo "fault-loop: $filter: $passed of $runs passed, $failed failed, in $(( $(date +%s) - start )) s"
[ "$failed" -eq 0 ]
