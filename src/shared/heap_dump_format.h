/*
 * The heap dump's format constants (docs/heap-dump.md), shared by the
 * library's writer (src/heap_dump.c) and the CLI's reader
 * (src/cli/cmd_dump.c), so that the two can never disagree.
 */
#ifndef MPROF_HEAP_DUMP_FORMAT_H
#define MPROF_HEAP_DUMP_FORMAT_H

/* The file starts with these 8 bytes, then the version as a varint. */
#define MPROF_DUMP_MAGIC "MPROFDMP"
#define MPROF_DUMP_MAGIC_LEN 8
/* Bumped only when a record's meaning changes: new fields go at the end
 * of a record, new records get new tags, and readers skip both. */
#define MPROF_DUMP_VERSION 1

/* Record tags, after the records of Go's heap dump (runtime/heapdump.go). */
enum mprof_dump_tag {
    TAG_EOF = 0,
    TAG_HEADER = 1,
    TAG_MEMSTATS = 2,
    TAG_STRING = 3,
    TAG_MAPPING = 4,
    TAG_MEMPROF = 5,
    TAG_ALLOC_SAMPLE = 6,
};

/* MemStats "present" bits: which groups could be read. */
#define MPROF_DUMP_STATS_MALLOC 1u
#define MPROF_DUMP_STATS_PROC 2u

/* Mapping flags. */
#define MPROF_DUMP_MAPPING_HAS_SYMBOLS 1u

#endif
