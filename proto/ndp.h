/* proto/ndp.h — IPv6 Neighbor Discovery (RFC 4861): Router Advertisement builder
 * and Router Solicitation parser, for the boot network's --ipv6-ra.
 *
 * Why a boot server sends RAs at all: iPXE configures IPv6 in parallel with
 * DHCPv4 and does not boot until its router solicitations are answered or time
 * out (~13 s).  One RA with router lifetime 0 (§4.2: "not a default router"),
 * M=O=0 (no DHCPv6) and no prefix ends that wait without giving anyone an IPv6
 * route or address.
 *
 * Pure: bytes in, structs out.  Messages here are the ICMPv6 part only (type
 * onwards); the IPv6 header belongs to the socket.  The checksum is left 0 by
 * the builder (a raw ICMPv6 socket fills it in, RFC 3542 §3.1); ndp_checksum()
 * computes it when a caller has the addresses. */
#ifndef PROTO_NDP_H
#define PROTO_NDP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    NDP_TYPE_ROUTER_SOLICIT = 133,  /* RFC 4861 §4.1 */
    NDP_TYPE_ROUTER_ADVERT = 134,   /* §4.2 */
    NDP_OPT_SOURCE_LLADDR = 1,      /* §4.6.1 */
    NDP_OPT_MTU = 5,                /* §4.6.4 */
    NDP_HOP_LIMIT = 255,            /* §6.1.1/§6.1.2: sent and required on receipt */
    NDP_RS_MIN_LEN = 8,             /* type, code, checksum, reserved */
    NDP_RA_HDR_LEN = 16,            /* §4.2 fixed part */
    NDP_RA_MAX_LEN = NDP_RA_HDR_LEN + 8 + 8, /* + source link-layer (Ethernet) + MTU */
    NDP_RA_FLAG_MANAGED = 0x80,     /* M: addresses from DHCPv6 */
    NDP_RA_FLAG_OTHER = 0x40,       /* O: other configuration from DHCPv6 */
};

/* Result of ndp_build_ra / ndp_parse_rs; negative values are reasons. */
enum ndp_result {
    NDP_OK = 0,
    NDP_ERR_SHORT = -1,        /* shorter than the fixed part, or than an option says */
    NDP_ERR_TYPE = -2,         /* not the message type asked for */
    NDP_ERR_CODE = -3,         /* ICMP code is not 0 (§6.1.1) */
    NDP_ERR_HOP_LIMIT = -4,    /* IP hop limit is not 255: it crossed a router (§6.1.1) */
    NDP_ERR_OPT_LEN = -5,      /* an option with length 0 (§6.1.1) */
    NDP_ERR_UNSPEC_LLADDR = -6,/* source :: with a source link-layer option (§6.1.1) */
    NDP_ERR_NOSPACE = -7,      /* output buffer too small */
    NDP_ERR_ARG = -8,          /* invalid builder field (e.g. a link-layer address of 0 or >14 bytes) */
};

const char *ndp_strerror(int result);

/* What a Router Advertisement says (§4.2, §6.2.1 names in comments). */
struct ndp_ra {
    uint8_t cur_hop_limit;      /* AdvCurHopLimit; 0: unspecified */
    uint8_t flags;              /* NDP_RA_FLAG_*; 0 for a boot network */
    uint16_t router_lifetime_s; /* AdvDefaultLifetime; 0: not a default router */
    uint32_t reachable_ms;      /* AdvReachableTime; 0: unspecified */
    uint32_t retrans_ms;        /* AdvRetransTimer; 0: unspecified */
    uint32_t mtu;               /* AdvLinkMTU option (§4.6.4); 0: left out */
    uint8_t lladdr_len;         /* source link-layer address option; 0: left out */
    uint8_t lladdr[14];         /* 6 for Ethernet */
};

/* Writes the RA (checksum 0) into out; returns its length (> 0) or an
 * enum ndp_result.  Options are padded to 8-octet units (§4.6). */
int ndp_build_ra(const struct ndp_ra *ra, uint8_t *out, size_t cap);

/* A validated Router Solicitation. */
struct ndp_rs {
    bool has_lladdr;          /* carried a source link-layer address option */
    uint8_t lladdr_len;       /* its address bytes (option body, padding included, capped at 14) */
    uint8_t lladdr[14];
    unsigned options;         /* options seen, known or not */
};

/* Validates an RS per §6.1.1: msg is the ICMPv6 message (type onwards),
 * hop_limit the IPv6 header's, src_unspecified whether the IPv6 source was ::.
 * The checksum is the socket's business (the kernel verifies it on raw ICMPv6
 * sockets); the caller passes only messages that arrived. Unknown options are
 * skipped (§4.6).  Returns NDP_OK, or the first reason found with *out zeroed. */
int ndp_parse_rs(const uint8_t *msg, size_t len, unsigned hop_limit, bool src_unspecified, struct ndp_rs *out);

/* The ICMPv6 checksum (RFC 4443 §2.3, pseudo-header of RFC 8200 §8.1) of msg
 * (its checksum field counted as whatever it holds) between src and dst. A
 * message whose checksum field is right sums to 0 here. */
uint16_t ndp_checksum(const uint8_t src[16], const uint8_t dst[16], const uint8_t *msg, size_t len);

#endif
