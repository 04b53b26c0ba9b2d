/* The caching CFI unwinder of fast_unwind.c. */
#ifndef MPROF_FAST_UNWIND_H
#define MPROF_FAST_UNWIND_H

#include <stdint.h>

#include "unwind/unwind.h" /* struct mprof_unwind_regs */


#define MPROF_WALK_MAX_READS 48
struct mprof_walk_reads {
    int n;
    /* Saved RBP values count only if a frame above takes its CFA from RBP
     * before RBP is restored again: in code without frame pointers RBP is
     * an ordinary register, its saved value anything.  An entry whose
     * addr is 0 was read but did not matter. */
    int pending_bp;    /* index of the last RBP read, while unused; else -1 */
    int bp_restored;   /* an RBP has been read since the start */
    int uses_start_bp; /* the start registers' RBP mattered */
    struct {
        uintptr_t addr, value; /* side by side: checking them is a walk
                                * along a few cache lines */
    } read[MPROF_WALK_MAX_READS];
};

/*
 * Walks the stack from the registers `from` and stores up to max frame addresses in pcs:
 * the first frame's exact pc when first_is_exact, return addresses minus one
 * for the others (the call instruction, the line a user wants to see).
 * Leading frames whose address lies in [skip_lo, skip_hi) are not stored
 * (the profiler's own; pass 0, 0 to keep all).  Returns how many were
 * stored, or -1 when a frame's unwind rule is outside what the fast path
 * models: the caller must then discard pcs and walk again with a complete
 * unwinder.  Async-signal-safe; never allocates, never locks.
 *
 * reads, when not NULL, receives every stack word the walk read, with its
 * address: the same start registers and the same words at the same
 * addresses make the same walk (see stack.c).  reads->n is -1 when they
 * did not all fit.
 */
int mprof_unwind_fast(const struct mprof_unwind_regs *from, int first_is_exact, uintptr_t skip_lo,
                      uintptr_t skip_hi, uintptr_t *pcs, int max, struct mprof_walk_reads *reads)
    __attribute__((visibility("hidden")));

/*
 * Code was unloaded (dlclose): forgets every cached rule, and bumps
 * mprof_code_generation so that remembered walks (stack.c) are not trusted
 * either.  Other code may later be loaded at the same addresses, with
 * other rules.
 */
void mprof_unwind_forget(void) __attribute__((visibility("hidden")));
extern _Atomic unsigned mprof_code_generation __attribute__((visibility("hidden")));

#endif
