/* engine/template.c — see template.h.  A template compiles to a flat list
 * of nodes (text, variable, block open/else/end with jump targets), rendered
 * by one loop: no recursion, no allocation besides the output. */
#include "engine/template.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- buffer ------------------------------------------------------------------ */

void template_buf_init(struct template_buf *b)
{
    b->data = NULL;
    b->len = b->cap = 0;
}

void template_buf_free(struct template_buf *b)
{
    free(b->data);
    template_buf_init(b);
}

static int reserve(struct template_buf *b, size_t more)
{
    if (b->cap - b->len > more)
        return 0;
    if (more > SIZE_MAX / 2 - b->len)
        return -ENOMEM;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len <= more)
        cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d)
        return -ENOMEM;
    b->data = d;
    b->cap = cap;
    return 0;
}

int template_buf_append(struct template_buf *b, const char *s, size_t n)
{
    if (reserve(b, n) < 0)
        return -ENOMEM;
    if (n)
        memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int template_buf_puts(struct template_buf *b, const char *s)
{
    return template_buf_append(b, s, strlen(s));
}

int template_buf_printf(struct template_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || reserve(b, (size_t)n) < 0)
        return -ENOMEM;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

/* ---- compiled form ------------------------------------------------------------ */

enum node_kind { N_TEXT, N_VAR, N_IF, N_UNLESS, N_ELSE, N_END };

struct node {
    enum node_kind kind;
    bool has_def;
    unsigned line;
    const char *s;      /* text, or the variable's name */
    size_t len;
    const char *def;    /* default text */
    size_t deflen;
    size_t jump;        /* N_IF/N_UNLESS: where to go when false; N_ELSE: the end */
};

struct template {
    char *name;
    char *src;
    struct node *nodes;
    size_t count, cap;
};

const char *template_name(const struct template *t) { return t->name; }

void template_free(struct template *t)
{
    if (!t)
        return;
    free(t->name);
    free(t->src);
    free(t->nodes);
    free(t);
}

struct compiler {
    struct template *t;
    const char *src, *end;
    const char *line_pos;  /* line counted up to here */
    unsigned line;
    char *err;
    size_t errlen;
    struct { size_t node; size_t else_node; } stack[TEMPLATE_DEPTH_MAX];
    int depth;
};

static unsigned line_at(struct compiler *c, const char *p)
{
    for (; c->line_pos < p; c->line_pos++)
        if (*c->line_pos == '\n')
            c->line++;
    return c->line;
}

static int fail(struct compiler *c, unsigned line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct compiler *c, unsigned line, const char *fmt, ...)
{
    int n = snprintf(c->err, c->errlen, "%s:%u: ", c->t->name, line);
    if (n >= 0 && (size_t)n < c->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

static struct node *add(struct compiler *c, enum node_kind kind, unsigned line)
{
    struct template *t = c->t;
    if (t->count == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 32;
        struct node *n = realloc(t->nodes, cap * sizeof *n);
        if (!n)
            return NULL;
        t->nodes = n;
        t->cap = cap;
    }
    struct node *n = &t->nodes[t->count++];
    memset(n, 0, sizeof *n);
    n->kind = kind;
    n->line = line;
    return n;
}

static int add_text(struct compiler *c, const char *s, size_t len)
{
    if (!len)
        return 0;
    struct node *n = add(c, N_TEXT, 0);
    if (!n)
        return -ENOMEM;
    n->s = s;
    n->len = len;
    return 0;
}

static bool blank(char ch) { return ch == ' ' || ch == '\t'; }

static void trim(const char **s, const char **e)
{
    while (*s < *e && blank(**s))
        (*s)++;
    while (*e > *s && blank((*e)[-1]))
        (*e)--;
}

static bool valid_name(const char *s, size_t len)
{
    if (!len || (!isalpha((unsigned char)*s) && *s != '_'))
        return false;
    for (size_t i = 1; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
            return false;
    return true;
}

/* "if name" / "unless name" after the '#' */
static int open_block(struct compiler *c, const char *s, const char *e, unsigned line)
{
    enum node_kind kind;
    if ((size_t)(e - s) > 2 && !memcmp(s, "if", 2) && blank(s[2])) {
        kind = N_IF;
        s += 2;
    } else if ((size_t)(e - s) > 6 && !memcmp(s, "unless", 6) && blank(s[6])) {
        kind = N_UNLESS;
        s += 6;
    } else {
        return fail(c, line, "unknown block {{#%.*s}}: there are {{#if NAME}} and {{#unless NAME}}", (int)(e - s), s);
    }
    trim(&s, &e);
    if (!valid_name(s, (size_t)(e - s)))
        return fail(c, line, "bad variable name \"%.*s\"", (int)(e - s), s);
    if (c->depth == TEMPLATE_DEPTH_MAX)
        return fail(c, line, "blocks nested deeper than %d", TEMPLATE_DEPTH_MAX);
    struct node *n = add(c, kind, line);
    if (!n)
        return -ENOMEM;
    n->s = s;
    n->len = (size_t)(e - s);
    c->stack[c->depth].node = c->t->count - 1;
    c->stack[c->depth].else_node = 0;
    c->depth++;
    return 0;
}

static const char *block_word(enum node_kind k) { return k == N_IF ? "if" : "unless"; }

static int close_block(struct compiler *c, const char *s, const char *e, unsigned line)
{
    enum node_kind kind = (e - s == 2 && !memcmp(s, "if", 2)) ? N_IF
                        : (e - s == 6 && !memcmp(s, "unless", 6)) ? N_UNLESS : N_TEXT;
    if (kind == N_TEXT)
        return fail(c, line, "unknown closing tag {{/%.*s}}", (int)(e - s), s);
    if (!c->depth)
        return fail(c, line, "{{/%s}} without {{#%s}}", block_word(kind), block_word(kind));
    struct node *open = &c->t->nodes[c->stack[c->depth - 1].node];
    if (open->kind != kind)
        return fail(c, line, "{{/%s}} closes the {{#%s}} of line %u", block_word(kind), block_word(open->kind),
                    open->line);
    if (!add(c, N_END, line))
        return -ENOMEM;
    size_t end = c->t->count - 1, top = c->stack[c->depth - 1].node, els = c->stack[c->depth - 1].else_node;
    if (els)
        c->t->nodes[els].jump = end;
    else
        c->t->nodes[top].jump = end;
    c->depth--;
    return 0;
}

static int else_tag(struct compiler *c, unsigned line)
{
    if (!c->depth)
        return fail(c, line, "{{else}} outside {{#if}}");
    if (c->stack[c->depth - 1].else_node)
        return fail(c, line, "a second {{else}} in the {{#if}} of line %u", c->t->nodes[c->stack[c->depth - 1].node].line);
    if (!add(c, N_ELSE, line))
        return -ENOMEM;
    size_t els = c->t->count - 1;
    c->stack[c->depth - 1].else_node = els;
    c->t->nodes[c->stack[c->depth - 1].node].jump = els + 1;
    return 0;
}

static int var_tag(struct compiler *c, const char *s, const char *e, unsigned line)
{
    if (*s == '"') { /* {{"literal"}} */
        const char *q = memchr(s + 1, '"', (size_t)(e - s - 1));
        if (!q || q != e - 1)
            return fail(c, line, "a literal is {{\"text\"}}, without '\"' inside");
        return add_text(c, s + 1, (size_t)(q - s - 1));
    }
    const char *bar = memchr(s, '|', (size_t)(e - s));
    const char *ne = bar ? bar : e;
    trim(&s, &ne);
    if (!valid_name(s, (size_t)(ne - s)))
        return fail(c, line, "bad variable name \"%.*s\" (a letter or '_', then letters, digits, '_', '-')",
                    (int)(ne - s), s);
    struct node *n = add(c, N_VAR, line);
    if (!n)
        return -ENOMEM;
    n->s = s;
    n->len = (size_t)(ne - s);
    if (bar) {
        const char *d = bar + 1, *de = e;
        trim(&d, &de);
        n->has_def = true;
        n->def = d;
        n->deflen = (size_t)(de - d);
    }
    return 0;
}

static int compile(struct compiler *c)
{
    const char *p = c->src, *text = c->src, *last_tag_end = c->src;
    for (;;) {
        const char *open = NULL;
        for (const char *q = p; q + 1 < c->end; q++)
            if (q[0] == '{' && q[1] == '{') {
                open = q;
                break;
            }
        if (!open)
            break;
        unsigned line = line_at(c, open);
        const char *close = NULL;
        for (const char *q = open + 2; q + 1 < c->end; q++)
            if (q[0] == '}' && q[1] == '}') {
                close = q;
                break;
            }
        if (!close)
            return fail(c, line, "unclosed tag: \"{{\" without \"}}\"");
        const char *s = open + 2, *e = close;
        trim(&s, &e);
        bool block = s < e && (*s == '#' || *s == '/' || *s == '!' || (e - s == 4 && !memcmp(s, "else", 4)));

        const char *text_end = open, *next = close + 2;
        if (block) {
            /* alone on its line: drop the line's blanks and its line break too */
            const char *ls = open;
            while (ls > c->src && blank(ls[-1]))
                ls--;
            const char *le = next;
            while (le < c->end && (blank(*le) || *le == '\r'))
                le++;
            if ((ls == c->src || ls[-1] == '\n') && ls >= last_tag_end && (le == c->end || *le == '\n')) {
                text_end = ls;
                next = le < c->end ? le + 1 : le;
            }
        }
        int rc = add_text(c, text, (size_t)(text_end - text));
        if (rc == 0) {
            if (*s == '!')
                rc = 0;
            else if (*s == '#')
                rc = open_block(c, s + 1, e, line);
            else if (*s == '/')
                rc = close_block(c, s + 1, e, line);
            else if (block)
                rc = else_tag(c, line);
            else
                rc = var_tag(c, s, e, line);
        }
        if (rc < 0)
            return rc;
        p = text = last_tag_end = next;
    }
    if (c->depth) {
        struct node *open = &c->t->nodes[c->stack[c->depth - 1].node];
        return fail(c, open->line, "{{#%s %.*s}} never closed with {{/%s}}", block_word(open->kind), (int)open->len,
                    open->s, block_word(open->kind));
    }
    return add_text(c, text, (size_t)(c->end - text));
}

int template_compile(const char *name, const char *text, size_t len, struct template **out, char *err,
                     size_t errlen)
{
    return template_compile_at(name, 1, text, len, out, err, errlen);
}

int template_compile_at(const char *name, unsigned first_line, const char *text, size_t len, struct template **out,
                        char *err, size_t errlen)
{
    *out = NULL;
    if (errlen)
        err[0] = '\0';
    struct template *t = calloc(1, sizeof *t);
    if (!t || !(t->name = strdup(name)) || !(t->src = malloc(len + 1))) {
        template_free(t);
        snprintf(err, errlen, "%s: out of memory", name);
        return -ENOMEM;
    }
    memcpy(t->src, text, len);
    t->src[len] = '\0';
    struct compiler c = { .t = t, .src = t->src, .end = t->src + len, .line_pos = t->src, .line = first_line,
                          .err = err, .errlen = errlen };
    const char *nul = memchr(t->src, '\0', len);
    int rc = nul ? fail(&c, line_at(&c, nul), "NUL byte: not a text file") : compile(&c);
    if (rc == -ENOMEM)
        snprintf(err, errlen, "%s: out of memory", name);
    if (rc < 0) {
        template_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

int template_load(const char *path, struct template **out, char *err, size_t errlen)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    int rc = 0;
    if (fd < 0 || fstat(fd, &st) < 0)
        rc = -errno;
    else if (!S_ISREG(st.st_mode))
        rc = -EISDIR;
    else if ((uint64_t)st.st_size > TEMPLATE_FILE_MAX)
        rc = -EFBIG;
    char *buf = NULL;
    size_t got = 0;
    if (rc == 0 && !(buf = malloc((size_t)st.st_size + 1)))
        rc = -ENOMEM;
    while (rc == 0 && got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            rc = n < 0 ? -errno : -EIO;
        else
            got += (size_t)n;
    }
    if (fd >= 0)
        close(fd);
    if (rc < 0) {
        snprintf(err, errlen, "%s: %s", path, rc == -EFBIG ? "larger than 1 MiB" : rc == -EISDIR ? "not a regular file" : strerror(-rc));
        free(buf);
        return rc;
    }
    rc = template_compile(path, buf ? buf : "", got, out, err, errlen);
    free(buf);
    return rc;
}

int template_render(const struct template *t, template_lookup_fn lookup, void *ctx, struct template_buf *out,
                    char *err, size_t errlen)
{
    for (size_t i = 0; i < t->count;) {
        const struct node *n = &t->nodes[i];
        const char *v;
        int rc = 0;
        switch (n->kind) {
        case N_TEXT:
            rc = template_buf_append(out, n->s, n->len);
            break;
        case N_VAR:
            v = lookup(ctx, n->s, n->len);
            if (v)
                rc = template_buf_puts(out, v);
            else if (n->has_def)
                rc = template_buf_append(out, n->def, n->deflen);
            else {
                snprintf(err, errlen, "%s:%u: undefined variable \"%.*s\" (give it a default: {{%.*s|...}})", t->name,
                         n->line, (int)n->len, n->s, (int)n->len, n->s);
                return -EINVAL;
            }
            break;
        case N_IF:
        case N_UNLESS:
            v = lookup(ctx, n->s, n->len);
            if ((v && *v) != (n->kind == N_IF)) {
                i = n->jump;
                continue;
            }
            break;
        case N_ELSE:
            i = n->jump;
            continue;
        case N_END:
            break;
        }
        if (rc < 0) {
            snprintf(err, errlen, "%s: out of memory", t->name);
            return rc;
        }
        i++;
    }
    if (out->len == 0 && reserve(out, 0) == 0)
        out->data[0] = '\0'; /* an empty rendering is still a string */
    return 0;
}

void template_each_var(const struct template *t,
                       void (*fn)(void *ctx, const char *name, size_t len, bool has_default, unsigned line), void *ctx)
{
    for (size_t i = 0; i < t->count; i++) {
        const struct node *n = &t->nodes[i];
        if (n->kind == N_VAR || n->kind == N_IF || n->kind == N_UNLESS)
            fn(ctx, n->s, n->len, n->has_def || n->kind != N_VAR, n->line);
    }
}
