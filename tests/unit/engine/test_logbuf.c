#include "engine/logbuf.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int fds[2];

static void open_pipe(void)
{
    cr_assert_eq(pipe2(fds, O_NONBLOCK), 0);
}

static void close_pipe(void)
{
    close(fds[0]);
    close(fds[1]);
}

static size_t drain(char *buf, size_t cap)
{
    ssize_t n = read(fds[0], buf, cap - 1);
    buf[n > 0 ? n : 0] = 0;
    return n > 0 ? (size_t)n : 0;
}

TestSuite(logbuf, .init = open_pipe, .fini = close_pipe);

Test(logbuf, lines_are_written_in_order_by_one_flush)
{
    struct logbuf l;
    logbuf_init(&l, fds[1], "http", 0);
    logbuf_printf(&l, "a %d\n", 1);
    logbuf_printf(&l, "b %s\n", "two");
    char buf[256];
    cr_assert_eq(drain(buf, sizeof buf), 0, "nothing is written before the flush");
    cr_assert_eq(logbuf_flush(&l), 10);
    drain(buf, sizeof buf);
    cr_assert_str_eq(buf, "a 1\nb two\n");
    cr_assert_eq(logbuf_flush(&l), 0, "a second flush has nothing to write");
    logbuf_free(&l);
}

Test(logbuf, a_line_longer_than_the_first_reservation_is_kept_whole)
{
    struct logbuf l;
    logbuf_init(&l, fds[1], "tftp", 0);
    char big[3000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    logbuf_printf(&l, "%s\n", big);
    cr_assert_eq(l.dropped, 0);
    cr_assert_eq(l.len, sizeof big);
    char buf[4096];
    logbuf_flush(&l);
    cr_assert_eq(drain(buf, sizeof buf), sizeof big);
    logbuf_free(&l);
}

Test(logbuf, beyond_max_lines_are_dropped_counted_and_reported)
{
    struct logbuf l;
    logbuf_init(&l, fds[1], "dhcp", 4096);
    for (int i = 0; i < 1000; i++)
        logbuf_printf(&l, "line %04d\n", i);
    cr_assert_leq(l.len, 4096);
    cr_assert_gt(l.dropped, 0);
    uint64_t dropped = l.dropped;
    size_t kept = l.len;
    char buf[8192];
    logbuf_flush(&l);
    size_t n = drain(buf, sizeof buf);
    char notice[64];
    snprintf(notice, sizeof notice, "dhcp: %llu log lines dropped\n", (unsigned long long)dropped);
    cr_assert_eq(n, kept + strlen(notice));
    cr_assert_str_eq(buf + kept, notice);
    cr_assert_eq(strncmp(buf, "line 0000\n", 10), 0, "the oldest lines are kept, the newest dropped");
    cr_assert_eq(l.dropped, 0, "the count restarts once reported");
    logbuf_printf(&l, "after\n");
    logbuf_flush(&l);
    drain(buf, sizeof buf);
    cr_assert_str_eq(buf, "after\n");
    logbuf_free(&l);
}

Test(logbuf, a_full_pipe_drops_the_rest_instead_of_blocking)
{
    struct logbuf l;
    logbuf_init(&l, fds[1], "http", 8u << 20);
    int pipe_size = fcntl(fds[1], F_GETPIPE_SZ);
    cr_assert_gt(pipe_size, 0);
    char line[1000];
    memset(line, 'y', sizeof line - 2);
    line[sizeof line - 2] = '\n';
    line[sizeof line - 1] = 0;
    for (int i = 0; i < 2 * pipe_size / 999 + 2; i++)
        logbuf_printf(&l, "%s", line);
    size_t written = logbuf_flush(&l);
    cr_assert_eq(written, (size_t)pipe_size, "written %zu, pipe holds %d", written, pipe_size);
    cr_assert_eq(l.len, 0);
    logbuf_free(&l);
}
