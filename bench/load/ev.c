/* bench/load/ev.c — epoll + a binary timer heap; see ev.h. */
#include "bench/load/ev.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define EV_BATCH 256

static struct {
    int epfd;
    uint64_t now;
    struct ev_timer **heap; /* 1-based */
    uint32_t n, cap;
    struct epoll_event evs[EV_BATCH];
    int nevs, cur; /* events of the turn being dispatched */
    bool in_timers; /* a timer armed while timers run waits for the next turn */
    struct ev_stats st;
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
    if (!E.heap) {
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
    if (E.epfd >= 0)
        close(E.epfd);
    E.epfd = -1;
    free(E.heap);
    E.heap = NULL;
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

int ev_run_once(uint64_t max_wait_ns)
{
    uint64_t wait = max_wait_ns;
    if (E.n) {
        uint64_t due = E.heap[1]->due_ns;
        uint64_t left = due > E.now ? due - E.now : 0;
        if (left < wait)
            wait = left;
    }
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
    /* timers due now (a callback may arm new ones: only those already due run) */
    uint64_t now = ev_now();
    E.in_timers = true;
    while (E.n && E.heap[1]->due_ns <= now) {
        struct ev_timer *t = E.heap[1];
        ev_timer_cancel(t);
        E.st.timers++;
        t->fn(t);
    }
    E.in_timers = false;
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
