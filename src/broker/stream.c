/*
 * The stream engine: partitioned replayable logs and consumer-group offsets (contract in
 * broker.h, "streams"). Runs on the broker thread.
 *
 * Files: <data_dir>/s-<id>-<partition>/ is one journal per partition (format: log/segment.h).
 * A record's key is the producer's key, its value the body, its headers the attributes
 * (record.c); its offset is the stream offset.
 *
 * Catalog records (broker_int.h describes the catalog):
 *   'x' + stream           id, partitions, retention_ms, retention_bytes, segment_bytes, fsync,
 *                          fsync_ms, created
 *   'X' + stream           the stream was deleted (id)
 *   'c' + stream "/" group the group's committed offsets: "id" (the stream's) and "p<k>" for
 *                          each partition it has an offset for
 *
 * Lifetime: appends in flight hold the stream (pending); a deleted stream is unlisted at once
 * and its journals close and its files go when the last acknowledgement has been processed.
 */
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker_int.h"
#include "core/codec.h"
#include "switchboard/error.h"

#define READ_BUF (64u << 10) /* a read's journal buffer (grows for a bigger record) */

/* One pending entry: delivered to the group, not acknowledged. */
typedef struct pentry {
  uint64_t offset;   /* the record */
  int64_t last_ms;   /* last delivery */
  uint32_t consumer; /* index into the group's consumers */
  uint16_t count;    /* deliveries (saturates) */
  uint8_t gone;      /* acknowledged: a tombstone until compaction */
} pentry_t;

/* A partition's pending list: e[head, len) sorted by offset, tombstones included. */
typedef struct pel {
  pentry_t *e;           /* owned */
  size_t head, len, cap; /* vector positions */
  size_t live;           /* entries not gone */
} pel_t;

typedef struct sgroup {
  char name[SB_STREAM_GROUP_MAX + 1];
  uint64_t *off;          /* committed, per partition, SB_STREAM_NO_OFFSET when none; owned */
  uint64_t *next_deliver; /* group reads: next offset to hand out, or SB_STREAM_NO_OFFSET */
  pel_t *pel;             /* per partition; owned */
  char **consumers;       /* consumer names; owned */
  size_t n_consumers;     /* count */
} sgroup_t;

struct sb__stream {
  char name[SB_BROKER_NAME_MAX + 1]; /* first member: sb__byname_* index it */
  uint64_t id;                       /* directory number */
  sb_stream_config_t cfg;            /* configuration */
  int64_t created_ms;                /* creation time */
  sb_journal_t **j;                  /* cfg.partitions journals; owned */
  sb_journal_t *gj;                  /* group deliveries, claims and acks (s-<id>-g); owned */
  uint32_t rr;                       /* round-robin partition for key-less appends */
  sgroup_t *groups;                  /* committed offsets by group; owned */
  size_t n_groups;                   /* count */
  sb__op_t *wait_first, *wait_last;  /* long-poll reads, oldest first (linked by op->next) */
  uint64_t pending;                  /* appends whose acknowledgement is not processed yet */
  uint64_t gj_written;               /* offsets in group-journal records since the last
                                        compaction (or open): what replay would walk */
  bool gj_compacting;                /* a compaction's records are being written */
  bool deleted;                      /* unlisted; freed at pending == 0 */
  int64_t next_deadline;             /* earliest long-poll deadline registered */
};

static int open_groups(sb_broker_t *b, sb__stream_t *s);
static int group_deliver(sb_broker_t *b, sb__stream_t *s, sb__op_t *op);
static void gj_maybe_compact(sb_broker_t *b, sb__stream_t *s);

static sb__stream_t *find(sb_broker_t *b, const char *name) {
  bool found;
  size_t i = sb__byname_pos(b->streams, b->n_streams, name, &found);
  return found ? b->streams[i] : NULL;
}

bool sb__stream_exists(sb_broker_t *b, const char *name) {
  return find(b, name) != NULL;
}

static sb__stream_t *by_id(sb_broker_t *b, uint64_t id) {
  for (size_t i = 0; i < b->n_streams; i++)
    if (b->streams[i]->id == id) return b->streams[i];
  return NULL;
}

bool sb__stream_owns(sb_broker_t *b, uint64_t id) {
  return by_id(b, id) != NULL;
}

static void dir_of(sb_broker_t *b, const sb__stream_t *s, uint32_t p, char *out, size_t cap) {
  snprintf(out, cap, "%s/s-%020" PRIu64 "-%u", b->dir, s->id, p);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  remove(path);
  return 0;
}

static void stream_free(sb_broker_t *b, sb__stream_t *s) {
  for (uint32_t p = 0; s->j && p < s->cfg.partitions; p++) {
    if (s->j[p]) sb_journal_close(s->j[p]);
    if (s->deleted) {
      char path[SB__BROKER_PATH_CAP];
      dir_of(b, s, p, path, sizeof path);
      nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
  }
  free(s->j);
  if (s->gj) sb_journal_close(s->gj);
  if (s->deleted) {
    char path[SB__BROKER_PATH_CAP];
    snprintf(path, sizeof path, "%s/s-%020" PRIu64 "-g", b->dir, s->id);
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  }
  for (size_t i = 0; i < s->n_groups; i++) {
    sgroup_t *g = &s->groups[i];
    free(g->off);
    free(g->next_deliver);
    for (uint32_t p = 0; g->pel && p < s->cfg.partitions; p++)
      free(g->pel[p].e);
    free(g->pel);
    for (size_t c = 0; c < g->n_consumers; c++)
      free(g->consumers[c]);
    free(g->consumers);
  }
  free(s->groups);
  free(s);
}

static int open_journals(sb_broker_t *b, sb__stream_t *s) {
  s->j = calloc(s->cfg.partitions, sizeof *s->j);
  if (!s->j) return SB_ENOMEM;
  for (uint32_t p = 0; p < s->cfg.partitions; p++) {
    sb_journal_opts_t jo;
    sb_journal_opts_default(&jo);
    jo.fsync = s->cfg.fsync == SB_BROKER_FSYNC_NEVER      ? SB_JOURNAL_FSYNC_NEVER
               : s->cfg.fsync == SB_BROKER_FSYNC_INTERVAL ? SB_JOURNAL_FSYNC_INTERVAL
                                                          : SB_JOURNAL_FSYNC_ALWAYS;
    jo.fsync_interval_ms = s->cfg.fsync_interval_ms ? s->cfg.fsync_interval_ms : 1;
    jo.retention_ms = s->cfg.retention_ms;
    jo.retention_bytes = s->cfg.retention_bytes;
    jo.max_bytes = s->cfg.max_bytes;
    jo.disk_reserve_bytes = b->opts.disk_reserve_bytes;
    if (s->cfg.segment_bytes)
      jo.segment_bytes = s->cfg.segment_bytes;
    else if (b->opts.segment_bytes)
      jo.segment_bytes = b->opts.segment_bytes;
    char path[SB__BROKER_PATH_CAP];
    dir_of(b, s, p, path, sizeof path);
    int rc = sb_journal_open(path, &jo, &s->j[p]);
    if (rc) return rc;
  }
  return open_groups(b, s);
}

static sgroup_t *group_get(sb__stream_t *s, const char *name, bool create) {
  for (size_t i = 0; i < s->n_groups; i++)
    if (strcmp(s->groups[i].name, name) == 0) return &s->groups[i];
  if (!create) return NULL;
  sgroup_t *ng = realloc(s->groups, (s->n_groups + 1) * sizeof *ng);
  if (!ng) return NULL;
  s->groups = ng;
  sgroup_t *g = &s->groups[s->n_groups];
  memset(g, 0, sizeof *g);
  snprintf(g->name, sizeof g->name, "%s", name);
  g->off = malloc(s->cfg.partitions * sizeof *g->off);
  g->next_deliver = malloc(s->cfg.partitions * sizeof *g->next_deliver);
  g->pel = calloc(s->cfg.partitions, sizeof *g->pel);
  if (!g->off || !g->next_deliver || !g->pel) {
    free(g->off);
    free(g->next_deliver);
    free(g->pel);
    return NULL;
  }
  for (uint32_t p = 0; p < s->cfg.partitions; p++)
    g->off[p] = g->next_deliver[p] = SB_STREAM_NO_OFFSET;
  s->n_groups++;
  return g;
}

/* --- catalog ------------------------------------------------------------------------------ */

static int put_stream(sb_broker_t *b, const sb__stream_t *s, sb__op_t *op) {
  sb__rec_t *r = calloc(1, sizeof *r);
  if (!r) return SB_ENOMEM;
  sb__rec_num(r, "id", (int64_t)s->id);
  sb__rec_num(r, "partitions", s->cfg.partitions);
  sb__rec_num(r, "retention_ms", (int64_t)s->cfg.retention_ms);
  sb__rec_num(r, "retention_bytes", (int64_t)s->cfg.retention_bytes);
  sb__rec_num(r, "max_bytes", (int64_t)s->cfg.max_bytes);
  sb__rec_num(r, "segment_bytes", (int64_t)s->cfg.segment_bytes);
  sb__rec_num(r, "fsync", s->cfg.fsync);
  sb__rec_num(r, "fsync_ms", s->cfg.fsync_interval_ms);
  sb__rec_num(r, "created", s->created_ms);
  int rc = sb__catalog_append(b, 'x', s->name, r, op);
  free(r);
  return rc;
}

/* The offsets go in one header, "offsets" = "<partition>:<offset>,..." for the partitions
 * the group has committed. */
static int put_group(sb_broker_t *b, const sb__stream_t *s, const sgroup_t *g, sb__op_t *op) {
  sb__rec_t *r = calloc(1, sizeof *r);
  char *list = malloc((size_t)s->cfg.partitions * 32 + 1);
  int rc = r && list ? 0 : SB_ENOMEM;
  if (!rc) {
    size_t o = 0;
    list[0] = 0;
    for (uint32_t p = 0; p < s->cfg.partitions; p++)
      if (g->off[p] != SB_STREAM_NO_OFFSET)
        o += (size_t)sprintf(list + o, "%s%u:%" PRIu64, o ? "," : "", p, g->off[p]);
    sb__rec_num(r, "id", (int64_t)s->id);
    sb__rec_str(r, "offsets", list);
    char key[SB_BROKER_NAME_MAX + SB_STREAM_GROUP_MAX + 2];
    snprintf(key, sizeof key, "%s/%s", s->name, g->name);
    rc = sb__catalog_append(b, 'c', key, r, op);
  }
  free(list);
  free(r);
  return rc;
}

void sb__stream_replay(sb_broker_t *b, const sb_journal_record_t *r) {
  char name[SB_BROKER_NAME_MAX + SB_STREAM_GROUP_MAX + 2];
  if (r->key_len < 2 || r->key_len > sizeof name) return;
  memcpy(name, r->key + 1, r->key_len - 1);
  name[r->key_len - 1] = 0;
  uint64_t id = (uint64_t)sb__rec_getnum(r, "id");
  if (r->key[0] == 'c') {
    char *slash = strchr(name, '/');
    if (!slash) return;
    *slash = 0;
    sb__stream_t *s = find(b, name);
    if (!s || s->id != id) return;
    sgroup_t *g = group_get(s, slash + 1, true);
    if (!g) return;
    size_t cap = (size_t)s->cfg.partitions * 32 + 1;
    char *list = malloc(cap);
    if (list && sb__rec_get(r, "offsets", list, cap)) {
      for (char *it = list; *it;) {
        char *end;
        unsigned long p = strtoul(it, &end, 10);
        if (*end != ':') break;
        uint64_t off = strtoull(end + 1, &end, 10);
        if (p < s->cfg.partitions) g->off[p] = off;
        it = *end == ',' ? end + 1 : end;
      }
    }
    free(list);
    return;
  }
  if (strlen(name) > SB_BROKER_NAME_MAX) return;
  sb__stream_t *old = find(b, name);
  if (old) {
    sb__byname_remove(b->streams, &b->n_streams, old);
    stream_free(b, old);
  }
  if (id >= b->next_queue_id) b->next_queue_id = id + 1; /* one id space with queues */
  if (r->key[0] == 'X') return;
  sb__stream_t *s = calloc(1, sizeof *s);
  if (!s) return;
  snprintf(s->name, sizeof s->name, "%s", name);
  s->id = id;
  s->cfg.partitions = (uint32_t)sb__rec_getnum(r, "partitions");
  s->cfg.retention_ms = (uint64_t)sb__rec_getnum(r, "retention_ms");
  s->cfg.retention_bytes = (uint64_t)sb__rec_getnum(r, "retention_bytes");
  s->cfg.max_bytes = (uint64_t)sb__rec_getnum(r, "max_bytes");
  s->cfg.segment_bytes = (uint64_t)sb__rec_getnum(r, "segment_bytes");
  s->cfg.fsync = (sb_broker_fsync_t)sb__rec_getnum(r, "fsync");
  s->cfg.fsync_interval_ms = (uint32_t)sb__rec_getnum(r, "fsync_ms");
  s->created_ms = sb__rec_getnum(r, "created");
  s->next_deadline = INT64_MAX;
  if (s->cfg.partitions < 1 || s->cfg.partitions > SB_STREAM_PARTITIONS_MAX ||
      sb__byname_insert(&b->streams, &b->n_streams, &b->streams_cap, s))
    free(s);
}

int sb__stream_open_all(sb_broker_t *b) {
  for (size_t i = 0; i < b->n_streams; i++) {
    int rc = open_journals(b, b->streams[i]);
    if (rc) return rc;
  }
  return 0;
}

void sb__stream_compact(sb_broker_t *b) {
  for (size_t i = 0; i < b->n_streams; i++) {
    if (put_stream(b, b->streams[i], NULL)) return;
    for (size_t g = 0; g < b->streams[i]->n_groups; g++)
      if (put_group(b, b->streams[i], &b->streams[i]->groups[g], NULL)) return;
  }
}

void sb__stream_sweep(sb_broker_t *b, int64_t now) {
  for (size_t i = 0; i < b->n_streams; i++) {
    for (uint32_t p = 0; p < b->streams[i]->cfg.partitions; p++)
      sb_journal_retain(b->streams[i]->j[p], 0, now);
    gj_maybe_compact(b, b->streams[i]);
  }
}

/* --- reading ------------------------------------------------------------------------------ */

/* Reads op's partition into op->records. Returns 0 (possibly with no records), or a code. */
static int read_records(sb__stream_t *s, sb__op_t *op) {
  sb_journal_t *j = s->j[op->partition];
  uint64_t first, next;
  sb_journal_bounds(j, &first, &next);
  op->count = next;
  if (op->from == SB_STREAM_LATEST) op->from = next;
  if (op->from >= next) return 0;
  if (!op->records) {
    op->records = sb_arena_alloc(&op->arena, op->n * sizeof *op->records);
    if (!op->records) return SB_ENOMEM;
  }
  sb_journal_reader_t *rd;
  int rc = sb_journal_reader_open(j, op->from, READ_BUF, &rd);
  if (rc) return rc;
  size_t bytes = 0;
  sb_journal_record_t rec;
  while (op->n_records < op->n && (op->n_records == 0 || bytes < op->max_bytes) &&
         (rc = sb_journal_reader_next(rd, &rec)) == 0) {
    sb_stream_record_t *o = &op->records[op->n_records];
    memset(o, 0, sizeof *o);
    o->partition = (uint32_t)op->partition;
    o->offset = rec.offset;
    o->timestamp_ms = rec.timestamp_ms;
    o->key = (const uint8_t *)sb__arena_copy(&op->arena, rec.key, rec.key_len);
    o->key_len = rec.key_len;
    o->value = (const uint8_t *)sb__arena_copy(&op->arena, rec.value, rec.value_len);
    o->value_len = rec.value_len;
    if (!o->key || !o->value || sb__read_attrs(&op->arena, &rec, &o->attrs, &o->n_attrs)) {
      rc = SB_ENOMEM;
      break;
    }
    bytes += rec.key_len + rec.value_len;
    op->n_records++;
    op->from = rec.offset + 1;
  }
  sb_journal_reader_close(rd);
  return rc == SB_EAGAIN ? 0 : rc;
}

static void unlink_waiter(sb__stream_t *s, sb__op_t *op) {
  sb__op_t **pp = &s->wait_first;
  sb__op_t *prev = NULL;
  while (*pp && *pp != op) {
    prev = *pp;
    pp = &(*pp)->next;
  }
  if (!*pp) return;
  *pp = op->next;
  if (s->wait_last == op) s->wait_last = prev;
  op->next = NULL;
}

/* Retries the long polls of partition p after an append. */
static void serve_waiters(sb_broker_t *b, sb__stream_t *s, uint32_t p) {
  for (sb__op_t *op = s->wait_first, *n; op; op = n) {
    n = op->next;
    if ((uint32_t)op->partition != p) continue;
    int rc = op->kind == SB__OP_STREAM_GREAD ? group_deliver(b, s, op) : read_records(s, op);
    if (rc || op->n_records) {
      unlink_waiter(s, op);
      sb__op_finish(b, op, rc);
    }
  }
}

int64_t sb__stream_due(sb_broker_t *b, uint64_t id, int64_t now) {
  sb__stream_t *s = by_id(b, id);
  if (!s) return INT64_MAX;
  s->next_deadline = INT64_MAX;
  int64_t next = INT64_MAX;
  for (sb__op_t *op = s->wait_first, *n; op; op = n) {
    n = op->next;
    if (op->waiter.deadline <= now) {
      unlink_waiter(s, op);
      sb__op_finish(b, op, 0);
    } else if (op->waiter.deadline < next) {
      next = op->waiter.deadline;
    }
  }
  s->next_deadline = next;
  return next;
}

static void end_waiters(sb_broker_t *b, sb__stream_t *s) {
  while (s->wait_first) {
    sb__op_t *op = s->wait_first;
    unlink_waiter(s, op);
    sb__op_finish(b, op, 0);
  }
}

static void run_read(sb_broker_t *b, sb__stream_t *s, sb__op_t *op) {
  int rc = op->kind == SB__OP_STREAM_GREAD ? group_deliver(b, s, op) : read_records(s, op);
  if (rc || op->n_records || op->wait_ms <= 0 || atomic_load(&b->draining)) {
    sb__op_finish(b, op, rc);
    return;
  }
  op->waiter.deadline = sb__now_ms() + op->wait_ms;
  op->next = NULL;
  if (s->wait_last)
    s->wait_last->next = op;
  else
    s->wait_first = op;
  s->wait_last = op;
  if (op->waiter.deadline < s->next_deadline) {
    s->next_deadline = op->waiter.deadline;
    sb__deadline_push(b, op->waiter.deadline, SB__STREAM_DEADLINE_BASE + s->id);
  }
}

/* --- pending lists ------------------------------------------------------------------------ */

#define PEL_COMPACT_MIN 1024 /* tombstones before a pending list is compacted */

static pentry_t *pel_find(pel_t *l, uint64_t off) {
  size_t lo = l->head, hi = l->len;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (l->e[mid].offset < off)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < l->len && l->e[lo].offset == off && !l->e[lo].gone ? &l->e[lo] : NULL;
}

/* Adds an entry; offsets arrive in increasing order (deliveries move forward). */
static int pel_add(pel_t *l, uint64_t off, uint32_t consumer, int64_t ts) {
  if (l->len && l->e[l->len - 1].offset >= off) return 0; /* replayed twice: keep the first */
  if (l->len == l->cap) {
    size_t nc = l->cap ? l->cap * 2 : 64;
    pentry_t *ne = realloc(l->e, nc * sizeof *ne);
    if (!ne) return SB_ENOMEM;
    l->e = ne;
    l->cap = nc;
  }
  l->e[l->len++] = (pentry_t){off, ts, consumer, 1, 0};
  l->live++;
  return 0;
}

/* Marks e acknowledged. compact false keeps positions stable for a caller walking the list. */
static void pel_remove(pel_t *l, pentry_t *e, bool compact) {
  e->gone = 1;
  l->live--;
  while (l->head < l->len && l->e[l->head].gone)
    l->head++;
  if (l->head == l->len) l->head = l->len = 0;
  size_t tomb = l->len - l->head - l->live;
  if (compact && tomb > PEL_COMPACT_MIN && tomb > l->live) {
    size_t w = 0;
    for (size_t i = l->head; i < l->len; i++)
      if (!l->e[i].gone) l->e[w++] = l->e[i];
    l->head = 0;
    l->len = w;
  }
}

static uint32_t consumer_idx(sgroup_t *g, const char *name) {
  for (size_t i = 0; i < g->n_consumers; i++)
    if (strcmp(g->consumers[i], name) == 0) return (uint32_t)i;
  char **nc = realloc(g->consumers, (g->n_consumers + 1) * sizeof *nc);
  if (!nc) return UINT32_MAX;
  g->consumers = nc;
  if (!(nc[g->n_consumers] = strdup(name))) return UINT32_MAX;
  return (uint32_t)g->n_consumers++;
}

/* Group journal records: key 'd' (delivered), 'c' (claimed) or 'a' (acknowledged); headers
 * "g" (group) and, for 'd' and 'c', "c" (consumer); value: u32 partition, then u64 offsets;
 * timestamp: when. Replaying them in order rebuilds every pending list.
 *
 * Compaction writes the state instead: key 's', headers "g" (group) and one "k" per consumer
 * of the group in index order; value: u32 partition, u8 reset, u64 next offset to deliver
 * (SB_STREAM_NO_OFFSET for none), then entries of u64 offset, u32 consumer index, u16
 * delivery count, i64 last delivery (ms), in offset order, at most GJ_CHUNK per record. A
 * record with reset set (the first of each partition) empties that pending list before
 * adding its entries, so whatever older records replay before it, the state after it is
 * the state it was written from. Once every 's' record is durable, the sealed segments
 * below the first are dropped. */
static int gj_write(sb_broker_t *b, sb__stream_t *s, char kind, const char *group,
                    const char *consumer, uint32_t p, const uint64_t *offs, size_t n, int64_t ts,
                    sb__ack_fn fn, void *ctx) {
  uint8_t *v = malloc(4 + 8 * n);
  if (!v) return SB_ENOMEM;
  sb__put_le(v, p, 4);
  for (size_t k = 0; k < n; k++)
    sb__put_le(v + 4 + 8 * k, offs[k], 8);
  sb_journal_header_t h[2] = {{"g", 1, group, (uint32_t)strlen(group)},
                              {"c", 1, consumer, consumer ? (uint32_t)strlen(consumer) : 0}};
  char key = kind;
  sb_journal_entry_t e = {&key, 1, v, (uint32_t)(4 + 8 * n), h, consumer ? 2 : 1, ts};
  int rc = sb__append_j(b, s->gj, &e, fn, ctx);
  free(v);
  if (!rc) s->gj_written += n;
  return rc;
}

static void gj_noop(sb_broker_t *b, void *ctx, int status, uint64_t seq) {
  (void)b, (void)ctx, (void)status, (void)seq;
}

#define GJ_CHUNK 4096       /* entries per 's' record */
#define GJ_ENTRY 22         /* bytes per entry in an 's' record */
#define GJ_COMPACT_MIN 4096 /* offsets written before compaction is considered */

static void pel_clear(pel_t *l) {
  l->head = l->len = l->live = 0;
}

/* Replays an 's' record (see above). */
static void gj_replay_state(sb__stream_t *s, const sb_journal_record_t *r) {
  if (r->value_len < 13 || (r->value_len - 13) % GJ_ENTRY) return;
  char group[SB_STREAM_GROUP_MAX + 1];
  if (!sb__rec_get(r, "g", group, sizeof group)) return;
  uint32_t p = (uint32_t)sb__get_le(r->value, 4);
  if (p >= s->cfg.partitions) return;
  sgroup_t *g = group_get(s, group, true);
  if (!g) return;
  uint32_t map[SB_JOURNAL_HEADERS_MAX];
  uint32_t n_map = 0, pos = 0;
  const uint8_t *nm, *v;
  uint16_t nl;
  uint32_t vl;
  while (n_map < SB_JOURNAL_HEADERS_MAX && sb_journal_header_next(r, &pos, &nm, &nl, &v, &vl)) {
    if (nl != 1 || nm[0] != 'k' || vl > SB_STREAM_GROUP_MAX) continue;
    char name[SB_STREAM_GROUP_MAX + 1];
    memcpy(name, v, vl);
    name[vl] = 0;
    map[n_map++] = consumer_idx(g, name);
  }
  pel_t *l = &g->pel[p];
  if (r->value[4]) {
    pel_clear(l);
    g->next_deliver[p] = sb__get_le(r->value + 5, 8);
  }
  for (uint32_t k = 13; k < r->value_len; k += GJ_ENTRY) {
    uint64_t off = sb__get_le(r->value + k, 8);
    uint32_t c = (uint32_t)sb__get_le(r->value + k + 8, 4);
    if (c >= n_map || map[c] == UINT32_MAX || pel_add(l, off, map[c], 0)) continue;
    pentry_t *e = &l->e[l->len - 1];
    if (e->offset != off) continue; /* out of order: pel_add kept the earlier one */
    e->count = (uint16_t)sb__get_le(r->value + k + 12, 2);
    e->last_ms = (int64_t)sb__get_le(r->value + k + 14, 8);
  }
}

static void gj_replay(sb__stream_t *s, const sb_journal_record_t *r) {
  if (r->key_len == 1 && r->key[0] == 's') {
    gj_replay_state(s, r);
    s->gj_written += (r->value_len - 13) / GJ_ENTRY;
    return;
  }
  if (r->key_len != 1 || r->value_len < 4 || (r->value_len - 4) % 8) return;
  s->gj_written += (r->value_len - 4) / 8;
  char group[SB_STREAM_GROUP_MAX + 1], consumer[SB_STREAM_GROUP_MAX + 1] = "";
  if (!sb__rec_get(r, "g", group, sizeof group)) return;
  bool has_c = sb__rec_get(r, "c", consumer, sizeof consumer);
  uint32_t p = (uint32_t)sb__get_le(r->value, 4);
  if (p >= s->cfg.partitions) return;
  sgroup_t *g = group_get(s, group, true);
  if (!g) return;
  uint32_t c = has_c ? consumer_idx(g, consumer) : 0;
  if (has_c && c == UINT32_MAX) return;
  pel_t *l = &g->pel[p];
  for (uint32_t k = 4; k < r->value_len; k += 8) {
    uint64_t off = sb__get_le(r->value + k, 8);
    pentry_t *e = pel_find(l, off);
    if (r->key[0] == 'd') {
      if (!e) pel_add(l, off, c, r->timestamp_ms);
      if (g->next_deliver[p] == SB_STREAM_NO_OFFSET || g->next_deliver[p] <= off)
        g->next_deliver[p] = off + 1;
    } else if (r->key[0] == 'c' && e) {
      e->consumer = c;
      if (e->count < UINT16_MAX) e->count++;
      e->last_ms = r->timestamp_ms;
    } else if (r->key[0] == 'a' && e) {
      pel_remove(l, e, true);
    }
  }
}

/* A compaction in flight: its records' acknowledgements. */
typedef struct gj_compaction {
  sb__stream_t *s;
  uint64_t first;     /* lowest offset of its records */
  size_t outstanding; /* records not yet acknowledged */
  bool failed;        /* one could not be written: keep every segment */
} gj_compaction_t;

static void gj_compacted(sb_broker_t *b, void *ctx, int status, uint64_t seq) {
  gj_compaction_t *c = ctx;
  sb__stream_t *s = c->s;
  if (status) c->failed = true;
  if (seq < c->first) c->first = seq;
  if (--c->outstanding == 0) {
    if (!c->failed && !s->deleted && !b->stopping) sb_journal_retain(s->gj, c->first, 0);
    s->gj_compacting = false;
    free(c);
  }
  if (--s->pending == 0 && s->deleted) stream_free(b, s);
}

/* Appends one 's' record of partition p's entries [from, to) of g. */
static int gj_put_state(sb_broker_t *b, sb__stream_t *s, const sgroup_t *g, uint32_t p, bool reset,
                        size_t from, size_t to, gj_compaction_t *c) {
  const pel_t *l = &g->pel[p];
  size_t n = 0;
  for (size_t i = from; i < to; i++)
    n += !l->e[i].gone;
  uint8_t *v = malloc(13 + GJ_ENTRY * n);
  sb_journal_header_t *h = malloc((g->n_consumers + 1) * sizeof *h);
  if (!v || !h) {
    free(v);
    free(h);
    return SB_ENOMEM;
  }
  sb__put_le(v, p, 4);
  v[4] = reset;
  sb__put_le(v + 5, g->next_deliver[p], 8);
  uint8_t *w = v + 13;
  for (size_t i = from; i < to; i++) {
    const pentry_t *e = &l->e[i];
    if (e->gone) continue;
    sb__put_le(w, e->offset, 8);
    sb__put_le(w + 8, e->consumer, 4);
    sb__put_le(w + 12, e->count, 2);
    sb__put_le(w + 14, (uint64_t)e->last_ms, 8);
    w += GJ_ENTRY;
  }
  h[0] = (sb_journal_header_t){"g", 1, g->name, (uint32_t)strlen(g->name)};
  for (size_t i = 0; i < g->n_consumers; i++)
    h[i + 1] = (sb_journal_header_t){"k", 1, g->consumers[i], (uint32_t)strlen(g->consumers[i])};
  char key = 's';
  sb_journal_entry_t e = {
      &key, 1, v, (uint32_t)(13 + GJ_ENTRY * n), h, (uint16_t)(g->n_consumers + 1), sb__now_ms()};
  int rc = sb__append_j(b, s->gj, &e, gj_compacted, c);
  free(v);
  free(h);
  if (!rc) {
    c->outstanding++;
    s->pending++;
  }
  return rc;
}

/* Rewrites the group journal's state when replaying it has become much longer than the
 * state itself (more offsets written than four times the pending entries, and at least
 * GJ_COMPACT_MIN). */
static void gj_maybe_compact(sb_broker_t *b, sb__stream_t *s) {
  if (!s->gj || s->gj_compacting || s->deleted || s->gj_written < GJ_COMPACT_MIN) return;
  uint64_t live = 0;
  for (size_t i = 0; i < s->n_groups; i++) {
    if (s->groups[i].n_consumers + 1 > SB_JOURNAL_HEADERS_MAX) return; /* too many to name */
    for (uint32_t p = 0; p < s->cfg.partitions; p++)
      live += s->groups[i].pel[p].live;
  }
  if (s->gj_written <= 4 * live) return;
  gj_compaction_t *c = calloc(1, sizeof *c);
  if (!c) return;
  *c = (gj_compaction_t){s, UINT64_MAX, 1, false}; /* 1: held until every record is queued */
  s->pending++;
  s->gj_compacting = true;
  int rc = 0;
  for (size_t i = 0; i < s->n_groups && !rc; i++) {
    const sgroup_t *g = &s->groups[i];
    for (uint32_t p = 0; p < s->cfg.partitions && !rc; p++) {
      const pel_t *l = &g->pel[p];
      size_t from = l->head;
      do {
        size_t to = from + GJ_CHUNK < l->len ? from + GJ_CHUNK : l->len;
        rc = gj_put_state(b, s, g, p, from == l->head, from, to, c);
        from = to;
      } while (!rc && from < l->len);
    }
  }
  if (rc) c->failed = true;
  s->gj_written = live;
  gj_compacted(b, c, 0, UINT64_MAX); /* releases the hold */
}

static int open_groups(sb_broker_t *b, sb__stream_t *s) {
  sb_journal_opts_t jo;
  sb__journal_opts(b, SB_BROKER_FSYNC_ALWAYS, 0, &jo);
  char path[SB__BROKER_PATH_CAP];
  snprintf(path, sizeof path, "%s/s-%020" PRIu64 "-g", b->dir, s->id);
  int rc = sb_journal_open(path, &jo, &s->gj);
  if (rc) return rc;
  sb_journal_reader_t *rd;
  if ((rc = sb_journal_reader_open(s->gj, 0, READ_BUF, &rd))) return rc;
  sb_journal_record_t r;
  while ((rc = sb_journal_reader_next(rd, &r)) == 0)
    gj_replay(s, &r);
  sb_journal_reader_close(rd);
  return rc == SB_EAGAIN ? 0 : rc;
}

/* Hands the group's next records of op's partition to op's consumer. Returns 0 or a code. */
static int group_deliver(sb_broker_t *b, sb__stream_t *s, sb__op_t *op) {
  sgroup_t *g = group_get(s, op->name2, true);
  if (!g) return SB_ENOMEM;
  uint32_t p = (uint32_t)op->partition;
  uint32_t c = consumer_idx(g, op->attr_name);
  if (c == UINT32_MAX) return SB_ENOMEM;
  if (g->next_deliver[p] == SB_STREAM_NO_OFFSET)
    g->next_deliver[p] = g->off[p] == SB_STREAM_NO_OFFSET ? 0 : g->off[p];
  op->from = g->next_deliver[p];
  size_t before = op->n_records;
  int rc = read_records(s, op);
  if (rc || op->n_records == before) return rc;
  int64_t now = sb__now_ms();
  uint64_t *offs = sb_arena_alloc(&op->arena, (op->n_records - before) * sizeof *offs);
  if (!offs) return SB_ENOMEM;
  for (size_t i = before; i < op->n_records; i++) {
    if ((rc = pel_add(&g->pel[p], op->records[i].offset, c, now))) return rc;
    op->records[i].deliveries = 1;
    offs[i - before] = op->records[i].offset;
  }
  g->next_deliver[p] = op->from;
  gj_write(b, s, 'd', g->name, op->attr_name, p, offs, op->n_records - before, now, gj_noop, NULL);
  return 0;
}

static void acked(sb_broker_t *b, void *ctx, int status, uint64_t seq) {
  (void)seq;
  sb__op_finish(b, ctx, status);
}

static void run_ack(sb_broker_t *b, sb__stream_t *s, sb__op_t *op) {
  sgroup_t *g = group_get(s, op->name2, false);
  uint32_t p = (uint32_t)op->partition;
  op->count = 0;
  for (size_t i = 0; g && i < op->n_offsets; i++) {
    pentry_t *e = pel_find(&g->pel[p], op->offsets[i]);
    if (!e) continue;
    pel_remove(&g->pel[p], e, true);
    op->count++;
  }
  uint64_t *offs = op->offsets;
  size_t n = op->n_offsets;
  op->offsets = NULL;
  op->n_offsets = 0;
  int rc = g && op->count ? gj_write(b, s, 'a', g->name, NULL, p, offs, n, 0, acked, op) : 0;
  if (rc || !g || !op->count) sb__op_finish(b, op, rc);
}

static void run_claim(sb_broker_t *b, sb__stream_t *s, sb__op_t *op) {
  sgroup_t *g = group_get(s, op->name2, false);
  uint32_t p = (uint32_t)op->partition;
  op->count = 0;
  if (!g) {
    sb__op_finish(b, op, 0);
    return;
  }
  uint32_t c = consumer_idx(g, op->attr_name);
  pel_t *l = &g->pel[p];
  op->records = sb_arena_alloc(&op->arena, op->n * sizeof *op->records);
  uint64_t *offs = sb_arena_alloc(&op->arena, op->n * sizeof *offs);
  if (c == UINT32_MAX || !op->records || !offs) {
    sb__op_finish(b, op, SB_ENOMEM);
    return;
  }
  int64_t now = sb__now_ms();
  size_t max = op->n, i = l->head;
  while (i < l->len && l->e[i].offset < op->from)
    i++;
  for (; i < l->len && op->n_records < max; i++) {
    pentry_t *e = &l->e[i];
    if (e->gone || now - e->last_ms < op->ts) continue;
    size_t k = op->n_records;
    op->from = e->offset;
    op->n = k + 1; /* read exactly this record */
    int rc = read_records(s, op);
    op->n = max;
    if (rc || op->n_records == k || op->records[k].offset != e->offset) {
      /* The record is gone (retention): it can never be processed, so it leaves the list. */
      op->n_records = k;
      pel_remove(l, e, false);
      continue;
    }
    e->consumer = c;
    if (e->count < UINT16_MAX) e->count++;
    e->last_ms = now;
    op->records[k].deliveries = e->count;
    offs[k] = e->offset;
  }
  op->count = i < l->len ? l->e[i].offset : 0;
  if (op->n_records)
    gj_write(b, s, 'c', g->name, op->attr_name, p, offs, op->n_records, now, gj_noop, NULL);
  sb__op_finish(b, op, 0);
}

static void run_pending(sb_broker_t *b, sb__stream_t *s, sb__op_t *op) {
  sgroup_t *g = group_get(s, op->name2, false);
  uint32_t p = (uint32_t)op->partition;
  op->count = g ? g->pel[p].live : 0;
  op->pending = sb_arena_alloc(&op->arena, (op->n + 1) * sizeof *op->pending);
  if (!op->pending) {
    sb__op_finish(b, op, SB_ENOMEM);
    return;
  }
  int64_t now = sb__now_ms();
  for (size_t i = g ? g->pel[p].head : 0; g && i < g->pel[p].len && op->n_pending < op->n; i++) {
    pentry_t *e = &g->pel[p].e[i];
    if (e->gone) continue;
    op->pending[op->n_pending++] =
        (sb_stream_pending_t){p, e->offset, g->consumers[e->consumer], e->count, now - e->last_ms};
  }
  sb__op_finish(b, op, 0);
}

/* --- appending ---------------------------------------------------------------------------- */

typedef struct app_ctx {
  sb__op_t *op;
  sb__stream_t *s;
  uint32_t p;
} app_ctx_t;

static void appended(sb_broker_t *b, void *ctx, int status, uint64_t off) {
  app_ctx_t *c = ctx; /* lives in op's arena: read it before op is finished */
  sb__stream_t *s = c->s;
  sb__op_t *op = c->op;
  uint32_t part = c->p;
  if (status == 0) {
    op->records = sb_arena_alloc(&op->arena, sizeof *op->records);
    if (op->records) {
      memset(op->records, 0, sizeof *op->records);
      op->records[0].partition = part;
      op->records[0].offset = off;
      op->records[0].timestamp_ms = op->ts;
      op->n_records = 1;
    }
  }
  sb__op_finish(b, op, status);
  if (--s->pending == 0 && s->deleted) {
    stream_free(b, s);
    return;
  }
  /* While the broker shuts down the journals are closed and no one waits any more. */
  if (status == 0 && !s->deleted && !b->stopping) serve_waiters(b, s, part);
}

static void run_append(sb_broker_t *b, sb__stream_t *s, sb__op_t *op) {
  uint32_t p;
  if (op->partition >= 0) {
    if ((uint32_t)op->partition >= s->cfg.partitions) {
      sb__op_finish(b, op, SB_EINVAL);
      return;
    }
    p = (uint32_t)op->partition;
  } else if (op->key_len) {
    p = (uint32_t)(sb_fnv1a(SB_FNV_SEED, op->key, op->key_len) % s->cfg.partitions);
  } else {
    p = s->rr++ % s->cfg.partitions;
  }
  const sb_broker_msg_t *m = &op->msgs[0];
  sb__hdrs_t hs;
  hs.n = 0;
  int rc = 0;
  for (size_t k = 0; k < m->n_attrs && !rc; k++)
    rc = sb__hdr_add_attr(&hs, &op->arena, &m->attrs[k]);
  if (!op->ts) op->ts = sb__now_ms();
  app_ctx_t *c = sb_arena_alloc(&op->arena, sizeof *c);
  if (!rc && !c) rc = SB_ENOMEM;
  if (rc) {
    sb__op_finish(b, op, rc);
    return;
  }
  *c = (app_ctx_t){op, s, p};
  sb_journal_entry_t e = {op->key, (uint32_t)op->key_len, m->body, (uint32_t)m->body_len,
                          hs.h,    (uint16_t)hs.n,        op->ts};
  rc = sb__append_j(b, s->j[p], &e, appended, c);
  if (rc) {
    sb__op_finish(b, op, rc);
    return;
  }
  s->pending++;
}

/* --- management --------------------------------------------------------------------------- */

static const sb_stream_info_t *info(sb__op_t *op, const sb__stream_t *s) {
  sb_stream_info_t *in = sb_arena_alloc(&op->arena, sizeof *in);
  uint32_t n = s->cfg.partitions;
  uint64_t *first = sb_arena_alloc(&op->arena, n * sizeof *first);
  uint64_t *next = sb_arena_alloc(&op->arena, n * sizeof *next);
  sb_stream_group_info_t *g = sb_arena_alloc(&op->arena, (s->n_groups + 1) * sizeof *g);
  if (!in || !first || !next || !g) return NULL;
  for (uint32_t p = 0; p < n; p++)
    sb_journal_bounds(s->j[p], &first[p], &next[p]);
  for (size_t i = 0; i < s->n_groups; i++) {
    g[i].name = sb_arena_strndup(&op->arena, s->groups[i].name, strlen(s->groups[i].name));
    uint64_t *c = sb_arena_alloc(&op->arena, n * sizeof *c);
    if (!g[i].name || !c) return NULL;
    memcpy(c, s->groups[i].off, n * sizeof *c);
    g[i].committed = c;
    g[i].lag = 0;
    for (uint32_t p = 0; p < n; p++) {
      uint64_t from = c[p] == SB_STREAM_NO_OFFSET ? first[p] : c[p];
      if (from < first[p]) from = first[p];
      if (next[p] > from) g[i].lag += next[p] - from;
    }
  }
  in->name = sb_arena_strndup(&op->arena, s->name, strlen(s->name));
  in->config = s->cfg;
  in->first = first;
  in->next = next;
  in->groups = g;
  in->n_groups = s->n_groups;
  in->created_ms = s->created_ms;
  return in->name ? in : NULL;
}

static void run_create(sb_broker_t *b, sb__op_t *op) {
  sb__stream_t *s = find(b, op->name);
  if (s) {
    if (memcmp(&s->cfg, &op->scfg, sizeof s->cfg) != 0) {
      sb__op_finish(b, op, SB_ESTATE);
      return;
    }
    op->stream_info = info(op, s);
    sb__op_finish(b, op, op->stream_info ? 0 : SB_ENOMEM);
    return;
  }
  s = calloc(1, sizeof *s);
  if (!s) {
    sb__op_finish(b, op, SB_ENOMEM);
    return;
  }
  snprintf(s->name, sizeof s->name, "%s", op->name);
  s->id = b->next_queue_id++;
  s->cfg = op->scfg;
  s->created_ms = sb__now_ms();
  s->next_deadline = INT64_MAX;
  int rc = open_journals(b, s);
  if (!rc) rc = sb__byname_insert(&b->streams, &b->n_streams, &b->streams_cap, s);
  if (rc) {
    s->deleted = true;
    stream_free(b, s);
    sb__op_finish(b, op, rc);
    return;
  }
  op->stream_info = info(op, s);
  if ((rc = put_stream(b, s, op))) {
    sb__byname_remove(b->streams, &b->n_streams, s);
    s->deleted = true;
    stream_free(b, s);
    op->stream_info = NULL;
    sb__op_finish(b, op, rc);
  }
}

static void run_delete(sb_broker_t *b, sb__stream_t *s, sb__op_t *op) {
  sb__rec_t *r = calloc(1, sizeof *r);
  int rc = r ? 0 : SB_ENOMEM;
  if (!rc) {
    sb__rec_num(r, "id", (int64_t)s->id);
    rc = sb__catalog_append(b, 'X', s->name, r, op);
  }
  free(r);
  if (rc) {
    sb__op_finish(b, op, rc);
    return;
  }
  sb__byname_remove(b->streams, &b->n_streams, s);
  s->deleted = true;
  end_waiters(b, s);
  if (!s->pending) stream_free(b, s);
}

static void run_commit(sb_broker_t *b, sb__stream_t *s, sb__op_t *op) {
  if (op->n_offsets > s->cfg.partitions) {
    sb__op_finish(b, op, SB_EINVAL);
    return;
  }
  sgroup_t *g = group_get(s, op->name2, true);
  if (!g) {
    sb__op_finish(b, op, SB_ENOMEM);
    return;
  }
  for (size_t p = 0; p < op->n_offsets; p++)
    if (op->offsets[p] != SB_STREAM_NO_OFFSET) g->off[p] = op->offsets[p];
  op->offsets = NULL;
  op->n_offsets = 0;
  int rc = put_group(b, s, g, op);
  if (rc) sb__op_finish(b, op, rc);
}

void sb__stream_run(sb_broker_t *b, sb__op_t *op) {
  if (op->kind == SB__OP_STREAM_CREATE) {
    run_create(b, op);
    return;
  }
  if (op->kind == SB__OP_STREAM_LIST) {
    sb__run_list(b, op, b->streams, b->n_streams);
    return;
  }
  sb__stream_t *s = find(b, op->name);
  if (!s) {
    sb__op_finish(b, op, SB_ENOTFOUND);
    return;
  }
  if ((op->kind == SB__OP_STREAM_READ || op->kind == SB__OP_STREAM_TIME ||
       op->kind == SB__OP_STREAM_GREAD || op->kind == SB__OP_STREAM_ACK ||
       op->kind == SB__OP_STREAM_CLAIM || op->kind == SB__OP_STREAM_PENDING) &&
      (uint32_t)op->partition >= s->cfg.partitions) {
    sb__op_finish(b, op, SB_EINVAL);
    return;
  }
  switch (op->kind) {
  case SB__OP_STREAM_DELETE:
    run_delete(b, s, op);
    break;
  case SB__OP_STREAM_GET:
    op->stream_info = info(op, s);
    sb__op_finish(b, op, op->stream_info ? 0 : SB_ENOMEM);
    break;
  case SB__OP_STREAM_APPEND:
    run_append(b, s, op);
    break;
  case SB__OP_STREAM_READ:
  case SB__OP_STREAM_GREAD:
    run_read(b, s, op);
    break;
  case SB__OP_STREAM_ACK:
    run_ack(b, s, op);
    break;
  case SB__OP_STREAM_CLAIM:
    run_claim(b, s, op);
    break;
  case SB__OP_STREAM_PENDING:
    run_pending(b, s, op);
    break;
  case SB__OP_STREAM_TIME: {
    sb_journal_reader_t *rd;
    int rc = sb_journal_reader_open(s->j[op->partition], 0, READ_BUF, &rd);
    if (rc) {
      sb__op_finish(b, op, rc);
      break;
    }
    uint64_t first, next;
    sb_journal_bounds(s->j[op->partition], &first, &next);
    op->count = next;
    rc = sb_journal_reader_seek_time(rd, op->ts);
    sb_journal_record_t rec;
    if (!rc && sb_journal_reader_next(rd, &rec) == 0) op->count = rec.offset;
    sb_journal_reader_close(rd);
    sb__op_finish(b, op, rc);
    break;
  }
  case SB__OP_STREAM_COMMIT:
    run_commit(b, s, op);
    break;
  case SB__OP_STREAM_COMMITTED: {
    sgroup_t *g = group_get(s, op->name2, false);
    op->offsets = sb_arena_alloc(&op->arena, s->cfg.partitions * sizeof *op->offsets);
    if (!op->offsets) {
      sb__op_finish(b, op, SB_ENOMEM);
      break;
    }
    for (uint32_t p = 0; p < s->cfg.partitions; p++)
      op->offsets[p] = g ? g->off[p] : SB_STREAM_NO_OFFSET;
    op->n_offsets = s->cfg.partitions;
    sb__op_finish(b, op, 0);
    break;
  }
  default:
    sb__op_finish(b, op, SB_EINVAL);
  }
}

void sb__stream_end_waits(sb_broker_t *b) {
  for (size_t i = 0; i < b->n_streams; i++)
    end_waiters(b, b->streams[i]);
}

void sb__stream_close_all(sb_broker_t *b) {
  for (size_t i = 0; i < b->n_streams; i++) {
    sb__stream_t *s = b->streams[i];
    end_waiters(b, s);
    for (uint32_t p = 0; s->j && p < s->cfg.partitions; p++) {
      if (s->j[p]) sb_journal_close(s->j[p]);
      s->j[p] = NULL;
    }
    if (s->gj) sb_journal_close(s->gj);
    s->gj = NULL;
  }
}

void sb__stream_free_all(sb_broker_t *b) {
  for (size_t i = 0; i < b->n_streams; i++)
    stream_free(b, b->streams[i]);
  free(b->streams);
  b->streams = NULL;
  b->n_streams = b->streams_cap = 0;
}

/* --- public entry points ------------------------------------------------------------------ */

void sb_stream_config_default(sb_stream_config_t *c) {
  memset(c, 0, sizeof *c);
  c->partitions = 1;
  c->fsync = SB_BROKER_FSYNC_ALWAYS;
}

int sb_stream_create(sb_broker_t *b, const char *name, const sb_stream_config_t *c, sb_broker_cb cb,
                     void *arg) {
  if (!c || sb_broker_check_name(name, false) || c->partitions < 1 ||
      c->partitions > SB_STREAM_PARTITIONS_MAX || c->fsync > SB_BROKER_FSYNC_NEVER ||
      (c->segment_bytes && (c->segment_bytes < SB_JOURNAL_SEGMENT_BYTES_MIN ||
                            c->segment_bytes > SB_JOURNAL_SEGMENT_BYTES_MAX)))
    return SB_EINVAL;
  sb__op_t *op;
  int rc = sb__name_op(b, SB__OP_STREAM_CREATE, name, cb, arg, &op);
  if (rc) return rc;
  op->scfg = *c;
  return sb__post(b, op);
}

int sb_stream_delete(sb_broker_t *b, const char *name, sb_broker_cb cb, void *arg) {
  return sb__simple_op(b, SB__OP_STREAM_DELETE, name, cb, arg);
}

int sb_stream_get(sb_broker_t *b, const char *name, sb_broker_cb cb, void *arg) {
  return sb__simple_op(b, SB__OP_STREAM_GET, name, cb, arg);
}

int sb_stream_list(sb_broker_t *b, const char *prefix, const char *after, size_t max,
                   sb_broker_cb cb, void *arg) {
  return sb__list_op(b, SB__OP_STREAM_LIST, prefix, after, max, cb, arg);
}

int sb_stream_append(sb_broker_t *b, const char *stream, int32_t partition, const void *key,
                     size_t key_len, const sb_broker_msg_t *m, int64_t timestamp_ms,
                     sb_broker_cb cb, void *arg) {
  if (!m || sb__check_msg(m) || partition < -1 || key_len > SB_STREAM_KEY_MAX ||
      (key_len && !key) || timestamp_ms < 0)
    return SB_EINVAL;
  sb__op_t *op;
  int rc = sb__name_op(b, SB__OP_STREAM_APPEND, stream, cb, arg, &op);
  if (rc) return rc;
  op->partition = partition;
  op->ts = timestamp_ms;
  op->msgs = sb_arena_alloc(&op->arena, sizeof *op->msgs);
  rc = op->msgs ? sb__copy_msg(&op->arena, m, op->msgs) : SB_ENOMEM;
  if (!rc && key_len) {
    op->key = (uint8_t *)sb__arena_copy(&op->arena, key, key_len);
    op->key_len = key_len;
    if (!op->key) rc = SB_ENOMEM;
  }
  if (rc) {
    sb__op_free(op);
    return rc;
  }
  return sb__post(b, op);
}

int sb_stream_read(sb_broker_t *b, const char *stream, uint32_t partition, uint64_t offset,
                   size_t max_records, size_t max_bytes, int64_t wait_ms, sb_broker_cb cb,
                   void *arg) {
  if (max_records < 1 || max_records > 10000 || wait_ms < 0 || wait_ms > SB_BROKER_WAIT_MAX_MS ||
      partition >= SB_STREAM_PARTITIONS_MAX)
    return SB_EINVAL;
  sb__op_t *op;
  int rc = sb__name_op(b, SB__OP_STREAM_READ, stream, cb, arg, &op);
  if (rc) return rc;
  op->partition = (int32_t)partition;
  op->from = offset;
  op->n = max_records;
  op->max_bytes = max_bytes;
  op->wait_ms = wait_ms;
  return sb__post(b, op);
}

int sb_stream_offset_for_time(sb_broker_t *b, const char *stream, uint32_t partition, int64_t ts_ms,
                              sb_broker_cb cb, void *arg) {
  if (partition >= SB_STREAM_PARTITIONS_MAX) return SB_EINVAL;
  sb__op_t *op;
  int rc = sb__name_op(b, SB__OP_STREAM_TIME, stream, cb, arg, &op);
  if (rc) return rc;
  op->partition = (int32_t)partition;
  op->ts = ts_ms;
  return sb__post(b, op);
}

static int group_op(sb_broker_t *b, sb__op_kind_t kind, const char *stream, const char *group,
                    sb_broker_cb cb, void *arg, sb__op_t **out) {
  if (!group || !*group || strlen(group) > SB_STREAM_GROUP_MAX || strchr(group, '/'))
    return SB_EINVAL;
  int rc = sb__name_op(b, kind, stream, cb, arg, out);
  if (rc) return rc;
  snprintf((*out)->name2, sizeof(*out)->name2, "%s", group);
  return 0;
}

int sb_stream_commit(sb_broker_t *b, const char *stream, const char *group, const uint64_t *offsets,
                     size_t n, sb_broker_cb cb, void *arg) {
  if (!offsets || n < 1 || n > SB_STREAM_PARTITIONS_MAX) return SB_EINVAL;
  sb__op_t *op;
  int rc = group_op(b, SB__OP_STREAM_COMMIT, stream, group, cb, arg, &op);
  if (rc) return rc;
  op->offsets = sb_arena_alloc(&op->arena, n * sizeof *op->offsets);
  if (!op->offsets) {
    sb__op_free(op);
    return SB_ENOMEM;
  }
  memcpy(op->offsets, offsets, n * sizeof *op->offsets);
  op->n_offsets = n;
  return sb__post(b, op);
}

int sb_stream_committed(sb_broker_t *b, const char *stream, const char *group, sb_broker_cb cb,
                        void *arg) {
  sb__op_t *op;
  int rc = group_op(b, SB__OP_STREAM_COMMITTED, stream, group, cb, arg, &op);
  return rc ? rc : sb__post(b, op);
}

int sb_stream_group_read(sb_broker_t *b, const char *stream, const char *group,
                         const char *consumer, uint32_t partition, size_t max, int64_t wait_ms,
                         sb_broker_cb cb, void *arg) {
  if (!consumer || !*consumer || strlen(consumer) > SB_STREAM_GROUP_MAX || max < 1 || max > 10000 ||
      wait_ms < 0 || wait_ms > SB_BROKER_WAIT_MAX_MS || partition >= SB_STREAM_PARTITIONS_MAX)
    return SB_EINVAL;
  sb__op_t *op;
  int rc = group_op(b, SB__OP_STREAM_GREAD, stream, group, cb, arg, &op);
  if (rc) return rc;
  op->attr_name = sb_arena_strndup(&op->arena, consumer, strlen(consumer));
  if (!op->attr_name) {
    sb__op_free(op);
    return SB_ENOMEM;
  }
  op->partition = (int32_t)partition;
  op->n = max;
  op->max_bytes = SIZE_MAX;
  op->wait_ms = wait_ms;
  return sb__post(b, op);
}

int sb_stream_ack(sb_broker_t *b, const char *stream, const char *group, uint32_t partition,
                  const uint64_t *offsets, size_t n, sb_broker_cb cb, void *arg) {
  if (!offsets || n < 1 || n > 10000 || partition >= SB_STREAM_PARTITIONS_MAX) return SB_EINVAL;
  sb__op_t *op;
  int rc = group_op(b, SB__OP_STREAM_ACK, stream, group, cb, arg, &op);
  if (rc) return rc;
  op->partition = (int32_t)partition;
  op->offsets = sb_arena_alloc(&op->arena, n * sizeof *op->offsets);
  if (!op->offsets) {
    sb__op_free(op);
    return SB_ENOMEM;
  }
  memcpy(op->offsets, offsets, n * sizeof *op->offsets);
  op->n_offsets = n;
  return sb__post(b, op);
}

int sb_stream_claim(sb_broker_t *b, const char *stream, const char *group, const char *consumer,
                    uint32_t partition, int64_t min_idle_ms, uint64_t start, size_t max,
                    sb_broker_cb cb, void *arg) {
  if (!consumer || !*consumer || strlen(consumer) > SB_STREAM_GROUP_MAX || max < 1 || max > 10000 ||
      min_idle_ms < 0 || partition >= SB_STREAM_PARTITIONS_MAX)
    return SB_EINVAL;
  sb__op_t *op;
  int rc = group_op(b, SB__OP_STREAM_CLAIM, stream, group, cb, arg, &op);
  if (rc) return rc;
  op->attr_name = sb_arena_strndup(&op->arena, consumer, strlen(consumer));
  if (!op->attr_name) {
    sb__op_free(op);
    return SB_ENOMEM;
  }
  op->partition = (int32_t)partition;
  op->ts = min_idle_ms;
  op->from = start;
  op->n = max;
  op->max_bytes = SIZE_MAX;
  return sb__post(b, op);
}

int sb_stream_pending(sb_broker_t *b, const char *stream, const char *group, uint32_t partition,
                      size_t max, sb_broker_cb cb, void *arg) {
  if (max < 1 || max > 10000 || partition >= SB_STREAM_PARTITIONS_MAX) return SB_EINVAL;
  sb__op_t *op;
  int rc = group_op(b, SB__OP_STREAM_PENDING, stream, group, cb, arg, &op);
  if (rc) return rc;
  op->partition = (int32_t)partition;
  op->n = max;
  return sb__post(b, op);
}
