#!/usr/bin/env bash
# gRPC benchmark (issue 4): items.v1.ItemService/GetItem (unary) and WatchItems (server
# streaming) on switchboard's items example, on a gRPC C++ server and on a Python grpcio server,
# side by side in one run, all over h2c on loopback.
#
#   bench/grpc/run.sh
#
# Environment:
#   DURATION=10        seconds per load test (h2load -D), after 1 s of warm-up (--warm-up-time)
#   SERVERS="cpp python switchboard"   which servers to run
#   NITEMS=100         items in each store; one WatchItems(since_id=0) call streams them all
#   KEEP_TMP=1         keep the temp dir (logs, raw h2load output) after the run
#   BUILD_WAIT=1800    at most this many seconds to wait for builds/tests of others to end
#
# The servers (each with the same NITEMS items, "item-<id>", price <id>.5):
#   switchboard  build/release/examples/items --threads 2 --log-level warn (built with
#                `make build` when missing), seeded through gRPC CreateItem by check.py.
#   cpp          bench/grpc/items_server.cc on Debian's libgrpc++ (GetItem on the callback API,
#                WatchItems on the sync API), built here into build/bench-grpc/ with stubs
#                that protoc + grpc_cpp_plugin generate from examples/items/items.proto.
#   python       bench/grpc/items_server.py on Debian's grpcio (grpc.aio).
# Before the load, check.py (grpcio) checks each server's answers (GetItem(1), an absent id's
# NOT_FOUND, WatchItems' items), and every server must return the same GetItem(1) bytes.
# The load: `h2load -c16 -m64` posting one framed GetItemRequest{id: 1} with gRPC's headers,
# and `h2load -c4 -m16` posting WatchItemsRequest{} (NITEMS messages per call). h2load checks
# HTTP statuses only, so the script also checks the DATA bytes h2load received: at least the
# bytes of a successful answer per request (an error would be a Trailers-Only answer with none).
# p50/p99 come from h2load's per-request log. Prints markdown tables; exits 1 when a server
# misbehaved (a wrong answer, failed requests, a crash, a bad exit status), 0 otherwise.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
DURATION=${DURATION:-10}
SERVERS=${SERVERS:-"cpp python switchboard"}
NITEMS=${NITEMS:-100}
items_bin="$root/build/release/examples/items"
cpp_dir="$root/build/bench-grpc"
cpp_bin="$cpp_dir/items_server"
py=/usr/bin/python3 # Debian's, with python3-grpcio and python3-grpc-tools
UNARY=(-c16 -m64)
STREAM=(-c4 -m16)

# shellcheck source=bench/lib.sh
source "$here/../lib.sh"

[[ $DURATION =~ ^[0-9]+$ && $DURATION -gt 0 ]] || die "DURATION must be a positive integer"
[[ $NITEMS =~ ^[0-9]+$ && $NITEMS -gt 0 ]] || die "NITEMS must be a positive integer"

"$root/scripts/deps.sh" bench
for tool in h2load protoc grpc_cpp_plugin g++ pkg-config; do
  command -v "$tool" >/dev/null || die "$tool not found after scripts/deps.sh bench"
done
if want switchboard && [[ ! -x $items_bin ]]; then
  log "run.sh: $items_bin missing, running make build"
  make -C "$root" build >&2
fi

# --- processes and cleanup ----------------------------------------------------------------
tmp=$(mktemp -d /tmp/sb-bench-grpc.XXXXXX)
pids=()
odd=()   # warnings for the report (the temp dir is kept when there are any)
failed=0 # a server misbehaved
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local p
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

build_wait=${BUILD_WAIT:-1800} # read by wait_quiet (lib.sh)

# The request bodies: one length-prefixed message each (flag 0, 4-byte big-endian length).
printf '\x00\x00\x00\x00\x02\x08\x01' >"$tmp/get.bin" # GetItemRequest{id: 1}: field 1 varint 1
printf '\x00\x00\x00\x00\x00' >"$tmp/watch.bin"       # WatchItemsRequest{}: empty

# --- stubs and the C++ server -------------------------------------------------------------
# items.proto imports switchboard's option protos: they are compiled too (descriptors only).
gen="$tmp/gen"
mkdir -p "$gen"
protos=(items.proto google/api/annotations.proto google/api/http.proto switchboard/options.proto
        switchboard/validate.proto)
incs=(-I "$root/examples/items" -I "$root/proto" -I /usr/include)
"$py" -m grpc_tools.protoc "${incs[@]}" --python_out="$gen" --grpc_python_out="$gen" "${protos[@]}" ||
  die "grpc_tools.protoc failed"
if want cpp; then
  # Rebuilt only when a source is newer than the binary (a build takes ~30 s on 2 cores).
  stale=0
  [[ -x $cpp_bin ]] || stale=1
  for f in "$here/items_server.cc" "$root/examples/items/items.proto" "$root"/proto/switchboard/*.proto; do
    [[ $f -nt $cpp_bin ]] && stale=1
  done
  if ((stale)); then
    wait_quiet
    log "run.sh: building $cpp_bin"
    mkdir -p "$cpp_dir/gen"
    protoc "${incs[@]}" --cpp_out="$cpp_dir/gen" --grpc_out="$cpp_dir/gen" \
      --plugin=protoc-gen-grpc="$(command -v grpc_cpp_plugin)" items.proto
    protoc "${incs[@]}" --cpp_out="$cpp_dir/gen" "${protos[@]:1}"
    # shellcheck disable=SC2046 # pkg-config's flags are words
    g++ -std=c++17 -O2 -DNDEBUG -I "$cpp_dir/gen" "$here/items_server.cc" "$cpp_dir"/gen/*.pb.cc \
      "$cpp_dir"/gen/google/api/*.pb.cc "$cpp_dir"/gen/switchboard/*.pb.cc -o "$cpp_bin" \
      $(pkg-config --cflags --libs grpc++ protobuf) || die "building $cpp_bin failed"
  fi
fi

# --- the servers --------------------------------------------------------------------------
picked=()
declare -A PORT
for s in cpp python switchboard; do pick_port; PORT[$s]=$port; done

# As lib.sh's wait_listening, but an IPv6 socket counts too: gRPC C++ binds 127.0.0.1 through
# a dual-stack socket (::ffff:127.0.0.1), which /proc/net/tcp6 lists.
wait_listening46() { # pid port
  local i hex
  hex=$(printf '%04X' "$2")
  for ((i = 0; i < 200; i++)); do
    is_alive "$1" || return 1
    awk -v h=":$hex" 'NR > 1 && substr($2, length($2) - 4) == h && $4 == "0A" { f = 1 } END { exit !f }' \
      /proc/net/tcp /proc/net/tcp6 && return 0
    sleep 0.05
  done
  return 1
}

start_server() { # name; sets srv_pid
  local name=$1 dir="$tmp/$1" port=${PORT[$1]}
  mkdir -p "$dir"
  case $name in
    cpp) "$cpp_bin" "$port" "$NITEMS" >"$dir/server.log" 2>&1 & ;;
    python) PYTHONPATH="$gen" "$py" "$here/items_server.py" "$port" "$NITEMS" >"$dir/server.log" 2>&1 & ;;
    switchboard) "$items_bin" --http "127.0.0.1:$port" --threads 2 --log-level warn >"$dir/server.log" 2>&1 & ;;
  esac
  srv_pid=$!
  pids+=("$srv_pid")
  wait_listening46 "$srv_pid" "$port" || die "$name did not start: $(cat "$dir/server.log")"
}

check() { # name -> sets get_hex, get_data, watch_data; returns 1 on a wrong answer
  local out
  if ! out=$(PYTHONPATH="$gen" "$py" "$here/check.py" check "127.0.0.1:${PORT[$1]}" "$NITEMS" 2>&1); then
    fail "$1: $out"
    return 1
  fi
  read -r get_hex get_data watch_data <<<"$out"
}

# h2load output $1 -> "req/s succeeded failed data_bytes"
parse_h2load() {
  awk '/^finished in/ { rps = $4 }
       /^requests:/ { ok = $8; bad = $10 + $12 + $14 }
       /^traffic:/ { for (i = 1; i <= NF; i++) if ($i == "data") { d = $(i - 1); gsub(/[()]/, "", d) } }
       END { print (rps == "" ? 0 : rps), ok + 0, bad + 0, d + 0 }' "$1"
}

# h2load --log-file $1 (start_us, status, duration_us) -> "p50_ms p99_ms"
percentiles() {
  awk '{ print $3 }' "$1" | sort -n | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print "nan nan"; exit }
    i50 = int(NR * 0.50); if (i50 < 1) i50 = 1; i99 = int(NR * 0.99); if (i99 < 1) i99 = 1
    printf "%.2f %.2f\n", v[i50] / 1000, v[i99] / 1000 }'
}

declare -A R
ref_hex=""
bench_server() { # name
  local name=$1 url="http://127.0.0.1:${PORT[$1]}/items.v1.ItemService" rc t
  start_server "$name"
  if [[ $name == switchboard ]] &&
    ! PYTHONPATH="$gen" "$py" "$here/check.py" seed "127.0.0.1:${PORT[$name]}" "$NITEMS" >"$tmp/$name/seed.txt" 2>&1; then
    fail "switchboard: seeding failed: $(cat "$tmp/$name/seed.txt")"
  fi
  if ! check "$name"; then
    stop_server "$srv_pid" || true
    return 0
  fi
  if [[ -z $ref_hex ]]; then
    ref_hex=$get_hex
  elif [[ $get_hex != "$ref_hex" ]]; then
    fail "$name: GetItem(1) answered bytes $get_hex, the first server $ref_hex"
  fi
  R[$name.get.want]=$get_data R[$name.watch.want]=$watch_data
  for t in get watch; do
    local -a args=("${UNARY[@]}") method=GetItem body="$tmp/get.bin"
    [[ $t == watch ]] && args=("${STREAM[@]}") method=WatchItems body="$tmp/watch.bin"
    wait_quiet
    log "run.sh: $name: h2load ${args[*]} $method for ${DURATION}s"
    other_cpu=0 other_top='' srv_ticks=0 gen_pct=0
    measured "$srv_pid" h2load "${args[@]}" -D "$DURATION" --warm-up-time=1 \
      -H 'content-type: application/grpc' -H 'te: trailers' -d "$body" \
      --log-file="$tmp/$name.$t.log" "$url/$method" >"$tmp/$name.$t.h2load.txt" 2>&1 ||
      fail "$name: h2load $t exited non-zero (see $tmp/$name.$t.h2load.txt)"
    read -r "R[$name.$t.rps]" "R[$name.$t.n]" "R[$name.$t.bad]" "R[$name.$t.data]" \
      < <(parse_h2load "$tmp/$name.$t.h2load.txt")
    read -r "R[$name.$t.p50]" "R[$name.$t.p99]" < <(percentiles "$tmp/$name.$t.log")
    R[$name.$t.srv]=$srv_ticks R[$name.$t.gen]=$gen_pct R[$name.$t.other]=$other_cpu
    ((${R[$name.$t.bad]} == 0)) || fail "$name: ${R[$name.$t.bad]} failed/errored $t requests"
    # Every counted request must have brought a whole successful answer. (h2load's traffic
    # line also counts the warm-up's bytes and the streams cut off at the end: a lower bound.)
    local want=${R[$name.$t.want]} data=${R[$name.$t.data]} n=${R[$name.$t.n]}
    if ((n == 0 || data < n * want)); then
      fail "$name: $t: h2load received $data DATA bytes for $n requests, expected at least $want bytes per request"
    fi
    ((other_cpu <= 15)) ||
      odd+=("$name $t: other processes used $other_cpu% of a core during the test (${other_top:-short-lived processes}); the numbers are skewed")
  done
  is_alive "$srv_pid" || fail "$name died during the load tests"
  check "$name" || true
  rc=0
  stop_server "$srv_pid" || rc=$?
  [[ $rc -eq 0 ]] || fail "$name exited with status $rc on SIGTERM (log: $tmp/$name/server.log)"
  if grep -qiE 'level=(error|fatal)|sanitizer|runtime error|Traceback' "$tmp/$name/server.log"; then
    fail "$name logged errors: $(grep -hiE 'level=(error|fatal)|sanitizer|runtime error|Traceback' "$tmp/$name/server.log" | head -3 | tr '\n' ' ')"
  fi
}

wait_quiet
log "run.sh: $(nproc) cores, $(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -1)"
log "run.sh: ports cpp=${PORT[cpp]} python=${PORT[python]} switchboard=${PORT[switchboard]}; temp dir $tmp"
load0=$(cut -d' ' -f1-3 /proc/loadavg)
for s in cpp python switchboard; do
  if want "$s"; then bench_server "$s"; fi
done

# --- report -------------------------------------------------------------------------------
ver_grpc=$(pkg-config --modversion grpc++ 2>/dev/null || echo "?")
ver_py=$("$py" -c 'import grpc; print(grpc.__version__)' 2>/dev/null || echo "?")
# shellcheck disable=SC2016 # the backquotes are markdown
printf '\ngRPC benchmark: %s, %s cores (%s), h2load %s, %ss per test after 1 s warm-up; gRPC C++ %s, grpcio %s; load average before: %s\n\n' \
  "$(date -u '+%Y-%m-%d %H:%M UTC')" "$(nproc)" "$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -1)" \
  "$(h2load --version 2>/dev/null | awk '{ print $2; exit }')" "$DURATION" "$ver_grpc" "$ver_py" "$load0"
if want switchboard; then
  printf 'switchboard: %s built %s; source %s\n\n' "${items_bin#"$root"/}" \
    "$(date -u -r "$items_bin" '+%Y-%m-%d %H:%M UTC')" \
    "$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)"
fi
msgs() { [[ -n ${1-} ]] && awk -v v="$1" -v n="$NITEMS" 'BEGIN { printf "%.0f", v * n }' || echo "-"; }
declare -A T_NAME=([get]="unary GetItem (\`h2load ${UNARY[*]}\`), req/s" [watch]="server streaming WatchItems, $NITEMS msgs/call (\`h2load ${STREAM[*]}\`), calls/s")
printf '| test | C++ | Python | switchboard | sb/C++ | sb/Python | C++ p50/p99 | Python p50/p99 | switchboard p50/p99 |\n'
printf '|---|---:|---:|---:|---:|---:|---:|---:|---:|\n'
for t in get watch; do
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "${T_NAME[$t]}" \
    "$(fmt_rps "$(val "cpp.$t.rps")")" "$(fmt_rps "$(val "python.$t.rps")")" "$(fmt_rps "$(val "switchboard.$t.rps")")" \
    "$(ratio "$(val "cpp.$t.rps")" "$(val "switchboard.$t.rps")")" "$(ratio "$(val "python.$t.rps")" "$(val "switchboard.$t.rps")")" \
    "$(lat "$(val "cpp.$t.p50")" "$(val "cpp.$t.p99")")" "$(lat "$(val "python.$t.p50")" "$(val "python.$t.p99")")" \
    "$(lat "$(val "switchboard.$t.p50")" "$(val "switchboard.$t.p99")")"
done
printf '| server-streaming messages/s | %s | %s | %s | %s | %s | | | |\n' \
  "$(msgs "$(val cpp.watch.rps)")" "$(msgs "$(val python.watch.rps)")" "$(msgs "$(val switchboard.watch.rps)")" \
  "$(ratio "$(val cpp.watch.rps)" "$(val switchboard.watch.rps)")" "$(ratio "$(val python.watch.rps)" "$(val switchboard.watch.rps)")"

printf '\n| CPU | C++ | Python | switchboard |\n|---|---:|---:|---:|\n'
for t in get watch; do
  printf '| server CPU per call, %s | %s | %s | %s |\n' "$t" \
    "$(us_per_req "$(val "cpp.$t.srv")" "$(val "cpp.$t.n")")" "$(us_per_req "$(val "python.$t.srv")" "$(val "python.$t.n")")" \
    "$(us_per_req "$(val "switchboard.$t.srv")" "$(val "switchboard.$t.n")")"
done
printf '| h2load CPU (%% of one core), get / watch | %s / %s | %s / %s | %s / %s |\n' \
  "$(pct "$(val cpp.get.gen)")" "$(pct "$(val cpp.watch.gen)")" "$(pct "$(val python.get.gen)")" "$(pct "$(val python.watch.gen)")" \
  "$(pct "$(val switchboard.get.gen)")" "$(pct "$(val switchboard.watch.gen)")"
printf '| other processes'"'"' CPU during the tests, get / watch | %s / %s | %s / %s | %s / %s |\n' \
  "$(pct "$(val cpp.get.other)")" "$(pct "$(val cpp.watch.other)")" "$(pct "$(val python.get.other)")" "$(pct "$(val python.watch.other)")" \
  "$(pct "$(val switchboard.get.other)")" "$(pct "$(val switchboard.watch.other)")"

printf '\n| target (issue 4) | switchboard | result |\n|---|---:|---|\n'
printf '| unary req/s >= 1.5x gRPC C++ | %s | %s |\n' "$(ratio "$(val cpp.get.rps)" "$(val switchboard.get.rps)")" \
  "$(verdict "$([[ -n $(val cpp.get.rps) && -n $(val switchboard.get.rps) ]] && echo "$(val switchboard.get.rps) >= 1.5 * $(val cpp.get.rps)")")"
printf '| unary p99 <= gRPC C++ p99 | %s | %s |\n' \
  "$([[ -n $(val switchboard.get.p99) ]] && echo "$(val switchboard.get.p99) ms (C++ $(val cpp.get.p99) ms)" || echo -)" \
  "$(verdict "$(cmp_expr "$(val switchboard.get.p99)" "$(val cpp.get.p99)" '<=')")"

printf '\nNotes:\n'
printf -- '- servers: switchboard = build/release/examples/items --threads 2 (2 event loops, a mutex-guarded store); C++ = gRPC C++ defaults (callback API for GetItem, its own thread pools); Python = one grpc.aio process\n'
printf -- '- h2load (one thread) and the servers share the %s cores; h2load checks HTTP statuses only, so the DATA bytes it received were checked against whole successful answers\n' "$(nproc)"
if ((${#odd[@]})); then
  printf '\nWarnings:\n'
  printf -- '- %s\n' "${odd[@]}"
fi
exit "$failed"
