#!/usr/bin/env bash
# SQS API benchmark (issue 7): SendMessageBatch, then ReceiveMessage + DeleteMessageBatch,
# 10 messages per batch, fsync=always, through switchboard's SQS API (HTTP/1.1 keep-alive,
# AWS JSON 1.0 and the Query protocol) and through the broker's native C API on the same
# machine, with the overhead of the API relative to the native calls.
#
#   bench/sqs/run.sh
#
# Environment:
#   DURATION=10    seconds per phase (send; receive+delete, which stops early when drained)
#   CLIENTS=64     concurrent clients; each waits for its answer before the next request
#   THREADS=2      switchboard worker threads (serve --threads)
#   DATA_DIR=...   where the broker's data goes (default: a temp dir under $TMPDIR or /tmp)
#   BUILD_WAIT=1800 seconds to wait for running builds and test runs before measuring
#   KEEP_TMP=1     keep the data dir afterwards
#
# The driver is bench/sqs/sqs_bench.c: `native` opens a broker in-process and calls
# sb_queue_send / sb_queue_receive / sb_queue_delete_msgs from CLIENTS threads; `sqs` sends
# the same requests to a running `switchboard serve` (built with gcc -O2 in build/release).
# Client and server share the machine's cores. Prints a markdown table.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
DURATION=${DURATION:-10}
CLIENTS=${CLIENTS:-64}
THREADS=${THREADS:-2}
# shellcheck disable=SC2034 # read by wait_quiet (lib.sh)
build_wait=${BUILD_WAIT:-1800}

# shellcheck source=bench/lib.sh
source "$here/../lib.sh"

[[ $DURATION =~ ^[0-9]+$ && $DURATION -gt 0 ]] || die "DURATION must be a positive integer"
[[ $CLIENTS =~ ^[0-9]+$ && $CLIENTS -gt 0 && $CLIENTS -le 256 ]] || die "CLIENTS must be 1..256"

rel="$root/build/release"
if [[ ! -x $rel/switchboard || ! -f $rel/libswitchboard.a ]]; then
  log "run.sh: building $rel"
  cmake -S "$root" -B "$rel" -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=gcc >/dev/null
  cmake --build "$rel" -j2 --target switchboard switchboard_static >&2
fi

tmp=$(mktemp -d "${DATA_DIR:-${TMPDIR:-/tmp}}/sb-bench-sqs.XXXXXX")
odd=()
failed=0
pids=()
picked=()
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
  local p
  for p in "${pids[@]+"${pids[@]}"}"; do kill -TERM "$p" 2>/dev/null || true; done
  if [[ ${KEEP_TMP:-0} == 1 ]]; then log "run.sh: data dir kept: $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

cc -O2 -std=c17 -D_GNU_SOURCE -I"$root/src" -I"$root/include" -I"$rel/include" \
  -o "$tmp/sqs_bench" "$here/sqs_bench.c" "$rel/libswitchboard.a" \
  $(pkg-config --libs libuv libnghttp2 openssl libprotobuf-c zlib) -lpthread -lm
bench=$tmp/sqs_bench

kv() { # key line -> value
  tr ' ' '\n' <<<"$2" | awk -F= -v k="$1" '$1 == k { print $2 }'
}

declare -A R
record() { # name output-lines
  local line phase
  while read -r line; do
    [[ -n $line ]] || continue
    phase=$(kv phase "$line")
    R["$1.$phase.msgs"]=$(kv msgs_per_s "$line")
    R["$1.$phase.reqs"]=$(kv reqs_per_s "$line")
    R["$1.$phase.ms"]=$(kv mean_ms "$line")
    R["$1.$phase.cpu"]=$(kv cpu_us_per_msg "$line")
  done <<<"$2"
}

wait_quiet
log "run.sh: native API, $CLIENTS clients, ${DURATION}s per phase"
out=$(run_bg "$bench" native "$tmp/native" "$CLIENTS" "$DURATION") || fail "native driver failed"
log "$out"
record native "$out"

for proto in json query; do
  wait_quiet
  pick_port
  mkdir -p "$tmp/sqs-$proto"
  "$rel/switchboard" serve --http "127.0.0.1:$port" --threads "$THREADS" --log-level warn \
    --data "$tmp/sqs-$proto" >"$tmp/server-$proto.log" 2>&1 &
  srv=$!
  pids+=("$srv")
  wait_listening "$srv" "$port" || die "switchboard did not start: $(tail -5 "$tmp/server-$proto.log")"
  curl -sf -o /dev/null -H 'content-type: application/x-amz-json-1.0' \
    -H 'x-amz-target: AmazonSQS.CreateQueue' -d '{"QueueName":"bench"}' \
    "http://127.0.0.1:$port/" || die "CreateQueue failed"
  log "run.sh: SQS API ($proto), $CLIENTS clients, ${DURATION}s per phase"
  out=$(run_bg "$bench" sqs "127.0.0.1:$port" "$CLIENTS" "$DURATION" "$proto" "$srv") ||
    fail "sqs driver ($proto) failed"
  log "$out"
  record "sqs-$proto" "$out"
  stop_server "$srv" || fail "switchboard ($proto) exited non-zero"
done

fmt() { [[ -n ${1-} ]] && awk -v v="$1" 'BEGIN { printf "%.0f", v }' || echo "-"; }
over() { # native api -> overhead of the API: native/api - 1, as a percentage
  [[ -n ${1-} && -n ${2-} ]] && awk -v n="$1" -v a="$2" 'BEGIN { if (a > 0) printf "%+.0f%%", (n / a - 1) * 100; else print "-" }' || echo "-"
}

echo
echo "| phase (10 msgs/batch, fsync=always, $CLIENTS clients) | native msgs/s | SQS JSON msgs/s | SQS Query msgs/s | throughput overhead JSON / Query | mean latency native / JSON / Query |"
echo "|---|---:|---:|---:|---:|---|"
for phase in send recv_delete; do
  label=$([[ $phase == send ]] && echo "SendMessageBatch" || echo "ReceiveMessage + DeleteMessageBatch")
  echo "| $label | $(fmt "${R[native.$phase.msgs]-}") | $(fmt "${R[sqs-json.$phase.msgs]-}") | $(fmt "${R[sqs-query.$phase.msgs]-}") | $(over "${R[native.$phase.msgs]-}" "${R[sqs-json.$phase.msgs]-}") / $(over "${R[native.$phase.msgs]-}" "${R[sqs-query.$phase.msgs]-}") | ${R[native.$phase.ms]-} / ${R[sqs-json.$phase.ms]-} / ${R[sqs-query.$phase.ms]-} ms |"
done
echo
echo "| phase | CPU us/msg native (driver + broker) | CPU us/msg server, JSON | CPU us/msg server, Query | CPU overhead JSON / Query |"
echo "|---|---:|---:|---:|---:|"
for phase in send recv_delete; do
  label=$([[ $phase == send ]] && echo "SendMessageBatch" || echo "ReceiveMessage + DeleteMessageBatch")
  echo "| $label | ${R[native.$phase.cpu]-} | ${R[sqs-json.$phase.cpu]-} | ${R[sqs-query.$phase.cpu]-} | $(over "${R[sqs-json.$phase.cpu]-}" "${R[native.$phase.cpu]-}") / $(over "${R[sqs-query.$phase.cpu]-}" "${R[native.$phase.cpu]-}") |"
done
echo
echo "Throughput overhead = native msgs/s / SQS msgs/s - 1 (target <= 30%); client and server"
echo "share the cores, so it also counts the load generator's CPU. CPU overhead = server CPU per"
echo "message / native CPU per message - 1: what the API layer costs, without the client."
for o in "${odd[@]+"${odd[@]}"}"; do echo "note: $o"; done
exit "$failed"
