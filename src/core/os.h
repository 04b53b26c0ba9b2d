/*
 * core/os: the profiler's one copy of each small thing it asks the kernel
 * or the dynamic linker for: clocks, the thread id, futex waits and wakes,
 * a per-thread random generator, the test "is this signal handler ours",
 * and the lookup of the function our own definition stands in front of.
 *
 * Header-only (static inline), for two reasons: the hot paths (the heap
 * sampler's interval draw, the CPU profiler's signal handler) must not pay
 * a call for a few instructions, and unit tests that compile a single file
 * of the profiler get these without linking anything more.
 *
 * Unless a function says otherwise it is async-signal-safe: a system call
 * or two, no locks, no malloc, errno left as the kernel set it.  Only libc
 * is included (the rule of core/).
 */
#ifndef MPROF_CORE_OS_H
#define MPROF_CORE_OS_H

#include <dlfcn.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- clocks */

/* Clock clk in nanoseconds; 0 if the clock cannot be read (the CPU clock
 * of a thread that has exited).  vDSO for the common clocks: no system
 * call.  Async-signal-safe (clock_gettime is). */
static inline int64_t mprof_clock_ns(clockid_t clk)
{
    struct timespec ts;
    if (clock_gettime(clk, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* CLOCK_MONOTONIC: for durations and timeouts. */
static inline int64_t mprof_mono_ns(void) { return mprof_clock_ns(CLOCK_MONOTONIC); }

/* CLOCK_MONOTONIC in milliseconds: the unit of poll timeouts. */
static inline int64_t mprof_mono_ms(void) { return mprof_mono_ns() / 1000000; }

/* CLOCK_REALTIME: for the time stamps profiles carry. */
static inline int64_t mprof_wall_ns(void) { return mprof_clock_ns(CLOCK_REALTIME); }

/* The absolute CLOCK_REALTIME time ms milliseconds from now, normalized
 * (tv_nsec below a second): what pthread_timedjoin_np and
 * pthread_cond_timedwait take. */
static inline struct timespec mprof_deadline_in_ms(int64_t ms)
{
    int64_t t = mprof_wall_ns() + ms * 1000000;
    struct timespec ts = {(time_t)(t / 1000000000), (long)(t % 1000000000)};
    return ts;
}

/* ------------------------------------------------------------ thread id */

/* The calling thread's kernel id, by the raw system call: glibc's gettid()
 * wrapper is 2.30 or later, and the value is not cached by libc (a forked
 * child gets its own).  Callers on hot paths cache it per thread. */
static inline pid_t mprof_gettid(void) { return (pid_t)syscall(SYS_gettid); }

/* ---------------------------------------------------------------- futex */

/* Wakes up to n threads waiting on word (INT_MAX: all).  Process-private:
 * every waiter is a thread of this process. */
static inline void mprof_futex_wake(_Atomic uint32_t *word, int n)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

/* Sleeps while *word == seen, for at most ns nanoseconds (relative).  May
 * return early (a wake, a signal, *word already changed): callers re-check
 * their condition in a loop. */
static inline void mprof_futex_wait(_Atomic uint32_t *word, uint32_t seen, int64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, seen, &ts, NULL, 0);
}

/* --------------------------------------------------------------- random */

/*
 * A seed for mprof_random: the thread id, the clock and a stack address
 * mixed, so that threads (and processes) started together draw different
 * sequences.  Never 0, which would stay 0.  Out of line and cold: once per
 * thread.
 */
static __attribute__((noinline, cold, unused)) uint64_t mprof_random_seed(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t x = (uint64_t)mprof_gettid() * 0x9E3779B97F4A7C15ull ^ (uint64_t)ts.tv_nsec ^
                 ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)(uintptr_t)&ts;
    return x != 0 ? x : 1;
}

/*
 * The next 64 random bits from *state (xorshift64*, Vigna 2016): three
 * shifts and a multiply, no locks, good enough in every bit for sampling
 * decisions and exponential intervals.  *state must be non-zero (seed it
 * with mprof_random_seed); it stays non-zero.  Callers keep the state per
 * thread (a __thread variable) or under their own lock.  Always inlined:
 * the heap sampler draws from it in the allocation path.
 */
static inline __attribute__((always_inline)) uint64_t mprof_random(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* -------------------------------------------------------------- signals */

/* Whether sa (from sigaction(sig, NULL, &sa)) is our handler fn, installed
 * with SA_SIGINFO, and not the program's.  Async-signal-safe. */
static inline int mprof_sigaction_is(const struct sigaction *sa,
                                     void (*fn)(int, siginfo_t *, void *))
{
    return (sa->sa_flags & SA_SIGINFO) && sa->sa_sigaction == fn;
}

/* ------------------------------------------------------- real functions */

/*
 * Whether p lies in the object that holds mprof's own code (libmprof.so,
 * or the executable libmprof.a was linked into): between the linker's
 * symbols for that object's start and end.  Hidden, so bound without any
 * lookup; defined by the linker in every ELF object, so this works in a
 * unit test that compiles one file of ours too.
 */
extern const char __ehdr_start[] __attribute__((visibility("hidden")));
extern const char _end[] __attribute__((visibility("hidden")));

static inline int mprof_symbol_is_ours(const void *p)
{
    return (const char *)p >= __ehdr_start && (const char *)p < _end;
}

/*
 * The definition of `name` that ours stands in front of (malloc,
 * pthread_mutex_lock, pthread_create, ...): the C library's, or another
 * interposer's.  version (or NULL) asks for one version of a symbol that
 * has several (pthread_cond_wait@GLIBC_2.3.2), falling back to the
 * default one.  NULL if there is none, or if the only one found is ours.
 *
 *  - RTLD_NEXT first: the next definition after the object holding this
 *    code, whether that is libmprof.so (LD_PRELOAD) or the executable that
 *    linked libmprof.a ahead of the C library.
 *  - Loaded with dlopen (ctypes, say), libmprof is not ahead of the C
 *    library, nor even in the global scope: RTLD_NEXT may find nothing,
 *    and the program's calls never reach our wrappers anyway.  The first
 *    definition in the global scope is then the C library's.
 *  - Never our own (libmprof loaded twice, say): forwarding to it would
 *    recurse forever.  Compared by object, not by address: from a
 *    dlopen'ed libmprof, &pthread_mutex_lock is the C library's.
 *
 * Inline, so that RTLD_NEXT is judged from the caller's object, which is
 * always ours.  Not async-signal-safe.  dlsym may allocate (its error
 * state): a caller either holds the profiler guard or, as the allocator's
 * own resolution does, serves those allocations without recursing.  This
 * code itself allocates nothing.
 */
static inline void *mprof_lookup_symbol(void *handle, const char *name, const char *version)
{
    void *p = version != NULL ? dlvsym(handle, name, version) : NULL;
    return p != NULL ? p : dlsym(handle, name);
}

static inline void *mprof_next_symbol(const char *name, const char *version)
{
    void *p = mprof_lookup_symbol(RTLD_NEXT, name, version);
    if (p == NULL)
        p = mprof_lookup_symbol(RTLD_DEFAULT, name, version);
    return p != NULL && mprof_symbol_is_ours(p) ? NULL : p;
}

#endif /* MPROF_CORE_OS_H */
