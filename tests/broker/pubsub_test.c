/*
 * Tests of the pub/sub engine (src/broker/pubsub.c): glob patterns, channel and pattern
 * delivery with the publish's receiver count, unsubscribe, and the bounded buffer that drops
 * a subscriber which does not keep up.
 */
#include <stdatomic.h>

#include "sync.h"

static bool glob(const char *p, const char *s) {
  return sb_glob_match(p, strlen(p), s, strlen(s));
}

TEST(glob_patterns) {
  CHECK(glob("news.*", "news.tech"));
  CHECK(glob("news.*", "news."));
  CHECK(!glob("news.*", "news"));
  CHECK(glob("h?llo", "hello"));
  CHECK(!glob("h?llo", "hllo"));
  CHECK(glob("h[ae]llo", "hallo"));
  CHECK(!glob("h[ae]llo", "hillo"));
  CHECK(glob("h[^e]llo", "hallo"));
  CHECK(!glob("h[^e]llo", "hello"));
  CHECK(glob("h[a-c]llo", "hbllo"));
  CHECK(glob("*", ""));
  CHECK(glob("a*b*c", "axxbyyc"));
  CHECK(!glob("a*b*c", "axxbyy"));
  CHECK(glob("a\\*", "a*"));
  CHECK(!glob("a\\*", "ab"));
  CHECK(glob("**x", "abcx"));
}

static atomic_int wakes;
static void notify(void *ud) {
  (void)ud;
  atomic_fetch_add(&wakes, 1);
}

static uint64_t pub(sb_broker_t *b, const char *chan, const char *data) {
  res_t *r;
  RUN(r, sb_pubsub_publish(b, chan, data, strlen(data), on_done, r));
  uint64_t n = r->count;
  free(r);
  return n;
}

TEST(channels_patterns_and_unsubscribe) {
  char *dir = tmpdir();
  sb_broker_t *b = open_broker(dir);
  REQUIRE(b);
  sb_pubsub_sub_t *a, *c;
  REQUIRE(sb_pubsub_open(b, 1 << 20, notify, NULL, &a) == 0);
  REQUIRE(sb_pubsub_open(b, 1 << 20, notify, NULL, &c) == 0);
  CHECK_EQ_INT(sb_pubsub_subscribe(a, "news.tech", false), 0);
  CHECK_EQ_INT(sb_pubsub_subscribe(c, "news.*", true), 0);
  CHECK_EQ_INT(sb_pubsub_subscribe(a, "", false), SB_EINVAL);
  CHECK_EQ_INT(pub(b, "news.tech", "hello"), 2);
  CHECK_EQ_INT(pub(b, "news.sport", "goal"), 1);
  CHECK_EQ_INT(pub(b, "weather", "rain"), 0);
  sb_pubsub_msg_t *m[8];
  size_t n = sb_pubsub_take(a, m, 8);
  CHECK_EQ_INT(n, 1);
  if (n == 1) {
    CHECK_EQ_STR(m[0]->channel, "news.tech");
    CHECK(m[0]->pattern == NULL);
    CHECK_MEM(m[0]->data, "hello", 5);
    free(m[0]);
  }
  n = sb_pubsub_take(c, m, 8);
  CHECK_EQ_INT(n, 2);
  for (size_t i = 0; i < n; i++) {
    CHECK_EQ_STR(m[i]->pattern, "news.*");
    free(m[i]);
  }
  CHECK_EQ_INT(sb_pubsub_unsubscribe(c, NULL, true), 0);
  CHECK_EQ_INT(pub(b, "news.tech", "again"), 1);
  sb_pubsub_stats_t st;
  sb_pubsub_stats(b, &st);
  CHECK_EQ_INT(st.channels, 1);
  CHECK_EQ_INT(st.patterns, 0);
  CHECK_EQ_INT(st.subscribers, 2);
  CHECK_EQ_INT(st.published, 4);
  CHECK_EQ_INT(st.delivered, 4);
  CHECK(atomic_load(&wakes) >= 2);
  sb_pubsub_close(a); /* one message left undelivered: freed by close */
  sb_pubsub_close(c);
  CHECK_EQ_INT(pub(b, "news.tech", "nobody"), 0);
  sb_broker_close(b);
  drop_dir(dir);
}

TEST(a_slow_subscriber_is_dropped) {
  char *dir = tmpdir();
  sb_broker_t *b = open_broker(dir);
  REQUIRE(b);
  sb_pubsub_sub_t *slow, *fast;
  REQUIRE(sb_pubsub_open(b, 1024, notify, NULL, &slow) == 0);
  REQUIRE(sb_pubsub_open(b, 1 << 20, notify, NULL, &fast) == 0);
  CHECK_EQ_INT(sb_pubsub_subscribe(slow, "firehose", false), 0);
  CHECK_EQ_INT(sb_pubsub_subscribe(fast, "firehose", false), 0);
  char data[200];
  memset(data, 'x', sizeof data - 1);
  data[sizeof data - 1] = 0;
  for (int i = 0; i < 10; i++)
    pub(b, "firehose", data);
  CHECK(sb_pubsub_dropped(slow));
  CHECK(!sb_pubsub_dropped(fast));
  sb_pubsub_msg_t *m[16];
  CHECK_EQ_INT(sb_pubsub_take(slow, m, 16), 0); /* its buffer was discarded */
  size_t n = sb_pubsub_take(fast, m, 16);
  CHECK_EQ_INT(n, 10);
  for (size_t i = 0; i < n; i++)
    free(m[i]);
  CHECK_EQ_INT(pub(b, "firehose", "x"), 1); /* the dropped one is unsubscribed */
  CHECK_EQ_INT(sb_pubsub_subscribe(slow, "other", false), SB_ESTATE);
  sb_pubsub_stats_t st;
  sb_pubsub_stats(b, &st);
  CHECK_EQ_INT(st.dropped, 1);
  n = sb_pubsub_take(fast, m, 16);
  for (size_t i = 0; i < n; i++)
    free(m[i]);
  sb_pubsub_close(slow);
  sb_pubsub_close(fast);
  sb_broker_close(b);
  drop_dir(dir);
}
