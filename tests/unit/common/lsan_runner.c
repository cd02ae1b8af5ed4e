/* tests/unit/common/lsan_runner.c — linked into every Criterion unit binary.
 *
 * Criterion 2.4.1's runner (the parent process) leaks a 48-byte record per test
 * with .timeout when tests run in parallel (--jobs 2, as tools/run-unit.sh does),
 * which fails the binary under LeakSanitizer.  Suppress libcriterion's leaks in
 * the runner only: the test processes (BoxFort children, BXFI_MAP set) keep full
 * leak checking. */
#ifdef __SANITIZE_ADDRESS__
#include <stdlib.h>

const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return getenv("BXFI_MAP") ? "" : "leak:libcriterion.so\n"; }
#else
typedef int lsan_runner_unused; /* ISO C wants something in a translation unit */
#endif
