/* Criterion suite for engine/ports: the rule list and its nftables and iptables
 * forms for a few configurations. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/options.h"
#include "engine/ports.h"

static char tmp[64];
static struct options o;
static char err[OPTIONS_ERR_MAX];

static void setup(void)
{
    strcpy(tmp, "/tmp/test_ports.XXXXXX");
    cr_assert_not_null(mkdtemp(tmp));
    memset(&o, 0, sizeof o);
}

static void teardown(void)
{
    options_free(&o);
    rmdir(tmp);
}

TestSuite(ports, .init = setup, .fini = teardown);

#define CONFIGURE(...) do {                                                          \
        char *argv_[] = { "ports", __VA_ARGS__ };                                    \
        options_free(&o);                                                            \
        cr_assert_eq(options_parse(&o, OPTIONS_CMD_PORTS, sizeof argv_ / sizeof argv_[0], argv_, \
                                   NULL, err, sizeof err), OPTIONS_OK, "%s", err);   \
    } while (0)

static char *render(enum ports_format fmt)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert_not_null(f);
    cr_assert_eq(ports_write(f, &o, fmt), PORTS_OK);
    fclose(f);
    return buf;
}

static void expect_rule(const struct ports_rule *r, enum ports_proto proto, enum ports_dir dir,
                        unsigned dlo, unsigned dhi, unsigned slo, unsigned shi)
{
    cr_expect_eq(r->proto, proto, "%s", r->why);
    cr_expect_eq(r->dir, dir, "%s", r->why);
    cr_expect_eq(r->dport_lo, dlo, "%s", r->why);
    cr_expect_eq(r->dport_hi, dhi, "%s", r->why);
    cr_expect_eq(r->sport_lo, slo, "%s", r->why);
    cr_expect_eq(r->sport_hi, shi, "%s", r->why);
}

Test(ports, http_only_by_default)
{
    CONFIGURE("--quiet");
    struct ports_rule r[PORTS_MAX_RULES];
    cr_assert_eq(ports_rules(&o, r, PORTS_MAX_RULES), 1);
    expect_rule(&r[0], PORTS_TCP, PORTS_IN, 8080, 8080, 0, 0);
    cr_expect_not(ports_tftp_needs_helper(&o));

    char *nft = render(PORTS_FORMAT_NFT);
    const char *table = strstr(nft, "table inet bootstorm\ndelete table inet bootstorm\ntable inet bootstorm {\n");
    cr_assert_not_null(table, "%s", nft);
    cr_expect_str_eq(table,
        "table inet bootstorm\n"
        "delete table inet bootstorm\n"
        "table inet bootstorm {\n"
        "\tchain input {\n"
        "\t\ttype filter hook input priority filter; policy accept;\n"
        "\t\ttcp dport 8080 accept comment \"HTTP: boot scripts, kickstarts, images, API\"\n"
        "\t}\n"
        "\n"
        "\tchain output {\n"
        "\t\ttype filter hook output priority filter; policy accept;\n"
        "\t}\n"
        "}\n");
    cr_expect_null(strstr(nft, "iptables -I"), "nft form only");
    free(nft);

    char *ipt = render(PORTS_FORMAT_IPTABLES);
    cr_expect_not_null(strstr(ipt, "\niptables -I INPUT 1 -p tcp --dport 8080 -m comment --comment "
                                   "\"bootstorm: HTTP: boot scripts, kickstarts, images, API\" -j ACCEPT\n"));
    cr_expect_null(strstr(ipt, "table inet"), "iptables form only");
    cr_expect_null(strstr(ipt, "udp"));
    free(ipt);
}

Test(ports, dhcp_and_tftp_with_ephemeral_ports)
{
    CONFIGURE("--subnet", "10.0.0.0/24,pool=10.0.0.100-10.0.0.200", "--tftp-root", tmp,
              "--interface", "eth1", "--http-port", "80");
    struct ports_rule r[PORTS_MAX_RULES];
    cr_assert_eq(ports_rules(&o, r, PORTS_MAX_RULES), 5);
    expect_rule(&r[0], PORTS_UDP, PORTS_IN, 67, 67, 0, 0);
    cr_expect(r[0].on_interface);
    expect_rule(&r[1], PORTS_UDP, PORTS_OUT, 68, 68, 67, 67);
    expect_rule(&r[2], PORTS_UDP, PORTS_OUT, 67, 67, 67, 67);
    cr_expect_not(r[2].on_interface, "relay agents may sit behind any interface");
    expect_rule(&r[3], PORTS_UDP, PORTS_IN, 69, 69, 0, 0);
    expect_rule(&r[4], PORTS_TCP, PORTS_IN, 80, 80, 0, 0);
    cr_expect(ports_tftp_needs_helper(&o));

    char *all = render(PORTS_FORMAT_BOTH);
    static const char *const want[] = {
        "\tct helper bootstorm-tftp {\n\t\ttype \"tftp\" protocol udp\n\t}\n",
        "\t\ttype filter hook prerouting priority filter; policy accept;\n"
        "\t\tudp dport 69 ct helper set \"bootstorm-tftp\"\n",
        "\t\tct state established,related accept comment \"TFTP transfers (conntrack tftp helper)\"\n"
        "\t\tiifname \"eth1\" udp dport 67 accept comment \"DHCP requests from clients and relay agents\"\n"
        "\t\tudp dport 69 accept comment \"TFTP requests\"\n"
        "\t\ttcp dport 80 accept comment",
        "\t\toifname \"eth1\" udp sport 67 udp dport 68 accept comment \"DHCP replies to clients\"\n"
        "\t\tudp sport 67 udp dport 67 accept comment \"DHCP replies to relay agents\"\n",
        "modprobe nf_conntrack_tftp\n"
        "iptables -t raw -I PREROUTING -p udp --dport 69 -j CT --helper tftp\n"
        "iptables -I INPUT 1 -m conntrack --ctstate ESTABLISHED,RELATED -m comment --comment "
        "\"bootstorm: TFTP transfers\" -j ACCEPT\n",
        "iptables -I INPUT 2 -i eth1 -p udp --dport 67 -m comment",
        "iptables -I OUTPUT 2 -o eth1 -p udp --sport 67 --dport 68 -m comment",
        "iptables -I INPUT 3 -p udp --dport 69 -m comment",
        "iptables -I INPUT 4 -p tcp --dport 80 -m comment",
        "# TFTP transfers use ephemeral ports",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_expect_not_null(strstr(all, want[i]), "missing:\n%s\nin:\n%s", want[i], all);
    cr_expect_null(strstr(all, "4011"), "no proxyDHCP port without --proxy-dhcp");
    cr_expect_null(strstr(all, "ip6tables"));
    cr_expect(strstr(all, "table inet bootstorm {") < strstr(all, "# iptables"), "nft first, then iptables");
    free(all);
}

Test(ports, proxy_dhcp_port_range_and_ra)
{
    CONFIGURE("--proxy-dhcp", "--tftp-root", tmp, "--tftp-ports", "50000-50999", "--ipv6-ra",
              "--tftp-port", "1069", "--dhcp-port", "1067");
    struct ports_rule r[PORTS_MAX_RULES];
    cr_assert_eq(ports_rules(&o, r, PORTS_MAX_RULES), 11);
    expect_rule(&r[0], PORTS_UDP, PORTS_IN, 1067, 1067, 0, 0);
    expect_rule(&r[1], PORTS_UDP, PORTS_IN, 4011, 4011, 0, 0);
    expect_rule(&r[2], PORTS_UDP, PORTS_OUT, 68, 68, 1067, 1067);
    expect_rule(&r[3], PORTS_UDP, PORTS_OUT, 1067, 1067, 1067, 1067);
    expect_rule(&r[4], PORTS_UDP, PORTS_OUT, 0, 0, 4011, 4011);
    expect_rule(&r[5], PORTS_UDP, PORTS_IN, 1069, 1069, 0, 0);
    expect_rule(&r[6], PORTS_UDP, PORTS_IN, 50000, 50999, 0, 0);
    expect_rule(&r[7], PORTS_UDP, PORTS_OUT, 0, 0, 50000, 50999);
    expect_rule(&r[8], PORTS_TCP, PORTS_IN, 8080, 8080, 0, 0);
    expect_rule(&r[9], PORTS_ICMPV6, PORTS_IN, PORTS_ICMPV6_ROUTER_SOLICIT, 0, 0, 0);
    expect_rule(&r[10], PORTS_ICMPV6, PORTS_OUT, PORTS_ICMPV6_ROUTER_ADVERT, 0, 0, 0);
    cr_expect_not(ports_tftp_needs_helper(&o));

    char *nft = render(PORTS_FORMAT_NFT);
    const char *table = strstr(nft, "table inet bootstorm {\n");
    cr_assert_not_null(table);
    cr_expect_str_eq(table,
        "table inet bootstorm {\n"
        "\tchain input {\n"
        "\t\ttype filter hook input priority filter; policy accept;\n"
        "\t\tudp dport 1067 accept comment \"DHCP requests from clients and relay agents\"\n"
        "\t\tudp dport 4011 accept comment \"proxyDHCP requests to the boot server port\"\n"
        "\t\tudp dport 1069 accept comment \"TFTP requests\"\n"
        "\t\tudp dport 50000-50999 accept comment \"TFTP acknowledgements to the transfer ports\"\n"
        "\t\ttcp dport 8080 accept comment \"HTTP: boot scripts, kickstarts, images, API\"\n"
        "\t\ticmpv6 type nd-router-solicit accept comment \"IPv6 router solicitations\"\n"
        "\t}\n"
        "\n"
        "\tchain output {\n"
        "\t\ttype filter hook output priority filter; policy accept;\n"
        "\t\tudp sport 1067 udp dport 68 accept comment \"DHCP replies to clients\"\n"
        "\t\tudp sport 1067 udp dport 1067 accept comment \"DHCP replies to relay agents\"\n"
        "\t\tudp sport 4011 accept comment \"proxyDHCP replies\"\n"
        "\t\tudp sport 50000-50999 accept comment \"TFTP data from the transfer ports\"\n"
        "\t\ticmpv6 type nd-router-advert accept comment \"IPv6 router advertisements\"\n"
        "\t}\n"
        "}\n");
    cr_expect_null(strstr(nft, "ct helper"), "a fixed port range needs no helper");
    free(nft);

    char *ipt = render(PORTS_FORMAT_IPTABLES);
    cr_expect_not_null(strstr(ipt, "iptables -I INPUT 4 -p udp --dport 50000:50999 -m comment"));
    cr_expect_not_null(strstr(ipt, "iptables -I OUTPUT 4 -p udp --sport 50000:50999 -m comment"));
    cr_expect_not_null(strstr(ipt, "iptables -I OUTPUT 3 -p udp --sport 4011 -m comment"));
    cr_expect_not_null(strstr(ipt, "ip6tables -I INPUT 1 -p ipv6-icmp --icmpv6-type router-solicitation -m comment"));
    cr_expect_not_null(strstr(ipt, "ip6tables -I OUTPUT 1 -p ipv6-icmp --icmpv6-type router-advertisement -m comment"));
    cr_expect_null(strstr(ipt, "modprobe"));
    free(ipt);
}

Test(ports, short_array_still_counts_every_rule)
{
    CONFIGURE("--proxy-dhcp", "--tftp-root", tmp);
    struct ports_rule r[2];
    cr_expect_eq(ports_rules(&o, r, 2), 7);
    expect_rule(&r[1], PORTS_UDP, PORTS_IN, 4011, 4011, 0, 0);
    cr_expect_eq(ports_rules(&o, NULL, 0), 7);
}

Test(ports, write_errors)
{
    CONFIGURE("--quiet");
    char buf[32];
    FILE *f = fmemopen(buf, sizeof buf, "w");
    cr_assert_not_null(f);
    cr_expect_eq(ports_write(f, &o, PORTS_FORMAT_BOTH), PORTS_ERR_WRITE, "output larger than the stream");
    fclose(f);
    f = fmemopen(buf, sizeof buf, "w");
    cr_assert_not_null(f);
    cr_expect_eq(ports_write(f, &o, (enum ports_format)7), PORTS_ERR_FORMAT);
    fclose(f);
}
