/* engine/lease_table.h — the in-memory DHCP lease table.
 *
 * Leases are keyed by hardware address (htype + chaddr, RFC 2131 §4.2: the
 * client-id changes between PXE ROM, iPXE and the installer, the chaddr does
 * not) and sharded by a hash of it.  A second index maps IPv4 address → lease.
 *
 * Concurrency contract
 *  - Lookups (by MAC, by IP) and iteration never take a lock and never wait for
 *    a writer to finish: every entry is guarded by a sequence counter (seqlock)
 *    and a reader that sees it change copies the entry again.  All shared words
 *    are C11 atomics, so the table is data-race free (TSan-clean).
 *  - Writers (upsert, delete) take one mutex per MAC shard, plus, briefly, one
 *    mutex per IP-index shard, always in that order.
 *  - Indexes are open-addressing hashes that grow incrementally, redis
 *    dict.c style: a write moves a bounded number of slots from the old array to
 *    the new one, readers look in both.  Replaced arrays are kept until
 *    lease_table_destroy() so that a reader still probing one stays safe;
 *    that costs at most as much again as the live index.
 *  - Entries never move: they live in fixed-size chunks; a deleted entry goes
 *    on a per-shard free list and a reader holding a stale reference notices
 *    the key no longer matches.
 *  - The IP index also arbitrates: an address can be held (offered, bound,
 *    declined) by at most one lease.  A write that would give a held address to
 *    a second hardware address fails with LEASE_TABLE_EADDRINUSE.
 *
 * Memory: 120 bytes per entry plus 8 bytes per index slot in two indexes
 * (load between 0.35 and 0.7 after growth): measured 165 bytes per lease for a
 * table created with expected_leases, 207 for one grown from empty (which
 * also keeps its replaced index arrays).  lease_table_stats() reports it.
 */
#ifndef BOOTSTORM_ENGINE_LEASE_TABLE_H
#define BOOTSTORM_ENGINE_LEASE_TABLE_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LEASE_HWADDR_MAX       16  /* chaddr field size, RFC 2131 §2 */
#define LEASE_CLIENT_ID_MAX    32  /* option 61 copy, truncated: informational */
#define LEASE_HOSTNAME_MAX     31  /* option 12 copy, truncated; hostname[] is NUL-terminated */
#define LEASE_TABLE_SHARDS_MAX 1024

/* htype 0 is reserved in the ARP hardware type registry; bootstorm uses it for
 * records that belong to an address rather than a machine (a DECLINEd address
 * in quarantine): hlen 4, chaddr = the IPv4 address in network byte order. */
#define LEASE_HTYPE_ADDR 0

/* A hardware address.  Bytes of chaddr past hlen are zero in every key the
 * table stores or returns (lease_key_init and the table normalise them). */
struct lease_key {
    uint8_t htype;                    /* ARP hardware type: 1 = Ethernet */
    uint8_t hlen;                     /* 1..LEASE_HWADDR_MAX */
    uint8_t chaddr[LEASE_HWADDR_MAX];
};

enum lease_state {
    LEASE_STATE_NONE = 0, /* never stored: marks a free entry */
    LEASE_OFFERED,        /* holds ip until expires (the offer's hold time) */
    LEASE_BOUND,          /* holds ip until expires */
    LEASE_DECLINED,       /* address quarantined until expires (RFC 2131 §4.3.3) */
    LEASE_RELEASED,       /* client said DHCPRELEASE; ip kept as a hint only */
    LEASE_EXPIRED,        /* lease ran out; ip kept as a hint only */
    LEASE_STATE_COUNT
};

enum lease_flags {
    LEASE_F_STATIC  = 1 << 0, /* address comes from a static reservation */
    LEASE_F_KNOWN   = 1 << 1, /* hardware address is in the inventory */
    LEASE_F_PROBING = 1 << 2, /* an offer waits for an address probe (STYLE §2.3.4) */
    LEASE_F_BOOTP   = 1 << 3, /* plain BOOTP client, no lease time */
};

/* One lease.  A plain value: the table copies it in and out; 112 bytes, no
 * implicit padding.  Times are unix seconds; ip is in host byte order. */
struct lease {
    struct lease_key hw;                       /* key */
    uint8_t  state;                            /* enum lease_state */
    uint8_t  client_id_len;                    /* bytes used in client_id */
    uint16_t subnet;                           /* index of the configured subnet */
    uint16_t flags;                            /* enum lease_flags */
    uint32_t ip;                               /* 0 = none */
    uint32_t reserved;                         /* zero */
    int64_t  expires;                          /* end of the hold (offer, lease, quarantine) */
    int64_t  updated;                          /* last transaction time (cltt) */
    uint8_t  client_id[LEASE_CLIENT_ID_MAX];   /* option 61 as last seen, truncated */
    char     hostname[LEASE_HOSTNAME_MAX + 1]; /* option 12, NUL-terminated, may be "" */
};

/* Results.  Each is a negative errno so it passes through engine code
 * unchanged (STYLE §2.9), but callers compare against the names. */
enum lease_table_result {
    LEASE_TABLE_OK         = 0,
    LEASE_TABLE_ENOENT     = -ENOENT,     /* no lease for that key / address */
    LEASE_TABLE_EINVAL     = -EINVAL,     /* bad key, state, length or shard count */
    LEASE_TABLE_ENOMEM     = -ENOMEM,
    LEASE_TABLE_EADDRINUSE = -EADDRINUSE, /* ip is held by another hardware address */
    LEASE_TABLE_ECHANGED   = -EAGAIN,     /* the expectation in the txn did not hold */
    LEASE_TABLE_EFULL      = -ENOSPC,     /* the shard ran out of entry numbers */
};

/* Scan results (lease_table_scan). */
enum lease_table_scan_result {
    LEASE_TABLE_SCAN_MORE = 0, /* the cursor stopped inside the table */
    LEASE_TABLE_SCAN_DONE = 1, /* the pass reached the end; the cursor was reset */
};

struct lease_table;

/** Build a key; bytes of chaddr past hlen are zeroed.  Returns LEASE_TABLE_EINVAL
 *  unless 1 <= hlen <= LEASE_HWADDR_MAX. */
int lease_key_init(struct lease_key *k, uint8_t htype, const uint8_t *chaddr, size_t hlen);
bool lease_key_equal(const struct lease_key *a, const struct lease_key *b);

/** True for the states in which the lease's ip is taken: offered, bound, declined. */
bool lease_state_holds_addr(unsigned state);
/** "offered", "bound", ... ; "invalid" for anything else.  Static storage. */
const char *lease_state_name(unsigned state);

/** Check a lease before storing it: key, state (not NONE), client_id_len,
 *  hostname NUL-terminated within its array, reserved zero, and an address for
 *  the holding states.  LEASE_TABLE_OK or LEASE_TABLE_EINVAL. */
int lease_validate(const struct lease *l);

/** Create a table with `shards` MAC shards (a power of two, 1..LEASE_TABLE_SHARDS_MAX).
 *  `expected_leases` sizes the indexes so that that many leases fit without any
 *  rehash (0 is fine: the table then grows incrementally).  The caller owns
 *  *out and frees it with lease_table_destroy(). */
int lease_table_create(unsigned shards, size_t expected_leases, struct lease_table **out);
/** Free everything.  No reader or writer may be inside the table. */
void lease_table_destroy(struct lease_table *t);

/** Lock-free lookup by hardware address; copies the lease into *out.
 *  LEASE_TABLE_OK, LEASE_TABLE_ENOENT or LEASE_TABLE_EINVAL (bad key). */
int lease_table_lookup_mac(const struct lease_table *t, const struct lease_key *k,
                           struct lease *out);
/** Lock-free lookup of the lease that holds `ip` (offered, bound or declined);
 *  a released or expired lease that merely remembers ip is not returned. */
int lease_table_lookup_ip(const struct lease_table *t, uint32_t ip, struct lease *out);

/** Called by a writer with the shard lock held, after the table shows the
 *  change and before the lock is released: this is where the journal append
 *  goes, so that the journal order of two writes to one key is their table
 *  order.  `old` is NULL for an insert, `cur` NULL for a delete.  A non-zero
 *  return undoes the change and becomes the result of the write.  The callback
 *  must not call back into the table. */
typedef int (*lease_table_commit_cb)(void *arg, const struct lease *old, const struct lease *cur);

enum lease_table_txn_flags {
    LEASE_TABLE_TXN_EXPECT      = 1 << 0, /* fail with ECHANGED unless the stored
                                             lease equals *expect byte for byte */
    LEASE_TABLE_TXN_CREATE_ONLY = 1 << 1, /* fail with ECHANGED if the key exists */
};

/* Optional write parameters, and the previous value on return. */
struct lease_table_txn {
    unsigned flags;                  /* enum lease_table_txn_flags */
    const struct lease *expect;      /* with LEASE_TABLE_TXN_EXPECT */
    lease_table_commit_cb on_commit; /* may be NULL */
    void *arg;
    struct lease old;                /* out: the lease before the write */
    bool had_old;                    /* out: whether there was one */
};

/** Insert or replace the lease for l->hw (validated with lease_validate and
 *  normalised).  txn may be NULL.  Errors: EINVAL, EADDRINUSE (another key holds
 *  l->ip), ECHANGED, ENOMEM, EFULL, or the commit callback's value; on any error
 *  the table is unchanged. */
int lease_table_upsert(struct lease_table *t, const struct lease *l, struct lease_table_txn *txn);
/** Remove the lease for k.  LEASE_TABLE_ENOENT if there is none. */
int lease_table_delete(struct lease_table *t, const struct lease_key *k, struct lease_table_txn *txn);

/** Visitor: return 0 to go on; anything else stops the walk and is returned. */
typedef int (*lease_table_visit_cb)(void *arg, const struct lease *l);

/** Lock-free walk over every lease.  Each lease is a consistent copy; the walk
 *  as a whole is not a point-in-time snapshot (a lease written during the walk
 *  may be seen old or new, and one that moves entries may be missed or seen
 *  twice).  Writers are not held up. */
int lease_table_foreach(const struct lease_table *t, lease_table_visit_cb cb, void *arg);

/* Position of an incremental scan; zero-initialise to start. */
struct lease_table_cursor {
    uint32_t shard;
    uint32_t index;
};
/** Visit at most `budget` entry slots from *c on (for expiry timers that must
 *  stay short).  Returns LEASE_TABLE_SCAN_MORE or LEASE_TABLE_SCAN_DONE (the
 *  cursor is then back at the start), or the callback's non-zero value. */
int lease_table_scan(const struct lease_table *t, struct lease_table_cursor *c, size_t budget,
                     lease_table_visit_cb cb, void *arg);

/** Move pending index rehash work forward by up to `budget` slots per shard
 *  (writes do this too; call it from an idle timer so that a table that stops
 *  being written does not keep two arrays).  Takes the writer locks. */
void lease_table_maintain(struct lease_table *t, size_t budget);
/** Grow the indexes now so that `expected_leases` fit without any rehash (as
 *  if the table had been created with that number); never shrinks.  For a
 *  bulk load into a table already in use: the live slots move in one pass
 *  under each index's lock instead of in steps spread over later writes.
 *  LEASE_TABLE_OK, LEASE_TABLE_EINVAL, or LEASE_TABLE_ENOMEM (the table is
 *  unchanged where it failed and still works: it grows as it goes). */
int lease_table_reserve(struct lease_table *t, size_t expected_leases);

struct lease_table_stats {
    size_t leases;           /* stored leases */
    size_t entries;          /* entries handed out (leases + free list) */
    size_t index_slots;      /* slots in current + migrating index arrays */
    size_t rehashing;        /* index sets with a migration in progress */
    size_t memory_bytes;     /* everything the table allocated */
    uint64_t read_retries;   /* seqlock retries seen by readers */
};
/** Counters, read without locks (each figure is exact only when no write runs). */
void lease_table_stats(const struct lease_table *t, struct lease_table_stats *st);
size_t lease_table_count(const struct lease_table *t);

#endif
