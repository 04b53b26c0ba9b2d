/*
 * Sampling, after Go's runtime/mprof.go: which allocations are sampled and
 * what a sample weighs, the sampled allocation's slow path, header mode's
 * steps, the rate, the statistics, the forked child's repair and
 * start-up (what it owns and its invariants: sampler.h).
 *
 * A sample is charged to a bucket (buckets.c).  Its free is charged to the
 * same bucket: with glibc's allocator underneath, a sampled block carries
 * its bucket, size and weight in a header (header mode, preload.c, its
 * records in header_records.c); otherwise, and for blocks reported through
 * mprof_record_alloc, the live table (live_table.c) remembers them
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
#include "heap/leak_scan.h"
#include "heap/buckets.h"
#include "heap/header_records.h"
#include "heap/labels.h"
#include "heap/live_table.h"
#include "heap/peak.h"
#include "core/options.h"
#include "core/os.h"
#include "core/spinlock.h"
#include "symbolize/symbolize.h"

/* With sampling off, a thread still leaves the fast path every this many
 * bytes, so that turning sampling on reaches threads that are running. */
#define OFF_RECHECK_BYTES (16 << 20)

__thread int mprof_tls_guard __attribute__((tls_model("initial-exec")));
__thread int64_t mprof_tls_bytes_until_sample __attribute__((tls_model("initial-exec")));

/* Per-thread state of the generator for sample intervals (core/os.h):
 * cheap, no locks, and seeded per thread so threads do not sample in
 * lockstep. */
static __thread uint64_t tls_rng __attribute__((tls_model("initial-exec")));

static _Atomic uint64_t samples_dropped;

_Atomic int mprof_allocator_glibc = -1; /* sampler.h */

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
    /* The thread's labels are part of the key (labels.h): a memo slot
     * holds the bucket of the labels it was made under, and the labels
     * pick the slot too, so that requests of a few label sets alternating
     * at one site do not evict each other's (unlabeled: the same slot as
     * without labels). */
    uint32_t labels = mprof_tls_labels;
    __typeof__(site->slot[0]) *slot = NULL;
    if (site != NULL) {
        slot = &site->slot[(ordinal + labels * 37) % MPROF_SITE_SLOTS];
        if (slot->gen == site->gen && slot->tag == ordinal &&
            ((struct mprof_bucket *)slot->value)->labels == labels)
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
        uint64_t h = hash_with_size(labels ? stack_hash ^ mprof_mix64(labels) : stack_hash, cls);
        b = mprof_stack_bucket(h, *stk, *n, cls, labels);
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
    if (b == NULL || mprof_live_insert(&blk, pl) != 0) {
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
        /* The full leak check must know every block: a library whose
         * constructor runs before ours (LD_PRELOAD'ed objects are
         * initialized after the program's libraries) would keep blocks
         * unrecorded, and a block only they point to would look leaked.
         * So in that mode the first allocation from outside the profiler
         * starts it (the constructor's later call does nothing).  By then
         * the C library is initialized: our malloc is called only once the
         * loader has relocated everything. */
        if (mprof_tls_guard != 0 || mprof_leak_mode() != MPROF_LEAKS_FULL)
            return 0;
        mprof_lifecycle_start();
        if (!atomic_load_explicit(&mprof_hot.sampler_ready, memory_order_acquire))
            return 0; /* another thread is starting it: this one passes */
        /* Started: decided below, as any allocation after start-up. */
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
    mprof_rec_set(rec, h->size, mprof_birth_now());
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
    float w = mprof_header_weight(h->tag);
    count_free(h->bucket, (uintptr_t)p, h->size, w, 0);
    uint64_t now = mprof_birth_now();
    uint64_t age = (now - mprof_rec_born(h->rec)) & (((uint64_t)1 << 48) - 1);
    count_lifetime(h->bucket, h->size, w, mprof_birth_ns(age, now));
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

/* Set once the tables are mapped: an unprofiled process (sampler off)
 * never samples, whatever it asks. */
static _Atomic int tables_ready;

void mprof_set_rate(long rate)
{
    if (!atomic_load(&tables_ready))
        return;
    if (rate < 0)
        rate = 0;
    atomic_store_explicit(&mprof_hot.sample_rate, rate, memory_order_relaxed);
    /* The calling thread switches at once; other threads at their next trip
     * through the slow path (at most one interval, or 16 MiB when off). */
    mprof_tls_bytes_until_sample = rate > 0 ? mprof_next_interval(rate) : OFF_RECHECK_BYTES;
}

long mprof_get_rate(void) { return atomic_load_explicit(&mprof_hot.sample_rate, memory_order_relaxed); }

static void fill_stats(mprof_stats *out)
{
    memset(out, 0, sizeof *out);
    out->size = sizeof *out;
    out->profiler_bytes =
        mprof_arena_mapped() + mprof_live_table_bytes() - mprof_live_table_released();
    out->buckets = mprof_buckets_count();
    out->live_samples = mprof_live_table_count() + (size_t)mprof_rec_foreach(NULL, NULL);
    out->samples_taken = mprof_buckets_samples_taken();
    out->samples_dropped = atomic_load_explicit(&samples_dropped, memory_order_relaxed);
    out->block_headers = atomic_load_explicit(&mprof_hot.header_mode, memory_order_relaxed);
    mprof_sampler_fork_losses(&out->fork_lost_updates, &out->fork_lost_samples);
    size_t sym_bytes, sym_pcs;
    mprof_sym_cache_stats(&sym_bytes, &sym_pcs);
    out->symbolizer_cache_bytes = sym_bytes;
    out->symbolizer_cache_pcs = sym_pcs;
    mprof_peak_stats(&out->inuse_bytes_estimate, &out->peak_inuse_bytes, &out->peak_captured_bytes);
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

/* Set once, by the child's repair, before the child runs anything else. */
static uint64_t fork_lost_updates, fork_lost_blocks;

/* The child's repair (sampler.h, "Fork").  Its order does not matter: each
 * structure's repair reads and frees only its own locks. */
void mprof_sampler_postfork_child(void)
{
    uint32_t me = mprof_lock_token();
    struct mprof_fork_repair r = {0, 0, 0};
    mprof_buckets_repair(me, &r);
    mprof_live_table_repair(me, &r);
    mprof_rec_repair(me, &r);
    mprof_peak_repair(me, &r);
    mprof_labels_repair(me, &r);
    /* A lock the interrupted frames hold carries the parent's token, and
     * their unlocks only clear it; until then this thread keeps that
     * token, which no thread of the child can have while the parent
     * lives.  Otherwise it takes its own thread id from now on. */
    if (r.held_here == 0)
        mprof_lock_token_renew();
    fork_lost_updates = r.lost_updates;
    fork_lost_blocks = r.lost_blocks;
    /* The child's threads get fresh random streams. */
    tls_rng = 0;
}

void mprof_sampler_fork_losses(uint64_t *lost_updates, uint64_t *lost_blocks)
{
    *lost_updates = fork_lost_updates;
    *lost_blocks = fork_lost_blocks;
}

/* ------------------------------------------------------------ births */

/* The monotonic clock and the birth clock (units) at start-up; the
 * calibration (ns per birth unit, as double bits) and the span of birth
 * units it was taken over.
 * Threads racing to recalibrate compute the same ratio within the clock's
 * jitter: whichever store wins is right. */
static int64_t birth_ns0;
static uint64_t birth_units0;
static _Atomic uint64_t birth_ratio_bits;
static _Atomic uint64_t birth_span;

int64_t mprof_birth_ns(uint64_t ticks, uint64_t now)
{
    if (!mprof_hot.birth_tsc)
        return (int64_t)(ticks << MPROF_BIRTH_SHIFT);
    uint64_t span = now - birth_units0;
    uint64_t done = atomic_load_explicit(&birth_span, memory_order_relaxed);
    if (done == 0 || (span > 2 * done && done < ((uint64_t)1 << 30))) {
        /* Each doubling of the span since start-up halves the ratio's
         * error: one clock read per doubling, about 40 over a run. */
        double ns = (double)(mprof_mono_ns() - birth_ns0);
        if (span > 0 && ns > 0) {
            double r = ns / (double)span;
            uint64_t bits;
            memcpy(&bits, &r, sizeof bits);
            atomic_store_explicit(&birth_ratio_bits, bits, memory_order_relaxed);
            atomic_store_explicit(&birth_span, span, memory_order_relaxed);
        }
    }
    uint64_t bits = atomic_load_explicit(&birth_ratio_bits, memory_order_relaxed);
    double r;
    memcpy(&r, &bits, sizeof r);
    return (int64_t)((double)ticks * r);
}

/* ------------------------------------------------------------ start-up */

void mprof_sampler_init_off(void)
{
    /* Ready, with the rate at 0: allocations take the off path (a visit
     * per OFF_RECHECK_BYTES), and no table is mapped. */
    atomic_store(&mprof_hot.sample_rate, 0);
    atomic_store_explicit(&mprof_hot.sampler_ready, 1, memory_order_release);
}

void mprof_sampler_init(void)
{
    if (mprof_buckets_init() != 0) {
        mprof_warn("cannot map profiler tables; heap profiling disabled");
        return;
    }
    atomic_store(&tables_ready, 1);
    unsigned eax, ebx, ecx, edx;
    mprof_hot.have_prefetchw = __get_cpuid(0x80000001, &eax, &ebx, &ecx, &edx) && (ecx & bit_PRFCHW);
    /* Invariant TSC: CPUID 0x80000007, EDX bit 8. */
    if (__get_cpuid(0x80000007, &eax, &ebx, &ecx, &edx) && (edx & (1u << 8))) {
        mprof_hot.birth_tsc = 1;
        birth_ns0 = mprof_mono_ns();
        birth_units0 = mprof_birth_now();
    }

    /* The full leak check knows a block only if it was recorded: every
     * allocation then is, whatever MPROF_RATE says (said once if it said
     * otherwise). */
    long rate = mprof_option_long(MPROF_OPT_RATE);
    if (mprof_leak_mode() == MPROF_LEAKS_FULL && rate != 1) {
        if (mprof_option_is_set(MPROF_OPT_RATE))
            mprof_warn("MPROF_LEAKS=full records every allocation: MPROF_RATE=%ld is replaced by "
                       "1 (use MPROF_LEAKS=sampled to keep the rate)", rate);
        rate = 1;
    }
    atomic_store(&mprof_hot.sample_rate, rate);
    mprof_peak_init(rate);
    atomic_store(&mprof_hot.short_lived_ns, mprof_option_long(MPROF_OPT_SHORT_LIVED_US) * 1000);
    atomic_store_explicit(&mprof_hot.sampler_ready, 1, memory_order_release);
}
