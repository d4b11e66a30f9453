/*
 * Benchmark driver of the queue engine (bench/broker/run.sh runs it).
 *
 *   queue_bench send <dir> <producers> <seconds> <bytes>
 *       producers each keep one send in flight (fsync=always, group commit), then sixteen
 *       consumers receive (batches of 10) and delete (batches of 10) until the queue is empty.
 *       Prints sends_per_s and recv_delete_per_s.
 *   queue_bench latency <dir> <rate> <seconds>
 *       one producer sends <rate> messages/s carrying their send time; one consumer long-polls
 *       and deletes. Prints p50_us, p99_us and max_us of send-call-to-delivery.
 *   queue_bench rss <dir> <count> [bytes]
 *       stores <count> messages of [bytes] (default 64; fsync=never, batches of 10, 32 batches
 *       in flight), prints the resident memory per stored message, then closes and reopens
 *       the broker and prints the restart time (from the index snapshot the clean shutdown
 *       wrote), the time of a full replay (snapshot removed, as after a crash) and the
 *       resident memory after the restart.
 *   queue_bench open <dir>
 *       opens an existing data directory and prints the time it took (for profiling restarts).
 */
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "switchboard/broker.h"
#include "switchboard/error.h"

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static long rss_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long v = 0;
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %ld", &v) == 1) break;
  if (f) fclose(f);
  return v;
}

static sb_broker_t *B;
static atomic_int stop;
static atomic_long sent_ok, done_ok;

/* A synchronous call whose callback copies receipts (and send times) out. */
typedef struct call {
  sem_t sem;
  int status;
  size_t n;
  char receipts[10][SB_BROKER_RECEIPT_LEN + 1];
  int64_t t_sent[10];
  int64_t t_got;
} call_t;

static void on_call(void *arg, int status, const sb_broker_result_t *r) {
  call_t *c = arg;
  c->status = status;
  c->n = r->deliveries ? r->n : (r->statuses ? r->n : 0);
  c->t_got = now_us();
  for (size_t i = 0; r->deliveries && i < r->n && i < 10; i++) {
    memcpy(c->receipts[i], r->deliveries[i].receipt, sizeof c->receipts[i]);
    c->t_sent[i] = r->deliveries[i].body_len >= 8 ? *(const int64_t *)r->deliveries[i].body : 0;
  }
  sem_post(&c->sem);
}

static void on_sent(void *arg, int status, const sb_broker_result_t *r) {
  size_t ok = 0;
  for (size_t i = 0; !status && i < r->n; i++)
    ok += r->sent[i].status == 0;
  atomic_fetch_add(&sent_ok, (long)ok);
  sem_post(arg);
}

static int make_queue(const char *name, sb_broker_fsync_t fsync) {
  sb_queue_config_t c;
  sb_queue_config_default(&c);
  c.fsync = fsync;
  c.max_message_bytes = SB_BROKER_MESSAGE_MAX;
  call_t k;
  sem_init(&k.sem, 0, 0);
  if (sb_queue_create(B, name, &c, NULL, 0, on_call, &k)) return 1;
  sem_wait(&k.sem);
  return k.status != 0;
}

static size_t g_bytes;

static void *producer(void *arg) {
  (void)arg;
  sem_t win;
  sem_init(&win, 0, 1);
  char *body = calloc(1, g_bytes);
  while (!atomic_load(&stop)) {
    sem_wait(&win);
    sb_broker_msg_t m = {body, g_bytes, NULL, 0, NULL, 0, NULL, 0, NULL, 0, -1};
    if (sb_queue_send(B, "bench", &m, 1, on_sent, &win)) sem_post(&win);
  }
  sem_wait(&win); /* the last send */
  free(body);
  return NULL;
}

/* Receives and deletes in batches of 10 until the queue stays empty. */
static void *consumer(void *arg) {
  (void)arg;
  call_t c;
  sem_init(&c.sem, 0, 0);
  for (;;) {
    if (sb_queue_receive(B, "bench", 10, 60000, 200, on_call, &c)) break;
    sem_wait(&c.sem);
    if (c.status || !c.n) break;
    const char *rs[10];
    size_t n = c.n;
    for (size_t i = 0; i < n; i++)
      rs[i] = c.receipts[i];
    if (sb_queue_delete_msgs(B, "bench", rs, n, on_call, &c)) break;
    sem_wait(&c.sem);
    atomic_fetch_add(&done_ok, (long)n);
  }
  return NULL;
}

static int run_send(int producers, int seconds) {
  if (make_queue("bench", SB_BROKER_FSYNC_ALWAYS)) return 1;
  pthread_t *th = calloc((size_t)producers, sizeof *th);
  int64_t t0 = now_us();
  for (int i = 0; i < producers; i++)
    pthread_create(&th[i], NULL, producer, NULL);
  sleep((unsigned)seconds);
  atomic_store(&stop, 1);
  for (int i = 0; i < producers; i++)
    pthread_join(th[i], NULL);
  double send_s = (double)(now_us() - t0) / 1e6;
  long sent = atomic_load(&sent_ok);
  pthread_t cons[16];
  t0 = now_us();
  for (int i = 0; i < 16; i++)
    pthread_create(&cons[i], NULL, consumer, NULL);
  for (int i = 0; i < 16; i++)
    pthread_join(cons[i], NULL);
  double cons_s = (double)(now_us() - t0) / 1e6 - 0.2; /* the final empty long poll */
  printf("sent=%ld sends_per_s=%.0f consumed=%ld recv_delete_per_s=%.0f\n", sent, sent / send_s,
         atomic_load(&done_ok), atomic_load(&done_ok) / cons_s);
  free(th);
  return 0;
}

static int cmp64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

static int64_t *lat;
static atomic_long n_lat;
static long lat_cap;

static void *lat_consumer(void *arg) {
  (void)arg;
  call_t c;
  sem_init(&c.sem, 0, 0);
  while (!atomic_load(&stop)) {
    if (sb_queue_receive(B, "bench", 10, 60000, 500, on_call, &c)) break;
    sem_wait(&c.sem);
    if (c.status) break;
    size_t n = c.n;
    const char *rs[10];
    for (size_t i = 0; i < n; i++) {
      long k = atomic_fetch_add(&n_lat, 1);
      if (k < lat_cap) lat[k] = c.t_got - c.t_sent[i];
      rs[i] = c.receipts[i];
    }
    if (n && !sb_queue_delete_msgs(B, "bench", rs, n, on_call, &c)) sem_wait(&c.sem);
  }
  return NULL;
}

static int run_latency(int rate, int seconds) {
  if (make_queue("bench", SB_BROKER_FSYNC_ALWAYS)) return 1;
  lat_cap = (long)rate * seconds + 16;
  lat = calloc((size_t)lat_cap, sizeof *lat);
  pthread_t cons;
  pthread_create(&cons, NULL, lat_consumer, NULL);
  int64_t t0 = now_us(), step = 1000000 / rate;
  sem_t win;
  sem_init(&win, 0, 64);
  for (long i = 0; i < (long)rate * seconds; i++) {
    int64_t due = t0 + i * step, t = now_us();
    if (due > t) usleep((useconds_t)(due - t));
    int64_t ts = now_us();
    sb_broker_msg_t m = {&ts, sizeof ts, NULL, 0, NULL, 0, NULL, 0, NULL, 0, -1};
    sem_wait(&win);
    if (sb_queue_send(B, "bench", &m, 1, on_sent, &win)) sem_post(&win);
  }
  sleep(1);
  atomic_store(&stop, 1);
  pthread_join(cons, NULL);
  long n = atomic_load(&n_lat);
  if (n > lat_cap) n = lat_cap;
  qsort(lat, (size_t)n, sizeof *lat, cmp64);
  printf("messages=%ld p50_us=%lld p99_us=%lld max_us=%lld\n", n, n ? (long long)lat[n / 2] : 0LL,
         n ? (long long)lat[n * 99 / 100] : 0LL, n ? (long long)lat[n - 1] : 0LL);
  free(lat);
  return 0;
}

/* Seconds to open the broker on dir. */
static double time_open(const char *dir) {
  sb_broker_opts_t o;
  sb_broker_opts_default(&o);
  o.data_dir = dir;
  int64_t t0 = now_us();
  if (sb_broker_open(&o, &B)) return -1;
  return (double)(now_us() - t0) / 1e6;
}

static int run_rss(const char *dir, long count, size_t bytes) {
  if (make_queue("bench", SB_BROKER_FSYNC_NEVER)) return 1;
  long before = rss_kib();
  sem_t win;
  sem_init(&win, 0, 32);
  char *body = malloc(bytes);
  if (!body) return 1;
  memset(body, 'x', bytes);
  sb_broker_msg_t m[10];
  for (int i = 0; i < 10; i++)
    m[i] = (sb_broker_msg_t){body, bytes, NULL, 0, NULL, 0, NULL, 0, NULL, 0, -1};
  int64_t t0 = now_us();
  for (long i = 0; i < count; i += 10) {
    sem_wait(&win);
    if (sb_queue_send(B, "bench", m, 10, on_sent, &win)) sem_post(&win);
  }
  for (int i = 0; i < 32; i++)
    sem_wait(&win);
  double fill_s = (double)(now_us() - t0) / 1e6;
  long after = rss_kib();
  long stored = atomic_load(&sent_ok);
  sb_broker_close(B); /* a clean shutdown: writes the index snapshot */
  free(body);
  sync(); /* restarts are measured on their own, not against the writeback of the fill */
  long base = rss_kib();
  double restart_s = time_open(dir);
  long reopened = rss_kib();
  if (restart_s < 0) return 1;
  sb_broker_close(B);
  /* As after a crash before any clean shutdown: no snapshot, the whole journal replays. */
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "rm -f '%s'/q-*/index.snap", dir);
  if (system(cmd)) return 1;
  sync();
  double replay_s = time_open(dir);
  if (replay_s < 0) return 1;
  snprintf(cmd, sizeof cmd, "du -sb '%s' | cut -f1", dir);
  FILE *du = popen(cmd, "r");
  long long disk = 0;
  if (!du || fscanf(du, "%lld", &disk) != 1) disk = 0;
  if (du) pclose(du);
  printf("stored=%ld bytes=%zu fill_per_s=%.0f rss_bytes_per_msg=%.1f log_bytes=%lld "
         "restart_s=%.2f replay_s=%.2f restart_rss_bytes_per_msg=%.1f\n",
         stored, bytes, stored / fill_s, (after - before) * 1024.0 / (double)stored, disk,
         restart_s, replay_s, (reopened - base) * 1024.0 / (double)stored);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 3 || (argc < 4 && strcmp(argv[1], "open"))) {
    fprintf(stderr, "usage: see the comment at the top of queue_bench.c\n");
    return 2;
  }
  sb_broker_opts_t o;
  sb_broker_opts_default(&o);
  o.data_dir = argv[2];
  int64_t t0 = now_us();
  int rc = sb_broker_open(&o, &B);
  if (rc) {
    fprintf(stderr, "open: %s\n", sb_strerror(rc));
    return 1;
  }
  if (!strcmp(argv[1], "open")) printf("open_s=%.3f\n", (double)(now_us() - t0) / 1e6);
  if (!strcmp(argv[1], "send") && argc >= 6) {
    g_bytes = (size_t)atol(argv[5]);
    rc = run_send(atoi(argv[3]), atoi(argv[4]));
  } else if (!strcmp(argv[1], "latency") && argc >= 5) {
    rc = run_latency(atoi(argv[3]), atoi(argv[4]));
  } else if (!strcmp(argv[1], "open")) {
    rc = 0;
  } else if (!strcmp(argv[1], "rss")) {
    rc = run_rss(argv[2], atol(argv[3]), argc > 4 ? (size_t)atol(argv[4]) : 64);
  } else {
    rc = 2;
  }
  sb_broker_close(B);
  return rc;
}
