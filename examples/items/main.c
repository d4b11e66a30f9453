/*
 * The items example: ItemService (items.proto) over an in-memory store.
 *
 *   build/examples/items --http 127.0.0.1:8080
 *   curl -X POST localhost:8080/items -d '{"name":"lamp","price":12.5}'   -> 201 {"id":1,...}
 *   curl localhost:8080/items/1                                         -> 200
 *   curl localhost:8080/items/42                                        -> 404 {"code":5,...}
 *
 * Handlers run on whichever worker loop received the request, so the store is shared under a
 * mutex; every handler answers at once (nothing here waits).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "items.sb.h"
#include "switchboard/switchboard.h"

#define ITEMS_MAX 8388608u /* store capacity; calloc'd, so pages are touched only as items come */
#define ITEMS_PAGE_DEFAULT 50u /* ListItems page size when none is given */
#define ITEMS_PAGE_MAX 1000u

typedef struct item {
  uint32_t id; /* 0 = free slot */
  char *name;  /* owned */
  double price;
} item_t;

typedef struct store {
  pthread_mutex_t mu;
  item_t *items;    /* indexed by id - 1; capacity ITEMS_MAX */
  uint32_t next_id; /* ids are never reused */
} store_t;

static item_t *find(store_t *s, uint32_t id) {
  if (id == 0 || id > s->next_id - 1 || id > ITEMS_MAX) return NULL;
  item_t *it = &s->items[id - 1];
  return it->id ? it : NULL;
}

/* Copies a stored item into a response message (strings into the call's memory). */
static void fill(sb_call_t *call, Items__V1__Item *out, const item_t *it) {
  out->id = it->id;
  out->name = sb_call_strdup(call, it->name);
  out->price = it->price;
}

static void get_item(sb_call_t *call, const Items__V1__GetItemRequest *req, Items__V1__Item *res,
                     void *ud) {
  store_t *s = ud;
  pthread_mutex_lock(&s->mu);
  item_t *it = find(s, req->id);
  if (it) fill(call, res, it);
  pthread_mutex_unlock(&s->mu);
  if (!it) {
    char msg[64];
    snprintf(msg, sizeof msg, "item %u not found", req->id);
    sb_call_finish(call, SB_CODE_NOT_FOUND, msg);
    return;
  }
  sb_call_finish(call, SB_CODE_OK, NULL);
}

static void create_item(sb_call_t *call, const Items__V1__CreateItemRequest *req,
                        Items__V1__Item *res, void *ud) {
  store_t *s = ud;
  if (!req->name || !req->name[0]) {
    sb_call_finish(call, SB_CODE_INVALID_ARGUMENT, "name: must not be empty");
    return;
  }
  char *name = strdup(req->name);
  if (!name) {
    sb_call_finish(call, SB_CODE_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  pthread_mutex_lock(&s->mu);
  if (s->next_id > ITEMS_MAX) {
    pthread_mutex_unlock(&s->mu);
    free(name);
    sb_call_finish(call, SB_CODE_RESOURCE_EXHAUSTED, "the store is full");
    return;
  }
  item_t *it = &s->items[s->next_id - 1];
  *it = (item_t){s->next_id++, name, req->price};
  fill(call, res, it);
  pthread_mutex_unlock(&s->mu);
  sb_call_finish(call, SB_CODE_OK, NULL);
}

static void list_items(sb_call_t *call, const Items__V1__ListItemsRequest *req,
                       Items__V1__ListItemsResponse *res, void *ud) {
  store_t *s = ud;
  uint32_t size = req->page_size ? req->page_size : ITEMS_PAGE_DEFAULT;
  if (size > ITEMS_PAGE_MAX) size = ITEMS_PAGE_MAX;
  /* The page token is the id to continue from, as decimal text. */
  uint32_t from = 1;
  if (req->page_token && req->page_token[0]) {
    char *end;
    unsigned long v = strtoul(req->page_token, &end, 10);
    if (*end || v == 0 || v > ITEMS_MAX + 1ul) {
      sb_call_finish(call, SB_CODE_INVALID_ARGUMENT, "page_token: invalid");
      return;
    }
    from = (uint32_t)v;
  }
  Items__V1__Item **page = sb_call_alloc(call, size * sizeof *page);
  if (!page) {
    sb_call_finish(call, SB_CODE_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  size_t n = 0;
  pthread_mutex_lock(&s->mu);
  uint32_t id = from;
  for (; id < s->next_id && n < size; id++) {
    item_t *it = find(s, id);
    if (!it) continue;
    Items__V1__Item *m = sb_call_alloc(call, sizeof *m);
    if (!m) break;
    items__v1__item__init(m);
    fill(call, m, it);
    page[n++] = m;
  }
  uint32_t last = s->next_id;
  pthread_mutex_unlock(&s->mu);
  res->items = page;
  res->n_items = n;
  if (id < last) {
    char tok[16];
    snprintf(tok, sizeof tok, "%u", id);
    res->next_page_token = sb_call_strdup(call, tok);
  }
  sb_call_finish(call, SB_CODE_OK, NULL);
}

static void update_item(sb_call_t *call, const Items__V1__UpdateItemRequest *req,
                        Items__V1__Item *res, void *ud) {
  store_t *s = ud;
  if (!req->item) {
    sb_call_finish(call, SB_CODE_INVALID_ARGUMENT, "item: required");
    return;
  }
  /* Without a mask, the populated fields are updated (AIP-134); with one, the named ones. */
  int set_name = req->item->name && req->item->name[0], set_price = req->item->price != 0;
  if (req->update_mask && req->update_mask->n_paths) {
    set_name = set_price = 0;
    for (size_t i = 0; i < req->update_mask->n_paths; i++) {
      const char *p = req->update_mask->paths[i];
      if (strcmp(p, "name") == 0)
        set_name = 1;
      else if (strcmp(p, "price") == 0)
        set_price = 1;
      else {
        sb_call_finish(call, SB_CODE_INVALID_ARGUMENT, "update_mask: unknown path");
        return;
      }
    }
  }
  char *name = set_name ? strdup(req->item->name ? req->item->name : "") : NULL;
  if (set_name && !name) {
    sb_call_finish(call, SB_CODE_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  pthread_mutex_lock(&s->mu);
  item_t *it = find(s, req->item->id);
  if (it) {
    if (set_name) {
      free(it->name);
      it->name = name;
      name = NULL;
    }
    if (set_price) it->price = req->item->price;
    fill(call, res, it);
  }
  pthread_mutex_unlock(&s->mu);
  free(name);
  if (!it) {
    sb_call_finish(call, SB_CODE_NOT_FOUND, "item not found");
    return;
  }
  sb_call_finish(call, SB_CODE_OK, NULL);
}

static void delete_item(sb_call_t *call, const Items__V1__DeleteItemRequest *req,
                        Google__Protobuf__Empty *res, void *ud) {
  (void)res;
  store_t *s = ud;
  pthread_mutex_lock(&s->mu);
  item_t *it = find(s, req->id);
  if (it) {
    free(it->name);
    *it = (item_t){0};
  }
  pthread_mutex_unlock(&s->mu);
  sb_call_finish(call, it ? SB_CODE_OK : SB_CODE_NOT_FOUND, it ? NULL : "item not found");
}

/* Streams the items after since_id, then ends the stream. (Live updates need cross-loop
 * delivery, which the RPC layer does not offer yet.) */
static void watch_items(sb_call_t *call, const Items__V1__WatchItemsRequest *req,
                        Items__V1__ItemEvent *res, void *ud) {
  (void)res;
  store_t *s = ud;
  uint32_t since = req->since_id;
  if (req->last_event_id && req->last_event_id[0]) {
    unsigned long last = strtoul(req->last_event_id, NULL, 10);
    if (last > since && last <= ITEMS_MAX) since = (uint32_t)last;
  }
  pthread_mutex_lock(&s->mu);
  for (uint32_t id = since + 1; id < s->next_id; id++) {
    item_t *it = find(s, id);
    if (!it) continue;
    Items__V1__Item item = ITEMS__V1__ITEM__INIT;
    Items__V1__ItemEvent ev = ITEMS__V1__ITEM_EVENT__INIT;
    item.id = it->id;
    item.name = it->name;
    item.price = it->price;
    ev.item = &item;
    char eid[16];
    snprintf(eid, sizeof eid, "%u", it->id);
    sb_call_set_event_id(call, eid);
    if (sb_call_send(call, &ev.base) < 0) break;
  }
  pthread_mutex_unlock(&s->mu);
  sb_call_finish(call, SB_CODE_OK, NULL);
}

int main(int argc, char **argv) {
  sb_serve_opts_t opts;
  char err[256];
  int skip = argc > 1 && strcmp(argv[1], "serve") == 0;
  if (sb_serve_parse(argc - 1 - skip, argv + 1 + skip, &opts, err, sizeof err)) {
    fprintf(stderr, "items: %s\n", err);
    return 2;
  }
  sb_log_set_level(opts.log_level);
  store_t store = {.next_id = 1};
  pthread_mutex_init(&store.mu, NULL);
  store.items = calloc(ITEMS_MAX, sizeof *store.items);
  sb_server_t *srv = NULL;
  sb_rpc_t *rpc = NULL;
  int rc = store.items ? sb_server_new(&opts.server, &srv) : SB_ENOMEM;
  if (!rc) rc = sb_rpc_new(srv, &rpc);
  if (!rc) sb_rpc_set_ignore_unknown_fields(rpc, opts.json_ignore_unknown);
  if (!rc && opts.docs_dir) rc = sb_rpc_set_docs_dir(rpc, opts.docs_dir);
  if (!rc && opts.trpc_base) rc = sb_rpc_set_trpc_base(rpc, opts.trpc_base);
  if (!rc) rc = sb_rpc_set_trpc_method_override(rpc, opts.trpc_method_override);
  static const Items__V1__ItemService_Handlers handlers = {get_item,    create_item, list_items,
                                                           update_item, delete_item, watch_items};
  if (!rc) rc = items__v1__item_service__register(rpc, &handlers, &store);
  if (!rc) rc = sb_server_run(srv);
  if (rc) fprintf(stderr, "items: %s\n", sb_strerror(rc));
  sb_server_free(srv);
  sb_rpc_free(rpc);
  for (uint32_t i = 0; store.items && i + 1 < store.next_id; i++)
    free(store.items[i].name);
  free(store.items);
  pthread_mutex_destroy(&store.mu);
  return rc ? 1 : 0;
}
