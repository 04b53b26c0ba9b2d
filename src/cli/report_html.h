/*
 * The HTML report of `mprof report`: one self-contained file (the page,
 * its script and the profile's data inline; no request to any network, so
 * it opens from a file:// path or an e-mail attachment) with a flame graph,
 * the top table, a header saying what the numbers mean and, for a heap
 * profile that carries one, the memory timeline (docs/report.md).
 *
 * The page is web/report.html, embedded into the binary at build time
 * (CMake writes it out as a C array: report_template.c in the build tree).
 * Its one placeholder, REPORT_DATA_MARK, is replaced by the data as JSON.
 *
 * The data is a call tree per profile: nodes keyed by (parent, function),
 * every sample's values added to its leaf node's self values, one value per
 * sample type, so that the page switches sample type without the file
 * holding the samples again.  Values are signed, which a difference
 * (`--base`, built by the profile merge of cli/profile_merge.h) needs.
 *
 * Several profiles (merged) and `--base OLD NEW` enter here as one
 * pp_profile each: the caller merges first and passes the result as
 * report_input.profile, so nothing in this file knows where a profile came
 * from.
 */
#ifndef MPROF_CLI_REPORT_HTML_H
#define MPROF_CLI_REPORT_HTML_H

#include <stdio.h>

#include "cli/profile_reader.h"
#include "cli/timeline.h"

/* What the template holds where the data goes. */
#define REPORT_DATA_MARK "/*MPROF_REPORT_DATA*/"

typedef struct report_input {
    const pp_profile *profile; /* required: the profile drawn */
    const char *profile_name;  /* its file name, for the header */
    /* Optional: the peak heap profile (mprof run --peak), drawn as a
     * second flame graph the page can switch to. */
    const pp_profile *peak;
    const char *peak_name;
    /* Optional: the memory timeline (timeline_find on the profile). */
    const timeline *timeline;
    /* The time the report was made, for the header. */
    long long generated_unix;
} report_input;

/*
 * Writes the whole page to out.  The profiles' function names should be
 * simplified and pruned already (top_simplify_function_names,
 * top_prune_uninteresting), as for `mprof top`, so that both agree.
 * 0, -1 when out of memory, -2 on a write error (errno set), -3 when
 * the call tree would take more than a profile's memory budget
 * (pp_profile.memory_budget: PP_MEMORY_PER_BYTE bytes a byte of it).
 */
int report_write_html(FILE *out, const report_input *in);

/* The embedded template (generated at build time from web/report.html). */
extern const unsigned char mprof_report_template[];
extern const unsigned long mprof_report_template_len;

#endif /* MPROF_CLI_REPORT_HTML_H */
