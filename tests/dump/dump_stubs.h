/* Stand-ins for the heap-dump unit test; see dump_stubs.c. */
#ifndef MPROF_TEST_DUMP_STUBS_H
#define MPROF_TEST_DUMP_STUBS_H

#include <stdint.h>

#include "core/core.h"
#include "unwind/unwind.h"
#include "encode/pprof.h"
#include "symbolize/symbolize.h"
#include "interpose/threads.h"
#include "profiles/registry.h"
#include "profiles/heap_profile.h"
#include "runtime/lifecycle.h"

#define DUMP_STUB_EXE_START 0x400000u
#define DUMP_STUB_EXE_LIMIT 0x480000u
#define DUMP_STUB_LIB_START 0x7f0000000000ull
#define DUMP_STUB_LIB_LIMIT 0x7f0000100000ull

typedef struct dump_stub_live {
    uintptr_t addr;
    size_t size;
    double weight;
    const uintptr_t *stack;
    int nstack;
    size_t size_class;
} dump_stub_live;

typedef struct dump_stub_state {
    long rate;
    mprof_mem_record *recs; /* what mprof_heap_snapshot hands out */
    int nrecs;
    dump_stub_live *live;   /* what mprof_live_foreach hands out */
    int nlive;
} dump_stub_state;

extern dump_stub_state dump_stub;

/* The frames the stub symbolizer gives pc (also used by the test to know
 * what to expect back). */
int dump_stub_frames(uintptr_t pc, mprof_frame *out, int max);

#endif
