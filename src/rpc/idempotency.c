#include "rpc/idempotency.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "switchboard/error.h"

#define IDEM_BUCKETS 4096u /* hash buckets (chained); a power of two */

typedef struct entry {
  struct entry *next_in_bucket;
  struct entry *older, *newer; /* insertion order, for expiry and eviction */
  uint64_t hash;               /* of scope + key */
  uint64_t fingerprint;        /* of the request */
  uint64_t created_ms;
  int status; /* 0 while pending */
  char content_type[64];
  size_t bytes; /* accounted size of this entry */
  size_t body_len;
  uint8_t *body; /* owned */
  char id[];     /* "scope\0key\0" */
} entry_t;

struct sb_idem {
  pthread_mutex_t mu; /* guards everything below */
  entry_t *buckets[IDEM_BUCKETS];
  entry_t *oldest, *newest;
  uint64_t window_ms;
  size_t max_bytes, bytes;
};

int sb__idem_new(uint64_t window_ms, size_t max_bytes, sb_idem_t **out) {
  sb_idem_t *s = calloc(1, sizeof *s);
  if (!s) return SB_ENOMEM;
  pthread_mutex_init(&s->mu, NULL);
  s->window_ms = window_ms ? window_ms : SB_IDEM_DEFAULT_WINDOW_MS;
  s->max_bytes = max_bytes ? max_bytes : SB_IDEM_DEFAULT_MAX_BYTES;
  *out = s;
  return 0;
}

static void unlink_entry(sb_idem_t *s, entry_t *e) {
  entry_t **pp = &s->buckets[e->hash & (IDEM_BUCKETS - 1)];
  while (*pp && *pp != e)
    pp = &(*pp)->next_in_bucket;
  if (*pp) *pp = e->next_in_bucket;
  if (e->older)
    e->older->newer = e->newer;
  else
    s->oldest = e->newer;
  if (e->newer)
    e->newer->older = e->older;
  else
    s->newest = e->older;
  s->bytes -= e->bytes;
  free(e->body);
  free(e);
}

void sb__idem_free(sb_idem_t *s) {
  if (!s) return;
  while (s->oldest)
    unlink_entry(s, s->oldest);
  pthread_mutex_destroy(&s->mu);
  free(s);
}

static uint64_t id_hash(const char *scope, const char *key) {
  uint64_t h = sb_fnv1a(SB_FNV_SEED, scope, strlen(scope) + 1);
  return sb_fnv1a(h, key, strlen(key));
}

static entry_t *find(sb_idem_t *s, uint64_t h, const char *scope, const char *key) {
  size_t sl = strlen(scope);
  for (entry_t *e = s->buckets[h & (IDEM_BUCKETS - 1)]; e; e = e->next_in_bucket)
    if (e->hash == h && strcmp(e->id, scope) == 0 && strcmp(e->id + sl + 1, key) == 0) return e;
  return NULL;
}

/* Drops expired entries, and the oldest completed ones while over budget. */
static void trim(sb_idem_t *s, uint64_t now_ms, size_t need) {
  while (s->oldest && s->oldest->created_ms + s->window_ms <= now_ms)
    unlink_entry(s, s->oldest);
  entry_t *e = s->oldest;
  while (e && s->bytes + need > s->max_bytes) {
    entry_t *next = e->newer;
    if (e->status) unlink_entry(s, e); /* pending entries stay: their request is running */
    e = next;
  }
}

int sb__idem_begin(sb_idem_t *s, const char *scope, const char *key, uint64_t fingerprint,
                   uint64_t now_ms, sb_idem_response_t *out) {
  uint64_t h = id_hash(scope, key);
  pthread_mutex_lock(&s->mu);
  trim(s, now_ms, 0);
  entry_t *e = find(s, h, scope, key);
  int rc;
  if (e) {
    if (e->fingerprint != fingerprint)
      rc = SB_IDEM_MISMATCH;
    else if (!e->status)
      rc = SB_IDEM_PENDING;
    else {
      out->status = e->status;
      memcpy(out->content_type, e->content_type, sizeof out->content_type);
      memset(&out->body, 0, sizeof out->body);
      rc = sb_buf_append(&out->body, e->body, e->body_len) ? SB_ENOMEM : SB_IDEM_REPLAY;
    }
  } else {
    size_t sl = strlen(scope), kl = strlen(key);
    size_t bytes = sizeof *e + sl + kl + 2;
    trim(s, now_ms, bytes);
    e = calloc(1, bytes);
    if (!e) {
      rc = SB_ENOMEM;
    } else {
      memcpy(e->id, scope, sl + 1);
      memcpy(e->id + sl + 1, key, kl + 1);
      e->hash = h;
      e->fingerprint = fingerprint;
      e->created_ms = now_ms;
      e->bytes = bytes;
      e->next_in_bucket = s->buckets[h & (IDEM_BUCKETS - 1)];
      s->buckets[h & (IDEM_BUCKETS - 1)] = e;
      e->older = s->newest;
      if (s->newest)
        s->newest->newer = e;
      else
        s->oldest = e;
      s->newest = e;
      s->bytes += bytes;
      rc = SB_IDEM_NEW;
    }
  }
  pthread_mutex_unlock(&s->mu);
  return rc;
}

void sb__idem_complete(sb_idem_t *s, const char *scope, const char *key, int status,
                       const char *content_type, const void *body, size_t len, uint64_t now_ms) {
  uint64_t h = id_hash(scope, key);
  pthread_mutex_lock(&s->mu);
  entry_t *e = find(s, h, scope, key);
  if (e && !e->status) {
    trim(s, now_ms, len);
    /* A response too large for the whole budget is not kept: the key is forgotten, and a
     * retry runs again rather than replaying something we could not store. */
    uint8_t *copy = len <= s->max_bytes ? malloc(len ? len : 1) : NULL;
    if (!copy) {
      unlink_entry(s, e);
    } else {
      if (len) memcpy(copy, body, len);
      e->body = copy;
      e->body_len = len;
      e->status = status;
      snprintf(e->content_type, sizeof e->content_type, "%s", content_type ? content_type : "");
      e->bytes += len;
      s->bytes += len;
    }
  }
  pthread_mutex_unlock(&s->mu);
}

void sb__idem_abandon(sb_idem_t *s, const char *scope, const char *key) {
  uint64_t h = id_hash(scope, key);
  pthread_mutex_lock(&s->mu);
  entry_t *e = find(s, h, scope, key);
  if (e && !e->status) unlink_entry(s, e);
  pthread_mutex_unlock(&s->mu);
}
