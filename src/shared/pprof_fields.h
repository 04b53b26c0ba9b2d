/*
 * Field numbers of google/pprof's proto/profile.proto, shared by the
 * library's encoder (src/pprof_builder.c) and the CLI's decoder
 * (src/cli/profile_reader.c), so that the two can never disagree.  Numbers
 * from 15 up are left out: they mean different things in different
 * versions of the format.
 */
#ifndef MPROF_PPROF_FIELDS_H
#define MPROF_PPROF_FIELDS_H

enum {
    PROFILE_SAMPLE_TYPE = 1,
    PROFILE_SAMPLE = 2,
    PROFILE_MAPPING = 3,
    PROFILE_LOCATION = 4,
    PROFILE_FUNCTION = 5,
    PROFILE_STRING_TABLE = 6,
    PROFILE_DROP_FRAMES = 7,
    PROFILE_KEEP_FRAMES = 8,
    PROFILE_TIME_NANOS = 9,
    PROFILE_DURATION_NANOS = 10,
    PROFILE_PERIOD_TYPE = 11,
    PROFILE_PERIOD = 12,
    PROFILE_COMMENT = 13,
    PROFILE_DEFAULT_SAMPLE_TYPE = 14,

    VALUE_TYPE_TYPE = 1,
    VALUE_TYPE_UNIT = 2,

    SAMPLE_LOCATION_ID = 1,
    SAMPLE_VALUE = 2,
    SAMPLE_LABEL = 3,

    LABEL_KEY = 1,
    LABEL_STR = 2,
    LABEL_NUM = 3,
    LABEL_NUM_UNIT = 4,

    MAPPING_ID = 1,
    MAPPING_MEMORY_START = 2,
    MAPPING_MEMORY_LIMIT = 3,
    MAPPING_FILE_OFFSET = 4,
    MAPPING_FILENAME = 5,
    MAPPING_BUILD_ID = 6,
    MAPPING_HAS_FUNCTIONS = 7,
    MAPPING_HAS_FILENAMES = 8,
    MAPPING_HAS_LINE_NUMBERS = 9,
    MAPPING_HAS_INLINE_FRAMES = 10,

    LOCATION_ID = 1,
    LOCATION_MAPPING_ID = 2,
    LOCATION_ADDRESS = 3,
    LOCATION_LINE = 4,
    LOCATION_IS_FOLDED = 5,

    LINE_FUNCTION_ID = 1,
    LINE_LINE = 2,
    LINE_COLUMN = 3,

    FUNCTION_ID = 1,
    FUNCTION_NAME = 2,
    FUNCTION_SYSTEM_NAME = 3,
    FUNCTION_FILENAME = 4,
    FUNCTION_START_LINE = 5,
};

/* Protobuf wire types. */
enum {
    WIRE_VARINT = 0,
    WIRE_I64 = 1,
    WIRE_LEN = 2,
    WIRE_SGROUP = 3,
    WIRE_EGROUP = 4,
    WIRE_I32 = 5,
};

/* Conventions of mprof's heap profiles, shared by the library and the
 * CLI's dump converter. */
/* Allocator entry points never appear in our stacks (the capture skips
 * them), but a profile merged with others or a frame we could not skip
 * (an allocator we do not know) is still cut there by the viewer. */
#define MPROF_HEAP_DROP_FRAMES                                                                   \
    "(malloc|calloc|realloc|reallocarray|free|posix_memalign|aligned_alloc|memalign|"      \
    "valloc|pvalloc|operator new.*|operator delete.*|__libc_malloc|__libc_calloc)"

#endif /* MPROF_PPROF_FIELDS_H */
