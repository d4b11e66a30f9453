#!/usr/bin/env bash
# tRPC benchmark (issue 5): the items example of switchboard (tRPC from items.proto and C
# handlers) against the same procedures served by @trpc/server v11 (standalone adapter + zod,
# tests/interop/node/trpc_reference.mjs, which the wire tests also compare against), in one run.
#
#   bench/trpc/run.sh
#
# Environment:
#   DURATION=10                     seconds per load test (wrk -d)
#   SERVERS="trpc switchboard"      which servers to run
#   KEEP_TMP=1                      keep the temp dir (logs, raw wrk output) after the run
#   BUILD_WAIT=1800                 at most this many seconds to wait for others' builds/tests
#
# Per server, after item 1 is created with the createItem mutation and 1 s of discarded
# warm-up, `wrk -t2 -c64 -d${DURATION}s --latency` on
#   single: GET /trpc/getItem?input={"id":1}                      (httpLink's query)
#   batch:  GET /trpc/getItem,...(10 times)?batch=1&input={"0":{"id":1},...,"9":{"id":1}}
#           (httpBatchLink's request for ten queries in one tick: one HTTP request)
# The servers: switchboard = build/release/examples/items --threads 2 --log-level warn;
# trpc = one Node process (@trpc/server's standalone adapter is a single http.Server).
# Prints a markdown table (req/s, p50/p99, the ratio) and the issue's target. Exits 1 when a
# server answered wrongly before or after the load, or wrk saw errors.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
DURATION=${DURATION:-10}
SERVERS=${SERVERS:-"trpc switchboard"}
items_bin="$root/build/release/examples/items"
reference="$root/tests/interop/node/trpc_reference.mjs"
item_json='{"result":{"data":{"id":1,"name":"lamp","price":12.5}}}'

# shellcheck source=bench/lib.sh
source "$here/../lib.sh"

[[ $DURATION =~ ^[0-9]+$ && $DURATION -gt 0 ]] || die "DURATION must be a positive integer"
"$root/scripts/deps.sh" bench
command -v wrk >/dev/null || die "wrk not found after scripts/deps.sh bench"
"$root/scripts/node-deps.sh"
if want switchboard && [[ ! -x $items_bin ]]; then
  log "run.sh: $items_bin missing, running make build"
  make -C "$root" build >&2
fi

tmp=$(mktemp -d /tmp/sb-bench-trpc.XXXXXX)
pids=()
odd=()
failed=0
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
  local rc=$? p
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [[ ${KEEP_TMP:-0} == 1 || $rc -ne 0 || ${#odd[@]} -gt 0 ]]; then
    log "run.sh: temp dir kept: $tmp"
  else
    rm -rf "$tmp"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

picked=()
declare -A PORT
pick_port; PORT[trpc]=$port
pick_port; PORT[switchboard]=$port
build_wait=${BUILD_WAIT:-1800}

# The two request targets; %7B... is the URL-encoded JSON input, as @trpc/client sends it.
single='/trpc/getItem?input=%7B%22id%22%3A1%7D'
batch_paths=$(printf 'getItem,%.0s' {1..10})
batch_input=$(for i in {0..9}; do printf '%%22%d%%22%%3A%%7B%%22id%%22%%3A1%%7D%%2C' "$i"; done)
batch="/trpc/${batch_paths%,}?batch=1&input=%7B${batch_input%\%2C}%7D"
declare -A TARGET=([single]=$single [batch]=$batch)
tests=(single batch)

start() { # name; sets srv_pid
  local name=$1 port=${PORT[$1]}
  mkdir -p "$tmp/$name"
  case $name in
    trpc) (cd "$root" && exec node "$reference" "$port") >"$tmp/$name/server.log" 2>&1 & ;;
    switchboard) "$items_bin" --http "127.0.0.1:$port" --threads 2 --log-level warn >"$tmp/$name/server.log" 2>&1 & ;;
  esac
  srv_pid=$!
  pids+=("$srv_pid")
  wait_listening "$srv_pid" "$port" || die "$name did not start: $(cat "$tmp/$name/server.log")"
}

answer() { # url [body] -> sets c_body (and c_status)
  local args=(-sS -o "$tmp/body" -w '%{http_code}')
  [[ -n ${2-} ]] && args+=(-H 'content-type: application/json' --data-binary "$2")
  c_status=$(curl "${args[@]}" "$1" 2>/dev/null) || c_status=000
  c_body=$(cat "$tmp/body" 2>/dev/null || true)
}

check() { # name
  local base="http://127.0.0.1:${PORT[$1]}"
  answer "$base$single"
  [[ $c_status == 200 && $c_body == "$item_json" ]] || { fail "$1: getItem answered $c_status $c_body"; return 1; }
  answer "$base$batch"
  [[ $c_status == 200 && $c_body == "[$item_json$(printf ",$item_json%.0s" {1..9})]" ]] ||
    { fail "$1: the batch answered $c_status ${c_body:0:200}"; return 1; }
}

# Another benchmark's load generator on the same 2 cores would halve both results: wait for
# it too (lib.sh's wait_quiet waits for builds and test runs only).
wait_no_load() {
  local i
  for ((i = 0; i < build_wait; i += 10)); do
    pgrep -x 'wrk|h2load|ghz' >/dev/null 2>&1 || return 0
    log "run.sh: another load generator is running ($(pgrep -x 'wrk|h2load|ghz' | head -3 | xargs -r ps -o comm= -p | paste -sd, -)); waiting"
    sleep 10
  done
  odd+=("another benchmark's load generator was running during the benchmark")
}

declare -A R
bench_server() { # name
  local name=$1 base="http://127.0.0.1:${PORT[$1]}" t rc=0
  start "$name"
  answer "$base/trpc/createItem" '{"name":"lamp","price":12.5}'
  check "$name" || { stop_server "$srv_pid" || true; return 0; }
  for t in "${tests[@]}"; do
    wait_quiet
    wait_no_load
    run_bg wrk -t2 -c64 -d1s "$base${TARGET[$t]}" >/dev/null 2>&1 || true
    log "run.sh: $name: wrk $t for ${DURATION}s"
    other_cpu=0 srv_ticks=0 gen_pct=0 other_top=''
    if measured "$srv_pid" wrk -t2 -c64 -d"${DURATION}s" --latency "$base${TARGET[$t]}" >"$tmp/$name.$t.wrk.txt" 2>&1; then
      read -r "R[$name.$t.rps]" "R[$name.$t.p50]" "R[$name.$t.p99]" "R[$name.$t.err]" "R[$name.$t.n]" \
        < <(parse_wrk "$tmp/$name.$t.wrk.txt") || true
    fi
    [[ -n ${R[$name.$t.rps]-} ]] || fail "$name: the wrk $t run failed (see $tmp/$name.$t.wrk.txt)"
    R[$name.$t.other]=$other_cpu R[$name.$t.srv]=$srv_ticks
    ((other_cpu <= 15)) || odd+=("$name $t: other processes used $other_cpu% of a core (${other_top:-short-lived}); numbers skewed")
    if ((${R[$name.$t.err]:-0} != 0)); then
      # Node's pauses can outlast wrk's 2 s timeout under load: a fact about the reference to
      # report, not a wrong answer; from switchboard any error fails the run.
      if [[ $name == trpc ]]; then
        odd+=("trpc: wrk $t saw ${R[$name.$t.err]} errors/timeouts (see $tmp/$name.$t.wrk.txt)")
      else
        fail "$name: wrk $t saw ${R[$name.$t.err]} errors/non-2xx"
      fi
    fi
  done
  check "$name" || true
  stop_server "$srv_pid" || rc=$?
  [[ $rc -eq 0 ]] || fail "$name exited with status $rc on SIGTERM"
}

wait_quiet
log "run.sh: $(nproc) cores; ports trpc=${PORT[trpc]} switchboard=${PORT[switchboard]}; temp dir $tmp"
for s in trpc switchboard; do
  if want "$s"; then bench_server "$s"; fi
done

pkg_version() { sed -n 's/^  "version": "\(.*\)",$/\1/p' "$root/node_modules/$1/package.json" 2>/dev/null | head -1; }
# shellcheck disable=SC2016 # the backquotes are markdown
printf '\ntRPC benchmark: %s, %s cores (%s), `wrk -t2 -c64 -d%ss --latency`, @trpc/server %s + zod %s on Node %s; switchboard %s\n\n' \
  "$(date -u '+%Y-%m-%d %H:%M UTC')" "$(nproc)" "$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -1)" \
  "$DURATION" "$(pkg_version @trpc/server)" "$(pkg_version zod)" "$(node -v)" \
  "$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)"
declare -A T_NAME=([single]='`getItem` query (httpLink GET)' [batch]='10 × `getItem`, one batch request')
printf '| test | @trpc/server req/s | switchboard req/s | sb/trpc | @trpc/server p50/p99 | switchboard p50/p99 | server CPU/req trpc / sb |\n'
printf '|---|---:|---:|---:|---:|---:|---:|\n'
for t in "${tests[@]}"; do
  printf '| %s | %s | %s | %s | %s | %s | %s / %s |\n' "${T_NAME[$t]}" \
    "$(fmt_rps "$(val "trpc.$t.rps")")" "$(fmt_rps "$(val "switchboard.$t.rps")")" \
    "$(ratio "$(val "trpc.$t.rps")" "$(val "switchboard.$t.rps")")" \
    "$(lat "$(val "trpc.$t.p50")" "$(val "trpc.$t.p99")")" "$(lat "$(val "switchboard.$t.p50")" "$(val "switchboard.$t.p99")")" \
    "$(us_per_req "$(val "trpc.$t.srv")" "$(val "trpc.$t.n")")" "$(us_per_req "$(val "switchboard.$t.srv")" "$(val "switchboard.$t.n")")"
done
printf '\n| target (issue 5) | switchboard | result |\n|---|---:|---|\n'
for t in "${tests[@]}"; do
  printf '| %s: req/s >= 20x @trpc/server | %s | %s |\n' "$t" "$(ratio "$(val "trpc.$t.rps")" "$(val "switchboard.$t.rps")")" \
    "$(verdict "$(cmp_expr "$(val "switchboard.$t.rps")" "$(awk -v v="$(val "trpc.$t.rps")" 'BEGIN { if (v != "") print v * 20 }')" '>=')")"
  printf '| %s: p99 <= @trpc/server p99 | %s ms (trpc %s ms) | %s |\n' "$t" "$(val "switchboard.$t.p99")" "$(val "trpc.$t.p99")" \
    "$(verdict "$(cmp_expr "$(val "switchboard.$t.p99")" "$(val "trpc.$t.p99")" '<=')")"
done
printf '\nNotes:\n- switchboard: 2 event loops (--threads 2); @trpc/server: one Node process (its standalone adapter, no cluster), so at most one core\n- wrk and both servers share the %s cores; other processes'"'"' CPU during the tests: trpc %s / %s, switchboard %s / %s (single / batch)\n' \
  "$(nproc)" "$(pct "$(val trpc.single.other)")" "$(pct "$(val trpc.batch.other)")" \
  "$(pct "$(val switchboard.single.other)")" "$(pct "$(val switchboard.batch.other)")"
if ((${#odd[@]})); then
  printf '\nWarnings:\n'
  printf -- '- %s\n' "${odd[@]}"
fi
exit "$failed"
