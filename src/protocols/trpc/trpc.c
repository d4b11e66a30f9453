/*
 * tRPC v11 front-end: the HTTP wire @trpc/server speaks (its http/resolveResponse.ts), so a
 * stock @trpc/client calls the contract's C handlers. Request reading lives in wire.c.
 *
 * Procedures. Every unary and server-streaming method of every registered service is one
 * procedure, named by its method in lowerCamelCase ("getItem"); when two registered services
 * declare the same name, each of those is nested under its service ("itemService.getItem"),
 * which is what the TypeScript emitter does for the services of one file. Side-effect-free
 * methods (idempotency_level = NO_SIDE_EFFECTS) are queries, other unary methods mutations,
 * server-streaming methods subscriptions. Client and bidirectional streams have no tRPC
 * shape and are not procedures. A method's switchboard.trpc_name option replaces its name
 * (verbatim, never nested).
 *
 * One exchange, in @trpc/server's order of checks:
 *   1. HEAD answers 204. A path that is not valid percent-encoded UTF-8, a body type other
 *      than JSON (none is JSON on a GET), a batch over SB_TRPC_MAX_BATCH, procedures of
 *      different types in one batch, or JSONL asked for without a batch fail the whole
 *      request: one error envelope without "path", never an array.
 *   2. Each call then fails on its own, in this order: NOT_FOUND (no such procedure),
 *      METHOD_NOT_SUPPORTED (queries and subscriptions are GET, mutations POST; POST for
 *      queries and subscriptions only with method override; the 405 lists the allowed method
 *      in Allow), BAD_REQUEST for a subscription in a batch, for input that is not JSON, for a
 *      batch input that is not an object, and for input the proto3 JSON mapping rejects.
 *      Everything after that is the handler's (validation rules included), its gRPC status
 *      mapped by sb__trpc_code_of().
 *   3. The answer: one call, {"result":{"data":<output>}} or {"error":<shape>} with the
 *      call's status; a batch, a JSON array in call order with the status all calls share,
 *      else 207; a batch with trpc-accept: application/jsonl, tRPC's JSONL stream (status
 *      200, a head line, then each call's lines as it finishes); a subscription, Server-Sent
 *      Events: "connected", one data event per message (with "id:" when the handler set an
 *      event id), then "return", or "serialized-error" with the shape.
 *
 * The error shape is tRPC's default with isDev off: {"message","code":<JSON-RPC number>,
 * "data":{"code":<key>,"httpStatus":<status>,"path":<procedure>}}.
 *
 * Resumption: the Last-Event-Id header (or the lastEventId / Last-Event-Id query parameter)
 * of a subscription is written into the request's last_event_id field when its message has
 * one, as tRPC merges lastEventId into the input; without such a field it is ignored.
 *
 * Ownership: an exchange (trpc_x_t) is malloc'd when the headers arrive and freed when its
 * last call finished and the response ended; each of its calls points at its item through
 * call->fe, and holds nothing else. Everything runs on the exchange's loop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "contract/pbjson.h"
#include "core/buf.h"
#include "core/codec.h"
#include "protocols/trpc/wire.h"
#include "rpc/rpc_int.h"
#include "switchboard/error.h"

#define TRPC_BASE_MAX 128u /* bytes of the base path */
#define TRPC_NAME_MAX 256u /* bytes of a procedure name */

enum proc_type { PROC_QUERY = 1, PROC_MUTATION = 2, PROC_SUBSCRIPTION = 4 };

typedef struct proc {
  char name[TRPC_NAME_MAX]; /* "getItem" or "itemService.getItem" */
  size_t len;               /* bytes of name */
  size_t si, mi;            /* service index in rpc->svcs (stable across its reallocs), method */
  uint8_t type;             /* enum proc_type */
  uint8_t fixed;            /* named by switchboard.trpc_name: never nested */
} proc_t;

/* Per registry; built at registration, read-only once the server runs. */
struct sb_trpc {
  char base[TRPC_BASE_MAX]; /* "/trpc": starts with '/', no trailing '/' */
  size_t base_len;
  unsigned method_override; /* POST may call queries and subscriptions */
  proc_t *procs;            /* owned array */
  size_t n;
};

typedef struct trpc_x trpc_x_t;

/* One call of an exchange. */
typedef struct item {
  trpc_x_t *x;          /* the exchange, which owns this item */
  const proc_t *proc;   /* NULL: no such procedure */
  sb_trpc_span_t path;  /* the procedure path as the client wrote it (decoded; in x->path) */
  sb_call_t *call;      /* while the handler runs; NULL before and after */
  unsigned done : 1;    /* its outcome is in json */
  unsigned failed : 1;  /* json holds an error shape, else the output */
  unsigned written : 1; /* JSONL: its lines went out */
  int status;           /* HTTP status of its outcome */
  sb_buf_t json;        /* the output's JSON or the error shape; owned */
} item_t;

struct trpc_x {
  sb_http_req_t *req;  /* held until the response ended */
  sb_rpc_t *rpc;       /* borrowed */
  sb_buf_t body;       /* request body; owned */
  sb_buf_t path;       /* the decoded procedure part of the URL path; owned */
  sb_buf_t input;      /* the input document (query parameter or body); owned */
  size_t n;            /* calls */
  size_t pending;      /* calls not done, plus one while dispatching */
  size_t next_chunk;   /* JSONL: the next chunk id to hand out */
  int get;             /* the request method is GET */
  int post;            /* ... POST */
  unsigned batch : 1;  /* ?batch=1 */
  unsigned jsonl : 1;  /* trpc-accept: application/jsonl */
  unsigned sse : 1;    /* a single subscription call: Server-Sent Events */
  unsigned sse_on : 1; /* SSE headers and the connected event are out */
  unsigned aborted : 1;
  unsigned body_oom : 1;
  item_t items[]; /* n */
};

/* ---- configuration ---- */

static struct sb_trpc *trpc_state(sb_rpc_t *rpc) {
  if (!rpc->trpc) {
    rpc->trpc = calloc(1, sizeof *rpc->trpc);
    if (!rpc->trpc) return NULL;
    memcpy(rpc->trpc->base, "/trpc", 6);
    rpc->trpc->base_len = 5;
  }
  return rpc->trpc;
}

int sb_rpc_set_trpc_base(sb_rpc_t *rpc, const char *base) {
  if (!base) base = "/trpc";
  size_t n = strlen(base);
  while (n && base[n - 1] == '/')
    n--;
  if (n == 0 || base[0] != '/' || n >= TRPC_BASE_MAX || memchr(base, '?', n) ||
      memchr(base, '#', n))
    return SB_EINVAL;
  struct sb_trpc *t = trpc_state(rpc);
  if (!t) return SB_ENOMEM;
  memcpy(t->base, base, n);
  t->base[n] = '\0';
  t->base_len = n;
  return 0;
}

int sb_rpc_set_trpc_method_override(sb_rpc_t *rpc, int allow) {
  struct sb_trpc *t = trpc_state(rpc);
  if (!t) return SB_ENOMEM;
  t->method_override = allow ? 1 : 0;
  return 0;
}

static uint8_t proc_type_of(const sb_method_desc_t *m) {
  if (m->kind == SB_METHOD_SERVER_STREAMING) return PROC_SUBSCRIPTION;
  if (m->kind != SB_METHOD_UNARY) return 0;
  return m->idempotency == SB_IDEMPOTENCY_NO_SIDE_EFFECTS ? PROC_QUERY : PROC_MUTATION;
}

/* The service's simple name ("ItemService" of "items.v1.ItemService"). */
static const char *simple_name(const char *full) {
  const char *dot = strrchr(full, '.');
  return dot ? dot + 1 : full;
}

int sb__trpc_rebuild(sb_rpc_t *rpc) {
  struct sb_trpc *t = trpc_state(rpc);
  if (!t) return SB_ENOMEM;
  free(t->procs);
  t->procs = NULL;
  t->n = 0;
  size_t total = 0;
  for (size_t si = 0; si < rpc->nsvcs; si++)
    total += rpc->svcs[si].desc->n_methods;
  if (total == 0) return 0;
  t->procs = calloc(total, sizeof *t->procs);
  if (!t->procs) return SB_ENOMEM;
  for (size_t si = 0; si < rpc->nsvcs; si++) {
    const sb_service_desc_t *d = rpc->svcs[si].desc;
    for (size_t mi = 0; mi < d->n_methods; mi++) {
      uint8_t type = proc_type_of(&d->methods[mi]);
      if (!type) continue;
      proc_t *p = &t->procs[t->n++];
      const char *own = d->methods[mi].trpc_name;
      p->fixed = own && own[0] && strlen(own) < sizeof p->name;
      sb__trpc_proc_name(p->fixed ? own : d->methods[mi].name, p->name, sizeof p->name);
      if (p->fixed) memcpy(p->name, own, strlen(own) + 1); /* verbatim, first letter too */
      p->len = strlen(p->name);
      p->si = si;
      p->mi = mi;
      p->type = type;
    }
  }
  /* Names two services share are nested under their services, every one of them. */
  for (size_t i = 0; i < t->n; i++) {
    if (t->procs[i].fixed || memchr(t->procs[i].name, '.', t->procs[i].len)) continue;
    char plain[TRPC_NAME_MAX]; /* the shared name, kept while its owners are renamed */
    memcpy(plain, t->procs[i].name, t->procs[i].len + 1);
    int clash = 0;
    for (size_t j = 0; j < t->n && !clash; j++)
      clash = t->procs[j].si != t->procs[i].si && !t->procs[j].fixed &&
              strcmp(t->procs[j].name, plain) == 0;
    for (size_t j = i; clash && j < t->n; j++) {
      proc_t *p = &t->procs[j];
      if (p->fixed || strcmp(p->name, plain) != 0) continue;
      char svc[TRPC_NAME_MAX], full[TRPC_NAME_MAX];
      sb__trpc_proc_name(simple_name(rpc->svcs[p->si].desc->full_name), svc, sizeof svc);
      size_t sl = strlen(svc);
      if (sl + 1 + p->len >= sizeof full) continue; /* too long to nest: keeps its plain name */
      memcpy(full, svc, sl);
      full[sl] = '.';
      memcpy(full + sl + 1, p->name, p->len + 1);
      memcpy(p->name, full, sizeof full);
      p->len += sl + 1;
    }
  }
  return 0;
}

void sb__trpc_free(sb_rpc_t *rpc) {
  if (!rpc->trpc) return;
  free(rpc->trpc->procs);
  free(rpc->trpc);
  rpc->trpc = NULL;
}

int sb__trpc_match(sb_rpc_t *rpc, sb_http_req_t *req) {
  const struct sb_trpc *t = rpc->trpc;
  const char *p = sb_http_req_path(req);
  const char *base = t ? t->base : "/trpc";
  size_t n = t ? t->base_len : 5;
  return strncmp(p, base, n) == 0 && (p[n] == '/' || p[n] == '\0');
}

static const proc_t *find_proc(const struct sb_trpc *t, const char *name, size_t len) {
  for (size_t i = 0; t && i < t->n; i++)
    if (t->procs[i].len == len && memcmp(t->procs[i].name, name, len) == 0) return &t->procs[i];
  return NULL;
}

/* ---- envelopes ---- */

/* Writes tRPC's default error shape into out (replacing it). path may be NULL (an error of
 * the whole request). Returns 0 or SB_ENOMEM / SB_EINVAL from the writer. */
static int error_shape(sb_buf_t *out, enum sb_trpc_code c, const char *msg,
                       const sb_trpc_span_t *path) {
  const sb_trpc_err_t *e = sb__trpc_err(c);
  sb_buf_reset(out);
  sb_jw_t w;
  sb_jw_init(&w, out);
  sb_jw_obj_begin(&w);
  sb_jw_key(&w, "message", 7);
  sb_jw_str(&w, msg ? msg : e->key, strlen(msg ? msg : e->key));
  sb_jw_key(&w, "code", 4);
  sb_jw_int(&w, e->number);
  sb_jw_key(&w, "data", 4);
  sb_jw_obj_begin(&w);
  sb_jw_key(&w, "code", 4);
  sb_jw_str(&w, e->key, strlen(e->key));
  sb_jw_key(&w, "httpStatus", 10);
  sb_jw_int(&w, e->http);
  if (path) {
    sb_jw_key(&w, "path", 4);
    sb_jw_str(&w, path->n ? path->p : "", path->n);
  }
  sb_jw_obj_end(&w);
  sb_jw_obj_end(&w);
  return sb_jw_error(&w);
}

/* The whole request failed before any call: one envelope, no path. */
static void respond_request_error(sb_http_req_t *req, enum sb_trpc_code c, const char *msg) {
  sb_buf_t shape = {0}, out = {0};
  int rc = error_shape(&shape, c, msg, NULL);
  if (!rc) rc = sb_buf_append(&out, "{\"error\":", 9);
  if (!rc) rc = sb_buf_append(&out, sb_buf_head(&shape), sb_buf_pending(&shape));
  if (!rc) rc = sb_buf_append(&out, "}", 1);
  sb_http_res_header(req, "vary", "trpc-accept, accept");
  /* @trpc/server answers these without setting a type, so the fetch Response it builds from
   * a string says text/plain; its client parses the body as JSON whatever the type says. The
   * same bytes here keep the two servers indistinguishable. */
  if (rc)
    sb_http_respond(req, 500, NULL, NULL, 0);
  else
    sb_http_respond(req, sb__trpc_err(c)->http, "text/plain;charset=UTF-8", sb_buf_head(&out),
                    sb_buf_pending(&out));
  sb_buf_free(&shape);
  sb_buf_free(&out);
}

/* ---- Server-Sent Events (subscriptions) ---- */

static void sse_start(trpc_x_t *x) {
  if (x->sse_on) return;
  x->sse_on = 1;
  sb_http_req_t *req = x->req;
  sb_http_res_header(req, "vary", "trpc-accept, accept");
  sb_http_res_header(req, "content-type", "text/event-stream");
  sb_http_res_header(req, "cache-control", "no-cache, no-transform");
  sb_http_res_header(req, "x-accel-buffering", "no");
  /* tRPC's event framing: each field on its line, then two more newlines. */
  static const char connected[] = "event: connected\ndata: {}\n\n\n";
  sb_http_res_write(req, connected, sizeof connected - 1);
}

/* Ends the subscription's stream with "return" or "serialized-error" (item 0's outcome). */
static void sse_end(trpc_x_t *x) {
  item_t *it = &x->items[0];
  sse_start(x);
  sb_buf_t out = {0};
  if (!it->failed) {
    sb_buf_append(&out, "event: return\ndata: \n\n\n", 23);
  } else {
    sb_buf_append(&out, "event: serialized-error\ndata: ", 30);
    sb_buf_append(&out, sb_buf_head(&it->json), sb_buf_pending(&it->json));
    sb_buf_append(&out, "\n\n\n", 3);
  }
  sb_http_res_write(x->req, sb_buf_head(&out), sb_buf_pending(&out));
  sb_buf_free(&out);
}

/* ---- JSONL (httpBatchStreamLink) ---- */

/* The head line: every call is a promise whose chunk id is its index. */
static void jsonl_head(trpc_x_t *x) {
  sb_buf_t out = {0};
  sb_buf_append(&out, "{", 1);
  for (size_t i = 0; i < x->n; i++)
    sb_buf_appendf(&out, "%s\"%zu\":[[0],[null,0,%zu]]", i ? "," : "", i, i);
  sb_buf_append(&out, "}\n", 2);
  sb_http_res_header(x->req, "vary", "trpc-accept, accept");
  sb_http_res_header(x->req, "content-type", "application/json");
  sb_http_res_write(x->req, sb_buf_head(&out), sb_buf_pending(&out));
  sb_buf_free(&out);
}

/* A finished call's lines: its promise resolves to {"error": shape}, or to {"result": P}
 * where P resolves to {"data": Q} and Q to the output (tRPC's producer nests them so). */
static void jsonl_item(trpc_x_t *x, size_t i) {
  item_t *it = &x->items[i];
  sb_buf_t out = {0};
  const uint8_t *j = sb_buf_head(&it->json);
  int jn = (int)sb_buf_pending(&it->json);
  if (it->failed) {
    sb_buf_appendf(&out, "[%zu,0,[[{\"error\":%.*s}]]]\n", i, jn, j ? (const char *)j : "");
  } else {
    size_t k = x->next_chunk++, m = x->next_chunk++;
    sb_buf_appendf(&out, "[%zu,0,[[{\"result\":0}],[\"result\",0,%zu]]]\n", i, k);
    sb_buf_appendf(&out, "[%zu,0,[[{\"data\":0}],[\"data\",0,%zu]]]\n", k, m);
    sb_buf_appendf(&out, "[%zu,0,[[%.*s]]]\n", m, jn, j ? (const char *)j : "");
  }
  it->written = 1;
  if (!x->aborted) sb_http_res_write(x->req, sb_buf_head(&out), sb_buf_pending(&out));
  sb_buf_free(&out);
}

/* ---- completion ---- */

static void x_free(trpc_x_t *x) {
  for (size_t i = 0; i < x->n; i++)
    sb_buf_free(&x->items[i].json);
  sb_buf_free(&x->body);
  sb_buf_free(&x->path);
  sb_buf_free(&x->input);
  free(x);
}

/* Every call is done: answer (unless a stream already did) and release the exchange. */
static void x_complete(trpc_x_t *x) {
  sb_http_req_t *req = x->req;
  if (x->aborted) {
    sb_http_res_end(req);
  } else if (x->sse) {
    sse_end(x);
    sb_http_res_end(req);
  } else if (x->jsonl) {
    sb_http_res_end(req);
  } else {
    sb_buf_t out = {0};
    int status = x->items[0].status, rc = 0;
    if (x->batch) rc = sb_buf_append(&out, "[", 1);
    for (size_t i = 0; i < x->n && !rc; i++) {
      const item_t *it = &x->items[i];
      if (it->status != status) status = 207;
      if (i) rc = sb_buf_append(&out, ",", 1);
      if (!rc)
        rc = sb_buf_append(
            &out, it->failed ? "{\"error\":" : "{\"result\":{\"data\":", it->failed ? 9 : 18);
      if (!rc) rc = sb_buf_append(&out, sb_buf_head(&it->json), sb_buf_pending(&it->json));
      if (!rc) rc = sb_buf_append(&out, it->failed ? "}" : "}}", it->failed ? 1 : 2);
    }
    if (!rc && x->batch) rc = sb_buf_append(&out, "]", 1);
    sb_http_res_header(req, "vary", "trpc-accept, accept");
    if (rc)
      sb_http_respond(req, 500, NULL, NULL, 0);
    else
      sb_http_respond(req, status, "application/json", sb_buf_head(&out), sb_buf_pending(&out));
    sb_buf_free(&out);
  }
  x_free(x);
}

static void item_done(trpc_x_t *x, size_t i) {
  x->items[i].done = 1;
  if (x->jsonl) jsonl_item(x, i);
  if (--x->pending == 0) x_complete(x);
}

/* Records a failure of call i that happened before or instead of its handler. */
static void item_fail(trpc_x_t *x, size_t i, enum sb_trpc_code c, const char *msg) {
  item_t *it = &x->items[i];
  it->failed = 1;
  it->status = sb__trpc_err(c)->http;
  if (error_shape(&it->json, c, msg, &it->path)) {
    it->status = 500;
    error_shape(&it->json, SB_TRPC_INTERNAL_SERVER_ERROR, "out of memory", NULL);
  }
  item_done(x, i);
}

/* ---- the call ops ---- */

static void trpc_finish(sb_call_t *call, sb_code_t code, const char *message) {
  item_t *it = call->fe;
  trpc_x_t *x = it->x;
  size_t i = (size_t)(it - x->items);
  it->call = NULL;
  if (code == SB_CODE_OK && !x->aborted && !x->sse) {
    sb_buf_reset(&it->json);
    sb_jw_t w;
    sb_jw_init(&w, &it->json);
    if (sb_pbjson_write(&w, call->response, 0) == 0) {
      it->status = 200;
      sb__call_free(call);
      item_done(x, i);
      return;
    }
    code = SB_CODE_INTERNAL;
    message = "the response could not be encoded";
  }
  sb__call_free(call);
  if (code == SB_CODE_OK) {
    it->status = 200;
    item_done(x, i);
    return;
  }
  item_fail(x, i, sb__trpc_code_of(code), message ? message : sb_code_name(code));
}

static int trpc_send(sb_call_t *call, const ProtobufCMessage *msg) {
  item_t *it = call->fe;
  trpc_x_t *x = it->x;
  if (x->aborted) return SB_ECANCELED;
  sb_buf_t out = {0};
  sb_buf_append(&out, "data: ", 6);
  sb_jw_t w;
  sb_jw_init(&w, &out);
  int rc = sb_pbjson_write(&w, msg, 0);
  if (!rc && call->event_id) rc = sb_buf_appendf(&out, "\nid: %s", call->event_id);
  if (!rc) rc = sb_buf_append(&out, "\n\n\n", 3);
  call->event_id = NULL; /* it names one message */
  if (!rc) rc = sb_http_res_write(x->req, sb_buf_head(&out), sb_buf_pending(&out));
  sb_buf_free(&out);
  return rc;
}

static const char *trpc_metadata(const sb_call_t *call, const char *key) {
  const item_t *it = call->fe;
  return sb_http_req_header(it->x->req, key, NULL);
}

static const sb__call_ops_t trpc_ops = {trpc_finish, trpc_send, trpc_metadata, NULL, 0};

/* ---- dispatch ---- */

/* Writes the subscription's resumption id into the request's last_event_id, if it has one. */
static int merge_last_event_id(trpc_x_t *x, sb_call_t *call, sb_pbjson_err_t *err) {
  if (!sb_pbjson_field(call->method->input, "last_event_id", 13)) return 0;
  const char *id = sb_http_req_header(x->req, "last-event-id", NULL);
  sb_buf_t q = {0};
  int rc = 0;
  if (!id) {
    const char *qs = sb_http_req_query(x->req);
    rc = sb__trpc_query_get(qs, "lastEventId", &q);
    if (rc == 0) rc = sb__trpc_query_get(qs, "Last-Event-Id", &q);
    if (rc == 1) id = (const char *)sb_buf_head(&q);
  }
  rc = rc < 0 ? rc : 0;
  if (id && !rc)
    rc = sb_pbjson_set_text(call->request, "last_event_id", 13, id, strlen(id), &call->alloc, err);
  sb_buf_free(&q);
  return rc;
}

/* Runs call i with its raw input text (in.p == NULL: no input). */
static void run_call(trpc_x_t *x, size_t i, sb_trpc_span_t in) {
  item_t *it = &x->items[i];
  const proc_t *p = it->proc;
  sb__svc_t *svc = &x->rpc->svcs[p->si];
  sb_call_t *call = sb__call_new(x->rpc, svc, p->mi, &trpc_ops, it, sb_http_req_loop(x->req));
  if (!call) {
    item_fail(x, i, SB_TRPC_INTERNAL_SERVER_ERROR, "out of memory");
    return;
  }
  sb_pbjson_err_t err;
  memset(&err, 0, sizeof err);
  int rc = 0;
  /* null is tRPC's "no input" as much as an absent one. */
  if (in.p && !(in.n == 4 && memcmp(in.p, "null", 4) == 0))
    rc = sb_pbjson_decode(in.p, in.n, call->request, &call->alloc, x->rpc->json_flags, &err);
  if (!rc && p->type == PROC_SUBSCRIPTION) rc = merge_last_event_id(x, call, &err);
  if (rc) {
    sb__call_free(call);
    char msg[320];
    if (rc == SB_ENOMEM)
      snprintf(msg, sizeof msg, "out of memory");
    else if (err.path[0])
      snprintf(msg, sizeof msg, "invalid input: %s: %s", err.path, err.msg ? err.msg : "invalid");
    else
      snprintf(msg, sizeof msg, "invalid input: %s", err.msg ? err.msg : "invalid");
    item_fail(x, i, rc == SB_ENOMEM ? SB_TRPC_INTERNAL_SERVER_ERROR : SB_TRPC_BAD_REQUEST, msg);
    return;
  }
  it->call = call;
  if (x->sse) sse_start(x);
  sb__call_invoke(call); /* finishes now or later through trpc_finish */
}

/* 1 when the request method may call a procedure of type t. */
static int method_ok(const trpc_x_t *x, uint8_t t) {
  if (t == PROC_MUTATION) return x->post;
  return x->get || (x->post && x->rpc->trpc->method_override);
}

static void dispatch(trpc_x_t *x) {
  if (x->jsonl) jsonl_head(x);
  /* The inputs, as the calls that get that far will read them. */
  sb_trpc_span_t in1 = {NULL, 0};
  sb_trpc_span_t *ins = NULL;
  const char *why = NULL;
  int in_rc = 0;
  if (x->get) {
    int q = sb__trpc_query_get(sb_http_req_query(x->req), "input", &x->input);
    if (q < 0) in_rc = SB_ENOMEM;
  } else {
    x->input = x->body;
    x->body = (sb_buf_t){0};
  }
  size_t ilen = sb_buf_pending(&x->input);
  const char *itext = (const char *)sb_buf_head(&x->input);
  if (!in_rc && ilen && x->batch) {
    ins = calloc(x->n, sizeof *ins);
    in_rc = ins ? sb__trpc_batch_inputs(itext, ilen, ins, x->n, &why) : SB_ENOMEM;
  } else if (!in_rc && ilen) {
    in1 = (sb_trpc_span_t){itext, ilen};
  }
  x->pending = x->n + 1; /* calls may finish inside the loop: the last one must not free x */
  for (size_t i = 0; i < x->n; i++) {
    item_t *it = &x->items[i];
    char msg[TRPC_NAME_MAX + 96];
    if (!it->proc) {
      snprintf(msg, sizeof msg, "No procedure found on path \"%.*s\"", (int)it->path.n,
               it->path.n ? it->path.p : "");
      item_fail(x, i, SB_TRPC_NOT_FOUND, msg);
    } else if (!method_ok(x, it->proc->type)) {
      const char *kind = it->proc->type == PROC_QUERY      ? "query"
                         : it->proc->type == PROC_MUTATION ? "mutation"
                                                           : "subscription";
      sb_http_res_header(x->req, "allow",
                         it->proc->type == PROC_MUTATION ? "POST"
                         : x->rpc->trpc->method_override ? "GET, POST"
                                                         : "GET");
      snprintf(msg, sizeof msg, "Unsupported %s-request to %s procedure at path \"%.*s\"",
               sb_http_req_method(x->req), kind, (int)it->path.n, it->path.n ? it->path.p : "");
      item_fail(x, i, SB_TRPC_METHOD_NOT_SUPPORTED, msg);
    } else if (it->proc->type == PROC_SUBSCRIPTION && x->batch) {
      item_fail(x, i, SB_TRPC_BAD_REQUEST, "Cannot batch subscription calls");
    } else if (in_rc == SB_ENOMEM) {
      item_fail(x, i, SB_TRPC_INTERNAL_SERVER_ERROR, "out of memory");
    } else if (in_rc) {
      item_fail(x, i, SB_TRPC_BAD_REQUEST, why);
    } else {
      run_call(x, i, ins ? ins[i] : in1);
    }
  }
  free(ins);
  if (--x->pending == 0) x_complete(x);
}

/* ---- the exchange ---- */

static void on_data(sb_http_req_t *req, const uint8_t *data, size_t len, void *ud) {
  trpc_x_t *x = ud;
  (void)req;
  if (sb_buf_append(&x->body, data, len)) x->body_oom = 1;
}

static void on_end(sb_http_req_t *req, void *ud) {
  trpc_x_t *x = ud;
  if (x->body_oom) {
    respond_request_error(req, SB_TRPC_INTERNAL_SERVER_ERROR, "out of memory");
    x_free(x);
    return;
  }
  dispatch(x);
}

static void on_abort(sb_http_req_t *req, int err, void *ud) {
  trpc_x_t *x = ud;
  (void)err;
  x->aborted = 1;
  if (x->pending == 0) {
    /* The body was still arriving: no call exists yet. */
    sb_http_res_end(req);
    x_free(x);
    return;
  }
  /* A handler may finish its call inside on_cancel, and the last one to finish completes x:
   * hold x for the walk, as dispatch does. */
  x->pending++;
  for (size_t i = 0; i < x->n; i++)
    if (x->items[i].call) sb__call_cancel(x->items[i].call);
  if (--x->pending == 0) x_complete(x);
}

static void on_writable(sb_http_req_t *req, void *ud) {
  trpc_x_t *x = ud;
  (void)req;
  if (x->sse && x->items[0].call) sb__call_writable(x->items[0].call);
}

/* 1 when the accept headers ask for tRPC's JSONL stream. */
static int wants_jsonl(sb_http_req_t *req) {
  const char *ta = sb_http_req_header(req, "trpc-accept", NULL);
  if (ta) return strcmp(ta, "application/jsonl") == 0;
  const char *a = sb_http_req_header(req, "accept", NULL);
  while (a && *a) {
    while (*a == ' ' || *a == '\t')
      a++;
    size_t n = strcspn(a, ",");
    size_t m = n;
    while (m && (a[m - 1] == ' ' || a[m - 1] == '\t'))
      m--;
    if (m == 17 && memcmp(a, "application/jsonl", 17) == 0) return 1;
    a += n + (a[n] == ',');
  }
  return 0;
}

void sb__trpc_handle(sb_http_req_t *req, void *ud) {
  sb_rpc_t *rpc = ud;
  struct sb_trpc *t = rpc->trpc;
  const char *method = sb_http_req_method(req);
  if (strcmp(method, "HEAD") == 0) {
    sb_http_respond(req, 204, NULL, NULL, 0);
    return;
  }
  if (!t) {
    respond_request_error(req, SB_TRPC_NOT_FOUND, "No procedures are registered");
    return;
  }
  /* The procedure part of the path: after "{base}/", percent-decoded (decodeURIComponent:
   * no '+' rule; the result must be UTF-8, which a JSON string check proves). */
  const char *raw = sb_http_req_path(req) + t->base_len;
  if (*raw == '/') raw++;
  size_t rawn = strlen(raw);
  while (rawn && raw[rawn - 1] == '/')
    rawn--;
  sb_buf_t path = {0}, probe = {0};
  int rc = sb_buf_reserve(&path, rawn + 1);
  long pn = rc ? -1 : sb_pct_decode(raw, rawn, (char *)path.data, 0);
  if (rc) {
    respond_request_error(req, SB_TRPC_INTERNAL_SERVER_ERROR, "out of memory");
    return;
  }
  if (pn >= 0) {
    path.len = (size_t)pn;
    sb_jw_t w;
    sb_jw_init(&w, &probe);
    sb_jw_str(&w, (const char *)path.data, path.len);
    if (sb_jw_error(&w)) pn = -1;
    sb_buf_free(&probe);
  }
  if (pn < 0) {
    sb_buf_free(&path);
    respond_request_error(req, SB_TRPC_BAD_REQUEST, "Invalid URL-encoding in path");
    return;
  }
  int get = strcmp(method, "GET") == 0;
  switch (sb__trpc_media(sb_http_req_header(req, "content-type", NULL), get)) {
  case SB_TRPC_MEDIA_JSON:
    break;
  case SB_TRPC_MEDIA_OTHER:
    sb_buf_free(&path);
    respond_request_error(req, SB_TRPC_UNSUPPORTED_MEDIA_TYPE,
                          "this server takes JSON input only (the contract is protobuf)");
    return;
  case SB_TRPC_MEDIA_NONE:
    sb_buf_free(&path);
    respond_request_error(req, SB_TRPC_UNSUPPORTED_MEDIA_TYPE, "Missing content-type header");
    return;
  default:
    sb_buf_free(&path);
    respond_request_error(req, SB_TRPC_UNSUPPORTED_MEDIA_TYPE, "Unsupported content-type");
    return;
  }
  sb_buf_t flag = {0};
  int batch = sb__trpc_query_get(sb_http_req_query(req), "batch", &flag) == 1 &&
              sb_buf_pending(&flag) == 1 && sb_buf_head(&flag)[0] == '1';
  sb_buf_free(&flag);
  sb_trpc_span_t spans[SB_TRPC_MAX_BATCH];
  size_t n = 0;
  if (sb__trpc_split_paths(path.len ? (const char *)path.data : "", path.len, batch, spans,
                           SB_TRPC_MAX_BATCH, &n)) {
    sb_buf_free(&path);
    respond_request_error(req, SB_TRPC_BAD_REQUEST, "Batch call exceeds maximum size");
    return;
  }
  trpc_x_t *x = calloc(1, sizeof *x + n * sizeof(item_t));
  if (!x) {
    sb_buf_free(&path);
    respond_request_error(req, SB_TRPC_INTERNAL_SERVER_ERROR, "out of memory");
    return;
  }
  x->req = req;
  x->rpc = rpc;
  x->path = path; /* the spans point into it */
  x->n = n;
  x->next_chunk = n;
  x->get = get;
  x->post = strcmp(method, "POST") == 0;
  x->batch = (unsigned)batch;
  uint8_t types = 0;
  for (size_t i = 0; i < n; i++) {
    x->items[i].x = x;
    x->items[i].path = spans[i];
    x->items[i].proc = find_proc(t, spans[i].p, spans[i].n);
    if (x->items[i].proc) types |= x->items[i].proc->type;
  }
  if (types & (types - 1)) {
    char msg[96];
    snprintf(msg, sizeof msg, "Cannot mix procedure types in call: %s%s%s",
             types & PROC_QUERY ? "query" : "mutation",
             types & PROC_QUERY && types & PROC_MUTATION ? ", mutation" : "",
             types & PROC_SUBSCRIPTION ? ", subscription" : "");
    respond_request_error(req, SB_TRPC_BAD_REQUEST, msg);
    x_free(x);
    return;
  }
  x->jsonl = (unsigned)wants_jsonl(req);
  if (x->jsonl && !batch) {
    respond_request_error(req, SB_TRPC_BAD_REQUEST,
                          "Streaming requests must be batched (you can do a batch of 1)");
    x_free(x);
    return;
  }
  x->sse = !batch && types == PROC_SUBSCRIPTION;
  sb_http_callbacks_t cbs = {.on_data = on_data,
                             .on_end = on_end,
                             .on_abort = on_abort,
                             .on_writable = on_writable,
                             .ud = x};
  sb_http_req_set_callbacks(req, &cbs);
}
