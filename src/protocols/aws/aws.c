/*
 * The life of an AWS front-end request (aws.h): gathering the body, handing it to the
 * service, waking the loop from the broker thread, and answering in the request's protocol.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "protocols/aws/aws.h"
#include "switchboard/error.h"

/* The codes sb__aws_sigv4_check() returns; the same JSON name and Query code in SQS and
 * SNS. */
static const aws_err_t E_AUTH[] = {
    {"MissingAuthenticationToken", "MissingAuthenticationToken", 403, 1},
    {"IncompleteSignature", "IncompleteSignature", 400, 1},
    {"InvalidClientTokenId", "InvalidClientTokenId", 403, 1},
    {"SignatureDoesNotMatch", "SignatureDoesNotMatch", 403, 1},
    {"RequestExpired", "RequestExpired", 400, 1},
};

const aws_err_t sb__aws_e_internal = {"InternalError", "InternalError", 500, 0};
const aws_err_t sb__aws_e_missing = {"MissingParameter", "MissingParameter", 400, 1};
const aws_err_t sb__aws_e_action = {"InvalidAction", "InvalidAction", 400, 1};
const aws_err_t sb__aws_e_malformed = {"MalformedQueryString", "MalformedQueryString", 400, 1};

void sb__aws_fail(aws_req_t *r, const aws_err_t *e, const char *fmt, ...) {
  if (r->err) return;
  r->err = e;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->err_msg, sizeof r->err_msg, fmt, ap);
  va_end(ap);
}

int sb__aws_valid_text(const char *s, size_t len) {
  const uint8_t *p = (const uint8_t *)s, *e = p + len;
  while (p < e) {
    /* Printable ASCII, most of any message, in one tight loop. */
    while (p < e && *p >= 0x20 && *p < 0x80)
      p++;
    if (p == e) break;
    uint32_t c = *p;
    size_t n;
    if (c < 0x80) {
      n = 1;
    } else if ((c & 0xe0) == 0xc0) {
      c &= 0x1f;
      n = 2;
    } else if ((c & 0xf0) == 0xe0) {
      c &= 0x0f;
      n = 3;
    } else if ((c & 0xf8) == 0xf0) {
      c &= 0x07;
      n = 4;
    } else {
      return 0;
    }
    if ((size_t)(e - p) < n) return 0;
    for (size_t i = 1; i < n; i++) {
      if ((p[i] & 0xc0) != 0x80) return 0;
      c = (c << 6) | (p[i] & 0x3f);
    }
    static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (c < min[n]) return 0;
    if (c < 0x20 && c != 9 && c != 10 && c != 13) return 0;
    if ((c >= 0xd800 && c <= 0xdfff) || c == 0xfffe || c == 0xffff || c > 0x10ffff) return 0;
    p += n;
  }
  return 1;
}

/* Request ids only correlate logs and answers; they are not secrets. So they come from a
 * per-thread generator (splitmix64) seeded once from OpenSSL's, not from RAND_bytes per
 * request: that checks for a fork with getpid(), a system call per request, which showed in
 * the profile of the send path. */
static _Thread_local uint64_t tl_id_state;

static uint64_t next_id_bits(void) {
  if (!tl_id_state && RAND_bytes((unsigned char *)&tl_id_state, sizeof tl_id_state) != 1)
    tl_id_state = (uint64_t)(uintptr_t)&tl_id_state ^ (uint64_t)time(NULL);
  uint64_t z = (tl_id_state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static void make_request_id(char out[37]) {
  uint8_t b[16];
  uint64_t hi = next_id_bits(), lo = next_id_bits();
  for (int i = 0; i < 8; i++) {
    b[i] = (uint8_t)(hi >> (8 * i));
    b[8 + i] = (uint8_t)(lo >> (8 * i));
  }
  b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
  b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
  static const char hx[] = "0123456789abcdef";
  size_t o = 0;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
    out[o++] = hx[b[i] >> 4];
    out[o++] = hx[b[i] & 15];
  }
  out[o] = 0;
}

static void encode_error(aws_req_t *r) {
  sb_buf_reset(&r->out);
  const aws_err_t *e = r->err;
  size_t ml = strlen(r->err_msg);
  int ok = sb__aws_valid_text(r->err_msg, ml);
  if (r->json) {
    sb_jw_t w;
    sb_jw_init(&w, &r->out);
    sb_jw_obj_begin(&w);
    char type[128];
    int n = snprintf(type, sizeof type, "%s%s", r->svc->json_type, e->name);
    sb_jw_key(&w, "__type", 6);
    sb_jw_str(&w, type, (size_t)n);
    sb_jw_key(&w, "message", 7);
    if (ok)
      sb_jw_str(&w, r->err_msg, ml);
    else
      sb_jw_str(&w, "invalid request", 15);
    sb_jw_obj_end(&w);
    return;
  }
  sb_buf_appendf(&r->out,
                 "<?xml version=\"1.0\"?><ErrorResponse xmlns=\"%s\"><Error><Type>%s</Type>"
                 "<Code>%s</Code><Message>",
                 r->svc->xmlns, e->sender ? "Sender" : "Receiver", e->code);
  if (ok) sb__aws_xml_text(&r->out, r->err_msg, ml);
  sb_buf_appendf(&r->out, "</Message>%s</Error><RequestId>%s</RequestId></ErrorResponse>",
                 r->svc->xml_detail ? "<Detail/>" : "", r->request_id);
}

void sb__aws_begin(aws_req_t *r, aws_enc_t *e) {
  sb__aws_enc_begin(e, &r->out, r->json, r->action, r->result, r->svc->xmlns);
}

void sb__aws_end(aws_req_t *r, aws_enc_t *e) {
  sb__aws_enc_end(e, r->action, r->result, r->request_id);
  if (e->err) {
    sb_buf_reset(&r->out);
    sb__aws_fail(r, &sb__aws_e_internal, "The response could not be encoded.");
  }
}

void sb__aws_empty(aws_req_t *r) {
  aws_enc_t e;
  sb__aws_begin(r, &e);
  sb__aws_end(r, &e);
}

/* ---- hand-offs between a worker loop and the broker thread ----
 *
 * Each worker loop with live requests has one aws_loop_t: one async handle that the broker
 * thread signals for every request it is done with, and the list of those requests. The
 * broker thread completes requests in bursts (one fdatasync acknowledges the sends of every
 * waiting client), so one wake-up of the loop answers many of them; libuv coalesces the
 * signals sent before the loop runs the callback. The loop also keeps finished requests for
 * reuse, with their buffers, so a busy loop allocates little per request.
 *
 * Life: created by a loop's first request, closed (and the idle requests freed) when its
 * last live request was freed; its handle keeps the loop running while requests are live,
 * as one handle per request did before. The broker thread holds mu from pushing a request
 * until uv_async_send() returned, and the loop takes the list under mu, so the loop cannot
 * answer a request — and free the last one and this struct — while a signal for it is still
 * being sent. */
typedef struct aws_loop {
  uv_loop_t *loop;       /* the worker loop; borrowed */
  uv_async_t async;      /* signalled by the broker thread */
  pthread_mutex_t mu;    /* guards done */
  aws_req_t *done;       /* requests the broker side ended, newest first; under mu */
  size_t live;           /* requests of this loop not yet freed; loop thread only */
  aws_req_t *pool;       /* idle requests kept for reuse, linked by next; loop thread only */
  size_t n_pool;         /* entries of pool */
  struct aws_loop *next; /* the other loops of this thread */
} aws_loop_t;

/* The aws_loop_t of each loop this thread runs (usually one). */
static _Thread_local aws_loop_t *tl_loops;

static void req_free(aws_req_t *r) {
  sb_buf_free(&r->in);
  sb_buf_free(&r->out);
  sb_arena_free(&r->arena);
  free(r);
}

static void loop_closed(uv_handle_t *h) {
  aws_loop_t *lp = h->data;
  pthread_mutex_destroy(&lp->mu);
  free(lp);
}

static void respond(aws_req_t *r);

static void loop_async(uv_async_t *a) {
  aws_loop_t *lp = a->data;
  pthread_mutex_lock(&lp->mu);
  aws_req_t *list = lp->done;
  lp->done = NULL;
  pthread_mutex_unlock(&lp->mu);
  aws_req_t *fifo = NULL; /* oldest first, for fairness */
  while (list) {
    aws_req_t *n = list->next;
    list->next = fifo;
    fifo = list;
    list = n;
  }
  while (fifo) {
    aws_req_t *n = fifo->next;
    fifo->pending = 0;
    respond(fifo); /* may free fifo, and lp with the last request */
    fifo = n;
  }
}

static aws_loop_t *loop_get(uv_loop_t *l) {
  for (aws_loop_t *lp = tl_loops; lp; lp = lp->next)
    if (lp->loop == l) return lp;
  aws_loop_t *lp = calloc(1, sizeof *lp);
  if (!lp) return NULL;
  if (pthread_mutex_init(&lp->mu, NULL)) {
    free(lp);
    return NULL;
  }
  if (uv_async_init(l, &lp->async, loop_async)) {
    pthread_mutex_destroy(&lp->mu);
    free(lp);
    return NULL;
  }
  lp->async.data = lp;
  lp->loop = l;
  lp->next = tl_loops;
  tl_loops = lp;
  return lp;
}

/* Ends a request's life on its loop: pooled or freed; the loop's hand-off closes with its
 * last request. */
static void req_release(aws_req_t *r) {
  aws_loop_t *lp = r->lp;
  sb_arena_free(&r->arena);
  if (lp->n_pool < AWS_POOL_MAX && r->in.cap <= AWS_POOL_BUF_MAX &&
      r->out.cap <= AWS_POOL_BUF_MAX) {
    r->next = lp->pool;
    lp->pool = r;
    lp->n_pool++;
  } else {
    req_free(r);
  }
  if (--lp->live) return;
  for (aws_loop_t **pp = &tl_loops; *pp; pp = &(*pp)->next)
    if (*pp == lp) {
      *pp = lp->next;
      break;
    }
  while (lp->pool) {
    aws_req_t *n = lp->pool->next;
    req_free(lp->pool);
    lp->pool = n;
  }
  uv_close((uv_handle_t *)&lp->async, loop_closed);
}

/* A zeroed request of svc on lp, reusing an idle one's buffers when it has one. */
static aws_req_t *req_new(aws_loop_t *lp, const aws_service_t *svc) {
  aws_req_t *r = lp->pool;
  if (r && r->svc == svc) {
    lp->pool = r->next;
    lp->n_pool--;
    sb_buf_t in = r->in, out = r->out;
    memset(r, 0, svc->req_size);
    r->in = in;
    r->out = out;
    sb_buf_reset(&r->in);
    sb_buf_reset(&r->out);
  } else {
    r = calloc(1, svc->req_size);
    if (!r) return NULL;
  }
  r->lp = lp;
  lp->live++;
  return r;
}

/* Sends the outcome and ends the exchange; runs on the loop. */
static void respond(aws_req_t *r) {
  if (r->responded) return;
  r->responded = 1;
  sb_http_req_t *h = r->http;
  if (r->err) encode_error(r);
  int status = r->err ? r->err->status : 200;
  sb_http_res_header(h, "content-type", r->json ? "application/x-amz-json-1.0" : "text/xml");
  sb_http_res_header(h, "x-amzn-requestid", r->request_id);
  if (r->err && r->json) {
    char q[160];
    snprintf(q, sizeof q, "%s;%s", r->err->code, r->err->sender ? "Sender" : "Receiver");
    sb_http_res_header(h, "x-amzn-query-error", q);
  }
  sb_http_respond(h, status, NULL, sb_buf_head(&r->out), sb_buf_pending(&r->out));
  r->http = NULL;
  req_release(r);
}

void sb__aws_wake(aws_req_t *r) {
  aws_loop_t *lp = r->lp;
  pthread_mutex_lock(&lp->mu);
  r->next = lp->done;
  lp->done = r;
  uv_async_send(&lp->async);
  pthread_mutex_unlock(&lp->mu);
}

static void on_data(sb_http_req_t *req, const uint8_t *data, size_t len, void *ud) {
  aws_req_t *r = ud;
  if (r->err) return;
  if (sb_buf_pending(&r->in) + len > r->svc->max_request) {
    sb__aws_fail(r, r->svc->too_long, "The request is longer than %zu bytes.", r->svc->max_request);
    return;
  }
  if (sb_buf_append(&r->in, data, len)) sb__aws_fail(r, &sb__aws_e_internal, "Out of memory.");
}

static void on_end(sb_http_req_t *req, void *ud) {
  aws_req_t *r = ud;
  if (!r->err) r->svc->process(r);
  if (!r->pending) respond(r);
}

static void on_abort(sb_http_req_t *req, int err, void *ud) {
  aws_req_t *r = ud;
  atomic_store(&r->aborted, 1);
  /* Without a broker operation in flight nothing else will end the exchange. */
  if (!r->pending && !r->responded) respond(r);
}

/* Takes over an exchange with a new request (answers 500 itself when out of memory). */
static void on_request(sb_http_req_t *req, void *ud) {
  const aws_frontend_t *fe = ud;
  const aws_service_t *svc = fe->svc;
  aws_loop_t *lp = loop_get(sb_http_req_loop(req));
  aws_req_t *r = lp ? req_new(lp, svc) : NULL;
  if (!r) {
    sb_http_respond(req, 500, "text/plain", "out of memory\n", 14);
    return;
  }
  r->svc = svc;
  r->owner = fe->owner;
  r->http = req;
  r->action = "Unknown";
  sb_arena_init(&r->arena);
  r->json = svc->json_type && sb_http_req_header(req, "x-amz-target", NULL) != NULL;
  r->tls = sb_http_req_is_tls(req);
  const char *host = sb_http_req_authority(req);
  snprintf(r->host, sizeof r->host, "%s", host && *host ? host : "localhost");
  make_request_id(r->request_id);
  if (sb_http_req_content_length(req) > (int64_t)svc->max_request)
    sb__aws_fail(r, svc->too_long, "The request is too long.");
  sb_http_callbacks_t cbs = {on_data, on_end, on_abort, NULL, r};
  sb_http_req_set_callbacks(req, &cbs);
}

int sb__aws_add_frontend(sb_rpc_t *rpc, sb_rpc_claim_cb claim, aws_frontend_t *fe) {
  return sb_rpc_add_frontend(rpc, claim, on_request, fe);
}

int sb__aws_decode_query(aws_req_t *r) {
  const char *src = (const char *)sb_buf_head(&r->in);
  size_t len = sb_buf_pending(&r->in);
  if (strcmp(sb_http_req_method(r->http), "GET") == 0) {
    src = sb_http_req_query(r->http);
    len = strlen(src);
  }
  const char *err = NULL;
  int rc = sb__aws_decode_form(&r->arena, src ? src : "", len, &r->p, &err);
  if (rc) {
    sb__aws_fail(r, rc == SB_ENOMEM ? &sb__aws_e_internal : &sb__aws_e_malformed, "%s",
                 err ? err : "out of memory");
    return -1;
  }
  return 0;
}

int sb__aws_auth(aws_req_t *r, const char *key_id, const char *secret) {
  const char *code = NULL;
  if (!sb__aws_sigv4_check(r->http, sb_buf_head(&r->in), sb_buf_pending(&r->in), key_id, secret,
                           (int64_t)time(NULL), &code))
    return 0;
  const aws_err_t *e = &sb__aws_e_internal;
  for (size_t i = 0; code && i < sizeof E_AUTH / sizeof E_AUTH[0]; i++)
    if (strcmp(code, E_AUTH[i].code) == 0) e = &E_AUTH[i];
  sb__aws_fail(r, e,
               e == &E_AUTH[3] ? "The request signature we calculated does not match the "
                                 "signature you provided."
                               : "The request is not signed by a known credential.");
  return -1;
}

int sb__aws_ident(const sb_sqs_config_t *cfg, aws_ident_t *out) {
  memset(out, 0, sizeof *out);
  const char *region = cfg && cfg->region ? cfg->region : SB_SQS_DEFAULT_REGION;
  const char *account = cfg && cfg->account ? cfg->account : SB_SQS_DEFAULT_ACCOUNT;
  size_t al = strlen(account), rl = strlen(region);
  if (al == 0 || al >= sizeof out->account || rl == 0 || rl >= sizeof out->region) return SB_EINVAL;
  for (size_t i = 0; i < al; i++)
    if (!isalnum((unsigned char)account[i])) return SB_EINVAL;
  for (size_t i = 0; i < rl; i++)
    if (!isalnum((unsigned char)region[i]) && region[i] != '-') return SB_EINVAL;
  memcpy(out->region, region, rl + 1);
  memcpy(out->account, account, al + 1);
  if (cfg && cfg->credentials) {
    const char *c = strchr(cfg->credentials, ':');
    size_t kl = c ? (size_t)(c - cfg->credentials) : 0;
    if (!c || kl == 0 || kl >= sizeof out->key_id || !c[1] || strlen(c + 1) >= sizeof out->secret)
      return SB_EINVAL;
    memcpy(out->key_id, cfg->credentials, kl);
    memcpy(out->secret, c + 1, strlen(c + 1) + 1);
  }
  return 0;
}

void sb__aws_ident_clear(aws_ident_t *id) {
  OPENSSL_cleanse(id->secret, sizeof id->secret);
}
