/* io/loop.c — what both backends share: creation and backend choice, the
 * ready list, the timer heap, sendfile attempts and the run loop. */
#include "io/loop_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/sendfile.h>
#include <time.h>
#include <unistd.h>

uint64_t io_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

const char *io_backend_name(enum io_backend b)
{
    switch (b) {
    case IO_BACKEND_URING: return "uring";
    case IO_BACKEND_EPOLL: return "epoll";
    default: return "auto";
    }
}

int io_loop_new(struct io_loop **out, const struct io_loop_config *cfg, char *why, size_t why_len)
{
    struct io_loop *loop = calloc(1, sizeof(*loop));
    if (!loop)
        return -ENOMEM;
    loop->cfg = *cfg;
    if (!loop->cfg.ring_entries)
        loop->cfg.ring_entries = 1024;
    if (!loop->cfg.recv_buffers)
        loop->cfg.recv_buffers = 512;
    if (!loop->cfg.recv_buffer_size)
        loop->cfg.recv_buffer_size = 4096;
    if (loop->cfg.recv_buffers & (loop->cfg.recv_buffers - 1)) {
        free(loop);
        return -EINVAL;
    }
    /* Not EFD_NONBLOCK: older kernels complete an io_uring read of an
     * O_NONBLOCK file at once with -EAGAIN instead of polling it, and the
     * re-armed wake read would spin.  Nothing blocks on it: epoll reads it
     * only when readable, and a write blocks only at a counter of 2^64-2. */
    loop->wake_fd = eventfd(0, EFD_CLOEXEC);
    if (loop->wake_fd < 0) {
        int e = -errno;
        free(loop);
        return e;
    }
    loop->now_ms = io_mono_ms();
    int rc = -ENOSYS;
    char uwhy[160] = "";
    if (cfg->backend != IO_BACKEND_EPOLL) {
        rc = io_uring_backend_init(loop, uwhy, sizeof(uwhy));
        if (rc == 0) {
            snprintf(why, why_len, "uring: %s", uwhy);
        } else if (cfg->backend == IO_BACKEND_URING) {
            snprintf(why, why_len, "uring unavailable: %s", uwhy);
            close(loop->wake_fd);
            free(loop);
            return rc;
        }
    }
    if (rc != 0) {
        rc = io_epoll_backend_init(loop, why, why_len);
        if (rc == 0 && cfg->backend == IO_BACKEND_AUTO) {
            char tmp[200];
            snprintf(tmp, sizeof(tmp), "epoll: io_uring unavailable (%s)", uwhy);
            snprintf(why, why_len, "%s", tmp);
        } else if (rc == 0) {
            snprintf(why, why_len, "epoll: chosen with --backend=epoll");
        }
    }
    if (rc != 0) {
        close(loop->wake_fd);
        free(loop);
        return rc;
    }
    *out = loop;
    return 0;
}

void io_loop_free(struct io_loop *loop)
{
    if (!loop)
        return;
    loop->ops->destroy(loop);
    close(loop->wake_fd);
    free(loop->heap);
    free(loop->scratch);
    free(loop);
}

enum io_backend io_loop_backend(const struct io_loop *loop) { return loop->backend; }
uint64_t io_loop_now_ms(const struct io_loop *loop) { return loop->now_ms; }

void io_loop_set_idle_hook(struct io_loop *loop, void (*fn)(void *), void *arg)
{
    loop->idle_fn = fn;
    loop->idle_arg = arg;
}

void io_loop_wake(struct io_loop *loop)
{
    uint64_t one = 1;
    ssize_t n = write(loop->wake_fd, &one, sizeof(one));
    (void)n; /* nothing to do on failure: the fd lives as long as the loop */
}

void io_loop_stop(struct io_loop *loop)
{
    atomic_store(&loop->stop, true);
    io_loop_wake(loop);
}

int io_send_datagram(struct io_loop *loop, int fd, const struct sockaddr_in *to, const void *head, size_t head_len,
                     const void *body, size_t body_len)
{
    if (head_len > IO_DGRAM_HEAD_MAX)
        return -EINVAL;
    return loop->ops->send_dgram(loop, fd, to, head, head_len, body, body_len);
}

void io_flush(struct io_loop *loop)
{
    if (loop->ops->flush)
        loop->ops->flush(loop);
}

void io_close(struct io_loop *loop, int fd)
{
    if (loop->ops->close)
        loop->ops->close(loop, fd);
    else
        close(fd);
}

int io_recvmsg_direct(struct io_loop *loop, struct io_op *op, struct io_completion *c,
                      struct sockaddr_storage *peer)
{
    char cbuf[CMSG_SPACE(sizeof(struct in_pktinfo))];
    struct iovec iov = {loop->scratch, loop->cfg.recv_buffer_size};
    struct msghdr m = {.msg_name = peer, .msg_namelen = sizeof(*peer), .msg_iov = &iov, .msg_iovlen = 1,
                       .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
    ssize_t n = recvmsg(op->fd, &m, MSG_DONTWAIT);
    if (n < 0) {
        c->res = errno == EINTR || errno == EWOULDBLOCK ? -EAGAIN : -errno;
        return c->res;
    }
    c->res = (int)n;
    c->buf = loop->scratch;
    c->len = (size_t)n;
    c->peer = peer;
    c->peer_len = m.msg_namelen;
    c->truncated = (m.msg_flags & MSG_TRUNC) != 0;
    if (c->truncated)
        loop->stats.truncated++;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm)) {
        if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO) {
            struct in_pktinfo pi;
            memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
            c->ifindex = pi.ipi_ifindex;
            c->local = pi.ipi_spec_dst;
        }
    }
    return c->res;
}

unsigned io_recvmsg_drain(struct io_loop *loop, struct io_op *op, unsigned max)
{
    if (op->kind != IO_OP_RECVMSG || !op->queued || op->cancel_requested)
        return 0;
    if (!loop->scratch && !(loop->scratch = malloc(loop->cfg.recv_buffer_size)))
        return 0;
    unsigned n = 0;
    while (n < max && op->queued && !op->cancel_requested) {
        struct io_completion c = {.more = true};
        struct sockaddr_storage peer;
        int r = io_recvmsg_direct(loop, op, &c, &peer);
        if (io_icmp_error(r))
            continue; /* an ICMP error left on the socket: not a datagram, not an end */
        if (r < 0)
            break;    /* none waiting (or an error: the op itself will report it) */
        loop->stats.drained++;
        n++;
        io_deliver(op, &c);
    }
    return n;
}

/* Both backends' direct path: one sendmsg now. */
int io_sendmsg_dgram_now(int fd, const struct sockaddr_in *to, const void *head, size_t head_len, const void *body,
                         size_t body_len)
{
    struct iovec iov[2] = {{(void *)head, head_len}, {(void *)body, body_len}};
    struct msghdr m = {.msg_name = (void *)to, .msg_namelen = sizeof(*to), .msg_iov = iov,
                       .msg_iovlen = body_len ? 2 : 1};
    if (sendmsg(fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
        return -errno;
    return 0;
}

void io_loop_get_stats(const struct io_loop *loop, struct io_loop_stats *out) { *out = loop->stats; }

bool io_op_busy(const struct io_op *op) { return op->queued; }

/* ---- ready list ---------------------------------------------------------- */

void io_ready(struct io_loop *loop, struct io_op *op, int res)
{
    op->ready_res = res;
    op->next_ready = NULL;
    if (loop->ready_tail)
        loop->ready_tail->next_ready = op;
    else
        loop->ready_head = op;
    loop->ready_tail = op;
}

void io_deliver(struct io_op *op, const struct io_completion *c)
{
    if (!c->more)
        op->queued = false;
    op->loop->stats.completions++;
    op->fn(op, c);
}

/* Delivers the completions queued before this call; ones queued by the
 * callbacks wait for the next turn, so one busy connection cannot starve the
 * others. */
static void run_ready(struct io_loop *loop)
{
    struct io_op *op = loop->ready_head, *last = loop->ready_tail;
    loop->ready_head = loop->ready_tail = NULL;
    while (op) {
        struct io_op *next = op->next_ready;
        bool was_last = op == last;
        struct io_completion c = {.res = op->ready_res, .more = false};
        io_deliver(op, &c);
        if (was_last)
            break;
        op = next;
    }
}

/* ---- ops ----------------------------------------------------------------- */

static int start(struct io_loop *loop, struct io_op *op, enum io_op_kind kind, int fd)
{
    if (op->queued)
        return -EBUSY;
    op->loop = loop;
    op->kind = kind;
    op->fd = fd;
    op->cancel_requested = false;
    op->state = 0;
    op->queued = true;
    return 0;
}

int io_accept(struct io_loop *loop, struct io_op *op, int listen_fd)
{
    int rc = start(loop, op, IO_OP_ACCEPT, listen_fd);
    if (rc == 0 && (rc = loop->ops->arm(loop, op)) != 0)
        op->queued = false;
    return rc;
}

int io_recv(struct io_loop *loop, struct io_op *op, int fd)
{
    int rc = start(loop, op, IO_OP_RECV, fd);
    if (rc == 0 && (rc = loop->ops->arm(loop, op)) != 0)
        op->queued = false;
    return rc;
}

int io_recvmsg(struct io_loop *loop, struct io_op *op, int fd)
{
    int rc = start(loop, op, IO_OP_RECVMSG, fd);
    if (rc == 0 && (rc = loop->ops->arm(loop, op)) != 0)
        op->queued = false;
    return rc;
}

int io_send(struct io_loop *loop, struct io_op *op, int fd, const struct iovec *iov, int iovcnt, int flags)
{
    int rc = start(loop, op, IO_OP_SEND, fd);
    if (rc)
        return rc;
    memset(&op->msg, 0, sizeof(op->msg));
    op->msg.msg_iov = (struct iovec *)iov;
    op->msg.msg_iovlen = (size_t)iovcnt;
    op->flags = flags | MSG_NOSIGNAL;
    if ((rc = loop->ops->send(loop, op)) != 0)
        op->queued = false;
    return rc;
}

int io_try_sendfile(struct io_op *op)
{
    off_t off = (off_t)op->file_off;
    ssize_t n = sendfile(op->fd, op->file_fd, &off, op->file_len);
    if (n < 0)
        return errno == EINTR ? -EAGAIN : -errno;
    return (int)n;
}

/* sendfile(2) straight from the worker: the socket is non-blocking, so the call
 * copies page-cache pages into the socket until its buffer is full; only when
 * nothing fits does the op wait for writability. */
int io_sendfile(struct io_loop *loop, struct io_op *op, int sock_fd, int file_fd, uint64_t off, size_t len)
{
    int rc = start(loop, op, IO_OP_SENDFILE, sock_fd);
    if (rc)
        return rc;
    op->file_fd = file_fd;
    op->file_off = off;
    op->file_len = len > 0x7ffff000 ? 0x7ffff000 : len;
    int n = io_try_sendfile(op);
    if (n == -EAGAIN) {
        if ((rc = loop->ops->wait_writable(loop, op)) != 0)
            op->queued = false;
        return rc;
    }
    io_ready(loop, op, n);
    return 0;
}

void io_cancel(struct io_loop *loop, struct io_op *op)
{
    if (!op->queued || op->cancel_requested)
        return;
    op->cancel_requested = true;
    loop->ops->cancel(loop, op);
}

/* ---- timers: a binary min-heap of armed timers ---------------------------- */

static void heap_swap(struct io_loop *loop, uint32_t a, uint32_t b)
{
    struct io_timer *t = loop->heap[a];
    loop->heap[a] = loop->heap[b];
    loop->heap[b] = t;
    loop->heap[a]->heap_index = a;
    loop->heap[b]->heap_index = b;
}

static void heap_up(struct io_loop *loop, uint32_t i)
{
    while (i > 1 && loop->heap[i / 2]->due_ms > loop->heap[i]->due_ms) {
        heap_swap(loop, i, i / 2);
        i /= 2;
    }
}

static void heap_down(struct io_loop *loop, uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i, r = l + 1, m = i;
        if (l <= loop->heap_len && loop->heap[l]->due_ms < loop->heap[m]->due_ms)
            m = l;
        if (r <= loop->heap_len && loop->heap[r]->due_ms < loop->heap[m]->due_ms)
            m = r;
        if (m == i)
            return;
        heap_swap(loop, i, m);
        i = m;
    }
}

void io_timer_cancel(struct io_loop *loop, struct io_timer *t)
{
    uint32_t i = t->heap_index;
    if (!i)
        return;
    t->heap_index = 0;
    if (i != loop->heap_len) {
        loop->heap[i] = loop->heap[loop->heap_len];
        loop->heap[i]->heap_index = i;
        loop->heap_len--;
        heap_up(loop, i);
        heap_down(loop, loop->heap[i]->heap_index);
    } else {
        loop->heap_len--;
    }
}

void io_timer_arm(struct io_loop *loop, struct io_timer *t, uint64_t after_ms)
{
    if (t->heap_index) { /* re-armed: moved within the heap, not taken out and put back */
        uint64_t old = t->due_ms;
        t->due_ms = loop->now_ms + after_ms;
        if (t->due_ms < old)
            heap_up(loop, t->heap_index);
        else if (t->due_ms > old)
            heap_down(loop, t->heap_index);
        return;
    }
    if (loop->heap_len + 1 >= loop->heap_cap) {
        uint32_t cap = loop->heap_cap ? loop->heap_cap * 2 : 256;
        struct io_timer **h = realloc(loop->heap, cap * sizeof(*h));
        if (!h)
            abort(); /* a timer we cannot arm is a connection we cannot bound */
        loop->heap = h;
        loop->heap_cap = cap;
    }
    t->due_ms = loop->now_ms + after_ms;
    loop->heap[++loop->heap_len] = t;
    t->heap_index = loop->heap_len;
    heap_up(loop, loop->heap_len);
}

static void run_timers(struct io_loop *loop)
{
    /* Bounded per turn so a timer storm cannot starve I/O. */
    for (int n = 0; n < 4096 && loop->heap_len && loop->heap[1]->due_ms <= loop->now_ms; n++) {
        struct io_timer *t = loop->heap[1];
        io_timer_cancel(loop, t);
        t->fn(t);
    }
}

static int next_timeout_ms(struct io_loop *loop)
{
    if (loop->ready_head)
        return 0;
    if (!loop->heap_len)
        return 1000;
    uint64_t due = loop->heap[1]->due_ms;
    if (due <= loop->now_ms)
        return 0;
    uint64_t d = due - loop->now_ms;
    return d > 1000 ? 1000 : (int)d;
}

int io_loop_run(struct io_loop *loop)
{
    while (!atomic_load(&loop->stop)) {
        loop->stats.turns++;
        loop->now_ms = io_mono_ms();
        run_ready(loop);
        run_timers(loop);
        if (loop->idle_fn)
            loop->idle_fn(loop->idle_arg);
        int rc = loop->ops->wait(loop, next_timeout_ms(loop));
        if (rc < 0 && rc != -EINTR && rc != -ETIME && rc != -EAGAIN)
            return rc;
    }
    atomic_store(&loop->stop, false);
    return 0;
}
