/* bench/load/httpc.c — the HTTP/1.1 client; see httpc.h. */
#include "bench/load/httpc.h"

#include "bench/load/ev.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define HEAD_CAP 8192
#define RX_BUF (256u << 10)       /* shared: bodies that are checked or kept */
#define TRUNC_MAX (1u << 30)      /* bytes dropped per recv(MSG_TRUNC) */
#define READS_PER_EVENT 16        /* fairness between connections */
#define DEFAULT_TIMEOUT_MS 30000

enum cstate { CS_CLOSED, CS_CONNECTING, CS_SENDING, CS_HEAD, CS_BODY, CS_IDLE };
enum bmode { BM_NONE, BM_LENGTH, BM_CHUNKED, BM_EOF };
enum chstate { CH_SIZE, CH_DATA, CH_DATA_END, CH_TRAILER };

struct httpc_conn {
    struct ev_handler h;
    struct ev_timer timer;
    struct httpc_target t;
    enum cstate st;
    struct httpc_req *r;
    unsigned served;       /* requests completed on the current socket */
    char *out;             /* request bytes */
    size_t out_len, out_sent, out_cap;
    char head[HEAD_CAP + 1];
    size_t head_len;
    bool keep_alive;       /* the response allows reuse */
    enum bmode bm;
    uint64_t remaining;    /* BM_LENGTH: body bytes still to come; CH_DATA: in this chunk */
    enum chstate ch;
    char chline[64];
    size_t chline_len;
    bool need_bytes;       /* verify or keep: read into memory */
    bool got_bytes;        /* any response byte on this request */
    struct verify_ctx vc;
    size_t kept_cap;
    uint64_t progress_ns;
    bool fail_pending;     /* an immediate failure delivered from the timer */
    enum httpc_status pend_status;
    char pend_reason[160];
    bool retry_pending;    /* reconnect and resend from the timer */
};

static struct httpc_counters g_cnt;
static uint8_t *g_rx;

void httpc_get_counters(struct httpc_counters *out) { *out = g_cnt; }

const char *httpc_status_name(enum httpc_status s)
{
    switch (s) {
    case HTTPC_OK: return "ok";
    case HTTPC_STATUS: return "status";
    case HTTPC_CONNECT: return "connect";
    case HTTPC_CLOSED: return "closed";
    case HTTPC_TIMEOUT: return "timeout";
    case HTTPC_PROTOCOL: return "protocol";
    case HTTPC_SIZE: return "size";
    case HTTPC_CHECKSUM: return "checksum";
    case HTTPC_SOCKET: return "socket";
    }
    return "?";
}

void httpc_req_clear(struct httpc_req *r)
{
    free(r->kept);
    r->kept = NULL;
    r->kept_len = 0;
    r->status = HTTPC_OK;
    r->http_status = 0;
    r->has_length = false;
    r->content_length = r->received = 0;
    r->reused = false;
    r->retries = 0;
    r->start_ns = r->first_byte_ns = r->end_ns = 0;
    r->reason[0] = 0;
}

static void on_io(struct ev_handler *h, uint32_t events);
static void on_timer(struct ev_timer *t);

struct httpc_conn *httpc_conn_new(const struct httpc_target *t)
{
    struct httpc_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->t = *t;
    c->h.fd = -1;
    c->h.fn = on_io;
    c->timer.fn = on_timer;
    c->timer.owner = c;
    return c;
}

void httpc_conn_set_bind(struct httpc_conn *c, uint32_t bind_addr) { c->t.bind_addr = bind_addr; }
bool httpc_conn_busy(const struct httpc_conn *c) { return c->r != NULL; }

static void sock_close(struct httpc_conn *c)
{
    ev_close(&c->h);
    c->st = CS_CLOSED;
    c->served = 0;
}

void httpc_conn_free(struct httpc_conn *c)
{
    if (!c)
        return;
    ev_timer_cancel(&c->timer);
    sock_close(c);
    free(c->out);
    free(c);
}

/* Hands the request back; the caller must return at once (the callback may
 * start another request on c or free it). */
static void deliver(struct httpc_conn *c)
{
    struct httpc_req *r = c->r;
    c->r = NULL;
    ev_timer_cancel(&c->timer);
    if (r->kept)
        r->kept[r->kept_len] = 0;
    r->end_ns = ev_refresh();
    r->done(r->arg, r);
}

static void set_reason(struct httpc_req *r, const char *fmt, va_list ap)
{
    vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
}

static void start_connect(struct httpc_conn *c);

/* A failure of the request in flight: close, maybe retry once, else deliver. */
static void fail(struct httpc_conn *c, enum httpc_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(struct httpc_conn *c, enum httpc_status st, const char *fmt, ...)
{
    struct httpc_req *r = c->r;
    bool was_reused = r->reused;
    sock_close(c);
    if (was_reused && !c->got_bytes && r->retries == 0 && (st == HTTPC_CLOSED || st == HTTPC_SOCKET)) {
        /* the server closed an idle keep-alive connection as we reused it */
        r->retries++;
        g_cnt.reconnects_idle++;
        start_connect(c);
        return;
    }
    r->status = st;
    va_list ap;
    va_start(ap, fmt);
    set_reason(r, fmt, ap);
    va_end(ap);
    deliver(c);
}

static void fail_later(struct httpc_conn *c, enum httpc_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail_later(struct httpc_conn *c, enum httpc_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->pend_reason, sizeof(c->pend_reason), fmt, ap);
    va_end(ap);
    sock_close(c);
    c->pend_status = st;
    c->fail_pending = true;
    ev_timer_arm(&c->timer, 0);
}

static void progress(struct httpc_conn *c) { c->progress_ns = ev_now(); }

static uint64_t req_timeout_ns(const struct httpc_req *r)
{
    return (r->timeout_ms ? r->timeout_ms : DEFAULT_TIMEOUT_MS) * EV_MS;
}

static void on_timer(struct ev_timer *t)
{
    struct httpc_conn *c = t->owner;
    if (!c->r)
        return;
    if (c->fail_pending) {
        c->fail_pending = false;
        c->r->status = c->pend_status;
        memcpy(c->r->reason, c->pend_reason, sizeof(c->r->reason));
        deliver(c);
        return;
    }
    uint64_t to = req_timeout_ns(c->r);
    if (ev_now() < c->progress_ns + to) {
        ev_timer_arm_at(&c->timer, c->progress_ns + to);
        return;
    }
    static const char *what[] = {"closed", "connecting", "sending the request", "waiting for the response head",
                                 "receiving the body", "idle"};
    struct httpc_req *r = c->r;
    r->status = HTTPC_TIMEOUT;
    snprintf(r->reason, sizeof(r->reason), "no progress for %.1f s while %s (%llu body bytes)", (double)to / 1e9,
             what[c->st], (unsigned long long)r->received);
    sock_close(c);
    deliver(c);
}

static void build_request(struct httpc_conn *c)
{
    struct httpc_req *r = c->r;
    size_t need = strlen(r->method) + strlen(r->path) + strlen(c->t.host) +
                  (r->extra_headers ? strlen(r->extra_headers) : 0) + r->body_len + 160;
    if (need > c->out_cap) {
        char *o = realloc(c->out, need);
        if (!o) {
            c->out_len = 0;
            return;
        }
        c->out = o;
        c->out_cap = need;
    }
    int n = snprintf(c->out, c->out_cap, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: bootstorm-load\r\n%s%s", r->method,
                     r->path, c->t.host, r->close ? "Connection: close\r\n" : "",
                     r->extra_headers ? r->extra_headers : "");
    if (r->body || !strcmp(r->method, "POST"))
        n += snprintf(c->out + n, c->out_cap - (size_t)n, "Content-Length: %zu\r\n", r->body_len);
    n += snprintf(c->out + n, c->out_cap - (size_t)n, "\r\n");
    if (r->body_len)
        memcpy(c->out + n, r->body, r->body_len);
    c->out_len = (size_t)n + r->body_len;
    c->out_sent = 0;
}

static void try_send(struct httpc_conn *c);

static void begin_send(struct httpc_conn *c)
{
    c->r->reused = c->served > 0;
    c->head_len = 0;
    c->got_bytes = false;
    c->bm = BM_NONE;
    c->st = CS_SENDING;
    build_request(c);
    if (!c->out_len) {
        fail(c, HTTPC_SOCKET, "out of memory");
        return;
    }
    try_send(c); /* a connected socket is nearly always writable: no epoll round */
}

static void start_connect(struct httpc_conn *c)
{
    progress(c);
    ev_timer_arm(&c->timer, req_timeout_ns(c->r));
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fail_later(c, HTTPC_SOCKET, "socket: %s", strerror(errno));
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (c->t.bind_addr) {
        /* the port is picked at connect() for the whole 4-tuple, not per address */
        setsockopt(fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        struct sockaddr_in me = {.sin_family = AF_INET, .sin_addr.s_addr = c->t.bind_addr};
        if (bind(fd, (struct sockaddr *)&me, sizeof(me)) != 0) {
            char a[32];
            inet_ntop(AF_INET, &me.sin_addr, a, sizeof(a));
            int e = errno;
            close(fd);
            fail_later(c, HTTPC_SOCKET, "bind %s: %s", a, strerror(e));
            return;
        }
    }
    g_cnt.connects++;
    int rc = connect(fd, (struct sockaddr *)&c->t.server, sizeof(c->t.server));
    if (rc != 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        fail_later(c, e == EADDRNOTAVAIL || e == EAGAIN ? HTTPC_SOCKET : HTTPC_CONNECT, "connect %s: %s", c->t.host,
                   strerror(e));
        return;
    }
    if (ev_add(&c->h, fd, EPOLLOUT) != EV_OK) {
        int e = errno;
        close(fd);
        fail_later(c, HTTPC_SOCKET, "epoll: %s", strerror(e));
        return;
    }
    c->st = CS_CONNECTING;
    c->served = 0;
}

void httpc_request(struct httpc_conn *c, struct httpc_req *r)
{
    c->r = r;
    r->status = HTTPC_OK;
    r->http_status = 0;
    r->has_length = false;
    r->content_length = r->received = 0;
    r->kept = NULL;
    r->kept_len = 0;
    r->retries = 0;
    r->reason[0] = 0;
    r->start_ns = ev_refresh();
    r->first_byte_ns = r->end_ns = 0;
    c->need_bytes = r->verify != VERIFY_NONE || r->keep_max > 0;
    c->kept_cap = 0;
    verify_init(&c->vc, r->verify);
    if (c->st == CS_IDLE) {
        progress(c);
        ev_timer_arm(&c->timer, req_timeout_ns(r));
        begin_send(c);
    } else {
        sock_close(c);
        start_connect(c);
    }
}

/* ---- response ---- */

static void keep(struct httpc_conn *c, const uint8_t *d, size_t n)
{
    struct httpc_req *r = c->r;
    if (r->kept_len >= r->keep_max)
        return;
    if (n > r->keep_max - r->kept_len)
        n = r->keep_max - r->kept_len;
    if (r->kept_len + n + 1 > c->kept_cap) {
        size_t cap = c->kept_cap ? c->kept_cap : 1024;
        while (cap < r->kept_len + n + 1)
            cap *= 2;
        uint8_t *k = realloc(r->kept, cap);
        if (!k)
            return;
        r->kept = k;
        c->kept_cap = cap;
    }
    memcpy(r->kept + r->kept_len, d, n);
    r->kept_len += n;
}

static void body_bytes(struct httpc_conn *c, const uint8_t *d, size_t n)
{
    c->r->received += n;
    g_cnt.bytes += n;
    if (d) {
        if (c->r->verify != VERIFY_NONE)
            verify_update(&c->vc, d, n);
        if (c->r->keep_max)
            keep(c, d, n);
    }
}

static void complete(struct httpc_conn *c)
{
    struct httpc_req *r = c->r;
    bool reusable = c->keep_alive && !r->close && c->bm != BM_EOF;
    c->served++;
    if (reusable) {
        c->st = CS_IDLE;
        ev_mod(&c->h, EPOLLIN);
    } else {
        sock_close(c);
    }
    bool ok_status = r->expect_status ? r->http_status == r->expect_status
                                      : r->http_status >= 200 && r->http_status < 300;
    const struct verify_ref *ref = r->ref;
    if (!ok_status) {
        r->status = HTTPC_STATUS;
        /* the status line's reason phrase, as sent */
        const char *sp = strchr(c->head, ' ');
        const char *eol = sp ? strpbrk(sp, "\r\n") : NULL;
        int rl = sp && eol ? (int)(eol - sp - 1) : 0;
        snprintf(r->reason, sizeof(r->reason), "%s %s: %.*s", r->method, r->path, rl > 60 ? 60 : rl, sp ? sp + 1 : "");
    } else if (r->http_status == 200 && !strcmp(r->method, "GET") && ref && ref->state == VERIFY_REF_OK) {
        if (r->received != ref->size) {
            r->status = HTTPC_SIZE;
            snprintf(r->reason, sizeof(r->reason), "%s: %llu bytes, the local file has %llu", r->path,
                     (unsigned long long)r->received, (unsigned long long)ref->size);
        } else if (r->verify != VERIFY_NONE && ref->kind == r->verify) {
            uint8_t d[VERIFY_DIGEST_MAX];
            size_t dl = verify_final(&c->vc, d);
            if (dl != ref->digest_len || memcmp(d, ref->digest, dl) != 0) {
                char a[65], b[65];
                r->status = HTTPC_CHECKSUM;
                snprintf(r->reason, sizeof(r->reason), "%s: %s %.16s…, the local file's is %.16s…", r->path,
                         verify_kind_name(r->verify), verify_hex(d, dl, a), verify_hex(ref->digest, ref->digest_len, b));
            }
        }
    }
    deliver(c);
}

/* Finds the end of the head; returns its length or 0. */
static size_t head_end(const char *b, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++) {
        if (b[i] != '\n')
            continue;
        if (b[i + 1] == '\n')
            return i + 2;
        if (i + 2 < n && b[i + 1] == '\r' && b[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

static bool token_in(const char *v, size_t len, const char *tok)
{
    size_t tl = strlen(tok);
    for (size_t i = 0; i < len;) {
        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < len && v[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - s == tl && !strncasecmp(v + s, tok, tl))
            return true;
    }
    return false;
}

/* Parses the head in c->head[0..hl).  Returns false (and fails) on garbage. */
static bool parse_head(struct httpc_conn *c, size_t hl)
{
    struct httpc_req *r = c->r;
    const char *p = c->head, *end = c->head + hl;
    if (hl < 12 || strncmp(p, "HTTP/1.", 7) || !isdigit((unsigned char)p[7]) || p[8] != ' ' ||
        !isdigit((unsigned char)p[9]) || !isdigit((unsigned char)p[10]) || !isdigit((unsigned char)p[11])) {
        fail(c, HTTPC_PROTOCOL, "%s %s: not an HTTP/1.x status line", r->method, r->path);
        return false;
    }
    int minor = p[7] - '0';
    r->http_status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    bool ka = minor >= 1, chunked = false, has_len = false;
    uint64_t len = 0;
    const char *line = memchr(p, '\n', hl);
    while (line && ++line < end) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol)
            break;
        const char *le = eol;
        if (le > line && le[-1] == '\r')
            le--;
        if (le == line)
            break;
        const char *colon = memchr(line, ':', (size_t)(le - line));
        if (!colon) {
            fail(c, HTTPC_PROTOCOL, "%s %s: header line without a colon", r->method, r->path);
            return false;
        }
        const char *v = colon + 1;
        while (v < le && (*v == ' ' || *v == '\t'))
            v++;
        size_t nl = (size_t)(colon - line), vl = (size_t)(le - v);
        while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
            vl--;
        if (nl == 14 && !strncasecmp(line, "Content-Length", 14)) {
            uint64_t x = 0;
            size_t i = 0;
            for (; i < vl && isdigit((unsigned char)v[i]) && x < (UINT64_MAX - 9) / 10; i++)
                x = x * 10 + (uint64_t)(v[i] - '0');
            if (!vl || i != vl || (has_len && x != len)) {
                fail(c, HTTPC_PROTOCOL, "%s %s: bad Content-Length", r->method, r->path);
                return false;
            }
            has_len = true;
            len = x;
        } else if (nl == 17 && !strncasecmp(line, "Transfer-Encoding", 17)) {
            chunked = token_in(v, vl, "chunked");
        } else if (nl == 10 && !strncasecmp(line, "Connection", 10)) {
            if (token_in(v, vl, "close"))
                ka = false;
            else if (token_in(v, vl, "keep-alive"))
                ka = true;
        }
        line = eol;
    }
    c->keep_alive = ka;
    r->has_length = has_len && !chunked;
    r->content_length = r->has_length ? len : 0;
    bool no_body = !strcmp(r->method, "HEAD") || r->http_status == 204 || r->http_status == 304 ||
                   (r->http_status >= 100 && r->http_status < 200);
    if (no_body)
        c->bm = BM_NONE;
    else if (chunked) { /* RFC 9112 §6.3: chunked wins over Content-Length */
        c->bm = BM_CHUNKED;
        c->ch = CH_SIZE;
        c->chline_len = 0;
    } else if (has_len) {
        c->bm = BM_LENGTH;
        c->remaining = len;
    } else {
        c->bm = BM_EOF;
    }
    return true;
}

/* Feeds body bytes through the framing; returns bytes used.  Sets *done when
 * the response ended (then bytes after it are not ours: an error). */
static size_t feed(struct httpc_conn *c, const uint8_t *d, size_t n, bool *done, bool *bad)
{
    size_t used = 0;
    *done = *bad = false;
    switch (c->bm) {
    case BM_NONE:
        *done = true;
        return 0;
    case BM_EOF:
        body_bytes(c, d, n);
        return n;
    case BM_LENGTH: {
        size_t take = n < c->remaining ? n : (size_t)c->remaining;
        body_bytes(c, d, take);
        c->remaining -= take;
        *done = c->remaining == 0;
        return take;
    }
    case BM_CHUNKED:
        while (used < n && !*done) {
            if (c->ch == CH_DATA) {
                size_t take = n - used < c->remaining ? n - used : (size_t)c->remaining;
                body_bytes(c, d + used, take);
                used += take;
                c->remaining -= take;
                if (!c->remaining) {
                    c->ch = CH_DATA_END;
                    c->chline_len = 0;
                }
                continue;
            }
            /* a line: chunk size, the CRLF after data, or a trailer line */
            uint8_t b = d[used++];
            if (b != '\n') {
                if (c->chline_len < sizeof(c->chline) - 1)
                    c->chline[c->chline_len++] = (char)b;
                else if (c->ch != CH_TRAILER) {
                    *bad = true;
                    return used;
                }
                continue;
            }
            if (c->chline_len && c->chline[c->chline_len - 1] == '\r')
                c->chline_len--;
            c->chline[c->chline_len] = 0;
            if (c->ch == CH_DATA_END) {
                if (c->chline_len) {
                    *bad = true;
                    return used;
                }
                c->ch = CH_SIZE;
            } else if (c->ch == CH_SIZE) {
                char *e;
                errno = 0;
                unsigned long long sz = strtoull(c->chline, &e, 16);
                if (e == c->chline || errno || (*e && *e != ';' && *e != ' ' && *e != '\t')) {
                    *bad = true;
                    return used;
                }
                c->remaining = sz;
                c->ch = sz ? CH_DATA : CH_TRAILER;
            } else if (!c->chline_len) { /* CH_TRAILER: the empty line ends the message */
                *done = true;
            }
            c->chline_len = 0;
        }
        return used;
    }
    return used;
}

static void on_readable(struct httpc_conn *c)
{
    struct httpc_req *r = c->r;
    if (!g_rx && !(g_rx = malloc(RX_BUF))) {
        fail(c, HTTPC_SOCKET, "out of memory");
        return;
    }
    for (int i = 0; i < READS_PER_EVENT; i++) {
        if (c->st == CS_HEAD) {
            size_t hl = head_end(c->head, c->head_len);
            if (!hl) {
                if (c->head_len >= HEAD_CAP) {
                    fail(c, HTTPC_PROTOCOL, "%s %s: response head over %d bytes", r->method, r->path, HEAD_CAP);
                    return;
                }
                ssize_t n = recv(c->h.fd, c->head + c->head_len, HEAD_CAP - c->head_len, MSG_DONTWAIT);
                if (n < 0) {
                    if (errno == EAGAIN || errno == EINTR)
                        return;
                    fail(c, HTTPC_CLOSED, "%s %s: %s before the response", r->method, r->path, strerror(errno));
                    return;
                }
                if (n == 0) {
                    fail(c, HTTPC_CLOSED, "%s %s: connection closed before the response", r->method, r->path);
                    return;
                }
                if (!c->got_bytes)
                    r->first_byte_ns = ev_now();
                c->got_bytes = true;
                progress(c);
                c->head_len += (size_t)n;
                continue;
            }
            c->head[c->head_len] = 0;
            if (!parse_head(c, hl))
                return;
            if (r->http_status >= 100 && r->http_status < 200) { /* interim: the real one follows */
                memmove(c->head, c->head + hl, c->head_len - hl);
                c->head_len -= hl;
                r->http_status = 0;
                continue;
            }
            c->st = CS_BODY;
            bool done, bad;
            size_t used = feed(c, (const uint8_t *)c->head + hl, c->head_len - hl, &done, &bad);
            if (bad || (done && used < c->head_len - hl)) {
                fail(c, HTTPC_PROTOCOL, "%s %s: %s", r->method, r->path,
                     bad ? "bad chunked framing" : "bytes after the end of the response");
                return;
            }
            if (done) {
                complete(c);
                return;
            }
            continue;
        }
        if (c->st != CS_BODY)
            return;
        ssize_t n;
        if (c->bm == BM_LENGTH && !c->need_bytes) {
            size_t want = c->remaining < TRUNC_MAX ? (size_t)c->remaining : TRUNC_MAX;
            n = recv(c->h.fd, NULL, want, MSG_DONTWAIT | MSG_TRUNC);
            if (n > 0) {
                progress(c);
                body_bytes(c, NULL, (size_t)n);
                c->remaining -= (uint64_t)n;
                if (!c->remaining) {
                    complete(c);
                    return;
                }
                continue;
            }
        } else {
            size_t want = RX_BUF;
            if (c->bm == BM_LENGTH && c->remaining < want)
                want = (size_t)c->remaining;
            n = recv(c->h.fd, g_rx, want, MSG_DONTWAIT);
            if (n > 0) {
                progress(c);
                bool done, bad;
                size_t used = feed(c, g_rx, (size_t)n, &done, &bad);
                if (bad || (done && used < (size_t)n)) {
                    fail(c, HTTPC_PROTOCOL, "%s %s: %s", r->method, r->path,
                         bad ? "bad chunked framing" : "bytes after the end of the response");
                    return;
                }
                if (done) {
                    complete(c);
                    return;
                }
                continue;
            }
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n == 0 && c->bm == BM_EOF) {
            c->keep_alive = false;
            complete(c);
            return;
        }
        if (c->bm == BM_LENGTH)
            fail(c, HTTPC_SIZE, "%s %s: connection ended after %llu of %llu body bytes", r->method, r->path,
                 (unsigned long long)r->received, (unsigned long long)r->content_length);
        else
            fail(c, HTTPC_CLOSED, "%s %s: connection ended inside the body (%s)", r->method, r->path,
                 n == 0 ? "EOF" : strerror(errno));
        return;
    }
}

static void on_writable(struct httpc_conn *c)
{
    if (c->st == CS_CONNECTING) {
        int err = 0;
        socklen_t el = sizeof(err);
        getsockopt(c->h.fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err) {
            fail(c, HTTPC_CONNECT, "connect %s: %s", c->t.host, strerror(err));
            return;
        }
        progress(c);
        begin_send(c);
        return;
    }
    if (c->st == CS_SENDING)
        try_send(c);
}

static void try_send(struct httpc_conn *c)
{
    while (c->out_sent < c->out_len) {
        ssize_t n = send(c->h.fd, c->out + c->out_sent, c->out_len - c->out_sent, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                ev_mod(&c->h, EPOLLOUT);
                return;
            }
            fail(c, HTTPC_CLOSED, "%s %s: send: %s", c->r->method, c->r->path, strerror(errno));
            return;
        }
        c->out_sent += (size_t)n;
        progress(c);
    }
    c->st = CS_HEAD;
    ev_mod(&c->h, EPOLLIN);
}

static void on_io(struct ev_handler *h, uint32_t events)
{
    struct httpc_conn *c = (struct httpc_conn *)h;
    if (!c->r) { /* idle keep-alive connection: only an EOF (or garbage) can come */
        char b;
        ssize_t n = recv(c->h.fd, &b, 1, MSG_DONTWAIT | MSG_PEEK);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) || n > 0)
            sock_close(c);
        return;
    }
    if (events & EPOLLOUT) {
        on_writable(c);
        return; /* readiness for reading is reported again (level-triggered) */
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        if (c->st == CS_CONNECTING || c->st == CS_SENDING) {
            on_writable(c); /* an error on connect/send shows up here */
            return;
        }
        on_readable(c);
    }
}

bool httpc_parse_url(const char *url, struct httpc_target *t, char *path, size_t cap, char *why, size_t whylen)
{
    memset(t, 0, sizeof(*t));
    if (strncmp(url, "http://", 7)) {
        snprintf(why, whylen, "%s: only http:// URLs", url);
        return false;
    }
    const char *h = url + 7, *slash = strchr(h, '/');
    size_t hl = slash ? (size_t)(slash - h) : strlen(h);
    if (!hl || hl >= sizeof(t->host)) {
        snprintf(why, whylen, "%s: bad host", url);
        return false;
    }
    char host[80];
    memcpy(host, h, hl);
    host[hl] = 0;
    memcpy(t->host, host, hl + 1);
    unsigned port = 80;
    char *colon = strrchr(host, ':');
    if (colon) {
        char *e;
        unsigned long p = strtoul(colon + 1, &e, 10);
        if (*e || p == 0 || p > 65535) {
            snprintf(why, whylen, "%s: bad port", url);
            return false;
        }
        port = (unsigned)p;
        *colon = 0;
    }
    t->server.sin_family = AF_INET;
    t->server.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &t->server.sin_addr) != 1) {
        struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai = NULL;
        int rc = getaddrinfo(host, NULL, &hints, &ai);
        if (rc || !ai) {
            snprintf(why, whylen, "%s: %s", host, gai_strerror(rc));
            return false;
        }
        t->server.sin_addr = ((struct sockaddr_in *)ai->ai_addr)->sin_addr;
        freeaddrinfo(ai);
    }
    const char *p = slash ? slash : "/";
    if (strlen(p) >= cap) {
        snprintf(why, whylen, "%s: path too long", url);
        return false;
    }
    strcpy(path, p);
    return true;
}
