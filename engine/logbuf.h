/* logbuf: a worker's access log, buffered in memory and written once per loop turn.
 *
 * Serving threads never wait on the log: lines are appended to a growing buffer
 * and written in one write(2) from the loop's idle hook.  The buffer holds at most
 * `max` bytes between two flushes; lines beyond that (or when memory runs out) are
 * dropped and counted, and the next flush reports how many. */
#ifndef BOOTSTORM_ENGINE_LOGBUF_H
#define BOOTSTORM_ENGINE_LOGBUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define LOGBUF_DEFAULT_MAX (1u << 20)

struct logbuf {
    char *data;
    size_t len, cap, max;
    uint64_t dropped;       /* lines lost since the last flush */
    int fd;                 /* where flushes go (stdout in the services) */
    const char *who;        /* "http", "tftp", ...: names the dropped-lines notice */
};

/* An empty log writing to fd; max 0 means LOGBUF_DEFAULT_MAX.  Allocates nothing yet. */
void logbuf_init(struct logbuf *l, int fd, const char *who, size_t max);
/* Appends one formatted line (the caller ends it with \n); never blocks. */
void logbuf_printf(struct logbuf *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void logbuf_vprintf(struct logbuf *l, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Writes what is buffered (and a "N log lines dropped" notice); a write error or a
 * full pipe drops the rest rather than stall serving.  Returns the bytes written. */
size_t logbuf_flush(struct logbuf *l);
void logbuf_free(struct logbuf *l);

#endif
