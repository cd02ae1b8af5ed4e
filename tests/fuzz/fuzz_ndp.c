/* tests/fuzz/fuzz_ndp.c — libFuzzer target for proto/ndp.
 *
 * The first byte picks the IPv6 context (hop limit 255 or not, source :: or
 * not); the rest is a Router Solicitation as it came off the wire.  Checked:
 *  - the parser reads only within the input (ASan) and its verdict is stable;
 *  - an accepted RS really is one by §6.1.1 (checked independently here);
 *  - the reported link-layer address is the option's bytes;
 *  - the checksum of the input, written in, makes it sum to 0.
 * The same bytes then drive the RA builder's fields; the built RA must be the
 * declared length, padded to 8 octets, and itself parse as options cleanly.
 * A broken invariant aborts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/ndp.h"

#define CHECK(c)                                                                   \
    do {                                                                           \
        if (!(c)) {                                                                \
            fprintf(stderr, "invariant failed: %s (%s:%d)\n", #c, __FILE__, __LINE__); \
            abort();                                                               \
        }                                                                          \
    } while (0)

/* an independent reading of §6.1.1 for the accepted case */
static int options_valid(const uint8_t *m, size_t len, int unspec, const uint8_t **ll, size_t *ll_len)
{
    size_t off = 8;
    *ll = NULL;
    while (off < len) {
        if (len - off < 2 || m[off + 1] == 0 || (size_t)m[off + 1] * 8 > len - off)
            return 0;
        if (m[off] == 1) {
            if (unspec)
                return 0;
            *ll = m + off + 2, *ll_len = (size_t)m[off + 1] * 8 - 2;
        }
        off += (size_t)m[off + 1] * 8;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned hop = (data[0] & 1) ? 255 : data[0];
    int unspec = (data[0] >> 1) & 1;
    const uint8_t *msg = data + 1;
    size_t len = size - 1;
    uint8_t *copy = malloc(len ? len : 1); /* exact size: ASan sees any overread */
    if (!copy)
        return 0;
    memcpy(copy, msg, len);

    struct ndp_rs rs, rs2;
    int rc = ndp_parse_rs(copy, len, hop, unspec, &rs);
    CHECK(rc <= 0);
    CHECK(ndp_strerror(rc)[0] != '\0');
    CHECK(ndp_parse_rs(copy, len, hop, unspec, &rs2) == rc);
    if (rc == NDP_OK) {
        CHECK(memcmp(&rs, &rs2, sizeof(rs)) == 0);
        CHECK(hop == 255 && len >= 8 && copy[0] == 133 && copy[1] == 0);
        const uint8_t *ll;
        size_t ll_len = 0;
        CHECK(options_valid(copy, len, unspec, &ll, &ll_len));
        CHECK(rs.has_lladdr == (ll != NULL));
        if (ll) {
            size_t n = ll_len < sizeof(rs.lladdr) ? ll_len : sizeof(rs.lladdr);
            CHECK(rs.lladdr_len == n && memcmp(rs.lladdr, ll, n) == 0);
        }
    } else {
        CHECK(!rs.has_lladdr);
        CHECK((hop != 255) == (rc == NDP_ERR_HOP_LIMIT)); /* checked first, as §6.1.1 lists it */
    }

    /* checksum: writing it in makes the message sum to 0 */
    if (len >= 4) {
        static const uint8_t src[16] = {0xfe, 0x80, [15] = 1}, dst[16] = {0xff, 0x02, [15] = 2};
        copy[2] = copy[3] = 0;
        uint16_t c = ndp_checksum(src, dst, copy, len);
        copy[2] = (uint8_t)(c >> 8), copy[3] = (uint8_t)c;
        CHECK(ndp_checksum(src, dst, copy, len) == 0);
    }

    /* the builder, fields from the input */
    struct ndp_ra ra = {0};
    if (len >= 16) {
        ra.cur_hop_limit = msg[0], ra.flags = msg[1];
        ra.router_lifetime_s = (uint16_t)(msg[2] << 8 | msg[3]);
        ra.reachable_ms = (uint32_t)msg[4] << 24 | msg[5];
        ra.retrans_ms = msg[6];
        ra.mtu = msg[7] & 1 ? 0 : (uint32_t)msg[8] << 8 | msg[9];
        ra.lladdr_len = msg[10] % 16; /* 15 must be refused */
        memcpy(ra.lladdr, msg + 11, 5);
    }
    size_t cap = len % (NDP_RA_MAX_LEN + 8);
    uint8_t *out = malloc(cap ? cap : 1);
    if (!out) {
        free(copy);
        return 0;
    }
    int n = ndp_build_ra(&ra, out, cap);
    if (ra.lladdr_len > 14) {
        CHECK(n == NDP_ERR_ARG);
    } else if (n > 0) {
        CHECK((size_t)n <= cap && n % 8 == 0 && n >= NDP_RA_HDR_LEN);
        CHECK(out[0] == 134 && out[1] == 0 && out[2] == 0 && out[3] == 0);
        CHECK((out[5] & 0x3f) == 0);
        /* its options parse like an RS's would (same TLV rules): retype and check */
        out[0] = 133;
        const uint8_t *ll;
        size_t ll_len;
        CHECK(options_valid(out + 8, (size_t)n - 8, 0, &ll, &ll_len)); /* options from offset 16 */
        CHECK((ll != NULL) == (ra.lladdr_len > 0));
    } else {
        CHECK(n == NDP_ERR_NOSPACE);
    }
    free(out);
    free(copy);
    return 0;
}
