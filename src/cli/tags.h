/*
 * Labels in `mprof top`: `--tag KEY=VALUE` keeps only the samples carrying
 * a label, as `go tool pprof -tagfocus` does, and `--tags` lists every
 * label key with the total of each of its values, as `go tool pprof -tags`
 * prints it (same layout, numbers and order), so that the two can be read
 * side by side.
 *
 * The filter is pprof's: VALUE is one or more comma-separated RE2
 * expressions, each matched anywhere in a string label's value (so
 * "request=up" matches "upload"; anchor with ^...$ for a whole value); a
 * sample is kept when its KEY has a value one of them matches.  Without
 * "KEY=", every expression must match some "key:value" of the sample.  A
 * VALUE that is a number or a range of numbers, with or without a unit
 * ("tid=1234", "bytes=4kb:", "bytes=:1mb", "bytes=1kb:64kb"), matches
 * numeric labels instead, compared in the unit of the range as pprof does
 * (a number without a unit matches labels without one: "bytes=4096" finds
 * nothing, "bytes=4096b" does).  Several --tag must all match (pprof takes
 * one -tagfocus).
 *
 * Labels come from the file, hostile as the rest of it: expressions are
 * run by cli/re_match.h within a step budget, and the summary's memory is
 * bounded by the profile's memory budget.
 */
#ifndef MPROF_CLI_TAGS_H
#define MPROF_CLI_TAGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cli/profile_reader.h"
#include "cli/re_match.h"

/* Comma-separated expressions a --tag may hold. */
#define TAG_MAX_ALTERNATIVES 16

typedef struct tag_filter {
    const char *spec; /* as given: the "Active filters" line shows it */
    char *key;        /* NULL: any key, matched as "key:value" */
    /* VALUE was a number or range (pprof's "4kb", "1mb:", ":64", "1:9"):
     * numeric labels whose value, in unit, lies in it. */
    bool numeric, has_lo, has_hi;
    double lo, hi;
    char unit[64];
    re_prog *re[TAG_MAX_ALTERNATIVES];
    size_t nre;
} tag_filter;

/* Parses one --tag SPEC.  false with err set (what is wrong, for a usage
 * error). */
bool tag_filter_parse(const char *spec, tag_filter *f, char *err, size_t errlen);
void tag_filter_free(tag_filter *f);

/*
 * Removes from p the samples that fail any of the n filters.  Returns how
 * many samples are left, or -1 with err set when matching would take more
 * than the step budget (the profile is then unchanged).
 */
long tag_focus(pp_profile *p, const tag_filter *f, size_t n, char *err, size_t errlen);

/*
 * `go tool pprof -tags` of p, values taken from sample_index: for each
 * label key (sorted by name) its total, then each value with its share,
 * largest first.  Numeric labels are shown in their unit (the profile's,
 * else pprof's guess from the key).  0, or -1 with err set (out of memory,
 * or more labels than the profile's memory budget pays for).
 */
int tags_print(FILE *out, const pp_profile *p, size_t sample_index, char *err, size_t errlen);

#endif /* MPROF_CLI_TAGS_H */
