/*
 * Records of the live sampled blocks that carry a header: see
 * header_records.c.  The common cases of taking and giving back a record are
 * inline here, into the sampler's path: a load, a compare and a move.
 */
#ifndef MPROF_HEADER_RECORDS_H
#define MPROF_HEADER_RECORDS_H

#include "core/core.h"
#include "heap/sampler.h"

#define MPROF_MAG_SIZE 30 /* a magazine fills four cache lines */

struct mprof_rec_mag {
    struct mprof_rec_mag *next; /* in the depot */
    int n;
    struct mprof_live_rec *r[MPROF_MAG_SIZE];
};

/* A thread's two magazines: it takes from and gives to `cur`, and swaps
 * with `prev` before going to the depot, so that a thread alternating
 * allocations and frees at a magazine's edge does not trade every time. */
struct mprof_rec_cache {
    struct mprof_rec_mag *cur, *prev;
    struct mprof_rec_cache *next_free;
};

extern __thread struct mprof_rec_cache *mprof_tls_rec_cache
    __attribute__((tls_model("initial-exec")));

/* The slow paths: no cache yet, or the loaded magazine empty (full). */
MPROF_HIDDEN struct mprof_live_rec *mprof_rec_get_slow(void);
MPROF_HIDDEN void mprof_rec_put_slow(struct mprof_live_rec *r);

/* A record from this thread's magazine; NULL out of memory. */
static inline struct mprof_live_rec *mprof_rec_get(void)
{
    struct mprof_rec_cache *c = mprof_tls_rec_cache;
    if (MPROF_LIKELY(c != NULL && c->cur->n > 0))
        return c->cur->r[--c->cur->n];
    return mprof_rec_get_slow();
}

/* Gives a record back (its addr already 0). */
static inline void mprof_rec_put(struct mprof_live_rec *r)
{
    struct mprof_rec_cache *c = mprof_tls_rec_cache;
    if (MPROF_LIKELY(c != NULL && c->cur->n < MPROF_MAG_SIZE)) {
        c->cur->r[c->cur->n++] = r;
        return;
    }
    mprof_rec_put_slow(r);
}

/* Every record in use (fn may be NULL: just counts). */
MPROF_HIDDEN int mprof_rec_foreach(void (*fn)(const struct mprof_live_rec *r, void *arg),
                                   void *arg);
MPROF_HIDDEN void mprof_rec_init(void);
/* A forked child's repair of the depot, if a thread fork left behind held
 * its lock (sampler.h, "Fork"). */
MPROF_HIDDEN void mprof_rec_repair(uint32_t me, struct mprof_fork_repair *r);

#endif /* MPROF_HEADER_RECORDS_H */
