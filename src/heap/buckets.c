/*
 * Buckets and the three-cycle heap accounting, after Go's
 * runtime/mprof.go: what they own and their invariants are in buckets.h.
 *
 * A sampled allocation is charged to a bucket keyed by (stack, size class),
 * found through a chained hash table as in Go's stkbucket.  Buckets are
 * never freed: a program has a bounded set of allocation sites, and a
 * profile must be able to name every site that ever allocated.  A free is
 * charged to the bucket that allocated the block (the sampler finds it in
 * the block's header or in the live table).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "heap/buckets.h"
#include "core/spinlock.h"

/*
 * The counts of one profiling cycle.  Raw counts are what the sampler saw;
 * weights are the unsampled estimates (sum over samples of
 * 1 / (1 - exp(-size / rate)) with the rate in force at that sample).
 */
struct cycle_counts {
    uint64_t allocs, frees;
    uint64_t alloc_bytes, free_bytes;
    double alloc_weight, free_weight; /* estimated objects */
    double alloc_wbytes, free_wbytes; /* estimated bytes: sum of weight * size */
};

/* What a bucket has published: read by profiles, changed by flushes. */
struct bucket_totals {
    struct mprof_bucket *all_next; /* next in the list of all buckets */

    /*
     * The cycle protocol of Go's memRecord (runtime/mprof.go).  A heap profile must
     * be a consistent snapshot, but for a program whose frees are found by
     * a garbage collector's sweep, allocations arrive in real time while
     * the frees of the same objects arrive only after the next collection.
     * Counting both naively skews the profile towards allocations, and can
     * even show a bucket with more frees than allocations (negative in-use)
     * if a free is published before its allocation.
     *
     * So events are accounted to future cycles and published only once all
     * events of a cycle are in:
     *
     *   allocations and explicit frees  -> cycle C+2
     *   frees found by the GC sweep     -> cycle C+1
     *
     * mprof_next_cycle() (at GC mark termination) advances C, and
     * mprof_flush() folds cycle C into `active`.  `future` is a ring
     * indexed by cycle % 3 holding cycles C, C+1, C+2; C itself stays there
     * between next_cycle and flush.
     *
     * A program that frees explicitly never calls either: every write of a
     * profile then folds all three cycles into `active`, which is exact for
     * it because its frees are never late.
     */
    struct cycle_counts active;
} __attribute__((aligned(64)));

/*
 * Locking.  Go guards all buckets with one lock (proflock); with several
 * threads allocating, a single lock on the sampling path made threads sleep
 * on each other (the churn benchmark ran at 1.6 of 2 cores).  Here:
 *
 *  - buckets are split into 64 stripes by hash; a stripe's lock guards its
 *    bucket list and the creation of its buckets.  Lookups take no lock:
 *    hash chains are published with release stores and never shrink;
 *  - the counts of a bucket are kept in COUNT_SHARDS (4) count shards,
 *    each thread using one, assigned round-robin; each slot has a lock of
 *    its own, so with up to four threads a thread counting a sample touches
 *    only lines that no other thread writes, and beyond that the threads
 *    sharing a shard are a quarter of them.
 *
 * Each slot of a thread's ring has its own lock, on its own cache line (so
 * an event touches one line of counts, not two).  An event reads the cycle
 * number C, locks the slot of C+2 (or C+1), and reads C again under the
 * lock: if it moved, the slot is not the event's, and it starts over.  So
 * an event is counted in the slot of the cycle that was current while it
 * held that slot's lock.  mprof_flush() folds the slot of the new C under
 * the same lock: an event holding it then belongs to that very cycle (it
 * read C two cycles ago, or one for a sweep) and has been added by the
 * time the fold gets the lock; an event that gets the lock after the fold
 * reads the new C (the fold follows mprof_next_cycle()) and goes to a later
 * slot.  That is the guarantee Go gets from proflock: no event can land in
 * a ring slot after that slot was published and reused.
 */
#define BUCKET_HASH_SIZE 65536
#define BUCKET_STRIPES 64

static inline struct bucket_totals *bucket_totals(const struct mprof_bucket *b)
{
    return (struct bucket_totals *)bucket_shards(b) - 1;
}

/* The stripe lock guards the stripe's bucket list and bucket creation;
 * the counts are guarded by their shard's lock. */
struct bucket_stripe {
    spinlock lock;
    struct mprof_bucket *buckets; /* every bucket of this stripe */
} __attribute__((aligned(64)));

/* Hash chains are read without a lock (buckets are published with a
 * release store and never removed); chain i belongs to stripe
 * i % BUCKET_STRIPES, whose lock serializes insertions. */
static _Atomic(struct mprof_bucket *) *bucket_hash;
static struct bucket_stripe bucket_stripes[BUCKET_STRIPES];
static _Atomic size_t bucket_count;
_Atomic unsigned mprof_next_count_shard;
__thread unsigned mprof_tls_count_shard __attribute__((tls_model("initial-exec")));

/* Serializes mprof_next_cycle, mprof_flush and readers; never taken on the
 * allocation path.  Order: cycle_lock, then stripes in index order. */
static pthread_mutex_t cycle_lock = PTHREAD_MUTEX_INITIALIZER;
/* Whether this thread holds cycle_lock: a forked child keeps the lock if
 * its one thread's interrupted frame holds it, and makes it anew if a
 * thread fork left behind did. */
static __thread int tls_holds_cycle_lock __attribute__((tls_model("initial-exec")));
__thread _Atomic uint64_t *mprof_tls_held_count_lock __attribute__((tls_model("initial-exec")));

static void cycle_lock_take(void)
{
    pthread_mutex_lock(&cycle_lock);
    tls_holds_cycle_lock = 1;
}

static void cycle_lock_give(void)
{
    tls_holds_cycle_lock = 0;
    pthread_mutex_unlock(&cycle_lock);
}
static int profile_cycle_flushed;      /* future[C] already folded into active; cycle_lock */
static int cycles_driven_by_gc;        /* mprof_next_cycle() was ever called; cycle_lock */

static inline size_t stripe_index(uint64_t hash)
{
    return (hash % BUCKET_HASH_SIZE) % BUCKET_STRIPES;
}

static inline struct bucket_stripe *stripe_of(uint64_t hash)
{
    return &bucket_stripes[stripe_index(hash)];
}

/* The installed tap (sampler.h); read only after tap_on was seen set. */
static _Atomic(const mprof_heap_tap *) heap_tap;

void mprof_heap_tap_install(const mprof_heap_tap *tap)
{
    atomic_store_explicit(&heap_tap, tap, memory_order_release);
}

__attribute__((noinline, cold)) void mprof_tap_alloc(uintptr_t addr, size_t size,
                                                    const uintptr_t *stack, int depth)
{
    const mprof_heap_tap *t = atomic_load_explicit(&heap_tap, memory_order_acquire);
    if (t != NULL)
        t->alloc(addr, size, stack, depth);
}

__attribute__((noinline, cold)) void MPROF_ENTRY_TEXT mprof_tap_free(uintptr_t addr,
                                                                    size_t size, int swept)
{
    const mprof_heap_tap *t = atomic_load_explicit(&heap_tap, memory_order_acquire);
    if (t != NULL)
        t->free(addr, size, swept);
}

/* The ring does not wrap at a power of two; wrap the counter explicitly at a
 * multiple of 3 so that (C+k) % 3 stays continuous across the wrap. */
#define CYCLE_WRAP (3u * (1u << 24))

static inline int bucket_is(const struct mprof_bucket *b, uint64_t h, const uintptr_t *stk, int n,
                            size_t size, uint32_t labels)
{
    if (b->hash != h || b->size != size || b->nstack != n || b->labels != labels)
        return 0;
    for (int i = 0; i < n; i++)
        if (b->stack[i] != stk[i])
            return 0;
    return 1;
}

static struct mprof_bucket *MPROF_ENTRY_TEXT find_bucket(uint64_t h, const uintptr_t *stk, int n,
                                                         size_t size, uint32_t labels)
{
    for (struct mprof_bucket *b =
             atomic_load_explicit(&bucket_hash[h % BUCKET_HASH_SIZE], memory_order_acquire);
         b; b = b->hash_next)
        if (bucket_is(b, h, stk, n, size, labels))
            return b;
    return NULL;
}

/* Finds or creates the bucket.  NULL when out of profiler memory. */
struct mprof_bucket *MPROF_ENTRY_TEXT mprof_stack_bucket(uint64_t h, const uintptr_t *stk, int n,
                                                         size_t size, uint32_t labels)
{
    struct mprof_bucket *b = find_bucket(h, stk, n, size, labels);
    if (b != NULL)
        return b;
    struct bucket_stripe *st = stripe_of(h);
    spin_lock(&st->lock);
    b = find_bucket(h, stk, n, size, labels); /* another thread may have just made it */
    if (b == NULL) {
        /* Totals, shards, bucket (see bucket_shards): over-allocate and
         * align. */
        char *raw = mprof_arena_alloc(63 + sizeof(struct bucket_totals) +
                                      COUNT_SHARDS * sizeof(struct count_shard) + sizeof *b +
                                      (size_t)n * sizeof *stk);
        if (raw == NULL) {
            spin_unlock(&st->lock);
            return NULL;
        }
        struct bucket_totals *t = (struct bucket_totals *)(((uintptr_t)raw + 63) & ~(uintptr_t)63);
        b = (struct mprof_bucket *)((struct count_shard *)(t + 1) + COUNT_SHARDS);
        b->hash = h;
        b->size = size;
        b->nstack = n;
        b->labels = labels;
        memcpy(b->stack, stk, (size_t)n * sizeof *stk);
        size_t slot = h % BUCKET_HASH_SIZE;
        b->hash_next = atomic_load_explicit(&bucket_hash[slot], memory_order_relaxed);
        t->all_next = st->buckets;
        st->buckets = b;
        atomic_store_explicit(&bucket_hash[slot], b, memory_order_release);
        atomic_fetch_add_explicit(&bucket_count, 1, memory_order_relaxed);
    }
    spin_unlock(&st->lock);
    return b;
}

/* Adds the counts of ring slot src into dst, src locked by the caller
 * with `allocs` its allocation count. */
static void add_slot(struct cycle_counts *dst, const struct ring_slot *src, uint64_t allocs)
{
    dst->allocs += allocs;
    dst->frees += src->frees;
    dst->alloc_bytes += src->alloc_bytes;
    dst->free_bytes += src->free_bytes;
    dst->alloc_weight += src->alloc_weight;
    dst->free_weight += src->free_weight;
    dst->alloc_wbytes += src->alloc_wbytes;
    dst->free_wbytes += src->free_wbytes;
}

/* Moves the counts of ring slot src into dst, under src's lock. */
static void fold_slot(struct cycle_counts *dst, struct ring_slot *src)
{
    add_slot(dst, src, slot_lock(src));
    src->frees = src->alloc_bytes = src->free_bytes = 0;
    src->alloc_weight = src->free_weight = src->alloc_wbytes = src->free_wbytes = 0;
    slot_unlock(src, 0);
}

void MPROF_ENTRY_TEXT mprof_account_free(const mprof_live_block *blk, int swept_by_gc)
{
    count_free(blk->bucket, blk->addr, blk->size, blk->weight, swept_by_gc);
}

/* ------------------------------------------------------------ cycles */

/* Folds ring slot `slot` (or all slots when slot < 0) of every bucket into
 * active; cycle_lock held. */
static void fold_cycles_locked(int slot)
{
    for (int i = 0; i < BUCKET_STRIPES; i++) {
        struct bucket_stripe *st = &bucket_stripes[i];
        spin_lock(&st->lock);
        /* Every count lock in turn: an event that read C before
         * mprof_next_cycle() has finished when its lock is free. */
        for (struct mprof_bucket *b = st->buckets; b; b = bucket_totals(b)->all_next) {
            for (int sh = 0; sh < COUNT_SHARDS; sh++) {
                struct count_shard *c = &bucket_shards(b)[sh];
                for (int k = 0; k < 3; k++)
                    if (slot < 0 || k == slot)
                        fold_slot(&bucket_totals(b)->active, &c->future[k]);
            }
        }
        spin_unlock(&st->lock);
    }
}

void mprof_next_cycle(void)
{
    cycle_lock_take();
    cycles_driven_by_gc = 1;
    atomic_store_explicit(&mprof_hot.profile_cycle, (current_cycle() + 1) % CYCLE_WRAP,
                          memory_order_relaxed);
    profile_cycle_flushed = 0;
    cycle_lock_give();
}

void mprof_flush(void)
{
    cycle_lock_take();
    if (!profile_cycle_flushed) {
        fold_cycles_locked((int)(current_cycle() % 3));
        profile_cycle_flushed = 1;
    }
    cycle_lock_give();
}

/* Brings `active` up to date before it is read; cycle_lock held. */
static void publish_for_read_locked(void)
{
    if (cycles_driven_by_gc) {
        /* A collector drives the cycles: as Go's MemProfile, complete a
         * pending flush but publish nothing that is not yet consistent. */
        if (!profile_cycle_flushed) {
            fold_cycles_locked((int)(current_cycle() % 3));
            profile_cycle_flushed = 1;
        }
        return;
    }
    /* Explicit frees only: every event is final as soon as it happens. */
    fold_cycles_locked(-1);
}

static void fill_record(mprof_mem_record *r, const struct mprof_bucket *b)
{
    const struct cycle_counts *a = &bucket_totals(b)->active;
    r->alloc_bytes = (int64_t)a->alloc_bytes;
    r->free_bytes = (int64_t)a->free_bytes;
    r->alloc_objects = (int64_t)a->allocs;
    r->free_objects = (int64_t)a->frees;
    r->size = b->size;
    r->est_alloc_objects = a->alloc_weight;
    r->est_free_objects = a->free_weight;
    r->est_alloc_bytes = a->alloc_wbytes;
    r->est_free_bytes = a->free_wbytes;
    r->nstack = b->nstack;
    memcpy(r->stack, b->stack, (size_t)b->nstack * sizeof b->stack[0]);
    if (b->nstack < MPROF_MAX_STACK)
        r->stack[b->nstack] = 0;
}

static int keep_record(const struct mprof_bucket *b, int include_inuse_zero)
{
    const struct cycle_counts *a = &bucket_totals(b)->active;
    return include_inuse_zero || a->alloc_bytes != a->free_bytes;
}

/* Calls fn for every bucket kept by the filter, each under its stripe's
 * lock; returns how many there were. */
static int for_each_bucket(int include_inuse_zero, void (*fn)(const struct mprof_bucket *, void *),
                           void *arg)
{
    int n = 0;
    for (int i = 0; i < BUCKET_STRIPES; i++) {
        struct bucket_stripe *st = &bucket_stripes[i];
        spin_lock(&st->lock);
        for (struct mprof_bucket *b = st->buckets; b; b = bucket_totals(b)->all_next) {
            if (!keep_record(b, include_inuse_zero))
                continue;
            if (fn)
                fn(b, arg);
            n++;
        }
        spin_unlock(&st->lock);
    }
    return n;
}

struct copy_state {
    mprof_mem_record *recs;
    uint32_t *labels; /* NULL, or each record's label set */
    int cap, used;
};

static void copy_bucket(const struct mprof_bucket *b, void *arg)
{
    struct copy_state *cs = arg;
    if (cs->used < cs->cap) {
        if (cs->labels != NULL)
            cs->labels[cs->used] = b->labels;
        fill_record(&cs->recs[cs->used++], b);
    }
}

/* mprof_mem_profile, with each record's label set into labels[cap] too. */
static int mem_profile(mprof_mem_record *recs, uint32_t *labels, int cap, int include_inuse_zero)
{
    mprof_guard_enter();
    cycle_lock_take();
    publish_for_read_locked();
    int n = for_each_bucket(include_inuse_zero, NULL, NULL);
    if (n <= cap && recs != NULL) {
        /* Buckets may have been added since the count (never removed):
         * copy what fits and report what was copied. */
        struct copy_state cs = {recs, labels, cap, 0};
        for_each_bucket(include_inuse_zero, copy_bucket, &cs);
        n = cs.used;
    }
    cycle_lock_give();
    mprof_guard_leave();
    return n;
}

int mprof_mem_profile(mprof_mem_record *recs, int cap, int include_inuse_zero)
{
    return mem_profile(recs, NULL, cap, include_inuse_zero);
}

int mprof_heap_snapshot(mprof_bucket_fn fn, void *arg, int include_inuse_zero)
{
    mprof_guard_enter();
    mprof_mem_record *recs = NULL;
    uint32_t *labels = NULL;
    int n = 0;
    for (int cap = 64;; ) {
        n = mem_profile(recs, labels, cap, include_inuse_zero);
        if (recs != NULL && n <= cap)
            break;
        free(recs);
        free(labels);
        cap = n + n / 4 + 16;
        recs = malloc((size_t)cap * sizeof *recs);
        labels = malloc((size_t)cap * sizeof *labels);
        if (recs == NULL || labels == NULL) {
            free(recs);
            free(labels);
            mprof_guard_leave();
            errno = ENOMEM;
            return -1;
        }
    }
    for (int i = 0; i < n; i++)
        fn(&recs[i], labels[i], arg);
    free(recs);
    free(labels);
    mprof_guard_leave();
    return 0;
}

/* ------------------------------------------------------------ peak */

size_t mprof_buckets_capture(struct mprof_bucket_now *out, size_t cap)
{
    size_t n = 0;
    for (int i = 0; i < BUCKET_STRIPES; i++) {
        struct bucket_stripe *st = &bucket_stripes[i];
        spin_lock(&st->lock);
        for (struct mprof_bucket *b = st->buckets; b; b = bucket_totals(b)->all_next) {
            /* active is read under the stripe lock (invariant 8), each
             * slot under its own lock (invariant 5). */
            struct cycle_counts t = bucket_totals(b)->active;
            for (int sh = 0; sh < COUNT_SHARDS; sh++)
                for (int k = 0; k < 3; k++) {
                    struct ring_slot *s = &bucket_shards(b)[sh].future[k];
                    uint64_t allocs = slot_lock(s);
                    add_slot(&t, s, allocs);
                    slot_unlock(s, allocs);
                }
            if (t.alloc_bytes == t.free_bytes)
                continue;
            if (n < cap)
                out[n] = (struct mprof_bucket_now){b, t.allocs, t.frees, t.alloc_bytes,
                                                   t.free_bytes, t.alloc_weight, t.free_weight,
                                                   t.alloc_wbytes, t.free_wbytes};
            n++;
        }
        spin_unlock(&st->lock);
    }
    return n;
}

/* ------------------------------------------------------------ fork */

/*
 * A forked child's repair (sampler.h, "Fork"), on its one thread, before
 * anything else runs in it.  A stripe lock held by a lost thread guards
 * nothing torn: a bucket is published (hash chain, stripe list) with one
 * store each, after it is complete, so the chains and lists are whole
 * whatever the moment; the lock is freed.  A slot lock held by a lost
 * thread leaves that slot's counts of one event part-added (a few bytes or
 * one object off in one bucket); the lock bit is cleared.  cycle_lock held
 * by a lost thread (a profile write or a collector's cycle): made anew;
 * the fold it was doing may have published part of a cycle early.
 */
void mprof_buckets_repair(uint32_t me, struct mprof_fork_repair *r)
{
    if (tls_holds_cycle_lock) {
        r->held_here++;
    } else if (pthread_mutex_trylock(&cycle_lock) != 0) {
        static const pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
        memcpy(&cycle_lock, &fresh, sizeof fresh);
        r->lost_updates++;
    } else {
        pthread_mutex_unlock(&cycle_lock);
    }
    for (int i = 0; i < BUCKET_STRIPES; i++) {
        uint32_t owner = spin_owner(&bucket_stripes[i].lock);
        if (owner == me) {
            r->held_here++;
        } else if (owner != 0) {
            spin_reset(&bucket_stripes[i].lock);
            r->lost_updates++;
        }
    }
    /* Read-only unless a bit is set: the child's pages stay shared. */
    for (int i = 0; i < BUCKET_STRIPES; i++)
        for (struct mprof_bucket *b = bucket_stripes[i].buckets; b; b = bucket_totals(b)->all_next)
            for (int sh = 0; sh < COUNT_SHARDS; sh++)
                for (int k = 0; k < 4; k++) {
                    struct count_shard *c = &bucket_shards(b)[sh];
                    _Atomic uint64_t *w =
                        k < 3 ? &c->future[k].allocs_locked : &c->life.measured_locked;
                    if (!(atomic_load_explicit(w, memory_order_relaxed) & SLOT_LOCK))
                        continue;
                    if (w == mprof_tls_held_count_lock) {
                        r->held_here++;
                        continue;
                    }
                    atomic_fetch_and_explicit(w, ~SLOT_LOCK, memory_order_relaxed);
                    r->lost_updates++;
                }
}

/* ------------------------------------------------------------ lifetimes */

size_t mprof_buckets_lifetimes(struct mprof_bucket_life *out, size_t cap)
{
    size_t n = 0;
    for (int i = 0; i < BUCKET_STRIPES; i++) {
        struct bucket_stripe *st = &bucket_stripes[i];
        spin_lock(&st->lock);
        for (struct mprof_bucket *b = st->buckets; b; b = bucket_totals(b)->all_next) {
            struct mprof_bucket_life t = {.bucket = b};
            for (int sh = 0; sh < COUNT_SHARDS; sh++) {
                struct life_slot *l = &bucket_shards(b)[sh].life;
                uint64_t measured = count_lock(&l->measured_locked);
                t.measured += measured;
                t.short_frees += l->short_frees;
                t.measured_weight += l->measured_weight;
                t.measured_wbytes += l->measured_wbytes;
                t.short_weight += l->short_weight;
                t.short_wbytes += l->short_wbytes;
                t.life_wns += l->life_wns;
                count_unlock(&l->measured_locked, measured);
            }
            if (t.measured == 0)
                continue;
            if (n < cap)
                out[n] = t;
            n++;
        }
        spin_unlock(&st->lock);
    }
    return n;
}

/* ------------------------------------------------------------ statistics */

size_t mprof_buckets_count(void) { return atomic_load_explicit(&bucket_count, memory_order_relaxed); }

/* Samples taken = allocations counted anywhere: published, or still in a
 * ring.  Summed here rather than kept in a shared counter that every
 * sample would have had to write. */
uint64_t mprof_buckets_samples_taken(void)
{
    uint64_t taken = 0;
    for (int i = 0; i < BUCKET_STRIPES; i++) {
        struct bucket_stripe *st = &bucket_stripes[i];
        spin_lock(&st->lock);
        for (struct mprof_bucket *b = st->buckets; b; b = bucket_totals(b)->all_next) {
            taken += bucket_totals(b)->active.allocs;
            for (int sh = 0; sh < COUNT_SHARDS; sh++) {
                struct count_shard *c = &bucket_shards(b)[sh];
                for (int k = 0; k < 3; k++)
                    taken += atomic_load_explicit(&c->future[k].allocs_locked,
                                                  memory_order_relaxed) &
                             ~SLOT_LOCK;
            }
        }
        spin_unlock(&st->lock);
    }
    return taken;
}

/* ------------------------------------------------------------ start-up */

int mprof_buckets_init(void)
{
    /* The bucket heads are mapped, not touched: only the pages that
     * sampled stacks hash into ever become resident. */
    void *h = mprof_arena_alloc(BUCKET_HASH_SIZE * sizeof(_Atomic(struct mprof_bucket *)));
    if (h == NULL)
        return -1;
    bucket_hash = h;
    return 0;
}
