#include "net/h1_parse.h"

#include <string.h>
#include <strings.h>

static int is_tchar(uint8_t c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return 1;
  return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

int64_t sb__h1p_skip_empty(const uint8_t *p, size_t len) {
  size_t i = 0;
  unsigned lines = 0;
  while (i < len && (p[i] == '\r' || p[i] == '\n')) {
    if (p[i] == '\n') return -400; /* bare LF */
    if (i + 1 >= len) break;       /* a CR whose LF has not arrived */
    if (p[i + 1] != '\n') return -400;
    if (++lines > SB_H1P_MAX_EMPTY_LINES) return -400;
    i += 2;
  }
  return (int64_t)i;
}

size_t sb__h1p_head_end(const uint8_t *p, size_t len, size_t *scan) {
  /* Every LF is looked at once; the bytes before it are in p even across calls. */
  size_t i = *scan;
  while (i < len) {
    const uint8_t *lf = memchr(p + i, '\n', len - i);
    if (!lf) break;
    size_t j = (size_t)(lf - p);
    /* A bare LF ends the head here: it is malformed, and the parser will say so now
     * rather than after a timeout. */
    if (j == 0 || p[j - 1] != '\r' || (j >= 3 && p[j - 2] == '\n' && p[j - 3] == '\r')) {
      *scan = 0;
      return j + 1;
    }
    i = j + 1;
  }
  *scan = len;
  return 0;
}

/* Parses "HTTP/x.y" exactly. Returns the minor version, -505 or -400. */
static int parse_version(const uint8_t *v, size_t n) {
  if (n != 8 || memcmp(v, "HTTP/", 5) != 0 || v[6] != '.' || v[5] < '0' || v[5] > '9' ||
      v[7] < '0' || v[7] > '9')
    return -400;
  if (v[5] != '1') return -505;
  return v[7] == '0' ? 0 : 1;
}

int sb__h1p_parse_head(const uint8_t *p, size_t len, sb__h1p_line_t *line,
                       sb__h1p_field_cb on_field, void *ud) {
  /* len includes the final CRLFCRLF; every line below ends in CRLF within p[0..len). */
  const uint8_t *end = p + len;
  const uint8_t *s = p;
  /* method */
  while (s < end && is_tchar(*s))
    s++;
  if (s == p || s >= end || *s != ' ') return 400;
  line->method = (const char *)p;
  line->method_len = (size_t)(s - p);
  /* request-target */
  const uint8_t *t = ++s;
  while (s<end && * s> 0x20 && *s < 0x7f)
    s++;
  if (s == t || s >= end || *s != ' ') return 400;
  line->target = (const char *)t;
  line->target_len = (size_t)(s - t);
  /* version */
  const uint8_t *v = ++s;
  while (s < end && *s != '\r' && *s != '\n')
    s++;
  if (s + 1 >= end || s[0] != '\r' || s[1] != '\n') return 400;
  int minor = parse_version(v, (size_t)(s - v));
  if (minor < 0) return -minor;
  line->minor = minor;
  s += 2;
  /* fields, until the empty line */
  while (s < end) {
    if (s[0] == '\r') {
      if (s + 1 < end && s[1] == '\n' && s + 2 == end) return 0;
      return 400;
    }
    if (s[0] == ' ' || s[0] == '\t') return 400; /* obs-fold */
    const uint8_t *name = s;
    while (s < end && is_tchar(*s))
      s++;
    if (s == name || s >= end || *s != ':') return 400;
    size_t nlen = (size_t)(s - name);
    s++;
    while (s < end && (*s == ' ' || *s == '\t'))
      s++;
    const uint8_t *val = s;
    while (s < end && (*s >= 0x20 || *s == '\t') && *s != 0x7f)
      s++;
    if (s + 1 >= end || s[0] != '\r' || s[1] != '\n') return 400; /* CTL, bare CR or LF */
    const uint8_t *vend = s;
    while (vend > val && (vend[-1] == ' ' || vend[-1] == '\t'))
      vend--;
    int rc = on_field(ud, (const char *)name, nlen, (const char *)val, (size_t)(vend - val));
    if (rc) return rc;
    s += 2;
  }
  return 400;
}

int64_t sb__h1p_chunk_line(const uint8_t *p, size_t len, uint64_t *size) {
  size_t i = 0;
  uint64_t v = 0;
  while (i < len) {
    uint8_t c = p[i];
    int d = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                   : -1;
    if (d < 0) break;
    if (i >= 16) return -400; /* more than 64 bits */
    v = (v << 4) | (uint64_t)d;
    i++;
  }
  if (i == len) return len >= SB_H1P_MAX_CHUNK_LINE ? -400 : 0;
  if (i == 0) return -400;
  /* chunk-ext: ";" name [ "=" value ], values may be quoted; bounded by the line limit. */
  int quoted = 0;
  for (; i < len; i++) {
    uint8_t c = p[i];
    if (quoted) {
      if (c == '"')
        quoted = 0;
      else if (c == '\\')
        i++;
      else if (c < 0x20 && c != '\t')
        return -400;
      continue;
    }
    if (c == '\r') break;
    if (c == '"')
      quoted = 1;
    else if (!(c == ';' || c == '=' || c == ' ' || c == '\t' || is_tchar(c)))
      return -400;
  }
  if (i >= SB_H1P_MAX_CHUNK_LINE) return -400;
  if (i + 1 >= len) return len >= SB_H1P_MAX_CHUNK_LINE ? -400 : 0;
  if (p[i] != '\r' || p[i + 1] != '\n') return -400;
  *size = v;
  return (int64_t)(i + 2);
}

int sb__h1p_content_length(const char *v, size_t n, uint64_t *out) {
  if (n == 0 || n > 19) return -1; /* 19 digits always fit in 63 bits */
  uint64_t x = 0;
  for (size_t i = 0; i < n; i++) {
    if (v[i] < '0' || v[i] > '9') return -1;
    x = x * 10 + (uint64_t)(v[i] - '0');
  }
  *out = x;
  return 0;
}

int sb__h1p_has_token(const char *v, size_t n, const char *tok) {
  size_t tl = strlen(tok);
  size_t i = 0;
  while (i < n) {
    while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
      i++;
    size_t b = i;
    while (i < n && v[i] != ',')
      i++;
    size_t e = i;
    while (e > b && (v[e - 1] == ' ' || v[e - 1] == '\t'))
      e--;
    if (e - b == tl && strncasecmp(v + b, tok, tl) == 0) return 1;
  }
  return 0;
}
