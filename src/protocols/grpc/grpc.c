/*
 * gRPC front-end: the registered services over HTTP/2 (h2c prior knowledge, h2c upgrade and h2
 * over TLS), on the same listener and port as REST.
 *
 * A request is POST /<package>.<Service>/<Method> with content-type application/grpc (or
 * application/grpc+proto). Its body is a sequence of length-prefixed messages (wire.h), the
 * response is HEADERS, length-prefixed messages, then trailers with grpc-status and
 * grpc-message. An error before anything was sent is a Trailers-Only response: one HEADERS
 * frame carrying the status. Problems of HTTP itself (wrong method, wrong content-type,
 * HTTP/1) get HTTP statuses, as the gRPC spec asks.
 *
 * gRPC-Web (for browsers, no proxy) is the same exchange with three differences, over HTTP/1.1
 * or HTTP/2: content-type application/grpc-web(+proto), or application/grpc-web-text(+proto)
 * where both bodies are base64 (requests: any split into 4-character groups, padded groups
 * allowed mid-stream; responses: each write encoded on its own, padded); the trailers travel
 * in the body as a last frame with flag 0x80 whose payload is "name: value\r\n" lines; and
 * CORS: OPTIONS preflights on method paths are answered, responses carry
 * access-control-allow-origin and expose the grpc-* headers. Browsers cannot stream requests,
 * so streaming-input methods are not offered there (UNIMPLEMENTED).
 *
 * Call lifecycle. The front-end state (grpc_call_t) lives in the call's arena. Unary and
 * server-streaming methods are invoked once the body ended with exactly one message;
 * client-streaming and bidirectional ones at once, with messages delivered as they arrive.
 * Two things end: the exchange (the HTTP response; end_exchange()) and the call (released by
 * release(), which frees it). The handler's sb_call_finish() does both. A deadline, a
 * reset stream or bad input ends the exchange early; a call already handed to the handler is
 * then cancelled (sb__call_cancel) and stays alive until the handler finishes it, one that
 * was not is released at once.
 *
 * Threads: everything runs on the exchange's loop; the deadline timer is on that loop too.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "contract/pbjson.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/codec.h"
#include "protocols/grpc/grpc_int.h"
#include "protocols/grpc/services.h"
#include "protocols/grpc/wire.h"
#include "rpc/rpc_int.h"
#include "switchboard/error.h"
#include "switchboard/log.h"

#define GRPC_CT "application/grpc" /* the content-type we answer with */
/* What we can decompress. We answer in gzip only (when the client accepts it), but take
 * "deflate" too: grpc-js, gRPC C++ and grpc-go send it when configured to, and a client that
 * never sees a response header (Trailers-Only errors) cannot learn that we refuse it. */
#define GRPC_ACCEPT_ENCODING "identity,deflate,gzip"
#define GRPC_WEB_CT "application/grpc-web+proto"
#define GRPC_WEB_TEXT_CT "application/grpc-web-text+proto"
#define GRPC_WEB_TRAILER_FLAG 0x80u   /* frame flag of the gRPC-Web trailer frame */
#define GRPC_WEB_CORS_MAX_AGE "86400" /* seconds a browser may cache a preflight answer */
#define GRPC_WEB_EXPOSE "grpc-status,grpc-message,grpc-status-details-bin,grpc-encoding"
#define GRPC_WEB_ALLOW_HEADERS                                                                     \
  "content-type,x-grpc-web,x-user-agent,grpc-timeout,grpc-encoding,grpc-accept-encoding"

void sb_rpc_set_max_recv(sb_rpc_t *rpc, size_t bytes) {
  rpc->max_recv = bytes;
}

/* The protocol of req; *json is set for Connect's JSON codec. */
static enum grpc_mode request_mode(sb_http_req_t *req, unsigned *json) {
  const char *ct = sb_http_req_header(req, "content-type", NULL);
  *json = 0;
  if (sb__media_is(ct, "application/grpc-web-text")) return MODE_WEB_TEXT;
  if (sb__media_is(ct, "application/grpc-web")) return MODE_WEB;
  if (sb__media_is(ct, GRPC_CT)) return MODE_GRPC;
  return sb__connect_mode(req, json);
}

static const sb__svc_t *find_method(sb_rpc_t *rpc, const char *path, size_t *mi);

/* A CORS preflight for a gRPC-Web call: OPTIONS on a method's path, asking for a method. */
static int web_preflight(sb_rpc_t *rpc, sb_http_req_t *req) {
  size_t mi;
  return strcmp(sb_http_req_method(req), "OPTIONS") == 0 &&
         sb_http_req_header(req, "access-control-request-method", NULL) &&
         find_method(rpc, sb_http_req_path(req), &mi);
}

int sb__grpc_match(sb_rpc_t *rpc, sb_http_req_t *req) {
  unsigned json;
  return request_mode(req, &json) != MODE_NONE || web_preflight(rpc, req);
}

/* ---- response pieces ---- */

static int to_header(void *req, const char *name, const char *value) {
  return sb_http_res_header(req, name, value);
}

static int to_trailer(void *req, const char *name, const char *value) {
  return sb_http_res_trailer(req, name, value);
}

/* Appends "name: value\r\n" to the sb_buf to (the gRPC-Web trailer block). */
static int to_block(void *to, const char *name, const char *value) {
  return sb_buf_appendf(to, "%s: %s\r\n", name, value);
}

int sb__grpc_put_md(sb__field_fn put, void *to, const sb__md_t *md) {
  size_t kl = strlen(md->key);
  int bin = kl > 4 && memcmp(md->key + kl - 4, "-bin", 4) == 0;
  const char *val = (const char *)md->val;
  char small[256];
  char *big = NULL;
  if (bin) {
    size_t need = (md->len + 2) / 3 * 4 + 1;
    char *dst = need <= sizeof small ? small : (big = malloc(need));
    if (!dst) return SB_ENOMEM;
    dst[sb_base64_encode(md->val, md->len, dst)] = '\0';
    val = dst;
  }
  int rc = put(to, md->key, val);
  free(big);
  return rc;
}

/* Adds grpc-status, grpc-message and the handler's trailers through put. */
static void put_status(grpc_call_t *gc, sb__field_fn put, void *to, sb_code_t code,
                       const char *msg) {
  char num[12];
  snprintf(num, sizeof num, "%d", (int)code);
  put(to, "grpc-status", num);
  if (msg && msg[0]) {
    sb_buf_t enc = {0};
    if (!sb_grpc_pct_encode(msg, strlen(msg), &enc))
      put(to, "grpc-message", (const char *)sb_buf_head(&enc));
    sb_buf_free(&enc);
  }
  for (const sb__md_t *md = gc && gc->call ? gc->call->res_trailers : NULL; md; md = md->next)
    sb__grpc_put_md(put, to, md);
}

static const char *mode_ct(enum grpc_mode mode) {
  return mode == MODE_WEB ? GRPC_WEB_CT : mode == MODE_WEB_TEXT ? GRPC_WEB_TEXT_CT : GRPC_CT;
}

/* gRPC-Web answers to a browser's origin: allow it and let scripts read the status. */
void sb__grpc_put_cors(sb_http_req_t *req, enum grpc_mode mode, const grpc_call_t *gc) {
  const char *origin = sb_http_req_header(req, "origin", NULL);
  if (mode < MODE_WEB || !origin) return;
  sb_http_res_header(req, "access-control-allow-origin", origin);
  sb_http_res_header(req, "vary", "origin");
  sb_buf_t expose = {0};
  sb_buf_append(&expose, GRPC_WEB_EXPOSE, sizeof GRPC_WEB_EXPOSE - 1);
  for (const sb__md_t *md = gc ? gc->call->res_headers : NULL; md; md = md->next)
    sb_buf_appendf(&expose, ",%s", md->key);
  for (const sb__md_t *md = gc ? gc->call->res_trailers : NULL; md; md = md->next)
    sb_buf_appendf(&expose, ",%s", md->key);
  if (!sb_buf_append(&expose, "", 1))
    sb_http_res_header(req, "access-control-expose-headers", (const char *)sb_buf_head(&expose));
  sb_buf_free(&expose);
}

/* A Trailers-Only response for req: one HEADERS frame with the status (gRPC-Web: status in
 * the headers and an empty body). Ends the exchange. */
static void respond_status(sb_http_req_t *req, enum grpc_mode mode, grpc_call_t *gc, sb_code_t code,
                           const char *msg) {
  sb_http_res_header(req, "content-type", mode_ct(mode));
  if (code == SB_CODE_UNIMPLEMENTED)
    sb_http_res_header(req, "grpc-accept-encoding", GRPC_ACCEPT_ENCODING);
  sb__grpc_put_cors(req, mode, gc);
  for (const sb__md_t *md = gc ? gc->call->res_headers : NULL; md; md = md->next)
    sb__grpc_put_md(to_header, req, md);
  put_status(gc, to_header, req, code, msg);
  sb_http_res_end(req);
}

/* The answer to a gRPC-Web CORS preflight. */
static void respond_preflight(sb_http_req_t *req) {
  const char *origin = sb_http_req_header(req, "origin", NULL);
  const char *want = sb_http_req_header(req, "access-control-request-headers", NULL);
  sb_http_res_header(req, "access-control-allow-origin", origin ? origin : "*");
  sb_http_res_header(req, "access-control-allow-methods", "POST, OPTIONS");
  /* Echoing what the page asks for lets it send its own metadata. */
  if (sb_http_res_header(req, "access-control-allow-headers", want ? want : GRPC_WEB_ALLOW_HEADERS))
    sb_http_res_header(req, "access-control-allow-headers", GRPC_WEB_ALLOW_HEADERS);
  sb_http_res_header(req, "access-control-max-age", GRPC_WEB_CORS_MAX_AGE);
  sb_http_res_header(req, "vary", "origin");
  sb_http_respond(req, 204, NULL, NULL, 0);
}

/* Writes response body bytes: as they are, or base64 for grpc-web-text (each write padded on
 * its own; clients decode 4-character groups). Returns as sb_http_res_write(). */
static int write_body(const grpc_call_t *gc, sb_http_req_t *req, const uint8_t *data, size_t len) {
  if (gc->mode != MODE_WEB_TEXT) return sb_http_res_write(req, data, len);
  char *text = malloc((len + 2) / 3 * 4 + 1);
  if (!text) return SB_ENOMEM;
  size_t n = sb_base64_encode(data, len, text);
  int rc = sb_http_res_write(req, text, n);
  free(text);
  return rc;
}

/* Sends the response headers (once). Returns as sb_http_res_flush_headers(). */
static int start_response(grpc_call_t *gc) {
  if (gc->started) return 0;
  gc->started = 1;
  gc->call->headers_out = 1;
  sb_http_req_t *req = gc->req;
  if (gc->mode == MODE_CONNECT_STREAM) {
    sb_http_res_header(req, "content-type", sb__connect_ct(gc));
    if (gc->out_gzip) sb_http_res_header(req, "connect-content-encoding", "gzip");
    sb_http_res_header(req, "connect-accept-encoding", "gzip");
  } else {
    sb_http_res_header(req, "content-type", mode_ct(gc->mode));
    if (gc->out_gzip) sb_http_res_header(req, "grpc-encoding", "gzip");
    sb_http_res_header(req, "grpc-accept-encoding", GRPC_ACCEPT_ENCODING);
  }
  sb__grpc_put_cors(req, gc->mode, gc);
  for (const sb__md_t *md = gc->call->res_headers; md; md = md->next)
    sb__grpc_put_md(to_header, req, md);
  return sb_http_res_flush_headers(req);
}

/* Appends msg encoded with the call's codec (protobuf binary, or JSON for Connect's JSON) to
 * out. Returns 0 or SB_ENOMEM. */
static int encode(const grpc_call_t *gc, const ProtobufCMessage *msg, sb_buf_t *out) {
  if (gc->json) {
    sb_jw_t w;
    sb_jw_init(&w, out);
    return sb_pbjson_write(&w, msg, 0);
  }
  size_t n = protobuf_c_message_get_packed_size(msg);
  if (n == 0) return 0; /* an empty message: nothing to pack (and out may have no storage) */
  int rc = sb_buf_reserve(out, n);
  if (!rc) out->len += protobuf_c_message_pack(msg, out->data + out->len);
  return rc;
}

/* Encodes msg as one length-prefixed message (an envelope, for Connect streams) and writes
 * it. Returns as sb_http_res_write(), or SB_ENOMEM. */
static int write_message(grpc_call_t *gc, const ProtobufCMessage *msg) {
  int rc = start_response(gc);
  if (rc) return rc;
  sb_buf_t plain = {0}, out = {0};
  rc = encode(gc, msg, &plain);
  if (!rc && gc->call->compress && gc->out_gzip) {
    sb_buf_t z = {0};
    rc = sb_grpc_gzip(sb_buf_head(&plain), sb_buf_pending(&plain), &z);
    if (!rc) rc = sb_grpc_frame(&out, sb_buf_head(&z), sb_buf_pending(&z), 1);
    sb_buf_free(&z);
  } else if (!rc) {
    rc = sb_grpc_frame(&out, sb_buf_head(&plain), sb_buf_pending(&plain), 0);
  }
  if (!rc) rc = write_body(gc, gc->req, sb_buf_head(&out), sb_buf_pending(&out));
  sb_buf_free(&plain);
  sb_buf_free(&out);
  return rc;
}

/* ---- lifecycle ---- */

static void free_timer(uv_handle_t *h) {
  free(h);
}

/* Ends the HTTP exchange with a status (trailers, or Trailers-Only when nothing was sent).
 * Idempotent; the call itself stays. */
static void end_exchange(grpc_call_t *gc, sb_code_t code, const char *msg) {
  sb_http_req_t *req = gc->req;
  if (gc->timer) uv_timer_stop(gc->timer);
  if (!req) return;
  /* Connect streams always answer 200 and end with an end-of-stream envelope. */
  if (gc->mode == MODE_CONNECT_STREAM && !sb_http_req_aborted(req)) start_response(gc);
  gc->req = NULL;
  if (sb_http_req_aborted(req)) {
    sb_http_res_end(req);
    return;
  }
  if (gc->mode == MODE_CONNECT) {
    sb__connect_respond(gc, req, code, msg, NULL, 0);
    return;
  }
  if (gc->mode == MODE_CONNECT_STREAM) {
    sb_buf_t end = {0}, frame = {0};
    if (!sb__connect_end_payload(gc, code, msg, &end) &&
        !sb_grpc_frame(&frame, sb_buf_head(&end), sb_buf_pending(&end), 0)) {
      frame.data[0] = SB_CONNECT_END_STREAM;
      write_body(gc, req, sb_buf_head(&frame), sb_buf_pending(&frame));
    }
    sb_buf_free(&end);
    sb_buf_free(&frame);
    sb_http_res_end(req);
    return;
  }
  if (!gc->started) {
    respond_status(req, (enum grpc_mode)gc->mode, gc, code, msg);
    return;
  }
  if (gc->mode == MODE_WEB || gc->mode == MODE_WEB_TEXT) {
    /* gRPC-Web: the trailers are the body's last frame. */
    sb_buf_t block = {0}, frame = {0};
    put_status(gc, to_block, &block, code, msg);
    if (!sb_grpc_frame(&frame, sb_buf_head(&block), sb_buf_pending(&block), 0)) {
      frame.data[0] = GRPC_WEB_TRAILER_FLAG;
      write_body(gc, req, sb_buf_head(&frame), sb_buf_pending(&frame));
    }
    sb_buf_free(&block);
    sb_buf_free(&frame);
  } else {
    put_status(gc, to_trailer, req, code, msg);
  }
  sb_http_res_end(req);
}

/* The call is done on both sides: frees it (deferred while a delivery loop holds it). */
static void release(grpc_call_t *gc) {
  if (gc->released) return;
  gc->released = 1;
  if (gc->timer) {
    gc->timer->data = NULL;
    uv_close((uv_handle_t *)gc->timer, free_timer);
    gc->timer = NULL;
  }
  sb_grpc_reader_free(&gc->reader);
  sb_buf_free(&gc->body);
  sb__call_free(gc->call);
}

/* Something went wrong on the stream (bad input, deadline): answer code and, when the handler
 * does not have the call, release it; otherwise cancel it and let its finish release. */
static void fail(grpc_call_t *gc, sb_code_t code, const char *msg) {
  if (gc->released) return;
  end_exchange(gc, code, msg);
  if (gc->invoked)
    sb__call_cancel(gc->call);
  else
    release(gc);
}

/* ---- call ops ---- */

static void grpc_finish(sb_call_t *call, sb_code_t code, const char *message) {
  grpc_call_t *gc = call->fe;
  if (gc->req && !call->cancelled && gc->mode == MODE_CONNECT && code == SB_CODE_OK) {
    /* Connect unary: the bare response message is the body. */
    sb_buf_t body = {0};
    sb_http_req_t *req = gc->req;
    gc->req = NULL;
    if (gc->timer) uv_timer_stop(gc->timer);
    if (encode(gc, call->response, &body))
      sb__connect_respond(gc, req, SB_CODE_INTERNAL, "response could not be encoded", NULL, 0);
    else
      sb__connect_respond(gc, req, SB_CODE_OK, NULL, sb_buf_head(&body), sb_buf_pending(&body));
    sb_buf_free(&body);
  } else if (gc->req && !call->cancelled) {
    sb_method_kind_t k = call->method->kind;
    if (code == SB_CODE_OK && (k == SB_METHOD_UNARY || k == SB_METHOD_CLIENT_STREAMING)) {
      int rc = write_message(gc, call->response);
      if (rc < 0 && rc != SB_ECANCELED) {
        code = SB_CODE_INTERNAL;
        message = "response could not be sent";
      }
    } else if (code == SB_CODE_OK && !gc->started) {
      /* An empty stream still gets headers, then trailers (not Trailers-Only). */
      start_response(gc);
    }
  }
  end_exchange(gc, code, message);
  release(gc);
}

static int grpc_send(sb_call_t *call, const ProtobufCMessage *msg) {
  grpc_call_t *gc = call->fe;
  if (!gc->req) return SB_ECANCELED;
  return write_message(gc, msg);
}

static const char *grpc_metadata(const sb_call_t *call, const char *key) {
  const grpc_call_t *gc = call->fe;
  return gc->req ? sb_http_req_header(gc->req, key, NULL) : NULL;
}

static int grpc_pause(sb_call_t *call, int paused) {
  grpc_call_t *gc = call->fe;
  return gc->req ? sb_http_req_pause_body(gc->req, paused) : SB_ESTATE;
}

static const sb__call_ops_t grpc_ops = {
    .finish = grpc_finish,
    .send = grpc_send,
    .metadata = grpc_metadata,
    .pause = grpc_pause,
    .stream_input = 1,
};

/* ---- request stream ---- */

static int streams_input(const sb_call_t *call) {
  return call->method->kind == SB_METHOD_CLIENT_STREAMING ||
         call->method->kind == SB_METHOD_BIDI_STREAMING;
}

static void *arena_alloc(void *a, size_t n) {
  return sb_arena_alloc(a, n ? n : 1);
}
static void arena_free(void *a, void *p) {
  (void)a;
  (void)p; /* the arena goes all at once */
}

/* Decodes data as a message of desc with the call's codec, allocating from alloc. NULL when
 * the bytes are not such a message, or out of memory. */
static ProtobufCMessage *decode(const grpc_call_t *gc, const ProtobufCMessageDescriptor *desc,
                                ProtobufCAllocator *alloc, const uint8_t *data, size_t len) {
  if (!gc->json) return protobuf_c_message_unpack(desc, alloc, len, data);
  ProtobufCMessage *m = alloc->alloc(alloc->allocator_data, desc->sizeof_message);
  if (!m) return NULL;
  protobuf_c_message_init(desc, m);
  sb_pbjson_err_t err;
  return sb_pbjson_decode(data, len, m, alloc, 0, &err) ? NULL : m;
}

/* The status of a request message that does not decode: gRPC says INTERNAL, Connect (whose
 * clients may send JSON by hand) INVALID_ARGUMENT. */
static sb_code_t bad_message(const grpc_call_t *gc) {
  return gc->mode >= MODE_CONNECT ? SB_CODE_INVALID_ARGUMENT : SB_CODE_INTERNAL;
}

/* Decodes one complete request message and hands it on. Returns 0, or -1 after fail(). */
static int take_message(grpc_call_t *gc, const sb_grpc_msg_t *m) {
  sb_call_t *call = gc->call;
  const uint8_t *data = m->data;
  size_t len = m->len;
  sb_buf_t plain = {0};
  if (m->compressed) {
    if (!gc->in_gzip) {
      fail(gc, SB_CODE_INTERNAL, "compressed message without grpc-encoding");
      return -1;
    }
    size_t max = call->rpc->max_recv ? call->rpc->max_recv : SB_RPC_DEFAULT_MAX_RECV;
    int rc = gc->in_deflate ? sb_grpc_inflate_zlib(data, len, max, &plain)
                            : sb_grpc_gunzip(data, len, max, &plain);
    if (rc) {
      sb_buf_free(&plain);
      fail(gc, rc == SB_ELIMIT ? SB_CODE_RESOURCE_EXHAUSTED : SB_CODE_INTERNAL,
           rc == SB_ELIMIT ? "decompressed message larger than the limit"
                           : "message could not be decompressed");
      return -1;
    }
    data = sb_buf_head(&plain);
    len = sb_buf_pending(&plain);
  }
  gc->nmsgs++;
  call->in_compressed = m->compressed ? 1 : 0;
  int rc = 0;
  if (!streams_input(call)) {
    /* The one request message of the call: decoded into the call's memory. */
    ProtobufCMessage *req =
        gc->nmsgs == 1 ? decode(gc, call->method->input, &call->alloc, data, len) : NULL;
    if (req)
      call->request = req;
    else
      rc = -1;
    if (rc)
      fail(gc, gc->nmsgs == 1 ? bad_message(gc) : SB_CODE_INTERNAL,
           gc->nmsgs == 1 ? "request message could not be parsed"
                          : "more than one request message for a unary request");
  } else {
    /* Stream messages live in an arena of their own, freed after the callback, so a long
     * stream stays bounded. */
    sb_arena_t arena;
    sb_arena_init(&arena);
    ProtobufCAllocator alloc = {arena_alloc, arena_free, &arena};
    ProtobufCMessage *req = decode(gc, call->method->input, &alloc, data, len);
    if (req) {
      sb__call_deliver(call, req);
    } else {
      rc = -1;
      fail(gc, bad_message(gc), "request message could not be parsed");
    }
    sb_arena_free(&arena);
  }
  sb_buf_free(&plain);
  return rc;
}

/* grpc-web-text: decodes the base64 body in 4-character groups (padded groups may appear
 * anywhere: each write of the client may be encoded alone) into out, keeping a split group in
 * gc->text. Returns 0, or -1 for bytes that are not base64. */
static int web_text_decode(grpc_call_t *gc, const uint8_t *data, size_t len, sb_buf_t *out) {
  if (sb_buf_reserve(out, (len + gc->text_n) / 4 * 3 + 3)) return -1;
  for (size_t i = 0; i < len; i++) {
    gc->text[gc->text_n++] = (char)data[i];
    if (gc->text_n < 4) continue;
    gc->text_n = 0;
    long n = sb_base64_decode(gc->text, 4, out->data + out->len);
    if (n < 0) return -1;
    out->len += (size_t)n;
  }
  return 0;
}

static void on_data(sb_http_req_t *req, const uint8_t *data, size_t len, void *ud) {
  grpc_call_t *gc = ud;
  sb_call_t *call = gc->call;
  (void)req;
  if (gc->mode == MODE_CONNECT) {
    /* Connect unary: the body is one bare message, collected up to the message limit. */
    if (sb_buf_pending(&gc->body) + len > gc->reader.max)
      fail(gc, SB_CODE_RESOURCE_EXHAUSTED, "message larger than the limit");
    else if (sb_buf_append(&gc->body, data, len))
      fail(gc, SB_CODE_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  sb_buf_t plain = {0};
  if (gc->mode == MODE_WEB_TEXT) {
    if (web_text_decode(gc, data, len, &plain)) {
      sb_buf_free(&plain);
      fail(gc, SB_CODE_INTERNAL, "grpc-web-text body is not base64");
      return;
    }
    data = sb_buf_head(&plain);
    len = sb_buf_pending(&plain);
  }
  sb__call_hold(call);
  while (!gc->released && gc->req && !call->finished) {
    sb_grpc_msg_t m;
    int rc = sb_grpc_reader_read(&gc->reader, &data, &len, &m);
    if (rc == 0) break;
    if (rc < 0) {
      fail(gc, rc == SB_ELIMIT ? SB_CODE_RESOURCE_EXHAUSTED : SB_CODE_INTERNAL,
           rc == SB_ELIMIT   ? "message larger than the limit"
           : rc == SB_EPROTO ? "bad message prefix"
                             : "out of memory");
      break;
    }
    if (take_message(gc, &m)) break;
  }
  sb__call_release(call);
  sb_buf_free(&plain);
}

/* Connect unary: the collected body (inflated when Content-Encoding said gzip) is the request
 * message. Returns 0, or -1 after fail(). */
static int connect_body(grpc_call_t *gc) {
  sb_buf_t plain = {0};
  const uint8_t *data = sb_buf_head(&gc->body);
  size_t len = sb_buf_pending(&gc->body);
  if (gc->in_gzip) {
    int rc = sb_grpc_gunzip(data, len, gc->reader.max, &plain);
    if (rc) {
      sb_buf_free(&plain);
      fail(gc, rc == SB_ELIMIT ? SB_CODE_RESOURCE_EXHAUSTED : SB_CODE_INVALID_ARGUMENT,
           "body could not be decompressed");
      return -1;
    }
    data = sb_buf_head(&plain);
    len = sb_buf_pending(&plain);
  }
  sb_grpc_msg_t m = {data ? data : (const uint8_t *)"", len, 0};
  int rc = take_message(gc, &m);
  sb_buf_free(&plain);
  return rc;
}

static void on_end(sb_http_req_t *req, void *ud) {
  grpc_call_t *gc = ud;
  sb_call_t *call = gc->call;
  (void)req;
  if (gc->released || !gc->req || call->finished) return;
  if (gc->mode == MODE_CONNECT && connect_body(gc)) return;
  if (sb_grpc_reader_partial(&gc->reader) || gc->text_n) {
    fail(gc, SB_CODE_INTERNAL, "request ended inside a message");
    return;
  }
  if (streams_input(call)) {
    sb__call_deliver_end(call);
    return;
  }
  if (gc->nmsgs != 1) {
    fail(gc, SB_CODE_INTERNAL, "a unary request needs exactly one message");
    return;
  }
  gc->invoked = 1;
  sb__call_invoke(call); /* the call may be freed when it returns */
}

static void on_abort(sb_http_req_t *req, int err, void *ud) {
  grpc_call_t *gc = ud;
  (void)err;
  if (gc->released || !gc->req) return;
  gc->req = NULL;
  if (gc->timer) uv_timer_stop(gc->timer);
  sb_http_res_end(req);
  if (gc->invoked)
    sb__call_cancel(gc->call);
  else
    release(gc);
}

static void on_writable(sb_http_req_t *req, void *ud) {
  grpc_call_t *gc = ud;
  (void)req;
  if (!gc->released) sb__call_writable(gc->call);
}

static void on_deadline(uv_timer_t *t) {
  grpc_call_t *gc = t->data;
  if (gc) fail(gc, SB_CODE_DEADLINE_EXCEEDED, "deadline exceeded");
}

/* ---- dispatch ---- */

static const sb__svc_t *find_method(sb_rpc_t *rpc, const char *path, size_t *mi) {
  for (size_t i = 0; i < rpc->nsvcs; i++) {
    const sb_service_desc_t *d = rpc->svcs[i].desc;
    for (size_t m = 0; m < d->n_methods; m++)
      if (strcmp(d->methods[m].path, path) == 0) {
        *mi = m;
        return &rpc->svcs[i];
      }
  }
  return sb__grpc_builtin(rpc, path, mi);
}

/* An error before the call exists, in the request's protocol. Ends the exchange. */
static void early_error(sb_http_req_t *req, enum grpc_mode mode, sb_code_t code, const char *msg) {
  if (mode >= MODE_CONNECT)
    sb__connect_respond(NULL, req, code, msg, NULL, 0);
  else
    respond_status(req, mode, NULL, code, msg);
}

/* The method kinds mode can carry: browsers (gRPC-Web) send no request streams; Connect's
 * unary protocol carries unary methods only and its streaming protocol the others. */
static int mode_carries(enum grpc_mode mode, sb_method_kind_t kind) {
  int in_stream = kind == SB_METHOD_CLIENT_STREAMING || kind == SB_METHOD_BIDI_STREAMING;
  switch (mode) {
  case MODE_WEB:
  case MODE_WEB_TEXT:
    return !in_stream;
  case MODE_CONNECT:
    return kind == SB_METHOD_UNARY;
  case MODE_CONNECT_STREAM:
    return kind != SB_METHOD_UNARY;
  default:
    return 1;
  }
}

void sb__grpc_handle(sb_http_req_t *req, void *ud) {
  sb_rpc_t *rpc = ud;
  unsigned json = 0;
  enum grpc_mode mode = request_mode(req, &json);
  if (mode == MODE_NONE) {
    respond_preflight(req); /* sb__grpc_match() let only these through */
    return;
  }
  int get = strcmp(sb_http_req_method(req), "GET") == 0;
  if (strcmp(sb_http_req_method(req), "POST") != 0 && !(get && mode == MODE_CONNECT)) {
    sb_http_res_header(req, "allow", "POST");
    sb_http_respond(req, 405, NULL, NULL, 0);
    return;
  }
  const char *ct = sb_http_req_header(req, "content-type", NULL);
  size_t n = ct ? strcspn(ct, "+; ") : 0;
  if (mode < MODE_CONNECT && ct[n] == '+' && strncasecmp(ct + n, "+proto", 6) != 0) {
    /* Only the protobuf codec is served (application/grpc+json and others are not). */
    sb_http_respond(req, 415, NULL, NULL, 0);
    return;
  }
  if (mode == MODE_GRPC && sb_http_req_proto(req) != SB_HTTP_2) {
    sb_http_respond(req, 505, NULL, NULL, 0);
    return;
  }
  size_t mi = 0;
  const sb__svc_t *svc = find_method(rpc, sb_http_req_path(req), &mi);
  if (!svc) {
    early_error(req, mode, SB_CODE_UNIMPLEMENTED, "unknown service or method");
    return;
  }
  const sb_method_desc_t *method = &svc->desc->methods[mi];
  if (!mode_carries(mode, method->kind)) {
    early_error(req, mode, SB_CODE_UNIMPLEMENTED, "this protocol cannot carry this method");
    return;
  }
  if (get && method->idempotency != SB_IDEMPOTENCY_NO_SIDE_EFFECTS) {
    sb_http_res_header(req, "allow", "POST");
    sb__connect_respond(NULL, req, SB_CODE_UNIMPLEMENTED, "GET needs a side-effect-free method",
                        NULL, 0);
    return;
  }
  /* Each protocol names its compression and deadline headers differently. */
  const char *enc_h = mode == MODE_CONNECT_STREAM ? "connect-content-encoding"
                      : mode == MODE_CONNECT      ? "content-encoding"
                                                  : "grpc-encoding";
  const char *acc_h = mode == MODE_CONNECT_STREAM ? "connect-accept-encoding"
                      : mode == MODE_CONNECT      ? "accept-encoding"
                                                  : "grpc-accept-encoding";
  const char *enc = sb_http_req_header(req, enc_h, NULL);
  int in_gzip = enc && strcasecmp(enc, "gzip") == 0;
  /* Connect names only gzip (and br, which we do not offer) for its bodies. */
  int in_deflate = enc && mode < MODE_CONNECT && strcasecmp(enc, "deflate") == 0;
  if (enc && !in_gzip && !in_deflate && strcasecmp(enc, "identity") != 0) {
    early_error(req, mode, SB_CODE_UNIMPLEMENTED, "unsupported message encoding");
    return;
  }
  uint64_t timeout_ms = 0;
  const char *to =
      sb_http_req_header(req, mode >= MODE_CONNECT ? "connect-timeout-ms" : "grpc-timeout", NULL);
  if (to && (mode >= MODE_CONNECT ? sb__connect_timeout(to, &timeout_ms)
                                  : sb_grpc_parse_timeout(to, &timeout_ms))) {
    early_error(req, mode, SB_CODE_INVALID_ARGUMENT, "malformed timeout");
    return;
  }
  uv_loop_t *loop = sb_http_req_loop(req);
  sb_call_t *call = sb__call_new(rpc, svc, mi, &grpc_ops, NULL, loop);
  grpc_call_t *gc = call ? sb_call_alloc(call, sizeof *gc) : NULL;
  uv_timer_t *timer = timeout_ms ? malloc(sizeof *timer) : NULL;
  if (!gc || (timeout_ms && !timer)) {
    free(timer);
    if (call) sb__call_free(call);
    early_error(req, mode, SB_CODE_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  memset(gc, 0, sizeof *gc);
  gc->req = req;
  gc->call = call;
  gc->mode = (uint8_t)mode;
  gc->json = json;
  gc->in_gzip = (unsigned)(in_gzip || in_deflate);
  gc->in_deflate = (unsigned)in_deflate;
  gc->out_gzip = (unsigned)sb_grpc_list_has(sb_http_req_header(req, acc_h, NULL), "gzip");
  gc->reader.max = rpc->max_recv ? rpc->max_recv : SB_RPC_DEFAULT_MAX_RECV;
  call->fe = gc;
  if (get) {
    /* A Connect GET carries its message in the query; the (empty) body then ends it. */
    unsigned gzip = 0, gjson = 0;
    if (sb__connect_get_message(req, &gc->body, &gjson, &gzip)) {
      free(timer);
      sb__connect_respond(gc, req, SB_CODE_INVALID_ARGUMENT, "bad message in the query", NULL, 0);
      gc->req = NULL;
      release(gc);
      return;
    }
    gc->json = gjson;
    gc->in_gzip = gzip;
  }
  if (timer) {
    uv_timer_init(loop, timer);
    timer->data = gc;
    gc->timer = timer;
    call->deadline_ms = uv_now(loop) + timeout_ms;
    uv_timer_start(timer, on_deadline, timeout_ms, 0);
  }
  sb_http_callbacks_t cbs = {.on_data = on_data,
                             .on_end = on_end,
                             .on_abort = on_abort,
                             .on_writable = on_writable,
                             .ud = gc};
  sb_http_req_set_callbacks(req, &cbs);
  /* The message limit is what bounds memory: a stream may carry any number of messages, and a
   * single message may exceed the server's body limit when max_recv allows it. */
  sb_http_req_set_body_limit(req, streams_input(call) ? UINT64_MAX
                                                      : (uint64_t)gc->reader.max + SB_GRPC_PREFIX);
  if (streams_input(call)) {
    gc->invoked = 1;
    sb__call_invoke(call); /* messages follow through on_data; the call may be freed here */
  }
}
