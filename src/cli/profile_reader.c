/*
 * pprof profile reader: gunzip, protobuf decoding, validation.
 *
 * Decoding happens in two steps.  The first walks the protobuf and records
 * every message with its raw numbers (string indexes, ids) in flat growable
 * arrays, because protobuf allows fields in any order: the string table or a
 * referenced function may come after its first use.  The second step checks
 * every index and id and builds the pointer-linked pp_profile in an arena,
 * so that the caller frees one thing.
 *
 * Each check here corresponds to a way a damaged or hostile file could make a
 * naive reader read out of bounds, loop, or print garbage; the error text
 * names the field and the byte offset so a user can tell a truncated copy
 * from a profile written by a buggy tool.
 */
#include "shared/bytebuf.h"
#include "shared/pprof_fields.h"
#include "cli/profile_reader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* ------------------------------------------------------------------ arena */

/* Everything a decoded profile points to lives in one list of chunks, so a
 * profile of a million samples is freed with a handful of free() calls. */
struct arena_chunk {
    struct arena_chunk *next;
    size_t used;
    size_t cap;
    max_align_t data[];
};

struct pp_arena {
    struct arena_chunk *chunks;
};

#define ARENA_CHUNK_BYTES ((size_t)1 << 20)

static void *arena_alloc(struct pp_arena *a, size_t size)
{
    const size_t align = _Alignof(max_align_t);
    if (size > SIZE_MAX - align)
        return NULL;
    size = (size + align - 1) & ~(align - 1);
    if (size == 0)
        size = align; /* distinct non-NULL pointers for empty arrays */
    struct arena_chunk *c = a->chunks;
    if (c == NULL || c->cap - c->used < size) {
        size_t cap = size > ARENA_CHUNK_BYTES ? size : ARENA_CHUNK_BYTES;
        c = malloc(sizeof(*c) + cap);
        if (c == NULL)
            return NULL;
        c->cap = cap;
        c->used = 0;
        c->next = a->chunks;
        a->chunks = c;
    }
    void *p = (char *)c->data + c->used;
    c->used += size;
    memset(p, 0, size);
    return p;
}

static void *arena_array(struct pp_arena *a, size_t n, size_t elem)
{
    if (elem != 0 && n > SIZE_MAX / elem)
        return NULL;
    return arena_alloc(a, n * elem);
}

static void arena_free(struct pp_arena *a)
{
    if (a == NULL)
        return;
    struct arena_chunk *c = a->chunks;
    while (c != NULL) {
        struct arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    free(a);
}

/* ------------------------------------------------------- growable arrays */

typedef struct vec {
    void *data;
    size_t len;
    size_t cap;
} vec;

static void vec_free(vec *v)
{
    free(v->data);
    v->data = NULL;
    v->len = v->cap = 0;
}

/* Appends one zeroed element; NULL when out of memory. */
static void *vec_push(vec *v, size_t elem)
{
    if (v->len == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        if (cap > SIZE_MAX / elem)
            return NULL;
        void *data = realloc(v->data, cap * elem);
        if (data == NULL)
            return NULL;
        v->data = data;
        v->cap = cap;
    }
    void *slot = (char *)v->data + v->len * elem;
    memset(slot, 0, elem);
    v->len++;
    return slot;
}

#define VEC_AT(v, type, i) (((type *)(v).data)[i])

/* ------------------------------------------- raw records (first step) */



typedef struct raw_value_type {
    int64_t type_x, unit_x;
} raw_value_type;

typedef struct raw_label {
    int64_t key_x, str_x, num, num_unit_x;
} raw_label;

/* Ranges index the decoder's flat arrays of ids, values and labels. */
typedef struct raw_sample {
    size_t loc_start, loc_count;
    size_t value_start, value_count;
    size_t label_start, label_count;
} raw_sample;

typedef struct raw_mapping {
    uint64_t id, memory_start, memory_limit, file_offset;
    int64_t filename_x, build_id_x;
    bool has_functions, has_filenames, has_line_numbers, has_inline_frames;
} raw_mapping;

typedef struct raw_line {
    uint64_t function_id;
    int64_t line, column;
} raw_line;

typedef struct raw_location {
    uint64_t id, mapping_id, address;
    size_t line_start, line_count;
    bool is_folded;
} raw_location;

typedef struct raw_function {
    uint64_t id;
    int64_t name_x, system_name_x, filename_x, start_line;
} raw_function;

typedef struct raw_string {
    size_t offset, len; /* into the protobuf data */
} raw_string;

typedef struct decoder {
    const uint8_t *base; /* start of the protobuf data, for offsets */
    char *err;
    size_t errlen;
    bool failed;

    vec sample_types;   /* raw_value_type */
    vec samples;        /* raw_sample */
    vec sample_locs;    /* uint64_t location ids, all samples */
    vec sample_values;  /* int64_t, all samples */
    vec sample_labels;  /* raw_label, all samples */
    vec mappings;       /* raw_mapping */
    vec locations;      /* raw_location */
    vec lines;          /* raw_line, all locations */
    vec functions;      /* raw_function */
    vec strings;        /* raw_string */
    vec comments;       /* int64_t string indexes */
    int64_t drop_frames_x, keep_frames_x, default_sample_type_x;
    int64_t time_nanos, duration_nanos, period;
    bool seen_time_nanos;
    raw_value_type period_type;
} decoder;

/* Records the first error only: later ones are usually consequences. */
__attribute__((format(printf, 2, 3))) static bool fail(decoder *d, const char *fmt, ...)
{
    if (!d->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(d->err, d->errlen, fmt, ap);
        va_end(ap);
        d->failed = true;
    }
    return false;
}

static bool fail_oom(decoder *d)
{
    return fail(d, "out of memory while decoding the profile");
}

static void decoder_free(decoder *d)
{
    vec *all[] = {&d->sample_types, &d->samples, &d->sample_locs, &d->sample_values,
                  &d->sample_labels, &d->mappings, &d->locations, &d->lines,
                  &d->functions, &d->strings, &d->comments};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        vec_free(all[i]);
}

/* ------------------------------------------------- protobuf wire format */

typedef struct pb_cursor {
    const uint8_t *p;
    const uint8_t *end;
} pb_cursor;

static size_t offset_of(const decoder *d, const uint8_t *p)
{
    return (size_t)(p - d->base);
}

static bool pb_varint(decoder *d, pb_cursor *c, uint64_t *out)
{
    const uint8_t *start = c->p;
    int rc = mprof_varint_read(&c->p, c->end, out);
    if (rc == -1)
        return fail(d, "truncated varint at offset %zu", offset_of(d, start));
    if (rc == -2)
        return fail(d, "varint at offset %zu overflows 64 bits", offset_of(d, start));
    return true;
}

static bool pb_tag(decoder *d, pb_cursor *c, uint32_t *field, int *wire)
{
    const uint8_t *start = c->p;
    uint64_t tag;
    if (!pb_varint(d, c, &tag))
        return false;
    uint64_t number = tag >> 3;
    if (number == 0 || number > 0x1fffffff)
        return fail(d, "invalid field number %llu at offset %zu", (unsigned long long)number,
                    offset_of(d, start));
    *field = (uint32_t)number;
    *wire = (int)(tag & 7);
    return true;
}

/* Reads a length prefix and gives the payload its own cursor. */
static bool pb_len_delimited(decoder *d, pb_cursor *c, const char *what, pb_cursor *payload)
{
    const uint8_t *start = c->p;
    uint64_t len;
    if (!pb_varint(d, c, &len))
        return false;
    size_t left = (size_t)(c->end - c->p);
    if (len > left)
        return fail(d,
                    "%s: length %llu at offset %zu runs past the end of the data "
                    "(%zu bytes left)",
                    what, (unsigned long long)len, offset_of(d, start), left);
    payload->p = c->p;
    payload->end = c->p + len;
    c->p += len;
    return true;
}

static bool pb_skip_fixed(decoder *d, pb_cursor *c, size_t n)
{
    if ((size_t)(c->end - c->p) < n)
        return fail(d, "truncated %zu-byte field at offset %zu", n, offset_of(d, c->p));
    c->p += n;
    return true;
}

/* Groups are deprecated but legal protobuf; a skipped group may nest. */
#define MAX_GROUP_DEPTH 64

static bool pb_skip(decoder *d, pb_cursor *c, uint32_t field, int wire)
{
    uint32_t open_groups[MAX_GROUP_DEPTH];
    int depth = 0;
    for (;;) {
        switch (wire) {
        case WIRE_VARINT: {
            uint64_t ignored;
            if (!pb_varint(d, c, &ignored))
                return false;
            break;
        }
        case WIRE_I64:
            if (!pb_skip_fixed(d, c, 8))
                return false;
            break;
        case WIRE_I32:
            if (!pb_skip_fixed(d, c, 4))
                return false;
            break;
        case WIRE_LEN: {
            pb_cursor ignored;
            if (!pb_len_delimited(d, c, "unknown field", &ignored))
                return false;
            break;
        }
        case WIRE_SGROUP:
            if (depth == MAX_GROUP_DEPTH)
                return fail(d, "groups nested too deeply at offset %zu", offset_of(d, c->p));
            open_groups[depth++] = field;
            break;
        case WIRE_EGROUP:
            if (depth == 0 || open_groups[depth - 1] != field)
                return fail(d, "unmatched end of group %u before offset %zu", field,
                            offset_of(d, c->p));
            depth--;
            break;
        default:
            return fail(d, "invalid wire type %d before offset %zu", wire, offset_of(d, c->p));
        }
        if (depth == 0)
            return true;
        if (c->p >= c->end)
            return fail(d, "group %u is not closed before the end of its message",
                        open_groups[depth - 1]);
        if (!pb_tag(d, c, &field, &wire))
            return false;
    }
}

/* ---------------------------------------------------- typed field reads */

static const char *wire_name(int wire)
{
    switch (wire) {
    case WIRE_VARINT: return "varint";
    case WIRE_I64: return "fixed64";
    case WIRE_LEN: return "length-delimited";
    case WIRE_SGROUP: return "start-group";
    case WIRE_EGROUP: return "end-group";
    case WIRE_I32: return "fixed32";
    default: return "invalid";
    }
}

static bool wrong_wire(decoder *d, const pb_cursor *c, const char *what, int wire)
{
    if (wire > WIRE_I32)
        return fail(d, "invalid wire type %d before offset %zu", wire, offset_of(d, c->p));
    return fail(d, "%s has wire type %s before offset %zu, which that field cannot have", what,
                wire_name(wire), offset_of(d, c->p));
}

static bool read_u64(decoder *d, pb_cursor *c, int wire, const char *what, uint64_t *out)
{
    if (wire != WIRE_VARINT)
        return wrong_wire(d, c, what, wire);
    return pb_varint(d, c, out);
}

static bool read_i64(decoder *d, pb_cursor *c, int wire, const char *what, int64_t *out)
{
    uint64_t v;
    if (!read_u64(d, c, wire, what, &v))
        return false;
    *out = (int64_t)v; /* int64 fields carry two's complement in 10 bytes */
    return true;
}

static bool read_bool(decoder *d, pb_cursor *c, int wire, const char *what, bool *out)
{
    uint64_t v;
    if (!read_u64(d, c, wire, what, &v))
        return false;
    *out = v != 0;
    return true;
}

/* Repeated integers come one per tag or packed in one length-delimited
 * field; encoders use either, and a reader must take both. */
static bool read_repeated_u64(decoder *d, pb_cursor *c, int wire, const char *what, vec *out)
{
    if (wire == WIRE_VARINT) {
        uint64_t v;
        if (!pb_varint(d, c, &v))
            return false;
        uint64_t *slot = vec_push(out, sizeof(uint64_t));
        if (slot == NULL)
            return fail_oom(d);
        *slot = v;
        return true;
    }
    if (wire != WIRE_LEN)
        return wrong_wire(d, c, what, wire);
    pb_cursor packed;
    if (!pb_len_delimited(d, c, what, &packed))
        return false;
    while (packed.p < packed.end) {
        uint64_t v;
        if (!pb_varint(d, &packed, &v))
            return false;
        uint64_t *slot = vec_push(out, sizeof(uint64_t));
        if (slot == NULL)
            return fail_oom(d);
        *slot = v;
    }
    return true;
}

static bool read_message(decoder *d, pb_cursor *c, int wire, const char *what, pb_cursor *msg)
{
    if (wire != WIRE_LEN)
        return wrong_wire(d, c, what, wire);
    return pb_len_delimited(d, c, what, msg);
}

/* ------------------------------------------------------ message decoders */

static bool decode_value_type(decoder *d, pb_cursor c, const char *what, raw_value_type *vt)
{
    while (c.p < c.end) {
        uint32_t field;
        int wire;
        if (!pb_tag(d, &c, &field, &wire))
            return false;
        bool ok;
        switch (field) {
        case VALUE_TYPE_TYPE: ok = read_i64(d, &c, wire, what, &vt->type_x); break;
        case VALUE_TYPE_UNIT: ok = read_i64(d, &c, wire, what, &vt->unit_x); break;
        default: ok = pb_skip(d, &c, field, wire); break;
        }
        if (!ok)
            return false;
    }
    return true;
}

static bool decode_label(decoder *d, pb_cursor c, raw_label *label)
{
    while (c.p < c.end) {
        uint32_t field;
        int wire;
        if (!pb_tag(d, &c, &field, &wire))
            return false;
        bool ok;
        switch (field) {
        case LABEL_KEY: ok = read_i64(d, &c, wire, "Label.key", &label->key_x); break;
        case LABEL_STR: ok = read_i64(d, &c, wire, "Label.str", &label->str_x); break;
        case LABEL_NUM: ok = read_i64(d, &c, wire, "Label.num", &label->num); break;
        case LABEL_NUM_UNIT:
            ok = read_i64(d, &c, wire, "Label.num_unit", &label->num_unit_x);
            break;
        default: ok = pb_skip(d, &c, field, wire); break;
        }
        if (!ok)
            return false;
    }
    return true;
}

static bool decode_sample(decoder *d, pb_cursor c)
{
    raw_sample s = {
        .loc_start = d->sample_locs.len,
        .value_start = d->sample_values.len,
        .label_start = d->sample_labels.len,
    };
    while (c.p < c.end) {
        uint32_t field;
        int wire;
        if (!pb_tag(d, &c, &field, &wire))
            return false;
        bool ok;
        switch (field) {
        case SAMPLE_LOCATION_ID:
            ok = read_repeated_u64(d, &c, wire, "Sample.location_id", &d->sample_locs);
            break;
        case SAMPLE_VALUE:
            /* int64 values share the varint encoding of uint64 */
            ok = read_repeated_u64(d, &c, wire, "Sample.value", &d->sample_values);
            break;
        case SAMPLE_LABEL: {
            pb_cursor msg;
            ok = read_message(d, &c, wire, "Sample.label", &msg);
            if (ok) {
                raw_label *label = vec_push(&d->sample_labels, sizeof(raw_label));
                ok = label != NULL ? decode_label(d, msg, label) : fail_oom(d);
            }
            break;
        }
        default: ok = pb_skip(d, &c, field, wire); break;
        }
        if (!ok)
            return false;
    }
    s.loc_count = d->sample_locs.len - s.loc_start;
    s.value_count = d->sample_values.len - s.value_start;
    s.label_count = d->sample_labels.len - s.label_start;
    raw_sample *slot = vec_push(&d->samples, sizeof(raw_sample));
    if (slot == NULL)
        return fail_oom(d);
    *slot = s;
    return true;
}

static bool decode_mapping(decoder *d, pb_cursor c, raw_mapping *m)
{
    while (c.p < c.end) {
        uint32_t field;
        int wire;
        if (!pb_tag(d, &c, &field, &wire))
            return false;
        bool ok;
        switch (field) {
        case MAPPING_ID: ok = read_u64(d, &c, wire, "Mapping.id", &m->id); break;
        case MAPPING_MEMORY_START:
            ok = read_u64(d, &c, wire, "Mapping.memory_start", &m->memory_start);
            break;
        case MAPPING_MEMORY_LIMIT:
            ok = read_u64(d, &c, wire, "Mapping.memory_limit", &m->memory_limit);
            break;
        case MAPPING_FILE_OFFSET:
            ok = read_u64(d, &c, wire, "Mapping.file_offset", &m->file_offset);
            break;
        case MAPPING_FILENAME:
            ok = read_i64(d, &c, wire, "Mapping.filename", &m->filename_x);
            break;
        case MAPPING_BUILD_ID:
            ok = read_i64(d, &c, wire, "Mapping.build_id", &m->build_id_x);
            break;
        case MAPPING_HAS_FUNCTIONS:
            ok = read_bool(d, &c, wire, "Mapping.has_functions", &m->has_functions);
            break;
        case MAPPING_HAS_FILENAMES:
            ok = read_bool(d, &c, wire, "Mapping.has_filenames", &m->has_filenames);
            break;
        case MAPPING_HAS_LINE_NUMBERS:
            ok = read_bool(d, &c, wire, "Mapping.has_line_numbers", &m->has_line_numbers);
            break;
        case MAPPING_HAS_INLINE_FRAMES:
            ok = read_bool(d, &c, wire, "Mapping.has_inline_frames", &m->has_inline_frames);
            break;
        default: ok = pb_skip(d, &c, field, wire); break;
        }
        if (!ok)
            return false;
    }
    return true;
}

static bool decode_line(decoder *d, pb_cursor c, raw_line *line)
{
    while (c.p < c.end) {
        uint32_t field;
        int wire;
        if (!pb_tag(d, &c, &field, &wire))
            return false;
        bool ok;
        switch (field) {
        case LINE_FUNCTION_ID:
            ok = read_u64(d, &c, wire, "Line.function_id", &line->function_id);
            break;
        case LINE_LINE: ok = read_i64(d, &c, wire, "Line.line", &line->line); break;
        case LINE_COLUMN: ok = read_i64(d, &c, wire, "Line.column", &line->column); break;
        default: ok = pb_skip(d, &c, field, wire); break;
        }
        if (!ok)
            return false;
    }
    return true;
}

static bool decode_location(decoder *d, pb_cursor c)
{
    raw_location loc = {.line_start = d->lines.len};
    while (c.p < c.end) {
        uint32_t field;
        int wire;
        if (!pb_tag(d, &c, &field, &wire))
            return false;
        bool ok;
        switch (field) {
        case LOCATION_ID: ok = read_u64(d, &c, wire, "Location.id", &loc.id); break;
        case LOCATION_MAPPING_ID:
            ok = read_u64(d, &c, wire, "Location.mapping_id", &loc.mapping_id);
            break;
        case LOCATION_ADDRESS: ok = read_u64(d, &c, wire, "Location.address", &loc.address); break;
        case LOCATION_LINE: {
            pb_cursor msg;
            ok = read_message(d, &c, wire, "Location.line", &msg);
            if (ok) {
                raw_line *line = vec_push(&d->lines, sizeof(raw_line));
                ok = line != NULL ? decode_line(d, msg, line) : fail_oom(d);
            }
            break;
        }
        case LOCATION_IS_FOLDED:
            ok = read_bool(d, &c, wire, "Location.is_folded", &loc.is_folded);
            break;
        default: ok = pb_skip(d, &c, field, wire); break;
        }
        if (!ok)
            return false;
    }
    loc.line_count = d->lines.len - loc.line_start;
    raw_location *slot = vec_push(&d->locations, sizeof(raw_location));
    if (slot == NULL)
        return fail_oom(d);
    *slot = loc;
    return true;
}

static bool decode_function(decoder *d, pb_cursor c, raw_function *f)
{
    while (c.p < c.end) {
        uint32_t field;
        int wire;
        if (!pb_tag(d, &c, &field, &wire))
            return false;
        bool ok;
        switch (field) {
        case FUNCTION_ID: ok = read_u64(d, &c, wire, "Function.id", &f->id); break;
        case FUNCTION_NAME: ok = read_i64(d, &c, wire, "Function.name", &f->name_x); break;
        case FUNCTION_SYSTEM_NAME:
            ok = read_i64(d, &c, wire, "Function.system_name", &f->system_name_x);
            break;
        case FUNCTION_FILENAME:
            ok = read_i64(d, &c, wire, "Function.filename", &f->filename_x);
            break;
        case FUNCTION_START_LINE:
            ok = read_i64(d, &c, wire, "Function.start_line", &f->start_line);
            break;
        default: ok = pb_skip(d, &c, field, wire); break;
        }
        if (!ok)
            return false;
    }
    return true;
}

static bool decode_profile(decoder *d, pb_cursor c)
{
    while (c.p < c.end) {
        uint32_t field;
        int wire;
        if (!pb_tag(d, &c, &field, &wire))
            return false;
        bool ok;
        pb_cursor msg;
        switch (field) {
        case PROFILE_SAMPLE_TYPE: {
            ok = read_message(d, &c, wire, "Profile.sample_type", &msg);
            if (ok) {
                raw_value_type *vt = vec_push(&d->sample_types, sizeof(raw_value_type));
                ok = vt != NULL ? decode_value_type(d, msg, "Profile.sample_type", vt)
                                : fail_oom(d);
            }
            break;
        }
        case PROFILE_SAMPLE:
            ok = read_message(d, &c, wire, "Profile.sample", &msg) && decode_sample(d, msg);
            break;
        case PROFILE_MAPPING: {
            ok = read_message(d, &c, wire, "Profile.mapping", &msg);
            if (ok) {
                raw_mapping *m = vec_push(&d->mappings, sizeof(raw_mapping));
                ok = m != NULL ? decode_mapping(d, msg, m) : fail_oom(d);
            }
            break;
        }
        case PROFILE_LOCATION:
            ok = read_message(d, &c, wire, "Profile.location", &msg) && decode_location(d, msg);
            break;
        case PROFILE_FUNCTION: {
            ok = read_message(d, &c, wire, "Profile.function", &msg);
            if (ok) {
                raw_function *f = vec_push(&d->functions, sizeof(raw_function));
                ok = f != NULL ? decode_function(d, msg, f) : fail_oom(d);
            }
            break;
        }
        case PROFILE_STRING_TABLE: {
            ok = read_message(d, &c, wire, "Profile.string_table", &msg);
            if (ok) {
                raw_string *s = vec_push(&d->strings, sizeof(raw_string));
                if (s == NULL)
                    return fail_oom(d);
                s->offset = offset_of(d, msg.p);
                s->len = (size_t)(msg.end - msg.p);
            }
            break;
        }
        case PROFILE_DROP_FRAMES:
            ok = read_i64(d, &c, wire, "Profile.drop_frames", &d->drop_frames_x);
            break;
        case PROFILE_KEEP_FRAMES:
            ok = read_i64(d, &c, wire, "Profile.keep_frames", &d->keep_frames_x);
            break;
        case PROFILE_TIME_NANOS:
            /* pprof treats a second time_nanos as two profiles glued
             * together (cat a.pb b.pb), whose ids would collide. */
            if (d->seen_time_nanos)
                return fail(d, "time_nanos appears twice before offset %zu: concatenated "
                               "profiles are not supported", offset_of(d, c.p));
            d->seen_time_nanos = true;
            ok = read_i64(d, &c, wire, "Profile.time_nanos", &d->time_nanos);
            break;
        case PROFILE_DURATION_NANOS:
            ok = read_i64(d, &c, wire, "Profile.duration_nanos", &d->duration_nanos);
            break;
        case PROFILE_PERIOD_TYPE:
            ok = read_message(d, &c, wire, "Profile.period_type", &msg) &&
                 decode_value_type(d, msg, "Profile.period_type", &d->period_type);
            break;
        case PROFILE_PERIOD: ok = read_i64(d, &c, wire, "Profile.period", &d->period); break;
        case PROFILE_COMMENT:
            ok = read_repeated_u64(d, &c, wire, "Profile.comment", &d->comments);
            break;
        case PROFILE_DEFAULT_SAMPLE_TYPE:
            ok = read_i64(d, &c, wire, "Profile.default_sample_type", &d->default_sample_type_x);
            break;
        default: ok = pb_skip(d, &c, field, wire); break;
        }
        if (!ok)
            return false;
    }
    return true;
}

/* ------------------------------------------------- resolution (second step) */

typedef struct resolver {
    decoder *d;
    pp_profile *p;
} resolver;

static bool string_at(resolver *r, int64_t index, const char *what, const char **out)
{
    if (index < 0 || (uint64_t)index >= r->p->nstrings)
        return fail(r->d,
                    "%s: string index %lld is out of range (the string table has %zu entries)",
                    what, (long long)index, r->p->nstrings);
    *out = r->p->strings[index];
    return true;
}

/* Id lookups go through arrays of pointers sorted by id: profiles can have
 * hundreds of thousands of locations, and a duplicate id shows up as two
 * neighbours. */
typedef struct id_entry {
    uint64_t id;
    void *object;
} id_entry;

static int compare_id_entries(const void *a, const void *b)
{
    uint64_t x = ((const id_entry *)a)->id, y = ((const id_entry *)b)->id;
    return (x > y) - (x < y);
}

static id_entry *build_id_index(resolver *r, size_t n, void *objects, size_t stride,
                                size_t id_offset, const char *kind)
{
    id_entry *index = malloc((n ? n : 1) * sizeof(*index));
    if (index == NULL) {
        fail_oom(r->d);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        char *object = (char *)objects + i * stride;
        memcpy(&index[i].id, object + id_offset, sizeof(uint64_t));
        index[i].object = object;
        if (index[i].id == 0) {
            free(index);
            fail(r->d, "%s #%zu has id 0, which is reserved", kind, i + 1);
            return NULL;
        }
    }
    qsort(index, n, sizeof(*index), compare_id_entries);
    for (size_t i = 1; i < n; i++) {
        if (index[i].id == index[i - 1].id) {
            uint64_t id = index[i].id;
            free(index);
            fail(r->d, "two %ss have the same id %llu", kind, (unsigned long long)id);
            return NULL;
        }
    }
    return index;
}

static void *find_by_id(const id_entry *index, size_t n, uint64_t id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (index[mid].id < id)
            lo = mid + 1;
        else if (index[mid].id > id)
            hi = mid;
        else
            return index[mid].object;
    }
    return NULL;
}

static bool resolve_strings(resolver *r, const uint8_t *data)
{
    decoder *d = r->d;
    pp_profile *p = r->p;
    p->nstrings = d->strings.len;
    p->strings = arena_array(p->arena, p->nstrings ? p->nstrings : 1, sizeof(char *));
    if (p->strings == NULL)
        return fail_oom(d);
    for (size_t i = 0; i < p->nstrings; i++) {
        raw_string s = VEC_AT(d->strings, raw_string, i);
        char *copy = arena_alloc(p->arena, s.len + 1);
        if (copy == NULL)
            return fail_oom(d);
        memcpy(copy, data + s.offset, s.len);
        p->strings[i] = copy;
    }
    /* Index 0 stands for "unset" everywhere, so it must be the empty
     * string; a table that breaks this rule was not written by a pprof
     * encoder and its other indexes cannot be trusted either. */
    if (p->nstrings == 0)
        return fail(d, "the string table is empty (string_table[0] must be \"\")");
    if (p->strings[0][0] != '\0' || VEC_AT(d->strings, raw_string, 0).len != 0)
        return fail(d, "string_table[0] is \"%.40s\", but must be \"\"", p->strings[0]);
    return true;
}

static bool resolve_value_type(resolver *r, const raw_value_type *raw, const char *what,
                               pp_value_type *out)
{
    return string_at(r, raw->type_x, what, &out->type) &&
           string_at(r, raw->unit_x, what, &out->unit);
}

static bool resolve_profile(decoder *d, const uint8_t *data, pp_profile *p)
{
    resolver r = {d, p};
    if (!resolve_strings(&r, data))
        return false;

    /* Scalars and value types. */
    if (!string_at(&r, d->drop_frames_x, "Profile.drop_frames", &p->drop_frames) ||
        !string_at(&r, d->keep_frames_x, "Profile.keep_frames", &p->keep_frames) ||
        !string_at(&r, d->default_sample_type_x, "Profile.default_sample_type",
                   &p->default_sample_type) ||
        !resolve_value_type(&r, &d->period_type, "Profile.period_type", &p->period_type))
        return false;
    p->time_nanos = d->time_nanos;
    p->duration_nanos = d->duration_nanos;
    p->period = d->period;

    p->ncomments = d->comments.len;
    p->comments = arena_array(p->arena, p->ncomments, sizeof(char *));
    if (p->comments == NULL)
        return fail_oom(d);
    for (size_t i = 0; i < p->ncomments; i++)
        if (!string_at(&r, (int64_t)VEC_AT(d->comments, uint64_t, i), "Profile.comment",
                       &p->comments[i]))
            return false;

    p->nsample_types = d->sample_types.len;
    p->sample_types = arena_array(p->arena, p->nsample_types, sizeof(pp_value_type));
    if (p->sample_types == NULL)
        return fail_oom(d);
    for (size_t i = 0; i < p->nsample_types; i++)
        if (!resolve_value_type(&r, &VEC_AT(d->sample_types, raw_value_type, i),
                                "Profile.sample_type", &p->sample_types[i]))
            return false;

    /* Mappings and functions: strings only, then an id index each. */
    p->nmappings = d->mappings.len;
    p->mappings = arena_array(p->arena, p->nmappings, sizeof(pp_mapping));
    if (p->mappings == NULL)
        return fail_oom(d);
    for (size_t i = 0; i < p->nmappings; i++) {
        const raw_mapping *raw = &VEC_AT(d->mappings, raw_mapping, i);
        pp_mapping *m = &p->mappings[i];
        m->id = raw->id;
        m->memory_start = raw->memory_start;
        m->memory_limit = raw->memory_limit;
        m->file_offset = raw->file_offset;
        m->has_functions = raw->has_functions;
        m->has_filenames = raw->has_filenames;
        m->has_line_numbers = raw->has_line_numbers;
        m->has_inline_frames = raw->has_inline_frames;
        if (!string_at(&r, raw->filename_x, "Mapping.filename", &m->filename) ||
            !string_at(&r, raw->build_id_x, "Mapping.build_id", &m->build_id))
            return false;
    }
    p->nfunctions = d->functions.len;
    p->functions = arena_array(p->arena, p->nfunctions, sizeof(pp_function));
    if (p->functions == NULL)
        return fail_oom(d);
    for (size_t i = 0; i < p->nfunctions; i++) {
        const raw_function *raw = &VEC_AT(d->functions, raw_function, i);
        pp_function *f = &p->functions[i];
        f->id = raw->id;
        f->start_line = raw->start_line;
        if (!string_at(&r, raw->name_x, "Function.name", &f->name) ||
            !string_at(&r, raw->system_name_x, "Function.system_name", &f->system_name) ||
            !string_at(&r, raw->filename_x, "Function.filename", &f->filename))
            return false;
    }

    bool ok = false;
    id_entry *mapping_index = NULL, *function_index = NULL, *location_index = NULL;
    mapping_index = build_id_index(&r, p->nmappings, p->mappings, sizeof(pp_mapping),
                                   offsetof(pp_mapping, id), "mapping");
    if (mapping_index == NULL)
        goto out;
    function_index = build_id_index(&r, p->nfunctions, p->functions, sizeof(pp_function),
                                    offsetof(pp_function, id), "function");
    if (function_index == NULL)
        goto out;

    /* Locations and their lines. */
    p->nlocations = d->locations.len;
    p->locations = arena_array(p->arena, p->nlocations, sizeof(pp_location));
    pp_line *lines = arena_array(p->arena, d->lines.len, sizeof(pp_line));
    if (p->locations == NULL || lines == NULL) {
        fail_oom(d);
        goto out;
    }
    for (size_t i = 0; i < p->nlocations; i++) {
        const raw_location *raw = &VEC_AT(d->locations, raw_location, i);
        pp_location *loc = &p->locations[i];
        loc->id = raw->id;
        loc->address = raw->address;
        loc->is_folded = raw->is_folded;
        if (raw->mapping_id != 0) {
            loc->mapping = find_by_id(mapping_index, p->nmappings, raw->mapping_id);
            if (loc->mapping == NULL) {
                fail(d, "location %llu refers to mapping %llu, which the profile does not define",
                     (unsigned long long)raw->id, (unsigned long long)raw->mapping_id);
                goto out;
            }
        }
        loc->lines = lines + raw->line_start;
        loc->nlines = raw->line_count;
        for (size_t j = 0; j < raw->line_count; j++) {
            const raw_line *rl = &VEC_AT(d->lines, raw_line, raw->line_start + j);
            loc->lines[j].line = rl->line;
            loc->lines[j].column = rl->column;
            loc->lines[j].function = find_by_id(function_index, p->nfunctions, rl->function_id);
            if (loc->lines[j].function == NULL) {
                fail(d, "location %llu has a line in function %llu, which the profile does not "
                        "define", (unsigned long long)raw->id,
                     (unsigned long long)rl->function_id);
                goto out;
            }
        }
    }
    location_index = build_id_index(&r, p->nlocations, p->locations, sizeof(pp_location),
                                    offsetof(pp_location, id), "location");
    if (location_index == NULL)
        goto out;

    /* Samples. */
    if (d->samples.len > 0 && p->nsample_types == 0) {
        fail(d, "the profile has samples but no sample types");
        goto out;
    }
    p->nsamples = d->samples.len;
    p->samples = arena_array(p->arena, p->nsamples, sizeof(pp_sample));
    pp_location **sample_locs = arena_array(p->arena, d->sample_locs.len, sizeof(pp_location *));
    int64_t *values = arena_array(p->arena, d->sample_values.len, sizeof(int64_t));
    pp_label *labels = arena_array(p->arena, d->sample_labels.len, sizeof(pp_label));
    if (p->samples == NULL || sample_locs == NULL || values == NULL || labels == NULL) {
        fail_oom(d);
        goto out;
    }
    for (size_t i = 0; i < p->nsamples; i++) {
        const raw_sample *raw = &VEC_AT(d->samples, raw_sample, i);
        pp_sample *s = &p->samples[i];
        if (raw->value_count != p->nsample_types) {
            fail(d, "sample #%zu has %zu values, but the profile has %zu sample types", i + 1,
                 raw->value_count, p->nsample_types);
            goto out;
        }
        s->values = values + raw->value_start;
        for (size_t j = 0; j < raw->value_count; j++)
            s->values[j] = (int64_t)VEC_AT(d->sample_values, uint64_t, raw->value_start + j);
        s->locations = sample_locs + raw->loc_start;
        s->nlocations = raw->loc_count;
        for (size_t j = 0; j < raw->loc_count; j++) {
            uint64_t id = VEC_AT(d->sample_locs, uint64_t, raw->loc_start + j);
            s->locations[j] = find_by_id(location_index, p->nlocations, id);
            if (s->locations[j] == NULL) {
                fail(d, "sample #%zu refers to location %llu, which the profile does not define",
                     i + 1, (unsigned long long)id);
                goto out;
            }
        }
        s->labels = labels + raw->label_start;
        s->nlabels = raw->label_count;
        for (size_t j = 0; j < raw->label_count; j++) {
            const raw_label *rl = &VEC_AT(d->sample_labels, raw_label, raw->label_start + j);
            pp_label *label = &s->labels[j];
            label->num = rl->num;
            if (!string_at(&r, rl->key_x, "Label.key", &label->key) ||
                !string_at(&r, rl->num_unit_x, "Label.num_unit", &label->num_unit))
                goto out;
            if (rl->str_x != 0 && !string_at(&r, rl->str_x, "Label.str", &label->str))
                goto out;
        }
    }
    ok = true;
out:
    free(mapping_index);
    free(function_index);
    free(location_index);
    return ok;
}

/* ---------------------------------------------------------------- gunzip */

bool pp_is_gzip(const uint8_t *data, size_t len)
{
    return len >= 2 && data[0] == 0x1f && data[1] == 0x8b;
}

int pp_gunzip(const uint8_t *in, size_t inlen, uint8_t **out, size_t *outlen, char *err,
              size_t errlen)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    /* 15 + 32: the largest window, and detect gzip or zlib headers. */
    if (inflateInit2(&zs, 15 + 32) != Z_OK) {
        snprintf(err, errlen, "cannot initialise zlib");
        return -1;
    }
    size_t cap = inlen < ((size_t)1 << 20) ? ((size_t)1 << 20) : inlen * 4;
    if (cap > PP_MAX_DECOMPRESSED_BYTES)
        cap = PP_MAX_DECOMPRESSED_BYTES;
    uint8_t *buf = malloc(cap);
    size_t used = 0;
    if (buf == NULL)
        goto oom;
    const uint8_t *next_in = in;
    size_t left_in = inlen;
    for (;;) {
        if (used == cap) {
            if (cap == PP_MAX_DECOMPRESSED_BYTES) {
                snprintf(err, errlen, "the decompressed profile is larger than %zu MiB",
                         PP_MAX_DECOMPRESSED_BYTES >> 20);
                goto fail;
            }
            size_t bigger = cap * 2 > PP_MAX_DECOMPRESSED_BYTES ? PP_MAX_DECOMPRESSED_BYTES
                                                                 : cap * 2;
            uint8_t *grown = realloc(buf, bigger);
            if (grown == NULL)
                goto oom;
            buf = grown;
            cap = bigger;
        }
        /* zlib counts in uInt: feed it at most 1 GiB per call. */
        const size_t chunk_limit = (size_t)1 << 30;
        size_t in_chunk = left_in < chunk_limit ? left_in : chunk_limit;
        size_t out_chunk = cap - used < chunk_limit ? cap - used : chunk_limit;
        zs.next_in = (Bytef *)next_in;
        zs.avail_in = (uInt)in_chunk;
        zs.next_out = buf + used;
        zs.avail_out = (uInt)out_chunk;
        int rc = inflate(&zs, Z_NO_FLUSH);
        size_t consumed = in_chunk - zs.avail_in;
        next_in += consumed;
        left_in -= consumed;
        used += out_chunk - zs.avail_out;
        if (rc == Z_STREAM_END) {
            if (left_in == 0)
                break;
            /* gzip files may hold several members; anything else after
             * the end is damage, which Go's reader rejects too. */
            if (!pp_is_gzip(next_in, left_in)) {
                snprintf(err, errlen, "unexpected data after the end of the gzip stream");
                goto fail;
            }
            if (inflateReset(&zs) != Z_OK)
                goto oom;
            continue;
        }
        if (rc == Z_OK)
            continue;
        /* Z_BUF_ERROR means no progress was possible.  Output space is
         * never zero here (the buffer grows at the top of the loop), so
         * the input ran out: the file was cut short. */
        if (rc == Z_BUF_ERROR && left_in == 0) {
            snprintf(err, errlen,
                     "truncated gzip data (the file ends before the gzip stream does)");
            goto fail;
        }
        if (rc == Z_MEM_ERROR)
            goto oom;
        snprintf(err, errlen, "corrupt gzip data (%s)", zs.msg ? zs.msg : "inflate failed");
        goto fail;
    }
    inflateEnd(&zs);
    *out = buf;
    *outlen = used;
    return 0;
oom:
    snprintf(err, errlen, "out of memory while decompressing");
fail:
    inflateEnd(&zs);
    free(buf);
    return -1;
}

/* ------------------------------------------------------------ entry points */

/* Text (a legacy pprof format, a log, a script) decodes as garbage; saying
 * "text" helps more than the offset of the first impossible field. */
static bool looks_like_text(const uint8_t *data, size_t len)
{
    size_t n = len < 64 ? len : 64;
    for (size_t i = 0; i < n; i++)
        if ((data[i] < 0x20 || data[i] > 0x7e) && data[i] != '\n' && data[i] != '\t' &&
            data[i] != '\r')
            return false;
    return n > 0;
}

pp_profile *pp_profile_parse(const void *data, size_t len, char *err, size_t errlen)
{
    const uint8_t *bytes = data;
    uint8_t *inflated = NULL;
    if (len == 0) {
        snprintf(err, errlen, "empty file");
        return NULL;
    }
    if (pp_is_gzip(bytes, len)) {
        size_t inflated_len;
        if (pp_gunzip(bytes, len, &inflated, &inflated_len, err, errlen) != 0)
            return NULL;
        bytes = inflated;
        len = inflated_len;
    }

    char detail[512] = "";
    decoder d = {.base = bytes, .err = detail, .errlen = sizeof(detail)};
    pp_profile *p = calloc(1, sizeof(*p));
    if (p != NULL)
        p->arena = calloc(1, sizeof(struct pp_arena));
    if (p == NULL || p->arena == NULL) {
        fail_oom(&d);
    } else if (decode_profile(&d, (pb_cursor){bytes, bytes + len})) {
        resolve_profile(&d, bytes, p);
    }
    decoder_free(&d);
    if (d.failed) {
        if (looks_like_text(bytes, len))
            snprintf(err, errlen, "not a pprof profile: this is text, and mprof reads pprof "
                                  "protobuf files (gzipped or not)");
        else
            snprintf(err, errlen, "not a valid pprof profile: %s", detail);
        pp_profile_free(p);
        p = NULL;
    }
    free(inflated);
    return p;
}

void pp_profile_free(pp_profile *p)
{
    if (p == NULL)
        return;
    arena_free(p->arena);
    free(p);
}

const char *pp_profile_copy_string(pp_profile *p, const char *s, size_t len)
{
    char *copy = arena_alloc(p->arena, len + 1);
    if (copy != NULL)
        memcpy(copy, s, len);
    return copy;
}

/* Reads a whole file or pipe. */
static int read_all(const char *path, uint8_t **out, size_t *outlen, char *err, size_t errlen)
{
    bool is_stdin = strcmp(path, "-") == 0;
    int fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open: %s", strerror(errno));
        return -1;
    }
    struct stat st;
    size_t cap = 1 << 16;
    if (fstat(fd, &st) == 0) {
        if (S_ISDIR(st.st_mode)) {
            snprintf(err, errlen, "is a directory, not a profile");
            goto fail_fd;
        }
        if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > PP_MAX_INPUT_BYTES) {
            snprintf(err, errlen, "file too large (%lld bytes; the limit is %zu MiB)",
                     (long long)st.st_size, PP_MAX_INPUT_BYTES >> 20);
            goto fail_fd;
        }
        if (S_ISREG(st.st_mode) && st.st_size > 0)
            cap = (size_t)st.st_size + 1; /* +1: EOF is seen without a regrow */
    }
    uint8_t *buf = malloc(cap);
    size_t used = 0;
    if (buf == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail_fd;
    }
    for (;;) {
        if (used == cap) {
            if (cap >= PP_MAX_INPUT_BYTES) {
                snprintf(err, errlen, "input too large (the limit is %zu MiB)",
                         PP_MAX_INPUT_BYTES >> 20);
                goto fail_buf;
            }
            size_t bigger = cap * 2;
            uint8_t *grown = realloc(buf, bigger);
            if (grown == NULL) {
                snprintf(err, errlen, "out of memory");
                goto fail_buf;
            }
            buf = grown;
            cap = bigger;
        }
        ssize_t n = read(fd, buf + used, cap - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "read error: %s", strerror(errno));
            goto fail_buf;
        }
        if (n == 0)
            break;
        used += (size_t)n;
    }
    if (!is_stdin)
        close(fd);
    *out = buf;
    *outlen = used;
    return 0;
fail_buf:
    free(buf);
fail_fd:
    if (!is_stdin)
        close(fd);
    return -1;
}

pp_profile *pp_profile_read_file(const char *path, char *err, size_t errlen)
{
    uint8_t *data;
    size_t len;
    if (read_all(path, &data, &len, err, errlen) != 0)
        return NULL;
    pp_profile *p = pp_profile_parse(data, len, err, errlen);
    free(data);
    return p;
}
