/*
 * runtime: the library's start, exit and fork, in one place (lifecycle.c).
 * May include every folder; nothing includes it but lifecycle.c.
 */
#ifndef MPROF_RUNTIME_LIFECYCLE_H
#define MPROF_RUNTIME_LIFECYCLE_H

#include "core/core.h"

/* ----------------------------------------------------------- start-up */

/* Defined in init.c; see there. */
extern const int mprof_init_anchor MPROF_HIDDEN;


/* Called from the library constructor, in order. */
MPROF_HIDDEN void mprof_sampler_init(void);
MPROF_HIDDEN void mprof_cpu_init_from_env(void);
MPROF_HIDDEN void mprof_http_init_from_env(void);

/* Called at exit (atexit), in order. */
MPROF_HIDDEN void mprof_cpu_at_exit(void);
MPROF_HIDDEN void mprof_http_at_exit(void);

/* Called in a forked child before it returns from fork. */
MPROF_HIDDEN void mprof_cpu_after_fork_child(void);
MPROF_HIDDEN void mprof_http_after_fork_child(void);

#endif /* MPROF_RUNTIME_LIFECYCLE_H */
