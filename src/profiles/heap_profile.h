/*
 * The heap profile (heap_profile.c): Go's four sample types built from the
 * sampler's buckets.
 */
#ifndef MPROF_PROFILES_HEAP_PROFILE_H
#define MPROF_PROFILES_HEAP_PROFILE_H

#include "encode/pprof.h"

/* Heap profile writer (heap_profile.c): default_type is "inuse_space" or
 * "alloc_space". */
MPROF_HIDDEN int mprof_heap_write_fd(int fd, const char *default_type);

/*
 * Building blocks of every heap profile (snapshots, HTTP deltas, dumps
 * converted back): Go's four sample types in Go's order, period = the
 * current rate, the allocator entry points as drop_frames, and one sample
 * per bucket labelled with its mean block size.  Cold path.
 */
enum { MPROF_HEAP_ALLOC_SPACE = 1, MPROF_HEAP_INUSE_SPACE = 3 };
MPROF_HIDDEN mprof_pb *mprof_heap_pb_new(int default_type_index);
/* values: alloc_objects, alloc_space, inuse_objects, inuse_space. */
MPROF_HIDDEN void mprof_heap_pb_add(mprof_pb *pb, const mprof_mem_record *r,
                                    const int64_t values[4]);

#endif /* MPROF_PROFILES_HEAP_PROFILE_H */
