/*
 * Strict JSON (RFC 8259): pull reader, number conversions and writer. The API and its
 * contract are in json.h; this comment describes the format as this file enforces it.
 *
 * Grammar (RFC 8259 section 2-7), with the validity conditions the reader checks:
 *
 *   text    = ws value ws                      (1) exactly one value; only ws after it
 *   ws      = *( %x20 / %x09 / %x0A / %x0D )    (2) no comments, no other white space
 *   value   = object / array / string / number / "true" / "false" / "null"
 *   object  = "{" ws [ member *( ws "," ws member ) ] ws "}"    (3) no trailing comma
 *   member  = string ws ":" ws value                             (4) keys are strings
 *   array   = "[" ws [ value *( ws "," ws value ) ] ws "]"
 *   number  = [ "-" ] int [ frac ] [ exp ]
 *   int     = "0" / ( %x31-39 *DIGIT )          (5) no leading zeros, no "+"
 *   frac    = "." 1*DIGIT                       (6) no "1." and no ".5"
 *   exp     = ( "e" / "E" ) [ "+" / "-" ] 1*DIGIT
 *   string  = %x22 *char %x22
 *   char    = %x20-21 / %x23-5B / %x5D-10FFFF   (7) control characters must be escaped
 *           / "\" ( %x22 / "\" / "/" / "b" / "f" / "n" / "r" / "t" / "u" 4HEXDIG )
 *
 *   (8) String bytes are well-formed UTF-8 (Unicode 15, table 3-7): no overlong forms
 *       (C0, C1, E0 80..9F, F0 80..8F), no encoded surrogates (ED A0..BF), nothing above
 *       U+10FFFF (F4 90.., F5..FF), no truncated sequences, no bare continuation bytes.
 *   (9) A \u escape of a high surrogate (D800..DBFF) is immediately followed by a \u escape
 *       of a low surrogate (DC00..DFFF); a low surrogate never stands alone. \u0000 is
 *       allowed: decoded strings may contain NUL, so callers use r->len, not strlen.
 *   (10) At most SB_JSON_MAX_DEPTH (64) containers are open at once.
 *   (11) A number is followed by a delimiter (ws , ] } or the end), so "1.5.3", "1e5e" and
 *        "12abc" are rejected as numbers rather than reported as missing commas.
 *
 * Reader. One call to sb_jr_next() scans exactly one token. The reader is a small state
 * machine (enum jr_state in r->state) plus the stack of open containers; commas, colons and
 * white space are consumed on the way to the next token and never returned. A string is
 * scanned twice: memchr finds the closing quote (so the scratch buffer is reserved once, at
 * most the raw length: escapes only ever shrink), then one pass validates and copies, eight
 * plain ASCII bytes at a time. Errors are sticky: after SB_JT_ERROR every call returns it.
 * Memory: the scratch buffer is the only allocation; it grows to the longest string seen and
 * is reused. Out of memory is reported as SB_JT_ERROR with err "out of memory".
 *
 * Numbers. The reader returns the raw text; sb_json_to_* re-validate the grammar (they also
 * parse numbers quoted in strings, as proto3 allows for 64-bit integers) and convert exactly:
 * integers digit by digit with overflow checks after normalising the exponent ("1.0e2" is
 * 100, "0e99999" is 0), doubles with Clinger's exact fast path (at most 15 significant
 * digits, |exponent| <= 22) and otherwise glibc strtod on a normalised copy (digits and an
 * exponent, no decimal point, so the locale does not matter), truncated to 800 significant
 * digits plus a sticky digit, which preserves correct rounding (767 digits decide any tie).
 *
 * Writer. Appends straight to the caller's sb_buf: no tree, no temporary strings. Strings are
 * escaped minimally (\" \\ \b \f \n \r \t, other C0 controls as \u00XX; DEL and non-ASCII
 * are copied) after UTF-8 validation; a string that fails validation is rolled back out of
 * the buffer (with its comma) and sets err. Doubles use ECMAScript's Number::toString layout
 * (exponent form below 1e-6 and from 1e21: "1e+21", "1.5e-7") with the shortest digits that
 * read back to the same double: integers below 2^53 are printed directly; otherwise the
 * 17-digit rendering is rounded to 15 digits (if any 15-digit decimal round-trips, that one
 * does), then 16 digits (the correctly rounded one or a neighbour, for powers of two whose
 * rounding interval is lopsided), then 17 digits, which always round-trips. Subnormals (fewer
 * significant bits) try 1, 2, ... digits instead. Negative zero is written "-0". After the
 * first error every writer call is a no-op.
 */
#include "core/json.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "switchboard/error.h"

/* ---------------------------------------------------------------------------------------
 * Shared helpers
 * ------------------------------------------------------------------------------------- */

#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* Non-zero when some byte of x is zero / below n (n <= 128). Exact as booleans (not per
 * byte), which is all the fast paths need. */
static inline uint64_t swar_has_zero(uint64_t x) {
  return (x - ONES) & ~x & HIGHS;
}
static inline uint64_t swar_has_less(uint64_t x, uint64_t n) {
  return (x - ONES * n) & ~x & HIGHS;
}

static inline int is_digit(uint8_t c) {
  return (unsigned)(c - '0') < 10u;
}

/* Length (2..4) of the well-formed UTF-8 sequence at s (s[0] >= 0x80, s < lim), or 0 when it
 * is not well-formed (condition 8 of the essay). */
static size_t utf8_seq(const uint8_t *s, const uint8_t *lim) {
  uint8_t c = s[0];
  size_t avail = (size_t)(lim - s);
  if (c < 0xC2) return 0; /* continuation byte, or overlong C0/C1 lead */
  if (c < 0xE0) return avail >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
  if (c < 0xF0) {
    if (avail < 3) return 0;
    uint8_t lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    return s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80 ? 3 : 0;
  }
  if (c < 0xF5) {
    if (avail < 4) return 0;
    uint8_t lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    return s[1] >= lo && s[1] <= hi && (s[2] & 0xC0) == 0x80 && (s[3] & 0xC0) == 0x80 ? 4 : 0;
  }
  return 0;
}

/* Writes v in decimal to buf (at least 20 bytes); returns the length. */
static size_t u64_to_dec(char *buf, uint64_t v) {
  char tmp[20];
  size_t n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  for (size_t i = 0; i < n; i++)
    buf[i] = tmp[n - 1 - i];
  return n;
}

/* ---------------------------------------------------------------------------------------
 * Numbers
 * ------------------------------------------------------------------------------------- */

/* Exponents are accumulated up to this magnitude and then saturate: no digit count that fits
 * in memory can bring a larger exponent back into any type's range. */
#define EXP_SAT 1000000000000000ll
/* Significant digits handed to strtod; more only act as a sticky non-zero tail. */
#define MAX_SIG_DIGITS 800

/* The parts of a JSON number, pointing into its text. */
typedef struct jnum {
  const uint8_t *ip; /* integer-part digits */
  size_t il;         /* number of integer digits; >= 1 */
  const uint8_t *fp; /* fraction digits, NULL when there is no fraction */
  size_t fl;         /* number of fraction digits; 0 when fp is NULL */
  int64_t exp;       /* decimal exponent, saturated to +-EXP_SAT (about) */
  int neg;           /* 1 when the text starts with '-' */
} jnum_t;

/* Scans the JSON number starting at p (p < end). Returns the first byte after it with *err
 * NULL, or the offending byte with *err set to a static message. */
static const uint8_t *scan_number(const uint8_t *p, const uint8_t *end, jnum_t *m,
                                  const char **err) {
  const uint8_t *q = p;
  m->neg = 0;
  m->fp = NULL;
  m->fl = 0;
  m->exp = 0;
  if (*q == '-') {
    m->neg = 1;
    q++;
  }
  m->ip = q;
  if (q == end || !is_digit(*q)) {
    *err = "invalid number: digit expected";
    return q;
  }
  if (*q == '0') {
    q++;
    if (q < end && is_digit(*q)) {
      *err = "invalid number: leading zero";
      return q;
    }
  } else {
    while (q < end && is_digit(*q))
      q++;
  }
  m->il = (size_t)(q - m->ip);
  if (q < end && *q == '.') {
    q++;
    m->fp = q;
    while (q < end && is_digit(*q))
      q++;
    m->fl = (size_t)(q - m->fp);
    if (!m->fl) {
      *err = "invalid number: digit expected after '.'";
      return q;
    }
  }
  if (q < end && (*q | 0x20) == 'e') {
    q++;
    int eneg = 0;
    if (q < end && (*q == '+' || *q == '-')) eneg = *q++ == '-';
    if (q == end || !is_digit(*q)) {
      *err = "invalid number: digit expected in exponent";
      return q;
    }
    int64_t e = 0;
    while (q < end && is_digit(*q)) {
      if (e < EXP_SAT) e = e * 10 + (*q - '0');
      q++;
    }
    m->exp = eneg ? -e : e;
  }
  *err = NULL;
  return q;
}

/* Parses s[0..n) as exactly one JSON number. Returns 0 or -1. */
static int parse_exact(const char *s, size_t n, jnum_t *m) {
  if (!s || n == 0) return -1;
  const char *err;
  const uint8_t *end = (const uint8_t *)s + n;
  const uint8_t *q = scan_number((const uint8_t *)s, end, m, &err);
  return err || q != end ? -1 : 0;
}

/* Digit i of the virtual string "integer digits ++ fraction digits". */
static inline unsigned num_digit(const jnum_t *m, size_t i) {
  return (unsigned)((i < m->il ? m->ip[i] : m->fp[i - m->il]) - '0');
}

/* Decimal place (power of ten) of digit i. */
static inline int64_t num_place(const jnum_t *m, size_t i) {
  return (int64_t)m->il - 1 - (int64_t)i + m->exp;
}

/* Finds the first (*a) and last (*b) non-zero digits. Returns 0 when the value is zero. */
static int num_sig(const jnum_t *m, size_t *a, size_t *b) {
  size_t total = m->il + m->fl, i = 0;
  while (i < total && num_digit(m, i) == 0)
    i++;
  if (i == total) return 0;
  size_t j = total - 1;
  while (num_digit(m, j) == 0)
    j--;
  *a = i;
  *b = j;
  return 1;
}

/* The magnitude of an integral number. Returns 0, -1 (not integral) or -2 (> UINT64_MAX). */
static int num_magnitude(const jnum_t *m, uint64_t *mag) {
  size_t a, b;
  if (!num_sig(m, &a, &b)) {
    *mag = 0;
    return 0;
  }
  int64_t low = num_place(m, b), high = num_place(m, a);
  if (low < 0) return -1;
  if (high > 19) return -2;
  uint64_t v = 0;
  for (size_t i = a; i <= b; i++) {
    unsigned d = num_digit(m, i);
    if (v > (UINT64_MAX - d) / 10) return -2;
    v = v * 10 + d;
  }
  for (int64_t k = 0; k < low; k++) {
    if (v > UINT64_MAX / 10) return -2;
    v *= 10;
  }
  *mag = v;
  return 0;
}

int sb_json_to_int64(const char *s, size_t n, int64_t *out) {
  jnum_t m;
  uint64_t mag;
  if (parse_exact(s, n, &m)) return -1;
  int rc = num_magnitude(&m, &mag);
  if (rc) return rc;
  if (m.neg) {
    if (mag > (uint64_t)INT64_MAX + 1) return -2;
    *out = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
  } else {
    if (mag > (uint64_t)INT64_MAX) return -2;
    *out = (int64_t)mag;
  }
  return 0;
}

int sb_json_to_uint64(const char *s, size_t n, uint64_t *out) {
  jnum_t m;
  uint64_t mag;
  if (parse_exact(s, n, &m)) return -1;
  int rc = num_magnitude(&m, &mag);
  if (rc) return rc;
  if (m.neg && mag) return -2;
  *out = mag;
  return 0;
}

static const double pow10_exact[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* The double nearest to dg[0..k) x 10^e (dg: decimal digits, k >= 1, k <= MAX_SIG_DIGITS + 1),
 * negated when neg. Correctly rounded (round to nearest, ties to even). */
static double digits_to_double(const char *dg, size_t k, int64_t e, int neg) {
#if FLT_EVAL_METHOD == 0
  /* Clinger: a mantissa below 2^53 and a power of ten below 2^53 are exact, and one IEEE
   * multiplication or division rounds correctly. */
  if (k <= 15 && e >= -22 && e <= 22 + 15 - (int64_t)k) {
    uint64_t mant = 0;
    for (size_t i = 0; i < k; i++)
      mant = mant * 10 + (uint64_t)(dg[i] - '0');
    double x = (double)mant;
    if (e < 0)
      x /= pow10_exact[-e];
    else if (e > 22)
      x = x * pow10_exact[e - 22] * 1e22; /* first product exact: < 10^15 */
    else
      x *= pow10_exact[e];
    return neg ? -x : x;
  }
#endif
  char buf[MAX_SIG_DIGITS + 32];
  size_t n = 0;
  if (neg) buf[n++] = '-';
  memcpy(buf + n, dg, k);
  n += k;
  buf[n++] = 'e';
  if (e < 0) {
    buf[n++] = '-';
    n += u64_to_dec(buf + n, (uint64_t)-e);
  } else {
    n += u64_to_dec(buf + n, (uint64_t)e);
  }
  buf[n] = '\0';
  return strtod(buf, NULL);
}

int sb_json_to_double(const char *s, size_t n, double *out) {
  jnum_t m;
  size_t a, b;
  if (parse_exact(s, n, &m)) return -1;
  if (!num_sig(&m, &a, &b)) {
    *out = m.neg ? -0.0 : 0.0;
    return 0;
  }
  int64_t high = num_place(&m, a);
  /* Far outside the double range, answer without building the digit string: DBL_MAX is
   * about 1.8e308 and the smallest subnormal 4.9e-324 (half of it rounds to zero). */
  if (high > 310) return -2;
  if (high < -330) {
    *out = m.neg ? -0.0 : 0.0;
    return 0;
  }
  char dg[MAX_SIG_DIGITS + 1];
  size_t k = 0, last = b;
  if (b - a >= MAX_SIG_DIGITS) last = a + MAX_SIG_DIGITS - 1;
  for (size_t i = a; i <= last; i++)
    dg[k++] = (char)('0' + num_digit(&m, i));
  int64_t e = num_place(&m, last);
  if (last != b) { /* b is non-zero, so the dropped tail is: keep it as a sticky digit */
    dg[k++] = '1';
    e--;
  }
  double d = digits_to_double(dg, k, e, m.neg);
  if (isinf(d)) return -2;
  *out = d;
  return 0;
}

/* ---------------------------------------------------------------------------------------
 * Reader
 * ------------------------------------------------------------------------------------- */

enum jr_state {
  JR_VALUE = 0, /* a value must come next: the start, after ':' or after ',' in an array */
  JR_ARR_FIRST, /* just after '[': a value or ']' */
  JR_OBJ_FIRST, /* just after '{': a key or '}' */
  JR_COLON,     /* just after a key: ':' and then a value */
  JR_AFTER,     /* after a complete value: ',' or a closing bracket, or the end of input */
  JR_DONE,      /* SB_JT_END was returned */
  JR_FAILED,    /* SB_JT_ERROR was returned; sticky */
};

static const uint8_t jr_empty_input[1] = {0};

void sb_jr_init(sb_jr_t *r, const void *data, size_t len) {
  memset(r, 0, sizeof *r);
  r->start = data ? (const uint8_t *)data : jr_empty_input;
  if (!data) len = 0;
  r->p = r->start;
  r->end = r->start + len;
  r->state = JR_VALUE;
  r->str = "";
}

void sb_jr_free(sb_jr_t *r) {
  sb_buf_free(&r->scratch);
  r->str = "";
  r->len = 0;
}

static sb_jtok_t jr_fail(sb_jr_t *r, const uint8_t *at, const char *msg) {
  r->state = JR_FAILED;
  r->err = msg;
  r->err_off = (size_t)(at - r->start);
  r->p = at;
  r->str = "";
  r->len = 0;
  return SB_JT_ERROR;
}

static inline const uint8_t *skip_ws(const uint8_t *p, const uint8_t *end) {
  while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
    p++;
  return p;
}

static int hex4(const uint8_t *s, unsigned *cp) {
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    uint8_t c = s[i];
    unsigned d;
    if (is_digit(c))
      d = (unsigned)(c - '0');
    else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
      d = (unsigned)((c | 0x20) - 'a' + 10);
    else
      return -1;
    v = v << 4 | d;
  }
  *cp = v;
  return 0;
}

/* Scans the string whose opening quote is at q and returns tok (SB_JT_KEY or SB_JT_STRING)
 * with r->str / r->len set, or SB_JT_ERROR. With store == 0 the string is only validated
 * (sb_jr_skip) and r->str is "". Does not change r->state on success. */
static sb_jtok_t jr_string(sb_jr_t *r, const uint8_t *q, int store, sb_jtok_t tok) {
  const uint8_t *s = q + 1, *end = r->end, *lim = s;
  /* The closing quote is the first one preceded by an even number of backslashes. */
  for (;;) {
    lim = memchr(lim, '"', (size_t)(end - lim));
    if (!lim) {
      lim = end;
      break;
    }
    const uint8_t *bs = lim;
    while (bs > s && bs[-1] == '\\')
      bs--;
    if (((lim - bs) & 1) == 0) break;
    lim++;
  }
  uint8_t *d = NULL, *d0 = NULL;
  if (store) {
    sb_buf_reset(&r->scratch);
    /* +8: the ASCII fast path stores whole words; +1: the NUL. */
    if (sb_buf_reserve(&r->scratch, (size_t)(lim - s) + 9)) return jr_fail(r, q, "out of memory");
    d = d0 = r->scratch.data;
  }
  while (s < lim) {
    while (lim - s >= 8) {
      uint64_t x;
      memcpy(&x, s, 8);
      if (swar_has_less(x, 0x20) | swar_has_zero(x ^ (ONES * '\\')) | (x & HIGHS)) break;
      if (d) {
        memcpy(d, s, 8);
        d += 8;
      }
      s += 8;
    }
    if (s == lim) break;
    uint8_t c = *s;
    if (c >= 0x80) {
      size_t n = utf8_seq(s, lim);
      if (!n) return jr_fail(r, s, "invalid UTF-8 in string");
      if (d) {
        memcpy(d, s, n);
        d += n;
      }
      s += n;
      continue;
    }
    if (c >= 0x20 && c != '\\') {
      if (d) *d++ = c;
      s++;
      continue;
    }
    if (c < 0x20) return jr_fail(r, s, "unescaped control character in string");
    if (lim - s < 2) return jr_fail(r, s, "invalid escape in string");
    uint8_t e = s[1];
    switch (e) {
    case '"':
    case '\\':
    case '/':
      break;
    case 'b':
      e = '\b';
      break;
    case 'f':
      e = '\f';
      break;
    case 'n':
      e = '\n';
      break;
    case 'r':
      e = '\r';
      break;
    case 't':
      e = '\t';
      break;
    case 'u': {
      unsigned cp, lo;
      if (lim - s < 6 || hex4(s + 2, &cp)) return jr_fail(r, s, "invalid \\u escape in string");
      size_t used = 6;
      if (cp >= 0xDC00 && cp <= 0xDFFF) return jr_fail(r, s, "lone low surrogate in \\u escape");
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (lim - s < 12 || s[6] != '\\' || s[7] != 'u' || hex4(s + 8, &lo) || lo < 0xDC00 ||
            lo > 0xDFFF)
          return jr_fail(r, s, "lone high surrogate in \\u escape");
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        used = 12;
      }
      if (d) {
        if (cp < 0x80) {
          *d++ = (uint8_t)cp;
        } else if (cp < 0x800) {
          *d++ = (uint8_t)(0xC0 | cp >> 6);
          *d++ = (uint8_t)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
          *d++ = (uint8_t)(0xE0 | cp >> 12);
          *d++ = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
          *d++ = (uint8_t)(0x80 | (cp & 0x3F));
        } else {
          *d++ = (uint8_t)(0xF0 | cp >> 18);
          *d++ = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
          *d++ = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
          *d++ = (uint8_t)(0x80 | (cp & 0x3F));
        }
      }
      s += used;
      continue;
    }
    default:
      return jr_fail(r, s, "invalid escape in string");
    }
    if (d) *d++ = e;
    s += 2;
  }
  if (lim == end) return jr_fail(r, end, "unterminated string");
  if (d) {
    *d = '\0';
    r->scratch.len = (size_t)(d - d0);
    r->str = (const char *)d0;
    r->len = (size_t)(d - d0);
  } else {
    r->str = "";
    r->len = 0;
  }
  r->p = lim + 1;
  return tok;
}

/* Returns a token that carries no text and sets the state that follows it. */
static inline sb_jtok_t jr_tok(sb_jr_t *r, const uint8_t *p, int state, sb_jtok_t tok) {
  r->p = p;
  r->state = state;
  r->str = "";
  r->len = 0;
  return tok;
}

static sb_jtok_t jr_close(sb_jr_t *r, const uint8_t *p) {
  uint8_t open = r->stack[--r->depth];
  return jr_tok(r, p + 1, JR_AFTER, open == '{' ? SB_JT_OBJ_END : SB_JT_ARR_END);
}

static sb_jtok_t jr_key(sb_jr_t *r, const uint8_t *p, int store) {
  if (p == r->end) return jr_fail(r, p, "unexpected end of input");
  if (*p != '"')
    return jr_fail(r, p, *p == '}' ? "trailing comma in object" : "expected a string key");
  sb_jtok_t t = jr_string(r, p, store, SB_JT_KEY);
  if (t == SB_JT_KEY) r->state = JR_COLON;
  return t;
}

static sb_jtok_t jr_value(sb_jr_t *r, const uint8_t *p, int store) {
  const uint8_t *end = r->end;
  if (p == end)
    return jr_fail(
        r, p, r->depth == 0 && r->state == JR_VALUE ? "empty input" : "unexpected end of input");
  switch (*p) {
  case '{':
  case '[':
    if (r->depth >= SB_JSON_MAX_DEPTH) return jr_fail(r, p, "nesting too deep");
    r->stack[r->depth++] = *p;
    return *p == '{' ? jr_tok(r, p + 1, JR_OBJ_FIRST, SB_JT_OBJ_BEGIN)
                     : jr_tok(r, p + 1, JR_ARR_FIRST, SB_JT_ARR_BEGIN);
  case '"': {
    sb_jtok_t t = jr_string(r, p, store, SB_JT_STRING);
    if (t == SB_JT_STRING) r->state = JR_AFTER;
    return t;
  }
  case '-':
  case '0':
  case '1':
  case '2':
  case '3':
  case '4':
  case '5':
  case '6':
  case '7':
  case '8':
  case '9': {
    jnum_t m;
    const char *err;
    const uint8_t *q = scan_number(p, end, &m, &err);
    if (err) return jr_fail(r, q, err);
    if (q < end &&
        (*q == '.' || *q == '+' || *q == '-' || ((*q | 0x20) >= 'a' && (*q | 0x20) <= 'z')))
      return jr_fail(r, q, "invalid number");
    r->p = q;
    r->state = JR_AFTER;
    r->str = (const char *)p;
    r->len = (size_t)(q - p);
    return SB_JT_NUMBER;
  }
  case 't':
    if (end - p >= 4 && !memcmp(p, "true", 4)) return jr_tok(r, p + 4, JR_AFTER, SB_JT_TRUE);
    return jr_fail(r, p, "invalid literal");
  case 'f':
    if (end - p >= 5 && !memcmp(p, "false", 5)) return jr_tok(r, p + 5, JR_AFTER, SB_JT_FALSE);
    return jr_fail(r, p, "invalid literal");
  case 'n':
    if (end - p >= 4 && !memcmp(p, "null", 4)) return jr_tok(r, p + 4, JR_AFTER, SB_JT_NULL);
    return jr_fail(r, p, "invalid literal");
  case ']':
    if (r->depth && r->stack[r->depth - 1] == '[' && r->state == JR_AFTER)
      return jr_fail(r, p, "trailing comma in array");
    return jr_fail(r, p, "expected a value");
  default:
    return jr_fail(r, p, "expected a value");
  }
}

/* One token; store == 0 validates strings without copying them (sb_jr_skip). */
static sb_jtok_t jr_next(sb_jr_t *r, int store) {
  const uint8_t *p = skip_ws(r->p, r->end);
  switch (r->state) {
  case JR_VALUE:
    return jr_value(r, p, store);
  case JR_ARR_FIRST:
    if (p < r->end && *p == ']') return jr_close(r, p);
    r->state = JR_VALUE;
    return jr_value(r, p, store);
  case JR_OBJ_FIRST:
    if (p < r->end && *p == '}') return jr_close(r, p);
    if (p < r->end && *p != '"') return jr_fail(r, p, "expected a string key or '}'");
    return jr_key(r, p, store);
  case JR_COLON:
    if (p == r->end) return jr_fail(r, p, "unexpected end of input");
    if (*p != ':') return jr_fail(r, p, "expected ':' after an object key");
    r->state = JR_VALUE;
    return jr_value(r, skip_ws(p + 1, r->end), store);
  case JR_AFTER:
    if (r->depth == 0) {
      if (p != r->end) return jr_fail(r, p, "unexpected data after the top-level value");
      return jr_tok(r, p, JR_DONE, SB_JT_END);
    }
    if (p == r->end) return jr_fail(r, p, "unexpected end of input");
    if (*p == ',') {
      p = skip_ws(p + 1, r->end);
      /* r->state stays JR_AFTER while the next value is parsed, which lets jr_value tell a
       * trailing comma ("[1,]") from a missing value. */
      if (r->stack[r->depth - 1] == '{') return jr_key(r, p, store);
      return jr_value(r, p, store);
    }
    if (*p == (r->stack[r->depth - 1] == '{' ? '}' : ']')) return jr_close(r, p);
    return jr_fail(r, p,
                   r->stack[r->depth - 1] == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
  case JR_DONE:
    return jr_tok(r, r->p, JR_DONE, SB_JT_END);
  default:
    return SB_JT_ERROR;
  }
}

sb_jtok_t sb_jr_next(sb_jr_t *r) {
  return jr_next(r, 1);
}

int sb_jr_skip(sb_jr_t *r, sb_jtok_t tok) {
  if (tok == SB_JT_ERROR) return -1;
  if (tok == SB_JT_KEY) { /* skip the member's value */
    tok = jr_next(r, 0);
    if (tok == SB_JT_ERROR) return -1;
  }
  if (tok != SB_JT_OBJ_BEGIN && tok != SB_JT_ARR_BEGIN) return 0;
  if (r->depth == 0) return 0; /* misuse: no container is open */
  unsigned target = r->depth - 1;
  for (;;) {
    sb_jtok_t t = jr_next(r, 0);
    if (t == SB_JT_ERROR) return -1;
    if ((t == SB_JT_OBJ_END || t == SB_JT_ARR_END) && r->depth == target) return 0;
  }
}

/* ---------------------------------------------------------------------------------------
 * Writer
 * ------------------------------------------------------------------------------------- */

void sb_jw_init(sb_jw_t *w, sb_buf_t *out) {
  memset(w, 0, sizeof *w);
  w->out = out;
}

static void jw_set_err(sb_jw_t *w, int err) {
  if (!w->err) w->err = err;
}

static int jw_put(sb_jw_t *w, const void *p, size_t n) {
  int rc = sb_buf_append(w->out, p, n);
  if (rc) jw_set_err(w, rc);
  return rc;
}

/* Places the comma before a value (or key). Returns 0 to go on, -1 when the writer failed. */
static int jw_pre(sb_jw_t *w) {
  if (w->err) return -1;
  if (w->after_key) {
    w->after_key = 0;
    return 0;
  }
  if (w->depth) {
    if (w->first[w->depth - 1])
      w->first[w->depth - 1] = 0;
    else if (jw_put(w, ",", 1))
      return -1;
  }
  return 0;
}

static void jw_value(sb_jw_t *w, const char *text, size_t n) {
  if (jw_pre(w)) return;
  jw_put(w, text, n);
}

static void jw_open(sb_jw_t *w, char c) {
  if (jw_pre(w)) return;
  if (w->depth >= SB_JSON_MAX_DEPTH) {
    jw_set_err(w, SB_EINVAL);
    return;
  }
  if (jw_put(w, &c, 1)) return;
  w->first[w->depth++] = 1;
}

static void jw_close(sb_jw_t *w, char c) {
  if (w->err) return;
  if (w->depth == 0 || w->after_key) { /* nothing open, or a key without its value */
    jw_set_err(w, SB_EINVAL);
    return;
  }
  if (jw_put(w, &c, 1)) return;
  w->depth--;
}

void sb_jw_obj_begin(sb_jw_t *w) {
  jw_open(w, '{');
}
void sb_jw_obj_end(sb_jw_t *w) {
  jw_close(w, '}');
}
void sb_jw_arr_begin(sb_jw_t *w) {
  jw_open(w, '[');
}
void sb_jw_arr_end(sb_jw_t *w) {
  jw_close(w, ']');
}

static const char hexdig[] = "0123456789abcdef";

/* Appends s[0..n) as a quoted, escaped JSON string. Returns 0, SB_ENOMEM or SB_EINVAL (bad
 * UTF-8; the buffer then holds a partial string, which the caller rolls back). */
static int jw_escaped(sb_buf_t *b, const uint8_t *s, size_t n) {
  if (n > SIZE_MAX / 4) return SB_ENOMEM;
  /* Invariant: room from d to the end of storage >= unread input bytes + 1 (closing quote). */
  int rc = sb_buf_reserve(b, n + 2);
  if (rc) return rc;
  uint8_t *d = b->data + b->len;
  *d++ = '"';
  size_t i = 0;
  while (i < n) {
    while (n - i >= 8) {
      uint64_t x;
      memcpy(&x, s + i, 8);
      if (swar_has_less(x, 0x20) | swar_has_zero(x ^ (ONES * '"')) |
          swar_has_zero(x ^ (ONES * '\\')) | (x & HIGHS))
        break;
      memcpy(d, s + i, 8);
      d += 8;
      i += 8;
    }
    if (i == n) break;
    uint8_t c = s[i];
    if (c >= 0x80) {
      size_t len = utf8_seq(s + i, s + n);
      if (!len) {
        b->len = (size_t)(d - b->data);
        return SB_EINVAL;
      }
      memcpy(d, s + i, len);
      d += len;
      i += len;
      continue;
    }
    if (c >= 0x20 && c != '"' && c != '\\') {
      *d++ = c;
      i++;
      continue;
    }
    /* An escape takes up to 6 bytes for 1 input byte. */
    size_t need = 6 + (n - i - 1) + 1;
    if ((size_t)(b->data + b->cap - d) < need) {
      b->len = (size_t)(d - b->data);
      rc = sb_buf_reserve(b, need);
      if (rc) return rc;
      d = b->data + b->len;
    }
    *d++ = '\\';
    switch (c) {
    case '"':
    case '\\':
      *d++ = c;
      break;
    case '\b':
      *d++ = 'b';
      break;
    case '\f':
      *d++ = 'f';
      break;
    case '\n':
      *d++ = 'n';
      break;
    case '\r':
      *d++ = 'r';
      break;
    case '\t':
      *d++ = 't';
      break;
    default:
      *d++ = 'u';
      *d++ = '0';
      *d++ = '0';
      *d++ = (uint8_t)hexdig[c >> 4];
      *d++ = (uint8_t)hexdig[c & 15];
      break;
    }
    i++;
  }
  *d++ = '"';
  b->len = (size_t)(d - b->data);
  return 0;
}

/* Writes a string value or key, rolling the buffer back to before its comma on failure. */
static void jw_string(sb_jw_t *w, const char *s, size_t n, int key) {
  if (w->err) return;
  if (key && (w->depth == 0 || w->after_key)) {
    jw_set_err(w, SB_EINVAL);
    return;
  }
  size_t pending = sb_buf_pending(w->out); /* compaction keeps pending bytes, not offsets */
  if (jw_pre(w)) return;
  int rc = jw_escaped(w->out, (const uint8_t *)(s ? s : ""), s ? n : 0);
  if (!rc && key) rc = sb_buf_append(w->out, ":", 1);
  if (rc) {
    w->out->len = w->out->off + pending;
    jw_set_err(w, rc);
    return;
  }
  if (key) w->after_key = 1;
}

void sb_jw_key(sb_jw_t *w, const char *k, size_t n) {
  jw_string(w, k, n, 1);
}

void sb_jw_str(sb_jw_t *w, const char *s, size_t n) {
  jw_string(w, s, n, 0);
}

void sb_jw_int(sb_jw_t *w, int64_t v) {
  char buf[24];
  size_t n = 0;
  uint64_t mag = (uint64_t)v;
  if (v < 0) {
    buf[n++] = '-';
    mag = 0 - mag;
  }
  n += u64_to_dec(buf + n, mag);
  jw_value(w, buf, n);
}

void sb_jw_uint(sb_jw_t *w, uint64_t v) {
  char buf[24];
  jw_value(w, buf, u64_to_dec(buf, v));
}

/* Renders v (finite, > 0) with prec significant digits: dg gets the prec digits, *x the
 * decimal exponent of the first one (v ~ d.ddd x 10^x). */
static void sci_digits(double v, int prec, char *dg, int *x) {
  char buf[64];
  snprintf(buf, sizeof buf, "%.*e", prec - 1, v);
  const char *c = buf;
  int k = 0;
  /* Any decimal point the locale uses is skipped: only the digits matter. */
  for (; *c && *c != 'e' && *c != 'E'; c++)
    if (is_digit((uint8_t)*c) && k < prec) dg[k++] = *c;
  int neg = 0, e = 0;
  if (*c) c++;
  if (*c == '-' || *c == '+') neg = *c++ == '-';
  for (; is_digit((uint8_t)*c); c++)
    e = e * 10 + (*c - '0');
  *x = neg ? -e : e;
}

/* Number of digits of dg[0..k) without trailing zeros (at least 1). */
static int strip_zeros(const char *dg, int k) {
  while (k > 1 && dg[k - 1] == '0')
    k--;
  return k;
}

/* 1 when dg[0..k) with first-digit exponent x reads back as v. */
static int round_trips(const char *dg, int k, int x, double v) {
  return digits_to_double(dg, (size_t)strip_zeros(dg, k), x - strip_zeros(dg, k) + 1, 0) == v;
}

/* Adds delta (+1 or -1) to the last of the 16 digits in dg. Returns 0, or -1 when the
 * result would change the number of digits (then a shorter form was already tried). */
static int bump16(char *dg, int delta) {
  int i = 15;
  if (delta > 0) {
    while (i >= 0 && dg[i] == '9')
      dg[i--] = '0';
    if (i < 0) return -1;
    dg[i]++;
  } else {
    while (i >= 0 && dg[i] == '0')
      dg[i--] = '9';
    if (i < 0 || (i == 0 && dg[0] == '1')) return -1;
    dg[i]--;
  }
  return 0;
}

/* Lays out digits dg[0..k) with v = 0.dg x 10^n as ECMAScript's Number::toString does. */
static size_t ecma_layout(char *o, const char *dg, int k, int n) {
  char *p = o;
  if (k <= n && n <= 21) {
    memcpy(p, dg, (size_t)k);
    p += k;
    memset(p, '0', (size_t)(n - k));
    p += n - k;
  } else if (0 < n && n <= 21) {
    memcpy(p, dg, (size_t)n);
    p += n;
    *p++ = '.';
    memcpy(p, dg + n, (size_t)(k - n));
    p += k - n;
  } else if (-6 < n && n <= 0) {
    *p++ = '0';
    *p++ = '.';
    memset(p, '0', (size_t)-n);
    p += -n;
    memcpy(p, dg, (size_t)k);
    p += k;
  } else {
    *p++ = dg[0];
    if (k > 1) {
      *p++ = '.';
      memcpy(p, dg + 1, (size_t)(k - 1));
      p += k - 1;
    }
    *p++ = 'e';
    int e = n - 1;
    *p++ = e < 0 ? '-' : '+';
    p += u64_to_dec(p, (uint64_t)(e < 0 ? -e : e));
  }
  return (size_t)(p - o);
}

/* Formats a finite v into o (at least 32 bytes); returns the length. */
static size_t fmt_double(char *o, double v) {
  size_t n = 0;
  if (signbit(v)) {
    o[n++] = '-';
    v = -v;
  }
  if (v < 9007199254740992.0 && v == (double)(uint64_t)v) /* integral below 2^53: exact */
    return n + u64_to_dec(o + n, (uint64_t)v);
  char d17[20], c[20];
  int x17, x, k;
  if (v < DBL_MIN) {
    /* Subnormals have fewer significant bits, so the 15-digit argument below does not hold;
     * their rounding intervals are symmetric, so the correctly rounded p-digit form is the
     * one to try for each p. Rare enough for the slow search. */
    for (int p = 1; p < 17; p++) {
      sci_digits(v, p, c, &x);
      if (round_trips(c, p, x, v)) return n + ecma_layout(o + n, c, strip_zeros(c, p), x + 1);
    }
  }
  sci_digits(v, 17, d17, &x17);
  /* 15 digits: rounding the 17-digit rendering gives the shortest form if it has <= 15
   * digits (it lies within 0.12 units of the 15th digit of v, far from a rounding tie). */
  memcpy(c, d17, 15);
  x = x17;
  if (d17[15] >= '5') {
    int i = 14;
    while (i >= 0 && c[i] == '9')
      c[i--] = '0';
    if (i < 0) {
      c[0] = '1';
      x++;
    } else {
      c[i]++;
    }
  }
  if (round_trips(c, 15, x, v)) {
    k = strip_zeros(c, 15);
    return n + ecma_layout(o + n, c, k, x + 1);
  }
  char d16[20];
  int x16;
  sci_digits(v, 16, d16, &x16);
  if (round_trips(d16, 16, x16, v)) {
    k = strip_zeros(d16, 16);
    return n + ecma_layout(o + n, d16, k, x16 + 1);
  }
  for (int delta = -1; delta <= 1; delta += 2) {
    memcpy(c, d16, 16);
    if (!bump16(c, delta) && round_trips(c, 16, x16, v)) {
      k = strip_zeros(c, 16);
      return n + ecma_layout(o + n, c, k, x16 + 1);
    }
  }
  k = strip_zeros(d17, 17);
  return n + ecma_layout(o + n, d17, k, x17 + 1);
}

void sb_jw_double(sb_jw_t *w, double v) {
  if (w->err) return;
  if (!isfinite(v)) {
    jw_set_err(w, SB_EINVAL);
    return;
  }
  char buf[40];
  jw_value(w, buf, fmt_double(buf, v));
}

void sb_jw_bool(sb_jw_t *w, int v) {
  if (v)
    jw_value(w, "true", 4);
  else
    jw_value(w, "false", 5);
}

void sb_jw_null(sb_jw_t *w) {
  jw_value(w, "null", 4);
}

void sb_jw_raw(sb_jw_t *w, const char *json, size_t n) {
  jw_value(w, json, n);
}
