/*
 * Tests of the metrics primitives (src/core/metrics.c): bucket selection of sb_hist_observe
 * at and around the bounds, and the exact Prometheus text of sb_hist_render, including the
 * cumulative buckets, +Inf, _sum and _count, label placement and summing several
 * histograms (one per worker).
 */
#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/metrics.h"
#include "sb_test.h"

/* Index of the single non-zero bucket of h, or -1 when none or several are non-zero. */
static int only_bucket(sb_hist_t *h) {
  int found = -1;
  for (int i = 0; i <= SB_HIST_BUCKETS; i++) {
    if (sb_counter_get(&h->buckets[i]) == 0) continue;
    if (found >= 0) return -1;
    found = i;
  }
  return found;
}

static int bucket_of(uint64_t us) {
  sb_hist_t h = {0};
  sb_hist_observe(&h, us);
  return only_bucket(&h);
}

TEST(hist_bounds_are_increasing) {
  int ok = 1;
  for (int i = 1; i < SB_HIST_BUCKETS; i++)
    ok &= sb_hist_bounds_us[i] > sb_hist_bounds_us[i - 1];
  CHECK(ok);
  CHECK_EQ_INT(sb_hist_bounds_us[0], 100);
  CHECK_EQ_INT(sb_hist_bounds_us[SB_HIST_BUCKETS - 1], 5000000);
}

TEST(hist_observe_picks_bucket_by_upper_bound) {
  /* Prometheus buckets are "less than or equal": a value equal to a bound belongs to it. */
  CHECK_EQ_INT(bucket_of(0), 0);
  CHECK_EQ_INT(bucket_of(100), 0);
  CHECK_EQ_INT(bucket_of(101), 1);
  CHECK_EQ_INT(bucket_of(250), 1);
  CHECK_EQ_INT(bucket_of(251), 2);
  CHECK_EQ_INT(bucket_of(1000000), 12);
  CHECK_EQ_INT(bucket_of(5000000), SB_HIST_BUCKETS - 1);
  CHECK_EQ_INT(bucket_of(5000001), SB_HIST_BUCKETS);
  CHECK_EQ_INT(bucket_of(UINT64_MAX / 2), SB_HIST_BUCKETS);
  int ok = 1;
  for (int i = 0; i < SB_HIST_BUCKETS; i++) {
    ok &= bucket_of(sb_hist_bounds_us[i]) == i;
    ok &= bucket_of(sb_hist_bounds_us[i] + 1) == i + 1;
  }
  CHECK(ok);
}

TEST(hist_observe_sum_and_count) {
  sb_hist_t h = {0};
  sb_hist_observe(&h, 50);
  sb_hist_observe(&h, 50);
  sb_hist_observe(&h, 7000);
  CHECK_EQ_INT(sb_counter_get(&h.count), 3);
  CHECK_EQ_INT(sb_counter_get(&h.sum_us), 7100);
  CHECK_EQ_INT(sb_counter_get(&h.buckets[0]), 2);
  CHECK_EQ_INT(sb_counter_get(&h.buckets[6]), 1);
}

/* The rendering of a histogram holding one observation of 150 us and one of 2 s, with the
 * given label prefix ("" or 'k="v",'). Buckets are cumulative. */
static void expected_render(char *out, size_t cap, const char *name, const char *lbl,
                            const char *lbl_only) {
  static const char *const le[SB_HIST_BUCKETS] = {"0.0001", "0.00025", "0.0005", "0.001", "0.0025",
                                                  "0.005",  "0.01",    "0.025",  "0.05",  "0.1",
                                                  "0.25",   "0.5",     "1",      "5"};
  static const int cum[SB_HIST_BUCKETS] = {0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2};
  size_t n = 0;
  for (int i = 0; i < SB_HIST_BUCKETS; i++)
    n +=
        (size_t)snprintf(out + n, cap - n, "%s_bucket{%sle=\"%s\"} %d\n", name, lbl, le[i], cum[i]);
  n += (size_t)snprintf(out + n, cap - n, "%s_bucket{%sle=\"+Inf\"} 2\n", name, lbl);
  n += (size_t)snprintf(out + n, cap - n, "%s_sum{%s} 2.000150\n", name, lbl_only);
  snprintf(out + n, cap - n, "%s_count{%s} 2\n", name, lbl_only);
}

TEST(hist_render_with_labels_exact) {
  sb_hist_t h = {0};
  sb_hist_observe(&h, 150);
  sb_hist_observe(&h, 2000000);
  sb_hist_t *hs[1] = {&h};
  sb_buf_t out = {0};
  CHECK_EQ_INT(sb_hist_render(&out, "sb_latency_seconds", "code=\"200\"", hs, 1), 0);
  REQUIRE(sb_buf_append(&out, "", 1) == 0); /* NUL-terminate for the string compare */
  char want[4096];
  expected_render(want, sizeof want, "sb_latency_seconds", "code=\"200\",", "code=\"200\"");
  CHECK_EQ_STR((const char *)sb_buf_head(&out), want);
  sb_buf_free(&out);
}

TEST(hist_render_without_labels) {
  sb_hist_t h = {0};
  sb_hist_observe(&h, 150);
  sb_hist_observe(&h, 2000000);
  sb_hist_t *hs[1] = {&h};
  sb_buf_t out = {0};
  CHECK_EQ_INT(sb_hist_render(&out, "x", "", hs, 1), 0);
  REQUIRE(sb_buf_append(&out, "", 1) == 0);
  const char *text = (const char *)sb_buf_head(&out);
  /* No stray comma before le when there are no labels. */
  CHECK(strstr(text, "x_bucket{le=\"0.0001\"} 0\n") == text);
  CHECK(strstr(text, "x_bucket{le=\"+Inf\"} 2\n") != NULL);
  CHECK(strstr(text, "{,") == NULL);
  /* _sum and _count carry no labels; "x_sum{}" and "x_sum" are both valid exposition. */
  CHECK(strstr(text, "\nx_sum{} 2.000150\n") || strstr(text, "\nx_sum 2.000150\n"));
  CHECK(strstr(text, "\nx_count{} 2\n") || strstr(text, "\nx_count 2\n"));
  sb_buf_free(&out);
}

TEST(hist_render_sums_histograms) {
  /* One histogram per worker; the exposition shows their sum. */
  sb_hist_t a = {0}, b = {0}, c = {0};
  sb_hist_observe(&a, 150);
  sb_hist_observe(&b, 2000000);
  sb_hist_t *hs[3] = {&a, &b, &c};
  sb_buf_t out = {0};
  CHECK_EQ_INT(sb_hist_render(&out, "m", "p=\"h2\"", hs, 3), 0);
  REQUIRE(sb_buf_append(&out, "", 1) == 0);
  char want[4096];
  expected_render(want, sizeof want, "m", "p=\"h2\",", "p=\"h2\"");
  CHECK_EQ_STR((const char *)sb_buf_head(&out), want);
  sb_buf_free(&out);
}

TEST(hist_render_empty_and_appends) {
  sb_hist_t h = {0};
  sb_hist_t *hs[1] = {&h};
  sb_buf_t out = {0};
  REQUIRE(sb_buf_append(&out, "# TYPE e histogram\n", 19) == 0);
  CHECK_EQ_INT(sb_hist_render(&out, "e", "", hs, 1), 0);
  REQUIRE(sb_buf_append(&out, "", 1) == 0);
  const char *text = (const char *)sb_buf_head(&out);
  /* Rendering appends after what the buffer already holds. */
  CHECK(strncmp(text, "# TYPE e histogram\ne_bucket{", 28) == 0);
  CHECK(strstr(text, "e_bucket{le=\"+Inf\"} 0\n") != NULL);
  CHECK(strstr(text, " 0.000000\n") != NULL);
  int lines = 0;
  for (const char *p = text; *p; p++)
    lines += *p == '\n';
  CHECK_EQ_INT(lines, 1 + SB_HIST_BUCKETS + 1 + 2);
  sb_buf_free(&out);
}
