/*
 * Fuzz harness: the settings parser (src/core/options.c), driven from a
 * buffer: each line "NAME=VALUE" of the input becomes a variable of an
 * otherwise empty environment, the settings are loaded as at start-up,
 * and every setting is read back.  Values must come back within their
 * rows' ranges, texts shorter than PATH_MAX; warnings go to stderr.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/options.h"

/* The library's re-entrancy guard, which core/util.c reads. */
__thread int mprof_tls_guard __attribute__((tls_model("initial-exec")));

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    clearenv();
    char *copy = malloc(size + 1);
    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';
    for (char *line = copy, *next; line != NULL; line = next) {
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        char *eq = strchr(line, '=');
        if (eq == NULL || eq == line)
            continue;
        *eq = '\0';
        setenv(line, eq + 1, 1);
        (void)mprof_option_suggest(line);
    }
    mprof_options_reset_for_test();
    mprof_options_load();
    for (int id = 1; id < MPROF_OPT_COUNT; id++) {
        long v = mprof_option_long((enum mprof_option_id)id);
        if (mprof_option_is_set((enum mprof_option_id)id) &&
            (v < mprof_option_min((enum mprof_option_id)id) ||
             v > mprof_option_max((enum mprof_option_id)id)) &&
            mprof_option_text((enum mprof_option_id)id) == NULL)
            abort();
        const char *t = mprof_option_text((enum mprof_option_id)id);
        if (t != NULL && strlen(t) >= PATH_MAX)
            abort();
        (void)mprof_option_name((enum mprof_option_id)id);
    }
    free(copy);
    clearenv();
    return 0;
}
