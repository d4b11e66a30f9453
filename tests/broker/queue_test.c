/*
 * Tests of the work-queue engine through the public broker API (broker.h): send, receive,
 * delete, visibility, delay, long poll, dead-lettering with byte-identical payloads, move
 * tasks, FIFO groups and deduplication, purge, depth limits, retention, and recovery of
 * everything acknowledged after the broker is closed and reopened, from the journal alone,
 * from an index snapshot, from an older snapshot plus the journal after it, and past a
 * damaged snapshot, and past a torn or bit-flipped tail record.
 *
 * Each call is made synchronous by waiting on a condition variable the callback (which runs
 * on the broker thread) signals; the callback deep-copies what the test inspects because
 * results are borrowed for the callback only.
 */
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

#include <glob.h>

#include "sync.h"

/* --- tests -------------------------------------------------------------------------------- */

TEST(names_are_checked) {
  CHECK_EQ_INT(sb_broker_check_name("orders", false), 0);
  CHECK_EQ_INT(sb_broker_check_name("orders.fifo", true), 0);
  CHECK_EQ_INT(sb_broker_check_name("orders.fifo", false), SB_EINVAL);
  CHECK_EQ_INT(sb_broker_check_name("orders", true), SB_EINVAL);
  CHECK_EQ_INT(sb_broker_check_name("a b", false), SB_EINVAL);
  CHECK_EQ_INT(sb_broker_check_name("", false), SB_EINVAL);
  char longname[90];
  memset(longname, 'a', 81);
  longname[81] = 0;
  CHECK_EQ_INT(sb_broker_check_name(longname, false), SB_EINVAL);
}

TEST(create_get_list_delete) {
  char *dir = tmpdir();
  sb_broker_t *b = open_broker(dir);
  REQUIRE(b);
  sb_queue_config_t c;
  sb_queue_config_default(&c);
  sb_broker_kv_t kv[] = {{"team", "orders"}};
  res_t *r;
  RUN(r, sb_queue_create(b, "alpha", &c, kv, 1, on_done, r));
  CHECK_EQ_INT(r->status, 0);
  CHECK(r->has_info);
  CHECK_EQ_INT(r->info.n_kv, 1);
  CHECK_EQ_STR(r->kv_value[0], "orders");
  free(r);
  CHECK_EQ_INT(create(b, "alpha", &c), 0); /* same config: fine */
  sb_queue_config_t c2 = c;
  c2.visibility_ms = 5000;
  CHECK_EQ_INT(create(b, "alpha", &c2), SB_ESTATE);
  CHECK_EQ_INT(create(b, "beta", &c), 0);
  CHECK_EQ_INT(create(b, "gamma", &c), 0);
  RUN(r, sb_queue_list(b, NULL, NULL, 2, on_done, r));
  CHECK_EQ_INT(r->n_names, 2);
  CHECK_EQ_STR(r->names[0], "alpha");
  CHECK_EQ_STR(r->next_token, "beta");
  free(r);
  RUN(r, sb_queue_list(b, NULL, "beta", 10, on_done, r));
  CHECK_EQ_INT(r->n_names, 1);
  CHECK_EQ_STR(r->names[0], "gamma");
  free(r);
  RUN(r, sb_queue_list(b, "be", NULL, 10, on_done, r));
  CHECK_EQ_INT(r->n_names, 1);
  free(r);
  RUN(r, sb_queue_delete(b, "beta", on_done, r));
  CHECK_EQ_INT(r->status, 0);
  free(r);
  RUN(r, sb_queue_get(b, "beta", on_done, r));
  CHECK_EQ_INT(r->status, SB_ENOTFOUND);
  free(r);
  CHECK_EQ_INT(send1(b, "nope", "x", NULL), SB_ENOTFOUND);
  c2 = c;
  c2.fifo = true;
  CHECK_EQ_INT(create(b, "notfifo", &c2), SB_EINVAL);
  sb_broker_close(b);
  drop_dir(dir);
}

TEST(send_receive_delete_and_stale_receipts) {
  char *dir = tmpdir();
  sb_broker_t *b = open_broker(dir);
  REQUIRE(b);
  sb_queue_config_t c;
  sb_queue_config_default(&c);
  CHECK_EQ_INT(create(b, "work", &c), 0);
  char id[37];
  CHECK_EQ_INT(send1(b, "work", "hello", id), 0);
  CHECK_EQ_INT(strlen(id), 36);
  int64_t t0 = wall_ms();
  res_t *r = recv(b, "work", 10, 50, 0);
  int64_t t1 = wall_ms();
  CHECK_EQ_INT(r->n, 1);
  CHECK_EQ_STR(r->m[0].id, id);
  CHECK_MEM(r->m[0].body, "hello", 5);
  CHECK_EQ_INT(r->m[0].receive_count, 1);
  int64_t first_ms = r->m[0].first_receive_ms; /* in ms, not rounded to a second */
  CHECK(first_ms >= t0 && first_ms <= t1);
  char first_receipt[SB_BROKER_RECEIPT_LEN + 1];
  memcpy(first_receipt, r->m[0].receipt, sizeof first_receipt);
  free(r);
  r = recv(b, "work", 10, -1, 0); /* leased: nothing visible */
  CHECK_EQ_INT(r->n, 0);
  free(r);
  sleep_ms(120); /* lease of 50 ms expired */
  r = recv(b, "work", 10, -1, 0);
  CHECK_EQ_INT(r->n, 1);
  CHECK_EQ_STR(r->m[0].id, id); /* stable id across redelivery */
  CHECK_EQ_INT(r->m[0].receive_count, 2);
  CHECK_EQ_INT(r->m[0].first_receive_ms, first_ms);
  CHECK(strcmp(r->m[0].receipt, first_receipt) != 0);
  CHECK_EQ_INT(del(b, "work", first_receipt), SB_ESTATE); /* stale handle */
  CHECK_EQ_INT(del(b, "work", "garbage"), SB_EINVAL);
  CHECK_EQ_INT(del(b, "work", r->m[0].receipt), 0);
  CHECK_EQ_INT(del(b, "work", r->m[0].receipt), 0); /* already deleted: fine */
  free(r);
  sb_queue_stats_t s = stats(b, "work");
  CHECK_EQ_INT(s.visible + s.in_flight + s.delayed, 0);
  CHECK_EQ_INT(s.deleted, 1);
  sb_broker_close(b);
  drop_dir(dir);
}

TEST(change_visibility_and_delay) {
  char *dir = tmpdir();
  sb_broker_t *b = open_broker(dir);
  REQUIRE(b);
  sb_queue_config_t c;
  sb_queue_config_default(&c);
  CHECK_EQ_INT(create(b, "v", &c), 0);
  CHECK_EQ_INT(send1(b, "v", "m1", NULL), 0);
  res_t *r = recv(b, "v", 1, 60000, 0);
  REQUIRE(r->n == 1);
  const char *rs[1] = {r->m[0].receipt};
  res_t *cv;
  RUN(cv, sb_queue_change_visibility(b, "v", rs, 1, 0, on_done, cv));
  CHECK_EQ_INT(cv->statuses[0], 0);
  free(cv);
  free(r);
  r = recv(b, "v", 1, 60000, 0);
  CHECK_EQ_INT(r->n, 1); /* visible again at once */
  free(r);

  sb_broker_msg_t m = {.body = "later", .body_len = 5, .delay_ms = 150};
  res_t *s;
  RUN(s, sb_queue_send(b, "v", &m, 1, on_done, s));
  CHECK_EQ_INT(s->sent[0].status, 0);
  free(s);
  CHECK_EQ_INT(stats(b, "v").delayed, 1);
  r = recv(b, "v", 1, -1, 0);
  CHECK_EQ_INT(r->n, 0);
  free(r);
  int64_t t0 = now_ms();
  r = recv(b, "v", 1, -1, 2000); /* long poll until the delay passes */
  CHECK_EQ_INT(r->n, 1);
  CHECK_MEM(r->m[0].body, "later", 5);
  CHECK(now_ms() - t0 < 1500);
  free(r);
  sb_broker_close(b);
  drop_dir(dir);
}

typedef struct later {
  sb_broker_t *b;
  int delay;
} later_t;

static void *send_later(void *arg) {
  later_t *l = arg;
  sleep_ms(l->delay);
  send1(l->b, "lp", "wake", NULL);
  return NULL;
}

TEST(long_poll_returns_when_a_message_arrives) {
  char *dir = tmpdir();
  sb_broker_t *b = open_broker(dir);
  REQUIRE(b);
  sb_queue_config_t c;
  sb_queue_config_default(&c);
  CHECK_EQ_INT(create(b, "lp", &c), 0);
  int64_t t0 = now_ms();
  res_t *r = recv(b, "lp", 1, -1, 200);
  CHECK_EQ_INT(r->n, 0);
  CHECK(now_ms() - t0 >= 180);
  free(r);
  later_t l = {b, 100};
  pthread_t th;
  pthread_create(&th, NULL, send_later, &l);
  t0 = now_ms();
  r = recv(b, "lp", 1, -1, 10000);
  int64_t took = now_ms() - t0;
  pthread_join(th, NULL);
  CHECK_EQ_INT(r->n, 1);
  CHECK(took < 2000);
  free(r);
  sb_broker_close(b);
  drop_dir(dir);
}

TEST(dead_letter_keeps_payload_and_redrive_brings_it_back) {
  char *dir = tmpdir();
  sb_broker_t *b = open_broker(dir);
  REQUIRE(b);
  sb_queue_config_t c;
  sb_queue_config_default(&c);
  CHECK_EQ_INT(create(b, "orders-dlq", &c), 0);
  c.max_receive_count = 2;
  snprintf(c.dead_letter, sizeof c.dead_letter, "orders-dlq");
  CHECK_EQ_INT(create(b, "orders", &c), 0);
  static const uint8_t bin[] = {0, 1, 2, 0, 255};
  sb_broker_attr_t at[2] = {{"kind", 4, "String", 6, "poison", 6},
                            {"blob", 4, "Binary", 6, bin, sizeof bin}};
  const char body[] = "{\"orderId\": 7, \"bad\": true}";
  sb_broker_msg_t m = {
      .body = body, .body_len = strlen(body), .attrs = at, .n_attrs = 2, .delay_ms = -1};
  res_t *s;
  RUN(s, sb_queue_send(b, "orders", &m, 1, on_done, s));
  REQUIRE(s->sent[0].status == 0);
  char id[37];
  memcpy(id, s->sent[0].id, 37);
  free(s);
  for (int i = 0; i < 2; i++) {
    res_t *r = recv(b, "orders", 1, 0, 0); /* visibility 0: a failed consumer */
    CHECK_EQ_INT(r->n, 1);
    free(r);
  }
  res_t *r = recv(b, "orders", 1, 0, 0); /* third receive: moved instead */
  CHECK_EQ_INT(r->n, 0);
  free(r);
  r = recv(b, "orders-dlq", 1, 60000, 2000);
  REQUIRE(r->n == 1);
  CHECK_EQ_STR(r->m[0].id, id);
  CHECK_EQ_INT(r->m[0].body_len, strlen(body));
  CHECK_MEM(r->m[0].body, body, strlen(body));
  CHECK_EQ_INT(r->m[0].n_attrs, 2);
  CHECK_EQ_STR(r->m[0].attr_name[0], "kind");
  CHECK_EQ_STR(r->m[0].attr_type[0], "String");
  CHECK_MEM(r->m[0].attr_val[0], "poison", 6);
  CHECK_EQ_STR(r->m[0].attr_name[1], "blob");
  CHECK_EQ_INT(r->m[0].attr_len[1], sizeof bin);
  CHECK_MEM(r->m[0].attr_val[1], bin, sizeof bin);
  CHECK_EQ_STR(r->m[0].dlq_source, "orders");
  CHECK_EQ_INT(r->m[0].dlq_receive_count, 2);
  /* Back to visible in the DLQ, then a dry run and a redrive. */
  const char *rs[1] = {r->m[0].receipt};
  res_t *cv;
  RUN(cv, sb_queue_change_visibility(b, "orders-dlq", rs, 1, 0, on_done, cv));
  free(cv);
  free(r);
  CHECK_EQ_INT(stats(b, "orders").dead_lettered, 1);
  res_t *p;
  RUN(p, sb_queue_peek(b, "orders-dlq", 0, 10, "kind", "poison", on_done, p));
  CHECK_EQ_INT(p->n, 1);
  free(p);
  RUN(p, sb_queue_peek(b, "orders-dlq", 0, 10, "kind", "other", on_done, p));
  CHECK_EQ_INT(p->n, 0);
  free(p);
  res_t *src;
  RUN(src, sb_queue_dlq_sources(b, "orders-dlq", on_done, src));
  CHECK_EQ_INT(src->n_names, 1);
  CHECK_EQ_STR(src->names[0], "orders");
  free(src);
  res_t *mv;
  RUN(mv, sb_move_start(b, "orders-dlq", NULL, 0, on_done, mv));
  CHECK_EQ_INT(mv->status, 0);
  CHECK_EQ_INT(mv->n, 1);
  CHECK_EQ_INT(mv->tasks[0].to_move, 1);
  free(mv);
  r = recv(b, "orders", 1, 60000, 3000);
  REQUIRE(r->n == 1);
  CHECK_EQ_STR(r->m[0].id, id);
  CHECK_MEM(r->m[0].body, body, strlen(body));
  CHECK_EQ_INT(r->m[0].n_attrs, 2);
  CHECK_EQ_STR(r->m[0].dlq_source, ""); /* failure metadata is gone after a redrive */
  free(r);
  sleep_ms(50);
  res_t *ls;
  RUN(ls, sb_move_list(b, NULL, 10, on_done, ls));
  CHECK_EQ_INT(ls->n, 1);
  CHECK_EQ_INT(ls->tasks[0].state, SB_MOVE_COMPLETED);
  CHECK_EQ_INT(ls->tasks[0].moved, 1);
  free(ls);
  CHECK_EQ_INT(stats(b, "orders-dlq").visible, 0);
  sb_broker_close(b);
  drop_dir(dir);
}

TEST(move_task_honours_its_rate) {
  char *dir = tmpdir();
  sb_broker_t *b = open_broker(dir);
  REQUIRE(b);
  sb_queue_config_t c;
  sb_queue_config_default(&c);
  CHECK_EQ_INT(create(b, "src-dlq", &c), 0);
  CHECK_EQ_INT(create(b, "dest", &c), 0);
  for (int i = 0; i < 6; i++)
    CHECK_EQ_INT(send1(b, "src-dlq", "m", NULL), 0);
  int64_t t0 = now_ms();
  res_t *mv;
  RUN(mv, sb_move_start(b, "src-dlq", "dest", 10, on_done, mv));
  CHECK_EQ_INT(mv->status, 0);
  free(mv);
  res_t *again;
  RUN(again, sb_move_start(b, "src-dlq", "dest", 10, on_done, again));
  CHECK_EQ_INT(again->status, SB_ESTATE); /* one running task per source */
  free(again);
  for (;;) {
    res_t *ls;
    RUN(ls, sb_move_list(b, "src-dlq", 1, on_done, ls));
    int st = ls->tasks[0].state;
    free(ls);
    if (st != SB_MOVE_RUNNING || now_ms() - t0 > 5000) break;
    sleep_ms(20);
  }
  int64_t took = now_ms() - t0;
  CHECK(took >= 400); /* 6 messages at 10/s: the 6th may start at 500 ms */
  CHECK_EQ_INT(stats(b, "dest").visible, 6);
  sb_broker_close(b);
  drop_dir(dir);
}

TEST(fifo_groups_are_ordered_and_blocking) {
  char *dir = tmpdir();
  sb_broker_t *b = open_broker(dir);
  REQUIRE(b);
  sb_queue_config_t c;
  sb_queue_config_default(&c);
  c.fifo = true;
  c.content_dedup = true;
  CHECK_EQ_INT(create(b, "jobs.fifo", &c), 0);
  const char *groups[] = {"A", "A", "A", "B", "B"};
  const char *bodies[] = {"a1", "a2", "a3", "b1", "b2"};
  for (int i = 0; i < 5; i++) {
    sb_broker_msg_t m = {
        .body = bodies[i], .body_len = 2, .group = groups[i], .group_len = 1, .delay_ms = -1};
    res_t *s;
    RUN(s, sb_queue_send(b, "jobs.fifo", &m, 1, on_done, s));
    CHECK_EQ_INT(s->sent[0].status, 0);
    free(s);
  }
  /* Without a group: refused. */
  sb_broker_msg_t bad = {.body = "x", .body_len = 1, .delay_ms = -1};
  res_t *s;
  RUN(s, sb_queue_send(b, "jobs.fifo", &bad, 1, on_done, s));
  CHECK_EQ_INT(s->sent[0].status, SB_EINVAL);
  free(s);
  res_t *r1 = recv(b, "jobs.fifo", 1, 60000, 0);
  REQUIRE(r1->n == 1);
  CHECK_MEM(r1->m[0].body, "a1", 2);
  res_t *r2 = recv(b, "jobs.fifo", 10, 60000, 0); /* A is blocked: only B, in order */
  CHECK_EQ_INT(r2->n, 2);
  CHECK_MEM(r2->m[0].body, "b1", 2);
  CHECK_MEM(r2->m[1].body, "b2", 2);
  res_t *r3 = recv(b, "jobs.fifo", 10, 60000, 0);
  CHECK_EQ_INT(r3->n, 0);
  free(r3);
  CHECK_EQ_INT(del(b, "jobs.fifo", r1->m[0].receipt), 0);
  r3 = recv(b, "jobs.fifo", 10, 60000, 0);
  CHECK_EQ_INT(r3->n, 2);
  CHECK_MEM(r3->m[0].body, "a2", 2);
  CHECK_MEM(r3->m[1].body, "a3", 2);
  free(r3);
  free(r1);
  free(r2);
  sb_broker_close(b);
  drop_dir(dir);
}

TEST(fifo_deduplication) {
  char *dir = tmpdir();
  sb_broker_t *b = open_broker(dir);
  REQUIRE(b);
  sb_queue_config_t c;
  sb_queue_config_default(&c);
  c.fifo = true;
  CHECK_EQ_INT(create(b, "d.fifo", &c), 0);
  sb_broker_msg_t m = {.body = "pay",
                       .body_len = 3,
                       .group = "g",
                       .group_len = 1,
                       .dedup = "order-1",
                       .dedup_len = 7,
                       .delay_ms = -1};
  res_t *s1;
  RUN(s1, sb_queue_send(b, "d.fifo", &m, 1, on_done, s1));
  res_t *s2;
  RUN(s2, sb_queue_send(b, "d.fifo", &m, 1, on_done, s2));
  CHECK_EQ_INT(s1->sent[0].status, 0);
  CHECK(!s1->sent[0].duplicate);
  CHECK(s2->sent[0].duplicate);
  CHECK_EQ_STR(s2->sent[0].id, s1->sent[0].id);
  free(s1);
  free(s2);
  sb_broker_msg_t nodedup = {
      .body = "x", .body_len = 1, .group = "g", .group_len = 1, .delay_ms = -1};
  res_t *s3;
  RUN(s3, sb_queue_send(b, "d.fifo", &nodedup, 1, on_done, s3));
  CHECK_EQ_INT(s3->sent[0].status, SB_EINVAL); /* no id and no content dedup */
  free(s3);
  CHECK_EQ_INT(stats(b, "d.fifo").visible, 1);
  sb_broker_close(b);
  /* The window survives a restart. */
  b = open_broker(dir);
  REQUIRE(b);
  res_t *s4;
  RUN(s4, sb_queue_send(b, "d.fifo", &m, 1, on_done, s4));
  CHECK(s4->sent[0].duplicate);
  free(s4);
  sb_broker_close(b);
  drop_dir(dir);
}

TEST(purge_limits_and_retention) {
  char *dir = tmpdir();
  sb_broker_t *b = open_broker(dir);
  REQUIRE(b);
  sb_queue_config_t c;
  sb_queue_config_default(&c);
  c.max_messages = 3;
  CHECK_EQ_INT(create(b, "small", &c), 0);
  for (int i = 0; i < 3; i++)
    CHECK_EQ_INT(send1(b, "small", "m", NULL), 0);
  CHECK_EQ_INT(send1(b, "small", "m", NULL), SB_ELIMIT);
  res_t *p;
  RUN(p, sb_queue_purge(b, "small", on_done, p));
  CHECK_EQ_INT(p->status, 0);
  CHECK_EQ_INT(p->count, 3);
  free(p);
  CHECK_EQ_INT(send1(b, "small", "m", NULL), 0);
  sb_queue_config_default(&c);
  c.retention_ms = 100;
  CHECK_EQ_INT(create(b, "short", &c), 0);
  CHECK_EQ_INT(send1(b, "short", "m", NULL), 0);
  sleep_ms(1300); /* the sweep runs every second */
  sb_queue_stats_t s = stats(b, "short");
  CHECK_EQ_INT(s.visible, 0);
  CHECK_EQ_INT(s.expired, 1);
  sb_broker_close(b);
  drop_dir(dir);
}

TEST(restart_keeps_acknowledged_state) {
  char *dir = tmpdir();
  sb_broker_t *b = open_broker(dir);
  REQUIRE(b);
  sb_queue_config_t c;
  sb_queue_config_default(&c);
  sb_broker_kv_t kv[] = {{"Policy", "{}"}};
  res_t *cr;
  RUN(cr, sb_queue_create(b, "keep", &c, kv, 1, on_done, cr));
  free(cr);
  char ids[3][37];
  for (int i = 0; i < 3; i++)
    CHECK_EQ_INT(send1(b, "keep", "m", ids[i]), 0);
  res_t *r = recv(b, "keep", 2, 60000, 0);
  REQUIRE(r->n == 2);
  CHECK_EQ_INT(del(b, "keep", r->m[0].receipt), 0); /* ids[0] deleted, ids[1] in flight */
  int64_t first_ms = r->m[1].first_receive_ms;
  free(r);
  sb_broker_close(b);

  b = open_broker(dir);
  REQUIRE(b);
  res_t *g;
  RUN(g, sb_queue_get(b, "keep", on_done, g));
  CHECK_EQ_INT(g->status, 0);
  CHECK_EQ_INT(g->info.stats.visible, 2); /* the leased one is visible again */
  CHECK_EQ_INT(g->info.n_kv, 1);
  CHECK_EQ_STR(g->kv_name[0], "Policy");
  free(g);
  r = recv(b, "keep", 10, 60000, 0);
  CHECK_EQ_INT(r->n, 2);
  CHECK_EQ_STR(r->m[0].id, ids[1]);
  CHECK_EQ_INT(r->m[0].receive_count, 2); /* the receive before the restart counted */
  CHECK_EQ_INT(r->m[0].first_receive_ms, first_ms);
  CHECK_EQ_STR(r->m[1].id, ids[2]);
  CHECK_EQ_INT(r->m[1].receive_count, 1);
  free(r);
  /* A deleted queue stays deleted. */
  res_t *d;
  RUN(d, sb_queue_delete(b, "keep", on_done, d));
  free(d);
  sb_broker_close(b);
  b = open_broker(dir);
  REQUIRE(b);
  res_t *ls;
  RUN(ls, sb_queue_list(b, NULL, NULL, 10, on_done, ls));
  CHECK_EQ_INT(ls->n_names, 0);
  free(ls);
  sb_broker_close(b);
  drop_dir(dir);
}

TEST(receipts_parse) {
  uint64_t q, s;
  uint32_t n;
  CHECK_EQ_INT(sb_broker_parse_receipt("", &q, &s, &n), SB_EINVAL);
  CHECK_EQ_INT(sb_broker_parse_receipt(NULL, &q, &s, &n), SB_EINVAL);
  char bad[SB_BROKER_RECEIPT_LEN + 1];
  memset(bad, '0', SB_BROKER_RECEIPT_LEN);
  bad[SB_BROKER_RECEIPT_LEN] = 0;
  CHECK_EQ_INT(sb_broker_parse_receipt(bad, &q, &s, &n), SB_EINVAL); /* wrong check */
}

TEST(consumer_dedup_helper) {
  sb_dedup_t *d;
  REQUIRE(sb_dedup_new(2, 1000, &d) == 0);
  CHECK_EQ_INT(sb_dedup_check_and_add(d, "a", 1, 0), 0);
  CHECK_EQ_INT(sb_dedup_check_and_add(d, "a", 1, 10), 1);
  CHECK_EQ_INT(sb_dedup_check_and_add(d, "b", 1, 20), 0);
  CHECK_EQ_INT(sb_dedup_check_and_add(d, "c", 1, 30), 0); /* evicts "a" */
  CHECK_EQ_INT(sb_dedup_check_and_add(d, "a", 1, 40), 0);
  CHECK_EQ_INT(sb_dedup_check_and_add(d, "c", 1, 2000), 0); /* expired */
  CHECK_EQ_INT(sb_dedup_check_and_add(d, "", 0, 0), SB_EINVAL);
  sb_dedup_free(d);
}

/* Sends n messages "b<i>" (delay_ms for the first `delayed` of them). */
static void send_n(sb_broker_t *b, const char *q, int from, int n, int delayed) {
  for (int i = from; i < from + n; i++) {
    char body[16];
    snprintf(body, sizeof body, "b%d", i);
    sb_broker_msg_t m = {.body = body, .body_len = strlen(body), .delay_ms = -1};
    if (i - from < delayed) m.delay_ms = 60000;
    res_t *r;
    RUN(r, sb_queue_send(b, q, &m, 1, on_done, r));
    CHECK_EQ_INT(r->status ? r->status : r->sent[0].status, 0);
    free(r);
  }
}

/* Receives up to n messages with a long lease and deletes them; returns how many. */
static int take_n(sb_broker_t *b, const char *q, int n) {
  int done = 0;
  while (done < n) {
    res_t *r = recv(b, q, (size_t)(n - done < 10 ? n - done : 10), 600000, 0);
    size_t got = r->n;
    for (size_t i = 0; i < got; i++)
      CHECK_EQ_INT(del(b, q, r->m[i].receipt), 0);
    free(r);
    if (!got) break;
    done += (int)got;
  }
  return done;
}

/* Copies (save) or restores every index.snap under dir to/from <file>.kept. */
static int snaps(const char *dir, bool save) {
  char pat[256];
  snprintf(pat, sizeof pat, "%s/q-*/index.snap", dir);
  glob_t g;
  if (glob(pat, 0, NULL, &g)) return 0;
  int n = 0;
  for (size_t i = 0; i < g.gl_pathc; i++) {
    char kept[512], cmd[1200];
    snprintf(kept, sizeof kept, "%s.kept", g.gl_pathv[i]);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", save ? g.gl_pathv[i] : kept,
             save ? kept : g.gl_pathv[i]);
    if (system(cmd) == 0) n++;
  }
  globfree(&g);
  return n;
}

TEST(index_snapshots) {
  char *dir = tmpdir();
  sb_broker_t *b = open_broker(dir);
  REQUIRE(b);
  sb_queue_config_t c;
  sb_queue_config_default(&c);
  c.fsync = SB_BROKER_FSYNC_NEVER;
  CHECK_EQ_INT(create(b, "snap", &c), 0);
  send_n(b, "snap", 0, 3000, 5);
  CHECK_EQ_INT(take_n(b, "snap", 50), 50);
  res_t *held = recv(b, "snap", 10, 600000, 0); /* in flight at shutdown */
  CHECK_EQ_INT(held->n, 10);
  free(held);
  sb_queue_config_t fc = c;
  fc.fifo = true;
  CHECK_EQ_INT(create(b, "snap.fifo", &fc), 0);
  for (int i = 0; i < 6; i++) {
    char body[8], dd[8];
    snprintf(body, sizeof body, "f%d", i);
    snprintf(dd, sizeof dd, "d%d", i);
    sb_broker_msg_t m = {.body = body,
                         .body_len = strlen(body),
                         .group = i % 2 ? "odd" : "even",
                         .group_len = i % 2 ? 3 : 4,
                         .dedup = dd,
                         .dedup_len = strlen(dd),
                         .delay_ms = -1};
    res_t *r;
    RUN(r, sb_queue_send(b, "snap.fifo", &m, 1, on_done, r));
    free(r);
  }
  res_t *f = recv(b, "snap.fifo", 1, 600000, 0); /* "even" in flight */
  CHECK_EQ_INT(f->n, 1);
  CHECK_MEM(f->m[0].body, "f0", 2);
  free(f);
  sb_broker_close(b);
  CHECK_EQ_INT(snaps(dir, true), 2); /* a clean shutdown wrote both */

  b = open_broker(dir);
  REQUIRE(b);
  sb_queue_stats_t s = stats(b, "snap");
  CHECK_EQ_INT(s.replayed, 0); /* all from the snapshot */
  CHECK_EQ_INT(s.visible, 2945);
  CHECK_EQ_INT(s.delayed, 5);
  CHECK_EQ_INT(s.in_flight, 0);
  res_t *r = recv(b, "snap", 10, 600000, 0); /* the ten held ones, received once before */
  CHECK_EQ_INT(r->n, 10);
  CHECK_EQ_INT(r->m[0].receive_count, 2);
  CHECK_MEM(r->m[0].body, "b55", 3);
  for (size_t i = 0; i < r->n; i++)
    CHECK_EQ_INT(del(b, "snap", r->m[i].receipt), 0);
  free(r);
  f = recv(b, "snap.fifo", 10, 600000, 0); /* groups in order, from their first message */
  CHECK_EQ_INT(f->n, 6);
  int pos[6] = {-1, -1, -1, -1, -1, -1};
  for (size_t i = 0; i < f->n; i++)
    if (f->m[i].body[0] == 'f' && f->m[i].body[1] >= '0' && f->m[i].body[1] <= '5')
      pos[f->m[i].body[1] - '0'] = (int)i;
  CHECK(pos[0] >= 0 && pos[0] < pos[2] && pos[2] < pos[4]); /* each group in send order */
  CHECK(pos[1] >= 0 && pos[1] < pos[3] && pos[3] < pos[5]);
  CHECK_EQ_INT(f->m[pos[0] < 0 ? 0 : pos[0]].receive_count, 2);
  free(f);
  sb_broker_msg_t again = {.body = "f9",
                           .body_len = 2,
                           .group = "odd",
                           .group_len = 3,
                           .dedup = "d3",
                           .dedup_len = 2,
                           .delay_ms = -1};
  res_t *dup;
  RUN(dup, sb_queue_send(b, "snap.fifo", &again, 1, on_done, dup));
  CHECK(dup->sent[0].duplicate); /* the dedup window came back too */
  free(dup);
  /* Work after the snapshot: the old file must replay it from the journal. */
  CHECK_EQ_INT(take_n(b, "snap", 100), 100);
  send_n(b, "snap", 5000, 7, 0);
  sb_broker_close(b);
  CHECK_EQ_INT(snaps(dir, false), 2); /* back to the older snapshots */

  b = open_broker(dir);
  REQUIRE(b);
  s = stats(b, "snap");
  CHECK(s.replayed >= 7 && s.replayed < 200); /* the sends, deletes and receives since */
  CHECK_EQ_INT(s.visible, 2945 - 10 - 100 + 7);
  CHECK_EQ_INT(s.delayed, 5);
  sb_broker_close(b);

  /* A damaged snapshot is ignored: a full replay gives the same state. */
  char pat[256];
  snprintf(pat, sizeof pat, "%s/q-*/index.snap", dir);
  glob_t g;
  REQUIRE(glob(pat, 0, NULL, &g) == 0);
  for (size_t i = 0; i < g.gl_pathc; i++) {
    FILE *fp = fopen(g.gl_pathv[i], "r+b");
    REQUIRE(fp);
    fseek(fp, 100, SEEK_SET);
    int byte = fgetc(fp);
    fseek(fp, 100, SEEK_SET);
    fputc(0x5a ^ byte, fp); /* flips bits of one entry byte */
    fclose(fp);
  }
  globfree(&g);
  b = open_broker(dir);
  REQUIRE(b);
  s = stats(b, "snap");
  CHECK(s.replayed > 3000); /* everything */
  CHECK_EQ_INT(s.visible, 2945 - 10 - 100 + 7);
  CHECK_EQ_INT(s.delayed, 5);
  sb_broker_close(b);
  drop_dir(dir);
}

/* The newest segment file of the queue journals under dir. */
static bool last_segment(const char *dir, char *out, size_t cap) {
  char pat[256];
  snprintf(pat, sizeof pat, "%s/q-*/*.seg", dir);
  glob_t g;
  if (glob(pat, 0, NULL, &g) || !g.gl_pathc) return false;
  snprintf(out, cap, "%s", g.gl_pathv[g.gl_pathc - 1]); /* glob sorts: highest offset last */
  globfree(&g);
  return true;
}

TEST(a_damaged_tail_is_cut_at_restart) {
  char *dir = tmpdir();
  sb_broker_t *b = open_broker(dir);
  REQUIRE(b);
  sb_queue_config_t c;
  sb_queue_config_default(&c);
  CHECK_EQ_INT(create(b, "t", &c), 0);
  send_n(b, "t", 0, 20, 0);
  sb_broker_close(b); /* writes a snapshot that the damage will make stale */
  char seg[512];
  REQUIRE(last_segment(dir, seg, sizeof seg));
  struct stat st;
  REQUIRE(stat(seg, &st) == 0);
  REQUIRE(truncate(seg, st.st_size - 10) == 0); /* a torn last record */
  b = open_broker(dir);
  REQUIRE(b);
  sb_queue_stats_t s = stats(b, "t");
  CHECK_EQ_INT(s.visible, 19);
  CHECK(s.replayed >= 19); /* the snapshot was ahead of the journal: a full replay */
  sb_broker_close(b);

  REQUIRE(stat(seg, &st) == 0);
  FILE *f = fopen(seg, "r+b"); /* flip a bit in the body of the last record */
  REQUIRE(f);
  fseek(f, st.st_size - 3, SEEK_SET);
  int byte = fgetc(f);
  fseek(f, st.st_size - 3, SEEK_SET);
  fputc(byte ^ 0x10, f);
  fclose(f);
  b = open_broker(dir);
  REQUIRE(b);
  CHECK_EQ_INT(stats(b, "t").visible, 18);
  send_n(b, "t", 100, 1, 0); /* and the queue takes sends again */
  res_t *r = recv(b, "t", 10, 60000, 0);
  CHECK_EQ_INT(r->n, 10);
  CHECK_MEM(r->m[0].body, "b0", 2);
  free(r);
  sb_broker_close(b);
  b = open_broker(dir);
  REQUIRE(b);
  CHECK_EQ_INT(stats(b, "t").visible, 19);
  sb_broker_close(b);
  drop_dir(dir);
}

TEST(retention_reaches_old_copies_behind_younger_messages) {
  char *dir = tmpdir();
  sb_broker_t *b = open_broker(dir);
  REQUIRE(b);
  sb_queue_config_t c;
  sb_queue_config_default(&c);
  c.retention_ms = 4000;
  CHECK_EQ_INT(create(b, "old-dlq", &c), 0);
  sb_queue_config_t src;
  sb_queue_config_default(&src);
  src.max_receive_count = 1;
  snprintf(src.dead_letter, sizeof src.dead_letter, "old-dlq");
  CHECK_EQ_INT(create(b, "old-src", &src), 0);
  int64_t t0 = now_ms();
  send_n(b, "old-src", 0, 1, 0); /* "b0", sent at t0 */
  res_t *r = recv(b, "old-src", 1, 0, 0);
  CHECK_EQ_INT(r->n, 1);
  free(r);
  sleep_ms(2500);
  send_n(b, "old-dlq", 1, 1, 0);   /* "b1", sent at t0 + 2.5 s, first in the DLQ */
  r = recv(b, "old-src", 1, 0, 0); /* the second receive dead-letters b0 behind it */
  CHECK_EQ_INT(r->n, 0);
  free(r);
  for (int i = 0; i < 100 && stats(b, "old-dlq").visible < 2; i++) /* the move is async */
    sleep_ms(10);
  CHECK_EQ_INT(stats(b, "old-dlq").visible, 2);
  /* b0 is past retention at t0 + 4 s and the sweep runs every second; b1 stays until
   * t0 + 6.5 s. */
  while (now_ms() < t0 + 5300)
    sleep_ms(100);
  sb_queue_stats_t s = stats(b, "old-dlq");
  CHECK_EQ_INT(s.visible, 1);
  CHECK_EQ_INT(s.expired, 1);
  r = recv(b, "old-dlq", 10, 60000, 0);
  CHECK_EQ_INT(r->n, 1);
  CHECK_MEM(r->m[0].body, "b1", 2);
  free(r);
  sb_broker_close(b);
  drop_dir(dir);
}
