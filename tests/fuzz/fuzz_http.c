/* libFuzzer target for proto/http: the request parser (with pipelining and the
 * prefix property), path decoding and normalisation, Range, dates, validators,
 * content types and the response writer. Inputs are copied into exact-size heap
 * buffers so that ASan sees any read past the end. Invariant violations trap. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/http.h"

#define CHECK(c)                                   \
    do {                                           \
        if (!(c)) __builtin_trap();                \
    } while (0)

static char *dup_exact(const char *p, size_t n)
{
    char *b = malloc(n ? n : 1);
    if (n) memcpy(b, p, n);
    return b;
}

static char *dup_cstr(const char *p, size_t n)
{
    char *b = malloc(n + 1);
    memcpy(b, p, n);
    b[n] = '\0';
    return b;
}

static void check_in(struct http_str s, const char *buf, size_t len)
{
    if (!s.p) {
        CHECK(s.len == 0);
        return;
    }
    uintptr_t p = (uintptr_t)s.p, b = (uintptr_t)buf;
    CHECK(p >= b && s.len <= len && p - b <= len - s.len);
}

static const uint64_t sizes[] = { 0, 1, 1000, 5ULL << 30, UINT64_MAX };

static void fuzz_range(const char *v, size_t len)
{
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint64_t a = 0, z = 0;
        int rc = http_parse_range(v, len, sizes[i], &a, &z);
        CHECK(rc == HTTP_RANGE_NONE || rc == HTTP_RANGE_OK || rc == HTTP_RANGE_UNSATISFIABLE);
        if (rc == HTTP_RANGE_OK) CHECK(a <= z && z < sizes[i]);
    }
}

static void fuzz_date(const char *v, size_t len)
{
    time_t t;
    if (http_parse_date(v, len, &t) != HTTP_DATE_OK) return;
    char s[HTTP_DATE_LEN + 1], s2[HTTP_DATE_LEN + 1];
    CHECK(http_format_date(t, s) == HTTP_DATE_LEN);
    CHECK(strlen(s) == HTTP_DATE_LEN);
    time_t back;
    CHECK(http_parse_date(s, HTTP_DATE_LEN, &back) == HTTP_DATE_OK && back == t);
    CHECK(http_format_date(back, s2) == HTTP_DATE_LEN && memcmp(s, s2, sizeof s) == 0);
}

static void fuzz_path(const char *v, size_t len)
{
    size_t cap = len + 1;
    char *out = malloc(cap);
    size_t ol;
    bool dir;
    int rc = http_path_resolve(v, len, out, cap, &ol, &dir);
    CHECK(rc <= HTTP_PATH_OK && rc >= HTTP_PATH_NOT_ABSOLUTE);
    CHECK(*http_path_strerror(rc));
    if (rc == HTTP_PATH_OK) {
        CHECK(ol < len && strlen(out) == ol);
        CHECK(ol == 0 || (out[0] != '/' && out[ol - 1] != '/'));
        CHECK(!strstr(out, "//"));
        for (size_t i = 0; i < ol; i++) CHECK((unsigned char)out[i] >= 0x20 && out[i] != 0x7f);
        /* no "." or ".." segment survives */
        for (char *s = out; *s;) {
            char *e = strchr(s, '/');
            size_t sl = e ? (size_t)(e - s) : strlen(s);
            CHECK(!(sl == 1 && s[0] == '.') && !(sl == 2 && s[0] == '.' && s[1] == '.'));
            s += sl + (e != NULL);
        }
        /* normalising the result again changes nothing */
        char *again = malloc(ol + 2);
        again[0] = '/';
        memcpy(again + 1, out, ol + 1);
        size_t al;
        bool adir;
        CHECK(http_path_normalize(again, ol + 1, &al, &adir) == HTTP_PATH_OK);
        CHECK(al == ol && memcmp(again, out, ol + 1) == 0);
        free(again);
        const char *mt = http_mime_type(out);
        CHECK(mt && *mt);
    }
    /* a too-small output buffer is refused, never overrun */
    if (len > 0) {
        char *small = malloc(len / 2 + 1);
        size_t sl;
        (void)http_percent_decode_path(v, len, small, len / 2 + 1, &sl);
        free(small);
    }
    free(out);
}

static void fuzz_validators(const char *v, size_t len)
{
    char etag[HTTP_ETAG_MAX];
    size_t el = http_format_etag(etag, sizeof etag, len, (int64_t)len * 1000003, 7);
    CHECK(el > 0 && strlen(etag) == el);
    (void)http_etag_match_weak(v, len, etag, el);
    (void)http_etag_match_weak(v, len, "W/\"x\"", 5);
    (void)http_if_range_ok(v, len, etag, el, 0);
    (void)http_list_has_token(v, len, "close");
    CHECK(http_etag_match_weak(etag, el, etag, el));
    CHECK(http_if_range_ok(etag, el, etag, el, 0));
}

static void fuzz_writer(const struct http_request *req, const char *path_cstr)
{
    char etag[HTTP_ETAG_MAX];
    http_format_etag(etag, sizeof etag, 123, 456, 789);
    uint64_t a = 0, z = 0;
    int rr = http_request_range(req, 5ULL << 30, etag, strlen(etag), 784111777, &a, &z);
    int cond = http_eval_conditional(req, etag, strlen(etag), 784111777);
    CHECK(cond == HTTP_COND_SEND || cond == HTTP_COND_NOT_MODIFIED);
    struct http_response_head h = {
        .status = rr == HTTP_RANGE_OK ? 206 : rr == HTTP_RANGE_UNSATISFIABLE ? 416
                  : cond == HTTP_COND_NOT_MODIFIED ? 304 : 301,
        .content_length = 5ULL << 30,
        .content_type = http_mime_type(path_cstr),
        .range_first = a, .range_last = z, .complete_length = 5ULL << 30,
        .has_last_modified = true, .last_modified = 784111777,
        .etag = etag, .location = path_cstr, .keep_alive = req->keep_alive,
        .accept_ranges = true,
    };
    char big[8192];
    size_t n = http_write_response_head(big, sizeof big, &h);
    if (n == 0) return;  /* e.g. a path that cannot be a Location */
    CHECK(n >= 4 && memcmp(big + n - 4, "\r\n\r\n", 4) == 0);
    char *exact = malloc(n);
    CHECK(http_write_response_head(exact, n, &h) == n && memcmp(exact, big, n) == 0);
    CHECK(http_write_response_head(exact, n - 1, &h) == 0);
    free(exact);
}

static void fuzz_request(const char *buf, size_t len, const struct http_limits *lim)
{
    struct http_request req;
    size_t off = 0;
    for (int k = 0; k < 8 && off < len; k++) {
        const char *p = buf + off;
        size_t n = len - off;
        int rc = http_parse_request(p, n, &req, lim);
        if (rc <= 0) {
            CHECK(rc >= HTTP_PARSE_NOT_IMPLEMENTED);
            CHECK(*http_parse_strerror(rc));
            CHECK(http_parse_status(rc) != 0 || rc == HTTP_PARSE_PARTIAL);
            return;
        }
        size_t used = (size_t)rc;
        CHECK(used <= n && req.head_len == used);
        CHECK(req.num_headers <= HTTP_MAX_HEADERS);
        CHECK(req.version_major == 1 && (req.version_minor == 0 || req.version_minor == 1));
        check_in(req.method_str, p, used);
        check_in(req.target, p, used);
        check_in(req.query, p, used);
        check_in(req.host, p, used);
        check_in(req.range, p, used);
        check_in(req.if_range, p, used);
        check_in(req.if_modified_since, p, used);
        check_in(req.if_none_match, p, used);
        if (!(req.path.len == 1 && req.path.p[0] == '/')) check_in(req.path, p, used);
        for (size_t i = 0; i < req.num_headers; i++) {
            check_in(req.headers[i].name, p, used);
            check_in(req.headers[i].value, p, used);
            CHECK(req.headers[i].name.len > 0);
        }
        /* the prefix property: one byte less is never a complete head */
        char *pre = dup_exact(p, used - 1);
        struct http_request r2;
        CHECK(http_parse_request(pre, used - 1, &r2, lim) == HTTP_PARSE_PARTIAL);
        free(pre);

        if (req.path.p) {
            fuzz_path(req.path.p, req.path.len);
            char *pc = dup_cstr(req.path.p, req.path.len);
            fuzz_writer(&req, pc);
            free(pc);
        }
        if (req.range.p) fuzz_range(req.range.p, req.range.len);
        if (req.if_modified_since.p) fuzz_date(req.if_modified_since.p, req.if_modified_since.len);
        if (req.if_range.p) fuzz_validators(req.if_range.p, req.if_range.len);
        if (req.if_none_match.p) fuzz_validators(req.if_none_match.p, req.if_none_match.len);

        off += used;
        if (req.has_content_length) {
            if (req.content_length > len - off) return;
            off += (size_t)req.content_length;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536) return 0;
    char *buf = dup_exact((const char *)data, size);

    fuzz_request(buf, size, NULL);
    const struct http_limits small = { 48, 200, 6 };
    fuzz_request(buf, size, &small);

    /* the helpers on the raw bytes as well */
    fuzz_range(buf, size);
    fuzz_date(buf, size);
    fuzz_path(buf, size);
    fuzz_validators(buf, size);
    char *c = dup_cstr(buf, size);
    CHECK(http_mime_type(c) != NULL);
    /* the raw bytes as the writer's extra lines and as a Location */
    static const int statuses[] = { 200, 204, 206, 301, 304, 400, 404, 416, 431, 503, 599 };
    struct http_response_head h = {
        .status = statuses[size % (sizeof statuses / sizeof statuses[0])],
        .content_length = size, .range_first = (size & 4) ? size + 1 : 0, .range_last = size,
        .complete_length = size + 1,
        .extra = c, .location = size & 1 ? c : NULL, .keep_alive = size & 2,
    };
    char out[1024];
    size_t n = http_write_response_head(out, sizeof out, &h);
    CHECK(n == 0 || (n >= 4 && memcmp(out + n - 4, "\r\n\r\n", 4) == 0));
    free(c);
    CHECK(*http_reason(h.status) || h.status == 599);

    free(buf);
    return 0;
}
