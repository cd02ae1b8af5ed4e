/* Criterion suite for engine/hostauth: SHA-256 against FIPS 180-4 examples,
 * HMAC-SHA256 against the RFC 4231 §4 test cases, tokens and their check, and
 * the secret file in the state directory. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/hostauth.h"

static void hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

static void expect_sha(const void *data, size_t len, const char *want)
{
    uint8_t d[32];
    char h[65];
    hostauth_sha256(data, len, d);
    hex(d, 32, h);
    cr_expect_str_eq(h, want);
}

Test(hostauth, sha256_fips_examples)
{
    expect_sha("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    expect_sha("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"; /* 448 bits: two padding blocks */
    expect_sha(m, strlen(m), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

Test(hostauth, sha256_streaming_million_a)
{
    struct hostauth_sha256 c;
    hostauth_sha256_init(&c);
    char a[1001];
    memset(a, 'a', sizeof a);
    for (int i = 0; i < 1000; i++) /* pieces that straddle block boundaries */
        hostauth_sha256_update(&c, a, i % 2 ? 999 : 1001);
    uint8_t d[32];
    char h[65];
    hostauth_sha256_final(&c, d);
    hex(d, 32, h);
    cr_expect_str_eq(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

struct rfc4231 {
    uint8_t key[131];
    size_t keylen;
    const char *data;
    size_t datalen;
    const char *want;
};

Test(hostauth, hmac_rfc4231)
{
    static struct rfc4231 v[7];
    memset(v[0].key, 0x0b, v[0].keylen = 20);
    v[0].data = "Hi There";
    v[0].want = "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7";
    memcpy(v[1].key, "Jefe", v[1].keylen = 4);
    v[1].data = "what do ya want for nothing?";
    v[1].want = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
    static char dd[50], cd[50];
    memset(dd, 0xdd, 50);
    memset(cd, 0xcd, 50);
    memset(v[2].key, 0xaa, v[2].keylen = 20);
    v[2].data = dd;
    v[2].datalen = 50;
    v[2].want = "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe";
    for (int i = 0; i < 25; i++)
        v[3].key[i] = (uint8_t)(i + 1);
    v[3].keylen = 25;
    v[3].data = cd;
    v[3].datalen = 50;
    v[3].want = "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b";
    memset(v[4].key, 0x0c, v[4].keylen = 20);
    v[4].data = "Test With Truncation";
    v[4].want = "a3b6167473100ee06e0c796c2955552b"; /* RFC 4231 §4.6: first 128 bits */
    memset(v[5].key, 0xaa, v[5].keylen = 131);
    v[5].data = "Test Using Larger Than Block-Size Key - Hash Key First";
    v[5].want = "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54";
    memset(v[6].key, 0xaa, v[6].keylen = 131);
    v[6].data = "This is a test using a larger than block-size key and a larger than block-size data. "
                "The key needs to be hashed before being used by the HMAC algorithm.";
    v[6].want = "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2";
    for (int i = 0; i < 7; i++) {
        uint8_t d[32];
        char h[65];
        size_t dl = v[i].datalen ? v[i].datalen : strlen(v[i].data);
        hostauth_hmac_sha256(v[i].key, v[i].keylen, v[i].data, dl, d);
        hex(d, 32, h);
        h[strlen(v[i].want)] = '\0';
        cr_expect_str_eq(h, v[i].want, "RFC 4231 test case %d", i + 1);
    }
}

Test(hostauth, token_and_check)
{
    uint8_t secret[32];
    for (int i = 0; i < 32; i++)
        secret[i] = (uint8_t)i;
    struct hostauth *a = hostauth_new(secret, sizeof secret);
    cr_assert_not_null(a);
    uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
    char tok[HOSTAUTH_TOKEN_LEN + 1];
    hostauth_token(a, mac, tok);
    /* HMAC-SHA256(00 01 .. 1f, 52 54 00 12 34 56), computed independently */
    cr_expect_str_eq(tok, "2e1b5dcc1d0bf03a64688abac6c322154251eda5bd11bd399b0e71a144465e50");
    cr_expect(hostauth_check(a, mac, tok));
    char upper[HOSTAUTH_TOKEN_LEN + 1];
    for (int i = 0; i <= HOSTAUTH_TOKEN_LEN; i++)
        upper[i] = (char)(tok[i] >= 'a' && tok[i] <= 'f' ? tok[i] - 32 : tok[i]);
    cr_expect(hostauth_check(a, mac, upper), "hex digits in either case");
    char bad[HOSTAUTH_TOKEN_LEN + 2];
    strcpy(bad, tok);
    bad[63] = bad[63] == '0' ? '1' : '0';
    cr_expect_not(hostauth_check(a, mac, bad), "last digit changed");
    strcpy(bad, tok);
    bad[63] = '\0';
    cr_expect_not(hostauth_check(a, mac, bad), "too short");
    strcpy(bad, tok);
    strcat(bad, "0");
    cr_expect_not(hostauth_check(a, mac, bad), "too long");
    cr_expect_not(hostauth_check(a, mac, ""));
    uint8_t other[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x57 };
    cr_expect_not(hostauth_check(a, other, tok), "another host's token");
    secret[0] ^= 1;
    struct hostauth *b = hostauth_new(secret, sizeof secret);
    cr_expect_not(hostauth_check(b, mac, tok), "another secret");
    hostauth_free(a);
    hostauth_free(b);
}

Test(hostauth, equal)
{
    cr_expect(hostauth_equal("abcd", "abcd", 4));
    cr_expect_not(hostauth_equal("abcd", "abce", 4));
    cr_expect_not(hostauth_equal("xbcd", "abcd", 4));
    cr_expect(hostauth_equal("a", "b", 0));
}

Test(hostauth, secret_file)
{
    char dir[] = "/tmp/test_hostauth.XXXXXX", state[128], path[160], err[256];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(state, sizeof state, "%s/state", dir);
    snprintf(path, sizeof path, "%s/secret", state);
    struct hostauth *a, *b;
    cr_expect_eq(hostauth_open(state, HOSTAUTH_READ_ONLY, &a, err, sizeof err), -ENOENT);
    cr_expect_null(a);
    cr_assert_eq(hostauth_open(state, HOSTAUTH_CREATE, &a, err, sizeof err), 0, "%s", err);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_expect_eq(st.st_size, HOSTAUTH_SECRET_LEN);
    cr_expect_eq(st.st_mode & 0777, 0600);
    /* reopened: the same secret, so the same tokens */
    cr_assert_eq(hostauth_open(state, HOSTAUTH_READ_ONLY, &b, err, sizeof err), 0, "%s", err);
    uint8_t mac[6] = { 2, 0, 0, 0, 0, 1 };
    char t1[65], t2[65];
    hostauth_token(a, mac, t1);
    hostauth_token(b, mac, t2);
    cr_expect_str_eq(t1, t2);
    hostauth_free(b);
    /* a second directory gets another secret */
    char state2[128];
    snprintf(state2, sizeof state2, "%s/state2", dir);
    cr_assert_eq(hostauth_open(state2, HOSTAUTH_CREATE, &b, err, sizeof err), 0, "%s", err);
    hostauth_token(b, mac, t2);
    cr_expect_str_neq(t1, t2);
    hostauth_free(a);
    hostauth_free(b);
    /* a short secret is refused, not silently used */
    FILE *f = fopen(path, "w");
    fputs("short", f);
    fclose(f);
    cr_expect_eq(hostauth_open(state, HOSTAUTH_CREATE, &a, err, sizeof err), -EINVAL);
    char want[256];
    snprintf(want, sizeof want, "%s: not a 32-byte secret (remove it to make a new one; every host's token changes)", path);
    cr_expect_str_eq(err, want);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_expect_eq(system(cmd), 0);
}
