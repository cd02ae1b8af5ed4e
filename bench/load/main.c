/* bench/load/main.c — bootstorm-load: dispatch to the modes, shared argument
 * helpers, the progress line and --write-inventory. */
#include "bench/load/load.h"

#include "bench/load/ev.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* ---- argument helpers ---- */

bool load_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    if (!s || !*s || *s == '-' || *s == '+')
        return false;
    char *e;
    errno = 0;
    unsigned long long v = strtoull(s, &e, 10);
    if (errno || *e || v < min || v > max)
        return false;
    *out = v;
    return true;
}

bool load_parse_seconds(const char *s, double *out)
{
    if (!s || !*s)
        return false;
    char *e;
    errno = 0;
    double v = strtod(s, &e);
    if (errno || e == s || !isfinite(v) || v < 0)
        return false;
    if (!strcmp(e, "ms"))
        v /= 1000.0;
    else if (!strcmp(e, "m"))
        v *= 60.0;
    else if (!strcmp(e, "h"))
        v *= 3600.0;
    else if (*e && strcmp(e, "s"))
        return false;
    *out = v;
    return true;
}

bool load_parse_size(const char *s, uint64_t *out)
{
    if (!s || !*s || *s == '-')
        return false;
    char *e;
    errno = 0;
    unsigned long long v = strtoull(s, &e, 10);
    if (errno || e == s)
        return false;
    uint64_t mul = 1;
    if (!strcasecmp(e, "k") || !strcasecmp(e, "kib"))
        mul = 1024;
    else if (!strcasecmp(e, "m") || !strcasecmp(e, "mib"))
        mul = 1024 * 1024;
    else if (!strcasecmp(e, "g") || !strcasecmp(e, "gib"))
        mul = 1024ull * 1024 * 1024;
    else if (*e)
        return false;
    if (v > UINT64_MAX / mul)
        return false;
    *out = v * mul;
    return true;
}

bool load_parse_mac(const char *s, uint8_t mac[6])
{
    unsigned v[6];
    char tail;
    if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) != 6 &&
        sscanf(s, "%2x-%2x-%2x-%2x-%2x-%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) != 6)
        return false;
    if (strlen(s) != 17)
        return false;
    for (int i = 0; i < 6; i++)
        mac[i] = (uint8_t)v[i];
    return true;
}

bool load_parse_ip(const char *s, uint32_t *be)
{
    struct in_addr a;
    if (!s || inet_pton(AF_INET, s, &a) != 1)
        return false;
    *be = a.s_addr;
    return true;
}

bool load_parse_bool(const char *s, bool *out)
{
    if (!s || !strcmp(s, "yes") || !strcmp(s, "true") || !strcmp(s, "on") || !strcmp(s, "1"))
        *out = true;
    else if (!strcmp(s, "no") || !strcmp(s, "false") || !strcmp(s, "off") || !strcmp(s, "0"))
        *out = false;
    else
        return false;
    return true;
}

void load_mac_add(const uint8_t base[6], uint64_t n, uint8_t out[6])
{
    uint64_t v = 0;
    for (int i = 0; i < 6; i++)
        v = v << 8 | base[i];
    v += n;
    for (int i = 5; i >= 0; i--) {
        out[i] = (uint8_t)v;
        v >>= 8;
    }
}

uint32_t load_ip_nth(uint32_t base_be, uint64_t n)
{
    uint32_t b = ntohl(base_be);
    uint32_t last = b & 0xff;
    if (last == 0)
        last = 1;
    if (last == 255) {
        b += 0x100;
        last = 1;
    }
    uint64_t idx = (uint64_t)(last - 1) + n;
    uint32_t net = (b & ~0xffu) + (uint32_t)(idx / 254) * 0x100;
    return htonl(net | (uint32_t)(idx % 254 + 1));
}

const char *load_ip_str(uint32_t be, char *out)
{
    struct in_addr a = {.s_addr = be};
    inet_ntop(AF_INET, &a, out, 16);
    return out;
}

int load_usage_error(const char *mode, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "bootstorm-load %s: ", mode);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see bootstorm-load %s --help)\n", mode);
    return LOAD_EXIT_USAGE;
}

void load_join_verify(int *argc, char **argv)
{
    static char joined[4][32];
    int k = 0;
    for (int i = 1; i + 1 < *argc && k < 4; i++) {
        const char *n = argv[i + 1];
        if (strcmp(argv[i], "--verify") || (strcmp(n, "crc32c") && strcmp(n, "crc") && strcmp(n, "sha256") &&
                                            strcmp(n, "none")))
            continue;
        snprintf(joined[k], sizeof(joined[k]), "--verify=%s", n);
        argv[i] = joined[k++];
        for (int j = i + 1; j + 1 <= *argc; j++)
            argv[j] = argv[j + 1];
        (*argc)--;
    }
}

/* ---- datagram I/O backend ---- */

bool load_parse_io(const char *s, enum load_io *out)
{
    if (!strcmp(s, "auto"))
        *out = LOAD_IO_AUTO;
    else if (!strcmp(s, "uring"))
        *out = LOAD_IO_URING;
    else if (!strcmp(s, "epoll"))
        *out = LOAD_IO_EPOLL;
    else
        return false;
    return true;
}

bool load_io_setup(const char *mode, enum load_io io, uint32_t blksize, uint32_t windowsize, bool udp_gro)
{
    if (io == LOAD_IO_EPOLL)
        return true;
    size_t block = (size_t)(blksize > 512 ? blksize : 512) + 4;
    size_t payload_max = block;
    if (udp_gro && windowsize > 1) /* a GSO send is at most 64 KiB */
        payload_max = (size_t)windowsize * block < 65536 ? (size_t)windowsize * block : 65536;
    char why[200];
    if (ev_uring_init(payload_max < 1024 ? 1024 : payload_max, why, sizeof(why)) == EV_OK)
        return true;
    fprintf(stderr, "bootstorm-load %s: io_uring unavailable (%s)%s\n", mode, why,
            io == LOAD_IO_URING ? "" : ": datagrams on epoll");
    return io != LOAD_IO_URING;
}

const char *load_io_name(void) { return ev_uring_on() ? "io_uring" : "epoll"; }

/* ---- progress line ---- */

static bool g_progress;
static bool g_progress_dirty;

void load_progress_init(int force) { g_progress = force < 0 ? isatty(STDERR_FILENO) : force > 0; }
bool load_progress_on(void) { return g_progress; }

void load_progress(const char *fmt, ...)
{
    if (!g_progress)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (isatty(STDERR_FILENO))
        fprintf(stderr, "\r\033[K%s", line); /* redraw in place */
    else
        fprintf(stderr, "%s\n", line); /* forced onto a file: one line per update */
    g_progress_dirty = isatty(STDERR_FILENO);
    fflush(stderr);
}

void load_progress_clear(void)
{
    if (g_progress_dirty)
        fprintf(stderr, "\r\033[K");
    g_progress_dirty = false;
    fflush(stderr);
}

/* ---- --write-inventory ---- */

void inventory_usage(FILE *f)
{
    fprintf(f, "bootstorm-load --write-inventory FILE [--machines N] [--mac-base MAC] [--client-base ADDR]\n"
               "                [--reservations BOOL] [--profile NAME] [--rack-size N]\n"
               "  Writes an inventory CSV (mac,hostname,ip,profile,rack,role) for the machines a storm\n"
               "  with the same --machines/--mac-base plays: hostname node%%04d (the machine's index),\n"
               "  a reserved address counted from --client-base (skipping .0 and .255).\n"
               "  --machines N        [200]\n"
               "  --mac-base MAC      first MAC [52:54:00:00:00:00]\n"
               "  --client-base ADDR  first reserved address [127.77.1.1]\n"
               "  --reservations BOOL write the ip column; no: leave it empty, addresses come from the\n"
               "                      pool (bootstorm refuses loopback reservations) [yes]\n"
               "  --profile NAME      profile column [default]\n"
               "  --rack-size N       machines per rack column r00, r01... [40]\n");
}

int inventory_main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"write-inventory", required_argument, 0, 'w'}, {"machines", required_argument, 0, 'n'},
        {"mac-base", required_argument, 0, 'm'},        {"client-base", required_argument, 0, 'c'},
        {"profile", required_argument, 0, 'p'},         {"rack-size", required_argument, 0, 'r'},
        {"reservations", required_argument, 0, 'R'},    {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *file = NULL, *profile = "default";
    bool reserve = true;
    uint64_t n = 200, rack = 40;
    uint8_t mac[6] = {0x52, 0x54, 0, 0, 0, 0};
    uint32_t base;
    load_parse_ip("127.77.1.1", &base);
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'w': file = optarg; break;
        case 'n':
            if (!load_parse_u64(optarg, 1, 1000000, &n))
                return load_usage_error("--write-inventory", "--machines %s: want 1-1000000", optarg);
            break;
        case 'm':
            if (!load_parse_mac(optarg, mac))
                return load_usage_error("--write-inventory", "--mac-base %s: want aa:bb:cc:dd:ee:ff", optarg);
            break;
        case 'c':
            if (!load_parse_ip(optarg, &base))
                return load_usage_error("--write-inventory", "--client-base %s: not an IPv4 address", optarg);
            break;
        case 'p':
            if (!*optarg || strpbrk(optarg, ",\"\n\r"))
                return load_usage_error("--write-inventory", "--profile '%s': empty or has , \" or a newline", optarg);
            profile = optarg;
            break;
        case 'r':
            if (!load_parse_u64(optarg, 1, 100000, &rack))
                return load_usage_error("--write-inventory", "--rack-size %s: want 1-100000", optarg);
            break;
        case 'R':
            if (!load_parse_bool(optarg, &reserve))
                return load_usage_error("--write-inventory", "--reservations %s: want yes or no", optarg);
            break;
        case 'h': inventory_usage(stdout); return LOAD_EXIT_OK;
        default: return load_usage_error("--write-inventory", "unknown option");
        }
    }
    if (!file)
        return load_usage_error("--write-inventory", "needs a FILE");
    FILE *f = strcmp(file, "-") ? fopen(file, "w") : stdout;
    if (!f) {
        fprintf(stderr, "bootstorm-load: %s: %s\n", file, strerror(errno));
        return LOAD_EXIT_USAGE;
    }
    fprintf(f, "mac,hostname,ip,profile,rack,role\n");
    for (uint64_t i = 0; i < n; i++) {
        uint8_t m[6];
        char ip[16];
        load_mac_add(mac, i, m);
        fprintf(f, "%02x:%02x:%02x:%02x:%02x:%02x,node%04llu,%s,%s,r%02llu,%s\n", m[0], m[1], m[2], m[3], m[4], m[5],
                (unsigned long long)i, reserve ? load_ip_str(load_ip_nth(base, i), ip) : "", profile,
                (unsigned long long)(i / rack), i % 10 ? "compute" : "storage");
    }
    if (f != stdout && fclose(f) != 0) {
        fprintf(stderr, "bootstorm-load: %s: %s\n", file, strerror(errno));
        return LOAD_EXIT_USAGE;
    }
    if (f != stdout)
        fprintf(stderr, "bootstorm-load: wrote %llu machines to %s\n", (unsigned long long)n, file);
    return LOAD_EXIT_OK;
}

/* ---- dispatch ---- */

static void usage(FILE *f)
{
    fprintf(f,
            "bootstorm-load — plays a rack of PXE-booting machines against a boot server, and\n"
            "benchmarks DHCP, TFTP and HTTP servers one protocol at a time.\n"
            "\n"
            "usage: bootstorm-load storm [options]     N machines through the whole install flow\n"
            "       bootstorm-load http  [options]     HTTP: req/s, MB/s, latency, finish spread\n"
            "       bootstorm-load tftp  [options]     TFTP: transfers/s, MB/s, transfer times\n"
            "       bootstorm-load dhcp  [options]     DHCP as a relay agent: DORA/s, drops, latency\n"
            "       bootstorm-load --write-inventory FILE [options]\n"
            "       bootstorm-load checksum [--verify crc32c|sha256] FILE...\n"
            "\n"
            "One process, one thread (epoll; io_uring for TFTP datagrams): no thread or process per\n"
            "machine.  Capacity:\n"
            "  %s.\n"
            "Exit status: 0 everything succeeded, 1 a machine/request/transfer failed, 2 usage.\n"
            "\n",
            LOAD_MACHINES_PER_CORE_TEXT);
    storm_usage(f);
    fputc('\n', f);
    http_mode_usage(f);
    fputc('\n', f);
    tftp_mode_usage(f);
    fputc('\n', f);
    dhcp_mode_usage(f);
    fputc('\n', f);
    inventory_usage(f);
}

#include "bench/load/verify.h"

/* bootstorm-load checksum FILE...: the digest the --verify checks compare with. */
static int checksum_main(int argc, char **argv)
{
    enum verify_kind k = VERIFY_SHA256;
    int i = 1;
    if (i < argc && !strncmp(argv[i], "--verify=", 9)) { /* main() joined "--verify KIND" */
        if (!verify_parse_kind(argv[i] + 9, &k) || k == VERIFY_NONE)
            return load_usage_error("checksum", "--verify %s: want crc32c or sha256", argv[i] + 9);
        i++;
    }
    if (i >= argc)
        return load_usage_error("checksum", "needs a FILE");
    int rc = LOAD_EXIT_OK;
    for (; i < argc; i++) {
        const char *slash = strrchr(argv[i], '/');
        char dir[4096];
        const char *name = argv[i];
        if (slash) {
            snprintf(dir, sizeof(dir), "%.*s", (int)(slash - argv[i]), argv[i]);
            if (!dir[0])
                strcpy(dir, "/");
            name = slash + 1;
        } else {
            strcpy(dir, ".");
        }
        const struct verify_ref *r = verify_ref_get(dir, name, k);
        if (r->state != VERIFY_REF_OK) {
            fprintf(stderr, "bootstorm-load checksum: %s: not a readable regular file\n", argv[i]);
            rc = LOAD_EXIT_FAILED;
            continue;
        }
        char hex[65];
        printf("%s  %s\n", verify_hex(r->digest, r->digest_len, hex), argv[i]);
    }
    verify_refs_free();
    return rc;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2) {
        usage(stderr);
        return LOAD_EXIT_USAGE;
    }
    const char *m = argv[1];
    if (!strcmp(m, "-h") || !strcmp(m, "--help") || !strcmp(m, "help")) {
        usage(stdout);
        return LOAD_EXIT_OK;
    }
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--write-inventory") || !strncmp(argv[i], "--write-inventory=", 18))
            return inventory_main(argc, argv);
    load_join_verify(&argc, argv);
    if (!strcmp(m, "storm"))
        return storm_main(argc - 1, argv + 1);
    if (!strcmp(m, "http"))
        return http_mode_main(argc - 1, argv + 1);
    if (!strcmp(m, "tftp"))
        return tftp_mode_main(argc - 1, argv + 1);
    if (!strcmp(m, "dhcp"))
        return dhcp_mode_main(argc - 1, argv + 1);
    if (!strcmp(m, "checksum"))
        return checksum_main(argc - 1, argv + 1);
    fprintf(stderr, "bootstorm-load: unknown mode '%s' (storm, http, tftp, dhcp, --write-inventory, checksum; --help)\n",
            m);
    return LOAD_EXIT_USAGE;
}
