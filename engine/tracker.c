/* engine/tracker.c — see tracker.h.
 *
 * Memory: one calloc'd array of slots (open addressing on the MAC, linear
 * probing, at most 3/4 full), a dense list of claimed slot numbers (so the
 * tick and the readers visit only hosts that exist), an IP → slot index, and
 * the event ring.  Nothing is allocated after tracker_create on the recording
 * paths; readers (API, snapshot) allocate what they return. */
#include "engine/tracker.h"
#include "engine/mix64.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define KEY_USED (1ull << 48)
#define REASON_WORDS (TRACKER_REASON_MAX / 8)
#define FLAG_STALLED 1u
#define FLAG_FAILED 2u
#define NO_SLOT UINT32_MAX
/* DHCP seen this recently before a reboot's loader request belongs to that boot */
#define CARRY_OVER_MS (10 * 60 * 1000)
#define BYTES_EVENT_MS 1000
#define READ_TRIES 4

_Static_assert(TRACKER_REASON_MAX % 8 == 0, "reason is stored in 64-bit words");

struct slot {
    _Atomic uint64_t key;             /* 0: free, else KEY_USED | MAC */
    _Atomic uint32_t stage;           /* furthest stage of the cycle */
    _Atomic uint32_t flags;           /* FLAG_* */
    _Atomic uint64_t ts[TRACKER_STAGE_COUNT];
    _Atomic uint64_t dhcp_last[3];    /* last DISCOVER/OFFER/ACK, whatever the stage */
    _Atomic uint64_t since, progress, seen;
    _Atomic uint64_t bytes, bytes_reported;
    _Atomic uint32_t ip;
    _Atomic uint32_t failures, cycle;
    _Atomic uint32_t fail_kind;
    _Atomic uint64_t fail_ms;
    _Atomic uint32_t reason_seq;      /* seqlock over reason[]: odd while written */
    _Atomic uint64_t reason[REASON_WORDS];
    _Atomic uint64_t version;
};

struct ipent {
    _Atomic uint32_t ip;              /* 0: free */
    _Atomic uint32_t slot1;           /* slot + 1; 0: being written */
};

struct event {
    _Atomic uint64_t seq;             /* 2*pos + 1 while written, 2*pos + 2 once readable */
    _Atomic uint64_t val;             /* slot number */
};

struct tracker {
    struct tracker_config cfg;
    uint64_t (*clock)(void);
    struct slot *slots;
    uint32_t mask, limit;
    _Atomic uint32_t *used;           /* slot + 1, in claim order; 0: being written */
    _Atomic uint32_t nused;
    struct ipent *ips;
    uint32_t ipmask;
    struct event *ring;
    uint64_t emask;
    _Atomic uint64_t ev_head;
    _Atomic(struct inventory_holder *) inv_holder;
    struct inventory *inv_synced;     /* the tick's reference: the inventory last synced */
    _Atomic(tracker_ip_resolver_fn) resolver;
    _Atomic(void *) resolver_ctx;
    _Atomic uint64_t hist[TRACKER_STAGE_COUNT + 1][TRACKER_HIST_BUCKETS + 1];
    _Atomic uint64_t hist_count[TRACKER_STAGE_COUNT + 1], hist_sum[TRACKER_STAGE_COUNT + 1];
    _Atomic uint64_t failures[TRACKER_FAIL_COUNT];
    _Atomic uint64_t full, no_mac, snapshots, snapshot_errors;
    _Atomic uint64_t tftp_probes, tftp_missing, journal_writes, journal_errors;
    /* tick state (tick thread only) */
    uint64_t last_bytes_event_ms, last_save_ms;
    /* persistence (under pmu): the journal, its epoch, and what it has seen */
    pthread_mutex_t pmu;
    FILE *jf;                         /* NULL: not open (or broken: the next flush compacts) */
    uint64_t epoch;
    struct tracker_cursor jcur;       /* events already in the journal or the snapshot */
    uint32_t *jids;                   /* hosts changed in one flush, deduplicated by jmark */
    uint8_t *jmark;
    uint64_t jlines;                  /* host lines appended since the last snapshot */
    uint64_t jretry_ms;               /* journal broken: when the last snapshot was tried */
    /* thread */
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
};

const double tracker_hist_bounds[TRACKER_HIST_BUCKETS] = {0.1, 0.5, 1,   2,    5,    10,   30,
                                                          60,  120, 300, 600, 1200, 1800, 3600};

static const char *const stage_names[TRACKER_STAGE_COUNT] = {
    "none",   "discover",       "offered",   "acked",  "loader",   "config",      "kernel",
    "initrd", "installer_dhcp", "kickstart", "stage2", "packages", "postinstall", "installed",
};
static const char *const fail_names[TRACKER_FAIL_COUNT] = {
    "dhcp_nak",  "dhcp_decline", "tftp_timeout", "tftp_abort", "tftp_error",
    "http_4xx",  "http_5xx",     "callback",     "restart",    "other",
};

const char *tracker_stage_name(enum tracker_stage s)
{
    return (unsigned)s < TRACKER_STAGE_COUNT ? stage_names[s] : "unknown";
}

int tracker_stage_parse(const char *s)
{
    for (int i = 0; i < TRACKER_STAGE_COUNT; i++)
        if (!strcmp(s, stage_names[i]))
            return i;
    return TRACKER_ERR_STAGE;
}

const char *tracker_fail_name(enum tracker_fail_kind k)
{
    return (unsigned)k < TRACKER_FAIL_COUNT ? fail_names[k] : "unknown";
}

uint64_t tracker_now_ms(void)
{
    struct timespec ts;
    /* every recording call reads it: the coarse clock is the kernel's last tick
     * (1-4 ms resolution, plenty for stage times), read from the vDSO page
     * without touching the clocksource — ~10 ns here against ~130 ns for
     * CLOCK_REALTIME under kvm-clock.  No system call either way. */
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- path classification ------------------------------------------------ */

static bool ends_with(const char *s, size_t n, const char *suf)
{
    size_t m = strlen(suf);
    return n >= m && !strncasecmp(s + n - m, suf, m);
}

static bool starts_with(const char *s, const char *pre) { return !strncasecmp(s, pre, strlen(pre)); }

enum { DIR_PXECFG = 1, DIR_LIVEOS = 2, DIR_REPODATA = 4, DIR_PACKAGES = 8, DIR_POOL = 16 };

/* The directory components of path (everything before base) that name a
 * stage, in one pass: this runs for every TFTP and HTTP request. */
static unsigned stage_dirs(const char *path, const char *base)
{
    unsigned d = 0;
    for (const char *p = path; p < base;) {
        const char *e = memchr(p, '/', (size_t)(base - p));
        if (!e)
            break;
        size_t l = (size_t)(e - p);
        if (l == 12 && !strncasecmp(p, "pxelinux.cfg", 12))
            d |= DIR_PXECFG;
        else if (l == 6 && !strncasecmp(p, "LiveOS", 6))
            d |= DIR_LIVEOS;
        else if (l == 8 && !strncasecmp(p, "repodata", 8))
            d |= DIR_REPODATA;
        else if (l == 8 && !strncasecmp(p, "Packages", 8))
            d |= DIR_PACKAGES;
        else if (l == 4 && !strncasecmp(p, "pool", 4))
            d |= DIR_POOL;
        p = e + 1;
    }
    return d;
}

enum tracker_stage tracker_classify_path(const char *path)
{
    if (!path || !*path || starts_with(path, "api/"))
        return TRACKER_STAGE_NONE;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t bn = strlen(base);
    unsigned dirs = stage_dirs(path, base);
    if ((dirs & DIR_PXECFG) || starts_with(base, "grub.cfg") || ends_with(base, bn, ".ipxe") ||
        !strcasecmp(base, "syslinux.cfg") || !strcasecmp(base, "isolinux.cfg"))
        return TRACKER_STAGE_CONFIG;
    if (starts_with(path, "ks/") || !strcasecmp(path, "ks") || starts_with(path, "preseed/") ||
        ends_with(base, bn, ".ks") || !strcasecmp(base, "ks.cfg") || !strcasecmp(base, "preseed.cfg") ||
        strcasestr(base, "kickstart"))
        return TRACKER_STAGE_KICKSTART;
    if (!strcasecmp(base, "install.img") || !strcasecmp(base, "squashfs.img") || ends_with(base, bn, ".squashfs") ||
        (dirs & DIR_LIVEOS))
        return TRACKER_STAGE_STAGE2;
    if (ends_with(base, bn, ".rpm") || ends_with(base, bn, ".deb") || ends_with(base, bn, ".udeb") ||
        (dirs & (DIR_REPODATA | DIR_PACKAGES | DIR_POOL)))
        return TRACKER_STAGE_PACKAGES;
    if (starts_with(base, "vmlinuz") || starts_with(base, "vmlinux") || !strcasecmp(base, "linux") ||
        !strcasecmp(base, "bzImage"))
        return TRACKER_STAGE_KERNEL;
    if (starts_with(base, "initrd") || starts_with(base, "initramfs"))
        return TRACKER_STAGE_INITRD;
    if (ends_with(base, bn, ".0") || ends_with(base, bn, ".efi") || ends_with(base, bn, ".kpxe") ||
        ends_with(base, bn, ".pxe") || ends_with(base, bn, ".lkrn") || ends_with(base, bn, ".c32"))
        return TRACKER_STAGE_LOADER;
    return TRACKER_STAGE_NONE;
}

/* ---- table ---------------------------------------------------------------- */

static uint64_t mac48(const uint8_t mac[6])
{
    return (uint64_t)mac[0] << 40 | (uint64_t)mac[1] << 32 | (uint64_t)mac[2] << 24 | (uint64_t)mac[3] << 16 |
           (uint64_t)mac[4] << 8 | mac[5];
}

static void mac_of(uint64_t key, uint8_t mac[6])
{
    for (int i = 0; i < 6; i++)
        mac[i] = (uint8_t)(key >> (40 - 8 * i));
}

static bool valid_mac(const uint8_t *mac)
{
    return mac && mac48(mac) != 0 && !(mac[0] & 1); /* not zero, not multicast/broadcast */
}

static uint32_t find_slot(struct tracker *t, const uint8_t mac[6], bool create, int *why)
{
    uint64_t key = KEY_USED | mac48(mac);
    uint32_t i = (uint32_t)mix64(key) & t->mask;
    for (uint32_t n = 0; n <= t->mask; n++, i = (i + 1) & t->mask) {
        uint64_t k = atomic_load_explicit(&t->slots[i].key, memory_order_acquire);
        if (k == key)
            return i;
        if (k != 0)
            continue;
        if (!create)
            break;
        if (atomic_load_explicit(&t->nused, memory_order_relaxed) >= t->limit) {
            atomic_fetch_add_explicit(&t->full, 1, memory_order_relaxed);
            *why = TRACKER_ERR_FULL;
            return NO_SLOT;
        }
        uint64_t expect = 0;
        if (atomic_compare_exchange_strong_explicit(&t->slots[i].key, &expect, key, memory_order_acq_rel,
                                                    memory_order_acquire)) {
            atomic_store_explicit(&t->slots[i].cycle, 1, memory_order_relaxed);
            uint32_t u = atomic_fetch_add_explicit(&t->nused, 1, memory_order_acq_rel);
            if (u <= t->mask)
                atomic_store_explicit(&t->used[u], i + 1, memory_order_release);
            return i;
        }
        if (expect == key)
            return i;
    }
    *why = create ? TRACKER_ERR_FULL : TRACKER_ERR_NO_MAC;
    if (create)
        atomic_fetch_add_explicit(&t->full, 1, memory_order_relaxed);
    return NO_SLOT;
}

static void ip_put(struct tracker *t, uint32_t ip, uint32_t id)
{
    if (!ip)
        return;
    uint32_t i = (uint32_t)mix64(ip) & t->ipmask;
    for (uint32_t n = 0; n <= t->ipmask; n++, i = (i + 1) & t->ipmask) {
        uint32_t cur = atomic_load_explicit(&t->ips[i].ip, memory_order_acquire);
        if (cur == 0) {
            uint32_t expect = 0;
            if (!atomic_compare_exchange_strong_explicit(&t->ips[i].ip, &expect, ip, memory_order_acq_rel,
                                                         memory_order_acquire) &&
                expect != ip)
                continue;
            cur = ip;
        }
        if (cur == ip) {
            atomic_store_explicit(&t->ips[i].slot1, id + 1, memory_order_release);
            return;
        }
    }
    /* full: lookups fall back on the resolver */
}

static uint32_t ip_get(struct tracker *t, uint32_t ip)
{
    if (!ip)
        return NO_SLOT;
    uint32_t i = (uint32_t)mix64(ip) & t->ipmask;
    for (uint32_t n = 0; n <= t->ipmask; n++, i = (i + 1) & t->ipmask) {
        uint32_t cur = atomic_load_explicit(&t->ips[i].ip, memory_order_acquire);
        if (cur == ip) {
            uint32_t v = atomic_load_explicit(&t->ips[i].slot1, memory_order_acquire);
            return v ? v - 1 : NO_SLOT;
        }
        if (cur == 0)
            break;
    }
    return NO_SLOT;
}

/* ---- events ---------------------------------------------------------------- */

static void push_event(struct tracker *t, uint32_t id)
{
    uint64_t pos = atomic_fetch_add_explicit(&t->ev_head, 1, memory_order_acq_rel);
    struct event *e = &t->ring[pos & t->emask];
    /* a seqlock without fences (TSan cannot see fences): the release store
     * of val orders the odd seq before it, so a reader that reads this val
     * and then seq again sees at least the odd value */
    atomic_store_explicit(&e->seq, 2 * pos + 1, memory_order_relaxed);
    atomic_store_explicit(&e->val, id, memory_order_release);
    atomic_store_explicit(&e->seq, 2 * pos + 2, memory_order_release);
}

static void changed(struct tracker *t, uint32_t id)
{
    atomic_fetch_add_explicit(&t->slots[id].version, 1, memory_order_release);
    push_event(t, id);
}

uint64_t tracker_events_head(struct tracker *t) { return atomic_load_explicit(&t->ev_head, memory_order_acquire); }

void tracker_cursor_init(struct tracker *t, struct tracker_cursor *c) { c->next = tracker_events_head(t); }

size_t tracker_events_read(struct tracker *t, struct tracker_cursor *c, uint32_t *ids, size_t max, bool *lost)
{
    uint64_t head = tracker_events_head(t);
    uint64_t size = t->emask + 1;
    size_t n = 0;
    *lost = false;
    if (head - c->next > size) {
        *lost = true;
        c->next = head - size;
    }
    while (n < max && c->next < head) {
        struct event *e = &t->ring[c->next & t->emask];
        uint64_t want = 2 * c->next + 2;
        uint64_t s1 = atomic_load_explicit(&e->seq, memory_order_acquire);
        if (s1 < want)
            break; /* claimed but not yet written: next time */
        if (s1 == want) {
            uint64_t v = atomic_load_explicit(&e->val, memory_order_acquire);
            if (atomic_load_explicit(&e->seq, memory_order_relaxed) == s1 && v <= t->mask) {
                ids[n++] = (uint32_t)v;
                c->next++;
                continue;
            }
        }
        *lost = true; /* overwritten by a writer one lap ahead */
        c->next++;
    }
    return n;
}

/* ---- recording --------------------------------------------------------------- */

static void observe(struct tracker *t, unsigned h, uint64_t ms)
{
    double s = (double)ms / 1000.0;
    unsigned b = 0;
    while (b < TRACKER_HIST_BUCKETS && s > tracker_hist_bounds[b])
        b++;
    atomic_fetch_add_explicit(&t->hist[h][b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&t->hist_sum[h], ms, memory_order_relaxed);
    atomic_fetch_add_explicit(&t->hist_count[h], 1, memory_order_relaxed);
}

static void set_reason(struct slot *s, const char *reason)
{
    uint32_t v;
    for (;;) { /* failures of one host rarely race: a short wait for the other writer */
        v = atomic_load_explicit(&s->reason_seq, memory_order_relaxed);
        if (!(v & 1) && atomic_compare_exchange_weak_explicit(&s->reason_seq, &v, v + 1, memory_order_acquire,
                                                              memory_order_relaxed))
            break;
    }
    uint64_t w[REASON_WORDS] = {0};
    snprintf((char *)w, sizeof(w), "%s", reason ? reason : "");
    for (int i = 0; i < REASON_WORDS; i++) /* release: see push_event */
        atomic_store_explicit(&s->reason[i], w[i], memory_order_release);
    atomic_store_explicit(&s->reason_seq, v + 2, memory_order_release);
}

static void get_reason(struct slot *s, char out[TRACKER_REASON_MAX])
{
    uint64_t w[REASON_WORDS];
    for (int tries = 0; tries < 64; tries++) {
        uint32_t v1 = atomic_load_explicit(&s->reason_seq, memory_order_acquire);
        if (v1 & 1)
            continue;
        for (int i = 0; i < REASON_WORDS; i++)
            w[i] = atomic_load_explicit(&s->reason[i], memory_order_acquire);
        if (atomic_load_explicit(&s->reason_seq, memory_order_relaxed) == v1)
            break;
    }
    memcpy(out, w, TRACKER_REASON_MAX);
    out[TRACKER_REASON_MAX - 1] = 0;
}

static void fail_slot(struct tracker *t, uint32_t id, enum tracker_fail_kind kind, const char *reason, uint64_t now)
{
    struct slot *s = &t->slots[id];
    set_reason(s, reason);
    atomic_store_explicit(&s->fail_kind, kind, memory_order_relaxed);
    atomic_store_explicit(&s->fail_ms, now, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->failures, 1, memory_order_relaxed);
    atomic_fetch_or_explicit(&s->flags, FLAG_FAILED, memory_order_relaxed);
    atomic_fetch_add_explicit(&t->failures[kind], 1, memory_order_relaxed);
    changed(t, id);
}

/* A new install cycle.  carry: keep this boot's DHCP times (a reboot). */
static void new_cycle(struct slot *s, uint64_t now, bool carry)
{
    uint32_t stage = TRACKER_STAGE_NONE;
    uint64_t since = now;
    for (int i = 0; i < TRACKER_STAGE_COUNT; i++)
        atomic_store_explicit(&s->ts[i], 0, memory_order_relaxed);
    for (int k = 0; carry && k < 3; k++) {
        uint64_t d = atomic_load_explicit(&s->dhcp_last[k], memory_order_relaxed);
        if (d && d <= now && now - d < CARRY_OVER_MS) {
            atomic_store_explicit(&s->ts[TRACKER_STAGE_DISCOVER + k], d, memory_order_relaxed);
            stage = TRACKER_STAGE_DISCOVER + (uint32_t)k;
            since = d;
        }
    }
    atomic_store_explicit(&s->stage, stage, memory_order_relaxed);
    atomic_store_explicit(&s->since, since, memory_order_relaxed);
    atomic_store_explicit(&s->bytes, 0, memory_order_relaxed);
    atomic_store_explicit(&s->bytes_reported, 0, memory_order_relaxed);
    atomic_fetch_and_explicit(&s->flags, ~(FLAG_STALLED | FLAG_FAILED), memory_order_relaxed);
    atomic_fetch_add_explicit(&s->cycle, 1, memory_order_relaxed);
}

static void progress(struct slot *s, uint64_t now)
{
    atomic_store_explicit(&s->progress, now, memory_order_relaxed);
    if (atomic_load_explicit(&s->flags, memory_order_relaxed))
        atomic_fetch_and_explicit(&s->flags, ~(FLAG_STALLED | FLAG_FAILED), memory_order_relaxed);
}

static int record_slot(struct tracker *t, uint32_t id, enum tracker_stage stage, uint64_t bytes)
{
    struct slot *s = &t->slots[id];
    uint64_t now = t->clock();
    atomic_store_explicit(&s->seen, now, memory_order_relaxed);
    if (bytes) {
        atomic_fetch_add_explicit(&s->bytes, bytes, memory_order_relaxed);
        progress(s, now);
    }
    if (stage == TRACKER_STAGE_NONE)
        return TRACKER_SAME;
    uint32_t cur = atomic_load_explicit(&s->stage, memory_order_acquire);
    bool kernel_seen = atomic_load_explicit(&s->ts[TRACKER_STAGE_KERNEL], memory_order_relaxed) ||
                       atomic_load_explicit(&s->ts[TRACKER_STAGE_INITRD], memory_order_relaxed);
    switch (stage) {
    case TRACKER_STAGE_DISCOVER:
    case TRACKER_STAGE_OFFERED:
    case TRACKER_STAGE_ACKED:
        atomic_store_explicit(&s->dhcp_last[stage - TRACKER_STAGE_DISCOVER], now, memory_order_relaxed);
        if (cur == TRACKER_STAGE_INSTALLED || cur >= TRACKER_STAGE_KICKSTART)
            return TRACKER_SAME; /* a renewal, or a reboot that the loader request will tell */
        if (kernel_seen) {
            if (stage != TRACKER_STAGE_ACKED)
                return TRACKER_SAME;
            stage = TRACKER_STAGE_INSTALLER_DHCP;
        }
        break;
    case TRACKER_STAGE_LOADER:
        if (cur == TRACKER_STAGE_INSTALLED)
            return TRACKER_SAME; /* booting its installed system through our menu */
        if (kernel_seen || cur >= TRACKER_STAGE_INSTALLER_DHCP) {
            char why[TRACKER_REASON_MAX];
            snprintf(why, sizeof(why), "rebooted during %s", stage_names[cur]);
            fail_slot(t, id, TRACKER_FAIL_RESTART, why, now);
            new_cycle(s, now, true);
            cur = atomic_load_explicit(&s->stage, memory_order_acquire);
        }
        break;
    case TRACKER_STAGE_CONFIG:
    case TRACKER_STAGE_PACKAGES:
    case TRACKER_STAGE_POSTINSTALL:
        if (cur == TRACKER_STAGE_INSTALLED)
            return TRACKER_SAME;
        break;
    case TRACKER_STAGE_KERNEL:
    case TRACKER_STAGE_INITRD:
    case TRACKER_STAGE_KICKSTART:
    case TRACKER_STAGE_STAGE2:
        if (cur == TRACKER_STAGE_INSTALLED) { /* installing again without a reinstall call */
            new_cycle(s, now, true);
            cur = atomic_load_explicit(&s->stage, memory_order_acquire);
        }
        break;
    default:
        break;
    }
    uint64_t zero = 0;
    if (!atomic_compare_exchange_strong_explicit(&s->ts[stage], &zero, now, memory_order_acq_rel,
                                                 memory_order_relaxed))
        return TRACKER_SAME; /* a repeat keeps the first time */
    while (stage > cur) {
        if (atomic_compare_exchange_weak_explicit(&s->stage, &cur, stage, memory_order_acq_rel,
                                                  memory_order_acquire)) {
            uint64_t since = atomic_exchange_explicit(&s->since, now, memory_order_acq_rel);
            if (cur != TRACKER_STAGE_NONE && since && since <= now)
                observe(t, stage, now - since);
            if (stage == TRACKER_STAGE_INSTALLED) {
                uint64_t first = now;
                for (int i = 1; i < TRACKER_STAGE_COUNT; i++) {
                    uint64_t v = atomic_load_explicit(&s->ts[i], memory_order_relaxed);
                    if (v && v < first)
                        first = v;
                }
                observe(t, TRACKER_STAGE_COUNT, now - first);
            }
            break;
        }
    }
    progress(s, now);
    changed(t, id);
    return TRACKER_CHANGED;
}

int tracker_record(struct tracker *t, const uint8_t mac[6], enum tracker_stage stage, uint64_t bytes)
{
    if ((unsigned)stage >= TRACKER_STAGE_COUNT)
        return TRACKER_ERR_STAGE;
    if (!valid_mac(mac))
        return TRACKER_ERR_MAC;
    int why = 0;
    uint32_t id = find_slot(t, mac, true, &why);
    return id == NO_SLOT ? why : record_slot(t, id, stage, bytes);
}

/* The slot for an address: our index, then the resolver (claiming the MAC's
 * slot and indexing the address for next time). */
static uint32_t slot_for_ip(struct tracker *t, uint32_t ip, int *why)
{
    uint32_t id = ip_get(t, ip);
    if (id != NO_SLOT)
        return id;
    tracker_ip_resolver_fn fn = atomic_load_explicit(&t->resolver, memory_order_acquire);
    uint8_t mac[6];
    if (ip && fn && fn(atomic_load_explicit(&t->resolver_ctx, memory_order_relaxed), ip, mac) && valid_mac(mac)) {
        id = find_slot(t, mac, true, why);
        if (id != NO_SLOT) {
            atomic_store_explicit(&t->slots[id].ip, ip, memory_order_relaxed);
            ip_put(t, ip, id);
        }
        return id;
    }
    atomic_fetch_add_explicit(&t->no_mac, 1, memory_order_relaxed);
    *why = TRACKER_ERR_NO_MAC;
    return NO_SLOT;
}

bool tracker_mac_for_ip(struct tracker *t, uint32_t ip, uint8_t mac[6])
{
    int why = 0;
    uint32_t id = slot_for_ip(t, ip, &why);
    if (id == NO_SLOT)
        return false;
    mac_of(atomic_load_explicit(&t->slots[id].key, memory_order_acquire), mac);
    return true;
}

int tracker_record_ip(struct tracker *t, uint32_t ip, enum tracker_stage stage, uint64_t bytes)
{
    if ((unsigned)stage >= TRACKER_STAGE_COUNT)
        return TRACKER_ERR_STAGE;
    int why = 0;
    uint32_t id = slot_for_ip(t, ip, &why);
    return id == NO_SLOT ? why : record_slot(t, id, stage, bytes);
}

int tracker_set_ip(struct tracker *t, const uint8_t mac[6], uint32_t ip)
{
    if (!valid_mac(mac))
        return TRACKER_ERR_MAC;
    int why = 0;
    uint32_t id = find_slot(t, mac, true, &why);
    if (id == NO_SLOT)
        return why;
    ip_put(t, ip, id);
    if (atomic_exchange_explicit(&t->slots[id].ip, ip, memory_order_relaxed) == ip)
        return TRACKER_SAME;
    changed(t, id);
    return TRACKER_CHANGED;
}

int tracker_fail(struct tracker *t, const uint8_t mac[6], enum tracker_fail_kind kind, const char *reason)
{
    if ((unsigned)kind >= TRACKER_FAIL_COUNT)
        kind = TRACKER_FAIL_OTHER;
    if (!valid_mac(mac))
        return TRACKER_ERR_MAC;
    int why = 0;
    uint32_t id = find_slot(t, mac, true, &why);
    if (id == NO_SLOT)
        return why;
    uint64_t now = t->clock();
    atomic_store_explicit(&t->slots[id].seen, now, memory_order_relaxed);
    fail_slot(t, id, kind, reason, now);
    return TRACKER_CHANGED;
}

int tracker_fail_ip(struct tracker *t, uint32_t ip, enum tracker_fail_kind kind, const char *reason)
{
    int why = 0;
    uint32_t id = slot_for_ip(t, ip, &why);
    if (id == NO_SLOT)
        return why;
    uint8_t mac[6];
    mac_of(atomic_load_explicit(&t->slots[id].key, memory_order_acquire), mac);
    return tracker_fail(t, mac, kind, reason);
}

int tracker_reset(struct tracker *t, const uint8_t mac[6])
{
    if (!valid_mac(mac))
        return TRACKER_ERR_MAC;
    int why = 0;
    uint32_t id = find_slot(t, mac, true, &why);
    if (id == NO_SLOT)
        return why;
    uint64_t now = t->clock();
    new_cycle(&t->slots[id], now, false);
    atomic_store_explicit(&t->slots[id].progress, now, memory_order_relaxed);
    changed(t, id);
    return TRACKER_CHANGED;
}

void tracker_dhcp_hook(void *arg, enum dhcp_stage dhcp_stage, const uint8_t *chaddr, uint8_t hlen, uint32_t ip)
{
    struct tracker *t = arg;
    if (hlen != 6 || !chaddr)
        return; /* only Ethernet hosts are tracked */
    char why[TRACKER_REASON_MAX];
    struct in_addr a = {htonl(ip)};
    switch (dhcp_stage) {
    case DHCP_STAGE_OFFER:
        tracker_record(t, chaddr, TRACKER_STAGE_DISCOVER, 0);
        tracker_record(t, chaddr, TRACKER_STAGE_OFFERED, 0);
        break;
    case DHCP_STAGE_ACK:
        tracker_set_ip(t, chaddr, ip);
        tracker_record(t, chaddr, TRACKER_STAGE_ACKED, 0);
        break;
    case DHCP_STAGE_NAK:
        tracker_fail(t, chaddr, TRACKER_FAIL_DHCP_NAK, "DHCPNAK: the requested address is not this host's");
        break;
    case DHCP_STAGE_DECLINE:
        snprintf(why, sizeof(why), "DHCPDECLINE: %s is in use by another machine", inet_ntoa(a));
        tracker_fail(t, chaddr, TRACKER_FAIL_DHCP_DECLINE, why);
        break;
    default:
        break;
    }
}

bool tracker_dhcp_resolver(void *dhcp_shared, uint32_t ip, uint8_t mac[6])
{
    return dhcp_leases_mac_for_ip(dhcp_shared, ip, mac);
}

bool tracker_vfile_open(void *ctx, const char *path, uint32_t client_ip_be, struct vfile **out)
{
    const struct tracker_vfiles *tv = ctx;
    enum tracker_stage st = tracker_classify_path(path);
    if (st != TRACKER_STAGE_NONE)
        tracker_record_ip(tv->tracker, ntohl(client_ip_be), st, 0);
    return tv->inner && tv->inner->open ? tv->inner->open(tv->inner->ctx, path, client_ip_be, out) : false;
}

/* Files loaders ask for that may well not exist: a missing one is no failure. */
static bool tftp_optional(const char *path, enum tracker_stage st)
{
    if (st == TRACKER_STAGE_NONE || st == TRACKER_STAGE_CONFIG)
        return true; /* grub's *.lst and modules, config search orders */
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    /* shim (15.7+) probes its revocation lists and extra certificates */
    return starts_with(base, "revocations") || starts_with(base, "shim_certificate");
}

void tracker_tftp_done(void *arg, const struct tftp_done_info *d)
{
    struct tracker *t = arg;
    if (!t || !d || d->write)
        return;
    uint32_t ip = ntohl(d->client_ip);
    const char *path = d->path ? d->path : "";
    if (*path == '/')
        path++; /* refusals carry the name as sent */
    char why[TRACKER_REASON_MAX];
    switch (d->outcome) {
    case TFTP_DONE_COMPLETE:
    case TFTP_DONE_UNACKED:
    case TFTP_DONE_SUPERSEDED:
    case TFTP_DONE_FAILED: /* ours: the file changed, the server stops; the client asks again */
        if (d->bytes)
            tracker_record_ip(t, ip, TRACKER_STAGE_NONE, d->bytes);
        return;
    case TFTP_DONE_TIMEOUT:
        if (d->bytes)
            tracker_record_ip(t, ip, TRACKER_STAGE_NONE, d->bytes);
        snprintf(why, sizeof(why), "tftp timeout on %.40s after %" PRIu64 " of %" PRIu64 " bytes", path, d->bytes,
                 d->size);
        tracker_fail_ip(t, ip, TRACKER_FAIL_TFTP_TIMEOUT, why);
        return;
    case TFTP_DONE_CLIENT_ABORT:
        /* RFC 2347: a client may answer the OACK with ERROR 8; firmware does so on
         * purpose to learn a file's size (RFC 2349 tsize) without reading it */
        if (!d->bytes && d->oack) {
            atomic_fetch_add_explicit(&t->tftp_probes, 1, memory_order_relaxed);
            return;
        }
        if (d->bytes)
            tracker_record_ip(t, ip, TRACKER_STAGE_NONE, d->bytes);
        snprintf(why, sizeof(why), "tftp aborted by client (ERROR %u) on %.40s after %" PRIu64 " bytes",
                 d->error_code, path, d->bytes);
        tracker_fail_ip(t, ip, TRACKER_FAIL_TFTP_ABORT, why);
        return;
    case TFTP_DONE_NOT_FOUND:
        if (tftp_optional(path, tracker_classify_path(path))) {
            atomic_fetch_add_explicit(&t->tftp_missing, 1, memory_order_relaxed);
            return;
        }
        snprintf(why, sizeof(why), "tftp %.60s: file not found (ERROR 1)", path);
        tracker_fail_ip(t, ip, TRACKER_FAIL_TFTP_ERROR, why);
        return;
    case TFTP_DONE_REFUSED:
        if (d->error_code != 0 && tracker_classify_path(path) == TRACKER_STAGE_NONE)
            return; /* not a file of anyone's boot (a traversal attempt, ...): the service counts it */
        snprintf(why, sizeof(why), "tftp %.40s refused: %.30s (ERROR %u)", path, d->reason ? d->reason : "",
                 d->error_code);
        tracker_fail_ip(t, ip, TRACKER_FAIL_TFTP_ERROR, why);
        return;
    }
}

/* ---- reading ------------------------------------------------------------------- */

static void fill_inventory(struct tracker_host *out, const struct inv_host *h)
{
    out->known = h != NULL;
    if (!h)
        return;
    snprintf(out->hostname, sizeof(out->hostname), "%s", h->hostname);
    const char *rack = inv_host_var(h, "rack");
    snprintf(out->rack, sizeof(out->rack), "%s", rack ? rack : "");
    if (!out->ip)
        out->ip = h->ip;
}

static void read_slot(struct tracker *t, uint32_t id, struct tracker_host *out)
{
    struct slot *s = &t->slots[id];
    memset(out, 0, sizeof(*out));
    for (int tries = 0; tries < READ_TRIES; tries++) {
        uint64_t v1 = atomic_load_explicit(&s->version, memory_order_acquire);
        out->stage = atomic_load_explicit(&s->stage, memory_order_relaxed);
        for (int i = 0; i < TRACKER_STAGE_COUNT; i++)
            out->ts[i] = atomic_load_explicit(&s->ts[i], memory_order_relaxed);
        out->since_ms = atomic_load_explicit(&s->since, memory_order_relaxed);
        out->progress_ms = atomic_load_explicit(&s->progress, memory_order_relaxed);
        out->seen_ms = atomic_load_explicit(&s->seen, memory_order_relaxed);
        out->bytes = atomic_load_explicit(&s->bytes, memory_order_relaxed);
        out->ip = atomic_load_explicit(&s->ip, memory_order_relaxed);
        uint32_t fl = atomic_load_explicit(&s->flags, memory_order_relaxed);
        out->stalled = fl & FLAG_STALLED;
        out->failed = fl & FLAG_FAILED;
        out->fail_ms = atomic_load_explicit(&s->fail_ms, memory_order_relaxed);
        out->fail_kind = atomic_load_explicit(&s->fail_kind, memory_order_relaxed);
        out->failures = atomic_load_explicit(&s->failures, memory_order_relaxed);
        out->cycles = atomic_load_explicit(&s->cycle, memory_order_acquire);
        out->version = atomic_load_explicit(&s->version, memory_order_acquire);
        if (out->version == v1)
            break;
    }
    if (out->fail_ms)
        get_reason(s, out->fail_reason);
    if (out->stage >= TRACKER_STAGE_COUNT)
        out->stage = TRACKER_STAGE_NONE;
    if (out->fail_kind >= TRACKER_FAIL_COUNT)
        out->fail_kind = TRACKER_FAIL_OTHER;
    out->id = id;
    mac_of(atomic_load_explicit(&s->key, memory_order_acquire), out->mac);
    inventory_format_mac(out->mac, out->mac_str);
}

static struct inventory *inv_get(struct tracker *t)
{
    struct inventory_holder *h = atomic_load_explicit(&t->inv_holder, memory_order_acquire);
    return h ? inventory_holder_acquire(h) : NULL;
}

static void inv_put(struct tracker *t, struct inventory *inv)
{
    struct inventory_holder *h = atomic_load_explicit(&t->inv_holder, memory_order_acquire);
    if (h && inv)
        inventory_holder_release(h, inv);
}

bool tracker_get_id(struct tracker *t, uint32_t id, struct tracker_host *out)
{
    if (id > t->mask || !atomic_load_explicit(&t->slots[id].key, memory_order_acquire))
        return false;
    read_slot(t, id, out);
    struct inventory *inv = inv_get(t);
    fill_inventory(out, inventory_find_mac(inv, out->mac));
    inv_put(t, inv);
    return true;
}

static bool get_host(struct tracker *t, struct inventory *inv, const uint8_t mac[6], struct tracker_host *out)
{
    const struct inv_host *h = inventory_find_mac(inv, mac);
    int why = 0;
    uint32_t id = valid_mac(mac) ? find_slot(t, mac, false, &why) : NO_SLOT;
    if (id != NO_SLOT) {
        read_slot(t, id, out);
    } else if (h) { /* in the inventory, never seen, no slot (table full) */
        memset(out, 0, sizeof(*out));
        out->id = NO_SLOT;
        memcpy(out->mac, mac, 6);
        inventory_format_mac(mac, out->mac_str);
        out->cycles = 1;
    } else {
        return false;
    }
    fill_inventory(out, h);
    return true;
}

bool tracker_get(struct tracker *t, const uint8_t mac[6], struct tracker_host *out)
{
    struct inventory *inv = inv_get(t);
    bool ok = get_host(t, inv, mac, out);
    inv_put(t, inv);
    return ok;
}

bool tracker_resolve_id(struct tracker *t, const char *id, uint8_t mac[6])
{
    if (inventory_parse_mac(id, mac))
        return true;
    struct inventory *inv = inv_get(t);
    const struct inv_host *h = inventory_find_hostname(inv, id);
    if (h)
        memcpy(mac, h->mac, 6);
    inv_put(t, inv);
    return h != NULL;
}

static int cmp_mac_key(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

void tracker_foreach(struct tracker *t, tracker_visit_fn fn, void *ctx)
{
    struct inventory *inv = inv_get(t);
    struct tracker_host h;
    size_t ninv = inventory_count(inv);
    for (size_t i = 0; i < ninv; i++) {
        const struct inv_host *ih = inventory_host(inv, i);
        if (get_host(t, inv, ih->mac, &h) && !fn(ctx, &h))
            goto out;
    }
    uint32_t n = atomic_load_explicit(&t->nused, memory_order_acquire);
    if (n > t->mask + 1)
        n = t->mask + 1;
    /* then the hosts not in the inventory, by MAC */
    uint64_t *keys = n ? malloc(n * sizeof(*keys)) : NULL;
    size_t nk = 0;
    for (uint32_t u = 0; keys && u < n; u++) {
        uint32_t id1 = atomic_load_explicit(&t->used[u], memory_order_acquire);
        if (!id1)
            continue;
        uint64_t key = atomic_load_explicit(&t->slots[id1 - 1].key, memory_order_acquire);
        uint8_t mac[6];
        mac_of(key, mac);
        if (!inventory_find_mac(inv, mac))
            keys[nk++] = key;
    }
    if (nk)
        qsort(keys, nk, sizeof(*keys), cmp_mac_key);
    for (size_t i = 0; i < nk; i++) {
        uint8_t mac[6];
        mac_of(keys[i], mac);
        if (get_host(t, inv, mac, &h) && !fn(ctx, &h))
            break;
    }
    free(keys);
out:
    inv_put(t, inv);
}

static bool count_one(void *ctx, const struct tracker_host *h)
{
    struct tracker_counts *c = ctx;
    c->hosts++;
    c->stage[h->stage]++;
    c->stalled += h->stalled;
    c->failed += h->failed;
    return true;
}

void tracker_counts(struct tracker *t, struct tracker_counts *out)
{
    memset(out, 0, sizeof(*out));
    tracker_foreach(t, count_one, out);
}

void tracker_histogram(struct tracker *t, unsigned stage, struct tracker_hist *out)
{
    memset(out, 0, sizeof(*out));
    if (stage == 0 || stage > TRACKER_STAGE_COUNT)
        return;
    for (int b = 0; b <= TRACKER_HIST_BUCKETS; b++)
        out->bucket[b] = atomic_load_explicit(&t->hist[stage][b], memory_order_relaxed);
    out->count = atomic_load_explicit(&t->hist_count[stage], memory_order_relaxed);
    out->sum_ms = atomic_load_explicit(&t->hist_sum[stage], memory_order_relaxed);
}

void tracker_get_stats(struct tracker *t, struct tracker_stats *out)
{
    memset(out, 0, sizeof(*out));
    for (int k = 0; k < TRACKER_FAIL_COUNT; k++)
        out->failures[k] = atomic_load_explicit(&t->failures[k], memory_order_relaxed);
    out->events = tracker_events_head(t);
    out->full = atomic_load_explicit(&t->full, memory_order_relaxed);
    out->no_mac = atomic_load_explicit(&t->no_mac, memory_order_relaxed);
    out->tftp_size_probes = atomic_load_explicit(&t->tftp_probes, memory_order_relaxed);
    out->tftp_optional_missing = atomic_load_explicit(&t->tftp_missing, memory_order_relaxed);
    out->journal_writes = atomic_load_explicit(&t->journal_writes, memory_order_relaxed);
    out->journal_errors = atomic_load_explicit(&t->journal_errors, memory_order_relaxed);
    out->snapshots = atomic_load_explicit(&t->snapshots, memory_order_relaxed);
    out->snapshot_errors = atomic_load_explicit(&t->snapshot_errors, memory_order_relaxed);
    out->capacity = t->limit;
    out->used = atomic_load_explicit(&t->nused, memory_order_relaxed);
}

uint32_t tracker_stall_after_ms(const struct tracker *t) { return t->cfg.stall_after_ms; }

/* ---- the state file and the journal -------------------------------------------------
 *
 *   # bootstorm hosts.state 1
 *   # epoch 7
 *   52:54:00:12:34:56 stage=kernel cycle=1 ip=10.0.0.5 bytes=0 failures=1 since=... progress=...
 *       seen=... flags=2 discover=... offered=... ... fail=MS,KIND,REASON
 *
 *   # bootstorm hosts.journal 1 epoch 7
 *   host lines as above, appended; a later line for a MAC replaces the earlier state
 *
 * one host per line; stage timestamps by name (only those reached); the
 * reason is %-escaped (no spaces) and comes last.  A state file without an
 * epoch line (written before the journal existed) has epoch 0. */

#define STATE_MAGIC "# bootstorm hosts.state 1"
#define EPOCH_PREFIX "# epoch "
#define JOURNAL_MAGIC "# bootstorm hosts.journal 1 epoch "
#define JOURNAL_BATCH 256
#define JOURNAL_MAX_BATCHES 64 /* per flush: a flood of events waits for the next one */

static void escape_reason(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p && o + 4 < cap; p++) {
        if (*p > 0x20 && *p < 0x7f && *p != '%' && *p != ',')
            out[o++] = (char)*p;
        else
            o += (size_t)snprintf(out + o, cap - o, "%%%02X", *p);
    }
    out[o] = 0;
}

static bool unescape_reason(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *p = in; *p; p++) {
        if (o + 1 >= cap)
            break;
        if (*p == '%') {
            if (!isxdigit((unsigned char)p[1]) || !isxdigit((unsigned char)p[2]))
                return false;
            char hex[3] = {p[1], p[2], 0};
            unsigned v = (unsigned)strtoul(hex, NULL, 16);
            if (!v)
                return false;
            out[o++] = (char)v;
            p += 2;
        } else {
            out[o++] = *p;
        }
    }
    out[o] = 0;
    return true;
}

/* false: nothing to remember (the inventory brings the host back) */
static bool worth_saving(const struct tracker_host *h)
{
    return h->stage != TRACKER_STAGE_NONE || h->fail_ms || h->bytes || h->ip || h->cycles > 1;
}

static void write_host_line(FILE *f, const struct tracker_host *h)
{
    struct in_addr a = {htonl(h->ip)};
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &a, ip, sizeof(ip));
    fprintf(f, "%s stage=%s cycle=%" PRIu32 " ip=%s bytes=%" PRIu64 " failures=%" PRIu32 " since=%" PRIu64
               " progress=%" PRIu64 " seen=%" PRIu64 " flags=%u",
            h->mac_str, stage_names[h->stage], h->cycles, ip, h->bytes, h->failures, h->since_ms, h->progress_ms,
            h->seen_ms, (h->stalled ? FLAG_STALLED : 0) | (h->failed ? FLAG_FAILED : 0));
    for (int i = 1; i < TRACKER_STAGE_COUNT; i++)
        if (h->ts[i])
            fprintf(f, " %s=%" PRIu64, stage_names[i], h->ts[i]);
    if (h->fail_ms) {
        char esc[TRACKER_REASON_MAX * 3 + 1];
        escape_reason(h->fail_reason, esc, sizeof(esc));
        fprintf(f, " fail=%" PRIu64 ",%s,%s", h->fail_ms, fail_names[h->fail_kind], esc);
    }
    fputc('\n', f);
}

static int write_state(struct tracker *t, FILE *f, uint64_t epoch)
{
    fprintf(f, "%s\n" EPOCH_PREFIX "%" PRIu64 "\n", STATE_MAGIC, epoch);
    uint32_t n = atomic_load_explicit(&t->nused, memory_order_acquire);
    if (n > t->mask + 1)
        n = t->mask + 1;
    for (uint32_t u = 0; u < n; u++) {
        uint32_t id1 = atomic_load_explicit(&t->used[u], memory_order_acquire);
        if (!id1)
            continue;
        struct tracker_host h;
        read_slot(t, id1 - 1, &h);
        if (worth_saving(&h))
            write_host_line(f, &h);
    }
    return ferror(f) ? -EIO : 0;
}

static void state_path(const struct tracker *t, const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", t->cfg.state_dir, name);
}

/* An empty journal under epoch (under pmu).  0 or -errno. */
static int journal_reset(struct tracker *t, uint64_t epoch)
{
    char path[4200];
    state_path(t, TRACKER_JOURNAL_FILE, path, sizeof(path));
    if (t->jf)
        fclose(t->jf);
    t->jf = NULL;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "a") : NULL;
    if (!f) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return -e;
    }
    fprintf(f, JOURNAL_MAGIC "%" PRIu64 "\n", epoch);
    if (fflush(f) != 0 || fdatasync(fd) != 0) {
        int e = errno;
        fclose(f);
        return -e;
    }
    t->jf = f;
    t->jlines = 0;
    return 0;
}

/* The whole table into hosts.state under a new epoch, then an empty journal
 * (under pmu).  A crash between the two leaves a journal of the old epoch,
 * which the next start ignores: the snapshot holds all of it. */
static int save_locked(struct tracker *t, char *err, size_t errlen)
{
    char path[4200], tmp[4300];
    state_path(t, TRACKER_STATE_FILE, path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    uint64_t head = tracker_events_head(t); /* every event before it is in this snapshot */
    uint64_t epoch = t->epoch + 1;
    int rc = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        rc = -errno;
        if (fd >= 0)
            close(fd);
        snprintf(err, errlen, "%s: %s", tmp, strerror(-rc));
        goto fail;
    }
    rc = write_state(t, f, epoch);
    if (rc == 0 && fflush(f) != 0)
        rc = -errno;
    if (rc == 0 && fsync(fileno(f)) != 0)
        rc = -errno;
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc < 0) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(-rc));
        unlink(tmp);
        goto fail;
    }
    int dfd = open(t->cfg.state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) { /* the rename itself must survive a crash */
        fsync(dfd);
        close(dfd);
    }
    atomic_fetch_add_explicit(&t->snapshots, 1, memory_order_relaxed);
    t->epoch = epoch;
    t->jcur.next = head;
    t->jretry_ms = 0;
    rc = journal_reset(t, epoch);
    if (rc < 0) { /* the snapshot stands; the next flush tries again */
        atomic_fetch_add_explicit(&t->journal_errors, 1, memory_order_relaxed);
        state_path(t, TRACKER_JOURNAL_FILE, path, sizeof(path));
        snprintf(err, errlen, "%s: %s", path, strerror(-rc));
    }
    return rc;
fail:
    atomic_fetch_add_explicit(&t->snapshot_errors, 1, memory_order_relaxed);
    return rc;
}

int tracker_save(struct tracker *t, char *err, size_t errlen)
{
    if (!t->cfg.state_dir)
        return 0;
    pthread_mutex_lock(&t->pmu);
    int rc = save_locked(t, err, errlen);
    pthread_mutex_unlock(&t->pmu);
    return rc;
}

int tracker_journal_flush(struct tracker *t)
{
    if (!t->cfg.state_dir)
        return 0;
    pthread_mutex_lock(&t->pmu);
    char err[512];
    int rc = 0;
    if (!t->jf) { /* broken or never opened: a snapshot writes everything (not too often) */
        uint64_t now = t->clock();
        if (t->jretry_ms && now - t->jretry_ms < t->cfg.snapshot_interval_ms)
            goto out;
        t->jretry_ms = now;
        if ((rc = save_locked(t, err, sizeof(err))) < 0)
            fprintf(stderr, "bootstorm: host state not saved: %s\n", err);
        goto out;
    }
    if (tracker_events_head(t) == t->jcur.next)
        goto out; /* nothing changed */
    size_t n = 0;
    bool lost = false, any_lost = false;
    uint32_t batch[JOURNAL_BATCH];
    for (int b = 0; b < JOURNAL_MAX_BATCHES; b++) {
        size_t got = tracker_events_read(t, &t->jcur, batch, JOURNAL_BATCH, &lost);
        any_lost |= lost;
        for (size_t i = 0; i < got; i++)
            if (!t->jmark[batch[i]]) {
                t->jmark[batch[i]] = 1;
                t->jids[n++] = batch[i];
            }
        if (got < JOURNAL_BATCH)
            break;
    }
    for (size_t i = 0; i < n; i++) {
        t->jmark[t->jids[i]] = 0;
        struct tracker_host h;
        read_slot(t, t->jids[i], &h); /* its newest state: later lines replace earlier ones */
        if (!any_lost && worth_saving(&h)) {
            write_host_line(t->jf, &h);
            t->jlines++;
        }
    }
    if (any_lost) { /* the ring lapped us: only a snapshot has everything */
        if ((rc = save_locked(t, err, sizeof(err))) < 0) {
            fprintf(stderr, "bootstorm: host state not saved: %s\n", err);
            /* the events it replaces are consumed: without a journal the next
             * flush retries the snapshot (rate-limited) instead of waiting for
             * a change that may never come */
            if (t->jf) {
                fclose(t->jf);
                t->jf = NULL;
            }
        }
        goto out;
    }
    if (fflush(t->jf) != 0 || fdatasync(fileno(t->jf)) != 0) {
        rc = -errno;
        fprintf(stderr, "bootstorm: host state journal: %s/%s: %s\n", t->cfg.state_dir, TRACKER_JOURNAL_FILE,
                strerror(-rc));
        atomic_fetch_add_explicit(&t->journal_errors, 1, memory_order_relaxed);
        fclose(t->jf);
        t->jf = NULL;
        goto out;
    }
    atomic_fetch_add_explicit(&t->journal_writes, 1, memory_order_relaxed);
out:
    pthread_mutex_unlock(&t->pmu);
    return rc;
}

/* A host line replaces everything an earlier line (journal) said of the host. */
static void clear_slot(struct slot *s)
{
    atomic_store(&s->stage, TRACKER_STAGE_NONE);
    atomic_store(&s->flags, 0);
    for (int i = 0; i < TRACKER_STAGE_COUNT; i++)
        atomic_store(&s->ts[i], 0);
    atomic_store(&s->since, 0);
    atomic_store(&s->progress, 0);
    atomic_store(&s->seen, 0);
    atomic_store(&s->bytes, 0);
    atomic_store(&s->bytes_reported, 0);
    atomic_store(&s->failures, 0);
    atomic_store(&s->fail_kind, 0);
    atomic_store(&s->fail_ms, 0);
    atomic_store(&s->cycle, 1);
    set_reason(s, "");
}

static bool parse_u64(const char *s, uint64_t *out)
{
    if (!isdigit((unsigned char)*s))
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

/* One line of the state file into its slot; NULL or the problem. */
static const char *load_line(struct tracker *t, char *line)
{
    char *save = NULL;
    char *tok = strtok_r(line, " ", &save);
    uint8_t mac[6];
    if (!tok || !inventory_parse_mac(tok, mac) || !valid_mac(mac))
        return "not a MAC address at the start of the line";
    int why = 0;
    uint32_t id = find_slot(t, mac, true, &why);
    if (id == NO_SLOT)
        return "more hosts than the table holds";
    struct slot *s = &t->slots[id];
    clear_slot(s);
    bool have_stage = false;
    while ((tok = strtok_r(NULL, " ", &save)) != NULL) {
        char *eq = strchr(tok, '=');
        if (!eq)
            return "a field without '='";
        *eq = 0;
        const char *k = tok, *v = eq + 1;
        uint64_t n = 0;
        if (!strcmp(k, "stage")) {
            int st = tracker_stage_parse(v);
            if (st < 0)
                return "unknown stage";
            atomic_store(&s->stage, (uint32_t)st);
            have_stage = true;
        } else if (!strcmp(k, "ip")) {
            struct in_addr a;
            if (inet_pton(AF_INET, v, &a) != 1)
                return "bad ip";
            atomic_store(&s->ip, ntohl(a.s_addr));
            ip_put(t, ntohl(a.s_addr), id);
        } else if (!strcmp(k, "fail")) {
            char *c1 = strchr(v, ','), *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
            if (!c2)
                return "fail is not MS,KIND,REASON";
            *c1 = *c2 = 0;
            int kind = -1;
            for (int i = 0; i < TRACKER_FAIL_COUNT; i++)
                if (!strcmp(c1 + 1, fail_names[i]))
                    kind = i;
            char reason[TRACKER_REASON_MAX];
            if (!parse_u64(v, &n) || kind < 0 || !unescape_reason(c2 + 1, reason, sizeof(reason)))
                return "bad fail field";
            atomic_store(&s->fail_ms, n);
            atomic_store(&s->fail_kind, (uint32_t)kind);
            set_reason(s, reason);
        } else {
            if (!parse_u64(v, &n))
                return "a field whose value is not a number";
            int st = tracker_stage_parse(k);
            if (st > 0)
                atomic_store(&s->ts[st], n);
            else if (!strcmp(k, "cycle") && n > 0 && n <= UINT32_MAX)
                atomic_store(&s->cycle, (uint32_t)n);
            else if (!strcmp(k, "bytes"))
                atomic_store(&s->bytes, n), atomic_store(&s->bytes_reported, n);
            else if (!strcmp(k, "failures") && n <= UINT32_MAX)
                atomic_store(&s->failures, (uint32_t)n);
            else if (!strcmp(k, "since"))
                atomic_store(&s->since, n);
            else if (!strcmp(k, "progress"))
                atomic_store(&s->progress, n);
            else if (!strcmp(k, "seen"))
                atomic_store(&s->seen, n);
            else if (!strcmp(k, "flags") && n <= (FLAG_STALLED | FLAG_FAILED))
                atomic_store(&s->flags, (uint32_t)n);
            else
                return "unknown field or value out of range";
        }
    }
    return have_stage ? NULL : "no stage= field";
}

/* hosts.state (journal false) or hosts.journal: every line into its slot.
 * The journal is replayed only under the state file's epoch, and its last
 * line may be torn (a crash mid-append): that line is dropped. */
static int load_file(struct tracker *t, bool journal, char *err, size_t errlen)
{
    char path[4200];
    state_path(t, journal ? TRACKER_JOURNAL_FILE : TRACKER_STATE_FILE, path, sizeof(path));
    FILE *f = fopen(path, "re");
    if (!f) {
        if (errno == ENOENT)
            return 0;
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    char line[2048];
    unsigned lineno = 0;
    int rc = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        size_t n = strlen(line);
        if (n && line[n - 1] == '\n') {
            line[--n] = 0;
        } else if (!feof(f)) {
            snprintf(err, errlen, "%s:%u: line too long", path, lineno);
            rc = -EINVAL;
            break;
        } else if (journal) {
            break; /* torn by a crash: never acknowledged to anyone */
        }
        uint64_t v = 0;
        if (lineno == 1 && journal) {
            if (strncmp(line, JOURNAL_MAGIC, strlen(JOURNAL_MAGIC)) != 0 ||
                !parse_u64(line + strlen(JOURNAL_MAGIC), &v)) {
                snprintf(err, errlen, "%s:1: not a bootstorm hosts.journal file (expected \"%sN\")", path,
                         JOURNAL_MAGIC);
                rc = -EINVAL;
                break;
            }
            if (v != t->epoch)
                break; /* older than the snapshot, which holds all of it */
            continue;
        }
        if (lineno == 1) {
            if (strcmp(line, STATE_MAGIC) != 0) {
                snprintf(err, errlen, "%s:1: not a bootstorm hosts.state file (expected \"%s\")", path,
                         STATE_MAGIC);
                rc = -EINVAL;
                break;
            }
            continue;
        }
        if (lineno == 2 && !journal && !strncmp(line, EPOCH_PREFIX, strlen(EPOCH_PREFIX))) {
            if (!parse_u64(line + strlen(EPOCH_PREFIX), &v)) {
                snprintf(err, errlen, "%s:2: bad epoch", path);
                rc = -EINVAL;
                break;
            }
            t->epoch = v;
            continue;
        }
        if (!n)
            continue;
        const char *why = load_line(t, line);
        if (why) {
            snprintf(err, errlen, "%s:%u: %s", path, lineno, why);
            rc = -EINVAL;
            break;
        }
    }
    if (!rc && ferror(f)) {
        rc = -EIO;
        snprintf(err, errlen, "%s: read error", path);
    }
    fclose(f);
    return rc;
}

static int load_state(struct tracker *t, char *err, size_t errlen)
{
    int rc = load_file(t, false, err, errlen);
    return rc < 0 ? rc : load_file(t, true, err, errlen);
}

/* ---- the tick ---------------------------------------------------------------- */

static void sync_inventory(struct tracker *t)
{
    struct inventory_holder *h = atomic_load_explicit(&t->inv_holder, memory_order_acquire);
    if (!h)
        return;
    struct inventory *before = t->inv_synced;
    if (!before)
        t->inv_synced = inventory_holder_acquire(h);
    else
        inventory_holder_refresh(h, &t->inv_synced);
    if (t->inv_synced == before && before)
        return;
    for (size_t i = 0; i < inventory_count(t->inv_synced); i++) {
        const struct inv_host *ih = inventory_host(t->inv_synced, i);
        int why = 0;
        uint32_t id = find_slot(t, ih->mac, true, &why);
        if (id != NO_SLOT && ih->ip && ip_get(t, ih->ip) == NO_SLOT)
            ip_put(t, ih->ip, id);
    }
    if (before) /* a reload: names and racks may have changed for everyone */
        for (uint32_t u = 0; u < atomic_load(&t->nused) && u <= t->mask; u++) {
            uint32_t id1 = atomic_load_explicit(&t->used[u], memory_order_acquire);
            if (id1)
                changed(t, id1 - 1);
        }
}

void tracker_tick(struct tracker *t, uint64_t now)
{
    sync_inventory(t);
    bool bytes_due = now - t->last_bytes_event_ms >= BYTES_EVENT_MS;
    if (bytes_due)
        t->last_bytes_event_ms = now;
    uint64_t stall = t->cfg.stall_after_ms;
    uint32_t n = atomic_load_explicit(&t->nused, memory_order_acquire);
    if (n > t->mask + 1)
        n = t->mask + 1;
    for (uint32_t u = 0; u < n; u++) {
        uint32_t id1 = atomic_load_explicit(&t->used[u], memory_order_acquire);
        if (!id1)
            continue;
        uint32_t id = id1 - 1;
        struct slot *s = &t->slots[id];
        uint32_t stage = atomic_load_explicit(&s->stage, memory_order_relaxed);
        uint32_t fl = atomic_load_explicit(&s->flags, memory_order_relaxed);
        uint64_t prog = atomic_load_explicit(&s->progress, memory_order_relaxed);
        if (stall && stage != TRACKER_STAGE_NONE && stage != TRACKER_STAGE_INSTALLED && !(fl & FLAG_STALLED) &&
            prog && now > prog && now - prog >= stall) {
            atomic_fetch_or_explicit(&s->flags, FLAG_STALLED, memory_order_relaxed);
            changed(t, id);
        }
        uint64_t b = atomic_load_explicit(&s->bytes, memory_order_relaxed);
        if (bytes_due && b != atomic_load_explicit(&s->bytes_reported, memory_order_relaxed)) {
            atomic_store_explicit(&s->bytes_reported, b, memory_order_relaxed);
            changed(t, id);
        }
    }
    if (!t->cfg.state_dir)
        return;
    tracker_journal_flush(t); /* this tick's stalls and byte counts too */
    if (now - t->last_save_ms >= t->cfg.snapshot_interval_ms) {
        t->last_save_ms = now;
        pthread_mutex_lock(&t->pmu);
        char err[512];
        if (t->jlines && save_locked(t, err, sizeof(err)) < 0) /* compaction: the journal stays short */
            fprintf(stderr, "bootstorm: host state not saved: %s\n", err);
        pthread_mutex_unlock(&t->pmu);
    }
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Wakes every TRACKER_JOURNAL_MS to journal what changed (one atomic load
 * when nothing did: the recording paths never wake this thread), and runs the
 * full tick every TRACKER_TICK_MS. */
static void *tick_main(void *arg)
{
    struct tracker *t = arg;
    uint64_t last_tick = mono_ms();
    pthread_mutex_lock(&t->mu);
    while (!t->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += TRACKER_JOURNAL_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&t->cv, &t->mu, &ts);
        if (t->stop)
            break;
        uint64_t m = mono_ms();
        if (m - last_tick >= TRACKER_TICK_MS) {
            last_tick = m;
            tracker_tick(t, t->clock()); /* under mu: tracker_set_inventory waits for it */
        } else {
            tracker_journal_flush(t);
        }
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

/* ---- life ------------------------------------------------------------------------ */

static uint32_t pow2_at_least(uint64_t n)
{
    uint32_t p = 1;
    while (p < n && p < (1u << 30))
        p <<= 1;
    return p;
}

int tracker_create(struct tracker **out, const struct tracker_config *cfg, char *err, size_t errlen)
{
    struct tracker *t = calloc(1, sizeof(*t));
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    t->cfg = *cfg;
    t->clock = cfg->clock_ms ? cfg->clock_ms : tracker_now_ms;
    if (!t->cfg.snapshot_interval_ms)
        t->cfg.snapshot_interval_ms = 2000;
    uint64_t want = cfg->capacity ? cfg->capacity : 8192;
    if (cfg->inventory) {
        struct inventory *inv = inventory_holder_acquire(cfg->inventory);
        if (want < 2 * inventory_count(inv))
            want = 2 * inventory_count(inv);
        inventory_holder_release(cfg->inventory, inv);
    }
    uint32_t cap = pow2_at_least(want < 16 ? 16 : want);
    t->mask = cap - 1;
    t->limit = cap / 4 * 3;
    t->ipmask = cap * 2 - 1;
    uint64_t ev = pow2_at_least(cfg->event_ring ? cfg->event_ring : 16384);
    t->emask = ev - 1;
    t->slots = calloc(cap, sizeof(*t->slots));
    t->used = calloc(cap, sizeof(*t->used));
    t->ips = calloc((size_t)cap * 2, sizeof(*t->ips));
    t->ring = calloc(ev, sizeof(*t->ring));
    pthread_mutex_init(&t->mu, NULL);
    pthread_mutex_init(&t->pmu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (cfg->state_dir) {
        t->jids = calloc(cap, sizeof(*t->jids));
        t->jmark = calloc(cap, 1);
    }
    if (!t->slots || !t->used || !t->ips || !t->ring || (cfg->state_dir && (!t->jids || !t->jmark))) {
        snprintf(err, errlen, "out of memory for %u host slots", cap);
        t->cfg.state_dir = NULL;
        tracker_free(t);
        return -ENOMEM;
    }
    atomic_store(&t->inv_holder, cfg->inventory);
    if (cfg->state_dir) {
        int rc = load_state(t, err, errlen);
        if (rc < 0) {
            t->cfg.state_dir = NULL; /* never overwrite a file we could not read */
            tracker_free(t);
            return rc;
        }
    }
    sync_inventory(t);
    t->last_save_ms = t->clock();
    t->last_bytes_event_ms = t->last_save_ms;
    if (cfg->state_dir) { /* what was loaded into one snapshot, and a fresh journal */
        char serr[512];
        if (tracker_save(t, serr, sizeof(serr)) < 0)
            fprintf(stderr, "bootstorm: host state not saved: %s\n", serr);
    }
    if (!cfg->no_thread) {
        if (pthread_create(&t->thread, NULL, tick_main, t) != 0) {
            snprintf(err, errlen, "cannot start the tracker thread");
            t->cfg.state_dir = NULL;
            tracker_free(t);
            return -EAGAIN;
        }
        t->thread_started = true;
    }
    *out = t;
    return 0;
}

void tracker_set_ip_resolver(struct tracker *t, tracker_ip_resolver_fn fn, void *ctx)
{
    atomic_store_explicit(&t->resolver_ctx, ctx, memory_order_relaxed);
    atomic_store_explicit(&t->resolver, fn, memory_order_release);
}

void tracker_set_inventory(struct tracker *t, struct inventory_holder *h)
{
    pthread_mutex_lock(&t->mu); /* the tick runs under mu */
    if (t->inv_synced) {
        struct inventory_holder *old = atomic_load(&t->inv_holder);
        if (old)
            inventory_holder_release(old, t->inv_synced);
        t->inv_synced = NULL;
    }
    atomic_store_explicit(&t->inv_holder, h, memory_order_release);
    sync_inventory(t);
    pthread_mutex_unlock(&t->mu);
}

void tracker_free(struct tracker *t)
{
    if (!t)
        return;
    if (t->thread_started) {
        pthread_mutex_lock(&t->mu);
        t->stop = true;
        pthread_cond_signal(&t->cv);
        pthread_mutex_unlock(&t->mu);
        pthread_join(t->thread, NULL);
    }
    if (t->cfg.state_dir) {
        char err[512];
        if (tracker_save(t, err, sizeof(err)) < 0)
            fprintf(stderr, "bootstorm: host state not saved: %s\n", err);
    }
    struct inventory_holder *h = atomic_load(&t->inv_holder);
    if (h && t->inv_synced)
        inventory_holder_release(h, t->inv_synced);
    if (t->jf)
        fclose(t->jf);
    pthread_mutex_destroy(&t->mu);
    pthread_mutex_destroy(&t->pmu);
    pthread_cond_destroy(&t->cv);
    free(t->jids);
    free(t->jmark);
    free(t->slots);
    free((void *)t->used);
    free(t->ips);
    free(t->ring);
    free(t);
}
