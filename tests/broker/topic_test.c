/*
 * Tests of the topic engine (src/broker/topic.c) through the public API: fan-out to queues
 * with filter policies on attributes and bodies, routing keys and header matching,
 * callback subscriptions, per-subscription dead-letter queues, formatters, FIFO topics,
 * stream subscriptions (keyed by routing key), and topics and subscriptions surviving a
 * restart.
 */
#include "sync.h"

static int topic(sb_broker_t *b, const char *name, bool fifo) {
  sb_topic_config_t c = {fifo};
  res_t *r;
  RUN(r, sb_topic_create(b, name, &c, NULL, 0, on_done, r));
  int st = r->status;
  free(r);
  return st;
}

static int subscribe(sb_broker_t *b, const char *t, const sb_sub_config_t *c, char id[37]) {
  res_t *r;
  RUN(r, sb_topic_subscribe(b, t, c, on_done, r));
  int st = r->status;
  if (id) memcpy(id, r->sub_id[0], 37);
  free(r);
  return st;
}

static uint64_t publish(sb_broker_t *b, const char *t, const char *body, const sb_broker_attr_t *a,
                        size_t n, const char *rk, int *status) {
  sb_broker_msg_t m = {
      .body = body, .body_len = strlen(body), .attrs = a, .n_attrs = n, .delay_ms = -1};
  res_t *r;
  RUN(r, sb_topic_publish(b, t, &m, rk, NULL, 0, on_done, r));
  if (status) *status = r->status ? r->status : r->sent[0].status;
  uint64_t c = r->count;
  free(r);
  return c;
}

static sb_queue_config_t qcfg(void) {
  sb_queue_config_t c;
  sb_queue_config_default(&c);
  return c;
}

static sb_sub_config_t to_queue(const char *q) {
  sb_sub_config_t c;
  memset(&c, 0, sizeof c);
  snprintf(c.queue, sizeof c.queue, "%s", q);
  return c;
}

#define S(n, v)                                                                                    \
  { n, strlen(n), "String", 6, v, strlen(v) }

TEST(fan_out_with_a_filter_policy) {
  char *dir = tmpdir();
  sb_broker_t *b = open_broker(dir);
  REQUIRE(b);
  sb_queue_config_t qc = qcfg();
  CHECK_EQ_INT(create(b, "email", &qc), 0);
  CHECK_EQ_INT(create(b, "warehouse", &qc), 0);
  CHECK_EQ_INT(create(b, "analytics", &qc), 0);
  CHECK_EQ_INT(topic(b, "order-events", false), 0);
  sb_sub_config_t c = to_queue("email");
  CHECK_EQ_INT(subscribe(b, "order-events", &c, NULL), 0);
  c = to_queue("warehouse");
  CHECK_EQ_INT(subscribe(b, "order-events", &c, NULL), 0);
  c = to_queue("analytics");
  c.filter = "{\"type\": [\"order.created\"]}";
  CHECK_EQ_INT(subscribe(b, "order-events", &c, NULL), 0);
  c.filter = "{\"type\": [\"unterminated\"";
  CHECK_EQ_INT(subscribe(b, "order-events", &c, NULL), SB_EINVAL);
  c = to_queue("nope");
  CHECK_EQ_INT(subscribe(b, "order-events", &c, NULL), SB_ENOTFOUND);

  sb_broker_attr_t created[] = {S("type", "order.created")};
  sb_broker_attr_t cancelled[] = {S("type", "order.cancelled")};
  int st;
  CHECK_EQ_INT(publish(b, "order-events", "{\"id\":1}", created, 1, NULL, &st), 3);
  CHECK_EQ_INT(st, 0);
  CHECK_EQ_INT(publish(b, "order-events", "{\"id\":2}", cancelled, 1, NULL, &st), 2);
  CHECK_EQ_INT(stats(b, "email").visible, 2);
  CHECK_EQ_INT(stats(b, "warehouse").visible, 2);
  CHECK_EQ_INT(stats(b, "analytics").visible, 1);
  res_t *r = recv(b, "analytics", 10, -1, 0);
  REQUIRE(r->n == 1);
  CHECK_MEM(r->m[0].body, "{\"id\":1}", 8);
  CHECK_EQ_INT(r->m[0].n_attrs, 1); /* attributes travel with the copy */
  free(r);
  res_t *subs;
  RUN(subs, sb_topic_subs(b, "order-events", NULL, on_done, subs));
  CHECK_EQ_INT(subs->n_subs, 3);
  uint64_t filtered = 0, delivered = 0;
  for (size_t i = 0; i < subs->n_subs; i++) {
    filtered += subs->subs[i].filtered;
    delivered += subs->subs[i].delivered;
  }
  CHECK_EQ_INT(filtered, 1);
  CHECK_EQ_INT(delivered, 5);
  free(subs);
  CHECK_EQ_INT(publish(b, "missing", "x", NULL, 0, NULL, &st), 0);
  CHECK_EQ_INT(st, SB_ENOTFOUND);
  sb_broker_close(b);
  drop_dir(dir);
}

TEST(body_filters_routing_keys_and_headers) {
  char *dir = tmpdir();
  sb_broker_t *b = open_broker(dir);
  REQUIRE(b);
  sb_queue_config_t qc = qcfg();
  CHECK_EQ_INT(create(b, "big", &qc), 0);
  CHECK_EQ_INT(create(b, "nyse", &qc), 0);
  CHECK_EQ_INT(create(b, "pdf", &qc), 0);
  CHECK_EQ_INT(topic(b, "ex", false), 0);
  sb_sub_config_t c = to_queue("big");
  c.filter = "{\"total\": [{\"numeric\": [\">\", 100]}]}";
  c.filter_body = true;
  CHECK_EQ_INT(subscribe(b, "ex", &c, NULL), 0);
  c = to_queue("nyse");
  c.binding = "stock.*.nyse";
  CHECK_EQ_INT(subscribe(b, "ex", &c, NULL), 0);
  c = to_queue("pdf");
  sb_broker_kv_t h[] = {{"format", "pdf"}};
  c.headers = h;
  c.n_headers = 1;
  CHECK_EQ_INT(subscribe(b, "ex", &c, NULL), 0);
  sb_broker_attr_t pdf[] = {S("format", "pdf")};
  CHECK_EQ_INT(publish(b, "ex", "{\"total\": 250}", NULL, 0, "bond.usd.lse", NULL), 1);
  CHECK_EQ_INT(publish(b, "ex", "{\"total\": 5}", NULL, 0, "stock.usd.nyse", NULL), 1);
  CHECK_EQ_INT(publish(b, "ex", "{\"total\": 5}", pdf, 1, "x", NULL), 1);
  CHECK_EQ_INT(stats(b, "big").visible, 1);
  CHECK_EQ_INT(stats(b, "nyse").visible, 1);
  CHECK_EQ_INT(stats(b, "pdf").visible, 1);
  sb_broker_close(b);
  drop_dir(dir);
}

typedef struct seen {
  pthread_mutex_t mu;
  int n;
  char last[64];
} seen_t;

static void on_msg(void *ud, const sb_topic_message_t *m, const char *sub) {
  (void)sub;
  seen_t *s = ud;
  pthread_mutex_lock(&s->mu);
  s->n++;
  snprintf(s->last, sizeof s->last, "%.*s", (int)m->msg->body_len, (const char *)m->msg->body);
  pthread_mutex_unlock(&s->mu);
}

TEST(callback_subscriptions_and_unsubscribe) {
  char *dir = tmpdir();
  sb_broker_t *b = open_broker(dir);
  REQUIRE(b);
  CHECK_EQ_INT(topic(b, "chat", false), 0);
  seen_t s = {PTHREAD_MUTEX_INITIALIZER, 0, ""};
  sb_sub_config_t c;
  memset(&c, 0, sizeof c);
  c.binding = "room.#";
  res_t *r;
  RUN(r, sb_topic_subscribe_callback(b, "chat", &c, on_msg, &s, on_done, r));
  CHECK_EQ_INT(r->status, 0);
  char id[37];
  memcpy(id, r->sub_id[0], 37);
  free(r);
  CHECK_EQ_INT(publish(b, "chat", "hello", NULL, 0, "room.1", NULL), 1);
  CHECK_EQ_INT(publish(b, "chat", "nope", NULL, 0, "dm.1", NULL), 0);
  CHECK_EQ_INT(s.n, 1);
  CHECK_EQ_STR(s.last, "hello");
  RUN(r, sb_topic_unsubscribe(b, id, on_done, r));
  CHECK_EQ_INT(r->status, 0);
  free(r);
  CHECK_EQ_INT(publish(b, "chat", "again", NULL, 0, "room.1", NULL), 0);
  CHECK_EQ_INT(s.n, 1);
  sb_broker_close(b);
  drop_dir(dir);
}

static int wrap(void *ud, const sb_topic_message_t *m, const sb_sub_info_t *sub, char **body,
                size_t *len, bool *keep) {
  (void)ud, (void)sub;
  *body = malloc(m->msg->body_len + 64);
  *len = (size_t)sprintf(*body, "{\"TopicArn\":\"%s\",\"Message\":\"%.*s\"}", m->topic,
                         (int)m->msg->body_len, (const char *)m->msg->body);
  *keep = false;
  return 0;
}

TEST(dead_letter_per_subscription_and_formatters) {
  char *dir = tmpdir();
  sb_broker_t *b = open_broker(dir);
  REQUIRE(b);
  CHECK_EQ_INT(sb_topic_set_format(b, "envelope", wrap, NULL), 0);
  sb_queue_config_t qc = qcfg();
  qc.max_messages = 1;
  CHECK_EQ_INT(create(b, "tiny", &qc), 0);
  qc = qcfg();
  CHECK_EQ_INT(create(b, "tiny-dlq", &qc), 0);
  CHECK_EQ_INT(create(b, "wrapped", &qc), 0);
  CHECK_EQ_INT(topic(b, "t", false), 0);
  sb_sub_config_t c = to_queue("tiny");
  snprintf(c.dead_letter, sizeof c.dead_letter, "tiny-dlq");
  CHECK_EQ_INT(subscribe(b, "t", &c, NULL), 0);
  c = to_queue("wrapped");
  snprintf(c.format, sizeof c.format, "envelope");
  CHECK_EQ_INT(subscribe(b, "t", &c, NULL), 0);
  sb_broker_attr_t a[] = {S("k", "v")};
  int st;
  CHECK_EQ_INT(publish(b, "t", "one", a, 1, NULL, &st), 2);
  CHECK_EQ_INT(publish(b, "t", "two", a, 1, NULL, &st), 1); /* tiny is full */
  CHECK_EQ_INT(st, 0);                                      /* ... but dead-lettered */
  CHECK_EQ_INT(stats(b, "tiny").visible, 1);
  CHECK_EQ_INT(stats(b, "tiny-dlq").visible, 1);
  res_t *r = recv(b, "wrapped", 10, -1, 0);
  CHECK_EQ_INT(r->n, 2);
  CHECK_EQ_STR(r->m[0].body, "{\"TopicArn\":\"t\",\"Message\":\"one\"}");
  CHECK_EQ_INT(r->m[0].n_attrs, 0);
  free(r);
  sb_broker_close(b);
  drop_dir(dir);
}

TEST(fifo_topics_and_restart) {
  char *dir = tmpdir();
  sb_broker_t *b = open_broker(dir);
  REQUIRE(b);
  sb_queue_config_t qc = qcfg();
  qc.fifo = true;
  qc.content_dedup = true;
  CHECK_EQ_INT(create(b, "orders.fifo", &qc), 0);
  qc = qcfg();
  CHECK_EQ_INT(create(b, "plain", &qc), 0);
  CHECK_EQ_INT(topic(b, "events.fifo", true), 0);
  CHECK_EQ_INT(topic(b, "events", true), SB_EINVAL); /* name and kind disagree */
  sb_sub_config_t c = to_queue("plain");
  CHECK_EQ_INT(subscribe(b, "events.fifo", &c, NULL), SB_EINVAL); /* FIFO to FIFO only */
  c = to_queue("orders.fifo");
  sb_broker_kv_t kv[] = {{"RawMessageDelivery", "true"}};
  c.kv = kv;
  c.n_kv = 1;
  c.filter = "{\"k\": [{\"exists\": true}]}";
  char id[37];
  CHECK_EQ_INT(subscribe(b, "events.fifo", &c, id), 0);
  sb_broker_msg_t nogroup = {.body = "x", .body_len = 1, .delay_ms = -1};
  res_t *r;
  RUN(r, sb_topic_publish(b, "events.fifo", &nogroup, NULL, NULL, 0, on_done, r));
  CHECK_EQ_INT(r->status, SB_EINVAL);
  free(r);
  sb_broker_close(b);

  b = open_broker(dir);
  REQUIRE(b);
  RUN(r, sb_topic_subs(b, NULL, id, on_done, r));
  REQUIRE(r->n_subs == 1);
  CHECK_EQ_STR(r->sub_queue[0], "orders.fifo");
  free(r);
  sb_broker_attr_t a[] = {S("k", "v")};
  for (int i = 0; i < 2; i++) {
    sb_broker_msg_t m = {.body = i ? "b" : "a",
                         .body_len = 1,
                         .attrs = a,
                         .n_attrs = 1,
                         .group = "g",
                         .group_len = 1,
                         .delay_ms = -1};
    RUN(r, sb_topic_publish(b, "events.fifo", &m, NULL, NULL, 0, on_done, r));
    CHECK_EQ_INT(r->count, 1);
    free(r);
  }
  r = recv(b, "orders.fifo", 10, -1, 0);
  CHECK_EQ_INT(r->n, 2);
  CHECK_MEM(r->m[0].body, "a", 1);
  CHECK_MEM(r->m[1].body, "b", 1);
  free(r);
  RUN(r, sb_topic_delete(b, "events.fifo", on_done, r));
  CHECK_EQ_INT(r->status, 0);
  free(r);
  sb_broker_close(b);
  b = open_broker(dir);
  REQUIRE(b);
  RUN(r, sb_topic_list(b, NULL, NULL, 10, on_done, r));
  CHECK_EQ_INT(r->n_names, 0);
  free(r);
  RUN(r, sb_topic_subs(b, NULL, NULL, on_done, r));
  CHECK_EQ_INT(r->n_subs, 0);
  free(r);
  sb_broker_close(b);
  drop_dir(dir);
}

/* Counts the records of every partition and finds the one holding `val`. */
static size_t stream_total(sb_broker_t *b, const char *st, uint32_t parts, const char *val,
                           char key_out[32]) {
  size_t total = 0;
  for (uint32_t p = 0; p < parts; p++) {
    sres_t *x;
    SRUN(x, sb_stream_read(b, st, p, 0, 8, 1 << 20, 0, on_s, x));
    total += x->n;
    for (size_t i = 0; i < x->n; i++)
      if (val && strcmp(x->val[i], val) == 0) memcpy(key_out, x->key[i], 32);
    free(x);
  }
  return total;
}

TEST(stream_subscriptions) {
  char *dir = tmpdir();
  sb_broker_t *b = open_broker(dir);
  REQUIRE(b);
  sb_stream_config_t sc;
  sb_stream_config_default(&sc);
  sc.partitions = 2;
  sres_t *x;
  SRUN(x, sb_stream_create(b, "audit", &sc, on_s, x));
  CHECK_EQ_INT(x->status, 0);
  free(x);
  CHECK_EQ_INT(topic(b, "orders", false), 0);
  sb_sub_config_t c;
  memset(&c, 0, sizeof c);
  snprintf(c.stream, sizeof c.stream, "audit");
  c.binding = "order.*";
  char id[37];
  CHECK_EQ_INT(subscribe(b, "orders", &c, id), 0);
  sb_sub_config_t both = c;
  snprintf(both.queue, sizeof both.queue, "audit");
  CHECK_EQ_INT(subscribe(b, "orders", &both, NULL), SB_EINVAL); /* one target only */
  sb_sub_config_t missing = c;
  snprintf(missing.stream, sizeof missing.stream, "nowhere");
  CHECK_EQ_INT(subscribe(b, "orders", &missing, NULL), SB_ENOTFOUND);

  int st;
  CHECK_EQ_INT(publish(b, "orders", "o-1 created", NULL, 0, "order.created", &st), 1);
  CHECK_EQ_INT(st, 0);
  CHECK_EQ_INT(publish(b, "orders", "o-1 paid", NULL, 0, "order.paid", &st), 1);
  CHECK_EQ_INT(publish(b, "orders", "refund", NULL, 0, "refund.issued", &st), 0); /* filtered */
  char key[32] = "";
  CHECK_EQ_INT(stream_total(b, "audit", 2, "o-1 paid", key), 2);
  CHECK_EQ_STR(key, "order.paid"); /* the routing key is the record's key */

  /* Same key, same partition, in publish order. */
  for (int i = 0; i < 4; i++) {
    char body[16];
    snprintf(body, sizeof body, "k%d", i);
    publish(b, "orders", body, NULL, 0, "order.keyed", &st);
  }
  sb_broker_close(b);

  b = open_broker(dir); /* the subscription is durable */
  REQUIRE(b);
  res_t *r;
  RUN(r, sb_topic_subs(b, NULL, id, on_done, r));
  CHECK_EQ_INT(r->status, 0);
  CHECK_EQ_INT(r->n_subs, 1);
  free(r);
  CHECK_EQ_INT(publish(b, "orders", "o-2 created", NULL, 0, "order.created", &st), 1);
  CHECK_EQ_INT(stream_total(b, "audit", 2, NULL, NULL), 7);
  bool ordered = false;
  for (uint32_t p = 0; p < 2; p++) {
    sres_t *y;
    SRUN(y, sb_stream_read(b, "audit", p, 0, 8, 1 << 20, 0, on_s, y));
    for (size_t i = 0; i + 3 < y->n; i++)
      if (!strcmp(y->val[i], "k0") && !strcmp(y->val[i + 1], "k1") &&
          !strcmp(y->val[i + 2], "k2") && !strcmp(y->val[i + 3], "k3"))
        ordered = true;
    free(y);
  }
  CHECK(ordered);

  /* A deleted stream: the copy fails and the publish reports it. */
  SRUN(x, sb_stream_delete(b, "audit", on_s, x));
  CHECK_EQ_INT(x->status, 0);
  free(x);
  publish(b, "orders", "lost", NULL, 0, "order.created", &st);
  CHECK_EQ_INT(st, SB_ENOTFOUND);
  sb_broker_close(b);
  drop_dir(dir);
}
