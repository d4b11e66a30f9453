/*
 * switchboard gRPC client: a C service calls another service's methods with the same
 * generated types it serves them with.
 *
 * The contract generator emits, per unary and server-streaming method, a typed wrapper
 * <service>__<method>_call() over sb_client_call(); the request is the method's input type and
 * each response message handed to on_message is its output type.
 *
 * The generator also emits <service>__<method>_rest_call() for unary methods with an HTTP
 * binding: the same call as REST/JSON (sb_client_call_rest()), for servers that only speak
 * REST.
 *
 * Transport: cleartext HTTP/2 (prior knowledge), one connection per client, any number of
 * concurrent calls on it, gRPC or REST/JSON. Everything is asynchronous on the libuv loop the
 * client was created on; callbacks run on that loop; no function blocks. (TLS and client and
 * bidirectional streaming are not offered yet.)
 *
 * Threads: a client and its calls belong to its loop; every function must be called there.
 */
#ifndef SWITCHBOARD_CLIENT_H
#define SWITCHBOARD_CLIENT_H

#include <protobuf-c/protobuf-c.h>
#include <stdint.h>

#include "rpc.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SB_CLIENT_MAX_RECV (4u * 1024u * 1024u) /* largest response message accepted, bytes */

typedef struct sb_client sb_client_t;
struct uv_loop_s;

/* One response message: msg is the method's output type, borrowed for the callback only. */
typedef void (*sb_client_msg_cb)(const ProtobufCMessage *msg, void *ud);
/* The call ended: code and message (percent-decoded; "" when none) as the server (or the
 * client, for transport failures: UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED) reported them.
 * message is borrowed for the callback only. Called exactly once per accepted call. */
typedef void (*sb_client_done_cb)(sb_code_t code, const char *message, void *ud);

/* Creates a client for the server at addr ("127.0.0.1:8080", "[::1]:8080"; numeric addresses
 * only) on loop; it connects on first use. Returns 0 and sets *out, or SB_EINVAL (bad
 * address) or SB_ENOMEM. Free with sb_client_free(). */
int sb_client_new(struct uv_loop_s *loop, const char *addr, sb_client_t **out);

/* Starts a call of method m (a unary or server-streaming method of a generated
 * sb_service_desc_t) with request req (encoded at once; borrowed for the call only).
 * timeout_ms > 0 sends grpc-timeout and ends the call DEADLINE_EXCEEDED when it passes.
 * on_message (may be NULL) gets each response message, then on_done the status. Returns 0,
 * SB_EINVAL (a streaming-input method), SB_ESTATE (the client is being freed) or SB_ENOMEM;
 * on an error no callback runs. */
int sb_client_call(sb_client_t *c, const sb_method_desc_t *m, const ProtobufCMessage *req,
                   uint32_t timeout_ms, sb_client_msg_cb on_message, sb_client_done_cb on_done,
                   void *ud);

/* Calls unary method m as REST/JSON through its first HTTP binding: the path template is
 * filled from req's fields, a body-less request carries its other set scalar fields in the
 * query string, the body (the whole request or the bound field) is the proto3 JSON mapping.
 * A 2xx response is decoded into the output type and handed to on_message; an error
 * response's {"code", "message"} body (or, without one, its HTTP status) gives the status.
 * Returns 0, SB_EINVAL (not unary, no binding, a path field that cannot be written), SB_ESTATE
 * or SB_ENOMEM; on an error no callback runs. */
int sb_client_call_rest(sb_client_t *c, const sb_method_desc_t *m, const ProtobufCMessage *req,
                        uint32_t timeout_ms, sb_client_msg_cb on_message, sb_client_done_cb on_done,
                        void *ud);

/* Ends every call still running (on_done with CANCELLED, from inside this function), closes
 * the connection and frees the client once libuv has closed its handles (run the loop). */
void sb_client_free(sb_client_t *c);

#ifdef __cplusplus
}
#endif
#endif
