/*
 * _exit and _Exit, in front of the C library's: a process that leaves
 * through them runs no atexit handler, and Debian's /bin/sh (dash) leaves
 * that way at the end of every script.  Under `mprof run` the root of the
 * tree prints the run's one summary line at its exit (core/run_tree.c):
 * a dash root would print none, and the lines of its children, which wait
 * in the run log for that summary, would never be seen.  So the root's
 * summary runs here too; nothing else does (the profiles of a process
 * that leaves through _exit are not written: issue 16, item 3).
 *
 * The summary does nothing in any other process (a forked or vforked
 * child has another pid) and nothing the second time (the log is gone),
 * so a vfork child's _exit after a failed exec, and glibc's own exit
 * (which reaches the kernel without this symbol), are left as they were.
 */
#include <sys/syscall.h>
#include <unistd.h>

#include "core/core.h"

#define EXPORT __attribute__((visibility("default")))

static __attribute__((noreturn)) void leave(int status)
{
    mprof_run_tree_at_exit();
    for (;;)
        syscall(SYS_exit_group, status);
}

EXPORT void _exit(int status) { leave(status); }
EXPORT void _Exit(int status) { leave(status); }
