/* Criterion suite for engine/metrics: the Prometheus text exposition format
 * (every line parsed by a small validator: HELP and TYPE once and before the
 * samples, names and labels well formed, histogram buckets ascending and
 * cumulative with +Inf equal to _count) and the values that reach it. */
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/http_service.h"
#include "engine/metrics.h"
#include "engine/tftp_service.h"
#include "engine/tracker.h"

static uint64_t fake_now = 1700000000000ull;
static uint64_t clk(void) { return fake_now; }
static char err[512];

/* ---- a validator for the text format (version 0.0.4) ---- */

#define MAX_FAMILIES 128
struct family {
    char name[96];
    char type[16];
    bool help, typed, sampled;
};

struct parsed {
    struct family fam[MAX_FAMILIES];
    int nfam;
};

static struct family *find_family(struct parsed *p, const char *name)
{
    for (int i = 0; i < p->nfam; i++)
        if (!strcmp(p->fam[i].name, name))
            return &p->fam[i];
    return NULL;
}

static struct family *add_family(struct parsed *p, const char *name)
{
    struct family *f = find_family(p, name);
    if (f)
        return f;
    cr_assert_lt(p->nfam, MAX_FAMILIES);
    f = &p->fam[p->nfam++];
    memset(f, 0, sizeof(*f));
    snprintf(f->name, sizeof f->name, "%s", name);
    return f;
}

static bool name_ok(const char *s, size_t n)
{
    if (!n || !(isalpha((unsigned char)s[0]) || s[0] == '_' || s[0] == ':'))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == ':'))
            return false;
    return true;
}

/* The family a sample belongs to (histogram suffixes stripped). */
static struct family *family_of(struct parsed *p, const char *name)
{
    struct family *f = find_family(p, name);
    if (f)
        return f;
    static const char *const suf[] = {"_bucket", "_sum", "_count"};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(name), k = strlen(suf[i]);
        if (n > k && !strcmp(name + n - k, suf[i])) {
            char base[96];
            snprintf(base, sizeof base, "%.*s", (int)(n - k), name);
            f = find_family(p, base);
            if (f && !strcmp(f->type, "histogram"))
                return f;
        }
    }
    return NULL;
}

/* Parses every line; asserts the grammar. */
static void validate(const char *text, struct parsed *p)
{
    memset(p, 0, sizeof(*p));
    cr_assert(strlen(text) > 0 && text[strlen(text) - 1] == '\n', "ends with a newline");
    char *copy = strdup(text), *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#') {
            char kw[8], name[96];
            int off = 0;
            cr_assert_eq(sscanf(line, "# %7s %95s %n", kw, name, &off), 2, "comment line: %s", line);
            cr_assert(name_ok(name, strlen(name)), "name: %s", line);
            struct family *f = add_family(p, name);
            cr_assert_not(f->sampled, "HELP/TYPE after samples: %s", line);
            if (!strcmp(kw, "HELP")) {
                cr_assert_not(f->help, "second HELP: %s", line);
                cr_assert(off > 0 && line[off], "empty help: %s", line);
                f->help = true;
            } else {
                cr_assert_str_eq(kw, "TYPE", "%s", line);
                cr_assert_not(f->typed, "second TYPE: %s", line);
                const char *t = line + off;
                cr_assert(!strcmp(t, "counter") || !strcmp(t, "gauge") || !strcmp(t, "histogram"), "type: %s", line);
                snprintf(f->type, sizeof f->type, "%s", t);
                f->typed = true;
            }
            continue;
        }
        size_t n = strcspn(line, "{ ");
        char name[96];
        snprintf(name, sizeof name, "%.*s", (int)n, line);
        cr_assert(name_ok(name, n), "sample name: %s", line);
        struct family *f = family_of(p, name);
        cr_assert_not_null(f, "sample without HELP/TYPE: %s", line);
        cr_assert(f->help && f->typed, "%s", line);
        f->sampled = true;
        const char *q = line + n;
        if (*q == '{') { /* label="value"(,label="value")* } */
            q++;
            while (*q != '}') {
                size_t ln = strcspn(q, "=");
                cr_assert(name_ok(q, ln), "label name: %s", line);
                q += ln;
                cr_assert_eq(q[0], '=', "%s", line);
                cr_assert_eq(q[1], '"', "%s", line);
                q += 2;
                while (*q != '"') {
                    cr_assert_neq(*q, 0, "unterminated label value: %s", line);
                    if (*q == '\\') {
                        cr_assert(q[1] == '\\' || q[1] == '"' || q[1] == 'n', "bad escape: %s", line);
                        q++;
                    }
                    q++;
                }
                q++;
                if (*q == ',')
                    q++;
                else
                    cr_assert_eq(*q, '}', "%s", line);
            }
            q++;
        }
        cr_assert_eq(*q, ' ', "value separator: %s", line);
        char *end;
        strtod(q + 1, &end);
        cr_assert(end != q + 1 && *end == 0, "value: %s", line);
    }
    free(copy);
    for (int i = 0; i < p->nfam; i++)
        cr_assert(p->fam[i].help && p->fam[i].typed, "family %s lacks HELP or TYPE", p->fam[i].name);
}

/* The value of the sample "name{labels}" exactly as written ("" for none); -1 if absent. */
static double value_of(const char *text, const char *sample)
{
    size_t n = strlen(sample);
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (!strncmp(l, sample, n) && l[n] == ' ')
            return strtod(l + n + 1, NULL);
    return -1;
}

/* Buckets of one histogram series ascending by le, cumulative, +Inf == _count. */
static void check_histogram(const char *text, const char *name, const char *labels)
{
    char prefix[256];
    snprintf(prefix, sizeof prefix, "%s_bucket{%s%sle=\"", name, labels, *labels ? "," : "");
    double last_le = -1, last = -1, inf = -1;
    int buckets = 0;
    for (const char *l = strstr(text, prefix); l; l = strstr(l + 1, prefix)) {
        const char *le = l + strlen(prefix);
        double v = strtod(strchr(le, ' ') + 1, NULL);
        cr_assert_geq(v, last, "%s: buckets not cumulative", prefix);
        last = v;
        buckets++;
        if (!strncmp(le, "+Inf\"", 5)) {
            inf = v;
            continue;
        }
        double b = strtod(le, NULL);
        cr_assert_gt(b, last_le, "%s: le not ascending", prefix);
        last_le = b;
    }
    cr_assert_eq(buckets, TRACKER_HIST_BUCKETS + 1, "%s: %d buckets", prefix, buckets);
    char count[256];
    snprintf(count, sizeof count, "%s_count%s%s%s", name, *labels ? "{" : "", labels, *labels ? "}" : "");
    cr_assert_eq(value_of(text, count), inf, "%s != +Inf bucket", count);
}

Test(metrics, escape_label)
{
    char out[64];
    cr_assert_eq(metrics_escape_label("a\"b\\c\nd", out, sizeof out), 10);
    cr_assert_str_eq(out, "a\\\"b\\\\c\\nd");
    cr_assert_eq(metrics_escape_label("abcdef", out, 4), 6, "the length needed");
    cr_assert_str_eq(out, "abc");
}

Test(metrics, format_and_values)
{
    struct tracker_config tc = {.no_thread = true, .clock_ms = clk, .stall_after_ms = 1000};
    struct tracker *t = NULL;
    cr_assert_eq(tracker_create(&t, &tc, err, sizeof err), 0, "%s", err);
    const uint8_t a[6] = {0x52, 0x54, 0, 0, 0, 1}, b[6] = {0x52, 0x54, 0, 0, 0, 2};
    tracker_record(t, a, TRACKER_STAGE_DISCOVER, 0);
    fake_now += 2500;
    tracker_record(t, a, TRACKER_STAGE_OFFERED, 0);
    fake_now += 400;
    tracker_record(t, b, TRACKER_STAGE_KERNEL, 0);
    tracker_fail(t, b, TRACKER_FAIL_TFTP_TIMEOUT, "timeout");
    /* firmware's normal probes: counted, failing nobody */
    struct tftp_done_info probe = {.path = "grubx64.efi", .outcome = TFTP_DONE_CLIENT_ABORT, .error_code = 8,
                                   .oack = true},
                          rev = {.path = "revocations_sbat.efi", .outcome = TFTP_DONE_NOT_FOUND, .error_code = 1};
    tracker_tftp_done(t, &probe);
    tracker_tftp_done(t, &probe);
    tracker_tftp_done(t, &rev);
    fake_now += 5000;
    tracker_tick(t, fake_now); /* both stall */

    struct metrics *m = metrics_new(2, t, NULL);
    cr_assert_not_null(m);
    struct http_service_stats h0 = {.requests = 10, .bytes = 1000, .errors_4xx = 2, .conns_open = 3,
                                    .streams_open = 1},
                              h1 = {.requests = 5, .bytes = 24, .errors_5xx = 1, .streams_dropped = 4};
    metrics_publish_http(m, 0, &h0);
    metrics_publish_http(m, 1, &h1);
    metrics_publish_http(m, 7, &h1); /* no such worker: ignored */
    struct tftp_service_stats t1 = {.requests = 9, .transfers = 8, .done = 6, .timeouts = 2, .bytes = 4096,
                                    .err_not_found = 3, .active = 1};
    metrics_publish_tftp(m, 1, &t1);

    size_t len = 0;
    char *text = metrics_render(m, &len);
    cr_assert_not_null(text);
    cr_assert_eq(strlen(text), len);
    struct parsed p;
    validate(text, &p);

    cr_assert_eq(value_of(text, "bootstorm_http_requests_total"), 15);
    cr_assert_eq(value_of(text, "bootstorm_http_bytes_total"), 1024);
    cr_assert_eq(value_of(text, "bootstorm_http_connections_open"), 3);
    cr_assert_eq(value_of(text, "bootstorm_http_errors_total{kind=\"4xx\"}"), 2);
    cr_assert_eq(value_of(text, "bootstorm_http_errors_total{kind=\"5xx\"}"), 1);
    cr_assert_eq(value_of(text, "bootstorm_http_streams_open"), 1);
    cr_assert_eq(value_of(text, "bootstorm_http_streams_dropped_total"), 4);
    cr_assert_eq(value_of(text, "bootstorm_tftp_requests_total"), 9);
    cr_assert_eq(value_of(text, "bootstorm_tftp_transfers_ended_total{outcome=\"timeout\"}"), 2);
    cr_assert_eq(value_of(text, "bootstorm_tftp_errors_total{kind=\"not_found\"}"), 3);
    cr_assert_eq(value_of(text, "bootstorm_tftp_bytes_total"), 4096);
    cr_assert_eq(value_of(text, "bootstorm_tftp_transfers_active"), 1);
    cr_assert_eq(value_of(text, "bootstorm_dhcp_leases"), -1, "no DHCP: no DHCP families");
    cr_assert_eq(value_of(text, "bootstorm_hosts{stage=\"offered\"}"), 1);
    cr_assert_eq(value_of(text, "bootstorm_hosts{stage=\"kernel\"}"), 1);
    cr_assert_eq(value_of(text, "bootstorm_hosts{stage=\"none\"}"), 0);
    cr_assert_eq(value_of(text, "bootstorm_hosts_stalled"), 2);
    cr_assert_eq(value_of(text, "bootstorm_hosts_failed"), 1);
    cr_assert_eq(value_of(text, "bootstorm_host_failures_total{kind=\"tftp_timeout\"}"), 1);
    cr_assert_eq(value_of(text, "bootstorm_host_failures_total{kind=\"tftp_abort\"}"), 0);
    cr_assert_eq(value_of(text, "bootstorm_host_probes_total{kind=\"tftp_size_probe\"}"), 2);
    cr_assert_eq(value_of(text, "bootstorm_host_probes_total{kind=\"tftp_optional_missing\"}"), 1);
    cr_assert_eq(value_of(text, "bootstorm_tracker_persist_total{kind=\"journal\"}"), 0, "no state directory");
    /* discover → offered took 2.5 s: in the le=5 bucket and above, not in le=2 */
    cr_assert_eq(value_of(text, "bootstorm_stage_duration_seconds_bucket{stage=\"offered\",le=\"2\"}"), 0);
    cr_assert_eq(value_of(text, "bootstorm_stage_duration_seconds_bucket{stage=\"offered\",le=\"5\"}"), 1);
    cr_assert_eq(value_of(text, "bootstorm_stage_duration_seconds_sum{stage=\"offered\"}"), 2.5);
    cr_assert_eq(value_of(text, "bootstorm_stage_duration_seconds_count{stage=\"kernel\"}"), 0,
                 "a host's first stage has no previous one");
    for (int s = 1; s < TRACKER_STAGE_COUNT; s++) {
        char lab[64];
        snprintf(lab, sizeof lab, "stage=\"%s\"", tracker_stage_name((enum tracker_stage)s));
        check_histogram(text, "bootstorm_stage_duration_seconds", lab);
    }
    check_histogram(text, "bootstorm_install_duration_seconds", "");
    struct family *f = find_family(&p, "bootstorm_stage_duration_seconds");
    cr_assert_not_null(f);
    cr_assert_str_eq(f->type, "histogram");
    f = find_family(&p, "bootstorm_http_requests_total");
    cr_assert_str_eq(f->type, "counter");
    f = find_family(&p, "bootstorm_hosts");
    cr_assert_str_eq(f->type, "gauge");
    f = find_family(&p, "bootstorm_host_probes_total");
    cr_assert_not_null(f);
    cr_assert_str_eq(f->type, "counter");
    free(text);
    metrics_free(m);
    tracker_free(t);
}

Test(metrics, without_tracker_or_tftp)
{
    struct metrics *m = metrics_new(1, NULL, NULL);
    struct http_service_stats h = {.requests = 1};
    metrics_publish_http(m, 0, &h);
    size_t len;
    char *text = metrics_render(m, &len);
    struct parsed p;
    validate(text, &p);
    cr_assert_eq(value_of(text, "bootstorm_http_requests_total"), 1);
    cr_assert_null(strstr(text, "bootstorm_tftp_"));
    cr_assert_null(strstr(text, "bootstorm_hosts"));
    free(text);
    metrics_free(m);
}
