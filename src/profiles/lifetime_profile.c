/*
 * The lifetime profile ("lifetime"): for the sampled blocks freed during
 * the run, per allocation site, how many were short-lived (freed within
 * MPROF_SHORT_LIVED_US of their allocation, 1 ms by default), their bytes,
 * how many frees were measured and their total lifetime, so that a site's
 * mean lifetime is lifetime / freed_objects.  It answers "which sites churn
 * short-lived allocations" (heaptrack's temporary allocations, tcmalloc's
 * lifetime profile): each such allocation is a trip through the allocator
 * that a buffer kept or reused would save.
 *
 * All four values are unsampled estimates, as the heap profile's are: each
 * sampled free counts 1 / P(sampled) objects.  A block's birth is known
 * when it carries a header (glibc's allocator, the default); blocks kept in
 * the address table (MPROF_HEADERS=0, another allocator, the embedding
 * API) have none, and are not in this profile: its comment says so.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "encode/pprof.h"
#include "heap/buckets.h"
#include "profiles/labels_pb.h"
#include "heap/sampler.h"
#include "profiles/hooks.h"
#include "profiles/registry.h"
#include "shared/pprof_fields.h"

static const char *const lifetime_types[] = {
    "short_lived_objects", "count", "short_lived_space", "bytes",
    "freed_objects", "count", "lifetime", "nanoseconds",
};

/* Every bucket with a measured free, copied out (malloc'd, guard held);
 * NULL with errno, or with *n = 0 when there is none. */
static struct mprof_bucket_life *collect(size_t *n)
{
    struct mprof_bucket_life *v = NULL;
    for (size_t cap = mprof_buckets_count() + 16;; cap = *n + *n / 4 + 16) {
        free(v);
        v = malloc(cap * sizeof *v);
        if (v == NULL) {
            errno = ENOMEM;
            return NULL;
        }
        *n = mprof_buckets_lifetimes(v, cap);
        if (*n <= cap)
            return v;
    }
}

static int lifetime_write(int fd, const mprof_profile_params *params,
                          const mprof_profile_base *base)
{
    (void)params; /* pprof only: no legacy text form exists for it */
    (void)base;
    size_t n = 0;
    struct mprof_bucket_life *v = collect(&n);
    if (v == NULL)
        return -1;
    mprof_pb *pb = mprof_pb_new(lifetime_types, 4, "space", "bytes", mprof_get_rate());
    if (pb == NULL) {
        free(v);
        errno = ENOMEM;
        return -1;
    }
    mprof_pb_set_drop_frames(pb, MPROF_HEAP_DROP_FRAMES);
    mprof_pb_set_default_sample_type(pb, 0);
    char comment[256];
    snprintf(comment, sizeof comment,
             "mprof %s lifetime profile: sampled frees, short-lived = freed within %lld us; "
             "mean lifetime of a site = lifetime / freed_objects; estimates, sampling rate %ld",
             MPROF_VERSION,
             (long long)(atomic_load(&mprof_hot.short_lived_ns) / 1000), mprof_get_rate());
    mprof_pb_add_comment(pb, comment);
    if (!atomic_load(&mprof_hot.header_mode))
        mprof_pb_add_comment(pb, "blocks carry no header here (MPROF_HEADERS=0 or another "
                                 "allocator): their lifetimes are not measured");
    for (size_t i = 0; i < n; i++) {
        const struct mprof_bucket_life *l = &v[i];
        int64_t values[4] = {(int64_t)(l->short_weight + 0.5), (int64_t)(l->short_wbytes + 0.5),
                             (int64_t)(l->measured_weight + 0.5), (int64_t)(l->life_wns + 0.5)};
        const struct mprof_bucket *b = l->bucket;
        /* Stacks never change (buckets.h, invariant 1). */
        mprof_label label[MPROF_LABEL_MAX];
        int nl = mprof_labels_append(label, 0, b->labels);
        mprof_pb_add_sample(pb, b->stack, b->nstack, values, label, nl);
    }
    free(v);
    int rc = mprof_pb_write(pb, fd);
    int saved = errno;
    mprof_pb_free(pb);
    errno = saved;
    return rc;
}

static long lifetime_count(void)
{
    size_t n = 0;
    struct mprof_bucket_life *v = collect(&n);
    free(v);
    return (long)n;
}

static const mprof_profile lifetime_profile = {
    .name = "lifetime",
    .description = "Per allocation site, the sampled blocks freed during the run: how many "
                   "were short-lived, their bytes, and their total lifetime",
    .what = "lifetime profile",
    .exit_option = MPROF_OPT_LIFETIME,
    .count = lifetime_count,
    .write = lifetime_write,
};

void mprof_lifetime_profile_init(void) { (void)mprof_profile_register(&lifetime_profile); }
