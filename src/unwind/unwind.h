/*
 * unwind: call stacks of the running process, as call-site addresses.  The
 * sampler's capture with its per-thread walk memo (stack.c), the lock-free
 * CFI unwinder over cached rules (fast_unwind.c) and libgcc's unwinder as its
 * reference and fallback.  Depends on core only.
 */
#ifndef MPROF_UNWIND_H
#define MPROF_UNWIND_H

#include "core/core.h"

/* -------------------------------------------------------- stack capture */

/*
 * Captures the calling thread's stack as call-site addresses (return
 * address minus one for every caller frame), innermost first, starting at
 * the first frame outside mprof and outside the allocator entry points
 * (libstdc++'s operator new and friends).  Walks DWARF CFI with the
 * caching unwinder of fast_unwind.c, falling back to libgcc's for frames it
 * does not model; both find frame descriptions through glibc's lock-free
 * _dl_find_object: no malloc, no loader lock, correct through code built
 * without frame pointers.  Returns the number of frames stored.
 */
MPROF_HIDDEN int mprof_stack_capture(uintptr_t *pcs, int max);

/* A frame's registers, enough to start a CFI walk there. */
struct mprof_unwind_regs {
    uintptr_t pc, sp, bp;
};

/*
 * Reads the current function's pc, sp and bp at one point, so that the
 * unwind rule found for that pc describes exactly these values.  A walk can
 * start from them later, from a function called deeper down, as long as
 * this frame is still live: the frames above it do not change meanwhile.
 */
#define MPROF_READ_REGS(r)                                                                         \
    __asm__ volatile("leaq 0(%%rip), %0\n\tmovq %%rsp, %1\n\tmovq %%rbp, %2"                     \
                     : "=r"((r).pc), "=r"((r).sp), "=r"((r).bp))


/*
 * mprof_stack_capture for the heap sampler, starting at a frame whose
 * registers an allocation entry point read with MPROF_READ_REGS (the frame
 * must be in the entry section and still live), so the sampler's own
 * frames are never walked; and remembering this thread's last walk: a
 * sample taken from the same place as the previous one is recognised by
 * re-reading the stack words that walk read, not walked again (stack.c).
 * Not for signal handlers.  Returns the frames (*n of them, at most
 * MPROF_MAX_STACK), in the thread's memo or, without one, in scratch; they
 * stay valid until the thread's next call.  *site: see struct
 * mprof_site_memo.
 */
struct mprof_site_memo;
MPROF_HIDDEN const uintptr_t *mprof_stack_capture_sampler(const struct mprof_unwind_regs *regs,
                                                          uintptr_t *scratch, int *n,
                                                          struct mprof_site_memo **site);

/*
 * What the sampler keeps about the allocation site of its last walk, in
 * the same per-thread memo (*site from mprof_stack_capture_sampler, NULL
 * when the profiler is out of memory).  `gen` changes with every new walk:
 * a slot filled under another generation belongs to another stack.
 */
#define MPROF_SITE_SLOTS 128
struct mprof_site_memo {
    uint32_t gen;
    int stack_hash_valid; /* cleared by every new walk */
    uint64_t stack_hash;
    struct {
        uint32_t gen;
        uint32_t tag;
        void *value;
    } slot[MPROF_SITE_SLOTS];
};

/* The same walk done entirely by libgcc: the reference the fast unwinder
 * is tested against, and its fallback. */
MPROF_HIDDEN int mprof_stack_capture_libgcc(uintptr_t *pcs, int max);

/*
 * Same, from inside a signal handler: returns the interrupted code's stack,
 * pcs[0] being the exact interrupted instruction address.  Async-signal-safe.
 */
MPROF_HIDDEN int mprof_stack_capture_signal(uintptr_t *pcs, int max);

/*
 * The same from the ucontext a SA_SIGINFO handler receives: walks from the
 * interrupted registers with the lock-free fast unwinder, falling back to
 * mprof_stack_capture_signal.  Async-signal-safe.  Prefer this one.
 */
MPROF_HIDDEN int mprof_stack_capture_ucontext(void *ucontext, uintptr_t *pcs, int max);

/* Called once at start-up (outside any malloc) to locate the frames to skip
 * and to make libgcc's unwinder ready. */
MPROF_HIDDEN void mprof_stack_init(void);
/* In a forked child (runtime/lifecycle.c): frees the memo list's lock,
 * which a thread that does not exist in the child may have held. */
MPROF_HIDDEN void mprof_stack_postfork_child(void);

#endif /* MPROF_UNWIND_H */
