/*
 * Stand-in for libmprof.so in the `mprof run` tests: proves the library
 * really was preloaded into the program, and shows what the program's
 * environment looked like, without depending on the profiler working.
 *
 * When CLI_TEST_PRELOAD_REPORT names a file, the constructor appends
 * "preloaded" and every MPROF_* and LD_PRELOAD variable to it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

__attribute__((constructor)) static void report_environment(void)
{
    const char *path = getenv("CLI_TEST_PRELOAD_REPORT");
    if (path == NULL)
        return;
    FILE *f = fopen(path, "a");
    if (f == NULL)
        return;
    fputs("preloaded\n", f);
    for (char **e = environ; *e != NULL; e++)
        if (strncmp(*e, "MPROF_", 6) == 0 || strncmp(*e, "LD_PRELOAD=", 11) == 0)
            fprintf(f, "%s\n", *e);
    fclose(f);
}
