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
#include <gnu/libc-version.h>
#include <malloc.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/options.h"
#include "core/os.h"
#include "unwind/fast_unwind.h"
#include "interpose/interpose.h"
#include "heap/sampler.h"

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

/* A program linked with libmprof.a pulls in preload.o for malloc; this
 * reference brings lifecycle.o, with the library's constructor and the
 * subsystem table (and through it every subsystem), along. */
static void (*const keep_lifecycle_linked)(void) __attribute__((used)) = mprof_lifecycle_start;
static _Atomic int resolve_state; /* 0: not yet, 1: in progress, 2: done */

/* ------------------------------------------------------ bootstrap pool */

#define BOOT_POOL_SIZE (256 * 1024)
static alignas(64) char boot_pool[BOOT_POOL_SIZE];
static _Atomic size_t boot_used;

struct boot_header {
    size_t size;
    uint64_t tag; /* a header tag: sends the block's frees to free_slow */
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
            ((struct boot_header *)(boot_pool + start))[-1].tag = mprof_header_tag(4, 0.0f);
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

/* The next definition after ours (core/os.h).  The calloc that dlsym may
 * make meanwhile comes back here with resolve_state 1 and is served from
 * the boot pool. */
#define RESOLVE(name)                                                                              \
    do {                                                                                           \
        void *sym = mprof_next_symbol(#name, NULL);                                                \
        if (sym != NULL)                                                                           \
            atomic_store_explicit(&real.name, (__typeof__(REAL(name)))sym, memory_order_relaxed);  \
    } while (0)

/* The object holding code address a (its link map, or load address), or
 * NULL.  _dl_find_object takes no lock and searches no symbol table: ten
 * dladdr calls cost 900,000 instructions at every process start. */
static const void *object_of(void *a)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35))
    struct dl_find_object fo;
    if (_dl_find_object(a, &fo) == 0)
        return fo.dlfo_link_map;
#endif
    Dl_info info;
    return dladdr(a, &info) ? info.dli_fbase : NULL;
}

/*
 * Header mode (see the wrappers below) needs the real allocator to be
 * glibc's, every entry point of it: only then does the word before a
 * block hold a chunk size.  So every entry point must lie in the C library
 * itself, the object of gnu_get_libc_version.  (Not "is it __libc_malloc":
 * tcmalloc defines __libc_malloc too, as an alias of its own malloc.)
 */
static void decide_header_mode(void)
{
    long headers = mprof_option_long(MPROF_OPT_HEADERS);
    const void *libc = object_of((void *)gnu_get_libc_version);
    int glibc = libc != NULL;
    void *const entries[] = {
        (void *)REAL(malloc),         (void *)REAL(calloc),        (void *)REAL(realloc),
        (void *)REAL(free),           (void *)REAL(posix_memalign), (void *)REAL(aligned_alloc),
        (void *)REAL(memalign),       (void *)REAL(valloc),        (void *)REAL(pvalloc),
        (void *)REAL(malloc_usable_size),
    };
    for (size_t i = 0; i < sizeof entries / sizeof *entries && glibc; i++)
        if (entries[i] == NULL || object_of(entries[i]) != libc)
            glibc = 0;
    atomic_store_explicit(&mprof_allocator_glibc, glibc, memory_order_relaxed);
    if (headers && glibc)
        atomic_store_explicit(&mprof_hot.header_mode, 1, memory_order_relaxed);
}

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
    decide_header_mode();
    atomic_store(&resolve_state, 2);
    return 1;
}

void mprof_allocator_resolve(void) { (void)resolve_real_allocator(); }

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
 * Two ways to find a sampled block at its free, chosen once, when the real
 * allocator is resolved, before any block is sampled:
 *
 *  - header mode, when the real allocator is glibc's: a sampled block
 *    carries a header (sampler.h) and a tag where a glibc block has its
 *    chunk size.  A free reads that word (the allocator reads its line
 *    next anyway) and tests one bit.  A sampled allocation asks the real
 *    allocator for MPROF_HEADER_SIZE more bytes (or its alignment more, for
 *    the memalign family) and hands out the address past the header.
 *  - table mode, for any other allocator (jemalloc or tcmalloc linked in,
 *    whose blocks' neighbours we cannot read safely), or with
 *    MPROF_HEADERS=0: blocks are as the allocator made them; sampled ones
 *    are remembered in the sampler's live table and found through its
 *    filter.
 *
 * The common path of every allocation is mprof_sample_due (a subtraction
 * on a thread-local counter) and a tail call of the real function, with no
 * stack frame of ours (this file is built without frame pointers).  The
 * rare allocation due a sample leaves through one of the out-of-line
 * functions below, which sit in the entry section with the wrappers so
 * that the recorded stack still starts at the caller.
 */
static inline int header_mode(void)
{
    return atomic_load_explicit(&mprof_hot.header_mode, memory_order_relaxed);
}

/* Table mode: records p (the real allocator's block) in the live table. */
static inline __attribute__((always_inline)) void *sampled(void *p, size_t size)
{
    /* The stack walk starts in the entry point this is inlined into, not
     * three calls deeper in the sampler. */
    struct mprof_unwind_regs regs;
    MPROF_READ_REGS(regs);
    mprof_sample_alloc(p, size, &regs);
    return p;
}

/* The real entry point a header-mode sample is allocated through. */
enum alloc_kind { ALLOC_MALLOC, ALLOC_CALLOC, ALLOC_ALIGNED };

static void *real_alloc(enum alloc_kind kind, size_t align, size_t size, int *err)
{
    *err = 0;
    switch (kind) {
    case ALLOC_MALLOC:
        return REAL(malloc)(size);
    case ALLOC_CALLOC:
        return REAL(calloc)(1, size);
    case ALLOC_ALIGNED:
        break;
    }
    void *q = NULL;
    *err = REAL(posix_memalign)(&q, align, size);
    return *err == 0 ? q : NULL;
}

/*
 * The size to ask the real allocator for: room for the header (offset
 * bytes) and no less than glibc's smallest block (24 usable bytes) past it,
 * so that malloc_usable_size is what it would be without the header.  The
 * caller has checked that size + offset does not overflow.
 */
#define GLIBC_MIN_USABLE 24
static inline size_t size_with_header(size_t size, size_t offset)
{
    return (size < GLIBC_MIN_USABLE ? GLIBC_MIN_USABLE : size) + offset;
}

/* Writes header h (from mprof_header_begin) before p, offset bytes into
 * the real block, and publishes the sample. */
static inline void put_header(char *p, size_t offset, struct mprof_block_header *h,
                              const uintptr_t *stack, int depth)
{
    h->tag |= (uint64_t)__builtin_ctzll(offset) << 4;
    *mprof_header_of(p) = *h;
    mprof_header_commit(h, p, stack, depth);
}

/*
 * A sampled allocation in header mode (the entry point already knows it is
 * due): size bytes for the caller at an offset of `offset` (a power of two
 * >= MPROF_HEADER_SIZE, a multiple of align) into the real block.  Falls
 * back to a block without header when the sampler declines.  *err: the
 * real posix_memalign's error, for the aligned kind.
 */
static inline __attribute__((always_inline)) void *
header_alloc(enum alloc_kind kind, size_t align, size_t offset, size_t size, int *err)
{
    struct mprof_unwind_regs regs;
    MPROF_READ_REGS(regs);
    struct mprof_block_header h;
    uintptr_t scratch[MPROF_MAX_STACK];
    int depth = 0;
    if (!mprof_header_begin(size, &regs, &h, scratch, &depth))
        return real_alloc(kind, align, size, err);
    if (size > SIZE_MAX - offset) {
        mprof_header_abort(&h);
        *err = ENOMEM;
        errno = ENOMEM;
        return NULL;
    }
    char *q = real_alloc(kind, align, size_with_header(size, offset), err);
    if (q == NULL) {
        int saved_errno = errno;
        mprof_header_abort(&h);
        errno = saved_errno;
        return NULL;
    }
    char *p = q + offset;
    put_header(p, offset, &h, scratch, depth);
    return p;
}

/* Header mode: the real block of p, which carries a header. */
static inline void *real_block(const void *p, uint64_t tag)
{
    return (char *)p - mprof_header_offset(tag);
}

static void *MPROF_ENTRY_TEXT malloc_sampled(size_t size)
{
    if (header_mode()) {
        int err;
        return header_alloc(ALLOC_MALLOC, 0, MPROF_HEADER_SIZE, size, &err);
    }
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
    if (header_mode()) {
        int err;
        return header_alloc(ALLOC_CALLOC, 0, MPROF_HEADER_SIZE, size, &err);
    }
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

/* Header mode: the free of p, which carries a header. */
static void MPROF_ENTRY_TEXT free_with_header(void *p)
{
    struct mprof_block_header h = *mprof_header_of(p);
    if (MPROF_UNLIKELY(!mprof_header_intact(h.tag))) {
        /* Overwritten by the program (a write before its block): not a
         * header we can trust.  The allocator will report the damage. */
        REAL(free)(p);
        return;
    }
    if (h.bucket != NULL)
        mprof_header_free_begin(&h);
    REAL(free)(real_block(p, h.tag));
    if (h.bucket != NULL)
        mprof_header_free_end(&h, p);
}

/* Frees that may concern a sampled block: in header mode, p carries a
 * header or is a boot block (whose word before it is tagged too); in table
 * mode, p's filter bit is set: a sampled block, a block that shares its
 * filter slot with one, NULL (whose slot may be set), or a boot block
 * (whose slot always is: boot_alloc pins it). */
static void MPROF_ENTRY_TEXT free_slow(void *p)
{
    if (p == NULL || is_boot_block(p))
        return;
    if (header_mode()) {
        free_with_header(p);
        return;
    }
    mprof_sample_free(p);
    REAL(free)(p);
}

EXPORT void MPROF_ENTRY_TEXT free(void *p)
{
    if (MPROF_LIKELY(header_mode())) {
        if (p != NULL && MPROF_UNLIKELY(mprof_has_header(p)))
            return free_slow(p);
        return REAL(free)(p);
    }
    /* NULL needs no test of its own: the real free ignores it, and if its
     * filter slot happens to be set, free_slow does.  Nor do boot blocks:
     * their slots are always set. */
    if (MPROF_UNLIKELY(mprof_maybe_sampled(p)))
        return free_slow(p);
    REAL(free)(p);
}

/* A boot block cannot be handed to the real realloc: move it. */
static void *MPROF_ENTRY_TEXT realloc_boot(void *p, size_t size)
{
    void *q = malloc(size);
    if (q != NULL) {
        size_t old = boot_size(p);
        memcpy(q, p, old < size ? old : size);
    }
    return q;
}

/*
 * Header mode, a realloc that is due a sample or whose block carries a
 * header.  The new block carries a header whenever the old one did, so that
 * the real realloc can move the two together (a header without a sample:
 * bucket NULL); it is a sample only if due.  An old block with a larger
 * offset (memalign family) goes through malloc and a copy.
 */
static void *MPROF_ENTRY_TEXT realloc_with_header(void *p, size_t size, int due)
{
    int had = mprof_has_header(p);
    struct mprof_block_header old = had ? *mprof_header_of(p) : (struct mprof_block_header){0};
    if (had && !mprof_header_intact(old.tag))
        return REAL(realloc)(p, size); /* see free_with_header */
    size_t old_offset = had ? mprof_header_offset(old.tag) : 0;
    if (had && old_offset != MPROF_HEADER_SIZE) {
        size_t room = malloc_usable_size(p);
        void *q = malloc(size);
        if (q == NULL)
            return NULL;
        memcpy(q, p, room < size ? room : size);
        free_with_header(p);
        return q;
    }

    struct mprof_unwind_regs regs;
    MPROF_READ_REGS(regs);
    struct mprof_block_header h = {0};
    uintptr_t scratch[MPROF_MAX_STACK];
    int depth = 0;
    int sample = due && mprof_header_begin(size, &regs, &h, scratch, &depth);
    if (!had && !sample)
        return REAL(realloc)(p, size);
    if (size > SIZE_MAX - MPROF_HEADER_SIZE) {
        if (sample)
            mprof_header_abort(&h);
        errno = ENOMEM;
        return NULL;
    }
    /* Bytes of the caller's data to keep in place: without a header the
     * data starts at the real block and must move up past the new one. */
    size_t keep = 0;
    if (!had) {
        keep = malloc_usable_size(p);
        keep = keep < size ? keep : size;
    }
    char *q = REAL(realloc)(had ? real_block(p, old.tag) : p,
                            size_with_header(size, MPROF_HEADER_SIZE));
    if (q == NULL) {
        int saved_errno = errno;
        if (sample)
            mprof_header_abort(&h);
        errno = saved_errno;
        return NULL; /* the old block is untouched */
    }
    char *np = q + MPROF_HEADER_SIZE;
    if (!had)
        memmove(np, q, keep);
    if (had && old.bucket != NULL) {
        mprof_header_free_begin(&old);
        mprof_header_free_end(&old, p);
    }
    if (sample)
        put_header(np, MPROF_HEADER_SIZE, &h, scratch, depth);
    else
        *mprof_header_of(np) = (struct mprof_block_header){
            .tag = mprof_header_tag(__builtin_ctzll(MPROF_HEADER_SIZE), 0.0f)};
    return np;
}

EXPORT void *MPROF_ENTRY_TEXT realloc(void *p, size_t size)
{
    if (MPROF_UNLIKELY(p != NULL && is_boot_block(p)))
        return realloc_boot(p, size);
    if (header_mode()) {
        if (p == NULL)
            return malloc(size); /* the same in every respect, errno included */
        if (size == 0) {
            free(p); /* glibc: realloc(p, 0) frees p and returns NULL */
            return NULL;
        }
        int due = mprof_sample_due(size);
        if (MPROF_UNLIKELY(due || mprof_has_header(p)))
            return realloc_with_header(p, size, due);
        return REAL(realloc)(p, size);
    }

    if (p == NULL) {
        void *q = REAL(realloc)(NULL, size);
        return mprof_sample_due(size) ? sampled(q, size) : q;
    }
    /* Table mode.  The old block leaves the live table before the real
     * realloc, since once freed its address may be handed to another
     * thread at once.  If realloc fails the block is still the caller's and
     * is put back. */
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

/*
 * The memalign family, sampled in header mode: the header takes as many
 * bytes as the alignment (at least MPROF_HEADER_SIZE), so the address past
 * it keeps the alignment.  The real posix_memalign does the work, having
 * checked the alignment as the entry point requires (aligned_alloc and
 * memalign round other alignments up to a power of two, as glibc does).
 */
static size_t aligned_offset(size_t align)
{
    size_t a = align <= MPROF_HEADER_SIZE ? MPROF_HEADER_SIZE : align;
    if (a & (a - 1))
        a = (size_t)1 << (64 - __builtin_clzll(a)); /* glibc rounds up too */
    return a;
}

/* align: at most MAX_SAMPLED_ALIGN (larger ones are left to the real
 * allocator, which fails them). */
#define MAX_SAMPLED_ALIGN ((size_t)1 << 40)
static void *MPROF_ENTRY_TEXT aligned_sampled(size_t align, size_t size, int *err)
{
    size_t offset = aligned_offset(align);
    return header_alloc(ALLOC_ALIGNED, offset, offset, size, err);
}

EXPORT int MPROF_ENTRY_TEXT posix_memalign(void **out, size_t align, size_t size)
{
    if (header_mode() && MPROF_UNLIKELY(mprof_sample_due(size))) {
        /* Only the valid alignments: others fail as glibc fails them. */
        if (align >= sizeof(void *) && (align & (align - 1)) == 0 && align <= MAX_SAMPLED_ALIGN) {
            int err;
            void *p = aligned_sampled(align, size, &err);
            if (p != NULL)
                *out = p;
            return p != NULL ? 0 : err;
        }
        return REAL(posix_memalign)(out, align, size);
    }
    int rc = REAL(posix_memalign)(out, align, size);
    if (rc == 0 && !header_mode() && mprof_sample_due(size))
        sampled(*out, size);
    return rc;
}

/* aligned_alloc, memalign, valloc and pvalloc in header mode, when due. */
static void *MPROF_ENTRY_TEXT aligned_entry_sampled(size_t align, size_t size)
{
    int err;
    void *p = aligned_sampled(align, size, &err);
    if (p == NULL)
        errno = err != 0 ? err : ENOMEM;
    return p;
}

/* aligned_alloc and memalign: the same but for the real function. */
static inline __attribute__((always_inline)) void *aligned_entry(aligned_fn *real, size_t align,
                                                                 size_t size)
{
    if (header_mode()) {
        if (MPROF_UNLIKELY(mprof_sample_due(size)) && align <= MAX_SAMPLED_ALIGN)
            return aligned_entry_sampled(align, size);
        return real(align, size);
    }
    void *p = real(align, size);
    return mprof_sample_due(size) ? sampled(p, size) : p;
}

EXPORT void *MPROF_ENTRY_TEXT aligned_alloc(size_t align, size_t size)
{
    return aligned_entry(REAL(aligned_alloc), align, size);
}

EXPORT void *MPROF_ENTRY_TEXT memalign(size_t align, size_t size)
{
    return aligned_entry(REAL(memalign), align, size);
}

EXPORT void *MPROF_ENTRY_TEXT valloc(size_t size)
{
    if (header_mode()) {
        if (MPROF_UNLIKELY(mprof_sample_due(size)))
            return aligned_entry_sampled((size_t)getpagesize(), size);
        return REAL(valloc)(size);
    }
    void *p = REAL(valloc)(size);
    return mprof_sample_due(size) ? sampled(p, size) : p;
}

EXPORT void *MPROF_ENTRY_TEXT pvalloc(size_t size)
{
    if (header_mode()) {
        size_t page = (size_t)getpagesize();
        /* pvalloc rounds the size up to whole pages, and gives one for 0. */
        if (MPROF_UNLIKELY(mprof_sample_due(size)) && size <= SIZE_MAX - page)
            return aligned_entry_sampled(page, size == 0 ? page : (size + page - 1) & ~(page - 1));
        return REAL(pvalloc)(size);
    }
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
    if (real_usable_size == NULL)
        return 0;
    if (header_mode() && mprof_has_header(p)) {
        uint64_t tag = mprof_header_of(p)->tag;
        if (mprof_header_intact(tag))
            return real_usable_size(real_block(p, tag)) - mprof_header_offset(tag);
    }
    return real_usable_size(p);
}

/*
 * dlclose: once a library is unloaded, other code may be loaded at its
 * addresses, and the unwinder's cached rules for them (and the walks
 * threads remember) would be the old library's.  They are forgotten after
 * every successful dlclose; rules for code still loaded are computed again
 * on their next use.
 */
typedef int dlclose_fn(void *);
static _Atomic(dlclose_fn *) real_dlclose;

EXPORT int dlclose(void *handle)
{
    dlclose_fn *fn = atomic_load_explicit(&real_dlclose, memory_order_relaxed);
    if (fn == NULL) {
        fn = (dlclose_fn *)mprof_next_symbol("dlclose", NULL);
        if (fn == NULL)
            return -1; /* cannot happen with a dynamically linked libc */
        atomic_store_explicit(&real_dlclose, fn, memory_order_relaxed);
    }
    int rc = fn(handle);
    if (rc == 0)
        mprof_unwind_forget();
    return rc;
}
