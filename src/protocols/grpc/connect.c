/*
 * The Connect protocol (connectrpc.com's protocol specification) on the gRPC family's call
 * engine (grpc.c): what differs from gRPC is here.
 *
 * Unary: POST /<package>.<Service>/<Method> with content-type application/proto or
 * application/json (JSON requests must carry Connect-Protocol-Version, which is what tells
 * them from REST calls on the same default route); the body is the bare message, compressed
 * as Content-Encoding says. Side-effect-free methods may also be called with GET and the
 * message in the query (message=, encoding=proto|json, base64=1, compression=gzip,
 * connect=v1). The answer is 200 and the bare response message, or the HTTP status of the code
 * and {"code": "not_found", "message": "...", "details": []}. Response headers are the
 * handler's headers, and its trailers prefixed "trailer-".
 *
 * Streaming: content-type application/connect+proto or +json; both bodies are envelopes (a
 * flag byte: 0x01 compressed, 0x02 end of stream; a 4-byte big-endian length; the payload).
 * The response always answers 200; its last envelope has flag 0x02 and the JSON payload
 * {"error": {"code", "message"}, "metadata": {"key": ["value"]}} (no "error" on success).
 * Compression of streams is negotiated with Connect-Content-Encoding / -Accept-Encoding.
 *
 * Timeouts: Connect-Timeout-Ms, 1 to 10 digits of milliseconds.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/json.h"
#include "core/codec.h"
#include "protocols/grpc/grpc_int.h"
#include "switchboard/error.h"

#define CONNECT_TIMEOUT_DIGITS 10u /* Connect-Timeout-Ms holds at most this many digits */
#define CONNECT_NAME_MAX 128u      /* bytes of a metadata name with its "trailer-" prefix */

int sb__media_is(const char *ct, const char *type) {
  size_t n = strlen(type);
  return ct && strncasecmp(ct, type, n) == 0 &&
         (ct[n] == '\0' || ct[n] == ';' || ct[n] == '+' || ct[n] == ' ');
}

/* The value of query parameter name in q (not decoded), its length in *len; NULL if absent. */
static const char *query_param(const char *q, const char *name, size_t *len) {
  size_t nl = strlen(name);
  while (*q) {
    size_t n = strcspn(q, "&");
    if (n > nl && q[nl] == '=' && memcmp(q, name, nl) == 0) {
      *len = n - nl - 1;
      return q + nl + 1;
    }
    if (n == nl && memcmp(q, name, nl) == 0) {
      *len = 0;
      return q + n;
    }
    q += n + (q[n] == '&');
  }
  return NULL;
}

/* 1 when the query parameter name equals value (compared undecoded: values here are tokens). */
static int param_is(const char *q, const char *name, const char *value) {
  size_t len = 0;
  const char *v = query_param(q, name, &len);
  return v && len == strlen(value) && memcmp(v, value, len) == 0;
}

enum grpc_mode sb__connect_mode(sb_http_req_t *req, unsigned *json) {
  const char *ct = sb_http_req_header(req, "content-type", NULL);
  const char *q = sb_http_req_query(req);
  *json = 0;
  if (strcmp(sb_http_req_method(req), "GET") == 0) {
    /* connect=v1 is what tells a Connect GET from a REST GET with the same path. */
    if (!param_is(q, "connect", "v1")) return MODE_NONE;
    *json = param_is(q, "encoding", "json");
    return MODE_CONNECT;
  }
  if (sb__media_is(ct, "application/connect+json")) {
    *json = 1;
    return MODE_CONNECT_STREAM;
  }
  if (sb__media_is(ct, "application/connect+proto")) return MODE_CONNECT_STREAM;
  if (sb__media_is(ct, "application/proto")) return MODE_CONNECT;
  if (sb__media_is(ct, "application/json") &&
      sb_http_req_header(req, "connect-protocol-version", NULL)) {
    *json = 1;
    return MODE_CONNECT;
  }
  return MODE_NONE;
}

int sb__connect_get_message(sb_http_req_t *req, sb_buf_t *out, unsigned *json, unsigned *gzip) {
  const char *q = sb_http_req_query(req);
  size_t len = 0;
  const char *msg = query_param(q, "message", &len);
  *json = param_is(q, "encoding", "json");
  *gzip = param_is(q, "compression", "gzip");
  if (!*json && !param_is(q, "encoding", "proto")) return SB_EINVAL;
  if (!msg || len == 0) return 0; /* the empty message */
  char *text = malloc(len + 1);
  if (!text) return SB_ENOMEM;
  long n = sb_pct_decode(msg, len, text, 1);
  int rc = n < 0 ? SB_EINVAL : 0;
  if (!rc && param_is(q, "base64", "1")) {
    rc = sb_buf_reserve(out, SB_BASE64_DECODED_MAX((size_t)n));
    long d = rc ? -1 : sb_base64_decode(text, (size_t)n, out->data + out->len);
    if (!rc && d < 0) rc = SB_EINVAL;
    if (!rc) out->len += (size_t)d;
  } else if (!rc) {
    rc = sb_buf_append(out, text, (size_t)n);
  }
  free(text);
  return rc;
}

int sb__connect_timeout(const char *s, uint64_t *ms) {
  size_t n = strspn(s, "0123456789");
  if (n == 0 || n > CONNECT_TIMEOUT_DIGITS || s[n]) return SB_EINVAL;
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++)
    v = v * 10 + (uint64_t)(s[i] - '0');
  *ms = v ? v : 1;
  return 0;
}

const char *sb__connect_ct(const grpc_call_t *gc) {
  if (gc->mode == MODE_CONNECT_STREAM)
    return gc->json ? "application/connect+json" : "application/connect+proto";
  return gc->json ? "application/json" : "application/proto";
}

/* Connect's name of a code: the gRPC name in lower case, but "canceled". */
static void code_name(sb_code_t code, char out[32]) {
  const char *n = code == SB_CODE_CANCELLED ? "canceled" : sb_code_name(code);
  size_t i = 0;
  for (; n[i] && i < 31; i++)
    out[i] = (char)(n[i] >= 'A' && n[i] <= 'Z' ? n[i] + 32 : n[i]);
  out[i] = '\0';
}

/* Writes {"code": ..., "message": ...} (the error object of both unary and stream ends). */
static void error_object(sb_jw_t *w, sb_code_t code, const char *msg) {
  char name[32];
  code_name(code, name);
  sb_jw_obj_begin(w);
  sb_jw_key(w, "code", 4);
  sb_jw_str(w, name, strlen(name));
  if (msg && msg[0]) {
    sb_jw_key(w, "message", 7);
    sb_jw_str(w, msg, strlen(msg));
  }
  sb_jw_key(w, "details", 7);
  sb_jw_arr_begin(w);
  sb_jw_arr_end(w);
  sb_jw_obj_end(w);
}

/* A field sink adding "trailer-<name>" headers (unary Connect carries trailers that way). */
static int to_trailer_header(void *req, const char *name, const char *value) {
  char full[CONNECT_NAME_MAX];
  int n = snprintf(full, sizeof full, "trailer-%s", name);
  if (n < 0 || (size_t)n >= sizeof full) return SB_ELIMIT;
  return sb_http_res_header(req, full, value);
}

static int to_header(void *req, const char *name, const char *value) {
  return sb_http_res_header(req, name, value);
}

/* A field sink adding "name": ["value"] to an open JSON object (stream end metadata). */
static int to_json(void *w, const char *name, const char *value) {
  sb_jw_key(w, name, strlen(name));
  sb_jw_arr_begin(w);
  sb_jw_str(w, value, strlen(value));
  sb_jw_arr_end(w);
  return 0;
}

void sb__connect_respond(grpc_call_t *gc, sb_http_req_t *req, sb_code_t code, const char *msg,
                         const uint8_t *body, size_t len) {
  sb_call_t *call = gc ? gc->call : NULL;
  for (const sb__md_t *md = call ? call->res_headers : NULL; md; md = md->next)
    sb__grpc_put_md(to_header, req, md);
  for (const sb__md_t *md = call ? call->res_trailers : NULL; md; md = md->next)
    sb__grpc_put_md(to_trailer_header, req, md);
  sb__grpc_put_cors(req, MODE_CONNECT, gc);
  if (code == SB_CODE_OK) {
    sb_buf_t z = {0};
    if (gc->out_gzip && call->compress && !sb_grpc_gzip(body, len, &z)) {
      sb_http_res_header(req, "content-encoding", "gzip");
      body = sb_buf_head(&z);
      len = sb_buf_pending(&z);
    }
    sb_http_respond(req, 200, sb__connect_ct(gc), body, len);
    sb_buf_free(&z);
    return;
  }
  sb_buf_t out = {0};
  sb_jw_t w;
  sb_jw_init(&w, &out);
  error_object(&w, code, msg);
  if (sb_jw_error(&w)) {
    sb_http_respond(req, 500, NULL, NULL, 0);
  } else {
    sb_http_respond(req, sb_code_http_status(code), "application/json", sb_buf_head(&out),
                    sb_buf_pending(&out));
  }
  sb_buf_free(&out);
}

int sb__connect_end_payload(const grpc_call_t *gc, sb_code_t code, const char *msg, sb_buf_t *out) {
  sb_jw_t w;
  sb_jw_init(&w, out);
  sb_jw_obj_begin(&w);
  if (code != SB_CODE_OK) {
    sb_jw_key(&w, "error", 5);
    error_object(&w, code, msg);
  }
  if (gc->call->res_trailers) {
    sb_jw_key(&w, "metadata", 8);
    sb_jw_obj_begin(&w);
    for (const sb__md_t *md = gc->call->res_trailers; md; md = md->next)
      sb__grpc_put_md(to_json, &w, md);
    sb_jw_obj_end(&w);
  }
  sb_jw_obj_end(&w);
  return sb_jw_error(&w);
}
