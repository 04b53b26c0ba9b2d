/*
 * Unit scaling for reports.  The rules follow pprof's measurement package
 * (the reference for what users expect to read), restated here:
 *
 *  - a unit name is matched case-insensitively, and a trailing "s" is
 *    dropped from names longer than two characters, so "bytes",
 *    "nanoseconds" and "Seconds" all resolve;
 *  - memory units step by 1024 and are named B, kB, MB, GB, TB, PB;
 *  - time units are ns, us, ms, s and hrs;
 *  - any other unit (count, objects, ...) is printed as a plain number.
 */
#include "cli/units.h"

#include <ctype.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

typedef struct unit {
    const char *canonical;
    const char *aliases[4];
    double factor; /* in the family's base unit: bytes or nanoseconds */
} unit;

typedef struct unit_family {
    const unit *units; /* ascending factor */
    size_t nunits;
    unit fallback; /* used when a target unit is not recognised */
} unit_family;

static const unit MEMORY_UNITS[] = {
    {"B", {"b", "byte"}, 1},
    {"kB", {"kb", "kbyte", "kilobyte"}, 1024.0},
    {"MB", {"mb", "mbyte", "megabyte"}, 1024.0 * 1024},
    {"GB", {"gb", "gbyte", "gigabyte"}, 1024.0 * 1024 * 1024},
    {"TB", {"tb", "tbyte", "terabyte"}, 1024.0 * 1024 * 1024 * 1024},
    {"PB", {"pb", "pbyte", "petabyte"}, 1024.0 * 1024 * 1024 * 1024 * 1024},
};

static const unit TIME_UNITS[] = {
    {"ns", {"ns", "nanosecond"}, 1},
    {"us", {"\xce\xbcs", "us", "microsecond"}, 1e3}, /* "μs" in UTF-8 */
    {"ms", {"ms", "millisecond"}, 1e6},
    {"s", {"s", "sec", "second"}, 1e9},
    {"hrs", {"hour", "hr"}, 3600e9},
};

static const unit_family FAMILIES[] = {
    {MEMORY_UNITS, sizeof(MEMORY_UNITS) / sizeof(MEMORY_UNITS[0]), {"B", {NULL}, 1}},
    {TIME_UNITS, sizeof(TIME_UNITS) / sizeof(TIME_UNITS[0]), {"s", {NULL}, 1e9}},
};

static void copy_name(char out[UNITS_NAME_MAX], const char *name)
{
    snprintf(out, UNITS_NAME_MAX, "%s", name);
}

/* Finds a unit by a user- or profile-supplied name. */
static const unit *sniff_unit(const unit_family *family, const char *name)
{
    char key[UNITS_NAME_MAX];
    size_t n = strlen(name);
    if (n >= sizeof(key))
        return NULL;
    for (size_t i = 0; i < n; i++)
        key[i] = (char)tolower((unsigned char)name[i]);
    key[n] = '\0';
    if (n > 2 && key[n - 1] == 's')
        key[n - 1] = '\0'; /* plural: "bytes" -> "byte" */
    for (size_t i = 0; i < family->nunits; i++)
        for (const char *const *alias = family->units[i].aliases; *alias != NULL; alias++)
            if (strcmp(*alias, key) == 0)
                return &family->units[i];
    return NULL;
}

static bool is_automatic(const char *to_unit)
{
    return strcmp(to_unit, "minimum") == 0 || strcmp(to_unit, "auto") == 0;
}

static bool convert_in_family(const unit_family *family, int64_t value, const char *from_unit,
                              const char *to_unit, double *out, char unit_out[UNITS_NAME_MAX])
{
    const unit *from = sniff_unit(family, from_unit);
    if (from == NULL)
        return false;
    double base = (double)value * from->factor;
    const unit *to = NULL;
    if (is_automatic(to_unit)) {
        /* The largest unit in which the value is at least one. */
        for (size_t i = 0; i < family->nunits; i++)
            if (base / family->units[i].factor >= 1.0)
                to = &family->units[i];
    } else {
        to = sniff_unit(family, to_unit);
    }
    if (to == NULL)
        to = &family->fallback;
    *out = base / to->factor;
    copy_name(unit_out, to->canonical);
    return true;
}

double units_scale(int64_t value, const char *from_unit, const char *to_unit,
                   char unit_out[UNITS_NAME_MAX])
{
    if (value < 0 && value != INT64_MIN)
        return -units_scale(-value, from_unit, to_unit, unit_out);
    for (size_t i = 0; i < sizeof(FAMILIES) / sizeof(FAMILIES[0]); i++) {
        double scaled;
        if (convert_in_family(&FAMILIES[i], value, from_unit, to_unit, &scaled, unit_out))
            return scaled;
    }
    /* Not a unit we can scale: counts print bare, anything else keeps its
     * name so "objects" or "cycles" stay visible. */
    static const char *const bare[] = {"count", "sample", "unit", "minimum", "auto"};
    copy_name(unit_out, to_unit);
    for (size_t i = 0; i < sizeof(bare) / sizeof(bare[0]); i++)
        if (strcmp(to_unit, bare[i]) == 0)
            unit_out[0] = '\0';
    return (double)value;
}

void units_label(char *buf, size_t len, int64_t value, const char *from_unit, const char *to_unit)
{
    char unit_name[UNITS_NAME_MAX];
    double scaled = units_scale(value, from_unit, to_unit, unit_name);
    char number[64];
    snprintf(number, sizeof(number), "%.2f", scaled);
    size_t n = strlen(number);
    if (n >= 3 && strcmp(number + n - 3, ".00") == 0)
        number[n - 3] = '\0';
    if (strcmp(number, "0") == 0 || strcmp(number, "-0") == 0) {
        snprintf(buf, len, "0");
        return;
    }
    snprintf(buf, len, "%s%s", number, unit_name);
}

void units_select_output(int64_t min_value, int64_t total, const char *sample_unit,
                         char out[UNITS_NAME_MAX])
{
    if (min_value == 0) {
        /* No rows: let every value pick its own unit. */
        copy_name(out, "minimum");
        return;
    }
    int64_t max_value = total;
    char min_unit[UNITS_NAME_MAX], max_unit[UNITS_NAME_MAX], unit_name[UNITS_NAME_MAX];
    units_scale(min_value, sample_unit, "minimum", min_unit);
    units_scale(max_value, sample_unit, "minimum", max_unit);
    copy_name(unit_name, min_unit);
    int64_t min_times_100;
    if (strcmp(min_unit, max_unit) != 0 &&
        !__builtin_mul_overflow(min_value, 100, &min_times_100) && min_times_100 < max_value) {
        /* A larger unit, as long as the smallest row still reads >= 0.01:
         * "0.01s" beside "2.50s" reads better than "10ms" beside "2500ms". */
        units_scale(min_times_100, sample_unit, "minimum", unit_name);
    }
    copy_name(out, unit_name[0] != '\0' ? unit_name : sample_unit);
}

void units_percentage(char *buf, size_t len, int64_t value, int64_t total)
{
    double ratio = 0;
    if (total != 0)
        ratio = fabs((double)value / (double)total) * 100;
    if (ratio >= 99.95 && ratio <= 100.05)
        snprintf(buf, len, "  100%%");
    else if (ratio >= 1.0)
        snprintf(buf, len, "%5.2f%%", ratio);
    else
        snprintf(buf, len, "%5.2g%%", ratio);
}
