/*
 * The options table and its reader (core/options.c): the table's own
 * invariants (shared/options.def), values read once and checked, and the
 * "did you mean" for misspelled names.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/options.h"

#include "../lib/check.h"

struct row {
    const char *id, *name, *type, *audience, *flag;
    long deflt, min, max;
};

static const struct row rows[] = {
#define MPROF_OPTION(ID, NAME, TYPE, AUDIENCE, HINT, DEFAULT, DEFAULT_TEXT, MIN, MAX, FLAG, DOC)  \
    {#ID, NAME, #TYPE, #AUDIENCE, FLAG, DEFAULT, MIN, MAX},
#include "shared/options.def"
#undef MPROF_OPTION
};
#define NROWS (sizeof rows / sizeof rows[0])

static void test_table(void)
{
    CHECK(NROWS == MPROF_OPT_COUNT - 1, "one enum value per row");
    for (size_t i = 0; i < NROWS; i++) {
        const struct row *r = &rows[i];
        char want[64];
        snprintf(want, sizeof want, "MPROF_%s", r->id);
        CHECK(strcmp(r->name, want) == 0, "invariant 1: %s is named %s", r->id, r->name);
        CHECK(strcmp(mprof_option_name((enum mprof_option_id)(i + 1)), r->name) == 0);
        if (strcmp(r->audience, "TEST") == 0)
            CHECK(strncmp(r->name, "MPROF_TEST_", 11) == 0, "invariant 1: test knob %s", r->name);
        else
            CHECK(strncmp(r->name, "MPROF_TEST_", 11) != 0, "%s is not a test knob", r->name);
        if (strcmp(r->type, "INT") == 0) {
            CHECK(r->min <= r->max, "%s: min <= max", r->name);
            CHECK(r->deflt == 0 || (r->min <= r->deflt && r->deflt <= r->max),
                  "invariant 2: %s's default %ld in %ld..%ld", r->name, r->deflt, r->min, r->max);
        }
        if (strcmp(r->type, "BOOL") == 0)
            CHECK(r->min == 0 && r->max == 1 && (r->deflt == 0 || r->deflt == 1),
                  "%s: a BOOL row is 0..1 with a default of 0 or 1", r->name);
        if (r->flag != NULL) {
            CHECK(strncmp(r->flag, "--", 2) == 0, "invariant 3: %s", r->flag);
            for (size_t j = 0; j < i; j++)
                CHECK(rows[j].flag == NULL || strcmp(rows[j].flag, r->flag) != 0,
                      "invariant 3: %s twice", r->flag);
        }
    }
}

static void check_suggest(const char *typo, const char *want)
{
    const char *got = mprof_option_suggest(typo);
    if (want == NULL)
        CHECK(got == NULL, "%s: no suggestion, got %s", typo, got ? got : "");
    else
        CHECK(got != NULL && strcmp(got, want) == 0, "%s: want %s, got %s", typo, want,
              got ? got : "NULL");
}

static void test_suggest(void)
{
    check_suggest("MPROF_RATEE", "MPROF_RATE");
    check_suggest("MPROF_RAET", "MPROF_RATE");
    check_suggest("MPROF_HAEP", "MPROF_HEAP");
    check_suggest("MPROF_CPUHZ", "MPROF_CPU_HZ");
    check_suggest("MPROF_BLOCKRATE", "MPROF_BLOCK_RATE");
    check_suggest("MPROF_SAMPLE_RATE", "MPROF_RATE");
    check_suggest("MPROF_HEAP_FILE", "MPROF_HEAP");
    check_suggest("MPROF_MUTEX_FRACTON", "MPROF_MUTEX_FRACTION");
    check_suggest("MPROF_FROBNICATE", NULL);
    check_suggest("MPROF_ROOT_PIDD", NULL);      /* mprof's own: never suggested */
    check_suggest("MPROF_TEST_CPU_RIN", NULL);   /* test knobs: never suggested */
    check_suggest("RATE", NULL);
}

/* Runs the load with stderr in a file; returns the file's text. */
static char *load_capturing(char *buf, size_t len)
{
    char path[] = "/tmp/mprof-options.XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    unlink(path);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    mprof_options_reset_for_test();
    mprof_options_load();
    dup2(saved, 2);
    close(saved);
    ssize_t n = pread(fd, buf, len - 1, 0);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static int count(const char *text, const char *what)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, what)) != NULL; p++)
        n++;
    return n;
}

static void test_values(void)
{
    static char longpath[PATH_MAX + 10];
    memset(longpath, 'x', sizeof longpath - 1);
    setenv("MPROF_RATE", "4096", 1);
    setenv("MPROF_CPU_HZ", "abc", 1);
    setenv("MPROF_TRACE_BUFFER", "99999999", 1);
    setenv("MPROF_HEAP", "", 1);
    setenv("MPROF_CPU", "/tmp/cpu.%p.pb.gz", 1);
    setenv("MPROF_TRACE_FILE", longpath, 1);
    setenv("MPROF_RAET", "1", 1);
    setenv("MPROF_TEST_WHATEVER", "1", 1);
    unsetenv("MPROF_ROOT_PID");
    char err[4096];
    load_capturing(err, sizeof err);

    CHECK(mprof_option_long(MPROF_OPT_RATE) == 4096 && mprof_option_is_set(MPROF_OPT_RATE));
    CHECK(mprof_option_long(MPROF_OPT_CPU_HZ) == 100 && !mprof_option_is_set(MPROF_OPT_CPU_HZ),
          "invariant 2: a bad value is the default, and not set");
    CHECK(count(err, "ignoring MPROF_CPU_HZ=\"abc\": expected an integer from 1 to 10000") == 1,
          "one warning for a bad value: %s", err);
    CHECK(mprof_option_long(MPROF_OPT_TRACE_BUFFER) == 4096, "out of range: the default");
    CHECK(count(err, "ignoring MPROF_TRACE_BUFFER") == 1);
    CHECK(mprof_option_text(MPROF_OPT_HEAP) == NULL && !mprof_option_is_set(MPROF_OPT_HEAP),
          "invariant 3: empty is unset");
    CHECK(mprof_option_text(MPROF_OPT_CPU) != NULL &&
          strcmp(mprof_option_text(MPROF_OPT_CPU), "/tmp/cpu.%p.pb.gz") == 0);
    CHECK(mprof_option_text(MPROF_OPT_TRACE_FILE) == NULL, "a path of PATH_MAX bytes is refused");
    CHECK(count(err, "ignoring MPROF_TRACE_FILE: longer than") == 1, "%s", err);
    CHECK(count(err, "ignoring unknown setting MPROF_RAET: did you mean MPROF_RATE?") == 1,
          "one did-you-mean: %s", err);
    CHECK(count(err, "MPROF_TEST_WHATEVER") == 0, "MPROF_TEST_* belongs to the tests");
    CHECK(mprof_option_long(MPROF_OPT_HEADERS) == 1, "an unset INT is its default");
    CHECK(mprof_option_min(MPROF_OPT_CPU_HZ) == 1 && mprof_option_max(MPROF_OPT_CPU_HZ) == 10000);

    /* Invariant 4: read once.  The program rewriting its environment
     * changes nothing. */
    setenv("MPROF_RATE", "1", 1);
    unsetenv("MPROF_CPU");
    CHECK(mprof_option_long(MPROF_OPT_RATE) == 4096);
    CHECK(mprof_option_text(MPROF_OPT_CPU) != NULL);

    /* A child of a profiled process (MPROF_ROOT_PID set) leaves unknown
     * names to its root, which already said it once. */
    setenv("MPROF_ROOT_PID", "1", 1);
    load_capturing(err, sizeof err);
    CHECK(count(err, "MPROF_RAET") == 0, "no repeat in a child: %s", err);
    CHECK(count(err, "MPROF_CPU_HZ") == 1, "bad values are still reported: %s", err);
    CHECK(mprof_option_long(MPROF_OPT_ROOT_PID) == 1);

    const char *names[] = {"MPROF_RATE", "MPROF_CPU_HZ", "MPROF_TRACE_BUFFER", "MPROF_HEAP",
                           "MPROF_CPU", "MPROF_TRACE_FILE", "MPROF_RAET", "MPROF_TEST_WHATEVER",
                           "MPROF_ROOT_PID"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        unsetenv(names[i]);
    mprof_options_reset_for_test();
}

/* Every BOOL setting takes the same words, in any case, and refuses the
 * rest out loud (MPROF_CPU_ITIMER=yes was once silently nothing). */
static void test_bools(void)
{
    static const struct {
        const char *text;
        long want; /* -1: refused */
    } cases[] = {{"yes", 1},  {"YES", 1}, {"true", 1}, {"On", 1},  {"1", 1},
                 {"no", 0},   {"No", 0},  {"false", 0}, {"OFF", 0}, {"0", 0},
                 {"y", -1},   {"2", -1},  {"yess", -1}, {"-1", -1}, {" yes", -1}};
    static const enum mprof_option_id bools[] = {MPROF_OPT_CPU_ITIMER, MPROF_OPT_HEADERS};
    for (size_t b = 0; b < sizeof bools / sizeof bools[0]; b++) {
        const char *name = mprof_option_name(bools[b]);
        long deflt = bools[b] == MPROF_OPT_HEADERS ? 1 : 0;
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            char err[2048];
            setenv(name, cases[i].text, 1);
            load_capturing(err, sizeof err);
            long got = mprof_option_long(bools[b]);
            if (cases[i].want >= 0) {
                CHECK(got == cases[i].want && mprof_option_is_set(bools[b]),
                      "%s=%s: %ld", name, cases[i].text, got);
                CHECK(count(err, name) == 0, "%s=%s: no warning: %s", name, cases[i].text, err);
            } else {
                CHECK(got == deflt && !mprof_option_is_set(bools[b]), "%s=%s: the default",
                      name, cases[i].text);
                char want[160];
                snprintf(want, sizeof want,
                         "mprof: ignoring %s=\"%s\": expected yes or no (also true/false, "
                         "on/off, 1/0); using the default (%s)",
                         name, cases[i].text, deflt ? "yes" : "no");
                CHECK(count(err, want) == 1, "%s=%s refused in words: %s", name, cases[i].text,
                      err);
            }
        }
        unsetenv(name);
    }
    mprof_options_reset_for_test();
}

int main(void)
{
    test_table();
    test_suggest();
    test_values();
    test_bools();
    return check_result("options");
}
