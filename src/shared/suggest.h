/*
 * "Did you mean ...?": how far apart two names are, for the one suggestion
 * made when a user misspells a setting (MPROF_RAET, read by core/options.c)
 * or a flag (mprof run --rat, read by cli/cmd_run.c).  Header-only, so that
 * the library and the command-line tool share it without linking each
 * other.
 */
#ifndef MPROF_SHARED_SUGGEST_H
#define MPROF_SHARED_SUGGEST_H

#include <string.h>

/* Longest name compared, in bytes: more than any name in the tables. */
#define MPROF_SUGGEST_MAXLEN 48

/* Optimal string alignment distance: insertions, deletions, substitutions
 * and swaps of two neighbours, each one edit ("HAEP" is one from "HEAP").
 * Names are cut to MPROF_SUGGEST_MAXLEN bytes. */
static inline unsigned mprof_edit_distance(const char *a, const char *b)
{
    size_t n = strnlen(a, MPROF_SUGGEST_MAXLEN), m = strnlen(b, MPROF_SUGGEST_MAXLEN);
    unsigned d[MPROF_SUGGEST_MAXLEN + 1][MPROF_SUGGEST_MAXLEN + 1];
    for (size_t i = 0; i <= n; i++)
        d[i][0] = (unsigned)i;
    for (size_t j = 0; j <= m; j++)
        d[0][j] = (unsigned)j;
    for (size_t i = 1; i <= n; i++) {
        for (size_t j = 1; j <= m; j++) {
            unsigned best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[n][m];
}

/* The most edits at which `known` (len bytes) is still worth suggesting:
 * one for short names, where two edits reach another word entirely. */
static inline unsigned mprof_suggest_limit(size_t len)
{
    return len <= 4 ? 1 : len <= 8 ? 2 : 3;
}

#endif
