/*
 * Allocation tracing (MPROF_TRACE=alloc), after Go's GODEBUG=allocfreetrace:
 * every sampled allocation and every free of a sampled block is printed with
 * its stack.  See trace.c for the design and docs/tracing.md for the output.
 *
 * The two entry points are the sampler's tap (heap/sampler.h), called on
 * its slow path inside the host's malloc and free.  They only copy a fixed-size
 * record into a bounded lock-free queue; a background thread symbolizes and
 * writes.
 */
#ifndef MPROF_TRACE_H
#define MPROF_TRACE_H

#include <stdatomic.h>

#include "core/core.h"
#include "heap/sampler.h"

/* Non-zero while tracing is on: the trace is the sampler's tap
 * (heap/sampler.h), turned on at start-up from MPROF_TRACE before the
 * program's first allocation is sampled. */
static inline int mprof_trace_enabled(void) { return mprof_heap_tap_on(); }

/* A sampled allocation of size bytes at addr, with the stack the sampler
 * captured (n call sites, innermost first). */
MPROF_HIDDEN void mprof_trace_alloc(uintptr_t addr, size_t size, const uintptr_t *stack, int n);

/* The free of a sampled block; the stack is captured here.  swept: the free
 * was reported by a collector's sweep (mprof_record_free, MPROF_FREE_SWEPT). */
MPROF_HIDDEN void mprof_trace_free(uintptr_t addr, size_t size, int swept);

#endif /* MPROF_TRACE_H */
