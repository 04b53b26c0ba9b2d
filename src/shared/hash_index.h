/*
 * The one hash table of the cold paths, and the growable arrays it indexes.
 *
 * The records live in the caller's own array (strings, locations, samples,
 * functions, pcs...); the index maps a hash to a record's position there.
 * A slot holds the record's index + 1 (0 = empty) and 32 bits of its hash,
 * so that growing never recomputes hashes and most mismatches cost no
 * compare.  Open addressing, linear probing, at most half full.  Used by
 * the pprof builder, the heap dump writer and the command-line tool's
 * reports; header-only so that the library and the tool share it without
 * linking each other.
 *
 * Not for the hot paths: it calls calloc.  The sampler's bucket hash and
 * live table (heap/) are lock-free and arena-backed, for that reason.
 *
 * Invariants:
 *   1. cap is 0 or a power of two, and count * 2 <= cap after every find.
 *   2. A slot's idx1 is never changed once set: records are only added.
 */
#ifndef MPROF_SHARED_HASH_INDEX_H
#define MPROF_SHARED_HASH_INDEX_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct mprof_index_slot {
    uint32_t idx1; /* record index + 1; 0 = empty */
    uint32_t hash;
} mprof_index_slot;

typedef struct mprof_index {
    mprof_index_slot *slots;
    uint32_t cap; /* 0 or a power of two */
    uint32_t count;
} mprof_index;

static inline int mprof_index_grow(mprof_index *t)
{
    uint32_t ncap = t->cap ? t->cap * 2 : 64;
    if (ncap == 0)
        return -1;
    mprof_index_slot *n = (mprof_index_slot *)calloc(ncap, sizeof *n);
    if (n == NULL)
        return -1;
    for (uint32_t i = 0; i < t->cap; i++) {
        if (t->slots[i].idx1 == 0)
            continue;
        uint32_t j = t->slots[i].hash & (ncap - 1);
        while (n[j].idx1 != 0)
            j = (j + 1) & (ncap - 1);
        n[j] = t->slots[i];
    }
    free(t->slots);
    t->slots = n;
    t->cap = ncap;
    return 0;
}

/* Whether record idx of the caller's array (ctx) is key. */
typedef int (*mprof_index_eq_fn)(const void *ctx, uint32_t idx, const void *key);

/*
 * Looks key up.  Returns the slot holding it (idx1 != 0), or the empty slot
 * where it belongs; NULL when the table could not grow.  Inserting = adding
 * the record to the array, then mprof_index_added on the returned slot
 * (with no other find in between: a find may move every slot).
 */
static inline mprof_index_slot *mprof_index_find(mprof_index *t, uint32_t hash,
                                                 mprof_index_eq_fn eq, const void *ctx,
                                                 const void *key)
{
    if ((t->count + 1) * 2 > t->cap && mprof_index_grow(t) != 0)
        return NULL;
    uint32_t j = hash & (t->cap - 1);
    for (;;) {
        mprof_index_slot *s = &t->slots[j];
        if (s->idx1 == 0) {
            s->hash = hash;
            return s;
        }
        if (s->hash == hash && eq(ctx, s->idx1 - 1, key))
            return s;
        j = (j + 1) & (t->cap - 1);
    }
}

static inline void mprof_index_added(mprof_index *t, mprof_index_slot *s, uint32_t idx)
{
    s->idx1 = idx + 1;
    t->count++;
}

/* Empties the index, keeping its slots for the next round of adds. */
static inline void mprof_index_clear(mprof_index *t)
{
    if (t->slots != NULL)
        memset(t->slots, 0, (size_t)t->cap * sizeof *t->slots);
    t->count = 0;
}

static inline void mprof_index_free(mprof_index *t)
{
    free(t->slots);
    t->slots = NULL;
    t->cap = t->count = 0;
}

/*
 * Growable arrays, for need > *cap: returns a larger copy of arr (and
 * updates *cap), or NULL with arr untouched.  Doubling from 64, at most
 * UINT32_MAX elements.  Returning the pointer rather than storing through a
 * void ** keeps clear of type punning between pointer types.
 */
static inline void *mprof_grow_array(void *arr, uint32_t *cap, uint64_t need, size_t elem)
{
    uint64_t ncap = *cap ? *cap : 64;
    while (ncap < need)
        ncap *= 2;
    if (ncap > UINT32_MAX || ncap > SIZE_MAX / elem)
        return NULL;
    void *n = realloc(arr, (size_t)ncap * elem);
    if (n != NULL)
        *cap = (uint32_t)ncap;
    return n;
}

/* MPROF_GROW(array, cap, need): 0 once array has room for need elements,
 * -1 when out of memory (array unchanged).  cap is a uint32_t lvalue. */
#define MPROF_GROW(arr, cap, need)                                                        \
    __extension__({                                                                       \
        int grow_rc_ = 0;                                                                 \
        if ((uint64_t)(need) > (cap)) {                                                   \
            __typeof__(arr) grown_ =                                                      \
                (__typeof__(arr))mprof_grow_array((arr), &(cap), (need), sizeof *(arr)); \
            if (grown_ != NULL)                                                           \
                (arr) = grown_;                                                           \
            else                                                                          \
                grow_rc_ = -1;                                                            \
        }                                                                                 \
        grow_rc_;                                                                         \
    })

#endif
