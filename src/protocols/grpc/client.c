/*
 * gRPC client over cleartext HTTP/2 (include/switchboard/client.h): one TCP connection on a
 * libuv loop, an nghttp2 client session on it, and any number of calls as streams.
 *
 * Connection life: IDLE (no socket) -> CONNECTING (first call) -> READY (calls queued while
 * connecting are submitted) -> on any error or EOF every call still running ends UNAVAILABLE,
 * the socket closes, and the client is IDLE again: the next call reconnects.
 *
 * Call life: created by sb_client_call(), linked in c->calls; submitted as a stream once the
 * connection is READY; ended exactly once by end_call() (stream closed, deadline, connection
 * lost, client freed), which runs on_done and frees it. Stream user data points at the call
 * while it lives and is cleared when it ends first, so nghttp2 callbacks for a stream whose
 * call is gone do nothing.
 *
 * Ownership: the client owns its calls, its read buffer and the session; deadline timers are
 * malloc'd and free themselves in their close callbacks. Everything runs on c->loop.
 */
#include "switchboard/client.h"

#include <nghttp2/nghttp2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "contract/pbjson.h"
#include "core/buf.h"
#include "core/codec.h"
#include "core/json.h"
#include "protocols/grpc/wire.h"
#include "switchboard/error.h"

#define CLIENT_READ_BUF (64u * 1024u) /* bytes per socket read */
#define CLIENT_AUTHORITY 64u          /* bytes of "host:port" kept for :authority */
#define CLIENT_MESSAGE_MAX 1024u      /* bytes of grpc-message kept */

enum { ST_IDLE = 0, ST_CONNECTING = 1, ST_READY = 2, ST_CLOSING = 3 };

typedef struct ccall {
  struct ccall *next, *prev;        /* in c->calls */
  sb_client_t *c;                   /* owner */
  const sb_method_desc_t *m;        /* borrowed static data */
  int32_t stream_id;                /* 0 until submitted */
  sb_buf_t out;                     /* the framed request; consumed by read_request() */
  char timeout[16];                 /* grpc-timeout value, "" for none */
  uv_timer_t *timer;                /* deadline, or NULL; freed in its close callback */
  sb_grpc_reader_t reader;          /* response framing; owns its buffer */
  int http_status;                  /* :status, 0 until seen */
  int grpc_status;                  /* grpc-status, -1 until seen */
  char message[CLIENT_MESSAGE_MAX]; /* decoded grpc-message (NUL-terminated) */
  sb_client_msg_cb on_message;      /* may be NULL */
  sb_client_done_cb on_done;        /* required */
  void *ud;                         /* for both callbacks; borrowed */
  /* REST/JSON calls (sb_client_call_rest) */
  const sb_http_rule_t *rule; /* the binding used, or NULL for a gRPC call */
  char *rest_path;            /* expanded path and query; owned */
  sb_buf_t in;                /* the response body, bounded by SB_CLIENT_MAX_RECV */
} ccall_t;

struct sb_client {
  uv_loop_t *loop;                  /* borrowed */
  uv_tcp_t tcp;                     /* valid while tcp_open */
  uv_connect_t connect;             /* the pending connect */
  struct sockaddr_storage addr;     /* the server */
  char authority[CLIENT_AUTHORITY]; /* :authority of every request */
  nghttp2_session *session;         /* owned; set while READY */
  uint8_t *rbuf;                    /* CLIENT_READ_BUF bytes; owned */
  ccall_t *calls;                   /* running calls, doubly linked; owned */
  int state;                        /* ST_* */
  unsigned tcp_open : 1;            /* tcp was initialised and is not closed yet */
  unsigned freeing : 1;             /* sb_client_free() ran: free once tcp closed */
};

static void flush(sb_client_t *c);
static void connection_lost(sb_client_t *c, const char *why);

/* ---- calls ---- */

static void free_timer(uv_handle_t *h) {
  free(h);
}

/* Ends cc with code and message, runs on_done and frees it. */
static void end_call(ccall_t *cc, sb_code_t code, const char *message) {
  sb_client_t *c = cc->c;
  if (cc->prev)
    cc->prev->next = cc->next;
  else
    c->calls = cc->next;
  if (cc->next) cc->next->prev = cc->prev;
  if (cc->stream_id && c->session) {
    nghttp2_session_set_stream_user_data(c->session, cc->stream_id, NULL);
    /* A call ended before its stream (deadline, free): the server can stop working on it. */
    if (nghttp2_session_get_stream_remote_close(c->session, cc->stream_id) == 0 ||
        nghttp2_session_get_stream_local_close(c->session, cc->stream_id) == 0)
      nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, cc->stream_id, NGHTTP2_CANCEL);
  }
  if (cc->timer) {
    cc->timer->data = NULL;
    uv_close((uv_handle_t *)cc->timer, free_timer);
  }
  cc->on_done(code, message ? message : "", cc->ud);
  sb_buf_free(&cc->out);
  sb_buf_free(&cc->in);
  free(cc->rest_path);
  sb_grpc_reader_free(&cc->reader);
  free(cc);
}

static void on_deadline(uv_timer_t *t) {
  ccall_t *cc = t->data;
  if (!cc) return;
  sb_client_t *c = cc->c;
  end_call(cc, SB_CODE_DEADLINE_EXCEEDED, "deadline exceeded");
  flush(c);
}

/* The data provider of a request body: the stream's call, looked up again, since a call that
 * ended early is gone. */
static ssize_t read_request(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length,
                            uint32_t *flags, nghttp2_data_source *src, void *ud) {
  (void)src;
  (void)ud;
  ccall_t *cc = nghttp2_session_get_stream_user_data(s, id);
  size_t n = cc ? sb_buf_pending(&cc->out) : 0;
  if (n > length) n = length;
  if (n) {
    memcpy(buf, sb_buf_head(&cc->out), n);
    sb_buf_consume(&cc->out, n);
  }
  if (!cc || sb_buf_pending(&cc->out) == 0) *flags |= NGHTTP2_DATA_FLAG_EOF;
  return (ssize_t)n;
}

#define NV(name, value)                                                                            \
  { (uint8_t *)(name), (uint8_t *)(value), strlen(name), strlen(value), NGHTTP2_NV_FLAG_NONE }

/* Submits cc as a new stream. Returns 0, or ends cc (UNAVAILABLE) and returns -1. */
static int submit(sb_client_t *c, ccall_t *cc) {
  if (cc->rule) {
    nghttp2_nv rnva[] = {
        NV(":method", cc->rule->method),  NV(":scheme", "http"),
        NV(":path", cc->rest_path),       NV(":authority", c->authority),
        NV("accept", "application/json"), NV("content-type", "application/json"),
    };
    size_t rn = sizeof rnva / sizeof rnva[0] - (cc->rule->body ? 0 : 1);
    nghttp2_data_provider rprd = {.source.ptr = NULL, .read_callback = read_request};
    int32_t rid =
        nghttp2_submit_request(c->session, NULL, rnva, rn, cc->rule->body ? &rprd : NULL, cc);
    if (rid < 0) {
      end_call(cc, SB_CODE_UNAVAILABLE, "the connection takes no more streams");
      return -1;
    }
    cc->stream_id = rid;
    return 0;
  }
  nghttp2_nv nva[] = {
      NV(":method", "POST"),
      NV(":scheme", "http"),
      NV(":path", cc->m->path),
      NV(":authority", c->authority),
      NV("content-type", "application/grpc"),
      NV("te", "trailers"),
      NV("grpc-timeout", cc->timeout),
  };
  size_t n = sizeof nva / sizeof nva[0] - (cc->timeout[0] ? 0 : 1);
  nghttp2_data_provider prd = {.source.ptr = NULL, .read_callback = read_request};
  int32_t id = nghttp2_submit_request(c->session, NULL, nva, n, &prd, cc);
  if (id < 0) {
    end_call(cc, SB_CODE_UNAVAILABLE, "the connection takes no more streams");
    return -1;
  }
  cc->stream_id = id;
  return 0;
}

/* ---- nghttp2 callbacks ---- */

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *ud) {
  (void)flags;
  (void)ud;
  if (f->hd.type != NGHTTP2_HEADERS) return 0;
  ccall_t *cc = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
  if (!cc) return 0;
  char v[CLIENT_MESSAGE_MAX];
  size_t vl = vlen < sizeof v - 1 ? vlen : sizeof v - 1;
  memcpy(v, value, vl);
  v[vl] = '\0';
  if (nlen == 7 && memcmp(name, ":status", 7) == 0) {
    cc->http_status = atoi(v);
  } else if (nlen == 11 && memcmp(name, "grpc-status", 11) == 0) {
    cc->grpc_status = atoi(v);
  } else if (nlen == 12 && memcmp(name, "grpc-message", 12) == 0) {
    long n = sb_pct_decode(v, vl, cc->message, 0);
    if (n < 0) snprintf(cc->message, sizeof cc->message, "%s", v);
  }
  return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                   void *ud) {
  (void)flags;
  (void)ud;
  ccall_t *cc = nghttp2_session_get_stream_user_data(s, id);
  if (cc && cc->rule) {
    if (sb_buf_pending(&cc->in) + len > SB_CLIENT_MAX_RECV) {
      end_call(cc, SB_CODE_RESOURCE_EXHAUSTED, "response too large");
    } else if (sb_buf_append(&cc->in, data, len)) {
      end_call(cc, SB_CODE_RESOURCE_EXHAUSTED, "out of memory for the response");
    }
    return 0;
  }
  while (cc && len) {
    sb_grpc_msg_t m;
    int rc = sb_grpc_reader_read(&cc->reader, &data, &len, &m);
    if (rc == 0) break;
    if (rc < 0 || m.compressed) {
      /* We never offer compression, so a compressed message is as broken as a bad prefix. */
      end_call(cc, rc == SB_ELIMIT ? SB_CODE_RESOURCE_EXHAUSTED : SB_CODE_INTERNAL,
               "bad response message");
      return 0;
    }
    ProtobufCMessage *msg = protobuf_c_message_unpack(cc->m->output, NULL, m.len, m.data);
    if (!msg) {
      end_call(cc, SB_CODE_INTERNAL, "response message could not be parsed");
      return 0;
    }
    if (cc->on_message) cc->on_message(msg, cc->ud);
    protobuf_c_message_free_unpacked(msg, NULL);
  }
  return 0;
}

/* The status of a call whose stream closed: what the server said, or the HTTP outcome mapped
 * as the gRPC spec's HTTP-to-gRPC table does. */
static sb_code_t final_code(const ccall_t *cc, uint32_t error_code, const char **msg) {
  if (cc->grpc_status >= 0 && cc->grpc_status <= SB_CODE_UNAUTHENTICATED)
    return (sb_code_t)cc->grpc_status;
  if (error_code != NGHTTP2_NO_ERROR) {
    *msg = "stream reset by the server";
    return error_code == NGHTTP2_REFUSED_STREAM ? SB_CODE_UNAVAILABLE : SB_CODE_INTERNAL;
  }
  *msg = "no grpc-status in the response";
  switch (cc->http_status) {
  case 400:
    return SB_CODE_INTERNAL;
  case 401:
    return SB_CODE_UNAUTHENTICATED;
  case 403:
    return SB_CODE_PERMISSION_DENIED;
  case 404:
    return SB_CODE_UNIMPLEMENTED;
  case 429:
  case 502:
  case 503:
  case 504:
    return SB_CODE_UNAVAILABLE;
  default:
    return cc->http_status == 200 ? SB_CODE_INTERNAL : SB_CODE_UNKNOWN;
  }
}

/* The allocator of decoded REST responses: plain malloc, so free_unpacked can release them. */
static void *rest_alloc(void *d, size_t n) {
  (void)d;
  return malloc(n);
}
static void rest_free(void *d, void *p) {
  (void)d;
  free(p);
}
static ProtobufCAllocator g_rest_alloc = {rest_alloc, rest_free, NULL};

/* The gRPC code of an HTTP status when the body says nothing (Google's mapping, inverted). */
static sb_code_t http_code(int status) {
  switch (status) {
  case 400:
    return SB_CODE_INVALID_ARGUMENT;
  case 401:
    return SB_CODE_UNAUTHENTICATED;
  case 403:
    return SB_CODE_PERMISSION_DENIED;
  case 404:
    return SB_CODE_NOT_FOUND;
  case 409:
    return SB_CODE_ABORTED;
  case 429:
    return SB_CODE_RESOURCE_EXHAUSTED;
  case 499:
    return SB_CODE_CANCELLED;
  case 501:
    return SB_CODE_UNIMPLEMENTED;
  case 503:
    return SB_CODE_UNAVAILABLE;
  case 504:
    return SB_CODE_DEADLINE_EXCEEDED;
  default:
    return SB_CODE_UNKNOWN;
  }
}

/* Ends a REST call: a 2xx body decodes into the output type; an error body
 * {"code": <gRPC code>, "message": ...} gives the status. */
static void rest_finish(ccall_t *cc, uint32_t error_code) {
  if (error_code != NGHTTP2_NO_ERROR) {
    end_call(cc, SB_CODE_UNAVAILABLE, "stream reset by the server");
    return;
  }
  const uint8_t *body = sb_buf_head(&cc->in);
  size_t len = sb_buf_pending(&cc->in);
  if (cc->http_status >= 200 && cc->http_status < 300) {
    const ProtobufCMessageDescriptor *d = cc->m->output;
    ProtobufCMessage *msg = malloc(d->sizeof_message);
    if (!msg) {
      end_call(cc, SB_CODE_RESOURCE_EXHAUSTED, "out of memory for the response");
      return;
    }
    protobuf_c_message_init(d, msg);
    sb_pbjson_err_t err;
    int rc =
        len ? sb_pbjson_decode(body, len, msg, &g_rest_alloc, SB_PBJSON_IGNORE_UNKNOWN, &err) : 0;
    if (rc) {
      protobuf_c_message_free_unpacked(msg, &g_rest_alloc);
      end_call(cc, SB_CODE_INTERNAL, "response body could not be decoded");
      return;
    }
    if (cc->on_message) cc->on_message(msg, cc->ud);
    protobuf_c_message_free_unpacked(msg, &g_rest_alloc);
    end_call(cc, SB_CODE_OK, NULL);
    return;
  }
  sb_code_t code = http_code(cc->http_status);
  char message[CLIENT_MESSAGE_MAX] = "";
  sb_jr_t r;
  sb_jr_init(&r, body ? body : (const uint8_t *)"", len);
  if (sb_jr_next(&r) == SB_JT_OBJ_BEGIN) {
    for (sb_jtok_t t; (t = sb_jr_next(&r)) == SB_JT_KEY;) {
      bool is_code = r.len == 4 && memcmp(r.str, "code", 4) == 0;
      bool is_msg = r.len == 7 && memcmp(r.str, "message", 7) == 0;
      t = sb_jr_next(&r);
      int64_t v;
      if (is_code && t == SB_JT_NUMBER && sb_json_to_int64(r.str, r.len, &v) == 0 && v > 0 &&
          v <= SB_CODE_UNAUTHENTICATED)
        code = (sb_code_t)v;
      else if (is_msg && t == SB_JT_STRING)
        snprintf(message, sizeof message, "%.*s", (int)r.len, r.str);
      else if (sb_jr_skip(&r, t))
        break;
    }
  }
  sb_jr_free(&r);
  end_call(cc, code, message[0] ? message : "HTTP error without a body");
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t error_code, void *ud) {
  (void)ud;
  ccall_t *cc = nghttp2_session_get_stream_user_data(s, id);
  if (!cc) return 0;
  cc->stream_id = 0; /* closed: nothing to reset */
  if (cc->rule) {
    rest_finish(cc, error_code);
    return 0;
  }
  const char *msg = cc->message;
  sb_code_t code = final_code(cc, error_code, &msg);
  if (code == SB_CODE_OK && sb_grpc_reader_partial(&cc->reader)) {
    code = SB_CODE_INTERNAL;
    msg = "response ended inside a message";
  }
  end_call(cc, code, msg);
  return 0;
}

static nghttp2_session_callbacks *g_client_callbacks; /* immutable after first use */
static uv_once_t g_client_once = UV_ONCE_INIT;

static void init_client_callbacks(void) {
  nghttp2_session_callbacks *cb;
  if (nghttp2_session_callbacks_new(&cb) != 0) return;
  nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
  g_client_callbacks = cb;
}

/* ---- the connection ---- */

typedef struct wreq {
  uv_write_t w;   /* libuv's request; the struct is freed in its callback */
  uint8_t data[]; /* the bytes being written */
} wreq_t;

static void on_written(uv_write_t *w, int status) {
  sb_client_t *c = w->data;
  free(w);
  if (status < 0 && status != UV_ECANCELED) connection_lost(c, uv_strerror(status));
}

/* Writes everything the session wants to send. */
static void flush(sb_client_t *c) {
  while (c->state == ST_READY && c->session) {
    const uint8_t *data;
    ssize_t n = nghttp2_session_mem_send(c->session, &data);
    if (n < 0) {
      connection_lost(c, nghttp2_strerror((int)n));
      return;
    }
    if (n == 0) return;
    wreq_t *w = malloc(sizeof *w + (size_t)n);
    if (!w) {
      connection_lost(c, "out of memory");
      return;
    }
    memcpy(w->data, data, (size_t)n);
    w->w.data = c;
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)n);
    int rc = uv_write(&w->w, (uv_stream_t *)&c->tcp, &b, 1, on_written);
    if (rc) {
      free(w);
      connection_lost(c, uv_strerror(rc));
      return;
    }
  }
}

static void on_tcp_closed(uv_handle_t *h) {
  sb_client_t *c = h->data;
  c->tcp_open = 0;
  c->state = ST_IDLE;
  if (c->freeing) {
    free(c->rbuf);
    free(c);
  }
}

static void connection_lost(sb_client_t *c, const char *why) {
  if (c->state == ST_CLOSING || c->state == ST_IDLE) return;
  c->state = ST_CLOSING;
  nghttp2_session *s = c->session;
  c->session = NULL; /* end_call() must not touch the dying session */
  while (c->calls) {
    c->calls->stream_id = 0;
    end_call(c->calls, SB_CODE_UNAVAILABLE, why);
  }
  nghttp2_session_del(s);
  if (c->tcp_open && !uv_is_closing((uv_handle_t *)&c->tcp))
    uv_close((uv_handle_t *)&c->tcp, on_tcp_closed);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)hint;
  sb_client_t *c = h->data;
  *buf = uv_buf_init((char *)c->rbuf, CLIENT_READ_BUF);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
  sb_client_t *c = st->data;
  (void)buf;
  if (n < 0) {
    connection_lost(c, n == UV_EOF ? "connection closed by the server" : uv_strerror((int)n));
    return;
  }
  if (n == 0 || c->state != ST_READY) return;
  ssize_t rv = nghttp2_session_mem_recv(c->session, c->rbuf, (size_t)n);
  if (rv < 0) {
    connection_lost(c, nghttp2_strerror((int)rv));
    return;
  }
  flush(c);
}

static void on_connect(uv_connect_t *req, int status) {
  sb_client_t *c = req->data;
  if (c->state != ST_CONNECTING) return; /* freed or lost while connecting */
  if (status < 0) {
    connection_lost(c, uv_strerror(status));
    return;
  }
  nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0}};
  if (nghttp2_session_client_new(&c->session, g_client_callbacks, c) != 0 ||
      nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, 1) != 0) {
    connection_lost(c, "out of memory");
    return;
  }
  c->state = ST_READY;
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  for (ccall_t *cc = c->calls, *next; cc; cc = next) {
    next = cc->next;
    submit(c, cc);
  }
  flush(c);
}

static int start_connect(sb_client_t *c) {
  int rc = uv_tcp_init(c->loop, &c->tcp);
  if (rc) return SB_ENOMEM;
  c->tcp.data = c;
  c->tcp_open = 1;
  c->connect.data = c;
  rc = uv_tcp_connect(&c->connect, &c->tcp, (const struct sockaddr *)&c->addr, on_connect);
  if (rc) {
    uv_close((uv_handle_t *)&c->tcp, on_tcp_closed);
    return SB_EINVAL;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  c->state = ST_CONNECTING;
  return 0;
}

/* ---- public API ---- */

int sb_client_new(struct uv_loop_s *loop, const char *addr, sb_client_t **out) {
  uv_once(&g_client_once, init_client_callbacks);
  if (!g_client_callbacks) return SB_ENOMEM;
  sb_client_t *c = calloc(1, sizeof *c);
  if (!c) return SB_ENOMEM;
  c->loop = loop;
  if (strlen(addr) >= CLIENT_AUTHORITY) {
    free(c);
    return SB_EINVAL;
  }
  snprintf(c->authority, sizeof c->authority, "%s", addr);
  /* "host:port", with IPv6 hosts in brackets. */
  const char *colon = strrchr(addr, ':');
  char host[64];
  size_t hl = colon ? (size_t)(colon - addr) : 0;
  if (hl && addr[0] == '[' && addr[hl - 1] == ']') {
    addr++;
    hl -= 2;
  }
  int port = colon ? atoi(colon + 1) : 0;
  if (!colon || hl == 0 || hl >= sizeof host || port <= 0 || port > 65535) {
    free(c);
    return SB_EINVAL;
  }
  memcpy(host, addr, hl);
  host[hl] = '\0';
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)&c->addr) &&
      uv_ip6_addr(host, port, (struct sockaddr_in6 *)&c->addr)) {
    free(c);
    return SB_EINVAL;
  }
  c->rbuf = malloc(CLIENT_READ_BUF);
  if (!c->rbuf) {
    free(c);
    return SB_ENOMEM;
  }
  *out = c;
  return 0;
}

/* Arms cc's deadline, connects if needed, links and submits cc; on an error (rc, or one here)
 * frees cc and returns the code. */
static int start_call(sb_client_t *c, ccall_t *cc, int rc, uint32_t timeout_ms) {
  if (!rc && timeout_ms) {
    snprintf(cc->timeout, sizeof cc->timeout, "%um", (unsigned)timeout_ms);
    cc->timer = malloc(sizeof *cc->timer);
    if (!cc->timer || uv_timer_init(c->loop, cc->timer)) {
      free(cc->timer);
      cc->timer = NULL;
      rc = SB_ENOMEM;
    }
  }
  if (!rc && c->state == ST_IDLE) rc = start_connect(c);
  if (rc) {
    if (cc->timer) uv_close((uv_handle_t *)cc->timer, free_timer);
    sb_buf_free(&cc->out);
    free(cc->rest_path);
    free(cc);
    return rc;
  }
  cc->next = c->calls;
  if (c->calls) c->calls->prev = cc;
  c->calls = cc;
  if (cc->timer) {
    cc->timer->data = cc;
    uv_timer_start(cc->timer, on_deadline, timeout_ms, 0);
  }
  if (c->state == ST_READY && submit(c, cc) == 0) flush(c);
  return 0;
}

int sb_client_call(sb_client_t *c, const sb_method_desc_t *m, const ProtobufCMessage *req,
                   uint32_t timeout_ms, sb_client_msg_cb on_message, sb_client_done_cb on_done,
                   void *ud) {
  if (c->freeing || c->state == ST_CLOSING) return SB_ESTATE;
  if (!on_done || m->kind == SB_METHOD_CLIENT_STREAMING || m->kind == SB_METHOD_BIDI_STREAMING)
    return SB_EINVAL;
  ccall_t *cc = calloc(1, sizeof *cc);
  if (!cc) return SB_ENOMEM;
  cc->c = c;
  cc->m = m;
  cc->grpc_status = -1;
  cc->reader.max = SB_CLIENT_MAX_RECV;
  cc->on_message = on_message;
  cc->on_done = on_done;
  cc->ud = ud;
  size_t n = protobuf_c_message_get_packed_size(req);
  int rc = sb_buf_reserve(&cc->out, SB_GRPC_PREFIX + n);
  if (!rc) {
    sb_grpc_prefix(cc->out.data, n, 0);
    cc->out.len = SB_GRPC_PREFIX + protobuf_c_message_pack(req, cc->out.data + SB_GRPC_PREFIX);
  }
  return start_call(c, cc, rc, timeout_ms);
}

/* ---- REST/JSON requests ---- */

/* Writes the text form of a singular scalar field of msg (the form path parameters and query
 * strings carry). Returns false for a field that has none (messages, bytes, repeated). */
static bool scalar_text(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f,
                        const void *p, char *out, size_t cap) {
  (void)msg;
  switch (f->type) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
    snprintf(out, cap, "%d", *(const int32_t *)p);
    return true;
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
    snprintf(out, cap, "%u", *(const uint32_t *)p);
    return true;
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
    snprintf(out, cap, "%lld", (long long)*(const int64_t *)p);
    return true;
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
    snprintf(out, cap, "%llu", (unsigned long long)*(const uint64_t *)p);
    return true;
  case PROTOBUF_C_TYPE_BOOL:
    snprintf(out, cap, "%s", *(const protobuf_c_boolean *)p ? "true" : "false");
    return true;
  case PROTOBUF_C_TYPE_FLOAT:
    snprintf(out, cap, "%.9g", (double)*(const float *)p);
    return true;
  case PROTOBUF_C_TYPE_DOUBLE:
    snprintf(out, cap, "%.17g", *(const double *)p);
    return true;
  case PROTOBUF_C_TYPE_ENUM: {
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(f->descriptor, *(const int *)p);
    if (v)
      snprintf(out, cap, "%s", v->name);
    else
      snprintf(out, cap, "%d", *(const int *)p);
    return true;
  }
  case PROTOBUF_C_TYPE_STRING: {
    const char *str = *(const char *const *)p;
    snprintf(out, cap, "%s", str ? str : "");
    return true;
  }
  default:
    return false;
  }
}

/* Whether a scalar's text is its default (left out of query strings). */
static bool is_default(const char *text) {
  return !text[0] || strcmp(text, "0") == 0 || strcmp(text, "false") == 0;
}

/* The text of the field at a dotted path of .proto names. Returns false when the path does
 * not name a scalar. */
static bool path_text(const ProtobufCMessage *msg, const char *path, size_t plen, char *out,
                      size_t cap) {
  char seg[128];
  while (msg) {
    size_t sl = strcspn(path, ".");
    if (sl > plen) sl = plen;
    if (sl >= sizeof seg) return false;
    memcpy(seg, path, sl);
    seg[sl] = 0;
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(msg->descriptor, seg);
    if (!f || f->label == PROTOBUF_C_LABEL_REPEATED) return false;
    const void *p = (const char *)msg + f->offset;
    if (sl == plen) return scalar_text(msg, f, p, out, cap);
    if (f->type != PROTOBUF_C_TYPE_MESSAGE) return false;
    msg = *(const ProtobufCMessage *const *)p;
    path += sl + 1;
    plen -= sl + 1;
  }
  out[0] = 0; /* an unset message on the way: the default */
  return true;
}

/* Percent-encodes s onto b (RFC 3986 unreserved characters stay; '/' too when keep_slash). */
static int pct(sb_buf_t *b, const char *s, bool keep_slash) {
  static const char hx[] = "0123456789ABCDEF";
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    bool plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '-' || ch == '.' || ch == '_' || ch == '~' || (keep_slash && ch == '/');
    char e[3] = {'%', hx[ch >> 4], hx[ch & 15]};
    int rc = plain ? sb_buf_append(b, s, 1) : sb_buf_append(b, e, 3);
    if (rc) return rc;
  }
  return 0;
}

/* Expands rule's path template with req's fields, adds the query string of a body-less
 * request, and writes the JSON body. Returns 0, SB_EINVAL (a path field with no text form) or
 * SB_ENOMEM. */
static int rest_request(ccall_t *cc, const ProtobufCMessage *req) {
  const sb_http_rule_t *r = cc->rule;
  sb_buf_t path = {0};
  const char *bound[16];
  size_t n_bound = 0;
  int rc = 0;
  for (const char *t = r->path; *t && !rc;) {
    if (*t != '{') {
      rc = sb_buf_append(&path, t, 1);
      t++;
      continue;
    }
    const char *end = strchr(t, '}');
    if (!end) return SB_EINVAL;
    const char *var = t + 1;
    size_t vl = strcspn(var, "=}");
    bool multi = var[vl] == '=' && strstr(var, "**") && strstr(var, "**") < end;
    char text[512];
    if (!path_text(req, var, vl, text, sizeof text)) rc = SB_EINVAL;
    if (!rc) rc = pct(&path, text, multi);
    if (n_bound < 16) bound[n_bound++] = var;
    t = end + 1;
  }
  if (!rc && !r->body) {
    /* Every other set scalar field goes in the query string. */
    const ProtobufCMessageDescriptor *d = req->descriptor;
    char sep = strchr(r->path, '?') ? '&' : '?';
    for (unsigned i = 0; i < d->n_fields && !rc; i++) {
      const ProtobufCFieldDescriptor *f = &d->fields[i];
      bool is_bound = false;
      for (size_t k = 0; k < n_bound; k++) {
        size_t fl = strlen(f->name);
        if (strncmp(bound[k], f->name, fl) == 0 && strchr(".=}", bound[k][fl])) is_bound = true;
      }
      char text[512];
      if (is_bound || f->label == PROTOBUF_C_LABEL_REPEATED ||
          !scalar_text(req, f, (const char *)req + f->offset, text, sizeof text) ||
          is_default(text))
        continue;
      rc = sb_buf_append(&path, &sep, 1);
      if (!rc) rc = pct(&path, f->name, false);
      if (!rc) rc = sb_buf_append(&path, "=", 1);
      if (!rc) rc = pct(&path, text, false);
      sep = '&';
    }
  }
  if (!rc) rc = sb_buf_append(&path, "", 1);
  if (!rc && r->body) {
    const ProtobufCMessage *b = req;
    if (strcmp(r->body, "*") != 0) {
      const ProtobufCFieldDescriptor *f =
          protobuf_c_message_descriptor_get_field_by_name(req->descriptor, r->body);
      if (!f || f->type != PROTOBUF_C_TYPE_MESSAGE || f->label == PROTOBUF_C_LABEL_REPEATED) {
        rc = SB_EINVAL;
      } else {
        b = *(const ProtobufCMessage *const *)((const char *)req + f->offset);
      }
    }
    if (!rc && b) {
      sb_jw_t w;
      sb_jw_init(&w, &cc->out);
      rc = sb_pbjson_write(&w, b, 0);
    } else if (!rc) {
      rc = sb_buf_append(&cc->out, "{}", 2);
    }
  }
  if (rc) {
    sb_buf_free(&path);
    return rc;
  }
  cc->rest_path = (char *)path.data; /* NUL-terminated above; ownership moves to cc */
  return 0;
}

int sb_client_call_rest(sb_client_t *c, const sb_method_desc_t *m, const ProtobufCMessage *req,
                        uint32_t timeout_ms, sb_client_msg_cb on_message, sb_client_done_cb on_done,
                        void *ud) {
  if (c->freeing || c->state == ST_CLOSING) return SB_ESTATE;
  if (!on_done || m->kind != SB_METHOD_UNARY || !m->n_http) return SB_EINVAL;
  ccall_t *cc = calloc(1, sizeof *cc);
  if (!cc) return SB_ENOMEM;
  cc->c = c;
  cc->m = m;
  cc->rule = &m->http[0];
  cc->grpc_status = -1;
  cc->on_message = on_message;
  cc->on_done = on_done;
  cc->ud = ud;
  int rc = rest_request(cc, req);
  return start_call(c, cc, rc, timeout_ms);
}

void sb_client_free(sb_client_t *c) {
  if (!c || c->freeing) return;
  c->freeing = 1;
  while (c->calls)
    end_call(c->calls, SB_CODE_CANCELLED, "client freed");
  flush(c);
  if (c->session) {
    nghttp2_session_del(c->session);
    c->session = NULL;
  }
  c->state = ST_CLOSING;
  if (c->tcp_open) {
    if (!uv_is_closing((uv_handle_t *)&c->tcp)) uv_close((uv_handle_t *)&c->tcp, on_tcp_closed);
    return;
  }
  free(c->rbuf);
  free(c);
}
