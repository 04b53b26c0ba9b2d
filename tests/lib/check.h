/*
 * The one check header of the C and C++ tests.
 *
 *   CHECK(cond)                  on failure prints "FAIL file:line: cond" on
 *   CHECK(cond, fmt, ...)        stderr, with ": message" when one is given
 *                                (fmt is a string literal), counts it, and the
 *                                test goes on, so that one run shows every
 *                                failure
 *   CHECK_STR(got, want)         the two strings are equal; prints both
 *   REQUIRE(cond[, fmt, ...])    as CHECK, but the test stops at once with
 *                                status 1: for the set-up that every later
 *                                check depends on
 *   FAIL([fmt, ...])             a failure found by other means
 *   CHECK_LINE(line, cond, ...), FAIL_LINE(line, ...)
 *                                the same, reported at a caller's line (for
 *                                helpers that take __LINE__)
 *   check_failures()             failures so far
 *   check_failed()               counts one failure for a test that prints
 *                                its own report; nonzero when it should print
 *                                it (the first CHECK_REPORT_LIMIT are)
 *   return check_result("name"); main's exit status: 1 after any failure
 *
 * Failures are counted in one counter per program, shared by every
 * translation unit that includes this header (a weak definition: the
 * linker keeps one) and updated atomically, so checks may run on any
 * thread.  Beyond CHECK_REPORT_LIMIT failures they are still counted but no
 * longer printed: a check in a loop must not bury the first report.
 * Every line a failure prints starts with "FAIL", which the scripts that
 * compare failures between runs (tests/core/core_interpose.sh) rely on.
 */
#ifndef MPROF_TESTS_LIB_CHECK_H
#define MPROF_TESTS_LIB_CHECK_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef CHECK_REPORT_LIMIT
#define CHECK_REPORT_LIMIT 50
#endif

#ifdef __cplusplus
extern "C" {
#endif
int check_failure_count __attribute__((weak));
#ifdef __cplusplus
}
#endif

static inline int check_failures(void)
{
    return __atomic_load_n(&check_failure_count, __ATOMIC_RELAXED);
}

static inline int check_failed(void)
{
    int n = __atomic_add_fetch(&check_failure_count, 1, __ATOMIC_RELAXED);
    if (n == CHECK_REPORT_LIMIT + 1)
        fprintf(stderr, "FAIL: more than %d failures; the rest are counted, not printed\n",
                CHECK_REPORT_LIMIT);
    return n <= CHECK_REPORT_LIMIT;
}

/* fmt is " " (no message) or " message": the macros prepend the space, so
 * that a check without a message still passes printf a non-empty format. */
__attribute__((format(printf, 4, 5))) static inline void
check_fail_at(const char *file, int line, const char *cond, const char *fmt, ...)
{
    if (!check_failed())
        return;
    flockfile(stderr);
    fprintf(stderr, "FAIL %s:%d", file, line);
    if (cond != NULL)
        fprintf(stderr, ": %s", cond);
    if (fmt[0] != '\0' && fmt[1] != '\0') {
        va_list ap;
        va_start(ap, fmt);
        fputc(':', stderr);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
    }
    fputc('\n', stderr);
    funlockfile(stderr);
}

static inline int check_result(const char *name)
{
    int n = check_failures();
    if (n != 0) {
        fprintf(stderr, "%s: %d check(s) failed\n", name, n);
        return 1;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}

#define CHECK_LINE(line, cond, ...)                                                        \
    do {                                                                                   \
        if (!(cond))                                                                       \
            check_fail_at(__FILE__, (line), #cond, " " __VA_ARGS__);                       \
    } while (0)

/* Not CHECK_LINE(__LINE__, ...): #cond must be the text as written, not
 * its macro expansion. */
#define CHECK(cond, ...)                                                                   \
    do {                                                                                   \
        if (!(cond))                                                                       \
            check_fail_at(__FILE__, __LINE__, #cond, " " __VA_ARGS__);                     \
    } while (0)

#define REQUIRE(cond, ...)                                                                 \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            check_fail_at(__FILE__, __LINE__, #cond, " " __VA_ARGS__);                     \
            exit(1);                                                                       \
        }                                                                                  \
    } while (0)

#define CHECK_STR(got, want)                                                               \
    do {                                                                                   \
        const char *check_got_ = (got), *check_want_ = (want);                             \
        if (strcmp(check_got_, check_want_) != 0)                                          \
            check_fail_at(__FILE__, __LINE__, #got " == " #want, " got \"%s\", want \"%s\"", \
                          check_got_, check_want_);                                        \
    } while (0)

#define FAIL_LINE(line, ...) check_fail_at(__FILE__, (line), NULL, " " __VA_ARGS__)
#define FAIL(...) FAIL_LINE(__LINE__, __VA_ARGS__)

#endif
