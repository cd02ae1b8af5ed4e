/* bench/load/ev.c — epoll, a binary timer heap, and (optionally) an io_uring
 * for datagram sockets; see ev.h. */
#include "bench/load/ev.h"

#include <errno.h>
#include <liburing.h>
#include <linux/errqueue.h>
#include <netinet/udp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define EV_BATCH 256
#define RX_BATCH 64
#define SEND_MAX 1024
/* io_uring user_data: object pointers (8-byte aligned) with the low bits as tags */
#define UD_CANCEL ((uint64_t)2)
#define UD_EPOLL ((uint64_t)3)
#define UD_SEND_TAG ((uint64_t)1)

struct send_slot {
    struct send_slot *next;
    struct ev_dgram *d;
    struct msghdr mh;
    struct iovec iov;
    struct sockaddr_in to;
    uint8_t buf[SEND_MAX];
};

static struct {
    int epfd;
    uint64_t now;
    struct ev_timer **heap; /* 1-based */
    uint32_t n, cap;
    struct epoll_event evs[EV_BATCH];
    int nevs, cur; /* events of the turn being dispatched */
    bool in_timers; /* a timer armed while timers run waits for the next turn */
    struct ev_stats st;
    struct ev_dgram *final; /* dgrams whose closed() runs at the end of the turn */
    /* epoll backend for datagrams */
    uint8_t *pool;
    size_t payload_max;
    /* io_uring */
    bool uring;
    struct io_uring ring;
    struct io_uring_buf_ring *br;
    uint8_t *bufs;
    unsigned nbufs, buf_size, returned;
    struct msghdr tmpl; /* what each multishot recvmsg asks for: the source address */
    bool poll_armed, epoll_ready, epoll_more;
    struct send_slot *free_slots;
    uint64_t enobufs, gro_runs;
} E = {.epfd = -1};

static uint64_t clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * EV_S + (uint64_t)ts.tv_nsec;
}

uint64_t ev_now(void) { return E.now; }
uint64_t ev_refresh(void) { return E.now = clock_ns(); }

int ev_init(void)
{
    E.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (E.epfd < 0)
        return EV_ESYS;
    E.cap = 1024;
    E.heap = calloc(E.cap + 1, sizeof(*E.heap));
    E.payload_max = 65536;
    E.pool = malloc((size_t)RX_BATCH * E.payload_max);
    if (!E.heap || !E.pool) {
        close(E.epfd);
        E.epfd = -1;
        errno = ENOMEM;
        return EV_ESYS;
    }
    ev_refresh();
    return EV_OK;
}

void ev_fini(void)
{
    if (E.uring) {
        io_uring_queue_exit(&E.ring);
        munmap(E.bufs, (size_t)E.nbufs * E.buf_size);
        free(E.br);
        E.uring = false;
    }
    while (E.free_slots) {
        struct send_slot *s = E.free_slots->next;
        free(E.free_slots);
        E.free_slots = s;
    }
    if (E.epfd >= 0)
        close(E.epfd);
    E.epfd = -1;
    free(E.heap);
    free(E.pool);
    E.heap = NULL;
    E.pool = NULL;
    E.n = E.cap = 0;
}

int ev_add(struct ev_handler *h, int fd, uint32_t events)
{
    struct epoll_event e = {.events = events, .data.ptr = h};
    h->fd = fd;
    h->events = events;
    return epoll_ctl(E.epfd, EPOLL_CTL_ADD, fd, &e) == 0 ? EV_OK : EV_ESYS;
}

int ev_mod(struct ev_handler *h, uint32_t events)
{
    if (h->fd < 0 || h->events == events)
        return EV_OK;
    struct epoll_event e = {.events = events, .data.ptr = h};
    h->events = events;
    return epoll_ctl(E.epfd, EPOLL_CTL_MOD, h->fd, &e) == 0 ? EV_OK : EV_ESYS;
}

void ev_close(struct ev_handler *h)
{
    if (h->fd < 0)
        return;
    close(h->fd); /* also removes it from the epoll set */
    h->fd = -1;
    /* the owner may free h right after this: forget its pending events */
    for (int i = E.cur; i < E.nevs; i++)
        if (E.evs[i].data.ptr == h)
            E.evs[i].data.ptr = NULL;
}

/* ---- timer heap (min by due_ns) ---- */

static void heap_set(uint32_t i, struct ev_timer *t)
{
    E.heap[i] = t;
    t->heap_index = i;
}

static void sift_up(uint32_t i)
{
    struct ev_timer *t = E.heap[i];
    while (i > 1 && E.heap[i / 2]->due_ns > t->due_ns) {
        heap_set(i, E.heap[i / 2]);
        i /= 2;
    }
    heap_set(i, t);
}

static void sift_down(uint32_t i)
{
    struct ev_timer *t = E.heap[i];
    for (;;) {
        uint32_t c = 2 * i;
        if (c > E.n)
            break;
        if (c + 1 <= E.n && E.heap[c + 1]->due_ns < E.heap[c]->due_ns)
            c++;
        if (E.heap[c]->due_ns >= t->due_ns)
            break;
        heap_set(i, E.heap[c]);
        i = c;
    }
    heap_set(i, t);
}

void ev_timer_cancel(struct ev_timer *t)
{
    uint32_t i = t->heap_index;
    if (!i)
        return;
    struct ev_timer *last = E.heap[E.n--];
    t->heap_index = 0;
    if (i <= E.n) {
        heap_set(i, last);
        sift_up(i);
        sift_down(last->heap_index);
    }
}

void ev_timer_arm_at(struct ev_timer *t, uint64_t due_ns)
{
    ev_timer_cancel(t);
    if (E.n == E.cap) {
        uint32_t ncap = E.cap * 2;
        struct ev_timer **nh = realloc(E.heap, (ncap + 1) * sizeof(*nh));
        if (!nh)
            abort(); /* a load generator without memory cannot report honestly */
        E.heap = nh;
        E.cap = ncap;
    }
    if (E.in_timers && due_ns <= E.now)
        due_ns = E.now + 1;
    t->due_ns = due_ns;
    E.n++;
    heap_set(E.n, t);
    sift_up(E.n);
}

void ev_timer_arm(struct ev_timer *t, uint64_t after_ns) { ev_timer_arm_at(t, E.now + after_ns); }

/* ---- datagram sockets ---- */

bool ev_uring_on(void) { return E.uring; }
uint64_t ev_dgram_enobufs(void) { return E.enobufs; }
uint64_t ev_dgram_gro_runs(void) { return E.gro_runs; }

static struct io_uring_sqe *get_sqe(void)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&E.ring);
    while (!sqe) { /* SQ full: push what we have */
        int rc = io_uring_submit(&E.ring);
        if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
            abort();
        sqe = io_uring_get_sqe(&E.ring);
    }
    return sqe;
}

int ev_uring_init(size_t payload_max, char *why, size_t whylen)
{
    struct io_uring_params p = {.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN, .cq_entries = 65536};
    int rc = io_uring_queue_init_params(4096, &E.ring, &p);
    if (rc < 0) {
        errno = -rc;
        snprintf(why, whylen, "io_uring_setup: %s", strerror(-rc));
        return EV_ESYS;
    }
    /* each buffer: the recvmsg header, the source address, room for one
     * control message (UDP_GRO), the datagram */
    size_t need = sizeof(struct io_uring_recvmsg_out) + sizeof(struct sockaddr_in) + CMSG_SPACE(sizeof(int)) + payload_max;
    E.buf_size = (unsigned)((need + 63) & ~(size_t)63);
    /* Populated now: a buffer the kernel first writes into would cost a page
     * fault in the middle of a transfer (thousands of them on a fresh ring).
     * How many: every datagram in flight can be waiting in a CQE when this
     * process is not scheduled — 500 machines at windowsize 16 are 8000 DATA
     * packets, and 4096 buffers ran out ~58,000 times in such a storm on a
     * loaded host (each time a re-armed receive).  So 16384 (the ring's limit
     * is 32768) while they fit in 32 MiB (24 MiB at blksize 1468), never fewer
     * than 4096 (with UDP_GRO a buffer holds a window, and a window in flight
     * per machine needs one: 4096 of 23.6 KiB at blksize 1468 windowsize 16,
     * 94 MiB). */
    E.nbufs = 16384;
    while (E.nbufs > 4096 && (size_t)E.nbufs * E.buf_size > (32u << 20))
        E.nbufs /= 2;
    E.bufs = mmap(NULL, (size_t)E.nbufs * E.buf_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
                  -1, 0);
    if (E.bufs == MAP_FAILED)
        E.bufs = NULL;
    /* the ring of buffer descriptors: page-aligned memory registered as group 0 */
    int err = ENOMEM;
    size_t rl = (size_t)E.nbufs * sizeof(struct io_uring_buf);
    E.br = NULL;
    if (E.bufs && posix_memalign((void **)&E.br, 4096, rl) == 0) {
        memset(E.br, 0, rl);
        struct io_uring_buf_reg reg = {.ring_addr = (uint64_t)(uintptr_t)E.br, .ring_entries = E.nbufs, .bgid = 0};
        err = -io_uring_register_buf_ring(&E.ring, &reg, 0);
    }
    if (err) {
        io_uring_queue_exit(&E.ring);
        free(E.br);
        if (E.bufs)
            munmap(E.bufs, (size_t)E.nbufs * E.buf_size);
        E.br = NULL;
        E.bufs = NULL;
        errno = err;
        snprintf(why, whylen, "provided buffer ring: %s", strerror(err));
        return EV_ESYS;
    }
    io_uring_buf_ring_init(E.br);
    for (unsigned i = 0; i < E.nbufs; i++)
        io_uring_buf_ring_add(E.br, E.bufs + (size_t)i * E.buf_size, E.buf_size, (unsigned short)i,
                              io_uring_buf_ring_mask(E.nbufs), (int)i);
    io_uring_buf_ring_advance(E.br, (int)E.nbufs);
    memset(&E.tmpl, 0, sizeof(E.tmpl));
    E.tmpl.msg_namelen = sizeof(struct sockaddr_in);
    E.tmpl.msg_controllen = CMSG_SPACE(sizeof(int)); /* UDP_GRO's segment size */
    E.uring = true;
    return EV_OK;
}

static void dgram_arm(struct ev_dgram *d)
{
    struct io_uring_sqe *sqe = get_sqe();
    io_uring_prep_recvmsg_multishot(sqe, d->h.fd, &E.tmpl, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = 0;
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)d);
    d->armed = true;
}

static void dgram_queue_final(struct ev_dgram *d)
{
    if (d->final_queued || d->armed || d->sends)
        return;
    d->final_queued = true;
    d->next_final = E.final;
    E.final = d;
}

/* A control message's UDP_GRO segment size; 0: not one. */
static int gro_cmsg(const struct cmsghdr *c)
{
    int v = 0;
    if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO && c->cmsg_len >= CMSG_LEN(sizeof(int)))
        memcpy(&v, CMSG_DATA(c), sizeof(v));
    return v > 0 ? v : 0;
}

/* The UDP_GRO segment size in a received message's control data; 0: none. */
static int gro_size(struct msghdr *m)
{
    int v = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c && !v; c = CMSG_NXTHDR(m, c))
        v = gro_cmsg(c);
    return v;
}

/* Hands the owner one datagram, or each datagram of a coalesced run (gso:
 * its segment size): buf holds len of the run's full bytes. */
static void deliver(struct ev_dgram *d, const struct sockaddr_in *from, const uint8_t *buf, size_t len, size_t full,
                    int gso)
{
    if (gso <= 0 || full <= (size_t)gso) {
        d->fn(d, from, buf, len, full);
        return;
    }
    E.gro_runs++;
    for (size_t off = 0; off < full && off < len && !d->closing; off += (size_t)gso) {
        size_t seg = full - off < (size_t)gso ? full - off : (size_t)gso;
        size_t have = len - off < seg ? len - off : seg;
        d->fn(d, from, buf + off, have, seg);
    }
}

static void dgram_errqueue(struct ev_dgram *d)
{
    for (int i = 0; i < 8 && !d->closing; i++) {
        char cbuf[512];
        uint8_t dummy[64];
        struct iovec iov = {dummy, sizeof(dummy)};
        struct sockaddr_in from;
        struct msghdr m = {.msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov, .msg_iovlen = 1,
                           .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
        if (recvmsg(d->h.fd, &m, MSG_ERRQUEUE | MSG_DONTWAIT) < 0)
            return;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
            if (c->cmsg_level != SOL_IP || c->cmsg_type != IP_RECVERR)
                continue;
            struct sock_extended_err ee;
            memcpy(&ee, CMSG_DATA(c), sizeof(ee));
            if (d->err && ee.ee_errno)
                d->err(d, (int)ee.ee_errno);
        }
    }
}

/* epoll backend: a batch of datagrams per readiness. */
static void dgram_on_io(struct ev_handler *h, uint32_t events)
{
    struct ev_dgram *d = (struct ev_dgram *)((char *)h - offsetof(struct ev_dgram, h));
    if (events & EPOLLERR)
        dgram_errqueue(d);
    if (!(events & EPOLLIN) || d->closing)
        return;
    struct mmsghdr mm[RX_BATCH];
    struct iovec iov[RX_BATCH];
    struct sockaddr_in from[RX_BATCH];
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl[RX_BATCH];
    for (int round = 0; round < 4; round++) {
        /* a coalesced run is read whole: its later datagrams' headers count */
        size_t cap = d->want_payload || d->gro ? E.payload_max : 4;
        for (unsigned i = 0; i < RX_BATCH; i++) {
            iov[i].iov_base = E.pool + i * cap;
            iov[i].iov_len = cap;
            mm[i].msg_hdr = (struct msghdr){.msg_name = &from[i], .msg_namelen = sizeof(from[i]),
                                            .msg_iov = &iov[i], .msg_iovlen = 1,
                                            .msg_control = d->gro ? ctl[i].buf : NULL,
                                            .msg_controllen = d->gro ? sizeof(ctl[i].buf) : 0};
        }
        int got = recvmmsg(d->h.fd, mm, RX_BATCH, MSG_DONTWAIT | MSG_TRUNC, NULL);
        if (got <= 0) {
            if (got < 0 && errno != EAGAIN && errno != EINTR && d->err)
                d->err(d, errno);
            return;
        }
        for (int i = 0; i < got; i++) {
            size_t full = mm[i].msg_len;
            deliver(d, &from[i], iov[i].iov_base, full < cap ? full : cap, full, d->gro ? gro_size(&mm[i].msg_hdr) : 0);
            if (d->closing)
                return;
            if (cap == 4 && d->want_payload)
                break; /* the owner now wants payloads: read the rest with room for them */
        }
        if (got < RX_BATCH && !(cap == 4 && d->want_payload))
            return;
    }
}

int ev_dgram_open(struct ev_dgram *d, int fd)
{
    d->armed = d->closing = d->final_queued = false;
    d->sends = 0;
    d->h.fd = fd;
    int one = 1;
    if (d->gro && setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof(one)) != 0)
        d->gro = false;
    if (E.uring) {
        dgram_arm(d);
        return EV_OK;
    }
    d->h.fn = dgram_on_io;
    return ev_add(&d->h, fd, EPOLLIN);
}

void ev_dgram_sendto(struct ev_dgram *d, const struct sockaddr_in *to, const void *buf, size_t len)
{
    if (d->closing || d->h.fd < 0 || len > SEND_MAX)
        return;
    if (!E.uring) {
        (void)sendto(d->h.fd, buf, len, 0, (const struct sockaddr *)to, sizeof(*to));
        return;
    }
    struct send_slot *s = E.free_slots;
    if (s)
        E.free_slots = s->next;
    else if (!(s = malloc(sizeof(*s))))
        return; /* a lost datagram */
    s->d = d;
    s->to = *to;
    memcpy(s->buf, buf, len);
    s->iov = (struct iovec){s->buf, len};
    s->mh = (struct msghdr){.msg_name = &s->to, .msg_namelen = sizeof(s->to), .msg_iov = &s->iov, .msg_iovlen = 1};
    struct io_uring_sqe *sqe = get_sqe();
    io_uring_prep_sendmsg(sqe, d->h.fd, &s->mh, 0);
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)s | UD_SEND_TAG);
    d->sends++;
}

void ev_dgram_close(struct ev_dgram *d)
{
    if (d->closing)
        return;
    d->closing = true;
    if (E.uring) {
        if (d->armed) {
            struct io_uring_sqe *sqe = get_sqe();
            io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)d, 0);
            io_uring_sqe_set_data64(sqe, UD_CANCEL);
        }
        dgram_queue_final(d);
        return;
    }
    ev_close(&d->h);
    dgram_queue_final(d);
}

static void run_finals(void)
{
    while (E.final) {
        struct ev_dgram *d = E.final;
        E.final = d->next_final;
        if (d->h.fd >= 0) {
            close(d->h.fd);
            d->h.fd = -1;
        }
        if (d->closed)
            d->closed(d);
    }
}

static void buf_return(unsigned bid)
{
    io_uring_buf_ring_add(E.br, E.bufs + (size_t)bid * E.buf_size, E.buf_size, (unsigned short)bid,
                          io_uring_buf_ring_mask(E.nbufs), (int)E.returned++);
}

static void on_recv_cqe(struct ev_dgram *d, const struct io_uring_cqe *cqe)
{
    if (cqe->flags & IORING_CQE_F_BUFFER) {
        unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        if (cqe->res > 0 && !d->closing) {
            uint8_t *b = E.bufs + (size_t)bid * E.buf_size;
            struct io_uring_recvmsg_out *o = io_uring_recvmsg_validate(b, cqe->res, &E.tmpl);
            if (o && o->namelen >= sizeof(struct sockaddr_in)) {
                struct sockaddr_in from;
                memcpy(&from, io_uring_recvmsg_name(o), sizeof(from));
                const uint8_t *pl = io_uring_recvmsg_payload(o, &E.tmpl);
                size_t len = io_uring_recvmsg_payload_length(o, cqe->res, &E.tmpl);
                int gso = 0;
                for (struct cmsghdr *c = d->gro ? io_uring_recvmsg_cmsg_firsthdr(o, &E.tmpl) : NULL; c && !gso;
                     c = io_uring_recvmsg_cmsg_nexthdr(o, &E.tmpl, c))
                    gso = gro_cmsg(c);
                deliver(d, &from, pl, len, o->payloadlen, gso);
            }
        }
        buf_return(bid);
    }
    if (cqe->flags & IORING_CQE_F_MORE)
        return;
    d->armed = false;
    if (d->closing) {
        dgram_queue_final(d);
        return;
    }
    if (cqe->res < 0 && cqe->res != -ENOBUFS && d->err) {
        d->err(d, -cqe->res);
        if (d->closing) {
            dgram_queue_final(d);
            return;
        }
    }
    if (cqe->res == -ENOBUFS)
        E.enobufs++;
    dgram_arm(d); /* ran out of buffers, or an error was reported: go on */
}

static void process_cqes(void)
{
    struct io_uring_cqe *cqe;
    unsigned head, count = 0;
    E.returned = 0;
    io_uring_for_each_cqe(&E.ring, head, cqe)
    {
        count++;
        uint64_t ud = cqe->user_data;
        if (ud == UD_CANCEL)
            continue;
        if (ud == UD_EPOLL) {
            E.epoll_ready = true;
            if (!(cqe->flags & IORING_CQE_F_MORE))
                E.poll_armed = false;
            continue;
        }
        if (ud & UD_SEND_TAG) {
            struct send_slot *s = (struct send_slot *)(uintptr_t)(ud & ~UD_SEND_TAG);
            struct ev_dgram *d = s->d;
            s->next = E.free_slots;
            E.free_slots = s;
            d->sends--;
            if (d->closing)
                dgram_queue_final(d);
            continue;
        }
        E.st.events++;
        on_recv_cqe((struct ev_dgram *)(uintptr_t)ud, cqe);
    }
    io_uring_cq_advance(&E.ring, count);
    if (E.returned)
        io_uring_buf_ring_advance(E.br, (int)E.returned);
}

/* ---- the loop ---- */

static void dispatch_epoll(int n)
{
    E.nevs = n;
    for (E.cur = 0; E.cur < E.nevs;) {
        struct epoll_event *e = &E.evs[E.cur++];
        struct ev_handler *h = e->data.ptr;
        if (!h)
            continue;
        E.st.events++;
        h->fn(h, e->events);
    }
    E.nevs = E.cur = 0;
}

static void run_timers(void)
{
    uint64_t now = ev_now();
    E.in_timers = true;
    while (E.n && E.heap[1]->due_ns <= now) {
        struct ev_timer *t = E.heap[1];
        ev_timer_cancel(t);
        E.st.timers++;
        t->fn(t);
    }
    E.in_timers = false;
}

static uint64_t wait_ns(uint64_t max_wait_ns)
{
    uint64_t wait = max_wait_ns;
    if (E.final)
        return 0;
    if (E.n) {
        uint64_t due = E.heap[1]->due_ns;
        uint64_t left = due > E.now ? due - E.now : 0;
        if (left < wait)
            wait = left;
    }
    return wait;
}

static int run_once_uring(uint64_t max_wait_ns)
{
    if (!E.poll_armed) { /* the epoll set, watched from the ring */
        struct io_uring_sqe *sqe = get_sqe();
        io_uring_prep_poll_multishot(sqe, E.epfd, POLLIN);
        io_uring_sqe_set_data64(sqe, UD_EPOLL);
        E.poll_armed = true;
    }
    uint64_t wait = E.epoll_more ? 0 : wait_ns(max_wait_ns);
    struct __kernel_timespec ts = {.tv_sec = (long long)(wait / EV_S), .tv_nsec = (long long)(wait % EV_S)};
    struct io_uring_cqe *cqe;
    int rc = io_uring_submit_and_wait_timeout(&E.ring, &cqe, 1, &ts, NULL);
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY && rc != -EAGAIN) {
        errno = -rc;
        return EV_ESYS;
    }
    ev_refresh();
    E.st.turns++;
    process_cqes();
    /* epoll is level-triggered but the poll on it fires on new readiness only:
     * look again while the last look found something */
    if (E.epoll_ready || E.epoll_more) {
        E.epoll_ready = false;
        int n = epoll_wait(E.epfd, E.evs, EV_BATCH, 0);
        if (n < 0 && errno != EINTR)
            return EV_ESYS;
        E.epoll_more = n > 0;
        if (n > 0)
            dispatch_epoll(n);
    }
    run_timers();
    run_finals();
    return EV_OK;
}

int ev_run_once(uint64_t max_wait_ns)
{
    if (E.uring)
        return run_once_uring(max_wait_ns);
    uint64_t wait = wait_ns(max_wait_ns);
    struct timespec ts = {.tv_sec = (time_t)(wait / EV_S), .tv_nsec = (long)(wait % EV_S)};
    int n = epoll_pwait2(E.epfd, E.evs, EV_BATCH, &ts, NULL);
    if (n < 0 && errno == ENOSYS) {
        int ms = (int)((wait + EV_MS - 1) / EV_MS);
        n = epoll_wait(E.epfd, E.evs, EV_BATCH, ms);
    }
    if (n < 0) {
        if (errno == EINTR)
            n = 0;
        else
            return EV_ESYS;
    }
    ev_refresh();
    E.st.turns++;
    dispatch_epoll(n);
    run_timers();
    run_finals();
    return EV_OK;
}

void ev_get_stats(struct ev_stats *out) { *out = E.st; }

uint64_t ev_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    return (uint64_t)rl.rlim_cur;
}
