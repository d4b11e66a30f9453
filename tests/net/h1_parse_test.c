/*
 * Tests of the strict HTTP/1.1 parser (src/net/h1_parse.c): the request line and field
 * grammar of RFC 9112 and the leniencies it must refuse (the ones request smuggling and
 * response splitting rely on), head-end detection across split reads, chunk-size lines.
 */
#include <string.h>

#include "net/h1_parse.h"
#include "sb_test.h"

typedef struct fields {
  char names[16][32];
  char values[16][64];
  int n;
} fields_t;

static int collect(void *ud, const char *n, size_t nlen, const char *v, size_t vlen) {
  fields_t *f = ud;
  if (f->n == 16 || nlen >= 32 || vlen >= 64) return 431;
  memcpy(f->names[f->n], n, nlen);
  f->names[f->n][nlen] = 0;
  memcpy(f->values[f->n], v, vlen);
  f->values[f->n][vlen] = 0;
  f->n++;
  return 0;
}

/* Parses a whole head given as a string; returns the status (0 = ok). */
static int parse(const char *s, sb__h1p_line_t *line, fields_t *f) {
  memset(f, 0, sizeof *f);
  size_t scan = 0, len = strlen(s);
  size_t end = sb__h1p_head_end((const uint8_t *)s, len, &scan);
  if (end == 0) return -1;
  return sb__h1p_parse_head((const uint8_t *)s, end, line, collect, f);
}

TEST(h1p_simple_request) {
  sb__h1p_line_t l;
  fields_t f;
  CHECK_EQ_INT(parse("GET /a?b=c HTTP/1.1\r\nHost: x\r\nX-Y:  spaced value \t\r\n\r\n", &l, &f), 0);
  CHECK_MEM(l.method, "GET", 3);
  CHECK_EQ_INT(l.method_len, 3);
  CHECK_MEM(l.target, "/a?b=c", 6);
  CHECK_EQ_INT(l.target_len, 6);
  CHECK_EQ_INT(l.minor, 1);
  CHECK_EQ_INT(f.n, 2);
  CHECK_EQ_STR(f.names[0], "Host");
  CHECK_EQ_STR(f.values[0], "x");
  CHECK_EQ_STR(f.values[1], "spaced value"); /* OWS trimmed on both sides */
}

TEST(h1p_http10_and_versions) {
  sb__h1p_line_t l;
  fields_t f;
  CHECK_EQ_INT(parse("GET / HTTP/1.0\r\n\r\n", &l, &f), 0);
  CHECK_EQ_INT(l.minor, 0);
  CHECK_EQ_INT(parse("GET / HTTP/2.0\r\n\r\n", &l, &f), 505);
  CHECK_EQ_INT(parse("GET / HTTP/0.9\r\n\r\n", &l, &f), 505);
  CHECK_EQ_INT(parse("GET / HTXP/1.1\r\n\r\n", &l, &f), 400);
  CHECK_EQ_INT(parse("GET / HTTP/1.1 \r\n\r\n", &l, &f), 400);
  CHECK_EQ_INT(parse("GET / http/1.1\r\n\r\n", &l, &f), 400);
  CHECK_EQ_INT(parse("GET / HTTP/11\r\n\r\n", &l, &f), 400);
}

TEST(h1p_rejects_malformed_request_lines) {
  sb__h1p_line_t l;
  fields_t f;
  CHECK_EQ_INT(parse("GET  / HTTP/1.1\r\n\r\n", &l, &f), 400);        /* two spaces */
  CHECK_EQ_INT(parse("G(T / HTTP/1.1\r\n\r\n", &l, &f), 400);         /* non-token method */
  CHECK_EQ_INT(parse("GET /a b HTTP/1.1\r\n\r\n", &l, &f), 400);      /* space in target */
  CHECK_EQ_INT(parse("GET /\x01 HTTP/1.1\r\n\r\n", &l, &f), 400);     /* control in target */
  CHECK_EQ_INT(parse("GET /\xc3\xa9 HTTP/1.1\r\n\r\n", &l, &f), 400); /* raw UTF-8 */
  CHECK_EQ_INT(parse("GARBAGE\r\n\r\n", &l, &f), 400);
}

TEST(h1p_rejects_smuggling_leniencies) {
  sb__h1p_line_t l;
  fields_t f;
  CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nHost : x\r\n\r\n", &l, &f), 400); /* space before colon */
  CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", &l, &f), 400); /* obs-fold */
  CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", &l, &f), 400);            /* bare CR */
  CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nX: a\nY: b\r\n\r\n", &l, &f), 400);         /* bare LF */
  CHECK_EQ_INT(parse("GET / HTTP/1.1\nHost: x\r\n\r\n", &l, &f), 400); /* LF line end */
  const char nul[] = "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n";
  size_t scan = 0;
  size_t end = sb__h1p_head_end((const uint8_t *)nul, sizeof nul - 1, &scan);
  CHECK_EQ_INT(end, sizeof nul - 1);
  CHECK_EQ_INT(sb__h1p_parse_head((const uint8_t *)nul, end, &l, collect, &f), 400);
  CHECK_EQ_INT(parse("GET / HTTP/1.1\r\n: empty-name\r\n\r\n", &l, &f), 400);
  CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nNoColon\r\n\r\n", &l, &f), 400);
}

TEST(h1p_obs_text_allowed_in_values) {
  sb__h1p_line_t l;
  fields_t f;
  CHECK_EQ_INT(parse("GET / HTTP/1.1\r\nX: caf\xc3\xa9\tok\r\n\r\n", &l, &f), 0);
  CHECK_EQ_STR(f.values[0], "caf\xc3\xa9\tok");
}

TEST(h1p_field_callback_status_stops_parsing) {
  sb__h1p_line_t l;
  fields_t f;
  char big[200];
  snprintf(big, sizeof big, "GET / HTTP/1.1\r\nX: %070d\r\n\r\n", 7);
  CHECK_EQ_INT(parse(big, &l, &f), 431); /* collect() refuses values over 63 bytes */
}

TEST(h1p_head_end_stops_at_bare_lf) {
  size_t scan = 0;
  const char *s = "GET / HTTP/1.1\nHost: x\n\n";
  CHECK_EQ_INT(sb__h1p_head_end((const uint8_t *)s, strlen(s), &scan), 15);
  scan = 0;
  s = "GET / HTTP/1.1\r\nHost: x\r\n\n";
  CHECK_EQ_INT(sb__h1p_head_end((const uint8_t *)s, strlen(s), &scan), strlen(s));
}

TEST(h1p_head_end_across_splits) {
  const char *req = "GET / HTTP/1.1\r\nHost: x\r\n\r\nNEXT";
  size_t full = strlen(req) - 4;
  /* Feed the head one byte at a time: the end must be found exactly once, at the right
   * place, whatever the split. */
  for (size_t cut = 1; cut < full; cut++) {
    size_t scan = 0;
    CHECK_EQ_INT(sb__h1p_head_end((const uint8_t *)req, cut, &scan), 0);
    CHECK_EQ_INT(sb__h1p_head_end((const uint8_t *)req, strlen(req), &scan), full);
  }
  size_t scan = 0;
  for (size_t n = 1; n <= full; n++) {
    size_t e = sb__h1p_head_end((const uint8_t *)req, n, &scan);
    CHECK_EQ_INT(e, n == full ? full : 0);
  }
}

TEST(h1p_skip_empty_lines) {
  CHECK_EQ_INT(sb__h1p_skip_empty((const uint8_t *)"\r\n\r\nGET", 7), 4);
  CHECK_EQ_INT(sb__h1p_skip_empty((const uint8_t *)"GET", 3), 0);
  CHECK_EQ_INT(sb__h1p_skip_empty((const uint8_t *)"\nGET", 4), -400);
  CHECK_EQ_INT(sb__h1p_skip_empty((const uint8_t *)"\rX", 2), -400);
  CHECK_EQ_INT(sb__h1p_skip_empty((const uint8_t *)"\r", 1), 0); /* LF may follow */
  char many[64] = "";
  for (int i = 0; i < SB_H1P_MAX_EMPTY_LINES + 1; i++)
    strcat(many, "\r\n");
  CHECK_EQ_INT(sb__h1p_skip_empty((const uint8_t *)many, strlen(many)), -400);
}

TEST(h1p_chunk_lines) {
  uint64_t size = 0;
  CHECK_EQ_INT(sb__h1p_chunk_line((const uint8_t *)"1a\r\n", 4, &size), 4);
  CHECK_EQ_INT(size, 26);
  CHECK_EQ_INT(sb__h1p_chunk_line((const uint8_t *)"0\r\n", 3, &size), 3);
  CHECK_EQ_INT(size, 0);
  CHECK_EQ_INT(sb__h1p_chunk_line((const uint8_t *)"5;name=\"v;x\"\r\n", 14, &size), 14);
  CHECK_EQ_INT(size, 5);
  CHECK_EQ_INT(sb__h1p_chunk_line((const uint8_t *)"ff", 2, &size), 0); /* incomplete */
  CHECK_EQ_INT(sb__h1p_chunk_line((const uint8_t *)"ff\r", 3, &size), 0);
  CHECK_EQ_INT(sb__h1p_chunk_line((const uint8_t *)"zz\r\n", 4, &size), -400);
  CHECK_EQ_INT(sb__h1p_chunk_line((const uint8_t *)"\r\n", 2, &size), -400);
  CHECK_EQ_INT(sb__h1p_chunk_line((const uint8_t *)"5\rX", 3, &size), -400);
  CHECK_EQ_INT(sb__h1p_chunk_line((const uint8_t *)"5\n", 2, &size), -400);
  CHECK_EQ_INT(sb__h1p_chunk_line((const uint8_t *)"5 \x01\r\n", 5, &size), -400);
  /* 17 hex digits overflow 64 bits. */
  CHECK_EQ_INT(sb__h1p_chunk_line((const uint8_t *)"10000000000000000\r\n", 19, &size), -400);
  CHECK_EQ_INT(sb__h1p_chunk_line((const uint8_t *)"ffffffffffffffff\r\n", 18, &size), 18);
  CHECK(size == UINT64_MAX);
}

TEST(h1p_content_length_values) {
  uint64_t v = 0;
  CHECK_EQ_INT(sb__h1p_content_length("0", 1, &v), 0);
  CHECK_EQ_INT(v, 0);
  CHECK_EQ_INT(sb__h1p_content_length("1234", 4, &v), 0);
  CHECK_EQ_INT(v, 1234);
  CHECK_EQ_INT(sb__h1p_content_length("+1", 2, &v), -1);
  CHECK_EQ_INT(sb__h1p_content_length("-1", 2, &v), -1);
  CHECK_EQ_INT(sb__h1p_content_length(" 1", 2, &v), -1);
  CHECK_EQ_INT(sb__h1p_content_length("0x10", 4, &v), -1);
  CHECK_EQ_INT(sb__h1p_content_length("", 0, &v), -1);
  CHECK_EQ_INT(sb__h1p_content_length("99999999999999999999", 20, &v), -1);
}

TEST(h1p_token_lists) {
  CHECK(sb__h1p_has_token("keep-alive, Upgrade", 19, "upgrade"));
  CHECK(sb__h1p_has_token("close", 5, "close"));
  CHECK(!sb__h1p_has_token("closed", 6, "close"));
  CHECK(!sb__h1p_has_token("", 0, "close"));
  CHECK(sb__h1p_has_token(" ,, h2c ,", 9, "h2c"));
}
