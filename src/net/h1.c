/*
 * HTTP/1.1 connections, on the strict parser in h1_parse.c.
 *
 * One exchange at a time per connection. A pipelined request is parsed only after the
 * previous response has ended: when a request is complete while its handler still holds the
 * exchange, the connection pauses, the unparsed bytes wait in conn->in (and the connection
 * stops reading), and parsing resumes when the response ends. Responses therefore leave in
 * request order without a per-connection response queue.
 *
 * A request head is parsed once it is complete in memory (conn.c keeps partial input
 * contiguous in conn->in), so header fields are copied into the exchange's arena in one pass
 * and the read buffer can be reused at once. Body bytes go to the handler straight from the
 * read buffer.
 *
 * Errors are answered by the transport itself (400, 413, 417, 431, 505) with
 * `connection: close`, after which the connection ignores further input and lingers until the
 * client has read the answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/codec.h"
#include "net/h1_parse.h"
#include "net/net_int.h"
#include "switchboard/error.h"
#include "switchboard/log.h"

/* Where the parser is within the current request. */
enum h1_state {
  H1_HEAD = 0,       /* waiting for (the rest of) a request head */
  H1_BODY = 1,       /* Content-Length body: remaining bytes left */
  H1_CHUNK_SIZE = 2, /* a chunk-size line */
  H1_CHUNK_DATA = 3, /* chunk data: remaining bytes left */
  H1_CHUNK_CRLF = 4, /* the CRLF after chunk data */
  H1_TRAILERS = 5,   /* trailer fields after the last chunk, until an empty line */
};

struct sb__h1 {
  sb__conn_t *conn;       /* owner */
  sb_http_req_t *cur;     /* exchange being received or answered; held by this transport */
  uint64_t remaining;     /* body or chunk bytes still to come (H1_BODY, H1_CHUNK_DATA) */
  size_t scan;            /* sb__h1p_head_end resume point within a partial head */
  uint32_t trailer_bytes; /* trailer bytes seen, against the header limit */
  uint8_t state;          /* enum h1_state */
  uint8_t head_started;   /* bytes of the next head have arrived */
  uint8_t paused;         /* request complete; waiting for cur's response to end */
  uint8_t body_paused;    /* the handler paused the request body */
  uint8_t dead;           /* no more requests on this connection; input is dropped */
  uint8_t in_feed;        /* inside sb__h1_feed (completion must not re-enter it) */
  uint8_t upgrade_h2c;    /* cur is an accepted h2c upgrade */
  uint8_t *h2_settings;   /* decoded HTTP2-Settings of an upgrade; owned */
  size_t h2_settings_len;
  /* Per-head scratch while parsing fields. */
  int64_t content_length; /* -1 when absent */
  uint8_t chunked, te_seen, conn_close, conn_keepalive, conn_upgrade, host_seen;
};

int sb__h1_init(sb__conn_t *c) {
  sb__h1_t *h = calloc(1, sizeof *h);
  if (!h) return SB_ENOMEM;
  h->conn = c;
  c->h1 = h;
  return 0;
}

void sb__h1_free(sb__conn_t *c) {
  sb__h1_t *h = c->h1;
  if (!h) return;
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
  const sb__h1_t *h = c->h1;
  const sb_http_req_t *r = h ? h->cur : NULL;
  if (!r) return h && h->head_started ? SB__H1_WAIT_HEADERS : SB__H1_WAIT_IDLE;
  if (!r->body_done) return h->body_paused ? SB__H1_WAIT_HANDLER : SB__H1_WAIT_BODY;
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
static void h1_fail(sb__conn_t *c, int status) {
  sb__h1_t *h = c->h1;
  sb_http_req_t *req = h->cur;
  h->dead = 1;
  h->cur = NULL;
  sb_counter_add(&c->w->metrics.protocol_errors, 1);
  if (sb_log_enabled(SB_LOG_DEBUG))
    sb_log(SB_LOG_DEBUG, "http1_bad_request", "peer=%s status=%d", c->peer, status);
  if (!req || !req->headers_sent) write_error(c, status);
  if (req) {
    if (!(req->handler_done && req->headers_sent))
      sb__req_abort(req, status == 413 ? SB_ELIMIT : SB_EPROTO);
    sb__req_transport_done(req);
  }
  c->close_after_flush = 1;
  sb__conn_mark_dirty(c);
}

/* ---- request heads ---- */

static int name_is(const char *n, size_t nlen, const char *lit) {
  return strlen(lit) == nlen && strncasecmp(n, lit, nlen) == 0;
}

/* Takes one header field of a head: stores it and notes what frames the message. */
static int on_field(void *ud, const char *n, size_t nlen, const char *v, size_t vlen) {
  sb__h1_t *h = ud;
  sb_http_req_t *req = h->cur;
  if (name_is(n, nlen, "content-length")) {
    /* Repeated or listed values must all agree (RFC 9110 section 8.6). */
    size_t i = 0;
    while (i <= vlen) {
      size_t b = i;
      while (i < vlen && v[i] != ',')
        i++;
      size_t e = i;
      while (b < e && (v[b] == ' ' || v[b] == '\t'))
        b++;
      while (e > b && (v[e - 1] == ' ' || v[e - 1] == '\t'))
        e--;
      uint64_t cl;
      if (sb__h1p_content_length(v + b, e - b, &cl) != 0) return 400;
      if (h->content_length >= 0 && (uint64_t)h->content_length != cl) return 400;
      h->content_length = (int64_t)cl;
      i++;
    }
  } else if (name_is(n, nlen, "transfer-encoding")) {
    /* Only "chunked", once, as the final coding is understood; anything else could be framed
     * differently by another hop. */
    if (h->te_seen || !name_is(v, vlen, "chunked")) return vlen ? 501 : 400;
    h->te_seen = h->chunked = 1;
  } else if (name_is(n, nlen, "connection")) {
    if (sb__h1p_has_token(v, vlen, "close")) h->conn_close = 1;
    if (sb__h1p_has_token(v, vlen, "keep-alive")) h->conn_keepalive = 1;
    if (sb__h1p_has_token(v, vlen, "upgrade")) h->conn_upgrade = 1;
  } else if (name_is(n, nlen, "host")) {
    if (h->host_seen) return 400; /* RFC 9112 section 3.2: exactly one Host */
    h->host_seen = 1;
  }
  if (sb__req_add_header(req, n, nlen, v, vlen)) return 500;
  return req->too_large ? 431 : 0;
}

/* Accepts an h2c upgrade when the request asks for one properly and carries no body. */
static int want_h2c(sb__conn_t *c, sb__h1_t *h, sb_http_req_t *req) {
  if (c->ssl || !h->conn_upgrade || req->http_minor != 1 || h->chunked || h->content_length > 0)
    return 0;
  size_t ulen = 0, clen = 0, slen = 0;
  const char *up = sb_http_req_header(req, "upgrade", &ulen);
  const char *ch = sb_http_req_header(req, "connection", &clen);
  const char *set = sb_http_req_header(req, "http2-settings", &slen);
  if (!up || !set || !sb__h1p_has_token(up, ulen, "h2c") ||
      !sb__h1p_has_token(ch, clen, "http2-settings"))
    return 0;
  uint8_t *dec = malloc(SB_BASE64_DECODED_MAX(slen));
  long dlen = dec ? sb_base64_decode(set, slen, dec) : -1;
  if (dlen < 0 || dlen % 6 != 0) { /* SETTINGS entries are 6 bytes each */
    free(dec);
    return 0;
  }
  free(h->h2_settings);
  h->h2_settings = dec;
  h->h2_settings_len = (size_t)dlen;
  return 1;
}

/* Parses a complete head, sets up the exchange and dispatches it. Returns 0 or the status
 * to fail with. */
static int start_request(sb__conn_t *c, const uint8_t *p, size_t len) {
  sb__h1_t *h = c->h1;
  sb_http_req_t *req = sb__req_new(c, SB_HTTP_1);
  if (!req) return 500;
  h->cur = req;
  h->content_length = -1;
  h->chunked = h->te_seen = h->conn_close = h->conn_keepalive = h->conn_upgrade = 0;
  h->host_seen = 0;
  h->upgrade_h2c = 0;
  sb__h1p_line_t line;
  int st = sb__h1p_parse_head(p, len, &line, on_field, h);
  if (st) return st;
  req->http_minor = (uint8_t)line.minor;
  char *method = sb_arena_strndup(&req->arena, line.method, line.method_len);
  if (!method) return 500;
  req->method = method;
  req->head = strcmp(method, "HEAD") == 0;
  /* origin-form "/path", asterisk-form "*", or absolute-form "http://host/path". */
  const char *t = line.target;
  size_t tn = line.target_len;
  if (tn >= 7 &&
      (strncasecmp(t, "http://", 7) == 0 || (tn >= 8 && strncasecmp(t, "https://", 8) == 0))) {
    const char *rest = t + (t[4] == ':' ? 7 : 8);
    const char *slash = memchr(rest, '/', tn - (size_t)(rest - t));
    if (slash) {
      tn -= (size_t)(slash - t);
      t = slash;
    } else {
      t = "/";
      tn = 1;
    }
  } else if (t[0] != '/' && !(tn == 1 && t[0] == '*')) {
    return 400;
  }
  if (sb__req_set_target(req, t, tn)) return 500;
  const char *host = sb_http_req_header(req, "host", NULL);
  if (host)
    req->authority = host;
  else if (line.minor >= 1)
    return 400;                                         /* RFC 9112 section 3.2 */
  if (h->chunked && h->content_length >= 0) return 400; /* smuggling guard, RFC 9112 6.3 */
  if (h->chunked && line.minor == 0) return 400;
  req->keepalive = line.minor >= 1 ? !h->conn_close : (h->conn_keepalive && !h->conn_close);
  req->content_length = h->chunked ? -1 : h->content_length > 0 ? h->content_length : 0;
  if (req->content_length > 0 && (uint64_t)req->content_length > c->w->srv->cfg.max_body_bytes)
    return 413;
  size_t elen = 0;
  const char *expect = sb_http_req_header(req, "expect", &elen);
  if (expect) {
    if (elen == 12 && strncasecmp(expect, "100-continue", 12) == 0)
      req->expect_continue = line.minor >= 1;
    else
      return 417;
  }
  h->state = h->chunked ? H1_CHUNK_SIZE : req->content_length > 0 ? H1_BODY : H1_HEAD;
  h->remaining = (uint64_t)req->content_length;
  h->trailer_bytes = 0;
  if (want_h2c(c, h, req)) {
    h->upgrade_h2c = 1;
    return 0; /* becomes HTTP/2 stream 1 */
  }
  sb__req_dispatch(req);
  if (h->cur != req) return 0; /* the exchange failed or completed during dispatch */
  if (req->expect_continue && !req->headers_sent && !req->handler_done && h->state != H1_HEAD) {
    sb_buf_append(&c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    req->expect_continue = 0;
    sb__conn_mark_dirty(c);
  }
  return 0;
}

/* The exchange is complete on both sides: let go of it and move to the next request. */
static void h1_complete(sb__conn_t *c) {
  sb__h1_t *h = c->h1;
  sb_http_req_t *req = h->cur;
  h->cur = NULL;
  h->state = H1_HEAD;
  int keep = req->keepalive;
  sb__req_transport_done(req);
  if (!keep || c->close_after_flush) {
    h->dead = 1;
    c->close_after_flush = 1;
  } else if (h->paused) {
    h->paused = 0;
    if (!h->in_feed) c->need_input = 1;
  }
  sb__conn_mark_dirty(c);
}

/* The request (head and body) has been received. */
static void message_complete(sb__conn_t *c) {
  sb__h1_t *h = c->h1;
  sb_http_req_t *req = h->cur;
  h->state = H1_HEAD;
  sb__req_deliver_end(req);
  if (h->cur != req || c->closing) return; /* completed (or failed) from on_end */
  if (req->handler_done)
    h1_complete(c);
  else
    h->paused = 1;
}

/* Hands body bytes to the handler, enforcing the body limit. Returns 0 or 413. */
static int body_bytes(sb__conn_t *c, const uint8_t *p, size_t n) {
  sb__h1_t *h = c->h1;
  sb_http_req_t *req = h->cur;
  req->body_bytes += n;
  if (req->body_bytes > c->w->srv->cfg.max_body_bytes) return 413;
  sb__req_deliver_data(req, p, n);
  if (h->cur == req && req->body_paused && !req->handler_done) h->body_paused = 1;
  return 0;
}

void sb__h1_body_resume(sb_http_req_t *req) {
  sb__conn_t *c = req->conn;
  sb__h1_t *h = c->h1;
  if (!h || h->cur != req || !h->body_paused) return;
  h->body_paused = 0;
  if (!h->in_feed) c->need_input = 1;
  sb__conn_mark_dirty(c);
}

/* Switches an accepted h2c upgrade to HTTP/2: 101, then the request becomes stream 1. */
static int do_upgrade(sb__conn_t *c) {
  sb__h1_t *h = c->h1;
  sb_http_req_t *req = h->cur;
  h->cur = NULL;
  req->body_done = 1;
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

/* Parses from data[0..len). Returns bytes consumed, and sets *more when the rest is an
 * incomplete unit that needs more bytes (as opposed to a pause). Returns -status (-100 to
 * -599) to fail the request with that HTTP status, or an SB_E* code to close. */
static int64_t h1_step(sb__conn_t *c, const uint8_t *data, size_t len, int *more) {
  sb__h1_t *h = c->h1;
  const sb_server_config_t *cfg = &c->w->srv->cfg;
  size_t done = 0;
  while (done < len && !h->dead && !h->paused && !h->body_paused && !c->closing) {
    const uint8_t *p = data + done;
    size_t avail = len - done;
    switch (h->state) {
    case H1_HEAD: {
      if (!h->head_started) {
        int64_t skip = sb__h1p_skip_empty(p, avail);
        if (skip < 0) return skip;
        done += (size_t)skip;
        if ((size_t)skip == avail || (avail - (size_t)skip == 1 && p[skip] == '\r')) {
          *more = (size_t)skip < avail; /* a lone CR waits for its LF */
          return (int64_t)done;
        }
        p += skip;
        avail -= (size_t)skip;
        h->head_started = 1;
        h->scan = 0;
        c->req_start_ms = uv_now(&c->w->loop);
      }
      size_t n = sb__h1p_head_end(p, avail, &h->scan);
      if (n == 0) {
        if (avail > cfg->max_header_bytes) return -431;
        *more = 1;
        return (int64_t)done;
      }
      if (n > cfg->max_header_bytes + 4u) return -431;
      h->head_started = 0;
      int st = start_request(c, p, n);
      if (st) return -st;
      done += n;
      if (h->upgrade_h2c) {
        int rc = do_upgrade(c);
        return rc < 0 ? rc : (int64_t)done;
      }
      if (h->cur && h->state == H1_HEAD) message_complete(c);
      break;
    }
    case H1_BODY:
    case H1_CHUNK_DATA: {
      size_t take = avail < h->remaining ? avail : (size_t)h->remaining;
      int st = body_bytes(c, p, take);
      if (st) return -st;
      done += take;
      h->remaining -= take;
      if (h->remaining == 0) {
        if (h->state == H1_BODY)
          message_complete(c);
        else
          h->state = H1_CHUNK_CRLF;
      }
      break;
    }
    case H1_CHUNK_SIZE: {
      uint64_t size = 0;
      int64_t n = sb__h1p_chunk_line(p, avail, &size);
      if (n < 0) return n;
      if (n == 0) {
        *more = 1;
        return (int64_t)done;
      }
      done += (size_t)n;
      if (size == 0) {
        h->state = H1_TRAILERS;
      } else {
        if (size > cfg->max_body_bytes - h->cur->body_bytes) return -413;
        h->state = H1_CHUNK_DATA;
        h->remaining = size;
      }
      break;
    }
    case H1_CHUNK_CRLF:
      if (p[0] != '\r' || (avail >= 2 && p[1] != '\n')) return -400;
      if (avail < 2) {
        *more = 1;
        return (int64_t)done;
      }
      done += 2;
      h->state = H1_CHUNK_SIZE;
      break;
    case H1_TRAILERS: {
      /* Trailer fields are checked like header fields and dropped: nothing the server
       * does depends on them. An empty line ends the message. */
      const uint8_t *lf = memchr(p, '\n', avail);
      if (!lf) {
        if (h->trailer_bytes + avail > cfg->max_header_bytes) return -431;
        *more = 1;
        return (int64_t)done;
      }
      size_t n = (size_t)(lf - p) + 1;
      if (n < 2 || p[n - 2] != '\r') return -400;
      h->trailer_bytes += (uint32_t)n;
      if (h->trailer_bytes > cfg->max_header_bytes) return -431;
      if (n > 2) {
        size_t i = 0;
        while (i < n - 2 && p[i] != ':')
          i++;
        if (i == 0 || i == n - 2 || !sb__header_name_ok((const char *)p, i) ||
            !sb__header_value_ok((const char *)p + i + 1, n - 3 - i))
          return -400;
      }
      done += n;
      if (n == 2) message_complete(c);
      break;
    }
    }
  }
  return (int64_t)done;
}

int64_t sb__h1_feed(sb__conn_t *c, const uint8_t *data, size_t len) {
  sb__h1_t *h = c->h1;
  if (h->dead) return (int64_t)len;
  int more = 0;
  h->in_feed = 1;
  int64_t done = h1_step(c, data, len, &more);
  if (c->h1 == h) h->in_feed = 0; /* an upgrade freed it */
  if (c->closing) return SB_ECANCELED;
  if (done <= -100 && done >= -599) { /* an HTTP status to answer with */
    h1_fail(c, (int)-done);
    return (int64_t)len;
  }
  if (done < 0) return done;
  if (c->h1 == h && h->dead) return (int64_t)len;
  c->in_need_more = (uint8_t)more;
  return done;
}

/* ---- responses ---- */

static int no_body_status(int status) {
  return status == 204 || status == 304 || status < 200;
}

int sb__h1_res_start(sb_http_req_t *req) {
  sb__conn_t *c = req->conn;
  sb_buf_t *o = &c->out;
  req->headers_sent = 1;
  /* A client still waiting for 100 Continue may or may not send its body now: do not
   * guess where the next request starts. */
  if (req->expect_continue && !req->body_done) req->keepalive = 0;
  if (c->close_after_flush || c->w->stopping) req->keepalive = 0;
  /* Built with memcpy: this runs once per response. */
  size_t dlen, rlen = strlen(sb_http_status_text(req->status));
  const char *date = sb__worker_date_block(c->w, &dlen);
  int rc = sb_buf_reserve(o, 15 + rlen + dlen); /* "HTTP/1.x NNN " + reason + CRLF + date */
  if (!rc) {
    char *p = (char *)o->data + o->len;
    memcpy(p, "HTTP/1.1 ", 9);
    if (!req->http_minor) p[7] = '0';
    p[9] = (char)('0' + req->status / 100);
    p[10] = (char)('0' + req->status / 10 % 10);
    p[11] = (char)('0' + req->status % 10);
    p[12] = ' ';
    memcpy(p + 13, sb_http_status_text(req->status), rlen);
    memcpy(p + 13 + rlen, "\r\n", 2);
    memcpy(p + 15 + rlen, date, dlen);
    o->len += 15 + rlen + dlen;
  }
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
    char num[40] = "content-length: ", *e = num + sizeof num;
    char *d = e;
    *--d = '\n';
    *--d = '\r';
    uint64_t v = (uint64_t)req->res_content_length;
    do
      *--d = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    rc = sb_buf_reserve(o, 16 + (size_t)(e - d));
    if (!rc) {
      memcpy(o->data + o->len, num, 16);
      memcpy(o->data + o->len + 16, d, (size_t)(e - d));
      o->len += 16 + (size_t)(e - d);
    }
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
