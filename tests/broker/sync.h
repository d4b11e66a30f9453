/*
 * Synchronous wrappers for broker tests: each call waits on a condition variable its callback
 * (which runs on the broker thread) signals, and the callback deep-copies the parts of the
 * result the tests inspect, because results are borrowed for the callback only.
 */
#ifndef SB_TESTS_BROKER_SYNC_H
#define SB_TESTS_BROKER_SYNC_H

#include <ftw.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sb_test.h"
#include "switchboard/broker.h"
#include "switchboard/error.h"

static inline int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(p);
}

static inline char *tmpdir(void) {
  char *d = strdup("/tmp/sb-broker-test.XXXXXX");
  return mkdtemp(d);
}

static inline void drop_dir(char *d) {
  nftw(d, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  free(d);
}

static inline int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The broker's clock (timestamps in results are wall-clock ms). */
static inline int64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
}

#define MAXN 16

typedef struct msgcopy {
  char id[SB_BROKER_ID_LEN + 1];
  char receipt[SB_BROKER_RECEIPT_LEN + 1];
  uint64_t seq;
  char body[4096];
  size_t body_len;
  size_t n_attrs;
  char attr_name[4][64];
  char attr_type[4][64];
  uint8_t attr_val[4][64];
  size_t attr_len[4];
  char group[64];
  char dlq_source[96];
  uint32_t receive_count, dlq_receive_count;
  int64_t sent_ms, first_receive_ms;
} msgcopy_t;

/* One operation's outcome, filled by the callback. */
typedef struct res {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done, status;
  size_t n;
  sb_broker_sent_t sent[MAXN];
  int statuses[MAXN];
  msgcopy_t m[MAXN];
  sb_queue_info_t info;
  bool has_info;
  char kv_name[4][64], kv_value[4][64];
  size_t n_names;
  char names[MAXN][96];
  char next_token[96];
  sb_move_task_t tasks[MAXN];
  uint64_t count;
  sb_topic_info_t topic;
  bool has_topic;
  size_t n_subs;
  char sub_id[MAXN][SB_BROKER_ID_LEN + 1];
  char sub_queue[MAXN][96];
  sb_sub_info_t subs[MAXN]; /* pointers inside are not valid after the callback */
} res_t;

static inline res_t *res_new(void) {
  res_t *r = calloc(1, sizeof *r);
  pthread_mutex_init(&r->mu, NULL);
  pthread_cond_init(&r->cv, NULL);
  return r;
}

static inline void copy_delivery(msgcopy_t *c, const sb_broker_delivery_t *d) {
  memcpy(c->id, d->id, sizeof c->id);
  memcpy(c->receipt, d->receipt, sizeof c->receipt);
  c->seq = d->seq;
  c->body_len = d->body_len < sizeof c->body ? d->body_len : sizeof c->body;
  memcpy(c->body, d->body, c->body_len);
  c->n_attrs = d->n_attrs;
  for (size_t k = 0; k < d->n_attrs && k < 4; k++) {
    snprintf(c->attr_name[k], 64, "%.*s", (int)d->attrs[k].name_len, d->attrs[k].name);
    snprintf(c->attr_type[k], 64, "%.*s", (int)d->attrs[k].type_len, d->attrs[k].type);
    c->attr_len[k] = d->attrs[k].value_len < 64 ? d->attrs[k].value_len : 64;
    memcpy(c->attr_val[k], d->attrs[k].value, c->attr_len[k]);
  }
  snprintf(c->group, sizeof c->group, "%s", d->group ? d->group : "");
  snprintf(c->dlq_source, sizeof c->dlq_source, "%s", d->dlq_source ? d->dlq_source : "");
  c->receive_count = d->receive_count;
  c->dlq_receive_count = d->dlq_receive_count;
  c->sent_ms = d->sent_ms;
  c->first_receive_ms = d->first_receive_ms;
}

static inline void on_done(void *arg, int status, const sb_broker_result_t *r) {
  res_t *x = arg;
  pthread_mutex_lock(&x->mu);
  x->status = status;
  x->n = r->n < MAXN ? r->n : MAXN;
  for (size_t i = 0; i < x->n; i++) {
    if (r->sent) x->sent[i] = r->sent[i];
    if (r->statuses) x->statuses[i] = r->statuses[i];
    if (r->deliveries) copy_delivery(&x->m[i], &r->deliveries[i]);
    if (r->tasks) x->tasks[i] = r->tasks[i];
  }
  if (r->queue) {
    x->info = *r->queue;
    x->has_info = true;
    for (size_t i = 0; i < r->queue->n_kv && i < 4; i++) {
      snprintf(x->kv_name[i], 64, "%s", r->queue->kv[i].name);
      snprintf(x->kv_value[i], 64, "%s", r->queue->kv[i].value);
    }
    x->info.name = NULL;
    x->info.kv = NULL;
  }
  x->n_names = r->n_names < MAXN ? r->n_names : MAXN;
  for (size_t i = 0; i < x->n_names; i++)
    snprintf(x->names[i], 96, "%s", r->names[i]);
  snprintf(x->next_token, sizeof x->next_token, "%s", r->next_token ? r->next_token : "");
  x->count = r->count;
  if (r->topic) {
    x->topic = *r->topic;
    x->topic.name = NULL;
    x->topic.kv = NULL;
    x->has_topic = true;
  }
  x->n_subs = r->n_subs < MAXN ? r->n_subs : MAXN;
  for (size_t i = 0; i < x->n_subs; i++) {
    x->subs[i] = r->subs[i];
    memcpy(x->sub_id[i], r->subs[i].id, sizeof x->sub_id[i]);
    snprintf(x->sub_queue[i], sizeof x->sub_queue[i], "%s", r->subs[i].queue);
  }
  x->done = 1;
  pthread_cond_signal(&x->cv);
  pthread_mutex_unlock(&x->mu);
}

static inline void wait_res(res_t *r) {
  pthread_mutex_lock(&r->mu);
  while (!r->done)
    pthread_cond_wait(&r->cv, &r->mu);
  pthread_mutex_unlock(&r->mu);
}

/* Runs one call synchronously: RUN(x, fn(b, ..., on_done, x)) leaves the result in x
 * (caller frees); a call refused up front leaves its return code in x->status. */
#define RUN(x, expr)                                                                               \
  do {                                                                                             \
    (x) = res_new();                                                                               \
    int rc_ = (expr);                                                                              \
    if (rc_) {                                                                                     \
      (x)->status = rc_;                                                                           \
      (x)->done = 1;                                                                               \
    }                                                                                              \
    wait_res(x);                                                                                   \
  } while (0)

static inline sb_broker_t *open_broker(const char *dir) {
  sb_broker_opts_t o;
  sb_broker_opts_default(&o);
  o.data_dir = dir;
  sb_broker_t *b = NULL;
  int rc = sb_broker_open(&o, &b);
  if (rc) {
    fprintf(stderr, "sb_broker_open: %d\n", rc);
    return NULL;
  }
  return b;
}

static inline int create(sb_broker_t *b, const char *name, const sb_queue_config_t *c) {
  res_t *r;
  RUN(r, sb_queue_create(b, name, c, NULL, 0, on_done, r));
  int st = r->status;
  free(r);
  return st;
}

static inline int send1(sb_broker_t *b, const char *q, const char *body, char id_out[37]) {
  sb_broker_msg_t m = {.body = body, .body_len = strlen(body), .delay_ms = -1};
  res_t *r;
  RUN(r, sb_queue_send(b, q, &m, 1, on_done, r));
  int st = r->status ? r->status : r->sent[0].status;
  if (id_out) memcpy(id_out, r->sent[0].id, 37);
  free(r);
  return st;
}

static inline res_t *recv(sb_broker_t *b, const char *q, size_t max, int64_t vis, int64_t wait) {
  res_t *r;
  RUN(r, sb_queue_receive(b, q, max, vis, wait, on_done, r));
  return r;
}

static inline int del(sb_broker_t *b, const char *q, const char *receipt) {
  const char *rs[1] = {receipt};
  res_t *r;
  RUN(r, sb_queue_delete_msgs(b, q, rs, 1, on_done, r));
  int st = r->status ? r->status : r->statuses[0];
  free(r);
  return st;
}

static inline sb_queue_stats_t stats(sb_broker_t *b, const char *q) {
  res_t *r;
  RUN(r, sb_queue_get(b, q, on_done, r));
  sb_queue_stats_t s = r->info.stats;
  free(r);
  return s;
}

/* A stream call's outcome (records, offsets, stream info), filled by on_s. */
typedef struct sres {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done, status;
  size_t n;
  uint32_t part[64];
  uint64_t off[64];
  char key[64][32];
  char val[64][600];
  size_t n_attrs[64];
  uint64_t count;
  uint64_t offsets[8];
  size_t n_offsets;
  uint64_t first[8], next[8], lag;
  size_t n_groups;
} sres_t;

static inline void on_s(void *arg, int status, const sb_broker_result_t *r) {
  sres_t *x = arg;
  pthread_mutex_lock(&x->mu);
  x->status = status;
  x->n = r->n_records < 64 ? r->n_records : 64;
  for (size_t i = 0; i < x->n; i++) {
    const sb_stream_record_t *rec = &r->records[i];
    x->part[i] = rec->partition;
    x->off[i] = rec->offset;
    snprintf(x->key[i], 32, "%.*s", (int)rec->key_len, rec->key ? (const char *)rec->key : "");
    snprintf(x->val[i], 600, "%.*s", (int)rec->value_len,
             rec->value ? (const char *)rec->value : "");
    x->n_attrs[i] = rec->n_attrs;
  }
  x->count = r->count;
  x->n_offsets = r->n_offsets < 8 ? r->n_offsets : 8;
  for (size_t i = 0; i < x->n_offsets; i++)
    x->offsets[i] = r->offsets[i];
  if (r->stream) {
    for (uint32_t p = 0; p < r->stream->config.partitions && p < 8; p++) {
      x->first[p] = r->stream->first[p];
      x->next[p] = r->stream->next[p];
    }
    x->n_groups = r->stream->n_groups;
    x->lag = r->stream->n_groups ? r->stream->groups[0].lag : 0;
  }
  x->done = 1;
  pthread_cond_signal(&x->cv);
  pthread_mutex_unlock(&x->mu);
}

#define SRUN(x, expr)                                                                              \
  do {                                                                                             \
    (x) = calloc(1, sizeof *(x));                                                                  \
    pthread_mutex_init(&(x)->mu, NULL);                                                            \
    pthread_cond_init(&(x)->cv, NULL);                                                             \
    int rc_ = (expr);                                                                              \
    if (rc_) {                                                                                     \
      (x)->status = rc_;                                                                           \
      (x)->done = 1;                                                                               \
    }                                                                                              \
    pthread_mutex_lock(&(x)->mu);                                                                  \
    while (!(x)->done)                                                                             \
      pthread_cond_wait(&(x)->cv, &(x)->mu);                                                       \
    pthread_mutex_unlock(&(x)->mu);                                                                \
  } while (0)

#endif
