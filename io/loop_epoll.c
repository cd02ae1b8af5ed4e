/* io/loop_epoll.c — the readiness backend: the same completions as the
 * io_uring backend, with the syscall made when epoll says the descriptor is
 * ready.  Level-triggered; at most one reader and one writer op per fd. */
#include "io/loop_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

static struct ep_fd *slot(struct io_loop *loop, int fd)
{
    if (fd >= loop->e.nfds) {
        int n = loop->e.nfds ? loop->e.nfds : 1024;
        while (n <= fd)
            n *= 2;
        struct ep_fd *f = realloc(loop->e.fds, (size_t)n * sizeof(*f));
        if (!f)
            return NULL;
        memset(f + loop->e.nfds, 0, (size_t)(n - loop->e.nfds) * sizeof(*f));
        loop->e.fds = f;
        loop->e.nfds = n;
    }
    return &loop->e.fds[fd];
}

static int update(struct io_loop *loop, int fd, struct ep_fd *s)
{
    uint32_t want = (s->rd ? EPOLLIN : 0) | (s->wr ? EPOLLOUT : 0);
    if (want == s->events)
        return 0;
    struct epoll_event ev = {.events = want, .data.fd = fd};
    int rc;
    if (!s->events)
        rc = epoll_ctl(loop->e.epfd, EPOLL_CTL_ADD, fd, &ev);
    else if (!want)
        rc = epoll_ctl(loop->e.epfd, EPOLL_CTL_DEL, fd, NULL);
    else
        rc = epoll_ctl(loop->e.epfd, EPOLL_CTL_MOD, fd, &ev);
    if (rc < 0)
        return -errno;
    s->events = want;
    return 0;
}

static int ep_arm(struct io_loop *loop, struct io_op *op)
{
    struct ep_fd *s = slot(loop, op->fd);
    if (!s)
        return -ENOMEM;
    if (s->rd)
        return -EBUSY;
    s->rd = op;
    int rc = update(loop, op->fd, s);
    if (rc)
        s->rd = NULL;
    return rc;
}

static int ep_wait_writable(struct io_loop *loop, struct io_op *op)
{
    struct ep_fd *s = slot(loop, op->fd);
    if (!s)
        return -ENOMEM;
    if (s->wr)
        return -EBUSY;
    s->wr = op;
    int rc = update(loop, op->fd, s);
    if (rc)
        s->wr = NULL;
    return rc;
}

static int try_send(struct io_op *op)
{
    ssize_t n = sendmsg(op->fd, &op->msg, op->flags | MSG_DONTWAIT);
    if (n < 0)
        return errno == EINTR ? -EAGAIN : -errno;
    return (int)n;
}

static int ep_send(struct io_loop *loop, struct io_op *op)
{
    int n = try_send(op);
    if (n == -EAGAIN)
        return ep_wait_writable(loop, op);
    io_ready(loop, op, n);
    return 0;
}

static int ep_send_dgram(struct io_loop *loop, int fd, const struct sockaddr_in *to, const void *head,
                         size_t head_len, const void *body, size_t body_len)
{
    (void)loop;
    return io_sendmsg_dgram_now(fd, to, head, head_len, body, body_len);
}

static void ep_cancel(struct io_loop *loop, struct io_op *op)
{
    if (op->fd < 0 || op->fd >= loop->e.nfds)
        return;
    struct ep_fd *s = &loop->e.fds[op->fd];
    if (s->rd == op)
        s->rd = NULL;
    else if (s->wr == op)
        s->wr = NULL;
    else
        return; /* already on the ready list: it completes with its result */
    update(loop, op->fd, s);
    io_ready(loop, op, -ECANCELED);
}

/* Drop the reader registration: the op has delivered its final completion. */
static void finish_reader(struct io_loop *loop, struct io_op *op)
{
    struct ep_fd *s = &loop->e.fds[op->fd];
    if (s->rd == op) {
        s->rd = NULL;
        update(loop, op->fd, s);
    }
}

static void on_readable(struct io_loop *loop, struct io_op *op)
{
    /* Bounded work per readiness event, like a multishot op's batch. */
    for (int i = 0; i < 32 && loop->e.fds[op->fd].rd == op && !op->cancel_requested; i++) {
        struct io_completion c = {.more = true};
        if (op->kind == IO_OP_ACCEPT) {
            struct sockaddr_storage peer;
            socklen_t plen = sizeof(peer);
            int fd = accept4(op->fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) {
                if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
                    return;
                /* EMFILE and friends end the op, as they end an accept on
                 * io_uring: the listener stays readable, and level-triggered
                 * readiness would spin on the same error until the owner acts */
                c.res = -errno;
                c.more = false;
                finish_reader(loop, op);
                io_deliver(op, &c);
                return;
            }
            c.res = fd;
            c.peer = &peer;
            c.peer_len = plen;
            io_deliver(op, &c);
        } else if (op->kind == IO_OP_RECV) {
            ssize_t n = recv(op->fd, loop->scratch, loop->cfg.recv_buffer_size, MSG_DONTWAIT);
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return;
            c.res = n < 0 ? -errno : (int)n;
            c.buf = loop->scratch;
            c.len = n > 0 ? (size_t)n : 0;
            if (n <= 0) {
                c.more = false;
                finish_reader(loop, op);
            }
            io_deliver(op, &c);
            if (n <= 0 || (size_t)n < loop->cfg.recv_buffer_size)
                return; /* drained */
        } else if (op->kind == IO_OP_RECVMSG) {
            struct sockaddr_storage peer;
            int n = io_recvmsg_direct(loop, op, &c, &peer);
            if (n == -EAGAIN)
                return;
            /* ICMP errors surface here on UDP; they are not fatal */
            if (io_icmp_error(n))
                continue;
            if (n < 0) {
                c.more = false;
                finish_reader(loop, op);
                io_deliver(op, &c);
                return;
            }
            io_deliver(op, &c);
        }
    }
}

static void on_writable(struct io_loop *loop, struct io_op *op)
{
    int n = op->kind == IO_OP_SENDFILE ? io_try_sendfile(op) : try_send(op);
    if (n == -EAGAIN)
        return;
    struct ep_fd *s = &loop->e.fds[op->fd];
    s->wr = NULL;
    update(loop, op->fd, s);
    io_ready(loop, op, n);
}

static int ep_wait(struct io_loop *loop, int timeout_ms)
{
    struct epoll_event evs[256];
    int n = epoll_wait(loop->e.epfd, evs, 256, timeout_ms);
    if (n < 0)
        return -errno;
    loop->now_ms = io_mono_ms(); /* callbacks below may arm timers */
    for (int i = 0; i < n; i++) {
        int fd = evs[i].data.fd;
        if (fd == loop->wake_fd) {
            uint64_t v;
            ssize_t r = read(fd, &v, sizeof(v));
            (void)r;
            continue;
        }
        struct ep_fd *s = &loop->e.fds[fd];
        uint32_t ev = evs[i].events;
        if (s->wr && (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            on_writable(loop, s->wr);
        if (s->rd && (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)))
            on_readable(loop, s->rd);
    }
    return 0;
}

static void ep_destroy(struct io_loop *loop)
{
    close(loop->e.epfd);
    free(loop->e.fds);
}

static const struct io_backend_ops epoll_ops = {
    .arm = ep_arm,
    .send = ep_send,
    .send_dgram = ep_send_dgram,
    .wait_writable = ep_wait_writable,
    .cancel = ep_cancel,
    .wait = ep_wait,
    .destroy = ep_destroy,
};

int io_epoll_backend_init(struct io_loop *loop, char *why, size_t why_len)
{
    loop->e.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->e.epfd < 0)
        return -errno;
    loop->scratch = malloc(loop->cfg.recv_buffer_size);
    if (!loop->scratch) {
        close(loop->e.epfd);
        return -ENOMEM;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = loop->wake_fd};
    if (epoll_ctl(loop->e.epfd, EPOLL_CTL_ADD, loop->wake_fd, &ev) < 0) {
        int e = -errno;
        close(loop->e.epfd);
        return e;
    }
    loop->backend = IO_BACKEND_EPOLL;
    loop->ops = &epoll_ops;
    (void)why;
    (void)why_len;
    return 0;
}
