/*
 * Settings: the values of the MPROF_* variables, read once.
 *
 * Every setting is a row of shared/options.def; this is the only code that
 * reads those variables.  They are read once, at the first call here (the
 * first malloc may come before any constructor, and the allocator row needs
 * MPROF_HEADERS), from the environment the process received: programs
 * rewrite or clear their environment later (clearenv, setenv, bash's own
 * getenv), and a profiler that read it again would change its mind halfway.
 *
 * Invariants:
 *   1. Every MPROF_* read goes through mprof_option_*; nothing else calls
 *      getenv on an MPROF_* name (the one exception is the store of
 *      MPROF_ROOT_PID for exec'd children, in util.c).
 *   2. A value is checked when read: an INT out of range or not a number
 *      and a PATH of PATH_MAX bytes or more are reported once, with the
 *      variable's name, and treated as unset.  TEXT values are checked by
 *      their one reader, which reports them once, since only it knows the
 *      words (signal names, addresses).
 *   3. Empty means unset, for every type.
 *   4. Values never change after the load, so readers need no lock, and a
 *      forked child keeps its parent's settings.
 */
#ifndef MPROF_CORE_OPTIONS_H
#define MPROF_CORE_OPTIONS_H

#include "core/core.h"

enum mprof_option_id {
    MPROF_OPT_NONE = 0, /* "no option": the zero of designated initializers */
#define MPROF_OPTION(ID, ...) MPROF_OPT_##ID,
#include "shared/options.def"
#undef MPROF_OPTION
    MPROF_OPT_COUNT
};

/* Reads the environment once; later calls return at once.  Called by the
 * lifecycle's first row and by every accessor below, so the first reader
 * wherever it is triggers the load. */
MPROF_HIDDEN void mprof_options_load(void);

/* 1 when the variable was given with a valid value. */
MPROF_HIDDEN int mprof_option_is_set(enum mprof_option_id id);

/* An INT setting: its value, or the table's default when unset or bad. */
MPROF_HIDDEN long mprof_option_long(enum mprof_option_id id);

/* An INT setting's accepted range, from the table: for the API calls that
 * take the same quantity (mprof_set_block_rate clamps to it). */
MPROF_HIDDEN long mprof_option_min(enum mprof_option_id id);
MPROF_HIDDEN long mprof_option_max(enum mprof_option_id id);

/* A PATH or TEXT setting: the value (a private copy, valid for the whole
 * run), or NULL when unset, empty or bad. */
MPROF_HIDDEN const char *mprof_option_text(enum mprof_option_id id);

/* The variable's name, "MPROF_RATE"; "" for MPROF_OPT_NONE. */
MPROF_HIDDEN const char *mprof_option_name(enum mprof_option_id id);

/* mprof run's flag that sets it, "--rate"; NULL when it has none.  For
 * messages: a user of mprof run typed the flag, not the variable. */
MPROF_HIDDEN const char *mprof_option_flag(enum mprof_option_id id);

/* Unit tests only, single-threaded: forget the values, so that the next
 * read loads the environment the test has just set.  Never called by the
 * library (invariant 4). */
MPROF_HIDDEN void mprof_options_reset_for_test(void);

/*
 * The known name closest to an unknown MPROF_* name, for "did you mean":
 * the documented setting at the smallest edit distance, if that distance is
 * small for the name's length; NULL when nothing is close.  Exposed for
 * the unit test.
 */
MPROF_HIDDEN const char *mprof_option_suggest(const char *unknown);

#endif
