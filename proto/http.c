/* proto/http: HTTP/1.1 request parser and response-header writer. See http.h. */
#include "proto/http.h"

#include <limits.h>
#include <string.h>

/* ---- character classes ------------------------------------------------------- */

#define CC_TOKEN  1  /* tchar, RFC 9110 §5.6.2 */
#define CC_TARGET 2  /* request-target byte: VCHAR but '#', and obs-text (raw UTF-8) */
#define CC_VALUE  4  /* field-value byte: VCHAR, SP, HTAB, obs-text (RFC 9110 §5.5) */

static const unsigned char cclass[256] = {
    0,0,0,0,0,0,0,0,0,4,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
    4,7,6,5,7,7,7,7,6,6,7,7,6,7,7,6,7,7,7,7,7,7,7,7,7,7,6,6,6,6,6,6,
    6,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,6,6,6,7,7,
    7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,6,7,6,7,0,
    6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,
    6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,
    6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,
    6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,6,
};

static int lower(int c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }
static bool is_digit(int c) { return c >= '0' && c <= '9'; }
static bool is_ows(int c) { return c == ' ' || c == '\t'; }

/* Case-insensitive compare of a[0..n) with the NUL-terminated lower-case s. */
static bool ieq(const char *a, size_t n, const char *s)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (s[i] == '\0' || lower((unsigned char)a[i]) != s[i])
            return false;
    return s[i] == '\0';
}

static bool ieq_any(const char *a, size_t n, const char *s)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (s[i] == '\0' || lower((unsigned char)a[i]) != lower((unsigned char)s[i]))
            return false;
    return s[i] == '\0';
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c = lower(c);
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* ---- request parser ------------------------------------------------------------ */

/* Every limit check is done by the parser on the bytes it has, so an oversized
 * head is refused as soon as it crosses the cap, not when it finally completes. */
static int need_more(size_t len, size_t max_head)
{
    return len >= max_head ? HTTP_PARSE_HEADERS_TOO_LARGE : HTTP_PARSE_PARTIAL;
}

/* Content-Length = 1#DIGIT; a list of identical values is accepted (RFC 9112
 * §6.3 item 5), anything else is invalid framing. */
static bool parse_content_length(const char *v, size_t len, uint64_t *out)
{
    size_t i = 0;
    bool have = false;
    uint64_t first = 0;
    for (;;) {
        uint64_t n = 0;
        size_t start = i;
        while (i < len && is_digit((unsigned char)v[i])) {
            unsigned d = (unsigned)(v[i] - '0');
            if (n > (UINT64_MAX - d) / 10)
                return false;
            n = n * 10 + d;
            i++;
        }
        if (i == start)
            return false;
        if (have && n != first)
            return false;
        first = n;
        have = true;
        while (i < len && is_ows((unsigned char)v[i])) i++;
        if (i == len)
            break;
        if (v[i] != ',')
            return false;
        i++;
        while (i < len && is_ows((unsigned char)v[i])) i++;
    }
    *out = first;
    return true;
}

/* uri-host [":" port] in the characters RFC 3986 allows (reg-name, IP-literal). */
static bool valid_host(const char *v, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if ((lower(c) >= 'a' && lower(c) <= 'z') || is_digit(c))
            continue;
        if (!memchr("-._~!$&'()*+,;=:[]%", c, 19))
            return false;
    }
    return true;
}

/* Splits an origin-form path-and-query at the first '?'. */
static void split_query(const char *p, size_t len, struct http_request *req)
{
    const char *q = memchr(p, '?', len);
    req->path.p = p;
    req->path.len = q ? (size_t)(q - p) : len;
    if (q) {
        req->query.p = q + 1;
        req->query.len = len - req->path.len - 1;
    }
}

static int classify_target(struct http_request *req)
{
    const char *t = req->target.p;
    size_t n = req->target.len;

    if (t[0] == '/') {
        req->target_form = HTTP_TARGET_ORIGIN;
        split_query(t, n, req);
        return 0;
    }
    size_t skip = 0;
    if (n >= 7 && ieq(t, 7, "http://"))
        skip = 7;
    else if (n >= 8 && ieq(t, 8, "https://"))
        skip = 8;
    if (skip) {
        /* absolute-form (RFC 9112 §3.2.2): the authority replaces Host. */
        const char *a = t + skip, *end = t + n, *e = a;
        while (e < end && *e != '/' && *e != '?')
            e++;
        /* empty host is invalid for http(s) (RFC 9110 §4.2.1); userinfo is
         * deprecated and treated as an error (RFC 9110 §4.2.4) */
        if (e == a || memchr(a, '@', (size_t)(e - a)) || !valid_host(a, (size_t)(e - a)))
            return HTTP_PARSE_BAD;
        req->target_form = HTTP_TARGET_ABSOLUTE;
        req->host.p = a;
        req->host.len = (size_t)(e - a);
        if (e < end && *e == '/') {
            split_query(e, (size_t)(end - e), req);
        } else {
            static const char root[] = "/";
            req->path.p = root;
            req->path.len = 1;
            if (e < end) {
                req->query.p = e + 1;
                req->query.len = (size_t)(end - e - 1);
            }
        }
        return 0;
    }
    if (req->method == HTTP_METHOD_OTHER) {
        /* RFC 9112 §3.2.3-4: authority-form only for CONNECT, "*" only for OPTIONS */
        if (n == 1 && t[0] == '*' && req->method_str.len == 7 &&
            memcmp(req->method_str.p, "OPTIONS", 7) == 0) {
            req->target_form = HTTP_TARGET_ASTERISK;
            req->path = req->target;
            return 0;
        }
        if (req->method_str.len == 7 && memcmp(req->method_str.p, "CONNECT", 7) == 0 &&
            valid_host(t, n)) {
            req->target_form = HTTP_TARGET_AUTHORITY;
            return 0;
        }
    }
    return HTTP_PARSE_BAD;
}

int http_parse_request(const char *buf, size_t len, struct http_request *req,
                       const struct http_limits *lim)
{
    size_t max_line = HTTP_DEFAULT_MAX_REQUEST_LINE;
    size_t max_head = HTTP_DEFAULT_MAX_HEAD;
    size_t max_hdrs = HTTP_DEFAULT_MAX_HEADERS;
    if (lim) {
        if (lim->max_request_line) max_line = lim->max_request_line;
        if (lim->max_head) max_head = lim->max_head;
        if (lim->max_headers) max_hdrs = lim->max_headers;
    }
    if (max_hdrs > HTTP_MAX_HEADERS) max_hdrs = HTTP_MAX_HEADERS;
    if (max_head > INT_MAX) max_head = INT_MAX;  /* the result is an int */

    const unsigned char *b = (const unsigned char *)buf;
    size_t n = len < max_head ? len : max_head;   /* never look past the head cap */
    size_t i = 0;
    memset(req, 0, offsetof(struct http_request, headers));

#define NEED(k)                                       \
    do {                                              \
        if (i + (k) > n) return need_more(len, max_head); \
    } while (0)
#define LINE_CAP()                                                 \
    do {                                                           \
        if (i - ls >= max_line) return HTTP_PARSE_URI_TOO_LONG;    \
    } while (0)

    /* RFC 9112 §2.2: ignore empty lines before the request line (they are left
     * over after a body sent with an extra CRLF). They count against max_head. */
    for (;;) {
        NEED(1);
        if (b[i] == '\n') {
            i++;
        } else if (b[i] == '\r') {
            NEED(2);
            if (b[i + 1] != '\n') return HTTP_PARSE_BAD;
            i += 2;
        } else {
            break;
        }
    }

    /* request-line = method SP request-target SP HTTP-version (RFC 9112 §3).
     * Exactly one SP between the parts: lenient whitespace splitting is how
     * front-ends and back-ends come to disagree about a request. */
    size_t ls = i;
    for (;;) {
        NEED(1);
        if (b[i] == ' ') break;
        if (!(cclass[b[i]] & CC_TOKEN)) return HTTP_PARSE_BAD;
        LINE_CAP();
        i++;
    }
    if (i == ls) return HTTP_PARSE_BAD;
    req->method_str.p = buf + ls;
    req->method_str.len = i - ls;
    LINE_CAP();
    i++;

    size_t ts = i;
    for (;;) {
        NEED(1);
        if (b[i] == ' ') break;
        if (!(cclass[b[i]] & CC_TARGET)) return HTTP_PARSE_BAD; /* CTL, NUL, '#', CR/LF (0.9) */
        LINE_CAP();
        i++;
    }
    if (i == ts) return HTTP_PARSE_BAD;
    req->target.p = buf + ts;
    req->target.len = i - ts;
    LINE_CAP();
    i++;

    /* HTTP-version = "HTTP/" DIGIT "." DIGIT (RFC 9112 §2.3), case-sensitive */
    static const char pattern[] = "HTTP/0.0";
    for (size_t k = 0; k < 8; k++) {
        NEED(1);
        int c = b[i];
        if (pattern[k] == '0' ? !is_digit(c) : c != pattern[k]) return HTTP_PARSE_BAD;
        LINE_CAP();
        i++;
    }
    req->version_major = b[i - 3] - '0';
    req->version_minor = b[i - 1] - '0';
    NEED(1);
    if (b[i] == '\r') {
        NEED(2);
        if (b[i + 1] != '\n') return HTTP_PARSE_BAD;
        i += 2;
    } else if (b[i] == '\n') {
        i++;
    } else {
        return HTTP_PARSE_BAD;
    }
    if (req->version_major != 1) return HTTP_PARSE_BAD_VERSION;
    if (req->version_minor > 1) req->version_minor = 1;  /* RFC 9110 §2.5 */

    const char *m = req->method_str.p;
    size_t ml = req->method_str.len;
    if (ml == 3 && memcmp(m, "GET", 3) == 0)       req->method = HTTP_METHOD_GET;
    else if (ml == 4 && memcmp(m, "HEAD", 4) == 0) req->method = HTTP_METHOD_HEAD;
    else if (ml == 4 && memcmp(m, "POST", 4) == 0) req->method = HTTP_METHOD_POST;
    else                                           req->method = HTTP_METHOD_OTHER;
    int rc = classify_target(req);
    if (rc < 0) return rc;

    /* field-line = field-name ":" OWS field-value OWS (RFC 9112 §5) */
    size_t host_count = 0;
    bool conn_close = false, conn_keep = false, has_te = false;
    for (;;) {
        NEED(1);
        if (b[i] == '\n') { i++; break; }
        if (b[i] == '\r') {
            NEED(2);
            if (b[i + 1] != '\n') return HTTP_PARSE_BAD;
            i += 2;
            break;
        }
        /* A line starting with whitespace is obs-fold, or whitespace between the
         * start-line and the first field: reject both (RFC 9112 §2.2, §5.2). */
        if (is_ows(b[i])) return HTTP_PARSE_BAD;
        if (req->num_headers >= max_hdrs) return HTTP_PARSE_TOO_MANY_HEADERS;

        size_t ns = i;
        for (;;) {
            NEED(1);
            if (b[i] == ':') break;
            /* no whitespace between name and colon (RFC 9112 §5.1): not a tchar */
            if (!(cclass[b[i]] & CC_TOKEN)) return HTTP_PARSE_BAD;
            i++;
        }
        if (i == ns) return HTTP_PARSE_BAD;
        size_t ne = i++;
        for (;;) {
            NEED(1);
            if (!is_ows(b[i])) break;
            i++;
        }
        size_t vs = i, ve;
        for (;;) {
            NEED(1);
            if (b[i] == '\n') { ve = i; i++; break; }
            if (b[i] == '\r') {
                NEED(2);
                if (b[i + 1] != '\n') return HTTP_PARSE_BAD;  /* bare CR */
                ve = i;
                i += 2;
                break;
            }
            if (!(cclass[b[i]] & CC_VALUE)) return HTTP_PARSE_BAD; /* NUL, CTL, DEL */
            i++;
        }
        while (ve > vs && is_ows(b[ve - 1])) ve--;

        struct http_header *h = &req->headers[req->num_headers++];
        h->name.p = buf + ns;
        h->name.len = ne - ns;
        h->value.p = buf + vs;
        h->value.len = ve - vs;
        const char *nm = h->name.p, *v = h->value.p;
        size_t nl = h->name.len, vl = h->value.len;

        switch (nl) {
        case 4:
            if (ieq(nm, nl, "host")) {
                /* RFC 9112 §3.2: more than one Host, or an invalid one, is a 400 */
                if (++host_count > 1 || !valid_host(v, vl)) return HTTP_PARSE_BAD;
                if (req->target_form != HTTP_TARGET_ABSOLUTE) req->host = h->value;
            }
            break;
        case 5:
            if (ieq(nm, nl, "range") && !req->range.p) req->range = h->value;
            break;
        case 8:
            if (ieq(nm, nl, "if-range") && !req->if_range.p) req->if_range = h->value;
            break;
        case 10:
            if (ieq(nm, nl, "connection")) {
                if (http_list_has_token(v, vl, "close")) conn_close = true;
                if (http_list_has_token(v, vl, "keep-alive")) conn_keep = true;
            }
            break;
        case 13:
            if (ieq(nm, nl, "if-none-match") && !req->if_none_match.p)
                req->if_none_match = h->value;
            break;
        case 14:
            if (ieq(nm, nl, "content-length")) {
                uint64_t cl;
                if (!parse_content_length(v, vl, &cl)) return HTTP_PARSE_BAD;
                if (req->has_content_length && cl != req->content_length) return HTTP_PARSE_BAD;
                req->has_content_length = true;
                req->content_length = cl;
            }
            break;
        case 17:
            if (ieq(nm, nl, "if-modified-since") && !req->if_modified_since.p)
                req->if_modified_since = h->value;
            else if (ieq(nm, nl, "transfer-encoding"))
                has_te = true;
            break;
        default:
            break;
        }
    }
#undef NEED
#undef LINE_CAP

    /* We never accept request bodies in a transfer coding. RFC 9112 §6.1: a
     * 1.0 message with Transfer-Encoding has faulty framing (400); on 1.1 an
     * unsupported coding is a 501. Either way the connection must close. */
    if (has_te)
        return req->version_minor == 0 ? HTTP_PARSE_BAD : HTTP_PARSE_NOT_IMPLEMENTED;
    if (req->version_minor >= 1 && host_count == 0)  /* RFC 9112 §3.2 */
        return HTTP_PARSE_BAD;

    /* RFC 9112 §9.3 */
    if (req->version_minor >= 1)
        req->keep_alive = !conn_close;
    else
        req->keep_alive = conn_keep && !conn_close;

    req->head_len = i;
    return (int)i;
}

int http_parse_status(int rc)
{
    switch (rc) {
    case HTTP_PARSE_BAD:               return 400;
    case HTTP_PARSE_URI_TOO_LONG:      return 414;
    case HTTP_PARSE_HEADERS_TOO_LARGE: return 431;
    case HTTP_PARSE_TOO_MANY_HEADERS:  return 431;
    case HTTP_PARSE_BAD_VERSION:       return 505;
    case HTTP_PARSE_NOT_IMPLEMENTED:   return 501;
    default:                           return 0;
    }
}

const char *http_parse_strerror(int rc)
{
    if (rc >= 0) return "ok";
    switch (rc) {
    case HTTP_PARSE_PARTIAL:           return "incomplete request head";
    case HTTP_PARSE_BAD:               return "malformed request";
    case HTTP_PARSE_URI_TOO_LONG:      return "request line too long";
    case HTTP_PARSE_HEADERS_TOO_LARGE: return "request head too large";
    case HTTP_PARSE_TOO_MANY_HEADERS:  return "too many header fields";
    case HTTP_PARSE_BAD_VERSION:       return "unsupported HTTP version";
    case HTTP_PARSE_NOT_IMPLEMENTED:   return "transfer coding not implemented";
    default:                           return "unknown parse result";
    }
}

const struct http_header *http_header_next(const struct http_request *req, const char *name,
                                           const struct http_header *prev)
{
    size_t i = prev ? (size_t)(prev - req->headers) + 1 : 0;
    for (; i < req->num_headers; i++)
        if (ieq_any(req->headers[i].name.p, req->headers[i].name.len, name))
            return &req->headers[i];
    return NULL;
}

const struct http_header *http_header_get(const struct http_request *req, const char *name)
{
    return http_header_next(req, name, NULL);
}

bool http_list_has_token(const char *v, size_t len, const char *token)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && (is_ows((unsigned char)v[i]) || v[i] == ',')) i++;
        size_t s = i;
        while (i < len && v[i] != ',') i++;
        size_t e = i;
        while (e > s && is_ows((unsigned char)v[e - 1])) e--;
        if (e > s && ieq_any(v + s, e - s, token))
            return true;
    }
    return false;
}

/* ---- paths ------------------------------------------------------------------------ */

int http_percent_decode_path(const char *in, size_t len, char *out, size_t cap, size_t *outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == '%') {
            if (len - i < 3) return HTTP_PATH_BAD_ESCAPE;
            int hi = hexval((unsigned char)in[i + 1]), lo = hexval((unsigned char)in[i + 2]);
            if (hi < 0 || lo < 0) return HTTP_PATH_BAD_ESCAPE;
            c = (unsigned char)(hi << 4 | lo);
            i += 2;  /* the decoded byte is final: decoding happens exactly once */
        }
        if (c == 0) return HTTP_PATH_NUL;
        /* control bytes have no business in a file name and would forge lines
         * in the access log */
        if (c < 0x20 || c == 0x7f) return HTTP_PATH_CONTROL;
        if (cap - o < 2) return HTTP_PATH_TOO_LONG;  /* keep room for the NUL */
        out[o++] = (char)c;
    }
    if (cap == 0) return HTTP_PATH_TOO_LONG;
    out[o] = '\0';
    *outlen = o;
    return HTTP_PATH_OK;
}

int http_path_normalize(char *path, size_t len, size_t *outlen, bool *is_dir)
{
    if (len == 0 || path[0] != '/') return HTTP_PATH_NOT_ABSOLUTE;
    size_t r = 0, w = 0;
    bool dir = false;
    while (r < len) {
        while (r < len && path[r] == '/') r++;
        if (r == len) { dir = true; break; }
        size_t s = r;
        while (r < len && path[r] != '/') r++;
        size_t sl = r - s;
        if (sl == 1 && path[s] == '.') {
            if (r == len) dir = true;
            continue;
        }
        /* Any "..", even one that would stay inside the root, is refused: no
         * legitimate installer sends one, and refusing is simpler to audit. */
        if (sl == 2 && path[s] == '.' && path[s + 1] == '.') return HTTP_PATH_TRAVERSAL;
        if (w) path[w++] = '/';
        memmove(path + w, path + s, sl);
        w += sl;
    }
    path[w] = '\0';  /* w < len: the leading '/' was dropped */
    *outlen = w;
    *is_dir = dir;
    return HTTP_PATH_OK;
}

int http_path_resolve(const char *in, size_t len, char *out, size_t cap, size_t *outlen,
                      bool *is_dir)
{
    size_t dl;
    int rc = http_percent_decode_path(in, len, out, cap, &dl);
    if (rc != HTTP_PATH_OK) return rc;
    return http_path_normalize(out, dl, outlen, is_dir);
}

const char *http_path_strerror(int rc)
{
    switch (rc) {
    case HTTP_PATH_OK:           return "ok";
    case HTTP_PATH_BAD_ESCAPE:   return "bad percent-escape";
    case HTTP_PATH_NUL:          return "NUL byte in path";
    case HTTP_PATH_CONTROL:      return "control byte in path";
    case HTTP_PATH_TOO_LONG:     return "path too long";
    case HTTP_PATH_TRAVERSAL:    return "'..' segment in path";
    case HTTP_PATH_NOT_ABSOLUTE: return "path does not start with '/'";
    default:                     return "unknown path result";
    }
}

/* ---- Range ------------------------------------------------------------------------ */

/* 1*DIGIT, saturating at UINT64_MAX: a position past any file is still past it,
 * a suffix longer than any file still selects the whole file. */
static size_t parse_u64_sat(const char *v, size_t len, size_t i, uint64_t *out)
{
    uint64_t n = 0;
    size_t s = i;
    while (i < len && is_digit((unsigned char)v[i])) {
        unsigned d = (unsigned)(v[i] - '0');
        n = (n > (UINT64_MAX - d) / 10) ? UINT64_MAX : n * 10 + d;
        i++;
    }
    *out = n;
    return i - s;
}

int http_parse_range(const char *v, size_t len, uint64_t file_size, uint64_t *first,
                     uint64_t *last)
{
    /* ranges-specifier = range-unit "=" range-set; units compare
     * case-insensitively (RFC 9110 §14.1, §14.1.2) */
    if (len < 6 || !ieq(v, 5, "bytes") || v[5] != '=') return HTTP_RANGE_NONE;
    size_t i = 6;
    if (memchr(v + i, ',', len - i)) return HTTP_RANGE_NONE;  /* one range only */

    uint64_t a = 0, z = 0;
    if (i < len && v[i] == '-') {
        /* suffix-range = "-" suffix-length */
        size_t d = parse_u64_sat(v, len, i + 1, &z);
        if (d == 0 || i + 1 + d != len) return HTTP_RANGE_NONE;
        if (z == 0) return HTTP_RANGE_UNSATISFIABLE;
        /* §14.1.1: for a zero-length representation a non-zero suffix is the
         * only satisfiable form, and it selects nothing: send the (empty) 200 */
        if (file_size == 0) return HTTP_RANGE_NONE;
        *first = z >= file_size ? 0 : file_size - z;
        *last = file_size - 1;
        return HTTP_RANGE_OK;
    }
    /* int-range = first-pos "-" [ last-pos ] */
    size_t d = parse_u64_sat(v, len, i, &a);
    if (d == 0) return HTTP_RANGE_NONE;
    i += d;
    if (i >= len || v[i] != '-') return HTTP_RANGE_NONE;
    i++;
    bool has_last = i < len;
    if (has_last) {
        d = parse_u64_sat(v, len, i, &z);
        if (d == 0 || i + d != len) return HTTP_RANGE_NONE;
        if (z < a) return HTTP_RANGE_NONE;  /* invalid range-spec: ignore the field */
    }
    if (a >= file_size) return HTTP_RANGE_UNSATISFIABLE;
    *first = a;
    *last = (!has_last || z >= file_size) ? file_size - 1 : z;
    return HTTP_RANGE_OK;
}

/* ---- dates ------------------------------------------------------------------------ */

static const char wday_short[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
static const char *const wday_long[7] = { "Sunday", "Monday", "Tuesday", "Wednesday",
                                          "Thursday", "Friday", "Saturday" };
static const char month_short[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

static bool leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static int month_days(int64_t y, int m)  /* m 1..12 */
{
    static const unsigned char md[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    return md[m - 1] + (m == 2 && leap(y));
}

/* Days since 1970-01-01 of a proleptic Gregorian date. Counted from 0000-03-01
 * so that the leap day is the last day of each shifted year. */
static int64_t days_from_date(int64_t y, int m, int d)
{
    if (m <= 2) y--;
    int64_t shifted_month = (m + 9) % 12;                    /* Mar=0 .. Feb=11 */
    int64_t doy = (153 * shifted_month + 2) / 5 + d - 1;     /* day of shifted year */
    int64_t days = y * 365 + y / 4 - y / 100 + y / 400 + doy; /* y >= 0: years from 1 */
    return days - 719468;                                    /* 0000-03-01 .. 1970-01-01 */
}

static void date_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;       /* 400-year cycles */
    int64_t doe = z - era * 146097;                          /* 0..146096 */
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static void put2(char *o, int v) { o[0] = (char)('0' + v / 10); o[1] = (char)('0' + v % 10); }

size_t http_format_date(time_t t, char out[HTTP_DATE_LEN + 1])
{
    int64_t s = (int64_t)t;
    int64_t days = s / 86400, rem = s % 86400;
    if (rem < 0) { rem += 86400; days--; }
    int64_t y;
    int m, d;
    date_from_days(days, &y, &m, &d);
    if (y < 1 || y > 9999) return 0;
    int wd = (int)(((days % 7) + 11) % 7);  /* 1970-01-01 was a Thursday (4) */
    memcpy(out, wday_short[wd], 3);
    out[3] = ',';
    out[4] = ' ';
    put2(out + 5, d);
    out[7] = ' ';
    memcpy(out + 8, month_short[m - 1], 3);
    out[11] = ' ';
    put2(out + 12, (int)(y / 100));
    put2(out + 14, (int)(y % 100));
    out[16] = ' ';
    put2(out + 17, (int)(rem / 3600));
    out[19] = ':';
    put2(out + 20, (int)(rem / 60 % 60));
    out[22] = ':';
    put2(out + 23, (int)(rem % 60));
    memcpy(out + 25, " GMT", 5);  /* with the NUL */
    return HTTP_DATE_LEN;
}

static int num_n(const char *s, size_t k)  /* exactly k digits, else -1 */
{
    int v = 0;
    for (size_t i = 0; i < k; i++) {
        if (!is_digit((unsigned char)s[i])) return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static int month_of(const char *s)  /* 1..12 or -1; case-sensitive (§5.6.7) */
{
    for (int i = 0; i < 12; i++)
        if (memcmp(s, month_short[i], 3) == 0) return i + 1;
    return -1;
}

static bool is_wday_short(const char *s)
{
    for (int i = 0; i < 7; i++)
        if (memcmp(s, wday_short[i], 3) == 0) return true;
    return false;
}

/* "HH:MM:SS" */
static bool parse_hms(const char *s, int *h, int *mi, int *se)
{
    if (s[2] != ':' || s[5] != ':') return false;
    *h = num_n(s, 2);
    *mi = num_n(s + 3, 2);
    *se = num_n(s + 6, 2);
    return *h >= 0 && *h <= 23 && *mi >= 0 && *mi <= 59 && *se >= 0 && *se <= 60;
}

int http_parse_date(const char *s, size_t len, time_t *out)
{
    int64_t y;
    int mo, d, h, mi, se;

    if (len == 29 && s[3] == ',') {
        /* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
        if (!is_wday_short(s) || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
            memcmp(s + 25, " GMT", 4) != 0)
            return HTTP_DATE_INVALID;
        d = num_n(s + 5, 2);
        mo = month_of(s + 8);
        y = num_n(s + 12, 4);
        if (!parse_hms(s + 17, &h, &mi, &se)) return HTTP_DATE_INVALID;
    } else if (len == 24 && s[3] == ' ') {
        /* asctime: "Sun Nov  6 08:49:37 1994" */
        if (!is_wday_short(s) || s[7] != ' ' || s[10] != ' ' || s[19] != ' ')
            return HTTP_DATE_INVALID;
        mo = month_of(s + 4);
        d = s[8] == ' ' ? num_n(s + 9, 1) : num_n(s + 8, 2);
        if (!parse_hms(s + 11, &h, &mi, &se)) return HTTP_DATE_INVALID;
        y = num_n(s + 20, 4);
    } else {
        /* RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT" */
        int wd = -1;
        size_t wl = 0;
        for (int i = 0; i < 7; i++) {
            size_t l = strlen(wday_long[i]);
            if (len > l && memcmp(s, wday_long[i], l) == 0 && s[l] == ',') {
                wd = i;
                wl = l;
                break;
            }
        }
        if (wd < 0 || len != wl + 24) return HTTP_DATE_INVALID;
        const char *p = s + wl + 1;  /* " 06-Nov-94 08:49:37 GMT" */
        if (p[0] != ' ' || p[3] != '-' || p[7] != '-' || p[10] != ' ' ||
            memcmp(p + 19, " GMT", 4) != 0)
            return HTTP_DATE_INVALID;
        d = num_n(p + 1, 2);
        mo = month_of(p + 4);
        int yy = num_n(p + 8, 2);
        if (yy < 0) return HTTP_DATE_INVALID;
        /* RFC 9110 §5.6.7 wants "more than 50 years in the future" resolved
         * against the clock; a pure parser has none, so pivot at 1970. */
        y = yy < 70 ? 2000 + yy : 1900 + yy;
        if (!parse_hms(p + 11, &h, &mi, &se)) return HTTP_DATE_INVALID;
    }
    if (y < 1 || mo < 1 || d < 1 || d > month_days(y, mo)) return HTTP_DATE_INVALID;
    *out = (time_t)(days_from_date(y, mo, d) * 86400 + h * 3600 + mi * 60 + se);
    return HTTP_DATE_OK;
}

/* ---- validators ----------------------------------------------------------------- */

static size_t put_hex(char *o, uint64_t v)
{
    char tmp[16];
    size_t n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    for (size_t i = 0; i < n; i++) o[i] = tmp[n - 1 - i];
    return n;
}

size_t http_format_etag(char *out, size_t cap, uint64_t size, int64_t mtime_ns, uint64_t ino)
{
    char tmp[HTTP_ETAG_MAX];
    size_t n = 0;
    tmp[n++] = '"';
    n += put_hex(tmp + n, (uint64_t)mtime_ns);
    tmp[n++] = '-';
    n += put_hex(tmp + n, size);
    tmp[n++] = '-';
    n += put_hex(tmp + n, ino);
    tmp[n++] = '"';
    if (cap < n + 1) return 0;
    memcpy(out, tmp, n);
    out[n] = '\0';
    return n;
}

/* entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE (RFC 9110 §8.8.3). On success
 * (*op, *ol) is the opaque-tag including its quotes, and the index after it. */
static size_t parse_etag(const char *v, size_t len, size_t i, bool *weak, const char **op,
                         size_t *ol)
{
    *weak = false;
    if (len - i >= 2 && v[i] == 'W' && v[i + 1] == '/') {
        *weak = true;
        i += 2;
    }
    if (i >= len || v[i] != '"') return 0;
    size_t s = i++;
    while (i < len && v[i] != '"') {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x21 || c == 0x7f) return 0;  /* etagc = %x21 / %x23-7E / obs-text */
        i++;
    }
    if (i >= len) return 0;
    i++;
    *op = v + s;
    *ol = i - s;
    return i;
}

/* Our own tag's opaque part (it may be given with or without W/). */
static bool own_opaque(const char *etag, size_t etag_len, bool *weak, const char **op,
                       size_t *ol)
{
    return etag && etag_len > 0 && parse_etag(etag, etag_len, 0, weak, op, ol) == etag_len;
}

bool http_etag_match_weak(const char *v, size_t len, const char *etag, size_t etag_len)
{
    bool ow, tw;
    const char *oo, *to;
    size_t ol, tl;
    if (len == 1 && v[0] == '*') return true;
    if (!own_opaque(etag, etag_len, &ow, &oo, &ol)) return false;
    size_t i = 0;
    bool any = false, match = false;
    for (;;) {
        while (i < len && (is_ows((unsigned char)v[i]) || v[i] == ',')) i++;
        if (i == len) break;
        size_t e = parse_etag(v, len, i, &tw, &to, &tl);
        if (e == 0) return false;  /* malformed list: no match (serve normally) */
        any = true;
        if (tl == ol && memcmp(to, oo, ol) == 0) match = true;
        i = e;
        while (i < len && is_ows((unsigned char)v[i])) i++;
        if (i < len && v[i] != ',') return false;
    }
    return any && match;
}

bool http_if_range_ok(const char *v, size_t len, const char *etag, size_t etag_len,
                      time_t mtime)
{
    if (len == 0) return false;
    if (v[0] == '"' || (len >= 2 && v[0] == 'W' && v[1] == '/')) {  /* not "Wed, ..." */
        /* strong comparison (RFC 9110 §8.8.3.2): neither tag may be weak */
        bool ow, tw;
        const char *oo, *to;
        size_t ol, tl;
        if (!own_opaque(etag, etag_len, &ow, &oo, &ol)) return false;
        if (parse_etag(v, len, 0, &tw, &to, &tl) != len) return false;
        return !ow && !tw && tl == ol && memcmp(to, oo, ol) == 0;
    }
    time_t t;
    /* RFC 9110 §13.1.5: a date must exactly match Last-Modified */
    return http_parse_date(v, len, &t) == HTTP_DATE_OK && t == mtime;
}

int http_eval_conditional(const struct http_request *req, const char *etag, size_t etag_len,
                          time_t mtime)
{
    if (req->method != HTTP_METHOD_GET && req->method != HTTP_METHOD_HEAD)
        return HTTP_COND_SEND;
    if (req->if_none_match.p) {
        /* If-None-Match takes precedence; If-Modified-Since is then ignored */
        for (const struct http_header *h = http_header_get(req, "If-None-Match"); h;
             h = http_header_next(req, "If-None-Match", h))
            if (http_etag_match_weak(h->value.p, h->value.len, etag, etag_len))
                return HTTP_COND_NOT_MODIFIED;
        return HTTP_COND_SEND;
    }
    time_t ims;
    if (req->if_modified_since.p &&
        http_parse_date(req->if_modified_since.p, req->if_modified_since.len, &ims) ==
            HTTP_DATE_OK &&
        mtime <= ims)
        return HTTP_COND_NOT_MODIFIED;
    return HTTP_COND_SEND;
}

int http_request_range(const struct http_request *req, uint64_t file_size, const char *etag,
                       size_t etag_len, time_t mtime, uint64_t *first, uint64_t *last)
{
    if (req->method != HTTP_METHOD_GET || !req->range.p) return HTTP_RANGE_NONE;
    if (req->if_range.p &&
        !http_if_range_ok(req->if_range.p, req->if_range.len, etag, etag_len, mtime))
        return HTTP_RANGE_NONE;
    return http_parse_range(req->range.p, req->range.len, file_size, first, last);
}

/* ---- content types ---------------------------------------------------------------- */

const char *http_mime_type(const char *path)
{
    static const struct { const char *ext, *type; } types[] = {
        { "html", "text/html; charset=utf-8" },
        { "htm",  "text/html; charset=utf-8" },
        { "txt",  "text/plain; charset=utf-8" },
        { "cfg",  "text/plain; charset=utf-8" },
        { "ks",   "text/plain; charset=utf-8" },
        { "ipxe", "text/plain; charset=utf-8" },
        { "json", "application/json" },
        { "js",   "text/javascript" },
        { "css",  "text/css" },
        { "svg",  "image/svg+xml" },
        { "png",  "image/png" },
        { "xml",  "application/xml" },
        { "rpm",  "application/x-rpm" },
        { "img",  "application/octet-stream" },
        { "iso",  "application/octet-stream" },
        { "efi",  "application/efi" },  /* UEFI HTTP boot checks it */
        { "gz",   "application/gzip" },
        { "xz",   "application/x-xz" },
        { "bz2",  "application/x-bzip2" },
        { "zst",  "application/zstd" },
        { "sig",  "application/pgp-signature" },
    };
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    if (dot && dot != base) {  /* ".treeinfo" is a name, not an extension */
        size_t el = strlen(dot + 1);
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (ieq_any(dot + 1, el, types[i].ext)) return types[i].type;
    }
    return "application/octet-stream";
}

/* ---- response head ---------------------------------------------------------------- */

const char *http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default:  return "";
    }
}

struct wbuf {
    char *p;
    size_t cap, len;
    bool fail;
};

static void put(struct wbuf *w, const char *s, size_t n)
{
    if (w->fail || n > w->cap - w->len) {
        w->fail = true;
        return;
    }
    memcpy(w->p + w->len, s, n);
    w->len += n;
}

static void put_s(struct wbuf *w, const char *s) { put(w, s, strlen(s)); }

static void put_u64(struct wbuf *w, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[sizeof tmp - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(w, tmp + sizeof tmp - n, n);
}

static void put_field(struct wbuf *w, const char *name, const char *value)
{
    put_s(w, name);
    put_s(w, value);
    put(w, "\r\n", 2);
}

/* A header value we emit must not smuggle in a line break (response splitting). */
static bool safe_value(const char *v)
{
    for (; *v; v++)
        if (((unsigned char)*v < 0x20 && *v != '\t') || *v == 0x7f) return false;
    return true;
}

/* extra: zero or more non-empty lines, each ending CRLF, no bare CR or LF. */
static bool safe_lines(const char *v)
{
    size_t line = 0;
    for (; *v; v++) {
        if (*v == '\r') {
            if (v[1] != '\n' || line == 0) return false;
            v++;
            line = 0;
        } else if (*v == '\n' || ((unsigned char)*v < 0x20 && *v != '\t') || *v == 0x7f) {
            return false;
        } else {
            line++;
        }
    }
    return line == 0;
}

size_t http_write_response_head(char *out, size_t cap, const struct http_response_head *h)
{
    int st = h->status;
    if (st < 100 || st > 999) return 0;
    if ((h->content_type && !safe_value(h->content_type)) || (h->etag && !safe_value(h->etag)) ||
        (h->location && !safe_value(h->location)) || (h->date && !safe_value(h->date)) ||
        (h->extra && !safe_lines(h->extra)))
        return 0;
    if (st == 206 && (h->range_first > h->range_last || h->range_last >= h->complete_length))
        return 0;

    struct wbuf w = { out, cap, 0, false };
    char code[4] = { (char)('0' + st / 100), (char)('0' + st / 10 % 10), (char)('0' + st % 10), 0 };
    put_s(&w, "HTTP/1.1 ");
    put_s(&w, code);
    put(&w, " ", 1);
    put_s(&w, http_reason(st));
    put_s(&w, "\r\nServer: bootstorm\r\n");
    if (h->date) put_field(&w, "Date: ", h->date);
    if (h->content_type) put_field(&w, "Content-Type: ", h->content_type);
    /* RFC 9110 §8.6: never in 1xx/204; we leave it out of 304 as well, which has
     * no body and for which it is optional */
    if (st >= 200 && st != 204 && st != 304) {
        put_s(&w, "Content-Length: ");
        put_u64(&w, st == 206 ? h->range_last - h->range_first + 1 : h->content_length);
        put(&w, "\r\n", 2);
    }
    if (st == 206) {  /* RFC 9110 §14.4 */
        put_s(&w, "Content-Range: bytes ");
        put_u64(&w, h->range_first);
        put(&w, "-", 1);
        put_u64(&w, h->range_last);
        put(&w, "/", 1);
        put_u64(&w, h->complete_length);
        put(&w, "\r\n", 2);
    } else if (st == 416) {
        put_s(&w, "Content-Range: bytes */");
        put_u64(&w, h->complete_length);
        put(&w, "\r\n", 2);
    }
    if (h->has_last_modified) {
        char d[HTTP_DATE_LEN + 1];
        if (http_format_date(h->last_modified, d) == 0) return 0;
        put_field(&w, "Last-Modified: ", d);
    }
    if (h->etag) put_field(&w, "ETag: ", h->etag);
    if (h->accept_ranges) put_s(&w, "Accept-Ranges: bytes\r\n");
    if (h->location) put_field(&w, "Location: ", h->location);
    put_s(&w, h->keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n");
    if (h->extra) put_s(&w, h->extra);
    put(&w, "\r\n", 2);
    return w.fail ? 0 : w.len;
}
