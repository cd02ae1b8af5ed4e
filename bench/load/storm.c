/* bench/load/storm.c — `bootstorm-load storm`: N machines through the rollout
 * flow of DESIGN.md, all from one thread.
 *
 * Each machine is a small state machine that advances from the callbacks of
 * the DHCP relay socket, its TFTP transfers and its HTTP connections:
 *
 *   dhcp     DISCOVER/OFFER/REQUEST/ACK as its PXE ROM (options 60, 93, 94, 97,
 *            client-id 01+MAC), through the relay socket (giaddr)
 *   tftp     the boot file from the ACK, ldlinux.c32 after PXELINUX, then the
 *            configuration in PXELINUX's search order (a missing one is an
 *            ERROR 1, expected); the chosen entry names kernel, initrd, ks=
 *   kernel   \ over TFTP (or HTTP when the entry names an http:// URL), with
 *   initrd   / the blksize/windowsize a ROM asks, from the leased address
 *   dhcp2    the installer DHCPs again (vendor class "d-i", an RFC 4361
 *            client-id) and must get the same address
 *   ks       GET the kickstart (ks= from the entry, else /ks/{mac}; a fallback
 *            path on 404); it holds the %post callback's token
 *   stage2   GET install.img
 *   rpms     GET Packages/LIST, then every package over a few keep-alive
 *            connections at once
 *   callback POST /api/hosts/{mac}/installed?token=...
 *
 * A machine that fails a stage stops there and is never counted as booted. */
#include "bench/load/bootcfg.h"
#include "bench/load/dhcpc.h"
#include "bench/load/ev.h"
#include "bench/load/httpc.h"
#include "bench/load/load.h"
#include "bench/load/opts.h"
#include "bench/load/report.h"
#include "bench/load/tftpc.h"
#include "bench/load/verify.h"

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAR_MAX 16              /* HTTP connections per machine */
#define CFG_KEEP (64u << 10)    /* boot configuration bytes kept */
#define KS_KEEP (1u << 20)      /* kickstart bytes kept */
#define LIST_KEEP (8u << 20)    /* package list bytes kept */

enum arch { ARCH_BIOS, ARCH_EFI64 };

struct storm_cfg {
    unsigned machines;
    uint8_t mac_base[6];
    unsigned stages; /* 1 << enum report_stage */
    double ramp_s;
    unsigned concurrency;
    enum arch arch;
    uint32_t server, dhcp_server, tftp_server, giaddr, client_base;
    uint16_t tftp_port, http_port, dhcp_port, relay_port;
    bool bind_leases, tsize, config_lookup, require_config, follow_config_host, udp_gro;
    uint32_t blksize, windowsize;
    uint32_t tftp_timeout_ms, tftp_max_timeout_ms, tftp_retries, tftp_dally_ms;
    uint32_t dhcp_timeout_ms, dhcp_retries;
    const char *boot_file, *loader_extra, *kernel, *initrd, *grub_prefix;
    const char *ks_url, *ks_fallback, *stage2, *rpm_list, *callback_url;
    unsigned rpm_parallel;
    uint32_t http_timeout_ms;
    enum verify_kind verify;
    const char *tree;
    char tftp_tree[4096], http_tree[4096];
    bool have_tree;
    struct report_out out;
    int progress;
    enum load_io io;
};

enum mstate { M_WAITING, M_RUNNING, M_BOOTED, M_FAILED };
enum dstate { DS_IDLE, DS_SELECTING, DS_REQUESTING };

struct machine;
/* One HTTP connection of a machine and the request it carries. */
struct mreq {
    struct httpc_conn *conn;
    struct httpc_target tgt;
    struct httpc_req r;
    struct machine *m;
    unsigned slot;
    char path[1024];
};

struct rpmlist {
    char *body;
    size_t len;
    char **paths;
    unsigned n;
};

struct machine {
    unsigned idx;
    uint8_t mac[6], uuid[16];
    char macs[18], hostname[16];
    enum mstate state;
    struct report_machine rm; /* timeline, per stage */
    enum report_stage cur;
    uint32_t ip;       /* network order; 0 until leased (or assigned) */
    uint32_t tftp_srv; /* next-server from the offer, 0: none */
    char bootfile[128];
    /* DHCP */
    enum dstate ds;
    enum dhcpc_role role;
    uint32_t xid, offered, server_id;
    unsigned dtries;
    uint64_t drto_ns;
    struct ev_timer timer;
    /* TFTP */
    struct tftpc *tx;
    unsigned tstep, cfg_tried;
    struct bootcfg cfg;
    bool have_cfg;
    /* HTTP: rpm_parallel connection slots, allocated while the machine runs */
    struct mreq *req;
    bool ks_fallback_tried;
    char token[160];
    struct rpmlist *rl;
    bool rl_own;
    unsigned rpm_next, rpm_done, rpm_inflight;
};

static struct {
    struct storm_cfg c;
    struct machine *m;
    unsigned next, inflight, finished, booted, failed;
    unsigned running[REPORT_STAGES];
    uint64_t t0;
    struct ev_timer sched, tick;
    struct dhcpc_relay relay;
    bool relay_open;
    uint32_t xid_salt;
    struct rpmlist *shared_list;
    bool bind_fallback; /* leased addresses are not local: sockets left unbound */
    uint64_t last_bytes, last_tick_ns;
    double rate_mbps;
    volatile sig_atomic_t interrupted;
    struct report_notes notes;
    double cpu0;
    struct httpc_target http_default;
} S;

/* ---- helpers ---- */

static bool stage_on(enum report_stage s) { return S.c.stages & (1u << s); }

static uint32_t tftp_server_of(const struct machine *m)
{
    if (S.c.tftp_server)
        return S.c.tftp_server;
    return m->tftp_srv ? m->tftp_srv : S.c.server;
}

static uint32_t bind_addr_of(const struct machine *m)
{
    return S.c.bind_leases && !S.bind_fallback ? m->ip : 0;
}

/* Expands {mac} {mac-} {macx} {ip} {hostname} {idx} {token} in tpl. */
static void expand(const struct machine *m, const char *tpl, char *out, size_t cap)
{
    size_t k = 0;
    char ip[16];
    load_ip_str(m->ip, ip);
    char macd[18], macx[13], idx[12];
    snprintf(macd, sizeof(macd), "%02x-%02x-%02x-%02x-%02x-%02x", m->mac[0], m->mac[1], m->mac[2], m->mac[3],
             m->mac[4], m->mac[5]);
    snprintf(macx, sizeof(macx), "%02x%02x%02x%02x%02x%02x", m->mac[0], m->mac[1], m->mac[2], m->mac[3], m->mac[4],
             m->mac[5]);
    snprintf(idx, sizeof(idx), "%u", m->idx);
    static const char *keys[] = {"{mac}", "{mac-}", "{macx}", "{ip}", "{hostname}", "{idx}", "{token}"};
    const char *vals[] = {m->macs, macd, macx, ip, m->hostname, idx, m->token};
    for (const char *p = tpl; *p && k + 1 < cap;) {
        bool hit = false;
        for (unsigned i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
            size_t kl = strlen(keys[i]);
            if (!strncmp(p, keys[i], kl)) {
                size_t vl = strlen(vals[i]);
                if (k + vl >= cap)
                    vl = cap - 1 - k;
                memcpy(out + k, vals[i], vl);
                k += vl;
                p += kl;
                hit = true;
                break;
            }
        }
        if (!hit)
            out[k++] = *p++;
    }
    out[k] = 0;
}

/* HTTP path → the local reference under the http tree (query dropped). */
static const struct verify_ref *http_ref(const char *path)
{
    if (!S.c.have_tree)
        return NULL;
    char p[1024];
    snprintf(p, sizeof(p), "%s", path);
    char *q = strchr(p, '?');
    if (q)
        *q = 0;
    return verify_ref_get(S.c.http_tree, p[0] == '/' ? p + 1 : p, S.c.verify);
}

static const struct verify_ref *tftp_ref(const char *path)
{
    if (!S.c.have_tree)
        return NULL;
    while (*path == '/')
        path++;
    return verify_ref_get(S.c.tftp_tree, path, S.c.verify);
}

/* ---- machine lifecycle ---- */

static void m_next(struct machine *m, int from);
static void sched_more(void);

static void m_release(struct machine *m)
{
    ev_timer_cancel(&m->timer);
    if (m->tx) {
        tftpc_abort(m->tx);
        m->tx = NULL;
    }
    for (unsigned i = 0; m->req && i < S.c.rpm_parallel; i++) {
        httpc_conn_free(m->req[i].conn);
        httpc_req_clear(&m->req[i].r);
    }
    free(m->req);
    m->req = NULL;
    if (m->rl_own && m->rl) {
        free(m->rl->body);
        free(m->rl->paths);
        free(m->rl);
    }
    m->rl = NULL;
    m->ds = DS_IDLE;
}

static void m_finish(struct machine *m, bool ok)
{
    m_release(m);
    m->state = ok ? M_BOOTED : M_FAILED;
    m->rm.end_ns = ev_now();
    m->rm.booted = ok;
    S.inflight--;
    S.finished++;
    if (ok)
        S.booted++;
    else
        S.failed++;
    sched_more();
}

static void stage_start(struct machine *m, enum report_stage s)
{
    m->cur = s;
    m->rm.st[s].state = REPORT_ST_RUNNING;
    m->rm.st[s].start_ns = ev_now();
    S.running[s]++;
}

static void stage_ok(struct machine *m)
{
    enum report_stage s = m->cur;
    m->rm.st[s].state = REPORT_ST_OK;
    m->rm.st[s].end_ns = ev_now();
    S.running[s]--;
    m_next(m, (int)s + 1);
}

static void stage_skip(struct machine *m, const char *note)
{
    enum report_stage s = m->cur;
    m->rm.st[s].state = REPORT_ST_SKIPPED;
    m->rm.st[s].end_ns = ev_now();
    S.running[s]--;
    report_note(&S.notes, s, note);
    m_next(m, (int)s + 1);
}

static void stage_fail(struct machine *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void stage_fail(struct machine *m, const char *fmt, ...)
{
    enum report_stage s = m->cur;
    m->rm.st[s].state = REPORT_ST_FAILED;
    m->rm.st[s].end_ns = ev_now();
    S.running[s]--;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->rm.reason, sizeof(m->rm.reason), fmt, ap);
    va_end(ap);
    m->rm.failed_stage = (int)s;
    m_finish(m, false);
}

static void dhcp_begin(struct machine *m, enum dhcpc_role role);
static void tftp_step(struct machine *m);
static void fetch_file(struct machine *m, const char *path);
static void ks_begin(struct machine *m);
static void http_get(struct machine *m, unsigned slot, const struct httpc_target *t, const char *path,
                     const char *method, size_t keep, const struct verify_ref *ref);
static void rpms_begin(struct machine *m);
static void callback_begin(struct machine *m);

static void assign_address(struct machine *m)
{
    if (!m->ip)
        m->ip = load_ip_nth(S.c.client_base, m->idx);
}

static void m_next(struct machine *m, int from)
{
    for (int s = from; s < REPORT_STAGES; s++) {
        if (!stage_on((enum report_stage)s))
            continue;
        stage_start(m, (enum report_stage)s);
        switch ((enum report_stage)s) {
        case REPORT_DHCP: dhcp_begin(m, DHCPC_FIRMWARE); return;
        case REPORT_TFTP:
            assign_address(m);
            m->tstep = 0;
            m->cfg_tried = 0;
            tftp_step(m);
            return;
        case REPORT_KERNEL:
        case REPORT_INITRD: {
            assign_address(m);
            const char *p = s == REPORT_KERNEL ? (m->have_cfg && m->cfg.kernel[0] ? m->cfg.kernel : S.c.kernel)
                                               : (m->have_cfg && m->cfg.initrd[0] ? m->cfg.initrd : S.c.initrd);
            fetch_file(m, p);
            return;
        }
        case REPORT_DHCP2: dhcp_begin(m, DHCPC_INSTALLER); return;
        case REPORT_KS: assign_address(m); ks_begin(m); return;
        case REPORT_STAGE2:
            assign_address(m);
            http_get(m, 0, &S.http_default, S.c.stage2, "GET", 0, http_ref(S.c.stage2));
            return;
        case REPORT_RPMS: assign_address(m); rpms_begin(m); return;
        case REPORT_CALLBACK: assign_address(m); callback_begin(m); return;
        default: break;
        }
    }
    m_finish(m, true);
}

static void m_start(struct machine *m)
{
    m->state = M_RUNNING;
    m->rm.start_ns = ev_now();
    S.inflight++;
    m_next(m, 0);
}

static uint64_t arrival_ns(unsigned i)
{
    if (S.c.ramp_s <= 0 || S.c.machines < 2)
        return S.t0;
    return S.t0 + (uint64_t)(S.c.ramp_s * 1e9 * (double)i / (double)(S.c.machines - 1));
}

static void sched_more(void)
{
    uint64_t now = ev_now();
    while (S.next < S.c.machines && (!S.c.concurrency || S.inflight < S.c.concurrency) && arrival_ns(S.next) <= now)
        m_start(&S.m[S.next++]);
    if (S.next < S.c.machines && (!S.c.concurrency || S.inflight < S.c.concurrency))
        ev_timer_arm_at(&S.sched, arrival_ns(S.next));
}

static void on_sched(struct ev_timer *t) { sched_more(); }

/* ---- DHCP ---- */

static uint32_t make_xid(const struct machine *m, enum dhcpc_role role)
{
    return (S.xid_salt & 0xffe00000u) | (uint32_t)m->idx << 1 | (role == DHCPC_INSTALLER);
}

static void dhcp_send(struct machine *m, uint8_t type)
{
    struct dhcpc_identity id = {.arch = S.c.arch == ARCH_EFI64 ? 7 : 0, .role = m->role};
    memcpy(id.mac, m->mac, 6);
    memcpy(id.uuid, m->uuid, 16);
    uint8_t buf[600];
    size_t len;
    uint64_t secs = (ev_now() - m->rm.st[m->cur].start_ns) / EV_S;
    int rc = dhcpc_build(buf, sizeof(buf), type, m->xid, &id, S.c.giaddr, type == DHCP_REQUEST ? m->offered : 0,
                         type == DHCP_REQUEST ? m->server_id : 0, (uint16_t)(secs > 65535 ? 65535 : secs), &len);
    if (rc != DHCP_OK) {
        stage_fail(m, "cannot build a %s: %s", dhcp_msg_type_name(type), dhcp_strerror(rc));
        return;
    }
    dhcpc_relay_send(&S.relay, buf, len); /* a refused send is a lost packet: the timer resends */
    ev_timer_arm(&m->timer, m->drto_ns);
}

static void dhcp_begin(struct machine *m, enum dhcpc_role role)
{
    m->role = role;
    m->xid = make_xid(m, role);
    m->ds = DS_SELECTING;
    m->dtries = 0;
    m->offered = m->server_id = 0;
    m->drto_ns = (uint64_t)S.c.dhcp_timeout_ms * EV_MS;
    dhcp_send(m, DHCP_DISCOVER);
}

static void on_dhcp_timer(struct ev_timer *t)
{
    struct machine *m = t->owner;
    if (m->ds == DS_IDLE)
        return;
    m->rm.st[m->cur].timeouts++;
    if (m->dtries >= S.c.dhcp_retries) {
        stage_fail(m, "no %s after %u retransmissions", m->ds == DS_SELECTING ? "OFFER" : "ACK", m->dtries);
        return;
    }
    m->dtries++;
    m->rm.st[m->cur].retries++;
    m->drto_ns *= 2;
    if (m->drto_ns > 8 * EV_S)
        m->drto_ns = 8 * EV_S;
    dhcp_send(m, m->ds == DS_SELECTING ? DHCP_DISCOVER : DHCP_REQUEST);
}

static void on_dhcp_reply(void *arg, const struct dhcp_msg *msg)
{
    uint32_t idx = (msg->xid & 0x1fffffu) >> 1;
    if ((msg->xid & 0xffe00000u) != (S.xid_salt & 0xffe00000u) || idx >= S.c.machines) {
        report_note(&S.notes, REPORT_DHCP, "replies with an xid we never sent (ignored)");
        return;
    }
    struct machine *m = &S.m[idx];
    if (m->ds == DS_IDLE || msg->xid != m->xid)
        return; /* a late duplicate (we retransmitted) */
    if (msg->hlen != 6 || memcmp(msg->chaddr, m->mac, 6)) {
        report_note(&S.notes, m->cur, "a reply whose chaddr is not the requester's (ignored)");
        return;
    }
    char a[16], b[16];
    if (msg->msg_type == DHCP_OFFER && m->ds == DS_SELECTING) {
        if (!msg->yiaddr) {
            report_note(&S.notes, m->cur, "an OFFER without yiaddr (ignored)");
            return;
        }
        m->offered = msg->yiaddr;
        if (!dhcp_get_server_id(msg, &m->server_id) || !m->server_id) {
            stage_fail(m, "OFFER without a server identifier (option 54, RFC 2131 §4.3.1)");
            return;
        }
        if (m->role == DHCPC_FIRMWARE) {
            /* boot file: the BOOTP 'file' field, else option 67; next-server: siaddr, else 66 */
            size_t l = 0;
            const uint8_t *o67 = dhcp_get_option(msg, DHCP_OPT_BOOTFILE, &l);
            if (msg->file && msg->file_len)
                snprintf(m->bootfile, sizeof(m->bootfile), "%.*s", (int)msg->file_len, msg->file);
            else if (o67 && l)
                snprintf(m->bootfile, sizeof(m->bootfile), "%.*s", (int)l, (const char *)o67);
            m->tftp_srv = msg->siaddr;
            const uint8_t *o66 = dhcp_get_option(msg, DHCP_OPT_TFTP_SERVER, &l);
            char s66[64];
            uint32_t ip66;
            if (!m->tftp_srv && o66 && l < sizeof(s66)) {
                memcpy(s66, o66, l);
                s66[l] = 0;
                if (load_parse_ip(s66, &ip66))
                    m->tftp_srv = ip66;
            }
        }
        m->ds = DS_REQUESTING;
        m->dtries = 0;
        m->drto_ns = (uint64_t)S.c.dhcp_timeout_ms * EV_MS;
        dhcp_send(m, DHCP_REQUEST);
        return;
    }
    if (msg->msg_type == DHCP_ACK && m->ds == DS_REQUESTING) {
        ev_timer_cancel(&m->timer);
        m->ds = DS_IDLE;
        if (msg->yiaddr != m->offered) {
            stage_fail(m, "ACK for %s, the OFFER was %s", load_ip_str(msg->yiaddr, a), load_ip_str(m->offered, b));
            return;
        }
        if (m->role == DHCPC_INSTALLER && m->ip && stage_on(REPORT_DHCP) && msg->yiaddr != m->ip) {
            stage_fail(m, "the installer got %s, the firmware had %s (a second lease for one MAC)",
                       load_ip_str(msg->yiaddr, a), load_ip_str(m->ip, b));
            return;
        }
        m->ip = msg->yiaddr;
        stage_ok(m);
        return;
    }
    if (msg->msg_type == DHCP_NAK && m->ds == DS_REQUESTING) {
        size_t l = 0;
        const uint8_t *txt = dhcp_get_option(msg, DHCP_OPT_MESSAGE, &l);
        m->rm.st[m->cur].retries++;
        if (++m->dtries > S.c.dhcp_retries) {
            stage_fail(m, "NAK for %s%s%.*s", load_ip_str(m->offered, a), txt ? ": " : "", txt ? (int)l : 0,
                       txt ? (const char *)txt : "");
            return;
        }
        m->ds = DS_SELECTING; /* RFC 2131 §4.4.1: back to INIT */
        m->drto_ns = (uint64_t)S.c.dhcp_timeout_ms * EV_MS;
        dhcp_send(m, DHCP_DISCOVER);
    }
}

/* ---- TFTP ---- */

static void tftp_done(void *arg, struct tftpc_result *r);

static void tftp_fetch(struct machine *m, const char *file, bool keep)
{
    if (!S.c.tftp_server && m->tftp_srv && m->tftp_srv != S.c.server && m->cur == REPORT_TFTP && m->tstep == 0) {
        char a[16], note[96];
        snprintf(note, sizeof(note), "TFTP from the OFFER's next-server %s, not --server (--tftp-server overrides)",
                 load_ip_str(m->tftp_srv, a));
        report_note(&S.notes, REPORT_TFTP, note);
    }
    struct tftpc_params p = {
        .server = {.sin_family = AF_INET, .sin_port = htons(S.c.tftp_port), .sin_addr.s_addr = tftp_server_of(m)},
        .bind_addr = bind_addr_of(m),
        .file = file,
        .blksize = S.c.blksize,
        .windowsize = S.c.windowsize,
        .tsize = S.c.tsize,
        .timeout_ms = S.c.tftp_timeout_ms,
        .max_timeout_ms = S.c.tftp_max_timeout_ms,
        .retries = S.c.tftp_retries,
        .dally_ms = S.c.tftp_dally_ms,
        .verify = S.c.verify,
        .ref = keep ? NULL : tftp_ref(file),
        .keep_max = keep ? CFG_KEEP : 0,
        .udp_gro = S.c.udp_gro,
    };
    char why[160];
    m->tx = tftpc_start(&p, tftp_done, m, why, sizeof(why));
    if (!m->tx && p.bind_addr && S.c.bind_leases && strstr(why, "bind")) {
        /* the leases are not local addresses (a real subnet): go on unbound */
        S.bind_fallback = true;
        report_note(&S.notes, m->cur, "leased addresses are not local: TFTP/HTTP sockets not bound to them");
        p.bind_addr = 0;
        m->tx = tftpc_start(&p, tftp_done, m, why, sizeof(why));
    }
    if (!m->tx)
        stage_fail(m, "TFTP %s: %s", file, why);
}

/* The loader's directory ("" or "dir/"): PXELINUX looks for its files there. */
static void loader_dir(const char *boot, char *out, size_t cap)
{
    const char *s = strrchr(boot, '/');
    size_t n = s ? (size_t)(s - boot + 1) : 0;
    while (n && *boot == '/') {
        boot++;
        n--;
    }
    snprintf(out, cap, "%.*s", (int)n, boot);
}

static const char *boot_file(const struct machine *m)
{
    if (m->bootfile[0])
        return m->bootfile;
    if (S.c.boot_file)
        return S.c.boot_file;
    return S.c.arch == ARCH_EFI64 ? "grubx64.efi" : "pxelinux.0";
}

static bool is_pxelinux(const char *boot)
{
    const char *b = strrchr(boot, '/');
    b = b ? b + 1 : boot;
    return strstr(b, "pxelinux") != NULL;
}

/* tstep 0: boot file; 1: loader extras (PXELINUX: ldlinux.c32); 2..: configuration names. */
static void tftp_step(struct machine *m)
{
    const char *boot = boot_file(m);
    char dir[BOOTCFG_PATH_MAX];
    loader_dir(boot, dir, sizeof(dir));
    if (m->tstep == 0) {
        tftp_fetch(m, boot, false);
        return;
    }
    if (m->tstep == 1) {
        const char *extra = S.c.loader_extra;
        if (!extra)
            extra = is_pxelinux(boot) ? "ldlinux.c32" : "";
        if (*extra && strcmp(extra, "none")) {
            char path[BOOTCFG_PATH_MAX * 2];
            snprintf(path, sizeof(path), "%s%s", dir, extra);
            tftp_fetch(m, path, false);
            return;
        }
        m->tstep = 2;
    }
    if (!S.c.config_lookup) {
        stage_ok(m);
        return;
    }
    static char names[BOOTCFG_NAMES_MAX][BOOTCFG_PATH_MAX];
    bool grub = !is_pxelinux(boot) && S.c.arch == ARCH_EFI64;
    unsigned n = bootcfg_lookup_names(grub ? BOOTCFG_GRUB : BOOTCFG_PXELINUX, grub ? S.c.grub_prefix : dir, m->mac,
                                      m->uuid, m->ip, names);
    unsigned k = m->tstep - 2;
    if (k >= n) {
        if (S.c.require_config) {
            stage_fail(m, "no boot configuration: all %u names answered ERROR 1 (last %s)", n, names[n - 1]);
            return;
        }
        report_note(&S.notes, REPORT_TFTP, "no boot configuration found: kernel/initrd from --kernel/--initrd");
        stage_ok(m);
        return;
    }
    tftp_fetch(m, names[k], true);
}

static void account_tftp(struct machine *m, const struct tftpc_result *r)
{
    struct report_mstage *st = &m->rm.st[m->cur];
    st->bytes += r->bytes;
    st->retries += r->retransmits;
    st->timeouts += r->timeouts;
    st->requests++;
}

static void tftp_done(void *arg, struct tftpc_result *r)
{
    struct machine *m = arg;
    m->tx = NULL;
    account_tftp(m, r);
    if (m->cur == REPORT_TFTP && m->tstep >= 2) { /* configuration lookup */
        m->cfg_tried++;
        if (r->status == TFTPC_NOT_FOUND) {
            m->tstep++;
            tftp_step(m);
            return;
        }
        if (r->status != TFTPC_OK) {
            stage_fail(m, "boot configuration: %s (%s)", r->reason, tftpc_status_name(r->status));
            return;
        }
        const char *boot = boot_file(m);
        bool grub = !is_pxelinux(boot) && S.c.arch == ARCH_EFI64;
        int rc = grub ? bootcfg_parse_grub((const char *)r->kept, r->kept_len, &m->cfg)
                      : bootcfg_parse_pxelinux((const char *)r->kept, r->kept_len, &m->cfg);
        if (rc != BOOTCFG_OK) {
            stage_fail(m, "boot configuration (%zu bytes) has nothing to boot", r->kept_len);
            return;
        }
        if (m->cfg.localboot) {
            stage_fail(m, "boot configuration says \"%s\": boot from local disk (already installed?)", m->cfg.label);
            return;
        }
        m->have_cfg = true;
        /* relative paths are relative to the loader's directory (PXELINUX) */
        char dir[BOOTCFG_PATH_MAX];
        loader_dir(boot, dir, sizeof(dir));
        if (dir[0] && !grub) {
            char *paths[2] = {m->cfg.kernel, m->cfg.initrd};
            size_t dl = strlen(dir);
            for (int i = 0; i < 2; i++) {
                size_t pl = strlen(paths[i]);
                if (pl && strncmp(paths[i], "http://", 7) && dl + pl < BOOTCFG_PATH_MAX) {
                    memmove(paths[i] + dl, paths[i], pl + 1);
                    memcpy(paths[i], dir, dl);
                }
            }
        }
        stage_ok(m);
        return;
    }
    if (r->status != TFTPC_OK) {
        stage_fail(m, "TFTP: %s", r->reason);
        return;
    }
    if (m->cur == REPORT_TFTP) {
        m->tstep++;
        tftp_step(m);
        return;
    }
    stage_ok(m); /* kernel or initrd */
}

/* ---- HTTP ---- */

static void http_done(void *arg, struct httpc_req *r);

/* An http:// URL from the boot configuration: its own host, or ours with
 * --follow-config-host no (when the server names an address this host
 * cannot reach). */
static bool config_url(const char *url, struct httpc_target *t, char *path, size_t cap, char *why, size_t whylen)
{
    if (!httpc_parse_url(url, t, path, cap, why, whylen))
        return false;
    if (!S.c.follow_config_host)
        *t = S.http_default;
    return true;
}

/* kernel/initrd: TFTP, or HTTP when the boot entry names an http:// URL */
static void fetch_file(struct machine *m, const char *path)
{
    if (strncmp(path, "http://", 7)) {
        tftp_fetch(m, path, false);
        return;
    }
    struct httpc_target t;
    char url[1024], p[1024], why[160];
    expand(m, path, url, sizeof(url));
    if (!config_url(url, &t, p, sizeof(p), why, sizeof(why))) {
        stage_fail(m, "%s", why);
        return;
    }
    http_get(m, 0, &t, p, "GET", 0, http_ref(p));
}

static bool same_target(const struct httpc_target *a, const struct httpc_target *b)
{
    return a->server.sin_addr.s_addr == b->server.sin_addr.s_addr && a->server.sin_port == b->server.sin_port &&
           a->bind_addr == b->bind_addr && !strcmp(a->host, b->host);
}

static void http_get(struct machine *m, unsigned slot, const struct httpc_target *t0, const char *path,
                     const char *method, size_t keep, const struct verify_ref *ref)
{
    struct httpc_target t = *t0;
    t.bind_addr = bind_addr_of(m);
    if (!m->req && !(m->req = calloc(S.c.rpm_parallel, sizeof(*m->req)))) {
        stage_fail(m, "out of memory");
        return;
    }
    struct mreq *q = &m->req[slot];
    if (q->conn && !same_target(&q->tgt, &t)) {
        httpc_conn_free(q->conn);
        q->conn = NULL;
    }
    if (!q->conn) {
        q->conn = httpc_conn_new(&t);
        q->tgt = t;
        if (!q->conn) {
            stage_fail(m, "out of memory");
            return;
        }
    }
    httpc_req_clear(&q->r);
    q->m = m;
    q->slot = slot;
    snprintf(q->path, sizeof(q->path), "%s", path);
    q->r.method = method;
    q->r.path = q->path;
    q->r.extra_headers = NULL;
    q->r.body = NULL;
    q->r.body_len = 0;
    q->r.close = false;
    q->r.expect_status = 0;
    q->r.keep_max = keep;
    q->r.verify = keep ? VERIFY_NONE : S.c.verify;
    q->r.ref = ref;
    q->r.timeout_ms = S.c.http_timeout_ms;
    q->r.done = http_done;
    q->r.arg = q;
    httpc_request(q->conn, &q->r);
}

static void account_http(struct machine *m, const struct httpc_req *r)
{
    struct report_mstage *st = &m->rm.st[m->cur];
    st->bytes += r->received;
    st->retries += r->retries;
    st->requests++;
    if (r->status == HTTPC_TIMEOUT)
        st->timeouts++;
}

/* "installed?token=XYZ" anywhere in the kickstart: the %post callback's token. */
static bool find_token(const char *body, char *out, size_t cap)
{
    const char *p = body ? strstr(body, "installed?token=") : NULL;
    if (!p)
        return false;
    p += strlen("installed?token=");
    size_t k = 0;
    while (p[k] && !strchr(" \t\r\n\"'&;)<>`|", p[k]) && k + 1 < cap) {
        out[k] = p[k];
        k++;
    }
    out[k] = 0;
    return k > 0;
}

static void ks_begin(struct machine *m)
{
    char path[1024];
    struct httpc_target t = S.http_default;
    const char *ks = m->have_cfg ? m->cfg.ks : "";
    m->ks_fallback_tried = false;
    if (!strncmp(ks, "http://", 7)) {
        char why[160];
        char expanded[BOOTCFG_PATH_MAX * 2];
        expand(m, ks, expanded, sizeof(expanded));
        if (!config_url(expanded, &t, path, sizeof(path), why, sizeof(why))) {
            stage_fail(m, "kickstart URL from the boot entry: %s", why);
            return;
        }
    } else if (ks[0] == '/') {
        expand(m, ks, path, sizeof(path));
    } else {
        expand(m, S.c.ks_url, path, sizeof(path));
    }
    http_get(m, 0, &t, path, "GET", KS_KEEP, NULL);
}

static struct rpmlist *parse_list(const char *body, size_t len)
{
    struct rpmlist *l = calloc(1, sizeof(*l));
    if (!l || !(l->body = malloc(len + 1))) {
        free(l);
        return NULL;
    }
    memcpy(l->body, body, len);
    l->body[len] = 0;
    l->len = len;
    unsigned cap = 0;
    for (char *s = l->body, *e; *s; s = e) {
        e = strchr(s, '\n');
        if (e)
            *e++ = 0;
        else
            e = s + strlen(s);
        size_t n = strlen(s);
        while (n && (s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
            s[--n] = 0;
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s || *s == '#')
            continue;
        if (l->n == cap) {
            cap = cap ? cap * 2 : 64;
            char **np = realloc(l->paths, cap * sizeof(*np));
            if (!np) {
                free(l->paths);
                free(l->body);
                free(l);
                return NULL;
            }
            l->paths = np;
        }
        l->paths[l->n++] = s;
    }
    return l;
}

/* The package list, shared by every machine that got the same bytes. */
static struct rpmlist *list_for(struct machine *m, const struct httpc_req *r)
{
    const char *body = r->kept ? (const char *)r->kept : "";
    if (S.shared_list && S.shared_list->len == r->kept_len && !memcmp(S.shared_list->body, body, r->kept_len))
        return S.shared_list;
    struct rpmlist *l = parse_list(body, r->kept_len);
    if (!l)
        return NULL;
    if (!S.shared_list) {
        S.shared_list = l;
    } else {
        m->rl_own = true;
    }
    return l;
}

static void rpm_issue(struct machine *m, unsigned slot)
{
    char path[1100];
    const char *p = m->rl->paths[m->rpm_next++];
    /* LIST entries are relative to the tree root (Packages/x.rpm) */
    snprintf(path, sizeof(path), "%s%s", p[0] == '/' ? "" : "/", p);
    m->rpm_inflight++;
    http_get(m, slot, &S.http_default, path, "GET", 0, http_ref(path));
}

static void rpms_begin(struct machine *m)
{
    m->rpm_next = m->rpm_done = m->rpm_inflight = 0;
    m->rl = NULL;
    m->rl_own = false;
    http_get(m, 0, &S.http_default, S.c.rpm_list, "GET", LIST_KEEP, NULL);
}

static void callback_begin(struct machine *m)
{
    if (!m->token[0]) {
        stage_skip(m, "skipped: the kickstart has no \"installed?token=\" line");
        return;
    }
    char path[1024];
    expand(m, S.c.callback_url, path, sizeof(path));
    http_get(m, 0, &S.http_default, path, "POST", 4096, NULL);
}

static void http_done(void *arg, struct httpc_req *r)
{
    struct mreq *q = arg;
    struct machine *m = q->m;
    account_http(m, r);
    switch (m->cur) {
    case REPORT_KERNEL:
    case REPORT_INITRD:
    case REPORT_STAGE2:
    case REPORT_CALLBACK:
        if (r->status != HTTPC_OK)
            stage_fail(m, "HTTP %s", r->reason);
        else
            stage_ok(m);
        return;
    case REPORT_KS:
        if (r->status == HTTPC_STATUS && r->http_status == 404 && S.c.ks_fallback && !m->ks_fallback_tried) {
            m->ks_fallback_tried = true;
            report_note(&S.notes, REPORT_KS, "the kickstart URL answered 404: fetched --kickstart-path instead");
            char path[1024];
            expand(m, S.c.ks_fallback, path, sizeof(path));
            http_get(m, 0, &S.http_default, path, "GET", KS_KEEP, NULL);
            return;
        }
        if (r->status != HTTPC_OK) {
            stage_fail(m, "kickstart: %s", r->reason);
            return;
        }
        if (!find_token((const char *)r->kept, m->token, sizeof(m->token)))
            m->token[0] = 0;
        stage_ok(m);
        return;
    case REPORT_RPMS:
        if (!m->rl) { /* the list */
            if (r->status != HTTPC_OK) {
                stage_fail(m, "package list: %s", r->reason);
                return;
            }
            m->rl = list_for(m, r);
            if (!m->rl) {
                stage_fail(m, "out of memory");
                return;
            }
            if (!m->rl->n) {
                stage_skip(m, "skipped: the package list is empty");
                return;
            }
            for (unsigned s = 0; s < S.c.rpm_parallel && m->rpm_next < m->rl->n; s++)
                rpm_issue(m, s);
            return;
        }
        m->rpm_inflight--;
        if (r->status != HTTPC_OK) {
            stage_fail(m, "package (%u of %u done): %s", m->rpm_done, m->rl->n, r->reason);
            return;
        }
        m->rpm_done++;
        if (m->rpm_next < m->rl->n) {
            rpm_issue(m, q->slot);
            return;
        }
        if (!m->rpm_inflight)
            stage_ok(m);
        return;
    default:
        return;
    }
}

/* ---- reporting while running ---- */

static void on_tick(struct ev_timer *t)
{
    uint64_t now = ev_now();
    struct httpc_counters hc;
    httpc_get_counters(&hc);
    uint64_t bytes = hc.bytes + tftpc_total_bytes();
    if (S.last_tick_ns && now > S.last_tick_ns)
        S.rate_mbps = (double)(bytes - S.last_bytes) / 1e6 / ((double)(now - S.last_tick_ns) / 1e9);
    S.last_bytes = bytes;
    S.last_tick_ns = now;
    char line[400];
    int n = snprintf(line, sizeof(line), "%6.1fs ", (double)(now - S.t0) / 1e9);
    for (int s = 0; s < REPORT_STAGES; s++)
        if (stage_on((enum report_stage)s))
            n += snprintf(line + n, sizeof(line) - (size_t)n, " %s %u", report_stage_name((enum report_stage)s),
                          S.running[s]);
    snprintf(line + n, sizeof(line) - (size_t)n, " | waiting %u booted %u failed %u | %.1f MB/s",
             S.c.machines - S.next, S.booted, S.failed, S.rate_mbps);
    load_progress("%s", line);
    ev_timer_arm(&S.tick, 500 * EV_MS);
}

static void on_signal(int sig) { S.interrupted = 1; }

/* ---- options ---- */

void storm_usage(FILE *f)
{
    fprintf(f,
            "bootstorm-load storm [options]: N machines through the rollout flow, one thread\n"
            "  Stages (in order; --stages picks): dhcp (DORA as the PXE ROM; with dhcp2, the\n"
            "  installer's DORA with another client-id, which must get the same address), tftp\n"
            "  (boot file, ldlinux.c32 after PXELINUX, the configuration in PXELINUX order),\n"
            "  kernel, initrd, ks (kickstart; holds the callback token), stage2 (install.img),\n"
            "  rpms (Packages/LIST, then each package), callback (%%post: installed).\n"
            "  --machines N            machines to play [200]\n"
            "  --mac-base MAC          first MAC; machine i has MAC+i [52:54:00:00:00:00]\n"
            "  --stages LIST           comma list of dhcp,dhcp1,dhcp2,tftp,kernel,initrd,ks,stage2,\n"
            "                          rpms,callback or all; dhcp = dhcp1+dhcp2 [all]\n"
            "  --ramp SECONDS          spread the arrivals over this long (a PDU sequence) [0: at once]\n"
            "  --concurrency N         machines in flight at most [0: no cap]\n"
            "  --arch bios|efi64       firmware: option 93 (0/7), boot file and config flavour [bios]\n"
            "  --server ADDR           bootstorm's address for TFTP and HTTP [127.0.0.1]\n"
            "  --dhcp-server ADDR      where DHCP requests go [--server]\n"
            "  --dhcp-port PORT        the server's DHCP port [67]\n"
            "  --giaddr ADDR           our relay address: requests carry it, replies come to it [127.77.0.1]\n"
            "  --relay-port PORT       port bound on --giaddr for the replies [67]\n"
            "  --dhcp-timeout MS       first DHCP retransmission timeout, doubled each time [1000]\n"
            "  --dhcp-retries N        DHCP retransmissions before a machine fails [4]\n"
            "  --client-base ADDR      addresses for machines when dhcp is not run [127.77.1.1]\n"
            "  --bind-leases BOOL      bind TFTP/HTTP sockets to the machine's address [yes]\n"
            "  --tftp-server ADDR      TFTP server [next-server from DHCP, else --server]\n"
            "  --tftp-port PORT        [69]\n"
            "  --blksize N             blksize option asked (0: none, 512-byte blocks) [1468]\n"
            "  --windowsize N          windowsize option asked (1: none, lock-step) [1]\n"
            "  --udp-gro BOOL          receive a TFTP window the server sent as one UDP GSO datagram\n"
            "                          whole (UDP_GRO), as a NIC with segmentation offload sends it;\n"
            "                          no: the kernel splits it on the way in, which on loopback is the\n"
            "                          sending server's core [yes]\n"
            "  --tsize BOOL            ask tsize [yes]\n"
            "  --tftp-timeout MS       first TFTP retransmission timeout, doubled [1000]\n"
            "  --tftp-retries N        TFTP retransmissions without progress before failing [5]\n"
            "  --tftp-dally MS         stay to re-ACK a repeated final block [200]\n"
            "  --boot-file PATH        when DHCP gives none [pxelinux.0; efi64: grubx64.efi]\n"
            "  --loader-extra FILE     fetched after a PXELINUX boot file; none: nothing [ldlinux.c32]\n"
            "  --config BOOL           look up the boot configuration [yes]\n"
            "  --require-config BOOL   fail a machine that finds no configuration [no]\n"
            "  --grub-prefix DIR       where GRUB looks for grub.cfg (efi64) [grub/]\n"
            "  --follow-config-host BOOL  http:// URLs in the boot entry (kernel, initrd, ks=, url=)\n"
            "                          go to their own host; no: to --server:--http-port [yes]\n"
            "  --kernel PATH           when the configuration names none [images/vmlinuz]\n"
            "  --initrd PATH           when the configuration names none [images/initrd.img]\n"
            "  --http-port PORT        [8080]\n"
            "  --kickstart-url PATH    when the boot entry names none (ks=, inst.ks=, url=); {mac}\n"
            "                          {mac-} {macx} {ip} {hostname} {idx} are replaced [/ks/{mac}]\n"
            "  --kickstart-path PATH   fetched when the kickstart URL answers 404 [none]\n"
            "  --stage2-path PATH      [/images/install.img]\n"
            "  --rpm-list PATH         package list, one path per line [/Packages/LIST]\n"
            "  --rpm-parallel N        keep-alive connections per machine for packages [4]\n"
            "  --callback-url PATH     {token} from the kickstart's installed?token= line\n"
            "                          [/api/hosts/{mac}/installed?token={token}]\n"
            "  --http-timeout MS       an HTTP request without progress this long fails [30000]\n"
            "  --tree DIR              local copy of the served tree (DIR/tftp, DIR/http, or DIR for\n"
            "                          both): sizes are compared with it [none]\n"
            "  --verify[=KIND]         also checksum every file against --tree: crc32c or sha256\n"
            "                          (SHA-NI when present) [off; --verify alone: crc32c]\n"
            "  --json FILE --csv FILE  summary and per-machine timeline\n"
            "  --svg FILE              machines done per stage over time, as a picture\n"
            "  --progress BOOL         the live progress line [yes on a terminal]\n"
            "  --io auto|uring|epoll   TFTP datagram I/O [auto: io_uring if available]\n");
}

static bool parse_stages(const char *s, unsigned *out)
{
    unsigned v = 0;
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", s);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (!strcmp(t, "all"))
            v |= (1u << REPORT_STAGES) - 1;
        else if (!strcmp(t, "dhcp"))
            v |= 1u << REPORT_DHCP | 1u << REPORT_DHCP2;
        else if (!strcmp(t, "dhcp1"))
            v |= 1u << REPORT_DHCP;
        else {
            int k = report_stage_by_name(t);
            if (k < 0)
                return false;
            v |= 1u << k;
        }
    }
    if (!v)
        return false;
    *out = v;
    return true;
}

/* Options whose check is more than a range (OPT_CALL: they write S.c, the one
 * configuration parse_opts fills). */
static bool opt_stages(const char *a, char *why, size_t whylen)
{
    if (parse_stages(a, &S.c.stages))
        return true;
    snprintf(why, whylen, "--stages %s: unknown stage (dhcp,dhcp1,dhcp2,tftp,kernel,initrd,ks,stage2,rpms,callback,all)",
             a);
    return false;
}

static bool opt_ramp(const char *a, char *why, size_t whylen)
{
    if (load_parse_seconds(a, &S.c.ramp_s) && S.c.ramp_s <= 86400)
        return true;
    snprintf(why, whylen, "--ramp %s: want seconds, 0-86400", a);
    return false;
}

static bool opt_blksize(const char *a, char *why, size_t whylen)
{
    uint64_t v;
    if (load_parse_u64(a, 0, 65464, &v) && (v == 0 || v >= 8)) {
        S.c.blksize = (uint32_t)v;
        return true;
    }
    snprintf(why, whylen, "--blksize %s: 0 or 8-65464 (RFC 2348)", a);
    return false;
}

/* Fills *c (which is &S.c) from argv over its defaults: 0, -1 after --help,
 * or an exit status after a bad option (reported). */
static int parse_opts(int argc, char **argv, struct storm_cfg *c)
{
    static const char *const arches[] = {"bios", "efi64", NULL};
    static const unsigned arch_codes[] = {ARCH_BIOS, ARCH_EFI64};
    uint32_t dhcp_server = 0;
    unsigned arch = c->arch, tftp_port = c->tftp_port, http_port = c->http_port, dhcp_port = c->dhcp_port,
             relay_port = c->relay_port;
    const struct opt_def defs[] = {
        OPT_DEF("machines", OPT_UINT, &c->machines, .lo = 1, .hi = 1u << 20),
        OPT_DEF("mac-base", OPT_MAC, c->mac_base),
        OPT_DEF("stages", OPT_CALL, NULL, .call = opt_stages),
        OPT_DEF("ramp", OPT_CALL, NULL, .call = opt_ramp),
        OPT_DEF("concurrency", OPT_UINT, &c->concurrency, .lo = 0, .hi = 1000000),
        OPT_DEF("arch", OPT_CHOICE, &arch, .choices = arches, .values = arch_codes),
        OPT_DEF("server", OPT_IP, &c->server),
        OPT_DEF("dhcp-server", OPT_IP, &dhcp_server),
        OPT_DEF("dhcp-port", OPT_UINT, &dhcp_port, .lo = 1, .hi = 65535),
        OPT_DEF("giaddr", OPT_IP, &c->giaddr),
        OPT_DEF("relay-port", OPT_UINT, &relay_port, .lo = 1, .hi = 65535),
        OPT_DEF("dhcp-timeout", OPT_UINT, &c->dhcp_timeout_ms, .lo = 10, .hi = 60000),
        OPT_DEF("dhcp-retries", OPT_UINT, &c->dhcp_retries, .lo = 0, .hi = 100),
        OPT_DEF("client-base", OPT_IP, &c->client_base),
        OPT_DEF("bind-leases", OPT_BOOL, &c->bind_leases),
        OPT_DEF("tftp-server", OPT_IP, &c->tftp_server),
        OPT_DEF("tftp-port", OPT_UINT, &tftp_port, .lo = 1, .hi = 65535),
        OPT_DEF("blksize", OPT_CALL, NULL, .call = opt_blksize),
        OPT_DEF("windowsize", OPT_UINT, &c->windowsize, .lo = 1, .hi = 32767),
        OPT_DEF("tsize", OPT_BOOL, &c->tsize),
        OPT_DEF("udp-gro", OPT_BOOL, &c->udp_gro),
        OPT_DEF("tftp-timeout", OPT_UINT, &c->tftp_timeout_ms, .lo = 10, .hi = 60000),
        OPT_DEF("tftp-retries", OPT_UINT, &c->tftp_retries, .lo = 0, .hi = 100),
        OPT_DEF("tftp-dally", OPT_UINT, &c->tftp_dally_ms, .lo = 0, .hi = 10000),
        OPT_DEF("boot-file", OPT_STR, &c->boot_file),
        OPT_DEF("loader-extra", OPT_STR, &c->loader_extra),
        OPT_DEF("config", OPT_BOOL, &c->config_lookup),
        OPT_DEF("require-config", OPT_BOOL, &c->require_config),
        OPT_DEF("follow-config-host", OPT_BOOL, &c->follow_config_host),
        OPT_DEF("grub-prefix", OPT_STR, &c->grub_prefix),
        OPT_DEF("kernel", OPT_STR, &c->kernel),
        OPT_DEF("initrd", OPT_STR, &c->initrd),
        OPT_DEF("http-port", OPT_UINT, &http_port, .lo = 1, .hi = 65535),
        OPT_DEF("kickstart-url", OPT_STR, &c->ks_url),
        OPT_DEF("kickstart-path", OPT_STR, &c->ks_fallback),
        OPT_DEF("stage2-path", OPT_STR, &c->stage2),
        OPT_DEF("rpm-list", OPT_STR, &c->rpm_list),
        OPT_DEF("rpm-parallel", OPT_UINT, &c->rpm_parallel, .lo = 1, .hi = PAR_MAX),
        OPT_DEF("callback-url", OPT_STR, &c->callback_url),
        OPT_DEF("http-timeout", OPT_UINT, &c->http_timeout_ms, .lo = 100, .hi = 3600000),
        OPT_DEF("tree", OPT_STR, &c->tree),
        OPT_DEF("verify", OPT_VERIFY, &c->verify),
        OPT_DEF("json", OPT_STR, &c->out.json),
        OPT_DEF("csv", OPT_STR, &c->out.csv),
        OPT_DEF("svg", OPT_STR, &c->out.svg),
        OPT_DEF("progress", OPT_TRI, &c->progress),
        OPT_DEF("io", OPT_IO, &c->io),
        OPT_END,
    };
    enum opts_result pr = opts_parse("storm", defs, argc, argv, storm_usage);
    if (pr != OPTS_OK)
        return pr == OPTS_HELP ? -1 : LOAD_EXIT_USAGE;
    c->arch = (enum arch)arch;
    c->tftp_port = (uint16_t)tftp_port;
    c->http_port = (uint16_t)http_port;
    c->dhcp_port = (uint16_t)dhcp_port;
    c->relay_port = (uint16_t)relay_port;
    for (const char **p = (const char *[]){c->ks_url, c->stage2, c->rpm_list, c->callback_url, NULL}; *p; p++)
        if ((*p)[0] != '/')
            return load_usage_error("storm", "HTTP paths start with '/': '%s'", *p);
    if (c->ks_fallback && c->ks_fallback[0] != '/')
        return load_usage_error("storm", "--kickstart-path %s: must start with '/'", c->ks_fallback);
    c->dhcp_server = dhcp_server ? dhcp_server : c->server;
    if (c->verify != VERIFY_NONE && !c->tree)
        return load_usage_error("storm", "--verify needs --tree DIR (the local copy to compare with)");
    if (c->tree) {
        struct stat st;
        if (stat(c->tree, &st) != 0 || !S_ISDIR(st.st_mode))
            return load_usage_error("storm", "--tree %s: not a directory", c->tree);
        char t[4096], h[4096];
        snprintf(t, sizeof(t), "%s/tftp", c->tree);
        snprintf(h, sizeof(h), "%s/http", c->tree);
        bool split = stat(t, &st) == 0 && S_ISDIR(st.st_mode) && stat(h, &st) == 0 && S_ISDIR(st.st_mode);
        snprintf(c->tftp_tree, sizeof(c->tftp_tree), "%s", split ? t : c->tree);
        snprintf(c->http_tree, sizeof(c->http_tree), "%s", split ? h : c->tree);
        c->have_tree = true;
    }
    return 0;
}

/* ---- main ---- */

static void precompute_refs(void)
{
    const struct storm_cfg *c = &S.c;
    const char *boot = c->boot_file ? c->boot_file : c->arch == ARCH_EFI64 ? "grubx64.efi" : "pxelinux.0";
    tftp_ref(boot);
    if (is_pxelinux(boot))
        tftp_ref(c->loader_extra ? c->loader_extra : "ldlinux.c32");
    tftp_ref(c->kernel);
    tftp_ref(c->initrd);
    http_ref(c->stage2);
    /* the packages the list names, read from the local copy of the list */
    char lp[4200];
    snprintf(lp, sizeof(lp), "%s/%s", c->http_tree, c->rpm_list + 1);
    FILE *f = fopen(lp, "r");
    if (!f)
        return;
    char line[1100];
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\r\n")] = 0;
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p && *p != '#')
            http_ref(p);
    }
    fclose(f);
}

static void settings_line(char *out, size_t cap)
{
    const struct storm_cfg *c = &S.c;
    size_t n = 0;
    n += (size_t)snprintf(out + n, cap - n, "stages ");
    bool first = true;
    for (int k = 0; k < REPORT_STAGES && n < cap; k++)
        if (stage_on((enum report_stage)k)) {
            n += (size_t)snprintf(out + n, cap - n, "%s%s", first ? "" : ",", report_stage_name((enum report_stage)k));
            first = false;
        }
    if (n < cap)
        n += (size_t)snprintf(out + n, cap - n, "; %s; blksize %u, windowsize %u%s; ramp %g s; concurrency ",
                              c->arch == ARCH_EFI64 ? "efi64" : "bios", c->blksize, c->windowsize,
                              c->windowsize > 1 ? (c->udp_gro ? ", UDP GRO" : ", no UDP GRO") : "", c->ramp_s);
    if (n < cap)
        n += (size_t)(c->concurrency ? snprintf(out + n, cap - n, "%u", c->concurrency)
                                     : snprintf(out + n, cap - n, "unlimited"));
    if (n < cap)
        snprintf(out + n, cap - n, "; verify %s%s; %s", c->have_tree ? verify_kind_name(c->verify) : "sizes",
                 c->have_tree ? "" : " (no --tree)", load_io_name());
}

int storm_main(int argc, char **argv)
{
    memset(&S, 0, sizeof(S));
    struct storm_cfg *c = &S.c;
    c->machines = 200;
    memcpy(c->mac_base, (uint8_t[]){0x52, 0x54, 0, 0, 0, 0}, 6);
    c->stages = (1u << REPORT_STAGES) - 1;
    load_parse_ip("127.0.0.1", &c->server);
    load_parse_ip("127.77.0.1", &c->giaddr);
    load_parse_ip("127.77.1.1", &c->client_base);
    c->tftp_port = 69;
    c->http_port = 8080;
    c->dhcp_port = 67;
    c->relay_port = 67;
    c->bind_leases = true;
    c->tsize = true;
    c->udp_gro = true;
    c->config_lookup = true;
    c->follow_config_host = true;
    c->blksize = 1468;
    c->windowsize = 1;
    c->tftp_timeout_ms = 1000;
    c->tftp_max_timeout_ms = 8000;
    c->tftp_retries = 5;
    c->tftp_dally_ms = 200;
    c->dhcp_timeout_ms = 1000;
    c->dhcp_retries = 4;
    c->kernel = "images/vmlinuz";
    c->initrd = "images/initrd.img";
    c->grub_prefix = "grub/";
    c->ks_url = "/ks/{mac}";
    c->stage2 = "/images/install.img";
    c->rpm_list = "/Packages/LIST";
    c->callback_url = "/api/hosts/{mac}/installed?token={token}";
    c->rpm_parallel = 4;
    c->http_timeout_ms = 30000;
    c->progress = -1;
    int rc = parse_opts(argc, argv, c);
    if (rc < 0)
        return LOAD_EXIT_OK;
    if (rc)
        return rc;

    uint64_t fds = ev_raise_nofile();
    uint64_t inflight = c->concurrency && c->concurrency < c->machines ? c->concurrency : c->machines;
    uint64_t need = inflight * (c->rpm_parallel + 2) + 64;
    if (fds < need)
        fprintf(stderr, "bootstorm-load storm: warning: %llu descriptors allowed, up to %llu may be needed "
                        "(raise ulimit -n or use --concurrency)\n", (unsigned long long)fds, (unsigned long long)need);
    if (ev_init() != EV_OK) {
        fprintf(stderr, "bootstorm-load storm: epoll: %s\n", strerror(errno));
        return LOAD_EXIT_USAGE;
    }
    if (!load_io_setup("storm", c->io, c->blksize, c->windowsize, c->udp_gro)) {
        ev_fini();
        return LOAD_EXIT_USAGE;
    }
    load_progress_init(c->progress);
    S.m = calloc(c->machines, sizeof(*S.m));
    if (!S.m) {
        fprintf(stderr, "bootstorm-load storm: out of memory for %u machines\n", c->machines);
        return LOAD_EXIT_USAGE;
    }
    for (unsigned i = 0; i < c->machines; i++) {
        struct machine *m = &S.m[i];
        m->idx = i;
        load_mac_add(c->mac_base, i, m->mac);
        snprintf(m->macs, sizeof(m->macs), "%02x:%02x:%02x:%02x:%02x:%02x", m->mac[0], m->mac[1], m->mac[2],
                 m->mac[3], m->mac[4], m->mac[5]);
        snprintf(m->hostname, sizeof(m->hostname), "node%04u", i);
        /* a stable SMBIOS-like UUID per machine: 4c4f4144-0000-4000-8000-<MAC> ("LOAD", version 4) */
        memcpy(m->uuid, (uint8_t[]){0x4c, 0x4f, 0x41, 0x44, 0, 0, 0x40, 0, 0x80, 0}, 10);
        memcpy(m->uuid + 10, m->mac, 6);
        m->timer.fn = on_dhcp_timer;
        m->timer.owner = m;
        m->rm.idx = i;
        memcpy(m->rm.mac, m->macs, sizeof(m->macs));
        m->rm.failed_stage = -1;
    }
    S.http_default.server = (struct sockaddr_in){
        .sin_family = AF_INET, .sin_port = htons(c->http_port), .sin_addr.s_addr = c->server};
    char sa[16];
    snprintf(S.http_default.host, sizeof(S.http_default.host), "%s:%u", load_ip_str(c->server, sa), c->http_port);
    if (stage_on(REPORT_DHCP) || stage_on(REPORT_DHCP2)) {
        char why[256];
        struct sockaddr_in srv = {.sin_family = AF_INET, .sin_port = htons(c->dhcp_port),
                                  .sin_addr.s_addr = c->dhcp_server};
        if (dhcpc_relay_open(&S.relay, c->giaddr, c->relay_port, &srv, on_dhcp_reply, NULL, why, sizeof(why)) != 0) {
            fprintf(stderr, "bootstorm-load storm: %s\n", why);
            free(S.m);
            ev_fini();
            return LOAD_EXIT_USAGE;
        }
        S.relay_open = true;
    }
    S.xid_salt = (uint32_t)getpid() * 2654435761u ^ (uint32_t)ev_refresh();
    if (c->have_tree) {
        if (c->verify != VERIFY_NONE)
            fprintf(stderr, "bootstorm-load storm: computing %s of the files under %s ...\n",
                    verify_kind_name(c->verify), c->tree);
        precompute_refs();
    }
    struct sigaction sa_int = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa_int, NULL);
    sigaction(SIGTERM, &sa_int, NULL);
    signal(SIGPIPE, SIG_IGN);

    {
        struct rusage ru0;
        getrusage(RUSAGE_SELF, &ru0); /* the storm's own cost, without the reference checksums */
        S.cpu0 = (double)ru0.ru_utime.tv_sec + (double)ru0.ru_utime.tv_usec / 1e6 + (double)ru0.ru_stime.tv_sec +
                 (double)ru0.ru_stime.tv_usec / 1e6;
    }
    S.t0 = ev_refresh();
    S.sched.fn = on_sched;
    S.tick.fn = on_tick;
    if (load_progress_on())
        ev_timer_arm(&S.tick, 500 * EV_MS);
    sched_more();
    int loop_rc = EV_OK;
    while (S.finished < c->machines && !S.interrupted && loop_rc == EV_OK)
        loop_rc = ev_run_once(100 * EV_MS);
    if (loop_rc != EV_OK)
        fprintf(stderr, "bootstorm-load storm: event loop: %s\n", strerror(errno));
    load_progress_clear();

    struct report_run run = {.machines = c->machines, .stages = c->stages, .t0 = S.t0, .t_end = ev_refresh(),
                             .booted = S.booted, .failed = S.failed,
                             .not_started = c->machines - S.finished, .interrupted = S.interrupted};
    settings_line(run.settings, sizeof(run.settings));
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    run.client_cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
                       (double)ru.ru_stime.tv_usec / 1e6 - S.cpu0;
    struct report_machine *rms = malloc(sizeof(*rms) * c->machines);
    for (unsigned i = 0; i < c->machines; i++) {
        struct machine *m = &S.m[i];
        if (m->state == M_RUNNING)
            m_release(m);
        m->rm.ip = m->ip;
        if (rms)
            rms[i] = m->rm;
    }
    bool files_ok = true;
    if (rms) {
        report_storm_text(stdout, &run, rms, &S.notes);
        files_ok = report_storm_files(&c->out, &run, rms, &S.notes);
    }
    if (ev_dgram_enobufs())
        fprintf(stderr, "bootstorm-load storm: the io_uring receive buffers ran out %llu times (datagrams may have "
                        "waited or been dropped by the kernel)\n", (unsigned long long)ev_dgram_enobufs());
    if (S.relay_open) {
        if (S.relay.malformed)
            fprintf(stderr, "bootstorm-load storm: %llu malformed DHCP replies dropped\n",
                    (unsigned long long)S.relay.malformed);
        dhcpc_relay_close(&S.relay);
    }
    /* let dallying transfers go: they hold only their socket */
    while (tftpc_live() && ev_run_once(50 * EV_MS) == EV_OK)
        ;
    if (S.shared_list) {
        free(S.shared_list->body);
        free(S.shared_list->paths);
        free(S.shared_list);
    }
    free(rms);
    free(S.m);
    verify_refs_free();
    ev_fini();
    if (!rms)
        return LOAD_EXIT_USAGE;
    return S.booted == c->machines && files_ok ? LOAD_EXIT_OK : LOAD_EXIT_FAILED;
}
