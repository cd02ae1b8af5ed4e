/* engine/ports: the firewall rules a configuration needs (`bootstorm ports`).
 *
 * From the parsed options: DHCP (when on) 67/udp in, replies 67 -> 68/udp out
 * (and 67 -> 67 to relay agents), 4011/udp with --proxy-dhcp; TFTP (when on) its
 * request port and the transfer ports of --tftp-ports; the HTTP port/tcp;
 * ICMPv6 router solicitations/advertisements with --ipv6-ra.
 *
 * TFTP answers every request from a new port (its TID, RFC 1350 §4), so the
 * client's ACKs arrive on that port.  With --tftp-ports LO-HI those ports are
 * opened; with ephemeral ports (0-0) the rules instead assign the conntrack tftp
 * helper to port 69 and accept related/established traffic, and say so.
 *
 * The output chains only matter on a host that filters its output; the input
 * rules are the ones most hosts need.  nftables: an accept in this table does not
 * override a drop in another table's chain on the same hook, so on a host with its
 * own filter table the rules belong in that table; the printed text says so.
 */
#ifndef BOOTSTORM_ENGINE_PORTS_H
#define BOOTSTORM_ENGINE_PORTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "engine/options.h"

enum ports_proto { PORTS_UDP, PORTS_TCP, PORTS_ICMPV6 };
enum ports_dir { PORTS_IN, PORTS_OUT };

/* ICMPv6 types (RFC 4861 §4.1, §4.2) for PORTS_ICMPV6 rules */
#define PORTS_ICMPV6_ROUTER_SOLICIT 133
#define PORTS_ICMPV6_ROUTER_ADVERT 134

struct ports_rule {
    enum ports_proto proto;
    enum ports_dir dir;
    uint16_t dport_lo, dport_hi;  /* destination ports, 0-0: any; ICMPv6: the type in dport_lo */
    uint16_t sport_lo, sport_hi;  /* source ports, 0-0: any */
    bool on_interface;     /* only on --interface (when set) */
    const char *why;       /* the rule's comment */
};

#define PORTS_MAX_RULES 12

enum ports_format { PORTS_FORMAT_NFT, PORTS_FORMAT_IPTABLES, PORTS_FORMAT_BOTH };

enum ports_result { PORTS_OK = 0, PORTS_ERR_WRITE, PORTS_ERR_FORMAT };

/* The rules, in output order, into out[cap]; returns how many there are (at most
 * PORTS_MAX_RULES; only the first cap are stored). */
size_t ports_rules(const struct options *o, struct ports_rule *out, size_t cap);

/* True when TFTP is on with ephemeral transfer ports: the rules then rely on the
 * conntrack tftp helper (nf_conntrack_tftp). */
bool ports_tftp_needs_helper(const struct options *o);

/* Writes the rules: nftables as one complete `table inet bootstorm { ... }` for
 * `nft -f` (after the declare-and-delete idiom, so that loading it again
 * replaces the table), iptables as a shell script of iptables/ip6tables commands, or both,
 * each introduced by # comments.  PORTS_ERR_WRITE when the stream failed. */
int ports_write(FILE *out, const struct options *o, enum ports_format fmt);

#endif
