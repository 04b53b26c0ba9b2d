/*
 * http: the /debug/pprof server inside the profiled program, and its
 * life-cycle hooks.  May include core, encode, profiles (the registry it
 * serves) and interpose (to create its threads unhooked).
 */
#ifndef MPROF_HTTP_H
#define MPROF_HTTP_H

#include "core/core.h"

/*
 * The /debug/pprof server (http_server.c) serves every kind of the profile
 * registry (profiles/registry.h) under /debug/pprof/<name> and lists it on
 * the index page, as Go's net/http/pprof does for runtime/pprof.Profiles();
 * nothing here knows any kind by name.
 */

/* Life-cycle hooks, run by the table in runtime/lifecycle.c: init starts
 * the server MPROF_HTTP asks for; at exit the server stops (a request in
 * flight gets a few seconds); in a forked child the server's descriptors
 * are closed and its locks made fresh (the child has no server thread). */
MPROF_HIDDEN void mprof_http_init_from_env(void);
MPROF_HIDDEN void mprof_http_at_exit(void);
MPROF_HIDDEN void mprof_http_after_fork_child(void);


#endif /* MPROF_HTTP_H */
