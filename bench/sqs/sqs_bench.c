/*
 * Load driver of bench/sqs/run.sh: the same work-queue load through the broker's native C
 * API and through the SQS API of a running switchboard, one line of key=value results each.
 *
 *   sqs_bench native <data-dir> <clients> <seconds>
 *       opens a broker in <data-dir> (fsync=always, the default) and runs the two phases
 *       below with <clients> threads, each calling sb_queue_* and waiting for its callback.
 *   sqs_bench sqs <host:port> <clients> <seconds> [json|query] [server-pid]
 *       the same phases as HTTP/1.1 keep-alive requests to switchboard's SQS API (AWS JSON 1.0
 *       by default, or the Query protocol), one connection per client thread; with the
 *       server's pid, its CPU time per message (from /proc/<pid>/stat) is reported too.
 *
 * Phase 1 (send): every client sends batches of 10 messages (100-byte bodies, one String
 * attribute) for <seconds>. Phase 2 (receive+delete): every client receives up to 10 and
 * deletes what it got with one batch, for <seconds> or until the queue is empty. Reported:
 * messages per second of each phase, requests per second, the mean latency per request, and
 * the CPU time per message of the side that does the work: the whole driver process for
 * native (broker thread and clients), the server process for sqs (the load generator's own
 * CPU is not counted).
 * A client waits for each answer before its next request (a synchronous SDK's pattern).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "switchboard/broker.h"
#include "switchboard/error.h"

#define BATCH 10
#define BODY_BYTES 100
#define MAX_CLIENTS 256

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what) {
  fprintf(stderr, "sqs_bench: %s\n", what);
  exit(1);
}

typedef struct shared {
  double end;          /* phase end time */
  atomic_ullong msgs;  /* messages sent (phase 1) or received and deleted (phase 2) */
  atomic_ullong reqs;  /* requests or operations completed */
  atomic_int empty;    /* phase 2: a client found the queue empty */
  const char *target;  /* sqs: host:port */
  int json;            /* sqs: 1 JSON, 0 Query */
  sb_broker_t *broker; /* native */
  int phase;           /* 1 or 2 */
} shared_t;

static char body[BODY_BYTES + 1];

/* CPU time in microseconds: of this process (pid 0) or of another one via /proc. */
static double cpu_us(int pid) {
  if (!pid) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
  }
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  const char *p = strrchr(buf, ')'); /* fields after the command name */
  unsigned long ut = 0, st = 0;
  if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
    return 0;
  return (double)(ut + st) * 1e6 / (double)sysconf(_SC_CLK_TCK);
}

/* ---- native ---- */

typedef struct waiter {
  pthread_mutex_t mu;                              /* guards the rest */
  pthread_cond_t cv;                               /* signalled by the callback */
  int done;                                        /* the callback ran */
  int status;                                      /* its status */
  size_t n;                                        /* deliveries / sent */
  char receipts[BATCH][SB_BROKER_RECEIPT_LEN + 1]; /* receive: the handles */
} waiter_t;

static void cb(void *arg, int status, const sb_broker_result_t *r) {
  waiter_t *w = arg;
  pthread_mutex_lock(&w->mu);
  w->status = status;
  w->n = r->deliveries ? r->n : (r->sent ? r->n : r->n);
  for (size_t i = 0; r->deliveries && i < r->n && i < BATCH; i++)
    memcpy(w->receipts[i], r->deliveries[i].receipt, SB_BROKER_RECEIPT_LEN + 1);
  w->done = 1;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
}

static void wait_for(waiter_t *w) {
  pthread_mutex_lock(&w->mu);
  while (!w->done)
    pthread_cond_wait(&w->cv, &w->mu);
  w->done = 0;
  pthread_mutex_unlock(&w->mu);
}

static void *native_client(void *arg) {
  shared_t *s = arg;
  waiter_t w;
  memset(&w, 0, sizeof w);
  pthread_mutex_init(&w.mu, NULL);
  pthread_cond_init(&w.cv, NULL);
  sb_broker_attr_t attr = {"event", 5, "String", 6, "order.created", 13};
  sb_broker_msg_t msgs[BATCH];
  for (int i = 0; i < BATCH; i++)
    msgs[i] = (sb_broker_msg_t){body, BODY_BYTES, &attr, 1, NULL, 0, NULL, 0, NULL, 0, -1};
  while (now_s() < s->end && !atomic_load(&s->empty)) {
    if (s->phase == 1) {
      if (sb_queue_send(s->broker, "bench", msgs, BATCH, cb, &w)) die("send");
      wait_for(&w);
      if (w.status) die("send status");
      atomic_fetch_add(&s->msgs, BATCH);
      atomic_fetch_add(&s->reqs, 1);
    } else {
      if (sb_queue_receive(s->broker, "bench", BATCH, -1, 0, cb, &w)) die("receive");
      wait_for(&w);
      if (w.status) die("receive status");
      atomic_fetch_add(&s->reqs, 1);
      size_t n = w.n;
      if (n == 0) {
        atomic_store(&s->empty, 1);
        break;
      }
      const char *rh[BATCH];
      char copy[BATCH][SB_BROKER_RECEIPT_LEN + 1];
      for (size_t i = 0; i < n; i++) {
        memcpy(copy[i], w.receipts[i], sizeof copy[i]);
        rh[i] = copy[i];
      }
      if (sb_queue_delete_msgs(s->broker, "bench", rh, n, cb, &w)) die("delete");
      wait_for(&w);
      if (w.status) die("delete status");
      atomic_fetch_add(&s->msgs, n);
      atomic_fetch_add(&s->reqs, 1);
    }
  }
  pthread_mutex_destroy(&w.mu);
  pthread_cond_destroy(&w.cv);
  return NULL;
}

/* ---- SQS over HTTP/1.1 ---- */

typedef struct conn {
  int fd;         /* keep-alive socket */
  char *buf;      /* response buffer */
  size_t cap;     /* bytes at buf */
  char *req;      /* request buffer */
  size_t req_cap; /* bytes at req */
} conn_t;

static void conn_open(conn_t *c, const char *target) {
  char host[64];
  const char *colon = strrchr(target, ':');
  if (!colon || (size_t)(colon - target) >= sizeof host) die("target must be host:port");
  memcpy(host, target, (size_t)(colon - target));
  host[colon - target] = 0;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
  if (inet_pton(AF_INET, host, &a.sin_addr) != 1) die("bad host");
  c->fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(c->fd, (struct sockaddr *)&a, sizeof a)) die("connect");
  c->cap = 1 << 20;
  c->buf = malloc(c->cap);
  c->req_cap = 1 << 16;
  c->req = malloc(c->req_cap);
  if (!c->buf || !c->req) die("oom");
}

/* Sends one request and reads the whole response; returns the body (NUL-terminated). */
static char *roundtrip(conn_t *c, const shared_t *s, const char *action, const char *payload,
                       size_t plen, int *status) {
  int h = snprintf(c->req, c->req_cap,
                   "POST / HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\n%s%s%sContent-Length: "
                   "%zu\r\n\r\n",
                   s->target,
                   s->json ? "application/x-amz-json-1.0" : "application/x-www-form-urlencoded",
                   s->json ? "X-Amz-Target: AmazonSQS." : "", s->json ? action : "",
                   s->json ? "\r\n" : "", plen);
  if (h < 0 || (size_t)h + plen > c->req_cap) die("request too big");
  memcpy(c->req + h, payload, plen);
  size_t total = (size_t)h + plen, off = 0;
  while (off < total) {
    ssize_t w = write(c->fd, c->req + off, total - off);
    if (w <= 0) die("write");
    off += (size_t)w;
  }
  size_t got = 0;
  char *hdr_end = NULL;
  long clen = -1;
  for (;;) {
    ssize_t n = read(c->fd, c->buf + got, c->cap - got - 1);
    if (n <= 0) die("read");
    got += (size_t)n;
    c->buf[got] = 0;
    if (!hdr_end && (hdr_end = strstr(c->buf, "\r\n\r\n"))) {
      char *cl = strcasestr(c->buf, "content-length:");
      if (!cl || cl > hdr_end) die("no content-length");
      clen = strtol(cl + 15, NULL, 10);
      *status = atoi(c->buf + 9);
    }
    if (hdr_end && got >= (size_t)(hdr_end + 4 - c->buf) + (size_t)clen) break;
  }
  return hdr_end + 4;
}

static size_t build_send(const shared_t *s, char *out, size_t cap) {
  size_t o = 0;
  if (s->json) {
    o +=
        (size_t)snprintf(out + o, cap - o,
                         "{\"QueueUrl\":\"http://%s/000000000000/bench\",\"Entries\":[", s->target);
    for (int i = 0; i < BATCH; i++)
      o += (size_t)snprintf(
          out + o, cap - o,
          "%s{\"Id\":\"m%d\",\"MessageBody\":\"%s\",\"MessageAttributes\":{\"event\":"
          "{\"DataType\":\"String\",\"StringValue\":\"order.created\"}}}",
          i ? "," : "", i, body);
    o += (size_t)snprintf(out + o, cap - o, "]}");
  } else {
    o += (size_t)snprintf(
        out + o, cap - o,
        "Action=SendMessageBatch&QueueUrl=http%%3A%%2F%%2F%s%%2F000000000000%%2Fbench", s->target);
    for (int i = 1; i <= BATCH; i++)
      o += (size_t)snprintf(
          out + o, cap - o,
          "&SendMessageBatchRequestEntry.%d.Id=m%d&SendMessageBatchRequestEntry.%d."
          "MessageBody=%s&SendMessageBatchRequestEntry.%d.MessageAttribute.1.Name=event"
          "&SendMessageBatchRequestEntry.%d.MessageAttribute.1.Value.DataType=String"
          "&SendMessageBatchRequestEntry.%d.MessageAttribute.1.Value.StringValue=order.created",
          i, i, i, body, i, i, i);
  }
  return o;
}

static void *sqs_client(void *arg) {
  shared_t *s = arg;
  conn_t c;
  conn_open(&c, s->target);
  char *payload = malloc(1 << 16);
  if (!payload) die("oom");
  size_t send_len = build_send(s, payload, 1 << 16);
  char *del = malloc(1 << 16);
  if (!del) die("oom");
  while (now_s() < s->end && !atomic_load(&s->empty)) {
    int st = 0;
    if (s->phase == 1) {
      char *b = roundtrip(&c, s, "SendMessageBatch", payload, send_len, &st);
      if (st != 200 || strstr(b, "Failed\":[{") || strstr(b, "<BatchResultErrorEntry>"))
        die("send failed");
      atomic_fetch_add(&s->msgs, BATCH);
      atomic_fetch_add(&s->reqs, 1);
      continue;
    }
    char rq[256];
    int rl =
        s->json
            ? snprintf(rq, sizeof rq,
                       "{\"QueueUrl\":\"http://%s/000000000000/bench\",\"MaxNumberOfMessages\":10}",
                       s->target)
            : snprintf(rq, sizeof rq,
                       "Action=ReceiveMessage&MaxNumberOfMessages=10&QueueUrl=http%%3A%%2F%%2F%s%%"
                       "2F000000000000%%2Fbench",
                       s->target);
    char *b = roundtrip(&c, s, "ReceiveMessage", rq, (size_t)rl, &st);
    if (st != 200) die("receive failed");
    atomic_fetch_add(&s->reqs, 1);
    const char *key = s->json ? "\"ReceiptHandle\":\"" : "<ReceiptHandle>";
    size_t o =
        s->json
            ? (size_t)snprintf(del, 1 << 16,
                               "{\"QueueUrl\":\"http://%s/000000000000/bench\",\"Entries\":[",
                               s->target)
            : (size_t)snprintf(
                  del, 1 << 16,
                  "Action=DeleteMessageBatch&QueueUrl=http%%3A%%2F%%2F%s%%2F000000000000%%2Fbench",
                  s->target);
    int n = 0;
    for (char *p = strstr(b, key); p && n < BATCH; p = strstr(p, key)) {
      p += strlen(key);
      n++;
      if (s->json)
        o += (size_t)snprintf(del + o, (1 << 16) - o,
                              "%s{\"Id\":\"d%d\",\"ReceiptHandle\":\"%.56s\"}", n > 1 ? "," : "", n,
                              p);
      else
        o += (size_t)snprintf(del + o, (1 << 16) - o,
                              "&DeleteMessageBatchRequestEntry.%d.Id=d%d&"
                              "DeleteMessageBatchRequestEntry.%d.ReceiptHandle=%.56s",
                              n, n, n, p);
    }
    if (n == 0) {
      atomic_store(&s->empty, 1);
      break;
    }
    if (s->json) o += (size_t)snprintf(del + o, (1 << 16) - o, "]}");
    b = roundtrip(&c, s, "DeleteMessageBatch", del, o, &st);
    if (st != 200 || strstr(b, "Failed\":[{") || strstr(b, "<BatchResultErrorEntry>"))
      die("delete failed");
    atomic_fetch_add(&s->msgs, (unsigned long long)n);
    atomic_fetch_add(&s->reqs, 1);
  }
  close(c.fd);
  free(c.buf);
  free(c.req);
  free(payload);
  free(del);
  return NULL;
}

static void create_cb(void *arg, int status, const sb_broker_result_t *r) {
  waiter_t *w = arg;
  cb(w, status, r);
}

int main(int argc, char **argv) {
  if (argc < 5)
    die("usage: sqs_bench native <dir> <clients> <seconds> | sqs <host:port> <clients> <seconds> "
        "[json|query]");
  memset(body, 'x', BODY_BYTES);
  int native = strcmp(argv[1], "native") == 0;
  int clients = atoi(argv[3]);
  double secs = atof(argv[4]);
  if (clients < 1 || clients > MAX_CLIENTS || secs <= 0) die("bad clients or seconds");
  shared_t s;
  memset(&s, 0, sizeof s);
  s.json = argc < 6 || strcmp(argv[5], "query") != 0;
  int server_pid = argc > 6 ? atoi(argv[6]) : 0;
  if (native) {
    sb_broker_opts_t o;
    sb_broker_opts_default(&o);
    o.data_dir = argv[2];
    if (sb_broker_open(&o, &s.broker)) die("broker open");
    sb_queue_config_t qc;
    sb_queue_config_default(&qc); /* fsync=always */
    waiter_t w;
    memset(&w, 0, sizeof w);
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    if (sb_queue_create(s.broker, "bench", &qc, NULL, 0, create_cb, &w)) die("create");
    wait_for(&w);
    if (w.status) die("create status");
  } else {
    s.target = argv[2];
  }
  void *(*fn)(void *) = native ? native_client : sqs_client;
  const char *names[3] = {"", "send", "recv_delete"};
  for (int phase = 1; phase <= 2; phase++) {
    s.phase = phase;
    atomic_store(&s.msgs, 0);
    atomic_store(&s.reqs, 0);
    atomic_store(&s.empty, 0);
    double t0 = now_s();
    double c0 = native ? cpu_us(0) : (server_pid ? cpu_us(server_pid) : 0);
    s.end = t0 + secs;
    pthread_t th[MAX_CLIENTS];
    for (int i = 0; i < clients; i++)
      pthread_create(&th[i], NULL, fn, &s);
    for (int i = 0; i < clients; i++)
      pthread_join(th[i], NULL);
    double dt = now_s() - t0;
    double c1 = native ? cpu_us(0) : (server_pid ? cpu_us(server_pid) : 0);
    unsigned long long m = atomic_load(&s.msgs), q = atomic_load(&s.reqs);
    printf("mode=%s phase=%s clients=%d seconds=%.2f msgs=%llu msgs_per_s=%.0f reqs_per_s=%.0f "
           "mean_ms=%.3f cpu_us_per_msg=%.2f\n",
           native ? "native" : (s.json ? "sqs-json" : "sqs-query"), names[phase], clients, dt, m,
           (double)m / dt, (double)q / dt, q ? dt * 1000.0 * clients / (double)q : 0.0,
           m && (native || server_pid) ? (c1 - c0) / (double)m : 0.0);
    fflush(stdout);
  }
  if (native) sb_broker_close(s.broker);
  return 0;
}
