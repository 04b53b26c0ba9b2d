/*
 * encode: pprof profiles (profile.proto) built from raw samples, symbolized,
 * gzipped and written.  The one encoder of every pprof file the library
 * writes.  Depends on core and symbolize, and on shared/ for the wire format.
 */
#ifndef MPROF_ENCODE_PPROF_H
#define MPROF_ENCODE_PPROF_H

#include "core/core.h"

/* ----------------------------------------------------- profile builder */

/*
 * Builds one pprof profile (profile.proto) from raw samples, symbolizes it
 * against the current process, gzips it and writes it.  Cold path: call
 * with the guard held.  Sample stacks are call-site addresses as returned by
 * mprof_stack_capture (they are written unmodified as Location.address).
 */
typedef struct mprof_pb mprof_pb;

typedef struct mprof_label {
    const char *key;
    const char *str;      /* string value, or NULL for a numeric label */
    int64_t num;
    const char *num_unit; /* may be NULL */
} mprof_label;

/* sample_types: ntypes pairs {"alloc_space", "bytes", ...}. */
MPROF_HIDDEN mprof_pb *mprof_pb_new(const char *const *sample_types, int ntypes,
                                    const char *period_type, const char *period_unit,
                                    int64_t period);
MPROF_HIDDEN void mprof_pb_add_sample(mprof_pb *pb, const uintptr_t *pcs, int npcs,
                                      const int64_t *values, const mprof_label *labels,
                                      int nlabels);
MPROF_HIDDEN void mprof_pb_set_time(mprof_pb *pb, int64_t time_nanos, int64_t duration_nanos);
MPROF_HIDDEN void mprof_pb_add_comment(mprof_pb *pb, const char *comment);
MPROF_HIDDEN void mprof_pb_set_drop_frames(mprof_pb *pb, const char *regex);
/* Index into sample_types of the type a viewer should show by default. */
MPROF_HIDDEN void mprof_pb_set_default_sample_type(mprof_pb *pb, int type_index);
/* Symbolizes, encodes, gzips and writes to fd.  0 or -1. */
MPROF_HIDDEN int mprof_pb_write(mprof_pb *pb, int fd);
MPROF_HIDDEN void mprof_pb_free(mprof_pb *pb);

#endif /* MPROF_ENCODE_PPROF_H */
