/*
 * HTTP/1.1 on http-parser.
 *
 * One exchange at a time per connection. A pipelined request is parsed only after the
 * previous response has ended: on_message_complete pauses the parser while the handler
 * still holds the current exchange, the unparsed bytes wait in conn->in (and the connection
 * stops reading), and the parser resumes when the response ends. Responses therefore leave
 * in request order without a per-connection response queue.
 *
 * Request bytes are copied as they are parsed (header fields into a per-connection scratch
 * buffer, then into the exchange's arena), so the read buffer can be reused at once.
 *
 * Errors found while parsing are answered by the transport itself (400, 413, 431, 505, 417)
 * with `connection: close`, after which the connection ignores further input and lingers
 * until the client has read the answer.
 */
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "net/net_int.h"
#include "switchboard/error.h"
#include "switchboard/log.h"

struct sb__h1 {
  http_parser parser;    /* data = conn */
  sb__conn_t *conn;      /* owner */
  sb_http_req_t *cur;    /* exchange being parsed or answered; held by this transport */
  sb_buf_t scratch;      /* the target, then the current header field: name then value */
  size_t name_len;       /* bytes of scratch that are the current field's name */
  uint32_t head_bytes;   /* request line + header bytes of cur, against the limit */
  uint8_t url_done;      /* the target was moved out of scratch */
  uint8_t in_value;      /* scratch holds a name and (part of) a value */
  uint8_t in_execute;    /* inside http_parser_execute */
  uint8_t paused;        /* parser paused until cur's response ends */
  uint8_t body_paused;   /* parser paused because the handler paused the body */
  uint8_t dead;          /* no more requests on this connection; input is dropped */
  uint8_t upgrade_h2c;   /* cur is an accepted h2c upgrade */
  int error_status;      /* answer for an error found in a callback */
  uint8_t *h2_settings;  /* decoded HTTP2-Settings of an upgrade; owned */
  size_t h2_settings_len;
};

static const http_parser_settings settings;

int sb__h1_init(sb__conn_t *c) {
  sb__h1_t *h = calloc(1, sizeof *h);
  if (!h) return SB_ENOMEM;
  http_parser_init(&h->parser, HTTP_REQUEST);
  h->parser.data = c;
  h->conn = c;
  c->h1 = h;
  return 0;
}

void sb__h1_free(sb__conn_t *c) {
  sb__h1_t *h = c->h1;
  if (!h) return;
  sb_buf_free(&h->scratch);
  free(h->h2_settings);
  free(h);
  c->h1 = NULL;
}

/* Idle: no handler is still producing a response. A finished response whose request body is
 * still arriving counts as idle, so a closing connection need not wait for that body. */
int sb__h1_idle(const sb__conn_t *c) {
  return !c->h1 || c->h1->cur == NULL || c->h1->cur->handler_done;
}

int sb__h1_wait_state(const sb__conn_t *c) {
  const sb_http_req_t *r = c->h1 ? c->h1->cur : NULL;
  if (!r) return SB__H1_WAIT_IDLE;
  if (!r->dispatched && !c->h1->upgrade_h2c) return SB__H1_WAIT_HEADERS;
  if (!r->body_done) return c->h1->body_paused ? SB__H1_WAIT_HANDLER : SB__H1_WAIT_BODY;
  return SB__H1_WAIT_HANDLER;
}

/* ---- error answers ---- */

/* Writes a complete error response for status with connection: close. */
static void write_error(sb__conn_t *c, int status) {
  char body[96];
  int blen = snprintf(body, sizeof body, "%d %s\n", status, sb_http_status_text(status));
  sb_buf_appendf(&c->out,
                 "HTTP/1.1 %d %s\r\ndate: %s\r\nserver: switchboard\r\nconnection: close\r\n"
                 "content-type: text/plain\r\ncontent-length: %d\r\n\r\n%s",
                 status, sb_http_status_text(status), sb__worker_date(c->w), blen, body);
  sb_counter_add(&c->w->metrics.requests[0][status], 1);
}

/* Ends the connection's request stream after an error: answers status when nothing of a
 * response was sent yet, aborts the exchange, and closes once the answer is flushed. */
static void h1_fail(sb__conn_t *c, int status, int err) {
  sb__h1_t *h = c->h1;
  sb_http_req_t *req = h->cur;
  h->dead = 1;
  h->cur = NULL;
  sb_counter_add(&c->w->metrics.protocol_errors, 1);
  if (!req || !req->headers_sent) write_error(c, status);
  if (req) {
    int complete = req->handler_done && req->headers_sent;
    if (!complete) sb__req_abort(req, err);
    sb__req_transport_done(req);
  }
  c->close_after_flush = 1;
  sb__conn_mark_dirty(c);
  if (h->in_execute) http_parser_pause(&h->parser, 1);
}

/* ---- parser callbacks ---- */

static int count_head(sb__h1_t *h, size_t n) {
  h->head_bytes += (uint32_t)(n > UINT32_MAX ? UINT32_MAX : n);
  if (h->head_bytes > h->conn->w->srv->cfg.max_header_bytes || n > UINT32_MAX) {
    h->error_status = 431;
    return -1;
  }
  return 0;
}

static int on_message_begin(http_parser *p) {
  sb__conn_t *c = p->data;
  sb__h1_t *h = c->h1;
  h->cur = sb__req_new(c, SB_HTTP_1);
  if (!h->cur) {
    h->error_status = 500;
    return -1;
  }
  h->head_bytes = 0;
  h->url_done = 0;
  h->in_value = 0;
  h->name_len = 0;
  sb_buf_reset(&h->scratch);
  c->req_start_ms = uv_now(&c->w->loop);
  return 0;
}

static int on_url(http_parser *p, const char *at, size_t n) {
  sb__h1_t *h = ((sb__conn_t *)p->data)->h1;
  if (count_head(h, n)) return -1;
  return sb_buf_append(&h->scratch, at, n) ? (h->error_status = 500, -1) : 0;
}

/* Moves the target out of scratch into the exchange. */
static int commit_url(sb__h1_t *h) {
  if (h->url_done) return 0;
  h->url_done = 1;
  const char *t = (const char *)sb_buf_head(&h->scratch);
  size_t n = sb_buf_pending(&h->scratch);
  /* origin-form "/path", asterisk-form "*", or absolute-form "http://host/path". */
  if (n >= 7 && (strncasecmp(t, "http://", 7) == 0 || (n >= 8 && strncasecmp(t, "https://", 8) == 0))) {
    const char *rest = t + (t[4] == ':' ? 7 : 8);
    const char *slash = memchr(rest, '/', n - (size_t)(rest - t));
    if (!slash) {
      t = "/";
      n = 1;
    } else {
      n -= (size_t)(slash - t);
      t = slash;
    }
  } else if (n == 0 || (t[0] != '/' && !(n == 1 && t[0] == '*'))) {
    h->error_status = 400;
    return -1;
  }
  int rc = sb__req_set_target(h->cur, t, n);
  sb_buf_reset(&h->scratch);
  if (rc) h->error_status = 500;
  return rc ? -1 : 0;
}

static int commit_field(sb__h1_t *h) {
  if (!h->in_value) return 0;
  h->in_value = 0;
  const char *name = (const char *)sb_buf_head(&h->scratch);
  const char *value = name + h->name_len;
  size_t vlen = sb_buf_pending(&h->scratch) - h->name_len;
  while (vlen > 0 && (value[vlen - 1] == ' ' || value[vlen - 1] == '\t')) vlen--;
  if (!sb__header_name_ok(name, h->name_len) || !sb__header_value_ok(value, vlen)) {
    h->error_status = 400;
    return -1;
  }
  int rc = sb__req_add_header(h->cur, name, h->name_len, value, vlen);
  sb_buf_reset(&h->scratch);
  h->name_len = 0;
  if (rc) h->error_status = 500;
  return rc ? -1 : 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n) {
  sb__h1_t *h = ((sb__conn_t *)p->data)->h1;
  if (commit_url(h) || commit_field(h) || count_head(h, n + 4)) return -1;
  if (sb_buf_append(&h->scratch, at, n)) return h->error_status = 500, -1;
  h->name_len += n;
  return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n) {
  sb__h1_t *h = ((sb__conn_t *)p->data)->h1;
  if (count_head(h, n)) return -1;
  h->in_value = 1;
  return sb_buf_append(&h->scratch, at, n) ? (h->error_status = 500, -1) : 0;
}

/* Decodes base64url (padding optional) into a new buffer; returns its length or -1. */
static long b64url_decode(const char *s, size_t n, uint8_t **out) {
  while (n > 0 && s[n - 1] == '=') n--;
  uint8_t *o = malloc(n * 3 / 4 + 3);
  if (!o) return -1;
  uint32_t acc = 0;
  int bits = 0;
  size_t len = 0;
  for (size_t i = 0; i < n; i++) {
    int v;
    char ch = s[i];
    if (ch >= 'A' && ch <= 'Z') v = ch - 'A';
    else if (ch >= 'a' && ch <= 'z') v = ch - 'a' + 26;
    else if (ch >= '0' && ch <= '9') v = ch - '0' + 52;
    else if (ch == '-' || ch == '+') v = 62;
    else if (ch == '_' || ch == '/') v = 63;
    else {
      free(o);
      return -1;
    }
    acc = (acc << 6) | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      o[len++] = (uint8_t)(acc >> bits);
    }
  }
  *out = o;
  return (long)len;
}

static int has_token(const char *list, const char *tok) {
  size_t tl = strlen(tok);
  for (const char *p = list; p && *p;) {
    while (*p == ' ' || *p == '\t' || *p == ',') p++;
    const char *e = p;
    while (*e && *e != ',') e++;
    const char *t = e;
    while (t > p && (t[-1] == ' ' || t[-1] == '\t')) t--;
    if ((size_t)(t - p) == tl && strncasecmp(p, tok, tl) == 0) return 1;
    p = e;
  }
  return 0;
}

/* Accepts an h2c upgrade when the request asks for one properly and carries no body. */
static int want_h2c(sb__conn_t *c, sb__h1_t *h, sb_http_req_t *req) {
  if (c->ssl || !h->parser.upgrade || req->http_minor != 1) return 0;
  const char *up = sb_http_req_header(req, "upgrade", NULL);
  const char *conn_hdr = sb_http_req_header(req, "connection", NULL);
  size_t slen = 0;
  const char *set = sb_http_req_header(req, "http2-settings", &slen);
  if (!up || !set || !conn_hdr || !has_token(up, "h2c") || !has_token(conn_hdr, "http2-settings"))
    return 0;
  if ((h->parser.flags & F_CHUNKED) || req->content_length > 0) return 0;
  uint8_t *dec = NULL;
  long dlen = b64url_decode(set, slen, &dec);
  if (dlen < 0 || dlen % 6 != 0) {
    free(dec);
    return 0;
  }
  free(h->h2_settings);
  h->h2_settings = dec;
  h->h2_settings_len = (size_t)dlen;
  return 1;
}

static int on_headers_complete(http_parser *p) {
  sb__conn_t *c = p->data;
  sb__h1_t *h = c->h1;
  sb_http_req_t *req = h->cur;
  if (commit_url(h) || commit_field(h)) return -1;
  if (p->http_major != 1) {
    h->error_status = 505;
    return -1;
  }
  req->http_minor = (uint8_t)p->http_minor;
  req->method = http_method_str((enum http_method)p->method);
  req->head = p->method == HTTP_HEAD;
  req->keepalive = http_should_keep_alive(p) ? 1 : 0;
  const char *host = sb_http_req_header(req, "host", NULL);
  if (host) req->authority = host;
  else if (p->http_minor >= 1) {
    h->error_status = 400; /* RFC 9112 section 3.2: HTTP/1.1 requests must carry Host */
    return -1;
  }
  if (p->flags & F_CHUNKED)
    req->content_length = -1;
  else if (p->content_length != ULLONG_MAX && p->content_length > 0)
    req->content_length = (int64_t)p->content_length;
  else
    req->content_length = 0;
  if (req->too_large) {
    h->error_status = 431;
    return -1;
  }
  if (req->content_length > 0 &&
      (uint64_t)req->content_length > c->w->srv->cfg.max_body_bytes) {
    h->error_status = 413;
    return -1;
  }
  size_t elen = 0;
  const char *expect = sb_http_req_header(req, "expect", &elen);
  if (expect) {
    if (elen == 12 && strncasecmp(expect, "100-continue", 12) == 0) {
      req->expect_continue = req->http_minor >= 1;
    } else {
      h->error_status = 417;
      return -1;
    }
  }
  if (want_h2c(c, h, req)) {
    h->upgrade_h2c = 1;
    return 0; /* dispatched as HTTP/2 stream 1 once the message is complete */
  }
  sb__req_dispatch(req);
  if (h->cur != req) return 0; /* the handler's answer completed the exchange */
  if (req->expect_continue && !req->headers_sent && !req->handler_done &&
      req->content_length != 0) {
    sb_buf_append(&c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    req->expect_continue = 0;
    sb__conn_mark_dirty(c);
  }
  return 0;
}

static int on_body(http_parser *p, const char *at, size_t n) {
  sb__conn_t *c = p->data;
  sb__h1_t *h = c->h1;
  sb_http_req_t *req = h->cur;
  if (!req) return 0;
  req->body_bytes += n;
  if (req->body_bytes > c->w->srv->cfg.max_body_bytes) {
    h->error_status = 413;
    return -1;
  }
  sb__req_deliver_data(req, (const uint8_t *)at, n);
  if (req->body_paused && !req->handler_done && h->cur == req) {
    h->body_paused = 1;
    http_parser_pause(p, 1);
  }
  return 0;
}

void sb__h1_body_resume(sb_http_req_t *req) {
  sb__conn_t *c = req->conn;
  sb__h1_t *h = c->h1;
  if (!h || h->cur != req || !h->body_paused) return;
  h->body_paused = 0;
  http_parser_pause(&h->parser, 0);
  c->need_input = 1;
  sb__conn_mark_dirty(c);
}

/* The exchange is complete on both sides: let go of it and move to the next request. */
static void h1_complete(sb__conn_t *c) {
  sb__h1_t *h = c->h1;
  sb_http_req_t *req = h->cur;
  h->cur = NULL;
  int keep = req->keepalive;
  sb__req_transport_done(req);
  if (!keep || c->close_after_flush) {
    h->dead = 1;
    c->close_after_flush = 1;
    if (h->in_execute) http_parser_pause(&h->parser, 1);
  } else if (h->paused) {
    http_parser_pause(&h->parser, 0);
    h->paused = 0;
    c->need_input = 1;
  }
  sb__conn_mark_dirty(c);
}

static int on_message_complete(http_parser *p) {
  sb__conn_t *c = p->data;
  sb__h1_t *h = c->h1;
  sb_http_req_t *req = h->cur;
  if (!req) return 0;
  if (h->upgrade_h2c) {
    req->body_done = 1;
    return 0;
  }
  sb__req_deliver_end(req);
  if (h->cur != req || c->closing) return 0; /* completed (or closed) from on_end */
  if (req->handler_done) {
    h1_complete(c);
  } else {
    h->paused = 1;
    http_parser_pause(p, 1);
  }
  return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* Switches an accepted h2c upgrade to HTTP/2: 101, then the request becomes stream 1. */
static int do_upgrade(sb__conn_t *c) {
  sb__h1_t *h = c->h1;
  sb_http_req_t *req = h->cur;
  h->cur = NULL;
  sb_buf_append(&c->out,
                "HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: h2c\r\n\r\n",
                71);
  uint8_t *set = h->h2_settings;
  size_t slen = h->h2_settings_len;
  h->h2_settings = NULL;
  sb__h1_free(c);
  c->proto = SB__PROTO_H2;
  int rc = sb__h2_init(c, set, slen, req);
  free(set);
  sb__conn_mark_dirty(c);
  return rc;
}

int64_t sb__h1_feed(sb__conn_t *c, const uint8_t *data, size_t len) {
  size_t done = 0;
  while (done < len) {
    sb__h1_t *h = c->h1;
    if (h->dead) return (int64_t)len;
    if (h->paused || h->body_paused) return (int64_t)done;
    h->in_execute = 1;
    size_t n = http_parser_execute(&h->parser, &settings, (const char *)data + done, len - done);
    h->in_execute = 0;
    if (c->closing) return SB_ECANCELED;
    done += n;
    enum http_errno err = HTTP_PARSER_ERRNO(&h->parser);
    if (err == HPE_PAUSED) {
      if (h->dead) return (int64_t)len;
      if (!h->paused && !h->body_paused)
        http_parser_pause(&h->parser, 0); /* completed during execute */
      continue;
    }
    if (err != HPE_OK) {
      int status = h->error_status ? h->error_status : 400;
      if (err == HPE_HEADER_OVERFLOW) status = 431;
      if (sb_log_enabled(SB_LOG_DEBUG))
        sb_log(SB_LOG_DEBUG, "http1_bad_request", "peer=%s status=%d err=%s", c->peer, status,
               http_errno_name(err));
      h1_fail(c, status, status == 413 ? SB_ELIMIT : SB_EPROTO);
      return (int64_t)len;
    }
    if (h->parser.upgrade) {
      if (h->upgrade_h2c) {
        int rc = do_upgrade(c);
        return rc < 0 ? rc : (int64_t)done;
      }
      /* A declined upgrade (websocket, ...) is an ordinary request: keep parsing. */
      http_parser_init(&h->parser, HTTP_REQUEST);
      h->parser.data = c;
      continue;
    }
    if (n == 0) break;
  }
  return (int64_t)done;
}

/* ---- responses ---- */

static int no_body_status(int status) { return status == 204 || status == 304 || status < 200; }

int sb__h1_res_start(sb_http_req_t *req) {
  sb__conn_t *c = req->conn;
  sb_buf_t *o = &c->out;
  req->headers_sent = 1;
  /* A client still waiting for 100 Continue may or may not send its body now: do not
   * guess where the next request starts. */
  if (req->expect_continue && !req->body_done) req->keepalive = 0;
  if (c->close_after_flush || c->w->stopping) req->keepalive = 0;
  int rc = sb_buf_appendf(o, "HTTP/1.%d %d %s\r\ndate: %s\r\nserver: switchboard\r\n",
                          req->http_minor ? 1 : 0, req->status, sb_http_status_text(req->status),
                          sb__worker_date(c->w));
  for (uint32_t i = 0; i < req->nrhdrs && !rc; i++) {
    const sb_http_header_t *f = &req->rhdrs[i];
    rc = sb_buf_reserve(o, f->name_len + f->value_len + 4);
    if (rc) break;
    memcpy(o->data + o->len, f->name, f->name_len);
    o->len += f->name_len;
    o->data[o->len++] = ':';
    o->data[o->len++] = ' ';
    memcpy(o->data + o->len, f->value, f->value_len);
    o->len += f->value_len;
    o->data[o->len++] = '\r';
    o->data[o->len++] = '\n';
  }
  if (rc) return rc;
  if (no_body_status(req->status)) {
    /* no framing headers */
  } else if (req->res_content_length >= 0) {
    rc = sb_buf_appendf(o, "content-length: %lld\r\n", (long long)req->res_content_length);
  } else if (req->head) {
    /* length unknown: say nothing rather than something wrong */
  } else if (req->http_minor >= 1) {
    req->chunked = 1;
    rc = sb_buf_append(o, "transfer-encoding: chunked\r\n", 28);
  } else {
    req->keepalive = 0; /* HTTP/1.0 without a length: the close delimits the body */
  }
  if (!rc) {
    if (!req->keepalive)
      rc = sb_buf_append(o, "connection: close\r\n\r\n", 21);
    else if (req->http_minor == 0)
      rc = sb_buf_append(o, "connection: keep-alive\r\n\r\n", 26);
    else
      rc = sb_buf_append(o, "\r\n", 2);
  }
  sb__conn_mark_dirty(c);
  return rc;
}

int sb__h1_res_write(sb_http_req_t *req, const void *data, size_t len) {
  sb__conn_t *c = req->conn;
  if (req->head || no_body_status(req->status)) return 0;
  int rc;
  if (req->chunked) {
    char hdr[24];
    int n = snprintf(hdr, sizeof hdr, "%zx\r\n", len);
    rc = sb_buf_reserve(&c->out, (size_t)n + len + 2);
    if (!rc) {
      sb_buf_append(&c->out, hdr, (size_t)n);
      sb_buf_append(&c->out, data, len);
      sb_buf_append(&c->out, "\r\n", 2);
    }
  } else {
    rc = sb_buf_append(&c->out, data, len);
  }
  if (rc) return rc;
  sb__conn_mark_dirty(c);
  if (sb__conn_out_full(c)) {
    req->want_writable = 1;
    return 1;
  }
  return 0;
}

int sb__h1_res_end(sb_http_req_t *req) {
  sb__conn_t *c = req->conn;
  int rc = 0;
  if (!req->headers_sent) {
    if (req->res_content_length < 0) req->res_content_length = (int64_t)req->res_body_bytes;
    rc = sb__h1_res_start(req);
  }
  if (!rc && req->chunked) {
    rc = sb_buf_append(&c->out, "0\r\n", 3);
    for (uint32_t i = 0; i < req->ntrailers && !rc; i++)
      rc = sb_buf_appendf(&c->out, "%s: %s\r\n", req->trailers[i].name, req->trailers[i].value);
    if (!rc) rc = sb_buf_append(&c->out, "\r\n", 2);
  }
  if (!rc && req->res_content_length >= 0 && !req->head && !no_body_status(req->status) &&
      req->res_body_bytes != (uint64_t)req->res_content_length) {
    /* The body is shorter than declared: the only honest signal left is the close. */
    rc = SB_ELIMIT;
  }
  if (rc) {
    req->keepalive = 0;
    c->close_after_flush = 1;
  }
  sb__conn_mark_dirty(c);
  if (c->h1 && c->h1->cur == req && c->h1->body_paused) {
    req->body_paused = 0; /* the rest of the body is drained and dropped */
    sb__h1_body_resume(req);
  }
  if (c->h1 && c->h1->cur == req && req->body_done) h1_complete(c); /* may free req */
  return rc;
}
