#!/usr/bin/env bash
# Queue engine benchmark (issue 6, src/broker/): throughput, latency, memory and restart.
#
#   bench/broker/run.sh
#
# Environment:
#   PRODUCERS=64   producer threads of the send test (one send in flight each, fsync=always)
#   DURATION=10    seconds of the send test and of the latency test
#   BYTES=1024     message size of the send test
#   RATE=1000      messages per second of the latency test
#   COUNT=10000000 messages stored for the memory and restart test (64 bytes, fsync=never)
#   COUNT_1K=1000000 messages of 1 KiB for the restart test with about 1 GiB of log
#   DATA_DIR=...   where the files go (default under $TMPDIR or /tmp)
#   BUILD_WAIT=1800 seconds to wait for running builds and tests before each measurement
#
# Prints a markdown table with the issue's targets. Exits 1 when a run failed.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
PRODUCERS=${PRODUCERS:-64}
DURATION=${DURATION:-10}
BYTES=${BYTES:-1024}
RATE=${RATE:-1000}
COUNT=${COUNT:-10000000}
COUNT_1K=${COUNT_1K:-1000000}
# shellcheck disable=SC2034 # read by wait_quiet (lib.sh)
build_wait=${BUILD_WAIT:-1800}
# shellcheck source=bench/lib.sh
source "$here/../lib.sh"

lib="$root/build/release/libswitchboard.a"
if [[ ! -f $lib ]]; then
  cmake -S "$root" -B "$root/build/release" -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=gcc >/dev/null
  cmake --build "$root/build/release" -j2 --target switchboard_static >&2
fi
tmp=$(mktemp -d "${DATA_DIR:-${TMPDIR:-/tmp}}/sb-bench-broker.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# shellcheck disable=SC2046 # pkg-config prints several words on purpose
cc -O2 -std=c17 -D_GNU_SOURCE -I"$root/src" -I"$root/include" -I"$root/build/release/include" \
  -o "$tmp/queue_bench" "$here/queue_bench.c" "$lib" \
  $(pkg-config --libs libuv libnghttp2 openssl libprotobuf-c zlib) -lpthread -lm
bench=$tmp/queue_bench
kv() { tr ' ' '\n' <<<"$2" | awk -F= -v k="$1" '$1 == k { print $2 }'; }

wait_quiet
log "run.sh: send: $PRODUCERS producers, ${BYTES}-byte messages, fsync=always, ${DURATION}s; then receive+delete"
send=$("$bench" send "$tmp/send" "$PRODUCERS" "$DURATION" "$BYTES")
log "run.sh: $send"
rm -rf "$tmp/send"
wait_quiet
log "run.sh: latency: $RATE msg/s for ${DURATION}s, one long-polling consumer"
lat=$("$bench" latency "$tmp/lat" "$RATE" "$DURATION")
log "run.sh: $lat"
rm -rf "$tmp/lat"
wait_quiet
log "run.sh: memory and restart with $COUNT stored messages"
rss=$("$bench" rss "$tmp/rss" "$COUNT")
log "run.sh: $rss"
rm -rf "$tmp/rss"
wait_quiet
log "run.sh: restart with $COUNT_1K stored 1 KiB messages"
big=$("$bench" rss "$tmp/big" "$COUNT_1K" 1024)
log "run.sh: $big"
rm -rf "$tmp/big"
gib() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1073741824 }'; }

cat <<TABLE
| queue engine ($(nproc) cores) | measured | target |
|---|---|---|
| durable sends/s, $PRODUCERS producers, ${BYTES} B, fsync=always | $(kv sends_per_s "$send") | ≥ 100,000 (issue 6) |
| receive+delete/s (16 consumers, batches of 10) | $(kv recv_delete_per_s "$send") | — |
| send-to-deliver latency p50 / p99 (µs) at $RATE msg/s | $(kv p50_us "$lat") / $(kv p99_us "$lat") | — |
| RAM per stored message ($(kv stored "$rss") messages) | $(kv rss_bytes_per_msg "$rss") B | ≤ 64 B |
| restart, $(kv stored "$big") × 1 KiB messages ($(gib "$(kv log_bytes "$big")") GiB of log): clean (index snapshot) / full replay | $(kv restart_s "$big") / $(kv replay_s "$big") s | ≤ 1 s |
| restart, $(kv stored "$rss") × 64 B messages ($(gib "$(kv log_bytes "$rss")") GiB of log): clean / full replay | $(kv restart_s "$rss") / $(kv replay_s "$rss") s | ≤ 1 s per GiB |
TABLE
