/*
 * Heap dump round trip: the writer (src/heap_dump.c) fed with chosen
 * buckets, live blocks and symbols through the stand-ins of dump_stubs.c,
 * read back by the reader of `mprof dump` (src/cli/cmd_dump.c), converted to
 * pprof and read again by the CLI's pprof reader.  Then every truncation and
 * every single-byte corruption of the dump must give an error or a valid
 * dump, never a crash (this runs under ASan+UBSan and TSan too).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cli/cmd_dump.h"
#include "dump_stubs.h"
#include "../lib/check.h"
#include "mprof.h"
#include "cli/profile_reader.h"

/* ------------------------------------------------------------ fixtures */

#define NRECS 4
static mprof_mem_record recs[NRECS];
static uintptr_t orphan_stack[3] = {DUMP_STUB_EXE_START + 0x250, DUMP_STUB_EXE_START + 0x260,
                                    0xdead0000};
static dump_stub_live live[5];

static void fill_fixture(void)
{
    memset(recs, 0, sizeof recs);
    /* 0: a site with a plain and an inlined frame, some frees. */
    recs[0] = (mprof_mem_record){
        .alloc_objects = 10, .free_objects = 4, .alloc_bytes = 40960, .free_bytes = 16384,
        .size = 4096, .est_alloc_objects = 10.4, .est_free_objects = 4.2,
        .est_alloc_bytes = 42000.5, .est_free_bytes = 17000.25, .nstack = 3,
        .stack = {DUMP_STUB_EXE_START + 0x110, DUMP_STUB_EXE_START + 0x020, DUMP_STUB_EXE_START + 0x030},
    };
    /* 1: everything freed; frames in the library (no names) and nowhere. */
    recs[1] = (mprof_mem_record){
        .alloc_objects = 3, .free_objects = 3, .alloc_bytes = 300, .free_bytes = 300,
        .size = 112, .est_alloc_objects = 3.0000001, .est_free_objects = 3,
        .est_alloc_bytes = 300, .est_free_bytes = 300, .nstack = 3,
        .stack = {DUMP_STUB_LIB_START + 0x42, 0xdead0000, DUMP_STUB_EXE_START + 0x030},
    };
    /* 2: the deepest stack a bucket holds, pcs repeating with recs[0]. */
    recs[2] = (mprof_mem_record){
        .alloc_objects = 1, .alloc_bytes = 1 << 20, .size = 1 << 20, .est_alloc_objects = 1,
        .est_alloc_bytes = 1 << 20, .nstack = MPROF_MAX_STACK,
    };
    for (int i = 0; i < MPROF_MAX_STACK; i++)
        recs[2].stack[i] = DUMP_STUB_EXE_START + 0x010 * (uintptr_t)(i + 1);
    /* 3: no stack at all. */
    recs[3] = (mprof_mem_record){.alloc_objects = 2, .alloc_bytes = 64, .size = 32,
                                 .est_alloc_objects = 2, .est_alloc_bytes = 64};

    live[0] = (dump_stub_live){0x10000, 4096, 1.0, recs[0].stack, 3, 4096};
    live[1] = (dump_stub_live){0x20000, 4000, 1.5, recs[0].stack, 3, 4096};
    live[2] = (dump_stub_live){0x30000, 1 << 20, 1.0, recs[2].stack, MPROF_MAX_STACK, 1 << 20};
    live[3] = (dump_stub_live){0x40000, 32, 2.0, NULL, 0, 32};
    /* Its bucket is not in the snapshot: the writer must invent one. */
    live[4] = (dump_stub_live){0x50000, 24, 1.0, orphan_stack, 3, 32};

    dump_stub.rate = 512 * 1024;
    dump_stub.recs = recs;
    dump_stub.nrecs = NRECS;
    dump_stub.live = live;
    dump_stub.nlive = 5;
}

/* Writes a dump through the public entry point into memory. */
static uint8_t *write_dump(size_t *len)
{
    int fd = memfd_create("dump", 0);
    if (fd < 0) {
        perror("memfd_create");
        exit(1);
    }
    int rc = mprof_write_heap_dump(fd);
    CHECK(rc == 0, "mprof_write_heap_dump: %s", strerror(errno));
    off_t size = lseek(fd, 0, SEEK_END);
    uint8_t *buf = malloc((size_t)size + 1);
    if (pread(fd, buf, (size_t)size, 0) != size) {
        perror("pread");
        exit(1);
    }
    close(fd);
    *len = (size_t)size;
    return buf;
}

/* ------------------------------------------------------------ round trip */

static void check_frames(const hd_bucket *b, const mprof_mem_record *r)
{
    CHECK(b->nframes == (size_t)r->nstack, "bucket %llu: %zu frames, want %d",
          (unsigned long long)b->id, b->nframes, r->nstack);
    for (size_t k = 0; k < b->nframes && k < (size_t)r->nstack; k++) {
        const hd_frame *f = &b->frames[k];
        CHECK(f->pc == r->stack[k], "frame %zu pc", k);
        mprof_frame want[16];
        int n = dump_stub_frames(r->stack[k], want, 16);
        CHECK(f->nlines == (size_t)n, "pc 0x%llx: %zu lines, want %d",
              (unsigned long long)f->pc, f->nlines, n);
        for (size_t l = 0; l < f->nlines && l < (size_t)n; l++) {
            CHECK(strcmp(f->lines[l].function, want[l].function) == 0, "function %s",
                  f->lines[l].function);
            CHECK(strcmp(f->lines[l].system_name, want[l].system_name) == 0, "system name");
            CHECK(strcmp(f->lines[l].file, want[l].file) == 0, "file");
            CHECK(f->lines[l].line == (uint64_t)want[l].line, "line");
            CHECK(f->lines[l].start_line == (uint64_t)want[l].start_line, "start line");
        }
        /* Mapping: the executable is dump mapping 1, the library 2. */
        uint64_t want_map = r->stack[k] >= DUMP_STUB_EXE_START && r->stack[k] < DUMP_STUB_EXE_LIMIT
                                ? 1
                                : r->stack[k] >= DUMP_STUB_LIB_START &&
                                          r->stack[k] < DUMP_STUB_LIB_LIMIT
                                      ? 2
                                      : 0;
        CHECK(f->mapping_id == want_map, "pc 0x%llx in mapping %llu, want %llu",
              (unsigned long long)f->pc, (unsigned long long)f->mapping_id,
              (unsigned long long)want_map);
    }
}

static void test_round_trip(const uint8_t *buf, size_t len)
{
    char err[512];
    hd_dump *d = hd_parse(buf, len, err, sizeof err);
    CHECK(d != NULL, "parse: %s", err);
    if (d == NULL)
        return;
    CHECK(d->version == 1, "version %llu", (unsigned long long)d->version);
    CHECK(d->pid == (uint64_t)getpid(), "pid");
    CHECK(d->rate == 512 * 1024, "rate");
    CHECK(d->pointer_size == sizeof(void *), "pointer size");
    CHECK(strcmp(d->mprof_version, MPROF_VERSION) == 0, "mprof version %s", d->mprof_version);
    CHECK(d->executable[0] == '/', "executable '%s'", d->executable);
    CHECK(d->has_memstats, "memstats");
    CHECK(d->stats.present & HD_STATS_MALLOC, "malloc stats present");
    CHECK(d->stats.present & HD_STATS_PROC, "proc stats present");
    CHECK(d->stats.vm_rss > 0 && d->stats.vm_size >= d->stats.vm_rss, "VmRSS %llu VmSize %llu",
          (unsigned long long)d->stats.vm_rss, (unsigned long long)d->stats.vm_size);
    CHECK(d->stats.profiler_bytes == 123456 && d->stats.samples_taken == 777 &&
              d->stats.buckets == NRECS && d->stats.live_samples == 5,
          "mprof_get_stats fields");

    /* Mappings: the executable first although the symbolizer listed it
     * second; flags from mprof_sym_mapping_symbolized. */
    CHECK(d->nmappings == 2, "%zu mappings", d->nmappings);
    if (d->nmappings == 2) {
        CHECK(strcmp(d->mappings[0].path, d->executable) == 0, "mapping 1 is the executable");
        CHECK(d->mappings[0].start == DUMP_STUB_EXE_START &&
                  d->mappings[0].limit == DUMP_STUB_EXE_LIMIT,
              "exe range");
        CHECK(strcmp(d->mappings[0].build_id, "0123456789abcdef") == 0, "build id");
        CHECK(d->mappings[0].flags == 1 && d->mappings[1].flags == 0, "symbol flags");
        CHECK(strcmp(d->mappings[1].path, "/usr/lib/libfake.so.1") == 0 &&
                  d->mappings[1].file_offset == 0x1000,
              "library mapping");
    }

    /* Buckets: the four of the snapshot, in order, plus the orphan's. */
    CHECK(d->nbuckets == NRECS + 1, "%zu buckets", d->nbuckets);
    for (size_t i = 0; i < d->nbuckets && i < NRECS; i++) {
        const hd_bucket *b = &d->buckets[i];
        const mprof_mem_record *r = &recs[i];
        CHECK(b->id == i + 1, "bucket id");
        CHECK(b->size_class == r->size, "size class");
        CHECK(b->alloc_objects == (uint64_t)r->alloc_objects &&
                  b->free_objects == (uint64_t)r->free_objects &&
                  b->alloc_bytes == (uint64_t)r->alloc_bytes &&
                  b->free_bytes == (uint64_t)r->free_bytes,
              "bucket %zu counts", i);
        /* Doubles travel bit for bit. */
        CHECK(b->est_alloc_objects == r->est_alloc_objects &&
                  b->est_free_objects == r->est_free_objects &&
                  b->est_alloc_bytes == r->est_alloc_bytes &&
                  b->est_free_bytes == r->est_free_bytes,
              "bucket %zu estimates", i);
        check_frames(b, r);
    }
    if (d->nbuckets == NRECS + 1) {
        const hd_bucket *o = &d->buckets[NRECS];
        CHECK(o->alloc_objects == 0 && o->size_class == 32 && o->nframes == 3 &&
                  o->frames[2].pc == 0xdead0000,
              "orphan bucket");
    }

    /* Live objects, each with its bucket. */
    static const uint64_t want_bucket[5] = {1, 1, 3, 4, NRECS + 1};
    CHECK(d->nsamples == 5, "%zu samples", d->nsamples);
    for (size_t i = 0; i < d->nsamples && i < 5; i++) {
        CHECK(d->samples[i].address == live[i].addr && d->samples[i].size == live[i].size &&
                  d->samples[i].weight == live[i].weight,
              "sample %zu", i);
        CHECK(d->samples[i].bucket_id == want_bucket[i], "sample %zu in bucket %llu, want %llu",
              i, (unsigned long long)d->samples[i].bucket_id,
              (unsigned long long)want_bucket[i]);
    }
    CHECK(d->unknown_records == 0, "no unknown records");

    /* The text form names what it should. */
    char *text = NULL;
    size_t textlen = 0;
    FILE *f = open_memstream(&text, &textlen);
    hd_print(f, d);
    fclose(f);
    CHECK(strstr(text, "inlined_helper(int) (inlined)  /src/helper.h:17") != NULL,
          "inlined frame printed with its line");
    CHECK(strstr(text, "0x0000000000010000") != NULL && strstr(text, "0x0000000000050000") != NULL,
          "live addresses printed");
    CHECK(strstr(text, "/usr/lib/libfake.so.1+0x1042") != NULL, "unnamed frame as file+offset");
    free(text);
    hd_free(d);
}

/* ------------------------------------------------------------ pprof */

static const pp_sample *sample_with_leaf(const pp_profile *p, uint64_t pc)
{
    for (size_t i = 0; i < p->nsamples; i++)
        if (p->samples[i].nlocations > 0 && p->samples[i].locations[0]->address == pc)
            return &p->samples[i];
    return NULL;
}

static void test_pprof(const uint8_t *buf, size_t len)
{
    char err[512];
    hd_dump *d = hd_parse(buf, len, err, sizeof err);
    if (d == NULL)
        return;
    uint8_t *pb;
    size_t pblen;
    CHECK(hd_to_pprof(d, &pb, &pblen, err, sizeof err) == 0, "to pprof: %s", err);
    pp_profile *p = pp_profile_parse(pb, pblen, err, sizeof err);
    CHECK(p != NULL, "pprof reader: %s", err);
    if (p != NULL) {
        static const char *const types[] = {"alloc_objects", "alloc_space", "inuse_objects",
                                            "inuse_space"};
        CHECK(p->nsample_types == 4, "4 sample types");
        for (size_t i = 0; i < p->nsample_types && i < 4; i++)
            CHECK(strcmp(p->sample_types[i].type, types[i]) == 0, "type %zu", i);
        CHECK(strcmp(p->default_sample_type, "inuse_space") == 0, "default type");
        CHECK(p->period == 512 * 1024 && strcmp(p->period_type.type, "space") == 0, "period");
        CHECK(p->nsamples == NRECS + 1, "one sample per bucket");
        CHECK(p->nmappings == 2 && strcmp(p->mappings[0].filename, d->executable) == 0,
              "main binary first");
        CHECK(p->mappings[0].has_functions && p->mappings[0].has_line_numbers, "exe symbolized");
        CHECK(strstr(p->drop_frames, "malloc") != NULL, "drop frames");

        /* Values as the heap profile computes them. */
        const pp_sample *s0 = sample_with_leaf(p, recs[0].stack[0]);
        CHECK(s0 != NULL, "sample of bucket 1");
        if (s0 != NULL) {
            CHECK(s0->values[0] == 10 && s0->values[1] == 42001 && s0->values[2] == 6 &&
                      s0->values[3] == 25000,
                  "values %lld %lld %lld %lld", (long long)s0->values[0],
                  (long long)s0->values[1], (long long)s0->values[2], (long long)s0->values[3]);
            CHECK(s0->nlocations == 3, "3 locations");
            const pp_location *l = s0->locations[0];
            CHECK(l->nlines == 2 && strcmp(l->lines[0].function->name, "inlined_helper(int)") == 0 &&
                      strcmp(l->lines[0].function->system_name, "_Z14inlined_helperi") == 0 &&
                      l->lines[0].line == 0x10 + 1 &&
                      strcmp(l->lines[1].function->name, "beta") == 0 &&
                      strcmp(l->lines[1].function->filename, "/src/main.c") == 0,
                  "inlined location");
            CHECK(s0->nlabels == 1 && strcmp(s0->labels[0].key, "bytes") == 0 &&
                      s0->labels[0].num == 4096,
                  "bytes label");
        }
        /* All freed: in-use exactly 0 although the weights differ. */
        const pp_sample *s1 = sample_with_leaf(p, recs[1].stack[0]);
        CHECK(s1 != NULL && s1->values[2] == 0 && s1->values[3] == 0 && s1->values[0] == 3,
              "all-freed bucket");
        if (s1 != NULL)
            CHECK(s1->locations[0]->nlines == 0 && s1->locations[0]->mapping != NULL &&
                      s1->locations[1]->mapping == NULL,
                  "unnamed frames stay addresses");
        pp_profile_free(p);
    }
    free(pb);
    hd_free(d);
}

/* ------------------------------------------------------------ corruption */

static void test_corruption(const uint8_t *buf, size_t len)
{
    char err[512];
    uint8_t *copy = malloc(len + 64);
    /* Every truncation is an error, with a message. */
    for (size_t n = 0; n < len; n++) {
        memcpy(copy, buf, n);
        err[0] = '\0';
        hd_dump *d = hd_parse(copy, n, err, sizeof err);
        CHECK(d == NULL && err[0] != '\0', "truncated at %zu of %zu parsed", n, len);
        hd_free(d);
    }
    /* Every single-byte corruption: an error or a dump, never a crash,
     * and whatever parses must convert. */
    size_t parsed = 0;
    for (size_t i = 0; i < len; i++) {
        for (int v = 0; v < 3; v++) {
            memcpy(copy, buf, len);
            copy[i] = v == 0 ? (uint8_t)(copy[i] ^ 0xff) : v == 1 ? 0x80 : (uint8_t)(copy[i] + 1);
            hd_dump *d = hd_parse(copy, len, err, sizeof err);
            if (d != NULL) {
                parsed++;
                uint8_t *pb;
                size_t pblen;
                if (hd_to_pprof(d, &pb, &pblen, err, sizeof err) == 0)
                    free(pb);
                FILE *null = fopen("/dev/null", "w");
                hd_print(null, d);
                fclose(null);
                hd_free(d);
            }
        }
    }
    printf("corruption: %zu of %zu mutated dumps still parse (values changed in place)\n", parsed,
           3 * len);

    /* Specific cases and their messages. */
    memcpy(copy, buf, len);
    copy[0] = 'X';
    hd_dump *d = hd_parse(copy, len, err, sizeof err);
    CHECK(d == NULL && strstr(err, "not an mprof heap dump"), "bad magic: %s", err);
    memcpy(copy, buf, len);
    copy[8] = 2;
    d = hd_parse(copy, len, err, sizeof err);
    CHECK(d == NULL && strstr(err, "version 2"), "newer version: %s", err);
    memcpy(copy, buf, len);
    copy[len] = 0;
    d = hd_parse(copy, len + 1, err, sizeof err);
    CHECK(d == NULL && strstr(err, "after the EOF record"), "trailing bytes: %s", err);
    d = hd_parse(buf, len - 1, err, sizeof err);
    CHECK(d == NULL && strstr(err, "truncated"), "truncated says so: %s", err);

    /* An unknown record (tag 40, 3 bytes) before EOF is skipped. */
    memcpy(copy, buf, len - 2);
    memcpy(copy + len - 2, "\x28\x03xyz\x00\x00", 7);
    d = hd_parse(copy, len + 5, err, sizeof err);
    CHECK(d != NULL && d->unknown_records == 1, "unknown record skipped: %s", d ? "" : err);
    hd_free(d);
    free(copy);
}

static void test_errors(void)
{
    errno = 0;
    CHECK(mprof_write_heap_dump(-1) == -1 && errno == EBADF, "fd -1");
    int fds[2];
    if (pipe(fds) != 0)
        return;
    close(fds[0]);
    /* EPIPE rather than SIGPIPE: ignore it for this check. */
    signal(SIGPIPE, SIG_IGN);
    errno = 0;
    CHECK(mprof_write_heap_dump(fds[1]) == -1 && errno == EPIPE, "closed pipe: errno %d", errno);
    close(fds[1]);
    const mprof_profile *kind = mprof_profile_lookup("heapdump");
    CHECK(kind != NULL && strcmp(mprof_option_name(kind->exit_option), "MPROF_HEAPDUMP") == 0 &&
              (kind->flags & MPROF_PROFILE_HEAP_DUMP),
          "registered kind heapdump with its exit option");
}

int main(void)
{
    /* What the library's life-cycle table does at start-up. */
    mprof_heap_dump_init();
    fill_fixture();
    size_t len;
    uint8_t *buf = write_dump(&len);
    printf("dump: %zu bytes\n", len);
    test_round_trip(buf, len);
    test_pprof(buf, len);
    test_corruption(buf, len);
    test_errors();
    free(buf);
    return check_result("dump_unit");
}
