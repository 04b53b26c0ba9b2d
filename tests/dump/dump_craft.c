/*
 * Writes heap dumps byte by byte from the format (docs/heap-dump.md,
 * shared/heap_dump_format.h), without the library's writer: a small valid
 * one (also the seed of the fuzz corpus, tests/fuzz/corpus/dump/), and the
 * crafted ones of issue 17 that dump_hostile.sh feeds to `mprof dump`.
 *
 * Usage: dump_craft OUTDIR
 *   valid.dump        two buckets, a mapping, strings, live samples
 *   valid.dump.gz     the same, gzipped
 *   huge.dump         two buckets whose in-use estimates (5e18 bytes each)
 *                     add up past int64: printed as a negative total before
 *   saturated.dump    one bucket estimating 1e30 objects (llround beyond
 *                     int64 printed -9223372036854775808)
 *   freed.dump        a bucket that freed 1e300 bytes of 64 allocated
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "shared/bytebuf.h"
#include "shared/heap_dump_format.h"

typedef mprof_bytebuf buf;

static void f64(buf *b, double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    for (int i = 0; i < 8; i++) {
        unsigned char c = (unsigned char)(u >> (8 * i));
        mprof_bytebuf_append(b, &c, 1);
    }
}

static void str(buf *b, const char *s)
{
    mprof_bytebuf_varint(b, strlen(s));
    mprof_bytebuf_append(b, s, strlen(s));
}

static void record(buf *out, uint64_t tag, buf *payload)
{
    mprof_bytebuf_varint(out, tag);
    mprof_bytebuf_varint(out, payload->len);
    mprof_bytebuf_append(out, payload->p, payload->len);
    payload->len = 0;
}

typedef struct estimates {
    double alloc_objects, free_objects, alloc_bytes, free_bytes;
} estimates;

/* A dump with one bucket per estimate, each with a two-frame stack (the
 * second frame inlined into the first's function), and one live sample
 * per bucket. */
static buf make_dump(const estimates *est, int nbuckets)
{
    buf out = {0}, r = {0};
    mprof_bytebuf_append(&out, MPROF_DUMP_MAGIC, MPROF_DUMP_MAGIC_LEN);
    mprof_bytebuf_varint(&out, MPROF_DUMP_VERSION);
    /* Header: pid, time, rate, pointer size, mprof version, executable. */
    mprof_bytebuf_varint(&r, 4242);
    mprof_bytebuf_varint(&r, 1700000000000000000ULL);
    mprof_bytebuf_varint(&r, 524288);
    mprof_bytebuf_varint(&r, 8);
    str(&r, "0.1.0");
    str(&r, "/usr/bin/crafted");
    record(&out, TAG_HEADER, &r);
    /* Strings 1..4. */
    const char *strings[] = {"/usr/bin/crafted", "main", "make_things", "crafted.c"};
    for (int i = 0; i < 4; i++) {
        mprof_bytebuf_varint(&r, (uint64_t)i + 1);
        str(&r, strings[i]);
        record(&out, TAG_STRING, &r);
    }
    /* Mapping 1: id, start, limit, offset, path, build id, flags. */
    uint64_t m[] = {1, 0x400000, 0x500000, 0, 1, 0, MPROF_DUMP_MAPPING_HAS_SYMBOLS};
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        mprof_bytebuf_varint(&r, m[i]);
    record(&out, TAG_MAPPING, &r);
    for (int bkt = 0; bkt < nbuckets; bkt++) {
        /* id, size class, sampled alloc/free objects and bytes, the four
         * estimates, then the frames. */
        uint64_t head[] = {(uint64_t)bkt + 1, 64, 10, 4, 640, 256};
        for (size_t i = 0; i < sizeof head / sizeof head[0]; i++)
            mprof_bytebuf_varint(&r, head[i]);
        f64(&r, est[bkt].alloc_objects);
        f64(&r, est[bkt].free_objects);
        f64(&r, est[bkt].alloc_bytes);
        f64(&r, est[bkt].free_bytes);
        mprof_bytebuf_varint(&r, 2); /* frames */
        for (int f = 0; f < 2; f++) {
            mprof_bytebuf_varint(&r, 0x401000 + 0x100 * (uint64_t)f + (uint64_t)bkt);
            mprof_bytebuf_varint(&r, 1); /* mapping */
            mprof_bytebuf_varint(&r, 1); /* lines */
            /* function, system name, file, line, start line */
            uint64_t line[] = {f == 0 ? 3u : 2u, f == 0 ? 3u : 2u, 4, 10 + (uint64_t)f, 5};
            for (size_t i = 0; i < 5; i++)
                mprof_bytebuf_varint(&r, line[i]);
        }
        record(&out, TAG_MEMPROF, &r);
    }
    for (int bkt = 0; bkt < nbuckets; bkt++) {
        mprof_bytebuf_varint(&r, 0x7f0000001000 + 0x100 * (uint64_t)bkt); /* address */
        mprof_bytebuf_varint(&r, 64);                                       /* size */
        mprof_bytebuf_varint(&r, (uint64_t)bkt + 1);                        /* bucket */
        f64(&r, 8192.0);                                                    /* weight */
        record(&out, TAG_ALLOC_SAMPLE, &r);
    }
    record(&out, TAG_EOF, &r);
    mprof_bytebuf_free(&r);
    if (out.oom) {
        fprintf(stderr, "dump_craft: out of memory\n");
        exit(1);
    }
    return out;
}

static void write_file(const char *dir, const char *name, const buf *b, int gzip)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int ok;
    if (gzip) {
        gzFile f = gzopen(path, "wb");
        ok = f != NULL && gzwrite(f, b->p, (unsigned)b->len) == (int)b->len && gzclose(f) == Z_OK;
    } else {
        FILE *f = fopen(path, "wb");
        ok = f != NULL && fwrite(b->p, 1, b->len, f) == b->len;
        ok = f != NULL && fclose(f) == 0 && ok;
    }
    if (!ok) {
        fprintf(stderr, "dump_craft: cannot write %s\n", path);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: dump_craft OUTDIR\n");
        return 2;
    }
    const char *dir = argv[1];
    estimates valid[2] = {{10.4, 4.2, 42000.5, 17000.25}, {3, 3, 300, 300}};
    buf b = make_dump(valid, 2);
    write_file(dir, "valid.dump", &b, 0);
    write_file(dir, "valid.dump.gz", &b, 1);
    mprof_bytebuf_free(&b);

    estimates huge[2] = {{10, 0, 5e18, 0}, {10, 0, 5e18, 0}};
    b = make_dump(huge, 2);
    write_file(dir, "huge.dump", &b, 0);
    mprof_bytebuf_free(&b);

    estimates saturated[1] = {{1e30, 0, 6.4e31, 0}};
    b = make_dump(saturated, 1);
    write_file(dir, "saturated.dump", &b, 0);
    mprof_bytebuf_free(&b);

    estimates freed[1] = {{10, 4, 640, 1e300}};
    b = make_dump(freed, 1);
    write_file(dir, "freed.dump", &b, 0);
    mprof_bytebuf_free(&b);
    return 0;
}
