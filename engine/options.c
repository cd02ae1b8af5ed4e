/* engine/options: the option table, its parsers, the config file, --help. */
#include "engine/options.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- the table */

enum kind {
    K_STRING, K_DIR, K_FILE, K_UINT, K_BOOL, K_PORT, K_PORT_RANGE,
    K_IPV4, K_CIDR, K_SIZE, K_DURATION, K_ENUM, K_SUBNET
};

enum group { G_GENERAL, G_HTTP, G_DHCP, G_TFTP, G_ROLLOUT, G_STATE, G_STATUS, G_COUNT };

static const char *const group_title[G_COUNT] = {
    "General", "HTTP", "DHCP", "TFTP", "Rollout", "State", "Status (bootstorm status)"
};

#define C_SERVE  (1u << OPTIONS_CMD_SERVE)
#define C_STATUS (1u << OPTIONS_CMD_STATUS)
/* check, render and ports read the same configuration as serve, so they take the
 * same knobs: one command line or config file works for all four. */
#define C_SERVERS (C_SERVE | 1u << OPTIONS_CMD_CHECK | 1u << OPTIONS_CMD_RENDER | \
                   1u << OPTIONS_CMD_PORTS)
#define C_ALL (C_SERVERS | C_STATUS)

/* Extra check for one knob's string value: false with a reason in why. */
typedef bool (*check_fn)(const char *v, char *why, size_t n);

struct knob {
    const char *name;          /* long option and config key */
    enum kind kind;
    enum group group;
    unsigned cmds;             /* C_* bits: the commands that accept it */
    size_t off;                /* offsetof(struct options, field) */
    const char *def;           /* default, written as a user would; NULL: none */
    const char *shown;         /* the default as --help shows it, if not def */
    const char *arg;           /* metavariable in --help; NULL: the kind's */
    const char *unit;          /* shown after values; for K_DURATION "s" or "ms" is
                                  also the unit of a bare number */
    uint64_t min, max;         /* K_UINT; K_SIZE bytes; K_DURATION milliseconds */
    bool pow2;                 /* K_UINT: a power of two */
    const char *const *names;  /* K_ENUM: value i is names[i] */
    check_fn check;            /* K_STRING, K_DIR: extra validation */
    const char *help;
};

static bool check_ifname(const char *v, char *why, size_t n);
static bool check_congestion(const char *v, char *why, size_t n);
static bool check_bootfile(const char *v, char *why, size_t n);
static bool check_url_template(const char *v, char *why, size_t n);
static bool check_ipxe_url(const char *v, char *why, size_t n);
static bool check_server_url(const char *v, char *why, size_t n);
static bool check_profile_name(const char *v, char *why, size_t n);
static bool check_token(const char *v, char *why, size_t n);
static bool check_writable(const char *v, char *why, size_t n);

static const char *const backend_names[] = { "auto", "uring", "epoll", NULL };

/* The type of the struct options field that each kind writes. */
#define KTYPE_K_STRING char *
#define KTYPE_K_DIR char *
#define KTYPE_K_FILE char *
#define KTYPE_K_UINT unsigned
#define KTYPE_K_BOOL bool
#define KTYPE_K_PORT uint16_t
#define KTYPE_K_PORT_RANGE struct options_port_range
#define KTYPE_K_IPV4 uint32_t
#define KTYPE_K_CIDR struct options_cidr
#define KTYPE_K_SIZE uint64_t
#define KTYPE_K_DURATION uint32_t
#define KTYPE_K_ENUM enum options_backend
#define KTYPE_K_SUBNET struct options_subnet_list
/* offsetof(struct options, f), refused at compile time unless f has type T */
#define FIELD(f, T) (offsetof(struct options, f) + 0 * sizeof(struct {                            \
        _Static_assert(_Generic(((struct options *)0)->f, T: 1, default: 0), #f " is not " #T); \
        int x_; }))
#define KNOB(nm, kd, f, grp, cmd) .name = nm, .kind = kd, .off = FIELD(f, KTYPE_##kd), .group = grp, .cmds = cmd
#define SEC 1000ull

static const struct knob knobs[] = {
    /* General */
    { KNOB("config", K_FILE, config, G_GENERAL, C_ALL),
      .help = "read knobs from FILE: 'key = value' lines, keys are these names without the dashes; the "
              "command line wins" },
    { KNOB("listen", K_IPV4, listen, G_GENERAL, C_ALL), .def = "0.0.0.0",
      .help = "IPv4 address the HTTP and TFTP sockets bind (0.0.0.0: all)" },
    { KNOB("threads", K_UINT, threads, G_GENERAL, C_SERVERS), .def = "0", .shown = "one per CPU", .arg = "N",
      .min = 0, .max = 1024,
      .help = "worker threads, each with its own ring; 0: one per online CPU" },
    { KNOB("backend", K_ENUM, backend, G_GENERAL, C_SERVERS), .def = "auto", .names = backend_names,
      .help = "event backend; auto tries io_uring and falls back to epoll, saying why" },
    { KNOB("ring-entries", K_UINT, ring_entries, G_GENERAL, C_SERVERS), .def = "1024", .arg = "N",
      .min = 1, .max = 32768,
      .help = "io_uring submission queue entries per worker" },
    { KNOB("quiet", K_BOOL, quiet, G_GENERAL, C_ALL), .def = "no",
      .help = "no access log lines (errors still go to stderr)" },

    /* HTTP */
    { KNOB("http-root", K_DIR, http_root, G_HTTP, C_SERVERS),
      .help = "static tree served over HTTP (install trees, repositories); none: only the API, metrics "
              "and dashboard" },
    { KNOB("http-port", K_PORT, http_port, G_HTTP, C_ALL), .def = "8080",
      .help = "TCP port of the HTTP server (8080, so that no root-only port is needed for HTTP)" },
    { KNOB("http-idle-timeout", K_DURATION, http_idle_timeout_ms, G_HTTP, C_SERVERS), .def = "10", .unit = "s",
      .min = 1 * SEC, .max = 3600 * SEC,
      .help = "idle time allowed before a request's first byte and between keep-alive requests" },
    { KNOB("http-header-timeout", K_DURATION, http_header_timeout_ms, G_HTTP, C_SERVERS), .def = "10",
      .unit = "s", .min = 1 * SEC, .max = 3600 * SEC,
      .help = "total time allowed for a request's headers; a trickle of bytes does not extend it" },
    { KNOB("http-send-timeout", K_DURATION, http_send_timeout_ms, G_HTTP, C_SERVERS), .def = "60", .unit = "s",
      .min = 1 * SEC, .max = 3600 * SEC,
      .help = "a client that accepts no response bytes for this long is dropped" },
    { KNOB("max-conns", K_UINT, max_conns, G_HTTP, C_SERVERS), .def = "10000", .arg = "N",
      .min = 1, .max = 1000000,
      .help = "open HTTP connections; a connection beyond this gets 503" },
    { KNOB("http-chunk", K_SIZE, http_chunk, G_HTTP, C_SERVERS), .def = "1M", .unit = "bytes",
      .min = 4096, .max = 64ull << 20,
      .help = "body bytes sent per connection per turn (one sendfile), so one fast client cannot starve "
              "the rest. 1M: 10-20% less CPU per GB than 256K here (with cubic), and a body up to 1 MiB "
              "goes in one call; all 200 downloaders of one image still finish within 1% of each other" },
    { KNOB("http-tcp-congestion", K_STRING, http_tcp_congestion, G_HTTP, C_SERVERS), .def = "cubic",
      .arg = "NAME", .check = check_congestion,
      .help = "TCP congestion control of HTTP connections (one of net.ipv4.tcp_available_congestion_control); "
              "system: the kernel's default. Not bbr by default: bbr without the fq qdisc paces every "
              "connection with a timer of its own, 2-5x the server's CPU per GB for install.img here" },
    { KNOB("http-defer-accept", K_DURATION, http_defer_accept_ms, G_HTTP, C_SERVERS), .def = "1", .unit = "s",
      .min = 0, .max = 600 * SEC,
      .help = "a connection reaches the server only with its request (TCP_DEFER_ACCEPT): one wakeup "
              "instead of two, about 45% less server CPU per connection in a connection storm here; "
              "a client that connects and says nothing is held by the kernel this long first. 0: off" },
    { KNOB("http-index", K_BOOL, http_index, G_HTTP, C_SERVERS), .def = "no",
      .help = "list directories (otherwise 403 for a directory without index.html)" },

    /* DHCP */
    { KNOB("dhcp-port", K_PORT, dhcp_port, G_DHCP, C_SERVERS), .def = "67",
      .help = "UDP port for DHCP requests (proxyDHCP also listens on 4011)" },
    { KNOB("subnet", K_SUBNET, subnets, G_DHCP, C_SERVERS), .arg = "SPEC",
      .help = "CIDR,pool=A-B,router=R,dns=D1+D2,domain=X,lease=SECONDS (repeatable; only the CIDR is "
              "required; no pool: reservations only; lease 3600 by default). DHCP is on when a subnet "
              "or --proxy-dhcp is given" },
    { KNOB("interface", K_STRING, interface, G_DHCP, C_SERVERS), .arg = "IFNAME", .check = check_ifname,
      .help = "interface for direct (not relayed) DHCP requests; none: all" },
    { KNOB("next-server", K_IPV4, next_server, G_DHCP, C_SERVERS), .shown = "our address",
      .help = "TFTP server named in replies (siaddr, option 66); 0.0.0.0 or none: our address on the "
              "client's subnet" },
    { KNOB("boot-bios", K_STRING, boot_bios, G_DHCP, C_SERVERS), .def = "pxelinux.0", .arg = "PATH",
      .check = check_bootfile,
      .help = "boot file for BIOS clients (arch 0)" },
    { KNOB("boot-efi64", K_STRING, boot_efi64, G_DHCP, C_SERVERS), .def = "grubx64.efi", .arg = "PATH",
      .check = check_bootfile,
      .help = "boot file for x64 UEFI clients (arch 7, 9)" },
    { KNOB("boot-arm64", K_STRING, boot_arm64, G_DHCP, C_SERVERS), .def = "grubaa64.efi", .arg = "PATH",
      .check = check_bootfile,
      .help = "boot file for ARM64 UEFI clients (arch 11)" },
    { KNOB("boot-ipxe", K_STRING, boot_ipxe, G_DHCP, C_SERVERS),
      .def = "http://{server}:{http_port}/boot.ipxe?mac={mac}", .arg = "URL|none", .check = check_ipxe_url,
      .help = "script URL for iPXE clients (user class iPXE); placeholders {server} {http_port} {mac} "
              "{ip} {hostname} {loader}; none: iPXE gets the boot file of its architecture "
              "(--boot-bios, --boot-efi64), like any PXE ROM" },
    { KNOB("boot-http", K_STRING, boot_http, G_DHCP, C_SERVERS), .def = "http://{server}:{http_port}/{loader}",
      .arg = "URL", .check = check_url_template,
      .help = "boot URL for UEFI HTTP boot clients (vendor class HTTPClient, arch 15, 16, 19); {loader} "
              "is --boot-efi64 or --boot-arm64 by architecture" },
    { KNOB("known-only", K_BOOL, known_only, G_DHCP, C_SERVERS), .def = "no",
      .help = "answer only machines in --hosts; a stranger is logged once, never answered" },
    { KNOB("proxy-dhcp", K_BOOL, proxy_dhcp, G_DHCP, C_SERVERS), .def = "no",
      .help = "proxyDHCP: another server hands out addresses, bootstorm only boot information, on "
              "--dhcp-port and 4011" },
    { KNOB("dhcp-arp", K_BOOL, dhcp_arp, G_DHCP, C_SERVERS), .def = "no",
      .help = "unicast replies to clients without an address through a manual ARP entry (otherwise "
              "broadcast)" },
    { KNOB("dhcp-offer-hold", K_DURATION, dhcp_offer_hold_ms, G_DHCP, C_SERVERS), .def = "60", .unit = "s",
      .min = 1 * SEC, .max = 3600 * SEC,
      .help = "an OFFERed address is kept for its client this long, waiting for the REQUEST (RFC 2131 "
              "4.3.1); rounded up to whole seconds" },
    { KNOB("dhcp-decline-hold", K_DURATION, dhcp_decline_hold_ms, G_DHCP, C_SERVERS), .def = "3600", .unit = "s",
      .min = 1 * SEC, .max = 7 * 24 * 3600 * SEC,
      .help = "an address a client DECLINEs (someone else answers ARP for it) stays out of the pool this "
              "long (RFC 2131 4.3.3); rounded up to whole seconds" },
    { KNOB("ipv6-ra", K_BOOL, ipv6_ra, G_DHCP, C_SERVERS), .def = "no",
      .help = "send IPv6 router advertisements on --interface (router lifetime 0, no prefix: nobody routes "
              "through us) and answer router solicitations; iPXE then stops waiting ~13 s for IPv6 "
              "autoconfiguration after its DHCP ACK" },
    { KNOB("ipv6-ra-interval", K_DURATION, ipv6_ra_interval_ms, G_DHCP, C_SERVERS), .def = "30", .unit = "s",
      .min = 4 * SEC, .max = 1800 * SEC,
      .help = "unsolicited router advertisements go out about this often (RFC 4861 6.2.1); solicitations "
              "are answered within 0.5 s" },

    /* TFTP */
    { KNOB("tftp-root", K_DIR, tftp_root, G_TFTP, C_SERVERS),
      .help = "directory served over TFTP (loaders, kernels, initrds); none: TFTP off" },
    { KNOB("tftp-port", K_PORT, tftp_port, G_TFTP, C_SERVERS), .def = "69",
      .help = "UDP port for TFTP requests" },
    { KNOB("tftp-ports", K_PORT_RANGE, tftp_ports, G_TFTP, C_SERVERS), .def = "0-0",
      .shown = "0-0 (ephemeral)",
      .help = "UDP ports of the per-transfer sockets, for a firewall; 0-0: ephemeral ports (bootstorm "
              "ports says what that needs)" },
    { KNOB("tftp-blksize-max", K_UINT, tftp_blksize_max, G_TFTP, C_SERVERS), .def = "8192", .arg = "N",
      .unit = "bytes", .min = 8, .max = 65464,
      .help = "largest block size granted (RFC 2348); a request is also clamped to the interface MTU "
              "less 32 bytes of headers (1468 at MTU 1500)" },
    { KNOB("tftp-window-max", K_UINT, tftp_window_max, G_TFTP, C_SERVERS), .def = "64", .arg = "N",
      .unit = "blocks", .min = 1, .max = 65535,
      .help = "largest window granted (RFC 7440)" },
    { KNOB("tftp-timeout", K_DURATION, tftp_timeout_ms, G_TFTP, C_SERVERS), .def = "200", .unit = "ms",
      .min = 10, .max = 255 * SEC,
      .help = "initial retransmission timeout, backed off on each retry" },
    { KNOB("tftp-retries", K_UINT, tftp_retries, G_TFTP, C_SERVERS), .def = "6", .arg = "N",
      .min = 1, .max = 100,
      .help = "retransmissions without an answer before a transfer is abandoned" },
    { KNOB("max-transfers", K_UINT, max_transfers, G_TFTP, C_SERVERS), .def = "4096", .arg = "N",
      .min = 1, .max = 1000000,
      .help = "TFTP transfers in flight at once; more requests are queued, not refused" },
    { KNOB("tftp-allow-write", K_BOOL, tftp_allow_write, G_TFTP, C_SERVERS), .def = "no",
      .help = "accept write requests (otherwise WRQ gets ERROR 2)" },

    /* Rollout */
    { KNOB("hosts", K_FILE, hosts, G_ROLLOUT, C_SERVERS),
      .help = "inventory CSV: mac,hostname,ip,profile,...; further columns become template variables" },
    { KNOB("profiles", K_DIR, profiles, G_ROLLOUT, C_SERVERS),
      .help = "boot profile directory, one profile per file" },
    { KNOB("default-profile", K_STRING, default_profile, G_ROLLOUT, C_SERVERS), .arg = "NAME",
      .check = check_profile_name,
      .help = "profile for machines not in the inventory; none: they get the menu only" },
    { KNOB("admin-allow", K_CIDR, admin_allow, G_ROLLOUT, C_SERVERS), .def = "127.0.0.0/8",
      .help = "clients allowed to call the admin API (reinstall, reload)" },
    { KNOB("admin-token", K_STRING, admin_token, G_ROLLOUT, C_ALL), .arg = "TOKEN", .check = check_token,
      .help = "token admin API calls must carry; none: the address check alone" },
    { KNOB("stall-after", K_DURATION, stall_after_ms, G_ROLLOUT, C_SERVERS), .def = "600", .unit = "s",
      .min = 0, .max = 7 * 24 * 3600 * SEC,
      .help = "a host without progress for this long is marked stalled; 0: never" },
    { KNOB("api", K_BOOL, api, G_ROLLOUT, C_SERVERS), .def = "yes",
      .help = "serve the HTTP API under /api (--api=no turns it off)" },

    /* State */
    { KNOB("state-dir", K_STRING, state_dir, G_STATE, C_SERVERS), .def = "/var/lib/bootstorm", .arg = "DIR",
      .check = check_writable,
      .help = "lease and host journals and the install-token secret; created (0700) when missing" },
    { KNOB("lease-shards", K_UINT, lease_shards, G_STATE, C_SERVERS), .def = "64", .arg = "N",
      .min = 1, .max = 65536, .pow2 = true,
      .help = "shards of the lease and host tables" },
    { KNOB("fsync-interval-ms", K_DURATION, fsync_interval_ms, G_STATE, C_SERVERS), .def = "5", .unit = "ms",
      .min = 0, .max = 10 * SEC,
      .help = "journal fsync batching: ACKs wait for the next batched fsync; 0: fsync before every ACK" },

    /* Status */
    { KNOB("server", K_STRING, server, G_STATUS, C_STATUS), .shown = "http://127.0.0.1:HTTP-PORT",
      .arg = "URL", .check = check_server_url,
      .help = "the running server to ask" },
    { KNOB("watch", K_BOOL, watch, G_STATUS, C_STATUS), .def = "no",
      .help = "redraw the table in place on a terminal until interrupted" },
    { KNOB("json", K_BOOL, json, G_STATUS, C_STATUS), .def = "no",
      .help = "print JSON instead of a table" },
};

enum { N_KNOBS = sizeof knobs / sizeof knobs[0] };

/* backend is written through an unsigned *, as every K_ENUM field is */
_Static_assert(sizeof(enum options_backend) == sizeof(unsigned), "enum field size");

static const char *const command_names[OPTIONS_CMD_COUNT] = { "serve", "check", "render", "status", "ports" };

const char *options_command_name(enum options_command cmd)
{
    return (unsigned)cmd < OPTIONS_CMD_COUNT ? command_names[cmd] : NULL;
}

const char *options_backend_name(enum options_backend b)
{
    return (unsigned)b < 3 ? backend_names[b] : NULL;
}

static const struct knob *knob_by_name(const char *name)
{
    for (size_t i = 0; i < N_KNOBS; i++)
        if (strcmp(knobs[i].name, name) == 0)
            return &knobs[i];
    return NULL;
}

static void *field_of(struct options *o, const struct knob *k)
{
    return (char *)o + k->off;
}

/* A reason into why[n]; returns false, for "return no(why, n, ...)". */
__attribute__((format(printf, 3, 4)))
static bool no(char *why, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, n, fmt, ap);
    va_end(ap);
    return false;
}

/* ------------------------------------------------------- scanning numbers */

/* Decimal digits only (no sign, no space, no 0x): false when none or overflow. */
static bool scan_u64(const char **p, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    if (!isdigit((unsigned char)*s))
        return false;
    for (; isdigit((unsigned char)*s); s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *p = s;
    *out = v;
    return true;
}

/* Dotted quad, four decimal octets, no leading zeros (010 is octal to some
 * parsers, so refuse it rather than guess). */
static bool scan_ipv4(const char **p, uint32_t *out)
{
    const char *s = *p;
    uint32_t a = 0;
    for (int i = 0; i < 4; i++) {
        if (i > 0 && *s++ != '.')
            return false;
        const char *start = s;
        uint64_t v;
        if (!scan_u64(&s, &v) || v > 255 || s - start > 3 || (s - start > 1 && *start == '0'))
            return false;
        a = a << 8 | (uint32_t)v;
    }
    *p = s;
    *out = a;
    return true;
}

static bool parse_ipv4(const char *s, uint32_t *out)
{
    return scan_ipv4(&s, out) && *s == '\0';
}

static uint32_t prefix_mask(unsigned prefix)
{
    return prefix == 0 ? 0 : 0xffffffffu << (32 - prefix);
}

static void fmt_ipv4(char buf[16], uint32_t a)
{
    snprintf(buf, 16, "%u.%u.%u.%u", a >> 24, a >> 16 & 255, a >> 8 & 255, a & 255);
}

/* "A.B.C.D/N" (or a bare address: /32); host bits must be zero. */
static bool parse_cidr(const char *s, struct options_cidr *c, char *why, size_t n)
{
    const char *p = s;
    uint32_t a;
    uint64_t len = 32;
    if (!scan_ipv4(&p, &a) || (*p == '/' && (p++, !scan_u64(&p, &len) || len > 32)) || *p != '\0')
        return no(why, n, "not a CIDR (A.B.C.D/N, N 0-32)");
    if (a & ~prefix_mask((unsigned)len)) {
        char net[16];
        fmt_ipv4(net, a & prefix_mask((unsigned)len));
        return no(why, n, "host bits set (the network is %s/%u)", net, (unsigned)len);
    }
    c->addr = a;
    c->prefix = (uint8_t)len;
    return true;
}

/* 1 -> "1", 262144 -> "256K": the largest binary unit that divides exactly. */
static void fmt_size(char *buf, size_t n, uint64_t v)
{
    static const char units[] = "KMG";
    int u = -1;
    while (u < 2 && v != 0 && v % 1024 == 0) {
        v /= 1024;
        u++;
    }
    if (u < 0)
        snprintf(buf, n, "%llu", (unsigned long long)v);
    else
        snprintf(buf, n, "%llu%c", (unsigned long long)v, units[u]);
}

static uint64_t unit_ms(const struct knob *k)
{
    return k->unit && strcmp(k->unit, "s") == 0 ? 1000 : 1;
}

/* ----------------------------------------------------- one parser per kind */

struct parse_in {
    const struct knob *k;
    const char *v;           /* non-empty */
    void *field;
    bool check_fs;           /* look at the file system (not for table defaults) */
    char *why;
    size_t n;
};

/* The reason a value is refused; returns OPTIONS_ERR_VALUE. */
__attribute__((format(printf, 2, 3)))
static int bad(const struct parse_in *in, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(in->why, in->n, fmt, ap);
    va_end(ap);
    return OPTIONS_ERR_VALUE;
}

static int set_string(char **dst, const char *v)
{
    char *s = strdup(v);
    if (!s)
        return OPTIONS_ERR_NOMEM;
    free(*dst);
    *dst = s;
    return OPTIONS_OK;
}

static bool has_control(const char *v)
{
    for (; *v; v++)
        if ((unsigned char)*v < 0x20 || *v == 0x7f)
            return true;
    return false;
}

static int parse_string(const struct parse_in *in)
{
    if (has_control(in->v))
        return bad(in, "contains a control character");
    if (in->k->check && !in->k->check(in->v, in->why, in->n))
        return OPTIONS_ERR_VALUE;
    return set_string(in->field, in->v);
}

static int parse_path(const struct parse_in *in, bool dir)
{
    if (has_control(in->v))
        return bad(in, "contains a control character");
    if (in->check_fs) {
        struct stat st;
        if (stat(in->v, &st) != 0 && errno == ENOENT)
            return bad(in, "%s", dir ? "no such directory" : "no such file");
        if (stat(in->v, &st) != 0)
            return bad(in, "cannot access (%s)", strerror(errno));
        if (dir && !S_ISDIR(st.st_mode))
            return bad(in, "not a directory");
        if (!dir && !S_ISREG(st.st_mode))
            return bad(in, S_ISDIR(st.st_mode) ? "is a directory" : "not a regular file");
        if (access(in->v, dir ? R_OK | X_OK : R_OK) != 0)
            return bad(in, "not readable (%s)", strerror(errno));
        if (in->k->check && !in->k->check(in->v, in->why, in->n))
            return OPTIONS_ERR_VALUE;
    }
    return set_string(in->field, in->v);
}

static int parse_dir(const struct parse_in *in) { return parse_path(in, true); }
static int parse_file(const struct parse_in *in) { return parse_path(in, false); }

static int parse_uint(const struct parse_in *in)
{
    const char *p = in->v;
    uint64_t v;
    unsigned long long lo = in->k->min, hi = in->k->max;
    if (!scan_u64(&p, &v) || *p != '\0')
        return bad(in, "not a number (%llu-%llu)", lo, hi);
    if (v < lo || v > hi)
        return bad(in, "out of range (%llu-%llu)", lo, hi);
    if (in->k->pow2 && (v & (v - 1)) != 0)
        return bad(in, "not a power of two");
    *(unsigned *)in->field = (unsigned)v;
    return OPTIONS_OK;
}

static int parse_bool(const struct parse_in *in)
{
    static const char *const t[] = { "yes", "true", "on", "1" }, *const f[] = { "no", "false", "off", "0" };
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(in->v, t[i]) == 0 || strcasecmp(in->v, f[i]) == 0) {
            *(bool *)in->field = strcasecmp(in->v, t[i]) == 0;
            return OPTIONS_OK;
        }
    }
    return bad(in, "not a boolean (yes/no, true/false, on/off, 1/0)");
}

static bool scan_port(const char **p, uint16_t *out)
{
    uint64_t v;
    if (!scan_u64(p, &v) || v > 65535)
        return false;
    *out = (uint16_t)v;
    return true;
}

static int parse_port(const struct parse_in *in)
{
    const char *p = in->v;
    uint16_t port;
    if (!scan_port(&p, &port) || *p != '\0' || port == 0)
        return bad(in, "not a port (1-65535)");
    *(uint16_t *)in->field = port;
    return OPTIONS_OK;
}

/* LO-HI within 1-65535, or 0 / 0-0 for ephemeral ports. */
static int parse_port_range(const struct parse_in *in)
{
    const char *p = in->v;
    struct options_port_range r;
    if (!scan_port(&p, &r.lo))
        goto malformed;
    r.hi = r.lo;
    if (*p == '-' && (p++, !scan_port(&p, &r.hi)))
        goto malformed;
    if (*p != '\0' || (r.lo == 0) != (r.hi == 0))
        goto malformed;
    if (r.lo > r.hi)
        return bad(in, "reversed port range (LO must not exceed HI)");
    *(struct options_port_range *)in->field = r;
    return OPTIONS_OK;
malformed:
    return bad(in, "not a port range (LO-HI within 1-65535, or 0-0 for ephemeral ports)");
}

static int parse_ipv4_kind(const struct parse_in *in)
{
    if (!parse_ipv4(in->v, in->field))
        return bad(in, "not an IPv4 address");
    return OPTIONS_OK;
}

static int parse_cidr_kind(const struct parse_in *in)
{
    return parse_cidr(in->v, in->field, in->why, in->n) ? OPTIONS_OK : OPTIONS_ERR_VALUE;
}

/* A number of bytes, or with a K, M or G (binary) suffix, optionally "KiB". */
static int parse_size(const struct parse_in *in)
{
    const char *p = in->v;
    uint64_t v, mult = 1;
    char lo_s[24], hi_s[24];
    if (!scan_u64(&p, &v))
        goto malformed;
    switch (*p) {
    case 'K': case 'k': mult = 1ull << 10; p++; break;
    case 'M': case 'm': mult = 1ull << 20; p++; break;
    case 'G': case 'g': mult = 1ull << 30; p++; break;
    default: break;
    }
    if (mult > 1 && strcmp(p, "iB") == 0)
        p += 2;
    if (*p != '\0')
        goto malformed;
    fmt_size(lo_s, sizeof lo_s, in->k->min);
    fmt_size(hi_s, sizeof hi_s, in->k->max);
    if (v > UINT64_MAX / mult || v * mult < in->k->min || v * mult > in->k->max)
        return bad(in, "out of range (%s-%s)", lo_s, hi_s);
    *(uint64_t *)in->field = v * mult;
    return OPTIONS_OK;
malformed:
    return bad(in, "not a size (bytes, or a number with K, M or G)");
}

/* A number in the knob's unit, or with ms, s, m or h; stored as milliseconds. */
static int parse_duration(const struct parse_in *in)
{
    static const struct { const char *sfx; uint64_t ms; } sfx[] = {
        { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 }
    };
    const char *p = in->v;
    uint64_t v, mult = unit_ms(in->k), u = unit_ms(in->k);
    if (!scan_u64(&p, &v))
        goto malformed;
    if (*p != '\0') {
        size_t i = 0;
        while (i < 4 && strcmp(p, sfx[i].sfx) != 0)
            i++;
        if (i == 4)
            goto malformed;
        mult = sfx[i].ms;
    }
    if (v > UINT64_MAX / mult || v * mult < in->k->min || v * mult > in->k->max)
        return bad(in, "out of range (%llu-%llu %s)", (unsigned long long)(in->k->min / u),
                   (unsigned long long)(in->k->max / u), in->k->unit);
    *(uint32_t *)in->field = (uint32_t)(v * mult);
    return OPTIONS_OK;
malformed:
    return bad(in, "not a duration (%s, or a number with ms, s, m or h)",
               u == 1000 ? "seconds" : "milliseconds");
}

static int parse_enum(const struct parse_in *in)
{
    size_t len = 0;
    for (unsigned i = 0; in->k->names[i]; i++) {
        if (strcasecmp(in->v, in->k->names[i]) == 0) {
            *(unsigned *)in->field = i;
            return OPTIONS_OK;
        }
    }
    len = (size_t)snprintf(in->why, in->n, "not one of");
    for (unsigned i = 0; in->k->names[i] && len < in->n; i++)
        len += (size_t)snprintf(in->why + len, in->n - len, "%s %s", i ? "," : "", in->k->names[i]);
    return OPTIONS_ERR_VALUE;
}

/* ------------------------------------------------------------- --subnet */

static bool valid_domain(const char *d)
{
    size_t total = strlen(d), label = 0;
    if (total == 0 || total > OPTIONS_DOMAIN_MAX)
        return false;
    for (const char *p = d; ; p++) {
        if (*p == '.' || *p == '\0') {
            /* RFC 1035 §2.3.1: 1-63 characters, no leading or trailing hyphen */
            if (label == 0 || label > 63 || p[-1] == '-' || p[-(long)label] == '-')
                return false;
            if (*p == '\0')
                return true;
            label = 0;
        } else if (isalnum((unsigned char)*p) || *p == '-') {
            label++;
        } else {
            return false;
        }
    }
}

static bool parse_pool(const char *v, struct options_subnet *s)
{
    const char *p = v;
    return scan_ipv4(&p, &s->pool_start) && *p++ == '-' && scan_ipv4(&p, &s->pool_end) && *p == '\0';
}

static bool parse_dns(const char *v, struct options_subnet *s, char *why, size_t n)
{
    const char *p = v;
    for (;;) {
        if (s->dns_count == OPTIONS_SUBNET_MAX_DNS)
            return no(why, n, "dns: more than %d servers", OPTIONS_SUBNET_MAX_DNS);
        if (!scan_ipv4(&p, &s->dns[s->dns_count]) || (*p && *p != '+' && *p != ';'))
            return no(why, n, "dns: not a list of IPv4 addresses (D1+D2...)");
        s->dns_count++;
        if (*p == '\0')
            return true;
        p++;
    }
}

/* One key=value item of a subnet spec after the CIDR. */
static bool subnet_item(char *item, struct options_subnet *s, unsigned *seen, char *why, size_t n)
{
    static const char *const keys[] = { "pool", "router", "dns", "domain", "lease" };
    char *eq = strchr(item, '=');
    unsigned i = 0;
    if (*item == '\0')
        return no(why, n, "empty item");
    if (eq)
        *eq = '\0';
    while (i < 5 && strcmp(item, keys[i]) != 0)
        i++;
    if (i == 5)
        return no(why, n, "unknown key '%.40s' (pool, router, dns, domain, lease)", item);
    if (!eq || eq[1] == '\0')
        return no(why, n, "%s: missing value", keys[i]);
    if (*seen & 1u << i)
        return no(why, n, "%s given twice", keys[i]);
    *seen |= 1u << i;
    const char *v = eq + 1, *p = v;
    uint64_t lease;
    switch (i) {
    case 0:
        if (parse_pool(v, s))
            return true;
        return no(why, n, "pool %.40s: not a range A-B of IPv4 addresses", v);
    case 1:
        if (parse_ipv4(v, &s->router))
            return true;
        return no(why, n, "router %.40s: not an IPv4 address", v);
    case 2:
        return parse_dns(v, s, why, n);
    case 3:
        if (valid_domain(v)) {
            memcpy(s->domain, v, strlen(v) + 1);
            return true;
        }
        return no(why, n, "domain %.40s: not a domain name", v);
    default:
        /* 0xffffffff means "infinite" in RFC 2131 §3.3; a rollout wants leases that end */
        if (scan_u64(&p, &lease) && *p == '\0' && lease >= 60 && lease <= 0xfffffffe) {
            s->lease_s = (uint32_t)lease;
            return true;
        }
        return no(why, n, "lease %.40s: not a number of seconds (60-4294967294)", v);
    }
}

/* The relations between the parts of one subnet. */
static bool subnet_consistent(const struct options_subnet *s, char *why, size_t n)
{
    uint32_t mask = prefix_mask(s->prefix), bcast = s->network | ~mask;
    char a[16], b[16], net[16];
    fmt_ipv4(net, s->network);
    if (s->pool_start || s->pool_end) {
        fmt_ipv4(a, s->pool_start);
        fmt_ipv4(b, s->pool_end);
        if ((s->pool_start & mask) != s->network || (s->pool_end & mask) != s->network)
            return no(why, n, "pool %s-%s outside %s/%u", a, b, net, s->prefix);
        if (s->pool_start > s->pool_end)
            return no(why, n, "pool %s-%s reversed (start above end)", a, b);
        if (s->pool_start == s->network || s->pool_end == bcast)
            return no(why, n, "pool %s-%s includes the %s address", a, b,
                      s->pool_start == s->network ? "network" : "broadcast");
    }
    if (s->router) {
        fmt_ipv4(a, s->router);
        if ((s->router & mask) != s->network || s->router == s->network || s->router == bcast)
            return no(why, n, "router %s not a host address of %s/%u", a, net, s->prefix);
        if ((s->pool_start || s->pool_end) && s->router >= s->pool_start && s->router <= s->pool_end)
            return no(why, n, "router %s inside the pool", a);
    }
    for (unsigned i = 0; i < s->dns_count; i++) {
        if (s->dns[i] == 0 || s->dns[i] == 0xffffffffu) {
            fmt_ipv4(a, s->dns[i]);
            return no(why, n, "dns %s: not a server address", a);
        }
    }
    return true;
}

static int parse_subnet(const struct parse_in *in)
{
    struct options_subnet_list *list = in->field;
    struct options_subnet s = { .lease_s = 3600 };
    struct options_cidr c;
    char buf[1024], *save = NULL, *item;
    unsigned seen = 0;
    if (strlen(in->v) >= sizeof buf)
        return bad(in, "longer than %zu characters", sizeof buf - 1);
    strcpy(buf, in->v);
    /* strtok_r would merge ",," into one separator; an empty item is an error */
    item = buf;
    save = strchr(item, ',');
    if (save)
        *save++ = '\0';
    if (!parse_cidr(item, &c, in->why, in->n))
        return OPTIONS_ERR_VALUE;
    if (c.prefix < 1 || c.prefix > 30)
        return bad(in, "prefix /%u out of range (1-30)", c.prefix);
    s.network = c.addr;
    s.prefix = c.prefix;
    while (save) {
        item = save;
        save = strchr(item, ',');
        if (save)
            *save++ = '\0';
        if (!subnet_item(item, &s, &seen, in->why, in->n))
            return OPTIONS_ERR_VALUE;
    }
    if (!subnet_consistent(&s, in->why, in->n))
        return OPTIONS_ERR_VALUE;
    for (size_t i = 0; i < list->count; i++) {
        const struct options_subnet *t = &list->items[i];
        uint32_t m = prefix_mask(t->prefix < s.prefix ? t->prefix : s.prefix);
        if ((t->network & m) == (s.network & m)) {
            char net[16];
            fmt_ipv4(net, t->network);
            return bad(in, "overlaps --subnet %s/%u", net, t->prefix);
        }
    }
    struct options_subnet *items = realloc(list->items, (list->count + 1) * sizeof *items);
    if (!items)
        return OPTIONS_ERR_NOMEM;
    items[list->count++] = s;
    list->items = items;
    return OPTIONS_OK;
}

static int (*const parsers[])(const struct parse_in *) = {
    [K_STRING] = parse_string, [K_DIR] = parse_dir, [K_FILE] = parse_file,
    [K_UINT] = parse_uint, [K_BOOL] = parse_bool, [K_PORT] = parse_port,
    [K_PORT_RANGE] = parse_port_range, [K_IPV4] = parse_ipv4_kind, [K_CIDR] = parse_cidr_kind,
    [K_SIZE] = parse_size, [K_DURATION] = parse_duration, [K_ENUM] = parse_enum,
    [K_SUBNET] = parse_subnet,
};

/* --------------------------------------------------- per-knob string checks */

static bool check_ifname(const char *v, char *why, size_t n)
{
    /* what the kernel's dev_valid_name() accepts */
    size_t len = strlen(v);
    bool ok = len < 16 && strcmp(v, ".") != 0 && strcmp(v, "..") != 0 && strpbrk(v, "/: \t") == NULL;
    if (!ok)
        snprintf(why, n, "not an interface name (1-15 characters, no '/', ':' or spaces)");
    return ok;
}

/* "system", or a name the kernel lists as available (when it can be read) */
static bool check_congestion(const char *v, char *why, size_t n)
{
    if (strcmp(v, "system") == 0)
        return true;
    if (!*v || strlen(v) > 15 || strpbrk(v, " \t/"))
        return no(why, n, "not a congestion control name (1-15 characters, no spaces or '/')");
    char list[256] = "";
    FILE *f = fopen("/proc/sys/net/ipv4/tcp_available_congestion_control", "r");
    if (!f)
        return true; /* no /proc here: setting it on the listener will tell */
    if (!fgets(list, sizeof(list), f))
        list[0] = 0;
    fclose(f);
    list[strcspn(list, "\n")] = 0;
    size_t len = strlen(v);
    for (const char *p = list; (p = strstr(p, v)) != NULL; p += len)
        if ((p == list || p[-1] == ' ') && (p[len] == ' ' || p[len] == 0))
            return true;
    snprintf(why, n, "not available in this kernel (available: %s; or system)", list);
    return false;
}

static bool check_bootfile(const char *v, char *why, size_t n)
{
    /* it goes into the BOOTP header's 128-byte file field too (RFC 951), which shim reads */
    if (strlen(v) > 127)
        return no(why, n, "longer than 127 bytes (the BOOTP file field)");
    return true;
}

static bool check_http_prefix(const char *v, char *why, size_t n)
{
    if (strncasecmp(v, "http://", 7) != 0 && strncasecmp(v, "https://", 8) != 0)
        return no(why, n, "not an http:// or https:// URL");
    if (strpbrk(v, " \t"))
        return no(why, n, "contains white space");
    return true;
}

/* --boot-ipxe none: NICs flashed with iPXE (and QEMU, whose PXE ROMs are all
 * iPXE) then load pxelinux.0 / GRUB over TFTP like any other PXE ROM. */
static bool check_ipxe_url(const char *v, char *why, size_t n)
{
    return strcmp(v, "none") == 0 || check_url_template(v, why, n);
}

static bool check_url_template(const char *v, char *why, size_t n)
{
    static const char *const names[] = { "server", "http_port", "mac", "ip", "hostname", "loader" };
    if (!check_http_prefix(v, why, n))
        return false;
    if (strlen(v) > 255) {  /* option 67 holds at most 255 bytes (RFC 2132 §9.5) */
        return no(why, n, "longer than 255 bytes (DHCP option 67)");
    }
    for (const char *p = v; *p; p++) {
        if (*p == '}') {
            return no(why, n, "'}' without '{'");
        }
        if (*p != '{')
            continue;
        const char *end = strchr(p, '}');
        size_t len = end ? (size_t)(end - p - 1) : 0, i = 0;
        while (end && i < 6 && !(strlen(names[i]) == len && strncmp(p + 1, names[i], len) == 0))
            i++;
        if (!end || i == 6)
            return no(why, n, "unknown placeholder at '%.20s' "
                      "({server} {http_port} {mac} {ip} {hostname} {loader})", p);
        p = end;
    }
    return true;
}

static bool check_server_url(const char *v, char *why, size_t n)
{
    return check_http_prefix(v, why, n);
}

static bool check_profile_name(const char *v, char *why, size_t n)
{
    bool ok = strlen(v) <= 64 && v[0] != '.';
    for (const char *p = v; ok && *p; p++)
        ok = isalnum((unsigned char)*p) || *p == '.' || *p == '_' || *p == '-';
    if (!ok)
        snprintf(why, n, "not a profile name (up to 64 letters, digits, '.', '_', '-', no leading '.')");
    return ok;
}

static bool check_token(const char *v, char *why, size_t n)
{
    if (strlen(v) > 256 || strpbrk(v, " \t"))
        return no(why, n, "not a token (up to 256 characters, no white space)");
    return true;
}

/* An existing writable directory, or a missing one whose parent is writable
 * (serve creates it). */
static bool check_writable(const char *v, char *why, size_t n)
{
    struct stat st;
    if (stat(v, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            return no(why, n, "not a directory");
        if (access(v, W_OK) != 0)
            return no(why, n, "not writable (%s)", strerror(errno));
        return true;
    }
    char parent[4096];
    snprintf(parent, sizeof(parent), "%s", v);
    char *slash = strrchr(parent, '/');
    if (slash == parent)
        slash[1] = 0;
    else if (slash)
        *slash = 0;
    else
        snprintf(parent, sizeof(parent), ".");
    if (access(parent, W_OK) != 0)
        return no(why, n, "missing, and its parent %s is not writable (%s)", parent, strerror(errno));
    return true;
}

/* -------------------------------------------------------- messages, context */

struct ctx {
    const char *file;        /* config file being read, NULL on the command line */
    unsigned line;
    unsigned src[N_KNOBS];   /* file line that last set the knob; 0: default or command line */
    bool cli[N_KNOBS];       /* set on the command line */
    char *err;
    size_t errlen;
};

/* The value as it appears in a message: quoted when empty or holding spaces,
 * bytes outside printable ASCII as \xNN, cut after 120 characters. */
static void show_value(char *buf, size_t n, const char *v)
{
    bool quote = *v == '\0' || strpbrk(v, " \t") != NULL;
    size_t len = 0, shown = 0;
    if (quote && len + 1 < n)
        buf[len++] = '\'';
    for (; *v && len + 8 < n; v++, shown++) {
        unsigned char c = (unsigned char)*v;
        if (shown == 120) {
            len += (size_t)snprintf(buf + len, n - len, "...");
            break;
        }
        if (c < 0x20 || c >= 0x7f)
            len += (size_t)snprintf(buf + len, n - len, "\\x%02x", c);
        else
            buf[len++] = (char)c;
    }
    if (quote && len + 1 < n)
        buf[len++] = '\'';
    buf[len] = '\0';
}

/* "--name value: why" on the command line, "file:line: name value: why" in a file. */
static int fail(struct ctx *c, int code, const char *name, const char *value, const char *fmt, ...)
{
    char shown[512] = "", why[OPTIONS_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (value)
        show_value(shown, sizeof shown, value);
    if (c->file)
        snprintf(c->err, c->errlen, "%s:%u: %s%s%s: %s", c->file, c->line, name, value ? " " : "", shown, why);
    else
        snprintf(c->err, c->errlen, "--%s%s%s: %s", name, value ? " " : "", shown, why);
    return code;
}

/* Parse v into k's field; the error names the knob and value. */
static int apply(struct options *o, struct ctx *c, const struct knob *k, const char *v, bool check_fs)
{
    char why[OPTIONS_ERR_MAX];
    if (*v == '\0')
        return fail(c, OPTIONS_ERR_MISSING, k->name, NULL, "missing value");
    struct parse_in in = { k, v, field_of(o, k), check_fs, why, sizeof why };
    int rc = parsers[k->kind](&in);
    if (rc == OPTIONS_ERR_NOMEM)
        return fail(c, rc, k->name, NULL, "out of memory");
    if (rc != OPTIONS_OK)
        return fail(c, rc, k->name, v, "%s", why);
    size_t i = (size_t)(k - knobs);
    c->src[i] = c->file ? c->line : 0;
    return OPTIONS_OK;
}

/* ------------------------------------------------------ defaults, free */

static unsigned cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 1024 ? 1024 : (unsigned)n;
}

void options_free(struct options *o)
{
    for (size_t i = 0; i < N_KNOBS; i++) {
        void *f = field_of(o, &knobs[i]);
        if (knobs[i].kind == K_STRING || knobs[i].kind == K_DIR || knobs[i].kind == K_FILE) {
            free(*(char **)f);
            *(char **)f = NULL;
        } else if (knobs[i].kind == K_SUBNET) {
            struct options_subnet_list *l = f;
            free(l->items);
            l->items = NULL;
            l->count = 0;
        }
    }
}

int options_defaults(struct options *o)
{
    char err[OPTIONS_ERR_MAX];
    struct ctx c = { .err = err, .errlen = sizeof err };
    memset(o, 0, sizeof *o);
    for (size_t i = 0; i < N_KNOBS; i++) {
        if (!knobs[i].def)
            continue;
        int rc = apply(o, &c, &knobs[i], knobs[i].def, false);
        if (rc != OPTIONS_OK)
            return rc;  /* a bad default is a bug in the table; test_options checks all */
    }
    o->threads = cpu_count();
    return OPTIONS_OK;
}

bool options_dhcp_enabled(const struct options *o)
{
    return o->subnets.count > 0 || o->proxy_dhcp;
}

bool options_tftp_enabled(const struct options *o)
{
    return o->tftp_root != NULL;
}

/* ---------------------------------------------------------- config file */

static char *skip_ws(char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* Splits one line into key and value (NULL: a bare key).  false: not key = value. */
static bool split_line(char *line, char **key, char **value, const char **why)
{
    char *p = skip_ws(line), *end;
    *key = p;
    *value = NULL;
    if (isalpha((unsigned char)*p))
        while (isalnum((unsigned char)*p) || *p == '-')
            p++;
    end = p;
    p = skip_ws(p);
    if (end == *key || (*p != '=' && *p != '\0' && !(*p == '#' && p > end))) {
        *why = "expected 'key = value'";
        return false;
    }
    bool has_value = *p == '=';
    *end = '\0';
    if (!has_value)
        return true;
    p = skip_ws(p + 1);
    if (*p == '"') {
        char *close = strchr(p + 1, '"');
        if (!close) {
            *why = "unterminated quote";
            return false;
        }
        *close = '\0';
        *value = p + 1;
        p = skip_ws(close + 1);
        if (*p != '\0' && *p != '#') {
            *why = "text after the closing quote";
            return false;
        }
        return true;
    }
    *value = p;
    for (; *p; p++) {
        if (*p == '#' && (p == *value || p[-1] == ' ' || p[-1] == '\t')) {
            *p = '\0';
            break;
        }
    }
    while (p > *value && (p[-1] == ' ' || p[-1] == '\t'))
        *--p = '\0';
    return true;
}

static int config_line(struct options *o, struct ctx *c, char *line, size_t len)
{
    char *key, *value;
    const char *why;
    if (strlen(line) != len) {
        snprintf(c->err, c->errlen, "%s:%u: contains a NUL byte", c->file, c->line);
        return OPTIONS_ERR_CONFIG;
    }
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        line[--len] = '\0';
    if (c->line == 1 && len >= 3 && memcmp(line, "\xef\xbb\xbf", 3) == 0)
        line += 3;  /* UTF-8 byte order mark */
    char *p = skip_ws(line);
    if (*p == '\0' || *p == '#')
        return OPTIONS_OK;
    if (!split_line(line, &key, &value, &why)) {
        snprintf(c->err, c->errlen, "%s:%u: %s", c->file, c->line, why);
        return OPTIONS_ERR_CONFIG;
    }
    const struct knob *k = knob_by_name(key);
    if (!k)
        return fail(c, OPTIONS_ERR_UNKNOWN, key, NULL, "unknown key");
    if (k->kind == K_FILE && strcmp(k->name, "config") == 0)
        return fail(c, OPTIONS_ERR_CONFIG, key, NULL, "not allowed in a config file");
    size_t i = (size_t)(k - knobs);
    if (c->src[i] && k->kind != K_SUBNET)
        return fail(c, OPTIONS_ERR_CONFIG, key, NULL, "given twice (first on line %u)", c->src[i]);
    if (!value && k->kind != K_BOOL)
        return fail(c, OPTIONS_ERR_MISSING, key, NULL, "missing value (key = value)");
    return apply(o, c, k, value ? value : "yes", true);
}

static int read_config(struct options *o, struct ctx *c, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return fail(c, OPTIONS_ERR_CONFIG, "config", path, "cannot open (%s)", strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = OPTIONS_OK;
    c->file = path;
    c->line = 0;
    while (rc == OPTIONS_OK && (len = getline(&line, &cap, f)) >= 0) {
        c->line++;
        rc = config_line(o, c, line, (size_t)len);
    }
    if (rc == OPTIONS_OK && ferror(f)) {
        snprintf(c->err, c->errlen, "%s: read error (%s)", path, strerror(errno));
        rc = OPTIONS_ERR_CONFIG;
    }
    free(line);
    fclose(f);
    c->file = NULL;
    c->line = 0;
    return rc;
}

/* ---------------------------------------------------------- command line */

enum { VAL_BASE = 256 };  /* getopt val of knob i: VAL_BASE + i */

static size_t build_longopts(struct option *lo, enum options_command cmd)
{
    size_t n = 0;
    for (size_t i = 0; i < N_KNOBS; i++) {
        if (!(knobs[i].cmds & 1u << cmd))
            continue;
        lo[n++] = (struct option){ knobs[i].name, knobs[i].kind == K_BOOL ? optional_argument : required_argument,
                                   NULL, VAL_BASE + (int)i };
    }
    lo[n++] = (struct option){ "help", no_argument, NULL, 'h' };
    lo[n] = (struct option){ NULL, 0, NULL, 0 };
    return n;
}

/* getopt_long said '?' for the element before optind: say which problem. */
static int unknown_option(struct ctx *c, enum options_command cmd, const char *arg, int opt)
{
    if (opt == 'h')
        return snprintf(c->err, c->errlen, "--help: takes no value"), OPTIONS_ERR_VALUE;
    if (opt > 0 && opt < VAL_BASE)
        return snprintf(c->err, c->errlen, "-%c: unknown option", opt), OPTIONS_ERR_UNKNOWN;
    char name[64], shown[512];
    const char *s = arg + strspn(arg, "-");
    size_t len = strcspn(s, "=");
    snprintf(name, sizeof name, "%.*s", (int)(len < 60 ? len : 60), s);
    show_value(shown, sizeof shown, name);  /* one line, whatever was typed */
    const struct knob *k = knob_by_name(name);
    if (k) {
        snprintf(c->err, c->errlen, "--%s: not an option of '%s'", name, command_names[cmd]);
        return OPTIONS_ERR_UNKNOWN;
    }
    size_t matches = 0, at = 0;
    for (size_t i = 0; i < N_KNOBS; i++)
        if ((knobs[i].cmds & 1u << cmd) && strncmp(knobs[i].name, name, len) == 0)
            at = matches++ ? at : i;
    if (len > 0 && matches > 1)
        snprintf(c->err, c->errlen, "--%s: ambiguous option (--%s and %zu more)", shown, knobs[at].name,
                 matches - 1);
    else
        snprintf(c->err, c->errlen, "--%s: unknown option", shown);
    return OPTIONS_ERR_UNKNOWN;
}

/* One getopt_long pass.  Pass 1 (apply_values false) finds --help, --config and
 * option errors; pass 2 applies the values over the config file's. */
static int cli_pass(struct options *o, struct ctx *c, enum options_command cmd, int argc, char **argv,
                    const struct option *lo, bool apply_values, const char **config)
{
    int opt;
    optind = 0;  /* GNU: full re-initialisation */
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
        if (opt == 'h')
            return OPTIONS_HELP;
        if (opt == ':' && optopt >= VAL_BASE && optopt < VAL_BASE + N_KNOBS)
            return fail(c, OPTIONS_ERR_MISSING, knobs[optopt - VAL_BASE].name, NULL, "missing value");
        if (opt == ':' || opt == '?')
            return unknown_option(c, cmd, argv[optind - 1], optopt);
        const struct knob *k = &knobs[opt - VAL_BASE];
        const char *v = optarg ? optarg : "yes";  /* a bool without =VALUE */
        size_t i = (size_t)(opt - VAL_BASE);
        if (strcmp(k->name, "config") == 0) {
            *config = optarg;  /* read (and applied) between the passes */
            continue;
        }
        if (!apply_values)
            continue;
        if (k->kind == K_SUBNET && !c->cli[i]) {
            /* the command line's --subnet list replaces the file's */
            struct options_subnet_list *l = field_of(o, k);
            l->count = 0;
        }
        c->cli[i] = true;
        int rc = apply(o, c, k, v, true);
        if (rc != OPTIONS_OK)
            return rc;
    }
    return OPTIONS_OK;
}

/* ------------------------------------------------ relations between knobs */

static int conflict(struct ctx *c, const char *name, const char *fmt, ...)
{
    const struct knob *k = knob_by_name(name);
    unsigned line = c->src[k - knobs];
    char why[OPTIONS_ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (line)
        snprintf(c->err, c->errlen, "%s:%u: %s%s", c->file, line, name, why);
    else
        snprintf(c->err, c->errlen, "--%s%s", name, why);
    return OPTIONS_ERR_CONFLICT;
}

static bool in_range(struct options_port_range r, unsigned port)
{
    return r.lo != 0 && port >= r.lo && port <= r.hi;
}

/* UDP ports bound by the services must differ; the requirements of one knob on
 * another are checked here, once everything is read. */
static int check_relations(const struct options *o, struct ctx *c)
{
    bool dhcp = options_dhcp_enabled(o), tftp = options_tftp_enabled(o);
    struct options_port_range r = o->tftp_ports;
    if (dhcp && tftp && o->dhcp_port == o->tftp_port)
        return conflict(c, "tftp-port", " %u: also the --dhcp-port", o->tftp_port);
    if (o->proxy_dhcp && (o->dhcp_port == 4011 || (tftp && o->tftp_port == 4011)))
        return conflict(c, "proxy-dhcp", ": needs UDP port 4011, which --%s uses",
                        o->dhcp_port == 4011 ? "dhcp-port" : "tftp-port");
    if (tftp && in_range(r, o->tftp_port))
        return conflict(c, "tftp-ports", " %u-%u: includes --tftp-port %u", r.lo, r.hi, o->tftp_port);
    if (tftp && dhcp && in_range(r, o->dhcp_port))
        return conflict(c, "tftp-ports", " %u-%u: includes --dhcp-port %u", r.lo, r.hi, o->dhcp_port);
    if (tftp && o->proxy_dhcp && in_range(r, 4011))
        return conflict(c, "tftp-ports", " %u-%u: includes 4011 (proxyDHCP)", r.lo, r.hi);
    for (size_t i = 0; o->proxy_dhcp && i < o->subnets.count; i++) {
        const struct options_subnet *s = &o->subnets.items[i];
        if (s->pool_start || s->pool_end) {
            char net[16];
            fmt_ipv4(net, s->network);
            return conflict(c, "proxy-dhcp", ": --subnet %s/%u has a pool, but proxyDHCP never "
                            "hands out addresses", net, s->prefix);
        }
    }
    if (o->known_only && !o->hosts)
        return conflict(c, "known-only", ": needs --hosts (no machine would be answered)");
    if (o->default_profile && !o->profiles)
        return conflict(c, "default-profile", " %s: needs --profiles", o->default_profile);
    return OPTIONS_OK;
}

int options_parse(struct options *o, enum options_command cmd, int argc, char **argv,
                  int *first_arg, char *err, size_t errlen)
{
    struct ctx c = { .err = err, .errlen = errlen };
    struct option lo[N_KNOBS + 2];
    const char *config = NULL;
    if (errlen)
        err[0] = '\0';
    int rc = options_defaults(o);
    if (rc != OPTIONS_OK) {
        snprintf(err, errlen, rc == OPTIONS_ERR_NOMEM ? "out of memory" : "a default in the option table is bad");
        return rc;
    }
    if ((unsigned)cmd >= OPTIONS_CMD_COUNT) {
        snprintf(err, errlen, "unknown command");
        return OPTIONS_ERR_UNKNOWN;
    }
    build_longopts(lo, cmd);
    rc = cli_pass(o, &c, cmd, argc, argv, lo, false, &config);
    if (rc != OPTIONS_OK)
        return rc;
    if (config) {
        rc = apply(o, &c, knob_by_name("config"), config, true);
        if (rc == OPTIONS_OK)
            rc = read_config(o, &c, config);
        if (rc != OPTIONS_OK)
            return rc;
        c.file = o->config;  /* for messages about knobs the file set */
    }
    const char *file = c.file;
    c.file = NULL;
    rc = cli_pass(o, &c, cmd, argc, argv, lo, true, &config);
    if (rc != OPTIONS_OK)
        return rc;
    c.file = file;
    if (o->threads == 0)
        o->threads = cpu_count();
    rc = check_relations(o, &c);
    if (rc != OPTIONS_OK)
        return rc;
    if (first_arg)
        *first_arg = optind;
    else if (optind < argc) {
        char shown[160];
        show_value(shown, sizeof shown, argv[optind]);
        snprintf(err, errlen, "%s: unexpected argument (bootstorm %s takes none)", shown, command_names[cmd]);
        return OPTIONS_ERR_ARGUMENT;
    }
    return OPTIONS_OK;
}

/* ---------------------------------------------------------------- help */

static const char *kind_arg(const struct knob *k)
{
    static const char *const args[] = {
        [K_STRING] = "TEXT", [K_DIR] = "DIR", [K_FILE] = "FILE", [K_UINT] = "N", [K_BOOL] = "BOOL",
        [K_PORT] = "PORT", [K_PORT_RANGE] = "LO-HI", [K_IPV4] = "ADDR", [K_CIDR] = "CIDR",
        [K_SIZE] = "SIZE", [K_DURATION] = "DURATION", [K_ENUM] = NULL, [K_SUBNET] = "SPEC",
    };
    if (k->arg)
        return k->arg;
    if (k->kind == K_ENUM)
        return k->names == backend_names ? "auto|uring|epoll" : "NAME";
    return args[k->kind];
}

static void option_text(char *buf, size_t n, const struct knob *k)
{
    if (k->kind == K_BOOL)
        snprintf(buf, n, "--%s[=BOOL]", k->name);
    else
        snprintf(buf, n, "--%s %s", k->name, kind_arg(k));
}

static const char *default_text(const struct knob *k)
{
    return k->shown ? k->shown : k->def ? k->def : "none";
}

/* Range of a numeric knob as help shows it, "" for the others. */
static void range_text(char *buf, size_t n, const struct knob *k)
{
    char lo_s[24], hi_s[24];
    buf[0] = '\0';
    if (k->kind == K_UINT) {
        snprintf(buf, n, "%llu-%llu%s", (unsigned long long)k->min, (unsigned long long)k->max,
                 k->pow2 ? ", a power of two" : "");
    } else if (k->kind == K_SIZE) {
        fmt_size(lo_s, sizeof lo_s, k->min);
        fmt_size(hi_s, sizeof hi_s, k->max);
        snprintf(buf, n, "%s-%s", lo_s, hi_s);
    } else if (k->kind == K_DURATION) {
        snprintf(buf, n, "%llu-%llu", (unsigned long long)(k->min / unit_ms(k)),
                 (unsigned long long)(k->max / unit_ms(k)));
    }
}

/* Words of text wrapped into the columns [col, width), the first line
 * continuing at column *at. */
static void wrap(FILE *out, const char *text, int col, int width, int at)
{
    const char *p = text;
    while (*p) {
        size_t w = strcspn(p, " ");
        if (at > col && at + 1 + (int)w > width) {
            fprintf(out, "\n%*s", col, "");
            at = col;
        } else if (at > col) {
            fputc(' ', out);
            at++;
        }
        fprintf(out, "%.*s", (int)w, p);
        at += (int)w;
        p += w;
        p += strspn(p, " ");
    }
    fputc('\n', out);
}

int options_print_help(FILE *out, enum options_command cmd)
{
    enum { COL = 32, WIDTH = 79 };
    const char *name = options_command_name(cmd);
    if (!name)
        return -1;
    fprintf(out, "usage: bootstorm %s [OPTIONS]%s\n", name,
            cmd == OPTIONS_CMD_RENDER ? " MAC|HOSTNAME [WHAT]" : "");
    fprintf(out, "Every option can also be set in the --config file as 'name = value'.\n"
            "DURATION: a number in the unit shown, or with ms, s, m, h.\n"
            "SIZE: bytes, or with K, M, G.  BOOL: yes/no, true/false, on/off, 1/0;\n"
            "'--knob' alone means yes.\n");
    for (int g = 0; g < G_COUNT; g++) {
        bool any = false;
        for (size_t i = 0; i < N_KNOBS; i++) {
            const struct knob *k = &knobs[i];
            if (k->group != (enum group)g || !(k->cmds & 1u << cmd))
                continue;
            if (!any)
                fprintf(out, "\n%s:\n", group_title[g]);
            any = true;
            char opt[64], range[48], text[640];
            option_text(opt, sizeof opt, k);
            range_text(range, sizeof range, k);
            int at = fprintf(out, "  %s", opt);
            if (at >= COL - 1) {
                fprintf(out, "\n");
                at = 0;
            }
            fprintf(out, "%*s", COL - at, "");
            snprintf(text, sizeof text, "%s [default: %s%s%s%s%s]", k->help, default_text(k),
                     k->unit ? " " : "", k->unit ? k->unit : "", range[0] ? "; range " : "", range);
            wrap(out, text, COL, WIDTH, COL);
        }
    }
    fprintf(out, "\n  %-*sthis text\n", COL - 2, "-h, --help");
    return ferror(out) ? -1 : 0;
}

static void md_escaped(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '|')
            fputs("\\|", out);
        else
            fputc(*s, out);
    }
}

int options_print_markdown(FILE *out)
{
    for (int g = 0; g < G_COUNT; g++) {
        fprintf(out, "%s### %s\n\n| Option | Default | Unit | Description |\n|---|---|---|---|\n",
                g ? "\n" : "", group_title[g]);
        for (size_t i = 0; i < N_KNOBS; i++) {
            const struct knob *k = &knobs[i];
            if (k->group != (enum group)g)
                continue;
            char opt[64], range[48];
            option_text(opt, sizeof opt, k);
            range_text(range, sizeof range, k);
            fputs("| `", out);
            md_escaped(out, opt);
            fputs("` | ", out);
            if (k->def || k->shown) {
                fputc('`', out);
                md_escaped(out, default_text(k));
                fputc('`', out);
            } else {
                fputs("none", out);
            }
            fprintf(out, " | %s | ", k->unit ? k->unit : "");
            md_escaped(out, k->help);
            if (range[0]) {
                fputs(" (range ", out);
                md_escaped(out, range);
                fputc(')', out);
            }
            fputs(" |\n", out);
        }
    }
    return ferror(out) ? -1 : 0;
}
