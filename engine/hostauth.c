/* engine/hostauth.c — see hostauth.h. */
#include "engine/hostauth.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- SHA-256, FIPS 180-4 §6.2 ---------------------------------------------- */

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t ror(uint32_t x, unsigned n) { return x >> n | x << (32 - n); }

static void compress(uint32_t h[8], const uint8_t b[64])
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)b[4 * i] << 24 | (uint32_t)b[4 * i + 1] << 16 | (uint32_t)b[4 * i + 2] << 8 | b[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], bb = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = hh + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
        uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & bb) ^ (a & c) ^ (bb & c));
        hh = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = bb;
        bb = a;
        a = t1 + t2;
    }
    h[0] += a, h[1] += bb, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
}

void hostauth_sha256_init(struct hostauth_sha256 *c)
{
    static const uint32_t iv[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
    memcpy(c->h, iv, sizeof iv);
    c->bytes = 0;
    c->used = 0;
}

void hostauth_sha256_update(struct hostauth_sha256 *c, const void *data, size_t len)
{
    const uint8_t *p = data;
    c->bytes += len;
    while (len) {
        size_t n = 64 - c->used < len ? 64 - c->used : len;
        memcpy(c->block + c->used, p, n);
        c->used += n;
        p += n;
        len -= n;
        if (c->used == 64) {
            compress(c->h, c->block);
            c->used = 0;
        }
    }
}

void hostauth_sha256_final(struct hostauth_sha256 *c, uint8_t out[HOSTAUTH_SHA256_LEN])
{
    /* §5.1.1: a 1 bit, zeros up to 56 mod 64, the length in bits big-endian */
    uint64_t bits = c->bytes * 8;
    uint8_t pad[72] = { 0x80 };
    size_t padlen = (c->used < 56 ? 56 : 120) - c->used;
    for (int i = 0; i < 8; i++)
        pad[padlen + (size_t)i] = (uint8_t)(bits >> (56 - 8 * i));
    hostauth_sha256_update(c, pad, padlen + 8);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(c->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)c->h[i];
    }
}

void hostauth_sha256(const void *data, size_t len, uint8_t out[HOSTAUTH_SHA256_LEN])
{
    struct hostauth_sha256 c;
    hostauth_sha256_init(&c);
    hostauth_sha256_update(&c, data, len);
    hostauth_sha256_final(&c, out);
}

/* RFC 2104 §2: H(K ^ opad, H(K ^ ipad, text)), keys longer than a block hashed first */
void hostauth_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t msglen,
                          uint8_t out[HOSTAUTH_SHA256_LEN])
{
    uint8_t k[64] = { 0 }, pad[64], inner[HOSTAUTH_SHA256_LEN];
    if (keylen > 64)
        hostauth_sha256(key, keylen, k);
    else if (keylen)
        memcpy(k, key, keylen);
    struct hostauth_sha256 c;
    for (int i = 0; i < 64; i++)
        pad[i] = k[i] ^ 0x36;
    hostauth_sha256_init(&c);
    hostauth_sha256_update(&c, pad, 64);
    hostauth_sha256_update(&c, msg, msglen);
    hostauth_sha256_final(&c, inner);
    for (int i = 0; i < 64; i++)
        pad[i] = k[i] ^ 0x5c;
    hostauth_sha256_init(&c);
    hostauth_sha256_update(&c, pad, 64);
    hostauth_sha256_update(&c, inner, sizeof inner);
    hostauth_sha256_final(&c, out);
}

bool hostauth_equal(const void *a, const void *b, size_t n)
{
    const volatile uint8_t *x = a, *y = b;
    uint8_t diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= x[i] ^ y[i];
    return diff == 0;
}

/* ---- the secret ---------------------------------------------------------------- */

struct hostauth {
    uint8_t secret[HOSTAUTH_SECRET_LEN];
};

struct hostauth *hostauth_new(const uint8_t *secret, size_t len)
{
    struct hostauth *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    /* any length works for HMAC; keep a fixed-size key: hash longer ones (RFC 2104 §3) */
    if (len > HOSTAUTH_SECRET_LEN)
        hostauth_sha256(secret, len, a->secret);
    else
        memcpy(a->secret, secret, len);
    return a;
}

void hostauth_free(struct hostauth *a)
{
    if (!a)
        return;
    explicit_bzero(a->secret, sizeof a->secret);
    free(a);
}

static int read_secret(const char *path, uint8_t secret[HOSTAUTH_SECRET_LEN], char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    struct stat st;
    int rc = -EINVAL; /* not a regular file of the right size */
    if (fstat(fd, &st) < 0)
        rc = -errno;
    else if (S_ISREG(st.st_mode) && st.st_size == HOSTAUTH_SECRET_LEN) {
        ssize_t n = read(fd, secret, HOSTAUTH_SECRET_LEN);
        rc = n == HOSTAUTH_SECRET_LEN ? 0 : n < 0 ? -errno : -EINVAL;
    }
    close(fd);
    if (rc == -EINVAL)
        snprintf(err, errlen, "%s: not a %d-byte secret (remove it to make a new one; every host's token changes)",
                 path, HOSTAUTH_SECRET_LEN);
    else if (rc < 0)
        snprintf(err, errlen, "%s: %s", path, strerror(-rc));
    if (rc < 0)
        return rc;
    if (st.st_mode & 077) /* readable by others: anyone could mark hosts installed */
        fprintf(stderr, "bootstorm: warning: %s: readable by group or others (chmod 600)\n", path);
    return 0;
}

static int create_secret(const char *dir, const char *path, char *err, size_t errlen)
{
    uint8_t secret[HOSTAUTH_SECRET_LEN];
    size_t got = 0;
    while (got < sizeof secret) {
        ssize_t n = getrandom(secret + got, sizeof secret - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            snprintf(err, errlen, "getrandom: %s", strerror(e));
            return -e;
        }
        got += (size_t)n;
    }
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s/.secret.%ld", dir, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int rc = 0;
    if (fd < 0 || write(fd, secret, sizeof secret) != (ssize_t)sizeof secret || fsync(fd) < 0)
        rc = -errno;
    if (fd >= 0)
        close(fd);
    explicit_bzero(secret, sizeof secret);
    /* link, not rename: if another process made one meanwhile, theirs wins */
    if (rc == 0 && link(tmp, path) < 0 && errno != EEXIST)
        rc = -errno;
    unlink(tmp);
    if (rc < 0) {
        snprintf(err, errlen, "%s: cannot create: %s", path, strerror(-rc));
        return rc;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}

int hostauth_open(const char *state_dir, enum hostauth_open_mode mode, struct hostauth **out, char *err,
                  size_t errlen)
{
    *out = NULL;
    char path[4200];
    if (snprintf(path, sizeof path, "%s/secret", state_dir) >= (int)sizeof path) {
        snprintf(err, errlen, "%s: path too long", state_dir);
        return -ENAMETOOLONG;
    }
    uint8_t secret[HOSTAUTH_SECRET_LEN];
    int rc = read_secret(path, secret, err, errlen);
    if (rc == -ENOENT && mode == HOSTAUTH_CREATE) {
        if (mkdir(state_dir, 0700) < 0 && errno != EEXIST) {
            int e = errno;
            snprintf(err, errlen, "%s: cannot create: %s", state_dir, strerror(e));
            return -e;
        }
        rc = create_secret(state_dir, path, err, errlen);
        if (rc == 0)
            rc = read_secret(path, secret, err, errlen);
    }
    if (rc < 0)
        return rc;
    *out = hostauth_new(secret, sizeof secret);
    explicit_bzero(secret, sizeof secret);
    if (!*out) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

void hostauth_token(const struct hostauth *a, const uint8_t mac[6], char out[HOSTAUTH_TOKEN_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t mac_hmac[HOSTAUTH_SHA256_LEN];
    hostauth_hmac_sha256(a->secret, sizeof a->secret, mac, 6, mac_hmac);
    for (int i = 0; i < HOSTAUTH_SHA256_LEN; i++) {
        out[2 * i] = hex[mac_hmac[i] >> 4];
        out[2 * i + 1] = hex[mac_hmac[i] & 15];
    }
    out[HOSTAUTH_TOKEN_LEN] = '\0';
}

bool hostauth_check(const struct hostauth *a, const uint8_t mac[6], const char *token)
{
    char want[HOSTAUTH_TOKEN_LEN + 1], got[HOSTAUTH_TOKEN_LEN];
    size_t n = strnlen(token, HOSTAUTH_TOKEN_LEN + 1);
    if (n != HOSTAUTH_TOKEN_LEN)
        return false; /* the length is not secret */
    for (size_t i = 0; i < HOSTAUTH_TOKEN_LEN; i++)
        got[i] = (char)tolower((unsigned char)token[i]);
    hostauth_token(a, mac, want);
    return hostauth_equal(want, got, HOSTAUTH_TOKEN_LEN);
}
