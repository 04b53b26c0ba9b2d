/*
 * Profile builder: raw samples in, gzipped pprof protobuf (profile.proto)
 * out, symbolized against this process.
 *
 * The protobuf encoder is our own (shared/bytebuf.h, which the CLI's dump
 * conversion uses too).  profile.proto is small and we write a dozen
 * fields of it; a protobuf library would be a dependency whose
 * allocations we do not control, for no gain.
 *
 * Memory: samples are interned as they come (string indexes, location ids),
 * so the builder holds each distinct pc and string once and merges identical
 * samples by summing their values.  Encoding streams: each top-level record
 * is appended to a buffer that is deflated and written out whenever it
 * passes OUT_CHUNK, so the encoded profile never exists whole in memory.
 *
 * Errors: an allocation failure while adding marks the builder failed;
 * mprof_pb_write then returns -1 with ENOMEM.  Nothing here aborts.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "shared/hash.h"
#include "shared/hash_index.h"
#include "core/os.h"
#include "encode/pprof.h"
#include "symbolize/symbolize.h"
#include "shared/bytebuf.h"
#include "shared/pprof_fields.h"

/* Deflate input is handed over in pieces of about this size. */
#define OUT_CHUNK (64 * 1024)
/* Inline depth kept per location; deeper chains keep the outermost frame. */
#define MAX_FRAMES 32

/* ---------------------------------------------------------------- model */

typedef struct plabel {
    uint32_t key, str, unit; /* string indexes; str == 0 for numeric labels */
    int64_t num;
} plabel;

typedef struct psample {
    uint32_t loc_off, nlocs;  /* location ids in pb->loc_ids */
    uint32_t lab_off, nlabels; /* labels in pb->labels */
} psample;

typedef struct plocation {
    uintptr_t pc;
    uint32_t mapping_id; /* 0: in no mapping */
    uint32_t line_off, nlines;
} plocation;

typedef struct pline {
    uint32_t function_id;
    int64_t line;
} pline;

typedef struct pfunction {
    uint32_t name, system_name, filename;
    int64_t start_line;
} pfunction;

typedef struct pmapping {
    uint64_t start, limit, offset;
    uint32_t filename, build_id;
    int symbolized;
} pmapping;

struct mprof_pb {
    int failed; /* errno of the first failure while adding, else 0 */
    int ntypes;

    /* Strings: index 0 is "" as profile.proto requires. */
    char **strs;
    uint32_t nstrs, strs_cap;
    mprof_index str_index;

    uint32_t *type_strs; /* 2 * ntypes: type, unit */
    uint32_t period_type, period_unit;
    int has_period_type;
    int64_t period, time_nanos, duration_nanos;
    uint32_t drop_frames;
    int64_t default_type; /* string index of the type name, 0 = unset */
    uint32_t *comments;
    uint32_t ncomments, comments_cap;

    psample *samples;
    uint32_t nsamples, samples_cap;
    int64_t *values; /* ntypes per sample */
    uint32_t values_cap; /* in samples */
    mprof_index sample_index;
    uint32_t *loc_ids;
    uint32_t nloc_ids, loc_ids_cap;
    plabel *labels;
    uint32_t nlabels, labels_cap;

    plocation *locs; /* location id = index + 1 */
    uint32_t nlocs, locs_cap, nsymbolized;
    mprof_index loc_index;
    pline *lines;
    uint32_t nlines, lines_cap;

    pfunction *funcs; /* function id = index + 1 */
    uint32_t nfuncs, funcs_cap;
    mprof_index func_index;

    pmapping *maps; /* mapping id = index + 1 */
    uint32_t nmaps, maps_cap;
};

static void pb_fail(mprof_pb *pb, int err)
{
    if (pb->failed == 0)
        pb->failed = err;
}

/* -------------------------------------------------------------- strings */

static int str_eq(const void *ctx, uint32_t idx, const void *key)
{
    const mprof_pb *pb = ctx;
    return strcmp(pb->strs[idx], key) == 0;
}

/* Index of s in the string table, adding it; 0 for NULL or "" and on
 * failure (the builder is then marked failed). */
static uint32_t intern(mprof_pb *pb, const char *s)
{
    if (s == NULL || s[0] == '\0')
        return 0;
    uint32_t h = (uint32_t)mprof_mix64(mprof_fnv1a_str(s));
    mprof_index_slot *sl = mprof_index_find(&pb->str_index, h, str_eq, pb, s);
    if (sl == NULL)
        goto oom;
    if (sl->idx1 != 0)
        return sl->idx1 - 1;
    if (MPROF_GROW(pb->strs, pb->strs_cap, pb->nstrs + 1) != 0)
        goto oom;
    char *copy = strdup(s);
    if (copy == NULL)
        goto oom;
    pb->strs[pb->nstrs] = copy;
    mprof_index_added(&pb->str_index, sl, pb->nstrs);
    return pb->nstrs++;
oom:
    pb_fail(pb, ENOMEM);
    return 0;
}

/* ------------------------------------------------------------ locations */

static int loc_eq(const void *ctx, uint32_t idx, const void *key)
{
    const mprof_pb *pb = ctx;
    return pb->locs[idx].pc == *(const uintptr_t *)key;
}

/* Location id (from 1) of pc, adding it; 0 on failure. */
static uint32_t location_id(mprof_pb *pb, uintptr_t pc)
{
    uint32_t h = (uint32_t)mprof_mix64(pc);
    mprof_index_slot *sl = mprof_index_find(&pb->loc_index, h, loc_eq, pb, &pc);
    if (sl == NULL)
        goto oom;
    if (sl->idx1 != 0)
        return sl->idx1;
    if (MPROF_GROW(pb->locs, pb->locs_cap, pb->nlocs + 1) != 0)
        goto oom;
    pb->locs[pb->nlocs] = (plocation){.pc = pc};
    mprof_index_added(&pb->loc_index, sl, pb->nlocs);
    return ++pb->nlocs;
oom:
    pb_fail(pb, ENOMEM);
    return 0;
}

/* -------------------------------------------------------------- samples */

typedef struct sample_key {
    const uint32_t *locs;
    uint32_t nlocs;
    const plabel *labels;
    uint32_t nlabels;
} sample_key;

static int sample_eq(const void *ctx, uint32_t idx, const void *key)
{
    const mprof_pb *pb = ctx;
    const sample_key *k = key;
    const psample *s = &pb->samples[idx];
    if (s->nlocs != k->nlocs || s->nlabels != k->nlabels)
        return 0;
    if (k->nlocs && memcmp(pb->loc_ids + s->loc_off, k->locs, k->nlocs * sizeof *k->locs) != 0)
        return 0;
    for (uint32_t i = 0; i < k->nlabels; i++) {
        const plabel *a = &pb->labels[s->lab_off + i], *b = &k->labels[i];
        if (a->key != b->key || a->str != b->str || a->unit != b->unit || a->num != b->num)
            return 0;
    }
    return 1;
}

static int label_cmp(const void *pa, const void *pb)
{
    const plabel *a = pa, *b = pb;
    if (a->key != b->key)
        return a->key < b->key ? -1 : 1;
    if (a->str != b->str)
        return a->str < b->str ? -1 : 1;
    if (a->num != b->num)
        return a->num < b->num ? -1 : 1;
    if (a->unit != b->unit)
        return a->unit < b->unit ? -1 : 1;
    return 0;
}

static uint64_t hash_sample(const sample_key *k)
{
    uint64_t h = MPROF_FNV1A_OFFSET;
    h = mprof_fnv1a(h, &k->nlocs, sizeof k->nlocs);
    if (k->nlocs)
        h = mprof_fnv1a(h, k->locs, k->nlocs * sizeof *k->locs);
    for (uint32_t i = 0; i < k->nlabels; i++) {
        const plabel *l = &k->labels[i];
        uint32_t w[3] = {l->key, l->str, l->unit};
        h = mprof_fnv1a(h, w, sizeof w);
        h = mprof_fnv1a(h, &l->num, sizeof l->num);
    }
    return mprof_mix64(h);
}

void mprof_pb_add_sample(mprof_pb *pb, const uintptr_t *pcs, int npcs, const int64_t *values,
                         const mprof_label *labels, int nlabels)
{
    if (pb == NULL || pb->failed)
        return;
    if (npcs < 0 || nlabels < 0 || (npcs > 0 && pcs == NULL) ||
        (pb->ntypes > 0 && values == NULL) || (nlabels > 0 && labels == NULL)) {
        pb_fail(pb, EINVAL);
        return;
    }
    /* Intern into scratch first: the stack and labels become a few small
     * integers, compared and hashed cheaply when merging. */
    uint32_t lstack[MPROF_MAX_STACK];
    plabel llabels[8];
    uint32_t *locs = lstack;
    plabel *labs = llabels;
    if ((size_t)npcs > sizeof lstack / sizeof lstack[0])
        locs = malloc((size_t)npcs * sizeof *locs);
    if ((size_t)nlabels > sizeof llabels / sizeof llabels[0])
        labs = malloc((size_t)nlabels * sizeof *labs);
    if (locs == NULL || labs == NULL) {
        pb_fail(pb, ENOMEM);
        goto out;
    }
    /* mprof's thread trampoline is left out of every stack (core.h). */
    int nlocs = 0;
    for (int i = 0; i < npcs; i++)
        if (!mprof_is_thread_start_frame(pcs[i]))
            locs[nlocs++] = location_id(pb, pcs[i]);
    npcs = nlocs;
    uint32_t nl = 0;
    for (int i = 0; i < nlabels; i++) {
        const mprof_label *l = &labels[i];
        if (l->key == NULL || l->key[0] == '\0')
            continue;
        plabel *p = &labs[nl++];
        p->key = intern(pb, l->key);
        if (l->str != NULL) {
            p->str = intern(pb, l->str);
            p->num = 0;
            p->unit = 0;
        } else {
            p->str = 0;
            p->num = l->num;
            p->unit = intern(pb, l->num_unit);
        }
    }
    if (pb->failed)
        goto out;
    /* Label order carries no meaning; sort so equal sets compare equal. */
    if (nl > 1)
        qsort(labs, nl, sizeof *labs, label_cmp);

    sample_key key = {locs, (uint32_t)npcs, labs, nl};
    uint32_t h = (uint32_t)hash_sample(&key);
    mprof_index_slot *sl = mprof_index_find(&pb->sample_index, h, sample_eq, pb, &key);
    if (sl == NULL) {
        pb_fail(pb, ENOMEM);
        goto out;
    }
    if (sl->idx1 != 0) {
        int64_t *v = pb->values + (size_t)(sl->idx1 - 1) * (size_t)pb->ntypes;
        for (int i = 0; i < pb->ntypes; i++)
            v[i] = (int64_t)((uint64_t)v[i] + (uint64_t)values[i]); /* wraps, never UB */
        goto out;
    }

    if (MPROF_GROW(pb->samples, pb->samples_cap, pb->nsamples + 1) != 0 ||
        MPROF_GROW(pb->loc_ids, pb->loc_ids_cap, (uint64_t)pb->nloc_ids + (uint64_t)npcs) != 0 ||
        MPROF_GROW(pb->labels, pb->labels_cap, (uint64_t)pb->nlabels + nl) != 0)
        goto oom;
    if (pb->ntypes > 0 && pb->nsamples + 1 > pb->values_cap) {
        /* values_cap counts samples: ntypes values each. */
        int64_t *v = mprof_grow_array(pb->values, &pb->values_cap, pb->nsamples + 1,
                          sizeof(int64_t) * (size_t)pb->ntypes);
        if (v == NULL)
            goto oom;
        pb->values = v;
    }

    psample *s = &pb->samples[pb->nsamples];
    s->loc_off = pb->nloc_ids;
    s->nlocs = (uint32_t)npcs;
    s->lab_off = pb->nlabels;
    s->nlabels = nl;
    if (npcs > 0)
        memcpy(pb->loc_ids + pb->nloc_ids, locs, (size_t)npcs * sizeof *locs);
    pb->nloc_ids += (uint32_t)npcs;
    if (nl > 0)
        memcpy(pb->labels + pb->nlabels, labs, nl * sizeof *labs);
    pb->nlabels += nl;
    if (pb->ntypes > 0)
        memcpy(pb->values + (size_t)pb->nsamples * (size_t)pb->ntypes, values,
               (size_t)pb->ntypes * sizeof *values);
    mprof_index_added(&pb->sample_index, sl, pb->nsamples);
    pb->nsamples++;
    goto out;
oom:
    pb_fail(pb, ENOMEM);
out:
    if (locs != lstack)
        free(locs);
    if (labs != llabels)
        free(labs);
}

/* ------------------------------------------------------ setters, lifetime */

mprof_pb *mprof_pb_new(const char *const *sample_types, int ntypes, const char *period_type,
                       const char *period_unit, int64_t period)
{
    if (ntypes < 0 || (ntypes > 0 && sample_types == NULL)) {
        errno = EINVAL;
        return NULL;
    }
    mprof_pb *pb = calloc(1, sizeof *pb);
    if (pb == NULL)
        return NULL;
    pb->ntypes = ntypes;
    pb->strs = malloc(64 * sizeof *pb->strs);
    pb->type_strs = calloc((size_t)ntypes * 2 + 1, sizeof *pb->type_strs);
    if (pb->strs == NULL || pb->type_strs == NULL || (pb->strs[0] = strdup("")) == NULL) {
        mprof_pb_free(pb);
        errno = ENOMEM;
        return NULL;
    }
    pb->strs_cap = 64;
    pb->nstrs = 1;
    for (int i = 0; i < 2 * ntypes; i++)
        pb->type_strs[i] = intern(pb, sample_types[i]);
    if (period_type != NULL || period_unit != NULL) {
        pb->has_period_type = 1;
        pb->period_type = intern(pb, period_type);
        pb->period_unit = intern(pb, period_unit);
    }
    pb->period = period;
    pb->time_nanos = mprof_wall_ns();
    if (pb->failed) {
        mprof_pb_free(pb);
        errno = ENOMEM;
        return NULL;
    }
    return pb;
}

void mprof_pb_set_time(mprof_pb *pb, int64_t time_nanos, int64_t duration_nanos)
{
    if (pb == NULL)
        return;
    pb->time_nanos = time_nanos;
    pb->duration_nanos = duration_nanos;
}

void mprof_pb_add_comment(mprof_pb *pb, const char *comment)
{
    if (pb == NULL || comment == NULL)
        return;
    uint32_t idx = intern(pb, comment);
    if (idx == 0)
        return;
    if (MPROF_GROW(pb->comments, pb->comments_cap, pb->ncomments + 1) != 0) {
        pb_fail(pb, ENOMEM);
        return;
    }
    pb->comments[pb->ncomments++] = idx;
}

void mprof_pb_set_drop_frames(mprof_pb *pb, const char *regex)
{
    if (pb != NULL)
        pb->drop_frames = intern(pb, regex);
}

void mprof_pb_set_default_sample_type(mprof_pb *pb, int type_index)
{
    if (pb == NULL || type_index < 0 || type_index >= pb->ntypes)
        return;
    pb->default_type = pb->type_strs[2 * type_index];
}

void mprof_pb_free(mprof_pb *pb)
{
    if (pb == NULL)
        return;
    for (uint32_t i = 0; i < pb->nstrs; i++)
        free(pb->strs[i]);
    free(pb->strs);
    mprof_index_free(&pb->str_index);
    free(pb->type_strs);
    free(pb->comments);
    free(pb->samples);
    free(pb->values);
    mprof_index_free(&pb->sample_index);
    free(pb->loc_ids);
    free(pb->labels);
    free(pb->locs);
    mprof_index_free(&pb->loc_index);
    free(pb->lines);
    free(pb->funcs);
    mprof_index_free(&pb->func_index);
    free(pb->maps);
    free(pb);
}

/* ---------------------------------------------------------- symbolizing */

static int func_eq(const void *ctx, uint32_t idx, const void *key)
{
    const mprof_pb *pb = ctx;
    const pfunction *a = &pb->funcs[idx], *b = key;
    return a->name == b->name && a->system_name == b->system_name &&
           a->filename == b->filename && a->start_line == b->start_line;
}

static uint32_t function_id(mprof_pb *pb, const mprof_frame *f)
{
    pfunction k = {
        .name = intern(pb, f->function != NULL ? f->function : f->system_name),
        .system_name = intern(pb, f->system_name != NULL ? f->system_name : f->function),
        .filename = intern(pb, f->file),
        .start_line = f->start_line,
    };
    if (pb->failed)
        return 0;
    uint32_t w[3] = {k.name, k.system_name, k.filename};
    uint64_t h = mprof_fnv1a(MPROF_FNV1A_OFFSET, w, sizeof w);
    h = mprof_fnv1a(h, &k.start_line, sizeof k.start_line);
    mprof_index_slot *sl = mprof_index_find(&pb->func_index, (uint32_t)mprof_mix64(h), func_eq, pb, &k);
    if (sl == NULL)
        goto oom;
    if (sl->idx1 != 0)
        return sl->idx1;
    if (MPROF_GROW(pb->funcs, pb->funcs_cap, pb->nfuncs + 1) != 0)
        goto oom;
    pb->funcs[pb->nfuncs] = k;
    mprof_index_added(&pb->func_index, sl, pb->nfuncs);
    return ++pb->nfuncs;
oom:
    pb_fail(pb, ENOMEM);
    return 0;
}

static void strip_deleted(char *path)
{
    static const char deleted[] = " (deleted)";
    size_t n = strlen(path), dl = sizeof deleted - 1;
    if (n >= dl && strcmp(path + n - dl, deleted) == 0)
        path[n - dl] = '\0';
}

/* Mapping id (from 1) for the symbolizer's mapping mi, adding it. */
static uint32_t mapping_id(mprof_pb *pb, mprof_symbolizer *sym, int mi, uint32_t *sym2pb)
{
    if (sym2pb[mi] != 0)
        return sym2pb[mi];
    const mprof_mapping *m = mprof_sym_mapping(sym, mi);
    uint32_t file = intern(pb, m->path), bid = intern(pb, m->build_id);
    /* An earlier write may have added it already (same process, same
     * mapping): keep its id stable. */
    for (uint32_t i = 0; i < pb->nmaps; i++) {
        pmapping *p = &pb->maps[i];
        if (p->start == m->start && p->limit == m->limit && p->offset == m->file_offset &&
            p->filename == file)
            return sym2pb[mi] = i + 1;
    }
    if (pb->failed || MPROF_GROW(pb->maps, pb->maps_cap, pb->nmaps + 1) != 0) {
        pb_fail(pb, ENOMEM);
        return 0;
    }
    pb->maps[pb->nmaps] = (pmapping){
        .start = m->start,
        .limit = m->limit,
        .offset = m->file_offset,
        .filename = file,
        .build_id = bid,
        .symbolized = mprof_sym_mapping_symbolized(sym, mi),
    };
    return sym2pb[mi] = ++pb->nmaps;
}

/* Symbolizes the locations added since the last write.  Without a
 * symbolizer (out of memory, no /proc) they stay bare addresses. */
static void symbolize_new(mprof_pb *pb)
{
    if (pb->nsymbolized == pb->nlocs)
        return;
    mprof_symbolizer *sym = mprof_sym_open();
    int nmaps = mprof_sym_mapping_count(sym);
    uint32_t *sym2pb = calloc((size_t)nmaps + 1, sizeof *sym2pb);
    if (sym == NULL || sym2pb == NULL) {
        /* Bare addresses, and nothing cached: a later write retries. */
        free(sym2pb);
        mprof_sym_close(sym);
        return;
    }

    /* pprof takes mapping[0] as the main binary (the "File:" of reports,
     * the binary it looks for): put the executable first, referenced or not. */
    if (pb->nmaps == 0) {
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n > 0) {
            exe[n] = '\0';
            strip_deleted(exe);
            for (int i = 0; i < nmaps; i++) {
                if (strcmp(mprof_sym_mapping(sym, i)->path, exe) == 0) {
                    mapping_id(pb, sym, i, sym2pb);
                    break;
                }
            }
        }
    }

    mprof_frame frames[MAX_FRAMES];
    for (uint32_t i = pb->nsymbolized; i < pb->nlocs && !pb->failed; i++) {
        plocation *loc = &pb->locs[i];
        int mi = mprof_sym_find_mapping(sym, loc->pc);
        loc->mapping_id = mi >= 0 ? mapping_id(pb, sym, mi, sym2pb) : 0;
        int nf = mprof_sym_lookup(sym, loc->pc, frames, MAX_FRAMES);
        loc->line_off = pb->nlines;
        loc->nlines = 0;
        for (int f = 0; f < nf; f++) {
            if (frames[f].function == NULL && frames[f].system_name == NULL)
                continue;
            uint32_t fid = function_id(pb, &frames[f]);
            if (fid == 0 || MPROF_GROW(pb->lines, pb->lines_cap, pb->nlines + 1) != 0) {
                pb_fail(pb, ENOMEM);
                break;
            }
            pb->lines[pb->nlines++] = (pline){fid, frames[f].line};
            loc->nlines++;
        }
        if (loc->nlines > 0 && loc->mapping_id != 0)
            pb->maps[loc->mapping_id - 1].symbolized = 1;
    }
    if (!pb->failed)
        pb->nsymbolized = pb->nlocs;
    free(sym2pb);
    mprof_sym_close(sym);
}

/* ------------------------------------------------------------- encoding */

/* The wire encoder is shared/bytebuf.h's; this writes profile.proto's
 * messages with it.  Its buffers grow with realloc: mprof_pb_write runs
 * with the profiler guard held, as every writer of a profile does. */
typedef struct out {
    mprof_bytebuf b;        /* encoded bytes not yet deflated */
    mprof_bytebuf msg, sub; /* scratch for nested messages */
    z_stream z;
    unsigned char *zbuf;
    int fd;
} out;

/* Deflates everything in o->b and writes the compressed bytes to o->fd. */
static int out_pump(out *o, int finish)
{
    if (o->b.oom) {
        errno = ENOMEM;
        return -1;
    }
    o->z.next_in = o->b.p;
    o->z.avail_in = (uInt)o->b.len;
    int r;
    do {
        o->z.next_out = o->zbuf;
        o->z.avail_out = OUT_CHUNK;
        r = deflate(&o->z, finish ? Z_FINISH : Z_NO_FLUSH);
        if (r == Z_STREAM_ERROR) {
            errno = EIO;
            return -1;
        }
        size_t have = OUT_CHUNK - o->z.avail_out;
        if (have > 0 && mprof_write_all(o->fd, o->zbuf, have) != 0)
            return -1;
    } while (o->z.avail_out == 0 || (finish && r != Z_STREAM_END));
    o->b.len = 0;
    return 0;
}

static int out_maybe_pump(out *o)
{
    return o->b.len >= OUT_CHUNK ? out_pump(o, 0) : 0;
}

static void put_value_type(out *o, int field, uint32_t type, uint32_t unit)
{
    mprof_wire_uint(&o->msg, VALUE_TYPE_TYPE, type);
    mprof_wire_uint(&o->msg, VALUE_TYPE_UNIT, unit);
    mprof_wire_message(&o->b, field, &o->msg);
}

static void encode_sample(out *o, const mprof_pb *pb, uint32_t i)
{
    const psample *s = &pb->samples[i];
    mprof_bytebuf *m = &o->msg, *sub = &o->sub;
    /* Repeated scalars packed, as proto3 writes them.  (Tested first: the
     * arrays are NULL while empty, and NULL + 0 is undefined.) */
    if (s->nlocs > 0)
        mprof_wire_packed_u32(m, SAMPLE_LOCATION_ID, pb->loc_ids + s->loc_off, s->nlocs);
    if (pb->ntypes > 0)
        mprof_wire_packed_u64(m, SAMPLE_VALUE,
                              (const uint64_t *)(pb->values + (size_t)i * (size_t)pb->ntypes),
                              (size_t)pb->ntypes);
    for (uint32_t k = 0; k < s->nlabels; k++) {
        const plabel *l = &pb->labels[s->lab_off + k];
        mprof_wire_uint(sub, LABEL_KEY, l->key);
        mprof_wire_uint(sub, LABEL_STR, l->str);
        mprof_wire_uint(sub, LABEL_NUM, (uint64_t)l->num);
        mprof_wire_uint(sub, LABEL_NUM_UNIT, l->unit);
        mprof_wire_message(m, SAMPLE_LABEL, sub);
    }
    mprof_wire_message(&o->b, PROFILE_SAMPLE, m);
}

static void encode_mapping(out *o, const pmapping *p, uint32_t id)
{
    mprof_bytebuf *m = &o->msg;
    mprof_wire_uint(m, MAPPING_ID, id);
    mprof_wire_uint(m, MAPPING_MEMORY_START, p->start);
    mprof_wire_uint(m, MAPPING_MEMORY_LIMIT, p->limit);
    mprof_wire_uint(m, MAPPING_FILE_OFFSET, p->offset);
    mprof_wire_uint(m, MAPPING_FILENAME, p->filename);
    mprof_wire_uint(m, MAPPING_BUILD_ID, p->build_id);
    /* All four together: the profile carries every name and line we could
     * find, so pprof must neither re-symbolize (nearest-symbol guesses on
     * stripped libraries) nor fail looking for the binary elsewhere. */
    mprof_wire_uint(m, MAPPING_HAS_FUNCTIONS, (uint64_t)p->symbolized);
    mprof_wire_uint(m, MAPPING_HAS_FILENAMES, (uint64_t)p->symbolized);
    mprof_wire_uint(m, MAPPING_HAS_LINE_NUMBERS, (uint64_t)p->symbolized);
    mprof_wire_uint(m, MAPPING_HAS_INLINE_FRAMES, (uint64_t)p->symbolized);
    mprof_wire_message(&o->b, PROFILE_MAPPING, m);
}

static void encode_location(out *o, const mprof_pb *pb, uint32_t i)
{
    const plocation *l = &pb->locs[i];
    mprof_bytebuf *m = &o->msg, *sub = &o->sub;
    mprof_wire_uint(m, LOCATION_ID, i + 1);
    mprof_wire_uint(m, LOCATION_MAPPING_ID, l->mapping_id);
    mprof_wire_uint(m, LOCATION_ADDRESS, l->pc);
    /* Innermost first: profile.proto's "the last Line is the caller into
     * which the earlier ones were inlined" is the symbolizer's order. */
    for (uint32_t k = 0; k < l->nlines; k++) {
        const pline *ln = &pb->lines[l->line_off + k];
        mprof_wire_uint(sub, LINE_FUNCTION_ID, ln->function_id);
        mprof_wire_uint(sub, LINE_LINE, (uint64_t)ln->line);
        mprof_wire_message(m, LOCATION_LINE, sub);
    }
    mprof_wire_message(&o->b, PROFILE_LOCATION, m);
}

static void encode_function(out *o, const pfunction *f, uint32_t id)
{
    mprof_bytebuf *m = &o->msg;
    mprof_wire_uint(m, FUNCTION_ID, id);
    mprof_wire_uint(m, FUNCTION_NAME, f->name);
    mprof_wire_uint(m, FUNCTION_SYSTEM_NAME, f->system_name);
    mprof_wire_uint(m, FUNCTION_FILENAME, f->filename);
    mprof_wire_uint(m, FUNCTION_START_LINE, (uint64_t)f->start_line);
    mprof_wire_message(&o->b, PROFILE_FUNCTION, m);
}

static int encode(out *o, const mprof_pb *pb)
{
    for (int i = 0; i < pb->ntypes; i++)
        put_value_type(o, PROFILE_SAMPLE_TYPE, pb->type_strs[2 * i], pb->type_strs[2 * i + 1]);
    for (uint32_t i = 0; i < pb->nsamples; i++) {
        encode_sample(o, pb, i);
        if (out_maybe_pump(o) != 0)
            return -1;
    }
    for (uint32_t i = 0; i < pb->nmaps; i++)
        encode_mapping(o, &pb->maps[i], i + 1);
    for (uint32_t i = 0; i < pb->nlocs; i++) {
        encode_location(o, pb, i);
        if (out_maybe_pump(o) != 0)
            return -1;
    }
    for (uint32_t i = 0; i < pb->nfuncs; i++) {
        encode_function(o, &pb->funcs[i], i + 1);
        if (out_maybe_pump(o) != 0)
            return -1;
    }
    for (uint32_t i = 0; i < pb->nstrs; i++) {
        mprof_wire_string(&o->b, PROFILE_STRING_TABLE, pb->strs[i]);
        if (out_maybe_pump(o) != 0)
            return -1;
    }
    mprof_wire_uint(&o->b, PROFILE_DROP_FRAMES, pb->drop_frames);
    mprof_wire_uint(&o->b, PROFILE_TIME_NANOS, (uint64_t)pb->time_nanos);
    mprof_wire_uint(&o->b, PROFILE_DURATION_NANOS, (uint64_t)pb->duration_nanos);
    if (pb->has_period_type)
        put_value_type(o, PROFILE_PERIOD_TYPE, pb->period_type, pb->period_unit);
    mprof_wire_uint(&o->b, PROFILE_PERIOD, (uint64_t)pb->period);
    mprof_wire_packed_u32(&o->b, PROFILE_COMMENT, pb->comments, pb->ncomments);
    mprof_wire_uint(&o->b, PROFILE_DEFAULT_SAMPLE_TYPE, (uint64_t)pb->default_type);
    return out_pump(o, 1);
}

int mprof_pb_write(mprof_pb *pb, int fd)
{
    if (pb == NULL || fd < 0) {
        errno = EINVAL;
        return -1;
    }
    symbolize_new(pb);
    if (pb->failed) {
        errno = pb->failed;
        return -1;
    }
    out o;
    memset(&o, 0, sizeof o);
    o.fd = fd;
    o.zbuf = malloc(OUT_CHUNK);
    if (o.zbuf == NULL) {
        errno = ENOMEM;
        return -1;
    }
    /* windowBits 15 + 16: a gzip wrapper, which is what pprof files are.
     * Level 1 as Go's runtime/pprof: profiles are written from a live
     * process, and speed matters more than the last few percent of size. */
    int zr = deflateInit2(&o.z, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    if (zr != Z_OK) {
        free(o.zbuf);
        errno = zr == Z_MEM_ERROR ? ENOMEM : EINVAL;
        return -1;
    }
    int rc = encode(&o, pb);
    int saved = errno;
    deflateEnd(&o.z);
    free(o.zbuf);
    mprof_bytebuf_free(&o.b);
    mprof_bytebuf_free(&o.msg);
    mprof_bytebuf_free(&o.sub);
    errno = saved;
    return rc;
}
