/*
 * Private to the gRPC family of front-ends (protocols/grpc): gRPC, gRPC-Web (grpc.c) and the
 * Connect protocol (connect.c) share one call engine, because they differ only in how a
 * message, the status and the metadata are put on the wire, not in how a call lives.
 *
 * Ownership: a grpc_call_t lives in its call's arena (see grpc.c for the lifecycle); it and
 * everything it points to belong to the exchange's loop.
 */
#ifndef SB_PROTOCOLS_GRPC_INT_H
#define SB_PROTOCOLS_GRPC_INT_H

#include <stdint.h>

#include "core/buf.h"
#include "protocols/grpc/wire.h"
#include "rpc/rpc_int.h"

/* What a request speaks, from its content-type (and, for Connect, its headers or query). */
enum grpc_mode {
  MODE_NONE = 0,           /* not ours */
  MODE_GRPC = 1,           /* application/grpc over HTTP/2 */
  MODE_WEB = 2,            /* application/grpc-web: binary body, trailers in the body */
  MODE_WEB_TEXT = 3,       /* application/grpc-web-text: the same, base64 */
  MODE_CONNECT = 4,        /* Connect unary: the body is one bare message (or a GET query) */
  MODE_CONNECT_STREAM = 5, /* Connect streaming: enveloped messages, end-of-stream envelope */
};

typedef struct grpc_call {
  sb_http_req_t *req;      /* held until end_exchange(); NULL after */
  sb_call_t *call;         /* the call; this struct lives in its arena */
  sb_grpc_reader_t reader; /* request message framing; owns its buffer */
  sb_buf_t body;           /* MODE_CONNECT: the request body collected so far; owned */
  uv_timer_t *timer;       /* deadline timer, or NULL; malloc'd, freed in its close callback */
  unsigned nmsgs;          /* request messages taken (unary input: must end up 1) */
  unsigned in_gzip : 1;    /* request messages (or the Connect unary body) may be compressed */
  unsigned in_deflate : 1; /* with in_gzip: gRPC "deflate" (zlib format), not gzip; gRPC(-Web) */
  unsigned out_gzip : 1;   /* the client accepts gzip responses */
  unsigned invoked : 1;    /* the handler has the call: only sb_call_finish() releases it */
  unsigned started : 1;    /* response headers sent (no Trailers-Only any more) */
  unsigned released : 1;   /* release() ran: nothing more may happen on this stream */
  unsigned json : 1;       /* Connect with the JSON codec (else protobuf binary) */
  uint8_t mode;            /* enum grpc_mode */
  uint8_t text_n;          /* base64 characters held in text (MODE_WEB_TEXT requests) */
  char text[4];            /* a 4-character group split across body chunks */
} grpc_call_t;

/* ---- grpc.c, for connect.c ---- */

/* Where response fields go: headers, HTTP trailers, a gRPC-Web trailer block, JSON. */
typedef int (*sb__field_fn)(void *to, const char *name, const char *value);
/* Adds one metadata entry through put; -bin values go base64. Returns put's result or
 * SB_ENOMEM. */
int sb__grpc_put_md(sb__field_fn put, void *to, const sb__md_t *md);
/* Browser-facing modes (gRPC-Web, Connect) answering a request with an Origin: the CORS
 * response headers. gc may be NULL (an error before the call existed). */
void sb__grpc_put_cors(sb_http_req_t *req, enum grpc_mode mode, const grpc_call_t *gc);

/* ---- connect.c ---- */

/* 1 when ct is the media type type, alone or followed by parameters or a +subtype. */
int sb__media_is(const char *ct, const char *type);

#define SB_CONNECT_END_STREAM 0x02u /* envelope flag of the last response envelope */

/* The Connect mode of req (MODE_CONNECT, MODE_CONNECT_STREAM or MODE_NONE); sets *json for the
 * JSON codec. A GET is Connect when its query says connect=v1. */
enum grpc_mode sb__connect_mode(sb_http_req_t *req, unsigned *json);
/* A Connect GET: the request message from the query (message=, base64=1, encoding=,
 * compression=gzip) appended to out, *json and *gzip set. Returns 0 or SB_EINVAL. */
int sb__connect_get_message(sb_http_req_t *req, sb_buf_t *out, unsigned *json, unsigned *gzip);
/* Parses Connect-Timeout-Ms (1 to 10 digits) into *ms. Returns 0 or SB_EINVAL. */
int sb__connect_timeout(const char *s, uint64_t *ms);
/* Answers a Connect unary call and ends the exchange: with SB_CODE_OK the encoded response in
 * body (borrowed), else the error as Connect's JSON; the handler's headers, and its trailers
 * as "trailer-" headers. */
void sb__connect_respond(grpc_call_t *gc, sb_http_req_t *req, sb_code_t code, const char *msg,
                         const uint8_t *body, size_t len);
/* Appends the payload of the end-of-stream envelope ({"error":..., "metadata":...}) to out.
 * Returns 0 or SB_ENOMEM. */
int sb__connect_end_payload(const grpc_call_t *gc, sb_code_t code, const char *msg, sb_buf_t *out);
/* The content-type of Connect responses for gc. */
const char *sb__connect_ct(const grpc_call_t *gc);

#endif
