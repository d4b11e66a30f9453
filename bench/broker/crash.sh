#!/usr/bin/env bash
# The broker's kill -9 test for longer than make test runs it (issue 6): CYCLES cycles of
# load on a queue with a dead-letter queue and a stream, each ended by SIGKILL (every fifth by
# SIGTERM, a clean shutdown under load), with the full check after every restart.
#
#   bench/broker/crash.sh            # 200 cycles
#   CYCLES=1000 bench/broker/crash.sh
#
# Prints the last cycle's line and a summary; exits 1 when a check failed.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
CYCLES=${CYCLES:-200}
helper="$root/build/release/tests/broker_crash_helper"
if [[ ! -x $helper ]]; then
  cmake -S "$root" -B "$root/build/release" -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER=gcc >/dev/null
  cmake --build "$root/build/release" -j2 --target broker_crash_helper >&2
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
start=$(date +%s)
if SB_CRASH_CYCLES=$CYCLES /usr/bin/python3 "$root/tests/broker/broker_crash_test.py" "$helper" >"$log" 2>&1; then
  status=passed
else
  status=FAILED
fi
grep -E "^cycle" "$log" | tail -1
echo "crash test: $CYCLES cycles $status in $(( $(date +%s) - start )) s ($(head -1 "$log"))"
[[ $status == passed ]]
