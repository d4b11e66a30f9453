#include "protocols/trpc/wire.h"

#include <string.h>
#include <strings.h>

#include "core/json.h"
#include "core/buf.h"
#include "switchboard/error.h"

/* rpc/codes.ts and http/getHTTPStatusCode.ts of @trpc/server v11, for the keys we use. The
 * five 5xx keys share -32603. */
static const sb_trpc_err_t errs[SB_TRPC_N_CODES] = {
    [SB_TRPC_PARSE_ERROR] = {"PARSE_ERROR", -32700, 400},
    [SB_TRPC_BAD_REQUEST] = {"BAD_REQUEST", -32600, 400},
    [SB_TRPC_UNAUTHORIZED] = {"UNAUTHORIZED", -32001, 401},
    [SB_TRPC_FORBIDDEN] = {"FORBIDDEN", -32003, 403},
    [SB_TRPC_NOT_FOUND] = {"NOT_FOUND", -32004, 404},
    [SB_TRPC_METHOD_NOT_SUPPORTED] = {"METHOD_NOT_SUPPORTED", -32005, 405},
    [SB_TRPC_TIMEOUT] = {"TIMEOUT", -32008, 408},
    [SB_TRPC_CONFLICT] = {"CONFLICT", -32009, 409},
    [SB_TRPC_PRECONDITION_FAILED] = {"PRECONDITION_FAILED", -32012, 412},
    [SB_TRPC_PAYLOAD_TOO_LARGE] = {"PAYLOAD_TOO_LARGE", -32013, 413},
    [SB_TRPC_UNSUPPORTED_MEDIA_TYPE] = {"UNSUPPORTED_MEDIA_TYPE", -32015, 415},
    [SB_TRPC_TOO_MANY_REQUESTS] = {"TOO_MANY_REQUESTS", -32029, 429},
    [SB_TRPC_CLIENT_CLOSED_REQUEST] = {"CLIENT_CLOSED_REQUEST", -32099, 499},
    [SB_TRPC_INTERNAL_SERVER_ERROR] = {"INTERNAL_SERVER_ERROR", -32603, 500},
    [SB_TRPC_NOT_IMPLEMENTED] = {"NOT_IMPLEMENTED", -32603, 501},
    [SB_TRPC_SERVICE_UNAVAILABLE] = {"SERVICE_UNAVAILABLE", -32603, 503},
};

const sb_trpc_err_t *sb__trpc_err(enum sb_trpc_code c) {
  return &errs[(unsigned)c < SB_TRPC_N_CODES ? c : SB_TRPC_INTERNAL_SERVER_ERROR];
}

enum sb_trpc_code sb__trpc_code_of(sb_code_t code) {
  /* The HTTP status of each pair agrees with sb_code_http_status() wherever tRPC has a key
   * for that status; DEADLINE_EXCEEDED becomes TIMEOUT (408) because tRPC's client reads it
   * as the request's own time running out, and ABORTED a CONFLICT as in Google's mapping. */
  switch (code) {
  case SB_CODE_CANCELLED:
    return SB_TRPC_CLIENT_CLOSED_REQUEST;
  case SB_CODE_INVALID_ARGUMENT:
    return SB_TRPC_BAD_REQUEST;
  case SB_CODE_OUT_OF_RANGE:
    return SB_TRPC_BAD_REQUEST;
  case SB_CODE_DEADLINE_EXCEEDED:
    return SB_TRPC_TIMEOUT;
  case SB_CODE_NOT_FOUND:
    return SB_TRPC_NOT_FOUND;
  case SB_CODE_ALREADY_EXISTS:
    return SB_TRPC_CONFLICT;
  case SB_CODE_ABORTED:
    return SB_TRPC_CONFLICT;
  case SB_CODE_PERMISSION_DENIED:
    return SB_TRPC_FORBIDDEN;
  case SB_CODE_RESOURCE_EXHAUSTED:
    return SB_TRPC_TOO_MANY_REQUESTS;
  case SB_CODE_FAILED_PRECONDITION:
    return SB_TRPC_PRECONDITION_FAILED;
  case SB_CODE_UNIMPLEMENTED:
    return SB_TRPC_NOT_IMPLEMENTED;
  case SB_CODE_UNAVAILABLE:
    return SB_TRPC_SERVICE_UNAVAILABLE;
  case SB_CODE_UNAUTHENTICATED:
    return SB_TRPC_UNAUTHORIZED;
  default:
    return SB_TRPC_INTERNAL_SERVER_ERROR; /* UNKNOWN, INTERNAL, DATA_LOSS */
  }
}

/* 1 when the media type of ct (before ';', blanks trimmed) is type, ignoring case. */
static int media_eq(const char *ct, const char *type) {
  while (*ct == ' ' || *ct == '\t')
    ct++;
  size_t n = strcspn(ct, ";");
  while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
    n--;
  return n == strlen(type) && strncasecmp(ct, type, n) == 0;
}

enum sb_trpc_media sb__trpc_media(const char *ct, int get) {
  if (ct && media_eq(ct, "application/json")) return SB_TRPC_MEDIA_JSON;
  if (ct && (media_eq(ct, "multipart/form-data") || media_eq(ct, "application/octet-stream")))
    return SB_TRPC_MEDIA_OTHER;
  if (get) return SB_TRPC_MEDIA_JSON;
  return ct ? SB_TRPC_MEDIA_BAD : SB_TRPC_MEDIA_NONE;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Form-decodes s[0..n) into out (replacing it, NUL-terminated), keeping a '%' that does not
 * start a valid escape, as the WHATWG URL parser does. Returns 0 or SB_ENOMEM. */
static int form_decode(const char *s, size_t n, sb_buf_t *out) {
  sb_buf_reset(out);
  if (sb_buf_reserve(out, n + 1)) return SB_ENOMEM;
  char *o = (char *)out->data + out->len;
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    int hi = s[i] == '%' && i + 2 < n ? hexval(s[i + 1]) : -1;
    int lo = hi < 0 ? -1 : hexval(s[i + 2]);
    if (lo >= 0) {
      o[k++] = (char)(hi << 4 | lo);
      i += 2;
    } else {
      o[k++] = s[i] == '+' ? ' ' : s[i];
    }
  }
  o[k] = '\0';
  out->len += k;
  return 0;
}

int sb__trpc_query_get(const char *q, const char *name, sb_buf_t *out) {
  size_t nl = strlen(name);
  while (*q) {
    size_t pair = strcspn(q, "&");
    const char *eq = memchr(q, '=', pair);
    size_t kn = eq ? (size_t)(eq - q) : pair;
    /* Keys are compared decoded; ours are plain tokens, so only an encoded key costs more. */
    int hit = kn == nl && memcmp(q, name, nl) == 0;
    if (!hit && memchr(q, '%', kn)) {
      if (form_decode(q, kn, out)) return SB_ENOMEM;
      hit = sb_buf_pending(out) == nl && memcmp(sb_buf_head(out), name, nl) == 0;
    }
    if (hit) {
      if (eq) return form_decode(eq + 1, pair - kn - 1, out) ? SB_ENOMEM : 1;
      return form_decode("", 0, out) ? SB_ENOMEM : 1;
    }
    q += pair + (q[pair] == '&');
  }
  return 0;
}

int sb__trpc_split_paths(const char *path, size_t len, int batch, sb_trpc_span_t *out, size_t max,
                         size_t *n) {
  *n = 0;
  if (!batch) {
    if (max == 0) return SB_ELIMIT;
    out[0] = (sb_trpc_span_t){path, len};
    *n = 1;
    return 0;
  }
  size_t start = 0;
  for (size_t i = 0; i <= len; i++) {
    if (i < len && path[i] != ',') continue;
    if (*n == max) return SB_ELIMIT;
    out[(*n)++] = (sb_trpc_span_t){path + start, i - start};
    start = i + 1;
  }
  return 0;
}

int sb__trpc_json_valid(const char *json, size_t len, const char **why) {
  sb_jr_t r;
  sb_jr_init(&r, json, len);
  sb_jtok_t t;
  while ((t = sb_jr_next(&r)) != SB_JT_END && t != SB_JT_ERROR) {
  }
  *why = t == SB_JT_ERROR ? r.err : NULL;
  sb_jr_free(&r);
  return t == SB_JT_ERROR ? SB_EPROTO : 0;
}

/* The index a batch member's key names: a decimal without leading zeros (String(i) of an
 * array index, which is how JSON.parse's object is indexed), or -1. */
static long key_index(const char *k, size_t n, size_t limit) {
  if (n == 0 || n > 6 || (n > 1 && k[0] == '0')) return -1;
  long v = 0;
  for (size_t i = 0; i < n; i++) {
    if (k[i] < '0' || k[i] > '9') return -1;
    v = v * 10 + (k[i] - '0');
  }
  return (size_t)v < limit ? v : -1;
}

int sb__trpc_batch_inputs(const char *json, size_t len, sb_trpc_span_t *in, size_t n,
                          const char **why) {
  for (size_t i = 0; i < n; i++)
    in[i] = (sb_trpc_span_t){NULL, 0};
  /* The whole document must parse first: JSON.parse runs before the object check. */
  if (sb__trpc_json_valid(json, len, why)) return SB_EPROTO;
  sb_jr_t r;
  sb_jr_init(&r, json, len);
  int rc = 0;
  if (sb_jr_next(&r) != SB_JT_OBJ_BEGIN) {
    *why = "\"input\" needs to be an object when doing a batch call";
    rc = SB_EINVAL;
    goto out;
  }
  for (;;) {
    sb_jtok_t t = sb_jr_next(&r);
    if (t != SB_JT_KEY) break; /* the end of the object (validity was checked above) */
    long idx = key_index(r.str, r.len, n);
    const uint8_t *vstart = r.p;
    t = sb_jr_next(&r);
    if (sb_jr_skip(&r, t)) break;
    if (idx < 0) continue;
    /* The value's text: after the ':' and blanks up to where the reader stopped. */
    while (vstart < r.p && (*vstart == ':' || *vstart == ' ' || *vstart == '\t' ||
                            *vstart == '\n' || *vstart == '\r'))
      vstart++;
    in[idx] = (sb_trpc_span_t){(const char *)vstart, (size_t)(r.p - vstart)};
  }
out:
  sb_jr_free(&r);
  return rc;
}

char *sb__trpc_proc_name(const char *method, char *out, size_t cap) {
  size_t i = 0;
  for (; method[i] && i + 1 < cap; i++)
    out[i] = i == 0 && method[i] >= 'A' && method[i] <= 'Z' ? (char)(method[i] + 32) : method[i];
  if (cap) out[i] = '\0';
  return out;
}
