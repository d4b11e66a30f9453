/*
 * JSON (RFC 8259), strict, for the proto3 JSON mapping: a pull reader that never builds a
 * tree, and a writer that appends to an sb_buf.
 *
 * Reader. sb_jr_next() returns one token at a time. Strings and keys are unescaped into the
 * reader's scratch buffer (valid UTF-8, NUL-terminated, valid until the next call); numbers
 * are returned as their raw text span for the caller to convert with the helpers below.
 * Rejected (SB_JT_ERROR, with a message and byte offset): anything RFC 8259 does not allow
 * (comments, trailing commas, single quotes, leading zeros, "+1", ".5", "1.", NaN/Infinity
 * literals, unescaped control characters, bad escapes), invalid UTF-8 (overlong forms,
 * surrogates, code points above U+10FFFF, truncated sequences) in strings, lone UTF-16
 * surrogates in \u escapes, nesting deeper than SB_JSON_MAX_DEPTH, and anything but
 * whitespace after the top-level value.
 *
 * Writer. Commas and colons are placed automatically; strings are escaped (", \, control
 * characters) and must be valid UTF-8 (invalid input sets the error). Doubles are written in
 * the shortest form that reads back to the same value; NaN and infinities cannot be written
 * as numbers (the proto3 mapping writes them as strings itself).
 */
#ifndef SB_CORE_JSON_H
#define SB_CORE_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define SB_JSON_MAX_DEPTH 64u

typedef enum sb_jtok {
  SB_JT_ERROR = -1, /* see r->err / r->err_off */
  SB_JT_END = 0,    /* the top-level value is complete and only whitespace followed */
  SB_JT_OBJ_BEGIN,
  SB_JT_OBJ_END,
  SB_JT_ARR_BEGIN,
  SB_JT_ARR_END,
  SB_JT_KEY,    /* r->str / r->len: the decoded key */
  SB_JT_STRING, /* r->str / r->len: the decoded string */
  SB_JT_NUMBER, /* r->str / r->len: the raw number text (not NUL-terminated) */
  SB_JT_TRUE,
  SB_JT_FALSE,
  SB_JT_NULL,
} sb_jtok_t;

/* Reader state. Owns scratch (freed by sb_jr_free); borrows the input. One thread. */
typedef struct sb_jr {
  const uint8_t *start, *p, *end; /* input; start <= p <= end */
  uint8_t stack[SB_JSON_MAX_DEPTH]; /* open containers: '{' or '[' */
  unsigned depth;                 /* number of open containers */
  int state;                      /* private: what may come next */
  sb_buf_t scratch;               /* decoded string storage; owned */
  const char *str;                /* current token text (see sb_jtok_t) */
  size_t len;                     /* bytes of str (excluding any NUL) */
  const char *err;                /* static message when SB_JT_ERROR was returned */
  size_t err_off;                 /* byte offset of the error in the input */
} sb_jr_t;

void sb_jr_init(sb_jr_t *r, const void *data, size_t len);
sb_jtok_t sb_jr_next(sb_jr_t *r);
/* Skips the value whose first token (tok) was just returned by sb_jr_next (a scalar: nothing
 * to do; OBJ_BEGIN/ARR_BEGIN: up to and including the matching end). Returns 0 or -1 on a
 * syntax error (r->err set). */
int sb_jr_skip(sb_jr_t *r, sb_jtok_t tok);
void sb_jr_free(sb_jr_t *r);

/* Number conversions from JSON number text (as returned for SB_JT_NUMBER; also used on the
 * contents of JSON strings holding numbers, so they validate the JSON number grammar
 * themselves). Return 0, -1 when s is not a JSON number (or, for the integer forms, not an
 * integral value: 1.0 and 1e2 are integral and accepted, 1.5 is not), or -2 when the value is
 * out of range for the type. */
int sb_json_to_int64(const char *s, size_t n, int64_t *out);
int sb_json_to_uint64(const char *s, size_t n, uint64_t *out);
int sb_json_to_double(const char *s, size_t n, double *out); /* -2: overflows to infinity */

/* Writer state. Borrows out. */
typedef struct sb_jw {
  sb_buf_t *out;
  uint8_t first[SB_JSON_MAX_DEPTH]; /* 1 while the container at that depth has no member */
  unsigned depth;
  int after_key; /* the next value follows a key: no comma */
  int err;       /* first error: SB_ENOMEM, SB_EINVAL (bad UTF-8, NaN, depth) or 0 */
} sb_jw_t;

void sb_jw_init(sb_jw_t *w, sb_buf_t *out);
void sb_jw_obj_begin(sb_jw_t *w);
void sb_jw_obj_end(sb_jw_t *w);
void sb_jw_arr_begin(sb_jw_t *w);
void sb_jw_arr_end(sb_jw_t *w);
void sb_jw_key(sb_jw_t *w, const char *k, size_t n);
void sb_jw_str(sb_jw_t *w, const char *s, size_t n);
void sb_jw_int(sb_jw_t *w, int64_t v);
void sb_jw_uint(sb_jw_t *w, uint64_t v);
void sb_jw_double(sb_jw_t *w, double v); /* finite only; else err = SB_EINVAL */
void sb_jw_bool(sb_jw_t *w, int v);
void sb_jw_null(sb_jw_t *w);
/* Appends already-encoded JSON text as one value (the caller vouches for it). */
void sb_jw_raw(sb_jw_t *w, const char *json, size_t n);
/* Returns the first error (0 if none). */
static inline int sb_jw_error(const sb_jw_t *w) { return w->err; }

#endif
