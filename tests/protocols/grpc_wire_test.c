/*
 * protocols/grpc/wire.c: the length-prefixed message reader against every way the bytes can
 * be cut, gzip in both directions (and its limits), grpc-timeout and grpc-message encoding as
 * gRPC's PROTOCOL-HTTP2 document specifies them.
 */
#include "protocols/grpc/wire.h"

#include "sb_test.h"
#include "switchboard/error.h"

/* Two messages, "ab" and "" , then "xyz" compressed-flagged. */
static const uint8_t stream3[] = {0, 0, 0, 0, 2, 'a', 'b', 0,   0,   0,
                                  0, 0, 1, 0, 0, 0,   3,   'x', 'y', 'z'};

/* Feeds data in pieces of step bytes; collects each message's bytes (flag as a prefix char) into
 * out separated by '|'. Returns the last reader result. */
static int feed(sb_grpc_reader_t *r, const uint8_t *data, size_t n, size_t step, char *out,
                size_t cap) {
  size_t o = 0;
  int rc = 0;
  for (size_t i = 0; i < n; i += step) {
    const uint8_t *p = data + i;
    size_t len = n - i < step ? n - i : step;
    for (;;) {
      sb_grpc_msg_t m;
      rc = sb_grpc_reader_read(r, &p, &len, &m);
      if (rc <= 0) break;
      if (o + m.len + 3 < cap) {
        out[o++] = m.compressed ? 'Z' : '-';
        memcpy(out + o, m.data, m.len);
        o += m.len;
        out[o++] = '|';
      }
    }
    if (rc < 0) break;
  }
  out[o] = '\0';
  return rc;
}

TEST(reader_every_cut) {
  for (size_t step = 1; step <= sizeof stream3; step++) {
    sb_grpc_reader_t r = {.max = 16};
    char out[64];
    CHECK_EQ_INT(feed(&r, stream3, sizeof stream3, step, out, sizeof out), 0);
    CHECK_EQ_STR(out, "-ab|-|Zxyz|");
    CHECK_EQ_INT(sb_grpc_reader_partial(&r), 0);
    sb_grpc_reader_free(&r);
  }
}

TEST(reader_partial_and_errors) {
  sb_grpc_reader_t r = {.max = 16};
  char out[64];
  CHECK_EQ_INT(feed(&r, stream3, 3, 3, out, sizeof out), 0);
  CHECK_EQ_INT(sb_grpc_reader_partial(&r), 1); /* inside a prefix */
  sb_grpc_reader_free(&r);

  sb_grpc_reader_t r2 = {.max = 16};
  CHECK_EQ_INT(feed(&r2, stream3, 6, 6, out, sizeof out), 0);
  CHECK_EQ_INT(sb_grpc_reader_partial(&r2), 1); /* inside a payload */
  sb_grpc_reader_free(&r2);

  static const uint8_t badflag[] = {2, 0, 0, 0, 0};
  sb_grpc_reader_t r3 = {.max = 16};
  CHECK_EQ_INT(feed(&r3, badflag, sizeof badflag, 5, out, sizeof out), SB_EPROTO);
  sb_grpc_reader_free(&r3);

  /* The limit is checked on the prefix, before any payload byte is buffered. */
  static const uint8_t big[] = {0, 0, 0, 0, 17};
  sb_grpc_reader_t r4 = {.max = 16};
  CHECK_EQ_INT(feed(&r4, big, sizeof big, 5, out, sizeof out), SB_ELIMIT);
  CHECK_EQ_INT((int)r4.buf.cap, 0);
  sb_grpc_reader_free(&r4);

  static const uint8_t huge[] = {0, 0xff, 0xff, 0xff, 0xff};
  sb_grpc_reader_t r5 = {.max = SIZE_MAX};
  CHECK_EQ_INT(feed(&r5, huge, sizeof huge, 5, out, sizeof out), 0); /* waits for 4 GiB */
  CHECK_EQ_INT(sb_grpc_reader_partial(&r5), 1);
  sb_grpc_reader_free(&r5);
}

TEST(frame_prefix) {
  sb_buf_t b = {0};
  CHECK_EQ_INT(sb_grpc_frame(&b, (const uint8_t *)"hello", 5, 1), 0);
  CHECK_MEM(sb_buf_head(&b), "\x01\x00\x00\x00\x05hello", 10);
  sb_buf_free(&b);
}

TEST(gzip_round_trip_and_limits) {
  static uint8_t plain[100000];
  for (size_t i = 0; i < sizeof plain; i++)
    plain[i] = (uint8_t)(i % 7 == 0 ? i : 0);
  sb_buf_t z = {0}, back = {0};
  CHECK_EQ_INT(sb_grpc_gzip(plain, sizeof plain, &z), 0);
  CHECK(sb_buf_pending(&z) < sizeof plain / 2);
  CHECK_MEM(sb_buf_head(&z), "\x1f\x8b", 2); /* a gzip member */
  CHECK_EQ_INT(sb_grpc_gunzip(sb_buf_head(&z), sb_buf_pending(&z), sizeof plain, &back), 0);
  REQUIRE(sb_buf_pending(&back) == sizeof plain);
  CHECK_MEM(sb_buf_head(&back), plain, sizeof plain);
  /* One byte under the size: a compression bomb is stopped at the limit. */
  sb_buf_reset(&back);
  CHECK_EQ_INT(sb_grpc_gunzip(sb_buf_head(&z), sb_buf_pending(&z), sizeof plain - 1, &back),
               SB_ELIMIT);
  /* Truncated, corrupt, and trailing bytes after the member. */
  sb_buf_reset(&back);
  CHECK_EQ_INT(sb_grpc_gunzip(sb_buf_head(&z), sb_buf_pending(&z) - 4, sizeof plain, &back),
               SB_EPROTO);
  sb_buf_reset(&back);
  CHECK_EQ_INT(sb_grpc_gunzip((const uint8_t *)"\x1f\x8bnot gzip", 10, 100, &back), SB_EPROTO);
  sb_buf_append(&z, "x", 1);
  sb_buf_reset(&back);
  CHECK_EQ_INT(sb_grpc_gunzip(sb_buf_head(&z), sb_buf_pending(&z), sizeof plain, &back), SB_EPROTO);
  /* An empty message compresses to a valid member. */
  sb_buf_reset(&z);
  sb_buf_reset(&back);
  CHECK_EQ_INT(sb_grpc_gzip(NULL, 0, &z), 0);
  CHECK_EQ_INT(sb_grpc_gunzip(sb_buf_head(&z), sb_buf_pending(&z), 10, &back), 0);
  CHECK_EQ_INT((int)sb_buf_pending(&back), 0);
  sb_buf_free(&z);
  sb_buf_free(&back);
}

TEST(deflate_is_zlib_format) {
  /* gRPC's "deflate": a zlib stream (RFC 1950), here zlib's own compress() of "hello". */
  static const uint8_t hello[] = {0x78, 0x9c, 0xcb, 0x48, 0xcd, 0xc9, 0xc9,
                                  0x07, 0x00, 0x06, 0x2c, 0x02, 0x15};
  sb_buf_t back = {0}, z = {0};
  CHECK_EQ_INT(sb_grpc_inflate_zlib(hello, sizeof hello, 100, &back), 0);
  REQUIRE(sb_buf_pending(&back) == 5);
  CHECK_MEM(sb_buf_head(&back), "hello", 5);
  sb_buf_reset(&back);
  CHECK_EQ_INT(sb_grpc_inflate_zlib(hello, sizeof hello, 4, &back), SB_ELIMIT);
  /* The Adler-32 checksum is checked: one flipped bit in it fails. */
  uint8_t bad[sizeof hello];
  memcpy(bad, hello, sizeof bad);
  bad[sizeof bad - 1] ^= 1;
  sb_buf_reset(&back);
  CHECK_EQ_INT(sb_grpc_inflate_zlib(bad, sizeof bad, 100, &back), SB_EPROTO);
  sb_buf_reset(&back);
  CHECK_EQ_INT(sb_grpc_inflate_zlib(hello, sizeof hello - 3, 100, &back), SB_EPROTO);
  /* The wrappers are not interchangeable: a gzip member is not a zlib stream, nor back. */
  CHECK_EQ_INT(sb_grpc_gzip((const uint8_t *)"hello", 5, &z), 0);
  sb_buf_reset(&back);
  CHECK_EQ_INT(sb_grpc_inflate_zlib(sb_buf_head(&z), sb_buf_pending(&z), 100, &back), SB_EPROTO);
  sb_buf_reset(&back);
  CHECK_EQ_INT(sb_grpc_gunzip(hello, sizeof hello, 100, &back), SB_EPROTO);
  sb_buf_free(&z);
  sb_buf_free(&back);
}

TEST(timeout_units) {
  uint64_t ms = 0;
  CHECK_EQ_INT(sb_grpc_parse_timeout("100m", &ms), 0);
  CHECK_EQ_INT((int)ms, 100);
  CHECK_EQ_INT(sb_grpc_parse_timeout("2S", &ms), 0);
  CHECK_EQ_INT((int)ms, 2000);
  CHECK_EQ_INT(sb_grpc_parse_timeout("3M", &ms), 0);
  CHECK_EQ_INT((int)ms, 180000);
  CHECK_EQ_INT(sb_grpc_parse_timeout("1H", &ms), 0);
  CHECK_EQ_INT((int)ms, 3600000);
  CHECK_EQ_INT(sb_grpc_parse_timeout("1500u", &ms), 0);
  CHECK_EQ_INT((int)ms, 2); /* rounded up */
  CHECK_EQ_INT(sb_grpc_parse_timeout("1n", &ms), 0);
  CHECK_EQ_INT((int)ms, 1);
  CHECK_EQ_INT(sb_grpc_parse_timeout("0m", &ms), 0);
  CHECK_EQ_INT((int)ms, 1); /* already due: at least one tick */
  CHECK_EQ_INT(sb_grpc_parse_timeout("99999999H", &ms), 0);
  CHECK(ms == 99999999ull * 3600000ull);
  CHECK_EQ_INT(sb_grpc_parse_timeout("123456789m", &ms), SB_EINVAL); /* 9 digits */
  CHECK_EQ_INT(sb_grpc_parse_timeout("10", &ms), SB_EINVAL);
  CHECK_EQ_INT(sb_grpc_parse_timeout("10x", &ms), SB_EINVAL);
  CHECK_EQ_INT(sb_grpc_parse_timeout("m", &ms), SB_EINVAL);
  CHECK_EQ_INT(sb_grpc_parse_timeout("", &ms), SB_EINVAL);
  CHECK_EQ_INT(sb_grpc_parse_timeout("1mm", &ms), SB_EINVAL);
  CHECK_EQ_INT(sb_grpc_parse_timeout("-1m", &ms), SB_EINVAL);
}

TEST(message_percent_encoding) {
  sb_buf_t b = {0};
  static const char msg[] = "\t\ntest 100% \xe2\x98\xba";
  CHECK_EQ_INT(sb_grpc_pct_encode(msg, sizeof msg - 1, &b), 0);
  CHECK_EQ_STR((const char *)sb_buf_head(&b), "%09%0Atest 100%25 %E2%98%BA");
  sb_buf_free(&b);
}

TEST(accept_encoding_lists) {
  CHECK(sb_grpc_list_has("identity,deflate,gzip", "gzip"));
  CHECK(sb_grpc_list_has(" GZIP ", "gzip"));
  CHECK(sb_grpc_list_has("identity, gzip ,deflate", "gzip"));
  CHECK(!sb_grpc_list_has("identity,gzipx", "gzip"));
  CHECK(!sb_grpc_list_has("", "gzip"));
  CHECK(!sb_grpc_list_has(NULL, "gzip"));
}
