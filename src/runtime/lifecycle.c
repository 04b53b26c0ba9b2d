/*
 * Start-up, exit and fork of the profiler inside the host process: the
 * library's one constructor, one atexit handler and one set of
 * pthread_atfork handlers, each running the subsystem table below.  No other
 * file registers any: a subsystem exports its hooks in its own folder's
 * header, and only this file names them all.  The table's references also
 * keep every subsystem's object in a static link (preload.o, which every
 * static link has for malloc, refers to mprof_lifecycle_start here).
 */
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>

#include "core/spinlock.h"
#include "runtime/lifecycle.h"

/* preload.c's, when linked (not in the sanitizer builds' test programs). */
extern void mprof_allocator_resolve(void) MPROF_HIDDEN __attribute__((weak));

/* Set by the atexit handler before it runs the exit writers: a normal
 * exit, whose status the leak check may replace (a stop signal's death
 * keeps its own). */
static int normal_exit;

static void leak_status(void)
{
    if (normal_exit)
        mprof_leaks_exit_status();
}

/* Which processes run a row: a process left out by MPROF_ONLY or
 * MPROF_ONLY_TOP (core/run_tree.c) runs the EVERY and IDLE rows only, so
 * that it keeps its allocator, passes the settings on, and its root still
 * prints the run's summary, but profiles nothing. */
enum when { PROFILED = 0, EVERY, IDLE };

struct subsystem {
    const char *name;
    void (*init)(void);           /* constructor, before main */
    void (*at_exit)(void);        /* the library's atexit handler */
    void (*postfork_child)(void); /* pthread_atfork child */
    enum when when;
};

/*
 * The subsystems, lowest first: each row's init may use every row above it.
 *
 * init and the fork child's hooks run top to bottom.  In the child, the
 * sampler's repair comes before every row that allocates or starts a
 * thread (profile files, trace's writer thread, the servers), so that
 * those find the allocation path's locks consistent.
 *
 * at_exit runs bottom to top, as atexit itself would for handlers
 * registered in init order: the servers (HTTP, signal/interval snapshots)
 * stop first, so that no request competes with the exit writers and nothing
 * is served from a profiler shutting down; then the CPU profile is written
 * (it covers the run up to there); then the trace is flushed; then "profile
 * files" writes every registered kind's file at exit (profiles/registry.c),
 * the heap profile last, so that it shows what the program still held at
 * the end.
 *
 * Profile kinds register with the registry from their rows' init, so every
 * kind exists before the first row that serves them (snapshots, http).
 *
 * Fork: there is no prepare hook and no parent hook, on purpose.  A
 * prepare handler runs before glibc's fork takes _IO_list_lock; any lock it
 * held that the allocation path waits on would close a cycle with a thread
 * in fflush(NULL) and a thread that mallocs under a FILE lock, and it could
 * wait on a lock the frame it interrupted holds when a signal handler
 * forks.  Invariant: the forking thread takes no profiler lock for fork;
 * the child alone makes its state consistent, each row its own (the
 * sampler: heap/sampler.h, "Fork"; every other row makes its state fresh:
 * its locks are never waited for by the allocation path).  Nothing is
 * done in the parent, whose threads finish their own updates.
 */
static const struct subsystem subsystems[] = {
    {"options", mprof_options_load, NULL, NULL, EVERY},
    {"selection", mprof_run_tree_select, NULL, NULL, EVERY},
    {"allocator", mprof_allocator_resolve, NULL, NULL, EVERY},
    /* Which process the state is: before any row a fork child repairs. */
    {"exit calls", mprof_exit_init, NULL, mprof_exit_postfork_child, EVERY},
    {"output", mprof_output_remember_root, NULL, NULL, EVERY},
    /* After every exit writer, the run summary included: a normal exit
     * that found leaks ends here with their status (leak_status above). */
    {"leak status", NULL, leak_status, NULL, PROFILED},
    /* At exit after every writer below (rows exit bottom to top): the
     * root's one line for the files of the whole run. */
    {"run summary", NULL, mprof_run_tree_at_exit, NULL, EVERY},
    {"sampler off", mprof_sampler_init_off, NULL, NULL, IDLE},
    {"stack", mprof_stack_init, NULL, mprof_stack_postfork_child, PROFILED},
    {"live records", mprof_rec_init, NULL, NULL, PROFILED},
    {"sampler", mprof_sampler_init, NULL, mprof_sampler_postfork_child, PROFILED},
    {"symbolizer", mprof_debug_cache_init, NULL, mprof_sym_postfork_child, PROFILED},
    {"profile files", NULL, mprof_profiles_at_exit, mprof_profiles_postfork_child, PROFILED},
    /* Before the profile files, at exit: the leaks profile is the result of
     * this scan.  After the servers, the trace and the CPU profile have
     * stopped, so nothing of ours runs beside it. */
    {"leak check", mprof_leaks_init, mprof_leaks_at_exit, mprof_leak_scan_postfork_child, PROFILED},
    {"heap profile", mprof_heap_profile_init, NULL, NULL, PROFILED},
    {"lifetime profile", mprof_lifetime_profile_init, NULL, NULL, PROFILED},
    {"cmdline", mprof_cmdline_init, NULL, NULL, PROFILED},
    {"trace", mprof_trace_init, mprof_trace_at_exit, mprof_trace_postfork_child, PROFILED},
    {"heap dump", mprof_heap_dump_init, NULL, NULL, PROFILED},
    {"contention", mprof_contention_init, NULL, mprof_contention_postfork_child, PROFILED},
    {"threadcreate", mprof_threadcreate_init, NULL, NULL, PROFILED},
    {"allstacks", mprof_allstacks_init, NULL, mprof_allstacks_postfork_child, PROFILED},
    {"cpu", mprof_cpu_init_from_env, mprof_cpu_at_exit, mprof_cpu_after_fork_child, PROFILED},
    {"snapshots", mprof_snapshots_init, mprof_snapshots_at_exit, mprof_snapshots_postfork_child, PROFILED},
    {"http", mprof_http_init_from_env, mprof_http_at_exit, mprof_http_after_fork_child, PROFILED},
    /* Last: it looks at every kind's exit file (stop_signals.c). */
    {"stop signals", mprof_stop_signals_init, NULL, mprof_stop_signals_postfork_child, PROFILED},
};

#define N_SUBSYSTEMS ((int)(sizeof subsystems / sizeof subsystems[0]))

/* EXIT_NOT_RUN until the first run of the exit writers (atexit, a stop
 * signal or an _exit, stop_signals.c: whoever comes first), EXIT_RUNNING
 * while they run, EXIT_DONE after; a futex word, so that an _exit can wait
 * for a run another thread began. */
static _Atomic uint32_t exit_state;

/* Whether this process runs row r: decided once, by the selection row,
 * before any row that depends on it. */
static int runs(const struct subsystem *r)
{
    if (r->when == EVERY)
        return 1;
    return (r->when == IDLE) == !mprof_run_tree_selected();
}

/* The thread running the exit writers (its lock token), while they run:
 * an _exit from inside them (the leak check's status, a writer's callee)
 * must not wait for the run it is part of. */
static _Atomic uint32_t exit_runner;

void mprof_lifecycle_run_exit(void)
{
    uint32_t expected = EXIT_NOT_RUN;
    if (!atomic_compare_exchange_strong(&exit_state, &expected, EXIT_RUNNING))
        return;
    atomic_store(&exit_runner, mprof_lock_token());
    for (int i = N_SUBSYSTEMS - 1; i >= 0; i--)
        if (subsystems[i].at_exit != NULL && runs(&subsystems[i]))
            subsystems[i].at_exit();
    atomic_store(&exit_state, EXIT_DONE);
    mprof_futex_wake(&exit_state, INT_MAX);
}

uint32_t mprof_lifecycle_exit_state(void) { return atomic_load(&exit_state); }

int mprof_lifecycle_exit_is_mine(void)
{
    return atomic_load(&exit_state) == EXIT_RUNNING &&
           atomic_load(&exit_runner) == mprof_lock_token();
}

int mprof_lifecycle_wait_exit(int64_t timeout_ns)
{
    int64_t deadline = mprof_mono_ns() + timeout_ns;
    for (;;) {
        uint32_t s = atomic_load(&exit_state);
        if (s == EXIT_DONE)
            return 1;
        int64_t left = deadline - mprof_mono_ns();
        if (left <= 0)
            return 0;
        mprof_futex_wait(&exit_state, s, left);
    }
}

/* Not in a vfork or clone child that calls exit(): the state is the
 * parent's (interpose/exit.h). */
static void at_exit(void)
{
    if (!mprof_process_is_ours())
        return;
    normal_exit = 1;
    mprof_lifecycle_run_exit();
}

static void postfork_child(void)
{
    normal_exit = 0;
    /* The child's own exit is to come (the parent's may have begun). */
    atomic_store(&exit_state, EXIT_NOT_RUN);
    for (int i = 0; i < N_SUBSYSTEMS; i++)
        if (subsystems[i].postfork_child != NULL && runs(&subsystems[i]))
            subsystems[i].postfork_child();
}

static _Atomic int initialized;

void mprof_lifecycle_start(void)
{
    int expected = 0;
    if (!atomic_compare_exchange_strong(&initialized, &expected, 1))
        return;
    mprof_guard_enter();
    for (int i = 0; i < N_SUBSYSTEMS; i++)
        if (subsystems[i].init != NULL && runs(&subsystems[i]))
            subsystems[i].init();
    /* After every init: the handlers then find every row ready. */
    pthread_atfork(NULL, NULL, postfork_child);
    atexit(at_exit);
    mprof_guard_leave();
}

/* Runs before main (and before the constructors of libraries loaded after
 * us).  Priority 101: as early as a constructor can ask for. */
__attribute__((constructor(101))) static void lifecycle_constructor(void)
{
    mprof_lifecycle_start();
}
