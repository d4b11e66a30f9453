/*
 * sb_dedup: the consumer-side helper for at-least-once delivery (broker.h). A fixed-capacity
 * ring of remembered ids in arrival order, indexed by a chained hash; the oldest id is
 * forgotten when the ring is full or its ttl passed.
 */
#include <stdlib.h>
#include <string.h>

#include "core/codec.h"
#include "switchboard/broker.h"
#include "switchboard/error.h"

typedef struct slot {
  char *id;       /* owned; NULL when the slot is free */
  size_t len;     /* bytes at id */
  int64_t at;     /* ms when remembered */
  uint32_t hnext; /* next slot in the chain: index + 1, 0 = end */
} slot_t;

struct sb_dedup {
  slot_t *slots;     /* ring of capacity slots; owned */
  size_t cap;        /* capacity */
  size_t head, n;    /* oldest slot, slots in use */
  uint32_t *buckets; /* chain heads: slot index + 1; owned */
  size_t n_buckets;  /* power of two >= cap */
  int64_t ttl;       /* ms */
};

int sb_dedup_new(size_t capacity, int64_t ttl_ms, sb_dedup_t **out) {
  if (capacity < 1 || capacity > (1u << 30) || ttl_ms < 1) return SB_EINVAL;
  sb_dedup_t *d = calloc(1, sizeof *d);
  if (!d) return SB_ENOMEM;
  d->n_buckets = 16;
  while (d->n_buckets < capacity)
    d->n_buckets *= 2;
  d->slots = calloc(capacity, sizeof *d->slots);
  d->buckets = calloc(d->n_buckets, sizeof *d->buckets);
  if (!d->slots || !d->buckets) {
    sb_dedup_free(d);
    return SB_ENOMEM;
  }
  d->cap = capacity;
  d->ttl = ttl_ms;
  *out = d;
  return 0;
}

static size_t bucket(const sb_dedup_t *d, const char *id, size_t len) {
  return sb_fnv1a(SB_FNV_SEED, id, len) & (d->n_buckets - 1);
}

static void forget_oldest(sb_dedup_t *d) {
  slot_t *s = &d->slots[d->head];
  uint32_t *pp = &d->buckets[bucket(d, s->id, s->len)];
  uint32_t me = (uint32_t)d->head + 1;
  while (*pp != me)
    pp = &d->slots[*pp - 1].hnext;
  *pp = s->hnext;
  free(s->id);
  s->id = NULL;
  d->head = (d->head + 1) % d->cap;
  d->n--;
}

int sb_dedup_check_and_add(sb_dedup_t *d, const char *id, size_t len, int64_t now_ms) {
  if (!id || !len) return SB_EINVAL;
  while (d->n && d->slots[d->head].at + d->ttl <= now_ms)
    forget_oldest(d);
  for (uint32_t i = d->buckets[bucket(d, id, len)]; i; i = d->slots[i - 1].hnext) {
    slot_t *s = &d->slots[i - 1];
    if (s->len == len && memcmp(s->id, id, len) == 0) return 1;
  }
  if (d->n == d->cap) forget_oldest(d);
  char *copy = malloc(len);
  if (!copy) return SB_ENOMEM;
  memcpy(copy, id, len);
  size_t at = (d->head + d->n) % d->cap;
  slot_t *s = &d->slots[at];
  size_t bk = bucket(d, id, len);
  *s = (slot_t){copy, len, now_ms, d->buckets[bk]};
  d->buckets[bk] = (uint32_t)at + 1;
  d->n++;
  return 0;
}

void sb_dedup_free(sb_dedup_t *d) {
  if (!d) return;
  if (d->slots)
    for (size_t i = 0; i < d->cap; i++)
      free(d->slots[i].id);
  free(d->slots);
  free(d->buckets);
  free(d);
}
