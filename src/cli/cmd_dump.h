/*
 * `mprof dump`: reading heap dumps (docs/heap-dump.md), printing them and
 * converting them to pprof heap profiles.
 *
 * The reader trusts nothing in the file: every length is checked against
 * the bytes that are left, every reference (string, mapping, bucket) against
 * what was defined before it, every count against the payload that would
 * have to hold it, so that a truncated or corrupt dump is an error message,
 * never a crash or an allocation of its claimed size.
 */
#ifndef MPROF_CLI_CMD_DUMP_H
#define MPROF_CLI_CMD_DUMP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "shared/heap_dump_format.h"

/* The versions of the format this reader understands: every one so far. */
#define HD_VERSION_MIN 1
#define HD_VERSION_MAX MPROF_DUMP_VERSION

/* The file, and its contents after gunzip, are read up to the read limit
 * of profile_reader.h (MPROF_READ_LIMIT_MB). */

typedef struct hd_line {
    const char *function;    /* never NULL; "" when unknown */
    const char *system_name;
    const char *file;
    uint64_t line;
    uint64_t start_line;
    /* The same three as indexes into hd_dump.strings. */
    uint32_t function_sid, system_name_sid, file_sid;
} hd_line;

/* One call site of a bucket's stack, with the frames inlined at it,
 * innermost first (lines[nlines - 1] is the function that contains pc). */
typedef struct hd_frame {
    uint64_t pc;
    uint64_t mapping_id; /* 0: in no known mapping */
    hd_line *lines;
    size_t nlines;
} hd_frame;

typedef struct hd_bucket {
    uint64_t id;
    uint64_t size_class;
    uint64_t alloc_objects, free_objects; /* sampled */
    uint64_t alloc_bytes, free_bytes;
    double est_alloc_objects, est_free_objects; /* unsampled estimates */
    double est_alloc_bytes, est_free_bytes;
    hd_frame *frames; /* innermost first */
    size_t nframes;
} hd_bucket;

typedef struct hd_sample {
    uint64_t address;
    uint64_t size;
    uint64_t bucket_id; /* 1..nbuckets */
    double weight;      /* estimated objects this sample stands for */
} hd_sample;

typedef struct hd_mapping {
    uint64_t id;
    uint64_t start, limit, file_offset;
    const char *path;
    const char *build_id;
    uint64_t flags; /* MPROF_DUMP_MAPPING_HAS_SYMBOLS: the file has a symbol table */
} hd_mapping;

/* MemStats "present" bits. */
#define HD_STATS_MALLOC MPROF_DUMP_STATS_MALLOC
#define HD_STATS_PROC MPROF_DUMP_STATS_PROC

typedef struct hd_memstats {
    uint64_t present;
    uint64_t malloc_arena, malloc_mmap, malloc_mmap_count, malloc_inuse, malloc_free,
        malloc_keepcost;
    uint64_t vm_size, vm_rss, vm_hwm, vm_data;
    uint64_t profiler_bytes, buckets, live_samples, samples_taken;
} hd_memstats;

typedef struct hd_dump {
    uint64_t version;
    uint64_t pid, time_nanos, rate, pointer_size;
    const char *mprof_version;
    const char *executable;
    int has_memstats;
    hd_memstats stats;
    const char **strings; /* strings[0] is "" */
    size_t nstrings;
    hd_mapping *mappings; /* mappings[i].id == i + 1 */
    size_t nmappings;
    hd_bucket *buckets; /* buckets[i].id == i + 1 */
    size_t nbuckets;
    hd_sample *samples;
    size_t nsamples;
    size_t unknown_records; /* skipped: written by a newer mprof */
    struct hd_pool *pool;   /* owns the strings, frames and lines */
} hd_dump;

/* Decodes a dump held in memory (raw, or gzipped).  NULL on failure with a
 * one-line reason in err (no "mprof:" prefix). */
hd_dump *hd_parse(const uint8_t *data, size_t len, char *err, size_t errlen);

/* Reads and decodes a file ("-" is standard input). */
hd_dump *hd_read_file(const char *path, char *err, size_t errlen);

void hd_free(hd_dump *d);

/* The readable form printed by `mprof dump FILE`. */
void hd_print(FILE *out, const hd_dump *d);

/*
 * The dump as a gzipped pprof heap profile: one sample per bucket with the
 * values of mprof's heap profile (alloc_objects, alloc_space, inuse_objects,
 * inuse_space; default inuse_space), and the dump's names and lines as the
 * profile's functions, so that it needs no binary to be read.  Returns 0
 * and a malloc'd buffer, or -1 with err set.
 */
int hd_to_pprof(const hd_dump *d, uint8_t **out, size_t *outlen, char *err, size_t errlen);

/* argv[0] is "dump". */
int cmd_dump(int argc, char **argv);
void cli_print_dump_usage(FILE *out);

#endif /* MPROF_CLI_CMD_DUMP_H */
