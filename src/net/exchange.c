/*
 * The exchange object behind the public sb_http_* API, shared by HTTP/1.1 and HTTP/2.
 *
 * An exchange has two holders: the transport (h1.c or h2.c), which holds it while the
 * request or response is still on the wire, and the handler, which holds it from dispatch
 * until sb_http_res_end(). The exchange is freed when both have let go, so either side may
 * finish first: a handler may answer before the request body has arrived, and a client may
 * vanish while the handler is still working.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "net/net_int.h"
#include "switchboard/error.h"

/* RFC 9110 token characters (header names, methods). */
static const uint8_t tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1,  ['~'] = 1, ['0'] = 1,
    ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,  ['7'] = 1, ['8'] = 1,
    ['9'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1,  ['f'] = 1, ['g'] = 1,
    ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1,  ['n'] = 1, ['o'] = 1,
    ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1,  ['v'] = 1, ['w'] = 1,
    ['x'] = 1, ['y'] = 1, ['z'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1,  ['D'] = 1, ['E'] = 1,
    ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1,  ['L'] = 1, ['M'] = 1,
    ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1,  ['T'] = 1, ['U'] = 1,
    ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1,
};

int sb__header_name_ok(const char *s, size_t n) {
  if (n == 0) return 0;
  for (size_t i = 0; i < n; i++)
    if (!tchar[(uint8_t)s[i]]) return 0;
  return 1;
}

/* Field values may hold visible characters, spaces, tabs and obs-text, never CR, LF or NUL
 * (RFC 9110 section 5.5): those are what response splitting and request smuggling need. */
int sb__header_value_ok(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    uint8_t c = (uint8_t)s[i];
    if (c == '\r' || c == '\n' || c == 0 || (c < 0x20 && c != '\t') || c == 0x7f) return 0;
  }
  return 1;
}

sb_http_req_t *sb__req_new(sb__conn_t *conn, uint8_t proto) {
  sb__worker_t *w = conn->w;
  sb_http_req_t *req = w->req_pool;
  if (req) {
    w->req_pool = req->next;
    w->req_pool_len--;
  } else if (!(req = malloc(sizeof *req))) {
    return NULL;
  }
  memset(req, 0, offsetof(sb_http_req_t, arena));
  sb_arena_init(&req->arena);
  req->conn = conn;
  req->w = conn->w;
  req->proto = proto;
  req->content_length = -1;
  req->res_content_length = -1;
  req->status = 200;
  req->method = req->path = req->query = req->authority = "";
  req->next = conn->reqs;
  if (conn->reqs) conn->reqs->prev = req;
  conn->reqs = req;
  return req;
}

static void req_free(sb_http_req_t *req) {
  sb__worker_t *w = req->w;
  sb_buf_free(&req->body);
  sb_arena_free(&req->arena);
  if (w->req_pool_len < SB_REQ_POOL) {
    req->next = w->req_pool;
    w->req_pool = req;
    w->req_pool_len++;
  } else {
    free(req);
  }
}

/* Grows an arena-backed header array; old storage stays in the arena until it is freed. */
static int hdr_push(sb_arena_t *a, sb_http_header_t **arr, uint32_t *n, uint32_t *cap,
                    const char *name, size_t nlen, const char *value, size_t vlen, int lower) {
  if (*n == *cap) {
    uint32_t ncap = *cap ? *cap * 2 : 16;
    sb_http_header_t *na = sb_arena_alloc(a, ncap * sizeof *na);
    if (!na) return SB_ENOMEM;
    if (*n) memcpy(na, *arr, *n * sizeof *na);
    *arr = na;
    *cap = ncap;
  }
  char *nm = sb_arena_strndup(a, name, nlen);
  char *vl = sb_arena_strndup(a, value, vlen);
  if (!nm || !vl) return SB_ENOMEM;
  if (lower)
    for (size_t i = 0; i < nlen; i++)
      if (nm[i] >= 'A' && nm[i] <= 'Z') nm[i] = (char)(nm[i] + 32);
  (*arr)[*n] = (sb_http_header_t){nm, nlen, vl, vlen};
  (*n)++;
  return 0;
}

int sb__req_add_header(sb_http_req_t *req, const char *name, size_t nlen, const char *value,
                       size_t vlen) {
  /* RFC 9113 counts 32 bytes of overhead per field; HTTP/1 counts the bytes on the wire.
   * Using name + value + 4 (": " and CRLF) for both keeps one limit meaningful for both. */
  uint64_t add = (uint64_t)nlen + vlen + 4;
  if (req->too_large || req->header_bytes + add > req->w->srv->cfg.max_header_bytes) {
    req->too_large = 1;
    return 0;
  }
  req->header_bytes += (uint32_t)add;
  return hdr_push(&req->arena, &req->hdrs, &req->nhdrs, &req->hdr_cap, name, nlen, value, vlen, 1);
}

int sb__req_set_target(sb_http_req_t *req, const char *target, size_t len) {
  const char *q = memchr(target, '?', len);
  size_t plen = q ? (size_t)(q - target) : len;
  char *path = sb_arena_strndup(&req->arena, target, plen);
  char *query = q ? sb_arena_strndup(&req->arena, q + 1, len - plen - 1) : "";
  if (!path || !query) return SB_ENOMEM;
  req->path = path;
  req->query = query;
  return 0;
}

static const sb__route_t *route_find(const sb_server_t *srv, const char *path) {
  const sb__route_t *best = NULL;
  size_t plen = strlen(path);
  for (unsigned i = 0; i < srv->nroutes; i++) {
    const sb__route_t *r = &srv->routes[i];
    int exact = r->len == plen && memcmp(r->path, path, plen) == 0;
    int prefix = r->path[r->len - 1] == '/' && plen >= r->len && memcmp(r->path, path, r->len) == 0;
    if (exact) return r;
    if (prefix && (!best || r->len > best->len)) best = r;
  }
  return best;
}

void sb__req_dispatch(sb_http_req_t *req) {
  req->dispatched = 1;
  req->start_us = uv_hrtime() / 1000u;
  if (req->too_large) {
    sb__respond_error(req, 431);
    return;
  }
  const sb__route_t *r = route_find(req->w->srv, req->path);
  if (r)
    r->handler(req, r->ud);
  else
    sb__builtin_not_found(req, NULL);
}

void sb__req_deliver_data(sb_http_req_t *req, const uint8_t *data, size_t len) {
  if (req->handler_done || req->aborted || req->discard_body || !req->cb.on_data) return;
  req->cb.on_data(req, data, len, req->cb.ud);
}

void sb__req_deliver_end(sb_http_req_t *req) {
  req->body_done = 1;
  if (req->handler_done || req->aborted || !req->cb.on_end) return;
  req->cb.on_end(req, req->cb.ud);
}

void sb__req_abort(sb_http_req_t *req, int err) {
  if (req->aborted) return;
  req->aborted = 1;
  req->abort_err = err;
  if (req->handler_done || !req->dispatched || !req->cb.on_abort) return;
  req->cb.on_abort(req, err, req->cb.ud);
}

void sb__req_deliver_writable(sb_http_req_t *req) {
  if (!req->want_writable || req->handler_done || req->aborted) return;
  req->want_writable = 0;
  if (req->cb.on_writable) req->cb.on_writable(req, req->cb.ud);
}

void sb__req_transport_done(sb_http_req_t *req) {
  sb__conn_t *conn = req->conn;
  if (!conn) return;
  if (req->prev)
    req->prev->next = req->next;
  else
    conn->reqs = req->next;
  if (req->next) req->next->prev = req->prev;
  req->next = req->prev = NULL;
  req->conn = NULL;
  if (req->dispatched && req->handler_done && !req->aborted) {
    sb__net_metrics_t *m = &req->w->metrics;
    int st = req->status > 0 && req->status < SB_STATUS_MAX ? req->status : 0;
    sb_counter_add(&m->requests[req->proto == SB_HTTP_2][st], 1);
    uint64_t now = uv_hrtime() / 1000u;
    sb_hist_observe(&m->latency, now > req->start_us ? now - req->start_us : 0);
  }
  if (req->handler_done || !req->dispatched) req_free(req);
}

/* ---- public API ---- */

const char *sb_http_req_method(const sb_http_req_t *req) {
  return req->method;
}
const char *sb_http_req_path(const sb_http_req_t *req) {
  return req->path;
}
const char *sb_http_req_query(const sb_http_req_t *req) {
  return req->query;
}
const char *sb_http_req_authority(const sb_http_req_t *req) {
  return req->authority;
}
sb_http_proto_t sb_http_req_proto(const sb_http_req_t *req) {
  return (sb_http_proto_t)req->proto;
}
int sb_http_req_is_tls(const sb_http_req_t *req) {
  return req->conn && req->conn->ssl != NULL;
}
int64_t sb_http_req_content_length(const sb_http_req_t *req) {
  return req->content_length;
}
struct uv_loop_s *sb_http_req_loop(const sb_http_req_t *req) {
  return &req->w->loop;
}
int sb_http_req_body_done(const sb_http_req_t *req) {
  return req->body_done;
}
int sb_http_req_aborted(const sb_http_req_t *req) {
  return req->aborted;
}
size_t sb_http_req_header_count(const sb_http_req_t *req) {
  return req->nhdrs;
}

const sb_http_header_t *sb_http_req_header_at(const sb_http_req_t *req, size_t i) {
  return i < req->nhdrs ? &req->hdrs[i] : NULL;
}

const char *sb_http_req_header(const sb_http_req_t *req, const char *name, size_t *len) {
  size_t nlen = strlen(name);
  for (uint32_t i = 0; i < req->nhdrs; i++) {
    if (req->hdrs[i].name_len == nlen && strncasecmp(req->hdrs[i].name, name, nlen) == 0) {
      if (len) *len = req->hdrs[i].value_len;
      return req->hdrs[i].value;
    }
  }
  return NULL;
}

void sb_http_req_set_callbacks(sb_http_req_t *req, const sb_http_callbacks_t *cbs) {
  req->cb = *cbs;
}

int sb_http_req_set_body_limit(sb_http_req_t *req, uint64_t bytes) {
  if (req->handler_done) return SB_ESTATE;
  req->body_limit = bytes;
  return 0;
}

int sb_http_req_pause_body(sb_http_req_t *req, int paused) {
  if (req->handler_done) return SB_ESTATE;
  int was = req->body_paused;
  req->body_paused = paused ? 1 : 0;
  if (was && !paused && req->conn && !req->aborted) {
    if (req->proto == SB_HTTP_2)
      sb__h2_body_resume(req);
    else
      sb__h1_body_resume(req);
  }
  return 0;
}

int sb_http_res_status(sb_http_req_t *req, int status) {
  if (status < 100 || status > 599 || status == 101) return SB_EINVAL;
  if (req->headers_sent || req->handler_done) return SB_ESTATE;
  req->status = status;
  return 0;
}

/* Headers the transport owns: a handler setting them could break framing or the upgrade. */
static int hop_by_hop(const char *name, size_t n) {
  static const char *const names[] = {"connection",    "transfer-encoding", "keep-alive",
                                      "upgrade",       "proxy-connection",  "te",
                                      "http2-settings"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strlen(names[i]) == n && strncasecmp(names[i], name, n) == 0) return 1;
  return 0;
}

static int add_field(sb_http_req_t *req, int trailer, const char *name, size_t nlen,
                     const char *value, size_t vlen) {
  if (req->handler_done) return SB_ESTATE;
  if (!sb__header_name_ok(name, nlen) || !sb__header_value_ok(value, vlen) ||
      hop_by_hop(name, nlen) || name[0] == ':')
    return SB_EINVAL;
  uint64_t add = (uint64_t)nlen + vlen + 4;
  if (req->res_header_bytes + add > req->w->srv->cfg.max_header_bytes * 4u) return SB_ELIMIT;
  int rc;
  if (trailer) {
    rc = hdr_push(&req->arena, &req->trailers, &req->ntrailers, &req->trailer_cap, name, nlen,
                  value, vlen, 1);
  } else {
    if (req->headers_sent) return SB_ESTATE;
    if (nlen == 14 && strncasecmp(name, "content-length", 14) == 0) {
      char *end;
      char tmp[24];
      if (vlen == 0 || vlen >= sizeof tmp) return SB_EINVAL;
      memcpy(tmp, value, vlen);
      tmp[vlen] = '\0';
      long long v = strtoll(tmp, &end, 10);
      if (*end || v < 0 || tmp[0] == '-' || tmp[0] == '+') return SB_EINVAL;
      req->res_content_length = v;
      req->res_header_bytes += (uint32_t)add;
      return 0; /* the transport emits it from res_content_length */
    }
    rc = hdr_push(&req->arena, &req->rhdrs, &req->nrhdrs, &req->rhdr_cap, name, nlen, value, vlen,
                  1);
  }
  if (!rc) req->res_header_bytes += (uint32_t)add;
  return rc;
}

int sb_http_res_header_n(sb_http_req_t *req, const char *name, size_t name_len, const char *value,
                         size_t value_len) {
  return add_field(req, 0, name, name_len, value, value_len);
}

int sb_http_res_header(sb_http_req_t *req, const char *name, const char *value) {
  return add_field(req, 0, name, strlen(name), value, strlen(value));
}

int sb_http_res_trailer(sb_http_req_t *req, const char *name, const char *value) {
  return add_field(req, 1, name, strlen(name), value, strlen(value));
}

int sb_http_res_flush_headers(sb_http_req_t *req) {
  if (req->handler_done) return SB_ESTATE;
  if (req->aborted || !req->conn) return SB_ECANCELED;
  if (req->headers_sent) return 0;
  return req->proto == SB_HTTP_2 ? sb__h2_res_start(req) : sb__h1_res_start(req);
}

int sb_http_res_write(sb_http_req_t *req, const void *data, size_t len) {
  if (req->handler_done) return SB_ESTATE;
  if (req->aborted || !req->conn) return SB_ECANCELED;
  if (req->res_content_length >= 0 && req->res_body_bytes + len > (uint64_t)req->res_content_length)
    return SB_ELIMIT;
  if (!req->headers_sent) {
    int rc = sb_http_res_flush_headers(req);
    if (rc) return rc;
  }
  req->res_body_bytes += len;
  if (len == 0) return 0;
  return req->proto == SB_HTTP_2 ? sb__h2_res_write(req, data, len)
                                 : sb__h1_res_write(req, data, len);
}

int sb_http_res_end(sb_http_req_t *req) {
  if (req->handler_done) return SB_ESTATE;
  req->handler_done = 1;
  if (req->aborted || !req->conn) {
    /* The transport may already have let go (client gone): then the handler was the last
     * holder. Otherwise the transport frees it when it lets go. */
    if (!req->conn) req_free(req);
    return SB_ECANCELED;
  }
  /* The transport frees the exchange inside this call when the exchange is complete on
   * the wire; req must not be touched afterwards. */
  return req->proto == SB_HTTP_2 ? sb__h2_res_end(req) : sb__h1_res_end(req);
}

int sb_http_respond(sb_http_req_t *req, int status, const char *content_type, const void *body,
                    size_t len) {
  int rc = sb_http_res_status(req, status);
  if (!rc && content_type) rc = sb_http_res_header(req, "content-type", content_type);
  if (!rc && req->res_content_length < 0 && !req->headers_sent)
    req->res_content_length = (int64_t)len;
  if (!rc && len) rc = sb_http_res_write(req, body, len);
  if (rc < 0) {
    int erc = sb_http_res_end(req);
    return erc ? erc : rc;
  }
  return sb_http_res_end(req);
}

const char *sb_http_status_text(int status) {
  switch (status) {
  case 100:
    return "Continue";
  case 101:
    return "Switching Protocols";
  case 200:
    return "OK";
  case 201:
    return "Created";
  case 202:
    return "Accepted";
  case 204:
    return "No Content";
  case 206:
    return "Partial Content";
  case 207:
    return "Multi-Status";
  case 301:
    return "Moved Permanently";
  case 302:
    return "Found";
  case 303:
    return "See Other";
  case 304:
    return "Not Modified";
  case 307:
    return "Temporary Redirect";
  case 308:
    return "Permanent Redirect";
  case 400:
    return "Bad Request";
  case 401:
    return "Unauthorized";
  case 403:
    return "Forbidden";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 406:
    return "Not Acceptable";
  case 408:
    return "Request Timeout";
  case 409:
    return "Conflict";
  case 411:
    return "Length Required";
  case 412:
    return "Precondition Failed";
  case 413:
    return "Content Too Large";
  case 414:
    return "URI Too Long";
  case 415:
    return "Unsupported Media Type";
  case 417:
    return "Expectation Failed";
  case 422:
    return "Unprocessable Content";
  case 429:
    return "Too Many Requests";
  case 431:
    return "Request Header Fields Too Large";
  case 499:
    return "Client Closed Request";
  case 500:
    return "Internal Server Error";
  case 501:
    return "Not Implemented";
  case 502:
    return "Bad Gateway";
  case 503:
    return "Service Unavailable";
  case 504:
    return "Gateway Timeout";
  case 505:
    return "HTTP Version Not Supported";
  default:
    return "Unknown";
  }
}
