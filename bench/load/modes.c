/* bench/load/modes.c — the single-protocol benchmark modes of bootstorm-load:
 *
 *   http  N connections, keep-alive or a new connection per request, fixed
 *         duration or a fixed number of requests per connection: req/s, MB/s,
 *         latency percentiles and the spread of the connections' finishing
 *         times (all downloaders of one install.img should end together);
 *   tftp  N concurrent transfers back to back: transfers/s, MB/s, transfer
 *         time percentiles, retransmissions and failures;
 *   dhcp  DORA exchanges as a relay agent at an offered rate (or closed loop
 *         with N outstanding), each from a new MAC: DORA/s, drops, latency.
 *
 * The bench/ scripts parse --json; the text is for people. */
#include "bench/load/dhcpc.h"
#include "bench/load/ev.h"
#include "bench/load/httpc.h"
#include "bench/load/load.h"
#include "bench/load/opts.h"
#include "bench/load/stats.h"
#include "bench/load/tftpc.h"
#include "bench/load/verify.h"

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static volatile sig_atomic_t g_stop;
static void on_signal(int sig) { g_stop = 1; }

static void install_signals(void)
{
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* CPU seconds this process used (user + system): the client's own cost. */
static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
}

static void json_hist(FILE *f, const char *name, const struct stats_hist *h)
{
    fprintf(f, "\"%s\":{\"count\":%llu,\"min_ms\":%.3f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,"
               "\"mean_ms\":%.3f}",
            name, (unsigned long long)h->count, h->count ? (double)h->min / 1e6 : 0.0,
            (double)stats_hist_pct(h, 0.5) / 1e6, (double)stats_hist_pct(h, 0.9) / 1e6,
            (double)stats_hist_pct(h, 0.99) / 1e6, (double)h->max / 1e6,
            h->count ? (double)h->sum / (double)h->count / 1e6 : 0.0);
}

static void print_hist(const char *label, const struct stats_hist *h)
{
    char a[16], b[16], c[16], d[16], e[16];
    int have = h->count > 0;
    printf("%-12s min %s  p50 %s  p90 %s  p99 %s  max %s\n", label, stats_fmt_ns(a, sizeof(a), h->min, have),
           stats_fmt_ns(b, sizeof(b), stats_hist_pct(h, 0.5), have), stats_fmt_ns(c, sizeof(c), stats_hist_pct(h, 0.9), have),
           stats_fmt_ns(d, sizeof(d), stats_hist_pct(h, 0.99), have), stats_fmt_ns(e, sizeof(e), h->max, have));
}

/* Failures counted by kind, with the first reason of each kind kept. */
#define KINDS 16
struct failures {
    uint64_t n[KINDS];
    char first[KINDS][160];
    uint64_t total;
};

static void failure_add(struct failures *f, int kind, const char *reason)
{
    if (kind < 0 || kind >= KINDS)
        kind = KINDS - 1;
    if (!f->n[kind]++)
        snprintf(f->first[kind], sizeof(f->first[kind]), "%s", reason);
    f->total++;
}

static void failures_print(const struct failures *f, const char *(*name)(int))
{
    for (int k = 0; k < KINDS; k++)
        if (f->n[k])
            printf("  %-10s %llu  (first: %s)\n", name(k), (unsigned long long)f->n[k], f->first[k]);
}

static void failures_json(FILE *j, const struct failures *f, const char *(*name)(int))
{
    fprintf(j, "\"failures\":{");
    bool first = true;
    for (int k = 0; k < KINDS; k++)
        if (f->n[k]) {
            fprintf(j, "%s\"%s\":{\"count\":%llu,\"first\":", first ? "" : ",", name(k), (unsigned long long)f->n[k]);
            stats_json_str(j, f->first[k]);
            fputc('}', j);
            first = false;
        }
    fputc('}', j);
}

/* ---- the --json summary: one table of fields per mode ---- */

enum jkind { J_U64, J_F0, J_F1, J_F2, J_F3, J_F4, J_STR, J_BOOL, J_HIST, J_FAILURES };
struct jfield {
    const char *key;
    enum jkind kind;
    uint64_t u;                  /* J_U64; J_BOOL: 0/1 */
    double f;                    /* J_F0..J_F4: that many decimals */
    const char *s;               /* J_STR */
    const struct stats_hist *h;  /* J_HIST */
    const struct failures *fail; /* J_FAILURES, with name */
    const char *(*name)(int);
};
#define JU(k, v) {.key = (k), .kind = J_U64, .u = (uint64_t)(v)}
#define JF(k, d, v) {.key = (k), .kind = J_F##d, .f = (double)(v)}
#define JS(k, v) {.key = (k), .kind = J_STR, .s = (v)}
#define JB(k, v) {.key = (k), .kind = J_BOOL, .u = (v) ? 1 : 0}
#define JH(k, v) {.key = (k), .kind = J_HIST, .h = (v)}
#define JFAIL(v, fn) {.key = "failures", .kind = J_FAILURES, .fail = (v), .name = (fn)}

/* Writes {"key":value,...} and a newline to path; false (said on stderr) when
 * the file cannot be written.  No path: nothing to do. */
static bool json_write(const char *mode, const char *path, const struct jfield *f, size_t n)
{
    if (!path)
        return true;
    FILE *j = fopen(path, "w");
    if (!j) {
        fprintf(stderr, "bootstorm-load %s: --json %s: %s\n", mode, path, strerror(errno));
        return false;
    }
    fputc('{', j);
    for (size_t i = 0; i < n; i++) {
        if (i)
            fputc(',', j);
        switch (f[i].kind) {
        case J_HIST: json_hist(j, f[i].key, f[i].h); continue;
        case J_FAILURES: failures_json(j, f[i].fail, f[i].name); continue;
        default: break;
        }
        fprintf(j, "\"%s\":", f[i].key);
        switch (f[i].kind) {
        case J_U64: fprintf(j, "%llu", (unsigned long long)f[i].u); break;
        case J_F0: fprintf(j, "%.0f", f[i].f); break;
        case J_F1: fprintf(j, "%.1f", f[i].f); break;
        case J_F2: fprintf(j, "%.2f", f[i].f); break;
        case J_F3: fprintf(j, "%.3f", f[i].f); break;
        case J_F4: fprintf(j, "%.4f", f[i].f); break;
        case J_STR: stats_json_str(j, f[i].s); break;
        case J_BOOL: fputs(f[i].u ? "true" : "false", j); break;
        default: break;
        }
    }
    fputs("}\n", j);
    bool ok = !ferror(j);
    if (fclose(j) != 0 || !ok) {
        fprintf(stderr, "bootstorm-load %s: --json %s: write failed\n", mode, path);
        return false;
    }
    return true;
}

static void failures_report(const struct failures *f, const char *(*name)(int))
{
    if (!f->total)
        return;
    printf("failures:\n");
    failures_print(f, name);
}

/* ---- source addresses: connections and transfers spread over many ---- */

struct sources {
    uint32_t base; /* 0: unbound */
    unsigned n, next;
};

static uint32_t source_next(struct sources *s)
{
    if (!s->base)
        return 0;
    uint32_t a = load_ip_nth(s->base, s->next);
    s->next = (s->next + 1) % s->n;
    return a;
}

/* ======================================================================== */
/* http                                                                      */
/* ======================================================================== */

void http_mode_usage(FILE *f)
{
    fprintf(f,
            "bootstorm-load http [options]: HTTP benchmark client\n"
            "  --url URL               http://HOST:PORT/path (repeatable; requests pick one at random)\n"
            "  --url-list FILE         one URL (or /path, on the --server) per line\n"
            "  --server URL            http://HOST:PORT that /paths are fetched from, itself not\n"
            "                          fetched [the first --url's server]\n"
            "  --connections N         concurrent connections [10]\n"
            "  --duration S            run this long [10 unless a request count is given]\n"
            "  --requests-per-conn N   each connection makes N requests, then stops\n"
            "  --each-once             each connection downloads its URL once (URL i %% count);\n"
            "                          reports the spread of the finishing times\n"
            "  --new-conn-per-request  Connection: close and a new connection each time (connections/s)\n"
            "  --method GET|HEAD       [GET]\n"
            "  --range BYTES           random 'Range: bytes=a-b' reads of this length (expects 206)\n"
            "  --timeout MS            a request without progress this long fails [30000]\n"
            "  --source-base ADDR      bind connections to ADDR, ADDR+1, ... (loopback: 127.x.y.z)\n"
            "  --sources N             how many source addresses to rotate through [256]\n"
            "  --tree DIR              local copy of the served root: sizes compared with it\n"
            "  --verify[=KIND]         also checksum bodies against --tree: crc32c, sha256 [crc32c]\n"
            "  --json FILE             results as JSON\n"
            "  --progress BOOL         live progress line [yes on a terminal]\n"
            "  Bodies that are not verified are dropped in the kernel (recv MSG_TRUNC): a large file\n"
            "  costs this client a few syscalls per MB, unlike wrk's 8 KiB reads.\n");
}

struct hurl {
    struct httpc_target t;
    char path[1024];
    uint64_t size; /* for --range, from a HEAD */
    const struct verify_ref *ref;
};

struct hclient {
    struct httpc_conn *c;
    struct httpc_req r;
    struct ev_timer backoff; /* after a refused connect: do not spin */
    unsigned id, done_reqs, url;
    bool finished, last_ok;
    uint64_t finish_ns;
    char hdr[96];
    struct httpc_target cur;
};

static struct {
    struct hurl *urls;
    unsigned nurls, conns;
    uint64_t per_conn;
    bool each_once, new_conn, head;
    uint64_t range;
    uint64_t timeout_ms;
    double duration_s;
    enum verify_kind verify;
    const char *tree, *json;
    struct sources src;
    struct hclient *cl;
    uint64_t t0, deadline, end;
    unsigned active;
    uint64_t ok, bytes_ok, reqs_started;
    struct stats_hist lat, ttfb;
    struct failures fail;
    uint64_t rng;
    bool stopping;
    struct ev_timer tick;
    uint64_t last_ok, last_bytes, last_tick;
    uint64_t rx0, rx_end; /* body bytes received by all requests, finished or not: at t0, at the deadline */
    bool rx_ended;
} H;

/* Body bytes received so far by every request, also those still in flight. */
static uint64_t h_rx_bytes(void)
{
    struct httpc_counters c;
    httpc_get_counters(&c);
    return c.bytes;
}

static const char *http_kind_name(int k) { return httpc_status_name((enum httpc_status)k); }

static void h_issue(struct hclient *cl);

static void h_client_done(struct hclient *cl)
{
    cl->finished = true;
    cl->finish_ns = ev_now();
    H.active--;
    if (cl->c) {
        httpc_conn_free(cl->c);
        cl->c = NULL;
    }
}

static void h_done(void *arg, struct httpc_req *r)
{
    struct hclient *cl = arg;
    if (H.stopping && ev_now() >= H.deadline && H.duration_s > 0) {
        /* in flight at the deadline: neither counted nor failed */
        httpc_req_clear(r);
        h_client_done(cl);
        return;
    }
    if (r->status == HTTPC_OK && H.range && r->http_status != 206) {
        r->status = HTTPC_STATUS;
        snprintf(r->reason, sizeof(r->reason), "%s: %d to a Range request, expected 206", r->path, r->http_status);
    }
    if (r->status == HTTPC_OK && H.range && r->received != H.range &&
        r->received != H.urls[cl->url].size % H.range) { /* the last range of a file may be short */
        r->status = HTTPC_SIZE;
        snprintf(r->reason, sizeof(r->reason), "%s: %llu bytes for a %llu-byte range", r->path,
                 (unsigned long long)r->received, (unsigned long long)H.range);
    }
    if (r->status == HTTPC_OK) {
        H.ok++;
        H.bytes_ok += r->received;
        stats_hist_add(&H.lat, r->end_ns - r->start_ns);
        if (r->first_byte_ns)
            stats_hist_add(&H.ttfb, r->first_byte_ns - r->start_ns);
    } else {
        failure_add(&H.fail, r->status, r->reason);
    }
    cl->last_ok = r->status == HTTPC_OK;
    bool refused = r->status == HTTPC_CONNECT || r->status == HTTPC_SOCKET;
    httpc_req_clear(r);
    cl->done_reqs++;
    if (H.stopping || (H.per_conn && cl->done_reqs >= H.per_conn)) {
        h_client_done(cl);
        return;
    }
    if (refused) {
        ev_timer_arm(&cl->backoff, 50 * EV_MS);
        return;
    }
    h_issue(cl);
}

static void h_backoff(struct ev_timer *t)
{
    struct hclient *cl = t->owner;
    if (H.stopping) {
        h_client_done(cl);
        return;
    }
    h_issue(cl);
}

static void h_issue(struct hclient *cl)
{
    if (!H.each_once && H.nurls > 1)
        cl->url = (unsigned)(xorshift(&H.rng) % H.nurls);
    struct hurl *u = &H.urls[cl->url];
    struct httpc_target t = u->t;
    t.bind_addr = cl->cur.bind_addr;
    if (H.new_conn || !cl->c)
        t.bind_addr = source_next(&H.src);
    if (cl->c && (cl->cur.server.sin_addr.s_addr != t.server.sin_addr.s_addr ||
                  cl->cur.server.sin_port != t.server.sin_port || strcmp(cl->cur.host, t.host))) {
        httpc_conn_free(cl->c);
        cl->c = NULL;
    }
    if (!cl->c && !(cl->c = httpc_conn_new(&t))) {
        failure_add(&H.fail, HTTPC_SOCKET, "out of memory");
        h_client_done(cl);
        return;
    }
    httpc_conn_set_bind(cl->c, t.bind_addr);
    cl->cur = t;
    memset(&cl->r, 0, sizeof(cl->r));
    cl->r.method = H.head ? "HEAD" : "GET";
    cl->r.path = u->path;
    cl->r.close = H.new_conn;
    cl->r.verify = H.range ? VERIFY_NONE : H.verify;
    cl->r.ref = H.range ? NULL : u->ref;
    cl->r.timeout_ms = H.timeout_ms;
    cl->r.done = h_done;
    cl->r.arg = cl;
    if (H.range) {
        uint64_t size = u->size > H.range ? u->size : H.range;
        uint64_t first = (xorshift(&H.rng) % (size / H.range)) * H.range; /* aligned, like a reader's blocks */
        snprintf(cl->hdr, sizeof(cl->hdr), "Range: bytes=%llu-%llu\r\n", (unsigned long long)first,
                 (unsigned long long)(first + H.range - 1));
        cl->r.extra_headers = cl->hdr;
        cl->r.expect_status = 206;
    }
    H.reqs_started++;
    httpc_request(cl->c, &cl->r);
}

static void h_tick(struct ev_timer *t)
{
    uint64_t now = ev_now();
    double dt = (double)(now - H.last_tick) / 1e9;
    if (dt > 0)
        load_progress("%6.1fs  %u connections  %.0f req/s  %.1f MB/s  ok %llu failed %llu", (double)(now - H.t0) / 1e9,
                      H.active, (double)(H.ok - H.last_ok) / dt, (double)(h_rx_bytes() - H.last_bytes) / 1e6 / dt,
                      (unsigned long long)H.ok, (unsigned long long)H.fail.total);
    H.last_ok = H.ok;
    H.last_bytes = h_rx_bytes();
    H.last_tick = now;
    ev_timer_arm(&H.tick, 500 * EV_MS);
}

/* --range needs each URL's size: one HEAD per URL, in turn, before the run. */
static struct {
    unsigned i;
    bool failed;
    char why[200];
} HS;
static struct httpc_conn *hs_conn;
static struct httpc_req hs_req;

static void hs_next(void);
static void hs_done(void *arg, struct httpc_req *r)
{
    if (r->status != HTTPC_OK || !r->has_length) {
        HS.failed = true;
        snprintf(HS.why, sizeof(HS.why), "HEAD %s: %s", r->path, r->status != HTTPC_OK ? r->reason : "no Content-Length");
        return;
    }
    H.urls[HS.i].size = r->content_length;
    HS.i++;
    hs_next();
}

static void hs_next(void)
{
    if (HS.i >= H.nurls)
        return;
    httpc_conn_free(hs_conn);
    hs_conn = httpc_conn_new(&H.urls[HS.i].t);
    memset(&hs_req, 0, sizeof(hs_req));
    hs_req.method = "HEAD";
    hs_req.path = H.urls[HS.i].path;
    hs_req.timeout_ms = H.timeout_ms;
    hs_req.done = hs_done;
    httpc_request(hs_conn, &hs_req);
}

/* --server: where /paths go (the list's, and --url's after it) */
static struct httpc_target h_server;
static bool h_server_set;
static bool h_opt_server(const char *a, char *why, size_t wl)
{
    char path[1024], w[200];
    if (!httpc_parse_url(a, &h_server, path, sizeof(path), w, sizeof(w))) {
        snprintf(why, wl, "--server %s", w);
        return false;
    }
    if (strcmp(path, "/") != 0) {
        snprintf(why, wl, "--server %s: a server only (http://HOST:PORT), no path", a);
        return false;
    }
    h_server_set = true;
    return true;
}

static bool h_add_url(const char *s, unsigned *cap, char *why, size_t wl)
{
    if (H.nurls == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        struct hurl *n = realloc(H.urls, *cap * sizeof(*n));
        if (!n) {
            snprintf(why, wl, "out of memory");
            return false;
        }
        H.urls = n;
    }
    struct hurl *u = &H.urls[H.nurls];
    memset(u, 0, sizeof(*u));
    if (s[0] == '/') { /* a path on --server, or on the first URL's server */
        if (!h_server_set && !H.nurls) {
            snprintf(why, wl, "%s: a path needs --server (or a --url before it) to name the server", s);
            return false;
        }
        u->t = h_server_set ? h_server : H.urls[0].t;
        if (strlen(s) >= sizeof(u->path)) {
            snprintf(why, wl, "%.60s...: path too long", s);
            return false;
        }
        strcpy(u->path, s);
    } else if (!httpc_parse_url(s, &u->t, u->path, sizeof(u->path), why, wl)) {
        return false;
    }
    H.nurls++;
    return true;
}

/* --url: appended to H.urls (its capacity in h_url_cap) */
static unsigned h_url_cap;
static bool h_opt_url(const char *a, char *why, size_t wl)
{
    char w[256];
    if (h_add_url(a, &h_url_cap, w, sizeof(w)))
        return true;
    snprintf(why, wl, "--url %s", w);
    return false;
}

int http_mode_main(int argc, char **argv)
{
    static const char *const methods[] = {"GET", "HEAD", NULL};
    memset(&H, 0, sizeof(H));
    h_url_cap = 0;
    h_server_set = false;
    H.conns = 10;
    H.timeout_ms = 30000;
    H.src.n = 256;
    int progress = -1;
    unsigned head = 0;
    char why[256];
    const char *list = NULL;
    const struct opt_def defs[] = {
        OPT_DEF("url", OPT_CALL, NULL, .call = h_opt_url),
        OPT_DEF("url-list", OPT_STR, &list),
        OPT_DEF("server", OPT_CALL, NULL, .call = h_opt_server),
        OPT_DEF("connections", OPT_UINT, &H.conns, .lo = 1, .hi = 100000),
        OPT_DEF("duration", OPT_SECONDS, &H.duration_s),
        OPT_DEF("requests-per-conn", OPT_U64, &H.per_conn, .lo = 1, .hi = 1000000000, .want = "want 1 or more"),
        OPT_DEF("each-once", OPT_FLAG, &H.each_once),
        OPT_DEF("new-conn-per-request", OPT_FLAG, &H.new_conn),
        OPT_DEF("method", OPT_CHOICE, &head, .choices = methods),
        OPT_DEF("range", OPT_SIZE, &H.range),
        OPT_DEF("timeout", OPT_U64, &H.timeout_ms, .lo = 100, .hi = 3600000, .want = "want 100-3600000 ms"),
        OPT_DEF("source-base", OPT_IP, &H.src.base),
        OPT_DEF("sources", OPT_UINT, &H.src.n, .lo = 1, .hi = 1000000),
        OPT_DEF("tree", OPT_STR, &H.tree),
        OPT_DEF("verify", OPT_VERIFY, &H.verify),
        OPT_DEF("json", OPT_STR, &H.json),
        OPT_DEF("progress", OPT_TRI, &progress, .want = "want yes or no"),
        OPT_END,
    };
    switch (opts_parse("http", defs, argc, argv, http_mode_usage)) {
    case OPTS_OK: break;
    case OPTS_HELP: free(H.urls); return LOAD_EXIT_OK;
    default: free(H.urls); return LOAD_EXIT_USAGE;
    }
    H.head = head == 1;
    if (list) {
        FILE *f = fopen(list, "r");
        if (!f)
            return load_usage_error("http", "--url-list %s: %s", list, strerror(errno));
        char line[1200];
        while (fgets(line, sizeof(line), f)) {
            line[strcspn(line, "\r\n")] = 0;
            if (!line[0] || line[0] == '#')
                continue;
            if (!h_add_url(line, &h_url_cap, why, sizeof(why))) {
                fclose(f);
                return load_usage_error("http", "--url-list %s: %s", list, why);
            }
        }
        fclose(f);
    }
    if (!H.nurls)
        return load_usage_error("http", "needs --url or --url-list");
    if (H.each_once) {
        if (H.per_conn || H.duration_s > 0)
            return load_usage_error("http", "--each-once excludes --requests-per-conn and --duration");
        H.per_conn = 1;
    }
    if (H.per_conn && H.duration_s > 0)
        return load_usage_error("http", "give --duration or --requests-per-conn, not both");
    if (!H.per_conn && H.duration_s <= 0)
        H.duration_s = 10;
    if (H.verify != VERIFY_NONE && !H.tree)
        return load_usage_error("http", "--verify needs --tree DIR");
    if (H.range && H.head)
        return load_usage_error("http", "--range with --method HEAD makes no sense");

    ev_raise_nofile();
    if (ev_init() != EV_OK) {
        fprintf(stderr, "bootstorm-load http: epoll: %s\n", strerror(errno));
        return LOAD_EXIT_USAGE;
    }
    install_signals();
    load_progress_init(progress);
    stats_hist_init(&H.lat);
    stats_hist_init(&H.ttfb);
    H.rng = 0x9E3779B97F4A7C15ull ^ (uint64_t)getpid();
    if (H.tree) {
        if (H.verify != VERIFY_NONE)
            fprintf(stderr, "bootstorm-load http: computing %s of the files under %s ...\n", verify_kind_name(H.verify),
                    H.tree);
        for (unsigned i = 0; i < H.nurls; i++) {
            char p[1024];
            snprintf(p, sizeof(p), "%s", H.urls[i].path + 1);
            p[strcspn(p, "?")] = 0;
            H.urls[i].ref = verify_ref_get(H.tree, p, H.verify);
        }
    }
    if (H.range) {
        ev_refresh();
        hs_next();
        while (HS.i < H.nurls && !HS.failed && !g_stop)
            ev_run_once(100 * EV_MS);
        httpc_conn_free(hs_conn);
        if (HS.failed || g_stop) {
            fprintf(stderr, "bootstorm-load http: %s\n", HS.failed ? HS.why : "interrupted");
            ev_fini();
            return LOAD_EXIT_FAILED;
        }
    }
    H.cl = calloc(H.conns, sizeof(*H.cl));
    if (!H.cl) {
        fprintf(stderr, "bootstorm-load http: out of memory\n");
        return LOAD_EXIT_USAGE;
    }
    double cpu0 = cpu_seconds();
    H.t0 = ev_refresh();
    H.last_tick = H.t0;
    H.rx0 = H.last_bytes = h_rx_bytes();
    H.deadline = H.duration_s > 0 ? H.t0 + (uint64_t)(H.duration_s * 1e9) : UINT64_MAX;
    H.tick.fn = h_tick;
    if (load_progress_on())
        ev_timer_arm(&H.tick, 500 * EV_MS);
    H.active = H.conns;
    for (unsigned i = 0; i < H.conns; i++) {
        H.cl[i].id = i;
        H.cl[i].url = i % H.nurls;
        H.cl[i].backoff.fn = h_backoff;
        H.cl[i].backoff.owner = &H.cl[i];
        h_issue(&H.cl[i]);
    }
    while (H.active && !g_stop) {
        uint64_t now = ev_now();
        if (!H.stopping && now >= H.deadline) {
            H.stopping = true;
            H.rx_end = h_rx_bytes();
            H.rx_ended = true;
        }
        if (H.stopping && now >= H.deadline + 100 * EV_MS) { /* drop what is still in flight */
            for (unsigned i = 0; i < H.conns; i++)
                if (!H.cl[i].finished) {
                    ev_timer_cancel(&H.cl[i].backoff);
                    h_client_done(&H.cl[i]);
                }
            break;
        }
        uint64_t wait = H.deadline > now ? H.deadline - now : 20 * EV_MS;
        ev_run_once(wait < 200 * EV_MS ? wait : 200 * EV_MS);
    }
    H.end = ev_refresh();
    double cpu = cpu_seconds() - cpu0;
    uint64_t rx = (H.rx_ended ? H.rx_end : h_rx_bytes()) - H.rx0;
    load_progress_clear();
    for (unsigned i = 0; i < H.conns; i++)
        if (H.cl[i].c)
            httpc_conn_free(H.cl[i].c);
    double secs = (double)((H.duration_s > 0 ? (H.deadline < H.end ? H.deadline : H.end) : H.end) - H.t0) / 1e9;
    struct httpc_counters hc;
    httpc_get_counters(&hc);
    /* finishing times (request-count modes) */
    struct stats_hist fin;
    stats_hist_init(&fin);
    unsigned nfin = 0;
    for (unsigned i = 0; i < H.conns; i++)
        if (H.cl[i].finished && H.per_conn && H.cl[i].last_ok) {
            stats_hist_add(&fin, H.cl[i].finish_ns - H.t0);
            nfin++;
        }
    double spread = fin.count && fin.max ? 100.0 * (double)(fin.max - fin.min) / (double)fin.max : 0;

    printf("http: %u connection%s, %s, %u URL%s%s%s\n", H.conns, H.conns == 1 ? "" : "s",
           H.new_conn ? "a new connection per request" : "keep-alive", H.nurls, H.nurls == 1 ? "" : "s",
           H.range ? ", random ranges" : "", H.verify ? ", verified" : "");
    printf("requests     %llu ok, %llu failed in %.2f s\n", (unsigned long long)H.ok,
           (unsigned long long)H.fail.total, secs);
    printf("throughput   %.1f req/s, %.1f MB/s (%.3f GB/s)\n", secs > 0 ? (double)H.ok / secs : 0,
           stats_mbps(H.bytes_ok, (uint64_t)(secs * 1e9)), stats_mbps(H.bytes_ok, (uint64_t)(secs * 1e9)) / 1000);
    if (rx > H.bytes_ok) /* requests cut at the deadline, or failed part-way */
        printf("received     %.1f MB in all, %.1f MB/s (also requests unfinished at the end or failed)\n",
               (double)rx / 1e6, stats_mbps(rx, (uint64_t)(secs * 1e9)));
    print_hist("latency", &H.lat);
    print_hist("first byte", &H.ttfb);
    printf("connections  %llu opened (%.0f/s), %llu idle ones closed by the server and reopened\n",
           (unsigned long long)hc.connects, secs > 0 ? (double)hc.connects / secs : 0,
           (unsigned long long)hc.reconnects_idle);
    if (nfin) {
        char a[16], b[16], c[16];
        printf("finish       first %s, median %s, last %s: spread %.1f%% of the last\n",
               stats_fmt_ns(a, sizeof(a), fin.min, 1), stats_fmt_ns(b, sizeof(b), stats_hist_pct(&fin, 0.5), 1),
               stats_fmt_ns(c, sizeof(c), fin.max, 1), spread);
    }
    printf("client cpu   %.2f s (%.1f us per request)\n", cpu, H.ok ? cpu * 1e6 / (double)H.ok : 0);
    failures_report(&H.fail, http_kind_name);
    double mbps = stats_mbps(H.bytes_ok, (uint64_t)(secs * 1e9));
    const struct jfield jf[] = {
        JS("mode", "http"), JU("connections", H.conns), JB("keepalive", !H.new_conn), JU("urls", H.nurls),
        JU("range", H.range), JF("seconds", 3, secs), JU("ok", H.ok), JU("failed", H.fail.total),
        JF("req_per_s", 1, secs > 0 ? (double)H.ok / secs : 0), JF("mb_per_s", 2, mbps), JU("bytes", H.bytes_ok),
        JU("bytes_received", rx), JF("mb_per_s_received", 2, stats_mbps(rx, (uint64_t)(secs * 1e9))),
        JU("connects", hc.connects), JF("client_cpu_s", 3, cpu), JH("latency", &H.lat), JH("first_byte", &H.ttfb),
        JH("finish", &fin), JF("finish_spread_pct", 2, spread), JFAIL(&H.fail, http_kind_name),
    };
    bool files_ok = json_write("http", H.json, jf, sizeof(jf) / sizeof(jf[0]));
    free(H.cl);
    free(H.urls);
    verify_refs_free();
    ev_fini();
    return H.fail.total == 0 && !g_stop && H.ok > 0 && files_ok ? LOAD_EXIT_OK : LOAD_EXIT_FAILED;
}

/* ======================================================================== */
/* tftp                                                                      */
/* ======================================================================== */

void tftp_mode_usage(FILE *f)
{
    fprintf(f,
            "bootstorm-load tftp [options]: TFTP benchmark client (N transfers at once, back to back)\n"
            "  --server ADDR           [127.0.0.1]\n"
            "  --port PORT             [69]\n"
            "  --file NAME             file to read (repeatable: transfers take them in turn) [required]\n"
            "  --clients N             transfers in flight at once [1]\n"
            "  --blksize N             blksize asked (0: none) [1468]\n"
            "  --windowsize N          windowsize asked (1: none, lock-step) [1]\n"
            "  --udp-gro BOOL          receive a TFTP window the server sent as one UDP GSO datagram\n"
            "                          whole (UDP_GRO), as a NIC with segmentation offload sends it;\n"
            "                          no: the kernel splits it on the way in, which on loopback is the\n"
            "                          sending server's core [yes]\n"
            "  --tsize BOOL            ask tsize [yes]\n"
            "  --duration S            run this long (transfers in flight at the end are not counted)\n"
            "  --transfers N           or: this many transfers in all [default: --duration 10]\n"
            "  --timeout MS            first retransmission timeout, doubled [1000]\n"
            "  --retries N             retransmissions without progress before failing [5]\n"
            "  --dally MS              stay after the final ACK to re-ACK a repeated last block [0]\n"
            "  --source-base ADDR      bind transfers to ADDR, ADDR+1, ... (distinct clients) [unbound]\n"
            "  --sources N             how many source addresses [256]\n"
            "  --tree DIR              local copy of the TFTP root: sizes compared with it\n"
            "  --verify[=KIND]         also checksum against --tree: crc32c, sha256 [crc32c]\n"
            "  --io auto|uring|epoll   datagram I/O: io_uring batches the per-block receives and sends\n"
            "                          into one system call per loop turn [auto: io_uring if available]\n"
            "  --json FILE             results as JSON\n"
            "  --progress BOOL         live progress line [yes on a terminal]\n");
}

struct tclient {
    unsigned id;
    struct tftpc *x;
};

static struct {
    const char **files;
    const struct verify_ref **refs;
    unsigned nfiles, next_file;
    unsigned clients;
    uint32_t blksize, window, timeout_ms, retries, dally_ms;
    bool tsize, udp_gro;
    double duration_s;
    uint64_t transfers, started;
    struct sockaddr_in server;
    struct sources src;
    enum verify_kind verify;
    const char *tree, *json;
    struct tclient *cl;
    unsigned active;
    bool stopping;
    uint64_t t0, deadline;
    uint64_t ok, bytes_ok, retransmits, timeouts, dups, gaps, strays;
    uint32_t neg_blksize, neg_window;
    struct stats_hist lat;
    struct failures fail;
    struct ev_timer tick;
    uint64_t last_ok, last_bytes, last_tick;
    uint64_t rx0, rx_end; /* in-order bytes of all transfers, finished or not: at t0, at the deadline */
    bool rx_ended;
} T;

static const char *tftp_kind_name(int k) { return tftpc_status_name((enum tftpc_status)k); }

static void t_start(struct tclient *cl);

static void t_done(void *arg, struct tftpc_result *r)
{
    struct tclient *cl = arg;
    cl->x = NULL;
    bool late = T.duration_s > 0 && r->end_ns > T.deadline;
    if (!late) {
        T.retransmits += r->retransmits;
        T.timeouts += r->timeouts;
        T.dups += r->dup_blocks;
        T.gaps += r->gaps;
        T.strays += r->strays;
        if (r->status == TFTPC_OK) {
            T.ok++;
            T.bytes_ok += r->bytes;
            stats_hist_add(&T.lat, r->end_ns - r->start_ns);
            T.neg_blksize = r->blksize;
            T.neg_window = r->windowsize;
        } else {
            failure_add(&T.fail, r->status, r->reason);
        }
    }
    if (T.stopping || (T.transfers && T.started >= T.transfers)) {
        T.active--;
        return;
    }
    t_start(cl);
}

static void t_start(struct tclient *cl)
{
    unsigned fi = T.next_file++ % T.nfiles;
    struct tftpc_params p = {
        .server = T.server,
        .bind_addr = source_next(&T.src),
        .file = T.files[fi],
        .blksize = T.blksize,
        .windowsize = T.window,
        .tsize = T.tsize,
        .timeout_ms = T.timeout_ms,
        .max_timeout_ms = T.timeout_ms * 8,
        .retries = T.retries,
        .dally_ms = T.dally_ms,
        .verify = T.verify,
        .ref = T.refs[fi],
        .udp_gro = T.udp_gro,
    };
    char why[160];
    T.started++;
    cl->x = tftpc_start(&p, t_done, cl, why, sizeof(why));
    if (!cl->x) {
        failure_add(&T.fail, TFTPC_SOCKET, why);
        T.active--;
    }
}

static void t_tick(struct ev_timer *t)
{
    uint64_t now = ev_now();
    double dt = (double)(now - T.last_tick) / 1e9;
    if (dt > 0)
        load_progress("%6.1fs  %u transfers  %.0f/s  %.1f MB/s  ok %llu failed %llu", (double)(now - T.t0) / 1e9,
                      T.active, (double)(T.ok - T.last_ok) / dt, (double)(tftpc_total_bytes() - T.last_bytes) / 1e6 / dt,
                      (unsigned long long)T.ok, (unsigned long long)T.fail.total);
    T.last_ok = T.ok;
    T.last_bytes = tftpc_total_bytes();
    T.last_tick = now;
    ev_timer_arm(&T.tick, 500 * EV_MS);
}

static bool t_opt_file(const char *a, char *why, size_t wl)
{
    if (!*a || strlen(a) > 255) {
        snprintf(why, wl, "--file '%s': 1-255 bytes", a);
        return false;
    }
    T.files[T.nfiles++] = a; /* T.files has room for every argument */
    return true;
}

static bool t_opt_blksize(const char *a, char *why, size_t wl)
{
    uint64_t v;
    if (!load_parse_u64(a, 0, 65464, &v)) {
        snprintf(why, wl, "--blksize %s: want 0-65464", a);
        return false;
    }
    if (v && v < 8) { /* RFC 2348: 8-65464 */
        snprintf(why, wl, "--blksize %s: 0 or 8-65464", a);
        return false;
    }
    T.blksize = (uint32_t)v;
    return true;
}

int tftp_mode_main(int argc, char **argv)
{
    enum load_io io = LOAD_IO_AUTO;
    memset(&T, 0, sizeof(T));
    uint32_t server;
    load_parse_ip("127.0.0.1", &server);
    unsigned port = 69;
    T.clients = 1;
    T.blksize = 1468;
    T.window = 1;
    T.tsize = true;
    T.udp_gro = true;
    T.timeout_ms = 1000;
    T.retries = 5;
    T.src.n = 256;
    int progress = -1;
    T.files = calloc((size_t)argc, sizeof(*T.files));
    if (!T.files)
        return LOAD_EXIT_USAGE;
    const struct opt_def defs[] = {
        OPT_DEF("server", OPT_IP, &server),
        OPT_DEF("port", OPT_UINT, &port, .lo = 1, .hi = 65535),
        OPT_DEF("file", OPT_CALL, NULL, .call = t_opt_file),
        OPT_DEF("clients", OPT_UINT, &T.clients, .lo = 1, .hi = 100000),
        OPT_DEF("blksize", OPT_CALL, NULL, .call = t_opt_blksize),
        OPT_DEF("windowsize", OPT_UINT, &T.window, .lo = 1, .hi = 32767),
        OPT_DEF("udp-gro", OPT_BOOL, &T.udp_gro),
        OPT_DEF("tsize", OPT_BOOL, &T.tsize),
        OPT_DEF("duration", OPT_SECONDS, &T.duration_s),
        OPT_DEF("transfers", OPT_U64, &T.transfers, .lo = 1, .hi = UINT32_MAX),
        OPT_DEF("timeout", OPT_UINT, &T.timeout_ms, .lo = 10, .hi = 60000),
        OPT_DEF("retries", OPT_UINT, &T.retries, .lo = 0, .hi = 100),
        OPT_DEF("dally", OPT_UINT, &T.dally_ms, .lo = 0, .hi = 10000),
        OPT_DEF("source-base", OPT_IP, &T.src.base),
        OPT_DEF("sources", OPT_UINT, &T.src.n, .lo = 1, .hi = 1000000),
        OPT_DEF("tree", OPT_STR, &T.tree),
        OPT_DEF("verify", OPT_VERIFY, &T.verify),
        OPT_DEF("json", OPT_STR, &T.json),
        OPT_DEF("progress", OPT_TRI, &progress),
        OPT_DEF("io", OPT_IO, &io),
        OPT_END,
    };
    enum opts_result pr = opts_parse("tftp", defs, argc, argv, tftp_mode_usage);
    if (pr != OPTS_OK) {
        free(T.files);
        return pr == OPTS_HELP ? LOAD_EXIT_OK : LOAD_EXIT_USAGE;
    }
    if (!T.nfiles)
        return load_usage_error("tftp", "needs --file NAME");
    if (T.duration_s > 0 && T.transfers)
        return load_usage_error("tftp", "give --duration or --transfers, not both");
    if (!T.transfers && T.duration_s <= 0)
        T.duration_s = 10;
    if (T.verify != VERIFY_NONE && !T.tree)
        return load_usage_error("tftp", "--verify needs --tree DIR");
    T.server = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = server};
    T.refs = calloc(T.nfiles, sizeof(*T.refs));
    if (!T.refs)
        return LOAD_EXIT_USAGE;
    if (T.tree && T.verify != VERIFY_NONE)
        fprintf(stderr, "bootstorm-load tftp: computing %s of the files under %s ...\n", verify_kind_name(T.verify),
                T.tree);
    for (unsigned i = 0; i < T.nfiles; i++)
        T.refs[i] = T.tree ? verify_ref_get(T.tree, T.files[i][0] == '/' ? T.files[i] + 1 : T.files[i], T.verify) : NULL;

    ev_raise_nofile();
    if (ev_init() != EV_OK) {
        fprintf(stderr, "bootstorm-load tftp: epoll: %s\n", strerror(errno));
        return LOAD_EXIT_USAGE;
    }
    if (!load_io_setup("tftp", io, T.blksize, T.window, T.udp_gro))
        return LOAD_EXIT_USAGE;
    install_signals();
    load_progress_init(progress);
    stats_hist_init(&T.lat);
    T.cl = calloc(T.clients, sizeof(*T.cl));
    if (!T.cl)
        return LOAD_EXIT_USAGE;
    double cpu0 = cpu_seconds();
    T.t0 = ev_refresh();
    T.last_tick = T.t0;
    T.rx0 = T.last_bytes = tftpc_total_bytes();
    T.deadline = T.duration_s > 0 ? T.t0 + (uint64_t)(T.duration_s * 1e9) : UINT64_MAX;
    T.tick.fn = t_tick;
    if (load_progress_on())
        ev_timer_arm(&T.tick, 500 * EV_MS);
    T.active = T.clients;
    for (unsigned i = 0; i < T.clients; i++) {
        T.cl[i].id = i;
        if (T.transfers && T.started >= T.transfers) {
            T.active--;
            continue;
        }
        t_start(&T.cl[i]);
    }
    while (T.active && !g_stop) {
        uint64_t now = ev_now();
        if (now >= T.deadline) {
            T.stopping = true;
            T.rx_end = tftpc_total_bytes();
            T.rx_ended = true;
            for (unsigned i = 0; i < T.clients; i++) /* in flight at the deadline: not counted */
                if (T.cl[i].x) {
                    tftpc_abort(T.cl[i].x);
                    T.cl[i].x = NULL;
                    T.active--;
                }
            break;
        }
        uint64_t wait = T.deadline - now;
        ev_run_once(wait < 200 * EV_MS ? wait : 200 * EV_MS);
    }
    uint64_t end = ev_refresh();
    double cpu = cpu_seconds() - cpu0;
    uint64_t rx = (T.rx_ended ? T.rx_end : tftpc_total_bytes()) - T.rx0;
    load_progress_clear();
    for (unsigned i = 0; i < T.clients; i++)
        if (T.cl[i].x)
            tftpc_abort(T.cl[i].x);
    while (tftpc_live() && ev_run_once(20 * EV_MS) == EV_OK) /* dallies */
        ;
    double secs = (double)((T.duration_s > 0 && T.deadline < end ? T.deadline : end) - T.t0) / 1e9;
    char srv[16];
    printf("tftp: %u client%s, %s:%u, blksize %u, windowsize %u%s (negotiated %u/%u), %u file%s, %s\n", T.clients,
           T.clients == 1 ? "" : "s", load_ip_str(server, srv), port, T.blksize, T.window, T.tsize ? ", tsize" : "",
           T.neg_blksize, T.neg_window, T.nfiles, T.nfiles == 1 ? "" : "s", load_io_name());
    printf("transfers    %llu ok, %llu failed in %.2f s\n", (unsigned long long)T.ok, (unsigned long long)T.fail.total,
           secs);
    printf("throughput   %.1f transfers/s, %.1f MB/s\n", secs > 0 ? (double)T.ok / secs : 0,
           stats_mbps(T.bytes_ok, (uint64_t)(secs * 1e9)));
    if (rx > T.bytes_ok) /* transfers cut at the deadline, or failed part-way */
        printf("received     %.1f MB in all, %.1f MB/s (also transfers unfinished at the end or failed)\n",
               (double)rx / 1e6, stats_mbps(rx, (uint64_t)(secs * 1e9)));
    print_hist("time", &T.lat);
    printf("recovery     %llu retransmissions, %llu timeouts, %llu duplicate blocks, %llu gaps, %llu strays\n",
           (unsigned long long)T.retransmits, (unsigned long long)T.timeouts, (unsigned long long)T.dups,
           (unsigned long long)T.gaps, (unsigned long long)T.strays);
    printf("client cpu   %.2f s (%.2f s per GB)\n", cpu, T.bytes_ok ? cpu / ((double)T.bytes_ok / 1e9) : 0);
    if (T.udp_gro && T.window > 1)
        printf("udp gro      %llu windows arrived whole (UDP_GRO) and were split here\n",
               (unsigned long long)ev_dgram_gro_runs());
    failures_report(&T.fail, tftp_kind_name);
    const struct jfield jf[] = {
        JS("mode", "tftp"), JU("clients", T.clients), JU("blksize", T.blksize), JU("windowsize", T.window),
        JU("negotiated_blksize", T.neg_blksize), JU("negotiated_windowsize", T.neg_window), JF("seconds", 3, secs),
        JU("ok", T.ok), JU("failed", T.fail.total), JF("transfers_per_s", 2, secs > 0 ? (double)T.ok / secs : 0),
        JF("mb_per_s", 2, stats_mbps(T.bytes_ok, (uint64_t)(secs * 1e9))), JU("bytes", T.bytes_ok),
        JU("bytes_received", rx), JF("mb_per_s_received", 2, stats_mbps(rx, (uint64_t)(secs * 1e9))),
        JU("retransmits", T.retransmits), JU("timeouts", T.timeouts), JU("dup_blocks", T.dups), JU("gaps", T.gaps),
        JU("strays", T.strays), JU("udp_gro_runs", ev_dgram_gro_runs()), JF("client_cpu_s", 3, cpu), JH("time", &T.lat), JFAIL(&T.fail, tftp_kind_name),
    };
    bool files_ok = json_write("tftp", T.json, jf, sizeof(jf) / sizeof(jf[0]));
    free(T.cl);
    free(T.refs);
    free(T.files);
    verify_refs_free();
    ev_fini();
    return T.fail.total == 0 && !g_stop && T.ok > 0 && files_ok ? LOAD_EXIT_OK : LOAD_EXIT_FAILED;
}

/* ======================================================================== */
/* dhcp                                                                      */
/* ======================================================================== */

void dhcp_mode_usage(FILE *f)
{
    fprintf(f,
            "bootstorm-load dhcp [options]: DORA benchmark as a relay agent (no broadcast needed)\n"
            "  --server ADDR           [127.0.0.1]\n"
            "  --port PORT             the server's DHCP port [67]\n"
            "  --giaddr ADDR           relay address in every request; replies come to it [127.77.0.1]\n"
            "  --relay-port PORT       port bound on --giaddr [67]\n"
            "  --rate R                new DORA exchanges started per second; 0: closed loop [1000]\n"
            "  --outstanding N         closed loop: exchanges kept in flight [256]\n"
            "  --duration S            [10]\n"
            "  --clients N             distinct MACs, reused round-robin; 0: a new MAC every time [0]\n"
            "  --mac-base MAC          first MAC [52:54:01:00:00:00]\n"
            "  --timeout MS            an exchange not ACKed in this long counts as dropped [1000]\n"
            "  --release BOOL          send RELEASE after the ACK (keeps a small pool from running out) [no]\n"
            "  --arch bios|efi64       option 93 sent [bios]\n"
            "  --json FILE             results as JSON\n"
            "  --progress BOOL         live progress line [yes on a terminal]\n"
            "  No retransmissions: a lost packet is a dropped exchange, as perfdhcp counts it.\n");
}

enum { DX_FREE, DX_DISCOVER, DX_REQUEST };
struct dxchg {
    struct ev_timer timer;
    uint8_t state;
    uint16_t gen;
    uint8_t mac[6];
    uint32_t offered, server_id, xid;
    uint64_t t_start, t_offer;
    uint32_t next_free;
};

static struct {
    struct dhcpc_relay relay;
    struct dxchg *x;
    uint32_t nslots, free_head, inflight;
    double rate, duration_s;
    uint32_t outstanding, timeout_ms;
    uint64_t clients, mac_next;
    uint8_t mac_base[6];
    bool release;
    uint16_t arch;
    const char *json;
    uint64_t t0, deadline;
    uint64_t started, acked, dropped_offer, dropped_ack, naks, no_slot, late;
    struct stats_hist dora, offer;
    struct ev_timer pace, tick;
    uint64_t last_acked, last_tick;
    bool sending;
} D;

#define DX_SLOT_BITS 20

static void dx_free(uint32_t i)
{
    struct dxchg *x = &D.x[i];
    ev_timer_cancel(&x->timer);
    x->state = DX_FREE;
    x->gen++;
    x->next_free = D.free_head;
    D.free_head = i;
    D.inflight--;
}

static void dx_send(struct dxchg *x, uint8_t type)
{
    struct dhcpc_identity id = {.arch = D.arch, .role = DHCPC_FIRMWARE};
    memcpy(id.mac, x->mac, 6);
    memcpy(id.uuid, (uint8_t[]){0x44, 0x48, 0x43, 0x50, 0, 0, 0x40, 0, 0x80, 0}, 10);
    memcpy(id.uuid + 10, x->mac, 6);
    uint8_t buf[600];
    size_t len;
    if (dhcpc_build(buf, sizeof(buf), type, x->xid, &id, D.relay.giaddr, type == DHCP_DISCOVER ? 0 : x->offered,
                    type == DHCP_DISCOVER ? 0 : x->server_id, 0, &len) == DHCP_OK)
        dhcpc_relay_send(&D.relay, buf, len);
}

static void dx_start(void);

static void dx_timeout(struct ev_timer *t)
{
    struct dxchg *x = t->owner;
    if (x->state == DX_DISCOVER)
        D.dropped_offer++;
    else
        D.dropped_ack++;
    dx_free((uint32_t)(x - D.x));
    if (D.rate <= 0 && D.sending)
        dx_start();
}

static void dx_start(void)
{
    if (D.free_head == UINT32_MAX) {
        D.no_slot++;
        return;
    }
    uint32_t i = D.free_head;
    struct dxchg *x = &D.x[i];
    D.free_head = x->next_free;
    D.inflight++;
    uint64_t n = D.clients ? D.mac_next++ % D.clients : D.mac_next++;
    load_mac_add(D.mac_base, n, x->mac);
    x->state = DX_DISCOVER;
    x->xid = (uint32_t)(x->gen & 0xfff) << DX_SLOT_BITS | i;
    x->t_start = ev_refresh();
    x->timer.fn = dx_timeout;
    x->timer.owner = x;
    D.started++;
    dx_send(x, DHCP_DISCOVER);
    ev_timer_arm(&x->timer, (uint64_t)D.timeout_ms * EV_MS);
}

static void dx_reply(void *arg, const struct dhcp_msg *m)
{
    uint32_t i = m->xid & ((1u << DX_SLOT_BITS) - 1);
    if (i >= D.nslots) {
        D.late++;
        return;
    }
    struct dxchg *x = &D.x[i];
    if (x->state == DX_FREE || x->xid != m->xid || m->hlen != 6 || memcmp(m->chaddr, x->mac, 6)) {
        D.late++; /* answered after we gave up on it, or not ours */
        return;
    }
    if (m->msg_type == DHCP_OFFER && x->state == DX_DISCOVER) {
        x->offered = m->yiaddr;
        if (!dhcp_get_server_id(m, &x->server_id))
            x->server_id = 0;
        x->t_offer = ev_now();
        stats_hist_add(&D.offer, x->t_offer - x->t_start);
        x->state = DX_REQUEST;
        dx_send(x, DHCP_REQUEST);
        return;
    }
    if (x->state != DX_REQUEST)
        return;
    if (m->msg_type == DHCP_ACK) {
        D.acked++;
        stats_hist_add(&D.dora, ev_now() - x->t_start);
        if (D.release) {
            x->state = DX_REQUEST;
            uint8_t buf[600];
            size_t len;
            struct dhcpc_identity id = {.arch = D.arch, .role = DHCPC_FIRMWARE};
            memcpy(id.mac, x->mac, 6);
            if (dhcpc_build(buf, sizeof(buf), DHCP_RELEASE, x->xid ^ 0x80000000u, &id, D.relay.giaddr, 0,
                            x->server_id, 0, &len) == DHCP_OK) {
                /* RFC 2131 §4.4.6: ciaddr carries the address given back */
                memcpy(buf + 12, &x->offered, 4);
                dhcpc_relay_send(&D.relay, buf, len);
            }
        }
    } else if (m->msg_type == DHCP_NAK) {
        D.naks++;
    } else {
        return;
    }
    dx_free(i);
    if (D.rate <= 0 && D.sending)
        dx_start();
}

/* Open loop: start what the rate owes since t0, every millisecond. */
static void dx_pace(struct ev_timer *t)
{
    uint64_t now = ev_now();
    bool last = now >= D.deadline; /* then exactly rate x duration in all */
    uint64_t owed = (uint64_t)(D.rate * (double)((last ? D.deadline : now) - D.t0) / 1e9 + 1e-9);
    while (D.started + D.no_slot < owed)
        dx_start();
    if (last) {
        D.sending = false;
        return;
    }
    ev_timer_arm_at(&D.pace, now + EV_MS < D.deadline ? now + EV_MS : D.deadline);
}

static void dx_tick(struct ev_timer *t)
{
    uint64_t now = ev_now();
    double dt = (double)(now - D.last_tick) / 1e9;
    if (dt > 0)
        load_progress("%6.1fs  %.0f DORA/s  in flight %u  acked %llu  dropped %llu  nak %llu",
                      (double)(now - D.t0) / 1e9, (double)(D.acked - D.last_acked) / dt, D.inflight,
                      (unsigned long long)D.acked, (unsigned long long)(D.dropped_offer + D.dropped_ack),
                      (unsigned long long)D.naks);
    D.last_acked = D.acked;
    D.last_tick = now;
    ev_timer_arm(&D.tick, 500 * EV_MS);
}

int dhcp_mode_main(int argc, char **argv)
{
    static const char *const arches[] = {"bios", "efi64", NULL};
    static const unsigned arch_codes[] = {0, 7}; /* option 93 (RFC 4578 §2.1) */
    memset(&D, 0, sizeof(D));
    uint32_t server, giaddr;
    load_parse_ip("127.0.0.1", &server);
    load_parse_ip("127.77.0.1", &giaddr);
    unsigned port = 67, rport = 67, arch = 0;
    uint64_t rate = 1000;
    D.outstanding = 256;
    D.duration_s = 10;
    D.timeout_ms = 1000;
    memcpy(D.mac_base, (uint8_t[]){0x52, 0x54, 0x01, 0, 0, 0}, 6);
    int progress = -1;
    const struct opt_def defs[] = {
        OPT_DEF("server", OPT_IP, &server),
        OPT_DEF("port", OPT_UINT, &port, .lo = 1, .hi = 65535),
        OPT_DEF("giaddr", OPT_IP, &giaddr),
        OPT_DEF("relay-port", OPT_UINT, &rport, .lo = 1, .hi = 65535),
        OPT_DEF("rate", OPT_U64, &rate, .lo = 0, .hi = 10000000),
        OPT_DEF("outstanding", OPT_UINT, &D.outstanding, .lo = 1, .hi = 1u << DX_SLOT_BITS),
        OPT_DEF("duration", OPT_SECONDS, &D.duration_s),
        OPT_DEF("clients", OPT_U64, &D.clients, .lo = 0, .hi = 1ull << 40),
        OPT_DEF("mac-base", OPT_MAC, D.mac_base),
        OPT_DEF("timeout", OPT_UINT, &D.timeout_ms, .lo = 10, .hi = 60000),
        OPT_DEF("release", OPT_BOOL, &D.release),
        OPT_DEF("arch", OPT_CHOICE, &arch, .choices = arches, .values = arch_codes),
        OPT_DEF("json", OPT_STR, &D.json),
        OPT_DEF("progress", OPT_TRI, &progress),
        OPT_END,
    };
    enum opts_result pr = opts_parse("dhcp", defs, argc, argv, dhcp_mode_usage);
    if (pr != OPTS_OK)
        return pr == OPTS_HELP ? LOAD_EXIT_OK : LOAD_EXIT_USAGE;
    D.rate = (double)rate;
    D.arch = (uint16_t)arch;
    /* slots: what can be in flight within one timeout, with room to spare */
    uint64_t slots = D.rate > 0 ? (uint64_t)(D.rate * D.timeout_ms / 1000.0 * 2) + 64 : D.outstanding;
    if (slots > (1u << DX_SLOT_BITS))
        slots = 1u << DX_SLOT_BITS;
    D.nslots = (uint32_t)slots;
    D.x = calloc(D.nslots, sizeof(*D.x));
    if (!D.x)
        return LOAD_EXIT_USAGE;
    D.free_head = UINT32_MAX;
    for (uint32_t i = D.nslots; i-- > 0;) {
        D.x[i].next_free = D.free_head;
        D.free_head = i;
    }
    D.inflight = 0;
    if (ev_init() != EV_OK) {
        fprintf(stderr, "bootstorm-load dhcp: epoll: %s\n", strerror(errno));
        return LOAD_EXIT_USAGE;
    }
    install_signals();
    load_progress_init(progress);
    stats_hist_init(&D.dora);
    stats_hist_init(&D.offer);
    char why[256];
    struct sockaddr_in srv = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = server};
    if (dhcpc_relay_open(&D.relay, giaddr, (uint16_t)rport, &srv, dx_reply, NULL, why, sizeof(why)) != 0) {
        fprintf(stderr, "bootstorm-load dhcp: %s\n", why);
        free(D.x);
        ev_fini();
        return LOAD_EXIT_USAGE;
    }
    double cpu0 = cpu_seconds();
    D.t0 = ev_refresh();
    D.last_tick = D.t0;
    D.deadline = D.t0 + (uint64_t)(D.duration_s * 1e9);
    D.sending = true;
    D.pace.fn = dx_pace;
    D.tick.fn = dx_tick;
    if (load_progress_on())
        ev_timer_arm(&D.tick, 500 * EV_MS);
    if (D.rate > 0)
        ev_timer_arm(&D.pace, 0);
    else
        for (uint32_t i = 0; i < D.outstanding; i++)
            dx_start();
    while (!g_stop) {
        uint64_t now = ev_now();
        if (now >= D.deadline && D.rate <= 0)
            D.sending = false;
        if (!D.sending && !D.inflight)
            break;
        ev_run_once(100 * EV_MS);
    }
    double cpu = cpu_seconds() - cpu0;
    load_progress_clear();
    uint64_t dropped = D.dropped_offer + D.dropped_ack;
    double secs = D.duration_s;
    char s[16], g[16];
    printf("dhcp: %s:%u via relay %s, %s, %.1f s, %s\n", load_ip_str(server, s), port, load_ip_str(giaddr, g),
           D.rate > 0 ? "open loop" : "closed loop", secs, D.clients ? "MACs reused" : "every client new");
    if (D.rate > 0)
        printf("offered      %.0f DORA/s\n", D.rate);
    else
        printf("outstanding  %u\n", D.outstanding);
    printf("completed    %llu of %llu started: %.1f DORA/s\n", (unsigned long long)D.acked,
           (unsigned long long)D.started, (double)D.acked / secs);
    printf("dropped      %llu (%.3f%%): %llu without OFFER, %llu without ACK; %llu NAK; %llu late replies\n",
           (unsigned long long)dropped, D.started ? 100.0 * (double)dropped / (double)D.started : 0,
           (unsigned long long)D.dropped_offer, (unsigned long long)D.dropped_ack, (unsigned long long)D.naks,
           (unsigned long long)D.late);
    if (D.no_slot)
        printf("not started  %llu (no free slot: the server is far behind)\n", (unsigned long long)D.no_slot);
    print_hist("DORA", &D.dora);
    print_hist("DISCOVER→OFFER", &D.offer);
    printf("client cpu   %.2f s (%.1f us per DORA); packets sent %llu, received %llu, malformed %llu\n", cpu,
           D.acked ? cpu * 1e6 / (double)D.acked : 0, (unsigned long long)D.relay.sent,
           (unsigned long long)D.relay.received, (unsigned long long)D.relay.malformed);
    double drop_pct = D.started ? 100.0 * (double)dropped / (double)D.started : 0;
    const struct jfield jf[] = {
        JS("mode", "dhcp"), JF("rate", 0, D.rate), JU("outstanding", D.outstanding), JF("seconds", 3, secs),
        JU("started", D.started), JU("acked", D.acked), JF("dora_per_s", 1, (double)D.acked / secs),
        JU("dropped", dropped), JF("dropped_pct", 4, drop_pct), JU("dropped_offer", D.dropped_offer),
        JU("dropped_ack", D.dropped_ack), JU("naks", D.naks), JU("late", D.late), JU("no_slot", D.no_slot),
        JF("client_cpu_s", 3, cpu), JH("dora", &D.dora), JH("offer", &D.offer),
    };
    bool files_ok = json_write("dhcp", D.json, jf, sizeof(jf) / sizeof(jf[0]));
    dhcpc_relay_close(&D.relay);
    free(D.x);
    ev_fini();
    return dropped == 0 && D.naks == 0 && D.no_slot == 0 && D.acked > 0 && !g_stop && files_ok ? LOAD_EXIT_OK
                                                                                               : LOAD_EXIT_FAILED;
}
