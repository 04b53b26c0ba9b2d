/*
 * The profiler's own memory.
 *
 * Buckets, live-sample tables, timer slots and ring buffers are allocated
 * while the host is inside malloc, or inside a signal handler, so they can
 * come neither from the host's malloc (recursion, and the profile would
 * count itself) nor from anything that takes a lock (fork and signals).
 * This arena is a lock-free bump allocator over 1 MiB chunks obtained with
 * mmap, which is async-signal-safe.  Memory is never returned to the system:
 * what it holds (buckets, table slots) is either permanent, as in Go's
 * persistentalloc, or recycled by its owner's free list.
 */
#include <errno.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "core/core.h"

#define CHUNK_SIZE ((size_t)1 << 20)
/* Hard cap on the profiler's own arena so that a pathological program (an
 * unbounded number of distinct stacks) cannot make the profiler eat the
 * machine.  Past it, new samples are dropped and counted instead. */
#define ARENA_CAP ((size_t)1 << 30)

struct chunk {
    _Atomic size_t used;
    size_t size;
};

static _Atomic(struct chunk *) current_chunk;
static _Atomic size_t mapped_bytes;

/*
 * Every chunk's range, for the sampled leak scan (heap/leak_scan.c), which
 * reads all writable memory but the profiler's own: the live table and the
 * records hold every sampled block's address.  Appended lock-free; a chunk
 * unmapped after a lost race is cleared.  The cap bounds the count: 1 GiB
 * of chunks of 1 MiB or more.
 */
#define MAX_CHUNKS (ARENA_CAP / CHUNK_SIZE)
static struct {
    _Atomic uintptr_t lo, hi;
} chunk_ranges[MAX_CHUNKS];
static _Atomic size_t nchunk_ranges;

static void remember_chunk(const struct chunk *c)
{
    size_t i = atomic_fetch_add(&nchunk_ranges, 1);
    if (i >= MAX_CHUNKS)
        return; /* cannot happen under the cap */
    atomic_store(&chunk_ranges[i].lo, (uintptr_t)c);
    atomic_store(&chunk_ranges[i].hi, (uintptr_t)c + c->size);
}

static void forget_chunk(const struct chunk *c)
{
    size_t n = atomic_load(&nchunk_ranges);
    for (size_t i = 0; i < n && i < MAX_CHUNKS; i++)
        if (atomic_load(&chunk_ranges[i].lo) == (uintptr_t)c) {
            atomic_store(&chunk_ranges[i].hi, 0);
            atomic_store(&chunk_ranges[i].lo, 0);
        }
}

size_t mprof_arena_ranges(uintptr_t *lo, uintptr_t *hi, size_t max)
{
    size_t n = atomic_load(&nchunk_ranges), k = 0;
    for (size_t i = 0; i < n && i < MAX_CHUNKS && k < max; i++) {
        uintptr_t a = atomic_load(&chunk_ranges[i].lo), z = atomic_load(&chunk_ranges[i].hi);
        if (a < z) {
            lo[k] = a;
            hi[k++] = z;
        }
    }
    return k;
}

static struct chunk *map_chunk(size_t need)
{
    size_t size = CHUNK_SIZE;
    while (size < need + sizeof(struct chunk))
        size <<= 1;
    if (atomic_fetch_add(&mapped_bytes, size) + size > ARENA_CAP) {
        atomic_fetch_sub(&mapped_bytes, size);
        return NULL;
    }
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        atomic_fetch_sub(&mapped_bytes, size);
        return NULL;
    }
    struct chunk *c = p;
    atomic_init(&c->used, (sizeof(struct chunk) + 63) & ~(size_t)63);
    c->size = size;
    remember_chunk(c);
    return c;
}

void *mprof_arena_alloc(size_t size)
{
    int saved_errno = errno;
    size = (size + 15) & ~(size_t)15;
    for (;;) {
        struct chunk *c = atomic_load_explicit(&current_chunk, memory_order_acquire);
        if (c != NULL) {
            size_t off = atomic_fetch_add_explicit(&c->used, size, memory_order_relaxed);
            if (off + size <= c->size)
                return (char *)c + off;
        }
        /* The chunk is exhausted (or there is none): map a new one and try
         * to install it.  Losing the race wastes one chunk's address space
         * but nothing is touched, so no memory. */
        struct chunk *fresh = map_chunk(size);
        if (fresh == NULL) {
            errno = saved_errno;
            return NULL;
        }
        if (size + 64 > CHUNK_SIZE / 2) {
            /* Big requests get a chunk of their own and leave the current
             * small-object chunk in place. */
            size_t off = atomic_fetch_add_explicit(&fresh->used, size, memory_order_relaxed);
            return (char *)fresh + off;
        }
        if (!atomic_compare_exchange_strong_explicit(&current_chunk, &c, fresh,
                                                     memory_order_acq_rel,
                                                     memory_order_acquire)) {
            atomic_fetch_sub(&mapped_bytes, fresh->size);
            forget_chunk(fresh);
            munmap(fresh, fresh->size);
        }
    }
}

size_t mprof_arena_mapped(void)
{
    return atomic_load_explicit(&mapped_bytes, memory_order_relaxed);
}
