/*
 * switchboard RPC: services described by a .proto contract, implemented once in C, and served
 * by every call protocol (REST/JSON, gRPC, gRPC-Web and Connect now; tRPC on the same
 * tables).
 *
 * The contract pipeline (protoc + protoc-c + protoc-gen-switchboard) generates, per service:
 *   - the message structs (protobuf-c),
 *   - an sb_service_desc_t: methods, their message descriptors, HTTP bindings, options,
 *     the serialized FileDescriptorProto and the OpenAPI document,
 *   - a typed handler table and a register function that hands it to sb_rpc_register().
 *
 * Handlers. A handler receives the decoded request and a response message that the framework
 * has allocated and initialised. It fills the response (strings, bytes and arrays it sets
 * must come from sb_call_alloc()/sb_call_strdup() or outlive the call) and completes the
 * call with sb_call_finish() — at once, later from a timer on sb_call_loop(), or from another
 * thread with sb_call_async_finish(). A handler never blocks its loop.
 *
 * Errors use gRPC's status codes everywhere; each protocol maps them (REST: Google's API design
 * guide mapping to HTTP statuses, with a JSON body {"code","message","details"}).
 *
 * Threads: a call belongs to the worker loop that received it; sb_call_* functions must be
 * called on that loop's thread.
 */
#ifndef SWITCHBOARD_RPC_H
#define SWITCHBOARD_RPC_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "server.h"

#ifdef __cplusplus
extern "C" {
#endif

/* gRPC status codes (their numbers are the wire values). */
typedef enum sb_code {
  SB_CODE_OK = 0,
  SB_CODE_CANCELLED = 1,
  SB_CODE_UNKNOWN = 2,
  SB_CODE_INVALID_ARGUMENT = 3,
  SB_CODE_DEADLINE_EXCEEDED = 4,
  SB_CODE_NOT_FOUND = 5,
  SB_CODE_ALREADY_EXISTS = 6,
  SB_CODE_PERMISSION_DENIED = 7,
  SB_CODE_RESOURCE_EXHAUSTED = 8,
  SB_CODE_FAILED_PRECONDITION = 9,
  SB_CODE_ABORTED = 10,
  SB_CODE_OUT_OF_RANGE = 11,
  SB_CODE_UNIMPLEMENTED = 12,
  SB_CODE_INTERNAL = 13,
  SB_CODE_UNAVAILABLE = 14,
  SB_CODE_DATA_LOSS = 15,
  SB_CODE_UNAUTHENTICATED = 16,
} sb_code_t;

/* The canonical name of a code ("NOT_FOUND"), or "UNKNOWN". */
const char *sb_code_name(sb_code_t code);
/* The HTTP status a code maps to (Google API design guide: NOT_FOUND -> 404, ...). */
int sb_code_http_status(sb_code_t code);

/* One HTTP binding of a method (google.api.http). */
typedef struct sb_http_rule {
  const char *method;        /* "GET", "POST", "PUT", "DELETE", "PATCH" or a custom verb */
  const char *path;          /* template, e.g. "/v1/items/{id}" or "/v1/{name=**}" */
  const char *body;          /* NULL: no body; "*": the whole request; else a field name */
  const char *response_body; /* NULL: the whole response; else a field name */
} sb_http_rule_t;

typedef enum sb_method_kind {
  SB_METHOD_UNARY = 0,
  SB_METHOD_SERVER_STREAMING = 1,
  SB_METHOD_CLIENT_STREAMING = 2,
  SB_METHOD_BIDI_STREAMING = 3,
} sb_method_kind_t;

typedef enum sb_idempotency {
  SB_IDEMPOTENCY_UNKNOWN = 0, /* mirrors google.protobuf.MethodOptions.IdempotencyLevel */
  SB_IDEMPOTENCY_NO_SIDE_EFFECTS = 1,
  SB_IDEMPOTENCY_IDEMPOTENT = 2,
} sb_idempotency_t;

/* A method of a service, as the generator describes it. All pointers are static data. */
typedef struct sb_method_desc {
  const char *name;                         /* "GetItem" */
  const char *path;                         /* "/items.v1.ItemService/GetItem" (gRPC path) */
  const ProtobufCMessageDescriptor *input;  /* request message */
  const ProtobufCMessageDescriptor *output; /* response message */
  sb_method_kind_t kind;
  sb_idempotency_t idempotency;
  const sb_http_rule_t *http; /* bindings; may be empty */
  size_t n_http;
  int success_status;        /* REST status on success; 0 means 200 */
  const char *cache_control; /* REST Cache-Control value, or NULL */
  const char *trpc_name;     /* tRPC procedure name (switchboard.trpc_name), or NULL: derived */
} sb_method_desc_t;

/* Validation rules of one field (switchboard/validate.proto), as the generator emits them:
 * static data. flags says which members apply. Bounds are kept in the field's own number
 * domain (signed, unsigned or floating), with exclusiveness in the flags, so a violation can
 * be described with the contract's own numbers. For a repeated field, the value rules (bounds,
 * lengths, pattern, defined_only) apply to every item and items_* to the count. */
typedef struct sb_field_rule {
  uint32_t number;               /* field number in its message */
  uint32_t flags;                /* SB_RULE_* bits */
  int64_t i_min, i_max;          /* signed integer bounds */
  uint64_t u_min, u_max;         /* unsigned integer bounds */
  double d_min, d_max;           /* float and double bounds */
  uint64_t len_min, len_max;     /* string code points, or bytes of a bytes field */
  uint64_t bytes_min, bytes_max; /* string UTF-8 bytes */
  uint64_t items_min, items_max; /* elements of a repeated field, pairs of a map */
  const char *pattern;           /* POSIX ERE the string must contain a match of, or NULL */
} sb_field_rule_t;

enum sb_rule_flags {
  SB_RULE_REQUIRED = 1u << 0,     /* must be set (non-default, non-empty) */
  SB_RULE_MIN = 1u << 1,          /* a lower bound (i_/u_/d_min) applies */
  SB_RULE_MIN_EXCL = 1u << 2,     /* ... and it is exclusive (gt) */
  SB_RULE_MAX = 1u << 3,          /* an upper bound (i_/u_/d_max) applies */
  SB_RULE_MAX_EXCL = 1u << 4,     /* ... and it is exclusive (lt) */
  SB_RULE_LEN_MIN = 1u << 5,      /* len_min applies */
  SB_RULE_LEN_MAX = 1u << 6,      /* len_max applies */
  SB_RULE_BYTES_MIN = 1u << 7,    /* bytes_min applies */
  SB_RULE_BYTES_MAX = 1u << 8,    /* bytes_max applies */
  SB_RULE_ITEMS_MIN = 1u << 9,    /* items_min applies */
  SB_RULE_ITEMS_MAX = 1u << 10,   /* items_max applies */
  SB_RULE_DEFINED_ONLY = 1u << 11 /* an enum value must be one the enum declares */
};

/* The rules of one message type: the rules of its own fields, sorted by field number. A
 * message appears in a service's table when it has rules or contains (through message
 * fields, at any depth) a message that has; the validator descends only into those. */
typedef struct sb_msg_rules {
  const ProtobufCMessageDescriptor *desc; /* the message type */
  const sb_field_rule_t *fields;          /* may be NULL when n_fields is 0 */
  size_t n_fields;
} sb_msg_rules_t;

/* A field whose json_name option differs from its lowerCamelCase name: the JSON mapping
 * writes and reads that name instead. Static data emitted by the generator. */
typedef struct sb_json_name {
  const ProtobufCMessageDescriptor *desc; /* the message */
  uint32_t number;                        /* the field's number */
  const char *json_name;                  /* its custom JSON name */
} sb_json_name_t;

typedef struct sb_call sb_call_t;
typedef struct sb_rpc sb_rpc_t;

/* Calls handler mi of a generated handler table (typed, one member per method) with req and
 * res converted to the method's message types. Generated per service, so no handler is ever
 * called through a function pointer of another type. Returns 0, or -1 when that member is
 * NULL (the call is then answered UNIMPLEMENTED). */
typedef int (*sb_dispatch_fn)(const void *handlers, size_t mi, sb_call_t *call,
                              const ProtobufCMessage *req, ProtobufCMessage *res, void *ud);

/* One .proto file as a serialized google.protobuf.FileDescriptorProto (static data). */
typedef struct sb_file_desc {
  const char *name;    /* the name imports use: "google/protobuf/empty.proto" */
  const uint8_t *data; /* serialized descriptor, without source_code_info */
  size_t len;          /* bytes of data */
} sb_file_desc_t;

/* A service, as the generator describes it. All pointers are static data. */
typedef struct sb_service_desc {
  const char *full_name; /* "items.v1.ItemService" */
  const char *package;   /* "items.v1" */
  const sb_method_desc_t *methods;
  size_t n_methods;
  const uint8_t *file_descriptor; /* serialized FileDescriptorProto of its file */
  size_t file_descriptor_len;
  const char *openapi_json;    /* OpenAPI 3.1 document for this file, or NULL */
  sb_dispatch_fn dispatch;     /* calls into the service's generated handler table */
  const sb_msg_rules_t *rules; /* validation rules of the messages its methods receive */
  size_t n_rules;
  const sb_json_name_t *json_names; /* custom json_name options of its file's messages */
  size_t n_json_names;
  const char *file_name;      /* the name of its .proto file, as protoc knew it */
  const sb_file_desc_t *deps; /* every file its file imports, directly or not, each after its
                                 own imports (for reflection); NULL when none */
  size_t n_deps;
} sb_service_desc_t;

/* Creates the RPC registry bound to srv: services registered on it are served on srv's
 * listener by every protocol front-end built in. Call before sb_server_start(). Returns 0 and
 * sets *out, or SB_ENOMEM. The registry is freed by sb_rpc_free() after the server stopped. */
int sb_rpc_new(sb_server_t *srv, sb_rpc_t **out);
void sb_rpc_free(sb_rpc_t *rpc);

/* Decides whether a request belongs to a front-end attached with sb_rpc_add_frontend(), from
 * what is known when its headers are complete (method, path, headers). Runs on the request's
 * worker loop; must not take the exchange. Returns 1 to claim it, 0 to pass. */
typedef int (*sb_rpc_claim_cb)(sb_http_req_t *req, void *ud);

/* Attaches a protocol front-end that lives outside the registry (SQS, SNS, ...): every
 * request the registry's catch-all route receives is offered to the attached front-ends in
 * attach order before gRPC and REST see it; the first claim wins and its handler takes the
 * exchange (sb_http_handler_cb rules). ud is borrowed until the server stopped. Call before
 * the server starts. Returns 0, SB_EINVAL or SB_ELIMIT (too many front-ends). */
int sb_rpc_add_frontend(sb_rpc_t *rpc, sb_rpc_claim_cb claim, sb_http_handler_cb handler, void *ud);

/* Registers a service: handlers is its generated handler table (use the generated
 * <service>__register() for type checking); a NULL member answers UNIMPLEMENTED. desc and
 * handlers are borrowed for the registry's life; ud is passed to every handler. Returns 0,
 * SB_EINVAL (a duplicate service, no dispatch function, or an unusable HTTP rule) or
 * SB_ENOMEM. */
int sb_rpc_register(sb_rpc_t *rpc, const sb_service_desc_t *desc, const void *handlers, void *ud);

/* Idempotency-Key handling for non-safe REST requests: a retry with the same key within
 * window_ms replays the stored response without running the handler; the same key with a
 * different request answers 422, and while the first request runs, 409. Stored keys and
 * responses are bounded by max_bytes (oldest dropped first). 0 keeps a default (24 h,
 * 64 MiB). Call before the server starts. Returns 0 or SB_ENOMEM. */
int sb_rpc_set_idempotency(sb_rpc_t *rpc, uint64_t window_ms, size_t max_bytes);

/* Unknown fields in JSON requests (members of a JSON body, REST query parameters): rejected
 * with 400 INVALID_ARGUMENT naming the field (the default, so typos do not pass silently), or
 * with ignore = 1 skipped, as proto3 JSON parsers may be told to. Call before the server
 * starts. */
void sb_rpc_set_ignore_unknown_fields(sb_rpc_t *rpc, int ignore);

/* Where /docs finds Swagger UI's assets (the swagger-ui-dist npm package's directory). NULL
 * restores the default: for a binary running from its build tree, that build's
 * node_modules/swagger-ui-dist; otherwise <datadir>/switchboard/swagger-ui as installed, each
 * falling back to the other. dir is copied. Files are read on the first /docs request and
 * cached; when they are missing /docs answers 503 and everything else is served as usual.
 * Call before the server starts. Returns 0 or SB_ENOMEM. */
int sb_rpc_set_docs_dir(sb_rpc_t *rpc, const char *dir);

/* tRPC (the @trpc/server v11 HTTP wire; see README): procedures are served under base (default
 * "/trpc"; a path starting with '/', trailing slashes ignored, at most 127 bytes; NULL restores
 * the default). base is copied. Call before the server starts. Returns 0, SB_EINVAL or
 * SB_ENOMEM. */
int sb_rpc_set_trpc_base(sb_rpc_t *rpc, const char *base);
/* With allow = 1, queries and subscriptions may also be called with POST (tRPC's
 * allowMethodOverride, for clients created with methodOverride: 'POST'); mutations stay
 * POST only. Off by default. Call before the server starts. Returns 0 or SB_ENOMEM. */
int sb_rpc_set_trpc_method_override(sb_rpc_t *rpc, int allow);

/* Memory that lives until the call is freed (after it finished). NULL when out of memory. */
void *sb_call_alloc(sb_call_t *call, size_t n);
char *sb_call_strdup(sb_call_t *call, const char *s);

/* Completes the call: with SB_CODE_OK the response message is encoded and sent; otherwise
 * the error (code, message) is sent. message is copied; it may be NULL. Exactly once per
 * call, also after cancellation (then nothing is sent). */
void sb_call_finish(sb_call_t *call, sb_code_t code, const char *message);

/* Adds a google.rpc.BadRequest field violation to the error the call will finish with:
 * field is a path of .proto field names ("item.name", "tags[2]"), description says what is
 * wrong. Every protocol sends the list as the error's details (REST: "details" of the JSON
 * error body). Use it before sb_call_finish(call, SB_CODE_INVALID_ARGUMENT, ...); the
 * contract's validation rules report through the same list. Both strings are copied.
 * Returns 0, SB_ENOMEM, or SB_ESTATE after the call finished. */
int sb_call_field_violation(sb_call_t *call, const char *field, const char *description);

/* For server-streaming and bidirectional methods: sends one message (encoded at once; msg is
 * borrowed). Returns 0, 1 when the transport's buffer is above its high-water mark (the
 * stream is still fine; slow down until on_writable), SB_ECANCELED when the client went away,
 * or SB_ESTATE for other methods or after sb_call_finish(). */
int sb_call_send(sb_call_t *call, const ProtobufCMessage *msg);
/* Names the next message sent with sb_call_send(): event streams carry it as the event's id
 * (tRPC subscriptions: "id:", like tracked(id, data)), and a reconnecting client sends the
 * last one back (Last-Event-Id; tRPC writes it into the request's last_event_id field when the
 * message has one). id is copied; it must not contain CR, LF or NUL. Returns 0, SB_EINVAL,
 * SB_ENOMEM, or SB_ESTATE after sb_call_finish(). */
int sb_call_set_event_id(sb_call_t *call, const char *id);

/* ---- streams, metadata, deadlines (every front-end; gRPC uses all of it) ----
 *
 * Streaming handlers. Client-streaming handlers have the shape
 *   void h(sb_call_t *call, Res *res, void *ud)
 * and bidirectional ones
 *   void h(sb_call_t *call, void *ud):
 * they register callbacks with sb_call_set_stream() and return; request messages then arrive
 * one by one through on_message, and on_end says the client half-closed. Responses go out
 * with sb_call_send() (bidirectional) or by filling res (client streaming), and the call ends
 * with sb_call_finish() — from a callback, a timer, or another thread through
 * sb_call_async_finish(). A front-end that receives the request as one document (REST)
 * delivers it as the only message, then the end.
 *
 * Flow control. sb_call_send() returning 1 means the transport's buffer is full: stop
 * producing until on_writable. sb_call_pause_recv() stops taking request messages (the
 * transport stops granting flow-control window) until it is resumed.
 *
 * Cancellation. When the client goes away, resets the stream or the deadline passes,
 * sb_call_cancelled() becomes 1 and on_cancel runs once; the handler must still call
 * sb_call_finish() (nothing more is sent). */

/* A request message of a stream: msg is the method's input type, borrowed for the duration
 * of the callback only (the call does not keep it; copy what you need). */
typedef void (*sb_call_msg_cb)(sb_call_t *call, const ProtobufCMessage *msg, void *ud);
/* A stream event (end of the request stream, drained send buffer, cancellation). */
typedef void (*sb_call_event_cb)(sb_call_t *call, void *ud);

/* The stream callbacks of a call; any may be NULL. */
typedef struct sb_call_stream {
  sb_call_msg_cb on_message;    /* each request message, in order */
  sb_call_event_cb on_end;      /* the client half-closed: no more messages */
  sb_call_event_cb on_writable; /* after sb_call_send() returned 1, the buffer drained */
  sb_call_event_cb on_cancel;   /* the call was cancelled (client gone, reset, deadline) */
  void *ud;                     /* passed to every callback; borrowed */
} sb_call_stream_t;

/* Registers the stream callbacks (copied). Call from the handler before it returns, or later
 * on the call's loop; messages that arrived before on_message was set are dropped. */
void sb_call_set_stream(sb_call_t *call, const sb_call_stream_t *cbs);
/* Stops (paused = 1) or resumes taking request messages. Returns 0, or SB_ESTATE when the
 * front-end cannot pause (REST: the request is already complete) or the call finished. */
int sb_call_pause_recv(sb_call_t *call, int paused);

/* Binary metadata (keys ending in "-bin", sent base64-encoded): the decoded value of key and
 * its length in *len, or NULL when absent or not valid base64. The bytes live in the call's
 * memory (NUL-terminated for convenience). */
const uint8_t *sb_call_metadata_bin(sb_call_t *call, const char *key, size_t *len);
/* Adds response metadata: a header (sent with the response's first bytes) or a trailer (sent
 * with the status). key must be lower-case [0-9a-z_.-], must not start with "grpc-" (except
 * "grpc-status-details-bin", a serialized google.rpc.Status) and must not be a transport
 * header; value is len bytes, copied: any bytes for "-bin" keys (the front-end encodes them),
 * else printable ASCII. Returns 0, SB_EINVAL, SB_ESTATE (headers already sent, or the call
 * finished) or SB_ENOMEM. */
int sb_call_set_header(sb_call_t *call, const char *key, const void *value, size_t len);
int sb_call_set_trailer(sb_call_t *call, const char *key, const void *value, size_t len);
/* Asks for the response messages sent from now on to be compressed (gzip) when the client
 * accepts it (gRPC); on = 0 sends them uncompressed again. Front-ends without per-message
 * compression ignore it. */
void sb_call_set_compress(sb_call_t *call, int on);
/* 1 when the last request message arrived compressed (gRPC), else 0. */
int sb_call_request_compressed(const sb_call_t *call);
/* The call's deadline as loop time in milliseconds (uv_now() of sb_call_loop()), or 0 when
 * the client set none. When it passes, the call is cancelled. */
uint64_t sb_call_deadline(const sb_call_t *call);

/* Completion from another thread. On the call's loop, sb_call_async_new() prepares a handle;
 * any thread may then call sb_call_async_finish() once, which completes the call on its loop
 * as sb_call_finish() would (code and message are copied). Writes to the response message
 * made before sb_call_async_finish() are visible to the loop (uv_async_send() orders them).
 * The handle frees itself after the completion ran; it must be completed before the server
 * stops. sb_call_async_new() returns 0 and sets *out, or SB_ENOMEM. */
typedef struct sb_call_async sb_call_async_t;
int sb_call_async_new(sb_call_t *call, sb_call_async_t **out);
void sb_call_async_finish(sb_call_async_t *a, sb_code_t code, const char *message);

/* The largest request message (bytes, after decompression) gRPC accepts; larger ones are
 * answered RESOURCE_EXHAUSTED. 0 restores the default (SB_RPC_DEFAULT_MAX_RECV). Call before
 * the server starts. */
#define SB_RPC_DEFAULT_MAX_RECV (4u * 1024u * 1024u)
void sb_rpc_set_max_recv(sb_rpc_t *rpc, size_t bytes);

/* The value of a request header / metadata key (lower-case), or NULL. */
const char *sb_call_metadata(const sb_call_t *call, const char *key);
/* 1 once the client went away or the deadline passed. */
int sb_call_cancelled(const sb_call_t *call);
/* The loop the call lives on, for timers and async completions. */
struct uv_loop_s *sb_call_loop(const sb_call_t *call);
/* The method being called. */
const sb_method_desc_t *sb_call_method(const sb_call_t *call);

#ifdef __cplusplus
}
#endif
#endif
