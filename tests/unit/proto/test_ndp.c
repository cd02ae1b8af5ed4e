/* tests/unit/proto/test_ndp.c — Router Advertisement builder, Router Solicitation
 * validation (RFC 4861 §4.1, §4.2, §6.1.1), ICMPv6 checksum (proto/ndp.h). */
#include <criterion/criterion.h>
#include <string.h>

#include "proto/ndp.h"

/* the RS iPXE sends (ndp_tx_router_solicitation): type 133, code 0, reserved,
 * source link-layer option with its MAC 52:54:00:e2:01:01 */
static const uint8_t ipxe_rs[] = {0x85, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                  0x01, 0x01, 0x52, 0x54, 0x00, 0xe2, 0x01, 0x01};
static const uint8_t ll_src[16] = {0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x50, 0x54, 0x00, 0xff, 0xfe, 0xe2, 0x01, 0x01};
static const uint8_t all_routers[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};

Test(ndp_ra, boot_network_ra_bytes)
{
    struct ndp_ra ra = {.lladdr_len = 6, .lladdr = {0x02, 0x11, 0x22, 0x33, 0x44, 0x55}};
    uint8_t out[NDP_RA_MAX_LEN];
    int n = ndp_build_ra(&ra, out, sizeof(out));
    static const uint8_t want[] = {
        134, 0, 0, 0,       /* type, code, checksum (socket) */
        0, 0, 0, 0,         /* cur hop limit unspecified, M=O=0, router lifetime 0 */
        0, 0, 0, 0,         /* reachable time */
        0, 0, 0, 0,         /* retrans timer */
        1, 1, 0x02, 0x11, 0x22, 0x33, 0x44, 0x55, /* source link-layer address, 1 x 8 octets */
    };
    cr_assert_eq(n, (int)sizeof(want));
    cr_assert_arr_eq(out, want, sizeof(want));
}

Test(ndp_ra, all_fields_and_mtu)
{
    struct ndp_ra ra = {.cur_hop_limit = 64, .flags = NDP_RA_FLAG_MANAGED | NDP_RA_FLAG_OTHER | 0x3f,
                        .router_lifetime_s = 1800, .reachable_ms = 30000, .retrans_ms = 1000, .mtu = 1500};
    uint8_t out[NDP_RA_MAX_LEN];
    int n = ndp_build_ra(&ra, out, sizeof(out));
    cr_assert_eq(n, NDP_RA_HDR_LEN + 8);
    cr_assert_eq(out[4], 64);
    cr_assert_eq(out[5], 0xc0, "reserved flag bits must be sent as 0, got %#x", out[5]);
    cr_assert_eq(out[6] << 8 | out[7], 1800);
    cr_assert_eq((uint32_t)out[8] << 24 | out[9] << 16 | out[10] << 8 | out[11], 30000u);
    cr_assert_eq((uint32_t)out[12] << 24 | out[13] << 16 | out[14] << 8 | out[15], 1000u);
    static const uint8_t mtu[] = {5, 1, 0, 0, 0, 0, 0x05, 0xdc};
    cr_assert_arr_eq(out + 16, mtu, 8);
}

Test(ndp_ra, padding_and_space)
{
    struct ndp_ra ra = {.lladdr_len = 8}; /* 2 + 8 = 10 -> 16 octets, length 2 */
    memset(ra.lladdr, 0xab, 8);
    uint8_t out[64];
    memset(out, 0xee, sizeof(out));
    int n = ndp_build_ra(&ra, out, sizeof(out));
    cr_assert_eq(n, 32);
    cr_assert_eq(out[17], 2);
    for (int i = 26; i < 32; i++)
        cr_assert_eq(out[i], 0, "padding byte %d is %#x", i, out[i]);
    cr_assert_eq(out[32], 0xee, "wrote past the message");
    cr_assert_eq(ndp_build_ra(&ra, out, 31), NDP_ERR_NOSPACE);
    struct ndp_ra bad = {.lladdr_len = 15};
    cr_assert_eq(ndp_build_ra(&bad, out, sizeof(out)), NDP_ERR_ARG);
    struct ndp_ra plain = {0};
    cr_assert_eq(ndp_build_ra(&plain, out, NDP_RA_HDR_LEN), NDP_RA_HDR_LEN);
    cr_assert_eq(ndp_build_ra(&plain, out, NDP_RA_HDR_LEN - 1), NDP_ERR_NOSPACE);
}

Test(ndp_rs, ipxe_solicitation)
{
    struct ndp_rs rs;
    cr_assert_eq(ndp_parse_rs(ipxe_rs, sizeof(ipxe_rs), 255, false, &rs), NDP_OK);
    cr_assert(rs.has_lladdr);
    cr_assert_eq(rs.lladdr_len, 6);
    static const uint8_t mac[] = {0x52, 0x54, 0x00, 0xe2, 0x01, 0x01};
    cr_assert_arr_eq(rs.lladdr, mac, 6);
    cr_assert_eq(rs.options, 1u);
}

Test(ndp_rs, bare_and_unknown_options)
{
    struct ndp_rs rs;
    static const uint8_t bare[] = {133, 0, 0x12, 0x34, 0xff, 0xff, 0xff, 0xff}; /* reserved ignored (§4.1) */
    cr_assert_eq(ndp_parse_rs(bare, sizeof(bare), 255, true, &rs), NDP_OK);
    cr_assert_not(rs.has_lladdr);
    cr_assert_eq(rs.options, 0u);
    /* an unknown option (type 99) is skipped (§4.6), the lladdr after it still found */
    uint8_t m[8 + 8 + 8] = {133, 0, 0, 0, 0, 0, 0, 0, 99, 1, 1, 2, 3, 4, 5, 6, 1, 1, 0xa, 0xb, 0xc, 0xd, 0xe, 0xf};
    cr_assert_eq(ndp_parse_rs(m, sizeof(m), 255, false, &rs), NDP_OK);
    cr_assert_eq(rs.options, 2u);
    cr_assert(rs.has_lladdr);
    cr_assert_eq(rs.lladdr[0], 0xa);
}

Test(ndp_rs, section_6_1_1_rejections)
{
    struct ndp_rs rs;
    uint8_t m[sizeof(ipxe_rs)];
    /* hop limit below 255: it crossed a router */
    cr_assert_eq(ndp_parse_rs(ipxe_rs, sizeof(ipxe_rs), 254, false, &rs), NDP_ERR_HOP_LIMIT);
    cr_assert_eq(ndp_parse_rs(ipxe_rs, sizeof(ipxe_rs), 64, false, &rs), NDP_ERR_HOP_LIMIT);
    /* code not 0 */
    memcpy(m, ipxe_rs, sizeof(m));
    m[1] = 1;
    cr_assert_eq(ndp_parse_rs(m, sizeof(m), 255, false, &rs), NDP_ERR_CODE);
    /* shorter than 8 octets */
    cr_assert_eq(ndp_parse_rs(ipxe_rs, 7, 255, false, &rs), NDP_ERR_SHORT);
    cr_assert_eq(ndp_parse_rs(ipxe_rs, 0, 255, false, &rs), NDP_ERR_SHORT);
    /* not an RS (an RA) */
    memcpy(m, ipxe_rs, sizeof(m));
    m[0] = 134;
    cr_assert_eq(ndp_parse_rs(m, sizeof(m), 255, false, &rs), NDP_ERR_TYPE);
    /* option length 0 */
    memcpy(m, ipxe_rs, sizeof(m));
    m[9] = 0;
    cr_assert_eq(ndp_parse_rs(m, sizeof(m), 255, false, &rs), NDP_ERR_OPT_LEN);
    /* option longer than the message */
    memcpy(m, ipxe_rs, sizeof(m));
    m[9] = 2;
    cr_assert_eq(ndp_parse_rs(m, sizeof(m), 255, false, &rs), NDP_ERR_SHORT);
    /* a lone byte of option header */
    cr_assert_eq(ndp_parse_rs(ipxe_rs, 9, 255, false, &rs), NDP_ERR_SHORT);
    /* unspecified source with a source link-layer option */
    cr_assert_eq(ndp_parse_rs(ipxe_rs, sizeof(ipxe_rs), 255, true, &rs), NDP_ERR_UNSPEC_LLADDR);
    cr_assert_str_eq(ndp_strerror(NDP_ERR_HOP_LIMIT), "hop limit is not 255 (forwarded by a router)");
}

Test(ndp_checksum, rfc4443_pseudo_header)
{
    /* the RS above from fe80::5054:ff:fee2:101 to ff02::2, summed by hand:
     * addresses 0xfe80+0x5054+0x00ff+0xfee2+0x0101 + 0xff02+0x0002, length 16,
     * next header 58, message 0x8500+0x0101+0x5254+0x00e2+0x0101 */
    uint32_t s = 0xfe80 + 0x5054 + 0x00ff + 0xfee2 + 0x0101 + 0xff02 + 0x0002 + 16 + 58 + 0x8500 + 0x0101 +
                 0x5254 + 0x00e2 + 0x0101;
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    uint16_t want = (uint16_t)~s;
    uint16_t got = ndp_checksum(ll_src, all_routers, ipxe_rs, sizeof(ipxe_rs));
    cr_assert_eq(got, want, "checksum %#06x, want %#06x", got, want);
    /* with the checksum in place the message sums to 0 */
    uint8_t m[sizeof(ipxe_rs)];
    memcpy(m, ipxe_rs, sizeof(m));
    m[2] = (uint8_t)(got >> 8), m[3] = (uint8_t)got;
    cr_assert_eq(ndp_checksum(ll_src, all_routers, m, sizeof(m)), 0);
    /* odd length: the last byte is padded with a zero byte */
    static const uint8_t odd[] = {0x01};
    static const uint8_t zero[16] = {0};
    cr_assert_eq(ndp_checksum(zero, zero, odd, 1), (uint16_t)~(0x0100 + 1 + 58));
}
