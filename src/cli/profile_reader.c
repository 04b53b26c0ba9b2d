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

/* ------------------------------------------------------------- limits */

static size_t read_limit = PP_DEFAULT_READ_LIMIT;

void pp_set_read_limit(size_t bytes) { read_limit = bytes > 0 ? bytes : PP_DEFAULT_READ_LIMIT; }

size_t pp_read_limit(void) { return read_limit; }

void pp_limit_message(char *err, size_t errlen, const char *what, size_t size, bool at_least)
{
    size_t limit_mib = read_limit >> 20, size_mib = (size + (1 << 20) - 1) >> 20;
    /* Enough for this input when its size is known, else twice the limit. */
    size_t suggest = at_least || size_mib < limit_mib ? 2 * limit_mib : size_mib + 1;
    if (at_least)
        snprintf(err, errlen,
                 "%s is more than %zu MiB, the most mprof reads; if it is genuine, run again "
                 "with MPROF_READ_LIMIT_MB=%zu",
                 what, limit_mib, suggest);
    else
        snprintf(err, errlen,
                 "%s is %zu MiB, more than the %zu MiB mprof reads; if it is genuine, run again "
                 "with MPROF_READ_LIMIT_MB=%zu",
                 what, size_mib, limit_mib, suggest);
}

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
        struct arena_chunk *fresh = malloc(sizeof(*fresh) + cap);
        if (fresh == NULL)
            return NULL;
        fresh->cap = cap;
        fresh->used = 0;
        if (c != NULL && size > ARENA_CHUNK_BYTES / 4) {
            /* A big array gets a chunk of its own size, behind the
             * current one, whose room stays for the small requests: the
             * arena then holds what was asked for, plus less than one
             * chunk. */
            fresh->next = c->next;
            c->next = fresh;
        } else {
            fresh->next = a->chunks;
            a->chunks = fresh;
        }
        c = fresh;
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

/* ------------------------------------------------------- record arrays */

/*
 * The decoder's arrays are filled in two passes over the protobuf.  The
 * first only counts: push hands out a scratch slot and bumps len.  The
 * memory the profile will take is then known exactly, is checked against
 * the budget (pp_read_budget) before anything is allocated, and every
 * array is allocated once at its exact size, in the profile's arena; the
 * second pass fills them.  Nothing grows by doubling, and a file that
 * would cost more than its budget is refused having cost nothing.
 *
 * Most arrays become the profile's own in place: a raw record and the
 * resolved one have the same size (checked below), and resolution
 * overwrites each raw record with its resolved form, so raw and resolved
 * copies never exist side by side.
 */
typedef struct vec {
    void *data;
    size_t len; /* pass 1: the count; pass 2: filled so far */
    size_t cap; /* pass 2: the count of pass 1 */
} vec;

#define VEC_AT(v, type, i) (((type *)(v).data)[i])

/* ------------------------------------------- raw records (first step) */



typedef struct raw_value_type {
    int64_t type_x, unit_x;
} raw_value_type;

typedef struct raw_label {
    int64_t key_x, str_x, num, num_unit_x;
} raw_label;


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

/* A string table entry: the offset of its length prefix in the protobuf
 * (the length is read again when the string is copied), then, in place,
 * the string.  One word either way. */
typedef union raw_string {
    size_t offset;
    const char *text;
} raw_string;

/* The records resolved in place (see "record arrays"). */
#define SAME_SHAPE(raw, resolved)                                                               \
    _Static_assert(sizeof(raw) == sizeof(resolved) && _Alignof(raw) == _Alignof(resolved),    \
                   #raw " must be the size of " #resolved)
SAME_SHAPE(raw_value_type, pp_value_type);
SAME_SHAPE(raw_label, pp_label);
SAME_SHAPE(raw_mapping, pp_mapping);
SAME_SHAPE(raw_line, pp_line);
SAME_SHAPE(raw_location, pp_location);
SAME_SHAPE(raw_function, pp_function);
SAME_SHAPE(uint64_t, pp_location *);
SAME_SHAPE(uint64_t, const char *);
SAME_SHAPE(raw_string, const char *);

typedef struct decoder {
    const uint8_t *base; /* start of the protobuf data, for offsets */
    char *err;
    size_t errlen;
    bool failed;
    bool counting; /* the first pass (see "record arrays") */
    size_t string_bytes; /* the string table's bytes, a NUL after each */
    max_align_t scratch[4]; /* the first pass's one record slot */

    vec sample_types;   /* raw_value_type */
    vec samples;        /* pp_sample: counts in pass 2, pointers once resolved */
    vec sample_locs;    /* uint64_t location ids, all samples */
    vec sample_values;  /* int64_t, all samples */
    vec sample_labels;  /* raw_label, all samples */
    vec mappings;       /* raw_mapping */
    vec locations;      /* raw_location */
    vec lines;          /* raw_line, all locations */
    vec functions;      /* raw_function */
    vec strings;        /* raw_string */
    vec comments;       /* uint64_t string indexes */
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

/* Appends one zeroed record; NULL (and the error set) when the second
 * pass finds more than the first counted, which a deterministic decoder
 * never does. */
static void *push(decoder *d, vec *v, size_t elem)
{
    if (d->counting) {
        v->len++;
        memset(d->scratch, 0, elem);
        return d->scratch;
    }
    if (v->len == v->cap) {
        fail(d, "internal error: the profile changed between the two decoding passes");
        return NULL;
    }
    void *slot = (char *)v->data + v->len * elem;
    memset(slot, 0, elem);
    v->len++;
    return slot;
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
        uint64_t *slot = push(d, out, sizeof(uint64_t));
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
        uint64_t *slot = push(d, out, sizeof(uint64_t));
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
    size_t loc_start = d->sample_locs.len, value_start = d->sample_values.len,
           label_start = d->sample_labels.len;
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
                raw_label *label = push(d, &d->sample_labels, sizeof(raw_label));
                ok = label != NULL ? decode_label(d, msg, label) : fail_oom(d);
            }
            break;
        }
        default: ok = pb_skip(d, &c, field, wire); break;
        }
        if (!ok)
            return false;
    }
    pp_sample *slot = push(d, &d->samples, sizeof(pp_sample));
    if (slot == NULL)
        return false;
    /* The second pass knows every sample type (the first counted them):
     * a sample must have one value for each.  Its arrays follow the
     * previous sample's; resolution turns the counts into pointers. */
    size_t values = d->sample_values.len - value_start;
    if (!d->counting && d->sample_types.cap == 0)
        return fail(d, "the profile has samples but no sample types");
    if (!d->counting && values != d->sample_types.cap)
        return fail(d, "sample #%zu has %zu values, but the profile has %zu sample types",
                    d->samples.len, values, d->sample_types.cap);
    slot->nlocations = d->sample_locs.len - loc_start;
    slot->nlabels = d->sample_labels.len - label_start;
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
                raw_line *line = push(d, &d->lines, sizeof(raw_line));
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
    raw_location *slot = push(d, &d->locations, sizeof(raw_location));
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
                raw_value_type *vt = push(d, &d->sample_types, sizeof(raw_value_type));
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
                raw_mapping *m = push(d, &d->mappings, sizeof(raw_mapping));
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
                raw_function *f = push(d, &d->functions, sizeof(raw_function));
                ok = f != NULL ? decode_function(d, msg, f) : fail_oom(d);
            }
            break;
        }
        case PROFILE_STRING_TABLE: {
            size_t length_at = offset_of(d, c.p);
            ok = read_message(d, &c, wire, "Profile.string_table", &msg);
            if (ok) {
                raw_string *s = push(d, &d->strings, sizeof(raw_string));
                if (s == NULL)
                    return false;
                s->offset = length_at;
                /* Cannot overflow: each string's bytes are in the data,
                 * and its tag and length take more than its NUL. */
                d->string_bytes += (size_t)(msg.end - msg.p) + 1;
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
    /* qsort is never given a NULL base; index is never NULL here. */
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

/* The string table: every string copied, NUL-terminated, into one block
 * of the arena, and each entry's offset replaced by its text in place. */
static bool resolve_strings(resolver *r, const uint8_t *data, size_t len)
{
    decoder *d = r->d;
    pp_profile *p = r->p;
    /* Index 0 stands for "unset" everywhere, so it must be the empty
     * string; a table that breaks this rule was not written by a pprof
     * encoder and its other indexes cannot be trusted either. */
    if (d->strings.len == 0)
        return fail(d, "the string table is empty (string_table[0] must be \"\")");
    char *text = arena_alloc(p->arena, d->string_bytes);
    if (text == NULL)
        return fail_oom(d);
    raw_string *table = d->strings.data;
    uint64_t first_len = 0;
    for (size_t i = 0; i < d->strings.len; i++) {
        /* The length prefix was read once already: it is valid. */
        const uint8_t *at = data + table[i].offset;
        uint64_t n = 0;
        (void)mprof_varint_read(&at, data + len, &n);
        if (i == 0)
            first_len = n;
        memcpy(text, at, (size_t)n);
        text[n] = '\0';
        table[i].text = text;
        text += n + 1;
    }
    p->strings = (const char **)d->strings.data;
    p->nstrings = d->strings.len;
    if (first_len != 0)
        return fail(d, "string_table[0] is \"%.40s\", but must be \"\"", p->strings[0]);
    return true;
}

static bool resolve_value_type(resolver *r, raw_value_type *slot, const char *what)
{
    raw_value_type raw = *slot;
    pp_value_type *out = (pp_value_type *)slot;
    return string_at(r, raw.type_x, what, &out->type) &&
           string_at(r, raw.unit_x, what, &out->unit);
}

static bool resolve_profile(decoder *d, const uint8_t *data, size_t len, pp_profile *p)
{
    resolver r = {d, p};
    if (!resolve_strings(&r, data, len))
        return false;

    /* Scalars and value types. */
    pp_value_type period_type;
    raw_value_type raw_period_type = d->period_type;
    if (!string_at(&r, d->drop_frames_x, "Profile.drop_frames", &p->drop_frames) ||
        !string_at(&r, d->keep_frames_x, "Profile.keep_frames", &p->keep_frames) ||
        !string_at(&r, d->default_sample_type_x, "Profile.default_sample_type",
                   &p->default_sample_type) ||
        !string_at(&r, raw_period_type.type_x, "Profile.period_type", &period_type.type) ||
        !string_at(&r, raw_period_type.unit_x, "Profile.period_type", &period_type.unit))
        return false;
    p->period_type = period_type;
    p->time_nanos = d->time_nanos;
    p->duration_nanos = d->duration_nanos;
    p->period = d->period;

    p->ncomments = d->comments.len;
    p->comments = d->comments.data;
    for (size_t i = 0; i < p->ncomments; i++) {
        uint64_t index = VEC_AT(d->comments, uint64_t, i);
        if (!string_at(&r, (int64_t)index, "Profile.comment", &p->comments[i]))
            return false;
    }

    p->nsample_types = d->sample_types.len;
    p->sample_types = d->sample_types.data;
    for (size_t i = 0; i < p->nsample_types; i++)
        if (!resolve_value_type(&r, &VEC_AT(d->sample_types, raw_value_type, i),
                                "Profile.sample_type"))
            return false;

    /* Mappings and functions: strings only, then an id index each. */
    p->nmappings = d->mappings.len;
    p->mappings = d->mappings.data;
    for (size_t i = 0; i < p->nmappings; i++) {
        raw_mapping raw = VEC_AT(d->mappings, raw_mapping, i);
        pp_mapping *m = &p->mappings[i];
        *m = (pp_mapping){
            .id = raw.id,
            .memory_start = raw.memory_start,
            .memory_limit = raw.memory_limit,
            .file_offset = raw.file_offset,
            .has_functions = raw.has_functions,
            .has_filenames = raw.has_filenames,
            .has_line_numbers = raw.has_line_numbers,
            .has_inline_frames = raw.has_inline_frames,
        };
        if (!string_at(&r, raw.filename_x, "Mapping.filename", &m->filename) ||
            !string_at(&r, raw.build_id_x, "Mapping.build_id", &m->build_id))
            return false;
    }
    p->nfunctions = d->functions.len;
    p->functions = d->functions.data;
    for (size_t i = 0; i < p->nfunctions; i++) {
        raw_function raw = VEC_AT(d->functions, raw_function, i);
        pp_function *f = &p->functions[i];
        *f = (pp_function){.id = raw.id, .start_line = raw.start_line};
        if (!string_at(&r, raw.name_x, "Function.name", &f->name) ||
            !string_at(&r, raw.system_name_x, "Function.system_name", &f->system_name) ||
            !string_at(&r, raw.filename_x, "Function.filename", &f->filename))
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

    /* Locations and their lines: each location's lines follow the
     * previous location's. */
    p->nlocations = d->locations.len;
    p->locations = d->locations.data;
    pp_line *lines = d->lines.data;
    for (size_t i = 0; i < p->nlocations; i++) {
        raw_location raw = VEC_AT(d->locations, raw_location, i);
        pp_location *loc = &p->locations[i];
        *loc = (pp_location){
            .id = raw.id,
            .address = raw.address,
            .is_folded = raw.is_folded,
            .lines = lines + raw.line_start,
            .nlines = raw.line_count,
        };
        if (raw.mapping_id != 0) {
            loc->mapping = find_by_id(mapping_index, p->nmappings, raw.mapping_id);
            if (loc->mapping == NULL) {
                fail(d, "location %llu refers to mapping %llu, which the profile does not define",
                     (unsigned long long)raw.id, (unsigned long long)raw.mapping_id);
                goto out;
            }
        }
        for (size_t j = 0; j < raw.line_count; j++) {
            raw_line rl = VEC_AT(d->lines, raw_line, raw.line_start + j);
            pp_line *line = &loc->lines[j];
            *line = (pp_line){.line = rl.line, .column = rl.column};
            line->function = find_by_id(function_index, p->nfunctions, rl.function_id);
            if (line->function == NULL) {
                fail(d, "location %llu has a line in function %llu, which the profile does not "
                        "define", (unsigned long long)raw.id,
                     (unsigned long long)rl.function_id);
                goto out;
            }
        }
    }
    location_index = build_id_index(&r, p->nlocations, p->locations, sizeof(pp_location),
                                    offsetof(pp_location, id), "location");
    if (location_index == NULL)
        goto out;

    /* Samples: each one's arrays follow the previous one's, and it has
     * one value per sample type (checked by decode_sample). */
    p->nsamples = d->samples.len;
    p->samples = d->samples.data;
    pp_location **sample_locs = d->sample_locs.data;
    int64_t *values = d->sample_values.data; /* int64 and uint64 may alias */
    pp_label *labels = d->sample_labels.data;
    size_t loc_start = 0, label_start = 0;
    for (size_t i = 0; i < p->nsamples; i++) {
        pp_sample *s = &p->samples[i];
        s->values = values + i * p->nsample_types;
        s->locations = sample_locs + loc_start;
        for (size_t j = 0; j < s->nlocations; j++) {
            uint64_t id = VEC_AT(d->sample_locs, uint64_t, loc_start + j);
            s->locations[j] = find_by_id(location_index, p->nlocations, id);
            if (s->locations[j] == NULL) {
                fail(d, "sample #%zu refers to location %llu, which the profile does not define",
                     i + 1, (unsigned long long)id);
                goto out;
            }
        }
        loc_start += s->nlocations;
        s->labels = labels + label_start;
        for (size_t j = 0; j < s->nlabels; j++) {
            raw_label rl = VEC_AT(d->sample_labels, raw_label, label_start + j);
            pp_label *label = &s->labels[j];
            *label = (pp_label){.num = rl.num};
            if (!string_at(&r, rl.key_x, "Label.key", &label->key) ||
                !string_at(&r, rl.num_unit_x, "Label.num_unit", &label->num_unit))
                goto out;
            if (rl.str_x != 0 && !string_at(&r, rl.str_x, "Label.str", &label->str))
                goto out;
        }
        label_start += s->nlabels;
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
    /* The buffer doubles up to the limit and no further, so a bomb costs
     * the limit, never what it would inflate to; one byte past the limit
     * tells data of exactly the limit from longer data. */
    const size_t limit = read_limit, room = limit + 1;
    size_t cap = inlen < ((size_t)1 << 20) ? ((size_t)1 << 20) : inlen * 4;
    if (cap > room)
        cap = room;
    uint8_t *buf = malloc(cap);
    size_t used = 0;
    if (buf == NULL)
        goto oom;
    const uint8_t *next_in = in;
    size_t left_in = inlen;
    for (;;) {
        if (used == cap) {
            if (cap == room) {
                pp_limit_message(err, errlen, "the decompressed data", limit, true);
                goto fail;
            }
            size_t bigger = cap * 2 > room ? room : cap * 2;
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
    if (used > limit) {
        pp_limit_message(err, errlen, "the decompressed data", limit, true);
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

/*
 * The memory a profile decodes into, from the counts of the first pass:
 * every array at its exact size (resolved in place), the strings with a
 * NUL each, the three id indexes of the resolution, and up to one arena
 * chunk of slack.
 */
typedef struct decode_cost {
    size_t bytes;
    const char *densest; /* the records that take most of it */
    size_t densest_count;
} decode_cost;

static decode_cost decode_cost_of(const decoder *d)
{
    struct {
        const char *what;
        size_t count, each;
    } parts[] = {
        {"sample types", d->sample_types.len, sizeof(raw_value_type)},
        {"samples", d->samples.len, sizeof(pp_sample)},
        {"location references in samples", d->sample_locs.len, sizeof(uint64_t)},
        {"sample values", d->sample_values.len, sizeof(uint64_t)},
        {"labels", d->sample_labels.len, sizeof(raw_label)},
        {"mappings", d->mappings.len, sizeof(raw_mapping) + sizeof(id_entry)},
        {"locations", d->locations.len, sizeof(raw_location) + sizeof(id_entry)},
        {"lines", d->lines.len, sizeof(raw_line)},
        {"functions", d->functions.len, sizeof(raw_function) + sizeof(id_entry)},
        {"strings", d->strings.len, sizeof(raw_string)},
        {"comments", d->comments.len, sizeof(uint64_t)},
    };
    decode_cost c = {.bytes = d->string_bytes + ARENA_CHUNK_BYTES, .densest = "strings"};
    size_t densest_bytes = d->string_bytes;
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        size_t b = parts[i].count * parts[i].each;
        c.bytes += b;
        if (b > densest_bytes) {
            densest_bytes = b;
            c.densest = parts[i].what;
            c.densest_count = parts[i].count;
        }
    }
    if (strcmp(c.densest, "strings") == 0)
        c.densest_count = d->strings.len;
    return c;
}

size_t pp_memory_budget(size_t protobuf_bytes)
{
    return protobuf_bytes * PP_MEMORY_PER_BYTE + PP_MEMORY_FLOOR;
}

/* Gives every array its exact room in the arena, and rewinds the decoder
 * for the second pass. */
static bool allocate_records(decoder *d, pp_profile *p)
{
    struct {
        vec *v;
        size_t elem;
    } arrays[] = {
        {&d->sample_types, sizeof(raw_value_type)}, {&d->samples, sizeof(pp_sample)},
        {&d->sample_locs, sizeof(uint64_t)},
        {&d->sample_values, sizeof(uint64_t)},      {&d->sample_labels, sizeof(raw_label)},
        {&d->mappings, sizeof(raw_mapping)},        {&d->locations, sizeof(raw_location)},
        {&d->lines, sizeof(raw_line)},              {&d->functions, sizeof(raw_function)},
        {&d->strings, sizeof(raw_string)},          {&d->comments, sizeof(uint64_t)},
    };
    for (size_t i = 0; i < sizeof(arrays) / sizeof(arrays[0]); i++) {
        vec *v = arrays[i].v;
        v->data = arena_array(p->arena, v->len, arrays[i].elem);
        if (v->data == NULL)
            return fail_oom(d);
        v->cap = v->len;
        v->len = 0;
    }
    d->counting = false;
    d->seen_time_nanos = false;
    d->string_bytes = 0;
    return true;
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
    } else if (len > read_limit) {
        pp_limit_message(err, errlen, "the profile", len, false);
        return NULL;
    }

    char detail[512] = "";
    decoder d = {.base = bytes, .err = detail, .errlen = sizeof(detail), .counting = true};
    bool over_budget = false;
    pp_profile *p = calloc(1, sizeof(*p));
    if (p != NULL)
        p->arena = calloc(1, sizeof(struct pp_arena));
    pb_cursor all = {bytes, bytes + len};
    if (p == NULL || p->arena == NULL) {
        fail_oom(&d);
    } else if (decode_profile(&d, all)) {
        decode_cost cost = decode_cost_of(&d);
        size_t budget = pp_memory_budget(len);
        if (cost.bytes > budget) {
            over_budget = true;
            snprintf(detail, sizeof(detail),
                     "decoding this profile would take %zu MiB, %zu times its %zu KiB of "
                     "protobuf, which is packed with %zu %s; no profiler writes that, and mprof "
                     "decodes at most %d bytes per byte (plus %zu MiB). If the file is "
                     "genuine, go tool pprof reads it",
                     cost.bytes >> 20, cost.bytes / len, len >> 10, cost.densest_count,
                     cost.densest, PP_MEMORY_PER_BYTE, PP_MEMORY_FLOOR >> 20);
            d.failed = true;
        } else if (allocate_records(&d, p) && decode_profile(&d, all) &&
                   resolve_profile(&d, bytes, len, p)) {
            p->memory_budget = budget - cost.bytes > 0 ? budget - cost.bytes : 1;
        }
    }
    if (d.failed) {
        if (over_budget)
            snprintf(err, errlen, "%s", detail);
        else if (looks_like_text(bytes, len))
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

pp_profile *pp_profile_new(void)
{
    pp_profile *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->arena = calloc(1, sizeof(struct pp_arena));
    if (p->arena == NULL) {
        free(p);
        return NULL;
    }
    p->drop_frames = p->keep_frames = p->default_sample_type = "";
    p->period_type = (pp_value_type){"", ""};
    return p;
}

void *pp_profile_alloc(pp_profile *p, size_t n, size_t elem)
{
    return arena_array(p->arena, n, elem);
}

const char *pp_profile_copy_string(pp_profile *p, const char *s, size_t len)
{
    char *copy = arena_alloc(p->arena, len + 1);
    if (copy != NULL)
        memcpy(copy, s, len);
    return copy;
}

int pp_read_input(const char *path, pp_start_check *check, uint8_t **out, size_t *outlen,
                  char *err, size_t errlen)
{
    const size_t limit = read_limit;
    bool is_stdin = strcmp(path, "-") == 0;
    int fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open: %s", strerror(errno));
        return -1;
    }
    struct stat st;
    size_t cap = 1 << 16, full = 0;
    if (fstat(fd, &st) == 0) {
        if (S_ISDIR(st.st_mode)) {
            snprintf(err, errlen, "is a directory, not a file to read");
            goto fail_fd;
        }
        if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > limit) {
            pp_limit_message(err, errlen, "the file", (size_t)st.st_size, false);
            goto fail_fd;
        }
        if (S_ISREG(st.st_mode) && st.st_size > 0)
            full = (size_t)st.st_size + 1; /* +1: EOF is seen without a regrow */
    }
    /* The whole file's room at once, unless its start is checked first:
     * then only once the check has passed. */
    if (full > 0 && (check == NULL || full < cap))
        cap = full;
    uint8_t *buf = malloc(cap);
    size_t used = 0;
    if (buf == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail_fd;
    }
    /* The first bytes are read alone and checked before the rest: a
     * gigabyte that is not what the caller reads is refused at once. */
    enum { START = 4096 };
    bool checked = check == NULL;
    for (;;) {
        if (used == cap) {
            if (cap > limit) {
                pp_limit_message(err, errlen, "the input", limit, true);
                goto fail_buf;
            }
            size_t bigger = full > cap * 2 ? full : cap * 2;
            if (bigger > limit + 1)
                bigger = limit + 1;
            uint8_t *grown = realloc(buf, bigger);
            if (grown == NULL) {
                snprintf(err, errlen, "out of memory");
                goto fail_buf;
            }
            buf = grown;
            cap = bigger;
        }
        size_t want = cap - used;
        if (!checked && want > START - used)
            want = START - used;
        ssize_t n = read(fd, buf + used, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "read error: %s", strerror(errno));
            goto fail_buf;
        }
        used += (size_t)n;
        if (!checked && (used == START || n == 0)) {
            checked = true;
            if (used > 0 && !check(buf, used, err, errlen))
                goto fail_buf;
        }
        if (n == 0)
            break;
    }
    if (used > limit) {
        pp_limit_message(err, errlen, "the input", limit, true);
        goto fail_buf;
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
    if (pp_read_input(path, NULL, &data, &len, err, errlen) != 0)
        return NULL;
    pp_profile *p = pp_profile_parse(data, len, err, errlen);
    free(data);
    return p;
}
