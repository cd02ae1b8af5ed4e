/* engine/rollout.c — see rollout.h. */
#include "engine/rollout.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine/bootcfg.h"
#include "engine/hostauth.h"
#include "engine/profile.h"
#include "proto/http.h"

#define LOCAL_ADDRS_MAX   32
#define MENU_TIMEOUT_S    3
#define JOURNAL_MAX       (64u << 20)

/* ---- the configuration snapshot ------------------------------------------------
 *
 * Inventory and profiles are published together, so a reader never sees a
 * host whose profile is from another generation.  Same scheme as the
 * inventory holder (engine/inventory.c): readers announce themselves in
 * `entering` while they take a reference; a publisher swaps the pointer, waits
 * until no reader is between those two steps, then drops its reference. */
struct snap {
    atomic_uint refs;
    struct inventory *inv;        /* a reference taken from the holder; NULL: no --hosts */
    struct profile_set *ps;       /* NULL: no --profiles */
    const struct profile *def;    /* --default-profile, NULL: none */
    bool pxelinux_ui;             /* menu.c32 and libutil.c32 are in the TFTP root */
    uint32_t addr[LOCAL_ADDRS_MAX], mask[LOCAL_ADDRS_MAX]; /* our IPv4 addresses, host order */
    unsigned naddr;
};

/* The install-once table: MAC → installed, read without locks.  A slot holds
 * mac48 << 8 | PRESENT | INSTALLED; keys are never removed, so a reader that
 * probes while a writer inserts sees either nothing or a whole key.  Growth
 * publishes a bigger copy; old tables stay until rollout_free, for readers
 * still probing them. */
#define SLOT_PRESENT   0x80u
#define SLOT_INSTALLED 0x01u
struct inst_table {
    size_t mask;
    struct inst_table *older;
    _Atomic uint64_t slot[];
};

struct rollout {
    unsigned flags;
    /* copied options */
    char *hosts, *profiles, *default_profile, *tftp_root, *http_root, *state_dir, *admin_token;
    bool known_only;
    uint32_t listen;
    uint16_t http_port;
    struct options_cidr admin_allow;
    struct options_subnet *subnets;
    size_t nsubnets;

    struct inventory_holder *holder;
    _Atomic(struct snap *) snap;
    atomic_uint entering;
    pthread_mutex_t reload_lock;

    struct hostauth *auth;
    bool throwaway_secret;

    _Atomic(struct inst_table *) inst;
    size_t inst_count;
    pthread_mutex_t state_lock;   /* writers of inst and the journal */
    int journal_fd;
    char *journal_path;
    size_t journal_lines;

    _Atomic(rollout_ip_resolver_fn) resolve;
    _Atomic(void *) resolve_ctx;
    rollout_log_fn log;
    void *log_ctx;
};

static void logf_(struct rollout *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(struct rollout *r, const char *fmt, ...)
{
    char line[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (r->log) {
        r->log(r->log_ctx, line);
        return;
    }
    char out[800];
    int n = snprintf(out, sizeof out, "bootstorm: rollout: %s\n", line);
    if (n > 0) /* one write: lines from several workers do not interleave */
        (void)!write(STDERR_FILENO, out, (size_t)n < sizeof out ? (size_t)n : sizeof out - 1);
}

static void snap_free(struct rollout *r, struct snap *s)
{
    if (!s)
        return;
    inventory_holder_release(r->holder, s->inv);
    profile_set_free(s->ps);
    free(s);
}

static void snap_unref(struct rollout *r, struct snap *s)
{
    if (s && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
        snap_free(r, s);
}

static struct snap *snap_get(struct rollout *r)
{
    atomic_fetch_add(&r->entering, 1);
    struct snap *s = atomic_load(&r->snap);
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    atomic_fetch_sub(&r->entering, 1);
    return s;
}

/* Callers hold reload_lock. */
static void snap_publish(struct rollout *r, struct snap *s)
{
    atomic_init(&s->refs, 1);
    struct snap *old = atomic_exchange(&r->snap, s);
    while (atomic_load(&r->entering) != 0)
        ;
    snap_unref(r, old);
}

/* ---- install-once table and journal -------------------------------------------- */

static uint64_t mac48(const uint8_t m[6])
{
    uint64_t k = 0;
    for (int i = 0; i < 6; i++)
        k = k << 8 | m[i];
    return k;
}

static size_t slot_hash(uint64_t k, size_t mask)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return (size_t)k & mask;
}

static _Atomic uint64_t *inst_probe(struct inst_table *t, uint64_t key)
{
    for (size_t i = slot_hash(key, t->mask);; i = (i + 1) & t->mask) {
        uint64_t v = atomic_load_explicit(&t->slot[i], memory_order_acquire);
        if (!v || v >> 8 == key)
            return &t->slot[i];
    }
}

static struct inst_table *inst_new(size_t slots, struct inst_table *older)
{
    struct inst_table *t = calloc(1, sizeof *t + slots * sizeof(_Atomic uint64_t));
    if (!t)
        return NULL;
    t->mask = slots - 1;
    t->older = older;
    return t;
}

bool rollout_installed(struct rollout *r, const uint8_t mac[6])
{
    struct inst_table *t = atomic_load_explicit(&r->inst, memory_order_acquire);
    uint64_t v = atomic_load_explicit(inst_probe(t, mac48(mac)), memory_order_acquire);
    return v & SLOT_INSTALLED;
}

/* In memory only; caller holds state_lock (or is single-threaded at start). */
static int inst_set(struct rollout *r, uint64_t key, bool installed)
{
    struct inst_table *t = atomic_load_explicit(&r->inst, memory_order_relaxed);
    _Atomic uint64_t *s = inst_probe(t, key);
    uint64_t v = key << 8 | SLOT_PRESENT | (installed ? SLOT_INSTALLED : 0);
    if (atomic_load_explicit(s, memory_order_relaxed)) {
        atomic_store_explicit(s, v, memory_order_release);
        return 0;
    }
    if ((r->inst_count + 1) * 2 > t->mask + 1) { /* keep the load under 1/2 */
        struct inst_table *n = inst_new(2 * (t->mask + 1), t);
        if (!n)
            return -ENOMEM;
        for (size_t i = 0; i <= t->mask; i++) {
            uint64_t old = atomic_load_explicit(&t->slot[i], memory_order_relaxed);
            if (old)
                atomic_store_explicit(inst_probe(n, old >> 8), old, memory_order_relaxed);
        }
        atomic_store_explicit(&r->inst, n, memory_order_release);
        t = n;
        s = inst_probe(t, key);
    }
    atomic_store_explicit(s, v, memory_order_release);
    r->inst_count++;
    return 0;
}

static int journal_write(struct rollout *r, const char *text, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(r->journal_fd, text + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        off += (size_t)n;
    }
    return fdatasync(r->journal_fd) < 0 ? -errno : 0;
}

static void fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Rewrites the journal with one line per installed host (start-up only). */
static int journal_compact(struct rollout *r)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", r->journal_path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    struct inst_table *t = atomic_load(&r->inst);
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        return -ENOMEM;
    }
    size_t lines = 0;
    long now = (long)time(NULL);
    for (size_t i = 0; i <= t->mask; i++) {
        uint64_t v = atomic_load(&t->slot[i]);
        if (!(v & SLOT_INSTALLED))
            continue;
        uint64_t k = v >> 8;
        fprintf(f, "installed %02x:%02x:%02x:%02x:%02x:%02x %ld\n", (unsigned)(k >> 40) & 255,
                (unsigned)(k >> 32) & 255, (unsigned)(k >> 24) & 255, (unsigned)(k >> 16) & 255,
                (unsigned)(k >> 8) & 255, (unsigned)k & 255, now);
        lines++;
    }
    int rc = fflush(f) == 0 && fsync(fd) == 0 ? 0 : -errno;
    fclose(f);
    if (rc == 0 && rename(tmp, r->journal_path) < 0)
        rc = -errno;
    if (rc < 0) {
        unlink(tmp);
        return rc;
    }
    fsync_dir(r->state_dir);
    r->journal_lines = lines;
    return 0;
}

/* Replays <state-dir>/installed: "installed MAC TIME" / "reinstall MAC TIME"
 * lines, the last one for a MAC wins.  A torn last line (a crash during the
 * append, never acknowledged) is cut off. */
static int journal_open(struct rollout *r, rollout_report_fn report, void *ctx)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/installed", r->state_dir);
    if (!(r->journal_path = strdup(path)))
        return -ENOMEM;
    bool ro = r->flags & ROLLOUT_READ_ONLY;
    int fd = open(path, ro ? O_RDONLY | O_CLOEXEC : O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (ro && errno == ENOENT)
            return 0;
        int e = errno;
        char msg[4400];
        snprintf(msg, sizeof msg, "%s: %s", path, strerror(e));
        if (report)
            report(ctx, msg);
        return -e;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_size > JOURNAL_MAX) {
        int e = st.st_size > JOURNAL_MAX ? EFBIG : errno;
        close(fd);
        return -e;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    ssize_t got = buf ? pread(fd, buf, (size_t)st.st_size, 0) : -1;
    if (got < 0) {
        free(buf);
        close(fd);
        return buf ? -errno : -ENOMEM;
    }
    buf[got] = '\0';
    size_t good = 0, lineno = 0;
    for (char *p = buf, *nl; (nl = memchr(p, '\n', (size_t)(buf + got - p))); p = nl + 1) {
        *nl = '\0';
        lineno++;
        char word[16], macs[32];
        long when;
        uint8_t mac[6];
        if (sscanf(p, "%15s %31s %ld", word, macs, &when) == 3 && inventory_parse_mac(macs, mac) &&
            (!strcmp(word, "installed") || !strcmp(word, "reinstall"))) {
            if (inst_set(r, mac48(mac), word[0] == 'i') < 0) {
                free(buf);
                close(fd);
                return -ENOMEM;
            }
        } else {
            logf_(r, "%s:%zu: not a journal line, skipped", path, lineno);
        }
        good = (size_t)(nl + 1 - buf);
    }
    free(buf);
    r->journal_lines = lineno;
    if (ro) {
        close(fd);
        return 0;
    }
    if (good != (size_t)got && ftruncate(fd, (off_t)good) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    r->journal_fd = fd;
    if (r->journal_lines > 1024 && r->journal_lines > 4 * r->inst_count) {
        int rc = journal_compact(r);
        if (rc == 0) {
            close(fd);
            r->journal_fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC);
            if (r->journal_fd < 0)
                return -errno;
        }
    }
    return 0;
}

int rollout_set_installed(struct rollout *r, const uint8_t mac[6], bool installed)
{
    if (r->flags & ROLLOUT_READ_ONLY || r->journal_fd < 0)
        return -EROFS;
    char line[64], ms[18];
    inventory_format_mac(mac, ms);
    int n = snprintf(line, sizeof line, "%s %s %ld\n", installed ? "installed" : "reinstall", ms, (long)time(NULL));
    pthread_mutex_lock(&r->state_lock);
    int rc = journal_write(r, line, (size_t)n);
    if (rc == 0) {
        r->journal_lines++;
        rc = inst_set(r, mac48(mac), installed);
    }
    pthread_mutex_unlock(&r->state_lock);
    return rc;
}

/* ---- loading ------------------------------------------------------------------------ */

struct counter {
    rollout_report_fn report;
    void *ctx;
    unsigned n;
    char *first;      /* first problem, for rollout_reload's err */
    size_t firstlen;
};

static void count_problem(void *ctx, const char *msg)
{
    struct counter *c = ctx;
    if (c->n++ == 0 && c->first && c->firstlen)
        snprintf(c->first, c->firstlen, "%s", msg);
    if (c->report)
        c->report(c->ctx, msg);
}

static void cproblem(struct counter *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void cproblem(struct counter *c, const char *fmt, ...)
{
    char msg[4400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    count_problem(c, msg);
}

static bool file_in(const char *root, const char *rel)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static void local_addrs(struct snap *s)
{
    struct ifaddrs *ifa;
    if (getifaddrs(&ifa) < 0)
        return;
    /* non-loopback first: they are the fallback for relayed clients */
    for (int pass = 0; pass < 2; pass++)
        for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
            if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !i->ifa_netmask || s->naddr == LOCAL_ADDRS_MAX)
                continue;
            if (!!(i->ifa_flags & IFF_LOOPBACK) != (pass == 1))
                continue;
            s->addr[s->naddr] = ntohl(((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr.s_addr);
            s->mask[s->naddr] = ntohl(((struct sockaddr_in *)(void *)i->ifa_netmask)->sin_addr.s_addr);
            s->naddr++;
        }
    freeifaddrs(ifa);
}

/* Loads a new snapshot; every problem counted in c.  keep_going: return what
 * loaded even with problems. */
static struct snap *load_snap(struct rollout *r, struct counter *c, bool keep_going, struct inventory **inv_out)
{
    struct snap *s = calloc(1, sizeof *s);
    if (!s) {
        cproblem(c, "out of memory");
        return NULL;
    }
    *inv_out = NULL;
    if (r->hosts && inventory_load_report(r->hosts, inv_out, count_problem, c) == -ENOMEM)
        cproblem(c, "%s: out of memory", r->hosts);
    if (r->profiles) {
        int rc = profile_set_load(r->profiles, &s->ps, count_problem, c);
        if (rc == -ENOMEM)
            cproblem(c, "%s: out of memory", r->profiles);
    }
    if (r->default_profile && !(s->def = profile_find(s->ps, r->default_profile)))
        cproblem(c, "--default-profile %s: no profile %s/%s.conf%s", r->default_profile,
                 r->profiles ? r->profiles : "(no --profiles)", r->default_profile,
                 s->ps || !r->profiles ? "" : " (the directory has problems)");
    struct inventory *inv = *inv_out;
    for (size_t i = 0; i < inventory_count(inv); i++) {
        const struct inv_host *h = inventory_host(inv, i);
        if (!h->profile[0] || profile_find(s->ps, h->profile))
            continue;
        char conf[4200];
        snprintf(conf, sizeof conf, "%s/%s.conf", r->profiles ? r->profiles : ".", h->profile);
        if (!r->profiles)
            cproblem(c, "%s:%u: profile \"%s\": no --profiles directory", r->hosts, h->line, h->profile);
        else if (access(conf, F_OK) == 0)
            cproblem(c, "%s:%u: profile \"%s\": %s has problems", r->hosts, h->line, h->profile, conf);
        else
            cproblem(c, "%s:%u: profile \"%s\": no such file %s", r->hosts, h->line, h->profile, conf);
    }
    if (r->tftp_root)
        s->pxelinux_ui = file_in(r->tftp_root, "menu.c32") && file_in(r->tftp_root, "libutil.c32");
    local_addrs(s);
    if (c->n && !keep_going) {
        inventory_free(inv);
        *inv_out = NULL;
        profile_set_free(s->ps);
        free(s);
        return NULL;
    }
    return s;
}

/* Publishes inv through the holder and s (holding a reference to it). */
static void publish(struct rollout *r, struct snap *s, struct inventory *inv)
{
    inventory_holder_publish(r->holder, inv);
    s->inv = inventory_holder_acquire(r->holder);
    snap_publish(r, s);
}

static char *dup_or_null(const char *s, bool *ok)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *ok = false;
    return d;
}

int rollout_create(struct rollout **out, const struct options *o, unsigned flags, rollout_report_fn report, void *ctx)
{
    *out = NULL;
    struct rollout *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    bool ok = true;
    r->flags = flags;
    r->journal_fd = -1;
    r->hosts = dup_or_null(o->hosts, &ok);
    r->profiles = dup_or_null(o->profiles, &ok);
    r->default_profile = dup_or_null(o->default_profile, &ok);
    r->tftp_root = dup_or_null(o->tftp_root, &ok);
    r->http_root = dup_or_null(o->http_root, &ok);
    r->state_dir = dup_or_null(o->state_dir ? o->state_dir : ".", &ok);
    r->admin_token = dup_or_null(o->admin_token, &ok);
    r->known_only = o->known_only;
    r->listen = o->listen;
    r->http_port = o->http_port;
    r->admin_allow = o->admin_allow;
    if (o->subnets.count && (r->subnets = calloc(o->subnets.count, sizeof *r->subnets))) {
        memcpy(r->subnets, o->subnets.items, o->subnets.count * sizeof *r->subnets);
        r->nsubnets = o->subnets.count;
    } else if (o->subnets.count) {
        ok = false;
    }
    pthread_mutex_init(&r->reload_lock, NULL);
    pthread_mutex_init(&r->state_lock, NULL);
    atomic_init(&r->entering, 0);
    atomic_init(&r->snap, NULL);
    atomic_init(&r->resolve, NULL);
    atomic_init(&r->resolve_ctx, NULL);
    struct inst_table *t = inst_new(256, NULL);
    atomic_init(&r->inst, t);
    r->holder = inventory_holder_new(NULL);
    if (!ok || !t || !r->holder) {
        rollout_free(r);
        return -ENOMEM;
    }

    struct counter c = { report, ctx, 0, NULL, 0 };
    bool keep_going = flags & ROLLOUT_KEEP_GOING;
    struct inventory *inv;
    struct snap *s = load_snap(r, &c, keep_going, &inv);
    if (!s) {
        rollout_free(r);
        return c.n ? -EINVAL : -ENOMEM;
    }
    publish(r, s, inv);

    char err[4400];
    int rc = hostauth_open(r->state_dir, flags & ROLLOUT_READ_ONLY ? HOSTAUTH_READ_ONLY : HOSTAUTH_CREATE, &r->auth,
                           err, sizeof err);
    if (rc == -ENOENT && (flags & ROLLOUT_READ_ONLY)) {
        /* check/render before the first serve: tokens only need to be well-formed */
        uint8_t secret[HOSTAUTH_SECRET_LEN];
        if (getrandom(secret, sizeof secret, 0) != (ssize_t)sizeof secret)
            memset(secret, 0x5a, sizeof secret);
        r->auth = hostauth_new(secret, sizeof secret);
        r->throwaway_secret = true;
        rc = r->auth ? 0 : -ENOMEM;
    } else if (rc < 0) {
        cproblem(&c, "%s", err);
    }
    if (rc == 0)
        rc = journal_open(r, count_problem, &c);
    if (rc < 0 && !(keep_going && r->auth)) {
        rollout_free(r);
        return rc;
    }
    *out = r;
    return c.n ? -EINVAL : 0;
}

void rollout_free(struct rollout *r)
{
    if (!r)
        return;
    snap_unref(r, atomic_load(&r->snap));
    inventory_holder_free(r->holder);
    hostauth_free(r->auth);
    for (struct inst_table *t = atomic_load(&r->inst), *older; t; t = older) {
        older = t->older;
        free(t);
    }
    if (r->journal_fd >= 0)
        close(r->journal_fd);
    pthread_mutex_destroy(&r->reload_lock);
    pthread_mutex_destroy(&r->state_lock);
    free(r->journal_path);
    free(r->hosts);
    free(r->profiles);
    free(r->default_profile);
    free(r->tftp_root);
    free(r->http_root);
    free(r->state_dir);
    free(r->admin_token);
    free(r->subnets);
    free(r);
}

void rollout_set_log(struct rollout *r, rollout_log_fn fn, void *ctx)
{
    r->log = fn;
    r->log_ctx = ctx;
}

void rollout_set_ip_resolver(struct rollout *r, rollout_ip_resolver_fn fn, void *ctx)
{
    atomic_store(&r->resolve, NULL); /* never a new function with the old context */
    atomic_store(&r->resolve_ctx, ctx);
    atomic_store(&r->resolve, fn);
}

int rollout_reload(struct rollout *r, char *err, size_t errlen)
{
    if (errlen)
        err[0] = '\0';
    pthread_mutex_lock(&r->reload_lock);
    struct counter c = { NULL, NULL, 0, err, errlen };
    struct inventory *inv;
    struct snap *s = load_snap(r, &c, false, &inv);
    if (s)
        publish(r, s, inv);
    pthread_mutex_unlock(&r->reload_lock);
    if (!s && c.n > 1 && errlen) {
        size_t used = strlen(err);
        snprintf(err + used, errlen - used, " (and %u more problems)", c.n - 1);
    }
    return s ? 0 : c.n ? -EINVAL : -ENOMEM;
}

struct inventory_holder *rollout_inventory(struct rollout *r) { return r->holder; }

size_t rollout_host_count(struct rollout *r)
{
    struct snap *s = snap_get(r);
    size_t n = inventory_count(s->inv);
    snap_unref(r, s);
    return n;
}

size_t rollout_profile_count(struct rollout *r)
{
    struct snap *s = snap_get(r);
    size_t n = profile_set_count(s->ps);
    snap_unref(r, s);
    return n;
}

/* ---- who is asking, and what it gets --------------------------------------------- */

/* Our address as a client at client_ip (host order) reaches us. */
static uint32_t server_addr(const struct rollout *r, const struct snap *s, uint32_t client_ip)
{
    if (r->listen)
        return r->listen;
    for (unsigned i = 0; i < s->naddr; i++)
        if (client_ip && ((client_ip ^ s->addr[i]) & s->mask[i]) == 0)
            return s->addr[i];
    /* relayed (another subnet) or unknown: our first non-loopback address */
    return s->naddr ? s->addr[0] : 0x7f000001;
}

static void host_net(const struct rollout *r, uint32_t ip, struct bootcfg_net *n)
{
    memset(n, 0, sizeof *n);
    const struct options_subnet *sn = NULL;
    for (size_t i = 0; i < r->nsubnets; i++) {
        uint32_t mask = r->subnets[i].prefix ? ~0u << (32 - r->subnets[i].prefix) : 0;
        if (ip && (ip & mask) == r->subnets[i].network)
            sn = &r->subnets[i];
    }
    if (!sn && !ip && r->nsubnets == 1) /* a pool host: its lease will come from the one subnet */
        sn = &r->subnets[0];
    if (!sn)
        return;
    n->prefix = sn->prefix;
    n->netmask = sn->prefix ? ~0u << (32 - sn->prefix) : 0;
    n->gateway = sn->router;
    n->ndns = sn->dns_count < BOOTCFG_DNS_MAX ? sn->dns_count : BOOTCFG_DNS_MAX;
    memcpy(n->dns, sn->dns, n->ndns * sizeof *n->dns);
    n->domain = sn->domain[0] ? sn->domain : NULL;
}

static bool resolve_ip(struct rollout *r, uint32_t ip, uint8_t mac[6])
{
    rollout_ip_resolver_fn fn = atomic_load(&r->resolve);
    return ip && fn && fn(atomic_load(&r->resolve_ctx), ip, mac);
}

/* Everything to render for one machine. */
struct target {
    struct inv_host synth;          /* a machine not in the inventory */
    struct bootcfg_host bh;
    struct bootcfg_server srv;
    char token[HOSTAUTH_TOKEN_LEN + 1];
};

enum { BY_MAC, BY_NAME, BY_IP };

/* Finds the machine (by MAC, hostname, or the IP it asks from) and fills t.
 * peer: the asking address (host order, 0: none).  -ENOENT: not served. */
static int target(struct rollout *r, const struct snap *s, int by, const uint8_t *mac, const char *name, uint32_t ip,
                  uint32_t peer, struct target *t)
{
    memset(t, 0, sizeof *t);
    const struct inv_host *h = NULL;
    uint8_t m[6];
    bool have_mac = false, via_peer = false;
    if (by == BY_MAC) {
        memcpy(m, mac, 6);
        have_mac = true;
        h = inventory_find_mac(s->inv, m);
    } else if (by == BY_NAME) {
        h = inventory_find_hostname(s->inv, name);
    } else {
        h = inventory_find_ip(s->inv, ip);
        if (!h && resolve_ip(r, ip, m)) {
            have_mac = true;
            h = inventory_find_mac(s->inv, m);
        }
        via_peer = ip == peer;
    }
    if (!h) {
        if (!have_mac || r->known_only || !s->def)
            return -ENOENT;
        struct inv_host *x = &t->synth;
        memcpy(x->mac, m, 6);
        inventory_format_mac(m, x->mac_str);
        snprintf(x->hostname, sizeof x->hostname, "host-%02x%02x%02x%02x%02x%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
        h = x;
    }
    t->bh.host = h;
    t->bh.profile = h->profile[0] ? profile_find(s->ps, h->profile) : s->def;
    t->bh.ip = h->ip;
    if (!t->bh.ip && peer) {
        /* a pool host: its address is the one it asks from, if that is its lease */
        uint8_t pm[6];
        if ((by == BY_IP && via_peer) || (resolve_ip(r, peer, pm) && !memcmp(pm, h->mac, 6)))
            t->bh.ip = peer;
    }
    t->bh.installed = rollout_installed(r, h->mac);
    hostauth_token(r->auth, h->mac, t->token);
    t->bh.token = t->token;
    host_net(r, t->bh.ip, &t->bh.net);
    t->srv.addr = server_addr(r, s, peer ? peer : t->bh.ip);
    t->srv.http_port = r->http_port;
    t->srv.pxelinux_ui = s->pxelinux_ui;
    t->srv.timeout_s = MENU_TIMEOUT_S;
    return 0;
}

static void generic_server(const struct rollout *r, const struct snap *s, uint32_t peer, struct bootcfg_server *srv)
{
    srv->addr = server_addr(r, s, peer);
    srv->http_port = r->http_port;
    srv->pxelinux_ui = s->pxelinux_ui;
    srv->timeout_s = MENU_TIMEOUT_S;
}

typedef int (*render_fn)(const struct bootcfg_server *, const struct bootcfg_host *, struct template_buf *, char *,
                         size_t);
static const render_fn renderers[ROLLOUT_WHAT_COUNT] = { bootcfg_pxelinux_host, bootcfg_grub_host, bootcfg_ipxe_host,
                                                         bootcfg_kickstart };
static const char *const what_names[ROLLOUT_WHAT_COUNT] = { "pxelinux", "grub", "ipxe", "kickstart" };

const char *rollout_what_name(enum rollout_what w) { return (unsigned)w < ROLLOUT_WHAT_COUNT ? what_names[w] : NULL; }

/* id: a MAC or a hostname. */
static int target_by_id(struct rollout *r, const struct snap *s, const char *id, uint32_t peer, struct target *t)
{
    uint8_t mac[6];
    if (!*id)
        return peer ? target(r, s, BY_IP, NULL, NULL, peer, peer, t) : -ENOENT;
    if (inventory_parse_mac(id, mac))
        return target(r, s, BY_MAC, mac, NULL, 0, peer, t);
    return target(r, s, BY_NAME, NULL, id, 0, peer, t);
}

int rollout_render(struct rollout *r, const char *id, enum rollout_what what, struct template_buf *out, char *err,
                   size_t errlen)
{
    if ((unsigned)what >= ROLLOUT_WHAT_COUNT) {
        snprintf(err, errlen, "nothing to render");
        return -EINVAL;
    }
    struct snap *s = snap_get(r);
    struct target t;
    int rc = target_by_id(r, s, id, 0, &t);
    if (rc < 0)
        snprintf(err, errlen, "%s: not in the inventory%s", id,
                 s->def && !r->known_only ? "" : " (and no --default-profile for unknown machines)");
    else
        rc = renderers[what](&t.srv, &t.bh, out, err, errlen);
    snap_unref(r, s);
    return rc;
}

bool rollout_loader(struct rollout *r, const uint8_t mac[6], bool efi64, char *out, size_t outlen)
{
    struct snap *s = snap_get(r);
    struct target t;
    bool found = false;
    if (target(r, s, BY_MAC, mac, NULL, 0, 0, &t) == 0 && t.bh.profile) {
        const char *l = efi64 ? t.bh.profile->loader_efi64 : t.bh.profile->loader_bios;
        if (l && strlen(l) < outlen) {
            memcpy(out, l, strlen(l) + 1);
            found = true;
        }
    }
    snap_unref(r, s);
    return found;
}

/* ---- TFTP --------------------------------------------------------------------------- */

static void free_arg(void *p) { free(p); }

static bool to_vfile(struct template_buf *b, struct vfile **out)
{
    *out = vfile_new_wrap(b->data, b->len, free_arg, b->data);
    if (!*out) {
        template_buf_free(b);
        return false;
    }
    return true;
}

bool rollout_vfile_open(void *ctx, const char *path, uint32_t client_ip_be, struct vfile **out)
{
    struct rollout *r = ctx;
    uint32_t peer = ntohl(client_ip_be);
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t dirlen = (size_t)(base - path);
    bool pxe = dirlen >= 13 && !memcmp(base - 13, "pxelinux.cfg/", 13) && (dirlen == 13 || base[-14] == '/');
    bool grub = !pxe && !strncmp(base, "grub.cfg", 8);
    if (!pxe && !grub)
        return false;
    struct bootcfg_name nm;
    enum bootcfg_name_kind kind = pxe ? bootcfg_pxelinux_name(base, &nm) : bootcfg_grub_name(base, &nm);
    if (kind != BOOTCFG_NAME_DEFAULT && kind != BOOTCFG_NAME_MAC && kind != BOOTCFG_NAME_IP)
        return false; /* UUIDs, hex-IP prefixes, other files: the disk's */

    struct snap *s = snap_get(r);
    struct template_buf b = { 0 };
    char err[512] = "";
    int rc = -ENOENT;
    struct target t;
    if (kind == BOOTCFG_NAME_MAC)
        rc = target(r, s, BY_MAC, nm.mac, NULL, 0, peer, &t);
    else if (kind == BOOTCFG_NAME_IP)
        rc = target(r, s, BY_IP, NULL, NULL, nm.ip, peer, &t);
    else if (grub) /* grub.cfg: whoever asks */
        rc = target(r, s, BY_IP, NULL, NULL, peer, peer, &t);
    if (rc == 0) {
        rc = (pxe ? bootcfg_pxelinux_host : bootcfg_grub_host)(&t.srv, &t.bh, &b, err, sizeof err);
    } else if (kind == BOOTCFG_NAME_DEFAULT && s->ps && !r->known_only) {
        struct bootcfg_server srv;
        generic_server(r, s, peer, &srv);
        rc = (pxe ? bootcfg_pxelinux_menu : bootcfg_grub_menu)(&srv, s->ps, &b, err, sizeof err);
    }
    snap_unref(r, s);
    if (rc < 0) {
        if (rc != -ENOENT) {
            char ip[INET_ADDRSTRLEN];
            struct in_addr a = { client_ip_be };
            logf_(r, "tftp %s for %s: %s", path, inet_ntop(AF_INET, &a, ip, sizeof ip), err);
        }
        template_buf_free(&b);
        return false;
    }
    return to_vfile(&b, out);
}

struct vfile_provider rollout_vfile_provider(struct rollout *r)
{
    struct vfile_provider p = { rollout_vfile_open, r };
    return p;
}

/* ---- HTTP ----------------------------------------------------------------------------- */

static bool reply_buf(struct http_dyn_response *resp, int status, const char *ctype, struct template_buf *b)
{
    resp->status = status;
    resp->content_type = ctype;
    resp->body = b->data;
    resp->body_len = b->len;
    return true;
}

static bool replyf(struct http_dyn_response *resp, int status, const char *ctype, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static bool replyf(struct http_dyn_response *resp, int status, const char *ctype, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *body = NULL;
    int n = vasprintf(&body, fmt, ap);
    va_end(ap);
    resp->status = n < 0 ? 500 : status;
    resp->content_type = ctype;
    resp->body = n < 0 ? NULL : body;
    resp->body_len = n < 0 ? 0 : (size_t)n;
    return true;
}

static const char *const TEXT = "text/plain; charset=utf-8";
static const char *const JSON = "application/json";

static int unhex(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* The value of key in an application/x-www-form-urlencoded string, decoded. */
static bool form_value(const char *q, size_t qlen, const char *key, char *out, size_t outlen)
{
    size_t klen = strlen(key);
    const char *end = q + qlen;
    for (const char *p = q; p < end;) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *e = amp ? amp : end;
        if ((size_t)(e - p) > klen && !memcmp(p, key, klen) && p[klen] == '=') {
            size_t n = 0;
            for (const char *v = p + klen + 1; v < e; v++) {
                char ch = *v;
                if (ch == '+')
                    ch = ' ';
                else if (ch == '%' && e - v >= 3 && unhex(v[1]) >= 0 && unhex(v[2]) >= 0) {
                    ch = (char)(unhex(v[1]) << 4 | unhex(v[2]));
                    v += 2;
                }
                if (n + 1 >= outlen)
                    return false;
                out[n++] = ch;
            }
            out[n] = '\0';
            return true;
        }
        p = e + 1;
    }
    return false;
}

static bool admin_ok(struct rollout *r, const struct http_dyn_request *req, struct http_dyn_response *resp)
{
    uint32_t ip = ntohl(req->peer_ip);
    uint32_t mask = r->admin_allow.prefix ? ~0u << (32 - r->admin_allow.prefix) : 0;
    char peer[INET_ADDRSTRLEN];
    struct in_addr a = { req->peer_ip };
    inet_ntop(AF_INET, &a, peer, sizeof peer);
    if ((ip & mask) != (r->admin_allow.addr & mask)) {
        logf_(r, "refused admin call /%s from %s: not in --admin-allow", req->path, peer);
        replyf(resp, 403, TEXT, "forbidden: %s is not in --admin-allow\n", peer);
        return false;
    }
    if (r->admin_token) {
        const char *auth = req->auth ? req->auth : "";
        size_t want = strlen(r->admin_token);
        bool good = strlen(auth) == 7 + want && !strncasecmp(auth, "Bearer ", 7) &&
                    hostauth_equal(auth + 7, r->admin_token, want);
        if (!good) {
            logf_(r, "refused admin call /%s from %s: %s admin token", req->path, peer, *auth ? "wrong" : "no");
            replyf(resp, 401, TEXT, "unauthorized: send Authorization: Bearer <admin token>\n");
            return false;
        }
    }
    return true;
}

static bool host_json(struct rollout *r, const struct target *t, struct http_dyn_response *resp, int status)
{
    const struct inv_host *h = t->bh.host;
    char ip[16] = "";
    if (t->bh.ip)
        snprintf(ip, sizeof ip, "%u.%u.%u.%u", t->bh.ip >> 24, (t->bh.ip >> 16) & 255, (t->bh.ip >> 8) & 255,
                 t->bh.ip & 255);
    /* every value is from a validated character set (MAC, RFC 1123 name,
     * profile name, dotted quad): nothing to escape */
    return replyf(resp, status, JSON,
                  "{\"mac\":\"%s\",\"hostname\":\"%s\",\"ip\":%s%s%s,\"profile\":%s%s%s,\"known\":%s,\"installed\":%s}\n",
                  h->mac_str, h->hostname, ip[0] ? "\"" : "", ip[0] ? ip : "null", ip[0] ? "\"" : "",
                  t->bh.profile ? "\"" : "", t->bh.profile ? t->bh.profile->name : "null", t->bh.profile ? "\"" : "",
                  h == &t->synth ? "false" : "true", rollout_installed(r, h->mac) ? "true" : "false");
}

/* The token of an installed callback: ?token=, or the body (token=T or T). */
static void callback_token(const struct http_dyn_request *req, char *tok, size_t len)
{
    tok[0] = '\0';
    if (form_value(req->query, strlen(req->query), "token", tok, len))
        return;
    if (req->body && form_value(req->body, req->body_len, "token", tok, len))
        return;
    size_t n = req->body_len;
    const char *b = req->body;
    while (n && isspace((unsigned char)*b))
        b++, n--;
    while (n && isspace((unsigned char)b[n - 1]))
        n--;
    if (b && n < len && !memchr(b, '=', n)) {
        memcpy(tok, b, n);
        tok[n] = '\0';
    }
}

static bool api_host(struct rollout *r, const struct snap *s, const struct http_dyn_request *req, const char *rest,
                     uint32_t peer, struct http_dyn_response *resp)
{
    char id[128];
    const char *slash = strchr(rest, '/');
    size_t idlen = slash ? (size_t)(slash - rest) : strlen(rest);
    const char *action = slash ? slash + 1 : "";
    if (idlen == 0 || idlen >= sizeof id)
        return replyf(resp, 404, TEXT, "no such host\n");
    memcpy(id, rest, idlen);
    id[idlen] = '\0';
    bool get = req->method == HTTP_METHOD_GET || req->method == HTTP_METHOD_HEAD;
    bool post = req->method == HTTP_METHOD_POST;
    if (strcmp(action, "") && strcmp(action, "installed") && strcmp(action, "reinstall"))
        return false;
    if (!*action ? !get : !post)
        return replyf(resp, 405, TEXT, "method not allowed\n");
    struct target t;
    if (target_by_id(r, s, id, peer, &t) < 0)
        return replyf(resp, 404, TEXT, "%s: not in the inventory\n", id);
    const struct inv_host *h = t.bh.host;
    if (!*action)
        return host_json(r, &t, resp, 200);

    char peer_s[INET_ADDRSTRLEN];
    struct in_addr a = { req->peer_ip };
    inet_ntop(AF_INET, &a, peer_s, sizeof peer_s);
    if (!strcmp(action, "installed")) {
        char tok[HOSTAUTH_TOKEN_LEN + 8];
        callback_token(req, tok, sizeof tok);
        if (!hostauth_check(r->auth, h->mac, tok)) {
            logf_(r, "refused installed callback for %s (%s) from %s: %s token", h->mac_str, h->hostname, peer_s,
                  tok[0] ? "wrong" : "no");
            return replyf(resp, 403, TEXT, "forbidden: %s token for %s\n", tok[0] ? "wrong" : "no", h->mac_str);
        }
    } else if (!admin_ok(r, req, resp)) {
        return true;
    }
    bool installed = action[0] == 'i';
    int rc = rollout_set_installed(r, h->mac, installed);
    if (rc < 0) {
        logf_(r, "%s (%s): cannot record %s: %s", h->mac_str, h->hostname, action, strerror(-rc));
        return replyf(resp, 500, TEXT, "cannot record the state: %s\n", strerror(-rc));
    }
    logf_(r, "%s (%s) %s from %s: next boot %s", h->mac_str, h->hostname, installed ? "installed" : "reinstall",
          peer_s, installed && t.bh.profile && t.bh.profile->local_after_install ? "from the local disk" : "installs");
    return host_json(r, &t, resp, 200);
}

bool rollout_http_route(void *ctx, const struct http_dyn_request *req, struct http_dyn_response *resp)
{
    struct rollout *r = ctx;
    const char *path = req->path;
    uint32_t peer = ntohl(req->peer_ip);
    bool get = req->method == HTTP_METHOD_GET || req->method == HTTP_METHOD_HEAD;
    enum rollout_what what = ROLLOUT_WHAT_COUNT;
    char id[128] = "";

    if (!strcmp(path, "api/reload")) {
        if (req->method != HTTP_METHOD_POST)
            return replyf(resp, 405, TEXT, "method not allowed\n");
        if (!admin_ok(r, req, resp))
            return true;
        char err[1024];
        if (rollout_reload(r, err, sizeof err) < 0) {
            logf_(r, "reload refused, the old inventory and profiles stay: %s", err);
            return replyf(resp, 422, TEXT, "reload refused, nothing changed: %s\n", err);
        }
        logf_(r, "reloaded: %zu hosts, %zu profiles", rollout_host_count(r), rollout_profile_count(r));
        return replyf(resp, 200, TEXT, "reloaded: %zu hosts, %zu profiles\n", rollout_host_count(r),
                      rollout_profile_count(r));
    }
    if (!strncmp(path, "api/hosts/", 10)) {
        struct snap *s = snap_get(r);
        bool handled = api_host(r, s, req, path + 10, peer, resp);
        snap_unref(r, s);
        return handled;
    }
    if (!strcmp(path, "boot.ipxe")) {
        what = ROLLOUT_IPXE;
        form_value(req->query, strlen(req->query), "mac", id, sizeof id);
    } else if (!strcmp(path, "ks") || !strncmp(path, "ks/", 3)) {
        what = ROLLOUT_KICKSTART;
        snprintf(id, sizeof id, "%s", path[2] ? path + 3 : "");
    } else if (!strncmp(path, "preseed/", 8)) {
        what = ROLLOUT_KICKSTART;
        snprintf(id, sizeof id, "%s", path + 8);
        size_t n = strlen(id);
        if (n >= 4 && !strcmp(id + n - 4, ".cfg"))
            id[n - 4] = '\0';
    } else {
        return false;
    }
    if (!get)
        return replyf(resp, 405, TEXT, "method not allowed\n");

    struct snap *s = snap_get(r);
    struct target t;
    struct template_buf b = { 0 };
    char err[512] = "";
    int rc = target_by_id(r, s, id, peer, &t);
    if (rc == 0)
        rc = renderers[what](&t.srv, &t.bh, &b, err, sizeof err);
    snap_unref(r, s);
    if (rc == 0)
        return reply_buf(resp, 200, TEXT, &b);
    template_buf_free(&b);
    if (rc == -ENOENT && !err[0])
        return replyf(resp, 404, TEXT, "%s: not in the inventory\n", id[0] ? id : "this address");
    if (rc == -ENOENT)
        return replyf(resp, 404, TEXT, "%s\n", err);
    logf_(r, "http /%s: %s", path, err);
    return replyf(resp, 500, TEXT, "rendering failed: %s\n", err);
}

/* ---- check -------------------------------------------------------------------------------- */

unsigned rollout_check(struct rollout *r, rollout_report_fn report, void *ctx)
{
    struct counter c = { report, ctx, 0, NULL, 0 };
    struct snap *s = snap_get(r);
    static const char *const kinds[] = { "kernel", "initrd", "loader_bios", "loader_efi64" };
    for (size_t i = 0; i < profile_set_count(s->ps); i++) {
        const struct profile *p = profile_set_at(s->ps, i);
        const char *files[] = { p->kernel, p->initrd, p->loader_bios, p->loader_efi64 };
        for (int k = 0; k < 4; k++) {
            if (!files[k])
                continue;
            if (r->tftp_root && !file_in(r->tftp_root, files[k]))
                cproblem(&c, "%s: %s %s: no such file under --tftp-root %s", p->path, kinds[k], files[k], r->tftp_root);
            /* iPXE fetches kernel and initrd over HTTP; loaders only come by TFTP */
            if (k < 2 && r->http_root && !file_in(r->http_root, files[k]))
                cproblem(&c, "%s: %s %s: no such file under --http-root %s", p->path, kinds[k], files[k], r->http_root);
        }
    }
    char err[1024];
    if (s->ps) {
        struct bootcfg_server srv;
        generic_server(r, s, 0, &srv);
        struct template_buf b = { 0 };
        if (bootcfg_pxelinux_menu(&srv, s->ps, &b, err, sizeof err) < 0)
            cproblem(&c, "pxelinux.cfg/default: %s", err);
        template_buf_free(&b);
        if (bootcfg_grub_menu(&srv, s->ps, &b, err, sizeof err) < 0)
            cproblem(&c, "grub.cfg (generic): %s", err);
        template_buf_free(&b);
    }
    for (size_t i = 0; i < inventory_count(s->inv); i++) {
        const struct inv_host *h = inventory_host(s->inv, i);
        struct target t;
        if (target(r, s, BY_MAC, h->mac, NULL, 0, 0, &t) < 0)
            continue;
        for (int w = 0; w < ROLLOUT_WHAT_COUNT; w++) {
            if (w == ROLLOUT_KICKSTART && (!t.bh.profile || !t.bh.profile->ks))
                continue;
            struct template_buf b = { 0 };
            if (renderers[w](&t.srv, &t.bh, &b, err, sizeof err) < 0)
                cproblem(&c, "%s:%u: %s: %s: %s", r->hosts, h->line, h->hostname, what_names[w], err);
            template_buf_free(&b);
        }
    }
    snap_unref(r, s);
    return c.n;
}
