/*
 * Records of the live sampled blocks that carry a header (preload.c's
 * header mode, with glibc's malloc underneath).
 *
 * Such a block's free finds what it needs (bucket, size, weight) in the
 * block's own header, on the line the allocator reads anyway.  A record
 * here is only what lets the heap dump and the statistics list the live
 * blocks, and the header points at it, so it is found without a lookup.
 *
 * Records come and go through per-thread magazines, after Bonwick's slab
 * allocator: a thread takes a record from its loaded magazine and gives
 * records back to it, and trades whole magazines with a depot only when it
 * has none left or no room.  So a sampled allocation takes no lock and
 * touches no shared line: the record it takes is the one its thread gave
 * back last, whose line is still in its cache.  (The live table it
 * replaces cost every sampled allocation and free a lock and a line that
 * came from the L3 cache or the other core, half the profiler's own time
 * in the churn benchmark.)  A free gives its record back after the real
 * free, its line fetched meanwhile.
 *
 * Records are never returned to the arena: they stay in magazines, in the
 * depot, or in use, so their number is bounded by the most blocks ever
 * live at once plus what the magazines hold.  They are carved from chunks
 * linked on a list that the heap dump walks.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "heap/sampler.h"
#include "heap/header_records.h"
#include "heap/sampler.h"
#include "core/spinlock.h"

#define MAG_SIZE MPROF_MAG_SIZE
#define CHUNK_RECS 512 /* records carved at once: 16 KiB */

struct rec_chunk {
    struct rec_chunk *next;
    struct mprof_live_rec rec[CHUNK_RECS];
};

__thread struct mprof_rec_cache *mprof_tls_rec_cache __attribute__((tls_model("initial-exec")));
static pthread_key_t rec_key;
static int rec_key_ok;

/* The depot.  Its lock is a leaf: nothing else is taken under it. */
static struct {
    spinlock lock;
    struct mprof_rec_mag *full, *empty;  /* full: holding records (not always 30) */
    struct mprof_rec_cache *free_caches; /* of exited threads */
    struct rec_chunk *carving;     /* records not yet handed out: rec[carved..] */
    size_t carved;
} depot;

/* Every chunk, newest first: published with a release store, never freed. */
static _Atomic(struct rec_chunk *) all_chunks;

/* Under the depot lock. */
static struct mprof_rec_mag *empty_mag_locked(void)
{
    struct mprof_rec_mag *m = depot.empty;
    if (m != NULL) {
        depot.empty = m->next;
        return m;
    }
    m = mprof_arena_alloc(sizeof *m);
    if (m != NULL)
        m->n = 0;
    return m;
}

/* Fills m (empty) with fresh records.  Under the depot lock. */
static void carve_locked(struct mprof_rec_mag *m)
{
    while (m->n < MAG_SIZE) {
        if (depot.carving == NULL || depot.carved == CHUNK_RECS) {
            struct rec_chunk *c = mprof_arena_alloc(sizeof *c); /* zero: every addr 0 */
            if (c == NULL)
                return;
            c->next = atomic_load_explicit(&all_chunks, memory_order_relaxed);
            atomic_store_explicit(&all_chunks, c, memory_order_release);
            depot.carving = c;
            depot.carved = 0;
        }
        m->r[m->n++] = &depot.carving->rec[depot.carved++];
    }
}

/* Thread exit: the magazines go to the depot, the cache to its free list. */
static void cache_release(void *arg)
{
    struct mprof_rec_cache *c = arg;
    mprof_tls_rec_cache = NULL;
    spin_lock(&depot.lock);
    struct mprof_rec_mag *mags[2] = {c->cur, c->prev};
    for (int i = 0; i < 2; i++) {
        struct mprof_rec_mag **list = mags[i]->n > 0 ? &depot.full : &depot.empty;
        mags[i]->next = *list;
        *list = mags[i];
    }
    c->next_free = depot.free_caches;
    depot.free_caches = c;
    spin_unlock(&depot.lock);
}

static struct mprof_rec_cache *cache_new(void)
{
    spin_lock(&depot.lock);
    struct mprof_rec_cache *c = depot.free_caches;
    if (c != NULL)
        depot.free_caches = c->next_free; /* its magazines went to the depot */
    else
        c = mprof_arena_alloc(sizeof *c);
    if (c != NULL) {
        c->cur = empty_mag_locked();
        c->prev = empty_mag_locked();
        if (c->cur == NULL || c->prev == NULL) {
            /* Out of memory: give back what was taken. */
            if (c->cur != NULL) {
                c->cur->next = depot.empty;
                depot.empty = c->cur;
            }
            c->next_free = depot.free_caches;
            depot.free_caches = c;
            c = NULL;
        }
    }
    spin_unlock(&depot.lock);
    if (c == NULL)
        return NULL;
    /* Without the key the cache is simply never given back. */
    if (rec_key_ok)
        (void)pthread_setspecific(rec_key, c);
    mprof_tls_rec_cache = c;
    return c;
}

struct mprof_live_rec *mprof_rec_get_slow(void)
{
    struct mprof_rec_cache *c = mprof_tls_rec_cache;
    if (MPROF_UNLIKELY(c == NULL) && (c = cache_new()) == NULL)
        return NULL;
    if (MPROF_UNLIKELY(c->cur->n == 0)) {
        struct mprof_rec_mag *t = c->cur;
        c->cur = c->prev;
        c->prev = t;
        if (c->cur->n == 0) {
            /* Both empty: trade one for a full magazine, or carve. */
            spin_lock(&depot.lock);
            struct mprof_rec_mag *full = depot.full;
            if (full != NULL) {
                depot.full = full->next;
                c->cur->next = depot.empty;
                depot.empty = c->cur;
                c->cur = full;
            } else {
                carve_locked(c->cur);
            }
            spin_unlock(&depot.lock);
            if (c->cur->n == 0)
                return NULL;
        }
    }
    return c->cur->r[--c->cur->n];
}

void mprof_rec_put_slow(struct mprof_live_rec *r)
{
    struct mprof_rec_cache *c = mprof_tls_rec_cache;
    if (MPROF_UNLIKELY(c == NULL) && (c = cache_new()) == NULL)
        return; /* out of memory: the record is lost, its addr already 0 */
    if (MPROF_UNLIKELY(c->cur->n == MAG_SIZE)) {
        struct mprof_rec_mag *t = c->cur;
        c->cur = c->prev;
        c->prev = t;
        if (c->cur->n == MAG_SIZE) {
            /* Both full: one goes to the depot for an empty one. */
            spin_lock(&depot.lock);
            struct mprof_rec_mag *empty = empty_mag_locked();
            if (empty != NULL) {
                c->cur->next = depot.full;
                depot.full = c->cur;
                c->cur = empty;
            }
            spin_unlock(&depot.lock);
            if (empty == NULL)
                return;
        }
    }
    c->cur->r[c->cur->n++] = r;
}

int mprof_rec_foreach(void (*fn)(const struct mprof_live_rec *r, void *arg), void *arg)
{
    int n = 0;
    for (struct rec_chunk *c = atomic_load_explicit(&all_chunks, memory_order_acquire); c != NULL;
         c = c->next) {
        for (size_t i = 0; i < CHUNK_RECS; i++) {
            /* The fields were written before addr (release): a record seen
             * in use is whole, or a newer block's whole record. */
            if (atomic_load_explicit(&c->rec[i].addr, memory_order_acquire) == 0)
                continue;
            n++;
            if (fn != NULL)
                fn(&c->rec[i], arg);
        }
    }
    return n;
}

/*
 * A forked child's repair (sampler.h, "Fork"), on its one thread.  A depot
 * lock held by a lost thread may have left its lists half changed: the
 * depot starts empty (its magazines and caches are leaked, the records in
 * them unused; records in use stay listed, in their chunks).  The
 * magazines of the lost threads are never given back either.
 */
void mprof_rec_repair(uint32_t me, struct mprof_fork_repair *r)
{
    uint32_t owner = spin_owner(&depot.lock);
    if (owner == me) {
        r->held_here++;
    } else if (owner != 0) {
        depot.full = depot.empty = NULL;
        depot.free_caches = NULL;
        depot.carving = NULL;
        depot.carved = 0;
        spin_reset(&depot.lock);
        r->lost_updates++;
    }
}

void mprof_rec_init(void)
{
    if (pthread_key_create(&rec_key, cache_release) == 0)
        rec_key_ok = 1;
}
