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
  /* Pauses or resumes the request stream; NULL when the front-end cannot. Returns as
   * sb_call_pause_recv(). */
  int (*pause)(sb_call_t *call, int paused);
  /* 1: the front-end delivers request messages of streaming-input methods one by one with
   * sb__call_deliver()/sb__call_deliver_end(); 0: it decodes one whole request into
   * call->request, which sb__call_invoke() then delivers as the only message. */
  unsigned stream_input;
} sb__call_ops_t;

/* One response header or trailer set by the handler (sb_call_set_header/_trailer). */
typedef struct sb__md {
  struct sb__md *next; /* in set order; the list and its strings live in the call's arena */
  const char *key;     /* lower-case, NUL-terminated */
  const uint8_t *val;  /* len bytes (binary for "-bin" keys), NUL-terminated */
  size_t len;          /* bytes of val */
} sb__md_t;

/* A registered service. */
typedef struct sb__svc {
  const sb_service_desc_t *desc; /* borrowed */
  const void *handlers;          /* borrowed generated handler table (desc->dispatch reads it) */
  void *ud;                      /* passed to handlers */
} sb__svc_t;

struct sb_rest; /* the REST front-end's route table */
struct sb_idem; /* idempotency-key store (rpc/idempotency.h) */
struct sb_docs; /* /docs state: Swagger UI's directory and cached files (protocols/rest/docs.h) */
struct sb_trpc; /* the tRPC front-end's base path and procedure table (protocols/trpc) */

/* A front-end that claims requests before gRPC and REST (sb_rpc_add_frontend). */
typedef struct sb__frontend {
  sb_rpc_claim_cb claim;      /* 1: the request is this front-end's */
  sb_http_handler_cb handler; /* then takes the exchange */
  void *ud;                   /* borrowed; passed to both */
} sb__frontend_t;

#define SB__RPC_MAX_FRONTENDS 8

struct sb_rpc {
  sb_server_t *srv; /* borrowed */
  size_t max_recv;  /* largest gRPC request message in bytes; 0 = SB_RPC_DEFAULT_MAX_RECV */
  sb__svc_t *svcs;  /* owned array */
  size_t nsvcs, cap;
  struct sb_rest *rest;    /* owned by the REST front-end; built at registration */
  struct sb_idem *idem;    /* owned; shared by every worker (it locks itself) */
  sb__patterns_t patterns; /* owned; compiled validation patterns, read-only once started */
  unsigned json_flags;     /* SB_PBJSON_* flags for JSON request decoding; set before start */
  struct sb_docs *docs;    /* owned; created on first use; guarded by docs.c's lock */
  struct sb_trpc *trpc;    /* owned by the tRPC front-end; built at registration */

  sb__frontend_t frontends[SB__RPC_MAX_FRONTENDS]; /* consulted in order; read-only once started */
  size_t n_frontends;                              /* entries of frontends in use */
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
  unsigned free_pending : 1;       /* sb__call_free() ran while held; the last release frees */
  unsigned compress : 1;           /* sb_call_set_compress(): compress sent messages */
  unsigned cancel_told : 1;        /* stream.on_cancel ran (it runs at most once) */
  unsigned headers_out : 1;        /* the front-end sent the response headers */
  unsigned in_compressed : 1;      /* the last request message arrived compressed */
  unsigned hold;                   /* sb__call_hold() count; the call is not freed while > 0 */
  sb_call_stream_t stream;         /* handler's stream callbacks; zero when none */
  sb__md_t *res_headers;           /* response headers set by the handler (arena) */
  sb__md_t *res_trailers;          /* response trailers set by the handler (arena) */
  uint64_t deadline_ms;            /* loop time of the deadline, 0 = none */
  const char *event_id;            /* sb_call_set_event_id() for the next sent message (arena),
                                      or NULL; the front-end clears it once sent */
  sb_arena_t arena;                /* owns everything above that is not borrowed; last */
};

/* Creates a call for method index mi of svc. Returns NULL when out of memory. */
sb_call_t *sb__call_new(sb_rpc_t *rpc, const sb__svc_t *svc, size_t mi, const sb__call_ops_t *ops,
                        void *fe, uv_loop_t *loop);
/* Runs the handler (or finishes UNIMPLEMENTED). The call may be freed when it returns. */
void sb__call_invoke(sb_call_t *call);
/* Frees the call, or, while it is held, marks it to be freed by the last release. */
void sb__call_free(sb_call_t *call);
/* Checks msg (a request message of the call's method) against the contract's validation
 * rules. Returns 0 when it passes, or 1 after finishing the call with INVALID_ARGUMENT (or
 * RESOURCE_EXHAUSTED when out of memory). */
int sb__call_validate(sb_call_t *call, const ProtobufCMessage *msg);

/* ---- streams (rpc/stream.c) ---- */
/* The dispatch step of sb__call_invoke(): calls the handler, answers UNIMPLEMENTED for a
 * missing one, and for front-ends without stream input delivers call->request as the only
 * message of a streaming-input method. The call may be freed when it returns. */
void sb__call_dispatch(sb_call_t *call);
/* Keeps the call alive across code that may finish it (a front-end's delivery loop): a
 * sb__call_free() in between is deferred to the matching release, which may free it. */
void sb__call_hold(sb_call_t *call);
void sb__call_release(sb_call_t *call);
/* Front-end side of a request stream: hands one message (borrowed for the call) to
 * stream.on_message, and the end to stream.on_end. Nothing runs once the call finished. */
void sb__call_deliver(sb_call_t *call, const ProtobufCMessage *msg);
void sb__call_deliver_end(sb_call_t *call);
/* Marks the call cancelled and runs stream.on_cancel once (not after it finished). */
void sb__call_cancel(sb_call_t *call);
/* Runs stream.on_writable (the transport drained after a send returned 1). */
void sb__call_writable(sb_call_t *call);

/* ---- REST front-end (protocols/rest) ---- */
/* Adds svc's routes to the REST table. Returns 0, SB_EINVAL (bad template) or SB_ENOMEM. */
int sb__rest_add_service(sb_rpc_t *rpc, const sb__svc_t *svc);
void sb__rest_free(sb_rpc_t *rpc);
/* The HTTP handler serving every REST route of rpc (ud = rpc). */
void sb__rest_handle(sb_http_req_t *req, void *ud);

/* ---- gRPC front-end (protocols/grpc) ---- */
/* 1 when req is for the gRPC front-end: content-type application/grpc, application/grpc-web or
 * application/grpc-web-text (with or without +subtype), or a CORS preflight for a gRPC method
 * path. */
int sb__grpc_match(sb_rpc_t *rpc, sb_http_req_t *req);
/* The HTTP handler serving gRPC for every registered service (ud = rpc). */
void sb__grpc_handle(sb_http_req_t *req, void *ud);

/* ---- tRPC front-end (protocols/trpc) ---- */
/* Rebuilds the procedure table from rpc->svcs (after each registration). Returns 0 or
 * SB_ENOMEM. */
int sb__trpc_rebuild(sb_rpc_t *rpc);
void sb__trpc_free(sb_rpc_t *rpc);
/* 1 when req's path is the tRPC base path or below it. */
int sb__trpc_match(sb_rpc_t *rpc, sb_http_req_t *req);
/* The HTTP handler serving tRPC for every registered service (ud = rpc). */
void sb__trpc_handle(sb_http_req_t *req, void *ud);

#endif
