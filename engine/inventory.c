/* engine/inventory.c — see inventory.h.
 *
 * The CSV reader follows RFC 4180 §2 (fields separated by ',', records by
 * CRLF, a field in double quotes may hold ',', line breaks and '""' for one
 * quote) and accepts what spreadsheets and editors really write: LF or CRLF,
 * a UTF-8 byte order mark, no line break after the last record, blank lines,
 * '#' comment lines, blanks around unquoted fields.
 *
 * Memory: the whole file is copied once and parsed in place (unquoting only
 * ever shortens a field), so every string of the inventory — header names,
 * values — points into that one copy. */
#include "engine/inventory.h"
#include "engine/mix64.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define INV_FILE_MAX   (64u << 20) /* a rollout inventory is a few MB at most */
#define INV_COLUMNS_MAX 256

struct inventory {
    atomic_uint refs;          /* used by the holder only */
    char *name;
    char *text;                /* the file, parsed in place: owns every string */
    struct inv_host *hosts;
    size_t count;
    struct inv_var *vars;      /* all hosts' vars, host i's at hosts[i].vars */
    /* open-addressing indexes of host index + 1 (0: empty), mask + 1 slots */
    uint32_t *by_mac, *by_name, *by_ip;
    size_t mask;
};

/* ---- small parsers ---------------------------------------------------- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower((unsigned char)c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

bool inventory_parse_mac(const char *s, uint8_t mac[6])
{
    char sep = 0;
    for (int i = 0; i < 6; i++) {
        int hi = hexval(s[0]), lo = hi < 0 ? -1 : hexval(s[1]);
        if (hi < 0 || lo < 0)
            return false;
        mac[i] = (uint8_t)(hi << 4 | lo);
        s += 2;
        if (i == 5)
            break;
        if (*s != ':' && *s != '-')
            return false;
        if (sep && *s != sep) /* "aa:bb-cc..." is a typo, not a MAC */
            return false;
        sep = *s++;
    }
    return *s == '\0';
}

void inventory_format_mac(const uint8_t mac[6], char out[18])
{
    snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
}

bool inventory_valid_hostname(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len >= INV_NAME_MAX)
        return false;
    size_t label = 0;
    for (size_t i = 0; i <= len; i++) {
        char c = s[i];
        if (c == '.' || c == '\0') {
            /* RFC 1123 §2.1: 1-63 characters, no hyphen at either end */
            if (label == 0 || label > 63 || s[i - 1] == '-')
                return false;
            label = 0;
            continue;
        }
        if (!isalnum((unsigned char)c) && c != '-')
            return false;
        if (label == 0 && c == '-')
            return false;
        label++;
    }
    return true;
}

/* A usable unicast host address (host byte order) or a reason. */
static const char *parse_host_ip(const char *s, uint32_t *out)
{
    struct in_addr a;
    if (inet_pton(AF_INET, s, &a) != 1) /* glibc: dotted quad, no leading zeros */
        return "not an IPv4 address";
    uint32_t ip = ntohl(a.s_addr);
    if (ip == 0 || ip == 0xffffffffu)
        return "not a host address";
    if ((ip >> 24) == 127)
        return "loopback address";
    if ((ip >> 28) >= 0xe)
        return "multicast or reserved address";
    *out = ip;
    return NULL;
}

static bool valid_profile_name(const char *s)
{
    size_t n = strlen(s);
    if (n >= INV_NAME_MAX || s[0] == '.')
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
            return false;
    return true;
}

/* Template variable names: see engine/template.h. */
static bool valid_var_name(const char *s)
{
    if (!isalpha((unsigned char)*s) && *s != '_')
        return false;
    for (s++; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-')
            return false;
    return true;
}

/* ---- hashing ------------------------------------------------------------ */

static uint64_t hash_mac(const uint8_t mac[6])
{
    uint64_t k = 0;
    for (int i = 0; i < 6; i++)
        k = k << 8 | mac[i];
    return mix64(k);
}

static uint64_t hash_name(const char *s) /* FNV-1a, case-insensitive: DNS names are */
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)tolower((unsigned char)*s)) * 0x100000001b3ull;
    return h;
}

/* ---- the reader ---------------------------------------------------------- */

struct reader {
    const char *name;
    char *p, *end;             /* parse position in the copy */
    unsigned line;             /* line of *p */
    char *fields[INV_COLUMNS_MAX];
    size_t nfields;
    inventory_report_fn report;
    void *ctx;
    unsigned problems;
};

static void problem(struct reader *r, unsigned line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void problem(struct reader *r, unsigned line, const char *fmt, ...)
{
    char msg[512];
    int n = line ? snprintf(msg, sizeof msg, "%s:%u: ", r->name, line) : snprintf(msg, sizeof msg, "%s: ", r->name);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
    va_end(ap);
    r->problems++;
    if (r->report)
        r->report(r->ctx, msg);
}

enum rec_result { REC_OK, REC_SKIP, REC_EOF, REC_BAD };

static void skip_line(struct reader *r)
{
    while (r->p < r->end && *r->p != '\n')
        r->p++;
    if (r->p < r->end)
        r->p++;
    r->line++;
}

/* Reads one record into r->fields (NUL-terminated in place).  *start_line gets
 * the line it began on.  A malformed record is reported and skipped up to the
 * end of its line. */
static enum rec_result read_record(struct reader *r, unsigned *start_line)
{
    *start_line = r->line;
    if (r->p >= r->end)
        return REC_EOF;
    if (*r->p == '#') {
        skip_line(r);
        return REC_SKIP;
    }
    r->nfields = 0;
    bool blank = true;
    for (;;) {
        char *p = r->p;
        while (p < r->end && (*p == ' ' || *p == '\t'))
            p++;
        char *w = p, *start = p;
        bool quoted = p < r->end && *p == '"';
        if (quoted) {
            blank = false;
            p++;
            for (;;) {
                if (p >= r->end) {
                    r->p = p;
                    problem(r, *start_line, "unterminated quoted field");
                    return REC_BAD;
                }
                if (*p == '"') {
                    if (p + 1 < r->end && p[1] == '"') { /* RFC 4180 §2.7 */
                        *w++ = '"';
                        p += 2;
                        continue;
                    }
                    p++;
                    break;
                }
                if (*p == '\n')
                    r->line++;
                *w++ = *p++;
            }
            while (p < r->end && (*p == ' ' || *p == '\t'))
                p++;
            if (p < r->end && *p != ',' && *p != '\r' && *p != '\n') {
                r->p = p;
                problem(r, r->line, "text after a closing quote");
                skip_line(r);
                return REC_BAD;
            }
        } else {
            while (p < r->end && *p != ',' && *p != '\r' && *p != '\n') {
                if (*p == '"') {
                    r->p = p;
                    problem(r, r->line, "quote inside an unquoted field");
                    skip_line(r);
                    return REC_BAD;
                }
                p++;
            }
            w = p;
            while (w > start && (w[-1] == ' ' || w[-1] == '\t'))
                w--;
            if (w > start)
                blank = false;
        }
        char delim = p < r->end ? *p : '\n';
        if (r->nfields == INV_COLUMNS_MAX) {
            r->p = p;
            problem(r, *start_line, "more than %d fields", INV_COLUMNS_MAX);
            skip_line(r);
            return REC_BAD;
        }
        r->fields[r->nfields++] = start;
        *w = '\0'; /* w <= p: delim was saved first */
        if (delim == ',') {
            r->p = p + 1;
            blank = false;
            continue;
        }
        if (p < r->end) /* past the line end: CRLF, LF or a lone CR (*p is now NUL) */
            p += delim == '\r' && p + 1 < r->end && p[1] == '\n' ? 2 : 1;
        r->p = p;
        r->line++;
        return blank ? REC_SKIP : REC_OK;
    }
}

/* ---- building ------------------------------------------------------------ */

enum { COL_NONE = -1 };

struct columns {
    int mac, hostname, ip, profile;
    size_t count;
};

static bool header(struct reader *r, struct columns *c, unsigned line)
{
    c->mac = c->hostname = c->ip = c->profile = COL_NONE;
    c->count = r->nfields;
    bool ok = true;
    static const char *const reserved[] = { "token", "callback_url", "server", "http_port", "mac_dashes", "base_url" };
    for (size_t i = 0; i < r->nfields; i++) {
        const char *f = r->fields[i];
        int *core = !strcasecmp(f, "mac") ? &c->mac : !strcasecmp(f, "hostname") ? &c->hostname
                  : !strcasecmp(f, "ip") ? &c->ip : !strcasecmp(f, "profile") ? &c->profile : NULL;
        for (size_t j = 0; j < i; j++)
            if (!strcasecmp(r->fields[j], f)) {
                problem(r, line, "column \"%s\" twice in the header", f);
                ok = false;
            }
        if (core) {
            *core = (int)i;
            continue;
        }
        if (!valid_var_name(f)) {
            problem(r, line, "column \"%s\": not a variable name (a letter or '_', then letters, digits, '_', '-')", f);
            ok = false;
        }
        for (size_t j = 0; j < sizeof reserved / sizeof *reserved; j++)
            if (!strcasecmp(f, reserved[j])) {
                problem(r, line, "column \"%s\": reserved, bootstorm fills it in", f);
                ok = false;
            }
    }
    if (c->mac == COL_NONE || c->hostname == COL_NONE) {
        problem(r, line, "header needs at least the columns mac and hostname");
        ok = false;
    }
    return ok;
}

static uint32_t *index_slot_mac(struct inventory *inv, const uint8_t mac[6])
{
    for (size_t i = hash_mac(mac) & inv->mask;; i = (i + 1) & inv->mask) {
        uint32_t v = inv->by_mac[i];
        if (!v || !memcmp(inv->hosts[v - 1].mac, mac, 6))
            return &inv->by_mac[i];
    }
}

static uint32_t *index_slot_name(struct inventory *inv, const char *name)
{
    for (size_t i = hash_name(name) & inv->mask;; i = (i + 1) & inv->mask) {
        uint32_t v = inv->by_name[i];
        if (!v || !strcasecmp(inv->hosts[v - 1].hostname, name))
            return &inv->by_name[i];
    }
}

static uint32_t *index_slot_ip(struct inventory *inv, uint32_t ip)
{
    for (size_t i = mix64(ip) & inv->mask;; i = (i + 1) & inv->mask) {
        uint32_t v = inv->by_ip[i];
        if (!v || inv->hosts[v - 1].ip == ip)
            return &inv->by_ip[i];
    }
}

/* Validates one row into hosts[inv->count] and indexes it; false (reported)
 * when the row is bad. */
static bool add_row(struct reader *r, struct inventory *inv, const struct columns *c, char **names,
                    size_t *var_used, unsigned line)
{
    if (r->nfields != c->count) {
        problem(r, line, "%zu fields, the header has %zu", r->nfields, c->count);
        return false;
    }
    struct inv_host *h = &inv->hosts[inv->count];
    memset(h, 0, sizeof *h);
    h->line = line;
    bool ok = true;
    const char *mac = r->fields[c->mac];
    if (!inventory_parse_mac(mac, h->mac)) {
        problem(r, line, "mac \"%s\": not a MAC address (aa:bb:cc:dd:ee:ff)", mac);
        ok = false;
    } else if (h->mac[0] & 1) {
        problem(r, line, "mac \"%s\": a multicast address, not a NIC's", mac);
        ok = false;
    }
    inventory_format_mac(h->mac, h->mac_str);
    const char *name = r->fields[c->hostname];
    if (!inventory_valid_hostname(name)) {
        problem(r, line, "hostname \"%s\": not a host name (RFC 1123: labels of letters, digits, '-', at most %d characters)",
                name, INV_NAME_MAX - 1);
        ok = false;
    } else {
        memcpy(h->hostname, name, strlen(name) + 1);
    }
    if (c->ip != COL_NONE && r->fields[c->ip][0]) {
        const char *why = parse_host_ip(r->fields[c->ip], &h->ip);
        if (why) {
            problem(r, line, "ip \"%s\": %s", r->fields[c->ip], why);
            ok = false;
        }
    }
    if (c->profile != COL_NONE) {
        const char *prof = r->fields[c->profile];
        if (!valid_profile_name(prof)) {
            problem(r, line, "profile \"%s\": not a profile name (letters, digits, '-', '_', '.')", prof);
            ok = false;
        } else {
            memcpy(h->profile, prof, strlen(prof) + 1);
        }
    }
    if (!ok)
        return false;

    uint32_t *sm = index_slot_mac(inv, h->mac), *sn = index_slot_name(inv, h->hostname);
    uint32_t *si = h->ip ? index_slot_ip(inv, h->ip) : NULL;
    if (*sm) {
        problem(r, line, "duplicate mac %s (also on line %u)", h->mac_str, inv->hosts[*sm - 1].line);
        ok = false;
    }
    if (*sn) {
        problem(r, line, "duplicate hostname \"%s\" (also on line %u)", h->hostname, inv->hosts[*sn - 1].line);
        ok = false;
    }
    if (si && *si) {
        char ip[INET_ADDRSTRLEN];
        struct in_addr a = { htonl(h->ip) };
        inet_ntop(AF_INET, &a, ip, sizeof ip);
        problem(r, line, "duplicate ip %s (also on line %u)", ip, inv->hosts[*si - 1].line);
        ok = false;
    }
    if (!ok)
        return false;

    struct inv_var *v = &inv->vars[*var_used];
    h->vars = v;
    for (size_t i = 0; i < r->nfields; i++) {
        if ((int)i == c->mac || (int)i == c->hostname || (int)i == c->ip || (int)i == c->profile)
            continue;
        v[h->nvars].key = names[i];
        v[h->nvars].value = r->fields[i];
        h->nvars++;
    }
    *var_used += h->nvars;
    uint32_t id = (uint32_t)++inv->count;
    *sm = *sn = id;
    if (si)
        *si = id;
    return true;
}

/* Upper bound of the number of records: lines + 1. */
static size_t count_lines(const char *s, size_t len)
{
    size_t n = 1;
    for (const char *p = s; (p = memchr(p, '\n', len - (size_t)(p - s))); p++)
        n++;
    return n;
}

static int parse(const char *name, const char *text, size_t len, struct inventory **out, struct reader *r)
{
    *out = NULL;
    memset(r->fields, 0, sizeof r->fields);
    r->name = name;
    r->line = 1;
    r->problems = 0;
    r->nfields = 0;
    const char *nul = memchr(text, '\0', len);
    if (nul) {
        problem(r, (unsigned)count_lines(text, (size_t)(nul - text)), "NUL byte: not a text file");
        return -EINVAL;
    }
    struct inventory *inv = calloc(1, sizeof *inv);
    if (!inv)
        return -ENOMEM;
    size_t maxrec = count_lines(text, len);
    size_t slots = 16;
    while (slots < 2 * maxrec)
        slots <<= 1;
    inv->name = strdup(name);
    inv->text = malloc(len + 1);
    inv->hosts = calloc(maxrec, sizeof *inv->hosts);
    inv->by_mac = calloc(slots, sizeof(uint32_t));
    inv->by_name = calloc(slots, sizeof(uint32_t));
    inv->by_ip = calloc(slots, sizeof(uint32_t));
    inv->mask = slots - 1;
    if (!inv->name || !inv->text || !inv->hosts || !inv->by_mac || !inv->by_name || !inv->by_ip) {
        inventory_free(inv);
        return -ENOMEM;
    }
    memcpy(inv->text, text, len);
    inv->text[len] = '\0';
    r->p = inv->text;
    r->end = inv->text + len;
    if (len >= 3 && !memcmp(r->p, "\xEF\xBB\xBF", 3)) /* UTF-8 BOM (Excel's "CSV UTF-8") */
        r->p += 3;

    struct columns cols;
    char *names[INV_COLUMNS_MAX];
    unsigned line;
    enum rec_result rr;
    while ((rr = read_record(r, &line)) == REC_SKIP)
        ;
    if (rr != REC_OK) {
        if (rr == REC_EOF)
            problem(r, 0, "empty: no header row (mac,hostname,ip,profile,...)");
        inventory_free(inv);
        return -EINVAL;
    }
    bool ok = header(r, &cols, line);
    memcpy(names, r->fields, r->nfields * sizeof *names);
    if (ok) {
        size_t nextra = cols.count - 2 - (cols.ip != COL_NONE) - (cols.profile != COL_NONE);
        if (nextra && !(inv->vars = calloc(maxrec * nextra, sizeof *inv->vars))) {
            inventory_free(inv);
            return -ENOMEM;
        }
        size_t var_used = 0;
        while ((rr = read_record(r, &line)) != REC_EOF)
            if (rr == REC_OK)
                add_row(r, inv, &cols, names, &var_used, line);
    }
    if (r->problems) {
        inventory_free(inv);
        return -EINVAL;
    }
    atomic_init(&inv->refs, 0);
    *out = inv;
    return 0;
}

int inventory_parse_report(const char *name, const char *text, size_t len, struct inventory **out,
                           inventory_report_fn report, void *ctx)
{
    struct reader *r = malloc(sizeof *r);
    if (!r) {
        *out = NULL;
        return -ENOMEM;
    }
    r->report = report;
    r->ctx = ctx;
    int rc = parse(name, text, len, out, r);
    free(r);
    return rc;
}

struct first_problem {
    char *buf;
    size_t len;
    unsigned n;
};

static void keep_first(void *ctx, const char *msg)
{
    struct first_problem *f = ctx;
    if (f->n++ == 0 && f->len)
        snprintf(f->buf, f->len, "%s", msg);
}

static void add_more(struct first_problem *f)
{
    if (f->n > 1 && f->len) {
        size_t used = strlen(f->buf);
        snprintf(f->buf + used, f->len - used, " (and %u more problems)", f->n - 1);
    }
}

int inventory_parse(const char *name, const char *text, size_t len, struct inventory **out, char *err, size_t errlen)
{
    struct first_problem f = { err, errlen, 0 };
    if (errlen)
        err[0] = '\0';
    int rc = inventory_parse_report(name, text, len, out, keep_first, &f);
    if (rc == -ENOMEM && errlen)
        snprintf(err, errlen, "%s: out of memory", name);
    add_more(&f);
    return rc;
}

static int read_file(const char *path, char **text, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > INV_FILE_MAX) {
        close(fd);
        return S_ISREG(st.st_mode) ? -EFBIG : -EISDIR;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = n < 0 ? -errno : -EIO;
            free(buf);
            close(fd);
            return e;
        }
        got += (size_t)n;
    }
    close(fd);
    *text = buf;
    *len = got;
    return 0;
}

int inventory_load_report(const char *path, struct inventory **out, inventory_report_fn report, void *ctx)
{
    char *text = NULL;
    size_t len = 0;
    *out = NULL;
    int rc = read_file(path, &text, &len);
    if (rc < 0) {
        if (report) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s: %s", path, rc == -EFBIG ? "larger than 64 MiB" : strerror(-rc));
            report(ctx, msg);
        }
        return rc;
    }
    rc = inventory_parse_report(path, text, len, out, report, ctx);
    free(text);
    return rc;
}

int inventory_load(const char *path, struct inventory **out, char *err, size_t errlen)
{
    struct first_problem f = { err, errlen, 0 };
    if (errlen)
        err[0] = '\0';
    int rc = inventory_load_report(path, out, keep_first, &f);
    if (rc == -ENOMEM && errlen)
        snprintf(err, errlen, "%s: out of memory", path);
    add_more(&f);
    return rc;
}

void inventory_free(struct inventory *inv)
{
    if (!inv)
        return;
    free(inv->name);
    free(inv->text);
    free(inv->hosts);
    free(inv->vars);
    free(inv->by_mac);
    free(inv->by_name);
    free(inv->by_ip);
    free(inv);
}

/* ---- lookups ------------------------------------------------------------- */

const char *inventory_name(const struct inventory *inv) { return inv->name; }
size_t inventory_count(const struct inventory *inv) { return inv ? inv->count : 0; }

const struct inv_host *inventory_host(const struct inventory *inv, size_t i)
{
    return inv && i < inv->count ? &inv->hosts[i] : NULL;
}

const struct inv_host *inventory_find_mac(const struct inventory *inv, const uint8_t mac[6])
{
    if (!inv)
        return NULL;
    uint32_t v = *index_slot_mac((struct inventory *)inv, mac);
    return v ? &inv->hosts[v - 1] : NULL;
}

const struct inv_host *inventory_find_hostname(const struct inventory *inv, const char *hostname)
{
    if (!inv)
        return NULL;
    uint32_t v = *index_slot_name((struct inventory *)inv, hostname);
    return v ? &inv->hosts[v - 1] : NULL;
}

const struct inv_host *inventory_find_ip(const struct inventory *inv, uint32_t ip)
{
    if (!inv || !ip)
        return NULL;
    uint32_t v = *index_slot_ip((struct inventory *)inv, ip);
    return v ? &inv->hosts[v - 1] : NULL;
}

const char *inv_host_var(const struct inv_host *h, const char *key)
{
    for (size_t i = 0; i < h->nvars; i++)
        if (!strcmp(h->vars[i].key, key))
            return h->vars[i].value;
    return NULL;
}

/* ---- publication ----------------------------------------------------------
 *
 * Each published inventory carries a reference count: one for the holder
 * while it is the current one, one per thread that acquired it.  The race to
 * close is a reader that loaded the current pointer and has not yet counted
 * its reference while a publisher swaps the pointer and drops the holder's
 * reference: the count could reach zero under the reader.  So a reader
 * announces itself in `entering` around those two steps, and a publisher,
 * after the swap, waits until no reader is between them before dropping the
 * old reference (a grace period a few instructions long, as in RCU).  With
 * sequentially consistent atomics: a reader whose announcement the publisher
 * does not see entered after the swap and so loads the new pointer.
 *
 * Readers never wait; refresh() costs one atomic load when nothing changed. */

struct inventory_holder {
    _Atomic(struct inventory *) current;
    atomic_uint entering;
    atomic_flag publishing; /* publishers (SIGHUP, API) take turns */
};

static void inv_unref(struct inventory *inv)
{
    if (inv && atomic_fetch_sub_explicit(&inv->refs, 1, memory_order_acq_rel) == 1)
        inventory_free(inv);
}

struct inventory_holder *inventory_holder_new(struct inventory *initial)
{
    struct inventory_holder *h = malloc(sizeof *h);
    if (!h)
        return NULL;
    if (initial)
        atomic_store(&initial->refs, 1);
    atomic_init(&h->current, initial);
    atomic_init(&h->entering, 0);
    atomic_flag_clear(&h->publishing);
    return h;
}

void inventory_holder_free(struct inventory_holder *h)
{
    if (!h)
        return;
    inv_unref(atomic_load(&h->current));
    free(h);
}

void inventory_holder_publish(struct inventory_holder *h, struct inventory *inv)
{
    if (inv)
        atomic_store(&inv->refs, 1);
    while (atomic_flag_test_and_set(&h->publishing))
        ;
    struct inventory *old = atomic_exchange(&h->current, inv);
    while (atomic_load(&h->entering) != 0)
        ;
    atomic_flag_clear(&h->publishing);
    inv_unref(old);
}

struct inventory *inventory_holder_acquire(struct inventory_holder *h)
{
    atomic_fetch_add(&h->entering, 1);
    struct inventory *inv = atomic_load(&h->current);
    if (inv)
        atomic_fetch_add_explicit(&inv->refs, 1, memory_order_relaxed);
    atomic_fetch_sub(&h->entering, 1);
    return inv;
}

void inventory_holder_refresh(struct inventory_holder *h, struct inventory **cur)
{
    /* *cur is still referenced by this thread, so its address cannot have been
     * reused for a newer inventory: comparing pointers is enough */
    if (atomic_load_explicit(&h->current, memory_order_acquire) == *cur)
        return;
    struct inventory *old = *cur;
    *cur = inventory_holder_acquire(h);
    inv_unref(old);
}

void inventory_holder_release(struct inventory_holder *h, struct inventory *inv)
{
    (void)h;
    inv_unref(inv);
}
