/*
 * The peak heap (peak.c): a running estimate of the bytes in use, its
 * high-water mark, and a copy of every bucket's counts taken when the
 * estimate reaches a new peak, so that the "peak" profile shows what held
 * the memory at the process' worst moment rather than at its end (what
 * heaptrack and memray show; tcmalloc's peak-heap profile).
 *
 * Invariants:
 *
 *  1. The estimate is the sum, over sampled events, of weight * size
 *     (+ for an allocation, - for its free), rounded to an integer once per
 *     event, so that a block's allocation and free cancel exactly.  Each
 *     thread adds its events to mprof_tls_inuse_pending and moves that
 *     into the shared total only once it exceeds the step (mprof_hot's
 *     peak_step) either way: the shared line is written every few samples,
 *     not every one.  So the total lags the truth by less than the step
 *     per thread, and a thread's pending is flushed when it exits.
 *  2. A copy (a capture) is taken when a flush makes the total exceed the
 *     trigger, by the flushing thread, inside the allocation that did it:
 *     one walk of the buckets under their stripe and slot locks, no
 *     allocation (the copies live in arena memory), at most one thread at
 *     a time (a thread that finds a capture running skips it).  The
 *     trigger is then the new peak plus 1/32 of it (and at least a step),
 *     so captures come at most once per 3% of growth: for a heap that
 *     grows from 1 MiB to 64 GiB, about 350 captures, each costing a read
 *     of every bucket's 12 count slots.  A capture may be up to 3% (plus
 *     the threads' pending) below the true peak.
 *  3. Two capture buffers: the one readers see (published) and a spare
 *     that the next capture fills, then publishes with one store.  A
 *     reader pins the published buffer (its readers count) while copying
 *     it out; a capture whose spare is still pinned by a slow reader of
 *     the previous peak is skipped, and the next flush past the trigger
 *     tries again.
 */
#ifndef MPROF_PEAK_H
#define MPROF_PEAK_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/core.h"
#include "heap/sampler.h"

/* A thread's events not yet in the shared totals (invariant 1): bytes in
 * use, objects in use (each event's weight rounded once, so that an
 * allocation and its free cancel), and bytes allocated.  The last two feed
 * the memory timeline (heap/timeline.h) and ride along with the first. */
struct mprof_peak_pending {
    int64_t bytes, objects, allocated;
};
MPROF_HIDDEN extern __thread struct mprof_peak_pending mprof_tls_inuse_pending
    __attribute__((tls_model("initial-exec")));

/* Moves pending into the shared estimates; grew: it came from an
 * allocation (a new peak may have been reached).  Cold. */
MPROF_HIDDEN void mprof_peak_flush(struct mprof_peak_pending pending, int grew)
    __attribute__((cold));

/* An event of weight w and size bytes, allocation (+) or free (-), into
 * this thread's pending estimates (invariant 1). */
static inline void peak_note(double w, size_t size, int alloc)
{
    struct mprof_peak_pending *p = &mprof_tls_inuse_pending;
    int64_t d = (int64_t)(w * (double)size), o = (int64_t)(w + 0.5);
    p->bytes += alloc ? d : -d;
    p->objects += alloc ? o : -o;
    p->allocated += alloc ? d : 0;
    int64_t step = atomic_load_explicit(&mprof_hot.peak_step, memory_order_relaxed);
    if (MPROF_UNLIKELY(p->bytes >= step || p->bytes <= -step)) {
        mprof_peak_flush(*p, alloc);
        *p = (struct mprof_peak_pending){0, 0, 0};
    }
}

/* The estimate now (flushed part), its high-water mark, and the captured
 * peak's size (0 before the first capture). */
MPROF_HIDDEN void mprof_peak_stats(int64_t *inuse, int64_t *high_water, int64_t *captured);

/*
 * The captured peak: calls fn for every bucket in use at the peak, with
 * its counts as they stood then (allocations and frees counted up to that
 * moment), after copying them out; *bytes gets the estimate at the peak,
 * *wall_ns its time (both 0 and no call when no peak was captured yet).
 * 0, or -1 with errno.  Guard held by the caller or not: it takes it.
 */
MPROF_HIDDEN int mprof_peak_snapshot(mprof_bucket_fn fn, void *arg, int64_t *bytes,
                                     int64_t *wall_ns);

/* The estimates now, as the memory timeline's last point: a profile
 * written says where memory stood when it was written. */
MPROF_HIDDEN void mprof_peak_timeline_point(void);

/* This thread's pending estimate into the total (a thread's exit). */
MPROF_HIDDEN void mprof_peak_thread_exit(void);

/* Start-up (after the rate is known: the step follows it). */
MPROF_HIDDEN void mprof_peak_init(long rate);

/* A forked child's repair (sampler.h, "Fork"): a capture or a read that a
 * lost thread was in the middle of. */
MPROF_HIDDEN void mprof_peak_repair(uint32_t me, struct mprof_fork_repair *r);

#endif /* MPROF_PEAK_H */
