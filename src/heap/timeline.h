/*
 * The memory timeline (timeline.c): the estimated bytes and objects in use
 * and the bytes allocated since start, recorded while the program runs, so
 * that the heap profile can carry memory over time (docs/report.md) at a
 * bounded cost whatever the run's length.
 *
 * Invariants:
 *
 *  1. Bounded memory: one ring of MPROF_TIMELINE points (32 bytes each),
 *     taken from the arena once at start; nothing else, ever.  When it is
 *     full, each pair of neighbouring points becomes the one of the two
 *     with more bytes in use (so a short peak is never decimated away),
 *     and the interval between points doubles: a week-long run keeps its
 *     whole span in the ring, at coarser spacing.
 *  2. Bounded cost: a point is due once per interval (10 ms at first).
 *     The check is made where the in-use estimate is moved into its shared
 *     total (peak.h, every few samples of a thread: no timer, no thread of
 *     its own), and costs one clock read and one load; a thread that finds
 *     the ring being written skips the point instead of waiting.
 *  3. Signal and fork safe: the ring is written under a try-lock (a
 *     thread's lock token), never waited for by a writer, so an allocation
 *     from a signal handler that interrupts a writer skips the point.  A
 *     forked child whose fork interrupted a writer of another thread
 *     empties the ring (a decimation may have been half done) and keeps
 *     recording; the child's points start again.
 */
#ifndef MPROF_HEAP_TIMELINE_H
#define MPROF_HEAP_TIMELINE_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

struct mprof_fork_repair;

typedef struct mprof_timeline_point {
    int64_t mono_ns;       /* CLOCK_MONOTONIC */
    int64_t inuse_bytes;   /* estimates, as peak.h's total */
    int64_t inuse_objects;
    int64_t alloc_bytes;   /* since start */
} mprof_timeline_point;

/* Start-up: points is MPROF_TIMELINE (0: off). */
MPROF_HIDDEN void mprof_timeline_init(long points);

/* The estimates now, from the flush that moved them (invariant 2); force
 * records a point even before it is due (the profile's last point). */
MPROF_HIDDEN void mprof_timeline_note(int64_t inuse_bytes, int64_t inuse_objects,
                                      int64_t alloc_bytes, int force);

/*
 * Copies up to cap points, oldest first, into out; *every_ns gets the
 * interval now and *t0_wall_ns / *t0_mono_ns the start (wall and monotonic
 * clocks), so that a point's time is t0_wall + (mono - t0_mono).  Returns
 * the number copied; 0 when off, or when the ring could not be read in a
 * bounded wait.
 */
MPROF_HIDDEN size_t mprof_timeline_copy(mprof_timeline_point *out, size_t cap, int64_t *every_ns,
                                        int64_t *t0_wall_ns, int64_t *t0_mono_ns);

/* The ring's size in points (0: off). */
MPROF_HIDDEN size_t mprof_timeline_capacity(void);

/* A forked child's repair (invariant 3). */
MPROF_HIDDEN void mprof_timeline_repair(uint32_t me, struct mprof_fork_repair *r);

#endif /* MPROF_HEAP_TIMELINE_H */
