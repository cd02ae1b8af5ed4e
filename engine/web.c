/* engine/web.c — see web.h. */
#include "engine/web.h"
#include "engine/metrics.h"
#include "engine/tftp_service.h"
#include "engine/tracker.h"
#include "io/loop.h"
#include "proto/http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EVENTS_PER_READ 256
#define PUMP_MS 200            /* a worker with streams looks at the ring at least this often */
/* Bytes of events made per turn: a burst (a thousand hosts changing at once)
 * goes out over several turns, so that a reader that keeps up never has more
 * than this unsent from one turn and is not mistaken for a slow one. */
#define PUMP_BUDGET (64 * 1024)
#define PUMP_AGAIN_MS 1
#define JSON_HOST_MAX 1024     /* one host object fits (hostname, rack and reason are bounded) */

struct web {
    struct web_config cfg;
};

struct web_worker {
    struct web *w;
    unsigned index;
    struct io_loop *loop;
    struct http_service *http;
    struct tftp_service *tftp;
    struct tracker_cursor cur;
    struct io_timer timer;
    uint64_t last_publish, last_heartbeat;
    uint32_t ids[EVENTS_PER_READ];
    char *buf;
    size_t len, cap;
};

int web_create(struct web **out, const struct web_config *cfg)
{
    struct web *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->cfg = *cfg;
    if (!w->cfg.heartbeat_ms)
        w->cfg.heartbeat_ms = 15000;
    *out = w;
    return 0;
}

void web_free(struct web *w) { free(w); }

/* ---- text building ------------------------------------------------------------ */

/* A growable buffer; after a failed allocation it stays failed (oom). */
struct sb {
    char *p;
    size_t len, cap;
    bool oom;
};

static bool sb_room(struct sb *b, size_t n)
{
    if (b->oom)
        return false;
    if (b->len + n + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

static void sb_add(struct sb *b, const char *s, size_t n)
{
    if (!sb_room(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void sb_printf(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sb *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !sb_room(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* A bounded writer: counts what it would write, writes what fits. */
struct bw {
    char *p;
    size_t cap, len;
};

static void bw_add(struct bw *w, const char *s, size_t n)
{
    if (w->len < w->cap) {
        size_t k = w->cap - w->len < n ? w->cap - w->len : n;
        memcpy(w->p + w->len, s, k);
    }
    w->len += n;
}

static void bw_str(struct bw *w, const char *s) { bw_add(w, s, strlen(s)); }

static void bw_printf(struct bw *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bw_printf(struct bw *w, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0)
        bw_add(w, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* RFC 8259 §7: quote, backslash and control characters escaped; other bytes
 * as they are (hostnames and racks come from the inventory as UTF-8). */
static void bw_json_str(struct bw *w, const char *s)
{
    bw_add(w, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\' || *p == '\n' || *p == '\r' || *p == '\t') {
            char e[2] = {'\\', *p == '\n' ? 'n' : *p == '\r' ? 'r' : *p == '\t' ? 't' : (char)*p};
            bw_add(w, e, 2);
        } else if (*p < 0x20 || *p == 0x7f) {
            char e[8];
            snprintf(e, sizeof(e), "\\u%04x", *p);
            bw_add(w, e, 6);
        } else {
            bw_add(w, (const char *)p, 1);
        }
    }
    bw_add(w, "\"", 1);
}

size_t web_host_json(char *out, size_t cap, const struct tracker_host *h)
{
    struct bw w = {out, cap, 0};
    char ip[INET_ADDRSTRLEN] = "";
    if (h->ip) {
        struct in_addr a = {htonl(h->ip)};
        inet_ntop(AF_INET, &a, ip, sizeof(ip));
    }
    bw_str(&w, "{\"mac\":");
    bw_json_str(&w, h->mac_str);
    bw_str(&w, ",\"hostname\":");
    bw_json_str(&w, h->hostname);
    bw_printf(&w, ",\"ip\":\"%s\",\"rack\":", ip);
    bw_json_str(&w, h->rack);
    bw_printf(&w, ",\"known\":%s,\"stage\":\"%s\",\"since\":%" PRIu64 ",\"progress\":%" PRIu64 ",\"seen\":%" PRIu64,
              h->known ? "true" : "false", tracker_stage_name(h->stage), h->since_ms, h->progress_ms, h->seen_ms);
    bw_printf(&w, ",\"bytes\":%" PRIu64 ",\"stalled\":%s,\"failed\":%s,\"error\":", h->bytes,
              h->stalled ? "true" : "false", h->failed ? "true" : "false");
    if (h->fail_ms) {
        bw_printf(&w, "{\"at\":%" PRIu64 ",\"kind\":\"%s\",\"reason\":", h->fail_ms, tracker_fail_name(h->fail_kind));
        bw_json_str(&w, h->fail_reason);
        bw_str(&w, "}");
    } else {
        bw_str(&w, "null");
    }
    bw_printf(&w, ",\"failures\":%" PRIu32 ",\"cycle\":%" PRIu32 ",\"v\":%" PRIu64 "}", h->failures, h->cycles,
              h->version);
    return w.len;
}

static void sb_host(struct sb *b, const struct tracker_host *h)
{
    if (!sb_room(b, JSON_HOST_MAX))
        return;
    size_t n = web_host_json(b->p + b->len, b->cap - b->len, h);
    if (n < b->cap - b->len) {
        b->len += n;
        b->p[b->len] = 0;
    } else if (sb_room(b, n)) { /* cannot happen with bounded fields; stay correct anyway */
        web_host_json(b->p + b->len, b->cap - b->len, h);
        b->len += n;
        b->p[b->len] = 0;
    }
}

/* ---- SSE framing ----------------------------------------------------------------- */

size_t web_sse_frame(char *out, size_t cap, const char *event, uint64_t id, const char *data, size_t len)
{
    struct bw w = {out, cap, 0};
    if (event && strpbrk(event, "\r\n"))
        return 0;
    if (id)
        bw_printf(&w, "id: %" PRIu64 "\n", id);
    if (event) {
        bw_str(&w, "event: ");
        bw_str(&w, event);
        bw_add(&w, "\n", 1);
    }
    /* every line of data is its own field, an empty one after a trailing
     * line end included, so the reader's data buffer is exactly data */
    for (size_t i = 0;;) {
        size_t j = i;
        while (j < len && data[j] != '\r' && data[j] != '\n')
            j++;
        bw_add(&w, "data: ", 6);
        bw_add(&w, data + i, j - i);
        bw_add(&w, "\n", 1);
        if (j >= len)
            break;
        if (data[j] == '\r' && j + 1 < len && data[j + 1] == '\n')
            j++;
        i = j + 1;
    }
    bw_add(&w, "\n", 1);
    return w.len;
}

/* ---- replies --------------------------------------------------------------------- */

static bool reply(struct http_dyn_response *resp, int status, const char *type, char *body, size_t len)
{
    resp->status = status;
    resp->content_type = type;
    resp->body = body;
    resp->body_len = body ? len : 0;
    if (!body && len) { /* out of memory building it */
        resp->status = 503;
        resp->content_type = "text/plain";
    }
    return true;
}

static bool replyf(struct http_dyn_response *resp, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool replyf(struct http_dyn_response *resp, int status, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    size_t len = (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1;
    char *body = malloc(len + 1);
    if (body)
        memcpy(body, tmp, len + 1);
    return reply(resp, status, "text/plain; charset=utf-8", body, len);
}

static bool reply_sb(struct http_dyn_response *resp, struct sb *b, const char *type)
{
    if (b->oom) {
        free(b->p);
        return replyf(resp, 503, "out of memory\n");
    }
    if (!b->p)
        sb_add(b, "", 0);
    return reply(resp, 200, type, b->p, b->len);
}

/* ---- /api/hosts ---------------------------------------------------------------------- */

/* Percent-decoding of a query value ('+' is a space, RFC 1866 forms); false on a bad escape. */
static bool url_decode(const char *in, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (i + 2 >= n)
                return false;
            if (!isxdigit((unsigned char)in[i + 1]) || !isxdigit((unsigned char)in[i + 2]))
                return false;
            char hex[3] = {in[i + 1], in[i + 2], 0};
            c = (char)strtol(hex, NULL, 16);
            if (!c)
                return false;
            i += 2;
        }
        if (o + 1 >= cap)
            return false;
        out[o++] = c;
    }
    out[o] = 0;
    return true;
}

struct filter {
    bool any_stage;
    bool stage[TRACKER_STAGE_COUNT];
    bool stalled, failed;
    bool has_rack;
    char rack[TRACKER_RACK_MAX];
};

/* "stage=a,b&rack=r"; err gets the reason on a bad query. */
static bool parse_filter(const char *q, struct filter *f, char *err, size_t errlen)
{
    memset(f, 0, sizeof(*f));
    while (*q) {
        const char *amp = strchr(q, '&');
        size_t n = amp ? (size_t)(amp - q) : strlen(q);
        const char *eq = memchr(q, '=', n);
        if (n) {
            if (!eq) {
                snprintf(err, errlen, "query parameter '%.*s' has no value", (int)(n > 40 ? 40 : n), q);
                return false;
            }
            size_t kn = (size_t)(eq - q);
            char val[256];
            if (!url_decode(eq + 1, n - kn - 1, val, sizeof(val))) {
                snprintf(err, errlen, "bad or too long value for '%.*s'", (int)(kn > 40 ? 40 : kn), q);
                return false;
            }
            if (kn == 5 && !strncmp(q, "stage", 5)) {
                char *save = NULL;
                for (char *tok = strtok_r(val, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                    int s = tracker_stage_parse(tok);
                    if (s >= 0)
                        f->stage[s] = true;
                    else if (!strcmp(tok, "stalled"))
                        f->stalled = true;
                    else if (!strcmp(tok, "failed"))
                        f->failed = true;
                    else {
                        snprintf(err, errlen, "unknown stage '%.60s' (a stage name, stalled or failed)", tok);
                        return false;
                    }
                    f->any_stage = true;
                }
            } else if (kn == 4 && !strncmp(q, "rack", 4)) {
                if (strlen(val) >= sizeof(f->rack)) {
                    snprintf(err, errlen, "rack name longer than %zu bytes", sizeof(f->rack) - 1);
                    return false;
                }
                f->has_rack = true;
                memcpy(f->rack, val, strlen(val) + 1);
            } else {
                snprintf(err, errlen, "unknown query parameter '%.*s' (stage, rack)", (int)(kn > 40 ? 40 : kn), q);
                return false;
            }
        }
        q += n + (amp ? 1 : 0);
    }
    return true;
}

static bool filter_match(const struct filter *f, const struct tracker_host *h)
{
    if (f->has_rack && strcmp(f->rack, h->rack) != 0)
        return false;
    if (!f->any_stage)
        return true;
    return f->stage[h->stage] || (f->stalled && h->stalled) || (f->failed && h->failed);
}

struct list_ctx {
    struct sb *b;
    const struct filter *f;
    struct tracker_counts counts;
    uint64_t listed;
};

static bool list_visit(void *ctx, const struct tracker_host *h)
{
    struct list_ctx *lc = ctx;
    lc->counts.hosts++;
    lc->counts.stage[h->stage]++;
    lc->counts.stalled += h->stalled;
    lc->counts.failed += h->failed;
    if (!filter_match(lc->f, h))
        return true;
    if (lc->listed++)
        sb_add(lc->b, ",", 1);
    sb_host(lc->b, h);
    return !lc->b->oom;
}

static bool api_hosts(struct web *w, const struct http_dyn_request *req, struct http_dyn_response *resp)
{
    struct filter f;
    char err[160];
    if (!parse_filter(req->query, &f, err, sizeof(err)))
        return replyf(resp, 400, "%s\n", err);
    struct sb hosts = {0};
    struct list_ctx lc = {.b = &hosts, .f = &f};
    tracker_foreach(w->cfg.tracker, list_visit, &lc);
    struct sb b = {0};
    sb_printf(&b, "{\"now\":%" PRIu64 ",\"stall_after_ms\":%" PRIu32 ",\"counts\":{", tracker_now_ms(),
              tracker_stall_after_ms(w->cfg.tracker));
    for (int s = 0; s < TRACKER_STAGE_COUNT; s++)
        sb_printf(&b, "\"%s\":%" PRIu64 ",", tracker_stage_name((enum tracker_stage)s), lc.counts.stage[s]);
    sb_printf(&b, "\"stalled\":%" PRIu64 ",\"failed\":%" PRIu64 ",\"hosts\":%" PRIu64 "},\"listed\":%" PRIu64
                  ",\"hosts\":[",
              lc.counts.stalled, lc.counts.failed, lc.counts.hosts, lc.listed);
    if (hosts.p)
        sb_add(&b, hosts.p, hosts.len);
    sb_add(&b, "]}\n", 3);
    b.oom |= hosts.oom;
    free(hosts.p);
    return reply_sb(resp, &b, "application/json");
}

static int cmp_timeline(const void *a, const void *b)
{
    const uint64_t *x = a, *y = b; /* {time, stage} */
    if (x[0] != y[0])
        return x[0] < y[0] ? -1 : 1;
    return x[1] < y[1] ? -1 : x[1] > y[1];
}

static bool api_host(struct web *w, const char *id, struct http_dyn_response *resp)
{
    uint8_t mac[6];
    struct tracker_host h;
    if (!tracker_resolve_id(w->cfg.tracker, id, mac) || !tracker_get(w->cfg.tracker, mac, &h))
        return replyf(resp, 404, "%.100s: no such host (not in the inventory, never seen)\n", id);
    struct sb b = {0};
    sb_host(&b, &h);
    if (b.len) /* reopen the object for the timeline */
        b.len--;
    uint64_t tl[TRACKER_STAGE_COUNT][2];
    size_t n = 0;
    for (int s = 1; s < TRACKER_STAGE_COUNT; s++)
        if (h.ts[s]) {
            tl[n][0] = h.ts[s];
            tl[n][1] = (uint64_t)s;
            n++;
        }
    qsort(tl, n, sizeof(tl[0]), cmp_timeline);
    bool installed = w->cfg.installed ? w->cfg.installed(w->cfg.installed_ctx, mac)
                                      : h.stage == TRACKER_STAGE_INSTALLED;
    sb_printf(&b, ",\"installed\":%s,\"timeline\":[", installed ? "true" : "false");
    for (size_t i = 0; i < n; i++)
        sb_printf(&b, "%s{\"stage\":\"%s\",\"at\":%" PRIu64 "}", i ? "," : "",
                  tracker_stage_name((enum tracker_stage)tl[i][1]), tl[i][0]);
    sb_add(&b, "]}\n", 3);
    return reply_sb(resp, &b, "application/json");
}

/* ---- the route ----------------------------------------------------------------------- */

/* "api/hosts/ID/ACTION" → id (copied) and action; false if not that shape. */
static bool split_host_path(const char *rest, char *id, size_t idlen, const char **action)
{
    const char *slash = strchr(rest, '/');
    size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
    if (!n || n >= idlen)
        return false;
    memcpy(id, rest, n);
    id[n] = 0;
    *action = slash ? slash + 1 : "";
    return true;
}

/* The host a request is about: a MAC in the path or query where the rollout
 * layer takes one, else the requesting address.  0 or a tracker result. */
static bool request_mac(struct web *w, const struct http_dyn_request *req, uint8_t mac[6])
{
    const char *id = NULL;
    char buf[128];
    if (!strncmp(req->path, "ks/", 3))
        id = req->path + 3;
    else if (!strncmp(req->path, "preseed/", 8)) {
        snprintf(buf, sizeof(buf), "%s", req->path + 8);
        size_t n = strlen(buf);
        if (n > 4 && !strcmp(buf + n - 4, ".cfg"))
            buf[n - 4] = 0;
        id = buf;
    } else if (!strcmp(req->path, "boot.ipxe")) {
        const char *m = strstr(req->query, "mac=");
        if (m && (m == req->query || m[-1] == '&')) {
            const char *e = strchr(m + 4, '&');
            size_t n = e ? (size_t)(e - m - 4) : strlen(m + 4);
            if (url_decode(m + 4, n, buf, sizeof(buf)))
                id = buf;
        }
    }
    if (id && *id && tracker_resolve_id(w->cfg.tracker, id, mac))
        return true;
    return tracker_mac_for_ip(w->cfg.tracker, ntohl(req->peer_ip), mac);
}

static bool not_ours(struct web *w, const struct http_dyn_request *req, struct http_dyn_response *resp)
{
    return w->cfg.next ? w->cfg.next(w->cfg.next_ctx, req, resp) : false;
}

static bool host_action(struct web *w, const struct http_dyn_request *req, struct http_dyn_response *resp,
                        const char *id, const char *action)
{
    uint8_t mac[6];
    bool have = tracker_resolve_id(w->cfg.tracker, id, mac);
    bool installed = !strcmp(action, "installed");
    if (installed && have)
        tracker_record(w->cfg.tracker, mac, TRACKER_STAGE_POSTINSTALL, 0);
    bool answered = not_ours(w, req, resp);
    if (!answered || !have)
        return answered;
    int st = resp->status ? resp->status : 200;
    if (installed) {
        if (st >= 200 && st < 300) {
            tracker_record(w->cfg.tracker, mac, TRACKER_STAGE_INSTALLED, 0);
        } else {
            char why[TRACKER_REASON_MAX];
            snprintf(why, sizeof(why), "installed callback refused: HTTP %d", st);
            tracker_fail(w->cfg.tracker, mac, TRACKER_FAIL_CALLBACK, why);
        }
    } else if (!strcmp(action, "reinstall") && st >= 200 && st < 300) {
        tracker_reset(w->cfg.tracker, mac);
    }
    return true;
}

bool web_route(void *ctx, const struct http_dyn_request *req, struct http_dyn_response *resp)
{
    struct web *w = ctx;
    const char *p = req->path;
    bool get = req->method == HTTP_METHOD_GET || req->method == HTTP_METHOD_HEAD;
    bool ours = !*p || !strcmp(p, "metrics") || !strcmp(p, "api/events") || !strcmp(p, "api/hosts");
    if (ours && !get)
        return replyf(resp, 405, "method not allowed: %s takes GET\n", *p ? p : "/");
    if (!*p) {
        char *body = malloc(web_dashboard_html_len);
        if (body)
            memcpy(body, web_dashboard_html, web_dashboard_html_len);
        return reply(resp, 200, "text/html; charset=utf-8", body, web_dashboard_html_len);
    }
    if (!strcmp(p, "metrics")) {
        if (!w->cfg.metrics)
            return replyf(resp, 404, "no metrics in this configuration\n");
        size_t len = 0;
        char *text = metrics_render(w->cfg.metrics, &len);
        return reply(resp, text ? 200 : 503, METRICS_CONTENT_TYPE, text, text ? len : 1);
    }
    if (!strcmp(p, "api/events")) {
        static const char hello[] = "retry: 2000\n: bootstorm host events\n\n";
        char *body = malloc(sizeof(hello) - 1);
        if (!body)
            return replyf(resp, 503, "out of memory\n");
        memcpy(body, hello, sizeof(hello) - 1);
        reply(resp, 200, "text/event-stream", body, sizeof(hello) - 1);
        resp->stream = true;
        return true;
    }
    if (!strcmp(p, "api/hosts"))
        return api_hosts(w, req, resp);
    if (!strncmp(p, "api/hosts/", 10)) {
        char id[128];
        const char *action;
        if (!split_host_path(p + 10, id, sizeof(id), &action))
            return not_ours(w, req, resp);
        if (!*action && get)
            return api_host(w, id, resp);
        if (req->method == HTTP_METHOD_POST)
            return host_action(w, req, resp, id, action);
        return not_ours(w, req, resp);
    }
    if (req->method == HTTP_METHOD_GET) {
        enum tracker_stage st = tracker_classify_path(p);
        uint8_t mac[6];
        if (st != TRACKER_STAGE_NONE && request_mac(w, req, mac))
            tracker_record(w->cfg.tracker, mac, st, 0);
    }
    return not_ours(w, req, resp);
}

/* Paths that are the operator's, not a host's: no bytes, no failures. */
static bool operator_path(const char *p) { return !*p || !strcmp(p, "metrics") || !strncmp(p, "api/", 4); }

void web_http_done(void *ctx, const struct http_done_info *d)
{
    struct web *w = ctx;
    if (operator_path(d->path))
        return;
    uint32_t ip = ntohl(d->peer_ip);
    if (d->status < 400) {
        if (d->bytes)
            tracker_record_ip(w->cfg.tracker, ip, TRACKER_STAGE_NONE, d->bytes);
        return;
    }
    if (!d->final)
        return;
    enum tracker_stage st = tracker_classify_path(d->path);
    if (st == TRACKER_STAGE_NONE && d->status < 500)
        return; /* installers probe for optional files (.treeinfo, ...) */
    uint8_t mac[6];
    struct http_dyn_request req = {.path = d->path, .query = "", .peer_ip = d->peer_ip};
    if (!request_mac(w, &req, mac))
        return;
    char why[TRACKER_REASON_MAX];
    snprintf(why, sizeof(why), "HTTP %d %s /%.60s", d->status, d->method, d->path);
    tracker_fail(w->cfg.tracker, mac, d->status >= 500 ? TRACKER_FAIL_HTTP_5XX : TRACKER_FAIL_HTTP_4XX, why);
}

/* ---- per worker: event streams and counters --------------------------------------------- */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static bool wbuf_room(struct web_worker *ww, size_t n)
{
    if (ww->len + n <= ww->cap)
        return true;
    size_t cap = ww->cap ? ww->cap : 16384;
    while (cap < ww->len + n)
        cap *= 2;
    char *p = realloc(ww->buf, cap);
    if (!p)
        return false;
    ww->buf = p;
    ww->cap = cap;
    return true;
}

static void wbuf_frame(struct web_worker *ww, const char *event, const char *data, size_t len)
{
    size_t need = web_sse_frame(NULL, 0, event, 0, data, len);
    if (!wbuf_room(ww, need))
        return;
    web_sse_frame(ww->buf + ww->len, need, event, 0, data, len);
    ww->len += need;
}

/* Sends what changed to this worker's streams; true when events are left
 * for the next turn (the budget ran out). */
static bool pump(struct web_worker *ww)
{
    struct tracker *t = ww->w->cfg.tracker;
    uint64_t now = io_loop_now_ms(ww->loop);
    if (!http_service_stream_count(ww->http)) {
        tracker_cursor_init(t, &ww->cur); /* nobody listens: skip ahead */
        ww->last_heartbeat = now;
        return false;
    }
    ww->len = 0;
    bool more = false;
    for (;;) {
        bool lost = false;
        size_t n = tracker_events_read(t, &ww->cur, ww->ids, EVENTS_PER_READ, &lost);
        if (lost)
            wbuf_frame(ww, "resync", "{}", 2);
        /* one message per host per batch: its newest state says it all */
        qsort(ww->ids, n, sizeof(ww->ids[0]), cmp_u32);
        for (size_t i = 0; i < n; i++) {
            if (i && ww->ids[i] == ww->ids[i - 1])
                continue;
            struct tracker_host h;
            if (!tracker_get_id(t, ww->ids[i], &h))
                continue;
            char json[JSON_HOST_MAX];
            size_t jl = web_host_json(json, sizeof(json), &h);
            if (jl < sizeof(json))
                wbuf_frame(ww, "host", json, jl);
        }
        if (n < EVENTS_PER_READ)
            break;
        if (ww->len >= PUMP_BUDGET) {
            more = true;
            break;
        }
    }
    if (now - ww->last_heartbeat >= ww->w->cfg.heartbeat_ms) {
        static const char hb[] = ": heartbeat\n\n";
        if (wbuf_room(ww, sizeof(hb) - 1)) {
            memcpy(ww->buf + ww->len, hb, sizeof(hb) - 1);
            ww->len += sizeof(hb) - 1;
        }
        ww->last_heartbeat = now;
    }
    if (ww->len)
        http_service_broadcast(ww->http, ww->buf, ww->len);
    ww->len = 0;
    return more;
}

static void pump_and_rearm(struct web_worker *ww, bool from_timer)
{
    bool more = pump(ww);
    if (!http_service_stream_count(ww->http))
        return;
    if (more) /* soon, after this turn's sends */
        io_timer_arm(ww->loop, &ww->timer, PUMP_AGAIN_MS);
    else if (from_timer || !io_timer_armed(&ww->timer))
        io_timer_arm(ww->loop, &ww->timer, PUMP_MS);
}

static void on_pump_timer(struct io_timer *tm) { pump_and_rearm(tm->owner, true); }

struct web_worker *web_worker_new(struct web *w, unsigned index, struct io_loop *loop, struct http_service *http,
                                  struct tftp_service *tftp)
{
    struct web_worker *ww = calloc(1, sizeof(*ww));
    if (!ww)
        return NULL;
    ww->w = w;
    ww->index = index;
    ww->loop = loop;
    ww->http = http;
    ww->tftp = tftp;
    ww->timer.fn = on_pump_timer;
    ww->timer.owner = ww;
    tracker_cursor_init(w->cfg.tracker, &ww->cur);
    return ww;
}

void web_worker_idle(struct web_worker *ww)
{
    if (!ww)
        return;
    uint64_t now = io_loop_now_ms(ww->loop);
    if (ww->w->cfg.metrics && now - ww->last_publish >= METRICS_PUBLISH_MS) {
        struct http_service_stats hs;
        http_service_get_stats(ww->http, &hs);
        metrics_publish_http(ww->w->cfg.metrics, ww->index, &hs);
        if (ww->tftp) {
            struct tftp_service_stats ts;
            tftp_service_get_stats(ww->tftp, &ts);
            metrics_publish_tftp(ww->w->cfg.metrics, ww->index, &ts);
        }
        ww->last_publish = now;
    }
    pump_and_rearm(ww, false);
}

void web_worker_free(struct web_worker *ww)
{
    if (!ww)
        return;
    if (io_timer_armed(&ww->timer))
        io_timer_cancel(ww->loop, &ww->timer);
    free(ww->buf);
    free(ww);
}
