/* bench/load/ev.h — bootstorm-load's event loop: one epoll set and one timer
 * heap for the whole (single-threaded) process.
 *
 * bootstorm-load plays hundreds of machines from one thread, so every socket
 * of every machine is registered here and every stage advances from
 * callbacks.  Time is monotonic nanoseconds, read once per loop turn
 * (ev_now) so that all events of one turn share a timestamp.
 *
 * The loop is a process-wide singleton: the tool has exactly one thread. */
#ifndef BOOTSTORM_LOAD_EV_H
#define BOOTSTORM_LOAD_EV_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EV_MS 1000000ull /* nanoseconds per millisecond */
#define EV_S 1000000000ull

struct ev_handler;
typedef void (*ev_io_fn)(struct ev_handler *h, uint32_t events);
/* Embed in the object owning a descriptor; events are EPOLLIN/EPOLLOUT/... */
struct ev_handler {
    ev_io_fn fn;
    int fd;
    uint32_t events; /* current interest set */
};

struct ev_timer;
typedef void (*ev_timer_fn)(struct ev_timer *t);
struct ev_timer {
    ev_timer_fn fn;
    void *owner;
    /* private */
    uint64_t due_ns;
    uint32_t heap_index; /* 0: not armed */
};

enum ev_result {
    EV_OK = 0,
    EV_ESYS = -1, /* a system call failed: errno says which */
};

/* Creates the epoll set.  Returns EV_OK or EV_ESYS. */
int ev_init(void);
void ev_fini(void);

/* Registers h->fd with the interest set events (level-triggered). */
int ev_add(struct ev_handler *h, int fd, uint32_t events);
/* Changes the interest set (no system call when it is unchanged). */
int ev_mod(struct ev_handler *h, uint32_t events);
/* Unregisters and closes h->fd (sets it to -1).  Safe on fd -1.  Events already
 * fetched for this descriptor in the current turn are dropped. */
void ev_close(struct ev_handler *h);

uint64_t ev_now(void);      /* cached per turn */
uint64_t ev_refresh(void);  /* reads the clock again */

void ev_timer_arm(struct ev_timer *t, uint64_t after_ns);
void ev_timer_arm_at(struct ev_timer *t, uint64_t due_ns);
void ev_timer_cancel(struct ev_timer *t);
static inline bool ev_timer_armed(const struct ev_timer *t) { return t->heap_index != 0; }

/* One turn: waits for I/O at most until the next timer (or max_wait_ns),
 * dispatches I/O callbacks, then due timers.  Returns EV_OK or EV_ESYS. */
int ev_run_once(uint64_t max_wait_ns);
/* Counters: turns, I/O events, timers fired. */
struct ev_stats {
    uint64_t turns, events, timers;
};
void ev_get_stats(struct ev_stats *out);

/* Raises RLIMIT_NOFILE to its hard limit; returns the soft limit now in force. */
uint64_t ev_raise_nofile(void);

/* ---- datagram sockets (TFTP transfers) ----
 *
 * A lock-step TFTP transfer costs a receive and a send per block; done as one
 * system call each, the client runs out of CPU long before the server does.
 * With io_uring (ev_uring_init), each socket has one multishot recvmsg
 * drawing from a shared provided-buffer ring — datagrams complete without a
 * system call — and sends are queued and go to the kernel together in the one
 * io_uring_enter() per loop turn that also waits.  The epoll set is watched
 * from the ring (a multishot poll on the epoll descriptor), so HTTP and DHCP
 * sockets keep working as before.  Without io_uring the same interface runs on
 * epoll: recvmmsg() batches and one sendto() per datagram. */

struct ev_dgram;
/* One datagram: buf holds len bytes of a datagram of full_len bytes (len <
 * full_len: cut to the buffer, or only the header was read because the owner
 * did not want the payload). */
typedef void (*ev_dgram_fn)(struct ev_dgram *d, const struct sockaddr_in *from, const uint8_t *buf, size_t len,
                            size_t full_len);
/* A socket error (errno value): ECONNREFUSED after an ICMP port unreachable. */
typedef void (*ev_dgram_err_fn)(struct ev_dgram *d, int err);
/* After ev_dgram_close(), at the end of the loop turn in which every operation
 * on the socket has completed: the socket is closed, the owner may free. */
typedef void (*ev_dgram_closed_fn)(struct ev_dgram *d);

struct ev_dgram {
    ev_dgram_fn fn;
    ev_dgram_err_fn err;
    ev_dgram_closed_fn closed;
    bool want_payload; /* epoll: false reads only 4 bytes (MSG_TRUNC gives the length) */
    /* Set before ev_dgram_open: ask for UDP_GRO, so that a run of datagrams the
     * sender passed as one GSO send arrives as one (and costs one wakeup and
     * one completion); it is split here and fn still sees each datagram.
     * Cleared when the kernel refuses.  The receive buffers must hold such a
     * run: ev_uring_init's payload_max. */
    bool gro;
    /* private */
    struct ev_handler h; /* epoll backend; h.fd is the socket in both */
    struct ev_dgram *next_final;
    uint32_t sends;      /* io_uring sends in flight */
    bool armed, closing, final_queued;
};

/* Sets up the ring; payload_max is the largest datagram delivered whole (for
 * UDP_GRO sockets: the largest run of datagrams, e.g. a TFTP window).
 * Returns EV_OK or EV_ESYS (errno set, *why says what; epoll is used then). */
int ev_uring_init(size_t payload_max, char *why, size_t whylen);
bool ev_uring_on(void);
/* Takes a bound UDP socket and starts receiving. */
int ev_dgram_open(struct ev_dgram *d, int fd);
/* Sends a copy of buf (at most 1024 bytes) to `to`.  A failure is a lost
 * datagram (the protocol's timers recover), so nothing is returned. */
void ev_dgram_sendto(struct ev_dgram *d, const struct sockaddr_in *to, const void *buf, size_t len);
/* Stops receiving; d->closed follows (never from within this call). */
void ev_dgram_close(struct ev_dgram *d);
/* Datagrams the io_uring receive ring ran out of buffers for (re-armed). */
uint64_t ev_dgram_enobufs(void);
/* Coalesced runs received on UDP_GRO sockets (each split into its datagrams). */
uint64_t ev_dgram_gro_runs(void);

#endif
