/* engine/lease_table.c — sharded lease table with lock-free readers.
 *
 * Layout
 *   table ─ shards[nshards]   (by hash of the hardware address)
 *             mac index set:  open-addressing array(s) of slots tag:32|ref:32,
 *                             ref = entry number + 1 within the shard
 *             entries:        chunks of LT_CHUNK entries, found through a
 *                             directory; never moved, never freed before destroy
 *         ─ ipsets[nshards]   (by hash of the address)
 *             slots ip:32|gref:32, gref = (shard << idx_bits | entry) + 1
 *
 * A slot in the IP index is the *claim* on an address: it is inserted (under
 * the IP set's lock, after checking that no other claim exists) before the
 * entry says it holds the address, and removed only after the entry stopped
 * holding it.  Readers still check the entry, so a claim whose entry is not
 * yet (or no longer) written is simply skipped.
 *
 * Index growth (redis dict.c's incremental rehash adapted to lock-free
 * readers): a full array becomes `old`, a larger one becomes `cur`, and every
 * write moves up to LT_MIGRATE_STEP live slots old → cur (insert into cur
 * first, then tombstone in old).  A reader searches old and then cur and
 * accepts a miss only if neither pointer changed meanwhile; since a slot is in
 * cur before it leaves old, a key that exists is always found.  Arrays are
 * never reused, so pointer comparison cannot suffer ABA.
 */
#include "engine/lease_table.h"
#include "engine/mix64.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

_Static_assert(sizeof(struct lease) == 112, "struct lease layout changed");
_Static_assert(sizeof(struct lease) % 8 == 0, "struct lease must be whole words");
_Static_assert(offsetof(struct lease, state) == 18, "state must follow the key");

#define LT_WORDS        (sizeof(struct lease) / 8)
#define LT_CHUNK_SHIFT  9u
#define LT_CHUNK        (1u << LT_CHUNK_SHIFT)
#define LT_TOMB         ((uint64_t)0xFFFFFFFFu) /* ref all ones, tag 0 */
#define LT_MIN_BITS     6u                      /* 64 slots */
#define LT_MAX_BITS     31u
#define LT_MIGRATE_STEP 128u                    /* live slots moved per write */
#define LT_HUGE         ((size_t)2 << 20)       /* transparent huge page size */
#define LT_ARENA_MIN    ((size_t)4 << 20)       /* smallest initial storage put in an arena */

struct lt_entry {
    _Atomic uint32_t seq;   /* odd while a writer changes w[] */
    uint32_t next_free;     /* free list link (entry + 1), writer only */
    _Atomic uint64_t w[LT_WORDS];
};

struct lt_index {
    struct lt_index *retired_next; /* writer only */
    uint32_t bits;                 /* capacity 1 << bits; immutable */
    uint32_t in_arena;             /* carved from the table's arena: not freed alone */
    uint32_t used;                 /* live slots, writer only */
    uint32_t tombs;                /* tombstones, writer only */
    _Atomic uint64_t slot[];
};

struct lt_set {
    pthread_mutex_t lock;
    _Atomic(struct lt_index *) cur;
    _Atomic(struct lt_index *) old; /* non-NULL while migrating */
    uint32_t migrate_pos;           /* next slot of old to move */
    struct lt_index *retired;       /* replaced arrays, freed at destroy */
    _Atomic size_t bytes;           /* arrays allocated, for stats */
};

struct lt_dir {
    struct lt_dir *retired_next;
    size_t cap;
    _Atomic(struct lt_entry *) chunk[];
};

struct lt_shard {
    struct lt_set mac;              /* its lock is the shard's writer lock */
    _Atomic(struct lt_dir *) dir;
    struct lt_dir *retired_dirs;
    _Atomic uint32_t hwm;           /* entries [0, hwm) have been handed out */
    uint32_t free_head;             /* entry + 1, 0 = empty */
    uint32_t arena_chunks;          /* chunks [0, arena_chunks) live in the arena */
    uint32_t rsv_lo, rsv_hi;        /* chunks [rsv_lo, rsv_hi) live in a reserve mapping */
    _Atomic size_t live;
    _Atomic size_t bytes;           /* chunks and directories */
} __attribute__((aligned(64)));

struct lt_ipset {
    struct lt_set set;
} __attribute__((aligned(64)));

/* When the table is created for many leases, the initial entry chunks and
 * index arrays of every shard are carved from one anonymous mapping advised
 * for transparent huge pages: loading a large journal then takes a few
 * hundred page faults instead of tens of thousands, and random index probes
 * miss the TLB far less.  The mapping is zero-filled and touched only as it is
 * used, so it costs no more resident memory than separate allocations. */
/* A mapping made by lease_table_reserve, kept until destroy. */
struct lt_map {
    struct lt_map *next;
    void *base;
    size_t bytes;
};

struct lease_table {
    void *arena;
    size_t arena_bytes;
    struct lt_map *maps;            /* reserve mappings (writers: under reserve_lock) */
    _Atomic size_t map_bytes;
    pthread_mutex_t reserve_lock;
    unsigned nshards;
    unsigned idx_bits;              /* bits of a gref that number the entry */
    uint64_t max_entries;           /* per shard */
    struct lt_shard *shards;
    struct lt_ipset *ipsets;
    _Atomic uint64_t read_retries;
};

/* ---- small helpers ---------------------------------------------------- */

static inline uint32_t lt_mix32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

static inline uint32_t lt_pos(uint32_t tag, unsigned bits)
{
    return (uint32_t)(lt_mix32(tag) * 0x9E3779B1u) >> (32 - bits);
}

static inline uint64_t lt_slot(uint32_t tag, uint32_t ref)
{
    return (uint64_t)tag << 32 | ref;
}

static uint64_t lt_hash_key(const struct lease_key *k)
{
    uint64_t a, b;
    memcpy(&a, k->chaddr, 8);
    memcpy(&b, k->chaddr + 8, 8);
    uint64_t h = mix64(((uint64_t)k->htype << 8 | k->hlen) ^ a * 0x9E3779B97F4A7C15ull);
    return mix64(h ^ b * 0xC2B2AE3D27D4EB4Full);
}

static inline unsigned lt_ipset_of(const struct lease_table *t, uint32_t ip)
{
    return lt_mix32(ip ^ 0x5bd1e995u) & (t->nshards - 1);
}

static void lt_relax(unsigned *spins)
{
    if (++*spins < 128) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    } else {
        sched_yield(); /* the writer was preempted inside its few stores */
    }
}

static unsigned lt_bits_for(uint64_t slots)
{
    unsigned b = LT_MIN_BITS;
    while (b < LT_MAX_BITS && ((uint64_t)1 << b) < slots)
        b++;
    return b;
}

/* ---- keys and leases ---------------------------------------------------- */

int lease_key_init(struct lease_key *k, uint8_t htype, const uint8_t *chaddr, size_t hlen)
{
    if (!k || !chaddr || hlen == 0 || hlen > LEASE_HWADDR_MAX)
        return LEASE_TABLE_EINVAL;
    memset(k, 0, sizeof *k);
    k->htype = htype;
    k->hlen = (uint8_t)hlen;
    memcpy(k->chaddr, chaddr, hlen);
    return LEASE_TABLE_OK;
}

bool lease_key_equal(const struct lease_key *a, const struct lease_key *b)
{
    return a->htype == b->htype && a->hlen == b->hlen && a->hlen <= LEASE_HWADDR_MAX &&
           memcmp(a->chaddr, b->chaddr, a->hlen) == 0;
}

bool lease_state_holds_addr(unsigned state)
{
    return state == LEASE_OFFERED || state == LEASE_BOUND || state == LEASE_DECLINED;
}

const char *lease_state_name(unsigned state)
{
    static const char *const names[LEASE_STATE_COUNT] = {
        [LEASE_STATE_NONE] = "none",   [LEASE_OFFERED] = "offered",   [LEASE_BOUND] = "bound",
        [LEASE_DECLINED] = "declined", [LEASE_RELEASED] = "released", [LEASE_EXPIRED] = "expired",
    };
    return state < LEASE_STATE_COUNT ? names[state] : "invalid";
}

static int lt_key_normalize(struct lease_key *k)
{
    if (k->hlen == 0 || k->hlen > LEASE_HWADDR_MAX)
        return LEASE_TABLE_EINVAL;
    memset(k->chaddr + k->hlen, 0, LEASE_HWADDR_MAX - k->hlen);
    return LEASE_TABLE_OK;
}

/* Zero the bytes that carry no meaning so that stored leases compare with memcmp. */
static void lt_lease_normalize(struct lease *l)
{
    if (l->hw.hlen <= LEASE_HWADDR_MAX)
        memset(l->hw.chaddr + l->hw.hlen, 0, LEASE_HWADDR_MAX - l->hw.hlen);
    if (l->client_id_len <= LEASE_CLIENT_ID_MAX)
        memset(l->client_id + l->client_id_len, 0, LEASE_CLIENT_ID_MAX - l->client_id_len);
    char *nul = memchr(l->hostname, '\0', sizeof l->hostname);
    if (nul)
        memset(nul, 0, (size_t)(l->hostname + sizeof l->hostname - nul));
}

int lease_validate(const struct lease *l)
{
    if (!l || l->hw.hlen == 0 || l->hw.hlen > LEASE_HWADDR_MAX)
        return LEASE_TABLE_EINVAL;
    if (l->state == LEASE_STATE_NONE || l->state >= LEASE_STATE_COUNT)
        return LEASE_TABLE_EINVAL;
    if (l->client_id_len > LEASE_CLIENT_ID_MAX || l->reserved != 0)
        return LEASE_TABLE_EINVAL;
    if (!memchr(l->hostname, '\0', sizeof l->hostname))
        return LEASE_TABLE_EINVAL;
    if (lease_state_holds_addr(l->state) && l->ip == 0)
        return LEASE_TABLE_EINVAL;
    return LEASE_TABLE_OK;
}

/* ---- entries ------------------------------------------------------------ */

static struct lt_entry *lt_entry_at(const struct lt_shard *sh, uint32_t idx)
{
    struct lt_dir *d = atomic_load_explicit((_Atomic(struct lt_dir *) *)&sh->dir, memory_order_acquire);
    struct lt_entry *c = atomic_load_explicit(&d->chunk[idx >> LT_CHUNK_SHIFT], memory_order_acquire);
    return &c[idx & (LT_CHUNK - 1)];
}

/* Seqlock read (Boehm, "Can seqlocks get along with programming language
 * memory models?"): data words are relaxed atomics, the acquire fence orders
 * them before the re-read of the counter. */
static void lt_entry_read(const struct lease_table *t, const struct lt_entry *ce, struct lease *out)
{
    struct lt_entry *e = (struct lt_entry *)ce; /* atomics are only loaded */
    uint64_t w[LT_WORDS];
    unsigned spins = 0;
    for (;;) {
        uint32_t s1 = atomic_load_explicit(&e->seq, memory_order_acquire);
        if (!(s1 & 1)) {
            for (size_t i = 0; i < LT_WORDS; i++)
                w[i] = atomic_load_explicit(&e->w[i], memory_order_relaxed);
            atomic_thread_fence(memory_order_acquire);
            if (atomic_load_explicit(&e->seq, memory_order_relaxed) == s1)
                break;
        }
        atomic_fetch_add_explicit(&((struct lease_table *)t)->read_retries, 1, memory_order_relaxed);
        lt_relax(&spins);
    }
    memcpy(out, w, sizeof *out);
}

/* Writer-side read: the shard lock is held, nothing else writes the entry. */
static void lt_entry_peek(struct lt_entry *e, struct lease *out)
{
    uint64_t w[LT_WORDS];
    for (size_t i = 0; i < LT_WORDS; i++)
        w[i] = atomic_load_explicit(&e->w[i], memory_order_relaxed);
    memcpy(out, w, sizeof *out);
}

static void lt_entry_write(struct lt_entry *e, const struct lease *l)
{
    uint64_t w[LT_WORDS];
    memcpy(w, l, sizeof w);
    uint32_t s = atomic_load_explicit(&e->seq, memory_order_relaxed);
    atomic_store_explicit(&e->seq, s + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    for (size_t i = 0; i < LT_WORDS; i++)
        atomic_store_explicit(&e->w[i], w[i], memory_order_relaxed);
    atomic_store_explicit(&e->seq, s + 2, memory_order_release);
}

/* The shard's directory, grown (doubling) to hold at least `chunks` chunk
 * pointers; NULL when out of memory.  Writer lock held. */
static struct lt_dir *lt_dir_fit(struct lt_shard *sh, size_t chunks)
{
    struct lt_dir *d = atomic_load_explicit(&sh->dir, memory_order_relaxed);
    if (chunks <= d->cap)
        return d;
    size_t cap = 2 * d->cap;
    while (cap < chunks)
        cap *= 2;
    /* A bigger directory with the same chunk pointers; the old one stays
     * valid for readers that loaded it. */
    struct lt_dir *nd = calloc(1, sizeof *nd + cap * sizeof nd->chunk[0]);
    if (!nd)
        return NULL;
    nd->cap = cap;
    for (size_t i = 0; i < d->cap; i++)
        atomic_store_explicit(&nd->chunk[i], atomic_load_explicit(&d->chunk[i], memory_order_relaxed),
                              memory_order_relaxed);
    atomic_store_explicit(&sh->dir, nd, memory_order_release);
    d->retired_next = sh->retired_dirs;
    sh->retired_dirs = d;
    atomic_fetch_add_explicit(&sh->bytes, sizeof *nd + nd->cap * sizeof nd->chunk[0], memory_order_relaxed);
    return nd;
}

static int lt_entry_alloc(struct lease_table *t, struct lt_shard *sh, uint32_t *idx)
{
    if (sh->free_head) {
        *idx = sh->free_head - 1;
        sh->free_head = lt_entry_at(sh, *idx)->next_free;
        return LEASE_TABLE_OK;
    }
    uint32_t n = atomic_load_explicit(&sh->hwm, memory_order_relaxed);
    if (n >= t->max_entries)
        return LEASE_TABLE_EFULL;
    size_t ci = n >> LT_CHUNK_SHIFT;
    struct lt_dir *d = lt_dir_fit(sh, ci + 1);
    if (!d)
        return LEASE_TABLE_ENOMEM;
    if (!atomic_load_explicit(&d->chunk[ci], memory_order_relaxed)) {
        struct lt_entry *c = calloc(LT_CHUNK, sizeof *c);
        if (!c)
            return LEASE_TABLE_ENOMEM;
        atomic_store_explicit(&d->chunk[ci], c, memory_order_release);
        atomic_fetch_add_explicit(&sh->bytes, LT_CHUNK * sizeof *c, memory_order_relaxed);
    }
    atomic_store_explicit(&sh->hwm, n + 1, memory_order_release);
    *idx = n;
    return LEASE_TABLE_OK;
}

static void lt_entry_free(struct lt_shard *sh, uint32_t idx)
{
    lt_entry_at(sh, idx)->next_free = sh->free_head;
    sh->free_head = idx + 1;
}

static inline uint32_t lt_gref(const struct lease_table *t, unsigned shard, uint32_t idx)
{
    return (uint32_t)(((uint64_t)shard << t->idx_bits | idx) + 1);
}

/* ---- index arrays --------------------------------------------------------- */

static struct lt_index *lt_index_new(unsigned bits)
{
    struct lt_index *ix = calloc(1, sizeof *ix + ((size_t)1 << bits) * sizeof ix->slot[0]);
    if (ix)
        ix->bits = bits;
    return ix;
}

static size_t lt_index_bytes(unsigned bits)
{
    return sizeof(struct lt_index) + ((size_t)1 << bits) * sizeof(uint64_t);
}

/* Caller guarantees a free or tombstone slot exists. */
static void lt_index_put(struct lt_index *ix, uint32_t tag, uint32_t ref)
{
    uint32_t mask = (uint32_t)(((uint64_t)1 << ix->bits) - 1);
    for (uint32_t i = lt_pos(tag, ix->bits);; i = (i + 1) & mask) {
        uint64_t s = atomic_load_explicit(&ix->slot[i], memory_order_relaxed);
        if (s == 0 || s == LT_TOMB) {
            if (s == LT_TOMB)
                ix->tombs--;
            ix->used++;
            atomic_store_explicit(&ix->slot[i], lt_slot(tag, ref), memory_order_release);
            return;
        }
    }
}

static bool lt_index_remove(struct lt_index *ix, uint32_t tag, uint32_t ref)
{
    uint32_t mask = (uint32_t)(((uint64_t)1 << ix->bits) - 1);
    uint64_t want = lt_slot(tag, ref);
    uint32_t i = lt_pos(tag, ix->bits);
    for (uint64_t n = 0; n <= mask; n++, i = (i + 1) & mask) {
        uint64_t s = atomic_load_explicit(&ix->slot[i], memory_order_relaxed);
        if (s == 0)
            return false;
        if (s == want) {
            atomic_store_explicit(&ix->slot[i], LT_TOMB, memory_order_release);
            ix->used--;
            ix->tombs++;
            return true;
        }
    }
    return false;
}

typedef bool (*lt_match_fn)(const struct lease_table *t, const void *owner, uint32_t ref,
                            const void *key, struct lease *out);

/* Reader probe of one array: calls match for every slot carrying `tag`. */
static bool lt_index_find(const struct lease_table *t, struct lt_index *ix, uint32_t tag,
                          lt_match_fn match, const void *owner, const void *key, struct lease *out)
{
    uint32_t mask = (uint32_t)(((uint64_t)1 << ix->bits) - 1);
    uint32_t i = lt_pos(tag, ix->bits);
    for (uint64_t n = 0; n <= mask; n++, i = (i + 1) & mask) {
        uint64_t s = atomic_load_explicit(&ix->slot[i], memory_order_acquire);
        if (s == 0)
            return false;
        uint32_t ref = (uint32_t)s;
        if (ref == (uint32_t)LT_TOMB || (uint32_t)(s >> 32) != tag)
            continue;
        if (match(t, owner, ref, key, out))
            return true;
    }
    return false;
}

/* Lock-free lookup in a set; see the file comment for why a miss is trusted
 * only when neither array pointer changed. */
static bool lt_set_find(const struct lease_table *t, const struct lt_set *cset, uint32_t tag,
                        lt_match_fn match, const void *owner, const void *key, struct lease *out)
{
    struct lt_set *set = (struct lt_set *)cset; /* atomics are only loaded */
    for (;;) {
        struct lt_index *o = atomic_load_explicit(&set->old, memory_order_acquire);
        struct lt_index *c = atomic_load_explicit(&set->cur, memory_order_acquire);
        if (o && lt_index_find(t, o, tag, match, owner, key, out))
            return true;
        if (lt_index_find(t, c, tag, match, owner, key, out))
            return true;
        if (atomic_load_explicit(&set->old, memory_order_acquire) == o &&
            atomic_load_explicit(&set->cur, memory_order_acquire) == c)
            return false;
    }
}

/* Writer: first ref in old or cur carrying `tag` that `pred` accepts. */
typedef bool (*lt_pred_fn)(const void *ctx, uint32_t ref);

static uint32_t lt_set_find_w(struct lt_set *set, uint32_t tag, lt_pred_fn pred, const void *ctx)
{
    struct lt_index *arrays[2] = {
        atomic_load_explicit(&set->old, memory_order_relaxed),
        atomic_load_explicit(&set->cur, memory_order_relaxed),
    };
    for (int a = 0; a < 2; a++) {
        struct lt_index *ix = arrays[a];
        if (!ix)
            continue;
        uint32_t mask = (uint32_t)(((uint64_t)1 << ix->bits) - 1);
        uint32_t i = lt_pos(tag, ix->bits);
        for (uint64_t n = 0; n <= mask; n++, i = (i + 1) & mask) {
            uint64_t s = atomic_load_explicit(&ix->slot[i], memory_order_relaxed);
            if (s == 0)
                break;
            uint32_t ref = (uint32_t)s;
            if (ref != (uint32_t)LT_TOMB && (uint32_t)(s >> 32) == tag && (!pred || pred(ctx, ref)))
                return ref;
        }
    }
    return 0;
}

static void lt_set_retire(struct lt_set *set, struct lt_index *ix)
{
    ix->retired_next = set->retired;
    set->retired = ix;
}

/* Move up to `budget` live slots from old to cur, visiting at most ten times
 * as many slots (redis dictRehash's empty-bucket bound). */
static void lt_set_migrate(struct lt_set *set, uint64_t budget)
{
    struct lt_index *o = atomic_load_explicit(&set->old, memory_order_relaxed);
    if (!o)
        return;
    struct lt_index *c = atomic_load_explicit(&set->cur, memory_order_relaxed);
    uint64_t cap = (uint64_t)1 << o->bits, visits = budget * 10;
    while (set->migrate_pos < cap && budget > 0 && visits > 0) {
        uint64_t s = atomic_load_explicit(&o->slot[set->migrate_pos], memory_order_relaxed);
        if (s != 0 && s != LT_TOMB) {
            lt_index_put(c, (uint32_t)(s >> 32), (uint32_t)s); /* present in cur first … */
            atomic_store_explicit(&o->slot[set->migrate_pos], LT_TOMB, memory_order_release);
            o->used--;                                            /* … then gone from old */
            o->tombs++;
            budget--;
        }
        set->migrate_pos++;
        visits--;
    }
    if (set->migrate_pos == cap) {
        atomic_store_explicit(&set->old, NULL, memory_order_release);
        lt_set_retire(set, o);
    }
}

/* Make room for one insert into cur: a migration step, and a new array when
 * cur would pass 7/10 full.  Allocation failure is tolerated up to 9/10. */
static int lt_set_prepare(struct lt_set *set)
{
    lt_set_migrate(set, LT_MIGRATE_STEP);
    struct lt_index *c = atomic_load_explicit(&set->cur, memory_order_relaxed);
    uint64_t cap = (uint64_t)1 << c->bits, fill = (uint64_t)c->used + c->tombs + 1;
    if (fill * 10 <= cap * 7)
        return LEASE_TABLE_OK;
    if (atomic_load_explicit(&set->old, memory_order_relaxed))
        lt_set_migrate(set, UINT32_MAX); /* cur filled before old emptied: finish now */
    /* twice the live slots: load 1/2 or less after the move (tombstones are
     * dropped, so a tombstone-heavy array may even shrink) */
    uint64_t want = 2 * ((uint64_t)c->used + 1);
    unsigned nb = lt_bits_for(want);
    struct lt_index *n = ((uint64_t)1 << nb) >= want ? lt_index_new(nb) : NULL;
    if (!n)
        return fill * 10 <= cap * 9 ? LEASE_TABLE_OK : LEASE_TABLE_ENOMEM;
    atomic_fetch_add_explicit(&set->bytes, lt_index_bytes(nb), memory_order_relaxed);
    set->migrate_pos = 0;
    atomic_store_explicit(&set->old, c, memory_order_release);
    atomic_store_explicit(&set->cur, n, memory_order_release);
    lt_set_migrate(set, LT_MIGRATE_STEP);
    return LEASE_TABLE_OK;
}

static void lt_set_remove(struct lt_set *set, uint32_t tag, uint32_t ref)
{
    struct lt_index *o = atomic_load_explicit(&set->old, memory_order_relaxed);
    if (!(o && lt_index_remove(o, tag, ref)))
        lt_index_remove(atomic_load_explicit(&set->cur, memory_order_relaxed), tag, ref);
    lt_set_migrate(set, LT_MIGRATE_STEP);
}

/* mem: zeroed arena space of lt_index_bytes(bits), or NULL to allocate. */
static int lt_set_init(struct lt_set *set, unsigned bits, void *mem)
{
    struct lt_index *ix = mem ? mem : lt_index_new(bits);
    if (!ix)
        return LEASE_TABLE_ENOMEM;
    ix->bits = bits;
    ix->in_arena = mem != NULL;
    if (pthread_mutex_init(&set->lock, NULL) != 0) {
        if (!mem)
            free(ix);
        return LEASE_TABLE_ENOMEM;
    }
    atomic_init(&set->cur, ix);
    atomic_init(&set->old, NULL);
    atomic_init(&set->bytes, mem ? 0 : lt_index_bytes(bits));
    set->migrate_pos = 0;
    set->retired = NULL;
    return LEASE_TABLE_OK;
}

static void lt_index_free(struct lt_index *ix)
{
    if (ix && !ix->in_arena)
        free(ix);
}

static void lt_set_release(struct lt_set *set)
{
    lt_index_free(atomic_load_explicit(&set->cur, memory_order_relaxed));
    lt_index_free(atomic_load_explicit(&set->old, memory_order_relaxed));
    for (struct lt_index *ix = set->retired, *next; ix; ix = next) {
        next = ix->retired_next;
        lt_index_free(ix);
    }
    pthread_mutex_destroy(&set->lock);
}

static size_t lt_set_slots(const struct lt_set *cset, bool *migrating)
{
    struct lt_set *set = (struct lt_set *)cset;
    struct lt_index *o = atomic_load_explicit(&set->old, memory_order_acquire);
    struct lt_index *c = atomic_load_explicit(&set->cur, memory_order_acquire);
    *migrating = o != NULL;
    return ((size_t)1 << c->bits) + (o ? (size_t)1 << o->bits : 0);
}

/* ---- table lifecycle -------------------------------------------------------- */

/* A zeroed anonymous mapping of `bytes` rounded up to whole huge pages, 2 MiB
 * aligned and advised for transparent huge pages; NULL on failure.
 * *mapped gets its length. */
static void *lt_map_huge(size_t bytes, size_t *mapped)
{
    size_t want = (bytes + LT_HUGE - 1) & ~(LT_HUGE - 1);
    /* over-map by one huge page and trim, for 2 MiB alignment */
    uint8_t *m = mmap(NULL, want + LT_HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    uint8_t *a = (uint8_t *)(((uintptr_t)m + LT_HUGE - 1) & ~(uintptr_t)(LT_HUGE - 1));
    if (a > m)
        munmap(m, (size_t)(a - m));
    munmap(a + want, (size_t)(m + want + LT_HUGE - (a + want)));
    madvise(a, want, MADV_HUGEPAGE); /* advice only: fine if THP is off */
    *mapped = want;
    return a;
}

int lease_table_create(unsigned shards, size_t expected, struct lease_table **out)
{
    if (!out || shards == 0 || shards > LEASE_TABLE_SHARDS_MAX || (shards & (shards - 1)))
        return LEASE_TABLE_EINVAL;
    *out = NULL;
    struct lease_table *t = calloc(1, sizeof *t);
    if (!t)
        return LEASE_TABLE_ENOMEM;
    unsigned shard_bits = 0;
    while ((1u << shard_bits) < shards)
        shard_bits++;
    t->nshards = shards;
    t->idx_bits = 32 - shard_bits;
    /* largest entry number whose gref (entry + 1 with the shard on top) stays
     * below the tombstone value 0xFFFFFFFF */
    t->max_entries = ((uint64_t)1 << t->idx_bits) - 2;
    atomic_init(&t->read_retries, 0);
    atomic_init(&t->map_bytes, 0);
    if (pthread_mutex_init(&t->reserve_lock, NULL) != 0) {
        free(t);
        return LEASE_TABLE_ENOMEM;
    }

    uint64_t per_shard = expected / shards + 1;
    unsigned bits = lt_bits_for(2 * per_shard); /* expected load 1/2 */
    size_t chunks = (size_t)((per_shard + LT_CHUNK - 1) / LT_CHUNK);
    size_t dircap = 4;
    while (dircap < chunks)
        dircap *= 2;
    /* per shard in the arena: its chunks, then its two index arrays */
    size_t chunk_bytes = LT_CHUNK * sizeof(struct lt_entry);
    size_t ix_bytes = (lt_index_bytes(bits) + 63) & ~(size_t)63;
    size_t shard_arena = chunks * chunk_bytes + 2 * ix_bytes;
    if (expected && shard_arena * shards >= LT_ARENA_MIN)
        t->arena = lt_map_huge(shard_arena * shards, &t->arena_bytes); /* NULL: piecewise below */

    t->shards = aligned_alloc(64, shards * sizeof *t->shards);
    t->ipsets = aligned_alloc(64, shards * sizeof *t->ipsets);
    if (!t->shards || !t->ipsets) {
        free(t->shards);
        free(t->ipsets);
        if (t->arena)
            munmap(t->arena, t->arena_bytes);
        pthread_mutex_destroy(&t->reserve_lock);
        free(t);
        return LEASE_TABLE_ENOMEM;
    }
    memset(t->shards, 0, shards * sizeof *t->shards);
    memset(t->ipsets, 0, shards * sizeof *t->ipsets);
    unsigned made = 0;
    int rc = LEASE_TABLE_OK;
    for (; made < shards; made++) {
        struct lt_shard *sh = &t->shards[made];
        uint8_t *mine = t->arena ? (uint8_t *)t->arena + made * shard_arena : NULL;
        struct lt_dir *d = calloc(1, sizeof *d + dircap * sizeof d->chunk[0]);
        if (!d) {
            rc = LEASE_TABLE_ENOMEM;
            break;
        }
        d->cap = dircap;
        if (mine) {
            for (size_t c = 0; c < chunks; c++)
                atomic_init(&d->chunk[c], (struct lt_entry *)(mine + c * chunk_bytes));
            sh->arena_chunks = (uint32_t)chunks;
            mine += chunks * chunk_bytes;
        }
        if ((rc = lt_set_init(&sh->mac, bits, mine)) != LEASE_TABLE_OK) {
            free(d);
            break;
        }
        if ((rc = lt_set_init(&t->ipsets[made].set, bits, mine ? mine + ix_bytes : NULL)) != LEASE_TABLE_OK) {
            lt_set_release(&sh->mac);
            free(d);
            break;
        }
        atomic_init(&sh->dir, d);
        atomic_init(&sh->hwm, 0);
        atomic_init(&sh->live, 0);
        atomic_init(&sh->bytes, sizeof *d + dircap * sizeof d->chunk[0]);
    }
    if (rc != LEASE_TABLE_OK) {
        t->nshards = made;
        lease_table_destroy(t);
        return rc;
    }
    *out = t;
    return LEASE_TABLE_OK;
}

void lease_table_destroy(struct lease_table *t)
{
    if (!t)
        return;
    for (unsigned s = 0; s < t->nshards; s++) {
        struct lt_shard *sh = &t->shards[s];
        struct lt_dir *d = atomic_load_explicit(&sh->dir, memory_order_relaxed);
        for (size_t i = sh->arena_chunks; i < d->cap; i++)
            if (i < sh->rsv_lo || i >= sh->rsv_hi)
                free(atomic_load_explicit(&d->chunk[i], memory_order_relaxed));
        free(d);
        for (struct lt_dir *r = sh->retired_dirs, *next; r; r = next) {
            next = r->retired_next;
            free(r);
        }
        lt_set_release(&sh->mac);
        lt_set_release(&t->ipsets[s].set);
    }
    free(t->shards);
    free(t->ipsets);
    if (t->arena)
        munmap(t->arena, t->arena_bytes);
    for (struct lt_map *mp = t->maps, *next; mp; mp = next) {
        next = mp->next;
        munmap(mp->base, mp->bytes);
        free(mp);
    }
    pthread_mutex_destroy(&t->reserve_lock);
    free(t);
}

/* ---- lookups ---------------------------------------------------------------- */

static bool lt_match_mac(const struct lease_table *t, const void *owner, uint32_t ref,
                         const void *key, struct lease *out)
{
    const struct lt_shard *sh = owner;
    struct lease tmp;
    lt_entry_read(t, lt_entry_at(sh, ref - 1), &tmp);
    if (tmp.state == LEASE_STATE_NONE || !lease_key_equal(&tmp.hw, key))
        return false;
    *out = tmp;
    return true;
}

static bool lt_decode_gref(const struct lease_table *t, uint32_t gref, unsigned *shard, uint32_t *idx)
{
    uint64_t g = (uint64_t)gref - 1;
    *shard = (unsigned)(g >> t->idx_bits);
    *idx = (uint32_t)(g & (((uint64_t)1 << t->idx_bits) - 1));
    return *shard < t->nshards;
}

static bool lt_match_ip(const struct lease_table *t, const void *owner, uint32_t gref,
                        const void *key, struct lease *out)
{
    unsigned shard;
    uint32_t idx;
    if (!lt_decode_gref(t, gref, &shard, &idx))
        return false;
    const struct lt_shard *sh = &t->shards[shard];
    if (idx >= atomic_load_explicit((_Atomic uint32_t *)&sh->hwm, memory_order_acquire))
        return false;
    struct lease tmp;
    lt_entry_read(t, lt_entry_at(sh, idx), &tmp);
    if (tmp.ip != *(const uint32_t *)key || !lease_state_holds_addr(tmp.state))
        return false;
    *out = tmp;
    return true;
}

int lease_table_lookup_mac(const struct lease_table *t, const struct lease_key *k, struct lease *out)
{
    if (!t || !k || !out)
        return LEASE_TABLE_EINVAL;
    struct lease_key key = *k;
    if (lt_key_normalize(&key) != LEASE_TABLE_OK)
        return LEASE_TABLE_EINVAL;
    uint64_t h = lt_hash_key(&key);
    const struct lt_shard *sh = &t->shards[(uint32_t)(h >> 32) & (t->nshards - 1)];
    return lt_set_find(t, &sh->mac, (uint32_t)h, lt_match_mac, sh, &key, out) ? LEASE_TABLE_OK
                                                                               : LEASE_TABLE_ENOENT;
}

int lease_table_lookup_ip(const struct lease_table *t, uint32_t ip, struct lease *out)
{
    if (!t || !out)
        return LEASE_TABLE_EINVAL;
    if (ip == 0)
        return LEASE_TABLE_ENOENT;
    const struct lt_set *set = &t->ipsets[lt_ipset_of(t, ip)].set;
    return lt_set_find(t, set, ip, lt_match_ip, NULL, &ip, out) ? LEASE_TABLE_OK : LEASE_TABLE_ENOENT;
}

/* ---- writes ------------------------------------------------------------------- */

struct lt_mac_pred {
    struct lt_shard *sh;
    const struct lease_key *key;
};

static bool lt_pred_mac(const void *ctx, uint32_t ref)
{
    const struct lt_mac_pred *p = ctx;
    struct lease tmp;
    lt_entry_peek(lt_entry_at(p->sh, ref - 1), &tmp);
    return tmp.state != LEASE_STATE_NONE && lease_key_equal(&tmp.hw, p->key);
}

/* Writer lookup of the entry for key in its shard (shard lock held). */
static bool lt_mac_find_w(struct lt_shard *sh, uint32_t tag, const struct lease_key *key, uint32_t *idx)
{
    struct lt_mac_pred p = { sh, key };
    uint32_t ref = lt_set_find_w(&sh->mac, tag, lt_pred_mac, &p);
    if (!ref)
        return false;
    *idx = ref - 1;
    return true;
}

/* Take the claim on ip for gref (called with the MAC shard lock held). */
static int lt_ip_claim(struct lease_table *t, uint32_t ip, uint32_t gref)
{
    struct lt_set *set = &t->ipsets[lt_ipset_of(t, ip)].set;
    pthread_mutex_lock(&set->lock);
    int rc = LEASE_TABLE_OK;
    uint32_t holder = lt_set_find_w(set, ip, NULL, NULL);
    if (holder && holder != gref)
        rc = LEASE_TABLE_EADDRINUSE;
    else if (!holder && (rc = lt_set_prepare(set)) == LEASE_TABLE_OK)
        lt_index_put(atomic_load_explicit(&set->cur, memory_order_relaxed), ip, gref);
    pthread_mutex_unlock(&set->lock);
    return rc;
}

static void lt_ip_unclaim(struct lease_table *t, uint32_t ip, uint32_t gref)
{
    struct lt_set *set = &t->ipsets[lt_ipset_of(t, ip)].set;
    pthread_mutex_lock(&set->lock);
    lt_set_remove(set, ip, gref);
    pthread_mutex_unlock(&set->lock);
}

static bool lt_expect_ok(const struct lease_table_txn *txn, bool found, const struct lease *cur)
{
    if (!txn)
        return true;
    if ((txn->flags & LEASE_TABLE_TXN_CREATE_ONLY) && found)
        return false;
    if (txn->flags & LEASE_TABLE_TXN_EXPECT) {
        if (!found || !txn->expect)
            return false;
        struct lease want = *txn->expect;
        lt_lease_normalize(&want);
        return memcmp(&want, cur, sizeof want) == 0;
    }
    return true;
}

int lease_table_upsert(struct lease_table *t, const struct lease *in, struct lease_table_txn *txn)
{
    if (!t || !in)
        return LEASE_TABLE_EINVAL;
    struct lease l = *in;
    lt_lease_normalize(&l);
    if (lease_validate(&l) != LEASE_TABLE_OK)
        return LEASE_TABLE_EINVAL;
    uint64_t h = lt_hash_key(&l.hw);
    unsigned shard = (uint32_t)(h >> 32) & (t->nshards - 1);
    uint32_t tag = (uint32_t)h, idx = 0;
    struct lt_shard *sh = &t->shards[shard];
    struct lease old;
    memset(&old, 0, sizeof old);
    int rc = LEASE_TABLE_OK;

    pthread_mutex_lock(&sh->mac.lock);
    bool found = lt_mac_find_w(sh, tag, &l.hw, &idx);
    if (found)
        lt_entry_peek(lt_entry_at(sh, idx), &old);
    if (txn) {
        txn->old = old;
        txn->had_old = found;
    }
    if (!lt_expect_ok(txn, found, &old)) {
        rc = LEASE_TABLE_ECHANGED;
        goto out;
    }
    if (!found) {
        if ((rc = lt_set_prepare(&sh->mac)) != LEASE_TABLE_OK ||
            (rc = lt_entry_alloc(t, sh, &idx)) != LEASE_TABLE_OK)
            goto out;
    }
    uint32_t gref = lt_gref(t, shard, idx);
    struct lt_entry *e = lt_entry_at(sh, idx);
    bool old_holds = found && lease_state_holds_addr(old.state);
    bool new_holds = lease_state_holds_addr(l.state);
    bool add_ip = new_holds && !(old_holds && old.ip == l.ip);
    bool drop_ip = old_holds && !(new_holds && old.ip == l.ip);

    if (add_ip && (rc = lt_ip_claim(t, l.ip, gref)) != LEASE_TABLE_OK) {
        if (!found)
            lt_entry_free(sh, idx);
        goto out;
    }
    lt_entry_write(e, &l);
    if (!found) {
        lt_index_put(atomic_load_explicit(&sh->mac.cur, memory_order_relaxed), tag, idx + 1);
        atomic_fetch_add_explicit(&sh->live, 1, memory_order_relaxed);
    }
    if (txn && txn->on_commit &&
        (rc = txn->on_commit(txn->arg, found ? &old : NULL, &l)) != LEASE_TABLE_OK) {
        if (found) {
            lt_entry_write(e, &old);
        } else {
            struct lease none;
            memset(&none, 0, sizeof none);
            lt_set_remove(&sh->mac, tag, idx + 1);
            lt_entry_write(e, &none);
            lt_entry_free(sh, idx);
            atomic_fetch_sub_explicit(&sh->live, 1, memory_order_relaxed);
        }
        if (add_ip)
            lt_ip_unclaim(t, l.ip, gref);
        goto out;
    }
    if (drop_ip)
        lt_ip_unclaim(t, old.ip, gref);
out:
    pthread_mutex_unlock(&sh->mac.lock);
    return rc;
}

int lease_table_delete(struct lease_table *t, const struct lease_key *k, struct lease_table_txn *txn)
{
    if (!t || !k)
        return LEASE_TABLE_EINVAL;
    struct lease_key key = *k;
    if (lt_key_normalize(&key) != LEASE_TABLE_OK)
        return LEASE_TABLE_EINVAL;
    if (txn && (txn->flags & LEASE_TABLE_TXN_CREATE_ONLY))
        return LEASE_TABLE_EINVAL;
    uint64_t h = lt_hash_key(&key);
    unsigned shard = (uint32_t)(h >> 32) & (t->nshards - 1);
    uint32_t tag = (uint32_t)h, idx = 0;
    struct lt_shard *sh = &t->shards[shard];
    struct lease old, none;
    memset(&old, 0, sizeof old);
    memset(&none, 0, sizeof none);
    int rc = LEASE_TABLE_OK;

    pthread_mutex_lock(&sh->mac.lock);
    bool found = lt_mac_find_w(sh, tag, &key, &idx);
    if (found)
        lt_entry_peek(lt_entry_at(sh, idx), &old);
    if (txn) {
        txn->old = old;
        txn->had_old = found;
    }
    if (!found) {
        rc = LEASE_TABLE_ENOENT;
        goto out;
    }
    if (!lt_expect_ok(txn, found, &old)) {
        rc = LEASE_TABLE_ECHANGED;
        goto out;
    }
    struct lt_entry *e = lt_entry_at(sh, idx);
    lt_set_remove(&sh->mac, tag, idx + 1);
    lt_entry_write(e, &none);
    atomic_fetch_sub_explicit(&sh->live, 1, memory_order_relaxed);
    if (txn && txn->on_commit && (rc = txn->on_commit(txn->arg, &old, NULL)) != LEASE_TABLE_OK) {
        /* the removal left a tombstone, so cur has room without growing */
        lt_entry_write(e, &old);
        lt_index_put(atomic_load_explicit(&sh->mac.cur, memory_order_relaxed), tag, idx + 1);
        atomic_fetch_add_explicit(&sh->live, 1, memory_order_relaxed);
        goto out;
    }
    if (lease_state_holds_addr(old.state))
        lt_ip_unclaim(t, old.ip, lt_gref(t, shard, idx));
    lt_entry_free(sh, idx);
out:
    pthread_mutex_unlock(&sh->mac.lock);
    return rc;
}

/* ---- iteration, maintenance, stats ------------------------------------------ */

static int lt_visit(const struct lease_table *t, const struct lt_shard *sh, uint32_t idx,
                    lease_table_visit_cb cb, void *arg)
{
    struct lease tmp;
    lt_entry_read(t, lt_entry_at(sh, idx), &tmp);
    return tmp.state == LEASE_STATE_NONE ? 0 : cb(arg, &tmp);
}

int lease_table_foreach(const struct lease_table *t, lease_table_visit_cb cb, void *arg)
{
    if (!t || !cb)
        return LEASE_TABLE_EINVAL;
    for (unsigned s = 0; s < t->nshards; s++) {
        const struct lt_shard *sh = &t->shards[s];
        uint32_t n = atomic_load_explicit((_Atomic uint32_t *)&sh->hwm, memory_order_acquire);
        for (uint32_t i = 0; i < n; i++) {
            int rc = lt_visit(t, sh, i, cb, arg);
            if (rc)
                return rc;
        }
    }
    return LEASE_TABLE_OK;
}

int lease_table_scan(const struct lease_table *t, struct lease_table_cursor *c, size_t budget,
                     lease_table_visit_cb cb, void *arg)
{
    if (!t || !c || !cb)
        return LEASE_TABLE_EINVAL;
    while (budget > 0) {
        if (c->shard >= t->nshards) {
            c->shard = 0;
            c->index = 0;
            return LEASE_TABLE_SCAN_DONE;
        }
        const struct lt_shard *sh = &t->shards[c->shard];
        uint32_t n = atomic_load_explicit((_Atomic uint32_t *)&sh->hwm, memory_order_acquire);
        if (c->index >= n) {
            c->shard++;
            c->index = 0;
            continue;
        }
        int rc = lt_visit(t, sh, c->index++, cb, arg);
        budget--;
        if (rc)
            return rc;
    }
    if (c->shard >= t->nshards) {
        c->shard = 0;
        c->index = 0;
        return LEASE_TABLE_SCAN_DONE;
    }
    return LEASE_TABLE_SCAN_MORE;
}

/* Give set a cur array of at least 1 << bits slots now, moving every live
 * slot at once (set lock held).  Used before a bulk load: one pass instead of
 * a chain of incremental doublings.  mem: zeroed space of lt_index_bytes(bits)
 * in a mapping the table frees, or NULL to allocate. */
static int lt_set_grow_to(struct lt_set *set, unsigned bits, void *mem)
{
    if (atomic_load_explicit(&set->old, memory_order_relaxed))
        lt_set_migrate(set, UINT32_MAX);
    struct lt_index *c = atomic_load_explicit(&set->cur, memory_order_relaxed);
    if (c->bits >= bits)
        return LEASE_TABLE_OK;
    struct lt_index *n = mem ? mem : lt_index_new(bits);
    if (!n)
        return LEASE_TABLE_ENOMEM;
    n->bits = bits;
    n->in_arena = mem != NULL;
    if (!mem)
        atomic_fetch_add_explicit(&set->bytes, lt_index_bytes(bits), memory_order_relaxed);
    set->migrate_pos = 0;
    atomic_store_explicit(&set->old, c, memory_order_release);
    atomic_store_explicit(&set->cur, n, memory_order_release);
    lt_set_migrate(set, UINT32_MAX); /* empties old and retires it */
    return LEASE_TABLE_OK;
}

/* First chunk of the shard not yet allocated (chunks are allocated in order). */
static size_t lt_first_free_chunk(const struct lt_shard *sh)
{
    struct lt_dir *d = atomic_load_explicit((_Atomic(struct lt_dir *) *)&sh->dir, memory_order_relaxed);
    size_t ci = atomic_load_explicit((_Atomic uint32_t *)&sh->hwm, memory_order_relaxed) >> LT_CHUNK_SHIFT;
    while (ci < d->cap && atomic_load_explicit(&d->chunk[ci], memory_order_relaxed))
        ci++;
    return ci;
}

/* Like lease_table_create, the new storage comes from one mapping advised for
 * huge pages: the index probes of a bulk load are random accesses over tens
 * of MiB, and with 4 KiB pages most of them miss the TLB as well as the cache
 * (perf: the load spent half its time on that one load instruction). */
int lease_table_reserve(struct lease_table *t, size_t expected)
{
    if (!t)
        return LEASE_TABLE_EINVAL;
    /* the same sizing as lease_table_create: load 1/2 at `expected` */
    uint64_t per_shard = (uint64_t)expected / t->nshards + 1;
    unsigned bits = lt_bits_for(2 * per_shard);
    size_t want_chunks = (size_t)((per_shard + LT_CHUNK - 1) / LT_CHUNK);
    size_t chunk_bytes = LT_CHUNK * sizeof(struct lt_entry);
    size_t ix_bytes = (lt_index_bytes(bits) + 63) & ~(size_t)63;
    pthread_mutex_lock(&t->reserve_lock); /* one reserve at a time: the plan below stays valid */

    /* plan: per shard, the entry chunks still missing (only once per shard:
     * destroy knows one reserved range) and the index arrays to replace */
    size_t total = 0;
    for (unsigned s = 0; s < t->nshards; s++) {
        struct lt_shard *sh = &t->shards[s];
        size_t first = lt_first_free_chunk(sh);
        if (sh->rsv_hi == 0 && first < want_chunks)
            total += (want_chunks - first) * chunk_bytes;
        total += atomic_load_explicit(&sh->mac.cur, memory_order_relaxed)->bits < bits ? ix_bytes : 0;
        total += atomic_load_explicit(&t->ipsets[s].set.cur, memory_order_relaxed)->bits < bits ? ix_bytes : 0;
    }
    uint8_t *mem = NULL;
    size_t mapped = 0;
    struct lt_map *mp = NULL;
    if (total >= LT_ARENA_MIN && (mp = malloc(sizeof *mp)) && (mem = lt_map_huge(total, &mapped))) {
        mp->base = mem;
        mp->bytes = mapped;
        mp->next = t->maps;
        t->maps = mp;
        atomic_fetch_add_explicit(&t->map_bytes, mapped, memory_order_relaxed);
    } else {
        free(mp); /* small, or no mapping: allocate piecewise */
    }
    uint8_t *end = mem ? mem + mapped : NULL;

    int rc = LEASE_TABLE_OK;
    for (unsigned s = 0; s < t->nshards && rc == LEASE_TABLE_OK; s++) {
        struct lt_shard *sh = &t->shards[s];
        struct lt_set *ips = &t->ipsets[s].set;
        pthread_mutex_lock(&sh->mac.lock);
        size_t first = lt_first_free_chunk(sh);
        if (mem && sh->rsv_hi == 0 && first < want_chunks &&
            mem + (want_chunks - first) * chunk_bytes <= end) {
            struct lt_dir *d = lt_dir_fit(sh, want_chunks);
            if (d) {
                for (size_t c = first; c < want_chunks; c++, mem += chunk_bytes)
                    atomic_store_explicit(&d->chunk[c], (struct lt_entry *)mem, memory_order_release);
                sh->rsv_lo = (uint32_t)first;
                sh->rsv_hi = (uint32_t)want_chunks;
            }
        }
        bool fits = mem && mem + ix_bytes <= end &&
                    atomic_load_explicit(&sh->mac.cur, memory_order_relaxed)->bits < bits;
        rc = lt_set_grow_to(&sh->mac, bits, fits ? mem : NULL);
        if (fits)
            mem += ix_bytes;
        pthread_mutex_unlock(&sh->mac.lock);
        if (rc != LEASE_TABLE_OK)
            break;
        pthread_mutex_lock(&ips->lock);
        fits = mem && mem + ix_bytes <= end && atomic_load_explicit(&ips->cur, memory_order_relaxed)->bits < bits;
        rc = lt_set_grow_to(ips, bits, fits ? mem : NULL);
        if (fits)
            mem += ix_bytes;
        pthread_mutex_unlock(&ips->lock);
    }
    pthread_mutex_unlock(&t->reserve_lock);
    return rc;
}

void lease_table_maintain(struct lease_table *t, size_t budget)
{
    if (!t)
        return;
    for (unsigned s = 0; s < t->nshards; s++) {
        struct lt_set *sets[2] = { &t->shards[s].mac, &t->ipsets[s].set };
        for (int i = 0; i < 2; i++) {
            if (!atomic_load_explicit(&sets[i]->old, memory_order_acquire))
                continue;
            pthread_mutex_lock(&sets[i]->lock);
            lt_set_migrate(sets[i], budget);
            pthread_mutex_unlock(&sets[i]->lock);
        }
    }
}

size_t lease_table_count(const struct lease_table *t)
{
    size_t n = 0;
    for (unsigned s = 0; t && s < t->nshards; s++)
        n += atomic_load_explicit((_Atomic size_t *)&t->shards[s].live, memory_order_relaxed);
    return n;
}

void lease_table_stats(const struct lease_table *t, struct lease_table_stats *st)
{
    memset(st, 0, sizeof *st);
    if (!t)
        return;
    st->memory_bytes = sizeof *t + t->nshards * (sizeof *t->shards + sizeof *t->ipsets) + t->arena_bytes +
                       atomic_load_explicit((_Atomic size_t *)&t->map_bytes, memory_order_relaxed);
    for (unsigned s = 0; s < t->nshards; s++) {
        struct lt_shard *sh = (struct lt_shard *)&t->shards[s];
        struct lt_set *sets[2] = { &sh->mac, (struct lt_set *)&t->ipsets[s].set };
        st->leases += atomic_load_explicit(&sh->live, memory_order_relaxed);
        st->entries += atomic_load_explicit(&sh->hwm, memory_order_relaxed);
        st->memory_bytes += atomic_load_explicit(&sh->bytes, memory_order_relaxed);
        for (int i = 0; i < 2; i++) {
            bool migrating;
            st->index_slots += lt_set_slots(sets[i], &migrating);
            st->rehashing += migrating;
            st->memory_bytes += atomic_load_explicit(&sets[i]->bytes, memory_order_relaxed);
        }
    }
    st->read_retries = atomic_load_explicit((_Atomic uint64_t *)&t->read_retries, memory_order_relaxed);
}
