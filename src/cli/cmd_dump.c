/*
 * mprof dump FILE [--pprof OUT]: reads a heap dump written by
 * mprof_write_heap_dump (format: docs/heap-dump.md), prints it, and converts
 * it to a pprof heap profile.
 *
 * The reader is strict, because a dump may be truncated (the process died
 * while writing, a download was cut) or not a dump at all: every record is
 * length-prefixed and parsed within its length, references must point at
 * things defined earlier in the file, and the file must end with the EOF
 * record.  Records with tags it does not know, and bytes after the fields
 * it knows at the end of a record, are skipped: that is how the format
 * grows without a version bump.
 */
#include "shared/heap_values.h"
#include "shared/bytebuf.h"
#include "shared/hash.h"
#include "shared/hash_index.h"
#include "shared/heap_dump_format.h"
#include "shared/pprof_fields.h"
#include "cli/cmd_dump.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "cli/cli.h"
#include "cli/profile_reader.h"
#include "cli/profile_writer.h"


#define NOT_A_DUMP                                                                              \
    "not an mprof heap dump (it does not start with \"" MPROF_DUMP_MAGIC "\"); mprof dump "      \
    "reads what MPROF_HEAPDUMP, mprof_write_heap_dump() and /debug/pprof/heapdump write "      \
    "(mprof top reads profiles)"

static const char *tag_name(uint64_t tag)
{
    switch (tag) {
    case TAG_EOF: return "EOF";
    case TAG_HEADER: return "Header";
    case TAG_MEMSTATS: return "MemStats";
    case TAG_STRING: return "String";
    case TAG_MAPPING: return "Mapping";
    case TAG_MEMPROF: return "MemProf";
    case TAG_ALLOC_SAMPLE: return "AllocSample";
    default: return "unknown";
    }
}

/* ---------------------------------------------------------------- pool */

struct hd_pool {
    struct hd_pool *next;
    size_t used, cap;
    max_align_t data[];
};

#define POOL_BLOCK ((size_t)64 * 1024)

static void *pool_alloc(hd_dump *d, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    struct hd_pool *p = d->pool;
    if (p == NULL || p->cap - p->used < n) {
        size_t cap = n > POOL_BLOCK ? n : POOL_BLOCK;
        struct hd_pool *b = malloc(sizeof *b + cap);
        if (b == NULL)
            return NULL;
        b->used = 0;
        b->cap = cap;
        if (p != NULL && n > POOL_BLOCK) {
            /* A big one-off: keep the current block for small requests. */
            b->next = p->next;
            p->next = b;
        } else {
            b->next = p;
            d->pool = b;
        }
        p = b;
    }
    void *r = (char *)p->data + p->used;
    p->used += n;
    return r;
}

/* -------------------------------------------------------------- reading */

typedef struct rd {
    const uint8_t *p, *end;
} rd;

/* 0, or -1 at the end of the data, or -2 for a malformed (overlong)
 * varint. */
static int rd_uv(rd *r, uint64_t *v) { return mprof_varint_read(&r->p, r->end, v); }

static int rd_f64(rd *r, double *v)
{
    if (r->end - r->p < 8)
        return -1;
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u |= (uint64_t)r->p[i] << (8 * i);
    r->p += 8;
    memcpy(v, &u, sizeof *v);
    return 0;
}

typedef struct parser {
    hd_dump *d;
    size_t rec_index;
    uint64_t tag;
    size_t rec_offset;
    char *err;
    size_t errlen;
    uint32_t mappings_cap, buckets_cap, samples_cap, strings_cap;
} parser;

static int fail(parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(parser *ps, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(ps->err, ps->errlen, "corrupt heap dump: record %zu (%s) at byte %zu: %s",
             ps->rec_index, tag_name(ps->tag), ps->rec_offset, msg);
    return -1;
}

static int oom(parser *ps)
{
    snprintf(ps->err, ps->errlen, "out of memory reading the heap dump");
    return -1;
}

/* Reads one varint field, failing with its name. */
static int field(parser *ps, rd *r, const char *name, uint64_t *v)
{
    int rc = rd_uv(r, v);
    if (rc == -1)
        return fail(ps, "the record ends before its field '%s'", name);
    if (rc == -2)
        return fail(ps, "field '%s' is not a valid varint", name);
    return 0;
}

static int field_f64(parser *ps, rd *r, const char *name, double *v)
{
    if (rd_f64(r, v) != 0)
        return fail(ps, "the record ends before its field '%s'", name);
    if (!isfinite(*v))
        return fail(ps, "field '%s' is not a finite number", name);
    return 0;
}

/* A length-prefixed string copied into the pool, NUL-terminated. */
static int field_str(parser *ps, rd *r, const char *name, const char **out)
{
    uint64_t n;
    if (field(ps, r, name, &n) != 0)
        return -1;
    if (n > (uint64_t)(r->end - r->p))
        return fail(ps, "string '%s' is %llu bytes long but only %zu remain", name,
                    (unsigned long long)n, (size_t)(r->end - r->p));
    if (memchr(r->p, '\0', (size_t)n) != NULL)
        return fail(ps, "string '%s' contains a NUL byte", name);
    char *s = pool_alloc(ps->d, (size_t)n + 1);
    if (s == NULL)
        return oom(ps);
    memcpy(s, r->p, (size_t)n);
    s[n] = '\0';
    r->p += n;
    *out = s;
    return 0;
}

static int field_sid(parser *ps, rd *r, const char *name, uint32_t *sid)
{
    uint64_t v;
    if (field(ps, r, name, &v) != 0)
        return -1;
    if (v >= ps->d->nstrings)
        return fail(ps, "field '%s' refers to string %llu, but only %zu are defined before it",
                    name, (unsigned long long)v, ps->d->nstrings - 1);
    *sid = (uint32_t)v;
    return 0;
}

static int parse_header(parser *ps, rd *r)
{
    hd_dump *d = ps->d;
    if (field(ps, r, "pid", &d->pid) || field(ps, r, "time", &d->time_nanos) ||
        field(ps, r, "rate", &d->rate) || field(ps, r, "pointer size", &d->pointer_size) ||
        field_str(ps, r, "mprof version", &d->mprof_version) ||
        field_str(ps, r, "executable", &d->executable))
        return -1;
    return 0;
}

static int parse_memstats(parser *ps, rd *r)
{
    hd_memstats *m = &ps->d->stats;
    struct {
        const char *name;
        uint64_t *v;
    } f[] = {
        {"present", &m->present},
        {"malloc arena", &m->malloc_arena},
        {"malloc mmap bytes", &m->malloc_mmap},
        {"malloc mmap blocks", &m->malloc_mmap_count},
        {"malloc in use", &m->malloc_inuse},
        {"malloc free", &m->malloc_free},
        {"malloc keepcost", &m->malloc_keepcost},
        {"VmSize", &m->vm_size},
        {"VmRSS", &m->vm_rss},
        {"VmHWM", &m->vm_hwm},
        {"VmData", &m->vm_data},
        {"profiler bytes", &m->profiler_bytes},
        {"buckets", &m->buckets},
        {"live samples", &m->live_samples},
        {"samples taken", &m->samples_taken},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (field(ps, r, f[i].name, f[i].v) != 0)
            return -1;
    if (ps->d->has_memstats)
        return fail(ps, "a second MemStats record");
    ps->d->has_memstats = 1;
    return 0;
}

static int parse_string(parser *ps, rd *r)
{
    hd_dump *d = ps->d;
    uint64_t id;
    const char *s;
    if (field(ps, r, "id", &id) != 0)
        return -1;
    if (id != d->nstrings)
        return fail(ps, "string id %llu out of sequence (expected %zu)", (unsigned long long)id,
                    d->nstrings);
    if (d->nstrings >= UINT32_MAX)
        return fail(ps, "too many strings");
    if (field_str(ps, r, "bytes", &s) != 0)
        return -1;
    if (MPROF_GROW(d->strings, ps->strings_cap, (uint64_t)d->nstrings + 1) != 0)
        return oom(ps);
    d->strings[d->nstrings++] = s;
    return 0;
}

static int parse_mapping(parser *ps, rd *r)
{
    hd_dump *d = ps->d;
    hd_mapping m;
    uint32_t path, build_id;
    if (field(ps, r, "id", &m.id) || field(ps, r, "start", &m.start) ||
        field(ps, r, "limit", &m.limit) || field(ps, r, "file offset", &m.file_offset) ||
        field_sid(ps, r, "path", &path) || field_sid(ps, r, "build id", &build_id) ||
        field(ps, r, "flags", &m.flags))
        return -1;
    if (m.id != d->nmappings + 1)
        return fail(ps, "mapping id %llu out of sequence (expected %zu)",
                    (unsigned long long)m.id, d->nmappings + 1);
    if (m.limit < m.start)
        return fail(ps, "mapping ends (0x%llx) before it starts (0x%llx)",
                    (unsigned long long)m.limit, (unsigned long long)m.start);
    m.path = d->strings[path];
    m.build_id = d->strings[build_id];
    if (MPROF_GROW(d->mappings, ps->mappings_cap, (uint64_t)d->nmappings + 1) != 0)
        return oom(ps);
    d->mappings[d->nmappings++] = m;
    return 0;
}

/* Smallest encodings, to bound counts by the bytes left before allocating:
 * a frame is at least pc, mapping and nlines (3 bytes), a line five
 * varints. */
#define MIN_FRAME_BYTES 3
#define MIN_LINE_BYTES 5

static int parse_memprof(parser *ps, rd *r)
{
    hd_dump *d = ps->d;
    hd_bucket b;
    memset(&b, 0, sizeof b);
    uint64_t nframes;
    if (field(ps, r, "id", &b.id) || field(ps, r, "size class", &b.size_class) ||
        field(ps, r, "alloc objects", &b.alloc_objects) ||
        field(ps, r, "free objects", &b.free_objects) ||
        field(ps, r, "alloc bytes", &b.alloc_bytes) ||
        field(ps, r, "free bytes", &b.free_bytes) ||
        field_f64(ps, r, "estimated alloc objects", &b.est_alloc_objects) ||
        field_f64(ps, r, "estimated free objects", &b.est_free_objects) ||
        field_f64(ps, r, "estimated alloc bytes", &b.est_alloc_bytes) ||
        field_f64(ps, r, "estimated free bytes", &b.est_free_bytes) ||
        field(ps, r, "frame count", &nframes))
        return -1;
    if (b.id != d->nbuckets + 1)
        return fail(ps, "bucket id %llu out of sequence (expected %zu)", (unsigned long long)b.id,
                    d->nbuckets + 1);
    if (nframes > (uint64_t)(r->end - r->p) / MIN_FRAME_BYTES)
        return fail(ps, "%llu frames cannot fit in the %zu bytes left", (unsigned long long)nframes,
                    (size_t)(r->end - r->p));
    b.nframes = (size_t)nframes;
    if (nframes > 0 && (b.frames = pool_alloc(d, b.nframes * sizeof *b.frames)) == NULL)
        return oom(ps);
    for (size_t i = 0; i < b.nframes; i++) {
        hd_frame *f = &b.frames[i];
        uint64_t nlines;
        if (field(ps, r, "pc", &f->pc) || field(ps, r, "mapping", &f->mapping_id) ||
            field(ps, r, "line count", &nlines))
            return -1;
        if (f->mapping_id > d->nmappings)
            return fail(ps, "frame %zu refers to mapping %llu, but only %zu are defined before it",
                        i, (unsigned long long)f->mapping_id, d->nmappings);
        if (nlines > (uint64_t)(r->end - r->p) / MIN_LINE_BYTES)
            return fail(ps, "%llu lines cannot fit in the %zu bytes left",
                        (unsigned long long)nlines, (size_t)(r->end - r->p));
        f->nlines = (size_t)nlines;
        f->lines = NULL;
        if (nlines > 0 && (f->lines = pool_alloc(d, f->nlines * sizeof *f->lines)) == NULL)
            return oom(ps);
        for (size_t k = 0; k < f->nlines; k++) {
            hd_line *l = &f->lines[k];
            if (field_sid(ps, r, "function", &l->function_sid) ||
                field_sid(ps, r, "system name", &l->system_name_sid) ||
                field_sid(ps, r, "file", &l->file_sid) || field(ps, r, "line", &l->line) ||
                field(ps, r, "start line", &l->start_line))
                return -1;
            l->function = d->strings[l->function_sid];
            l->system_name = d->strings[l->system_name_sid];
            l->file = d->strings[l->file_sid];
        }
    }
    if (MPROF_GROW(d->buckets, ps->buckets_cap, (uint64_t)d->nbuckets + 1) != 0)
        return oom(ps);
    d->buckets[d->nbuckets++] = b;
    return 0;
}

static int parse_sample(parser *ps, rd *r)
{
    hd_dump *d = ps->d;
    hd_sample s;
    if (field(ps, r, "address", &s.address) || field(ps, r, "size", &s.size) ||
        field(ps, r, "bucket", &s.bucket_id) || field_f64(ps, r, "weight", &s.weight))
        return -1;
    if (s.bucket_id == 0 || s.bucket_id > d->nbuckets)
        return fail(ps, "object 0x%llx refers to bucket %llu, but only %zu are defined before it",
                    (unsigned long long)s.address, (unsigned long long)s.bucket_id, d->nbuckets);
    if (s.weight < 0)
        return fail(ps, "negative weight");
    if (MPROF_GROW(d->samples, ps->samples_cap, (uint64_t)d->nsamples + 1) != 0)
        return oom(ps);
    d->samples[d->nsamples++] = s;
    return 0;
}

static int parse_records(parser *ps, const uint8_t *data, size_t len)
{
    hd_dump *d = ps->d;
    if (len < MPROF_DUMP_MAGIC_LEN || memcmp(data, MPROF_DUMP_MAGIC, MPROF_DUMP_MAGIC_LEN) != 0) {
        snprintf(ps->err, ps->errlen, NOT_A_DUMP);
        return -1;
    }
    rd r = {data + MPROF_DUMP_MAGIC_LEN, data + len};
    if (rd_uv(&r, &d->version) != 0) {
        snprintf(ps->err, ps->errlen, "corrupt heap dump: no format version after the magic");
        return -1;
    }
    if (d->version < HD_VERSION_MIN || d->version > HD_VERSION_MAX) {
        snprintf(ps->err, ps->errlen,
                 "heap dump format version %llu is not one this mprof reads (%d to %d); "
                 "a newer mprof wrote it?",
                 (unsigned long long)d->version, HD_VERSION_MIN, HD_VERSION_MAX);
        return -1;
    }
    bool have_header = false;
    for (ps->rec_index = 1;; ps->rec_index++) {
        ps->rec_offset = (size_t)(r.p - data);
        ps->tag = UINT64_MAX;
        if (r.p == r.end) {
            snprintf(ps->err, ps->errlen,
                     "truncated heap dump: it ends after %zu records without the EOF record "
                     "(the writer was interrupted?)",
                     ps->rec_index - 1);
            return -1;
        }
        uint64_t tag, plen;
        int rc = rd_uv(&r, &tag);
        if (rc == 0) {
            ps->tag = tag;
            rc = rd_uv(&r, &plen);
        }
        if (rc == -1)
            return fail(ps, "the file ends inside the record's tag or length (truncated)");
        if (rc == -2)
            return fail(ps, "malformed tag or length");
        if (plen > (uint64_t)(r.end - r.p))
            return fail(ps, "the record claims %llu bytes but only %zu remain (truncated)",
                        (unsigned long long)plen, (size_t)(r.end - r.p));
        rd pr = {r.p, r.p + plen};
        r.p += plen;
        if (!have_header && tag != TAG_HEADER)
            return fail(ps, "the first record must be the Header");
        switch (tag) {
        case TAG_EOF:
            if (r.p != r.end) {
                snprintf(ps->err, ps->errlen,
                         "corrupt heap dump: %zu bytes after the EOF record at byte %zu",
                         (size_t)(r.end - r.p), ps->rec_offset);
                return -1;
            }
            return 0;
        case TAG_HEADER:
            if (have_header)
                return fail(ps, "a second Header record");
            have_header = true;
            rc = parse_header(ps, &pr);
            break;
        case TAG_MEMSTATS:
            rc = parse_memstats(ps, &pr);
            break;
        case TAG_STRING:
            rc = parse_string(ps, &pr);
            break;
        case TAG_MAPPING:
            rc = parse_mapping(ps, &pr);
            break;
        case TAG_MEMPROF:
            rc = parse_memprof(ps, &pr);
            break;
        case TAG_ALLOC_SAMPLE:
            rc = parse_sample(ps, &pr);
            break;
        default:
            /* Written by a newer mprof: skip it, as the format promises. */
            d->unknown_records++;
            rc = 0;
            break;
        }
        if (rc != 0)
            return -1;
    }
}

void hd_free(hd_dump *d)
{
    if (d == NULL)
        return;
    while (d->pool != NULL) {
        struct hd_pool *next = d->pool->next;
        free(d->pool);
        d->pool = next;
    }
    free(d->strings);
    free(d->mappings);
    free(d->buckets);
    free(d->samples);
    free(d);
}

static int check_totals(const hd_dump *d, char *err, size_t errlen);

hd_dump *hd_parse(const uint8_t *data, size_t len, char *err, size_t errlen)
{
    uint8_t *inflated = NULL;
    if (pp_is_gzip(data, len)) {
        size_t n;
        char why[256];
        if (pp_gunzip(data, len, &inflated, &n, why, sizeof why) != 0) {
            snprintf(err, errlen, "gzipped heap dump: %s", why);
            return NULL;
        }
        data = inflated;
        len = n;
    }
    hd_dump *d = calloc(1, sizeof *d);
    parser ps = {.d = d, .err = err, .errlen = errlen};
    if (d == NULL) {
        free(inflated);
        snprintf(err, errlen, "out of memory reading the heap dump");
        return NULL;
    }
    d->mprof_version = d->executable = "";
    /* String 0 is the empty string, never written. */
    if (MPROF_GROW(d->strings, ps.strings_cap, (uint64_t)0 + 1) != 0) {
        free(inflated);
        free(d);
        snprintf(err, errlen, "out of memory reading the heap dump");
        return NULL;
    }
    d->strings[0] = "";
    d->nstrings = 1;
    int rc = parse_records(&ps, data, len);
    free(inflated);
    if (rc == 0)
        rc = check_totals(d, err, errlen);
    if (rc != 0) {
        hd_free(d);
        return NULL;
    }
    return d;
}

/* The first bytes of the input, checked before the rest is read (a
 * gigabyte that is no dump is refused at once): the magic, plain or as
 * the first bytes the gzip data inflates to. */
static bool dump_start_ok(const uint8_t *start, size_t len, char *err, size_t errlen)
{
    uint8_t head[MPROF_DUMP_MAGIC_LEN];
    size_t got = len < sizeof head ? len : sizeof head;
    bool gzipped = pp_is_gzip(start, len);
    if (gzipped) {
        z_stream z;
        memset(&z, 0, sizeof z);
        if (inflateInit2(&z, 15 + 32) != Z_OK)
            return true; /* the full read will say what is wrong */
        z.next_in = (Bytef *)start;
        z.avail_in = (uInt)len;
        z.next_out = head;
        z.avail_out = sizeof head;
        int rc = inflate(&z, Z_NO_FLUSH);
        got = sizeof head - z.avail_out;
        inflateEnd(&z);
        if (rc != Z_OK && rc != Z_STREAM_END)
            return true; /* corrupt or cut short: hd_parse says so */
    } else {
        memcpy(head, start, got);
    }
    /* A short plain input is no dump; short gzip output is left to
     * hd_parse, which says what it is. */
    if (memcmp(head, MPROF_DUMP_MAGIC, got) != 0 || (!gzipped && got < sizeof head)) {
        snprintf(err, errlen, NOT_A_DUMP);
        return false;
    }
    return true;
}

hd_dump *hd_read_file(const char *path, char *err, size_t errlen)
{
    uint8_t *buf;
    size_t len;
    if (pp_read_input(path, dump_start_ok, &buf, &len, err, errlen) != 0)
        return NULL;
    if (len == 0) {
        free(buf);
        snprintf(err, errlen, "empty file: not a heap dump");
        return NULL;
    }
    hd_dump *d = hd_parse(buf, len, err, errlen);
    free(buf);
    return d;
}

/* ------------------------------------------------------------- printing */

static void human_bytes(char *buf, size_t len, uint64_t v)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double x = (double)v;
    int u = 0;
    while (x >= 1024 && u < 4) {
        x /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%llu B", (unsigned long long)v);
    else
        snprintf(buf, len, "%.1f %s", x, units[u]);
}

static void print_bytes_row(FILE *out, const char *name, uint64_t v)
{
    char h[32];
    human_bytes(h, sizeof h, v);
    fprintf(out, "  %-28s %12s  (%llu bytes)\n", name, h, (unsigned long long)v);
}

/* The innermost named function at a frame, for one-line summaries. */
static const char *frame_function(const hd_frame *f)
{
    for (size_t k = 0; k < f->nlines; k++)
        if (f->lines[k].function[0] != '\0')
            return f->lines[k].function;
    return NULL;
}

/* A bucket's four heap-profile values by the heap profile's own rule
 * (shared/heap_values.h): alloc_objects, alloc_space, inuse_objects,
 * inuse_space. */
static void bucket_values(const hd_bucket *b, int64_t values[4])
{
    mprof_heap_estimates e = {
        .alloc_objects = b->est_alloc_objects,
        .alloc_bytes = b->est_alloc_bytes,
        .free_objects = b->est_free_objects,
        .free_bytes = b->est_free_bytes,
        .all_freed = b->alloc_objects == b->free_objects,
    };
    mprof_heap_values(&e, NULL, values);
}

/* The freed estimates, rounded as the allocated ones are. */
static int64_t round_estimate(double x) { return x < 0.5 ? 0 : mprof_heap_round(x); }

/*
 * The four values of all buckets, and what they freed, added up must stay
 * within int64, as pprof's totals are: estimates beyond that (each value
 * saturates at INT64_MAX) come from a damaged or crafted file, since no
 * process allocates 2^63 bytes or objects.  0, or -1 with err set.
 */
static int check_totals(const hd_dump *d, char *err, size_t errlen)
{
    static const char *const names[6] = {"allocated objects", "allocated bytes",
                                         "objects in use",    "bytes in use",
                                         "freed objects",     "freed bytes"};
    double sum[6] = {0};
    for (size_t i = 0; i < d->nbuckets; i++) {
        const hd_bucket *b = &d->buckets[i];
        int64_t v[6];
        bucket_values(b, v);
        v[4] = round_estimate(b->est_free_objects);
        v[5] = round_estimate(b->est_free_bytes);
        for (int k = 0; k < 6; k++) {
            sum[k] += (double)v[k];
            if (sum[k] >= 9.2e18) {
                snprintf(err, errlen,
                         "corrupt heap dump: the estimated %s add up to more than 2^63 at "
                         "bucket %llu (which alone says %.4g), far beyond what any process "
                         "allocates; the file is damaged: write the dump again",
                         names[k], (unsigned long long)d->buckets[i].id, (double)v[k]);
                return -1;
            }
        }
    }
    return 0;
}


void hd_print(FILE *out, const hd_dump *d)
{
    fprintf(out, "mprof heap dump, format version %llu, written by mprof %s\n",
            (unsigned long long)d->version, d->mprof_version);
    fprintf(out, "  process    %llu%s%s\n", (unsigned long long)d->pid,
            d->executable[0] ? "  " : "", d->executable);
    time_t secs = (time_t)(d->time_nanos / 1000000000u);
    struct tm tm;
    char when[64] = "?";
    if (gmtime_r(&secs, &tm) != NULL)
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
    fprintf(out, "  time       %s\n", when);
    if (d->rate == 0)
        fprintf(out, "  sampling   off (rate 0)\n");
    else if (d->rate == 1)
        fprintf(out, "  sampling   every allocation (rate 1)\n");
    else
        fprintf(out, "  sampling   one sample per %llu bytes allocated, on average\n",
                (unsigned long long)d->rate);

    if (d->has_memstats) {
        const hd_memstats *m = &d->stats;
        fprintf(out, "\nMemory statistics\n");
        if (m->present & HD_STATS_MALLOC) {
            print_bytes_row(out, "malloc: in use", m->malloc_inuse);
            print_bytes_row(out, "malloc: free in its heap", m->malloc_free);
            print_bytes_row(out, "malloc: heap from the OS", m->malloc_arena);
            print_bytes_row(out, "malloc: mmapped blocks", m->malloc_mmap);
            fprintf(out, "  %-28s %12llu\n", "malloc: mmapped block count",
                    (unsigned long long)m->malloc_mmap_count);
            print_bytes_row(out, "malloc: releasable at top", m->malloc_keepcost);
        }
        if (m->present & HD_STATS_PROC) {
            print_bytes_row(out, "process: VmSize", m->vm_size);
            print_bytes_row(out, "process: VmRSS", m->vm_rss);
            print_bytes_row(out, "process: VmHWM (peak RSS)", m->vm_hwm);
            print_bytes_row(out, "process: VmData", m->vm_data);
        }
        print_bytes_row(out, "profiler: own memory", m->profiler_bytes);
        fprintf(out, "  %-28s %12llu\n", "profiler: buckets", (unsigned long long)m->buckets);
        fprintf(out, "  %-28s %12llu\n", "profiler: live samples",
                (unsigned long long)m->live_samples);
        fprintf(out, "  %-28s %12llu\n", "profiler: samples taken",
                (unsigned long long)m->samples_taken);
    }

    uint64_t inuse_objects = 0, inuse_bytes = 0;
    for (size_t i = 0; i < d->nbuckets; i++) {
        int64_t v[4];
        bucket_values(&d->buckets[i], v);
        inuse_objects += (uint64_t)v[2];
        inuse_bytes += (uint64_t)v[3];
    }
    fprintf(out,
            "\nBuckets: %zu (in use: an estimated %llu objects, %llu bytes; counts are "
            "sampled, estimates unsampled as in the heap profile)\n",
            d->nbuckets, (unsigned long long)inuse_objects, (unsigned long long)inuse_bytes);
    for (size_t i = 0; i < d->nbuckets; i++) {
        const hd_bucket *b = &d->buckets[i];
        int64_t v[4];
        bucket_values(b, v);
        fprintf(out, "\nbucket %llu: size class %llu\n", (unsigned long long)b->id,
                (unsigned long long)b->size_class);
        fprintf(out, "  in use     %10lld objects %14lld bytes  (sampled: %lld, %lld)\n",
                (long long)v[2], (long long)v[3], (long long)(b->alloc_objects - b->free_objects),
                (long long)(b->alloc_bytes - b->free_bytes));
        fprintf(out, "  allocated  %10lld objects %14lld bytes  (sampled: %llu, %llu)\n",
                (long long)v[0], (long long)v[1], (unsigned long long)b->alloc_objects,
                (unsigned long long)b->alloc_bytes);
        fprintf(out, "  freed      %10lld objects %14lld bytes  (sampled: %llu, %llu)\n",
                (long long)round_estimate(b->est_free_objects),
                (long long)round_estimate(b->est_free_bytes),
                (unsigned long long)b->free_objects, (unsigned long long)b->free_bytes);
        for (size_t k = 0; k < b->nframes; k++) {
            const hd_frame *f = &b->frames[k];
            /* Where a frame has no source position: the file and offset
             * of its mapping, which addr2line and objdump understand. */
            const hd_mapping *m = f->mapping_id ? &d->mappings[f->mapping_id - 1] : NULL;
            char where[4096 + 32] = "?";
            if (m != NULL)
                snprintf(where, sizeof where, "%s+0x%llx", m->path[0] ? m->path : "?",
                         (unsigned long long)(f->pc - m->start + m->file_offset));
            if (f->nlines == 0) {
                fprintf(out, "    #%-2zu 0x%016llx  %s\n", k, (unsigned long long)f->pc, where);
                continue;
            }
            for (size_t l = 0; l < f->nlines; l++) {
                const hd_line *ln = &f->lines[l];
                if (l == 0)
                    fprintf(out, "    #%-2zu 0x%016llx  ", k, (unsigned long long)f->pc);
                else
                    fprintf(out, "        %18s  ", "");
                fprintf(out, "%s%s  ", ln->function, l + 1 < f->nlines ? " (inlined)" : "");
                if (ln->file[0] == '\0')
                    fprintf(out, "%s\n", where);
                else if (ln->line > 0)
                    fprintf(out, "%s:%llu\n", ln->file, (unsigned long long)ln->line);
                else
                    fprintf(out, "%s\n", ln->file);
            }
        }
    }

    fprintf(out, "\nLive sampled objects: %zu\n", d->nsamples);
    if (d->nsamples > 0)
        fprintf(out, "  %-18s %12s %8s  %s\n", "address", "size", "bucket", "allocated in");
    for (size_t i = 0; i < d->nsamples; i++) {
        const hd_sample *s = &d->samples[i];
        const hd_bucket *b = &d->buckets[s->bucket_id - 1];
        const char *fn = NULL;
        for (size_t k = 0; k < b->nframes && fn == NULL; k++)
            fn = frame_function(&b->frames[k]);
        fprintf(out, "  0x%016llx %12llu %8llu  %s\n", (unsigned long long)s->address,
                (unsigned long long)s->size, (unsigned long long)s->bucket_id, fn ? fn : "?");
    }

    fprintf(out, "\nMappings: %zu\n", d->nmappings);
    for (size_t i = 0; i < d->nmappings; i++) {
        const hd_mapping *m = &d->mappings[i];
        fprintf(out, "  %-3llu 0x%012llx-0x%012llx  offset 0x%llx  %s%s%s%s\n",
                (unsigned long long)m->id, (unsigned long long)m->start,
                (unsigned long long)m->limit, (unsigned long long)m->file_offset,
                m->path[0] ? m->path : "(anonymous)", m->build_id[0] ? "  build id " : "",
                m->build_id, (m->flags & MPROF_DUMP_MAPPING_HAS_SYMBOLS) ? "" : "  (no symbols)");
    }
    if (d->unknown_records > 0)
        fprintf(out, "\n(%zu records of kinds this mprof does not know were skipped)\n",
                d->unknown_records);
}

/* ------------------------------------------------------ pprof conversion */



typedef struct conv {
    const hd_dump *d;
    mprof_bytebuf out, msg, sub;
    /* Strings: the dump's table first (string id = pprof index), then the
     * few the profile adds. */
    const char **extra;
    size_t nextra;
    uint32_t extra_cap;
    mprof_index locs;  /* pc -> location id - 1 */
    const hd_frame **loc_frames; /* location id - 1 -> frame that defined it */
    size_t nlocs;
    uint32_t loc_cap;
    mprof_index funcs; /* line key -> function id - 1 */
    const hd_line **func_lines;
    size_t nfuncs;
    uint32_t func_cap;
    bool *map_named;  /* mapping id - 1 -> some frame in it has names */
    bool oom;
} conv;

static uint64_t conv_string(conv *c, const char *s)
{
    if (s[0] == '\0')
        return 0;
    for (size_t i = 0; i < c->nextra; i++)
        if (strcmp(c->extra[i], s) == 0)
            return c->d->nstrings + i;
    if (MPROF_GROW(c->extra, c->extra_cap, (uint64_t)c->nextra + 1) != 0) {
        c->oom = true;
        return 0;
    }
    c->extra[c->nextra] = s;
    return c->d->nstrings + c->nextra++;
}

static int loc_eq(const void *ctx, uint32_t idx, const void *probe)
{
    return ((const conv *)ctx)->loc_frames[idx]->pc == ((const hd_frame *)probe)->pc;
}

static int func_eq(const void *ctx, uint32_t idx, const void *probe)
{
    const hd_line *a = ((const conv *)ctx)->func_lines[idx], *b = probe;
    return a->function_sid == b->function_sid && a->system_name_sid == b->system_name_sid &&
           a->file_sid == b->file_sid && a->start_line == b->start_line;
}

static uint32_t function_id(conv *c, const hd_line *l)
{
    uint64_t key = mprof_mix64(((uint64_t)l->function_sid << 32) ^ l->system_name_sid) ^
                   mprof_mix64(((uint64_t)l->file_sid << 32) ^ l->start_line);
    mprof_index_slot *slot = mprof_index_find(&c->funcs, (uint32_t)key, func_eq, c, l);
    if (slot != NULL && slot->idx1 != 0)
        return slot->idx1;
    if (slot == NULL || MPROF_GROW(c->func_lines, c->func_cap, (uint64_t)c->nfuncs + 1) != 0) {
        c->oom = true;
        return 0;
    }
    c->func_lines[c->nfuncs] = l;
    mprof_index_added(&c->funcs, slot, (uint32_t)c->nfuncs++);
    return (uint32_t)c->nfuncs;
}

static uint32_t location_id(conv *c, const hd_frame *f)
{
    mprof_index_slot *slot =
        mprof_index_find(&c->locs, (uint32_t)mprof_mix64(f->pc), loc_eq, c, f);
    if (slot != NULL && slot->idx1 != 0)
        return slot->idx1;
    if (slot == NULL || MPROF_GROW(c->loc_frames, c->loc_cap, (uint64_t)c->nlocs + 1) != 0) {
        c->oom = true;
        return 0;
    }
    c->loc_frames[c->nlocs] = f;
    mprof_index_added(&c->locs, slot, (uint32_t)c->nlocs++);
    if (f->nlines > 0 && f->mapping_id != 0)
        c->map_named[f->mapping_id - 1] = true;
    return (uint32_t)c->nlocs;
}

static void put_value_type(conv *c, int field, const char *type, const char *unit)
{
    mprof_wire_uint(&c->msg, VALUE_TYPE_TYPE, conv_string(c, type));
    mprof_wire_uint(&c->msg, VALUE_TYPE_UNIT, conv_string(c, unit));
    mprof_wire_message(&c->out, field, &c->msg);
}

static void put_sample(conv *c, const hd_bucket *b)
{
    mprof_bytebuf *m = &c->msg, *sub = &c->sub;
    /* Packed location ids, innermost first. */
    for (size_t k = 0; k < b->nframes; k++)
        mprof_bytebuf_varint(sub, location_id(c, &b->frames[k]));
    if (b->nframes > 0)
        mprof_wire_message(m, SAMPLE_LOCATION_ID, sub);
    /* The heap profile's values, by its one rule. */
    int64_t values[4];
    bucket_values(b, values);
    mprof_wire_packed_u64(m, SAMPLE_VALUE, (const uint64_t *)values, 4);
    /* "bytes": the site's mean block size, as in the heap profile. */
    uint64_t mean = b->alloc_objects > 0 ? b->alloc_bytes / b->alloc_objects : b->size_class;
    mprof_wire_uint(sub, LABEL_KEY, conv_string(c, "bytes"));
    mprof_wire_uint(sub, LABEL_NUM, mean);
    mprof_wire_uint(sub, LABEL_NUM_UNIT, conv_string(c, "bytes"));
    mprof_wire_message(m, SAMPLE_LABEL, sub);
    mprof_wire_message(&c->out, PROFILE_SAMPLE, m);
}

int hd_to_pprof(const hd_dump *d, uint8_t **out, size_t *outlen, char *err, size_t errlen)
{
    conv c;
    memset(&c, 0, sizeof c);
    c.d = d;
    int rc = -1;
    c.map_named = calloc(d->nmappings + 1, sizeof *c.map_named);
    if (c.map_named == NULL)
        goto oom;

    put_value_type(&c, PROFILE_SAMPLE_TYPE, "alloc_objects", "count");
    put_value_type(&c, PROFILE_SAMPLE_TYPE, "alloc_space", "bytes");
    put_value_type(&c, PROFILE_SAMPLE_TYPE, "inuse_objects", "count");
    put_value_type(&c, PROFILE_SAMPLE_TYPE, "inuse_space", "bytes");
    for (size_t i = 0; i < d->nbuckets; i++)
        put_sample(&c, &d->buckets[i]);
    if (c.oom)
        goto oom;

    for (size_t i = 0; i < d->nmappings; i++) {
        const hd_mapping *mp = &d->mappings[i];
        mprof_bytebuf *m = &c.msg;
        /* All four "has_" flags together, as the heap profile sets them:
         * the names and lines are in the profile, pprof must not look for
         * the binaries. */
        bool named = (mp->flags & MPROF_DUMP_MAPPING_HAS_SYMBOLS) || c.map_named[i];
        mprof_wire_uint(m, MAPPING_ID, mp->id);
        mprof_wire_uint(m, MAPPING_MEMORY_START, mp->start);
        mprof_wire_uint(m, MAPPING_MEMORY_LIMIT, mp->limit);
        mprof_wire_uint(m, MAPPING_FILE_OFFSET, mp->file_offset);
        mprof_wire_uint(m, MAPPING_FILENAME, conv_string(&c, mp->path));
        mprof_wire_uint(m, MAPPING_BUILD_ID, conv_string(&c, mp->build_id));
        mprof_wire_uint(m, MAPPING_HAS_FUNCTIONS, named);
        mprof_wire_uint(m, MAPPING_HAS_FILENAMES, named);
        mprof_wire_uint(m, MAPPING_HAS_LINE_NUMBERS, named);
        mprof_wire_uint(m, MAPPING_HAS_INLINE_FRAMES, named);
        mprof_wire_message(&c.out, PROFILE_MAPPING, m);
    }
    for (size_t i = 0; i < c.nlocs; i++) {
        const hd_frame *f = c.loc_frames[i];
        mprof_bytebuf *m = &c.msg, *sub = &c.sub;
        mprof_wire_uint(m, LOCATION_ID, i + 1);
        mprof_wire_uint(m, LOCATION_MAPPING_ID, f->mapping_id);
        mprof_wire_uint(m, LOCATION_ADDRESS, f->pc);
        for (size_t k = 0; k < f->nlines; k++) {
            mprof_wire_uint(sub, LINE_FUNCTION_ID, function_id(&c, &f->lines[k]));
            mprof_wire_uint(sub, LINE_LINE, f->lines[k].line);
            mprof_wire_message(m, LOCATION_LINE, sub);
        }
        mprof_wire_message(&c.out, PROFILE_LOCATION, m);
    }
    if (c.oom)
        goto oom;
    for (size_t i = 0; i < c.nfuncs; i++) {
        const hd_line *l = c.func_lines[i];
        mprof_bytebuf *m = &c.msg;
        /* A missing name falls back on the other one, as in the writer. */
        uint32_t name = l->function_sid ? l->function_sid : l->system_name_sid;
        uint32_t sys = l->system_name_sid ? l->system_name_sid : l->function_sid;
        mprof_wire_uint(m, FUNCTION_ID, i + 1);
        mprof_wire_uint(m, FUNCTION_NAME, name);
        mprof_wire_uint(m, FUNCTION_SYSTEM_NAME, sys);
        mprof_wire_uint(m, FUNCTION_FILENAME, l->file_sid);
        mprof_wire_uint(m, FUNCTION_START_LINE, l->start_line);
        mprof_wire_message(&c.out, PROFILE_FUNCTION, m);
    }

    uint64_t drop = conv_string(&c, MPROF_HEAP_DROP_FRAMES);
    char comment[256];
    snprintf(comment, sizeof comment,
             "converted by mprof dump from a heap dump of process %llu (mprof %s), sampling rate "
             "%llu bytes",
             (unsigned long long)d->pid, d->mprof_version, (unsigned long long)d->rate);
    uint64_t comment_id = conv_string(&c, comment);
    uint64_t space = conv_string(&c, "space"), bytes = conv_string(&c, "bytes");
    uint64_t inuse = conv_string(&c, "inuse_space");
    if (c.oom)
        goto oom;
    /* The string table: the dump's, then ours. */
    for (size_t i = 0; i < d->nstrings; i++)
        mprof_wire_string(&c.out, PROFILE_STRING_TABLE, d->strings[i]);
    for (size_t i = 0; i < c.nextra; i++)
        mprof_wire_string(&c.out, PROFILE_STRING_TABLE, c.extra[i]);
    mprof_wire_uint(&c.out, PROFILE_DROP_FRAMES, drop);
    mprof_wire_uint(&c.out, PROFILE_TIME_NANOS, d->time_nanos);
    mprof_wire_uint(&c.msg, VALUE_TYPE_TYPE, space);
    mprof_wire_uint(&c.msg, VALUE_TYPE_UNIT, bytes);
    mprof_wire_message(&c.out, PROFILE_PERIOD_TYPE, &c.msg);
    mprof_wire_uint(&c.out, PROFILE_PERIOD, d->rate);
    mprof_wire_uint(&c.out, PROFILE_COMMENT, comment_id);
    mprof_wire_uint(&c.out, PROFILE_DEFAULT_SAMPLE_TYPE, inuse);
    if (c.out.oom || c.msg.oom || c.sub.oom || c.oom)
        goto oom;
    if (pp_gzip(c.out.p, c.out.len, out, outlen) != 0)
        goto oom;
    rc = 0;
    goto done;
oom:
    snprintf(err, errlen, "out of memory converting the heap dump");
done:
    mprof_bytebuf_free(&c.out);
    mprof_bytebuf_free(&c.msg);
    mprof_bytebuf_free(&c.sub);
    free(c.extra);
    mprof_index_free(&c.locs);
    free(c.loc_frames);
    mprof_index_free(&c.funcs);
    free(c.func_lines);
    free(c.map_named);
    return rc;
}

/* ------------------------------------------------------------- command */

void cli_print_dump_usage(FILE *out)
{
    fprintf(out,
            "Usage: mprof dump [--pprof OUT] DUMP\n"
            "\n"
            "Prints a heap dump written by mprof_write_heap_dump(), MPROF_HEAPDUMP=FILE or\n"
            "/debug/pprof/heapdump: the process' memory statistics, every heap-profile\n"
            "bucket with its stack, and every live sampled object with its address.\n"
            "DUMP \"-\" reads standard input.\n"
            "\n"
            "Options:\n"
            "  --pprof OUT           instead, write the dump as a gzipped pprof heap profile\n"
            "                        (inuse_space, ...; names and lines included) to OUT\n"
            "                        (\"-\" = standard output)\n");
}

int cmd_dump(int argc, char **argv)
{
    const char *path = NULL, *pprof_out = NULL;
    bool options_done = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *value;
        int m;
        if (options_done || arg[0] != '-' || strcmp(arg, "-") == 0) {
            if (path != NULL)
                return cli_usage_error("dump", "one dump at a time: got '%s' and '%s'", path, arg);
            path = arg;
        } else if (strcmp(arg, "--") == 0) {
            options_done = true;
        } else if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            cli_print_dump_usage(stdout);
            return CLI_EXIT_OK;
        } else if ((m = cli_option_value(argc, argv, &i, "--pprof", &value)) != 0) {
            if (m < 0 || value[0] == '\0')
                return cli_usage_error("dump", "--pprof needs an output file, e.g. "
                                               "--pprof heap.pb.gz");
            pprof_out = value;
        } else {
            return cli_usage_error("dump", "unknown option '%s'", arg);
        }
    }
    if (path == NULL)
        return cli_usage_error("dump", "which dump? e.g. mprof dump heap.dump");

    char err[768];
    hd_dump *d = hd_read_file(path, err, sizeof err);
    if (d == NULL) {
        cli_error("%s: %s", path, err);
        return CLI_EXIT_FAILURE;
    }
    int status = CLI_EXIT_OK;
    if (pprof_out != NULL) {
        uint8_t *buf;
        size_t len;
        if (hd_to_pprof(d, &buf, &len, err, sizeof err) != 0) {
            cli_error("%s: %s", path, err);
            status = CLI_EXIT_FAILURE;
        } else {
            if (pp_write_output(pprof_out, buf, len, err, sizeof err) != 0) {
                cli_error("%s", err);
                status = CLI_EXIT_FAILURE;
            }
            free(buf);
        }
    } else {
        hd_print(stdout, d);
        if (fflush(stdout) != 0) {
            cli_error("cannot write to standard output: %s", strerror(errno));
            status = CLI_EXIT_FAILURE;
        }
    }
    hd_free(d);
    return status;
}
