/* Criterion suite for proto/http: request parsing (valid, invalid, split across
 * reads, every limit), paths, ranges, dates, validators, content types and the
 * response-head writer. Every table-driven input is copied so that it ends
 * exactly at a PROT_NONE page: a read one byte past the input faults. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "proto/http.h"

/* ---- guard page harness ------------------------------------------------------- */

#define GUARD_ROOM (64 * 1024)

static unsigned char *guard_end;  /* first byte of the PROT_NONE page */

static void guard_setup(void)
{
    if (guard_end) return;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t room = (GUARD_ROOM + page - 1) / page * page;
    unsigned char *m = mmap(NULL, room + page, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(m, MAP_FAILED);
    cr_assert_eq(mprotect(m + room, page, PROT_NONE), 0);
    guard_end = m + room;
}

/* Copies s[0..n) so that its last byte is the last readable byte. */
static const char *guarded(const char *s, size_t n)
{
    guard_setup();
    cr_assert_leq(n, GUARD_ROOM);
    memcpy(guard_end - n, s, n);
    return (const char *)guard_end - n;
}

/* A writable buffer of cap bytes that ends at the guard page. */
static char *guarded_out(size_t cap)
{
    guard_setup();
    cr_assert_leq(cap, GUARD_ROOM);
    memset(guard_end - cap, 0x5a, cap);
    return (char *)guard_end - cap;
}

static int parse_n(const char *s, size_t n, struct http_request *r, const struct http_limits *l)
{
    return http_parse_request(guarded(s, n), n, r, l);
}

static int parse(const char *s, struct http_request *r)
{
    return parse_n(s, strlen(s), r, NULL);
}

/* Compare an http_str with a C string; want NULL means "absent". */
#define assert_str(s, want)                                                            \
    do {                                                                               \
        struct http_str s_ = (s);                                                      \
        const char *w_ = (want);                                                       \
        if (!w_) {                                                                     \
            cr_assert_null(s_.p, "%s: expected absent", #s);                           \
        } else {                                                                       \
            cr_assert_not_null(s_.p, "%s: expected \"%s\", absent", #s, w_);           \
            char b_[512];                                                              \
            cr_assert_lt(s_.len, sizeof b_);                                           \
            memcpy(b_, s_.p, s_.len);                                                  \
            b_[s_.len] = '\0';                                                         \
            cr_assert_str_eq(b_, w_, "%s", #s);                                        \
        }                                                                              \
    } while (0)

/* ---- the real clients' requests (fixtures/real-clients.json, key http_req) ---- */

static const struct fixture {
    const char *client, *path, *raw;
    size_t headers;
} fixtures[] = {
    { "bios-ipxe-pxelinux", "/preseed.cfg",
      "GET /preseed.cfg HTTP/1.1\r\nHost: 10.77.0.1:8080\r\nUser-Agent: debian-installer\r\n"
      "Accept: */*\r\nAccept-Encoding: identity\r\nConnection: Keep-Alive\r\n\r\n", 5 },
    { "uefi-ovmf-pxebc-shim-grub", "/preseed.cfg",
      "GET /preseed.cfg HTTP/1.1\r\nHost: 10.77.0.1:8080\r\nUser-Agent: debian-installer\r\n"
      "Accept: */*\r\nAccept-Encoding: identity\r\nConnection: Keep-Alive\r\n\r\n", 5 },
    { "uefi-ipxe-efi-http", "/boot.ipxe",
      "GET /boot.ipxe HTTP/1.1\r\nConnection: keep-alive\r\n"
      "User-Agent: iPXE/1.0.0+git-20190125.36a4c85-5.1\r\nHost: 10.77.0.1:8080\r\n\r\n", 3 },
    { "uefi-ipxe-efi-http", "/ipxe/52-54-00-77-00-01.ipxe",
      "GET /ipxe/52-54-00-77-00-01.ipxe HTTP/1.1\r\nConnection: keep-alive\r\n"
      "User-Agent: iPXE/1.0.0+git-20190125.36a4c85-5.1\r\nHost: 10.77.0.1:8080\r\n\r\n", 3 },
    { "uefi-ipxe-efi-http", "/debian-installer/amd64/linux",
      "GET /debian-installer/amd64/linux HTTP/1.1\r\nConnection: keep-alive\r\n"
      "User-Agent: iPXE/1.0.0+git-20190125.36a4c85-5.1\r\nHost: 10.77.0.1:8080\r\n\r\n", 3 },
    { "uefi-ipxe-efi-http", "/debian-installer/amd64/initrd.gz",
      "GET /debian-installer/amd64/initrd.gz HTTP/1.1\r\nConnection: keep-alive\r\n"
      "User-Agent: iPXE/1.0.0+git-20190125.36a4c85-5.1\r\nHost: 10.77.0.1:8080\r\n\r\n", 3 },
    { "uefi-ipxe-efi-http", "/preseed.cfg",
      "GET /preseed.cfg HTTP/1.1\r\nHost: 10.77.0.1:8080\r\nUser-Agent: debian-installer\r\n"
      "Accept: */*\r\nAccept-Encoding: identity\r\nConnection: Keep-Alive\r\n\r\n", 5 },
    { "bios-ipxe-http-with-ra-and-no-pxedhcp", "/boot.ipxe",
      "GET /boot.ipxe HTTP/1.1\r\nConnection: keep-alive\r\n"
      "User-Agent: iPXE/1.0.0+git-20190125.36a4c85-5.1\r\nHost: 10.77.0.1:8080\r\n\r\n", 3 },
    { "bios-ipxe-http-with-ra-and-no-pxedhcp", "/ipxe/52-54-00-77-00-01.ipxe",
      "GET /ipxe/52-54-00-77-00-01.ipxe HTTP/1.1\r\nConnection: keep-alive\r\n"
      "User-Agent: iPXE/1.0.0+git-20190125.36a4c85-5.1\r\nHost: 10.77.0.1:8080\r\n\r\n", 3 },
    { "bios-ipxe-http-with-ra-and-no-pxedhcp", "/debian-installer/amd64/linux",
      "GET /debian-installer/amd64/linux HTTP/1.1\r\nConnection: keep-alive\r\n"
      "User-Agent: iPXE/1.0.0+git-20190125.36a4c85-5.1\r\nHost: 10.77.0.1:8080\r\n\r\n", 3 },
    { "bios-ipxe-http-with-ra-and-no-pxedhcp", "/debian-installer/amd64/initrd.gz",
      "GET /debian-installer/amd64/initrd.gz HTTP/1.1\r\nConnection: keep-alive\r\n"
      "User-Agent: iPXE/1.0.0+git-20190125.36a4c85-5.1\r\nHost: 10.77.0.1:8080\r\n\r\n", 3 },
    { "bios-ipxe-http-with-ra-and-no-pxedhcp", "/preseed.cfg",
      "GET /preseed.cfg HTTP/1.1\r\nHost: 10.77.0.1:8080\r\nUser-Agent: debian-installer\r\n"
      "Accept: */*\r\nAccept-Encoding: identity\r\nConnection: Keep-Alive\r\n\r\n", 5 },
};
#define NFIX (sizeof fixtures / sizeof fixtures[0])

/* Extra valid requests exercising other paths of the parser, for the prefix and
 * guard-page sweeps. */
static const char *const extra_valid[] = {
    "\r\n\nHEAD http://10.77.0.1:8080/images/install.img?x=1 HTTP/1.0\n"
    "Host: ignored\nRange: bytes=0-99\nIf-Range: \"a-b-c\"\nConnection: keep-alive\n\n",
    "POST /api/hosts/52-54-00-77-00-01/done HTTP/1.1\r\nHost: h\r\nContent-Length: 17\r\n"
    "Content-Type: application/json\r\n\r\n",
    "OPTIONS * HTTP/1.1\r\nHost: h\r\nX-Empty:\r\nX-Trim: \t v v \t\r\n\r\n",
    "GET /repo/Packages/gcc-c++-12.2.0.rpm?arch=x86_64 HTTP/1.1\r\nHost: [fe80::1%25eth0]:80\r\n"
    "If-None-Match: W/\"x\", \"y\"\r\nIf-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
    "Accept-Language: caf\xc3\xa9\r\n\r\n",
};
#define NEXTRA (sizeof extra_valid / sizeof extra_valid[0])

static void expect_fixture(const struct fixture *f, const struct http_request *r)
{
    cr_assert_eq(r->method, HTTP_METHOD_GET, "%s", f->client);
    assert_str(r->method_str, "GET");
    cr_assert_eq(r->target_form, HTTP_TARGET_ORIGIN);
    assert_str(r->path, f->path);
    assert_str(r->target, f->path);
    assert_str(r->query, NULL);
    cr_assert_eq(r->version_major, 1);
    cr_assert_eq(r->version_minor, 1);
    cr_assert(r->keep_alive, "%s", f->client);
    assert_str(r->host, "10.77.0.1:8080");
    assert_str(r->range, NULL);
    assert_str(r->if_none_match, NULL);
    cr_assert_not(r->has_content_length);
    cr_assert_eq(r->num_headers, f->headers, "%s: %zu headers", f->client, r->num_headers);
    const struct http_header *ua = http_header_get(r, "user-agent");
    cr_assert_not_null(ua);
    cr_assert(ua->value.len > 4);
}

Test(http_req, real_client_requests)
{
    for (size_t i = 0; i < NFIX; i++) {
        struct http_request r;
        size_t n = strlen(fixtures[i].raw);
        int rc = parse(fixtures[i].raw, &r);
        cr_assert_eq(rc, (int)n, "%s %s: rc %d", fixtures[i].client, fixtures[i].path, rc);
        cr_assert_eq(r.head_len, n);
        expect_fixture(&fixtures[i], &r);
    }
}

/* The same requests with bare LF line ends (RFC 9112 §2.2 allows accepting them). */
Test(http_req, real_client_requests_bare_lf)
{
    for (size_t i = 0; i < NFIX; i++) {
        char buf[512];
        size_t o = 0;
        for (const char *p = fixtures[i].raw; *p; p++)
            if (*p != '\r') buf[o++] = *p;
        struct http_request r;
        cr_assert_eq(parse_n(buf, o, &r, NULL), (int)o, "%s", fixtures[i].client);
        expect_fixture(&fixtures[i], &r);
    }
}

/* Split across reads: every proper prefix of a valid head is PARTIAL, and the
 * full head parses. Each prefix is placed against the guard page, so a parser
 * that peeks one byte too far faults here. */
static void sweep(const char *raw)
{
    size_t n = strlen(raw);
    struct http_request r;
    for (size_t k = 0; k < n; k++) {
        int rc = parse_n(raw, k, &r, NULL);
        cr_assert_eq(rc, HTTP_PARSE_PARTIAL, "prefix %zu/%zu of %.40s: rc %d (%s)", k, n, raw, rc,
                     http_parse_strerror(rc));
    }
    cr_assert_eq(parse_n(raw, n, &r, NULL), (int)n, "%.60s", raw);
}

Test(http_req, every_prefix_is_partial_guard_page)
{
    for (size_t i = 0; i < NFIX; i++) sweep(fixtures[i].raw);
    for (size_t i = 0; i < NEXTRA; i++) sweep(extra_valid[i]);
}

/* Every truncation of every fixture, also with small limits so that the limit
 * paths run against the guard page too: the result must never be a success
 * for a truncated head and never read past the end. */
Test(http_req, truncations_with_limits_guard_page)
{
    const struct http_limits lims[] = { { 20, 60, 2 }, { 30, 4096, 64 }, { 8192, 90, 64 } };
    for (size_t i = 0; i < NFIX + NEXTRA; i++) {
        const char *raw = i < NFIX ? fixtures[i].raw : extra_valid[i - NFIX];
        size_t n = strlen(raw);
        for (size_t l = 0; l < sizeof lims / sizeof lims[0]; l++)
            for (size_t k = 0; k <= n; k++) {
                struct http_request r;
                int rc = parse_n(raw, k, &r, &lims[l]);
                cr_assert(rc < 0 || (size_t)rc == n, "rc %d for %zu bytes", rc, k);
                if (k < n) cr_assert_leq(rc, 0);
            }
    }
}

Test(http_req, extra_valid_fields)
{
    struct http_request r;
    const char *s = extra_valid[0];
    cr_assert_eq(parse(s, &r), (int)strlen(s));
    cr_assert_eq(r.method, HTTP_METHOD_HEAD);
    cr_assert_eq(r.target_form, HTTP_TARGET_ABSOLUTE);
    assert_str(r.host, "10.77.0.1:8080");  /* absolute-form authority beats Host */
    assert_str(r.path, "/images/install.img");
    assert_str(r.query, "x=1");
    cr_assert_eq(r.version_minor, 0);
    cr_assert(r.keep_alive);
    assert_str(r.range, "bytes=0-99");
    assert_str(r.if_range, "\"a-b-c\"");

    s = extra_valid[1];
    cr_assert_eq(parse(s, &r), (int)strlen(s));
    cr_assert_eq(r.method, HTTP_METHOD_POST);
    cr_assert(r.has_content_length);
    cr_assert_eq(r.content_length, 17);

    s = extra_valid[2];
    cr_assert_eq(parse(s, &r), (int)strlen(s));
    cr_assert_eq(r.method, HTTP_METHOD_OTHER);
    assert_str(r.method_str, "OPTIONS");
    cr_assert_eq(r.target_form, HTTP_TARGET_ASTERISK);
    const struct http_header *h = http_header_get(&r, "x-empty");
    cr_assert_not_null(h);
    cr_assert_not_null(h->value.p);
    cr_assert_eq(h->value.len, 0);
    h = http_header_get(&r, "X-TRIM");
    assert_str(h->value, "v v");
    assert_str(h->name, "X-Trim");

    s = extra_valid[3];
    cr_assert_eq(parse(s, &r), (int)strlen(s));
    assert_str(r.path, "/repo/Packages/gcc-c++-12.2.0.rpm");
    assert_str(r.query, "arch=x86_64");
    assert_str(r.host, "[fe80::1%25eth0]:80");
    assert_str(r.if_none_match, "W/\"x\", \"y\"");
    assert_str(r.if_modified_since, "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_str(http_header_get(&r, "accept-language")->value, "caf\xc3\xa9");
}

Test(http_req, pipelined_requests)
{
    const char two[] = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
                       "HEAD /b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
    size_t n = sizeof two - 1;
    struct http_request r;
    int a = parse_n(two, n, &r, NULL);
    cr_assert_eq(a, 28);
    assert_str(r.path, "/a");
    cr_assert(r.keep_alive);
    int b = parse_n(two + a, n - (size_t)a, &r, NULL);
    cr_assert_eq((size_t)(a + b), n);
    cr_assert_eq(r.method, HTTP_METHOD_HEAD);
    assert_str(r.path, "/b");
    cr_assert_not(r.keep_alive);
    /* second request only partly received */
    cr_assert_eq(parse_n(two + a, n - (size_t)a - 1, &r, NULL), HTTP_PARSE_PARTIAL);

    /* a POST body in between: the engine skips content_length bytes; the CRLF
     * some clients add after a body is skipped as an empty line */
    const char body[] = "POST /api/done HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello\r\n"
                        "GET /next HTTP/1.1\r\nHost: h\r\n\r\n";
    n = sizeof body - 1;
    a = parse_n(body, n, &r, NULL);
    cr_assert_gt(a, 0);
    cr_assert(r.has_content_length);
    cr_assert_eq(r.content_length, 5);
    size_t off = (size_t)a + r.content_length;
    b = parse_n(body + off, n - off, &r, NULL);
    cr_assert_eq(off + (size_t)b, n);
    assert_str(r.path, "/next");
}

Test(http_req, methods_and_targets)
{
    static const struct {
        const char *req;
        enum http_method m;
        enum http_target_form f;
        const char *path, *query;
    } t[] = {
#define V " HTTP/1.1\r\nHost: h\r\n\r\n"
        { "GET /" V, HTTP_METHOD_GET, HTTP_TARGET_ORIGIN, "/", NULL },
        { "HEAD /x.efi" V, HTTP_METHOD_HEAD, HTTP_TARGET_ORIGIN, "/x.efi", NULL },
        { "POST /api" V, HTTP_METHOD_POST, HTTP_TARGET_ORIGIN, "/api", NULL },
        { "DELETE /x" V, HTTP_METHOD_OTHER, HTTP_TARGET_ORIGIN, "/x", NULL },
        { "get /" V, HTTP_METHOD_OTHER, HTTP_TARGET_ORIGIN, "/", NULL },
        { "GET /ks.cfg?mac=52:54:00:77:00:01&x" V, HTTP_METHOD_GET, HTTP_TARGET_ORIGIN, "/ks.cfg",
          "mac=52:54:00:77:00:01&x" },
        { "GET /a?" V, HTTP_METHOD_GET, HTTP_TARGET_ORIGIN, "/a", "" },
        { "GET /a?b?c" V, HTTP_METHOD_GET, HTTP_TARGET_ORIGIN, "/a", "b?c" },
        { "GET http://h" V, HTTP_METHOD_GET, HTTP_TARGET_ABSOLUTE, "/", NULL },
        { "GET http://h?q" V, HTTP_METHOD_GET, HTTP_TARGET_ABSOLUTE, "/", "q" },
        { "GET HTTP://H:8080/a/b?c=d" V, HTTP_METHOD_GET, HTTP_TARGET_ABSOLUTE, "/a/b", "c=d" },
        { "GET https://h/x" V, HTTP_METHOD_GET, HTTP_TARGET_ABSOLUTE, "/x", NULL },
        { "CONNECT h:443" V, HTTP_METHOD_OTHER, HTTP_TARGET_AUTHORITY, NULL, NULL },
        { "GET /caf\xc3\xa9" V, HTTP_METHOD_GET, HTTP_TARGET_ORIGIN, "/caf\xc3\xa9", NULL },
        { "GET /%zz" V, HTTP_METHOD_GET, HTTP_TARGET_ORIGIN, "/%zz", NULL },
#undef V
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        struct http_request r;
        int rc = parse(t[i].req, &r);
        cr_assert_eq(rc, (int)strlen(t[i].req), "%s: rc %d", t[i].req, rc);
        cr_assert_eq(r.method, t[i].m, "%s", t[i].req);
        cr_assert_eq(r.target_form, t[i].f, "%s", t[i].req);
        assert_str(r.path, t[i].path);
        assert_str(r.query, t[i].query);
    }
}

Test(http_req, keep_alive_rules)
{
    static const struct { const char *req; bool keep; } t[] = {
        { "GET / HTTP/1.1\r\nHost: h\r\n\r\n", true },
        { "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", false },
        { "GET / HTTP/1.1\r\nHost: h\r\nConnection: CLOSE\r\n\r\n", false },
        { "GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, close\r\n\r\n", false },
        { "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n",
          false },
        { "GET / HTTP/1.1\r\nHost: h\r\nConnection: closed\r\n\r\n", true },
        { "GET / HTTP/1.0\r\n\r\n", false },
        { "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true },
        { "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true },
        { "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", false },
        { "GET / HTTP/1.0\r\nConnection: ,, keep-alive ,\r\n\r\n", true },
        { "GET / HTTP/1.2\r\nHost: h\r\n\r\n", true },  /* processed as 1.1 */
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        struct http_request r;
        cr_assert_gt(parse(t[i].req, &r), 0, "%s", t[i].req);
        cr_assert_eq(r.keep_alive, t[i].keep, "%s", t[i].req);
    }
    struct http_request r;
    parse("GET / HTTP/1.2\r\nHost: h\r\n\r\n", &r);
    cr_assert_eq(r.version_minor, 1);
}

Test(http_req, line_ends_and_leading_empty_lines)
{
    static const char *const ok[] = {
        "GET / HTTP/1.1\nHost: h\n\n",
        "GET / HTTP/1.1\r\nHost: h\n\r\n",
        "\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
        "\n\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        struct http_request r;
        cr_assert_eq(parse(ok[i], &r), (int)strlen(ok[i]), "%s", ok[i]);
        assert_str(r.host, "h");
    }
}

Test(http_req, header_helpers)
{
    struct http_request r;
    const char *s = "GET / HTTP/1.1\r\nHost: h\r\nAccept: a\r\nX: 1\r\naccept: b\r\n\r\n";
    cr_assert_gt(parse(s, &r), 0);
    const struct http_header *h = http_header_get(&r, "ACCEPT");
    assert_str(h->value, "a");
    h = http_header_next(&r, "Accept", h);
    assert_str(h->value, "b");
    assert_str(h->name, "accept");
    cr_assert_null(http_header_next(&r, "Accept", h));
    cr_assert_null(http_header_get(&r, "Accep"));
    cr_assert_null(http_header_get(&r, "Accepts"));
    cr_assert(http_list_has_token("gzip, close ,x", 14, "close"));
    cr_assert(http_list_has_token("close", 5, "Close"));
    cr_assert_not(http_list_has_token("closed, enclose", 15, "close"));
    cr_assert_not(http_list_has_token("", 0, "close"));
}

Test(http_req, content_length)
{
    static const struct { const char *cl; int rc; uint64_t v; } t[] = {
        { "Content-Length: 0\r\n", 1, 0 },
        { "Content-Length: 5368709120\r\n", 1, 5368709120ULL },
        { "Content-Length: 18446744073709551615\r\n", 1, UINT64_MAX },
        { "Content-Length: 5, 5\r\n", 1, 5 },
        { "Content-Length: 5\r\ncontent-length: 5\r\n", 1, 5 },
        { "Content-Length: 18446744073709551616\r\n", HTTP_PARSE_BAD, 0 },
        { "Content-Length: 5, 6\r\n", HTTP_PARSE_BAD, 0 },
        { "Content-Length: 5\r\nContent-Length: 6\r\n", HTTP_PARSE_BAD, 0 },
        { "Content-Length: -1\r\n", HTTP_PARSE_BAD, 0 },
        { "Content-Length: +1\r\n", HTTP_PARSE_BAD, 0 },
        { "Content-Length: 1 2\r\n", HTTP_PARSE_BAD, 0 },
        { "Content-Length: 0x10\r\n", HTTP_PARSE_BAD, 0 },
        { "Content-Length:\r\n", HTTP_PARSE_BAD, 0 },
        { "Content-Length: 5,\r\n", HTTP_PARSE_BAD, 0 },
        { "Transfer-Encoding: chunked\r\n", HTTP_PARSE_NOT_IMPLEMENTED, 0 },
        { "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", HTTP_PARSE_NOT_IMPLEMENTED, 0 },
        { "transfer-encoding: identity\r\n", HTTP_PARSE_NOT_IMPLEMENTED, 0 },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char buf[256];
        int n = snprintf(buf, sizeof buf, "POST /api HTTP/1.1\r\nHost: h\r\n%s\r\n", t[i].cl);
        struct http_request r;
        int rc = parse_n(buf, (size_t)n, &r, NULL);
        if (t[i].rc == 1) {
            cr_assert_eq(rc, n, "%s: rc %d", t[i].cl, rc);
            cr_assert(r.has_content_length);
            cr_assert_eq(r.content_length, t[i].v, "%s", t[i].cl);
        } else {
            cr_assert_eq(rc, t[i].rc, "%s: rc %d", t[i].cl, rc);
        }
    }
    /* RFC 9112 §6.1: Transfer-Encoding on HTTP/1.0 is faulty framing */
    struct http_request r;
    cr_assert_eq(parse("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", &r),
                 HTTP_PARSE_BAD);
    /* a GET with a body is reported, the engine decides */
    cr_assert_gt(parse("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc", &r), 0);
    cr_assert(r.has_content_length);
    cr_assert_eq(r.content_length, 3);
}

#define R(x) x, sizeof(x) - 1, #x

Test(http_req, malformed)
{
    static const struct { const char *s; size_t n; const char *name; int rc; } t[] = {
        /* request line */
        { R("GET /\0 HTTP/1.1\r\nHost: h\r\n\r\n"), HTTP_PARSE_BAD },
        { R("GET /a\001 HTTP/1.1\r\nHost: h\r\n\r\n"), HTTP_PARSE_BAD },
        { R("GET /a\177 HTTP/1.1\r\nHost: h\r\n\r\n"), HTTP_PARSE_BAD },
        { R("GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n"), HTTP_PARSE_BAD },
        { R("GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n"), HTTP_PARSE_BAD },
        { R("GET  / HTTP/1.1\r\nHost: h\r\n\r\n"), HTTP_PARSE_BAD },
        { R(" GET / HTTP/1.1\r\nHost: h\r\n\r\n"), HTTP_PARSE_BAD },
        { R("GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n"), HTTP_PARSE_BAD },
        { R("GET / HTTP/1.1 \r\nHost: h\r\n\r\n"), HTTP_PARSE_BAD },
        { R("GET / HTTP/1.1\rHost: h\r\n\r\n"), HTTP_PARSE_BAD },
        { R("GET /\r\n\r\n"), HTTP_PARSE_BAD },
        { R("GET / \r\n\r\n"), HTTP_PARSE_BAD },
        { R("GET / HTTP/1.10\r\nHost: h\r\n\r\n"), HTTP_PARSE_BAD },
        { R("GET / HTTP/1\r\nHost: h\r\n\r\n"), HTTP_PARSE_BAD },
        { R("GET / http/1.1\r\nHost: h\r\n\r\n"), HTTP_PARSE_BAD },
        { R("GET / HTTP/1.x\r\nHost: h\r\n\r\n"), HTTP_PARSE_BAD },
        { R("G(T / HTTP/1.1\r\nHost: h\r\n\r\n"), HTTP_PARSE_BAD },
        { R(" / HTTP/1.1\r\nHost: h\r\n\r\n"), HTTP_PARSE_BAD },
        { R("GET a HTTP/1.1\r\nHost: h\r\n\r\n"), HTTP_PARSE_BAD },
        { R("GET * HTTP/1.1\r\nHost: h\r\n\r\n"), HTTP_PARSE_BAD },
        { R("OPTIONS ** HTTP/1.1\r\nHost: h\r\n\r\n"), HTTP_PARSE_BAD },
        { R("GET http://user@h/ HTTP/1.1\r\nHost: h\r\n\r\n"), HTTP_PARSE_BAD },
        { R("GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n"), HTTP_PARSE_BAD },
        { R("GET ftp://h/x HTTP/1.1\r\nHost: h\r\n\r\n"), HTTP_PARSE_BAD },
        { R("\r\rGET / HTTP/1.1\r\nHost: h\r\n\r\n"), HTTP_PARSE_BAD },
        /* versions */
        { R("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), HTTP_PARSE_BAD_VERSION },
        { R("GET / HTTP/2.0\r\nHost: h\r\n\r\n"), HTTP_PARSE_BAD_VERSION },
        { R("GET / HTTP/0.9\r\nHost: h\r\n\r\n"), HTTP_PARSE_BAD_VERSION },
        /* header section: smuggling rules of RFC 9112 §5 */
        { R("GET / HTTP/1.1\r\nHost : h\r\n\r\n"), HTTP_PARSE_BAD },
        { R("GET / HTTP/1.1\r\nHost\t: h\r\n\r\n"), HTTP_PARSE_BAD },
        { R("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n folded\r\n\r\n"), HTTP_PARSE_BAD },
        { R("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n\tfolded\r\n\r\n"), HTTP_PARSE_BAD },
        { R("GET / HTTP/1.1\r\n Host: h\r\n\r\n"), HTTP_PARSE_BAD },
        { R("GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n"), HTTP_PARSE_BAD },
        { R("GET / HTTP/1.1\r\nHost: h\r\n: empty\r\n\r\n"), HTTP_PARSE_BAD },
        { R("GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n"), HTTP_PARSE_BAD },
        { R("GET / HTTP/1.1\r\nHost: h\r\nX: a\001b\r\n\r\n"), HTTP_PARSE_BAD },
        { R("GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n"), HTTP_PARSE_BAD },
        { R("GET / HTTP/1.1\r\nHost: h\r\nX: a\177\r\n\r\n"), HTTP_PARSE_BAD },
        { R("GET / HTTP/1.1\r\nHo\200st: h\r\n\r\n"), HTTP_PARSE_BAD },
        { R("GET / HTTP/1.1\r\nHost: h\r\n\r\r\n"), HTTP_PARSE_BAD },
        /* Host rules, RFC 9112 §3.2 */
        { R("GET / HTTP/1.1\r\n\r\n"), HTTP_PARSE_BAD },
        { R("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), HTTP_PARSE_BAD },
        { R("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n"), HTTP_PARSE_BAD },
        { R("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), HTTP_PARSE_BAD },
        { R("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), HTTP_PARSE_BAD },
        { R("GET / HTTP/1.1\r\nHost: u@h\r\n\r\n"), HTTP_PARSE_BAD },
        /* detected before the head is complete */
        { R("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), HTTP_PARSE_BAD },
        { R("GET / HTTP/1.1\r\nHost : h"), HTTP_PARSE_BAD },
        { R("GET /\0"), HTTP_PARSE_BAD },
        { R("GET / HTTP/3\r\n"), HTTP_PARSE_BAD },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        struct http_request r;
        int rc = parse_n(t[i].s, t[i].n, &r, NULL);
        cr_assert_eq(rc, t[i].rc, "%s: rc %d (%s), want %d", t[i].name, rc,
                     http_parse_strerror(rc), t[i].rc);
    }
    /* without Host, HTTP/1.0 is fine */
    struct http_request r;
    cr_assert_gt(parse("GET / HTTP/1.0\r\n\r\n", &r), 0);
    assert_str(r.host, NULL);
    cr_assert_gt(parse("GET / HTTP/1.1\r\nHost:\r\n\r\n", &r), 0);  /* empty Host is allowed */
}

/* head of exactly `total` bytes: request line, Host, one padding header */
static char *head_of_size(size_t total, bool complete)
{
    static const char pre[] = "GET / HTTP/1.1\r\nHost: a\r\nX: ";
    size_t fixed = sizeof pre - 1 + 4;  /* "\r\n" after X and the final "\r\n" */
    cr_assert_gt(total, fixed);
    char *b = malloc(total + 1);
    memcpy(b, pre, sizeof pre - 1);
    memset(b + sizeof pre - 1, 'v', total - fixed);
    memcpy(b + total - 4, "\r\n\r\n", 4);
    b[total] = '\0';
    if (!complete) memset(b + total - 4, 'v', 4);  /* same size, no end of head yet */
    return b;
}

Test(http_req, limit_request_line)
{
    struct http_request r;
    char *b = malloc(HTTP_DEFAULT_MAX_REQUEST_LINE + 64);
    /* "GET /" + pad + " HTTP/1.1" = exactly 8192 bytes of request line */
    size_t pad = HTTP_DEFAULT_MAX_REQUEST_LINE - 14;
    memcpy(b, "GET /", 5);
    memset(b + 5, 'a', pad);
    strcpy(b + 5 + pad, " HTTP/1.1\r\nHost: h\r\n\r\n");
    cr_assert_eq(parse(b, &r), (int)strlen(b));
    cr_assert_eq(r.target.len, pad + 1);
    /* one more byte: 414, also when the line has not ended yet */
    memset(b + 5, 'a', pad + 1);
    strcpy(b + 6 + pad, " HTTP/1.1\r\nHost: h\r\n\r\n");
    cr_assert_eq(parse(b, &r), HTTP_PARSE_URI_TOO_LONG);
    cr_assert_eq(parse_n(b, HTTP_DEFAULT_MAX_REQUEST_LINE + 1, &r, NULL), HTTP_PARSE_URI_TOO_LONG);
    /* exactly the limit without its CRLF yet: could still be valid */
    cr_assert_eq(parse_n(b, HTTP_DEFAULT_MAX_REQUEST_LINE, &r, NULL), HTTP_PARSE_PARTIAL);
    /* a long target with no version at all */
    memset(b, 'a', HTTP_DEFAULT_MAX_REQUEST_LINE + 10);
    memcpy(b, "GET /", 5);
    cr_assert_eq(parse_n(b, HTTP_DEFAULT_MAX_REQUEST_LINE + 10, &r, NULL),
                 HTTP_PARSE_URI_TOO_LONG);
    /* a long method */
    memset(b, 'A', HTTP_DEFAULT_MAX_REQUEST_LINE + 1);
    cr_assert_eq(parse_n(b, HTTP_DEFAULT_MAX_REQUEST_LINE + 1, &r, NULL), HTTP_PARSE_URI_TOO_LONG);
    free(b);

    const struct http_limits small = { 16, 0, 0 };
    const char *ok = "GET /123456 HTTP/1.1\r\nHost: h\r\n\r\n";  /* line = 20 bytes */
    cr_assert_eq(parse_n(ok, strlen(ok), &r, &small), HTTP_PARSE_URI_TOO_LONG);
    const struct http_limits exact = { 20, 0, 0 };
    cr_assert_eq(parse_n(ok, strlen(ok), &r, &exact), (int)strlen(ok));
    cr_assert_eq(http_parse_status(HTTP_PARSE_URI_TOO_LONG), 414);
}

Test(http_req, limit_head_bytes)
{
    struct http_request r;
    char *b = head_of_size(HTTP_DEFAULT_MAX_HEAD, true);
    cr_assert_eq(parse(b, &r), HTTP_DEFAULT_MAX_HEAD);
    free(b);
    b = head_of_size(HTTP_DEFAULT_MAX_HEAD + 1, true);
    cr_assert_eq(parse(b, &r), HTTP_PARSE_HEADERS_TOO_LARGE);
    /* refused as soon as the cap is crossed, without waiting for the end */
    cr_assert_eq(parse_n(b, HTTP_DEFAULT_MAX_HEAD, &r, NULL), HTTP_PARSE_HEADERS_TOO_LARGE);
    cr_assert_eq(parse_n(b, HTTP_DEFAULT_MAX_HEAD - 1, &r, NULL), HTTP_PARSE_PARTIAL);
    free(b);
    b = head_of_size(HTTP_DEFAULT_MAX_HEAD, false);
    cr_assert_eq(parse(b, &r), HTTP_PARSE_HEADERS_TOO_LARGE);
    free(b);

    /* a complete head within the cap parses even if more bytes follow */
    const char *s = "GET / HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
    const struct http_limits l = { 0, 27, 0 };
    cr_assert_eq(parse_n(s, strlen(s), &r, &l), 27);
    const struct http_limits l2 = { 0, 26, 0 };
    cr_assert_eq(parse_n(s, strlen(s), &r, &l2), HTTP_PARSE_HEADERS_TOO_LARGE);
    cr_assert_eq(http_parse_status(HTTP_PARSE_HEADERS_TOO_LARGE), 431);
}

Test(http_req, limit_header_count)
{
    struct http_request r;
    char buf[2048];
    size_t o = (size_t)sprintf(buf, "GET / HTTP/1.1\r\nHost: h\r\n");
    for (int i = 1; i < HTTP_MAX_HEADERS; i++) o += (size_t)sprintf(buf + o, "X-%d: v\r\n", i);
    size_t before_end = o;
    o += (size_t)sprintf(buf + o, "\r\n");
    cr_assert_eq(parse_n(buf, o, &r, NULL), (int)o);
    cr_assert_eq(r.num_headers, HTTP_MAX_HEADERS);
    assert_str(r.headers[HTTP_MAX_HEADERS - 1].name, "X-63");
    /* the 65th header: refused as soon as its first byte arrives */
    o = before_end + (size_t)sprintf(buf + before_end, "X-64: v\r\n\r\n");
    cr_assert_eq(parse_n(buf, o, &r, NULL), HTTP_PARSE_TOO_MANY_HEADERS);
    cr_assert_eq(parse_n(buf, before_end + 1, &r, NULL), HTTP_PARSE_TOO_MANY_HEADERS);
    cr_assert_eq(parse_n(buf, before_end, &r, NULL), HTTP_PARSE_PARTIAL);

    const struct http_limits two = { 0, 0, 2 }, three = { 0, 0, 3 }, big = { 0, 0, 1000 };
    const char *f = fixtures[2].raw;  /* 3 headers */
    cr_assert_eq(parse_n(f, strlen(f), &r, &two), HTTP_PARSE_TOO_MANY_HEADERS);
    cr_assert_eq(parse_n(f, strlen(f), &r, &three), (int)strlen(f));
    /* clamped to the array size */
    o = before_end + (size_t)sprintf(buf + before_end, "X-64: v\r\n\r\n");
    cr_assert_eq(parse_n(buf, o, &r, &big), HTTP_PARSE_TOO_MANY_HEADERS);
    cr_assert_eq(http_parse_status(HTTP_PARSE_TOO_MANY_HEADERS), 431);
}

Test(http_req, status_mapping)
{
    cr_assert_eq(http_parse_status(HTTP_PARSE_BAD), 400);
    cr_assert_eq(http_parse_status(HTTP_PARSE_BAD_VERSION), 505);
    cr_assert_eq(http_parse_status(HTTP_PARSE_NOT_IMPLEMENTED), 501);
    cr_assert_eq(http_parse_status(HTTP_PARSE_PARTIAL), 0);
    cr_assert_eq(http_parse_status(120), 0);
    cr_assert_str_eq(http_parse_strerror(HTTP_PARSE_URI_TOO_LONG), "request line too long");
    cr_assert_str_eq(http_parse_strerror(-99), "unknown parse result");
}

/* ---- paths --------------------------------------------------------------------- */

Test(http_path, percent_decode)
{
    static const struct { const char *in; int rc; const char *out; } t[] = {
        { "/a%20b", HTTP_PATH_OK, "/a b" },
        { "/gcc-c++-12.rpm", HTTP_PATH_OK, "/gcc-c++-12.rpm" },
        { "/a+b%2B", HTTP_PATH_OK, "/a+b+" },
        { "/%2e%2e/etc", HTTP_PATH_OK, "/../etc" },
        { "/%252e%252e/x", HTTP_PATH_OK, "/%2e%2e/x" },
        { "/%C3%A9%c3%a9", HTTP_PATH_OK, "/\xc3\xa9\xc3\xa9" },
        { "/A%2fB", HTTP_PATH_OK, "/A/B" },
        { "/back\\slash", HTTP_PATH_OK, "/back\\slash" },
        { "", HTTP_PATH_OK, "" },
        { "/a%00b", HTTP_PATH_NUL, NULL },
        { "/a%0ab", HTTP_PATH_CONTROL, NULL },
        { "/a%0D%0A", HTTP_PATH_CONTROL, NULL },
        { "/a%7f", HTTP_PATH_CONTROL, NULL },
        { "/a%", HTTP_PATH_BAD_ESCAPE, NULL },
        { "/a%2", HTTP_PATH_BAD_ESCAPE, NULL },
        { "/a%zz", HTTP_PATH_BAD_ESCAPE, NULL },
        { "/a%2g", HTTP_PATH_BAD_ESCAPE, NULL },
        { "/a%%32e", HTTP_PATH_BAD_ESCAPE, NULL },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char out[64];
        size_t ol = 999;
        size_t n = strlen(t[i].in);
        int rc = http_percent_decode_path(guarded(t[i].in, n), n, out, sizeof out, &ol);
        cr_assert_eq(rc, t[i].rc, "%s: rc %d (%s)", t[i].in, rc, http_path_strerror(rc));
        if (t[i].out) {
            cr_assert_str_eq(out, t[i].out);
            cr_assert_eq(ol, strlen(t[i].out));
        }
    }
    /* output capacity: the decoded bytes plus the NUL, exactly */
    size_t ol;
    char *o = guarded_out(5);
    cr_assert_eq(http_percent_decode_path("/abcd", 5, o, 5, &ol), HTTP_PATH_TOO_LONG);
    o = guarded_out(6);
    cr_assert_eq(http_percent_decode_path("/abcd", 5, o, 6, &ol), HTTP_PATH_OK);
    cr_assert_str_eq(o, "/abcd");
    o = guarded_out(4);
    cr_assert_eq(http_percent_decode_path("/%41%42%43", 10, o, 4, &ol), HTTP_PATH_TOO_LONG);
    o = guarded_out(5);
    cr_assert_eq(http_percent_decode_path("/%41%42%43", 10, o, 5, &ol), HTTP_PATH_OK);
    cr_assert_str_eq(o, "/ABC");
    char z;
    cr_assert_eq(http_percent_decode_path("", 0, &z, 0, &ol), HTTP_PATH_TOO_LONG);
}

Test(http_path, resolve_and_traversal)
{
    static const struct { const char *in; int rc; const char *out; bool dir; } t[] = {
        { "/", HTTP_PATH_OK, "", true },
        { "/images/", HTTP_PATH_OK, "images", true },
        { "/images", HTTP_PATH_OK, "images", false },
        { "//a///b//", HTTP_PATH_OK, "a/b", true },
        { "/./a/./b/.", HTTP_PATH_OK, "a/b", true },
        { "/a/b/./c", HTTP_PATH_OK, "a/b/c", false },
        { "/.treeinfo", HTTP_PATH_OK, ".treeinfo", false },
        { "/...", HTTP_PATH_OK, "...", false },
        { "/..a/a..", HTTP_PATH_OK, "..a/a..", false },
        { "/Packages/gcc-c++-12.2.0-14.x86_64.rpm", HTTP_PATH_OK,
          "Packages/gcc-c++-12.2.0-14.x86_64.rpm", false },
        { "/a%20dir/f%2Bg", HTTP_PATH_OK, "a dir/f+g", false },
        /* double encoding is decoded once: the rest is a literal file name */
        { "/%252e%252e/%252e%252e/etc/passwd", HTTP_PATH_OK, "%2e%2e/%2e%2e/etc/passwd", false },
        { "/%252E%252E%252Fetc", HTTP_PATH_OK, "%2E%2E%2Fetc", false },
        /* backslash is an ordinary byte on Linux */
        { "/a\\..\\..\\etc\\passwd", HTTP_PATH_OK, "a\\..\\..\\etc\\passwd", false },
        { "/%5c..%5cetc", HTTP_PATH_OK, "\\..\\etc", false },
        /* traversal in every spelling */
        { "/..", HTTP_PATH_TRAVERSAL, NULL, false },
        { "/../", HTTP_PATH_TRAVERSAL, NULL, false },
        { "/a/b/..", HTTP_PATH_TRAVERSAL, NULL, false },
        { "/a/../b", HTTP_PATH_TRAVERSAL, NULL, false },
        { "/a/../../etc/passwd", HTTP_PATH_TRAVERSAL, NULL, false },
        { "/%2e%2e/etc/passwd", HTTP_PATH_TRAVERSAL, NULL, false },
        { "/%2E%2e/", HTTP_PATH_TRAVERSAL, NULL, false },
        { "/.%2e/x", HTTP_PATH_TRAVERSAL, NULL, false },
        { "/a/%2e%2e%2f%2e%2e%2fetc", HTTP_PATH_TRAVERSAL, NULL, false },
        { "/..%2f..%2fetc", HTTP_PATH_TRAVERSAL, NULL, false },
        { "//..//etc", HTTP_PATH_TRAVERSAL, NULL, false },
        { "/etc/passwd%00.html", HTTP_PATH_NUL, NULL, false },
        { "/%00", HTTP_PATH_NUL, NULL, false },
        { "/log%0d%0aforged", HTTP_PATH_CONTROL, NULL, false },
        { "relative", HTTP_PATH_NOT_ABSOLUTE, NULL, false },
        { "%2fabs", HTTP_PATH_OK, "abs", false },  /* decoded before the check */
        { "", HTTP_PATH_NOT_ABSOLUTE, NULL, false },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char out[128];
        size_t ol = 999;
        bool dir = !t[i].dir;
        size_t n = strlen(t[i].in);
        int rc = http_path_resolve(guarded(t[i].in, n), n, out, sizeof out, &ol, &dir);
        cr_assert_eq(rc, t[i].rc, "%s: rc %d (%s)", t[i].in, rc, http_path_strerror(rc));
        if (rc == HTTP_PATH_OK) {
            cr_assert_str_eq(out, t[i].out, "%s", t[i].in);
            cr_assert_eq(ol, strlen(t[i].out));
            cr_assert_eq(dir, t[i].dir, "%s: dir", t[i].in);
        }
    }
    /* normalize alone, in place, on a buffer ending at the guard page */
    char *p = (char *)guarded("/x//y/", 6);
    size_t ol;
    bool dir;
    cr_assert_eq(http_path_normalize(p, 6, &ol, &dir), HTTP_PATH_OK);
    cr_assert_str_eq(p, "x/y");
    cr_assert(dir);
    cr_assert_str_eq(http_path_strerror(HTTP_PATH_TRAVERSAL), "'..' segment in path");
}

/* ---- ranges ------------------------------------------------------------------- */

#define GiB (1024ULL * 1024 * 1024)

Test(http_range, table)
{
    static const struct {
        const char *v;
        uint64_t size;
        int rc;
        uint64_t first, last;
    } t[] = {
        { "bytes=0-499", 1000, HTTP_RANGE_OK, 0, 499 },
        { "bytes=500-", 1000, HTTP_RANGE_OK, 500, 999 },
        { "bytes=-200", 1000, HTTP_RANGE_OK, 800, 999 },
        { "bytes=-1000", 1000, HTTP_RANGE_OK, 0, 999 },
        { "bytes=-2000", 1000, HTTP_RANGE_OK, 0, 999 },     /* suffix larger than the file */
        { "bytes=0-0", 1, HTTP_RANGE_OK, 0, 0 },
        { "bytes=999-999", 1000, HTTP_RANGE_OK, 999, 999 },
        { "bytes=0-5000", 1000, HTTP_RANGE_OK, 0, 999 },    /* last clamped */
        { "BYTES=1-2", 1000, HTTP_RANGE_OK, 1, 2 },
        { "bytes=0-99999999999999999999999", 1000, HTTP_RANGE_OK, 0, 999 },
        { "bytes=-99999999999999999999999", 1000, HTTP_RANGE_OK, 0, 999 },
        /* over 4 GiB */
        { "bytes=4294967296-", 5 * GiB, HTTP_RANGE_OK, 4 * GiB, 5 * GiB - 1 },
        { "bytes=5000000000-5000000999", 5 * GiB, HTTP_RANGE_OK, 5000000000ULL, 5000000999ULL },
        { "bytes=-1073741824", 5 * GiB, HTTP_RANGE_OK, 4 * GiB, 5 * GiB - 1 },
        { "bytes=4294967295-4294967296", 5 * GiB, HTTP_RANGE_OK, 4 * GiB - 1, 4 * GiB },
        { "bytes=18446744073709551614-", UINT64_MAX, HTTP_RANGE_OK, UINT64_MAX - 1,
          UINT64_MAX - 1 },
        /* unsatisfiable: 416 */
        { "bytes=1000-", 1000, HTTP_RANGE_UNSATISFIABLE, 0, 0 },
        { "bytes=1000-2000", 1000, HTTP_RANGE_UNSATISFIABLE, 0, 0 },
        { "bytes=-0", 1000, HTTP_RANGE_UNSATISFIABLE, 0, 0 },
        { "bytes=6442450944-", 5 * GiB, HTTP_RANGE_UNSATISFIABLE, 0, 0 },
        { "bytes=99999999999999999999999-", 1000, HTTP_RANGE_UNSATISFIABLE, 0, 0 },
        { "bytes=18446744073709551615-", UINT64_MAX, HTTP_RANGE_UNSATISFIABLE, 0, 0 },
        /* zero-length file: only a non-zero suffix is satisfiable and it selects
         * the whole (empty) file: 200 (RFC 9110 §14.1.1) */
        { "bytes=0-", 0, HTTP_RANGE_UNSATISFIABLE, 0, 0 },
        { "bytes=0-0", 0, HTTP_RANGE_UNSATISFIABLE, 0, 0 },
        { "bytes=-5", 0, HTTP_RANGE_NONE, 0, 0 },
        { "bytes=-0", 0, HTTP_RANGE_UNSATISFIABLE, 0, 0 },
        /* ignored: serve 200 */
        { "bytes=5-1", 1000, HTTP_RANGE_NONE, 0, 0 },
        { "bytes=0-1,5-6", 1000, HTTP_RANGE_NONE, 0, 0 },
        { "bytes=0-1,", 1000, HTTP_RANGE_NONE, 0, 0 },
        { "bytes=abc", 1000, HTTP_RANGE_NONE, 0, 0 },
        { "bytes=", 1000, HTTP_RANGE_NONE, 0, 0 },
        { "bytes=-", 1000, HTTP_RANGE_NONE, 0, 0 },
        { "bytes=1", 1000, HTTP_RANGE_NONE, 0, 0 },
        { "bytes=1-2x", 1000, HTTP_RANGE_NONE, 0, 0 },
        { "bytes=1--2", 1000, HTTP_RANGE_NONE, 0, 0 },
        { "bytes=+1-2", 1000, HTTP_RANGE_NONE, 0, 0 },
        { "bytes=-1-2", 1000, HTTP_RANGE_NONE, 0, 0 },
        { "bytes = 0-1", 1000, HTTP_RANGE_NONE, 0, 0 },
        { "bytes=0 -1", 1000, HTTP_RANGE_NONE, 0, 0 },
        { "items=0-1", 1000, HTTP_RANGE_NONE, 0, 0 },
        { "bytes", 1000, HTTP_RANGE_NONE, 0, 0 },
        { "", 1000, HTTP_RANGE_NONE, 0, 0 },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        uint64_t a = 12345, b = 12345;
        size_t n = strlen(t[i].v);
        int rc = http_parse_range(guarded(t[i].v, n), n, t[i].size, &a, &b);
        cr_assert_eq(rc, t[i].rc, "%s size %llu: rc %d", t[i].v, (unsigned long long)t[i].size, rc);
        if (rc == HTTP_RANGE_OK) {
            cr_assert_eq(a, t[i].first, "%s: first %llu", t[i].v, (unsigned long long)a);
            cr_assert_eq(b, t[i].last, "%s: last %llu", t[i].v, (unsigned long long)b);
            cr_assert_leq(a, b);
            cr_assert_lt(b, t[i].size);
        }
    }
}

/* ---- dates ---------------------------------------------------------------------- */

Test(http_date, format_known)
{
    static const struct { time_t t; const char *s; } t[] = {
        { 0, "Thu, 01 Jan 1970 00:00:00 GMT" },
        { 784111777, "Sun, 06 Nov 1994 08:49:37 GMT" },
        { 951782400, "Tue, 29 Feb 2000 00:00:00 GMT" },
        { 4102444800, "Fri, 01 Jan 2100 00:00:00 GMT" },
        { -1, "Wed, 31 Dec 1969 23:59:59 GMT" },
        { 253402300799, "Fri, 31 Dec 9999 23:59:59 GMT" },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char *o = guarded_out(HTTP_DATE_LEN + 1);
        cr_assert_eq(http_format_date(t[i].t, o), HTTP_DATE_LEN);
        cr_assert_str_eq(o, t[i].s);
    }
    char o[HTTP_DATE_LEN + 1];
    cr_assert_eq(http_format_date(253402300800, o), 0);  /* year 10000 */
}

Test(http_date, parse_formats)
{
    static const struct { const char *s; int rc; time_t t; } t[] = {
        { "Sun, 06 Nov 1994 08:49:37 GMT", HTTP_DATE_OK, 784111777 },
        { "Sunday, 06-Nov-94 08:49:37 GMT", HTTP_DATE_OK, 784111777 },
        { "Sun Nov  6 08:49:37 1994", HTTP_DATE_OK, 784111777 },
        { "Sun Nov 06 08:49:37 1994", HTTP_DATE_OK, 784111777 },
        { "Thursday, 01-Jan-70 00:00:00 GMT", HTTP_DATE_OK, 0 },
        { "Tuesday, 01-Jan-69 00:00:00 GMT", HTTP_DATE_OK, 3124224000 },
        { "Wednesday, 31-Dec-69 23:59:59 GMT", HTTP_DATE_OK, 3155759999 },
        { "Tue, 29 Feb 2000 00:00:00 GMT", HTTP_DATE_OK, 951782400 },
        { "Wed, 31 Dec 1969 23:59:59 GMT", HTTP_DATE_OK, -1 },
        { "Sat, 30 Jun 2012 23:59:60 GMT", HTTP_DATE_OK, 1341100800 },  /* leap second */
        { "Sun, 30 Feb 1994 08:49:37 GMT", HTTP_DATE_INVALID, 0 },
        { "Thu, 29 Feb 1900 00:00:00 GMT", HTTP_DATE_INVALID, 0 },
        { "Sun, 00 Nov 1994 08:49:37 GMT", HTTP_DATE_INVALID, 0 },
        { "Sun, 31 Nov 1994 08:49:37 GMT", HTTP_DATE_INVALID, 0 },
        { "Sun, 06 Nov 1994 24:00:00 GMT", HTTP_DATE_INVALID, 0 },
        { "Sun, 06 Nov 1994 08:60:00 GMT", HTTP_DATE_INVALID, 0 },
        { "Sun, 06 Nov 1994 08:49:61 GMT", HTTP_DATE_INVALID, 0 },
        { "Sun, 06 Nov 1994 08:49:37 UTC", HTTP_DATE_INVALID, 0 },
        { "sun, 06 Nov 1994 08:49:37 GMT", HTTP_DATE_INVALID, 0 },
        { "Sun, 06 nov 1994 08:49:37 GMT", HTTP_DATE_INVALID, 0 },
        { "Sun, 6 Nov 1994 08:49:37 GMT", HTTP_DATE_INVALID, 0 },
        { "Sun, 06 Nov 1994 08:49:37 GMT ", HTTP_DATE_INVALID, 0 },
        { "Sun, 06 Nov 1994 08-49-37 GMT", HTTP_DATE_INVALID, 0 },
        { "Sun, 06 Nov 0000 08:49:37 GMT", HTTP_DATE_INVALID, 0 },
        { "Sun, 06 Nov 19x4 08:49:37 GMT", HTTP_DATE_INVALID, 0 },
        { "Xyz, 06 Nov 1994 08:49:37 GMT", HTTP_DATE_INVALID, 0 },
        { "Sunday, 06-Nov-94 08:49:37 UTC", HTTP_DATE_INVALID, 0 },
        { "Sunday, 06-Nov-1994 08:49:37 GMT", HTTP_DATE_INVALID, 0 },
        { "Sundae, 06-Nov-94 08:49:37 GMT", HTTP_DATE_INVALID, 0 },
        { "Sun Nov 32 08:49:37 1994", HTTP_DATE_INVALID, 0 },
        { "Sun Nov  6 08:49:37-1994", HTTP_DATE_INVALID, 0 },
        { "Sun Nov  6 08:49:37 94  ", HTTP_DATE_INVALID, 0 },
        { "1994-11-06T08:49:37Z", HTTP_DATE_INVALID, 0 },
        { "784111777", HTTP_DATE_INVALID, 0 },
        { "", HTTP_DATE_INVALID, 0 },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        time_t v = 42;
        size_t n = strlen(t[i].s);
        int rc = http_parse_date(guarded(t[i].s, n), n, &v);
        cr_assert_eq(rc, t[i].rc, "%s: rc %d", t[i].s, rc);
        if (rc == HTTP_DATE_OK) cr_assert_eq(v, t[i].t, "%s: %lld", t[i].s, (long long)v);
    }
}

Test(http_date, round_trip)
{
    /* 1900 .. past 2400, odd step so every weekday, month and time of day comes up */
    int n = 0;
    for (int64_t t = -2208988800LL; t < 14000000000LL; t += 7777777 + 13) {
        char s[HTTP_DATE_LEN + 1], ref[64];
        cr_assert_eq(http_format_date((time_t)t, s), HTTP_DATE_LEN);
        time_t tt = (time_t)t;
        struct tm tm;
        gmtime_r(&tt, &tm);
        strftime(ref, sizeof ref, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        cr_assert_str_eq(s, ref);
        time_t back;
        cr_assert_eq(http_parse_date(s, HTTP_DATE_LEN, &back), HTTP_DATE_OK, "%s", s);
        cr_assert_eq(back, tt, "%s", s);
        n++;
    }
    cr_assert_gt(n, 2000);
}

/* ---- validators and conditionals ------------------------------------------------ */

Test(http_etag, format)
{
    char *o = guarded_out(26);
    cr_assert_eq(http_format_etag(o, 26, 3072, 0x17a2b3c4d5e6f708LL, 42), 25);
    cr_assert_str_eq(o, "\"17a2b3c4d5e6f708-c00-2a\"");
    o = guarded_out(25);
    cr_assert_eq(http_format_etag(o, 25, 3072, 0x17a2b3c4d5e6f708LL, 42), 0);
    char big[HTTP_ETAG_MAX];
    size_t n = http_format_etag(big, sizeof big, UINT64_MAX, -1, UINT64_MAX);
    cr_assert_eq(n, 52);
    cr_assert_str_eq(big, "\"ffffffffffffffff-ffffffffffffffff-ffffffffffffffff\"");
    cr_assert_eq(http_format_etag(big, sizeof big, 0, 0, 0), 7);
    cr_assert_str_eq(big, "\"0-0-0\"");
}

Test(http_etag, if_none_match)
{
    static const char etag[] = "\"a-b-c\"";
    static const struct { const char *v; bool match; } t[] = {
        { "\"a-b-c\"", true },
        { "W/\"a-b-c\"", true },
        { "\"x\", \"a-b-c\"", true },
        { "\"x\",W/\"a-b-c\" , \"y\"", true },
        { ", ,\"a-b-c\",", true },
        { "*", true },
        { "\"x\"", false },
        { "\"a-b-c-d\"", false },
        { "\"A-B-C\"", false },
        { "a-b-c", false },
        { "\"a-b-c", false },
        { "\"x\" \"a-b-c\"", false },
        { "w/\"a-b-c\"", false },
        { "\"a b\", \"a-b-c\"", false },
        { "", false },
        { "**", false },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        size_t n = strlen(t[i].v);
        cr_assert_eq(http_etag_match_weak(guarded(t[i].v, n), n, etag, sizeof etag - 1), t[i].match,
                     "%s", t[i].v);
    }
    /* our own tag given weak still compares weakly */
    cr_assert(http_etag_match_weak("\"a-b-c\"", 7, "W/\"a-b-c\"", 9));
    cr_assert_not(http_etag_match_weak("\"a-b-c\"", 7, "", 0));
}

Test(http_etag, if_range)
{
    static const char etag[] = "\"a-b-c\"";
    const time_t mtime = 784111777;
    static const struct { const char *v; bool ok; } t[] = {
        { "\"a-b-c\"", true },
        { "W/\"a-b-c\"", false },  /* strong comparison */
        { "\"x\"", false },
        { "\"a-b-c\", \"x\"", false },
        { "Sun, 06 Nov 1994 08:49:37 GMT", true },
        { "Sun, 06 Nov 1994 08:49:38 GMT", false },
        { "Sun, 06 Nov 1994 08:49:36 GMT", false },
        { "Wednesday, 31-Dec-69 23:59:59 GMT", false },
        { "garbage", false },
        { "", false },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        size_t n = strlen(t[i].v);
        cr_assert_eq(http_if_range_ok(guarded(t[i].v, n), n, etag, sizeof etag - 1, mtime), t[i].ok,
                     "%s", t[i].v);
    }
    cr_assert_not(http_if_range_ok("\"a-b-c\"", 7, "W/\"a-b-c\"", 9, mtime));
    /* a date starting with W is a date, not a weak tag */
    cr_assert(http_if_range_ok("Wed, 31 Dec 1969 23:59:59 GMT", 29, etag, 7, -1));
}

Test(http_etag, conditional_requests)
{
    static const char etag[] = "\"a-b-c\"";
    const time_t mtime = 784111777;
    static const struct { const char *req; int want; } t[] = {
        { "GET / HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_COND_SEND },
        { "GET / HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"a-b-c\"\r\n\r\n", HTTP_COND_NOT_MODIFIED },
        { "HEAD / HTTP/1.1\r\nHost: h\r\nIf-None-Match: W/\"a-b-c\"\r\n\r\n",
          HTTP_COND_NOT_MODIFIED },
        { "POST / HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"a-b-c\"\r\n\r\n", HTTP_COND_SEND },
        { "GET / HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"x\"\r\nIf-None-Match: \"a-b-c\"\r\n\r\n",
          HTTP_COND_NOT_MODIFIED },
        /* If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2) */
        { "GET / HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"x\"\r\n"
          "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n", HTTP_COND_SEND },
        { "GET / HTTP/1.1\r\nHost: h\r\nIf-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n",
          HTTP_COND_NOT_MODIFIED },
        { "GET / HTTP/1.1\r\nHost: h\r\nIf-Modified-Since: Mon, 07 Nov 1994 08:49:37 GMT\r\n\r\n",
          HTTP_COND_NOT_MODIFIED },
        { "GET / HTTP/1.1\r\nHost: h\r\nIf-Modified-Since: Sun, 06 Nov 1994 08:49:36 GMT\r\n\r\n",
          HTTP_COND_SEND },
        { "GET / HTTP/1.1\r\nHost: h\r\nIf-Modified-Since: yesterday\r\n\r\n", HTTP_COND_SEND },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        struct http_request r;
        cr_assert_gt(parse(t[i].req, &r), 0, "%s", t[i].req);
        cr_assert_eq(http_eval_conditional(&r, etag, sizeof etag - 1, mtime), t[i].want, "%s",
                     t[i].req);
    }
}

Test(http_etag, request_range)
{
    static const char etag[] = "\"a-b-c\"";
    const time_t mtime = 784111777;
    static const struct { const char *req; int want; uint64_t a, b; } t[] = {
        { "GET / HTTP/1.1\r\nHost: h\r\n\r\n", HTTP_RANGE_NONE, 0, 0 },
        { "GET / HTTP/1.1\r\nHost: h\r\nRange: bytes=10-19\r\n\r\n", HTTP_RANGE_OK, 10, 19 },
        { "HEAD / HTTP/1.1\r\nHost: h\r\nRange: bytes=10-19\r\n\r\n", HTTP_RANGE_NONE, 0, 0 },
        { "GET / HTTP/1.1\r\nHost: h\r\nRange: bytes=10-19\r\nIf-Range: \"a-b-c\"\r\n\r\n",
          HTTP_RANGE_OK, 10, 19 },
        { "GET / HTTP/1.1\r\nHost: h\r\nRange: bytes=10-19\r\nIf-Range: \"old\"\r\n\r\n",
          HTTP_RANGE_NONE, 0, 0 },
        { "GET / HTTP/1.1\r\nHost: h\r\nIf-Range: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
          "Range: bytes=-10\r\n\r\n", HTTP_RANGE_OK, 90, 99 },
        { "GET / HTTP/1.1\r\nHost: h\r\nRange: bytes=100-\r\n\r\n", HTTP_RANGE_UNSATISFIABLE,
          0, 0 },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        struct http_request r;
        uint64_t a = 0, b = 0;
        cr_assert_gt(parse(t[i].req, &r), 0, "%s", t[i].req);
        cr_assert_eq(http_request_range(&r, 100, etag, sizeof etag - 1, mtime, &a, &b), t[i].want,
                     "%s", t[i].req);
        if (t[i].want == HTTP_RANGE_OK) {
            cr_assert_eq(a, t[i].a);
            cr_assert_eq(b, t[i].b);
        }
    }
}

/* ---- content types -------------------------------------------------------------- */

Test(http_mime, table)
{
    static const struct { const char *path, *type; } t[] = {
        { "/index.html", "text/html; charset=utf-8" },
        { "notes.txt", "text/plain; charset=utf-8" },
        { "pxelinux.cfg/default.cfg", "text/plain; charset=utf-8" },
        { "ks/host01.ks", "text/plain; charset=utf-8" },
        { "ks/HOST01.KS", "text/plain; charset=utf-8" },
        { "boot.ipxe", "text/plain; charset=utf-8" },
        { "api/status.json", "application/json" },
        { "ui/app.js", "text/javascript" },
        { "ui/s.css", "text/css" },
        { "ui/logo.svg", "image/svg+xml" },
        { "ui/logo.png", "image/png" },
        { "repodata/repomd.xml", "application/xml" },
        { "Packages/gcc-c++-12.2.0-14.x86_64.rpm", "application/x-rpm" },
        { "images/install.img", "application/octet-stream" },
        { "d.iso", "application/octet-stream" },
        { "EFI/BOOT/BOOTX64.EFI", "application/efi" },
        { "grubx64.efi", "application/efi" },
        { "repodata/primary.xml.gz", "application/gzip" },
        { "x.tar.xz", "application/x-xz" },
        { "x.bz2", "application/x-bzip2" },
        { "repodata/primary.xml.zst", "application/zstd" },
        { "repodata/repomd.xml.sig", "application/pgp-signature" },
        { "images/pxeboot/vmlinuz", "application/octet-stream" },
        { ".treeinfo", "application/octet-stream" },
        { "a.d/.discinfo", "application/octet-stream" },
        { "conf.d/file", "application/octet-stream" },
        { "b.", "application/octet-stream" },
        { "pxelinux.0", "application/octet-stream" },
        { "x.htmlx", "application/octet-stream" },
        { "", "application/octet-stream" },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        cr_assert_str_eq(http_mime_type(t[i].path), t[i].type, "%s", t[i].path);
}

/* ---- response head writer --------------------------------------------------------- */

static void expect_head(const struct http_response_head *h, const char *want)
{
    size_t n = strlen(want);
    char *o = guarded_out(n);
    size_t got = http_write_response_head(o, n, h);
    cr_assert_eq(got, n, "wrote %zu, want %zu: %.*s", got, n, (int)got, o);
    cr_assert_eq(memcmp(o, want, n), 0, "got:\n%.*s\nwant:\n%s", (int)n, o, want);
    /* never a truncated head: every smaller capacity writes nothing */
    for (size_t cap = 0; cap < n; cap++) {
        o = guarded_out(cap);
        cr_assert_eq(http_write_response_head(o, cap, h), 0, "cap %zu", cap);
    }
    /* more room than needed changes nothing */
    char big[1024];
    cr_assert_eq(http_write_response_head(big, sizeof big, h), n);
}

static const char date[] = "Sun, 06 Nov 1994 08:49:37 GMT";

Test(http_write, ok_full)
{
    struct http_response_head h = {
        .status = 200, .content_length = 3072, .content_type = "text/plain; charset=utf-8",
        .has_last_modified = true, .last_modified = 784111777, .etag = "\"abc-c00-7\"",
        .date = date, .keep_alive = true, .accept_ranges = true,
    };
    expect_head(&h, "HTTP/1.1 200 OK\r\n"
                    "Server: bootstorm\r\n"
                    "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                    "Content-Type: text/plain; charset=utf-8\r\n"
                    "Content-Length: 3072\r\n"
                    "Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                    "ETag: \"abc-c00-7\"\r\n"
                    "Accept-Ranges: bytes\r\n"
                    "Connection: keep-alive\r\n"
                    "\r\n");
}

Test(http_write, partial_and_unsatisfiable_over_4g)
{
    struct http_response_head h = {
        .status = 206, .content_length = 999, .content_type = "application/octet-stream",
        .range_first = 4 * GiB, .range_last = 4 * GiB + 65535, .complete_length = 5 * GiB,
        .keep_alive = true, .accept_ranges = true,
    };
    expect_head(&h, "HTTP/1.1 206 Partial Content\r\n"
                    "Server: bootstorm\r\n"
                    "Content-Type: application/octet-stream\r\n"
                    "Content-Length: 65536\r\n"
                    "Content-Range: bytes 4294967296-4295032831/5368709120\r\n"
                    "Accept-Ranges: bytes\r\n"
                    "Connection: keep-alive\r\n"
                    "\r\n");
    struct http_response_head u = {
        .status = 416, .content_length = 0, .complete_length = 5 * GiB, .keep_alive = true,
    };
    expect_head(&u, "HTTP/1.1 416 Range Not Satisfiable\r\n"
                    "Server: bootstorm\r\n"
                    "Content-Length: 0\r\n"
                    "Content-Range: bytes */5368709120\r\n"
                    "Connection: keep-alive\r\n"
                    "\r\n");
    /* inconsistent ranges are refused rather than written */
    char buf[512];
    h.range_first = 10;
    h.range_last = 9;
    cr_assert_eq(http_write_response_head(buf, sizeof buf, &h), 0);
    h.range_first = 0;
    h.range_last = 5 * GiB;
    cr_assert_eq(http_write_response_head(buf, sizeof buf, &h), 0);
}

Test(http_write, not_modified_redirect_errors)
{
    struct http_response_head nm = {
        .status = 304, .content_length = 3072, .etag = "\"e\"", .date = date, .keep_alive = true,
    };
    expect_head(&nm, "HTTP/1.1 304 Not Modified\r\n"
                     "Server: bootstorm\r\n"
                     "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
                     "ETag: \"e\"\r\n"
                     "Connection: keep-alive\r\n"
                     "\r\n");
    struct http_response_head mv = {
        .status = 301, .location = "/images/", .keep_alive = true,
    };
    expect_head(&mv, "HTTP/1.1 301 Moved Permanently\r\n"
                     "Server: bootstorm\r\n"
                     "Content-Length: 0\r\n"
                     "Location: /images/\r\n"
                     "Connection: keep-alive\r\n"
                     "\r\n");
    struct http_response_head bad = {
        .status = 405, .content_length = 19, .content_type = "text/plain; charset=utf-8",
        .extra = "Allow: GET, HEAD\r\nX-Reason: method\r\n",
    };
    expect_head(&bad, "HTTP/1.1 405 Method Not Allowed\r\n"
                      "Server: bootstorm\r\n"
                      "Content-Type: text/plain; charset=utf-8\r\n"
                      "Content-Length: 19\r\n"
                      "Connection: close\r\n"
                      "Allow: GET, HEAD\r\n"
                      "X-Reason: method\r\n"
                      "\r\n");
    struct http_response_head big = { .status = 431, .content_length = 0 };
    expect_head(&big, "HTTP/1.1 431 Request Header Fields Too Large\r\n"
                      "Server: bootstorm\r\n"
                      "Content-Length: 0\r\n"
                      "Connection: close\r\n"
                      "\r\n");
    struct http_response_head odd = { .status = 299, .content_length = 1 };
    expect_head(&odd, "HTTP/1.1 299 \r\n"
                      "Server: bootstorm\r\n"
                      "Content-Length: 1\r\n"
                      "Connection: close\r\n"
                      "\r\n");
    struct http_response_head nc = { .status = 204 };
    expect_head(&nc, "HTTP/1.1 204 No Content\r\nServer: bootstorm\r\nConnection: close\r\n\r\n");
}

Test(http_write, refuses_invalid_fields)
{
    char buf[512];
    struct http_response_head h = { .status = 301, .location = "/a\r\nSet-Cookie: x=1" };
    cr_assert_eq(http_write_response_head(buf, sizeof buf, &h), 0);
    h.location = "/a\nb";
    cr_assert_eq(http_write_response_head(buf, sizeof buf, &h), 0);
    h.location = "/ok";
    cr_assert_gt(http_write_response_head(buf, sizeof buf, &h), 0);
    h.content_type = "text/plain\r\n";
    cr_assert_eq(http_write_response_head(buf, sizeof buf, &h), 0);
    h.content_type = NULL;
    static const char *const bad_extra[] = {
        "Allow: GET", "Allow: GET\n", "Allow: GET\r\n\r\n", "\r\n", "A: b\rc\r\n", "A: \001\r\n",
    };
    for (size_t i = 0; i < sizeof bad_extra / sizeof bad_extra[0]; i++) {
        h.extra = bad_extra[i];
        cr_assert_eq(http_write_response_head(buf, sizeof buf, &h), 0, "extra #%zu", i);
    }
    h.extra = "";
    cr_assert_gt(http_write_response_head(buf, sizeof buf, &h), 0);
    h.extra = NULL;
    h.status = 99;
    cr_assert_eq(http_write_response_head(buf, sizeof buf, &h), 0);
    h.status = 1000;
    cr_assert_eq(http_write_response_head(buf, sizeof buf, &h), 0);
    h.status = 200;
    h.has_last_modified = true;
    h.last_modified = (time_t)253402300800LL;  /* year 10000 has no IMF-fixdate */
    cr_assert_eq(http_write_response_head(buf, sizeof buf, &h), 0);
    cr_assert_str_eq(http_reason(416), "Range Not Satisfiable");
    cr_assert_str_eq(http_reason(599), "");
}
