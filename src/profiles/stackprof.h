/*
 * Pieces shared by the profiles keyed by a stack alone (contention.c,
 * threadcreate.c, allstacks.c): a lock-free table of stacks with two
 * values each, snapshots of it, and the text forms Go prints for such
 * profiles (debug=1 "@ 0x..." records, debug=2 goroutine-style stacks).
 *
 * Private to the profiles/ folder.
 */
#ifndef MPROF_STACKPROF_H
#define MPROF_STACKPROF_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "core/os.h"
#include "encode/pprof.h"
#include "symbolize/symbolize.h"
#include "unwind/unwind.h"
#include "core/text.h"
#include "profiles/registry.h"

/* ------------------------------------------------------------ stack table */

/*
 * A table of distinct stacks, each with two accumulated values (contention
 * count and delay; or a count alone).  Adding is lock-free and never
 * allocates from malloc: it runs in the program's threads, inside lock
 * wrappers and pthread_create, where neither a lock of ours nor the host's
 * allocator may be used.  Entries are never removed (profiles are
 * cumulative, as Go's), so a reader may walk the table at any time.
 */
typedef struct mprof_stk_entry {
    uint64_t hash;
    int n;
    /* The label set of the thread that recorded it (heap/labels.h), part
     * of the key: the same stack under two label sets is two entries. */
    uint32_t labels;
    _Atomic double v[2];
    uintptr_t pcs[]; /* n frames */
} mprof_stk_entry;

typedef struct mprof_stk_table {
    _Atomic(_Atomic(mprof_stk_entry *) *) slots; /* NULL until initialised */
    uint32_t mask;                               /* capacity - 1 */
    _Atomic uint32_t used;
    _Atomic uint64_t dropped; /* events lost: table full or no memory */
} mprof_stk_table;

/* Capacity of every table: distinct stacks beyond 3/4 of it are dropped
 * (and counted), which bounds the profiler's memory and probe lengths. */
#define MPROF_STK_CAPACITY 16384u

/* Makes the table usable (arena memory).  Cold; may race with itself.
 * 0, or -1 when no memory could be had. */
MPROF_HIDDEN int mprof_stk_init(mprof_stk_table *t);

/* Adds v0, v1 to the entry of (pcs[0, n), labels), creating it.
 * Lock-free; async-signal-safe except for the arena's mmap. */
MPROF_HIDDEN void mprof_stk_add(mprof_stk_table *t, const uintptr_t *pcs, int n, uint32_t labels,
                                double v0, double v1);

/* A copy of one entry, for writers (cold path, malloc'd). */
typedef struct mprof_stk_record {
    int n;
    double v[2];
    uintptr_t pcs[MPROF_MAX_STACK];
    const char *label; /* free-form per-record string (thread name), may be NULL */
    uint32_t labels;   /* label set id, 0 for none: written as string labels */
} mprof_stk_record;

typedef struct mprof_stk_set {
    mprof_stk_record *recs;
    size_t n;
    uint32_t cap;
} mprof_stk_set;

/* Copies every entry into set (malloc'd; guard held).  0 or -1 (ENOMEM). */
MPROF_HIDDEN int mprof_stk_snapshot(mprof_stk_table *t, mprof_stk_set *set);
MPROF_HIDDEN mprof_stk_record *mprof_stk_set_push(mprof_stk_set *set);
MPROF_HIDDEN void mprof_stk_set_free(mprof_stk_set *set);
/* Sorts by stack and labels so that mprof_stk_set_find works. */
MPROF_HIDDEN void mprof_stk_set_sort(mprof_stk_set *set);
MPROF_HIDDEN const mprof_stk_record *mprof_stk_set_find(const mprof_stk_set *set,
                                                        const mprof_stk_record *key);

/* ----------------------------------------------------------------- text */

/*
 * Go's legacy record stack: "#\t0xPC\tfunction+0xOFF\tfile:line" per frame
 * (inlined ones included), then an empty line.  pcs are call sites, as the
 * tables hold them.  sym may be NULL (addresses only).
 */
MPROF_HIDDEN void mprof_text_legacy_stack(mprof_text *t, mprof_symbolizer *sym,
                                          const uintptr_t *pcs, int n);

/* The " @ 0x... 0x..." address list of a legacy record (return addresses,
 * as Go prints them: call site + 1). */
MPROF_HIDDEN void mprof_text_legacy_addrs(mprof_text *t, const uintptr_t *pcs, int n);

/*
 * Go's panic/debug=2 traceback style, one entry per frame:
 *     function(...)
 *             file:line +0xOFF
 * Frames without a symbol print their object and offset in it.
 */
MPROF_HIDDEN void mprof_text_traceback(mprof_text *t, mprof_symbolizer *sym, const uintptr_t *pcs,
                                       int n);

/* ------------------------------------------------------------ writing */

/*
 * A profile made of stack records, written as pprof (debug 0) or as Go's
 * legacy text (debug > 0).  Records with every value 0 are left out (a
 * window's difference); values are rounded.  The set is sorted in place
 * (largest last value first, as Go lists them).  Guard held.
 */
typedef struct mprof_stk_profile {
    const char *name;        /* "block", "mutex", "threadcreate" */
    const char *legacy_name; /* text header: "contention", "mutex"; NULL: count profile */
    int nvalues;             /* 1 (count) or 2 (count, delay) */
    const char *const *types; /* nvalues (type, unit) pairs */
    const char *period_type, *period_unit;
    int64_t period;
    long sampling_period;    /* legacy text "sampling period=" line when > 0 */
    const char *comment;     /* may be NULL */
    int64_t time_ns, duration_ns;
} mprof_stk_profile;

MPROF_HIDDEN int mprof_stk_write(int fd, int debug, const mprof_stk_profile *desc,
                                 mprof_stk_set *set);

/* set minus before, record by record (same stack and labels), for
 * ?seconds=N windows.
 * before must be sorted. */
MPROF_HIDDEN void mprof_stk_set_subtract(mprof_stk_set *set, const mprof_stk_set *before);

/* A sorted snapshot of the table, the base of a delta (the registry's
 * snapshot callback of every stack-table kind); NULL with errno. */
MPROF_HIDDEN mprof_stk_set *mprof_stk_snapshot_sorted(mprof_stk_table *t);
MPROF_HIDDEN void mprof_stk_snapshot_free(void *snapshot);


#endif /* MPROF_STACKPROF_H */
