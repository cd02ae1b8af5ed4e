/* tests/unit/engine/test_lease_store.c — the journal-backed lease store:
 * table, pools and journal kept in step across commit, expiry, decline,
 * restart (also after kill -9), host state and compaction. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/lease_store.h"

#define IP(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))
#define POOL_FIRST IP(10, 1, 0, 10)
#define POOL_LAST  IP(10, 1, 0, 209) /* 200 addresses */

/* One "server": table + one pool (subnet 0) + store. */
struct srv {
    char dir[64];
    struct lease_table *t;
    struct addr_pool *pool;
    struct lease_store *s;
    struct lease_store_load_report rep;
    /* host state kept by its owner, for the hooks */
    struct { struct lease_key k; char name[16]; char value[16]; size_t vlen; } host[8];
    int nhost;
};

static int on_host(void *arg, const struct lease_key *k, const char *name, size_t nlen, const void *v, size_t vlen)
{
    struct srv *x = arg;
    int i = 0;
    while (i < x->nhost && !(lease_key_equal(&x->host[i].k, k) && strncmp(x->host[i].name, name, nlen) == 0))
        i++;
    if (i == x->nhost) {
        cr_assert_lt(x->nhost, 8);
        x->nhost++;
        x->host[i].k = *k;
        memset(x->host[i].name, 0, sizeof x->host[i].name);
        memcpy(x->host[i].name, name, nlen);
    }
    memcpy(x->host[i].value, v, vlen);
    x->host[i].vlen = vlen;
    return 0;
}

static int on_snapshot(void *arg, lease_store_emit_fn emit, void *ctx)
{
    struct srv *x = arg;
    for (int i = 0; i < x->nhost; i++) {
        int rc = emit(ctx, &x->host[i].k, x->host[i].name, strlen(x->host[i].name), x->host[i].value, x->host[i].vlen);
        if (rc)
            return rc;
    }
    return 0;
}

static void srv_start(struct srv *x, uint64_t compact_min)
{
    cr_assert_eq(lease_table_create(4, 0, &x->t), LEASE_TABLE_OK);
    cr_assert_eq(addr_pool_create(POOL_FIRST, POOL_LAST, &x->pool), ADDR_POOL_OK);
    struct addr_pool *pools[1] = { x->pool };
    struct lease_store_journal_config cfg = {
        .state_dir = x->dir,
        .journal = { .compact_min_bytes = compact_min },
        .table = x->t,
        .pools = pools,
        .npools = 1,
        .host = { .on_host_state = on_host, .on_snapshot = on_snapshot, .arg = x },
    };
    x->nhost = 0;
    cr_assert_eq(lease_store_journal_create(&cfg, &x->s), LEASE_STORE_OK);
    cr_assert_eq(lease_store_load(x->s, &x->rep), LEASE_STORE_OK, "load: %s", x->rep.message);
}

static void srv_stop(struct srv *x)
{
    cr_assert_eq(lease_store_destroy(x->s), LEASE_STORE_OK);
    lease_table_destroy(x->t);
    addr_pool_destroy(x->pool);
}

static void srv_init(struct srv *x)
{
    memset(x, 0, sizeof *x);
    strcpy(x->dir, "/tmp/bs-store-XXXXXX");
    cr_assert_not_null(mkdtemp(x->dir));
}

static void srv_cleanup(struct srv *x)
{
    char p[128];
    const char *names[] = { LEASE_JOURNAL_FILE, LEASE_JOURNAL_FILE ".tmp", "leases.lock" };
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", x->dir, names[i]);
        unlink(p);
    }
    rmdir(x->dir);
}

static struct lease_key mac(uint32_t n)
{
    uint8_t b[6] = { 0x02, 0x00, (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n };
    struct lease_key k;
    lease_key_init(&k, 1, b, sizeof b);
    return k;
}

/* What the DHCP service does for a new client: take an address, commit. */
static struct lease give(struct srv *x, uint32_t n, unsigned state, int64_t expires)
{
    struct lease l;
    memset(&l, 0, sizeof l);
    l.hw = mac(n);
    l.state = (uint8_t)state;
    cr_assert_eq(addr_pool_alloc(x->pool, &l.ip), ADDR_POOL_OK);
    l.expires = expires;
    l.updated = expires - 600;
    snprintf(l.hostname, sizeof l.hostname, "n%u", n);
    uint64_t seq = 0;
    cr_assert_eq(lease_store_commit(x->s, &l, NULL, &seq), LEASE_STORE_OK);
    cr_assert_gt(seq, 0);
    return l;
}

static size_t pool_taken(struct srv *x)
{
    struct addr_pool_stats st;
    addr_pool_stats(x->pool, &st);
    return st.taken;
}

Test(lease_store, ops_before_load_are_refused)
{
    struct srv x;
    srv_init(&x);
    cr_assert_eq(lease_table_create(1, 0, &x.t), LEASE_TABLE_OK);
    struct lease_store_journal_config cfg = { .state_dir = x.dir, .table = x.t };
    cr_assert_eq(lease_store_journal_create(&cfg, &x.s), LEASE_STORE_OK);
    struct lease l;
    memset(&l, 0, sizeof l);
    cr_assert_eq(lease_store_commit(x.s, &l, NULL, NULL), LEASE_STORE_ENOTLOADED);
    cr_assert_eq(lease_store_sync(x.s), LEASE_STORE_ENOTLOADED);
    cr_assert_eq(lease_store_load(x.s, NULL), LEASE_STORE_OK);
    cr_assert_eq(lease_store_load(x.s, NULL), LEASE_STORE_ELOADED);
    cr_assert_eq(lease_store_commit(x.s, &l, NULL, NULL), LEASE_TABLE_EINVAL, "an invalid lease");
    cr_assert_eq(lease_store_destroy(x.s), LEASE_STORE_OK);
    struct lease_store_journal_config bad = { .state_dir = NULL, .table = x.t };
    cr_assert_eq(lease_store_journal_create(&bad, &x.s), LEASE_STORE_EINVAL);
    lease_table_destroy(x.t);
    srv_cleanup(&x);
}

Test(lease_store, restart_restores_leases_and_pool)
{
    struct srv x;
    srv_init(&x);
    srv_start(&x, 0);
    cr_assert_eq(x.rep.leases, 0);
    uint32_t held[20];
    for (uint32_t i = 0; i < 20; i++)
        held[i] = give(&x, i, i % 2 ? LEASE_BOUND : LEASE_OFFERED, 5000 + i).ip;
    cr_assert_eq(lease_store_sync(x.s), LEASE_STORE_OK);
    cr_assert_eq(lease_store_durable_seq(x.s), 20);
    cr_assert_eq(lease_store_written_seq(x.s), 20);
    srv_stop(&x);

    srv_start(&x, 0);
    cr_assert_eq(x.rep.leases, 20);
    cr_assert_eq(x.rep.records, 20);
    cr_assert_eq(x.rep.pool_errors, 0);
    cr_assert_eq(x.rep.conflicts, 0);
    cr_assert_eq(pool_taken(&x), 20);
    for (uint32_t i = 0; i < 20; i++) {
        struct lease got;
        struct lease_key k = mac(i);
        cr_assert_eq(lease_table_lookup_mac(x.s->table, &k, &got), LEASE_TABLE_OK);
        cr_assert_eq(got.ip, held[i]);
        cr_assert_eq(got.expires, 5000 + i);
        struct addr_pool_addr a;
        cr_assert_eq(addr_pool_query(x.pool, held[i], &a), ADDR_POOL_OK);
        cr_assert(a.taken, "restored lease's address is free in the pool");
    }
    /* the remaining 180 addresses are all someone else's to take, never the 20 */
    for (int i = 0; i < 180; i++) {
        uint32_t ip;
        cr_assert_eq(addr_pool_alloc(x.pool, &ip), ADDR_POOL_OK);
        for (int h = 0; h < 20; h++)
            cr_assert_neq(ip, held[h], "address %08x handed to a second machine", ip);
    }
    uint32_t ip;
    cr_assert_eq(addr_pool_alloc(x.pool, &ip), ADDR_POOL_EXHAUSTED);
    srv_stop(&x);
    srv_cleanup(&x);
}

Test(lease_store, commit_moves_and_remove_release_addresses)
{
    struct srv x;
    srv_init(&x);
    srv_start(&x, 0);
    struct lease a = give(&x, 1, LEASE_OFFERED, 100);
    cr_assert_eq(pool_taken(&x), 1);
    /* same client, another address (e.g. it asked for one): the first goes back */
    struct lease b = a;
    cr_assert_eq(addr_pool_alloc(x.pool, &b.ip), ADDR_POOL_OK);
    b.state = LEASE_BOUND;
    cr_assert_eq(lease_store_commit(x.s, &b, &a, NULL), LEASE_STORE_OK);
    cr_assert_eq(pool_taken(&x), 1);
    struct addr_pool_addr st;
    addr_pool_query(x.pool, a.ip, &st);
    cr_assert_not(st.taken);
    /* a stale expectation is refused and changes nothing */
    cr_assert_eq(lease_store_commit(x.s, &b, &a, NULL), LEASE_TABLE_ECHANGED);
    /* release keeps the lease (for affinity) but frees the address */
    struct lease r = b;
    r.state = LEASE_RELEASED;
    cr_assert_eq(lease_store_commit(x.s, &r, &b, NULL), LEASE_STORE_OK);
    cr_assert_eq(pool_taken(&x), 0);
    struct lease got;
    cr_assert_eq(lease_table_lookup_ip(x.t, b.ip, &got), LEASE_TABLE_ENOENT);
    /* bound again on the same address, then removed */
    cr_assert_eq(addr_pool_reserve(x.pool, b.ip, 0), ADDR_POOL_OK);
    cr_assert_eq(lease_store_commit(x.s, &b, &r, NULL), LEASE_STORE_OK);
    cr_assert_eq(lease_store_remove(x.s, &b.hw, NULL, NULL), LEASE_STORE_OK);
    cr_assert_eq(pool_taken(&x), 0);
    cr_assert_eq(lease_store_remove(x.s, &b.hw, NULL, NULL), LEASE_TABLE_ENOENT);
    /* another machine cannot commit an address that a lease holds */
    struct lease c = give(&x, 2, LEASE_BOUND, 100), d = c;
    d.hw = mac(3);
    cr_assert_eq(lease_store_commit(x.s, &d, NULL, NULL), LEASE_TABLE_EADDRINUSE);
    cr_assert_eq(lease_store_sync(x.s), LEASE_STORE_OK);
    srv_stop(&x);

    srv_start(&x, 0);
    cr_assert_eq(x.rep.leases, 1);
    cr_assert_eq(pool_taken(&x), 1);
    cr_assert_eq(lease_table_lookup_ip(x.t, c.ip, &got), LEASE_TABLE_OK);
    srv_stop(&x);
    srv_cleanup(&x);
}

struct count_ctx {
    int bound, expired, other;
};

static int count_states(void *arg, const struct lease *l)
{
    struct count_ctx *c = arg;
    if (l->state == LEASE_BOUND)
        c->bound++;
    else if (l->state == LEASE_EXPIRED)
        c->expired++;
    else
        c->other++;
    return 0;
}

Test(lease_store, expiry_returns_addresses_and_is_durable)
{
    struct srv x;
    srv_init(&x);
    srv_start(&x, 0);
    for (uint32_t i = 0; i < 50; i++)
        give(&x, i, LEASE_BOUND, i < 30 ? 1000 : 9000);
    size_t n = 0, total = 0;
    cr_assert_eq(lease_store_expire(x.s, 999, 1000, &n), LEASE_STORE_OK);
    cr_assert_eq(n, 0);
    /* small budgets: the cursor resumes where it stopped */
    for (int pass = 0; pass < 20; pass++) {
        cr_assert_eq(lease_store_expire(x.s, 1000, 7, &n), LEASE_STORE_OK);
        total += n;
    }
    cr_assert_eq(total, 30);
    cr_assert_eq(pool_taken(&x), 20);
    struct count_ctx c = { 0 };
    cr_assert_eq(lease_store_iterate(x.s, count_states, &c), 0);
    cr_assert_eq(c.bound, 20);
    cr_assert_eq(c.expired, 30);
    /* an expired lease keeps its address as a hint for the same client */
    struct lease got;
    struct lease_key k = mac(3);
    cr_assert_eq(lease_table_lookup_mac(x.t, &k, &got), LEASE_TABLE_OK);
    cr_assert_eq(got.state, LEASE_EXPIRED);
    cr_assert_neq(got.ip, 0);
    cr_assert_eq(lease_table_lookup_ip(x.t, got.ip, &got), LEASE_TABLE_ENOENT);
    cr_assert_eq(lease_store_sync(x.s), LEASE_STORE_OK);
    srv_stop(&x);

    srv_start(&x, 0);
    cr_assert_eq(pool_taken(&x), 20, "expiry survived the restart");
    memset(&c, 0, sizeof c);
    lease_store_iterate(x.s, count_states, &c);
    cr_assert_eq(c.expired, 30);
    srv_stop(&x);
    srv_cleanup(&x);
}

Test(lease_store, decline_quarantines_until_expiry)
{
    struct srv x;
    srv_init(&x);
    srv_start(&x, 0);
    struct lease a = give(&x, 1, LEASE_BOUND, 100);
    cr_assert_eq(lease_store_decline(x.s, &a.hw, a.ip, 0, 5000, NULL), LEASE_STORE_OK);
    struct lease got;
    cr_assert_eq(lease_table_lookup_mac(x.t, &a.hw, &got), LEASE_TABLE_OK);
    cr_assert_eq(got.state, LEASE_EXPIRED);
    cr_assert_eq(got.ip, 0, "the client forgets the declined address");
    cr_assert_eq(lease_table_lookup_ip(x.t, a.ip, &got), LEASE_TABLE_OK);
    cr_assert_eq(got.state, LEASE_DECLINED);
    cr_assert_eq(got.hw.htype, LEASE_HTYPE_ADDR);
    cr_assert_eq(got.expires, 5000);
    struct addr_pool_addr st;
    addr_pool_query(x.pool, a.ip, &st);
    cr_assert(st.taken && st.quarantined);
    cr_assert_eq(st.quarantine_until, 5000);
    cr_assert_eq(lease_store_sync(x.s), LEASE_STORE_OK);
    srv_stop(&x);

    srv_start(&x, 0); /* the quarantine survives a restart */
    addr_pool_query(x.pool, a.ip, &st);
    cr_assert(st.taken && st.quarantined, "quarantine lost across restart");
    size_t n;
    cr_assert_eq(lease_store_expire(x.s, 4999, 1000, &n), LEASE_STORE_OK);
    cr_assert_eq(n, 0);
    cr_assert_eq(lease_store_expire(x.s, 5000, 1000, &n), LEASE_STORE_OK);
    cr_assert_eq(n, 1);
    addr_pool_query(x.pool, a.ip, &st);
    cr_assert(!st.taken && !st.quarantined);
    cr_assert_eq(lease_table_lookup_ip(x.t, a.ip, &got), LEASE_TABLE_ENOENT);
    srv_stop(&x);
    srv_cleanup(&x);
}

Test(lease_store, host_state_survives_restart_and_compaction)
{
    struct srv x;
    srv_init(&x);
    srv_start(&x, 4096);
    struct lease_key k = mac(7);
    /* the owner updates its copy, then records it */
    on_host(&x, &k, "installed", 9, "no", 2);
    cr_assert_eq(lease_store_put_host_state(x.s, &k, "installed", 9, "no", 2, NULL), LEASE_STORE_OK);
    on_host(&x, &k, "installed", 9, "yes", 3);
    cr_assert_eq(lease_store_put_host_state(x.s, &k, "installed", 9, "yes", 3, NULL), LEASE_STORE_OK);
    /* lots of lease churn so that maintain() compacts */
    struct lease a = give(&x, 1, LEASE_BOUND, 100);
    for (int i = 0; i < 400; i++) {
        struct lease b = a;
        b.expires = 100 + i + 1;
        cr_assert_eq(lease_store_commit(x.s, &b, &a, NULL), LEASE_STORE_OK);
        a = b;
    }
    cr_assert_eq(lease_store_sync(x.s), LEASE_STORE_OK);
    char path[128];
    snprintf(path, sizeof path, "%s/%s", x.dir, LEASE_JOURNAL_FILE);
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long before = ftell(f);
    fclose(f);
    cr_assert_eq(lease_store_maintain(x.s), LEASE_STORE_OK);
    f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long after = ftell(f);
    fclose(f);
    cr_assert_lt(after * 10, before, "maintain compacted %ld -> %ld", before, after);
    srv_stop(&x);

    srv_start(&x, 4096);
    cr_assert_eq(x.nhost, 1);
    cr_assert_eq(x.host[0].vlen, 3);
    cr_assert_eq(memcmp(x.host[0].value, "yes", 3), 0);
    struct lease got;
    cr_assert_eq(lease_table_lookup_mac(x.t, &a.hw, &got), LEASE_TABLE_OK);
    cr_assert_eq(got.expires, 500);
    cr_assert_eq(pool_taken(&x), 1);
    srv_stop(&x);
    srv_cleanup(&x);
}

static long journal_bytes(struct srv *x)
{
    char path[128];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", x->dir, LEASE_JOURNAL_FILE);
    cr_assert_eq(stat(path, &st), 0);
    return (long)st.st_size;
}

/* Three records per lease is below the running compaction's ratio (4), but a
 * load that finds more than two per lease has maintain() compact once. */
Test(lease_store, first_maintain_after_load_compacts_a_journal_of_old_records)
{
    struct srv x;
    srv_init(&x);
    srv_start(&x, 4096);
    struct lease cur[30];
    for (uint32_t i = 0; i < 30; i++) {
        cur[i] = give(&x, i, LEASE_OFFERED, 1000 + i);
        for (int v = 1; v <= 2; v++) {
            struct lease b = cur[i];
            b.state = LEASE_BOUND;
            b.expires = 2000 + 10 * i + v;
            cr_assert_eq(lease_store_commit(x.s, &b, &cur[i], NULL), LEASE_STORE_OK);
            cur[i] = b;
        }
    }
    cr_assert_eq(lease_store_sync(x.s), LEASE_STORE_OK);
    cr_assert_eq(lease_store_maintain(x.s), LEASE_STORE_OK); /* 3 per lease: the running rule waits */
    long before = journal_bytes(&x);
    cr_assert_gt(before, 4096);
    srv_stop(&x);

    srv_start(&x, 4096);
    cr_assert_eq(x.rep.records, 90);
    cr_assert_eq(x.rep.leases, 30);
    cr_assert_eq(journal_bytes(&x), before, "the load itself does not rewrite the journal");
    cr_assert_eq(lease_store_maintain(x.s), LEASE_STORE_OK);
    long after = journal_bytes(&x);
    cr_assert_lt(after * 5, before * 2, "maintain compacted %ld -> %ld", before, after);
    cr_assert_eq(lease_store_maintain(x.s), LEASE_STORE_OK);
    cr_assert_eq(journal_bytes(&x), after, "only once");
    srv_stop(&x);

    srv_start(&x, 4096);
    cr_assert_eq(x.rep.records, 30);
    cr_assert_eq(x.rep.leases, 30);
    cr_assert_eq(pool_taken(&x), 30);
    for (uint32_t i = 0; i < 30; i++) {
        struct lease got;
        cr_assert_eq(lease_table_lookup_mac(x.t, &cur[i].hw, &got), LEASE_TABLE_OK);
        cr_assert_eq(got.expires, 2000 + 10 * i + 2);
        cr_assert_eq(got.state, LEASE_BOUND);
    }
    srv_stop(&x);
    srv_cleanup(&x);
}

/* kill -9 under load: what was synced is there, nothing synced is lost, and no
 * address can go to two machines afterwards. */
Test(lease_store, kill9_then_restart_loses_no_synced_lease, .timeout = 60)
{
    struct srv x;
    srv_init(&x);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        srv_start(&x, 0);
        for (uint32_t i = 0; i < 50; i++)
            give(&x, i, LEASE_BOUND, 9000);
        if (lease_store_sync(x.s) != 0) /* the ACKs for these 50 would go out now */
            _exit(3);
        for (uint32_t i = 50; i < 55; i++) /* committed, never synced, never ACKed */
            give(&x, i, LEASE_OFFERED, 9000);
        kill(getpid(), SIGKILL);
        _exit(4);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child status %d", status);

    srv_start(&x, 0);
    cr_assert_eq(x.rep.leases, 50);
    cr_assert_eq(pool_taken(&x), 50);
    uint32_t held[50];
    for (uint32_t i = 0; i < 50; i++) {
        struct lease got;
        struct lease_key k = mac(i);
        cr_assert_eq(lease_table_lookup_mac(x.t, &k, &got), LEASE_TABLE_OK, "acknowledged lease %u lost", i);
        held[i] = got.ip;
    }
    for (int i = 0; i < 150; i++) {
        uint32_t ip;
        cr_assert_eq(addr_pool_alloc(x.pool, &ip), ADDR_POOL_OK);
        for (int h = 0; h < 50; h++)
            cr_assert_neq(ip, held[h], "address %08x handed to a second machine", ip);
    }
    srv_stop(&x);
    srv_cleanup(&x);
}
