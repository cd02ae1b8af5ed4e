/* Criterion suite for engine/options: defaults, every kind of value, the config
 * file, --subnet, the relations between knobs, --help and the Markdown list. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/options.h"

static char tmp[64];        /* a fresh directory per test */
static char root[128];      /* tmp/root: an existing directory */
static char hosts[128];     /* tmp/hosts.csv: an existing file */
static char conf[128];      /* tmp/bootstorm.conf */
static struct options o;
static char err[OPTIONS_ERR_MAX];

static void setup(void)
{
    strcpy(tmp, "/tmp/test_options.XXXXXX");
    cr_assert_not_null(mkdtemp(tmp));
    snprintf(root, sizeof root, "%s/root", tmp);
    snprintf(hosts, sizeof hosts, "%s/hosts.csv", tmp);
    snprintf(conf, sizeof conf, "%s/bootstorm.conf", tmp);
    cr_assert_eq(mkdir(root, 0755), 0);
    FILE *f = fopen(hosts, "w");
    cr_assert_not_null(f);
    fputs("mac,hostname,ip,profile\n", f);
    fclose(f);
    memset(&o, 0, sizeof o);
}

static void teardown(void)
{
    options_free(&o);
    unlink(hosts);
    unlink(conf);
    rmdir(root);
    rmdir(tmp);
}

TestSuite(options, .init = setup, .fini = teardown);

static int parse_argv(enum options_command cmd, char **argv, int argc, int *first)
{
    options_free(&o);
    return options_parse(&o, cmd, argc, argv, first, err, sizeof err);
}

#define ARGV(...) ((char *[]){ "serve", __VA_ARGS__ })
#define ARGC(...) ((int)(sizeof ARGV(__VA_ARGS__) / sizeof(char *)))
/* parse a serve command line, no positionals allowed */
#define PARSE(...) parse_argv(OPTIONS_CMD_SERVE, ARGV(__VA_ARGS__), ARGC(__VA_ARGS__), NULL)
#define PARSE_CMD(cmd, ...) parse_argv(cmd, ARGV(__VA_ARGS__), ARGC(__VA_ARGS__), NULL)

/* The result and the exact one-line message. */
#define EXPECT_ERR(code, msg, ...) do {                                        \
        int rc_ = PARSE(__VA_ARGS__);                                          \
        cr_expect_eq(rc_, code, "rc %d for: %s", rc_, err);                    \
        cr_expect_str_eq(err, msg);                                            \
    } while (0)

static void write_conf(const char *text)
{
    FILE *f = fopen(conf, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

/* ------------------------------------------------------------ defaults */

static void expect_defaults(const struct options *d)
{
    cr_expect_null(d->config);
    cr_expect_eq(d->listen, 0);
    cr_expect_eq(d->threads, (unsigned)sysconf(_SC_NPROCESSORS_ONLN));
    cr_expect_eq(d->backend, OPTIONS_BACKEND_AUTO);
    cr_expect_eq(d->ring_entries, 1024);
    cr_expect_not(d->quiet);
    cr_expect_null(d->http_root);
    cr_expect_eq(d->http_port, 8080);
    cr_expect_eq(d->http_idle_timeout_ms, 10000);
    cr_expect_eq(d->http_header_timeout_ms, 10000);
    cr_expect_eq(d->http_send_timeout_ms, 60000);
    cr_expect_eq(d->max_conns, 10000);
    cr_expect_eq(d->http_chunk, 1024 * 1024);
    cr_expect_str_eq(d->http_tcp_congestion, "cubic");
    cr_expect_eq(d->http_defer_accept_ms, 1000);
    cr_expect_not(d->http_index);
    cr_expect_eq(d->dhcp_port, 67);
    cr_expect_eq(d->subnets.count, 0);
    cr_expect_null(d->interface);
    cr_expect_eq(d->next_server, 0);
    cr_expect_str_eq(d->boot_bios, "pxelinux.0");
    cr_expect_str_eq(d->boot_efi64, "grubx64.efi");
    cr_expect_str_eq(d->boot_arm64, "grubaa64.efi");
    cr_expect_str_eq(d->boot_ipxe, "http://{server}:{http_port}/boot.ipxe?mac={mac}");
    cr_expect_str_eq(d->boot_http, "http://{server}:{http_port}/{loader}");
    cr_expect_not(d->known_only);
    cr_expect_not(d->proxy_dhcp);
    cr_expect_not(d->dhcp_arp);
    cr_expect_not(d->ipv6_ra);
    cr_expect_eq(d->dhcp_offer_hold_ms, 60000);
    cr_expect_eq(d->dhcp_decline_hold_ms, 3600000);
    cr_expect_null(d->tftp_root);
    cr_expect_eq(d->tftp_port, 69);
    cr_expect_eq(d->tftp_ports.lo, 0);
    cr_expect_eq(d->tftp_ports.hi, 0);
    cr_expect_eq(d->tftp_blksize_max, 8192);
    cr_expect_eq(d->tftp_window_max, 64);
    cr_expect_eq(d->tftp_timeout_ms, 200);
    cr_expect_eq(d->tftp_retries, 6);
    cr_expect_eq(d->max_transfers, 4096);
    cr_expect_not(d->tftp_allow_write);
    cr_expect_null(d->hosts);
    cr_expect_null(d->profiles);
    cr_expect_null(d->default_profile);
    cr_expect_eq(d->admin_allow.addr, 0x7f000000u);
    cr_expect_eq(d->admin_allow.prefix, 8);
    cr_expect_null(d->admin_token);
    cr_expect_eq(d->stall_after_ms, 600000);
    cr_expect(d->api);
    cr_expect_str_eq(d->state_dir, "/var/lib/bootstorm");
    cr_expect_eq(d->lease_shards, 64);
    cr_expect_eq(d->fsync_interval_ms, 5);
    cr_expect_null(d->server);
    cr_expect_not(d->watch);
    cr_expect_not(d->json);
    cr_expect_not(options_dhcp_enabled(d));
    cr_expect_not(options_tftp_enabled(d));
}

Test(options, defaults)
{
    cr_assert_eq(options_defaults(&o), OPTIONS_OK);
    expect_defaults(&o);
}

Test(options, empty_command_line_is_the_defaults)
{
    int first = -1;
    cr_assert_eq(parse_argv(OPTIONS_CMD_SERVE, (char *[]){ "serve" }, 1, &first), OPTIONS_OK, "%s", err);
    cr_expect_eq(first, 1);
    cr_expect_str_eq(err, "");
    expect_defaults(&o);
}

Test(options, names)
{
    cr_expect_str_eq(options_command_name(OPTIONS_CMD_PORTS), "ports");
    cr_expect_null(options_command_name(OPTIONS_CMD_COUNT));
    cr_expect_str_eq(options_backend_name(OPTIONS_BACKEND_EPOLL), "epoll");
}

/* ------------------------------------------------------ valid values */

Test(options, numbers_bools_ports)
{
    cr_assert_eq(PARSE("--threads", "3", "--ring-entries=4096", "--quiet", "--http-index=yes", "--api=off",
                       "--http-port", "80", "--max-conns", "1", "--lease-shards", "1024",
                       "--tftp-blksize-max", "65464", "--tftp-window-max", "1"), OPTIONS_OK, "%s", err);
    cr_expect_eq(o.threads, 3);
    cr_expect_eq(o.ring_entries, 4096);
    cr_expect(o.quiet);
    cr_expect(o.http_index);
    cr_expect_not(o.api);
    cr_expect_eq(o.http_port, 80);
    cr_expect_eq(o.max_conns, 1);
    cr_expect_eq(o.lease_shards, 1024);
    cr_expect_eq(o.tftp_blksize_max, 65464);
    cr_expect_eq(o.tftp_window_max, 1);
}

Test(options, threads_zero_means_one_per_cpu)
{
    cr_assert_eq(PARSE("--threads", "0"), OPTIONS_OK, "%s", err);
    cr_expect_eq(o.threads, (unsigned)sysconf(_SC_NPROCESSORS_ONLN));
}

Test(options, bool_spellings)
{
    static const char *const t[] = { "yes", "TRUE", "On", "1" }, *const f[] = { "no", "false", "OFF", "0" };
    char arg[32];
    for (int i = 0; i < 4; i++) {
        snprintf(arg, sizeof arg, "--quiet=%s", t[i]);
        cr_assert_eq(PARSE(arg), OPTIONS_OK, "%s", err);
        cr_expect(o.quiet, "%s", arg);
        snprintf(arg, sizeof arg, "--api=%s", f[i]);
        cr_assert_eq(PARSE(arg), OPTIONS_OK, "%s", err);
        cr_expect_not(o.api, "%s", arg);
    }
}

Test(options, later_occurrence_wins)
{
    cr_assert_eq(PARSE("--http-port", "81", "--http-port", "82", "--quiet", "--quiet=no"), OPTIONS_OK);
    cr_expect_eq(o.http_port, 82);
    cr_expect_not(o.quiet);
}

Test(options, abbreviation_resolves_to_the_knob)
{
    cr_assert_eq(PARSE("--ring-e", "8"), OPTIONS_OK, "%s", err);
    cr_expect_eq(o.ring_entries, 8);
}

Test(options, sizes)
{
    static const struct { const char *v; uint64_t bytes; } c[] = {
        { "4096", 4096 }, { "4K", 4096 }, { "64k", 65536 }, { "1M", 1 << 20 }, { "2MiB", 2 << 20 },
        { "64M", 64 << 20 },
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        cr_assert_eq(PARSE("--http-chunk", (char *)c[i].v), OPTIONS_OK, "%s: %s", c[i].v, err);
        cr_expect_eq(o.http_chunk, c[i].bytes, "%s", c[i].v);
    }
}

Test(options, durations)
{
    cr_assert_eq(PARSE("--http-idle-timeout", "30", "--http-header-timeout", "1500ms",
                       "--http-send-timeout", "2m", "--stall-after", "1h", "--tftp-timeout", "1s",
                       "--fsync-interval-ms", "0"), OPTIONS_OK, "%s", err);
    cr_expect_eq(o.http_idle_timeout_ms, 30000);
    cr_expect_eq(o.http_header_timeout_ms, 1500);
    cr_expect_eq(o.http_send_timeout_ms, 120000);
    cr_expect_eq(o.stall_after_ms, 3600000);
    cr_expect_eq(o.tftp_timeout_ms, 1000);
    cr_expect_eq(o.fsync_interval_ms, 0);
    cr_assert_eq(PARSE("--tftp-timeout", "250"), OPTIONS_OK, "%s", err);
    cr_expect_eq(o.tftp_timeout_ms, 250, "a bare number is in the knob's unit (ms)");
}

Test(options, dhcp_hold_times)
{
    cr_assert_eq(PARSE("--dhcp-offer-hold", "90", "--dhcp-decline-hold", "2h"), OPTIONS_OK, "%s", err);
    cr_expect_eq(o.dhcp_offer_hold_ms, 90000, "a bare number is seconds");
    cr_expect_eq(o.dhcp_decline_hold_ms, 7200000);
    cr_assert_eq(PARSE("--dhcp-offer-hold", "1s", "--dhcp-decline-hold", "7d"), OPTIONS_ERR_VALUE);
    cr_expect_str_eq(err, "--dhcp-decline-hold 7d: not a duration (seconds, or a number with ms, s, m or h)");
    cr_assert_eq(PARSE("--dhcp-offer-hold", "1s", "--dhcp-decline-hold", "168h"), OPTIONS_OK, "%s", err);
    cr_expect_eq(o.dhcp_offer_hold_ms, 1000);
    cr_expect_eq(o.dhcp_decline_hold_ms, 604800000u, "a week fits the field");
    EXPECT_ERR(OPTIONS_ERR_VALUE, "--dhcp-offer-hold 0: out of range (1-3600 s)", "--dhcp-offer-hold", "0");
    EXPECT_ERR(OPTIONS_ERR_VALUE, "--http-defer-accept 601: out of range (0-600 s)", "--http-defer-accept", "601");
    EXPECT_ERR(OPTIONS_ERR_VALUE, "--dhcp-offer-hold 500ms: out of range (1-3600 s)", "--dhcp-offer-hold", "500ms");
    EXPECT_ERR(OPTIONS_ERR_VALUE, "--dhcp-offer-hold 2h: out of range (1-3600 s)", "--dhcp-offer-hold", "2h");
    EXPECT_ERR(OPTIONS_ERR_VALUE, "--dhcp-decline-hold 169h: out of range (1-604800 s)",
               "--dhcp-decline-hold", "169h");
    /* the config file takes them too */
    write_conf("dhcp-offer-hold = 30\ndhcp-decline-hold = 10m\n");
    cr_assert_eq(PARSE("--config", conf), OPTIONS_OK, "%s", err);
    cr_expect_eq(o.dhcp_offer_hold_ms, 30000);
    cr_expect_eq(o.dhcp_decline_hold_ms, 600000);
}

Test(options, addresses_ranges_enums)
{
    cr_assert_eq(PARSE("--listen", "192.168.10.1", "--next-server", "10.0.0.2", "--admin-allow", "10.1.0.0/16",
                       "--tftp-ports", "50000-50999", "--backend", "EPOLL", "--tftp-port", "1069"),
                 OPTIONS_OK, "%s", err);
    cr_expect_eq(o.listen, 0xc0a80a01u);
    cr_expect_eq(o.next_server, 0x0a000002u);
    cr_expect_eq(o.admin_allow.addr, 0x0a010000u);
    cr_expect_eq(o.admin_allow.prefix, 16);
    cr_expect_eq(o.tftp_ports.lo, 50000);
    cr_expect_eq(o.tftp_ports.hi, 50999);
    cr_expect_eq(o.backend, OPTIONS_BACKEND_EPOLL);
    cr_assert_eq(PARSE("--admin-allow", "192.168.1.7", "--tftp-ports", "7000", "--backend", "uring"), OPTIONS_OK);
    cr_expect_eq(o.admin_allow.prefix, 32, "a bare address is a /32");
    cr_expect_eq(o.tftp_ports.lo, 7000);
    cr_expect_eq(o.tftp_ports.hi, 7000);
    cr_expect_eq(o.backend, OPTIONS_BACKEND_URING);
    cr_assert_eq(PARSE("--tftp-ports", "0"), OPTIONS_OK);
    cr_expect_eq(o.tftp_ports.lo, 0);
}

Test(options, strings_and_paths)
{
    cr_assert_eq(PARSE("--http-root", root, "--tftp-root", root, "--hosts", hosts, "--profiles", root,
                       "--default-profile", "rocky-9.4_x", "--interface", "enp1s0f0", "--state-dir", tmp,
                       "--admin-token", "s3cr3t-T0ken", "--boot-bios", "bios/lpxelinux.0",
                       "--boot-ipxe", "https://{server}:{http_port}/ipxe/{hostname}?ip={ip}"),
                 OPTIONS_OK, "%s", err);
    cr_expect_str_eq(o.http_root, root);
    cr_expect_str_eq(o.tftp_root, root);
    cr_expect_str_eq(o.hosts, hosts);
    cr_expect_str_eq(o.profiles, root);
    cr_expect_str_eq(o.default_profile, "rocky-9.4_x");
    cr_expect_str_eq(o.interface, "enp1s0f0");
    cr_expect_str_eq(o.state_dir, tmp);
    cr_expect_str_eq(o.admin_token, "s3cr3t-T0ken");
    cr_expect_str_eq(o.boot_bios, "bios/lpxelinux.0");
    cr_expect_str_eq(o.boot_ipxe, "https://{server}:{http_port}/ipxe/{hostname}?ip={ip}");
    cr_expect(options_tftp_enabled(&o));
}

/* ---------------------------------------------------- invalid values */

Test(options, bad_ports)
{
    EXPECT_ERR(OPTIONS_ERR_VALUE, "--http-port 70000: not a port (1-65535)", "--http-port", "70000");
    EXPECT_ERR(OPTIONS_ERR_VALUE, "--dhcp-port 0: not a port (1-65535)", "--dhcp-port", "0");
    EXPECT_ERR(OPTIONS_ERR_VALUE, "--tftp-port -1: not a port (1-65535)", "--tftp-port=-1");
    EXPECT_ERR(OPTIONS_ERR_VALUE, "--http-port 80x: not a port (1-65535)", "--http-port", "80x");
    EXPECT_ERR(OPTIONS_ERR_VALUE, "--tftp-ports 100-50: reversed port range (LO must not exceed HI)",
               "--tftp-ports", "100-50");
    EXPECT_ERR(OPTIONS_ERR_VALUE,
               "--tftp-ports 5-: not a port range (LO-HI within 1-65535, or 0-0 for ephemeral ports)",
               "--tftp-ports", "5-");
    EXPECT_ERR(OPTIONS_ERR_VALUE,
               "--tftp-ports 0-10: not a port range (LO-HI within 1-65535, or 0-0 for ephemeral ports)",
               "--tftp-ports", "0-10");
    EXPECT_ERR(OPTIONS_ERR_VALUE,
               "--tftp-ports 1-70000: not a port range (LO-HI within 1-65535, or 0-0 for ephemeral ports)",
               "--tftp-ports", "1-70000");
}

Test(options, bad_numbers)
{
    EXPECT_ERR(OPTIONS_ERR_VALUE, "--threads abc: not a number (0-1024)", "--threads", "abc");
    EXPECT_ERR(OPTIONS_ERR_VALUE, "--threads 2000: out of range (0-1024)", "--threads", "2000");
    EXPECT_ERR(OPTIONS_ERR_VALUE, "--ring-entries 0: out of range (1-32768)", "--ring-entries", "0");
    EXPECT_ERR(OPTIONS_ERR_VALUE, "--max-conns +5: not a number (1-1000000)", "--max-conns", "+5");
    EXPECT_ERR(OPTIONS_ERR_VALUE, "--max-transfers 99999999999999999999999: not a number (1-1000000)",
               "--max-transfers", "99999999999999999999999");
    EXPECT_ERR(OPTIONS_ERR_VALUE, "--lease-shards 48: not a power of two", "--lease-shards", "48");
    EXPECT_ERR(OPTIONS_ERR_VALUE, "--tftp-blksize-max 7: out of range (8-65464)", "--tftp-blksize-max", "7");
    EXPECT_ERR(OPTIONS_ERR_VALUE, "--tftp-retries ' 3': not a number (1-100)", "--tftp-retries", " 3");
}

Test(options, bad_sizes_and_durations)
{
    EXPECT_ERR(OPTIONS_ERR_VALUE, "--http-chunk 1G: out of range (4K-64M)", "--http-chunk", "1G");
    EXPECT_ERR(OPTIONS_ERR_VALUE, "--http-chunk 100: out of range (4K-64M)", "--http-chunk", "100");
    EXPECT_ERR(OPTIONS_ERR_VALUE, "--http-chunk 12Q: not a size (bytes, or a number with K, M or G)",
               "--http-chunk", "12Q");
    EXPECT_ERR(OPTIONS_ERR_VALUE, "--http-chunk 99999999999G: out of range (4K-64M)",
               "--http-chunk", "99999999999G");
    EXPECT_ERR(OPTIONS_ERR_VALUE, "--http-idle-timeout 0: out of range (1-3600 s)", "--http-idle-timeout", "0");
    EXPECT_ERR(OPTIONS_ERR_VALUE, "--http-idle-timeout 2h: out of range (1-3600 s)", "--http-idle-timeout", "2h");
    EXPECT_ERR(OPTIONS_ERR_VALUE, "--tftp-timeout 5ms: out of range (10-255000 ms)", "--tftp-timeout", "5ms");
    EXPECT_ERR(OPTIONS_ERR_VALUE,
               "--http-send-timeout 10sec: not a duration (seconds, or a number with ms, s, m or h)",
               "--http-send-timeout", "10sec");
    EXPECT_ERR(OPTIONS_ERR_VALUE,
               "--tftp-timeout 1.5: not a duration (milliseconds, or a number with ms, s, m or h)",
               "--tftp-timeout", "1.5");
}

Test(options, bad_bools_enums_addresses)
{
    EXPECT_ERR(OPTIONS_ERR_VALUE, "--quiet maybe: not a boolean (yes/no, true/false, on/off, 1/0)",
               "--quiet=maybe");
    EXPECT_ERR(OPTIONS_ERR_VALUE, "--backend io: not one of auto, uring, epoll", "--backend", "io");
    EXPECT_ERR(OPTIONS_ERR_VALUE, "--listen 1.2.3: not an IPv4 address", "--listen", "1.2.3");
    EXPECT_ERR(OPTIONS_ERR_VALUE, "--listen 01.2.3.4: not an IPv4 address", "--listen", "01.2.3.4");
    EXPECT_ERR(OPTIONS_ERR_VALUE, "--next-server 1.2.3.256: not an IPv4 address", "--next-server", "1.2.3.256");
    EXPECT_ERR(OPTIONS_ERR_VALUE, "--listen ::1: not an IPv4 address", "--listen", "::1");
    EXPECT_ERR(OPTIONS_ERR_VALUE, "--admin-allow 10.0.0.1/8: host bits set (the network is 10.0.0.0/8)",
               "--admin-allow", "10.0.0.1/8");
    EXPECT_ERR(OPTIONS_ERR_VALUE, "--admin-allow 10.0.0.0/33: not a CIDR (A.B.C.D/N, N 0-32)",
               "--admin-allow", "10.0.0.0/33");
}

Test(options, bad_paths)
{
    char missing[160], msg[OPTIONS_ERR_MAX];
    snprintf(missing, sizeof missing, "%s/nope", tmp);
    snprintf(msg, sizeof msg, "--http-root %s: no such directory", missing);
    EXPECT_ERR(OPTIONS_ERR_VALUE, msg, "--http-root", missing);
    snprintf(msg, sizeof msg, "--tftp-root %s: not a directory", hosts);
    EXPECT_ERR(OPTIONS_ERR_VALUE, msg, "--tftp-root", hosts);
    snprintf(msg, sizeof msg, "--hosts %s: is a directory", root);
    EXPECT_ERR(OPTIONS_ERR_VALUE, msg, "--hosts", root);
    snprintf(msg, sizeof msg, "--hosts %s: no such file", missing);
    EXPECT_ERR(OPTIONS_ERR_VALUE, msg, "--hosts", missing);
    snprintf(msg, sizeof msg, "--config %s: no such file", missing);
    EXPECT_ERR(OPTIONS_ERR_VALUE, msg, "--config", missing);
    EXPECT_ERR(OPTIONS_ERR_VALUE, "--hosts /dev/null: not a regular file", "--hosts", "/dev/null");
    EXPECT_ERR(OPTIONS_ERR_MISSING, "--http-root: missing value", "--http-root=");
}

Test(options, bad_strings)
{
    EXPECT_ERR(OPTIONS_ERR_VALUE,
               "--interface eth0:1: not an interface name (1-15 characters, no '/', ':' or spaces)",
               "--interface", "eth0:1");
    EXPECT_ERR(OPTIONS_ERR_VALUE,
               "--interface abcdefghijklmnop: not an interface name (1-15 characters, no '/', ':' or spaces)",
               "--interface", "abcdefghijklmnop");
    EXPECT_ERR(OPTIONS_ERR_VALUE,
               "--boot-ipxe http://{srv}/x: unknown placeholder at '{srv}/x' ({server} {http_port} {mac} {ip} "
               "{hostname} {loader})", "--boot-ipxe", "http://{srv}/x");
    EXPECT_ERR(OPTIONS_ERR_VALUE, "--boot-http tftp://x/y: not an http:// or https:// URL",
               "--boot-http", "tftp://x/y");
    EXPECT_ERR(OPTIONS_ERR_VALUE, "--boot-http http://x/}: '}' without '{'", "--boot-http", "http://x/}");
    EXPECT_ERR(OPTIONS_ERR_VALUE,
               "--default-profile ../x: not a profile name (up to 64 letters, digits, '.', '_', '-', no "
               "leading '.')", "--default-profile", "../x");
    EXPECT_ERR(OPTIONS_ERR_VALUE, "--admin-token 'a b': not a token (up to 256 characters, no white space)",
               "--admin-token", "a b");
    EXPECT_ERR(OPTIONS_ERR_VALUE, "--boot-bios a\\x0ab: contains a control character", "--boot-bios", "a\nb");
    EXPECT_ERR(OPTIONS_ERR_VALUE,
               "--http-tcp-congestion 'cu bic': not a congestion control name (1-15 characters, no spaces or '/')",
               "--http-tcp-congestion", "cu bic");
    /* a name the kernel does not have: the message lists what it has */
    int r = PARSE("--http-tcp-congestion", "cubi");
    cr_expect_eq(r, OPTIONS_ERR_VALUE);
    cr_expect(strstr(err, "--http-tcp-congestion cubi: not available in this kernel (available: ") == err, "%s", err);
    cr_expect(strstr(err, "cubic") != NULL, "%s", err);
    char longname[200];
    memset(longname, 'x', 150);
    longname[150] = '\0';
    int rc = PARSE("--boot-bios", longname);
    cr_expect_eq(rc, OPTIONS_ERR_VALUE);
    cr_expect(strstr(err, "...: longer than 127 bytes (the BOOTP file field)") != NULL, "%s", err);
}

Test(options, tcp_congestion_names)
{
    cr_assert_eq(PARSE("--http-tcp-congestion", "system"), OPTIONS_OK, "%s", err);
    cr_expect_str_eq(o.http_tcp_congestion, "system");
    cr_assert_eq(PARSE("--http-tcp-congestion", "reno"), OPTIONS_OK, "%s", err); /* always built in */
    cr_expect_str_eq(o.http_tcp_congestion, "reno");
}

Test(options, bad_options)
{
    EXPECT_ERR(OPTIONS_ERR_UNKNOWN, "--bogus: unknown option", "--bogus");
    EXPECT_ERR(OPTIONS_ERR_UNKNOWN, "--bogus: unknown option", "--bogus=1");
    EXPECT_ERR(OPTIONS_ERR_UNKNOWN, "-x: unknown option", "-x");
    EXPECT_ERR(OPTIONS_ERR_UNKNOWN, "--http: ambiguous option (--http-root and 8 more)", "--http");
    EXPECT_ERR(OPTIONS_ERR_UNKNOWN, "--watch: not an option of 'serve'", "--watch");
    EXPECT_ERR(OPTIONS_ERR_MISSING, "--http-port: missing value", "--http-port");
    EXPECT_ERR(OPTIONS_ERR_VALUE, "--help: takes no value", "--help=x");
    EXPECT_ERR(OPTIONS_ERR_ARGUMENT, "extra: unexpected argument (bootstorm serve takes none)", "--quiet", "extra");
}

Test(options, help_flag)
{
    cr_expect_eq(PARSE("--help"), OPTIONS_HELP);
    cr_expect_eq(PARSE("--quiet", "-h"), OPTIONS_HELP);
    /* help wins over a bad value, which pass 1 does not look at */
    cr_expect_eq(PARSE("--http-port", "70000", "--help"), OPTIONS_HELP);
}

/* ------------------------------------------------------------ commands */

Test(options, status_knobs)
{
    cr_assert_eq(PARSE_CMD(OPTIONS_CMD_STATUS, "--watch", "--json", "--server", "http://10.0.0.1:8080",
                           "--http-port", "81"), OPTIONS_OK, "%s", err);
    cr_expect(o.watch);
    cr_expect(o.json);
    cr_expect_str_eq(o.server, "http://10.0.0.1:8080");
    cr_expect_eq(o.http_port, 81);
    cr_expect_eq(PARSE_CMD(OPTIONS_CMD_STATUS, "--tftp-root", root), OPTIONS_ERR_UNKNOWN);
    cr_expect_str_eq(err, "--tftp-root: not an option of 'status'");
    cr_expect_eq(PARSE_CMD(OPTIONS_CMD_STATUS, "--server", "10.0.0.1"), OPTIONS_ERR_VALUE);
    cr_expect_str_eq(err, "--server 10.0.0.1: not an http:// or https:// URL");
}

Test(options, render_positionals)
{
    char *argv[] = { "render", "52:54:00:12:34:56", "--quiet", "kickstart" };
    int first = 0;
    cr_assert_eq(parse_argv(OPTIONS_CMD_RENDER, argv, 4, &first), OPTIONS_OK, "%s", err);
    cr_expect(o.quiet);
    cr_assert_eq(first, 2);
    cr_expect_str_eq(argv[first], "52:54:00:12:34:56");
    cr_expect_str_eq(argv[first + 1], "kickstart");
}

Test(options, after_double_dash_everything_is_positional)
{
    char *argv[] = { "render", "--", "--quiet" };
    int first = 0;
    cr_assert_eq(parse_argv(OPTIONS_CMD_RENDER, argv, 3, &first), OPTIONS_OK, "%s", err);
    cr_expect_not(o.quiet);
    cr_expect_str_eq(argv[first], "--quiet");
}

/* ------------------------------------------------------------- --subnet */

Test(options, subnet_full_spec)
{
    cr_assert_eq(PARSE("--subnet", "10.20.0.0/16,pool=10.20.1.10-10.20.1.250,router=10.20.0.1,"
                       "dns=10.20.0.53+1.1.1.1;9.9.9.9,domain=rack1.example.com,lease=7200",
                       "--subnet", "192.168.5.0/24"), OPTIONS_OK, "%s", err);
    cr_assert_eq(o.subnets.count, 2);
    const struct options_subnet *s = &o.subnets.items[0];
    cr_expect_eq(s->network, 0x0a140000u);
    cr_expect_eq(s->prefix, 16);
    cr_expect_eq(s->pool_start, 0x0a14010au);
    cr_expect_eq(s->pool_end, 0x0a1401fau);
    cr_expect_eq(s->router, 0x0a140001u);
    cr_expect_eq(s->dns_count, 3);
    cr_expect_eq(s->dns[0], 0x0a140035u);
    cr_expect_eq(s->dns[1], 0x01010101u);
    cr_expect_eq(s->dns[2], 0x09090909u);
    cr_expect_str_eq(s->domain, "rack1.example.com");
    cr_expect_eq(s->lease_s, 7200);
    s = &o.subnets.items[1];
    cr_expect_eq(s->network, 0xc0a80500u);
    cr_expect_eq(s->prefix, 24);
    cr_expect_eq(s->pool_start, 0);
    cr_expect_eq(s->pool_end, 0);
    cr_expect_eq(s->router, 0);
    cr_expect_eq(s->dns_count, 0);
    cr_expect_str_eq(s->domain, "");
    cr_expect_eq(s->lease_s, 3600);
    cr_expect(options_dhcp_enabled(&o));
}

#define SUBNET_ERR(spec, why) EXPECT_ERR(OPTIONS_ERR_VALUE, "--subnet " spec ": " why, "--subnet", spec)

Test(options, subnet_invalid)
{
    SUBNET_ERR("10.0.0.0/24,pool=10.0.1.10-10.0.1.20", "pool 10.0.1.10-10.0.1.20 outside 10.0.0.0/24");
    SUBNET_ERR("10.0.0.0/24,pool=10.0.0.10-10.0.1.20", "pool 10.0.0.10-10.0.1.20 outside 10.0.0.0/24");
    SUBNET_ERR("10.0.0.0/24,pool=10.0.0.200-10.0.0.100", "pool 10.0.0.200-10.0.0.100 reversed (start above end)");
    SUBNET_ERR("10.0.0.0/24,pool=10.0.0.0-10.0.0.100", "pool 10.0.0.0-10.0.0.100 includes the network address");
    SUBNET_ERR("10.0.0.0/24,pool=10.0.0.5-10.0.0.255", "pool 10.0.0.5-10.0.0.255 includes the broadcast address");
    SUBNET_ERR("10.0.0.0/24,pool=10.0.0.5", "pool 10.0.0.5: not a range A-B of IPv4 addresses");
    SUBNET_ERR("10.0.0.5/24", "host bits set (the network is 10.0.0.0/24)");
    SUBNET_ERR("10.0.0/24", "not a CIDR (A.B.C.D/N, N 0-32)");
    SUBNET_ERR("10.0.0.0/31", "prefix /31 out of range (1-30)");
    SUBNET_ERR("0.0.0.0/0", "prefix /0 out of range (1-30)");
    SUBNET_ERR("10.0.0.0/24,router=10.0.0.300", "router 10.0.0.300: not an IPv4 address");
    SUBNET_ERR("10.0.0.0/24,router=10.0.1.1", "router 10.0.1.1 not a host address of 10.0.0.0/24");
    SUBNET_ERR("10.0.0.0/24,router=10.0.0.255", "router 10.0.0.255 not a host address of 10.0.0.0/24");
    SUBNET_ERR("10.0.0.0/24,pool=10.0.0.10-10.0.0.20,router=10.0.0.15", "router 10.0.0.15 inside the pool");
    SUBNET_ERR("10.0.0.0/24,dns=1.1.1.1,,lease=60", "empty item");
    SUBNET_ERR("10.0.0.0/24,", "empty item");
    SUBNET_ERR("10.0.0.0/24,gateway=10.0.0.1", "unknown key 'gateway' (pool, router, dns, domain, lease)");
    SUBNET_ERR("10.0.0.0/24,router", "router: missing value");
    SUBNET_ERR("10.0.0.0/24,lease=60,lease=70", "lease given twice");
    SUBNET_ERR("10.0.0.0/24,dns=1.1.1.1+2.2.2.2+3.3.3.3+4.4.4.4+5.5.5.5", "dns: more than 4 servers");
    SUBNET_ERR("10.0.0.0/24,dns=1.1.1.1,2.2.2.2", "unknown key '2.2.2.2' (pool, router, dns, domain, lease)");
    SUBNET_ERR("10.0.0.0/24,dns=1.1.1.1/2.2.2.2", "dns: not a list of IPv4 addresses (D1+D2...)");
    SUBNET_ERR("10.0.0.0/24,dns=0.0.0.0", "dns 0.0.0.0: not a server address");
    SUBNET_ERR("10.0.0.0/24,domain=-a.example", "domain -a.example: not a domain name");
    SUBNET_ERR("10.0.0.0/24,domain=a..example", "domain a..example: not a domain name");
    SUBNET_ERR("10.0.0.0/24,lease=59", "lease 59: not a number of seconds (60-4294967294)");
    SUBNET_ERR("10.0.0.0/24,lease=1h", "lease 1h: not a number of seconds (60-4294967294)");
}

Test(options, subnet_with_spaces_is_quoted_in_the_message)
{
    EXPECT_ERR(OPTIONS_ERR_VALUE,
               "--subnet '10.0.0.0/24,dns=1.1.1.1 2.2.2.2': dns: not a list of IPv4 addresses (D1+D2...)",
               "--subnet", "10.0.0.0/24,dns=1.1.1.1 2.2.2.2");
}

Test(options, subnets_must_not_overlap)
{
    EXPECT_ERR(OPTIONS_ERR_VALUE, "--subnet 10.0.0.128/25: overlaps --subnet 10.0.0.0/24",
               "--subnet", "10.0.0.0/24", "--subnet", "10.0.0.128/25");
    EXPECT_ERR(OPTIONS_ERR_VALUE, "--subnet 10.0.0.0/8: overlaps --subnet 10.5.0.0/16",
               "--subnet", "10.5.0.0/16", "--subnet", "10.0.0.0/8");
    cr_expect_eq(PARSE("--subnet", "10.0.0.0/25", "--subnet", "10.0.0.128/25"), OPTIONS_OK, "%s", err);
}

/* ---------------------------------------------------------- config file */

Test(options, config_file)
{
    char text[1024];
    snprintf(text, sizeof text,
             "\xef\xbb\xbf# bootstorm configuration\n"
             "\n"
             "   # an indented comment\n"
             "http-port = 8081\n"
             "tftp-root=%s   # trailing comment\n"
             "quiet\n"
             "api = false\n"
             "admin-token = \"tok#en\"  # '#' inside quotes is literal\n"
             "boot-ipxe = http://{server}/a#b\n"
             "subnet = 10.0.0.0/24,pool=10.0.0.10-10.0.0.20\r\n"
             "subnet = 10.1.0.0/24\n"
             "\t threads =\t2\t\n",
             root);
    write_conf(text);
    cr_assert_eq(PARSE("--config", conf), OPTIONS_OK, "%s", err);
    cr_expect_str_eq(o.config, conf);
    cr_expect_eq(o.http_port, 8081);
    cr_expect_str_eq(o.tftp_root, root);
    cr_expect(o.quiet);
    cr_expect_not(o.api);
    cr_expect_str_eq(o.admin_token, "tok#en");
    cr_expect_str_eq(o.boot_ipxe, "http://{server}/a#b");
    cr_expect_eq(o.threads, 2);
    cr_assert_eq(o.subnets.count, 2);
    cr_expect_eq(o.subnets.items[0].pool_end, 0x0a000014u);
    cr_expect_eq(o.subnets.items[1].network, 0x0a010000u);
    cr_expect_eq(o.dhcp_port, 67, "untouched knobs keep their defaults");
}

Test(options, command_line_wins_and_replaces_the_subnet_list)
{
    write_conf("http-port = 8081\nquiet = yes\nsubnet = 10.0.0.0/24\nsubnet = 10.1.0.0/24\n");
    cr_assert_eq(PARSE("--http-port", "9000", "--config", conf, "--quiet=no", "--subnet", "10.0.0.0/16"),
                 OPTIONS_OK, "%s", err);
    cr_expect_eq(o.http_port, 9000);
    cr_expect_not(o.quiet);
    cr_assert_eq(o.subnets.count, 1, "the command line's --subnet replaces the file's list");
    cr_expect_eq(o.subnets.items[0].prefix, 16);
}

Test(options, config_file_subnets_kept_without_command_line_subnets)
{
    write_conf("subnet = 10.0.0.0/24\nsubnet = 10.1.0.0/24\n");
    cr_assert_eq(PARSE("--config", conf, "--quiet"), OPTIONS_OK, "%s", err);
    cr_expect_eq(o.subnets.count, 2);
}

/* The message a config-file error gives, "<conf>:<line>: <rest>". */
static void expect_conf_err(const char *text, int code, const char *rest)
{
    char msg[OPTIONS_ERR_MAX];
    write_conf(text);
    int rc = PARSE("--config", conf);
    snprintf(msg, sizeof msg, "%s:%s", conf, rest);
    cr_expect_eq(rc, code, "rc %d for: %s", rc, err);
    cr_expect_str_eq(err, msg);
}

Test(options, config_file_errors)
{
    expect_conf_err("# ok\nhttp-port = 70000\n", OPTIONS_ERR_VALUE, "2: http-port 70000: not a port (1-65535)");
    expect_conf_err("bogus = 1\n", OPTIONS_ERR_UNKNOWN, "1: bogus: unknown key");
    expect_conf_err("http-port = 1\nquiet\nhttp-port = 2\n", OPTIONS_ERR_CONFIG,
                    "3: http-port: given twice (first on line 1)");
    expect_conf_err("http-port 80\n", OPTIONS_ERR_CONFIG, "1: expected 'key = value'");
    expect_conf_err("= 80\n", OPTIONS_ERR_CONFIG, "1: expected 'key = value'");
    expect_conf_err("--http-port = 80\n", OPTIONS_ERR_CONFIG, "1: expected 'key = value'");
    expect_conf_err("admin-token = \"abc\n", OPTIONS_ERR_CONFIG, "1: unterminated quote");
    expect_conf_err("admin-token = \"abc\" def\n", OPTIONS_ERR_CONFIG, "1: text after the closing quote");
    expect_conf_err("http-port\n", OPTIONS_ERR_MISSING, "1: http-port: missing value (key = value)");
    expect_conf_err("http-port =   # nothing\n", OPTIONS_ERR_MISSING, "1: http-port: missing value");
    expect_conf_err("config = /etc/other.conf\n", OPTIONS_ERR_CONFIG, "1: config: not allowed in a config file");
    expect_conf_err("\n\nsubnet = 10.0.0.0/24,pool=10.0.1.1-10.0.1.9\n", OPTIONS_ERR_VALUE,
                    "3: subnet 10.0.0.0/24,pool=10.0.1.1-10.0.1.9: pool 10.0.1.1-10.0.1.9 outside 10.0.0.0/24");
    expect_conf_err("subnet = 10.0.0.0/24\nsubnet = 10.0.0.0/25\n", OPTIONS_ERR_VALUE,
                    "2: subnet 10.0.0.0/25: overlaps --subnet 10.0.0.0/24");
    expect_conf_err("quiet = perhaps\n", OPTIONS_ERR_VALUE,
                    "1: quiet perhaps: not a boolean (yes/no, true/false, on/off, 1/0)");
}

Test(options, config_file_nul_byte)
{
    FILE *f = fopen(conf, "w");
    cr_assert_not_null(f);
    static const char text[] = "quiet = yes\nhttp-port = 8\0""0\n";
    fwrite(text, 1, sizeof text - 1, f);
    fclose(f);
    char msg[OPTIONS_ERR_MAX];
    snprintf(msg, sizeof msg, "%s:2: contains a NUL byte", conf);
    cr_expect_eq(PARSE("--config", conf), OPTIONS_ERR_CONFIG);
    cr_expect_str_eq(err, msg);
}

Test(options, config_error_comes_before_command_line_values)
{
    /* the file is read first: its error stops start-up even when the command
     * line would override that knob, so a broken file never goes unnoticed */
    write_conf("http-port = 0\n");
    cr_expect_eq(PARSE("--config", conf, "--http-port", "80"), OPTIONS_ERR_VALUE);
}

Test(options, unknown_option_reported_before_the_file_is_read)
{
    write_conf("http-port = 0\n");
    cr_expect_eq(PARSE("--config", conf, "--nope"), OPTIONS_ERR_UNKNOWN);
    cr_expect_str_eq(err, "--nope: unknown option");
}

/* ------------------------------------------------ relations between knobs */

Test(options, conflicts_on_the_command_line)
{
    EXPECT_ERR(OPTIONS_ERR_CONFLICT, "--tftp-ports 60-100: includes --tftp-port 69",
               "--tftp-root", root, "--tftp-ports", "60-100");
    EXPECT_ERR(OPTIONS_ERR_CONFLICT, "--tftp-ports 60-100: includes --dhcp-port 67",
               "--tftp-root", root, "--tftp-ports", "60-100", "--tftp-port", "1069", "--subnet", "10.0.0.0/24");
    EXPECT_ERR(OPTIONS_ERR_CONFLICT, "--tftp-ports 4000-4100: includes 4011 (proxyDHCP)",
               "--tftp-root", root, "--tftp-ports", "4000-4100", "--proxy-dhcp");
    EXPECT_ERR(OPTIONS_ERR_CONFLICT, "--tftp-port 67: also the --dhcp-port",
               "--tftp-root", root, "--tftp-port", "67", "--subnet", "10.0.0.0/24");
    EXPECT_ERR(OPTIONS_ERR_CONFLICT, "--proxy-dhcp: needs UDP port 4011, which --dhcp-port uses",
               "--dhcp-port", "4011", "--proxy-dhcp");
    EXPECT_ERR(OPTIONS_ERR_CONFLICT,
               "--proxy-dhcp: --subnet 10.0.0.0/24 has a pool, but proxyDHCP never hands out addresses",
               "--proxy-dhcp", "--subnet", "10.0.0.0/24,pool=10.0.0.5-10.0.0.9");
    EXPECT_ERR(OPTIONS_ERR_CONFLICT, "--known-only: needs --hosts (no machine would be answered)",
               "--known-only");
    EXPECT_ERR(OPTIONS_ERR_CONFLICT, "--default-profile rocky: needs --profiles", "--default-profile", "rocky");
    /* the same ports are fine while the service that would use them is off */
    cr_expect_eq(PARSE("--tftp-ports", "60-100"), OPTIONS_OK, "%s", err);
    cr_expect_eq(PARSE("--proxy-dhcp", "--subnet", "10.0.0.0/24", "--known-only", "--hosts", hosts),
                 OPTIONS_OK, "%s", err);
}

Test(options, conflict_names_the_file_line)
{
    char text[256], msg[OPTIONS_ERR_MAX];
    snprintf(text, sizeof text, "tftp-root = %s\n# ports for the firewall\ntftp-ports = 60-70\n", root);
    write_conf(text);
    cr_expect_eq(PARSE("--config", conf), OPTIONS_ERR_CONFLICT);
    snprintf(msg, sizeof msg, "%s:3: tftp-ports 60-70: includes --tftp-port 69", conf);
    cr_expect_str_eq(err, msg);
    /* overridden on the command line: the message names the option, not the file */
    cr_expect_eq(PARSE("--config", conf, "--tftp-ports", "60-80"), OPTIONS_ERR_CONFLICT);
    cr_expect_str_eq(err, "--tftp-ports 60-80: includes --tftp-port 69");
}

/* ------------------------------------------------------------- help */

static const char *const all_knobs[] = {
    "config", "listen", "threads", "backend", "ring-entries", "quiet", "state-dir",
    "http-root", "http-port", "http-idle-timeout", "http-header-timeout", "http-send-timeout",
    "max-conns", "http-chunk", "http-index",
    "dhcp-port", "subnet", "interface", "next-server", "boot-bios", "boot-efi64", "boot-arm64",
    "boot-ipxe", "boot-http", "known-only", "proxy-dhcp", "lease-shards", "fsync-interval-ms",
    "dhcp-arp", "ipv6-ra", "dhcp-offer-hold", "dhcp-decline-hold",
    "tftp-root", "tftp-port", "tftp-ports", "tftp-blksize-max", "tftp-window-max", "tftp-timeout",
    "tftp-retries", "max-transfers", "tftp-allow-write",
    "hosts", "profiles", "default-profile", "admin-allow", "admin-token", "stall-after", "api",
};

static char *capture(int (*print)(FILE *, enum options_command), enum options_command cmd, bool md)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_not_null(f);
    cr_assert_eq(md ? options_print_markdown(f) : print(f, cmd), 0);
    fclose(f);
    return buf;
}

/* white space runs (wrapped lines, the column padding) become one space */
static void squash(char *s)
{
    char *w = s;
    for (const char *r = s; *r; r++) {
        if (*r == ' ' || *r == '\n') {
            if (w > s && w[-1] != ' ')
                *w++ = ' ';
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

/* "--name " or "--name[" starts an entry, so --tftp-port is not found inside --tftp-ports */
static bool mentions(const char *text, const char *name)
{
    char a[64], b[64];
    snprintf(a, sizeof a, "--%s ", name);
    snprintf(b, sizeof b, "--%s[", name);
    return strstr(text, a) || strstr(text, b);
}

Test(options, help_lists_every_knob_with_default_and_unit)
{
    char *h = capture(options_print_help, OPTIONS_CMD_SERVE, false);
    for (size_t i = 0; i < sizeof all_knobs / sizeof all_knobs[0]; i++)
        cr_expect(mentions(h, all_knobs[i]), "--help lacks --%s", all_knobs[i]);
    cr_expect(strstr(h, "usage: bootstorm serve [OPTIONS]\n") == h);
    static const char *const groups[] = { "\nGeneral:\n", "\nHTTP:\n", "\nDHCP:\n", "\nTFTP:\n",
                                          "\nRollout:\n", "\nState:\n" };
    const char *at = h;
    for (size_t i = 0; i < 6; i++) {
        const char *g = strstr(at, groups[i]);
        cr_expect_not_null(g, "group %s missing or out of order", groups[i]);
        at = g ? g : at;
    }
    /* no line wider than 79 columns, unless one word in the text column is */
    for (const char *line = h; *line; ) {
        size_t len = strcspn(line, "\n");
        if (len > 79)
            cr_expect(memchr(line + 32, ' ', len - 32) == NULL, "long line: %.*s", (int)len, line);
        line += len + (line[len] == '\n');
    }
    squash(h);
    cr_expect_not_null(strstr(h, "--http-port PORT TCP port of the HTTP server"));
    cr_expect_not_null(strstr(h, "[default: 8080]"));
    cr_expect_not_null(strstr(h, "[default: 0-0 (ephemeral)]"));
    cr_expect_not_null(strstr(h, "[default: /var/lib/bootstorm]"));
    cr_expect_not_null(strstr(h, "[default: 64; range 1-65536, a power of two]"));
    cr_expect_not_null(strstr(h, "[default: 10 s; range 1-3600]"));
    cr_expect_not_null(strstr(h, "[default: 200 ms; range 10-255000]"));
    cr_expect_not_null(strstr(h, "[default: 1M bytes; range 4K-64M]"));
    cr_expect_not_null(strstr(h, "[default: one per CPU; range 0-1024]"));
    cr_expect_not_null(strstr(h, "--backend auto|uring|epoll"));
    cr_expect_null(strstr(h, "--watch"), "status-only knobs stay out of serve's help");
    free(h);
}

Test(options, help_for_status)
{
    char *h = capture(options_print_help, OPTIONS_CMD_STATUS, false);
    cr_expect(mentions(h, "watch"));
    cr_expect(mentions(h, "json"));
    cr_expect(mentions(h, "server"));
    cr_expect(mentions(h, "http-port"));
    cr_expect_not(mentions(h, "tftp-root"));
    cr_expect_not_null(strstr(h, "\nStatus (bootstorm status):\n"));
    free(h);
    h = capture(options_print_help, OPTIONS_CMD_RENDER, false);
    cr_expect(strstr(h, "usage: bootstorm render [OPTIONS] MAC|HOSTNAME [WHAT]\n") == h);
    free(h);
    cr_expect_eq(options_print_help(stdout, OPTIONS_CMD_COUNT), -1);
}

Test(options, markdown_table)
{
    char *m = capture(NULL, OPTIONS_CMD_SERVE, true);
    char row[96];
    for (size_t i = 0; i < sizeof all_knobs / sizeof all_knobs[0]; i++) {
        snprintf(row, sizeof row, "| `--%s", all_knobs[i]);
        cr_expect_not_null(strstr(m, row), "markdown lacks --%s", all_knobs[i]);
    }
    cr_expect(strstr(m, "### General\n\n| Option | Default | Unit | Description |\n|---|---|---|---|\n") == m);
    cr_expect_not_null(strstr(m, "| `--http-port PORT` | `8080` |  | "));
    cr_expect_not_null(strstr(m, "| `--http-idle-timeout DURATION` | `10` | s | "));
    cr_expect_not_null(strstr(m, "| `--backend auto\\|uring\\|epoll` | `auto` |"), "'|' escaped in a cell");
    cr_expect_not_null(strstr(m, "| `--http-root DIR` | none |  |"));
    cr_expect_not_null(strstr(m, "### Status (bootstorm status)\n"));
    /* every table row has the same number of unescaped cell separators */
    for (const char *line = m; *line; ) {
        size_t len = strcspn(line, "\n"), bars = 0;
        for (size_t i = 0; i < len; i++)
            bars += line[i] == '|' && (i == 0 || line[i - 1] != '\\');
        cr_expect(bars == 0 || bars == 5, "row with %zu cells: %.*s", bars, (int)len, line);
        line += len + (line[len] == '\n');
    }
    free(m);
}
