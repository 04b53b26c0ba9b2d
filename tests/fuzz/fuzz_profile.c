/*
 * Fuzz harness: the pprof reader and `mprof top`'s report (src/cli):
 * decode, merge the profile with itself as a diff (profile_merge.c: the
 * path of mprof top A B and --base) and write the result back
 * (profile_writer.c), pick the sample type, simplify names, apply the profile's own
 * frame filters (re_match.c), build the rows and format every value as
 * the report prints it.  Whatever the input, this must end without a
 * crash, a sanitizer report or a leak, in bounded time and memory.
 *
 * The read limit is 16 MiB here instead of 512: a bomb is refused the
 * same way, sooner, and libFuzzer's memory limit stays out of reach.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cli/profile_merge.h"
#include "cli/profile_reader.h"
#include "cli/profile_writer.h"
#include "cli/top_report.h"
#include <stdlib.h>
#include "cli/units.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    pp_set_read_limit((size_t)16 << 20);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[1024], warning[512];
    pp_profile *p = pp_profile_parse(data, size, err, sizeof err);
    if (p == NULL)
        return 0;
    /* Merged with itself, the second copy a diff base; written, read back. */
    pm_source twice[2] = {{p, "new", false}, {p, "base", true}};
    pp_profile *d = pm_merge(twice, 2, err, sizeof err);
    if (d != NULL) {
        uint8_t *buf;
        size_t len;
        if (pp_profile_encode(d, &buf, &len, err, sizeof err) == 0) {
            pp_profile_free(pp_profile_parse(buf, len, err, sizeof err));
            free(buf);
        }
        pp_profile_free(d);
    }
    size_t index;
    /* The default, then by name and by number, as the command line does. */
    const char *specs[] = {NULL, "inuse_space", "1"};
    for (int k = 0; k < 3; k++)
        if (top_find_sample_index(p, specs[k], &index, err, sizeof err) != TOP_INDEX_OK)
            index = SIZE_MAX;
    if (top_find_sample_index(p, NULL, &index, err, sizeof err) != TOP_INDEX_OK ||
        top_simplify_function_names(p) != 0) {
        pp_profile_free(p);
        return 0;
    }
    (void)top_prune_uninteresting(p, warning, sizeof warning);
    for (int cum = 0; cum < 2; cum++) {
        top_options o = {
            .sample_index = index,
            .cum_sort = cum,
            .node_count = cum ? 0 : 10,
            .node_fraction = TOP_DEFAULT_NODE_FRACTION,
            .edge_fraction = TOP_DEFAULT_EDGE_FRACTION,
        };
        top_report r;
        if (top_report_build(p, &o, &r) != 0)
            continue;
        const char *unit = p->sample_types[index].unit;
        char out_unit[UNITS_NAME_MAX], text[128];
        units_select_output(r.min_value, r.total, unit, out_unit);
        for (size_t i = 0; i < r.nrows; i++) {
            units_label(text, sizeof text, r.rows[i].flat, unit, out_unit);
            units_label(text, sizeof text, r.rows[i].cum, unit, "auto");
            units_percentage(text, sizeof text, r.rows[i].cum, r.total);
            if (strlen(r.rows[i].name) == SIZE_MAX) /* keeps the names read */
                return 1;
        }
        top_report_free(&r);
    }
    pp_profile_free(p);
    return 0;
}
