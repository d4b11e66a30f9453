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

# switchboard gen from the installed prefix (it finds its plugin and proto/ there), then a
# server built from the generated C with pkg-config alone.
mkdir -p "$tmp/app"
"$tmp/prefix/bin/switchboard" gen --out "$tmp/app/gen" "$src/examples/items/items.proto"
cat >"$tmp/app/main.c" <<'APP'
#include <switchboard/switchboard.h>

#include "items.sb.h"

static void get_item(sb_call_t *call, const Items__V1__GetItemRequest *req, Items__V1__Item *res,
                     void *ud) {
  (void)ud;
  res->id = req->id;
  res->name = "from gen";
  sb_call_finish(call, SB_CODE_OK, NULL);
}

int main(int argc, char **argv) {
  sb_server_config_t cfg = {.http_addr = argc > 1 ? argv[1] : "127.0.0.1:0", .threads = 1};
  sb_server_t *srv = NULL;
  sb_rpc_t *rpc = NULL;
  static const Items__V1__ItemService_Handlers h = {.get_item = get_item};
  int rc = sb_server_new(&cfg, &srv);
  if (!rc) rc = sb_rpc_new(srv, &rpc);
  if (!rc) rc = items__v1__item_service__register(rpc, &h, NULL);
  if (!rc) rc = sb_server_run(srv);
  sb_server_free(srv);
  sb_rpc_free(rpc);
  return rc ? 1 : 0;
}
APP
"$cc" -Wall "${extra[@]}" "$tmp/app/main.c" $(find "$tmp/app/gen" -name '*.c') -I"$tmp/app/gen" \
  $(pkg-config --cflags --libs switchboard) -o "$tmp/app/server"
LD_LIBRARY_PATH="$tmp/prefix/lib" ASAN_OPTIONS=detect_leaks=1 "$tmp/app/server" \
  "127.0.0.1:$port" 2>"$tmp/app.log" &
pid=$!
for _ in $(seq 50); do grep -q event=listening "$tmp/app.log" && break; sleep 0.1; done
got=$(curl -sS --max-time 5 "http://127.0.0.1:$port/items/7")
bad=$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' -X POST \
  -H 'content-type: application/json' -d '{"name":""}' "http://127.0.0.1:$port/items")
kill -TERM $pid
wait $pid
rc_app=$?
pid=

passed=0 failed=0
check() { if eval "$1"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $1"; fi; }
check '[[ $body == hello ]]'
check '[[ $body2 == hello ]]'
check '[[ $rc -eq 0 ]]'
check '! grep -qE "AddressSanitizer|LeakSanitizer|runtime error:" "$tmp/log"'
check '[[ $got == "{\"id\":7,\"name\":\"from gen\"}" ]]'
check '[[ $bad == 400 ]]' # the contract's validation rules came along
check '[[ $rc_app -eq 0 ]]'
check '! grep -qE "AddressSanitizer|LeakSanitizer|runtime error:" "$tmp/app.log"'
# Swagger UI's assets go with the install (when the build tree had them), license included.
if [[ -f $src/node_modules/swagger-ui-dist/swagger-ui-bundle.js ]]; then
  ui=$tmp/prefix/share/switchboard/swagger-ui
  check 'cmp -s "$src/node_modules/swagger-ui-dist/swagger-ui-bundle.js" "$ui/swagger-ui-bundle.js"'
  check '[[ -f $ui/swagger-ui.css && -f $ui/LICENSE && -f $ui/NOTICE ]]'
fi
echo "$passed passed, $failed failed"
((failed == 0))
