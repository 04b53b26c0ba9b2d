/*
 * http: the /debug/pprof server.  The registration interface for profiles
 * served there.
 */
#ifndef MPROF_HTTP_H
#define MPROF_HTTP_H

#include "core/core.h"

/* ------------------------------------------------------ live profiling */

/*
 * The /debug/pprof server (http_server.c) serves every profile registered
 * here under /debug/pprof/<name> and lists it on the index page, as Go's
 * net/http/pprof does for runtime/pprof.Profiles().  A subsystem registers
 * its profile once from its init function, before or after the server
 * starts; the built-in ones are heap, allocs, profile (CPU) and cmdline.
 */

/* Query parameters of a request, already validated. */
typedef struct mprof_http_params {
    long seconds; /* ?seconds=N (1..3600); 0 when absent */
    int debug;    /* ?debug=N: 0 (absent) pprof protobuf, >0 legacy text */
    int gc;       /* ?gc=N: accepted for Go compatibility; there is no GC */
} mprof_http_params;

/* flags */
#define MPROF_HTTP_ALWAYS_TEXT 1u /* served as text/plain whatever debug says */

typedef struct mprof_http_profile {
    const char *name;        /* [a-z0-9_.-]+, the path under /debug/pprof/ */
    const char *description; /* one sentence for the index page */
    unsigned flags;
    /* Index page "Count" column (Go: records in the profile); NULL: 0. */
    long (*count)(void);
    /*
     * The profile as it is now, into fd: gzipped pprof protobuf when
     * params->debug is 0, text otherwise.  0, or -1 with errno.  NULL when
     * the profile exists only over a window (CPU).
     */
    int (*write)(int fd, const mprof_http_params *params);
    /*
     * The profile over a window of params->seconds (?seconds=N, or
     * default_seconds when the request has none): begin opens the window
     * (returning -1 with errno EBUSY gives 409 Conflict); end, called when
     * the window has passed, writes the result into fd and releases state;
     * cancel releases state without a result (the client went away or the
     * server is stopping); fd is the same in all three and is valid until
     * end or cancel returns.  NULL begin: "seconds" gives 400, as in Go.
     */
    int (*begin)(int fd, const mprof_http_params *params, void **state);
    int (*end)(int fd, void *state, const mprof_http_params *params);
    void (*cancel)(int fd, void *state);
    long default_seconds; /* > 0: always windowed (CPU: 30, like Go) */
} mprof_http_profile;

/*
 * Adds a profile to /debug/pprof.  The struct must stay valid for the life
 * of the process (a static const).  Its callbacks run on the server's worker
 * thread, one callback at a time across all profiles, with the profiler
 * guard held; they may take as long as they need (they do not hold up
 * other clients) but must not block forever.  Returns 0, or -1 with errno
 * EEXIST (name taken), EINVAL (bad name) or ENOSPC (table full).
 */
MPROF_HIDDEN int mprof_http_register_profile(const mprof_http_profile *profile);

/* Life-cycle hooks, run by the table in runtime/lifecycle.c: init starts
 * the server MPROF_HTTP asks for; at exit the server stops (a request in
 * flight gets a few seconds); in a forked child the server's descriptors
 * are closed and its locks made fresh (the child has no server thread). */
MPROF_HIDDEN void mprof_http_init_from_env(void);
MPROF_HIDDEN void mprof_http_at_exit(void);
MPROF_HIDDEN void mprof_http_after_fork_child(void);


#endif /* MPROF_HTTP_H */
