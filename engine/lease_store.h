/* engine/lease_store.h — where leases are made durable, behind a small interface.
 *
 * The DHCP service talks to a struct lease_store: it reads leases lock-free
 * from store->table (lease_table_lookup_mac/ip) and changes them only through
 * the ops below, which keep the table, the address pools and the durable
 * record in step.  Today's implementation is the journal in --state-dir
 * (lease_store_journal_create); a store shared by several bootstorm nodes can
 * be another set of ops without touching the DHCP logic.
 *
 * Address ownership rules every implementation keeps:
 *  - Before committing a lease that holds an address, the caller has taken it
 *    (addr_pool_alloc / addr_pool_reserve) or already held it in the previous
 *    version of this lease.  If the commit fails, the caller gives back what it
 *    took for this commit and nothing else.
 *  - When a commit, remove or expiry moves a lease off an address, the store
 *    returns the address to its pool, after the change is queued for the
 *    durable record, so a later holder is always recorded after it.
 *
 * Acknowledgement rule: a change may be acknowledged (DHCPACK sent) once
 * ops->sync() has returned LEASE_STORE_OK after the change was committed
 * (or written_seq() >= the seq that commit returned); where power loss must
 * not lose it either, once durable_seq() >= that seq (sync_to() asks for it).
 * What survives a process crash and what survives power loss is the
 * journal's contract (lease_journal.h, --fsync-interval-ms).
 */
#ifndef BOOTSTORM_ENGINE_LEASE_STORE_H
#define BOOTSTORM_ENGINE_LEASE_STORE_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/addr_pool.h"
#include "engine/lease_journal.h"
#include "engine/lease_table.h"

enum lease_store_result {
    LEASE_STORE_OK         = 0,
    LEASE_STORE_EINVAL     = -EINVAL,
    LEASE_STORE_ENOTLOADED = -ENOTCONN, /* an op other than load before load succeeded */
    LEASE_STORE_ELOADED    = -EALREADY, /* load called twice */
    /* plus the lease_table, addr_pool and lease_journal results, passed through */
};

/* Host-state records (issues 5/6: install-once state per machine) ride in the
 * same durable record.  Their owner keeps them in memory and gives the store
 * two hooks: replay at load, and re-emit everything live at compaction. */
typedef int (*lease_store_emit_fn)(void *ctx, const struct lease_key *k, const char *name,
                                   size_t name_len, const void *value, size_t value_len);
struct lease_store_host_hooks {
    /* load: each host-state record in order (later ones supersede earlier) */
    int (*on_host_state)(void *arg, const struct lease_key *k, const char *name, size_t name_len,
                         const void *value, size_t value_len);
    /* compaction: call emit(ctx, ...) for every live host-state entry */
    int (*on_snapshot)(void *arg, lease_store_emit_fn emit, void *ctx);
    void *arg;
};

struct lease_store_load_report {
    uint64_t records;         /* durable records replayed */
    uint64_t leases;          /* leases in the table afterwards */
    uint64_t host_states;     /* host-state records handed to the hook */
    uint64_t conflicts;       /* an address held by two leases: the older was demoted to expired */
    uint64_t pool_errors;     /* held addresses a pool refused (should stay 0) */
    uint64_t truncated_bytes; /* torn tail dropped */
    char message[224];        /* the backend's note, "" if none */
};

struct lease_store;

struct lease_store_ops {
    const char *name;
    /** Fill the (empty) table and the (fresh) pools from the durable record. */
    int (*load)(struct lease_store *s, struct lease_store_load_report *rep);
    /** Insert or replace l (see the ownership rules).  expect != NULL: only if
     *  the stored lease still equals *expect (else LEASE_TABLE_ECHANGED).
     *  *seq (may be NULL) gets the durability sequence number. */
    int (*commit)(struct lease_store *s, const struct lease *l, const struct lease *expect, uint64_t *seq);
    /** Delete the lease of k, returning its address to the pool. */
    int (*remove)(struct lease_store *s, const struct lease_key *k, const struct lease *expect,
                  uint64_t *seq);
    /** DHCPDECLINE (RFC 2131 §4.3.3): the client's lease lets go of ip without
     *  freeing it, and ip is quarantined until `until` under a record keyed
     *  {LEASE_HTYPE_ADDR, ip}; expire() frees it afterwards. */
    int (*decline)(struct lease_store *s, const struct lease_key *client, uint32_t ip,
                   uint16_t subnet, int64_t until, uint64_t *seq);
    /** Look at up to `budget` table entries (resuming where the last call
     *  stopped): offered/bound leases past `expires` become expired, ended
     *  quarantines are removed, and their addresses go back to the pools.
     *  *expired (may be NULL) gets how many changed. */
    int (*expire)(struct lease_store *s, int64_t now, size_t budget, size_t *expired);
    /** Lock-free walk over the leases (lease_table_foreach semantics). */
    int (*iterate)(struct lease_store *s, lease_table_visit_cb cb, void *arg);
    /** Record a host-state entry.  The owner updates its in-memory copy first,
     *  serialising writers of one key, so that compaction sees it. */
    int (*put_host_state)(struct lease_store *s, const struct lease_key *k, const char *name,
                          size_t name_len, const void *value, size_t value_len, uint64_t *seq);
    /** The before-sleep barrier: make every change committed so far
     *  acknowledgeable (journal: lease_journal_commit). */
    int (*sync)(struct lease_store *s);
    /** -1: nothing to sync; 0: sync now; N: sync within N ms (arm a timer). */
    int (*sync_delay_ms)(struct lease_store *s);
    /** Background durability (journal: its syncer thread): after start_syncer,
     *  sync() never waits for the disk, and sync_to(seq) asks for
     *  durable_seq() >= seq and returns at once (the sticky error, or OK);
     *  notify runs on the store's thread after each attempt. */
    int (*start_syncer)(struct lease_store *s, void (*notify)(void *arg), void *arg);
    int (*sync_to)(struct lease_store *s, uint64_t seq);
    uint64_t (*written_seq)(struct lease_store *s); /* survives a process crash */
    uint64_t (*durable_seq)(struct lease_store *s); /* survives power loss */
    /** Housekeeping for an idle timer or a background thread: index rehash
     *  steps and, when due, compaction (lookups, commits and syncs go on). */
    int (*maintain)(struct lease_store *s);
    /** Sync, close, free the store (not the table or the pools). */
    int (*destroy)(struct lease_store *s);
};

struct lease_store {
    const struct lease_store_ops *ops;
    struct lease_table *table; /* lock-free reads go straight here */
};

/* Journal-backed store. */
struct lease_store_journal_config {
    const char *state_dir;                /* --state-dir */
    struct lease_journal_options journal; /* --fsync-interval-ms etc. */
    struct lease_table *table;            /* empty; owned by the caller */
    struct addr_pool *const *pools;       /* pools[subnet index], NULL entries allowed; caller-owned */
    size_t npools;
    struct lease_store_host_hooks host;   /* all members may be NULL */
};

/** Create (nothing is read until ops->load).  The config's strings and arrays
 *  are copied; the table and pools must outlive the store. */
int lease_store_journal_create(const struct lease_store_journal_config *cfg, struct lease_store **out);

/* Call-through helpers. */
static inline int lease_store_load(struct lease_store *s, struct lease_store_load_report *rep)
{
    return s->ops->load(s, rep);
}
static inline int lease_store_commit(struct lease_store *s, const struct lease *l,
                                     const struct lease *expect, uint64_t *seq)
{
    return s->ops->commit(s, l, expect, seq);
}
static inline int lease_store_remove(struct lease_store *s, const struct lease_key *k,
                                     const struct lease *expect, uint64_t *seq)
{
    return s->ops->remove(s, k, expect, seq);
}
static inline int lease_store_decline(struct lease_store *s, const struct lease_key *client,
                                      uint32_t ip, uint16_t subnet, int64_t until, uint64_t *seq)
{
    return s->ops->decline(s, client, ip, subnet, until, seq);
}
static inline int lease_store_expire(struct lease_store *s, int64_t now, size_t budget, size_t *expired)
{
    return s->ops->expire(s, now, budget, expired);
}
static inline int lease_store_iterate(struct lease_store *s, lease_table_visit_cb cb, void *arg)
{
    return s->ops->iterate(s, cb, arg);
}
static inline int lease_store_put_host_state(struct lease_store *s, const struct lease_key *k,
                                             const char *name, size_t name_len, const void *value,
                                             size_t value_len, uint64_t *seq)
{
    return s->ops->put_host_state(s, k, name, name_len, value, value_len, seq);
}
static inline int lease_store_sync(struct lease_store *s) { return s->ops->sync(s); }
static inline int lease_store_sync_delay_ms(struct lease_store *s) { return s->ops->sync_delay_ms(s); }
static inline int lease_store_start_syncer(struct lease_store *s, void (*notify)(void *arg), void *arg)
{
    return s->ops->start_syncer(s, notify, arg);
}
static inline int lease_store_sync_to(struct lease_store *s, uint64_t seq) { return s->ops->sync_to(s, seq); }
static inline uint64_t lease_store_written_seq(struct lease_store *s) { return s->ops->written_seq(s); }
static inline uint64_t lease_store_durable_seq(struct lease_store *s) { return s->ops->durable_seq(s); }
static inline int lease_store_maintain(struct lease_store *s) { return s->ops->maintain(s); }
static inline int lease_store_destroy(struct lease_store *s) { return s ? s->ops->destroy(s) : 0; }

#endif
