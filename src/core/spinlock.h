/*
 * The profiler's spinlock, for the sampling path's short critical sections,
 * and the one backoff of every spin-wait (this lock, the sampler's slot
 * locks, the contention profiler's side table).
 */
#ifndef MPROF_SPINLOCK_H
#define MPROF_SPINLOCK_H

#include <sched.h>
#include <stdatomic.h>

#include "core/core.h"

/*
 * Stripe and shard locks are held for a few dozen instructions, on the
 * sampling path only.  A test-and-test-and-set spinlock never sleeps in the
 * kernel: with two threads sampling, a pthread mutex that found its stripe
 * busy went to futex_wait and back, and those round trips cost more than
 * the critical sections they protect (the churn benchmark ran about 2%
 * faster with these).  After a short spin it yields, so a holder that was
 * preempted is not starved.  Never taken in a signal handler; the fork
 * handlers take them all, as they would mutexes.
 */
typedef struct {
    _Atomic int held;
} spinlock;

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
    if (MPROF_LIKELY(!atomic_exchange_explicit(&l->held, 1, memory_order_acquire)))
        return;
    for (int rounds = 0;; mprof_spin_backoff(&rounds))
        if (!atomic_load_explicit(&l->held, memory_order_relaxed) &&
            !atomic_exchange_explicit(&l->held, 1, memory_order_acquire))
            return;
}

static inline void spin_unlock(spinlock *l)
{
    atomic_store_explicit(&l->held, 0, memory_order_release);
}

#endif /* MPROF_SPINLOCK_H */
