/*
 * HTTP/2 on nghttp2 (server side).
 *
 * nghttp2 owns the framing, HPACK, stream states and flow control; this module maps its
 * callbacks onto exchanges. Input goes through nghttp2_session_mem_recv() and output comes
 * out of nghttp2_session_mem_send() into conn->out, only when conn.c flushes, never from
 * inside a callback.
 *
 * Response bodies. Each exchange buffers what its handler wrote in req->body (bounded by
 * SB_STREAM_OUT_HIGH through the write backpressure signal). nghttp2 pulls from that buffer
 * through a data provider as the peer's flow-control window allows; an empty buffer defers
 * the stream until the handler writes again. A peer that stops reading a stream therefore
 * stops that stream alone, and the handler sees backpressure instead of growing a buffer.
 *
 * Abuse. nghttp2's own limits stop SETTINGS/PING floods (outbound ACK queue), rapid reset
 * (RST_STREAM token bucket) and CONTINUATION floods; the session is then terminated with a
 * GOAWAY and the connection closes after flushing it.
 *
 * Stream user data is the exchange; it is cleared in on_stream_close, after which nghttp2
 * never mentions the stream again. Once the connection is closing every callback returns at
 * once, because exchanges may have been freed by the close.
 */
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "net/net_int.h"
#include "switchboard/error.h"
#include "switchboard/log.h"

#define SB_H2_STREAM_WINDOW (256u * 1024u) /* SETTINGS_INITIAL_WINDOW_SIZE we grant */
#define SB_H2_CONN_WINDOW (1024u * 1024u)  /* connection-level receive window */
#define SB_H2_RESET_BURST 1000u            /* RST_STREAM token bucket size */
#define SB_H2_RESET_RATE 33u               /* tokens per second */

struct sb__h2 {
  nghttp2_session *session; /* owned */
  uint8_t goaway;           /* GOAWAY submitted */
  uint8_t dead;             /* session terminated; input is dropped */
};

static sb_http_req_t *stream_req(nghttp2_session *s, int32_t id) {
  return nghttp2_session_get_stream_user_data(s, id);
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f, void *ud) {
  sb__conn_t *c = ud;
  if (c->closing || f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
    return 0;
  sb_http_req_t *req = sb__req_new(c, SB_HTTP_2);
  if (!req) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  req->stream_id = f->hd.stream_id;
  req->keepalive = 1;
  nghttp2_session_set_stream_user_data(s, f->hd.stream_id, req);
  return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                     const uint8_t *value, size_t vlen, uint8_t flags, void *ud) {
  sb__conn_t *c = ud;
  if (c->closing || f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
    return 0; /* trailers from the client carry nothing we use */
  sb_http_req_t *req = stream_req(s, f->hd.stream_id);
  if (!req) return 0;
  /* RFC 9113 section 6.5.2: a field costs its name, its value and 32 octets. */
  uint64_t cost = (uint64_t)nlen + vlen + 32;
  if (req->header_bytes + cost > c->w->srv->cfg.h2_max_header_list) req->too_large = 1;
  if (req->too_large) return 0;
  const char *n = (const char *)name, *v = (const char *)value;
  if (nlen > 0 && n[0] == ':') {
    req->header_bytes += (uint32_t)cost;
    char *copy = sb_arena_strndup(&req->arena, v, vlen);
    if (!copy) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (nlen == 7 && memcmp(n, ":method", 7) == 0)
      req->method = copy;
    else if (nlen == 5 && memcmp(n, ":path", 5) == 0) {
      if (sb__req_set_target(req, v, vlen)) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    } else if (nlen == 10 && memcmp(n, ":authority", 10) == 0)
      req->authority = copy;
    return 0;
  }
  if (sb__req_add_header(req, n, nlen, v, vlen)) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  if (nlen == 4 && memcmp(n, "host", 4) == 0 && req->authority[0] == '\0')
    req->authority = req->hdrs[req->nhdrs - 1].value;
  return 0;
}

static void request_headers_done(sb__conn_t *c, sb_http_req_t *req, int end_stream) {
  req->head = strcmp(req->method, "HEAD") == 0;
  size_t clen = 0;
  const char *cl = sb_http_req_header(req, "content-length", &clen);
  if (cl) req->content_length = strtoll(cl, NULL, 10); /* nghttp2 validated the syntax */
  if (end_stream) req->body_done = 1;
  if (req->content_length > 0 && (uint64_t)req->content_length > c->w->srv->cfg.max_body_bytes) {
    req->discard_body = 1;
    sb__respond_error(req, 413);
    return;
  }
  sb__req_dispatch(req);
  if (end_stream && !c->closing) {
    req->body_done = 0;
    sb__req_deliver_end(req);
  }
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *ud) {
  sb__conn_t *c = ud;
  if (c->closing) return 0;
  int end = (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  switch (f->hd.type) {
  case NGHTTP2_HEADERS: {
    sb_http_req_t *req = stream_req(s, f->hd.stream_id);
    if (!req) return 0;
    if (f->headers.cat == NGHTTP2_HCAT_REQUEST)
      request_headers_done(c, req, end);
    else if (end)
      sb__req_deliver_end(req);
    break;
  }
  case NGHTTP2_DATA:
    if (end) {
      sb_http_req_t *req = stream_req(s, f->hd.stream_id);
      if (req) sb__req_deliver_end(req);
    }
    break;
  default:
    break;
  }
  sb__conn_mark_dirty(c);
  return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *ud) {
  sb__conn_t *c = ud;
  if (c->closing) return 0;
  sb_http_req_t *req = stream_req(s, id);
  if (!req) {
    nghttp2_session_consume(s, id, len);
    return 0;
  }
  req->body_bytes += len;
  uint64_t limit = req->body_limit ? req->body_limit : c->w->srv->cfg.max_body_bytes;
  if (req->body_bytes > limit && !req->discard_body) {
    req->discard_body = 1;
    if (!req->handler_done) sb__req_abort(req, SB_ELIMIT);
    nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
  }
  sb__req_deliver_data(req, data, len);
  if (req->body_paused && !req->handler_done && !req->aborted)
    req->h2_unconsumed += len;
  else
    nghttp2_session_consume(s, id, len);
  return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t error_code, void *ud) {
  sb__conn_t *c = ud;
  if (c->closing) return 0;
  sb_http_req_t *req = stream_req(s, id);
  if (!req) return 0;
  nghttp2_session_set_stream_user_data(s, id, NULL);
  /* Window held back for a paused body belongs to the connection too. */
  if (req->h2_unconsumed) nghttp2_session_consume_connection(s, req->h2_unconsumed);
  req->h2_unconsumed = 0;
  if (!req->handler_done) sb__req_abort(req, SB_ECANCELED);
  sb__req_transport_done(req);
  sb__conn_mark_dirty(c);
  return 0;
}

static int on_invalid_frame(nghttp2_session *s, const nghttp2_frame *f, int err, void *ud) {
  sb__conn_t *c = ud;
  sb_counter_add(&c->w->metrics.protocol_errors, 1);
  if (sb_log_enabled(SB_LOG_DEBUG))
    sb_log(SB_LOG_DEBUG, "h2_invalid_frame", "peer=%s type=%u err=%s", c->peer, f->hd.type,
           nghttp2_strerror(err));
  return 0;
}

static nghttp2_session_callbacks *g_callbacks; /* immutable after first use */
static uv_once_t g_callbacks_once = UV_ONCE_INIT;

static void init_callbacks(void) {
  nghttp2_session_callbacks *cb;
  if (nghttp2_session_callbacks_new(&cb) != 0) return;
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
  nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cb, on_invalid_frame);
  g_callbacks = cb;
}

static nghttp2_option *g_option;
static uv_once_t g_option_once = UV_ONCE_INIT;

static void init_option(void) {
  nghttp2_option *opt;
  if (nghttp2_option_new(&opt) != 0) return;
  nghttp2_option_set_no_closed_streams(opt, 1);
  /* Window goes back to the peer only as handlers take body bytes (sb_http_req_pause_body);
   * nghttp2 still consumes padding itself. */
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_option_set_stream_reset_rate_limit(opt, SB_H2_RESET_BURST, SB_H2_RESET_RATE);
  g_option = opt;
}

int sb__h2_init(sb__conn_t *c, const uint8_t *settings, size_t settings_len,
                sb_http_req_t *upgraded) {
  uv_once(&g_callbacks_once, init_callbacks);
  uv_once(&g_option_once, init_option);
  if (!g_callbacks || !g_option) return SB_ENOMEM;
  sb__h2_t *h = calloc(1, sizeof *h);
  if (!h) return SB_ENOMEM;
  if (nghttp2_session_server_new2(&h->session, g_callbacks, c, g_option) != 0) {
    free(h);
    return SB_ENOMEM;
  }
  c->h2 = h;
  c->proto = SB__PROTO_H2;
  const sb_server_config_t *cfg = &c->w->srv->cfg;
  nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, cfg->h2_max_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, SB_H2_STREAM_WINDOW},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, cfg->h2_max_header_list},
  };
  int rv = nghttp2_submit_settings(h->session, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]);
  if (!rv)
    rv = nghttp2_session_set_local_window_size(h->session, NGHTTP2_FLAG_NONE, 0,
                                               (int32_t)SB_H2_CONN_WINDOW);
  if (rv) return SB_ENOMEM;
  if (upgraded) {
    rv = nghttp2_session_upgrade2(h->session, settings, settings_len, upgraded->head, upgraded);
    if (rv) {
      /* A bad HTTP2-Settings header after we already said 101: nothing to answer with. */
      sb__req_transport_done(upgraded);
      return SB_EPROTO;
    }
    /* upgrade2 ignores its user-data argument on the server side. */
    nghttp2_session_set_stream_user_data(h->session, 1, upgraded);
    upgraded->proto = SB_HTTP_2;
    upgraded->stream_id = 1;
    upgraded->keepalive = 1;
    sb__req_dispatch(upgraded);
    if (!c->closing) {
      upgraded->body_done = 0;
      sb__req_deliver_end(upgraded);
    }
  }
  sb__conn_mark_dirty(c);
  return 0;
}

void sb__h2_free(sb__conn_t *c) {
  if (!c->h2) return;
  nghttp2_session_del(c->h2->session);
  free(c->h2);
  c->h2 = NULL;
}

int64_t sb__h2_feed(sb__conn_t *c, const uint8_t *data, size_t len) {
  sb__h2_t *h = c->h2;
  if (h->dead) return (int64_t)len;
  ssize_t rv = nghttp2_session_mem_recv(h->session, data, len);
  if (c->closing) return SB_ECANCELED;
  if (rv < 0) {
    sb_counter_add(&c->w->metrics.protocol_errors, 1);
    if (sb_log_enabled(SB_LOG_DEBUG))
      sb_log(SB_LOG_DEBUG, "h2_session_error", "peer=%s err=%s", c->peer,
             nghttp2_strerror((int)rv));
    if (rv == NGHTTP2_ERR_BAD_CLIENT_MAGIC) return SB_EPROTO; /* not HTTP/2: just close */
    h->dead = 1;
    nghttp2_session_terminate_session(
        h->session, rv == NGHTTP2_ERR_FLOODED ? NGHTTP2_ENHANCE_YOUR_CALM : NGHTTP2_PROTOCOL_ERROR);
    c->close_after_flush = 1;
    sb__conn_mark_dirty(c);
    return (int64_t)len;
  }
  sb__conn_mark_dirty(c);
  return rv;
}

int sb__h2_pump(sb__conn_t *c) {
  sb__h2_t *h = c->h2;
  while (!sb__conn_out_full(c)) {
    const uint8_t *data;
    ssize_t n = nghttp2_session_mem_send(h->session, &data);
    if (c->closing) return 0;
    if (n < 0) return SB_EPROTO;
    if (n == 0) break;
    if (sb_buf_append(&c->out, data, (size_t)n)) return SB_ENOMEM;
  }
  c->h2_want_write = (uint8_t)nghttp2_session_want_write(h->session);
  /* Wake handlers whose stream buffers drained; they may write again (only submitting, never
   * sending, so the list cannot change under us except for the current entry). */
  for (sb_http_req_t *r = c->reqs, *next; r; r = next) {
    next = r->next;
    if (r->want_writable && sb_buf_pending(&r->body) < SB_STREAM_OUT_LOW)
      sb__req_deliver_writable(r);
    if (c->closing) return 0;
  }
  if (!nghttp2_session_want_read(h->session) && !nghttp2_session_want_write(h->session))
    c->close_after_flush = 1;
  return 0;
}

void sb__h2_shutdown(sb__conn_t *c) {
  sb__h2_t *h = c->h2;
  if (!h || h->goaway) return;
  h->goaway = 1;
  nghttp2_submit_goaway(h->session, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(h->session), NGHTTP2_NO_ERROR, NULL,
                        0);
  sb__conn_mark_dirty(c);
}

/* ---- responses ---- */

static ssize_t read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *ud) {
  sb_http_req_t *req = src->ptr;
  size_t n = sb_buf_pending(&req->body);
  if (n > length) n = length;
  if (n) {
    memcpy(buf, sb_buf_head(&req->body), n);
    sb_buf_consume(&req->body, n);
  }
  if (sb_buf_pending(&req->body) == 0) {
    if (req->handler_done) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      sb_buf_free(&req->body);
      if (req->ntrailers) {
        nghttp2_nv nva[req->ntrailers];
        for (uint32_t i = 0; i < req->ntrailers; i++)
          nva[i] = (nghttp2_nv){(uint8_t *)req->trailers[i].name, (uint8_t *)req->trailers[i].value,
                                req->trailers[i].name_len, req->trailers[i].value_len,
                                NGHTTP2_NV_FLAG_NONE};
        if (nghttp2_submit_trailer(s, id, nva, req->ntrailers) == 0)
          *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      }
    } else if (n == 0) {
      req->h2_deferred = 1;
      return NGHTTP2_ERR_DEFERRED;
    }
  }
  return (ssize_t)n;
}

static int no_body_status(int status) {
  return status == 204 || status == 304 || status < 200;
}

int sb__h2_res_start(sb_http_req_t *req) {
  sb__conn_t *c = req->conn;
  sb__h2_t *h = c->h2;
  req->headers_sent = 1;
  char status[4], clen[24];
  snprintf(status, sizeof status, "%03d", req->status);
  const char *date = sb__worker_date(c->w);
  size_t n = 0, cap = req->nrhdrs + 4;
  nghttp2_nv *nva = sb_arena_alloc(&req->arena, cap * sizeof *nva);
  if (!nva) return SB_ENOMEM;
#define NV(nm, val, vl)                                                                            \
  nva[n++] =                                                                                       \
      (nghttp2_nv){(uint8_t *)(nm), (uint8_t *)(val), sizeof(nm) - 1, (vl), NGHTTP2_NV_FLAG_NONE}
  NV(":status", status, 3);
  NV("date", date, strlen(date));
  NV("server", "switchboard", 11);
  if (req->res_content_length >= 0 && !no_body_status(req->status)) {
    int l = snprintf(clen, sizeof clen, "%lld", (long long)req->res_content_length);
    NV("content-length", clen, (size_t)l);
  }
#undef NV
  for (uint32_t i = 0; i < req->nrhdrs; i++)
    nva[n++] = (nghttp2_nv){(uint8_t *)req->rhdrs[i].name, (uint8_t *)req->rhdrs[i].value,
                            req->rhdrs[i].name_len, req->rhdrs[i].value_len, NGHTTP2_NV_FLAG_NONE};
  int bodyless = req->head || no_body_status(req->status) ||
                 (req->handler_done && sb_buf_pending(&req->body) == 0 && !req->ntrailers &&
                  req->res_body_bytes == 0);
  nghttp2_data_provider prd = {.source.ptr = req, .read_callback = read_body};
  int rv = nghttp2_submit_response(h->session, req->stream_id, nva, n, bodyless ? NULL : &prd);
  sb__conn_mark_dirty(c);
  return rv ? SB_ENOMEM : 0;
}

int sb__h2_res_write(sb_http_req_t *req, const void *data, size_t len) {
  if (req->head || no_body_status(req->status)) return 0;
  if (sb_buf_append(&req->body, data, len)) return SB_ENOMEM;
  if (req->h2_deferred) {
    req->h2_deferred = 0;
    nghttp2_session_resume_data(req->conn->h2->session, req->stream_id);
  }
  sb__conn_mark_dirty(req->conn);
  if (sb_buf_pending(&req->body) >= SB_STREAM_OUT_HIGH) {
    req->want_writable = 1;
    return 1;
  }
  return 0;
}

int sb__h2_res_end(sb_http_req_t *req) {
  int rc = 0;
  if (!req->headers_sent) {
    if (req->res_content_length < 0) req->res_content_length = (int64_t)req->res_body_bytes;
    rc = sb__h2_res_start(req);
  } else if (req->h2_deferred) {
    req->h2_deferred = 0;
    nghttp2_session_resume_data(req->conn->h2->session, req->stream_id);
  }
  sb__h2_body_resume(req); /* the rest of the body is taken and dropped */
  if (!rc && req->res_content_length >= 0 && !req->head && !no_body_status(req->status) &&
      req->res_body_bytes != (uint64_t)req->res_content_length) {
    sb__h2_reset(req, NGHTTP2_INTERNAL_ERROR);
    rc = SB_ELIMIT;
  }
  sb__conn_mark_dirty(req->conn);
  return rc;
}

void sb__h2_body_resume(sb_http_req_t *req) {
  if (!req->conn || !req->conn->h2 || !req->h2_unconsumed) return;
  nghttp2_session_consume(req->conn->h2->session, req->stream_id, req->h2_unconsumed);
  req->h2_unconsumed = 0;
  sb__conn_mark_dirty(req->conn);
}

void sb__h2_reset(sb_http_req_t *req, uint32_t error_code) {
  if (!req->conn || !req->conn->h2) return;
  nghttp2_submit_rst_stream(req->conn->h2->session, NGHTTP2_FLAG_NONE, req->stream_id, error_code);
  sb__conn_mark_dirty(req->conn);
}
