/*
 * The data behind `mprof top`: one row per function with its flat and
 * cumulative value, computed the way pprof's text report computes them so
 * that both tools agree on the same file.
 *
 *  - Every Line of a Location is a frame of its own: an inlined function
 *    gets a row, and the sample's flat value goes to the innermost Line of
 *    its leaf Location.
 *  - A function that appears several times in one stack (recursion, or
 *    inlined into itself) adds the sample to its cum once.
 *  - The profile's drop_frames / keep_frames regular expressions are
 *    applied first (allocator entry points vanish with everything they
 *    called).
 *  - Rows whose |cum| is below node_fraction of the total are dropped, then
 *    the first node_count rows in sort order are kept.
 *  - A row whose callers all inline it is marked "(inline)", one that is
 *    inlined at some call sites only "(partial-inline)".
 *  - Frames without a function name are grouped by object file:
 *    "[libfoo.so]", or "<unknown>" without a file.
 */
#ifndef MPROF_CLI_TOP_REPORT_H
#define MPROF_CLI_TOP_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli/profile_reader.h"

typedef struct top_options {
    size_t sample_index;  /* which value of each sample to report */
    bool cum_sort;        /* sort by cum instead of flat */
    size_t node_count;    /* rows to keep, 0 for all */
    double node_fraction; /* drop rows with |cum| below this share of the total */
    double edge_fraction; /* ignore call edges below this share when labelling inlining */
} top_options;

/* pprof's defaults for its text reports. */
#define TOP_DEFAULT_NODE_FRACTION 0.005
#define TOP_DEFAULT_EDGE_FRACTION 0.001

typedef struct top_row {
    const char *name;
    int64_t flat;
    int64_t cum;
    const char *inline_label; /* "", "(inline)" or "(partial-inline)" */
} top_row;

typedef struct top_report {
    top_row *rows;
    size_t nrows;
    int64_t total;          /* sum of |value| over all samples; in a diff, over the base's */
    int64_t shown_flat;     /* sum of flat over the rows */
    size_t dropped_nodes;   /* rows dropped by node_fraction */
    size_t candidate_nodes; /* rows left before node_count applied */
    /* Smallest non-zero |flat| (or |cum| when flat is 0) among the rows;
     * picks the unit every value is printed in. */
    int64_t min_value;

    struct top_graph *graph; /* owns the row names */
} top_report;

/*
 * Shortens function names that look like demangled C++ ("ns::f(int)",
 * "vec<int>::at") to their simplified form ("ns::f", "vec::at") when the
 * profile gives no separate display name (name empty or equal to
 * system_name): pprof does the same, so that overloads and template
 * instances share a row.  Mangled names are left as they are.  Returns 0,
 * or -1 when out of memory.
 */
int top_simplify_function_names(pp_profile *p);

/*
 * Applies the profile's drop_frames / keep_frames to its locations and
 * samples, as pprof does before any report: RE2 expressions matched
 * against whole simplified function names (cli/re_match.h, which bounds
 * their cost).  Returns 0, or -1 when the filters are ignored, leaving the
 * profile as it was, with warning saying why: an expression that does not
 * compile or is beyond re_match.h's limits, or matching that would take
 * more than its step budget.
 */
int top_prune_uninteresting(pp_profile *p, char *warning, size_t warnlen);

typedef enum top_index_result {
    TOP_INDEX_OK,
    TOP_INDEX_NO_TYPES, /* the profile has no sample types at all */
    TOP_INDEX_UNKNOWN,  /* spec names no sample type; err lists the valid ones */
} top_index_result;

/*
 * Picks the sample value to report.  spec NULL or "": the profile's
 * default_sample_type if it names one of its types, else the last type.
 * Otherwise an index, or a type name; "inuse_space" also finds a type
 * called "space" (old heap profiles).
 */
top_index_result top_find_sample_index(const pp_profile *p, const char *spec, size_t *index,
                                       char *err, size_t errlen);

/* Builds the rows.  Returns 0, -1 when out of memory, or -2 when the call
 * graph would take more than what is left of the profile's memory budget
 * (pp_profile.memory_budget). */
int top_report_build(const pp_profile *p, const top_options *o, top_report *out);

void top_report_free(top_report *r);

#endif /* MPROF_CLI_TOP_REPORT_H */
