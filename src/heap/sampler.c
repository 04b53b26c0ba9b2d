/*
 * Sampling and buckets: the heart of the heap profiler, after Go's
 * runtime/mprof.go.
 *
 * A sampled allocation is charged to a bucket keyed by (stack, size), found
 * through a chained hash table as in Go's stkbucket.  Buckets are never
 * freed: a program has a bounded set of allocation sites, and a profile
 * must be able to name every site that ever allocated.
 *
 * A free is charged to the bucket that allocated the block.  With glibc's
 * allocator underneath, a sampled block carries its bucket, size and weight
 * in a header (header mode, preload.c); otherwise, and for blocks reported
 * through mprof_record_alloc, the live table below remembers them
 * (address -> bucket, size, weight) until they are freed.
 */
#include <cpuid.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "heap/sampler.h"
#include "heap/header_records.h"
#include "heap/sampler.h"
#include "core/options.h"
#include "core/os.h"
#include "core/spinlock.h"

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

/* With sampling off, a thread still leaves the fast path every this many
 * bytes, so that turning sampling on reaches threads that are running. */
#define OFF_RECHECK_BYTES (16 << 20)

__thread int mprof_tls_guard __attribute__((tls_model("initial-exec")));
__thread int64_t mprof_tls_bytes_until_sample __attribute__((tls_model("initial-exec")));

/* Per-thread state of the generator for sample intervals (core/os.h):
 * cheap, no locks, and seeded per thread so threads do not sample in
 * lockstep. */
static __thread uint64_t tls_rng __attribute__((tls_model("initial-exec")));


/* ------------------------------------------------------------ records */

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
    uintptr_t stack[];
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

/* One thread's counts of one bucket: the ring, one line per cycle. */
struct count_shard {
    struct ring_slot future[3];
};

/* Locks slot s; returns its allocation count.  Spins like spin_lock. */
static inline uint64_t slot_lock(struct ring_slot *s)
{
    uint64_t old = atomic_fetch_or_explicit(&s->allocs_locked, SLOT_LOCK, memory_order_acquire);
    if (MPROF_LIKELY(!(old & SLOT_LOCK)))
        return old;
    for (int rounds = 0;; mprof_spin_backoff(&rounds)) {
        if (!(atomic_load_explicit(&s->allocs_locked, memory_order_relaxed) & SLOT_LOCK)) {
            old = atomic_fetch_or_explicit(&s->allocs_locked, SLOT_LOCK, memory_order_acquire);
            if (!(old & SLOT_LOCK))
                return old;
        }
    }
}

/* Unlocks slot s, leaving `allocs` allocations counted in it. */
static inline void slot_unlock(struct ring_slot *s, uint64_t allocs)
{
    atomic_store_explicit(&s->allocs_locked, allocs, memory_order_release);
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
static _Atomic unsigned next_count_shard;
static __thread unsigned tls_count_shard __attribute__((tls_model("initial-exec")));

/* Serializes mprof_next_cycle, mprof_flush and readers; never taken on the
 * allocation path.  Order: cycle_lock, then stripes in index order. */
static pthread_mutex_t cycle_lock = PTHREAD_MUTEX_INITIALIZER;
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

/* This thread's count shard, handed out round-robin at its first sample. */
static inline unsigned my_count_shard(void)
{
    unsigned s = tls_count_shard;
    if (MPROF_UNLIKELY(s == 0)) {
        s = atomic_fetch_add_explicit(&next_count_shard, 1, memory_order_relaxed) % COUNT_SHARDS + 1;
        tls_count_shard = s;
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
 * (see Locking above); returns the slot, *allocs its allocation count.
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

/* The installed tap (sampler.h); read only after tap_on was seen set. */
static _Atomic(const mprof_heap_tap *) heap_tap;

void mprof_heap_tap_install(const mprof_heap_tap *tap)
{
    atomic_store_explicit(&heap_tap, tap, memory_order_release);
}

static __attribute__((noinline, cold)) void tap_alloc(uintptr_t addr, size_t size,
                                                      const uintptr_t *stack, int depth)
{
    const mprof_heap_tap *t = atomic_load_explicit(&heap_tap, memory_order_acquire);
    if (t != NULL)
        t->alloc(addr, size, stack, depth);
}

static __attribute__((noinline, cold)) void MPROF_ENTRY_TEXT tap_free(uintptr_t addr,
                                                                      size_t size, int swept)
{
    const mprof_heap_tap *t = atomic_load_explicit(&heap_tap, memory_order_acquire);
    if (t != NULL)
        t->free(addr, size, swept);
}

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
    if (MPROF_UNLIKELY(mprof_heap_tap_on()))
        tap_alloc(addr, size, stack, depth);
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
    if (MPROF_UNLIKELY(mprof_heap_tap_on()))
        tap_free(addr, size, swept_by_gc);
}

/* The ring does not wrap at a power of two; wrap the counter explicitly at a
 * multiple of 3 so that (C+k) % 3 stays continuous across the wrap. */
#define CYCLE_WRAP (3u * (1u << 24))

static _Atomic uint64_t samples_dropped;

/* Jenkins one-at-a-time over the words, as Go's stkbucket: the stack's
 * part, then the size's. */
static uint64_t hash_stack_words(const uintptr_t *stk, int n)
{
    uint64_t h = 0;
    for (int i = 0; i < n; i++) {
        h += stk[i];
        h += h << 10;
        h ^= h >> 6;
    }
    return h;
}

static uint64_t hash_with_size(uint64_t h, size_t size)
{
    h += size;
    h += h << 10;
    h ^= h >> 6;
    h += h << 3;
    h ^= h >> 11;
    return h;
}

/*
 * Buckets are keyed by (stack, size class), not by exact size.  Go's
 * buckets are keyed by size too, but Go's sizes are already its size
 * classes; a C program asks for arbitrary sizes, and one site allocating
 * strings of random lengths would otherwise create a bucket per length
 * (tens of thousands in the churn benchmark, megabytes of profiler memory,
 * long hash chains).  Classes are exact multiples of 16 up to 256 bytes,
 * then eight per power of two (at most 12.5% apart).  Byte counts stay
 * exact: each event adds its own size.
 */
static size_t size_class(size_t s, uint32_t *ordinal)
{
    if (s <= 256) {
        *ordinal = (uint32_t)((s + 15) / 16); /* 0..16 */
        return (s + 15) & ~(size_t)15;
    }
    int lg = 63 - __builtin_clzll((unsigned long long)(s - 1));
    size_t step = (size_t)1 << (lg - 3);
    size_t cls = (s + step - 1) & ~(step - 1);
    /* cls / step is 9..16 within a power of two. */
    *ordinal = (uint32_t)(16 + (lg - 8) * 8 + (int)(cls / step - 8));
    return cls;
}

static inline int bucket_is(const struct mprof_bucket *b, uint64_t h, const uintptr_t *stk, int n,
                            size_t size)
{
    if (b->hash != h || b->size != size || b->nstack != n)
        return 0;
    for (int i = 0; i < n; i++)
        if (b->stack[i] != stk[i])
            return 0;
    return 1;
}

static struct mprof_bucket *MPROF_ENTRY_TEXT find_bucket(uint64_t h, const uintptr_t *stk, int n,
                                                         size_t size)
{
    for (struct mprof_bucket *b =
             atomic_load_explicit(&bucket_hash[h % BUCKET_HASH_SIZE], memory_order_acquire);
         b; b = b->hash_next)
        if (bucket_is(b, h, stk, n, size))
            return b;
    return NULL;
}

/* Finds or creates the bucket.  NULL when out of profiler memory. */
static struct mprof_bucket *MPROF_ENTRY_TEXT stack_bucket(uint64_t h, const uintptr_t *stk, int n,
                                                          size_t size)
{
    struct mprof_bucket *b = find_bucket(h, stk, n, size);
    if (b != NULL)
        return b;
    struct bucket_stripe *st = stripe_of(h);
    spin_lock(&st->lock);
    b = find_bucket(h, stk, n, size); /* another thread may have just made it */
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

/* Moves the counts of ring slot src into dst, under src's lock. */
static void fold_slot(struct cycle_counts *dst, struct ring_slot *src)
{
    dst->allocs += slot_lock(src);
    dst->frees += src->frees;
    dst->alloc_bytes += src->alloc_bytes;
    dst->free_bytes += src->free_bytes;
    dst->alloc_weight += src->alloc_weight;
    dst->free_weight += src->free_weight;
    dst->alloc_wbytes += src->alloc_wbytes;
    dst->free_wbytes += src->free_wbytes;
    src->frees = src->alloc_bytes = src->free_bytes = 0;
    src->alloc_weight = src->free_weight = src->alloc_wbytes = src->free_wbytes = 0;
    slot_unlock(src, 0);
}

/* ------------------------------------------------------------ live table */

/*
 * Addresses of sampled blocks still allocated, so that a free can be
 * charged to the bucket that allocated the block: every sampled block in
 * table mode (an allocator other than glibc's underneath, or
 * MPROF_HEADERS=0), and the blocks runtimes report through
 * mprof_record_alloc.
 *
 * Sharded by address hash into 2048 shards, each one cache line holding its
 * lock and room for two blocks.  A sampled allocation or free then touches
 * one line of the table, the line it has to lock anyway.  With the lock on
 * a line of its own and the blocks in a table behind it (as before), a
 * sampled free waited on two or three lines, one after the other: the
 * lock's, the block's, and its neighbour's for the deletion.  Those waits
 * were half the profiler's own time in the churn benchmark, where each
 * line comes back from the L3 cache or from the other core.  At the
 * default rate a program has a few hundred sampled blocks live, well under
 * one per shard even though a thread's blocks crowd into the shards of its
 * regions (see mprof_filter_key): nearly all of them sit in their shard's
 * line.  (With 512 shards, a fifth of the churn benchmark's blocks did not.)
 *
 * Blocks beyond a shard's two go to its overflow table: open addressing
 * (linear probing, backward-shift deletion, so no tombstones accumulate
 * under churn), starting at 16 entries and doubled when a quarter full, so
 * that probe runs stay a slot or two long.  Overflow tables come from the
 * arena, recycled by size (table_pool).  A program with hundreds of
 * thousands of sampled blocks live (rate 1) uses them for nearly all.
 *
 * Everything about an address' place comes from one 64-bit key
 * (mprof_filter_key): its top 11 bits name the shard; the next bits are the
 * entry's table_key, whose top bits are its home in the overflow table (as
 * many as the table needs) and also, with the shard's, its filter slot (as
 * many as the filter has).  So each filter slot belongs to one shard, and
 * its bit is only ever set or cleared under that shard's lock (a word may
 * hold the slots of up to four shards, so bits change with atomic
 * instructions); a table never moves when the filter grows; and all
 * blocks of a shard's overflow table sharing a filter slot sit in one
 * stretch of it, which a free walks anyway: it clears the slot's bit when
 * no other block of the shard (in its line, or in that stretch) has the
 * same slot.
 */
#define LIVE_SHARD_BITS 11
#define LIVE_SHARDS (1 << LIVE_SHARD_BITS)
#define LIVE_MIN_CAPACITY_LOG2 4
/*
 * The filter doubles when a shard holds more than 1/32 of its slots (so
 * that at most a few percent of frees find a bit set by chance), but never
 * for fewer than 8 blocks in a shard: shards hold one or two blocks at the
 * smallest filter, and the fullest of 2048 would otherwise double it for a
 * few hundred blocks live, where a larger filter costs every free of the
 * program more cache misses than the slow paths it saves.
 */
#define FILTER_GROW_SHIFT 5
#define FILTER_GROW_MIN_BLOCKS 8
_Static_assert(MPROF_FILTER_MIN_LOG2 - LIVE_SHARD_BITS >= 2,
               "each filter slot must belong to a single shard");

struct live_shard {
    /* Two blocks, laid out by field so that they and the lock fill one
     * line; addr 0 means empty. */
    uintptr_t addr[2];
    struct mprof_bucket *bucket[2]; /* NULL: pinned (see mprof_live_pin) */
    size_t size[2];
    float weight[2];
    spinlock lock;
    uint32_t overflow_used; /* blocks in the overflow table */
} __attribute__((aligned(64)));
_Static_assert(sizeof(struct live_shard) == 64, "a shard is one cache line");

/* A shard's overflow table.  Read and written under the shard's lock. */
struct live_overflow {
    mprof_live_block *slots;
    unsigned capacity_log2; /* 0 before first use */
    size_t capacity;        /* 1 << capacity_log2, or 0 */
};

static struct live_shard live_shards[LIVE_SHARDS];
static struct live_overflow live_overflow[LIVE_SHARDS];
static _Atomic size_t filter_bytes; /* grown filters, mapped on their own */

/*
 * Overflow tables a shard outgrew, by log2 of their capacity, for the next
 * shard that grows to that size.  Tables come from the arena, not from
 * mmap of their own: tables grow hundreds of times in a program's first
 * seconds, and a munmap in a threaded process stops every other core for a
 * TLB shootdown while mmap and munmap hold the address-space lock its page
 * faults need.  (The churn benchmark made 235 such pairs per run, and
 * twice the context switches of the plain run.)  The arena never gives
 * memory back, so old tables are recycled here instead: since tables
 * double, all of them together stay under twice the largest.
 *
 * The pool lock is taken only by live_grow, under a shard lock: fork
 * (which takes every shard lock first) never finds it held.
 */
#define LIVE_MAX_CAPACITY_LOG2 40
static struct {
    spinlock lock;
    mprof_live_block *spare[LIVE_MAX_CAPACITY_LOG2 + 1]; /* chained through .bucket */
} table_pool;

/* A zeroed table of 2^log2 entries, or NULL. */
static mprof_live_block *table_get(unsigned log2)
{
    size_t bytes = sizeof(mprof_live_block) << log2;
    spin_lock(&table_pool.lock);
    mprof_live_block *t = table_pool.spare[log2];
    if (t != NULL)
        table_pool.spare[log2] = (mprof_live_block *)t->bucket;
    spin_unlock(&table_pool.lock);
    if (t != NULL) {
        memset(t, 0, bytes);
        return t;
    }
    /* Fresh arena memory is zero.  Aligned to a line, so that no entry
     * straddles two. */
    char *raw = mprof_arena_alloc(bytes + 48);
    return raw ? (mprof_live_block *)(((uintptr_t)raw + 63) & ~(uintptr_t)63) : NULL;
}

static void table_put(mprof_live_block *t, unsigned log2)
{
    spin_lock(&table_pool.lock);
    t->bucket = (struct mprof_bucket *)table_pool.spare[log2];
    table_pool.spare[log2] = t;
    spin_unlock(&table_pool.lock);
}

static _Atomic uint64_t initial_filter_words[(1u << MPROF_FILTER_MIN_LOG2) / 64]
    __attribute__((aligned(64)));
/* profile_cycle (C) changes under cycle_lock; the filter word under every
 * shard lock. */
struct mprof_hot mprof_hot = {
    .filter_word = (uintptr_t)initial_filter_words + (64 - MPROF_FILTER_MIN_LOG2),
};

/* The filter in force for a thread holding any shard lock: it changes only
 * under all of them. */
static inline struct mprof_filter locked_filter(void)
{
    return mprof_filter_decode(atomic_load_explicit(&mprof_hot.filter_word, memory_order_relaxed));
}

/* Where an address goes: its shard and its table_key. */
struct live_place {
    struct live_shard *shard;
    uint32_t table_key;
};

static inline struct live_place live_place_of(uintptr_t addr)
{
    uint64_t key = mprof_filter_key(addr);
    struct live_place pl = {&live_shards[key >> (64 - LIVE_SHARD_BITS)],
                            (uint32_t)((key << LIVE_SHARD_BITS) >> 32)};
    return pl;
}

static inline uint32_t table_key_of(uintptr_t addr) { return live_place_of(addr).table_key; }

static inline size_t home_of(uint32_t table_key, unsigned capacity_log2)
{
    return (size_t)(table_key >> (32 - capacity_log2));
}

/* The filter slot of an entry of shard s, for a filter of 2^bits_log2. */
static inline uint64_t slot_of(const struct live_shard *s, uint32_t table_key, unsigned bits_log2)
{
    unsigned key_bits = bits_log2 - LIVE_SHARD_BITS;
    return (uint64_t)(s - live_shards) << key_bits | table_key >> (32 - key_bits);
}

static inline struct live_overflow *overflow_of(const struct live_shard *s)
{
    return &live_overflow[s - live_shards];
}

/* Blocks in s: its line's and its overflow table's.  Under s's lock. */
static inline size_t shard_used(const struct live_shard *s)
{
    return (s->addr[0] != 0) + (s->addr[1] != 0) + s->overflow_used;
}

/*
 * Whether any entry of s's overflow table shares the filter slot of
 * table_key (with `want`, its top key_bits).  They all have homes in the
 * run of indexes whose top bits are the slot's, and sit between its start
 * and the first empty entry after its end.
 */
static int overflow_slot_used(const struct live_shard *s, uint32_t table_key, unsigned bits_log2)
{
    const struct live_overflow *o = overflow_of(s);
    if (s->overflow_used == 0)
        return 0;
    unsigned key_bits = bits_log2 - LIVE_SHARD_BITS, cap_log2 = o->capacity_log2;
    uint32_t want = table_key >> (32 - key_bits);
    size_t mask = o->capacity - 1;
    size_t start, span;
    if (cap_log2 <= key_bits) {
        start = want >> (key_bits - cap_log2);
        span = 1;
    } else {
        start = (size_t)want << (cap_log2 - key_bits);
        span = (size_t)1 << (cap_log2 - key_bits);
    }
    for (size_t walked = 0, j = start; walked < o->capacity; walked++, j = (j + 1) & mask) {
        const mprof_live_block *e = &o->slots[j];
        if (e->addr == 0) {
            if (walked + 1 >= span)
                return 0;
        } else if (e->table_key >> (32 - key_bits) == want) {
            return 1;
        }
    }
    return 0;
}

/* Bit updates: a slot's bit changes only under its shard's lock (or all
 * of them), but a word may hold other shards' slots: so an atomic OR and
 * AND.  Frees read the words without a lock. */
static inline void filter_set(const struct mprof_filter *f, uint64_t slot)
{
    uint64_t bit = (uint64_t)1 << (slot % 64);
    if (!(atomic_load_explicit(&f->words[slot / 64], memory_order_relaxed) & bit))
        atomic_fetch_or_explicit(&f->words[slot / 64], bit, memory_order_relaxed);
}

static inline void filter_clear(const struct mprof_filter *f, uint64_t slot)
{
    atomic_fetch_and_explicit(&f->words[slot / 64], ~((uint64_t)1 << (slot % 64)),
                              memory_order_relaxed);
}

/* Doubles s's overflow table (or gives it its first).  0, or -1 out of
 * memory. */
static int MPROF_ENTRY_TEXT overflow_grow(struct live_shard *s)
{
    struct live_overflow *o = overflow_of(s);
    unsigned log2 = o->capacity ? o->capacity_log2 + 1 : LIVE_MIN_CAPACITY_LOG2;
    size_t ncap = (size_t)1 << log2;
    mprof_live_block *n = log2 <= LIVE_MAX_CAPACITY_LOG2 ? table_get(log2) : NULL;
    if (n == NULL)
        return -1;
    for (size_t i = 0; i < o->capacity; i++) {
        const mprof_live_block *e = &o->slots[i];
        if (e->addr == 0)
            continue;
        size_t j = home_of(e->table_key, log2);
        while (n[j].addr != 0)
            j = (j + 1) & (ncap - 1);
        n[j] = *e;
    }
    if (o->slots)
        table_put(o->slots, o->capacity_log2);
    o->slots = n;
    o->capacity = ncap;
    o->capacity_log2 = log2;
    return 0;
}

/* The overflow entry of addr in s, or NULL.  Under s's lock. */
static mprof_live_block *overflow_find(const struct live_shard *s, uintptr_t addr,
                                       uint32_t table_key)
{
    const struct live_overflow *o = overflow_of(s);
    if (s->overflow_used == 0)
        return NULL;
    size_t mask = o->capacity - 1;
    for (size_t j = home_of(table_key, o->capacity_log2);; j = (j + 1) & mask) {
        if (o->slots[j].addr == addr)
            return &o->slots[j];
        if (o->slots[j].addr == 0)
            return NULL;
    }
}

/* Adds blk (not present) to s's overflow table.  0, or -1 out of memory. */
static int overflow_insert(struct live_shard *s, const mprof_live_block *blk)
{
    struct live_overflow *o = overflow_of(s);
    if ((s->overflow_used + 1) * 4 > o->capacity && overflow_grow(s) != 0)
        return -1;
    size_t mask = o->capacity - 1;
    size_t j = home_of(blk->table_key, o->capacity_log2);
    while (o->slots[j].addr != 0)
        j = (j + 1) & mask;
    o->slots[j] = *blk;
    s->overflow_used++;
    return 0;
}

/*
 * Removes addr from s's overflow table into *out; returns 1, or 0 when it
 * is not there.  *slot_shared: whether another entry with the slot of
 * want (the top key_bits of table_key) was seen on the way, which is all of
 * them when the table is no larger than the key space (then they share
 * the home index too).
 */
static int overflow_take(struct live_shard *s, uintptr_t addr, uint32_t table_key,
                         unsigned key_bits, mprof_live_block *out, int *slot_shared)
{
    struct live_overflow *o = overflow_of(s);
    if (s->overflow_used == 0)
        return 0;
    size_t mask = o->capacity - 1;
    unsigned cap_log2 = o->capacity_log2;
    uint32_t want = table_key >> (32 - key_bits);
    size_t j = home_of(table_key, cap_log2);
    while (o->slots[j].addr != 0 && o->slots[j].addr != addr) {
        *slot_shared |= o->slots[j].table_key >> (32 - key_bits) == want;
        j = (j + 1) & mask;
    }
    if (o->slots[j].addr != addr || o->slots[j].bucket == NULL)
        return 0;
    *out = o->slots[j];
    s->overflow_used--;
    /* Backward-shift deletion: move later members of the probe run into
     * the hole so lookups never need tombstones. */
    size_t hole = j;
    for (size_t k = (j + 1) & mask; o->slots[k].addr != 0; k = (k + 1) & mask) {
        uint32_t key = o->slots[k].table_key;
        *slot_shared |= key >> (32 - key_bits) == want;
        size_t home = home_of(key, cap_log2);
        /* k may move to hole if its home is not in (hole, k]. */
        int movable = hole <= k ? (home <= hole || home > k) : (home <= hole && home > k);
        if (movable) {
            o->slots[hole] = o->slots[k];
            hole = k;
        }
    }
    o->slots[hole].addr = 0;
    /* A table larger than the key space spreads a slot's entries over a
     * stretch of homes: look there. */
    if (cap_log2 > key_bits && !*slot_shared)
        *slot_shared = overflow_slot_used(s, table_key, key_bits + LIVE_SHARD_BITS);
    return 1;
}

/* Asks for the shard's line ahead of the lock.  A prefetch never faults. */
static inline void live_prefetch(struct live_place pl) { prefetch_for_write(pl.shard); }

static void lock_all_shards(void)
{
    for (int i = 0; i < LIVE_SHARDS; i++)
        spin_lock(&live_shards[i].lock);
}

static void unlock_all_shards(void)
{
    for (int i = LIVE_SHARDS - 1; i >= 0; i--)
        spin_unlock(&live_shards[i].lock);
}

/*
 * Doubles the filter, unless another thread already has.  Called with no
 * shard lock held; takes them all, so it is rare (once per doubling of the
 * live sampled blocks) and stops sampled allocations and frees, never the
 * common ones, while the new bits are set.  The tables stay as they are.
 * Out of memory, the filter stays as it is: frees just take the slow path
 * more often.
 */
static void MPROF_ENTRY_TEXT filter_grow(unsigned from_log2)
{
    lock_all_shards();
    if (locked_filter().bits_log2 == from_log2) {
        unsigned log2 = from_log2 + 1;
        size_t bytes = ((size_t)1 << log2) / 8; /* mmap: page-aligned */
        void *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (mem != MAP_FAILED) {
            struct mprof_filter f = {log2, mem};
            for (int i = 0; i < LIVE_SHARDS; i++) {
                const struct live_shard *s = &live_shards[i];
                for (int k = 0; k < 2; k++)
                    if (s->addr[k] != 0)
                        filter_set(&f, slot_of(s, table_key_of(s->addr[k]), log2));
                const struct live_overflow *o = overflow_of(s);
                for (size_t j = 0; s->overflow_used != 0 && j < o->capacity; j++)
                    if (o->slots[j].addr != 0)
                        filter_set(&f, slot_of(s, o->slots[j].table_key, log2));
            }
            atomic_fetch_add(&filter_bytes, bytes);
            atomic_store_explicit(&mprof_hot.filter_word, (uintptr_t)mem + (64 - log2),
                                  memory_order_release);
        }
    }
    unlock_all_shards();
}

static int MPROF_ENTRY_TEXT live_insert(mprof_live_block *blk, struct live_place pl)
{
    struct live_shard *s = pl.shard;
    int rc = 0;
    unsigned grow_from = 0;
    blk->table_key = pl.table_key;
    spin_lock(&s->lock);
    /* An address already present means its free was never seen (e.g.
     * freed by a path we do not interpose); the new block replaces it. */
    int k = s->addr[0] == blk->addr ? 0 : s->addr[1] == blk->addr ? 1 : -1;
    mprof_live_block *e =
        k < 0 && s->overflow_used != 0 ? overflow_find(s, blk->addr, pl.table_key) : NULL;
    if (e != NULL) {
        *e = *blk;
    } else {
        if (k < 0) {
            /* New: in the line if it has room. */
            k = s->addr[0] == 0 ? 0 : s->addr[1] == 0 ? 1 : -1;
            if (k < 0 && overflow_insert(s, blk) != 0)
                rc = -1;
            if (rc == 0) {
                struct mprof_filter f = locked_filter();
                filter_set(&f, slot_of(s, pl.table_key, f.bits_log2));
                size_t limit = ((size_t)1 << (f.bits_log2 - LIVE_SHARD_BITS)) >> FILTER_GROW_SHIFT;
                if (limit < FILTER_GROW_MIN_BLOCKS)
                    limit = FILTER_GROW_MIN_BLOCKS;
                if (shard_used(s) + (k >= 0) > limit && f.bits_log2 < MPROF_FILTER_MAX_LOG2)
                    grow_from = f.bits_log2;
            }
        }
        if (k >= 0) {
            s->addr[k] = blk->addr;
            s->bucket[k] = blk->bucket;
            s->size[k] = blk->size;
            s->weight[k] = blk->weight;
        }
    }
    spin_unlock(&s->lock);
    if (MPROF_UNLIKELY(grow_from != 0))
        filter_grow(grow_from);
    return rc;
}

int MPROF_ENTRY_TEXT mprof_live_take(const void *p, mprof_live_block *out)
{
    uintptr_t addr = (uintptr_t)p;
    struct live_place pl = live_place_of(addr);
    struct live_shard *s = pl.shard;
    int found = 0;
    live_prefetch(pl);
    spin_lock(&s->lock);
    struct mprof_filter f = locked_filter();
    unsigned key_bits = f.bits_log2 - LIVE_SHARD_BITS;
    uint32_t want = pl.table_key >> (32 - key_bits);
    int slot_shared = 0;
    int k = s->addr[0] == addr ? 0 : s->addr[1] == addr ? 1 : -1;
    if (k >= 0 && s->bucket[k] != NULL) {
        out->addr = addr;
        out->bucket = s->bucket[k];
        out->size = s->size[k];
        out->weight = s->weight[k];
        out->table_key = pl.table_key;
        s->addr[k] = 0;
        found = 1;
    } else if (k < 0) {
        found = overflow_take(s, addr, pl.table_key, key_bits, out, &slot_shared);
    }
    if (found) {
        /* mprof_account_free comes next: overlap its misses with the rest
         * of the removal. */
        prefetch_counts(my_counts(out->bucket));
        /* The bit stays while another block of the shard has the slot:
         * one in the line, or one in the overflow table (which
         * overflow_take has looked at if the block was there). */
        for (int i = 0; i < 2; i++)
            if (s->addr[i] != 0)
                slot_shared |= table_key_of(s->addr[i]) >> (32 - key_bits) == want;
        if (k >= 0 && !slot_shared && s->overflow_used != 0)
            slot_shared = overflow_slot_used(s, pl.table_key, f.bits_log2);
        if (!slot_shared)
            filter_clear(&f, slot_of(s, pl.table_key, f.bits_log2));
    }
    spin_unlock(&s->lock);
    return found;
}

/*
 * Pinned entries (bucket NULL) hold their filter slot set for good: the
 * bootstrap pool's blocks (preload.c), whose frees must take the slow path
 * to be told apart from the real allocator's.  So the free of every other
 * block needs no range check of its own, five instructions fewer on every
 * free of the program.  Nothing takes a pinned entry out: mprof_live_take
 * passes them by, mprof_live_foreach skips them, and since they sit in the
 * table like any other entry, a removal sharing their slot sees them and
 * leaves the bit set, and a grown filter gets their bits.
 */
static _Atomic size_t live_pinned;

int mprof_live_pin(const void *p)
{
    mprof_live_block blk = {.addr = (uintptr_t)p};
    if (live_insert(&blk, live_place_of((uintptr_t)p)) != 0)
        return -1;
    atomic_fetch_add(&live_pinned, 1);
    return 0;
}

void MPROF_ENTRY_TEXT mprof_live_restore(const mprof_live_block *blk)
{
    mprof_live_block copy = *blk;
    (void)live_insert(&copy, live_place_of(blk->addr));
}

/*
 * For the heap dump (heap_dump.c): every live sampled block with its
 * bucket's stack and size class.  Cold path.  Each shard is copied under
 * its lock and fn runs after the unlock, so fn may allocate and free: a
 * free that took the shard lock while we held it would otherwise deadlock.
 * Reading a bucket's stack outside the stripe lock is safe: stack, nstack
 * and size never change after the bucket was published, and buckets are
 * never freed, so the pointers handed to fn stay valid for good.
 */
/* The blocks that carry a header, listed by their records. */
struct rec_visit {
    mprof_live_fn fn;
    void *arg;
};

static void visit_rec(const struct mprof_live_rec *r, void *arg)
{
    const struct rec_visit *v = arg;
    const struct mprof_bucket *b = r->bucket;
    mprof_live_block blk = {atomic_load_explicit(&r->addr, memory_order_relaxed), r->bucket,
                            r->size, r->weight, 0};
    if (b != NULL && blk.addr != 0)
        v->fn(&blk, b->stack, b->nstack, b->size, v->arg);
}

int mprof_live_foreach(mprof_live_fn fn, void *arg)
{
    mprof_guard_enter();
    int rc = 0;
    for (int i = 0; i < LIVE_SHARDS && rc == 0; i++) {
        struct live_shard *s = &live_shards[i];
        const struct live_overflow *o = overflow_of(s);
        mprof_live_block *copy = NULL;
        size_t n = 0;
        for (size_t room = 0;;) {
            spin_lock(&s->lock);
            if (shard_used(s) <= room) {
                for (int k = 0; k < 2; k++)
                    if (s->addr[k] != 0 && s->bucket[k] != NULL)
                        copy[n++] = (mprof_live_block){s->addr[k], s->bucket[k], s->size[k],
                                                       s->weight[k], table_key_of(s->addr[k])};
                for (size_t j = 0; s->overflow_used != 0 && j < o->capacity; j++)
                    if (o->slots[j].addr != 0 && o->slots[j].bucket != NULL)
                        copy[n++] = o->slots[j];
                spin_unlock(&s->lock);
                break;
            }
            room = shard_used(s) + shard_used(s) / 4 + 16; /* it may grow meanwhile */
            spin_unlock(&s->lock);
            free(copy);
            copy = malloc(room * sizeof *copy);
            if (copy == NULL) {
                errno = ENOMEM;
                rc = -1;
                break;
            }
        }
        for (size_t j = 0; j < n; j++) {
            const struct mprof_bucket *b = copy[j].bucket;
            fn(&copy[j], b->stack, b->nstack, b->size, arg);
        }
        free(copy);
    }
    if (rc == 0) {
        struct rec_visit v = {fn, arg};
        mprof_rec_foreach(visit_rec, &v);
    }
    mprof_guard_leave();
    return rc;
}

void MPROF_ENTRY_TEXT mprof_account_free(const mprof_live_block *blk, int swept_by_gc)
{
    count_free(blk->bucket, blk->addr, blk->size, blk->weight, swept_by_gc);
}

/* ------------------------------------------------------------ sampling */

/* This thread's next draw; its first seeds the state (out of line: once
 * per thread). */
static inline __attribute__((always_inline)) uint64_t next_random(void)
{
    if (MPROF_UNLIKELY(tls_rng == 0))
        tls_rng = mprof_random_seed();
    return mprof_random(&tls_rng);
}

/*
 * -ln(r / 2^53) for r in [1, 2^53]: an exponential variate from uniform
 * bits, without libm's log(), which cost about 50 instructions and, under
 * the program's own traffic, more than one cache miss per sample in its
 * tables.  r = 2^e * m with m in [sqrt(1/2), sqrt(2)), and ln m =
 * 2 atanh(t) with t = (m-1)/(m+1), |t| < 0.172: six terms of the series
 * leave a relative error below 1e-10, far under what sampling can tell.
 */
static inline __attribute__((always_inline)) double neg_log_unit(uint64_t r)
{
    double d = (double)(int64_t)r; /* exact: r <= 2^53 */
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    uint64_t mantissa = bits & (((uint64_t)1 << 52) - 1);
    /* m above sqrt(2) is halved (its exponent field one less): without a
     * branch, which random bits would mispredict half the time. */
    uint64_t halve = mantissa >= 0x6A09E667F3BCDull;
    int e = (int)(bits >> 52) - 1023 + (int)halve;
    bits = mantissa | (1023 - halve) << 52;
    double m;
    memcpy(&m, &bits, sizeof m);
    double t = (m - 1.0) / (m + 1.0), t2 = t * t;
    double ln_m =
        2.0 * t * (1.0 + t2 * (1.0 / 3 + t2 * (1.0 / 5 + t2 * (1.0 / 7 + t2 * (1.0 / 9 + t2 * (1.0 / 11))))));
    return (double)(53 - e) * 0.6931471805599453 - ln_m;
}

double mprof_neg_log_unit(uint64_t r) { return neg_log_unit(r); }

/*
 * Bytes until the next sample: exponentially distributed with mean `rate`,
 * so that sampling is a Poisson process over allocated bytes.  Then an
 * allocation of s bytes is sampled with probability 1 - exp(-s / rate),
 * whatever the sizes around it, which is what makes Go's unsampling formula
 * exact rather than approximate.  Inlined into the sampling path: calls and
 * their register saves were a sixth of its instructions.
 */
static inline __attribute__((always_inline)) int64_t next_interval(long rate)
{
    /* Rate 1 means every allocation, zero-byte ones included: a counter
     * of -1 is below zero whatever the size subtracted from it. */
    if (rate <= 1)
        return -1;
    /* u = r / 2^53 uniform in (0, 1]: 53 random bits, never zero. */
    double x = neg_log_unit((next_random() >> 11) + 1) * (double)rate;
    if (x > 1e18)
        x = 1e18;
    return (int64_t)x;
}

int64_t mprof_next_interval(long rate) { return next_interval(rate); }

static inline double sample_weight(size_t size, long rate)
{
    if (rate <= 1)
        return 1.0;
    double x = (double)size / (double)rate;
    if (x < 0.5 && size != 0) {
        /* 1 / (1 - e^-x) = 1/x + 1/2 + x/12 - x^3/720 + x^5/30240 - ...
         * (Bernoulli numbers); the next term is below 1e-10 here.  Most
         * samples take this branch, which costs a division where exp()
         * cost forty instructions more. */
        double x2 = x * x;
        return (double)rate / (double)size + 0.5 +
               x * (1.0 / 12 + x2 * (-1.0 / 720 + x2 * (1.0 / 30240)));
    }
    return 1.0 / (1.0 - exp(-x));
}

/*
 * The bucket of a sample of `size` bytes whose entry point had registers
 * regs: straight from the site memo when this stack was sampled last time
 * too and this size class already has its slot there (the memo proved the
 * stack the same; the slot matches the class exactly); otherwise from the
 * shared table.  NULL when the profiler is out of memory.  *stk and *n: the
 * stack, for tracing.
 */
static inline __attribute__((always_inline)) struct mprof_bucket *
sample_bucket(size_t size, const struct mprof_unwind_regs *regs, uintptr_t *scratch,
              const uintptr_t **stk, int *n)
{
    struct mprof_site_memo *site;
    *stk = mprof_stack_capture_sampler(regs, scratch, n, &site);
    uint32_t ordinal;
    size_t cls = size_class(size, &ordinal);
    struct mprof_bucket *b = NULL;
    __typeof__(site->slot[0]) *slot = NULL;
    if (site != NULL) {
        slot = &site->slot[ordinal % MPROF_SITE_SLOTS];
        if (slot->gen == site->gen && slot->tag == ordinal)
            b = slot->value;
    }
    if (b == NULL) {
        uint64_t stack_hash;
        if (site != NULL && site->stack_hash_valid) {
            stack_hash = site->stack_hash;
        } else {
            stack_hash = hash_stack_words(*stk, *n);
            if (site != NULL) {
                site->stack_hash = stack_hash;
                site->stack_hash_valid = 1;
            }
        }
        b = stack_bucket(hash_with_size(stack_hash, cls), *stk, *n, cls);
        if (b != NULL && slot != NULL) {
            slot->gen = site->gen;
            slot->tag = ordinal;
            slot->value = b;
        }
    }
    if (b != NULL)
        prefetch_counts(my_counts(b)); /* counted a little later */
    return b;
}

static void MPROF_ENTRY_TEXT record_sample(void *p, size_t size, long rate,
                                           const struct mprof_unwind_regs *regs)
{
    /* The live entry's line arrives while the stack is walked. */
    struct live_place pl = live_place_of((uintptr_t)p);
    live_prefetch(pl);
    uintptr_t scratch[MPROF_MAX_STACK];
    const uintptr_t *stk;
    int n;
    struct mprof_bucket *b = sample_bucket(size, regs, scratch, &stk, &n);
    /* Rounded to float once: the allocation and the free count the same
     * value. */
    double w = (float)sample_weight(size, rate);
    mprof_live_block blk = {.addr = (uintptr_t)p, .bucket = b, .size = size, .weight = (float)w};
    /* The live entry first: without it the block's free could never be
     * matched, and an allocation counted without it would show in use
     * forever.  No one can free p before this returns, so the order of the
     * two steps is invisible to frees. */
    if (b == NULL || live_insert(&blk, pl) != 0) {
        atomic_fetch_add_explicit(&samples_dropped, 1, memory_order_relaxed);
        return;
    }
    count_alloc(b, (uintptr_t)p, size, w, stk, n);
}

/*
 * Whether this allocation of `size` bytes, whose counter went below zero,
 * is to be sampled; draws the next interval either way.  Returns the rate
 * in force, or 0 for no sample: before start-up, inside the profiler, or
 * with sampling off.
 */
static inline __attribute__((always_inline)) long sample_decision(size_t size)
{
    if (!atomic_load_explicit(&mprof_hot.sampler_ready, memory_order_acquire)) {
        /* Before start-up (allocations of the dynamic loader and of other
         * libraries' constructors): not sampled, and the next allocation
         * checks again, so that sampling starts with the first allocation
         * after the environment has been read. */
        mprof_tls_bytes_until_sample = 0;
        return 0;
    }
    if (mprof_tls_guard != 0) {
        /* Inside the profiler: its own allocations are never sampled, and
         * must not count against the program's interval either: give back
         * what mprof_sample_due took, so that the program's sampling goes
         * on exactly where it was (resetting the counter here once cost a
         * thread its next 16 MiB of samples after every profile write). */
        mprof_tls_bytes_until_sample += size > (size_t)INT64_MAX ? INT64_MAX : (int64_t)size;
        return 0;
    }
    long rate = atomic_load_explicit(&mprof_hot.sample_rate, memory_order_relaxed);
    if (rate <= 0) {
        mprof_tls_bytes_until_sample = OFF_RECHECK_BYTES;
        return 0;
    }
    if (tls_rng == 0 && rate > 1) {
        /* This thread's first visit: its counter started at zero, which
         * would sample the first allocation of every thread.  Draw a real
         * interval and count this allocation against it instead. */
        int64_t left = next_interval(rate) - (int64_t)size;
        mprof_tls_bytes_until_sample = left;
        if (left >= 0)
            return 0;
    }
    mprof_tls_bytes_until_sample = next_interval(rate);
    return rate;
}

void MPROF_ENTRY_TEXT mprof_sample_alloc(void *p, size_t size, const struct mprof_unwind_regs *regs)
{
    int saved_errno = errno;
    long rate = sample_decision(size); /* before the guard: it reads it */
    if (rate > 0 && p != NULL) {
        mprof_guard_enter();
        record_sample(p, size, rate, regs);
        mprof_guard_leave();
    }
    errno = saved_errno;
}

/* ------------------------------------------------------------ header mode */

int MPROF_ENTRY_TEXT mprof_header_begin(size_t size, const struct mprof_unwind_regs *regs,
                                        struct mprof_block_header *h, uintptr_t *scratch,
                                        int *depth)
{
    int saved_errno = errno;
    long rate = sample_decision(size); /* before the guard: it reads it */
    int sampled = 0;
    if (rate > 0) {
        mprof_guard_enter();
        const uintptr_t *stk;
        int n;
        struct mprof_bucket *b = sample_bucket(size, regs, scratch, &stk, &n);
        struct mprof_live_rec *rec = b != NULL ? mprof_rec_get() : NULL;
        if (rec != NULL) {
            /* Rounded to float once: the allocation and the free count the
             * same value. */
            float w = (float)sample_weight(size, rate);
            h->bucket = b;
            h->rec = rec;
            h->size = size;
            h->tag = mprof_header_tag(0, w);
            /* Tracing wants the stack at commit: keep it in scratch (the
             * walk memo's copy may be overwritten by then). */
            if (MPROF_UNLIKELY(mprof_heap_tap_on()) && stk != scratch)
                memcpy(scratch, stk, (size_t)n * sizeof *stk);
            *depth = n;
            sampled = 1;
        } else {
            atomic_fetch_add_explicit(&samples_dropped, 1, memory_order_relaxed);
        }
        mprof_guard_leave();
    }
    errno = saved_errno;
    return sampled;
}

void MPROF_ENTRY_TEXT mprof_header_commit(const struct mprof_block_header *h, void *p,
                                         const uintptr_t *stack, int depth)
{
    struct mprof_live_rec *rec = h->rec;
    float w = mprof_header_weight(h->tag);
    rec->bucket = h->bucket;
    rec->size = h->size;
    rec->weight = w;
    atomic_store_explicit(&rec->addr, (uintptr_t)p, memory_order_release);
    count_alloc(h->bucket, (uintptr_t)p, h->size, w, stack, depth);
}

void MPROF_ENTRY_TEXT mprof_header_abort(const struct mprof_block_header *h)
{
    mprof_rec_put(h->rec);
}

void MPROF_ENTRY_TEXT mprof_header_free_begin(const struct mprof_block_header *h)
{
    /* Both lines come while the allocator frees. */
    prefetch_counts(my_counts(h->bucket));
    prefetch_for_write(h->rec);
}

void MPROF_ENTRY_TEXT mprof_header_free_end(const struct mprof_block_header *h, const void *p)
{
    count_free(h->bucket, (uintptr_t)p, h->size, mprof_header_weight(h->tag), 0);
    atomic_store_explicit(&h->rec->addr, 0, memory_order_relaxed);
    mprof_rec_put(h->rec);
}

void MPROF_ENTRY_TEXT mprof_record_alloc(const void *p, size_t size)
{
    if (p != NULL && mprof_sample_due(size)) {
        struct mprof_unwind_regs regs;
        MPROF_READ_REGS(regs);
        mprof_sample_alloc((void *)p, size, &regs);
    }
}

void MPROF_ENTRY_TEXT mprof_record_free(const void *p, enum mprof_free_kind how)
{
    mprof_live_block blk;
    if (p != NULL && mprof_maybe_sampled(p) && mprof_live_take(p, &blk))
        mprof_account_free(&blk, how == MPROF_FREE_SWEPT);
}

void mprof_set_rate(long rate)
{
    if (rate < 0)
        rate = 0;
    atomic_store_explicit(&mprof_hot.sample_rate, rate, memory_order_relaxed);
    /* The calling thread switches at once; other threads at their next trip
     * through the slow path (at most one interval, or 16 MiB when off). */
    mprof_tls_bytes_until_sample = rate > 0 ? mprof_next_interval(rate) : OFF_RECHECK_BYTES;
}

long mprof_get_rate(void) { return atomic_load_explicit(&mprof_hot.sample_rate, memory_order_relaxed); }

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
    pthread_mutex_lock(&cycle_lock);
    cycles_driven_by_gc = 1;
    atomic_store_explicit(&mprof_hot.profile_cycle, (current_cycle() + 1) % CYCLE_WRAP,
                          memory_order_relaxed);
    profile_cycle_flushed = 0;
    pthread_mutex_unlock(&cycle_lock);
}

void mprof_flush(void)
{
    pthread_mutex_lock(&cycle_lock);
    if (!profile_cycle_flushed) {
        fold_cycles_locked((int)(current_cycle() % 3));
        profile_cycle_flushed = 1;
    }
    pthread_mutex_unlock(&cycle_lock);
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
    int cap, used;
};

static void copy_bucket(const struct mprof_bucket *b, void *arg)
{
    struct copy_state *cs = arg;
    if (cs->used < cs->cap)
        fill_record(&cs->recs[cs->used++], b);
}

int mprof_mem_profile(mprof_mem_record *recs, int cap, int include_inuse_zero)
{
    mprof_guard_enter();
    pthread_mutex_lock(&cycle_lock);
    publish_for_read_locked();
    int n = for_each_bucket(include_inuse_zero, NULL, NULL);
    if (n <= cap && recs != NULL) {
        /* Buckets may have been added since the count (never removed):
         * copy what fits and report what was copied. */
        struct copy_state cs = {recs, cap, 0};
        for_each_bucket(include_inuse_zero, copy_bucket, &cs);
        n = cs.used;
    }
    pthread_mutex_unlock(&cycle_lock);
    mprof_guard_leave();
    return n;
}

int mprof_heap_snapshot(mprof_bucket_fn fn, void *arg, int include_inuse_zero)
{
    mprof_guard_enter();
    mprof_mem_record *recs = NULL;
    int n = 0;
    for (int cap = 64;; ) {
        n = mprof_mem_profile(recs, cap, include_inuse_zero);
        if (recs != NULL && n <= cap)
            break;
        free(recs);
        cap = n + n / 4 + 16;
        recs = malloc((size_t)cap * sizeof *recs);
        if (recs == NULL) {
            mprof_guard_leave();
            errno = ENOMEM;
            return -1;
        }
    }
    for (int i = 0; i < n; i++)
        fn(&recs[i], arg);
    free(recs);
    mprof_guard_leave();
    return 0;
}

static void fill_stats(mprof_stats *out)
{
    memset(out, 0, sizeof *out);
    out->size = sizeof *out;
    out->profiler_bytes = mprof_arena_mapped() + atomic_load(&filter_bytes);
    out->buckets = atomic_load_explicit(&bucket_count, memory_order_relaxed);
    size_t live = 0;
    for (int i = 0; i < LIVE_SHARDS; i++) {
        spin_lock(&live_shards[i].lock);
        live += shard_used(&live_shards[i]);
        spin_unlock(&live_shards[i].lock);
    }
    out->live_samples = live - atomic_load(&live_pinned) + (size_t)mprof_rec_foreach(NULL, NULL);
    /* Samples taken = allocations counted anywhere: published, or still in
     * a ring.  Summed here rather than kept in a shared counter that every
     * sample would have had to write. */
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
    out->samples_taken = taken;
    out->samples_dropped = atomic_load_explicit(&samples_dropped, memory_order_relaxed);
    out->block_headers = atomic_load_explicit(&mprof_hot.header_mode, memory_order_relaxed);
}

int mprof_stats_read(mprof_stats *out, size_t size)
{
    if (out == NULL || size < sizeof out->size) {
        errno = EINVAL;
        return -EINVAL;
    }
    mprof_stats full;
    fill_stats(&full);
    size_t n = size < sizeof full ? size : sizeof full;
    full.size = n;
    memcpy(out, &full, n);
    if (size > n)
        memset((char *)out + n, 0, size - n);
    return 0;
}

void mprof_get_stats(mprof_stats *out) { fill_stats(out); }

/* ------------------------------------------------------------ fork */

/*
 * A fork while another thread holds one of our locks would leave the lock
 * held forever in the child.  Take them all before fork and release them on
 * both sides: the forking thread owns them, so the unlocks are legal in the
 * child too.
 */
/* Every ring slot's lock, under the stripe locks (no bucket can appear). */
static void lock_all_slots(int lock)
{
    for (int i = 0; i < BUCKET_STRIPES; i++)
        for (struct mprof_bucket *b = bucket_stripes[i].buckets; b; b = bucket_totals(b)->all_next)
            for (int sh = 0; sh < COUNT_SHARDS; sh++)
                for (int k = 0; k < 3; k++) {
                    struct ring_slot *s = &bucket_shards(b)[sh].future[k];
                    if (lock)
                        (void)slot_lock(s);
                    else
                        atomic_fetch_and_explicit(&s->allocs_locked, ~SLOT_LOCK,
                                                  memory_order_release);
                }
}

void mprof_sampler_prefork(void)
{
    pthread_mutex_lock(&cycle_lock);
    for (int i = 0; i < BUCKET_STRIPES; i++)
        spin_lock(&bucket_stripes[i].lock);
    lock_all_slots(1);
    lock_all_shards();
}

void mprof_sampler_postfork_parent(void)
{
    unlock_all_shards();
    lock_all_slots(0);
    for (int i = BUCKET_STRIPES - 1; i >= 0; i--)
        spin_unlock(&bucket_stripes[i].lock);
    pthread_mutex_unlock(&cycle_lock);
}

void mprof_sampler_postfork_child(void)
{
    mprof_sampler_postfork_parent();
    /* The child's threads get fresh random streams. */
    tls_rng = 0;
}

/* ------------------------------------------------------------ start-up */

void mprof_sampler_init(void)
{
    /* The bucket heads are mapped, not touched: only the pages that
     * sampled stacks hash into ever become resident. */
    void *h = mprof_arena_alloc(BUCKET_HASH_SIZE * sizeof(_Atomic(struct mprof_bucket *)));
    if (h == NULL) {
        mprof_warn("cannot map profiler tables; heap profiling disabled");
        return;
    }
    bucket_hash = h;
    unsigned eax, ebx, ecx, edx;
    mprof_hot.have_prefetchw = __get_cpuid(0x80000001, &eax, &ebx, &ecx, &edx) && (ecx & bit_PRFCHW);

    atomic_store(&mprof_hot.sample_rate, mprof_option_long(MPROF_OPT_RATE));
    atomic_store_explicit(&mprof_hot.sampler_ready, 1, memory_order_release);
}
