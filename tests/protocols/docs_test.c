/*
 * /docs (protocols/rest/docs.c): the asset-name check that stands between a request path and
 * the file system, the directory setter's lifecycle, and a served round trip from a directory
 * of made-up assets: a file several streaming chunks long arrives byte for byte, an optional
 * file that is missing is 404, and a required file over SB_DOCS_MAX_FILE makes /docs 503.
 * The real swagger-ui-dist package is exercised by tests/interop/test_docs*.py.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "protocols/rest/docs.h"
#include "sb_test.h"
#include "sb_test_http.h"
#include "switchboard/rpc.h"
#include "switchboard/server.h"

TEST(allow_list_names_are_found_with_their_types) {
  static const struct {
    const char *name, *type;
    int required;
  } want[] = {
      {"index.html", "text/html; charset=utf-8", 1},
      {"switchboard-init.js", "text/javascript; charset=utf-8", 1},
      {"swagger-ui.css", "text/css; charset=utf-8", 1},
      {"swagger-ui-bundle.js", "text/javascript; charset=utf-8", 1},
      {"favicon-32x32.png", "image/png", 0},
      {"favicon-16x16.png", "image/png", 0},
      {"oauth2-redirect.html", "text/html; charset=utf-8", 0},
      {"oauth2-redirect.js", "text/javascript; charset=utf-8", 0},
  };
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    const sb__docs_asset_t *a = sb__docs_asset(want[i].name);
    REQUIRE(a != NULL);
    CHECK_EQ_STR(a->name, want[i].name);
    CHECK_EQ_STR(a->content_type, want[i].type);
    CHECK_EQ_INT(a->required, want[i].required);
    /* Every allowed name is a plain file name: nothing in it can walk the file system. */
    CHECK(strchr(a->name, '/') == NULL && strstr(a->name, "..") == NULL);
  }
}

TEST(every_other_name_is_refused) {
  static const char *const bad[] = {
      "",
      ".",
      "..",
      "../swagger-ui.css",
      "../../etc/passwd",
      "/swagger-ui.css",
      "swagger-ui.css/",
      "./swagger-ui.css",
      "swagger-ui.css/..",
      "%2e%2e",
      "%2e%2e%2fpackage.json",
      "swagger%2dui.css",
      "Swagger-UI.css",
      "SWAGGER-UI.CSS",
      "swagger-ui.css ",
      " swagger-ui.css",
      "swagger-ui.css.",
      "swagger-ui.css.map",
      "swagger-ui.css\\",
      "swagger-ui.cs",
      "package.json",
      "LICENSE",
      "index.js",
      "swagger-initializer.js",
      "swagger-ui-es-bundle.js",
      "docs/swagger-ui.css",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    if (sb__docs_asset(bad[i]) != NULL) {
      fprintf(stderr, "accepted: \"%s\"\n", bad[i]);
      CHECK(0);
    }
  }
}

TEST(set_docs_dir_copies_resets_and_frees) {
  sb_server_config_t cfg = {.http_addr = "127.0.0.1:0", .threads = 1};
  sb_server_t *srv = NULL;
  sb_rpc_t *rpc = NULL;
  REQUIRE(sb_server_new(&cfg, &srv) == 0);
  REQUIRE(sb_rpc_new(srv, &rpc) == 0);
  char dir[] = "/tmp/somewhere";
  CHECK_EQ_INT(sb_rpc_set_docs_dir(rpc, dir), 0);
  dir[1] = 'X'; /* the registry kept its own copy */
  CHECK_EQ_INT(sb_rpc_set_docs_dir(rpc, "/tmp/elsewhere"), 0);
  CHECK_EQ_INT(sb_rpc_set_docs_dir(rpc, NULL), 0);
  CHECK_EQ_INT(sb_rpc_set_docs_dir(rpc, "/tmp/last"), 0);
  sb_server_free(srv);
  sb_rpc_free(rpc); /* LeakSanitizer checks the copies went with it */
}

static int write_file(const char *dir, const char *name, const char *data, size_t len) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return -1;
  ssize_t w = write(fd, data, len);
  close(fd);
  return w == (ssize_t)len ? 0 : -1;
}

#define BIG (3u * SB_DOCS_CHUNK + 123u) /* several chunks and a partial one */

TEST(served_from_a_directory_byte_for_byte) {
  char dir[] = "/tmp/sb-docs-test-XXXXXX";
  REQUIRE(mkdtemp(dir) != NULL);
  char *big = malloc(BIG);
  REQUIRE(big != NULL);
  for (size_t i = 0; i < BIG; i++)
    big[i] = (char)('a' + (i * 7 + i / 5000) % 26);
  REQUIRE(write_file(dir, "swagger-ui-bundle.js", big, BIG) == 0);
  REQUIRE(write_file(dir, "swagger-ui.css", "body{}", 6) == 0);

  sb_server_config_t cfg = {.http_addr = "127.0.0.1:0", .threads = 1};
  sb_server_t *srv = NULL;
  sb_rpc_t *rpc = NULL;
  REQUIRE(sb_server_new(&cfg, &srv) == 0);
  REQUIRE(sb_rpc_new(srv, &rpc) == 0);
  REQUIRE(sb_rpc_set_docs_dir(rpc, dir) == 0);
  REQUIRE(sb_server_start(srv) == 0);
  int port = sb_server_port(srv);
  size_t cap = BIG + 4096;
  char *out = malloc(cap), *body = NULL;
  size_t blen = 0;
  REQUIRE(out != NULL);
  CHECK_EQ_INT(sb_test_http_get(port, "/docs/swagger-ui-bundle.js", out, cap, &body, &blen), 200);
  CHECK(blen == BIG && memcmp(body, big, BIG) == 0);
  CHECK(strstr(out, "content-length: 196731\r\n") != NULL);
  CHECK_EQ_INT(sb_test_http_get(port, "/docs/swagger-ui.css", out, cap, &body, &blen), 200);
  CHECK(blen == 6 && memcmp(body, "body{}", 6) == 0);
  CHECK_EQ_INT(sb_test_http_get(port, "/docs/", out, cap, &body, &blen), 200);
  CHECK(strstr(body, "/docs/swagger-ui-bundle.js") != NULL);
  CHECK_EQ_INT(sb_test_http_get(port, "/docs/favicon-16x16.png", out, cap, &body, &blen), 404);
  CHECK_EQ_INT(sb_test_http_get(port, "/docs/../swagger-ui.css", out, cap, &body, &blen), 404);
  sb_server_stop(srv);
  sb_server_wait(srv);
  sb_server_free(srv);
  sb_rpc_free(rpc);

  /* A required file over the bound: refused, /docs is 503, the server still answers. */
  char p[512];
  snprintf(p, sizeof p, "%s/swagger-ui-bundle.js", dir);
  REQUIRE(truncate(p, (off_t)SB_DOCS_MAX_FILE + 1) == 0); /* sparse: no real disk use */
  REQUIRE(sb_server_new(&cfg, &srv) == 0);
  REQUIRE(sb_rpc_new(srv, &rpc) == 0);
  REQUIRE(sb_rpc_set_docs_dir(rpc, dir) == 0);
  REQUIRE(sb_server_start(srv) == 0);
  port = sb_server_port(srv);
  CHECK_EQ_INT(sb_test_http_get(port, "/docs", out, cap, &body, &blen), 503);
  CHECK(strstr(body, "\"code\":14") != NULL);
  CHECK_EQ_INT(sb_test_http_get(port, "/healthz", out, cap, &body, &blen), 200);
  sb_server_stop(srv);
  sb_server_wait(srv);
  sb_server_free(srv);
  sb_rpc_free(rpc);

  unlink(p);
  snprintf(p, sizeof p, "%s/swagger-ui.css", dir);
  unlink(p);
  rmdir(dir);
  free(out);
  free(big);
}
