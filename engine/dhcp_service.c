/* engine/dhcp_service.c — see dhcp_service.h.
 *
 * One request, start to end (all on the worker that received it):
 *   recvmsg completion → dhcp_parse_request → host (inventory, by chaddr) and
 *   lease (table, by chaddr) snapshots → dhcp_policy_decide → claim an address
 *   (addr_pool, atomic) and commit the lease (lease_store: table + journal
 *   record, compare-and-set on the snapshot, retried when another thread
 *   changed the lease meanwhile) → reply built and queued → idle hook: store
 *   sync if an ACK waits, sendmmsg.
 *
 * Durability of ACKs (README, --fsync-interval-ms): no worker ever waits for
 * the disk; the store's syncer thread does every fdatasync.
 *   N > 0: the idle hook write()s the turn's records (kill -9 loses no ACKed
 *          lease), then sends; the syncer fdatasyncs at most every N ms.
 *   0:     the idle hook sends OFFERs, NAKs and the rest at once and holds the
 *          ACKs, tagged with the journal sequence of the turn's commits, asks
 *          the syncer for that sequence, and goes on serving (TFTP, HTTP, more
 *          DHCP).  The syncer wakes the loop after each write + fdatasync; the
 *          idle hook then sends the held ACKs whose records are durable.  Their
 *          log lines are written when they are sent, not before. */
#include "engine/dhcp_service.h"
#include "engine/addr_pool.h"
#include "engine/dhcp_policy.h"
#include "engine/inventory.h"
#include "engine/lease_store.h"
#include "engine/logbuf.h"
#include "engine/options.h"
#include "io/loop.h"
#include "io/sock.h"
#include "proto/dhcp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define REPLY_MAX 1472         /* 1500-byte MTU less IP and UDP headers */
#define QUEUE_MAX 256          /* replies held per worker per turn */
#define DRAIN_MAX 256          /* datagrams read straight from a socket per turn (dhcp_service_flush) */
#define HELD_MAX 1024          /* ACKs waiting for their fdatasync (--fsync-interval-ms 0); when
                                  full, the worker waits for the disk rather than drop them */
#define HELD_WAIT_MAX_MS 5000  /* at shutdown: how long held ACKs may wait for the disk */
#define SEND_BATCH 64          /* datagrams per sendmmsg */
#define ALLOC_TRIES 8          /* pool allocations tried for one OFFER */
#define DECIDE_TRIES 4         /* decisions retried when the lease changed under us */
#define MAX_IFADDRS 16         /* addresses of one interface considered */
#define ONCE_MAX 65536         /* distinct "logged once" keys remembered */
#define MAINT_TICK_MS 250
#define EXPIRE_BUDGET 16384    /* table slots looked at per tick */
#define IFCACHE_STALE_MS 1000  /* a miss reloads the interface list at most this often */
#define IFCACHE_MAX_AGE_MS 30000

/* ---- counters and the log-once set ---------------------------------------------- */

static const char *const stat_names[DHCP_STAT_COUNT] = {
    "received", "malformed", "discover", "request", "decline", "release", "inform", "other_type",
    "offers", "acks", "naks", "inform_acks", "proxy_offers", "proxy_acks", "declined", "released",
    "withdrawn", "unknown_subnet", "stranger", "ignored", "exhausted", "store_errors", "sync_failed",
    "sent", "send_errors", "arp_set", "arp_failed", "expired",
};

const char *dhcp_stat_name(enum dhcp_stat s)
{
    return (unsigned)s < DHCP_STAT_COUNT ? stat_names[s] : "unknown";
}

struct stage_hook {
    dhcp_stage_fn fn;
    void *arg;
    struct stage_hook *retired; /* older hooks, freed at destroy (a reader may still hold one) */
};

struct dhcp_shared {
    const struct options *o;
    struct dhcp_policy_config cfg;
    struct lease_table *table;
    struct addr_pool **pools; /* [subnet], NULL: no pool */
    size_t npools;
    struct lease_store *store; /* NULL in proxy mode */
    struct inventory_holder *inv;
    _Atomic(struct stage_hook *) hook;
    atomic_uint_fast64_t st[DHCP_STAT_COUNT];
    uint64_t loaded;
    uint64_t load_ms;         /* how long the journal replay took */
    /* reservations currently marked static in the pools, sorted */
    pthread_mutex_t statics_mu;
    uint32_t *statics;
    size_t nstatics;
    /* keys already logged once (open addressing, 0 = empty) */
    pthread_mutex_t once_mu;
    uint64_t *once;
    size_t once_n;
    /* ACKs wait for durability (--fsync-interval-ms 0) and the syncer wakes
     * the workers that hold some: the services, registered */
    bool hold_acks;
    pthread_mutex_t svc_mu;
    struct dhcp_service **svcs;
    size_t nsvcs, svcs_cap;
    /* maintenance thread */
    pthread_t maint;
    bool maint_running;
    pthread_mutex_t maint_mu;
    pthread_cond_t maint_cv;
    bool maint_stop;
};

static void st_add(struct dhcp_shared *s, enum dhcp_stat k, uint64_t n)
{
    atomic_fetch_add_explicit(&s->st[k], n, memory_order_relaxed);
}

/* True the first time key is seen (and while the set has room). */
static bool first_time(struct dhcp_shared *s, uint64_t key)
{
    uint64_t h = (key | 1) * 0x9e3779b97f4a7c15ull;
    bool first = false;
    pthread_mutex_lock(&s->once_mu);
    if (s->once) {
        for (size_t i = (size_t)(h >> 40) & (ONCE_MAX - 1);; i = (i + 1) & (ONCE_MAX - 1)) {
            if (s->once[i] == (key | 1ull << 63))
                break;
            if (s->once[i] == 0) {
                if (s->once_n < ONCE_MAX / 2) {
                    s->once[i] = key | 1ull << 63;
                    s->once_n++;
                    first = true;
                }
                break;
            }
        }
    }
    pthread_mutex_unlock(&s->once_mu);
    return first;
}

static uint64_t mac_key(const uint8_t *chaddr, uint8_t hlen)
{
    uint64_t k = 0;
    for (size_t i = 0; i < hlen && i < 7; i++)
        k = k << 8 | chaddr[i];
    return k; /* < 2^56: the high byte tells key kinds apart */
}

static void fmt_ip(uint32_t ip, char out[16])
{
    snprintf(out, 16, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
}

static void fmt_hw(const uint8_t *chaddr, uint8_t hlen, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = 0;
    for (size_t i = 0; i < hlen && i < DHCP_CHADDR_LEN && n + 3 < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, i ? ":%02x" : "%02x", chaddr[i]);
}

/* ---- reservations -------------------------------------------------------------- */

static struct addr_pool *pool_for(struct dhcp_shared *s, uint32_t ip)
{
    for (size_t i = 0; i < s->npools; i++)
        if (addr_pool_contains(s->pools[i], ip))
            return s->pools[i];
    return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Marks the inventory's fixed addresses static in the pools (so no dynamic
 * client gets them) and unmarks those a reload dropped. */
static void apply_statics(struct dhcp_shared *s, const struct inventory *inv)
{
    size_t n = inv ? inventory_count(inv) : 0, k = 0;
    uint32_t *v = n ? malloc(n * sizeof *v) : NULL;
    if (n && !v)
        return; /* keep the old marks; the pools stay consistent */
    for (size_t i = 0; i < n; i++) {
        const struct inv_host *h = inventory_host(inv, i);
        if (h->ip && pool_for(s, h->ip))
            v[k++] = h->ip;
    }
    qsort(v, k, sizeof *v, cmp_u32);
    pthread_mutex_lock(&s->statics_mu);
    if (k != s->nstatics || (k && memcmp(v, s->statics, k * sizeof *v) != 0)) {
        for (size_t i = 0; i < s->nstatics; i++)
            if (!bsearch(&s->statics[i], v, k, sizeof *v, cmp_u32))
                addr_pool_set_static(pool_for(s, s->statics[i]), s->statics[i], false);
        for (size_t i = 0; i < k; i++)
            addr_pool_set_static(pool_for(s, v[i]), v[i], true);
        free(s->statics);
        s->statics = v;
        s->nstatics = k;
        v = NULL;
    }
    pthread_mutex_unlock(&s->statics_mu);
    free(v);
}

/* ---- maintenance thread ---------------------------------------------------------- */

static void durable_notify(void *arg);

static void *maint_main(void *arg)
{
    struct dhcp_shared *s = arg;
    unsigned tick = 0;
    pthread_mutex_lock(&s->maint_mu);
    while (!s->maint_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += MAINT_TICK_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->maint_cv, &s->maint_mu, &ts);
        if (s->maint_stop)
            break;
        pthread_mutex_unlock(&s->maint_mu);
        size_t n = 0;
        int rc = lease_store_expire(s->store, (int64_t)time(NULL), EXPIRE_BUDGET, &n);
        if (n)
            st_add(s, DHCP_STAT_EXPIRED, n);
        if (rc < 0 && first_time(s, 3ull << 56))
            fprintf(stderr, "bootstorm: dhcp: lease expiry: %s (logged once)\n", strerror(-rc));
        if (++tick % 4 == 0 && (rc = lease_store_maintain(s->store)) < 0 && first_time(s, 4ull << 56))
            fprintf(stderr, "bootstorm: dhcp: lease store maintenance: %s (logged once)\n", strerror(-rc));
        /* offers, expiries and the fsync an interval left pending */
        if (lease_store_sync_delay_ms(s->store) == 0 && (rc = lease_store_sync(s->store)) < 0 &&
            first_time(s, 5ull << 56))
            fprintf(stderr, "bootstorm: dhcp: journal sync: %s (logged once)\n", strerror(-rc));
        pthread_mutex_lock(&s->maint_mu);
    }
    pthread_mutex_unlock(&s->maint_mu);
    return NULL;
}

/* ---- shared state ------------------------------------------------------------------ */

int dhcp_shared_create(const struct options *o, struct inventory_holder *inv, struct dhcp_shared **out,
                       char *err, size_t errlen)
{
    *out = NULL;
    struct dhcp_shared *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "dhcp: out of memory");
        return -ENOMEM;
    }
    s->o = o;
    s->inv = inv;
    dhcp_policy_config_from_options(&s->cfg, o);
    pthread_mutex_init(&s->statics_mu, NULL);
    pthread_mutex_init(&s->once_mu, NULL);
    pthread_mutex_init(&s->maint_mu, NULL);
    pthread_cond_init(&s->maint_cv, NULL);
    pthread_mutex_init(&s->svc_mu, NULL);
    s->once = calloc(ONCE_MAX, sizeof *s->once);
    int rc = -ENOMEM;
    size_t expected = 0;
    s->npools = o->subnets.count;
    if (s->npools && !(s->pools = calloc(s->npools, sizeof *s->pools)))
        goto nomem;
    for (size_t i = 0; i < s->npools; i++) {
        const struct options_subnet *sn = &o->subnets.items[i];
        if (!sn->pool_start)
            continue;
        if ((rc = addr_pool_create(sn->pool_start, sn->pool_end, &s->pools[i])) != ADDR_POOL_OK) {
            char a[16], b[16];
            fmt_ip(sn->pool_start, a);
            fmt_ip(sn->pool_end, b);
            snprintf(err, errlen, "dhcp: pool %s-%s: %s (at most %u addresses)", a, b, strerror(-rc),
                     ADDR_POOL_SIZE_MAX);
            goto fail;
        }
        expected += (size_t)(sn->pool_end - sn->pool_start) + 1;
    }
    if ((rc = lease_table_create(o->lease_shards ? o->lease_shards : 64, expected < 65536 ? expected : 65536,
                                 &s->table)) != LEASE_TABLE_OK) {
        snprintf(err, errlen, "dhcp: lease table (%u shards): %s", o->lease_shards, strerror(-rc));
        goto fail;
    }
    if (!o->proxy_dhcp) {
        if (!o->state_dir) {
            snprintf(err, errlen, "dhcp: --state-dir is needed for the lease journal");
            rc = -EINVAL;
            goto fail;
        }
        struct lease_store_journal_config jc = {
            .state_dir = o->state_dir,
            .journal = {.fsync_interval_ms = o->fsync_interval_ms},
            .table = s->table,
            .pools = s->pools,
            .npools = s->npools,
        };
        if ((rc = lease_store_journal_create(&jc, &s->store)) != LEASE_STORE_OK) {
            snprintf(err, errlen, "dhcp: lease store: %s", strerror(-rc));
            goto fail;
        }
        struct lease_store_load_report rep;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        rc = lease_store_load(s->store, &rep);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        s->load_ms = (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
        if (rc != LEASE_STORE_OK) {
            snprintf(err, errlen, "dhcp: %s/%s: %s%s%s", o->state_dir, LEASE_JOURNAL_FILE, strerror(-rc),
                     rep.message[0] ? ": " : "", rep.message);
            goto fail;
        }
        s->loaded = rep.leases;
        if (rep.message[0] || rep.truncated_bytes || rep.conflicts || rep.pool_errors)
            fprintf(stderr, "bootstorm: dhcp: journal: %llu records, %llu leases%s%s (torn tail %llu bytes, "
                    "conflicts %llu, pool errors %llu)\n", (unsigned long long)rep.records,
                    (unsigned long long)rep.leases, rep.message[0] ? ": " : "", rep.message,
                    (unsigned long long)rep.truncated_bytes, (unsigned long long)rep.conflicts,
                    (unsigned long long)rep.pool_errors);
    }
    if (inv) {
        struct inventory *cur = inventory_holder_acquire(inv);
        apply_statics(s, cur);
        inventory_holder_release(inv, cur);
    }
    if (s->store) {
        if ((rc = -pthread_create(&s->maint, NULL, maint_main, s)) != 0) {
            snprintf(err, errlen, "dhcp: maintenance thread: %s", strerror(-rc));
            goto fail;
        }
        s->maint_running = true;
        if ((rc = lease_store_start_syncer(s->store, durable_notify, s)) != LEASE_STORE_OK) {
            snprintf(err, errlen, "dhcp: journal syncer thread: %s", strerror(-rc));
            goto fail;
        }
        s->hold_acks = o->fsync_interval_ms == 0;
    }
    *out = s;
    return 0;
nomem:
    snprintf(err, errlen, "dhcp: out of memory");
fail:
    dhcp_shared_destroy(s);
    return rc < 0 ? rc : -EINVAL;
}

void dhcp_shared_destroy(struct dhcp_shared *s)
{
    if (!s)
        return;
    if (s->maint_running) {
        pthread_mutex_lock(&s->maint_mu);
        s->maint_stop = true;
        pthread_cond_signal(&s->maint_cv);
        pthread_mutex_unlock(&s->maint_mu);
        pthread_join(s->maint, NULL);
    }
    if (s->store) {
        int rc = lease_store_destroy(s->store);
        if (rc < 0)
            fprintf(stderr, "bootstorm: dhcp: closing the lease journal: %s\n", strerror(-rc));
    }
    lease_table_destroy(s->table);
    for (size_t i = 0; i < s->npools; i++)
        addr_pool_destroy(s->pools[i]);
    free(s->pools);
    for (struct stage_hook *h = atomic_load(&s->hook), *next; h; h = next) {
        next = h->retired;
        free(h);
    }
    free(s->statics);
    free(s->once);
    pthread_mutex_destroy(&s->statics_mu);
    pthread_mutex_destroy(&s->once_mu);
    pthread_mutex_destroy(&s->maint_mu);
    pthread_cond_destroy(&s->maint_cv);
    pthread_mutex_destroy(&s->svc_mu);
    free(s->svcs);
    free(s);
}

void dhcp_shared_set_loader_hook(struct dhcp_shared *s,
                                 bool (*fn)(void *ctx, const uint8_t mac[6], bool efi64, char *out, size_t outlen),
                                 void *ctx)
{
    s->cfg.loader_fn = fn;
    s->cfg.loader_ctx = ctx;
}

void dhcp_shared_set_stage_hook(struct dhcp_shared *s, dhcp_stage_fn fn, void *arg)
{
    struct stage_hook *h = malloc(sizeof *h);
    if (!h)
        return;
    h->fn = fn;
    h->arg = arg;
    h->retired = atomic_load(&s->hook);
    while (!atomic_compare_exchange_weak(&s->hook, &h->retired, h))
        ;
}

static void stage(struct dhcp_shared *s, enum dhcp_stage st, const uint8_t *chaddr, uint8_t hlen, uint32_t ip)
{
    struct stage_hook *h = atomic_load_explicit(&s->hook, memory_order_acquire);
    if (h && h->fn)
        h->fn(h->arg, st, chaddr, hlen, ip);
}

bool dhcp_leases_lookup_ip(const struct dhcp_shared *s, uint32_t ip, struct lease *out)
{
    return lease_table_lookup_ip(s->table, ip, out) == LEASE_TABLE_OK;
}

bool dhcp_leases_mac_for_ip(const struct dhcp_shared *s, uint32_t ip, uint8_t mac[6])
{
    struct lease l;
    if (!dhcp_leases_lookup_ip(s, ip, &l) || l.hw.htype != DHCP_HTYPE_ETHER || l.hw.hlen != 6 ||
        (l.state != LEASE_OFFERED && l.state != LEASE_BOUND))
        return false;
    memcpy(mac, l.hw.chaddr, 6);
    return true;
}

struct lease_table *dhcp_shared_table(const struct dhcp_shared *s) { return s->table; }
struct lease_store *dhcp_shared_store(const struct dhcp_shared *s) { return s->store; }

void dhcp_shared_get_stats(const struct dhcp_shared *s, struct dhcp_stats *out)
{
    for (int i = 0; i < DHCP_STAT_COUNT; i++)
        out->v[i] = atomic_load_explicit(&s->st[i], memory_order_relaxed);
}

void dhcp_shared_describe(const struct dhcp_shared *s, char *out, size_t len)
{
    const struct options *o = s->o;
    if (o->proxy_dhcp)
        snprintf(out, len, "proxy dhcp on :%u and :%u%s%s", o->dhcp_port, DHCP_PXE_PORT,
                 o->interface ? " dev " : "", o->interface ? o->interface : "");
    else
        snprintf(out, len, "dhcp on :%u%s%s (%zu subnet%s, %llu leases loaded in %.3f s)", o->dhcp_port,
                 o->interface ? " dev " : "", o->interface ? o->interface : "", o->subnets.count,
                 o->subnets.count == 1 ? "" : "s", (unsigned long long)s->loaded, (double)s->load_ms / 1000);
}

/* ---- the worker's service ------------------------------------------------------------ */

struct ifent {
    int ifindex;
    struct dhcp_policy_ifaddr a;
    char name[IF_NAMESIZE];
};

struct out {
    struct sockaddr_in to;
    int fd;
    int ifindex;           /* IP_PKTINFO: send on this interface (0: by route) */
    uint32_t src_be;       /* IP_PKTINFO: source address (0: by route) */
    bool needs_sync;       /* an ACK: only after the store sync */
    uint64_t seq;          /* held ACK: the journal sequence that must be durable first */
    int8_t stage;          /* enum dhcp_stage, -1 none */
    enum dhcp_stat counter;
    uint8_t hlen;
    uint8_t chaddr[DHCP_CHADDR_LEN];
    uint32_t ip;
    size_t len;
    uint8_t buf[REPLY_MAX];
    char line[512];        /* held ACK: its log line, written once it is sent ("" none) */
};

struct dsock {
    struct dhcp_service *svc;
    int fd;
    bool pxe;               /* the 4011 socket */
    struct io_op op;
    struct io_timer retry;
};

struct dhcp_service {
    struct io_loop *loop;
    struct dhcp_shared *sh;
    struct dhcp_service_config cfg;
    struct dsock socks[2];
    int nsocks;
    struct inventory *inv;
    struct ifent *ifs;
    size_t nifs;
    uint32_t *own;
    uint64_t ifs_loaded_ms;
    struct out *q;
    size_t nq;
    bool acks_waiting;
    bool journal_dirty;     /* committed something this turn */
    uint64_t turn_seq;      /* newest journal sequence this worker committed */
    struct out *held;       /* ACKs waiting for durable_seq >= their seq (hold_acks), in seq order */
    size_t nheld;
    atomic_bool waiting;    /* held ACKs: the syncer's notify wakes this loop */
    struct io_timer sync_timer;
    struct dhcp_msg msg;
    struct logbuf log;
};

static void flush_log(struct dhcp_service *s)
{
    logbuf_flush(&s->log);
}

/* One line of the per-request log (stdout), buffered per worker and written
 * by the idle hook, as the HTTP access log is. */
static void logf_line(struct dhcp_service *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_line(struct dhcp_service *s, const char *fmt, ...)
{
    if (s->cfg.quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    logbuf_vprintf(&s->log, fmt, ap);
    va_end(ap);
}

/* -- interface addresses (IP_PKTINFO gives the index; the subnet needs all of
 *    the interface's addresses, and the server-id check all of ours) -- */

static int prefix_of(const struct sockaddr *mask)
{
    if (!mask || mask->sa_family != AF_INET)
        return 32;
    return __builtin_popcount(((const struct sockaddr_in *)mask)->sin_addr.s_addr);
}

static void ifcache_load(struct dhcp_service *s)
{
    struct ifaddrs *all;
    s->ifs_loaded_ms = io_loop_now_ms(s->loop);
    if (getifaddrs(&all) != 0)
        return;
    size_t n = 0;
    for (struct ifaddrs *i = all; i; i = i->ifa_next)
        n += i->ifa_addr && i->ifa_addr->sa_family == AF_INET;
    struct ifent *ifs = n ? calloc(n, sizeof *ifs) : NULL;
    uint32_t *own = n ? calloc(n, sizeof *own) : NULL;
    if (n && (!ifs || !own)) {
        free(ifs);
        free(own);
        freeifaddrs(all);
        return;
    }
    size_t k = 0;
    for (struct ifaddrs *i = all; i && k < n; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
            continue;
        ifs[k].ifindex = (int)if_nametoindex(i->ifa_name);
        ifs[k].a.addr = ntohl(((const struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr);
        ifs[k].a.prefix = (uint8_t)prefix_of(i->ifa_netmask);
        snprintf(ifs[k].name, sizeof ifs[k].name, "%s", i->ifa_name);
        own[k] = ifs[k].a.addr;
        k++;
    }
    freeifaddrs(all);
    free(s->ifs);
    free(s->own);
    s->ifs = ifs;
    s->own = own;
    s->nifs = k;
}

static size_t if_addrs(struct dhcp_service *s, int ifindex, struct dhcp_policy_ifaddr *out, const char **name)
{
    uint64_t now = io_loop_now_ms(s->loop);
    if (now - s->ifs_loaded_ms > IFCACHE_MAX_AGE_MS)
        ifcache_load(s);
    for (int pass = 0; pass < 2; pass++) {
        size_t n = 0;
        for (size_t i = 0; i < s->nifs && n < MAX_IFADDRS; i++) {
            if (s->ifs[i].ifindex == ifindex) {
                out[n++] = s->ifs[i].a;
                *name = s->ifs[i].name;
            }
        }
        if (n || ifindex <= 0 || pass || now - s->ifs_loaded_ms < IFCACHE_STALE_MS)
            return n;
        ifcache_load(s); /* an interface that came up after the last look */
    }
    return 0;
}

/* -- sockets -- */

static void on_recv(struct io_op *op, const struct io_completion *c);

static void rearm(struct io_timer *t)
{
    struct dsock *k = t->owner;
    if (!io_op_busy(&k->op) && io_recvmsg(k->svc->loop, &k->op, k->fd) < 0)
        io_timer_arm(k->svc->loop, &k->retry, 100);
}

/* Each worker socket keeps a broadcast only if chaddr[5] mod n is its number
 * (every socket of a SO_REUSEPORT group gets every broadcast); unicast passes.
 * A socket filter sees the skb from the UDP header: chaddr[5] is at 8 + 28 + 5. */
static int attach_filters(int fd, unsigned worker, unsigned n, bool first)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)(SKF_AD_OFF + SKF_AD_PKTTYPE)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PACKET_HOST, 3, 0),
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 8 + 28 + 5),
        BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, n),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, worker, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, 0xffffffffu),
        BPF_STMT(BPF_RET | BPF_K, 0),
    };
    struct sock_fprog p = {.len = sizeof f / sizeof f[0], .filter = f};
    if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &p, sizeof p) < 0)
        return -errno;
    if (first) {
        /* the group's program sees the UDP payload: spread unicast by chaddr[5];
         * an index past the group falls back to the kernel's hash */
        struct sock_filter r[] = {
            BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 28 + 5),
            BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, n),
            BPF_STMT(BPF_RET | BPF_A, 0),
        };
        struct sock_fprog rp = {.len = sizeof r / sizeof r[0], .filter = r};
        (void)setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &rp, sizeof rp); /* only an optimisation */
    }
    return 0;
}

static int open_sock(struct dhcp_service *s, struct dsock *k, uint16_t port, bool pxe, char *err, size_t errlen)
{
    const struct options *o = s->sh->o;
    struct sock_udp_opts so = {
        .reuseport = true, .broadcast = true, .pktinfo = true, .ifname = o->interface, .rcvbuf = 4 << 20,
        .sndbuf = 4 << 20, /* held ACKs leave in bursts once their fdatasync is done */
    };
    /* always the wildcard address: broadcasts reach no socket bound to a unicast one */
    int fd = sock_udp_bind(0, port, &so, err, errlen);
    if (fd < 0)
        return fd;
    k->svc = s;
    k->fd = fd;
    k->pxe = pxe;
    k->op.fn = on_recv;
    k->op.owner = k;
    k->retry.fn = rearm;
    k->retry.owner = k;
    int rc;
    if (s->cfg.nworkers > 1 && (rc = attach_filters(fd, s->cfg.worker, s->cfg.nworkers, s->cfg.worker == 0)) < 0) {
        snprintf(err, errlen, "dhcp: udp port %u: socket filter: %s", port, strerror(-rc));
        close(fd);
        return rc;
    }
    if ((rc = io_recvmsg(s->loop, &k->op, fd)) < 0) {
        snprintf(err, errlen, "dhcp: udp port %u: recvmsg: %s", port, strerror(-rc));
        close(fd);
        return rc;
    }
    s->nsocks++;
    return 0;
}

/* -- replies -- */

static void send_queue(struct dhcp_service *s);

/* --dhcp-arp: an ARP entry for yiaddr at chaddr on the receiving interface, so
 * the reply can be unicast to a client that has no address yet (RFC 2131 §4.1). */
static bool set_arp(struct dhcp_service *s, int fd, const char *ifname, uint32_t ip, const struct dhcp_msg *req)
{
    if (!ifname || req->htype != DHCP_HTYPE_ETHER || req->hlen != 6)
        return false;
    struct arpreq ar;
    memset(&ar, 0, sizeof ar);
    struct sockaddr_in *pa = (struct sockaddr_in *)&ar.arp_pa;
    pa->sin_family = AF_INET;
    pa->sin_addr.s_addr = htonl(ip);
    ar.arp_ha.sa_family = ARPHRD_ETHER;
    memcpy(ar.arp_ha.sa_data, req->chaddr, 6);
    ar.arp_flags = ATF_COM;
    snprintf(ar.arp_dev, sizeof ar.arp_dev, "%s", ifname);
    if (ioctl(fd, SIOCSARP, &ar) == 0) {
        st_add(s->sh, DHCP_STAT_ARP_SET, 1);
        return true;
    }
    st_add(s->sh, DHCP_STAT_ARP_FAILED, 1);
    if (first_time(s->sh, 6ull << 56))
        fprintf(stderr, "bootstorm: dhcp: --dhcp-arp: SIOCSARP on %s: %s; broadcasting instead (logged once)\n",
                ifname, strerror(errno));
    return false;
}

struct req_ctx {
    struct dsock *k;
    const struct io_completion *c;
    const char *ifname;
    struct lease_key key;
    char hw[3 * DHCP_CHADDR_LEN];
};

static enum dhcp_stat reply_counter(enum dhcp_policy_action a)
{
    switch (a) {
    case DHCP_POLICY_OFFER: return DHCP_STAT_OFFERS;
    case DHCP_POLICY_ACK: return DHCP_STAT_ACKS;
    case DHCP_POLICY_NAK: return DHCP_STAT_NAKS;
    case DHCP_POLICY_INFORM: return DHCP_STAT_INFORM_ACKS;
    case DHCP_POLICY_PROXY_OFFER: return DHCP_STAT_PROXY_OFFERS;
    default: return DHCP_STAT_PROXY_ACKS;
    }
}

static void queue_reply(struct dhcp_service *s, struct req_ctx *x, const struct dhcp_policy_in *in,
                        const struct dhcp_policy_decision *d, uint32_t ip)
{
    if (s->nq == QUEUE_MAX)
        send_queue(s); /* a full queue goes out mid-turn, sync first as usual */
    struct out *o = &s->q[s->nq];
    const struct dhcp_msg *req = in->req;
    size_t len;
    int rc = dhcp_policy_build_reply(&s->sh->cfg, in, d, ip, o->buf, sizeof o->buf, &len);
    if (rc != DHCP_OK) {
        st_add(s->sh, DHCP_STAT_SEND_ERRORS, 1);
        logf_line(s, "dhcp %s %s: cannot encode the %s: %s\n", dhcp_msg_type_name(req->msg_type), x->hw,
                  dhcp_policy_action_name(d->action), dhcp_strerror(rc));
        return;
    }
    const struct sockaddr_in *peer = x->c->peer && x->c->peer->ss_family == AF_INET
                                         ? (const struct sockaddr_in *)x->c->peer : NULL;
    struct dhcp_dest dst = dhcp_policy_destination(in, d, ip, peer ? ntohl(peer->sin_addr.s_addr) : 0,
                                                   peer ? ntohs(peer->sin_port) : DHCP_CLIENT_PORT);
    o->len = len;
    o->fd = x->k->fd;
    o->ifindex = 0;
    o->src_be = htonl(d->server_id);
    if (dst.kind == DHCP_DEST_UNICAST_YIADDR &&
        !(s->sh->o->dhcp_arp && set_arp(s, x->k->fd, x->ifname, ip, req))) {
        dst.kind = DHCP_DEST_BROADCAST; /* no ARP entry: the client hears a broadcast */
        dst.addr = 0xffffffffu;
    }
    if (dst.kind == DHCP_DEST_BROADCAST || dst.kind == DHCP_DEST_UNICAST_YIADDR)
        o->ifindex = x->c->ifindex; /* out of the interface it came in on, not by route */
    memset(&o->to, 0, sizeof o->to);
    o->to.sin_family = AF_INET;
    o->to.sin_addr.s_addr = dst.addr;
    o->to.sin_port = htons(dst.port);
    o->needs_sync = d->action == DHCP_POLICY_ACK;
    o->counter = reply_counter(d->action);
    o->stage = d->action == DHCP_POLICY_OFFER ? DHCP_STAGE_OFFER
             : d->action == DHCP_POLICY_ACK ? DHCP_STAGE_ACK
             : d->action == DHCP_POLICY_NAK ? DHCP_STAGE_NAK : -1;
    o->hlen = req->hlen;
    memcpy(o->chaddr, req->chaddr, DHCP_CHADDR_LEN);
    o->ip = d->action == DHCP_POLICY_NAK ? 0 : ip;
    o->seq = 0;
    o->line[0] = 0;
    s->acks_waiting |= o->needs_sync;
    s->nq++;
    if (!s->cfg.quiet) {
        char a[16], to[48], sid[16];
        fmt_ip(ip, a);
        fmt_ip(d->server_id, sid);
        sock_addr_str(&o->to, to, sizeof to);
        struct dhcp_policy_boot boot;
        boot.file[0] = 0;
        if (d->action != DHCP_POLICY_NAK)
            dhcp_policy_boot(&s->sh->cfg, req, in->host, d->server_id, ip, &boot);
        char *line = o->line; /* an ACK that may be held: logged when it leaves */
        int n = snprintf(line, sizeof o->line, "dhcp %s %s via %s %s -> %s %s to %s%s%s%s\n",
                         dhcp_msg_type_name(req->msg_type), x->hw, x->ifname ? x->ifname : "?", sid,
                         dhcp_policy_action_name(d->action),
                         ip && (d->action == DHCP_POLICY_OFFER || d->action == DHCP_POLICY_ACK) ? a : "-", to,
                         boot.file[0] ? " file " : "", boot.file,
                         d->action == DHCP_POLICY_NAK ? dhcp_policy_why_name(d->why) : "");
        if (n >= (int)sizeof o->line) /* cut: still one line */
            line[sizeof o->line - 2] = '\n';
        if (!(o->needs_sync && s->sh->hold_acks)) {
            logf_line(s, "%s", line);
            line[0] = 0;
        }
    }
}

static void on_sync_timer(struct io_timer *t)
{
    struct dhcp_service *s = t->owner;
    struct lease_store *st = s->sh->store;
    if (!st)
        return;
    lease_store_sync(st);
    int d = lease_store_sync_delay_ms(st);
    if (d > 0)
        io_timer_arm(s->loop, &s->sync_timer, (uint64_t)d);
}

/* Sends outs[0..n_out) (ACKs only if acks_ok) with sendmmsg, per socket. */
static void send_outs(struct dhcp_service *s, struct out *outs, size_t n_out, bool acks_ok)
{
    struct mmsghdr mm[SEND_BATCH];
    struct iovec iov[SEND_BATCH];
    union {
        char buf[CMSG_SPACE(sizeof(struct in_pktinfo))];
        struct cmsghdr align;
    } ctl[SEND_BATCH];
    struct out *idx[SEND_BATCH];
    for (int sk = 0; sk < s->nsocks; sk++) {
        int fd = s->socks[sk].fd;
        size_t i = 0;
        while (i < n_out) {
            int n = 0;
            for (; i < n_out && n < SEND_BATCH; i++) {
                struct out *o = &outs[i];
                if (o->fd != fd)
                    continue;
                if (o->needs_sync && !acks_ok) {
                    st_add(s->sh, DHCP_STAT_SYNC_FAILED, 1);
                    continue;
                }
                iov[n] = (struct iovec){o->buf, o->len};
                memset(&mm[n], 0, sizeof mm[n]);
                mm[n].msg_hdr.msg_name = &o->to;
                mm[n].msg_hdr.msg_namelen = sizeof o->to;
                mm[n].msg_hdr.msg_iov = &iov[n];
                mm[n].msg_hdr.msg_iovlen = 1;
                if (o->ifindex || o->src_be) {
                    /* source address and, for broadcasts, the interface */
                    memset(&ctl[n], 0, sizeof ctl[n]);
                    mm[n].msg_hdr.msg_control = ctl[n].buf;
                    mm[n].msg_hdr.msg_controllen = sizeof ctl[n].buf;
                    struct cmsghdr *cm = CMSG_FIRSTHDR(&mm[n].msg_hdr);
                    cm->cmsg_level = IPPROTO_IP;
                    cm->cmsg_type = IP_PKTINFO;
                    cm->cmsg_len = CMSG_LEN(sizeof(struct in_pktinfo));
                    struct in_pktinfo pi = {.ipi_ifindex = o->ifindex};
                    pi.ipi_spec_dst.s_addr = o->src_be;
                    memcpy(CMSG_DATA(cm), &pi, sizeof pi);
                }
                idx[n++] = o;
            }
            for (int done = 0; done < n;) {
                int r = sendmmsg(fd, mm + done, (unsigned)(n - done), MSG_DONTWAIT | MSG_NOSIGNAL);
                if (r <= 0) {
                    /* this one failed (a full socket buffer, no route): skip it */
                    st_add(s->sh, DHCP_STAT_SEND_ERRORS, 1);
                    if (first_time(s->sh, 8ull << 56 | (uint64_t)(r < 0 ? errno : 0)))
                        fprintf(stderr, "bootstorm: dhcp: send to %s: %s (logged once per error)\n",
                                inet_ntoa(idx[done]->to.sin_addr), r < 0 ? strerror(errno) : "nothing sent");
                    done++;
                    continue;
                }
                for (int j = done; j < done + r; j++) {
                    struct out *o = idx[j];
                    st_add(s->sh, DHCP_STAT_SENT, 1);
                    st_add(s->sh, o->counter, 1);
                    if (o->line[0])
                        logf_line(s, "%s", o->line);
                    if (o->stage >= 0)
                        stage(s->sh, (enum dhcp_stage)o->stage, o->chaddr, o->hlen, o->ip);
                }
                done += r;
            }
        }
    }
}

static void drop_acks(struct dhcp_service *s, struct out *outs, size_t n, int rc)
{
    size_t dropped = 0;
    for (size_t i = 0; i < n; i++)
        dropped += outs[i].needs_sync;
    st_add(s->sh, DHCP_STAT_SYNC_FAILED, dropped);
    if (dropped && first_time(s->sh, 7ull << 56))
        fprintf(stderr, "bootstorm: dhcp: journal sync failed: %s; ACKs are not sent (logged once)\n",
                strerror(-rc));
}

/* Sends the held ACKs whose records are durable.  wait_ms > 0: first waits up
 * to that long for all of them (a full hold queue, or shutdown). */
static void release_held(struct dhcp_service *s, uint64_t wait_ms)
{
    if (!s->nheld)
        return;
    struct lease_store *st = s->sh->store;
    uint64_t last = s->held[s->nheld - 1].seq;
    int rc = 0;
    for (uint64_t waited = 0; wait_ms && lease_store_durable_seq(st) < last && waited < wait_ms * 10; waited++) {
        if ((rc = lease_store_sync_to(st, last)) < 0)
            break;
        usleep(100); /* the syncer's fdatasync; nothing else of this worker can run meanwhile */
    }
    uint64_t d = lease_store_durable_seq(st);
    size_t k = 0;
    while (k < s->nheld && s->held[k].seq <= d)
        k++;
    if (k) {
        send_outs(s, s->held, k, true);
        memmove(s->held, s->held + k, (s->nheld - k) * sizeof *s->held);
        s->nheld -= k;
    }
    if (s->nheld && (rc < 0 || (rc = lease_store_sync_to(st, s->held[s->nheld - 1].seq)) < 0)) {
        drop_acks(s, s->held, s->nheld, rc); /* the journal is broken: they never will be durable */
        s->nheld = 0;
    }
    if (s->nheld && wait_ms) { /* the disk did not answer in time (shutdown) */
        drop_acks(s, s->held, s->nheld, -ETIMEDOUT);
        s->nheld = 0;
    }
    atomic_store(&s->waiting, s->nheld > 0);
}

/* --fsync-interval-ms 0: the queue's ACKs move to the held list, tagged with
 * the newest sequence this worker committed (every ACK commits its lease, so
 * its record is at or before it), and the syncer is asked for it. */
static void hold_acks(struct dhcp_service *s)
{
    uint64_t tag = s->turn_seq;
    int rc = lease_store_sync_to(s->sh->store, tag);
    if (rc < 0) {
        drop_acks(s, s->q, s->nq, rc);
        size_t k = 0;
        for (size_t i = 0; i < s->nq; i++)
            if (!s->q[i].needs_sync && k++ != i)
                s->q[k - 1] = s->q[i];
        s->nq = k;
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < s->nq; i++) {
        if (!s->q[i].needs_sync) {
            if (k != i)
                s->q[k] = s->q[i];
            k++;
            continue;
        }
        if (s->nheld == HELD_MAX)
            release_held(s, HELD_WAIT_MAX_MS);
        if (s->nheld == HELD_MAX) { /* still full: the disk hangs; the client will ask again */
            drop_acks(s, &s->q[i], 1, -ETIMEDOUT);
            continue;
        }
        s->held[s->nheld] = s->q[i];
        s->held[s->nheld++].seq = tag;
    }
    s->nq = k;
    /* under svc_mu: either durable_notify sees waiting, or its durable_seq
     * (stored before it took svc_mu) is seen by the check below */
    pthread_mutex_lock(&s->sh->svc_mu);
    atomic_store(&s->waiting, true);
    pthread_mutex_unlock(&s->sh->svc_mu);
    release_held(s, 0); /* durable already (another worker's fdatasync covered it)? */
}

static void send_queue(struct dhcp_service *s)
{
    if (!s->nq)
        return;
    bool acks_ok = true;
    if (s->acks_waiting && s->sh->store && s->sh->hold_acks) {
        hold_acks(s);
    } else if (s->acks_waiting && s->sh->store) {
        /* the write barrier: every ACK below is for a lease committed before
         * this call, so after it the lease is in the journal file (kill -9
         * safe); the syncer thread does the fdatasync within the interval */
        int rc = lease_store_sync(s->sh->store);
        if (rc < 0) {
            acks_ok = false; /* send_outs counts them */
            if (first_time(s->sh, 7ull << 56))
                fprintf(stderr, "bootstorm: dhcp: journal sync failed: %s; ACKs are not sent (logged once)\n",
                        strerror(-rc));
        }
        int d = lease_store_sync_delay_ms(s->sh->store);
        if (d > 0) { /* no syncer: the fsync the interval postponed happens within d ms even if we fall quiet */
            io_timer_cancel(s->loop, &s->sync_timer);
            io_timer_arm(s->loop, &s->sync_timer, (uint64_t)d);
        }
    }
    send_outs(s, s->q, s->nq, acks_ok);
    s->nq = 0;
    s->acks_waiting = false;
}

/* The syncer's notify (its thread): wake the loops that hold ACKs. */
static void durable_notify(void *arg)
{
    struct dhcp_shared *sh = arg;
    pthread_mutex_lock(&sh->svc_mu); /* durable_seq was stored before: see hold_acks */
    for (size_t i = 0; i < sh->nsvcs; i++)
        if (atomic_load(&sh->svcs[i]->waiting))
            io_loop_wake(sh->svcs[i]->loop);
    pthread_mutex_unlock(&sh->svc_mu);
}

/* -- addresses and leases -- */

enum obtain_result { OBTAIN_OK, OBTAIN_RETRY, OBTAIN_NOADDR, OBTAIN_STORE };

/* Takes an address for the decision and commits the lease in state: the
 * candidates in order, then (OFFER) the pool.  The lease snapshot in `in` is
 * the commit's expectation, so a concurrent change makes the caller decide
 * again (OBTAIN_RETRY). */
static enum obtain_result obtain(struct dhcp_service *s, const struct dhcp_policy_in *in,
                                 const struct lease_key *key, const struct dhcp_policy_decision *d, uint8_t state,
                                 uint32_t *ip)
{
    struct dhcp_shared *sh = s->sh;
    const struct lease *cur = in->lease;
    struct addr_pool *pool = d->subnet >= 0 && (size_t)d->subnet < sh->npools ? sh->pools[d->subnet] : NULL;
    size_t tries = d->ncand + (d->alloc && pool ? ALLOC_TRIES : 0);
    bool store_err = false;
    for (size_t i = 0; i < tries; i++) {
        uint32_t c = 0;
        bool took = false, from_alloc = i >= d->ncand;
        if (!from_alloc) {
            c = d->cand[i];
            bool held = cur && cur->ip == c && (cur->state == LEASE_OFFERED || cur->state == LEASE_BOUND);
            if (!held) {
                if (addr_pool_contains(pool, c)) {
                    if (addr_pool_reserve(pool, c, d->cand_static[i] ? ADDR_POOL_RESERVE_STATIC : 0) != ADDR_POOL_OK)
                        continue; /* taken, or static for someone else */
                    took = true;
                } else {
                    struct lease h; /* a reservation outside the pool: the table arbitrates */
                    if (lease_table_lookup_ip(sh->table, c, &h) == LEASE_TABLE_OK &&
                        !lease_key_equal(&h.hw, key))
                        continue;
                }
            }
        } else {
            if (addr_pool_alloc(pool, &c) != ADDR_POOL_OK)
                break;
            took = true;
        }
        if (state == LEASE_OFFERED && cur && cur->state == LEASE_BOUND && cur->ip == c && cur->expires > in->now) {
            *ip = c; /* a bound client asking again: offer its address, keep the binding */
            return OBTAIN_OK;
        }
        struct lease l;
        dhcp_policy_make_lease(&sh->cfg, in, d, c, state, &l);
        uint64_t seq = 0;
        int rc = lease_store_commit(sh->store, &l, cur, &seq);
        if (rc == LEASE_STORE_OK) {
            s->journal_dirty = true;
            if (seq > s->turn_seq)
                s->turn_seq = seq;
            *ip = c;
            return OBTAIN_OK;
        }
        /* the ownership rule: give back what this attempt took, unless the
         * table says someone holds it (then the pool was behind; keep it taken) */
        if (took && !(rc == LEASE_TABLE_EADDRINUSE && from_alloc))
            addr_pool_release(pool, c);
        if (rc == LEASE_TABLE_ECHANGED || rc == LEASE_TABLE_ENOENT)
            return OBTAIN_RETRY;
        if (rc != LEASE_TABLE_EADDRINUSE) {
            store_err = true;
            st_add(sh, DHCP_STAT_STORE_ERRORS, 1);
            if (first_time(sh, 9ull << 56 | (uint64_t)-rc))
                fprintf(stderr, "bootstorm: dhcp: lease commit: %s (logged once per error)\n", strerror(-rc));
            break;
        }
    }
    return store_err ? OBTAIN_STORE : OBTAIN_NOADDR;
}

/* -- one request -- */

/* Commits a lease that changes state without an address claim (RELEASE,
 * withdrawn offer); the store returns the address to the pool. */
static enum obtain_result change_state(struct dhcp_service *s, const struct dhcp_policy_in *in,
                                       const struct dhcp_policy_decision *d, uint8_t state)
{
    struct lease l;
    dhcp_policy_make_lease(&s->sh->cfg, in, d, in->lease->ip, state, &l);
    l.subnet = in->lease->subnet;
    l.flags = in->lease->flags;
    uint64_t seq = 0;
    int rc = lease_store_commit(s->sh->store, &l, in->lease, &seq);
    if (rc == LEASE_TABLE_ECHANGED || rc == LEASE_TABLE_ENOENT)
        return OBTAIN_RETRY;
    if (rc != LEASE_STORE_OK) {
        st_add(s->sh, DHCP_STAT_STORE_ERRORS, 1);
        return OBTAIN_STORE;
    }
    s->journal_dirty = true;
    if (seq > s->turn_seq)
        s->turn_seq = seq;
    return OBTAIN_OK;
}

static void log_ignored(struct dhcp_service *s, struct req_ctx *x, const struct dhcp_msg *req,
                        const struct dhcp_policy_decision *d)
{
    struct dhcp_shared *sh = s->sh;
    switch (d->why) {
    case DHCP_WHY_UNKNOWN_SUBNET: {
        st_add(sh, DHCP_STAT_UNKNOWN_SUBNET, 1);
        char a[16];
        uint32_t gi = ntohl(req->giaddr);
        fmt_ip(gi, a);
        if (first_time(sh, gi ? 1ull << 56 | gi : 2ull << 56 | (uint32_t)x->c->ifindex))
            fprintf(stderr, "bootstorm: dhcp: requests %s %s match no --subnet: dropped (logged once)\n",
                    gi ? "relayed by" : "on interface", gi ? a : x->ifname ? x->ifname : "?");
        break;
    }
    case DHCP_WHY_STRANGER:
        st_add(sh, DHCP_STAT_STRANGER, 1);
        if (first_time(sh, mac_key(req->chaddr, req->hlen)))
            fprintf(stderr, "bootstorm: dhcp: %s is not in the inventory: not answered (--known-only; "
                    "logged once per machine)\n", x->hw);
        return; /* logged once, not per packet */
    default: st_add(sh, DHCP_STAT_IGNORED, 1); break;
    }
    logf_line(s, "dhcp %s %s via %s -> ignored: %s\n", dhcp_msg_type_name(req->msg_type), x->hw,
              x->ifname ? x->ifname : "?", dhcp_policy_why_name(d->why));
}

static void handle(struct dhcp_service *s, struct dsock *k, const struct io_completion *c)
{
    struct dhcp_shared *sh = s->sh;
    st_add(sh, DHCP_STAT_RECEIVED, 1);
    struct dhcp_msg *req = &s->msg;
    int rc = c->truncated ? DHCP_ETOOBIG : dhcp_parse_request(c->buf, c->len, req);
    if (rc != DHCP_OK) {
        st_add(sh, DHCP_STAT_MALFORMED, 1);
        if (!s->cfg.quiet && c->peer && c->peer->ss_family == AF_INET) {
            char a[48];
            logf_line(s, "dhcp from %s: dropped: %s\n", sock_addr_str(c->peer, a, sizeof a), dhcp_strerror(rc));
        }
        return;
    }
    static const enum dhcp_stat by_type[] = {
        [DHCP_DISCOVER] = DHCP_STAT_DISCOVER, [DHCP_REQUEST] = DHCP_STAT_REQUEST,
        [DHCP_DECLINE] = DHCP_STAT_DECLINE, [DHCP_RELEASE] = DHCP_STAT_RELEASE, [DHCP_INFORM] = DHCP_STAT_INFORM,
    };
    uint8_t t = req->msg_type;
    st_add(sh, t < sizeof by_type / sizeof by_type[0] && by_type[t] ? by_type[t] : DHCP_STAT_OTHER_TYPE, 1);

    struct req_ctx x = {.k = k, .c = c};
    fmt_hw(req->chaddr, req->hlen, x.hw, sizeof x.hw);
    if (lease_key_init(&x.key, req->htype, req->chaddr, req->hlen) != LEASE_TABLE_OK) {
        st_add(sh, DHCP_STAT_MALFORMED, 1);
        return;
    }
    struct dhcp_policy_ifaddr ifa[MAX_IFADDRS];
    struct dhcp_policy_in in = {
        .req = req,
        .link = {
            .local = ntohl(c->local.s_addr),
            .ifaddrs = ifa,
            .n_ifaddrs = if_addrs(s, c->ifindex, ifa, &x.ifname),
            .own = s->own,
            .n_own = s->nifs,
            .pxe_port = k->pxe,
        },
        .host = s->inv && req->htype == DHCP_HTYPE_ETHER && req->hlen == 6 ? inventory_find_mac(s->inv, req->chaddr)
                                                                             : NULL,
        .now = (int64_t)time(NULL),
    };
    in.link.own = s->own; /* if_addrs may have reloaded the cache */
    in.link.n_own = s->nifs;
    struct lease cur;
    struct dhcp_policy_decision d;
    for (int attempt = 0; attempt < DECIDE_TRIES; attempt++) {
        in.lease = lease_table_lookup_mac(sh->table, &x.key, &cur) == LEASE_TABLE_OK ? &cur : NULL;
        dhcp_policy_decide(&sh->cfg, &in, &d);
        enum obtain_result r = OBTAIN_OK;
        uint32_t ip = 0;
        switch (d.action) {
        case DHCP_POLICY_IGNORE:
            log_ignored(s, &x, req, &d);
            return;
        case DHCP_POLICY_OFFER:
        case DHCP_POLICY_ACK:
            r = obtain(s, &in, &x.key, &d, d.action == DHCP_POLICY_OFFER ? LEASE_OFFERED : LEASE_BOUND, &ip);
            if (r == OBTAIN_RETRY)
                continue;
            if (r != OBTAIN_OK && d.action == DHCP_POLICY_ACK && r == OBTAIN_NOADDR) {
                /* the requested address is someone else's now: NAK sends it to DISCOVER */
                d.action = DHCP_POLICY_NAK;
                d.why = DHCP_WHY_WRONG_ADDR;
            } else if (r != OBTAIN_OK) {
                if (r == OBTAIN_NOADDR)
                    st_add(sh, DHCP_STAT_EXHAUSTED, 1);
                if (r == OBTAIN_NOADDR && first_time(sh, 10ull << 56 | (uint32_t)d.subnet))
                    fprintf(stderr, "bootstorm: dhcp: subnet %d: no free address for %s (pool exhausted; "
                            "logged once)\n", d.subnet, x.hw);
                logf_line(s, "dhcp %s %s -> no reply: %s\n", dhcp_msg_type_name(t), x.hw,
                          r == OBTAIN_NOADDR ? "no free address" : "lease store error");
                return;
            }
            queue_reply(s, &x, &in, &d, ip);
            return;
        case DHCP_POLICY_NAK:
        case DHCP_POLICY_INFORM:
        case DHCP_POLICY_PROXY_OFFER:
        case DHCP_POLICY_PROXY_ACK:
            queue_reply(s, &x, &in, &d, 0);
            return;
        case DHCP_POLICY_DECLINE: {
            /* RFC 2131 §4.3.3: the address is in use by someone else; keep it
             * out of the pool for a while */
            uint32_t hold = sh->cfg.decline_hold_s ? sh->cfg.decline_hold_s : DHCP_POLICY_DECLINE_HOLD_S;
            int drc = lease_store_decline(sh->store, &x.key, d.cand[0], (uint16_t)d.subnet, in.now + hold, NULL);
            char a[16];
            fmt_ip(d.cand[0], a);
            if (drc != LEASE_STORE_OK) {
                st_add(sh, DHCP_STAT_STORE_ERRORS, 1);
                logf_line(s, "dhcp DECLINE %s %s: not recorded: %s\n", x.hw, a, strerror(-drc));
                return;
            }
            s->journal_dirty = true;
            st_add(sh, DHCP_STAT_DECLINED, 1);
            stage(sh, DHCP_STAGE_DECLINE, req->chaddr, req->hlen, d.cand[0]);
            logf_line(s, "dhcp DECLINE %s %s -> quarantined for %u s\n", x.hw, a, hold);
            return;
        }
        case DHCP_POLICY_RELEASE:
        case DHCP_POLICY_WITHDRAW:
            r = change_state(s, &in, &d, d.action == DHCP_POLICY_RELEASE ? LEASE_RELEASED : LEASE_EXPIRED);
            if (r == OBTAIN_RETRY)
                continue;
            if (r == OBTAIN_OK) {
                char a[16];
                fmt_ip(d.cand[0], a);
                st_add(sh, d.action == DHCP_POLICY_RELEASE ? DHCP_STAT_RELEASED : DHCP_STAT_WITHDRAWN, 1);
                logf_line(s, "dhcp %s %s %s -> %s\n", dhcp_msg_type_name(t), x.hw, a, dhcp_policy_action_name(d.action));
            }
            return;
        }
    }
    logf_line(s, "dhcp %s %s -> no reply: lease kept changing\n", dhcp_msg_type_name(t), x.hw);
}

static void on_recv(struct io_op *op, const struct io_completion *c)
{
    struct dsock *k = op->owner;
    struct dhcp_service *s = k->svc;
    if (c->res > 0 && c->buf)
        handle(s, k, c);
    if (!c->more && c->res != -ECANCELED) {
        if (c->res < 0 && first_time(s->sh, 11ull << 56 | (uint64_t)-c->res))
            fprintf(stderr, "bootstorm: dhcp: receive: %s; re-arming (logged once)\n", strerror(-c->res));
        io_timer_arm(s->loop, &k->retry, c->res < 0 ? 100 : 0);
    }
}

/* -- life cycle -- */

int dhcp_service_start(struct dhcp_service **out, struct io_loop *loop, const struct dhcp_service_config *cfg,
                       char *err, size_t errlen)
{
    *out = NULL;
    struct dhcp_service *s = calloc(1, sizeof *s);
    if (!s || !(s->q = malloc(QUEUE_MAX * sizeof *s->q))) {
        free(s);
        snprintf(err, errlen, "dhcp: out of memory");
        return -ENOMEM;
    }
    s->loop = loop;
    s->sh = cfg->shared;
    s->cfg = *cfg;
    logbuf_init(&s->log, STDOUT_FILENO, "dhcp", 0);
    if (!s->cfg.nworkers)
        s->cfg.nworkers = 1;
    s->sync_timer.fn = on_sync_timer;
    s->sync_timer.owner = s;
    if (s->sh->inv)
        s->inv = inventory_holder_acquire(s->sh->inv);
    ifcache_load(s);
    const struct options *o = s->sh->o;
    int rc = open_sock(s, &s->socks[0], o->dhcp_port, false, err, errlen);
    if (rc == 0 && o->proxy_dhcp)
        rc = open_sock(s, &s->socks[1], DHCP_PXE_PORT, true, err, errlen);
    if (rc == 0 && s->sh->hold_acks && !(s->held = malloc(HELD_MAX * sizeof *s->held))) {
        snprintf(err, errlen, "dhcp: out of memory");
        rc = -ENOMEM;
    }
    if (rc == 0) { /* the syncer's notify finds this loop */
        struct dhcp_shared *sh = s->sh;
        pthread_mutex_lock(&sh->svc_mu);
        if (sh->nsvcs == sh->svcs_cap) {
            size_t cap = sh->svcs_cap ? 2 * sh->svcs_cap : 8;
            struct dhcp_service **v = realloc(sh->svcs, cap * sizeof *v);
            if (v) {
                sh->svcs = v;
                sh->svcs_cap = cap;
            }
        }
        if (sh->nsvcs < sh->svcs_cap)
            sh->svcs[sh->nsvcs++] = s;
        else
            rc = -ENOMEM, snprintf(err, errlen, "dhcp: out of memory");
        pthread_mutex_unlock(&sh->svc_mu);
    }
    if (rc < 0) {
        dhcp_service_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void dhcp_service_flush(struct dhcp_service *s)
{
    if (!s)
        return;
    if (s->sh->inv) {
        struct inventory *before = s->inv;
        inventory_holder_refresh(s->sh->inv, &s->inv);
        if (s->inv != before)
            apply_statics(s->sh, s->inv); /* a reload: reservations may have moved */
    }
    /* What waits on the sockets now is answered this turn: on a worker that
     * also carries a storm's TFTP and HTTP, the ring hands a socket's datagrams
     * over a few per turn, and the queue grew to megabytes (installers timing
     * out) while the turns were short */
    for (int i = 0; i < s->nsocks; i++)
        io_recvmsg_drain(s->loop, &s->socks[i].op, DRAIN_MAX);
    if (s->nq)
        send_queue(s);
    else if (s->journal_dirty && s->sh->store && lease_store_sync_delay_ms(s->sh->store) >= 0 &&
             !io_timer_armed(&s->sync_timer)) {
        /* only OFFERs, releases, declines this turn: nobody waits on them; the
         * next ACK's sync or this timer writes them */
        io_timer_arm(s->loop, &s->sync_timer, MAINT_TICK_MS);
    }
    s->journal_dirty = false;
    if (s->nheld)
        release_held(s, 0);
    flush_log(s);
}

void dhcp_service_free(struct dhcp_service *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->sh->svc_mu); /* the syncer no longer wakes this loop */
    for (size_t i = 0; i < s->sh->nsvcs; i++)
        if (s->sh->svcs[i] == s) {
            s->sh->svcs[i] = s->sh->svcs[--s->sh->nsvcs];
            break;
        }
    pthread_mutex_unlock(&s->sh->svc_mu);
    send_queue(s);
    release_held(s, HELD_WAIT_MAX_MS);
    flush_log(s);
    io_timer_cancel(s->loop, &s->sync_timer);
    for (int i = 0; i < s->nsocks; i++) {
        io_timer_cancel(s->loop, &s->socks[i].retry);
        close(s->socks[i].fd); /* the loop is stopped: its recvmsg never completes */
    }
    if (s->inv)
        inventory_holder_release(s->sh->inv, s->inv);
    free(s->ifs);
    free(s->own);
    free(s->q);
    free(s->held);
    logbuf_free(&s->log);
    free(s);
}
