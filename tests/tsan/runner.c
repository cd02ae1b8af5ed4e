/* tests/tsan/runner.c — runs the tests registered through tests/tsan/criterion,
 * in process, in order; a failed assertion aborts with its file:line. */
#include <criterion/criterion.h>
#include <stdarg.h>

static struct crf_test tests[256];
static int ntests;

void crf_register(const char *s, const char *n, void (*fn)(void))
{
    if (ntests < 256)
        tests[ntests++] = (struct crf_test){s, n, fn};
}

void crf_fail(const char *file, int line, const char *expr, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FAIL %s:%d: %s: ", file, line, expr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

int main(int argc, char **argv)
{
    int run = 0;
    for (int i = 0; i < ntests; i++) {
        if (argc > 1 && !strstr(tests[i].name, argv[1]))
            continue;
        fprintf(stderr, "[RUN ] %s/%s\n", tests[i].suite, tests[i].name);
        tests[i].fn();
        fprintf(stderr, "[ OK ] %s/%s\n", tests[i].suite, tests[i].name);
        run++;
    }
    fprintf(stderr, "tsan-runner: %d tests passed\n", run);
    return 0;
}
