/*
 * sb_arena: a bump allocator for data that lives exactly as long as one object (a request's
 * headers and strings). Allocation is a pointer bump; everything is freed at once by
 * sb_arena_free(). The first block is embedded in the arena so small requests never call
 * malloc for their strings.
 *
 * Ownership: the arena owns every block; pointers it returns are valid until sb_arena_free()
 * or sb_arena_reset(). Not thread-safe.
 */
#ifndef SB_CORE_ARENA_H
#define SB_CORE_ARENA_H

#include <stddef.h>

#define SB_ARENA_INLINE 1024u /* bytes of the embedded first block */

typedef struct sb_arena_block sb_arena_block_t;

typedef struct sb_arena {
  sb_arena_block_t *blocks; /* heap blocks, newest first; owned */
  char *cur;                /* next free byte of the current block */
  char *end;                /* end of the current block; cur <= end */
  size_t total;             /* bytes handed out since the last reset */
  _Alignas(16) char inline_block[SB_ARENA_INLINE];
} sb_arena_t;

void sb_arena_init(sb_arena_t *a);
/* Returns n bytes aligned to 16, or NULL when out of memory. */
void *sb_arena_alloc(sb_arena_t *a, size_t n);
/* Copies n bytes of s and a NUL into the arena; NULL when out of memory. */
char *sb_arena_strndup(sb_arena_t *a, const char *s, size_t n);
/* Frees every heap block; the arena is empty and reusable afterwards. */
void sb_arena_reset(sb_arena_t *a);
void sb_arena_free(sb_arena_t *a);

#endif
