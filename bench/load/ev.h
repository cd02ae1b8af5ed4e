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

#include <stdbool.h>
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

#endif
