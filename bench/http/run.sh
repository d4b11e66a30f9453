#!/usr/bin/env bash
# HTTP core benchmark: switchboard against Debian's nginx, side by side in one run.
#
#   bench/http/run.sh            (or `make bench` from the repository root)
#
# Environment:
#   DURATION=10          seconds per load test (wrk -d, h2load -D)
#   CONNS=10000          idle keep-alive connections for the memory test
#   SERVERS="nginx switchboard"   which servers to run (e.g. SERVERS=nginx to test the nginx half)
#   KEEP_TMP=1           keep the temp dir (configs, logs, h2load per-request logs) after the run
#
# For each server: idle RSS right after start, RSS per idle keep-alive connection (CONNS open
# connections held by bench/http/conns.c), then HTTP/1.1 with
# `wrk -t2 -c64 -d${DURATION}s --latency` and h2c (prior knowledge) with
# `h2load -c16 -m32 -D ${DURATION}`. Prints markdown tables: req/s, ratio and p50/p99; server
# CPU per request; memory; the targets of issue 2. Exits 1 when a server misbehaved (errors,
# non-2xx, crash, bad exit status), 0 otherwise; the tables are printed either way.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
DURATION=${DURATION:-10}
CONNS=${CONNS:-10000}
SERVERS=${SERVERS:-"nginx switchboard"}
sb_bin="$root/build/release/switchboard"

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

[[ $DURATION =~ ^[0-9]+$ && $DURATION -gt 0 ]] || die "DURATION must be a positive integer"
[[ $CONNS =~ ^[0-9]+$ && $CONNS -gt 0 ]] || die "CONNS must be a positive integer"

"$root/scripts/deps.sh" bench
for tool in wrk h2load nginx cc; do
  command -v "$tool" >/dev/null || die "$tool not found after scripts/deps.sh bench"
done
if want switchboard && [[ ! -x $sb_bin ]]; then
  log "run.sh: $sb_bin missing, running make build"
  make -C "$root" build >&2
fi

# --- processes and cleanup ----------------------------------------------------------------
tmp=$(mktemp -d /tmp/sb-bench.XXXXXX)
pids=()
odd=()   # warnings for the report (the temp dir is kept when there are any)
failed=0 # a server misbehaved
notes=() # facts worth knowing when reading the numbers
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  exec 7>&-
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

# --- file descriptors ---------------------------------------------------------------------
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
nofile=$(ulimit -n)
((nofile >= CONNS + 100)) || die "ulimit -n is $nofile, need at least $((CONNS + 100)) for CONNS=$CONNS"

picked=()

pick_port; PORT1=$port # nginx HTTP/1.1
pick_port; PORT2=$port # nginx h2c
pick_port; PORT3=$port # switchboard (HTTP/1.1 and h2c on one port)

# Pss in kB of a process plus its direct children: shared pages split between the processes
# that map them, so nginx's three processes are not charged three times for the same libc.
pss_kb() {
  local pid=$1 total=0 kb c
  for c in "$pid" $(all_stat | awk -v pp="$pid" '{ p = $1; sub(/^.*\) /, ""); if ($2 == pp) print p }'); do
    kb=$(awk '/^Pss:/ { print $2 }' "/proc/$c/smaps_rollup" 2>/dev/null || true)
    total=$((total + ${kb:-0}))
  done
  echo "$total"
}
# VmRSS in kB of a process plus its direct children (nginx: master + workers).
rss_kb() {
  local pid=$1 total=0 kb c
  kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
  total=$((total + ${kb:-0}))
  for c in $(all_stat | awk -v pp="$pid" '{ p = $1; sub(/^.*\) /, ""); if ($2 == pp) print p }'); do
    kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$c/status" 2>/dev/null || true)
    total=$((total + ${kb:-0}))
  done
  echo "$total"
}

cc -O2 -Wall -o "$tmp/conns" "$here/conns.c"

# Opens CONNS keep-alive connections to port $2 and sets cr_before, cr_with (RSS in kB of the
# server process tree $1 before and with them open) and cr_alive (how many were still open).
conn_rss() {
  local pid=$1 port=$2 cpid i
  cr_before=$(rss_kb "$pid") cr_with=0 cr_alive=0
  rm -f "$tmp/conns.in" "$tmp/conns.out"
  mkfifo "$tmp/conns.in"
  "$tmp/conns" 127.0.0.1 "$port" "$CONNS" <"$tmp/conns.in" >"$tmp/conns.out" 2>"$tmp/conns.err" &
  cpid=$!
  pids+=("$cpid")
  exec 7>"$tmp/conns.in"
  for ((i = 0; i < 1200; i++)); do # 120 s
    grep -q '^ready' "$tmp/conns.out" 2>/dev/null && break
    is_alive "$cpid" || break
    sleep 0.1
  done
  if ! grep -q '^ready' "$tmp/conns.out" 2>/dev/null; then
    log "run.sh: conns did not get $CONNS connections up: $(cat "$tmp/conns.err")"
    exec 7>&-
    wait "$cpid" || true
    forget_pid "$cpid"
    return 1
  fi
  sleep 2 # let the server settle (allocations after the last response)
  cr_with=$(rss_kb "$pid")
  exec 7>&-
  wait "$cpid" || true
  forget_pid "$cpid"
  cr_alive=$(awk '/^alive/ { print $2 }' "$tmp/conns.out")
  cr_alive=${cr_alive:-0}
}

# Prints "req/s p50_ms p99_ms errors requests" from h2load output $1 and its --log-file $2. h2load prints
# only min/max/mean/sd, so p50/p99 come from the per-request times in the log (3rd column:
# microseconds from request start to end of response), over all requests of the run.
parse_h2load() {
  local out=$1 reqlog=$2 rps pct errs
  rps=$(awk '/^finished in/ { for (i = 1; i <= NF; i++) if ($(i + 1) == "req/s,") print $i }' "$out")
  pct=$(cut -f3 "$reqlog" | LC_ALL=C sort -n | awk '{ v[NR] = $1 } END {
      if (NR == 0) { print "nan nan"; exit }
      i50 = int(NR * 0.50 + 0.999999); i99 = int(NR * 0.99 + 0.999999)
      printf "%.3f %.3f\n", v[i50] / 1000, v[i99] / 1000 }')
  errs=$(awk '/^requests:/ { gsub(/,/, ""); n = $10 + $12 + $14 }
              /^status codes:/ { gsub(/,/, ""); n += $5 + $7 + $9 }
              END { print n + 0 }' "$out")
  echo "${rps:-0} $pct $errs $(awk '/^requests:/ { gsub(/,/, ""); print $8 }' "$out")"
}

# --- the servers --------------------------------------------------------------------------
start_nginx() {
  local dir="$tmp/nginx"
  mkdir -p "$dir"
  sed -e "s|@TMP@|$dir|g" -e "s|@PORT1@|$PORT1|g" -e "s|@PORT2@|$PORT2|g" \
    "$here/nginx.conf.in" >"$dir/nginx.conf"
  nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" >"$dir/stdout.log" 2>&1 &
  srv_pid=$!
  pids+=("$srv_pid")
  wait_listening "$srv_pid" "$PORT1" "$PORT2" || die "nginx did not start: $(cat "$dir/error.log" "$dir/stdout.log" 2>/dev/null)"
  # the workers are forked after the listeners are bound; wait for both
  local i
  for ((i = 0; i < 100; i++)); do
    [[ $(all_stat | awk -v pp="$srv_pid" '{ sub(/^.*\) /, ""); if ($2 == pp) n++ } END { print n + 0 }') -ge 2 ]] && break
    sleep 0.05
  done
}
sb_run=0
start_switchboard() { # extra flags...
  sb_run=$((sb_run + 1))
  mkdir -p "$tmp/switchboard"
  sb_log="$tmp/switchboard/stderr.$sb_run.log"
  "$sb_bin" serve --http "127.0.0.1:$PORT3" --threads 2 --log-level warn \
    --data "$tmp/switchboard/data" "$@" >"$sb_log" 2>&1 &
  srv_pid=$!
  pids+=("$srv_pid")
  wait_listening "$srv_pid" "$PORT3" || die "switchboard did not start: $(cat "$sb_log")"
}

declare -A R # R[server.key] = value

bench_server() { # name
  local name=$1 h1port h2port rc t
  if [[ $name == nginx ]]; then h1port=$PORT1 h2port=$PORT2; else h1port=$PORT3 h2port=$PORT3; fi

  # memory: a fresh instance
  if [[ $name == nginx ]]; then start_nginx; else start_switchboard --max-connections 20000; fi
  sleep 0.5
  R[$name.idle_kb]=$(rss_kb "$srv_pid") R[$name.idle_pss]=$(pss_kb "$srv_pid")
  log "run.sh: $name: idle RSS ${R[$name.idle_kb]} kB; opening $CONNS keep-alive connections"
  if conn_rss "$srv_pid" "$h1port"; then
    R[$name.before_kb]=$cr_before R[$name.with_kb]=$cr_with
    ((cr_alive == CONNS)) ||
      fail "$name: only $cr_alive of $CONNS idle connections were still open when the memory test ended"
  else
    fail "$name: could not open $CONNS keep-alive connections: $(head -c 300 "$tmp/conns.err")"
  fi
  rc=0
  stop_server "$srv_pid" || rc=$?
  [[ $name == switchboard && $rc -ne 0 ]] && fail "switchboard (memory run) exited with status $rc on SIGTERM (log: $sb_log)"

  # throughput: a fresh instance with the plain flags
  if [[ $name == nginx ]]; then start_nginx; else start_switchboard; fi
  # 1 s of discarded load first so both servers are measured warm
  run_bg wrk -t2 -c64 -d1s "http://127.0.0.1:$h1port/healthz" >/dev/null 2>&1 || true
  log "run.sh: $name: wrk HTTP/1.1 for ${DURATION}s"
  other_cpu=0 other_top='' srv_ticks=0 gen_pct=0
  if measured "$srv_pid" wrk -t2 -c64 -d"${DURATION}s" --latency "http://127.0.0.1:$h1port/healthz" \
    >"$tmp/$name.wrk.txt" 2>&1; then
    read -r "R[$name.h1_rps]" "R[$name.h1_p50]" "R[$name.h1_p99]" "R[$name.h1_err]" "R[$name.h1_n]" \
      < <(parse_wrk "$tmp/$name.wrk.txt") || true
  fi
  [[ -n ${R[$name.h1_rps]-} ]] || fail "$name: the wrk run failed (see $tmp/$name.wrk.txt)"
  run_bg h2load -c16 -m32 -D 1 "http://127.0.0.1:$h2port/healthz" >/dev/null 2>&1 || true
  log "run.sh: $name: h2load h2c for ${DURATION}s"
  R[$name.h1_other]=$other_cpu R[$name.h1_top]=$other_top R[$name.h1_srv]=$srv_ticks R[$name.h1_gen]=$gen_pct
  other_cpu=0 other_top='' srv_ticks=0 gen_pct=0
  if measured "$srv_pid" h2load -c16 -m32 -D "$DURATION" --log-file="$tmp/$name.h2load.log" \
    "http://127.0.0.1:$h2port/healthz" >"$tmp/$name.h2load.txt" 2>&1; then
    read -r "R[$name.h2_rps]" "R[$name.h2_p50]" "R[$name.h2_p99]" "R[$name.h2_err]" "R[$name.h2_n]" \
      < <(parse_h2load "$tmp/$name.h2load.txt" "$tmp/$name.h2load.log") || true
  fi
  [[ -n ${R[$name.h2_rps]-} ]] || fail "$name: the h2load run failed (see $tmp/$name.h2load.txt)"
  R[$name.h2_other]=$other_cpu R[$name.h2_top]=$other_top R[$name.h2_srv]=$srv_ticks R[$name.h2_gen]=$gen_pct
  rm -f "$tmp/$name.h2load.log"
  ((${R[$name.h2_gen]:-0} < 95)) ||
    notes+=("$name h2: h2load (one thread) used ${R[$name.h2_gen]}% of a core: the client, not the server, limits this req/s")
  for t in h1 h2; do
    ((R[$name.${t}_other] <= 15)) ||
      odd+=("$name $t: other processes used ${R[$name.${t}_other]}% of a core during the test (${R[$name.${t}_top]:-short-lived processes}); the numbers are skewed")
  done
  grep -q '^Application protocol: h2c' "$tmp/$name.h2load.txt" ||
    fail "$name: h2load did not negotiate h2c (see $tmp/$name.h2load.txt)"
  ((${R[$name.h1_err]:-0} == 0)) || fail "$name: wrk reported ${R[$name.h1_err]} errors/non-2xx (see $tmp/$name.wrk.txt)"
  ((${R[$name.h2_err]:-0} == 0)) || fail "$name: h2load reported ${R[$name.h2_err]} failed/errored/timed-out/non-2xx requests (see $tmp/$name.h2load.txt)"
  is_alive "$srv_pid" || fail "$name died during the load tests"
  rc=0
  stop_server "$srv_pid" || rc=$?
  if [[ $name == switchboard ]]; then
    [[ $rc -eq 0 ]] || fail "switchboard (load run) exited with status $rc on SIGTERM (log: $sb_log)"
    if grep -qiE 'level=(error|fatal)|sanitizer|runtime error' "$sb_log" 2>/dev/null; then
      fail "switchboard logged errors: $(grep -iE 'level=(error|fatal)|sanitizer|runtime error' "$sb_log" | head -3 | tr '\n' ' ')"
    fi
  fi
}

# --- a quiet machine ------------------------------------------------------------------------
# Numbers taken next to a compiler or a test run are meaningless on 2 cores: wait for builds to
# end (up to BUILD_WAIT seconds), then measure how busy the CPUs are.
build_wait=${BUILD_WAIT:-600}
for ((i = 0; i < build_wait; i += 5)); do
  pgrep -f 'cmake --build|cc1|clang.*-c ' >/dev/null 2>&1 || break
  ((i == 0)) && log "run.sh: a build is running; waiting for it to finish (BUILD_WAIT=$build_wait)"
  sleep 5
done
pgrep -f 'cmake --build|cc1|clang.*-c ' >/dev/null 2>&1 && odd+=("a build was running during the benchmark")
cpu_busy_pct() { # share of all CPU time not idle over 1 s, in percent
  local a b
  a=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $5 + $6 }' /proc/stat)
  sleep 1
  b=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $5 + $6 }' /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " "); u = y[1] - x[1]; t = u + y[2] - x[2]
    printf "%.0f", (t > 0 ? 100 * u / t : 0) }'
}
busy=$(cpu_busy_pct)
((busy <= 20)) || odd+=("the CPUs were ${busy}% busy before the benchmark started: other load skews the numbers")

log "run.sh: CPU busy before start: ${busy}%"
log "run.sh: $(nproc) cores, $(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -1), ulimit -n $nofile"
log "run.sh: ports nginx h1=$PORT1 h2c=$PORT2, switchboard=$PORT3; temp dir $tmp"
for s in nginx switchboard; do
  if want "$s"; then bench_server "$s"; fi
done

kb_mb() { [[ -n ${1-} ]] && awk -v v="$1" 'BEGIN { printf "%.1f MB", v / 1024 }' || echo "-"; }
per_conn() { # before with -> bytes per connection
  [[ -n ${1-} && -n ${2-} ]] && awk -v a="$1" -v b="$2" -v n="$CONNS" 'BEGIN { printf "%.0f", (b - a) * 1024 / n }' || echo ""
}

printf '\nHTTP core benchmark: %s, %s cores (%s), DURATION=%ss, %s\n\n' \
  "$(date -u +%Y-%m-%d)" "$(nproc)" "$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -1)" \
  "$DURATION" "$(nginx -v 2>&1 | sed 's/^nginx version: //'), $(wrk -v 2>&1 | awk 'NR == 1 { print $1, $2 }'), $(h2load --version | head -1)"
printf '| test | nginx req/s | switchboard req/s | ratio | nginx p50/p99 | switchboard p50/p99 |\n'
printf '|---|---:|---:|---:|---:|---:|\n'
# shellcheck disable=SC2016 # the backquotes are markdown
printf '| HTTP/1.1 `wrk -t2 -c64 -d%ss --latency` | %s | %s | %s | %s | %s |\n' "$DURATION" \
  "$(fmt_rps "$(val nginx.h1_rps)")" "$(fmt_rps "$(val switchboard.h1_rps)")" \
  "$(ratio "$(val nginx.h1_rps)" "$(val switchboard.h1_rps)")" \
  "$(lat "$(val nginx.h1_p50)" "$(val nginx.h1_p99)")" "$(lat "$(val switchboard.h1_p50)" "$(val switchboard.h1_p99)")"
# shellcheck disable=SC2016
printf '| HTTP/2 h2c `h2load -c16 -m32 -D %s` | %s | %s | %s | %s | %s |\n' "$DURATION" \
  "$(fmt_rps "$(val nginx.h2_rps)")" "$(fmt_rps "$(val switchboard.h2_rps)")" \
  "$(ratio "$(val nginx.h2_rps)" "$(val switchboard.h2_rps)")" \
  "$(lat "$(val nginx.h2_p50)" "$(val nginx.h2_p99)")" "$(lat "$(val switchboard.h2_p50)" "$(val switchboard.h2_p99)")"
printf '\nLatency: wrk --latency distribution (HTTP/1.1); for HTTP/2, percentiles of the per-request\n'
printf 'times from h2load --log-file (request start to end of response), over all requests.\n\n'

printf '| CPU | nginx | switchboard |\n|---|---:|---:|\n'
printf '| server CPU per request, HTTP/1.1 | %s | %s |\n' "$(us_per_req "$(val nginx.h1_srv)" "$(val nginx.h1_n)")" "$(us_per_req "$(val switchboard.h1_srv)" "$(val switchboard.h1_n)")"
printf '| server CPU per request, HTTP/2 | %s | %s |\n' "$(us_per_req "$(val nginx.h2_srv)" "$(val nginx.h2_n)")" "$(us_per_req "$(val switchboard.h2_srv)" "$(val switchboard.h2_n)")"
printf '| wrk CPU (%% of one core, 2 threads) | %s | %s |\n' "$(pct "$(val nginx.h1_gen)")" "$(pct "$(val switchboard.h1_gen)")"
printf '| h2load CPU (%% of one core, 1 thread) | %s | %s |\n' "$(pct "$(val nginx.h2_gen)")" "$(pct "$(val switchboard.h2_gen)")"
printf '| other processes'"'"' CPU during the tests (h1 / h2) | %s / %s | %s / %s |\n\n' \
  "$(pct "$(val nginx.h1_other)")" "$(pct "$(val nginx.h2_other)")" "$(pct "$(val switchboard.h1_other)")" "$(pct "$(val switchboard.h2_other)")"

ng_pc=$(per_conn "$(val nginx.before_kb)" "$(val nginx.with_kb)")
sb_pc=$(per_conn "$(val switchboard.before_kb)" "$(val switchboard.with_kb)")
printf '| memory | nginx (master + 2 workers) | switchboard |\n|---|---:|---:|\n'
printf '| idle RSS after start | %s | %s |\n' "$(kb_mb "$(val nginx.idle_kb)")" "$(kb_mb "$(val switchboard.idle_kb)")"
printf '| idle PSS after start (shared pages split) | %s | %s |\n' "$(kb_mb "$(val nginx.idle_pss)")" "$(kb_mb "$(val switchboard.idle_pss)")"
printf '| RSS with %s idle keep-alive connections | %s | %s |\n' "$CONNS" "$(kb_mb "$(val nginx.with_kb)")" "$(kb_mb "$(val switchboard.with_kb)")"
printf '| RSS per idle keep-alive connection | %s | %s |\n' "${ng_pc:--}${ng_pc:+ B}" "${sb_pc:--}${sb_pc:+ B}"

printf '\n| target (issue 2) | switchboard | result |\n|---|---:|---|\n'
printf '| HTTP/1.1 req/s >= 1.0x nginx | %s | %s |\n' "$(ratio "$(val nginx.h1_rps)" "$(val switchboard.h1_rps)")" \
  "$(verdict "$(cmp_expr "$(val switchboard.h1_rps)" "$(val nginx.h1_rps)" '>=')")"
printf '| HTTP/2 req/s >= 1.0x nginx | %s | %s |\n' "$(ratio "$(val nginx.h2_rps)" "$(val switchboard.h2_rps)")" \
  "$(verdict "$(cmp_expr "$(val switchboard.h2_rps)" "$(val nginx.h2_rps)" '>=')")"
p99s() { [[ -n ${1-} ]] && echo "$1 ms (nginx ${2:--} ms)" || echo "-"; }
printf '| HTTP/1.1 p99 <= nginx p99 | %s | %s |\n' "$(p99s "$(val switchboard.h1_p99)" "$(val nginx.h1_p99)")" \
  "$(verdict "$(cmp_expr "$(val switchboard.h1_p99)" "$(val nginx.h1_p99)" '<=')")"
printf '| HTTP/2 p99 <= nginx p99 | %s | %s |\n' "$(p99s "$(val switchboard.h2_p99)" "$(val nginx.h2_p99)")" \
  "$(verdict "$(cmp_expr "$(val switchboard.h2_p99)" "$(val nginx.h2_p99)" '<=')")"
printf '| idle RSS <= 10 MB | %s | %s |\n' "$(kb_mb "$(val switchboard.idle_kb)")" \
  "$(verdict "$([[ -n $(val switchboard.idle_kb) ]] && echo "$(val switchboard.idle_kb) <= 10240")")"
printf '| RSS per idle keep-alive connection <= 16 KB | %s | %s |\n' "${sb_pc:--}${sb_pc:+ B}" \
  "$(verdict "$([[ -n $sb_pc ]] && echo "$sb_pc <= 16384")")"

if ((${#notes[@]})); then
  printf '\nNotes:\n'
  printf -- '- %s\n' "${notes[@]}"
fi
if ((${#odd[@]})); then
  printf '\nWarnings:\n'
  printf -- '- %s\n' "${odd[@]}"
fi
exit "$failed"
