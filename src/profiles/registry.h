/*
 * profiles: every profile kind mprof writes, and the one registry they are
 * written through (registry.c), after Go's runtime/pprof (Lookup, Profiles,
 * WriteTo).  A kind registers once, from its subsystem's init row in
 * runtime/lifecycle.c; from that one entry follow
 *
 *   - /debug/pprof/NAME and its line on the index page (http/),
 *   - /debug/pprof/NAME?seconds=N, the delta of a cumulative profile over a
 *     window, computed here once for every kind that can take a snapshot,
 *   - the file written at exit when the entry's option names one
 *     (MPROF_HEAP, MPROF_BLOCK, ...), with its one line on stderr,
 *   - the numbered files written on MPROF_SIGNAL and every MPROF_INTERVAL
 *     (snapshots.c),
 *   - the public mprof_write_profile(name, path) / _fd(name, fd, debug).
 *
 * Adding a kind: one file in profiles/ with its entry and its init row in
 * lifecycle.c (plus its option in shared/options.def when it has an exit
 * file).  Nothing in http/ or the CLI changes.
 */
#ifndef MPROF_PROFILES_REGISTRY_H
#define MPROF_PROFILES_REGISTRY_H

#include <stdint.h>

#include "core/core.h"
#include "core/options.h"

/* What a reader asked for; already validated (HTTP query, API call). */
typedef struct mprof_profile_params {
    long seconds; /* ?seconds=N (1..3600); 0 when absent */
    int debug;    /* 0: gzipped pprof protobuf; > 0: Go's legacy text forms */
    int gc;       /* ?gc=N: accepted for Go compatibility; there is no GC */
} mprof_profile_params;

/*
 * The start of a window, for a delta: what the kind's snapshot callback
 * returned when the window opened, and when that was (monotonic ns).
 */
typedef struct mprof_profile_base {
    void *snapshot;
    int64_t start_mono_ns;
} mprof_profile_base;

/* flags */
#define MPROF_PROFILE_TEXT 1u      /* always text (cmdline): never gzipped pprof */
#define MPROF_PROFILE_HEAP_DUMP 2u /* the heap dump format, read with `mprof dump` */

typedef struct mprof_profile {
    const char *name;        /* [a-z0-9_.-]+: the HTTP path, mprof_write_profile's name */
    const char *description; /* one sentence, for the index page */
    const char *what;        /* for messages: "heap profile" */
    /* The setting naming the file written at exit ("%p" = pid), a PATH row
     * of shared/options.def; MPROF_OPT_NONE (0) when the kind has none. */
    enum mprof_option_id exit_option;
    unsigned flags;
    /* Index page "Count" column (Go: records in the profile); NULL: 0. */
    long (*count)(void);
    /*
     * The profile into fd: base NULL, as it is now; otherwise the profile
     * now minus the snapshot in base (every value, second minus first, as
     * Go's net/http/pprof computes deltas).  0, or -1 with errno.  NULL when
     * the kind exists only over a window (CPU).
     */
    int (*write)(int fd, const mprof_profile_params *params, const mprof_profile_base *base);
    /*
     * Cumulative kinds: the state a delta subtracts (malloc'd, guard held),
     * NULL with errno on failure; and its release.  A kind without snapshot
     * has no ?seconds= form unless it has begin.
     */
    void *(*snapshot)(void);
    void (*snapshot_free)(void *snapshot);
    /*
     * Kinds that exist only over a window (the CPU profile): begin opens it
     * (-1 with EBUSY when one runs already), end writes the result into fd,
     * cancel drops it; fd is the same in all three.  default_seconds > 0:
     * always windowed (CPU: 30, like Go).
     */
    int (*begin)(int fd, const mprof_profile_params *params, void **state);
    int (*end)(int fd, void *state, const mprof_profile_params *params);
    void (*cancel)(int fd, void *state);
    long default_seconds;
} mprof_profile;

/*
 * Adds a kind.  The struct must stay valid for the life of the process (a
 * static const).  Reads the kind's exit option now, at start-up: programs
 * rewrite their environment later (nginx workers, clearenv).  Returns 0, or
 * -1 with errno EEXIST (name taken), EINVAL (bad name or callbacks) or
 * ENOSPC (table full).
 */
MPROF_HIDDEN int mprof_profile_register(const mprof_profile *profile);

/* Go's pprof.Lookup: the kind called name, or NULL.  Stays valid. */
MPROF_HIDDEN const mprof_profile *mprof_profile_lookup(const char *name);

/* Go's pprof.Profiles: up to max kinds, sorted by name, into out; returns
 * how many. */
MPROF_HIDDEN int mprof_profile_list(const mprof_profile **out, int max);

/* The most kinds the registry holds. */
#define MPROF_MAX_PROFILES 32

/* The kind's name for messages: what, or its name when it has none. */
static inline const char *mprof_profile_what(const mprof_profile *p)
{
    return p->what ? p->what : p->name;
}

/* True when the kind has a ?seconds= form (a snapshot or a window). */
MPROF_HIDDEN int mprof_profile_has_window(const mprof_profile *p);

/*
 * A window over one kind, the same for every kind: a snapshot now and the
 * difference at end for cumulative kinds, the kind's own begin/end for the
 * others.  begin: 0, or -1 with errno (EBUSY, ENOMEM, ENOTSUP when the
 * kind has no window).  end writes into fd and releases; cancel releases.
 * Guard held (the HTTP worker).
 */
typedef struct mprof_profile_window mprof_profile_window;
MPROF_HIDDEN int mprof_profile_window_begin(const mprof_profile *p, int fd,
                                            const mprof_profile_params *params,
                                            mprof_profile_window **out);
MPROF_HIDDEN int mprof_profile_window_end(mprof_profile_window *w, int fd,
                                          const mprof_profile_params *params);
MPROF_HIDDEN void mprof_profile_window_cancel(mprof_profile_window *w, int fd);

/* Writes a kind now (no window) into fd; 0 or -1 with errno (ENOTSUP for a
 * window-only kind). */
MPROF_HIDDEN int mprof_profile_write(const mprof_profile *p, int fd, int debug);

/*
 * Every kind whose exit option names a file: the path that was set (NULL
 * when none).  snapshots.c writes numbered copies of these on a signal.
 */
MPROF_HIDDEN const char *mprof_profile_exit_pattern(const mprof_profile *p);

/*
 * Writes a kind now into the file at path, atomically (a temporary file
 * beside it, then rename), as pprof protobuf (the heap dump kind: its own
 * format).  0 or -1 with errno.
 */
MPROF_HIDDEN int mprof_profile_write_file(const mprof_profile *p, const char *path);

/* Life-cycle row "profile files": at exit, writes every kind's exit file
 * (in reverse order of registration, so the heap profile, registered
 * first, is written last and shows what the program held at the end). */
MPROF_HIDDEN void mprof_profiles_at_exit(void);
/* In a forked child: the registry's lock made fresh. */
MPROF_HIDDEN void mprof_profiles_postfork_child(void);

#endif /* MPROF_PROFILES_REGISTRY_H */
