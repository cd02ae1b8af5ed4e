/* engine/hostauth.h — install-once tokens.
 *
 * A host's rendered kickstart carries a token that only that rendering
 * contains; the host's %post presents it to POST /api/hosts/<mac>/installed.
 * token = hex(HMAC-SHA256(secret, the 6 bytes of the MAC)) (RFC 2104, FIPS
 * 180-4), 64 lower-case hex digits.  The secret is 32 random bytes kept in
 * <state-dir>/secret (mode 0600), made on first use, so tokens survive
 * restarts and one host's token says nothing about another's.
 *
 * SHA-256 and HMAC are implemented here (tested against FIPS 180-4 examples and
 * RFC 4231 vectors) so that bootstorm needs no crypto library for them. */
#ifndef BOOTSTORM_ENGINE_HOSTAUTH_H
#define BOOTSTORM_ENGINE_HOSTAUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HOSTAUTH_SECRET_LEN 32
#define HOSTAUTH_TOKEN_LEN  64  /* hex digits, without the NUL */
#define HOSTAUTH_SHA256_LEN 32

/* ---- SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104) ---- */
struct hostauth_sha256 {
    uint32_t h[8];
    uint64_t bytes;       /* message length so far */
    uint8_t block[64];
    size_t used;          /* bytes in block */
};
void hostauth_sha256_init(struct hostauth_sha256 *c);
void hostauth_sha256_update(struct hostauth_sha256 *c, const void *data, size_t len);
void hostauth_sha256_final(struct hostauth_sha256 *c, uint8_t out[HOSTAUTH_SHA256_LEN]);
void hostauth_sha256(const void *data, size_t len, uint8_t out[HOSTAUTH_SHA256_LEN]);
void hostauth_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t msglen,
                          uint8_t out[HOSTAUTH_SHA256_LEN]);

/* Compares n bytes in time that does not depend on where they differ. */
bool hostauth_equal(const void *a, const void *b, size_t n);

/* ---- tokens ---- */
struct hostauth;

enum hostauth_open_mode {
    HOSTAUTH_CREATE,    /* make <dir> (0700) and <dir>/secret when missing */
    HOSTAUTH_READ_ONLY, /* -ENOENT when the secret does not exist */
};

/* Reads <state_dir>/secret (exactly HOSTAUTH_SECRET_LEN bytes) or, with
 * HOSTAUTH_CREATE, makes it from getrandom(2): written to a temporary file,
 * fsync'd and linked into place, so a crash never leaves a short secret and two
 * processes starting at once agree on one.  Returns 0 or -errno, with a
 * one-line reason in err ("STATE_DIR/secret: ..."). */
int hostauth_open(const char *state_dir, enum hostauth_open_mode mode, struct hostauth **out, char *err,
                  size_t errlen);
/* From a given secret (tests, check without a state directory). */
struct hostauth *hostauth_new(const uint8_t *secret, size_t len);
void hostauth_free(struct hostauth *a);

/* out: HOSTAUTH_TOKEN_LEN hex digits and a NUL. */
void hostauth_token(const struct hostauth *a, const uint8_t mac[6], char out[HOSTAUTH_TOKEN_LEN + 1]);
/* True when token (NUL-terminated; any case) is mac's token.  Constant time in
 * the token's content; a token of the wrong length is simply false. */
bool hostauth_check(const struct hostauth *a, const uint8_t mac[6], const char *token);

#endif
