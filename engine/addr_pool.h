/* engine/addr_pool.h — one subnet's dynamic address range [first, last].
 *
 * Allocation is a bitmap of C11 atomic words: a thread claims an address by
 * compare-and-swapping its bit from 0 to 1, so no two callers ever get the
 * same address, from any number of threads, without a lock.  The search
 * starts at a rotating hint (one past the last address handed out), so an
 * address that was just released is the last one to be given out again.
 *
 * Each address is, as far as the pool is concerned, one of:
 *  - free                     (bit clear, not static)
 *  - taken                    (bit set: allocated, reserved, or quarantined)
 *  - static                   (a reservation: never handed out by
 *                              addr_pool_alloc; its owner claims it with
 *                              addr_pool_reserve(…, ADDR_POOL_RESERVE_STATIC))
 *  - quarantined until T      (taken, and on the quarantine list: a DECLINEd
 *                              address, RFC 2131 §4.3.3)
 * The pool does not know who holds an address; the lease store does, and it
 * alone calls addr_pool_release for an address it holds.
 *
 * Addresses are IPv4 in host byte order.
 */
#ifndef BOOTSTORM_ENGINE_ADDR_POOL_H
#define BOOTSTORM_ENGINE_ADDR_POOL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ADDR_POOL_SIZE_MAX (1u << 24) /* a /8: 2 MiB of bitmap */

enum addr_pool_result {
    ADDR_POOL_OK        = 0,
    ADDR_POOL_EXHAUSTED = -ENOSPC,     /* no free dynamic address left */
    ADDR_POOL_EINVAL    = -EINVAL,     /* bad range or arguments */
    ADDR_POOL_ERANGE    = -ERANGE,     /* address outside [first, last] */
    ADDR_POOL_EINUSE    = -EADDRINUSE, /* address already taken */
    ADDR_POOL_ESTATIC   = -EPERM,      /* address is a static reservation */
    ADDR_POOL_ENOTHELD  = -ENOENT,     /* release of an address that was not taken */
    ADDR_POOL_ENOMEM    = -ENOMEM,
};

enum addr_pool_reserve_flags {
    ADDR_POOL_RESERVE_STATIC = 1 << 0, /* may take a static reservation's address */
};

struct addr_pool;

/** Create a pool for [first, last] (inclusive, host order, first != 0,
 *  at most ADDR_POOL_SIZE_MAX addresses), all free.  Free with addr_pool_destroy. */
int addr_pool_create(uint32_t first, uint32_t last, struct addr_pool **out);
void addr_pool_destroy(struct addr_pool *p);

bool addr_pool_contains(const struct addr_pool *p, uint32_t ip);

/** Take any free, non-static address.  ADDR_POOL_OK and *ip set, or
 *  ADDR_POOL_EXHAUSTED.  Lock-free; safe from any number of threads. */
int addr_pool_alloc(struct addr_pool *p, uint32_t *ip);

/** Take one particular address (a requested address, a lease being restored,
 *  a static reservation's owner with ADDR_POOL_RESERVE_STATIC).
 *  ADDR_POOL_OK, ERANGE, ESTATIC or EINUSE.  Lock-free. */
int addr_pool_reserve(struct addr_pool *p, uint32_t ip, unsigned flags);

/** Give a taken address back (ends a quarantine too).  ADDR_POOL_OK, ERANGE,
 *  or ENOTHELD for an address that was free (a caller bug: a double release). */
int addr_pool_release(struct addr_pool *p, uint32_t ip);

/** Quarantine ip until `until` (unix seconds): it is taken (if it was not
 *  already) and listed; addr_pool_quarantine_expired hands it back later.
 *  Re-quarantining moves the deadline.  ADDR_POOL_OK, ERANGE or ENOMEM. */
int addr_pool_quarantine(struct addr_pool *p, uint32_t ip, int64_t until);

/** Take up to `max` addresses whose quarantine ended at or before `now` off the
 *  quarantine list and store them in out[].  They stay taken: the caller
 *  records that (journal) and then calls addr_pool_release for each, so that
 *  nothing can hand an address out before its quarantine record is gone.
 *  Returns how many were stored. */
size_t addr_pool_quarantine_expired(struct addr_pool *p, int64_t now, uint32_t *out, size_t max);

/** Mark or unmark ip as a static reservation: addr_pool_alloc never hands it
 *  out.  Does not affect a current holder.  ADDR_POOL_OK or ERANGE. */
int addr_pool_set_static(struct addr_pool *p, uint32_t ip, bool on);

/* The state of one address. */
struct addr_pool_addr {
    bool taken;
    bool is_static;
    bool quarantined;
    int64_t quarantine_until; /* when quarantined */
};
/** ADDR_POOL_OK or ERANGE. */
int addr_pool_query(struct addr_pool *p, uint32_t ip, struct addr_pool_addr *out);

struct addr_pool_stats {
    uint32_t first, last;
    size_t size;        /* last - first + 1 */
    size_t taken;       /* allocated + reserved + quarantined */
    size_t statics;     /* static reservations */
    size_t quarantined;
    size_t memory_bytes;
};
void addr_pool_stats(struct addr_pool *p, struct addr_pool_stats *st);

#endif
