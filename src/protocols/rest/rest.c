/*
 * REST/JSON front-end: google.api.http bindings served over the HTTP core.
 *
 * Routes. Each binding's path template is compiled once, at registration, into segments:
 *   Template = "/" Segments [ ":" Verb ]
 *   Segment  = "*" | "**" | LITERAL | "{" FieldPath [ "=" Segments ] "}"
 * A request matches a route when the method is equal and its path segments match ("*" one
 * segment, "**" the rest of the path, which must be last). Variables bind the text of the
 * segments they cover (percent-decoded; a multi-segment value keeps its '/'). Methods with
 * no binding are served at POST /<package>.<Service>/<Method> with the whole request as
 * body. Routes are tried in registration order; the first match wins.
 *
 * Request message = path variables + body (the whole message for body "*", one field for
 * body "<field>") + query parameters for every field not bound otherwise (repeated fields
 * repeat the parameter; nested fields use dotted names). Unknown query parameters and
 * unknown JSON fields are INVALID_ARGUMENT.
 *
 * Responses: the success status (a method option; 200 by default), the whole response
 * message or its response_body field as JSON. Errors: the status mapped from the gRPC code and
 * a body {"code": <grpc code>, "message": "...", "details": []}. Side-effect-free methods get
 * an ETag (a hash of the body) and answer If-None-Match with 304, plus the method's
 * Cache-Control. Server-streaming methods answer Server-Sent Events ("data: <json>" per
 * message) when the client accepts text/event-stream, else newline-delimited JSON.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/json.h"
#include "contract/pbjson.h"
#include "core/codec.h"
#include "core/buf.h"
#include "protocols/rest/docs.h"
#include "rpc/idempotency.h"
#include "rpc/rpc_int.h"
#include "switchboard/error.h"
#include "switchboard/log.h"

#define SB_REST_MAX_SEGS 32u /* segments in a template or a request path */
#define SB_REST_MAX_VARS 8u  /* variables in a template */

enum seg_kind { SEG_LIT = 0, SEG_ONE = 1, SEG_REST = 2 };

typedef struct seg {
  uint8_t kind;    /* enum seg_kind */
  const char *lit; /* SEG_LIT text (owned by the route's strings) */
  size_t len;
} seg_t;

typedef struct var {
  char *field;   /* dotted field path; owned */
  unsigned from; /* first segment index covered */
  unsigned to;   /* one past the last (SEG_REST: to == nsegs) */
} var_t;

typedef struct route {
  const char *method; /* borrowed from the binding */
  seg_t segs[SB_REST_MAX_SEGS];
  unsigned nsegs;
  var_t vars[SB_REST_MAX_VARS];
  unsigned nvars;
  char *verb;                /* owned, or NULL */
  char *text;                /* owned copy of the template; segs point into it */
  const sb__svc_t *svc;      /* borrowed */
  size_t mi;                 /* method index */
  const char *body;          /* NULL, "*" or a field */
  const char *response_body; /* NULL or a field */
} route_t;

struct sb_rest {
  route_t *routes; /* owned array */
  size_t n, cap;
};

/* ---- templates ---- */

static void route_clear(route_t *r) {
  for (unsigned i = 0; i < r->nvars; i++)
    free(r->vars[i].field);
  free(r->verb);
  free(r->text);
}

/* Compiles tmpl into r. Returns 0 or SB_EINVAL. */
static int compile(route_t *r, const char *tmpl) {
  if (tmpl[0] != '/') return SB_EINVAL;
  r->text = strdup(tmpl);
  if (!r->text) return SB_ENOMEM;
  char *s = r->text + 1;
  /* The verb is a ':' after the last '/' outside braces. */
  char *last_slash = strrchr(s, '/');
  char *brace = strrchr(s, '}');
  char *colon = strrchr(last_slash ? last_slash : s, ':');
  if (colon && (!brace || colon > brace)) {
    r->verb = strdup(colon + 1);
    if (!r->verb) return SB_ENOMEM;
    *colon = '\0';
  }
  int in_var = -1;
  while (*s) {
    if (r->nsegs == SB_REST_MAX_SEGS) return SB_EINVAL;
    if (*s == '{') {
      if (in_var >= 0 || r->nvars == SB_REST_MAX_VARS) return SB_EINVAL;
      char *close = strchr(s, '}');
      if (!close) return SB_EINVAL;
      char *eq = memchr(s, '=', (size_t)(close - s));
      char *fend = eq ? eq : close;
      var_t *v = &r->vars[r->nvars++];
      v->field = strndup(s + 1, (size_t)(fend - s - 1));
      if (!v->field || !v->field[0]) return SB_EINVAL;
      v->from = r->nsegs;
      if (!eq) {
        r->segs[r->nsegs++] = (seg_t){SEG_ONE, NULL, 0};
        v->to = r->nsegs;
        s = close + 1;
      } else {
        in_var = (int)(r->nvars - 1);
        *close = '\0'; /* the sub-pattern ends at the brace */
        s = eq + 1;
        continue;
      }
    } else {
      char *e = s;
      while (*e && *e != '/')
        e++;
      size_t n = (size_t)(e - s);
      if (n == 1 && *s == '*')
        r->segs[r->nsegs++] = (seg_t){SEG_ONE, NULL, 0};
      else if (n == 2 && s[0] == '*' && s[1] == '*')
        r->segs[r->nsegs++] = (seg_t){SEG_REST, NULL, 0};
      else if (n == 0)
        return SB_EINVAL;
      else
        r->segs[r->nsegs++] = (seg_t){SEG_LIT, s, n};
      s = e;
    }
    if (in_var >= 0 && *s == '\0') {
      /* End of a variable's sub-pattern: continue after the closing brace. */
      r->vars[in_var].to = r->nsegs;
      in_var = -1;
      s++;
    }
    if (*s == '/')
      s++;
    else if (*s)
      return SB_EINVAL;
  }
  for (unsigned i = 0; i < r->nsegs; i++)
    if (r->segs[i].kind == SEG_REST && i + 1 != r->nsegs) return SB_EINVAL;
  return 0;
}

static int add_route(struct sb_rest *t, const sb__svc_t *svc, size_t mi, const char *method,
                     const char *tmpl, const char *body, const char *response_body) {
  if (t->n == t->cap) {
    size_t ncap = t->cap ? t->cap * 2 : 16;
    route_t *n = realloc(t->routes, ncap * sizeof *n);
    if (!n) return SB_ENOMEM;
    t->routes = n;
    t->cap = ncap;
  }
  route_t *r = &t->routes[t->n];
  memset(r, 0, sizeof *r);
  int rc = compile(r, tmpl);
  if (rc) {
    route_clear(r);
    sb_log(SB_LOG_ERROR, "rest_bad_template", "template=%s", tmpl);
    return rc;
  }
  r->method = method;
  r->svc = svc;
  r->mi = mi;
  r->body = body && body[0] ? body : NULL;
  r->response_body = response_body && response_body[0] ? response_body : NULL;
  t->n++;
  return 0;
}

int sb__rest_add_service(sb_rpc_t *rpc, const sb__svc_t *svc) {
  if (!rpc->rest && !(rpc->rest = calloc(1, sizeof *rpc->rest))) return SB_ENOMEM;
  const sb_service_desc_t *d = svc->desc;
  for (size_t mi = 0; mi < d->n_methods; mi++) {
    const sb_method_desc_t *m = &d->methods[mi];
    int rc = 0;
    for (size_t i = 0; i < m->n_http && !rc; i++)
      rc = add_route(rpc->rest, svc, mi, m->http[i].method, m->http[i].path, m->http[i].body,
                     m->http[i].response_body);
    /* The default binding is always there, so every method is reachable over REST. */
    if (!rc) rc = add_route(rpc->rest, svc, mi, "POST", m->path, "*", NULL);
    if (rc) return rc;
  }
  return 0;
}

void sb__rest_free(sb_rpc_t *rpc) {
  struct sb_rest *t = rpc->rest;
  if (!t) return;
  for (size_t i = 0; i < t->n; i++)
    route_clear(&t->routes[i]);
  free(t->routes);
  free(t);
  rpc->rest = NULL;
}

/* ---- matching ---- */

typedef struct span {
  const char *p;
  size_t n;
} span_t;

/* Splits path into segments (no empty segments except a trailing one is an error). */
static int split(const char *path, span_t *segs, unsigned *n) {
  *n = 0;
  if (path[0] != '/') return -1;
  const char *s = path + 1;
  if (!*s) return 0;
  for (;;) {
    if (*n == SB_REST_MAX_SEGS) return -1;
    const char *e = strchr(s, '/');
    size_t len = e ? (size_t)(e - s) : strlen(s);
    if (len == 0) return -1;
    segs[(*n)++] = (span_t){s, len};
    if (!e) return 0;
    s = e + 1;
  }
}

/* Percent-decodes s[0..n) into out (cap bytes, NUL-terminated) with core/codec's decoder.
 * Returns the decoded length, or -1 for bad escapes or when it might not fit. */
static long pct_decode(const char *s, size_t n, char *out, size_t cap, int plus_space) {
  if (n >= cap) return -1; /* decoding never lengthens: n + 1 bytes always suffice */
  return sb_pct_decode(s, n, out, plus_space);
}

/* Matches req path segments against r; fills caps[v] with each variable's span. */
static int match(const route_t *r, span_t *segs, unsigned n, span_t *caps) {
  /* The verb is the suffix ":verb" of the last segment. */
  if (r->verb) {
    if (n == 0) return 0;
    span_t *last = &segs[n - 1];
    size_t vl = strlen(r->verb);
    if (last->n < vl + 2 || last->p[last->n - vl - 1] != ':' ||
        memcmp(last->p + last->n - vl, r->verb, vl) != 0)
      return 0;
    last->n -= vl + 1;
  }
  int ok = 1;
  unsigned i = 0;
  for (; i < r->nsegs && ok; i++) {
    const seg_t *s = &r->segs[i];
    if (s->kind == SEG_REST) {
      i = r->nsegs;
      break;
    }
    if (i >= n)
      ok = 0;
    else if (s->kind == SEG_LIT)
      ok = segs[i].n == s->len && memcmp(segs[i].p, s->lit, s->len) == 0;
  }
  int rest = r->nsegs && r->segs[r->nsegs - 1].kind == SEG_REST;
  if (ok && !rest && n != r->nsegs) ok = 0;
  if (ok && rest && n < r->nsegs - 1) ok = 0;
  if (ok) {
    for (unsigned v = 0; v < r->nvars; v++) {
      const var_t *var = &r->vars[v];
      unsigned to = var->to == r->nsegs && rest ? n : var->to;
      if (var->from >= n || to > n || to <= var->from) {
        ok = 0;
        break;
      }
      caps[v].p = segs[var->from].p;
      caps[v].n = (size_t)(segs[to - 1].p + segs[to - 1].n - segs[var->from].p);
    }
  }
  if (r->verb && !ok) segs[n - 1].n += strlen(r->verb) + 1; /* restore for the next route */
  return ok;
}

/* ---- the exchange ---- */

typedef struct rest_call {
  sb_http_req_t *req;   /* held until the call finishes */
  sb_call_t *call;      /* owned until invoked; then the call owns us (call->fe) */
  const route_t *route; /* borrowed */
  sb_buf_t body;        /* request body; owned */
  unsigned sse : 1;     /* streaming as Server-Sent Events */
  unsigned ndjson : 1;  /* streaming as newline-delimited JSON */
  unsigned started : 1; /* stream headers sent */
  unsigned aborted : 1; /* the body could not be stored (out of memory) */
  unsigned invoked : 1; /* the handler was called: the call (and rc) belong to it now */
  const char *idem_key; /* Idempotency-Key being served (call arena), or NULL */
} rest_call_t;

/* Answers an error; http_status 0 means the status mapped from code. */
static void respond_json_error_status(sb_http_req_t *req, int http_status, sb_code_t code,
                                      const char *msg, const char *path);

static void respond_json_error(sb_http_req_t *req, sb_code_t code, const char *msg,
                               const char *path) {
  respond_json_error_status(req, 0, code, msg, path);
}

/* One google.rpc.BadRequest field violation, as the JSON error body lists it. */
static void violation_json(sb_jw_t *w, const char *field, const char *description) {
  sb_jw_obj_begin(w);
  sb_jw_key(w, "field", 5);
  sb_jw_str(w, field, strlen(field));
  sb_jw_key(w, "description", 11);
  sb_jw_str(w, description, strlen(description));
  sb_jw_obj_end(w);
}

/* Builds the error body {"code","message","details"} into out. The details hold one
 * google.rpc.BadRequest when a field is to blame: path (a decoding error of that field) or
 * the call's violations (validation rules, or a handler's sb_call_field_violation()).
 * Returns 0 or SB_ENOMEM. */
static int error_body(sb_buf_t *out, sb_code_t code, const char *msg, const char *path,
                      const sb__violation_t *viols) {
  sb_jw_t w;
  sb_jw_init(&w, out);
  sb_jw_obj_begin(&w);
  sb_jw_key(&w, "code", 4);
  sb_jw_int(&w, code);
  sb_jw_key(&w, "message", 7);
  char full[512];
  const char *m = msg ? msg : sb_code_name(code);
  if (path && path[0])
    snprintf(full, sizeof full, "%s: %s", path, m);
  else
    snprintf(full, sizeof full, "%s", m);
  sb_jw_str(&w, full, strlen(full));
  sb_jw_key(&w, "details", 7);
  sb_jw_arr_begin(&w);
  if ((path && path[0]) || viols) {
    sb_jw_obj_begin(&w);
    sb_jw_key(&w, "@type", 5);
    static const char bad_request[] = "type.googleapis.com/google.rpc.BadRequest";
    sb_jw_str(&w, bad_request, sizeof bad_request - 1);
    sb_jw_key(&w, "fieldViolations", 15);
    sb_jw_arr_begin(&w);
    if (path && path[0]) violation_json(&w, path, m);
    for (const sb__violation_t *v = viols; v; v = v->next)
      violation_json(&w, v->field, v->description);
    sb_jw_arr_end(&w);
    sb_jw_obj_end(&w);
  }
  sb_jw_arr_end(&w);
  sb_jw_obj_end(&w);
  return sb_jw_error(&w);
}

static void respond_json_error_status(sb_http_req_t *req, int http_status, sb_code_t code,
                                      const char *msg, const char *path) {
  sb_buf_t out = {0};
  if (error_body(&out, code, msg, path, NULL)) {
    static const char internal[] = "{\"code\":13,\"message\":\"INTERNAL\",\"details\":[]}";
    sb_http_respond(req, 500, "application/json", internal, sizeof internal - 1);
  } else {
    sb_http_respond(req, http_status ? http_status : sb_code_http_status(code), "application/json",
                    sb_buf_head(&out), sb_buf_pending(&out));
  }
  sb_buf_free(&out);
}

static const char *rest_metadata(const sb_call_t *call, const char *key) {
  const rest_call_t *rc = call->fe;
  return rc->req ? sb_http_req_header(rc->req, key, NULL) : NULL;
}

/* Encodes what the response carries: the whole message or its response_body field. */
static int encode_response(const rest_call_t *rc, const ProtobufCMessage *msg, sb_buf_t *out) {
  sb_jw_t w;
  sb_jw_init(&w, out);
  const char *rb = rc->route->response_body;
  if (!rb) return sb_pbjson_write(&w, msg, 0);
  /* Encode {"<field>": value} and keep only the value: one code path for every field type. */
  const ProtobufCFieldDescriptor *f = sb_pbjson_field(msg->descriptor, rb, strlen(rb));
  if (!f) return SB_EINVAL;
  sb_buf_t whole = {0};
  sb_jw_t w2;
  sb_jw_init(&w2, &whole);
  int rc2 = sb_pbjson_write(&w2, msg, SB_PBJSON_PROTO_NAMES);
  if (!rc2) {
    sb_jr_t r;
    sb_jr_init(&r, sb_buf_head(&whole), sb_buf_pending(&whole));
    sb_jtok_t t = sb_jr_next(&r); /* { */
    int found = 0;
    while (!found && (t = sb_jr_next(&r)) == SB_JT_KEY) {
      int mine = r.len == strlen(f->name) && memcmp(r.str, f->name, r.len) == 0;
      const uint8_t *vstart = r.p;
      t = sb_jr_next(&r);
      if (sb_jr_skip(&r, t)) break;
      if (mine) {
        while (vstart < r.p && (*vstart == ':' || *vstart == ' '))
          vstart++;
        sb_jw_raw(&w, (const char *)vstart, (size_t)(r.p - vstart));
        found = 1;
      }
    }
    if (!found) sb_jw_null(&w); /* the field is at its default */
    sb_jr_free(&r);
    rc2 = sb_jw_error(&w);
  }
  sb_buf_free(&whole);
  return rc2;
}

/* Sends the final response, recording it under the request's Idempotency-Key. Server errors
 * are not recorded: a retry should run again. */
static void send_final(rest_call_t *rc, int status, const void *body, size_t len) {
  sb_call_t *call = rc->call;
  if (rc->idem_key) {
    if (status < 500)
      sb__idem_complete(call->rpc->idem, call->method->path, rc->idem_key, status,
                        "application/json", body, len, uv_now(call->loop));
    else
      sb__idem_abandon(call->rpc->idem, call->method->path, rc->idem_key);
    rc->idem_key = NULL;
  }
  sb_http_respond(rc->req, status, "application/json", body, len);
}

static void rest_finish(sb_call_t *call, sb_code_t code, const char *message) {
  rest_call_t *rc = call->fe;
  sb_http_req_t *req = rc->req;
  if (call->cancelled || sb_http_req_aborted(req)) {
    if (rc->idem_key) sb__idem_abandon(call->rpc->idem, call->method->path, rc->idem_key);
    sb_http_res_end(req);
  } else if (rc->started) {
    /* A stream: end it, reporting a failure in-band (headers are gone). */
    if (code != SB_CODE_OK) {
      char buf[320];
      int n = snprintf(buf, sizeof buf, "%s{\"code\":%d,\"message\":\"%s\"}%s",
                       rc->sse ? "event: error\ndata: " : "", code, sb_code_name(code),
                       rc->sse ? "\n\n" : "\n");
      (void)message;
      sb_http_res_write(req, buf, (size_t)n);
    }
    sb_http_res_end(req);
  } else if (code != SB_CODE_OK) {
    sb_buf_t out = {0};
    if (error_body(&out, code, message, NULL, call->violations)) {
      sb_buf_free(&out);
      code = SB_CODE_INTERNAL;
      error_body(&out, code, "out of memory", NULL, NULL);
    }
    send_final(rc, sb_code_http_status(code), sb_buf_head(&out), sb_buf_pending(&out));
    sb_buf_free(&out);
  } else {
    sb_buf_t out = {0};
    if (encode_response(rc, call->response, &out)) {
      sb_buf_reset(&out);
      error_body(&out, SB_CODE_INTERNAL, "response could not be encoded", NULL, NULL);
      send_final(rc, 500, sb_buf_head(&out), sb_buf_pending(&out));
    } else {
      const sb_method_desc_t *m = call->method;
      int status = m->success_status ? m->success_status : 200;
      if (m->cache_control) sb_http_res_header(req, "cache-control", m->cache_control);
      int cacheable = m->idempotency == SB_IDEMPOTENCY_NO_SIDE_EFFECTS &&
                      (strcmp(sb_http_req_method(req), "GET") == 0 ||
                       strcmp(sb_http_req_method(req), "HEAD") == 0);
      if (cacheable && status == 200) {
        char etag[24];
        snprintf(
            etag, sizeof etag, "\"%016llx\"",
            (unsigned long long)sb_fnv1a(SB_FNV_SEED, sb_buf_head(&out), sb_buf_pending(&out)));
        sb_http_res_header(req, "etag", etag);
        const char *inm = sb_http_req_header(req, "if-none-match", NULL);
        if (inm && (strstr(inm, etag) || strcmp(inm, "*") == 0)) {
          sb_http_res_status(req, 304);
          sb_http_res_end(req);
          sb_buf_free(&out);
          sb__call_free(call);
          return;
        }
      }
      send_final(rc, status, sb_buf_head(&out), sb_buf_pending(&out));
    }
    sb_buf_free(&out);
  }
  sb_buf_free(&rc->body);
  sb__call_free(call); /* rc lives in the call's arena */
}

static int rest_send(sb_call_t *call, const ProtobufCMessage *msg) {
  rest_call_t *rc = call->fe;
  sb_http_req_t *req = rc->req;
  if (!rc->started) {
    rc->started = 1;
    sb_http_res_header(req, "content-type", rc->sse ? "text/event-stream" : "application/x-ndjson");
    sb_http_res_header(req, "cache-control", "no-cache");
    sb_http_res_flush_headers(req);
  }
  sb_buf_t out = {0};
  if (rc->sse) sb_buf_append(&out, "data: ", 6);
  sb_jw_t w;
  sb_jw_init(&w, &out);
  int rc2 = sb_pbjson_write(&w, msg, 0);
  if (rc2) {
    sb_buf_free(&out);
    return rc2;
  }
  sb_buf_append(&out, rc->sse ? "\n\n" : "\n", rc->sse ? 2 : 1);
  int wr = sb_http_res_write(req, sb_buf_head(&out), sb_buf_pending(&out));
  sb_buf_free(&out);
  return wr;
}

static const sb__call_ops_t rest_ops = {rest_finish, rest_send, rest_metadata, NULL, 0};

static void on_body(sb_http_req_t *req, const uint8_t *data, size_t len, void *ud) {
  rest_call_t *rc = ud;
  (void)req;
  if (sb_buf_append(&rc->body, data, len)) rc->aborted = 1;
}

/* Applies query parameters to the request message, skipping fields bound elsewhere. */
static int apply_query(sb_http_req_t *req, rest_call_t *rc, sb_pbjson_err_t *err) {
  const char *q = sb_http_req_query(req);
  const route_t *r = rc->route;
  while (*q) {
    const char *amp = strchr(q, '&');
    size_t n = amp ? (size_t)(amp - q) : strlen(q);
    const char *eq = memchr(q, '=', n);
    size_t kn = eq ? (size_t)(eq - q) : n;
    char key[256], val[4096];
    long kl = pct_decode(q, kn, key, sizeof key, 1);
    long vl = eq ? pct_decode(eq + 1, n - kn - 1, val, sizeof val, 1) : 0;
    if (!eq) val[0] = '\0';
    if (kl < 0 || vl < 0) {
      snprintf(err->path, sizeof err->path, "%.*s", (int)(kn < 100 ? kn : 100), q);
      err->msg = "bad percent-encoding in the query string";
      return SB_EINVAL;
    }
    if (kl > 0) {
      int bound = r->body && strcmp(r->body, "*") == 0;
      for (unsigned v = 0; v < r->nvars && !bound; v++)
        bound = strcmp(r->vars[v].field, key) == 0;
      if (r->body && !bound) bound = strcmp(r->body, key) == 0;
      if (bound) {
        snprintf(err->path, sizeof err->path, "%.*s", (int)(sizeof err->path - 1), key);
        err->msg = "field is bound by the path or the body, not the query";
        return SB_EINVAL;
      }
      int rc2 = sb_pbjson_set_text(rc->call->request, key, (size_t)kl, val, (size_t)vl,
                                   &rc->call->alloc, err);
      /* Unknown query parameters follow the same policy as unknown JSON members. */
      if (rc2 == SB_ENOTFOUND && (rc->call->rpc->json_flags & SB_PBJSON_IGNORE_UNKNOWN)) rc2 = 0;
      if (rc2) return rc2;
    }
    q += n + (amp ? 1 : 0);
  }
  return 0;
}

static int media_is_json(const char *ct) {
  if (!ct) return 1; /* a body without a type is taken as JSON */
  size_t n = strcspn(ct, ";");
  while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
    n--;
  if (n == 16 && strncasecmp(ct, "application/json", 16) == 0) return 1;
  return n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0;
}

/* Idempotency-Key on a non-safe request: replays a stored response, refuses a reused or busy
 * key, or records the key as pending. Returns 1 when it answered (the call is not run). */
static int idempotency(sb_http_req_t *req, rest_call_t *rc) {
  const char *m = sb_http_req_method(req);
  size_t klen = 0;
  const char *key = sb_http_req_header(req, "idempotency-key", &klen);
  if (!key || !strcmp(m, "GET") || !strcmp(m, "HEAD") || !strcmp(m, "OPTIONS")) return 0;
  sb_call_t *call = rc->call;
  if (klen == 0 || klen > SB_IDEM_MAX_KEY) {
    respond_json_error(req, SB_CODE_INVALID_ARGUMENT, "must be 1 to 255 characters",
                       "Idempotency-Key");
    return 1;
  }
  /* The same request: method, path, query and body bytes. */
  uint64_t fp = sb_fnv1a(SB_FNV_SEED, m, strlen(m) + 1);
  fp = sb_fnv1a(fp, sb_http_req_path(req), strlen(sb_http_req_path(req)) + 1);
  fp = sb_fnv1a(fp, sb_http_req_query(req), strlen(sb_http_req_query(req)) + 1);
  fp = sb_fnv1a(fp, sb_buf_head(&rc->body), sb_buf_pending(&rc->body));
  sb_idem_response_t stored;
  int r = sb__idem_begin(call->rpc->idem, call->method->path, key, fp, uv_now(call->loop), &stored);
  switch (r) {
  case SB_IDEM_NEW:
    rc->idem_key = sb_call_strdup(call, key);
    if (!rc->idem_key) {
      sb__idem_abandon(call->rpc->idem, call->method->path, key);
      respond_json_error(req, SB_CODE_RESOURCE_EXHAUSTED, "out of memory", NULL);
      return 1;
    }
    return 0;
  case SB_IDEM_REPLAY:
    sb_http_res_header(req, "idempotent-replayed", "true");
    sb_http_respond(req, stored.status, stored.content_type[0] ? stored.content_type : NULL,
                    sb_buf_head(&stored.body), sb_buf_pending(&stored.body));
    sb_buf_free(&stored.body);
    return 1;
  case SB_IDEM_MISMATCH:
    respond_json_error_status(req, 422, SB_CODE_INVALID_ARGUMENT,
                              "this key was used for a different request", "Idempotency-Key");
    return 1;
  case SB_IDEM_PENDING:
    respond_json_error_status(req, 409, SB_CODE_ABORTED,
                              "a request with this key is still in progress", "Idempotency-Key");
    return 1;
  default:
    respond_json_error(req, SB_CODE_RESOURCE_EXHAUSTED, "out of memory", NULL);
    return 1;
  }
}

/* The body is complete: build the request message and run the handler. */
static void on_end(sb_http_req_t *req, void *ud) {
  rest_call_t *rc = ud;
  sb_call_t *call = rc->call;
  const route_t *r = rc->route;
  sb_pbjson_err_t err;
  memset(&err, 0, sizeof err);
  int bad = 0;
  if (rc->aborted) {
    respond_json_error(req, SB_CODE_RESOURCE_EXHAUSTED, "out of memory", NULL);
    goto drop;
  }
  if (r->body && sb_buf_pending(&rc->body) > 0) {
    if (!media_is_json(sb_http_req_header(req, "content-type", NULL))) {
      static const char unsupported[] =
          "{\"code\":3,\"message\":\"content-type must be application/json\",\"details\":[]}";
      sb_http_respond(req, 415, "application/json", unsupported, sizeof unsupported - 1);
      goto drop;
    }
    if (strcmp(r->body, "*") == 0) {
      bad = sb_pbjson_decode(sb_buf_head(&rc->body), sb_buf_pending(&rc->body), call->request,
                             &call->alloc, call->rpc->json_flags, &err);
    } else {
      /* Decode {"<field>": body}: the field's own JSON rules apply, and error paths name it. */
      sb_buf_t doc = {0};
      sb_jw_t w;
      sb_jw_init(&w, &doc);
      sb_jw_obj_begin(&w);
      sb_jw_key(&w, r->body, strlen(r->body));
      sb_jw_raw(&w, (const char *)sb_buf_head(&rc->body), sb_buf_pending(&rc->body));
      sb_jw_obj_end(&w);
      bad = w.err ? SB_ENOMEM
                  : sb_pbjson_decode(sb_buf_head(&doc), sb_buf_pending(&doc), call->request,
                                     &call->alloc, call->rpc->json_flags, &err);
      sb_buf_free(&doc);
    }
  }
  /* Path variables win over the body (they are applied after it). */
  if (!bad) {
    span_t segs[SB_REST_MAX_SEGS], caps[SB_REST_MAX_VARS];
    unsigned n = 0;
    split(sb_http_req_path(req), segs, &n);
    match(r, segs, n, caps);
    for (unsigned v = 0; v < r->nvars && !bad; v++) {
      char val[2048];
      long vl = pct_decode(caps[v].p, caps[v].n, val, sizeof val, 0);
      if (vl < 0) {
        snprintf(err.path, sizeof err.path, "%.*s", (int)(sizeof err.path - 1), r->vars[v].field);
        err.msg = "bad percent-encoding in the path";
        bad = SB_EINVAL;
        break;
      }
      bad = sb_pbjson_set_text(call->request, r->vars[v].field, strlen(r->vars[v].field), val,
                               (size_t)vl, &call->alloc, &err);
    }
  }
  if (!bad) bad = apply_query(req, rc, &err);
  if (!bad && call->method->kind == SB_METHOD_UNARY && idempotency(req, rc)) goto drop;
  if (bad) {
    respond_json_error(req,
                       bad == SB_ENOMEM ? SB_CODE_RESOURCE_EXHAUSTED : SB_CODE_INVALID_ARGUMENT,
                       err.msg ? err.msg : "invalid request", err.path);
    goto drop;
  }
  sb_buf_free(&rc->body);
  if (call->method->kind == SB_METHOD_SERVER_STREAMING) {
    const char *acc = sb_http_req_header(req, "accept", NULL);
    rc->sse = acc && strstr(acc, "text/event-stream") != NULL;
    rc->ndjson = !rc->sse;
  }
  rc->invoked = 1;
  sb__call_invoke(call); /* the call owns rc from here; it may be freed on return */
  return;
drop:
  sb_buf_free(&rc->body);
  sb__call_free(call);
}

static void on_abort_before(sb_http_req_t *req, int err, void *ud) {
  rest_call_t *rc = ud;
  (void)err;
  if (rc->invoked) {
    /* The handler still holds the call; it finishes it (perhaps from on_cancel, told here),
     * and rest_finish ends the exchange. */
    sb__call_cancel(rc->call);
    return;
  }
  /* The body was still arriving: nobody else will release the call or the exchange. */
  sb_call_t *call = rc->call;
  sb_buf_free(&rc->body);
  sb_http_res_end(req);
  sb__call_free(call);
}

/* Copies the members of object path (outer, then inner when inner is not NULL) of doc into w,
 * skipping names already in seen (a sb_buf of NUL-terminated names). Returns 0 or -1 when doc
 * is not valid JSON. */
static int copy_members(sb_jw_t *w, const char *doc, const char *outer, const char *inner,
                        sb_buf_t *seen) {
  sb_jr_t r;
  sb_jr_init(&r, doc, strlen(doc));
  int rc = -1, depth_ok = 0;
  sb_jtok_t t = sb_jr_next(&r);
  if (t != SB_JT_OBJ_BEGIN) goto out;
  const char *want = outer;
  for (;;) {
    t = sb_jr_next(&r);
    if (t == SB_JT_OBJ_END) {
      rc = 0;
      goto out;
    }
    if (t != SB_JT_KEY) goto out;
    int match = strlen(want) == r.len && memcmp(r.str, want, r.len) == 0;
    t = sb_jr_next(&r);
    if (!match || t != SB_JT_OBJ_BEGIN) {
      if (sb_jr_skip(&r, t)) goto out;
      continue;
    }
    if (want == outer && inner) { /* descend one level */
      want = inner;
      continue;
    }
    depth_ok = 1;
    break;
  }
  while (depth_ok) {
    t = sb_jr_next(&r);
    if (t == SB_JT_OBJ_END) {
      rc = 0;
      break;
    }
    if (t != SB_JT_KEY) break;
    char name[512];
    snprintf(name, sizeof name, "%.*s", (int)r.len, r.str);
    int dup = 0;
    for (size_t off = 0; off < sb_buf_pending(seen) && !dup;
         off += strlen((const char *)sb_buf_head(seen) + off) + 1)
      dup = strcmp((const char *)sb_buf_head(seen) + off, name) == 0;
    const uint8_t *vstart = r.p;
    t = sb_jr_next(&r);
    if (sb_jr_skip(&r, t)) break;
    if (dup) continue;
    sb_buf_append(seen, name, strlen(name) + 1);
    while (vstart < r.p && (*vstart == ':' || *vstart == ' ' || *vstart == '\n' ||
                            *vstart == '\t' || *vstart == '\r'))
      vstart++;
    sb_jw_key(w, name, strlen(name));
    sb_jw_raw(w, (const char *)vstart, (size_t)(r.p - vstart));
  }
out:
  sb_jr_free(&r);
  return rc;
}

/* GET /openapi.json: the generated document of the registered contract, or, with several
 * contract files, one document merging their paths and schemas. */
static void serve_openapi(sb_http_req_t *req, sb_rpc_t *rpc) {
  const char *docs[64];
  size_t nd = 0;
  for (size_t i = 0; i < rpc->nsvcs && nd < 64; i++) {
    const char *d = rpc->svcs[i].desc->openapi_json;
    int known = 0;
    for (size_t j = 0; j < nd && !known; j++)
      known = docs[j] == d;
    if (d && !known) docs[nd++] = d;
  }
  if (nd == 0) {
    /* A valid document with no paths, so /docs shows an empty API rather than an error. */
    static const char empty[] = "{\"openapi\":\"3.1.0\",\"info\":{\"title\":\"switchboard "
                                "services\",\"version\":\"1\"},\"paths\":{}}";
    sb_http_respond(req, 200, "application/json", empty, sizeof empty - 1);
    return;
  }
  if (nd == 1) {
    sb_http_respond(req, 200, "application/json", docs[0], strlen(docs[0]));
    return;
  }
  sb_buf_t out = {0}, seen_paths = {0}, seen_schemas = {0};
  sb_jw_t w;
  sb_jw_init(&w, &out);
  sb_jw_obj_begin(&w);
  sb_jw_key(&w, "openapi", 7);
  sb_jw_str(&w, "3.1.0", 5);
  sb_jw_key(&w, "info", 4);
  static const char info[] = "{\"title\":\"switchboard services\",\"version\":\"1\"}";
  sb_jw_raw(&w, info, sizeof info - 1);
  sb_jw_key(&w, "paths", 5);
  sb_jw_obj_begin(&w);
  int bad = 0;
  for (size_t i = 0; i < nd; i++)
    bad |= copy_members(&w, docs[i], "paths", NULL, &seen_paths);
  sb_jw_obj_end(&w);
  sb_jw_key(&w, "components", 10);
  sb_jw_obj_begin(&w);
  sb_jw_key(&w, "schemas", 7);
  sb_jw_obj_begin(&w);
  for (size_t i = 0; i < nd; i++)
    bad |= copy_members(&w, docs[i], "components", "schemas", &seen_schemas);
  sb_jw_obj_end(&w);
  sb_jw_obj_end(&w);
  sb_jw_obj_end(&w);
  if (bad || sb_jw_error(&w))
    respond_json_error(req, SB_CODE_INTERNAL, "an OpenAPI document could not be merged", NULL);
  else
    sb_http_respond(req, 200, "application/json", sb_buf_head(&out), sb_buf_pending(&out));
  sb_buf_free(&out);
  sb_buf_free(&seen_paths);
  sb_buf_free(&seen_schemas);
}

void sb__rest_handle(sb_http_req_t *req, void *ud) {
  sb_rpc_t *rpc = ud;
  if (strcmp(sb_http_req_path(req), "/openapi.json") == 0 &&
      (strcmp(sb_http_req_method(req), "GET") == 0 ||
       strcmp(sb_http_req_method(req), "HEAD") == 0)) {
    serve_openapi(req, rpc);
    return;
  }
  if (sb__docs_handle(req, rpc)) return; /* /docs and /docs/<asset>: Swagger UI (docs.c) */
  struct sb_rest *t = rpc->rest;
  span_t segs[SB_REST_MAX_SEGS], caps[SB_REST_MAX_VARS];
  unsigned n = 0;
  const char *method = sb_http_req_method(req);
  const route_t *found = NULL;
  int path_known = 0;
  if (t && split(sb_http_req_path(req), segs, &n) == 0) {
    for (size_t i = 0; i < t->n && !found; i++) {
      const route_t *r = &t->routes[i];
      span_t copy[SB_REST_MAX_SEGS];
      memcpy(copy, segs, n * sizeof *segs);
      if (!match(r, copy, n, caps)) continue;
      path_known = 1;
      if (strcmp(r->method, method) == 0 ||
          (strcmp(method, "HEAD") == 0 && strcmp(r->method, "GET") == 0))
        found = r;
    }
  }
  if (!found) {
    if (path_known)
      respond_json_error_status(req, 405, SB_CODE_UNIMPLEMENTED, "method not allowed for this path",
                                NULL);
    else
      respond_json_error(req, SB_CODE_NOT_FOUND, "no route for this path", NULL);
    return;
  }
  sb_call_t *call =
      sb__call_new(rpc, found->svc, found->mi, &rest_ops, NULL, sb_http_req_loop(req));
  rest_call_t *rc = call ? sb_call_alloc(call, sizeof *rc) : NULL;
  if (!rc) {
    if (call) sb__call_free(call);
    respond_json_error(req, SB_CODE_RESOURCE_EXHAUSTED, "out of memory", NULL);
    return;
  }
  memset(rc, 0, sizeof *rc);
  rc->req = req;
  rc->call = call;
  rc->route = found;
  call->fe = rc;
  sb_http_callbacks_t cbs = {
      .on_data = on_body, .on_end = on_end, .on_abort = on_abort_before, .ud = rc};
  sb_http_req_set_callbacks(req, &cbs);
}
