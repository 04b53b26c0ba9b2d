/*
 * Reading pprof profiles (google/pprof proto/profile.proto) without Go.
 *
 * The reader accepts gzip-compressed or raw protobuf data, decodes every
 * field of Profile, Sample, Label, Mapping, Location, Line, Function and
 * ValueType, skips fields it does not know by their wire type, and then
 * resolves string indexes and ids into pointers.  Anything malformed -
 * truncated data, a string index out of range, an id that is referenced but
 * never defined - is an error with a message saying what and where: the
 * profile may come from anywhere, so nothing in it is trusted.
 *
 * A decoded profile owns all of its memory; free it with pp_profile_free.
 */
#ifndef MPROF_CLI_PROFILE_READER_H
#define MPROF_CLI_PROFILE_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Limits that keep a hostile file from exhausting memory and time, for
 * profiles and heap dumps alike (docs/cli.md, "Limits"):
 *
 *  - the read limit: the most bytes read, from the file and again after
 *    gunzip (MPROF_READ_LIMIT_MB sets it; the default is 512 MiB).  Real
 *    profiles are a few megabytes; the largest we have seen are well under
 *    100 MB.  A gzip bomb costs the limit, never what it would inflate to.
 *  - the memory budget: a decoded profile, and the reports built from it,
 *    take at most PP_MEMORY_PER_BYTE bytes per byte of protobuf, plus
 *    PP_MEMORY_FLOOR.  The first of the decoder's two passes counts the
 *    records, so a file over its budget is refused before it costs
 *    anything.  Profiles written by pprof encoders (Go's, mprof's) take 2
 *    to 5 bytes per byte; only files packed with records no profiler
 *    writes (millions of empty strings or samples of one value) go over.
 */
#define PP_DEFAULT_READ_LIMIT ((size_t)512 << 20)
#define PP_MEMORY_PER_BYTE 8
#define PP_MEMORY_FLOOR ((size_t)64 << 20)

/* The read limit in bytes; 0 restores the default.  Set once, by main. */
void pp_set_read_limit(size_t bytes);
size_t pp_read_limit(void);

/* The budget of a profile of protobuf_bytes bytes (see above). */
size_t pp_memory_budget(size_t protobuf_bytes);

/* The message for input over the read limit: "WHAT is [more than] N MiB,
 * more than ... mprof reads; ... MPROF_READ_LIMIT_MB=...". */
void pp_limit_message(char *err, size_t errlen, const char *what, size_t size, bool at_least);

typedef struct pp_value_type {
    const char *type; /* "alloc_space", "cpu", ... ("" if unset) */
    const char *unit; /* "bytes", "nanoseconds", "count", ... */
} pp_value_type;

typedef struct pp_label {
    const char *key;
    const char *str;      /* NULL for a numeric label */
    int64_t num;
    const char *num_unit; /* "" when the profile gives none */
} pp_label;

typedef struct pp_mapping {
    uint64_t id;
    uint64_t memory_start;
    uint64_t memory_limit;
    uint64_t file_offset;
    const char *filename;
    const char *build_id;
    bool has_functions;
    bool has_filenames;
    bool has_line_numbers;
    bool has_inline_frames;
} pp_mapping;

typedef struct pp_function {
    uint64_t id;
    const char *name;
    const char *system_name;
    const char *filename;
    int64_t start_line;
} pp_function;

typedef struct pp_line {
    const pp_function *function; /* never NULL after a successful read */
    int64_t line;
    int64_t column;
} pp_line;

typedef struct pp_location {
    uint64_t id;
    const pp_mapping *mapping; /* NULL when mapping_id is 0 */
    uint64_t address;
    /* Innermost first: lines[0] is the inlined callee, lines[nlines - 1]
     * the function that physically contains the address. */
    pp_line *lines;
    size_t nlines;
    bool is_folded;
} pp_location;

typedef struct pp_sample {
    /* Leaf first.  Pointers into pp_profile.locations. */
    pp_location **locations;
    size_t nlocations;
    int64_t *values; /* exactly pp_profile.nsample_types of them */
    pp_label *labels;
    size_t nlabels;
} pp_sample;

typedef struct pp_profile {
    pp_value_type *sample_types;
    size_t nsample_types;
    pp_sample *samples;
    size_t nsamples;
    pp_mapping *mappings; /* in file order: mappings[0] is the main binary */
    size_t nmappings;
    pp_location *locations;
    size_t nlocations;
    pp_function *functions;
    size_t nfunctions;
    const char **strings; /* the string table; strings[0] is "" */
    size_t nstrings;
    const char *drop_frames; /* regular expressions, "" when unset */
    const char *keep_frames;
    int64_t time_nanos;
    int64_t duration_nanos;
    pp_value_type period_type;
    int64_t period;
    const char **comments;
    size_t ncomments;
    const char *default_sample_type; /* "" when unset */

    /* What reports built from the profile may still allocate: its memory
     * budget less what decoding took (top_report_build keeps to it); 0 in
     * a profile not made by the reader, which has no budget. */
    size_t memory_budget;

    struct pp_arena *arena; /* owns everything above */
} pp_profile;

/*
 * Decodes a profile from memory (gzip or raw protobuf).  On success returns
 * the profile; on failure returns NULL and writes a one-line description of
 * the problem (no "mprof:" prefix, no file name) into err.
 */
pp_profile *pp_profile_parse(const void *data, size_t len, char *err, size_t errlen);

/*
 * Reads and decodes a profile file; path "-" is standard input.  Errors as
 * for pp_profile_parse, describing I/O failures too.
 */
pp_profile *pp_profile_read_file(const char *path, char *err, size_t errlen);

void pp_profile_free(pp_profile *p);

/*
 * Reads a whole file or pipe ("-" is standard input), up to the read
 * limit.  check, when given, sees the first bytes (up to 4 KiB, or the
 * whole input if shorter) before anything more is read, and refuses them
 * by returning false with err set.  0 and a malloc'd buffer, or -1 with err
 * set.
 */
typedef bool pp_start_check(const uint8_t *start, size_t len, char *err, size_t errlen);
int pp_read_input(const char *path, pp_start_check *check, uint8_t **out, size_t *outlen,
                  char *err, size_t errlen);

/*
 * An empty profile with an arena of its own, for profiles built rather
 * than read (profile_merge.h): every string field "", every array empty.
 * NULL when out of memory.
 */
pp_profile *pp_profile_new(void);

/* n zeroed elements of elem bytes in memory the profile owns, freed with
 * it; NULL when out of memory or n * elem overflows. */
void *pp_profile_alloc(pp_profile *p, size_t n, size_t elem);

/* Copies len bytes of s, NUL-terminated, into memory the profile owns (for
 * names rewritten after reading).  NULL when out of memory. */
const char *pp_profile_copy_string(pp_profile *p, const char *s, size_t len);

/*
 * Inflates gzip or zlib data (several concatenated gzip members are one
 * stream, as gzip(1) and Go read them).  Returns 0 and a malloc'd buffer, or
 * -1 with err set.  Exposed for the unit tests.
 */
int pp_gunzip(const uint8_t *in, size_t inlen, uint8_t **out, size_t *outlen, char *err,
              size_t errlen);

/* True when data starts with the gzip magic number. */
bool pp_is_gzip(const uint8_t *data, size_t len);

#endif /* MPROF_CLI_PROFILE_READER_H */
