/*
 * Writes synthetic pprof profiles that exercise what Go's own profiles do
 * not: drop_frames/keep_frames, locations with inlined frames, recursion,
 * partial inlining, negative values, many tiny functions (node dropping),
 * and value units from nanoseconds to hours and bytes to gigabytes.
 * cli_top_vs_pprof.sh compares `mprof top` with `go tool pprof -top` on
 * each of them.
 *
 * Usage: cli_synth_profiles OUTDIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <zlib.h>

#include "cli_pb_encode.h"

static void write_file(const char *dir, const char *name, const pbuf *data, int gzip)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (gzip) {
        gzFile f = gzopen(path, "wb");
        if (f == NULL || gzwrite(f, data->p, (unsigned)data->len) != (int)data->len ||
            gzclose(f) != Z_OK) {
            fprintf(stderr, "cli_synth_profiles: cannot write %s\n", path);
            exit(1);
        }
        return;
    }
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(data->p, 1, data->len, f) != data->len || fclose(f) != 0) {
        fprintf(stderr, "cli_synth_profiles: cannot write %s\n", path);
        exit(1);
    }
}

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Inlining ("tiny" always inlined, "helper" inlined at one call site only,
 * "mixed" inlined and not at the same call site), recursion, negative values, a default
 * sample type that is not the last one, units of every family. */
static void inline_recursion(const char *dir)
{
    synth_profile sp;
    sp_init(&sp);
    sp_sample_type(&sp, "events", "count");
    sp_sample_type(&sp, "space", "bytes");
    sp_sample_type(&sp, "wait", "nanoseconds");
    sp_sample_type(&sp, "gadgets", "widgets");
    sp_sample_type(&sp, "delay", "seconds");
    sp_mapping(&sp, 1, 0x400000, 0x500000, 0, "/usr/bin/synthetic", 1);
    enum { MAIN = 1, WORK, HELPER, RECURSE, LEAF, OTHER, TINY, MIXED };
    sp_function(&sp, MAIN, "main");
    sp_function(&sp, WORK, "work");
    sp_function(&sp, HELPER, "helper");
    sp_function(&sp, RECURSE, "recurse");
    sp_function(&sp, LEAF, "leaf");
    sp_function(&sp, OTHER, "other");
    sp_function(&sp, TINY, "tiny");
    sp_function(&sp, MIXED, "mixed");
    uint64_t f_main[] = {MAIN}, f_helper_in_work[] = {HELPER, WORK}, f_work[] = {WORK},
             f_helper[] = {HELPER}, f_recurse[] = {RECURSE}, f_leaf[] = {LEAF},
             f_recurse_in_recurse[] = {RECURSE, RECURSE}, f_other[] = {OTHER},
             f_tiny_in_other[] = {TINY, OTHER}, f_mixed_in_work[] = {MIXED, WORK},
             f_mixed[] = {MIXED};
    sp_location(&sp, 1, 1, 0x401000, f_main, 1);
    sp_location(&sp, 2, 1, 0x402000, f_helper_in_work, 2);
    sp_location(&sp, 3, 1, 0x403000, f_work, 1);
    sp_location(&sp, 4, 1, 0x404000, f_helper, 1);
    sp_location(&sp, 5, 1, 0x405000, f_recurse, 1);
    sp_location(&sp, 6, 1, 0x406000, f_leaf, 1);
    sp_location(&sp, 7, 1, 0x407000, f_recurse_in_recurse, 2);
    sp_location(&sp, 8, 1, 0x408000, f_other, 1);
    sp_location(&sp, 9, 1, 0x409000, f_tiny_in_other, 2);
    sp_location(&sp, 10, 1, 0x40a000, f_mixed_in_work, 2);
    sp_location(&sp, 11, 1, 0x40b000, f_mixed, 1);

    uint64_t s1[] = {2, 1}, s2[] = {4, 1}, s3[] = {6, 5, 5, 7, 5, 1}, s4[] = {3, 1},
             s5[] = {8, 1}, s6[] = {4, 8, 1}, s7[] = {9, 1}, s8[] = {10, 1}, s9[] = {11, 3, 1};
    int64_t v1[] = {100, 3LL << 30, 7200LL * 1000000000, 5, 3};
    int64_t v2[] = {50, 1536, 1500000, 7, 0};
    int64_t v3[] = {30, 5LL << 20, 45LL * 1000000000, 1, 120};
    int64_t v4[] = {7, 1000, 999, 3, 1};
    int64_t v5[] = {-20, -(1LL << 20), -1000000, -2, -1}; /* a diff-style negative sample */
    int64_t v6[] = {1, 1, 1, 1, 1};
    int64_t v7[] = {9, 9 << 10, 9000, 9, 9};
    int64_t v8[] = {11, 11 << 10, 11000, 11, 11};
    int64_t v9[] = {12, 12 << 10, 12000, 12, 12};
    sp_sample(&sp, s1, N(s1), v1, N(v1));
    sp_sample(&sp, s2, N(s2), v2, N(v2));
    sp_sample(&sp, s3, N(s3), v3, N(v3));
    sp_sample(&sp, s4, N(s4), v4, N(v4));
    sp_sample(&sp, s5, N(s5), v5, N(v5));
    sp_sample(&sp, s6, N(s6), v6, N(v6));
    sp_sample(&sp, s7, N(s7), v7, N(v7));
    sp_sample(&sp, s8, N(s8), v8, N(v8));
    sp_sample(&sp, s9, N(s9), v9, N(v9));
    pb_put_uint(&sp.body, 14, sp_str(&sp, "space")); /* default_sample_type */
    pbuf out = sp_finish(&sp);
    write_file(dir, "inline_recursion.pb", &out, 0);
    mprof_bytebuf_free(&out);
}

/* drop_frames / keep_frames as a native profiler writes them. */
static void drop_frames(const char *dir)
{
    synth_profile sp;
    sp_init(&sp);
    sp_sample_type(&sp, "alloc_objects", "count");
    sp_sample_type(&sp, "alloc_space", "bytes");
    sp_mapping(&sp, 1, 0x1000, 0x90000, 0x1000, "/opt/app/bin/server", 1);
    enum { MAIN = 1, ALLOC_A, ALLOC_B, ALLOC_C, MALLOC, OPNEW, CALLOC, INNER, ANON, KEEP, WRAP };
    sp_function(&sp, MAIN, "main");
    sp_function(&sp, ALLOC_A, "alloc_a");
    sp_function(&sp, ALLOC_B, "Cache::alloc_b(int, char const*)");
    sp_function(&sp, ALLOC_C, "alloc_c");
    sp_function(&sp, MALLOC, "malloc");
    sp_function(&sp, OPNEW, "operator new(unsigned long)");
    sp_function(&sp, CALLOC, "calloc");
    sp_function(&sp, INNER, "mprof_sample_hook");
    sp_function(&sp, ANON, "(anonymous namespace)::pool_get(unsigned long)");
    sp_function(&sp, KEEP, "mprof_keep_me");
    sp_function(&sp, WRAP, "xmalloc");
    uint64_t f_main[] = {MAIN}, f_a[] = {ALLOC_A}, f_b[] = {ALLOC_B}, f_malloc[] = {MALLOC},
             f_opnew[] = {OPNEW}, f_inner_calloc_c[] = {INNER, CALLOC, ALLOC_C},
             f_anon[] = {ANON}, f_keep[] = {KEEP}, f_wrap[] = {WRAP};
    sp_location(&sp, 1, 1, 0x2000, f_main, 1);
    sp_location(&sp, 2, 1, 0x3000, f_a, 1);
    sp_location(&sp, 3, 1, 0x4000, f_b, 1);
    sp_location(&sp, 4, 1, 0x5000, f_malloc, 1);
    sp_location(&sp, 5, 1, 0x6000, f_opnew, 1);
    sp_location(&sp, 6, 1, 0x7000, f_inner_calloc_c, 3);
    sp_location(&sp, 7, 1, 0x8000, f_anon, 1);
    sp_location(&sp, 8, 1, 0x9000, f_keep, 1);
    sp_location(&sp, 9, 1, 0xa000, f_wrap, 1);

    uint64_t s1[] = {4, 2, 1}, s2[] = {5, 3, 1}, s3[] = {6, 1}, s4[] = {4},
             s5[] = {2, 4}, s6[] = {4, 7, 1}, s7[] = {4, 8, 2, 1}, s8[] = {4, 9, 3, 1};
    int64_t v1[] = {10, 10240}, v2[] = {4, 65536}, v3[] = {2, 8192}, v4[] = {1, 64},
            v5[] = {3, 96}, v6[] = {5, 5000}, v7[] = {6, 6000}, v8[] = {7, 7000};
    sp_sample(&sp, s1, N(s1), v1, N(v1));
    sp_sample(&sp, s2, N(s2), v2, N(v2));
    sp_sample(&sp, s3, N(s3), v3, N(v3));
    sp_sample(&sp, s4, N(s4), v4, N(v4));
    sp_sample(&sp, s5, N(s5), v5, N(v5));
    sp_sample(&sp, s6, N(s6), v6, N(v6));
    sp_sample(&sp, s7, N(s7), v7, N(v7));
    sp_sample(&sp, s8, N(s8), v8, N(v8));
    pb_put_uint(&sp.body, 7, sp_str(&sp, "malloc|calloc|operator new.*|mprof_.*|xmalloc"));
    pb_put_uint(&sp.body, 8, sp_str(&sp, "mprof_keep_me"));
    pbuf out = sp_finish(&sp);
    write_file(dir, "drop_frames.pb.gz", &out, 1);
    mprof_bytebuf_free(&out);
}

/* Hundreds of tiny functions: rows below 0.5% of the total are dropped and
 * counted in the header; also comments, time and duration lines. */
static void many_small(const char *dir)
{
    static char names[400][32];
    synth_profile sp;
    sp_init(&sp);
    sp_sample_type(&sp, "samples", "count");
    sp_sample_type(&sp, "cpu", "nanoseconds");
    sp_value_type(&sp, 11, "cpu", "nanoseconds"); /* period_type */
    pb_put_uint(&sp.body, 12, 10000000);          /* period */
    pb_put_uint(&sp.body, 9, 1700000000123456789ULL);
    pb_put_uint(&sp.body, 10, 2500000000ULL);
    pb_put_uint(&sp.body, 13, sp_str(&sp, "#tool-only comment"));
    pb_put_uint(&sp.body, 13, sp_str(&sp, "visible comment"));
    sp_function(&sp, 1, "main");
    uint64_t f_main[] = {1};
    sp_location(&sp, 1, 0, 0x100, f_main, 1);
    for (int i = 0; i < 400; i++) {
        snprintf(names[i], sizeof(names[i]), "fn_%03d", i);
        uint64_t f[] = {(uint64_t)i + 2};
        sp_function(&sp, (uint64_t)i + 2, names[i]);
        sp_location(&sp, (uint64_t)i + 2, 0, 0x1000 + (uint64_t)i * 16, f, 1);
        uint64_t stack[] = {(uint64_t)i + 2, 1};
        /* A few heavy functions, many light ones, some ties. */
        int64_t n = i < 5 ? 400 - i * 50 : 1 + i % 3;
        int64_t values[] = {n, n * 10000000};
        sp_sample(&sp, stack, N(stack), values, N(values));
    }
    pbuf out = sp_finish(&sp);
    write_file(dir, "many_small.pb.gz", &out, 1);
    mprof_bytebuf_free(&out);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: cli_synth_profiles OUTDIR\n");
        return 2;
    }
    inline_recursion(argv[1]);
    drop_frames(argv[1]);
    many_small(argv[1]);
    return 0;
}
