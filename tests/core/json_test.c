/*
 * Tests of the strict JSON codec (src/contract/json.c): what the reader accepts (with the
 * exact token stream), what it rejects (with the byte offset of the error), the number
 * conversions at every range boundary, the writer's escaping, layout and shortest doubles
 * (checked against the C library's strtod), and sb_jr_skip.
 *
 * Token streams are compared in a compact text form: tokens separated by one space, "{" "}"
 * "[" "]" for containers, "K<text>" / "S<text>" / "N<text>" for keys, strings and numbers,
 * "T" "F" "Z" for true, false and null. Text bytes outside 0x21..0x7e, and '\', are shown as
 * \xHH so spaces and binary stay unambiguous. An error ends the stream as "!<offset>".
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "sb_test.h"
#include "switchboard/error.h"

/* Serialises the token stream of in[0..len) (see the file comment). *nul_ok is cleared when
 * a string token is not NUL-terminated. Returns a static buffer. */
static const char *tokens_n(const char *in, size_t len, int *nul_ok) {
  static char out[16384];
  size_t o = 0;
  sb_jr_t r;
  sb_jr_init(&r, in, len);
  for (;;) {
    sb_jtok_t t = sb_jr_next(&r);
    if (t == SB_JT_END) break;
    if (o && o < sizeof out - 1) out[o++] = ' ';
    if (t == SB_JT_ERROR) {
      o += (size_t)snprintf(out + o, sizeof out - o, "!%zu", r.err_off);
      break;
    }
    char c = 0;
    switch (t) {
    case SB_JT_OBJ_BEGIN:
      c = '{';
      break;
    case SB_JT_OBJ_END:
      c = '}';
      break;
    case SB_JT_ARR_BEGIN:
      c = '[';
      break;
    case SB_JT_ARR_END:
      c = ']';
      break;
    case SB_JT_KEY:
      c = 'K';
      break;
    case SB_JT_STRING:
      c = 'S';
      break;
    case SB_JT_NUMBER:
      c = 'N';
      break;
    case SB_JT_TRUE:
      c = 'T';
      break;
    case SB_JT_FALSE:
      c = 'F';
      break;
    case SB_JT_NULL:
      c = 'Z';
      break;
    default:
      c = '?';
      break;
    }
    if (o < sizeof out - 1) out[o++] = c;
    if (t == SB_JT_KEY || t == SB_JT_STRING || t == SB_JT_NUMBER) {
      if (t != SB_JT_NUMBER && nul_ok && r.str[r.len] != '\0') *nul_ok = 0;
      for (size_t i = 0; i < r.len && o < sizeof out - 8; i++) {
        unsigned char b = (unsigned char)r.str[i];
        if (b > 0x20 && b < 0x7f && b != '\\')
          out[o++] = (char)b;
        else
          o += (size_t)snprintf(out + o, sizeof out - o, "\\x%02x", b);
      }
    }
  }
  sb_jr_free(&r);
  out[o < sizeof out ? o : sizeof out - 1] = '\0';
  return out;
}

static const char *tokens(const char *in) {
  return tokens_n(in, strlen(in), NULL);
}

/* ---------------------------------------------------------------------------------------
 * (a) Inputs that must parse, with their token streams.
 * ------------------------------------------------------------------------------------- */

static const struct {
  const char *in, *want;
} accept_cases[] = {
    /* Containers and layout. */
    {"{}", "{ }"},
    {"[]", "[ ]"},
    {" [ ] ", "[ ]"},
    {"\t\r\n [\n1 ,\t2\r] \r\n", "[ N1 N2 ]"},
    {"[[[]]]", "[ [ [ ] ] ]"},
    {"[{}]", "[ { } ]"},
    {"[{},[],{}]", "[ { } [ ] { } ]"},
    {"{\"\":0}", "{ K N0 }"},
    {"{\"a\":1,\"b\":[true,false,null],\"c\":{\"d\":\"e\"}}",
     "{ Ka N1 Kb [ T F Z ] Kc { Kd Se } }"},
    {"{ \"a\" : { \"b\" : { \"c\" : [ ] } } }", "{ Ka { Kb { Kc [ ] } } }"},
    {"{\"a\":1,\"a\":2}", "{ Ka N1 Ka N2 }"}, /* duplicates are the caller's business */
    {"[\"a\",{\"b\":null},[1,[2]],\"c\"]", "[ Sa { Kb Z } [ N1 [ N2 ] ] Sc ]"},
    /* Top-level scalars. */
    {"0", "N0"},
    {"-0", "N-0"},
    {"123", "N123"},
    {" 7 ", "N7"},
    {"true", "T"},
    {"false", "F"},
    {"null", "Z"},
    {"\"\"", "S"},
    {"\"abc\"", "Sabc"},
    {"  \"x\"\n", "Sx"},
    /* Numbers, returned as raw text. */
    {"[0,-0,1,-1,10,-10]", "[ N0 N-0 N1 N-1 N10 N-10 ]"},
    {"[0.0,-0.0,0.5,-1.5,3.14159]", "[ N0.0 N-0.0 N0.5 N-1.5 N3.14159 ]"},
    {"[1e0,1E2,1e+2,1E-2,-1.5e+10,0e0,0E-0]", "[ N1e0 N1E2 N1e+2 N1E-2 N-1.5e+10 N0e0 N0E-0 ]"},
    {"[9223372036854775807,-9223372036854775808,18446744073709551616]",
     "[ N9223372036854775807 N-9223372036854775808 N18446744073709551616 ]"},
    {"[1e400,1e-400,123456789012345678901234567890]",
     "[ N1e400 N1e-400 N123456789012345678901234567890 ]"},
    {"{\"n\":-12.5e-3}", "{ Kn N-12.5e-3 }"},
    {"[1,2]", "[ N1 N2 ]"},
    {"[1 ,2 ]", "[ N1 N2 ]"},
    /* Strings: spaces, escapes, UTF-16 escapes. */
    {"\"a b\"", "Sa\\x20b"},
    {"\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "S\"\\x5c/\\x08\\x0c\\x0a\\x0d\\x09"},
    {"\"/\"", "S/"},
    {"\"\\u0041\\u00e9\\u20ac\"", "SA\\xc3\\xa9\\xe2\\x82\\xac"},
    {"\"\\u00E9\\u00e9\"", "S\\xc3\\xa9\\xc3\\xa9"},
    {"\"\\u007f\\u0080\\u07ff\\u0800\\uffff\"",
     "S\\x7f\\xc2\\x80\\xdf\\xbf\\xe0\\xa0\\x80\\xef\\xbf\\xbf"},
    {"\"\\ud83d\\ude00\"", "S\\xf0\\x9f\\x98\\x80"},
    {"\"\\uD800\\uDC00\"", "S\\xf0\\x90\\x80\\x80"},
    {"\"\\uDBFF\\uDFFF\"", "S\\xf4\\x8f\\xbf\\xbf"},
    {"\"\\ud7ff\\ue000\"", "S\\xed\\x9f\\xbf\\xee\\x80\\x80"},
    {"\"\\u002F\\u005c\"", "S/\\x5c"},
    {"\"x\\u0001y\"", "Sx\\x01y"},
    /* Raw UTF-8 at every boundary of table 3-7, and DEL. */
    {"\"\x7f\"", "S\\x7f"},
    {"\"\xc2\x80\xdf\xbf\"", "S\\xc2\\x80\\xdf\\xbf"},
    {"\"\xe0\xa0\x80\xed\x9f\xbf\"", "S\\xe0\\xa0\\x80\\xed\\x9f\\xbf"},
    {"\"\xee\x80\x80\xef\xbf\xbf\"", "S\\xee\\x80\\x80\\xef\\xbf\\xbf"},
    {"\"\xf0\x90\x80\x80\xf3\xbf\xbf\xbf\xf4\x8f\xbf\xbf\"",
     "S\\xf0\\x90\\x80\\x80\\xf3\\xbf\\xbf\\xbf\\xf4\\x8f\\xbf\\xbf"},
    {"\"caf\xc3\xa9\"", "Scaf\\xc3\\xa9"},
    /* Long strings take the eight-bytes-at-a-time path; specials at odd alignments. */
    {"\"abcdefghijklmnopqrstuvwxyz0123456789\"", "Sabcdefghijklmnopqrstuvwxyz0123456789"},
    {"\"abcdefghi\\njklmnopq\\u0041rstuvwxyz\"", "Sabcdefghi\\x0ajklmnopqArstuvwxyz"},
    {"\"abcdefg\xc3\xa9hijklmnop\xf0\x9f\x98\x80qrstuvw\"",
     "Sabcdefg\\xc3\\xa9hijklmnop\\xf0\\x9f\\x98\\x80qrstuvw"},
    {"\"abcdefghijklmno\\\\\"", "Sabcdefghijklmno\\x5c"},
    {"\"\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\"", "S\\x5c\\x5c\\x5c\\x5c\\x5c\\x5c\\x5c\\x5c\\x5c"},
    {"[\"abc\\\"def\",\"\\\"\"]", "[ Sabc\"def S\" ]"},
    {"{\"k\\u00e9y\":\"v\"}", "{ Kk\\xc3\\xa9y Sv }"},
};

TEST(json_accept_table) {
  for (size_t i = 0; i < sizeof accept_cases / sizeof accept_cases[0]; i++) {
    int nul_ok = 1;
    const char *got = tokens_n(accept_cases[i].in, strlen(accept_cases[i].in), &nul_ok);
    if (strcmp(got, accept_cases[i].want) != 0)
      fprintf(stderr, "  accept case %zu: input \"%s\"\n", i, accept_cases[i].in);
    CHECK_EQ_STR(got, accept_cases[i].want);
    CHECK(nul_ok);
  }
}

TEST(json_accept_nul_escape_and_unterminated_buffer) {
  /* \u0000 decodes to a NUL byte inside the string: r->len counts it. */
  CHECK_EQ_STR(tokens("\"a\\u0000b\""), "Sa\\x00b");
  /* The input is a span, not a C string: bytes after len are never read. */
  CHECK_EQ_STR(tokens_n("[1]xyz", 3, NULL), "[ N1 ]");
  CHECK_EQ_STR(tokens_n("12345", 2, NULL), "N12");
  CHECK_EQ_STR(tokens_n("\"ab\"cd", 4, NULL), "Sab");
  CHECK_EQ_STR(tokens_n("truex", 4, NULL), "T");
  /* A NUL byte is not white space. */
  CHECK_EQ_STR(tokens_n("{}\0", 3, NULL), "{ } !2");
}

TEST(json_accept_depth_64) {
  char in[2 * SB_JSON_MAX_DEPTH + 1];
  for (unsigned i = 0; i < SB_JSON_MAX_DEPTH; i++) {
    in[i] = '[';
    in[2 * SB_JSON_MAX_DEPTH - 1 - i] = ']';
  }
  in[2 * SB_JSON_MAX_DEPTH] = '\0';
  sb_jr_t r;
  sb_jr_init(&r, in, strlen(in));
  unsigned begins = 0, ends = 0, max = 0;
  sb_jtok_t t;
  while ((t = sb_jr_next(&r)) > SB_JT_END) {
    begins += t == SB_JT_ARR_BEGIN;
    ends += t == SB_JT_ARR_END;
    if (r.depth > max) max = r.depth;
  }
  CHECK_EQ_INT(t, SB_JT_END);
  CHECK_EQ_INT(begins, 64);
  CHECK_EQ_INT(ends, 64);
  CHECK_EQ_INT(max, 64);
  sb_jr_free(&r);

  /* Objects count the same way. */
  char obj[64 * 6 + 64 + 8];
  size_t o = 0;
  for (unsigned i = 0; i < 63; i++) {
    memcpy(obj + o, "{\"a\":", 5);
    o += 5;
  }
  obj[o++] = '{';
  obj[o++] = '}';
  for (unsigned i = 0; i < 63; i++)
    obj[o++] = '}';
  sb_jr_init(&r, obj, o);
  while ((t = sb_jr_next(&r)) > SB_JT_END) {
  }
  CHECK_EQ_INT(t, SB_JT_END);
  sb_jr_free(&r);
}

TEST(json_reader_sticky_end_and_error) {
  sb_jr_t r;
  sb_jr_init(&r, "[1]", 3);
  CHECK_EQ_INT(sb_jr_next(&r), SB_JT_ARR_BEGIN);
  CHECK_EQ_INT(r.depth, 1);
  CHECK_EQ_INT(r.stack[0], '[');
  CHECK_EQ_INT(sb_jr_next(&r), SB_JT_NUMBER);
  CHECK_EQ_INT(sb_jr_next(&r), SB_JT_ARR_END);
  CHECK_EQ_INT(r.depth, 0);
  CHECK_EQ_INT(sb_jr_next(&r), SB_JT_END);
  CHECK_EQ_INT(sb_jr_next(&r), SB_JT_END);
  CHECK(r.err == NULL);
  sb_jr_free(&r);

  sb_jr_init(&r, "[1,]", 4);
  CHECK_EQ_INT(sb_jr_next(&r), SB_JT_ARR_BEGIN);
  CHECK_EQ_INT(sb_jr_next(&r), SB_JT_NUMBER);
  CHECK_EQ_INT(sb_jr_next(&r), SB_JT_ERROR);
  REQUIRE(r.err != NULL);
  CHECK_EQ_STR(r.err, "trailing comma in array");
  CHECK_EQ_INT(r.err_off, 3);
  CHECK_EQ_INT(sb_jr_next(&r), SB_JT_ERROR);
  CHECK_EQ_INT(r.err_off, 3);
  CHECK(r.start <= r.p && r.p <= r.end);
  sb_jr_free(&r);

  sb_jr_init(&r, NULL, 0);
  CHECK_EQ_INT(sb_jr_next(&r), SB_JT_ERROR);
  CHECK_EQ_STR(r.err, "empty input");
  sb_jr_free(&r);
  sb_jr_free(&r); /* freeing twice is harmless */
}

TEST(json_reader_long_strings_reuse_scratch) {
  /* 100 000 bytes of mixed content: plain runs, escapes and multi-byte characters. */
  size_t n = 100000;
  char *in = malloc(n * 2 + 16), *want = malloc(n + 16);
  REQUIRE(in && want);
  size_t o = 0, w = 0;
  in[o++] = '[';
  in[o++] = '"';
  for (size_t i = 0; w < n; i++) {
    switch (i % 7) {
    case 3:
      memcpy(in + o, "\\n", 2);
      o += 2;
      want[w++] = '\n';
      break;
    case 5:
      memcpy(in + o, "\xc3\xa9", 2);
      o += 2;
      memcpy(want + w, "\xc3\xa9", 2);
      w += 2;
      break;
    default:
      in[o++] = (char)('a' + i % 26);
      want[w++] = (char)('a' + i % 26);
    }
  }
  memcpy(in + o, "\",\"short\"]", 10);
  o += 10;
  sb_jr_t r;
  sb_jr_init(&r, in, o);
  CHECK_EQ_INT(sb_jr_next(&r), SB_JT_ARR_BEGIN);
  CHECK_EQ_INT(sb_jr_next(&r), SB_JT_STRING);
  CHECK_EQ_INT(r.len, w);
  CHECK(r.len == w && memcmp(r.str, want, w) == 0);
  CHECK_EQ_INT(r.str[r.len], 0);
  size_t cap = r.scratch.cap;
  CHECK_EQ_INT(sb_jr_next(&r), SB_JT_STRING);
  CHECK_EQ_STR(r.str, "short");
  CHECK_EQ_INT(r.scratch.cap, cap); /* reused, not reallocated */
  CHECK_EQ_INT(sb_jr_next(&r), SB_JT_ARR_END);
  CHECK_EQ_INT(sb_jr_next(&r), SB_JT_END);
  sb_jr_free(&r);
  free(in);
  free(want);
}

/* ---------------------------------------------------------------------------------------
 * (b) Inputs that must be rejected, with the offset of the error.
 * ------------------------------------------------------------------------------------- */

static const struct {
  const char *in;
  size_t len; /* 0: strlen(in) */
  size_t off; /* expected r->err_off */
} reject_cases[] = {
    /* Empty input and white space RFC 8259 does not know. */
    {"", 0, 0},
    {"   \n\t", 0, 5},
    {"\0"
     "1",
     2, 0},
    {"\v1", 0, 0},
    {"\f1", 0, 0},
    {"\xc2\xa0"
     "1",
     0, 0},
    {"\xef\xbb\xbf{}", 0, 0}, /* byte order mark */
    /* Comments. */
    {"/* c */ 1", 0, 0},
    {"// c\n1", 0, 0},
    {"[1 /* c */]", 0, 3},
    {"{\"a\":1 // c\n}", 0, 7},
    {"# c\n1", 0, 0},
    /* Trailing and stray commas, missing separators. */
    {"[1,]", 0, 3},
    {"[1,2,]", 0, 5},
    {"[\"a\",]", 0, 5},
    {"{\"a\":1,}", 0, 7},
    {"{\"a\":1 , }", 0, 9},
    {"[,1]", 0, 1},
    {"[,]", 0, 1},
    {"{,}", 0, 1},
    {"[1,,2]", 0, 3},
    {"[1 2]", 0, 3},
    {"[true false]", 0, 6},
    {"{\"a\":1 \"b\":2}", 0, 7},
    {"{\"a\" 1}", 0, 5},
    {"{\"a\"::1}", 0, 5},
    {"{\"a\":}", 0, 5},
    {"{\"a\",1}", 0, 4},
    {"{1:2}", 0, 1},
    {"{a:1}", 0, 1},
    {"{null:1}", 0, 1},
    {":", 0, 0},
    {",", 0, 0},
    /* Quotes. */
    {"'a'", 0, 0},
    {"{'a':1}", 0, 1},
    {"[\"a\",'b']", 0, 5},
    /* Mismatched and missing brackets. */
    {"]", 0, 0},
    {"}", 0, 0},
    {"[}", 0, 1},
    {"{]", 0, 1},
    {"[1}", 0, 2},
    {"{\"a\":1]", 0, 6},
    {"[", 0, 1},
    {"{", 0, 1},
    {"[1", 0, 2},
    {"[1,", 0, 3},
    {"{\"a\"", 0, 4},
    {"{\"a\":", 0, 5},
    {"{\"a\":1", 0, 6},
    {"{\"a\":1,", 0, 7},
    {"[[[]]", 0, 5},
    /* Numbers. */
    {"01", 0, 1},
    {"00", 0, 1},
    {"-01", 0, 2},
    {"[012]", 0, 2},
    {"-", 0, 1},
    {"[-]", 0, 2},
    {"- 1", 0, 1},
    {"--1", 0, 1},
    {"1.", 0, 2},
    {"[1.]", 0, 3},
    {"1.e5", 0, 2},
    {"-.5", 0, 1},
    {".5", 0, 0},
    {"[.5]", 0, 1},
    {"+1", 0, 0},
    {"[+1]", 0, 1},
    {"1e", 0, 2},
    {"1E", 0, 2},
    {"1e+", 0, 3},
    {"1E-", 0, 3},
    {"[1e]", 0, 3},
    {"1e+-1", 0, 3},
    {"1.5.3", 0, 3},
    {"1e5e", 0, 3},
    {"1e5.0", 0, 3},
    {"12abc", 0, 2},
    {"0x10", 0, 1},
    {"1-2", 0, 1},
    {"1+2", 0, 1},
    {"0.0.", 0, 3},
    /* NaN, infinities and other literals. */
    {"NaN", 0, 0},
    {"nan", 0, 0},
    {"-NaN", 0, 1},
    {"Infinity", 0, 0},
    {"-Infinity", 0, 1},
    {"[Infinity]", 0, 1},
    {"inf", 0, 0},
    {"True", 0, 0},
    {"tru", 0, 0},
    {"nul", 0, 0},
    {"fals", 0, 0},
    {"undefined", 0, 0},
    {"truex", 0, 4},
    {"nullnull", 0, 4},
    /* Unescaped control characters. */
    {"\"a\x01"
     "b\"",
     0, 2},
    {"\"\t\"", 0, 1},
    {"\"\n\"", 0, 1},
    {"\"\r\"", 0, 1},
    {"\"\x1f\"", 0, 1},
    {"\"\0\"", 3, 1},
    {"\"abcdefghij\x01\"", 0, 11},
    {"{\"a\nb\":1}", 0, 3},
    /* Bad escapes. */
    {"\"\\x41\"", 0, 1},
    {"\"\\a\"", 0, 1},
    {"\"\\'\"", 0, 1},
    {"\"\\0\"", 0, 1},
    {"\"\\U0041\"", 0, 1},
    {"\"\\u12\"", 0, 1},
    {"\"\\u123\"", 0, 1},
    {"\"\\u12G4\"", 0, 1},
    {"\"\\u\"", 0, 1},
    {"\"\\ \"", 0, 1},
    {"\"\\", 0, 1},
    {"\"abcdefghijk\\q\"", 0, 12},
    /* Lone, reversed and malformed surrogate escapes. */
    {"\"\\ud800\"", 0, 1},
    {"\"\\uD800\"", 0, 1},
    {"\"\\udbff\"", 0, 1},
    {"\"\\ud800x\"", 0, 1},
    {"\"\\ud800\\u0041\"", 0, 1},
    {"\"\\ud800\\ud800\"", 0, 1},
    {"\"\\ud800\\n\"", 0, 1},
    {"\"\\ud800\\udc0\"", 0, 1},
    {"\"\\udc00\"", 0, 1},
    {"\"\\udfff\"", 0, 1},
    {"\"\\udc00\\ud800\"", 0, 1},
    {"\"ab\\ude00\\ud83d\"", 0, 3},
    /* Overlong UTF-8. */
    {"\"\xc0\x80\"", 0, 1},
    {"\"\xc1\xbf\"", 0, 1},
    {"\"\xe0\x80\x80\"", 0, 1},
    {"\"\xe0\x9f\xbf\"", 0, 1},
    {"\"\xf0\x80\x80\x80\"", 0, 1},
    {"\"\xf0\x8f\xbf\xbf\"", 0, 1},
    {"\"abcdefghij\xc0\x80\"", 0, 11},
    /* UTF-8 encoded surrogates. */
    {"\"\xed\xa0\x80\"", 0, 1},
    {"\"\xed\xbf\xbf\"", 0, 1},
    {"\"\xed\xa0\xbd\xed\xb8\x80\"", 0, 1}, /* CESU-8 pair */
    /* Above U+10FFFF, and bytes that never occur. */
    {"\"\xf4\x90\x80\x80\"", 0, 1},
    {"\"\xf5\x80\x80\x80\"", 0, 1},
    {"\"\xf7\xbf\xbf\xbf\"", 0, 1},
    {"\"\xf8\x88\x80\x80\x80\"", 0, 1},
    {"\"\xfe\"", 0, 1},
    {"\"\xff\"", 0, 1},
    /* Truncated sequences. */
    {"\"\xc3\"", 0, 1},
    {"\"\xe2\x82\"", 0, 1},
    {"\"\xf0\x9f\x98\"", 0, 1},
    {"\"\xe2\x82", 0, 1},
    {"\"ab\xc3", 0, 3},
    {"\"\xc3 \"", 0, 1},
    {"\"\xf0\x9f\x98"
     "a\"",
     0, 1},
    /* Bare and misplaced continuation bytes. */
    {"\"\x80\"", 0, 1},
    {"\"\xbf\"", 0, 1},
    {"\"a\xbf"
     "b\"",
     0, 2},
    {"\"\xc3\xa9\xa9\"", 0, 3},
    {"\"\xc3\x41\"", 0, 1},
    {"\"\xe2\x28\xa1\"", 0, 1},
    {"{\"\x80\":1}", 0, 2},
    {"\x80", 0, 0},
    /* Unterminated strings. */
    {"\"abc", 0, 4},
    {"\"abc\\\"", 0, 6},
    {"[\"abc]", 0, 6},
    {"\"", 0, 1},
    /* Anything but white space after the top-level value. */
    {"{} {}", 0, 3},
    {"1 2", 0, 2},
    {"[]x", 0, 2},
    {"[],", 0, 2},
    {"\"a\"\"b\"", 0, 3},
    {"\"a\":1", 0, 3},
    {"null,", 0, 4},
    {"{}}", 0, 2},
    {"[]]", 0, 2},
    {"0 0", 0, 2},
};

TEST(json_reject_table) {
  for (size_t i = 0; i < sizeof reject_cases / sizeof reject_cases[0]; i++) {
    const char *in = reject_cases[i].in;
    size_t len = reject_cases[i].len ? reject_cases[i].len : strlen(in);
    sb_jr_t r;
    sb_jr_init(&r, in, len);
    sb_jtok_t t;
    while ((t = sb_jr_next(&r)) > SB_JT_END) {
    }
    if (t != SB_JT_ERROR || r.err_off != reject_cases[i].off)
      fprintf(stderr, "  reject case %zu: %s, err_off %zu (%s)\n", i, tokens_n(in, len, NULL),
              r.err_off, r.err ? r.err : "-");
    CHECK_EQ_INT(t, SB_JT_ERROR);
    CHECK(r.err != NULL && r.err[0] != '\0');
    CHECK_EQ_INT(r.err_off, reject_cases[i].off);
    sb_jr_free(&r);
  }
}

TEST(json_reject_depth_65) {
  char in[2 * (SB_JSON_MAX_DEPTH + 1)];
  for (unsigned i = 0; i <= SB_JSON_MAX_DEPTH; i++) {
    in[i] = '[';
    in[2 * SB_JSON_MAX_DEPTH + 1 - i] = ']';
  }
  sb_jr_t r;
  sb_jr_init(&r, in, sizeof in);
  sb_jtok_t t;
  while ((t = sb_jr_next(&r)) > SB_JT_END) {
  }
  CHECK_EQ_INT(t, SB_JT_ERROR);
  CHECK_EQ_INT(r.err_off, 64);
  CHECK_EQ_STR(r.err, "nesting too deep");
  sb_jr_free(&r);

  /* Mixed containers: 64 open, then one more object. */
  char mix[200];
  size_t o = 0;
  for (unsigned i = 0; i < 32; i++) {
    mix[o++] = '[';
    memcpy(mix + o, "{\"k\":", 5);
    o += 5;
  }
  size_t at = o;
  mix[o++] = '{';
  sb_jr_init(&r, mix, o);
  while ((t = sb_jr_next(&r)) > SB_JT_END) {
  }
  CHECK_EQ_INT(t, SB_JT_ERROR);
  CHECK_EQ_INT(r.err_off, at);
  sb_jr_free(&r);

  /* A very deep input fails early instead of recursing. */
  size_t big = 100000;
  char *deep = malloc(big);
  REQUIRE(deep);
  memset(deep, '[', big);
  sb_jr_init(&r, deep, big);
  while ((t = sb_jr_next(&r)) > SB_JT_END) {
  }
  CHECK_EQ_INT(t, SB_JT_ERROR);
  CHECK_EQ_INT(r.err_off, 64);
  sb_jr_free(&r);
  free(deep);
}

/* ---------------------------------------------------------------------------------------
 * (c) Number conversions.
 * ------------------------------------------------------------------------------------- */

static const struct {
  const char *s;
  int rc;
  int64_t v;
} int64_cases[] = {
    {"0", 0, 0},
    {"-0", 0, 0},
    {"1", 0, 1},
    {"-1", 0, -1},
    {"42", 0, 42},
    {"9223372036854775807", 0, INT64_MAX},
    {"9223372036854775808", -2, 0},
    {"-9223372036854775808", 0, INT64_MIN},
    {"-9223372036854775809", -2, 0},
    {"18446744073709551615", -2, 0},
    {"1e2", 0, 100},
    {"1E+2", 0, 100},
    {"1e+2", 0, 100},
    {"1.0", 0, 1},
    {"-1.0", 0, -1},
    {"1.5", -1, 0},
    {"-1.5", -1, 0},
    {"0.5", -1, 0},
    {"1e-2", -1, 0},
    {"100e-2", 0, 1},
    {"1.50e1", 0, 15},
    {"0.5e1", 0, 5},
    {"123.456e3", 0, 123456},
    {"123.4567e3", -1, 0},
    {"0e99999", 0, 0},
    {"0e-99999", 0, 0},
    {"-0.000e99999", 0, 0},
    {"0.0", 0, 0},
    {"-0.0", 0, 0},
    {"1e18", 0, 1000000000000000000},
    {"-1e18", 0, -1000000000000000000},
    {"1e19", -2, 0},
    {"9.223372036854775807e18", 0, INT64_MAX},
    {"9.223372036854775808e18", -2, 0},
    {"-9.223372036854775808e18", 0, INT64_MIN},
    {"92233720368547758070e-1", 0, INT64_MAX},
    {"922337203685477580.7e1", 0, INT64_MAX},
    {"0.00000000000000000000000000000000000000001e41", 0, 1},
    {"10000000000000000000000000000000000000000e-40", 0, 1},
    {"00000000000000000000000001", -1, 0}, /* leading zeros are not JSON */
    {"12345678901234567", 0, 12345678901234567},
    {"123456789012345678901234567890", -2, 0},
    {"1e400", -2, 0},
    {"-1e400", -2, 0},
    {"1e99999999999999999999999999", -2, 0},
    {"1e-400", -1, 0},
    {"1.00000000000000000000000000001", -1, 0},
    {"1.5e400", -2, 0},
    {"", -1, 0},
    {"-", -1, 0},
    {"+1", -1, 0},
    {" 1", -1, 0},
    {"1 ", -1, 0},
    {"01", -1, 0},
    {"1.", -1, 0},
    {".5", -1, 0},
    {"1e", -1, 0},
    {"0x1", -1, 0},
    {"NaN", -1, 0},
    {"Infinity", -1, 0},
    {"\"1\"", -1, 0},
    {"1,", -1, 0},
};

TEST(json_to_int64_table) {
  for (size_t i = 0; i < sizeof int64_cases / sizeof int64_cases[0]; i++) {
    int64_t v = 12345;
    int rc = sb_json_to_int64(int64_cases[i].s, strlen(int64_cases[i].s), &v);
    if (rc != int64_cases[i].rc) fprintf(stderr, "  int64 case \"%s\"\n", int64_cases[i].s);
    CHECK_EQ_INT(rc, int64_cases[i].rc);
    if (rc == 0 && int64_cases[i].rc == 0) CHECK_EQ_INT(v, int64_cases[i].v);
    if (rc != 0) CHECK_EQ_INT(v, 12345); /* untouched on failure */
  }
  /* The text is a span: bytes after n are not part of the number. */
  int64_t v = 0;
  CHECK_EQ_INT(sb_json_to_int64("12345", 3, &v), 0);
  CHECK_EQ_INT(v, 123);
  CHECK_EQ_INT(sb_json_to_int64(NULL, 0, &v), -1);
}

static const struct {
  const char *s;
  int rc;
  uint64_t v;
} uint64_cases[] = {
    {"0", 0, 0},
    {"-0", 0, 0},
    {"-0.0e5", 0, 0},
    {"1", 0, 1},
    {"-1", -2, 0},
    {"-1e400", -2, 0},
    {"-0.5", -1, 0},
    {"18446744073709551615", 0, UINT64_MAX},
    {"18446744073709551616", -2, 0},
    {"1.8446744073709551615e19", 0, UINT64_MAX},
    {"1.8446744073709551616e19", -2, 0},
    {"184467440737095516150e-1", 0, UINT64_MAX},
    {"9223372036854775808", 0, 9223372036854775808u},
    {"1e19", 0, 10000000000000000000u},
    {"1e20", -2, 0},
    {"99999999999999999999", -2, 0},
    {"1e2", 0, 100},
    {"1.0", 0, 1},
    {"1.5", -1, 0},
    {"0e99999", 0, 0},
    {"", -1, 0},
    {"-", -1, 0},
    {"+1", -1, 0},
    {"01", -1, 0},
};

TEST(json_to_uint64_table) {
  for (size_t i = 0; i < sizeof uint64_cases / sizeof uint64_cases[0]; i++) {
    uint64_t v = 12345;
    int rc = sb_json_to_uint64(uint64_cases[i].s, strlen(uint64_cases[i].s), &v);
    if (rc != uint64_cases[i].rc) fprintf(stderr, "  uint64 case \"%s\"\n", uint64_cases[i].s);
    CHECK_EQ_INT(rc, uint64_cases[i].rc);
    if (rc == 0 && uint64_cases[i].rc == 0) CHECK(v == uint64_cases[i].v);
  }
}

static const struct {
  const char *s;
  int rc;
  double v;
} double_cases[] = {
    {"0", 0, 0.0},
    {"1", 0, 1.0},
    {"-1", 0, -1.0},
    {"1.5", 0, 1.5},
    {"-1.5", 0, -1.5},
    {"1e2", 0, 100.0},
    {"1E+2", 0, 100.0},
    {"1.0", 0, 1.0},
    {"0.1", 0, 0.1},
    {"0.30000000000000004", 0, 0.30000000000000004},
    {"3.141592653589793", 0, 3.141592653589793},
    {"1e22", 0, 1e22},
    {"1e23", 0, 1e23},
    {"123456789012345e30", 0, 123456789012345e30},
    {"1e-22", 0, 1e-22},
    {"1e400", -2, 0},
    {"-1e400", -2, 0},
    {"1e-400", 0, 0.0},
    {"0e99999", 0, 0.0},
    {"0.0000e-99999", 0, 0.0},
    {"1.7976931348623157e308", 0, DBL_MAX},
    {"-1.7976931348623157e308", 0, -DBL_MAX},
    {"1.7976931348623158e308", 0, DBL_MAX}, /* below the rounding midpoint */
    {"1.7976931348623159e308", -2, 0},      /* above it: infinity */
    {"2.2250738585072014e-308", 0, DBL_MIN},
    {"2.2250738585072011e-308", 0, 2.2250738585072011e-308},
    {"4.9406564584124654e-324", 0, 4.9406564584124654e-324},
    {"5e-324", 0, 4.9406564584124654e-324},
    {"2.4703282292062328e-324", 0, 4.9406564584124654e-324}, /* just above half: rounds up */
    {"2.4703282292062327e-324", 0, 0.0},                     /* just below: zero */
    {"1e-320", 0, 1e-320},
    {"9007199254740993", 0, 9007199254740992.0}, /* tie: to even */
    {"9007199254740995", 0, 9007199254740996.0},
    {"9007199254740993.0000000000000000000000001", 0, 9007199254740994.0},
    {"123456789012345678901234567890", 0, 1.2345678901234568e29},
    {"0.000000000000000000000000000000000000000001", 0, 1e-42},
    {"100000000000000000000000000000000000000000000e-44", 0, 1.0},
    {"", -1, 0},
    {"-", -1, 0},
    {"1.", -1, 0},
    {".5", -1, 0},
    {"+1", -1, 0},
    {"1e", -1, 0},
    {"01", -1, 0},
    {"NaN", -1, 0},
    {"Infinity", -1, 0},
    {"-Infinity", -1, 0},
    {"0x1p3", -1, 0},
    {" 1", -1, 0},
    {"1 ", -1, 0},
};

TEST(json_to_double_table) {
  for (size_t i = 0; i < sizeof double_cases / sizeof double_cases[0]; i++) {
    double v = 12345;
    int rc = sb_json_to_double(double_cases[i].s, strlen(double_cases[i].s), &v);
    if (rc != double_cases[i].rc || (rc == 0 && v != double_cases[i].v))
      fprintf(stderr, "  double case \"%s\": %d %.17g\n", double_cases[i].s, rc, v);
    CHECK_EQ_INT(rc, double_cases[i].rc);
    if (rc == 0 && double_cases[i].rc == 0) CHECK(v == double_cases[i].v);
  }
  double v = 1;
  CHECK_EQ_INT(sb_json_to_double("-0", 2, &v), 0);
  CHECK(v == 0 && signbit(v));
  CHECK_EQ_INT(sb_json_to_double("-0.0e-5", 7, &v), 0);
  CHECK(v == 0 && signbit(v));
  CHECK_EQ_INT(sb_json_to_double("-1e-400", 7, &v), 0);
  CHECK(v == 0 && signbit(v));
  CHECK_EQ_INT(sb_json_to_double("0", 1, &v), 0);
  CHECK(v == 0 && !signbit(v));
}

TEST(json_to_double_many_digits) {
  /* 2^53 + 1 followed by a thousand zeros and a final 1: the last digit breaks the tie, so it
   * must survive the truncation to 800 significant digits as a sticky digit. */
  char s[1100];
  size_t n = 0;
  memcpy(s, "9007199254740993.", 17);
  n = 17;
  memset(s + n, '0', 1000);
  n += 1000;
  s[n++] = '1';
  double v = 0;
  CHECK_EQ_INT(sb_json_to_double(s, n, &v), 0);
  CHECK(v == 9007199254740994.0);
  s[n - 1] = '0'; /* now exactly the tie: to even */
  CHECK_EQ_INT(sb_json_to_double(s, n, &v), 0);
  CHECK(v == 9007199254740992.0);
  int64_t i = 0;
  CHECK_EQ_INT(sb_json_to_int64(s, n, &i), 0); /* ...and integral */
  CHECK_EQ_INT(i, 9007199254740993);

  /* 400 digits of 1: the value is 1.11e399, out of range everywhere. */
  memset(s, '1', 400);
  CHECK_EQ_INT(sb_json_to_double(s, 400, &v), -2);
  CHECK_EQ_INT(sb_json_to_int64(s, 400, &i), -2);
  /* ...but with e-390 it is 1.11e9. */
  memcpy(s + 400, "e-390", 5);
  CHECK_EQ_INT(sb_json_to_double(s, 405, &v), 0);
  CHECK(fabs(v - 1111111111.1111111) < 1e-6);
  CHECK_EQ_INT(sb_json_to_int64(s, 405, &i), -1);
}

/* ---------------------------------------------------------------------------------------
 * (d) Writer.
 * ------------------------------------------------------------------------------------- */

/* The pending output of b as a C string (static buffer). */
static const char *out_str(const sb_buf_t *b) {
  static char s[4096];
  size_t n = sb_buf_pending(b) < sizeof s - 1 ? sb_buf_pending(b) : sizeof s - 1;
  if (n) memcpy(s, sb_buf_head(b), n);
  s[n] = '\0';
  return s;
}

TEST(json_writer_nesting_and_commas) {
  sb_buf_t b = {0};
  sb_jw_t w;
  sb_jw_init(&w, &b);
  sb_jw_obj_begin(&w);
  sb_jw_key(&w, "a", 1);
  sb_jw_int(&w, 1);
  sb_jw_key(&w, "b", 1);
  sb_jw_arr_begin(&w);
  sb_jw_uint(&w, 2);
  sb_jw_str(&w, "x", 1);
  sb_jw_bool(&w, 1);
  sb_jw_bool(&w, 0);
  sb_jw_null(&w);
  sb_jw_double(&w, 1.5);
  sb_jw_raw(&w, "{\"r\":[]}", 8);
  sb_jw_arr_begin(&w);
  sb_jw_arr_end(&w);
  sb_jw_obj_begin(&w);
  sb_jw_obj_end(&w);
  sb_jw_arr_end(&w);
  sb_jw_key(&w, "c", 1);
  sb_jw_obj_begin(&w);
  sb_jw_key(&w, "", 0);
  sb_jw_arr_begin(&w);
  sb_jw_arr_begin(&w);
  sb_jw_arr_end(&w);
  sb_jw_int(&w, -3);
  sb_jw_arr_end(&w);
  sb_jw_obj_end(&w);
  sb_jw_obj_end(&w);
  CHECK_EQ_INT(sb_jw_error(&w), 0);
  CHECK_EQ_INT(w.depth, 0);
  CHECK_EQ_STR(out_str(&b), "{\"a\":1,\"b\":[2,\"x\",true,false,null,1.5,{\"r\":[]},[],{}],"
                            "\"c\":{\"\":[[],-3]}}");
  /* The writer appends after what the buffer already holds. */
  sb_buf_reset(&b);
  sb_buf_append(&b, "prefix:", 7);
  sb_jw_init(&w, &b);
  sb_jw_str(&w, "top", 3);
  CHECK_EQ_STR(out_str(&b), "prefix:\"top\"");
  sb_buf_free(&b);

  /* Top-level scalars. */
  const struct {
    int kind;
    const char *want;
  } scalars[] = {{0, "null"}, {1, "true"}, {2, "false"}, {3, "0"}, {4, "\"\""}};
  for (size_t i = 0; i < sizeof scalars / sizeof scalars[0]; i++) {
    sb_jw_init(&w, &b);
    switch (scalars[i].kind) {
    case 0:
      sb_jw_null(&w);
      break;
    case 1:
      sb_jw_bool(&w, 7);
      break;
    case 2:
      sb_jw_bool(&w, 0);
      break;
    case 3:
      sb_jw_int(&w, 0);
      break;
    default:
      sb_jw_str(&w, "", 0);
      break;
    }
    CHECK_EQ_STR(out_str(&b), scalars[i].want);
    sb_buf_free(&b);
  }
}

static const struct {
  const char *in;
  size_t len; /* 0: strlen */
  const char *want;
} escape_cases[] = {
    {"", 0, "\"\""},
    {"plain", 0, "\"plain\""},
    {"\"", 0, "\"\\\"\""},
    {"\\", 0, "\"\\\\\""},
    {"a\"b\\c", 0, "\"a\\\"b\\\\c\""},
    {"\b\f\n\r\t", 0, "\"\\b\\f\\n\\r\\t\""},
    {"\x01", 0, "\"\\u0001\""},
    {"\x1f", 0, "\"\\u001f\""},
    {"\x0b", 0, "\"\\u000b\""},
    {"\0", 1, "\"\\u0000\""},
    {"a\0b", 3, "\"a\\u0000b\""},
    {"\x7f", 0, "\"\x7f\""},
    {"/", 0, "\"/\""},
    {"'<>&", 0, "\"'<>&\""},
    {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 0,
     "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\""},
    {"\xf4\x8f\xbf\xbf\xef\xbf\xbf\xed\x9f\xbf", 0, "\"\xf4\x8f\xbf\xbf\xef\xbf\xbf\xed\x9f\xbf\""},
    {"abcdefghijklmnopqrstuvwxyz", 0, "\"abcdefghijklmnopqrstuvwxyz\""},
    {"abcdefghi\"jklmnopq\\rstuvwxyz\n", 0, "\"abcdefghi\\\"jklmnopq\\\\rstuvwxyz\\n\""},
    {"\n\n\n\n\n\n\n\n\n\n\n\n", 0, "\"\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\\n\""},
    {"\x01\x02\x03\x04\x05\x06\x07\x08\x09", 0,
     "\"\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\""},
};

TEST(json_writer_escaping) {
  for (size_t i = 0; i < sizeof escape_cases / sizeof escape_cases[0]; i++) {
    sb_buf_t b = {0};
    sb_jw_t w;
    sb_jw_init(&w, &b);
    size_t len = escape_cases[i].len ? escape_cases[i].len : strlen(escape_cases[i].in);
    sb_jw_str(&w, escape_cases[i].in, len);
    CHECK_EQ_INT(sb_jw_error(&w), 0);
    CHECK_EQ_STR(out_str(&b), escape_cases[i].want);
    /* What is written reads back as the original bytes. */
    sb_jr_t r;
    sb_jr_init(&r, sb_buf_head(&b), sb_buf_pending(&b));
    CHECK_EQ_INT(sb_jr_next(&r), SB_JT_STRING);
    CHECK(r.len == len && memcmp(r.str, escape_cases[i].in, len) == 0);
    CHECK_EQ_INT(sb_jr_next(&r), SB_JT_END);
    sb_jr_free(&r);
    sb_buf_free(&b);
  }
  /* Every byte 0..0x7f, as a key, round-trips; a long escaped string grows the buffer. */
  char all[128];
  for (int i = 0; i < 128; i++)
    all[i] = (char)i;
  sb_buf_t b = {0};
  sb_jw_t w;
  sb_jw_init(&w, &b);
  sb_jw_obj_begin(&w);
  sb_jw_key(&w, all, sizeof all);
  char *ctl = malloc(5000);
  REQUIRE(ctl);
  memset(ctl, '\x01', 5000);
  sb_jw_str(&w, ctl, 5000);
  sb_jw_obj_end(&w);
  CHECK_EQ_INT(sb_jw_error(&w), 0);
  /* Key: 5 two-byte escapes, 27 \u00XX, the escaped quote and backslash, 94 plain bytes. */
  CHECK_EQ_INT(sb_buf_pending(&b), 1 + (2 + 5 * 2 + 27 * 6 + 2 * 2 + 94) + 1 + (2 + 5000 * 6) + 1);
  sb_jr_t r;
  sb_jr_init(&r, sb_buf_head(&b), sb_buf_pending(&b));
  CHECK_EQ_INT(sb_jr_next(&r), SB_JT_OBJ_BEGIN);
  CHECK_EQ_INT(sb_jr_next(&r), SB_JT_KEY);
  CHECK(r.len == 128 && memcmp(r.str, all, 128) == 0);
  CHECK_EQ_INT(sb_jr_next(&r), SB_JT_STRING);
  CHECK(r.len == 5000 && memcmp(r.str, ctl, 5000) == 0);
  CHECK_EQ_INT(sb_jr_next(&r), SB_JT_OBJ_END);
  CHECK_EQ_INT(sb_jr_next(&r), SB_JT_END);
  sb_jr_free(&r);
  sb_buf_free(&b);
  free(ctl);
}

static const char *const bad_utf8[] = {
    "\xc0\x80",
    "\xc1\xbf",
    "\xe0\x80\x80",
    "\xf0\x80\x80\x80",
    "\xed\xa0\x80",
    "\xed\xbf\xbf",
    "\xf4\x90\x80\x80",
    "\xf5\x80\x80\x80",
    "\xff",
    "\xfe",
    "\x80",
    "\xc3",
    "\xe2\x82",
    "\xf0\x9f\x98",
    "\xc3\x41",
    "abcdefghij\xc3",
    "abcdefghijklmnop\x80qr",
};

TEST(json_writer_invalid_utf8_is_rolled_back) {
  for (size_t i = 0; i < sizeof bad_utf8 / sizeof bad_utf8[0]; i++) {
    for (int key = 0; key < 2; key++) {
      sb_buf_t b = {0};
      sb_jw_t w;
      sb_jw_init(&w, &b);
      sb_jw_obj_begin(&w);
      sb_jw_key(&w, "ok", 2);
      sb_jw_str(&w, "fine", 4);
      if (key)
        sb_jw_key(&w, bad_utf8[i], strlen(bad_utf8[i]));
      else {
        sb_jw_key(&w, "k", 1);
        sb_jw_str(&w, bad_utf8[i], strlen(bad_utf8[i]));
      }
      CHECK_EQ_INT(sb_jw_error(&w), SB_EINVAL);
      CHECK_EQ_STR(out_str(&b), key ? "{\"ok\":\"fine\"" : "{\"ok\":\"fine\",\"k\":");
      /* After the first error every call is a no-op and the error stays. */
      sb_jw_str(&w, "more", 4);
      sb_jw_obj_end(&w);
      CHECK_EQ_INT(sb_jw_error(&w), SB_EINVAL);
      CHECK_EQ_STR(out_str(&b), key ? "{\"ok\":\"fine\"" : "{\"ok\":\"fine\",\"k\":");
      sb_buf_free(&b);
    }
  }
}

TEST(json_writer_misuse_and_limits) {
  sb_buf_t b = {0};
  sb_jw_t w;
  double bad[] = {NAN, INFINITY, -INFINITY};
  for (size_t i = 0; i < 3; i++) {
    sb_jw_init(&w, &b);
    sb_jw_arr_begin(&w);
    sb_jw_double(&w, bad[i]);
    CHECK_EQ_INT(sb_jw_error(&w), SB_EINVAL);
    CHECK_EQ_STR(out_str(&b), "[");
    sb_buf_free(&b);
  }
  /* 64 levels are fine; the 65th is an error. */
  sb_jw_init(&w, &b);
  for (int i = 0; i < 64; i++)
    sb_jw_arr_begin(&w);
  CHECK_EQ_INT(sb_jw_error(&w), 0);
  sb_jw_obj_begin(&w);
  CHECK_EQ_INT(sb_jw_error(&w), SB_EINVAL);
  CHECK_EQ_INT(sb_buf_pending(&b), 64);
  sb_buf_free(&b);
  sb_jw_init(&w, &b);
  for (int i = 0; i < 64; i++)
    sb_jw_obj_begin(&w), sb_jw_key(&w, "k", 1);
  sb_jw_int(&w, 1);
  for (int i = 0; i < 64; i++)
    sb_jw_obj_end(&w);
  CHECK_EQ_INT(sb_jw_error(&w), 0);
  sb_buf_free(&b);
  /* Closing what is not open, a key outside an object, a key without a value. */
  sb_jw_init(&w, &b);
  sb_jw_arr_end(&w);
  CHECK_EQ_INT(sb_jw_error(&w), SB_EINVAL);
  sb_jw_init(&w, &b);
  sb_jw_key(&w, "k", 1);
  CHECK_EQ_INT(sb_jw_error(&w), SB_EINVAL);
  sb_jw_init(&w, &b);
  sb_jw_obj_begin(&w);
  sb_jw_key(&w, "k", 1);
  sb_jw_obj_end(&w);
  CHECK_EQ_INT(sb_jw_error(&w), SB_EINVAL);
  sb_buf_free(&b);
}

TEST(json_writer_integers) {
  const struct {
    int64_t v;
    const char *want;
  } ints[] = {{0, "0"},
              {1, "1"},
              {-1, "-1"},
              {10, "10"},
              {-1234567890, "-1234567890"},
              {INT64_MAX, "9223372036854775807"},
              {INT64_MIN, "-9223372036854775808"},
              {INT64_MIN + 1, "-9223372036854775807"}};
  for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
    sb_buf_t b = {0};
    sb_jw_t w;
    sb_jw_init(&w, &b);
    sb_jw_int(&w, ints[i].v);
    CHECK_EQ_STR(out_str(&b), ints[i].want);
    int64_t back = 0;
    CHECK_EQ_INT(sb_json_to_int64((const char *)sb_buf_head(&b), sb_buf_pending(&b), &back), 0);
    CHECK_EQ_INT(back, ints[i].v);
    sb_buf_free(&b);
  }
  const struct {
    uint64_t v;
    const char *want;
  } uints[] = {{0, "0"},
               {9, "9"},
               {(uint64_t)INT64_MAX + 1, "9223372036854775808"},
               {UINT64_MAX, "18446744073709551615"}};
  for (size_t i = 0; i < sizeof uints / sizeof uints[0]; i++) {
    sb_buf_t b = {0};
    sb_jw_t w;
    sb_jw_init(&w, &b);
    sb_jw_uint(&w, uints[i].v);
    CHECK_EQ_STR(out_str(&b), uints[i].want);
    uint64_t back = 0;
    CHECK_EQ_INT(sb_json_to_uint64((const char *)sb_buf_head(&b), sb_buf_pending(&b), &back), 0);
    CHECK(back == uints[i].v);
    sb_buf_free(&b);
  }
}

/* sb_jw_double's text for v (static buffer). */
static const char *dtoa(double v) {
  sb_buf_t b = {0};
  sb_jw_t w;
  sb_jw_init(&w, &b);
  sb_jw_double(&w, v);
  static char s[64];
  size_t n = sb_buf_pending(&b) < sizeof s - 1 ? sb_buf_pending(&b) : sizeof s - 1;
  if (n) memcpy(s, sb_buf_head(&b), n);
  s[n] = '\0';
  if (sb_jw_error(&w)) strcpy(s, "(error)");
  sb_buf_free(&b);
  return s;
}

/* The form chosen is ECMAScript's Number::toString (plus "-0"): plain notation from 1e-6 up
 * to below 1e21, exponent notation with an explicit sign outside. */
static const struct {
  double v;
  const char *want;
} double_forms[] = {
    {0.0, "0"},
    {-0.0, "-0"},
    {1.0, "1"},
    {-1.0, "-1"},
    {1.5, "1.5"},
    {-1.5, "-1.5"},
    {0.1, "0.1"},
    {0.2, "0.2"},
    {0.1 + 0.2, "0.30000000000000004"},
    {1.0 / 3.0, "0.3333333333333333"},
    {2.0 / 3.0, "0.6666666666666666"},
    {3.141592653589793, "3.141592653589793"},
    {100.0, "100"},
    {123456789.125, "123456789.125"},
    {0.000001, "0.000001"},
    {0.0000015, "0.0000015"},
    {1e-7, "1e-7"},
    {1.5e-7, "1.5e-7"},
    {123e-20, "1.23e-18"},
    {9007199254740992.0, "9007199254740992"},
    {9007199254740994.0, "9007199254740994"},
    {1e20, "100000000000000000000"},
    {123456789012345680000.0, "123456789012345680000"},
    {1e21, "1e+21"},
    {1.5e21, "1.5e+21"},
    {1e23, "1e+23"},
    {-1e21, "-1e+21"},
    {DBL_MAX, "1.7976931348623157e+308"},
    {DBL_MIN, "2.2250738585072014e-308"},
    {4.9406564584124654e-324, "5e-324"},
    {1e-320, "1e-320"},
    {9.5367431640625e-7, "9.5367431640625e-7"},
    {5e-7, "5e-7"},
    {0.5, "0.5"},
    {1e15, "1000000000000000"},
    {1e16, "10000000000000000"},
    {1.7976931348623157e308 / 2, "8.988465674311579e+307"},
    {2.5e-308, "2.5e-308"},
};

TEST(json_writer_double_forms) {
  for (size_t i = 0; i < sizeof double_forms / sizeof double_forms[0]; i++)
    CHECK_EQ_STR(dtoa(double_forms[i].v), double_forms[i].want);
}

/* Checks that sb_jw_double(v) reads back bit for bit through the C library's strtod and
 * through sb_json_to_double, and that one digit fewer (correctly rounded by printf) does not
 * round-trip. Returns 1 when all holds. */
static int double_round_trips(double v) {
  const char *s = dtoa(v);
  char *end = NULL;
  double back = strtod(s, &end);
  if (*end != '\0' || memcmp(&back, &v, sizeof v) != 0) return 0;
  double mine = 0;
  if (sb_json_to_double(s, strlen(s), &mine) != 0 || memcmp(&mine, &v, sizeof v) != 0) return 0;
  /* Count significant digits. */
  int digits = 0, seen = 0;
  const char *c = s;
  for (; *c && *c != 'e'; c++) {
    if (*c >= '1' && *c <= '9') seen = 1;
    if (*c >= '0' && *c <= '9' && seen) digits++;
  }
  /* Trailing zeros of an integer written in plain form are not significant. */
  if (!strchr(s, '.') && !strchr(s, 'e'))
    while (digits > 1 && c > s && c[-1] == '0')
      digits--, c--;
  if (digits > 1 && v != 0) {
    char shorter[64];
    snprintf(shorter, sizeof shorter, "%.*e", digits - 2, v);
    if (strtod(shorter, NULL) == v) return 0;
  }
  return 1;
}

TEST(json_writer_double_round_trip) {
  unsigned bad = 0, n = 0;
  double fixed[] = {0.1,      0.2,     0.3,      1e-320,    3e-320,        DBL_MAX,
                    -DBL_MAX, DBL_MIN, 5e-324,   -5e-324,   1e308,         1e-308,
                    123.456,  -0.0,    0.0,      1e22,      1e23,          1e-5,
                    1e-6,     1e-7,    2.5e-310, 1 / 3.0,   M_PI,          M_E,
                    1e21,     1e20,    9.999e20, 299792458, 6.02214076e23, 1.602176634e-19};
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++, n++)
    if (!double_round_trips(fixed[i])) {
      fprintf(stderr, "  %.17g -> %s\n", fixed[i], dtoa(fixed[i]));
      bad++;
    }
  /* Every power of two: their rounding intervals are lopsided (the gap below is half the gap
   * above), the hard case for shortest output. */
  for (int e = -1074; e <= 1023; e++, n++) {
    double v = ldexp(1.0, e);
    if (!double_round_trips(v)) {
      fprintf(stderr, "  2^%d = %.17g -> %s\n", e, v, dtoa(v));
      bad++;
    }
  }
  /* Pseudo-random bit patterns (xorshift), and short decimals k / 10^j. */
  uint64_t x = 0x9E3779B97F4A7C15ull;
  for (int i = 0; i < 3000; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    double v;
    memcpy(&v, &x, sizeof v);
    if (!isfinite(v)) continue;
    n++;
    if (!double_round_trips(v)) {
      fprintf(stderr, "  %.17g -> %s\n", v, dtoa(v));
      bad++;
    }
  }
  for (int k = 1; k < 2000; k += 7)
    for (int j = 0; j < 25; j++, n++) {
      double v = k / pow(10, j);
      if (!double_round_trips(v)) {
        fprintf(stderr, "  %d/10^%d = %.17g -> %s\n", k, j, v, dtoa(v));
        bad++;
      }
    }
  CHECK(n > 5000);
  CHECK_EQ_INT(bad, 0);
}

/* ---------------------------------------------------------------------------------------
 * (e) sb_jr_skip.
 * ------------------------------------------------------------------------------------- */

TEST(json_skip_nested) {
  const char *in = "[1,[2,{\"a\":[3,{\"b\":\"\\u00e9\"}]}],4,{\"x\":{\"y\":[[]]}},5]";
  sb_jr_t r;
  sb_jr_init(&r, in, strlen(in));
  CHECK_EQ_INT(sb_jr_next(&r), SB_JT_ARR_BEGIN);
  sb_jtok_t t = sb_jr_next(&r);
  CHECK_EQ_INT(t, SB_JT_NUMBER);
  CHECK_EQ_INT(sb_jr_skip(&r, t), 0); /* a scalar: nothing to do */
  t = sb_jr_next(&r);
  CHECK_EQ_INT(t, SB_JT_ARR_BEGIN);
  CHECK_EQ_INT(sb_jr_skip(&r, t), 0);
  CHECK_EQ_INT(r.depth, 1);
  t = sb_jr_next(&r);
  CHECK_EQ_INT(t, SB_JT_NUMBER);
  CHECK(r.len == 1 && r.str[0] == '4');
  t = sb_jr_next(&r);
  CHECK_EQ_INT(t, SB_JT_OBJ_BEGIN);
  CHECK_EQ_INT(sb_jr_skip(&r, t), 0);
  t = sb_jr_next(&r);
  CHECK_EQ_INT(t, SB_JT_NUMBER);
  CHECK(r.len == 1 && r.str[0] == '5');
  CHECK_EQ_INT(sb_jr_next(&r), SB_JT_ARR_END);
  CHECK_EQ_INT(sb_jr_next(&r), SB_JT_END);
  sb_jr_free(&r);

  /* The whole document, and an unknown member skipped through its key. */
  in = "{\"unknown\":{\"deep\":[1,2,{\"x\":null}]},\"known\":7,\"u2\":[],\"u3\":\"s\"}";
  sb_jr_init(&r, in, strlen(in));
  t = sb_jr_next(&r);
  CHECK_EQ_INT(t, SB_JT_OBJ_BEGIN);
  t = sb_jr_next(&r);
  CHECK_EQ_INT(t, SB_JT_KEY);
  CHECK_EQ_STR(r.str, "unknown");
  CHECK_EQ_INT(sb_jr_skip(&r, t), 0); /* a key: skips its value */
  t = sb_jr_next(&r);
  CHECK_EQ_INT(t, SB_JT_KEY);
  CHECK_EQ_STR(r.str, "known");
  t = sb_jr_next(&r);
  CHECK_EQ_INT(t, SB_JT_NUMBER);
  t = sb_jr_next(&r);
  CHECK_EQ_INT(t, SB_JT_KEY);
  t = sb_jr_next(&r);
  CHECK_EQ_INT(t, SB_JT_ARR_BEGIN);
  CHECK_EQ_INT(sb_jr_skip(&r, t), 0);
  t = sb_jr_next(&r);
  CHECK_EQ_INT(t, SB_JT_KEY);
  CHECK_EQ_INT(sb_jr_skip(&r, t), 0);
  CHECK_EQ_INT(sb_jr_next(&r), SB_JT_OBJ_END);
  CHECK_EQ_INT(sb_jr_next(&r), SB_JT_END);
  sb_jr_free(&r);

  sb_jr_init(&r, in, strlen(in));
  t = sb_jr_next(&r);
  CHECK_EQ_INT(sb_jr_skip(&r, t), 0);
  CHECK_EQ_INT(sb_jr_next(&r), SB_JT_END);
  sb_jr_free(&r);
}

TEST(json_skip_validates) {
  const char *bad[] = {
      "[[1,{\"a\":tru}],2]",
      "[[\"\\x\"]]",
      "[[\"\xc0\x80\"]]",
      "[{\"a\":1,}]",
      "[[1,]]",
      "[[01]]",
      "[[1,2",
      "[{\"a\" 1}]",
      "[[\"\\ud800\"]]",
      "[[\"a\x01\"]]",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    sb_jr_t r;
    sb_jr_init(&r, bad[i], strlen(bad[i]));
    CHECK_EQ_INT(sb_jr_next(&r), SB_JT_ARR_BEGIN);
    sb_jtok_t t = sb_jr_next(&r);
    CHECK(t == SB_JT_ARR_BEGIN || t == SB_JT_OBJ_BEGIN);
    CHECK_EQ_INT(sb_jr_skip(&r, t), -1);
    CHECK(r.err != NULL);
    CHECK_EQ_INT(sb_jr_next(&r), SB_JT_ERROR);
    sb_jr_free(&r);
  }
  /* Skipping too deep a value hits the depth limit like reading it would. */
  char deep[140];
  memset(deep, '[', sizeof deep);
  sb_jr_t r;
  sb_jr_init(&r, deep, sizeof deep);
  sb_jtok_t t = sb_jr_next(&r);
  CHECK_EQ_INT(sb_jr_skip(&r, t), -1);
  CHECK_EQ_STR(r.err, "nesting too deep");
  CHECK_EQ_INT(sb_jr_skip(&r, SB_JT_ERROR), -1);
  sb_jr_free(&r);
}
