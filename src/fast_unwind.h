/* The caching CFI unwinder of fast_unwind.c. */
#ifndef MPROF_FAST_UNWIND_H
#define MPROF_FAST_UNWIND_H

#include <stdint.h>

struct mprof_unwind_regs {
    uintptr_t pc, sp, bp;
};

/* Called for each frame with its lookup address (exact for the first frame
 * when first_is_exact, return address minus one otherwise).  Non-zero stops
 * the walk. */
typedef int (*mprof_unwind_frame_fn)(uintptr_t pc, void *arg);

/*
 * Walks the stack from regs.  Returns 0 when the walk ended normally (end
 * of stack, unknown code, or fn asked to stop), -1 when a frame's unwind
 * rule is outside what the fast path models: the caller must then discard
 * what it was given and walk again with a complete unwinder.
 * Async-signal-safe; never allocates, never locks.
 */
int mprof_unwind_fast(struct mprof_unwind_regs regs, int first_is_exact, mprof_unwind_frame_fn fn,
                      void *arg) __attribute__((visibility("hidden")));

#endif
