/* io/loop.h — the event core: one loop per worker thread.
 *
 * A completion-shaped API over two backends chosen at run time: io_uring
 * (liburing; accepts that carry the peer's address, multishot recv,
 * provided-buffer rings, batched submission, closes through the ring) and
 * epoll (the same operations performed when the descriptor is ready).  io/ knows sockets, files and time, nothing of any protocol.
 *
 * Ownership rules, the same on both backends:
 *  - A struct io_op is embedded in the caller's object and must stay alive until
 *    its final completion (c->more == false).  A multishot op (accept, recv,
 *    recvmsg) completes many times; it ends with an error, EOF, or -ECANCELED
 *    after io_cancel().  An accept may still deliver new connections (more =
 *    true) between io_cancel() or its error and its final completion: the
 *    owner closes what it no longer wants.
 *  - Received bytes (c->buf) are valid only during the callback: the buffer goes
 *    back to the ring when the callback returns.  Copy what you keep.
 *  - Memory passed to io_send (the iovec and what it points to) must stay valid
 *    until that op completes.
 *  - Callbacks never run inside the call that queued the op; they run from
 *    io_loop_run(), so an op's owner may safely queue, cancel and free from a
 *    callback.
 *  - Results are byte counts, new descriptors, 0 for EOF, or -errno.
 */
#ifndef BOOTSTORM_IO_LOOP_H
#define BOOTSTORM_IO_LOOP_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

struct io_loop;

enum io_backend {
    IO_BACKEND_AUTO = 0, /* io_uring when the kernel allows it, else epoll */
    IO_BACKEND_URING,
    IO_BACKEND_EPOLL,
};

struct io_loop_config {
    enum io_backend backend;
    unsigned ring_entries;     /* submission queue size (uring); 0 = 1024 */
    unsigned recv_buffers;     /* provided receive buffers, power of two; 0 = 512 */
    unsigned recv_buffer_size; /* bytes per receive buffer; 0 = 4096.  The largest
                                * datagram delivered whole (a bigger one is cut to
                                * this and flagged truncated); a stream completion
                                * may carry a little more on uring. */
};

/* What one completion carries.  peer is the datagram's source (recvmsg) or the
 * new connection's peer (accept); ifindex/local are set for recvmsg only. */
struct io_completion {
    int res;                      /* bytes, new fd, 0 = EOF, or -errno */
    bool more;                    /* false: this op is finished and may be reused */
    const void *buf;              /* received bytes (recv, recvmsg), valid in the callback */
    size_t len;
    const struct sockaddr_storage *peer; /* datagram source, or the accepted peer */
    socklen_t peer_len;
    int ifindex;                  /* receiving interface (IP_PKTINFO), 0 if unknown */
    struct in_addr local;         /* local address the datagram was sent to (IP_PKTINFO) */
    bool truncated;               /* the datagram did not fit a buffer and was cut */
};

struct io_op;
typedef void (*io_op_fn)(struct io_op *op, const struct io_completion *c);

enum io_op_kind {
    IO_OP_NONE = 0,
    IO_OP_ACCEPT,
    IO_OP_RECV,
    IO_OP_RECVMSG,
    IO_OP_SEND,
    IO_OP_SENDFILE,
};

struct io_op {
    io_op_fn fn;   /* completion callback, set by the caller */
    void *owner;   /* free for the caller */
    /* private to io/ */
    struct io_loop *loop;
    struct io_op *next_ready;
    enum io_op_kind kind;
    int fd;
    int file_fd;
    int flags;             /* MSG_* for send */
    uint8_t state;
    bool queued;           /* in flight (ring, interest set or ready list) */
    bool cancel_requested;
    int ready_res;
    uint64_t file_off;
    size_t file_len;
    struct msghdr msg;
    struct io_accept_slots *acc; /* uring: the accepts in flight and their peers */
};

struct io_timer;
typedef void (*io_timer_fn)(struct io_timer *t);
struct io_timer {
    io_timer_fn fn; /* set by the caller */
    void *owner;
    /* private */
    uint64_t due_ms;
    uint32_t heap_index; /* 0 = not armed */
};

/* Creates a loop for the calling thread.  `why` receives one line saying which
 * backend runs and why (e.g. "epoll: io_uring_setup: Operation not permitted").
 * Returns 0 or -errno. */
int io_loop_new(struct io_loop **out, const struct io_loop_config *cfg, char *why, size_t why_len);
void io_loop_free(struct io_loop *loop);
enum io_backend io_loop_backend(const struct io_loop *loop);
const char *io_backend_name(enum io_backend b);

/* Runs until io_loop_stop(); returns 0 or -errno on a fatal loop error. */
int io_loop_run(struct io_loop *loop);
/* Thread-safe: asks the loop to return from io_loop_run() soon. */
void io_loop_stop(struct io_loop *loop);
/* Thread-safe: wakes the loop; its idle hook runs. */
void io_loop_wake(struct io_loop *loop);
/* Called once per loop turn after completions are handled and before the loop
 * sleeps (the place to flush a journal before the replies that wait on it). */
void io_loop_set_idle_hook(struct io_loop *loop, void (*fn)(void *), void *arg);

/* Monotonic milliseconds, cached per loop turn. */
uint64_t io_loop_now_ms(const struct io_loop *loop);

/* Multishot accept: one completion per new connection (res = fd, non-blocking,
 * peer = its address: no getpeername needed). */
int io_accept(struct io_loop *loop, struct io_op *op, int listen_fd);
/* Multishot stream receive into provided buffers. */
int io_recv(struct io_loop *loop, struct io_op *op, int fd);
/* Multishot datagram receive with source address and IP_PKTINFO. */
int io_recvmsg(struct io_loop *loop, struct io_op *op, int fd);
/* Sends the iovec (one completion, res = bytes sent, possibly fewer than asked
 * on a stream socket).  flags: MSG_MORE to hold the segment for what follows. */
int io_send(struct io_loop *loop, struct io_op *op, int fd, const struct iovec *iov, int iovcnt, int flags);
/* Sends len bytes of file_fd from off to the socket without copying them into
 * user memory (sendfile(2) from the worker when the socket is writable).
 * One completion with res = bytes sent (at least 1 unless error/EOF; 0 when
 * off is at or past the end of the file).  sendfile(2) takes no MSG_NOSIGNAL:
 * the process must ignore SIGPIPE, or a peer that has gone kills it. */
int io_sendfile(struct io_loop *loop, struct io_op *op, int sock_fd, int file_fd, uint64_t off, size_t len);
/* One datagram sent without a completion: head (copied, at most
 * IO_DGRAM_HEAD_MAX bytes: a protocol header, or a whole small reply) followed
 * by body (NOT copied) to `to`.  On io_uring
 * it goes to the kernel with the loop's next submission — the io_uring_enter
 * that also waits, so it costs no syscall of its own — and is sent there and
 * then (MSG_DONTWAIT: never parked in the ring); on epoll it is sent at once.
 * body must stay valid until that submission: call io_flush() before freeing
 * or unmapping memory a queued datagram may point into.  Returns 0 when sent
 * or queued, or -errno when it could not be (epoll: the send's own error, e.g.
 * -EAGAIN with a full socket buffer).  A queued datagram that fails later is
 * lost like any datagram (counted in stats.dgram_errors); the caller's
 * retransmission repairs it. */
#define IO_DGRAM_HEAD_MAX 96
int io_send_datagram(struct io_loop *loop, int fd, const struct sockaddr_in *to, const void *head, size_t head_len,
                     const void *body, size_t body_len);
/* Delivers up to max datagrams already waiting on the socket of a running
 * recvmsg op through its callback now, read with recvmsg(2) rather than
 * through the ring; returns how many.  For a socket whose datagrams must not
 * wait behind the ring's other completions (DHCP on a worker also busy with
 * thousands of TFTP and HTTP completions: the ring delivers a socket's
 * datagrams a few per turn).  Call it outside callbacks (an idle hook): the op's
 * callback runs inside this call. */
unsigned io_recvmsg_drain(struct io_loop *loop, struct io_op *op, unsigned max);
/* Closes a descriptor no op of this loop uses any more (cancelled ops must have
 * had their final completion).  On io_uring the close goes to the kernel with
 * the loop's next submission, costing no system call of its own; the number
 * stays taken until then (or until io_loop_free, which closes what is still
 * queued).  On epoll it is closed at once. */
void io_close(struct io_loop *loop, int fd);
/* Hands every queued datagram to the kernel now (no-op when none is queued). */
void io_flush(struct io_loop *loop);
/* Requests the end of an in-flight op; its final completion follows
 * (-ECANCELED, or its ordinary result if it was already done). */
void io_cancel(struct io_loop *loop, struct io_op *op);
bool io_op_busy(const struct io_op *op);

void io_timer_arm(struct io_loop *loop, struct io_timer *t, uint64_t after_ms);
void io_timer_cancel(struct io_loop *loop, struct io_timer *t);
static inline bool io_timer_armed(const struct io_timer *t) { return t->heap_index != 0; }
/* The loop time (io_loop_now_ms) an armed timer fires at. */
static inline uint64_t io_timer_due_ms(const struct io_timer *t) { return t->due_ms; }

/* Counters for metrics and tests. */
struct io_loop_stats {
    uint64_t turns, completions, submits, enobufs, truncated;
    uint64_t dgrams_queued, dgram_errors; /* io_send_datagram: queued in the ring; failed there */
    uint64_t drained;                     /* datagrams io_recvmsg_drain delivered */
    uint64_t close_errors;                /* io_close: failed in the ring */
};
void io_loop_get_stats(const struct io_loop *loop, struct io_loop_stats *out);

#endif
