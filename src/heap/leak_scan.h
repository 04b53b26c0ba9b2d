/*
 * The leak scan: which recorded blocks nothing the program can still reach
 * points to, found as LeakSanitizer finds them (docs/leaks.md).
 *
 * A conservative mark over the live table's blocks.  Roots: the writable
 * PT_LOAD segments of every loaded object but libmprof's own (its tables
 * hold every block's address), every thread's stack from its stack pointer
 * up, its registers, and its static TLS and thread descriptor (whose DTV
 * pointer leads to the dynamic TLS blocks, which are malloc'd and so are
 * blocks themselves).  Every 8-byte aligned word of a root or of a marked
 * block that points to, or into, a block marks it (interior pointers count,
 * as in LeakSanitizer).  Blocks allocated from the dynamic linker itself
 * are marked too (LeakSanitizer's rule for the loader's allocations).
 *
 * What is left unmarked is leaked.  A leaked block that another leaked
 * block points to (not itself) is indirect; the others are direct: so a
 * cycle of two unreachable blocks is two indirect leaks, as LeakSanitizer
 * says it.
 *
 * The other threads are stopped while memory is read: each gets a signal
 * whose handler copies its registers to a slot and waits on a futex until
 * the scan is over (time-bounded both ways).  The blocks that carry a
 * header are listed after the stop, from their records (lock-free); those
 * of the address table (the boot pool's, MPROF_HEADERS=0, another
 * allocator) before it, since listing them takes the table's locks: one
 * of those freed in between is dropped when its memory is no longer
 * mapped.  Memory is only read inside the readable mappings
 * /proc/self/maps lists, read after the stop.  Nothing after the stop
 * calls malloc or takes a lock (a stopped thread may hold the
 * allocator's): the scan's memory is mmap'd, and the blocks' list is
 * unmapped by mprof_leak_scan_free.
 *
 * Sampled mode (rate above 1): only sampled blocks are known, so the marks
 * of unsampled blocks cannot be followed.  A sampled block is then called
 * leaked only when no word of any writable mapping (the whole heap,
 * unsampled blocks and free memory included, every stack, every global)
 * but the profiler's own points to or into it: nothing can reach a block
 * whose address is nowhere.  That reports only direct leaks whose address
 * was not left behind anywhere (a stale copy in freed memory hides one),
 * never a block in use: an underestimate, never a false alarm.
 */
#ifndef MPROF_HEAP_LEAK_SCAN_H
#define MPROF_HEAP_LEAK_SCAN_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

enum mprof_leak_state {
    MPROF_LEAK_UNSEEN = 0, /* after the scan: a direct leak */
    MPROF_LEAK_REACHABLE,
    MPROF_LEAK_INDIRECT,
    MPROF_LEAK_GONE, /* freed, or unmapped, since it was listed: not counted */
};

struct mprof_leak_block {
    uintptr_t addr;
    size_t size;
    /* The bytes a pointer into the block may point to: size, less what of
     * it lies past the end of glibc's chunk (the last word of a block may
     * share the next chunk's first; a pointer there is glibc's own, to the
     * next chunk, kept in main_arena's top or bins). */
    size_t span;
    const struct mprof_bucket *bucket;
    float weight; /* 1 / P(sampled): 1 at rate 1 */
    uint8_t state;
};

struct mprof_leak_scan {
    struct mprof_leak_block *blocks; /* sorted by addr; mmap'd */
    size_t n;
    size_t blocks_bytes;
    int sampled;               /* the sampled mode's rule was used */
    int threads;               /* threads whose stacks were scanned, this one included */
    int threads_unstopped;     /* threads that did not answer (their stacks not scanned) */
    uint64_t bytes_read;       /* roots, blocks (full) or mappings (sampled) */
    int64_t list_ns, scan_ns;  /* listing the blocks; stop, scan, resume */
};

/*
 * Runs a scan.  self_sp: the calling thread's stack is scanned from there
 * up (the caller passes its own frame address, so that the scan's own
 * frames, which hold block addresses, are not roots); self_regs/nregs: the
 * caller's registers, saved at its entry.  sampled: the sampled mode's
 * rule.  Guard held; cold.  0, or -1 with errno (*out is then empty).
 */
MPROF_HIDDEN int mprof_leak_scan_run(struct mprof_leak_scan *out, uintptr_t self_sp,
                                     const uintptr_t *self_regs, int nregs, int sampled);
MPROF_HIDDEN void mprof_leak_scan_free(struct mprof_leak_scan *scan);

/* MPROF_LEAKS, read once (said once when it is no word it knows).  The
 * sampler's start-up reads it first: full mode records every allocation. */
enum { MPROF_LEAKS_OFF = 0, MPROF_LEAKS_FULL = 1, MPROF_LEAKS_SAMPLED = 2 };
MPROF_HIDDEN int mprof_leak_mode(void);
/* Start-up (the leak check's lifecycle row, through profiles/leaks.c):
 * what the scan asks the dynamic linker, asked before the program runs. */
MPROF_HIDDEN void mprof_leak_scan_init(void);
/* A forked child's: the scan's lock made fresh. */
MPROF_HIDDEN void mprof_leak_scan_postfork_child(void);

/* Saves the callee-saved registers and the stack pointer into regs[7]: in
 * the caller's own frame, first thing, so that what it holds of the
 * program's is a root. */
#define MPROF_LEAK_SAVE_REGS(regs)                                                         \
    __asm__ volatile("mov %%rbx, 0(%0)\n\tmov %%rbp, 8(%0)\n\tmov %%r12, 16(%0)\n\t"       \
                     "mov %%r13, 24(%0)\n\tmov %%r14, 32(%0)\n\tmov %%r15, 40(%0)\n\t"     \
                     "mov %%rsp, 48(%0)"                                                   \
                     :                                                                     \
                     : "r"(regs)                                                           \
                     : "memory")

#endif /* MPROF_HEAP_LEAK_SCAN_H */
