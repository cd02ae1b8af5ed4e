/* proto/http: a pure HTTP/1.1 request parser and response-header writer.
 *
 * Contract (picohttpparser-like): bytes and a length in, a caller-provided struct
 * out. Every string the parser returns points into the caller's input buffer, so
 * the buffer must outlive the struct. Nothing here allocates, keeps state between
 * calls, or touches a global. Parsing restarts from the beginning of the buffer on
 * every call: on HTTP_PARSE_PARTIAL read more bytes and call again.
 *
 * References: RFC 9110 (semantics), RFC 9112 (HTTP/1.1 message syntax).
 */
#ifndef BOOTSTORM_PROTO_HTTP_H
#define BOOTSTORM_PROTO_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* ---- request parsing ------------------------------------------------------ */

/* http_parse_request() results. Positive values are the bytes consumed. Every
 * negative value except PARTIAL is final: answer with http_parse_status(rc) and
 * close the connection (the framing of what follows cannot be trusted). */
enum http_parse_result {
    HTTP_PARSE_PARTIAL              = -1, /* head incomplete: read more, call again */
    HTTP_PARSE_BAD                  = -2, /* 400: malformed line, header or value */
    HTTP_PARSE_URI_TOO_LONG         = -3, /* 414: request line over the limit */
    HTTP_PARSE_HEADERS_TOO_LARGE    = -4, /* 431: head over the byte limit */
    HTTP_PARSE_TOO_MANY_HEADERS     = -5, /* 431: more header lines than allowed */
    HTTP_PARSE_BAD_VERSION          = -6, /* 505: HTTP major version other than 1 */
    HTTP_PARSE_NOT_IMPLEMENTED      = -7, /* 501: Transfer-Encoding on a request */
};

enum http_method {
    HTTP_METHOD_GET,
    HTTP_METHOD_HEAD,
    HTTP_METHOD_POST,
    HTTP_METHOD_OTHER,  /* any other valid token: see req->method_str (answer 501/405) */
};

enum http_target_form {
    HTTP_TARGET_ORIGIN,    /* /path?query */
    HTTP_TARGET_ABSOLUTE,  /* http://host/path?query (RFC 9112 §3.2.2) */
    HTTP_TARGET_ASTERISK,  /* "*"  (only with a method other than GET/HEAD/POST) */
    HTTP_TARGET_AUTHORITY, /* host:port (CONNECT; only with HTTP_METHOD_OTHER) */
};

/* A byte string inside the parsed buffer; not NUL-terminated. p is NULL and len 0
 * when the item is absent. */
struct http_str {
    const char *p;
    size_t len;
};

struct http_header {
    struct http_str name;   /* token, case as sent */
    struct http_str value;  /* leading/trailing whitespace removed; may be empty */
};

/* Size of the header array in struct http_request: the hard ceiling for
 * http_limits.max_headers. */
#define HTTP_MAX_HEADERS 64

struct http_limits {
    size_t max_request_line;  /* bytes of the request line without CRLF (414) */
    size_t max_head;          /* bytes of the whole head incl. the final empty line (431) */
    size_t max_headers;       /* header lines (431); clamped to HTTP_MAX_HEADERS */
};

/* Defaults; a NULL limits pointer, or a 0 field, means these. */
#define HTTP_DEFAULT_MAX_REQUEST_LINE 8192
#define HTTP_DEFAULT_MAX_HEAD         16384
#define HTTP_DEFAULT_MAX_HEADERS      64
#define HTTP_LIMITS_DEFAULT \
    { HTTP_DEFAULT_MAX_REQUEST_LINE, HTTP_DEFAULT_MAX_HEAD, HTTP_DEFAULT_MAX_HEADERS }

struct http_request {
    enum http_method method;
    struct http_str method_str;
    enum http_target_form target_form;
    struct http_str target;      /* request-target exactly as sent */
    struct http_str path;        /* still percent-encoded; "/" for "http://host" */
    struct http_str query;       /* after '?', without it; p==NULL when no '?' */
    int version_major;           /* always 1 on success */
    int version_minor;           /* 0 or 1 (1.2..1.9 are processed as 1.1, RFC 9110 §2.5) */
    bool keep_alive;             /* RFC 9112 §9.3: 1.1 unless "close";
                                    1.0 only with "keep-alive" */

    /* Well-known fields, first occurrence (p==NULL when absent). */
    struct http_str host;        /* authority of an absolute-form target, else Host */
    struct http_str range;
    struct http_str if_range;
    struct http_str if_modified_since;
    struct http_str if_none_match;
    bool has_content_length;     /* a body follows the head: skip or refuse it */
    uint64_t content_length;

    size_t head_len;             /* bytes of the head, same as the return value */
    size_t num_headers;
    struct http_header headers[HTTP_MAX_HEADERS];
};

/* Parses one request head from buf[0..len). Returns the head's length in bytes
 * (the body, if any, or the next pipelined request starts there) or a negative
 * enum http_parse_result. lim may be NULL (defaults). Tolerates bare LF line ends
 * and empty lines before the request line (RFC 9112 §2.2); rejects control bytes,
 * obs-fold, whitespace before a colon, bare CR, duplicate or missing Host on 1.1,
 * invalid or conflicting Content-Length (RFC 9112 §3.2, §5.1, §5.2, §6.3). */
int http_parse_request(const char *buf, size_t len, struct http_request *req,
                       const struct http_limits *lim);

/* The HTTP status code to answer a final parse error with (400, 414, 431, 505,
 * 501), or 0 for a value that is not an error. */
int http_parse_status(int rc);
/* A short, static, human-readable name for a parse result (for logs). */
const char *http_parse_strerror(int rc);

/* Header lookup, case-insensitive. http_header_next walks every line with this
 * name: prev NULL starts at the first. Both return NULL when there is none. */
const struct http_header *http_header_get(const struct http_request *req, const char *name);
const struct http_header *http_header_next(const struct http_request *req, const char *name,
                                           const struct http_header *prev);
/* True when the comma-separated list v[0..len) holds token (case-insensitive),
 * e.g. http_list_has_token(conn.p, conn.len, "close"). */
bool http_list_has_token(const char *v, size_t len, const char *token);

/* ---- paths ------------------------------------------------------------------ */

enum http_path_result {
    HTTP_PATH_OK            =  0,
    HTTP_PATH_BAD_ESCAPE    = -1, /* '%' not followed by two hex digits */
    HTTP_PATH_NUL           = -2, /* %00 */
    HTTP_PATH_CONTROL       = -3, /* a decoded control byte (%0a, %1b, %7f...) */
    HTTP_PATH_TOO_LONG      = -4, /* output does not fit cap (with its NUL) */
    HTTP_PATH_TRAVERSAL     = -5, /* a ".." segment after decoding */
    HTTP_PATH_NOT_ABSOLUTE  = -6, /* does not start with '/' */
};

/* Decodes %XX exactly once into out (cap bytes, NUL-terminated; *outlen excludes
 * the NUL). '+' stays a literal '+' (paths are not form data: gcc-c++). A decoded
 * '%' is not decoded again, so %252e stays the three bytes "%2e". */
int http_percent_decode_path(const char *in, size_t len, char *out, size_t cap,
                             size_t *outlen);

/* Normalises a decoded absolute path in place: rejects any ".." segment, drops
 * "." and empty segments ("//"), strips the leading '/', NUL-terminates, and sets
 * *is_dir when the path ended with '/' (or "/."). The root becomes "" with
 * *is_dir true. Backslash is an ordinary byte on Linux and stays literal. */
int http_path_normalize(char *path, size_t len, size_t *outlen, bool *is_dir);

/* Decode then normalise: req->path in, a relative NUL-terminated path for
 * openat2(RESOLVE_BENEATH) out. */
int http_path_resolve(const char *in, size_t len, char *out, size_t cap, size_t *outlen,
                      bool *is_dir);

const char *http_path_strerror(int rc);

/* ---- Range (RFC 9110 §14) ---------------------------------------------------- */

enum http_range_result {
    HTTP_RANGE_NONE          = 0, /* no usable range: serve the whole file (200) */
    HTTP_RANGE_OK            = 1, /* *first..*last inclusive (206) */
    HTTP_RANGE_UNSATISFIABLE = 2, /* 416 with Content-Range: bytes * /size */
};

/* One range of "bytes=a-b", "bytes=a-" or "bytes=-n". Multiple ranges, other
 * units and syntax errors give HTTP_RANGE_NONE (RFC 9110 §14.2 lets a server
 * ignore Range). last is clamped to file_size-1; a suffix longer than the file
 * selects all of it. Offsets are 64-bit. */
int http_parse_range(const char *v, size_t len, uint64_t file_size, uint64_t *first,
                     uint64_t *last);

/* ---- dates (RFC 9110 §5.6.7) ------------------------------------------------- */

#define HTTP_DATE_LEN 29   /* "Sun, 06 Nov 1994 08:49:37 GMT" */

enum http_date_result {
    HTTP_DATE_OK      =  0,
    HTTP_DATE_INVALID = -1,
};

/* Writes the IMF-fixdate of t and a NUL (30 bytes). Returns HTTP_DATE_LEN, or 0
 * for a year outside 1..9999. */
size_t http_format_date(time_t t, char out[HTTP_DATE_LEN + 1]);
/* Accepts IMF-fixdate, RFC 850 ("Sunday, 06-Nov-94 08:49:37 GMT"; two-digit
 * years 70-99 are 19xx, 00-69 are 20xx) and asctime ("Sun Nov  6 08:49:37 1994"). */
int http_parse_date(const char *s, size_t len, time_t *out);

/* ---- validators and conditional requests (RFC 9110 §8.8, §13) ----------------- */

#define HTTP_ETAG_MAX 56   /* room for the longest http_format_etag output + NUL */

/* Strong ETag "\"<mtime_ns hex>-<size hex>-<ino hex>\"" into out, NUL-terminated.
 * The inode is part of it because rsync and package tools replace files by
 * rename while keeping size and mtime. Returns its length, or 0 when cap is short. */
size_t http_format_etag(char *out, size_t cap, uint64_t size, int64_t mtime_ns, uint64_t ino);

/* If-None-Match value v against our etag (weak comparison, "*" matches, lists
 * allowed, RFC 9110 §13.1.2). True means "matches": answer 304 to GET/HEAD. A
 * malformed value never matches. */
bool http_etag_match_weak(const char *v, size_t len, const char *etag, size_t etag_len);

/* If-Range value v (an entity-tag compared strongly, or an HTTP-date equal to
 * mtime, RFC 9110 §13.1.5). True means the Range may be honoured. */
bool http_if_range_ok(const char *v, size_t len, const char *etag, size_t etag_len,
                      time_t mtime);

enum http_cond_result {
    HTTP_COND_SEND          = 0, /* send the representation */
    HTTP_COND_NOT_MODIFIED  = 1, /* 304 */
};

/* RFC 9110 §13.2.2 for GET/HEAD: If-None-Match when present, otherwise
 * If-Modified-Since (an invalid date is ignored). */
int http_eval_conditional(const struct http_request *req, const char *etag, size_t etag_len,
                          time_t mtime);

/* Range handling for a request as a whole: only GET honours Range (RFC 9110
 * §14.2), and only when If-Range (if any) holds. Returns enum http_range_result. */
int http_request_range(const struct http_request *req, uint64_t file_size, const char *etag,
                       size_t etag_len, time_t mtime, uint64_t *first, uint64_t *last);

/* ---- content type -------------------------------------------------------------- */

/* Media type by the extension of the last path segment (case-insensitive);
 * application/octet-stream when unknown. Never NULL; a static string. */
const char *http_mime_type(const char *path);

/* ---- response head ------------------------------------------------------------- */

struct http_response_head {
    int status;                 /* 100..999 */
    uint64_t content_length;    /* body bytes (for HEAD: what GET would send);
                                   ignored for 206 (computed), omitted for 1xx/204/304 */
    const char *content_type;   /* NULL: omitted */
    /* 206: range_first..range_last of complete_length -> "bytes a-b/len";
       416: "bytes * /len". Other statuses: no Content-Range. */
    uint64_t range_first, range_last, complete_length;
    bool has_last_modified;
    time_t last_modified;
    const char *etag;           /* NULL: omitted; as formatted, with its quotes */
    const char *location;       /* NULL: omitted (set for 301/302/307/308) */
    const char *date;           /* preformatted http_format_date (cache it per second);
                                   NULL: omitted */
    bool keep_alive;            /* Connection: keep-alive / close */
    bool accept_ranges;         /* Accept-Ranges: bytes */
    const char *extra;          /* NULL or complete lines, each ending in CRLF
                                   (e.g. "Allow: GET, HEAD\r\n") */
};

/* Writes the status line and headers, ending with the empty line, into out.
 * Returns the bytes written, or 0 when cap is too small or a field is invalid
 * (CR/LF in a value, bad status, 206 with first > last): never a truncated head. */
size_t http_write_response_head(char *out, size_t cap, const struct http_response_head *h);

/* Reason phrase for a status code ("" for codes without one in our table). */
const char *http_reason(int status);

#endif
