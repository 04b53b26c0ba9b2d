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

/*
 * The allocator we forward to.  Until the first call resolves it with dlsym,
 * every pointer leads to a resolver of ours (resolving_*), which resolves
 * and then forwards, or serves the boot pool while dlsym itself allocates.
 * So the wrappers never ask whether resolution has happened: their common
 * path is one counter check and a tail call.  Each pointer is written once,
 * with a relaxed atomic store, and read with relaxed atomic loads (plain
 * moves on x86-64).
 */
typedef void *malloc_fn(size_t);
typedef void *calloc_fn(size_t, size_t);
typedef void *realloc_fn(void *, size_t);
typedef void free_fn(void *);
typedef int posix_memalign_fn(void **, size_t, size_t);
typedef void *aligned_fn(size_t, size_t); /* aligned_alloc and memalign */
typedef size_t usable_size_fn(void *);

static void *resolving_malloc(size_t size);
static void *resolving_calloc(size_t n, size_t m);
static void *resolving_realloc(void *p, size_t size);
static void resolving_free(void *p);
static int resolving_posix_memalign(void **out, size_t align, size_t size);
static void *resolving_aligned_alloc(size_t align, size_t size);
static void *resolving_memalign(size_t align, size_t size);
static void *resolving_valloc(size_t size);
static void *resolving_pvalloc(size_t size);

static struct {
    _Atomic(malloc_fn *) malloc;
    _Atomic(calloc_fn *) calloc;
    _Atomic(realloc_fn *) realloc;
    _Atomic(free_fn *) free;
    _Atomic(posix_memalign_fn *) posix_memalign;
    _Atomic(aligned_fn *) aligned_alloc;
    _Atomic(aligned_fn *) memalign;
    _Atomic(malloc_fn *) valloc;
    _Atomic(malloc_fn *) pvalloc;
    _Atomic(usable_size_fn *) malloc_usable_size; /* NULL until resolved */
} real = {
    resolving_malloc,         resolving_calloc,   resolving_realloc, resolving_free,
    resolving_posix_memalign, resolving_aligned_alloc, resolving_memalign,
    resolving_valloc,         resolving_pvalloc,  NULL,
};

#define REAL(fn) atomic_load_explicit(&real.fn, memory_order_relaxed)

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

static inline int is_boot_block(const void *p)
{
    /* One unsigned compare covers both ends. */
    return (uintptr_t)p - (uintptr_t)boot_pool < BOOT_POOL_SIZE;
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
            /* free() tells boot blocks apart only on its slow path, so
             * their filter bits must stay set (mprof_live_pin). */
            if (mprof_live_pin(boot_pool + start) != 0) {
                errno = ENOMEM;
                return NULL;
            }
            return boot_pool + start;
        }
    }
}

static size_t boot_size(const void *p) { return ((const struct boot_header *)p)[-1].size; }

void *mprof_boot_alloc(size_t size, size_t align) { return boot_alloc(size, align); }

/* The next definition after ours; loaded with dlopen, libmprof is not
 * ahead of the C library and RTLD_NEXT finds nothing: then the global
 * scope's first, the C library's (never ours: we are not ahead of it). */
static void *next_allocator_symbol(const char *name)
{
    void *sym = dlsym(RTLD_NEXT, name);
    if (sym == NULL)
        sym = dlsym(RTLD_DEFAULT, name);
    return sym != NULL && mprof_symbol_is_ours(sym) ? NULL : sym;
}

#define RESOLVE(name)                                                                              \
    do {                                                                                           \
        void *sym = next_allocator_symbol(#name);                                                  \
        if (sym != NULL)                                                                           \
            atomic_store_explicit(&real.name, (__typeof__(REAL(name)))sym, memory_order_relaxed);  \
    } while (0)

/* Non-zero once the real allocator is known; 0 while dlsym is still looking
 * for it on this thread (its own allocations then come from the boot pool). */
static int resolve_real_allocator(void)
{
    int expected = 0;
    if (!atomic_compare_exchange_strong(&resolve_state, &expected, 1))
        return atomic_load(&resolve_state) == 2; /* done, or dlsym -> calloc */
    RESOLVE(malloc);
    RESOLVE(calloc);
    RESOLVE(realloc);
    RESOLVE(free);
    RESOLVE(posix_memalign);
    RESOLVE(aligned_alloc);
    RESOLVE(memalign);
    RESOLVE(valloc);
    RESOLVE(pvalloc);
    RESOLVE(malloc_usable_size);
    if (REAL(malloc) == resolving_malloc || REAL(calloc) == resolving_calloc ||
        REAL(realloc) == resolving_realloc || REAL(free) == resolving_free) {
        /* Nothing to forward to: every request would fail.  Cannot happen
         * with a dynamically linked libc; say so rather than crash later. */
        static const char msg[] = "mprof: cannot find the real malloc; aborting\n";
        (void)!write(2, msg, sizeof msg - 1);
        abort();
    }
    atomic_store(&resolve_state, 2);
    return 1;
}

/* The resolvers: first calls only.  An entry point a libc lacks keeps its
 * resolver, which then fails the way a missing allocator would. */
static void *resolving_malloc(size_t size)
{
    if (!resolve_real_allocator())
        return boot_alloc(size, 16);
    return REAL(malloc)(size);
}

static void *resolving_calloc(size_t n, size_t m)
{
    size_t size;
    if (!resolve_real_allocator()) {
        if (__builtin_mul_overflow(n, m, &size)) {
            errno = ENOMEM;
            return NULL;
        }
        return boot_alloc(size, 16);
    }
    return REAL(calloc)(n, m);
}

static void *resolving_realloc(void *p, size_t size)
{
    if (!resolve_real_allocator()) {
        if (p == NULL)
            return boot_alloc(size, 16);
        errno = ENOMEM; /* only boot blocks exist yet, and realloc() moves those */
        return NULL;
    }
    if (REAL(realloc) == resolving_realloc) {
        errno = ENOMEM;
        return NULL;
    }
    return REAL(realloc)(p, size);
}

static void resolving_free(void *p)
{
    if (resolve_real_allocator() && REAL(free) != resolving_free)
        REAL(free)(p);
}

static int resolving_posix_memalign(void **out, size_t align, size_t size)
{
    if (!resolve_real_allocator()) {
        if (align < sizeof(void *) || (align & (align - 1)) != 0)
            return EINVAL;
        void *p = boot_alloc(size, align);
        if (p == NULL)
            return ENOMEM;
        *out = p;
        return 0;
    }
    if (REAL(posix_memalign) == resolving_posix_memalign)
        return ENOMEM;
    return REAL(posix_memalign)(out, align, size);
}

#define RESOLVING_ALIGNED(name, boot_align, boot_size_expr, call_args, ...)                        \
    static void *resolving_##name(__VA_ARGS__)                                                     \
    {                                                                                              \
        if (!resolve_real_allocator())                                                             \
            return boot_alloc(boot_size_expr, boot_align);                                         \
        if (REAL(name) == resolving_##name) {                                                      \
            errno = ENOMEM;                                                                        \
            return NULL;                                                                           \
        }                                                                                          \
        return REAL(name) call_args;                                                               \
    }
RESOLVING_ALIGNED(aligned_alloc, align, size, (align, size), size_t align, size_t size)
RESOLVING_ALIGNED(memalign, align, size, (align, size), size_t align, size_t size)
RESOLVING_ALIGNED(valloc, 4096, size, (size), size_t size)
RESOLVING_ALIGNED(pvalloc, 4096, (size + 4095) & ~(size_t)4095, (size), size_t size)

/* ------------------------------------------------------ wrappers */

/*
 * The common path of every allocation is mprof_sample_due (a subtraction
 * on a thread-local counter) and a tail call of the real function, with no
 * stack frame of ours (this file is built without frame pointers).  The
 * rare allocation due a sample leaves through one of these out-of-line
 * functions, which sit in the entry section with the wrappers so that the
 * recorded stack still starts at the caller.
 */
static inline __attribute__((always_inline)) void *sampled(void *p, size_t size)
{
    /* The stack walk starts in the entry point this is inlined into, not
     * three calls deeper in the sampler. */
    struct mprof_unwind_regs regs;
    MPROF_READ_REGS(regs);
    mprof_sample_alloc(p, size, &regs);
    return p;
}

static void *MPROF_ENTRY_TEXT malloc_sampled(size_t size)
{
    return sampled(REAL(malloc)(size), size);
}

EXPORT void *MPROF_ENTRY_TEXT malloc(size_t size)
{
    if (MPROF_UNLIKELY(mprof_sample_due(size)))
        return malloc_sampled(size);
    return REAL(malloc)(size);
}

static void *MPROF_ENTRY_TEXT calloc_sampled(size_t n, size_t m, size_t size)
{
    return sampled(REAL(calloc)(n, m), size);
}

EXPORT void *MPROF_ENTRY_TEXT calloc(size_t n, size_t m)
{
    size_t size;
    /* On overflow the real calloc fails with ENOMEM; nothing to sample. */
    if (!__builtin_mul_overflow(n, m, &size) && MPROF_UNLIKELY(mprof_sample_due(size)))
        return calloc_sampled(n, m, size);
    return REAL(calloc)(n, m);
}

/* Frees whose filter bit is set: a sampled block, a block that shares its
 * filter slot with one, NULL (whose slot may be set), or a boot block (whose
 * slot always is: boot_alloc pins it). */
static void MPROF_ENTRY_TEXT free_slow(void *p)
{
    if (p == NULL || is_boot_block(p))
        return;
    mprof_sample_free(p);
    REAL(free)(p);
}

EXPORT void MPROF_ENTRY_TEXT free(void *p)
{
    /* NULL needs no test of its own: the real free ignores it, and if its
     * filter slot happens to be set, free_slow does.  Nor do boot blocks:
     * their slots are always set. */
    if (MPROF_UNLIKELY(mprof_maybe_sampled(p)))
        return free_slow(p);
    REAL(free)(p);
}

EXPORT void *MPROF_ENTRY_TEXT realloc(void *p, size_t size)
{
    if (MPROF_UNLIKELY(p != NULL && is_boot_block(p))) {
        /* A boot block cannot be handed to the real realloc: move it. */
        void *q = malloc(size);
        if (q != NULL) {
            size_t old = boot_size(p);
            memcpy(q, p, old < size ? old : size);
        }
        return q;
    }
    if (p == NULL) {
        void *q = REAL(realloc)(NULL, size);
        return mprof_sample_due(size) ? sampled(q, size) : q;
    }

    /* The old block leaves the live table before the real realloc, since
     * once freed its address may be handed to another thread at once.  If
     * realloc fails the block is still the caller's and is put back. */
    mprof_live_block old;
    int was_sampled = mprof_maybe_sampled(p) && mprof_live_take(p, &old);
    void *q = REAL(realloc)(p, size);
    if (q == NULL && size != 0) {
        if (was_sampled)
            mprof_live_restore(&old);
        return NULL;
    }
    if (was_sampled)
        mprof_account_free(&old, 0);
    if (q == NULL)
        return NULL; /* realloc(p, 0) freed p */
    return mprof_sample_due(size) ? sampled(q, size) : q;
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
    int rc = REAL(posix_memalign)(out, align, size);
    if (rc == 0 && mprof_sample_due(size))
        sampled(*out, size);
    return rc;
}

EXPORT void *MPROF_ENTRY_TEXT aligned_alloc(size_t align, size_t size)
{
    void *p = REAL(aligned_alloc)(align, size);
    return mprof_sample_due(size) ? sampled(p, size) : p;
}

EXPORT void *MPROF_ENTRY_TEXT memalign(size_t align, size_t size)
{
    void *p = REAL(memalign)(align, size);
    return mprof_sample_due(size) ? sampled(p, size) : p;
}

EXPORT void *MPROF_ENTRY_TEXT valloc(size_t size)
{
    void *p = REAL(valloc)(size);
    return mprof_sample_due(size) ? sampled(p, size) : p;
}

EXPORT void *MPROF_ENTRY_TEXT pvalloc(size_t size)
{
    void *p = REAL(pvalloc)(size);
    return mprof_sample_due(size) ? sampled(p, size) : p;
}

EXPORT size_t malloc_usable_size(void *p)
{
    if (p == NULL)
        return 0;
    if (is_boot_block(p))
        return boot_size(p);
    usable_size_fn *real_usable_size = REAL(malloc_usable_size);
    if (real_usable_size == NULL && resolve_real_allocator())
        real_usable_size = REAL(malloc_usable_size);
    return real_usable_size != NULL ? real_usable_size(p) : 0;
}
