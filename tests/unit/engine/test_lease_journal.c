/* tests/unit/engine/test_lease_journal.c — the lease journal: round trip,
 * torn tails, corruption with offsets, format checks, the directory lock,
 * group commit, the fsync policy, compaction (also under concurrent appends),
 * kill -9, and the time to load 1,000,000 leases (printed, not asserted). */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine/lease_journal.h"
#include "engine/lease_table.h"

#define IP(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))

/* ---- helpers ------------------------------------------------------------------ */

struct tdir {
    char dir[64];
    char file[96];
};

static void tdir_make(struct tdir *d)
{
    strcpy(d->dir, "/tmp/bs-journal-XXXXXX");
    cr_assert_not_null(mkdtemp(d->dir));
    snprintf(d->file, sizeof d->file, "%s/%s", d->dir, LEASE_JOURNAL_FILE);
}

static void tdir_remove(struct tdir *d)
{
    static const char *const names[] = { LEASE_JOURNAL_FILE, LEASE_JOURNAL_FILE ".tmp", "leases.lock" };
    char p[128];
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", d->dir, names[i]);
        unlink(p);
    }
    rmdir(d->dir);
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    cr_assert_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void spit(const char *path, const void *b, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(b, 1, len, f), len);
    fclose(f);
}

static off_t file_size(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    return st.st_size;
}

static struct lease_key mac(uint32_t n)
{
    uint8_t b[6] = { 0x52, 0x54, (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n };
    struct lease_key k;
    lease_key_init(&k, 1, b, sizeof b);
    return k;
}

static struct lease mk(uint32_t n, uint32_t version)
{
    struct lease l;
    memset(&l, 0, sizeof l);
    l.hw = mac(n);
    if (n % 7 == 3) { /* some InfiniBand-length hardware addresses */
        uint8_t b[16] = { (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n };
        for (int i = 4; i < 16; i++)
            b[i] = (uint8_t)(0xA0 + i);
        lease_key_init(&l.hw, 32, b, sizeof b);
    }
    l.state = (uint8_t)(version % 3 == 2 ? LEASE_EXPIRED : LEASE_BOUND);
    l.ip = IP(10, 0, 0, 0) + 1 + n;
    l.expires = 1700000000 + n + version;
    l.updated = 1699990000 + version;
    l.subnet = (uint16_t)(n % 4);
    l.flags = (uint16_t)(version & 3);
    l.client_id_len = (uint8_t)(n % (LEASE_CLIENT_ID_MAX + 1));
    for (int i = 0; i < l.client_id_len; i++)
        l.client_id[i] = (uint8_t)(n + i + version);
    if (n % 2)
        snprintf(l.hostname, sizeof l.hostname, "r%u-n%u-v%u", n / 40, n, version % 100000);
    return l;
}

struct model {
    struct lease_table *t;
    int fail_at;   /* 1-based upsert that fails, 0 = never */
    int upserts;
    struct { struct lease_key k; char name[16]; char value[32]; size_t vlen; } host[32];
    int nhost;
};

static int m_upsert(void *arg, const struct lease *l)
{
    struct model *m = arg;
    if (++m->upserts == m->fail_at)
        return -ECANCELED;
    return lease_table_upsert(m->t, l, NULL);
}

static int m_delete(void *arg, const struct lease_key *k)
{
    struct model *m = arg;
    int rc = lease_table_delete(m->t, k, NULL);
    return rc == LEASE_TABLE_ENOENT ? 0 : rc;
}

static int m_host(void *arg, const struct lease_key *k, const char *name, size_t nlen, const void *v, size_t vlen)
{
    struct model *m = arg;
    cr_assert_lt(nlen, sizeof m->host[0].name);
    cr_assert_leq(vlen, sizeof m->host[0].value);
    int i = 0;
    while (i < m->nhost && !(lease_key_equal(&m->host[i].k, k) && strlen(m->host[i].name) == nlen &&
                             memcmp(m->host[i].name, name, nlen) == 0))
        i++;
    if (i == m->nhost) {
        cr_assert_lt(m->nhost, 32);
        m->nhost++;
        m->host[i].k = *k;
        memcpy(m->host[i].name, name, nlen);
        m->host[i].name[nlen] = '\0';
    }
    memcpy(m->host[i].value, v, vlen);
    m->host[i].vlen = vlen;
    return 0;
}

static struct model *model_new(void)
{
    struct model *m = calloc(1, sizeof *m);
    cr_assert_eq(lease_table_create(8, 0, &m->t), LEASE_TABLE_OK);
    return m;
}

static void model_free(struct model *m)
{
    lease_table_destroy(m->t);
    free(m);
}

static struct lease_journal_replay replay_into(struct model *m)
{
    return (struct lease_journal_replay){ .on_upsert = m_upsert, .on_delete = m_delete, .on_host_state = m_host, .arg = m };
}

static uint64_t jsize(struct lease_journal *j)
{
    struct lease_journal_stats st;
    lease_journal_stats(j, &st);
    return st.file_bytes;
}

/* Ten leases, each flushed on its own; off[i] = offset of record i, off[10] = end. */
static void write_ten(struct tdir *d, uint64_t off[11])
{
    struct lease_journal *j;
    cr_assert_eq(lease_journal_open(d->dir, NULL, NULL, &j, NULL), LEASE_JOURNAL_OK);
    off[0] = jsize(j);
    cr_assert_eq(off[0], LEASE_JOURNAL_HEADER_SIZE);
    for (uint32_t i = 0; i < 10; i++) {
        struct lease l = mk(i, 0);
        cr_assert_eq(lease_journal_append_upsert(j, &l, NULL), LEASE_JOURNAL_OK);
        cr_assert_eq(lease_journal_flush(j, false), LEASE_JOURNAL_OK);
        off[i + 1] = jsize(j);
    }
    cr_assert_eq(lease_journal_close(j), LEASE_JOURNAL_OK);
    cr_assert_eq((uint64_t)file_size(d->file), off[10]);
}

static int open_count(struct tdir *d, const struct lease_journal_options *opt, struct lease_journal_report *rep,
                      struct model **mout)
{
    struct model *m = model_new();
    struct lease_journal_replay cb = replay_into(m);
    struct lease_journal *j = NULL;
    int rc = lease_journal_open(d->dir, opt, &cb, &j, rep);
    if (rc == LEASE_JOURNAL_OK)
        cr_assert_eq(lease_journal_close(j), LEASE_JOURNAL_OK);
    if (mout)
        *mout = m;
    else
        model_free(m);
    return rc;
}

/* ---- tests ------------------------------------------------------------------------ */

Test(lease_journal, crc32c_check_value_and_chaining)
{
    cr_assert_eq(lease_journal_crc32c(0, "123456789", 9), 0xE3069283u);
    cr_assert_eq(lease_journal_crc32c(0, "", 0), 0);
    uint8_t buf[300];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)(i * 7 + 3);
    uint32_t whole = lease_journal_crc32c(0, buf, sizeof buf);
    for (size_t cut = 0; cut <= sizeof buf; cut++)
        cr_assert_eq(lease_journal_crc32c(lease_journal_crc32c(0, buf, cut), buf + cut, sizeof buf - cut), whole,
                     "split at %zu", cut);
}

Test(lease_journal, write_reopen_replay_equals)
{
    struct tdir d;
    tdir_make(&d);
    struct lease_journal *j;
    struct lease_journal_report rep;
    cr_assert_eq(lease_journal_open(d.dir, NULL, NULL, &j, &rep), LEASE_JOURNAL_OK);
    cr_assert_eq(rep.records, 0);
    cr_assert_eq(rep.file_bytes, LEASE_JOURNAL_HEADER_SIZE);
    const uint32_t n = 300;
    uint64_t seq = 0, last = 0;
    for (uint32_t v = 0; v < 3; v++)
        for (uint32_t i = 0; i < n; i++) {
            struct lease l = mk(i, v);
            cr_assert_eq(lease_journal_append_upsert(j, &l, &seq), LEASE_JOURNAL_OK);
            cr_assert_eq(seq, last + 1, "sequence numbers are dense");
            last = seq;
        }
    for (uint32_t i = 0; i < n; i += 6) {
        struct lease_key k = mk(i, 0).hw;
        cr_assert_eq(lease_journal_append_delete(j, &k, NULL), LEASE_JOURNAL_OK);
    }
    struct lease_key hk = mac(5);
    cr_assert_eq(lease_journal_append_host_state(j, &hk, "installed", 9, "no", 2, NULL), LEASE_JOURNAL_OK);
    cr_assert_eq(lease_journal_append_host_state(j, &hk, "profile", 7, "rocky9-compute", 14, NULL), LEASE_JOURNAL_OK);
    cr_assert_eq(lease_journal_append_host_state(j, &hk, "installed", 9, "yes", 3, NULL), LEASE_JOURNAL_OK);
    cr_assert_eq(lease_journal_flush(j, true), LEASE_JOURNAL_OK);
    cr_assert_eq(lease_journal_durable_seq(j), lease_journal_appended_seq(j));
    uint64_t size = jsize(j);
    cr_assert_eq(lease_journal_close(j), LEASE_JOURNAL_OK);

    struct model *m;
    cr_assert_eq(open_count(&d, NULL, &rep, &m), LEASE_JOURNAL_OK);
    cr_assert_eq(rep.upserts, 3 * n);
    cr_assert_eq(rep.deletes, 50);
    cr_assert_eq(rep.host_states, 3);
    cr_assert_eq(rep.records, 3 * n + 50 + 3);
    cr_assert_eq(rep.truncated_bytes, 0);
    cr_assert_eq(rep.file_bytes, size);
    cr_assert_eq(lease_table_count(m->t), n - 50);
    for (uint32_t i = 0; i < n; i++) {
        struct lease want = mk(i, 2), got;
        int rc = lease_table_lookup_mac(m->t, &want.hw, &got);
        if (i % 6 == 0) {
            cr_assert_eq(rc, LEASE_TABLE_ENOENT, "lease %u was deleted", i);
            continue;
        }
        cr_assert_eq(rc, LEASE_TABLE_OK, "lease %u", i);
        cr_assert_eq(memcmp(&want, &got, sizeof want), 0, "lease %u differs after replay", i);
    }
    cr_assert_eq(m->nhost, 2);
    cr_assert_str_eq(m->host[0].name, "installed");
    cr_assert_eq(m->host[0].vlen, 3);
    cr_assert_eq(memcmp(m->host[0].value, "yes", 3), 0);
    cr_assert_eq(memcmp(m->host[1].value, "rocky9-compute", 14), 0);
    model_free(m);
    tdir_remove(&d);
}

Test(lease_journal, torn_last_record_is_cut_off)
{
    struct tdir d;
    tdir_make(&d);
    uint64_t off[11];
    write_ten(&d, off);
    size_t len;
    uint8_t *orig = slurp(d.file, &len);
    uint64_t last = off[10] - off[9];
    const uint64_t cuts[] = { 1, 5, 11, 12, 13, last - 1 };
    for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
        spit(d.file, orig, len - cuts[c]);
        struct lease_journal_report rep;
        struct model *m;
        cr_assert_eq(open_count(&d, NULL, &rep, &m), LEASE_JOURNAL_OK, "cut %llu: %s",
                     (unsigned long long)cuts[c], rep.message);
        cr_assert_eq(rep.records, 9, "cut %llu", (unsigned long long)cuts[c]);
        cr_assert_eq(rep.truncated_bytes, last - cuts[c]);
        cr_assert_eq(rep.error_offset, off[9]);
        cr_assert_neq(rep.message[0], '\0');
        cr_assert_eq((uint64_t)file_size(d.file), off[9], "the torn bytes are gone from the file");
        struct lease want = mk(8, 0), got, missing = mk(9, 0);
        cr_assert_eq(lease_table_lookup_mac(m->t, &want.hw, &got), LEASE_TABLE_OK);
        cr_assert_eq(lease_table_lookup_mac(m->t, &missing.hw, &got), LEASE_TABLE_ENOENT);
        model_free(m);
        cr_assert_eq(open_count(&d, NULL, &rep, NULL), LEASE_JOURNAL_OK);
        cr_assert_eq(rep.truncated_bytes, 0, "the second open finds a clean file");
        cr_assert_eq(rep.records, 9);
    }
    free(orig);
    tdir_remove(&d);
}

Test(lease_journal, garbage_after_the_last_record_is_cut_off)
{
    struct tdir d;
    tdir_make(&d);
    uint64_t off[11];
    write_ten(&d, off);
    size_t len;
    uint8_t *orig = slurp(d.file, &len);
    uint8_t *buf = malloc(len + 8192);
    struct { const char *what; size_t n; int kind; } cases[] = {
        { "random bytes", 37, 0 }, { "a zero-filled block", 4096, 1 }, { "a copied record header", 12, 2 },
    };
    for (size_t c = 0; c < 3; c++) {
        memcpy(buf, orig, len);
        uint32_t r = 12345;
        for (size_t i = 0; i < cases[c].n; i++) {
            r = r * 1103515245u + 12345u;
            buf[len + i] = cases[c].kind == 0 ? (uint8_t)(r >> 16) : 0;
        }
        if (cases[c].kind == 2)
            memcpy(buf + len, orig + off[3], 12); /* header promising a payload that never came */
        spit(d.file, buf, len + cases[c].n);
        struct lease_journal_report rep;
        cr_assert_eq(open_count(&d, NULL, &rep, NULL), LEASE_JOURNAL_OK, "%s: %s", cases[c].what, rep.message);
        cr_assert_eq(rep.records, 10, "%s", cases[c].what);
        cr_assert_eq(rep.truncated_bytes, cases[c].n, "%s", cases[c].what);
        cr_assert_eq((uint64_t)file_size(d.file), off[10]);
    }
    free(buf);
    free(orig);
    tdir_remove(&d);
}

Test(lease_journal, corruption_in_the_middle_fails_with_its_offset)
{
    struct tdir d;
    tdir_make(&d);
    uint64_t off[11];
    write_ten(&d, off);
    size_t len;
    uint8_t *orig = slurp(d.file, &len);
    uint8_t *buf = malloc(len);
    /* a flipped payload byte, a flipped length, a flipped type */
    const uint64_t where[] = { off[4] + LEASE_JOURNAL_RECORD_HEADER + 3, off[4] + 1, off[4] + 4 };
    for (size_t c = 0; c < 3; c++) {
        memcpy(buf, orig, len);
        buf[where[c]] ^= 0x40;
        spit(d.file, buf, len);
        struct lease_journal_report rep;
        struct model *m;
        cr_assert_eq(open_count(&d, NULL, &rep, &m), LEASE_JOURNAL_ECORRUPT, "case %zu", c);
        cr_assert_eq(rep.error_offset, off[4], "case %zu: offset %llu", c, (unsigned long long)rep.error_offset);
        cr_assert_neq(strstr(rep.message, "offset"), NULL, "message: %s", rep.message);
        cr_assert_eq(m->upserts, 0, "no callback runs for a file with damaged framing");
        cr_assert_eq((uint64_t)file_size(d.file), len, "a corrupt journal is left as it was");
        model_free(m);
    }
    /* the operator's repair switch cuts at the damage instead */
    struct lease_journal_options opt = { .truncate_corrupt = true };
    struct lease_journal_report rep;
    cr_assert_eq(open_count(&d, &opt, &rep, NULL), LEASE_JOURNAL_OK);
    cr_assert_eq(rep.records, 4);
    cr_assert_eq(rep.truncated_bytes, len - off[4]);
    free(buf);
    free(orig);
    tdir_remove(&d);
}

Test(lease_journal, header_checks)
{
    struct tdir d;
    tdir_make(&d);
    uint64_t off[11];
    write_ten(&d, off);
    size_t len;
    uint8_t *orig = slurp(d.file, &len);
    uint8_t *buf = malloc(len);
    struct lease_journal_report rep;

    memcpy(buf, orig, len);
    memcpy(buf, "XXXX", 4);
    spit(d.file, buf, len);
    cr_assert_eq(open_count(&d, NULL, &rep, NULL), LEASE_JOURNAL_EMAGIC);

    memcpy(buf, orig, len);
    buf[13] ^= 1; /* header CRC */
    spit(d.file, buf, len);
    cr_assert_eq(open_count(&d, NULL, &rep, NULL), LEASE_JOURNAL_ECORRUPT);
    cr_assert_eq(rep.error_offset, 0);

    memcpy(buf, orig, len);
    buf[4] = 2; /* a newer version, with a valid header CRC */
    uint32_t crc = lease_journal_crc32c(0, buf, 12);
    for (int i = 0; i < 4; i++)
        buf[12 + i] = (uint8_t)(crc >> (8 * i));
    spit(d.file, buf, len);
    cr_assert_eq(open_count(&d, NULL, &rep, NULL), LEASE_JOURNAL_EVERSION);

    spit(d.file, orig, 7); /* shorter than a header */
    cr_assert_eq(open_count(&d, NULL, &rep, NULL), LEASE_JOURNAL_ECORRUPT);

    spit(d.file, "", 0); /* empty: treated as a new journal */
    cr_assert_eq(open_count(&d, NULL, &rep, NULL), LEASE_JOURNAL_OK);
    cr_assert_eq(rep.records, 0);
    cr_assert_eq((uint64_t)file_size(d.file), LEASE_JOURNAL_HEADER_SIZE);
    free(buf);
    free(orig);
    tdir_remove(&d);
}

Test(lease_journal, unknown_types_skipped_or_refused)
{
    struct tdir d;
    tdir_make(&d);
    struct lease_journal *j;
    cr_assert_eq(lease_journal_open(d.dir, NULL, NULL, &j, NULL), LEASE_JOURNAL_OK);
    struct lease l = mk(1, 0);
    cr_assert_eq(lease_journal_append_upsert(j, &l, NULL), LEASE_JOURNAL_OK);
    cr_assert_eq(lease_journal_append(j, 0x90, "future", 6, NULL), LEASE_JOURNAL_OK);
    cr_assert_eq(lease_journal_append(j, 0xff, NULL, 0, NULL), LEASE_JOURNAL_OK);
    cr_assert_eq(lease_journal_close(j), LEASE_JOURNAL_OK);
    struct lease_journal_report rep;
    cr_assert_eq(open_count(&d, NULL, &rep, NULL), LEASE_JOURNAL_OK);
    cr_assert_eq(rep.skipped, 2);
    cr_assert_eq(rep.upserts, 1);

    cr_assert_eq(lease_journal_open(d.dir, NULL, NULL, &j, NULL), LEASE_JOURNAL_OK);
    uint64_t at = jsize(j);
    cr_assert_eq(lease_journal_append(j, 0x40, "must-know", 9, NULL), LEASE_JOURNAL_OK);
    cr_assert_eq(lease_journal_close(j), LEASE_JOURNAL_OK);
    cr_assert_eq(open_count(&d, NULL, &rep, NULL), LEASE_JOURNAL_EUNKNOWN);
    cr_assert_eq(rep.error_offset, at);
    tdir_remove(&d);
}

Test(lease_journal, callback_error_stops_replay_and_releases_the_lock)
{
    struct tdir d;
    tdir_make(&d);
    uint64_t off[11];
    write_ten(&d, off);
    struct model *m = model_new();
    m->fail_at = 3;
    struct lease_journal_replay cb = replay_into(m);
    struct lease_journal *j = NULL;
    struct lease_journal_report rep;
    cr_assert_eq(lease_journal_open(d.dir, NULL, &cb, &j, &rep), -ECANCELED);
    cr_assert_null(j);
    cr_assert_eq(rep.error_offset, off[2]);
    model_free(m);
    cr_assert_eq(open_count(&d, NULL, &rep, NULL), LEASE_JOURNAL_OK, "the failed open left no lock behind");
    cr_assert_eq(rep.records, 10);
    tdir_remove(&d);
}

struct begin_probe {
    int calls;
    uint64_t upserts, keys;
    int upserts_seen_at_begin; /* record callbacks that ran before on_begin */
    int records;
    int fail;                  /* on_begin's return value */
};

static int bp_begin(void *arg, uint64_t upserts, uint64_t keys)
{
    struct begin_probe *p = arg;
    p->calls++;
    p->upserts = upserts;
    p->keys = keys;
    p->upserts_seen_at_begin = p->records;
    return p->fail;
}

static int bp_upsert(void *arg, const struct lease *l)
{
    ((struct begin_probe *)arg)->records++;
    return 0;
}

static int bp_delete(void *arg, const struct lease_key *k)
{
    ((struct begin_probe *)arg)->records++;
    return 0;
}

Test(lease_journal, on_begin_gets_the_intact_upsert_count_first)
{
    struct tdir d;
    tdir_make(&d);
    uint64_t off[11];
    write_ten(&d, off);
    /* two deletes after the ten upserts, then a torn upsert */
    struct lease_journal *j;
    cr_assert_eq(lease_journal_open(d.dir, NULL, NULL, &j, NULL), LEASE_JOURNAL_OK);
    struct lease a = mk(1, 0), b = mk(2, 0), c = mk(11, 0);
    cr_assert_eq(lease_journal_append_delete(j, &a.hw, NULL), LEASE_JOURNAL_OK);
    cr_assert_eq(lease_journal_append_delete(j, &b.hw, NULL), LEASE_JOURNAL_OK);
    cr_assert_eq(lease_journal_append_upsert(j, &c, NULL), LEASE_JOURNAL_OK);
    cr_assert_eq(lease_journal_close(j), LEASE_JOURNAL_OK);
    cr_assert_eq(truncate(d.file, file_size(d.file) - 3), 0);

    struct begin_probe p = { 0 };
    struct lease_journal_replay cb = { .on_upsert = bp_upsert, .on_delete = bp_delete, .arg = &p,
                                       .on_begin = bp_begin };
    struct lease_journal_report rep;
    cr_assert_eq(lease_journal_open(d.dir, NULL, &cb, &j, &rep), LEASE_JOURNAL_OK, "%s", rep.message);
    cr_assert_eq(lease_journal_close(j), LEASE_JOURNAL_OK);
    cr_assert_eq(p.calls, 1);
    cr_assert_eq(p.upserts, 10, "deletes and the torn upsert are not counted");
    cr_assert_eq(p.keys, 10, "a small estimate is clamped to the record count");
    cr_assert_eq(p.upserts_seen_at_begin, 0, "on_begin runs before any record callback");
    cr_assert_eq(p.records, 12);
    cr_assert_eq(rep.records, 12);
    cr_assert_gt(rep.truncated_bytes, 0);

    /* a failing on_begin fails the open before any record is delivered */
    struct begin_probe q = { .fail = -ECANCELED };
    cb.arg = &q;
    j = NULL;
    cr_assert_eq(lease_journal_open(d.dir, NULL, &cb, &j, &rep), -ECANCELED);
    cr_assert_null(j);
    cr_assert_eq(q.calls, 1);
    cr_assert_eq(q.records, 0);
    cr_assert_neq(rep.message[0], '\0');
    tdir_remove(&d);
}

/* 20,000 leases written three times each: the key estimate is near 20,000,
 * not 60,000 (HyperLogLog, 1.6 % standard error: 8 % is five of them). */
Test(lease_journal, on_begin_estimates_distinct_keys, .timeout = 60)
{
    struct tdir d;
    tdir_make(&d);
    struct lease_journal *j;
    cr_assert_eq(lease_journal_open(d.dir, NULL, NULL, &j, NULL), LEASE_JOURNAL_OK);
    const uint32_t n = 20000;
    for (uint32_t v = 0; v < 3; v++)
        for (uint32_t i = 0; i < n; i++) {
            struct lease l = mk(i, v);
            cr_assert_eq(lease_journal_append_upsert(j, &l, NULL), LEASE_JOURNAL_OK);
        }
    cr_assert_eq(lease_journal_close(j), LEASE_JOURNAL_OK);
    struct begin_probe p = { 0 };
    struct lease_journal_replay cb = { .on_upsert = bp_upsert, .arg = &p, .on_begin = bp_begin };
    cr_assert_eq(lease_journal_open(d.dir, NULL, &cb, &j, NULL), LEASE_JOURNAL_OK);
    cr_assert_eq(lease_journal_close(j), LEASE_JOURNAL_OK);
    cr_assert_eq(p.upserts, 3 * n);
    cr_assert_geq(p.keys, n - n * 8 / 100, "estimate %llu", (unsigned long long)p.keys);
    cr_assert_leq(p.keys, n + n * 8 / 100, "estimate %llu", (unsigned long long)p.keys);
    tdir_remove(&d);
}

Test(lease_journal, one_process_per_state_directory)
{
    struct tdir d;
    tdir_make(&d);
    struct lease_journal *a, *b = NULL;
    struct lease_journal_report rep;
    cr_assert_eq(lease_journal_open(d.dir, NULL, NULL, &a, NULL), LEASE_JOURNAL_OK);
    cr_assert_eq(lease_journal_open(d.dir, NULL, NULL, &b, &rep), LEASE_JOURNAL_EBUSY);
    cr_assert_null(b);
    cr_assert_eq(lease_journal_close(a), LEASE_JOURNAL_OK);
    cr_assert_eq(lease_journal_open(d.dir, NULL, NULL, &b, NULL), LEASE_JOURNAL_OK);
    cr_assert_eq(lease_journal_close(b), LEASE_JOURNAL_OK);
    tdir_remove(&d);
}

Test(lease_journal, append_rejects_bad_input)
{
    struct tdir d;
    tdir_make(&d);
    struct lease_journal *j;
    struct lease_journal_options opt = { .batch_max_bytes = 150 };
    cr_assert_eq(lease_journal_open(d.dir, &opt, NULL, &j, NULL), LEASE_JOURNAL_OK);
    static uint8_t big[LEASE_JOURNAL_PAYLOAD_MAX + 1];
    cr_assert_eq(lease_journal_append(j, 0, "x", 1, NULL), LEASE_JOURNAL_EINVAL);
    cr_assert_eq(lease_journal_append(j, 256, "x", 1, NULL), LEASE_JOURNAL_EINVAL);
    cr_assert_eq(lease_journal_append(j, 0x90, NULL, 3, NULL), LEASE_JOURNAL_EINVAL);
    cr_assert_eq(lease_journal_append(j, 0x90, big, sizeof big, NULL), LEASE_JOURNAL_E2BIG);
    struct lease l = mk(1, 0);
    l.state = LEASE_STATE_NONE;
    cr_assert_eq(lease_journal_append_upsert(j, &l, NULL), LEASE_JOURNAL_EINVAL);
    struct lease_key k = mac(1);
    char name[LEASE_JOURNAL_HOST_NAME_MAX + 1];
    memset(name, 'n', sizeof name);
    cr_assert_eq(lease_journal_append_host_state(j, &k, name, 0, NULL, 0, NULL), LEASE_JOURNAL_EINVAL);
    cr_assert_eq(lease_journal_append_host_state(j, &k, name, sizeof name, NULL, 0, NULL), LEASE_JOURNAL_E2BIG);
    cr_assert_eq(lease_journal_append_host_state(j, &k, "v", 1, big, LEASE_JOURNAL_HOST_VALUE_MAX + 1, NULL),
                 LEASE_JOURNAL_E2BIG);
    k.hlen = 0;
    cr_assert_eq(lease_journal_append_delete(j, &k, NULL), LEASE_JOURNAL_EINVAL);
    /* the batch bound: 150 bytes hold two 56-byte lease records, not three */
    l = mk(1, 0);
    cr_assert_eq(lease_journal_append_upsert(j, &l, NULL), LEASE_JOURNAL_OK);
    cr_assert_eq(lease_journal_append_upsert(j, &l, NULL), LEASE_JOURNAL_OK);
    cr_assert_eq(lease_journal_append_upsert(j, &l, NULL), LEASE_JOURNAL_ENOBUFS);
    cr_assert_eq(lease_journal_flush(j, false), LEASE_JOURNAL_OK);
    cr_assert_eq(lease_journal_append_upsert(j, &l, NULL), LEASE_JOURNAL_OK);
    cr_assert_eq(lease_journal_appended_seq(j), 3, "rejected appends take no sequence number");
    cr_assert_eq(lease_journal_close(j), LEASE_JOURNAL_OK);
    tdir_remove(&d);
}

Test(lease_journal, commit_follows_the_fsync_interval)
{
    struct tdir d;
    tdir_make(&d);
    struct lease_journal *j;
    struct lease l = mk(1, 0);
    uint64_t seq;

    /* interval 0: every commit is durable */
    cr_assert_eq(lease_journal_open(d.dir, NULL, NULL, &j, NULL), LEASE_JOURNAL_OK);
    cr_assert_eq(lease_journal_sync_delay_ms(j), -1);
    cr_assert_eq(lease_journal_append_upsert(j, &l, &seq), LEASE_JOURNAL_OK);
    cr_assert_eq(lease_journal_sync_delay_ms(j), 0);
    cr_assert_eq(lease_journal_written_seq(j), 0);
    cr_assert_eq(lease_journal_commit(j), LEASE_JOURNAL_OK);
    cr_assert_eq(lease_journal_written_seq(j), seq);
    cr_assert_eq(lease_journal_durable_seq(j), seq);
    cr_assert_eq(lease_journal_sync_delay_ms(j), -1);
    cr_assert_eq(lease_journal_close(j), LEASE_JOURNAL_OK);

    /* interval 60 s: commit writes (kill -9 safe) but leaves the fsync for later */
    struct lease_journal_options opt = { .fsync_interval_ms = 60000 };
    cr_assert_eq(lease_journal_open(d.dir, &opt, NULL, &j, NULL), LEASE_JOURNAL_OK);
    cr_assert_eq(lease_journal_append_upsert(j, &l, &seq), LEASE_JOURNAL_OK);
    cr_assert_eq(seq, 1, "sequence numbers restart per process");
    cr_assert_eq(lease_journal_commit(j), LEASE_JOURNAL_OK);
    cr_assert_eq(lease_journal_written_seq(j), 1);
    cr_assert_eq(lease_journal_durable_seq(j), 0);
    int delay = lease_journal_sync_delay_ms(j);
    cr_assert(delay > 0 && delay <= 60000, "delay %d", delay);
    cr_assert_eq(lease_journal_flush(j, true), LEASE_JOURNAL_OK);
    cr_assert_eq(lease_journal_durable_seq(j), 1);
    cr_assert_eq(lease_journal_sync_delay_ms(j), -1);
    struct lease_journal_stats st;
    lease_journal_stats(j, &st);
    cr_assert_eq(st.fsyncs, 1);
    cr_assert_eq(st.broken, 0);
    cr_assert_eq(lease_journal_close(j), LEASE_JOURNAL_OK);
    tdir_remove(&d);
}

/* ---- group commit ---------------------------------------------------------------- */

#define GC_THREADS 4
#define GC_PER 5000

struct gc_arg {
    struct lease_journal *j;
    uint32_t id;
    _Atomic int *bad;
};

static void *gc_worker(void *p)
{
    struct gc_arg *a = p;
    for (uint32_t i = 0; i < GC_PER; i++) {
        struct lease l = mk(a->id * GC_PER + i, 0);
        uint64_t seq;
        cr_assert_eq(lease_journal_append_upsert(a->j, &l, &seq), LEASE_JOURNAL_OK);
        if (i % 10 == 9) {
            bool sync = i % 1000 == 999;
            cr_assert_eq(lease_journal_flush(a->j, sync), LEASE_JOURNAL_OK);
            if (lease_journal_written_seq(a->j) < seq || (sync && lease_journal_durable_seq(a->j) < seq))
                atomic_fetch_add(a->bad, 1);
        }
    }
    return NULL;
}

Test(lease_journal, group_commit_from_many_threads, .timeout = 120)
{
    struct tdir d;
    tdir_make(&d);
    struct lease_journal *j;
    cr_assert_eq(lease_journal_open(d.dir, NULL, NULL, &j, NULL), LEASE_JOURNAL_OK);
    _Atomic int bad = 0;
    struct gc_arg args[GC_THREADS];
    pthread_t th[GC_THREADS];
    for (uint32_t i = 0; i < GC_THREADS; i++) {
        args[i] = (struct gc_arg){ j, i, &bad };
        pthread_create(&th[i], NULL, gc_worker, &args[i]);
    }
    for (int i = 0; i < GC_THREADS; i++)
        pthread_join(th[i], NULL);
    cr_assert_eq(atomic_load(&bad), 0, "a flush returned before the caller's record was written");
    struct lease_journal_stats st;
    lease_journal_stats(j, &st);
    printf("lease_journal group commit: %d appends, %llu writes, %llu fsyncs\n", GC_THREADS * GC_PER,
           (unsigned long long)st.writes, (unsigned long long)st.fsyncs);
    cr_assert_eq(st.appended_seq, GC_THREADS * GC_PER);
    cr_assert_eq(lease_journal_close(j), LEASE_JOURNAL_OK);
    struct lease_journal_report rep;
    struct model *m;
    cr_assert_eq(open_count(&d, NULL, &rep, &m), LEASE_JOURNAL_OK);
    cr_assert_eq(rep.records, GC_THREADS * GC_PER);
    cr_assert_eq(lease_table_count(m->t), GC_THREADS * GC_PER);
    model_free(m);
    tdir_remove(&d);
}

/* ---- kill -9 ------------------------------------------------------------------------ */

Test(lease_journal, kill9_after_flush_loses_nothing_flushed, .timeout = 60)
{
    struct tdir d;
    tdir_make(&d);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        struct lease_journal *j;
        if (lease_journal_open(d.dir, NULL, NULL, &j, NULL) != 0)
            _exit(2);
        for (uint32_t i = 0; i < 100; i++) {
            struct lease l = mk(i, 1);
            if (lease_journal_append_upsert(j, &l, NULL) != 0)
                _exit(3);
        }
        /* write() only, no fsync: what the ACK path relies on against kill -9 */
        if (lease_journal_flush(j, false) != 0)
            _exit(4);
        for (uint32_t i = 100; i < 110; i++) { /* queued, never flushed: never acknowledged */
            struct lease l = mk(i, 1);
            lease_journal_append_upsert(j, &l, NULL);
        }
        kill(getpid(), SIGKILL);
        _exit(5);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child status %d", status);
    struct lease_journal_report rep;
    struct model *m;
    cr_assert_eq(open_count(&d, NULL, &rep, &m), LEASE_JOURNAL_OK, "%s", rep.message);
    cr_assert_eq(rep.records, 100);
    cr_assert_eq(rep.truncated_bytes, 0);
    for (uint32_t i = 0; i < 110; i++) {
        struct lease want = mk(i, 1), got;
        int rc = lease_table_lookup_mac(m->t, &want.hw, &got);
        if (i < 100) {
            cr_assert_eq(rc, LEASE_TABLE_OK, "flushed lease %u lost", i);
            cr_assert_eq(memcmp(&want, &got, sizeof want), 0);
        } else {
            cr_assert_eq(rc, LEASE_TABLE_ENOENT, "unflushed lease %u cannot be there", i);
        }
    }
    model_free(m);
    tdir_remove(&d);
}

/* ---- compaction ---------------------------------------------------------------------- */

/* The writer protocol of lease_store: table first, journal append inside the
 * shard lock (the commit callback). */
static int append_cb(void *arg, const struct lease *old, const struct lease *cur)
{
    struct lease_journal *j = arg;
    return cur ? lease_journal_append_upsert(j, cur, NULL) : lease_journal_append_delete(j, &old->hw, NULL);
}

static void put(struct lease_table *t, struct lease_journal *j, const struct lease *l)
{
    struct lease_table_txn txn = { .on_commit = append_cb, .arg = j };
    cr_assert_eq(lease_table_upsert(t, l, &txn), LEASE_TABLE_OK);
}

static void del(struct lease_table *t, struct lease_journal *j, const struct lease_key *k)
{
    struct lease_table_txn txn = { .on_commit = append_cb, .arg = j };
    cr_assert_eq(lease_table_delete(t, k, &txn), LEASE_TABLE_OK);
}

struct snap_src {
    struct lease_table *t;
    bool with_host;
};

static int snap_lease(void *arg, const struct lease *l)
{
    return lease_journal_snapshot_lease(arg, l);
}

static int snapshot(void *arg, struct lease_journal_snapshot *s)
{
    struct snap_src *src = arg;
    int rc = lease_table_foreach(src->t, snap_lease, s);
    if (rc == 0 && src->with_host) {
        struct lease_key k = mac(5);
        rc = lease_journal_snapshot_host_state(s, &k, "installed", 9, "yes", 3);
    }
    return rc;
}

static int cmp_visit(void *arg, const struct lease *l)
{
    struct lease_table *other = arg;
    struct lease got;
    cr_assert_eq(lease_table_lookup_mac(other, &l->hw, &got), LEASE_TABLE_OK);
    cr_assert_eq(memcmp(l, &got, sizeof got), 0, "lease differs after compaction + replay");
    return 0;
}

static void assert_same(struct lease_table *a, struct lease_table *b)
{
    cr_assert_eq(lease_table_count(a), lease_table_count(b));
    lease_table_foreach(a, cmp_visit, b);
}

Test(lease_journal, compaction_keeps_the_live_set, .timeout = 120)
{
    struct tdir d;
    tdir_make(&d);
    struct lease_journal_options opt = { .compact_min_bytes = 4096 };
    struct lease_journal *j;
    struct lease_table *t;
    cr_assert_eq(lease_table_create(8, 0, &t), LEASE_TABLE_OK);
    cr_assert_eq(lease_journal_open(d.dir, &opt, NULL, &j, NULL), LEASE_JOURNAL_OK);
    const uint32_t n = 2000;
    for (uint32_t v = 0; v < 5; v++)
        for (uint32_t i = 0; i < n; i++) {
            struct lease l = mk(i, v);
            put(t, j, &l);
        }
    for (uint32_t i = 0; i < n; i += 4) {
        struct lease_key k = mk(i, 0).hw;
        del(t, j, &k);
    }
    struct lease_key hk = mac(5);
    cr_assert_eq(lease_journal_append_host_state(j, &hk, "installed", 9, "no", 2, NULL), LEASE_JOURNAL_OK);
    cr_assert_eq(lease_journal_append_host_state(j, &hk, "installed", 9, "yes", 3, NULL), LEASE_JOURNAL_OK);
    cr_assert_eq(lease_journal_flush(j, false), LEASE_JOURNAL_OK);
    uint64_t before = jsize(j);
    cr_assert(lease_journal_should_compact(j, lease_table_count(t)));
    struct snap_src src = { t, true };
    cr_assert_eq(lease_journal_compact(j, snapshot, &src), LEASE_JOURNAL_OK);
    uint64_t after = jsize(j);
    printf("lease_journal compaction: %llu -> %llu bytes for %zu live leases\n", (unsigned long long)before,
           (unsigned long long)after, lease_table_count(t));
    cr_assert_lt(after * 4, before);
    cr_assert_eq((uint64_t)file_size(d.file), after);
    cr_assert_not(lease_journal_should_compact(j, lease_table_count(t)));
    cr_assert_eq(lease_journal_durable_seq(j), lease_journal_written_seq(j), "compaction leaves all synced");
    /* appends after the switch go to the new file */
    for (uint32_t i = 1; i < n; i += 4) {
        struct lease l = mk(i, 7);
        put(t, j, &l);
    }
    cr_assert_eq(lease_journal_close(j), LEASE_JOURNAL_OK);

    struct lease_journal_report rep;
    struct model *m;
    cr_assert_eq(open_count(&d, NULL, &rep, &m), LEASE_JOURNAL_OK, "%s", rep.message);
    assert_same(t, m->t);
    cr_assert_eq(m->nhost, 1);
    cr_assert_eq(m->host[0].vlen, 3);
    cr_assert_eq(memcmp(m->host[0].value, "yes", 3), 0);
    model_free(m);
    lease_table_destroy(t);
    tdir_remove(&d);
}

struct churn_arg {
    struct lease_table *t;
    struct lease_journal *j;
    _Atomic bool done;
};

static void *churn_writer(void *p)
{
    struct churn_arg *a = p;
    uint32_t r = 99;
    for (uint32_t op = 0; op < 30000; op++) {
        r = r * 1103515245u + 12345u;
        uint32_t i = (r >> 8) % 3000;
        if ((r >> 4) % 10 == 0) {
            struct lease_key k = mk(i, 0).hw;
            struct lease_table_txn txn = { .on_commit = append_cb, .arg = a->j };
            int rc = lease_table_delete(a->t, &k, &txn);
            cr_assert(rc == LEASE_TABLE_OK || rc == LEASE_TABLE_ENOENT);
        } else {
            struct lease l = mk(i, op);
            put(a->t, a->j, &l);
        }
        if (op % 100 == 99)
            cr_assert_eq(lease_journal_flush(a->j, false), LEASE_JOURNAL_OK);
    }
    atomic_store(&a->done, true);
    return NULL;
}

Test(lease_journal, compaction_while_other_threads_append, .timeout = 180)
{
    struct tdir d;
    tdir_make(&d);
    struct lease_journal *j;
    struct churn_arg a;
    cr_assert_eq(lease_table_create(4, 0, &a.t), LEASE_TABLE_OK);
    cr_assert_eq(lease_journal_open(d.dir, NULL, NULL, &j, NULL), LEASE_JOURNAL_OK);
    a.j = j;
    atomic_init(&a.done, false);
    pthread_t th;
    pthread_create(&th, NULL, churn_writer, &a);
    struct snap_src src = { a.t, false };
    int compactions = 0;
    while (!atomic_load(&a.done) || compactions == 0) {
        cr_assert_eq(lease_journal_compact(j, snapshot, &src), LEASE_JOURNAL_OK);
        compactions++;
        usleep(2000);
    }
    pthread_join(th, NULL);
    printf("lease_journal: %d compactions during 30000 concurrent writes\n", compactions);
    cr_assert_eq(lease_journal_close(j), LEASE_JOURNAL_OK);
    struct lease_journal_report rep;
    struct model *m;
    cr_assert_eq(open_count(&d, NULL, &rep, &m), LEASE_JOURNAL_OK, "%s", rep.message);
    assert_same(a.t, m->t);
    model_free(m);
    lease_table_destroy(a.t);
    tdir_remove(&d);
}

/* ---- the syncer thread: fdatasync off the callers' threads ---------------------------- */

struct notes {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int calls;
};

static void note(void *arg)
{
    struct notes *n = arg;
    pthread_mutex_lock(&n->mu);
    n->calls++;
    pthread_cond_broadcast(&n->cv);
    pthread_mutex_unlock(&n->mu);
}

static double now_s_early(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Waits (at most 5 s) for durable_seq >= seq, as a worker does: on notify. */
static bool wait_durable(struct lease_journal *j, struct notes *n, uint64_t seq)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    pthread_mutex_lock(&n->mu);
    while (lease_journal_durable_seq(j) < seq)
        if (pthread_cond_timedwait(&n->cv, &n->mu, &until) != 0)
            break;
    pthread_mutex_unlock(&n->mu);
    return lease_journal_durable_seq(j) >= seq;
}

Test(lease_journal, syncer_makes_records_durable_off_the_callers_thread, .timeout = 30)
{
    struct tdir d;
    tdir_make(&d);
    struct lease_journal *j;
    struct notes n = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };
    cr_assert_eq(lease_journal_open(d.dir, NULL, NULL, &j, NULL), LEASE_JOURNAL_OK);
    cr_assert_eq(lease_journal_syncer_start(j, note, &n), LEASE_JOURNAL_OK);
    cr_assert_eq(lease_journal_syncer_start(j, note, &n), LEASE_JOURNAL_EINVAL, "one syncer");
    /* interval 0: sync_to asks and returns; the syncer writes and syncs, then notifies */
    uint64_t seq = 0;
    for (uint32_t i = 0; i < 10; i++) {
        struct lease l = mk(i, 0);
        cr_assert_eq(lease_journal_append_upsert(j, &l, &seq), LEASE_JOURNAL_OK);
    }
    cr_assert_eq(lease_journal_sync_to(j, seq), LEASE_JOURNAL_OK);
    cr_assert(wait_durable(j, &n, seq), "durable %llu < %llu", (unsigned long long)lease_journal_durable_seq(j),
              (unsigned long long)seq);
    cr_assert_geq(lease_journal_written_seq(j), seq);
    pthread_mutex_lock(&n.mu);
    cr_assert_geq(n.calls, 1, "notified");
    pthread_mutex_unlock(&n.mu);
    cr_assert_eq(lease_journal_sync_delay_ms(j), -1, "nobody else needs a timer");
    /* commit: written at once, durable soon after without anyone asking */
    struct lease l = mk(10, 0);
    cr_assert_eq(lease_journal_append_upsert(j, &l, &seq), LEASE_JOURNAL_OK);
    cr_assert_eq(lease_journal_commit(j), LEASE_JOURNAL_OK);
    cr_assert_geq(lease_journal_written_seq(j), seq);
    cr_assert(wait_durable(j, &n, seq));
    /* an append nobody commits or asks about (an OFFER) is written and synced too */
    l = mk(11, 0);
    cr_assert_eq(lease_journal_append_upsert(j, &l, &seq), LEASE_JOURNAL_OK);
    cr_assert(wait_durable(j, &n, seq));
    cr_assert_eq(lease_journal_sync_to(j, seq), LEASE_JOURNAL_OK, "already durable");
    struct lease_journal_stats st;
    lease_journal_stats(j, &st);
    cr_assert_geq(st.fsyncs, 3);
    cr_assert_eq(st.broken, 0);
    cr_assert_eq(lease_journal_error(j), 0);
    cr_assert_eq(lease_journal_close(j), LEASE_JOURNAL_OK);
    struct lease_journal_report rep;
    cr_assert_eq(open_count(&d, NULL, &rep, NULL), LEASE_JOURNAL_OK);
    cr_assert_eq(rep.upserts, 12);
    tdir_remove(&d);
}

Test(lease_journal, syncer_keeps_the_fsync_interval, .timeout = 30)
{
    struct tdir d;
    tdir_make(&d);
    struct lease_journal *j;
    struct notes n = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };
    struct lease_journal_options opt = { .fsync_interval_ms = 100 };
    cr_assert_eq(lease_journal_open(d.dir, &opt, NULL, &j, NULL), LEASE_JOURNAL_OK);
    cr_assert_eq(lease_journal_syncer_start(j, note, &n), LEASE_JOURNAL_OK);
    /* 40 commits over ~400 ms: each is written before commit returns (kill -9
     * safe), fdatasync at most every 100 ms: 4-5 of them, not 40 */
    uint64_t seq = 0;
    double t0 = now_s_early();
    for (uint32_t i = 0; i < 40; i++) {
        struct lease l = mk(i, 0);
        cr_assert_eq(lease_journal_append_upsert(j, &l, &seq), LEASE_JOURNAL_OK);
        cr_assert_eq(lease_journal_commit(j), LEASE_JOURNAL_OK);
        cr_assert_geq(lease_journal_written_seq(j), seq);
        usleep(10000);
    }
    double took = now_s_early() - t0;
    cr_assert(wait_durable(j, &n, seq));
    struct lease_journal_stats st;
    lease_journal_stats(j, &st);
    cr_assert_leq(st.fsyncs, (uint64_t)(took * 10) + 2, "%llu fsyncs in %.3f s", (unsigned long long)st.fsyncs,
                  took);
    cr_assert_geq(st.fsyncs, 2, "synced while commits went on");
    cr_assert_eq(lease_journal_close(j), LEASE_JOURNAL_OK);
    tdir_remove(&d);
}

/* A slow disk: while slow_sync_ms is set, fdatasync() takes that long.  This
 * definition takes the place of libc's for the journal's calls (the test binary
 * links it first); otherwise it is the plain system call. */
static _Atomic int slow_sync_ms;
int fdatasync(int fd)
{
    int ms = atomic_load(&slow_sync_ms);
    if (ms)
        usleep((useconds_t)ms * 1000);
    return (int)syscall(SYS_fdatasync, fd);
}

static void *slow_flush(void *p)
{
    cr_assert_eq(lease_journal_flush(p, true), LEASE_JOURNAL_OK);
    return NULL;
}

Test(lease_journal, a_slow_fdatasync_holds_up_no_writer, .timeout = 30)
{
    struct tdir d;
    tdir_make(&d);
    struct lease_journal *j;
    struct notes n = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };
    cr_assert_eq(lease_journal_open(d.dir, NULL, NULL, &j, NULL), LEASE_JOURNAL_OK);
    cr_assert_eq(lease_journal_syncer_start(j, note, &n), LEASE_JOURNAL_OK);
    atomic_store(&slow_sync_ms, 500);
    uint64_t seq1, seq2;
    struct lease l = mk(1, 0);
    cr_assert_eq(lease_journal_append_upsert(j, &l, &seq1), LEASE_JOURNAL_OK);
    double t0 = now_s_early();
    cr_assert_eq(lease_journal_sync_to(j, seq1), LEASE_JOURNAL_OK);
    usleep(100000); /* the syncer is inside its 500 ms fdatasync now */
    cr_assert_lt(lease_journal_durable_seq(j), seq1);
    /* a worker's turn: append and commit (write) do not wait for that fdatasync */
    for (uint32_t i = 2; i < 50; i++) {
        l = mk(i, 0);
        cr_assert_eq(lease_journal_append_upsert(j, &l, &seq2), LEASE_JOURNAL_OK);
    }
    double t1 = now_s_early();
    cr_assert_eq(lease_journal_commit(j), LEASE_JOURNAL_OK);
    cr_assert_eq(lease_journal_flush(j, false), LEASE_JOURNAL_OK);
    double took = now_s_early() - t1;
    cr_assert_lt(took, 0.25, "commit and write took %.3f s behind a 0.5 s fdatasync", took);
    cr_assert_geq(lease_journal_written_seq(j), seq2, "written: kill -9 loses none of them");
    cr_assert_lt(lease_journal_durable_seq(j), seq2);
    cr_assert(wait_durable(j, &n, seq2));
    cr_assert_geq(now_s_early() - t0, 0.5, "durable only after the slow fdatasync");
    atomic_store(&slow_sync_ms, 0);
    cr_assert_eq(lease_journal_close(j), LEASE_JOURNAL_OK);

    /* without the syncer: another thread's flush(true) holds up no write either */
    cr_assert_eq(lease_journal_open(d.dir, NULL, NULL, &j, NULL), LEASE_JOURNAL_OK);
    l = mk(100, 0);
    cr_assert_eq(lease_journal_append_upsert(j, &l, NULL), LEASE_JOURNAL_OK);
    atomic_store(&slow_sync_ms, 500);
    pthread_t th;
    pthread_create(&th, NULL, slow_flush, j);
    usleep(100000);
    l = mk(101, 0);
    cr_assert_eq(lease_journal_append_upsert(j, &l, &seq2), LEASE_JOURNAL_OK);
    t1 = now_s_early();
    cr_assert_eq(lease_journal_flush(j, false), LEASE_JOURNAL_OK);
    took = now_s_early() - t1;
    cr_assert_lt(took, 0.25, "a write waited %.3f s for another thread's fdatasync", took);
    cr_assert_geq(lease_journal_written_seq(j), seq2);
    pthread_join(th, NULL);
    atomic_store(&slow_sync_ms, 0);
    cr_assert_eq(lease_journal_close(j), LEASE_JOURNAL_OK);
    struct lease_journal_report rep;
    cr_assert_eq(open_count(&d, NULL, &rep, NULL), LEASE_JOURNAL_OK);
    cr_assert_eq(rep.upserts, 51);
    tdir_remove(&d);
}

struct sy_arg {
    struct lease_table *t;
    struct lease_journal *j;
    struct notes *n;
    uint32_t base;
    _Atomic int *bad;
};

/* A worker with fsync_interval_ms 0: commit, ask for its records, wait on notify. */
static void *sy_writer(void *p)
{
    struct sy_arg *a = p;
    for (uint32_t i = 0; i < 3000; i++) {
        struct lease l = mk(a->base + i % 500, i);
        put(a->t, a->j, &l);
        uint64_t seq = lease_journal_appended_seq(a->j); /* this record's or a later one's */
        if (i % 25 == 24) {
            cr_assert_eq(lease_journal_sync_to(a->j, seq), LEASE_JOURNAL_OK);
            if (!wait_durable(a->j, a->n, seq))
                atomic_fetch_add(a->bad, 1);
        }
    }
    return NULL;
}

Test(lease_journal, syncer_with_compaction_and_writers, .timeout = 180)
{
    struct tdir d;
    tdir_make(&d);
    struct lease_journal *j;
    struct notes n = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };
    struct lease_table *t;
    cr_assert_eq(lease_table_create(4, 0, &t), LEASE_TABLE_OK);
    cr_assert_eq(lease_journal_open(d.dir, NULL, NULL, &j, NULL), LEASE_JOURNAL_OK);
    cr_assert_eq(lease_journal_syncer_start(j, note, &n), LEASE_JOURNAL_OK);
    _Atomic int bad = 0;
    struct sy_arg a[2] = { { t, j, &n, 0, &bad }, { t, j, &n, 1000, &bad } };
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, sy_writer, &a[i]);
    struct snap_src src = { t, false };
    for (int c = 0; c < 20; c++) {
        cr_assert_eq(lease_journal_compact(j, snapshot, &src), LEASE_JOURNAL_OK);
        usleep(5000);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    cr_assert_eq(atomic_load(&bad), 0, "a record asked for never became durable");
    cr_assert_eq(lease_journal_close(j), LEASE_JOURNAL_OK);
    struct lease_journal_report rep;
    struct model *m;
    cr_assert_eq(open_count(&d, NULL, &rep, &m), LEASE_JOURNAL_OK, "%s", rep.message);
    assert_same(t, m->t);
    model_free(m);
    lease_table_destroy(t);
    tdir_remove(&d);
}

/* ---- 1,000,000 leases: printed, not asserted ------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_kib(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static int load_upsert(void *arg, const struct lease *l)
{
    return lease_table_upsert(arg, l, NULL);
}

static int load_reserve(void *arg, uint64_t upserts, uint64_t keys)
{
    return lease_table_reserve(arg, (size_t)keys);
}

Test(lease_journal, load_one_million_leases, .timeout = 900)
{
    const uint32_t n = 1000000;
    struct tdir d;
    tdir_make(&d);
    struct lease_journal *j;
    cr_assert_eq(lease_journal_open(d.dir, NULL, NULL, &j, NULL), LEASE_JOURNAL_OK);
    for (uint32_t i = 0; i < n; i++) {
        struct lease l;
        memset(&l, 0, sizeof l);
        l.hw = mac(i);
        l.state = LEASE_BOUND;
        l.ip = IP(10, 0, 0, 0) + 1 + i;
        l.expires = 1700003600 + i;
        l.updated = 1700000000 + i;
        l.client_id_len = 7;
        l.client_id[0] = 1;
        memcpy(l.client_id + 1, l.hw.chaddr, 6);
        cr_assert_eq(lease_journal_append_upsert(j, &l, NULL), LEASE_JOURNAL_OK);
        if (i % 65536 == 65535)
            cr_assert_eq(lease_journal_flush(j, false), LEASE_JOURNAL_OK);
    }
    cr_assert_eq(lease_journal_close(j), LEASE_JOURNAL_OK);
    off_t bytes = file_size(d.file);

    /* 0: table created for 1M; 1: created empty, sized by the on_begin hook
     * (what lease_store does); 2: created empty, grown record by record */
    static const char *const how[] = { "sized for 1M", "empty, reserved by on_begin",
                                       "grown from empty" };
    for (int grown = 0; grown < 3; grown++) {
        struct lease_table *t;
        long rss0 = rss_kib();
        double t0 = now_s();
        clock_t c0 = clock();
        cr_assert_eq(lease_table_create(16, grown ? 0 : n, &t), LEASE_TABLE_OK);
        struct lease_journal_replay cb = { .on_upsert = load_upsert, .arg = t,
                                           .on_begin = grown == 1 ? load_reserve : NULL };
        struct lease_journal_report rep;
        cr_assert_eq(lease_journal_open(d.dir, NULL, &cb, &j, &rep), LEASE_JOURNAL_OK);
        double t1 = now_s(), cpu = (double)(clock() - c0) / CLOCKS_PER_SEC;
        cr_assert_eq(rep.records, n);
        cr_assert_eq(lease_table_count(t), n);
        struct lease_table_stats st;
        lease_table_stats(t, &st);
        printf("lease_journal: loaded %u leases from a %lld-byte journal in %.3f s "
               "(%.3f s CPU; table %s): %.1f table bytes/lease, RSS +%.1f bytes/lease\n",
               n, (long long)bytes, t1 - t0, cpu, how[grown],
               (double)st.memory_bytes / n, (double)(rss_kib() - rss0) * 1024.0 / n);
        fflush(stdout);
        struct lease got;
        cr_assert_eq(lease_table_lookup_ip(t, IP(10, 0, 0, 0) + n, &got), LEASE_TABLE_OK);
        cr_assert_eq(got.expires, 1700003600 + n - 1);
        cr_assert_eq(lease_journal_close(j), LEASE_JOURNAL_OK);
        lease_table_destroy(t);
    }
    tdir_remove(&d);
}
