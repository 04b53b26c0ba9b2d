/*
 * Merging and diffing decoded profiles, the way google/pprof does
 * (profile.Merge, `pprof A B`, `pprof -diff_base OLD NEW`), so that mprof's
 * figures and pprof's agree on the same files.
 *
 * Merging sums profiles of the same kind: the heaps of the processes of a
 * build, the CPU of the workers of a server, two runs of a test.  Records
 * are unified by content, never by id (ids are per file):
 *
 *  - a mapping by its build id (or, without one, its file name), its file
 *    offset and its size rounded up to 4 KiB, so the same library loaded
 *    at another address (ASLR: every run of a PIE program) is one mapping,
 *    at the address of the first profile that has it;
 *  - a function by its name, system name, file and start line;
 *  - a location by its mapping, its address relative to that mapping's
 *    start (then moved to the merged mapping's start), its lines (function,
 *    line, column) and is_folded;
 *  - a sample by its locations and its labels (in any order), whose values
 *    are added.
 * Samples whose values are all zero are left out, and with them whatever
 * only they referenced.  The header is pprof's: the sample and period
 * types, drop_frames and keep_frames of the first profile, the earliest
 * non-zero time, the summed durations, the largest period, every distinct
 * comment once, the first default sample type given.
 *
 * Profiles merge only when compatible: the same sample types (type and
 * unit, in the same order) and the same period type (or none on one side).
 * Anything else is refused with a message naming both files and their
 * types, and what to do instead.
 *
 * A diff is a merge in which the base's values are negated and its samples
 * carry the label pprof::base=true (PM_BASE_LABEL_KEY), as `pprof
 * -diff_base` does: a sample of the base never cancels a sample of the new
 * profile inside the merged file, so the file still tells them apart, and
 * reports take the base's total as 100% (top_report.h does).  Written out,
 * a diff opens in pprof like its own -diff_base.
 *
 * The result is an ordinary pp_profile (its own arena, nothing borrowed
 * from the inputs, which may be freed at once): top_report, the writer
 * (profile_writer.h) and any other report take it as they take a profile
 * read from a file.  Its memory_budget is the sum of the inputs' (0, no
 * budget, if any input has none); what the merge itself takes is bounded
 * by the inputs' sizes, since every merged record comes from an input
 * record.
 */
#ifndef MPROF_CLI_PROFILE_MERGE_H
#define MPROF_CLI_PROFILE_MERGE_H

#include <stdbool.h>
#include <stddef.h>

#include "cli/profile_reader.h"

/* The label of a diff's base samples, pprof's own. */
#define PM_BASE_LABEL_KEY "pprof::base"
#define PM_BASE_LABEL_VALUE "true"

typedef struct pm_source {
    const pp_profile *profile;
    const char *name; /* for messages: the file it came from */
    bool base;        /* a diff base: values negated, samples labelled */
} pm_source;

/*
 * Merges n >= 1 profiles in the order given (the first one's main binary
 * stays mappings[0]: reports print its name).  NULL on failure with err
 * set to one line (no "mprof:" prefix): incompatible profiles (see
 * pm_check_compatible) or out of memory.
 */
pp_profile *pm_merge(const pm_source *sources, size_t n, char *err, size_t errlen);

/*
 * Whether a and b may be merged: true, or false with err saying, e.g.,
 * "cannot merge new.pb.gz (sample types samples/count, cpu/nanoseconds)
 * with old.pb.gz (sample types alloc_objects/count, ...): ...; merge
 * profiles of one kind only (heap with heap, CPU with CPU)".
 */
bool pm_check_compatible(const pm_source *a, const pm_source *b, char *err, size_t errlen);

/* Whether s is a sample of a diff's base (labelled PM_BASE_LABEL_KEY). */
bool pm_is_base_sample(const pp_sample *s);

/*
 * What `mprof top` and `mprof report` do with their arguments: reads every
 * file of paths (npaths >= 1) and of base_paths (the profiles to subtract,
 * nbase >= 0), then merges them, the bases last.  One file and no base is
 * returned as read, unmerged.  NULL on failure with err set to one line
 * that names the file or files at fault ("old.pb.gz: cannot open: ...").
 */
pp_profile *pm_read_merged(const char *const *paths, size_t npaths, const char *const *base_paths,
                           size_t nbase, char *err, size_t errlen);

/*
 * The profiles a command (top, report, merge) was given and the bases it
 * subtracts (--base), pointing into its argv: each list has room for every
 * argument, so adding never fails.  The commands share this so that they
 * read "several profiles, less the bases" the same way.
 */
typedef struct pm_inputs {
    const char **paths, **bases;
    size_t npaths, nbases;
} pm_inputs;

/* Room for argc names in each list: 0, or -1 when out of memory. */
int pm_inputs_init(pm_inputs *in, int argc);
void pm_inputs_free(pm_inputs *in);
/* What messages call the input: the file, "the merged profiles" or "the
 * difference". */
const char *pm_inputs_name(const pm_inputs *in);
/* pm_read_merged of the lists. */
pp_profile *pm_inputs_read(const pm_inputs *in, char *err, size_t errlen);

#endif /* MPROF_CLI_PROFILE_MERGE_H */
