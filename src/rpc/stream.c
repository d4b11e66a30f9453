/*
 * The stream side of a call, shared by every front-end: request streams (messages delivered
 * one by one to the handler's callbacks), cancellation, response metadata set by handlers, and
 * the hold count that keeps a call alive across front-end code that may finish it.
 *
 * Holding. A front-end that delivers several messages in one loop (one HTTP/2 DATA frame may
 * carry many gRPC messages) calls the handler, which may finish the call, which frees it. So
 * delivery holds the call: sb__call_free() while held only marks it, and the last release
 * frees it. Front-end state kept in the call's arena stays valid until that release.
 *
 * Threads: everything here runs on the call's loop.
 */
#include <stdlib.h>
#include <string.h>

#include "core/codec.h"
#include "rpc/rpc_int.h"
#include "switchboard/error.h"

void sb__call_hold(sb_call_t *call) {
  call->hold++;
}

void sb__call_release(sb_call_t *call) {
  if (--call->hold == 0 && call->free_pending) sb__call_free(call);
}

static int streams_input(const sb_call_t *call) {
  return call->method->kind == SB_METHOD_CLIENT_STREAMING ||
         call->method->kind == SB_METHOD_BIDI_STREAMING;
}

void sb__call_dispatch(sb_call_t *call) {
  const sb__svc_t *svc = call->svc;
  sb__call_hold(call);
  if (svc->desc->dispatch(svc->handlers, call->mi, call, call->request, call->response, svc->ud))
    sb_call_finish(call, SB_CODE_UNIMPLEMENTED, "method not implemented");
  else if (streams_input(call) && !call->ops->stream_input) {
    /* The front-end already decoded the whole request: it is the stream's only message. */
    sb__call_deliver(call, call->request);
    sb__call_deliver_end(call);
  }
  sb__call_release(call);
}

void sb__call_deliver(sb_call_t *call, const ProtobufCMessage *msg) {
  if (call->finished || call->cancelled || !call->stream.on_message) return;
  sb__call_hold(call);
  /* Each message of a client stream meets the contract's rules before the handler sees it;
   * a violation ends the call with INVALID_ARGUMENT. */
  if ((call->method->kind == SB_METHOD_CLIENT_STREAMING ||
       call->method->kind == SB_METHOD_BIDI_STREAMING) &&
      sb__call_validate(call, msg)) {
    sb__call_release(call);
    return;
  }
  call->stream.on_message(call, msg, call->stream.ud);
  sb__call_release(call);
}

/* Runs one of the handler's event callbacks (if set) while holding the call. */
static void run_event(sb_call_t *call, sb_call_event_cb cb) {
  if (!cb) return;
  sb__call_hold(call);
  cb(call, call->stream.ud);
  sb__call_release(call);
}

void sb__call_deliver_end(sb_call_t *call) {
  if (call->finished || call->cancelled) return;
  run_event(call, call->stream.on_end);
}

void sb__call_cancel(sb_call_t *call) {
  call->cancelled = 1;
  if (call->finished || call->cancel_told) return;
  call->cancel_told = 1;
  run_event(call, call->stream.on_cancel);
}

void sb__call_writable(sb_call_t *call) {
  if (call->finished || call->cancelled) return;
  run_event(call, call->stream.on_writable);
}

void sb_call_set_stream(sb_call_t *call, const sb_call_stream_t *cbs) {
  call->stream = *cbs;
}

int sb_call_pause_recv(sb_call_t *call, int paused) {
  if (call->finished || !call->ops->pause) return SB_ESTATE;
  return call->ops->pause(call, paused);
}

const uint8_t *sb_call_metadata_bin(sb_call_t *call, const char *key, size_t *len) {
  const char *v = sb_call_metadata(call, key);
  if (!v) return NULL;
  size_t n = strlen(v);
  uint8_t *out = sb_arena_alloc(&call->arena, SB_BASE64_DECODED_MAX(n) + 1);
  if (!out) return NULL;
  long dl = sb_base64_decode(v, n, out);
  if (dl < 0) return NULL;
  out[dl] = '\0';
  if (len) *len = (size_t)dl;
  return out;
}

/* Keys a handler may not set: the transport's and the protocol's own fields. */
static int reserved_key(const char *key, size_t n) {
  static const char *const names[] = {
      "content-type", "content-length", "content-encoding", "te",   "transfer-encoding",
      "connection",   "host",           "user-agent",       "date", "server",
      "trailer",      "keep-alive",     "upgrade"};
  if (n >= 5 && memcmp(key, "grpc-", 5) == 0) return strcmp(key, "grpc-status-details-bin") != 0;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcmp(names[i], key) == 0) return 1;
  return 0;
}

/* Appends key/value to *list after validating both. Returns as sb_call_set_header(). */
static int md_add(sb_call_t *call, sb__md_t **list, const char *key, const void *value,
                  size_t len) {
  if (call->finished) return SB_ESTATE;
  size_t n = key ? strlen(key) : 0;
  if (n == 0 || (len && !value) || reserved_key(key, n)) return SB_EINVAL;
  for (size_t i = 0; i < n; i++) {
    char c = key[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
      return SB_EINVAL;
  }
  int bin = n > 4 && memcmp(key + n - 4, "-bin", 4) == 0;
  const uint8_t *v = value;
  for (size_t i = 0; i < len && !bin; i++)
    if (v[i] < 0x20 || v[i] > 0x7e) return SB_EINVAL;
  sb__md_t *md = sb_arena_alloc(&call->arena, sizeof *md);
  char *k = sb_arena_strndup(&call->arena, key, n);
  char *val = sb_arena_strndup(&call->arena, len ? value : "", len);
  if (!md || !k || !val) return SB_ENOMEM;
  *md = (sb__md_t){NULL, k, (const uint8_t *)val, len};
  while (*list)
    list = &(*list)->next;
  *list = md;
  return 0;
}

int sb_call_set_header(sb_call_t *call, const char *key, const void *value, size_t len) {
  if (call->headers_out) return SB_ESTATE;
  return md_add(call, &call->res_headers, key, value, len);
}

int sb_call_set_trailer(sb_call_t *call, const char *key, const void *value, size_t len) {
  return md_add(call, &call->res_trailers, key, value, len);
}

int sb_call_set_event_id(sb_call_t *call, const char *id) {
  if (call->finished) return SB_ESTATE;
  if (!id || strpbrk(id, "\r\n")) return SB_EINVAL;
  char *copy = sb_arena_strndup(&call->arena, id, strlen(id));
  if (!copy) return SB_ENOMEM;
  call->event_id = copy;
  return 0;
}

void sb_call_set_compress(sb_call_t *call, int on) {
  call->compress = on ? 1 : 0;
}

int sb_call_request_compressed(const sb_call_t *call) {
  return call->in_compressed;
}

uint64_t sb_call_deadline(const sb_call_t *call) {
  return call->deadline_ms;
}

/* ---- completion from another thread ---- */

struct sb_call_async {
  uv_async_t async; /* on the call's loop; the struct is freed in its close callback */
  sb_call_t *call;  /* borrowed until the completion ran */
  sb_code_t code;   /* written by the completing thread before uv_async_send() */
  char *message;    /* owned copy, or NULL */
};

static void async_free(uv_handle_t *h) {
  sb_call_async_t *a = h->data;
  free(a->message);
  free(a);
}

static void async_run(uv_async_t *h) {
  sb_call_async_t *a = h->data;
  sb_call_finish(a->call, a->code, a->message);
  uv_close((uv_handle_t *)&a->async, async_free);
}

int sb_call_async_new(sb_call_t *call, sb_call_async_t **out) {
  sb_call_async_t *a = calloc(1, sizeof *a);
  if (!a || uv_async_init(call->loop, &a->async, async_run)) {
    free(a);
    return SB_ENOMEM;
  }
  a->async.data = a;
  a->call = call;
  *out = a;
  return 0;
}

void sb_call_async_finish(sb_call_async_t *a, sb_code_t code, const char *message) {
  a->code = code;
  a->message = message ? strdup(message) : NULL;
  uv_async_send(&a->async);
}
