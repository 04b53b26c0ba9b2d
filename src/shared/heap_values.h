/*
 * shared: the one rule that turns a heap bucket's unsampled estimates into
 * the four values of a heap profile sample (alloc_objects, alloc_space,
 * inuse_objects, inuse_space), used by the runtime's heap profile, its
 * ?seconds= deltas and the CLI's conversion of a heap dump, so that the
 * three can never disagree.
 *
 * A snapshot (base NULL): each estimate rounded to the nearest integer;
 * in-use is never negative (float sums of weights land a hair below zero
 * once everything is freed) and exactly 0 once every sampled allocation of
 * the bucket was freed.  A delta (base given): every value is second minus
 * first, unclamped, as Go's net/http/pprof computes deltas: in-use may be
 * negative (the live heap shrank).  Estimates beyond what int64 holds (a
 * corrupt or hostile heap dump) saturate instead of wrapping.
 */
#ifndef MPROF_SHARED_HEAP_VALUES_H
#define MPROF_SHARED_HEAP_VALUES_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

typedef struct mprof_heap_estimates {
    double alloc_objects, alloc_bytes, free_objects, free_bytes;
    int all_freed; /* sampled allocations == sampled frees */
} mprof_heap_estimates;

static inline int64_t mprof_heap_round(double x)
{
    if (x != x)
        return 0;
    if (x >= 9.2e18)
        return INT64_MAX;
    if (x <= -9.2e18)
        return INT64_MIN;
    return (int64_t)llround(x);
}

static inline void mprof_heap_values(const mprof_heap_estimates *now,
                                     const mprof_heap_estimates *base, int64_t out[4])
{
    if (base != NULL) {
        double ao = now->alloc_objects - base->alloc_objects;
        double ab = now->alloc_bytes - base->alloc_bytes;
        double fo = now->free_objects - base->free_objects;
        double fb = now->free_bytes - base->free_bytes;
        out[0] = mprof_heap_round(ao);
        out[1] = mprof_heap_round(ab);
        out[2] = mprof_heap_round(ao - fo);
        out[3] = mprof_heap_round(ab - fb);
        return;
    }
    double io = now->alloc_objects - now->free_objects;
    double ib = now->alloc_bytes - now->free_bytes;
    out[0] = now->alloc_objects < 0.5 ? 0 : mprof_heap_round(now->alloc_objects);
    out[1] = now->alloc_bytes < 0.5 ? 0 : mprof_heap_round(now->alloc_bytes);
    out[2] = now->all_freed || io < 0.5 ? 0 : mprof_heap_round(io);
    out[3] = now->all_freed || ib < 0.5 ? 0 : mprof_heap_round(ib);
}

#endif /* MPROF_SHARED_HEAP_VALUES_H */
