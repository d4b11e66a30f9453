/*
 * Private structures of the RPC layer, shared with the protocol front-ends that create calls.
 *
 * A call is created by a front-end once it has matched a request to a method. The front-end
 * decodes the request message into call->request, then sb__call_invoke() runs the handler.
 * The handler completes with sb_call_finish(), which hands the outcome to the front-end's
 * ops->finish; the front-end answers in its protocol and releases the call with
 * sb__call_free(). Everything the call allocates (messages, strings, arrays) comes from its
 * arena and goes away with it.
 */
#ifndef SB_RPC_INT_H
#define SB_RPC_INT_H

#include <uv.h>

#include "core/arena.h"
#include "rpc/validate.h"
#include "switchboard/rpc.h"

typedef struct sb__call_ops {
  /* Sends the outcome (response or error) and frees the call with sb__call_free(). */
  void (*finish)(sb_call_t *call, sb_code_t code, const char *message);
  /* Sends one message of a server stream. Returns as sb_call_send(). */
  int (*send)(sb_call_t *call, const ProtobufCMessage *msg);
  /* Request metadata lookup (lower-case key), or NULL. */
  const char *(*metadata)(const sb_call_t *call, const char *key);
} sb__call_ops_t;

/* A registered service. */
typedef struct sb__svc {
  const sb_service_desc_t *desc; /* borrowed */
  const void *handlers;          /* borrowed generated handler table (desc->dispatch reads it) */
  void *ud;                      /* passed to handlers */
} sb__svc_t;

struct sb_rest; /* the REST front-end's route table */
struct sb_idem; /* idempotency-key store (rpc/idempotency.h) */
struct sb_docs; /* /docs state: Swagger UI's directory and cached files (protocols/rest/docs.h) */

struct sb_rpc {
  sb_server_t *srv; /* borrowed */
  sb__svc_t *svcs;  /* owned array */
  size_t nsvcs, cap;
  struct sb_rest *rest;    /* owned by the REST front-end; built at registration */
  struct sb_idem *idem;    /* owned; shared by every worker (it locks itself) */
  sb__patterns_t patterns; /* owned; compiled validation patterns, read-only once started */
  unsigned json_flags;     /* SB_PBJSON_* flags for JSON request decoding; set before start */
  struct sb_docs *docs;    /* owned; created on first use; guarded by docs.c's lock */
};

/* A google.rpc.BadRequest field violation attached to a call (sb_call_field_violation). */
typedef struct sb__violation {
  struct sb__violation *next; /* in the order they were added */
  const char *field;          /* .proto-name path; call arena */
  const char *description;    /* call arena */
} sb__violation_t;

struct sb_call {
  sb_rpc_t *rpc;                   /* borrowed */
  const sb__svc_t *svc;            /* borrowed */
  const sb_method_desc_t *method;  /* borrowed */
  size_t mi;                       /* index of method in svc->desc->methods */
  const sb__call_ops_t *ops;       /* the front-end that created the call */
  void *fe;                        /* front-end state, owned by the front-end */
  uv_loop_t *loop;                 /* the worker loop of the call */
  ProtobufCAllocator alloc;        /* allocates from arena; free is a no-op */
  ProtobufCMessage *request;       /* decoded request, in the arena */
  ProtobufCMessage *response;      /* initialised response, in the arena */
  sb__violation_t *violations;     /* field violations for the error's details; call arena */
  sb__violation_t *last_violation; /* the list's tail, NULL when empty */
  size_t n_violations;             /* length of the list */
  unsigned finished : 1;           /* sb_call_finish() ran */
  unsigned cancelled : 1;          /* the client went away */
  sb_arena_t arena;                /* owns everything above that is not borrowed; last */
};

/* Creates a call for method index mi of svc. Returns NULL when out of memory. */
sb_call_t *sb__call_new(sb_rpc_t *rpc, const sb__svc_t *svc, size_t mi, const sb__call_ops_t *ops,
                        void *fe, uv_loop_t *loop);
/* Runs the handler (or finishes UNIMPLEMENTED). The call may be freed when it returns. */
void sb__call_invoke(sb_call_t *call);
void sb__call_free(sb_call_t *call);

/* ---- REST front-end (protocols/rest) ---- */
/* Adds svc's routes to the REST table. Returns 0, SB_EINVAL (bad template) or SB_ENOMEM. */
int sb__rest_add_service(sb_rpc_t *rpc, const sb__svc_t *svc);
void sb__rest_free(sb_rpc_t *rpc);
/* The HTTP handler serving every REST route of rpc (ud = rpc). */
void sb__rest_handle(sb_http_req_t *req, void *ud);

#endif
