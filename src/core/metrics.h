/*
 * Metrics primitives: counters that one thread writes and any thread may read, and a
 * latency histogram, rendered in Prometheus text format.
 *
 * A counter has exactly one writer (the loop that owns the object being counted), so an
 * increment is a relaxed load and a relaxed store: no locked instruction on the hot path,
 * and readers on other threads still see whole 64-bit values.
 */
#ifndef SB_CORE_METRICS_H
#define SB_CORE_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/buf.h"

typedef _Atomic uint64_t sb_counter_t;

/* Adds n; only the counter's single writer thread may call this. */
static inline void sb_counter_add(sb_counter_t *c, uint64_t n) {
  atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n, memory_order_relaxed);
}
static inline uint64_t sb_counter_get(sb_counter_t *c) {
  return atomic_load_explicit(c, memory_order_relaxed);
}

/* Upper bounds of the latency buckets, in microseconds; a final +Inf bucket follows. */
#define SB_HIST_BUCKETS 14
extern const uint64_t sb_hist_bounds_us[SB_HIST_BUCKETS];

typedef struct sb_hist {
  sb_counter_t buckets[SB_HIST_BUCKETS + 1]; /* non-cumulative counts; last is +Inf */
  sb_counter_t sum_us;                       /* sum of observations, microseconds */
  sb_counter_t count;                        /* number of observations */
} sb_hist_t;

/* Records one observation of us microseconds (single writer). */
void sb_hist_observe(sb_hist_t *h, uint64_t us);

/* Appends a Prometheus histogram named name (seconds) summed over n histograms. labels is
 * "" or 'key="v"' without braces. Returns 0 or SB_ENOMEM. */
int sb_hist_render(sb_buf_t *out, const char *name, const char *labels, sb_hist_t *const *h,
                   unsigned n);

#endif
