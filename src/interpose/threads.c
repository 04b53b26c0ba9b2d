/*
 * pthread_create interposition: every thread the program creates runs the
 * registered hooks (internal.h, "threads") at creation, at start and at
 * exit.
 *
 * Why interpose at all: a per-thread CPU timer must be created when the
 * thread exists, and the profiler has no other way to learn of a new thread
 * in time (scanning /proc/self/task would miss short-lived threads
 * entirely).  Go does the same from inside its scheduler.
 *
 * The wrapper replaces the start routine by a trampoline that runs the
 * on_start hooks, calls the user's routine under a cancellation cleanup
 * handler (so that on_exit also runs for pthread_exit and cancellation), and
 * returns its result.  The (routine, argument) pair travels to the new
 * thread in a small record that cannot come from malloc: the wrapper runs
 * inside the program, possibly while the heap sampler is active, and the
 * trampoline's thread must not allocate before the program's code does.
 * Records come from the profiler's arena and are recycled through a
 * lock-free free list, which also keeps fork harmless: there is no lock for
 * a vanished thread to hold.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

#include "core/os.h"
#include "interpose/threads.h"
#include "heap/sampler.h"

/* ------------------------------------------------------------------ hooks */

#define MAX_HOOK_SETS 8

/* Filled front to back by CAS and never emptied, so readers may stop at the
 * first NULL. */
static const mprof_thread_hooks *_Atomic hook_sets[MAX_HOOK_SETS];

int mprof_thread_hooks_register(const mprof_thread_hooks *hooks)
{
    for (int i = 0; i < MAX_HOOK_SETS; i++) {
        const mprof_thread_hooks *expected = NULL;
        if (atomic_compare_exchange_strong(&hook_sets[i], &expected, hooks) || expected == hooks)
            return 0;
    }
    errno = ENOSPC;
    return -1;
}

static int have_hooks(void)
{
    return atomic_load_explicit(&hook_sets[0], memory_order_acquire) != NULL;
}

enum hook_kind { HOOK_CREATE, HOOK_START, HOOK_EXIT };

/* In MPROF_ENTRY_TEXT, as every frame between a hook and the program's
 * code: a stack captured in a hook starts at the program (or at the
 * trampoline, for exit hooks). */
static void MPROF_ENTRY_TEXT run_hooks(enum hook_kind kind)
{
    /* Exit hooks run in reverse order of registration, so that a later
     * subsystem built on an earlier one is torn down first. */
    const mprof_thread_hooks *sets[MAX_HOOK_SETS];
    int n = 0;
    while (n < MAX_HOOK_SETS &&
           (sets[n] = atomic_load_explicit(&hook_sets[n], memory_order_acquire)) != NULL)
        n++;
    for (int k = 0; k < n; k++) {
        const mprof_thread_hooks *h = sets[kind == HOOK_EXIT ? n - 1 - k : k];
        void (*fn)(void) = kind == HOOK_CREATE ? h->on_create
                           : kind == HOOK_START ? h->on_start
                                                : h->on_exit;
        if (fn != NULL)
            fn();
    }
}

/* ------------------------------------------------------- the real thing */

typedef int (*pthread_create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

static _Atomic(pthread_create_fn) real_pthread_create;

static pthread_create_fn get_real_pthread_create(void)
{
    pthread_create_fn fn = atomic_load_explicit(&real_pthread_create, memory_order_acquire);
    if (MPROF_LIKELY(fn != NULL))
        return fn;
    /* dlsym may allocate (its error state); keep that out of the heap
     * profile.  The lookup (core/os.h) finds the C library's default
     * version (pthread_create@@GLIBC_2.34 on glibc 2.36), never our own
     * wrapper.  Two threads racing here both store the same value. */
    mprof_guard_enter();
    fn = (pthread_create_fn)mprof_next_symbol("pthread_create", NULL);
    mprof_guard_leave();
    if (fn != NULL)
        atomic_store_explicit(&real_pthread_create, fn, memory_order_release);
    return fn;
}

int mprof_thread_create_unhooked(pthread_t *thread, const pthread_attr_t *attr,
                                 void *(*start)(void *), void *arg)
{
    pthread_create_fn real = get_real_pthread_create();
    if (real == NULL)
        return ENOSYS;
    return real(thread, attr, start, arg);
}

/* ------------------------------------------------ trampoline records */

/*
 * A record lives only from pthread_create until the new thread has read it,
 * so a handful are in use at any moment; they are carved from the arena in
 * chunks and addressed by a 32-bit index so that the free list's head can
 * carry a 32-bit version tag in the same 64-bit word.  The tag defeats the
 * ABA problem of a Treiber stack: a pop that read head A and A->next, was
 * delayed while A was popped, reused and pushed back, fails its CAS because
 * the tag moved on.
 */
#define TRAMP_PER_CHUNK 64
#define TRAMP_MAX_CHUNKS 4096

struct tramp {
    void *(*start)(void *);
    void *arg;
    _Atomic uint32_t next; /* index + 1 of the next free record, 0 = end */
};

static struct tramp *_Atomic tramp_chunks[TRAMP_MAX_CHUNKS];
static _Atomic uint32_t tramp_nchunks;
static _Atomic uint64_t tramp_free; /* (tag << 32) | (index + 1) */

static struct tramp *tramp_at(uint32_t index)
{
    struct tramp *chunk = atomic_load_explicit(&tramp_chunks[index / TRAMP_PER_CHUNK],
                                               memory_order_acquire);
    return &chunk[index % TRAMP_PER_CHUNK];
}

static void tramp_push(uint32_t index)
{
    struct tramp *t = tramp_at(index);
    uint64_t head = atomic_load_explicit(&tramp_free, memory_order_relaxed);
    uint64_t desired;
    do {
        atomic_store_explicit(&t->next, (uint32_t)head, memory_order_relaxed);
        desired = ((head >> 32) + 1) << 32 | (uint64_t)(index + 1);
    } while (!atomic_compare_exchange_weak_explicit(&tramp_free, &head, desired,
                                                    memory_order_release, memory_order_relaxed));
}

/* Returns an index, or UINT32_MAX when no record can be had. */
static uint32_t tramp_pop(void)
{
    uint64_t head = atomic_load_explicit(&tramp_free, memory_order_acquire);
    while ((uint32_t)head != 0) {
        uint32_t index = (uint32_t)head - 1;
        uint32_t next = atomic_load_explicit(&tramp_at(index)->next, memory_order_relaxed);
        uint64_t desired = ((head >> 32) + 1) << 32 | next;
        if (atomic_compare_exchange_weak_explicit(&tramp_free, &head, desired,
                                                  memory_order_acquire, memory_order_acquire))
            return index;
    }
    /* Empty: add a chunk.  Its first record is ours, the rest go to the
     * free list. */
    uint32_t c = atomic_fetch_add(&tramp_nchunks, 1);
    if (c >= TRAMP_MAX_CHUNKS) {
        atomic_fetch_sub(&tramp_nchunks, 1);
        return UINT32_MAX;
    }
    struct tramp *chunk = mprof_arena_alloc(TRAMP_PER_CHUNK * sizeof(struct tramp));
    if (chunk == NULL) {
        /* The slot number stays consumed; a chunk table entry left NULL
         * is never indexed because no index into it was handed out. */
        return UINT32_MAX;
    }
    atomic_store_explicit(&tramp_chunks[c], chunk, memory_order_release);
    for (uint32_t i = 1; i < TRAMP_PER_CHUNK; i++)
        tramp_push(c * TRAMP_PER_CHUNK + i);
    return c * TRAMP_PER_CHUNK;
}

/* ------------------------------------------------------------ wrapper */

static void MPROF_ENTRY_TEXT run_exit_hooks(void *unused)
{
    (void)unused;
    run_hooks(HOOK_EXIT);
}

/* The start routine of this thread, when the wrapper created it. */
static __thread void *tls_start_routine __attribute__((tls_model("initial-exec")));

void *mprof_thread_start_routine(void) { return tls_start_routine; }

/*
 * Stays on the new thread's stack for its whole life, under the user's start
 * routine.  Not in MPROF_ENTRY_TEXT (the capture stops dropping frames at
 * the first frame outside it, and this one is at the bottom), but in its own
 * section, which every stack mprof writes leaves out (core.h), as Go leaves
 * out runtime.goexit: it is in every thread's stack and says nothing.
 */
static void *MPROF_THREAD_START_TEXT mprof_thread_start(void *p)
{
    uint32_t index = (uint32_t)(uintptr_t)p;
    struct tramp *t = tramp_at(index);
    void *(*start)(void *) = t->start;
    void *arg = t->arg;
    tramp_push(index);
    tls_start_routine = (void *)start;

    run_hooks(HOOK_START);
    void *ret;
    /* The cleanup handler covers the exits that do not return here:
     * pthread_exit() and cancellation.  pthread_cleanup_pop(1) runs it on
     * the normal path. */
    pthread_cleanup_push(run_exit_hooks, NULL);
    ret = start(arg);
    pthread_cleanup_pop(1);
    return ret;
}

/* Exported under the C library's name: this is the interposition.  In
 * MPROF_ENTRY_TEXT so that a stack captured by an on_create hook starts at
 * the program's call to pthread_create. */
__attribute__((visibility("default"))) int MPROF_ENTRY_TEXT
pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*start)(void *), void *arg)
{
    pthread_create_fn real = get_real_pthread_create();
    if (MPROF_UNLIKELY(real == NULL))
        return EAGAIN;
    /* Nothing registered: behave exactly like the C library.  Threads made
     * now will never run hooks; the CPU profiler, the only user so far,
     * registers from the library constructor, before main. */
    if (!have_hooks())
        return real(thread, attr, start, arg);

    uint32_t index = tramp_pop();
    if (MPROF_UNLIKELY(index == UINT32_MAX))
        return real(thread, attr, start, arg); /* unhooked rather than failed */
    struct tramp *t = tramp_at(index);
    t->start = start;
    t->arg = arg;
    run_hooks(HOOK_CREATE);
    int rc = real(thread, attr, mprof_thread_start, (void *)(uintptr_t)index);
    if (rc != 0)
        tramp_push(index);
    return rc;
}

void mprof_live_block_signals(sigset_t *old)
{
    sigset_t blocked;
    sigfillset(&blocked);
    /* Fault signals stay open: blocking them cannot stop a fault, only turn
     * its report into a silent kill.  SIGPROF stays open for the CPU
     * profiler: our threads are charged for the CPU they use, as the
     * profiling goroutines are in Go, rather than reported as threads that
     * block the profiler's signal. */
    sigdelset(&blocked, SIGSEGV);
    sigdelset(&blocked, SIGBUS);
    sigdelset(&blocked, SIGFPE);
    sigdelset(&blocked, SIGILL);
    sigdelset(&blocked, SIGPROF);
    pthread_sigmask(SIG_SETMASK, &blocked, old);
}
