/* io/loop_uring.c — the io_uring backend (liburing).
 *
 * One ring per worker.  Receives are multishot and draw from one
 * provided-buffer ring (group 0); a buffer goes back to the ring when the
 * callback that saw it returns.  Submissions are batched: SQEs accumulate
 * during a turn and go to the kernel in the one io_uring_enter() that also
 * waits for completions. */
#include "io/loop_internal.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>

#define BGID 0

/* What the kernel writes in front of a multishot recvmsg payload in each
 * provided buffer: its io_uring_recvmsg_out header, the source address and the
 * IP_PKTINFO control message (the template in ur_arm).  Buffers get this much
 * on top of recv_buffer_size, so a datagram of recv_buffer_size bytes arrives
 * whole on this backend as on epoll, and "truncated" means the same on both. */
#define RECVMSG_HEAD                                                                 \
    (sizeof(struct io_uring_recvmsg_out) + sizeof(struct sockaddr_storage) +         \
     CMSG_SPACE(sizeof(struct in_pktinfo)))

/* user_data: the op pointer; small integers are internal tags. */
#define TAG_CANCEL ((uint64_t)2)
#define TAG_DGRAM ((uint64_t)3) /* a failed io_send_datagram (successes post nothing) */

static struct io_uring_sqe *get_sqe(struct io_loop *loop)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&loop->u.ring);
    while (!sqe) { /* SQ full: push what we have and try again */
        int rc = io_uring_submit(&loop->u.ring);
        loop->stats.submits++;
        if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
            return NULL;
        sqe = io_uring_get_sqe(&loop->u.ring);
    }
    return sqe;
}

static char *buf_addr(struct io_loop *loop, unsigned bid)
{
    return loop->u.bufs + (size_t)bid * loop->u.buf_size;
}

static void buf_return(struct io_loop *loop, unsigned bid)
{
    io_uring_buf_ring_add(loop->u.br, buf_addr(loop, bid), loop->u.buf_size, (unsigned short)bid,
                          io_uring_buf_ring_mask(loop->u.nbufs), 0);
    io_uring_buf_ring_advance(loop->u.br, 1);
}

static int arm_wake(struct io_loop *loop)
{
    struct io_uring_sqe *sqe = get_sqe(loop);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_read(sqe, loop->wake_fd, &loop->wake_buf, sizeof(loop->wake_buf), 0);
    io_uring_sqe_set_data64(sqe, IO_WAKE_TAG);
    return 0;
}

static int ur_arm(struct io_loop *loop, struct io_op *op)
{
    struct io_uring_sqe *sqe = get_sqe(loop);
    if (!sqe)
        return -EBUSY;
    switch (op->kind) {
    case IO_OP_ACCEPT:
        io_uring_prep_multishot_accept(sqe, op->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        break;
    case IO_OP_RECV:
        io_uring_prep_recv_multishot(sqe, op->fd, NULL, 0, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = BGID;
        break;
    case IO_OP_RECVMSG:
        /* The template tells the kernel how much room to leave for the
         * source address and the IP_PKTINFO control message in each buffer. */
        memset(&op->msg, 0, sizeof(op->msg));
        op->msg.msg_namelen = sizeof(struct sockaddr_storage);
        op->msg.msg_controllen = CMSG_SPACE(sizeof(struct in_pktinfo));
        io_uring_prep_recvmsg_multishot(sqe, op->fd, &op->msg, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = BGID;
        break;
    default:
        return -EINVAL;
    }
    io_uring_sqe_set_data(sqe, op);
    return 0;
}

static int ur_send(struct io_loop *loop, struct io_op *op)
{
    struct io_uring_sqe *sqe = get_sqe(loop);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_sendmsg(sqe, op->fd, &op->msg, (unsigned)op->flags);
    io_uring_sqe_set_data(sqe, op);
    return 0;
}

static int ur_wait_writable(struct io_loop *loop, struct io_op *op)
{
    struct io_uring_sqe *sqe = get_sqe(loop);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_poll_add(sqe, op->fd, POLLOUT);
    io_uring_sqe_set_data(sqe, op);
    op->state = 1; /* polling for writability */
    return 0;
}

/* The slots of queued datagrams can be reused once the kernel has consumed
 * every SQE (each one's send ran during that submission: MSG_DONTWAIT). */
static void dgram_reclaim(struct io_loop *loop)
{
    if (loop->u.dgram_used && io_uring_sq_ready(&loop->u.ring) == 0)
        loop->u.dgram_used = 0;
}

static void ur_flush(struct io_loop *loop)
{
    if (!loop->u.dgram_used)
        return;
    loop->stats.submits++;
    io_uring_submit(&loop->u.ring);
    dgram_reclaim(loop);
}

static int ur_send_dgram(struct io_loop *loop, int fd, const struct sockaddr_in *to, const void *head,
                         size_t head_len, const void *body, size_t body_len)
{
    if (loop->u.dgram_used == loop->cfg.ring_entries)
        ur_flush(loop);
    struct io_uring_sqe *sqe = loop->u.dgram_used < loop->cfg.ring_entries ? get_sqe(loop) : NULL;
    if (!sqe) /* no slot (the ring would not take the last batch) or no SQE: send it now */
        return io_sendmsg_dgram_now(fd, to, head, head_len, body, body_len);
    struct io_dgram_slot *d = &loop->u.dgram[loop->u.dgram_used++];
    memcpy(d->head, head, head_len);
    d->to = *to;
    d->iov[0] = (struct iovec){d->head, head_len};
    d->iov[1] = (struct iovec){(void *)body, body_len};
    d->msg = (struct msghdr){.msg_name = &d->to, .msg_namelen = sizeof(d->to), .msg_iov = d->iov,
                             .msg_iovlen = body_len ? 2 : 1};
    io_uring_prep_sendmsg(sqe, fd, &d->msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    io_uring_sqe_set_data64(sqe, TAG_DGRAM);
    loop->stats.dgrams_queued++;
    return 0;
}

static void ur_cancel(struct io_loop *loop, struct io_op *op)
{
    struct io_uring_sqe *sqe = get_sqe(loop);
    if (!sqe)
        return;
    io_uring_prep_cancel(sqe, op, 0);
    io_uring_sqe_set_data64(sqe, TAG_CANCEL);
}

static void on_recvmsg(struct io_loop *loop, struct io_op *op, struct io_uring_cqe *cqe, struct io_completion *c)
{
    unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
    char *buf = buf_addr(loop, bid);
    struct io_uring_recvmsg_out *o = io_uring_recvmsg_validate(buf, cqe->res, &op->msg);
    if (!o) {
        c->res = -EBADMSG;
        c->buf = NULL;
        return;
    }
    c->buf = io_uring_recvmsg_payload(o, &op->msg);
    c->len = io_uring_recvmsg_payload_length(o, cqe->res, &op->msg);
    c->res = (int)c->len;
    c->peer = io_uring_recvmsg_name(o);
    c->peer_len = o->namelen;
    c->truncated = (o->flags & MSG_TRUNC) != 0;
    if (c->truncated)
        loop->stats.truncated++;
    for (struct cmsghdr *cm = io_uring_recvmsg_cmsg_firsthdr(o, &op->msg); cm;
         cm = io_uring_recvmsg_cmsg_nexthdr(o, &op->msg, cm)) {
        if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO) {
            struct in_pktinfo pi;
            memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
            c->ifindex = pi.ipi_ifindex;
            c->local = pi.ipi_spec_dst;
        }
    }
}

static void handle_cqe(struct io_loop *loop, struct io_uring_cqe *cqe)
{
    uint64_t ud = io_uring_cqe_get_data64(cqe);
    if (ud == TAG_CANCEL)
        return;
    if (ud == TAG_DGRAM) {
        loop->stats.dgram_errors++;
        return;
    }
    if (ud == IO_WAKE_TAG) {
        arm_wake(loop);
        return;
    }
    struct io_op *op = io_uring_cqe_get_data(cqe);
    bool more = (cqe->flags & IORING_CQE_F_MORE) != 0;
    struct io_completion c = {.res = cqe->res, .more = more};
    bool has_buf = (cqe->flags & IORING_CQE_F_BUFFER) != 0;
    unsigned bid = has_buf ? cqe->flags >> IORING_CQE_BUFFER_SHIFT : 0;

    switch (op->kind) {
    case IO_OP_SENDFILE:
        if (op->state == 1) { /* writable (or error): try again from the worker */
            op->state = 0;
            int n = cqe->res < 0 ? cqe->res : io_try_sendfile(op);
            if (n == -EAGAIN && !op->cancel_requested) {
                ur_wait_writable(loop, op);
                return;
            }
            io_ready(loop, op, n);
            return;
        }
        break;
    case IO_OP_RECV:
        if (has_buf) {
            c.buf = buf_addr(loop, bid);
            c.len = cqe->res > 0 ? (size_t)cqe->res : 0;
        }
        break;
    case IO_OP_RECVMSG:
        if (has_buf && cqe->res >= 0)
            on_recvmsg(loop, op, cqe, &c);
        break;
    default:
        break;
    }

    /* A multishot op the kernel ended without error (ENOBUFS, overflow,
     * internal limits, an ICMP error on a UDP socket) is re-armed
     * transparently: the caller sees one stream. */
    if (!more && (op->kind == IO_OP_RECV || op->kind == IO_OP_RECVMSG || op->kind == IO_OP_ACCEPT) &&
        !op->cancel_requested) {
        bool rearm = false, silent = false;
        if (cqe->res == -ENOBUFS) {
            loop->stats.enobufs++;
            rearm = silent = true;
        } else if (op->kind == IO_OP_RECVMSG && io_icmp_error(cqe->res)) {
            rearm = silent = true;
        } else if (op->kind == IO_OP_RECVMSG && cqe->res >= 0) {
            rearm = true;
        } else if (op->kind == IO_OP_RECV && cqe->res > 0) {
            rearm = true;
        } else if (op->kind == IO_OP_ACCEPT && cqe->res >= 0) {
            rearm = true;
        }
        if (rearm && ur_arm(loop, op) == 0) {
            if (silent)
                return; /* nothing to deliver */
            c.more = true;
        }
    }
    if (op->kind == IO_OP_RECVMSG && c.res == -EBADMSG) {
        if (has_buf)
            buf_return(loop, bid);
        has_buf = false; /* returned once: twice would hand it to two receives */
        if (c.more)
            return; /* drop a datagram the kernel could not fit */
    }
    if (op->kind == IO_OP_ACCEPT && c.res < 0 && c.more)
        return;
    io_deliver(op, &c);
    if (has_buf)
        buf_return(loop, bid);
}

static int ur_wait(struct io_loop *loop, int timeout_ms)
{
    struct io_uring_cqe *cqe;
    struct __kernel_timespec ts = {.tv_sec = timeout_ms / 1000, .tv_nsec = (long long)(timeout_ms % 1000) * 1000000};
    loop->stats.submits++;
    int rc = io_uring_submit_and_wait_timeout(&loop->u.ring, &cqe, 1, &ts, NULL);
    if (rc < 0 && rc != -ETIME && rc != -EINTR)
        return rc;
    dgram_reclaim(loop);
    loop->now_ms = io_mono_ms(); /* callbacks below may arm timers */
    /* Reap in batches; handlers may queue new SQEs, which go with the next enter. */
    struct io_uring_cqe *cqes[256];
    unsigned n;
    int rounds = 0;
    while ((n = io_uring_peek_batch_cqe(&loop->u.ring, cqes, 256)) > 0 && rounds++ < 8) {
        for (unsigned i = 0; i < n; i++)
            handle_cqe(loop, cqes[i]);
        io_uring_cq_advance(&loop->u.ring, n);
    }
    return 0;
}

static void ur_destroy(struct io_loop *loop)
{
    io_uring_queue_exit(&loop->u.ring);
    if (loop->u.br)
        munmap(loop->u.br, loop->u.br_bytes);
    free(loop->u.bufs);
    free(loop->u.dgram);
}

static const struct io_backend_ops uring_ops = {
    .arm = ur_arm,
    .send = ur_send,
    .wait_writable = ur_wait_writable,
    .cancel = ur_cancel,
    .send_dgram = ur_send_dgram,
    .flush = ur_flush,
    .wait = ur_wait,
    .destroy = ur_destroy,
};

int io_uring_backend_init(struct io_loop *loop, char *why, size_t why_len)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    /* SINGLE_ISSUER: only this worker submits to its ring.
     * DEFER_TASKRUN: completion work runs when we enter to wait, not as
     *   interrupts to the running worker (needs SINGLE_ISSUER, kernel 6.1).
     * CQSIZE: 4x the SQ, since multishot ops post many CQEs per SQE.
     * CLAMP: a too-large --ring-entries is clamped, not refused.
     * SUBMIT_ALL: one bad SQE does not stop the rest of the batch. */
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE |
              IORING_SETUP_CLAMP | IORING_SETUP_SUBMIT_ALL;
    p.cq_entries = loop->cfg.ring_entries * 4;
    int rc = io_uring_queue_init_params(loop->cfg.ring_entries, &loop->u.ring, &p);
    if (rc < 0) {
        /* older kernels: try without the 6.1 flags */
        memset(&p, 0, sizeof(p));
        p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
        p.cq_entries = loop->cfg.ring_entries * 4;
        rc = io_uring_queue_init_params(loop->cfg.ring_entries, &loop->u.ring, &p);
    }
    if (rc < 0) {
        snprintf(why, why_len, "io_uring_setup: %s", strerror(-rc));
        return rc;
    }
    loop->u.nbufs = loop->cfg.recv_buffers;
    /* not rounded up: the payload room of a recvmsg buffer is exactly
     * recv_buffer_size, or MSG_TRUNC would mean something else here */
    loop->u.buf_size = (unsigned)(loop->cfg.recv_buffer_size + RECVMSG_HEAD);
    loop->u.br_bytes = loop->u.nbufs * sizeof(struct io_uring_buf);
    loop->u.br = mmap(NULL, loop->u.br_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (loop->u.br == MAP_FAILED) {
        loop->u.br = NULL;
        io_uring_queue_exit(&loop->u.ring);
        snprintf(why, why_len, "mmap buffer ring: %s", strerror(errno));
        return -ENOMEM;
    }
    struct io_uring_buf_reg reg = {.ring_addr = (uint64_t)(uintptr_t)loop->u.br,
                                   .ring_entries = loop->u.nbufs, .bgid = BGID};
    rc = io_uring_register_buf_ring(&loop->u.ring, &reg, 0);
    if (rc < 0) {
        snprintf(why, why_len, "provided buffer rings: %s", strerror(-rc));
        munmap(loop->u.br, loop->u.br_bytes);
        loop->u.br = NULL;
        io_uring_queue_exit(&loop->u.ring);
        return rc;
    }
    /* aligned_alloc wants a size that is a multiple of the alignment */
    size_t bytes = ((size_t)loop->u.nbufs * loop->u.buf_size + 4095) & ~(size_t)4095;
    loop->u.bufs = aligned_alloc(4096, bytes);
    if (!loop->u.bufs) {
        ur_destroy(loop);
        snprintf(why, why_len, "receive buffers (%zu bytes): out of memory", bytes);
        return -ENOMEM;
    }
    loop->u.dgram = calloc(loop->cfg.ring_entries, sizeof(*loop->u.dgram));
    if (!loop->u.dgram) {
        ur_destroy(loop);
        snprintf(why, why_len, "datagram slots: out of memory");
        return -ENOMEM;
    }
    io_uring_buf_ring_init(loop->u.br);
    for (unsigned i = 0; i < loop->u.nbufs; i++)
        io_uring_buf_ring_add(loop->u.br, buf_addr(loop, i), loop->u.buf_size, (unsigned short)i,
                              io_uring_buf_ring_mask(loop->u.nbufs), (int)i);
    io_uring_buf_ring_advance(loop->u.br, (int)loop->u.nbufs);
    loop->backend = IO_BACKEND_URING;
    loop->ops = &uring_ops;
    arm_wake(loop);
    struct utsname un;
    uname(&un);
    snprintf(why, why_len, "io_uring on kernel %s (%u entries, %u x %u B receive buffers)", un.release,
             p.sq_entries, loop->u.nbufs, loop->cfg.recv_buffer_size);
    return 0;
}
