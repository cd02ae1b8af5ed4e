/* bench/load/stats.c — see stats.h. */
#include "bench/load/stats.h"

#include <string.h>

void stats_hist_init(struct stats_hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

/* Values below 2*SUB map 1:1; above, the top SUB_BITS+1 bits pick the bucket. */
static unsigned bucket_of(uint64_t v)
{
    if (v < 2 * STATS_SUB)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - STATS_SUB_BITS;
    return 2 * STATS_SUB + (shift - 1) * STATS_SUB + (unsigned)((v >> shift) - STATS_SUB);
}

/* Largest value that falls in bucket i. */
static uint64_t bucket_top(unsigned i)
{
    if (i < 2 * STATS_SUB)
        return i;
    unsigned shift = (i - 2 * STATS_SUB) / STATS_SUB + 1;
    uint64_t base = (uint64_t)((i - 2 * STATS_SUB) % STATS_SUB + STATS_SUB);
    return ((base + 1) << shift) - 1;
}

void stats_hist_add(struct stats_hist *h, uint64_t v)
{
    h->count++;
    h->sum += v;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
    h->b[bucket_of(v)]++;
}

void stats_hist_merge(struct stats_hist *into, const struct stats_hist *from)
{
    if (!from->count)
        return;
    into->count += from->count;
    into->sum += from->sum;
    if (from->min < into->min)
        into->min = from->min;
    if (from->max > into->max)
        into->max = from->max;
    for (unsigned i = 0; i < STATS_BUCKETS; i++)
        into->b[i] += from->b[i];
}

uint64_t stats_hist_pct(const struct stats_hist *h, double p)
{
    if (!h->count)
        return 0;
    if (p >= 1.0)
        return h->max;
    uint64_t rank = (uint64_t)(p * (double)h->count);
    if (rank >= h->count)
        rank = h->count - 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < STATS_BUCKETS; i++) {
        seen += h->b[i];
        if (seen > rank) {
            uint64_t v = bucket_top(i);
            if (v > h->max)
                v = h->max;
            if (v < h->min)
                v = h->min;
            return v;
        }
    }
    return h->max;
}

const char *stats_fmt_ns(char *out, size_t cap, uint64_t ns, int have)
{
    if (!have)
        snprintf(out, cap, "-");
    else if (ns < 10000)
        snprintf(out, cap, "%lluus", (unsigned long long)((ns + 500) / 1000));
    else if (ns < 1000000)
        snprintf(out, cap, "%.0fus", (double)ns / 1e3);
    else if (ns < 100000000)
        snprintf(out, cap, "%.1fms", (double)ns / 1e6);
    else if (ns < 1000000000)
        snprintf(out, cap, "%.0fms", (double)ns / 1e6);
    else
        snprintf(out, cap, "%.2fs", (double)ns / 1e9);
    return out;
}

double stats_mbps(uint64_t bytes, uint64_t ns)
{
    return ns ? (double)bytes / 1e6 / ((double)ns / 1e9) : 0.0;
}

void stats_json_str(FILE *f, const char *s)
{
    if (!s) {
        fputs("null", f);
        return;
    }
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}
