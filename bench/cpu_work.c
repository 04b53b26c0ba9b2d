/*
 * CPU-bound workload for bench/cpu_bench.sh.  Knows nothing of profilers:
 * each tool is applied from outside (LD_PRELOAD, perf).
 *
 *   cpu_bench_work calibrate
 *       prints how many slices one thread runs per CPU second.
 *   cpu_bench_work THREADS SLICES
 *       each of THREADS threads runs SLICES slices of equal work, each in
 *       one of four functions picked at random with probabilities
 *       40/30/20/10 %.  Prints the CPU time each function really took
 *       (thread CPU clock around every slice, summed over threads), the
 *       process CPU time (getrusage) and the wall time of the work alone.
 *
 * Random picking rather than a fixed pattern: a periodic pattern whose
 * cycle is commensurate with the sampling period (or the scheduler tick)
 * is always sampled at the same phase and would mislead every tool alike.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cpu_work.h"

#define SLICE_ITERS 40000 /* ~50-100 us */

static volatile uint64_t sink;
static long slices_per_thread;
static _Atomic int64_t fn_ns[4];

__attribute__((noinline)) void bench_fn_a(void) { sink += cpu_work_spin(sink, SLICE_ITERS); }
__attribute__((noinline)) void bench_fn_b(void) { sink += cpu_work_spin(sink ^ 1, SLICE_ITERS); }
__attribute__((noinline)) void bench_fn_c(void) { sink += cpu_work_spin(sink ^ 2, SLICE_ITERS); }
__attribute__((noinline)) void bench_fn_d(void) { sink += cpu_work_spin(sink ^ 3, SLICE_ITERS); }

static void (*const fns[4])(void) = {bench_fn_a, bench_fn_b, bench_fn_c, bench_fn_d};

/* splitmix64: every output well mixed.  A plain LCG would not do: a
 * profiler samples every k-th slice or so (k = period / slice length), and
 * every k-th output of an LCG is another LCG whose low-order structure can
 * favour some functions over others. */
static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t seed;

static void *run(void *arg)
{
    uint64_t rng = seed ^ ((uintptr_t)arg * 0x2545f4914f6cdd1dULL);
    int64_t local[4] = {0, 0, 0, 0};
    for (long i = 0; i < slices_per_thread; i++) {
        unsigned r = (unsigned)(splitmix64(&rng) % 10);
        int f = r < 4 ? 0 : r < 7 ? 1 : r < 9 ? 2 : 3;
        int64_t t0 = cpu_work_thread_ns();
        fns[f]();
        local[f] += cpu_work_thread_ns() - t0;
    }
    for (int f = 0; f < 4; f++)
        atomic_fetch_add(&fn_ns[f], local[f]);
    return NULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "calibrate") == 0) {
        int64_t t0 = cpu_work_thread_ns();
        long n = 0;
        while (cpu_work_thread_ns() - t0 < 500000000) {
            bench_fn_a();
            n++;
        }
        printf("%ld\n", n * 2);
        return 0;
    }
    if (argc != 3) {
        fprintf(stderr, "usage: %s calibrate | THREADS SLICES\n", argv[0]);
        return 2;
    }
    int nthreads = atoi(argv[1]);
    slices_per_thread = atol(argv[2]);
    if (nthreads < 1 || nthreads > 64 || slices_per_thread < 1)
        return 2;
    /* A different sequence each run, so that no run-to-run pattern can
     * line up with any profiler's sampling. */
    seed = (uint64_t)(now_s() * 1e9);
    double w0 = now_s();
    pthread_t th[64];
    for (int i = 1; i < nthreads; i++)
        pthread_create(&th[i], NULL, run, (void *)(intptr_t)i);
    run(NULL);
    for (int i = 1; i < nthreads; i++)
        pthread_join(th[i], NULL);
    double wall = now_s() - w0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    printf("wall_s %.6f\ncpu_s %.6f\n", wall, cpu);
    static const char *const names[4] = {"bench_fn_a", "bench_fn_b", "bench_fn_c", "bench_fn_d"};
    for (int f = 0; f < 4; f++)
        printf("fn %s %.3f\n", names[f], atomic_load(&fn_ns[f]) / 1e6);
    return 0;
}
