/* bench/load/verify.c — CRC-32C (SSE4.2 when the CPU has it), SHA-256 (engine/
 * hostauth's, with SHA-NI for whole blocks when the CPU has it) and the cache of
 * local reference files.  See verify.h. */
#include "bench/load/verify.h"

#include <cpuid.h>
#include <errno.h>
#include <fcntl.h>
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool verify_parse_kind(const char *s, enum verify_kind *out)
{
    if (!strcmp(s, "none"))
        *out = VERIFY_NONE;
    else if (!strcmp(s, "crc32c") || !strcmp(s, "crc"))
        *out = VERIFY_CRC32C;
    else if (!strcmp(s, "sha256"))
        *out = VERIFY_SHA256;
    else
        return false;
    return true;
}

const char *verify_kind_name(enum verify_kind k)
{
    switch (k) {
    case VERIFY_CRC32C: return "crc32c";
    case VERIFY_SHA256: return "sha256";
    default: return "none";
    }
}

/* ---- CPU features (CPUID leaf 1 ECX, leaf 7 EBX) ---- */

static int cpu_checked, cpu_sse42, cpu_sha;

static void cpu_check(void)
{
    unsigned a, b, c, d;
    if (cpu_checked)
        return;
    cpu_checked = 1;
    if (__get_cpuid(1, &a, &b, &c, &d)) {
        cpu_sse42 = (c >> 20) & 1;
        int sse41 = (c >> 19) & 1, ssse3 = (c >> 9) & 1;
        if (sse41 && ssse3 && __get_cpuid_count(7, 0, &a, &b, &c, &d))
            cpu_sha = (b >> 29) & 1;
    }
}

/* ---- CRC-32C (reflected polynomial 0x82F63B78, RFC 3720 §B.4) ---- */

static uint32_t crc_table[256];

static void crc_table_init(void)
{
    if (crc_table[1])
        return;
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[i] = c;
    }
}

static uint32_t crc_sw(uint32_t crc, const uint8_t *p, size_t n)
{
    while (n--)
        crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return crc;
}

__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t n)
{
    uint64_t c = crc;
    while (n && ((uintptr_t)p & 7)) {
        c = _mm_crc32_u8((uint32_t)c, *p++);
        n--;
    }
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = _mm_crc32_u64(c, v);
        p += 8;
        n -= 8;
    }
    while (n--)
        c = _mm_crc32_u8((uint32_t)c, *p++);
    return (uint32_t)c;
}

/* ---- SHA-256 (FIPS 180-4): hostauth's, plus a SHA-NI block function ---- */

/* FIPS 180-4 §4.2.2 round constants, for the SHA-NI path (hostauth keeps its
 * table private). */
static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

/* The SHA extensions keep the state as ABEF/CDGH halves; each sha256rnds2 does
 * two rounds, msg1/msg2 extend the message schedule four words at a time. */
__attribute__((target("sha,sse4.1,ssse3"))) static void sha_blocks_ni(uint32_t st[8], const uint8_t *p,
                                                                       size_t nblk)
{
    const __m128i mask = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_loadu_si128((const __m128i *)&st[0]);
    __m128i s1 = _mm_loadu_si128((const __m128i *)&st[4]);
    tmp = _mm_shuffle_epi32(tmp, 0xB1);
    s1 = _mm_shuffle_epi32(s1, 0x1B);
    __m128i s0 = _mm_alignr_epi8(tmp, s1, 8);
    s1 = _mm_blend_epi16(s1, tmp, 0xF0);
    while (nblk--) {
        __m128i abef = s0, cdgh = s1, m[4];
        for (int g = 0; g < 16; g++) {
            if (g < 4)
                m[g] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * g)), mask);
            __m128i msg = _mm_add_epi32(m[g & 3], _mm_loadu_si128((const __m128i *)&K256[4 * g]));
            s1 = _mm_sha256rnds2_epu32(s1, s0, msg);
            if (g >= 3 && g <= 14) {
                __m128i t = _mm_alignr_epi8(m[g & 3], m[(g + 3) & 3], 4);
                m[(g + 1) & 3] = _mm_sha256msg2_epu32(_mm_add_epi32(m[(g + 1) & 3], t), m[g & 3]);
            }
            msg = _mm_shuffle_epi32(msg, 0x0E);
            s0 = _mm_sha256rnds2_epu32(s0, s1, msg);
            if (g >= 1 && g <= 12)
                m[(g + 3) & 3] = _mm_sha256msg1_epu32(m[(g + 3) & 3], m[g & 3]);
        }
        s0 = _mm_add_epi32(s0, abef);
        s1 = _mm_add_epi32(s1, cdgh);
        p += 64;
    }
    tmp = _mm_shuffle_epi32(s0, 0x1B);
    s1 = _mm_shuffle_epi32(s1, 0xB1);
    s0 = _mm_blend_epi16(tmp, s1, 0xF0);
    s1 = _mm_alignr_epi8(s1, tmp, 8);
    _mm_storeu_si128((__m128i *)&st[0], s0);
    _mm_storeu_si128((__m128i *)&st[4], s1);
}

/* ---- streaming interface ---- */

void verify_init(struct verify_ctx *c, enum verify_kind k)
{
    cpu_check();
    crc_table_init();
    memset(c, 0, sizeof(*c));
    c->kind = k;
    c->crc = 0xffffffffu;
    hostauth_sha256_init(&c->sha);
}

/* hostauth's SHA-256 compresses every block in portable C.  With SHA-NI, the
 * whole blocks of a buffer go straight into its state (h, bytes: fields its
 * header documents) and only a block's partial head and tail pass through
 * hostauth_sha256_update; the padding is hostauth_sha256_final's. */
static void sha_update(struct hostauth_sha256 *s, const uint8_t *p, size_t len)
{
    if (!cpu_sha) {
        hostauth_sha256_update(s, p, len);
        return;
    }
    if (s->used) { /* complete the buffered block first */
        size_t take = 64 - s->used < len ? 64 - s->used : len;
        hostauth_sha256_update(s, p, take);
        p += take;
        len -= take;
    }
    if (len >= 64) { /* here s->used == 0 */
        size_t n = len / 64;
        sha_blocks_ni(s->h, p, n);
        s->bytes += n * 64;
        p += n * 64;
        len -= n * 64;
    }
    if (len)
        hostauth_sha256_update(s, p, len);
}

void verify_update(struct verify_ctx *c, const void *data, size_t len)
{
    c->total += len;
    if (c->kind == VERIFY_CRC32C)
        c->crc = cpu_sse42 ? crc_hw(c->crc, data, len) : crc_sw(c->crc, data, len);
    else if (c->kind == VERIFY_SHA256)
        sha_update(&c->sha, data, len);
}

size_t verify_final(struct verify_ctx *c, uint8_t out[VERIFY_DIGEST_MAX])
{
    if (c->kind == VERIFY_CRC32C) {
        uint32_t v = ~c->crc;
        out[0] = (uint8_t)(v >> 24);
        out[1] = (uint8_t)(v >> 16);
        out[2] = (uint8_t)(v >> 8);
        out[3] = (uint8_t)v;
        return 4;
    }
    if (c->kind != VERIFY_SHA256)
        return 0;
    hostauth_sha256_final(&c->sha, out);
    return HOSTAUTH_SHA256_LEN;
}

const char *verify_hex(const uint8_t *d, size_t len, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = hx[d[i] >> 4];
        out[2 * i + 1] = hx[d[i] & 15];
    }
    out[2 * len] = 0;
    return out;
}

/* ---- reference files ---- */

struct ref_entry {
    struct ref_entry *next;
    char *key; /* root "\0" path */
    struct verify_ref ref;
};

#define REF_BUCKETS 1024u
static struct ref_entry *refs[REF_BUCKETS];

static uint32_t ref_hash(const char *root, const char *path)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *s = root; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    for (const char *s = path; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h % REF_BUCKETS;
}

static bool has_dotdot(const char *p)
{
    for (const char *s = p; (s = strstr(s, "..")); s += 2)
        if ((s == p || s[-1] == '/') && (s[2] == 0 || s[2] == '/'))
            return true;
    return false;
}

static void ref_fill(struct verify_ref *r, const char *root, const char *path, enum verify_kind kind)
{
    while (*path == '/')
        path++;
    char full[4096];
    struct stat st;
    int fd = -1;
    r->state = VERIFY_REF_MISSING;
    if (has_dotdot(path) || snprintf(full, sizeof(full), "%s/%s", root, path) >= (int)sizeof(full) ||
        (fd = open(full, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        return;
    }
    r->size = (uint64_t)st.st_size;
    r->kind = kind;
    if (kind != VERIFY_NONE) {
        static uint8_t buf[1 << 20];
        struct verify_ctx c;
        verify_init(&c, kind);
        uint64_t got = 0;
        for (;;) {
            ssize_t n = read(fd, buf, sizeof(buf));
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            verify_update(&c, buf, (size_t)n);
            got += (uint64_t)n;
        }
        if (got != r->size) { /* changed or unreadable under us: no reference */
            close(fd);
            return;
        }
        r->digest_len = verify_final(&c, r->digest);
    }
    close(fd);
    r->state = VERIFY_REF_OK;
}

const struct verify_ref *verify_ref_get(const char *root, const char *path, enum verify_kind kind)
{
    static const struct verify_ref none = {.state = VERIFY_REF_NO_TREE};
    if (!root)
        return &none;
    size_t rl = strlen(root), pl = strlen(path);
    uint32_t b = ref_hash(root, path);
    for (struct ref_entry *e = refs[b]; e; e = e->next)
        if (!strcmp(e->key, root) && !strcmp(e->key + rl + 1, path) && e->ref.kind == kind)
            return &e->ref;
    struct ref_entry *e = calloc(1, sizeof(*e));
    if (!e || !(e->key = malloc(rl + pl + 2))) {
        free(e);
        return &none;
    }
    memcpy(e->key, root, rl + 1);
    memcpy(e->key + rl + 1, path, pl + 1);
    ref_fill(&e->ref, root, path, kind);
    e->ref.kind = kind;
    e->next = refs[b];
    refs[b] = e;
    return &e->ref;
}

void verify_refs_free(void)
{
    for (uint32_t b = 0; b < REF_BUCKETS; b++)
        while (refs[b]) {
            struct ref_entry *n = refs[b]->next;
            free(refs[b]->key);
            free(refs[b]);
            refs[b] = n;
        }
}
