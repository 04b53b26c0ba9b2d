/*
 * runtime: the library's start, exit and fork, in one place (lifecycle.c).
 * May include every folder; nothing in src/ includes it but lifecycle.c
 * (unit tests include it for every subsystem's hooks at once).
 */
#ifndef MPROF_RUNTIME_LIFECYCLE_H
#define MPROF_RUNTIME_LIFECYCLE_H

#include "core/core.h"
#include "core/options.h"
#include "unwind/unwind.h"
#include "heap/header_records.h"
#include "heap/sampler.h"
#include "heap/leak_scan.h"
#include "symbolize/symbolize.h"
#include "profiles/heap_profile.h"
#include "profiles/hooks.h"
#include "http/http.h"

/* The exit writers of every row (at_exit, bottom to top), once per
 * process: the atexit handler, or a stop signal that comes first. */
MPROF_HIDDEN void mprof_lifecycle_run_exit(void);

/* Stop signals (stop_signals.c): profiles written on SIGTERM, SIGINT,
 * SIGHUP and SIGQUIT whose action is the default, then the same death. */
MPROF_HIDDEN void mprof_stop_signals_init(void);
MPROF_HIDDEN void mprof_stop_signals_postfork_child(void);

#endif /* MPROF_RUNTIME_LIFECYCLE_H */
