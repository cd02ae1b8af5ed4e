/* engine/server.c — see server.h.
 *
 * Threads: one worker per --threads, each owning one io loop and its own
 * instance of every service (SO_REUSEPORT spreads connections and datagrams
 * over them).  The main thread only waits for signals: SIGTERM/SIGINT start a
 * graceful stop (no new connections, in-flight responses finish, up to
 * STOP_DEADLINE_MS), a second signal stops at once. */
#include "engine/server.h"
#include "engine/dhcp_service.h" /* dhcp */
#include "engine/http_service.h"
#include "engine/inventory.h"    /* dhcp: reservations, --known-only */
#include "engine/options.h"
#include "engine/rollout.h"      /* rollout */
#include "engine/tftp_service.h" /* tftp */
#include "engine/ra_service.h"   /* ipv6-ra */
#include "engine/metrics.h"      /* tracking */
#include "engine/tracker.h"      /* tracking */
#include "engine/web.h"          /* tracking */
#include "io/loop.h"
#include "io/sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define STOP_DEADLINE_MS 10000

struct worker {
    int id;
    unsigned nworkers;
    const struct options *o;
    pthread_t thread;
    struct io_loop *loop;
    struct http_service *http;
    struct tftp_service *tftp;  /* NULL: TFTP off */
    struct dhcp_shared *dhcp_shared; /* dhcp: NULL: DHCP off */
    struct dhcp_service *dhcp;  /* dhcp */
    struct web *web;            /* tracking: the route, the done hook */
    struct web_worker *ww;      /* tracking: this worker's event streams and counters */
    const struct vfile_provider *tftp_vfiles; /* tracking: records TFTP stages, then the real provider */
    struct tracker *tracker;    /* tracking: TFTP transfer ends (bytes, timeouts, aborts) */
    atomic_int stopping;        /* 0 run, 1 drain, 2 abort */
    atomic_bool done;
    uint64_t drain_started_ms;
    int start_rc;
    char start_err[512];
    pthread_mutex_t *ready_mu;
    pthread_cond_t *ready_cv;
    int *ready_count;
};

static void worker_idle(void *arg)
{
    struct worker *w = arg;
    if (w->dhcp) /* dhcp: journal sync (group commit), then this turn's replies */
        dhcp_service_flush(w->dhcp);
    if (w->http)
        http_service_flush_log(w->http);
    if (w->tftp) /* tftp */
        tftp_service_idle(w->tftp); /* requests waiting on the socket, then the log */
    web_worker_idle(w->ww); /* tracking: events to the streams, counters to the metrics */
    int st = atomic_load(&w->stopping);
    if (!st)
        return;
    uint64_t now = io_loop_now_ms(w->loop);
    if (!w->drain_started_ms) {
        w->drain_started_ms = now;
        if (w->http)
            http_service_drain(w->http);
        if (w->tftp) /* tftp: no new requests, running transfers finish */
            tftp_service_drain(w->tftp);
    }
    if (w->http && (st == 2 || now - w->drain_started_ms > STOP_DEADLINE_MS))
        http_service_abort(w->http);
    if (w->tftp && (st == 2 || now - w->drain_started_ms > STOP_DEADLINE_MS)) /* tftp */
        tftp_service_abort(w->tftp);
    if ((!w->http || http_service_open_conns(w->http) == 0) &&
        (!w->tftp || tftp_service_open_transfers(w->tftp) == 0))
        io_loop_stop(w->loop);
}

static enum io_backend backend_of(const struct options *o)
{
    switch (o->backend) {
    case OPTIONS_BACKEND_URING: return IO_BACKEND_URING;
    case OPTIONS_BACKEND_EPOLL: return IO_BACKEND_EPOLL;
    default: return IO_BACKEND_AUTO;
    }
}

static void signal_ready(struct worker *w)
{
    pthread_mutex_lock(w->ready_mu);
    (*w->ready_count)++;
    pthread_cond_broadcast(w->ready_cv);
    pthread_mutex_unlock(w->ready_mu);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    const struct options *o = w->o;
    char why[256] = "";
    struct io_loop_config lc = {.backend = backend_of(o), .ring_entries = o->ring_entries};
    int rc = io_loop_new(&w->loop, &lc, why, sizeof(why));
    if (rc < 0) {
        snprintf(w->start_err, sizeof(w->start_err), "io loop: %s", why[0] ? why : strerror(-rc));
        w->start_rc = rc;
        signal_ready(w);
        return NULL;
    }
    if (w->id == 0)
        fprintf(stderr, "bootstorm: backend %s\n", why);
    struct http_service_config hc = {
        .listen_addr = htonl(o->listen), /* options keep host order */
        .port = o->http_port,
        .root = o->http_root,
        .index = o->http_index,
        .idle_timeout_s = (o->http_idle_timeout_ms + 999) / 1000,
        .header_timeout_s = (o->http_header_timeout_ms + 999) / 1000,
        .send_timeout_s = (o->http_send_timeout_ms + 999) / 1000,
        .max_conns = (o->max_conns + w->nworkers - 1) / w->nworkers,
        .chunk = (size_t)o->http_chunk,
        .congestion = strcmp(o->http_tcp_congestion, "system") == 0 ? NULL : o->http_tcp_congestion,
        .defer_accept_s = (o->http_defer_accept_ms + 999) / 1000,
        .quiet = o->quiet,
    };
    hc.route = web_route, hc.route_ctx = w->web; /* tracking: dashboard, API, metrics, then the rest */
    hc.on_done = web_http_done, hc.done_ctx = w->web;
    rc = http_service_start(&w->http, w->loop, &hc, w->start_err, sizeof(w->start_err));
    if (rc < 0) {
        w->start_rc = rc;
        signal_ready(w);
        io_loop_free(w->loop);
        return NULL;
    }
    if (options_tftp_enabled(o)) { /* tftp: one request socket per worker (SO_REUSEPORT) */
        struct tftp_service_config tc = {
            .listen_addr = htonl(o->listen),
            .port = o->tftp_port,
            .ports_lo = o->tftp_ports.lo,
            .ports_hi = o->tftp_ports.hi,
            .root = o->tftp_root,
            .blksize_max = o->tftp_blksize_max,
            .window_max = o->tftp_window_max,
            .timeout_ms = o->tftp_timeout_ms,
            .retries = o->tftp_retries,
            .max_transfers = (o->max_transfers + w->nworkers - 1) / w->nworkers,
            .allow_write = o->tftp_allow_write,
            .quiet = o->quiet,
        };
        tc.vfiles = w->tftp_vfiles; /* tracking */
        tc.on_done = tracker_tftp_done, tc.done_ctx = w->tracker; /* tracking: once per transfer end */
        rc = tftp_service_start(&w->tftp, w->loop, &tc, w->start_err, sizeof(w->start_err));
        if (rc < 0) {
            w->start_rc = rc;
            signal_ready(w);
            http_service_free(w->http);
            io_loop_free(w->loop);
            return NULL;
        }
    }
    if (w->dhcp_shared) { /* dhcp: one socket per worker on --dhcp-port (and 4011) */
        struct dhcp_service_config dc = {
            .shared = w->dhcp_shared, .worker = (unsigned)w->id, .nworkers = w->nworkers, .quiet = o->quiet,
        };
        rc = dhcp_service_start(&w->dhcp, w->loop, &dc, w->start_err, sizeof(w->start_err));
        if (rc < 0) {
            w->start_rc = rc;
            signal_ready(w);
            http_service_free(w->http);
            tftp_service_free(w->tftp);
            io_loop_free(w->loop);
            return NULL;
        }
    }
    w->ww = web_worker_new(w->web, (unsigned)w->id, w->loop, w->http, w->tftp); /* tracking (NULL: no memory, no streams) */
    io_loop_set_idle_hook(w->loop, worker_idle, w);
    signal_ready(w);
    rc = io_loop_run(w->loop);
    if (rc < 0)
        fprintf(stderr, "bootstorm: worker %d: loop failed: %s\n", w->id, strerror(-rc));
    web_worker_free(w->ww); /* tracking: before the loop goes */
    http_service_free(w->http);
    tftp_service_free(w->tftp); /* tftp */
    dhcp_service_free(w->dhcp); /* dhcp: sends what is still queued */
    struct io_loop *loop = w->loop;
    atomic_store(&w->done, true); /* main may still wake the loop: free it after join */
    (void)loop;
    return NULL;
}

static void report_problem(void *ctx, const char *problem)
{
    (void)ctx;
    fprintf(stderr, "bootstorm: %s\n", problem);
}

static void log_line(void *ctx, const char *line)
{
    (void)ctx;
    fprintf(stderr, "%s\n", line);
}

/* a profile's own loader (loader_bios / loader_efi64) for the DHCP replies */
static bool rollout_loader_hook(void *r, const uint8_t mac[6], bool efi64, char *out, size_t outlen)
{
    return rollout_loader(r, mac, efi64, out, outlen);
}

/* rollout's IP -> MAC resolver over the DHCP lease table (host byte order) */
static bool rollout_mac_for_ip(void *ctx, uint32_t ip, uint8_t mac[6])
{
    return dhcp_leases_mac_for_ip(ctx, ip, mac);
}

/* tracking: the install-once state shown by GET /api/hosts/ID */
static bool track_installed(void *ctx, const uint8_t mac[6]) { return rollout_installed(ctx, mac); }

/* Every connection and every TFTP transfer holds a descriptor: the soft limit
 * (often 1024) goes up to the hard one, as a storm of a few hundred machines
 * needs; when even that is below what the caps allow, one line says so. */
static void raise_nofile(const struct options *o)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    uint64_t need = (uint64_t)o->max_conns + (options_tftp_enabled(o) ? o->max_transfers : 0) + 256;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need)
        fprintf(stderr,
                "bootstorm: open-file limit %llu is below the %llu that --max-conns %u and --max-transfers %u "
                "may use: beyond it connections wait and TFTP requests queue (raise it: ulimit -n, "
                "LimitNOFILE=)\n",
                (unsigned long long)rl.rlim_cur, (unsigned long long)need, o->max_conns, o->max_transfers);
}

int server_run(const struct options *o)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* workers inherit the mask */
    signal(SIGPIPE, SIG_IGN);
    raise_nofile(o);

    /* Every worker binds with SO_REUSEPORT: refuse a port another server holds.
     * First of all, before any state is loaded: a refused server must neither
     * replay nor touch the state directory (nor spend seconds on a big journal). */
    {
        char perr[256];
        if (sock_probe_port(htonl(o->listen), o->http_port, SOCK_STREAM, perr, sizeof(perr)) < 0 ||
            (options_tftp_enabled(o) &&
             sock_probe_port(htonl(o->listen), o->tftp_port, SOCK_DGRAM, perr, sizeof(perr)) < 0) ||
            /* two DHCP servers with their own lease tables on one network hand out
             * the same address twice */
            (options_dhcp_enabled(o) &&
             (sock_probe_udp_dev(0, o->dhcp_port, o->interface, perr, sizeof(perr)) < 0 ||
              (o->proxy_dhcp && sock_probe_udp_dev(0, 4011, o->interface, perr, sizeof(perr)) < 0)))) {
            fprintf(stderr, "bootstorm: %s\n", perr);
            return 1;
        }
    }

    /* rollout (issue 5): inventory, profiles, per-host boot files and
     * kickstarts, install-once state; its inventory is the one DHCP and the
     * tracker use, so one reload (SIGHUP, POST /api/reload) updates all */
    struct rollout *rollout = NULL;
    if (o->hosts || o->profiles) {
        int rrc = rollout_create(&rollout, o, 0, report_problem, NULL);
        if (rrc < 0) {
            fprintf(stderr, "bootstorm: cannot start: %s\n",
                    rrc == -EINVAL ? "the inventory or profiles have problems (listed above)" : strerror(-rrc));
            return 1;
        }
        rollout_set_log(rollout, log_line, NULL);
    }
    struct vfile_provider rollout_vp = {0};
    if (rollout)
        rollout_vp = rollout_vfile_provider(rollout);

    /* dhcp: shared state (inventory, lease table, pools, journal replay) before the workers */
    struct inventory_holder *dhcp_inv = rollout ? rollout_inventory(rollout) : NULL;
    struct dhcp_shared *dhcp_shared = NULL;
    if (options_dhcp_enabled(o)) {
        char derr[OPTIONS_ERR_MAX];
        struct inventory *inv = NULL;
        if (!rollout && o->hosts && inventory_load(o->hosts, &inv, derr, sizeof(derr)) < 0) {
            fprintf(stderr, "bootstorm: %s\n", derr);
            return 1;
        }
        if (!rollout && o->hosts && !(dhcp_inv = inventory_holder_new(inv))) {
            fprintf(stderr, "bootstorm: out of memory\n");
            inventory_free(inv);
            return 1;
        }
        if (dhcp_shared_create(o, dhcp_inv, &dhcp_shared, derr, sizeof(derr)) < 0) {
            fprintf(stderr, "bootstorm: %s\n", derr);
            if (!rollout)
                inventory_holder_free(dhcp_inv);
            rollout_free(rollout);
            return 1;
        }
        if (rollout) { /* grub.cfg, /ks/ and iPXE find pool hosts by their lease */
            rollout_set_ip_resolver(rollout, rollout_mac_for_ip, dhcp_shared);
            dhcp_shared_set_loader_hook(dhcp_shared, rollout_loader_hook, rollout);
        }
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned n = o->threads ? o->threads : (unsigned)(ncpu > 0 ? ncpu : 1);
    /* tracking (issue 6): per-host progress, the API, /metrics and the
     * dashboard.  The tracker uses the DHCP inventory, else loads --hosts. */
    struct inventory_holder *track_inv = NULL;
    struct tracker *tracker = NULL;
    struct metrics *metrics = NULL;
    struct web *web = NULL;
    struct tracker_vfiles track_vf = {.inner = rollout ? &rollout_vp : NULL /* rollout */};
    struct vfile_provider track_vp = {.open = tracker_vfile_open, .ctx = &track_vf};
    {
        char terr[OPTIONS_ERR_MAX] = "out of memory";
        struct inventory *inv = NULL;
        if (!dhcp_inv && o->hosts && inventory_load(o->hosts, &inv, terr, sizeof(terr)) == 0 &&
            !(track_inv = inventory_holder_new(inv)))
            inventory_free(inv);
        struct tracker_config tkc = {.stall_after_ms = o->stall_after_ms, .state_dir = o->state_dir,
                                     .inventory = dhcp_inv ? dhcp_inv : track_inv};
        int trc = !dhcp_inv && o->hosts && !track_inv ? -EINVAL : tracker_create(&tracker, &tkc, terr, sizeof(terr));
        struct web_config wc = {.tracker = tracker, .next = rollout ? rollout_http_route : NULL, /* rollout */
                                .next_ctx = rollout, .installed = rollout ? track_installed : NULL,
                                .installed_ctx = rollout};
        if (trc == 0 && (!(metrics = wc.metrics = metrics_new(n, tracker, dhcp_shared)) || web_create(&web, &wc) < 0))
            trc = -ENOMEM, snprintf(terr, sizeof(terr), "out of memory");
        if (trc < 0) {
            fprintf(stderr, "bootstorm: %s\n", terr);
            metrics_free(metrics);
            tracker_free(tracker);
            inventory_holder_free(track_inv);
            dhcp_shared_destroy(dhcp_shared);
            if (!rollout)
                inventory_holder_free(dhcp_inv);
            rollout_free(rollout);
            return 1;
        }
        track_vf.tracker = tracker;
        if (dhcp_shared) {
            dhcp_shared_set_stage_hook(dhcp_shared, tracker_dhcp_hook, tracker);
            tracker_set_ip_resolver(tracker, tracker_dhcp_resolver, dhcp_shared);
        }
    }
    struct worker *ws = calloc(n, sizeof(*ws));
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
    int ready = 0;
    unsigned started = 0;
    int status = 0;
    for (unsigned i = 0; i < n; i++) {
        ws[i] = (struct worker){.id = (int)i, .nworkers = n, .o = o, .ready_mu = &mu, .ready_cv = &cv, .ready_count = &ready};
        ws[i].dhcp_shared = dhcp_shared; /* dhcp */
        ws[i].web = web, ws[i].tftp_vfiles = &track_vp, ws[i].tracker = tracker; /* tracking */
        if (pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]) != 0) {
            fprintf(stderr, "bootstorm: cannot start worker %u: %s\n", i, strerror(errno));
            status = 1;
            break;
        }
        started++;
    }
    pthread_mutex_lock(&mu);
    while (ready < (int)started)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    for (unsigned i = 0; i < started; i++) {
        if (ws[i].start_rc < 0) {
            fprintf(stderr, "bootstorm: %s\n", ws[i].start_err);
            status = 1;
            break;
        }
    }
    struct ra_service *ra = NULL; /* ipv6-ra: ends iPXE's wait for IPv6 autoconfiguration */
    if (status == 0 && o->ipv6_ra) {
        char rerr[256];
        struct ra_service_config rc = {.ifname = o->interface, .interval_s = (o->ipv6_ra_interval_ms + 999) / 1000,
                                       .log = log_line};
        if (ra_service_start(&ra, &rc, rerr, sizeof(rerr)) < 0) {
            fprintf(stderr, "bootstorm: %s\n", rerr);
            status = 1;
        }
    }
    if (status == 0) {
        char a[16];
        snprintf(a, sizeof(a), "%u.%u.%u.%u", o->listen >> 24, (o->listen >> 16) & 255, (o->listen >> 8) & 255,
                 o->listen & 255);
        char tftp_part[64] = ""; /* tftp */
        if (options_tftp_enabled(o))
            snprintf(tftp_part, sizeof(tftp_part), ", tftp on %s:%u", a, o->tftp_port);
        char dhcp_part[160] = ""; /* dhcp */
        if (dhcp_shared) {
            dhcp_part[0] = ',', dhcp_part[1] = ' ';
            dhcp_shared_describe(dhcp_shared, dhcp_part + 2, sizeof(dhcp_part) - 2);
        }
        fprintf(stderr, "bootstorm: serving http on %s:%u (%s)%s%s, %u workers\n", a, o->http_port,
                o->http_root ? o->http_root : "no root", tftp_part, dhcp_part, n);
        int stops = 0;
        while (stops < 2) {
            int sig = 0;
            if (sigwait(&set, &sig) != 0)
                continue;
            if (sig == SIGHUP) {
                char rerr[OPTIONS_ERR_MAX];
                if (!rollout)
                    fprintf(stderr, "bootstorm: SIGHUP: nothing to reload (no --hosts or --profiles)\n");
                else if (rollout_reload(rollout, rerr, sizeof(rerr)) < 0)
                    fprintf(stderr, "bootstorm: SIGHUP: reload refused, the old inventory stays: %s\n", rerr);
                else
                    fprintf(stderr, "bootstorm: SIGHUP: inventory and profiles reloaded\n");
                continue;
            }
            stops++;
            fprintf(stderr, "bootstorm: %s: %s\n", strsignal(sig),
                    stops == 1 ? "stopping (finishing in-flight responses)" : "stopping now");
            for (unsigned i = 0; i < started; i++) {
                if (ws[i].start_rc == 0) {
                    atomic_store(&ws[i].stopping, stops);
                    io_loop_wake(ws[i].loop);
                }
            }
            if (stops == 1) {
                /* wait for the workers to drain, or for a second signal */
                struct timespec ts = {0, 200 * 1000000};
                for (;;) {
                    unsigned running = 0;
                    for (unsigned i = 0; i < started; i++)
                        running += ws[i].start_rc == 0 && !atomic_load(&ws[i].done);
                    if (!running) {
                        stops = 2;
                        break;
                    }
                    if (sigtimedwait(&set, NULL, &ts) > 0) {
                        fprintf(stderr, "bootstorm: second signal: stopping now\n");
                        for (unsigned i = 0; i < started; i++)
                            if (ws[i].start_rc == 0 && !atomic_load(&ws[i].done)) {
                                atomic_store(&ws[i].stopping, 2);
                                io_loop_wake(ws[i].loop);
                            }
                        stops = 2;
                        break;
                    }
                }
            }
        }
    } else {
        for (unsigned i = 0; i < started; i++)
            if (ws[i].start_rc == 0) {
                atomic_store(&ws[i].stopping, 2);
                io_loop_wake(ws[i].loop);
            }
    }
    ra_service_stop(ra); /* ipv6-ra */
    for (unsigned i = 0; i < started; i++) {
        pthread_join(ws[i].thread, NULL);
        if (ws[i].start_rc == 0)
            io_loop_free(ws[i].loop);
    }
    free(ws);
    web_free(web); /* tracking: after every worker is gone; the tracker writes hosts.state */
    metrics_free(metrics);
    if (dhcp_shared)
        dhcp_shared_set_stage_hook(dhcp_shared, NULL, NULL);
    tracker_free(tracker);
    inventory_holder_free(track_inv);
    dhcp_shared_destroy(dhcp_shared); /* dhcp: after every worker is gone */
    if (!rollout)
        inventory_holder_free(dhcp_inv);
    rollout_free(rollout); /* rollout: after every worker is gone */
    if (status == 0)
        fprintf(stderr, "bootstorm: stopped\n");
    return status;
}
