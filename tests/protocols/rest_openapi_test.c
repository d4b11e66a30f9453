/*
 * GET /openapi.json with services from two contract files: the REST front-end merges their
 * documents into one (paths and components.schemas; a schema both define appears once).
 * Runs a real server on a loopback port and fetches the document with a plain socket.
 */
#include <string.h>

#include "core/json.h"
#include "sb_test.h"
#include "sb_test_http.h"
#include "switchboard/rpc.h"
#include "switchboard/server.h"

static const sb_service_desc_t svc_a = {
    .full_name = "a.v1.A",
    .package = "a.v1",
    .openapi_json = "{\"openapi\":\"3.1.0\",\"info\":{\"title\":\"a\",\"version\":\"1\"},"
                    "\"paths\":{\"/a\":{\"get\":{}}},"
                    "\"components\":{\"schemas\":{\"Error\":{\"type\":\"object\"},"
                    "\"a.v1.X\":{\"type\":\"object\"}}}}",
};
static const sb_service_desc_t svc_b = {
    .full_name = "b.v1.B",
    .package = "b.v1",
    .openapi_json = "{\"openapi\":\"3.1.0\",\"info\":{\"title\":\"b\",\"version\":\"1\"},"
                    "\"paths\":{\"/b/{id}\":{\"post\":{\"x\":[1,{\"y\":\"}\"}]}}},"
                    "\"components\":{\"schemas\":{\"Error\":{\"type\":\"object\"},"
                    "\"b.v1.Y\":{\"type\":\"string\"}}}}",
};
static const int no_handlers; /* services without methods still need a table pointer */

/* Fetches path; returns the body length, moved to the start of out (0 unless 200). */
static size_t fetch(int port, const char *path, char *out, size_t cap) {
  char *body;
  size_t blen;
  if (sb_test_http_get(port, path, out, cap, &body, &blen) != 200) return 0;
  memmove(out, body, blen + 1);
  return blen;
}

/* Counts occurrences of needle in hay. */
static int count(const char *hay, const char *needle) {
  int n = 0;
  for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
    n++;
  return n;
}

TEST(openapi_documents_of_two_files_are_merged) {
  sb_server_config_t cfg = {.http_addr = "127.0.0.1:0", .threads = 1};
  sb_server_t *srv = NULL;
  sb_rpc_t *rpc = NULL;
  REQUIRE(sb_server_new(&cfg, &srv) == 0);
  REQUIRE(sb_rpc_new(srv, &rpc) == 0);
  CHECK_EQ_INT(sb_rpc_register(rpc, &svc_a, &no_handlers, NULL), 0);
  CHECK_EQ_INT(sb_rpc_register(rpc, &svc_b, &no_handlers, NULL), 0);
  REQUIRE(sb_server_start(srv) == 0);
  static char body[65536];
  size_t n = fetch(sb_server_port(srv), "/openapi.json", body, sizeof body);
  sb_server_stop(srv);
  sb_server_wait(srv);
  REQUIRE(n > 0);
  /* One valid JSON document... */
  sb_jr_t r;
  sb_jr_init(&r, body, n);
  sb_jtok_t t;
  int ok = 1;
  while ((t = sb_jr_next(&r)) != SB_JT_END)
    if (t == SB_JT_ERROR) {
      ok = 0;
      break;
    }
  sb_jr_free(&r);
  CHECK(ok);
  /* ...with both files' paths, their schemas, and the shared Error schema once. */
  CHECK(strstr(body, "\"/a\":{\"get\":{}}") != NULL);
  CHECK(strstr(body, "\"/b/{id}\":{\"post\":{\"x\":[1,{\"y\":\"}\"}]}}") != NULL);
  CHECK(strstr(body, "\"a.v1.X\"") != NULL);
  CHECK(strstr(body, "\"b.v1.Y\"") != NULL);
  CHECK_EQ_INT(count(body, "\"Error\""), 1);
  CHECK(strstr(body, "\"openapi\":\"3.1.0\"") != NULL);
  sb_server_free(srv);
  sb_rpc_free(rpc);
}
