#include "core/metrics.h"

const uint64_t sb_hist_bounds_us[SB_HIST_BUCKETS] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 5000000};

void sb_hist_observe(sb_hist_t *h, uint64_t us) {
  unsigned i = 0;
  while (i < SB_HIST_BUCKETS && us > sb_hist_bounds_us[i])
    i++;
  sb_counter_add(&h->buckets[i], 1);
  sb_counter_add(&h->sum_us, us);
  sb_counter_add(&h->count, 1);
}

int sb_hist_render(sb_buf_t *out, const char *name, const char *labels, sb_hist_t *const *h,
                   unsigned n) {
  const char *sep = labels[0] ? "," : "";
  uint64_t cum = 0, sum = 0, count = 0;
  int rc = 0;
  for (unsigned b = 0; b <= SB_HIST_BUCKETS && !rc; b++) {
    for (unsigned i = 0; i < n; i++)
      cum += sb_counter_get(&h[i]->buckets[b]);
    if (b < SB_HIST_BUCKETS)
      rc = sb_buf_appendf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep,
                          (double)sb_hist_bounds_us[b] / 1e6, (unsigned long long)cum);
    else
      rc = sb_buf_appendf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
                          (unsigned long long)cum);
  }
  for (unsigned i = 0; i < n; i++) {
    sum += sb_counter_get(&h[i]->sum_us);
    count += sb_counter_get(&h[i]->count);
  }
  const char *lo = labels[0] ? "{" : "", *lc = labels[0] ? "}" : "";
  if (!rc) rc = sb_buf_appendf(out, "%s_sum%s%s%s %.6f\n", name, lo, labels, lc, (double)sum / 1e6);
  if (!rc)
    rc = sb_buf_appendf(out, "%s_count%s%s%s %llu\n", name, lo, labels, lc,
                        (unsigned long long)count);
  return rc;
}
