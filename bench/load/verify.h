/* bench/load/verify.h — checking what was received: streaming checksums and
 * the reference values of the files in the local copy of the served tree.
 *
 * Sizes are always checked by the clients (TFTP tsize, HTTP Content-Length,
 * bytes actually received, and the local file's size when a tree is given);
 * --verify adds a checksum of every byte received, compared with the same
 * checksum of the local file:
 *   crc32c  — CRC-32C (Castagnoli; SSE4.2 instruction when the CPU has it):
 *             cheap, catches any corruption a network path makes;
 *   sha256  — FIPS 180-4 SHA-256: engine/hostauth.h's implementation, with
 *             whole blocks compressed by the SHA-NI instructions when the CPU
 *             has them (hostauth itself has no SHA-NI path). */
#ifndef BOOTSTORM_LOAD_VERIFY_H
#define BOOTSTORM_LOAD_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/hostauth.h"

enum verify_kind {
    VERIFY_NONE = 0, /* sizes only */
    VERIFY_CRC32C,
    VERIFY_SHA256,
};

#define VERIFY_DIGEST_MAX 32

struct verify_ctx {
    enum verify_kind kind;
    uint32_t crc;
    struct hostauth_sha256 sha; /* engine/hostauth's SHA-256 (whole blocks by SHA-NI here when present) */
    uint64_t total;
};

/* "none", "crc32c", "sha256" → kind; false for anything else. */
bool verify_parse_kind(const char *s, enum verify_kind *out);
const char *verify_kind_name(enum verify_kind k);

void verify_init(struct verify_ctx *c, enum verify_kind k);
void verify_update(struct verify_ctx *c, const void *data, size_t len);
/* Writes the digest (4 bytes for crc32c, 32 for sha256); returns its length. */
size_t verify_final(struct verify_ctx *c, uint8_t out[VERIFY_DIGEST_MAX]);
/* Digest as lower-case hex into out (at least 65 bytes). */
const char *verify_hex(const uint8_t *d, size_t len, char *out);

/* Reference for one file of a local tree, cached by (root, path). */
enum verify_ref_state {
    VERIFY_REF_NO_TREE = 0, /* no root given: nothing to compare with */
    VERIFY_REF_OK,          /* size (and digest, if a kind was asked) known */
    VERIFY_REF_MISSING,     /* no such regular file under the root (a virtual file) */
};

struct verify_ref {
    enum verify_ref_state state;
    uint64_t size;
    enum verify_kind kind; /* digest computed with */
    uint8_t digest[VERIFY_DIGEST_MAX];
    size_t digest_len;
};

/* Looks up (and on first use stats, and when kind != NONE reads and hashes)
 * root/path.  root NULL → VERIFY_REF_NO_TREE.  The returned pointer stays
 * valid until verify_refs_free().  A path with a ".." segment is MISSING. */
const struct verify_ref *verify_ref_get(const char *root, const char *path, enum verify_kind kind);
void verify_refs_free(void);

#endif
