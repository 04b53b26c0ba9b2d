/*
 * The CPU profiler's sample ring: many writers (SIGPROF handlers on any
 * thread), one reader (the profile writer thread).  Header-only so that the
 * unit test can run the same code under ASan and TSan without the rest of
 * the profiler.
 *
 * Why this design.  A signal handler can interrupt any code, including a
 * thread that holds whatever lock we might take, so writers must never wait
 * for anyone: they claim a slot with one CAS on the head counter and fill it
 * in place (the stack is unwound straight into the slot, no copy), then
 * publish it by storing its sequence number.  Each slot's sequence number
 * says whose turn it is (Vyukov's bounded queue):
 *
 *     seq == pos            free for the writer that claims position pos
 *     seq == pos + 1        written, ready for the reader at position pos
 *     seq == pos + size     released by the reader, free for the next lap
 *
 * A writer that finds the ring full does not wait either: it adds the
 * sample's weight to `dropped`, which the profile reports as a sample of its
 * own.  The reader stops at the first slot not yet published, even if later
 * ones are: a writer interrupted between claim and publish (it cannot be
 * interrupted by another SIGPROF, which is blocked while its handler runs,
 * but it can be descheduled) delays the reader, never corrupts it.
 *
 * All memory is supplied by the caller (arena memory in the profiler), and
 * nothing here calls the C library, so every writer operation is
 * async-signal-safe.
 */
#ifndef MPROF_CPU_RING_H
#define MPROF_CPU_RING_H

#include <stdatomic.h>
#include <stdint.h>

#include "mprof.h"

/* One CPU sample as the handler records it. */
typedef struct mprof_cpu_rec {
    int32_t tid;
    /* Timer expirations this sample stands for: 1 + the overrun the kernel
     * reported (several periods can elapse before the signal is taken:
     * thread CPU timers are checked on the scheduler tick, and a thread that
     * blocks SIGPROF takes them all at once when it unblocks). */
    uint32_t weight;
    uint32_t npcs;
    /* The thread's label set when sampled (heap/labels.h): an id, copied
     * from a thread-local, so the handler neither locks nor allocates; the
     * writer looks its strings up when it drains the record.  It fills the
     * word the alignment of pcs left unused: the record did not grow. */
    uint32_t labels;
    char name[16]; /* the thread's name (comm) when sampled */
    uintptr_t pcs[MPROF_MAX_STACK];
} mprof_cpu_rec;

typedef struct mprof_cpu_slot {
    _Atomic uint64_t seq;
    mprof_cpu_rec rec;
} mprof_cpu_slot;

typedef struct mprof_cpu_ring {
    /* Writers hammer head; keep the reader's line apart from it. */
    _Atomic uint64_t head __attribute__((aligned(64)));
    _Atomic uint64_t tail __attribute__((aligned(64)));
    _Atomic uint64_t dropped;      /* weights of samples lost to a full ring */
    _Atomic uint64_t dropped_recs; /* number of such samples */
    mprof_cpu_slot *slots;
    uint64_t size; /* power of two */
} mprof_cpu_ring;

/* size must be a power of two and at least 2 (with one slot, "published at
 * pos" and "free for pos + size" would be the same sequence number); slots
 * must hold size entries. */
static inline void mprof_cpu_ring_init(mprof_cpu_ring *r, mprof_cpu_slot *slots, uint64_t size)
{
    r->slots = slots;
    r->size = size;
    for (uint64_t i = 0; i < size; i++)
        atomic_store_explicit(&slots[i].seq, i, memory_order_relaxed);
    atomic_store_explicit(&r->head, 0, memory_order_relaxed);
    atomic_store_explicit(&r->tail, 0, memory_order_relaxed);
    atomic_store_explicit(&r->dropped, 0, memory_order_relaxed);
    atomic_store_explicit(&r->dropped_recs, 0, memory_order_relaxed);
    atomic_thread_fence(memory_order_seq_cst);
}

/*
 * Writer: claims the next slot and returns its record to fill, or NULL when
 * the ring is full (the caller then counts the drop with
 * mprof_cpu_ring_drop).  *pos receives the position to pass to
 * mprof_cpu_ring_publish.
 */
static inline mprof_cpu_rec *mprof_cpu_ring_claim(mprof_cpu_ring *r, uint64_t *pos)
{
    uint64_t p = atomic_load_explicit(&r->head, memory_order_relaxed);
    for (;;) {
        mprof_cpu_slot *s = &r->slots[p & (r->size - 1)];
        uint64_t seq = atomic_load_explicit(&s->seq, memory_order_acquire);
        int64_t dif = (int64_t)(seq - p);
        if (dif == 0) {
            if (atomic_compare_exchange_weak_explicit(&r->head, &p, p + 1, memory_order_relaxed,
                                                      memory_order_relaxed)) {
                *pos = p;
                return &s->rec;
            }
            /* p was reloaded by the failed CAS. */
        } else if (dif < 0) {
            return NULL; /* the reader has not released this slot: full */
        } else {
            p = atomic_load_explicit(&r->head, memory_order_relaxed);
        }
    }
}

static inline void mprof_cpu_ring_publish(mprof_cpu_ring *r, uint64_t pos)
{
    atomic_store_explicit(&r->slots[pos & (r->size - 1)].seq, pos + 1, memory_order_release);
}

static inline void mprof_cpu_ring_drop(mprof_cpu_ring *r, uint32_t weight)
{
    atomic_fetch_add_explicit(&r->dropped, weight, memory_order_relaxed);
    atomic_fetch_add_explicit(&r->dropped_recs, 1, memory_order_relaxed);
}

/* Slots claimed and not yet released by the reader (an estimate while
 * writers run). */
static inline uint64_t mprof_cpu_ring_used(mprof_cpu_ring *r)
{
    return atomic_load_explicit(&r->head, memory_order_relaxed) -
           atomic_load_explicit(&r->tail, memory_order_relaxed);
}

/* Reader only: the oldest published record, or NULL. */
static inline const mprof_cpu_rec *mprof_cpu_ring_peek(mprof_cpu_ring *r)
{
    uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    mprof_cpu_slot *s = &r->slots[t & (r->size - 1)];
    if (atomic_load_explicit(&s->seq, memory_order_acquire) != t + 1)
        return NULL;
    return &s->rec;
}

/* Reader only: hands the record returned by peek back to the writers. */
static inline void mprof_cpu_ring_release(mprof_cpu_ring *r)
{
    uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    atomic_store_explicit(&r->slots[t & (r->size - 1)].seq, t + r->size, memory_order_release);
    atomic_store_explicit(&r->tail, t + 1, memory_order_relaxed);
}

#endif /* MPROF_CPU_RING_H */
