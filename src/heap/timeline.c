/*
 * The memory timeline: a bounded ring of (time, in use, objects,
 * allocated) points, decimated when full (what it owns and its
 * invariants: timeline.h).
 */
#include <sched.h>
#include <stdatomic.h>
#include <string.h>

#include "core/os.h"
#include "core/spinlock.h"
#include "heap/sampler.h"
#include "heap/timeline.h"

/* The first interval between points: fine enough for a run of a second,
 * and doubled as often as a long run needs. */
#define TIMELINE_FIRST_EVERY_NS ((int64_t)10 * 1000000)

static mprof_timeline_point *ring; /* cap points, from the arena; NULL: off */
static size_t cap;
static size_t n;                   /* points in it, oldest first; under the lock */
static int64_t every_ns;           /* under the lock */
static _Atomic int64_t next_due_ns; /* monotonic; read without the lock */
static _Atomic uint32_t writer;     /* lock token of the thread writing, 0 */
static int64_t t0_wall, t0_mono;    /* set once at start */

/* Once at start (the tests call it again: it starts from nothing). */
void mprof_timeline_init(long points)
{
    ring = NULL;
    cap = n = 0;
    t0_wall = mprof_wall_ns();
    t0_mono = mprof_mono_ns();
    if (points < 2)
        return; /* off (1 point cannot be halved: treated as off) */
    ring = mprof_arena_alloc((size_t)points * sizeof *ring);
    if (ring == NULL)
        return; /* the arena said why; the profiles simply carry no timeline */
    cap = (size_t)points;
    every_ns = TIMELINE_FIRST_EVERY_NS;
    atomic_store(&next_due_ns, t0_mono);
}

/* Invariant 1: pairs into one point each (the one with more in use), the
 * interval doubled.  cap is even or the last odd point stays alone. */
static void decimate(void)
{
    size_t k = 0;
    for (size_t i = 0; i + 1 < n; i += 2)
        ring[k++] = ring[i].inuse_bytes >= ring[i + 1].inuse_bytes ? ring[i] : ring[i + 1];
    if (n % 2)
        ring[k++] = ring[n - 1];
    n = k;
    every_ns *= 2;
}

void mprof_timeline_note(int64_t inuse_bytes, int64_t inuse_objects, int64_t alloc_bytes,
                         int force)
{
    if (ring == NULL)
        return;
    int64_t now = mprof_mono_ns();
    if (!force && now < atomic_load_explicit(&next_due_ns, memory_order_relaxed))
        return;
    uint32_t me = mprof_lock_token(), free_word = 0;
    if (!atomic_compare_exchange_strong(&writer, &free_word, me))
        return; /* being written (maybe by the frame this signal interrupted) */
    /* A forced point right after a due one replaces nothing: a profile
     * written twice in a row adds points, bounded by the ring like any. */
    if (n == cap)
        decimate();
    ring[n++] = (mprof_timeline_point){now, inuse_bytes, inuse_objects, alloc_bytes};
    atomic_store_explicit(&next_due_ns, now + every_ns, memory_order_relaxed);
    atomic_store_explicit(&writer, 0, memory_order_release);
}

size_t mprof_timeline_copy(mprof_timeline_point *out, size_t outcap, int64_t *every,
                           int64_t *t0_wall_ns, int64_t *t0_mono_ns)
{
    *every = 0;
    *t0_wall_ns = t0_wall;
    *t0_mono_ns = t0_mono;
    if (ring == NULL)
        return 0;
    uint32_t me = mprof_lock_token();
    /* A writer holds the lock for a few stores (a decimation: one pass
     * over the ring), so a short wait sees it free; a bounded one, so
     * that a reader never hangs on a lock a bug left held. */
    for (int tries = 0;; tries++) {
        uint32_t free_word = 0;
        if (atomic_compare_exchange_weak(&writer, &free_word, me))
            break;
        if (tries > 10000)
            return 0;
        sched_yield();
    }
    size_t k = n < outcap ? n : outcap;
    memcpy(out, ring + (n - k), k * sizeof *out);
    *every = every_ns;
    atomic_store_explicit(&writer, 0, memory_order_release);
    return k;
}

size_t mprof_timeline_capacity(void)
{
    return cap;
}

void mprof_timeline_repair(uint32_t me, struct mprof_fork_repair *r)
{
    uint32_t owner = atomic_load(&writer);
    if (owner == me) {
        r->held_here++;
    } else if (owner != 0) {
        n = 0; /* a point or a decimation half written: start again */
        atomic_store(&writer, 0);
        r->lost_updates++;
    }
}
