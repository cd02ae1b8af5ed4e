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
#include <unistd.h>

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
#define TAG_CLOSE ((uint64_t)5) /* a failed io_close (successes post nothing) */
#define TAG_ACCEPT ((uint64_t)1) /* low bit of an accept slot's address (IO_WAKE_TAG is exactly 1) */

/* Accept: the kernel's multishot accept cannot say who connected (one address
 * buffer for many connections), and a getpeername per connection is a system
 * call (about 1 us here, 4% of the server's CPU in a connection storm).  So an
 * accept op keeps ACCEPT_SLOTS single-shot accepts in flight, each with its own
 * address; the kernel wakes one of them per connection (exclusive wait), and
 * a turn still takes up to ACCEPT_SLOTS connections.  The op ends (more =
 * false) when every slot has: after an error (the first one is delivered) or
 * io_cancel (-ECANCELED). */
#define ACCEPT_SLOTS 8
struct io_accept_slot {
    struct io_op *op;
    struct sockaddr_storage addr;
    socklen_t len;
    bool armed;
};
struct io_accept_slots {
    struct io_accept_slot s[ACCEPT_SLOTS];
    unsigned armed;
    int end_res; /* 0 while running; the result the op ends with */
    struct io_accept_slots *next, **pprev; /* the loop's list: freed with it if still in flight */
};

static void accept_slots_free(struct io_accept_slots *a)
{
    if (a->next)
        a->next->pprev = a->pprev;
    *a->pprev = a->next;
    free(a);
}

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

static int accept_slot_arm(struct io_loop *loop, struct io_accept_slot *sl)
{
    struct io_uring_sqe *sqe = get_sqe(loop);
    if (!sqe)
        return -EBUSY;
    sl->len = sizeof(sl->addr);
    io_uring_prep_accept(sqe, sl->op->fd, (struct sockaddr *)&sl->addr, &sl->len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)sl | TAG_ACCEPT);
    sl->armed = true;
    sl->op->acc->armed++;
    return 0;
}

static int accept_arm(struct io_loop *loop, struct io_op *op)
{
    if (!op->acc) {
        struct io_accept_slots *a = calloc(1, sizeof(*a));
        if (!a)
            return -ENOMEM;
        if ((a->next = loop->u.accepts))
            a->next->pprev = &a->next;
        a->pprev = &loop->u.accepts;
        loop->u.accepts = a;
        op->acc = a;
    }
    op->acc->end_res = 0;
    for (unsigned i = 0; i < ACCEPT_SLOTS; i++) {
        op->acc->s[i].op = op;
        int rc = accept_slot_arm(loop, &op->acc->s[i]);
        if (rc) {
            if (i == 0) {
                accept_slots_free(op->acc);
                op->acc = NULL;
                return rc;
            }
            break; /* fewer slots: still an accept */
        }
    }
    return 0;
}

/* Asks every slot still in flight to end (its CQE is -ECANCELED, or a
 * connection that was already accepted). */
static void accept_cancel(struct io_loop *loop, struct io_op *op)
{
    for (unsigned i = 0; i < ACCEPT_SLOTS; i++) {
        struct io_accept_slot *sl = &op->acc->s[i];
        struct io_uring_sqe *sqe;
        if (!sl->armed || !(sqe = get_sqe(loop)))
            continue;
        io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)sl | TAG_ACCEPT, 0);
        io_uring_sqe_set_data64(sqe, TAG_CANCEL);
        sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    }
}

/* Puts a slot back in flight unless its op is ending.  With no SQE for it and
 * no other slot left, the op ends -EBUSY (its owner queues it again). */
static bool accept_slot_again(struct io_loop *loop, struct io_accept_slot *sl)
{
    struct io_accept_slots *a = sl->op->acc;
    if (sl->op->cancel_requested || a->end_res)
        return false;
    if (accept_slot_arm(loop, sl) == 0)
        return true;
    if (a->armed == 0)
        a->end_res = -EBUSY;
    return false;
}

static void on_accept_slot(struct io_loop *loop, struct io_accept_slot *sl, int res)
{
    struct io_op *op = sl->op;
    struct io_accept_slots *a = op->acc;
    sl->armed = false;
    a->armed--;
    if (res >= 0) {
        /* the peer is copied out first: the slot's buffer is the kernel's again
         * once re-armed, and a submission from the callback could fill it */
        struct sockaddr_storage peer;
        memcpy(&peer, &sl->addr, sl->len < sizeof(peer) ? sl->len : sizeof(peer));
        struct io_completion c = {.res = res, .more = true, .peer = &peer, .peer_len = sl->len};
        accept_slot_again(loop, sl);
        io_deliver(op, &c); /* may cancel op (not re-arm it: it is still queued) */
    } else if (res == -ECONNABORTED || res == -EINTR || res == -EAGAIN) {
        if (accept_slot_again(loop, sl))
            return; /* a client that gave up before we took it: the slot waits again */
    } else if (!a->end_res) {
        a->end_res = op->cancel_requested ? -ECANCELED : res;
        if (!op->cancel_requested)
            accept_cancel(loop, op); /* EMFILE and the like end the op, as on epoll */
    }
    if (a->armed == 0 && (op->cancel_requested || a->end_res)) {
        struct io_completion c = {.res = a->end_res ? a->end_res : -ECANCELED, .more = false};
        accept_slots_free(a);
        op->acc = NULL;
        io_deliver(op, &c);
    }
}

static int ur_arm(struct io_loop *loop, struct io_op *op)
{
    if (op->kind == IO_OP_ACCEPT)
        return accept_arm(loop, op);
    struct io_uring_sqe *sqe = get_sqe(loop);
    if (!sqe)
        return -EBUSY;
    switch (op->kind) {
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

static void ur_close(struct io_loop *loop, int fd)
{
    struct io_uring_sqe *sqe = get_sqe(loop);
    if (!sqe) {
        close(fd);
        return;
    }
    io_uring_prep_close(sqe, fd);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    io_uring_sqe_set_data64(sqe, TAG_CLOSE);
}

static void ur_cancel(struct io_loop *loop, struct io_op *op)
{
    if (op->kind == IO_OP_ACCEPT) {
        if (op->acc)
            accept_cancel(loop, op);
        return;
    }
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
    if (ud == TAG_CLOSE) {
        loop->stats.close_errors++;
        return;
    }
    if (ud == IO_WAKE_TAG) {
        arm_wake(loop);
        return;
    }
    if (ud & TAG_ACCEPT) {
        on_accept_slot(loop, (struct io_accept_slot *)(uintptr_t)(ud & ~TAG_ACCEPT), cqe->res);
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
    if (!more && (op->kind == IO_OP_RECV || op->kind == IO_OP_RECVMSG) &&
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
    /* Closes the kernel has not taken (queued after the last enter, or handed
     * over by an enter that failed) would be dropped with the ring, and their
     * descriptors leak: close them here.  Nothing else queued is run. */
    struct io_uring_sq *sq = &loop->u.ring.sq;
    for (unsigned i = *sq->khead; i != sq->sqe_tail; i++) {
        const struct io_uring_sqe *sqe = &sq->sqes[i & sq->ring_mask];
        if (sqe->opcode == IORING_OP_CLOSE && sqe->user_data == TAG_CLOSE)
            close(sqe->fd);
    }
    io_uring_queue_exit(&loop->u.ring);
    if (loop->u.br)
        munmap(loop->u.br, loop->u.br_bytes);
    free(loop->u.bufs);
    free(loop->u.dgram);
    while (loop->u.accepts) /* accepts still in flight: their ops are their owners' */
        accept_slots_free(loop->u.accepts);
}

static const struct io_backend_ops uring_ops = {
    .arm = ur_arm,
    .send = ur_send,
    .wait_writable = ur_wait_writable,
    .cancel = ur_cancel,
    .send_dgram = ur_send_dgram,
    .flush = ur_flush,
    .close = ur_close,
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
