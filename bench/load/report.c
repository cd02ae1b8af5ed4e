/* bench/load/report.c — see report.h. */
#include "bench/load/report.h"

#include "bench/load/stats.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const NAMES[REPORT_STAGES] = {"dhcp", "tftp", "kernel", "initrd", "dhcp2",
                                                 "ks",   "stage2", "rpms", "callback"};
static const char *const COLORS[REPORT_STAGES] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                                  "#8c564b", "#e377c2", "#17becf", "#bcbd22"};

const char *report_stage_name(enum report_stage s) { return s < REPORT_STAGES ? NAMES[s] : "?"; }

int report_stage_by_name(const char *name)
{
    for (int i = 0; i < REPORT_STAGES; i++)
        if (!strcmp(name, NAMES[i]))
            return i;
    return -1;
}

const char *report_st_state_name(enum report_st_state s)
{
    switch (s) {
    case REPORT_ST_RUNNING: return "running";
    case REPORT_ST_OK: return "ok";
    case REPORT_ST_FAILED: return "failed";
    case REPORT_ST_SKIPPED: return "skipped";
    default: return "none";
    }
}

void report_note(struct report_notes *notes, int stage, const char *text)
{
    for (unsigned i = 0; i < notes->count; i++)
        if (notes->n[i].stage == stage && !strcmp(notes->n[i].text, text)) {
            notes->n[i].count++;
            return;
        }
    if (notes->count == REPORT_NOTES_MAX)
        return;
    notes->n[notes->count].stage = stage;
    snprintf(notes->n[notes->count].text, sizeof(notes->n[0].text), "%s", text);
    notes->n[notes->count].count = 1;
    notes->count++;
}

/* ---- per-stage sums ---- */

struct ssum {
    unsigned ok, failed, skipped, running;
    struct stats_hist h; /* durations of the successful runs */
    uint64_t bytes, first_start, last_end;
    uint64_t retries, timeouts, requests;
};

static struct ssum *sums(const struct report_run *run, const struct report_machine *ms)
{
    struct ssum *s = calloc(REPORT_STAGES, sizeof(*s));
    if (!s)
        return NULL;
    for (int k = 0; k < REPORT_STAGES; k++) {
        stats_hist_init(&s[k].h);
        s[k].first_start = UINT64_MAX;
    }
    for (unsigned i = 0; i < run->machines; i++)
        for (int k = 0; k < REPORT_STAGES; k++) {
            const struct report_mstage *st = &ms[i].st[k];
            struct ssum *x = &s[k];
            if (st->state == REPORT_ST_NONE)
                continue;
            x->bytes += st->bytes;
            x->retries += st->retries;
            x->timeouts += st->timeouts;
            x->requests += st->requests;
            if (st->start_ns < x->first_start)
                x->first_start = st->start_ns;
            uint64_t end = st->state == REPORT_ST_RUNNING ? run->t_end : st->end_ns;
            if (end > x->last_end)
                x->last_end = end;
            switch (st->state) {
            case REPORT_ST_OK:
                x->ok++;
                stats_hist_add(&x->h, st->end_ns - st->start_ns);
                break;
            case REPORT_ST_FAILED: x->failed++; break;
            case REPORT_ST_SKIPPED: x->skipped++; break;
            case REPORT_ST_RUNNING: x->running++; break;
            }
        }
    return s;
}

static uint64_t last_done(const struct report_run *run, const struct report_machine *ms)
{
    uint64_t t = 0;
    for (unsigned i = 0; i < run->machines; i++)
        if (ms[i].end_ns > t)
            t = ms[i].end_ns;
    return t > run->t0 ? t - run->t0 : 0;
}

/* A machine's failure reason with its own MAC, address and hostname replaced
 * by placeholders, so that 200 machines failing alike group as one line. */
static void normalize(const struct report_machine *m, char *out, size_t cap)
{
    char macd[18], ip[16] = "", host[16];
    snprintf(macd, sizeof(macd), "%s", m->mac);
    for (char *p = macd; *p; p++)
        if (*p == ':')
            *p = '-';
    if (m->ip)
        inet_ntop(AF_INET, &m->ip, ip, sizeof(ip));
    snprintf(host, sizeof(host), "node%04u", m->idx);
    const char *keys[] = {m->mac, macd, ip, host}, *ph[] = {"{mac}", "{mac-}", "{ip}", "{hostname}"};
    size_t k = 0;
    for (const char *s = m->reason; *s && k + 1 < cap;) {
        bool hit = false;
        for (int i = 0; i < 4; i++) {
            size_t kl = strlen(keys[i]);
            /* an address must not match inside a longer number (127.77.1.1 in 127.77.1.12) */
            if (kl && !strncmp(s, keys[i], kl) && !(i == 2 && (s[kl] >= '0' && s[kl] <= '9'))) {
                size_t pl = strlen(ph[i]);
                if (k + pl >= cap)
                    pl = cap - 1 - k;
                memcpy(out + k, ph[i], pl);
                k += pl;
                s += kl;
                hit = true;
                break;
            }
        }
        if (!hit)
            out[k++] = *s++;
    }
    out[k] = 0;
}

/* Failures grouped by (stage, normalized reason), most frequent first. */
struct fgroup {
    int stage;
    char reason[200];
    unsigned count;
};

static int fg_cmp(const void *a, const void *b)
{
    const struct fgroup *x = a, *y = b;
    return x->count != y->count ? (x->count < y->count ? 1 : -1) : x->stage - y->stage;
}

static unsigned failure_groups(const struct report_run *run, const struct report_machine *ms, struct fgroup **out)
{
    struct fgroup *g = calloc(run->machines ? run->machines : 1, sizeof(*g));
    unsigned n = 0;
    if (!g) {
        *out = NULL;
        return 0;
    }
    for (unsigned i = 0; i < run->machines; i++) {
        if (ms[i].failed_stage < 0)
            continue;
        char norm[200];
        normalize(&ms[i], norm, sizeof(norm));
        unsigned k = 0;
        for (; k < n; k++)
            if (g[k].stage == ms[i].failed_stage && !strcmp(g[k].reason, norm))
                break;
        if (k == n) {
            g[n].stage = ms[i].failed_stage;
            memcpy(g[n].reason, norm, sizeof(norm));
            n++;
        }
        g[k].count++;
    }
    qsort(g, n, sizeof(*g), fg_cmp);
    *out = g;
    return n;
}

static void human_bytes(uint64_t b, char *out, size_t cap)
{
    if (b >= 10ull * 1000 * 1000 * 1000)
        snprintf(out, cap, "%.1f GB", (double)b / 1e9);
    else if (b >= 10ull * 1000 * 1000)
        snprintf(out, cap, "%.0f MB", (double)b / 1e6);
    else if (b >= 10000)
        snprintf(out, cap, "%.0f kB", (double)b / 1e3);
    else
        snprintf(out, cap, "%llu B", (unsigned long long)b);
}

void report_storm_text(FILE *f, const struct report_run *run, const struct report_machine *ms,
                       const struct report_notes *notes)
{
    struct ssum *s = sums(run, ms);
    if (!s)
        return;
    fprintf(f, "\nbootstorm-load storm: %u machines (%s)\n", run->machines, run->settings);
    fprintf(f, "%-9s %6s %6s %5s %8s %8s %8s %8s %9s %9s %8s %8s\n", "stage", "ok", "failed", "skip", "p50", "p95",
            "p99", "max", "MB/s", "bytes", "retries", "timeouts");
    uint64_t total = 0;
    for (int k = 0; k < REPORT_STAGES; k++) {
        if (!(run->stages & (1u << k)))
            continue;
        struct ssum *x = &s[k];
        char p50[16], p95[16], p99[16], mx[16], by[16];
        int have = x->ok > 0;
        uint64_t span = x->last_end > x->first_start && x->first_start != UINT64_MAX ? x->last_end - x->first_start : 0;
        human_bytes(x->bytes, by, sizeof(by));
        fprintf(f, "%-9s %6u %6u %5u %8s %8s %8s %8s %9.1f %9s %8llu %8llu\n", NAMES[k], x->ok, x->failed, x->skipped,
                stats_fmt_ns(p50, sizeof(p50), stats_hist_pct(&x->h, 0.50), have),
                stats_fmt_ns(p95, sizeof(p95), stats_hist_pct(&x->h, 0.95), have),
                stats_fmt_ns(p99, sizeof(p99), stats_hist_pct(&x->h, 0.99), have),
                stats_fmt_ns(mx, sizeof(mx), x->h.max, have), stats_mbps(x->bytes, span), by,
                (unsigned long long)x->retries, (unsigned long long)x->timeouts);
        total += x->bytes;
    }
    char tb[16];
    human_bytes(total, tb, sizeof(tb));
    uint64_t ttl = last_done(run, ms);
    fprintf(f, "machines: %u booted, %u failed", run->booted, run->failed);
    if (run->not_started)
        fprintf(f, ", %u not finished", run->not_started);
    fprintf(f, "; time to last machine done %.2f s; %s received, %.1f MB/s overall%s\n", (double)ttl / 1e9, tb,
            stats_mbps(total, ttl), run->interrupted ? " (INTERRUPTED)" : "");
    fprintf(f, "bootstorm-load itself: %.2f s of CPU (%.1f ms per machine, %.2f s per GB received)\n",
            run->client_cpu_s, run->machines ? run->client_cpu_s * 1e3 / run->machines : 0.0,
            total ? run->client_cpu_s / ((double)total / 1e9) : 0.0);
    struct fgroup *g;
    unsigned ng = failure_groups(run, ms, &g);
    if (ng) {
        fprintf(f, "failures (stage: reason, machines):\n");
        for (unsigned i = 0; i < ng && i < 8; i++)
            fprintf(f, "  %s: %s  x%u\n", NAMES[g[i].stage], g[i].reason, g[i].count);
        if (ng > 8)
            fprintf(f, "  ... %u more distinct reasons (--json/--csv list every machine)\n", ng - 8);
    }
    free(g);
    if (notes && notes->count) {
        fprintf(f, "notes:\n");
        for (unsigned i = 0; i < notes->count; i++)
            fprintf(f, "  %s: %s  x%llu\n", notes->n[i].stage >= 0 ? NAMES[notes->n[i].stage] : "-", notes->n[i].text,
                    (unsigned long long)notes->n[i].count);
    }
    free(s);
}

/* ---- files ---- */

static double ms_of(const struct report_run *run, uint64_t t) { return t ? (double)(t - run->t0) / 1e6 : 0.0; }

static bool write_json(const char *path, const struct report_run *run, const struct report_machine *ms,
                       const struct report_notes *notes)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return false;
    struct ssum *s = sums(run, ms);
    fprintf(f, "{\"mode\":\"storm\",\"machines\":%u,\"booted\":%u,\"failed\":%u,\"not_finished\":%u,", run->machines,
            run->booted, run->failed, run->not_started);
    fprintf(f, "\"interrupted\":%s,\"time_to_last_done_s\":%.3f,\"client_cpu_s\":%.3f,\"settings\":",
            run->interrupted ? "true" : "false", (double)last_done(run, ms) / 1e9, run->client_cpu_s);
    stats_json_str(f, run->settings);
    fprintf(f, ",\"stages\":{");
    bool first = true;
    for (int k = 0; s && k < REPORT_STAGES; k++) {
        if (!(run->stages & (1u << k)))
            continue;
        struct ssum *x = &s[k];
        uint64_t span = x->last_end > x->first_start && x->first_start != UINT64_MAX ? x->last_end - x->first_start : 0;
        fprintf(f,
                "%s\"%s\":{\"ok\":%u,\"failed\":%u,\"skipped\":%u,\"p50_ms\":%.3f,\"p95_ms\":%.3f,\"p99_ms\":%.3f,"
                "\"max_ms\":%.3f,\"mbps\":%.2f,\"bytes\":%llu,\"requests\":%llu,\"retries\":%llu,\"timeouts\":%llu}",
                first ? "" : ",", NAMES[k], x->ok, x->failed, x->skipped, (double)stats_hist_pct(&x->h, 0.5) / 1e6,
                (double)stats_hist_pct(&x->h, 0.95) / 1e6, (double)stats_hist_pct(&x->h, 0.99) / 1e6,
                (double)x->h.max / 1e6, stats_mbps(x->bytes, span), (unsigned long long)x->bytes,
                (unsigned long long)x->requests, (unsigned long long)x->retries, (unsigned long long)x->timeouts);
        first = false;
    }
    free(s);
    fprintf(f, "},\"failures\":[");
    struct fgroup *g;
    unsigned ng = failure_groups(run, ms, &g);
    for (unsigned i = 0; i < ng; i++) {
        fprintf(f, "%s{\"stage\":\"%s\",\"count\":%u,\"reason\":", i ? "," : "", NAMES[g[i].stage], g[i].count);
        stats_json_str(f, g[i].reason);
        fputc('}', f);
    }
    free(g);
    fprintf(f, "],\"notes\":[");
    for (unsigned i = 0; notes && i < notes->count; i++) {
        fprintf(f, "%s{\"stage\":", i ? "," : "");
        stats_json_str(f, notes->n[i].stage >= 0 ? NAMES[notes->n[i].stage] : NULL);
        fprintf(f, ",\"count\":%llu,\"text\":", (unsigned long long)notes->n[i].count);
        stats_json_str(f, notes->n[i].text);
        fputc('}', f);
    }
    fprintf(f, "],\"timeline\":[\n");
    for (unsigned i = 0; i < run->machines; i++) {
        const struct report_machine *m = &ms[i];
        char ip[16] = "";
        if (m->ip)
            inet_ntop(AF_INET, &m->ip, ip, sizeof(ip));
        fprintf(f, "{\"idx\":%u,\"mac\":\"%s\",\"ip\":\"%s\",\"status\":\"%s\",\"failed_stage\":", m->idx, m->mac, ip,
                m->booted ? "booted" : m->failed_stage >= 0 ? "failed" : "unfinished");
        stats_json_str(f, m->failed_stage >= 0 ? NAMES[m->failed_stage] : NULL);
        fprintf(f, ",\"reason\":");
        stats_json_str(f, m->failed_stage >= 0 ? m->reason : NULL);
        fprintf(f, ",\"start_ms\":%.3f,\"end_ms\":%.3f,\"stages\":{", ms_of(run, m->start_ns), ms_of(run, m->end_ns));
        bool f1 = true;
        for (int k = 0; k < REPORT_STAGES; k++) {
            const struct report_mstage *st = &m->st[k];
            if (!(run->stages & (1u << k)) || st->state == REPORT_ST_NONE)
                continue;
            fprintf(f,
                    "%s\"%s\":{\"state\":\"%s\",\"start_ms\":%.3f,\"end_ms\":%.3f,\"bytes\":%llu,\"requests\":%u,"
                    "\"retries\":%u,\"timeouts\":%u}",
                    f1 ? "" : ",", NAMES[k], report_st_state_name(st->state), ms_of(run, st->start_ns),
                    ms_of(run, st->end_ns), (unsigned long long)st->bytes, st->requests, st->retries, st->timeouts);
            f1 = false;
        }
        fprintf(f, "}}%s\n", i + 1 < run->machines ? "," : "");
    }
    fprintf(f, "]}\n");
    return fclose(f) == 0;
}

static void csv_field(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static bool write_csv(const char *path, const struct report_run *run, const struct report_machine *ms)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return false;
    fprintf(f, "idx,mac,ip,status,failed_stage,reason,start_ms,end_ms");
    for (int k = 0; k < REPORT_STAGES; k++)
        if (run->stages & (1u << k))
            fprintf(f, ",%s_state,%s_start_ms,%s_end_ms,%s_bytes,%s_retries,%s_timeouts", NAMES[k], NAMES[k], NAMES[k],
                    NAMES[k], NAMES[k], NAMES[k]);
    fputc('\n', f);
    for (unsigned i = 0; i < run->machines; i++) {
        const struct report_machine *m = &ms[i];
        char ip[16] = "";
        if (m->ip)
            inet_ntop(AF_INET, &m->ip, ip, sizeof(ip));
        fprintf(f, "%u,%s,%s,%s,%s,", m->idx, m->mac, ip,
                m->booted ? "booted" : m->failed_stage >= 0 ? "failed" : "unfinished",
                m->failed_stage >= 0 ? NAMES[m->failed_stage] : "");
        csv_field(f, m->failed_stage >= 0 ? m->reason : "");
        fprintf(f, ",%.3f,%.3f", ms_of(run, m->start_ns), ms_of(run, m->end_ns));
        for (int k = 0; k < REPORT_STAGES; k++) {
            if (!(run->stages & (1u << k)))
                continue;
            const struct report_mstage *st = &m->st[k];
            if (st->state == REPORT_ST_NONE)
                fprintf(f, ",none,,,,,");
            else
                fprintf(f, ",%s,%.3f,%.3f,%llu,%u,%u", report_st_state_name(st->state), ms_of(run, st->start_ns),
                        ms_of(run, st->end_ns), (unsigned long long)st->bytes, st->retries, st->timeouts);
        }
        fputc('\n', f);
    }
    return fclose(f) == 0;
}

/* ---- SVG: cumulative machines done per stage over time ---- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* A "nice" tick step (1, 2 or 5 times a power of ten) giving at most ~8 ticks. */
static double nice_step(double range)
{
    double step = 1e-3;
    while (range / step > 8) {
        if (range / (step * 2) <= 8)
            return step * 2;
        if (range / (step * 5) <= 8)
            return step * 5;
        step *= 10;
    }
    return step;
}

/* One step line of the sorted times t[0..n) (ns since t0). */
static void svg_steps(FILE *f, const uint64_t *t, unsigned n, double x0, double y0, double w, double h, double tmax,
                      unsigned ymax, const char *color, double width, const char *dash)
{
    if (!n)
        return;
    fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\"%s%s%s points=\"%.1f,%.1f", color, width,
            dash ? " stroke-dasharray=\"" : "", dash ? dash : "", dash ? "\"" : "", x0, y0 + h);
    for (unsigned i = 0; i < n; i++) {
        double x = x0 + w * ((double)t[i] / 1e9) / tmax;
        double ya = y0 + h - h * (double)i / ymax, yb = y0 + h - h * (double)(i + 1) / ymax;
        fprintf(f, " %.1f,%.1f %.1f,%.1f", x, ya, x, yb);
    }
    fprintf(f, " %.1f,%.1f\"/>\n", x0 + w, y0 + h - h * (double)n / ymax);
}

static bool write_svg(const char *path, const struct report_run *run, const struct report_machine *ms)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return false;
    const double W = 1000, H = 560, x0 = 70, y0 = 56, w = 700, h = 430;
    uint64_t ttl = last_done(run, ms);
    double tmax = (double)ttl / 1e9;
    if (tmax <= 0)
        tmax = 1;
    /* headroom above N, so the finished lines do not run along the frame */
    unsigned ymax = run->machines + (run->machines + 19) / 20;
    uint64_t *t = malloc(sizeof(uint64_t) * (run->machines + 1));
    if (!t) {
        fclose(f);
        return false;
    }
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
               "font-family=\"sans-serif\" font-size=\"12\">\n", W, H, W, H);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    fprintf(f, "<text x=\"%.0f\" y=\"22\" font-size=\"16\" font-weight=\"bold\">bootstorm-load storm: %u machines, "
               "%u booted, %u failed, last done at %.1f s</text>\n", x0, run->machines, run->booted, run->failed, tmax);
    fprintf(f, "<text x=\"%.0f\" y=\"40\" fill=\"#555\">", x0);
    for (const char *p = run->settings; *p; p++) /* escape for XML */
        fputs(*p == '<' ? "&lt;" : *p == '>' ? "&gt;" : *p == '&' ? "&amp;" : (char[]){*p, 0}, f);
    fprintf(f, "</text>\n");
    /* grid and axes */
    double xs = nice_step(tmax);
    for (double v = 0; v <= tmax + 1e-9; v += xs) {
        double x = x0 + w * v / tmax;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>\n", x, y0, x, y0 + h);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%g</text>\n", x, y0 + h + 16, v);
    }
    double ys = nice_step((double)ymax);
    if (ys < 1)
        ys = 1;
    for (double v = 0; v <= ymax + 1e-9; v += ys) {
        double y = y0 + h - h * v / ymax;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>\n", x0, y, x0 + w, y);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n", x0 - 6, y + 4, v);
    }
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#333\"/>\n", x0, y0, w,
            h);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">seconds since the first machine powered on</text>\n",
            x0 + w / 2, y0 + h + 36);
    fprintf(f, "<text transform=\"translate(18 %.1f) rotate(-90)\" text-anchor=\"middle\">machines done</text>\n",
            y0 + h / 2);
    /* one line per stage, then booted (thick) and failed (dashed red) */
    double ly = y0 + 6;
    for (int k = 0; k < REPORT_STAGES; k++) {
        if (!(run->stages & (1u << k)))
            continue;
        unsigned n = 0, skipped = 0;
        for (unsigned i = 0; i < run->machines; i++) {
            if (ms[i].st[k].state == REPORT_ST_OK)
                t[n++] = ms[i].st[k].end_ns - run->t0;
            skipped += ms[i].st[k].state == REPORT_ST_SKIPPED;
        }
        qsort(t, n, sizeof(*t), cmp_u64);
        svg_steps(f, t, n, x0, y0, w, h, tmax, ymax, COLORS[k], 1.8, NULL);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"3\"/>\n",
                x0 + w + 20, ly, x0 + w + 44, ly, COLORS[k]);
        if (skipped)
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">%s (%u, %u skipped)</text>\n", x0 + w + 50, ly + 4, NAMES[k], n,
                    skipped);
        else
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">%s (%u)</text>\n", x0 + w + 50, ly + 4, NAMES[k], n);
        ly += 20;
    }
    unsigned nb = 0, nf = 0;
    for (unsigned i = 0; i < run->machines; i++)
        if (ms[i].booted)
            t[nb++] = ms[i].end_ns - run->t0;
    qsort(t, nb, sizeof(*t), cmp_u64);
    svg_steps(f, t, nb, x0, y0, w, h, tmax, ymax, "#000", 3.0, NULL);
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#000\" stroke-width=\"4\"/>\n",
            x0 + w + 20, ly, x0 + w + 44, ly);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-weight=\"bold\">booted (%u)</text>\n", x0 + w + 50, ly + 4, nb);
    ly += 20;
    for (unsigned i = 0; i < run->machines; i++)
        if (ms[i].failed_stage >= 0)
            t[nf++] = ms[i].end_ns - run->t0;
    qsort(t, nf, sizeof(*t), cmp_u64);
    svg_steps(f, t, nf, x0, y0, w, h, tmax, ymax, "#d00", 2.0, "6 4");
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#d00\" stroke-width=\"2\" "
               "stroke-dasharray=\"6 4\"/>\n", x0 + w + 20, ly, x0 + w + 44, ly);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" fill=\"#d00\">failed (%u)</text>\n", x0 + w + 50, ly + 4, nf);
    fprintf(f, "</svg>\n");
    free(t);
    return fclose(f) == 0;
}

bool report_storm_files(const struct report_out *out, const struct report_run *run, const struct report_machine *ms,
                        const struct report_notes *notes)
{
    bool ok = true;
    if (out->json && !write_json(out->json, run, ms, notes)) {
        fprintf(stderr, "bootstorm-load: --json %s: %s\n", out->json, strerror(errno));
        ok = false;
    }
    if (out->csv && !write_csv(out->csv, run, ms)) {
        fprintf(stderr, "bootstorm-load: --csv %s: %s\n", out->csv, strerror(errno));
        ok = false;
    }
    if (out->svg && !write_svg(out->svg, run, ms)) {
        fprintf(stderr, "bootstorm-load: --svg %s: %s\n", out->svg, strerror(errno));
        ok = false;
    }
    return ok;
}
