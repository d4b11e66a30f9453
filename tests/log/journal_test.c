/*
 * Tests of sb_journal (src/log/journal.c): append/read round trip, rolling, index rebuild,
 * recovery from torn and bit-flipped tails (by editing the files directly), retention,
 * the fsync policies (traced through the test hooks), injected ENOSPC, backpressure, and
 * group commit under many producer threads.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log/journal.h"
#include "sb_test.h"
#include "switchboard/error.h"

/* --- helpers ------------------------------------------------------------------------------ */

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(p);
}

static void rm_rf(const char *dir) {
  nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Removes a directory from tmpdir() and frees its name. */
static void drop_dir(char *dir) {
  rm_rf(dir);
  free(dir);
}

static char *tmpdir(void) {
  char *d = strdup("/tmp/sb-journal-test.XXXXXX");
  return mkdtemp(d);
}

/* Waits for one acknowledgement; lives on the caller's stack. */
typedef struct ack {
  pthread_mutex_t mu; /* guards the rest */
  pthread_cond_t cv;  /* signalled by the writer thread */
  int done;           /* 1 once the callback ran */
  int status;         /* callback status */
  uint64_t offset;    /* callback offset */
} ack_t;

static void ack_cb(void *arg, int status, uint64_t offset) {
  ack_t *a = arg;
  pthread_mutex_lock(&a->mu);
  a->done = 1;
  a->status = status;
  a->offset = offset;
  pthread_cond_signal(&a->cv);
  pthread_mutex_unlock(&a->mu);
}

/* Appends e and waits for its acknowledgement. Returns the append's error or the callback
 * status; *off gets the offset. */
static int append_sync(sb_journal_t *j, const sb_journal_entry_t *e, uint64_t *off) {
  ack_t a = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
  int rc = sb_journal_append(j, e, ack_cb, &a);
  if (rc) return rc;
  pthread_mutex_lock(&a.mu);
  while (!a.done)
    pthread_cond_wait(&a.cv, &a.mu);
  pthread_mutex_unlock(&a.mu);
  if (off) *off = a.offset;
  return a.status;
}

static int append_val(sb_journal_t *j, const char *val, int64_t ts, uint64_t *off) {
  sb_journal_entry_t e = {.value = val, .value_len = (uint32_t)strlen(val), .timestamp_ms = ts};
  return append_sync(j, &e, off);
}

/* Counts acknowledgements without waiting (for bulk appends). */
static atomic_int g_acks, g_ack_errors;
static void count_cb(void *arg, int status, uint64_t offset) {
  (void)arg, (void)offset;
  if (status) atomic_fetch_add(&g_ack_errors, 1);
  atomic_fetch_add(&g_acks, 1);
}

/* Appends "v<i>" for i in [from, to) with timestamps 1000 + i and waits for all of them. */
static void fill(sb_journal_t *j, int from, int to) {
  atomic_store(&g_acks, 0);
  atomic_store(&g_ack_errors, 0);
  char val[64];
  for (int i = from; i < to; i++) {
    snprintf(val, sizeof val, "v%d-padding-padding-padding", i);
    sb_journal_entry_t e = {
        .value = val, .value_len = (uint32_t)strlen(val), .timestamp_ms = 1000 + i};
    while (sb_journal_append(j, &e, count_cb, NULL) == SB_EAGAIN)
      usleep(100);
  }
  while (atomic_load(&g_acks) < to - from)
    usleep(100);
}

/* Reads from offset from to the end, checking that record k holds "v<k>"; returns how many
 * were read, or -1 on a mismatch or read error. */
static int read_all_check(sb_journal_t *j, uint64_t from, size_t buf_cap) {
  sb_journal_reader_t *r = NULL;
  if (sb_journal_reader_open(j, from, buf_cap, &r) != 0) return -1;
  sb_journal_record_t rec;
  int n = 0, rc;
  uint64_t expect = from;
  while ((rc = sb_journal_reader_next(r, &rec)) == 0) {
    char val[64];
    snprintf(val, sizeof val, "v%llu-padding-padding-padding", (unsigned long long)rec.offset);
    if (rec.offset < expect || rec.value_len != strlen(val) ||
        memcmp(rec.value, val, rec.value_len) != 0 ||
        rec.timestamp_ms != 1000 + (int64_t)rec.offset) {
      n = -1;
      break;
    }
    expect = rec.offset + 1;
    n++;
  }
  if (n >= 0 && rc != SB_EAGAIN) n = -1;
  sb_journal_reader_close(r);
  return n;
}

static sb_journal_opts_t opts_small(void) {
  sb_journal_opts_t o;
  sb_journal_opts_default(&o);
  o.segment_bytes = SB_JOURNAL_SEGMENT_BYTES_MIN;
  o.index_interval = 256;
  return o;
}

static off_t file_size(const char *dir, const char *name) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  struct stat st;
  return stat(p, &st) == 0 ? st.st_size : -1;
}

/* Name of the last (active) segment file in dir. */
static void last_segment(const char *dir, char *out) {
  DIR *d = opendir(dir);
  struct dirent *de;
  out[0] = 0;
  while ((de = readdir(d)) != NULL) {
    size_t n = strlen(de->d_name);
    if (n == 24 && strcmp(de->d_name + 20, ".seg") == 0 && strcmp(de->d_name, out) > 0)
      strcpy(out, de->d_name);
  }
  closedir(d);
}

static int count_files(const char *dir, const char *suffix) {
  DIR *d = opendir(dir);
  struct dirent *de;
  int n = 0;
  size_t sl = strlen(suffix);
  while ((de = readdir(d)) != NULL) {
    size_t len = strlen(de->d_name);
    n += len > sl && strcmp(de->d_name + len - sl, suffix) == 0;
  }
  closedir(d);
  return n;
}

static void patch_file(const char *dir, const char *name, off_t pos, uint8_t xor_mask) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  int fd = open(p, O_RDWR);
  uint8_t b = 0;
  pread(fd, &b, 1, pos);
  b ^= xor_mask;
  pwrite(fd, &b, 1, pos);
  close(fd);
}

/* Opens the journal in dir with options o and appends records 0..n-1 ("v<i>", timestamp
 * 1000 + i). Returns the open journal (caller closes), or NULL. */
static sb_journal_t *open_filled(const char *dir, const sb_journal_opts_t *o, int n) {
  sb_journal_t *j = NULL;
  if (sb_journal_open(dir, o, &j) != 0) return NULL;
  fill(j, 0, n);
  return j;
}

/* The same with small segments, closed again: a log on disk for recovery tests. */
static int make_log(const char *dir, int n) {
  sb_journal_opts_t o = opts_small();
  sb_journal_t *j = open_filled(dir, &o, n);
  if (!j) return -1;
  sb_journal_close(j);
  return 0;
}

/* --- round trip, rolling, indexes ---------------------------------------------------------- */

TEST(journal_round_trip_with_headers) {
  char *dir = tmpdir();
  sb_journal_t *j = NULL;
  REQUIRE(sb_journal_open(dir, NULL, &j) == 0);
  sb_journal_header_t h[1] = {{"trace", 5, "abc", 3}};
  uint64_t off = 99;
  sb_journal_entry_t e = {.key = "user-1",
                          .key_len = 6,
                          .value = "{\"n\":1}",
                          .value_len = 7,
                          .headers = h,
                          .header_count = 1,
                          .timestamp_ms = 1234};
  CHECK_EQ_INT(append_sync(j, &e, &off), 0);
  CHECK_EQ_INT(off, 0);
  e.timestamp_ms = 0; /* "now" */
  CHECK_EQ_INT(append_sync(j, &e, &off), 0);
  CHECK_EQ_INT(off, 1);
  uint64_t first, next;
  sb_journal_bounds(j, &first, &next);
  CHECK_EQ_INT(first, 0);
  CHECK_EQ_INT(next, 2);
  sb_journal_reader_t *r = NULL;
  REQUIRE(sb_journal_reader_open(j, 0, 0, &r) == 0);
  sb_journal_record_t rec;
  CHECK_EQ_INT(sb_journal_reader_next(r, &rec), 0);
  CHECK_EQ_INT(rec.offset, 0);
  CHECK_EQ_INT(rec.timestamp_ms, 1234);
  CHECK(rec.key_len == 6 && memcmp(rec.key, "user-1", 6) == 0);
  CHECK(rec.value_len == 7 && memcmp(rec.value, "{\"n\":1}", 7) == 0);
  uint32_t pos = 0;
  const uint8_t *nm, *val;
  uint16_t nl;
  uint32_t vl;
  CHECK_EQ_INT(sb_journal_header_next(&rec, &pos, &nm, &nl, &val, &vl), 1);
  CHECK(nl == 5 && memcmp(nm, "trace", 5) == 0 && vl == 3 && memcmp(val, "abc", 3) == 0);
  CHECK_EQ_INT(sb_journal_reader_next(r, &rec), 0);
  CHECK_EQ_INT(rec.offset, 1);
  CHECK(rec.timestamp_ms > 1700000000000); /* filled with the wall clock */
  CHECK_EQ_INT(sb_journal_reader_next(r, &rec), SB_EAGAIN);
  /* A reader at the end sees a later append. */
  CHECK_EQ_INT(append_val(j, "late", 5, NULL), 0);
  CHECK_EQ_INT(sb_journal_reader_next(r, &rec), 0);
  CHECK(rec.offset == 2 && rec.value_len == 4 && memcmp(rec.value, "late", 4) == 0);
  sb_journal_reader_close(r);
  /* Invalid entries never reach the writer. */
  sb_journal_entry_t bad = {.value = NULL, .value_len = 5};
  CHECK_EQ_INT(sb_journal_append(j, &bad, ack_cb, NULL), SB_EINVAL);
  CHECK_EQ_INT(sb_journal_close(j), 0);
  drop_dir(dir);
}

TEST(journal_rolls_and_reopens) {
  char *dir = tmpdir();
  sb_journal_opts_t o = opts_small();
  sb_journal_t *j = NULL;
  REQUIRE((j = open_filled(dir, &o, 1000)) != NULL);
  CHECK_EQ_INT(atomic_load(&g_ack_errors), 0);
  sb_journal_stats_t st;
  sb_journal_stats(j, &st);
  CHECK_EQ_INT(st.appended, 1000);
  CHECK(st.segments > 5);
  CHECK_EQ_INT(read_all_check(j, 0, 0), 1000);
  CHECK_EQ_INT(read_all_check(j, 537, 100), 1000 - 537); /* seek through the index */
  CHECK_EQ_INT(sb_journal_close(j), 0);
  /* Every sealed segment has its index; the active one has none. */
  CHECK_EQ_INT(count_files(dir, ".idx"), (int)st.segments - 1);
  REQUIRE(sb_journal_open(dir, &o, &j) == 0);
  CHECK_EQ_INT(read_all_check(j, 0, 0), 1000);
  uint64_t off = 0;
  CHECK_EQ_INT(append_val(j, "v1000-padding-padding-padding", 2000, &off), 0);
  CHECK_EQ_INT(off, 1000);
  sb_journal_close(j);
  /* Rolling by age: a 1 ms segment age rolls at nearly every batch. */
  o.segment_bytes = SB_JOURNAL_SEGMENT_BYTES_MAX;
  o.segment_ms = 1;
  REQUIRE(sb_journal_open(dir, &o, &j) == 0);
  sb_journal_stats(j, &st);
  uint64_t before = st.segments;
  for (int i = 0; i < 3; i++) {
    usleep(3000);
    append_val(j, "x", 1, NULL);
  }
  sb_journal_stats(j, &st);
  CHECK(st.segments >= before + 2);
  sb_journal_close(j);
  drop_dir(dir);
}

TEST(journal_rebuilds_missing_and_stale_indexes) {
  char *dir = tmpdir();
  sb_journal_opts_t o = opts_small();
  sb_journal_t *j = NULL;
  REQUIRE(make_log(dir, 600) == 0);
  REQUIRE(count_files(dir, ".idx") >= 3);
  char p[512];
  /* Missing: delete the first index. Damaged: flip a byte in the second. Stale: claim another
   * segment size in the third (as if written for a longer file). */
  snprintf(p, sizeof p, "%s/00000000000000000000.idx", dir);
  CHECK_EQ_INT(unlink(p), 0);
  DIR *d = opendir(dir);
  struct dirent *de;
  char names[2][64] = {{0}};
  int k = 0;
  while ((de = readdir(d)) != NULL && k < 2)
    if (strstr(de->d_name, ".idx") && strcmp(de->d_name, "00000000000000000000.idx") != 0)
      strcpy(names[k++], de->d_name);
  closedir(d);
  REQUIRE(k == 2);
  patch_file(dir, names[0], 50, 0x01);
  patch_file(dir, names[1], 16, 0x01);
  /* Orphan index and leftover temp files are cleaned up. */
  snprintf(p, sizeof p, "%s/00000000000099999999.idx", dir);
  close(open(p, O_CREAT | O_WRONLY, 0644));
  REQUIRE(sb_journal_open(dir, &o, &j) == 0);
  CHECK_EQ_INT(read_all_check(j, 0, 0), 600);
  for (uint64_t from = 0; from < 600; from += 53)
    CHECK_EQ_INT(read_all_check(j, from, 64), 600 - (int)from);
  sb_journal_close(j);
  CHECK(access(p, F_OK) != 0);
  snprintf(p, sizeof p, "%s/00000000000000000000.idx", dir);
  CHECK(access(p, F_OK) == 0); /* rewritten */
  drop_dir(dir);
}

TEST(journal_seek_by_time) {
  char *dir = tmpdir();
  sb_journal_opts_t o = opts_small();
  sb_journal_t *j = NULL;
  REQUIRE((j = open_filled(dir, &o, 500)) != NULL); /* record i has timestamp 1000 + i */
  /* A record out of time order: the first record with ts >= 1600 is offset 500, not 501. */
  CHECK_EQ_INT(append_val(j, "v500-padding-padding-padding", 1500, NULL), 0);
  CHECK_EQ_INT(append_val(j, "late-clock", 5000, NULL), 0);
  sb_journal_reader_t *r = NULL;
  REQUIRE(sb_journal_reader_open(j, 0, 0, &r) == 0);
  sb_journal_record_t rec;
  int64_t probes[] = {0, 1000, 1001, 1255, 1499, 1500};
  uint64_t expect[] = {0, 0, 1, 255, 499, 500};
  for (size_t i = 0; i < sizeof probes / sizeof *probes; i++) {
    CHECK_EQ_INT(sb_journal_reader_seek_time(r, probes[i]), 0);
    CHECK_EQ_INT(sb_journal_reader_next(r, &rec), 0);
    CHECK_EQ_INT(rec.offset, expect[i]);
  }
  CHECK_EQ_INT(sb_journal_reader_seek_time(r, 1501), 0);
  CHECK_EQ_INT(sb_journal_reader_next(r, &rec), 0);
  CHECK_EQ_INT(rec.offset, 501);
  CHECK_EQ_INT(sb_journal_reader_seek_time(r, 9999), 0);
  CHECK_EQ_INT(sb_journal_reader_next(r, &rec), SB_EAGAIN);
  sb_journal_reader_close(r);
  sb_journal_close(j);
  drop_dir(dir);
}

TEST(journal_large_records_with_small_reader_buffer) {
  char *dir = tmpdir();
  sb_journal_t *j = NULL;
  REQUIRE(sb_journal_open(dir, NULL, &j) == 0);
  size_t big = 3u << 20;
  uint8_t *v = malloc(big);
  for (size_t i = 0; i < big; i++)
    v[i] = (uint8_t)(i * 31 + 7);
  sb_journal_entry_t e = {.value = v, .value_len = (uint32_t)big, .timestamp_ms = 1};
  CHECK_EQ_INT(append_sync(j, &e, NULL), 0);
  CHECK_EQ_INT(append_val(j, "small", 2, NULL), 0);
  e.value_len = SB_JOURNAL_RECORD_MAX; /* over the limit once the fixed part is added */
  CHECK_EQ_INT(sb_journal_append(j, &e, ack_cb, NULL), SB_EINVAL);
  sb_journal_reader_t *r = NULL;
  REQUIRE(sb_journal_reader_open(j, 0, 128, &r) == 0);
  sb_journal_record_t rec;
  CHECK_EQ_INT(sb_journal_reader_next(r, &rec), 0);
  CHECK(rec.value_len == big && memcmp(rec.value, v, big) == 0);
  CHECK_EQ_INT(sb_journal_reader_next(r, &rec), 0);
  CHECK(rec.value_len == 5 && memcmp(rec.value, "small", 5) == 0);
  sb_journal_reader_close(r);
  sb_journal_close(j);
  free(v);
  drop_dir(dir);
}

/* --- recovery ------------------------------------------------------------------------------ */

/* Writes 300 records over several segments, closes, lets damage() edit the files, reopens and
 * returns the journal with the reader check's count in *n. */
static sb_journal_t *damage_and_reopen(char *dir, void (*damage)(const char *dir, const char *seg),
                                       int *n) {
  sb_journal_opts_t o = opts_small();
  sb_journal_t *j = NULL;
  if (make_log(dir, 300) != 0) return NULL;
  char seg[64];
  last_segment(dir, seg);
  damage(dir, seg);
  if (sb_journal_open(dir, &o, &j) != 0) return NULL;
  *n = read_all_check(j, 0, 0);
  return j;
}

static void cut_tail(const char *dir, const char *seg) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", dir, seg);
  truncate(p, file_size(dir, seg) - 5);
}

static void flip_last_value(const char *dir, const char *seg) {
  /* The last record's value ends at the end of the file: its last byte is payload. */
  patch_file(dir, seg, file_size(dir, seg) - 1, 0x40);
}

static void append_garbage(const char *dir, const char *seg) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", dir, seg);
  int fd = open(p, O_WRONLY | O_APPEND);
  uint8_t junk[300];
  for (size_t i = 0; i < sizeof junk; i++)
    junk[i] = (uint8_t)(i * 13 + 1);
  write(fd, junk, sizeof junk);
  close(fd);
}

static void torn_new_segment(const char *dir, const char *seg) {
  /* A crash right after creating the next segment, before its header was complete. */
  char p[512];
  snprintf(p, sizeof p, "%s/00000000000000000300.seg", dir);
  int fd = open(p, O_CREAT | O_WRONLY, 0644);
  write(fd, "SBJSEG", 6);
  close(fd);
  (void)seg;
}

TEST(journal_recovers_truncated_tail) {
  char *dir = tmpdir();
  int n = 0;
  sb_journal_t *j = damage_and_reopen(dir, cut_tail, &n);
  REQUIRE(j != NULL);
  CHECK_EQ_INT(n, 299);
  uint64_t first, next, off = 0;
  sb_journal_bounds(j, &first, &next);
  CHECK_EQ_INT(next, 299);
  /* The lost offset is reused, and the journal is appendable. */
  CHECK_EQ_INT(append_val(j, "v299-padding-padding-padding", 1299, &off), 0);
  CHECK_EQ_INT(off, 299);
  CHECK_EQ_INT(read_all_check(j, 0, 0), 300);
  sb_journal_close(j);
  drop_dir(dir);
}

TEST(journal_recovers_bit_flip_in_last_record) {
  char *dir = tmpdir();
  int n = 0;
  sb_journal_t *j = damage_and_reopen(dir, flip_last_value, &n);
  REQUIRE(j != NULL);
  CHECK_EQ_INT(n, 299); /* the flipped record is gone, nothing else */
  sb_journal_close(j);
  drop_dir(dir);
}

TEST(journal_recovers_garbage_after_tail) {
  char *dir = tmpdir();
  int n = 0;
  sb_journal_t *j = damage_and_reopen(dir, append_garbage, &n);
  REQUIRE(j != NULL);
  CHECK_EQ_INT(n, 300);
  sb_journal_close(j);
  char seg[64];
  last_segment(dir, seg);
  off_t sz = file_size(dir, seg);
  REQUIRE(sb_journal_open(dir, NULL, &j) == 0); /* the garbage was cut: size is stable */
  sb_journal_close(j);
  CHECK_EQ_INT(file_size(dir, seg), sz);
  drop_dir(dir);
}

TEST(journal_recovers_torn_segment_creation) {
  char *dir = tmpdir();
  int n = 0;
  sb_journal_t *j = damage_and_reopen(dir, torn_new_segment, &n);
  REQUIRE(j != NULL);
  CHECK_EQ_INT(n, 300);
  uint64_t off = 0;
  CHECK_EQ_INT(append_val(j, "v300-padding-padding-padding", 1300, &off), 0);
  CHECK_EQ_INT(off, 300);
  sb_journal_close(j);
  drop_dir(dir);
}

static void flip_headers(const char *dir, const char *seg) {
  /* One bit in the base field of the first (sealed) and of the last segment header. */
  patch_file(dir, "00000000000000000000.seg", 9, 0x02);
  patch_file(dir, seg, 12, 0x80);
}

TEST(journal_repairs_flipped_segment_headers) {
  char *dir = tmpdir();
  int n = 0;
  sb_journal_t *j = damage_and_reopen(dir, flip_headers, &n);
  REQUIRE(j != NULL);
  CHECK_EQ_INT(n, 300); /* the headers are rebuilt from the file names; no record is lost */
  sb_journal_close(j);
  CHECK_EQ_INT(count_files(dir, ".corrupt"), 0);
  drop_dir(dir);
}

TEST(journal_sealed_segment_damage_is_never_served) {
  char *dir = tmpdir();
  sb_journal_opts_t o = opts_small();
  sb_journal_t *j = NULL;
  REQUIRE(make_log(dir, 300) == 0);
  /* Media damage inside the first (sealed, indexed) segment, index left valid. */
  patch_file(dir, "00000000000000000000.seg", 200, 0x08);
  REQUIRE(sb_journal_open(dir, &o, &j) == 0);
  sb_journal_reader_t *r = NULL;
  REQUIRE(sb_journal_reader_open(j, 0, 0, &r) == 0);
  sb_journal_record_t rec;
  int rc, good = 0;
  while ((rc = sb_journal_reader_next(r, &rec)) == 0)
    good++;
  CHECK_EQ_INT(rc, SB_ECORRUPT);
  CHECK(good < 10);
  sb_journal_reader_close(r);
  /* Later segments are still readable. */
  CHECK_EQ_INT(read_all_check(j, 250, 0), 50);
  sb_journal_close(j);
  drop_dir(dir);
}

TEST(journal_directory_lock) {
  char *dir = tmpdir();
  sb_journal_t *a = NULL, *b = NULL;
  REQUIRE(sb_journal_open(dir, NULL, &a) == 0);
  CHECK_EQ_INT(sb_journal_open(dir, NULL, &b), SB_ESTATE);
  sb_journal_close(a);
  CHECK_EQ_INT(sb_journal_open(dir, NULL, &b), 0);
  if (b) sb_journal_close(b);
  drop_dir(dir);
}

/* --- retention ----------------------------------------------------------------------------- */

TEST(journal_retention_low_water_size_age) {
  char *dir = tmpdir();
  sb_journal_opts_t o = opts_small();
  sb_journal_t *j = NULL;
  REQUIRE((j = open_filled(dir, &o, 1000)) != NULL);
  sb_journal_stats_t st;
  sb_journal_stats(j, &st);
  uint64_t segs0 = st.segments, first, next;
  /* A reader inside the first segment keeps reading it after it is removed. */
  sb_journal_reader_t *r = NULL;
  REQUIRE(sb_journal_reader_open(j, 0, 64, &r) == 0);
  sb_journal_record_t rec;
  CHECK_EQ_INT(sb_journal_reader_next(r, &rec), 0);

  CHECK_EQ_INT(sb_journal_retain(j, 0, 0), 0); /* nothing asked, nothing configured */
  int removed = sb_journal_retain(j, 400, 0);
  CHECK(removed > 0);
  sb_journal_bounds(j, &first, &next);
  CHECK(first <= 400 && first > 0);
  CHECK_EQ_INT(next, 1000);
  CHECK_EQ_INT(read_all_check(j, 0, 0), 1000 - (int)first); /* starts at first */
  /* It finishes its removed segment, then continues at the first stored offset. */
  uint64_t expect = 1;
  int jumps = 0, in_order = 1;
  while (sb_journal_reader_next(r, &rec) == 0) {
    if (rec.offset != expect) {
      jumps++;
      in_order &= rec.offset == first;
    }
    expect = rec.offset + 1;
  }
  CHECK_EQ_INT(expect, 1000);
  CHECK_EQ_INT(jumps, 1);
  CHECK(in_order);
  sb_journal_reader_close(r);
  sb_journal_close(j);

  /* By size: about 3 segments' worth is kept, never the active one. */
  o.retention_bytes = 3 * SB_JOURNAL_SEGMENT_BYTES_MIN;
  REQUIRE(sb_journal_open(dir, &o, &j) == 0);
  sb_journal_retain(j, 0, 0);
  sb_journal_stats(j, &st);
  CHECK(st.segments < segs0 && st.segments >= 3);
  CHECK(st.bytes >= o.retention_bytes - SB_JOURNAL_SEGMENT_BYTES_MIN);
  CHECK(st.bytes < o.retention_bytes + 2 * SB_JOURNAL_SEGMENT_BYTES_MIN);
  sb_journal_bounds(j, &first, &next);
  CHECK_EQ_INT(read_all_check(j, 0, 0), 1000 - (int)first);
  sb_journal_close(j);

  /* By age: timestamps are 1000 + offset; at "now" 1900 with 100 ms retention every sealed
   * segment whose newest record is older than 1800 goes. */
  o.retention_bytes = 0;
  o.retention_ms = 100;
  REQUIRE(sb_journal_open(dir, &o, &j) == 0);
  sb_journal_retain(j, 0, 1900);
  sb_journal_bounds(j, &first, &next);
  CHECK(first > 700 && first <= 800);
  sb_journal_retain(j, 0, 1000000); /* everything old: only the active segment is left */
  sb_journal_stats(j, &st);
  CHECK_EQ_INT(st.segments, 1);
  sb_journal_close(j);
  CHECK_EQ_INT(count_files(dir, ".seg"), 1);
  CHECK_EQ_INT(count_files(dir, ".idx"), 0);
  REQUIRE(sb_journal_open(dir, &o, &j) == 0);
  sb_journal_bounds(j, &first, &next);
  CHECK_EQ_INT(next, 1000); /* offsets survive losing every sealed segment */
  sb_journal_close(j);
  drop_dir(dir);
}

/* --- fsync policy, fault injection --------------------------------------------------------- */

/* Shared with the writer thread through the hooks. */
typedef struct trace {
  pthread_mutex_t mu;   /* guards the rest */
  uint64_t written_max; /* 1 + the highest offset passed to pwritev */
  uint64_t synced_max;  /* written_max as of the last fdatasync that returned */
  int fsyncs;           /* fdatasync calls */
  int early_acks;       /* acks whose record was not covered by a returned fdatasync */
  int fail_writes;      /* > 0: make that many pwritev calls fail (first one short) */
  int fail_fsyncs;      /* > 0: make that many fdatasync calls fail with EIO */
} trace_t;

static ssize_t trace_pwritev(void *ctx, int fd, const struct iovec *iov, int cnt, off_t pos) {
  trace_t *t = ctx;
  pthread_mutex_lock(&t->mu);
  int fail = t->fail_writes;
  if (fail) t->fail_writes--;
  for (int i = 0; i < cnt && !fail; i++) {
    uint64_t off;
    memcpy(&off, (const uint8_t *)iov[i].iov_base + 8, 8); /* record offset field */
    if (off + 1 > t->written_max) t->written_max = off + 1;
  }
  pthread_mutex_unlock(&t->mu);
  if (fail) {
    /* A real disk filling up: part of the batch lands, then ENOSPC. */
    if (fail % 2 == 0 && iov[0].iov_len > 1)
      return pwrite(fd, iov[0].iov_base, iov[0].iov_len / 2, pos);
    errno = ENOSPC;
    return -1;
  }
  return pwritev(fd, iov, cnt, pos);
}

static int trace_fdatasync(void *ctx, int fd) {
  trace_t *t = ctx;
  pthread_mutex_lock(&t->mu);
  uint64_t w = t->written_max;
  int fail = t->fail_fsyncs;
  if (fail) t->fail_fsyncs--;
  pthread_mutex_unlock(&t->mu);
  if (fail) {
    errno = EIO;
    return -1;
  }
  int r = fdatasync(fd);
  pthread_mutex_lock(&t->mu);
  t->fsyncs++;
  if (r == 0) t->synced_max = w;
  pthread_mutex_unlock(&t->mu);
  return r;
}

static void trace_ack(void *arg, int status, uint64_t offset) {
  trace_t *t = arg;
  pthread_mutex_lock(&t->mu);
  if (status == 0 && offset + 1 > t->synced_max) t->early_acks++;
  pthread_mutex_unlock(&t->mu);
  atomic_fetch_add(&g_acks, 1);
  if (status) atomic_fetch_add(&g_ack_errors, 1);
}

/* Appends n records from 4 threads with the trace hooks under policy; returns the trace. */
typedef struct burst {
  sb_journal_t *j; /* borrowed */
  trace_t *t;      /* borrowed */
  int n;           /* records to append */
} burst_t;

static void *burst_main(void *arg) {
  burst_t *b = arg;
  for (int i = 0; i < b->n; i++) {
    sb_journal_entry_t e = {.value = "payload", .value_len = 7, .timestamp_ms = 1};
    while (sb_journal_append(b->j, &e, trace_ack, b->t) == SB_EAGAIN)
      usleep(50);
  }
  return NULL;
}

static void run_policy(const char *policy, trace_t *t, int per_thread) {
  char *dir = tmpdir();
  sb__journal_hooks_t hooks = {.ctx = t, .pwritev = trace_pwritev, .fdatasync = trace_fdatasync};
  sb_journal_opts_t o;
  sb_journal_opts_default(&o);
  REQUIRE(sb_journal_parse_fsync(policy, &o) == 0);
  o.hooks = &hooks;
  sb_journal_t *j = NULL;
  REQUIRE(sb_journal_open(dir, &o, &j) == 0);
  atomic_store(&g_acks, 0);
  atomic_store(&g_ack_errors, 0);
  pthread_t th[4];
  burst_t b = {j, t, per_thread};
  for (int i = 0; i < 4; i++)
    pthread_create(&th[i], NULL, burst_main, &b);
  for (int i = 0; i < 4; i++)
    pthread_join(th[i], NULL);
  while (atomic_load(&g_acks) < 4 * per_thread)
    usleep(100);
  sb_journal_close(j);
  drop_dir(dir);
}

TEST(journal_fsync_always_acks_only_after_covering_fsync) {
  trace_t t = {.mu = PTHREAD_MUTEX_INITIALIZER};
  run_policy("always", &t, 500);
  CHECK_EQ_INT(atomic_load(&g_ack_errors), 0);
  CHECK_EQ_INT(t.early_acks, 0);
  CHECK(t.fsyncs > 0);
  CHECK(t.fsyncs <= 2000); /* never more fsyncs than records */
  CHECK_EQ_INT(t.synced_max, 2000);
}

TEST(journal_fsync_never_is_caught_by_the_same_check) {
  /* The control for the test above: without fsyncs the very same trace sees early acks, so
   * the check can fail. */
  trace_t t = {.mu = PTHREAD_MUTEX_INITIALIZER};
  run_policy("never", &t, 100);
  CHECK_EQ_INT(t.fsyncs, 0);
  CHECK_EQ_INT(t.early_acks, 400);
}

TEST(journal_fsync_interval_syncs_in_the_background) {
  trace_t t = {.mu = PTHREAD_MUTEX_INITIALIZER};
  char *dir = tmpdir();
  sb__journal_hooks_t hooks = {.ctx = &t, .pwritev = trace_pwritev, .fdatasync = trace_fdatasync};
  sb_journal_opts_t o;
  sb_journal_opts_default(&o);
  REQUIRE(sb_journal_parse_fsync("interval:20", &o) == 0);
  CHECK_EQ_INT(o.fsync, SB_JOURNAL_FSYNC_INTERVAL);
  CHECK_EQ_INT(o.fsync_interval_ms, 20);
  o.hooks = &hooks;
  sb_journal_t *j = NULL;
  REQUIRE(sb_journal_open(dir, &o, &j) == 0);
  CHECK_EQ_INT(append_val(j, "a", 1, NULL), 0);
  for (int i = 0; i < 200; i++) { /* the writer syncs on its own within ~20 ms */
    pthread_mutex_lock(&t.mu);
    int n = t.fsyncs;
    pthread_mutex_unlock(&t.mu);
    if (n > 0) break;
    usleep(5000);
  }
  pthread_mutex_lock(&t.mu);
  CHECK(t.fsyncs >= 1);
  CHECK_EQ_INT(t.synced_max, 1);
  pthread_mutex_unlock(&t.mu);
  sb_journal_close(j);
  sb_journal_opts_t bad;
  sb_journal_opts_default(&bad);
  CHECK_EQ_INT(sb_journal_parse_fsync("interval:", &bad), SB_EINVAL);
  CHECK_EQ_INT(sb_journal_parse_fsync("interval:0", &bad), SB_EINVAL);
  CHECK_EQ_INT(sb_journal_parse_fsync("interval:5x", &bad), SB_EINVAL);
  CHECK_EQ_INT(sb_journal_parse_fsync("sometimes", &bad), SB_EINVAL);
  CHECK_EQ_INT(bad.fsync, SB_JOURNAL_FSYNC_ALWAYS);
  drop_dir(dir);
}

TEST(journal_enospc_fails_batch_cleanly_and_recovers) {
  trace_t t = {.mu = PTHREAD_MUTEX_INITIALIZER};
  char *dir = tmpdir();
  sb__journal_hooks_t hooks = {.ctx = &t, .pwritev = trace_pwritev, .fdatasync = trace_fdatasync};
  sb_journal_opts_t o;
  sb_journal_opts_default(&o);
  o.hooks = &hooks;
  sb_journal_t *j = NULL;
  REQUIRE((j = open_filled(dir, &o, 10)) != NULL);
  char seg[64];
  last_segment(dir, seg);
  off_t good_size = file_size(dir, seg);
  /* A short write then ENOSPC: the append fails, nothing of it stays on disk. */
  pthread_mutex_lock(&t.mu);
  t.fail_writes = 2;
  pthread_mutex_unlock(&t.mu);
  uint64_t off = 0;
  CHECK_EQ_INT(append_val(j, "lost", 1, &off), SB_ENOSPC);
  CHECK_EQ_INT(file_size(dir, seg), good_size);
  uint64_t first, next;
  sb_journal_bounds(j, &first, &next);
  CHECK_EQ_INT(next, 10);
  /* An fsync failure (EIO) also fails the batch rather than acknowledging it. */
  pthread_mutex_lock(&t.mu);
  t.fail_fsyncs = 1;
  pthread_mutex_unlock(&t.mu);
  int rc = append_val(j, "lost too", 1, &off);
  CHECK(rc == -EIO);
  CHECK_EQ_INT(file_size(dir, seg), good_size);
  /* Space is back: the next append takes the next offset. */
  CHECK_EQ_INT(append_val(j, "v10-padding-padding-padding", 1010, &off), 0);
  CHECK_EQ_INT(off, 10);
  sb_journal_stats_t st;
  sb_journal_stats(j, &st);
  CHECK_EQ_INT(st.failed, 2);
  sb_journal_close(j);
  REQUIRE(sb_journal_open(dir, NULL, &j) == 0);
  CHECK_EQ_INT(read_all_check(j, 0, 0), 11);
  sb_journal_close(j);
  drop_dir(dir);
}

TEST(journal_backpressure_limits) {
  char *dir = tmpdir();
  sb_journal_opts_t o;
  sb_journal_opts_default(&o);
  o.max_bytes = 4096;
  sb_journal_t *j = NULL;
  REQUIRE(sb_journal_open(dir, &o, &j) == 0);
  int rc = 0, n = 0;
  char val[100];
  memset(val, 'x', sizeof val);
  sb_journal_entry_t e = {.value = val, .value_len = sizeof val, .timestamp_ms = 1};
  while (n < 1000 && (rc = append_sync(j, &e, NULL)) == 0)
    n++;
  CHECK_EQ_INT(rc, SB_ELIMIT);
  CHECK(n > 10 && n < 40);
  sb_journal_close(j);
  /* A disk reserve larger than any disk: refused up front, nothing written. */
  o.max_bytes = 0;
  o.disk_reserve_bytes = UINT64_MAX / 2;
  REQUIRE(sb_journal_open(dir, &o, &j) == 0);
  CHECK_EQ_INT(sb_journal_append(j, &e, ack_cb, NULL), SB_ENOSPC);
  sb_journal_close(j);
  /* A small pending limit: a burst without waiting eventually gets SB_EAGAIN. */
  o.disk_reserve_bytes = 0;
  o.max_pending_bytes = 1000;
  REQUIRE(sb_journal_open(dir, &o, &j) == 0);
  atomic_store(&g_acks, 0);
  int queued = 0;
  rc = 0;
  for (int i = 0; i < 100000 && rc == 0; i++)
    if ((rc = sb_journal_append(j, &e, count_cb, NULL)) == 0) queued++;
  CHECK_EQ_INT(rc, SB_EAGAIN);
  while (atomic_load(&g_acks) < queued)
    usleep(100);
  sb_journal_close(j);
  drop_dir(dir);
}

/* --- group commit ---------------------------------------------------------------------------- */

#define GC_THREADS 16
#define GC_PER_THREAD 400

typedef struct producer {
  sb_journal_t *j;                 /* borrowed */
  int id;                          /* producer number */
  atomic_int acked;                /* acknowledgements received */
  atomic_int errors;               /* acknowledgements with an error */
  uint64_t offsets[GC_PER_THREAD]; /* offset of each of this producer's records */
} producer_t;

typedef struct pending {
  producer_t *p; /* borrowed */
  int seq;       /* record number within the producer */
} pending_t;

static void gc_ack(void *arg, int status, uint64_t offset) {
  pending_t *x = arg;
  if (status)
    atomic_fetch_add(&x->p->errors, 1);
  else
    x->p->offsets[x->seq] = offset;
  atomic_fetch_add(&x->p->acked, 1);
  free(x);
}

static void *producer_main(void *arg) {
  producer_t *p = arg;
  for (int i = 0; i < GC_PER_THREAD; i++) {
    char val[32];
    int n = snprintf(val, sizeof val, "%d:%d", p->id, i);
    sb_journal_entry_t e = {.key = &p->id,
                            .key_len = sizeof p->id,
                            .value = val,
                            .value_len = (uint32_t)n,
                            .timestamp_ms = 1};
    pending_t *x = malloc(sizeof *x);
    *x = (pending_t){p, i};
    while (sb_journal_append(p->j, &e, gc_ack, x) == SB_EAGAIN)
      usleep(50);
    /* Keep a few in flight, like a producer with a window, not an unbounded burst. */
    while (i - atomic_load(&p->acked) > 8)
      usleep(20);
  }
  return NULL;
}

TEST(journal_group_commit_many_producers) {
  char *dir = tmpdir();
  sb_journal_opts_t o;
  sb_journal_opts_default(&o);
  o.segment_bytes = 64 * 1024; /* roll a few times during the run */
  sb_journal_t *j = NULL;
  REQUIRE(sb_journal_open(dir, &o, &j) == 0);
  static producer_t ps[GC_THREADS];
  pthread_t th[GC_THREADS];
  for (int i = 0; i < GC_THREADS; i++) {
    ps[i] = (producer_t){.j = j, .id = i};
    pthread_create(&th[i], NULL, producer_main, &ps[i]);
  }
  for (int i = 0; i < GC_THREADS; i++)
    pthread_join(th[i], NULL);
  for (int i = 0; i < GC_THREADS; i++)
    while (atomic_load(&ps[i].acked) < GC_PER_THREAD)
      usleep(100);
  sb_journal_stats_t st;
  sb_journal_stats(j, &st);
  CHECK_EQ_INT(st.appended, GC_THREADS * GC_PER_THREAD);
  CHECK(st.batches < st.appended / 2); /* many records shared each write + fsync */
  CHECK(st.fsyncs <= st.batches + st.segments);
  sb_journal_close(j);

  /* After a reopen, every acknowledged record is at its offset, and each producer's records
   * are in its append order. */
  REQUIRE(sb_journal_open(dir, &o, &j) == 0);
  sb_journal_reader_t *r = NULL;
  REQUIRE(sb_journal_reader_open(j, 0, 4096, &r) == 0);
  int last_seq[GC_THREADS], seen = 0, order_ok = 1, content_ok = 1, rc;
  for (int i = 0; i < GC_THREADS; i++)
    last_seq[i] = -1;
  sb_journal_record_t rec;
  while ((rc = sb_journal_reader_next(r, &rec)) == 0) {
    int id = -1, seq = -1;
    char val[32] = {0};
    memcpy(val, rec.value, rec.value_len < 31 ? rec.value_len : 31);
    if (sscanf(val, "%d:%d", &id, &seq) != 2 || id < 0 || id >= GC_THREADS || seq < 0 ||
        seq >= GC_PER_THREAD) {
      content_ok = 0;
      continue;
    }
    content_ok &= ps[id].offsets[seq] == rec.offset && rec.key_len == sizeof(int) &&
                  memcmp(rec.key, &id, sizeof id) == 0;
    order_ok &= seq == last_seq[id] + 1;
    last_seq[id] = seq;
    seen++;
  }
  CHECK_EQ_INT(rc, SB_EAGAIN);
  CHECK_EQ_INT(seen, GC_THREADS * GC_PER_THREAD);
  CHECK(order_ok);
  CHECK(content_ok);
  for (int i = 0; i < GC_THREADS; i++)
    CHECK_EQ_INT(atomic_load(&ps[i].errors), 0);
  sb_journal_reader_close(r);
  sb_journal_close(j);
  drop_dir(dir);
}

/* --- readers tailing a growing log ------------------------------------------------------------ */

typedef struct tail {
  sb_journal_t *j; /* borrowed */
  int want;        /* records to read */
  int got;         /* records read in order with the right content */
  int bad;         /* records out of order or with wrong content, or read errors */
} tail_t;

static void *tail_main(void *arg) {
  tail_t *t = arg;
  sb_journal_reader_t *r = NULL;
  if (sb_journal_reader_open(t->j, 0, 512, &r) != 0) {
    t->bad++;
    return NULL;
  }
  sb_journal_record_t rec;
  while (t->got < t->want && t->bad == 0) {
    int rc = sb_journal_reader_next(r, &rec);
    if (rc == SB_EAGAIN) {
      usleep(200);
      continue;
    }
    char val[64];
    snprintf(val, sizeof val, "v%d-padding-padding-padding", t->got);
    if (rc != 0 || rec.offset != (uint64_t)t->got || rec.value_len != strlen(val) ||
        memcmp(rec.value, val, rec.value_len) != 0)
      t->bad++;
    else
      t->got++;
  }
  sb_journal_reader_close(r);
  return NULL;
}

TEST(journal_reader_tails_appends_across_rolls) {
  char *dir = tmpdir();
  sb_journal_opts_t o = opts_small();
  sb_journal_t *j = NULL;
  REQUIRE(sb_journal_open(dir, &o, &j) == 0);
  tail_t t = {.j = j, .want = 3000};
  pthread_t th;
  pthread_create(&th, NULL, tail_main, &t);
  for (int i = 0; i < 3000; i += 100)
    fill(j, i, i + 100); /* in steps, so the reader catches up and waits at the end */
  pthread_join(th, NULL);
  CHECK_EQ_INT(t.bad, 0);
  CHECK_EQ_INT(t.got, 3000);
  sb_journal_close(j);
  drop_dir(dir);
}

TEST(journal_retention_applies_when_rolling) {
  char *dir = tmpdir();
  sb_journal_opts_t o = opts_small();
  o.retention_bytes = 4 * SB_JOURNAL_SEGMENT_BYTES_MIN;
  sb_journal_t *j = NULL;
  REQUIRE((j = open_filled(dir, &o, 2000)) != NULL); /* about 35 segments' worth */
  sb_journal_stats_t st;
  sb_journal_stats(j, &st);
  CHECK(st.segments <= 6); /* no sb_journal_retain call: the writer applied it at each roll */
  CHECK(st.bytes <= o.retention_bytes + 2 * SB_JOURNAL_SEGMENT_BYTES_MIN);
  uint64_t first, next;
  sb_journal_bounds(j, &first, &next);
  CHECK(first > 1500);
  CHECK_EQ_INT(read_all_check(j, 0, 0), 2000 - (int)first);
  sb_journal_close(j);
  drop_dir(dir);
}

static int thread_count(void) {
  DIR *d = opendir("/proc/self/task");
  if (!d) return -1;
  int n = 0;
  for (struct dirent *e; (e = readdir(d));)
    n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

/* 200 journals open at once share the writer pool: at most 8 writer threads, and every one of
 * them still writes, syncs (interval fsyncs included) and acknowledges in order. */
TEST(journals_share_a_bounded_writer_pool) {
  enum { N = 200 };
  char *dir = tmpdir();
  static sb_journal_t *js[N];
  int before = thread_count();
  for (int i = 0; i < N; i++) {
    char sub[512];
    snprintf(sub, sizeof sub, "%s/j%03d", dir, i);
    sb_journal_opts_t o;
    sb_journal_opts_default(&o);
    if (i % 2) REQUIRE(sb_journal_parse_fsync("interval:5", &o) == 0);
    REQUIRE(sb_journal_open(sub, &o, &js[i]) == 0);
  }
  int during = thread_count();
  CHECK(during - before <= 8);
  atomic_store(&g_acks, 0);
  atomic_store(&g_ack_errors, 0);
  for (int round = 0; round < 5; round++)
    for (int i = 0; i < N; i++) {
      char val[32];
      snprintf(val, sizeof val, "j%d-r%d", i, round);
      sb_journal_entry_t e = {.value = val, .value_len = (uint32_t)strlen(val)};
      REQUIRE(sb_journal_append(js[i], &e, count_cb, NULL) == 0);
    }
  while (atomic_load(&g_acks) < 5 * N)
    usleep(1000);
  CHECK_EQ_INT(atomic_load(&g_ack_errors), 0);
  usleep(50000); /* the interval journals' background fsyncs are due after 5 ms */
  for (int i = 0; i < N; i++) {
    sb_journal_stats_t st;
    sb_journal_stats(js[i], &st);
    CHECK_EQ_INT(st.appended, 5);
    CHECK(st.fsyncs >= 1);
    sb_journal_reader_t *rd;
    REQUIRE(sb_journal_reader_open(js[i], 0, 4096, &rd) == 0);
    sb_journal_record_t r;
    for (int round = 0; round < 5; round++) {
      char want[32];
      snprintf(want, sizeof want, "j%d-r%d", i, round);
      REQUIRE(sb_journal_reader_next(rd, &r) == 0);
      CHECK_EQ_INT(r.offset, (uint64_t)round);
      CHECK(r.value_len == strlen(want) && memcmp(r.value, want, r.value_len) == 0);
    }
    sb_journal_reader_close(rd);
  }
  for (int i = 0; i < N; i++)
    sb_journal_close(js[i]);
  drop_dir(dir);
}
