#!/usr/bin/env bash
# Runs one libFuzzer target for a bounded time on a copy of its seed corpus.
#
#   fuzz/run.sh <target-binary> <seed-corpus-dir> [extra libFuzzer flags...]
#
# Environment:
#   SB_FUZZ_SECONDS  fuzzing time in seconds (default 30)
#   SB_FUZZ_WORKDIR  keep everything here instead of a throw-away temp dir: corpus/ (seeds
#                    plus what the fuzzer found; reused by the next run), artifacts/ (crash,
#                    leak, timeout and oom inputs) and fuzz.log. For long campaigns.
#
# The committed seeds are copied, never written: libFuzzer adds every interesting input to
# its corpus directory, and that must not be the repository.
#
# Exit status: 0 when the run ended without a finding; libFuzzer's non-zero status on a crash,
# leak, timeout or out-of-memory (the inputs are kept and printed as hex, with the work dir
# left in place); 2 for usage errors; 124/137 when the run overran its time bound.
set -euo pipefail

if [[ $# -lt 2 ]]; then
  echo "usage: $0 <target-binary> <seed-corpus-dir> [libFuzzer flags...]" >&2
  exit 2
fi
target=$1
seeds=$2
shift 2
secs=${SB_FUZZ_SECONDS:-30}
if ! [[ $secs =~ ^[0-9]+$ ]] || ((secs == 0)); then
  echo "run.sh: SB_FUZZ_SECONDS must be a positive integer, got '$secs'" >&2
  exit 2
fi
[[ -x $target ]] || { echo "run.sh: not an executable: $target" >&2; exit 2; }
[[ -d $seeds ]] || { echo "run.sh: no seed corpus directory: $seeds" >&2; exit 2; }
# The fuzzer runs inside the work dir (where -jobs writes its logs): make paths absolute.
target=$(realpath "$target")
seeds=$(realpath "$seeds")

keep=0
if [[ -n ${SB_FUZZ_WORKDIR:-} ]]; then
  work=$SB_FUZZ_WORKDIR
  keep=1
  mkdir -p "$work"
else
  work=$(mktemp -d "${TMPDIR:-/tmp}/sb-fuzz-$(basename "$target").XXXXXX")
fi
mkdir -p "$work/corpus" "$work/artifacts"
cp -R "$seeds"/. "$work/corpus/"

name=$(basename "$target")
log=$work/fuzz.log
# Leaks are bugs here (each input must free its connection); keep the caller's options.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

echo "run.sh: $name for ${secs}s, corpus $work/corpus"
# libFuzzer stops itself after max_total_time; the outer bound only catches a hang outside
# the per-input -timeout (start-up, corpus loading), with room for a slow first pass.
rc=0
(cd "$work" && timeout -k 10 $((secs + 300)) "$target" \
  -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$@" "$work/corpus") \
  >"$log" 2>&1 || rc=$?

if ((rc == 0)); then
  # A short summary for the test log: the last status line and the final stats.
  grep -E '^(#[0-9]+|Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" | tail -n 4 || true
  echo "run.sh: $name: no findings"
  ((keep)) || rm -rf "$work"
  exit 0
fi

echo "run.sh: $name FAILED with status $rc; last lines of $log:"
tail -n 120 "$log"
shopt -s nullglob
for f in "$work"/artifacts/*; do
  echo "run.sh: finding $f ($(stat -c %s "$f") bytes), hex (first 4096 bytes):"
  head -c 4096 "$f" | od -An -v -tx1 | tr -d ' \n'
  echo
  echo "run.sh: reproduce with: $target $f"
done
echo "run.sh: work dir kept: $work"
exit "$rc"
