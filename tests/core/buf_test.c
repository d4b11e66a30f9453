/*
 * Tests of sb_buf (src/core/buf.c): the off <= len <= cap invariant, growth, compaction,
 * consumption and formatted appends on both sides of the 256-byte stack fast path.
 */
#include <string.h>

#include "core/buf.h"
#include "sb_test.h"
#include "switchboard/error.h"

/* Every test ends by checking the layout invariant the header promises. */
static int buf_ok(const sb_buf_t *b) {
  return b->off <= b->len && b->len <= b->cap && (b->cap == 0) == (b->data == NULL);
}

TEST(buf_zero_initialised_is_empty) {
  sb_buf_t b = {0};
  CHECK_EQ_INT(sb_buf_pending(&b), 0);
  CHECK(buf_ok(&b));
  /* Appending nothing must not allocate: connections create many empty buffers. */
  CHECK_EQ_INT(sb_buf_append(&b, "x", 0), 0);
  CHECK(b.data == NULL);
  sb_buf_free(&b);
  CHECK(buf_ok(&b));
}

TEST(buf_append_and_consume) {
  sb_buf_t b = {0};
  CHECK_EQ_INT(sb_buf_append(&b, "hello ", 6), 0);
  CHECK_EQ_INT(sb_buf_append(&b, "world", 5), 0);
  CHECK_EQ_INT(sb_buf_pending(&b), 11);
  CHECK_MEM(sb_buf_head(&b), "hello world", 11);
  sb_buf_consume(&b, 6);
  CHECK_EQ_INT(sb_buf_pending(&b), 5);
  CHECK_MEM(sb_buf_head(&b), "world", 5);
  CHECK(buf_ok(&b));
  /* Consuming everything rewinds to the start so the storage is reused from offset 0. */
  sb_buf_consume(&b, 5);
  CHECK_EQ_INT(b.off, 0);
  CHECK_EQ_INT(b.len, 0);
  CHECK(b.data != NULL);
  sb_buf_free(&b);
  CHECK(b.data == NULL);
  CHECK_EQ_INT(b.cap, 0);
}

TEST(buf_grows_and_keeps_content) {
  sb_buf_t b = {0};
  uint8_t chunk[1000];
  for (size_t i = 0; i < sizeof chunk; i++)
    chunk[i] = (uint8_t)(i * 7);
  for (int i = 0; i < 100; i++)
    REQUIRE(sb_buf_append(&b, chunk, sizeof chunk) == 0);
  CHECK_EQ_INT(sb_buf_pending(&b), 100000);
  CHECK(b.cap >= 100000);
  int same = 1;
  for (int i = 0; i < 100; i++)
    same &= !memcmp(sb_buf_head(&b) + i * 1000, chunk, 1000);
  CHECK(same);
  CHECK(buf_ok(&b));
  sb_buf_free(&b);
}

TEST(buf_reserve_compacts_before_growing) {
  sb_buf_t b = {0};
  REQUIRE(sb_buf_reserve(&b, 100) == 0);
  size_t cap = b.cap;
  uint8_t *data = b.data;
  REQUIRE(cap >= 100);
  /* Fill, consume all but the last three bytes, then ask for room that only the consumed
   * prefix provides: the buffer must slide its content down instead of reallocating. */
  uint8_t fill[512];
  REQUIRE(cap <= sizeof fill && cap >= 3);
  memset(fill, 'a', cap - 3);
  memcpy(fill + cap - 3, "xyz", 3);
  REQUIRE(sb_buf_append(&b, fill, cap) == 0);
  sb_buf_consume(&b, cap - 3);
  CHECK_EQ_INT(sb_buf_reserve(&b, cap - 3), 0);
  CHECK(b.data == data);
  CHECK_EQ_INT(b.cap, cap);
  CHECK_EQ_INT(b.off, 0);
  CHECK_EQ_INT(sb_buf_pending(&b), 3);
  CHECK_MEM(sb_buf_head(&b), "xyz", 3);
  CHECK(buf_ok(&b));
  sb_buf_free(&b);
}

TEST(buf_reserve_growth_keeps_pending_only) {
  sb_buf_t b = {0};
  REQUIRE(sb_buf_append(&b, "0123456789", 10) == 0);
  sb_buf_consume(&b, 4);
  REQUIRE(sb_buf_reserve(&b, 10000) == 0);
  CHECK(b.cap - b.len >= 10000);
  CHECK_EQ_INT(sb_buf_pending(&b), 6);
  CHECK_MEM(sb_buf_head(&b), "456789", 6);
  CHECK(buf_ok(&b));
  sb_buf_free(&b);
}

TEST(buf_reserve_refuses_absurd_sizes) {
  sb_buf_t b = {0};
  REQUIRE(sb_buf_append(&b, "abc", 3) == 0);
  /* A size that cannot be allocated must fail cleanly and leave the buffer as it was. */
  CHECK_EQ_INT(sb_buf_reserve(&b, SIZE_MAX - 1), SB_ENOMEM);
  CHECK_EQ_INT(sb_buf_pending(&b), 3);
  CHECK_MEM(sb_buf_head(&b), "abc", 3);
  sb_buf_free(&b);
}

TEST(buf_appendf_small_and_large) {
  sb_buf_t b = {0};
  CHECK_EQ_INT(sb_buf_appendf(&b, "%s=%d;", "k", 42), 0);
  CHECK_EQ_INT(sb_buf_pending(&b), 5);
  CHECK_MEM(sb_buf_head(&b), "k=42;", 5);
  /* Longer than the 256-byte stack buffer: takes the second, in-place formatting path. */
  char big[1000];
  memset(big, 'q', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  CHECK_EQ_INT(sb_buf_appendf(&b, "[%s]", big), 0);
  CHECK_EQ_INT(sb_buf_pending(&b), 5 + 1 + 999 + 1);
  CHECK_MEM(sb_buf_head(&b), "k=42;[qqq", 9);
  CHECK_EQ_INT(sb_buf_head(&b)[sb_buf_pending(&b) - 1], ']');
  CHECK(buf_ok(&b));
  /* Exactly 255 and 256 characters: the boundary of the fast path. */
  sb_buf_reset(&b);
  CHECK_EQ_INT(sb_buf_appendf(&b, "%.255s", big), 0);
  CHECK_EQ_INT(sb_buf_pending(&b), 255);
  sb_buf_reset(&b);
  CHECK_EQ_INT(sb_buf_appendf(&b, "%.256s", big), 0);
  CHECK_EQ_INT(sb_buf_pending(&b), 256);
  CHECK(buf_ok(&b));
  sb_buf_free(&b);
}

TEST(buf_reset_keeps_storage) {
  sb_buf_t b = {0};
  REQUIRE(sb_buf_append(&b, "abcdef", 6) == 0);
  sb_buf_consume(&b, 2);
  uint8_t *data = b.data;
  size_t cap = b.cap;
  sb_buf_reset(&b);
  CHECK_EQ_INT(sb_buf_pending(&b), 0);
  CHECK(b.data == data);
  CHECK_EQ_INT(b.cap, cap);
  CHECK_EQ_INT(sb_buf_append(&b, "xy", 2), 0);
  CHECK_MEM(sb_buf_head(&b), "xy", 2);
  sb_buf_free(&b);
  /* A freed buffer is reusable. */
  CHECK_EQ_INT(sb_buf_append(&b, "again", 5), 0);
  CHECK_MEM(sb_buf_head(&b), "again", 5);
  sb_buf_free(&b);
}
