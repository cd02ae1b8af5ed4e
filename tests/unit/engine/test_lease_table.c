/* tests/unit/engine/test_lease_table.c — lease table: by-MAC and by-IP
 * lookups, updates, deletes, conflicts, transactions, growth, iteration,
 * memory per lease, and lock-free readers racing writers. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "engine/lease_table.h"

#define IP(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))

static struct lease_key mac(uint32_t n)
{
    uint8_t b[6] = { 0x52, 0x54, (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n };
    struct lease_key k;
    cr_assert_eq(lease_key_init(&k, 1, b, sizeof b), LEASE_TABLE_OK);
    return k;
}

static struct lease mk(uint32_t n, uint32_t ip, unsigned state, int64_t expires)
{
    struct lease l;
    memset(&l, 0, sizeof l);
    l.hw = mac(n);
    l.state = (uint8_t)state;
    l.ip = ip;
    l.expires = expires;
    l.updated = expires - 3600;
    l.subnet = (uint16_t)(n % 3);
    l.flags = LEASE_F_KNOWN;
    l.client_id_len = 7;
    l.client_id[0] = 1;
    memcpy(l.client_id + 1, l.hw.chaddr, 6);
    snprintf(l.hostname, sizeof l.hostname, "node%u", n);
    return l;
}

static struct lease_table *mktable(unsigned shards, size_t expected)
{
    struct lease_table *t = NULL;
    cr_assert_eq(lease_table_create(shards, expected, &t), LEASE_TABLE_OK);
    cr_assert_not_null(t);
    return t;
}

Test(lease_table, create_rejects_bad_shard_counts)
{
    struct lease_table *t = (struct lease_table *)1;
    cr_expect_eq(lease_table_create(0, 0, &t), LEASE_TABLE_EINVAL);
    cr_expect_eq(lease_table_create(3, 0, &t), LEASE_TABLE_EINVAL);
    cr_expect_eq(lease_table_create(2048, 0, &t), LEASE_TABLE_EINVAL);
    cr_expect_eq(lease_table_create(4, 0, NULL), LEASE_TABLE_EINVAL);
    cr_assert_eq(lease_table_create(1, 0, &t), LEASE_TABLE_OK);
    lease_table_destroy(t);
    cr_assert_eq(lease_table_create(1024, 0, &t), LEASE_TABLE_OK);
    lease_table_destroy(t);
}

Test(lease_table, insert_lookup_by_mac_and_ip)
{
    struct lease_table *t = mktable(8, 0);
    struct lease a = mk(1, IP(10, 0, 0, 5), LEASE_BOUND, 5000), out;
    cr_assert_eq(lease_table_upsert(t, &a, NULL), LEASE_TABLE_OK);
    cr_assert_eq(lease_table_count(t), 1);

    memset(&out, 0xAA, sizeof out);
    cr_assert_eq(lease_table_lookup_mac(t, &a.hw, &out), LEASE_TABLE_OK);
    cr_assert_eq(memcmp(&out, &a, sizeof a), 0, "lease read back differs");
    memset(&out, 0xAA, sizeof out);
    cr_assert_eq(lease_table_lookup_ip(t, IP(10, 0, 0, 5), &out), LEASE_TABLE_OK);
    cr_assert_eq(memcmp(&out, &a, sizeof a), 0);
    cr_assert_str_eq(out.hostname, "node1");

    struct lease_key other = mac(2);
    cr_assert_eq(lease_table_lookup_mac(t, &other, &out), LEASE_TABLE_ENOENT);
    cr_assert_eq(lease_table_lookup_ip(t, IP(10, 0, 0, 6), &out), LEASE_TABLE_ENOENT);
    cr_assert_eq(lease_table_lookup_ip(t, 0, &out), LEASE_TABLE_ENOENT);
    lease_table_destroy(t);
}

Test(lease_table, keys_are_normalised_and_htype_matters)
{
    struct lease_table *t = mktable(4, 0);
    struct lease a = mk(7, IP(10, 0, 0, 7), LEASE_BOUND, 100), out;
    cr_assert_eq(lease_table_upsert(t, &a, NULL), LEASE_TABLE_OK);
    struct lease_key k = a.hw;
    memset(k.chaddr + 6, 0xEE, 10); /* garbage past hlen is ignored */
    cr_assert_eq(lease_table_lookup_mac(t, &k, &out), LEASE_TABLE_OK);
    cr_assert_eq(out.ip, IP(10, 0, 0, 7));
    k = a.hw;
    k.htype = 6; /* IEEE 802 is another hardware type: another key */
    cr_assert_eq(lease_table_lookup_mac(t, &k, &out), LEASE_TABLE_ENOENT);
    k = a.hw;
    k.hlen = 0;
    cr_assert_eq(lease_table_lookup_mac(t, &k, &out), LEASE_TABLE_EINVAL);
    k.hlen = 17;
    cr_assert_eq(lease_table_lookup_mac(t, &k, &out), LEASE_TABLE_EINVAL);
    lease_table_destroy(t);
}

Test(lease_table, rejects_invalid_leases)
{
    struct lease_table *t = mktable(2, 0);
    struct lease l = mk(1, IP(10, 0, 0, 1), LEASE_BOUND, 1);
    l.state = LEASE_STATE_NONE;
    cr_expect_eq(lease_table_upsert(t, &l, NULL), LEASE_TABLE_EINVAL);
    l = mk(1, IP(10, 0, 0, 1), LEASE_BOUND, 1);
    l.state = LEASE_STATE_COUNT;
    cr_expect_eq(lease_table_upsert(t, &l, NULL), LEASE_TABLE_EINVAL);
    l = mk(1, 0, LEASE_OFFERED, 1); /* a holding state needs an address */
    cr_expect_eq(lease_table_upsert(t, &l, NULL), LEASE_TABLE_EINVAL);
    l = mk(1, IP(10, 0, 0, 1), LEASE_BOUND, 1);
    l.client_id_len = LEASE_CLIENT_ID_MAX + 1;
    cr_expect_eq(lease_table_upsert(t, &l, NULL), LEASE_TABLE_EINVAL);
    l = mk(1, IP(10, 0, 0, 1), LEASE_BOUND, 1);
    memset(l.hostname, 'x', sizeof l.hostname); /* no NUL */
    cr_expect_eq(lease_table_upsert(t, &l, NULL), LEASE_TABLE_EINVAL);
    l = mk(1, IP(10, 0, 0, 1), LEASE_BOUND, 1);
    l.hw.hlen = 0;
    cr_expect_eq(lease_table_upsert(t, &l, NULL), LEASE_TABLE_EINVAL);
    l = mk(1, IP(10, 0, 0, 1), LEASE_BOUND, 1);
    l.reserved = 1;
    cr_expect_eq(lease_table_upsert(t, &l, NULL), LEASE_TABLE_EINVAL);
    l = mk(1, 0, LEASE_EXPIRED, 1); /* a non-holding state may have no address */
    cr_expect_eq(lease_table_upsert(t, &l, NULL), LEASE_TABLE_OK);
    cr_expect_eq(lease_table_count(t), 1);
    lease_table_destroy(t);
}

Test(lease_table, update_moves_ip_and_delete_clears_both_indexes)
{
    struct lease_table *t = mktable(4, 0);
    struct lease a = mk(1, IP(10, 0, 0, 5), LEASE_OFFERED, 100), out;
    cr_assert_eq(lease_table_upsert(t, &a, NULL), LEASE_TABLE_OK);
    a.state = LEASE_BOUND;
    a.ip = IP(10, 0, 0, 9);
    a.expires = 4000;
    struct lease_table_txn txn = { 0 };
    cr_assert_eq(lease_table_upsert(t, &a, &txn), LEASE_TABLE_OK);
    cr_assert(txn.had_old);
    cr_assert_eq(txn.old.ip, IP(10, 0, 0, 5));
    cr_assert_eq(txn.old.state, LEASE_OFFERED);
    cr_assert_eq(lease_table_count(t), 1);
    cr_assert_eq(lease_table_lookup_ip(t, IP(10, 0, 0, 5), &out), LEASE_TABLE_ENOENT);
    cr_assert_eq(lease_table_lookup_ip(t, IP(10, 0, 0, 9), &out), LEASE_TABLE_OK);
    cr_assert_eq(out.expires, 4000);
    cr_assert_eq(out.state, LEASE_BOUND);

    /* released: the address stays in the lease as a hint but is no longer held */
    a.state = LEASE_RELEASED;
    cr_assert_eq(lease_table_upsert(t, &a, NULL), LEASE_TABLE_OK);
    cr_assert_eq(lease_table_lookup_ip(t, IP(10, 0, 0, 9), &out), LEASE_TABLE_ENOENT);
    cr_assert_eq(lease_table_lookup_mac(t, &a.hw, &out), LEASE_TABLE_OK);
    cr_assert_eq(out.ip, IP(10, 0, 0, 9));
    cr_assert_eq(out.state, LEASE_RELEASED);

    a.state = LEASE_BOUND;
    cr_assert_eq(lease_table_upsert(t, &a, NULL), LEASE_TABLE_OK);
    cr_assert_eq(lease_table_delete(t, &a.hw, &txn), LEASE_TABLE_OK);
    cr_assert(txn.had_old);
    cr_assert_eq(txn.old.state, LEASE_BOUND);
    cr_assert_eq(lease_table_lookup_mac(t, &a.hw, &out), LEASE_TABLE_ENOENT);
    cr_assert_eq(lease_table_lookup_ip(t, IP(10, 0, 0, 9), &out), LEASE_TABLE_ENOENT);
    cr_assert_eq(lease_table_delete(t, &a.hw, NULL), LEASE_TABLE_ENOENT);
    cr_assert_eq(lease_table_count(t), 0);

    /* the freed entry is reused */
    struct lease b = mk(2, IP(10, 0, 0, 9), LEASE_BOUND, 1);
    cr_assert_eq(lease_table_upsert(t, &b, NULL), LEASE_TABLE_OK);
    cr_assert_eq(lease_table_lookup_ip(t, IP(10, 0, 0, 9), &out), LEASE_TABLE_OK);
    cr_assert(lease_key_equal(&out.hw, &b.hw));
    lease_table_destroy(t);
}

Test(lease_table, one_address_one_holder)
{
    struct lease_table *t = mktable(16, 0);
    struct lease a = mk(1, IP(10, 0, 0, 5), LEASE_BOUND, 100), out;
    struct lease b = mk(2, IP(10, 0, 0, 5), LEASE_OFFERED, 100);
    cr_assert_eq(lease_table_upsert(t, &a, NULL), LEASE_TABLE_OK);
    cr_assert_eq(lease_table_upsert(t, &b, NULL), LEASE_TABLE_EADDRINUSE);
    cr_assert_eq(lease_table_lookup_mac(t, &b.hw, &out), LEASE_TABLE_ENOENT, "failed insert left a lease");
    b.state = LEASE_EXPIRED; /* remembering the address is fine */
    cr_assert_eq(lease_table_upsert(t, &b, NULL), LEASE_TABLE_OK);
    b.state = LEASE_OFFERED;
    cr_assert_eq(lease_table_upsert(t, &b, NULL), LEASE_TABLE_EADDRINUSE);
    cr_assert_eq(lease_table_lookup_mac(t, &b.hw, &out), LEASE_TABLE_OK);
    cr_assert_eq(out.state, LEASE_EXPIRED, "failed update changed the lease");
    a.state = LEASE_EXPIRED;
    cr_assert_eq(lease_table_upsert(t, &a, NULL), LEASE_TABLE_OK);
    cr_assert_eq(lease_table_upsert(t, &b, NULL), LEASE_TABLE_OK);
    cr_assert_eq(lease_table_lookup_ip(t, IP(10, 0, 0, 5), &out), LEASE_TABLE_OK);
    cr_assert(lease_key_equal(&out.hw, &b.hw));
    /* a declined (quarantined) address is held too */
    struct lease q = mk(3, IP(10, 0, 0, 6), LEASE_DECLINED, 100);
    cr_assert_eq(lease_table_upsert(t, &q, NULL), LEASE_TABLE_OK);
    struct lease c = mk(4, IP(10, 0, 0, 6), LEASE_OFFERED, 100);
    cr_assert_eq(lease_table_upsert(t, &c, NULL), LEASE_TABLE_EADDRINUSE);
    lease_table_destroy(t);
}

Test(lease_table, txn_expect_and_create_only)
{
    struct lease_table *t = mktable(4, 0);
    struct lease a = mk(1, IP(10, 0, 0, 5), LEASE_OFFERED, 100), cur;
    struct lease_table_txn txn = { .flags = LEASE_TABLE_TXN_CREATE_ONLY };
    cr_assert_eq(lease_table_upsert(t, &a, &txn), LEASE_TABLE_OK);
    cr_assert_not(txn.had_old);
    cr_assert_eq(lease_table_upsert(t, &a, &txn), LEASE_TABLE_ECHANGED);
    cr_assert(txn.had_old);

    cr_assert_eq(lease_table_lookup_mac(t, &a.hw, &cur), LEASE_TABLE_OK);
    struct lease n = cur;
    n.state = LEASE_BOUND;
    struct lease_table_txn ex = { .flags = LEASE_TABLE_TXN_EXPECT, .expect = &cur };
    cr_assert_eq(lease_table_upsert(t, &n, &ex), LEASE_TABLE_OK);
    n.expires = 999; /* cur is stale now */
    cr_assert_eq(lease_table_upsert(t, &n, &ex), LEASE_TABLE_ECHANGED);
    cr_assert_eq(ex.old.state, LEASE_BOUND, "ECHANGED reports the current lease");
    cr_assert_eq(lease_table_delete(t, &a.hw, &ex), LEASE_TABLE_ECHANGED);
    struct lease now = ex.old;
    ex.expect = &now;
    cr_assert_eq(lease_table_delete(t, &a.hw, &ex), LEASE_TABLE_OK);
    struct lease_table_txn miss = { .flags = LEASE_TABLE_TXN_EXPECT, .expect = &cur };
    cr_assert_eq(lease_table_upsert(t, &a, &miss), LEASE_TABLE_ECHANGED, "expect on a missing key");
    lease_table_destroy(t);
}

struct hook_log {
    int calls;
    int fail_at; /* 1-based call that fails, 0 = never */
    struct lease last_old, last_cur;
    bool had_old, had_cur;
};

static int on_commit(void *arg, const struct lease *old, const struct lease *cur)
{
    struct hook_log *h = arg;
    h->calls++;
    h->had_old = old != NULL;
    h->had_cur = cur != NULL;
    if (old)
        h->last_old = *old;
    if (cur)
        h->last_cur = *cur;
    return h->calls == h->fail_at ? -EIO : 0;
}

Test(lease_table, commit_callback_sees_change_and_failure_rolls_back)
{
    struct lease_table *t = mktable(4, 0);
    struct hook_log h = { 0 };
    struct lease_table_txn txn = { .on_commit = on_commit, .arg = &h };
    struct lease a = mk(1, IP(10, 0, 0, 5), LEASE_OFFERED, 100), out;

    cr_assert_eq(lease_table_upsert(t, &a, &txn), LEASE_TABLE_OK);
    cr_assert_eq(h.calls, 1);
    cr_assert_not(h.had_old);
    cr_assert(h.had_cur);
    cr_assert_eq(h.last_cur.ip, a.ip);

    /* a failing update (moving the address) leaves the old lease and its address */
    h.fail_at = 2;
    struct lease b = a;
    b.ip = IP(10, 0, 0, 6);
    b.state = LEASE_BOUND;
    cr_assert_eq(lease_table_upsert(t, &b, &txn), -EIO);
    cr_assert(h.had_old);
    cr_assert_eq(h.last_old.ip, IP(10, 0, 0, 5));
    cr_assert_eq(lease_table_lookup_mac(t, &a.hw, &out), LEASE_TABLE_OK);
    cr_assert_eq(memcmp(&out, &a, sizeof a), 0);
    cr_assert_eq(lease_table_lookup_ip(t, IP(10, 0, 0, 5), &out), LEASE_TABLE_OK);
    cr_assert_eq(lease_table_lookup_ip(t, IP(10, 0, 0, 6), &out), LEASE_TABLE_ENOENT);
    struct lease c = mk(9, IP(10, 0, 0, 6), LEASE_BOUND, 1); /* its claim was given back */
    cr_assert_eq(lease_table_upsert(t, &c, NULL), LEASE_TABLE_OK);

    /* a failing insert leaves nothing */
    h.fail_at = 3;
    struct lease d = mk(2, IP(10, 0, 0, 7), LEASE_BOUND, 1);
    cr_assert_eq(lease_table_upsert(t, &d, &txn), -EIO);
    cr_assert_eq(lease_table_lookup_mac(t, &d.hw, &out), LEASE_TABLE_ENOENT);
    cr_assert_eq(lease_table_lookup_ip(t, IP(10, 0, 0, 7), &out), LEASE_TABLE_ENOENT);
    cr_assert_eq(lease_table_count(t), 2);

    /* a failing delete keeps the lease */
    h.fail_at = 4;
    cr_assert_eq(lease_table_delete(t, &a.hw, &txn), -EIO);
    cr_assert(h.had_old);
    cr_assert_not(h.had_cur);
    cr_assert_eq(lease_table_lookup_mac(t, &a.hw, &out), LEASE_TABLE_OK);
    cr_assert_eq(lease_table_lookup_ip(t, IP(10, 0, 0, 5), &out), LEASE_TABLE_OK);
    cr_assert_eq(lease_table_count(t), 2);
    h.fail_at = 0;
    cr_assert_eq(lease_table_delete(t, &a.hw, &txn), LEASE_TABLE_OK);
    cr_assert_eq(lease_table_lookup_ip(t, IP(10, 0, 0, 5), &out), LEASE_TABLE_ENOENT);
    lease_table_destroy(t);
}

/* Grows from nothing through many incremental rehashes. */
Test(lease_table, grows_incrementally_and_keeps_everything, .timeout = 120)
{
    struct lease_table *t = mktable(4, 0);
    const uint32_t n = 100000;
    struct lease out;
    bool saw_rehash = false;
    for (uint32_t i = 0; i < n; i++) {
        struct lease l = mk(i, IP(10, 0, 0, 0) + 1 + i, LEASE_BOUND, i);
        cr_assert_eq(lease_table_upsert(t, &l, NULL), LEASE_TABLE_OK, "insert %u", i);
        if (i % 1000 == 0) {
            struct lease_table_stats st;
            lease_table_stats(t, &st);
            saw_rehash |= st.rehashing > 0;
        }
    }
    cr_assert(saw_rehash, "expected to catch a rehash in progress");
    cr_assert_eq(lease_table_count(t), n);
    for (uint32_t i = 0; i < n; i++) {
        struct lease_key k = mac(i);
        cr_assert_eq(lease_table_lookup_mac(t, &k, &out), LEASE_TABLE_OK, "mac %u", i);
        cr_assert_eq(out.expires, (int64_t)i);
        cr_assert_eq(lease_table_lookup_ip(t, IP(10, 0, 0, 0) + 1 + i, &out), LEASE_TABLE_OK, "ip %u", i);
        cr_assert(lease_key_equal(&out.hw, &k));
    }
    for (uint32_t i = 0; i < n; i += 2) {
        struct lease_key k = mac(i);
        cr_assert_eq(lease_table_delete(t, &k, NULL), LEASE_TABLE_OK);
    }
    lease_table_maintain(t, (size_t)1 << 30);
    struct lease_table_stats st;
    lease_table_stats(t, &st);
    cr_assert_eq(st.rehashing, 0);
    cr_assert_eq(st.leases, n / 2);
    for (uint32_t i = 0; i < n; i++) {
        struct lease_key k = mac(i);
        int want = (i % 2) ? LEASE_TABLE_OK : LEASE_TABLE_ENOENT;
        cr_assert_eq(lease_table_lookup_mac(t, &k, &out), want, "mac %u", i);
        cr_assert_eq(lease_table_lookup_ip(t, IP(10, 0, 0, 0) + 1 + i, &out), want, "ip %u", i);
    }
    lease_table_destroy(t);
}

Test(lease_table, reserve_sizes_like_create_and_keeps_what_is_there, .timeout = 120)
{
    const uint32_t n = 50000;
    struct lease_table *sized = mktable(4, n), *t = mktable(4, 0);
    struct lease_table_stats want, st;
    lease_table_stats(sized, &want);
    lease_table_destroy(sized);
    cr_assert_eq(lease_table_reserve(NULL, 10), LEASE_TABLE_EINVAL);

    /* some leases first, some of them mid-rehash: reserve must keep them all */
    const uint32_t pre = 3000;
    for (uint32_t i = 0; i < pre; i++) {
        struct lease l = mk(i, IP(10, 1, 0, 0) + i, LEASE_BOUND, i);
        cr_assert_eq(lease_table_upsert(t, &l, NULL), LEASE_TABLE_OK);
    }
    cr_assert_eq(lease_table_reserve(t, n), LEASE_TABLE_OK);
    lease_table_stats(t, &st);
    cr_assert_eq(st.rehashing, 0, "reserve finishes every move");
    cr_assert_eq(st.index_slots, want.index_slots, "same index size as a table created for n");
    cr_assert_eq(lease_table_reserve(t, 10), LEASE_TABLE_OK);
    lease_table_stats(t, &st);
    cr_assert_eq(st.index_slots, want.index_slots, "reserve never shrinks");

    for (uint32_t i = pre; i < n; i++) {
        struct lease l = mk(i, IP(10, 1, 0, 0) + i, LEASE_BOUND, i);
        cr_assert_eq(lease_table_upsert(t, &l, NULL), LEASE_TABLE_OK);
    }
    lease_table_stats(t, &st);
    cr_assert_eq(st.index_slots, want.index_slots, "no growth while loading what was reserved");
    cr_assert_eq(st.rehashing, 0);
    cr_assert_eq(st.leases, n);
    struct lease out;
    for (uint32_t i = 0; i < n; i++) {
        struct lease_key k = mac(i);
        cr_assert_eq(lease_table_lookup_mac(t, &k, &out), LEASE_TABLE_OK, "mac %u", i);
        cr_assert_eq(out.expires, (int64_t)i);
        cr_assert_eq(lease_table_lookup_ip(t, IP(10, 1, 0, 0) + i, &out), LEASE_TABLE_OK, "ip %u", i);
        cr_assert(lease_key_equal(&out.hw, &k));
    }
    lease_table_destroy(t);
}

struct visit_ctx {
    uint8_t *seen;
    uint32_t n;
    int dup;
};

static int visit(void *arg, const struct lease *l)
{
    struct visit_ctx *v = arg;
    uint32_t i = (uint32_t)l->hw.chaddr[2] << 24 | (uint32_t)l->hw.chaddr[3] << 16 |
                 (uint32_t)l->hw.chaddr[4] << 8 | l->hw.chaddr[5];
    cr_assert_lt(i, v->n);
    if (v->seen[i]++)
        v->dup++;
    return 0;
}

static int stop_at_three(void *arg, const struct lease *l)
{
    return ++*(int *)arg == 3 ? 42 : 0;
}

Test(lease_table, foreach_and_scan_visit_each_lease_once)
{
    struct lease_table *t = mktable(8, 0);
    const uint32_t n = 5000;
    for (uint32_t i = 0; i < n; i++) {
        struct lease l = mk(i, IP(10, 1, 0, 0) + i, LEASE_BOUND, i);
        cr_assert_eq(lease_table_upsert(t, &l, NULL), LEASE_TABLE_OK);
    }
    for (uint32_t i = 0; i < n; i += 5) { /* holes in the entry arrays */
        struct lease_key k = mac(i);
        cr_assert_eq(lease_table_delete(t, &k, NULL), LEASE_TABLE_OK);
    }
    uint8_t seen[5000] = { 0 };
    struct visit_ctx v = { seen, n, 0 };
    cr_assert_eq(lease_table_foreach(t, visit, &v), 0);
    for (uint32_t i = 0; i < n; i++)
        cr_assert_eq(seen[i], (i % 5) ? 1 : 0, "lease %u visited %u times", i, seen[i]);

    memset(seen, 0, sizeof seen);
    struct lease_table_cursor c = { 0 };
    int rc, passes = 0;
    while ((rc = lease_table_scan(t, &c, 97, visit, &v)) == LEASE_TABLE_SCAN_MORE)
        passes++;
    cr_assert_eq(rc, LEASE_TABLE_SCAN_DONE);
    cr_assert_gt(passes, 10);
    cr_assert_eq(c.shard, 0);
    cr_assert_eq(c.index, 0);
    for (uint32_t i = 0; i < n; i++)
        cr_assert_eq(seen[i], (i % 5) ? 1 : 0, "scan: lease %u visited %u times", i, seen[i]);
    int count = 0;
    cr_assert_eq(lease_table_foreach(t, stop_at_three, &count), 42);
    cr_assert_eq(count, 3);
    lease_table_destroy(t);
}

Test(lease_table, memory_per_lease_at_most_256_bytes)
{
    const uint32_t n = 200000;
    /* both ways the table is used: sized from the pools up front, and grown */
    for (int grown = 0; grown < 2; grown++) {
        struct lease_table *t = mktable(16, grown ? 0 : n);
        for (uint32_t i = 0; i < n; i++) {
            struct lease l = mk(i, IP(10, 0, 0, 0) + 1 + i, LEASE_BOUND, i);
            cr_assert_eq(lease_table_upsert(t, &l, NULL), LEASE_TABLE_OK);
        }
        lease_table_maintain(t, (size_t)1 << 30);
        struct lease_table_stats st;
        lease_table_stats(t, &st);
        double per = (double)st.memory_bytes / (double)st.leases;
        printf("lease_table: %zu leases, %zu bytes, %.1f bytes/lease (%s), %zu index slots\n",
               st.leases, st.memory_bytes, per, grown ? "grown from empty" : "sized up front",
               st.index_slots);
        cr_assert_leq(per, 256.0, "%.1f bytes per lease", per);
        lease_table_destroy(t);
    }
}

/* ---- concurrency ----------------------------------------------------------- */

#define RACE_BASE IP(10, 9, 0, 0)

/* Every field of the lease written for step k can be derived from k, so a
 * reader can tell a torn copy from a whole one. */
static struct lease race_lease(uint32_t k)
{
    struct lease l;
    memset(&l, 0, sizeof l);
    l.hw = mac(0xABCDEF);
    l.state = LEASE_BOUND;
    l.ip = RACE_BASE + (k % 512);
    l.expires = k;
    l.updated = (int64_t)k * 3;
    l.subnet = (uint16_t)k;
    l.flags = (uint16_t)(k >> 16);
    l.client_id_len = (uint8_t)(1 + k % LEASE_CLIENT_ID_MAX);
    memset(l.client_id, (int)(k & 0xff), l.client_id_len);
    snprintf(l.hostname, sizeof l.hostname, "h%u-%u", k, k * 7);
    return l;
}

static bool race_consistent(const struct lease *l)
{
    uint32_t k = (uint32_t)l->expires;
    struct lease want = race_lease(k);
    return memcmp(&want, l, sizeof want) == 0;
}

struct race {
    struct lease_table *t;
    _Atomic bool stop;
    _Atomic uint64_t reads, torn, ip_hits;
    uint32_t steps;
};

static void *race_writer(void *arg)
{
    struct race *r = arg;
    for (uint32_t k = 1; k <= r->steps; k++) {
        struct lease l = race_lease(k);
        cr_assert_eq(lease_table_upsert(r->t, &l, NULL), LEASE_TABLE_OK);
    }
    atomic_store(&r->stop, true);
    return NULL;
}

static void *race_reader(void *arg)
{
    struct race *r = arg;
    struct lease_key k = mac(0xABCDEF);
    uint32_t probe = 0;
    while (!atomic_load(&r->stop)) {
        struct lease out;
        if (lease_table_lookup_mac(r->t, &k, &out) == LEASE_TABLE_OK) {
            atomic_fetch_add(&r->reads, 1);
            if (!race_consistent(&out))
                atomic_fetch_add(&r->torn, 1);
        }
        uint32_t ip = RACE_BASE + (probe++ % 512);
        if (lease_table_lookup_ip(r->t, ip, &out) == LEASE_TABLE_OK) {
            atomic_fetch_add(&r->ip_hits, 1);
            if (out.ip != ip || !race_consistent(&out))
                atomic_fetch_add(&r->torn, 1);
        }
    }
    return NULL;
}

Test(lease_table, readers_never_see_torn_leases, .timeout = 240)
{
    struct race r = { .t = mktable(4, 0), .steps = 100000 };
    struct lease first = race_lease(0);
    cr_assert_eq(lease_table_upsert(r.t, &first, NULL), LEASE_TABLE_OK);
    pthread_t w, rd[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&rd[i], NULL, race_reader, &r);
    pthread_create(&w, NULL, race_writer, &r);
    pthread_join(w, NULL);
    for (int i = 0; i < 3; i++)
        pthread_join(rd[i], NULL);
    struct lease_table_stats st;
    lease_table_stats(r.t, &st);
    printf("lease_table race: %llu MAC reads, %llu IP hits, %llu seqlock retries, %llu torn\n",
           (unsigned long long)r.reads, (unsigned long long)r.ip_hits,
           (unsigned long long)st.read_retries, (unsigned long long)r.torn);
    cr_assert_gt(r.reads, 0);
    cr_assert_eq(r.torn, 0, "%llu torn reads", (unsigned long long)r.torn);
    lease_table_destroy(r.t);
}

/* A stable set of leases must stay visible, by MAC and by IP, while other
 * writers insert and delete enough to rehash every index several times. */
struct churn {
    struct lease_table *t;
    _Atomic int writers_left;
    _Atomic uint64_t misses, checks;
    uint32_t stable, per_writer;
};

struct churn_writer {
    struct churn *c;
    uint32_t id;
};

static void *churn_write(void *arg)
{
    struct churn_writer *w = arg;
    struct churn *c = w->c;
    uint32_t base = 1000000 * (w->id + 1);
    for (uint32_t i = 0; i < c->per_writer; i++) {
        struct lease l = mk(base + i, IP(10, 100 + w->id, 0, 0) + i, LEASE_BOUND, i);
        cr_assert_eq(lease_table_upsert(c->t, &l, NULL), LEASE_TABLE_OK);
        if (i % 3 == 2) {
            struct lease_key k = mac(base + i - 1);
            cr_assert_eq(lease_table_delete(c->t, &k, NULL), LEASE_TABLE_OK);
        }
    }
    atomic_fetch_sub(&c->writers_left, 1);
    return NULL;
}

static void *churn_read(void *arg)
{
    struct churn *c = arg;
    while (atomic_load(&c->writers_left) > 0) {
        for (uint32_t i = 0; i < c->stable; i++) {
            struct lease out;
            struct lease_key k = mac(i);
            if (lease_table_lookup_mac(c->t, &k, &out) != LEASE_TABLE_OK || out.expires != 77)
                atomic_fetch_add(&c->misses, 1);
            if (lease_table_lookup_ip(c->t, IP(10, 50, 0, 1) + i, &out) != LEASE_TABLE_OK ||
                !lease_key_equal(&out.hw, &k))
                atomic_fetch_add(&c->misses, 1);
            atomic_fetch_add(&c->checks, 1);
        }
    }
    return NULL;
}

Test(lease_table, lookups_never_miss_during_rehash, .timeout = 240)
{
    struct churn c = { .t = mktable(2, 0), .stable = 500, .per_writer = 60000 };
    for (uint32_t i = 0; i < c.stable; i++) {
        struct lease l = mk(i, IP(10, 50, 0, 1) + i, LEASE_BOUND, 77);
        cr_assert_eq(lease_table_upsert(c.t, &l, NULL), LEASE_TABLE_OK);
    }
    atomic_store(&c.writers_left, 2);
    pthread_t rd[2];
    struct churn_writer ws[2] = { { &c, 0 }, { &c, 1 } };
    pthread_t wt[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&rd[i], NULL, churn_read, &c);
    for (int i = 0; i < 2; i++)
        pthread_create(&wt[i], NULL, churn_write, &ws[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(wt[i], NULL);
    for (int i = 0; i < 2; i++)
        pthread_join(rd[i], NULL);
    printf("lease_table churn: %llu stable-key checks during rehash, %llu misses\n",
           (unsigned long long)c.checks, (unsigned long long)c.misses);
    cr_assert_gt(c.checks, 0);
    cr_assert_eq(c.misses, 0, "%llu lookups missed a stable lease", (unsigned long long)c.misses);
    cr_assert_eq(lease_table_count(c.t), c.stable + 2 * (c.per_writer - c.per_writer / 3));
    lease_table_destroy(c.t);
}
