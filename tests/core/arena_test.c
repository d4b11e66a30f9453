/*
 * Tests of sb_arena (src/core/arena.c): alignment, the embedded first block, heap blocks for
 * larger and oversized requests, strndup, reset and overflow of the size computation.
 */
#include <stdint.h>
#include <string.h>

#include "core/arena.h"
#include "sb_test.h"

static int in_inline(const sb_arena_t *a, const void *p) {
  const char *c = p;
  return c >= a->inline_block && c < a->inline_block + sizeof a->inline_block;
}

TEST(arena_small_allocations_use_inline_block) {
  sb_arena_t a;
  sb_arena_init(&a);
  void *p = sb_arena_alloc(&a, 10);
  void *q = sb_arena_alloc(&a, 1);
  REQUIRE(p && q);
  /* Small requests must not reach malloc: that is the point of the embedded block. */
  CHECK(in_inline(&a, p));
  CHECK(in_inline(&a, q));
  CHECK(a.blocks == NULL);
  CHECK(p != q);
  CHECK_EQ_INT((uintptr_t)p % 16, 0);
  CHECK_EQ_INT((uintptr_t)q % 16, 0);
  /* Sizes are rounded up to the alignment. */
  CHECK_EQ_INT(a.total, 32);
  sb_arena_free(&a);
}

TEST(arena_spills_to_heap_blocks) {
  sb_arena_t a;
  sb_arena_init(&a);
  /* Exhaust the inline block exactly, then one more byte must come from a heap block. */
  void *p = sb_arena_alloc(&a, SB_ARENA_INLINE);
  REQUIRE(p != NULL);
  CHECK(in_inline(&a, p));
  CHECK(a.blocks == NULL);
  char *q = sb_arena_alloc(&a, 1);
  REQUIRE(q != NULL);
  CHECK(!in_inline(&a, q));
  CHECK(a.blocks != NULL);
  CHECK_EQ_INT((uintptr_t)q % 16, 0);
  /* Memory handed out must be writable over its whole size (ASan checks the bounds). */
  memset(p, 0xab, SB_ARENA_INLINE);
  q[0] = 1;
  sb_arena_free(&a);
  CHECK(a.blocks == NULL);
}

TEST(arena_oversized_request_gets_its_own_block) {
  sb_arena_t a;
  sb_arena_init(&a);
  size_t big = 100000;
  char *p = sb_arena_alloc(&a, big);
  REQUIRE(p != NULL);
  memset(p, 'x', big);
  CHECK_EQ_INT((uintptr_t)p % 16, 0);
  /* Many mid-sized allocations: every pointer distinct, aligned and fully usable. */
  char *prev = NULL;
  int ok = 1;
  for (int i = 0; i < 200; i++) {
    char *r = sb_arena_alloc(&a, 100 + (size_t)i);
    if (!r || (uintptr_t)r % 16 || r == prev) ok = 0;
    if (r) memset(r, i, 100 + (size_t)i);
    prev = r;
  }
  CHECK(ok);
  sb_arena_free(&a);
}

TEST(arena_strndup_copies_and_terminates) {
  sb_arena_t a;
  sb_arena_init(&a);
  const char src[] = "content-type: text/plain";
  char *s = sb_arena_strndup(&a, src, 12);
  REQUIRE(s != NULL);
  CHECK_EQ_STR(s, "content-type");
  CHECK(s != src);
  char *e = sb_arena_strndup(&a, NULL, 0);
  REQUIRE(e != NULL);
  CHECK_EQ_STR(e, "");
  /* Bytes after an embedded NUL are copied too: header values are length-delimited. */
  char *n = sb_arena_strndup(&a, "a\0b", 3);
  REQUIRE(n != NULL);
  CHECK_MEM(n, "a\0b\0", 4);
  sb_arena_free(&a);
}

TEST(arena_reset_reuses_inline_block) {
  sb_arena_t a;
  sb_arena_init(&a);
  for (int i = 0; i < 50; i++)
    REQUIRE(sb_arena_alloc(&a, 500) != NULL);
  CHECK(a.blocks != NULL);
  CHECK(a.total >= 25000);
  sb_arena_reset(&a);
  CHECK(a.blocks == NULL);
  CHECK_EQ_INT(a.total, 0);
  void *p = sb_arena_alloc(&a, 8);
  CHECK(p == (void *)a.inline_block);
  sb_arena_free(&a);
}

TEST(arena_size_overflow_fails) {
  sb_arena_t a;
  sb_arena_init(&a);
  /* Rounding SIZE_MAX up to 16 wraps; the arena must notice rather than hand out 0 bytes. */
  CHECK(sb_arena_alloc(&a, SIZE_MAX) == NULL);
  CHECK(sb_arena_alloc(&a, SIZE_MAX - 7) == NULL);
  CHECK_EQ_INT(a.total, 0);
  /* The arena stays usable after a failure. */
  CHECK(sb_arena_alloc(&a, 16) != NULL);
  sb_arena_free(&a);
}
