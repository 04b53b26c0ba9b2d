/*
 * Labels (labels.c): key=value pairs a thread sets around a piece of work
 * (a request, a tenant, a phase), as Go's pprof.Do sets them for CPU
 * samples; here they also split the heap: the label set a thread has when
 * it takes a heap sample is part of the sample's bucket key, so the memory
 * in use per label value is exact to the sampling error, and a block freed
 * by another thread is still counted against the set it was allocated
 * under (the free finds its bucket).
 *
 * Invariants:
 *
 *  1. A label set is interned: one record per distinct set of pairs, made
 *     once, never changed or freed, named by a small id (0: no labels).
 *     Pairs are sorted by key, keys unique.  So two samples carry the same
 *     labels exactly when their ids are equal, and an id in a bucket stays
 *     readable for good.
 *  2. A thread's current set is one thread-local id, read with a plain
 *     load on the sampled path (and safely in a signal handler).  Pushing
 *     and popping change only the calling thread's id and its stack of
 *     previous ids; finding a set already made takes no lock (labels.c,
 *     index_of), making a new one takes the labels lock, which nothing on
 *     the allocation path or in a signal handler ever takes.
 *  3. Bounded: at most MPROF_LABEL_SETS sets in a process, MPROF_LABEL_MAX
 *     pairs in a set, MPROF_LABEL_DEPTH nested pushes, 63 bytes a key or a
 *     value.  A push past a bound fails (the caller's labels stay as they
 *     were) and is said once on stderr.
 */
#ifndef MPROF_HEAP_LABELS_H
#define MPROF_HEAP_LABELS_H

#include <stdint.h>

#include "core/core.h"
#include "heap/sampler.h"

#define MPROF_LABEL_SETS 4096
#define MPROF_LABEL_MAX 8
#define MPROF_LABEL_DEPTH 16
#define MPROF_LABEL_LEN 63

struct mprof_labelset {
    uint32_t id;
    uint32_t n;
    uint64_t hash;
    const char *key[MPROF_LABEL_MAX];
    const char *value[MPROF_LABEL_MAX];
};

MPROF_HIDDEN extern __thread uint32_t mprof_tls_labels __attribute__((tls_model("initial-exec")));

/* The set named id, or NULL for 0 or an id never made. */
MPROF_HIDDEN const struct mprof_labelset *mprof_labelset_get(uint32_t id);

/* A forked child's repair (sampler.h, "Fork"): the labels lock. */
MPROF_HIDDEN void mprof_labels_repair(uint32_t me, struct mprof_fork_repair *r);

#endif /* MPROF_HEAP_LABELS_H */
