/* engine/http_service.c — HTTP/1.1 for installers: wires proto/http to io/.
 *
 * One service per worker thread.  A connection reads into its own head
 * buffer (multishot recv), parses with proto/http, and answers:
 *   - small files (<= small_file_max) from memory: head and body in one send;
 *   - larger files: head (MSG_MORE) then sendfile(2) in chunks of cfg.chunk
 *     bytes, one chunk per connection per loop turn, so 200 installers pulling
 *     one install.img progress together and none starves the others;
 *   - dynamic routes through cfg.route (kickstarts, iPXE scripts, the API).
 * Timeouts: idle (no request), header deadline (not reset by a trickle of
 * bytes), send (no progress).  Beyond max_conns a fixed 503 is written and the
 * connection closed, so an overload degrades instead of falling over. */
#include "engine/http_service.h"
#include "engine/logbuf.h"
#include "engine/file_cache.h"
#include "io/loop.h"
#include "io/sock.h"
#include "proto/http.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HEAD_BUF 8192    /* request head buffer per connection (= max head, as nginx's 8k) */
#define BODY_MAX 8192    /* largest request body accepted (API calls) */
#define OUT_HEAD 1024
#define ACCEPT_PAUSE_MS 100 /* out of descriptors: pause accepting this long */

enum conn_state { C_READING, C_SENDING, C_CLOSING, C_STREAMING };

struct stream_buf {
    char *p;
    size_t len, cap;
};

struct conn {
    struct http_service *svc;
    int fd;
    enum conn_state state;
    struct io_op recv_op, send_op;
    struct io_timer timer;
    uint64_t deadline_ms; /* when the connection times out; the timer may be armed earlier */
    struct sockaddr_in peer;
    uint64_t head_started_ms;   /* first byte of the current request head */
    uint64_t req_started_ms;
    size_t in_len;
    bool keep_alive, eof, recv_done;
    bool cork;             /* the response ends the connection: hold its tail for the FIN (send_flags) */
    /* the response in flight */
    char out[OUT_HEAD];
    struct iovec iov[2];
    int iovcnt;
    struct file_entry *file;
    char *dyn_body;             /* malloc'd dynamic body */
    uint64_t off, end;          /* file range still to send: [off, end) */
    uint64_t ra_next;           /* next readahead offset */
    uint64_t resp_bytes;
    int status;
    char logpath[160];
    char method[8];
    uint64_t hook_reported;     /* body bytes already passed to cfg.on_done */
    /* a stream: sbuf[s_cur] is being sent (s_sent of it so far), the other
     * collects what is broadcast meanwhile */
    bool streaming, listed;
    struct stream_buf sbuf[2];
    size_t s_sent;
    int s_cur;
    struct conn *next_free;
    char in[HEAD_BUF + BODY_MAX];
};

struct http_service {
    struct io_loop *loop;
    struct http_service_config cfg;
    int listen_fd, root_fd;
    struct io_op accept_op;
    struct io_timer accept_retry; /* out of descriptors: accept again after a pause */
    uint64_t accept_errors;       /* in the current episode (logged once per episode) */
    bool draining;
    bool nodelay_inherited;     /* TCP_NODELAY set on the listener, so on every accepted socket */
    struct file_cache *files;
    struct conn *free_list;
    struct conn **all;          /* open connections, for drain/abort */
    unsigned nall, capall;
    struct http_service_stats st;
    struct conn **streams;      /* open streams, for broadcast */
    unsigned nstreams, capstreams;
    char date[HTTP_DATE_LEN + 1];
    time_t date_sec;
    struct logbuf log;
};

static void conn_close(struct conn *c);
static void conn_process(struct conn *c);
static void send_more(struct conn *c);
static void stream_unlist(struct conn *c);
static void stream_start(struct conn *c, const struct http_dyn_response *resp);
static void stream_begin(struct conn *c);
static void stream_sent(struct conn *c, int res);
static void done_hook(struct conn *c, uint64_t bytes, bool final);

static const char *now_date(struct http_service *s)
{
    time_t t = time(NULL);
    if (t != s->date_sec) {
        s->date_sec = t;
        http_format_date(t, s->date);
    }
    return s->date;
}

/* ---- access log: buffered per worker, written once per loop turn ---------- */

static void log_request(struct conn *c)
{
    struct http_service *s = c->svc;
    if (s->cfg.quiet)
        return;
    char a[48];
    sock_addr_str(&c->peer, a, sizeof(a));
    uint64_t ms = io_loop_now_ms(s->loop) - c->req_started_ms;
    logbuf_printf(&s->log, "http %s \"%s /%s\" %d %llu %llums\n", a, c->method, c->logpath, c->status,
                  (unsigned long long)c->resp_bytes, (unsigned long long)ms);
}

void http_service_flush_log(struct http_service *s)
{
    logbuf_flush(&s->log);
}

/* ---- connection lifetime ------------------------------------------------- */

static struct conn *conn_new(struct http_service *s, int fd)
{
    struct conn *c = s->free_list;
    if (c)
        s->free_list = c->next_free;
    else if (!(c = malloc(sizeof(*c))))
        return NULL;
    memset(c, 0, offsetof(struct conn, in));
    c->svc = s;
    c->fd = fd;
    c->recv_op.owner = c->send_op.owner = c->timer.owner = c;
    if (s->nall == s->capall) {
        unsigned cap = s->capall ? s->capall * 2 : 256;
        struct conn **a = realloc(s->all, cap * sizeof(*a));
        if (!a) {
            c->next_free = s->free_list;
            s->free_list = c;
            return NULL;
        }
        s->all = a;
        s->capall = cap;
    }
    s->all[s->nall++] = c;
    s->st.conns_open++;
    return c;
}

static void conn_release_response(struct conn *c)
{
    if (c->file) {
        file_cache_release(c->svc->files, c->file);
        c->file = NULL;
    }
    free(c->dyn_body);
    c->dyn_body = NULL;
}

static void conn_maybe_free(struct conn *c)
{
    if (c->state != C_CLOSING || io_op_busy(&c->recv_op) || io_op_busy(&c->send_op))
        return;
    struct http_service *s = c->svc;
    io_timer_cancel(s->loop, &c->timer);
    conn_release_response(c);
    free(c->sbuf[0].p);
    free(c->sbuf[1].p);
    io_close(s->loop, c->fd); /* with the next submission: no system call of its own */
    for (unsigned i = 0; i < s->nall; i++) {
        if (s->all[i] == c) {
            s->all[i] = s->all[--s->nall];
            break;
        }
    }
    s->st.conns_open--;
    c->next_free = s->free_list;
    s->free_list = c;
}

static void conn_close(struct conn *c)
{
    if (c->state == C_CLOSING)
        return;
    c->state = C_CLOSING;
    stream_unlist(c);
    io_timer_cancel(c->svc->loop, &c->timer);
    io_cancel(c->svc->loop, &c->recv_op);
    io_cancel(c->svc->loop, &c->send_op);
    conn_maybe_free(c);
}

/* Lazy: every chunk sent moves the deadline, but the timer heap is touched
 * only when the deadline comes sooner than the armed timer (a change of
 * phase), or when the timer fires early and re-arms for the rest. */
static void arm_timer(struct conn *c, unsigned seconds)
{
    struct io_loop *loop = c->svc->loop;
    uint64_t ms = (uint64_t)seconds * 1000u;
    c->deadline_ms = io_loop_now_ms(loop) + ms;
    if (!io_timer_armed(&c->timer) || io_timer_due_ms(&c->timer) > c->deadline_ms)
        io_timer_arm(loop, &c->timer, ms);
}

static void on_timer(struct io_timer *t)
{
    struct conn *c = t->owner;
    uint64_t now = io_loop_now_ms(c->svc->loop);
    if (c->deadline_ms > now) {
        io_timer_arm(c->svc->loop, &c->timer, c->deadline_ms - now);
        return;
    }
    c->svc->st.timeouts++;
    conn_close(c);
}

/* ---- responses ------------------------------------------------------------ */

/* MSG_MORE when a file body follows the head, and when the connection closes
 * after this response: the close then sends the last segment with the FIN in
 * it (one segment fewer, and the client woken once, as nginx's tcp_nopush
 * does).  Not for an error (the client may still be sending: a close with
 * unread bytes is a reset, which drops what is held) nor a stream's head. */
static int send_flags(const struct conn *c)
{
    return c->end > c->off || c->cork ? MSG_MORE : 0;
}

static void start_send(struct conn *c)
{
    c->state = C_SENDING;
    arm_timer(c, c->svc->cfg.send_timeout_s);
    int rc = io_send(c->svc->loop, &c->send_op, c->fd, c->iov, c->iovcnt, send_flags(c));
    if (rc < 0)
        conn_close(c);
}

/* Head (+ in-memory body) into c->iov.  body may be NULL. */
static void respond(struct conn *c, struct http_response_head *h, const char *body, size_t body_len)
{
    h->date = now_date(c->svc);
    h->keep_alive = c->keep_alive;
    size_t n = http_write_response_head(c->out, sizeof(c->out), h);
    if (!n) { /* cannot happen with our own fields; never send a broken head */
        conn_close(c);
        return;
    }
    c->status = h->status;
    /* decided here, not at each send: a keep-alive connection that turns to
     * close mid-send (a client pipelining past the buffer) is not held */
    c->cork = !c->keep_alive && h->status < 400;
    c->iov[0] = (struct iovec){c->out, n};
    c->iovcnt = 1;
    if (body && body_len) {
        c->iov[1] = (struct iovec){(void *)body, body_len};
        c->iovcnt = 2;
    }
    c->resp_bytes = body_len;
    if (h->status >= 500)
        c->svc->st.errors_5xx++;
    else if (h->status >= 400)
        c->svc->st.errors_4xx++;
    start_send(c);
}

static void respond_error(struct conn *c, int status, bool close_after)
{
    if (close_after)
        c->keep_alive = false;
    char *body = malloc(128);
    int n = body ? snprintf(body, 128, "%d %s\n", status, http_reason(status)) : 0;
    c->dyn_body = body;
    struct http_response_head h = {.status = status, .content_length = (uint64_t)(n > 0 ? n : 0),
                                   .content_type = "text/plain"};
    if (status == 405)
        h.extra = "Allow: GET, HEAD\r\n";
    else if (status == 503)
        h.extra = "Retry-After: 1\r\n";
    bool head_only = strcmp(c->method, "HEAD") == 0;
    respond(c, &h, head_only ? NULL : body, head_only ? 0 : (size_t)(n > 0 ? n : 0));
}

static void respond_redirect(struct conn *c, const char *target_path)
{
    char loc[1100];
    snprintf(loc, sizeof(loc), "/%s/", target_path);
    struct http_response_head h = {.status = 301, .content_length = 0, .location = loc};
    respond(c, &h, NULL, 0);
}

/* A directory listing (only with cfg.index). */
static bool respond_listing(struct conn *c, struct file_entry *dir, const char *rel, bool head_only)
{
    int fd = dup(dir->fd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return false;
    }
    size_t cap = 4096, len = 0;
    char *b = malloc(cap);
    len += (size_t)snprintf(b, cap, "<!doctype html><title>/%s</title><h1>/%s</h1><ul>\n", rel, rel);
    struct dirent *de;
    while (b && (de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        size_t need = strlen(de->d_name) * 2 + 64;
        if (len + need >= cap) {
            cap = (cap + need) * 2;
            char *nb = realloc(b, cap);
            if (!nb) {
                free(b);
                b = NULL;
                break;
            }
            b = nb;
        }
        bool isdir = de->d_type == DT_DIR;
        len += (size_t)snprintf(b + len, cap - len, "<li><a href=\"%s%s\">%s%s</a>\n", de->d_name,
                                isdir ? "/" : "", de->d_name, isdir ? "/" : "");
    }
    closedir(d);
    if (!b)
        return false;
    c->dyn_body = b;
    struct http_response_head h = {.status = 200, .content_length = len, .content_type = "text/html"};
    respond(c, &h, head_only ? NULL : b, head_only ? 0 : len);
    return true;
}

static void serve_file(struct conn *c, const struct http_request *req, const char *rel, bool want_dir)
{
    struct http_service *s = c->svc;
    bool head_only = req->method == HTTP_METHOD_HEAD;
    char idx[1100]; /* rel may point here after a directory's index.html is found */
    struct file_entry *f;
    int rc = file_cache_open(s->files, rel, io_loop_now_ms(s->loop), &f);
    if (rc == -EXDEV || rc == -ELOOP) { /* a symlink out of the root */
        s->st.traversal++;
        fprintf(stderr, "http: refused /%s from %s: leaves the served root\n", rel,
                inet_ntoa(c->peer.sin_addr));
        respond_error(c, 403, false);
        return;
    }
    if (rc == -EAGAIN) { /* a lease or delegation on the file (open is O_NONBLOCK): later */
        respond_error(c, 503, false);
        return;
    }
    if (rc < 0) {
        respond_error(c, rc == -ENOENT || rc == -ENOTDIR ? 404 : 403, false);
        return;
    }
    if (f->is_dir) {
        if (!want_dir && *rel) {
            file_cache_release(s->files, f);
            respond_redirect(c, rel);
            return;
        }
        snprintf(idx, sizeof(idx), "%s%sindex.html", rel, *rel ? "/" : "");
        struct file_entry *fi;
        if (file_cache_open(s->files, idx, io_loop_now_ms(s->loop), &fi) == 0 && !fi->is_dir) {
            file_cache_release(s->files, f);
            f = fi;
            rel = idx;
        } else {
            if (file_cache_open(s->files, idx, io_loop_now_ms(s->loop), &fi) == 0)
                file_cache_release(s->files, fi);
            bool ok = s->cfg.index && respond_listing(c, f, rel, head_only);
            file_cache_release(s->files, f);
            if (!ok)
                respond_error(c, s->cfg.index ? 500 : 403, false);
            return;
        }
    }
    c->file = f;
    struct http_response_head h = {.status = 200, .content_length = f->size, .content_type = http_mime_type(rel),
                                   .has_last_modified = true, .last_modified = f->mtime, .etag = f->etag,
                                   .accept_ranges = true};
    if (http_eval_conditional(req, f->etag, strlen(f->etag), f->mtime) == HTTP_COND_NOT_MODIFIED) {
        h.status = 304;
        respond(c, &h, NULL, 0);
        return;
    }
    uint64_t first = 0, last = f->size ? f->size - 1 : 0;
    int r = http_request_range(req, f->size, f->etag, strlen(f->etag), f->mtime, &first, &last);
    if (r == HTTP_RANGE_UNSATISFIABLE) {
        h.status = 416;
        h.complete_length = f->size;
        h.content_length = 0;
        respond(c, &h, NULL, 0);
        return;
    }
    if (r == HTTP_RANGE_OK) {
        h.status = 206;
        h.range_first = first;
        h.range_last = last;
        h.complete_length = f->size;
    }
    uint64_t len = f->size ? last - first + 1 : 0;
    if (head_only) {
        respond(c, &h, NULL, 0);
        c->resp_bytes = 0;
        return;
    }
    if (f->data) {
        respond(c, &h, f->data + first, len);
        return;
    }
    c->off = first;
    c->end = first + len;
    c->ra_next = first;
    respond(c, &h, NULL, 0);
    c->resp_bytes = len;
}

static void handle_request(struct conn *c, const struct http_request *req, const char *body, size_t body_len)
{
    struct http_service *s = c->svc;
    s->st.requests++;
    snprintf(c->method, sizeof(c->method), "%.*s", (int)(req->method_str.len < 7 ? req->method_str.len : 7),
             req->method_str.p);
    snprintf(c->logpath, sizeof(c->logpath), "%.*s",
             (int)(req->path.len > 1 ? (req->path.len - 1 < 150 ? req->path.len - 1 : 150) : 0), req->path.p + 1);
    char rel[1024];
    size_t rel_len;
    bool is_dir;
    int pr = http_path_resolve(req->path.p, req->path.len, rel, sizeof(rel), &rel_len, &is_dir);
    if (pr != HTTP_PATH_OK) {
        if (pr == HTTP_PATH_TRAVERSAL) {
            s->st.traversal++;
            fprintf(stderr, "http: refused %.*s from %s: %s\n", (int)(req->path.len > 200 ? 200 : req->path.len),
                    req->path.p, inet_ntoa(c->peer.sin_addr), http_path_strerror(pr));
        }
        respond_error(c, pr == HTTP_PATH_TRAVERSAL ? 403 : pr == HTTP_PATH_TOO_LONG ? 414 : 400, false);
        return;
    }
    if (s->cfg.route) {
        char query[1024] = "", auth[256] = "";
        if (req->query.p)
            snprintf(query, sizeof(query), "%.*s", (int)(req->query.len < 1023 ? req->query.len : 1023), req->query.p);
        const struct http_header *ah = http_header_get(req, "Authorization");
        if (ah)
            snprintf(auth, sizeof(auth), "%.*s", (int)(ah->value.len < 255 ? ah->value.len : 255), ah->value.p);
        struct http_dyn_request dr = {.method = (int)req->method, .path = rel, .query = query, .body = body,
                                      .body_len = body_len, .peer_ip = c->peer.sin_addr.s_addr, .auth = auth};
        struct http_dyn_response resp = {0};
        if (s->cfg.route(s->cfg.route_ctx, &dr, &resp)) {
            c->dyn_body = resp.body;
            if (resp.stream && req->method == HTTP_METHOD_GET) {
                stream_start(c, &resp);
                return;
            }
            struct http_response_head h = {.status = resp.status ? resp.status : 200,
                                           .content_length = resp.body_len,
                                           .content_type = resp.content_type ? resp.content_type : "text/plain"};
            bool head_only = req->method == HTTP_METHOD_HEAD;
            respond(c, &h, head_only ? NULL : resp.body, head_only ? 0 : resp.body_len);
            return;
        }
    }
    if (req->method != HTTP_METHOD_GET && req->method != HTTP_METHOD_HEAD) {
        respond_error(c, req->method == HTTP_METHOD_OTHER ? 501 : 405, false);
        return;
    }
    if (s->root_fd < 0) {
        respond_error(c, 404, false);
        return;
    }
    serve_file(c, req, rel, is_dir);
}

/* Parse what is buffered; answer one request at a time (pipelining keeps the
 * rest in the buffer until this response is out). */
static void conn_process(struct conn *c)
{
    struct http_service *s = c->svc;
    if (c->state != C_READING)
        return;
    if (c->in_len == 0) {
        if (c->eof)
            conn_close(c);
        return;
    }
    struct http_request req;
    /* a line cap below the head cap, so an over-long URI is a 414, not a 431 */
    static const struct http_limits lim = {HEAD_BUF - 2048, HEAD_BUF, HTTP_MAX_HEADERS};
    int rc = http_parse_request(c->in, c->in_len, &req, &lim);
    if (rc == HTTP_PARSE_PARTIAL) {
        if (c->eof) {
            conn_close(c);
            return;
        }
        if (!c->head_started_ms) {
            c->head_started_ms = io_loop_now_ms(s->loop);
            arm_timer(c, s->cfg.header_timeout_s);
        }
        if (c->in_len >= HEAD_BUF) {
            strcpy(c->method, "?");
            c->logpath[0] = 0;
            respond_error(c, 431, true);
        }
        return;
    }
    c->req_started_ms = c->head_started_ms ? c->head_started_ms : io_loop_now_ms(s->loop);
    c->head_started_ms = 0;
    if (rc < 0) {
        strcpy(c->method, "?");
        c->logpath[0] = 0;
        s->st.requests++;
        respond_error(c, http_parse_status(rc), true);
        c->in_len = 0;
        return;
    }
    size_t body_len = 0;
    if (req.has_content_length) {
        if (req.content_length > BODY_MAX) {
            s->st.requests++;
            respond_error(c, 413, true);
            c->in_len = 0;
            return;
        }
        body_len = (size_t)req.content_length;
        if (c->in_len < (size_t)rc + body_len) {
            if (c->eof)
                conn_close(c);
            else if (!c->head_started_ms) { /* wait for the body, within the header deadline */
                c->head_started_ms = c->req_started_ms;
                arm_timer(c, s->cfg.header_timeout_s);
            }
            return;
        }
    }
    c->keep_alive = req.keep_alive && !s->draining;
    size_t consumed = (size_t)rc + body_len;
    /* req points into c->in: handle it before shifting the buffer. Responses
     * never point into c->in (heads go to c->out, bodies are files or heap). */
    handle_request(c, &req, c->in + rc, body_len);
    memmove(c->in, c->in + consumed, c->in_len - consumed);
    c->in_len -= consumed;
}

static void response_done(struct conn *c)
{
    struct http_service *s = c->svc;
    s->st.bytes += c->resp_bytes;
    done_hook(c, c->resp_bytes > c->hook_reported ? c->resp_bytes - c->hook_reported : 0, true);
    log_request(c);
    conn_release_response(c);
    c->off = c->end = 0;
    if (c->streaming && c->state != C_CLOSING && !s->draining) {
        stream_begin(c);
        return;
    }
    if (!c->keep_alive || c->state == C_CLOSING) {
        conn_close(c);
        return;
    }
    c->state = C_READING;
    arm_timer(c, s->cfg.idle_timeout_s);
    if (c->recv_done && !c->eof) { /* recv was paused on a full buffer */
        c->recv_done = false;
        if (io_recv(s->loop, &c->recv_op, c->fd) < 0) {
            conn_close(c);
            return;
        }
    }
    conn_process(c);
}

static void send_more(struct conn *c)
{
    struct http_service *s = c->svc;
    if (c->off >= c->end) {
        response_done(c);
        return;
    }
    size_t n = c->end - c->off > s->cfg.chunk ? s->cfg.chunk : (size_t)(c->end - c->off);
    /* Keep the page cache ahead of the socket, so sendfile from the worker
     * rarely waits for the disk (cold install.img after a reboot).  Only
     * beyond this chunk (which this sendfile reads anyway) and only within
     * the response: a body of one chunk costs no fadvise call, and a 1 MiB
     * Range read does not read 8 MiB into the page cache (with install.img
     * partly evicted, that was 22% of the worker's CPU on such reads). */
    if (c->ra_next < c->off + n)
        c->ra_next = c->off + n;
    if (c->off + 4 * s->cfg.chunk >= c->ra_next && c->ra_next < c->end) {
        /* windows of 8 MiB ending on a block boundary, so that after the
         * first every window covers whole blocks and the cache's record of
         * them lets the next reader of this file skip the advice */
        uint64_t ra_end = (c->ra_next + (8ull << 20)) & ~(FILE_CACHE_RA_BLOCK - 1);
        if (ra_end > c->end)
            ra_end = c->end;
        file_cache_readahead(c->file, c->ra_next, ra_end - c->ra_next, io_loop_now_ms(s->loop));
        c->ra_next = ra_end;
    }
    if (io_sendfile(s->loop, &c->send_op, c->fd, c->file->fd, c->off, n) < 0)
        conn_close(c);
}

static void on_send(struct io_op *op, const struct io_completion *cq)
{
    struct conn *c = op->owner;
    if (c->state == C_CLOSING) {
        conn_maybe_free(c);
        return;
    }
    if (c->state == C_STREAMING) {
        stream_sent(c, cq->res);
        return;
    }
    if (cq->res <= 0) { /* peer gone, reset, or a file shrank under us */
        conn_close(c);
        return;
    }
    arm_timer(c, c->svc->cfg.send_timeout_s);
    if (op->kind == IO_OP_SENDFILE) {
        c->off += (uint64_t)cq->res;
        if (c->svc->cfg.on_done) {
            c->hook_reported += (uint64_t)cq->res;
            done_hook(c, (uint64_t)cq->res, false);
        }
        send_more(c);
        return;
    }
    /* advance the iovec by what went out */
    size_t done = (size_t)cq->res;
    int i = 0;
    while (i < c->iovcnt && done >= c->iov[i].iov_len)
        done -= c->iov[i++].iov_len;
    if (i < c->iovcnt) {
        memmove(c->iov, c->iov + i, (size_t)(c->iovcnt - i) * sizeof(c->iov[0]));
        c->iovcnt -= i;
        c->iov[0].iov_base = (char *)c->iov[0].iov_base + done;
        c->iov[0].iov_len -= done;
        if (io_send(c->svc->loop, &c->send_op, c->fd, c->iov, c->iovcnt, send_flags(c)) < 0)
            conn_close(c);
        return;
    }
    send_more(c);
}

static void on_recv(struct io_op *op, const struct io_completion *cq)
{
    struct conn *c = op->owner;
    if (c->state == C_CLOSING) {
        conn_maybe_free(c);
        return;
    }
    if (c->state == C_STREAMING) { /* a stream only listens for the close */
        if (cq->res <= 0)
            conn_close(c);
        else if (!cq->more && io_recv(c->svc->loop, &c->recv_op, c->fd) < 0)
            conn_close(c);
        return;
    }
    if (cq->res == -ECANCELED) { /* paused on a full buffer: resumes in response_done */
        c->recv_done = true;
        return;
    }
    if (cq->res <= 0) {
        if (!cq->more)
            c->recv_done = true;
        c->eof = true;
        if (c->state == C_READING)
            conn_process(c);
        /* while sending, the response finishes first; then the close */
        return;
    }
    size_t room = sizeof(c->in) - c->in_len;
    size_t n = cq->len < room ? cq->len : room;
    memcpy(c->in + c->in_len, cq->buf, n);
    c->in_len += n;
    if (!cq->more)
        c->recv_done = true;
    if (n < cq->len || c->in_len == sizeof(c->in)) {
        /* a client pipelining faster than we answer: stop reading until the
         * buffer drains (recv resumes in response_done) */
        if (c->state == C_SENDING) {
            if (cq->more)
                io_cancel(c->svc->loop, op);
            if (n < cq->len) { /* bytes we could not keep: the stream is broken */
                c->keep_alive = false;
            }
        }
    }
    if (c->state == C_READING)
        conn_process(c);
}

static const char busy_503[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nRetry-After: 1\r\n"
                               "Connection: close\r\n\r\n";

/* Queues the accept again; if even that fails (no memory, no room in the
 * ring), tries once more after ACCEPT_PAUSE_MS rather than never. */
static void accept_again(struct http_service *s)
{
    if (io_accept(s->loop, &s->accept_op, s->listen_fd) < 0)
        io_timer_arm(s->loop, &s->accept_retry, ACCEPT_PAUSE_MS);
}

static void on_accept_retry(struct io_timer *t)
{
    struct http_service *s = t->owner;
    if (!s->draining && !io_op_busy(&s->accept_op))
        accept_again(s);
}

static void on_accept(struct io_op *op, const struct io_completion *cq)
{
    struct http_service *s = op->owner;
    if (cq->res < 0) {
        if (!cq->more && !s->draining && cq->res != -ECANCELED) {
            /* Out of descriptors (or memory): re-arming at once would spin on the
             * same error while the backlog holds connections.  They wait there;
             * accepting resumes after ACCEPT_PAUSE_MS, as nginx does. */
            bool no_room = cq->res == -EMFILE || cq->res == -ENFILE || cq->res == -ENOBUFS || cq->res == -ENOMEM ||
                           cq->res == -EBUSY; /* io_uring: no room in the ring */
            if (s->accept_errors++ == 0)
                fprintf(stderr, "http: accept: %s; %s\n", strerror(-cq->res),
                        no_room ? "new connections wait in the backlog until descriptors free up"
                                : "accepting again");
            if (no_room)
                io_timer_arm(s->loop, &s->accept_retry, ACCEPT_PAUSE_MS);
            else
                accept_again(s);
        }
        return;
    }
    if (s->accept_errors) {
        fprintf(stderr, "http: accepting again (%llu accept errors)\n", (unsigned long long)s->accept_errors);
        s->accept_errors = 0;
    }
    int fd = cq->res;
    if (s->draining) {
        close(fd);
        return;
    }
    s->st.conns_accepted++;
    if (s->st.conns_open >= s->cfg.max_conns) {
        s->st.conns_refused++;
        ssize_t w = send(fd, busy_503, sizeof(busy_503) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
        (void)w;
        close(fd);
        return;
    }
    struct conn *c = conn_new(s, fd);
    if (!c) {
        close(fd);
        return;
    }
    memcpy(&c->peer, cq->peer, sizeof(c->peer)); /* both backends give it; the listener is IPv4 */
    if (!s->nodelay_inherited)
        sock_set_nodelay(fd);
    c->recv_op.fn = on_recv;
    c->send_op.fn = on_send;
    c->timer.fn = on_timer;
    c->state = C_READING;
    arm_timer(c, s->cfg.idle_timeout_s);
    if (io_recv(s->loop, &c->recv_op, fd) < 0) {
        c->state = C_CLOSING;
        conn_maybe_free(c);
    }
}

int http_service_start(struct http_service **out, struct io_loop *loop, const struct http_service_config *cfg,
                       char *err, size_t errlen)
{
    struct http_service *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->loop = loop;
    s->cfg = *cfg;
    logbuf_init(&s->log, STDOUT_FILENO, "http", 0);
    if (!s->cfg.chunk)
        s->cfg.chunk = 1024 * 1024;
    if (!s->cfg.small_file_max)
        s->cfg.small_file_max = 64 * 1024;
    if (!s->cfg.max_conns)
        s->cfg.max_conns = 10000;
    if (!s->cfg.stream_max_unsent)
        s->cfg.stream_max_unsent = 1u << 20;
    s->root_fd = -1;
    if (cfg->root) {
        s->root_fd = open(cfg->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (s->root_fd < 0) {
            int e = errno;
            snprintf(err, errlen, "--http-root %s: %s", cfg->root, strerror(e));
            free(s);
            return -e;
        }
    }
    s->files = file_cache_new(s->root_fd, s->cfg.small_file_max, 4096);
    s->listen_fd = sock_tcp_listen(cfg->listen_addr, cfg->port, cfg->backlog ? cfg->backlog : 4096, true, err, errlen);
    if (s->listen_fd < 0 || !s->files) {
        int e = s->listen_fd < 0 ? s->listen_fd : -ENOMEM;
        if (s->root_fd >= 0)
            close(s->root_fd);
        if (s->listen_fd >= 0)
            close(s->listen_fd);
        file_cache_free(s->files);
        free(s);
        return e;
    }
    /* An accepted socket is a clone of its listener and keeps its TCP_NODELAY:
     * one setsockopt here instead of one per connection (5% of the server's
     * CPU in the connection storm). */
    s->nodelay_inherited = sock_set_nodelay(s->listen_fd) == 0;
    /* The congestion control is inherited the same way.  With bbr and no fq
     * qdisc the kernel paces each connection with an hrtimer of its own: on
     * this VM 2-5x the CPU per GB of cubic for install.img
     * (bench/RESULTS.md, "TCP congestion control").  Failing to set it (a
     * name not in tcp_allowed_congestion_control, without root) costs speed,
     * not correctness: say so once and go on. */
    static atomic_bool congestion_warned; /* one line, not one per worker */
    int cc = cfg->congestion ? sock_set_congestion(s->listen_fd, cfg->congestion) : 0;
    if (cc < 0 && !atomic_exchange(&congestion_warned, true))
        fprintf(stderr, "http: TCP congestion control %s not set: %s; connections use the kernel's default\n",
                cfg->congestion, strerror(-cc));
    /* Accepted only with its request: the accept and the first recv are one
     * wakeup, not two (connection storm: 14.6 vs 26.6 µs of server CPU per
     * connection; bench/RESULTS.md).  Every HTTP client speaks first. */
    if (cfg->defer_accept_s) {
        int da = sock_set_defer_accept(s->listen_fd, cfg->defer_accept_s);
        if (da < 0)
            fprintf(stderr, "http: TCP_DEFER_ACCEPT not set: %s; each connection costs one wakeup more\n",
                    strerror(-da));
    }
    s->accept_op.fn = on_accept;
    s->accept_op.owner = s;
    s->accept_retry.fn = on_accept_retry;
    s->accept_retry.owner = s;
    int rc = io_accept(loop, &s->accept_op, s->listen_fd);
    if (rc < 0) {
        snprintf(err, errlen, "accept: %s", strerror(-rc));
        close(s->listen_fd);
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void http_service_drain(struct http_service *s)
{
    if (s->draining)
        return;
    s->draining = true;
    io_timer_cancel(s->loop, &s->accept_retry);
    io_cancel(s->loop, &s->accept_op);
    for (unsigned i = s->nall; i-- > 0;) {
        struct conn *c = s->all[i];
        if ((c->state == C_READING && c->in_len == 0) || c->state == C_STREAMING)
            conn_close(c);
        else
            c->keep_alive = false;
    }
}

void http_service_abort(struct http_service *s)
{
    http_service_drain(s);
    for (unsigned i = s->nall; i-- > 0;)
        conn_close(s->all[i]);
}

unsigned http_service_open_conns(const struct http_service *s) { return (unsigned)s->st.conns_open; }

void http_service_get_stats(const struct http_service *s, struct http_service_stats *out) { *out = s->st; }

void http_service_free(struct http_service *s)
{
    if (!s)
        return;
    http_service_flush_log(s);
    io_timer_cancel(s->loop, &s->accept_retry);
    close(s->listen_fd); /* an accept still in flight never completes: the loop goes with it */
    while (s->free_list) {
        struct conn *c = s->free_list;
        s->free_list = c->next_free;
        free(c);
    }
    file_cache_free(s->files);
    if (s->root_fd >= 0)
        close(s->root_fd);
    free(s->streams);
    free(s->all);
    logbuf_free(&s->log);
    free(s);
}

/* ---- streams (Server-Sent Events) and the done hook (issue 6) -------------
 * A stream is a connection in C_STREAMING: its response head went out
 * without a length, the body is whatever is broadcast, and it ends when the
 * client closes, the service drains, or the reader falls too far behind.
 * Broadcast only copies into the stream's buffer; one send per stream is in
 * flight at a time, and what arrives meanwhile waits in the other buffer. */

static void done_hook(struct conn *c, uint64_t bytes, bool final)
{
    struct http_service *s = c->svc;
    if (!s->cfg.on_done)
        return;
    struct http_done_info d = {.peer_ip = c->peer.sin_addr.s_addr, .method = c->method, .path = c->logpath,
                               .status = c->status, .bytes = bytes, .final = final};
    s->cfg.on_done(s->cfg.done_ctx, &d);
    if (final)
        c->hook_reported = 0;
}

static void stream_start(struct conn *c, const struct http_dyn_response *resp)
{
    struct http_service *s = c->svc;
    if (!s->draining && s->nstreams == s->capstreams) {
        unsigned cap = s->capstreams ? s->capstreams * 2 : 16;
        struct conn **a = realloc(s->streams, cap * sizeof(*a));
        if (a) {
            s->streams = a;
            s->capstreams = cap;
        }
    }
    if (s->draining || s->nstreams == s->capstreams) {
        free(c->dyn_body);
        c->dyn_body = NULL;
        respond_error(c, 503, true);
        return;
    }
    s->streams[s->nstreams++] = c;
    c->listed = c->streaming = true;
    c->keep_alive = false;
    s->st.streams_open++;
    int n = snprintf(c->out, sizeof(c->out),
                     "HTTP/1.1 200 OK\r\nDate: %s\r\nContent-Type: %s\r\nCache-Control: no-cache\r\n"
                     "X-Accel-Buffering: no\r\nConnection: close\r\n\r\n",
                     now_date(s), resp->content_type ? resp->content_type : "text/event-stream");
    if (n <= 0 || (size_t)n >= sizeof(c->out)) {
        conn_close(c);
        return;
    }
    c->status = 200;
    c->cork = false; /* a stream's head goes at once */
    c->iov[0] = (struct iovec){c->out, (size_t)n};
    c->iovcnt = 1;
    if (resp->body && resp->body_len) {
        c->iov[1] = (struct iovec){resp->body, resp->body_len};
        c->iovcnt = 2;
    }
    c->resp_bytes = resp->body_len;
    start_send(c);
}

static void stream_unlist(struct conn *c)
{
    struct http_service *s = c->svc;
    if (!c->listed)
        return;
    c->listed = false;
    for (unsigned i = 0; i < s->nstreams; i++) {
        if (s->streams[i] == c) {
            s->streams[i] = s->streams[--s->nstreams];
            break;
        }
    }
    s->st.streams_open--;
}

/* Sends what is buffered, if nothing is in flight. */
static void stream_flush(struct conn *c)
{
    if (c->state != C_STREAMING || io_op_busy(&c->send_op))
        return;
    struct stream_buf *cur = &c->sbuf[c->s_cur];
    if (c->s_sent >= cur->len) { /* all of it went: the other buffer is next */
        cur->len = 0;
        c->s_sent = 0;
        c->s_cur ^= 1;
        cur = &c->sbuf[c->s_cur];
    }
    if (cur->len == 0) {
        io_timer_cancel(c->svc->loop, &c->timer); /* an idle stream has no deadline */
        return;
    }
    c->iov[0] = (struct iovec){cur->p + c->s_sent, cur->len - c->s_sent};
    c->iovcnt = 1;
    arm_timer(c, c->svc->cfg.send_timeout_s);
    if (io_send(c->svc->loop, &c->send_op, c->fd, c->iov, 1, 0) < 0)
        conn_close(c);
}

static void stream_begin(struct conn *c)
{
    c->state = C_STREAMING;
    c->in_len = 0;
    io_timer_cancel(c->svc->loop, &c->timer);
    if (c->recv_done && !c->eof) { /* recv was paused on a full buffer: listen for the close again */
        c->recv_done = false;
        if (io_recv(c->svc->loop, &c->recv_op, c->fd) < 0) {
            conn_close(c);
            return;
        }
    } else if (c->eof) {
        conn_close(c);
        return;
    }
    stream_flush(c);
}

static void stream_sent(struct conn *c, int res)
{
    if (res <= 0) {
        conn_close(c);
        return;
    }
    c->s_sent += (size_t)res;
    stream_flush(c);
}

unsigned http_service_broadcast(struct http_service *s, const void *data, size_t len)
{
    unsigned n = 0;
    /* backwards: a dropped stream is replaced by the last one, already done */
    for (unsigned i = s->nstreams; i-- > 0;) {
        struct conn *c = s->streams[i];
        struct stream_buf *cur = &c->sbuf[c->s_cur], *pend = &c->sbuf[c->s_cur ^ 1];
        size_t unsent = cur->len - c->s_sent + pend->len;
        bool fits = unsent + len <= s->cfg.stream_max_unsent;
        if (fits && pend->len + len > pend->cap) {
            size_t cap = pend->cap ? pend->cap : 4096;
            while (cap < pend->len + len)
                cap *= 2;
            char *p = realloc(pend->p, cap);
            if (p) {
                pend->p = p;
                pend->cap = cap;
            } else {
                fits = false;
            }
        }
        if (!fits) {
            char a[48];
            sock_addr_str(&c->peer, a, sizeof(a));
            fprintf(stderr, "http: event stream to %s dropped: slow reader (%zu bytes would wait, limit %zu)\n", a,
                    unsent + len, s->cfg.stream_max_unsent);
            s->st.streams_dropped++;
            conn_close(c);
            continue;
        }
        memcpy(pend->p + pend->len, data, len);
        pend->len += len;
        n++;
        stream_flush(c);
    }
    return n;
}

unsigned http_service_stream_count(const struct http_service *s) { return s->nstreams; }
