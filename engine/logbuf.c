#include "engine/logbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define LOGBUF_FIRST_CAP 65536u
#define LOGBUF_LINE_MAX 1024u /* room made before formatting; longer lines are measured and retried */

void logbuf_init(struct logbuf *l, int fd, const char *who, size_t max)
{
    *l = (struct logbuf){ .fd = fd, .who = who ? who : "log", .max = max ? max : LOGBUF_DEFAULT_MAX };
}

/* Room for need more bytes within max; false when the line must be dropped. */
static int reserve(struct logbuf *l, size_t need)
{
    if (l->len + need <= l->cap)
        return 1;
    if (l->len + need > l->max)
        return 0; /* nobody flushed: never grow without bound */
    size_t cap = l->cap ? l->cap : LOGBUF_FIRST_CAP;
    while (cap < l->len + need)
        cap *= 2;
    if (cap > l->max)
        cap = l->max;
    char *d = realloc(l->data, cap);
    if (!d)
        return 0;
    l->data = d;
    l->cap = cap;
    return 1;
}

void logbuf_printf(struct logbuf *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    logbuf_vprintf(l, fmt, ap);
    va_end(ap);
}

void logbuf_vprintf(struct logbuf *l, const char *fmt, va_list ap)
{
    size_t need = LOGBUF_LINE_MAX;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!reserve(l, need))
            break;
        va_list aq;
        va_copy(aq, ap);
        int n = vsnprintf(l->data + l->len, l->cap - l->len, fmt, aq);
        va_end(aq);
        if (n < 0)
            break;
        if ((size_t)n < l->cap - l->len) {
            l->len += (size_t)n;
            return;
        }
        need = (size_t)n + 1;
    }
    l->dropped++;
}

size_t logbuf_flush(struct logbuf *l)
{
    char notice[96];
    size_t nlen = 0;
    if (l->dropped) {
        int n = snprintf(notice, sizeof notice, "%s: %llu log lines dropped\n", l->who,
                         (unsigned long long)l->dropped);
        nlen = n > 0 ? (size_t)n : 0;
    }
    size_t off = 0;
    while (off < l->len) {
        ssize_t n = write(l->fd, l->data + off, l->len - off);
        if (n <= 0)
            break; /* a stuck log never blocks serving: drop the rest */
        off += (size_t)n;
    }
    if (nlen && write(l->fd, notice, nlen) == (ssize_t)nlen) {
        off += nlen;
        l->dropped = 0;
    }
    l->len = 0;
    return off;
}

void logbuf_free(struct logbuf *l)
{
    free(l->data);
    *l = (struct logbuf){ 0 };
}
