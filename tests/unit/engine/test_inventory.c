/* Criterion suite for engine/inventory: the CSV dialect (RFC 4180 quotes, BOM,
 * CRLF, comments, blank lines), validation and its FILE:LINE messages, every
 * problem reported at once, the three indexes, and publication with a reader
 * thread racing a publisher (run it under BUILD=tsan). */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/inventory.h"

static char err[512];

static struct inventory *parse_ok(const char *text)
{
    struct inventory *inv = NULL;
    int rc = inventory_parse("hosts.csv", text, strlen(text), &inv, err, sizeof err);
    cr_assert_eq(rc, 0, "rc %d: %s", rc, err);
    cr_assert_not_null(inv);
    return inv;
}

static void parse_bad(const char *text, const char *want)
{
    struct inventory *inv = (struct inventory *)1;
    int rc = inventory_parse("hosts.csv", text, strlen(text), &inv, err, sizeof err);
    cr_assert_eq(rc, -EINVAL, "rc %d for %s", rc, text);
    cr_assert_null(inv);
    cr_assert_str_eq(err, want);
}

Test(inventory, basic_columns_and_vars)
{
    struct inventory *inv = parse_ok("mac,hostname,ip,profile,rack,role\n"
                                     "52:54:00:12:34:56,node1,10.0.0.5,centos,r01,compute\n"
                                     "52-54-00-AB-CD-EF,node2,,,r02,storage\n");
    cr_assert_eq(inventory_count(inv), 2);
    const struct inv_host *h = inventory_host(inv, 0);
    cr_assert_str_eq(h->mac_str, "52:54:00:12:34:56");
    cr_assert_str_eq(h->hostname, "node1");
    cr_assert_eq(h->ip, 0x0a000005u);
    cr_assert_str_eq(h->profile, "centos");
    cr_assert_eq(h->line, 2);
    cr_assert_eq(h->nvars, 2);
    cr_assert_str_eq(h->vars[0].key, "rack");
    cr_assert_str_eq(h->vars[0].value, "r01");
    cr_assert_str_eq(inv_host_var(h, "role"), "compute");
    cr_assert_null(inv_host_var(h, "disk"));
    h = inventory_host(inv, 1);
    cr_assert_str_eq(h->mac_str, "52:54:00:ab:cd:ef");
    cr_assert_eq(h->ip, 0);
    cr_assert_str_eq(h->profile, "");
    cr_assert_str_eq(inv_host_var(h, "rack"), "r02");
    cr_assert_null(inventory_host(inv, 2));
    cr_assert_str_eq(inventory_name(inv), "hosts.csv");
    inventory_free(inv);
}

Test(inventory, header_any_order_minimal)
{
    struct inventory *inv = parse_ok("HostName,MAC\nweb1,00:11:22:33:44:55\n");
    const struct inv_host *h = inventory_host(inv, 0);
    cr_assert_str_eq(h->hostname, "web1");
    cr_assert_str_eq(h->mac_str, "00:11:22:33:44:55");
    cr_assert_eq(h->nvars, 0);
    inventory_free(inv);
}

Test(inventory, quotes_bom_crlf_comments_blank)
{
    const char text[] = "\xEF\xBB\xBF# exported from the asset DB\r\n"
                        "mac,hostname,ip,note\r\n"
                        "\r\n"
                        "\"00:11:22:33:44:01\",\"a1\",10.1.0.1,\"rack 3, \"\"left\"\" side\"\r\n"
                        "# a comment between rows\r\n"
                        "  00:11:22:33:44:02 , a2 ,, \"two\nlines\"\r\n"
                        "00:11:22:33:44:03,a3,10.1.0.3,\"\"";  /* no final line break */
    struct inventory *inv = parse_ok(text);
    cr_assert_eq(inventory_count(inv), 3);
    const struct inv_host *h = inventory_host(inv, 0);
    cr_assert_eq(h->line, 4);
    cr_assert_str_eq(inv_host_var(h, "note"), "rack 3, \"left\" side");
    h = inventory_host(inv, 1);
    cr_assert_str_eq(h->hostname, "a2");
    cr_assert_eq(h->ip, 0);
    cr_assert_str_eq(inv_host_var(h, "note"), "two\nlines");
    cr_assert_eq(h->line, 6);
    h = inventory_host(inv, 2);
    cr_assert_eq(h->line, 8, "line counting goes on after a quoted line break: %u", h->line);
    cr_assert_str_eq(inv_host_var(h, "note"), "");
    inventory_free(inv);
}

Test(inventory, lookups)
{
    struct inventory *inv = parse_ok("mac,hostname,ip\n"
                                     "02:00:00:00:00:01,alpha,192.168.1.10\n"
                                     "02:00:00:00:00:02,Beta.example.com,192.168.1.11\n"
                                     "02:00:00:00:00:03,gamma,\n");
    uint8_t mac[6] = { 2, 0, 0, 0, 0, 2 };
    const struct inv_host *h = inventory_find_mac(inv, mac);
    cr_assert_not_null(h);
    cr_assert_str_eq(h->hostname, "Beta.example.com");
    mac[5] = 9;
    cr_assert_null(inventory_find_mac(inv, mac));
    cr_assert_eq(inventory_find_hostname(inv, "beta.EXAMPLE.com"), h, "host names compare without case");
    cr_assert_null(inventory_find_hostname(inv, "delta"));
    h = inventory_find_ip(inv, 0xc0a8010a);
    cr_assert_not_null(h);
    cr_assert_str_eq(h->hostname, "alpha");
    cr_assert_null(inventory_find_ip(inv, 0xc0a8010c));
    cr_assert_null(inventory_find_ip(inv, 0), "pool hosts are not indexed under 0");
    inventory_free(inv);
}

Test(inventory, many_hosts_indexed)
{
    size_t n = 5000, cap = 64 * n;
    char *text = malloc(cap), *p = text;
    p += sprintf(p, "mac,hostname,ip\n");
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "52:54:00:%02zx:%02zx:%02zx,n%zu,10.%zu.%zu.%zu\n", (i >> 16) & 255, (i >> 8) & 255,
                     i & 255, i, 1 + (i >> 16), (i >> 8) & 255, i & 255);
    struct inventory *inv = NULL;
    cr_assert_eq(inventory_parse("big.csv", text, (size_t)(p - text), &inv, err, sizeof err), 0, "%s", err);
    cr_assert_eq(inventory_count(inv), n);
    for (size_t i = 0; i < n; i += 7) {
        uint8_t mac[6] = { 0x52, 0x54, 0, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i };
        const struct inv_host *h = inventory_find_mac(inv, mac);
        cr_assert_not_null(h);
        char name[16];
        snprintf(name, sizeof name, "n%zu", i);
        cr_assert_str_eq(h->hostname, name);
        cr_assert_eq(inventory_find_hostname(inv, name), h);
        cr_assert_eq(inventory_find_ip(inv, h->ip), h);
    }
    inventory_free(inv);
    free(text);
}

Test(inventory, parse_mac_helper)
{
    uint8_t m[6];
    cr_assert(inventory_parse_mac("aa:BB:cc:dd:ee:0f", m));
    cr_assert_eq(m[1], 0xbb);
    cr_assert_eq(m[5], 0x0f);
    cr_assert(inventory_parse_mac("aa-bb-cc-dd-ee-ff", m));
    cr_assert_not(inventory_parse_mac("aa:bb-cc:dd:ee:ff", m), "mixed separators");
    cr_assert_not(inventory_parse_mac("aa:bb:cc:dd:ee", m));
    cr_assert_not(inventory_parse_mac("aa:bb:cc:dd:ee:ff:", m));
    cr_assert_not(inventory_parse_mac("a:bb:cc:dd:ee:ff", m));
    cr_assert_not(inventory_parse_mac("aabbccddeeff", m));
    cr_assert_not(inventory_parse_mac("gg:bb:cc:dd:ee:ff", m));
    cr_assert_not(inventory_parse_mac("", m));
    char s[18];
    uint8_t x[6] = { 0xde, 0xad, 0xbe, 0xef, 0, 1 };
    inventory_format_mac(x, s);
    cr_assert_str_eq(s, "de:ad:be:ef:00:01");
}

Test(inventory, hostname_rules)
{
    cr_assert(inventory_valid_hostname("a"));
    cr_assert(inventory_valid_hostname("node-01.rack3.example"));
    cr_assert(inventory_valid_hostname("3com"), "RFC 1123 allows a leading digit");
    cr_assert_not(inventory_valid_hostname(""));
    cr_assert_not(inventory_valid_hostname("-node"));
    cr_assert_not(inventory_valid_hostname("node-"));
    cr_assert_not(inventory_valid_hostname("no_de"));
    cr_assert_not(inventory_valid_hostname("a..b"));
    cr_assert_not(inventory_valid_hostname("a.b."));
    cr_assert_not(inventory_valid_hostname("node.-x"));
    char long_name[80];
    memset(long_name, 'x', 64);
    long_name[64] = 0;
    cr_assert_not(inventory_valid_hostname(long_name), "64 characters do not fit");
    long_name[63] = 0;
    cr_assert(inventory_valid_hostname(long_name), "63 characters: one full label");
}

Test(inventory, bad_values)
{
    parse_bad("mac,hostname\nzz:00:00:00:00:01,a\n", "hosts.csv:2: mac \"zz:00:00:00:00:01\": not a MAC address (aa:bb:cc:dd:ee:ff)");
    parse_bad("mac,hostname\n01:00:5e:00:00:01,a\n", "hosts.csv:2: mac \"01:00:5e:00:00:01\": a multicast address, not a NIC's");
    parse_bad("mac,hostname\n02:00:00:00:00:01,bad_name\n",
              "hosts.csv:2: hostname \"bad_name\": not a host name (RFC 1123: labels of letters, digits, '-', at most 63 characters)");
    parse_bad("mac,hostname\n02:00:00:00:00:01,\n",
              "hosts.csv:2: hostname \"\": not a host name (RFC 1123: labels of letters, digits, '-', at most 63 characters)");
    parse_bad("mac,hostname,ip\n02:00:00:00:00:01,a,10.0.0.256\n", "hosts.csv:2: ip \"10.0.0.256\": not an IPv4 address");
    parse_bad("mac,hostname,ip\n02:00:00:00:00:01,a,010.0.0.1\n", "hosts.csv:2: ip \"010.0.0.1\": not an IPv4 address");
    parse_bad("mac,hostname,ip\n02:00:00:00:00:01,a,224.0.0.1\n", "hosts.csv:2: ip \"224.0.0.1\": multicast or reserved address");
    parse_bad("mac,hostname,ip\n02:00:00:00:00:01,a,127.0.0.1\n", "hosts.csv:2: ip \"127.0.0.1\": loopback address");
    parse_bad("mac,hostname,ip\n02:00:00:00:00:01,a,0.0.0.0\n", "hosts.csv:2: ip \"0.0.0.0\": not a host address");
    parse_bad("mac,hostname,profile\n02:00:00:00:00:01,a,../etc\n",
              "hosts.csv:2: profile \"../etc\": not a profile name (letters, digits, '-', '_', '.')");
}

Test(inventory, duplicates_name_both_lines)
{
    parse_bad("mac,hostname,ip\n"
              "02:00:00:00:00:01,a,10.0.0.1\n"
              "02:00:00:00:00:02,b,10.0.0.2\n"
              "02-00-00-00-00-01,c,10.0.0.3\n",
              "hosts.csv:4: duplicate mac 02:00:00:00:00:01 (also on line 2)");
    parse_bad("mac,hostname,ip\n02:00:00:00:00:01,a,10.0.0.1\n02:00:00:00:00:02,A,10.0.0.2\n",
              "hosts.csv:3: duplicate hostname \"A\" (also on line 2)");
    parse_bad("mac,hostname,ip\n02:00:00:00:00:01,a,10.0.0.1\n\n02:00:00:00:00:02,b,10.0.0.1\n",
              "hosts.csv:4: duplicate ip 10.0.0.1 (also on line 2)");
    /* two hosts in the pool (no ip) are not duplicates */
    struct inventory *inv = parse_ok("mac,hostname,ip\n02:00:00:00:00:01,a,\n02:00:00:00:00:02,b,\n");
    inventory_free(inv);
}

Test(inventory, structure_errors)
{
    parse_bad("", "hosts.csv: empty: no header row (mac,hostname,ip,profile,...)");
    parse_bad("# only a comment\n\n", "hosts.csv: empty: no header row (mac,hostname,ip,profile,...)");
    parse_bad("mac,ip\n", "hosts.csv:1: header needs at least the columns mac and hostname");
    parse_bad("mac,hostname,Mac\n", "hosts.csv:1: column \"Mac\" twice in the header");
    parse_bad("mac,hostname,rack no\n", "hosts.csv:1: column \"rack no\": not a variable name (a letter or '_', then letters, digits, '_', '-')");
    parse_bad("mac,hostname,token\n", "hosts.csv:1: column \"token\": reserved, bootstorm fills it in");
    parse_bad("mac,hostname\n02:00:00:00:00:01,a,extra\n", "hosts.csv:2: 3 fields, the header has 2");
    parse_bad("mac,hostname\n02:00:00:00:00:01\n", "hosts.csv:2: 1 fields, the header has 2");
    parse_bad("mac,hostname\n02:00:00:00:00:01,\"a\n", "hosts.csv:2: unterminated quoted field");
    parse_bad("mac,hostname\n02:00:00:00:00:01,\"a\"b\n", "hosts.csv:2: text after a closing quote");
    parse_bad("mac,hostname\n02:00:00:00:00:01,a\"b\n", "hosts.csv:2: quote inside an unquoted field");
    const char nul[] = "mac,hostname\n02:00:00:00:00:01,a\0\n";
    struct inventory *inv;
    cr_assert_eq(inventory_parse("hosts.csv", nul, sizeof nul - 1, &inv, err, sizeof err), -EINVAL);
    cr_assert_str_eq(err, "hosts.csv:2: NUL byte: not a text file");
}

static char reported[8][256];
static int nreported;

static void collect(void *ctx, const char *msg)
{
    (void)ctx;
    if (nreported < 8)
        snprintf(reported[nreported], sizeof reported[0], "%s", msg);
    nreported++;
}

Test(inventory, every_problem_reported)
{
    const char *text = "mac,hostname,ip\n"
                       "02:00:00:00:00:01,a,10.0.0.1\n"
                       "bad,b,10.0.0.2\n"
                       "02:00:00:00:00:03,a,10.0.0.1\n"
                       "02:00:00:00:00:04,d,10.0.0.4\n";
    struct inventory *inv;
    nreported = 0;
    cr_assert_eq(inventory_parse_report("h.csv", text, strlen(text), &inv, collect, NULL), -EINVAL);
    cr_assert_eq(nreported, 3);
    cr_assert_str_eq(reported[0], "h.csv:3: mac \"bad\": not a MAC address (aa:bb:cc:dd:ee:ff)");
    cr_assert_str_eq(reported[1], "h.csv:4: duplicate hostname \"a\" (also on line 2)");
    cr_assert_str_eq(reported[2], "h.csv:4: duplicate ip 10.0.0.1 (also on line 2)");
    /* the short form keeps the first and counts the rest */
    cr_assert_eq(inventory_parse("h.csv", text, strlen(text), &inv, err, sizeof err), -EINVAL);
    cr_assert_str_eq(err, "h.csv:3: mac \"bad\": not a MAC address (aa:bb:cc:dd:ee:ff) (and 2 more problems)");
}

Test(inventory, load_file)
{
    char path[] = "/tmp/test_inventory.XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    const char *text = "mac,hostname,ip\r\n52:54:00:00:00:01,n1,10.9.0.1\r\n";
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    struct inventory *inv;
    cr_assert_eq(inventory_load(path, &inv, err, sizeof err), 0, "%s", err);
    cr_assert_str_eq(inventory_host(inv, 0)->hostname, "n1");
    cr_assert_str_eq(inventory_name(inv), path);
    inventory_free(inv);
    unlink(path);
    cr_assert_eq(inventory_load(path, &inv, err, sizeof err), -ENOENT);
    char want[128];
    snprintf(want, sizeof want, "%s: No such file or directory", path);
    cr_assert_str_eq(err, want);
    cr_assert_eq(inventory_load("/tmp", &inv, err, sizeof err), -EISDIR);
}

/* ---- publication ---- */

static struct inventory *make_gen(unsigned gen)
{
    char text[256];
    snprintf(text, sizeof text, "mac,hostname,gen\n02:00:00:00:00:01,host,%u\n02:00:00:00:00:02,other,%u\n", gen, gen);
    struct inventory *inv = NULL;
    cr_assert_eq(inventory_parse("gen.csv", text, strlen(text), &inv, err, sizeof err), 0);
    return inv;
}

Test(inventory, holder_single_thread)
{
    struct inventory_holder *h = inventory_holder_new(NULL);
    cr_assert_not_null(h);
    struct inventory *cur = inventory_holder_acquire(h);
    cr_assert_null(cur);
    inventory_holder_publish(h, make_gen(1));
    inventory_holder_refresh(h, &cur);
    cr_assert_not_null(cur);
    cr_assert_str_eq(inv_host_var(inventory_host(cur, 0), "gen"), "1");
    struct inventory *old = cur;
    inventory_holder_publish(h, make_gen(2));
    /* the old one stays valid for this thread until it refreshes */
    cr_assert_str_eq(inv_host_var(inventory_host(old, 0), "gen"), "1");
    inventory_holder_refresh(h, &cur);
    cr_assert_str_eq(inv_host_var(inventory_host(cur, 0), "gen"), "2");
    inventory_holder_refresh(h, &cur); /* nothing new: stays */
    cr_assert_str_eq(inv_host_var(inventory_host(cur, 0), "gen"), "2");
    inventory_holder_release(h, cur);
    inventory_holder_free(h);
}

struct race {
    struct inventory_holder *h;
    atomic_bool stop;
    atomic_ulong reads;
    atomic_uint bad;
};

static void *reader(void *arg)
{
    struct race *r = arg;
    struct inventory *cur = inventory_holder_acquire(r->h);
    unsigned last = 0;
    while (!atomic_load(&r->stop)) {
        inventory_holder_refresh(r->h, &cur);
        for (int k = 0; k < 50; k++) {
            uint8_t mac[6] = { 2, 0, 0, 0, 0, 1 };
            const struct inv_host *host = inventory_find_mac(cur, mac);
            const struct inv_host *other = inventory_find_hostname(cur, "other");
            if (!host || !other) {
                atomic_fetch_add(&r->bad, 1);
                continue;
            }
            unsigned g = (unsigned)strtoul(inv_host_var(host, "gen"), NULL, 10);
            /* a generation never goes backwards, and one inventory is consistent */
            if (g < last || strcmp(inv_host_var(host, "gen"), inv_host_var(other, "gen")))
                atomic_fetch_add(&r->bad, 1);
            last = g;
        }
        atomic_fetch_add(&r->reads, 1);
    }
    inventory_holder_release(r->h, cur);
    return NULL;
}

Test(inventory, holder_reader_and_publisher_race)
{
    struct race r = { .h = inventory_holder_new(make_gen(0)) };
    atomic_init(&r.stop, false);
    atomic_init(&r.reads, 0);
    atomic_init(&r.bad, 0);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, reader, &r), 0);
    for (unsigned gen = 1; gen <= 300; gen++) {
        inventory_holder_publish(r.h, make_gen(gen));
        if (gen % 16 == 0)
            usleep(200);
    }
    atomic_store(&r.stop, true);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    cr_assert_eq(atomic_load(&r.bad), 0);
    cr_assert_gt(atomic_load(&r.reads), 0);
    /* a late thread sees the newest */
    struct inventory *cur = inventory_holder_acquire(r.h);
    cr_assert_str_eq(inv_host_var(inventory_host(cur, 0), "gen"), "300");
    inventory_holder_release(r.h, cur);
    inventory_holder_free(r.h);
}
