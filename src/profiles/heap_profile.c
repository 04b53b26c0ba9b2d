/*
 * The heap profile as pprof: the buckets of the sampler turned into
 * samples with Go's four value types, unsampled, symbolized, written.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "profiles/heap_profile.h"
#include "heap/sampler.h"
#include "shared/pprof_fields.h"


static const char *const heap_sample_types[] = {
    "alloc_objects", "count", "alloc_space", "bytes",
    "inuse_objects", "count", "inuse_space", "bytes",
};

static int64_t round_estimate(double x)
{
    /* Float sums of weights can land a hair below zero once everything is
     * freed; in-use is never negative. */
    if (x < 0.5)
        return 0;
    return (int64_t)llround(x);
}

mprof_pb *mprof_heap_pb_new(int default_type_index)
{
    long rate = mprof_get_rate();
    mprof_pb *pb = mprof_pb_new(heap_sample_types, 4, "space", "bytes", rate > 0 ? rate : 0);
    if (pb == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    mprof_pb_set_drop_frames(pb, MPROF_HEAP_DROP_FRAMES);
    mprof_pb_set_default_sample_type(pb, default_type_index);
    return pb;
}

void mprof_heap_pb_add(mprof_pb *pb, const mprof_mem_record *r, const int64_t values[4])
{
    /* The "bytes" label is the mean block size of the site (exact when the
     * site always asks for the same size), which is what -tagfocus=bytes
     * users filter on; the bucket's size class is only a grouping key. */
    int64_t mean = r->alloc_objects > 0 ? r->alloc_bytes / r->alloc_objects : (int64_t)r->size;
    mprof_label label = {.key = "bytes", .str = NULL, .num = mean, .num_unit = "bytes"};
    mprof_pb_add_sample(pb, r->stack, r->nstack, values, &label, 1);
}

static void add_bucket(const mprof_mem_record *r, void *arg)
{
    int all_freed = r->alloc_objects == r->free_objects;
    int64_t values[4] = {
        round_estimate(r->est_alloc_objects),
        round_estimate(r->est_alloc_bytes),
        all_freed ? 0 : round_estimate(r->est_alloc_objects - r->est_free_objects),
        all_freed ? 0 : round_estimate(r->est_alloc_bytes - r->est_free_bytes),
    };
    mprof_heap_pb_add(arg, r, values);
}

int mprof_heap_write_fd(int fd, const char *default_type)
{
    mprof_guard_enter();
    int rc = -1;
    mprof_pb *pb = mprof_heap_pb_new(
        default_type && strcmp(default_type, "alloc_space") == 0 ? MPROF_HEAP_ALLOC_SPACE
                                                                   : MPROF_HEAP_INUSE_SPACE);
    if (pb == NULL)
        goto out;
    char comment[96];
    snprintf(comment, sizeof comment, "mprof %s heap profile, sampling rate %ld bytes",
             MPROF_VERSION, mprof_get_rate());
    mprof_pb_add_comment(pb, comment);
    if (mprof_heap_snapshot(add_bucket, pb, 1) == 0)
        rc = mprof_pb_write(pb, fd);
    mprof_pb_free(pb);
out:
    mprof_guard_leave();
    return rc;
}

int mprof_write_heap_profile_fd(int fd) { return mprof_heap_write_fd(fd, "inuse_space"); }
int mprof_write_allocs_profile_fd(int fd) { return mprof_heap_write_fd(fd, "alloc_space"); }

static int write_inuse(int fd, void *arg)
{
    (void)arg;
    return mprof_heap_write_fd(fd, "inuse_space");
}

int mprof_write_heap_profile(const char *pattern)
{
    char path[PATH_MAX];
    if (pattern == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (mprof_expand_path(pattern, path, sizeof path) != 0)
        return -1;
    mprof_guard_enter();
    int rc = mprof_write_file_atomic(path, write_inuse, NULL);
    mprof_guard_leave();
    return rc;
}

void mprof_heap_write_at_exit(void)
{
    const char *pattern = mprof_getenv("MPROF_HEAP");
    if (pattern != NULL && *pattern != '\0')
        (void)mprof_write_output("heap profile", "MPROF_HEAP", pattern, MPROF_OUTPUT_PPROF,
                                 write_inuse, NULL);
}
