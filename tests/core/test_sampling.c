/*
 * The sampler: interval distribution, end-to-end sampling probability and
 * unsampled estimates, and the bucket table as mprof_mem_profile shows it.
 *
 *   test_sampling interval   mprof_next_interval: mean, shape (KS statistic,
 *                            quantiles, variance), independence, edge rates
 *   test_sampling e2e        malloc/free under mprof_set_rate(R): samples
 *                            taken vs N(1 - exp(-s/R)), estimates vs N*s
 *   test_sampling buckets    records: distinct sites, stacks, size-class
 *                            merging, the n/cap protocol, include_inuse_zero
 *   test_sampling guard      MPROF_RATE=1 from the environment: every
 *                            allocation of the main thread is sampled, also
 *                            right after the profiler itself allocated
 *   test_sampling memo       the sampler's remembered stack walk: samples
 *                            from the same place whose callers differ (by
 *                            the caller, by the caller's caller, at equal
 *                            stack depth) each reach their own bucket, and
 *                            alternating size classes their own
 *   test_sampling live       the live table and its filter, through
 *                            mprof_record_alloc/free on made-up addresses:
 *                            every sampled free is matched (also in tables
 *                            grown far past their first size), unknown and
 *                            repeated frees match nothing, and once every
 *                            block is gone the filter is empty again
 *   test_sampling headers    header mode's realloc transitions (plain,
 *                            sampled, header without a sample), the
 *                            memalign family's offsets, accounting
 *   test_sampling fuzz       every allocation entry point in random order,
 *                            sizes and alignments, rates switching; contents
 *                            kept through every move, all freed at the end
 *                            (run in both modes)
 *   test_sampling records    header mode's live records: taken and given
 *                            back by four threads, across threads, while
 *                            listed; none shared, none left in use
 *   test_sampling boot       blocks of the bootstrap pool (handed out while
 *                            the real allocator is looked up) keep their
 *                            filter bits through churn and filter growth,
 *                            so free never hands one to the real free
 *
 * Statistical bounds are 5 sigma (about 6e-7 two-sided per check for a
 * normal statistic): a correct sampler fails one of them once in hundreds
 * of thousands of runs, a biased one fails at once.
 *
 * Linked with the static library (malloc is interposed by its preload.o);
 * compiled with -fno-builtin so that malloc/free pairs stay calls.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core_test.h"
#include "core/core.h"
#include "unwind/unwind.h"
#include "encode/pprof.h"
#include "symbolize/symbolize.h"
#include "interpose/threads.h"
#include "http/http.h"
#include "profiles/heap_profile.h"
#include "runtime/lifecycle.h"
#include "heap/header_records.h"
#include "heap/sampler.h"

/* preload.c's, weak: in the sanitizer builds this program is linked
 * without the interposer (see core.cmake), and a strong reference would
 * pull it in. */
extern void *mprof_boot_alloc(size_t size, size_t align) __attribute__((weak));

/* ------------------------------------------------------------ helpers */

#define MAX_RECS 8192
static mprof_mem_record recs[MAX_RECS];

/* Reads the profile into recs[] (no allocation); returns the count. */
static int read_profile(int include_inuse_zero)
{
    int n = mprof_mem_profile(recs, MAX_RECS, include_inuse_zero);
    if (n > MAX_RECS) {
        fprintf(stderr, "more than %d records\n", MAX_RECS);
        exit(2);
    }
    return n;
}

/* Sum of the records whose stack[0] lies in fn (and whose size class is
 * `size`, unless 0).  Returns how many records matched. */
static int site_total(const void *fn, size_t size, int include_inuse_zero, mprof_mem_record *sum)
{
    uintptr_t lo, hi;
    core_fn_range(fn, &lo, &hi);
    memset(sum, 0, sizeof *sum);
    int n = read_profile(include_inuse_zero), matched = 0;
    for (int i = 0; i < n; i++) {
        const mprof_mem_record *r = &recs[i];
        if (r->nstack < 1 || r->stack[0] < lo || r->stack[0] >= hi)
            continue;
        if (size != 0 && r->size != size)
            continue;
        matched++;
        sum->alloc_bytes += r->alloc_bytes;
        sum->free_bytes += r->free_bytes;
        sum->alloc_objects += r->alloc_objects;
        sum->free_objects += r->free_objects;
        sum->est_alloc_objects += r->est_alloc_objects;
        sum->est_free_objects += r->est_free_objects;
        sum->est_alloc_bytes += r->est_alloc_bytes;
        sum->est_free_bytes += r->est_free_bytes;
        sum->size = r->size;
        sum->nstack = r->nstack;
        memcpy(sum->stack, r->stack, sizeof r->stack);
    }
    return matched;
}

static uint64_t samples_taken(void)
{
    mprof_stats st;
    mprof_get_stats(&st);
    return st.samples_taken;
}

/* The documented size classes: multiples of 16 up to 256 bytes, then eight
 * per power of two. */
static size_t ref_class(size_t s)
{
    if (s <= 256)
        return (s + 15) / 16 * 16;
    size_t pow = 256;
    while (pow < s)
        pow *= 2; /* s in (pow/2, pow] */
    size_t step = pow / 2 / 8;
    return (s + step - 1) / step * step;
}

/* ------------------------------------------------------------ interval */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Mean of floor(X) for X exponential with mean r. */
static double floor_exp_mean(double r) { return 1.0 / expm1(1.0 / r); }

static void check_mean(long rate, int n)
{
    double sum = 0;
    int64_t mn = INT64_MAX;
    for (int i = 0; i < n; i++) {
        int64_t x = mprof_next_interval(rate);
        sum += (double)x;
        if (x < mn)
            mn = x;
    }
    double mean = sum / n, want = floor_exp_mean((double)rate);
    /* sd of floor(X) is at most r */
    double tol = 5.0 * (double)rate / sqrt((double)n);
    CHECK(fabs(mean - want) < tol, "rate %ld: mean %.4f, want %.4f +- %.4f", rate, mean, want, tol);
    CHECK(mn >= 0, "rate %ld: negative interval %lld", rate, (long long)mn);
    printf("  rate %-8ld mean %.4f (expected %.4f, 5 sigma %.4f)\n", rate, mean, want, tol);
}

struct seq_arg {
    int64_t draws[8];
};

static void *draw_seq(void *p)
{
    struct seq_arg *a = p;
    for (int i = 0; i < 8; i++)
        a->draws[i] = mprof_next_interval(1L << 30);
    return NULL;
}

static int test_interval(void)
{
    const long R = 524288;
    const int n = 1000000;
    int64_t *x = malloc((size_t)n * sizeof *x);
    if (x == NULL)
        return 2;
    double sum = 0, sum2 = 0, lag = 0;
    for (int i = 0; i < n; i++) {
        x[i] = mprof_next_interval(R);
        double d = (double)x[i];
        sum += d;
        sum2 += d * d;
        if (i > 0)
            lag += (double)x[i - 1] * d;
    }
    double mean = sum / n;
    double var = sum2 / n - mean * mean;
    double want_mean = floor_exp_mean((double)R);
    double tol_mean = 5.0 * (double)R / sqrt((double)n);
    CHECK(fabs(mean - want_mean) < tol_mean, "mean %.1f, want %.1f +- %.1f", mean, want_mean,
          tol_mean);
    /* Exponential: variance r^2.  sd of the sample variance is
     * sqrt((mu4 - sigma^4) / n) = sqrt(8 / n) r^2. */
    double vr = var / ((double)R * R), tol_var = 5.0 * sqrt(8.0 / n);
    CHECK(fabs(vr - 1.0) < tol_var, "variance / rate^2 = %.5f, want 1 +- %.5f", vr, tol_var);
    /* Successive draws independent: lag-1 correlation ~ N(0, 1/n). */
    double cov = lag / (n - 1) - mean * mean;
    double corr = cov / var, tol_corr = 5.0 / sqrt((double)n);
    CHECK(fabs(corr) < tol_corr, "lag-1 correlation %.5f, want 0 +- %.5f", corr, tol_corr);

    qsort(x, (size_t)n, sizeof *x, cmp_i64);
    /* Kolmogorov-Smirnov against P(floor X <= k) = 1 - exp(-(k+1)/r),
     * evaluated at the middle of each integer step; the discreteness error
     * is below 1/r.  P(sqrt(n) D > t) ~ 2 exp(-2 t^2): t = 2.69 is 1e-6. */
    double D = 0;
    for (int i = 0; i < n; i++) {
        double F = -expm1(-((double)x[i] + 0.5) / (double)R);
        double lo = (double)i / n, hi = (double)(i + 1) / n;
        if (F - lo > D)
            D = F - lo;
        if (hi - F > D)
            D = hi - F;
    }
    double tol_ks = 2.69 / sqrt((double)n) + 1.0 / (double)R;
    CHECK(D < tol_ks, "KS statistic %.5f, want < %.5f", D, tol_ks);
    /* Quantiles: the fraction below the p-quantile -r ln(1-p) is p. */
    static const double ps[] = {0.01, 0.1, 0.5, 0.9, 0.99, 0.999};
    for (size_t k = 0; k < sizeof ps / sizeof *ps; k++) {
        double q = -(double)R * log1p(-ps[k]);
        /* count of x < q: x integer, X < q  <=>  floor(X) < ceil(q) */
        int64_t qi = (int64_t)ceil(q);
        size_t lo = 0, hi = (size_t)n;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (x[mid] < qi)
                lo = mid + 1;
            else
                hi = mid;
        }
        double frac = (double)lo / n;
        double tol = 5.0 * sqrt(ps[k] * (1 - ps[k]) / n) + 1.0 / (double)R;
        CHECK(fabs(frac - ps[k]) < tol, "fraction below the %.3f quantile: %.5f (+- %.5f)", ps[k],
              frac, tol);
        printf("  fraction below rate*%.4f: %.5f (expected %.3f)\n", q / (double)R, frac, ps[k]);
    }
    /* The largest of n draws is about r ln n (13.8 r); beyond 30 r has
     * probability n e^-30. */
    CHECK(x[n - 1] < 30 * (int64_t)R && x[n - 1] > 8 * (int64_t)R, "max draw %.2f r",
          (double)x[n - 1] / (double)R);
    printf("  rate %ld: mean %.1f, variance/r^2 %.4f, lag-1 corr %.5f, KS D %.5f (limit %.5f)\n",
           R, mean, vr, corr, D, tol_ks);
    free(x);

    /* Small and large rates: floor() matters at small ones. */
    check_mean(2, 200000);
    check_mean(100, 200000);
    check_mean(4096, 200000);
    check_mean(1L << 30, 200000);

    /* Rate 1 means every allocation, zero-byte ones included: the counter
     * is set below zero, so any size leaves the fast path. */
    for (int i = 0; i < 1000; i++) {
        int64_t a = mprof_next_interval(1), b = mprof_next_interval(0),
                c = mprof_next_interval(-7);
        if (a != -1 || b != -1 || c != -1) {
            CHECK(0, "next_interval(1/0/-7) = %lld/%lld/%lld, want -1", (long long)a,
                  (long long)b, (long long)c);
            break;
        }
    }
    /* The logarithm behind the draws, against libm's: every binade of r,
     * the ends of each (where the range reduction switches) and random
     * mantissas in between.  Relative error under 1e-9, and exactly 0 at
     * u = 1. */
    {
        uint64_t rng = 0x9E3779B97F4A7C15ull, worst_r = 0;
        double worst = 0;
        for (int e = 0; e <= 53; e++) {
            for (int k = 0; k < 2000; k++) {
                uint64_t top = (uint64_t)1 << e, r;
                if (k == 0)
                    r = top;
                else if (k == 1)
                    r = e < 53 ? top * 2 - 1 : top;
                else if (k == 2)
                    r = (uint64_t)((double)top * 1.4142135623730951);
                else {
                    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
                    r = e == 53 ? top : top + (e > 0 ? rng % top : 0);
                }
                if (r < 1 || r > ((uint64_t)1 << 53))
                    continue;
                double want = -log((double)r / 9007199254740992.0);
                double got = mprof_neg_log_unit(r);
                double err = want == 0 ? fabs(got) : fabs(got - want) / want;
                if (err > worst) {
                    worst = err;
                    worst_r = r;
                }
            }
        }
        CHECK(worst < 1e-9, "neg_log_unit: relative error %.3g at r = %llu", worst,
              (unsigned long long)worst_r);
        CHECK(mprof_neg_log_unit((uint64_t)1 << 53) == 0, "neg_log_unit(2^53) = %g, want 0",
              mprof_neg_log_unit((uint64_t)1 << 53));
        printf("  -ln(u) without libm: worst relative error %.3g\n", worst);
    }
    /* A huge rate neither overflows nor goes negative. */
    for (int i = 0; i < 10000; i++) {
        int64_t v = mprof_next_interval(LONG_MAX);
        if (v < 0) {
            CHECK(0, "next_interval(LONG_MAX) = %lld", (long long)v);
            break;
        }
    }
    /* Threads get their own streams: four fresh threads draw four
     * different sequences (identical ones would sample in lockstep). */
    struct seq_arg a[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, draw_seq, &a[i]);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 4; i++)
        for (int j = i + 1; j < 4; j++)
            CHECK(memcmp(a[i].draws, a[j].draws, sizeof a[i].draws) != 0,
                  "threads %d and %d drew the same sequence", i, j);
    return check_result("sampling_interval");
}

/* ------------------------------------------------------------ e2e */

/* The only allocations made between two reads of the stats. */
CORE_NOIPA void alloc_loop(long n, size_t s)
{
    for (long i = 0; i < n; i++) {
        void *p = malloc(s);
        if (p == NULL)
            abort();
        *(volatile char *)p = 1;
        free(p);
    }
}

CORE_NOIPA void alloc_loop_b(long n, size_t s)
{
    for (long i = 0; i < n; i++) {
        void *p = malloc(s);
        if (p == NULL)
            abort();
        *(volatile char *)p = 1;
        free(p);
    }
}

/* N blocks of s bytes at rate R: samples ~ Binomial(N, p), p = 1-e^(-s/R);
 * the estimate of bytes is samples * s / p, with variance N s^2 (1-p)/p. */
static void e2e_case(long R, size_t s, long N)
{
    mprof_set_rate(R);
    CHECK(mprof_get_rate() == R, "get_rate %ld after set_rate %ld", mprof_get_rate(), R);
    uint64_t before = samples_taken();
    alloc_loop(N, s);
    uint64_t k = samples_taken() - before;

    double p = -expm1(-(double)s / (double)R);
    double mean = (double)N * p, sd = sqrt((double)N * p * (1 - p));
    double tol = 5 * sd + 1;
    CHECK(fabs((double)k - mean) <= tol, "R=%ld s=%zu N=%ld: %llu samples, expected %.1f +- %.1f",
          R, s, N, (unsigned long long)k, mean, tol);

    mprof_mem_record sum;
    size_t cls = ref_class(s);
    int m = site_total((const void *)alloc_loop, cls, 1, &sum);
    CHECK(m == 1, "R=%ld s=%zu: %d records for the site, want 1", R, s, m);
    CHECK(sum.size == cls, "record size class %zu, want %zu", sum.size, cls);
    CHECK(sum.alloc_objects == (int64_t)k && sum.free_objects == (int64_t)k,
          "R=%ld s=%zu: record has %lld allocs %lld frees, stats say %llu samples", R, s,
          (long long)sum.alloc_objects, (long long)sum.free_objects, (unsigned long long)k);
    CHECK(sum.alloc_bytes == (int64_t)(k * s) && sum.free_bytes == sum.alloc_bytes,
          "R=%ld s=%zu: alloc_bytes %lld free_bytes %lld, want %llu", R, s,
          (long long)sum.alloc_bytes, (long long)sum.free_bytes, (unsigned long long)(k * s));
    double want = (double)N * (double)s;
    double est_sd = (double)s * sqrt((double)N * (1 - p) / p);
    double etol = 5 * est_sd + (double)s;
    CHECK(fabs(sum.est_alloc_bytes - want) <= etol,
          "R=%ld s=%zu: estimated bytes %.0f, true %.0f +- %.0f", R, s, sum.est_alloc_bytes, want,
          etol);
    CHECK(fabs(sum.est_alloc_objects - (double)N) <= etol / (double)s,
          "R=%ld s=%zu: estimated objects %.1f, true %ld", R, s, sum.est_alloc_objects, N);
    CHECK(fabs(sum.est_free_bytes - sum.est_alloc_bytes) <= 1e-6 * sum.est_alloc_bytes,
          "R=%ld s=%zu: everything was freed, estimated in-use %.1f bytes", R, s,
          sum.est_alloc_bytes - sum.est_free_bytes);
    printf("  R=%-6ld s=%-6zu N=%-7ld samples %-7llu (expected %.1f +- %.1f)  "
           "est bytes %.4g (true %.4g, rel err %+.4f)\n",
           R, s, N, (unsigned long long)k, mean, tol, sum.est_alloc_bytes, want,
           sum.est_alloc_bytes / want - 1);
}

static int test_e2e(void)
{
    /* Several sampling probabilities, each size in its own size class (so
     * each case has its own record at alloc_loop). */
    e2e_case(4096, 1000, 100000);   /* p = 0.217 */
    e2e_case(4096, 64, 200000);     /* p = 0.0155 */
    e2e_case(65536, 32768, 20000);  /* p = 0.39 */
    e2e_case(512, 5000, 20000);     /* p ~ 1 */
    e2e_case(524288, 300000, 4000); /* the default rate, big blocks: p = 0.44 */

    /* A rate change half-way: each sample is weighted with the rate in
     * force when it was taken, so the estimate stays unbiased. */
    {
        const size_t s = 2000;
        const long N1 = 60000, N2 = 60000, R1 = 2048, R2 = 16384;
        mprof_set_rate(R1);
        alloc_loop(N1, s);
        mprof_set_rate(R2);
        alloc_loop(N2, s);
        double p1 = -expm1(-(double)s / R1), p2 = -expm1(-(double)s / R2);
        double var = (double)s * s * ((double)N1 * (1 - p1) / p1 + (double)N2 * (1 - p2) / p2);
        mprof_mem_record sum;
        site_total((const void *)alloc_loop, ref_class(s), 1, &sum);
        double want = (double)(N1 + N2) * (double)s, tol = 5 * sqrt(var) + (double)s;
        CHECK(fabs(sum.est_alloc_bytes - want) <= tol,
              "rate change %ld -> %ld: estimated %.0f bytes, true %.0f +- %.0f", R1, R2,
              sum.est_alloc_bytes, want, tol);
        printf("  rate %ld then %ld, s=%zu: est bytes %.4g (true %.4g, rel err %+.4f)\n", R1, R2,
               s, sum.est_alloc_bytes, want, sum.est_alloc_bytes / want - 1);
    }

    /* Rate 0: nothing is sampled. */
    mprof_set_rate(0);
    CHECK(mprof_get_rate() == 0, "get_rate after set_rate(0): %ld", mprof_get_rate());
    uint64_t before = samples_taken();
    alloc_loop(200000, 200);
    CHECK(samples_taken() == before, "rate 0: %llu samples taken",
          (unsigned long long)(samples_taken() - before));
    mprof_mem_record sum;
    CHECK(site_total((const void *)alloc_loop, ref_class(200), 1, &sum) == 0,
          "rate 0: a record exists for 200-byte blocks");
    mprof_set_rate(-5);
    CHECK(mprof_get_rate() == 0, "set_rate(-5) gives rate %ld, want 0", mprof_get_rate());

    /* Rate 1: every allocation, exact counts, weight 1. */
    mprof_set_rate(1);
    before = samples_taken();
    alloc_loop_b(1000, 100);
    CHECK(samples_taken() - before == 1000, "rate 1: %llu samples for 1000 allocations",
          (unsigned long long)(samples_taken() - before));
    int m = site_total((const void *)alloc_loop_b, ref_class(100), 1, &sum);
    CHECK(m == 1 && sum.alloc_objects == 1000 && sum.alloc_bytes == 100000 &&
              sum.free_objects == 1000 && sum.free_bytes == 100000,
          "rate 1: %d records, %lld/%lld objects, %lld/%lld bytes", m,
          (long long)sum.alloc_objects, (long long)sum.free_objects, (long long)sum.alloc_bytes,
          (long long)sum.free_bytes);
    CHECK(sum.est_alloc_bytes == 100000.0 && sum.est_alloc_objects == 1000.0,
          "rate 1: estimates %.3f bytes %.3f objects, want exact", sum.est_alloc_bytes,
          sum.est_alloc_objects);
    return check_result("sampling_e2e");
}

/* ------------------------------------------------------------ buckets */

static void *kept[64];
static int nkept;
static void keep(void *p)
{
    if (p == NULL)
        abort();
    kept[nkept++] = p;
}

CORE_NOIPA void site_a(size_t s) { keep(malloc(s)); }
CORE_NOIPA void site_b(size_t s) { keep(malloc(s)); }
/* One call site for every site_a allocation: a bucket is keyed by the
 * whole stack, so the same size class through another caller is another
 * bucket. */
CORE_NOIPA void site_a_sizes(const size_t *sizes, int n)
{
    for (int i = 0; i < n; i++)
        site_a(sizes[i]);
}
CORE_NOIPA void site_two_calls(int which)
{
    if (which)
        keep(malloc(48));
    else
        keep(calloc(1, 48));
    __asm__ volatile("" ::: "memory");
}
CORE_NOIPA void site_freed(void) { free(malloc(40)); }
CORE_NOIPA void site_partial(void)
{
    void *p[2];
    for (volatile int i = 0; i < 2; i++) /* one call site, not unrolled */
        p[i] = malloc(56);
    keep(p[1]);
    free(p[0]);
}
CORE_NOIPA int site_recurse(int depth, int alloc_at)
{
    if (depth == alloc_at)
        keep(malloc(72));
    int r = depth > 0 ? site_recurse(depth - 1, alloc_at) : 0;
    __asm__ volatile("" ::: "memory");
    return r + 1;
}
CORE_NOIPA void site_classes(size_t s) { free(malloc(s)); }

/* Bounds of the profiler's own entry code, which must never be in a
 * recorded stack (weak: present in this static link). */
extern const char __start_mprof_entry_text[] __attribute__((weak));
extern const char __stop_mprof_entry_text[] __attribute__((weak));

static void check_stack_clean(const mprof_mem_record *r, const char *what)
{
    for (int i = 0; i < r->nstack; i++)
        if (__start_mprof_entry_text && r->stack[i] >= (uintptr_t)__start_mprof_entry_text &&
            r->stack[i] < (uintptr_t)__stop_mprof_entry_text) {
            CHECK(0, "%s: frame %d is inside mprof", what, i);
            core_print_stack(what, r->stack, r->nstack);
        }
}

CORE_NOIPA int buckets_driver(void)
{
    mprof_mem_record a, b;

    /* Rounds of one loop, so that every site_a allocation has the same
     * stack: a bucket is keyed by the whole stack. */
    static const size_t s100[] = {100}, s110_200[] = {110, 200};
    /* volatile: the loop must not be peeled into two call sites. */
    for (volatile int round = 0; round < 2; round++) {
        site_a_sizes(round == 0 ? s100 : s110_200, round == 0 ? 1 : 2);
        if (round == 0) {
            /* Distinct call sites: distinct records; stack[0] in the
             * function that called malloc, then its callers. */
            site_b(100);
            CHECK(site_total((const void *)site_a, 0, 0, &a) == 1,
                  "site_a: not exactly one record");
            CHECK(site_total((const void *)site_b, 0, 0, &b) == 1,
                  "site_b: not exactly one record");
            CHECK(a.alloc_objects == 1 && a.alloc_bytes == 100 && a.free_objects == 0 &&
                      a.est_alloc_bytes == 100.0,
                  "site_a: %lld objects %lld bytes", (long long)a.alloc_objects,
                  (long long)a.alloc_bytes);
            CHECK(a.nstack >= 3 && core_pc_in(a.stack[1], (const void *)site_a_sizes) &&
                      core_pc_in(a.stack[2], (const void *)buckets_driver),
                  "site_a: stack[1], stack[2] not in its callers");
            CHECK(b.nstack >= 2 && core_pc_in(b.stack[1], (const void *)buckets_driver),
                  "site_b: stack[1] not in its caller");
            CHECK(a.stack[0] != b.stack[0], "two sites share a return address");
            check_stack_clean(&a, "site_a");
            check_stack_clean(&b, "site_b");
        }
    }
    /* Same stack, same size class: one record.  100 and 110 are both in
     * class 112; 200 is in class 208. */
    int m = site_total((const void *)site_a, 112, 0, &a);
    CHECK(m == 1 && a.alloc_objects == 2 && a.alloc_bytes == 210,
          "site_a class 112: %d records, %lld objects, %lld bytes (want 1, 2, 210)", m,
          (long long)a.alloc_objects, (long long)a.alloc_bytes);
    m = site_total((const void *)site_a, 208, 0, &a);
    CHECK(m == 1 && a.alloc_objects == 1 && a.alloc_bytes == 200,
          "site_a class 208: %d records, %lld objects", m, (long long)a.alloc_objects);
    CHECK(site_total((const void *)site_a, 0, 0, &a) == 2, "site_a: want two records");

    /* Two call sites in one function: two records, both inside it. */
    site_two_calls(0);
    site_two_calls(1);
    {
        uintptr_t lo, hi;
        core_fn_range((const void *)site_two_calls, &lo, &hi);
        int n = read_profile(0), found = 0;
        uintptr_t pcs[2] = {0, 0};
        for (int i = 0; i < n; i++)
            if (recs[i].nstack > 0 && recs[i].stack[0] >= lo && recs[i].stack[0] < hi) {
                if (found < 2)
                    pcs[found] = recs[i].stack[0];
                found++;
            }
        CHECK(found == 2 && pcs[0] != pcs[1], "site_two_calls: %d records (want 2, distinct pcs)",
              found);
    }

    /* The same function at two depths: two stacks. */
    site_recurse(6, 3);
    site_recurse(6, 5);
    {
        int n = read_profile(0), found = 0, depths[2] = {0, 0};
        uintptr_t lo, hi;
        core_fn_range((const void *)site_recurse, &lo, &hi);
        for (int i = 0; i < n; i++)
            if (recs[i].nstack > 0 && recs[i].stack[0] >= lo && recs[i].stack[0] < hi &&
                recs[i].size == 80) {
                int d = 0;
                while (d < recs[i].nstack && recs[i].stack[d] >= lo && recs[i].stack[d] < hi)
                    d++;
                if (found < 2)
                    depths[found] = d;
                found++;
            }
        /* site_recurse(6, k) allocates in the frame at depth k: 6 - k + 1
         * frames of site_recurse on the stack. */
        CHECK(found == 2 && ((depths[0] == 4 && depths[1] == 2) ||
                             (depths[0] == 2 && depths[1] == 4)),
              "site_recurse: %d records, depths %d %d (want 2 records, depths 2 and 4)", found,
              depths[0], depths[1]);
    }

    /* A stack deeper than MPROF_MAX_STACK is cut at the outer end: the
     * allocating frame stays stack[0]. */
    site_recurse(100, 0);
    {
        int n = read_profile(0), found = 0;
        for (int i = 0; i < n; i++)
            if (recs[i].nstack == MPROF_MAX_STACK &&
                core_pc_in(recs[i].stack[0], (const void *)site_recurse)) {
                found++;
                int all = 1;
                for (int k = 0; k < MPROF_MAX_STACK; k++)
                    all &= core_pc_in(recs[i].stack[k], (const void *)site_recurse);
                CHECK(all, "deep stack: a frame outside site_recurse");
            }
        CHECK(found == 1, "deep recursion: %d records of %d frames", found, MPROF_MAX_STACK);
    }

    /* Size classes as documented, and exact byte counts within them. */
    {
        static const size_t sizes[] = {1,    15,   16,   17,   255,  256,   257,   288,
                                       289,  1000, 1024, 1025, 4095, 4097,  65537, 1 << 20,
                                       (1 << 20) + 1, 3000000};
        const size_t ns = sizeof sizes / sizeof *sizes;
        for (size_t i = 0; i < ns; i++)
            site_classes(sizes[i]);
        for (size_t i = 0; i < ns; i++) {
            size_t c = ref_class(sizes[i]);
            int64_t want_bytes = 0, want_objs = 0;
            for (size_t j = 0; j < ns; j++)
                if (ref_class(sizes[j]) == c) {
                    want_bytes += (int64_t)sizes[j];
                    want_objs++;
                }
            m = site_total((const void *)site_classes, c, 1, &a);
            CHECK(m == 1 && a.alloc_objects == want_objs && a.alloc_bytes == want_bytes &&
                      a.free_bytes == want_bytes,
                  "size %zu: class %zu has %d records, %lld objects, %lld bytes (want 1, %lld, "
                  "%lld)",
                  sizes[i], c, m, (long long)a.alloc_objects, (long long)a.alloc_bytes,
                  (long long)want_objs, (long long)want_bytes);
        }
        /* Nothing else at that site. */
        int n = read_profile(1), extra = 0;
        for (int i = 0; i < n; i++)
            if (recs[i].nstack > 0 && core_pc_in(recs[i].stack[0], (const void *)site_classes)) {
                int ok = 0;
                for (size_t j = 0; j < ns; j++)
                    ok |= ref_class(sizes[j]) == recs[i].size;
                extra += !ok;
            }
        CHECK(extra == 0, "site_classes: %d records with an undocumented size class", extra);
    }

    /* include_inuse_zero: a site whose every block was freed shows only
     * when asked for; a partly freed one always. */
    site_freed();
    site_partial();
    CHECK(site_total((const void *)site_freed, 0, 0, &a) == 0,
          "site_freed: listed without include_inuse_zero");
    CHECK(site_total((const void *)site_freed, 0, 1, &a) == 1 && a.alloc_objects == 1 &&
              a.free_objects == 1 && a.free_bytes == 40,
          "site_freed: not listed (or wrong) with include_inuse_zero");
    CHECK(site_total((const void *)site_partial, 0, 0, &a) == 1 && a.alloc_objects == 2 &&
              a.free_objects == 1 && a.alloc_bytes == 112 && a.free_bytes == 56,
          "site_partial: %lld allocs %lld frees", (long long)a.alloc_objects,
          (long long)a.free_objects);

    /* The n/cap protocol. */
    {
        int n0 = mprof_mem_profile(NULL, 0, 0), n1 = mprof_mem_profile(NULL, 0, 1);
        CHECK(n0 > 0 && n1 > n0, "record counts %d (in use) %d (all)", n0, n1);
        /* n > cap: recs untouched. */
        static mprof_mem_record small[MAX_RECS], pattern[MAX_RECS];
        memset(pattern, 0xab, sizeof pattern);
        memcpy(small, pattern, sizeof small);
        int n = mprof_mem_profile(small, n1 - 1, 1);
        CHECK(n == n1, "cap n-1: returned %d, want %d", n, n1);
        CHECK(memcmp(small, pattern, sizeof small) == 0, "cap n-1: recs were written");
        n = mprof_mem_profile(small, 0, 1);
        CHECK(n == n1 && memcmp(small, pattern, sizeof small) == 0, "cap 0: %d, or recs written",
              n);
        /* n == cap and n < cap: filled, nothing beyond n touched. */
        n = mprof_mem_profile(small, n1, 1);
        CHECK(n == n1, "cap n: returned %d, want %d", n, n1);
        int sane = 1;
        for (int i = 0; i < n && i < MAX_RECS; i++)
            sane &= small[i].nstack > 0 && small[i].nstack <= MPROF_MAX_STACK &&
                    small[i].alloc_objects >= small[i].free_objects && small[i].size > 0;
        CHECK(sane, "cap n: records not filled in");
        memcpy(small, pattern, sizeof small);
        n = mprof_mem_profile(small, n1 + 10, 1);
        CHECK(n == n1 && memcmp(&small[n1], &pattern[n1], 10 * sizeof *small) == 0,
              "cap n+10: returned %d or wrote past n", n);
        /* Every record is distinct: no two with the same (stack, size). */
        int dup = 0;
        for (int i = 0; i < n; i++)
            for (int j = i + 1; j < n; j++)
                dup += small[i].size == small[j].size && small[i].nstack == small[j].nstack &&
                       memcmp(small[i].stack, small[j].stack,
                              (size_t)small[i].nstack * sizeof(uintptr_t)) == 0;
        CHECK(dup == 0, "%d duplicate (stack, size) records", dup);
        /* Without include_inuse_zero: exactly the records with in-use bytes. */
        int inuse = 0;
        for (int i = 0; i < n; i++)
            inuse += small[i].alloc_bytes != small[i].free_bytes;
        CHECK(inuse == n0, "%d records with bytes in use, mem_profile(…, 0) says %d", inuse, n0);
    }
    return 0;
}

static int test_buckets(void)
{
    mprof_set_rate(1);
    buckets_driver();
    for (int i = 0; i < nkept; i++)
        free(kept[i]);
    /* All of site_a freed: it leaves the in-use listing. */
    mprof_mem_record a;
    CHECK(site_total((const void *)site_a, 0, 0, &a) == 0, "site_a listed after all frees");
    CHECK(site_total((const void *)site_a, 0, 1, &a) == 2 && a.alloc_objects == 3 &&
              a.free_objects == 3 && a.free_bytes == 410,
          "site_a after all frees: %lld/%lld objects, %lld freed bytes",
          (long long)a.alloc_objects, (long long)a.free_objects, (long long)a.free_bytes);
    return check_result("sampling_buckets");
}

/* ------------------------------------------------------------ guard */

CORE_NOIPA void guard_site_1(void) { alloc_loop_b(1000, 100); }
CORE_NOIPA void guard_site_2(void) { alloc_loop_b(1000, 100); }

static void noop_bucket(const mprof_mem_record *r, uint32_t labels, void *arg)
{
    (void)r;
    (void)labels;
    (void)arg;
}

/*
 * Run with MPROF_RATE=1 in the environment and no mprof_set_rate call: the
 * rate a user asks for must hold from main's first allocation, and must not
 * be suspended after the profiler allocated for itself (start-up, writing
 * a profile).
 */
static int test_guard(void)
{
    CHECK(mprof_get_rate() == 1, "MPROF_RATE=1 but rate is %ld", mprof_get_rate());
    uint64_t before = samples_taken();
    guard_site_1();
    uint64_t k = samples_taken() - before;
    CHECK(k == 1000, "MPROF_RATE=1: %llu of main's first 1000 allocations sampled",
          (unsigned long long)k);

    /* The profiler's cold paths malloc with the guard held (a snapshot
     * for a profile writer).  Afterwards the thread samples as before. */
    CHECK(mprof_heap_snapshot(noop_bucket, NULL, 1) == 0, "mprof_heap_snapshot failed");
    before = samples_taken();
    guard_site_2();
    k = samples_taken() - before;
    CHECK(k == 1000, "MPROF_RATE=1: %llu of 1000 allocations sampled after a profile snapshot",
          (unsigned long long)k);
    return check_result("sampling_guard");
}

/* ------------------------------------------------------------ walk memo */

/*
 * memo_leaf's allocation is reached through memo_mid from memo_top_x or
 * memo_top_y, and directly from memo_mid_x or memo_mid_y: functions of one
 * shape, so the allocation happens at the same stack address whichever
 * path led there.  A remembered walk reused without checking the callers
 * would charge one path's allocations to the other.
 */
/* Sizes whose classes alternate, two of them (16 B and 4.5 MB) sharing a
 * slot of the memo's per-class table. */
static const size_t memo_sizes[] = {16, 4000, 16, 4500000, 4000, 300, 4500000, 16};
#define MEMO_NSIZES (sizeof memo_sizes / sizeof memo_sizes[0])
static unsigned memo_next;
CORE_NOIPA void memo_leaf(void)
{
    void *p = malloc(memo_sizes[memo_next++ % MEMO_NSIZES]);
    __asm__ volatile("" : : "r"(p) : "memory");
    free(p);
}
CORE_NOIPA void memo_mid(void)
{
    memo_leaf();
    __asm__ volatile("");
}
CORE_NOIPA void memo_top_x(void)
{
    memo_mid();
    __asm__ volatile("");
}
CORE_NOIPA void memo_top_y(void)
{
    memo_mid();
    __asm__ volatile("");
}
CORE_NOIPA void memo_mid_x(void)
{
    memo_leaf();
    __asm__ volatile("");
}
CORE_NOIPA void memo_mid_y(void)
{
    memo_leaf();
    __asm__ volatile("");
}

/* Allocations of memo_leaf's bucket whose frame `level` lies in fn. */
static long memo_count(const void *fn, int level)
{
    uintptr_t lo, hi, llo, lhi;
    core_fn_range(fn, &lo, &hi);
    core_fn_range((const void *)memo_leaf, &llo, &lhi);
    long n = 0;
    int nrec = read_profile(1);
    for (int i = 0; i < nrec; i++) {
        const mprof_mem_record *r = &recs[i];
        if (r->nstack > level && r->stack[0] >= llo && r->stack[0] < lhi &&
            r->stack[level] >= lo && r->stack[level] < hi)
            n += r->alloc_objects;
    }
    return n;
}

static int test_memo(void)
{
    mprof_set_rate(1);
    /* Runs of each path, and alternation, so that every kind of change
     * meets a remembered walk. */
    static const char pattern[] = "xxxyxyyyxxyxABBBAABABy";
    long want[4] = {0};
    for (int round = 0; round < 50; round++)
        for (const char *c = pattern; *c; c++) {
            switch (*c) {
            case 'x': memo_top_x(); want[0]++; break;
            case 'y': memo_top_y(); want[1]++; break;
            case 'A': memo_mid_x(); want[2]++; break;
            case 'B': memo_mid_y(); want[3]++; break;
            }
        }
    mprof_flush();
    long got[4] = {
        memo_count((const void *)memo_top_x, 2),
        memo_count((const void *)memo_top_y, 2),
        memo_count((const void *)memo_mid_x, 1),
        memo_count((const void *)memo_mid_y, 1),
    };
    const char *names[4] = {"top_x -> mid -> leaf", "top_y -> mid -> leaf", "mid_x -> leaf",
                            "mid_y -> leaf"};
    for (int i = 0; i < 4; i++)
        CHECK(got[i] == want[i], "%s: %ld allocations, expected %ld", names[i], got[i], want[i]);
    /* Per size class, whatever the path. */
    long total = want[0] + want[1] + want[2] + want[3];
    static const size_t classes[] = {16, 320, 4096, 4718592};
    for (size_t c = 0; c < sizeof classes / sizeof classes[0]; c++) {
        long expect = 0;
        for (long k = 0; k < total; k++)
            if (ref_class(memo_sizes[k % MEMO_NSIZES]) == classes[c])
                expect++;
        mprof_mem_record r;
        site_total((const void *)memo_leaf, classes[c], 1, &r);
        CHECK(r.alloc_objects == expect, "class %zu: %lld allocations, expected %ld", classes[c],
              (long long)r.alloc_objects, expect);
    }
    return check_result("test_sampling memo");
}

/* ------------------------------------------------------------ live table */

#define LIVE_N 300000
static uintptr_t live_addrs[LIVE_N];
static unsigned char live_state[LIVE_N]; /* 1 while allocated */

static size_t live_samples(void)
{
    mprof_stats st;
    mprof_get_stats(&st);
    return st.live_samples;
}

static int filter_bits_set(void)
{
    int n = 0;
    struct mprof_filter f = mprof_filter_decode(atomic_load(&mprof_hot.filter_word));
    for (size_t i = 0; i < ((size_t)1 << f.bits_log2) / 64; i++)
        n += __builtin_popcountll(atomic_load(&f.words[i]));
    return n;
}

/* The calls are made here, so this function is the records' stack[0] (the
 * empty asm keeps them from becoming tail calls, which would leave it out). */
CORE_NOIPA void live_alloc(uintptr_t a)
{
    mprof_record_alloc((void *)a, 48);
    __asm__ volatile("");
}
CORE_NOIPA void live_free(uintptr_t a)
{
    mprof_record_free((void *)a, MPROF_FREE_EXPLICIT);
    __asm__ volatile("");
}

/* One thread's share of the grow phase: indexes [lo, hi); every block
 * allocated, a fifth of them freed along the way.  Returns the frees. */
#define LIVE_THREADS 4
static long live_grow_part(int lo, int hi)
{
    long frees = 0;
    for (int i = lo; i < hi; i++) {
        live_alloc(live_addrs[i]);
        live_state[i] = 1;
        if ((i - lo) % 5 == 4) {
            int k = lo + (int)(((uint64_t)i * 2654435761u) % (uint64_t)(i - lo + 1));
            if (live_state[k]) {
                live_free(live_addrs[k]);
                live_state[k] = 0;
                frees++;
            }
        }
    }
    return frees;
}

static void *live_grow_thread(void *arg)
{
    int t = (int)(intptr_t)arg;
    int per = LIVE_N / LIVE_THREADS;
    return (void *)(intptr_t)live_grow_part(per * t, per * (t + 1));
}

static void *live_free_thread(void *arg)
{
    int t = (int)(intptr_t)arg, lo = LIVE_N / LIVE_THREADS * t, n = LIVE_N / LIVE_THREADS;
    long frees = 0;
    /* In an order unrelated to the table's. */
    for (int step = 0; step < n; step++) {
        int i = lo + (int)(((uint64_t)step * 7919u) % (uint64_t)n);
        if (live_state[i]) {
            live_free(live_addrs[i]);
            live_state[i] = 0;
            frees++;
        }
    }
    return (void *)(intptr_t)frees;
}

/* Runs fn on LIVE_THREADS threads at once; the sum of what they return. */
static long live_run(void *(*fn)(void *))
{
    pthread_t tids[LIVE_THREADS];
    long sum = 0;
    for (int t = 0; t < LIVE_THREADS; t++)
        if (pthread_create(&tids[t], NULL, fn, (void *)(intptr_t)t) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            exit(2);
        }
    for (int t = 0; t < LIVE_THREADS; t++) {
        void *r;
        pthread_join(tids[t], &r);
        sum += (long)(intptr_t)r;
    }
    return sum;
}

static int test_live(void)
{
    mprof_set_rate(1);
    /* Addresses as allocators hand them out: runs of neighbours in four
     * 64 MiB arenas (which share filter regions), and scattered ones (an
     * odd multiplier modulo 2^38 keeps them distinct). */
    for (int i = 0; i < LIVE_N; i++)
        live_addrs[i] = i % 3 == 2
                            ? (uintptr_t)(0x100000000000ull +
                                          (((uint64_t)i * 0x9E3779B1u) & ((1ull << 38) - 1)) * 16)
                            : (uintptr_t)(0x7f0000000000ull + (uintptr_t)(i % 4) * (64u << 20) +
                                          (uintptr_t)i * 48);

    size_t live0 = live_samples();
    /* Threads allocate and free at once, so the filter grows (every table
     * laid out again under all shard locks) while others use it. */
    long allocs = LIVE_N;
    long frees = live_run(live_grow_thread);
    mprof_mem_record mid;
    site_total((const void *)live_alloc, 0, 1, &mid);
    CHECK(mid.alloc_objects == allocs && mid.free_objects == frees,
          "allocs %lld frees %lld, expected %ld and %ld", (long long)mid.alloc_objects,
          (long long)mid.free_objects, allocs, frees);
    /* The threads' own sampled mallocs (thread start-up) add a few. */
    CHECK(live_samples() - live0 >= (size_t)(allocs - frees) &&
              live_samples() - live0 < (size_t)(allocs - frees) + 64,
          "live %zu, expected %ld", live_samples() - live0, allocs - frees);
    /* With a quarter of a million blocks live the filter must have grown
     * (and the tables been laid out again, more than once, under the
     * blocks already in them). */
    unsigned grown = mprof_filter_decode(atomic_load(&mprof_hot.filter_word)).bits_log2;
    CHECK(grown >= MPROF_FILTER_MIN_LOG2 + 4, "filter still 2^%u bits", grown);

    /* Frees of addresses never sampled, and repeated frees, match nothing. */
    mprof_mem_record before, after;
    site_total((const void *)live_alloc, 0, 1, &before);
    for (int i = 0; i < LIVE_N; i += 7) {
        live_free(live_addrs[i] + 8); /* inside a block, never its start */
        if (!live_state[i])
            live_free(live_addrs[i]);
    }
    mprof_flush();
    site_total((const void *)live_alloc, 0, 1, &after);
    CHECK(after.free_objects == before.free_objects,
          "frees of unknown or already freed addresses were matched: %lld -> %lld",
          (long long)before.free_objects, (long long)after.free_objects);

    /* Every remaining block freed, again from all threads at once. */
    frees += live_run(live_free_thread);
    mprof_flush();
    mprof_mem_record sum;
    int matched = site_total((const void *)live_alloc, 0, 1, &sum);
    CHECK(matched >= 1, "no record for the test's site");
    CHECK(sum.alloc_objects == allocs && sum.free_objects == frees && allocs == frees,
          "allocs %lld frees %lld (expected %ld each)", (long long)sum.alloc_objects,
          (long long)sum.free_objects, allocs);
    CHECK(live_samples() < live0 + 64, "%zu blocks still live (started with %zu)", live_samples(),
          live0);
    /* Each live block holds at most one bit (the test's own sampled
     * mallocs may hold a few); a bit left behind by any of the 300000
     * freed blocks would show. */
    CHECK(filter_bits_set() <= (int)live_samples(), "%d filter bits set for %zu live blocks",
          filter_bits_set(), live_samples());
    return check_result("test_sampling live");
}

/* ------------------------------------------------------------ boot blocks */

/*
 * free() leaves bootstrap-pool blocks to its slow path: nothing on its fast
 * path tells them from the real allocator's but what it checks for sampled
 * blocks.  In header mode that is the tag before the block; in table mode
 * (MPROF_HEADERS=0) the filter, so their filter bits must stay set
 * (mprof_live_pin), however the sampled blocks sharing their slots come
 * and go and however often the filter grows.  A boot block that reached
 * the real free would abort the program ("free(): invalid pointer").
 *
 * The test runs in both modes; CORE_EXPECT_TABLE=1 says which to expect
 * (glibc underneath: header mode unless MPROF_HEADERS=0).
 */
#define BOOT_BLOCKS 200
static int test_boot(void)
{
    char *boot[BOOT_BLOCKS];
    if (mprof_boot_alloc == NULL) {
        CHECK(0, "built without the interposer");
        return check_result("test_sampling boot");
    }
    const char *want_table = getenv("CORE_EXPECT_TABLE");
    int table = !atomic_load(&mprof_hot.header_mode);
    CHECK(table == (want_table != NULL && strcmp(want_table, "1") == 0), "%s mode, expected %s",
          table ? "table" : "header", want_table ? "table" : "header");
    size_t live0 = live_samples();
    unsigned filter0 = mprof_filter_decode(atomic_load(&mprof_hot.filter_word)).bits_log2;
    for (int i = 0; i < BOOT_BLOCKS; i++) {
        boot[i] = mprof_boot_alloc(24 + (size_t)i, 16);
        if (boot[i] == NULL) {
            CHECK(0, "boot block %d: out of pool", i);
            return check_result("test_sampling boot");
        }
        memset(boot[i], i, 24 + (size_t)i);
    }
    CHECK(live_samples() == live0, "pinned boot blocks counted as live samples (%zu, was %zu)",
          live_samples(), live0);

    /* Rate 1: every block sampled, 4096 live at a time, so in table mode
     * bits are set and cleared all over the filter and it grows several
     * times. */
    mprof_set_rate(1);
    enum { LIVE = 4096 };
    static void *live[LIVE];
    uint64_t rng = 0x2545F4914F6CDD1Dull;
    for (int i = 0; i < 300000; i++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        int k = (int)(rng % LIVE);
        free(live[k]);
        live[k] = malloc(16 + (size_t)(rng >> 52));
    }
    for (int k = 0; k < LIVE; k++) {
        free(live[k]);
        live[k] = NULL;
    }
    mprof_set_rate(524288);
    unsigned filter1 = mprof_filter_decode(atomic_load(&mprof_hot.filter_word)).bits_log2;
    int lost = 0;
    if (table) {
        CHECK(filter1 > filter0, "the filter never grew (2^%u bits)", filter1);
        for (int i = 0; i < BOOT_BLOCKS; i++)
            lost += !mprof_maybe_sampled(boot[i]);
        CHECK(lost == 0, "%d of %d boot blocks lost their filter bit", lost, BOOT_BLOCKS);
    } else {
        CHECK(filter1 == filter0, "header mode grew the filter (2^%u bits)", filter1);
        for (int i = 0; i < BOOT_BLOCKS; i++)
            lost += !mprof_has_header(boot[i]);
        CHECK(lost == 0, "%d of %d boot blocks without a tag", lost, BOOT_BLOCKS);
    }
    for (int i = 0; i < BOOT_BLOCKS; i++)
        if (malloc_usable_size(boot[i]) != 24 + (size_t)i) {
            CHECK(0, "malloc_usable_size(boot block %d) = %zu, want %d", i,
                  malloc_usable_size(boot[i]), 24 + i);
            break;
        }

    /* realloc moves a boot block to the real allocator, contents kept. */
    char *moved = realloc(boot[7], 4000);
    CHECK(moved != NULL && moved != boot[7] && moved[0] == 7 && moved[30] == 7,
          "realloc of a boot block: %p (from %p)", (void *)moved, (void *)boot[7]);
    free(moved);
    /* Frees of boot blocks are no-ops, even repeated. */
    for (int i = 0; i < BOOT_BLOCKS; i++)
        free(boot[i]);
    for (int i = 0; i < BOOT_BLOCKS; i += 2)
        free(boot[i]);
    CHECK(boot[3][5] == 3, "a freed boot block changed");
    CHECK(live_samples() <= live0 + 8, "%zu live samples left (started with %zu)", live_samples(),
          live0);
    return check_result("test_sampling boot");
}

/* ------------------------------------------------------------ headers */

/*
 * Header mode's own paths (glibc underneath, as in this statically linked
 * test): realloc between a plain block, a sampled block and a block with a
 * header but no sample; the memalign family's larger offsets; realloc to
 * 0.  Contents survive every move, malloc_usable_size covers the request,
 * and once everything is freed the sites hold nothing in use.  Rates
 * switch between 1 (every allocation sampled) and 0 (none) to force each
 * transition.
 */
static void fill(unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(seed + i * 7);
}

static int intact(const unsigned char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(seed + i * 7))
            return 0;
    return 1;
}

static int sampled_here(const void *p)
{
    return mprof_has_header(p) && mprof_header_of(p)->bucket != NULL;
}

CORE_NOIPA void *hdr_realloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    __asm__ volatile("");
    return q;
}

CORE_NOIPA void *hdr_aligned(size_t align, size_t n)
{
    void *q = aligned_alloc(align, n);
    __asm__ volatile("");
    return q;
}

/* Randomized churn: every entry point, sizes 0..64 KiB, rates switching
 * between off, every allocation and in between, contents checked after
 * every move, every sample matched by its free.  Run in header mode and
 * in table mode.  stack[0] of every sample is hdr_fuzz_op. */
enum { FZ_MALLOC, FZ_CALLOC, FZ_REALLOC, FZ_ALIGNED, FZ_POSIX, FZ_MEMALIGN, FZ_VALLOC, FZ_KINDS };
CORE_NOIPA void *hdr_fuzz_op(int kind, void *old, size_t align, size_t n)
{
    void *p = NULL;
    switch (kind) {
    case FZ_MALLOC: p = malloc(n); break;
    case FZ_CALLOC: p = calloc(1, n); break;
    case FZ_REALLOC: p = realloc(old, n); break;
    case FZ_ALIGNED: p = aligned_alloc(align, n); break;
    case FZ_POSIX: if (posix_memalign(&p, align, n) != 0) p = NULL; break;
    case FZ_MEMALIGN: p = memalign(align, n); break;
    default: p = valloc(n); break;
    }
    __asm__ volatile("");
    return p;
}

static void hdr_fuzz(void)
{
    enum { SLOTS = 512, OPS = 200000 };
    static unsigned char *blk[SLOTS];
    static size_t len[SLOTS];
    static unsigned seed[SLOTS];
    static const long rates[] = {0, 1, 4096, 65536};
    uint64_t x = 0x853c49e6748fea9bull;
    int bad = 0;
    for (int op = 0; op < OPS && bad < 5; op++) {
        if (op % 1000 == 0)
            mprof_set_rate(rates[(op / 1000) % 4]);
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int k = (int)(x % SLOTS);
        int kind = (int)((x >> 10) % FZ_KINDS);
        size_t n = (size_t)((x >> 20) % 65536) >> ((x >> 40) % 12);
        size_t align = (size_t)1 << (3 + (x >> 50) % 10); /* 8 .. 4096 */
        if (blk[k] != NULL && !intact(blk[k], len[k], seed[k])) {
            CHECK(0, "op %d: slot %d (%zu bytes) damaged", op, k, len[k]);
            bad++;
        }
        if (kind == FZ_REALLOC && blk[k] != NULL) {
            size_t keep = len[k] < n ? len[k] : n;
            unsigned char *q = hdr_fuzz_op(kind, blk[k], align, n);
            if (n == 0) {
                blk[k] = NULL; /* glibc: realloc(p, 0) frees p */
                continue;
            }
            if (q == NULL || !intact(q, keep, seed[k])) {
                CHECK(0, "op %d: realloc %zu -> %zu lost data", op, len[k], n);
                bad++;
                continue;
            }
            blk[k] = q;
        } else {
            free(blk[k]);
            blk[k] = hdr_fuzz_op(kind, NULL, align, n);
            if (blk[k] == NULL) {
                CHECK(n == 0 && kind == FZ_REALLOC, "op %d: kind %d of %zu bytes failed", op, kind,
                      n);
                continue;
            }
            if (kind >= FZ_ALIGNED && (uintptr_t)blk[k] % (kind == FZ_VALLOC ? 4096 : align) != 0) {
                CHECK(0, "op %d: kind %d align %zu: %p", op, kind, align, (void *)blk[k]);
                bad++;
            }
        }
        if (malloc_usable_size(blk[k]) < n) {
            CHECK(0, "op %d: usable %zu < %zu", op, malloc_usable_size(blk[k]), n);
            bad++;
        }
        len[k] = n;
        seed[k] = (unsigned)(x >> 33);
        fill(blk[k], n, seed[k]);
    }
    for (int k = 0; k < SLOTS; k++) {
        free(blk[k]);
        blk[k] = NULL;
    }
    mprof_set_rate(524288);
    mprof_mem_record sum;
    site_total((const void *)hdr_fuzz_op, 0, 1, &sum);
    CHECK(sum.alloc_objects > 10000 && sum.alloc_objects == sum.free_objects &&
              sum.alloc_bytes == sum.free_bytes,
          "fuzz: %lld allocs %lld frees, %lld bytes in use", (long long)sum.alloc_objects,
          (long long)sum.free_objects, (long long)(sum.alloc_bytes - sum.free_bytes));
    printf("  header fuzz: %d ops, %lld sampled, all freed\n", OPS, (long long)sum.alloc_objects);
}

static int test_headers(void)
{
    CHECK(atomic_load(&mprof_hot.header_mode), "not in header mode (glibc underneath)");
    mprof_set_rate(0);
    unsigned char *p = malloc(100);
    fill(p, 100, 1);
    CHECK(!mprof_has_header(p), "a block allocated at rate 0 has a header");

    mprof_set_rate(1);
    p = hdr_realloc(p, 5000); /* plain -> sampled: the data moves past the header */
    CHECK(p != NULL && sampled_here(p) && intact(p, 100, 1), "plain -> sampled: %p", (void *)p);
    CHECK(malloc_usable_size(p) >= 5000, "usable %zu < 5000", malloc_usable_size(p));
    fill(p, 5000, 2);

    mprof_set_rate(0);
    p = hdr_realloc(p, 9000); /* sampled -> a header without a sample */
    CHECK(p != NULL && mprof_has_header(p) && !sampled_here(p) && intact(p, 5000, 2),
          "sampled -> unsampled");
    CHECK(malloc_usable_size(p) >= 9000, "usable %zu < 9000", malloc_usable_size(p));
    fill(p, 9000, 3);
    p = hdr_realloc(p, 300); /* stays unsampled, shrinks */
    CHECK(p != NULL && !sampled_here(p) && intact(p, 300, 3), "unsampled shrink");

    mprof_set_rate(1);
    p = hdr_realloc(p, 700); /* unsampled header -> sampled */
    CHECK(p != NULL && sampled_here(p) && intact(p, 300, 3), "unsampled -> sampled");
    fill(p, 700, 4);
    CHECK(hdr_realloc(p, 0) == NULL, "realloc(p, 0) of a sampled block returned non-NULL");

    /* The memalign family: the offset is the alignment. */
    static const size_t aligns[] = {8, 16, 32, 64, 256, 4096, 65536};
    for (size_t i = 0; i < sizeof aligns / sizeof *aligns; i++) {
        unsigned char *a = hdr_aligned(aligns[i], 3000);
        CHECK(a != NULL && (uintptr_t)a % aligns[i] == 0 && sampled_here(a),
              "aligned_alloc(%zu): %p", aligns[i], (void *)a);
        CHECK(malloc_usable_size(a) >= 3000, "aligned %zu: usable %zu", aligns[i],
              malloc_usable_size(a));
        fill(a, 3000, 5);
        a = hdr_realloc(a, 6000); /* through malloc and a copy */
        CHECK(a != NULL && intact(a, 3000, 5), "realloc of aligned_alloc(%zu)", aligns[i]);
        free(a);
    }
    void *v = NULL;
    CHECK(posix_memalign(&v, 128, 100) == 0 && (uintptr_t)v % 128 == 0 && sampled_here(v),
          "posix_memalign(128)");
    free(v);
    CHECK(posix_memalign(&v, 24, 100) == EINVAL, "posix_memalign(24) did not fail with EINVAL");
    void *pv = pvalloc(0);
    CHECK(pv != NULL && (uintptr_t)pv % 4096 == 0 && malloc_usable_size(pv) >= 4096, "pvalloc(0)");
    free(pv);
    mprof_set_rate(524288);

    /* Every sampled block freed: nothing in use at these sites, and each
     * free was matched to its allocation. */
    mprof_mem_record sum;
    site_total((const void *)hdr_realloc, 0, 1, &sum);
    /* Two sampled reallocs above, and one per alignment (at rate 1). */
    long long want = 2 + (long long)(sizeof aligns / sizeof *aligns);
    CHECK(sum.alloc_objects == want && sum.free_objects == want && sum.alloc_bytes == sum.free_bytes,
          "realloc sites: %lld allocs %lld frees (want %lld), %lld bytes in use",
          (long long)sum.alloc_objects, (long long)sum.free_objects, want,
          (long long)(sum.alloc_bytes - sum.free_bytes));
    site_total((const void *)hdr_aligned, 0, 1, &sum);
    CHECK(sum.alloc_objects == 7 && sum.free_objects == 7 && sum.alloc_bytes == sum.free_bytes,
          "aligned_alloc sites: %lld allocs %lld frees", (long long)sum.alloc_objects,
          (long long)sum.free_objects);
    return check_result("test_sampling headers");
}

/* ------------------------------------------------------------ records */

/*
 * The live records of header mode (header_records.c), driven directly, so
 * that the sanitizer builds check them too: four threads take records, mark
 * them as theirs, check the marks after a pause, and give them back, half
 * to their own magazines and half through an exchange to other threads (a
 * block freed by another thread than its allocator's); meanwhile the main
 * thread lists the records in use.  A record handed to two threads at once
 * would lose a mark; every record given back is no longer listed.
 */
#define REC_THREADS 4
#define REC_ROUNDS 3000
#define REC_BATCH 50
static pthread_mutex_t rec_exchange_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mprof_live_rec *rec_exchange[REC_THREADS * REC_BATCH];
static int rec_exchange_n;
static _Atomic int rec_errors, rec_workers_done;

static void *rec_worker(void *arg)
{
    uintptr_t me = (uintptr_t)arg + 1;
    struct mprof_live_rec *mine[REC_BATCH];
    for (int round = 0; round < REC_ROUNDS; round++) {
        int n = 0;
        while (n < REC_BATCH && (mine[n] = mprof_rec_get()) != NULL) {
            mprof_rec_set(mine[n], me, 0);
            mine[n]->bucket = (struct mprof_bucket *)(uintptr_t)n;
            atomic_store_explicit(&mine[n]->addr, me << 32 | (uintptr_t)(round + 1),
                                  memory_order_release);
            n++;
        }
        if (n < REC_BATCH)
            atomic_fetch_add(&rec_errors, 1); /* out of memory: cannot be */
        sched_yield();
        for (int i = 0; i < n; i++)
            if (mprof_rec_size(mine[i]) != me || mine[i]->bucket != (struct mprof_bucket *)(uintptr_t)i ||
                atomic_load(&mine[i]->addr) != (me << 32 | (uintptr_t)(round + 1)))
                atomic_fetch_add(&rec_errors, 1);
        for (int i = 0; i < n; i++)
            atomic_store_explicit(&mine[i]->addr, 0, memory_order_relaxed);
        /* Half back to this thread's magazines, half to whoever comes
         * next; and what others left, back through this thread's. */
        pthread_mutex_lock(&rec_exchange_lock);
        struct mprof_live_rec *theirs[REC_THREADS * REC_BATCH];
        int m = rec_exchange_n;
        memcpy(theirs, rec_exchange, (size_t)m * sizeof *theirs);
        rec_exchange_n = 0;
        for (int i = n / 2; i < n; i++)
            rec_exchange[rec_exchange_n++] = mine[i];
        pthread_mutex_unlock(&rec_exchange_lock);
        for (int i = 0; i < n / 2; i++)
            mprof_rec_put(mine[i]);
        for (int i = 0; i < m; i++)
            mprof_rec_put(theirs[i]);
    }
    atomic_fetch_add(&rec_workers_done, 1);
    return NULL;
}

static int test_records(void)
{
    pthread_t t[REC_THREADS];
    for (int i = 0; i < REC_THREADS; i++)
        pthread_create(&t[i], NULL, rec_worker, (void *)(uintptr_t)i);
    int most = 0, lists = 0;
    while (atomic_load(&rec_workers_done) < REC_THREADS) {
        int n = mprof_rec_foreach(NULL, NULL);
        most = n > most ? n : most;
        lists++;
    }
    for (int i = 0; i < REC_THREADS; i++)
        pthread_join(t[i], NULL);
    CHECK(atomic_load(&rec_errors) == 0, "%d records shared or lost", atomic_load(&rec_errors));
    /* A listing is no snapshot (a record given back early in the walk and
     * another taken late both count), but it stays near the truth. */
    CHECK(most <= 2 * REC_THREADS * REC_BATCH, "%d records listed in use, at most %d can be",
          most, REC_THREADS * REC_BATCH);
    /* The exchange's leftovers go back too; then nothing is in use. */
    for (int i = 0; i < rec_exchange_n; i++)
        mprof_rec_put(rec_exchange[i]);
    CHECK(mprof_rec_foreach(NULL, NULL) == 0, "%d records still listed in use",
          mprof_rec_foreach(NULL, NULL));
    printf("  records: %d lists taken while %d threads churned, at most %d in use\n", lists,
           REC_THREADS, most);
    return check_result("test_sampling records");
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "interval") == 0)
        return test_interval();
    if (strcmp(mode, "e2e") == 0)
        return test_e2e();
    if (strcmp(mode, "buckets") == 0)
        return test_buckets();
    if (strcmp(mode, "guard") == 0)
        return test_guard();
    if (strcmp(mode, "live") == 0)
        return test_live();
    if (strcmp(mode, "memo") == 0)
        return test_memo();
    if (strcmp(mode, "boot") == 0)
        return test_boot();
    if (strcmp(mode, "headers") == 0)
        return test_headers();
    if (strcmp(mode, "records") == 0)
        return test_records();
    if (strcmp(mode, "fuzz") == 0) {
        hdr_fuzz();
        return check_result("test_sampling fuzz");
    }
    fprintf(stderr, "usage: %s interval|e2e|buckets|guard|live|memo|boot|headers|records|fuzz\n",
            argv[0]);
    return 2;
}
