/*
 * interpose/exit: _exit and _Exit interposed, so that a program that leaves
 * through them (shells' children, daemons' workers, a SIGTERM handler that
 * calls _exit) still writes its exit profiles; and the test of which
 * process the profiler's state belongs to.
 *
 * The rule (exit.c has the reasons): the exit profiles are written from an
 * _exit only
 *
 *   1. in the process the library started in, or a fork() child of it: not
 *      in a vfork() or clone() child, which shares or copied the parent's
 *      memory without the fork handlers that make it the child's own (the
 *      process id the library recorded at start and in the fork handler
 *      differs from the caller's);
 *   2. when the calling thread is not inside the profiler (its guard is not
 *      held: a signal handler that interrupted the sampler, or a profiler
 *      thread, writes nothing);
 *   3. once per process (lifecycle.c), whoever comes first: exit, a stop
 *      signal or an _exit;
 *   4. by the hook the runtime installs, which hands the work to a thread
 *      of the profiler's and waits for it a bounded time, so that a lock
 *      held by the frame the caller interrupted (a handler calling _exit
 *      from inside malloc or the profiler's free path) can delay the exit
 *      but never hang it.
 *
 * Then the C library's _exit ends the process with the caller's status.
 */
#ifndef MPROF_INTERPOSE_EXIT_H
#define MPROF_INTERPOSE_EXIT_H

#include "core/core.h"

/* Lifecycle rows: the init records the process id and finds the C
 * library's _exit; the fork child's hook records the child's id. */
MPROF_HIDDEN void mprof_exit_init(void);
MPROF_HIDDEN void mprof_exit_postfork_child(void);

/* Whether the calling process is the one whose profiler state this is (the
 * recorded process, or a fork() child after its fork handlers): false in a
 * vfork() or clone() child.  One system call; async-signal-safe. */
MPROF_HIDDEN int mprof_process_is_ours(void);

/* The work an _exit does before it ends the process, when the rule above
 * allows it (NULL: none).  Called on the caller's thread, maybe in a signal
 * handler: it must only use async-signal-safe means, and return. */
MPROF_HIDDEN void mprof_exit_hook_install(void (*hook)(void));

#endif /* MPROF_INTERPOSE_EXIT_H */
