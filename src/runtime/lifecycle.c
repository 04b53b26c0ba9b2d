/*
 * Start-up and shut-down of the profiler inside the host process.
 */
#include <stdatomic.h>
#include <stdlib.h>

#include "runtime/lifecycle.h"
#include "unwind/unwind.h"
#include "heap/sampler.h"
#include "profiles/heap_profile.h"
#include "http/http.h"

static _Atomic int initialized;

/* Referenced from preload.c: a program linked with libmprof.a pulls in
 * preload.o for malloc, and through this reference init.o with the
 * constructor below, which a static link would otherwise leave out. */
const int mprof_init_anchor = 1;

/* Pulls the contention, thread-creation and all-thread-stack profiles into
 * static links (contention.c anchors the other two): they start from
 * constructors of their own, and nothing else refers to them. */
extern const int mprof_contention_anchor MPROF_HIDDEN;
/* preload.c's, when linked (not in the sanitizer builds' test programs). */
extern void mprof_allocator_resolve(void) MPROF_HIDDEN __attribute__((weak));
static const int *const keep_contention_linked __attribute__((used)) = &mprof_contention_anchor;


static void at_exit(void)
{
    /* CPU first: its profile covers the run up to here.  The heap profile
     * last, so that it shows what the program still held at the end. */
    mprof_cpu_at_exit();
    mprof_http_at_exit();
    mprof_heap_write_at_exit();
}

/* Runs before main (and before the constructors of libraries loaded after
 * us).  Priority 101: as early as a constructor can ask for. */
__attribute__((constructor(101))) static void mprof_init(void)
{
    int expected = 0;
    if (!atomic_compare_exchange_strong(&initialized, &expected, 1))
        return;
    mprof_guard_enter();
    /* The interposer decides how to find sampled blocks when it finds the
     * real allocator: before the first sample, so that no block is ever
     * sampled one way and freed the other. */
    if (mprof_allocator_resolve)
        mprof_allocator_resolve();
    mprof_output_remember_root();
    mprof_stack_init();
    mprof_sampler_init();
    mprof_cpu_init_from_env();
    mprof_http_init_from_env();
    atexit(at_exit);
    mprof_guard_leave();
}
