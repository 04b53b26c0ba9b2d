/*
 * Formatting sample values the way pprof's text reports do, so that
 * `mprof top` and `go tool pprof -top` print the same numbers: "1.50MB",
 * "10ms", "0.01s", "1536.02kB", counts as plain integers.
 */
#ifndef MPROF_CLI_UNITS_H
#define MPROF_CLI_UNITS_H

#include <stddef.h>
#include <stdint.h>

/* Longest name units_scale can hand back, NUL included. */
#define UNITS_NAME_MAX 64

/*
 * Converts value, measured in from_unit ("bytes", "nanoseconds", "count",
 * ...), into to_unit.  to_unit "minimum" or "auto" picks the largest unit in
 * which the value is at least 1.  Writes the canonical name of the unit
 * used ("MB", "ms", or "" for plain counts and unknown units asked for as
 * "minimum") to unit_out and returns the scaled value.
 */
double units_scale(int64_t value, const char *from_unit, const char *to_unit,
                   char unit_out[UNITS_NAME_MAX]);

/* value in to_unit with two decimals, ".00" dropped: "1.50MB", "512kB",
 * "0". */
void units_label(char *buf, size_t len, int64_t value, const char *from_unit,
                 const char *to_unit);

/*
 * The one unit a report prints all its values in (pprof's
 * selectOutputUnit): the unit of the smallest non-zero value, unless the
 * total needs a larger one and the smallest value would still show as at
 * least 0.01 in it.  min_value is the smallest non-zero |flat| (or |cum|)
 * among the rows shown, 0 if none.  Writes the unit to out.
 */
void units_select_output(int64_t min_value, int64_t total, const char *sample_unit,
                         char out[UNITS_NAME_MAX]);

/* value as a percentage of total, 6 characters wide: "53.61%", "  100%",
 * " 0.12%", "    0%". */
void units_percentage(char *buf, size_t len, int64_t value, int64_t total);

#endif /* MPROF_CLI_UNITS_H */
