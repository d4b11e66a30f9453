/*
 * The broker thread: its inbox of operations, the catalog of queues and move tasks, deadline
 * scheduling, and the public entry points (broker.h). Queue semantics live in queue.c,
 * redrive in move.c; formats in broker_int.h.
 *
 * Every public function allocates an sb__op_t holding copies of its arguments and appends it
 * to the inbox under b->mu; the broker thread drains the inbox on its loop. Journal
 * acknowledgements (which the journal calls on its writer threads) travel the same way, in a
 * list of their own whose nodes were allocated with the append (struct sb__ack), so all
 * broker state is touched by the broker thread alone and the writers allocate nothing.
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "broker/broker_int.h"
#include "switchboard/error.h"
#include "switchboard/log.h"

int64_t sb__now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sb_broker_opts_default(sb_broker_opts_t *o) {
  memset(o, 0, sizeof *o);
  o->data_dir = "data";
}

void sb_queue_config_default(sb_queue_config_t *c) {
  memset(c, 0, sizeof *c);
  c->visibility_ms = 30000;
  c->retention_ms = 345600000ull;
  c->max_message_bytes = 262144;
  c->fsync = SB_BROKER_FSYNC_ALWAYS;
}

int sb_broker_check_name(const char *name, bool fifo) {
  size_t n = name ? strlen(name) : 0;
  if (n < 1 || n > SB_BROKER_NAME_MAX) return SB_EINVAL;
  size_t body = n;
  bool has_fifo = n > 5 && strcmp(name + n - 5, ".fifo") == 0;
  if (has_fifo != fifo) return SB_EINVAL;
  if (has_fifo) body -= 5;
  for (size_t i = 0; i < body; i++) {
    char c = name[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
          c == '_'))
      return SB_EINVAL;
  }
  return 0;
}

static int check_config(const sb_queue_config_t *c) {
  if (c->visibility_ms > SB_BROKER_VISIBILITY_MAX_MS || c->delay_ms > SB_BROKER_DELAY_MAX_MS ||
      c->receive_wait_ms > SB_BROKER_WAIT_MAX_MS || c->max_message_bytes < 1 ||
      c->max_message_bytes > SB_BROKER_MESSAGE_MAX || c->retention_ms < 1 ||
      c->fsync > SB_BROKER_FSYNC_NEVER)
    return SB_EINVAL;
  if (c->content_dedup && !c->fifo) return SB_EINVAL;
  if (c->dead_letter[0] && sb_broker_check_name(c->dead_letter, c->fifo)) return SB_EINVAL;
  if (c->max_receive_count && !c->dead_letter[0]) return SB_EINVAL;
  return 0;
}

/* --- operations and the inbox ------------------------------------------------------------- */

sb__op_t *sb__op_new(sb__op_kind_t kind, sb_broker_cb cb, void *arg) {
  sb__op_t *op = calloc(1, sizeof *op);
  if (!op) return NULL;
  op->kind = kind;
  op->cb = cb;
  op->arg = arg;
  sb_arena_init(&op->arena);
  return op;
}

void sb__op_free(sb__op_t *op) {
  sb_arena_free(&op->arena);
  free(op);
}

/* Queues op for the broker thread. */
int sb__post(sb_broker_t *b, sb__op_t *op) {
  pthread_mutex_lock(&b->mu);
  if (b->closing) {
    pthread_mutex_unlock(&b->mu);
    sb__op_free(op);
    return SB_ESTATE;
  }
  op->next = NULL;
  if (b->inbox_last)
    b->inbox_last->next = op;
  else
    b->inbox_first = op;
  b->inbox_last = op;
  pthread_mutex_unlock(&b->mu);
  uv_async_send(&b->wake);
  return 0;
}

/* One journal append's continuation, allocated with the append. The writer thread fills in
 * the outcome and links it into the broker's acknowledgement list (which passes even while
 * closing: the journals' final acknowledgements must arrive); the broker thread runs fn and
 * frees it. Nothing is allocated on the writer thread. */
struct sb__ack {
  sb__ack_t *next;
  sb_broker_t *b;
  sb__queue_t *q; /* whose pending count it settles, or NULL */
  sb__ack_fn fn;
  void *ctx;
  int status;
  uint64_t seq;
};

/* On a journal's writer thread: hand the acknowledgement to the broker thread. */
static void journal_acked(void *arg, int status, uint64_t offset) {
  sb__ack_t *a = arg;
  sb_broker_t *b = a->b;
  a->status = status;
  a->seq = offset;
  a->next = NULL;
  pthread_mutex_lock(&b->mu);
  if (b->acks_last)
    b->acks_last->next = a;
  else
    b->acks_first = a;
  b->acks_last = a;
  pthread_mutex_unlock(&b->mu);
  uv_async_send(&b->wake);
}

/* Broker thread: runs and frees a list of acknowledgements, in order. */
static void run_acks(sb_broker_t *b, sb__ack_t *a) {
  while (a) {
    sb__ack_t *next = a->next;
    sb__queue_t *q = a->q;
    a->fn(b, a->ctx, a->status, a->seq);
    if (q && a->status == 0 && a->seq >= q->applied) q->applied = a->seq + 1;
    if (q) sb__queue_unpend(b, q);
    free(a);
    a = next;
  }
}

/* Appends e to j with continuation fn(ctx) on the broker thread; q (or NULL) is the queue
 * whose pending count the acknowledgement settles. */
static int append_to(sb_broker_t *b, sb_journal_t *j, sb__queue_t *q, const sb_journal_entry_t *e,
                     sb__ack_fn fn, void *ctx) {
  if (!j || b->stopping) return SB_ESTATE;
  sb__ack_t *a = malloc(sizeof *a);
  if (!a) return SB_ENOMEM;
  *a = (sb__ack_t){.b = b, .q = q, .fn = fn, .ctx = ctx};
  int rc = sb_journal_append(j, e, journal_acked, a);
  if (rc) free(a);
  return rc;
}

int sb__append_j(sb_broker_t *b, sb_journal_t *j, const sb_journal_entry_t *e, sb__ack_fn fn,
                 void *ctx) {
  return append_to(b, j, NULL, e, fn, ctx);
}

int sb__append(sb_broker_t *b, sb__queue_t *q, const sb_journal_entry_t *e, sb__ack_fn fn,
               void *ctx) {
  int rc = append_to(b, q ? q->j : b->catalog, q, e, fn, ctx);
  if (rc) return rc;
  if (q)
    q->pending++;
  else
    b->catalog_pending++;
  return 0;
}

/* --- queues by name and id ---------------------------------------------------------------- */

sb__queue_t *sb__queue_find(sb_broker_t *b, const char *name) {
  bool found;
  size_t i = sb__byname_pos(b->queues, b->n_queues, name, &found);
  return found ? b->queues[i] : NULL;
}

sb__queue_t *sb__queue_by_id(sb_broker_t *b, uint64_t id) {
  for (size_t i = 0; i < b->n_queues; i++)
    if (b->queues[i]->id == id) return b->queues[i];
  for (size_t i = 0; i < b->n_dead; i++)
    if (b->dead[i]->id == id) return b->dead[i];
  return NULL;
}

static int queue_insert(sb_broker_t *b, sb__queue_t *q) {
  return sb__byname_insert(&b->queues, &b->n_queues, &b->queues_cap, q);
}

static void queue_unlist(sb_broker_t *b, sb__queue_t *q) {
  sb__byname_remove(b->queues, &b->n_queues, q);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  remove(path);
  return 0;
}

static void queue_dir(sb_broker_t *b, uint64_t id, char *out, size_t cap) {
  snprintf(out, cap, "%s/q-%020" PRIu64, b->dir, id);
}

/* Frees a queue that is out of every list; removes its files when it was deleted. */
static void queue_destroy(sb_broker_t *b, sb__queue_t *q) {
  bool remove_files = q->deleted;
  uint64_t id = q->id;
  sb__queue_close(q);
  free(q);
  if (remove_files) {
    char path[SB__BROKER_PATH_CAP];
    queue_dir(b, id, path, sizeof path);
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  }
}

void sb__queue_unpend(sb_broker_t *b, sb__queue_t *q) {
  if (--q->pending || !q->deleted) return;
  for (size_t i = 0; i < b->n_dead; i++) {
    if (b->dead[i] != q) continue;
    b->dead[i] = b->dead[--b->n_dead];
    queue_destroy(b, q);
    return;
  }
}

/* --- deadlines ---------------------------------------------------------------------------- */

static void timer_fired(uv_timer_t *t);

static void arm_timer(sb_broker_t *b) {
  if (!b->n_deadlines) {
    uv_timer_stop(&b->timer);
    return;
  }
  int64_t wait = b->deadlines[0].when - sb__now_ms();
  uv_timer_start(&b->timer, timer_fired, wait > 0 ? (uint64_t)wait : 0, 0);
}

static void dl_push(sb_broker_t *b, int64_t when, uint64_t id) {
  if (b->n_deadlines == b->deadlines_cap) {
    size_t nc = b->deadlines_cap ? b->deadlines_cap * 2 : 64;
    sb__qtimer_t *nd = realloc(b->deadlines, nc * sizeof *nd);
    if (!nd) return; /* the sweep timer still ticks every queue once a second */
    b->deadlines = nd;
    b->deadlines_cap = nc;
  }
  size_t i = b->n_deadlines++;
  while (i) {
    size_t p = (i - 1) / 2;
    if (b->deadlines[p].when <= when) break;
    b->deadlines[i] = b->deadlines[p];
    i = p;
  }
  b->deadlines[i] = (sb__qtimer_t){when, id};
  if (i == 0) arm_timer(b);
}

static sb__qtimer_t dl_pop(sb_broker_t *b) {
  sb__qtimer_t *h = b->deadlines, top = h[0], last = h[--b->n_deadlines];
  size_t i = 0, n = b->n_deadlines;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= n) break;
    if (c + 1 < n && h[c + 1].when < h[c].when) c++;
    if (h[c].when >= last.when) break;
    h[i] = h[c];
    i = c;
  }
  if (n) h[i] = last;
  return top;
}

void sb__queue_schedule(sb_broker_t *b, sb__queue_t *q, int64_t when) {
  if (when >= q->next_deadline) return;
  q->next_deadline = when;
  dl_push(b, when, q->id);
}

#define MOVE_DEADLINE_ID UINT64_MAX /* the deadline entry of the move tasks */

void sb__deadline_push(sb_broker_t *b, int64_t when, uint64_t id) {
  dl_push(b, when, id);
}

void sb__move_schedule(sb_broker_t *b, int64_t when) {
  dl_push(b, when, MOVE_DEADLINE_ID);
}

static void run_due(sb_broker_t *b) {
  int64_t now = sb__now_ms();
  while (b->n_deadlines && b->deadlines[0].when <= now) {
    sb__qtimer_t d = dl_pop(b);
    if (d.seq == MOVE_DEADLINE_ID) continue; /* move tasks tick below */
    if (d.seq >= SB__STREAM_DEADLINE_BASE) {
      int64_t next = sb__stream_due(b, d.seq - SB__STREAM_DEADLINE_BASE, now);
      if (next != INT64_MAX) dl_push(b, next, d.seq);
      continue;
    }
    sb__queue_t *q = sb__queue_by_id(b, d.seq);
    if (!q || q->deleted || q->next_deadline > now) continue;
    q->next_deadline = INT64_MAX;
    int64_t next = sb__queue_tick(b, q, now);
    if (next != INT64_MAX) sb__queue_schedule(b, q, next);
  }
  int64_t mnext = sb__move_tick(b, now);
  if (mnext != INT64_MAX) dl_push(b, mnext, MOVE_DEADLINE_ID);
  arm_timer(b);
}

static void timer_fired(uv_timer_t *t) {
  run_due(t->data);
}

/* --- the catalog -------------------------------------------------------------------------- */

void sb__rec_str(sb__rec_t *r, const char *name, const char *v) {
  if (r->n >= sizeof r->h / sizeof r->h[0]) return;
  r->h[r->n++] = (sb_journal_header_t){name, (uint16_t)strlen(name), v, (uint32_t)strlen(v)};
}

void sb__rec_num(sb__rec_t *r, const char *name, int64_t v) {
  if (r->n_num >= sizeof r->num / sizeof r->num[0]) return;
  char *s = r->num[r->n_num++];
  snprintf(s, sizeof r->num[0], "%" PRId64, v);
  sb__rec_str(r, name, s);
}

void sb__rec_pfx(sb__rec_t *r, const char *prefix, const char *name, const char *v) {
  if (r->n_names >= sizeof r->names / sizeof r->names[0]) return;
  char *s = r->names[r->n_names++];
  snprintf(s, sizeof r->names[0], "%s%s", prefix, name);
  sb__rec_str(r, s, v);
}

static void catalog_acked(sb_broker_t *b, void *ctx, int status, uint64_t seq) {
  (void)seq;
  b->catalog_pending--;
  sb__op_t *op = ctx;
  if (op) sb__op_finish(b, op, status);
}

/* Appends the queue record of q; op (may be NULL) finishes once it is durable. */
static int catalog_put_queue(sb_broker_t *b, const sb__queue_t *q, sb__op_t *op) {
  sb__rec_t r;
  r.n = r.n_num = r.n_names = 0;
  const sb_queue_config_t *c = &q->cfg;
  sb__rec_num(&r, "id", (int64_t)q->id);
  sb__rec_num(&r, "created", q->created_ms);
  sb__rec_num(&r, "modified", q->modified_ms);
  sb__rec_num(&r, "visibility", c->visibility_ms);
  sb__rec_num(&r, "delay", c->delay_ms);
  sb__rec_num(&r, "retention", (int64_t)c->retention_ms);
  sb__rec_num(&r, "max_size", c->max_message_bytes);
  sb__rec_num(&r, "wait", c->receive_wait_ms);
  sb__rec_num(&r, "max_messages", (int64_t)c->max_messages);
  sb__rec_num(&r, "max_receives", c->max_receive_count);
  sb__rec_str(&r, "dead_letter", c->dead_letter);
  sb__rec_num(&r, "fifo", c->fifo);
  sb__rec_num(&r, "content_dedup", c->content_dedup);
  sb__rec_num(&r, "fsync", c->fsync);
  sb__rec_num(&r, "fsync_ms", c->fsync_interval_ms);
  for (size_t i = 0; i < q->kv.n; i++)
    sb__rec_pfx(&r, "x:", q->kv.kv[2 * i], q->kv.kv[2 * i + 1]);
  char key[1 + SB_BROKER_NAME_MAX];
  key[0] = 'q';
  size_t nl = strlen(q->name);
  memcpy(key + 1, q->name, nl);
  sb_journal_entry_t e = {key, (uint32_t)(1 + nl), NULL, 0, r.h, (uint16_t)r.n, 0};
  return sb__append(b, NULL, &e, catalog_acked, op);
}

static int catalog_drop_queue(sb_broker_t *b, const sb__queue_t *q, sb__op_t *op) {
  sb__rec_t r;
  r.n = r.n_num = r.n_names = 0;
  sb__rec_num(&r, "id", (int64_t)q->id);
  char key[1 + SB_BROKER_NAME_MAX];
  key[0] = 'Q';
  size_t nl = strlen(q->name);
  memcpy(key + 1, q->name, nl);
  sb_journal_entry_t e = {key, (uint32_t)(1 + nl), NULL, 0, r.h, (uint16_t)r.n, 0};
  return sb__append(b, NULL, &e, catalog_acked, op);
}

int sb__catalog_append(sb_broker_t *b, char kind, const char *name, sb__rec_t *r, sb__op_t *op) {
  char key[1 + 256];
  size_t nl = strlen(name);
  if (nl >= sizeof key - 1) return SB_EINVAL;
  key[0] = kind;
  memcpy(key + 1, name, nl);
  sb_journal_entry_t e = {key, (uint32_t)(1 + nl), NULL, 0, r->h, (uint16_t)r->n, 0};
  return sb__append(b, NULL, &e, catalog_acked, op);
}

int sb__catalog_put_move(sb_broker_t *b, const sb_move_task_t *t) {
  sb__rec_t r;
  r.n = r.n_num = r.n_names = 0;
  sb__rec_str(&r, "source", t->source);
  sb__rec_str(&r, "destination", t->destination);
  sb__rec_num(&r, "rate", t->rate);
  sb__rec_num(&r, "state", t->state);
  sb__rec_num(&r, "moved", (int64_t)t->moved);
  sb__rec_num(&r, "to_move", (int64_t)t->to_move);
  sb__rec_num(&r, "started", t->started_ms);
  sb__rec_str(&r, "failure", t->failure);
  char key[64];
  int kl = snprintf(key, sizeof key, "t%s", t->handle);
  sb_journal_entry_t e = {key, (uint32_t)kl, NULL, 0, r.h, (uint16_t)r.n, 0};
  return sb__append(b, NULL, &e, catalog_acked, NULL);
}

bool sb__rec_get(const sb_journal_record_t *r, const char *name, char *out, size_t cap) {
  uint32_t pos = 0;
  const uint8_t *n, *v;
  uint16_t nl;
  uint32_t vl;
  size_t want = strlen(name);
  while (sb_journal_header_next(r, &pos, &n, &nl, &v, &vl)) {
    if (nl != want || memcmp(n, name, nl)) continue;
    size_t l = vl < cap - 1 ? vl : cap - 1;
    memcpy(out, v, l);
    out[l] = 0;
    return true;
  }
  return false;
}

int64_t sb__rec_getnum(const sb_journal_record_t *r, const char *name) {
  char v[32];
  return sb__rec_get(r, name, v, sizeof v) ? strtoll(v, NULL, 10) : 0;
}

static sb__queue_t *queue_alloc(const char *name, const sb_queue_config_t *c) {
  sb__queue_t *q = calloc(1, sizeof *q);
  if (!q) return NULL;
  snprintf(q->name, sizeof q->name, "%s", name);
  q->cfg = *c;
  q->next_deadline = INT64_MAX;
  return q;
}

static void catalog_queue_record(sb_broker_t *b, const sb_journal_record_t *r) {
  char name[SB_BROKER_NAME_MAX + 1];
  if (r->key_len < 2 || r->key_len > 1 + SB_BROKER_NAME_MAX) return;
  memcpy(name, r->key + 1, r->key_len - 1);
  name[r->key_len - 1] = 0;
  uint64_t id = (uint64_t)sb__rec_getnum(r, "id");
  if (id >= b->next_queue_id) b->next_queue_id = id + 1;
  sb__queue_t *old = sb__queue_find(b, name);
  if (r->key[0] == 'Q') {
    if (old && old->id == id) {
      queue_unlist(b, old);
      sb__queue_close(old);
      free(old);
    }
    return;
  }
  sb_queue_config_t c;
  sb_queue_config_default(&c);
  c.visibility_ms = (uint32_t)sb__rec_getnum(r, "visibility");
  c.delay_ms = (uint32_t)sb__rec_getnum(r, "delay");
  c.retention_ms = (uint64_t)sb__rec_getnum(r, "retention");
  c.max_message_bytes = (uint32_t)sb__rec_getnum(r, "max_size");
  c.receive_wait_ms = (uint32_t)sb__rec_getnum(r, "wait");
  c.max_messages = (uint64_t)sb__rec_getnum(r, "max_messages");
  c.max_receive_count = (uint32_t)sb__rec_getnum(r, "max_receives");
  sb__rec_get(r, "dead_letter", c.dead_letter, sizeof c.dead_letter);
  c.fifo = sb__rec_getnum(r, "fifo") != 0;
  c.content_dedup = sb__rec_getnum(r, "content_dedup") != 0;
  c.fsync = (sb_broker_fsync_t)sb__rec_getnum(r, "fsync");
  c.fsync_interval_ms = (uint32_t)sb__rec_getnum(r, "fsync_ms");
  if (old) {
    queue_unlist(b, old);
    sb__queue_close(old); /* never opened: frees its attributes only */
    free(old);
  }
  sb__queue_t *q = queue_alloc(name, &c);
  if (!q) return;
  q->id = id;
  q->created_ms = sb__rec_getnum(r, "created");
  q->modified_ms = sb__rec_getnum(r, "modified");
  uint32_t pos = 0;
  const uint8_t *n, *v;
  uint16_t nl;
  uint32_t vl;
  while (sb_journal_header_next(r, &pos, &n, &nl, &v, &vl)) {
    if (nl < 3 || n[0] != 'x' || n[1] != ':') continue;
    char kn[256], kvv[1024];
    snprintf(kn, sizeof kn, "%.*s", (int)(nl - 2), (const char *)n + 2);
    snprintf(kvv, sizeof kvv, "%.*s", (int)vl, (const char *)v);
    sb__kvs_set(&q->kv, kn, kvv);
  }
  if (queue_insert(b, q)) {
    sb__queue_close(q);
    free(q);
  }
}

static void catalog_move_record(sb_broker_t *b, const sb_journal_record_t *r) {
  sb_move_task_t t;
  memset(&t, 0, sizeof t);
  snprintf(t.handle, sizeof t.handle, "%.*s", (int)(r->key_len - 1), (const char *)r->key + 1);
  sb__rec_get(r, "source", t.source, sizeof t.source);
  sb__rec_get(r, "destination", t.destination, sizeof t.destination);
  t.rate = (uint32_t)sb__rec_getnum(r, "rate");
  t.state = (sb_move_state_t)sb__rec_getnum(r, "state");
  t.moved = (uint64_t)sb__rec_getnum(r, "moved");
  t.to_move = (uint64_t)sb__rec_getnum(r, "to_move");
  t.started_ms = sb__rec_getnum(r, "started");
  sb__rec_get(r, "failure", t.failure, sizeof t.failure);
  uint64_t num = strtoull(t.handle, NULL, 16);
  if (num >= b->next_move) b->next_move = num + 1;
  sb__move_restore(b, &t, 0);
}

/* Removes q-* and s-* directories that no catalog queue or stream owns (a create that crashed
 * before its catalog record was durable, or a delete that crashed before removing the files). */
static void remove_orphans(sb_broker_t *b) {
  DIR *d = opendir(b->dir);
  if (!d) return;
  struct dirent *de;
  while ((de = readdir(d))) {
    bool q = strncmp(de->d_name, "q-", 2) == 0, st = strncmp(de->d_name, "s-", 2) == 0;
    if (!q && !st) continue;
    uint64_t id = strtoull(de->d_name + 2, NULL, 10);
    if (q ? sb__queue_by_id(b, id) != NULL : sb__stream_owns(b, id)) continue;
    char path[SB__BROKER_PATH_CAP];
    snprintf(path, sizeof path, "%s/%s", b->dir, de->d_name);
    nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  }
  closedir(d);
}

static int catalog_open(sb_broker_t *b) {
  char path[SB__BROKER_PATH_CAP];
  snprintf(path, sizeof path, "%s/catalog", b->dir);
  sb_journal_opts_t jo;
  sb_journal_opts_default(&jo);
  jo.segment_bytes = SB__CATALOG_SEGMENT;
  int rc = sb_journal_open(path, &jo, &b->catalog);
  if (rc) return rc;
  sb_journal_reader_t *rd;
  rc = sb_journal_reader_open(b->catalog, 0, 0, &rd);
  if (rc) return rc;
  sb_journal_record_t r;
  while ((rc = sb_journal_reader_next(rd, &r)) == 0) {
    if (!r.key_len) continue;
    if (r.key[0] == 'q' || r.key[0] == 'Q')
      catalog_queue_record(b, &r);
    else if (r.key[0] == 't' && r.key_len > 1)
      catalog_move_record(b, &r);
    else if (strchr("oOsS", r.key[0]) && r.key[0])
      sb__topic_replay(b, &r);
    else if (strchr("xXc", r.key[0]) && r.key[0])
      sb__stream_replay(b, &r);
  }
  sb_journal_reader_close(rd);
  if (rc != SB_EAGAIN) return rc;
  if (!b->next_queue_id) b->next_queue_id = 1;
  remove_orphans(b);
  if ((rc = sb__stream_open_all(b))) return rc;
  for (size_t i = 0; i < b->n_queues; i++) {
    rc = sb__queue_open(b, b->queues[i]);
    if (rc) {
      sb_log(SB_LOG_ERROR, "queue_open_failed", "queue=%s err=%d", b->queues[i]->name, rc);
      return rc;
    }
  }
  return 0;
}

/* Rewrites the catalog when it grew past SB__CATALOG_COMPACT: every live record again, then
 * the sealed segments before them go (broker_int.h, "Catalog records"). */
static void catalog_compact(sb_broker_t *b) {
  sb_journal_stats_t st;
  sb_journal_stats(b->catalog, &st);
  if (st.bytes < SB__CATALOG_COMPACT) return;
  uint64_t first, next;
  sb_journal_bounds(b->catalog, &first, &next);
  for (size_t i = 0; i < b->n_queues; i++)
    if (catalog_put_queue(b, b->queues[i], NULL)) return;
  sb__topic_compact(b);
  sb__stream_compact(b);
  /* Move tasks need no copy: each one re-appends its record on every progress step. */
  sb_journal_retain(b->catalog, next, sb__now_ms());
}

static void sweep_fired(uv_timer_t *t) {
  sb_broker_t *b = t->data;
  int64_t now = sb__now_ms();
  for (size_t i = 0; i < b->n_queues; i++)
    sb__queue_sweep(b, b->queues[i], now);
  sb__stream_sweep(b, now);
  catalog_compact(b);
}

/* --- running operations ------------------------------------------------------------------- */

static sb_queue_info_t *make_info(sb__op_t *op, const sb__queue_t *q) {
  sb_queue_info_t *in = sb_arena_alloc(&op->arena, sizeof *in);
  sb_broker_kv_t *kv = sb__kvs_export(&q->kv, &op->arena);
  if (!in || !kv) return NULL;
  in->name = sb_arena_strndup(&op->arena, q->name, strlen(q->name));
  in->config = q->cfg;
  in->kv = kv;
  in->n_kv = q->kv.n;
  in->created_ms = q->created_ms;
  in->modified_ms = q->modified_ms;
  sb__queue_fill_stats(q, &in->stats);
  return in;
}

void sb__op_finish(sb_broker_t *b, sb__op_t *op, int status) {
  (void)b;
  sb_broker_result_t r;
  memset(&r, 0, sizeof r);
  switch (op->kind) {
  case SB__OP_SEND:
    r.sent = op->sent;
    r.n = op->sent ? op->n : 0;
    break;
  case SB__OP_RECEIVE:
  case SB__OP_PEEK:
    r.deliveries = op->dl;
    r.n = op->n_dl;
    break;
  case SB__OP_DELETE:
  case SB__OP_VISIBILITY:
    r.statuses = op->statuses;
    r.n = op->statuses ? op->n : 0;
    break;
  case SB__OP_PURGE:
    r.count = op->count;
    break;
  default:
    break;
  }
  r.queue = status ? NULL : op->info;
  r.names = (const char *const *)op->names;
  r.n_names = op->n_names;
  r.next_token = op->next_token;
  if (op->tasks) {
    r.tasks = op->tasks;
    r.n = op->n_tasks;
  }
  r.topic = status ? NULL : op->topic_info;
  r.subs = op->subs_out;
  r.n_subs = op->n_subs_out;
  if (op->kind == SB__OP_PS_PUBLISH || op->kind == SB__OP_STREAM_READ ||
      op->kind == SB__OP_STREAM_TIME || op->kind == SB__OP_STREAM_ACK ||
      op->kind == SB__OP_STREAM_CLAIM || op->kind == SB__OP_STREAM_PENDING)
    r.count = op->count;
  r.pending = op->pending;
  r.n_pending = op->n_pending;
  r.records = op->records;
  r.n_records = op->n_records;
  r.stream = status ? NULL : op->stream_info;
  r.offsets = op->offsets;
  r.n_offsets = op->n_offsets;
  if (op->kind == SB__OP_PUBLISH) {
    r.sent = op->sent;
    r.n = op->sent ? 1 : 0;
    r.count = op->count;
  }
  if (op->cb) op->cb(op->arg, status, &r);
  sb__op_free(op);
}

static void run_create(sb_broker_t *b, sb__op_t *op) {
  sb__queue_t *q = sb__queue_find(b, op->name);
  if (q) {
    if (memcmp(&q->cfg, &op->cfg, sizeof q->cfg) != 0) {
      sb__op_finish(b, op, SB_ESTATE);
      return;
    }
    op->info = make_info(op, q);
    sb__op_finish(b, op, 0);
    return;
  }
  q = queue_alloc(op->name, &op->cfg);
  if (!q) {
    sb__op_finish(b, op, SB_ENOMEM);
    return;
  }
  q->id = b->next_queue_id++;
  q->created_ms = q->modified_ms = sb__now_ms();
  int rc = 0;
  for (size_t i = 0; i < op->n_kv && !rc; i++)
    rc = sb__kvs_set(&q->kv, op->kv[i].name, op->kv[i].value);
  if (!rc) rc = sb__queue_open(b, q);
  if (!rc) rc = queue_insert(b, q);
  if (rc) {
    q->deleted = true;
    queue_destroy(b, q);
    sb__op_finish(b, op, rc);
    return;
  }
  op->info = make_info(op, q);
  rc = catalog_put_queue(b, q, op);
  if (rc) {
    queue_unlist(b, q);
    q->deleted = true;
    queue_destroy(b, q);
    op->info = NULL;
    sb__op_finish(b, op, rc);
  }
}

static void run_update(sb_broker_t *b, sb__queue_t *q, sb__op_t *op) {
  if (op->cfg.fifo != q->cfg.fifo || op->cfg.fsync != q->cfg.fsync) {
    sb__op_finish(b, op, SB_EINVAL);
    return;
  }
  q->cfg = op->cfg;
  q->modified_ms = sb__now_ms();
  int rc = 0;
  for (size_t i = 0; i < op->n_kv && !rc; i++)
    rc = sb__kvs_set(&q->kv, op->kv[i].name, op->kv[i].value);
  if (rc) {
    sb__op_finish(b, op, rc);
    return;
  }
  op->info = make_info(op, q);
  rc = catalog_put_queue(b, q, op);
  if (rc) {
    op->info = NULL;
    sb__op_finish(b, op, rc);
  }
}

static void run_delete_queue(sb_broker_t *b, sb__queue_t *q, sb__op_t *op) {
  int rc = catalog_drop_queue(b, q, op);
  if (rc) {
    sb__op_finish(b, op, rc);
    return;
  }
  queue_unlist(b, q);
  q->deleted = true;
  sb__queue_end_waiters(b, q);
  if (q->pending == 0) {
    queue_destroy(b, q);
    return;
  }
  if (b->n_dead == b->dead_cap) {
    size_t nc = b->dead_cap ? b->dead_cap * 2 : 8;
    sb__queue_t **nd = realloc(b->dead, nc * sizeof *nd);
    if (!nd) {
      queue_destroy(b, q); /* its pending acknowledgements only touch memory we keep */
      return;
    }
    b->dead = nd;
    b->dead_cap = nc;
  }
  b->dead[b->n_dead++] = q;
}

void sb__run_list(sb_broker_t *b, sb__op_t *op, const void *arr, size_t n) {
  char **names = sb_arena_alloc(&op->arena, (n + 1) * sizeof *names);
  if (!names) {
    sb__op_finish(b, op, SB_ENOMEM);
    return;
  }
  size_t k = 0;
  const char *prefix = op->name;
  for (size_t i = 0; i < n; i++) {
    const char *nm;
    memcpy(&nm, (const char *)arr + i * sizeof(void *), sizeof nm); /* name is the 1st member */
    if (*prefix && strncmp(nm, prefix, strlen(prefix)) != 0) continue;
    if (op->has_name2 && strcmp(nm, op->name2) <= 0) continue;
    if (k == op->n) {
      op->next_token = names[k - 1];
      break;
    }
    names[k++] = sb_arena_strndup(&op->arena, nm, strlen(nm));
  }
  op->names = names;
  op->n_names = k;
  sb__op_finish(b, op, 0);
}

static void run_dlq_sources(sb_broker_t *b, sb__op_t *op) {
  char **names = sb_arena_alloc(&op->arena, (b->n_queues + 1) * sizeof *names);
  if (!names) {
    sb__op_finish(b, op, SB_ENOMEM);
    return;
  }
  size_t k = 0;
  for (size_t i = 0; i < b->n_queues; i++)
    if (strcmp(b->queues[i]->cfg.dead_letter, op->name) == 0)
      names[k++] = sb_arena_strndup(&op->arena, b->queues[i]->name, strlen(b->queues[i]->name));
  op->names = names;
  op->n_names = k;
  sb__op_finish(b, op, 0);
}

void sb__journal_opts(sb_broker_t *b, sb_broker_fsync_t fsync, uint32_t interval_ms,
                      sb_journal_opts_t *jo) {
  sb_journal_opts_default(jo);
  jo->fsync = fsync == SB_BROKER_FSYNC_NEVER      ? SB_JOURNAL_FSYNC_NEVER
              : fsync == SB_BROKER_FSYNC_INTERVAL ? SB_JOURNAL_FSYNC_INTERVAL
                                                  : SB_JOURNAL_FSYNC_ALWAYS;
  jo->fsync_interval_ms = interval_ms ? interval_ms : 1;
  jo->disk_reserve_bytes = b->opts.disk_reserve_bytes;
  if (b->opts.segment_bytes) jo->segment_bytes = b->opts.segment_bytes;
}

static void run_op(sb_broker_t *b, sb__op_t *op) {
  switch (op->kind) {
  case SB__OP_END_WAITS:
    for (size_t i = 0; i < b->n_queues; i++)
      sb__queue_end_waiters(b, b->queues[i]);
    sb__stream_end_waits(b);
    sb__op_finish(b, op, 0);
    return;
  case SB__OP_CREATE:
    run_create(b, op);
    return;
  case SB__OP_LIST:
    sb__run_list(b, op, b->queues, b->n_queues);
    return;
  case SB__OP_DLQ_SOURCES:
    run_dlq_sources(b, op);
    return;
  case SB__OP_MOVE_START:
    sb__move_start(b, op);
    return;
  case SB__OP_MOVE_CANCEL:
    sb__move_cancel(b, op);
    return;
  case SB__OP_MOVE_LIST:
    sb__move_list(b, op);
    return;
  case SB__OP_STREAM_CREATE:
  case SB__OP_STREAM_DELETE:
  case SB__OP_STREAM_GET:
  case SB__OP_STREAM_LIST:
  case SB__OP_STREAM_APPEND:
  case SB__OP_STREAM_READ:
  case SB__OP_STREAM_TIME:
  case SB__OP_STREAM_COMMIT:
  case SB__OP_STREAM_COMMITTED:
  case SB__OP_STREAM_GREAD:
  case SB__OP_STREAM_ACK:
  case SB__OP_STREAM_CLAIM:
  case SB__OP_STREAM_PENDING:
    sb__stream_run(b, op);
    return;
  case SB__OP_PS_OPEN:
  case SB__OP_PS_SUBSCRIBE:
  case SB__OP_PS_UNSUBSCRIBE:
  case SB__OP_PS_PUBLISH:
  case SB__OP_PS_CLOSE:
    sb__pubsub_run(b, op);
    return;
  case SB__OP_TOPIC_CREATE:
  case SB__OP_TOPIC_UPDATE:
  case SB__OP_TOPIC_DELETE:
  case SB__OP_TOPIC_GET:
  case SB__OP_TOPIC_LIST:
  case SB__OP_SUBSCRIBE:
  case SB__OP_SUB_UPDATE:
  case SB__OP_UNSUBSCRIBE:
  case SB__OP_SUBS:
  case SB__OP_PUBLISH:
    sb__topic_run(b, op);
    return;
  default:
    break;
  }
  sb__queue_t *q = sb__queue_find(b, op->name);
  if (!q) {
    sb__op_finish(b, op, SB_ENOTFOUND);
    return;
  }
  switch (op->kind) {
  case SB__OP_UPDATE:
    run_update(b, q, op);
    break;
  case SB__OP_DELETE_QUEUE:
    run_delete_queue(b, q, op);
    break;
  case SB__OP_GET:
    op->info = make_info(op, q);
    sb__op_finish(b, op, op->info ? 0 : SB_ENOMEM);
    break;
  case SB__OP_SEND:
    sb__queue_send(b, q, op);
    break;
  case SB__OP_RECEIVE:
    sb__queue_receive(b, q, op);
    break;
  case SB__OP_DELETE:
    sb__queue_delete_msgs(b, q, op);
    break;
  case SB__OP_VISIBILITY:
    sb__queue_visibility(b, q, op);
    break;
  case SB__OP_PURGE:
    sb__queue_purge(b, q, op);
    break;
  case SB__OP_PEEK:
    sb__queue_peek(b, q, op);
    break;
  default:
    sb__op_finish(b, op, SB_EINVAL);
    break;
  }
}

static void drain(sb_broker_t *b) {
  for (;;) {
    pthread_mutex_lock(&b->mu);
    sb__op_t *op = b->inbox_first;
    b->inbox_first = b->inbox_last = NULL;
    sb__ack_t *acks = b->acks_first;
    b->acks_first = b->acks_last = NULL;
    pthread_mutex_unlock(&b->mu);
    if (!op && !acks) return;
    /* Acknowledgements and operations come from different threads, so their relative order
     * was never fixed; each list keeps its own order. */
    run_acks(b, acks);
    while (op) {
      sb__op_t *next = op->next;
      run_op(b, op);
      op = next;
    }
  }
}

static void close_cb(uv_handle_t *h) {
  (void)h;
}

static void shutdown_broker(sb_broker_t *b) {
  drain(b);
  for (size_t i = 0; i < b->n_queues; i++)
    sb__queue_end_waiters(b, b->queues[i]);
  b->stopping = true; /* no new appends; continuations see SB_ESTATE */
  /* Closing a journal runs its last acknowledgements, which arrive through the inbox. */
  for (size_t i = 0; i < b->n_queues; i++) {
    sb__queue_t *q = b->queues[i];
    if (q->rd) sb_journal_reader_close(q->rd);
    q->rd = NULL;
    sb_journal_close(q->j);
    q->j = NULL;
  }
  for (size_t i = 0; i < b->n_dead; i++) {
    sb__queue_t *q = b->dead[i];
    if (q->rd) sb_journal_reader_close(q->rd);
    q->rd = NULL;
    sb_journal_close(q->j);
    q->j = NULL;
  }
  sb__stream_close_all(b);
  sb_journal_close(b->catalog);
  b->catalog = NULL;
  drain(b);
  for (size_t i = 0; i < b->n_queues; i++)
    if (!b->queues[i]->deleted) sb__queue_snapshot(b, b->queues[i]);
  sb__stream_free_all(b);
  sb__move_free_all(b);
  sb__topic_free_all(b);
  sb__pubsub_free_all(b);
  for (size_t i = 0; i < b->n_queues; i++) {
    b->queues[i]->deleted = false;
    queue_destroy(b, b->queues[i]);
  }
  b->n_queues = 0;
  while (b->n_dead)
    queue_destroy(b, b->dead[--b->n_dead]);
}

static void wake_cb(uv_async_t *h) {
  sb_broker_t *b = h->data;
  drain(b);
  pthread_mutex_lock(&b->mu);
  bool stop = b->closing;
  pthread_mutex_unlock(&b->mu);
  if (stop && !b->stopping) {
    shutdown_broker(b);
    uv_close((uv_handle_t *)&b->wake, close_cb);
    uv_close((uv_handle_t *)&b->timer, close_cb);
    uv_close((uv_handle_t *)&b->sweep, close_cb);
  }
}

static void thread_main(void *arg) {
  sb_broker_t *b = arg;
  uv_run(&b->loop, UV_RUN_DEFAULT);
}

int sb_broker_open(const sb_broker_opts_t *opts, sb_broker_t **out) {
  sb_broker_opts_t o;
  if (opts)
    o = *opts;
  else
    sb_broker_opts_default(&o);
  if (!o.data_dir || !*o.data_dir || strlen(o.data_dir) >= SB__BROKER_PATH_CAP - 512)
    return SB_EINVAL;
  if (mkdir(o.data_dir, 0755) && errno != EEXIST) return -errno;
  sb_broker_t *b = calloc(1, sizeof *b);
  if (!b) return SB_ENOMEM;
  snprintf(b->dir, sizeof b->dir, "%s", o.data_dir);
  b->opts = o;
  b->opts.data_dir = b->dir;
  b->next_move = 1;
  pthread_mutex_init(&b->mu, NULL);
  int rc = uv_loop_init(&b->loop);
  if (rc) {
    free(b);
    return SB_ENOMEM;
  }
  uv_async_init(&b->loop, &b->wake, wake_cb);
  uv_timer_init(&b->loop, &b->timer);
  uv_timer_init(&b->loop, &b->sweep);
  b->wake.data = b->timer.data = b->sweep.data = b;
  rc = sb__pubsub_init(b);
  if (!rc) rc = catalog_open(b);
  if (rc) {
    b->closing = true;
    shutdown_broker(b);
    uv_close((uv_handle_t *)&b->wake, close_cb);
    uv_close((uv_handle_t *)&b->timer, close_cb);
    uv_close((uv_handle_t *)&b->sweep, close_cb);
    uv_run(&b->loop, UV_RUN_DEFAULT);
    uv_loop_close(&b->loop);
    free(b->queues);
    free(b->dead);
    free(b->deadlines);
    pthread_mutex_destroy(&b->mu);
    free(b);
    return rc;
  }
  /* Recovered queues may have delayed messages: look at every queue once. */
  for (size_t i = 0; i < b->n_queues; i++)
    sb__queue_schedule(b, b->queues[i], 0);
  dl_push(b, 0, MOVE_DEADLINE_ID);
  uv_timer_start(&b->sweep, sweep_fired, SB__SWEEP_MS, SB__SWEEP_MS);
  if (uv_thread_create(&b->thread, thread_main, b)) {
    b->closing = true;
    shutdown_broker(b);
    uv_close((uv_handle_t *)&b->wake, close_cb);
    uv_close((uv_handle_t *)&b->timer, close_cb);
    uv_close((uv_handle_t *)&b->sweep, close_cb);
    uv_run(&b->loop, UV_RUN_DEFAULT);
    uv_loop_close(&b->loop);
    free(b->queues);
    free(b->dead);
    free(b->deadlines);
    free(b);
    return SB_ENOMEM;
  }
  *out = b;
  return 0;
}

void sb_broker_close(sb_broker_t *b) {
  if (!b) return;
  pthread_mutex_lock(&b->mu);
  b->closing = true;
  pthread_mutex_unlock(&b->mu);
  uv_async_send(&b->wake);
  uv_thread_join(&b->thread);
  uv_loop_close(&b->loop);
  free(b->queues);
  free(b->dead);
  free(b->deadlines);
  pthread_mutex_destroy(&b->mu);
  free(b);
}

/* --- public entry points ------------------------------------------------------------------ */

int sb__name_op(sb_broker_t *b, sb__op_kind_t kind, const char *name, sb_broker_cb cb, void *arg,
                sb__op_t **out) {
  if (!b || !name || strlen(name) > SB_BROKER_NAME_MAX) return SB_EINVAL;
  sb__op_t *op = sb__op_new(kind, cb, arg);
  if (!op) return SB_ENOMEM;
  snprintf(op->name, sizeof op->name, "%s", name);
  *out = op;
  return 0;
}

int sb__copy_kv(sb__op_t *op, const sb_broker_kv_t *kv, size_t n) {
  if (n > SB_BROKER_KV_MAX) return SB_EINVAL;
  if (!n) return 0;
  op->kv = sb_arena_alloc(&op->arena, n * sizeof *op->kv);
  if (!op->kv) return SB_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    if (!kv[i].name || !kv[i].value || !*kv[i].name || strlen(kv[i].name) > 250 ||
        strlen(kv[i].value) > 1000)
      return SB_EINVAL;
    op->kv[i].name = sb_arena_strndup(&op->arena, kv[i].name, strlen(kv[i].name));
    op->kv[i].value = sb_arena_strndup(&op->arena, kv[i].value, strlen(kv[i].value));
    if (!op->kv[i].name || !op->kv[i].value) return SB_ENOMEM;
  }
  op->n_kv = n;
  return 0;
}

static int cfg_op(sb_broker_t *b, sb__op_kind_t kind, const char *name, const sb_queue_config_t *c,
                  const sb_broker_kv_t *kv, size_t n_kv, sb_broker_cb cb, void *arg) {
  if (!c || check_config(c) || sb_broker_check_name(name, c->fifo)) return SB_EINVAL;
  sb__op_t *op;
  int rc = sb__name_op(b, kind, name, cb, arg, &op);
  if (rc) return rc;
  op->cfg = *c;
  if ((rc = sb__copy_kv(op, kv, n_kv))) {
    sb__op_free(op);
    return rc;
  }
  return sb__post(b, op);
}

int sb_queue_create(sb_broker_t *b, const char *name, const sb_queue_config_t *c,
                    const sb_broker_kv_t *kv, size_t n_kv, sb_broker_cb cb, void *arg) {
  return cfg_op(b, SB__OP_CREATE, name, c, kv, n_kv, cb, arg);
}

int sb_queue_update(sb_broker_t *b, const char *name, const sb_queue_config_t *c,
                    const sb_broker_kv_t *kv, size_t n_kv, sb_broker_cb cb, void *arg) {
  return cfg_op(b, SB__OP_UPDATE, name, c, kv, n_kv, cb, arg);
}

int sb__simple_op(sb_broker_t *b, sb__op_kind_t kind, const char *name, sb_broker_cb cb,
                  void *arg) {
  sb__op_t *op;
  int rc = sb__name_op(b, kind, name, cb, arg, &op);
  return rc ? rc : sb__post(b, op);
}

int sb_queue_delete(sb_broker_t *b, const char *name, sb_broker_cb cb, void *arg) {
  return sb__simple_op(b, SB__OP_DELETE_QUEUE, name, cb, arg);
}
int sb_queue_get(sb_broker_t *b, const char *name, sb_broker_cb cb, void *arg) {
  return sb__simple_op(b, SB__OP_GET, name, cb, arg);
}
bool sb_broker_draining(const sb_broker_t *b) {
  return atomic_load(&b->draining);
}

int sb_broker_end_waits(sb_broker_t *b, sb_broker_cb cb, void *arg) {
  atomic_store(&b->draining, true);
  sb__op_t *op = sb__op_new(SB__OP_END_WAITS, cb, arg);
  return op ? sb__post(b, op) : SB_ENOMEM;
}

int sb_queue_purge(sb_broker_t *b, const char *name, sb_broker_cb cb, void *arg) {
  return sb__simple_op(b, SB__OP_PURGE, name, cb, arg);
}
int sb_queue_dlq_sources(sb_broker_t *b, const char *name, sb_broker_cb cb, void *arg) {
  return sb__simple_op(b, SB__OP_DLQ_SOURCES, name, cb, arg);
}

int sb__list_op(sb_broker_t *b, sb__op_kind_t kind, const char *prefix, const char *after,
                size_t max, sb_broker_cb cb, void *arg) {
  if (max < 1 || max > 1000 || (after && strlen(after) > SB_BROKER_NAME_MAX)) return SB_EINVAL;
  sb__op_t *op;
  int rc = sb__name_op(b, kind, prefix ? prefix : "", cb, arg, &op);
  if (rc) return rc;
  if (after) {
    snprintf(op->name2, sizeof op->name2, "%s", after);
    op->has_name2 = true;
  }
  op->n = max;
  return sb__post(b, op);
}

int sb_queue_list(sb_broker_t *b, const char *prefix, const char *after, size_t max,
                  sb_broker_cb cb, void *arg) {
  return sb__list_op(b, SB__OP_LIST, prefix, after, max, cb, arg);
}

int sb__check_attr(const sb_broker_attr_t *a) {
  if (!a->name || a->name_len < 1 || a->name_len > 255 || a->name[0] == ':') return SB_EINVAL;
  if (a->type_len > SB__RECORD_ATTR_TYPE_MAX || (a->type_len && !a->type)) return SB_EINVAL;
  if (a->type_len && memchr(a->type, 0, a->type_len)) return SB_EINVAL;
  if (a->value_len && !a->value) return SB_EINVAL;
  return 0;
}

const char *sb__arena_copy(sb_arena_t *a, const void *p, size_t n) {
  if (!p) return NULL;
  char *c = sb_arena_alloc(a, n + 1);
  if (!c) return NULL;
  memcpy(c, p, n);
  c[n] = 0;
  return c;
}

int sb__check_msg(const sb_broker_msg_t *m) {
  if ((m->body_len && !m->body) || m->body_len > SB_BROKER_MESSAGE_MAX ||
      m->n_attrs > SB_BROKER_ATTRS_MAX || (m->n_attrs && !m->attrs))
    return SB_EINVAL;
  if ((m->group && (m->group_len < 1 || m->group_len > SB_BROKER_GROUP_MAX)) ||
      (m->dedup && (m->dedup_len < 1 || m->dedup_len > SB_BROKER_GROUP_MAX)) ||
      (m->trace && m->trace_len > 4096) || m->delay_ms > (int32_t)SB_BROKER_DELAY_MAX_MS ||
      m->delay_ms < -1)
    return SB_EINVAL;
  for (size_t k = 0; k < m->n_attrs; k++)
    if (sb__check_attr(&m->attrs[k])) return SB_EINVAL;
  return 0;
}

int sb__copy_msg(sb_arena_t *a, const sb_broker_msg_t *m, sb_broker_msg_t *c) {
  *c = *m;
  c->body = sb__arena_copy(a, m->body ? m->body : "", m->body_len);
  c->group = m->group ? sb__arena_copy(a, m->group, m->group_len) : NULL;
  c->dedup = m->dedup ? sb__arena_copy(a, m->dedup, m->dedup_len) : NULL;
  c->trace = m->trace ? sb__arena_copy(a, m->trace, m->trace_len) : NULL;
  if (!c->body || (m->group && !c->group) || (m->dedup && !c->dedup) || (m->trace && !c->trace))
    return SB_ENOMEM;
  if (!m->n_attrs) return 0;
  sb_broker_attr_t *at = sb_arena_alloc(a, m->n_attrs * sizeof *at);
  if (!at) return SB_ENOMEM;
  for (size_t k = 0; k < m->n_attrs; k++) {
    const sb_broker_attr_t *s = &m->attrs[k];
    at[k] = *s;
    at[k].name = sb__arena_copy(a, s->name, s->name_len);
    at[k].type = sb__arena_copy(a, s->type ? s->type : "", s->type_len);
    at[k].value = sb__arena_copy(a, s->value ? s->value : "", s->value_len);
    if (!at[k].name || !at[k].type || !at[k].value) return SB_ENOMEM;
  }
  c->attrs = at;
  return 0;
}

int sb_queue_send(sb_broker_t *b, const char *queue, const sb_broker_msg_t *msgs, size_t n,
                  sb_broker_cb cb, void *arg) {
  if (!msgs || n < 1 || n > SB_BROKER_BATCH_MAX) return SB_EINVAL;
  for (size_t i = 0; i < n; i++)
    if (sb__check_msg(&msgs[i])) return SB_EINVAL;
  sb__op_t *op;
  int rc = sb__name_op(b, SB__OP_SEND, queue, cb, arg, &op);
  if (rc) return rc;
  op->msgs = sb_arena_alloc(&op->arena, n * sizeof *op->msgs);
  rc = op->msgs ? 0 : SB_ENOMEM;
  for (size_t i = 0; i < n && !rc; i++)
    rc = sb__copy_msg(&op->arena, &msgs[i], &op->msgs[i]);
  if (rc) {
    sb__op_free(op);
    return rc;
  }
  op->n = n;
  return sb__post(b, op);
}

int sb_queue_receive(sb_broker_t *b, const char *queue, size_t max, int64_t visibility_ms,
                     int64_t wait_ms, sb_broker_cb cb, void *arg) {
  if (max < 1 || max > SB_BROKER_BATCH_MAX || visibility_ms < -1 ||
      visibility_ms > SB_BROKER_VISIBILITY_MAX_MS || wait_ms < -1 ||
      wait_ms > SB_BROKER_WAIT_MAX_MS)
    return SB_EINVAL;
  sb__op_t *op;
  int rc = sb__name_op(b, SB__OP_RECEIVE, queue, cb, arg, &op);
  if (rc) return rc;
  op->n = max;
  op->visibility_ms = visibility_ms;
  op->wait_ms = wait_ms;
  return sb__post(b, op);
}

static int receipts_op(sb_broker_t *b, sb__op_kind_t kind, const char *queue,
                       const char *const *receipts, size_t n, int64_t vis, sb_broker_cb cb,
                       void *arg) {
  if (!receipts || n < 1 || n > SB_BROKER_BATCH_MAX) return SB_EINVAL;
  sb__op_t *op;
  int rc = sb__name_op(b, kind, queue, cb, arg, &op);
  if (rc) return rc;
  op->receipts = sb_arena_alloc(&op->arena, n * sizeof *op->receipts);
  if (!op->receipts) {
    sb__op_free(op);
    return SB_ENOMEM;
  }
  for (size_t i = 0; i < n; i++) {
    const char *r = receipts[i] ? receipts[i] : "";
    size_t l = strnlen(r, SB_BROKER_RECEIPT_LEN + 1);
    op->receipts[i] = sb_arena_strndup(&op->arena, r, l);
    if (!op->receipts[i]) {
      sb__op_free(op);
      return SB_ENOMEM;
    }
  }
  op->n = n;
  op->visibility_ms = vis;
  return sb__post(b, op);
}

int sb_queue_delete_msgs(sb_broker_t *b, const char *queue, const char *const *receipts, size_t n,
                         sb_broker_cb cb, void *arg) {
  return receipts_op(b, SB__OP_DELETE, queue, receipts, n, 0, cb, arg);
}

int sb_queue_change_visibility(sb_broker_t *b, const char *queue, const char *const *receipts,
                               size_t n, int64_t visibility_ms, sb_broker_cb cb, void *arg) {
  if (visibility_ms < 0 || visibility_ms > SB_BROKER_VISIBILITY_MAX_MS) return SB_EINVAL;
  return receipts_op(b, SB__OP_VISIBILITY, queue, receipts, n, visibility_ms, cb, arg);
}

int sb_queue_peek(sb_broker_t *b, const char *queue, uint64_t from, size_t max,
                  const char *attr_name, const char *attr_value, sb_broker_cb cb, void *arg) {
  if (max < 1) return SB_EINVAL;
  sb__op_t *op;
  int rc = sb__name_op(b, SB__OP_PEEK, queue, cb, arg, &op);
  if (rc) return rc;
  op->from = from;
  op->n = max;
  if (attr_name) op->attr_name = sb_arena_strndup(&op->arena, attr_name, strlen(attr_name));
  if (attr_value) op->attr_value = sb_arena_strndup(&op->arena, attr_value, strlen(attr_value));
  if ((attr_name && !op->attr_name) || (attr_value && !op->attr_value)) {
    sb__op_free(op);
    return SB_ENOMEM;
  }
  return sb__post(b, op);
}

int sb_move_start(sb_broker_t *b, const char *source, const char *destination, uint32_t rate,
                  sb_broker_cb cb, void *arg) {
  if (destination && strlen(destination) > SB_BROKER_NAME_MAX) return SB_EINVAL;
  sb__op_t *op;
  int rc = sb__name_op(b, SB__OP_MOVE_START, source, cb, arg, &op);
  if (rc) return rc;
  if (destination) {
    snprintf(op->name2, sizeof op->name2, "%s", destination);
    op->has_name2 = true;
  }
  op->rate = rate;
  return sb__post(b, op);
}

int sb_move_cancel(sb_broker_t *b, const char *handle, sb_broker_cb cb, void *arg) {
  return sb__simple_op(b, SB__OP_MOVE_CANCEL, handle, cb, arg);
}

int sb_move_list(sb_broker_t *b, const char *source, size_t max, sb_broker_cb cb, void *arg) {
  if (max < 1) return SB_EINVAL;
  sb__op_t *op;
  int rc = sb__name_op(b, SB__OP_MOVE_LIST, source ? source : "", cb, arg, &op);
  if (rc) return rc;
  op->n = max;
  return sb__post(b, op);
}
