/*
 * The RPC registry and the call object. Protocol front-ends match requests to methods and
 * create calls; this module owns what is common to all of them: the service table, the call
 * lifecycle and the status codes.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "rpc/idempotency.h"
#include "rpc/rpc_int.h"
#include "switchboard/error.h"

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

/* Every request the RPC layer serves comes here: gRPC asks by its content-type, everything
 * else is REST. */
static void route_http(sb_http_req_t *req, void *ud) {
  if (sb__grpc_match(ud, req))
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

void sb_rpc_free(sb_rpc_t *rpc) {
  if (!rpc) return;
  sb__rest_free(rpc);
  sb__idem_free(rpc->idem);
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

int sb_rpc_register(sb_rpc_t *rpc, const sb_service_desc_t *desc, const void *handlers, void *ud) {
  if (!desc || !desc->full_name || !handlers || (desc->n_methods && !desc->dispatch))
    return SB_EINVAL;
  for (size_t i = 0; i < rpc->nsvcs; i++)
    if (strcmp(rpc->svcs[i].desc->full_name, desc->full_name) == 0) return SB_EINVAL;
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
  return 0;
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

void sb__call_invoke(sb_call_t *call) {
  sb__call_dispatch(call);
}

void *sb_call_alloc(sb_call_t *call, size_t n) {
  return sb_arena_alloc(&call->arena, n);
}

char *sb_call_strdup(sb_call_t *call, const char *s) {
  return sb_arena_strndup(&call->arena, s, strlen(s));
}

void sb_call_finish(sb_call_t *call, sb_code_t code, const char *message) {
  if (call->finished) return;
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
