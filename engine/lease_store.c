/* engine/lease_store.c — the journal-backed lease store.
 *
 * Every change goes through lease_table_upsert/delete with a commit callback
 * that appends the journal record while the shard lock is held: the table
 * shows the change first and two writes to one key reach the journal in table
 * order, which is what lease_journal_compact needs to be exact. */
#include "engine/lease_store.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct js_store {
    struct lease_store base;
    char *dir;
    struct lease_journal_options jopt;
    struct lease_journal *j;
    struct addr_pool **pools;
    size_t npools;
    struct lease_store_host_hooks host;
    pthread_mutex_t scan_lock; /* the expiry cursor */
    struct lease_table_cursor cursor;
    uint64_t conflicts;        /* load only */
    /* The journal loaded held more than JS_LOAD_COMPACT_RATIO records per
     * live lease: the first maintain() compacts it (in the background, not
     * during the load) so that the next start replays half as much. */
    atomic_bool compact_after_load;
};

#define JS_LOAD_COMPACT_RATIO 2

static struct js_store *js(struct lease_store *s)
{
    return (struct js_store *)s;
}

static struct addr_pool *js_pool_for(struct js_store *s, uint16_t subnet, uint32_t ip)
{
    if (subnet < s->npools && addr_pool_contains(s->pools[subnet], ip))
        return s->pools[subnet];
    for (size_t i = 0; i < s->npools; i++) /* the subnet list changed since the lease was written */
        if (addr_pool_contains(s->pools[i], ip))
            return s->pools[i];
    return NULL; /* a static address outside every pool */
}

static void js_pool_release(struct js_store *s, const struct lease *l)
{
    /* ENOTHELD here would mean a caller committed an address it never took
     * (see the ownership rules in lease_store.h); the bit is clear either way. */
    struct addr_pool *p = js_pool_for(s, l->subnet, l->ip);
    if (p)
        addr_pool_release(p, l->ip);
}

struct js_txn {
    struct lease_journal *j;
    uint64_t seq;
};

static int js_on_commit(void *arg, const struct lease *old, const struct lease *cur)
{
    struct js_txn *x = arg;
    return cur ? lease_journal_append_upsert(x->j, cur, &x->seq)
               : lease_journal_append_delete(x->j, &old->hw, &x->seq);
}

static bool js_moves_off(const struct lease_table_txn *txn, const struct lease *cur)
{
    return txn->had_old && lease_state_holds_addr(txn->old.state) &&
           !(cur && lease_state_holds_addr(cur->state) && cur->ip == txn->old.ip);
}

static int js_write(struct js_store *s, const struct lease *l, const struct lease *expect,
                    bool release_pool, uint64_t *seq)
{
    struct js_txn x = { s->j, 0 };
    struct lease_table_txn txn = {
        .flags = expect ? LEASE_TABLE_TXN_EXPECT : 0, .expect = expect, .on_commit = js_on_commit, .arg = &x,
    };
    int rc = lease_table_upsert(s->base.table, l, &txn);
    if (rc != LEASE_TABLE_OK)
        return rc;
    if (release_pool && js_moves_off(&txn, l))
        js_pool_release(s, &txn.old);
    if (seq)
        *seq = x.seq;
    return LEASE_STORE_OK;
}

static int js_delete(struct js_store *s, const struct lease_key *k, const struct lease *expect, uint64_t *seq)
{
    struct js_txn x = { s->j, 0 };
    struct lease_table_txn txn = {
        .flags = expect ? LEASE_TABLE_TXN_EXPECT : 0, .expect = expect, .on_commit = js_on_commit, .arg = &x,
    };
    int rc = lease_table_delete(s->base.table, k, &txn);
    if (rc != LEASE_TABLE_OK)
        return rc;
    if (js_moves_off(&txn, NULL))
        js_pool_release(s, &txn.old);
    if (seq)
        *seq = x.seq;
    return LEASE_STORE_OK;
}

/* ---- load ------------------------------------------------------------------- */

static int js_replay_upsert(void *arg, const struct lease *l)
{
    struct js_store *s = arg;
    int rc = lease_table_upsert(s->base.table, l, NULL);
    if (rc == LEASE_TABLE_EADDRINUSE) {
        /* Two leases hold one address: cannot come from this store (a lease
         * leaves an address before anyone else gets it, and the journal keeps
         * that order), but a hand-edited or merged journal could.  The later
         * record wins; the earlier holder keeps the address only as a hint. */
        struct lease h;
        if (lease_table_lookup_ip(s->base.table, l->ip, &h) == LEASE_TABLE_OK) {
            h.state = LEASE_EXPIRED;
            if ((rc = lease_table_upsert(s->base.table, &h, NULL)) != LEASE_TABLE_OK)
                return rc;
            s->conflicts++;
        }
        rc = lease_table_upsert(s->base.table, l, NULL);
    }
    return rc;
}

/* Size the table for the journal before the first record: without this a
 * large journal grows each index through a dozen doublings, with every write
 * of the load moving slots of the previous array. */
static int js_replay_begin(void *arg, uint64_t upserts, uint64_t keys)
{
    struct js_store *s = arg;
    /* keys is an estimate (a few per cent); no margin is needed: reserved
     * indexes are half full at `keys` and grow only past 7/10 */
    size_t want = keys > SIZE_MAX ? SIZE_MAX : (size_t)keys;
    /* Only an optimisation: if the memory is not there in one piece the
     * table still grows as the records come, so a failure is not an error. */
    (void)lease_table_reserve(s->base.table, want);
    return 0;
}

static int js_replay_delete(void *arg, const struct lease_key *k)
{
    struct js_store *s = arg;
    int rc = lease_table_delete(s->base.table, k, NULL);
    return rc == LEASE_TABLE_ENOENT ? LEASE_TABLE_OK : rc;
}

static int js_replay_host(void *arg, const struct lease_key *k, const char *name, size_t name_len,
                          const void *value, size_t value_len)
{
    struct js_store *s = arg;
    return s->host.on_host_state ? s->host.on_host_state(s->host.arg, k, name, name_len, value, value_len)
                                 : 0;
}

struct js_rebuild {
    struct js_store *s;
    uint64_t errors;
};

/* Give the pools back the state of the table: held addresses taken,
 * declined ones quarantined. */
static int js_rebuild_pool(void *arg, const struct lease *l)
{
    struct js_rebuild *r = arg;
    if (!lease_state_holds_addr(l->state))
        return 0;
    struct addr_pool *p = js_pool_for(r->s, l->subnet, l->ip);
    if (!p)
        return 0;
    int rc = l->state == LEASE_DECLINED ? addr_pool_quarantine(p, l->ip, l->expires)
                                        : addr_pool_reserve(p, l->ip, ADDR_POOL_RESERVE_STATIC);
    if (rc != ADDR_POOL_OK)
        r->errors++;
    return 0;
}

static int js_load(struct lease_store *base, struct lease_store_load_report *rep)
{
    struct js_store *s = js(base);
    struct lease_store_load_report dummy;
    if (!rep)
        rep = &dummy;
    memset(rep, 0, sizeof *rep);
    if (s->j)
        return LEASE_STORE_ELOADED;
    struct lease_journal_replay cb = {
        .on_upsert = js_replay_upsert, .on_delete = js_replay_delete, .on_host_state = js_replay_host, .arg = s,
        .on_begin = js_replay_begin,
    };
    struct lease_journal_report jr;
    s->conflicts = 0;
    int rc = lease_journal_open(s->dir, &s->jopt, &cb, &s->j, &jr);
    memcpy(rep->message, jr.message, sizeof rep->message);
    rep->records = jr.records;
    rep->host_states = jr.host_states;
    rep->truncated_bytes = jr.truncated_bytes;
    if (rc != LEASE_JOURNAL_OK)
        return rc;
    struct js_rebuild r = { s, 0 };
    lease_table_foreach(s->base.table, js_rebuild_pool, &r);
    rep->pool_errors = r.errors;
    rep->conflicts = s->conflicts;
    rep->leases = lease_table_count(s->base.table);
    uint64_t min = s->jopt.compact_min_bytes ? s->jopt.compact_min_bytes : LEASE_JOURNAL_COMPACT_MIN_DEFAULT;
    atomic_store(&s->compact_after_load,
                 jr.file_bytes > min && jr.records > JS_LOAD_COMPACT_RATIO * rep->leases);
    return LEASE_STORE_OK;
}

/* ---- ops ------------------------------------------------------------------------ */

static int js_commit(struct lease_store *base, const struct lease *l, const struct lease *expect, uint64_t *seq)
{
    struct js_store *s = js(base);
    if (!s->j)
        return LEASE_STORE_ENOTLOADED;
    if (!l)
        return LEASE_STORE_EINVAL;
    return js_write(s, l, expect, true, seq);
}

static int js_remove(struct lease_store *base, const struct lease_key *k, const struct lease *expect, uint64_t *seq)
{
    struct js_store *s = js(base);
    if (!s->j)
        return LEASE_STORE_ENOTLOADED;
    return js_delete(s, k, expect, seq);
}

static int js_decline(struct lease_store *base, const struct lease_key *client, uint32_t ip,
                      uint16_t subnet, int64_t until, uint64_t *seq)
{
    struct js_store *s = js(base);
    if (!s->j)
        return LEASE_STORE_ENOTLOADED;
    if (!client || ip == 0)
        return LEASE_STORE_EINVAL;
    /* 1. the client's lease lets go of ip; the pool keeps it taken */
    struct lease cur;
    memset(&cur, 0, sizeof cur);
    int rc = lease_table_lookup_mac(s->base.table, client, &cur);
    if (rc == LEASE_TABLE_OK && lease_state_holds_addr(cur.state) && cur.ip == ip) {
        struct lease n = cur;
        n.state = LEASE_EXPIRED;
        n.ip = 0; /* no affinity to an address that is in use on the wire */
        if ((rc = js_write(s, &n, &cur, false, seq)) != LEASE_STORE_OK)
            return rc;
    } else if (rc != LEASE_TABLE_OK && rc != LEASE_TABLE_ENOENT) {
        return rc;
    }
    /* 2. the quarantine record holds ip */
    struct lease q;
    memset(&q, 0, sizeof q);
    uint8_t be[4] = { (uint8_t)(ip >> 24), (uint8_t)(ip >> 16), (uint8_t)(ip >> 8), (uint8_t)ip };
    lease_key_init(&q.hw, LEASE_HTYPE_ADDR, be, sizeof be);
    q.state = LEASE_DECLINED;
    q.ip = ip;
    q.subnet = subnet;
    q.expires = until;
    q.updated = cur.updated;
    if ((rc = js_write(s, &q, NULL, false, seq)) != LEASE_STORE_OK)
        return rc;
    /* 3. the pool lists it until `until` */
    struct addr_pool *p = js_pool_for(s, subnet, ip);
    if (p && (rc = addr_pool_quarantine(p, ip, until)) != ADDR_POOL_OK)
        return rc;
    return LEASE_STORE_OK;
}

struct js_due {
    int64_t now;
    struct lease *v;
    size_t n, cap;
    int err;
};

static int js_collect_due(void *arg, const struct lease *l)
{
    struct js_due *d = arg;
    if (!lease_state_holds_addr(l->state) || l->expires > d->now)
        return 0;
    if (d->n == d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 64;
        struct lease *v = realloc(d->v, cap * sizeof *v);
        if (!v) {
            d->err = LEASE_TABLE_ENOMEM;
            return 0; /* keep scanning; what was collected still gets done */
        }
        d->v = v;
        d->cap = cap;
    }
    d->v[d->n++] = *l;
    return 0;
}

static int js_expire(struct lease_store *base, int64_t now, size_t budget, size_t *expired)
{
    struct js_store *s = js(base);
    if (expired)
        *expired = 0;
    if (!s->j)
        return LEASE_STORE_ENOTLOADED;
    struct js_due d = { .now = now };
    pthread_mutex_lock(&s->scan_lock);
    int rc = lease_table_scan(s->base.table, &s->cursor, budget, js_collect_due, &d);
    pthread_mutex_unlock(&s->scan_lock);
    if (rc < 0) {
        free(d.v);
        return rc;
    }
    size_t done = 0;
    rc = LEASE_STORE_OK;
    for (size_t i = 0; i < d.n; i++) {
        struct lease *l = &d.v[i];
        int r;
        if (l->state == LEASE_DECLINED) {
            r = js_delete(s, &l->hw, l, NULL); /* quarantine over: the address is free again */
        } else {
            struct lease n = *l;
            n.state = LEASE_EXPIRED; /* ip stays as the hint for the same client's return */
            r = js_write(s, &n, l, true, NULL);
        }
        if (r == LEASE_STORE_OK)
            done++;
        else if (r != LEASE_TABLE_ECHANGED && r != LEASE_TABLE_ENOENT && rc == LEASE_STORE_OK)
            rc = r; /* renewed or removed meanwhile is fine; anything else is reported */
    }
    free(d.v);
    if (expired)
        *expired = done;
    return rc != LEASE_STORE_OK ? rc : d.err;
}

static int js_iterate(struct lease_store *base, lease_table_visit_cb cb, void *arg)
{
    return lease_table_foreach(base->table, cb, arg);
}

static int js_put_host_state(struct lease_store *base, const struct lease_key *k, const char *name,
                             size_t name_len, const void *value, size_t value_len, uint64_t *seq)
{
    struct js_store *s = js(base);
    if (!s->j)
        return LEASE_STORE_ENOTLOADED;
    return lease_journal_append_host_state(s->j, k, name, name_len, value, value_len, seq);
}

static int js_sync(struct lease_store *base)
{
    struct js_store *s = js(base);
    return s->j ? lease_journal_commit(s->j) : LEASE_STORE_ENOTLOADED;
}

static int js_sync_delay_ms(struct lease_store *base)
{
    return lease_journal_sync_delay_ms(js(base)->j);
}

static int js_start_syncer(struct lease_store *base, void (*notify)(void *arg), void *arg)
{
    struct js_store *s = js(base);
    return s->j ? lease_journal_syncer_start(s->j, notify, arg) : LEASE_STORE_ENOTLOADED;
}

static int js_sync_to(struct lease_store *base, uint64_t seq)
{
    struct js_store *s = js(base);
    return s->j ? lease_journal_sync_to(s->j, seq) : LEASE_STORE_ENOTLOADED;
}

static uint64_t js_written_seq(struct lease_store *base)
{
    return lease_journal_written_seq(js(base)->j);
}

static uint64_t js_durable_seq(struct lease_store *base)
{
    return lease_journal_durable_seq(js(base)->j);
}

static int js_snap_lease(void *arg, const struct lease *l)
{
    return lease_journal_snapshot_lease(arg, l);
}

static int js_snap_host(void *ctx, const struct lease_key *k, const char *name, size_t name_len,
                        const void *value, size_t value_len)
{
    return lease_journal_snapshot_host_state(ctx, k, name, name_len, value, value_len);
}

static int js_snapshot(void *arg, struct lease_journal_snapshot *snap)
{
    struct js_store *s = arg;
    int rc = lease_table_foreach(s->base.table, js_snap_lease, snap);
    if (rc == 0 && s->host.on_snapshot)
        rc = s->host.on_snapshot(s->host.arg, js_snap_host, snap);
    return rc;
}

static int js_maintain(struct lease_store *base)
{
    struct js_store *s = js(base);
    if (!s->j)
        return LEASE_STORE_ENOTLOADED;
    lease_table_maintain(s->base.table, 4096);
    if (!atomic_exchange(&s->compact_after_load, false) &&
        !lease_journal_should_compact(s->j, lease_table_count(s->base.table)))
        return LEASE_STORE_OK;
    return lease_journal_compact(s->j, js_snapshot, s);
}

static int js_destroy(struct lease_store *base)
{
    struct js_store *s = js(base);
    int rc = lease_journal_close(s->j);
    pthread_mutex_destroy(&s->scan_lock);
    free(s->pools);
    free(s->dir);
    free(s);
    return rc;
}

static const struct lease_store_ops js_ops = {
    .name = "journal",
    .load = js_load,
    .commit = js_commit,
    .remove = js_remove,
    .decline = js_decline,
    .expire = js_expire,
    .iterate = js_iterate,
    .put_host_state = js_put_host_state,
    .sync = js_sync,
    .sync_delay_ms = js_sync_delay_ms,
    .start_syncer = js_start_syncer,
    .sync_to = js_sync_to,
    .written_seq = js_written_seq,
    .durable_seq = js_durable_seq,
    .maintain = js_maintain,
    .destroy = js_destroy,
};

int lease_store_journal_create(const struct lease_store_journal_config *cfg, struct lease_store **out)
{
    if (!cfg || !out || !cfg->state_dir || !cfg->table || (cfg->npools && !cfg->pools))
        return LEASE_STORE_EINVAL;
    *out = NULL;
    struct js_store *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    atomic_init(&s->compact_after_load, false);
    s->dir = strdup(cfg->state_dir);
    s->pools = cfg->npools ? calloc(cfg->npools, sizeof *s->pools) : NULL;
    if (!s->dir || (cfg->npools && !s->pools) || pthread_mutex_init(&s->scan_lock, NULL) != 0) {
        free(s->dir);
        free(s->pools);
        free(s);
        return -ENOMEM;
    }
    if (cfg->npools)
        memcpy(s->pools, cfg->pools, cfg->npools * sizeof *s->pools);
    s->npools = cfg->npools;
    s->jopt = cfg->journal;
    s->host = cfg->host;
    s->base.ops = &js_ops;
    s->base.table = cfg->table;
    *out = &s->base;
    return LEASE_STORE_OK;
}
