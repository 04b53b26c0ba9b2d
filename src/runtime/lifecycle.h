/*
 * runtime: the library's start, exit and fork, in one place (lifecycle.c).
 * May include every folder; nothing in src/ includes it but lifecycle.c
 * (unit tests include it for every subsystem's hooks at once).
 */
#ifndef MPROF_RUNTIME_LIFECYCLE_H
#define MPROF_RUNTIME_LIFECYCLE_H

#include "core/core.h"
#include "core/options.h"
#include "core/os.h"
#include "unwind/unwind.h"
#include "heap/header_records.h"
#include "heap/sampler.h"
#include "heap/leak_scan.h"
#include "interpose/exit.h"
#include "symbolize/symbolize.h"
#include "profiles/heap_profile.h"
#include "profiles/hooks.h"
#include "http/http.h"

/* The exit writers of every row (at_exit, bottom to top), once per
 * process: the atexit handler, or a stop signal or an _exit that comes
 * first. */
MPROF_HIDDEN void mprof_lifecycle_run_exit(void);

/* Where the exit writers are: not run, running, done.  Async-signal-safe. */
enum { EXIT_NOT_RUN, EXIT_RUNNING, EXIT_DONE };
MPROF_HIDDEN uint32_t mprof_lifecycle_exit_state(void);
/* Whether the calling thread is the one running them now (an _exit from
 * inside the writers, e.g. the leak check's status, must not wait for
 * itself).  Async-signal-safe. */
MPROF_HIDDEN int mprof_lifecycle_exit_is_mine(void);
/* Waits until they are done, at most timeout_ns: 1 when done, 0 at the
 * deadline.  Async-signal-safe (a futex wait). */
MPROF_HIDDEN int mprof_lifecycle_wait_exit(int64_t timeout_ns);

/* Stop signals (stop_signals.c): profiles written on SIGTERM, SIGINT,
 * SIGHUP and SIGQUIT whose action is the default, then the same death. */
MPROF_HIDDEN void mprof_stop_signals_init(void);
MPROF_HIDDEN void mprof_stop_signals_postfork_child(void);

#endif /* MPROF_RUNTIME_LIFECYCLE_H */
