/*
 * Tests of the stream engine (src/broker/stream.c): key partitioning, reads from an offset,
 * from the end with a long poll, and from a time; committed offsets and lag; retention; and
 * records and offsets surviving a restart; group pending lists and claims; and the group
 * journal compacted to its state, then replayed from it.
 */
#include <glob.h>

#include "sync.h"

static sres_t *append(sb_broker_t *b, const char *st, int32_t part, const char *key,
                      const char *val) {
  sb_broker_attr_t at[1] = {{"h", 1, "", 0, "v", 1}};
  sb_broker_msg_t m = {
      .body = val, .body_len = strlen(val), .attrs = at, .n_attrs = 1, .delay_ms = -1};
  sres_t *r;
  SRUN(r, sb_stream_append(b, st, part, key, key ? strlen(key) : 0, &m, 0, on_s, r));
  return r;
}

static int mk(sb_broker_t *b, const char *name, uint32_t parts) {
  sb_stream_config_t c;
  sb_stream_config_default(&c);
  c.partitions = parts;
  sres_t *r;
  SRUN(r, sb_stream_create(b, name, &c, on_s, r));
  int st = r->status;
  free(r);
  return st;
}

TEST(partitions_reads_and_offsets) {
  char *dir = tmpdir();
  sb_broker_t *b = open_broker(dir);
  REQUIRE(b);
  CHECK_EQ_INT(mk(b, "clicks", 3), 0);
  CHECK_EQ_INT(mk(b, "clicks", 3), 0);
  CHECK_EQ_INT(mk(b, "clicks", 4), SB_ESTATE);
  sres_t *a = append(b, "clicks", -1, "user-1", "a");
  REQUIRE(a->status == 0 && a->n == 1);
  uint32_t p = a->part[0];
  CHECK_EQ_INT(a->off[0], 0);
  free(a);
  for (int i = 0; i < 4; i++) {
    char v[8];
    snprintf(v, sizeof v, "v%d", i);
    a = append(b, "clicks", -1, "user-1", v);
    CHECK_EQ_INT(a->part[0], p); /* one key, one partition */
    CHECK_EQ_INT(a->off[0], (uint64_t)i + 1);
    free(a);
  }
  a = append(b, "clicks", 9, NULL, "x");
  CHECK_EQ_INT(a->status, SB_EINVAL);
  free(a);
  sres_t *r;
  SRUN(r, sb_stream_read(b, "clicks", p, 0, 3, 1 << 20, 0, on_s, r));
  CHECK_EQ_INT(r->n, 3);
  CHECK_EQ_STR(r->val[0], "a");
  CHECK_EQ_STR(r->key[0], "user-1");
  CHECK_EQ_STR(r->val[2], "v1");
  CHECK_EQ_INT(r->n_attrs[0], 1);
  CHECK_EQ_INT(r->count, 5);
  free(r);
  SRUN(r, sb_stream_read(b, "clicks", p, 2, 100, 1, 0, on_s, r));
  CHECK_EQ_INT(r->n, 1); /* max_bytes 1: one record anyway */
  CHECK_EQ_STR(r->val[0], "v1");
  free(r);
  uint64_t offs[3] = {SB_STREAM_NO_OFFSET, SB_STREAM_NO_OFFSET, SB_STREAM_NO_OFFSET};
  offs[p] = 2;
  SRUN(r, sb_stream_commit(b, "clicks", "analytics", offs, 3, on_s, r));
  CHECK_EQ_INT(r->status, 0);
  free(r);
  SRUN(r, sb_stream_get(b, "clicks", on_s, r));
  CHECK_EQ_INT(r->n_groups, 1);
  CHECK_EQ_INT(r->lag, 3);
  CHECK_EQ_INT(r->next[p], 5);
  free(r);
  SRUN(r, sb_stream_offset_for_time(b, "clicks", p, 0, on_s, r));
  CHECK_EQ_INT(r->count, 0);
  free(r);
  SRUN(r, sb_stream_offset_for_time(b, "clicks", p, INT64_MAX, on_s, r));
  CHECK_EQ_INT(r->count, 5);
  free(r);
  sb_broker_close(b);

  b = open_broker(dir);
  REQUIRE(b);
  SRUN(r, sb_stream_committed(b, "clicks", "analytics", on_s, r));
  CHECK_EQ_INT(r->n_offsets, 3);
  CHECK_EQ_INT(r->offsets[p], 2);
  CHECK_EQ_INT(r->offsets[(p + 1) % 3], SB_STREAM_NO_OFFSET);
  free(r);
  SRUN(r, sb_stream_read(b, "clicks", p, 4, 10, 1 << 20, 0, on_s, r));
  CHECK_EQ_INT(r->n, 1);
  CHECK_EQ_STR(r->val[0], "v3");
  free(r);
  SRUN(r, sb_stream_delete(b, "clicks", on_s, r));
  CHECK_EQ_INT(r->status, 0);
  free(r);
  SRUN(r, sb_stream_read(b, "clicks", 0, 0, 10, 1 << 20, 0, on_s, r));
  CHECK_EQ_INT(r->status, SB_ENOTFOUND);
  free(r);
  sb_broker_close(b);
  b = open_broker(dir);
  REQUIRE(b);
  SRUN(r, sb_stream_list(b, NULL, NULL, 10, on_s, r));
  CHECK_EQ_INT(r->status, 0);
  free(r);
  sb_broker_close(b);
  drop_dir(dir);
}

typedef struct later {
  sb_broker_t *b;
} later_t;

static void *append_later(void *arg) {
  later_t *l = arg;
  sleep_ms(150);
  free(append(l->b, "live", 0, NULL, "fresh"));
  return NULL;
}

TEST(long_poll_from_the_end) {
  char *dir = tmpdir();
  sb_broker_t *b = open_broker(dir);
  REQUIRE(b);
  CHECK_EQ_INT(mk(b, "live", 1), 0);
  free(append(b, "live", 0, NULL, "old"));
  later_t l = {b};
  pthread_t th;
  pthread_create(&th, NULL, append_later, &l);
  int64_t t0 = now_ms();
  sres_t *r;
  SRUN(r, sb_stream_read(b, "live", 0, SB_STREAM_LATEST, 10, 1 << 20, 5000, on_s, r));
  int64_t took = now_ms() - t0;
  pthread_join(th, NULL);
  CHECK_EQ_INT(r->n, 1);
  CHECK_EQ_STR(r->val[0], "fresh");
  CHECK(took >= 100 && took < 3000);
  free(r);
  t0 = now_ms();
  SRUN(r, sb_stream_read(b, "live", 0, 2, 10, 1 << 20, 200, on_s, r));
  CHECK_EQ_INT(r->n, 0);
  CHECK(now_ms() - t0 >= 180);
  free(r);
  sb_broker_close(b);
  drop_dir(dir);
}

TEST(retention_by_size) {
  char *dir = tmpdir();
  sb_broker_t *b = open_broker(dir);
  REQUIRE(b);
  sb_stream_config_t c;
  sb_stream_config_default(&c);
  c.segment_bytes = 4096;
  c.retention_bytes = 8192;
  c.fsync = SB_BROKER_FSYNC_NEVER;
  sres_t *r;
  SRUN(r, sb_stream_create(b, "short", &c, on_s, r));
  CHECK_EQ_INT(r->status, 0);
  free(r);
  char big[501];
  memset(big, 'z', 500);
  big[500] = 0;
  for (int i = 0; i < 100; i++)
    free(append(b, "short", 0, NULL, big));
  sleep_ms(1300); /* the sweep runs every second */
  SRUN(r, sb_stream_get(b, "short", on_s, r));
  CHECK(r->first[0] > 0);
  CHECK_EQ_INT(r->next[0], 100);
  free(r);
  SRUN(r, sb_stream_read(b, "short", 0, 0, 1, 1 << 20, 0, on_s, r));
  CHECK_EQ_INT(r->n, 1);
  CHECK(r->off[0] > 0); /* an offset below the first reads from the first */
  free(r);
  sb_broker_close(b);
  drop_dir(dir);
}

typedef struct pres {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done, status;
  size_t n;
  uint64_t off[16];
  char consumer[16][32];
  uint32_t deliveries[16];
  uint64_t count;
} pres_t;

static void on_p(void *arg, int status, const sb_broker_result_t *r) {
  pres_t *x = arg;
  pthread_mutex_lock(&x->mu);
  x->status = status;
  x->count = r->count;
  if (r->pending) {
    x->n = r->n_pending < 16 ? r->n_pending : 16;
    for (size_t i = 0; i < x->n; i++) {
      x->off[i] = r->pending[i].offset;
      snprintf(x->consumer[i], 32, "%s", r->pending[i].consumer);
      x->deliveries[i] = r->pending[i].deliveries;
    }
  } else {
    x->n = r->n_records < 16 ? r->n_records : 16;
    for (size_t i = 0; i < x->n; i++) {
      x->off[i] = r->records[i].offset;
      x->deliveries[i] = r->records[i].deliveries;
    }
  }
  x->done = 1;
  pthread_cond_signal(&x->cv);
  pthread_mutex_unlock(&x->mu);
}

TEST(group_pending_lists_acks_and_claims) {
  char *dir = tmpdir();
  sb_broker_t *b = open_broker(dir);
  REQUIRE(b);
  CHECK_EQ_INT(mk(b, "jobs", 1), 0);
  for (int i = 0; i < 5; i++)
    free(append(b, "jobs", 0, NULL, "job"));
  pres_t *r;
  SRUN(r, sb_stream_group_read(b, "jobs", "workers", "alice", 0, 2, 0, on_p, r));
  CHECK_EQ_INT(r->n, 2);
  CHECK_EQ_INT(r->off[0], 0);
  CHECK_EQ_INT(r->deliveries[0], 1);
  free(r);
  SRUN(r, sb_stream_group_read(b, "jobs", "workers", "bob", 0, 2, 0, on_p, r));
  CHECK_EQ_INT(r->n, 2);
  CHECK_EQ_INT(r->off[0], 2); /* bob gets what alice did not */
  free(r);
  uint64_t a[2] = {0, 0};
  SRUN(r, sb_stream_ack(b, "jobs", "workers", 0, a, 2, on_p, r));
  CHECK_EQ_INT(r->status, 0);
  CHECK_EQ_INT(r->count, 1); /* 0 once: the second is no longer pending */
  free(r);
  SRUN(r, sb_stream_pending(b, "jobs", "workers", 0, 10, on_p, r));
  CHECK_EQ_INT(r->count, 3);
  CHECK_EQ_INT(r->n, 3);
  CHECK_EQ_INT(r->off[0], 1);
  CHECK_EQ_STR(r->consumer[0], "alice");
  free(r);
  SRUN(r, sb_stream_claim(b, "jobs", "workers", "carol", 0, 60000, 0, 10, on_p, r));
  CHECK_EQ_INT(r->n, 0); /* nothing idle for a minute */
  free(r);
  sleep_ms(80);
  SRUN(r, sb_stream_claim(b, "jobs", "workers", "carol", 0, 50, 0, 1, on_p, r));
  CHECK_EQ_INT(r->n, 1);
  CHECK_EQ_INT(r->off[0], 1);
  CHECK_EQ_INT(r->deliveries[0], 2);
  CHECK_EQ_INT(r->count, 2); /* continue from offset 2 */
  free(r);
  sb_broker_close(b);

  b = open_broker(dir);
  REQUIRE(b);
  SRUN(r, sb_stream_pending(b, "jobs", "workers", 0, 10, on_p, r));
  CHECK_EQ_INT(r->count, 3);
  CHECK_EQ_STR(r->consumer[0], "carol");
  CHECK_EQ_INT(r->deliveries[0], 2);
  free(r);
  SRUN(r, sb_stream_group_read(b, "jobs", "workers", "alice", 0, 10, 0, on_p, r));
  CHECK_EQ_INT(r->n, 1); /* only offset 4 was never delivered */
  CHECK_EQ_INT(r->off[0], 4);
  free(r);
  SRUN(r, sb_stream_group_read(b, "jobs", "other", "x", 0, 10, 0, on_p, r));
  CHECK_EQ_INT(r->n, 5); /* another group starts at the beginning */
  free(r);
  sb_broker_close(b);
  drop_dir(dir);
}

static size_t group_segments(const char *dir) {
  char pat[256];
  snprintf(pat, sizeof pat, "%s/s-*-g/*.seg", dir);
  glob_t g;
  if (glob(pat, 0, NULL, &g)) return 0;
  size_t n = g.gl_pathc;
  globfree(&g);
  return n;
}

static sb_broker_t *open_small_segments(const char *dir) {
  sb_broker_opts_t o;
  sb_broker_opts_default(&o);
  o.data_dir = dir;
  o.segment_bytes = 4096;
  sb_broker_t *b = NULL;
  return sb_broker_open(&o, &b) ? NULL : b;
}

TEST(group_journal_compaction) {
  char *dir = tmpdir();
  sb_broker_t *b = open_small_segments(dir);
  REQUIRE(b);
  sb_stream_config_t c;
  sb_stream_config_default(&c);
  c.partitions = 1;
  c.fsync = SB_BROKER_FSYNC_NEVER;
  sres_t *cr;
  SRUN(cr, sb_stream_create(b, "big", &c, on_s, cr));
  CHECK_EQ_INT(cr->status, 0);
  free(cr);
  for (int i = 0; i < 3000; i++)
    free(append(b, "big", 0, NULL, "r"));
  /* Deliver everything, acknowledge all but every 500th: about 6,000 offsets written to the
   * group journal for 6 pending entries. */
  for (int round = 0; round < 30; round++) {
    pres_t *r;
    SRUN(r, sb_stream_group_read(b, "big", "g", "alice", 0, 100, 0, on_p, r));
    REQUIRE(r->status == 0 && r->n == 16 && r->off[0] == (uint64_t)round * 100);
    free(r);
    uint64_t acks[100];
    size_t n = 0;
    for (uint64_t o = (uint64_t)round * 100; o < (uint64_t)round * 100 + 100; o++)
      if (o % 500) acks[n++] = o;
    SRUN(r, sb_stream_ack(b, "big", "g", 0, acks, n, on_p, r));
    CHECK_EQ_INT(r->status, 0);
    free(r);
  }
  size_t before = group_segments(dir);
  CHECK(before >= 8);
  size_t after = before;
  for (int i = 0; i < 50 && after >= before; i++) { /* the sweep runs every second */
    sleep_ms(100);
    after = group_segments(dir);
  }
  fprintf(stderr, "group journal segments: %zu before compaction, %zu after\n", before, after);
  CHECK(after <= 2);
  sb_broker_close(b);

  b = open_small_segments(dir);
  REQUIRE(b);
  pres_t *r;
  SRUN(r, sb_stream_pending(b, "big", "g", 0, 16, on_p, r));
  CHECK_EQ_INT(r->count, 6);
  CHECK_EQ_INT(r->n, 6);
  for (size_t i = 0; i < r->n; i++) {
    CHECK_EQ_INT(r->off[i], i * 500);
    CHECK_EQ_STR(r->consumer[i], "alice");
    CHECK_EQ_INT(r->deliveries[i], 1);
  }
  free(r);
  free(append(b, "big", 0, NULL, "new"));
  SRUN(r, sb_stream_group_read(b, "big", "g", "bob", 0, 100, 0, on_p, r));
  CHECK_EQ_INT(r->n, 1); /* only the new record: the delivery position survived too */
  CHECK_EQ_INT(r->off[0], 3000);
  free(r);
  sb_broker_close(b);
  drop_dir(dir);
}

TEST(a_full_stream_refuses_appends) {
  char *dir = tmpdir();
  sb_broker_t *b = open_broker(dir);
  REQUIRE(b);
  sb_stream_config_t c;
  sb_stream_config_default(&c);
  c.max_bytes = 4096;
  sres_t *r;
  SRUN(r, sb_stream_create(b, "capped", &c, on_s, r));
  CHECK_EQ_INT(r->status, 0);
  free(r);
  char big[1001];
  memset(big, 'q', 1000);
  big[1000] = 0;
  int ok = 0, full = 0;
  for (int i = 0; i < 10; i++) {
    r = append(b, "capped", 0, NULL, big);
    ok += r->status == 0;
    full += r->status == SB_ELIMIT;
    free(r);
  }
  CHECK(ok >= 2 && ok <= 4);
  CHECK_EQ_INT(ok + full, 10);
  sb_broker_close(b);
  drop_dir(dir);
}
