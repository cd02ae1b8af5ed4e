/* Criterion suite for the Server-Sent Events path: the framing (engine/web.h
 * web_sse_frame), and /api/events end to end on a real io loop with the HTTP
 * service's streams: the head, a state change arriving within a second, the
 * JSON API next to it, a fast reader that sees every host, and a slow reader
 * that is dropped while the server keeps answering others. */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "engine/http_service.h"
#include "engine/tracker.h"
#include "engine/web.h"
#include "io/loop.h"

/* ---- framing ---- */

static char out[1024];

static const char *frame(const char *event, uint64_t id, const char *data)
{
    size_t n = web_sse_frame(out, sizeof out, event, id, data, strlen(data));
    cr_assert_lt(n, sizeof out);
    out[n] = 0;
    return out;
}

Test(sse, one_line)
{
    cr_assert_str_eq(frame("host", 0, "{\"a\":1}"), "event: host\ndata: {\"a\":1}\n\n");
    cr_assert_str_eq(frame(NULL, 42, "x"), "id: 42\ndata: x\n\n");
}

Test(sse, every_line_end_splits_and_none_can_end_the_message)
{
    /* LF, CRLF and a lone CR each end a line (WHATWG HTML 9.2.5); a blank
     * line inside data would dispatch early, so each line is its own field */
    cr_assert_str_eq(frame("e", 0, "a\nb\r\nc\rd"), "event: e\ndata: a\ndata: b\ndata: c\ndata: d\n\n");
    cr_assert_str_eq(frame("e", 0, "a\n\nb"), "event: e\ndata: a\ndata: \ndata: b\n\n");
    cr_assert_str_eq(frame("e", 0, "a\n"), "event: e\ndata: a\ndata: \n\n", "a trailing line end survives");
    cr_assert_str_eq(frame(NULL, 0, ""), "data: \n\n");
    cr_assert_str_eq(frame(NULL, 0, "\r\n"), "data: \ndata: \n\n");
}

Test(sse, event_names_cannot_inject_fields)
{
    cr_assert_eq(web_sse_frame(out, sizeof out, "host\ndata: x", 0, "y", 1), 0);
    cr_assert_eq(web_sse_frame(out, sizeof out, "host\r", 0, "y", 1), 0);
}

Test(sse, length_needed_when_too_small)
{
    size_t need = web_sse_frame(NULL, 0, "host", 7, "abc", 3);
    cr_assert_eq(need, strlen("id: 7\nevent: host\ndata: abc\n\n"));
    char small[8];
    memset(small, '#', sizeof small);
    cr_assert_eq(web_sse_frame(small, 5, "host", 7, "abc", 3), need);
    cr_assert_eq(memcmp(small, "id: 7###", 8), 0, "writes only what fits");
}

Test(sse, host_json_escapes)
{
    struct tracker_host h = {.stage = TRACKER_STAGE_KERNEL, .fail_ms = 5, .fail_kind = TRACKER_FAIL_HTTP_4XX,
                             .ip = 0x0a000001u, .bytes = 9, .version = 3, .cycles = 1};
    strcpy(h.mac_str, "52:54:00:00:00:01");
    strcpy(h.hostname, "n1");
    strcpy(h.rack, "r\"1\\");
    strcpy(h.fail_reason, "bad\nline\x01");
    char j[1024];
    size_t n = web_host_json(j, sizeof j, &h);
    cr_assert_lt(n, sizeof j);
    j[n] = 0;
    cr_assert_not_null(strstr(j, "\"rack\":\"r\\\"1\\\\\""), "%s", j);
    cr_assert_not_null(strstr(j, "\"reason\":\"bad\\nline\\u0001\""), "%s", j);
    cr_assert_not_null(strstr(j, "\"ip\":\"10.0.0.1\""), "%s", j);
    cr_assert_not_null(strstr(j, "\"stage\":\"kernel\""), "%s", j);
    cr_assert_not_null(strstr(j, "\"kind\":\"http_4xx\""), "%s", j);
    cr_assert_null(strchr(j, '\n'), "one line: it is an SSE data field");
}

/* ---- end to end ---- */

static struct tracker *tr;
static struct web *web;
static struct io_loop *loop;
static struct http_service *http;
static struct web_worker *ww;
static pthread_t th;
static uint16_t port;
static size_t max_unsent;
static atomic_int stopping, ready;
static struct http_service_stats final_stats;
static char err[512];

static uint16_t free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    bind(s, (struct sockaddr *)&a, sizeof a);
    getsockname(s, (struct sockaddr *)&a, &l);
    close(s);
    return ntohs(a.sin_port);
}

static void idle(void *arg)
{
    (void)arg;
    web_worker_idle(ww);
    if (atomic_load(&stopping)) {
        http_service_abort(http);
        if (http_service_open_conns(http) == 0)
            io_loop_stop(loop);
    }
}

static void *loop_main(void *arg)
{
    (void)arg;
    char why[256];
    struct io_loop_config lc = {0};
    if (io_loop_new(&loop, &lc, why, sizeof why) < 0) {
        atomic_store(&ready, -1);
        return NULL;
    }
    struct http_service_config hc = {.listen_addr = htonl(INADDR_LOOPBACK), .port = port, .idle_timeout_s = 5,
                                     .header_timeout_s = 5, .send_timeout_s = 30, .max_conns = 100, .quiet = true,
                                     .route = web_route, .route_ctx = web, .on_done = web_http_done,
                                     .done_ctx = web, .stream_max_unsent = max_unsent};
    if (http_service_start(&http, loop, &hc, err, sizeof err) < 0) {
        io_loop_free(loop);
        atomic_store(&ready, -1);
        return NULL;
    }
    ww = web_worker_new(web, 0, loop, http, NULL);
    io_loop_set_idle_hook(loop, idle, NULL);
    atomic_store(&ready, 1);
    io_loop_run(loop);
    http_service_get_stats(http, &final_stats);
    web_worker_free(ww);
    http_service_free(http);
    io_loop_free(loop);
    return NULL;
}

static void start(size_t unsent)
{
    struct tracker_config tc = {.no_thread = true};
    cr_assert_eq(tracker_create(&tr, &tc, err, sizeof err), 0, "%s", err);
    struct web_config wc = {.tracker = tr, .heartbeat_ms = 100000};
    cr_assert_eq(web_create(&web, &wc), 0);
    max_unsent = unsent;
    atomic_store(&stopping, 0);
    atomic_store(&ready, 0);
    for (int tries = 0; tries < 5; tries++) {
        port = free_port();
        pthread_create(&th, NULL, loop_main, NULL);
        while (!atomic_load(&ready))
            usleep(1000);
        if (atomic_load(&ready) == 1)
            return;
        pthread_join(th, NULL);
        atomic_store(&ready, 0);
    }
    cr_assert_fail("cannot start the HTTP service: %s", err);
}

static void stop(void)
{
    atomic_store(&stopping, 1);
    io_loop_wake(loop);
    pthread_join(th, NULL);
    web_free(web);
    tracker_free(tr);
}

static int dial(int rcvbuf)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (rcvbuf)
        setsockopt(s, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(connect(s, (struct sockaddr *)&a, sizeof a), 0, "connect: %s", strerror(errno));
    return s;
}

static void say(int s, const char *req) { cr_assert_eq(send(s, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req)); }

static uint64_t ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Reads into buf (appending at *len) until want appears or the time is up;
 * true when found.  buf stays NUL-terminated. */
static bool read_until(int s, char *buf, size_t cap, size_t *len, const char *want, unsigned ms)
{
    uint64_t end = ms_now() + ms;
    while (!strstr(buf, want)) {
        uint64_t now = ms_now();
        if (now >= end || *len + 1 >= cap)
            return false;
        struct pollfd p = {s, POLLIN, 0};
        if (poll(&p, 1, (int)(end - now)) <= 0)
            return false;
        ssize_t n = recv(s, buf + *len, cap - 1 - *len, 0);
        if (n <= 0)
            return false;
        *len += (size_t)n;
        buf[*len] = 0;
    }
    return true;
}

static char *get_body(const char *path)
{
    int s = dial(0);
    char req[256];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", path);
    say(s, req);
    size_t cap = 1 << 22, len = 0;
    char *b = calloc(1, cap);
    read_until(s, b, cap, &len, "\x01never", 3000); /* to the close */
    close(s);
    return b;
}

static const uint8_t A[6] = {0x52, 0x54, 0x00, 0x00, 0x00, 0x01};

Test(sse_stream, events_reach_the_reader_within_a_second)
{
    start(0);
    int s = dial(0);
    say(s, "GET /api/events HTTP/1.1\r\nHost: t\r\n\r\n");
    static char buf[1 << 16];
    size_t len = 0;
    buf[0] = 0;
    cr_assert(read_until(s, buf, sizeof buf, &len, "bootstorm host events\n\n", 2000), "got: %s", buf);
    cr_assert_eq(strncmp(buf, "HTTP/1.1 200 OK\r\n", 17), 0, "%s", buf);
    cr_assert_not_null(strstr(buf, "Content-Type: text/event-stream\r\n"));
    cr_assert_not_null(strstr(buf, "Cache-Control: no-cache\r\n"));
    cr_assert_null(strstr(buf, "Content-Length"), "a stream has no length");
    cr_assert_not_null(strstr(buf, "\r\n\r\nretry: 2000\n"));

    uint64_t t0 = ms_now();
    tracker_record(tr, A, TRACKER_STAGE_DISCOVER, 0);
    tracker_record(tr, A, TRACKER_STAGE_KERNEL, 0); /* from another thread: the worker's timer picks it up */
    cr_assert(read_until(s, buf, sizeof buf, &len, "\"stage\":\"kernel\"", 1000), "no event in 1 s: %s", buf);
    cr_assert_lt(ms_now() - t0, 1000);
    char *ev = strstr(buf, "event: host\ndata: {\"mac\":\"52:54:00:00:00:01\"");
    cr_assert_not_null(ev, "%s", buf);
    cr_assert_not_null(strstr(ev, "}\n\n"), "the message ends with a blank line");

    /* the JSON API answers next to the open stream */
    char *body = get_body("/api/hosts?stage=kernel");
    cr_assert_not_null(strstr(body, "HTTP/1.1 200 OK"), "%s", body);
    cr_assert_not_null(strstr(body, "\"listed\":1,\"hosts\":[{\"mac\":\"52:54:00:00:00:01\""), "%s", body);
    cr_assert_not_null(strstr(body, "\"kernel\":1,"), "%s", body);
    free(body);
    body = get_body("/api/hosts?stage=warp");
    cr_assert_not_null(strstr(body, "HTTP/1.1 400"), "%s", body);
    cr_assert_not_null(strstr(body, "unknown stage 'warp'"), "%s", body);
    free(body);
    body = get_body("/api/hosts/52-54-00-00-00-01");
    cr_assert_not_null(strstr(body, "\"timeline\":[{\"stage\":\"discover\""), "%s", body);
    free(body);
    close(s);
    stop();
    cr_assert_eq(final_stats.streams_dropped, 0);
    cr_assert_eq(final_stats.streams_open, 0, "the closed stream was let go");
}

#define MANY 3000

Test(sse_stream, a_fast_reader_sees_every_host)
{
    start(16u << 20);
    int s = dial(0);
    say(s, "GET /api/events HTTP/1.1\r\nHost: t\r\n\r\n");
    size_t cap = 8u << 20, len = 0;
    char *buf = calloc(1, cap);
    cr_assert(read_until(s, buf, cap, &len, "host events\n\n", 2000));
    for (int i = 0; i < MANY; i++) {
        uint8_t m[6] = {0x02, 0, 0, 0, (uint8_t)(i >> 8), (uint8_t)i};
        tracker_record(tr, m, TRACKER_STAGE_LOADER, 0);
    }
    cr_assert(read_until(s, buf, cap, &len, "\"mac\":\"02:00:00:00:0b:b7\"", 5000), "last host missing");
    for (int i = 0; i < MANY; i++) {
        char want[64];
        snprintf(want, sizeof want, "data: {\"mac\":\"02:00:00:00:%02x:%02x\"", (i >> 8) & 255, i & 255);
        cr_assert_not_null(strstr(buf, want), "host %d missing", i);
    }
    /* framing intact all the way: every message is "event: host\ndata: {...}\n\n" */
    size_t events = 0;
    for (char *p = strstr(buf, "event: host\n"); p; p = strstr(p + 1, "event: host\n")) {
        cr_assert_eq(strncmp(p + 12, "data: {", 7), 0);
        char *e = strstr(p, "}\n\n");
        cr_assert_not_null(e);
        cr_assert_null(memchr(p + 12, '\n', (size_t)(e - (p + 12))), "one data line per message");
        events++;
    }
    cr_assert_geq(events, MANY);
    free(buf);
    close(s);
    stop();
    cr_assert_eq(final_stats.streams_dropped, 0);
}

Test(sse_stream, a_slow_reader_is_dropped_and_never_blocks)
{
    start(64 * 1024);
    int slow = dial(2048);
    say(slow, "GET /api/events HTTP/1.1\r\nHost: t\r\n\r\n");
    char head[4096] = "";
    size_t hl = 0;
    cr_assert(read_until(slow, head, sizeof head, &hl, "host events\n\n", 2000));
    /* the reader stops reading; thousands of changes follow */
    for (int i = 0; i < 6000; i++) {
        uint8_t m[6] = {0x02, 0, 0, 1, (uint8_t)(i >> 8), (uint8_t)i};
        tracker_record(tr, m, TRACKER_STAGE_CONFIG, 0);
    }
    /* the server keeps answering everyone else meanwhile */
    uint64_t t0 = ms_now();
    char *body = get_body("/api/hosts?stage=config");
    cr_assert_not_null(strstr(body, "\"listed\":6000"), "%.300s", body);
    cr_assert_lt(ms_now() - t0, 2000);
    free(body);
    /* the slow stream was closed: reading what was queued ends in EOF */
    size_t total = 0;
    uint64_t end = ms_now() + 5000;
    bool eof = false;
    static char sink[1 << 16];
    while (ms_now() < end) {
        struct pollfd p = {slow, POLLIN, 0};
        if (poll(&p, 1, 500) <= 0)
            continue;
        ssize_t n = recv(slow, sink, sizeof sink, 0);
        if (n <= 0) {
            eof = true;
            break;
        }
        total += (size_t)n;
    }
    cr_assert(eof, "the slow stream is still open after %zu bytes", total);
    close(slow);
    stop();
    cr_assert_eq(final_stats.streams_dropped, 1);
}
