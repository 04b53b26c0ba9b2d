/*
 * Merging profiles (profile_merge.h).
 *
 * Each kind of record (string, mapping, function, location, sample) is
 * unified through a key: its content, encoded as bytes with the merged
 * indexes of what it refers to (a location's key names merged functions,
 * a sample's merged locations), so equal content gives equal bytes
 * whichever file it came from.  Records are built in growable arrays
 * indexed by position while the sources are read; the pointer-linked
 * pp_profile is laid out in the result's arena at the end, once, keeping
 * only what the surviving samples reference.
 *
 * Invariants while merging:
 *   1. Merged string 0 is "", and strings are unique: two records that
 *      name the same text name the same string index, so keys may compare
 *      string indexes instead of text.
 *   2. A record's key never changes once interned (records are only
 *      added; a sample's values change, and they are no part of its key).
 */
#include "cli/profile_merge.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/bytebuf.h"
#include "shared/hash.h"
#include "shared/hash_index.h"

/* ------------------------------------------------------------ key sets */

/* Byte-string keys, each interned once: key i is bytes.p[off[i] ..
 * off[i + 1]). */
typedef struct keyset {
    mprof_bytebuf bytes;
    size_t *off;
    uint32_t count, off_cap;
    mprof_index index;
} keyset;

typedef struct key_probe {
    const uint8_t *p;
    size_t len;
} key_probe;

static int key_eq(const void *ctx, uint32_t idx, const void *probe)
{
    const keyset *k = ctx;
    const key_probe *q = probe;
    size_t len = k->off[idx + 1] - k->off[idx];
    return len == q->len && memcmp(k->bytes.p + k->off[idx], q->p, len) == 0;
}

/* The index of key, adding it (*is_new then true); UINT32_MAX when out of
 * memory. */
static uint32_t keyset_intern(keyset *k, const mprof_bytebuf *key, bool *is_new)
{
    *is_new = false;
    if (key->oom)
        return UINT32_MAX;
    key_probe q = {key->p, key->len};
    uint32_t h = (uint32_t)mprof_mix64(mprof_fnv1a(MPROF_FNV1A_OFFSET, key->p, key->len));
    if (k->off == NULL) {
        if (MPROF_GROW(k->off, k->off_cap, 1) != 0)
            return UINT32_MAX;
        k->off[0] = 0;
    }
    mprof_index_slot *slot = mprof_index_find(&k->index, h, key_eq, k, &q);
    if (slot == NULL)
        return UINT32_MAX;
    if (slot->idx1 != 0)
        return slot->idx1 - 1;
    if (k->count == UINT32_MAX - 1 ||
        MPROF_GROW(k->off, k->off_cap, (uint64_t)k->count + 2) != 0)
        return UINT32_MAX;
    mprof_bytebuf_append(&k->bytes, key->p, key->len);
    if (k->bytes.oom)
        return UINT32_MAX;
    k->off[k->count + 1] = k->bytes.len;
    mprof_index_added(&k->index, slot, k->count);
    *is_new = true;
    return k->count++;
}

static void keyset_free(keyset *k)
{
    mprof_bytebuf_free(&k->bytes);
    free(k->off);
    mprof_index_free(&k->index);
}

/* ------------------------------------------------------ merged records */

typedef struct m_mapping {
    pp_mapping m; /* strings point into the result's arena */
} m_mapping;

typedef struct m_location {
    uint32_t mapping1; /* merged mapping index + 1; 0: none */
    uint64_t address;
    bool is_folded;
    uint32_t first_line, nlines; /* into merger.lines */
} m_location;

typedef struct m_line {
    uint32_t function; /* merged function index */
    int64_t line, column;
} m_line;

typedef struct m_label {
    uint32_t key, str, unit; /* string indexes; str 0 for a numeric label */
    bool is_str;
    int64_t num;
    uint32_t order; /* position in the source sample: sorting is stable by it */
} m_label;

typedef struct m_sample {
    uint32_t first_loc, nlocs;     /* into merger.sample_locs */
    uint32_t first_label, nlabels; /* into merger.labels */
    size_t first_value;            /* into merger.values */
} m_sample;

/* Where a source's mapping went: merged index + 1, and what to add to its
 * addresses to move them to the merged mapping's start. */
typedef struct mapping_move {
    uint32_t merged1;
    uint64_t delta; /* wrapping */
} mapping_move;

typedef struct merger {
    pp_profile *out; /* owns the strings' text */
    size_t ntypes;
    keyset string_keys;
    const char **strings; /* merged string index -> text */
    uint32_t strings_cap;

    keyset mapping_keys, function_keys, location_keys, sample_keys;
    m_mapping *mappings;
    uint32_t nmappings, mappings_cap;
    pp_function *functions;
    uint32_t nfunctions, functions_cap;
    m_location *locations;
    uint32_t nlocations, locations_cap;
    m_line *lines;
    uint32_t nlines, lines_cap;
    m_sample *samples;
    uint32_t nsamples, samples_cap;
    uint32_t *sample_locs;
    uint32_t nsample_locs, sample_locs_cap;
    m_label *labels;
    uint32_t nlabels, labels_cap;
    int64_t *values;
    uint32_t nvalues, values_cap;

    /* Per source, by the source's record index: the merged record. */
    mapping_move *moved;
    uint32_t *function_of, *location_of; /* merged index + 1; 0: not yet */
    m_label *scratch_labels;
    uint32_t scratch_cap;
    mprof_bytebuf key;
    bool oom;
} merger;

static uint32_t intern_string(merger *m, const char *s)
{
    if (s == NULL || s[0] == '\0')
        return 0;
    size_t len = strlen(s);
    m->key.len = 0;
    mprof_bytebuf_append(&m->key, s, len);
    bool is_new;
    uint32_t id = keyset_intern(&m->string_keys, &m->key, &is_new);
    if (id == UINT32_MAX) {
        m->oom = true;
        return 0;
    }
    if (is_new) {
        const char *copy = pp_profile_copy_string(m->out, s, len);
        if (copy == NULL || MPROF_GROW(m->strings, m->strings_cap, (uint64_t)id + 1) != 0) {
            m->oom = true;
            return 0;
        }
        m->strings[id] = copy;
    }
    return id;
}

/* The merged copy of a source's string (never borrowed from the source). */
static const char *merged_text(merger *m, const char *s)
{
    return m->strings[intern_string(m, s)];
}

/* pprof's mapping key: build id or file, offset, size rounded to 4 KiB. */
static mapping_move map_mapping(merger *m, const pp_mapping *src)
{
    const char *who = src->build_id[0] != '\0' ? src->build_id : src->filename;
    uint64_t size = src->memory_limit - src->memory_start;
    size = (size + 0xfff) & ~(uint64_t)0xfff;
    uint32_t who_id = intern_string(m, who);
    m->key.len = 0;
    mprof_bytebuf_varint(&m->key, size);
    mprof_bytebuf_varint(&m->key, src->file_offset);
    mprof_bytebuf_varint(&m->key, who_id);
    bool is_new;
    uint32_t id = keyset_intern(&m->mapping_keys, &m->key, &is_new);
    if (id == UINT32_MAX || m->oom) {
        m->oom = true;
        return (mapping_move){0, 0};
    }
    if (is_new) {
        if (MPROF_GROW(m->mappings, m->mappings_cap, (uint64_t)m->nmappings + 1) != 0) {
            m->oom = true;
            return (mapping_move){0, 0};
        }
        pp_mapping *d = &m->mappings[m->nmappings++].m;
        *d = *src;
        d->filename = merged_text(m, src->filename);
        d->build_id = merged_text(m, src->build_id);
    }
    return (mapping_move){id + 1, m->mappings[id].m.memory_start - src->memory_start};
}

static uint32_t map_function(merger *m, const pp_profile *src, const pp_function *f)
{
    size_t si = (size_t)(f - src->functions);
    if (m->function_of[si] != 0)
        return m->function_of[si] - 1;
    uint32_t name = intern_string(m, f->name), sys = intern_string(m, f->system_name);
    uint32_t file = intern_string(m, f->filename);
    m->key.len = 0;
    mprof_bytebuf_varint(&m->key, (uint64_t)f->start_line);
    mprof_bytebuf_varint(&m->key, name);
    mprof_bytebuf_varint(&m->key, sys);
    mprof_bytebuf_varint(&m->key, file);
    bool is_new;
    uint32_t id = keyset_intern(&m->function_keys, &m->key, &is_new);
    if (id == UINT32_MAX || m->oom) {
        m->oom = true;
        return 0;
    }
    if (is_new) {
        if (MPROF_GROW(m->functions, m->functions_cap, (uint64_t)m->nfunctions + 1) != 0) {
            m->oom = true;
            return 0;
        }
        pp_function *d = &m->functions[m->nfunctions++];
        *d = *f;
        d->name = m->strings[name];
        d->system_name = m->strings[sys];
        d->filename = m->strings[file];
    }
    m->function_of[si] = id + 1;
    return id;
}

static uint32_t map_location(merger *m, const pp_profile *src, const pp_location *loc)
{
    size_t si = (size_t)(loc - src->locations);
    if (m->location_of[si] != 0)
        return m->location_of[si] - 1;
    mapping_move mv = {0, 0};
    uint64_t relative = loc->address;
    if (loc->mapping != NULL) {
        mv = m->moved[loc->mapping - src->mappings];
        relative = loc->address - loc->mapping->memory_start;
    }
    /* The functions first: their interning reuses the key buffer. */
    uint32_t funcs[64];
    uint32_t *fn = loc->nlines <= 64 ? funcs : malloc(loc->nlines * sizeof *fn);
    if (fn == NULL) {
        m->oom = true;
        return 0;
    }
    for (size_t k = 0; k < loc->nlines; k++)
        fn[k] = map_function(m, src, loc->lines[k].function);
    m->key.len = 0;
    mprof_bytebuf_varint(&m->key, mv.merged1);
    mprof_bytebuf_varint(&m->key, relative);
    mprof_bytebuf_varint(&m->key, loc->is_folded);
    for (size_t k = 0; k < loc->nlines; k++) {
        mprof_bytebuf_varint(&m->key, fn[k]);
        mprof_bytebuf_varint(&m->key, (uint64_t)loc->lines[k].line);
        mprof_bytebuf_varint(&m->key, (uint64_t)loc->lines[k].column);
    }
    bool is_new;
    uint32_t id = keyset_intern(&m->location_keys, &m->key, &is_new);
    if (id == UINT32_MAX || m->oom)
        goto oom;
    if (is_new) {
        if (MPROF_GROW(m->locations, m->locations_cap, (uint64_t)m->nlocations + 1) != 0 ||
            MPROF_GROW(m->lines, m->lines_cap, (uint64_t)m->nlines + loc->nlines) != 0)
            goto oom;
        m_location *d = &m->locations[m->nlocations++];
        d->mapping1 = mv.merged1;
        d->address = loc->address + mv.delta;
        d->is_folded = loc->is_folded;
        d->first_line = m->nlines;
        d->nlines = (uint32_t)loc->nlines;
        for (size_t k = 0; k < loc->nlines; k++)
            m->lines[m->nlines++] =
                (m_line){fn[k], loc->lines[k].line, loc->lines[k].column};
    }
    if (fn != funcs)
        free(fn);
    m->location_of[si] = id + 1;
    return id;
oom:
    if (fn != funcs)
        free(fn);
    m->oom = true;
    return 0;
}

/* Labels in the key's order: by key string index, and where one key has
 * several values, in the order the sample gives them (as pprof keeps a
 * key's values in a list). */
static int compare_labels(const void *pa, const void *pb)
{
    const m_label *a = pa, *b = pb;
    if (a->key != b->key)
        return a->key < b->key ? -1 : 1;
    return (a->order > b->order) - (a->order < b->order);
}

static bool all_zero(const int64_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] != 0)
            return false;
    return true;
}

static void map_sample(merger *m, const pp_profile *src, const pp_sample *s, bool base)
{
    size_t nlabels = s->nlabels + (base ? 1 : 0);
    if (MPROF_GROW(m->scratch_labels, m->scratch_cap, (uint64_t)nlabels + 1) != 0 ||
        MPROF_GROW(m->sample_locs, m->sample_locs_cap,
                   (uint64_t)m->nsample_locs + s->nlocations) != 0) {
        m->oom = true;
        return;
    }
    /* The locations go at the end of sample_locs now, and stay there only
     * if the sample is new. */
    uint32_t first_loc = m->nsample_locs;
    for (size_t k = 0; k < s->nlocations; k++)
        m->sample_locs[first_loc + k] = map_location(m, src, s->locations[k]);
    for (size_t k = 0; k < s->nlabels; k++) {
        const pp_label *l = &s->labels[k];
        m_label *d = &m->scratch_labels[k];
        d->key = intern_string(m, l->key);
        d->is_str = l->str != NULL;
        d->str = d->is_str ? intern_string(m, l->str) : 0;
        d->num = d->is_str ? 0 : l->num;
        d->unit = d->is_str ? 0 : intern_string(m, l->num_unit);
        d->order = (uint32_t)k;
    }
    if (base)
        m->scratch_labels[s->nlabels] = (m_label){.key = intern_string(m, PM_BASE_LABEL_KEY),
                                                  .str = intern_string(m, PM_BASE_LABEL_VALUE),
                                                  .is_str = true,
                                                  .order = (uint32_t)s->nlabels};
    if (m->oom)
        return;
    qsort(m->scratch_labels, nlabels, sizeof *m->scratch_labels, compare_labels);

    m->key.len = 0;
    mprof_bytebuf_varint(&m->key, s->nlocations);
    for (size_t k = 0; k < s->nlocations; k++)
        mprof_bytebuf_varint(&m->key, m->sample_locs[first_loc + k]);
    for (size_t k = 0; k < nlabels; k++) {
        const m_label *l = &m->scratch_labels[k];
        mprof_bytebuf_varint(&m->key, l->key);
        mprof_bytebuf_varint(&m->key, l->is_str);
        mprof_bytebuf_varint(&m->key, l->is_str ? l->str : (uint64_t)l->num);
        mprof_bytebuf_varint(&m->key, l->unit);
    }
    bool is_new;
    uint32_t id = keyset_intern(&m->sample_keys, &m->key, &is_new);
    if (id == UINT32_MAX) {
        m->oom = true;
        return;
    }
    if (is_new) {
        if (MPROF_GROW(m->samples, m->samples_cap, (uint64_t)m->nsamples + 1) != 0 ||
            MPROF_GROW(m->labels, m->labels_cap, (uint64_t)m->nlabels + nlabels) != 0 ||
            MPROF_GROW(m->values, m->values_cap, (uint64_t)m->nvalues + m->ntypes) != 0) {
            m->oom = true;
            return;
        }
        m_sample *d = &m->samples[m->nsamples++];
        d->first_loc = first_loc;
        d->nlocs = (uint32_t)s->nlocations;
        m->nsample_locs += (uint32_t)s->nlocations;
        d->first_label = m->nlabels;
        d->nlabels = (uint32_t)nlabels;
        if (nlabels > 0) /* labels may still be NULL: no sample had any */
            memcpy(&m->labels[m->nlabels], m->scratch_labels, nlabels * sizeof *m->labels);
        m->nlabels += (uint32_t)nlabels;
        d->first_value = m->nvalues;
        memset(&m->values[m->nvalues], 0, m->ntypes * sizeof *m->values);
        m->nvalues += (uint32_t)m->ntypes;
    }
    /* Sums wrap, as Go's int64 does: the values come from outside. */
    int64_t *v = &m->values[m->samples[id].first_value];
    for (size_t i = 0; i < m->ntypes; i++) {
        uint64_t x = (uint64_t)s->values[i];
        v[i] = (int64_t)((uint64_t)v[i] + (base ? 0 - x : x));
    }
}

static bool merge_source(merger *m, const pp_profile *src, bool base)
{
    size_t nmap = src->nmappings ? src->nmappings : 1;
    m->moved = calloc(nmap, sizeof *m->moved);
    m->function_of = calloc(src->nfunctions ? src->nfunctions : 1, sizeof *m->function_of);
    m->location_of = calloc(src->nlocations ? src->nlocations : 1, sizeof *m->location_of);
    if (m->moved == NULL || m->function_of == NULL || m->location_of == NULL) {
        m->oom = true;
    } else {
        /* Every mapping, first to last, so that the first profile's main
         * binary stays the merged profile's mappings[0]. */
        for (size_t i = 0; i < src->nmappings && !m->oom; i++)
            m->moved[i] = map_mapping(m, &src->mappings[i]);
        for (size_t i = 0; i < src->nsamples && !m->oom; i++)
            if (!all_zero(src->samples[i].values, m->ntypes))
                map_sample(m, src, &src->samples[i], base);
    }
    free(m->moved);
    free(m->function_of);
    free(m->location_of);
    m->moved = NULL;
    m->function_of = m->location_of = NULL;
    return !m->oom;
}

/* ---------------------------------------------------------- the header */

static bool same_text(const char *a, const char *b) { return strcmp(a, b) == 0; }

static bool same_value_type(const pp_value_type *a, const pp_value_type *b)
{
    return same_text(a->type, b->type) && same_text(a->unit, b->unit);
}

static bool unset_value_type(const pp_value_type *v)
{
    return v->type[0] == '\0' && v->unit[0] == '\0';
}

/* "alloc_objects/count, alloc_space/bytes", cut to fit. */
static void describe_types(char *buf, size_t len, const pp_value_type *t, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    if (n == 0)
        snprintf(buf, len, "none");
    for (size_t i = 0; i < n && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s/%s", i ? ", " : "",
                                 t[i].type[0] ? t[i].type : "?", t[i].unit[0] ? t[i].unit : "?");
}

bool pm_check_compatible(const pm_source *a, const pm_source *b, char *err, size_t errlen)
{
    const pp_profile *p = a->profile, *q = b->profile;
    bool same_types = p->nsample_types == q->nsample_types;
    for (size_t i = 0; same_types && i < p->nsample_types; i++)
        same_types = same_value_type(&p->sample_types[i], &q->sample_types[i]);
    char ta[256], tb[256];
    if (!same_types) {
        describe_types(ta, sizeof ta, p->sample_types, p->nsample_types);
        describe_types(tb, sizeof tb, q->sample_types, q->nsample_types);
        snprintf(err, errlen,
                 "cannot merge %s (sample types %s) with %s (sample types %s): profiles merge "
                 "only when their sample types are the same; merge profiles of one kind "
                 "(heap with heap, CPU with CPU) and of one writer",
                 a->name, ta, b->name, tb);
        return false;
    }
    if (!same_value_type(&p->period_type, &q->period_type) && !unset_value_type(&p->period_type) &&
        !unset_value_type(&q->period_type)) {
        describe_types(ta, sizeof ta, &p->period_type, 1);
        describe_types(tb, sizeof tb, &q->period_type, 1);
        snprintf(err, errlen,
                 "cannot merge %s (period type %s) with %s (period type %s): the sample types "
                 "agree but the samples were taken by different measures; merge profiles "
                 "taken the same way",
                 a->name, ta, b->name, tb);
        return false;
    }
    return true;
}

bool pm_is_base_sample(const pp_sample *s)
{
    for (size_t i = 0; i < s->nlabels; i++)
        if (s->labels[i].str != NULL && strcmp(s->labels[i].key, PM_BASE_LABEL_KEY) == 0 &&
            strcmp(s->labels[i].str, PM_BASE_LABEL_VALUE) == 0)
            return true;
    return false;
}

/* pprof's combineHeaders (the sample types are the first profile's). */
static bool merge_header(merger *m, const pm_source *sources, size_t n)
{
    pp_profile *out = m->out;
    const pp_profile *first = sources[0].profile;
    out->nsample_types = first->nsample_types;
    out->sample_types = pp_profile_alloc(out, out->nsample_types, sizeof *out->sample_types);
    if (out->sample_types == NULL)
        return false;
    for (size_t i = 0; i < out->nsample_types; i++) {
        out->sample_types[i].type = merged_text(m, first->sample_types[i].type);
        out->sample_types[i].unit = merged_text(m, first->sample_types[i].unit);
    }
    out->drop_frames = merged_text(m, first->drop_frames);
    out->keep_frames = merged_text(m, first->keep_frames);
    size_t ncomments = 0;
    bool budget = true;
    for (size_t s = 0; s < n; s++) {
        const pp_profile *p = sources[s].profile;
        if (p->time_nanos != 0 && (out->time_nanos == 0 || p->time_nanos < out->time_nanos))
            out->time_nanos = p->time_nanos;
        out->duration_nanos = (int64_t)((uint64_t)out->duration_nanos + (uint64_t)p->duration_nanos);
        if (p->period > out->period)
            out->period = p->period;
        if (unset_value_type(&out->period_type) && !unset_value_type(&p->period_type)) {
            out->period_type.type = merged_text(m, p->period_type.type);
            out->period_type.unit = merged_text(m, p->period_type.unit);
        }
        if (out->default_sample_type[0] == '\0')
            out->default_sample_type = merged_text(m, p->default_sample_type);
        ncomments += p->ncomments;
        if (p->memory_budget == 0)
            budget = false;
        else if (budget)
            out->memory_budget += p->memory_budget;
    }
    if (!budget)
        out->memory_budget = 0;
    out->comments = pp_profile_alloc(out, ncomments, sizeof *out->comments);
    if (out->comments == NULL)
        return false;
    for (size_t s = 0; s < n; s++) {
        const pp_profile *p = sources[s].profile;
        for (size_t i = 0; i < p->ncomments; i++) {
            const char *c = merged_text(m, p->comments[i]);
            bool seen = false;
            for (size_t k = 0; k < out->ncomments && !seen; k++)
                seen = out->comments[k] == c; /* strings are unique (invariant 1) */
            if (!seen)
                out->comments[out->ncomments++] = c;
        }
    }
    return !m->oom;
}

/* ------------------------------------------------------------- layout */

/*
 * Lays the merged records out in the result: the samples with a non-zero
 * value, and the locations, functions and mappings they reference (and
 * mappings[0], the main binary, whatever references it), renumbered in
 * their merged order.
 */
static bool lay_out(merger *m)
{
    pp_profile *out = m->out;
    bool ok = false;
    uint32_t *loc_new = calloc(m->nlocations + 1, sizeof *loc_new);
    uint32_t *fn_new = calloc(m->nfunctions + 1, sizeof *fn_new);
    uint32_t *map_new = calloc(m->nmappings + 1, sizeof *map_new);
    if (loc_new == NULL || fn_new == NULL || map_new == NULL)
        goto out;

    size_t nsamples = 0, nlines = 0;
    for (uint32_t i = 0; i < m->nsamples; i++) {
        const m_sample *s = &m->samples[i];
        if (all_zero(&m->values[s->first_value], m->ntypes))
            continue;
        nsamples++;
        for (uint32_t k = 0; k < s->nlocs; k++)
            loc_new[m->sample_locs[s->first_loc + k]] = 1;
    }
    if (m->nmappings > 0)
        map_new[0] = 1;
    size_t nloc = 0, nfn = 0, nmap = 0;
    for (uint32_t i = 0; i < m->nlocations; i++) {
        if (!loc_new[i])
            continue;
        loc_new[i] = (uint32_t)++nloc;
        const m_location *l = &m->locations[i];
        if (l->mapping1 != 0)
            map_new[l->mapping1 - 1] = 1;
        nlines += l->nlines;
        for (uint32_t k = 0; k < l->nlines; k++)
            fn_new[m->lines[l->first_line + k].function] = 1;
    }
    for (uint32_t i = 0; i < m->nfunctions; i++)
        if (fn_new[i])
            fn_new[i] = (uint32_t)++nfn;
    for (uint32_t i = 0; i < m->nmappings; i++)
        if (map_new[i])
            map_new[i] = (uint32_t)++nmap;

    out->mappings = pp_profile_alloc(out, nmap, sizeof *out->mappings);
    out->functions = pp_profile_alloc(out, nfn, sizeof *out->functions);
    out->locations = pp_profile_alloc(out, nloc, sizeof *out->locations);
    out->samples = pp_profile_alloc(out, nsamples, sizeof *out->samples);
    pp_line *lines = pp_profile_alloc(out, nlines, sizeof *lines);
    if (out->mappings == NULL || out->functions == NULL || out->locations == NULL ||
        out->samples == NULL || lines == NULL)
        goto out;
    for (uint32_t i = 0; i < m->nmappings; i++) {
        if (!map_new[i])
            continue;
        pp_mapping *d = &out->mappings[out->nmappings++];
        *d = m->mappings[i].m;
        d->id = out->nmappings;
    }
    for (uint32_t i = 0; i < m->nfunctions; i++) {
        if (!fn_new[i])
            continue;
        pp_function *d = &out->functions[out->nfunctions++];
        *d = m->functions[i];
        d->id = out->nfunctions;
    }
    for (uint32_t i = 0; i < m->nlocations; i++) {
        if (!loc_new[i])
            continue;
        const m_location *l = &m->locations[i];
        pp_location *d = &out->locations[out->nlocations++];
        d->id = out->nlocations;
        d->mapping = l->mapping1 ? &out->mappings[map_new[l->mapping1 - 1] - 1] : NULL;
        d->address = l->address;
        d->is_folded = l->is_folded;
        d->lines = lines;
        d->nlines = l->nlines;
        for (uint32_t k = 0; k < l->nlines; k++) {
            const m_line *ln = &m->lines[l->first_line + k];
            *lines++ = (pp_line){&out->functions[fn_new[ln->function] - 1], ln->line, ln->column};
        }
    }
    for (uint32_t i = 0; i < m->nsamples; i++) {
        const m_sample *s = &m->samples[i];
        const int64_t *values = &m->values[s->first_value];
        if (all_zero(values, m->ntypes))
            continue;
        pp_sample *d = &out->samples[out->nsamples++];
        d->locations = pp_profile_alloc(out, s->nlocs, sizeof *d->locations);
        d->values = pp_profile_alloc(out, m->ntypes, sizeof *d->values);
        d->labels = pp_profile_alloc(out, s->nlabels, sizeof *d->labels);
        if (d->locations == NULL || d->values == NULL || d->labels == NULL)
            goto out;
        d->nlocations = s->nlocs;
        for (uint32_t k = 0; k < s->nlocs; k++)
            d->locations[k] = &out->locations[loc_new[m->sample_locs[s->first_loc + k]] - 1];
        memcpy(d->values, values, m->ntypes * sizeof *values);
        d->nlabels = s->nlabels;
        for (uint32_t k = 0; k < s->nlabels; k++) {
            const m_label *l = &m->labels[s->first_label + k];
            d->labels[k] = (pp_label){.key = m->strings[l->key],
                                      .str = l->is_str ? m->strings[l->str] : NULL,
                                      .num = l->num,
                                      .num_unit = m->strings[l->unit]};
        }
    }
    /* The string table: every string the merge met, "" first. */
    out->nstrings = m->string_keys.count;
    out->strings = pp_profile_alloc(out, out->nstrings, sizeof *out->strings);
    if (out->strings == NULL)
        goto out;
    memcpy(out->strings, m->strings, out->nstrings * sizeof *out->strings);
    ok = true;
out:
    free(loc_new);
    free(fn_new);
    free(map_new);
    return ok;
}

static void merger_free(merger *m)
{
    keyset_free(&m->string_keys);
    keyset_free(&m->mapping_keys);
    keyset_free(&m->function_keys);
    keyset_free(&m->location_keys);
    keyset_free(&m->sample_keys);
    free(m->strings);
    free(m->mappings);
    free(m->functions);
    free(m->locations);
    free(m->lines);
    free(m->samples);
    free(m->sample_locs);
    free(m->labels);
    free(m->values);
    free(m->scratch_labels);
    mprof_bytebuf_free(&m->key);
}

pp_profile *pm_merge(const pm_source *sources, size_t n, char *err, size_t errlen)
{
    if (n == 0) {
        snprintf(err, errlen, "no profiles to merge");
        return NULL;
    }
    for (size_t i = 1; i < n; i++)
        if (!pm_check_compatible(&sources[0], &sources[i], err, errlen))
            return NULL;
    merger m;
    memset(&m, 0, sizeof m);
    m.ntypes = sources[0].profile->nsample_types;
    m.out = pp_profile_new();
    bool ok = m.out != NULL;
    /* String 0 is "" (invariant 1). */
    if (ok) {
        bool is_new;
        m.key.len = 0;
        ok = keyset_intern(&m.string_keys, &m.key, &is_new) == 0 &&
             MPROF_GROW(m.strings, m.strings_cap, 1) == 0;
        if (ok)
            m.strings[0] = "";
    }
    ok = ok && merge_header(&m, sources, n);
    for (size_t i = 0; ok && i < n; i++)
        ok = merge_source(&m, sources[i].profile, sources[i].base);
    ok = ok && !m.oom && lay_out(&m);
    merger_free(&m);
    if (!ok) {
        snprintf(err, errlen, "out of memory while merging %zu profiles", n);
        pp_profile_free(m.out);
        return NULL;
    }
    return m.out;
}

pp_profile *pm_read_merged(const char *const *paths, size_t npaths, const char *const *base_paths,
                           size_t nbase, char *err, size_t errlen)
{
    size_t n = npaths + nbase;
    pm_source *sources = calloc(n ? n : 1, sizeof *sources);
    pp_profile *merged = NULL;
    if (sources == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    char why[1024];
    size_t read = 0;
    for (; read < n; read++) {
        const char *path = read < npaths ? paths[read] : base_paths[read - npaths];
        sources[read].name = path;
        sources[read].base = read >= npaths;
        sources[read].profile = pp_profile_read_file(path, why, sizeof why);
        if (sources[read].profile == NULL) {
            snprintf(err, errlen, "%s: %s", path, why);
            goto out;
        }
    }
    if (n == 1 && nbase == 0) {
        merged = (pp_profile *)sources[0].profile;
        sources[0].profile = NULL; /* handed to the caller */
    } else {
        merged = pm_merge(sources, n, err, errlen);
    }
out:
    for (size_t i = 0; i < read; i++)
        pp_profile_free((pp_profile *)sources[i].profile);
    free(sources);
    return merged;
}

int pm_inputs_init(pm_inputs *in, int argc)
{
    *in = (pm_inputs){0};
    size_t n = argc > 0 ? (size_t)argc : 1;
    in->paths = calloc(n, sizeof *in->paths);
    in->bases = calloc(n, sizeof *in->bases);
    if (in->paths == NULL || in->bases == NULL) {
        pm_inputs_free(in);
        return -1;
    }
    return 0;
}

void pm_inputs_free(pm_inputs *in)
{
    free(in->paths);
    free(in->bases);
    *in = (pm_inputs){0};
}

const char *pm_inputs_name(const pm_inputs *in)
{
    if (in->npaths == 1 && in->nbases == 0)
        return in->paths[0];
    return in->nbases > 0 ? "the difference" : "the merged profiles";
}

pp_profile *pm_inputs_read(const pm_inputs *in, char *err, size_t errlen)
{
    return pm_read_merged(in->paths, in->npaths, in->bases, in->nbases, err, errlen);
}
