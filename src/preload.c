/*
 * The allocator interposer.
 *
 * libmprof.so defines malloc and friends; loaded with LD_PRELOAD (or linked
 * ahead of libc) these definitions win symbol resolution for the whole
 * process, including libc's own internal calls (strdup, fopen, ...) and
 * libstdc++'s operator new, which both call malloc through the PLT.  Each
 * wrapper calls the next definition in the search order (glibc's, or another
 * allocator's) found with dlsym(RTLD_NEXT), then lets the sampler look at
 * the result.  Semantics (alignment, errno, NULL and zero sizes) are
 * therefore exactly those of the real allocator; the wrappers add only the
 * accounting.
 *
 * Start-up: dlsym itself may call calloc/malloc before the real functions
 * are known.  Those few requests are served from a static pool and are
 * recognised by address in free/realloc/malloc_usable_size.
 */
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "sampler.h"

#define EXPORT __attribute__((visibility("default")))

struct real_allocator {
    void *(*malloc)(size_t);
    void *(*calloc)(size_t, size_t);
    void *(*realloc)(void *, size_t);
    void (*free)(void *);
    int (*posix_memalign)(void **, size_t, size_t);
    void *(*aligned_alloc)(size_t, size_t);
    void *(*memalign)(size_t, size_t);
    void *(*valloc)(size_t);
    void *(*pvalloc)(size_t);
    size_t (*malloc_usable_size)(void *);
};

static struct real_allocator real;

/* Pulls init.o (the constructor) into static links; see init.c. */
static const int *const keep_init_linked __attribute__((used)) = &mprof_init_anchor;
static _Atomic int resolve_state; /* 0: not yet, 1: in progress, 2: done */

/* ------------------------------------------------------ bootstrap pool */

#define BOOT_POOL_SIZE (256 * 1024)
static alignas(64) char boot_pool[BOOT_POOL_SIZE];
static _Atomic size_t boot_used;

struct boot_header {
    size_t size;
    size_t pad;
};

static int is_boot_block(const void *p)
{
    return (const char *)p >= boot_pool && (const char *)p < boot_pool + BOOT_POOL_SIZE;
}

static void *boot_alloc(size_t size, size_t align)
{
    if (align < 16)
        align = 16;
    /* The pool is never reused, so its memory is still zero: calloc is
     * served by the same path. */
    for (;;) {
        size_t old = atomic_load(&boot_used);
        /* Align the address, not the offset: the pool itself is only
         * 64-byte aligned. */
        uintptr_t base = (uintptr_t)boot_pool;
        size_t start =
            (size_t)(((base + old + sizeof(struct boot_header) + align - 1) & ~(uintptr_t)(align - 1)) -
                     base);
        size_t end = start + size;
        if (end > BOOT_POOL_SIZE || end < start) {
            errno = ENOMEM;
            return NULL;
        }
        if (atomic_compare_exchange_weak(&boot_used, &old, end)) {
            ((struct boot_header *)(boot_pool + start))[-1].size = size;
            return boot_pool + start;
        }
    }
}

static size_t boot_size(const void *p) { return ((const struct boot_header *)p)[-1].size; }

static void resolve_real_allocator(void)
{
    int expected = 0;
    if (!atomic_compare_exchange_strong(&resolve_state, &expected, 1))
        return; /* done, or in progress on this thread (dlsym -> calloc) */
    struct real_allocator r;
    r.malloc = dlsym(RTLD_NEXT, "malloc");
    r.calloc = dlsym(RTLD_NEXT, "calloc");
    r.realloc = dlsym(RTLD_NEXT, "realloc");
    r.free = dlsym(RTLD_NEXT, "free");
    r.posix_memalign = dlsym(RTLD_NEXT, "posix_memalign");
    r.aligned_alloc = dlsym(RTLD_NEXT, "aligned_alloc");
    r.memalign = dlsym(RTLD_NEXT, "memalign");
    r.valloc = dlsym(RTLD_NEXT, "valloc");
    r.pvalloc = dlsym(RTLD_NEXT, "pvalloc");
    r.malloc_usable_size = dlsym(RTLD_NEXT, "malloc_usable_size");
    if (r.malloc == NULL || r.calloc == NULL || r.realloc == NULL || r.free == NULL) {
        /* Nothing to forward to: every request would fail.  Cannot happen
         * with a dynamically linked libc; say so rather than crash later. */
        static const char msg[] = "mprof: cannot find the real malloc; aborting\n";
        (void)!write(2, msg, sizeof msg - 1);
        abort();
    }
    real = r;
    atomic_store(&resolve_state, 2);
}

static inline int ensure_real(void)
{
    if (MPROF_LIKELY(atomic_load_explicit(&resolve_state, memory_order_acquire) == 2))
        return 1;
    resolve_real_allocator();
    return atomic_load_explicit(&resolve_state, memory_order_acquire) == 2;
}

/* ------------------------------------------------------ wrappers */

static inline __attribute__((always_inline)) void *after_alloc(void *p, size_t size)
{
    if (mprof_sample_due(size))
        mprof_sample_alloc(p, size);
    return p;
}

EXPORT void *MPROF_ENTRY_TEXT malloc(size_t size)
{
    if (MPROF_UNLIKELY(!ensure_real()))
        return boot_alloc(size, 16);
    return after_alloc(real.malloc(size), size);
}

EXPORT void *MPROF_ENTRY_TEXT calloc(size_t n, size_t m)
{
    size_t size;
    if (MPROF_UNLIKELY(!ensure_real())) {
        if (__builtin_mul_overflow(n, m, &size)) {
            errno = ENOMEM;
            return NULL;
        }
        return boot_alloc(size, 16);
    }
    void *p = real.calloc(n, m);
    if (__builtin_mul_overflow(n, m, &size))
        return p; /* the real calloc failed with ENOMEM */
    return after_alloc(p, size);
}

EXPORT void MPROF_ENTRY_TEXT free(void *p)
{
    if (p == NULL || MPROF_UNLIKELY(is_boot_block(p)))
        return;
    if (MPROF_UNLIKELY(mprof_maybe_sampled(p)))
        mprof_sample_free(p);
    if (MPROF_UNLIKELY(!ensure_real()))
        return;
    real.free(p);
}

EXPORT void *MPROF_ENTRY_TEXT realloc(void *p, size_t size)
{
    if (MPROF_UNLIKELY(!ensure_real() || (p != NULL && is_boot_block(p)))) {
        /* A boot block cannot be handed to the real realloc: move it. */
        void *q = ensure_real() ? malloc(size) : boot_alloc(size, 16);
        if (q != NULL && p != NULL) {
            size_t old = boot_size(p);
            memcpy(q, p, old < size ? old : size);
        }
        return q;
    }
    if (p == NULL)
        return after_alloc(real.realloc(NULL, size), size);

    /* The old block leaves the live table before the real realloc, since
     * once freed its address may be handed to another thread at once.  If
     * realloc fails the block is still the caller's and is put back. */
    mprof_live_block old;
    int was_sampled = mprof_maybe_sampled(p) && mprof_live_take(p, &old);
    void *q = real.realloc(p, size);
    if (q == NULL && size != 0) {
        if (was_sampled)
            mprof_live_restore(&old);
        return NULL;
    }
    if (was_sampled)
        mprof_account_free(&old, 0);
    if (q == NULL)
        return NULL; /* realloc(p, 0) freed p */
    return after_alloc(q, size);
}

EXPORT void *MPROF_ENTRY_TEXT reallocarray(void *p, size_t n, size_t m)
{
    size_t size;
    if (__builtin_mul_overflow(n, m, &size)) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(p, size);
}

EXPORT int MPROF_ENTRY_TEXT posix_memalign(void **out, size_t align, size_t size)
{
    if (MPROF_UNLIKELY(!ensure_real())) {
        if (align < sizeof(void *) || (align & (align - 1)) != 0)
            return EINVAL;
        void *p = boot_alloc(size, align);
        if (p == NULL)
            return ENOMEM;
        *out = p;
        return 0;
    }
    int rc = real.posix_memalign(out, align, size);
    if (rc == 0)
        after_alloc(*out, size);
    return rc;
}

EXPORT void *MPROF_ENTRY_TEXT aligned_alloc(size_t align, size_t size)
{
    if (MPROF_UNLIKELY(!ensure_real()))
        return boot_alloc(size, align);
    return after_alloc(real.aligned_alloc(align, size), size);
}

EXPORT void *MPROF_ENTRY_TEXT memalign(size_t align, size_t size)
{
    if (MPROF_UNLIKELY(!ensure_real()))
        return boot_alloc(size, align);
    return after_alloc(real.memalign(align, size), size);
}

EXPORT void *MPROF_ENTRY_TEXT valloc(size_t size)
{
    if (MPROF_UNLIKELY(!ensure_real()))
        return boot_alloc(size, 4096);
    return after_alloc(real.valloc(size), size);
}

EXPORT void *MPROF_ENTRY_TEXT pvalloc(size_t size)
{
    if (MPROF_UNLIKELY(!ensure_real()))
        return boot_alloc((size + 4095) & ~(size_t)4095, 4096);
    return after_alloc(real.pvalloc(size), size);
}

EXPORT size_t malloc_usable_size(void *p)
{
    if (p == NULL)
        return 0;
    if (is_boot_block(p))
        return boot_size(p);
    if (!ensure_real() || real.malloc_usable_size == NULL)
        return 0;
    return real.malloc_usable_size(p);
}
