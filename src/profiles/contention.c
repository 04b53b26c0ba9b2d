/*
 * Contention profiles: Go's block profile (SetBlockProfileRate) and mutex
 * profile (SetMutexProfileFraction) for pthread mutexes, rwlocks and
 * condition variables.  Semantics in docs/contention.md.
 *
 * Interposition.  libmprof defines pthread_mutex_lock and friends; loaded
 * with LD_PRELOAD, or linked ahead of the C library, these win symbol
 * resolution for the whole process (libstdc++'s std::mutex and
 * std::condition_variable included), and forward to the C library's
 * functions found with dlsym(RTLD_NEXT).  The condition-variable functions
 * exist in two versions in glibc: pthread_cond_wait@GLIBC_2.2.5 is the
 * pre-NPTL compatibility code with another object layout, and the default
 * is @@GLIBC_2.3.2, which is what programs are linked against; we ask for
 * it by name (dlvsym), because a plain dlsym is not guaranteed to give the
 * default version of a symbol that has several.
 *
 * Cost when off.  Every wrapper does one load of lock_flags and a
 * never-taken branch, then tail-calls the real function through a pointer
 * that was resolved once.  lock_flags starts non-zero (NEED_RESOLVE) so
 * that the same single test also covers "not resolved yet": no second
 * check on the fast path.  bench/contention_bench.sh measures it.
 *
 * When on.  A lock is first tried (trylock); only when that fails is the
 * acquisition timed and, for the mutex profile, the waiter registered in
 * the side table below.  An uncontended lock costs one trylock, which is
 * what lock itself does first.  Condition-variable waits always block, so
 * they are always timed.
 *
 * Re-entrancy.  Everything on the recording path (stack capture, the stack
 * table, the side table) uses only atomics, spinning on a word, and arena
 * memory: no malloc and no pthread lock, so it can neither deadlock against
 * the program nor recurse into these wrappers.  It still runs with the
 * profiler guard held, so that a lock taken by anything underneath (the
 * libgcc unwinder's fallback path takes a pthread mutex) passes straight
 * through.  Threads of the profiler hold the guard for their whole life:
 * their waits are never profiled.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/options.h"
#include "core/spinlock.h"
#include "heap/labels.h"
#include "profiles/hooks.h"
#include "profiles/stackprof.h"

#define EXPORT __attribute__((visibility("default")))

/* Bits of lock_flags. */
#define NEED_RESOLVE 1u
#define BLOCK_ON 2u
#define MUTEX_ON 4u


static _Atomic long block_rate;   /* ns; 0 = off */
static _Atomic int mutex_fraction; /* 1/N of unlocks with waiters; 0 = off */

static mprof_stk_table block_table, mutex_table;


/* ------------------------------------------------------- real functions */

typedef int (*mutex_fn)(pthread_mutex_t *);
typedef int (*mutex_timed_fn)(pthread_mutex_t *, const struct timespec *);
typedef int (*mutex_clock_fn)(pthread_mutex_t *, clockid_t, const struct timespec *);
typedef int (*rw_fn)(pthread_rwlock_t *);
typedef int (*rw_timed_fn)(pthread_rwlock_t *, const struct timespec *);
typedef int (*rw_clock_fn)(pthread_rwlock_t *, clockid_t, const struct timespec *);
typedef int (*cond_fn)(pthread_cond_t *, pthread_mutex_t *);
typedef int (*cond_timed_fn)(pthread_cond_t *, pthread_mutex_t *, const struct timespec *);
typedef int (*cond_clock_fn)(pthread_cond_t *, pthread_mutex_t *, clockid_t,
                             const struct timespec *);

/*
 * The flag word every wrapper tests, and the C library's functions they
 * forward to, on cache lines of their own: read by every lock call in every
 * thread, written only when resolving and when a profile is switched on or
 * off, so nothing that changes often may share them.  The pointers are
 * stored before resolve() clears NEED_RESOLVE with release order, and read
 * after the flag word was loaded with acquire order (a plain load on
 * x86-64).  Atomic because two threads may resolve at once; they store the
 * same values.
 */
static struct {
    _Atomic unsigned flags; /* NEED_RESOLVE | BLOCK_ON | MUTEX_ON */
    _Atomic(mutex_fn) mutex_lock, mutex_trylock, mutex_unlock;
    _Atomic(mutex_timed_fn) mutex_timedlock;
    _Atomic(mutex_clock_fn) mutex_clocklock;
    _Atomic(rw_fn) rw_rdlock, rw_wrlock, rw_tryrdlock, rw_trywrlock, rw_unlock;
    _Atomic(rw_timed_fn) rw_timedrdlock, rw_timedwrlock;
    _Atomic(rw_clock_fn) rw_clockrdlock, rw_clockwrlock;
    _Atomic(cond_fn) cond_wait;
    _Atomic(cond_timed_fn) cond_timedwait;
    _Atomic(cond_clock_fn) cond_clockwait;
} __attribute__((aligned(64))) real = {.flags = NEED_RESOLVE};

#define lock_flags (real.flags)

#define REAL(name) atomic_load_explicit(&real.name, memory_order_relaxed)

static void fatal_missing(const char *name)
{
    static const char prefix[] = "mprof: cannot find the C library's ";
    static const char suffix[] = "; aborting\n";
    (void)!write(2, prefix, sizeof prefix - 1);
    (void)!write(2, name, strlen(name));
    (void)!write(2, suffix, sizeof suffix - 1);
    abort();
}

#define STORE_REAL(field, p)                                                               \
    atomic_store_explicit(&real.field, (__typeof__(REAL(field)))(p), memory_order_relaxed)

/* A function we wrap: the next definition after ours (and never ours). */
#define RESOLVE(field, name, version, required)                                            \
    do {                                                                                   \
        void *p_ = mprof_next_symbol(#name, version);                                      \
        if (p_ == NULL && (required))                                                      \
            fatal_missing(#name);                                                          \
        STORE_REAL(field, p_);                                                             \
    } while (0)

/* A function we only call (the trylocks): &name here is the C library's. */
#define RESOLVE_CALLED(field, name)                                                        \
    do {                                                                                   \
        void *p_ = mprof_next_symbol(#name, NULL);                                         \
        STORE_REAL(field, p_ != NULL ? p_ : (void *)&name);                                \
    } while (0)

/*
 * Every thread that finds NEED_RESOLVE set resolves for itself: no thread
 * ever waits for another here.  (Waiting could deadlock: a thread running a
 * library constructor inside dlopen holds the loader lock that dlsym in the
 * other thread needs.)  The constructor resolves before main, so in
 * practice this runs once, single-threaded.
 */
static void resolve(void)
{
    mprof_guard_enter(); /* dlsym may allocate: not the program's */
    RESOLVE(mutex_lock, pthread_mutex_lock, NULL, 1);
    RESOLVE_CALLED(mutex_trylock, pthread_mutex_trylock);
    RESOLVE(mutex_unlock, pthread_mutex_unlock, NULL, 1);
    RESOLVE(mutex_timedlock, pthread_mutex_timedlock, NULL, 0);
    RESOLVE(mutex_clocklock, pthread_mutex_clocklock, NULL, 0);
    RESOLVE(rw_rdlock, pthread_rwlock_rdlock, NULL, 1);
    RESOLVE(rw_wrlock, pthread_rwlock_wrlock, NULL, 1);
    RESOLVE_CALLED(rw_tryrdlock, pthread_rwlock_tryrdlock);
    RESOLVE_CALLED(rw_trywrlock, pthread_rwlock_trywrlock);
    RESOLVE(rw_unlock, pthread_rwlock_unlock, NULL, 1);
    RESOLVE(rw_timedrdlock, pthread_rwlock_timedrdlock, NULL, 0);
    RESOLVE(rw_timedwrlock, pthread_rwlock_timedwrlock, NULL, 0);
    RESOLVE(rw_clockrdlock, pthread_rwlock_clockrdlock, NULL, 0);
    RESOLVE(rw_clockwrlock, pthread_rwlock_clockwrlock, NULL, 0);
    RESOLVE(cond_wait, pthread_cond_wait, "GLIBC_2.3.2", 1);
    RESOLVE(cond_timedwait, pthread_cond_timedwait, "GLIBC_2.3.2", 0);
    RESOLVE(cond_clockwait, pthread_cond_clockwait, NULL, 0);
    mprof_guard_leave();
    atomic_fetch_and_explicit(&lock_flags, ~NEED_RESOLVE, memory_order_release);
}

/* The profiling bits, after making sure the real functions are known. */
static inline unsigned profiling_flags(void)
{
    unsigned f = atomic_load_explicit(&lock_flags, memory_order_acquire);
    if (MPROF_UNLIKELY(f & NEED_RESOLVE)) {
        resolve();
        f = atomic_load_explicit(&lock_flags, memory_order_acquire);
    }
    return f & (BLOCK_ON | MUTEX_ON);
}

/* The test of every wrapper's fast path: non-zero means "go slow".  The
 * unlock wrappers have nothing to do for the block profile, so they only
 * look at the bits that concern them. */
#define SLOW_PATH() MPROF_UNLIKELY(atomic_load_explicit(&lock_flags, memory_order_acquire) != 0)
#define SLOW_UNLOCK()                                                                      \
    MPROF_UNLIKELY(atomic_load_explicit(&lock_flags, memory_order_acquire) &              \
                   (NEED_RESOLVE | MUTEX_ON))

/* ------------------------------------------------------------- helpers */

/* Per-thread generator state for the sampling decisions (core/os.h). */
static __thread uint64_t tls_rng __attribute__((tls_model("initial-exec")));

static uint64_t next_random(void)
{
    if (MPROF_UNLIKELY(tls_rng == 0))
        tls_rng = mprof_random_seed();
    return mprof_random(&tls_rng);
}

/* ----------------------------------------------------------- recording */

/*
 * In MPROF_ENTRY_TEXT, like every function between the program's call and
 * the stack capture: the captured stack starts at the caller of
 * pthread_mutex_lock (or unlock).  The event carries the recording
 * thread's labels (heap/labels.h): the waiter's in the block profile, the
 * releasing holder's in the mutex profile, as the stack is theirs.
 */
static void MPROF_ENTRY_TEXT record(mprof_stk_table *t, double count, double delay)
{
    uintptr_t pcs[MPROF_MAX_STACK];
    mprof_guard_enter();
    int n = mprof_stack_capture(pcs, MPROF_MAX_STACK);
    mprof_stk_add(t, pcs, n, mprof_tls_labels, count, delay);
    mprof_guard_leave();
}

/*
 * A wait of d ns ended.  As Go's blockevent since Go 1.17: a wait at least
 * as long as the rate is always recorded; a shorter one with probability
 * d / rate, and then weighted by rate / d, so that both the contention
 * count and the delay are unbiased estimates of the totals.
 */
static void MPROF_ENTRY_TEXT block_event(int64_t d)
{
    long rate = atomic_load_explicit(&block_rate, memory_order_relaxed);
    if (rate <= 0 || d <= 0)
        return;
    if (d >= rate) {
        record(&block_table, 1.0, (double)d);
        return;
    }
    if ((int64_t)(next_random() % (uint64_t)rate) >= d)
        return;
    record(&block_table, (double)rate / (double)d, (double)rate);
}

/* Waiters suffered d ns during the critical section that is ending: one
 * unlock in N is recorded, with N times the weight (Go's mutexevent). */
static void MPROF_ENTRY_TEXT mutex_event(int64_t d)
{
    int frac = atomic_load_explicit(&mutex_fraction, memory_order_relaxed);
    if (frac <= 0 || d <= 0)
        return;
    if (frac > 1 && next_random() % (uint64_t)frac != 0)
        return;
    record(&mutex_table, (double)frac, (double)d * frac);
}

/* ---------------------------------------------------------- side table */

/*
 * How the unlocker learns the delay it caused.  A waiter registers in a
 * small table keyed by the lock's address before blocking and leaves after
 * acquiring.  Per lock the table keeps
 *
 *     waiters     how many threads are registered,
 *     sum         the sum over them of their "base" time, minus ref,
 *     last_charge when an unlocker last charged this lock,
 *
 * where a waiter's base is when it started waiting or, if later, the last
 * charge.  An unlocker at time now charges every registered waiter's wait
 * since its base:  delay = waiters * (now - ref) - sum,  and then sets every
 * base to now (ref = now, sum = 0).  A waiter leaving removes its own base,
 * max(start, last_charge).  So each nanosecond a thread spends waiting is
 * charged exactly once, to the holder whose critical section it fell in -
 * except for the last stretch between the final unlock and the waiter's
 * return, which is wake-up latency, not the holder's doing.  Keeping sums
 * relative to ref (reset at every charge) bounds them by one critical
 * section's waiting, so they cannot overflow.
 *
 * The table is direct-mapped: 1024 cache-line groups of 4 entries, each
 * group with a spinlock held for a few instructions.  An entry belongs to a
 * lock only while it has waiters, so 4096 locks can be contended at once;
 * beyond that (or 5 contended locks in one group) waiters go unregistered
 * and are counted in side_dropped.  The unlocker's common case - nobody
 * waiting on any lock of its group - is one relaxed load.
 */
#define SIDE_GROUPS 1024
#define SIDE_WAYS 4

struct side_entry {
    uintptr_t addr;
    uint32_t waiters;
    int64_t ref, sum, last_charge;
};

struct side_group {
    _Atomic uintptr_t lock; /* 0, or the holding thread's id (thread_id()) */
    _Atomic uint32_t waiters; /* over the group's entries */
    struct side_entry e[SIDE_WAYS];
} __attribute__((aligned(64)));

static struct side_group side[SIDE_GROUPS];
static _Atomic uint64_t side_dropped;

static inline struct side_group *side_group_of(const void *lock)
{
    uint64_t h = (uint64_t)(uintptr_t)lock * 0x9e3779b97f4a7c15ULL;
    return &side[h >> (64 - 10)];
}

/* A number no other live thread has: the address of one of its TLS words. */
static inline uintptr_t thread_id(void) { return (uintptr_t)&tls_rng; }

/*
 * Takes a group's spinlock; returns 0 without it if this very thread holds
 * it already.  That happens only when a signal handler of the program
 * locks or unlocks a pthread mutex (not async-signal-safe, but done) while
 * the thread it interrupted was inside the few instructions below: the
 * handler's event then goes unaccounted rather than spinning forever.
 */
static int side_lock(struct side_group *g)
{
    uintptr_t self = thread_id();
    /* The holder runs a handful of instructions; if it was preempted
     * meanwhile, the backoff lets it run. */
    for (int rounds = 0;; mprof_spin_backoff(&rounds)) {
        uintptr_t expected = 0;
        if (atomic_compare_exchange_weak_explicit(&g->lock, &expected, self,
                                                  memory_order_acquire, memory_order_relaxed))
            return 1;
        if (expected == self)
            return 0;
    }
}

static void side_unlock(struct side_group *g)
{
    atomic_store_explicit(&g->lock, 0, memory_order_release);
}

/* Registers a waiter on lock that started at t0; returns its entry index,
 * or -1 when the table has no room. */
static int side_enter(const void *lock, int64_t t0)
{
    struct side_group *g = side_group_of(lock);
    uintptr_t a = (uintptr_t)lock;
    if (!side_lock(g)) {
        atomic_fetch_add_explicit(&side_dropped, 1, memory_order_relaxed);
        return -1;
    }
    int idx = -1, free_idx = -1;
    for (int i = 0; i < SIDE_WAYS; i++) {
        if (g->e[i].waiters > 0 && g->e[i].addr == a) {
            idx = i;
            break;
        }
        if (g->e[i].waiters == 0 && free_idx < 0)
            free_idx = i;
    }
    if (idx < 0 && free_idx >= 0) {
        idx = free_idx;
        struct side_entry *e = &g->e[idx];
        e->addr = a;
        e->ref = t0;
        e->sum = 0;
        e->last_charge = INT64_MIN;
    }
    if (idx >= 0) {
        struct side_entry *e = &g->e[idx];
        e->waiters++;
        e->sum += t0 - e->ref;
        atomic_fetch_add_explicit(&g->waiters, 1, memory_order_relaxed);
    }
    side_unlock(g);
    if (idx < 0)
        atomic_fetch_add_explicit(&side_dropped, 1, memory_order_relaxed);
    return idx;
}

static void side_leave(const void *lock, int idx, int64_t t0)
{
    if (idx < 0)
        return;
    struct side_group *g = side_group_of(lock);
    /* Cannot fail: a handler that interrupted this thread inside the lock
     * found it held by us and registered nothing, and this thread does
     * not hold it now.  Were it to, leaving the count wrong beats
     * spinning on ourselves. */
    if (!side_lock(g))
        return;
    struct side_entry *e = &g->e[idx];
    int64_t base = t0 > e->last_charge ? t0 : e->last_charge;
    e->sum -= base - e->ref;
    e->waiters--;
    atomic_fetch_sub_explicit(&g->waiters, 1, memory_order_relaxed);
    side_unlock(g);
}

/* The delay the waiters of lock suffered since their bases; resets them. */
static int64_t side_charge(const void *lock)
{
    struct side_group *g = side_group_of(lock);
    if (atomic_load_explicit(&g->waiters, memory_order_relaxed) == 0)
        return 0;
    uintptr_t a = (uintptr_t)lock;
    int64_t delay = 0;
    if (!side_lock(g))
        return 0;
    for (int i = 0; i < SIDE_WAYS; i++) {
        struct side_entry *e = &g->e[i];
        if (e->waiters > 0 && e->addr == a) {
            /* Read under the lock: every registered waiter's start was
             * read before it took the lock, so now is not earlier. */
            int64_t now = mprof_mono_ns();
            delay = (int64_t)e->waiters * (now - e->ref) - e->sum;
            e->ref = now;
            e->sum = 0;
            e->last_charge = now;
            break;
        }
    }
    side_unlock(g);
    return delay;
}

/* ----------------------------------------------------- wait accounting */

/*
 * The common shape of every timed acquisition: register (mutex profile),
 * wait, leave, record (block profile).  The wait is done by the callback so
 * that this stays one function for every lock type.
 */
struct wait {
    const void *lock;
    unsigned flags;
    int64_t t0;
    int side_idx;
};

static inline void wait_begin(struct wait *w, const void *lock, unsigned flags)
{
    w->lock = lock;
    w->flags = flags;
    w->t0 = mprof_mono_ns();
    w->side_idx = (flags & MUTEX_ON) ? side_enter(lock, w->t0) : -1;
}

/* acquired_or_waited: the call blocked (acquired the lock, or timed out
 * after waiting), so its duration is blocked time. */
static void MPROF_ENTRY_TEXT wait_end(struct wait *w, int acquired_or_waited)
{
    int64_t t1 = mprof_mono_ns();
    side_leave(w->lock, w->side_idx, w->t0);
    if ((w->flags & BLOCK_ON) && acquired_or_waited)
        block_event(t1 - w->t0);
}

/* Charges the waiters of lock to the caller, which is releasing it. */
static void MPROF_ENTRY_TEXT charge_release(const void *lock)
{
    int64_t d = side_charge(lock);
    if (d > 0)
        mutex_event(d);
}

/* trylock said the lock is free or the call is already decided: these
 * results are final and must be returned as they are. */
static inline int try_decided(int rc)
{
    return rc != EBUSY;
}

/* -------------------------------------------------------------- mutexes */

static int MPROF_ENTRY_TEXT mutex_lock_slow(pthread_mutex_t *m)
{
    unsigned flags = profiling_flags();
    if (flags == 0 || mprof_tls_guard)
        return REAL(mutex_lock)(m);
    int rc = REAL(mutex_trylock)(m);
    /* EBUSY: held by someone (or by us: an error-checking mutex then fails
     * with EDEADLK below, a normal one deadlocks as it would anyway).
     * Anything else (0, EOWNERDEAD, EAGAIN, EINVAL...) is the answer lock
     * would have given without blocking. */
    if (try_decided(rc))
        return rc == EINVAL ? REAL(mutex_lock)(m) : rc;
    struct wait w;
    wait_begin(&w, m, flags);
    rc = REAL(mutex_lock)(m);
    wait_end(&w, rc == 0 || rc == EOWNERDEAD);
    return rc;
}

EXPORT int MPROF_ENTRY_TEXT pthread_mutex_lock(pthread_mutex_t *m)
{
    if (SLOW_PATH())
        return mutex_lock_slow(m);
    return REAL(mutex_lock)(m);
}

static int MPROF_ENTRY_TEXT mutex_timedlock_slow(pthread_mutex_t *m, const struct timespec *ts)
{
    unsigned flags = profiling_flags();
    mutex_timed_fn real_fn = REAL(mutex_timedlock);
    if (real_fn == NULL)
        return ENOSYS;
    if (flags == 0 || mprof_tls_guard)
        return real_fn(m, ts);
    int rc = REAL(mutex_trylock)(m);
    if (try_decided(rc))
        return rc == EINVAL ? real_fn(m, ts) : rc;
    struct wait w;
    wait_begin(&w, m, flags);
    rc = real_fn(m, ts);
    wait_end(&w, rc == 0 || rc == EOWNERDEAD || rc == ETIMEDOUT);
    return rc;
}

EXPORT int MPROF_ENTRY_TEXT pthread_mutex_timedlock(pthread_mutex_t *m, const struct timespec *ts)
{
    if (SLOW_PATH())
        return mutex_timedlock_slow(m, ts);
    return REAL(mutex_timedlock)(m, ts);
}

static int MPROF_ENTRY_TEXT mutex_clocklock_slow(pthread_mutex_t *m, clockid_t clk,
                                                 const struct timespec *ts)
{
    unsigned flags = profiling_flags();
    mutex_clock_fn real_fn = REAL(mutex_clocklock);
    if (real_fn == NULL)
        return ENOSYS;
    if (flags == 0 || mprof_tls_guard)
        return real_fn(m, clk, ts);
    int rc = REAL(mutex_trylock)(m);
    if (try_decided(rc))
        return rc == EINVAL ? real_fn(m, clk, ts) : rc;
    struct wait w;
    wait_begin(&w, m, flags);
    rc = real_fn(m, clk, ts);
    wait_end(&w, rc == 0 || rc == EOWNERDEAD || rc == ETIMEDOUT);
    return rc;
}

EXPORT int MPROF_ENTRY_TEXT pthread_mutex_clocklock(pthread_mutex_t *m, clockid_t clk,
                                                    const struct timespec *ts)
{
    if (SLOW_PATH())
        return mutex_clocklock_slow(m, clk, ts);
    return REAL(mutex_clocklock)(m, clk, ts);
}

static int MPROF_ENTRY_TEXT mutex_unlock_slow(pthread_mutex_t *m)
{
    unsigned flags = profiling_flags();
    if (!(flags & MUTEX_ON) || mprof_tls_guard)
        return REAL(mutex_unlock)(m);
    /* The charge is computed while the lock is still held, so that no
     * waiter can acquire and leave in between with a stale base; the stack
     * is taken after the release, so as not to lengthen the critical
     * section by an unwind. */
    int64_t d = side_charge(m);
    int rc = REAL(mutex_unlock)(m);
    if (rc == 0 && d > 0)
        mutex_event(d);
    return rc;
}

EXPORT int MPROF_ENTRY_TEXT pthread_mutex_unlock(pthread_mutex_t *m)
{
    if (SLOW_UNLOCK())
        return mutex_unlock_slow(m);
    return REAL(mutex_unlock)(m);
}

/* -------------------------------------------------------------- rwlocks */

static int MPROF_ENTRY_TEXT rwlock_slow(pthread_rwlock_t *l, int write)
{
    unsigned flags = profiling_flags();
    rw_fn lock_fn = write ? REAL(rw_wrlock) : REAL(rw_rdlock);
    if (flags == 0 || mprof_tls_guard)
        return lock_fn(l);
    int rc = (write ? REAL(rw_trywrlock) : REAL(rw_tryrdlock))(l);
    if (try_decided(rc))
        return rc == EINVAL ? lock_fn(l) : rc;
    struct wait w;
    wait_begin(&w, l, flags);
    rc = lock_fn(l);
    wait_end(&w, rc == 0);
    return rc;
}

EXPORT int MPROF_ENTRY_TEXT pthread_rwlock_rdlock(pthread_rwlock_t *l)
{
    if (SLOW_PATH())
        return rwlock_slow(l, 0);
    return REAL(rw_rdlock)(l);
}

EXPORT int MPROF_ENTRY_TEXT pthread_rwlock_wrlock(pthread_rwlock_t *l)
{
    if (SLOW_PATH())
        return rwlock_slow(l, 1);
    return REAL(rw_wrlock)(l);
}

static int MPROF_ENTRY_TEXT rwlock_timed_slow(pthread_rwlock_t *l, int write, clockid_t clk,
                                              int with_clock, const struct timespec *ts)
{
    unsigned flags = profiling_flags();
    rw_timed_fn timed = write ? REAL(rw_timedwrlock) : REAL(rw_timedrdlock);
    rw_clock_fn clocked = write ? REAL(rw_clockwrlock) : REAL(rw_clockrdlock);
    if (with_clock ? clocked == NULL : timed == NULL)
        return ENOSYS;
#define CALL_TIMED() (with_clock ? clocked(l, clk, ts) : timed(l, ts))
    if (flags == 0 || mprof_tls_guard)
        return CALL_TIMED();
    int rc = (write ? REAL(rw_trywrlock) : REAL(rw_tryrdlock))(l);
    if (try_decided(rc))
        return rc == EINVAL ? CALL_TIMED() : rc;
    struct wait w;
    wait_begin(&w, l, flags);
    rc = CALL_TIMED();
    wait_end(&w, rc == 0 || rc == ETIMEDOUT);
    return rc;
#undef CALL_TIMED
}

EXPORT int MPROF_ENTRY_TEXT pthread_rwlock_timedrdlock(pthread_rwlock_t *l,
                                                       const struct timespec *ts)
{
    if (SLOW_PATH())
        return rwlock_timed_slow(l, 0, CLOCK_REALTIME, 0, ts);
    return REAL(rw_timedrdlock)(l, ts);
}

EXPORT int MPROF_ENTRY_TEXT pthread_rwlock_timedwrlock(pthread_rwlock_t *l,
                                                       const struct timespec *ts)
{
    if (SLOW_PATH())
        return rwlock_timed_slow(l, 1, CLOCK_REALTIME, 0, ts);
    return REAL(rw_timedwrlock)(l, ts);
}

EXPORT int MPROF_ENTRY_TEXT pthread_rwlock_clockrdlock(pthread_rwlock_t *l, clockid_t clk,
                                                       const struct timespec *ts)
{
    if (SLOW_PATH())
        return rwlock_timed_slow(l, 0, clk, 1, ts);
    return REAL(rw_clockrdlock)(l, clk, ts);
}

EXPORT int MPROF_ENTRY_TEXT pthread_rwlock_clockwrlock(pthread_rwlock_t *l, clockid_t clk,
                                                       const struct timespec *ts)
{
    if (SLOW_PATH())
        return rwlock_timed_slow(l, 1, clk, 1, ts);
    return REAL(rw_clockwrlock)(l, clk, ts);
}

static int MPROF_ENTRY_TEXT rwlock_unlock_slow(pthread_rwlock_t *l)
{
    unsigned flags = profiling_flags();
    if (!(flags & MUTEX_ON) || mprof_tls_guard)
        return REAL(rw_unlock)(l);
    int64_t d = side_charge(l);
    int rc = REAL(rw_unlock)(l);
    if (rc == 0 && d > 0)
        mutex_event(d);
    return rc;
}

EXPORT int MPROF_ENTRY_TEXT pthread_rwlock_unlock(pthread_rwlock_t *l)
{
    if (SLOW_UNLOCK())
        return rwlock_unlock_slow(l);
    return REAL(rw_unlock)(l);
}

/* ------------------------------------------------- condition variables */

/*
 * A condition wait always blocks, and is blocked time in Go's sense
 * (sync.Cond.Wait is in the block profile): it is timed from call to
 * return, the re-acquisition of the mutex included.  It also releases the
 * mutex inside the C library, where our unlock wrapper does not see it, so
 * the mutex's waiters are charged to the waiting thread here, as an unlock.
 */
static int MPROF_ENTRY_TEXT cond_slow(pthread_cond_t *c, pthread_mutex_t *m, int kind,
                                      clockid_t clk, const struct timespec *ts)
{
    unsigned flags = profiling_flags();
    cond_fn plain = REAL(cond_wait);
    cond_timed_fn timed = REAL(cond_timedwait);
    cond_clock_fn clocked = REAL(cond_clockwait);
    if ((kind == 1 && timed == NULL) || (kind == 2 && clocked == NULL))
        return ENOSYS;
#define CALL_COND() (kind == 0 ? plain(c, m) : kind == 1 ? timed(c, m, ts) : clocked(c, m, clk, ts))
    if (flags == 0 || mprof_tls_guard)
        return CALL_COND();
    if (flags & MUTEX_ON)
        charge_release(m);
    if (!(flags & BLOCK_ON))
        return CALL_COND();
    int64_t t0 = mprof_mono_ns();
    int rc = CALL_COND();
    int64_t t1 = mprof_mono_ns();
    if (rc == 0 || rc == ETIMEDOUT)
        block_event(t1 - t0);
    return rc;
#undef CALL_COND
}

EXPORT int MPROF_ENTRY_TEXT pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m)
{
    if (SLOW_PATH())
        return cond_slow(c, m, 0, 0, NULL);
    return REAL(cond_wait)(c, m);
}

EXPORT int MPROF_ENTRY_TEXT pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m,
                                                   const struct timespec *ts)
{
    if (SLOW_PATH())
        return cond_slow(c, m, 1, 0, ts);
    return REAL(cond_timedwait)(c, m, ts);
}

EXPORT int MPROF_ENTRY_TEXT pthread_cond_clockwait(pthread_cond_t *c, pthread_mutex_t *m,
                                                   clockid_t clk, const struct timespec *ts)
{
    if (SLOW_PATH())
        return cond_slow(c, m, 2, clk, ts);
    return REAL(cond_clockwait)(c, m, clk, ts);
}

/* ------------------------------------------------------------ settings */

/* Turns a profile's bit on or off; the table is made first so that no
 * event finds it missing. */
static int set_flag(unsigned bit, int on, mprof_stk_table *t)
{
    if (on && mprof_stk_init(t) != 0) {
        mprof_warn("no memory for the %s profile; it stays off",
                   bit == BLOCK_ON ? "block" : "mutex");
        return -1;
    }
    if (on)
        atomic_fetch_or_explicit(&lock_flags, bit, memory_order_release);
    else
        atomic_fetch_and_explicit(&lock_flags, ~bit, memory_order_release);
    return 0;
}

MPROF_API void mprof_set_block_rate(long ns)
{
    if (ns < 0)
        ns = 0;
    if (ns > mprof_option_max(MPROF_OPT_BLOCK_RATE))
        ns = mprof_option_max(MPROF_OPT_BLOCK_RATE);
    /* The rate first: an event that sees the bit sees a rate > 0. */
    if (ns > 0)
        atomic_store(&block_rate, ns);
    if (set_flag(BLOCK_ON, ns > 0, &block_table) != 0)
        return;
    if (ns == 0)
        atomic_store(&block_rate, 0);
}

MPROF_API long mprof_get_block_rate(void) { return atomic_load(&block_rate); }

MPROF_API int mprof_set_mutex_fraction(int n)
{
    int old = atomic_load(&mutex_fraction);
    if (n < 0)
        return old;
    if (n > 0)
        atomic_store(&mutex_fraction, n);
    if (set_flag(MUTEX_ON, n > 0, &mutex_table) != 0)
        return old;
    if (n == 0)
        atomic_store(&mutex_fraction, 0);
    return old;
}

/* ------------------------------------------------------------- writing */

static const char *const contention_types[] = {"contentions", "count", "delay", "nanoseconds"};

/* When the library started: the duration of a cumulative profile. */
static _Atomic int64_t start_mono_ns;

static void describe(int mutex, mprof_stk_profile *d, char *comment, size_t len)
{
    memset(d, 0, sizeof *d);
    d->name = mutex ? "mutex" : "block";
    d->legacy_name = mutex ? "mutex" : "contention";
    d->nvalues = 2;
    d->types = contention_types;
    d->period_type = "contentions";
    d->period_unit = "count";
    mprof_stk_table *t = mutex ? &mutex_table : &block_table;
    uint64_t dropped = atomic_load(&t->dropped);
    if (mutex) {
        int frac = atomic_load(&mutex_fraction);
        d->period = frac;
        d->sampling_period = frac;
        snprintf(comment, len,
                 "mprof %s mutex profile: delay of waiters charged to the releasing stack, "
                 "1/%d of contended releases sampled; %llu events lost (table full), %llu "
                 "waiters untracked (side table full)",
                 MPROF_VERSION, frac, (unsigned long long)dropped,
                 (unsigned long long)atomic_load(&side_dropped));
    } else {
        long rate = atomic_load(&block_rate);
        d->period = rate;
        snprintf(comment, len,
                 "mprof %s block profile: waits of %ld ns or more all recorded, shorter ones "
                 "sampled and unbiased; %llu events lost (table full)",
                 MPROF_VERSION, rate, (unsigned long long)dropped);
    }
    d->comment = comment;
    d->time_ns = mprof_wall_ns();
    d->duration_ns = mprof_mono_ns() - atomic_load(&start_mono_ns);
}

static int write_contention(int fd, int debug, int mutex, const mprof_stk_set *before,
                            int64_t window_start_mono)
{
    mprof_guard_enter();
    mprof_stk_set set;
    int rc = mprof_stk_snapshot(mutex ? &mutex_table : &block_table, &set);
    if (rc == 0) {
        if (before != NULL)
            mprof_stk_set_subtract(&set, before);
        char comment[512];
        mprof_stk_profile d;
        describe(mutex, &d, comment, sizeof comment);
        if (window_start_mono > 0)
            d.duration_ns = mprof_mono_ns() - window_start_mono;
        rc = mprof_stk_write(fd, debug, &d, &set);
    }
    int saved = errno;
    mprof_stk_set_free(&set);
    mprof_guard_leave();
    errno = saved;
    return rc;
}

MPROF_API int mprof_write_block_profile_fd(int fd, int debug)
{
    return write_contention(fd, debug, 0, NULL, 0);
}

MPROF_API int mprof_write_mutex_profile_fd(int fd, int debug)
{
    return write_contention(fd, debug, 1, NULL, 0);
}

/* ------------------------------------------------------------ registry */

static long block_count(void) { return (long)atomic_load(&block_table.used); }
static long mutex_count(void) { return (long)atomic_load(&mutex_table.used); }

static int block_write(int fd, const mprof_profile_params *p, const mprof_profile_base *base)
{
    return write_contention(fd, p->debug, 0, base ? base->snapshot : NULL,
                            base ? base->start_mono_ns : 0);
}

static int mutex_write(int fd, const mprof_profile_params *p, const mprof_profile_base *base)
{
    return write_contention(fd, p->debug, 1, base ? base->snapshot : NULL,
                            base ? base->start_mono_ns : 0);
}

static void *block_snapshot(void) { return mprof_stk_snapshot_sorted(&block_table); }
static void *mutex_snapshot(void) { return mprof_stk_snapshot_sorted(&mutex_table); }

static const mprof_profile block_profile = {
    .name = "block",
    .description = "Stack traces that led to blocking on pthread mutexes, rwlocks and "
                   "condition variables (MPROF_BLOCK_RATE, mprof_set_block_rate)",
    .what = "block profile",
    .exit_option = MPROF_OPT_BLOCK,
    .count = block_count,
    .write = block_write,
    .snapshot = block_snapshot,
    .snapshot_free = mprof_stk_snapshot_free,
};

static const mprof_profile mutex_profile = {
    .name = "mutex",
    .description = "Stack traces of holders of contended pthread mutexes and rwlocks "
                   "(MPROF_MUTEX_FRACTION, mprof_set_mutex_fraction)",
    .what = "mutex profile",
    .exit_option = MPROF_OPT_MUTEX,
    .count = mutex_count,
    .write = mutex_write,
    .snapshot = mutex_snapshot,
    .snapshot_free = mprof_stk_snapshot_free,
};

/* ------------------------------------------------------------ life cycle */

/* In a forked child only the forking thread exists: waiters registered by
 * the others never leave, and a group lock may be held by a thread that is
 * gone.  Start the side table afresh (one thread: no race). */
void mprof_contention_postfork_child(void)
{
    memset(side, 0, sizeof side);
}

/* Run by the life-cycle table after the stack and tracer rows: the guard
 * and the stack capture are ready, and the program has not started. */
void mprof_contention_init(void)
{
    mprof_guard_enter();
    atomic_store(&start_mono_ns, mprof_mono_ns());
    if (atomic_load(&lock_flags) & NEED_RESOLVE)
        resolve();

    (void)mprof_profile_register(&block_profile);
    (void)mprof_profile_register(&mutex_profile);
    /* A file asked for without a rate gets every event: the setting Go
     * programs use most (SetBlockProfileRate(1)), and the only one that
     * needs no explaining. */
    long rate = mprof_option_is_set(MPROF_OPT_BLOCK_RATE) ? mprof_option_long(MPROF_OPT_BLOCK_RATE)
                : mprof_profile_exit_pattern(&block_profile) ? 1
                                                              : 0;
    long frac = mprof_option_is_set(MPROF_OPT_MUTEX_FRACTION)
                    ? mprof_option_long(MPROF_OPT_MUTEX_FRACTION)
                : mprof_profile_exit_pattern(&mutex_profile) ? 1
                                                              : 0;
    if (rate > 0)
        mprof_set_block_rate(rate);
    if (frac > 0)
        mprof_set_mutex_fraction((int)frac);

    mprof_guard_leave();
}
