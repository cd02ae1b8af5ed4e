/* tests/tsan/criterion/criterion.h — a small in-process stand-in for the Criterion
 * macros the concurrency suites use, so those same test files run under
 * ThreadSanitizer (Criterion #274: BoxFort cannot map its arena under TSan).
 * Only `make tsan` puts this directory first on the include path. */
#pragma once
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
struct crf_test { const char *suite, *name; void (*fn)(void); };
void crf_register(const char *s, const char *n, void (*fn)(void));
void crf_fail(const char *file, int line, const char *expr, const char *fmt, ...);
#define Test(s, n, ...) static void s##_##n(void); \
    __attribute__((constructor)) static void crf_reg_##s##_##n(void) { crf_register(#s, #n, s##_##n); } \
    static void s##_##n(void)
#define CRF_CHECK(cond, expr, ...) do { if (!(cond)) crf_fail(__FILE__, __LINE__, expr, "" __VA_ARGS__); } while (0)
#define cr_assert(c, ...) CRF_CHECK((c), #c, __VA_ARGS__)
#define cr_assert_not(c, ...) CRF_CHECK(!(c), "!" #c, __VA_ARGS__)
#define cr_assert_eq(a, b, ...) CRF_CHECK((a) == (b), #a " == " #b, __VA_ARGS__)
#define cr_assert_neq(a, b, ...) CRF_CHECK((a) != (b), #a " != " #b, __VA_ARGS__)
#define cr_assert_lt(a, b, ...) CRF_CHECK((a) < (b), #a " < " #b, __VA_ARGS__)
#define cr_assert_leq(a, b, ...) CRF_CHECK((a) <= (b), #a " <= " #b, __VA_ARGS__)
#define cr_assert_gt(a, b, ...) CRF_CHECK((a) > (b), #a " > " #b, __VA_ARGS__)
#define cr_assert_geq(a, b, ...) CRF_CHECK((a) >= (b), #a " >= " #b, __VA_ARGS__)
#define cr_assert_null(p, ...) CRF_CHECK((p) == NULL, #p " == NULL", __VA_ARGS__)
#define cr_assert_not_null(p, ...) CRF_CHECK((p) != NULL, #p " != NULL", __VA_ARGS__)
#define cr_assert_str_eq(a, b, ...) CRF_CHECK(strcmp((a), (b)) == 0, #a " streq " #b, __VA_ARGS__)
#define cr_expect_eq cr_assert_eq
