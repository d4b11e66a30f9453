/*
 * The broker's kill -9 test subject (driven by broker_crash_test.py).
 *
 *   broker_crash_helper run <dir> <cycle>   producers and consumers at load on queue "work"
 *                                           (dead-letter queue "work-dlq" after 2 receives)
 *   broker_crash_helper check <dir>         lists what is stored, without changing it
 *
 * run prints "S <body>" once a send is acknowledged, "T <body>" before a delete is attempted and
 * "D <body>" once it is acknowledged; each line
 * is one write(2), so a kill never leaves a line claiming an acknowledgement that did not
 * happen (a cut line is dropped by the driver). Bodies starting with "poison-" are never
 * deleted: consumers hand them back (visibility 0) until they are dead-lettered. Every message
 * carries two attributes derived from its body, so the check can tell that dead-lettered
 * copies are byte-identical.
 *
 * run also appends to stream "log" ("A <offset>" per acknowledged append) and reads it as
 * group "g", committing after each read ("C <offset>" per acknowledged commit).
 *
 * check prints "Q <body>" for every message of "work" and "L <body> <ok>" for every message of
 * "work-dlq", ok being 1 when its attributes and dead-letter metadata are exactly as expected,
 * then "N <next offset>" of stream "log" and "G <committed offset>" of group "g".
 */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "switchboard/broker.h"
#include "switchboard/error.h"

#define PRODUCERS 3
#define CONSUMERS 2
#define STREAMERS 2 /* one appender, one committer */

typedef struct waiter {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done, status;
  const sb_broker_result_t *r; /* valid while the callback waits for the caller */
  int consumed;                /* the caller finished reading r */
  int left;                    /* the callback returned: w may be destroyed */
} waiter_t;

/* The callback hands the borrowed result to the waiting thread and blocks until it is read:
 * simple for a test, and the broker thread has nothing else urgent here. */
static void on_done(void *arg, int status, const sb_broker_result_t *r) {
  waiter_t *w = arg;
  pthread_mutex_lock(&w->mu);
  w->status = status;
  w->r = r;
  w->done = 1;
  pthread_cond_broadcast(&w->cv);
  while (!w->consumed)
    pthread_cond_wait(&w->cv, &w->mu);
  w->left = 1;
  pthread_cond_broadcast(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

static void w_init(waiter_t *w) {
  memset(w, 0, sizeof *w);
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->cv, NULL);
}

static void w_wait(waiter_t *w) {
  pthread_mutex_lock(&w->mu);
  while (!w->done)
    pthread_cond_wait(&w->cv, &w->mu);
  pthread_mutex_unlock(&w->mu);
}

/* Lets the callback return, and waits until it has (unless it never ran: a refused call). */
static void w_release(waiter_t *w) {
  pthread_mutex_lock(&w->mu);
  w->consumed = 1;
  pthread_cond_broadcast(&w->cv);
  while (w->done && !w->left)
    pthread_cond_wait(&w->cv, &w->mu);
  pthread_mutex_unlock(&w->mu);
  pthread_mutex_destroy(&w->mu);
  pthread_cond_destroy(&w->cv);
}

static void say(const char *tag, const char *body, size_t len) {
  char line[256];
  int n = snprintf(line, sizeof line, "%s %.*s\n", tag, (int)len, body);
  if (write(1, line, (size_t)n) != n) _exit(3);
}

/* The attributes of a body: its length as a Number and its bytes reversed, with NULs mixed
 * in, as Binary. */
static void attrs_of(const char *body, char *num, uint8_t *bin, size_t *bin_len) {
  size_t n = strlen(body);
  snprintf(num, 24, "%zu", n);
  for (size_t i = 0; i < n; i++) {
    bin[2 * i] = (uint8_t)body[n - 1 - i];
    bin[2 * i + 1] = 0;
  }
  *bin_len = 2 * n;
}

static sb_broker_t *g_b;
static char g_cycle[16];
static atomic_int g_stop;

static void *producer(void *arg) {
  int t = (int)(intptr_t)arg;
  for (int i = 0; !atomic_load(&g_stop); i++) {
    char body[96], num[24];
    uint8_t bin[192];
    size_t bl;
    snprintf(body, sizeof body, "%sc%s-p%d-%d", i % 7 == 0 ? "poison-" : "", g_cycle, t, i);
    attrs_of(body, num, bin, &bl);
    sb_broker_attr_t at[2] = {{"len", 3, "Number", 6, num, strlen(num)},
                              {"rev", 3, "Binary", 6, bin, bl}};
    sb_broker_msg_t m = {body, strlen(body), at, 2, NULL, 0, NULL, 0, NULL, 0, -1};
    waiter_t w;
    w_init(&w);
    if (sb_queue_send(g_b, "work", &m, 1, on_done, &w)) {
      w_release(&w);
      continue;
    }
    w_wait(&w);
    int ok = w.status == 0 && w.r->n == 1 && w.r->sent[0].status == 0;
    w_release(&w);
    if (ok) say("S", body, strlen(body));
  }
  return NULL;
}

static void *consumer(void *arg) {
  (void)arg;
  while (!atomic_load(&g_stop)) {
    waiter_t w;
    w_init(&w);
    if (sb_queue_receive(g_b, "work", 10, 60000, 100, on_done, &w)) {
      w_release(&w);
      continue;
    }
    w_wait(&w);
    char receipts[10][SB_BROKER_RECEIPT_LEN + 1], bodies[10][96];
    int poison[10];
    size_t n = w.status ? 0 : w.r->n;
    for (size_t i = 0; i < n; i++) {
      const sb_broker_delivery_t *d = &w.r->deliveries[i];
      memcpy(receipts[i], d->receipt, sizeof receipts[i]);
      snprintf(bodies[i], sizeof bodies[i], "%.*s", (int)d->body_len, (const char *)d->body);
      poison[i] = strncmp(bodies[i], "poison-", 7) == 0;
    }
    w_release(&w);
    for (size_t i = 0; i < n; i++) {
      const char *rc[1] = {receipts[i]};
      /* A delete may take effect and the kill come before its acknowledgement: announce the
       * attempt first, so the driver can tell such a message from a lost one. */
      if (!poison[i]) say("T", bodies[i], strlen(bodies[i]));
      waiter_t d;
      w_init(&d);
      int err = poison[i] ? sb_queue_change_visibility(g_b, "work", rc, 1, 0, on_done, &d)
                          : sb_queue_delete_msgs(g_b, "work", rc, 1, on_done, &d);
      if (err) {
        w_release(&d);
        continue;
      }
      w_wait(&d);
      int ok = d.status == 0 && d.r->n == 1 && d.r->statuses[0] == 0;
      w_release(&d);
      if (ok && !poison[i]) say("D", bodies[i], strlen(bodies[i]));
    }
  }
  return NULL;
}

/* Appends to stream "log" and prints "A <offset>" for each acknowledged append. */
static void *appender(void *arg) {
  (void)arg;
  while (!atomic_load(&g_stop)) {
    char body[64];
    int n = snprintf(body, sizeof body, "c%s", g_cycle);
    sb_broker_msg_t m = {body, (size_t)n, NULL, 0, NULL, 0, NULL, 0, NULL, 0, -1};
    waiter_t w;
    w_init(&w);
    if (sb_stream_append(g_b, "log", 0, NULL, 0, &m, 0, on_done, &w)) {
      w_release(&w);
      continue;
    }
    w_wait(&w);
    uint64_t off = w.status == 0 && w.r->n_records ? w.r->records[0].offset : UINT64_MAX;
    w_release(&w);
    if (off != UINT64_MAX) {
      char line[32];
      int l = snprintf(line, sizeof line, "%" PRIu64, off);
      say("A", line, (size_t)l);
    }
  }
  return NULL;
}

/* Reads stream "log" as group "g" and commits after each read; prints "C <offset>" for each
 * acknowledged commit. */
static void *committer(void *arg) {
  (void)arg;
  uint64_t pos = 0;
  waiter_t w;
  w_init(&w);
  if (!sb_stream_committed(g_b, "log", "g", on_done, &w)) {
    w_wait(&w);
    if (w.status == 0 && w.r->n_offsets && w.r->offsets[0] != SB_STREAM_NO_OFFSET)
      pos = w.r->offsets[0];
  }
  w_release(&w);
  while (!atomic_load(&g_stop)) {
    w_init(&w);
    if (sb_stream_read(g_b, "log", 0, pos, 50, 1 << 20, 100, on_done, &w)) {
      w_release(&w);
      continue;
    }
    w_wait(&w);
    if (w.status == 0 && w.r->n_records) pos = w.r->records[w.r->n_records - 1].offset + 1;
    w_release(&w);
    w_init(&w);
    if (sb_stream_commit(g_b, "log", "g", &pos, 1, on_done, &w)) {
      w_release(&w);
      continue;
    }
    w_wait(&w);
    int ok = w.status == 0;
    w_release(&w);
    if (ok) {
      char line[32];
      int l = snprintf(line, sizeof line, "%" PRIu64, pos);
      say("C", line, (size_t)l);
    }
  }
  return NULL;
}

static int setup(void) {
  sb_queue_config_t c;
  sb_queue_config_default(&c);
  waiter_t w;
  w_init(&w);
  if (sb_queue_create(g_b, "work-dlq", &c, NULL, 0, on_done, &w)) return 1;
  w_wait(&w);
  int st = w.status;
  w_release(&w);
  c.max_receive_count = 2;
  snprintf(c.dead_letter, sizeof c.dead_letter, "work-dlq");
  w_init(&w);
  if (sb_queue_create(g_b, "work", &c, NULL, 0, on_done, &w)) return 1;
  w_wait(&w);
  st |= w.status;
  w_release(&w);
  sb_stream_config_t sc;
  sb_stream_config_default(&sc);
  w_init(&w);
  if (sb_stream_create(g_b, "log", &sc, on_done, &w)) return 1;
  w_wait(&w);
  st |= w.status;
  w_release(&w);
  return st != 0;
}

/* Prints every stored message of queue with tag; for the DLQ, checks the copy. */
static int dump(const char *queue, const char *tag, int dlq) {
  uint64_t from = 0;
  for (;;) {
    waiter_t w;
    w_init(&w);
    if (sb_queue_peek(g_b, queue, from, 100, NULL, NULL, on_done, &w)) return 1;
    w_wait(&w);
    size_t n = w.status ? 0 : w.r->n;
    for (size_t i = 0; i < n; i++) {
      const sb_broker_delivery_t *d = &w.r->deliveries[i];
      char body[96];
      snprintf(body, sizeof body, "%.*s", (int)d->body_len, (const char *)d->body);
      if (!dlq) {
        say(tag, body, strlen(body));
      } else {
        char num[24];
        uint8_t bin[192];
        size_t bl;
        attrs_of(body, num, bin, &bl);
        int ok = d->n_attrs == 2 && d->attrs[0].value_len == strlen(num) &&
                 memcmp(d->attrs[0].value, num, strlen(num)) == 0 && d->attrs[0].type_len == 6 &&
                 memcmp(d->attrs[0].type, "Number", 6) == 0 && d->attrs[1].value_len == bl &&
                 memcmp(d->attrs[1].value, bin, bl) == 0 && d->dlq_source &&
                 strcmp(d->dlq_source, "work") == 0 && d->dlq_receive_count >= 2;
        char line[160];
        snprintf(line, sizeof line, "%s %d", body, ok);
        say(tag, line, strlen(line));
      }
      from = d->seq + 1;
    }
    w_release(&w);
    if (n < 100) return 0;
  }
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s run <dir> <cycle> | check <dir>\n", argv[0]);
    return 2;
  }
  sb_broker_opts_t o;
  sb_broker_opts_default(&o);
  o.data_dir = argv[2];
  int rc = sb_broker_open(&o, &g_b);
  if (rc) {
    fprintf(stderr, "open: %s\n", sb_strerror(rc));
    return 1;
  }
  if (setup()) {
    fprintf(stderr, "setup failed\n");
    return 1;
  }
  if (strcmp(argv[1], "check") == 0) {
    int bad = dump("work", "Q", 0) | dump("work-dlq", "L", 1);
    waiter_t w;
    w_init(&w);
    if (!sb_stream_get(g_b, "log", on_done, &w)) {
      w_wait(&w);
      if (w.status == 0) {
        char line[64];
        int l = snprintf(line, sizeof line, "%" PRIu64, w.r->stream->next[0]);
        say("N", line, (size_t)l);
        uint64_t c = w.r->stream->n_groups ? w.r->stream->groups[0].committed[0] : 0;
        l = snprintf(line, sizeof line, "%" PRIu64, c == SB_STREAM_NO_OFFSET ? 0 : c);
        say("G", line, (size_t)l);
      } else {
        bad = 1;
      }
    }
    w_release(&w);
    sb_broker_close(g_b);
    return bad;
  }
  snprintf(g_cycle, sizeof g_cycle, "%s", argc > 3 ? argv[3] : "0");
  /* SIGTERM is taken below by sigtimedwait: a clean shutdown in the middle of the load (the
   * driver sends it on some cycles instead of SIGKILL, so index snapshots get written with
   * operations in flight). The threads inherit the blocked mask. */
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &term, NULL);
  pthread_t th[PRODUCERS + CONSUMERS + STREAMERS];
  for (int i = 0; i < PRODUCERS; i++)
    pthread_create(&th[i], NULL, producer, (void *)(intptr_t)i);
  for (int i = 0; i < CONSUMERS; i++)
    pthread_create(&th[PRODUCERS + i], NULL, consumer, NULL);
  pthread_create(&th[PRODUCERS + CONSUMERS], NULL, appender, NULL);
  pthread_create(&th[PRODUCERS + CONSUMERS + 1], NULL, committer, NULL);
  struct timespec limit = {30, 0}; /* the driver kills or stops us long before */
  sigtimedwait(&term, NULL, &limit);
  atomic_store(&g_stop, 1);
  for (int i = 0; i < PRODUCERS + CONSUMERS + STREAMERS; i++)
    pthread_join(th[i], NULL);
  sb_broker_close(g_b);
  return 0;
}
