#!/usr/bin/env bash
# Shared helpers of the benchmark scripts (bench/*/run.sh): logging, ports and processes,
# CPU accounting from /proc, wrk output parsing, and table formatting. Sourced, not run.
# Functions read the caller's globals at call time (SERVERS, odd, failed, pids, tmp, R, ...).
# They also set globals the caller reads (port, failed, srv_ticks, ...), hence:
# shellcheck disable=SC2034,SC2154

log() { printf '%s\n' "$*" >&2; }

die() { log "run.sh: $*"; exit 1; }

want() { [[ " $SERVERS " == *" $1 "* ]]; }

fail() { odd+=("$1"); failed=1; }

forget_pid() {
  local p keep=()
  for p in "${pids[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
  pids=("${keep[@]+"${keep[@]}"}")
}

# Stops a server started by this script; returns its exit status.
stop_server() {
  local pid=$1 rc=0
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" || rc=$?
  forget_pid "$pid"
  return "$rc"
}

# --- ports --------------------------------------------------------------------------------
# A port is free when no IPv4/IPv6 socket on this machine uses it locally.
port_in_use() {
  local hex
  hex=$(printf '%04X' "$1")
  cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk -v h=":$hex" 'NR > 1 && substr($2, length($2) - 4) == h { f = 1 } END { exit !f }'
}

pick_port() { # sets $port
  local p i
  for ((i = 0; i < 200; i++)); do
    p=$((20000 + RANDOM % 12000)) # below the usual ephemeral range (32768-60999)
    [[ " ${picked[*]-} " == *" $p "* ]] && continue
    port_in_use "$p" && continue
    picked+=("$p")
    port=$p
    return 0
  done
  die "no free port found"
}

is_listening() {
  local hex
  hex=$(printf '%04X' "$1")
  awk -v h=":$hex" 'NR > 1 && substr($2, length($2) - 4) == h && $4 == "0A" { f = 1 } END { exit !f }' /proc/net/tcp
}

is_alive() { # a zombie (exited, not yet waited for) counts as dead
  local st
  st=$(awk '/^State:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true)
  [[ -n $st && $st != Z ]]
}

wait_listening() { # pid port...
  local pid=$1 i p ok
  shift
  for ((i = 0; i < 200; i++)); do
    is_alive "$pid" || return 1
    ok=1
    for p in "$@"; do is_listening "$p" || ok=0; done
    ((ok)) && return 0
    sleep 0.05
  done
  return 1
}

# --- memory -------------------------------------------------------------------------------
# /proc/PID/stat of every process. Through cat: mawk stops at a file that vanished meanwhile.
all_stat() { cat /proc/[0-9]*/stat 2>/dev/null || true; }

# --- load tests ---------------------------------------------------------------------------
# Runs a load generator in the background so a signal reaches the cleanup trap at once.
run_bg() {
  local p rc=0
  "$@" &
  p=$!
  pids+=("$p")
  wait "$p" || rc=$?
  forget_pid "$p"
  return "$rc"
}

# CPU accounting, to tell whether something else ran during a load test: busy (non-idle)
# ticks of the whole machine, of a process tree, and of this shell's finished children.
machine_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; } # incl. irq+softirq: tasks are charged for them too

tree_ticks() {
  all_stat | awk -v p="$1" '{ pid = $1; sub(/^.*\) /, ""); if (pid == p || $2 == p) t += $12 + $13 } END { print t + 0 }'
}

# `times` must run in this shell (a $(...) subshell has children of its own), hence the file.
child_ticks() {
  awk 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] } printf "%.0f", t * 100 }' "$tmp/times"
}

# Runs a load generator (run_bg) and sets $other_cpu to the CPU, in % of one core, that
# processes other than the server tree $1 and the load generator used meanwhile.
measured() {
  local srv=$1 m0 s0 c0 w0 m1 s1 c1 w1 rc=0
  shift
  proc_ticks >"$tmp/procs.0"
  times >"$tmp/times"
  m0=$(machine_ticks) s0=$(tree_ticks "$srv") c0=$(child_ticks) w0=$(date +%s%N)
  run_bg "$@" || rc=$?
  times >"$tmp/times"
  m1=$(machine_ticks) s1=$(tree_ticks "$srv") c1=$(child_ticks) w1=$(date +%s%N)
  proc_ticks >"$tmp/procs.1"
  srv_ticks=$((s1 - s0)) gen_pct=$(awk -v c=$((c1 - c0)) -v w=$((w1 - w0)) 'BEGIN { printf "%.0f", c / (w / 1e7) * 100 }')
  other_cpu=$(awk -v m=$((m1 - m0)) -v s=$((s1 - s0)) -v c=$((c1 - c0)) -v w=$((w1 - w0)) \
    'BEGIN { v = (m - s - c) / (w / 1e7) * 100; printf "%.0f", (v < 0 ? 0 : v) }')
  # the busiest other processes that lived through the test, "comm pct%", for the warnings
  other_top=$(awk -v w=$((w1 - w0)) -v srv="$srv" -v self=$$ '
      NR == FNR { t0[$1] = $4; next }
      ($1 in t0) && $1 != srv && $2 != srv && $1 != self {
        v = ($4 - t0[$1]) / (w / 1e7) * 100; if (v >= 5) printf "%s %.0f%%\n", $3, v }' \
    "$tmp/procs.0" "$tmp/procs.1" | sort -k2 -rn | head -3 | paste -sd, -)
  return "$rc"
}

# "pid ppid comm ticks" for every process
proc_ticks() {
  awk '{ pid = $1; c = $0; sub(/^[^(]*\(/, "", c); sub(/\) .*$/, "", c); gsub(/[ ,]/, "_", c)
         r = $0; sub(/^.*\) /, "", r); split(r, f, " "); print pid, f[2], c, f[12] + f[13] }' < <(all_stat)
}

to_ms() { # "262.00us" | "1.20ms" | "1.01s" -> milliseconds
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
    else if (v ~ /m$/) { sub(/m$/, "", v); printf "%.3f", v * 60000 }
    else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.3f", v * 1000 }
    else printf "nan" }'
}

# Prints "req/s p50_ms p99_ms errors requests" from wrk output $1 (latency from --latency's distribution).
parse_wrk() {
  local out=$1 rps p50 p99 errs
  rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
  p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$out")")
  p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")
  errs=$(awk '/Non-2xx or 3xx responses:/ { n += $NF }
              /Socket errors:/ { gsub(/,/, ""); n += $4 + $6 + $8 + $10 }
              END { print n + 0 }' "$out")
  echo "${rps:-0} ${p50:-nan} ${p99:-nan} $errs $(awk '/ requests in / { print $1 }' "$out")"
}

# --- report -------------------------------------------------------------------------------
val() { echo "${R[$1]-}"; }

fmt_rps() { [[ -n ${1-} ]] && awk -v v="$1" 'BEGIN { printf "%.0f", v }' || echo "-"; }

ratio() { [[ -n ${1-} && -n ${2-} ]] && awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0) printf "%.2fx", b / a; else print "-" }' || echo "-"; }

lat() { [[ -n ${1-} ]] && echo "$1 / $2 ms" || echo "-"; }

# Server CPU time per request (all threads/processes), and how busy the load generator was:
# a generator near 100% of its cores (wrk -t2: 200%, h2load: 100%) caps the req/s it measures.
us_per_req() { [[ -n ${1-} && -n ${2-} && ${2-0} -gt 0 ]] && awk -v t="$1" -v n="$2" 'BEGIN { printf "%.1f us", t * 10000 / n }' || echo "-"; }

pct() { [[ -n ${1-} ]] && echo "$1%" || echo "-"; }

# Targets (issue 2), judged on switchboard's numbers.
verdict() {
  if [[ -z ${1-} ]]; then echo "not measured"
  elif awk "BEGIN { exit !($1) }"; then echo "met"
  else echo "NOT met"; fi
}

cmp_expr() { [[ -n ${1-} && -n ${2-} ]] && echo "$1 $3 $2" || echo ""; }

# --- a quiet machine ----------------------------------------------------------------------
# Numbers taken next to a compiler or a test run are meaningless on 2 cores: wait (up to
# $build_wait seconds, default 1800, polling every 20 s) until no build or test run is going
# on; gives up with a note in odd[] so the report says the numbers are suspect.
busy_pat='cc1|cmake --build|ctest|pytest'
wait_quiet() {
  local i limit=${build_wait:-1800}
  for ((i = 0; i < limit; i += 20)); do
    pgrep -f "$busy_pat" >/dev/null 2>&1 || return 0
    log "run.sh: a build or test run is going on ($(pgrep -f "$busy_pat" | head -3 | xargs -r ps -o comm= -p | paste -sd, -)); waiting"
    sleep 20
  done
  pgrep -f "$busy_pat" >/dev/null 2>&1 && odd+=("a build or test run was going on during the benchmark")
  return 0
}
