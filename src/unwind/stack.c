/*
 * Stack capture.
 *
 * Stacks are walked by DWARF CFI rather than by following frame pointers:
 * our own caching unwinder (fast_unwind.c) for the frames it models, and
 * libgcc's _Unwind_Backtrace for the rest and as the reference it is
 * tested against.  Not frame pointers, because Debian's libc and libstdc++, and
 * most user code built with -O2, have no frame pointers, and a frame-pointer
 * walk through them silently skips callers or stops.  Every x86-64 object
 * carries .eh_frame, so CFI is always there.
 *
 * The classic danger of CFI unwinding inside malloc or a signal handler is
 * the lookup of the unwind tables: older unwinders call dl_iterate_phdr,
 * which takes the dynamic loader's lock (deadlock if the interrupted thread
 * is inside dlopen) and may allocate.  With glibc >= 2.35, libgcc finds the
 * tables through _dl_find_object, which is lock-free and async-signal-safe,
 * and the unwinder itself never allocates.  libmprof is linked against
 * libgcc_s directly so that glibc's backtrace() lazy dlopen of libgcc_s,
 * which allocates, never happens in a hot path.
 */
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <ucontext.h>
#include <unwind.h>

#include "unwind/unwind.h"
#include "unwind/fast_unwind.h"

/* Bounds of the section holding every mprof function that can be on the
 * stack between the user's code and the unwinder (malloc wrappers, the
 * sampler, the signal handler).  The linker defines these for any section
 * whose name is a valid C identifier. */
extern const char __start_mprof_entry_text[] __attribute__((weak));
extern const char __stop_mprof_entry_text[] __attribute__((weak));

/*
 * Allocator entry points outside mprof that call our malloc: libstdc++'s
 * operator new family.  Frames inside them are dropped from the top of the
 * stack so that `new T` is charged to the line that wrote it.  Ranges are
 * filled once at start-up and only read afterwards.
 */
#define MAX_SKIP_RANGES 32
struct pc_range {
    uintptr_t start, end;
};
static struct pc_range skip_ranges[MAX_SKIP_RANGES];
static _Atomic int skip_range_count;

static const char *const allocator_entry_symbols[] = {
    "_Znwm", "_Znam", "_ZnwmRKSt9nothrow_t", "_ZnamRKSt9nothrow_t",
    "_ZnwmSt11align_val_t", "_ZnamSt11align_val_t",
    "_ZnwmSt11align_val_tRKSt9nothrow_t", "_ZnamSt11align_val_tRKSt9nothrow_t",
};
/* strdup and friends are deliberately absent: they are callers a user wants
 * to see ("who strdup'ed this"), whereas operator new only forwards. */

/* The hull of the ranges, so that most addresses are ruled out at once. */
static uintptr_t skip_hull_lo = UINTPTR_MAX, skip_hull_hi;

static int in_allocator_entry(uintptr_t pc)
{
    if (pc < skip_hull_lo || pc >= skip_hull_hi)
        return 0;
    int n = atomic_load_explicit(&skip_range_count, memory_order_acquire);
    for (int i = 0; i < n; i++)
        if (pc >= skip_ranges[i].start && pc < skip_ranges[i].end)
            return 1;
    return 0;
}

static inline int in_entry_text(uintptr_t pc)
{
    return __start_mprof_entry_text != NULL && pc >= (uintptr_t)__start_mprof_entry_text &&
           pc < (uintptr_t)__stop_mprof_entry_text;
}

static int in_skip_ranges(uintptr_t pc) { return in_entry_text(pc) || in_allocator_entry(pc); }

static void add_skip_symbol(const char *name)
{
    void *addr = dlsym(RTLD_DEFAULT, name);
    if (addr == NULL)
        return;
    Dl_info info;
    const ElfW(Sym) *sym = NULL;
    if (dladdr1(addr, &info, (void **)&sym, RTLD_DL_SYMENT) == 0 || sym == NULL ||
        sym->st_size == 0)
        return;
    int n = atomic_load_explicit(&skip_range_count, memory_order_relaxed);
    if (n >= MAX_SKIP_RANGES)
        return;
    skip_ranges[n].start = (uintptr_t)addr;
    skip_ranges[n].end = (uintptr_t)addr + sym->st_size;
    if (skip_ranges[n].start < skip_hull_lo)
        skip_hull_lo = skip_ranges[n].start;
    if (skip_ranges[n].end > skip_hull_hi)
        skip_hull_hi = skip_ranges[n].end;
    atomic_store_explicit(&skip_range_count, n + 1, memory_order_release);
}

static void unwind_warm_up(void);
static void memo_init(void);

void mprof_stack_init(void)
{
    mprof_guard_enter();
    memo_init();
    for (size_t i = 0; i < sizeof allocator_entry_symbols / sizeof *allocator_entry_symbols; i++)
        add_skip_symbol(allocator_entry_symbols[i]);
    unwind_warm_up();
    mprof_guard_leave();
}

struct walk {
    uintptr_t *pcs;
    int max;
    int n;
    int skipping;      /* still dropping leading profiler/allocator frames */
    int want_signal;   /* drop everything up to the signal frame */
};

static _Unwind_Reason_Code MPROF_ENTRY_TEXT walk_frame(struct _Unwind_Context *ctx, void *arg)
{
    struct walk *w = arg;
    int ip_before_insn = 0;
    uintptr_t ip = _Unwind_GetIPInfo(ctx, &ip_before_insn);
    if (ip == 0)
        return _URC_END_OF_STACK;
    if (w->want_signal) {
        /* The frame interrupted by the signal is the first one libgcc marks
         * as a signal frame: its IP is the exact instruction, not a return
         * address. */
        if (!ip_before_insn)
            return _URC_NO_REASON;
        w->want_signal = 0;
        w->skipping = 0;
    }
    /* A return address points after the call; the call itself is one byte
     * earlier, and that is the line a user wants to see. */
    uintptr_t pc = ip_before_insn ? ip : ip - 1;
    if (w->skipping) {
        if (in_skip_ranges(pc))
            return _URC_NO_REASON;
        w->skipping = 0;
    }
    w->pcs[w->n++] = pc;
    return w->n >= w->max ? _URC_END_OF_STACK : _URC_NO_REASON;
}

/* After the fast walk, which skipped our own frames: drop the operator new
 * frames that follow them, so that `new T` is charged to its caller. */
static int drop_allocator_entries(uintptr_t *pcs, int n)
{
    int k = 0;
    while (k < n && in_allocator_entry(pcs[k]))
        k++;
    if (k > 0)
        memmove(pcs, pcs + k, (size_t)(n - k) * sizeof *pcs);
    return n - k;
}

/*
 * The last walk of the heap sampler on this thread, so that the next one
 * can be recognised without walking.  A walk is a function of its start
 * registers and of the stack words it reads (return addresses, saved
 * frame pointers), since each frame's unwind rule is a function of its
 * address: when a sample starts from the same registers and every word the
 * last walk read still holds the same value, the walk would find the same
 * frames.  Checking that is a load and a compare per word, where walking
 * is a rule lookup, a decode and bounds checks per frame: a program
 * allocating in a loop samples from the same place again and again.
 *
 * The sampler keeps what it knows about the site with it (struct
 * mprof_site_memo: the buckets of the site's size classes).
 *
 * One memo per thread (about 3.4 KiB, from the profiler's arena), handed
 * back to a free list when the thread exits.
 */
struct walk_memo {
    struct mprof_unwind_regs from;
    int max;
    int npcs; /* -1: nothing remembered */
    unsigned code_generation; /* mprof_code_generation when walked */
    struct mprof_walk_reads reads;
    uintptr_t pcs[MPROF_MAX_STACK];
    struct walk_memo *next_free;
    struct mprof_site_memo site;
};

static __thread struct walk_memo *tls_walk_memo __attribute__((tls_model("initial-exec")));
static pthread_key_t memo_key;
static int memo_key_ok;
static struct walk_memo *memo_free_list;
static _Atomic int memo_list_lock; /* trylock only: never waits, see below */

/* Thread exit: the memo goes back to the free list.  With the list busy
 * (another thread in the few instructions of a push or pop) it is left to
 * the arena rather than waited for. */
static void memo_release(void *arg)
{
    struct walk_memo *m = arg;
    tls_walk_memo = NULL;
    if (!atomic_exchange_explicit(&memo_list_lock, 1, memory_order_acquire)) {
        m->next_free = memo_free_list;
        memo_free_list = m;
        atomic_store_explicit(&memo_list_lock, 0, memory_order_release);
    }
}

/* A forked child has only the forking thread: a lock another thread held
 * is free in it.  (Each push and pop leaves the list whole at every
 * store, so the list itself is usable.) */
void mprof_stack_postfork_child(void) { atomic_store(&memo_list_lock, 0); }

static void memo_init(void)
{
    if (pthread_key_create(&memo_key, memo_release) == 0)
        memo_key_ok = 1;
}

static struct walk_memo *memo_get(void)
{
    if (!memo_key_ok)
        return NULL;
    struct walk_memo *m = NULL;
    if (!atomic_exchange_explicit(&memo_list_lock, 1, memory_order_acquire)) {
        m = memo_free_list;
        if (m != NULL)
            memo_free_list = m->next_free;
        atomic_store_explicit(&memo_list_lock, 0, memory_order_release);
    }
    if (m == NULL && (m = mprof_arena_alloc(sizeof *m)) == NULL)
        return NULL;
    m->npcs = -1;
    memset(&m->site, 0, sizeof m->site);
    if (pthread_setspecific(memo_key, m) != 0)
        return NULL; /* stays in the arena: never reused, never lost twice */
    tls_walk_memo = m;
    return m;
}

static int memo_matches(const struct walk_memo *m, const struct mprof_unwind_regs *regs, int max)
{
    /* After a dlclose, the same addresses may hold other code. */
    if (m->code_generation != atomic_load_explicit(&mprof_code_generation, memory_order_acquire))
        return 0;
    if (m->npcs < 0 || m->from.pc != regs->pc || m->from.sp != regs->sp || m->max != max ||
        (m->reads.uses_start_bp && m->from.bp != regs->bp))
        return 0;
    for (int i = 0; i < m->reads.n; i++) {
        uintptr_t addr = m->reads.read[i].addr;
        if (addr != 0 && *(const uintptr_t *)addr != m->reads.read[i].value)
            return 0;
    }
    return 1;
}

/* A new walk: what the sampler knew belongs to the previous site. */
static void new_site(struct mprof_site_memo *site)
{
    site->stack_hash_valid = 0;
    if (++site->gen == 0) {
        /* Wrapped: slots filled 2^32 walks ago must not look current. */
        memset(site->slot, 0, sizeof site->slot);
        site->gen = 1;
    }
}

/* The walk proper; memo, when not NULL, remembers it. */
static int MPROF_ENTRY_TEXT capture(const struct mprof_unwind_regs *regs, uintptr_t *pcs, int max,
                                    struct walk_memo *memo)
{
    if (max <= 0)
        return 0;
    /* Read before the walk: a dlclose during it leaves the memo stale. */
    unsigned generation = atomic_load_explicit(&mprof_code_generation, memory_order_acquire);
    int n = mprof_unwind_fast(regs, 1, (uintptr_t)__start_mprof_entry_text,
                              (uintptr_t)__stop_mprof_entry_text, pcs, max,
                              memo != NULL ? &memo->reads : NULL);
    if (n >= 0) {
        n = drop_allocator_entries(pcs, n);
        if (memo != NULL) {
            memo->npcs = memo->reads.n >= 0 ? n : -1;
            memo->code_generation = generation;
            memo->from = *regs;
            memo->max = max;
            if (pcs != memo->pcs)
                memcpy(memo->pcs, pcs, (size_t)n * sizeof *pcs);
            new_site(&memo->site);
        }
        return n;
    }
    if (memo != NULL) {
        memo->npcs = -1;
        new_site(&memo->site);
    }
    /* A frame the fast unwinder does not model: let libgcc do all of it,
     * from here (every frame between here and regs is in the entry section,
     * so skipped as well). */
    struct walk w = {.pcs = pcs, .max = max, .n = 0, .skipping = 1, .want_signal = 0};
    _Unwind_Backtrace(walk_frame, &w);
    return w.n;
}

const uintptr_t *MPROF_ENTRY_TEXT mprof_stack_capture_sampler(const struct mprof_unwind_regs *regs,
                                                              uintptr_t *scratch, int *n,
                                                              struct mprof_site_memo **site)
{
    struct walk_memo *m = tls_walk_memo;
    if (m == NULL) {
        m = memo_get();
    } else if (memo_matches(m, regs, MPROF_MAX_STACK)) {
        *site = &m->site;
        *n = m->npcs;
        return m->pcs;
    }
    if (m == NULL) {
        *site = NULL;
        *n = capture(regs, scratch, MPROF_MAX_STACK, NULL);
        return scratch;
    }
    /* Straight into the memo: the next sample may need them there. */
    *site = &m->site;
    *n = capture(regs, m->pcs, MPROF_MAX_STACK, m);
    return m->pcs;
}

int MPROF_ENTRY_TEXT mprof_stack_capture(uintptr_t *pcs, int max)
{
    struct mprof_unwind_regs regs;
    MPROF_READ_REGS(regs);
    return capture(&regs, pcs, max, NULL);
}

int MPROF_ENTRY_TEXT mprof_stack_capture_libgcc(uintptr_t *pcs, int max)
{
    struct walk w = {.pcs = pcs, .max = max, .n = 0, .skipping = 1, .want_signal = 0};
    if (max <= 0)
        return 0;
    _Unwind_Backtrace(walk_frame, &w);
    return w.n;
}

int MPROF_ENTRY_TEXT mprof_stack_capture_signal(uintptr_t *pcs, int max)
{
    struct walk w = {.pcs = pcs, .max = max, .n = 0, .skipping = 0, .want_signal = 1};
    if (max <= 0)
        return 0;
    _Unwind_Backtrace(walk_frame, &w);
    return w.n;
}

/* The first unwind in a process lets libgcc initialise its own state
 * (e.g. the registered-frame bookkeeping); do it here, outside malloc and
 * outside any signal handler. */
static void unwind_warm_up(void)
{
    uintptr_t pcs[4];
    (void)mprof_stack_capture(pcs, 4);
}

/*
 * From a signal handler, starting at the interrupted registers themselves
 * rather than unwinding out of the handler and through the kernel's
 * sigreturn trampoline: the fast CFI unwinder takes no lock of any kind
 * (libgcc's, in GCC 12, still takes a mutex when a JIT has registered
 * frames with __register_frame), and costs well under a microsecond where
 * libgcc took several.  A frame the fast unwinder does not model hands the
 * whole walk to libgcc, as on the allocation path.
 */
int MPROF_ENTRY_TEXT mprof_stack_capture_ucontext(void *ucontext, uintptr_t *pcs, int max)
{
    if (ucontext == NULL || max <= 0)
        return mprof_stack_capture_signal(pcs, max);
    const ucontext_t *uc = ucontext;
    const struct mprof_unwind_regs regs = {
        .pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP],
        .sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP],
        .bp = (uintptr_t)uc->uc_mcontext.gregs[REG_RBP],
    };
    int n = mprof_unwind_fast(&regs, 1, 0, 0, pcs, max, NULL);
    return n >= 0 ? n : mprof_stack_capture_signal(pcs, max);
}
