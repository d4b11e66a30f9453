#!/usr/bin/env bash
# Journal benchmark (issue 6, src/log/): the disk against the log on it, in one run.
#
#   bench/log/run.sh
#
# Environment:
#   SIZE_MIB=1024   bytes written by dd and by the append test, and the size of the restart log
#   DURATION=10     seconds per producer test
#   THREADS=64      producer threads of the group-commit tests
#   REPEAT=3        dd / journal-append pairs (medians are reported)
#   WINDOW=4096     appends in flight of the single producer of the append test
#   DATA_DIR=...    where the files go (default: a temp dir under $TMPDIR or /tmp; it must be
#                   on the disk you want to measure)
#   BUILD_WAIT=1800 seconds to wait for running builds and test runs before each measurement
#   KEEP_TMP=1      keep the data dir afterwards
#
# Measures, on the same file system:
#   1. the disk's sequential write bandwidth: dd bs=1M of SIZE_MIB MiB, conv=fdatasync (one
#      fdatasync at the end, included in dd's time);
#   2. the journal's append throughput for 1 KiB values, fsync=always, one producer keeping up
#      to WINDOW appends in flight (the time runs to the last acknowledgement, i.e. to the last
#      fdatasync); bandwidth counts the bytes written (records are 1024 + 40 bytes);
#   3. THREADS producers with fsync=always for DURATION s: window 1 (each waits for its
#      acknowledgement before the next append, like a synchronous client) and window 16
#      (a pipelining client); durable records per second and records per fdatasync;
#   4. restart time (sb_journal_open = recovery, plus the first read of the newest record) of
#      the SIZE_MIB log of test 2, with a warm page cache, with the segment files evicted
#      (posix_fadvise DONTNEED; dropping all caches needs root), and with every index file
#      deleted (the worst case: the whole log is scanned and its indexes rebuilt).
# Prints a markdown table with ratios and the issue's targets. Exits 1 when a run failed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
SIZE_MIB=${SIZE_MIB:-1024}
DURATION=${DURATION:-10}
THREADS=${THREADS:-64}
REPEAT=${REPEAT:-3}
WINDOW=${WINDOW:-4096}
# shellcheck disable=SC2034 # read by wait_quiet (lib.sh)
build_wait=${BUILD_WAIT:-1800}

# shellcheck source=bench/lib.sh
source "$here/../lib.sh"

[[ $SIZE_MIB =~ ^[0-9]+$ && $SIZE_MIB -gt 0 ]] || die "SIZE_MIB must be a positive integer"
[[ $DURATION =~ ^[0-9]+$ && $DURATION -gt 0 ]] || die "DURATION must be a positive integer"
[[ $THREADS =~ ^[0-9]+$ && $THREADS -gt 0 ]] || die "THREADS must be a positive integer"
[[ $REPEAT =~ ^[0-9]+$ && $REPEAT -gt 0 ]] || die "REPEAT must be a positive integer"
[[ $WINDOW =~ ^[0-9]+$ && $WINDOW -gt 0 ]] || die "WINDOW must be a positive integer"

lib="$root/build/release/libswitchboard.a"
if [[ ! -f $lib ]]; then
  log "run.sh: $lib missing, building it"
  cmake -S "$root" -B "$root/build/release" -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=gcc >/dev/null
  cmake --build "$root/build/release" -j2 --target switchboard_static >&2
fi

tmp=$(mktemp -d "${DATA_DIR:-${TMPDIR:-/tmp}}/sb-bench-log.XXXXXX")
odd=()
failed=0
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
  if [[ ${KEEP_TMP:-0} == 1 ]]; then log "run.sh: data dir kept: $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

# The driver pulls only the journal's objects (and core's logging) out of the archive.
cc -O2 -std=c17 -D_GNU_SOURCE -I"$root/src" -I"$root/include" -I"$root/build/release/include" \
  -o "$tmp/journal_bench" "$here/journal_bench.c" "$lib" \
  -lpthread -lm
bench=$tmp/journal_bench

kv() { # key line -> value
  tr ' ' '\n' <<<"$2" | awk -F= -v k="$1" '$1 == k { print $2 }'
}

# --- 1 and 2: the disk and the journal, alternately -------------------------------------
# The disk is shared with whatever else runs on the machine, so one dd against one journal
# run says little: REPEAT pairs run back to back, and the table takes the median of each side.
dd_list=()
seq_list=()
for ((rep = 1; rep <= REPEAT; rep++)); do
  wait_quiet
  log "run.sh: [$rep/$REPEAT] dd ${SIZE_MIB} MiB with conv=fdatasync"
  dd_out=$(dd if=/dev/zero of="$tmp/dd.bin" bs=1M count="$SIZE_MIB" conv=fdatasync 2>&1 | tail -n 1)
  rm -f "$tmp/dd.bin"
  log "run.sh: dd: $dd_out"
  dd_bytes=$(awk '{ print $1 }' <<<"$dd_out")
  dd_secs=$(awk -F', ' '{ split($(NF-1), a, " "); print a[1] }' <<<"$dd_out")
  dd_list+=("$(awk -v b="$dd_bytes" -v s="$dd_secs" 'BEGIN { printf "%.1f", b / s / 1048576 }')")

  wait_quiet
  log "run.sh: [$rep/$REPEAT] journal append ${SIZE_MIB} MiB of 1 KiB records, fsync=always"
  rm -rf "$tmp/seq" # the last repetition's log stays for the restart test
  seq_out=$("$bench" append "$tmp/seq" "$SIZE_MIB" 1024 always 1 "$WINDOW") || { failed=1; odd+=("append run failed"); }
  log "run.sh: $seq_out"
  seq_list+=("$(kv MiB_per_s "$seq_out")")
done
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
dd_mibs=$(median "${dd_list[@]}")
seq_mibs=$(median "${seq_list[@]}")
seq_rps=$(awk -v m="$seq_mibs" 'BEGIN { printf "%.0f", m * 1048576 / 1064 }')
seq_batch=$(awk -v r="$(kv records "$seq_out")" -v f="$(kv fsyncs "$seq_out")" 'BEGIN { printf "%.0f", f ? r / f : 0 }')

# --- 3. many producers ----------------------------------------------------------------------
declare -A P_RPS P_BATCH
for w in 1 16; do
  wait_quiet
  log "run.sh: $THREADS producers, window $w, fsync=always, ${DURATION}s"
  out=$("$bench" producers "$tmp/p$w" "$THREADS" "$DURATION" 1024 "$w") || { failed=1; odd+=("producers window $w failed"); }
  log "run.sh: $out"
  P_RPS[$w]=$(kv records_per_s "$out")
  P_BATCH[$w]=$(kv records_per_fsync "$out")
  rm -rf "$tmp/p$w"
done

# --- 4. restart -----------------------------------------------------------------------------
declare -A R_SECS
for how in warm cold noidx; do
  wait_quiet
  # noidx: the worst case, every sealed segment's index file gone, so recovery scans and
  # checks the whole log (all of its CRCs) to rebuild them; files evicted as for cold.
  [[ $how == noidx ]] && rm -f "$tmp/seq"/*.idx
  out=$("$bench" restart "$tmp/seq" "$([[ $how == warm ]] && echo 0 || echo 1)") || { failed=1; odd+=("restart $how failed"); }
  log "run.sh: $out"
  R_SECS[$how]=$(kv open_and_read_seconds "$out")
done
log_bytes=$(du -sb --exclude='*.idx' "$tmp/seq" | awk '{ print $1 }')
tail_bytes=$(find "$tmp/seq" -name '*.seg' -printf '%f %s\n' | sort | tail -n 1 | awk '{ print $2 }')

# --- report ---------------------------------------------------------------------------------
fmt() { awk -v v="$1" 'BEGIN { printf "%\047.0f", v }'; }
r_seq=$(awk -v a="$seq_mibs" -v b="$dd_mibs" 'BEGIN { printf "%.2f", a / b }')
ok() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN { print ((op == ">=" ? v >= t : v <= t) ? "met" : "MISSED") }'; }

echo
echo "| test | result | reference | ratio | target |"
echo "|---|---|---|---|---|"
echo "| disk: dd bs=1M ${SIZE_MIB} MiB, conv=fdatasync, median of ${REPEAT} (${dd_list[*]}) | ${dd_mibs} MiB/s | | | |"
echo "| journal: 1 KiB records, fsync=always, 1 producer, window ${WINDOW}, median of ${REPEAT} (${seq_list[*]}); ~${seq_batch} rec/fdatasync | ${seq_mibs} MiB/s ($(fmt "$seq_rps") rec/s) | ${dd_mibs} MiB/s (dd) | ${r_seq}x | >= 0.80x: $(ok "$r_seq" 0.80 '>=') |"
for w in 1 16; do
  echo "| journal: ${THREADS} producers, window ${w}, fsync=always, ${DURATION}s | $(fmt "${P_RPS[$w]}") durable rec/s (${P_BATCH[$w]} rec/fdatasync) | | | >= 100,000/s: $(ok "${P_RPS[$w]}" 100000 '>=') |"
done
mib=$((log_bytes / 1048576))
tail_mib=$(awk -v b="$tail_bytes" 'BEGIN { printf "%.1f", b / 1048576 }')
echo "| restart: open + first read, ${mib} MiB log (tail segment ${tail_mib} MiB scanned), warm cache | ${R_SECS[warm]} s | | | <= 1 s: $(ok "${R_SECS[warm]}" 1 '<=') |"
echo "| restart: same, segment files evicted (fadvise DONTNEED) | ${R_SECS[cold]} s | | | <= 1 s: $(ok "${R_SECS[cold]}" 1 '<=') |"
echo "| restart: same, every index file deleted (all ${mib} MiB scanned, indexes rebuilt) | ${R_SECS[noidx]} s | | | <= 1 s: $(ok "${R_SECS[noidx]}" 1 '<=') |"
echo
echo "Machine: $(nproc) cores, $(uptime | sed 's/.*load average/load average/'), data dir on $(df --output=source "$tmp" | tail -n 1)."
if ((${#odd[@]})); then
  echo
  echo "Warnings:"
  for o in "${odd[@]}"; do echo "- $o"; done
fi
exit "$failed"
