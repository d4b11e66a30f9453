/*
 * The smallest libswitchboard service: one route, served over HTTP/1.1 and HTTP/2 until
 * SIGINT or SIGTERM. Build it against an installed libswitchboard with
 *   cc hello.c $(pkg-config --cflags --libs switchboard) -o hello
 */
#include <switchboard/switchboard.h>

static void hello(sb_http_req_t *req, void *ud) {
  (void)ud;
  sb_http_respond(req, 200, "text/plain", "hello\n", 6);
}

int main(int argc, char **argv) {
  sb_server_config_t cfg = {.http_addr = argc > 1 ? argv[1] : "127.0.0.1:8080"};
  sb_server_t *srv;
  if (sb_server_new(&cfg, &srv)) return 1;
  sb_server_route(srv, "/hello", hello, NULL);
  int rc = sb_server_run(srv); /* until SIGINT/SIGTERM */
  sb_server_free(srv);
  return rc;
}
