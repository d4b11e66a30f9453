/*
 * libFuzzer target: the REST front-end, end to end. Raw HTTP/1.1 client bytes go through the
 * real connection code into protocols/rest: route matching against the items example's
 * google.api.http templates, percent-decoding of path variables and query strings, query and
 * path binding (sb_pbjson_set_text), JSON body decoding, Idempotency-Key handling, error bodies,
 * response encoding, ETag/304 and server-streaming output.
 *
 * The handlers answer at once, so every call finishes within the input that started it; the
 * harness (cutting the stream, running the loop, closing, leak-freedom per input) is
 * fuzz_conn.h's. Seeds in fuzz/corpus/rest/.
 */
#include "fuzz_conn.h"

#include "items.sb.h"

static sb_rpc_t *fuzz_rpc; /* process lifetime, like fuzz_srv */

static void get_item(sb_call_t *call, const Items__V1__GetItemRequest *req, Items__V1__Item *res,
                     void *ud) {
  (void)ud;
  if (req->id % 2) {
    sb_call_finish(call, SB_CODE_NOT_FOUND, "odd items do not exist");
    return;
  }
  res->id = req->id;
  res->name = sb_call_strdup(call, "n\"\\\x01");
  res->price = req->id * 0.5;
  sb_call_finish(call, SB_CODE_OK, NULL);
}

static void create_item(sb_call_t *call, const Items__V1__CreateItemRequest *req,
                        Items__V1__Item *res, void *ud) {
  (void)ud;
  res->id = 1;
  res->name = req->name;
  res->price = req->price;
  sb_call_finish(call, SB_CODE_OK, NULL);
}

static void list_items(sb_call_t *call, const Items__V1__ListItemsRequest *req,
                       Items__V1__ListItemsResponse *res, void *ud) {
  (void)ud;
  res->next_page_token = req->page_token;
  sb_call_finish(call, req->page_size > 1000 ? SB_CODE_INVALID_ARGUMENT : SB_CODE_OK, NULL);
}

static void update_item(sb_call_t *call, const Items__V1__UpdateItemRequest *req,
                        Items__V1__Item *res, void *ud) {
  (void)ud;
  if (!req->item) {
    sb_call_finish(call, SB_CODE_INVALID_ARGUMENT, "item: required");
    return;
  }
  res->id = req->item->id;
  res->name = req->item->name;
  res->price = req->update_mask ? (double)req->update_mask->n_paths : req->item->price;
  sb_call_finish(call, SB_CODE_OK, NULL);
}

static void delete_item(sb_call_t *call, const Items__V1__DeleteItemRequest *req,
                        Google__Protobuf__Empty *res, void *ud) {
  (void)res, (void)ud;
  sb_call_finish(call, req->id ? SB_CODE_OK : SB_CODE_FAILED_PRECONDITION, NULL);
}

static void watch_items(sb_call_t *call, const Items__V1__WatchItemsRequest *req,
                        Items__V1__ItemEvent *res, void *ud) {
  (void)res, (void)ud;
  Items__V1__Item item = ITEMS__V1__ITEM__INIT;
  Items__V1__ItemEvent ev = ITEMS__V1__ITEM_EVENT__INIT;
  item.id = req->since_id;
  ev.item = &item;
  for (uint32_t i = 0; i < req->since_id % 4; i++)
    if (sb_call_send(call, &ev.base) < 0) break;
  sb_call_finish(call, req->since_id == 3 ? SB_CODE_INTERNAL : SB_CODE_OK, NULL);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fuzz_setup();
  /* The RPC registry takes the "/" route over from fuzz_handler. */
  if (sb_rpc_new(fuzz_srv, &fuzz_rpc) != 0) abort();
  static const Items__V1__ItemService_Handlers handlers = {get_item,    create_item, list_items,
                                                           update_item, delete_item, watch_items};
  if (items__v1__item_service__register(fuzz_rpc, &handlers, NULL) != 0) abort();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_one_connection(NULL, 0, data, size);
  return 0;
}
