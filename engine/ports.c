/* engine/ports: firewall rules for the ports a configuration opens. */
#include "engine/ports.h"

#define DHCP_CLIENT_PORT 68      /* RFC 2131 §4.1 */
#define PROXY_DHCP_PORT 4011     /* PXE 2.1 §2.2.5: the boot server port */

bool ports_tftp_needs_helper(const struct options *o)
{
    return options_tftp_enabled(o) && o->tftp_ports.lo == 0;
}

static void add(struct ports_rule *out, size_t cap, size_t *n, struct ports_rule r)
{
    if (*n < cap)
        out[*n] = r;
    (*n)++;
}

size_t ports_rules(const struct options *o, struct ports_rule *out, size_t cap)
{
    size_t n = 0;
    uint16_t dp = o->dhcp_port;
    struct options_port_range tr = o->tftp_ports;
    if (options_dhcp_enabled(o)) {
        add(out, cap, &n, (struct ports_rule){ PORTS_UDP, PORTS_IN, dp, dp, 0, 0, true,
                                                "DHCP requests from clients and relay agents" });
        if (o->proxy_dhcp)
            add(out, cap, &n, (struct ports_rule){ PORTS_UDP, PORTS_IN, PROXY_DHCP_PORT, PROXY_DHCP_PORT,
                                                    0, 0, true, "proxyDHCP requests to the boot server port" });
        add(out, cap, &n, (struct ports_rule){ PORTS_UDP, PORTS_OUT, DHCP_CLIENT_PORT, DHCP_CLIENT_PORT,
                                                dp, dp, true, "DHCP replies to clients" });
        /* RFC 2131 §4.1: a relayed request is answered to the relay's server port */
        add(out, cap, &n, (struct ports_rule){ PORTS_UDP, PORTS_OUT, dp, dp, dp, dp, false,
                                                "DHCP replies to relay agents" });
        if (o->proxy_dhcp)
            add(out, cap, &n, (struct ports_rule){ PORTS_UDP, PORTS_OUT, 0, 0, PROXY_DHCP_PORT,
                                                    PROXY_DHCP_PORT, true, "proxyDHCP replies" });
    }
    if (options_tftp_enabled(o)) {
        add(out, cap, &n, (struct ports_rule){ PORTS_UDP, PORTS_IN, o->tftp_port, o->tftp_port, 0, 0, false,
                                                "TFTP requests" });
        if (tr.lo) {
            add(out, cap, &n, (struct ports_rule){ PORTS_UDP, PORTS_IN, tr.lo, tr.hi, 0, 0, false,
                                                    "TFTP acknowledgements to the transfer ports" });
            add(out, cap, &n, (struct ports_rule){ PORTS_UDP, PORTS_OUT, 0, 0, tr.lo, tr.hi, false,
                                                    "TFTP data from the transfer ports" });
        }
    }
    add(out, cap, &n, (struct ports_rule){ PORTS_TCP, PORTS_IN, o->http_port, o->http_port, 0, 0, false,
                                            "HTTP: boot scripts, kickstarts, images, API" });
    if (o->ipv6_ra) {
        add(out, cap, &n, (struct ports_rule){ PORTS_ICMPV6, PORTS_IN, PORTS_ICMPV6_ROUTER_SOLICIT, 0, 0, 0,
                                                true, "IPv6 router solicitations" });
        add(out, cap, &n, (struct ports_rule){ PORTS_ICMPV6, PORTS_OUT, PORTS_ICMPV6_ROUTER_ADVERT, 0, 0, 0,
                                                true, "IPv6 router advertisements" });
    }
    return n;
}

/* ------------------------------------------------------------- nftables */

static void nft_ports(FILE *out, const char *proto, const char *which, uint16_t lo, uint16_t hi)
{
    if (lo == 0)
        return;
    if (lo == hi)
        fprintf(out, "%s %s %u ", proto, which, lo);
    else
        fprintf(out, "%s %s %u-%u ", proto, which, lo, hi);
}

static void nft_rule(FILE *out, const struct options *o, const struct ports_rule *r)
{
    fputs("\t\t", out);
    if (r->on_interface && o->interface)
        fprintf(out, "%s \"%s\" ", r->dir == PORTS_IN ? "iifname" : "oifname", o->interface);
    if (r->proto == PORTS_ICMPV6) {
        fprintf(out, "icmpv6 type %s ",
                r->dport_lo == PORTS_ICMPV6_ROUTER_SOLICIT ? "nd-router-solicit" : "nd-router-advert");
    } else {
        const char *p = r->proto == PORTS_UDP ? "udp" : "tcp";
        nft_ports(out, p, "sport", r->sport_lo, r->sport_hi);
        nft_ports(out, p, "dport", r->dport_lo, r->dport_hi);
    }
    fprintf(out, "accept comment \"%s\"\n", r->why);
}

static void nft_chain(FILE *out, const struct options *o, const struct ports_rule *rules, size_t n,
                      enum ports_dir dir, bool helper)
{
    fprintf(out, "\tchain %s {\n\t\ttype filter hook %s priority filter; policy accept;\n",
            dir == PORTS_IN ? "input" : "output", dir == PORTS_IN ? "input" : "output");
    if (helper)
        fputs("\t\tct state established,related accept comment \"TFTP transfers (conntrack tftp helper)\"\n", out);
    for (size_t i = 0; i < n; i++)
        if (rules[i].dir == dir)
            nft_rule(out, o, &rules[i]);
    fputs("\t}\n", out);
}

static void write_nft(FILE *out, const struct options *o, const struct ports_rule *rules, size_t n)
{
    bool helper = ports_tftp_needs_helper(o);
    fputs("# nftables rules for this bootstorm configuration: nft -f FILE\n"
          "# An accept here does not override a drop in another table's chain on the same\n"
          "# hook: on a host with its own filter table, put these rules in that table.\n", out);
    if (helper)
        fputs("# TFTP transfers use ephemeral ports: the conntrack tftp helper (nf_conntrack_tftp)\n"
              "# relates them to the request; or set --tftp-ports LO-HI and open that range.\n", out);
    /* declaring then deleting the table makes a second `nft -f` replace it */
    fputs("table inet bootstorm\ndelete table inet bootstorm\ntable inet bootstorm {\n", out);
    if (helper) {
        /* helpers are assigned after the conntrack lookup, so at filter priority */
        fprintf(out, "\tct helper bootstorm-tftp {\n\t\ttype \"tftp\" protocol udp\n\t}\n\n"
                "\tchain prerouting {\n\t\ttype filter hook prerouting priority filter; policy accept;\n"
                "\t\tudp dport %u ct helper set \"bootstorm-tftp\"\n\t}\n\n", o->tftp_port);
    }
    nft_chain(out, o, rules, n, PORTS_IN, helper);
    fputc('\n', out);
    nft_chain(out, o, rules, n, PORTS_OUT, helper);
    fputs("}\n", out);
}

/* ------------------------------------------------------------- iptables */

static void ipt_ports(FILE *out, const char *which, uint16_t lo, uint16_t hi)
{
    if (lo == 0)
        return;
    if (lo == hi)
        fprintf(out, " --%s %u", which, lo);
    else
        fprintf(out, " --%s %u:%u", which, lo, hi);
}

static void write_iptables(FILE *out, const struct options *o, const struct ports_rule *rules, size_t n)
{
    unsigned pos4[2] = { 1, 1 }, pos6[2] = { 1, 1 };  /* -I position per chain: keeps the order */
    bool helper = ports_tftp_needs_helper(o);
    fputs("# iptables rules for this bootstorm configuration (run as root); each rule is\n"
          "# inserted at the top of its chain, ahead of any DROP already there; running\n"
          "# this twice adds the rules twice.\n", out);
    if (helper) {
        fprintf(out, "# TFTP transfers use ephemeral ports: the conntrack tftp helper relates them\n"
                "# to the request; or set --tftp-ports LO-HI and open that range.\n"
                "modprobe nf_conntrack_tftp\n"
                "iptables -t raw -I PREROUTING -p udp --dport %u -j CT --helper tftp\n", o->tftp_port);
        for (int d = 0; d < 2; d++)
            fprintf(out, "iptables -I %s %u -m conntrack --ctstate ESTABLISHED,RELATED "
                    "-m comment --comment \"bootstorm: TFTP transfers\" -j ACCEPT\n",
                    d == PORTS_IN ? "INPUT" : "OUTPUT", pos4[d]++);
    }
    for (size_t i = 0; i < n; i++) {
        const struct ports_rule *r = &rules[i];
        bool v6 = r->proto == PORTS_ICMPV6;
        unsigned *pos = v6 ? pos6 : pos4;
        fprintf(out, "%s -I %s %u", v6 ? "ip6tables" : "iptables", r->dir == PORTS_IN ? "INPUT" : "OUTPUT",
                pos[r->dir]++);
        if (r->on_interface && o->interface)
            fprintf(out, " %s %s", r->dir == PORTS_IN ? "-i" : "-o", o->interface);
        if (v6) {
            fprintf(out, " -p ipv6-icmp --icmpv6-type %s",
                    r->dport_lo == PORTS_ICMPV6_ROUTER_SOLICIT ? "router-solicitation" : "router-advertisement");
        } else {
            fprintf(out, " -p %s", r->proto == PORTS_UDP ? "udp" : "tcp");
            ipt_ports(out, "sport", r->sport_lo, r->sport_hi);
            ipt_ports(out, "dport", r->dport_lo, r->dport_hi);
        }
        fprintf(out, " -m comment --comment \"bootstorm: %s\" -j ACCEPT\n", r->why);
    }
}

int ports_write(FILE *out, const struct options *o, enum ports_format fmt)
{
    struct ports_rule rules[PORTS_MAX_RULES];
    size_t n = ports_rules(o, rules, PORTS_MAX_RULES);
    if (fmt != PORTS_FORMAT_NFT && fmt != PORTS_FORMAT_IPTABLES && fmt != PORTS_FORMAT_BOTH)
        return PORTS_ERR_FORMAT;
    if (n > PORTS_MAX_RULES)
        n = PORTS_MAX_RULES;  /* cannot happen: ports_rules adds at most PORTS_MAX_RULES */
    if (fmt != PORTS_FORMAT_IPTABLES)
        write_nft(out, o, rules, n);
    if (fmt == PORTS_FORMAT_BOTH)
        fputc('\n', out);
    if (fmt != PORTS_FORMAT_NFT)
        write_iptables(out, o, rules, n);
    return fflush(out) != 0 || ferror(out) ? PORTS_ERR_WRITE : PORTS_OK;
}
