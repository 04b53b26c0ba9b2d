/*
 * _exit and _Exit interposed (the rule: exit.h).
 *
 * Why each condition.  A vfork() child runs on the parent's memory until it
 * execs or exits: writing profiles there would run the exit writers on the
 * parent's tables and threads' state (stopping the parent's CPU profile,
 * closing its files) behind the parent's back; vfork runs no pthread_atfork
 * handlers, so the process id recorded by the last fork handler is the
 * parent's, and the child's own id (the system call, never a cached value)
 * tells them apart.  A raw clone() child is refused the same way: it never
 * went through the fork repair.  A caller inside the profiler (its guard
 * held) may hold the profiler's locks in the frame it interrupted: the
 * writers would wait on them forever, so nothing is written.  Locks the
 * guard does not cover (the C library's allocator lock, the few
 * instructions of the free path's bucket and shard locks) cannot be seen
 * from here: the hook runs the writers on a thread of the profiler's and
 * waits with a deadline (runtime/stop_signals.c), and the process ends when
 * the deadline passes even if they are still blocked.
 *
 * Under `mprof run` the root of a process tree prints the run's one
 * summary line at its exit (core/run_tree.c), and Debian's /bin/sh (dash)
 * leaves through _exit at the end of every script: the summary runs here
 * too, through the exit writers when the hook is installed (its row is in
 * the lifecycle table), directly when not (a process that writes no file
 * at exit, or one --only left out).  It does nothing outside the root or
 * the second time.
 *
 * The C library's _exit is looked up at start (dlsym must not run in a
 * vfork child or a signal handler); exit_group is the fallback, which is
 * all glibc's _exit does.  _Exit is the same function in C99's name.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/core.h"
#include "core/os.h"
#include "interpose/exit.h"

#define EXPORT __attribute__((visibility("default")))

typedef void exit_fn(int);

static _Atomic pid_t recorded_pid;
static exit_fn *_Atomic real_exit;
static void (*_Atomic exit_hook)(void);

void mprof_exit_init(void)
{
    atomic_store(&recorded_pid, (pid_t)syscall(SYS_getpid));
    atomic_store(&real_exit, (exit_fn *)mprof_next_symbol("_exit", NULL));
}

void mprof_exit_postfork_child(void) { atomic_store(&recorded_pid, (pid_t)syscall(SYS_getpid)); }

int mprof_process_is_ours(void)
{
    pid_t want = atomic_load(&recorded_pid);
    return want == 0 || (pid_t)syscall(SYS_getpid) == want;
}

void mprof_exit_hook_install(void (*hook)(void)) { atomic_store(&exit_hook, hook); }

static __attribute__((noreturn)) void leave(int status)
{
    void (*hook)(void) = atomic_load(&exit_hook);
    if (mprof_tls_guard == 0 && mprof_process_is_ours()) {
        if (hook != NULL)
            hook();
        else
            mprof_run_tree_at_exit();
    }
    exit_fn *real = atomic_load(&real_exit);
    if (real != NULL)
        real(status);
    for (;;)
        syscall(SYS_exit_group, status);
}

EXPORT void _exit(int status) { leave(status); }
EXPORT void _Exit(int status) { leave(status); }
