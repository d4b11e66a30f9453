#include "core/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SB_ARENA_BLOCK 4096u

struct sb_arena_block {
  sb_arena_block_t *next;
  size_t size;
  _Alignas(16) char data[];
};

void sb_arena_init(sb_arena_t *a) {
  a->blocks = NULL;
  a->cur = a->inline_block;
  a->end = a->inline_block + sizeof a->inline_block;
  a->total = 0;
}

void *sb_arena_alloc(sb_arena_t *a, size_t n) {
  size_t need = (n + 15u) & ~(size_t)15u;
  if (need < n) return NULL;
  if ((size_t)(a->end - a->cur) < need) {
    size_t size = need > SB_ARENA_BLOCK ? need : SB_ARENA_BLOCK;
    sb_arena_block_t *b = malloc(sizeof *b + size);
    if (!b) return NULL;
    b->next = a->blocks;
    b->size = size;
    a->blocks = b;
    a->cur = b->data;
    a->end = b->data + size;
  }
  void *p = a->cur;
  a->cur += need;
  a->total += need;
  return p;
}

char *sb_arena_strndup(sb_arena_t *a, const char *s, size_t n) {
  char *p = sb_arena_alloc(a, n + 1);
  if (!p) return NULL;
  if (n) memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

void sb_arena_reset(sb_arena_t *a) {
  sb_arena_block_t *b = a->blocks;
  while (b) {
    sb_arena_block_t *next = b->next;
    free(b);
    b = next;
  }
  sb_arena_init(a);
}

void sb_arena_free(sb_arena_t *a) {
  sb_arena_reset(a);
}
