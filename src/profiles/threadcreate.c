/*
 * Thread-creation profile (Go's "threadcreate"): the stack of every
 * pthread_create call, counted per distinct stack.
 *
 * The stack is taken in the creating thread, by the on_create hook of the
 * pthread_create wrapper (threads.c), which runs just before the C
 * library's pthread_create.  The wrapper and the hook runner are in
 * MPROF_ENTRY_TEXT, as is the hook below, so the recorded stack starts at
 * the program's call of pthread_create (or at libstdc++'s, for std::thread).
 * Threads the profiler creates for itself use mprof_thread_create_unhooked
 * and are never counted.
 *
 * Always on, as in Go: one stack capture per thread creation costs a few
 * microseconds against the tens a thread creation takes.  A creation that
 * fails (EAGAIN) is counted too: the hook runs before the outcome is known,
 * and a failed attempt still says where threads are made.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profiles/hooks.h"
#include "interpose/threads.h"
#include "profiles/stackprof.h"

static mprof_stk_table tc_table;
static _Atomic int64_t tc_start_mono;


static void MPROF_ENTRY_TEXT tc_on_create(void)
{
    /* Under the guard means from inside the profiler: not the program's. */
    if (mprof_tls_guard)
        return;
    uintptr_t pcs[MPROF_MAX_STACK];
    mprof_guard_enter();
    int n = mprof_stack_capture(pcs, MPROF_MAX_STACK);
    mprof_stk_add(&tc_table, pcs, n, 0, 1.0, 0.0); /* unlabeled, as Go's */
    mprof_guard_leave();
}

static const mprof_thread_hooks tc_hooks = {
    .on_create = tc_on_create,
    .on_start = NULL,
    .on_exit = NULL,
};

/* ------------------------------------------------------------- writing */

static const char *const tc_types[] = {"threadcreate", "count"};

static int write_tc(int fd, int debug, const mprof_stk_set *before, int64_t window_start)
{
    mprof_guard_enter();
    mprof_stk_set set;
    int rc = mprof_stk_snapshot(&tc_table, &set);
    if (rc == 0) {
        if (before != NULL)
            mprof_stk_set_subtract(&set, before);
        char comment[256];
        snprintf(comment, sizeof comment,
                 "mprof %s threadcreate profile: stacks of pthread_create calls; %llu lost "
                 "(table full)",
                 MPROF_VERSION, (unsigned long long)atomic_load(&tc_table.dropped));
        int64_t start = window_start > 0 ? window_start : atomic_load(&tc_start_mono);
        mprof_stk_profile d = {
            .name = "threadcreate",
            .legacy_name = NULL,
            .nvalues = 1,
            .types = tc_types,
            .period_type = "threadcreate",
            .period_unit = "count",
            .period = 1,
            .comment = comment,
            .time_ns = mprof_wall_ns(),
            .duration_ns = mprof_mono_ns() - start,
        };
        rc = mprof_stk_write(fd, debug, &d, &set);
    }
    int saved = errno;
    mprof_stk_set_free(&set);
    mprof_guard_leave();
    errno = saved;
    return rc;
}

MPROF_API int mprof_write_threadcreate_profile_fd(int fd, int debug)
{
    return write_tc(fd, debug, NULL, 0);
}

/* ------------------------------------------------------------ registry */

static long tc_count(void) { return (long)atomic_load(&tc_table.used); }

static int tc_write(int fd, const mprof_profile_params *p, const mprof_profile_base *base)
{
    return write_tc(fd, p->debug, base ? base->snapshot : NULL, base ? base->start_mono_ns : 0);
}

static void *tc_snapshot(void) { return mprof_stk_snapshot_sorted(&tc_table); }

static const mprof_profile tc_profile = {
    .name = "threadcreate",
    .description = "Stack traces that led to the creation of new OS threads",
    .what = "threadcreate profile",
    .exit_option = MPROF_OPT_THREADCREATE,
    .count = tc_count,
    .write = tc_write,
    .snapshot = tc_snapshot,
    .snapshot_free = mprof_stk_snapshot_free,
};

/* ------------------------------------------------------------ life cycle */

void mprof_threadcreate_init(void)
{
    mprof_guard_enter();
    atomic_store(&tc_start_mono, mprof_mono_ns());
    if (mprof_stk_init(&tc_table) == 0)
        (void)mprof_thread_hooks_register(&tc_hooks);
    (void)mprof_profile_register(&tc_profile);
    mprof_guard_leave();
}
