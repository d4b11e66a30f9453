#!/usr/bin/env bash
# Installs libswitchboard into a temporary prefix, builds examples/hello against it through
# pkg-config only (as a user's project would), and checks the result serves a request.
# Usage: install_test.sh <build-dir> <source-dir> [compiler]
set -euo pipefail
build=$1 src=$2 cc=${3:-cc}
tmp=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
pid=
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"
pkg-config --exists switchboard
# The sanitizer build's library needs the sanitizer runtimes at link time too.
extra=()
if nm -D "$tmp/prefix/lib/libswitchboard.so" 2>/dev/null | grep __asan_init >/dev/null; then
  extra=(-fsanitize=address,undefined)
fi
"$cc" -Wall -Wextra -Werror "${extra[@]}" "$src/examples/hello/hello.c" \
  $(pkg-config --cflags --libs switchboard) -o "$tmp/hello"
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
LD_LIBRARY_PATH="$tmp/prefix/lib" ASAN_OPTIONS=detect_leaks=1 "$tmp/hello" "127.0.0.1:$port" 2>"$tmp/log" &
pid=$!
for _ in $(seq 50); do grep -q event=listening "$tmp/log" && break; sleep 0.1; done
body=$(curl -sS --max-time 5 "http://127.0.0.1:$port/hello")
body2=$(curl -sS --max-time 5 --http2-prior-knowledge "http://127.0.0.1:$port/hello")
kill -TERM $pid
wait $pid
rc=$?
pid=
passed=0 failed=0
check() { if eval "$1"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $1"; fi; }
check '[[ $body == hello ]]'
check '[[ $body2 == hello ]]'
check '[[ $rc -eq 0 ]]'
check '! grep -qE "AddressSanitizer|LeakSanitizer|runtime error:" "$tmp/log"'
# Swagger UI's assets go with the install (when the build tree had them), license included.
if [[ -f $src/node_modules/swagger-ui-dist/swagger-ui-bundle.js ]]; then
  ui=$tmp/prefix/share/switchboard/swagger-ui
  check 'cmp -s "$src/node_modules/swagger-ui-dist/swagger-ui-bundle.js" "$ui/swagger-ui-bundle.js"'
  check '[[ -f $ui/swagger-ui.css && -f $ui/LICENSE && -f $ui/NOTICE ]]'
fi
echo "$passed passed, $failed failed"
((failed == 0))
