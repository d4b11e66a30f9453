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

typedef struct sgroup {
  char name[SB_STREAM_GROUP_MAX + 1];
  uint64_t *off; /* per partition, SB_STREAM_NO_OFFSET when none; owned */
} sgroup_t;

struct sb__stream {
  char name[SB_BROKER_NAME_MAX + 1]; /* first member: sb__byname_* index it */
  uint64_t id;                       /* directory number */
  sb_stream_config_t cfg;            /* configuration */
  int64_t created_ms;                /* creation time */
  sb_journal_t **j;                  /* cfg.partitions journals; owned */
  uint32_t rr;                       /* round-robin partition for key-less appends */
  sgroup_t *groups;                  /* committed offsets by group; owned */
  size_t n_groups;                   /* count */
  sb__op_t *wait_first, *wait_last;  /* long-poll reads, oldest first (linked by op->next) */
  uint64_t pending;                  /* appends whose acknowledgement is not processed yet */
  bool deleted;                      /* unlisted; freed at pending == 0 */
  int64_t next_deadline;             /* earliest long-poll deadline registered */
};

static sb__stream_t *find(sb_broker_t *b, const char *name) {
  bool found;
  size_t i = sb__byname_pos(b->streams, b->n_streams, name, &found);
  return found ? b->streams[i] : NULL;
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
  for (size_t i = 0; i < s->n_groups; i++)
    free(s->groups[i].off);
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
  return 0;
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
  if (!g->off) return NULL;
  for (uint32_t p = 0; p < s->cfg.partitions; p++)
    g->off[p] = SB_STREAM_NO_OFFSET;
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
  for (size_t i = 0; i < b->n_streams; i++)
    for (uint32_t p = 0; p < b->streams[i]->cfg.partitions; p++)
      sb_journal_retain(b->streams[i]->j[p], 0, now);
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
    int rc = read_records(s, op);
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
  int rc = read_records(s, op);
  if (rc || op->n_records || op->wait_ms <= 0) {
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
  if ((op->kind == SB__OP_STREAM_READ || op->kind == SB__OP_STREAM_TIME) &&
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
    run_read(b, s, op);
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

void sb__stream_close_all(sb_broker_t *b) {
  for (size_t i = 0; i < b->n_streams; i++) {
    sb__stream_t *s = b->streams[i];
    end_waiters(b, s);
    for (uint32_t p = 0; s->j && p < s->cfg.partitions; p++) {
      if (s->j[p]) sb_journal_close(s->j[p]);
      s->j[p] = NULL;
    }
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
