/* engine/metrics.c — see metrics.h. */
#include "engine/metrics.h"
#include "engine/dhcp_service.h"
#include "engine/http_service.h"
#include "engine/lease_table.h"
#include "engine/tftp_service.h"
#include "engine/tracker.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    H_REQUESTS, H_BYTES, H_ACCEPTED, H_REFUSED, H_OPEN, H_4XX, H_5XX, H_TIMEOUTS, H_TRAVERSAL,
    H_STREAMS_OPEN, H_STREAMS_DROPPED, H_COUNT
};
enum {
    T_REQUESTS, T_TRANSFERS, T_ACTIVE, T_WAITING, T_DONE, T_DONE_UNACKED, T_ABORTED, T_TIMEOUTS, T_FAILED,
    T_SUPERSEDED, T_BYTES, T_RETRANSMITS, T_MALFORMED, T_STRAY, T_NOT_FOUND, T_ACCESS, T_TRAVERSAL, T_ILLEGAL,
    T_UNKNOWN_TID, T_BUSY, T_OTHER, T_VFILES, T_COUNT
};

struct worker_copy {
    _Atomic uint64_t http[H_COUNT];
    _Atomic uint64_t tftp[T_COUNT];
    _Atomic bool has_tftp;
};

struct metrics {
    unsigned nworkers;
    struct tracker *tracker;
    struct dhcp_shared *dhcp;
    struct worker_copy *w;
};

struct metrics *metrics_new(unsigned nworkers, struct tracker *tracker, struct dhcp_shared *dhcp)
{
    struct metrics *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->nworkers = nworkers ? nworkers : 1;
    m->w = calloc(m->nworkers, sizeof(*m->w));
    if (!m->w) {
        free(m);
        return NULL;
    }
    m->tracker = tracker;
    m->dhcp = dhcp;
    return m;
}

void metrics_free(struct metrics *m)
{
    if (!m)
        return;
    free(m->w);
    free(m);
}

void metrics_publish_http(struct metrics *m, unsigned worker, const struct http_service_stats *st)
{
    if (worker >= m->nworkers)
        return;
    const uint64_t v[H_COUNT] = {
        [H_REQUESTS] = st->requests,   [H_BYTES] = st->bytes,         [H_ACCEPTED] = st->conns_accepted,
        [H_REFUSED] = st->conns_refused, [H_OPEN] = st->conns_open,   [H_4XX] = st->errors_4xx,
        [H_5XX] = st->errors_5xx,      [H_TIMEOUTS] = st->timeouts,   [H_TRAVERSAL] = st->traversal,
        [H_STREAMS_OPEN] = st->streams_open, [H_STREAMS_DROPPED] = st->streams_dropped,
    };
    for (int i = 0; i < H_COUNT; i++)
        atomic_store_explicit(&m->w[worker].http[i], v[i], memory_order_relaxed);
}

void metrics_publish_tftp(struct metrics *m, unsigned worker, const struct tftp_service_stats *st)
{
    if (worker >= m->nworkers)
        return;
    const uint64_t v[T_COUNT] = {
        [T_REQUESTS] = st->requests,     [T_TRANSFERS] = st->transfers,     [T_ACTIVE] = st->active,
        [T_WAITING] = st->waiting,       [T_DONE] = st->done,               [T_DONE_UNACKED] = st->done_unacked,
        [T_ABORTED] = st->aborted,       [T_TIMEOUTS] = st->timeouts,       [T_FAILED] = st->failed,
        [T_SUPERSEDED] = st->superseded, [T_BYTES] = st->bytes,             [T_RETRANSMITS] = st->retransmits,
        [T_MALFORMED] = st->malformed,   [T_STRAY] = st->stray,             [T_NOT_FOUND] = st->err_not_found,
        [T_ACCESS] = st->err_access,     [T_TRAVERSAL] = st->err_traversal, [T_ILLEGAL] = st->err_illegal,
        [T_UNKNOWN_TID] = st->err_unknown_tid, [T_BUSY] = st->err_busy,     [T_OTHER] = st->err_other,
        [T_VFILES] = st->vfiles,
    };
    for (int i = 0; i < T_COUNT; i++)
        atomic_store_explicit(&m->w[worker].tftp[i], v[i], memory_order_relaxed);
    atomic_store_explicit(&m->w[worker].has_tftp, true, memory_order_relaxed);
}

/* ---- text ---------------------------------------------------------------------- */

struct out {
    char *p;
    size_t len, cap;
    bool oom;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
    if (o->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->oom = true;
            return;
        }
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = (o->cap + (size_t)n + 1) * 2;
        char *p = realloc(o->p, cap);
        if (!p) {
            o->oom = true;
            return;
        }
        o->p = p;
        o->cap = cap;
    }
}

size_t metrics_escape_label(const char *in, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *s = in; *s; s++) {
        const char *rep = *s == '\\' ? "\\\\" : *s == '"' ? "\\\"" : *s == '\n' ? "\\n" : NULL;
        size_t k = rep ? 2 : 1;
        if (cap && n + k < cap)
            memcpy(out + n, rep ? rep : s, k);
        n += k;
    }
    if (cap)
        out[n < cap ? n : cap - 1] = 0;
    return n;
}

static void family(struct out *o, const char *name, const char *type, const char *help)
{
    put(o, "# HELP bootstorm_%s %s\n# TYPE bootstorm_%s %s\n", name, help, name, type);
}

static void sample(struct out *o, const char *name, const char *lkey, const char *lval, uint64_t v)
{
    if (lkey) {
        char esc[256];
        metrics_escape_label(lval, esc, sizeof(esc));
        put(o, "bootstorm_%s{%s=\"%s\"} %" PRIu64 "\n", name, lkey, esc, v);
    } else {
        put(o, "bootstorm_%s %" PRIu64 "\n", name, v);
    }
}

static void one(struct out *o, const char *name, const char *type, const char *help, uint64_t v)
{
    family(o, name, type, help);
    sample(o, name, NULL, NULL, v);
}

static void histogram(struct out *o, const char *name, const char *lkey, const char *lval,
                      const struct tracker_hist *h)
{
    char lab[128] = "";
    if (lkey) {
        char esc[96];
        metrics_escape_label(lval, esc, sizeof(esc));
        snprintf(lab, sizeof(lab), "%s=\"%s\",", lkey, esc);
    }
    uint64_t cum = 0;
    for (int b = 0; b < TRACKER_HIST_BUCKETS; b++) {
        cum += h->bucket[b];
        put(o, "bootstorm_%s_bucket{%sle=\"%g\"} %" PRIu64 "\n", name, lab, tracker_hist_bounds[b], cum);
    }
    cum += h->bucket[TRACKER_HIST_BUCKETS];
    put(o, "bootstorm_%s_bucket{%sle=\"+Inf\"} %" PRIu64 "\n", name, lab, cum);
    if (lkey) {
        lab[strlen(lab) - 1] = 0; /* no trailing comma */
        put(o, "bootstorm_%s_sum{%s} %.3f\n", name, lab, (double)h->sum_ms / 1000.0);
        put(o, "bootstorm_%s_count{%s} %" PRIu64 "\n", name, lab, cum);
    } else {
        put(o, "bootstorm_%s_sum %.3f\n", name, (double)h->sum_ms / 1000.0);
        put(o, "bootstorm_%s_count %" PRIu64 "\n", name, cum);
    }
}

char *metrics_render(struct metrics *m, size_t *len)
{
    struct out o = {0};
    uint64_t hs[H_COUNT] = {0}, ts[T_COUNT] = {0};
    bool tftp = false;
    for (unsigned w = 0; w < m->nworkers; w++) {
        for (int i = 0; i < H_COUNT; i++)
            hs[i] += atomic_load_explicit(&m->w[w].http[i], memory_order_relaxed);
        if (atomic_load_explicit(&m->w[w].has_tftp, memory_order_relaxed)) {
            tftp = true;
            for (int i = 0; i < T_COUNT; i++)
                ts[i] += atomic_load_explicit(&m->w[w].tftp[i], memory_order_relaxed);
        }
    }
    one(&o, "http_requests_total", "counter", "HTTP requests answered.", hs[H_REQUESTS]);
    one(&o, "http_bytes_total", "counter", "HTTP response body bytes sent.", hs[H_BYTES]);
    one(&o, "http_connections_accepted_total", "counter", "HTTP connections accepted.", hs[H_ACCEPTED]);
    one(&o, "http_connections_refused_total", "counter", "HTTP connections refused with 503 (max-conns).",
        hs[H_REFUSED]);
    one(&o, "http_connections_open", "gauge", "HTTP connections open now.", hs[H_OPEN]);
    family(&o, "http_errors_total", "counter", "HTTP errors by kind.");
    sample(&o, "http_errors_total", "kind", "4xx", hs[H_4XX]);
    sample(&o, "http_errors_total", "kind", "5xx", hs[H_5XX]);
    sample(&o, "http_errors_total", "kind", "timeout", hs[H_TIMEOUTS]);
    sample(&o, "http_errors_total", "kind", "traversal", hs[H_TRAVERSAL]);
    one(&o, "http_streams_open", "gauge", "Server-Sent Events streams open now.", hs[H_STREAMS_OPEN]);
    one(&o, "http_streams_dropped_total", "counter", "Event streams dropped because the reader was too slow.",
        hs[H_STREAMS_DROPPED]);

    if (tftp) {
        one(&o, "tftp_requests_total", "counter", "TFTP read and write requests received.", ts[T_REQUESTS]);
        one(&o, "tftp_transfers_total", "counter", "TFTP transfers started.", ts[T_TRANSFERS]);
        one(&o, "tftp_transfers_active", "gauge", "TFTP transfers running now.", ts[T_ACTIVE]);
        one(&o, "tftp_transfers_waiting", "gauge", "TFTP requests waiting for a free slot.", ts[T_WAITING]);
        family(&o, "tftp_transfers_ended_total", "counter", "TFTP transfers ended, by outcome.");
        static const struct { const char *n; int i; } ends[] = {
            {"done", T_DONE},       {"done_unacked", T_DONE_UNACKED}, {"aborted", T_ABORTED},
            {"timeout", T_TIMEOUTS}, {"failed", T_FAILED},            {"superseded", T_SUPERSEDED},
        };
        for (size_t i = 0; i < sizeof(ends) / sizeof(ends[0]); i++)
            sample(&o, "tftp_transfers_ended_total", "outcome", ends[i].n, ts[ends[i].i]);
        one(&o, "tftp_bytes_total", "counter", "TFTP file bytes delivered.", ts[T_BYTES]);
        one(&o, "tftp_retransmits_total", "counter", "TFTP DATA blocks sent again.", ts[T_RETRANSMITS]);
        one(&o, "tftp_virtual_files_total", "counter", "TFTP reads answered from generated files.", ts[T_VFILES]);
        family(&o, "tftp_errors_total", "counter", "TFTP errors by kind.");
        static const struct { const char *n; int i; } errs[] = {
            {"malformed", T_MALFORMED}, {"stray", T_STRAY},     {"not_found", T_NOT_FOUND},
            {"access", T_ACCESS},       {"traversal", T_TRAVERSAL}, {"illegal", T_ILLEGAL},
            {"unknown_tid", T_UNKNOWN_TID}, {"busy", T_BUSY},   {"other", T_OTHER},
        };
        for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++)
            sample(&o, "tftp_errors_total", "kind", errs[i].n, ts[errs[i].i]);
    }

    if (m->dhcp) {
        struct dhcp_stats ds;
        dhcp_shared_get_stats(m->dhcp, &ds);
        family(&o, "dhcp_messages_total", "counter", "DHCP messages received, replies sent and outcomes, by kind.");
        for (int i = 0; i < DHCP_STAT_COUNT; i++)
            sample(&o, "dhcp_messages_total", "kind", dhcp_stat_name((enum dhcp_stat)i), ds.v[i]);
        struct lease_table *lt = dhcp_shared_table(m->dhcp);
        one(&o, "dhcp_leases", "gauge", "Leases in the lease table (offered, bound, declined).",
            lt ? (uint64_t)lease_table_count(lt) : 0);
    }

    if (m->tracker) {
        struct tracker_counts c;
        tracker_counts(m->tracker, &c);
        family(&o, "hosts", "gauge", "Hosts by the furthest stage of their install.");
        for (int s = 0; s < TRACKER_STAGE_COUNT; s++)
            sample(&o, "hosts", "stage", tracker_stage_name((enum tracker_stage)s), c.stage[s]);
        one(&o, "hosts_stalled", "gauge", "Hosts without progress for --stall-after.", c.stalled);
        one(&o, "hosts_failed", "gauge", "Hosts whose last event was a failure.", c.failed);
        struct tracker_stats st;
        tracker_get_stats(m->tracker, &st);
        family(&o, "host_failures_total", "counter", "Failures recorded against hosts, by kind.");
        for (int k = 0; k < TRACKER_FAIL_COUNT; k++)
            sample(&o, "host_failures_total", "kind", tracker_fail_name((enum tracker_fail_kind)k), st.failures[k]);
        family(&o, "stage_duration_seconds", "histogram", "Time from the previous stage to this one.");
        for (unsigned s = 1; s < TRACKER_STAGE_COUNT; s++) {
            struct tracker_hist h;
            tracker_histogram(m->tracker, s, &h);
            histogram(&o, "stage_duration_seconds", "stage", tracker_stage_name((enum tracker_stage)s), &h);
        }
        struct tracker_hist whole;
        tracker_histogram(m->tracker, TRACKER_STAGE_COUNT, &whole);
        family(&o, "install_duration_seconds", "histogram", "Time from a host's first stage to installed.");
        histogram(&o, "install_duration_seconds", NULL, NULL, &whole);
        one(&o, "tracker_events_total", "counter", "Host state changes published.", st.events);
        family(&o, "tracker_untracked_total", "counter", "Events not tracked, by reason.");
        sample(&o, "tracker_untracked_total", "reason", "table_full", st.full);
        sample(&o, "tracker_untracked_total", "reason", "no_mac", st.no_mac);
        family(&o, "host_probes_total", "counter",
               "Normal firmware probes, not failures: TFTP size probes (ERROR after the OACK), "
               "optional files not found.");
        sample(&o, "host_probes_total", "kind", "tftp_size_probe", st.tftp_size_probes);
        sample(&o, "host_probes_total", "kind", "tftp_optional_missing", st.tftp_optional_missing);
        family(&o, "tracker_persist_total", "counter", "Host state writes: journal appends, snapshots, errors.");
        sample(&o, "tracker_persist_total", "kind", "journal", st.journal_writes);
        sample(&o, "tracker_persist_total", "kind", "snapshot", st.snapshots);
        sample(&o, "tracker_persist_total", "kind", "journal_error", st.journal_errors);
        sample(&o, "tracker_persist_total", "kind", "snapshot_error", st.snapshot_errors);
    }
    if (o.oom) {
        free(o.p);
        return NULL;
    }
    if (!o.p) { /* cannot happen: there is always a family */
        o.p = strdup("");
    }
    *len = o.len;
    return o.p;
}
