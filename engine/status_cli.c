/* engine/status_cli.c — see status_cli.h. */
#include "engine/status_cli.h"
#include "engine/options.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RESPONSE_MAX (64u << 20) /* 64 MiB: far beyond 10000 hosts */
#define JSON_DEPTH_MAX 32

/* ---- URL ------------------------------------------------------------------ */

int status_parse_url(const char *url, char *host, size_t hostlen, uint16_t *port, char *prefix, size_t prefixlen,
                     char *err, size_t errlen)
{
    if (!strncasecmp(url, "https://", 8)) {
        snprintf(err, errlen, "--server %s: https is not spoken here; use http://", url);
        return -EINVAL;
    }
    if (strncasecmp(url, "http://", 7) != 0) {
        snprintf(err, errlen, "--server %s: not an http:// URL", url);
        return -EINVAL;
    }
    const char *h = url + 7, *end = h + strcspn(h, "/?#");
    const char *colon = memchr(h, ':', (size_t)(end - h));
    const char *hend = colon ? colon : end;
    if (hend == h || (size_t)(hend - h) >= hostlen || memchr(h, '@', (size_t)(end - h))) {
        snprintf(err, errlen, "--server %s: no host, or one that is too long", url);
        return -EINVAL;
    }
    memcpy(host, h, (size_t)(hend - h));
    host[hend - h] = 0;
    *port = 80;
    if (colon) {
        unsigned long p = 0;
        const char *c = colon + 1;
        if (c == end)
            goto bad_port;
        for (; c < end; c++) {
            if (!isdigit((unsigned char)*c) || (p = p * 10 + (unsigned long)(*c - '0')) > 65535)
                goto bad_port;
        }
        if (!p)
            goto bad_port;
        *port = (uint16_t)p;
    }
    size_t plen = *end == '/' ? strcspn(end, "?#") : 0;
    while (plen && end[plen - 1] == '/')
        plen--;
    if (plen >= prefixlen) {
        snprintf(err, errlen, "--server %s: path too long", url);
        return -EINVAL;
    }
    memcpy(prefix, end, plen);
    prefix[plen] = 0;
    return 0;
bad_port:
    snprintf(err, errlen, "--server %s: not a port (1-65535)", url);
    return -EINVAL;
}

/* ---- HTTP/1.1 GET over a plain socket -------------------------------------- */

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Waits for fd to be ready (POLLIN/POLLOUT) until the deadline. */
static int wait_fd(int fd, short ev, uint64_t deadline)
{
    for (;;) {
        uint64_t now = mono_ms();
        if (now >= deadline)
            return -ETIMEDOUT;
        struct pollfd p = {fd, ev, 0};
        int n = poll(&p, 1, (int)(deadline - now));
        if (n > 0)
            return 0;
        if (n == 0)
            return -ETIMEDOUT;
        if (errno != EINTR)
            return -errno;
    }
}

static int dial(const char *host, uint16_t port, char *err, size_t errlen)
{
    char ps[8];
    snprintf(ps, sizeof(ps), "%u", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int g = getaddrinfo(host, ps, &hints, &res);
    if (g != 0) {
        snprintf(err, errlen, "%s: %s", host, gai_strerror(g));
        return -EHOSTUNREACH;
    }
    int rc = -ECONNREFUSED;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            rc = -errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ||
            (errno == EINPROGRESS && (rc = wait_fd(fd, POLLOUT, mono_ms() + STATUS_TIMEOUT_MS)) == 0)) {
            int soerr = 0;
            socklen_t l = sizeof(soerr);
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &l);
            if (!soerr) {
                freeaddrinfo(res);
                return fd;
            }
            rc = -soerr;
        } else if (errno != EINPROGRESS) {
            rc = -errno;
        }
        close(fd);
    }
    freeaddrinfo(res);
    snprintf(err, errlen, "%s:%u: %s", host, port, strerror(-rc));
    return rc;
}

/* Undoes chunked transfer coding (RFC 9112 §7.1) in place; false if malformed. */
static bool dechunk(char *b, size_t len, size_t *out)
{
    size_t r = 0, w = 0;
    for (;;) {
        char *eol = memmem(b + r, len - r, "\r\n", 2);
        if (!eol)
            return false;
        char *end;
        errno = 0;
        unsigned long long n = strtoull(b + r, &end, 16);
        if (end == b + r || errno || (*end != '\r' && *end != ';'))
            return false;
        r = (size_t)(eol - b) + 2;
        if (n == 0) {
            *out = w;
            return true;
        }
        if (n > len - r || len - r - n < 2 || memcmp(b + r + n, "\r\n", 2) != 0)
            return false;
        memmove(b + w, b + r, n);
        w += n;
        r += n + 2;
    }
}

/* GET prefix+path; the body (malloc'd, NUL-terminated) or NULL with err. */
static char *http_get(const char *host, uint16_t port, const char *prefix, const char *path, size_t *blen,
                      char *err, size_t errlen)
{
    int fd = dial(host, port, err, errlen);
    if (fd < 0)
        return NULL;
    char req[1024];
    int n = snprintf(req, sizeof(req),
                     "GET %s%s HTTP/1.1\r\nHost: %s:%u\r\nUser-Agent: bootstorm-status\r\nAccept: application/json\r\n"
                     "Connection: close\r\n\r\n",
                     prefix, path, host, port);
    uint64_t deadline = mono_ms() + STATUS_TIMEOUT_MS;
    for (int off = 0; off < n;) {
        ssize_t w = send(fd, req + off, (size_t)(n - off), MSG_NOSIGNAL);
        if (w > 0) {
            off += (int)w;
            continue;
        }
        int e = w < 0 ? errno : EPIPE;
        if (e == EAGAIN && wait_fd(fd, POLLOUT, deadline) == 0)
            continue;
        snprintf(err, errlen, "%s:%u: sending the request: %s", host, port, strerror(e));
        close(fd);
        return NULL;
    }
    size_t cap = 65536, len = 0;
    char *b = malloc(cap);
    while (b) {
        if (len + 1 >= cap) {
            char *nb = cap < RESPONSE_MAX ? realloc(b, cap * 2) : NULL;
            if (!nb) {
                snprintf(err, errlen, "%s:%u: answer too large", host, port);
                goto fail;
            }
            b = nb;
            cap *= 2;
        }
        ssize_t r = recv(fd, b + len, cap - len - 1, 0);
        if (r > 0) {
            len += (size_t)r;
            continue;
        }
        if (r == 0)
            break;
        if (errno == EINTR)
            continue;
        int e = errno;
        if (e == EAGAIN && (e = -wait_fd(fd, POLLIN, deadline)) == 0)
            continue;
        snprintf(err, errlen, "%s:%u: reading the answer: %s", host, port, strerror(e));
        goto fail;
    }
    if (!b) {
        snprintf(err, errlen, "out of memory");
        close(fd);
        return NULL;
    }
    close(fd);
    b[len] = 0;
    char *body = memmem(b, len, "\r\n\r\n", 4);
    int status = 0;
    if (!body || sscanf(b, "HTTP/1.%*[01] %d", &status) != 1) {
        snprintf(err, errlen, "%s:%u: not an HTTP answer", host, port);
        free(b);
        return NULL;
    }
    body += 4;
    size_t hlen = (size_t)(body - b), bl = len - hlen;
    bool chunked = false;
    body[-2] = 0; /* the head as a string, to look for Transfer-Encoding */
    for (char *line = strstr(b, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        char *next = strstr(line + 2, "\r\n");
        if (next)
            *next = 0;
        if (!strncasecmp(line + 2, "Transfer-Encoding:", 18) && strcasestr(line + 20, "chunked"))
            chunked = true;
        if (!next)
            break;
        *next = '\r';
    }
    memmove(b, body, bl);
    if (chunked && !dechunk(b, bl, &bl)) {
        snprintf(err, errlen, "%s:%u: broken chunked answer", host, port);
        free(b);
        return NULL;
    }
    b[bl] = 0;
    if (status != 200) {
        snprintf(err, errlen, "%s:%u%s%s: HTTP %d: %.200s", host, port, prefix, path, status, b);
        size_t el = strlen(err);
        while (el && (err[el - 1] == '\n' || err[el - 1] == '\r'))
            err[--el] = 0;
        free(b);
        return NULL;
    }
    *blen = bl;
    return b;
fail:
    free(b);
    close(fd);
    return NULL;
}

/* ---- a small JSON reader (RFC 8259) ------------------------------------------------ */

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jval {
    enum jtype type;
    bool b;
    double num;
    char *str;           /* J_STR; keys of J_OBJ members */
    struct jval *items;  /* J_ARR, J_OBJ members (each with .key) */
    size_t n;
    char *key;
};

struct jparser {
    const char *p, *end;
    const char *err;
};

static void jfree(struct jval *v)
{
    for (size_t i = 0; i < v->n; i++) {
        jfree(&v->items[i]);
        free(v->items[i].key);
    }
    free(v->items);
    free(v->str);
}

static void jws(struct jparser *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static void put_utf8(char *o, size_t *n, unsigned cp)
{
    if (cp < 0x80) {
        o[(*n)++] = (char)cp;
    } else if (cp < 0x800) {
        o[(*n)++] = (char)(0xc0 | cp >> 6);
        o[(*n)++] = (char)(0x80 | (cp & 63));
    } else if (cp < 0x10000) {
        o[(*n)++] = (char)(0xe0 | cp >> 12);
        o[(*n)++] = (char)(0x80 | ((cp >> 6) & 63));
        o[(*n)++] = (char)(0x80 | (cp & 63));
    } else {
        o[(*n)++] = (char)(0xf0 | cp >> 18);
        o[(*n)++] = (char)(0x80 | ((cp >> 12) & 63));
        o[(*n)++] = (char)(0x80 | ((cp >> 6) & 63));
        o[(*n)++] = (char)(0x80 | (cp & 63));
    }
}

static bool hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        if (!isxdigit((unsigned char)p[i]))
            return false;
        v = v * 16 + (unsigned)(isdigit((unsigned char)p[i]) ? p[i] - '0' : (tolower((unsigned char)p[i]) - 'a' + 10));
    }
    *out = v;
    return true;
}

static char *jstring(struct jparser *j)
{
    j->p++; /* the opening quote */
    const char *s = j->p;
    while (j->p < j->end && *j->p != '"') {
        if (*j->p == '\\')
            j->p++;
        j->p++;
    }
    if (j->p >= j->end) {
        j->err = "unterminated string";
        return NULL;
    }
    size_t raw = (size_t)(j->p - s), n = 0;
    char *o = malloc(raw + 1); /* escapes never grow: \uXXXX (6) -> at most 4 bytes */
    if (!o) {
        j->err = "out of memory";
        return NULL;
    }
    for (const char *p = s; p < j->p; p++) {
        if ((unsigned char)*p < 0x20) {
            j->err = "control character in a string";
            free(o);
            return NULL;
        }
        if (*p != '\\') {
            o[n++] = *p;
            continue;
        }
        p++;
        unsigned cp;
        switch (*p) {
        case '"': case '\\': case '/': o[n++] = *p; break;
        case 'b': o[n++] = '\b'; break;
        case 'f': o[n++] = '\f'; break;
        case 'n': o[n++] = '\n'; break;
        case 'r': o[n++] = '\r'; break;
        case 't': o[n++] = '\t'; break;
        case 'u':
            if (j->p - p < 5 || !hex4(p + 1, &cp)) {
                j->err = "bad \\u escape";
                free(o);
                return NULL;
            }
            p += 4;
            if (cp >= 0xd800 && cp < 0xdc00 && j->p - p >= 7 && p[1] == '\\' && p[2] == 'u') {
                unsigned lo;
                if (hex4(p + 3, &lo) && lo >= 0xdc00 && lo < 0xe000) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    p += 6;
                }
            }
            if (cp >= 0xd800 && cp < 0xe000)
                cp = 0xfffd; /* a lone surrogate */
            put_utf8(o, &n, cp);
            break;
        default:
            j->err = "bad escape";
            free(o);
            return NULL;
        }
    }
    o[n] = 0;
    j->p++; /* the closing quote */
    return o;
}

static bool jparse(struct jparser *j, struct jval *v, int depth);

static bool jlist(struct jparser *j, struct jval *v, int depth, char close, bool keyed)
{
    j->p++;
    jws(j);
    if (j->p < j->end && *j->p == close) {
        j->p++;
        return true;
    }
    size_t cap = 0;
    for (;;) {
        if (v->n == cap) {
            cap = cap ? cap * 2 : 8;
            struct jval *ni = realloc(v->items, cap * sizeof(*ni));
            if (!ni) {
                j->err = "out of memory";
                return false;
            }
            v->items = ni;
        }
        struct jval *it = &v->items[v->n];
        memset(it, 0, sizeof(*it));
        jws(j);
        if (keyed) {
            if (j->p >= j->end || *j->p != '"') {
                j->err = "expected a member name";
                return false;
            }
            if (!(it->key = jstring(j)))
                return false;
            jws(j);
            if (j->p >= j->end || *j->p != ':') {
                free(it->key);
                j->err = "expected ':'";
                return false;
            }
            j->p++;
        }
        v->n++;
        if (!jparse(j, it, depth + 1))
            return false;
        jws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == close) {
            j->p++;
            return true;
        }
        j->err = keyed ? "expected ',' or '}'" : "expected ',' or ']'";
        return false;
    }
}

static bool jparse(struct jparser *j, struct jval *v, int depth)
{
    if (depth > JSON_DEPTH_MAX) {
        j->err = "nested too deeply";
        return false;
    }
    jws(j);
    if (j->p >= j->end) {
        j->err = "unexpected end";
        return false;
    }
    char c = *j->p;
    if (c == '{') {
        v->type = J_OBJ;
        return jlist(j, v, depth, '}', true);
    }
    if (c == '[') {
        v->type = J_ARR;
        return jlist(j, v, depth, ']', false);
    }
    if (c == '"') {
        v->type = J_STR;
        return (v->str = jstring(j)) != NULL;
    }
    static const struct { const char *w; enum jtype t; bool b; } words[] = {
        {"true", J_BOOL, true}, {"false", J_BOOL, false}, {"null", J_NULL, false}};
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(words[i].w);
        if ((size_t)(j->end - j->p) >= n && !memcmp(j->p, words[i].w, n)) {
            v->type = words[i].t;
            v->b = words[i].b;
            j->p += n;
            return true;
        }
    }
    if (c == '-' || isdigit((unsigned char)c)) {
        char *end;
        v->type = J_NUM;
        v->num = strtod(j->p, &end); /* the body is NUL-terminated */
        if (end == j->p || end > j->end) {
            j->err = "bad number";
            return false;
        }
        j->p = end;
        return true;
    }
    j->err = "unexpected character";
    return false;
}

static const struct jval *jget(const struct jval *o, const char *key)
{
    if (!o || o->type != J_OBJ)
        return NULL;
    for (size_t i = 0; i < o->n; i++)
        if (!strcmp(o->items[i].key, key))
            return &o->items[i];
    return NULL;
}

static const char *jstr(const struct jval *o, const char *key)
{
    const struct jval *v = jget(o, key);
    return v && v->type == J_STR ? v->str : "";
}

static double jnum(const struct jval *o, const char *key)
{
    const struct jval *v = jget(o, key);
    return v && v->type == J_NUM ? v->num : 0;
}

static bool jbool(const struct jval *o, const char *key)
{
    const struct jval *v = jget(o, key);
    return v && v->type == J_BOOL && v->b;
}

/* ---- the table ------------------------------------------------------------------------ */

static void fmt_age(double ms, char *out, size_t n)
{
    long s = ms > 0 && ms < 1e15 ? (long)(ms / 1000) : 0;
    if (s < 60)
        snprintf(out, n, "%lds", s);
    else if (s < 3600)
        snprintf(out, n, "%ldm%02lds", s / 60, s % 60);
    else
        snprintf(out, n, "%ldh%02ldm", s / 3600, s % 3600 / 60);
}

static const char *const stage_order[] = {"none",   "discover",       "offered",   "acked",  "loader",
                                          "config", "kernel",         "initrd",    "installer_dhcp",
                                          "kickstart", "stage2",      "packages",  "postinstall",
                                          "installed"};

static int print_table(const char *body, size_t len, FILE *out, char *err, size_t errlen)
{
    struct jparser j = {body, body + len, NULL};
    struct jval root = {0};
    if (!jparse(&j, &root, 0) || root.type != J_OBJ) {
        snprintf(err, errlen, "the server's answer is not the JSON expected: %s",
                 j.err ? j.err : "not an object");
        jfree(&root);
        return -EINVAL;
    }
    const struct jval *hosts = jget(&root, "hosts");
    double now = jnum(&root, "now");
    fprintf(out, "%-24s %-17s %-15s %-30s %-9s %s\n", "HOSTNAME", "MAC", "IP", "STAGE", "IN STAGE", "LAST ERROR");
    for (size_t i = 0; hosts && hosts->type == J_ARR && i < hosts->n; i++) {
        const struct jval *h = &hosts->items[i];
        const char *stage = jstr(h, "stage");
        char st[64], age[32] = "-";
        snprintf(st, sizeof(st), "%s%s%s", stage, jbool(h, "stalled") ? " (stalled)" : "",
                 jbool(h, "failed") ? " (failed)" : "");
        if (strcmp(stage, "none") != 0 && jnum(h, "since") > 0)
            fmt_age(now - jnum(h, "since"), age, sizeof(age));
        const struct jval *e = jget(h, "error");
        const char *name = jstr(h, "hostname"), *ip = jstr(h, "ip");
        fprintf(out, "%-24.24s %-17s %-15s %-30s %-9s %.70s\n", *name ? name : "-", jstr(h, "mac"), *ip ? ip : "-",
                st, age, e && e->type == J_OBJ ? jstr(e, "reason") : "");
    }
    const struct jval *counts = jget(&root, "counts");
    fprintf(out, "\n%.0f hosts:", jnum(counts, "hosts"));
    for (size_t s = 0; s < sizeof(stage_order) / sizeof(stage_order[0]); s++) {
        double n = jnum(counts, stage_order[s]);
        if (n > 0)
            fprintf(out, " %s %.0f", stage_order[s], n);
    }
    fprintf(out, "; stalled %.0f, failed %.0f\n", jnum(counts, "stalled"), jnum(counts, "failed"));
    jfree(&root);
    return 0;
}

int status_cli_run(const struct options *o)
{
    char host[256], prefix[512], err[1024], def[64];
    uint16_t port;
    const char *url = o->server;
    if (!url) {
        uint32_t a = o->listen ? o->listen : 0x7f000001u; /* 0.0.0.0 listens on loopback too */
        snprintf(def, sizeof(def), "http://%u.%u.%u.%u:%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255,
                 o->http_port);
        url = def;
    }
    if (status_parse_url(url, host, sizeof(host), &port, prefix, sizeof(prefix), err, sizeof(err)) < 0) {
        fprintf(stderr, "bootstorm: %s\n", err);
        return STATUS_EXIT_FAILED;
    }
    bool tty = isatty(STDOUT_FILENO);
    for (bool first = true;; first = false) {
        size_t len = 0;
        char *body = http_get(host, port, prefix, "/api/hosts", &len, err, sizeof(err));
        if (!body) {
            fprintf(stderr, "bootstorm: cannot get the host status from %s: %s\n", url, err);
            if (!o->watch)
                return STATUS_EXIT_FAILED;
        } else if (o->json) {
            fwrite(body, 1, len, stdout);
            if (!len || body[len - 1] != '\n')
                fputc('\n', stdout);
        } else {
            if (o->watch && tty)
                fputs("\033[H\033[2J", stdout); /* home, clear: redraw in place */
            else if (!first)
                fputc('\n', stdout);
            if (print_table(body, len, stdout, err, sizeof(err)) < 0) {
                fprintf(stderr, "bootstorm: %s: %s\n", url, err);
                if (!o->watch) {
                    free(body);
                    return STATUS_EXIT_FAILED;
                }
            }
        }
        free(body);
        fflush(stdout);
        if (!o->watch)
            return STATUS_EXIT_OK;
        struct timespec ts = {STATUS_WATCH_MS / 1000, (STATUS_WATCH_MS % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
    }
}
