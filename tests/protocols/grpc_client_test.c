/*
 * The gRPC client (include/switchboard/client.h) and the generated client stubs, against an
 * in-process server: the items contract's typed stubs for unary and server-streaming calls,
 * errors with their messages, deadlines, the built-in health service, a refused connection,
 * reconnecting once the server is back, and freeing a client with calls still running; and
 * the REST/JSON stubs (path templates, bodies, query strings, error bodies) against the same
 * server's REST binding.
 */
#include <uv.h>

#include "health.sb.h"
#include "items.sb.h"
#include "sb_test.h"
#include "switchboard/client.h"
#include "switchboard/error.h"
#include "switchboard/log.h"
#include "switchboard/server.h"

#define CALL_WAIT_MS 10000u /* a test call that has not ended by then is a failure */

/* ---- a small items service ---- */

static void get_item(sb_call_t *call, const Items__V1__GetItemRequest *req, Items__V1__Item *res,
                     void *ud) {
  (void)ud;
  if (req->id != 7) {
    sb_call_finish(call, SB_CODE_NOT_FOUND, "no such item: 100%");
    return;
  }
  res->id = 7;
  res->name = "seven";
  res->price = 7.5;
  sb_call_finish(call, SB_CODE_OK, NULL);
}

static void watch_items(sb_call_t *call, const Items__V1__WatchItemsRequest *req,
                        Items__V1__ItemEvent *res, void *ud) {
  (void)res, (void)ud;
  for (uint32_t i = 1; i <= req->since_id; i++) {
    Items__V1__Item item = ITEMS__V1__ITEM__INIT;
    Items__V1__ItemEvent ev = ITEMS__V1__ITEM_EVENT__INIT;
    item.id = i;
    ev.item = &item;
    sb_call_send(call, &ev.base);
  }
  sb_call_finish(call, SB_CODE_OK, NULL);
}

/* Never answers until cancelled (deadline tests). */
static void on_cancel_finish(sb_call_t *call, void *ud) {
  (void)ud;
  sb_call_finish(call, SB_CODE_CANCELLED, NULL);
}

/* page_size 42 answers with the page token echoed (the REST query-string test); anything else
 * never answers until cancelled (the deadline test). */
static void list_items(sb_call_t *call, const Items__V1__ListItemsRequest *req,
                       Items__V1__ListItemsResponse *res, void *ud) {
  (void)ud;
  if (req->page_size == 42) {
    res->next_page_token = sb_call_strdup(call, req->page_token);
    sb_call_finish(call, SB_CODE_OK, NULL);
    return;
  }
  sb_call_stream_t cbs = {.on_cancel = on_cancel_finish};
  sb_call_set_stream(call, &cbs);
}

static void create_item(sb_call_t *call, const Items__V1__CreateItemRequest *req,
                        Items__V1__Item *res, void *ud) {
  (void)ud;
  res->id = 99;
  res->name = sb_call_strdup(call, req->name);
  res->price = req->price;
  sb_call_finish(call, SB_CODE_OK, NULL);
}

/* Answers with the item as it arrived: its id from the path, the rest from the body. */
static void update_item(sb_call_t *call, const Items__V1__UpdateItemRequest *req,
                        Items__V1__Item *res, void *ud) {
  (void)ud;
  res->id = req->item->id;
  res->name = sb_call_strdup(call, req->item->name);
  sb_call_finish(call, SB_CODE_OK, NULL);
}

/* A running server with the items service and its registry. */
typedef struct server {
  sb_server_t *srv; /* owned */
  sb_rpc_t *rpc;    /* owned; freed after the server stopped */
  int port;         /* bound port */
} server_t;

/* Starts on port (0: any free port). */
static int start_server(server_t *s, int port) {
  char addr[32];
  snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
  sb_server_config_t cfg = {.http_addr = addr, .threads = 1};
  static const Items__V1__ItemService_Handlers handlers = {.get_item = get_item,
                                                           .create_item = create_item,
                                                           .list_items = list_items,
                                                           .update_item = update_item,
                                                           .watch_items = watch_items};
  memset(s, 0, sizeof *s);
  if (sb_server_new(&cfg, &s->srv) || sb_rpc_new(s->srv, &s->rpc) ||
      items__v1__item_service__register(s->rpc, &handlers, NULL) || sb_server_start(s->srv))
    return -1;
  s->port = sb_server_port(s->srv);
  return 0;
}

static void stop_server(server_t *s) {
  sb_server_stop(s->srv);
  sb_server_wait(s->srv);
  sb_server_free(s->srv);
  sb_rpc_free(s->rpc);
}

/* ---- client side ---- */

typedef struct result {
  int done;          /* on_done ran */
  sb_code_t code;    /* its code */
  char message[128]; /* its message */
  unsigned msgs;     /* on_message calls */
  char names[256];   /* item names / ids seen, comma-separated */
  uint32_t id;       /* the last item's id */
  double price;      /* the last item's price */
} result_t;

static void on_message(const ProtobufCMessage *msg, void *ud) {
  result_t *r = ud;
  r->msgs++;
  char one[32] = "";
  if (msg->descriptor == &items__v1__item__descriptor) {
    const Items__V1__Item *it = (const Items__V1__Item *)(const void *)msg;
    snprintf(one, sizeof one, "%s,", it->name);
    r->id = it->id;
    r->price = it->price;
  } else if (msg->descriptor == &items__v1__list_items_response__descriptor) {
    snprintf(one, sizeof one, "%s,",
             ((const Items__V1__ListItemsResponse *)(const void *)msg)->next_page_token);
  } else if (msg->descriptor == &items__v1__item_event__descriptor)
    snprintf(one, sizeof one, "%u,", ((const Items__V1__ItemEvent *)(const void *)msg)->item->id);
  else if (msg->descriptor == &grpc__health__v1__health_check_response__descriptor)
    snprintf(one, sizeof one, "%d,",
             ((const Grpc__Health__V1__HealthCheckResponse *)(const void *)msg)->status);
  strncat(r->names, one, sizeof r->names - strlen(r->names) - 1);
}

static void on_done(sb_code_t code, const char *message, void *ud) {
  result_t *r = ud;
  r->done++;
  r->code = code;
  snprintf(r->message, sizeof r->message, "%s", message);
}

/* Runs loop until every result in rs[0..n) is done (or the wait limit passed). */
static void wait_all(uv_loop_t *loop, result_t *rs, size_t n) {
  uint64_t until = uv_now(loop) + CALL_WAIT_MS;
  for (;;) {
    size_t done = 0;
    for (size_t i = 0; i < n; i++)
      done += rs[i].done > 0;
    if (done == n || uv_now(loop) > until) return;
    uv_run(loop, UV_RUN_ONCE);
  }
}

/* Runs loop until nothing is left on it (a freed client's handles are closed). */
static void drain(uv_loop_t *loop) {
  while (uv_run(loop, UV_RUN_NOWAIT))
    ;
}

/* A server on a free port, a client loop and a client for the server. Returns 0 or -1. */
static int setup(server_t *srv, uv_loop_t *loop, sb_client_t **c) {
  char addr[32];
  sb_log_set_level(SB_LOG_OFF);
  if (start_server(srv, 0) || uv_loop_init(loop)) return -1;
  snprintf(addr, sizeof addr, "127.0.0.1:%d", srv->port);
  return sb_client_new(loop, addr, c) ? -1 : 0;
}

TEST(typed_stubs_unary_stream_errors) {
  server_t srv;
  uv_loop_t loop;
  sb_client_t *c = NULL;
  REQUIRE(setup(&srv, &loop, &c) == 0);

  result_t rs[4];
  memset(rs, 0, sizeof rs);
  Items__V1__GetItemRequest get = ITEMS__V1__GET_ITEM_REQUEST__INIT;
  get.id = 7;
  CHECK_EQ_INT(items__v1__item_service__get_item_call(c, &get, 0, on_message, on_done, &rs[0]), 0);
  Items__V1__GetItemRequest missing = ITEMS__V1__GET_ITEM_REQUEST__INIT;
  missing.id = 8;
  CHECK_EQ_INT(items__v1__item_service__get_item_call(c, &missing, 0, on_message, on_done, &rs[1]),
               0);
  Items__V1__WatchItemsRequest watch = ITEMS__V1__WATCH_ITEMS_REQUEST__INIT;
  watch.since_id = 3;
  CHECK_EQ_INT(
      items__v1__item_service__watch_items_call(c, &watch, 5000, on_message, on_done, &rs[2]), 0);
  Items__V1__ListItemsRequest list = ITEMS__V1__LIST_ITEMS_REQUEST__INIT;
  CHECK_EQ_INT(items__v1__item_service__list_items_call(c, &list, 100, on_message, on_done, &rs[3]),
               0);
  wait_all(&loop, rs, 4);

  CHECK_EQ_INT(rs[0].done, 1);
  CHECK_EQ_INT(rs[0].code, SB_CODE_OK);
  CHECK_EQ_STR(rs[0].names, "seven,");
  CHECK_EQ_INT(rs[1].code, SB_CODE_NOT_FOUND);
  CHECK_EQ_STR(rs[1].message, "no such item: 100%"); /* percent-decoded */
  CHECK_EQ_INT(rs[1].msgs, 0);
  CHECK_EQ_INT(rs[2].code, SB_CODE_OK);
  CHECK_EQ_STR(rs[2].names, "1,2,3,");
  CHECK_EQ_INT(rs[3].code, SB_CODE_DEADLINE_EXCEEDED);

  /* The built-in health service through its generated stub. */
  result_t h[2];
  memset(h, 0, sizeof h);
  Grpc__Health__V1__HealthCheckRequest hc = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
  hc.service = "items.v1.ItemService";
  CHECK_EQ_INT(grpc__health__v1__health__check_call(c, &hc, 0, on_message, on_done, &h[0]), 0);
  Grpc__Health__V1__HealthCheckRequest unknown = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
  unknown.service = "no.Such";
  CHECK_EQ_INT(grpc__health__v1__health__check_call(c, &unknown, 0, on_message, on_done, &h[1]), 0);
  wait_all(&loop, h, 2);
  CHECK_EQ_INT(h[0].code, SB_CODE_OK);
  CHECK_EQ_STR(h[0].names, "1,"); /* SERVING */
  CHECK_EQ_INT(h[1].code, SB_CODE_NOT_FOUND);

  /* Freeing with a call running ends it CANCELLED, from inside sb_client_free(). */
  result_t pending;
  memset(&pending, 0, sizeof pending);
  CHECK_EQ_INT(items__v1__item_service__list_items_call(c, &list, 0, on_message, on_done, &pending),
               0);
  sb_client_free(c);
  CHECK_EQ_INT(pending.done, 1);
  CHECK_EQ_INT(pending.code, SB_CODE_CANCELLED);
  drain(&loop);
  CHECK_EQ_INT(uv_loop_close(&loop), 0);
  stop_server(&srv);
}

TEST(refused_then_reconnects) {
  server_t srv;
  uv_loop_t loop;
  sb_client_t *c = NULL;
  REQUIRE(setup(&srv, &loop, &c) == 0);
  result_t r[3];
  memset(r, 0, sizeof r);
  Items__V1__GetItemRequest get = ITEMS__V1__GET_ITEM_REQUEST__INIT;
  get.id = 7;
  CHECK_EQ_INT(items__v1__item_service__get_item_call(c, &get, 0, on_message, on_done, &r[0]), 0);
  wait_all(&loop, &r[0], 1);
  CHECK_EQ_INT(r[0].code, SB_CODE_OK);
  /* The server goes away: the connection drops and the next call finds nobody there. */
  stop_server(&srv);
  for (int i = 0; i < 20; i++)
    uv_run(&loop, UV_RUN_NOWAIT);
  CHECK_EQ_INT(items__v1__item_service__get_item_call(c, &get, 0, on_message, on_done, &r[1]), 0);
  wait_all(&loop, &r[1], 1);
  CHECK_EQ_INT(r[1].code, SB_CODE_UNAVAILABLE);
  /* The server is back on the same port: the same client connects again. */
  REQUIRE(start_server(&srv, srv.port) == 0);
  CHECK_EQ_INT(items__v1__item_service__get_item_call(c, &get, 0, on_message, on_done, &r[2]), 0);
  wait_all(&loop, &r[2], 1);
  CHECK_EQ_INT(r[2].code, SB_CODE_OK);
  sb_client_free(c);
  sb_client_t *bad = NULL;
  CHECK_EQ_INT(sb_client_new(&loop, "no-port", &bad), SB_EINVAL);
  CHECK_EQ_INT(sb_client_new(&loop, "localhost:80", &bad), SB_EINVAL); /* numeric only */
  drain(&loop);
  CHECK_EQ_INT(uv_loop_close(&loop), 0);
  stop_server(&srv);
}

TEST(rest_stubs) {
  server_t srv;
  uv_loop_t loop;
  sb_client_t *c = NULL;
  REQUIRE(setup(&srv, &loop, &c) == 0);
  result_t r[6];
  memset(r, 0, sizeof r);
  Items__V1__GetItemRequest get = ITEMS__V1__GET_ITEM_REQUEST__INIT;
  get.id = 7; /* GET /items/{id} */
  CHECK_EQ_INT(items__v1__item_service__get_item_rest_call(c, &get, 0, on_message, on_done, &r[0]),
               0);
  Items__V1__GetItemRequest missing = ITEMS__V1__GET_ITEM_REQUEST__INIT;
  missing.id = 8;
  CHECK_EQ_INT(
      items__v1__item_service__get_item_rest_call(c, &missing, 0, on_message, on_done, &r[1]), 0);
  Items__V1__CreateItemRequest create = ITEMS__V1__CREATE_ITEM_REQUEST__INIT;
  create.name = "lamp / \"desk\""; /* POST /items, body "*" */
  create.price = 12.25;
  CHECK_EQ_INT(
      items__v1__item_service__create_item_rest_call(c, &create, 0, on_message, on_done, &r[2]), 0);
  Items__V1__CreateItemRequest invalid = ITEMS__V1__CREATE_ITEM_REQUEST__INIT;
  invalid.name = ""; /* the contract's rules: INVALID_ARGUMENT from the error body */
  CHECK_EQ_INT(
      items__v1__item_service__create_item_rest_call(c, &invalid, 0, on_message, on_done, &r[3]),
      0);
  Items__V1__Item item = ITEMS__V1__ITEM__INIT;
  item.id = 5;
  item.name = "renamed";
  Items__V1__UpdateItemRequest update = ITEMS__V1__UPDATE_ITEM_REQUEST__INIT;
  update.item = &item; /* PATCH /items/{item.id}, body "item" */
  CHECK_EQ_INT(
      items__v1__item_service__update_item_rest_call(c, &update, 0, on_message, on_done, &r[4]), 0);
  Items__V1__ListItemsRequest list = ITEMS__V1__LIST_ITEMS_REQUEST__INIT;
  list.page_size = 42; /* GET /items?page_size=42&page_token=... */
  list.page_token = "a b&c";
  CHECK_EQ_INT(
      items__v1__item_service__list_items_rest_call(c, &list, 0, on_message, on_done, &r[5]), 0);
  wait_all(&loop, r, 6);
  CHECK_EQ_INT(r[0].code, SB_CODE_OK);
  CHECK_EQ_STR(r[0].names, "seven,");
  CHECK_EQ_INT(r[0].id, 7);
  CHECK(r[0].price == 7.5);
  CHECK_EQ_INT(r[1].code, SB_CODE_NOT_FOUND);
  CHECK_EQ_STR(r[1].message, "no such item: 100%");
  CHECK_EQ_INT(r[1].msgs, 0);
  CHECK_EQ_INT(r[2].code, SB_CODE_OK);
  CHECK_EQ_STR(r[2].names, "lamp / \"desk\",");
  CHECK_EQ_INT(r[2].id, 99);
  CHECK(r[2].price == 12.25);
  CHECK_EQ_INT(r[3].code, SB_CODE_INVALID_ARGUMENT);
  CHECK(strstr(r[3].message, "name") != NULL);
  CHECK_EQ_INT(r[4].code, SB_CODE_OK);
  CHECK_EQ_STR(r[4].names, "renamed,");
  CHECK_EQ_INT(r[4].id, 5);
  CHECK_EQ_INT(r[5].code, SB_CODE_OK);
  CHECK_EQ_STR(r[5].names, "a b&c,");
  /* Streaming methods have no REST stub; the generic call refuses them. */
  Items__V1__WatchItemsRequest watch = ITEMS__V1__WATCH_ITEMS_REQUEST__INIT;
  result_t w;
  memset(&w, 0, sizeof w);
  CHECK_EQ_INT(sb_client_call_rest(c, &items__v1__item_service__desc.methods[5], &watch.base, 0,
                                   on_message, on_done, &w),
               SB_EINVAL);
  sb_client_free(c);
  drain(&loop);
  CHECK_EQ_INT(uv_loop_close(&loop), 0);
  stop_server(&srv);
}
