/* io/loop_internal.h — shared between io/loop.c and its two backends; not public. */
#ifndef BOOTSTORM_IO_LOOP_INTERNAL_H
#define BOOTSTORM_IO_LOOP_INTERNAL_H

#include "io/loop.h"
#include <errno.h>
#include <stdbool.h>
#include <liburing.h>
#include <stdatomic.h>

struct io_backend_ops {
    int (*arm)(struct io_loop *loop, struct io_op *op);      /* accept/recv/recvmsg */
    int (*send)(struct io_loop *loop, struct io_op *op);
    int (*wait_writable)(struct io_loop *loop, struct io_op *op); /* for sendfile */
    void (*cancel)(struct io_loop *loop, struct io_op *op);
    int (*send_dgram)(struct io_loop *loop, int fd, const struct sockaddr_in *to, const void *head, size_t head_len,
                      const void *body, size_t body_len);
    void (*flush)(struct io_loop *loop);
    void (*close)(struct io_loop *loop, int fd);
    int (*wait)(struct io_loop *loop, int timeout_ms);       /* reap + dispatch */
    void (*destroy)(struct io_loop *loop);
};

struct ep_fd {            /* epoll: who waits on a descriptor */
    struct io_op *rd, *wr;
    uint32_t events;
};

/* A datagram queued by io_send_datagram on io_uring: what its SQE points at,
 * alive until the submission that hands it to the kernel. */
struct io_dgram_slot {
    struct msghdr msg;
    struct iovec iov[2];
    struct sockaddr_in to;
    uint8_t head[IO_DGRAM_HEAD_MAX];
};

struct io_loop {
    enum io_backend backend;
    const struct io_backend_ops *ops;
    struct io_loop_config cfg;
    uint64_t now_ms;
    atomic_bool stop;
    int wake_fd;              /* eventfd */
    uint64_t wake_buf;
    void (*idle_fn)(void *);
    void *idle_arg;
    struct io_op *ready_head, *ready_tail; /* completions to deliver next turn */
    struct io_timer **heap;   /* 1-based min-heap of armed timers */
    uint32_t heap_len, heap_cap;
    struct io_loop_stats stats;
    char *scratch;            /* epoll: receive buffer */
    union {
        struct {
            struct io_uring ring;
            struct io_uring_buf_ring *br;
            size_t br_bytes;
            char *bufs;
            unsigned nbufs, buf_size, pending_returns;
            struct io_op wake_op;
            bool starved; /* ENOBUFS seen: re-arm ops once buffers return */
            struct io_op *starved_head;
            struct io_dgram_slot *dgram; /* ring_entries slots */
            unsigned dgram_used;         /* slots since the SQ was last empty */
            struct io_accept_slots *accepts; /* every accept op's slots (loop_uring.c) */
        } u;
        struct {
            int epfd;
            struct ep_fd *fds;
            int nfds;
        } e;
    };
};

/* Monotonic clock in milliseconds.  The backends refresh loop->now_ms with it
 * right after they wake, because they deliver completions from inside wait():
 * a timer armed there must count from the wake-up, not from the start of the
 * turn (which can be up to a second earlier). */
uint64_t io_mono_ms(void);
/* Queue an op's completion for the next turn (both backends). */
void io_ready(struct io_loop *loop, struct io_op *op, int res);
/* Deliver a completion to its callback. */
void io_deliver(struct io_op *op, const struct io_completion *c);
/* sendfile(2) attempt for a queued op: returns bytes, or -errno (-EAGAIN to wait). */
int io_try_sendfile(struct io_op *op);

/* Errors an ICMP message leaves on a (connected) UDP socket whose peer has
 * gone.  They end a multishot recvmsg in the kernel, but say nothing about the
 * socket itself: the receive goes on, on both backends and in the drain. */
static inline bool io_icmp_error(int res)
{
    return res == -ECONNREFUSED || res == -EHOSTUNREACH || res == -ENETUNREACH;
}

/* One datagram by recvmsg(2) now into loop->scratch, filling c (buf, len,
 * peer, ifindex, local, truncated; res = bytes or -errno, -EAGAIN when none
 * waits).  Returns c->res. */
int io_recvmsg_direct(struct io_loop *loop, struct io_op *op, struct io_completion *c,
                      struct sockaddr_storage *peer);
/* One datagram by sendmsg(2) now: 0 or -errno (both backends). */
int io_sendmsg_dgram_now(int fd, const struct sockaddr_in *to, const void *head, size_t head_len, const void *body,
                         size_t body_len);

int io_uring_backend_init(struct io_loop *loop, char *why, size_t why_len);
int io_epoll_backend_init(struct io_loop *loop, char *why, size_t why_len);

#define IO_WAKE_TAG ((uint64_t)1) /* user_data of the eventfd read */

#endif
