/*
 * libFuzzer target: the strict JSON codec (src/core/json.c), model-checked against itself.
 *
 * For each input:
 *   1. Tokenize to SB_JT_END or SB_JT_ERROR, re-encoding every token with the writer (keys
 *      and strings through sb_jw_key / sb_jw_str, numbers verbatim through sb_jw_raw).
 *   2. If the input parsed, the writer must not have failed, and reading its output must give
 *      the identical token stream (types and texts) as reading the input again.
 *   3. On every number token, the three converters run; where the integer ones succeed the
 *      double one must give exactly (double)value (both are correctly rounded), and every
 *      double that converts is written with sb_jw_double and must read back bit for bit.
 *   4. sb_jr_skip on the top-level value must succeed exactly when the full parse did.
 * Any disagreement aborts. Seeds in fuzz/corpus/json/.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "json_fuzz: %s\n", what);
    abort();
  }
}

static void check_number(const char *s, size_t n) {
  int64_t i = 0;
  uint64_t u = 0;
  double d = 0;
  int ri = sb_json_to_int64(s, n, &i);
  int ru = sb_json_to_uint64(s, n, &u);
  int rd = sb_json_to_double(s, n, &d);
  check(ri >= -2 && ri <= 0 && ru >= -2 && ru <= 0 && rd >= -2 && rd <= 0, "converter rc");
  if (rd == -1) check(ri == -1 && ru == -1, "an integer converter accepts a non-number");
  if (ri == 0) check(rd == 0 && d == (double)i, "int64 and double disagree");
  if (ru == 0) check(rd == 0 && d == (double)u, "uint64 and double disagree");
  if (ri == 0 && i >= 0) check(ru == 0 && (uint64_t)i == u, "int64 and uint64 disagree");
  if (rd == 0) {
    sb_buf_t b = {0};
    sb_jw_t w;
    sb_jw_init(&w, &b);
    sb_jw_double(&w, d);
    check(sb_jw_error(&w) == 0, "sb_jw_double failed");
    double back = 1;
    check(sb_json_to_double((const char *)sb_buf_head(&b), sb_buf_pending(&b), &back) == 0,
          "written double does not parse");
    check(memcmp(&back, &d, sizeof d) == 0, "written double does not round-trip");
    sb_buf_free(&b);
  }
}

static int has_text(sb_jtok_t t) {
  return t == SB_JT_KEY || t == SB_JT_STRING || t == SB_JT_NUMBER;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  sb_buf_t out = {0};
  sb_jw_t w;
  sb_jr_t r;
  sb_jtok_t t;
  sb_jw_init(&w, &out);
  sb_jr_init(&r, data, size);
  while ((t = sb_jr_next(&r)) > SB_JT_END) {
    switch (t) {
    case SB_JT_OBJ_BEGIN:
      sb_jw_obj_begin(&w);
      break;
    case SB_JT_OBJ_END:
      sb_jw_obj_end(&w);
      break;
    case SB_JT_ARR_BEGIN:
      sb_jw_arr_begin(&w);
      break;
    case SB_JT_ARR_END:
      sb_jw_arr_end(&w);
      break;
    case SB_JT_KEY:
      sb_jw_key(&w, r.str, r.len);
      break;
    case SB_JT_STRING:
      sb_jw_str(&w, r.str, r.len);
      break;
    case SB_JT_NUMBER:
      check_number(r.str, r.len);
      sb_jw_raw(&w, r.str, r.len);
      break;
    case SB_JT_TRUE:
      sb_jw_bool(&w, 1);
      break;
    case SB_JT_FALSE:
      sb_jw_bool(&w, 0);
      break;
    case SB_JT_NULL:
      sb_jw_null(&w);
      break;
    default:
      check(0, "unknown token");
    }
  }
  int parsed = t == SB_JT_END;
  if (!parsed) check(r.err != NULL && r.err_off <= size, "error without message or offset");
  check(sb_jr_next(&r) == t, "END / ERROR is not sticky");
  sb_jr_free(&r);

  if (parsed) {
    check(sb_jw_error(&w) == 0 && w.depth == 0, "writer failed on a valid token stream");
    sb_jr_t a, b;
    sb_jr_init(&a, data, size);
    sb_jr_init(&b, sb_buf_head(&out), sb_buf_pending(&out));
    for (;;) {
      sb_jtok_t ta = sb_jr_next(&a), tb = sb_jr_next(&b);
      check(ta == tb, "re-encoded token types differ");
      if (has_text(ta))
        check(a.len == b.len && memcmp(a.str, b.str, a.len) == 0, "re-encoded texts differ");
      if (ta <= SB_JT_END) break;
    }
    sb_jr_free(&a);
    sb_jr_free(&b);
  }
  sb_buf_free(&out);

  /* Skipping the whole top-level value validates exactly what the full parse validated. */
  sb_jr_init(&r, data, size);
  t = sb_jr_next(&r);
  int ok = t != SB_JT_ERROR && sb_jr_skip(&r, t) == 0 && sb_jr_next(&r) == SB_JT_END;
  check(ok == parsed, "sb_jr_skip disagrees with the full parse");
  sb_jr_free(&r);
  return 0;
}
