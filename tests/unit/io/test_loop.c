/* tests/unit/io/test_loop.c — the event core (io/loop.h), on both backends.
 *
 * Every test body is a function of the backend and runs twice, as
 * loop_uring::<name> and loop_epoll::<name> (the BOTH() macro).  The loop under
 * test is the server side; clients are plain blocking sockets in helper threads
 * or sockets driven from the test itself.
 *
 * A counter is raised around every call that queues or cancels an op (Q/QV)
 * and every callback asserts it is zero: "callbacks never run inside the call
 * that queued the op" is checked everywhere, not only in its own test. */
#include "io/loop.h"
#include "io/sock.h"

#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* ---- harness -------------------------------------------------------------- */

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
/* The runner's own Criterion leak is suppressed by tests/unit/common/lsan_runner.c;
 * leak_check() makes a leak in a test process fail its test. */
static void leak_check(void)
{
    cr_assert_eq(__lsan_do_recoverable_leak_check(), 0, "memory leaked: see the LeakSanitizer report");
}
#else
static void leak_check(void) {}
#endif

#define BOTH(name, secs)                                                                                   \
    static void name(enum io_backend be);                                                                  \
    Test(loop_uring, name, .timeout = (secs), .fini = leak_check) { name(IO_BACKEND_URING); }              \
    Test(loop_epoll, name, .timeout = (secs), .fini = leak_check) { name(IO_BACKEND_EPOLL); }              \
    static void name(enum io_backend be)

static int in_call; /* > 0 while the test is inside a call that queues or cancels */
#define Q(expr) __extension__({ in_call++; __typeof__(expr) q_rc_ = (expr); in_call--; q_rc_; })
#define QV(expr) do { in_call++; expr; in_call--; } while (0)
#define CB_ENTER() cr_assert_eq(in_call, 0, "a callback ran inside the call that queued or cancelled its op")

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

static struct io_loop *new_loop_cfg(enum io_backend be, unsigned nbufs, unsigned bufsize)
{
    struct io_loop_config cfg = {.backend = be, .recv_buffers = nbufs, .recv_buffer_size = bufsize};
    struct io_loop *loop = NULL;
    char why[256] = "";
    int rc = io_loop_new(&loop, &cfg, why, sizeof(why));
    cr_assert_eq(rc, 0, "io_loop_new(%s): %s (%s)", io_backend_name(be), strerror(-rc), why);
    cr_assert_eq(io_loop_backend(loop), be);
    return loop;
}

static struct io_loop *new_loop(enum io_backend be) { return new_loop_cfg(be, 0, 0); }

/* Runs the loop until *count >= target (checked once per turn, from the idle
 * hook) or `ms` pass.  Returns false on timeout.  With `tick`, a 10 ms timer
 * keeps the loop turning so the deadline is seen even when nothing happens. */
struct drive {
    struct io_loop *loop;
    const int *count;
    int target;
    uint64_t deadline;
    bool timed_out;
    struct io_timer tick;
};

static void drive_idle(void *arg)
{
    struct drive *d = arg;
    if (*d->count >= d->target) {
        io_loop_stop(d->loop);
    } else if (mono_ms() >= d->deadline) {
        d->timed_out = true;
        io_loop_stop(d->loop);
    }
}

static void drive_tick(struct io_timer *t)
{
    struct drive *d = t->owner;
    io_timer_arm(d->loop, t, 10);
}

static bool drive_opt(struct io_loop *loop, const int *count, int target, unsigned ms, bool tick)
{
    struct drive d = {loop, count, target, mono_ms() + ms, false, {.fn = drive_tick, .owner = &d}};
    if (tick)
        io_timer_arm(loop, &d.tick, 10);
    io_loop_set_idle_hook(loop, drive_idle, &d);
    int rc = io_loop_run(loop);
    io_loop_set_idle_hook(loop, NULL, NULL);
    io_timer_cancel(loop, &d.tick);
    cr_assert_eq(rc, 0, "io_loop_run: %s", strerror(-rc));
    return !d.timed_out;
}

static bool drive(struct io_loop *loop, const int *count, int target, unsigned ms)
{
    return drive_opt(loop, count, target, ms, true);
}

/* Runs the loop for about `ms` whatever happens. */
static void drive_for(struct io_loop *loop, unsigned ms)
{
    static const int never = 0;
    drive(loop, &never, 1, ms);
}

static int listen_lo(uint16_t *port)
{
    char err[160] = "";
    int fd = sock_tcp_listen(htonl(INADDR_LOOPBACK), 0, 128, false, err, sizeof(err));
    cr_assert_geq(fd, 0, "sock_tcp_listen: %s", err);
    int p = sock_local_port(fd);
    cr_assert_gt(p, 0);
    *port = (uint16_t)p;
    return fd;
}

/* Blocking client socket; rcvbuf > 0 shrinks its receive buffer before connect. */
static int connect_lo(uint16_t port, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    if (rcvbuf)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    struct timeval tv = {20, 0}; /* a broken loop fails the test instead of hanging it */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect: %s", strerror(errno));
    return fd;
}

/* The server end of a fresh connection, taken without the loop (the tests of
 * io_accept itself use the loop). */
static int accept_lo(int lfd)
{
    struct pollfd p = {lfd, POLLIN, 0};
    cr_assert_eq(poll(&p, 1, 5000), 1, "no connection to accept");
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    cr_assert_geq(fd, 0, "accept4: %s", strerror(errno));
    return fd;
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}
#define FNV_INIT 0xcbf29ce484222325ull

static void fill_random(void *p, size_t n, uint64_t *state)
{
    unsigned char *b = p;
    uint64_t x = *state;
    for (size_t i = 0; i < n; i += 8) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        memcpy(b + i, &x, n - i < 8 ? n - i : 8);
    }
    *state = x;
}

static bool write_all(int fd, const void *p, size_t n)
{
    const char *b = p;
    while (n) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w <= 0)
            return false;
        b += w, n -= (size_t)w;
    }
    return true;
}

static bool read_exact(int fd, void *p, size_t n)
{
    char *b = p;
    while (n) {
        ssize_t r = recv(fd, b, n, 0);
        if (r <= 0)
            return false;
        b += r, n -= (size_t)r;
    }
    return true;
}

/* ---- creation ------------------------------------------------------------- */

BOTH(create_reports_backend, 10)
{
    struct io_loop_config cfg = {.backend = be};
    struct io_loop *loop = NULL;
    char why[256] = "";
    cr_assert_eq(io_loop_new(&loop, &cfg, why, sizeof(why)), 0, "%s", why);
    cr_assert_eq(io_loop_backend(loop), be);
    /* the why-line names the backend first, then the reason */
    const char *name = io_backend_name(be);
    cr_assert_eq(strncmp(why, name, strlen(name)), 0, "why-line '%s' does not start with '%s'", why, name);
    cr_assert_gt(strlen(why), strlen(name) + 2, "why-line '%s' gives no reason", why);
    if (be == IO_BACKEND_URING)
        cr_assert(strstr(why, "io_uring"), "why-line '%s'", why);
    else
        cr_assert(strstr(why, "backend=epoll"), "why-line '%s'", why);
    struct io_loop_stats st;
    io_loop_get_stats(loop, &st);
    cr_assert_eq(st.turns, 0);
    cr_assert_eq(st.completions, 0);
    io_loop_free(loop);

    /* recv_buffers must be a power of two */
    struct io_loop_config bad = {.backend = be, .recv_buffers = 100};
    loop = NULL;
    cr_assert_eq(io_loop_new(&loop, &bad, why, sizeof(why)), -EINVAL);
    cr_assert_null(loop);
}

Test(loop, auto_picks_uring, .timeout = 10, .fini = leak_check)
{
    struct io_loop_config cfg = {.backend = IO_BACKEND_AUTO};
    struct io_loop *loop = NULL;
    char why[256] = "";
    cr_assert_eq(io_loop_new(&loop, &cfg, why, sizeof(why)), 0, "%s", why);
    cr_assert_eq(io_loop_backend(loop), IO_BACKEND_URING, "AUTO chose %s: %s", io_backend_name(io_loop_backend(loop)),
                 why);
    cr_assert_eq(strncmp(why, "uring: ", 7), 0, "why-line '%s'", why);
    io_loop_free(loop);
    cr_assert_str_eq(io_backend_name(IO_BACKEND_URING), "uring");
    cr_assert_str_eq(io_backend_name(IO_BACKEND_EPOLL), "epoll");
    cr_assert_str_eq(io_backend_name(IO_BACKEND_AUTO), "auto");
}

/* Makes io_uring_setup(2) fail with EPERM in this (test) process, as a
 * container's seccomp profile does. */
static void block_io_uring(void)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof(f) / sizeof(f[0]), .filter = f};
    cr_assert_eq(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
    cr_assert_eq(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog), 0, "seccomp: %s", strerror(errno));
}

static int fallback_fired;
static void on_fallback_timer(struct io_timer *t) { fallback_fired = 1; }

/* io_uring blocked: AUTO falls back to epoll and says why; asking for uring
 * explicitly fails with the reason. */
Test(loop, auto_falls_back_to_epoll, .timeout = 10, .fini = leak_check)
{
    block_io_uring();
    struct io_loop_config cfg = {.backend = IO_BACKEND_URING};
    struct io_loop *loop = NULL;
    char why[256] = "";
    cr_assert_eq(io_loop_new(&loop, &cfg, why, sizeof(why)), -EPERM);
    cr_assert_null(loop);
    cr_assert_str_eq(why, "uring unavailable: io_uring_setup: Operation not permitted");

    cfg.backend = IO_BACKEND_AUTO;
    cr_assert_eq(io_loop_new(&loop, &cfg, why, sizeof(why)), 0, "%s", why);
    cr_assert_eq(io_loop_backend(loop), IO_BACKEND_EPOLL);
    cr_assert_str_eq(why, "epoll: io_uring unavailable (io_uring_setup: Operation not permitted)");
    struct io_timer t = {.fn = on_fallback_timer};
    io_timer_arm(loop, &t, 1);
    cr_assert(drive(loop, &fallback_fired, 1, 2000), "the fallback loop does not run");
    io_loop_free(loop);
}

/* ---- TCP server pieces ------------------------------------------------------ */

#define MAX_CONNS 8
#define ECHO_CAP (1u << 20)

enum srv_mode { SRV_ECHO, SRV_RECORD };

struct conn {
    struct srv *srv;
    int fd;
    struct io_op rx, tx;
    char *out; /* received bytes; [off, len) not yet echoed */
    size_t len, off;
    int nrecv; /* len, as an int for drive() */
    struct iovec iov;
    int rx_more, rx_final, rx_final_res, rx_after_final;
    bool sending, closed;
};

struct srv {
    struct io_loop *loop;
    enum srv_mode mode;
    int lfd;
    struct io_op acc;
    int accepted, acc_final, acc_final_res, closed, finals;
    struct conn c[MAX_CONNS];
};

static void conn_kick(struct conn *k)
{
    if (k->sending || k->off == k->len || k->srv->mode != SRV_ECHO)
        return;
    k->iov = (struct iovec){k->out + k->off, k->len - k->off};
    int rc = Q(io_send(k->srv->loop, &k->tx, k->fd, &k->iov, 1, 0));
    cr_assert_eq(rc, 0, "io_send: %s", strerror(-rc));
    k->sending = true;
}

static void conn_maybe_close(struct conn *k)
{
    if (k->srv->mode != SRV_ECHO || !k->rx_final || k->sending || k->off != k->len || k->closed)
        return;
    close(k->fd);
    k->closed = true;
    k->srv->closed++;
}

static void on_conn_rx(struct io_op *op, const struct io_completion *c)
{
    CB_ENTER();
    struct conn *k = op->owner;
    cr_assert_eq(k->rx_final, 0, "completion after the final one");
    if (c->res > 0) {
        cr_assert_not_null(c->buf);
        cr_assert_eq(c->len, (size_t)c->res);
        cr_assert_leq(k->len + c->len, ECHO_CAP);
        memcpy(k->out + k->len, c->buf, c->len);
        k->len += c->len;
        k->nrecv = (int)k->len;
    }
    if (c->more) {
        cr_assert_gt(c->res, 0, "a non-final recv completion carries bytes, got %d", c->res);
        cr_assert(io_op_busy(op));
        k->rx_more++;
        conn_kick(k);
        return;
    }
    cr_assert_not(io_op_busy(op), "the op is free in its final callback");
    k->rx_final++;
    k->rx_final_res = c->res;
    k->srv->finals++;
    conn_maybe_close(k);
}

static void on_conn_tx(struct io_op *op, const struct io_completion *c)
{
    CB_ENTER();
    struct conn *k = op->owner;
    cr_assert_not(c->more);
    cr_assert_gt(c->res, 0, "send: %s", strerror(-c->res));
    cr_assert_leq((size_t)c->res, k->iov.iov_len);
    k->sending = false;
    k->off += (size_t)c->res;
    conn_kick(k);
    conn_maybe_close(k);
}

static void conn_start(struct srv *s, int fd)
{
    cr_assert_lt(s->accepted, MAX_CONNS);
    struct conn *k = &s->c[s->accepted++];
    memset(k, 0, sizeof(*k));
    k->srv = s;
    k->fd = fd;
    k->out = malloc(ECHO_CAP);
    cr_assert_not_null(k->out);
    k->rx.fn = on_conn_rx;
    k->rx.owner = k;
    k->tx.fn = on_conn_tx;
    k->tx.owner = k;
    int rc = Q(io_recv(s->loop, &k->rx, fd));
    cr_assert_eq(rc, 0, "io_recv: %s", strerror(-rc));
}

static void on_accept(struct io_op *op, const struct io_completion *c)
{
    CB_ENTER();
    struct srv *s = op->owner;
    if (!c->more) {
        cr_assert_not(io_op_busy(op));
        s->acc_final++;
        s->acc_final_res = c->res;
        return;
    }
    cr_assert_geq(c->res, 0, "accept: %s", strerror(-c->res));
    int fl = fcntl(c->res, F_GETFL);
    cr_assert(fl & O_NONBLOCK, "accepted sockets are non-blocking");
    conn_start(s, c->res);
}

static void srv_init(struct srv *s, struct io_loop *loop, enum srv_mode mode, uint16_t *port)
{
    memset(s, 0, sizeof(*s));
    s->loop = loop;
    s->mode = mode;
    s->lfd = listen_lo(port);
    s->acc.fn = on_accept;
    s->acc.owner = s;
}

static void srv_free(struct srv *s)
{
    for (int i = 0; i < s->accepted; i++) {
        if (!s->c[i].closed)
            close(s->c[i].fd);
        free(s->c[i].out);
    }
    close(s->lfd);
}

/* ---- TCP: accept, echo, EOF, cancel ------------------------------------------ */

struct echo_client {
    uint16_t port;
    int msgs;
    unsigned seed;
    bool ok;
    char err[160];
};

static void *echo_client_main(void *arg)
{
    struct echo_client *e = arg;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {20, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(e->port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        snprintf(e->err, sizeof(e->err), "connect: %s", strerror(errno));
        close(fd);
        return NULL;
    }
    char out[4000], in[4000];
    uint64_t st = e->seed * 0x9e3779b97f4a7c15ull + 1;
    for (int i = 0; i < e->msgs; i++) {
        size_t n = 1 + (size_t)((e->seed * 31u + (unsigned)i * 977u) % sizeof(out));
        fill_random(out, n, &st);
        if (!write_all(fd, out, n) || !read_exact(fd, in, n)) {
            snprintf(e->err, sizeof(e->err), "message %d (%zu bytes): %s", i, n, strerror(errno));
            close(fd);
            return NULL;
        }
        if (memcmp(in, out, n) != 0) {
            snprintf(e->err, sizeof(e->err), "message %d came back changed", i);
            close(fd);
            return NULL;
        }
    }
    shutdown(fd, SHUT_WR);
    ssize_t r = recv(fd, in, sizeof(in), 0);
    if (r != 0)
        snprintf(e->err, sizeof(e->err), "expected EOF after echo, recv returned %zd (%s)", r, strerror(errno));
    else
        e->ok = true;
    close(fd);
    return NULL;
}

/* Multishot accept takes several clients from one io_accept; multishot recv
 * echoes every message with io_send; the client's shutdown ends each recv with
 * res = 0, more = false; cancelling the accept gives its final completion. */
BOTH(tcp_accept_echo, 30)
{
    struct io_loop *loop = new_loop(be);
    struct srv s;
    uint16_t port;
    srv_init(&s, loop, SRV_ECHO, &port);
    int rc = Q(io_accept(loop, &s.acc, s.lfd));
    cr_assert_eq(rc, 0, "io_accept: %s", strerror(-rc));
    cr_assert(io_op_busy(&s.acc));
    cr_assert_eq(Q(io_accept(loop, &s.acc, s.lfd)), -EBUSY, "an op in flight cannot be queued again");

    enum { CLIENTS = 4, MSGS = 60 };
    struct echo_client cl[CLIENTS];
    pthread_t th[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        cl[i] = (struct echo_client){.port = port, .msgs = MSGS, .seed = (unsigned)i + 1};
        cr_assert_eq(pthread_create(&th[i], NULL, echo_client_main, &cl[i]), 0);
    }
    bool done = drive(loop, &s.closed, CLIENTS, 20000);
    for (int i = 0; i < CLIENTS; i++)
        pthread_join(th[i], NULL);
    cr_assert(done, "echo did not finish: %d of %d connections closed", s.closed, CLIENTS);
    for (int i = 0; i < CLIENTS; i++)
        cr_assert(cl[i].ok, "client %d: %s", i, cl[i].err);

    cr_assert_eq(s.accepted, CLIENTS, "one io_accept took every client");
    cr_assert_eq(s.acc_final, 0, "accept is still armed");
    cr_assert(io_op_busy(&s.acc));
    for (int i = 0; i < CLIENTS; i++) {
        struct conn *k = &s.c[i];
        cr_assert_geq(k->rx_more, MSGS, "conn %d: %d receive completions from one io_recv", i, k->rx_more);
        cr_assert_eq(k->rx_final, 1);
        cr_assert_eq(k->rx_final_res, 0, "EOF is res = 0, got %d", k->rx_final_res);
        cr_assert_eq(k->off, k->len, "everything received was echoed");
    }

    QV(io_cancel(loop, &s.acc));
    cr_assert_eq(s.acc_final, 0);
    cr_assert(drive(loop, &s.acc_final, 1, 5000), "no final completion for a cancelled accept");
    cr_assert_eq(s.acc_final_res, -ECANCELED);
    cr_assert_not(io_op_busy(&s.acc));
    srv_free(&s);
    io_loop_free(loop);
}

/* Every accepted connection comes with its peer's address (what getpeername
 * gives); a burst of more clients than the uring backend keeps accepts in
 * flight for is taken whole; a cancel ends the op with one final completion;
 * the op can be queued again, and a loop freed with an accept still in flight
 * frees what that accept held (the ASan build checks). */
struct acc_burst {
    int n, finals, final_res, bad_peer;
    int fds[64];
};

static void on_acc_burst(struct io_op *op, const struct io_completion *c)
{
    CB_ENTER();
    struct acc_burst *b = op->owner;
    if (!c->more) {
        b->finals++;
        b->final_res = c->res;
        return;
    }
    cr_assert_geq(c->res, 0, "accept: %s", strerror(-c->res));
    cr_assert_lt(b->n, 64);
    struct sockaddr_in want;
    socklen_t wl = sizeof(want);
    cr_assert_eq(getpeername(c->res, (struct sockaddr *)&want, &wl), 0);
    if (!c->peer || c->peer_len != sizeof(want) || memcmp(c->peer, &want, sizeof(want)) != 0)
        b->bad_peer++;
    b->fds[b->n++] = c->res;
}

BOTH(accept_peers_burst_cancel, 20)
{
    struct io_loop *loop = new_loop(be);
    uint16_t port;
    int lfd = listen_lo(&port);
    struct acc_burst b = {0};
    struct io_op acc = {.fn = on_acc_burst, .owner = &b};
    cr_assert_eq(Q(io_accept(loop, &acc, lfd)), 0);
    enum { BURST = 40 };
    int cl[BURST + 1];
    for (int i = 0; i < BURST; i++)
        cl[i] = connect_lo(port, 0);
    cr_assert(drive(loop, &b.n, BURST, 5000), "%d of %d clients accepted", b.n, BURST);
    cr_assert_eq(b.bad_peer, 0, "%d of %d completions without the right peer address", b.bad_peer, b.n);
    cr_assert_eq(b.finals, 0);
    QV(io_cancel(loop, &acc));
    cr_assert(drive(loop, &b.finals, 1, 5000), "no final completion for a cancelled accept");
    cr_assert_eq(b.final_res, -ECANCELED);
    drive_for(loop, 50);
    cr_assert_eq(b.finals, 1, "one final completion, got %d", b.finals);
    cr_assert_not(io_op_busy(&acc));

    cr_assert_eq(Q(io_accept(loop, &acc, lfd)), 0, "queued again after its end");
    cl[BURST] = connect_lo(port, 0);
    cr_assert(drive(loop, &b.n, BURST + 1, 5000), "no accept after re-queueing");
    cr_assert_eq(b.bad_peer, 0);
    io_loop_free(loop); /* the accept is still in flight */
    for (int i = 0; i < b.n; i++)
        close(b.fds[i]);
    for (int i = 0; i <= BURST; i++)
        close(cl[i]);
    close(lfd);
}

/* io_close: closed by the loop's next submission (uring) or at once (epoll);
 * the peer sees the end of the stream either way. */
BOTH(close_through_loop, 10)
{
    struct io_loop *loop = new_loop(be);
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    QV(io_close(loop, sv[0]));
    drive_for(loop, 20);
    errno = 0;
    cr_assert_eq(fcntl(sv[0], F_GETFD), -1, "descriptor still open after a loop turn");
    cr_assert_eq(errno, EBADF);
    char ch;
    cr_assert_eq(recv(sv[1], &ch, 1, MSG_DONTWAIT), 0, "the peer did not see the close");
    struct io_loop_stats st;
    io_loop_get_stats(loop, &st);
    cr_assert_eq(st.close_errors, 0);
    close(sv[1]);

    /* queued, and the loop freed before another turn: still closed */
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    QV(io_close(loop, sv[0]));
    io_loop_free(loop);
    errno = 0;
    cr_assert_eq(fcntl(sv[0], F_GETFD), -1, "a close queued before io_loop_free was lost");
    cr_assert_eq(errno, EBADF);
    close(sv[1]);
}

/* EOF arrives after the data as one final completion (res = 0, more = false),
 * and nothing follows it. */
BOTH(tcp_eof_final, 15)
{
    struct io_loop *loop = new_loop(be);
    struct srv s;
    uint16_t port;
    srv_init(&s, loop, SRV_RECORD, &port);
    int cfd = connect_lo(port, 0);
    conn_start(&s, accept_lo(s.lfd));
    struct conn *k = &s.c[0];
    cr_assert(write_all(cfd, "hello", 5));
    cr_assert(drive(loop, &k->nrecv, 5, 5000), "data did not arrive");
    cr_assert_eq(k->rx_final, 0);
    cr_assert(io_op_busy(&k->rx));
    close(cfd);
    cr_assert(drive(loop, &k->rx_final, 1, 5000), "no final completion on EOF");
    cr_assert_eq(k->rx_final_res, 0);
    cr_assert_eq(k->len, 5);
    cr_assert_eq(memcmp(k->out, "hello", 5), 0);
    cr_assert_not(io_op_busy(&k->rx));
    drive_for(loop, 100);
    cr_assert_eq(k->rx_final, 1, "nothing after the final completion");
    srv_free(&s);
    io_loop_free(loop);
}

static struct conn *cancel_target;
static bool cancel_busy_after;

static void cancel_from_timer(struct io_timer *t)
{
    CB_ENTER();
    struct conn *k = t->owner;
    QV(io_cancel(k->srv->loop, &k->rx));
    cancel_busy_after = io_op_busy(&k->rx);
    cancel_target = k;
}

/* io_cancel on a multishot recv: the final completion is -ECANCELED, comes
 * later (not inside io_cancel), and the op can be queued again. */
BOTH(tcp_cancel_recv, 15)
{
    struct io_loop *loop = new_loop(be);
    struct srv s;
    uint16_t port;
    srv_init(&s, loop, SRV_RECORD, &port);
    int cfd = connect_lo(port, 0);
    conn_start(&s, accept_lo(s.lfd));
    struct conn *k = &s.c[0];
    cr_assert_eq(Q(io_recv(loop, &k->rx, k->fd)), -EBUSY);

    /* cancelled from a callback while idle */
    struct io_timer t = {.fn = cancel_from_timer, .owner = k};
    io_timer_arm(loop, &t, 30);
    cr_assert(drive(loop, &k->rx_final, 1, 5000), "no final completion after io_cancel");
    cr_assert_eq(cancel_target, k);
    cr_assert(cancel_busy_after, "the final completion came inside io_cancel");
    cr_assert_eq(k->rx_final_res, -ECANCELED, "got %d", k->rx_final_res);
    cr_assert_not(io_op_busy(&k->rx));
    QV(io_cancel(loop, &k->rx)); /* on a finished op: nothing happens */
    drive_for(loop, 50);
    cr_assert_eq(k->rx_final, 1);

    /* the op is reusable; data sent now reaches it */
    k->rx_final = 0;
    cr_assert_eq(Q(io_recv(loop, &k->rx, k->fd)), 0);
    cr_assert(write_all(cfd, "again", 5));
    cr_assert(drive(loop, &k->nrecv, 5, 5000), "re-armed recv got nothing");
    cr_assert_eq(memcmp(k->out, "again", 5), 0);

    /* cancelled right after queueing, in the same turn */
    int cfd2 = connect_lo(port, 0);
    conn_start(&s, accept_lo(s.lfd));
    struct conn *k2 = &s.c[1];
    QV(io_cancel(loop, &k2->rx));
    cr_assert(io_op_busy(&k2->rx));
    cr_assert_eq(k2->rx_final, 0);
    cr_assert(drive(loop, &k2->rx_final, 1, 5000));
    cr_assert_eq(k2->rx_final_res, -ECANCELED, "got %d", k2->rx_final_res);

    close(cfd);
    cr_assert(drive(loop, &k->rx_final, 1, 5000));
    cr_assert_eq(k->rx_final_res, 0);
    close(cfd2);
    srv_free(&s);
    io_loop_free(loop);
}

/* ---- TCP: a large transfer through repeated io_send -------------------------- */

struct reader {
    int fd;
    unsigned delay_ms; /* slow start: the sender meets a full socket */
    size_t bytes;
    uint64_t hash;
    char err[160];
};

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    sleep_ms(r->delay_ms);
    static __thread char buf[64 * 1024];
    r->hash = FNV_INIT;
    for (;;) {
        ssize_t n = recv(r->fd, buf, sizeof(buf), 0);
        if (n == 0)
            break;
        if (n < 0) {
            snprintf(r->err, sizeof(r->err), "recv after %zu bytes: %s", r->bytes, strerror(errno));
            break;
        }
        r->hash = fnv1a(r->hash, buf, (size_t)n);
        r->bytes += (size_t)n;
    }
    return NULL;
}

struct bulk {
    struct io_loop *loop;
    int fd;
    struct io_op tx;
    const unsigned char *data;
    size_t total, off, asked;
    struct iovec iov[2];
    int sends, partials, done;
};

static void bulk_next(struct bulk *b)
{
    size_t n = b->total - b->off;
    if (n > (1u << 20))
        n = 1u << 20;
    size_t half = n / 2; /* two iovecs per send */
    b->iov[0] = (struct iovec){(void *)(b->data + b->off), half};
    b->iov[1] = (struct iovec){(void *)(b->data + b->off + half), n - half};
    b->asked = n;
    int rc = Q(io_send(b->loop, &b->tx, b->fd, b->iov, 2, 0));
    cr_assert_eq(rc, 0, "io_send: %s", strerror(-rc));
}

static void on_bulk_tx(struct io_op *op, const struct io_completion *c)
{
    CB_ENTER();
    struct bulk *b = op->owner;
    cr_assert_not(c->more);
    cr_assert_gt(c->res, 0, "send: %s", strerror(-c->res));
    cr_assert_leq((size_t)c->res, b->asked);
    b->sends++;
    if ((size_t)c->res < b->asked)
        b->partials++; /* the rest goes in the next send */
    b->off += (size_t)c->res;
    if (b->off < b->total) {
        bulk_next(b);
    } else {
        shutdown(b->fd, SHUT_WR);
        b->done = 1;
    }
}

BOTH(tcp_large_transfer, 60)
{
    struct io_loop *loop = new_loop(be);
    uint16_t port;
    int lfd = listen_lo(&port);
    int cfd = connect_lo(port, 64 * 1024);
    int sfd = accept_lo(lfd);
    int sndbuf = 128 * 1024;
    setsockopt(sfd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));

    enum { TOTAL = 8 << 20 };
    unsigned char *data = malloc(TOTAL);
    cr_assert_not_null(data);
    uint64_t st = 42;
    fill_random(data, TOTAL, &st);
    uint64_t want = fnv1a(FNV_INIT, data, TOTAL);

    struct reader r = {.fd = cfd, .delay_ms = 100};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, reader_main, &r), 0);
    struct bulk b = {.loop = loop, .fd = sfd, .data = data, .total = TOTAL};
    b.tx.fn = on_bulk_tx;
    b.tx.owner = &b;
    bulk_next(&b);
    bool done = drive(loop, &b.done, 1, 40000);
    if (!done)
        shutdown(sfd, SHUT_RDWR); /* let the reader finish */
    pthread_join(th, NULL);
    cr_assert(done, "transfer stalled at %zu of %d bytes", b.off, TOTAL);
    cr_assert_str_empty(r.err, "%s", r.err);
    cr_assert_eq(r.bytes, (size_t)TOTAL, "client got %zu bytes", r.bytes);
    cr_assert_eq(r.hash, want, "the bytes arrived changed");
    cr_assert_gt(b.partials, 0, "a slow reader must have caused partial sends (%d sends)", b.sends);
    close(cfd);
    close(sfd);
    close(lfd);
    free(data);
    io_loop_free(loop);
}

/* ---- io_sendfile ----------------------------------------------------------- */

static int make_temp_file(size_t size, uint64_t *hash)
{
    char path[] = "/tmp/bootstorm-test-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0, "mkstemp: %s", strerror(errno));
    unlink(path);
    enum { BLK = 1 << 20 };
    unsigned char *blk = malloc(BLK);
    uint64_t st = 0x1234567, h = FNV_INIT;
    for (size_t off = 0; off < size; off += BLK) {
        size_t n = size - off < BLK ? size - off : BLK;
        fill_random(blk, n, &st);
        h = fnv1a(h, blk, n);
        cr_assert_eq(pwrite(fd, blk, n, (off_t)off), (ssize_t)n);
    }
    free(blk);
    *hash = h;
    return fd;
}

struct sfx {
    struct io_loop *loop;
    struct io_op op;
    int sock, file;
    uint64_t off, total;
    size_t chunk, asked;
    uint64_t queued_at, max_wait_ms;
    int ops, done, last_res;
};

static void sfx_next(struct sfx *s)
{
    uint64_t left = s->total - s->off;
    s->asked = left < s->chunk ? (size_t)left : s->chunk;
    s->queued_at = mono_ms();
    int rc = Q(io_sendfile(s->loop, &s->op, s->sock, s->file, s->off, s->asked));
    cr_assert_eq(rc, 0, "io_sendfile: %s", strerror(-rc));
}

static void on_sfx(struct io_op *op, const struct io_completion *c)
{
    CB_ENTER();
    struct sfx *s = op->owner;
    cr_assert_not(c->more);
    uint64_t waited = mono_ms() - s->queued_at;
    if (waited > s->max_wait_ms)
        s->max_wait_ms = waited;
    s->ops++;
    s->last_res = c->res;
    cr_assert_neq(c->res, -EAGAIN, "EAGAIN must not reach the caller");
    cr_assert_gt(c->res, 0, "sendfile at %llu: %s", (unsigned long long)s->off, strerror(-c->res));
    cr_assert_leq((size_t)c->res, s->asked, "one op sends at most what it was asked");
    s->off += (uint64_t)c->res;
    if (s->off < s->total) {
        sfx_next(s);
    } else {
        shutdown(s->sock, SHUT_WR);
        s->done = 1;
    }
}

/* 64 MiB in 256 KiB operations to a reader that starts late: early ops meet a
 * full socket and wait for writability; every byte arrives unchanged. */
BOTH(sendfile_64m_slow_reader, 120)
{
    enum { SIZE = 64 << 20, CHUNK = 256 << 10 };
    uint64_t want;
    int file = make_temp_file(SIZE, &want);
    struct io_loop *loop = new_loop(be);
    uint16_t port;
    int lfd = listen_lo(&port);
    int cfd = connect_lo(port, 64 * 1024);
    int sfd = accept_lo(lfd);
    int sndbuf = 64 * 1024;
    setsockopt(sfd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));

    struct reader r = {.fd = cfd, .delay_ms = 400};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, reader_main, &r), 0);
    struct sfx s = {.loop = loop, .sock = sfd, .file = file, .total = SIZE, .chunk = CHUNK};
    s.op.fn = on_sfx;
    s.op.owner = &s;
    sfx_next(&s);
    bool done = drive(loop, &s.done, 1, 100000);
    if (!done)
        shutdown(sfd, SHUT_RDWR);
    pthread_join(th, NULL);
    cr_assert(done, "sendfile stalled at %llu bytes (last res %d)", (unsigned long long)s.off, s.last_res);
    cr_assert_str_empty(r.err, "%s", r.err);
    cr_assert_eq(r.bytes, (size_t)SIZE, "client got %zu bytes", r.bytes);
    cr_assert_eq(r.hash, want, "the file arrived changed");
    cr_assert_geq(s.ops, SIZE / CHUNK);
    cr_assert_geq(s.max_wait_ms, 200, "no op waited for the slow reader (max %llu ms): the writability path was not taken",
                  (unsigned long long)s.max_wait_ms);
    close(cfd);
    close(sfd);
    close(lfd);
    close(file);
    io_loop_free(loop);
}

struct one {
    int n, res;
};

static void on_one(struct io_op *op, const struct io_completion *c)
{
    CB_ENTER();
    struct one *o = op->owner;
    cr_assert_not(c->more);
    cr_assert_not(io_op_busy(op));
    o->n++;
    o->res = c->res;
}

/* Errors and the end of the file come back as completions, never inline. */
BOTH(sendfile_edges, 15)
{
    uint64_t h;
    int file = make_temp_file(4096, &h);
    struct io_loop *loop = new_loop(be);
    uint16_t port;
    int lfd = listen_lo(&port);
    int cfd = connect_lo(port, 0);
    int sfd = accept_lo(lfd);
    struct one o = {0};
    struct io_op op = {.fn = on_one, .owner = &o};

    cr_assert_eq(Q(io_sendfile(loop, &op, sfd, file, 0, 1000)), 0);
    cr_assert_eq(o.n, 0, "completion delivered inside io_sendfile");
    cr_assert(io_op_busy(&op));
    cr_assert(drive(loop, &o.n, 1, 5000));
    cr_assert_eq(o.res, 1000);
    char got[1000];
    cr_assert(read_exact(cfd, got, sizeof(got)));

    o.n = 0;
    cr_assert_eq(Q(io_sendfile(loop, &op, sfd, file, 8192, 1000)), 0);
    cr_assert(drive(loop, &o.n, 1, 5000));
    cr_assert_eq(o.res, 0, "past the end of the file: res 0");

    o.n = 0;
    cr_assert_eq(Q(io_sendfile(loop, &op, sfd, -1, 0, 1000)), 0);
    cr_assert(drive(loop, &o.n, 1, 5000));
    cr_assert_eq(o.res, -EBADF, "got %d", o.res);

    /* the peer is gone: an error completion (the process ignores SIGPIPE,
     * as bootstorm does) */
    signal(SIGPIPE, SIG_IGN);
    close(cfd);
    int res = 1;
    for (int i = 0; i < 50 && res > 0; i++) {
        o.n = 0;
        cr_assert_eq(Q(io_sendfile(loop, &op, sfd, file, 0, 4096)), 0);
        cr_assert(drive(loop, &o.n, 1, 5000));
        res = o.res;
    }
    cr_assert(res == -EPIPE || res == -ECONNRESET, "sendfile to a closed peer: %d", res);

    close(sfd);
    close(lfd);
    close(file);
    io_loop_free(loop);
}

/* ---- UDP: io_recvmsg ----------------------------------------------------------- */

#define MAX_DGRAMS 1100

struct dgram {
    int len, ifindex;
    bool truncated;
    struct sockaddr_in peer;
    socklen_t peer_len;
    struct in_addr local;
    unsigned char head[16];
};

struct urx {
    struct io_loop *loop;
    struct io_op op;
    int fd;
    int got, final, final_res;
    struct dgram d[MAX_DGRAMS];
    unsigned char last[8192];
    size_t last_len;
};

static void on_dgram(struct io_op *op, const struct io_completion *c)
{
    CB_ENTER();
    struct urx *u = op->owner;
    cr_assert_eq(u->final, 0, "completion after the final one");
    if (!c->more) {
        u->final++;
        u->final_res = c->res;
        return;
    }
    cr_assert_geq(c->res, 0, "recvmsg: %s", strerror(-c->res));
    cr_assert_lt(u->got, MAX_DGRAMS);
    cr_assert_eq(c->len, (size_t)c->res);
    cr_assert_not_null(c->peer);
    struct dgram *d = &u->d[u->got++];
    d->len = c->res;
    d->ifindex = c->ifindex;
    d->truncated = c->truncated;
    d->peer_len = c->peer_len;
    memcpy(&d->peer, c->peer, sizeof(d->peer));
    d->local = c->local;
    memcpy(d->head, c->buf, c->len < sizeof(d->head) ? c->len : sizeof(d->head));
    u->last_len = c->len < sizeof(u->last) ? c->len : sizeof(u->last);
    memcpy(u->last, c->buf, u->last_len);
}

static void urx_start(struct urx *u, struct io_loop *loop, uint32_t addr, int rcvbuf)
{
    memset(u, 0, sizeof(*u));
    struct sock_udp_opts o = {.pktinfo = true, .rcvbuf = rcvbuf};
    char err[160] = "";
    u->loop = loop;
    u->fd = sock_udp_bind(addr, 0, &o, err, sizeof(err));
    cr_assert_geq(u->fd, 0, "%s", err);
    u->op.fn = on_dgram;
    u->op.owner = u;
    int rc = Q(io_recvmsg(loop, &u->op, u->fd));
    cr_assert_eq(rc, 0, "io_recvmsg: %s", strerror(-rc));
}

/* A client UDP socket bound to 127.0.0.1 (so the expected source is known). */
static int udp_client(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    *port = (uint16_t)sock_local_port(fd);
    return fd;
}

static void udp_send(int fd, const char *to, uint16_t port, const void *p, size_t n)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, to, &sa.sin_addr);
    ssize_t w = sendto(fd, p, n, 0, (struct sockaddr *)&sa, sizeof(sa));
    cr_assert_eq(w, (ssize_t)n, "sendto %s: %s", to, strerror(errno));
}

/* Source address, receiving interface and the local address the datagram was
 * sent to (IP_PKTINFO), for two destinations of one wildcard-bound socket. */
BOTH(udp_recvmsg_pktinfo, 15)
{
    struct io_loop *loop = new_loop(be);
    static struct urx u;
    urx_start(&u, loop, htonl(INADDR_ANY), 0);
    uint16_t sport = (uint16_t)sock_local_port(u.fd), cport;
    int cfd = udp_client(&cport);
    udp_send(cfd, "127.0.0.1", sport, "first", 5);
    udp_send(cfd, "127.0.0.2", sport, "second!", 7);
    cr_assert(drive(loop, &u.got, 2, 5000), "got %d of 2 datagrams", u.got);

    int lo = (int)if_nametoindex("lo");
    cr_assert_gt(lo, 0);
    const char *dst[2] = {"127.0.0.1", "127.0.0.2"};
    const char *payload[2] = {"first", "second!"};
    for (int i = 0; i < 2; i++) {
        struct dgram *d = &u.d[i];
        cr_assert_eq(d->len, (int)strlen(payload[i]));
        cr_assert_eq(memcmp(d->head, payload[i], (size_t)d->len), 0);
        cr_assert_not(d->truncated);
        cr_assert_eq(d->peer_len, sizeof(struct sockaddr_in));
        cr_assert_eq(d->peer.sin_family, AF_INET);
        cr_assert_eq(d->peer.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
        cr_assert_eq(ntohs(d->peer.sin_port), cport);
        cr_assert_eq(d->ifindex, lo, "ifindex %d, lo is %d", d->ifindex, lo);
        char a[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &d->local, a, sizeof(a));
        cr_assert_str_eq(a, dst[i], "local address of datagram %d", i);
    }
    cr_assert(io_op_busy(&u.op));
    QV(io_cancel(loop, &u.op));
    cr_assert(drive(loop, &u.final, 1, 5000));
    cr_assert_eq(u.final_res, -ECANCELED);
    close(cfd);
    close(u.fd);
    io_loop_free(loop);
}

/* 1000 datagrams at once into 64 receive buffers: all are delivered; on
 * io_uring the buffer ring runs dry (ENOBUFS, counted) and the op re-arms by
 * itself once buffers return, then keeps receiving. */
BOTH(udp_burst_1000, 30)
{
    struct io_loop *loop = new_loop_cfg(be, 64, 512);
    static struct urx u;
    urx_start(&u, loop, htonl(INADDR_LOOPBACK), 4 << 20);
    uint16_t sport = (uint16_t)sock_local_port(u.fd), cport;
    int cfd = udp_client(&cport);
    unsigned char pkt[200];
    memset(pkt, 0xab, sizeof(pkt));
    for (uint32_t i = 0; i < 1000; i++) {
        memcpy(pkt, &i, sizeof(i));
        udp_send(cfd, "127.0.0.1", sport, pkt, sizeof(pkt));
    }
    cr_assert(drive(loop, &u.got, 1000, 15000), "got %d of 1000 datagrams", u.got);
    static bool seen[1010];
    for (int i = 0; i < u.got; i++) {
        uint32_t seq;
        memcpy(&seq, u.d[i].head, sizeof(seq));
        cr_assert_lt(seq, 1000u);
        cr_assert_not(seen[seq], "datagram %u delivered twice", seq);
        seen[seq] = true;
        cr_assert_eq(u.d[i].len, (int)sizeof(pkt));
        cr_assert_not(u.d[i].truncated);
    }
    struct io_loop_stats st;
    io_loop_get_stats(loop, &st);
    if (be == IO_BACKEND_URING)
        cr_assert_gt(st.enobufs, 0, "1000 datagrams into 64 buffers should exhaust the ring");
    else
        cr_assert_eq(st.enobufs, 0);
    cr_assert_eq(u.final, 0, "ENOBUFS must not end the op");
    cr_assert(io_op_busy(&u.op));

    /* still receiving after the recovery */
    for (uint32_t i = 1000; i < 1010; i++) {
        memcpy(pkt, &i, sizeof(i));
        udp_send(cfd, "127.0.0.1", sport, pkt, sizeof(pkt));
    }
    cr_assert(drive(loop, &u.got, 1010, 5000), "got %d of 1010 after recovery", u.got);
    close(cfd);
    close(u.fd);
    io_loop_free(loop);
}

/* recv_buffer_size is the largest datagram delivered whole, on both backends;
 * a bigger one arrives cut to that size with truncated = true. */
BOTH(udp_truncated, 15)
{
    enum { BUF = 512 };
    struct io_loop *loop = new_loop_cfg(be, 8, BUF);
    static struct urx u;
    urx_start(&u, loop, htonl(INADDR_LOOPBACK), 0);
    uint16_t sport = (uint16_t)sock_local_port(u.fd), cport;
    int cfd = udp_client(&cport);
    unsigned char big[2000];
    uint64_t st = 7;
    fill_random(big, sizeof(big), &st);

    udp_send(cfd, "127.0.0.1", sport, big, BUF);
    cr_assert(drive(loop, &u.got, 1, 5000));
    cr_assert_eq(u.d[0].len, BUF, "a datagram of exactly recv_buffer_size bytes arrives whole (got %d)", u.d[0].len);
    cr_assert_not(u.d[0].truncated);

    udp_send(cfd, "127.0.0.1", sport, big, sizeof(big));
    cr_assert(drive(loop, &u.got, 2, 5000));
    cr_assert(u.d[1].truncated, "an oversized datagram is flagged");
    cr_assert_eq(u.d[1].len, BUF, "cut to the buffer size, got %d", u.d[1].len);
    cr_assert_eq(u.last_len, (size_t)BUF);
    cr_assert_eq(memcmp(u.last, big, BUF), 0, "the head of the datagram is kept");

    udp_send(cfd, "127.0.0.1", sport, "small", 5);
    cr_assert(drive(loop, &u.got, 3, 5000), "the op stopped after a truncated datagram");
    cr_assert_eq(u.d[2].len, 5);
    cr_assert_not(u.d[2].truncated);
    cr_assert_eq(u.d[2].ifindex, (int)if_nametoindex("lo"));
    struct io_loop_stats s;
    io_loop_get_stats(loop, &s);
    cr_assert_eq(s.truncated, 1);
    close(cfd);
    close(u.fd);
    io_loop_free(loop);
}

/* ---- timers ---------------------------------------------------------------- */

#define NTIMERS 300

struct tcase {
    struct io_loop *loop;
    struct io_timer t[NTIMERS];
    uint64_t delay[NTIMERS], armed_at[NTIMERS];
    int order[NTIMERS];
    uint64_t fired_at[NTIMERS];
    int fired;
};
static struct tcase tc;

static void on_tc(struct io_timer *t)
{
    CB_ENTER();
    int i = (int)(t - tc.t);
    cr_assert_not(io_timer_armed(t), "a timer is disarmed when it fires");
    tc.fired_at[i] = io_loop_now_ms(tc.loop);
    tc.order[tc.fired++] = i;
}

/* Many timers fire in the order of their due times, none early. */
BOTH(timer_ordering, 15)
{
    tc = (struct tcase){.loop = new_loop(be)};
    for (int i = 0; i < NTIMERS; i++) {
        tc.t[i].fn = on_tc;
        tc.delay[i] = (uint64_t)((i * 7919) % 151);
        tc.armed_at[i] = io_loop_now_ms(tc.loop);
        io_timer_arm(tc.loop, &tc.t[i], tc.delay[i]);
        cr_assert(io_timer_armed(&tc.t[i]));
    }
    cr_assert(drive(tc.loop, &tc.fired, NTIMERS, 5000), "%d of %d timers fired", tc.fired, NTIMERS);
    for (int k = 0; k < NTIMERS; k++) {
        int i = tc.order[k];
        cr_assert_geq(tc.fired_at[i], tc.armed_at[i] + tc.delay[i], "timer %d fired early", i);
        if (k > 0)
            cr_assert_geq(tc.delay[i], tc.delay[tc.order[k - 1]], "timer %d (%llu ms) fired after timer %d (%llu ms)",
                          tc.order[k - 1], (unsigned long long)tc.delay[tc.order[k - 1]], i,
                          (unsigned long long)tc.delay[i]);
    }
    io_loop_free(tc.loop);
}

/* Cancelled timers never fire (the root, the last slot and the middle of the
 * heap); cancelling an unarmed timer is harmless; re-arming moves a timer. */
BOTH(timer_cancel_rearm, 15)
{
    tc = (struct tcase){.loop = new_loop(be)};
    struct io_loop *loop = tc.loop;
    enum { N = 40 };
    for (int i = 0; i < N; i++) {
        tc.t[i].fn = on_tc;
        io_timer_arm(loop, &tc.t[i], 20 + (uint64_t)i);
    }
    for (int i = 0; i < N; i += 2)
        io_timer_cancel(loop, &tc.t[i]); /* includes the heap root (t[0]) */
    io_timer_cancel(loop, &tc.t[N - 1]); /* the last one armed */
    io_timer_cancel(loop, &tc.t[N - 1]); /* twice */
    struct io_timer never = {.fn = on_tc};
    io_timer_cancel(loop, &never); /* never armed */
    for (int i = 0; i < N; i++)
        cr_assert_eq(io_timer_armed(&tc.t[i]), i % 2 == 1 && i != N - 1);

    /* re-arm: t[1] from 21 ms to 200 ms, t[3] from 23 ms to 1 ms */
    io_timer_arm(loop, &tc.t[1], 200);
    io_timer_arm(loop, &tc.t[3], 1);
    int expect = N / 2 - 1;
    cr_assert(drive(loop, &tc.fired, expect, 5000), "%d of %d timers fired", tc.fired, expect);
    drive_for(loop, 100);
    cr_assert_eq(tc.fired, expect, "a timer fired twice or a cancelled one fired");
    cr_assert_eq(tc.order[0], 3, "the re-armed 1 ms timer fires first");
    cr_assert_eq(tc.order[expect - 1], 1, "the timer moved to 200 ms fires last");
    for (int k = 0; k < expect; k++)
        cr_assert(tc.order[k] % 2 == 1 && tc.order[k] != N - 1, "cancelled timer %d fired", tc.order[k]);
    io_loop_free(loop);
}

struct chain {
    struct io_loop *loop;
    struct io_timer a, b, c;
    int a_fired, b_fired, c_fired, done;
    uint64_t b_at, c_at, c_armed;
};
static struct chain ch;

static void on_chain_b(struct io_timer *t)
{
    CB_ENTER();
    ch.b_fired++;
    ch.b_at = io_loop_now_ms(ch.loop);
}

static void on_chain_c(struct io_timer *t)
{
    CB_ENTER();
    ch.c_fired++;
    ch.c_at = io_loop_now_ms(ch.loop);
    ch.done = 1;
}

static void on_chain_a(struct io_timer *t)
{
    CB_ENTER();
    ch.a_fired++;
    if (ch.a_fired < 3) {
        io_timer_arm(ch.loop, t, 5); /* re-arms itself */
        return;
    }
    io_timer_arm(ch.loop, &ch.b, 0); /* due now: fires without another wait */
    io_timer_arm(ch.loop, &ch.c, 30);
    ch.c_armed = io_loop_now_ms(ch.loop);
}

/* Timers armed from inside a timer callback fire: itself again, a 0 ms one
 * and a later one. */
BOTH(timer_from_callback, 15)
{
    ch = (struct chain){.loop = new_loop(be)};
    ch.a.fn = on_chain_a;
    ch.b.fn = on_chain_b;
    ch.c.fn = on_chain_c;
    io_timer_arm(ch.loop, &ch.a, 5);
    cr_assert(drive(ch.loop, &ch.done, 1, 5000));
    cr_assert_eq(ch.a_fired, 3);
    cr_assert_eq(ch.b_fired, 1);
    cr_assert_eq(ch.c_fired, 1);
    cr_assert_geq(ch.c_at, ch.c_armed + 30);
    cr_assert_leq(ch.b_at, ch.c_at);
    cr_assert_not(io_timer_armed(&ch.a));
    io_loop_free(ch.loop);
}

/* A timer armed from an I/O callback counts from the moment of the callback,
 * even when the loop had been asleep for a while before it. */
struct late {
    struct io_loop *loop;
    struct urx u;
    struct io_timer t;
    uint64_t armed_real, fired_real;
    int fired;
};
static struct late lt;

static void on_late_timer(struct io_timer *t)
{
    lt.fired_real = mono_ms();
    lt.fired = 1;
}

static void on_late_dgram(struct io_op *op, const struct io_completion *c)
{
    CB_ENTER();
    if (!c->more || lt.armed_real)
        return;
    lt.armed_real = mono_ms();
    io_timer_arm(lt.loop, &lt.t, 300);
}

static void *late_sender(void *arg)
{
    uint16_t port = *(uint16_t *)arg;
    sleep_ms(400);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    sendto(fd, "x", 1, 0, (struct sockaddr *)&sa, sizeof(sa));
    close(fd);
    return NULL;
}

BOTH(timer_armed_after_sleep, 15)
{
    memset(&lt, 0, sizeof(lt));
    lt.loop = new_loop(be);
    urx_start(&lt.u, lt.loop, htonl(INADDR_LOOPBACK), 0);
    lt.u.op.fn = on_late_dgram; /* queued above; the callback is read at completion */
    lt.t.fn = on_late_timer;
    uint16_t port = (uint16_t)sock_local_port(lt.u.fd);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, late_sender, &port), 0);
    bool ok = drive_opt(lt.loop, &lt.fired, 1, 5000, false); /* no tick: the loop must really sleep */
    pthread_join(th, NULL);
    cr_assert(ok, "timer never fired");
    uint64_t waited = lt.fired_real - lt.armed_real;
    cr_assert_geq(waited, 295, "a 300 ms timer armed in an I/O callback fired after %llu ms",
                  (unsigned long long)waited);
    close(lt.u.fd);
    io_loop_free(lt.loop);
}

/* ---- idle hook, stop, wake --------------------------------------------------- */

struct idle_count {
    struct io_loop *loop;
    int calls;
    struct io_timer t;
    int ticks;
};
static struct idle_count ic;

static void on_idle_count(void *arg)
{
    cr_assert_eq(arg, &ic);
    ic.calls++;
}

static void on_tick(struct io_timer *t)
{
    CB_ENTER();
    if (++ic.ticks < 20)
        io_timer_arm(ic.loop, t, 3);
    else
        io_loop_stop(ic.loop);
}

BOTH(idle_hook_every_turn, 15)
{
    ic = (struct idle_count){.loop = new_loop(be)};
    io_loop_set_idle_hook(ic.loop, on_idle_count, &ic);
    ic.t.fn = on_tick;
    io_timer_arm(ic.loop, &ic.t, 3);
    cr_assert_eq(io_loop_run(ic.loop), 0);
    struct io_loop_stats st;
    io_loop_get_stats(ic.loop, &st);
    cr_assert_eq(ic.ticks, 20);
    cr_assert_geq(st.turns, 20);
    cr_assert_eq((uint64_t)ic.calls, st.turns, "idle hook ran %d times in %llu turns", ic.calls,
                 (unsigned long long)st.turns);
    io_loop_free(ic.loop);
}

struct stopper {
    struct io_loop *loop;
    uint64_t stop_at; /* when io_loop_stop was called; read after join */
};

static void *stopper_main(void *arg)
{
    struct stopper *r = arg;
    sleep_ms(150); /* the loop is asleep by now (no timers: for up to 1 s) */
    r->stop_at = mono_ms();
    io_loop_stop(r->loop);
    return NULL;
}

/* io_loop_stop from another thread ends io_loop_run promptly (the loop would
 * otherwise sleep for a second), and the loop can run again afterwards. */
BOTH(stop_from_thread, 15)
{
    struct io_loop *loop = new_loop(be);
    for (int round = 0; round < 2; round++) {
        struct stopper r = {.loop = loop};
        pthread_t th;
        cr_assert_eq(pthread_create(&th, NULL, stopper_main, &r), 0);
        int rc = io_loop_run(loop);
        uint64_t returned = mono_ms();
        pthread_join(th, NULL);
        cr_assert_eq(rc, 0);
        cr_assert_geq(returned, r.stop_at, "round %d: io_loop_run returned before io_loop_stop", round);
        cr_assert_lt(returned - r.stop_at, 500, "round %d: io_loop_stop took %llu ms to take effect", round,
                     (unsigned long long)(returned - r.stop_at));
    }
    io_loop_free(loop);
}

static atomic_int wake_turns;
static void on_wake_idle(void *arg) { atomic_fetch_add(&wake_turns, 1); }

struct waker {
    struct io_loop *loop;
    uint64_t worst_ms;
    int missed;
};

/* Wakes the sleeping loop five times, each time waiting for the turn it
 * causes; then stops it. */
static void *waker_main(void *arg)
{
    struct waker *w = arg;
    for (int i = 0; i < 5; i++) {
        sleep_ms(30); /* let the loop fall asleep (no timers: for up to 1 s) */
        int before = atomic_load(&wake_turns);
        uint64_t t0 = mono_ms();
        io_loop_wake(w->loop);
        while (atomic_load(&wake_turns) == before && mono_ms() - t0 < 3000)
            sleep_ms(1);
        uint64_t took = mono_ms() - t0;
        if (atomic_load(&wake_turns) == before)
            w->missed++;
        if (took > w->worst_ms)
            w->worst_ms = took;
    }
    io_loop_stop(w->loop);
    return NULL;
}

/* Each io_loop_wake from another thread makes the sleeping loop turn (and run
 * its idle hook) at once, not when its one-second sleep ends. */
BOTH(wake_from_thread, 20)
{
    struct io_loop *loop = new_loop(be);
    atomic_store(&wake_turns, 0);
    io_loop_set_idle_hook(loop, on_wake_idle, NULL);
    struct waker w = {.loop = loop};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, waker_main, &w), 0);
    cr_assert_eq(io_loop_run(loop), 0);
    pthread_join(th, NULL);
    cr_assert_eq(w.missed, 0, "%d wakes caused no turn", w.missed);
    cr_assert_lt(w.worst_ms, 500, "a wake took %llu ms to turn the loop", (unsigned long long)w.worst_ms);
    cr_assert_geq(atomic_load(&wake_turns), 6);
    io_loop_free(loop);
}

/* ---- completions are never delivered inside the queueing call ----------------- */

BOTH(no_inline_callbacks, 15)
{
    uint64_t h;
    int file = make_temp_file(8192, &h);
    struct io_loop *loop = new_loop(be);
    uint16_t port;
    int lfd = listen_lo(&port);
    int cfd = connect_lo(port, 0);
    int sfd = accept_lo(lfd);

    /* a send that completes at once (the socket has room) */
    struct one os = {0};
    struct io_op sop = {.fn = on_one, .owner = &os};
    struct iovec iov = {(void *)"ping", 4};
    cr_assert_eq(Q(io_send(loop, &sop, sfd, &iov, 1, 0)), 0);
    cr_assert_eq(os.n, 0, "io_send delivered its completion inline");
    cr_assert(io_op_busy(&sop));

    /* a sendfile that completes at once, on another socket */
    int cfd2 = connect_lo(port, 0);
    int sfd2 = accept_lo(lfd);
    struct one of = {0};
    struct io_op fop = {.fn = on_one, .owner = &of};
    cr_assert_eq(Q(io_sendfile(loop, &fop, sfd2, file, 0, 8192)), 0);
    cr_assert_eq(of.n, 0, "io_sendfile delivered its completion inline");

    /* a recv cancelled at once */
    struct one orc = {0};
    struct io_op rop = {.fn = on_one, .owner = &orc};
    cr_assert_eq(Q(io_recv(loop, &rop, sfd2)), 0);
    QV(io_cancel(loop, &rop));
    cr_assert_eq(orc.n, 0, "io_cancel delivered the final completion inline");
    cr_assert(io_op_busy(&rop));

    struct io_loop_stats st0;
    io_loop_get_stats(loop, &st0);
    cr_assert_eq(st0.completions, 0);

    int all = 0;
    for (int i = 0; i < 100 && all < 3; i++) {
        drive_for(loop, 5);
        all = os.n + of.n + orc.n;
    }
    cr_assert_eq(os.n, 1);
    cr_assert_eq(os.res, 4);
    cr_assert_eq(of.n, 1);
    cr_assert_eq(of.res, 8192);
    cr_assert_eq(orc.n, 1);
    cr_assert_eq(orc.res, -ECANCELED);
    char buf[8192];
    cr_assert(read_exact(cfd, buf, 4));
    cr_assert_eq(memcmp(buf, "ping", 4), 0);
    cr_assert(read_exact(cfd2, buf, 8192));
    close(cfd);
    close(cfd2);
    close(sfd);
    close(sfd2);
    close(lfd);
    close(file);
    io_loop_free(loop);
}

/* ---- more edges ---------------------------------------------------------------- */

/* A connected UDP socket (a TFTP transfer's TID) whose peer has gone gets an
 * ICMP port unreachable: the receive op ignores the error and keeps going. */
BOTH(udp_icmp_error_keeps_receiving, 15)
{
    struct io_loop *loop = new_loop(be);
    static struct urx u;
    urx_start(&u, loop, htonl(INADDR_LOOPBACK), 0);
    uint16_t dead;
    int gone = udp_client(&dead);
    close(gone); /* nothing listens on `dead` now */
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(dead), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(connect(u.fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(send(u.fd, "hello?", 6, 0), 6);
    drive_for(loop, 50);
    cr_assert_eq(u.final, 0, "the ICMP error ended the receive op (res %d)", u.final_res);
    cr_assert(io_op_busy(&u.op));

    /* the peer is back on the same port and answers */
    int back = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(back, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    cr_assert_eq(bind(back, (struct sockaddr *)&sa, sizeof(sa)), 0, "rebind %u: %s", dead, strerror(errno));
    udp_send(back, "127.0.0.1", (uint16_t)sock_local_port(u.fd), "alive", 5);
    cr_assert(drive(loop, &u.got, 1, 5000), "nothing received after the ICMP error");
    cr_assert_eq(u.d[0].len, 5);
    cr_assert_eq(memcmp(u.d[0].head, "alive", 5), 0);
    close(back);
    close(u.fd);
    io_loop_free(loop);
}

/* Fills a socket's send buffer (the peer does not read); returns the bytes. */
static size_t stuff(int fd, const char *junk, size_t n)
{
    size_t total = 0;
    for (;;) {
        ssize_t w = send(fd, junk, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0) {
            cr_assert_eq(errno, EAGAIN, "%s", strerror(errno));
            return total;
        }
        total += (size_t)w;
    }
}

/* A send or sendfile waiting for a full socket ends with -ECANCELED on
 * io_cancel, and nothing of it is sent afterwards. */
BOTH(cancel_waiting_writes, 15)
{
    uint64_t h;
    int file = make_temp_file(1 << 20, &h);
    struct io_loop *loop = new_loop(be);
    uint16_t port;
    int lfd = listen_lo(&port);
    int cfd = connect_lo(port, 16 * 1024);
    int sfd = accept_lo(lfd);
    int sndbuf = 32 * 1024; /* fixed: no autotuning makes room later */
    setsockopt(sfd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    static char junk[64 * 1024];
    size_t stuffed = stuff(sfd, junk, sizeof(junk));
    cr_assert_gt(stuffed, 0);

    struct one o = {0};
    struct io_op op = {.fn = on_one, .owner = &o};
    cr_assert_eq(Q(io_sendfile(loop, &op, sfd, file, 0, 1 << 20)), 0);
    drive_for(loop, 50);
    cr_assert_eq(o.n, 0, "sendfile completed on a full socket (res %d)", o.res);
    QV(io_cancel(loop, &op));
    cr_assert_eq(o.n, 0);
    cr_assert(drive(loop, &o.n, 1, 5000), "no final completion for a cancelled sendfile");
    cr_assert_eq(o.res, -ECANCELED, "got %d", o.res);

    o.n = 0;
    stuffed += stuff(sfd, junk, sizeof(junk)); /* what acks freed meanwhile */
    struct iovec iov = {junk, sizeof(junk)};
    cr_assert_eq(Q(io_send(loop, &op, sfd, &iov, 1, 0)), 0);
    drive_for(loop, 50);
    cr_assert_eq(o.n, 0, "send completed on a full socket (res %d)", o.res);
    QV(io_cancel(loop, &op));
    cr_assert(drive(loop, &o.n, 1, 5000), "no final completion for a cancelled send");
    cr_assert_eq(o.res, -ECANCELED, "got %d", o.res);

    /* drain: exactly what was stuffed, nothing from the cancelled ops */
    int fl = fcntl(cfd, F_GETFL);
    fcntl(cfd, F_SETFL, fl | O_NONBLOCK);
    size_t drained = 0;
    for (int idle = 0; idle < 20;) {
        ssize_t r = recv(cfd, junk, sizeof(junk), 0);
        if (r > 0) {
            drained += (size_t)r;
            idle = 0;
        } else {
            idle++;
            sleep_ms(5);
        }
    }
    cr_assert_eq(drained, stuffed, "drained %zu, stuffed %zu", drained, stuffed);
    close(cfd);
    close(sfd);
    close(lfd);
    close(file);
    io_loop_free(loop);
}

/* A tiny ring (4 SQEs, 16 CQEs) under a burst: submissions that do not fit go
 * out early, completions beyond the CQ are not lost, the loop survives. */
BOTH(udp_burst_small_ring, 30)
{
    struct io_loop_config cfg = {.backend = be, .ring_entries = 4, .recv_buffers = 256, .recv_buffer_size = 256};
    struct io_loop *loop = NULL;
    char why[256];
    cr_assert_eq(io_loop_new(&loop, &cfg, why, sizeof(why)), 0, "%s", why);
    static struct urx u;
    urx_start(&u, loop, htonl(INADDR_LOOPBACK), 4 << 20);
    uint16_t sport = (uint16_t)sock_local_port(u.fd), cport;
    int cfd = udp_client(&cport);
    unsigned char pkt[64] = {0};
    for (uint32_t i = 0; i < 1000; i++) {
        memcpy(pkt, &i, sizeof(i));
        udp_send(cfd, "127.0.0.1", sport, pkt, sizeof(pkt));
    }
    cr_assert(drive(loop, &u.got, 1000, 15000), "got %d of 1000 datagrams", u.got);
    cr_assert_eq(u.final, 0);
    /* timers and sends still work on the small ring */
    struct one o[8] = {{0}};
    struct io_op ops[8];
    struct iovec iov = {"pong", 4};
    int sent = 0;
    struct sockaddr_in back = {.sin_family = AF_INET, .sin_port = htons(cport), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(connect(u.fd, (struct sockaddr *)&back, sizeof(back)), 0);
    for (int i = 0; i < 8; i++) {
        ops[i] = (struct io_op){.fn = on_one, .owner = &o[i]};
        cr_assert_eq(Q(io_send(loop, &ops[i], u.fd, &iov, 1, 0)), 0, "send %d did not queue", i);
    }
    for (int i = 0; i < 200 && sent < 8; i++) {
        drive_for(loop, 5);
        sent = 0;
        for (int k = 0; k < 8; k++)
            sent += o[k].n;
    }
    cr_assert_eq(sent, 8);
    for (int k = 0; k < 8; k++)
        cr_assert_eq(o[k].res, 4);
    close(cfd);
    close(u.fd);
    io_loop_free(loop);
}

/* io_send_datagram: a 4-byte head (copied) and a body (referenced) arrive as one
 * datagram, in order, with the right bytes.  On io_uring nothing leaves before
 * the loop's next submission (io_flush or a turn), and more datagrams than the
 * ring has slots still all go out; on epoll each is sent at once.  A send that
 * fails in the ring is counted, not lost silently; on epoll the caller sees it. */
BOTH(udp_send_datagram, 15)
{
    struct io_loop_config cfg = {.backend = be, .ring_entries = 64};
    struct io_loop *loop = NULL;
    char why[256] = "";
    cr_assert_eq(io_loop_new(&loop, &cfg, why, sizeof(why)), 0, "%s", why);
    uint16_t rport;
    int rfd = udp_client(&rport);
    int big = 4 << 20;
    setsockopt(rfd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
    char err[160] = "";
    int sfd = sock_udp_bind(htonl(INADDR_LOOPBACK), 0, NULL, err, sizeof(err));
    cr_assert_geq(sfd, 0, "%s", err);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(rport), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    static uint8_t body[512];
    for (size_t i = 0; i < sizeof(body); i++)
        body[i] = (uint8_t)(i * 7 + 1);
    uint8_t got[1024];

    uint32_t seq = 0xfeedf00d;
    cr_assert_eq(io_send_datagram(loop, sfd, &to, &seq, sizeof(seq), body, 100), 0);
    ssize_t n = recv(rfd, got, sizeof(got), MSG_DONTWAIT);
    if (be == IO_BACKEND_URING) {
        cr_assert(n < 0 && errno == EAGAIN, "a queued datagram left before the submission");
        io_flush(loop);
        n = recv(rfd, got, sizeof(got), MSG_DONTWAIT);
    }
    cr_assert_eq(n, 104, "recv: %zd (%s)", n, n < 0 ? strerror(errno) : "short");
    cr_assert_eq(memcmp(got, &seq, 4), 0);
    cr_assert_eq(memcmp(got + 4, body, 100), 0);

    enum { N = 300 }; /* more than the 64 slots */
    for (uint32_t i = 0; i < N; i++)
        cr_assert_eq(io_send_datagram(loop, sfd, &to, &i, sizeof(i), body + i % 200, i % 300), 0, "datagram %u", i);
    io_flush(loop);
    for (uint32_t i = 0; i < N; i++) {
        n = recv(rfd, got, sizeof(got), MSG_DONTWAIT);
        cr_assert_eq(n, (ssize_t)(4 + i % 300), "datagram %u: %zd bytes (%s)", i, n, n < 0 ? strerror(errno) : "");
        uint32_t s;
        memcpy(&s, got, 4);
        cr_assert_eq(s, i, "datagram %u arrived as %u", i, s);
        cr_assert_eq(memcmp(got + 4, body + i % 200, i % 300), 0, "datagram %u: body", i);
    }
    cr_assert_eq(io_send_datagram(loop, sfd, &to, &seq, IO_DGRAM_HEAD_MAX + 1, NULL, 0), -EINVAL);

    /* a send that cannot succeed: to a listening TCP socket */
    uint16_t tport;
    int lfd = listen_lo(&tport);
    int rc = io_send_datagram(loop, lfd, &to, &seq, sizeof(seq), body, 10);
    struct io_loop_stats st;
    if (be == IO_BACKEND_URING) {
        cr_assert_eq(rc, 0);
        drive_for(loop, 30);
        io_loop_get_stats(loop, &st);
        cr_assert_eq(st.dgram_errors, 1);
        cr_assert_geq(st.dgrams_queued, N + 2);
    } else {
        cr_assert_lt(rc, 0);
        io_loop_get_stats(loop, &st);
        cr_assert_eq(st.dgrams_queued, 0);
    }
    close(lfd);
    close(sfd);
    close(rfd);
    io_loop_free(loop);
}

/* Re-arming an armed timer moves it within the heap, both ways: half the
 * timers are moved later and half sooner, all while armed, and they still fire
 * in deadline order, none early, none twice. */
BOTH(timer_rearm_in_place, 15)
{
    tc = (struct tcase){.loop = new_loop(be)};
    for (int i = 0; i < NTIMERS; i++) {
        tc.t[i].fn = on_tc;
        io_timer_arm(tc.loop, &tc.t[i], 60 + (uint64_t)((i * 31) % 60));
    }
    for (int i = 0; i < NTIMERS; i++) {
        tc.delay[i] = i % 2 ? (uint64_t)((i * 7919) % 50) : 130 + (uint64_t)((i * 13) % 50);
        tc.armed_at[i] = io_loop_now_ms(tc.loop);
        io_timer_arm(tc.loop, &tc.t[i], tc.delay[i]);
        cr_assert(io_timer_armed(&tc.t[i]));
        cr_assert_eq(io_timer_due_ms(&tc.t[i]), tc.armed_at[i] + tc.delay[i]);
    }
    cr_assert(drive(tc.loop, &tc.fired, NTIMERS, 5000), "%d of %d timers fired", tc.fired, NTIMERS);
    drive_for(tc.loop, 50);
    cr_assert_eq(tc.fired, NTIMERS, "a timer fired twice");
    for (int k = 0; k < NTIMERS; k++) {
        int i = tc.order[k];
        cr_assert_geq(tc.fired_at[i], tc.armed_at[i] + tc.delay[i], "timer %d fired early", i);
        if (k > 0)
            cr_assert_geq(tc.delay[i], tc.delay[tc.order[k - 1]], "timer %d fired before timer %d", tc.order[k - 1], i);
    }
    io_loop_free(tc.loop);
}

/* io_recvmsg_drain hands a running recvmsg op the datagrams waiting on its
 * socket now, through its callback, at most max per call, each once, with
 * the same source address as the ring would give; then the op goes on
 * receiving as before.  Nothing is delivered for an op not running. */
BOTH(udp_recvmsg_drain, 15)
{
    struct io_loop *loop = new_loop(be);
    static struct urx u;
    urx_start(&u, loop, htonl(INADDR_LOOPBACK), 1 << 20);
    uint16_t sport = (uint16_t)sock_local_port(u.fd), cport;
    int cfd = udp_client(&cport);
    for (uint32_t i = 0; i < 100; i++)
        udp_send(cfd, "127.0.0.1", sport, &i, sizeof(i));
    unsigned n = io_recvmsg_drain(loop, &u.op, 40);
    cr_assert_eq(n, 40);
    cr_assert_eq(u.got, 40);
    n = io_recvmsg_drain(loop, &u.op, 1000);
    cr_assert_eq(n, 60, "%u", n);
    cr_assert_eq(u.got, 100);
    cr_assert_eq(io_recvmsg_drain(loop, &u.op, 1000), 0, "nothing left");
    for (int i = 0; i < 100; i++) {
        uint32_t seq;
        memcpy(&seq, u.d[i].head, sizeof(seq));
        cr_assert_eq(seq, (uint32_t)i, "datagram %d arrived as %u", i, seq);
        cr_assert_eq(ntohs(u.d[i].peer.sin_port), cport);
    }
    struct io_loop_stats st;
    io_loop_get_stats(loop, &st);
    cr_assert_eq(st.drained, 100);
    /* the op still receives through the ring (or epoll) */
    udp_send(cfd, "127.0.0.1", sport, "x", 1);
    cr_assert(drive(loop, &u.got, 101, 5000), "got %d of 101", u.got);
    QV(io_cancel(loop, &u.op));
    cr_assert(drive(loop, &u.final, 1, 5000));
    udp_send(cfd, "127.0.0.1", sport, "y", 1);
    cr_assert_eq(io_recvmsg_drain(loop, &u.op, 10), 0, "a finished op gets nothing");
    close(cfd);
    close(u.fd);
    io_loop_free(loop);
}
