/*
 * Profile builder test.
 *
 * Without arguments (CTest, sanitizer builds): builds heap-like and CPU-like
 * profiles from real call sites of this program and of stripped system
 * libraries, decodes the gzipped protobuf with a small reader of its own and
 * checks what profile.proto and pprof require; checks write errors; times a
 * profile of ~2000 distinct pcs.
 *
 * With --out DIR: writes DIR/heap.pb.gz, DIR/cpu.pb.gz and DIR/expect.txt
 * (names, file:line pairs and addresses the reader must show) for
 * encoder_pprof_check.sh, which runs the real `go tool pprof` on them.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "encoder_elf.h"
#include "core/core.h"
#include "unwind/unwind.h"
#include "encode/pprof.h"
#include "symbolize/symbolize.h"
#include "interpose/threads.h"
#include "http/http.h"
#include "profiles/heap_profile.h"
#include "runtime/lifecycle.h"

uintptr_t encoder_cxx_pc(int *line);

/* ------------------------------------------------- call sites, known lines */

static T_NOIPA uintptr_t enc_alpha(int second, int *line)
{
    if (second) {
        *line = __LINE__; uintptr_t pc = t_capture_caller(); T_BARRIER();
        return pc;
    }
    *line = __LINE__; uintptr_t pc = t_capture_caller(); T_BARRIER();
    return pc;
}

static T_NOIPA uintptr_t enc_beta(int *line)
{
    *line = __LINE__; uintptr_t pc = t_capture_caller(); T_BARRIER();
    return pc;
}

static T_NOIPA uintptr_t enc_gamma(int *line)
{
    *line = __LINE__; uintptr_t pc = t_capture_caller(); T_BARRIER();
    return pc;
}

static inline __attribute__((always_inline)) uintptr_t enc_inlined(int *line)
{
    *line = __LINE__; uintptr_t pc = t_capture_caller(); T_BARRIER();
    return pc;
}

static T_NOIPA uintptr_t enc_outer(int *inner_line, int *call_line)
{
    *call_line = __LINE__; uintptr_t pc = enc_inlined(inner_line); T_BARRIER();
    return pc;
}

typedef struct sites {
    uintptr_t alpha, alpha2, beta, gamma, inl, cxx, deflate, zgap, cgap, nomap;
    int alpha_line, alpha2_line, beta_line, gamma_line, inl_line, outer_line, cxx_line;
    char zgap_naive[256], cgap_naive[256];
} sites;

static void capture_sites(sites *s)
{
    memset(s, 0, sizeof *s);
    s->alpha = enc_alpha(0, &s->alpha_line);
    s->alpha2 = enc_alpha(1, &s->alpha2_line);
    s->beta = enc_beta(&s->beta_line);
    s->gamma = enc_gamma(&s->gamma_line);
    s->inl = enc_outer(&s->inl_line, &s->outer_line);
    s->cxx = encoder_cxx_pc(&s->cxx_line);
    s->deflate = (uintptr_t)dlsym(RTLD_DEFAULT, "deflate") + 16;
    t_object z;
    if (!t_object_of((void *)s->deflate, &z) || !t_uncovered_pc(&z, &s->zgap, s->zgap_naive,
                                                                 sizeof s->zgap_naive)) {
        fprintf(stderr, "cannot find uncovered code in libz\n");
        exit(1);
    }
    /* Uncovered code in libc, the only libc pc of the profile: its mapping
     * has no named location and must still be marked symbolized.  0 when
     * every byte of libc's .text belongs to some symbol. */
    t_object c;
    if (!t_object_of((void *)&getpid, &c) ||
        !t_uncovered_pc(&c, &s->cgap, s->cgap_naive, sizeof s->cgap_naive))
        s->cgap = 0;
    /* Page zero is never mapped: a pc in no mapping at all. */
    s->nomap = 0x1234;
}

static const char *const heap_types[] = {"alloc_objects", "count", "alloc_space", "bytes",
                                         "inuse_objects", "count", "inuse_space", "bytes"};
static const char *const cpu_types[] = {"samples", "count", "cpu", "nanoseconds"};
#define DROP "(malloc|calloc|operator new.*)"
#define CPU_TIME 1700000000123456789LL
#define CPU_DURATION 2500000000LL

static mprof_pb *heap_profile(const sites *s)
{
    mprof_pb *pb = mprof_pb_new(heap_types, 4, "space", "bytes", 524288);
    if (pb == NULL)
        return NULL;
    mprof_pb_set_drop_frames(pb, DROP);
    mprof_pb_set_default_sample_type(pb, 3);
    mprof_pb_add_comment(pb, "test heap profile");
    mprof_pb_add_comment(pb, "second comment");

    /* The caller's buffers are reused between calls: the builder copies. */
    uintptr_t pcs[8];
    int64_t v[4];
    mprof_label l = {.key = "bytes", .num = 64, .num_unit = "bytes"};

    /* First a stack in libz: the executable must still be mapping 1. */
    l.num = 65536;
    pcs[0] = s->deflate, pcs[1] = s->gamma;
    v[0] = 7, v[1] = 7 * 65536, v[2] = 0, v[3] = 0;
    mprof_pb_add_sample(pb, pcs, 2, v, &l, 1);

    l.num = 64;
    pcs[0] = s->alpha, pcs[1] = s->beta, pcs[2] = s->gamma;
    v[0] = 1, v[1] = 64, v[2] = 1, v[3] = 64;
    mprof_pb_add_sample(pb, pcs, 3, v, &l, 1);
    /* Same stack and label again: merged, values summed. */
    v[0] = 2, v[1] = 128, v[2] = 0, v[3] = 0;
    mprof_pb_add_sample(pb, pcs, 3, v, &l, 1);
    /* Same stack, other block size: a sample of its own. */
    l.num = 128;
    v[0] = 1, v[1] = 128, v[2] = 1, v[3] = 128;
    mprof_pb_add_sample(pb, pcs, 3, v, &l, 1);

    l.num = 4096;
    pcs[0] = s->inl, pcs[1] = s->alpha2, pcs[2] = s->gamma;
    v[0] = 10, v[1] = 40960, v[2] = 5, v[3] = 20480;
    mprof_pb_add_sample(pb, pcs, 3, v, &l, 1);

    l.num = 24;
    pcs[0] = s->cxx, pcs[1] = s->beta;
    v[0] = 3, v[1] = 72, v[2] = 3, v[3] = 72;
    mprof_pb_add_sample(pb, pcs, 2, v, &l, 1);

    l.num = 32;
    pcs[0] = s->zgap, pcs[1] = s->nomap, pcs[2] = s->beta;
    v[0] = 1, v[1] = 32, v[2] = 1, v[3] = 32;
    mprof_pb_add_sample(pb, pcs, 3, v, &l, 1);

    if (s->cgap) {
        l.num = 48;
        pcs[0] = s->cgap, pcs[1] = s->gamma;
        v[0] = 1, v[1] = 48, v[2] = 1, v[3] = 48;
        mprof_pb_add_sample(pb, pcs, 2, v, &l, 1);
    }
    memset(pcs, 0, sizeof pcs);
    memset(v, 0, sizeof v);
    return pb;
}

static mprof_pb *cpu_profile(const sites *s)
{
    mprof_pb *pb = mprof_pb_new(cpu_types, 2, "cpu", "nanoseconds", 10000000);
    if (pb == NULL)
        return NULL;
    mprof_pb_set_time(pb, CPU_TIME, CPU_DURATION);
    uintptr_t pcs[4] = {s->gamma, s->beta, s->alpha};
    int64_t v[2] = {1, 10000000};
    char name[16];
    strcpy(name, "main");
    mprof_label l = {.key = "thread", .str = name};
    for (int i = 0; i < 5; i++)
        mprof_pb_add_sample(pb, pcs, 3, v, &l, 1);
    strcpy(name, "worker-1");
    mprof_pb_add_sample(pb, pcs, 3, v, &l, 1);
    /* Two labels, given in either order: one sample. */
    mprof_label two[2] = {{.key = "thread", .str = "main"}, {.key = "phase", .str = "warmup"}};
    mprof_label owt[2] = {two[1], two[0]};
    pcs[0] = s->inl;
    mprof_pb_add_sample(pb, pcs, 2, v, two, 2);
    mprof_pb_add_sample(pb, pcs, 2, v, owt, 2);
    return pb;
}

/* ----------------------------------------------- a small profile reader */

typedef struct rd {
    const uint8_t *p, *end;
} rd;

static int rd_varint(rd *r, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end)
            return -1;
        uint8_t b = *r->p++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return 0;
    }
    return -1;
}

/* Next field: 1 with field number, wire type and either *v (varint) or *sub (bytes);
 * 0 at the end; -1 on malformed input. */
static int rd_field(rd *r, int *field, int *wire, uint64_t *v, rd *sub)
{
    if (r->p >= r->end)
        return 0;
    uint64_t key, len;
    if (rd_varint(r, &key) != 0)
        return -1;
    *field = (int)(key >> 3);
    *wire = (int)(key & 7);
    if (*wire == 0)
        return rd_varint(r, v) == 0 ? 1 : -1;
    if (*wire != 2 || rd_varint(r, &len) != 0 || len > (uint64_t)(r->end - r->p))
        return -1;
    sub->p = r->p;
    sub->end = r->p + len;
    r->p += len;
    return 1;
}

/* Repeated scalar, packed or not. */
static int rd_repeated(int wire, uint64_t v, rd *sub, uint64_t *out, int *n, int max)
{
    if (wire == 0) {
        if (*n < max)
            out[*n] = v;
        (*n)++;
        return 0;
    }
    while (sub->p < sub->end) {
        uint64_t x;
        if (rd_varint(sub, &x) != 0)
            return -1;
        if (*n < max)
            out[*n] = x;
        (*n)++;
    }
    return 0;
}

#define DMAX 64
typedef struct dlabel {
    uint64_t key, str, unit;
    int64_t num;
} dlabel;
typedef struct dsample {
    uint64_t loc[DMAX];
    int nloc;
    uint64_t val[8];
    int nval;
    dlabel lab[16];
    int nlab;
} dsample;
typedef struct dloc {
    uint64_t id, mapping, address, fid[16];
    int64_t line[16];
    int nlines;
} dloc;
typedef struct dfunc {
    uint64_t id, name, sys, file;
    int64_t start;
} dfunc;
typedef struct dmap {
    uint64_t id, start, limit, offset, file, bid, flags[4];
} dmap;

typedef struct dprof {
    char **strs;
    int nstrs;
    uint64_t types[8], units[8];
    int ntypes;
    dsample *samples;
    int nsamples;
    dloc *locs;
    int nlocs;
    dfunc *funcs;
    int nfuncs;
    dmap *maps;
    int nmaps;
    uint64_t drop, pt_type, pt_unit, default_type, comments[8];
    int ncomments, n_time;
    int64_t time, duration, period;
} dprof;

static void *grow_or_die(void *p, int n, size_t elem)
{
    if ((n & (n - 1)) == 0) { /* n is 0 or a power of two: double */
        p = realloc(p, (size_t)(n ? 2 * n : 1) * elem);
        if (p == NULL)
            abort();
    }
    return p;
}

static int decode_profile(const uint8_t *data, size_t len, dprof *d)
{
    memset(d, 0, sizeof *d);
    rd r = {data, data + len}, sub, s2;
    int field, wire, f2, w2, rc;
    uint64_t v, v2;
    while ((rc = rd_field(&r, &field, &wire, &v, &sub)) == 1) {
        switch (field) {
        case 1:
        case 11: {
            uint64_t t = 0, u = 0;
            while (rd_field(&sub, &f2, &w2, &v2, &s2) == 1) {
                if (f2 == 1)
                    t = v2;
                else if (f2 == 2)
                    u = v2;
            }
            if (field == 1 && d->ntypes < 8) {
                d->types[d->ntypes] = t;
                d->units[d->ntypes++] = u;
            } else if (field == 11) {
                d->pt_type = t;
                d->pt_unit = u;
            }
            break;
        }
        case 2: {
            d->samples = grow_or_die(d->samples, d->nsamples, sizeof *d->samples);
            dsample *s = &d->samples[d->nsamples++];
            memset(s, 0, sizeof *s);
            while (rd_field(&sub, &f2, &w2, &v2, &s2) == 1) {
                if (f2 == 1)
                    rd_repeated(w2, v2, &s2, s->loc, &s->nloc, DMAX);
                else if (f2 == 2)
                    rd_repeated(w2, v2, &s2, s->val, &s->nval, 8);
                else if (f2 == 3 && s->nlab < 16) {
                    dlabel *l = &s->lab[s->nlab++];
                    rd s3;
                    int f3, w3;
                    uint64_t v3;
                    while (rd_field(&s2, &f3, &w3, &v3, &s3) == 1) {
                        switch (f3) {
                        case 1: l->key = v3; break;
                        case 2: l->str = v3; break;
                        case 3: l->num = (int64_t)v3; break;
                        case 4: l->unit = v3; break;
                        }
                    }
                }
            }
            break;
        }
        case 3: {
            d->maps = grow_or_die(d->maps, d->nmaps, sizeof *d->maps);
            dmap *m = &d->maps[d->nmaps++];
            memset(m, 0, sizeof *m);
            while (rd_field(&sub, &f2, &w2, &v2, &s2) == 1) {
                uint64_t *fields[] = {NULL,        &m->id,      &m->start,   &m->limit,
                                      &m->offset,  &m->file,    &m->bid,     &m->flags[0],
                                      &m->flags[1], &m->flags[2], &m->flags[3]};
                if (f2 >= 1 && f2 <= 10)
                    *fields[f2] = v2;
            }
            break;
        }
        case 4: {
            d->locs = grow_or_die(d->locs, d->nlocs, sizeof *d->locs);
            dloc *l = &d->locs[d->nlocs++];
            memset(l, 0, sizeof *l);
            while (rd_field(&sub, &f2, &w2, &v2, &s2) == 1) {
                if (f2 == 1)
                    l->id = v2;
                else if (f2 == 2)
                    l->mapping = v2;
                else if (f2 == 3)
                    l->address = v2;
                else if (f2 == 4 && l->nlines < 16) {
                    rd s3;
                    int f3, w3;
                    uint64_t v3;
                    while (rd_field(&s2, &f3, &w3, &v3, &s3) == 1) {
                        if (f3 == 1)
                            l->fid[l->nlines] = v3;
                        else if (f3 == 2)
                            l->line[l->nlines] = (int64_t)v3;
                    }
                    l->nlines++;
                }
            }
            break;
        }
        case 5: {
            d->funcs = grow_or_die(d->funcs, d->nfuncs, sizeof *d->funcs);
            dfunc *f = &d->funcs[d->nfuncs++];
            memset(f, 0, sizeof *f);
            while (rd_field(&sub, &f2, &w2, &v2, &s2) == 1) {
                switch (f2) {
                case 1: f->id = v2; break;
                case 2: f->name = v2; break;
                case 3: f->sys = v2; break;
                case 4: f->file = v2; break;
                case 5: f->start = (int64_t)v2; break;
                }
            }
            break;
        }
        case 6:
            d->strs = grow_or_die(d->strs, d->nstrs, sizeof *d->strs);
            d->strs[d->nstrs++] = strndup((const char *)sub.p, (size_t)(sub.end - sub.p));
            break;
        case 7: d->drop = v; break;
        case 9: d->time = (int64_t)v; d->n_time++; break;
        case 10: d->duration = (int64_t)v; break;
        case 12: d->period = (int64_t)v; break;
        case 13: rd_repeated(wire, v, &sub, d->comments, &d->ncomments, 8); break;
        case 14: d->default_type = v; break;
        default: return -1; /* we write nothing else */
        }
    }
    return rc;
}

static void free_profile(dprof *d)
{
    for (int i = 0; i < d->nstrs; i++)
        free(d->strs[i]);
    free(d->strs);
    free(d->samples);
    free(d->locs);
    free(d->funcs);
    free(d->maps);
}

static const char *S(const dprof *d, uint64_t i)
{
    return i < (uint64_t)d->nstrs ? d->strs[i] : "<bad string index>";
}

static const dloc *loc_at(const dprof *d, uintptr_t pc)
{
    for (int i = 0; i < d->nlocs; i++)
        if (d->locs[i].address == pc)
            return &d->locs[i];
    return NULL;
}

static const dfunc *func_by_id(const dprof *d, uint64_t id)
{
    for (int i = 0; i < d->nfuncs; i++)
        if (d->funcs[i].id == id)
            return &d->funcs[i];
    return NULL;
}

static const dmap *map_by_id(const dprof *d, uint64_t id)
{
    for (int i = 0; i < d->nmaps; i++)
        if (d->maps[i].id == id)
            return &d->maps[i];
    return NULL;
}

static const char *base(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* Invariants every reader enforces (pprof's profile.CheckValid and more). */
static void check_valid(const dprof *d)
{
    CHECK(d->nstrs > 0 && d->strs[0][0] == '\0', "string_table[0] is \"\"");
    for (int i = 1; i < d->nstrs; i++)
        for (int j = i + 1; j < d->nstrs && j < i + 2000; j++)
            CHECK(strcmp(d->strs[i], d->strs[j]) != 0, "duplicate string %s", d->strs[i]);
    CHECK(d->n_time <= 1, "time_nanos once");
    for (int i = 0; i < d->nsamples; i++) {
        const dsample *s = &d->samples[i];
        CHECK(s->nval == d->ntypes, "sample %d has %d values for %d types", i, s->nval,
                d->ntypes);
        for (int k = 0; k < s->nloc && k < DMAX; k++) {
            int found = 0;
            for (int j = 0; j < d->nlocs; j++)
                found |= d->locs[j].id == s->loc[k];
            CHECK(found, "sample location %llu exists", (unsigned long long)s->loc[k]);
        }
        for (int k = 0; k < s->nlab; k++)
            CHECK(s->lab[k].key < (uint64_t)d->nstrs && s->lab[k].str < (uint64_t)d->nstrs &&
                        s->lab[k].unit < (uint64_t)d->nstrs,
                    "label strings");
    }
    for (int i = 0; i < d->nlocs; i++) {
        const dloc *l = &d->locs[i];
        CHECK(l->id != 0, "location id");
        for (int j = 0; j < i; j++)
            CHECK(d->locs[j].id != l->id && d->locs[j].address != l->address, "unique locations");
        CHECK(l->mapping == 0 || map_by_id(d, l->mapping), "location mapping exists");
        for (int k = 0; k < l->nlines; k++)
            CHECK(func_by_id(d, l->fid[k]) != NULL, "line function exists");
    }
    for (int i = 0; i < d->nfuncs; i++) {
        const dfunc *f = &d->funcs[i];
        CHECK(f->id != 0 && f->name < (uint64_t)d->nstrs && f->sys < (uint64_t)d->nstrs &&
                    f->file < (uint64_t)d->nstrs,
                "function %d", i);
        for (int j = 0; j < i; j++)
            CHECK(d->funcs[j].id != f->id, "unique function ids");
    }
    for (int i = 0; i < d->nmaps; i++) {
        const dmap *m = &d->maps[i];
        CHECK(m->id == (uint64_t)i + 1, "mapping ids 1..n in order");
        CHECK(m->start < m->limit && m->file < (uint64_t)d->nstrs && m->bid < (uint64_t)d->nstrs,
                "mapping %d", i);
    }
    for (int i = 0; i < d->ntypes; i++)
        CHECK(d->types[i] < (uint64_t)d->nstrs && d->units[i] < (uint64_t)d->nstrs, "types");
}

/* Writes pb to a memory file and decodes it; the raw gzip bytes are kept in
 * *gz when asked. */
static int write_and_decode(mprof_pb *pb, dprof *d, uint8_t **gz, size_t *gzlen)
{
    int fd = memfd_create("profile", MFD_CLOEXEC);
    if (fd < 0 || mprof_pb_write(pb, fd) != 0) {
        CHECK(0, "mprof_pb_write: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    struct stat st;
    fstat(fd, &st);
    size_t n = (size_t)st.st_size;
    uint8_t *in = malloc(n ? n : 1);
    if (pread(fd, in, n, 0) != (ssize_t)n)
        return -1;
    close(fd);
    CHECK(n > 18 && in[0] == 0x1f && in[1] == 0x8b, "gzip magic");
    /* Inflate; 15 + 32 also accepts the zlib wrapper, 15 + 16 only gzip. */
    z_stream z;
    memset(&z, 0, sizeof z);
    inflateInit2(&z, 15 + 16);
    size_t cap = 1 << 20, len = 0;
    uint8_t *out = malloc(cap);
    z.next_in = in;
    z.avail_in = (uInt)n;
    int zr;
    do {
        if (len == cap)
            out = realloc(out, cap *= 2);
        z.next_out = out + len;
        z.avail_out = (uInt)(cap - len);
        zr = inflate(&z, Z_NO_FLUSH);
        len = cap - z.avail_out;
    } while (zr == Z_OK);
    inflateEnd(&z);
    CHECK(zr == Z_STREAM_END && z.avail_in == 0, "one complete gzip member (%d)", zr);
    if (zr != Z_STREAM_END) {
        free(out);
        free(in);
        memset(d, 0, sizeof *d);
        return -1;
    }
    int rc = decode_profile(out, len, d);
    CHECK(rc == 0, "protobuf decodes");
    free(out);
    if (gz) {
        *gz = in;
        *gzlen = n;
    } else {
        free(in);
    }
    return rc;
}

static void check_frame(const dprof *d, const dloc *l, int k, const char *name, int line)
{
    if (l == NULL || k >= l->nlines) {
        CHECK(0, "%s: location has no line %d", name, k);
        return;
    }
    const dfunc *f = func_by_id(d, l->fid[k]);
    CHECK(f && strcmp(S(d, f->name), name) == 0, "name %s, expected %s", f ? S(d, f->name) : "-",
            name);
    CHECK(l->line[k] == line, "%s: line %lld, expected %d", name, (long long)l->line[k], line);
    if (line > 0 && f)
        CHECK(strcmp(base(S(d, f->file)), "test_encoder.c") == 0 ||
                    strcmp(base(S(d, f->file)), "encoder_cxx.cpp") == 0,
                "%s: file %s", name, S(d, f->file));
}

static void test_heap(const sites *st)
{
    mprof_pb *pb = heap_profile(st);
    CHECK(pb != NULL, "mprof_pb_new");
    dprof d;
    uint8_t *gz1, *gz2;
    size_t n1, n2;
    if (write_and_decode(pb, &d, &gz1, &n1) != 0)
        return;
    check_valid(&d);

    static const char *names[] = {"alloc_objects", "count", "alloc_space", "bytes",
                                  "inuse_objects", "count", "inuse_space", "bytes"};
    CHECK(d.ntypes == 4, "4 sample types");
    for (int i = 0; i < d.ntypes; i++)
        CHECK(strcmp(S(&d, d.types[i]), names[2 * i]) == 0 &&
                    strcmp(S(&d, d.units[i]), names[2 * i + 1]) == 0,
                "type %d", i);
    CHECK(strcmp(S(&d, d.pt_type), "space") == 0 && strcmp(S(&d, d.pt_unit), "bytes") == 0,
            "period type");
    CHECK(d.period == 524288, "period");
    CHECK(strcmp(S(&d, d.default_type), "inuse_space") == 0, "default_sample_type %s",
            S(&d, d.default_type));
    CHECK(strcmp(S(&d, d.drop), DROP) == 0, "drop_frames");
    CHECK(d.ncomments == 2 && strcmp(S(&d, d.comments[0]), "test heap profile") == 0 &&
                strcmp(S(&d, d.comments[1]), "second comment") == 0,
            "comments");
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t nowns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
    CHECK(d.time > nowns - 60 * 1000000000LL && d.time <= nowns, "time_nanos is now");
    CHECK(d.duration == 0, "no duration");

    /* 7 (8 with the libc one) added, 1 merged. */
    int want = st->cgap ? 7 : 6;
    CHECK(d.nsamples == want, "samples after merging: %d, expected %d", d.nsamples, want);
    const dsample *s0 = &d.samples[1];
    CHECK(s0->nval == 4 && s0->val[0] == 3 && s0->val[1] == 192 && s0->val[2] == 1 &&
                s0->val[3] == 64,
            "merged values %llu %llu %llu %llu", (unsigned long long)s0->val[0],
            (unsigned long long)s0->val[1], (unsigned long long)s0->val[2],
            (unsigned long long)s0->val[3]);
    CHECK(s0->nlab == 1 && strcmp(S(&d, s0->lab[0].key), "bytes") == 0 && s0->lab[0].num == 64 &&
                strcmp(S(&d, s0->lab[0].unit), "bytes") == 0 && s0->lab[0].str == 0,
            "numeric label bytes=64");
    CHECK(d.samples[2].lab[0].num == 128 && d.samples[2].val[1] == 128, "second size separate");
    CHECK(d.samples[0].lab[0].num == 65536 && d.samples[0].val[0] == 7, "samples in order added");
    /* Leaf first, addresses unmodified. */
    CHECK(s0->nloc == 3, "3 frames");
    const dloc *a = loc_at(&d, st->alpha), *b = loc_at(&d, st->beta);
    CHECK(a && b && s0->loc[0] == a->id && s0->loc[1] == b->id, "leaf first, as given");

    /* One location per distinct pc. */
    CHECK(d.nlocs == (st->cgap ? 10 : 9), "distinct pcs: %d", d.nlocs);

    /* Names and lines, inline chain innermost first. */
    check_frame(&d, a, 0, "enc_alpha", st->alpha_line);
    CHECK(a && a->nlines == 1, "alpha: one line");
    const dloc *a2 = loc_at(&d, st->alpha2);
    check_frame(&d, a2, 0, "enc_alpha", st->alpha2_line);
    CHECK(a && a2 && a->nlines && a2->nlines && a->fid[0] == a2->fid[0],
            "two call sites in one function share its Function");
    check_frame(&d, b, 0, "enc_beta", st->beta_line);
    check_frame(&d, loc_at(&d, st->gamma), 0, "enc_gamma", st->gamma_line);
    const dloc *inl = loc_at(&d, st->inl);
    CHECK(inl && inl->nlines == 2, "inline location has 2 lines");
    check_frame(&d, inl, 0, "enc_inlined", st->inl_line);
    check_frame(&d, inl, 1, "enc_outer", st->outer_line);
    const dloc *cxx = loc_at(&d, st->cxx);
    check_frame(&d, cxx, 0, "mprof_test::Widget::grow(int*)", st->cxx_line);
    if (cxx && cxx->nlines) {
        const dfunc *f = func_by_id(&d, cxx->fid[0]);
        CHECK(f && strncmp(S(&d, f->sys), "_ZN10mprof_test6Widget4grow", 27) == 0,
                "system_name mangled: %s", f ? S(&d, f->sys) : "-");
        CHECK(f && f->start > 0 && f->start <= st->cxx_line, "start_line %lld",
                f ? (long long)f->start : -1LL);
    }
    const dloc *defl = loc_at(&d, st->deflate), *zgap = loc_at(&d, st->zgap);
    check_frame(&d, defl, 0, "deflate", 0);
    CHECK(zgap && zgap->nlines == 0, "uncovered libz code has no lines (not \"%s\")",
            st->zgap_naive);
    const dloc *nomap = loc_at(&d, st->nomap);
    CHECK(nomap && nomap->mapping == 0 && nomap->nlines == 0, "pc in no mapping: mapping 0");

    /* Mappings: the executable first, then only those referenced. */
    char exe[PATH_MAX], bid[160];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[len > 0 ? len : 0] = '\0';
    t_build_id(exe, bid, sizeof bid);
    CHECK(d.nmaps == (st->cgap ? 3 : 2), "exe, libz (and libc) only: %d", d.nmaps);
    if (d.nmaps >= 1) {
        const dmap *m = &d.maps[0];
        CHECK(strcmp(S(&d, m->file), exe) == 0, "mapping[0] is the executable: %s",
                S(&d, m->file));
        CHECK(strcmp(S(&d, m->bid), bid) == 0, "exe build id %s", S(&d, m->bid));
        CHECK(m->start <= st->alpha && st->alpha < m->limit, "exe range");
        CHECK(m->flags[0] && m->flags[1] && m->flags[2] && m->flags[3], "exe: has_* set");
        CHECK(a && a->mapping == 1, "alpha in mapping 1");
    }
    if (d.nmaps >= 2) {
        const dmap *m = &d.maps[1];
        t_object z;
        t_object_of((void *)st->deflate, &z);
        t_build_id(z.path, bid, sizeof bid);
        char real[PATH_MAX];
        CHECK(realpath(z.path, real) && strcmp(S(&d, m->file), real) == 0, "libz mapping %s",
                S(&d, m->file));
        CHECK(strcmp(S(&d, m->bid), bid) == 0, "libz build id");
        CHECK(m->flags[0] && m->flags[1] && m->flags[2] && m->flags[3],
                "libz: has_* set, so pprof will not guess names for it");
        CHECK(defl && zgap && defl->mapping == 2 && zgap->mapping == 2, "libz locations");
    }
    if (st->cgap && d.nmaps >= 3) {
        const dloc *cgap = loc_at(&d, st->cgap);
        const dmap *m = &d.maps[2];
        CHECK(cgap && cgap->mapping == 3 && cgap->nlines == 0,
                "uncovered libc code: libc mapping, no lines (not \"%s\")", st->cgap_naive);
        CHECK(m->flags[0] && m->flags[1] && m->flags[2] && m->flags[3],
                "libc: has_* set though none of its locations is named");
    }
    uint64_t alpha_id = a ? a->id : 0;
    free_profile(&d);

    /* Writing again gives the same bytes (symbolized once). */
    dprof d2;
    if (write_and_decode(pb, &d2, &gz2, &n2) == 0) {
        CHECK(n1 == n2 && memcmp(gz1, gz2, n1) == 0, "second write identical");
        free(gz2);
    }
    free_profile(&d2);
    free(gz1);

    /* A sample added after a write: its new pc is symbolized at the next,
     * ids of what was written stay. */
    int line;
    uintptr_t pc = enc_alpha(1, &line); /* the same call site as alpha2: not new */
    uintptr_t nw[2] = {st->gamma + 0, (uintptr_t)dlsym(RTLD_DEFAULT, "deflateEnd") + 8};
    int64_t v[4] = {1, 1, 1, 1};
    mprof_pb_add_sample(pb, nw, 2, v, NULL, 0);
    mprof_pb_add_sample(pb, &pc, 1, v, NULL, 0);
    write_and_decode(pb, &d2, NULL, NULL);
    check_valid(&d2);
    const dloc *ne = loc_at(&d2, nw[1]);
    check_frame(&d2, ne, 0, "deflateEnd", 0);
    CHECK(ne && ne->mapping == 2 && d2.nmaps == (st->cgap ? 3 : 2), "libz mapping reused");
    const dloc *a_again = loc_at(&d2, st->alpha);
    CHECK(a_again && a_again->id == alpha_id && a_again->mapping == 1, "ids stable");
    free_profile(&d2);
    mprof_pb_free(pb);
}

static void test_cpu(const sites *st)
{
    mprof_pb *pb = cpu_profile(st);
    dprof d;
    if (write_and_decode(pb, &d, NULL, NULL) != 0)
        return;
    check_valid(&d);
    CHECK(d.ntypes == 2 && strcmp(S(&d, d.types[1]), "cpu") == 0 &&
                strcmp(S(&d, d.units[1]), "nanoseconds") == 0,
            "cpu types");
    CHECK(d.time == CPU_TIME && d.duration == CPU_DURATION, "time and duration as set");
    CHECK(d.period == 10000000 && strcmp(S(&d, d.pt_type), "cpu") == 0, "period");
    CHECK(d.default_type == 0 && d.drop == 0 && d.ncomments == 0, "unset fields absent");
    CHECK(d.nsamples == 3, "3 samples, got %d", d.nsamples);
    if (d.nsamples == 3) {
        CHECK(d.samples[0].val[0] == 5 && d.samples[0].val[1] == 50000000, "main merged x5");
        CHECK(d.samples[0].nlab == 1 && strcmp(S(&d, d.samples[0].lab[0].key), "thread") == 0 &&
                    strcmp(S(&d, d.samples[0].lab[0].str), "main") == 0,
                "thread=main");
        CHECK(strcmp(S(&d, d.samples[1].lab[0].str), "worker-1") == 0 &&
                    d.samples[1].val[0] == 1,
                "label value copied, not referenced");
        CHECK(d.samples[2].nlab == 2 && d.samples[2].val[0] == 2,
                "labels in either order merge: %d labels, %llu", d.samples[2].nlab,
                (unsigned long long)d.samples[2].val[0]);
    }
    free_profile(&d);
    mprof_pb_free(pb);
}

static void test_edges(const sites *st)
{
    /* Write errors come back as -1 with errno, and nothing leaks. */
    mprof_pb *pb = heap_profile(st);
    int fd = open("/dev/full", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        errno = 0;
        CHECK(mprof_pb_write(pb, fd) == -1 && errno == ENOSPC, "/dev/full: ENOSPC (%d)", errno);
        close(fd);
    }
    int p[2];
    CHECK(pipe(p) == 0, "pipe");
    close(p[0]);
    signal(SIGPIPE, SIG_IGN);
    errno = 0;
    CHECK(mprof_pb_write(pb, p[1]) == -1 && errno == EPIPE, "closed pipe: EPIPE (%d)", errno);
    close(p[1]);
    errno = 0;
    CHECK(mprof_pb_write(pb, 1000000) == -1 && errno == EBADF, "bad fd: EBADF (%d)", errno);
    CHECK(mprof_pb_write(NULL, 1) == -1 && errno == EINVAL, "NULL pb");
    mprof_pb_free(pb);

    /* Empty profile, no types, odd arguments: still a valid file. */
    pb = mprof_pb_new(NULL, 0, NULL, NULL, 0);
    CHECK(pb != NULL, "empty builder");
    mprof_pb_add_sample(pb, NULL, 0, NULL, NULL, 0);
    mprof_pb_add_sample(pb, NULL, 0, NULL, NULL, 0);
    mprof_pb_set_default_sample_type(pb, 5); /* out of range: ignored */
    mprof_pb_add_comment(pb, NULL);
    dprof d;
    if (pb && write_and_decode(pb, &d, NULL, NULL) == 0) {
        check_valid(&d);
        CHECK(d.nsamples == 1 && d.samples[0].nloc == 0 && d.nlocs == 0 && d.default_type == 0,
                "one empty-stack sample");
        free_profile(&d);
    }
    mprof_pb_free(pb);
    mprof_pb_free(NULL);
    mprof_pb_add_sample(NULL, NULL, 0, NULL, NULL, 0);

    /* Deep stacks (beyond the on-stack scratch) and many labels. */
    pb = mprof_pb_new(cpu_types, 2, "cpu", "nanoseconds", 1);
    uintptr_t deep[200];
    for (int i = 0; i < 200; i++)
        deep[i] = i % 2 ? st->alpha : st->beta;
    mprof_label many[12];
    char keys[12][8];
    for (int i = 0; i < 12; i++) {
        snprintf(keys[i], sizeof keys[i], "k%d", i);
        many[i] = (mprof_label){.key = keys[i], .num = i + 1};
    }
    int64_t v[2] = {-1, INT64_MIN}; /* negative values survive */
    mprof_pb_add_sample(pb, deep, 200, v, many, 12);
    if (write_and_decode(pb, &d, NULL, NULL) == 0) {
        check_valid(&d);
        CHECK(d.nsamples == 1 && d.samples[0].nloc == 200 && d.samples[0].nlab == 12,
                "deep stack");
        CHECK((int64_t)d.samples[0].val[0] == -1 && (int64_t)d.samples[0].val[1] == INT64_MIN,
                "negative int64 values");
        CHECK(d.nlocs == 2, "2 distinct pcs");
        free_profile(&d);
    }
    mprof_pb_free(pb);
}

/* ------------------------------------------------------------ threads */

/* Writers on several threads at once, each with its own builder and
 * symbolizer (the HTTP server and an exiting thread, say).  Run first, so
 * that the demangler's one-time lookup is raced too.  Under TSan. */
struct thread_arg {
    const sites *st;
    int ok; /* per thread: read by the main thread after the join */
};

static void *writer_thread(void *p)
{
    struct thread_arg *a = p;
    a->ok = 1;
    for (int i = 0; i < 3; i++) {
        mprof_symbolizer *s = mprof_sym_open();
        mprof_frame f[8];
        int n = mprof_sym_lookup(s, a->st->cxx, f, 8);
        if (n != 1 || strcmp(f[0].function, "mprof_test::Widget::grow(int*)") != 0)
            a->ok = 0;
        mprof_sym_close(s);

        mprof_pb *pb = i % 2 ? cpu_profile(a->st) : heap_profile(a->st);
        int fd = memfd_create("thread", MFD_CLOEXEC);
        struct stat sb;
        if (pb == NULL || fd < 0 || mprof_pb_write(pb, fd) != 0 || fstat(fd, &sb) != 0 ||
            sb.st_size < 100)
            a->ok = 0;
        if (fd >= 0)
            close(fd);
        mprof_pb_free(pb);
    }
    return NULL;
}

static void test_threads(const sites *st)
{
    enum { N = 4 };
    pthread_t t[N];
    struct thread_arg args[N];
    for (int i = 0; i < N; i++) {
        args[i] = (struct thread_arg){st, 0};
        CHECK(pthread_create(&t[i], NULL, writer_thread, &args[i]) == 0, "pthread_create");
    }
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        CHECK(args[i].ok, "writer thread %d", i);
    }
}

/* ------------------------------------------------------------- timing */

static double ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* n pcs spread evenly over obj's executable segment. */
static int spread(const void *in, uintptr_t *out, int n)
{
    t_object o;
    if (!t_object_of(in, &o) || o.exec_hi <= o.exec_lo)
        return 0;
    uintptr_t step = (o.exec_hi - o.exec_lo) / (uintptr_t)(n + 1);
    for (int i = 0; i < n; i++)
        out[i] = o.exec_lo + step * (uintptr_t)(i + 1) + (uintptr_t)(i % 7);
    return n;
}

static void test_timing(const sites *st)
{
    enum { NPC = 2000 };
    static uintptr_t pcs[NPC];
    int n = 0;
    n += spread((void *)&getpid, pcs + n, 1200); /* libc: DWARF if libc6-dbg is installed */
    n += spread(dlsym(RTLD_DEFAULT, "dwfl_begin"), pcs + n, 500); /* libdw: stripped */
    n += spread(dlsym(RTLD_DEFAULT, "deflate"), pcs + n, 290);
    pcs[n++] = st->alpha, pcs[n++] = st->beta, pcs[n++] = st->gamma, pcs[n++] = st->inl;
    pcs[n++] = st->cxx;
    while (n < NPC)
        pcs[n] = pcs[n - 1] + 1, n++;

    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    mprof_symbolizer *s = mprof_sym_open();
    double t_open = ms_since(&t0);
    mprof_frame f[32];
    int named = 0;
    for (int i = 0; i < NPC; i++)
        named += mprof_sym_lookup(s, pcs[i], f, 32) > 0;
    double t_sym = ms_since(&t0);
    mprof_sym_close(s);

    /* A heap-like profile: 5000 samples of 8 frames over those pcs. */
    mprof_pb *pb = mprof_pb_new(heap_types, 4, "space", "bytes", 524288);
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 5000; i++) {
        uintptr_t stack[8];
        for (int k = 0; k < 8; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            stack[k] = pcs[(i * 8 + k) < NPC ? i * 8 + k : (int)(x % NPC)];
        }
        int64_t v[4] = {1, 64, 1, 64};
        mprof_label l = {.key = "bytes", .num = 64, .num_unit = "bytes"};
        mprof_pb_add_sample(pb, stack, 8, v, &l, 1);
    }
    double t_add = ms_since(&t0) - t_sym;
    int fd = memfd_create("timing", MFD_CLOEXEC);
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CHECK(mprof_pb_write(pb, fd) == 0, "timing profile written");
    double t_write = ms_since(&t1);
    struct stat sb;
    fstat(fd, &sb);
    close(fd);
    mprof_pb_free(pb);
    fprintf(stderr,
            "timing: %d distinct pcs (%d named): sym_open %.1f ms, open+lookups %.1f ms; "
            "5000 samples added in %.1f ms; symbolize+encode+gzip+write %.1f ms, %lld bytes\n",
            NPC, named, t_open, t_sym, t_add, t_write, (long long)sb.st_size);
    CHECK(named > NPC / 4, "most pcs named (%d)", named);
}

/* ----------------------------------------------------- files for pprof */

static int write_file(const char *dir, const char *name, mprof_pb *pb)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || mprof_pb_write(pb, fd) != 0 || close(fd) != 0) {
        perror(path);
        return -1;
    }
    return 0;
}

static int write_for_pprof(const char *dir, const sites *st)
{
    mprof_pb *heap = heap_profile(st), *cpu = cpu_profile(st);
    if (write_file(dir, "heap.pb.gz", heap) || write_file(dir, "cpu.pb.gz", cpu))
        return 1;
    mprof_pb_free(heap);
    mprof_pb_free(cpu);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/expect.txt", dir);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return 1;
    /* "line NAME FILE:LINE": -text -lines must show that row;
     * "inline NAME FILE:LINE": ... marked as inlined into its caller;
     * "func NAME": -text must show it;
     * "bare ADDR NAIVE": -raw must show the address with no name. */
    fprintf(f, "line enc_alpha test_encoder.c:%d\n", st->alpha_line);
    fprintf(f, "line enc_alpha test_encoder.c:%d\n", st->alpha2_line);
    fprintf(f, "line enc_beta test_encoder.c:%d\n", st->beta_line);
    fprintf(f, "line enc_gamma test_encoder.c:%d\n", st->gamma_line);
    fprintf(f, "line enc_inlined test_encoder.c:%d\n", st->inl_line);
    fprintf(f, "inline enc_inlined test_encoder.c:%d\n", st->inl_line);
    fprintf(f, "line enc_outer test_encoder.c:%d\n", st->outer_line);
    fprintf(f, "line mprof_test::Widget::grow(int*) encoder_cxx.cpp:%d\n", st->cxx_line);
    fprintf(f, "func deflate\n");
    fprintf(f, "bare %#lx %s\n", (unsigned long)st->zgap, st->zgap_naive);
    if (st->cgap)
        fprintf(f, "bare %#lx %s\n", (unsigned long)st->cgap, st->cgap_naive);
    return fclose(f) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    sites st;
    capture_sites(&st);
    if (argc == 3 && strcmp(argv[1], "--out") == 0)
        return write_for_pprof(argv[2], &st);
    test_threads(&st);
    test_heap(&st);
    test_cpu(&st);
    test_edges(&st);
    test_timing(&st);
    return check_result("test_encoder");
}
