/*
 * The fast caching CFI unwinder (mprof_stack_capture, fast_unwind.c) must
 * return exactly the stacks of libgcc's unwinder
 * (mprof_stack_capture_libgcc), from every kind of frame a program has:
 *
 *   - recursion depths 1..40 through code built -O2 -fomit-frame-pointer
 *     (RSP-based CFA) and -O0 (RBP frames);
 *   - alloca and VLA frames (RBP-based CFA in -O2 code), a realigned frame;
 *   - a recursion mixing all of them and C++ frames;
 *   - 64 generated functions chained at random (many return addresses:
 *     misses, hits and evictions in the rule cache);
 *   - callbacks from libc's qsort and bsearch (Debian's libc, no frame
 *     pointers);
 *   - C++ -O2: templates, lambdas and std::function, a std::sort
 *     comparator, virtual calls, std::call_once (libstdc++.so and
 *     pthread_once), a destructor run by an exception, a catch block;
 *   - signal handlers, from raise() and from a timer interrupting a busy
 *     loop at an arbitrary instruction;
 *   - 8 threads at once (the rule cache is shared and lock-free);
 *   - repeated captures (cache hits) against the first ones (misses).
 *
 * Each probe takes three captures through the same call instruction: fast,
 * libgcc, fast again; all three must be identical, and deep enough to hold
 * the context's frames.  Then a micro-benchmark prints the cost of each
 * (print only, no timing assertion).
 */
#include <pthread.h>
#include <search.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core_test.h"
#include "core_unwind.h"
#include "core/core.h"
#include "unwind/unwind.h"
#include "encode/pprof.h"
#include "symbolize/symbolize.h"
#include "interpose/threads.h"
#include "http/http.h"
#include "profiles/heap_profile.h"
#include "runtime/lifecycle.h"

#define KEEP(x) __asm__ volatile("" : : "r"(x) : "memory")
#define MAXF 128

typedef int (*capture_fn)(uintptr_t *pcs, int max);
static capture_fn volatile capture_fns[2] = {mprof_stack_capture, mprof_stack_capture_libgcc};

/* One call instruction for both unwinders: the same return address. */
CORE_NOIPA int do_capture(int which, uintptr_t *pcs, int max)
{
    int n = capture_fns[which](pcs, max);
    KEEP(n);
    return n;
}

struct probe_state {
    const char *ctx;
    int depth;
    const void *fn;   /* recursive function whose frames are counted, or NULL */
    int min_fn_frames;
    int probes;       /* probe calls so far */
    int max;          /* frames asked for */
};

static _Atomic long comparisons;
static pthread_mutex_t print_lock = PTHREAD_MUTEX_INITIALIZER;

static void report(const struct probe_state *st, const char *what, const uintptr_t *a, int na,
                   const uintptr_t *b, int nb)
{
    /* Counted always; the stacks of the first 8 only. */
    if (!check_failed() || check_failures() > 8)
        return;
    pthread_mutex_lock(&print_lock);
    fprintf(stderr, "FAIL %s (depth %d, probe %d): %s\n", st->ctx, st->depth, st->probes, what);
    core_print_stack("fast", a, na);
    core_print_stack("libgcc", b, nb);
    pthread_mutex_unlock(&print_lock);
}

CORE_NOIPA void compare_probe(void *arg)
{
    struct probe_state *st = arg;
    uintptr_t pcs[3][MAXF];
    int n[3];
    int max = st->max ? st->max : MAXF;
    /* volatile: one call site, not unrolled into three. */
    for (volatile int k = 0; k < 3; k++)
        n[k] = do_capture(k == 1, pcs[k], max);
    st->probes++;
    atomic_fetch_add(&comparisons, 1);
    if (n[0] != n[1] || memcmp(pcs[0], pcs[1], (size_t)n[0] * sizeof(uintptr_t)) != 0)
        report(st, "fast unwinder differs from libgcc", pcs[0], n[0], pcs[1], n[1]);
    else if (n[2] != n[1] || memcmp(pcs[2], pcs[1], (size_t)n[2] * sizeof(uintptr_t)) != 0)
        report(st, "repeated fast capture (cache hit) differs", pcs[2], n[2], pcs[1], n[1]);
    /* Both could be wrong the same way: check the reference is sane. */
    if (n[1] < 1 || !core_pc_in(pcs[1][0], (const void *)do_capture) ||
        (max > 1 && (n[1] < 2 || !core_pc_in(pcs[1][1], (const void *)compare_probe))))
        report(st, "stack does not start at do_capture <- compare_probe", pcs[0], n[0], pcs[1],
               n[1]);
    if (st->fn != NULL) {
        int in = 0;
        for (int i = 0; i < n[1]; i++)
            in += core_pc_in(pcs[1][i], st->fn);
        if (in < st->min_fn_frames && n[1] < max)
            report(st, "fewer frames of the context's function than its depth", pcs[0], n[0],
                   pcs[1], n[1]);
    }
}

/* ------------------------------------------------------------ contexts */

typedef int (*depth_ctx)(int depth, probe_fn probe, void *arg);

struct named_ctx {
    const char *name;
    depth_ctx fn;
};

static const struct named_ctx depth_contexts[] = {
    {"O2 -fomit-frame-pointer recursion", u_o2_recurse},
    {"O0 recursion", u_o0_recurse},
    {"alloca recursion", u_o2_alloca},
    {"VLA recursion", u_o2_vla},
    {"realigned-stack recursion", u_o2_aligned},
    {"mixed O2/O0/alloca/C++ recursion", u_mixed},
};
#define NDEPTH_CTX (sizeof depth_contexts / sizeof *depth_contexts)

static void run_depth_context(const struct named_ctx *c, int depth)
{
    struct probe_state st = {.ctx = c->name, .depth = depth, .fn = (const void *)c->fn};
    /* u_mixed calls itself once per level through a step function. */
    st.min_fn_frames = c->fn == u_mixed ? depth + 1 : depth;
    c->fn(depth, compare_probe, &st);
    if (st.probes != 1)
        report(&st, "context did not call the probe once", NULL, 0, NULL, 0);
}

static const char *const cxx_names[U_CXX_KINDS] = {
    "C++ template levels",      "C++ virtual recursion",  "C++ destructor during unwinding",
    "C++ std::function lambda", "C++ std::sort comparator", "C++ std::call_once",
    "C++ template lambda",      "C++ catch block",
};

static void run_cxx_context(int kind, int depth)
{
    struct probe_state st = {.ctx = cxx_names[kind], .depth = depth};
    if (kind == 5 || kind == 7) { /* these end in u_o2_recurse */
        st.fn = (const void *)u_o2_recurse;
        st.min_fn_frames = depth;
    }
    u_cxx(kind, depth, compare_probe, &st);
    if (st.probes < 1)
        report(&st, "context did not call the probe", NULL, 0, NULL, 0);
}

static void run_gen_context(int depth, unsigned seed)
{
    struct probe_state st = {.ctx = "generated functions", .depth = depth};
    u_o2_gen(depth, seed, compare_probe, &st);
    if (st.probes != 1)
        report(&st, "context did not call the probe once", NULL, 0, NULL, 0);
}

/* libc callbacks: qsort, bsearch (through a pointer: <stdlib.h> may inline
 * bsearch, this must be libc's), tsearch/tfind.  Reached at some depth of
 * -O2 recursion. */
static __thread struct probe_state *libc_state;
static __thread int cmp_calls;

CORE_NOIPA int probing_cmp(const void *a, const void *b)
{
    if (++cmp_calls % 5 == 0)
        compare_probe(libc_state);
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static void free_nothing(void *p) { (void)p; }

CORE_NOIPA void libc_probe(void *arg)
{
    int v[97];
    for (int i = 0; i < 97; i++)
        v[i] = (i * 7919) % 97;
    libc_state = arg;
    cmp_calls = 0;
    qsort(v, 97, sizeof v[0], probing_cmp);
    KEEP(v);
    void *(*volatile bs)(const void *, const void *, size_t, size_t,
                         int (*)(const void *, const void *)) = bsearch;
    int key = 42;
    void *hit = bs(&key, v, 97, sizeof v[0], probing_cmp);
    KEEP(hit);
    void *root = NULL;
    for (int i = 0; i < 20; i++)
        tsearch(&v[i * 3], &root, probing_cmp);
    void *found = tfind(&v[30], &root, probing_cmp);
    KEEP(found);
    tdestroy(root, free_nothing);
}

static void run_libc_context(int depth)
{
    struct probe_state st = {.ctx = "qsort/bsearch/tsearch callback", .depth = depth,
                             .fn = (const void *)u_o2_recurse, .min_fn_frames = depth};
    u_o2_recurse(depth, libc_probe, &st);
    if (st.probes < 10)
        report(&st, "libc called the comparator too few times", NULL, 0, NULL, 0);
}

/* Signal handlers: the stack goes through the kernel's signal frame
 * (__restore_rt), then the interrupted code, whose pc is exact. */
static struct probe_state *volatile sig_state;
static volatile sig_atomic_t sig_count;

static void probing_handler(int sig)
{
    (void)sig;
    if (sig_state != NULL)
        compare_probe(sig_state);
    sig_count++;
}

CORE_NOIPA void raise_probe(void *arg)
{
    sig_state = arg;
    raise(SIGUSR1);
    sig_state = NULL;
}

/* Spins in -O2 code until the CPU timer has fired a few times. */
CORE_NOIPA void spin_probe(void *arg)
{
    sig_state = arg;
    volatile unsigned long x = 0;
    sig_atomic_t start = sig_count;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (sig_count - start < 5) {
        for (int i = 0; i < 1000; i++)
            x = x * 6364136223846793005ul + 1442695040888963407ul;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (t1.tv_sec - t0.tv_sec > 10)
            break;
    }
    sig_state = NULL;
}

/* Busy loops at recursion depths 1..max_depth, interrupted by a 1 ms CPU
 * timer, with whatever SIGPROF handler is installed; SIGPROF is ignored
 * again afterwards. */
static void run_timer_probes(const char *ctx, int max_depth, int step)
{
    struct itimerval it = {{0, 1000}, {0, 1000}};
    setitimer(ITIMER_PROF, &it, NULL);
    for (int depth = 1; depth <= max_depth; depth += step) {
        struct probe_state st = {.ctx = ctx, .depth = depth, .fn = (const void *)u_o2_recurse,
                                 .min_fn_frames = depth};
        u_o2_recurse(depth, spin_probe, &st);
        if (st.probes < 5)
            report(&st, "timer signal did not arrive", NULL, 0, NULL, 0);
    }
    memset(&it, 0, sizeof it);
    setitimer(ITIMER_PROF, &it, NULL);
    signal(SIGPROF, SIG_IGN);
}

static void run_signal_contexts(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = probing_handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGPROF, &sa, NULL);
    for (int depth = 1; depth <= 20; depth += 3) {
        struct probe_state st = {.ctx = "signal handler (raise)", .depth = depth,
                                 .fn = (const void *)u_o2_recurse, .min_fn_frames = depth};
        u_o2_recurse(depth, raise_probe, &st);
        if (st.probes != 1)
            report(&st, "handler did not run", NULL, 0, NULL, 0);
    }
    run_timer_probes("signal handler (timer, busy loop)", 20, 6);
}

/* From the interrupted registers (the CPU profiler's and the all-stacks
 * handler's path): mprof_stack_capture_ucontext walks from the ucontext
 * with the fast unwinder and must give exactly what libgcc gives when it
 * unwinds out of the handler through the signal frame. */
static _Atomic long ucontext_compared;

static void ucontext_handler(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)si;
    struct probe_state *st = sig_state;
    if (st == NULL)
        return;
    uintptr_t a[MPROF_MAX_STACK], b[MPROF_MAX_STACK];
    int na = mprof_stack_capture_ucontext(uc, a, MPROF_MAX_STACK);
    int nb = mprof_stack_capture_signal(b, MPROF_MAX_STACK);
    st->probes++;
    sig_count++;
    atomic_fetch_add(&ucontext_compared, 1);
#ifdef __SANITIZE_THREAD__
    /* TSan defers signal handlers to its own safe points: there is no
     * kernel signal frame under us for libgcc to walk through, and the
     * registers in the ucontext describe a stack that has moved on since.
     * Under TSan this only checks that such a walk is harmless. */
    (void)nb;
    return;
#endif
    if (na != nb || memcmp(a, b, (size_t)na * sizeof a[0]) != 0)
        report(st, "ucontext walk differs from libgcc's signal-frame walk", a, na, b, nb);
    else if (na < st->min_fn_frames)
        report(st, "ucontext walk too short", a, na, b, nb);
}

static void run_ucontext_contexts(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = ucontext_handler;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGPROF, &sa, NULL);
    run_timer_probes("ucontext (timer, busy loop)", 30, 4);
    printf("ucontext walks compared with libgcc: %ld\n", (long)atomic_load(&ucontext_compared));
}

/* Truncation: asking for fewer frames gives the same prefix. */
static void run_truncated(void)
{
    for (int max = 1; max <= 10; max++) {
        struct probe_state st = {.ctx = "truncated capture", .depth = 20, .max = max};
        u_o2_recurse(20, compare_probe, &st);
    }
}

/* Everything once, in an order that depends on the seed. */
static void run_all(unsigned seed, int max_depth)
{
    for (int depth = 1; depth <= max_depth; depth++) {
        unsigned r = seed = seed * 1103515245u + 12345u;
        run_depth_context(&depth_contexts[(r >> 8) % NDEPTH_CTX], depth);
        for (size_t c = 0; c < NDEPTH_CTX; c++)
            run_depth_context(&depth_contexts[c], depth);
        for (int k = 0; k < U_CXX_KINDS; k++)
            run_cxx_context(k, depth);
        run_gen_context(depth, r >> 4);
        if (depth % 5 == 1)
            run_libc_context(depth);
    }
}

static void *thread_main(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    for (int round = 0; round < 6; round++) {
        run_all(seed + (unsigned)round * 977u, 40);
        run_libc_context(round + 3);
    }
    return NULL;
}

/* ------------------------------------------------------------ benchmark */

struct bench_state {
    int which, iters;
    double ns;
    int frames;
};

CORE_NOIPA void bench_probe(void *arg)
{
    struct bench_state *b = arg;
    uintptr_t pcs[MPROF_MAX_STACK];
    int n = 0;
    struct timespec t0, t1;
    for (int i = 0; i < 200; i++) /* warm: fill the rule cache */
        n = do_capture(b->which, pcs, MPROF_MAX_STACK);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < b->iters; i++)
        n = do_capture(b->which, pcs, MPROF_MAX_STACK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    b->ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) /
            b->iters;
    b->frames = n;
}

static void run_bench(void)
{
    static const int depths[] = {5, 15, 40};
    for (size_t d = 0; d < sizeof depths / sizeof *depths; d++) {
        struct bench_state fast = {0, 20000, 0, 0}, gcc = {1, 4000, 0, 0};
        u_o2_recurse(depths[d], bench_probe, &fast);
        u_o2_recurse(depths[d], bench_probe, &gcc);
        printf("  bench: %2d frames: fast %7.0f ns/capture (%5.1f ns/frame), libgcc %7.0f "
               "ns/capture (%5.1f ns/frame), %.1fx\n",
               fast.frames, fast.ns, fast.ns / fast.frames, gcc.ns, gcc.ns / gcc.frames,
               gcc.ns / fast.ns);
    }
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    (void)argc;
    (void)argv;

    /* First captures of each context (cache misses), then again (hits). */
    run_all(1, 40);
    run_all(2, 40);
    run_truncated();
    run_signal_contexts();
    run_ucontext_contexts();
    printf("  single thread: %ld comparisons\n", atomic_load(&comparisons));

    /* The cache is shared: 8 threads at once. */
    enum { NT = 8 };
    pthread_t t[NT];
    for (int i = 0; i < NT; i++)
        pthread_create(&t[i], NULL, thread_main, (void *)(uintptr_t)(1000 + i));
    for (int i = 0; i < NT; i++)
        pthread_join(t[i], NULL);
    printf("  with %d threads: %ld comparisons in all\n", NT, atomic_load(&comparisons));

    if (argc < 2 || strcmp(argv[1], "--no-bench") != 0)
        run_bench();
    return check_result("unwind");
}
