/*
 * The tRPC v11 HTTP wire, the parts that are pure functions of request bytes: what the
 * front-end (trpc.c) needs to read a request before any call exists, kept apart so the fuzz
 * target (fuzz/trpc_fuzz.c) can drive them without a server.
 *
 * The request, as @trpc/server v11 reads it (its http/contentType.ts):
 *
 *   GET  {base}/{path}?input=<json>                 one query or subscription
 *   POST {base}/{path}              body <json>     one mutation (or a query, with override)
 *   GET  {base}/{p0},{p1}?batch=1&input=<obj>       a batch; obj = {"0": <json>, "1": ...}
 *   POST {base}/{p0},{p1}?batch=1   body <obj>
 *
 * Batch inputs are one JSON object keyed by the call's index in decimal; a missing index is
 * an undefined input, members that are not an index of a call are ignored, and a repeated
 * member keeps its last value (JSON.parse's rule). An absent or empty `input` parameter (or an
 * empty body) is "no input" for every call.
 *
 * Errors use tRPC's code keys and numbers (its rpc/codes.ts) and the HTTP status of each key
 * (http/getHTTPStatusCode.ts); gRPC status codes map onto them with sb__trpc_error_of().
 */
#ifndef SB_PROTOCOLS_TRPC_WIRE_H
#define SB_PROTOCOLS_TRPC_WIRE_H

#include <stddef.h>

#include "core/buf.h"
#include "switchboard/rpc.h"

#define SB_TRPC_MAX_BATCH 128u /* calls in one batch; more is BAD_REQUEST, as maxBatchSize */

/* A tRPC error code: its key ("NOT_FOUND"), JSON-RPC number (-32004) and HTTP status. */
typedef struct sb_trpc_err {
  const char *key; /* static */
  int number;      /* error.code */
  int http;        /* error.data.httpStatus */
} sb_trpc_err_t;

/* The tRPC codes a front-end raises itself (request errors) or maps gRPC codes onto. */
enum sb_trpc_code {
  SB_TRPC_PARSE_ERROR,
  SB_TRPC_BAD_REQUEST,
  SB_TRPC_UNAUTHORIZED,
  SB_TRPC_FORBIDDEN,
  SB_TRPC_NOT_FOUND,
  SB_TRPC_METHOD_NOT_SUPPORTED,
  SB_TRPC_TIMEOUT,
  SB_TRPC_CONFLICT,
  SB_TRPC_PRECONDITION_FAILED,
  SB_TRPC_PAYLOAD_TOO_LARGE,
  SB_TRPC_UNSUPPORTED_MEDIA_TYPE,
  SB_TRPC_TOO_MANY_REQUESTS,
  SB_TRPC_CLIENT_CLOSED_REQUEST,
  SB_TRPC_INTERNAL_SERVER_ERROR,
  SB_TRPC_NOT_IMPLEMENTED,
  SB_TRPC_SERVICE_UNAVAILABLE,
  SB_TRPC_N_CODES
};

/* The code's key, number and status (a static entry). */
const sb_trpc_err_t *sb__trpc_err(enum sb_trpc_code c);
/* The tRPC code a gRPC status maps onto (INVALID_ARGUMENT -> BAD_REQUEST, ALREADY_EXISTS ->
 * CONFLICT, RESOURCE_EXHAUSTED -> TOO_MANY_REQUESTS, ...; OK and unknown values ->
 * INTERNAL_SERVER_ERROR). */
enum sb_trpc_code sb__trpc_code_of(sb_code_t code);

/* How the request body is to be read, from its content-type (media types compare
 * case-insensitively, parameters and surrounding blanks ignored). */
enum sb_trpc_media {
  SB_TRPC_MEDIA_JSON = 0,  /* application/json, or none on a GET (tRPC's fallback) */
  SB_TRPC_MEDIA_OTHER = 1, /* multipart/form-data or application/octet-stream: tRPC's
                              non-JSON inputs, which a .proto contract has no use for */
  SB_TRPC_MEDIA_NONE = 2,  /* missing on a non-GET request */
  SB_TRPC_MEDIA_BAD = 3,   /* anything else */
};
/* ct may be NULL (no header); get is 1 for GET requests. */
enum sb_trpc_media sb__trpc_media(const char *ct, int get);

/* A byte range of the caller's input; p == NULL means "absent". */
typedef struct sb_trpc_span {
  const char *p; /* borrowed */
  size_t n;      /* bytes */
} sb_trpc_span_t;

/* Finds query parameter name in q (the query string without '?') the way URLSearchParams.get
 * does: the first pair whose decoded key equals name. Decodes its value ('+' is a space) into
 * out (replacing its content, NUL-terminated). Returns 1 when found, 0 when absent, or
 * SB_ENOMEM. A malformed %-escape is kept literally, as URLSearchParams keeps it. */
int sb__trpc_query_get(const char *q, const char *name, sb_buf_t *out);

/* Splits the procedure part of the URL path (after "{base}/", percent-decoded) into calls:
 * on ',' when batch, else one call. Writes up to max spans into out and the count into *n.
 * Returns 0, or SB_ELIMIT when there are more than max calls. */
int sb__trpc_split_paths(const char *path, size_t len, int batch, sb_trpc_span_t *out, size_t max,
                         size_t *n);

/* Reads a batch's input document json[0..len) (not empty) and points in[i] (i < n) at the raw
 * JSON text of member "i", or sets in[i].p = NULL when there is none. Returns 0; SB_EPROTO
 * when json is not valid JSON (*why: the reader's message); or SB_EINVAL when it is JSON but
 * not an object (*why: tRPC's message). *why is static. */
int sb__trpc_batch_inputs(const char *json, size_t len, sb_trpc_span_t *in, size_t n,
                          const char **why);

/* Checks that json[0..len) is one valid JSON value. Returns 0, or SB_EPROTO with *why set
 * (static). */
int sb__trpc_json_valid(const char *json, size_t len, const char **why);

/* Writes the procedure name of a method: its name with the first letter in lower case
 * ("GetItem" -> "getItem"), as the TypeScript emitter names it, into out (cap bytes,
 * NUL-terminated, truncated if needed). Returns out. */
char *sb__trpc_proc_name(const char *method, char *out, size_t cap);

#endif
