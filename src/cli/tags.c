/*
 * `mprof top --tag` and `--tags`: see tags.h.  The layout of --tags is
 * pprof's printTags (internal/report/report.go) through Go's tabwriter
 * (right-aligned columns, padding 1), reproduced here.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cli/tags.h"
#include "cli/units.h"

/* The thread steps the expressions may take over one profile: the same
 * bound as the frame filters' (a second or two at the most). */
#define TAG_STEP_BUDGET ((uint64_t)1 << 29)
/* The text of a numeric label's value ("1.50MB"). */
#define TAG_NUMBER_MAX 48

/* One "([+-]?[[:digit:]]+)([[:alpha:]]+)?" of pprof's tagFilterRangeRx,
 * searched from *pos: false when there is none. */
static bool next_number(const char *s, size_t *pos, size_t *start, size_t *end, int64_t *v,
                        char unit[UNITS_NAME_MAX])
{
    for (size_t i = *pos; s[i] != '\0'; i++) {
        size_t d = i + ((s[i] == '+' || s[i] == '-') && isdigit((unsigned char)s[i + 1]));
        if (!isdigit((unsigned char)s[d]))
            continue;
        size_t j = d;
        while (isdigit((unsigned char)s[j]))
            j++;
        size_t u = j;
        while (isalpha((unsigned char)s[u]))
            u++;
        errno = 0;
        long long x = strtoll(s + i, NULL, 10);
        if (errno != 0 || u - j >= UNITS_NAME_MAX)
            return false; /* pprof's ParseInt would refuse it too */
        *v = x;
        memcpy(unit, s + j, u - j);
        unit[u - j] = '\0';
        *start = i;
        *end = *pos = u;
        return true;
    }
    return false;
}

/* pprof's parseTagFilterRange: "N[unit]", "N[unit]:", ":N[unit]" or
 * "N[unit]:M[unit]", with the unit the one both sides are compared in.
 * false when value is not one of these (it is then an expression). */
static bool parse_range(const char *value, tag_filter *f)
{
    size_t pos = 0, s0, e0, s1, e1;
    int64_t v0, v1;
    char u0[UNITS_NAME_MAX], u1[UNITS_NAME_MAX];
    if (!next_number(value, &pos, &s0, &e0, &v0, u0))
        return false;
    f->lo = units_scale(v0, u0, u0, f->unit);
    size_t len = strlen(value);
    bool second = next_number(value, &pos, &s1, &e1, &v1, u1);
    if (!second || !(s0 == 0 && value[e0] == ':' && s1 == e0 + 1 && e1 == len)) {
        /* One number (a second one only spoils the forms below). */
        if (s0 == 0 && e0 == len)
            f->has_lo = f->has_hi = true, f->hi = f->lo;
        else if (s0 == 0 && e0 + 1 == len && value[e0] == ':')
            f->has_lo = true;
        else if (s0 == 1 && value[0] == ':' && e0 == len)
            f->has_hi = true, f->hi = f->lo;
        else
            return false;
        f->numeric = true;
        return true;
    }
    char unit2[UNITS_NAME_MAX];
    f->hi = units_scale(v1, u1, f->unit, unit2);
    if (strcmp(unit2, f->unit) != 0)
        return false;
    f->numeric = f->has_lo = f->has_hi = true;
    return true;
}

bool tag_filter_parse(const char *spec, tag_filter *f, char *err, size_t errlen)
{
    memset(f, 0, sizeof(*f));
    f->spec = spec;
    const char *value = spec;
    const char *eq = strchr(spec, '=');
    if (eq != NULL) {
        if (eq == spec) {
            snprintf(err, errlen, "--tag '%s' has no key before '=': give KEY=VALUE", spec);
            return false;
        }
        f->key = strndup(spec, (size_t)(eq - spec));
        if (f->key == NULL) {
            snprintf(err, errlen, "out of memory");
            return false;
        }
        value = eq + 1;
    }
    if (value[0] == '\0') {
        snprintf(err, errlen, "--tag '%s' has no value: give KEY=VALUE (mprof top --tags "
                              "PROFILE lists them)", spec);
        tag_filter_free(f);
        return false;
    }
    if (parse_range(value, f))
        return true;
    /* Comma-separated alternatives, each matched anywhere in the value,
     * as pprof's unanchored regexp.MatchString. */
    const char *p = value;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (f->nre == TAG_MAX_ALTERNATIVES) {
            snprintf(err, errlen, "--tag '%s' has more than %d comma-separated values", spec,
                     TAG_MAX_ALTERNATIVES);
            tag_filter_free(f);
            return false;
        }
        char *alt = strndup(p, len);
        char *wrapped = alt ? malloc(len + 32) : NULL;
        char why[160] = "out of memory";
        re_prog *re = NULL;
        /* Compiled alone first, so that "a)|(b" is refused rather than
         * balanced by the wrapping. */
        if (wrapped != NULL && (re = re_compile(alt, why, sizeof(why))) != NULL) {
            re_free(re);
            snprintf(wrapped, len + 32, "(?s:.*)(?:%s)(?s:.*)", alt);
            re = re_compile(wrapped, why, sizeof(why));
        }
        free(alt);
        free(wrapped);
        if (re == NULL) {
            snprintf(err, errlen, "--tag '%.200s': '%.*s' is not a regular expression mprof "
                                  "runs (%s)", spec, (int)(len > 200 ? 200 : len), p, why);
            tag_filter_free(f);
            return false;
        }
        f->re[f->nre++] = re;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    return true;
}

void tag_filter_free(tag_filter *f)
{
    free(f->key);
    for (size_t i = 0; i < f->nre; i++)
        re_free(f->re[i]);
    memset(f, 0, sizeof(*f));
}

/* ------------------------------------------------------------ --tags */

/* One label of one sample, then one (key, value) with its summed weight. */
typedef struct tag_entry {
    const char *key;
    const char *str; /* NULL for a numeric label */
    int64_t num;
    const char *unit;
    size_t order; /* position in the file: the first unit of a key wins */
    int64_t weight;
} tag_entry;

typedef struct tag_value {
    const char *key;
    const char *name;
    int64_t weight;
} tag_value;

static int compare_entries(const void *a, const void *b)
{
    const tag_entry *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    if (c != 0)
        return c;
    if ((x->str == NULL) != (y->str == NULL))
        return x->str == NULL ? 1 : -1;
    if (x->str != NULL)
        return strcmp(x->str, y->str);
    if (x->num != y->num)
        return x->num < y->num ? -1 : 1;
    return 0;
}

static int compare_values_by_name(const void *a, const void *b)
{
    const tag_value *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c != 0 ? c : strcmp(x->name, y->name);
}

static uint64_t magnitude(int64_t v) { return v < 0 ? -(uint64_t)v : (uint64_t)v; }

/* pprof's SortTags(..., flat): largest |weight| first, then by name. */
static int compare_values_by_weight(const void *a, const void *b)
{
    const tag_value *x = a, *y = b;
    uint64_t mx = magnitude(x->weight), my = magnitude(y->weight);
    if (mx != my)
        return mx > my ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int64_t add_wrapping(int64_t a, int64_t b) { return (int64_t)((uint64_t)a + (uint64_t)b); }

/* The unit numeric labels of a key are shown in: the first one the file
 * gives for it, else pprof's guess (profile.NumLabelUnits). */
static const char *key_unit(const tag_entry *e, size_t n)
{
    const char *unit = NULL;
    size_t first = SIZE_MAX;
    for (size_t i = 0; i < n; i++)
        if (e[i].str == NULL && e[i].unit != NULL && e[i].unit[0] != '\0' && e[i].order < first) {
            first = e[i].order;
            unit = e[i].unit;
        }
    if (unit != NULL)
        return unit;
    if (strcmp(e[0].key, "alignment") == 0 || strcmp(e[0].key, "request") == 0)
        return "bytes";
    return e[0].key;
}


/* Every label of every sample, sorted by key, then value.  0, or -1 with
 * err set (out of memory, or over the profile's memory budget). */
static int collect_labels(const pp_profile *p, size_t sample_index, tag_entry **out, size_t *nout,
                          char *err, size_t errlen)
{
    size_t n = 0;
    for (size_t i = 0; i < p->nsamples; i++)
        n += p->samples[i].nlabels;
    /* Entries, then values and their numbers' text: at most this much. */
    size_t need = n * (sizeof(tag_entry) + sizeof(tag_value) + TAG_NUMBER_MAX);
    if (p->memory_budget != 0 && need > p->memory_budget) {
        snprintf(err, errlen, "its %zu labels would take more memory than mprof spends on a "
                              "profile of its size; read it with go tool pprof", n);
        return -1;
    }
    tag_entry *e = malloc((n ? n : 1) * sizeof(*e));
    if (e == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < p->nsamples; i++) {
        const pp_sample *s = &p->samples[i];
        for (size_t j = 0; j < s->nlabels; j++, k++) {
            const pp_label *l = &s->labels[j];
            e[k] = (tag_entry){.key = l->key, .str = l->str, .num = l->num, .unit = l->num_unit,
                               .order = k, .weight = s->values[sample_index]};
        }
    }
    qsort(e, n, sizeof(*e), compare_entries);
    *out = e;
    *nout = n;
    return 0;
}

/* The unit of each key's numeric labels (key_unit), sorted by key. */
typedef struct key_unit_entry {
    const char *key;
    const char *unit;
} key_unit_entry;

static int compare_key_units(const void *a, const void *b)
{
    return strcmp(((const key_unit_entry *)a)->key, ((const key_unit_entry *)b)->key);
}

static key_unit_entry *key_units(const tag_entry *e, size_t n, size_t *nkeys)
{
    key_unit_entry *k = malloc((n ? n : 1) * sizeof(*k));
    if (k == NULL)
        return NULL;
    size_t nk = 0;
    for (size_t i = 0; i < n;) {
        size_t end = i;
        while (end < n && strcmp(e[end].key, e[i].key) == 0)
            end++;
        k[nk++] = (key_unit_entry){.key = e[i].key, .unit = key_unit(e + i, end - i)};
        i = end;
    }
    *nkeys = nk;
    return k;
}

static const char *unit_of_key(const key_unit_entry *k, size_t nk, const char *key)
{
    key_unit_entry want = {.key = key};
    const key_unit_entry *found = bsearch(&want, k, nk, sizeof(*k), compare_key_units);
    return found != NULL ? found->unit : key;
}

/* Whether a numeric label of value v, in the unit of its key, lies in the
 * filter's range (pprof: scaled to the range's unit, and in that unit). */
static bool in_range(const tag_filter *f, int64_t v, const char *key_unit_name)
{
    char unit[UNITS_NAME_MAX];
    double x = units_scale(v, key_unit_name, f->unit, unit);
    if (strcmp(unit, f->unit) != 0)
        return false;
    return (!f->has_lo || x >= f->lo) && (!f->has_hi || x <= f->hi);
}

/* Whether sample s passes filter f: 1, 0, or -1 when the budget ran out. */
static int sample_matches(const pp_sample *s, const tag_filter *f, const key_unit_entry *ku,
                          size_t nku, uint64_t *budget)
{
    if (f->numeric) {
        for (size_t i = 0; i < s->nlabels; i++) {
            const pp_label *l = &s->labels[i];
            if (l->str == NULL && (f->key == NULL || strcmp(l->key, f->key) == 0) &&
                in_range(f, l->num, unit_of_key(ku, nku, l->key)))
                return 1;
        }
        return 0;
    }
    if (f->key != NULL) {
        for (size_t i = 0; i < s->nlabels; i++) {
            const pp_label *l = &s->labels[i];
            if (l->str == NULL || strcmp(l->key, f->key) != 0)
                continue;
            for (size_t r = 0; r < f->nre; r++) {
                int m = re_full_match(f->re[r], l->str, strlen(l->str), budget);
                if (m != 0)
                    return m;
            }
        }
        return 0;
    }
    /* No key: every expression must match some "key:value" (pprof's rule). */
    char buf[512];
    for (size_t r = 0; r < f->nre; r++) {
        int found = 0;
        for (size_t i = 0; i < s->nlabels && !found; i++) {
            const pp_label *l = &s->labels[i];
            if (l->str == NULL)
                continue;
            size_t klen = strlen(l->key), vlen = strlen(l->str), len = klen + 1 + vlen;
            char *kv = len < sizeof(buf) ? buf : malloc(len + 1);
            if (kv == NULL)
                return -1;
            memcpy(kv, l->key, klen);
            kv[klen] = ':';
            memcpy(kv + klen + 1, l->str, vlen + 1);
            found = re_full_match(f->re[r], kv, len, budget);
            if (kv != buf)
                free(kv);
            if (found < 0)
                return -1;
        }
        if (!found)
            return 0;
    }
    return 1;
}

long tag_focus(pp_profile *p, const tag_filter *f, size_t n, char *err, size_t errlen)
{
    if (n == 0)
        return (long)p->nsamples;
    /* Numeric ranges compare labels in their key's unit, taken from the
     * whole profile (pprof's NumLabelUnits, before any filter). */
    key_unit_entry *ku = NULL;
    size_t nku = 0;
    bool numeric = false;
    for (size_t k = 0; k < n; k++)
        numeric |= f[k].numeric;
    if (numeric) {
        tag_entry *e;
        size_t ne;
        if (collect_labels(p, 0, &e, &ne, err, errlen) != 0)
            return -1;
        ku = key_units(e, ne, &nku);
        free(e);
        if (ku == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    bool *keep = calloc(p->nsamples ? p->nsamples : 1, sizeof(bool));
    if (keep == NULL) {
        free(ku);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    uint64_t budget = TAG_STEP_BUDGET;
    /* Every verdict first, so that running out leaves the profile whole. */
    for (size_t i = 0; i < p->nsamples; i++) {
        int m = 1;
        for (size_t k = 0; k < n && m == 1; k++)
            m = sample_matches(&p->samples[i], &f[k], ku, nku, &budget);
        if (m < 0) {
            free(ku);
            free(keep);
            snprintf(err, errlen, "matching --tag against the labels of its %zu samples takes "
                                  "more than %llu steps: use simpler expressions",
                     p->nsamples, (unsigned long long)TAG_STEP_BUDGET);
            return -1;
        }
        keep[i] = m == 1;
    }
    size_t kept = 0;
    for (size_t i = 0; i < p->nsamples; i++)
        if (keep[i])
            p->samples[kept++] = p->samples[i];
    p->nsamples = kept;
    free(ku);
    free(keep);
    return (long)kept;
}

/* Width in characters as Go's tabwriter counts them (runes). */
static size_t text_width(const char *s)
{
    size_t w = 0;
    for (; *s != '\0'; s++)
        w += ((unsigned char)*s & 0xc0) != 0x80;
    return w;
}

static void pad(FILE *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fputc(' ', out);
}

/* One key's block: "key:\t Total X" then " \tX (pct):\t value" lines,
 * right-aligned in two columns of the block's widths plus one. */
static void print_key(FILE *out, tag_value *v, size_t n, const char *sample_unit)
{
    int64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total = add_wrapping(total, v[i].weight);
    qsort(v, n, sizeof(*v), compare_values_by_weight);
    char unit[UNITS_NAME_MAX];
    char cell[TAG_NUMBER_MAX + 16];
    size_t w0 = text_width(v[0].key) + 1, w1 = 0;
    if (w0 < 1)
        w0 = 1;
    for (size_t i = 0; i < n; i++) {
        double f = units_scale(v[i].weight, sample_unit, "minimum", unit);
        char pct[32] = "";
        if (total > 0)
            units_percentage(pct, sizeof(pct), v[i].weight, total);
        snprintf(cell, sizeof(cell), total > 0 ? "%.1f%s (%s):" : "%.1f%s:", f, unit, pct);
        if (text_width(cell) > w1)
            w1 = text_width(cell);
    }
    w0 += 1;
    w1 += 1;
    double f = units_scale(total, sample_unit, "minimum", unit);
    pad(out, w0 - (text_width(v[0].key) + 1));
    fprintf(out, "%s: Total %.1f%s\n", v[0].key, f, unit);
    for (size_t i = 0; i < n; i++) {
        f = units_scale(v[i].weight, sample_unit, "minimum", unit);
        char pct[32] = "";
        if (total > 0)
            units_percentage(pct, sizeof(pct), v[i].weight, total);
        snprintf(cell, sizeof(cell), total > 0 ? "%.1f%s (%s):" : "%.1f%s:", f, unit, pct);
        pad(out, w0 + w1 - text_width(cell));
        fprintf(out, "%s %s\n", cell, v[i].name);
    }
    fputc('\n', out);
}

int tags_print(FILE *out, const pp_profile *p, size_t sample_index, char *err, size_t errlen)
{
    tag_entry *e;
    size_t n;
    if (collect_labels(p, sample_index, &e, &n, err, errlen) != 0)
        return -1;
    tag_value *v = malloc((n ? n : 1) * sizeof(*v));
    char *numbers = malloc((n ? n : 1) * TAG_NUMBER_MAX);
    if (v == NULL || numbers == NULL) {
        free(e);
        free(v);
        free(numbers);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    /* Sum equal labels, then name them: a number in its key's unit, so
     * that two numbers shown alike ("4kB") are one value, as in pprof. */
    size_t nv = 0, nnum = 0;
    for (size_t i = 0; i < n;) {
        size_t end = i;
        while (end < n && strcmp(e[end].key, e[i].key) == 0)
            end++;
        const char *unit = key_unit(e + i, end - i);
        for (size_t j = i; j < end;) {
            size_t same = j;
            int64_t w = 0;
            while (same < end && compare_entries(&e[j], &e[same]) == 0)
                w = add_wrapping(w, e[same++].weight);
            const char *name = e[j].str;
            if (name == NULL) {
                char *text = numbers + TAG_NUMBER_MAX * nnum++;
                units_label(text, TAG_NUMBER_MAX, e[j].num, unit, "minimum");
                name = text;
            }
            v[nv++] = (tag_value){.key = e[j].key, .name = name, .weight = w};
            j = same;
        }
        i = end;
    }
    qsort(v, nv, sizeof(*v), compare_values_by_name);
    size_t merged = 0;
    for (size_t i = 0; i < nv; i++) {
        if (merged > 0 && compare_values_by_name(&v[merged - 1], &v[i]) == 0)
            v[merged - 1].weight = add_wrapping(v[merged - 1].weight, v[i].weight);
        else
            v[merged++] = v[i];
    }
    const char *sample_unit = p->sample_types[sample_index].unit;
    for (size_t i = 0; i < merged;) {
        size_t end = i;
        while (end < merged && strcmp(v[end].key, v[i].key) == 0)
            end++;
        print_key(out, v + i, end - i, sample_unit);
        i = end;
    }
    free(e);
    free(v);
    free(numbers);
    return 0;
}
