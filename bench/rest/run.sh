#!/usr/bin/env bash
# REST benchmark (issue 3): the items example of switchboard (REST/JSON from items.proto and C
# handlers) against the same two routes in Hono on Node and against fixed answers from nginx,
# side by side in one run.
#
#   bench/rest/run.sh
#
# Environment:
#   DURATION=10          seconds per load test (wrk -d)
#   SERVERS="nginx hono switchboard"   which servers to run
#   KEEP_TMP=1           keep the temp dir (configs, logs, raw wrk output) after the run
#   BUILD_WAIT=1800      at most this many seconds to wait for builds/tests of others to end
#
# Per server: `wrk -t2 -c64 -d${DURATION}s --latency` on GET /items/1 and on POST /items
# (bench/rest/post.lua: JSON body {"name":"lamp","price":12.5}), each after 1 s of discarded
# warm-up. The servers:
#   switchboard  build/release/examples/items --threads 2 --log-level warn (item 1 created by
#                curl first); real routing, JSON decoding and encoding, a mutex-guarded store.
#   hono         bench/rest/hono-items.mjs on @hono/node-server: one Node process, a Map.
#   nginx        bench/rest/nginx.conf.in, 2 workers: fixed JSON bodies, the POST body is
#                discarded, not parsed.
# Prints markdown tables (req/s, ratios, p50/p99, server CPU per request, the targets of
# issue 3). Exits 1 when a server misbehaved (wrong answer before the load, errors or non-2xx
# under load, a crash, a bad exit status), 0 otherwise; the tables are printed either way.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
DURATION=${DURATION:-10}
SERVERS=${SERVERS:-"nginx hono switchboard"}
items_bin="$root/build/release/examples/items"
item_json='{"id":1,"name":"lamp","price":12.5}'

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

[[ $DURATION =~ ^[0-9]+$ && $DURATION -gt 0 ]] || die "DURATION must be a positive integer"

"$root/scripts/deps.sh" bench
for tool in wrk nginx curl; do
  command -v "$tool" >/dev/null || die "$tool not found after scripts/deps.sh bench"
done
if want hono; then
  "$root/scripts/node-deps.sh"
  command -v node >/dev/null || die "node not found after scripts/node-deps.sh"
fi
if want switchboard && [[ ! -x $items_bin ]]; then
  log "run.sh: $items_bin missing, running make build"
  make -C "$root" build >&2
fi

# The example's store holds ITEMS_MAX items (examples/items/main.c: 8M, address space touched
# only as items come); wrk's POST test creates about a million in 10 s, well within it.
build_items_bench() { # sets items_post_bin
  items_post_bin=$items_bin
}

# --- processes and cleanup ----------------------------------------------------------------
tmp=$(mktemp -d /tmp/sb-bench-rest.XXXXXX)
pids=()
odd=()   # warnings for the report (the temp dir is kept when there are any)
failed=0 # a server misbehaved
notes=() # facts worth knowing when reading the numbers
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

picked=()

declare -A PORT
pick_port; PORT[nginx]=$port
pick_port; PORT[hono]=$port
pick_port; PORT[switchboard]=$port

# --- a quiet machine ----------------------------------------------------------------------
build_wait=${BUILD_WAIT:-1800} # read by wait_quiet (lib.sh)

# --- the servers --------------------------------------------------------------------------
start_server() { # name; sets srv_pid
  local name=$1 dir="$tmp/$1" port=${PORT[$1]}
  mkdir -p "$dir"
  case $name in
    nginx)
      sed -e "s|@TMP@|$dir|g" -e "s|@PORT@|$port|g" "$here/nginx.conf.in" >"$dir/nginx.conf"
      nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" >"$dir/server.log" 2>&1 &
      ;;
    hono)
      (cd "$root" && exec node "$here/hono-items.mjs" "$port") >"$dir/server.log" 2>&1 &
      ;;
    switchboard)
      "${sb_exe:-$items_bin}" --http "127.0.0.1:$port" --threads 2 --log-level warn >"$dir/server.log" 2>&1 &
      ;;
  esac
  srv_pid=$!
  pids+=("$srv_pid")
  wait_listening "$srv_pid" "$port" || die "$name did not start: $(cat "$dir"/*.log 2>/dev/null)"
  if [[ $name == nginx ]]; then # the workers are forked after the listener is bound
    local i
    for ((i = 0; i < 100; i++)); do
      [[ $(all_stat | awk -v pp="$srv_pid" '{ sub(/^.*\) /, ""); if ($2 == pp) n++ } END { print n + 0 }') -ge 2 ]] && break
      sleep 0.05
    done
  fi
}

# curl METHOD URL [BODY] -> sets c_status, c_type, c_body
req() {
  local method=$1 url=$2 body=${3-} meta
  local args=(-sS -o "$tmp/curl.body" -w '%{http_code} %{content_type}' -X "$method")
  [[ -n $body ]] && args+=(-H 'Content-Type: application/json' --data-binary "$body")
  meta=$(curl "${args[@]}" "$url" 2>"$tmp/curl.err") || meta="000 -"
  c_status=${meta%% *} c_type=${meta#* } c_body=$(cat "$tmp/curl.body" 2>/dev/null || true)
}
# The answers each server must give before it is loaded.
check_answers() { # name
  local name=$1 base="http://127.0.0.1:${PORT[$1]}" ok=1
  req POST "$base/items" '{"name":"lamp","price":12.5}'
  if [[ $c_status != 201 || $c_type != application/json* || $c_body != '{"id":'*'"name":"lamp","price":12.5}' ]]; then
    fail "$name: POST /items answered $c_status ($c_type) $c_body, expected 201 with the item"
    ok=0
  fi
  req GET "$base/items/1"
  if [[ $c_status != 200 || $c_type != application/json* || $c_body != "$item_json" ]]; then
    fail "$name: GET /items/1 answered $c_status ($c_type) $c_body, expected 200 $item_json"
    ok=0
  fi
  if [[ $name != nginx ]]; then # nginx has no store: it answers only /items/1
    req GET "$base/items/424242"
    if [[ $c_status != 404 || $c_type != application/json* ]]; then
      fail "$name: GET /items/424242 answered $c_status ($c_type) $c_body, expected a 404 JSON error"
      ok=0
    fi
  fi
  ((ok))
}

declare -A R # R[server.test.key] = value
tests=(get post)
declare -A T_ARGS=([get]="/items/1" [post]="/items")

bench_server() { # name
  local name=$1 base="http://127.0.0.1:${PORT[$1]}" rc t lua
  start_server "$name"
  if ! check_answers "$name"; then
    stop_server "$srv_pid" || true
    return 0
  fi
  for t in "${tests[@]}"; do
    if [[ $name == switchboard && $t == post && $items_post_bin != "$items_bin" ]]; then
      rc=0
      stop_server "$srv_pid" || rc=$?
      [[ $rc -eq 0 ]] || fail "switchboard (GET run) exited with status $rc on SIGTERM"
      mv "$tmp/switchboard/server.log" "$tmp/switchboard/server.get.log"
      sb_exe=$items_post_bin start_server switchboard
      check_answers switchboard || break
    fi
    lua=()
    [[ $t == post ]] && lua=(-s "$here/post.lua")
    wait_quiet
    # 1 s of discarded load first so every server is measured warm (V8's JIT included)
    run_bg wrk -t2 -c64 -d1s "${lua[@]}" "$base${T_ARGS[$t]}" >/dev/null 2>&1 || true
    log "run.sh: $name: wrk $t ${T_ARGS[$t]} for ${DURATION}s"
    other_cpu=0 other_top='' srv_ticks=0 gen_pct=0
    if measured "$srv_pid" wrk -t2 -c64 -d"${DURATION}s" --latency "${lua[@]}" "$base${T_ARGS[$t]}" >"$tmp/$name.$t.wrk.txt" 2>&1; then
      read -r "R[$name.$t.rps]" "R[$name.$t.p50]" "R[$name.$t.p99]" "R[$name.$t.err]" "R[$name.$t.n]" \
        < <(parse_wrk "$tmp/$name.$t.wrk.txt") || true
    fi
    [[ -n ${R[$name.$t.rps]-} ]] || fail "$name: the wrk $t run failed (see $tmp/$name.$t.wrk.txt)"
    R[$name.$t.srv]=$srv_ticks R[$name.$t.gen]=$gen_pct R[$name.$t.other]=$other_cpu
    ((other_cpu <= 15)) ||
      odd+=("$name $t: other processes used $other_cpu% of a core during the test (${other_top:-short-lived processes}); the numbers are skewed")
    if ((${R[$name.$t.err]:-0} != 0)); then
      # what the server answers now, to tell why (e.g. a full store)
      if [[ $t == post ]]; then req POST "$base/items" '{"name":"lamp","price":12.5}'; else req GET "$base/items/1"; fi
      fail "$name: wrk $t reported ${R[$name.$t.err]} errors/non-2xx of ${R[$name.$t.n]:-?} requests (see $tmp/$name.$t.wrk.txt); the same request now: $c_status $c_body"
    fi
  done
  is_alive "$srv_pid" || fail "$name died during the load tests"
  # still answering correctly after the load
  req GET "$base/items/1"
  [[ $c_status == 200 && $c_body == "$item_json" ]] ||
    fail "$name: after the load, GET /items/1 answered $c_status $c_body"
  rc=0
  stop_server "$srv_pid" || rc=$?
  # nginx's master exits 0 on SIGTERM; node exits 0 from its handler; switchboard drains and exits 0
  [[ $rc -eq 0 ]] || fail "$name exited with status $rc on SIGTERM (log: $tmp/$name/server.log)"
  if grep -qiE 'level=(error|fatal)|\[(emerg|alert|crit|error)\]|sanitizer|runtime error|Error:' \
    "$tmp/$name"/*.log 2>/dev/null; then
    fail "$name logged errors: $(grep -hiE 'level=(error|fatal)|\[(emerg|alert|crit|error)\]|sanitizer|runtime error|Error:' \
      "$tmp/$name"/*.log 2>/dev/null | head -3 | tr '\n' ' ')"
  fi
}

items_post_bin=$items_bin
want switchboard && build_items_bench
wait_quiet
log "run.sh: $(nproc) cores, $(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -1)"
log "run.sh: ports nginx=${PORT[nginx]} hono=${PORT[hono]} switchboard=${PORT[switchboard]}; temp dir $tmp"
for s in nginx hono switchboard; do
  if want "$s"; then bench_server "$s"; fi
done

# shellcheck disable=SC2016 # the backquotes are markdown
declare -A T_NAME=([get]='`GET /items/1`' [post]='`POST /items` (post.lua)')

ver_node=$(node -v 2>/dev/null || echo "node ?")
pkg_version() { sed -n 's/^  "version": "\(.*\)",$/\1/p' "$root/node_modules/$1/package.json" 2>/dev/null | head -1; }
ver_hono=$(pkg_version hono) ver_hns=$(pkg_version @hono/node-server)
# shellcheck disable=SC2016
printf '\nREST benchmark: %s, %s cores (%s), `wrk -t2 -c64 -d%ss --latency`, %s, %s, hono %s + @hono/node-server %s on Node %s\n\n' \
  "$(date -u '+%Y-%m-%d %H:%M UTC')" "$(nproc)" "$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -1)" \
  "$DURATION" "$(nginx -v 2>&1 | sed 's/^nginx version: //')" "$(wrk -v 2>&1 | awk 'NR == 1 { print $1, $2 }')" \
  "$ver_hono" "$ver_hns" "$ver_node"
if want switchboard; then
  printf 'switchboard: %s built %s; source %s\n\n' "${items_bin#"$root"/}" \
    "$(date -u -r "$items_bin" '+%Y-%m-%d %H:%M UTC')" \
    "$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)"
fi
printf '| test | nginx req/s | hono req/s | switchboard req/s | sb/nginx | sb/hono | nginx p50/p99 | hono p50/p99 | switchboard p50/p99 |\n'
printf '|---|---:|---:|---:|---:|---:|---:|---:|---:|\n'
for t in "${tests[@]}"; do
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "${T_NAME[$t]}" \
    "$(fmt_rps "$(val "nginx.$t.rps")")" "$(fmt_rps "$(val "hono.$t.rps")")" "$(fmt_rps "$(val "switchboard.$t.rps")")" \
    "$(ratio "$(val "nginx.$t.rps")" "$(val "switchboard.$t.rps")")" "$(ratio "$(val "hono.$t.rps")" "$(val "switchboard.$t.rps")")" \
    "$(lat "$(val "nginx.$t.p50")" "$(val "nginx.$t.p99")")" "$(lat "$(val "hono.$t.p50")" "$(val "hono.$t.p99")")" \
    "$(lat "$(val "switchboard.$t.p50")" "$(val "switchboard.$t.p99")")"
done

printf '\n| CPU | nginx | hono | switchboard |\n|---|---:|---:|---:|\n'
for t in "${tests[@]}"; do
  printf '| server CPU per request, %s | %s | %s | %s |\n' "${T_NAME[$t]}" \
    "$(us_per_req "$(val "nginx.$t.srv")" "$(val "nginx.$t.n")")" "$(us_per_req "$(val "hono.$t.srv")" "$(val "hono.$t.n")")" \
    "$(us_per_req "$(val "switchboard.$t.srv")" "$(val "switchboard.$t.n")")"
done
printf '| wrk CPU (%% of one core, 2 threads), GET / POST | %s / %s | %s / %s | %s / %s |\n' \
  "$(pct "$(val nginx.get.gen)")" "$(pct "$(val nginx.post.gen)")" "$(pct "$(val hono.get.gen)")" "$(pct "$(val hono.post.gen)")" \
  "$(pct "$(val switchboard.get.gen)")" "$(pct "$(val switchboard.post.gen)")"
printf '| other processes'"'"' CPU during the tests, GET / POST | %s / %s | %s / %s | %s / %s |\n' \
  "$(pct "$(val nginx.get.other)")" "$(pct "$(val nginx.post.other)")" "$(pct "$(val hono.get.other)")" "$(pct "$(val hono.post.other)")" \
  "$(pct "$(val switchboard.get.other)")" "$(pct "$(val switchboard.post.other)")"

printf '\n| target (issue 3) | switchboard | result |\n|---|---:|---|\n'
printf '| GET /items/1 req/s >= 1.0x nginx | %s | %s |\n' "$(ratio "$(val nginx.get.rps)" "$(val switchboard.get.rps)")" \
  "$(verdict "$(cmp_expr "$(val switchboard.get.rps)" "$(val nginx.get.rps)" '>=')")"
printf '| GET /items/1 p99 <= nginx p99 | %s | %s |\n' \
  "$([[ -n $(val switchboard.get.p99) ]] && echo "$(val switchboard.get.p99) ms (nginx $(val nginx.get.p99) ms)" || echo -)" \
  "$(verdict "$(cmp_expr "$(val switchboard.get.p99)" "$(val nginx.get.p99)" '<=')")"

notes+=("servers: switchboard = build/release/examples/items --threads 2 (2 event loops; routing from items.proto, JSON decode/encode, a mutex-guarded store); nginx = 2 workers; hono = ONE Node process (single-threaded, run as is, no cluster), so it can use one core at most")
notes+=("nginx does no routing on the id and no JSON work: fixed bodies from \`return\`, and on POST it discards the body without parsing it")
notes+=("every POST creates an item (switchboard and hono keep them all in memory); client and servers share the $(nproc) cores")
printf '\nNotes:\n'
printf -- '- %s\n' "${notes[@]}"
if ((${#odd[@]})); then
  printf '\nWarnings:\n'
  printf -- '- %s\n' "${odd[@]}"
fi
exit "$failed"
