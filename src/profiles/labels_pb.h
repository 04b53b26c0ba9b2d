/*
 * The labels of a sample (heap/labels.h) as pprof string labels, for every
 * profile that carries them (heap, peak, lifetime, CPU, block, mutex).
 * Samples keep only the label set's id, an integer: the handler or the
 * sampler copies it from the thread without locking or allocating, and
 * the strings are looked up here, when the profile is written, in the
 * interned table, which only grows and whose sets never change (labels.h,
 * invariant 1), so an id read at any time stays good.
 *
 * Private to the profiles/ folder.
 */
#ifndef MPROF_PROFILES_LABELS_PB_H
#define MPROF_PROFILES_LABELS_PB_H

#include "encode/pprof.h"
#include "heap/labels.h"

/* Appends the pairs of label set id to out[n...] (out has room for
 * MPROF_LABEL_MAX more) and returns the new count; id 0 adds none. */
static inline int mprof_labels_append(mprof_label *out, int n, uint32_t id)
{
    const struct mprof_labelset *set = mprof_labelset_get(id);
    for (uint32_t i = 0; set != NULL && i < set->n; i++)
        out[n++] = (mprof_label){.key = set->key[i], .str = set->value[i]};
    return n;
}

#endif /* MPROF_PROFILES_LABELS_PB_H */
