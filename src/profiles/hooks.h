/*
 * profiles: the life-cycle hooks of each profile, run by the subsystem table
 * in runtime/lifecycle.c (which alone names them all, in order).  init runs
 * in the library constructor, before main; at_exit from the library's one
 * atexit handler; postfork_child in a forked child before fork returns,
 * where only the forking thread exists and only async-signal-safe work or
 * work on state no other thread can hold is allowed.  A hook whose profile
 * was not asked for does nothing.
 */
#ifndef MPROF_PROFILES_HOOKS_H
#define MPROF_PROFILES_HOOKS_H

#include "core/core.h"
#include "profiles/registry.h"

/* Allocation trace (trace.c): MPROF_TRACE.  The child gets a fresh queue,
 * output and writer thread. */
MPROF_HIDDEN void mprof_trace_init(void);
MPROF_HIDDEN void mprof_trace_at_exit(void);
MPROF_HIDDEN void mprof_trace_postfork_child(void);

/* The kinds' registrations (each file's init registers its kinds; their
 * files at exit are the registry's: mprof_profiles_at_exit). */
MPROF_HIDDEN void mprof_heap_profile_init(void); /* heap, allocs, peak */
MPROF_HIDDEN void mprof_lifetime_profile_init(void); /* lifetime */
/* The leak check (leaks.c): init registers the kind and reads the
 * suppressions; at_exit scans and reports; exit_status, after the profile
 * files, ends a normal exit with MPROF_LEAKS_EXITCODE when leaks were found. */
MPROF_HIDDEN void mprof_leaks_init(void);
MPROF_HIDDEN void mprof_leaks_at_exit(void);
MPROF_HIDDEN void mprof_leaks_exit_status(void);
MPROF_HIDDEN void mprof_cmdline_init(void);      /* cmdline */

/* Heap dump (heap_dump.c): /debug/pprof/heapdump and MPROF_HEAPDUMP. */
MPROF_HIDDEN void mprof_heap_dump_init(void);

/* Block and mutex profiles (contention.c): MPROF_BLOCK, MPROF_MUTEX.  The
 * child starts its waiter table afresh. */
MPROF_HIDDEN void mprof_contention_init(void);
MPROF_HIDDEN void mprof_contention_postfork_child(void);

/* Thread-creation profile (threadcreate.c): MPROF_THREADCREATE. */
MPROF_HIDDEN void mprof_threadcreate_init(void);

/* All threads' stacks (allstacks.c): /debug/pprof/goroutine.  The child
 * gets a fresh collector lock. */
MPROF_HIDDEN void mprof_allstacks_init(void);
MPROF_HIDDEN void mprof_allstacks_postfork_child(void);

/* CPU profile (cpu_profile.c): MPROF_CPU.  The child forgets the parent's
 * profile. */
MPROF_HIDDEN void mprof_cpu_init_from_env(void);
MPROF_HIDDEN void mprof_cpu_at_exit(void);
MPROF_HIDDEN void mprof_cpu_after_fork_child(void);

/* Numbered profile files without HTTP (snapshots.c): MPROF_SIGNAL and
 * MPROF_INTERVAL.  The child has no snapshot thread and ignores the
 * signal. */
MPROF_HIDDEN void mprof_snapshots_init(void);
MPROF_HIDDEN void mprof_snapshots_at_exit(void);
MPROF_HIDDEN void mprof_snapshots_postfork_child(void);

#endif /* MPROF_PROFILES_HOOKS_H */
