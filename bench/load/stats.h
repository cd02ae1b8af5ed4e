/* bench/load/stats.h — latency histograms and number formatting for reports.
 *
 * A log-linear histogram (64 sub-buckets per power of two: under 1.6% error)
 * over nanoseconds, so millions of samples cost a fixed 15 KiB and
 * percentiles are read without sorting.  Exact min, max and sum are kept. */
#ifndef BOOTSTORM_LOAD_STATS_H
#define BOOTSTORM_LOAD_STATS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define STATS_SUB_BITS 6
#define STATS_SUB (1u << STATS_SUB_BITS)
#define STATS_BUCKETS (2 * STATS_SUB + (64 - STATS_SUB_BITS - 1) * STATS_SUB)

struct stats_hist {
    uint64_t count, sum, min, max;
    uint32_t b[STATS_BUCKETS];
};

void stats_hist_init(struct stats_hist *h);
void stats_hist_add(struct stats_hist *h, uint64_t v);
void stats_hist_merge(struct stats_hist *into, const struct stats_hist *from);
/* The value below which a share p (0..1) of the samples lie (bucket upper
 * bound, clamped to [min, max]); 0 when empty. */
uint64_t stats_hist_pct(const struct stats_hist *h, double p);

/* "812us", "12.3ms", "4.21s" into out (at least 16 bytes); "-" for none. */
const char *stats_fmt_ns(char *out, size_t cap, uint64_t ns, int have);
/* Bytes over nanoseconds as MB/s (10^6 bytes); 0 when ns is 0. */
double stats_mbps(uint64_t bytes, uint64_t ns);

/* JSON string literal of s (quotes and escapes) on f; "null" for NULL. */
void stats_json_str(FILE *f, const char *s);

#endif
