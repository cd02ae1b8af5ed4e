/* engine/mix64.h — the 64-bit finaliser (MurmurHash3's fmix64) that the hash
 * tables (inventory, lease table, tracker) and the journal's distinct-key
 * estimate spread their keys with: every input bit reaches every output bit. */
#ifndef BOOTSTORM_ENGINE_MIX64_H
#define BOOTSTORM_ENGINE_MIX64_H

#include <stdint.h>

static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

#endif
