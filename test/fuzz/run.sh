#!/usr/bin/env bash
# Runs the transform's libFuzzer target for a bounded time on a scratch copy of the seed corpus.
#
#   test/fuzz/run.sh BUILD_DIR SECONDS [extra libFuzzer flags...]
#
# BUILD_DIR is the fuzz preset's build directory (build/fuzz). The seed corpus
# (test/fuzz/corpus/) is copied into a temporary directory, so a run never modifies the
# repository. Artifacts are written to a temporary directory; when the fuzzer finds something
# they are kept: crash-*, leak-*, timeout-* in test/fuzz/ (ignored by git), anything else
# (oom-*) in BUILD_DIR/fuzz-artifacts/. Exit status: 0 when
# nothing was found, 1 when the fuzzer found a crash (its path is printed), 2 on bad usage.
set -euo pipefail

usage() { echo "usage: $0 BUILD_DIR SECONDS [libFuzzer flags...]" >&2; exit 2; }
[[ $# -ge 2 ]] || usage
build_dir=$1
seconds=$2
shift 2
[[ $seconds =~ ^[0-9]+$ && $seconds -gt 0 ]] || { echo "run.sh: SECONDS must be a positive integer, got '$seconds'" >&2; exit 2; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
fuzzer=$build_dir/test/fuzz/transform_fuzz
[[ -x $fuzzer ]] || { echo "run.sh: no fuzzer at $fuzzer (cmake --build --preset fuzz --target transform_fuzz)" >&2; exit 2; }
[[ -d $here/corpus ]] || { echo "run.sh: no seed corpus at $here/corpus" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/transform_fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/corpus" "$work/artifacts"
cp "$here"/corpus/* "$work/corpus/"
log=$work/fuzz.log

echo "fuzz: $fuzzer for ${seconds}s, $(find "$work/corpus" -type f | wc -l) seeds from $here/corpus"
status=0
# libFuzzer writes its progress to stderr; keep a copy to summarise.
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
  "$fuzzer" "$work/corpus" \
    -max_total_time="$seconds" -max_len=1100000 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -dict="$here/json.dict" -artifact_prefix="$work/artifacts/" \
    "$@" 2>&1 | tee "$log" |
  sed -u -E '/^#[0-9]+\s+(NEW|REDUCE|pulse)/d; /^###### Recommended dictionary/,/^###### End of recommended/d' ||
  status=${PIPESTATUS[0]}

shopt -s nullglob
artifacts=("$work"/artifacts/*)
if [[ $status -ne 0 || ${#artifacts[@]} -gt 0 ]]; then
  echo "fuzz: FAILED (libFuzzer exit status $status)" >&2
  for a in "${artifacts[@]}"; do
    name=$(basename "$a")
    case $name in
      crash-*|leak-*|timeout-*) keep_dir=$here ;;              # ignored by git
      *) keep_dir=$build_dir/fuzz-artifacts; mkdir -p "$keep_dir" ;;  # oom-*, slow-unit-*
    esac
    cp "$a" "$keep_dir/$name"
    echo "fuzz: artifact $keep_dir/$name ($(stat -c %s "$a") bytes)" >&2
    if [[ $(stat -c %s "$a") -le 4096 ]]; then echo "fuzz:   base64: $(base64 -w0 "$a")" >&2; fi
    echo "fuzz:   reproduce: $fuzzer $keep_dir/$name" >&2
  done
  exit 1
fi

runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n1)
echo "fuzz: ${runs:-?} runs in ${secs:-$seconds} s, no crash"
