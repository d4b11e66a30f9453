/*
 * The RPC registry and the call object. Protocol front-ends match requests to methods and
 * create calls; this module owns what is common to all of them: the service table, the call
 * lifecycle and the status codes.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contract/pbjson.h"
#include "core/buf.h"
#include "protocols/rest/docs.h"
#include "rpc/idempotency.h"
#include "rpc/rpc_int.h"
#include "switchboard/error.h"
#include "switchboard/log.h"

const char *sb_code_name(sb_code_t code) {
  static const char *const names[] = {"OK",
                                      "CANCELLED",
                                      "UNKNOWN",
                                      "INVALID_ARGUMENT",
                                      "DEADLINE_EXCEEDED",
                                      "NOT_FOUND",
                                      "ALREADY_EXISTS",
                                      "PERMISSION_DENIED",
                                      "RESOURCE_EXHAUSTED",
                                      "FAILED_PRECONDITION",
                                      "ABORTED",
                                      "OUT_OF_RANGE",
                                      "UNIMPLEMENTED",
                                      "INTERNAL",
                                      "UNAVAILABLE",
                                      "DATA_LOSS",
                                      "UNAUTHENTICATED"};
  return (unsigned)code < sizeof names / sizeof names[0] ? names[code] : "UNKNOWN";
}

int sb_code_http_status(sb_code_t code) {
  /* Google API design guide, "Handling errors". */
  static const int http[] = {200, 499, 500, 400, 504, 404, 409, 403, 429,
                             400, 409, 400, 501, 500, 503, 500, 401};
  return (unsigned)code < sizeof http / sizeof http[0] ? http[code] : 500;
}

/* Every request the RPC layer serves comes here: tRPC owns its base path, gRPC asks by its
 * content-type, everything else is REST. */
static void route_http(sb_http_req_t *req, void *ud) {
  sb_rpc_t *rpc = ud;
  for (size_t i = 0; i < rpc->n_frontends; i++)
    if (rpc->frontends[i].claim(req, rpc->frontends[i].ud)) {
      rpc->frontends[i].handler(req, rpc->frontends[i].ud);
      return;
    }
  if (sb__trpc_match(ud, req))
    sb__trpc_handle(req, ud);
  else if (sb__grpc_match(ud, req))
    sb__grpc_handle(req, ud);
  else
    sb__rest_handle(req, ud);
}

int sb_rpc_new(sb_server_t *srv, sb_rpc_t **out) {
  sb_rpc_t *rpc = calloc(1, sizeof *rpc);
  if (!rpc) return SB_ENOMEM;
  rpc->srv = srv;
  if (sb__idem_new(0, 0, &rpc->idem)) {
    free(rpc);
    return SB_ENOMEM;
  }
  /* REST paths are arbitrary, so the front-end takes every path the server does not route
   * more specifically (/healthz and /metrics stay built-in). */
  int rc = sb_server_route(srv, "/", route_http, rpc);
  if (rc) {
    sb__idem_free(rpc->idem);
    free(rpc);
    return rc;
  }
  *out = rpc;
  return 0;
}

int sb_rpc_add_frontend(sb_rpc_t *rpc, sb_rpc_claim_cb claim, sb_http_handler_cb handler,
                        void *ud) {
  if (!rpc || !claim || !handler) return SB_EINVAL;
  if (rpc->n_frontends == SB__RPC_MAX_FRONTENDS) return SB_ELIMIT;
  rpc->frontends[rpc->n_frontends++] = (sb__frontend_t){claim, handler, ud};
  return 0;
}

void sb_rpc_free(sb_rpc_t *rpc) {
  if (!rpc) return;
  sb__rest_free(rpc);
  sb__trpc_free(rpc);
  sb__idem_free(rpc->idem);
  sb__patterns_free(&rpc->patterns);
  sb__docs_free(rpc->docs);
  free(rpc->svcs);
  free(rpc);
}

int sb_rpc_set_idempotency(sb_rpc_t *rpc, uint64_t window_ms, size_t max_bytes) {
  sb_idem_t *n;
  if (sb__idem_new(window_ms, max_bytes, &n)) return SB_ENOMEM;
  sb__idem_free(rpc->idem);
  rpc->idem = n;
  return 0;
}

void sb_rpc_set_ignore_unknown_fields(sb_rpc_t *rpc, int ignore) {
  if (ignore)
    rpc->json_flags |= SB_PBJSON_IGNORE_UNKNOWN;
  else
    rpc->json_flags &= ~(unsigned)SB_PBJSON_IGNORE_UNKNOWN;
}

int sb_rpc_register(sb_rpc_t *rpc, const sb_service_desc_t *desc, const void *handlers, void *ud) {
  if (!desc || !desc->full_name || !handlers || (desc->n_methods && !desc->dispatch))
    return SB_EINVAL;
  for (size_t i = 0; i < rpc->nsvcs; i++)
    if (strcmp(rpc->svcs[i].desc->full_name, desc->full_name) == 0) return SB_EINVAL;
  /* The generator checked every pattern with the same regcomp(); a failure here means the
   * tables and this library disagree, and the service must not run without its rules. */
  const char *bad = NULL;
  int prc = sb__patterns_add(&rpc->patterns, desc, &bad);
  if (prc) {
    if (bad) {
      char q[256];
      sb_log(SB_LOG_ERROR, "rpc_bad_pattern", "service=%s pattern=%s", desc->full_name,
             sb_log_quote(q, sizeof q, bad, (unsigned)strlen(bad)));
    }
    return prc;
  }
  for (size_t i = 0; i < desc->n_methods; i++)
    if (sb_pbjson_add_types(desc->methods[i].input) || sb_pbjson_add_types(desc->methods[i].output))
      return SB_ENOMEM;
  for (size_t i = 0; i < desc->n_json_names; i++) {
    const sb_json_name_t *jn = &desc->json_names[i];
    if (sb_pbjson_add_json_name(jn->desc, jn->number, jn->json_name)) return SB_ENOMEM;
  }
  if (rpc->nsvcs == rpc->cap) {
    size_t ncap = rpc->cap ? rpc->cap * 2 : 4;
    sb__svc_t *n = realloc(rpc->svcs, ncap * sizeof *n);
    if (!n) return SB_ENOMEM;
    /* Routes point at entries of this array: they are rebuilt below when it moves. */
    rpc->svcs = n;
    rpc->cap = ncap;
  }
  rpc->svcs[rpc->nsvcs++] = (sb__svc_t){desc, handlers, ud};
  sb__rest_free(rpc);
  for (size_t i = 0; i < rpc->nsvcs; i++) {
    int rc = sb__rest_add_service(rpc, &rpc->svcs[i]);
    if (rc) {
      rpc->nsvcs--;
      sb__rest_free(rpc);
      for (size_t j = 0; j < rpc->nsvcs; j++)
        sb__rest_add_service(rpc, &rpc->svcs[j]);
      return rc;
    }
  }
  return sb__trpc_rebuild(rpc);
}

static void *arena_alloc(void *ud, size_t n) {
  return sb_arena_alloc(ud, n);
}
static void arena_free(void *ud, void *p) {
  (void)ud;
  (void)p; /* released with the arena */
}

sb_call_t *sb__call_new(sb_rpc_t *rpc, const sb__svc_t *svc, size_t mi, const sb__call_ops_t *ops,
                        void *fe, uv_loop_t *loop) {
  sb_call_t *call = malloc(sizeof *call);
  if (!call) return NULL;
  memset(call, 0, offsetof(sb_call_t, arena));
  sb_arena_init(&call->arena);
  call->rpc = rpc;
  call->svc = svc;
  call->method = &svc->desc->methods[mi];
  call->mi = mi;
  call->ops = ops;
  call->fe = fe;
  call->loop = loop;
  call->alloc = (ProtobufCAllocator){arena_alloc, arena_free, &call->arena};
  const ProtobufCMessageDescriptor *in = call->method->input, *out = call->method->output;
  call->request = sb_arena_alloc(&call->arena, in->sizeof_message);
  call->response = sb_arena_alloc(&call->arena, out->sizeof_message);
  if (!call->request || !call->response) {
    sb__call_free(call);
    return NULL;
  }
  protobuf_c_message_init(in, call->request);
  protobuf_c_message_init(out, call->response);
  return call;
}

void sb__call_free(sb_call_t *call) {
  if (call->hold) {
    call->free_pending = 1;
    return;
  }
  sb_arena_free(&call->arena);
  free(call);
}

int sb__call_validate(sb_call_t *call, const ProtobufCMessage *msg) {
  const sb_service_desc_t *desc = call->svc->desc;
  if (!desc->n_rules) return 0;
  int n = sb__validate(&call->rpc->patterns, desc, call, msg);
  if (n < 0) {
    sb_call_finish(call, SB_CODE_RESOURCE_EXHAUSTED, "out of memory");
    return 1;
  }
  if (n == 0) return 0;
  /* The message names the first violation; the details list all of them. */
  char text[384];
  const sb__violation_t *first = call->violations;
  if (n == 1)
    snprintf(text, sizeof text, "invalid request: %s: %s", first->field, first->description);
  else
    snprintf(text, sizeof text, "invalid request: %s: %s (and %d more violation%s)", first->field,
             first->description, n - 1, n == 2 ? "" : "s");
  sb_call_finish(call, SB_CODE_INVALID_ARGUMENT, text);
  return 1;
}

void sb__call_invoke(sb_call_t *call) {
  /* Methods that receive a stream validate each message as it arrives (sb__call_deliver);
   * here the request is the whole, already decoded, input. */
  sb_method_kind_t k = call->method->kind;
  if ((k == SB_METHOD_UNARY || k == SB_METHOD_SERVER_STREAMING) &&
      sb__call_validate(call, call->request))
    return;
  sb__call_dispatch(call);
}

int sb_call_field_violation(sb_call_t *call, const char *field, const char *description) {
  if (call->finished) return SB_ESTATE;
  sb__violation_t *v = sb_arena_alloc(&call->arena, sizeof *v);
  if (!v) return SB_ENOMEM;
  v->next = NULL;
  v->field = sb_arena_strndup(&call->arena, field ? field : "", field ? strlen(field) : 0);
  v->description = sb_arena_strndup(&call->arena, description ? description : "",
                                    description ? strlen(description) : 0);
  if (!v->field || !v->description) return SB_ENOMEM;
  if (call->last_violation)
    call->last_violation->next = v;
  else
    call->violations = v;
  call->last_violation = v;
  call->n_violations++;
  return 0;
}

void *sb_call_alloc(sb_call_t *call, size_t n) {
  return sb_arena_alloc(&call->arena, n);
}

char *sb_call_strdup(sb_call_t *call, const char *s) {
  return sb_arena_strndup(&call->arena, s, strlen(s));
}

/* Protobuf wire helpers for the one message the RPC layer writes itself; *err is sticky. */
static void pb_varint(sb_buf_t *b, uint64_t v, int *err) {
  uint8_t tmp[10];
  size_t n = 0;
  do {
    tmp[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
    v >>= 7;
  } while (v);
  if (!*err) *err = sb_buf_append(b, tmp, n);
}

static void pb_bytes(sb_buf_t *b, uint32_t field, const void *p, size_t n, int *err) {
  pb_varint(b, (uint64_t)field << 3 | 2, err);
  pb_varint(b, n, err);
  if (n && !*err) *err = sb_buf_append(b, p, n);
}

/* The call's field violations as a serialized google.rpc.Status (code 1, message 2, details
 * 3) holding one google.rpc.BadRequest (field_violations 1: field 1, description 2) in an
 * Any, the form gRPC clients read from grpc-status-details-bin. Returns 0 or SB_ENOMEM. */
static int status_details(const sb_call_t *call, sb_code_t code, const char *message,
                          sb_buf_t *out) {
  sb_buf_t bad = {0}, any = {0}, v = {0};
  int err = 0;
  for (const sb__violation_t *x = call->violations; x; x = x->next) {
    sb_buf_reset(&v);
    pb_bytes(&v, 1, x->field, strlen(x->field), &err);
    pb_bytes(&v, 2, x->description, strlen(x->description), &err);
    pb_bytes(&bad, 1, sb_buf_head(&v), sb_buf_pending(&v), &err);
  }
  static const char type_url[] = "type.googleapis.com/google.rpc.BadRequest";
  pb_bytes(&any, 1, type_url, sizeof type_url - 1, &err);
  pb_bytes(&any, 2, sb_buf_head(&bad), sb_buf_pending(&bad), &err);
  pb_varint(out, 1 << 3 | 0, &err);
  pb_varint(out, (uint64_t)code, &err);
  if (message) pb_bytes(out, 2, message, strlen(message), &err);
  pb_bytes(out, 3, sb_buf_head(&any), sb_buf_pending(&any), &err);
  sb_buf_free(&bad);
  sb_buf_free(&any);
  sb_buf_free(&v);
  return err ? SB_ENOMEM : 0;
}

void sb_call_finish(sb_call_t *call, sb_code_t code, const char *message) {
  if (call->finished) return;
  /* Field violations travel as the error's details: REST writes them into its JSON body;
   * for gRPC they become grpc-status-details-bin, unless the handler set its own. */
  if (code != SB_CODE_OK && call->violations) {
    int own = 0;
    for (const sb__md_t *md = call->res_trailers; md && !own; md = md->next)
      own = strcmp(md->key, "grpc-status-details-bin") == 0;
    sb_buf_t st = {0};
    if (!own && !status_details(call, code, message, &st))
      sb_call_set_trailer(call, "grpc-status-details-bin", sb_buf_head(&st), sb_buf_pending(&st));
    sb_buf_free(&st);
  }
  call->finished = 1;
  call->ops->finish(call, code, message);
}

int sb_call_send(sb_call_t *call, const ProtobufCMessage *msg) {
  if (call->finished) return SB_ESTATE;
  if (call->cancelled) return SB_ECANCELED;
  if (call->method->kind != SB_METHOD_SERVER_STREAMING &&
      call->method->kind != SB_METHOD_BIDI_STREAMING)
    return SB_ESTATE;
  return call->ops->send(call, msg);
}

const char *sb_call_metadata(const sb_call_t *call, const char *key) {
  return call->ops->metadata ? call->ops->metadata(call, key) : NULL;
}

int sb_call_cancelled(const sb_call_t *call) {
  return call->cancelled;
}
struct uv_loop_s *sb_call_loop(const sb_call_t *call) {
  return call->loop;
}
const sb_method_desc_t *sb_call_method(const sb_call_t *call) {
  return call->method;
}
