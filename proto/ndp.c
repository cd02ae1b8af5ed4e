/* proto/ndp.c — see ndp.h. */
#include "proto/ndp.h"

#include <string.h>

const char *ndp_strerror(int result)
{
    switch (result) {
    case NDP_OK: return "ok";
    case NDP_ERR_SHORT: return "message or option truncated";
    case NDP_ERR_TYPE: return "wrong ICMPv6 type";
    case NDP_ERR_CODE: return "ICMPv6 code is not 0";
    case NDP_ERR_HOP_LIMIT: return "hop limit is not 255 (forwarded by a router)";
    case NDP_ERR_OPT_LEN: return "option with length 0";
    case NDP_ERR_UNSPEC_LLADDR: return "unspecified source with a source link-layer address option";
    case NDP_ERR_NOSPACE: return "output buffer too small";
    case NDP_ERR_ARG: return "invalid field";
    default: return "unknown NDP result";
    }
}

static void put16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 8), p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v) { put16(p, v >> 16), put16(p + 2, v); }

int ndp_build_ra(const struct ndp_ra *ra, uint8_t *out, size_t cap)
{
    if (ra->lladdr_len > sizeof(ra->lladdr))
        return NDP_ERR_ARG;
    /* §4.6.1: type, length, address, padded to a multiple of 8 octets */
    size_t ll_opt = ra->lladdr_len ? (2u + ra->lladdr_len + 7u) / 8u * 8u : 0;
    size_t len = NDP_RA_HDR_LEN + ll_opt + (ra->mtu ? 8u : 0u);
    if (cap < len)
        return NDP_ERR_NOSPACE;
    memset(out, 0, len);
    /* §4.2: type, code 0, checksum (socket), cur hop limit, M|O|reserved,
     * router lifetime, reachable time, retrans timer */
    out[0] = NDP_TYPE_ROUTER_ADVERT;
    out[4] = ra->cur_hop_limit;
    out[5] = ra->flags & (NDP_RA_FLAG_MANAGED | NDP_RA_FLAG_OTHER);
    put16(out + 6, ra->router_lifetime_s);
    put32(out + 8, ra->reachable_ms);
    put32(out + 12, ra->retrans_ms);
    uint8_t *p = out + NDP_RA_HDR_LEN;
    if (ll_opt) {
        p[0] = NDP_OPT_SOURCE_LLADDR;
        p[1] = (uint8_t)(ll_opt / 8);
        memcpy(p + 2, ra->lladdr, ra->lladdr_len);
        p += ll_opt;
    }
    if (ra->mtu) { /* §4.6.4: type 5, length 1, reserved, MTU */
        p[0] = NDP_OPT_MTU;
        p[1] = 1;
        put32(p + 4, ra->mtu);
    }
    return (int)len;
}

int ndp_parse_rs(const uint8_t *msg, size_t len, unsigned hop_limit, bool src_unspecified, struct ndp_rs *res)
{
    struct ndp_rs tmp = {0}, *out = &tmp; /* *res stays zero unless the whole message is valid */
    memset(res, 0, sizeof(*res));
    /* §6.1.1, in its order: hop limit 255, (checksum: the socket), code 0,
     * ICMP length >= 8, every option length > 0, no source link-layer
     * option when the source is unspecified */
    if (hop_limit != NDP_HOP_LIMIT)
        return NDP_ERR_HOP_LIMIT;
    if (len < NDP_RS_MIN_LEN)
        return NDP_ERR_SHORT;
    if (msg[0] != NDP_TYPE_ROUTER_SOLICIT)
        return NDP_ERR_TYPE;
    if (msg[1] != 0)
        return NDP_ERR_CODE;
    size_t off = NDP_RS_MIN_LEN;
    while (off < len) {
        if (len - off < 2)
            return NDP_ERR_SHORT;
        size_t olen = (size_t)msg[off + 1] * 8;
        if (olen == 0)
            return NDP_ERR_OPT_LEN;
        if (olen > len - off)
            return NDP_ERR_SHORT;
        if (msg[off] == NDP_OPT_SOURCE_LLADDR) {
            if (src_unspecified)
                return NDP_ERR_UNSPEC_LLADDR;
            size_t n = olen - 2;
            if (n > sizeof(out->lladdr))
                n = sizeof(out->lladdr);
            out->has_lladdr = true;
            out->lladdr_len = (uint8_t)n;
            memcpy(out->lladdr, msg + off + 2, n);
        }
        out->options++;
        off += olen;
    }
    *res = tmp;
    return NDP_OK;
}

uint16_t ndp_checksum(const uint8_t src[16], const uint8_t dst[16], const uint8_t *msg, size_t len)
{
    uint64_t sum = 0;
    for (int i = 0; i < 16; i += 2)
        sum += (uint32_t)(src[i] << 8 | src[i + 1]) + (uint32_t)(dst[i] << 8 | dst[i + 1]);
    sum += (uint32_t)(len >> 16) + (uint32_t)(len & 0xffff); /* upper-layer packet length */
    sum += 58;                                               /* next header: ICMPv6 */
    size_t i = 0;
    for (; i + 1 < len; i += 2)
        sum += (uint32_t)(msg[i] << 8 | msg[i + 1]);
    if (i < len)
        sum += (uint32_t)msg[i] << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}
