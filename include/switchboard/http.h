/*
 * switchboard HTTP exchange interface.
 *
 * One interface for HTTP/1.1 and HTTP/2: every protocol front-end (REST, gRPC, tRPC, SQS, ...)
 * is written once against it. A handler is called when a request's headers are complete. It
 * sees the method, path and headers, may consume the request body as a stream of chunks, and
 * answers with a status, headers, a streamed body and optional trailers.
 *
 * Threading: an exchange belongs to the worker loop that accepted its connection. Every
 * function here must be called on that loop's thread (from the handler, from its callbacks, or
 * from timers/async handles on sb_http_req_loop()).
 *
 * Lifetime: the handler holds the exchange from the moment it is called until it calls
 * sb_http_res_end(). The exchange stays valid during that time even if the client goes away:
 * the server then calls the on_abort callback, later writes return SB_ECANCELED, and
 * sb_http_res_end() still must be called to release it. After sb_http_res_end() returns, the
 * handler must not touch the exchange again; the server frees it once the transport is done.
 *
 * Backpressure: sb_http_res_write() copies the bytes into a bounded per-exchange buffer that
 * the transport drains as the peer reads (HTTP/2: as its flow-control window allows). When
 * the buffer is above its high-water mark the call returns 1; the handler should stop
 * producing until on_writable fires.
 */
#ifndef SWITCHBOARD_HTTP_H
#define SWITCHBOARD_HTTP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sb_http_req sb_http_req_t;
struct uv_loop_s;

/* The wire protocol an exchange arrived on. */
typedef enum sb_http_proto {
  SB_HTTP_1 = 1, /* HTTP/1.0 or HTTP/1.1 */
  SB_HTTP_2 = 2, /* HTTP/2, cleartext (h2c) or TLS (h2) */
} sb_http_proto_t;

/* One header field. name and value point into storage owned by the exchange; they stay
 * valid until sb_http_res_end(). Request header names are lower-case. */
typedef struct sb_http_header {
  const char *name;  /* NUL-terminated, lower-case for request headers */
  size_t name_len;   /* bytes, excluding the NUL */
  const char *value; /* NUL-terminated */
  size_t value_len;  /* bytes, excluding the NUL */
} sb_http_header_t;

/* Called with each chunk of the request body, in order. data is borrowed for the duration
 * of the call only. */
typedef void (*sb_http_data_cb)(sb_http_req_t *req, const uint8_t *data, size_t len, void *ud);
/* Called once when the request body is complete (also for requests without a body). */
typedef void (*sb_http_end_cb)(sb_http_req_t *req, void *ud);
/* Called at most once when the client went away or reset the stream before the response
 * ended; err says why (SB_ECANCELED, SB_ELIMIT for a body over the limit, SB_EIO). */
typedef void (*sb_http_abort_cb)(sb_http_req_t *req, int err, void *ud);
/* Called when the response buffer drained below its low-water mark after a write returned 1. */
typedef void (*sb_http_writable_cb)(sb_http_req_t *req, void *ud);

/* Called when a request's headers are complete. The handler takes the exchange (see the
 * lifetime rules above). */
typedef void (*sb_http_handler_cb)(sb_http_req_t *req, void *ud);

/* The callbacks a handler registers for the rest of an exchange; any may be NULL. */
typedef struct sb_http_callbacks {
  sb_http_data_cb on_data;         /* request body chunks; NULL discards the body */
  sb_http_end_cb on_end;           /* request body complete */
  sb_http_abort_cb on_abort;       /* exchange aborted by the peer or a limit */
  sb_http_writable_cb on_writable; /* response buffer drained */
  void *ud;                        /* passed to every callback; borrowed */
} sb_http_callbacks_t;

/* ---- request ---- */

/* The request method ("GET", "POST", ...), NUL-terminated; valid until sb_http_res_end(). */
const char *sb_http_req_method(const sb_http_req_t *req);
/* The request target's path without the query, NUL-terminated ("/healthz"). */
const char *sb_http_req_path(const sb_http_req_t *req);
/* The query string without the '?', or "" when there is none. */
const char *sb_http_req_query(const sb_http_req_t *req);
/* The authority (Host header or :authority), or "" when absent. */
const char *sb_http_req_authority(const sb_http_req_t *req);
/* The protocol the request arrived on. */
sb_http_proto_t sb_http_req_proto(const sb_http_req_t *req);
/* Returns 1 when the connection is TLS. */
int sb_http_req_is_tls(const sb_http_req_t *req);
/* The value of the first header named name (case-insensitive), or NULL. len may be NULL. */
const char *sb_http_req_header(const sb_http_req_t *req, const char *name, size_t *len);
/* The number of request headers, and the i-th one (0 <= i < count), or NULL. Pseudo-headers
 * of HTTP/2 are not included. */
size_t sb_http_req_header_count(const sb_http_req_t *req);
const sb_http_header_t *sb_http_req_header_at(const sb_http_req_t *req, size_t i);
/* The declared request body length, or -1 when unknown (chunked or HTTP/2 without one). */
int64_t sb_http_req_content_length(const sb_http_req_t *req);
/* The worker loop that owns this exchange (for timers and async completions). */
struct uv_loop_s *sb_http_req_loop(const sb_http_req_t *req);
/* Registers the body/abort/writable callbacks. Call from the handler before returning. If the
 * body already ended, on_end is called on the next loop iteration, never re-entrantly. */
void sb_http_req_set_callbacks(sb_http_req_t *req, const sb_http_callbacks_t *cbs);
/* Flow control for the request body. While paused, the server stops taking body bytes from
 * the client: HTTP/1.1 stops reading the socket, HTTP/2 stops returning flow-control window
 * for the stream (bytes already in flight, at most one window, may still arrive through
 * on_data). No timeout runs while paused. Resuming delivers what was held back. Ending the
 * response resumes implicitly (the rest of the body is then discarded). Returns 0 or
 * SB_ESTATE after sb_http_res_end(). */
int sb_http_req_pause_body(sb_http_req_t *req, int paused);
/* Replaces the server's max_body_bytes for this request's body (HTTP/2 only: a long-lived
 * stream, such as a gRPC client stream, limits its messages rather than its total). bytes = 0
 * restores the server's limit; UINT64_MAX lifts it. Call from the handler. Returns 0, or
 * SB_ESTATE after sb_http_res_end(). */
int sb_http_req_set_body_limit(sb_http_req_t *req, uint64_t bytes);
/* Returns 1 once the request body is complete, 0 while it is still arriving. */
int sb_http_req_body_done(const sb_http_req_t *req);
/* Returns 1 when the exchange was aborted (the client is gone); writes then fail. */
int sb_http_req_aborted(const sb_http_req_t *req);

/* ---- response ---- */

/* Sets the status code (100 < status < 600, not 101). Default 200. Only before the first
 * write. Returns 0, SB_EINVAL, or SB_ESTATE when headers were already sent. */
int sb_http_res_status(sb_http_req_t *req, int status);
/* Adds a response header. name must be a token; value must not contain CR, LF or NUL.
 * Both are copied. "content-length" fixes the body length (HTTP/1.1 then does not use
 * chunked encoding). Connection-specific headers (connection, transfer-encoding, keep-alive,
 * upgrade) are managed by the server and rejected. Returns 0, SB_EINVAL, SB_ESTATE (headers
 * already sent), SB_ELIMIT (header bytes over the limit) or SB_ENOMEM. */
int sb_http_res_header(sb_http_req_t *req, const char *name, const char *value);
/* Same, with explicit lengths. */
int sb_http_res_header_n(sb_http_req_t *req, const char *name, size_t name_len, const char *value,
                         size_t value_len);
/* Adds a trailer field (sent after the body; HTTP/2 always, HTTP/1.1 in chunked responses).
 * Same rules as sb_http_res_header(). Allowed until sb_http_res_end(). */
int sb_http_res_trailer(sb_http_req_t *req, const char *name, const char *value);
/* Sends the status and headers now, without body bytes (useful before a long stream).
 * Returns 0, SB_ECANCELED or SB_ESTATE. */
int sb_http_res_flush_headers(sb_http_req_t *req);
/* Appends len bytes of body (copied). Sends the headers first if not yet sent. Returns 0
 * when more may be written, 1 when the buffer is above its high-water mark (wait for
 * on_writable), SB_ECANCELED when the exchange was aborted, SB_ESTATE after end, SB_ELIMIT
 * when more bytes than a declared content-length were written, or SB_ENOMEM. */
int sb_http_res_write(sb_http_req_t *req, const void *data, size_t len);
/* Ends the response (sending headers and trailers as needed) and releases the handler's hold
 * on the exchange. Always releases, even on error. Returns 0, SB_ECANCELED (aborted; nothing
 * more was sent) or SB_ELIMIT (fewer bytes than a declared content-length were written; the
 * stream is reset / the connection closed). */
int sb_http_res_end(sb_http_req_t *req);
/* Convenience: status, content-type (may be NULL), body of len bytes, end. Returns as
 * sb_http_res_end(). */
int sb_http_respond(sb_http_req_t *req, int status, const char *content_type, const void *body,
                    size_t len);

/* The reason phrase for a status code ("Not Found"), or "Unknown". */
const char *sb_http_status_text(int status);

#ifdef __cplusplus
}
#endif
#endif
