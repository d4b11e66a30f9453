/*
 * Load driver of bench/log/run.sh: measures sb_journal on a directory and prints one line of
 * key=value results.
 *
 *   journal_bench append <dir> <mib> <record_bytes> <policy> [threads] [window]
 *       append <mib> MiB of records of <record_bytes> value bytes from [threads] producers
 *       (default 1), each keeping up to [window] (default 4096) records in flight, with fsync
 *       policy <policy> ("always", "never", "interval:<ms>"); the time runs from the first
 *       append to the last acknowledgement (and, for "never", a final close, which syncs
 *       nothing: the script adds a sync(1) itself when it wants one).
 *   journal_bench producers <dir> <threads> <seconds> <record_bytes> <window>
 *       <threads> producers, each with at most <window> records in flight, fsync=always, for
 *       <seconds>; reports acknowledged (durable) records per second and the batch size.
 *   journal_bench restart <dir> <cold>
 *       time sb_journal_open (recovery) + the first read; with cold=1 the segment files are
 *       first evicted from the page cache (posix_fadvise DONTNEED) so the disk is read.
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log/journal.h"
#include "switchboard/error.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

typedef struct producer {
  sb_journal_t *j;        /* borrowed */
  size_t record_bytes;    /* value bytes per record */
  long window;            /* records in flight at most */
  long quota;             /* records to append; -1 = until stop */
  atomic_long sent;       /* appended */
  atomic_long acked;      /* acknowledged with status 0 */
  atomic_long failed;     /* acknowledged with an error */
  const atomic_int *stop; /* set by main when the time is up; borrowed */
  pthread_mutex_t mu;     /* with cv: the producer sleeps while its window is full */
  pthread_cond_t cv;      /* signalled by on_ack (writer thread) */
} producer_t;

static void on_ack(void *arg, int status, uint64_t offset) {
  producer_t *p = arg;
  (void)offset;
  pthread_mutex_lock(&p->mu);
  atomic_fetch_add(status ? &p->failed : &p->acked, 1);
  pthread_cond_signal(&p->cv);
  pthread_mutex_unlock(&p->mu);
}

/* Records in flight after i appends. */
static long in_flight(producer_t *p, long i) {
  return i - atomic_load(&p->acked) - atomic_load(&p->failed);
}

static void *producer_main(void *arg) {
  producer_t *p = arg;
  char *val = malloc(p->record_bytes);
  for (size_t i = 0; i < p->record_bytes; i++)
    val[i] = (char)('a' + i % 26);
  sb_journal_entry_t e = {.value = val, .value_len = (uint32_t)p->record_bytes};
  for (long i = 0; p->quota < 0 || i < p->quota; i++) {
    /* Sleep, like a network thread waiting for its client, rather than spin: 64 spinning
     * threads on 2 cores would starve the writer they wait for. */
    if (in_flight(p, i) >= p->window) {
      pthread_mutex_lock(&p->mu);
      while (in_flight(p, i) >= p->window && !atomic_load(p->stop)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 10 * 1000 * 1000; /* re-check stop every 10 ms */
        if (ts.tv_nsec >= 1000000000) {
          ts.tv_sec++;
          ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&p->cv, &p->mu, &ts);
      }
      pthread_mutex_unlock(&p->mu);
    }
    if (atomic_load(p->stop)) break;
    int rc;
    while ((rc = sb_journal_append(p->j, &e, on_ack, p)) == SB_EAGAIN)
      sched_yield();
    if (rc) {
      fprintf(stderr, "append: %s\n", sb_strerror(rc));
      exit(1);
    }
    atomic_fetch_add(&p->sent, 1);
  }
  free(val);
  return NULL;
}

static int run(sb_journal_t *j, int threads, long per_thread, long window, size_t record_bytes,
               double seconds, long *acked, long *failed, double *elapsed) {
  producer_t *ps = calloc((size_t)threads, sizeof *ps);
  pthread_t *th = calloc((size_t)threads, sizeof *th);
  static atomic_int stop;
  atomic_store(&stop, 0);
  double t0 = now_s();
  for (int i = 0; i < threads; i++) {
    ps[i] = (producer_t){
        .j = j, .record_bytes = record_bytes, .window = window, .quota = per_thread, .stop = &stop};
    pthread_mutex_init(&ps[i].mu, NULL);
    pthread_cond_init(&ps[i].cv, NULL);
    pthread_create(&th[i], NULL, producer_main, &ps[i]);
  }
  if (seconds > 0) {
    usleep((useconds_t)(seconds * 1e6));
    atomic_store(&stop, 1);
  }
  for (int i = 0; i < threads; i++)
    pthread_join(th[i], NULL);
  /* Wait for the acknowledgements of everything appended. */
  for (int i = 0; i < threads; i++)
    while (atomic_load(&ps[i].acked) + atomic_load(&ps[i].failed) < atomic_load(&ps[i].sent))
      usleep(50);
  *elapsed = now_s() - t0;
  *acked = *failed = 0;
  for (int i = 0; i < threads; i++) {
    *acked += atomic_load(&ps[i].acked);
    *failed += atomic_load(&ps[i].failed);
    pthread_cond_destroy(&ps[i].cv);
    pthread_mutex_destroy(&ps[i].mu);
  }
  free(ps);
  free(th);
  return 0;
}

static sb_journal_t *open_or_die(const char *dir, const char *policy) {
  sb_journal_opts_t o;
  sb_journal_opts_default(&o);
  if (policy && sb_journal_parse_fsync(policy, &o) != 0) {
    fprintf(stderr, "bad policy %s\n", policy);
    exit(2);
  }
  sb_journal_t *j = NULL;
  int rc = sb_journal_open(dir, &o, &j);
  if (rc) {
    fprintf(stderr, "open %s: %s\n", dir, sb_strerror(rc));
    exit(1);
  }
  return j;
}

static void print_stats(sb_journal_t *j) {
  sb_journal_stats_t st;
  sb_journal_stats(j, &st);
  printf(" batches=%llu fsyncs=%llu segments=%llu log_bytes=%llu", (unsigned long long)st.batches,
         (unsigned long long)st.fsyncs, (unsigned long long)st.segments,
         (unsigned long long)st.bytes);
}

static void evict(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *de;
  char p[4096];
  while (d && (de = readdir(d)) != NULL) {
    snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
    int fd = open(p, O_RDONLY);
    if (fd < 0) continue;
    fdatasync(fd);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
  }
  if (d) closedir(d);
}

int main(int argc, char **argv) {
  if (argc >= 6 && strcmp(argv[1], "append") == 0) {
    const char *dir = argv[2];
    long mib = atol(argv[3]);
    size_t rb = (size_t)atol(argv[4]);
    int threads = argc > 6 ? atoi(argv[6]) : 1;
    long window = argc > 7 ? atol(argv[7]) : 4096;
    long total = (long)((mib << 20) / (long)(rb + SB__JREC_FIXED));
    sb_journal_t *j = open_or_die(dir, argv[5]);
    long acked, failed;
    double el;
    run(j, threads, total / threads, window, rb, 0, &acked, &failed, &el);
    printf("mode=append records=%ld failed=%ld seconds=%.3f records_per_s=%.0f MiB_per_s=%.1f",
           acked, failed, el, acked / el, acked * (double)(rb + SB__JREC_FIXED) / el / 1048576);
    print_stats(j);
    printf("\n");
    sb_journal_close(j);
    return failed ? 1 : 0;
  }
  if (argc == 7 && strcmp(argv[1], "producers") == 0) {
    sb_journal_t *j = open_or_die(argv[2], "always");
    long acked, failed;
    double el;
    run(j, atoi(argv[3]), -1, atol(argv[6]), (size_t)atol(argv[5]), atof(argv[4]), &acked, &failed,
        &el);
    sb_journal_stats_t st;
    sb_journal_stats(j, &st);
    printf("mode=producers threads=%s window=%s records=%ld failed=%ld seconds=%.3f "
           "records_per_s=%.0f records_per_fsync=%.1f",
           argv[3], argv[6], acked, failed, el, acked / el,
           st.fsyncs ? (double)st.appended / (double)st.fsyncs : 0.0);
    print_stats(j);
    printf("\n");
    sb_journal_close(j);
    return failed ? 1 : 0;
  }
  if (argc == 4 && strcmp(argv[1], "restart") == 0) {
    if (atoi(argv[3])) evict(argv[2]);
    double t0 = now_s();
    sb_journal_t *j = open_or_die(argv[2], NULL);
    double t_open = now_s() - t0;
    uint64_t first, next;
    sb_journal_bounds(j, &first, &next);
    /* The first read of the newest record: recovery must leave the log servable. */
    sb_journal_reader_t *r = NULL;
    sb_journal_record_t rec;
    sb_journal_reader_open(j, next ? next - 1 : 0, 0, &r);
    int rc = sb_journal_reader_next(r, &rec);
    double t_read = now_s() - t0;
    sb_journal_reader_close(r);
    printf("mode=restart cold=%s open_seconds=%.3f open_and_read_seconds=%.3f records=%llu "
           "read_rc=%d",
           argv[3], t_open, t_read, (unsigned long long)(next - first), rc);
    print_stats(j);
    printf("\n");
    sb_journal_close(j);
    return rc == 0 ? 0 : 1;
  }
  fprintf(stderr,
          "usage: %s append <dir> <mib> <record_bytes> <policy> [threads] [window]\n"
          "       %s producers <dir> <threads> <seconds> <record_bytes> <window>\n"
          "       %s restart <dir> <cold 0|1>\n",
          argv[0], argv[0], argv[0]);
  return 2;
}
