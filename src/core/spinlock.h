/*
 * The profiler's spinlock, for the sampling path's short critical sections,
 * and the one backoff of every spin-wait (this lock, the sampler's slot
 * locks, the contention profiler's side table).
 */
#ifndef MPROF_SPINLOCK_H
#define MPROF_SPINLOCK_H

#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/core.h"

/*
 * Stripe and shard locks are held for a few dozen instructions, on the
 * sampling path only.  A test-and-test-and-set spinlock never sleeps in the
 * kernel: with two threads sampling, a pthread mutex that found its stripe
 * busy went to futex_wait and back, and those round trips cost more than
 * the critical sections they protect (the churn benchmark ran about 2%
 * faster with these).  After a short spin it yields, so a holder that was
 * preempted is not starved.  Never taken in a signal handler.
 *
 * The lock word holds its owner's token (mprof_lock_token), 0 when free.
 * Nothing waits on the owner; it is there for fork: a forked child has
 * only the forking thread, and a lock found held with a token other than
 * that thread's belongs to a thread fork left behind, whose update will
 * never finish (heap/sampler.h, "Fork").  The fork handlers take no lock.
 */
typedef struct {
    _Atomic uint32_t owner;
} spinlock;

/* This thread's token: its kernel thread id, cached in a thread-local
 * variable on first use.  Unique among the live threads of the process,
 * never 0.  In a forked child the forking thread keeps its parent's token
 * until mprof_lock_token_renew: the locks its interrupted frames hold
 * carry that token. */
MPROF_HIDDEN extern __thread uint32_t mprof_tls_lock_token __attribute__((tls_model("initial-exec")));

static inline uint32_t mprof_lock_token(void)
{
    uint32_t t = mprof_tls_lock_token;
    if (MPROF_UNLIKELY(t == 0))
        t = mprof_tls_lock_token = (uint32_t)syscall(SYS_gettid);
    return t;
}

/* Drops the cached token (a forked child, once none of its locks carry
 * the parent's): the next lock takes the new thread id. */
static inline void mprof_lock_token_renew(void) { mprof_tls_lock_token = 0; }

/* The CPU's spin-wait hint: the sibling hyperthread gets the core, and
 * leaving the loop does not flush the pipeline on a memory-order guess. */
static inline void mprof_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/*
 * One round of a spin-wait for a word that another thread holds for a few
 * dozen instructions: a CPU pause, and every 100th round sched_yield, so
 * that a holder that was preempted gets to run.  *rounds starts at 0 and
 * belongs to the waiting loop.  Never sleeps in the kernel otherwise.
 */
static inline void mprof_spin_backoff(int *rounds)
{
    if (++*rounds >= 100) {
        *rounds = 0;
        sched_yield();
    } else {
        mprof_cpu_relax();
    }
}

static inline void spin_lock(spinlock *l)
{
    /* The exchange first: the lock is nearly always free, and its line
     * nearly always cold.  Testing first would fetch the line shared, then
     * fetch it again to own it: two trips to the L3 instead of one. */
    uint32_t me = mprof_lock_token();
    uint32_t free_word = 0;
    if (MPROF_LIKELY(atomic_compare_exchange_strong_explicit(&l->owner, &free_word, me,
                                                             memory_order_acquire,
                                                             memory_order_relaxed)))
        return;
    for (int rounds = 0;; mprof_spin_backoff(&rounds)) {
        free_word = 0;
        if (!atomic_load_explicit(&l->owner, memory_order_relaxed) &&
            atomic_compare_exchange_strong_explicit(&l->owner, &free_word, me,
                                                    memory_order_acquire, memory_order_relaxed))
            return;
    }
}

static inline void spin_unlock(spinlock *l)
{
    atomic_store_explicit(&l->owner, 0, memory_order_release);
}

/* The token of l's holder, 0 when free.  For fork's repair (one thread). */
static inline uint32_t spin_owner(const spinlock *l)
{
    return atomic_load_explicit(&l->owner, memory_order_relaxed);
}

/* Frees l, whatever holds it: only for a lock whose holder is gone (a
 * forked child's lost threads). */
static inline void spin_reset(spinlock *l) { atomic_store_explicit(&l->owner, 0, memory_order_relaxed); }

#endif /* MPROF_SPINLOCK_H */
