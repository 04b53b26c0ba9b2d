/*
 * The peak heap: the running in-use estimate, its high-water mark, and the
 * captures of the buckets at each new peak (what it owns and its
 * invariants: peak.h).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/options.h"
#include "core/os.h"
#include "core/spinlock.h"
#include "heap/buckets.h"
#include "heap/peak.h"
#include "heap/timeline.h"

__thread struct mprof_peak_pending mprof_tls_inuse_pending
    __attribute__((tls_model("initial-exec")));

/* The smallest step: a few samples' worth at rate 1 too. */
#define PEAK_MIN_STEP ((int64_t)256 << 10)

static _Atomic int64_t inuse_total;   /* flushed estimate, weighted bytes */
static _Atomic int64_t inuse_objects; /* flushed estimates for the timeline */
static _Atomic int64_t allocated_total;
static _Atomic int64_t high_water;    /* largest inuse_total ever */
static _Atomic int64_t trigger;       /* a flush above this captures */

struct capture {
    _Atomic int readers;          /* pinned by a reader copying it out */
    size_t cap, n;                /* room and buckets in it */
    int64_t bytes, wall_ns;       /* the estimate at the capture, and when */
    struct mprof_bucket_now e[];
};

static struct capture *_Atomic published;  /* NULL before the first capture */
static struct capture *spare;             /* owned by the capturing thread */
static _Atomic uint32_t capturing;        /* lock token of the capturing thread, 0 */
/* The buffer this thread has pinned, NULL: a forked child keeps the pin of
 * its own interrupted read and drops those of lost threads. */
static __thread struct capture *tls_pinned;

/* A buffer for at least n buckets: the spare if it has room, else a new
 * one from the arena (the old spare is abandoned: buffers at least double,
 * so the abandoned ones add up to less than the live ones). */
static struct capture *capture_buffer(size_t n)
{
    if (spare != NULL && spare->cap >= n)
        return spare;
    size_t cap = spare != NULL && spare->cap * 2 > n ? spare->cap * 2 : n + n / 2 + 64;
    struct capture *c = mprof_arena_alloc(sizeof *c + cap * sizeof c->e[0]);
    if (c == NULL)
        return NULL;
    c->cap = cap;
    spare = c;
    return c;
}

static void capture(int64_t total)
{
    uint32_t me = mprof_lock_token(), free_word = 0;
    if (!atomic_compare_exchange_strong(&capturing, &free_word, me))
        return; /* another thread is capturing a peak as high */
    struct capture *c = capture_buffer(mprof_buckets_count());
    if (c != NULL && atomic_load(&c->readers) == 0) {
        size_t n = mprof_buckets_capture(c->e, c->cap);
        if (n <= c->cap) {
            c->n = n;
            c->bytes = total;
            c->wall_ns = mprof_wall_ns();
            struct capture *old = atomic_exchange_explicit(&published, c, memory_order_acq_rel);
            spare = old;
            int64_t margin = total / 32, step = atomic_load(&mprof_hot.peak_step);
            if (margin < step)
                margin = step;
            atomic_store(&trigger, total + margin);
            /* The step grows with the peak, so that the shared total is
             * written about once per 1/512 of the heap per thread. */
            int64_t nstep = total / 512;
            if (nstep > step)
                atomic_store_explicit(&mprof_hot.peak_step, nstep, memory_order_relaxed);
        }
        /* else buckets appeared during the walk: the next flush retries */
    }
    atomic_store_explicit(&capturing, 0, memory_order_release);
}

void mprof_peak_flush(struct mprof_peak_pending pending, int grew)
{
    int64_t total =
        atomic_fetch_add_explicit(&inuse_total, pending.bytes, memory_order_relaxed) + pending.bytes;
    int64_t objects = atomic_fetch_add_explicit(&inuse_objects, pending.objects,
                                                memory_order_relaxed) +
                      pending.objects;
    int64_t allocated = atomic_fetch_add_explicit(&allocated_total, pending.allocated,
                                                  memory_order_relaxed) +
                        pending.allocated;
    /* Here, every few samples of a thread, and not on a timer of its own
     * (timeline.h, invariant 2). */
    mprof_timeline_note(total, objects, allocated, 0);
    if (!grew)
        return;
    int64_t hw = atomic_load_explicit(&high_water, memory_order_relaxed);
    while (total > hw &&
           !atomic_compare_exchange_weak_explicit(&high_water, &hw, total, memory_order_relaxed,
                                                  memory_order_relaxed)) {
    }
    if (total > atomic_load_explicit(&trigger, memory_order_relaxed))
        capture(total);
}

void mprof_peak_thread_exit(void)
{
    struct mprof_peak_pending p = mprof_tls_inuse_pending;
    mprof_tls_inuse_pending = (struct mprof_peak_pending){0, 0, 0};
    if (p.bytes != 0 || p.objects != 0 || p.allocated != 0)
        mprof_peak_flush(p, p.bytes > 0);
}

void mprof_peak_timeline_point(void)
{
    mprof_timeline_note(atomic_load(&inuse_total), atomic_load(&inuse_objects),
                        atomic_load(&allocated_total), 1);
}

void mprof_peak_stats(int64_t *inuse, int64_t *hw, int64_t *captured)
{
    *inuse = atomic_load(&inuse_total);
    *hw = atomic_load(&high_water);
    struct capture *c = atomic_load(&published);
    *captured = c != NULL ? c->bytes : 0;
}

int mprof_peak_snapshot(mprof_bucket_fn fn, void *arg, int64_t *bytes, int64_t *wall_ns)
{
    *bytes = *wall_ns = 0;
    mprof_guard_enter();
    /* Pin the published capture (invariant 3): a capture never fills a
     * pinned buffer, so once the pin holds on the buffer still published
     * after it, its contents stay as they are. */
    struct capture *c;
    for (;;) {
        c = atomic_load_explicit(&published, memory_order_acquire);
        if (c == NULL)
            break;
        tls_pinned = c;
        atomic_fetch_add(&c->readers, 1);
        if (atomic_load_explicit(&published, memory_order_acquire) == c)
            break;
        atomic_fetch_sub(&c->readers, 1);
        tls_pinned = NULL;
    }
    if (c == NULL) {
        mprof_guard_leave();
        return 0;
    }
    size_t n = c->n;
    struct mprof_bucket_now *copy = n ? malloc(n * sizeof *copy) : NULL;
    if (copy != NULL)
        memcpy(copy, c->e, n * sizeof *copy);
    *bytes = c->bytes;
    *wall_ns = c->wall_ns;
    atomic_fetch_sub(&c->readers, 1);
    tls_pinned = NULL;
    if (n != 0 && copy == NULL) {
        mprof_guard_leave();
        errno = ENOMEM;
        return -1;
    }
    mprof_mem_record *r = malloc(sizeof *r);
    if (r == NULL) {
        free(copy);
        mprof_guard_leave();
        errno = ENOMEM;
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const struct mprof_bucket_now *e = &copy[i];
        const struct mprof_bucket *b = e->bucket;
        memset(r, 0, sizeof *r);
        r->alloc_bytes = (int64_t)e->alloc_bytes;
        r->free_bytes = (int64_t)e->free_bytes;
        r->alloc_objects = (int64_t)e->allocs;
        r->free_objects = (int64_t)e->frees;
        r->size = b->size;
        r->est_alloc_objects = e->alloc_weight;
        r->est_free_objects = e->free_weight;
        r->est_alloc_bytes = e->alloc_wbytes;
        r->est_free_bytes = e->free_wbytes;
        r->nstack = b->nstack; /* never changes (buckets.h, invariant 1) */
        memcpy(r->stack, b->stack, (size_t)b->nstack * sizeof b->stack[0]);
        fn(r, b->labels, arg);
    }
    free(r);
    free(copy);
    mprof_guard_leave();
    return 0;
}

void mprof_peak_init(long rate)
{
    /* Four samples' worth of weighted bytes at the rate, at least 256 KiB:
     * the shared total is written about every fourth sample. */
    int64_t step = rate > 0 && rate < ((int64_t)1 << 40) ? 4 * (int64_t)rate : PEAK_MIN_STEP;
    if (step < PEAK_MIN_STEP)
        step = PEAK_MIN_STEP;
    atomic_store(&mprof_hot.peak_step, step);
    /* The first capture comes early, so that a small program has a peak
     * profile too. */
    atomic_store(&trigger, step);
    mprof_timeline_init(mprof_option_long(MPROF_OPT_TIMELINE));
}

void mprof_peak_repair(uint32_t me, struct mprof_fork_repair *r)
{
    mprof_timeline_repair(me, r);
    uint32_t owner = atomic_load(&capturing);
    if (owner == me) {
        r->held_here++;
    } else if (owner != 0) {
        /* A lost capture may have half filled the spare: it is not
         * published, and is written again whole by the next one. */
        atomic_store(&capturing, 0);
        r->lost_updates++;
    }
    /* Pins of lost readers would keep the buffers from ever being
     * refilled. */
    struct capture *c = atomic_load(&published);
    if (c != NULL)
        atomic_store(&c->readers, c == tls_pinned);
    if (spare != NULL && spare != c)
        atomic_store(&spare->readers, spare == tls_pinned);
}
