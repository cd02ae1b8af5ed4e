/* engine/lease_journal.c — append-only journal with group commit and
 * online compaction.  Format and promises: see lease_journal.h. */
#include "engine/lease_journal.h"
#include "engine/mix64.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

#define LJ_TMP_FILE    LEASE_JOURNAL_FILE ".tmp"
#define LJ_LOCK_FILE   "leases.lock"
#define LJ_MAGIC       "BSLJ"
#define LJ_SNAP_CHUNK  (1u << 20) /* compaction writes in 1 MiB pieces */
#define LJ_IDLE_SYNC_MS  250  /* syncer: records nobody waits on (fsync_interval_ms 0), and
                                 its longest sleep (so appends without a commit are seen) */
#define LJ_RETRY_MS      100  /* syncer: pause after a failed write before trying again */

/* ---- CRC32C --------------------------------------------------------------- */

static uint32_t crc_tab[8][256];
static bool crc_hw;
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
        crc_tab[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_tab[t][i] = (crc_tab[t - 1][i] >> 8) ^ crc_tab[0][crc_tab[t - 1][i] & 0xff];
#if defined(__x86_64__)
    __builtin_cpu_init();
    crc_hw = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t crc_sw(uint32_t c, const uint8_t *p, size_t n)
{
    while (n >= 8) { /* slicing-by-8 */
        uint64_t v;
        memcpy(&v, p, 8);
        v ^= c; /* little-endian host */
        c = crc_tab[7][v & 0xff] ^ crc_tab[6][(v >> 8) & 0xff] ^ crc_tab[5][(v >> 16) & 0xff] ^
            crc_tab[4][(v >> 24) & 0xff] ^ crc_tab[3][(v >> 32) & 0xff] ^
            crc_tab[2][(v >> 40) & 0xff] ^ crc_tab[1][(v >> 48) & 0xff] ^ crc_tab[0][v >> 56];
        p += 8;
        n -= 8;
    }
    while (n--)
        c = (c >> 8) ^ crc_tab[0][(c ^ *p++) & 0xff];
    return c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_sse42(uint32_t c, const uint8_t *p, size_t n)
{
    uint64_t c64 = c;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c64 = _mm_crc32_u64(c64, v);
        p += 8;
        n -= 8;
    }
    c = (uint32_t)c64;
    while (n--)
        c = _mm_crc32_u8(c, *p++);
    return c;
}
#endif

uint32_t lease_journal_crc32c(uint32_t crc, const void *buf, size_t len)
{
    pthread_once(&crc_once, crc_init);
    uint32_t c = ~crc;
#if defined(__x86_64__)
    if (crc_hw)
        return ~crc_sse42(c, buf, len);
#endif
    return ~crc_sw(c, buf, len);
}

/* ---- little-endian codec ---------------------------------------------------- */

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)v); put16(p + 2, (uint16_t)(v >> 16)); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)v); put32(p + 4, (uint32_t)(v >> 32)); }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const uint8_t *p) { return get16(p) | (uint32_t)get16(p + 2) << 16; }
static uint64_t get64(const uint8_t *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }

/* Bounds-checked reader over one payload. */
struct lj_rd {
    const uint8_t *p;
    size_t len, off;
    bool bad;
};

static const uint8_t *lj_take(struct lj_rd *r, size_t n)
{
    if (r->bad || r->len - r->off < n) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *q = r->p + r->off;
    r->off += n;
    return q;
}

static uint8_t lj_u8(struct lj_rd *r) { const uint8_t *q = lj_take(r, 1); return q ? q[0] : 0; }
static uint16_t lj_u16(struct lj_rd *r) { const uint8_t *q = lj_take(r, 2); return q ? get16(q) : 0; }
static uint32_t lj_u32(struct lj_rd *r) { const uint8_t *q = lj_take(r, 4); return q ? get32(q) : 0; }
static uint64_t lj_u64(struct lj_rd *r) { const uint8_t *q = lj_take(r, 8); return q ? get64(q) : 0; }

static size_t lj_put_key(uint8_t *p, const struct lease_key *k)
{
    p[0] = k->htype;
    p[1] = k->hlen;
    memcpy(p + 2, k->chaddr, k->hlen);
    return 2 + (size_t)k->hlen;
}

static bool lj_get_key(struct lj_rd *r, struct lease_key *k)
{
    memset(k, 0, sizeof *k);
    k->htype = lj_u8(r);
    k->hlen = lj_u8(r);
    if (r->bad || k->hlen == 0 || k->hlen > LEASE_HWADDR_MAX)
        return false;
    const uint8_t *q = lj_take(r, k->hlen);
    if (!q)
        return false;
    memcpy(k->chaddr, q, k->hlen);
    return true;
}

/* payload of LEASE_JOURNAL_UPSERT; at most 108 bytes */
static size_t lj_encode_lease(uint8_t *p, const struct lease *l)
{
    size_t o = lj_put_key(p, &l->hw);
    p[o++] = l->state;
    p[o++] = l->client_id_len;
    put16(p + o, l->subnet);
    put16(p + o + 2, l->flags);
    put32(p + o + 4, l->ip);
    put64(p + o + 8, (uint64_t)l->expires);
    put64(p + o + 16, (uint64_t)l->updated);
    o += 24;
    memcpy(p + o, l->client_id, l->client_id_len);
    o += l->client_id_len;
    size_t hn = strnlen(l->hostname, LEASE_HOSTNAME_MAX);
    p[o++] = (uint8_t)hn;
    memcpy(p + o, l->hostname, hn);
    return o + hn;
}

static bool lj_decode_lease(const uint8_t *p, size_t len, struct lease *l)
{
    struct lj_rd r = { p, len, 0, false };
    memset(l, 0, sizeof *l);
    if (!lj_get_key(&r, &l->hw))
        return false;
    l->state = lj_u8(&r);
    l->client_id_len = lj_u8(&r);
    l->subnet = lj_u16(&r);
    l->flags = lj_u16(&r);
    l->ip = lj_u32(&r);
    l->expires = (int64_t)lj_u64(&r);
    l->updated = (int64_t)lj_u64(&r);
    if (r.bad || l->client_id_len > LEASE_CLIENT_ID_MAX)
        return false;
    const uint8_t *q = lj_take(&r, l->client_id_len);
    if (!q)
        return false;
    memcpy(l->client_id, q, l->client_id_len);
    uint8_t hn = lj_u8(&r);
    if (r.bad || hn > LEASE_HOSTNAME_MAX || !(q = lj_take(&r, hn)) || memchr(q, '\0', hn))
        return false;
    memcpy(l->hostname, q, hn);
    return lease_validate(l) == LEASE_TABLE_OK; /* trailing bytes: newer fields, ignored */
}

/* payload of LEASE_JOURNAL_HOST_STATE */
static size_t lj_encode_host(uint8_t *p, const struct lease_key *k, const char *name, size_t nlen,
                             const void *val, size_t vlen)
{
    size_t o = lj_put_key(p, k);
    p[o++] = (uint8_t)nlen;
    memcpy(p + o, name, nlen);
    o += nlen;
    put16(p + o, (uint16_t)vlen);
    o += 2;
    if (vlen)
        memcpy(p + o, val, vlen);
    return o + vlen;
}

static int lj_check_host(const struct lease_key *k, const char *name, size_t nlen, const void *val,
                         size_t vlen)
{
    if (!k || k->hlen == 0 || k->hlen > LEASE_HWADDR_MAX || !name || nlen == 0 || (vlen && !val))
        return LEASE_JOURNAL_EINVAL;
    if (nlen > LEASE_JOURNAL_HOST_NAME_MAX || vlen > LEASE_JOURNAL_HOST_VALUE_MAX)
        return LEASE_JOURNAL_E2BIG;
    return LEASE_JOURNAL_OK;
}

/* Fill a 12-byte record header for payload p. */
static void lj_record_header(uint8_t *h, unsigned type, const void *p, size_t len)
{
    put32(h, (uint32_t)len);
    h[4] = (uint8_t)type;
    h[5] = 0;
    put16(h + 6, 0);
    put32(h + 8, lease_journal_crc32c(lease_journal_crc32c(0, h, 8), p, len));
}

/* ---- the journal object ------------------------------------------------------ */

struct lj_buf {
    uint8_t *data;
    size_t len, cap;
};

static int lj_buf_reserve(struct lj_buf *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return LEASE_JOURNAL_OK;
    size_t cap = b->cap ? b->cap : 64 * 1024;
    while (cap - b->len < extra)
        cap *= 2;
    uint8_t *d = realloc(b->data, cap);
    if (!d)
        return LEASE_JOURNAL_ENOMEM;
    b->data = d;
    b->cap = cap;
    return LEASE_JOURNAL_OK;
}

struct lease_journal {
    char *dir;
    int dirfd, fd, lockfd;
    struct lease_journal_options opt;

    pthread_mutex_t batch_lock;  /* guards batch, batch_seq, batch_records */
    struct lj_buf batch;
    uint64_t batch_seq;          /* seq of the newest queued record */
    uint64_t batch_records;

    pthread_mutex_t io_lock;     /* guards fd, file_*, inflight, broken, counters */
    struct lj_buf inflight;
    uint64_t file_size, file_records;
    uint64_t writes, fsyncs, compactions;
    int broken;

    pthread_mutex_t compact_lock;
    /* Taken around a write + fdatasync, with io_lock held only for the write:
     * appends and writes go on during the fdatasync.  Compaction takes it before
     * switching fd, so a running fdatasync never sees its fd closed.
     * Lock order: compact_lock, sync_lock, io_lock, batch_lock. */
    pthread_mutex_t sync_lock;

    /* the syncer thread (lease_journal_syncer_start) */
    pthread_mutex_t sy_mu;       /* guards the sy_* fields below */
    pthread_cond_t sy_cv;        /* CLOCK_MONOTONIC */
    pthread_t sy_thread;
    bool sy_running, sy_stop, sy_failed;
    _Atomic bool sy_on;          /* sy_running, readable without a lock */
    _Atomic bool sy_idle;        /* waiting with nothing unsynced: a commit must wake it */
    uint64_t sy_requested;       /* durable_seq asked for by lease_journal_sync_to */
    void (*sy_notify)(void *arg);
    void *sy_arg;

    _Atomic uint64_t appended_seq, written_seq, durable_seq;
    _Atomic int64_t last_sync_ms;
    _Atomic uint64_t pending_bytes;
};

static int64_t lj_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void lj_log(const struct lease_journal_options *opt, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void lj_log(const struct lease_journal_options *opt, const char *fmt, ...)
{
    char msg[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (opt->on_log)
        opt->on_log(opt->log_arg, msg);
    else
        fprintf(stderr, "lease_journal: %s\n", msg);
}

static void lj_report(struct lease_journal_report *rep, uint64_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void lj_report(struct lease_journal_report *rep, uint64_t off, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rep->message, sizeof rep->message, fmt, ap);
    va_end(ap);
    rep->error_offset = off;
}

static int lj_pwrite_all(int fd, const uint8_t *p, size_t len, uint64_t off)
{
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -EIO;
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return LEASE_JOURNAL_OK;
}

static void lj_header(uint8_t h[LEASE_JOURNAL_HEADER_SIZE])
{
    memcpy(h, LJ_MAGIC, 4);
    put16(h + 4, LEASE_JOURNAL_VERSION);
    put16(h + 6, LEASE_JOURNAL_HEADER_SIZE);
    put32(h + 8, 0);
    put32(h + 12, lease_journal_crc32c(0, h, 12));
}

static int lj_fsync_dir(struct lease_journal *j)
{
    return fsync(j->dirfd) == 0 ? LEASE_JOURNAL_OK : -errno;
}

/* A new journal appears whole or not at all: header into the temp file,
 * fsync, rename, fsync the directory. */
static int lj_create(struct lease_journal *j)
{
    uint8_t h[LEASE_JOURNAL_HEADER_SIZE];
    lj_header(h);
    int fd = openat(j->dirfd, LJ_TMP_FILE, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int rc = lj_pwrite_all(fd, h, sizeof h, 0);
    if (rc == 0 && fdatasync(fd) != 0)
        rc = -errno;
    if (rc == 0 && renameat(j->dirfd, LJ_TMP_FILE, j->dirfd, LEASE_JOURNAL_FILE) != 0)
        rc = -errno;
    if (rc == 0)
        rc = lj_fsync_dir(j);
    if (rc != 0) {
        close(fd);
        unlinkat(j->dirfd, LJ_TMP_FILE, 0);
        return rc;
    }
    j->fd = fd;
    return LEASE_JOURNAL_OK;
}

/* Is there an intact record at off?  On success len and type describe it. */
static bool lj_record_ok(const uint8_t *m, uint64_t size, uint64_t off, uint32_t *len, uint8_t *type)
{
    if (size - off < LEASE_JOURNAL_RECORD_HEADER)
        return false;
    const uint8_t *h = m + off;
    uint32_t n = get32(h);
    if (n > LEASE_JOURNAL_PAYLOAD_MAX || h[4] == 0 || h[5] != 0 || get16(h + 6) != 0 ||
        size - off - LEASE_JOURNAL_RECORD_HEADER < n)
        return false;
    uint32_t crc = lease_journal_crc32c(lease_journal_crc32c(0, h, 8), h + LEASE_JOURNAL_RECORD_HEADER, n);
    if (crc != get32(h + 8))
        return false;
    *len = n;
    *type = h[4];
    return true;
}

/* Distinct keys among the upsert records, counted in the verify pass with a
 * HyperLogLog sketch (Flajolet, Fusy, Gandouet, Meunier 2007): 4096 one-byte
 * registers, about 1.6 % standard error.  The small-range correction is left
 * out: below ~10,000 keys the raw estimate runs high, and the caller clamps
 * it to the record count (a few thousand leases need no exact sizing). */
#define LJ_HLL_BITS 12

struct lj_hll {
    uint8_t reg[1u << LJ_HLL_BITS];
};

/* p: an upsert payload of len bytes, which starts with htype, hlen, chaddr
 * (lj_put_key).  A malformed key is hashed as it is: lj_dispatch rejects it. */
static void lj_hll_add(struct lj_hll *h, const uint8_t *p, uint32_t len)
{
    uint8_t key[24] = { 0 };
    size_t n = len >= 2 ? 2u + (p[1] <= LEASE_HWADDR_MAX ? p[1] : 0) : len;
    memcpy(key, p, n < len ? n : len);
    uint64_t w[3];
    memcpy(w, key, sizeof w);
    uint64_t x = mix64(mix64(mix64(w[0]) ^ w[1]) ^ w[2]);
    unsigned idx = (unsigned)(x >> (64 - LJ_HLL_BITS));
    uint64_t rest = x << LJ_HLL_BITS | (uint64_t)1 << (LJ_HLL_BITS - 1); /* guard: rank <= 53 */
    uint8_t rank = (uint8_t)(__builtin_clzll(rest) + 1);
    if (rank > h->reg[idx])
        h->reg[idx] = rank;
}

static uint64_t lj_hll_estimate(const struct lj_hll *h)
{
    const double m = (double)(1u << LJ_HLL_BITS);
    double sum = 0;
    for (size_t i = 0; i < sizeof h->reg; i++)
        sum += 1.0 / (double)((uint64_t)1 << h->reg[i]);
    return (uint64_t)(0.7213 / (1.0 + 1.079 / m) * m * m / sum);
}

/* After a damaged record at bad: does any intact record start later? */
static bool lj_intact_after(const uint8_t *m, uint64_t size, uint64_t bad)
{
    uint32_t len;
    uint8_t type;
    for (uint64_t off = bad + 1; off + LEASE_JOURNAL_RECORD_HEADER <= size; off++)
        if (lj_record_ok(m, size, off, &len, &type))
            return true;
    return false;
}

/* Pass 1: header and framing.  Sets *end to the end of the intact prefix. */
static int lj_verify(const struct lease_journal_options *opt, const uint8_t *m, uint64_t size,
                     uint64_t *end, uint64_t *upserts, struct lj_hll *keys, bool *repaired,
                     struct lease_journal_report *rep)
{
    if (size < LEASE_JOURNAL_HEADER_SIZE) {
        lj_report(rep, 0, "file is %llu bytes, shorter than the journal header",
                  (unsigned long long)size);
        return memcmp(m, LJ_MAGIC, size < 4 ? size : 4) ? LEASE_JOURNAL_EMAGIC : LEASE_JOURNAL_ECORRUPT;
    }
    if (memcmp(m, LJ_MAGIC, 4) != 0) {
        lj_report(rep, 0, "not a bootstorm lease journal (bad magic)");
        return LEASE_JOURNAL_EMAGIC;
    }
    if (get32(m + 12) != lease_journal_crc32c(0, m, 12)) {
        lj_report(rep, 0, "journal header CRC mismatch");
        return LEASE_JOURNAL_ECORRUPT;
    }
    if (get16(m + 4) != LEASE_JOURNAL_VERSION) {
        lj_report(rep, 4, "journal format version %u, this build reads %u", get16(m + 4),
                  LEASE_JOURNAL_VERSION);
        return LEASE_JOURNAL_EVERSION;
    }
    if (get16(m + 6) != LEASE_JOURNAL_HEADER_SIZE) {
        lj_report(rep, 6, "journal header size %u, expected %u", get16(m + 6), LEASE_JOURNAL_HEADER_SIZE);
        return LEASE_JOURNAL_ECORRUPT;
    }
    uint64_t off = LEASE_JOURNAL_HEADER_SIZE;
    while (off < size) {
        uint32_t len;
        uint8_t type;
        if (lj_record_ok(m, size, off, &len, &type)) {
            if (type == LEASE_JOURNAL_UPSERT) {
                (*upserts)++;
                lj_hll_add(keys, m + off + LEASE_JOURNAL_RECORD_HEADER, len);
            }
            off += LEASE_JOURNAL_RECORD_HEADER + (uint64_t)len;
            continue;
        }
        if (lj_intact_after(m, size, off)) {
            if (!opt->truncate_corrupt) {
                lj_report(rep, off,
                          "damaged record at offset %llu with intact records after it "
                          "(journal corrupt; truncate_corrupt would drop %llu bytes)",
                          (unsigned long long)off, (unsigned long long)(size - off));
                return LEASE_JOURNAL_ECORRUPT;
            }
            *repaired = true;
        }
        break; /* torn tail, or repair */
    }
    *end = off;
    return LEASE_JOURNAL_OK;
}

/* Pass 2: decode and dispatch records in [header, end). */
static int lj_dispatch(const uint8_t *m, uint64_t end, const struct lease_journal_replay *cb,
                       struct lease_journal_report *rep)
{
    uint64_t off = LEASE_JOURNAL_HEADER_SIZE;
    while (off < end) {
        uint32_t len = get32(m + off);
        uint8_t type = m[off + 4];
        const uint8_t *p = m + off + LEASE_JOURNAL_RECORD_HEADER;
        int rc = 0;
        switch (type) {
        case LEASE_JOURNAL_UPSERT: {
            struct lease l;
            if (!lj_decode_lease(p, len, &l))
                goto bad;
            rep->upserts++;
            if (cb->on_upsert)
                rc = cb->on_upsert(cb->arg, &l);
            break;
        }
        case LEASE_JOURNAL_DELETE: {
            struct lj_rd r = { p, len, 0, false };
            struct lease_key k;
            if (!lj_get_key(&r, &k))
                goto bad;
            rep->deletes++;
            if (cb->on_delete)
                rc = cb->on_delete(cb->arg, &k);
            break;
        }
        case LEASE_JOURNAL_HOST_STATE: {
            struct lj_rd r = { p, len, 0, false };
            struct lease_key k;
            if (!lj_get_key(&r, &k))
                goto bad;
            uint8_t nlen = lj_u8(&r);
            const uint8_t *name = lj_take(&r, nlen);
            uint16_t vlen = lj_u16(&r);
            const uint8_t *val = lj_take(&r, vlen);
            if (r.bad || nlen == 0 || nlen > LEASE_JOURNAL_HOST_NAME_MAX || vlen > LEASE_JOURNAL_HOST_VALUE_MAX)
                goto bad;
            rep->host_states++;
            if (cb->on_host_state)
                rc = cb->on_host_state(cb->arg, &k, (const char *)name, nlen, val, vlen);
            break;
        }
        default:
            if (type < LEASE_JOURNAL_SKIPPABLE) {
                lj_report(rep, off, "record type %u at offset %llu is not known to this build",
                          type, (unsigned long long)off);
                return LEASE_JOURNAL_EUNKNOWN;
            }
            rep->skipped++;
            break;
        }
        if (rc != 0) {
            lj_report(rep, off, "replay callback failed (%d) at offset %llu", rc, (unsigned long long)off);
            return rc;
        }
        rep->records++;
        off += LEASE_JOURNAL_RECORD_HEADER + (uint64_t)len;
        continue;
    bad:
        lj_report(rep, off, "record type %u at offset %llu has an intact CRC but invalid contents",
                  type, (unsigned long long)off);
        return LEASE_JOURNAL_ECORRUPT;
    }
    return LEASE_JOURNAL_OK;
}

static int lj_replay(struct lease_journal *j, const struct lease_journal_replay *cb,
                     struct lease_journal_report *rep)
{
    struct stat st;
    if (fstat(j->fd, &st) != 0)
        return -errno;
    uint64_t size = (uint64_t)st.st_size;
    if (size == 0) {
        /* an empty file (created by hand, or by something else): give it a header */
        uint8_t h[LEASE_JOURNAL_HEADER_SIZE];
        lj_header(h);
        int rc = lj_pwrite_all(j->fd, h, sizeof h, 0);
        if (rc == 0 && fdatasync(j->fd) != 0)
            rc = -errno;
        j->file_size = sizeof h;
        return rc;
    }
    const uint8_t *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, j->fd, 0);
    if (m == MAP_FAILED)
        return -errno;
    madvise((void *)m, size, MADV_SEQUENTIAL);
    uint64_t end = 0, upserts = 0;
    bool repaired = false;
    struct lj_hll *keys = calloc(1, sizeof *keys);
    if (!keys) {
        munmap((void *)m, size);
        return LEASE_JOURNAL_ENOMEM;
    }
    int rc = lj_verify(&j->opt, m, size, &end, &upserts, keys, &repaired, rep);
    uint64_t nkeys = lj_hll_estimate(keys);
    free(keys);
    if (nkeys > upserts)
        nkeys = upserts;
    if (rc == 0 && cb->on_begin && (rc = cb->on_begin(cb->arg, upserts, nkeys)) != 0)
        lj_report(rep, LEASE_JOURNAL_HEADER_SIZE, "replay start callback failed (%d)", rc);
    if (rc == 0)
        rc = lj_dispatch(m, end, cb, rep);
    munmap((void *)m, size);
    if (rc != 0)
        return rc;
    if (end < size) {
        if (ftruncate(j->fd, (off_t)end) != 0 || fdatasync(j->fd) != 0)
            return -errno;
        rep->truncated_bytes = size - end;
        lj_report(rep, end, "dropped %llu bytes from offset %llu (%s)",
                  (unsigned long long)(size - end), (unsigned long long)end,
                  repaired ? "corrupt record, truncate_corrupt set: later records lost"
                           : "torn tail of an interrupted write");
        lj_log(&j->opt, "%s/%s: %s", j->dir, LEASE_JOURNAL_FILE, rep->message);
    }
    j->file_size = end;
    j->file_records = rep->records;
    return LEASE_JOURNAL_OK;
}

static void lj_free(struct lease_journal *j)
{
    if (j->fd >= 0)
        close(j->fd);
    if (j->lockfd >= 0)
        close(j->lockfd); /* releases the flock */
    if (j->dirfd >= 0)
        close(j->dirfd);
    pthread_mutex_destroy(&j->batch_lock);
    pthread_mutex_destroy(&j->io_lock);
    pthread_mutex_destroy(&j->compact_lock);
    pthread_mutex_destroy(&j->sync_lock);
    pthread_mutex_destroy(&j->sy_mu);
    pthread_cond_destroy(&j->sy_cv);
    free(j->batch.data);
    free(j->inflight.data);
    free(j->dir);
    free(j);
}

int lease_journal_open(const char *dir, const struct lease_journal_options *opt,
                       const struct lease_journal_replay *replay, struct lease_journal **out,
                       struct lease_journal_report *rep)
{
    struct lease_journal_report dummy;
    static const struct lease_journal_replay no_replay;
    if (!rep)
        rep = &dummy;
    memset(rep, 0, sizeof *rep);
    if (!dir || !*dir || !out)
        return LEASE_JOURNAL_EINVAL;
    *out = NULL;
    struct lease_journal *j = calloc(1, sizeof *j);
    if (!j)
        return LEASE_JOURNAL_ENOMEM;
    j->dirfd = j->fd = j->lockfd = -1;
    if (opt)
        j->opt = *opt;
    if (!j->opt.compact_min_bytes)
        j->opt.compact_min_bytes = LEASE_JOURNAL_COMPACT_MIN_DEFAULT;
    if (!j->opt.compact_ratio)
        j->opt.compact_ratio = 4;
    if (!j->opt.batch_max_bytes)
        j->opt.batch_max_bytes = 64u << 20;
    pthread_mutex_init(&j->batch_lock, NULL);
    pthread_mutex_init(&j->io_lock, NULL);
    pthread_mutex_init(&j->compact_lock, NULL);
    pthread_mutex_init(&j->sync_lock, NULL);
    pthread_mutex_init(&j->sy_mu, NULL);
    {
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&j->sy_cv, &ca);
        pthread_condattr_destroy(&ca);
    }
    atomic_init(&j->sy_on, false);
    atomic_init(&j->sy_idle, false);
    atomic_init(&j->appended_seq, 0);
    atomic_init(&j->written_seq, 0);
    atomic_init(&j->durable_seq, 0);
    atomic_init(&j->pending_bytes, 0);
    atomic_init(&j->last_sync_ms, lj_now_ms());
    int rc;
    if (!(j->dir = strdup(dir))) {
        rc = LEASE_JOURNAL_ENOMEM;
        goto fail;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        rc = -errno;
        lj_report(rep, 0, "cannot create state directory %s: %s", dir, strerror(errno));
        goto fail;
    }
    if ((j->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        rc = -errno;
        lj_report(rep, 0, "cannot open state directory %s: %s", dir, strerror(errno));
        goto fail;
    }
    if ((j->lockfd = openat(j->dirfd, LJ_LOCK_FILE, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
        rc = -errno;
        goto fail;
    }
    if (flock(j->lockfd, LOCK_EX | LOCK_NB) != 0) {
        rc = errno == EWOULDBLOCK ? LEASE_JOURNAL_EBUSY : -errno;
        lj_report(rep, 0, "state directory %s is in use by another process", dir);
        goto fail;
    }
    unlinkat(j->dirfd, LJ_TMP_FILE, 0); /* an interrupted compaction: the journal is intact */
    j->fd = openat(j->dirfd, LEASE_JOURNAL_FILE, O_RDWR | O_CLOEXEC);
    if (j->fd < 0) {
        if (errno != ENOENT) {
            rc = -errno;
            goto fail;
        }
        if ((rc = lj_create(j)) != 0)
            goto fail;
        j->file_size = LEASE_JOURNAL_HEADER_SIZE;
    } else if ((rc = lj_replay(j, replay ? replay : &no_replay, rep)) != 0) {
        goto fail;
    }
    rep->file_bytes = j->file_size;
    *out = j;
    return LEASE_JOURNAL_OK;
fail:
    lj_free(j);
    return rc;
}

/* ---- append and flush --------------------------------------------------------- */

int lease_journal_append(struct lease_journal *j, unsigned type, const void *payload, size_t len,
                         uint64_t *seq)
{
    if (!j || type == 0 || type > 255 || (len && !payload))
        return LEASE_JOURNAL_EINVAL;
    if (len > LEASE_JOURNAL_PAYLOAD_MAX)
        return LEASE_JOURNAL_E2BIG;
    uint8_t h[LEASE_JOURNAL_RECORD_HEADER];
    lj_record_header(h, type, payload, len); /* CRC outside the lock */
    size_t total = sizeof h + len;
    int rc = LEASE_JOURNAL_OK;
    pthread_mutex_lock(&j->batch_lock);
    if (j->batch.len + total > j->opt.batch_max_bytes) {
        rc = LEASE_JOURNAL_ENOBUFS;
    } else if ((rc = lj_buf_reserve(&j->batch, total)) == LEASE_JOURNAL_OK) {
        memcpy(j->batch.data + j->batch.len, h, sizeof h);
        if (len)
            memcpy(j->batch.data + j->batch.len + sizeof h, payload, len);
        j->batch.len += total;
        j->batch_records++;
        uint64_t s = ++j->batch_seq;
        atomic_store_explicit(&j->appended_seq, s, memory_order_seq_cst); /* seq_cst: lj_syncer_kick */
        atomic_fetch_add_explicit(&j->pending_bytes, total, memory_order_relaxed);
        if (seq)
            *seq = s;
    }
    pthread_mutex_unlock(&j->batch_lock);
    return rc;
}

int lease_journal_append_upsert(struct lease_journal *j, const struct lease *l, uint64_t *seq)
{
    if (!l || lease_validate(l) != LEASE_TABLE_OK)
        return LEASE_JOURNAL_EINVAL;
    uint8_t p[128];
    return lease_journal_append(j, LEASE_JOURNAL_UPSERT, p, lj_encode_lease(p, l), seq);
}

int lease_journal_append_delete(struct lease_journal *j, const struct lease_key *k, uint64_t *seq)
{
    if (!k || k->hlen == 0 || k->hlen > LEASE_HWADDR_MAX)
        return LEASE_JOURNAL_EINVAL;
    uint8_t p[2 + LEASE_HWADDR_MAX];
    return lease_journal_append(j, LEASE_JOURNAL_DELETE, p, lj_put_key(p, k), seq);
}

int lease_journal_append_host_state(struct lease_journal *j, const struct lease_key *k,
                                    const char *name, size_t name_len, const void *value,
                                    size_t value_len, uint64_t *seq)
{
    int rc = lj_check_host(k, name, name_len, value, value_len);
    if (rc != 0)
        return rc;
    uint8_t p[2 + LEASE_HWADDR_MAX + 1 + LEASE_JOURNAL_HOST_NAME_MAX + 2 + LEASE_JOURNAL_HOST_VALUE_MAX];
    return lease_journal_append(j, LEASE_JOURNAL_HOST_STATE, p,
                                lj_encode_host(p, k, name, name_len, value, value_len), seq);
}

/* io_lock held: write everything queued, in one pwrite (more only if the
 * kernel writes short). */
static int lj_write_pending(struct lease_journal *j)
{
    if (j->broken)
        return j->broken;
    pthread_mutex_lock(&j->batch_lock);
    struct lj_buf tmp = j->batch;
    j->batch = j->inflight;
    j->inflight = tmp;
    uint64_t seq = j->batch_seq, nrec = j->batch_records;
    j->batch_records = 0;
    pthread_mutex_unlock(&j->batch_lock);
    size_t len = j->inflight.len;
    if (len == 0)
        return LEASE_JOURNAL_OK;
    int rc = lj_pwrite_all(j->fd, j->inflight.data, len, j->file_size);
    if (rc != 0) {
        /* Cut back whatever part reached the file, so the next write does not
         * land after a torn record, and queue the records again in front. */
        if (ftruncate(j->fd, (off_t)j->file_size) != 0)
            j->broken = rc;
        pthread_mutex_lock(&j->batch_lock);
        if (lj_buf_reserve(&j->inflight, j->batch.len) == 0) {
            if (j->batch.len)
                memcpy(j->inflight.data + len, j->batch.data, j->batch.len);
            j->inflight.len += j->batch.len;
            tmp = j->batch;
            j->batch = j->inflight;
            j->inflight = tmp;
            j->batch_records += nrec;
        } else {
            j->broken = LEASE_JOURNAL_ENOMEM;
        }
        pthread_mutex_unlock(&j->batch_lock);
        j->inflight.len = 0;
        return rc;
    }
    j->inflight.len = 0;
    j->file_size += len;
    j->file_records += nrec;
    j->writes++;
    atomic_fetch_sub_explicit(&j->pending_bytes, len, memory_order_relaxed);
    atomic_store_explicit(&j->written_seq, seq, memory_order_release);
    return LEASE_JOURNAL_OK;
}

/* sync_lock held, io_lock not: write what is queued, then fdatasync with
 * io_lock released, so that appends and other threads' writes go on while the
 * disk works (the fd cannot change meanwhile: compaction takes sync_lock). */
static int lj_write_and_sync(struct lease_journal *j)
{
    pthread_mutex_lock(&j->io_lock);
    int rc = lj_write_pending(j);
    uint64_t w = atomic_load_explicit(&j->written_seq, memory_order_relaxed);
    int fd = j->fd;
    bool need = rc == 0 && atomic_load_explicit(&j->durable_seq, memory_order_relaxed) < w;
    pthread_mutex_unlock(&j->io_lock);
    if (!need)
        return rc;
    int r = fdatasync(fd), e = errno;
    pthread_mutex_lock(&j->io_lock);
    if (r != 0) {
        /* After a failed fsync the kernel may have dropped the dirty pages:
         * retrying could report success for data that is gone.  Stop. */
        if (!j->broken)
            j->broken = -e;
        rc = j->broken;
    } else {
        j->fsyncs++;
        atomic_store_explicit(&j->last_sync_ms, lj_now_ms(), memory_order_relaxed);
        if (atomic_load_explicit(&j->durable_seq, memory_order_relaxed) < w)
            atomic_store_explicit(&j->durable_seq, w, memory_order_release);
    }
    pthread_mutex_unlock(&j->io_lock);
    return rc;
}

static int lj_sync_now(struct lease_journal *j)
{
    pthread_mutex_lock(&j->sync_lock);
    int rc = lj_write_and_sync(j);
    pthread_mutex_unlock(&j->sync_lock);
    return rc;
}

/* Wakes the syncer if it sleeps with nothing to do.  The caller appended
 * before (appended_seq, stored seq_cst); the syncer stores sy_idle, then loads
 * appended_seq, both seq_cst: one of the two always sees the other (Dekker).
 * The exchange lets only the first of several committers signal. */
static void lj_syncer_kick(struct lease_journal *j)
{
    if (!atomic_exchange_explicit(&j->sy_idle, false, memory_order_seq_cst))
        return;
    pthread_mutex_lock(&j->sy_mu);
    pthread_cond_signal(&j->sy_cv);
    pthread_mutex_unlock(&j->sy_mu);
}

int lease_journal_flush(struct lease_journal *j, bool do_fsync)
{
    if (!j)
        return LEASE_JOURNAL_EINVAL;
    if (do_fsync)
        return lj_sync_now(j);
    pthread_mutex_lock(&j->io_lock);
    int rc = lj_write_pending(j);
    pthread_mutex_unlock(&j->io_lock);
    return rc;
}

int lease_journal_commit(struct lease_journal *j)
{
    if (!j)
        return LEASE_JOURNAL_EINVAL;
    if (atomic_load_explicit(&j->sy_on, memory_order_acquire)) {
        /* the syncer does the fdatasync: write, and make sure it knows */
        int rc = lease_journal_flush(j, false);
        if (rc == 0 && j->opt.fsync_interval_ms == 0)
            rc = lease_journal_sync_to(j, atomic_load_explicit(&j->written_seq, memory_order_acquire));
        else
            lj_syncer_kick(j);
        return rc;
    }
    if (j->opt.fsync_interval_ms == 0 ||
        lj_now_ms() - atomic_load_explicit(&j->last_sync_ms, memory_order_relaxed) >=
            (int64_t)j->opt.fsync_interval_ms)
        return lj_sync_now(j);
    return lease_journal_flush(j, false);
}

int lease_journal_error(struct lease_journal *j)
{
    if (!j)
        return LEASE_JOURNAL_EINVAL;
    pthread_mutex_lock(&j->io_lock);
    int rc = j->broken;
    pthread_mutex_unlock(&j->io_lock);
    return rc;
}

int lease_journal_sync_to(struct lease_journal *j, uint64_t seq)
{
    if (!j)
        return LEASE_JOURNAL_EINVAL;
    if (atomic_load_explicit(&j->durable_seq, memory_order_acquire) >= seq)
        return LEASE_JOURNAL_OK;
    if (!atomic_load_explicit(&j->sy_on, memory_order_acquire))
        return lj_sync_now(j);
    pthread_mutex_lock(&j->sy_mu);
    bool failed = j->sy_failed;
    if (seq > j->sy_requested) {
        j->sy_requested = seq;
        pthread_cond_signal(&j->sy_cv);
    }
    pthread_mutex_unlock(&j->sy_mu);
    return failed ? lease_journal_error(j) : LEASE_JOURNAL_OK;
}

/* The syncer: one write + fdatasync at a time, whenever a sync_to() asks for
 * more than is durable, or records have waited fsync_interval_ms (0: asked
 * for, or LJ_IDLE_SYNC_MS), then notify. */
static void *lj_syncer_main(void *arg)
{
    struct lease_journal *j = arg;
    int64_t not_before = 0;
    pthread_mutex_lock(&j->sy_mu);
    while (!j->sy_stop) {
        atomic_store_explicit(&j->sy_idle, true, memory_order_seq_cst); /* then look: lj_syncer_kick */
        uint64_t a = atomic_load_explicit(&j->appended_seq, memory_order_seq_cst);
        uint64_t d = atomic_load_explicit(&j->durable_seq, memory_order_relaxed);
        int64_t now = lj_now_ms(), due = INT64_MAX;
        if (j->sy_failed)
            due = INT64_MAX;
        else if (j->sy_requested > d)
            due = not_before;
        else if (a > d) {
            int64_t iv = j->opt.fsync_interval_ms ? (int64_t)j->opt.fsync_interval_ms : LJ_IDLE_SYNC_MS;
            due = atomic_load_explicit(&j->last_sync_ms, memory_order_relaxed) + iv;
            if (due < not_before)
                due = not_before;
        }
        if (due > now) {
            /* nothing due: sleep until it is, a kick, or LJ_IDLE_SYNC_MS at most */
            int64_t until = due - now < LJ_IDLE_SYNC_MS ? due : now + LJ_IDLE_SYNC_MS;
            if (due != INT64_MAX && !j->sy_failed)
                atomic_store_explicit(&j->sy_idle, false, memory_order_relaxed); /* it will look again in time */
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            int64_t ns = ts.tv_nsec + (until - now) * 1000000;
            ts.tv_sec += ns / 1000000000;
            ts.tv_nsec = ns % 1000000000;
            if (j->sy_failed)
                pthread_cond_wait(&j->sy_cv, &j->sy_mu);
            else
                pthread_cond_timedwait(&j->sy_cv, &j->sy_mu, &ts);
            continue;
        }
        atomic_store_explicit(&j->sy_idle, false, memory_order_relaxed);
        pthread_mutex_unlock(&j->sy_mu);
        int rc = lj_sync_now(j);
        bool sticky = rc != 0 && lease_journal_error(j) != 0;
        if (j->sy_notify)
            j->sy_notify(j->sy_arg); /* waiters look at durable_seq, or at the error */
        pthread_mutex_lock(&j->sy_mu);
        if (sticky)
            j->sy_failed = true; /* every later sync fails the same way: stop trying */
        not_before = rc != 0 ? lj_now_ms() + LJ_RETRY_MS : 0;
    }
    pthread_mutex_unlock(&j->sy_mu);
    return NULL;
}

int lease_journal_syncer_start(struct lease_journal *j, void (*notify)(void *arg), void *arg)
{
    if (!j)
        return LEASE_JOURNAL_EINVAL;
    pthread_mutex_lock(&j->sy_mu);
    int rc = LEASE_JOURNAL_OK;
    if (j->sy_running) {
        rc = LEASE_JOURNAL_EINVAL;
    } else {
        j->sy_notify = notify;
        j->sy_arg = arg;
        j->sy_stop = false;
        rc = -pthread_create(&j->sy_thread, NULL, lj_syncer_main, j);
        if (rc == 0) {
            j->sy_running = true;
            atomic_store_explicit(&j->sy_on, true, memory_order_release);
        }
    }
    pthread_mutex_unlock(&j->sy_mu);
    return rc;
}

static void lj_syncer_stop(struct lease_journal *j)
{
    pthread_mutex_lock(&j->sy_mu);
    bool running = j->sy_running;
    j->sy_stop = true;
    pthread_cond_signal(&j->sy_cv);
    pthread_mutex_unlock(&j->sy_mu);
    if (!running)
        return;
    pthread_join(j->sy_thread, NULL);
    j->sy_running = false;
    atomic_store_explicit(&j->sy_on, false, memory_order_release);
}

int lease_journal_sync_delay_ms(struct lease_journal *j)
{
    if (!j)
        return -1;
    if (atomic_load_explicit(&j->sy_on, memory_order_acquire))
        return -1; /* the syncer writes and syncs whatever waits, nobody else needs to */
    uint64_t a = atomic_load_explicit(&j->appended_seq, memory_order_acquire);
    uint64_t w = atomic_load_explicit(&j->written_seq, memory_order_acquire);
    uint64_t d = atomic_load_explicit(&j->durable_seq, memory_order_acquire);
    if (a > w)
        return 0;
    if (d >= w)
        return -1;
    int64_t left = atomic_load_explicit(&j->last_sync_ms, memory_order_relaxed) +
                   (int64_t)j->opt.fsync_interval_ms - lj_now_ms();
    return left > 0 ? (int)left : 0;
}

uint64_t lease_journal_appended_seq(struct lease_journal *j)
{
    return j ? atomic_load_explicit(&j->appended_seq, memory_order_acquire) : 0;
}

uint64_t lease_journal_written_seq(struct lease_journal *j)
{
    return j ? atomic_load_explicit(&j->written_seq, memory_order_acquire) : 0;
}

uint64_t lease_journal_durable_seq(struct lease_journal *j)
{
    return j ? atomic_load_explicit(&j->durable_seq, memory_order_acquire) : 0;
}

int lease_journal_close(struct lease_journal *j)
{
    if (!j)
        return LEASE_JOURNAL_OK;
    lj_syncer_stop(j);
    int rc = lease_journal_flush(j, true);
    lj_free(j);
    return rc;
}

/* ---- compaction ------------------------------------------------------------------ */

struct lease_journal_snapshot {
    int fd;
    struct lj_buf buf;
    uint64_t off;      /* bytes written to fd */
    uint64_t records;
    int err;           /* first error, sticky */
};

static int lj_snap_drain(struct lease_journal_snapshot *s)
{
    if (s->err == 0 && s->buf.len) {
        s->err = lj_pwrite_all(s->fd, s->buf.data, s->buf.len, s->off);
        s->off += s->buf.len;
        s->buf.len = 0;
    }
    return s->err;
}

static int lj_snap_emit(struct lease_journal_snapshot *s, unsigned type, const uint8_t *p, size_t len)
{
    if (s->err)
        return s->err;
    if ((s->err = lj_buf_reserve(&s->buf, LEASE_JOURNAL_RECORD_HEADER + len)) != 0)
        return s->err;
    lj_record_header(s->buf.data + s->buf.len, type, p, len);
    memcpy(s->buf.data + s->buf.len + LEASE_JOURNAL_RECORD_HEADER, p, len);
    s->buf.len += LEASE_JOURNAL_RECORD_HEADER + len;
    s->records++;
    return s->buf.len >= LJ_SNAP_CHUNK ? lj_snap_drain(s) : 0;
}

int lease_journal_snapshot_lease(struct lease_journal_snapshot *snap, const struct lease *l)
{
    if (!snap || !l || lease_validate(l) != LEASE_TABLE_OK)
        return LEASE_JOURNAL_EINVAL;
    uint8_t p[128];
    return lj_snap_emit(snap, LEASE_JOURNAL_UPSERT, p, lj_encode_lease(p, l));
}

int lease_journal_snapshot_host_state(struct lease_journal_snapshot *snap, const struct lease_key *k,
                                      const char *name, size_t name_len, const void *value,
                                      size_t value_len)
{
    int rc = snap ? lj_check_host(k, name, name_len, value, value_len) : LEASE_JOURNAL_EINVAL;
    if (rc != 0)
        return rc;
    uint8_t p[2 + LEASE_HWADDR_MAX + 1 + LEASE_JOURNAL_HOST_NAME_MAX + 2 + LEASE_JOURNAL_HOST_VALUE_MAX];
    return lj_snap_emit(snap, LEASE_JOURNAL_HOST_STATE, p,
                        lj_encode_host(p, k, name, name_len, value, value_len));
}

bool lease_journal_should_compact(struct lease_journal *j, uint64_t live_records)
{
    if (!j)
        return false;
    pthread_mutex_lock(&j->io_lock);
    uint64_t size = j->file_size, recs = j->file_records;
    pthread_mutex_unlock(&j->io_lock);
    if (size <= j->opt.compact_min_bytes || recs == 0)
        return false;
    long double avg = (long double)(size - LEASE_JOURNAL_HEADER_SIZE) / recs;
    return (long double)size > (long double)j->opt.compact_ratio * live_records * avg;
}

/* Copy [from, to) of the current journal to the end of the snapshot file. */
static int lj_copy_tail(struct lease_journal *j, struct lease_journal_snapshot *s, uint64_t from, uint64_t to)
{
    s->buf.len = 0;
    if (lj_buf_reserve(&s->buf, LJ_SNAP_CHUNK) != 0)
        return LEASE_JOURNAL_ENOMEM;
    while (from < to) {
        size_t want = to - from < LJ_SNAP_CHUNK ? (size_t)(to - from) : LJ_SNAP_CHUNK;
        ssize_t n = pread(j->fd, s->buf.data, want, (off_t)from);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        int rc = lj_pwrite_all(s->fd, s->buf.data, (size_t)n, s->off);
        if (rc != 0)
            return rc;
        s->off += (uint64_t)n;
        from += (uint64_t)n;
    }
    return LEASE_JOURNAL_OK;
}

int lease_journal_compact(struct lease_journal *j, lease_journal_snapshot_fn fn, void *arg)
{
    if (!j || !fn)
        return LEASE_JOURNAL_EINVAL;
    pthread_mutex_lock(&j->compact_lock);
    struct lease_journal_snapshot s = { .fd = -1 };
    bool renamed = false;

    /* 1. everything appended so far goes to the file; remember where it ends */
    pthread_mutex_lock(&j->io_lock);
    int rc = lj_write_pending(j);
    uint64_t off0 = j->file_size, rec0 = j->file_records;
    pthread_mutex_unlock(&j->io_lock);
    if (rc != 0)
        goto out;

    /* 2. the snapshot: state that includes at least every record before off0 */
    if ((s.fd = openat(j->dirfd, LJ_TMP_FILE, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
        rc = -errno;
        goto out;
    }
    if ((rc = lj_buf_reserve(&s.buf, LJ_SNAP_CHUNK + LEASE_JOURNAL_HEADER_SIZE)) != 0)
        goto out;
    lj_header(s.buf.data);
    s.buf.len = LEASE_JOURNAL_HEADER_SIZE;
    if ((rc = fn(arg, &s)) != 0 || (rc = s.err) != 0 || (rc = lj_snap_drain(&s)) != 0)
        goto out;
    uint64_t snap_records = s.records;

    /* 3. with appends to the file held off: the records written since off0
     * (replayed after the snapshot they reproduce the newest state), sync,
     * rename, sync the directory, switch (sync_lock: no fdatasync of the old fd
     * is running when it is closed). */
    pthread_mutex_lock(&j->sync_lock);
    pthread_mutex_lock(&j->io_lock);
    if ((rc = lj_write_pending(j)) == 0 && (rc = lj_copy_tail(j, &s, off0, j->file_size)) == 0) {
        if (fdatasync(s.fd) != 0)
            rc = -errno;
        else if (renameat(j->dirfd, LJ_TMP_FILE, j->dirfd, LEASE_JOURNAL_FILE) != 0)
            rc = -errno;
        else {
            renamed = true;
            if ((rc = lj_fsync_dir(j)) != 0)
                j->broken = rc; /* the new name may not be durable: stop appending */
            close(j->fd);
            j->fd = s.fd;
            s.fd = -1;
            j->file_records = snap_records + (j->file_records - rec0);
            j->file_size = s.off;
            j->compactions++;
            atomic_store_explicit(&j->last_sync_ms, lj_now_ms(), memory_order_relaxed);
            atomic_store_explicit(&j->durable_seq, atomic_load_explicit(&j->written_seq, memory_order_relaxed),
                                  memory_order_release);
        }
    }
    pthread_mutex_unlock(&j->io_lock);
    pthread_mutex_unlock(&j->sync_lock);
out:
    if (s.fd >= 0) {
        close(s.fd);
        if (!renamed)
            unlinkat(j->dirfd, LJ_TMP_FILE, 0);
    }
    free(s.buf.data);
    pthread_mutex_unlock(&j->compact_lock);
    return rc;
}

void lease_journal_stats(struct lease_journal *j, struct lease_journal_stats *st)
{
    memset(st, 0, sizeof *st);
    if (!j)
        return;
    pthread_mutex_lock(&j->io_lock);
    st->file_bytes = j->file_size;
    st->file_records = j->file_records;
    st->writes = j->writes;
    st->fsyncs = j->fsyncs;
    st->compactions = j->compactions;
    st->broken = j->broken;
    pthread_mutex_unlock(&j->io_lock);
    st->pending_bytes = atomic_load_explicit(&j->pending_bytes, memory_order_relaxed);
    st->appended_seq = lease_journal_appended_seq(j);
    st->written_seq = lease_journal_written_seq(j);
    st->durable_seq = lease_journal_durable_seq(j);
}
