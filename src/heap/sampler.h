/*
 * The sampler's hot path, inlined into every malloc and free wrapper.
 *
 * Allocation: each thread counts down the bytes left until its next sample.
 * The common case is one subtraction and one compare on a thread-local;
 * only when the counter goes below zero does the allocation leave the fast
 * path (mprof_sample_alloc), which decides, records and draws the next
 * interval.
 *
 * Free: with glibc's allocator underneath, a sampled block carries a
 * header whose tag a free tests with one load of the word before the block
 * (see MPROF_HEADER_SIZE below).  Otherwise every sampled block's address
 * is entered in a filter (one bit per hash slot): a free looks at one bit;
 * clear means "certainly never sampled", the answer for the overwhelming
 * majority of frees at the default rate, at the cost of two loads that hit
 * the cache.
 */
#ifndef MPROF_SAMPLER_H
#define MPROF_SAMPLER_H

#include <stdatomic.h>
#include <time.h>

#include "core/core.h"
#include "shared/hash.h"
#include "unwind/unwind.h"

extern __thread int64_t mprof_tls_bytes_until_sample __attribute__((tls_model("initial-exec")));

/*
 * The filter: one bit per hash slot, set while any live sampled block hashes
 * there, so that a free can tell "certainly never sampled" with one load.
 * It grows with the number of sampled blocks live, from 2^15 bits (4 KiB,
 * small enough to stay in the L1 cache under a program's own traffic) up to
 * 2^24, doubling whenever a live-table shard holds more than 1/32 of its
 * share of the slots (and more than 8 blocks): so a few percent of frees at most take the slow path
 * by chance, whether a program has a hundred sampled blocks live or a
 * hundred thousand.  (A fixed 32 KiB filter missed the L1 cache on most
 * frees of the churn benchmark.)
 *
 * A free finds the current filter in one word (mprof_hot.filter_word).  A
 * grown filter is built complete, under every shard lock, before it is
 * published; an old one is never unmapped, and is frozen as it was: a free
 * still reading it sees a superset of the blocks live then, and any block
 * sampled since was published, with the new filter, before the free could
 * have its address.
 */
#define MPROF_FILTER_MIN_LOG2 15
#define MPROF_FILTER_MAX_LOG2 24

/*
 * Everything the allocation paths read on each sampled event that is not
 * per thread or per bucket, on the one cache line that every free reads
 * anyway for the filter word.  Spread over four lines (as they were, one
 * per source file), they cost a sample up to three more misses, and pushed
 * three more of the program's own lines out of its L1 cache.  All are
 * written rarely (start-up, a rate change, a GC cycle, a filter growth).
 */
struct mprof_hot {
    /* The filter in one word, so that a free needs one load to find it:
     * the bits' address (64-byte aligned) plus the slot shift
     * (64 - bits_log2). */
    _Atomic uintptr_t filter_word;
    _Atomic long sample_rate;        /* 0 until the environment has been read */
    _Atomic uint32_t profile_cycle;  /* C of the cycle protocol (sampler.c) */
    _Atomic int sampler_ready;       /* set once start-up is done */
    _Atomic int tap_on;              /* a tap is installed and on (below) */
    int have_prefetchw;              /* CPUID, read once at start-up */
    /* Sampled blocks carry a header (preload.c); set once, when the real
     * allocator is found, before any block is sampled. */
    _Atomic int header_mode;
    /* The real allocator is glibc's (every entry point in the C library),
     * headers or not: the word before a block is its chunk size (the leak
     * scan reads it). */
    _Atomic int glibc_allocator;
    /* The peak estimate's flush step (heap/peak.h): written at start-up
     * and when the peak grows, read by every sampled event. */
    _Atomic int64_t peak_step;
    /* A sampled block freed sooner than this after its allocation is
     * short-lived (the lifetime profile; MPROF_SHORT_LIVED_US). */
    _Atomic int64_t short_lived_ns;
    /* Births are read from the invariant time-stamp counter (below). */
    int birth_tsc;
} __attribute__((aligned(64)));
MPROF_HIDDEN extern struct mprof_hot mprof_hot;

/*
 * A tap: an observer above the sampler that sees every sampled allocation
 * and every free of a sampled block as they happen, inside the host's
 * malloc and free (the allocation trace, profiles/trace.c).  The sampler
 * calls it only while mprof_hot.tap_on is set (one relaxed load and a
 * never-taken branch otherwise); its owner installs it, then sets tap_on,
 * and clears tap_on to stop.  The callbacks must not allocate or lock.
 * alloc gets the stack the sampler captured (n sites, innermost first);
 * free's swept says a collector's sweep reported it (MPROF_FREE_SWEPT).
 * One tap at a time: installing replaces the previous one.
 */
typedef struct mprof_heap_tap {
    void (*alloc)(uintptr_t addr, size_t size, const uintptr_t *stack, int n);
    void (*free)(uintptr_t addr, size_t size, int swept);
} mprof_heap_tap;

MPROF_HIDDEN void mprof_heap_tap_install(const mprof_heap_tap *tap);

static inline int mprof_heap_tap_on(void)
{
    return atomic_load_explicit(&mprof_hot.tap_on, memory_order_relaxed);
}

struct mprof_filter {
    unsigned bits_log2;
    _Atomic uint64_t *words;
};

static inline struct mprof_filter mprof_filter_decode(uintptr_t w)
{
    struct mprof_filter f = {64 - (unsigned)(w & 63), (_Atomic uint64_t *)(w & ~(uintptr_t)63)};
    return f;
}

/* Returns non-zero when this allocation of `size` bytes is due a sample. */
static inline int mprof_sample_due(size_t size)
{
    int64_t s = size > (size_t)INT64_MAX ? INT64_MAX : (int64_t)size;
    int64_t left = mprof_tls_bytes_until_sample - s;
    mprof_tls_bytes_until_sample = left;
    return MPROF_UNLIKELY(left < 0);
}

/*
 * The filter slot of an address.  The bitmap is split into 8 regions chosen
 * by the address' 64 MiB neighbourhood, the low bits by the address itself.
 * glibc gives each thread its own arena, 64 MiB-aligned, so a thread's
 * blocks mostly land in one region (and one group of live-table shards):
 * the words a thread sets and clears are then rarely the words another
 * thread's frees read, and cache lines stop moving between cores.  The top
 * 11 bits of a slot (region, then the hash's top 8 bits) name the live-table
 * shard, whatever the filter's size.
 */
#define MPROF_FILTER_REGION_BITS 3

/* 64 bits of which any filter's slot is the top bits_log2: the region's 3,
 * then the address hash's. */
static inline uint64_t mprof_filter_key(uintptr_t p)
{
    /* The region: the low bits of the 64 MiB block number, so that glibc's
     * consecutive arena heaps land in different regions. */
    uint64_t region = (uint64_t)(p >> 26) << (64 - MPROF_FILTER_REGION_BITS);
    return region | mprof_hash_pointer(p) >> MPROF_FILTER_REGION_BITS;
}

/* Non-zero when p may be a sampled block (must then call mprof_sample_free). */
static inline int mprof_maybe_sampled(const void *p)
{
    uintptr_t f = atomic_load_explicit(&mprof_hot.filter_word, memory_order_acquire);
    uint64_t slot = mprof_filter_key((uintptr_t)p) >> (f & 63);
    const _Atomic uint64_t *words = (const _Atomic uint64_t *)(f & ~(uintptr_t)63);
    uint64_t word = atomic_load_explicit(&words[slot / 64], memory_order_relaxed);
    return (word >> (slot % 64)) & 1;
}

/* A sampled block, as remembered between its allocation and its free. */
typedef struct mprof_live_block {
    uintptr_t addr;
    struct mprof_bucket *bucket;
    size_t size;
    float weight;      /* 1 / P(sampled): the same value counts the allocation
                        * and the free, so a freed bucket nets exactly zero */
    uint32_t table_key; /* the live table's (see sampler.c) */
} mprof_live_block;

/* Slow path of an allocation that mprof_sample_due() flagged.  p may be NULL
 * (failed allocation): then only the next interval is drawn.  regs: the
 * calling entry point's own registers (MPROF_READ_REGS), where the stack
 * walk starts. */
MPROF_HIDDEN void mprof_sample_alloc(void *p, size_t size, const struct mprof_unwind_regs *regs);

/* Removes p from the live-sample table; non-zero if it was there. */
MPROF_HIDDEN int mprof_live_take(const void *p, mprof_live_block *out);
/* Puts back a block taken by mprof_live_take (a realloc that failed). */
MPROF_HIDDEN void mprof_live_restore(const mprof_live_block *blk);
/* Keeps p's filter bit set for good, so that its frees take the slow path
 * (the bootstrap pool's blocks: see sampler.c).  0, or -1 out of memory. */
MPROF_HIDDEN int mprof_live_pin(const void *p);
/* Accounts the free of a taken block to the heap profile. */
MPROF_HIDDEN void mprof_account_free(const mprof_live_block *blk, int swept_by_gc);

/* Heap dump (heap_dump.c): calls fn with a copy of every live sampled block,
 * its bucket's stack and size class, shard by shard, with no lock held.
 * Cold path.  0, or -1 with errno ENOMEM (some blocks were then skipped). */
typedef void (*mprof_live_fn)(const mprof_live_block *blk, const uintptr_t *stack, int nstack,
                              size_t size_class, void *arg);
MPROF_HIDDEN int mprof_live_foreach(mprof_live_fn fn, void *arg);
/* Its two halves: the blocks of the address table (shard locks taken,
 * copies in mmap'd memory, unmapped before it returns) and the blocks that carry a
 * header, by their records (lock-free, no allocation: the leak scan lists
 * these with the other threads stopped). */
MPROF_HIDDEN int mprof_live_foreach_table(mprof_live_fn fn, void *arg);
MPROF_HIDDEN int mprof_live_foreach_records(mprof_live_fn fn, void *arg);

/*
 * Header mode (preload.c: glibc's allocator underneath).  A sampled block
 * is allocated with room for this header just before the pointer handed
 * out, at an offset of 32 bytes (or its alignment, for the memalign
 * family), and carries what its free needs, on the line the allocator
 * itself reads at free.  The tag word sits right before the pointer, where
 * a glibc block has its chunk size: a size is a multiple of 16 plus three
 * flag bits, so bit 3 is never set in it, and set in every tag.  One load
 * and one bit tell a free whether its block carries a header; no filter,
 * no table.
 */
#define MPROF_HEADER_SIZE 32
#define MPROF_HEADER_TAG_BIT ((uint64_t)8)
/* Bits 10-31 of every tag: a check against a header overwritten by the
 * program (a write before its block), which a tag without them is. */
#define MPROF_HEADER_MAGIC ((uint64_t)0x2d70f1 << 10)
#define MPROF_HEADER_MAGIC_MASK ((uint64_t)0x3fffff << 10)

/* A header block's record, for listing the live blocks (header_records.c). */
struct mprof_live_rec {
    _Atomic uintptr_t addr; /* the pointer handed out; 0: not in use */
    struct mprof_bucket *bucket;
    /* The size in the low 48 bits (a block never reaches 2^48 bytes on
     * x86-64), the birth's high 16 bits above (mprof_rec_set). */
    uint64_t size_born;
    float weight;
    uint32_t born_lo; /* the birth's low 32 bits */
};

/*
 * Births, for lifetimes: 48 bits of a clock kept in a record's spare bits.
 * The clock is the processor's time-stamp counter when it is invariant
 * (CPUID says so; it is on every x86-64 of the last decade, KVM's
 * included): a read costs half of clock_gettime's, and at MPROF_RATE=1
 * every allocation and free pays one (clock_gettime cost the churn
 * benchmark a fifth of its time there).  Its ticks become nanoseconds only
 * when a lifetime is counted (mprof_birth_ns).  Without an invariant
 * counter, the monotonic clock's ns.  Either is shifted right by
 * MPROF_BIRTH_SHIFT: units of about 1 us or less, and 48 bits of them last
 * years.
 */
#define MPROF_BIRTH_SHIFT 10
static inline uint64_t mprof_birth_now(void)
{
    if (MPROF_LIKELY(mprof_hot.birth_tsc)) {
        uint32_t lo, hi;
        __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
        return ((uint64_t)hi << 32 | lo) >> MPROF_BIRTH_SHIFT;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) >> MPROF_BIRTH_SHIFT;
}

/* A birth difference (mprof_birth_now units) in nanoseconds; now is the
 * mprof_birth_now() the caller just read (the calibration measures its
 * span from it rather than reading the counter again).  A clock read only
 * on the first call and at each doubling of the calibration's span. */
MPROF_HIDDEN int64_t mprof_birth_ns(uint64_t ticks, uint64_t now);

#define MPROF_REC_SIZE_MASK (((uint64_t)1 << 48) - 1)
static inline void mprof_rec_set(struct mprof_live_rec *r, size_t size, uint64_t born)
{
    r->size_born = ((uint64_t)size & MPROF_REC_SIZE_MASK) | (born >> 32) << 48;
    r->born_lo = (uint32_t)born;
}
static inline size_t mprof_rec_size(const struct mprof_live_rec *r)
{
    return (size_t)(r->size_born & MPROF_REC_SIZE_MASK);
}
static inline uint64_t mprof_rec_born(const struct mprof_live_rec *r)
{
    return (r->size_born >> 48) << 32 | r->born_lo;
}

struct mprof_block_header {
    struct mprof_bucket *bucket; /* NULL: a header but no sample (see realloc) */
    struct mprof_live_rec *rec;
    size_t size;
    /* MPROF_HEADER_TAG_BIT | MPROF_HEADER_MAGIC | log2(offset) << 4 |
     * the weight's float bits << 32 */
    uint64_t tag;
};

static inline struct mprof_block_header *mprof_header_of(const void *p)
{
    return (struct mprof_block_header *)((uintptr_t)p - sizeof(struct mprof_block_header));
}

/* Whether the word before p (p not NULL, from the real allocator or the
 * boot pool) says p carries a header. */
static inline int mprof_has_header(const void *p)
{
    /* By address arithmetic: the word lies outside the object p points
     * to, which the compiler may not like to see indexed. */
    return (*(const uint64_t *)((uintptr_t)p - sizeof(uint64_t)) & MPROF_HEADER_TAG_BIT) != 0;
}

static inline size_t mprof_header_offset(uint64_t tag) { return (size_t)1 << ((tag >> 4) & 63); }

static inline uint64_t mprof_header_tag(unsigned offset_log2, float weight)
{
    uint32_t wbits;
    __builtin_memcpy(&wbits, &weight, sizeof wbits);
    return MPROF_HEADER_TAG_BIT | MPROF_HEADER_MAGIC | (uint64_t)offset_log2 << 4 |
           (uint64_t)wbits << 32;
}

/* The weight mprof_header_tag packed into tag. */
static inline float mprof_header_weight(uint64_t tag)
{
    uint32_t wbits = (uint32_t)(tag >> 32);
    float w;
    __builtin_memcpy(&w, &wbits, sizeof w);
    return w;
}

static inline int mprof_header_intact(uint64_t tag)
{
    return (tag & MPROF_HEADER_MAGIC_MASK) == MPROF_HEADER_MAGIC;
}

/*
 * A sampled allocation in header mode, in three steps around the real
 * allocation.  mprof_header_begin (after mprof_sample_due flagged the
 * allocation): draws the next interval and, if this allocation is sampled,
 * fills *h (offset left 0 in the tag: the caller sets it) and returns 1;
 * scratch: room for MPROF_MAX_STACK frames, where the stack is left for
 * commit (*depth frames) when tracing.  Then the caller allocates size +
 * offset; on success it writes *h before the block and calls
 * mprof_header_commit(h, p, scratch, depth), else mprof_header_abort.
 */
MPROF_HIDDEN int mprof_header_begin(size_t size, const struct mprof_unwind_regs *regs,
                                    struct mprof_block_header *h, uintptr_t *scratch,
                                    int *depth);
MPROF_HIDDEN void mprof_header_commit(const struct mprof_block_header *h, void *p,
                                     const uintptr_t *stack, int depth);
MPROF_HIDDEN void mprof_header_abort(const struct mprof_block_header *h);
/* The free (or move, by realloc) of the sampled block p with header h (a
 * copy, taken before the real free): mprof_header_free_begin asks for the
 * lines the accounting touches, then the real free runs while they come,
 * then mprof_header_free_end counts the free and gives the record back.
 * The header, not the address, says which block it was: another thread
 * may already have the address again. */
MPROF_HIDDEN void mprof_header_free_begin(const struct mprof_block_header *h);
MPROF_HIDDEN void mprof_header_free_end(const struct mprof_block_header *h, const void *p);

/* Convenience: take + account. */
static inline __attribute__((always_inline)) void mprof_sample_free(const void *p)
{
    mprof_live_block blk;
    if (mprof_live_take(p, &blk))
        mprof_account_free(&blk, 0);
}

/* Bytes until the next sample for a given mean rate (exponential draw).
 * -1 when rate <= 1: a counter below zero samples the next allocation,
 * zero-byte ones included.  Exposed for the distribution test. */
MPROF_HIDDEN int64_t mprof_next_interval(long rate);
/* -ln(r / 2^53) for r in [1, 2^53], as mprof_next_interval draws it. */
MPROF_HIDDEN double mprof_neg_log_unit(uint64_t r);

/* Snapshot of the buckets for writers.  Calls fn for every bucket after
 * publishing all pending cycles, with the profile lock NOT held (the
 * records were copied first), with the id of the bucket's label set
 * (heap/labels.h; 0: none).  */
typedef void (*mprof_bucket_fn)(const mprof_mem_record *rec, uint32_t labels, void *arg);
MPROF_HIDDEN int mprof_heap_snapshot(mprof_bucket_fn fn, void *arg, int include_inuse_zero);

/*
 * Locks of the heap folder, outermost first.  Everything the allocation
 * path takes is a spinning lock held for a few instructions; cycle_lock is
 * taken only by readers and the collector's cycle calls.
 *
 *   cycle_lock (buckets.c, a mutex)  profile reads, mprof_next_cycle, flush
 *     stripe lock (buckets.c)        a bucket's creation; a fold's walk
 *       ring slot lock (buckets.h)   one event's counts; the lock bit of
 *                                    the slot's allocation count
 *   shard lock (live_table.c)        one shard of the live table; all of
 *                                    them, in index order, to grow the filter
 *     table pool lock (live_table.c) the recycled overflow tables
 *   depot lock (header_records.c)    a leaf: the free record magazines
 *
 * A shard lock is never held with a bucket lock, nor the depot lock with
 * any other: the sampled path finds the bucket, counts, then enters the
 * block, one lock at a time.
 *
 * Fork.  No lock of the profiler is taken by a pthread_atfork prepare
 * handler: glibc's fork takes _IO_list_lock after the prepare handlers,
 * and a thread inside fflush(NULL) holds _IO_list_lock while a third one,
 * inside getline, mallocs under its FILE lock; any lock the allocation
 * path waits on and a prepare handler holds closes that cycle (glibc's
 * tst-malloc-fork-deadlock).  And fork from a signal handler, which glibc
 * allows in a single-threaded process, would have the prepare handler wait
 * on a lock that the frame it interrupted holds (tst-mallocfork2).
 *
 * So fork takes nothing, and the child repairs instead
 * (mprof_sampler_postfork_child, the first thing that runs in it after
 * the stack row).  Every spinning lock holds its holder's token
 * (core/spinlock.h), cycle_lock's holder and the held slot are marked in
 * thread-local variables, and the child, which has only the forking
 * thread, sorts every held lock into one of two cases:
 *   - held by the forking thread itself (its frame was interrupted by the
 *     signal handler that forked): kept; that frame finishes its update
 *     and unlocks when the handler returns, in parent and child alike;
 *   - held by another thread, which the child does not have: that update
 *     will never finish, so the structure it guards is made consistent
 *     (each file's repair says how, and what the child loses) and the lock
 *     freed.  The count of such updates and of the sampled blocks they
 *     cost goes into the child's statistics and its heap profile's comment.
 * The parent is untouched: its threads finish what they were doing.
 *
 * The one case left is glibc's own: a signal handler that allocates while
 * its thread is inside the profiler's update of the same structure waits
 * for itself, as it would inside glibc's malloc.
 */
struct mprof_fork_repair {
    unsigned held_here;    /* locks the forking thread's own frames hold */
    unsigned lost_updates; /* locks a thread fork left behind held */
    uint64_t lost_blocks;  /* sampled blocks forgotten by those repairs */
};

/* Life-cycle hooks, run by the table in runtime/lifecycle.c.  init reads
 * MPROF_RATE and opens sampling (after the live-record row's init).  The
 * fork child's hook repairs the heap folder as the Fork comment above says
 * and gives the child's thread a fresh random stream. */
MPROF_HIDDEN void mprof_sampler_init(void);
/* For a process that is not profiled (core/run_tree.c): sampling off and
 * no table mapped; mprof_set_rate then changes nothing. */
MPROF_HIDDEN void mprof_sampler_init_off(void);
MPROF_HIDDEN void mprof_sampler_postfork_child(void);
/* What the fork that made this process lost to the child's repair: both 0
 * in a process that was not forked, or forked with no update in progress
 * in another thread.  For mprof_get_stats and the heap profile's comment. */
MPROF_HIDDEN void mprof_sampler_fork_losses(uint64_t *lost_updates, uint64_t *lost_blocks);

#endif /* MPROF_SAMPLER_H */
