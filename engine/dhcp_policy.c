/* engine/dhcp_policy.c — see dhcp_policy.h. */
#include "engine/dhcp_policy.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

/* ---- small helpers ---------------------------------------------------------- */

uint32_t dhcp_policy_mask(uint8_t prefix)
{
    return prefix == 0 ? 0 : prefix >= 32 ? 0xffffffffu : ~((1u << (32 - prefix)) - 1);
}

bool dhcp_policy_in_subnet(const struct options_subnet *s, uint32_t ip)
{
    return s && ip != 0 && (ip & dhcp_policy_mask(s->prefix)) == s->network;
}

bool dhcp_policy_in_pool(const struct options_subnet *s, uint32_t ip)
{
    return s && s->pool_start != 0 && ip >= s->pool_start && ip <= s->pool_end;
}

/* An address a host of the subnet may have: not the network or broadcast address. */
static bool usable_in(const struct options_subnet *s, uint32_t ip)
{
    uint32_t m = dhcp_policy_mask(s->prefix);
    return dhcp_policy_in_subnet(s, ip) && (ip & ~m) != 0 && (ip & ~m) != ~m;
}

static int subnet_of(const struct dhcp_policy_config *cfg, uint32_t ip)
{
    for (size_t i = 0; i < cfg->nsubnets; i++)
        if (dhcp_policy_in_subnet(&cfg->subnets[i], ip))
            return (int)i;
    return -1;
}

static void ipstr(uint32_t ip, char out[16])
{
    snprintf(out, 16, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
}

static const char *nz(const char *s) { return s && *s ? s : NULL; }

void dhcp_policy_config_from_options(struct dhcp_policy_config *c, const struct options *o)
{
    memset(c, 0, sizeof *c);
    c->subnets = o->subnets.items;
    c->nsubnets = o->subnets.count;
    c->next_server = o->next_server;
    c->boot_bios = o->boot_bios;
    c->boot_efi64 = o->boot_efi64;
    c->boot_arm64 = o->boot_arm64;
    /* "none": iPXE gets the boot file of its architecture, like any PXE ROM */
    c->boot_ipxe = o->boot_ipxe && strcmp(o->boot_ipxe, "none") != 0 ? o->boot_ipxe : NULL;
    c->boot_http = o->boot_http;
    c->http_port = o->http_port;
    c->known_only = o->known_only;
    c->proxy = o->proxy_dhcp;
    /* --dhcp-offer-hold / --dhcp-decline-hold, milliseconds rounded up to seconds */
    c->offer_hold_s = (uint32_t)(((uint64_t)o->dhcp_offer_hold_ms + 999) / 1000);
    c->decline_hold_s = (uint32_t)(((uint64_t)o->dhcp_decline_hold_ms + 999) / 1000);
}

static const char *const why_names[DHCP_WHY_COUNT] = {
    [DHCP_WHY_OK] = "ok",
    [DHCP_WHY_UNKNOWN_SUBNET] = "no subnet for this link or relay",
    [DHCP_WHY_STRANGER] = "not in the inventory (--known-only)",
    [DHCP_WHY_NOT_PXE] = "not a PXE client (proxyDHCP)",
    [DHCP_WHY_NOT_FOR_PORT] = "message type not served on this port",
    [DHCP_WHY_OTHER_SERVER] = "addressed to another server",
    [DHCP_WHY_NO_RECORD] = "no record of this client",
    [DHCP_WHY_WRONG_NET] = "address on the wrong network",
    [DHCP_WHY_WRONG_ADDR] = "not the client's address",
    [DHCP_WHY_NO_ADDRESS] = "no address to offer",
    [DHCP_WHY_NOT_HELD] = "address not held by this client",
    [DHCP_WHY_MALFORMED] = "fields missing for its state",
};

const char *dhcp_policy_why_name(enum dhcp_policy_why why)
{
    return (unsigned)why < DHCP_WHY_COUNT && why_names[why] ? why_names[why] : "unknown";
}

const char *dhcp_policy_action_name(enum dhcp_policy_action a)
{
    switch (a) {
    case DHCP_POLICY_IGNORE: return "ignore";
    case DHCP_POLICY_OFFER: return "OFFER";
    case DHCP_POLICY_ACK: return "ACK";
    case DHCP_POLICY_NAK: return "NAK";
    case DHCP_POLICY_INFORM: return "ACK (inform)";
    case DHCP_POLICY_PROXY_OFFER: return "OFFER (proxy)";
    case DHCP_POLICY_PROXY_ACK: return "ACK (proxy)";
    case DHCP_POLICY_DECLINE: return "declined";
    case DHCP_POLICY_RELEASE: return "released";
    case DHCP_POLICY_WITHDRAW: return "offer withdrawn";
    }
    return "unknown";
}

uint8_t dhcp_policy_reply_type(enum dhcp_policy_action a)
{
    switch (a) {
    case DHCP_POLICY_OFFER:
    case DHCP_POLICY_PROXY_OFFER: return DHCP_OFFER;
    case DHCP_POLICY_ACK:
    case DHCP_POLICY_INFORM:
    case DHCP_POLICY_PROXY_ACK: return DHCP_ACK;
    case DHCP_POLICY_NAK: return DHCP_NAK;
    default: return 0;
    }
}

/* ---- subnet and server identifier --------------------------------------------- */

bool dhcp_policy_select(const struct dhcp_policy_config *cfg, const struct dhcp_msg *req,
                        const struct dhcp_policy_link *link, int *subnet, uint32_t *server_id)
{
    uint32_t gi = ntohl(req->giaddr), ci = ntohl(req->ciaddr);
    int s = -1;
    uint32_t sid = 0;
    if (gi) {
        /* RFC 3046 / RFC 2131 §4.3.1: the relay's address names the client's link;
         * we answer from the address the relay sent to. */
        s = subnet_of(cfg, gi);
        sid = link->local;
        if (s < 0 && !cfg->proxy)
            return false;
    } else {
        if (ci)
            s = subnet_of(cfg, ci); /* a RENEWING client unicasts from anywhere */
        /* our address on the client's link: an interface address in that subnet,
         * or (no ciaddr match) the first interface address that has a subnet */
        for (size_t i = 0; i < link->n_ifaddrs; i++) {
            int t = subnet_of(cfg, link->ifaddrs[i].addr);
            if (t >= 0 && (s < 0 || t == s)) {
                s = t;
                sid = link->ifaddrs[i].addr;
                break;
            }
        }
        if (s < 0 && link->local)
            s = subnet_of(cfg, link->local);
        if (s < 0 && !cfg->proxy)
            return false;
    }
    if (!sid)
        sid = link->local;
    if (!sid && link->n_ifaddrs)
        sid = link->ifaddrs[0].addr;
    *subnet = s;
    *server_id = sid;
    return true;
}

static bool sid_is_ours(const struct dhcp_policy_link *link, uint32_t sid, uint32_t mine)
{
    if (sid == mine || sid == link->local)
        return true;
    for (size_t i = 0; i < link->n_own; i++)
        if (link->own[i] == sid)
            return true;
    for (size_t i = 0; i < link->n_ifaddrs; i++)
        if (link->ifaddrs[i].addr == sid)
            return true;
    return false;
}

/* ---- decisions ---------------------------------------------------------------- */

static void add_cand(struct dhcp_policy_decision *d, uint32_t ip, bool is_static)
{
    if (!ip || d->ncand == DHCP_POLICY_MAX_CANDIDATES)
        return;
    for (size_t i = 0; i < d->ncand; i++)
        if (d->cand[i] == ip)
            return;
    d->cand_static[d->ncand] = is_static;
    d->cand[d->ncand++] = ip;
}

static void set(struct dhcp_policy_decision *d, enum dhcp_policy_action a, enum dhcp_policy_why why)
{
    d->action = a;
    d->why = why;
}

/* The host's reservation, when it lies in subnet sn. */
static uint32_t reservation(const struct dhcp_policy_in *in, const struct options_subnet *sn)
{
    const struct inv_host *h = in->host;
    return h && h->ip && sn && usable_in(sn, h->ip) ? h->ip : 0;
}

/* The client's lease address in subnet sn (0: none there); *holds: offered or
 * bound (the address is taken for it), else only remembered. */
static uint32_t lease_addr(const struct dhcp_policy_in *in, const struct options_subnet *sn, bool *holds)
{
    const struct lease *l = in->lease;
    *holds = false;
    if (!l || !l->ip || !dhcp_policy_in_subnet(sn, l->ip))
        return 0;
    *holds = l->state == LEASE_OFFERED || l->state == LEASE_BOUND;
    return l->ip;
}

static void decide_discover(const struct dhcp_policy_in *in, const struct options_subnet *sn,
                            struct dhcp_policy_decision *d)
{
    /* RFC 2131 §4.3.1, in its order: the reservation (our "configured
     * address"), the client's current or previous address, the requested one,
     * then a new one from the pool. */
    bool holds;
    uint32_t r = reservation(in, sn), l = lease_addr(in, sn, &holds), want = 0;
    add_cand(d, r, true);
    if (l && dhcp_policy_in_pool(sn, l))
        add_cand(d, l, false);
    if (dhcp_get_requested_ip(in->req, &want) && dhcp_policy_in_pool(sn, ntohl(want)))
        add_cand(d, ntohl(want), false);
    d->alloc = sn->pool_start != 0;
    if (!d->ncand && !d->alloc)
        set(d, DHCP_POLICY_IGNORE, DHCP_WHY_NO_ADDRESS);
    else
        set(d, DHCP_POLICY_OFFER, DHCP_WHY_OK);
}

static void decide_request(const struct dhcp_policy_in *in, const struct options_subnet *sn,
                           struct dhcp_policy_decision *d)
{
    const struct dhcp_msg *req = in->req;
    uint32_t sid_be, rq_be, ci = ntohl(req->ciaddr), want;
    bool have_sid = dhcp_get_server_id(req, &sid_be);
    bool have_rq = dhcp_get_requested_ip(req, &rq_be);
    bool selecting = false;
    if (have_sid) {
        /* SELECTING: the client names the server whose offer it took. */
        if (!sid_is_ours(&in->link, ntohl(sid_be), d->server_id)) {
            if (in->lease && in->lease->state == LEASE_OFFERED) {
                add_cand(d, in->lease->ip, false);
                set(d, DHCP_POLICY_WITHDRAW, DHCP_WHY_OTHER_SERVER);
            } else {
                set(d, DHCP_POLICY_IGNORE, DHCP_WHY_OTHER_SERVER);
            }
            return;
        }
        selecting = true;
        want = have_rq ? ntohl(rq_be) : ci;
    } else if (have_rq && !ci) {
        want = ntohl(rq_be); /* INIT-REBOOT */
    } else {
        want = ci;           /* RENEWING (unicast) or REBINDING (broadcast) */
    }
    if (!want) {
        set(d, DHCP_POLICY_IGNORE, DHCP_WHY_MALFORMED);
        return;
    }
    if (!usable_in(sn, want)) {
        set(d, DHCP_POLICY_NAK, DHCP_WHY_WRONG_NET);
        return;
    }
    uint32_t r = reservation(in, sn);
    if (r) {
        if (want == r) {
            add_cand(d, r, true);
            set(d, DHCP_POLICY_ACK, DHCP_WHY_OK);
        } else {
            set(d, DHCP_POLICY_NAK, DHCP_WHY_WRONG_ADDR);
        }
        return;
    }
    bool holds;
    uint32_t l = lease_addr(in, sn, &holds);
    if (l && holds) {
        /* an address held for the client that is no longer in the pool (an old
         * reservation) is not renewed: the NAK sends it back to DISCOVER */
        if (want == l && dhcp_policy_in_pool(sn, l)) {
            add_cand(d, l, false);
            set(d, DHCP_POLICY_ACK, DHCP_WHY_OK);
        } else {
            set(d, DHCP_POLICY_NAK, DHCP_WHY_WRONG_ADDR);
        }
        return;
    }
    if ((want == l || selecting) && dhcp_policy_in_pool(sn, want)) {
        /* our remembered address for it, or an offer that lapsed (server
         * restart, offer hold over): try to take it again; NAK if taken */
        add_cand(d, want, false);
        set(d, DHCP_POLICY_ACK, DHCP_WHY_OK);
    } else if (l || selecting) {
        set(d, DHCP_POLICY_NAK, DHCP_WHY_WRONG_ADDR);
    } else {
        set(d, DHCP_POLICY_IGNORE, DHCP_WHY_NO_RECORD); /* §4.3.2: MUST remain silent */
    }
}

static bool other_server(const struct dhcp_policy_in *in, const struct dhcp_policy_decision *d)
{
    uint32_t sid;
    return dhcp_get_server_id(in->req, &sid) && !sid_is_ours(&in->link, ntohl(sid), d->server_id);
}

static void decide_decline(const struct dhcp_policy_in *in, struct dhcp_policy_decision *d)
{
    uint32_t rq;
    if (other_server(in, d)) {
        set(d, DHCP_POLICY_IGNORE, DHCP_WHY_OTHER_SERVER);
    } else if (!dhcp_get_requested_ip(in->req, &rq)) { /* §4.3.3: 50 is a MUST */
        set(d, DHCP_POLICY_IGNORE, DHCP_WHY_MALFORMED);
    } else if (in->lease && in->lease->ip == ntohl(rq) &&
               (in->lease->state == LEASE_OFFERED || in->lease->state == LEASE_BOUND)) {
        add_cand(d, ntohl(rq), false);
        d->subnet = in->lease->subnet;
        set(d, DHCP_POLICY_DECLINE, DHCP_WHY_OK);
    } else {
        set(d, DHCP_POLICY_IGNORE, DHCP_WHY_NOT_HELD);
    }
}

static void decide_release(const struct dhcp_policy_in *in, struct dhcp_policy_decision *d)
{
    uint32_t ci = ntohl(in->req->ciaddr);
    if (other_server(in, d)) {
        set(d, DHCP_POLICY_IGNORE, DHCP_WHY_OTHER_SERVER);
    } else if (!ci) {
        set(d, DHCP_POLICY_IGNORE, DHCP_WHY_MALFORMED);
    } else if (in->lease && in->lease->ip == ci &&
               (in->lease->state == LEASE_OFFERED || in->lease->state == LEASE_BOUND)) {
        add_cand(d, ci, false);
        d->subnet = in->lease->subnet;
        set(d, DHCP_POLICY_RELEASE, DHCP_WHY_OK);
    } else {
        set(d, DHCP_POLICY_IGNORE, DHCP_WHY_NOT_HELD);
    }
}

void dhcp_policy_decide(const struct dhcp_policy_config *cfg, const struct dhcp_policy_in *in,
                        struct dhcp_policy_decision *d)
{
    memset(d, 0, sizeof *d);
    d->subnet = -1;
    const struct dhcp_msg *req = in->req;
    if (!dhcp_policy_select(cfg, req, &in->link, &d->subnet, &d->server_id)) {
        set(d, DHCP_POLICY_IGNORE, DHCP_WHY_UNKNOWN_SUBNET);
        return;
    }
    const struct options_subnet *sn = d->subnet >= 0 ? &cfg->subnets[d->subnet] : NULL;
    d->lease_s = sn ? sn->lease_s : 0;
    if (cfg->known_only && !in->host) {
        set(d, DHCP_POLICY_IGNORE, DHCP_WHY_STRANGER);
        return;
    }
    uint8_t type = req->msg_type;
    if (cfg->proxy) {
        /* PXE 2.1 §2.2.3: a proxyDHCP server answers a PXE client's DISCOVER
         * on 67 and its REQUEST (or INFORM) on 4011, never with an address. */
        if (dhcp_policy_boot_kind(req) == DHCP_BOOT_NONE)
            set(d, DHCP_POLICY_IGNORE, DHCP_WHY_NOT_PXE);
        else if (!in->link.pxe_port && type == DHCP_DISCOVER)
            set(d, DHCP_POLICY_PROXY_OFFER, DHCP_WHY_OK);
        else if (in->link.pxe_port && (type == DHCP_REQUEST || type == DHCP_INFORM))
            set(d, DHCP_POLICY_PROXY_ACK, DHCP_WHY_OK);
        else
            set(d, DHCP_POLICY_IGNORE, DHCP_WHY_NOT_FOR_PORT);
        return;
    }
    if (in->link.pxe_port || !sn) {
        set(d, DHCP_POLICY_IGNORE, in->link.pxe_port ? DHCP_WHY_NOT_FOR_PORT : DHCP_WHY_UNKNOWN_SUBNET);
        return;
    }
    switch (type) {
    case DHCP_DISCOVER: decide_discover(in, sn, d); break;
    case DHCP_REQUEST: decide_request(in, sn, d); break;
    case DHCP_DECLINE: decide_decline(in, d); break;
    case DHCP_RELEASE: decide_release(in, d); break;
    case DHCP_INFORM:
        /* §4.3.5: the reply goes to ciaddr and carries no lease */
        if (req->ciaddr)
            set(d, DHCP_POLICY_INFORM, DHCP_WHY_OK);
        else
            set(d, DHCP_POLICY_IGNORE, DHCP_WHY_MALFORMED);
        break;
    default: set(d, DHCP_POLICY_IGNORE, DHCP_WHY_NOT_FOR_PORT); break;
    }
}

/* ---- boot information ------------------------------------------------------------ */

/* "PXEClient:Arch:00007:UNDI:003000" carries the architecture too (PXE 2.1
 * §2.2.1); some ROMs send it without option 93. */
static bool arch_from_vendor_class(const struct dhcp_msg *req, uint16_t *arch)
{
    size_t len;
    const uint8_t *v = dhcp_get_vendor_class(req, &len);
    static const char pfx[] = "PXEClient:Arch:";
    size_t pl = sizeof pfx - 1;
    if (!v || len < pl + 5 || memcmp(v, pfx, pl) != 0)
        return false;
    unsigned a = 0;
    for (size_t i = 0; i < 5; i++) {
        if (v[pl + i] < '0' || v[pl + i] > '9')
            return false;
        a = a * 10 + (unsigned)(v[pl + i] - '0');
    }
    if (a > 0xffff)
        return false;
    *arch = (uint16_t)a;
    return true;
}

static bool client_arch(const struct dhcp_msg *req, uint16_t *arch)
{
    return dhcp_get_client_arch(req, arch) || arch_from_vendor_class(req, arch);
}

/* By architecture alone (RFC 4578 §2.1 and the IANA registry). */
static enum dhcp_boot_kind arch_kind(const struct dhcp_msg *req)
{
    uint16_t a;
    if (!client_arch(req, &a))
        return dhcp_is_pxe_client(req) ? DHCP_BOOT_BIOS : DHCP_BOOT_NONE;
    switch (a) {
    case 0: return DHCP_BOOT_BIOS;
    case 7:
    case 9: return DHCP_BOOT_EFI64;
    case 11: return DHCP_BOOT_ARM64;
    case 15:
    case 16:
    case 19: return DHCP_BOOT_HTTP;
    default: return DHCP_BOOT_NONE;
    }
}

enum dhcp_boot_kind dhcp_policy_boot_kind(const struct dhcp_msg *req)
{
    if (dhcp_is_http_client(req))
        return DHCP_BOOT_HTTP;
    if (dhcp_is_ipxe(req))
        return DHCP_BOOT_IPXE;
    return arch_kind(req);
}

const char *dhcp_boot_kind_name(enum dhcp_boot_kind k)
{
    switch (k) {
    case DHCP_BOOT_NONE: return "none";
    case DHCP_BOOT_BIOS: return "bios";
    case DHCP_BOOT_EFI64: return "efi64";
    case DHCP_BOOT_ARM64: return "arm64";
    case DHCP_BOOT_IPXE: return "ipxe";
    case DHCP_BOOT_HTTP: return "http";
    }
    return "unknown";
}

static bool put_str(char *out, size_t cap, size_t *n, const char *s, size_t len)
{
    if (*n + len >= cap)
        return false;
    memcpy(out + *n, s, len);
    *n += len;
    return true;
}

int dhcp_policy_expand(const char *tmpl, const struct dhcp_policy_vars *v, char *out, size_t cap)
{
    size_t n = 0;
    if (!cap)
        return -1;
    for (const char *p = tmpl; *p;) {
        const char *close = *p == '{' ? strchr(p, '}') : NULL;
        if (close) {
            size_t kl = (size_t)(close - p - 1);
            const char *key = p + 1, *val = NULL;
            char num[16];
            if (kl == 6 && !memcmp(key, "server", 6)) {
                ipstr(v->server, num);
                val = num;
            } else if (kl == 2 && !memcmp(key, "ip", 2)) {
                if (v->ip)
                    ipstr(v->ip, num);
                else
                    num[0] = 0;
                val = num;
            } else if (kl == 9 && !memcmp(key, "http_port", 9)) {
                snprintf(num, sizeof num, "%u", v->http_port);
                val = num;
            } else if (kl == 3 && !memcmp(key, "mac", 3)) {
                val = v->mac ? v->mac : "";
            } else if (kl == 8 && !memcmp(key, "hostname", 8)) {
                val = v->hostname ? v->hostname : "";
            } else if (kl == 6 && !memcmp(key, "loader", 6)) {
                val = v->loader ? v->loader : "";
            }
            if (val) {
                if (!put_str(out, cap, &n, val, strlen(val)))
                    goto full;
                p = close + 1;
                continue;
            }
        }
        if (!put_str(out, cap, &n, p, 1))
            goto full;
        p++;
    }
    out[n] = 0;
    return (int)n;
full:
    out[0] = 0;
    return -1;
}

static void format_hw(const struct dhcp_msg *req, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = 0;
    for (size_t i = 0; i < req->hlen && i < DHCP_CHADDR_LEN && n + 3 < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, i ? ":%02x" : "%02x", req->chaddr[i]);
}

void dhcp_policy_boot(const struct dhcp_policy_config *cfg, const struct dhcp_msg *req,
                      const struct inv_host *host, uint32_t server_id, uint32_t ip,
                      struct dhcp_policy_boot *out)
{
    memset(out, 0, sizeof *out);
    out->kind = dhcp_policy_boot_kind(req);
    out->next_server = cfg->next_server ? cfg->next_server : server_id;
    enum dhcp_boot_kind k = out->kind;
    const char *tmpl = NULL;
    if (k == DHCP_BOOT_IPXE) {
        tmpl = nz(cfg->boot_ipxe);
        if (!tmpl) /* no iPXE script configured: what its architecture gets */
            k = arch_kind(req);
    }
    uint16_t arch = 0;
    bool has_arch = client_arch(req, &arch);
    const char *loader = has_arch && (arch == 11 || arch == 19) ? cfg->boot_arm64
                       : has_arch && arch != 0 ? cfg->boot_efi64 : cfg->boot_bios;
    const char *file = NULL;
    char own[sizeof out->file];
    switch (k) {
    case DHCP_BOOT_BIOS:
    case DHCP_BOOT_EFI64:
        /* the profile's loader first: profile.h promises it replaces --boot-bios/--boot-efi64 */
        if (cfg->loader_fn && req->htype == 1 && req->hlen == 6 &&
            cfg->loader_fn(cfg->loader_ctx, req->chaddr, k == DHCP_BOOT_EFI64, own, sizeof own) && own[0])
            file = own;
        else
            file = nz(k == DHCP_BOOT_BIOS ? cfg->boot_bios : cfg->boot_efi64);
        break;
    case DHCP_BOOT_ARM64: file = nz(cfg->boot_arm64); break;
    case DHCP_BOOT_HTTP:
        tmpl = nz(cfg->boot_http);
        loader = has_arch && arch == 19 ? cfg->boot_arm64 : cfg->boot_efi64;
        break;
    default: break;
    }
    if (file) {
        if (strlen(file) < sizeof out->file)
            memcpy(out->file, file, strlen(file) + 1);
        return;
    }
    if (!tmpl)
        return;
    char mac[3 * DHCP_CHADDR_LEN];
    format_hw(req, mac, sizeof mac);
    struct dhcp_policy_vars v = {
        .server = server_id, .ip = ip, .http_port = cfg->http_port, .mac = mac,
        .hostname = host ? host->hostname : "", .loader = loader ? loader : "",
    };
    dhcp_policy_expand(tmpl, &v, out->file, sizeof out->file);
}

/* ---- the reply ---------------------------------------------------------------------- */

struct optset {
    struct dhcp_opt_out o[20];
    bool required[20];
    size_t n;
};

static void add_opt(struct optset *s, uint8_t code, const void *data, size_t len, bool required)
{
    if (s->n < sizeof s->o / sizeof s->o[0]) {
        s->o[s->n] = (struct dhcp_opt_out){code, data, len};
        s->required[s->n++] = required;
    }
}

static bool opt_required(const struct optset *s, uint8_t code)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->o[i].code == code)
            return s->required[i];
    return true;
}

int dhcp_policy_build_reply(const struct dhcp_policy_config *cfg, const struct dhcp_policy_in *in,
                            const struct dhcp_policy_decision *d, uint32_t yiaddr, uint8_t *buf,
                            size_t cap, size_t *len)
{
    const struct dhcp_msg *req = in->req;
    uint8_t type = dhcp_policy_reply_type(d->action);
    if (!type)
        return DHCP_EARG;
    struct dhcp_writer w;
    int rc = dhcp_reply_begin(&w, buf, cap, req, type);
    if (rc != DHCP_OK)
        return rc;
    uint32_t sid_be = htonl(d->server_id);
    if (type == DHCP_NAK) {
        /* RFC 2131 table 3: a NAK carries 54 and, optionally, a message */
        const char *msg = dhcp_policy_why_name(d->why);
        dhcp_put_ip(&w, DHCP_OPT_SERVER_ID, sid_be);
        if (dhcp_option_space(strlen(msg)) <= dhcp_writer_room(&w))
            dhcp_put_str(&w, DHCP_OPT_MESSAGE, msg);
        return dhcp_reply_finish(&w, len);
    }
    bool with_addr = d->action == DHCP_POLICY_OFFER || d->action == DHCP_POLICY_ACK;
    bool proxy = d->action == DHCP_POLICY_PROXY_OFFER || d->action == DHCP_POLICY_PROXY_ACK;
    const struct options_subnet *sn =
        d->subnet >= 0 && (size_t)d->subnet < cfg->nsubnets ? &cfg->subnets[d->subnet] : NULL;
    if (with_addr)
        dhcp_set_yiaddr(&w, htonl(yiaddr));

    struct optset os = {.n = 0};
    add_opt(&os, DHCP_OPT_SERVER_ID, &sid_be, 4, true);
    uint8_t lt[3][4];
    if (with_addr) {
        /* RFC 2131 §4.4.5: T1 = 0.5 and T2 = 0.875 of the lease */
        uint32_t l = d->lease_s;
        uint32_t t[3] = {l, l == 0xffffffffu ? l : l / 2, l == 0xffffffffu ? l : (uint32_t)((uint64_t)l * 7 / 8)};
        for (int i = 0; i < 3; i++) {
            lt[i][0] = (uint8_t)(t[i] >> 24), lt[i][1] = (uint8_t)(t[i] >> 16);
            lt[i][2] = (uint8_t)(t[i] >> 8), lt[i][3] = (uint8_t)t[i];
        }
        add_opt(&os, DHCP_OPT_LEASE_TIME, lt[0], 4, true);
        add_opt(&os, DHCP_OPT_T1, lt[1], 4, false);
        add_opt(&os, DHCP_OPT_T2, lt[2], 4, false);
    }
    uint32_t mask_be = 0, bcast_be = 0, router_be = 0, dns_be[OPTIONS_SUBNET_MAX_DNS];
    if (sn && !proxy) {
        uint32_t m = dhcp_policy_mask(sn->prefix);
        mask_be = htonl(m);
        bcast_be = htonl(sn->network | ~m);
        add_opt(&os, DHCP_OPT_SUBNET_MASK, &mask_be, 4, true);
        add_opt(&os, DHCP_OPT_BROADCAST, &bcast_be, 4, false);
        if (sn->router) {
            router_be = htonl(sn->router);
            add_opt(&os, DHCP_OPT_ROUTER, &router_be, 4, true);
        }
        /* option 6 always when configured: d-i stops at "Name server addresses" without it */
        for (unsigned i = 0; i < sn->dns_count && i < OPTIONS_SUBNET_MAX_DNS; i++)
            dns_be[i] = htonl(sn->dns[i]);
        if (sn->dns_count)
            add_opt(&os, DHCP_OPT_DNS, dns_be, 4 * (size_t)sn->dns_count, true);
        if (sn->domain[0])
            add_opt(&os, DHCP_OPT_DOMAIN, sn->domain, strlen(sn->domain), false);
        if (in->host && in->host->hostname[0])
            add_opt(&os, DHCP_OPT_HOSTNAME, in->host->hostname, strlen(in->host->hostname), false);
    }

    struct dhcp_policy_boot boot;
    uint32_t tmpl_ip = with_addr ? yiaddr : ntohl(req->ciaddr);
    dhcp_policy_boot(cfg, req, in->host, d->server_id, tmpl_ip, &boot);
    char ns[16];
    uint8_t ipxe_buf[8], pxe_buf[8];
    struct dhcp_encap ipxe, pxe;
    if (boot.kind != DHCP_BOOT_NONE) {
        bool tftp = boot.kind == DHCP_BOOT_BIOS || boot.kind == DHCP_BOOT_EFI64 || boot.kind == DHCP_BOOT_ARM64 ||
                    (boot.kind == DHCP_BOOT_IPXE && strncmp(boot.file, "http", 4) != 0);
        dhcp_set_siaddr(&w, htonl(boot.next_server));
        if (boot.file[0]) {
            /* shim builds grubx64.efi's path from the header field: both places */
            if (strlen(boot.file) < DHCP_FILE_LEN)
                dhcp_set_file(&w, boot.file);
            add_opt(&os, DHCP_OPT_BOOTFILE, boot.file, strlen(boot.file), true);
            if (tftp) {
                ipstr(boot.next_server, ns);
                add_opt(&os, DHCP_OPT_TFTP_SERVER, ns, strlen(ns), false);
            }
        }
        if (boot.kind == DHCP_BOOT_HTTP) /* UEFI HTTP boot drops an offer without it */
            add_opt(&os, DHCP_OPT_VENDOR_CLASS, "HTTPClient", 10, true);
        if (dhcp_is_ipxe(req) && !proxy) {
            /* iPXE waits ~3 s for ProxyDHCP offers unless told there are none */
            dhcp_encap_init(&ipxe, ipxe_buf, sizeof ipxe_buf);
            dhcp_encap_put_u8(&ipxe, DHCP_IPXE_NO_PXEDHCP, 1);
            if (ipxe.err == DHCP_OK)
                add_opt(&os, DHCP_OPT_IPXE_ENCAP, ipxe.buf, ipxe.len, false);
        }
        if (proxy) {
            /* PXE 2.1 §2.2.3 / table 2-1: the vendor class marks a PXE server's
             * reply; option 43 discovery control bit 3: boot the file given,
             * no boot-server discovery; the client's UUID is echoed. */
            if (boot.kind != DHCP_BOOT_HTTP)
                add_opt(&os, DHCP_OPT_VENDOR_CLASS, "PXEClient", 9, true);
            dhcp_encap_init(&pxe, pxe_buf, sizeof pxe_buf);
            dhcp_encap_put_u8(&pxe, DHCP_PXE_DISCOVERY_CONTROL, 8);
            dhcp_encap_end(&pxe);
            if (pxe.err == DHCP_OK)
                add_opt(&os, DHCP_OPT_VENDOR, pxe.buf, pxe.len, true);
            size_t ulen;
            const uint8_t *uuid = dhcp_get_option(req, DHCP_OPT_CLIENT_UUID, &ulen);
            if (uuid && ulen == 17)
                add_opt(&os, DHCP_OPT_CLIENT_UUID, uuid, ulen, false);
        }
    }

    dhcp_order_options(req, os.o, os.n);
    /* an optional option goes in only if every required one after it still fits */
    size_t required_after[20] = {0};
    for (size_t i = os.n; i-- > 1;)
        required_after[i - 1] = required_after[i] + (opt_required(&os, os.o[i].code) ? dhcp_option_space(os.o[i].len) : 0);
    for (size_t i = 0; i < os.n; i++) {
        if (!opt_required(&os, os.o[i].code) &&
            dhcp_option_space(os.o[i].len) + required_after[i] > dhcp_writer_room(&w))
            continue; /* what the client's size limit has no room for */
        dhcp_put_option(&w, os.o[i].code, os.o[i].data, os.o[i].len);
    }
    return dhcp_reply_finish(&w, len);
}

struct dhcp_dest dhcp_policy_destination(const struct dhcp_policy_in *in, const struct dhcp_policy_decision *d,
                                         uint32_t yiaddr, uint32_t peer_addr, uint16_t peer_port)
{
    const struct dhcp_msg *req = in->req;
    uint8_t type = dhcp_policy_reply_type(d->action);
    if (in->link.pxe_port && !req->giaddr) {
        /* PXE 2.1: a request to 4011 is answered where it came from */
        struct dhcp_dest r = {peer_addr ? DHCP_DEST_UNICAST_CIADDR : DHCP_DEST_BROADCAST,
                              peer_addr ? htonl(peer_addr) : 0xffffffffu, peer_port};
        return r;
    }
    bool with_addr = d->action == DHCP_POLICY_OFFER || d->action == DHCP_POLICY_ACK;
    return dhcp_reply_destination(req, type, with_addr ? htonl(yiaddr) : 0);
}

/* ---- the lease record ------------------------------------------------------------------ */

static bool hostname_char(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_';
}

void dhcp_policy_make_lease(const struct dhcp_policy_config *cfg, const struct dhcp_policy_in *in,
                            const struct dhcp_policy_decision *d, uint32_t ip, uint8_t state,
                            struct lease *out)
{
    const struct dhcp_msg *req = in->req;
    memset(out, 0, sizeof *out);
    lease_key_init(&out->hw, req->htype, req->chaddr, req->hlen);
    out->state = state;
    out->ip = ip;
    out->subnet = d->subnet >= 0 ? (uint16_t)d->subnet : (in->lease ? in->lease->subnet : 0);
    if (in->host)
        out->flags |= LEASE_F_KNOWN;
    if (in->host && ip && in->host->ip == ip)
        out->flags |= LEASE_F_STATIC;
    out->updated = in->now;
    switch (state) {
    case LEASE_OFFERED:
        out->expires = in->now + (cfg->offer_hold_s ? cfg->offer_hold_s : DHCP_POLICY_OFFER_HOLD_S);
        break;
    case LEASE_BOUND:
        /* an infinite lease (0xffffffff, RFC 2132 §9.2) is kept for 100 years */
        out->expires = in->now + (d->lease_s == 0xffffffffu ? (int64_t)100 * 365 * 86400 : (int64_t)d->lease_s);
        break;
    default: out->expires = in->now; break;
    }
    size_t n;
    const uint8_t *cid = dhcp_get_client_id(req, &n);
    if (cid) {
        out->client_id_len = (uint8_t)(n < LEASE_CLIENT_ID_MAX ? n : LEASE_CLIENT_ID_MAX);
        memcpy(out->client_id, cid, out->client_id_len);
    }
    const uint8_t *hn = dhcp_get_hostname(req, &n);
    size_t k = 0;
    for (size_t i = 0; hn && i < n && k < LEASE_HOSTNAME_MAX; i++)
        if (hostname_char(hn[i]))
            out->hostname[k++] = (char)hn[i];
    out->hostname[k] = 0;
    if (!k && in->host) {
        size_t hl = strnlen(in->host->hostname, LEASE_HOSTNAME_MAX);
        memcpy(out->hostname, in->host->hostname, hl); /* cut to the lease's field */
        out->hostname[hl] = 0;
    } else if (!k && in->lease)
        memcpy(out->hostname, in->lease->hostname, sizeof out->hostname);
}
