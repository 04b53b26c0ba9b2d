/*
 * The live table (live_table.c): the address of every sampled block still
 * allocated in table mode (an allocator other than glibc's underneath, or
 * MPROF_HEADERS=0) and of every block reported through mprof_record_alloc,
 * with its bucket, size and weight, from its sample until its free takes
 * it out; and the filter that lets a free tell "certainly never sampled"
 * with one load (mprof_maybe_sampled, sampler.h).  It also defines
 * mprof_hot, whose one initialized field is the first filter.  Blocks that
 * carry a header are not here (header_records.h).  The locks of src/heap
 * and their order: sampler.h.
 *
 * Invariants:
 *
 *  1. The filter is a superset of the table: every address in the table
 *     has its slot's bit set in the current filter.  A removal clears the
 *     bit only when no other block of the same shard (in the shard's line
 *     or its overflow table) has that slot; so a clear bit means no block
 *     in the table hashes there, and a free that reads it clear may skip
 *     the table.
 *  2. An address' place follows from its 64-bit key (mprof_filter_key)
 *     alone: the top LIVE_SHARD_BITS bits name its shard, the next 32 are
 *     its table_key, whose top bits are its home in the shard's overflow
 *     table (as many as the table has) and, after the shard's bits, its
 *     filter slot (as many as the filter has).  So each filter slot
 *     belongs to one shard (MPROF_FILTER_MIN_LOG2 - LIVE_SHARD_BITS >= 2),
 *     and no entry moves when the filter grows.
 *  3. A shard's lock guards the shard: the two entries in its line, its
 *     overflow table and overflow_used, and the filter bits of its slots.
 *     A filter word may hold the slots of up to four shards, so bits are
 *     set and cleared with atomic OR and AND; frees read the words without
 *     a lock.
 *  4. The filter changes only under every shard lock (taken in index
 *     order): a grown filter (double the bits, at most
 *     2^MPROF_FILTER_MAX_LOG2) is built complete before its word is
 *     published with a release store.  An old filter is never unmapped and
 *     never written again: a free still reading it sees a superset of the
 *     blocks live when it was replaced, and any block sampled since was
 *     published, with the new filter, before the free could have its
 *     address.
 *  5. An overflow table uses open addressing with linear probing and
 *     backward-shift deletion (no tombstones), and is doubled before it is
 *     more than a quarter full.  All its entries that share a filter slot
 *     lie between the start of that slot's stretch of homes and the first
 *     empty entry after the stretch.  Tables a shard outgrew go to
 *     table_pool, by size, for the next shard that grows to that size.
 *  6. Pinned entries (bucket NULL, mprof_live_pin) hold their filter slot
 *     set for good: mprof_live_take passes them by, mprof_live_foreach
 *     skips them, the statistics do not count them, and every grown filter
 *     gets their bits.
 *  7. An address is in the table at most once: inserting an address that
 *     is already there (its free was never seen) replaces its entry.
 */
#ifndef MPROF_LIVE_TABLE_H
#define MPROF_LIVE_TABLE_H

#include <stdint.h>

#include "core/core.h"
#include "core/spinlock.h"
#include "heap/buckets.h"
#include "heap/sampler.h"

#define LIVE_SHARD_BITS 11
#define LIVE_SHARDS (1 << LIVE_SHARD_BITS)
_Static_assert(MPROF_FILTER_MIN_LOG2 - LIVE_SHARD_BITS >= 2,
               "each filter slot must belong to a single shard");

struct live_shard {
    /* Two blocks, laid out by field so that they and the lock fill one
     * line; addr 0 means empty. */
    uintptr_t addr[2];
    struct mprof_bucket *bucket[2]; /* NULL: pinned (see mprof_live_pin) */
    size_t size[2];
    float weight[2];
    spinlock lock;
    uint32_t overflow_used; /* blocks in the overflow table */
} __attribute__((aligned(64)));
_Static_assert(sizeof(struct live_shard) == 64, "a shard is one cache line");

MPROF_HIDDEN extern struct live_shard mprof_live_shards[LIVE_SHARDS];

/* Where an address goes: its shard and its table_key. */
struct live_place {
    struct live_shard *shard;
    uint32_t table_key;
};

static inline struct live_place live_place_of(uintptr_t addr)
{
    uint64_t key = mprof_filter_key(addr);
    struct live_place pl = {&mprof_live_shards[key >> (64 - LIVE_SHARD_BITS)],
                            (uint32_t)((key << LIVE_SHARD_BITS) >> 32)};
    return pl;
}

/* Asks for the shard's line ahead of the lock.  A prefetch never faults. */
static inline void live_prefetch(struct live_place pl) { prefetch_for_write(pl.shard); }

/* Enters blk (its table_key set here) at its place pl, setting its filter
 * bit, and grows the filter if the shard is over its share.  0, or -1 out
 * of memory (then blk is not in the table). */
MPROF_HIDDEN int mprof_live_insert(mprof_live_block *blk, struct live_place pl);

/* For the statistics: sampled blocks in the table (pinned ones not
 * counted), and the bytes of the grown filters, mapped on their own. */
MPROF_HIDDEN size_t mprof_live_table_count(void);
MPROF_HIDDEN size_t mprof_live_table_bytes(void);
/* Bytes of the arena's memory that spare overflow tables gave back to the
 * kernel: mapped, but not the profiler's memory any more. */
MPROF_HIDDEN size_t mprof_live_table_released(void);
/* A forked child's repair of the shards and the table pool that threads
 * fork left behind were updating (sampler.h, "Fork"). */
MPROF_HIDDEN void mprof_live_table_repair(uint32_t me, struct mprof_fork_repair *r);

#endif /* MPROF_LIVE_TABLE_H */
