/*
 * The journal's kill -9 helper (driven by journal_crash_test.py).
 *
 *   journal_crash_helper append <dir> <cycle>   append from 4 threads with fsync=always until
 *                                                killed; print "offset cycle thread seq" for
 *                                                every acknowledgement, one write(2) each
 *   journal_crash_helper verify <dir> <acks>    reopen (recovery), check every stored record is
 *                                                intact and every line of <acks> is stored
 *
 * A record's value is derived from (cycle, thread, seq) alone, so verify can rebuild the exact
 * bytes an acknowledgement promised. Exit status: 0 ok, 1 a check failed, 2 usage or I/O.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log/journal.h"
#include "switchboard/error.h"

#define THREADS 4
#define WINDOW 16          /* records in flight per thread */
#define VALUE_MAX 3000     /* bytes of the largest value */
#define RUN_MAX_SECONDS 20 /* the helper stops by itself if nobody kills it */

typedef struct producer {
  sb_journal_t *j;  /* borrowed */
  int cycle;        /* from argv */
  int id;           /* thread number */
  atomic_int acked; /* acknowledgements received */
} producer_t;

typedef struct inflight {
  producer_t *p; /* borrowed */
  int seq;       /* record number within the producer */
} inflight_t;

/* Fills out with the value of (cycle, thread, seq); returns its length. */
static size_t make_value(char *out, int cycle, int thread, int seq) {
  int n = snprintf(out, 64, "c%d-t%d-s%d|", cycle, thread, seq);
  size_t len = (size_t)n + (size_t)((seq * 37 + thread * 101 + cycle * 7) % VALUE_MAX);
  for (size_t i = (size_t)n; i < len; i++)
    out[i] = (char)('a' + (i * 7 + (size_t)seq) % 26);
  return len;
}

/* Runs on the journal's writer thread, after the covering fdatasync returned. */
static void on_ack(void *arg, int status, uint64_t offset) {
  inflight_t *x = arg;
  if (status == 0) {
    char line[96];
    int n = snprintf(line, sizeof line, "%llu %d %d %d\n", (unsigned long long)offset, x->p->cycle,
                     x->p->id, x->seq);
    if (write(1, line, (size_t)n) != n) _exit(2);
  }
  atomic_fetch_add(&x->p->acked, 1);
  free(x);
}

static void *producer_main(void *arg) {
  producer_t *p = arg;
  static _Thread_local char val[VALUE_MAX + 64];
  for (int seq = 0;; seq++) {
    while (seq - atomic_load(&p->acked) >= WINDOW)
      usleep(100);
    size_t len = make_value(val, p->cycle, p->id, seq);
    sb_journal_entry_t e = {
        .key = &p->id, .key_len = sizeof p->id, .value = val, .value_len = (uint32_t)len};
    inflight_t *x = malloc(sizeof *x);
    *x = (inflight_t){p, seq};
    int rc;
    while ((rc = sb_journal_append(p->j, &e, on_ack, x)) == SB_EAGAIN)
      usleep(100);
    if (rc) {
      fprintf(stderr, "append: %s\n", sb_strerror(rc));
      _exit(2);
    }
  }
  return NULL;
}

static sb_journal_opts_t opts(void) {
  sb_journal_opts_t o;
  sb_journal_opts_default(&o);
  o.segment_bytes = 256 * 1024; /* crashes land during rolls too */
  o.index_interval = 1024;
  return o;
}

static int run_append(const char *dir, int cycle) {
  sb_journal_opts_t o = opts();
  sb_journal_t *j = NULL;
  int rc = sb_journal_open(dir, &o, &j);
  if (rc) {
    fprintf(stderr, "open: %s\n", sb_strerror(rc));
    return 2;
  }
  static producer_t ps[THREADS];
  pthread_t th[THREADS];
  for (int i = 0; i < THREADS; i++) {
    ps[i] = (producer_t){.j = j, .cycle = cycle, .id = i};
    pthread_create(&th[i], NULL, producer_main, &ps[i]);
  }
  sleep(RUN_MAX_SECONDS);
  _exit(0); /* like a crash, but late: the test kills long before */
}

typedef struct stored {
  int cycle, thread, seq; /* the identity parsed from a stored value */
} stored_t;

static int run_verify(const char *dir, const char *acks_path) {
  sb_journal_opts_t o = opts();
  sb_journal_t *j = NULL;
  int rc = sb_journal_open(dir, &o, &j);
  if (rc) {
    fprintf(stderr, "verify: open: %s\n", sb_strerror(rc));
    return 2;
  }
  uint64_t first, next;
  sb_journal_bounds(j, &first, &next);
  stored_t *st = calloc(next + 1, sizeof *st);
  sb_journal_reader_t *r = NULL;
  if (!st || sb_journal_reader_open(j, 0, 0, &r) != 0) return 2;
  sb_journal_record_t rec;
  uint64_t expect = first, bad = 0;
  static char val[VALUE_MAX + 64];
  while ((rc = sb_journal_reader_next(r, &rec)) == 0) {
    stored_t s = {-1, -1, -1};
    char head[64] = {0};
    memcpy(head, rec.value, rec.value_len < 63 ? rec.value_len : 63);
    if (rec.offset != expect || sscanf(head, "c%d-t%d-s%d|", &s.cycle, &s.thread, &s.seq) != 3) {
      bad++;
    } else {
      size_t len = make_value(val, s.cycle, s.thread, s.seq);
      if (len != rec.value_len || memcmp(val, rec.value, len) != 0) bad++;
      st[rec.offset] = s;
    }
    expect = rec.offset + 1;
  }
  if (rc != SB_EAGAIN || expect != next) {
    fprintf(stderr, "verify: read ended with %s at %llu, next %llu\n", sb_strerror(rc),
            (unsigned long long)expect, (unsigned long long)next);
    bad++;
  }
  sb_journal_reader_close(r);
  sb_journal_close(j);

  FILE *f = fopen(acks_path, "r");
  if (!f) return 2;
  unsigned long long off;
  int c, t, s;
  uint64_t acked = 0, lost = 0;
  while (fscanf(f, "%llu %d %d %d", &off, &c, &t, &s) == 4) {
    acked++;
    if (off >= next || st[off].cycle != c || st[off].thread != t || st[off].seq != s) {
      if (lost < 10)
        fprintf(stderr, "verify: acknowledged %llu (c%d t%d s%d) is missing\n", off, c, t, s);
      lost++;
    }
  }
  fclose(f);
  free(st);
  printf("verify: %llu stored, %llu acknowledged, %llu lost, %llu bad\n",
         (unsigned long long)(next - first), (unsigned long long)acked, (unsigned long long)lost,
         (unsigned long long)bad);
  return lost || bad ? 1 : 0;
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "append") == 0) return run_append(argv[2], atoi(argv[3]));
  if (argc == 4 && strcmp(argv[1], "verify") == 0) return run_verify(argv[2], argv[3]);
  fprintf(stderr, "usage: %s append <dir> <cycle> | verify <dir> <acks>\n", argv[0]);
  return 2;
}
