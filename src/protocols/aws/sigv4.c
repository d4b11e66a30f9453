/*
 * AWS Signature Version 4 verification of AWS requests (SQS, SNS) (header form: an Authorization
 * header "AWS4-HMAC-SHA256 Credential=<key>/<date>/<region>/<service>/aws4_request,
 * SignedHeaders=<h1;h2;...>, Signature=<hex>").
 *
 * The server rebuilds what the client signed:
 *   canonical request = method \n canonical URI \n canonical query \n canonical headers \n
 *                       signed headers \n hex(SHA-256(body)) (or x-amz-content-sha256)
 *   string to sign    = "AWS4-HMAC-SHA256" \n X-Amz-Date \n scope \n hex(SHA-256(canonical))
 *   signing key       = HMAC chain "AWS4"+secret -> date -> region -> service -> "aws4_request"
 * and compares HMAC(signing key, string to sign) in constant time. The canonical URI is the
 * request path as sent (SQS and SNS paths are "/" or "/<account>/<queue>", nothing to re-encode);
 * the canonical query sorts the form-decoded-then-re-encoded pairs of the query string. Requests
 * more than AWS_SIGV4_SKEW_S away from the server's clock are refused, as AWS does.
 * Runs on the request's loop; allocates only on the stack and in a caller's buffer.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "core/buf.h"
#include "core/codec.h"
#include "protocols/aws/aws.h"
#include "switchboard/error.h"

#define AWS_SIGV4_SKEW_S 900  /* 15 minutes, AWS's limit */
#define AWS_SIGV4_HEADERS 32u /* signed headers we accept */
#define AWS_SIGV4_QUERY 128u  /* query parameters we sort */

static void hexify(const uint8_t *p, size_t n, char *out) {
  static const char hx[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = hx[p[i] >> 4];
    out[2 * i + 1] = hx[p[i] & 15];
  }
  out[2 * n] = 0;
}

static void sha256_hex(const void *p, size_t n, char out[65]) {
  uint8_t md[EVP_MAX_MD_SIZE];
  unsigned int ml = 0;
  EVP_Digest(p, n, md, &ml, EVP_sha256(), NULL);
  hexify(md, 32, out);
}

static void hmac(const void *key, size_t klen, const void *msg, size_t mlen, uint8_t out[32]) {
  unsigned int ol = 32;
  HMAC(EVP_sha256(), key, (int)klen, msg, mlen, out, &ol);
}

/* Appends s[0..n) with AWS's URI encoding (unreserved characters kept, the rest %XX). */
static int uri_encode(sb_buf_t *b, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      if (sb_buf_append(b, &c, 1)) return SB_ENOMEM;
    } else if (sb_buf_appendf(b, "%%%02X", c)) {
      return SB_ENOMEM;
    }
  }
  return 0;
}

typedef struct qpair {
  char *enc; /* "key=value", both URI-encoded; heap */
} qpair_t;

static int qcmp(const void *a, const void *b) {
  return strcmp(((const qpair_t *)a)->enc, ((const qpair_t *)b)->enc);
}

/* The canonical query string of a raw query. Returns 0 or SB_EINVAL / SB_ENOMEM. */
static int canonical_query(sb_buf_t *out, const char *q) {
  qpair_t pairs[AWS_SIGV4_QUERY];
  size_t n = 0;
  int rc = 0;
  size_t len = strlen(q);
  char *tmp = malloc(len + 2);
  if (!tmp) return SB_ENOMEM;
  for (size_t i = 0; i < len && !rc;) {
    const char *p = q + i;
    const char *amp = memchr(p, '&', len - i);
    size_t plen = amp ? (size_t)(amp - p) : len - i;
    i += plen + 1;
    if (!plen) continue;
    if (n == AWS_SIGV4_QUERY) {
      rc = SB_EINVAL;
      break;
    }
    const char *eq = memchr(p, '=', plen);
    size_t kl = eq ? (size_t)(eq - p) : plen;
    sb_buf_t e = {0};
    long dk = sb_pct_decode(p, kl, tmp, 0);
    if (dk < 0 || uri_encode(&e, tmp, (size_t)dk) || sb_buf_append(&e, "=", 1)) {
      rc = dk < 0 ? SB_EINVAL : SB_ENOMEM;
    } else if (eq) {
      long dv = sb_pct_decode(eq + 1, plen - kl - 1, tmp, 0);
      if (dv < 0 || uri_encode(&e, tmp, (size_t)dv)) rc = dv < 0 ? SB_EINVAL : SB_ENOMEM;
    }
    if (!rc && sb_buf_append(&e, "", 1)) rc = SB_ENOMEM;
    if (rc) {
      sb_buf_free(&e);
      break;
    }
    pairs[n++].enc = (char *)e.data; /* takes the buffer's storage */
  }
  free(tmp);
  if (!rc) {
    qsort(pairs, n, sizeof pairs[0], qcmp);
    for (size_t i = 0; i < n && !rc; i++)
      if ((i && sb_buf_append(out, "&", 1)) ||
          sb_buf_append(out, pairs[i].enc, strlen(pairs[i].enc)))
        rc = SB_ENOMEM;
  }
  for (size_t i = 0; i < n; i++)
    free(pairs[i].enc);
  return rc;
}

/* Appends a header value trimmed, with inner runs of spaces collapsed to one. */
static int trimmed(sb_buf_t *b, const char *v, size_t n) {
  while (n && (*v == ' ' || *v == '\t'))
    v++, n--;
  while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
    n--;
  int space = 0;
  for (size_t i = 0; i < n; i++) {
    if (v[i] == ' ' || v[i] == '\t') {
      space = 1;
      continue;
    }
    if (space && sb_buf_append(b, " ", 1)) return SB_ENOMEM;
    space = 0;
    if (sb_buf_append(b, &v[i], 1)) return SB_ENOMEM;
  }
  return 0;
}

/* Finds "name=" in the Authorization header's parameter list; sets *v and *n. */
static int auth_param(const char *auth, const char *name, const char **v, size_t *n) {
  size_t nl = strlen(name);
  for (const char *p = auth; (p = strstr(p, name)); p += nl) {
    if (p != auth && p[-1] != ' ' && p[-1] != ',') continue;
    if (p[nl] != '=') continue;
    *v = p + nl + 1;
    *n = strcspn(*v, ", ");
    return 0;
  }
  return -1;
}

int sb__aws_sigv4_check(sb_http_req_t *req, const void *body, size_t len, const char *key_id,
                        const char *secret, int64_t now_s, const char **code) {
  const char *auth = sb_http_req_header(req, "authorization", NULL);
  if (!auth) {
    *code = "MissingAuthenticationToken";
    return SB_EINVAL;
  }
  *code = "IncompleteSignature";
  if (strncmp(auth, "AWS4-HMAC-SHA256 ", 17)) return SB_EINVAL;
  const char *cred, *signed_h, *sig;
  size_t cred_n, sh_n, sig_n;
  if (auth_param(auth, "Credential", &cred, &cred_n) ||
      auth_param(auth, "SignedHeaders", &signed_h, &sh_n) ||
      auth_param(auth, "Signature", &sig, &sig_n) || sig_n != 64)
    return SB_EINVAL;
  /* Credential = <key>/<yyyymmdd>/<region>/<service>/aws4_request */
  const char *slash = memchr(cred, '/', cred_n);
  if (!slash) return SB_EINVAL;
  size_t kl = (size_t)(slash - cred);
  const char *scope = slash + 1;
  size_t scope_n = cred_n - kl - 1;
  if (kl != strlen(key_id) || memcmp(cred, key_id, kl)) {
    *code = "InvalidClientTokenId";
    return SB_EINVAL;
  }
  const char *parts[4];
  size_t plen[4];
  const char *p = scope, *end = scope + scope_n;
  for (int i = 0; i < 4; i++) {
    const char *s = memchr(p, '/', (size_t)(end - p));
    if (i < 3 && !s) return SB_EINVAL;
    parts[i] = p;
    plen[i] = s ? (size_t)(s - p) : (size_t)(end - p);
    p = s ? s + 1 : end;
  }
  if (plen[3] != 12 || memcmp(parts[3], "aws4_request", 12) || plen[0] != 8) return SB_EINVAL;
  const char *amz_date = sb_http_req_header(req, "x-amz-date", NULL);
  *code = "SignatureDoesNotMatch";
  if (!amz_date || strlen(amz_date) != 16 || memcmp(amz_date, parts[0], 8)) return SB_EINVAL;
  struct tm tm = {0};
  if (!strptime(amz_date, "%Y%m%dT%H%M%SZ", &tm)) return SB_EINVAL;
  int64_t t = (int64_t)timegm(&tm);
  if (t < now_s - AWS_SIGV4_SKEW_S || t > now_s + AWS_SIGV4_SKEW_S) {
    *code = "RequestExpired";
    return SB_EINVAL;
  }

  sb_buf_t cr = {0};
  int rc = 0;
  char hash[65];
  const char *ph = sb_http_req_header(req, "x-amz-content-sha256", NULL);
  if (ph && strcmp(ph, "UNSIGNED-PAYLOAD") && strlen(ph) == 64)
    memcpy(hash, ph, 65);
  else if (ph && strcmp(ph, "UNSIGNED-PAYLOAD") == 0)
    memcpy(hash, ph, strlen(ph) + 1);
  else
    sha256_hex(body ? body : "", len, hash);
  if (sb_buf_appendf(&cr, "%s\n%s\n", sb_http_req_method(req), sb_http_req_path(req)) ||
      canonical_query(&cr, sb_http_req_query(req)) || sb_buf_append(&cr, "\n", 1))
    rc = SB_ENOMEM;
  /* Canonical headers, in SignedHeaders' order (already sorted by the signer). */
  size_t nh = 0;
  for (const char *h = signed_h; !rc && h < signed_h + sh_n;) {
    size_t hl = strcspn(h, ";, ");
    if (hl == 0 || hl >= 64 || ++nh > AWS_SIGV4_HEADERS) {
      rc = SB_EINVAL;
      break;
    }
    char name[64];
    for (size_t i = 0; i < hl; i++)
      name[i] = (char)tolower((unsigned char)h[i]);
    name[hl] = 0;
    const char *v;
    size_t vl = 0;
    if (strcmp(name, "host") == 0) {
      v = sb_http_req_authority(req);
      vl = strlen(v);
    } else {
      v = sb_http_req_header(req, name, &vl);
      if (!v) {
        rc = SB_EINVAL;
        break;
      }
    }
    if (sb_buf_appendf(&cr, "%s:", name) || trimmed(&cr, v, vl) || sb_buf_append(&cr, "\n", 1))
      rc = SB_ENOMEM;
    h += hl;
    if (*h == ';')
      h++;
    else
      break;
  }
  if (!rc && (sb_buf_append(&cr, "\n", 1) || sb_buf_append(&cr, signed_h, sh_n) ||
              sb_buf_appendf(&cr, "\n%s", hash)))
    rc = SB_ENOMEM;
  if (rc) {
    sb_buf_free(&cr);
    if (rc == SB_ENOMEM) *code = "InternalError";
    return rc;
  }
  char cr_hash[65];
  sha256_hex(sb_buf_head(&cr), sb_buf_pending(&cr), cr_hash);
  sb_buf_free(&cr);
  char sts[512];
  int sl = snprintf(sts, sizeof sts, "AWS4-HMAC-SHA256\n%s\n%.*s\n%s", amz_date, (int)scope_n,
                    scope, cr_hash);
  if (sl < 0 || (size_t)sl >= sizeof sts) return SB_EINVAL;
  char k0[160];
  int k0l = snprintf(k0, sizeof k0, "AWS4%s", secret);
  if (k0l < 0 || (size_t)k0l >= sizeof k0) return SB_EINVAL;
  uint8_t k[32];
  hmac(k0, (size_t)k0l, parts[0], plen[0], k);
  hmac(k, 32, parts[1], plen[1], k);
  hmac(k, 32, parts[2], plen[2], k);
  hmac(k, 32, "aws4_request", 12, k);
  uint8_t mac[32];
  hmac(k, 32, sts, (size_t)sl, mac);
  char want[65];
  hexify(mac, 32, want);
  OPENSSL_cleanse(k, sizeof k);
  OPENSSL_cleanse(k0, sizeof k0);
  if (CRYPTO_memcmp(want, sig, 64) != 0) return SB_EINVAL;
  *code = NULL;
  return 0;
}
