/*
 * The tRPC front-end's procedure table, through a real server on a loopback port: names two
 * services share are nested under both services, names only one has stay at the top level,
 * switchboard.trpc_name replaces a name verbatim, client streams are no procedures, and the
 * base path moves with sb_rpc_set_trpc_base(). (The wire itself is tested against
 * @trpc/server in tests/interop/test_trpc_wire.py.)
 */
#include <string.h>

#include "google/protobuf/empty.pb-c.h"
#include "sb_test.h"
#include "sb_test_http.h"
#include "switchboard/error.h"
#include "switchboard/rpc.h"
#include "switchboard/server.h"

#define EMPTY &google__protobuf__empty__descriptor

static const sb_method_desc_t alpha_methods[] = {
    {.name = "Ping",
     .path = "/t.Alpha/Ping",
     .input = EMPTY,
     .output = EMPTY,
     .kind = SB_METHOD_UNARY,
     .idempotency = SB_IDEMPOTENCY_NO_SIDE_EFFECTS},
    {.name = "Only",
     .path = "/t.Alpha/Only",
     .input = EMPTY,
     .output = EMPTY,
     .kind = SB_METHOD_UNARY,
     .idempotency = SB_IDEMPOTENCY_NO_SIDE_EFFECTS},
};
static const sb_method_desc_t beta_methods[] = {
    {.name = "Ping",
     .path = "/t.Beta/Ping",
     .input = EMPTY,
     .output = EMPTY,
     .kind = SB_METHOD_UNARY,
     .idempotency = SB_IDEMPOTENCY_NO_SIDE_EFFECTS},
    {.name = "Renamed",
     .path = "/t.Beta/Renamed",
     .input = EMPTY,
     .output = EMPTY,
     .kind = SB_METHOD_UNARY,
     .idempotency = SB_IDEMPOTENCY_NO_SIDE_EFFECTS,
     .trpc_name = "customName"},
    {.name = "Upload",
     .path = "/t.Beta/Upload",
     .input = EMPTY,
     .output = EMPTY,
     .kind = SB_METHOD_CLIENT_STREAMING},
};

/* Every method answers FAILED_PRECONDITION naming itself, so a test sees which one ran. */
static int dispatch(const void *handlers, size_t mi, sb_call_t *call, const ProtobufCMessage *req,
                    ProtobufCMessage *res, void *ud) {
  (void)handlers, (void)mi, (void)req, (void)res, (void)ud;
  sb_call_finish(call, SB_CODE_FAILED_PRECONDITION, sb_call_method(call)->path);
  return 0;
}

static const sb_service_desc_t alpha = {.full_name = "t.Alpha",
                                        .package = "t",
                                        .methods = alpha_methods,
                                        .n_methods = 2,
                                        .dispatch = dispatch};
static const sb_service_desc_t beta = {.full_name = "t.Beta",
                                       .package = "t",
                                       .methods = beta_methods,
                                       .n_methods = 3,
                                       .dispatch = dispatch};
static const int handlers; /* the dispatch function ignores the table */

/* GETs path and returns its status; *body points into out. */
static int get(int port, const char *path, char *out, size_t cap, char **body) {
  size_t blen;
  return sb_test_http_get(port, path, out, cap, body, &blen);
}

TEST(procedure_names_nest_rename_and_skip_client_streams) {
  sb_server_config_t cfg = {.http_addr = "127.0.0.1:0", .threads = 1};
  sb_server_t *srv = NULL;
  sb_rpc_t *rpc = NULL;
  REQUIRE(sb_server_new(&cfg, &srv) == 0);
  REQUIRE(sb_rpc_new(srv, &rpc) == 0);
  CHECK_EQ_INT(sb_rpc_set_trpc_base(rpc, "/rpc/"), 0);
  CHECK_EQ_INT(sb_rpc_set_trpc_base(rpc, "no-slash"), SB_EINVAL);
  CHECK_EQ_INT(sb_rpc_register(rpc, &alpha, &handlers, NULL), 0);
  CHECK_EQ_INT(sb_rpc_register(rpc, &beta, &handlers, NULL), 0);
  REQUIRE(sb_server_start(srv) == 0);
  int port = sb_server_port(srv);
  static char out[8192];
  char *body = NULL;

  /* The shared name, under each service; the method that answers names itself. */
  CHECK_EQ_INT(get(port, "/rpc/alpha.ping", out, sizeof out, &body), 412);
  CHECK(strstr(body, "\"message\":\"/t.Alpha/Ping\"") != NULL);
  CHECK(strstr(body, "\"path\":\"alpha.ping\"") != NULL);
  CHECK_EQ_INT(get(port, "/rpc/beta.ping", out, sizeof out, &body), 412);
  CHECK(strstr(body, "\"message\":\"/t.Beta/Ping\"") != NULL);
  CHECK_EQ_INT(get(port, "/rpc/ping", out, sizeof out, &body), 404);
  CHECK(strstr(body, "No procedure found on path \\\"ping\\\"") != NULL);
  /* A name only one service has stays at the top; an override is verbatim. */
  CHECK_EQ_INT(get(port, "/rpc/only", out, sizeof out, &body), 412);
  CHECK(strstr(body, "/t.Alpha/Only") != NULL);
  CHECK_EQ_INT(get(port, "/rpc/customName", out, sizeof out, &body), 412);
  CHECK(strstr(body, "/t.Beta/Renamed") != NULL);
  CHECK_EQ_INT(get(port, "/rpc/renamed", out, sizeof out, &body), 404);
  CHECK_EQ_INT(get(port, "/rpc/upload", out, sizeof out, &body), 404);
  /* A batch across both services, with the 207 of mixed outcomes. */
  CHECK_EQ_INT(get(port, "/rpc/alpha.ping,beta.ping,nope?batch=1", out, sizeof out, &body), 207);
  CHECK(strstr(body, "/t.Alpha/Ping") && strstr(body, "/t.Beta/Ping") && strstr(body, "nope"));
  /* The old base is not tRPC's any more. */
  CHECK_EQ_INT(get(port, "/trpc/only", out, sizeof out, &body), 404);
  CHECK(strstr(body, "No procedure found") == NULL);
  sb_server_stop(srv);
  sb_server_wait(srv);
  sb_server_free(srv);
  sb_rpc_free(rpc);
}
