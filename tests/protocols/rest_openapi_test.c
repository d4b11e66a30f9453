/*
 * GET /openapi.json with services from two contract files: the REST front-end merges their
 * documents into one (paths and components.schemas; a schema both define appears once).
 * Runs a real server on a loopback port and fetches the document with a plain socket.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "contract/json.h"
#include "sb_test.h"
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

/* Fetches path over HTTP/1.0; returns the body length (0 on failure). */
static size_t fetch(int port, const char *path, char *out, size_t cap) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    close(fd);
    return 0;
  }
  char req[256];
  int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\n\r\n", path);
  if (write(fd, req, (size_t)n) != n) {
    close(fd);
    return 0;
  }
  size_t len = 0;
  ssize_t r;
  while (len + 1 < cap && (r = read(fd, out + len, cap - 1 - len)) > 0)
    len += (size_t)r;
  close(fd);
  out[len] = '\0';
  char *body = strstr(out, "\r\n\r\n");
  if (!body || strncmp(out, "HTTP/1.0 200", 12) != 0) return 0;
  body += 4;
  size_t blen = len - (size_t)(body - out);
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
