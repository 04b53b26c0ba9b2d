/*
 * Buckets and the three-cycle heap accounting (buckets.c), after Go's
 * runtime/mprof.go: the table of buckets keyed by (stack, size class),
 * each bucket's per-thread rings of per-cycle counts, the folding of those
 * rings into published totals (mprof_next_cycle, mprof_flush), the readers
 * of the totals (mprof_mem_profile, mprof_heap_snapshot, the statistics'
 * sums), the tap that sees every counted event, and the buckets' share of
 * fork.  Counting an event is inline here, into the sampler's paths
 * (sampler.c, live_table.c); finding or creating a bucket is out of line
 * (mprof_stack_bucket).  The locks of src/heap and their
 * order: sampler.h.
 *
 * Invariants:
 *
 *  1. Buckets are never freed or unlinked.  A bucket's hash, size, nstack
 *     and stack are written before it is published in its hash chain with
 *     a release store, and never change after: lookups take no lock, and a
 *     pointer to a bucket or to its stack stays valid for good.
 *  2. Hash chain i belongs to stripe i % BUCKET_STRIPES.  The stripe's lock
 *     serializes insertions into its chains (a bucket is created only
 *     under it, after a second lookup) and guards the stripe's list of all
 *     its buckets (bucket_totals.all_next).
 *  3. A bucket's memory is, in this order, each on cache lines of its own:
 *     its totals, its COUNT_SHARDS count shards, the bucket itself.
 *     bucket_shards and bucket_totals find them from the bucket's address
 *     without a load.
 *  4. Each thread counts in one count shard of every bucket, handed out
 *     round robin at its first sample: with up to COUNT_SHARDS threads no
 *     two threads write the same count line.  A shard is a ring of three
 *     slots, one cache line each: future[k % 3] holds cycle k's counts,
 *     for k = C, C+1, C+2.
 *  5. A slot's counts are read and written only under the slot's own lock,
 *     the top bit (SLOT_LOCK) of its allocation count; the rest of that
 *     word is the count, which may be read without the lock.
 *  6. The cycle protocol of Go's memRecord: allocations and explicit frees
 *     are counted in cycle C+2, frees found by a collector's sweep in C+1,
 *     C being mprof_hot.profile_cycle.  An event reads C, locks the slot of
 *     C + ahead, and reads C again under the lock, starting over if it
 *     moved: an event is counted in the slot of the cycle that was current
 *     while it held that slot's lock.
 *  7. C changes only in mprof_next_cycle, under cycle_lock, by one, modulo
 *     CYCLE_WRAP (a multiple of 3, so that (C+k) % 3 stays continuous).
 *     mprof_flush folds slot C % 3 of every ring into the bucket's
 *     `active` at most once per cycle (profile_cycle_flushed), under
 *     cycle_lock and each slot's lock in turn: an event still holding a
 *     slot's lock belongs to cycle C and is added before the fold; one that
 *     gets it after reads the new C and goes to a later slot.  So no event
 *     lands in a slot after the slot was published and reused.
 *  8. `active` holds only published counts.  It is written (folded) under
 *     cycle_lock and its bucket's stripe lock, so it is read under either.
 *     Until mprof_next_cycle is first called (cycles_driven_by_gc), every
 *     read first folds all three slots, which is exact for a program whose
 *     frees are never late; once a collector drives the cycles, a read
 *     completes at most the pending flush and publishes nothing newer.
 */
#ifndef MPROF_BUCKETS_H
#define MPROF_BUCKETS_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/core.h"
#include "core/spinlock.h"
#include "heap/peak.h"
#include "heap/sampler.h"

/*
 * Fetches the line holding p in a state ready for writing (PREFETCHW), so
 * that the lock exchange or store that follows needs no second trip; a
 * plain prefetch on a processor without the instruction (CPUID says so;
 * some early x86-64 processors lack it).
 */
static inline void prefetch_for_write(const void *p)
{
    if (MPROF_LIKELY(mprof_hot.have_prefetchw))
        __asm__ volatile("prefetchw %0" : : "m"(*(const char *)p));
    else
        __builtin_prefetch(p, 1);
}

/*
 * A bucket: what the lookup compares, on the fewest cache lines (a stack of
 * up to four frames fits in the first).  Its counts, touched at other times,
 * sit in front of it (see bucket_shards and bucket_totals), so that looking
 * a bucket up costs one or two lines, not the four it took when the counts
 * came first.
 */
struct mprof_bucket {
    struct mprof_bucket *hash_next; /* next in the hash chain */
    uint64_t hash;
    size_t size;
    int nstack;
    uint32_t labels; /* the label set's id (labels.h), 0: none; part of the key */
    uintptr_t stack[];
};

#define COUNT_SHARDS 4

/*
 * One cycle's counts in one thread's ring: one cache line, its lock
 * included.  The lock is the top bit of the allocation count, which never
 * gets near 2^63: the acquiring exchange brings the line itself.
 */
#define SLOT_LOCK ((uint64_t)1 << 63)
struct ring_slot {
    _Atomic uint64_t allocs_locked; /* allocations; top bit: the slot's lock */
    uint64_t frees;
    uint64_t alloc_bytes, free_bytes;
    double alloc_weight, free_weight;
    double alloc_wbytes, free_wbytes;
} __attribute__((aligned(64)));

/*
 * One thread's lifetime counts of one bucket (the lifetime profile): the
 * sampled frees whose block's birth is known (blocks with a header), and
 * of those the ones freed within the short-lived threshold.  One line, its
 * lock the top bit of the measured count, as a ring slot's.  Cumulative:
 * lifetimes are not part of the cycle protocol (a collector's late frees
 * would only lengthen them, which is what they are).
 */
struct life_slot {
    _Atomic uint64_t measured_locked; /* frees measured; top bit: the lock */
    uint64_t short_frees;
    double measured_weight, measured_wbytes; /* estimates of the frees measured */
    double short_weight, short_wbytes;       /* ... of the short-lived ones */
    double life_wns;                         /* sum of weight * lifetime in ns */
} __attribute__((aligned(64)));

/* One thread's counts of one bucket: the ring, one line per cycle, and its
 * lifetime counts. */
struct count_shard {
    struct ring_slot future[3];
    struct life_slot life;
};

/* The count lock (a ring slot's or a life slot's) this thread holds, or
 * NULL: a thread holds at most one at a time.  A lock bit has no room for
 * an owner, and a forked child must tell its own thread's held lock from
 * those of the threads fork left behind (mprof_buckets_repair). */
MPROF_HIDDEN extern __thread _Atomic uint64_t *mprof_tls_held_count_lock
    __attribute__((tls_model("initial-exec")));

/* Locks the count word w (its top bit, SLOT_LOCK); returns the count in it.
 * Spins like spin_lock. */
static inline uint64_t count_lock(_Atomic uint64_t *w)
{
    uint64_t old = atomic_fetch_or_explicit(w, SLOT_LOCK, memory_order_acquire);
    if (MPROF_UNLIKELY(old & SLOT_LOCK)) {
        for (int rounds = 0;; mprof_spin_backoff(&rounds)) {
            if (!(atomic_load_explicit(w, memory_order_relaxed) & SLOT_LOCK)) {
                old = atomic_fetch_or_explicit(w, SLOT_LOCK, memory_order_acquire);
                if (!(old & SLOT_LOCK))
                    break;
            }
        }
    }
    mprof_tls_held_count_lock = w;
    return old;
}

/* Unlocks w, leaving `count` in it. */
static inline void count_unlock(_Atomic uint64_t *w, uint64_t count)
{
    mprof_tls_held_count_lock = NULL;
    atomic_store_explicit(w, count, memory_order_release);
}

/* Locks slot s; returns its allocation count. */
static inline uint64_t slot_lock(struct ring_slot *s) { return count_lock(&s->allocs_locked); }

/* Unlocks slot s, leaving `allocs` allocations counted in it. */
static inline void slot_unlock(struct ring_slot *s, uint64_t allocs)
{
    count_unlock(&s->allocs_locked, allocs);
}

/*
 * A bucket's memory: its totals, its count shards, then the bucket itself,
 * each on cache lines of its own.  The shards' address follows from the
 * bucket's without a load: a sampled free can start fetching its counts
 * while it is still busy with the live table, instead of first waiting for
 * the bucket's own line.
 */
static inline struct count_shard *bucket_shards(const struct mprof_bucket *b)
{
    return (struct count_shard *)b - COUNT_SHARDS;
}

/* The round-robin counter of count shards, and this thread's shard plus
 * one (0: none yet). */
MPROF_HIDDEN extern _Atomic unsigned mprof_next_count_shard;
MPROF_HIDDEN extern __thread unsigned mprof_tls_count_shard __attribute__((tls_model("initial-exec")));

/* This thread's count shard, handed out round-robin at its first sample. */
static inline unsigned my_count_shard(void)
{
    unsigned s = mprof_tls_count_shard;
    if (MPROF_UNLIKELY(s == 0)) {
        s = atomic_fetch_add_explicit(&mprof_next_count_shard, 1, memory_order_relaxed) % COUNT_SHARDS + 1;
        mprof_tls_count_shard = s;
    }
    return s - 1;
}

static inline uint32_t current_cycle(void)
{
    return atomic_load_explicit(&mprof_hot.profile_cycle, memory_order_relaxed);
}

/* This thread's counts of bucket b. */
static inline struct count_shard *my_counts(const struct mprof_bucket *b)
{
    return &bucket_shards(b)[my_count_shard()];
}

/* Asks for the line an event on c will touch, ahead of time.  c may be
 * anything; a prefetch never faults. */
static inline void prefetch_counts(const struct count_shard *c)
{
    prefetch_for_write(&c->future[(current_cycle() + 2) % 3]);
}

/*
 * Locks the slot of cycle C + ahead in ring c, C as read under that lock
 * (invariant 6 above); returns the slot, *allocs its allocation count.
 */
static inline struct ring_slot *lock_event_slot(struct count_shard *c, unsigned ahead,
                                                uint64_t *allocs)
{
    for (;;) {
        uint32_t cycle = current_cycle();
        struct ring_slot *s = &c->future[(cycle + ahead) % 3];
        *allocs = slot_lock(s);
        if (MPROF_LIKELY(current_cycle() == cycle))
            return s;
        slot_unlock(s, *allocs); /* C moved: not this event's slot */
    }
}

/* The tap's calls (sampler.h), out of line and cold: made only while
 * mprof_hot.tap_on is set, after the event was counted and its slot
 * unlocked. */
MPROF_HIDDEN void mprof_tap_alloc(uintptr_t addr, size_t size, const uintptr_t *stack, int depth)
    __attribute__((cold));
MPROF_HIDDEN void mprof_tap_free(uintptr_t addr, size_t size, int swept) __attribute__((cold));

/*
 * Counts a sampled allocation of bucket b at addr, and hands it to the tap
 * (the allocation trace, when on) with its stack.
 */
static inline void count_alloc(struct mprof_bucket *b, uintptr_t addr, size_t size, double w,
                               const uintptr_t *stack, int depth)
{
    uint64_t allocs;
    struct ring_slot *c = lock_event_slot(my_counts(b), 2, &allocs);
    c->alloc_bytes += size;
    c->alloc_weight += w;
    c->alloc_wbytes += w * (double)size;
    slot_unlock(c, allocs + 1);
    peak_note(w, size, 1); /* after the unlock: it may capture */
    if (MPROF_UNLIKELY(mprof_heap_tap_on()))
        mprof_tap_alloc(addr, size, stack, depth);
}

/* Counts the free of a block of bucket b at addr, and traces it. */
static inline void count_free(struct mprof_bucket *b, uintptr_t addr, size_t size, double w,
                              int swept_by_gc)
{
    uint64_t allocs;
    struct ring_slot *c = lock_event_slot(my_counts(b), swept_by_gc ? 1 : 2, &allocs);
    c->frees++;
    c->free_bytes += size;
    c->free_weight += w;
    c->free_wbytes += w * (double)size;
    slot_unlock(c, allocs);
    peak_note(w, size, 0);
    if (MPROF_UNLIKELY(mprof_heap_tap_on()))
        mprof_tap_free(addr, size, swept_by_gc);
}

/* A bucket's counts as they stand now, published and pending alike. */
struct mprof_bucket_now {
    const struct mprof_bucket *bucket;
    uint64_t allocs, frees, alloc_bytes, free_bytes;
    double alloc_weight, free_weight, alloc_wbytes, free_wbytes;
};

/* The peak's capture (peak.h, invariant 2): every bucket with bytes in use
 * now, into out[cap]; returns how many there were (more than cap: the rest
 * were left out).  Takes each stripe's lock and each slot's in turn; the
 * caller holds none of the heap's locks. */
MPROF_HIDDEN size_t mprof_buckets_capture(struct mprof_bucket_now *out, size_t cap);

/* Counts the measured lifetime of a sampled block of bucket b freed now
 * (its birth known: header mode). */
static inline void count_lifetime(struct mprof_bucket *b, size_t size, double w, int64_t life_ns)
{
    struct life_slot *l = &my_counts(b)->life;
    uint64_t n = count_lock(&l->measured_locked);
    l->measured_weight += w;
    l->measured_wbytes += w * (double)size;
    l->life_wns += w * (double)life_ns;
    if (life_ns < atomic_load_explicit(&mprof_hot.short_lived_ns, memory_order_relaxed)) {
        l->short_frees++;
        l->short_weight += w;
        l->short_wbytes += w * (double)size;
    }
    count_unlock(&l->measured_locked, n + 1);
}

/* A bucket's lifetime counts, summed over its shards (the writer's). */
struct mprof_bucket_life {
    const struct mprof_bucket *bucket;
    uint64_t measured, short_frees;
    double measured_weight, measured_wbytes, short_weight, short_wbytes, life_wns;
};

/* Every bucket with a measured free, into out[cap]; returns how many there
 * were (more than cap: the rest were left out).  Takes each stripe's lock
 * and each life slot's in turn. */
MPROF_HIDDEN size_t mprof_buckets_lifetimes(struct mprof_bucket_life *out, size_t cap);

/* Finds or creates the bucket of (stk, n, size) with hash h (sampler.c's
 * sample_bucket computes both).  NULL when out of profiler memory. */
MPROF_HIDDEN struct mprof_bucket *mprof_stack_bucket(uint64_t h, const uintptr_t *stk, int n,
                                                     size_t size, uint32_t labels);

/* Maps the hash chains' heads (start-up, before any sample).  0, or -1
 * out of memory: then nothing may be sampled. */
MPROF_HIDDEN int mprof_buckets_init(void);
/* For the statistics: buckets made, and samples counted anywhere
 * (published or still in a ring). */
MPROF_HIDDEN size_t mprof_buckets_count(void);
MPROF_HIDDEN uint64_t mprof_buckets_samples_taken(void);
/* A forked child's repair of cycle_lock, the stripe locks and the slot
 * locks that threads fork left behind were holding (sampler.h, "Fork"). */
MPROF_HIDDEN void mprof_buckets_repair(uint32_t me, struct mprof_fork_repair *r);

#endif /* MPROF_BUCKETS_H */
