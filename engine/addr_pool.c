/* engine/addr_pool.c — lock-free bitmap allocation with a rotating hint. */
#include "engine/addr_pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct ap_quarantine {
    uint32_t ip;
    int64_t until;
};

struct addr_pool {
    uint32_t first, last;
    uint32_t size;
    size_t nwords;
    _Atomic uint64_t *taken;   /* 1 = not available; tail bits past size are set */
    _Atomic uint64_t *fixed;   /* 1 = static reservation */
    _Atomic uint32_t hint;     /* offset where the next search starts */
    _Atomic size_t ntaken;
    _Atomic size_t nstatic;
    _Atomic size_t nquarantined; /* lets release skip the lock when the list is empty */
    pthread_mutex_t qlock;       /* the quarantine list */
    struct ap_quarantine *q;
    size_t qcap;
};

int addr_pool_create(uint32_t first, uint32_t last, struct addr_pool **out)
{
    if (!out || first == 0 || first > last || (uint64_t)last - first + 1 > ADDR_POOL_SIZE_MAX)
        return ADDR_POOL_EINVAL;
    *out = NULL;
    struct addr_pool *p = calloc(1, sizeof *p);
    if (!p)
        return ADDR_POOL_ENOMEM;
    p->first = first;
    p->last = last;
    p->size = last - first + 1;
    p->nwords = (p->size + 63) / 64;
    p->taken = calloc(p->nwords, sizeof *p->taken);
    p->fixed = calloc(p->nwords, sizeof *p->fixed);
    if (!p->taken || !p->fixed || pthread_mutex_init(&p->qlock, NULL) != 0) {
        free(p->taken);
        free(p->fixed);
        free(p);
        return ADDR_POOL_ENOMEM;
    }
    if (p->size % 64)
        atomic_store_explicit(&p->taken[p->nwords - 1], ~0ull << (p->size % 64), memory_order_relaxed);
    atomic_init(&p->hint, 0);
    atomic_init(&p->ntaken, 0);
    atomic_init(&p->nstatic, 0);
    atomic_init(&p->nquarantined, 0);
    *out = p;
    return ADDR_POOL_OK;
}

void addr_pool_destroy(struct addr_pool *p)
{
    if (!p)
        return;
    pthread_mutex_destroy(&p->qlock);
    free(p->q);
    free(p->taken);
    free(p->fixed);
    free(p);
}

bool addr_pool_contains(const struct addr_pool *p, uint32_t ip)
{
    return p && ip >= p->first && ip <= p->last;
}

int addr_pool_alloc(struct addr_pool *p, uint32_t *ip)
{
    if (!p || !ip)
        return ADDR_POOL_EINVAL;
    uint32_t start = atomic_load_explicit(&p->hint, memory_order_relaxed);
    if (start >= p->size)
        start = 0;
    size_t w0 = start >> 6;
    unsigned b0 = start & 63;
    /* nwords + 1 visits: the first word from b0 up, every other word, and the
     * first word again below b0. */
    for (size_t n = 0; n <= p->nwords; n++) {
        size_t w = w0 + n;
        if (w >= p->nwords)
            w -= p->nwords;
        uint64_t mask = ~0ull;
        if (n == 0)
            mask = ~0ull << b0;
        else if (n == p->nwords)
            mask = b0 ? ~(~0ull << b0) : 0;
        if (!mask)
            break;
        uint64_t cur = atomic_load_explicit(&p->taken[w], memory_order_relaxed);
        for (;;) {
            uint64_t avail = ~(cur | atomic_load_explicit(&p->fixed[w], memory_order_relaxed)) & mask;
            if (!avail)
                break;
            unsigned b = (unsigned)__builtin_ctzll(avail);
            /* on failure cur is reloaded and the word searched again */
            if (atomic_compare_exchange_weak_explicit(&p->taken[w], &cur, cur | (1ull << b),
                                                      memory_order_acq_rel, memory_order_relaxed)) {
                uint32_t off = (uint32_t)(w * 64 + b);
                atomic_store_explicit(&p->hint, off + 1 < p->size ? off + 1 : 0, memory_order_relaxed);
                atomic_fetch_add_explicit(&p->ntaken, 1, memory_order_relaxed);
                *ip = p->first + off;
                return ADDR_POOL_OK;
            }
        }
    }
    return ADDR_POOL_EXHAUSTED;
}

int addr_pool_reserve(struct addr_pool *p, uint32_t ip, unsigned flags)
{
    if (!addr_pool_contains(p, ip))
        return p ? ADDR_POOL_ERANGE : ADDR_POOL_EINVAL;
    uint32_t off = ip - p->first;
    uint64_t bit = 1ull << (off & 63);
    if ((atomic_load_explicit(&p->fixed[off >> 6], memory_order_relaxed) & bit) &&
        !(flags & ADDR_POOL_RESERVE_STATIC))
        return ADDR_POOL_ESTATIC;
    if (atomic_fetch_or_explicit(&p->taken[off >> 6], bit, memory_order_acq_rel) & bit)
        return ADDR_POOL_EINUSE;
    atomic_fetch_add_explicit(&p->ntaken, 1, memory_order_relaxed);
    return ADDR_POOL_OK;
}

/* qlock held.  Index in q of ip, or qn (from nquarantined). */
static size_t ap_qfind(struct addr_pool *p, uint32_t ip, size_t qn)
{
    size_t i = 0;
    while (i < qn && p->q[i].ip != ip)
        i++;
    return i;
}

static void ap_qremove(struct addr_pool *p, size_t i, size_t qn)
{
    p->q[i] = p->q[qn - 1];
    atomic_store_explicit(&p->nquarantined, qn - 1, memory_order_release);
}

int addr_pool_release(struct addr_pool *p, uint32_t ip)
{
    if (!addr_pool_contains(p, ip))
        return p ? ADDR_POOL_ERANGE : ADDR_POOL_EINVAL;
    if (atomic_load_explicit(&p->nquarantined, memory_order_acquire) > 0) {
        pthread_mutex_lock(&p->qlock);
        size_t qn = atomic_load_explicit(&p->nquarantined, memory_order_relaxed);
        size_t i = ap_qfind(p, ip, qn);
        if (i < qn)
            ap_qremove(p, i, qn);
        pthread_mutex_unlock(&p->qlock);
    }
    uint32_t off = ip - p->first;
    uint64_t bit = 1ull << (off & 63);
    if (!(atomic_fetch_and_explicit(&p->taken[off >> 6], ~bit, memory_order_acq_rel) & bit))
        return ADDR_POOL_ENOTHELD;
    atomic_fetch_sub_explicit(&p->ntaken, 1, memory_order_relaxed);
    return ADDR_POOL_OK;
}

int addr_pool_quarantine(struct addr_pool *p, uint32_t ip, int64_t until)
{
    if (!addr_pool_contains(p, ip))
        return p ? ADDR_POOL_ERANGE : ADDR_POOL_EINVAL;
    int rc = ADDR_POOL_OK;
    pthread_mutex_lock(&p->qlock);
    size_t qn = atomic_load_explicit(&p->nquarantined, memory_order_relaxed);
    size_t i = ap_qfind(p, ip, qn);
    if (i == qn) {
        if (qn == p->qcap) {
            size_t cap = p->qcap ? 2 * p->qcap : 16;
            struct ap_quarantine *q = realloc(p->q, cap * sizeof *q);
            if (!q) {
                rc = ADDR_POOL_ENOMEM;
                goto out;
            }
            p->q = q;
            p->qcap = cap;
        }
        p->q[qn].ip = ip;
        atomic_store_explicit(&p->nquarantined, qn + 1, memory_order_release);
    }
    p->q[i].until = until;
    uint32_t off = ip - p->first;
    uint64_t bit = 1ull << (off & 63);
    if (!(atomic_fetch_or_explicit(&p->taken[off >> 6], bit, memory_order_acq_rel) & bit))
        atomic_fetch_add_explicit(&p->ntaken, 1, memory_order_relaxed);
out:
    pthread_mutex_unlock(&p->qlock);
    return rc;
}

size_t addr_pool_quarantine_expired(struct addr_pool *p, int64_t now, uint32_t *out, size_t max)
{
    if (!p || !out || atomic_load_explicit(&p->nquarantined, memory_order_acquire) == 0)
        return 0;
    size_t n = 0;
    pthread_mutex_lock(&p->qlock);
    size_t qn = atomic_load_explicit(&p->nquarantined, memory_order_relaxed);
    for (size_t i = 0; i < qn && n < max;) {
        if (p->q[i].until <= now) {
            out[n++] = p->q[i].ip;
            ap_qremove(p, i, qn--); /* q[i] is now the former last entry: look again */
        } else {
            i++;
        }
    }
    pthread_mutex_unlock(&p->qlock);
    return n;
}

int addr_pool_set_static(struct addr_pool *p, uint32_t ip, bool on)
{
    if (!addr_pool_contains(p, ip))
        return p ? ADDR_POOL_ERANGE : ADDR_POOL_EINVAL;
    uint32_t off = ip - p->first;
    uint64_t bit = 1ull << (off & 63);
    uint64_t prev = on ? atomic_fetch_or_explicit(&p->fixed[off >> 6], bit, memory_order_acq_rel)
                       : atomic_fetch_and_explicit(&p->fixed[off >> 6], ~bit, memory_order_acq_rel);
    if (on && !(prev & bit))
        atomic_fetch_add_explicit(&p->nstatic, 1, memory_order_relaxed);
    else if (!on && (prev & bit))
        atomic_fetch_sub_explicit(&p->nstatic, 1, memory_order_relaxed);
    return ADDR_POOL_OK;
}

int addr_pool_query(struct addr_pool *p, uint32_t ip, struct addr_pool_addr *out)
{
    if (!addr_pool_contains(p, ip) || !out)
        return p && out ? ADDR_POOL_ERANGE : ADDR_POOL_EINVAL;
    uint32_t off = ip - p->first;
    uint64_t bit = 1ull << (off & 63);
    memset(out, 0, sizeof *out);
    out->taken = atomic_load_explicit(&p->taken[off >> 6], memory_order_acquire) & bit;
    out->is_static = atomic_load_explicit(&p->fixed[off >> 6], memory_order_acquire) & bit;
    if (atomic_load_explicit(&p->nquarantined, memory_order_acquire) > 0) {
        pthread_mutex_lock(&p->qlock);
        size_t qn = atomic_load_explicit(&p->nquarantined, memory_order_relaxed);
        size_t i = ap_qfind(p, ip, qn);
        if (i < qn) {
            out->quarantined = true;
            out->quarantine_until = p->q[i].until;
        }
        pthread_mutex_unlock(&p->qlock);
    }
    return ADDR_POOL_OK;
}

void addr_pool_stats(struct addr_pool *p, struct addr_pool_stats *st)
{
    memset(st, 0, sizeof *st);
    if (!p)
        return;
    st->first = p->first;
    st->last = p->last;
    st->size = p->size;
    st->taken = atomic_load_explicit(&p->ntaken, memory_order_relaxed);
    st->statics = atomic_load_explicit(&p->nstatic, memory_order_relaxed);
    st->quarantined = atomic_load_explicit(&p->nquarantined, memory_order_relaxed);
    pthread_mutex_lock(&p->qlock);
    st->memory_bytes = sizeof *p + 2 * p->nwords * sizeof(uint64_t) + p->qcap * sizeof *p->q;
    pthread_mutex_unlock(&p->qlock);
}
