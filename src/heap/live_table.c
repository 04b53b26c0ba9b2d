/*
 * The live table: what it owns and its invariants are in live_table.h.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "heap/live_table.h"
#include "heap/buckets.h"
#include "heap/header_records.h"
#include "core/spinlock.h"

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
/* A shard's overflow table.  Read and written under the shard's lock. */
struct live_overflow {
    mprof_live_block *slots;
    unsigned capacity_log2; /* 0 before first use */
    size_t capacity;        /* 1 << capacity_log2, or 0 */
};

struct live_shard mprof_live_shards[LIVE_SHARDS];
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
 * The pool lock is taken only by overflow_grow, under a shard lock.
 */
#define LIVE_MAX_CAPACITY_LOG2 40
static struct {
    spinlock lock;
    mprof_live_block *spare[LIVE_MAX_CAPACITY_LOG2 + 1]; /* chained through .bucket */
} table_pool;

/* Bytes of spare tables whose pages went back to the kernel (see
 * table_put); they are counted out of the profiler's memory. */
static _Atomic size_t tables_released;

/* The whole pages inside table t of 2^log2 entries past its first line
 * (which holds the pool's link), [*lo, *hi). */
static size_t table_pages(const mprof_live_block *t, unsigned log2, uintptr_t *lo, uintptr_t *hi)
{
    uintptr_t start = (uintptr_t)t, end = start + (sizeof(mprof_live_block) << log2);
    *lo = (start + 64 + 4095) & ~(uintptr_t)4095;
    *hi = end & ~(uintptr_t)4095;
    return *hi > *lo ? *hi - *lo : 0;
}

/*
 * A spare table of TABLE_RELEASE_MIN bytes or more gives its pages back
 * (madvise, keeping the addresses for the next table of its size): shards
 * grow together, so the tables they outgrow are mostly never asked for
 * again, and kept they would double the tables' memory.  Smaller ones,
 * which the first seconds of a program grow and drop by the hundred, are
 * kept as they are (the TLB shootdown a release costs every other core
 * is what the pool avoids, above).
 */
#define TABLE_RELEASE_MIN 8192

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
        /* Released pages read as zero again, but the first line holds the
         * pool's link, and the edges outside whole pages were kept. */
        uintptr_t lo, hi;
        if (bytes >= TABLE_RELEASE_MIN && table_pages(t, log2, &lo, &hi) > 0)
            atomic_fetch_sub_explicit(&tables_released, hi - lo, memory_order_relaxed);
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
    uintptr_t lo, hi;
    if ((sizeof(mprof_live_block) << log2) >= TABLE_RELEASE_MIN &&
        table_pages(t, log2, &lo, &hi) > 0 &&
        madvise((void *)lo, hi - lo, MADV_DONTNEED) == 0)
        atomic_fetch_add_explicit(&tables_released, hi - lo, memory_order_relaxed);
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

static inline uint32_t table_key_of(uintptr_t addr) { return live_place_of(addr).table_key; }

static inline size_t home_of(uint32_t table_key, unsigned capacity_log2)
{
    return (size_t)(table_key >> (32 - capacity_log2));
}

/* The filter slot of an entry of shard s, for a filter of 2^bits_log2. */
static inline uint64_t slot_of(const struct live_shard *s, uint32_t table_key, unsigned bits_log2)
{
    unsigned key_bits = bits_log2 - LIVE_SHARD_BITS;
    return (uint64_t)(s - mprof_live_shards) << key_bits | table_key >> (32 - key_bits);
}

static inline struct live_overflow *overflow_of(const struct live_shard *s)
{
    return &live_overflow[s - mprof_live_shards];
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
    /* At most 3/4 full: a probe walks 2.5 entries on average for a hit
     * and 8.5 for a miss, and the tables then take 43 to 85 bytes per
     * block rather than the 128 to 256 of a quarter-full table (the
     * memory a table of 200,000 blocks at rate 1 costs a process whose
     * allocator rules out headers). */
    if ((s->overflow_used + 1) * 4 > o->capacity * 3 && overflow_grow(s) != 0)
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

static void lock_all_shards(void)
{
    for (int i = 0; i < LIVE_SHARDS; i++)
        spin_lock(&mprof_live_shards[i].lock);
}

static void unlock_all_shards(void)
{
    for (int i = LIVE_SHARDS - 1; i >= 0; i--)
        spin_unlock(&mprof_live_shards[i].lock);
}

/*
 * Doubles the filter, unless another thread already has.  Called with no
 * shard lock held; takes them all, so it is rare (once per doubling of the
 * live sampled blocks) and stops sampled allocations and frees, never the
 * common ones, while the new bits are set.  The tables stay as they are.
 * Out of memory, the filter stays as it is: frees just take the slow path
 * more often.
 */
/* The token of the thread growing the filter (all shard locks held), or 0:
 * a forked child need not empty the shards whose locks a lost grower
 * held, since growing reads the shards and changes none of them. */
static _Atomic uint32_t filter_grower;

static void MPROF_ENTRY_TEXT filter_grow(unsigned from_log2)
{
    lock_all_shards();
    atomic_store_explicit(&filter_grower, mprof_lock_token(), memory_order_relaxed);
    if (locked_filter().bits_log2 == from_log2) {
        unsigned log2 = from_log2 + 1;
        size_t bytes = ((size_t)1 << log2) / 8; /* mmap: page-aligned */
        void *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (mem != MAP_FAILED) {
            struct mprof_filter f = {log2, mem};
            for (int i = 0; i < LIVE_SHARDS; i++) {
                const struct live_shard *s = &mprof_live_shards[i];
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
    atomic_store_explicit(&filter_grower, 0, memory_order_relaxed);
    unlock_all_shards();
}

int MPROF_ENTRY_TEXT mprof_live_insert(mprof_live_block *blk, struct live_place pl)
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
    if (mprof_live_insert(&blk, live_place_of((uintptr_t)p)) != 0)
        return -1;
    atomic_fetch_add(&live_pinned, 1);
    return 0;
}

void MPROF_ENTRY_TEXT mprof_live_restore(const mprof_live_block *blk)
{
    mprof_live_block copy = *blk;
    (void)mprof_live_insert(&copy, live_place_of(blk->addr));
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
                            mprof_rec_size(r), r->weight, 0};
    if (b != NULL && blk.addr != 0)
        v->fn(&blk, b->stack, b->nstack, b->size, v->arg);
}

int mprof_live_foreach_records(mprof_live_fn fn, void *arg)
{
    struct rec_visit v = {fn, arg};
    mprof_rec_foreach(visit_rec, &v);
    return 0;
}

int mprof_live_foreach(mprof_live_fn fn, void *arg)
{
    int rc = mprof_live_foreach_table(fn, arg);
    if (rc == 0)
        rc = mprof_live_foreach_records(fn, arg);
    return rc;
}

int mprof_live_foreach_table(mprof_live_fn fn, void *arg)
{
    mprof_guard_enter();
    int rc = 0;
    /* One copy buffer for all shards, mmap'd and unmapped after: a copy
     * freed into the heap would leave every block's address in free memory,
     * where the sampled leak scan (leak_scan.c) would find it. */
    mprof_live_block *copy = NULL;
    size_t copy_cap = 0;
    for (int i = 0; i < LIVE_SHARDS && rc == 0; i++) {
        struct live_shard *s = &mprof_live_shards[i];
        const struct live_overflow *o = overflow_of(s);
        size_t n = 0;
        for (size_t room = copy_cap;;) {
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
            if (room > copy_cap) {
                if (copy != NULL)
                    munmap(copy, copy_cap * sizeof *copy);
                copy_cap = ((room * sizeof *copy + 4095) & ~(size_t)4095) / sizeof *copy;
                copy = mmap(NULL, copy_cap * sizeof *copy, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                if (copy == MAP_FAILED) {
                    copy = NULL;
                    copy_cap = 0;
                    errno = ENOMEM;
                    rc = -1;
                    break;
                }
            }
        }
        for (size_t j = 0; j < n; j++) {
            const struct mprof_bucket *b = copy[j].bucket;
            fn(&copy[j], b->stack, b->nstack, b->size, arg);
        }
    }
    if (copy != NULL)
        munmap(copy, copy_cap * sizeof *copy);
    mprof_guard_leave();
    return rc;
}

/* ------------------------------------------------------------ statistics, fork */

size_t mprof_live_table_bytes(void) { return atomic_load(&filter_bytes); }

size_t mprof_live_table_released(void) { return atomic_load(&tables_released); }

size_t mprof_live_table_count(void)
{
    size_t live = 0;
    for (int i = 0; i < LIVE_SHARDS; i++) {
        spin_lock(&mprof_live_shards[i].lock);
        live += shard_used(&mprof_live_shards[i]);
        spin_unlock(&mprof_live_shards[i].lock);
    }
    return live - atomic_load(&live_pinned);
}

/*
 * A forked child's repair (sampler.h, "Fork"), on its one thread.  A shard
 * whose lock a lost thread held may be torn (an entry half written, an
 * overflow table half moved): it is emptied, its blocks forgotten (their
 * frees then look unsampled, and their bytes stay in use in the profile),
 * except its pinned entries, which are entered again: a pinned entry is
 * one with a NULL bucket, and a half-written entry mistaken for one only
 * keeps a filter bit set.  Its filter bits stay set: the filter remains a
 * superset.  Its overflow table is dropped, not recycled (it may be in
 * the pool already).  A pool lock held by a lost thread: the pool starts
 * empty (its tables are leaked).  The shards a lost filter grower held are
 * only unlocked.
 */
#define REPAIR_MAX_PINNED 64

/* Notes the pinned entry addr for re-entry; 1 if it was a sampled block
 * (now forgotten).  A pinned entry beyond the room is dropped from the
 * count too, so that mprof_live_table_count stays right; its filter bit
 * stays set, which is what pinning is for. */
static size_t keep_pinned(uintptr_t addr, const struct mprof_bucket *b, uintptr_t *pinned,
                          size_t *npinned)
{
    if (b != NULL)
        return 1;
    if (*npinned < REPAIR_MAX_PINNED)
        pinned[(*npinned)++] = addr;
    else
        atomic_fetch_sub(&live_pinned, 1);
    return 0;
}

static size_t shard_empty_keep_pinned(struct live_shard *s, uintptr_t *pinned, size_t *npinned)
{
    size_t lost = 0;
    for (int k = 0; k < 2; k++) {
        if (s->addr[k] == 0)
            continue;
        lost += keep_pinned(s->addr[k], s->bucket[k], pinned, npinned);
        s->addr[k] = 0;
        s->bucket[k] = NULL;
    }
    struct live_overflow *o = overflow_of(s);
    /* capacity never exceeds the table slots points at (overflow_grow sets
     * slots first), so the walk stays inside it even if the grow was torn. */
    for (size_t j = 0; o->slots != NULL && j < o->capacity; j++) {
        const mprof_live_block *e = &o->slots[j];
        if (e->addr == 0)
            continue;
        lost += keep_pinned(e->addr, e->bucket, pinned, npinned);
    }
    o->slots = NULL;
    o->capacity = 0;
    o->capacity_log2 = 0;
    s->overflow_used = 0;
    return lost;
}

void mprof_live_table_repair(uint32_t me, struct mprof_fork_repair *r)
{
    uint32_t pool_owner = spin_owner(&table_pool.lock);
    if (pool_owner == me) {
        r->held_here++;
    } else if (pool_owner != 0) {
        memset(table_pool.spare, 0, sizeof table_pool.spare);
        spin_reset(&table_pool.lock);
        r->lost_updates++;
    }
    uint32_t grower = atomic_load_explicit(&filter_grower, memory_order_relaxed);
    if (grower != 0 && grower != me) {
        atomic_store_explicit(&filter_grower, 0, memory_order_relaxed);
        r->lost_updates++;
    }
    uintptr_t pinned[REPAIR_MAX_PINNED];
    size_t npinned = 0;
    for (int i = 0; i < LIVE_SHARDS; i++) {
        struct live_shard *s = &mprof_live_shards[i];
        uint32_t owner = spin_owner(&s->lock);
        if (owner == 0)
            continue;
        if (owner == me) {
            r->held_here++;
            continue;
        }
        if (owner != grower) {
            r->lost_blocks += shard_empty_keep_pinned(s, pinned, &npinned);
            r->lost_updates++;
        }
        spin_reset(&s->lock);
    }
    for (size_t i = 0; i < npinned; i++) {
        mprof_live_block blk = {.addr = pinned[i]};
        (void)mprof_live_insert(&blk, live_place_of(pinned[i]));
    }
}
