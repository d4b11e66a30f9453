/*
 * The work-queue engine: one queue's RAM index over its journal, and every operation on it.
 * Runs on the broker thread only. Record formats and recovery: broker_int.h.
 *
 * RAM per stored message: one 40-byte sb__qmsg_t, plus 8 bytes in the ready ring while it is
 * visible (standard queues) or in its group's ring (FIFO), plus 16 bytes per timer while it
 * is delayed or leased. Bodies and attributes are read back from the journal on delivery.
 *
 * Invariants:
 * - m[head..len) is sorted by seq; entries are appended in seq order because journal
 *   acknowledgements arrive in offset order and are processed in that order.
 * - n_visible + n_inflight + n_delayed + (DELETING and MOVING entries) == live.
 * - A FIFO group is in the ready ring only while none of its messages is held (INFLIGHT,
 *   DELETING, MOVING) and its first stored message is VISIBLE; the ready ring may also hold
 *   stale entries, which the receive loop skips.
 */
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#include "broker/broker_int.h"
#include "core/codec.h"
#include "switchboard/error.h"
#include "switchboard/log.h"

#define COMPACT_MIN 1024 /* tombstones before the entry vector is compacted */
#define PEEK_MAX 100     /* messages one peek returns */
#define RECEIPT_MAC_SEED 0x5b0a2dull

/* --- small helpers ------------------------------------------------------------------------ */

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return 0;
  size_t nc = *cap ? *cap : 16;
  while (nc < need)
    nc *= 2;
  void *np = realloc(*p, nc * elem);
  if (!np) return SB_ENOMEM;
  *p = np;
  *cap = nc;
  return 0;
}

/* The entry vector lives in its own anonymous mapping, grown with mremap (no copy) and, when
 * a snapshot is loaded, populated up front: first-touch page faults, not reading, dominate
 * loading a large index (about 3 ns per byte on a virtual machine). Capacity is in whole
 * pages. */
#ifdef MADV_POPULATE_WRITE
#define SB_MADV_POPULATE_WRITE MADV_POPULATE_WRITE
#else
#define SB_MADV_POPULATE_WRITE 23 /* Linux 5.14; older kernels answer EINVAL */
#endif

static size_t m_bytes(size_t cap) {
  return cap * sizeof(sb__qmsg_t);
}

static int m_reserve(sb__queue_t *q, size_t need, bool populate) {
  if (need <= q->cap) return 0;
  size_t page = (size_t)sysconf(_SC_PAGESIZE), nc = q->cap ? q->cap : 1;
  while (nc < need)
    nc *= 2;
  if (populate) nc = need; /* populated pages are resident: no room beyond the snapshot */
  size_t bytes = (m_bytes(nc) + page - 1) / page * page;
  void *p = q->m ? mremap(q->m, m_bytes(q->cap), bytes, MREMAP_MAYMOVE)
                 : mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return SB_ENOMEM;
  /* Large vectors ask for transparent huge pages (512 times fewer faults where the system
   * has them); a snapshot load populates the whole vector in one call. Both are hints: on
   * kernels without them the pages fault in as they are written. */
  if (bytes >= (2u << 20)) madvise(p, bytes, MADV_HUGEPAGE);
  if (populate) madvise(p, bytes, SB_MADV_POPULATE_WRITE);
  q->m = p;
  q->cap = bytes / sizeof(sb__qmsg_t);
  return 0;
}

static void m_free(sb__queue_t *q) {
  if (q->m) munmap(q->m, m_bytes(q->cap));
  q->m = NULL;
  q->cap = 0;
}

/* A random UUID (version 4) in text form. The generator is a xorshift seeded once from the
 * kernel: ids must be unique, not unpredictable. */
void sb__make_id(char out[SB_BROKER_ID_LEN + 1]) {
  static _Thread_local uint64_t s;
  if (!s) {
    if (getrandom(&s, sizeof s, 0) != (ssize_t)sizeof s || !s) s = (uint64_t)sb__now_ms() | 1;
  }
  uint8_t r[16];
  for (int i = 0; i < 2; i++) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    sb__put_le(r + 8 * i, s * 0x2545f4914f6cdd1dull, 8);
  }
  r[6] = (uint8_t)((r[6] & 0x0f) | 0x40);
  r[8] = (uint8_t)((r[8] & 0x3f) | 0x80);
  static const char hx[] = "0123456789abcdef";
  size_t o = 0;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[o++] = '-';
    out[o++] = hx[r[i] >> 4];
    out[o++] = hx[r[i] & 15];
  }
  out[o] = 0;
}

static uint64_t receipt_mac(uint64_t qid, uint64_t seq, uint32_t count) {
  uint8_t b[20];
  sb__put_le(b, qid, 8);
  sb__put_le(b + 8, seq, 8);
  sb__put_le(b + 16, count, 4);
  return sb_fnv1a(SB_FNV_SEED ^ RECEIPT_MAC_SEED, b, sizeof b);
}

static void make_receipt(char out[SB_BROKER_RECEIPT_LEN + 1], uint64_t qid, uint64_t seq,
                         uint32_t count) {
  snprintf(out, SB_BROKER_RECEIPT_LEN + 1, "%016" PRIx64 "%016" PRIx64 "%08" PRIx32 "%016" PRIx64,
           qid, seq, count, receipt_mac(qid, seq, count));
}

int sb_broker_parse_receipt(const char *s, uint64_t *queue_id, uint64_t *seq, uint32_t *count) {
  if (!s || strlen(s) != SB_BROKER_RECEIPT_LEN) return SB_EINVAL;
  uint64_t v[4];
  static const int w[4] = {16, 16, 8, 16};
  const char *p = s;
  for (int k = 0; k < 4; k++) {
    v[k] = 0;
    for (int i = 0; i < w[k]; i++, p++) {
      int c = (unsigned char)*p, d;
      if (c >= '0' && c <= '9')
        d = c - '0';
      else if (c >= 'a' && c <= 'f')
        d = c - 'a' + 10;
      else
        return SB_EINVAL;
      v[k] = v[k] << 4 | (uint64_t)d;
    }
  }
  if (receipt_mac(v[0], v[1], (uint32_t)v[2]) != v[3]) return SB_EINVAL;
  *queue_id = v[0];
  *seq = v[1];
  *count = (uint32_t)v[2];
  return 0;
}

/* --- entries ------------------------------------------------------------------------------ */

sb__qmsg_t *sb__queue_entry(sb__queue_t *q, uint64_t seq) {
  size_t lo = q->head, hi = q->len;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (q->m[mid].seq < seq)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo < q->len && q->m[lo].seq == seq && q->m[lo].state != SB__M_GONE) return &q->m[lo];
  return NULL;
}

static size_t lower_bound(const sb__queue_t *q, uint64_t seq) {
  size_t lo = q->head, hi = q->len;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (q->m[mid].seq < seq)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* first_recv packs the first receive into 32 bits relative to sent_ms: 0 = never, below
 * 2^31 the delay in ms + 1 (up to 24.8 days), above it 2^31 + the delay in seconds. */
static void set_first_recv(sb__qmsg_t *e, int64_t at_ms) {
  int64_t d = at_ms > e->sent_ms ? at_ms - e->sent_ms : 0;
  if (d + 1 < (INT64_C(1) << 31))
    e->first_recv = (uint32_t)(d + 1);
  else
    e->first_recv = (uint32_t)((INT64_C(1) << 31) + (d / 1000 < INT32_MAX ? d / 1000 : INT32_MAX));
}

static int64_t first_recv_ms(const sb__qmsg_t *e) {
  if (!e->first_recv) return 0;
  if (e->first_recv < (UINT32_C(1) << 31)) return e->sent_ms + e->first_recv - 1;
  return e->sent_ms + (int64_t)(e->first_recv - (UINT32_C(1) << 31)) * 1000;
}

static bool held(uint8_t st) {
  return st == SB__M_INFLIGHT || st == SB__M_DELETING || st == SB__M_MOVING;
}

static sb__qgroup_t *group_of(sb__queue_t *q, const sb__qmsg_t *e) {
  return e->group ? &q->groups[e->group - 1] : NULL;
}

static int ready_push(sb__queue_t *q, uint64_t v) {
  if (q->ready_n == q->ready_cap) {
    size_t nc = q->ready_cap ? q->ready_cap * 2 : 64;
    uint64_t *nr = malloc(nc * sizeof *nr);
    if (!nr) return SB_ENOMEM;
    for (size_t i = 0; i < q->ready_n; i++)
      nr[i] = q->ready[(q->ready_head + i) & (q->ready_cap - 1)];
    free(q->ready);
    q->ready = nr;
    q->ready_head = 0;
    q->ready_cap = nc;
  }
  q->ready[(q->ready_head + q->ready_n) & (q->ready_cap - 1)] = v;
  q->ready_n++;
  return 0;
}

static bool ready_pop(sb__queue_t *q, uint64_t *v) {
  if (!q->ready_n) return false;
  *v = q->ready[q->ready_head];
  q->ready_head = (q->ready_head + 1) & (q->ready_cap - 1);
  q->ready_n--;
  return true;
}

/* Drops deleted messages from the front of g's ring, then queues g when it can deliver. */
static void group_check(sb__queue_t *q, sb__qgroup_t *g) {
  while (g->n) {
    sb__qmsg_t *e = sb__queue_entry(q, g->seqs[g->head]);
    if (e) break;
    g->head = (g->head + 1) & (g->cap - 1);
    g->n--;
  }
  if (g->in_ready || g->inflight || !g->n) return;
  sb__qmsg_t *e = sb__queue_entry(q, g->seqs[g->head]);
  if (e && e->state == SB__M_VISIBLE && ready_push(q, (uint64_t)(g - q->groups)) == 0)
    g->in_ready = true;
}

static void timer_push_heap(sb__qtimer_t *h, size_t *n, sb__qtimer_t t) {
  size_t i = (*n)++;
  while (i) {
    size_t p = (i - 1) / 2;
    if (h[p].when <= t.when) break;
    h[i] = h[p];
    i = p;
  }
  h[i] = t;
}

static sb__qtimer_t timer_pop_heap(sb__qtimer_t *h, size_t *n) {
  sb__qtimer_t top = h[0], last = h[--(*n)];
  size_t i = 0;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= *n) break;
    if (c + 1 < *n && h[c + 1].when < h[c].when) c++;
    if (h[c].when >= last.when) break;
    h[i] = h[c];
    i = c;
  }
  if (*n) h[i] = last;
  return top;
}

static int timer_add(sb_broker_t *b, sb__queue_t *q, int64_t when, uint64_t seq) {
  if (grow((void **)&q->timers, &q->timers_cap, q->n_timers + 1, sizeof *q->timers))
    return SB_ENOMEM;
  timer_push_heap(q->timers, &q->n_timers, (sb__qtimer_t){when, seq});
  sb__queue_schedule(b, q, when);
  return 0;
}

/* Moves e to state st, keeping the depth counters and its group's hold count right. */
static void set_state(sb__queue_t *q, sb__qmsg_t *e, uint8_t st) {
  uint8_t old = e->state;
  if (old == st) return;
  if (old == SB__M_VISIBLE)
    q->n_visible--;
  else if (old == SB__M_INFLIGHT)
    q->n_inflight--;
  else if (old == SB__M_DELAYED)
    q->n_delayed--;
  if (st == SB__M_VISIBLE)
    q->n_visible++;
  else if (st == SB__M_INFLIGHT)
    q->n_inflight++;
  else if (st == SB__M_DELAYED)
    q->n_delayed++;
  sb__qgroup_t *g = group_of(q, e);
  if (g) {
    if (held(old) && !held(st)) g->inflight--;
    if (!held(old) && held(st)) g->inflight++;
  }
  if (st == SB__M_GONE) q->live--;
  e->state = st;
}

static void make_visible(sb__queue_t *q, sb__qmsg_t *e) {
  set_state(q, e, SB__M_VISIBLE);
  sb__qgroup_t *g = group_of(q, e);
  if (g) {
    group_check(q, g);
  } else if (!e->in_ready && ready_push(q, e->seq) == 0) {
    e->in_ready = 1;
  }
}

static void compact(sb__queue_t *q) {
  size_t w = 0;
  for (size_t i = q->head; i < q->len; i++)
    if (q->m[i].state != SB__M_GONE) q->m[w++] = q->m[i];
  q->head = 0;
  q->len = w;
}

/* Marks e deleted and reclaims space at the front of the vector. */
static void remove_entry(sb__queue_t *q, sb__qmsg_t *e) {
  sb__qgroup_t *g = group_of(q, e);
  set_state(q, e, SB__M_GONE);
  while (q->head < q->len && q->m[q->head].state == SB__M_GONE)
    q->head++;
  if (q->head == q->len) q->head = q->len = 0;
  size_t tomb = q->len - q->head - (size_t)q->live;
  if (tomb > COMPACT_MIN && tomb > q->live) compact(q);
  if (g) group_check(q, g);
}

static uint32_t group_hash(const char *s) {
  return (uint32_t)sb_fnv1a(SB_FNV_SEED, s, strlen(s));
}

/* Finds or creates the group named id; returns its index + 1, or 0 when out of memory. */
static uint32_t group_get(sb__queue_t *q, const char *id) {
  if (q->group_hash_cap) {
    for (uint32_t gi = q->group_hash[group_hash(id) & (q->group_hash_cap - 1)]; gi;
         gi = q->groups[gi - 1].hnext)
      if (strcmp(q->groups[gi - 1].id, id) == 0) return gi;
  }
  if (grow((void **)&q->groups, &q->groups_cap, q->n_groups + 1, sizeof *q->groups)) return 0;
  if (q->n_groups + 1 > q->group_hash_cap) {
    size_t nc = q->group_hash_cap ? q->group_hash_cap * 2 : 64;
    uint32_t *nh = calloc(nc, sizeof *nh);
    if (!nh) return 0;
    for (size_t i = 0; i < q->n_groups; i++) {
      uint32_t h = group_hash(q->groups[i].id) & (uint32_t)(nc - 1);
      q->groups[i].hnext = nh[h];
      nh[h] = (uint32_t)(i + 1);
    }
    free(q->group_hash);
    q->group_hash = nh;
    q->group_hash_cap = nc;
  }
  char *dup = strdup(id);
  if (!dup) return 0;
  sb__qgroup_t *g = &q->groups[q->n_groups];
  memset(g, 0, sizeof *g);
  g->id = dup;
  uint32_t h = group_hash(id) & (uint32_t)(q->group_hash_cap - 1);
  g->hnext = q->group_hash[h];
  q->group_hash[h] = (uint32_t)(++q->n_groups);
  return (uint32_t)q->n_groups;
}

static int group_push(sb__qgroup_t *g, uint64_t seq) {
  if (g->n == g->cap) {
    size_t nc = g->cap ? g->cap * 2 : 8;
    uint64_t *ns = malloc(nc * sizeof *ns);
    if (!ns) return SB_ENOMEM;
    for (size_t i = 0; i < g->n; i++)
      ns[i] = g->seqs[(g->head + i) & (g->cap - 1)];
    free(g->seqs);
    g->seqs = ns;
    g->head = 0;
    g->cap = nc;
  }
  g->seqs[(g->head + g->n) & (g->cap - 1)] = seq;
  g->n++;
  return 0;
}

/* --- deduplication window (FIFO) ---------------------------------------------------------- */

static void dedup_expire(sb__queue_t *q, int64_t now) {
  while (q->dd_first && q->dd_first->expires <= now) {
    sb__qdedup_t *d = q->dd_first;
    sb__qdedup_t **pp = &q->dd_buckets[group_hash(d->key) & (q->dd_cap - 1)];
    while (*pp != d)
      pp = &(*pp)->hnext;
    *pp = d->hnext;
    q->dd_first = d->next;
    if (!q->dd_first) q->dd_last = NULL;
    q->dd_n--;
    free(d);
  }
}

static sb__qdedup_t *dedup_find(sb__queue_t *q, const char *key, int64_t now) {
  if (!q->dd_cap) return NULL;
  for (sb__qdedup_t *d = q->dd_buckets[group_hash(key) & (q->dd_cap - 1)]; d; d = d->hnext)
    if (d->expires > now && strcmp(d->key, key) == 0) return d;
  return NULL;
}

static sb__qdedup_t *dedup_add(sb__queue_t *q, const char *key, int64_t expires, const char *id,
                               uint64_t seq) {
  if (q->dd_n + 1 > q->dd_cap) {
    size_t nc = q->dd_cap ? q->dd_cap * 2 : 64;
    sb__qdedup_t **nb = calloc(nc, sizeof *nb);
    if (!nb) return NULL;
    for (sb__qdedup_t *d = q->dd_first; d; d = d->next) {
      size_t h = group_hash(d->key) & (nc - 1);
      d->hnext = nb[h];
      nb[h] = d;
    }
    free(q->dd_buckets);
    q->dd_buckets = nb;
    q->dd_cap = nc;
  }
  size_t kl = strlen(key);
  sb__qdedup_t *d = malloc(sizeof *d + kl + 1);
  if (!d) return NULL;
  memcpy(d->key, key, kl + 1);
  d->expires = expires;
  d->seq = seq;
  memcpy(d->id, id, SB_BROKER_ID_LEN + 1);
  size_t h = group_hash(key) & (q->dd_cap - 1);
  d->hnext = q->dd_buckets[h];
  q->dd_buckets[h] = d;
  d->next = NULL;
  if (q->dd_last)
    q->dd_last->next = d;
  else
    q->dd_first = d;
  q->dd_last = d;
  q->dd_n++;
  return d;
}

/* --- inserting a stored message ------------------------------------------------------------ */

/* Indexes a message stored at seq. visible_at > now makes it DELAYED. group may be NULL. */
static int insert(sb_broker_t *b, sb__queue_t *q, uint64_t seq, int64_t sent_ms, int64_t visible_at,
                  const char *group, int64_t now) {
  if (q->len == q->cap && q->head > 0 && q->head >= q->len / 2) compact(q);
  if (m_reserve(q, q->len + 1, false)) return SB_ENOMEM;
  uint32_t gi = 0;
  if (q->cfg.fifo) {
    gi = group_get(q, group && *group ? group : "");
    if (!gi || group_push(&q->groups[gi - 1], seq)) return SB_ENOMEM;
  }
  if (sent_ms < q->newest_sent_ms) {
    if (grow((void **)&q->old, &q->old_cap, q->n_old + 1, sizeof *q->old)) return SB_ENOMEM;
    timer_push_heap(q->old, &q->n_old, (sb__qtimer_t){sent_ms, seq});
  } else {
    q->newest_sent_ms = sent_ms;
  }
  sb__qmsg_t *e = &q->m[q->len++];
  memset(e, 0, sizeof *e);
  e->seq = seq;
  e->sent_ms = sent_ms;
  e->group = gi;
  e->state = SB__M_GONE; /* set_state below counts it */
  q->live++;
  if (visible_at > now) {
    set_state(q, e, SB__M_DELAYED);
    e->visible_at = visible_at;
    timer_add(b, q, visible_at, seq);
  } else {
    make_visible(q, e);
  }
  return 0;
}

/* --- record encoding ---------------------------------------------------------------------- */

static bool hname_is(const uint8_t *n, uint16_t nl, const char *s) {
  return nl == strlen(s) && memcmp(n, s, nl) == 0;
}

static int64_t parse_num(const uint8_t *v, uint32_t vl) {
  int64_t x = 0;
  bool neg = vl && v[0] == '-';
  for (uint32_t i = neg; i < vl && i < 20; i++) {
    if (v[i] < '0' || v[i] > '9') break;
    x = x * 10 + (v[i] - '0');
  }
  return neg ? -x : x;
}

/* System fields of a stored message, borrowed from the record. */
typedef struct sysf {
  const uint8_t *group, *dedup, *trace, *dlq_source;
  uint32_t group_len, dedup_len, trace_len, dlq_source_len;
  int64_t delay_ms, dlq_count, dlq_first, dlq_last;
} sysf_t;

static void read_sys(const sb_journal_record_t *r, sysf_t *s) {
  memset(s, 0, sizeof *s);
  uint32_t pos = 0;
  const uint8_t *n, *v;
  uint16_t nl;
  uint32_t vl;
  while (sb_journal_header_next(r, &pos, &n, &nl, &v, &vl)) {
    if (!nl || n[0] != ':') continue;
    if (hname_is(n, nl, ":g"))
      s->group = v, s->group_len = vl;
    else if (hname_is(n, nl, ":d"))
      s->dedup = v, s->dedup_len = vl;
    else if (hname_is(n, nl, ":t"))
      s->trace = v, s->trace_len = vl;
    else if (hname_is(n, nl, ":v"))
      s->delay_ms = parse_num(v, vl);
    else if (hname_is(n, nl, ":ds"))
      s->dlq_source = v, s->dlq_source_len = vl;
    else if (hname_is(n, nl, ":dc"))
      s->dlq_count = parse_num(v, vl);
    else if (hname_is(n, nl, ":df"))
      s->dlq_first = parse_num(v, vl);
    else if (hname_is(n, nl, ":dl"))
      s->dlq_last = parse_num(v, vl);
  }
}

static char *arena_str(sb_arena_t *a, const uint8_t *p, size_t n) {
  return p ? sb_arena_strndup(a, (const char *)p, n) : NULL;
}

/* Fills d from record r, copying everything into a (the reader's buffer is reused). */
static int fill_delivery(sb_arena_t *a, const sb_journal_record_t *r, sb_broker_delivery_t *d) {
  memset(d, 0, sizeof *d);
  if (r->key_len != 1 + SB_BROKER_ID_LEN) return SB_ECORRUPT;
  memcpy(d->id, r->key + 1, SB_BROKER_ID_LEN);
  d->seq = r->offset;
  d->sent_ms = r->timestamp_ms;
  uint8_t *body = sb_arena_alloc(a, r->value_len ? r->value_len : 1);
  if (!body) return SB_ENOMEM;
  if (r->value_len) memcpy(body, r->value, r->value_len);
  d->body = body;
  d->body_len = r->value_len;
  int rc = sb__read_attrs(a, r, &d->attrs, &d->n_attrs);
  if (rc) return rc;
  sysf_t s;
  read_sys(r, &s);
  d->group = arena_str(a, s.group, s.group_len);
  d->dedup = arena_str(a, s.dedup, s.dedup_len);
  d->trace = arena_str(a, s.trace, s.trace_len);
  d->dlq_source = arena_str(a, s.dlq_source, s.dlq_source_len);
  d->dlq_receive_count = (uint32_t)s.dlq_count;
  d->dlq_first_receive_ms = s.dlq_first;
  d->dlq_last_receive_ms = s.dlq_last;
  return 0;
}

int sb__queue_read(sb__queue_t *q, uint64_t seq, sb_journal_record_t *rec) {
  sb_journal_reader_seek(q->rd, seq);
  int rc = sb_journal_reader_next(q->rd, rec);
  if (rc == SB_EAGAIN) return SB_ENOTFOUND;
  if (rc) return rc;
  return rec->offset == seq ? 0 : SB_ENOTFOUND;
}

static void index_free(sb__queue_t *q);

/* --- index snapshots (broker_int.h, "Index snapshots") ----------------------------------- */

#define SNAP_MAGIC "SBQSNAP1"
#define SNAP_HDR 48

/* The snapshot's checksum: four independent multiply-rotate lanes over 8-byte words, folded
 * with the length at the end. Not cryptographic; it catches torn and damaged files at memory
 * speed, where a CRC (one dependency chain) took longer than reading the file. Streaming:
 * the bytes may come in pieces of any size. */
typedef struct snap_sum {
  uint64_t lane[4];
  uint8_t buf[32]; /* a partial block */
  size_t buf_n;
  uint64_t len;
} snap_sum_t;

static uint64_t sum_mix(uint64_t h, uint64_t v) {
  h ^= v * UINT64_C(0x9E3779B97F4A7C15);
  h = h << 31 | h >> 33;
  return h * UINT64_C(0xC2B2AE3D27D4EB4F);
}

static void sum_init(snap_sum_t *s) {
  memset(s, 0, sizeof *s);
  for (int i = 0; i < 4; i++)
    s->lane[i] = UINT64_C(0x5B0A2D) + (uint64_t)i;
}

/* Words are read in host order (the file is host-layout anyway, see broker_int.h). */
static void sum_block(snap_sum_t *s, const uint8_t *p) {
  uint64_t w[4];
  memcpy(w, p, sizeof w);
  for (int i = 0; i < 4; i++)
    s->lane[i] = sum_mix(s->lane[i], w[i]);
}

static void sum_add(snap_sum_t *s, const void *data, size_t n) {
  const uint8_t *p = data;
  s->len += n;
  if (s->buf_n) {
    size_t take = 32 - s->buf_n < n ? 32 - s->buf_n : n;
    memcpy(s->buf + s->buf_n, p, take);
    s->buf_n += take;
    p += take;
    n -= take;
    if (s->buf_n < 32) return;
    sum_block(s, s->buf);
    s->buf_n = 0;
  }
  for (; n >= 32; p += 32, n -= 32)
    sum_block(s, p);
  memcpy(s->buf, p, n);
  s->buf_n = n;
}

static uint64_t sum_final(snap_sum_t *s) {
  if (s->buf_n) {
    memset(s->buf + s->buf_n, 0, 32 - s->buf_n);
    sum_block(s, s->buf);
  }
  uint64_t h = s->len;
  for (int i = 0; i < 4; i++)
    h = sum_mix(h, s->lane[i]);
  return h;
}

typedef struct snap_w {
  FILE *f;
  snap_sum_t sum;
  bool err;
} snap_w_t;

static void snap_put(snap_w_t *w, const void *p, size_t n) {
  if (w->err || !n) return;
  sum_add(&w->sum, p, n);
  if (fwrite(p, 1, n, w->f) != n) w->err = true;
}

static void snap_path(sb_broker_t *b, const sb__queue_t *q, char *out, size_t cap, bool tmp) {
  snprintf(out, cap, "%s/q-%020" PRIu64 "/index.snap%s", b->dir, q->id, tmp ? ".tmp" : "");
}

void sb__queue_snapshot(sb_broker_t *b, sb__queue_t *q) {
  char path[SB__BROKER_PATH_CAP], tmp[SB__BROKER_PATH_CAP];
  snap_path(b, q, path, sizeof path, false);
  snap_path(b, q, tmp, sizeof tmp, true);
  FILE *f = fopen(tmp, "wb");
  if (!f) return;
  setvbuf(f, NULL, _IOFBF, 1u << 20);
  uint8_t hdr[SNAP_HDR];
  memset(hdr, 0, sizeof hdr);
  snap_w_t w = {.f = f, .err = fwrite(hdr, 1, sizeof hdr, f) != sizeof hdr};
  sum_init(&w.sum);
  /* Live entries, written as they will be loaded (held ones visible again, in_ready set for
   * what goes into the ready ring), so loading them needs no pass that rewrites them. */
  uint64_t n = 0;
  sb__qmsg_t chunk[256];
  size_t k = 0;
  for (size_t i = q->head; i < q->len; i++) {
    if (q->m[i].state == SB__M_GONE) continue;
    sb__qmsg_t e = q->m[i];
    if (e.state != SB__M_DELAYED) e.state = SB__M_VISIBLE;
    e.in_ready = e.state == SB__M_VISIBLE && !e.group;
    chunk[k++] = e;
    n++;
    if (k == sizeof chunk / sizeof *chunk) {
      snap_put(&w, chunk, sizeof chunk);
      k = 0;
    }
  }
  snap_put(&w, chunk, k * sizeof *chunk);
  uint8_t u[8];
  for (size_t g = 0; g < q->n_groups; g++) {
    size_t l = strlen(q->groups[g].id);
    u[0] = (uint8_t)l, u[1] = (uint8_t)(l >> 8);
    snap_put(&w, u, 2);
    snap_put(&w, q->groups[g].id, l);
  }
  uint32_t n_dd = 0;
  for (sb__qdedup_t *d = q->dd_first; d; d = d->next) {
    if (d->expires <= 1) continue; /* void: its send failed */
    size_t l = strlen(d->key);
    u[0] = (uint8_t)l, u[1] = (uint8_t)(l >> 8);
    snap_put(&w, u, 2);
    snap_put(&w, d->key, l);
    sb__put_le(u, (uint64_t)d->expires, 8);
    snap_put(&w, u, 8);
    sb__put_le(u, d->seq, 8);
    snap_put(&w, u, 8);
    snap_put(&w, d->id, SB_BROKER_ID_LEN);
    n_dd++;
  }
  memcpy(hdr, SNAP_MAGIC, 8);
  sb__put_le(hdr + 8, (uint32_t)sizeof *q->m, 4);
  sb__put_le(hdr + 12, q->cfg.fifo ? 1u : 0u, 4);
  sb__put_le(hdr + 16, q->applied, 8);
  sb__put_le(hdr + 24, n, 8);
  sb__put_le(hdr + 32, (uint32_t)q->n_groups, 4);
  sb__put_le(hdr + 36, n_dd, 4);
  sb__put_le(hdr + 40, sum_final(&w.sum), 8);
  if (!w.err && (fseek(f, 0, SEEK_SET) || fwrite(hdr, 1, sizeof hdr, f) != sizeof hdr))
    w.err = true;
  if (fclose(f) || w.err || rename(tmp, path)) unlink(tmp);
}

/* Reads exactly n bytes at the file position; false on a short read. */
static bool read_full(FILE *f, void *p, size_t n) {
  return n == 0 || fread(p, 1, n, f) == n;
}

/* A snapshot's contents after validation, before any of it touches the queue. */
typedef struct snap {
  uint64_t applied, n;
  uint32_t n_groups, n_dd;
  uint8_t *rest; /* groups and dedup entries; malloc'ed */
  size_t rest_len;
} snap_t;

/* Reads and checks q's snapshot against the journal's bounds: the entries go straight into
 * q's (empty) entry vector, the rest into s. Returns true when it is usable; otherwise q is
 * left empty. */
static bool snap_read(sb_broker_t *b, sb__queue_t *q, uint64_t next, snap_t *s) {
  char path[SB__BROKER_PATH_CAP];
  snap_path(b, q, path, sizeof path, false);
  memset(s, 0, sizeof *s);
  FILE *f = fopen(path, "rb");
  if (!f) return false;
  uint8_t hdr[SNAP_HDR];
  bool ok = false;
  long size = -1;
  if (!fseek(f, 0, SEEK_END)) size = ftell(f);
  if (size < SNAP_HDR || fseek(f, 0, SEEK_SET) || !read_full(f, hdr, sizeof hdr)) goto out;
  s->applied = sb__get_le(hdr + 16, 8);
  s->n = sb__get_le(hdr + 24, 8);
  s->n_groups = (uint32_t)sb__get_le(hdr + 32, 4);
  s->n_dd = (uint32_t)sb__get_le(hdr + 36, 4);
  if (memcmp(hdr, SNAP_MAGIC, 8) || (uint32_t)sb__get_le(hdr + 8, 4) != sizeof *q->m ||
      (uint32_t)sb__get_le(hdr + 12, 4) != (q->cfg.fifo ? 1u : 0u) || s->applied > next ||
      s->n > (uint64_t)(size - SNAP_HDR) / sizeof *q->m || (!q->cfg.fifo && s->n_groups))
    goto out;
  s->rest_len = (size_t)(size - SNAP_HDR) - s->n * sizeof *q->m;
  s->rest = malloc(s->rest_len ? s->rest_len : 1);
  if (!s->rest || m_reserve(q, s->n ? s->n : 1, true) || !read_full(f, q->m, s->n * sizeof *q->m) ||
      !read_full(f, s->rest, s->rest_len))
    goto out;
  snap_sum_t sum;
  sum_init(&sum);
  sum_add(&sum, q->m, s->n * sizeof *q->m);
  sum_add(&sum, s->rest, s->rest_len);
  if (sum_final(&sum) != sb__get_le(hdr + 40, 8)) goto out;
  ok = true; /* entries are checked as snap_load walks them */
out:
  fclose(f);
  if (!ok) {
    free(s->rest);
    m_free(q);
    memset(s, 0, sizeof *s);
    sb_log(SB_LOG_WARN, "queue_snapshot_ignored", "queue=%s", q->name);
  }
  return ok;
}

/* Builds q's empty index from s (consumed). Every entry comes back visible, or delayed if
 * its delay is still ahead; entries below the journal's first offset are gone. */
static int snap_load(sb_broker_t *b, sb__queue_t *q, snap_t *s, uint64_t first, int64_t now) {
  int rc = 0;
  size_t pos = 0;
  for (uint32_t g = 0; g < s->n_groups && !rc; g++) {
    char id[SB_BROKER_GROUP_MAX + 1];
    size_t l = pos + 2 <= s->rest_len ? (size_t)(s->rest[pos] | s->rest[pos + 1] << 8) : SIZE_MAX;
    if (l > SB_BROKER_GROUP_MAX || pos + 2 + l > s->rest_len) {
      rc = SB_ECORRUPT;
      break;
    }
    memcpy(id, s->rest + pos + 2, l);
    id[l] = 0;
    pos += 2 + l;
    if (group_get(q, id) != g + 1) rc = SB_ECORRUPT; /* a duplicate name, or no memory */
  }
  /* Entries below the journal's first offset (a prefix: they are sorted) are gone. */
  size_t h = 0;
  while (h < s->n && q->m[h].seq < first)
    h++;
  q->head = h;
  q->len = s->n;
  if (!rc && s->n > h && !q->cfg.fifo) { /* room for every entry: untouched pages cost nothing */
    size_t cap = 64;
    while (cap < s->n - h)
      cap *= 2;
    if (!(q->ready = malloc(cap * sizeof *q->ready))) rc = SB_ENOMEM;
    q->ready_cap = cap;
  }
  /* One pass: check each entry, count it, and index it (ready ring, group ring or timer). */
  uint64_t prev = 0;
  for (size_t i = h; i < s->n && !rc; i++) {
    sb__qmsg_t *e = &q->m[i];
    if (e->seq >= s->applied || (i > h && e->seq <= prev) || e->group > s->n_groups ||
        (e->state != SB__M_VISIBLE && e->state != SB__M_DELAYED) ||
        e->in_ready != (e->state == SB__M_VISIBLE && !e->group)) {
      rc = SB_ECORRUPT;
      break;
    }
    prev = e->seq;
    if (e->state == SB__M_DELAYED && e->visible_at <= now) {
      e->state = SB__M_VISIBLE; /* its delay ended while the broker was down */
      e->in_ready = !e->group;
    }
    q->live++;
    if (e->sent_ms >= q->newest_sent_ms) {
      q->newest_sent_ms = e->sent_ms;
    } else if (!grow((void **)&q->old, &q->old_cap, q->n_old + 1, sizeof *q->old)) {
      timer_push_heap(q->old, &q->n_old, (sb__qtimer_t){e->sent_ms, e->seq});
    } else {
      rc = SB_ENOMEM;
    }
    if (e->state == SB__M_DELAYED) {
      q->n_delayed++;
      if (!rc) rc = timer_add(b, q, e->visible_at, e->seq);
    } else {
      q->n_visible++;
      if (e->group)
        rc = rc ? rc : group_push(&q->groups[e->group - 1], e->seq);
      else
        q->ready[q->ready_n++] = e->seq;
    }
  }
  for (size_t g = 0; g < q->n_groups && !rc; g++)
    group_check(q, &q->groups[g]);
  for (uint32_t d = 0; d < s->n_dd && !rc; d++) {
    char key[SB_BROKER_GROUP_MAX + 1], id[SB_BROKER_ID_LEN + 1];
    size_t l = pos + 2 <= s->rest_len ? (size_t)(s->rest[pos] | s->rest[pos + 1] << 8) : SIZE_MAX;
    if (l > SB_BROKER_GROUP_MAX || pos + 2 + l + 16 + SB_BROKER_ID_LEN > s->rest_len) {
      rc = SB_ECORRUPT;
      break;
    }
    memcpy(key, s->rest + pos + 2, l);
    key[l] = 0;
    pos += 2 + l;
    int64_t expires = (int64_t)sb__get_le(s->rest + pos, 8);
    uint64_t seq = sb__get_le(s->rest + pos + 8, 8);
    memcpy(id, s->rest + pos + 16, SB_BROKER_ID_LEN);
    id[SB_BROKER_ID_LEN] = 0;
    pos += 16 + SB_BROKER_ID_LEN;
    if (expires > now && !dedup_add(q, key, expires, id, seq)) rc = SB_ENOMEM;
  }
  free(s->rest);
  s->rest = NULL;
  return rc;
}

/* --- open, replay, close ------------------------------------------------------------------ */

static void replay_record(sb_broker_t *b, sb__queue_t *q, const sb_journal_record_t *r,
                          int64_t now) {
  if (!r->key_len) return;
  uint8_t kind = r->key[0];
  if (kind == 'm' && r->key_len == 1 + SB_BROKER_ID_LEN) {
    sysf_t s;
    read_sys(r, &s);
    char group[SB_BROKER_GROUP_MAX + 1] = "";
    if (s.group && s.group_len <= SB_BROKER_GROUP_MAX) {
      memcpy(group, s.group, s.group_len);
      group[s.group_len] = 0;
    }
    if (insert(b, q, r->offset, r->timestamp_ms, r->timestamp_ms + s.delay_ms, group, now)) return;
    if (q->cfg.fifo && s.dedup && s.dedup_len <= SB_BROKER_GROUP_MAX &&
        r->timestamp_ms + SB_BROKER_DEDUP_WINDOW_MS > now) {
      char key[SB_BROKER_GROUP_MAX + 1], id[SB_BROKER_ID_LEN + 1];
      memcpy(key, s.dedup, s.dedup_len);
      key[s.dedup_len] = 0;
      memcpy(id, r->key + 1, SB_BROKER_ID_LEN);
      id[SB_BROKER_ID_LEN] = 0;
      dedup_add(q, key, r->timestamp_ms + SB_BROKER_DEDUP_WINDOW_MS, id, r->offset);
    }
  } else if (kind == 'd' && r->key_len == 1 && r->value_len % 8 == 0) {
    for (uint32_t i = 0; i < r->value_len; i += 8) {
      sb__qmsg_t *e = sb__queue_entry(q, sb__get_le(r->value + i, 8));
      if (e) remove_entry(q, e);
    }
  } else if (kind == 'r' && r->key_len == 1 && r->value_len % 20 == 0) {
    for (uint32_t i = 0; i < r->value_len; i += 20) {
      sb__qmsg_t *e = sb__queue_entry(q, sb__get_le(r->value + i, 8));
      if (!e) continue;
      uint32_t c = (uint32_t)sb__get_le(r->value + i + 8, 4);
      if (c > e->receive_count) e->receive_count = (uint16_t)(c > 65535 ? 65535 : c);
      int64_t first = (int64_t)sb__get_le(r->value + i + 12, 8);
      if (!e->first_recv && first > 0) set_first_recv(e, first);
    }
  } else if (kind == 'p' && r->key_len == 9) {
    uint64_t upto = sb__get_le(r->key + 1, 8);
    for (size_t i = q->head; i < q->len && q->m[i].seq < upto; i++)
      if (q->m[i].state != SB__M_GONE) remove_entry(q, &q->m[i]);
  }
}

int sb__queue_open(sb_broker_t *b, sb__queue_t *q) {
  char path[SB__BROKER_PATH_CAP];
  snprintf(path, sizeof path, "%s/q-%020" PRIu64, b->dir, q->id);
  sb_journal_opts_t jo;
  sb__journal_opts(b, q->cfg.fsync, q->cfg.fsync_interval_ms, &jo);
  int rc = sb_journal_open(path, &jo, &q->j);
  if (rc) return rc;
  int64_t now = sb__now_ms();
  uint64_t first, next, from = 0;
  sb_journal_bounds(q->j, &first, &next);
  snap_t s;
  if (snap_read(b, q, next, &s)) {
    if (snap_load(b, q, &s, first, now) == 0) {
      from = s.applied > first ? s.applied : first;
    } else {
      sb_log(SB_LOG_WARN, "queue_snapshot_ignored", "queue=%s", q->name);
      index_free(q); /* a full replay instead */
    }
  }
  rc = sb_journal_reader_open(q->j, from, SB__QUEUE_READ_BUF, &q->rd);
  if (rc) return rc;
  sb_journal_record_t r;
  while ((rc = sb_journal_reader_next(q->rd, &r)) == 0) {
    replay_record(b, q, &r, now);
    q->stats.replayed++;
  }
  if (rc != SB_EAGAIN) return rc;
  q->applied = next;
  sb__queue_sweep(b, q, now);
  return 0;
}

/* Frees q's RAM index and leaves it empty. */
static void index_free(sb__queue_t *q) {
  m_free(q);
  free(q->ready);
  free(q->timers);
  free(q->old);
  for (size_t i = 0; i < q->n_groups; i++) {
    free(q->groups[i].id);
    free(q->groups[i].seqs);
  }
  free(q->groups);
  free(q->group_hash);
  for (sb__qdedup_t *d = q->dd_first, *n; d; d = n) {
    n = d->next;
    free(d);
  }
  free(q->dd_buckets);
  q->head = q->len = 0;
  q->live = q->n_visible = q->n_inflight = q->n_delayed = 0;
  q->ready = NULL;
  q->ready_head = q->ready_n = q->ready_cap = 0;
  q->timers = NULL;
  q->n_timers = q->timers_cap = 0;
  q->old = NULL;
  q->n_old = q->old_cap = 0;
  q->newest_sent_ms = 0;
  q->groups = NULL;
  q->n_groups = q->groups_cap = 0;
  q->group_hash = NULL;
  q->group_hash_cap = 0;
  q->dd_buckets = NULL;
  q->dd_cap = q->dd_n = 0;
  q->dd_first = q->dd_last = NULL;
}

void sb__queue_close(sb__queue_t *q) {
  if (q->rd) sb_journal_reader_close(q->rd);
  if (q->j) sb_journal_close(q->j);
  q->rd = NULL;
  q->j = NULL;
  index_free(q);
  sb__kvs_free(&q->kv);
}

/* --- send --------------------------------------------------------------------------------- */

typedef struct send_ctx {
  sb__op_t *op;
  size_t i;           /* message index in the op */
  int64_t sent_ms;    /* record timestamp */
  int64_t visible_at; /* ms */
  char *group;        /* arena; NULL for standard queues */
  sb__qdedup_t *dd;   /* the dedup entry to complete, or NULL */
} send_ctx_t;

static void serve_waiters(sb_broker_t *b, sb__queue_t *q);

static void op_step_done(sb_broker_t *b, sb__op_t *op) {
  if (--op->outstanding == 0) sb__op_finish(b, op, op->status);
}

static void send_acked(sb_broker_t *b, void *ctx, int status, uint64_t seq) {
  send_ctx_t *c = ctx;
  sb__op_t *op = c->op;
  sb__queue_t *q = op->ack_queue;
  q->sending--;
  sb_broker_sent_t *s = &op->sent[c->i];
  if (status == 0 && !q->deleted) {
    status = insert(b, q, seq, c->sent_ms, c->visible_at, c->group, sb__now_ms());
    if (status == 0) {
      s->seq = seq;
      q->stats.sent++;
      if (c->dd) c->dd->seq = seq;
    }
  }
  if (status) {
    s->status = status;
    if (c->dd) c->dd->expires = 1; /* void: the id was not stored */
  }
  op_step_done(b, op);
  if (!q->deleted) serve_waiters(b, q);
}

static void sha256_hex(const void *p, size_t n, char out[65]) {
  uint8_t md[32];
  unsigned int ml = 0;
  EVP_Digest(p, n, md, &ml, EVP_sha256(), NULL);
  static const char hx[] = "0123456789abcdef";
  for (int i = 0; i < 32; i++) {
    out[2 * i] = hx[md[i] >> 4];
    out[2 * i + 1] = hx[md[i] & 15];
  }
  out[64] = 0;
}

static int send_one(sb_broker_t *b, sb__queue_t *q, sb__op_t *op, size_t i, int64_t now) {
  const sb_broker_msg_t *m = &op->msgs[i];
  sb_broker_sent_t *s = &op->sent[i];
  size_t size = m->body_len;
  for (size_t k = 0; k < m->n_attrs; k++)
    size += m->attrs[k].name_len + m->attrs[k].type_len + m->attrs[k].value_len;
  if (size > q->cfg.max_message_bytes) return SB_ELIMIT;
  if (q->cfg.fifo) {
    if (!m->group) return SB_EINVAL;
    if (m->delay_ms > 0) return SB_EINVAL; /* FIFO queues delay per queue only */
  }
  if (q->cfg.max_messages && q->live + q->sending >= q->cfg.max_messages) return SB_ELIMIT;
  char dkey[SB_BROKER_GROUP_MAX + 1];
  const char *dedup = NULL;
  size_t dedup_len = 0;
  if (q->cfg.fifo) {
    if (m->dedup) {
      memcpy(dkey, m->dedup, m->dedup_len);
      dkey[m->dedup_len] = 0;
    } else if (q->cfg.content_dedup) {
      char hx[65];
      sha256_hex(m->body, m->body_len, hx);
      memcpy(dkey, hx, 65);
    } else {
      return SB_EINVAL;
    }
    dedup = dkey;
    dedup_len = strlen(dkey);
    dedup_expire(q, now);
    sb__qdedup_t *d = dedup_find(q, dkey, now);
    if (d) {
      memcpy(s->id, d->id, sizeof s->id);
      s->seq = d->seq;
      s->duplicate = true;
      return 1;
    }
  }
  sb__make_id(s->id);
  int64_t delay = m->delay_ms >= 0 ? m->delay_ms : (int64_t)q->cfg.delay_ms;
  sb__hdrs_t hs;
  hs.n = 0;
  int rc = 0;
  for (size_t k = 0; k < m->n_attrs && !rc; k++)
    rc = sb__hdr_add_attr(&hs, &op->arena, &m->attrs[k]);
  if (!rc && m->group) rc = sb__hdr_add(&hs, &op->arena, ":g", m->group, m->group_len);
  if (!rc && dedup) rc = sb__hdr_add(&hs, &op->arena, ":d", dedup, dedup_len);
  if (!rc && m->trace) rc = sb__hdr_add(&hs, &op->arena, ":t", m->trace, m->trace_len);
  if (!rc && delay > 0) rc = sb__hdr_add_num(&hs, &op->arena, ":v", delay);
  if (rc) return rc;
  char key[1 + SB_BROKER_ID_LEN];
  key[0] = 'm';
  memcpy(key + 1, s->id, SB_BROKER_ID_LEN);
  sb_journal_entry_t e = {key,  sizeof key,     m->body, (uint32_t)m->body_len,
                          hs.h, (uint16_t)hs.n, now};
  send_ctx_t *c = sb_arena_alloc(&op->arena, sizeof *c);
  if (!c) return SB_ENOMEM;
  *c = (send_ctx_t){op, i, now, now + delay, NULL, NULL};
  if (m->group) c->group = sb_arena_strndup(&op->arena, m->group, m->group_len);
  if (dedup) {
    c->dd = dedup_add(q, dkey, now + SB_BROKER_DEDUP_WINDOW_MS, s->id, 0);
    if (!c->dd) return SB_ENOMEM;
  }
  rc = sb__append(b, q, &e, send_acked, c);
  if (rc) {
    if (c->dd) c->dd->expires = 1;
    return rc;
  }
  q->sending++;
  return 0;
}

void sb__queue_send(sb_broker_t *b, sb__queue_t *q, sb__op_t *op) {
  op->sent = sb_arena_alloc(&op->arena, op->n * sizeof *op->sent);
  if (!op->sent) {
    sb__op_finish(b, op, SB_ENOMEM);
    return;
  }
  memset(op->sent, 0, op->n * sizeof *op->sent);
  op->ack_queue = q;
  op->outstanding = 1; /* held until every message is handed to the journal */
  int64_t now = sb__now_ms();
  for (size_t i = 0; i < op->n; i++) {
    int rc = send_one(b, q, op, i, now);
    if (rc < 0)
      op->sent[i].status = rc;
    else if (rc == 0)
      op->outstanding++;
  }
  op_step_done(b, op);
}

/* --- receive ------------------------------------------------------------------------------ */

static void unlink_waiter(sb__queue_t *q, sb__waiter_t *w) {
  if (w->prev)
    w->prev->next = w->next;
  else
    q->wait_first = w->next;
  if (w->next)
    w->next->prev = w->prev;
  else
    q->wait_last = w->prev;
  w->prev = w->next = NULL;
}

static void removed_done(sb_broker_t *b, void *ctx, int status, uint64_t seq) {
  (void)b, (void)ctx, (void)status, (void)seq;
}

typedef struct move_ctx {
  uint64_t src_id; /* the source queue */
  uint64_t seq;    /* the message in the source */
} move_ctx_t;

static void dlq_copied(sb_broker_t *b, void *ctx, int status, uint64_t seq) {
  (void)seq;
  move_ctx_t *c = ctx;
  sb__queue_t *src = sb__queue_by_id(b, c->src_id);
  if (src && !src->deleted) {
    if (status) {
      sb__queue_unmove(b, src, c->seq);
    } else {
      src->stats.dead_lettered++;
      sb__queue_remove(b, src, c->seq, removed_done, NULL);
    }
  }
  free(c);
}

/* Moves e to q's dead-letter queue. Returns true when the move started. */
static bool dead_letter(sb_broker_t *b, sb__queue_t *q, sb__qmsg_t *e) {
  sb__queue_t *dq = q->cfg.dead_letter[0] ? sb__queue_find(b, q->cfg.dead_letter) : NULL;
  if (!dq || dq == q) return false;
  sb_journal_record_t rec;
  if (sb__queue_read(q, e->seq, &rec)) return false;
  move_ctx_t *c = malloc(sizeof *c);
  if (!c) return false;
  *c = (move_ctx_t){q->id, e->seq};
  set_state(q, e, SB__M_MOVING);
  if (sb__queue_append_copy(b, dq, &rec, q, e, rec.timestamp_ms, dlq_copied, c)) {
    free(c);
    make_visible(q, e);
    return false;
  }
  return true;
}

/* Leases e to op: reads its record, fills the next delivery. Returns 0, or a code when the
 * record cannot be read (e stays visible). */
static int lease(sb_broker_t *b, sb__queue_t *q, sb__op_t *op, sb__qmsg_t *e, int64_t now,
                 int64_t vis) {
  sb_journal_record_t rec;
  int rc = sb__queue_read(q, e->seq, &rec);
  if (rc) return rc;
  sb_broker_delivery_t *d = &op->dl[op->n_dl];
  rc = fill_delivery(&op->arena, &rec, d);
  if (rc) return rc;
  if (e->receive_count < 65535) e->receive_count++;
  if (!e->first_recv) set_first_recv(e, now);
  d->receive_count = e->receive_count;
  d->first_receive_ms = first_recv_ms(e);
  make_receipt(d->receipt, q->id, e->seq, e->receive_count);
  set_state(q, e, SB__M_INFLIGHT);
  e->visible_at = now + vis;
  if (vis > 0) timer_add(b, q, e->visible_at, e->seq);
  op->n_dl++;
  q->stats.received++;
  return 0;
}

/* Whether e must go to the dead-letter queue instead of being delivered. */
static bool over_receives(const sb__queue_t *q, const sb__qmsg_t *e) {
  return q->cfg.max_receive_count && e->receive_count >= q->cfg.max_receive_count &&
         q->cfg.dead_letter[0];
}

/* Delivers what is visible to op, up to op->n messages. */
static void deliver(sb_broker_t *b, sb__queue_t *q, sb__op_t *op, int64_t now) {
  int64_t vis = op->visibility_ms >= 0 ? op->visibility_ms : (int64_t)q->cfg.visibility_ms;
  size_t first = op->n_dl;
  uint64_t v;
  while (op->n_dl < op->n && ready_pop(q, &v)) {
    if (!q->cfg.fifo) {
      sb__qmsg_t *e = sb__queue_entry(q, v);
      if (!e || !e->in_ready) continue;
      e->in_ready = 0;
      if (e->state != SB__M_VISIBLE) continue;
      if (over_receives(q, e) && dead_letter(b, q, e)) continue;
      /* A record that cannot be read (media damage: the journal refuses to serve it) stays
       * out of the ready ring rather than failing every later receive. */
      lease(b, q, op, e, now, vis);
      continue;
    }
    sb__qgroup_t *g = &q->groups[v];
    g->in_ready = false;
    if (g->inflight) continue;
    for (size_t k = 0; k < g->n && op->n_dl < op->n; k++) {
      sb__qmsg_t *e = sb__queue_entry(q, g->seqs[(g->head + k) & (g->cap - 1)]);
      if (!e) continue;
      if (e->state != SB__M_VISIBLE) break;
      if (over_receives(q, e)) {
        dead_letter(b, q, e);
        break; /* the group waits for the move */
      }
      if (lease(b, q, op, e, now, vis)) break;
    }
    group_check(q, g);
  }
  if (op->n_dl == first) return;
  /* One 'r' record for the receive: counts survive a restart (not waited for). */
  size_t n = op->n_dl - first;
  uint8_t *val = sb_arena_alloc(&op->arena, n * 20);
  if (!val) return;
  for (size_t i = 0; i < n; i++) {
    const sb_broker_delivery_t *d = &op->dl[first + i];
    sb__put_le(val + 20 * i, d->seq, 8);
    sb__put_le(val + 20 * i + 8, d->receive_count, 4);
    sb__put_le(val + 20 * i + 12, (uint64_t)d->first_receive_ms, 8);
  }
  sb_journal_entry_t rec = {"r", 1, val, (uint32_t)(n * 20), NULL, 0, now};
  sb__append(b, q, &rec, removed_done, NULL);
  /* Leases of vis == 0 end at once. */
  if (vis <= 0) {
    for (size_t i = first; i < op->n_dl; i++) {
      sb__qmsg_t *e = sb__queue_entry(q, op->dl[i].seq);
      if (e && e->state == SB__M_INFLIGHT) make_visible(q, e);
    }
  }
}

static void serve_waiters(sb_broker_t *b, sb__queue_t *q) {
  int64_t now = sb__now_ms();
  while (q->wait_first && q->ready_n) {
    sb__waiter_t *w = q->wait_first;
    deliver(b, q, w->op, now);
    if (!w->op->n_dl) break; /* what was ready was stale or moved away */
    unlink_waiter(q, w);
    sb__op_finish(b, w->op, 0);
  }
}

void sb__queue_receive(sb_broker_t *b, sb__queue_t *q, sb__op_t *op) {
  op->dl = sb_arena_alloc(&op->arena, op->n * sizeof *op->dl);
  if (!op->dl) {
    sb__op_finish(b, op, SB_ENOMEM);
    return;
  }
  int64_t now = sb__now_ms();
  if (!q->wait_first) deliver(b, q, op, now); /* older long polls are served first */
  int64_t wait = op->wait_ms >= 0 ? op->wait_ms : (int64_t)q->cfg.receive_wait_ms;
  if (atomic_load(&b->draining)) wait = 0;
  if (op->n_dl || wait <= 0) {
    sb__op_finish(b, op, 0);
    return;
  }
  sb__waiter_t *w = &op->waiter;
  w->op = op;
  w->deadline = now + wait;
  w->next = NULL;
  w->prev = q->wait_last;
  if (q->wait_last)
    q->wait_last->next = w;
  else
    q->wait_first = w;
  q->wait_last = w;
  sb__queue_schedule(b, q, w->deadline);
  serve_waiters(b, q);
}

void sb__queue_end_waiters(sb_broker_t *b, sb__queue_t *q) {
  while (q->wait_first) {
    sb__waiter_t *w = q->wait_first;
    unlink_waiter(q, w);
    sb__op_finish(b, w->op, 0);
  }
}

/* --- delete, visibility, purge ------------------------------------------------------------ */

/* A delete in progress: for a delete operation (op set; statuses settle on the
 * acknowledgement) or an internal removal (fn runs on the acknowledgement). */
typedef struct del_ctx {
  sb__op_t *op;   /* the delete operation, or NULL */
  sb__queue_t *q; /* the queue (alive until the acknowledgement ran: q->pending) */
  uint64_t *seqs; /* the seqs being deleted */
  size_t n;       /* count */
  sb__ack_fn fn;  /* internal removal: continuation, with fn_ctx */
  void *fn_ctx;
} del_ctx_t;

static void del_acked(sb_broker_t *b, void *ctx, int status, uint64_t seq) {
  (void)seq;
  del_ctx_t *c = ctx;
  sb__queue_t *q = c->q;
  for (size_t i = 0; i < c->n; i++) {
    sb__qmsg_t *e = q->deleted ? NULL : sb__queue_entry(q, c->seqs[i]);
    if (!e) continue;
    if (status == 0) {
      remove_entry(q, e);
      q->stats.deleted++;
    } else if (e->state == SB__M_DELETING) {
      make_visible(q, e);
    }
  }
  if (c->op) {
    for (size_t i = 0; i < c->op->n; i++)
      if (c->op->statuses[i] == 1) c->op->statuses[i] = status;
    op_step_done(b, c->op);
  } else {
    sb__ack_fn fn = c->fn;
    void *fctx = c->fn_ctx;
    uint64_t s0 = c->seqs[0];
    free(c);
    fn(b, fctx, status, s0);
  }
  if (!q->deleted) serve_waiters(b, q);
}

static int write_delete(sb_broker_t *b, sb__queue_t *q, del_ctx_t *c) {
  uint8_t *val = malloc(c->n * 8);
  if (!val) return SB_ENOMEM;
  for (size_t i = 0; i < c->n; i++)
    sb__put_le(val + 8 * i, c->seqs[i], 8);
  sb_journal_entry_t e = {"d", 1, val, (uint32_t)(c->n * 8), NULL, 0, 0};
  int rc = sb__append(b, q, &e, del_acked, c);
  free(val);
  return rc;
}

int sb__queue_remove(sb_broker_t *b, sb__queue_t *q, uint64_t seq, sb__ack_fn fn, void *ctx) {
  sb__qmsg_t *e = sb__queue_entry(q, seq);
  if (!e) return SB_ENOTFOUND;
  del_ctx_t *c = malloc(sizeof *c + sizeof(uint64_t));
  if (!c) return SB_ENOMEM;
  *c = (del_ctx_t){NULL, q, (uint64_t *)(c + 1), 1, fn, ctx};
  c->seqs[0] = seq;
  uint8_t prev = e->state;
  set_state(q, e, SB__M_DELETING);
  int rc = write_delete(b, q, c);
  if (rc) {
    free(c);
    if (prev == SB__M_MOVING)
      make_visible(q, e);
    else
      set_state(q, e, prev);
  }
  return rc;
}

void sb__queue_unmove(sb_broker_t *b, sb__queue_t *q, uint64_t seq) {
  sb__qmsg_t *e = sb__queue_entry(q, seq);
  if (e && e->state == SB__M_MOVING) {
    make_visible(q, e);
    serve_waiters(b, q);
  }
}

bool sb__queue_take_visible(sb__queue_t *q, uint64_t from, uint64_t *seq) {
  for (size_t i = lower_bound(q, from); i < q->len; i++) {
    sb__qmsg_t *e = &q->m[i];
    if (e->state == SB__M_VISIBLE) {
      set_state(q, e, SB__M_MOVING);
      *seq = e->seq;
      return true;
    }
  }
  return false;
}

/* Resolves a receipt handle to its entry: 1 and *out when it names the message's newest
 * delivery, 0 when the message is gone, or a negative status. */
static int resolve(sb__queue_t *q, const char *receipt, sb__qmsg_t **out) {
  uint64_t qid, seq;
  uint32_t count;
  if (sb_broker_parse_receipt(receipt, &qid, &seq, &count) || qid != q->id) return SB_EINVAL;
  sb__qmsg_t *e = sb__queue_entry(q, seq);
  if (!e) return 0;
  if (e->receive_count != count) return SB_ESTATE;
  *out = e;
  return 1;
}

void sb__queue_delete_msgs(sb_broker_t *b, sb__queue_t *q, sb__op_t *op) {
  op->statuses = sb_arena_alloc(&op->arena, op->n * sizeof *op->statuses);
  del_ctx_t *c = sb_arena_alloc(&op->arena, sizeof *c);
  uint64_t *seqs = sb_arena_alloc(&op->arena, op->n * sizeof *seqs);
  if (!op->statuses || !c || !seqs) {
    sb__op_finish(b, op, SB_ENOMEM);
    return;
  }
  *c = (del_ctx_t){op, q, seqs, 0, NULL, NULL};
  for (size_t i = 0; i < op->n; i++) {
    sb__qmsg_t *e = NULL;
    int r = resolve(q, op->receipts[i], &e);
    op->statuses[i] = r < 0 ? r : 0;
    if (r != 1) continue;
    if (e->state != SB__M_DELETING && e->state != SB__M_MOVING) set_state(q, e, SB__M_DELETING);
    seqs[c->n++] = e->seq;
    op->statuses[i] = 1; /* settled by the acknowledgement */
  }
  if (!c->n) {
    sb__op_finish(b, op, 0);
    return;
  }
  op->outstanding = 1;
  int rc = write_delete(b, q, c);
  if (rc) del_acked(b, c, rc, 0);
}

void sb__queue_visibility(sb_broker_t *b, sb__queue_t *q, sb__op_t *op) {
  op->statuses = sb_arena_alloc(&op->arena, op->n * sizeof *op->statuses);
  if (!op->statuses) {
    sb__op_finish(b, op, SB_ENOMEM);
    return;
  }
  int64_t now = sb__now_ms();
  for (size_t i = 0; i < op->n; i++) {
    sb__qmsg_t *e = NULL;
    int r = resolve(q, op->receipts[i], &e);
    if (r == 0) r = SB_ENOTFOUND;
    if (r == 1 && e->state != SB__M_INFLIGHT) r = SB_ESTATE; /* not in flight */
    if (r < 0) {
      op->statuses[i] = r;
      continue;
    }
    op->statuses[i] = 0;
    if (op->visibility_ms <= 0) {
      make_visible(q, e);
    } else {
      e->visible_at = now + op->visibility_ms;
      timer_add(b, q, e->visible_at, e->seq);
    }
  }
  sb__op_finish(b, op, 0);
  serve_waiters(b, q);
}

static void purge_acked(sb_broker_t *b, void *ctx, int status, uint64_t seq) {
  (void)seq;
  sb__op_t *op = ctx;
  sb__queue_t *q = op->ack_queue;
  if (status == 0 && !q->deleted) {
    for (size_t i = q->head; i < q->len && q->m[i].seq < op->from; i++) {
      if (q->m[i].state == SB__M_GONE) continue;
      remove_entry(q, &q->m[i]);
      op->count++;
      if (q->len == 0) break;
    }
  }
  sb__op_finish(b, op, status);
}

void sb__queue_purge(sb_broker_t *b, sb__queue_t *q, sb__op_t *op) {
  uint8_t key[9];
  key[0] = 'p';
  op->from = q->len ? q->m[q->len - 1].seq + 1 : 0;
  sb__put_le(key + 1, op->from, 8);
  op->ack_queue = q;
  sb_journal_entry_t e = {key, sizeof key, NULL, 0, NULL, 0, 0};
  int rc = op->from ? sb__append(b, q, &e, purge_acked, op) : 0;
  if (!op->from || rc) sb__op_finish(b, op, rc);
}

/* --- peek --------------------------------------------------------------------------------- */

static bool has_attr(const sb_broker_delivery_t *d, const char *name, const char *value) {
  for (size_t i = 0; i < d->n_attrs; i++) {
    const sb_broker_attr_t *a = &d->attrs[i];
    if (a->name_len != strlen(name) || memcmp(a->name, name, a->name_len)) continue;
    if (!value) return true;
    return a->value_len == strlen(value) && memcmp(a->value, value, a->value_len) == 0;
  }
  return false;
}

void sb__queue_peek(sb_broker_t *b, sb__queue_t *q, sb__op_t *op) {
  size_t max = op->n < PEEK_MAX ? op->n : PEEK_MAX;
  op->dl = sb_arena_alloc(&op->arena, max * sizeof *op->dl);
  if (!op->dl) {
    sb__op_finish(b, op, SB_ENOMEM);
    return;
  }
  for (size_t i = lower_bound(q, op->from); i < q->len && op->n_dl < max; i++) {
    sb__qmsg_t *e = &q->m[i];
    if (e->state == SB__M_GONE) continue;
    sb_journal_record_t rec;
    if (sb__queue_read(q, e->seq, &rec)) continue;
    sb_broker_delivery_t *d = &op->dl[op->n_dl];
    if (fill_delivery(&op->arena, &rec, d)) continue;
    if (op->attr_name && !has_attr(d, op->attr_name, op->attr_value)) continue;
    d->receive_count = e->receive_count;
    d->first_receive_ms = first_recv_ms(e);
    op->n_dl++;
  }
  sb__op_finish(b, op, 0);
}

/* --- copies between queues (dead-lettering, redrive) -------------------------------------- */

typedef struct copy_ctx {
  sb__queue_t *q;                      /* the destination (alive until the acknowledgement) */
  int64_t ts;                          /* record timestamp */
  char group[SB_BROKER_GROUP_MAX + 1]; /* FIFO group of the copy */
  sb__ack_fn fn;
  void *fn_ctx;
} copy_ctx_t;

static void copy_acked(sb_broker_t *b, void *ctx, int status, uint64_t seq) {
  copy_ctx_t *c = ctx;
  sb__queue_t *q = c->q;
  if (status == 0 && !q->deleted) {
    int64_t now = sb__now_ms();
    status = insert(b, q, seq, c->ts, now, c->group, now);
    if (status == 0) q->stats.sent++;
    serve_waiters(b, q);
  }
  sb__ack_fn fn = c->fn;
  void *fctx = c->fn_ctx;
  free(c);
  fn(b, fctx, status, seq);
}

int sb__queue_append_copy(sb_broker_t *b, sb__queue_t *q, const sb_journal_record_t *rec,
                          const sb__queue_t *src, const sb__qmsg_t *src_entry, int64_t ts,
                          sb__ack_fn fn, void *ctx) {
  if (q->cfg.max_messages && q->live + q->sending >= q->cfg.max_messages) return SB_ELIMIT;
  sb_arena_t a;
  sb_arena_init(&a);
  sb__hdrs_t hs;
  hs.n = 0;
  int rc = 0;
  copy_ctx_t *c = calloc(1, sizeof *c);
  if (!c) return SB_ENOMEM;
  c->q = q;
  c->ts = ts;
  c->fn = fn;
  c->fn_ctx = ctx;
  uint32_t pos = 0;
  const uint8_t *n, *v;
  uint16_t nl;
  uint32_t vl;
  while (!rc && sb_journal_header_next(rec, &pos, &n, &nl, &v, &vl)) {
    bool dlq_field = nl >= 2 && n[0] == ':' && n[1] == 'd' && nl > 2;
    if (dlq_field || hname_is(n, nl, ":v")) continue; /* failure metadata, delay: dropped */
    if (hname_is(n, nl, ":g") && vl <= SB_BROKER_GROUP_MAX) {
      memcpy(c->group, v, vl);
      c->group[vl] = 0;
    }
    if (hs.n >= sizeof hs.h / sizeof hs.h[0])
      rc = SB_EINVAL;
    else
      hs.h[hs.n++] = (sb_journal_header_t){n, nl, v, vl};
  }
  if (!rc && src) {
    rc = sb__hdr_add(&hs, &a, ":ds", src->name, strlen(src->name));
    if (!rc) rc = sb__hdr_add_num(&hs, &a, ":dc", src_entry->receive_count);
    if (!rc) rc = sb__hdr_add_num(&hs, &a, ":df", first_recv_ms(src_entry));
    if (!rc) rc = sb__hdr_add_num(&hs, &a, ":dl", sb__now_ms());
  }
  if (!rc) {
    sb_journal_entry_t e = {rec->key, rec->key_len,   rec->value, rec->value_len,
                            hs.h,     (uint16_t)hs.n, ts};
    rc = sb__append(b, q, &e, copy_acked, c);
  }
  sb_arena_free(&a);
  if (rc)
    free(c);
  else
    q->sending++;
  return rc;
}

/* --- timers, retention, stats ------------------------------------------------------------- */

int64_t sb__queue_tick(sb_broker_t *b, sb__queue_t *q, int64_t now) {
  while (q->n_timers && q->timers[0].when <= now) {
    sb__qtimer_t t = timer_pop_heap(q->timers, &q->n_timers);
    sb__qmsg_t *e = sb__queue_entry(q, t.seq);
    if (e && (e->state == SB__M_INFLIGHT || e->state == SB__M_DELAYED) && e->visible_at == t.when)
      make_visible(q, e);
  }
  serve_waiters(b, q);
  int64_t next = q->n_timers ? q->timers[0].when : INT64_MAX;
  for (sb__waiter_t *w = q->wait_first, *nw; w; w = nw) {
    nw = w->next;
    if (w->deadline <= now) {
      unlink_waiter(q, w);
      sb__op_finish(b, w->op, 0);
    } else if (w->deadline < next) {
      next = w->deadline;
    }
  }
  return next;
}

void sb__queue_sweep(sb_broker_t *b, sb__queue_t *q, int64_t now) {
  (void)b;
  int64_t cutoff = now - (int64_t)q->cfg.retention_ms;
  while (q->head < q->len) {
    sb__qmsg_t *e = &q->m[q->head];
    if (e->state == SB__M_GONE) {
      q->head++;
      continue;
    }
    if (e->sent_ms >= cutoff || e->state == SB__M_MOVING || e->state == SB__M_DELETING) break;
    remove_entry(q, e);
    q->stats.expired++;
  }
  while (q->n_old && q->old[0].when < cutoff) {
    sb__qtimer_t t = q->old[0];
    sb__qmsg_t *e = sb__queue_entry(q, t.seq);
    if (e && (e->state == SB__M_MOVING || e->state == SB__M_DELETING)) break; /* retry later */
    timer_pop_heap(q->old, &q->n_old);
    if (e) {
      remove_entry(q, e);
      q->stats.expired++;
    }
  }
  if (q->cfg.fifo) dedup_expire(q, now);
  uint64_t first, next;
  sb_journal_bounds(q->j, &first, &next);
  uint64_t low = q->head < q->len ? q->m[q->head].seq : next;
  sb_journal_retain(q->j, low, now);
}

void sb__queue_fill_stats(const sb__queue_t *q, sb_queue_stats_t *s) {
  *s = q->stats;
  s->visible = q->n_visible;
  s->in_flight = q->n_inflight;
  s->delayed = q->n_delayed;
  s->oldest_ms = 0;
  for (size_t i = q->head; i < q->len; i++)
    if (q->m[i].state != SB__M_GONE) {
      s->oldest_ms = q->m[i].sent_ms;
      break;
    }
}
