/* The caching CFI unwinder of fast_unwind.c. */
#ifndef MPROF_FAST_UNWIND_H
#define MPROF_FAST_UNWIND_H

#include <stdint.h>

#include "internal.h" /* struct mprof_unwind_regs */


/*
 * Walks the stack from the registers `from` and stores up to max frame addresses in pcs:
 * the first frame's exact pc when first_is_exact, return addresses minus one
 * for the others (the call instruction, the line a user wants to see).
 * Leading frames whose address lies in [skip_lo, skip_hi) are not stored
 * (the profiler's own; pass 0, 0 to keep all).  Returns how many were
 * stored, or -1 when a frame's unwind rule is outside what the fast path
 * models: the caller must then discard pcs and walk again with a complete
 * unwinder.  Async-signal-safe; never allocates, never locks.
 */
int mprof_unwind_fast(const struct mprof_unwind_regs *from, int first_is_exact, uintptr_t skip_lo,
                      uintptr_t skip_hi, uintptr_t *pcs, int max)
    __attribute__((visibility("hidden")));

#endif
