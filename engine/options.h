/* engine/options: the one option table of bootstorm.
 *
 * A single static table (engine/options.c) describes every knob: its long name
 * (also its config-file key), value kind, default, unit, help text, the commands
 * that accept it and where its value lives in struct options.  The getopt_long
 * array, the config-file reader, --help and the README's Markdown list are all
 * generated from it (STYLE §2.12).
 *
 * Parse order: table defaults -> config file (--config FILE) -> command line.
 * The command line wins; for a repeatable knob (--subnet) the command line's
 * occurrences replace the file's list.  A bad value anywhere stops parsing with
 * one line in the caller's buffer, without the program name and newline:
 *     --http-port 70000: not a port (1-65535)
 *     /etc/bootstorm.conf:12: http-port 70000: not a port (1-65535)
 * The caller prints "bootstorm: <line>" and exits 2.  Nothing here exits or
 * prints, except the help and Markdown printers, which write to the FILE*.
 *
 * Config file: one `key = value` per line, keys are the long names without the
 * dashes; '#' starts a comment at the start of a line or after white space; a
 * value may be put in double quotes (then '#' inside is literal); a bool key alone
 * on its line means true; bools are true/false, yes/no, on/off, 1/0.  A key other
 * than a repeatable one may appear once.  Every key of the table is accepted in a
 * file whatever the command, so serve, check, ports and status share one file.
 * Relative paths are taken relative to the working directory.
 *
 * On the command line a bool is `--quiet` (true) or `--quiet=no`; a later
 * occurrence of a knob replaces an earlier one.
 *
 * Addresses are IPv4 in host byte order (htonl() before putting them in a
 * sockaddr).  Durations are milliseconds, sizes bytes.  Strings are NUL-terminated,
 * heap-allocated, owned by struct options (NULL when unset) and freed by
 * options_free().
 */
#ifndef BOOTSTORM_ENGINE_OPTIONS_H
#define BOOTSTORM_ENGINE_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Commands that take knobs; each knob in the table lists the ones that accept it. */
enum options_command {
    OPTIONS_CMD_SERVE,
    OPTIONS_CMD_CHECK,   /* validate inventory, profiles, templates */
    OPTIONS_CMD_RENDER,  /* render MAC|HOSTNAME [WHAT]: positionals via *first_arg */
    OPTIONS_CMD_STATUS,  /* ask a running server for per-host progress */
    OPTIONS_CMD_PORTS,   /* print the firewall rules for this configuration */
    OPTIONS_CMD_COUNT
};

enum options_result {
    OPTIONS_OK = 0,
    OPTIONS_HELP,          /* --help / -h: print options_print_help() and exit 0 */
    OPTIONS_ERR_UNKNOWN,   /* unknown (or ambiguous) option, unknown config key */
    OPTIONS_ERR_MISSING,   /* an option that needs a value got none */
    OPTIONS_ERR_VALUE,     /* a value of the wrong form, out of range, missing path */
    OPTIONS_ERR_CONFLICT,  /* values valid alone but not together */
    OPTIONS_ERR_CONFIG,    /* config file unreadable, or a line that is not key = value */
    OPTIONS_ERR_ARGUMENT,  /* a positional argument where the command takes none */
    OPTIONS_ERR_NOMEM
};

enum options_backend {
    OPTIONS_BACKEND_AUTO,  /* io_uring, falling back to epoll when unavailable */
    OPTIONS_BACKEND_URING,
    OPTIONS_BACKEND_EPOLL
};

#define OPTIONS_SUBNET_MAX_DNS 4
#define OPTIONS_DOMAIN_MAX 253       /* RFC 1035 §2.3.4, textual form */
/* An error buffer this big holds any message unless a file name in it is very
 * long (values in messages are cut at 120 characters); longer ones are cut. */
#define OPTIONS_ERR_MAX 1024

struct options_port_range {
    uint16_t lo, hi;                 /* 0-0: ephemeral ports chosen by the kernel */
};

struct options_cidr {
    uint32_t addr;                   /* network address, host bits zero */
    uint8_t prefix;                  /* 0-32 */
};

/* One --subnet CIDR,pool=A-B,router=R,dns=D[+D2...],domain=X,lease=SECONDS.
 * Only the CIDR is required.  No pool: static reservations only.  No router: no
 * option 3.  The DNS list separator is '+' (';' is accepted too, but needs
 * quoting in a shell).  Validated: network address without host bits, prefix
 * 1-30, pool and router inside the subnet and not its network or broadcast
 * address, pool not reversed, router outside the pool, subnets do not overlap. */
struct options_subnet {
    uint32_t network;                /* host bits zero */
    uint8_t prefix;                  /* 1-30 */
    uint32_t pool_start, pool_end;   /* both 0: no pool */
    uint32_t router;                 /* 0: none */
    uint32_t dns[OPTIONS_SUBNET_MAX_DNS];
    unsigned dns_count;
    char domain[OPTIONS_DOMAIN_MAX + 1]; /* "" : none */
    uint32_t lease_s;                /* lease time, seconds (default 3600) */
};

struct options_subnet_list {
    struct options_subnet *items;
    size_t count;
};

struct options {
    /* General */
    char *config;                    /* the file read, NULL: none */
    uint32_t listen;                 /* address the services bind, 0 = any */
    unsigned threads;                /* workers; the table's 0 resolves to the CPU count */
    enum options_backend backend;
    unsigned ring_entries;           /* io_uring submission queue entries */
    bool quiet;                      /* no access log */

    /* HTTP (always on: API, metrics and dashboard live there) */
    char *http_root;                 /* static tree, NULL: none */
    uint16_t http_port;
    uint32_t http_idle_timeout_ms;   /* before the first byte, between keep-alive requests */
    uint32_t http_header_timeout_ms; /* total deadline for the request headers */
    uint32_t http_send_timeout_ms;   /* a downloader that takes nothing this long is dropped */
    unsigned max_conns;              /* beyond it: 503 */
    uint64_t http_chunk;             /* body bytes per connection per turn */
    char *http_tcp_congestion;       /* TCP congestion control of HTTP connections; "system": the kernel's */
    uint32_t http_defer_accept_ms;   /* TCP_DEFER_ACCEPT on the listener, 0: off */
    bool http_index;                 /* directory listings */

    /* DHCP (on when a --subnet is given or --proxy-dhcp: options_dhcp_enabled()) */
    uint16_t dhcp_port;
    struct options_subnet_list subnets;
    char *interface;                 /* NULL: every interface */
    uint32_t next_server;            /* 0: our address on the client's subnet */
    char *boot_bios;                 /* arch 0 */
    char *boot_efi64;                /* arch 7, 9 */
    char *boot_arm64;                /* arch 11 */
    char *boot_ipxe;                 /* URL template, user class "iPXE" */
    char *boot_http;                 /* URL template, UEFI HTTP boot (arch 15, 16, 19) */
    bool known_only;                 /* answer only machines in --hosts */
    bool proxy_dhcp;                 /* boot information only, also on 4011 */
    bool dhcp_arp;                   /* unicast replies through a manual ARP entry */
    bool ipv6_ra;                    /* send IPv6 router advertisements */
    uint32_t ipv6_ra_interval_ms;    /* unsolicited RA period (whole seconds) */
    uint32_t dhcp_offer_hold_ms;     /* an OFFERed address is held this long (whole seconds) */
    uint32_t dhcp_decline_hold_ms;   /* a DECLINEd address stays out of the pool this long */

    /* TFTP (on when --tftp-root is set: options_tftp_enabled()) */
    char *tftp_root;
    uint16_t tftp_port;
    struct options_port_range tftp_ports;
    unsigned tftp_blksize_max;       /* RFC 2348: 8-65464 */
    unsigned tftp_window_max;        /* RFC 7440: 1-65535 */
    uint32_t tftp_timeout_ms;        /* initial retransmission timeout */
    unsigned tftp_retries;
    unsigned max_transfers;
    bool tftp_allow_write;

    /* Rollout */
    char *hosts;                     /* inventory CSV */
    char *profiles;                  /* profile directory */
    char *default_profile;           /* for machines not in the inventory, NULL: none */
    struct options_cidr admin_allow;
    char *admin_token;               /* NULL: no token required */
    uint32_t stall_after_ms;         /* 0: never stalled */
    bool api;

    /* State */
    char *state_dir;
    unsigned lease_shards;           /* power of two */
    uint32_t fsync_interval_ms;      /* 0: fsync before every ACK */

    /* Status (bootstorm status only) */
    char *server;                    /* URL of the server asked, NULL: the local one */
    bool watch;
    bool json;
};

/* Placeholders a URL template (--boot-ipxe, --boot-http, --server) may hold; the
 * DHCP service expands them per client: {server} our address on the client's
 * subnet, {http_port}, {mac} (aa:bb:cc:dd:ee:ff), {ip} the client's address,
 * {hostname} from the inventory, {loader} the boot file of the client's
 * architecture (--boot-efi64 or --boot-arm64). */

/* Fills *o with the table's defaults (nothing checked on disk).  Returns
 * OPTIONS_OK or OPTIONS_ERR_NOMEM. */
int options_defaults(struct options *o);

/* Parses argv for cmd into *o: defaults, then the --config file, then argv.
 * argv[0] is the command's name and is skipped, as for getopt; argv may be
 * permuted (GNU getopt_long).  Positional arguments: when first_arg is non-NULL
 * their index in the permuted argv is stored there (argc when none); when it is
 * NULL any positional is an OPTIONS_ERR_ARGUMENT.  For any result other than
 * OPTIONS_OK and OPTIONS_HELP, err (errlen bytes, OPTIONS_ERR_MAX is enough)
 * receives the one-line message.  *o is overwritten, not freed: it starts from
 * options_defaults() here, so do not call that first.  Whatever this returns,
 * *o is fully initialised and options_free(o) releases it.  Uses getopt's global state: call from one
 * thread. */
int options_parse(struct options *o, enum options_command cmd, int argc, char **argv,
                  int *first_arg, char *err, size_t errlen);

/* Frees the strings and the subnet list; *o can be parsed into again. */
void options_free(struct options *o);

bool options_dhcp_enabled(const struct options *o);
bool options_tftp_enabled(const struct options *o);

/* "serve", "check", ...; NULL for an unknown value. */
const char *options_command_name(enum options_command cmd);
const char *options_backend_name(enum options_backend b);

/* --help for cmd: usage line, then the knobs cmd accepts grouped (General, HTTP,
 * DHCP, TFTP, Rollout, State, Status), each with its default and unit.
 * Returns 0, or -1 when writing failed. */
int options_print_help(FILE *out, enum options_command cmd);

/* Every knob as Markdown for the README: one table per group with the columns
 * Option, Default, Unit, Description.  Returns 0, or -1 when writing failed. */
int options_print_markdown(FILE *out);

#endif
