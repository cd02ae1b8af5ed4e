/* tests/unit/engine/test_addr_pool.c — address pools: ranges, allocation,
 * reservations, statics, quarantine, and many threads allocating at once. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/addr_pool.h"

#define IP(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))

static struct addr_pool *mkpool(uint32_t first, uint32_t last)
{
    struct addr_pool *p = NULL;
    cr_assert_eq(addr_pool_create(first, last, &p), ADDR_POOL_OK);
    cr_assert_not_null(p);
    return p;
}

Test(addr_pool, create_rejects_bad_ranges)
{
    struct addr_pool *p = NULL;
    cr_expect_eq(addr_pool_create(0, 10, &p), ADDR_POOL_EINVAL);
    cr_expect_eq(addr_pool_create(IP(10, 0, 0, 9), IP(10, 0, 0, 8), &p), ADDR_POOL_EINVAL);
    cr_expect_eq(addr_pool_create(IP(10, 0, 0, 0), IP(10, 0, 0, 0) + ADDR_POOL_SIZE_MAX, &p), ADDR_POOL_EINVAL);
    cr_expect_eq(addr_pool_create(1, 2, NULL), ADDR_POOL_EINVAL);
    cr_assert_eq(addr_pool_create(IP(10, 0, 0, 0), IP(10, 0, 0, 0) + ADDR_POOL_SIZE_MAX - 1, &p), ADDR_POOL_OK);
    addr_pool_destroy(p);
}

/* Sizes around the 64-bit word boundaries. */
Test(addr_pool, allocates_every_address_once_then_exhausted)
{
    const uint32_t sizes[] = { 1, 2, 63, 64, 65, 100, 128, 1000 };
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        uint32_t first = IP(192, 168, 0, 10), n = sizes[s];
        struct addr_pool *p = mkpool(first, first + n - 1);
        uint8_t *seen = calloc(n, 1);
        for (uint32_t i = 0; i < n; i++) {
            uint32_t ip = 0;
            cr_assert_eq(addr_pool_alloc(p, &ip), ADDR_POOL_OK, "size %u alloc %u", n, i);
            cr_assert(ip >= first && ip < first + n, "size %u: %08x outside the pool", n, ip);
            cr_assert_eq(seen[ip - first]++, 0, "size %u: %08x handed out twice", n, ip);
        }
        uint32_t ip = 0xdeadbeef;
        cr_assert_eq(addr_pool_alloc(p, &ip), ADDR_POOL_EXHAUSTED, "size %u", n);
        cr_assert_eq(ip, 0xdeadbeef, "EXHAUSTED must not write *ip");
        struct addr_pool_stats st;
        addr_pool_stats(p, &st);
        cr_assert_eq(st.size, n);
        cr_assert_eq(st.taken, n);
        free(seen);
        addr_pool_destroy(p);
    }
}

Test(addr_pool, rotating_hint_does_not_reuse_a_just_released_address)
{
    struct addr_pool *p = mkpool(IP(10, 0, 0, 1), IP(10, 0, 0, 200));
    uint32_t a, b, c;
    cr_assert_eq(addr_pool_alloc(p, &a), ADDR_POOL_OK);
    cr_assert_eq(addr_pool_release(p, a), ADDR_POOL_OK);
    cr_assert_eq(addr_pool_alloc(p, &b), ADDR_POOL_OK);
    cr_assert_neq(b, a, "released address handed out again at once");
    cr_assert_eq(addr_pool_alloc(p, &c), ADDR_POOL_OK);
    cr_assert_eq(c, b + 1);
    /* the search wraps: fill the rest, then the only free one is a */
    uint32_t ip;
    for (int i = 0; i < 197; i++)
        cr_assert_eq(addr_pool_alloc(p, &ip), ADDR_POOL_OK);
    cr_assert_eq(addr_pool_alloc(p, &ip), ADDR_POOL_OK);
    cr_assert_eq(ip, a);
    cr_assert_eq(addr_pool_alloc(p, &ip), ADDR_POOL_EXHAUSTED);
    addr_pool_destroy(p);
}

Test(addr_pool, reserve_release_and_their_errors)
{
    struct addr_pool *p = mkpool(IP(10, 0, 0, 10), IP(10, 0, 0, 20));
    cr_assert(addr_pool_contains(p, IP(10, 0, 0, 10)));
    cr_assert(addr_pool_contains(p, IP(10, 0, 0, 20)));
    cr_assert_not(addr_pool_contains(p, IP(10, 0, 0, 21)));
    cr_assert_eq(addr_pool_reserve(p, IP(10, 0, 0, 15), 0), ADDR_POOL_OK);
    cr_assert_eq(addr_pool_reserve(p, IP(10, 0, 0, 15), 0), ADDR_POOL_EINUSE);
    cr_assert_eq(addr_pool_reserve(p, IP(10, 0, 0, 9), 0), ADDR_POOL_ERANGE);
    cr_assert_eq(addr_pool_reserve(p, IP(10, 0, 0, 21), 0), ADDR_POOL_ERANGE);
    cr_assert_eq(addr_pool_release(p, IP(10, 0, 0, 21)), ADDR_POOL_ERANGE);
    cr_assert_eq(addr_pool_release(p, IP(10, 0, 0, 15)), ADDR_POOL_OK);
    cr_assert_eq(addr_pool_release(p, IP(10, 0, 0, 15)), ADDR_POOL_ENOTHELD);
    /* a reserved address is never allocated */
    cr_assert_eq(addr_pool_reserve(p, IP(10, 0, 0, 12), 0), ADDR_POOL_OK);
    uint32_t ip;
    for (int i = 0; i < 10; i++) {
        cr_assert_eq(addr_pool_alloc(p, &ip), ADDR_POOL_OK);
        cr_assert_neq(ip, IP(10, 0, 0, 12));
    }
    cr_assert_eq(addr_pool_alloc(p, &ip), ADDR_POOL_EXHAUSTED);
    addr_pool_destroy(p);
}

Test(addr_pool, static_reservations_are_excluded_from_allocation)
{
    struct addr_pool *p = mkpool(IP(10, 0, 0, 1), IP(10, 0, 0, 4));
    cr_assert_eq(addr_pool_set_static(p, IP(10, 0, 0, 2), true), ADDR_POOL_OK);
    cr_assert_eq(addr_pool_set_static(p, IP(10, 0, 0, 3), true), ADDR_POOL_OK);
    cr_assert_eq(addr_pool_set_static(p, IP(10, 0, 0, 9), true), ADDR_POOL_ERANGE);
    uint32_t a, b, c;
    cr_assert_eq(addr_pool_alloc(p, &a), ADDR_POOL_OK);
    cr_assert_eq(addr_pool_alloc(p, &b), ADDR_POOL_OK);
    cr_assert_eq(addr_pool_alloc(p, &c), ADDR_POOL_EXHAUSTED);
    cr_assert((a == IP(10, 0, 0, 1) && b == IP(10, 0, 0, 4)) || (a == IP(10, 0, 0, 4) && b == IP(10, 0, 0, 1)));
    /* requested-IP from a stranger is refused; the owner gets it with the flag */
    cr_assert_eq(addr_pool_reserve(p, IP(10, 0, 0, 2), 0), ADDR_POOL_ESTATIC);
    cr_assert_eq(addr_pool_reserve(p, IP(10, 0, 0, 2), ADDR_POOL_RESERVE_STATIC), ADDR_POOL_OK);
    cr_assert_eq(addr_pool_reserve(p, IP(10, 0, 0, 2), ADDR_POOL_RESERVE_STATIC), ADDR_POOL_EINUSE);
    struct addr_pool_addr st;
    cr_assert_eq(addr_pool_query(p, IP(10, 0, 0, 2), &st), ADDR_POOL_OK);
    cr_assert(st.taken && st.is_static && !st.quarantined);
    cr_assert_eq(addr_pool_release(p, IP(10, 0, 0, 2)), ADDR_POOL_OK);
    cr_assert_eq(addr_pool_alloc(p, &c), ADDR_POOL_EXHAUSTED, "a released static stays out of allocation");
    /* unmarking makes it allocatable */
    cr_assert_eq(addr_pool_set_static(p, IP(10, 0, 0, 3), false), ADDR_POOL_OK);
    cr_assert_eq(addr_pool_alloc(p, &c), ADDR_POOL_OK);
    cr_assert_eq(c, IP(10, 0, 0, 3));
    struct addr_pool_stats ps;
    addr_pool_stats(p, &ps);
    cr_assert_eq(ps.statics, 1);
    addr_pool_destroy(p);
}

Test(addr_pool, quarantine_holds_until_expired_and_released)
{
    struct addr_pool *p = mkpool(IP(10, 0, 0, 1), IP(10, 0, 0, 3));
    uint32_t a;
    cr_assert_eq(addr_pool_alloc(p, &a), ADDR_POOL_OK);
    cr_assert_eq(addr_pool_quarantine(p, a, 1000), ADDR_POOL_OK);        /* a held address */
    cr_assert_eq(addr_pool_quarantine(p, IP(10, 0, 0, 3), 500), ADDR_POOL_OK); /* a free one */
    cr_assert_eq(addr_pool_quarantine(p, IP(10, 0, 1, 3), 500), ADDR_POOL_ERANGE);
    struct addr_pool_stats ps;
    addr_pool_stats(p, &ps);
    cr_assert_eq(ps.quarantined, 2);
    cr_assert_eq(ps.taken, 2);
    struct addr_pool_addr st;
    cr_assert_eq(addr_pool_query(p, IP(10, 0, 0, 3), &st), ADDR_POOL_OK);
    cr_assert(st.taken && st.quarantined);
    cr_assert_eq(st.quarantine_until, 500);
    cr_assert_eq(addr_pool_reserve(p, IP(10, 0, 0, 3), 0), ADDR_POOL_EINUSE);
    uint32_t ip;
    cr_assert_eq(addr_pool_alloc(p, &ip), ADDR_POOL_OK);
    cr_assert_eq(ip, IP(10, 0, 0, 2));
    cr_assert_eq(addr_pool_alloc(p, &ip), ADDR_POOL_EXHAUSTED);

    uint32_t due[4];
    cr_assert_eq(addr_pool_quarantine_expired(p, 499, due, 4), 0);
    cr_assert_eq(addr_pool_quarantine_expired(p, 500, due, 4), 1);
    cr_assert_eq(due[0], IP(10, 0, 0, 3));
    cr_assert_eq(addr_pool_alloc(p, &ip), ADDR_POOL_EXHAUSTED, "still taken until released");
    cr_assert_eq(addr_pool_release(p, due[0]), ADDR_POOL_OK);
    cr_assert_eq(addr_pool_alloc(p, &ip), ADDR_POOL_OK);
    cr_assert_eq(ip, IP(10, 0, 0, 3));
    /* re-quarantine moves the deadline; release ends it early */
    cr_assert_eq(addr_pool_quarantine(p, a, 3000), ADDR_POOL_OK);
    cr_assert_eq(addr_pool_quarantine_expired(p, 2000, due, 4), 0);
    cr_assert_eq(addr_pool_release(p, a), ADDR_POOL_OK);
    cr_assert_eq(addr_pool_query(p, a, &st), ADDR_POOL_OK);
    cr_assert(!st.taken && !st.quarantined);
    cr_assert_eq(addr_pool_quarantine_expired(p, 5000, due, 4), 0);
    addr_pool_destroy(p);
}

/* ---- threads ------------------------------------------------------------------ */

#define THREADS 4
#define PER_THREAD 50000

struct grab {
    struct addr_pool *p;
    uint32_t *ips;
};

static void *grab_all(void *arg)
{
    struct grab *g = arg;
    for (int i = 0; i < PER_THREAD; i++)
        cr_assert_eq(addr_pool_alloc(g->p, &g->ips[i]), ADDR_POOL_OK);
    return NULL;
}

Test(addr_pool, threads_allocating_at_once_never_share_an_address, .timeout = 120)
{
    const uint32_t first = IP(10, 16, 0, 0), n = THREADS * PER_THREAD;
    struct addr_pool *p = mkpool(first, first + n - 1);
    struct grab g[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        g[i].p = p;
        g[i].ips = calloc(PER_THREAD, sizeof *g[i].ips);
        pthread_create(&th[i], NULL, grab_all, &g[i]);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    uint8_t *seen = calloc(n, 1);
    for (int t = 0; t < THREADS; t++)
        for (int i = 0; i < PER_THREAD; i++) {
            uint32_t ip = g[t].ips[i];
            cr_assert(ip >= first && ip < first + n, "%08x outside the pool", ip);
            cr_assert_eq(seen[ip - first]++, 0, "%08x handed to two callers", ip);
        }
    uint32_t ip;
    cr_assert_eq(addr_pool_alloc(p, &ip), ADDR_POOL_EXHAUSTED);
    struct addr_pool_stats st;
    addr_pool_stats(p, &st);
    cr_assert_eq(st.taken, n);
    for (int i = 0; i < THREADS; i++)
        free(g[i].ips);
    free(seen);
    addr_pool_destroy(p);
}

/* Allocate, hold, release at random from a small pool so that threads keep
 * running into exhaustion and into each other's releases.  Every address has
 * an owner slot claimed by CAS: a second owner would fail the CAS. */
struct churn {
    struct addr_pool *p;
    uint32_t first, size;
    _Atomic uint32_t *owner;
    _Atomic uint64_t doubles, exhausted, allocs;
};

struct churn_arg {
    struct churn *c;
    uint32_t id;
};

static void *churn(void *arg)
{
    struct churn_arg *a = arg;
    struct churn *c = a->c;
    uint32_t held[64], nheld = 0, rnd = a->id * 2654435761u + 1;
    for (int i = 0; i < PER_THREAD; i++) {
        rnd = rnd * 1103515245u + 12345u;
        if (nheld == 64 || (nheld && (rnd >> 16) % 3 == 0)) {
            uint32_t k = (rnd >> 8) % nheld, ip = held[k];
            held[k] = held[--nheld];
            atomic_store(&c->owner[ip - c->first], 0); /* disown first, then release */
            cr_assert_eq(addr_pool_release(c->p, ip), ADDR_POOL_OK);
            continue;
        }
        uint32_t ip;
        int rc = addr_pool_alloc(c->p, &ip);
        if (rc == ADDR_POOL_EXHAUSTED) {
            atomic_fetch_add(&c->exhausted, 1);
            continue;
        }
        cr_assert_eq(rc, ADDR_POOL_OK);
        uint32_t none = 0;
        if (!atomic_compare_exchange_strong(&c->owner[ip - c->first], &none, a->id))
            atomic_fetch_add(&c->doubles, 1);
        atomic_fetch_add(&c->allocs, 1);
        held[nheld++] = ip;
    }
    while (nheld) {
        uint32_t ip = held[--nheld];
        atomic_store(&c->owner[ip - c->first], 0);
        cr_assert_eq(addr_pool_release(c->p, ip), ADDR_POOL_OK);
    }
    return NULL;
}

Test(addr_pool, threads_churning_a_small_pool, .timeout = 120)
{
    struct churn c = { .first = IP(10, 20, 0, 0), .size = 48 }; /* < 64 held by one thread */
    c.p = mkpool(c.first, c.first + c.size - 1);
    c.owner = calloc(c.size, sizeof *c.owner);
    struct churn_arg args[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i] = (struct churn_arg){ &c, (uint32_t)i + 1 };
        pthread_create(&th[i], NULL, churn, &args[i]);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    printf("addr_pool churn: %llu allocations, %llu exhausted, %llu doubles\n",
           (unsigned long long)c.allocs, (unsigned long long)c.exhausted, (unsigned long long)c.doubles);
    cr_assert_eq(c.doubles, 0, "an address had two owners");
    cr_assert_gt(c.allocs, 0);
    cr_assert_gt(c.exhausted, 0, "the pool was meant to run dry");
    struct addr_pool_stats st;
    addr_pool_stats(c.p, &st);
    cr_assert_eq(st.taken, 0, "everything was released");
    free(c.owner);
    addr_pool_destroy(c.p);
}
