/*
 * Allocation-churn benchmark: N threads (default 2) each keep a few
 * thousand live blocks and repeatedly replace a random one with a block of
 * random size between 8 B and 256 KiB (log-uniform, so small blocks are
 * common and large ones rare, as in real programs).  Every block is
 * touched at both ends so the allocator's work is not optimised away.
 *
 * Prints one line: elapsed seconds, operations, and, when run under
 * libmprof, the profiler's own memory (found with dlsym, so the program
 * itself stays unmodified).
 *
 * A fourth argument R > 0 makes the churn "requests" of R operations, each
 * under a label request=<one of 4 types> pushed and popped around it with
 * mprof_labels_push/pop (found with dlsym too; without libmprof nothing is
 * pushed): the labeled line of heap_bench.sh.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_rng.h"
#include "mprof.h"

static long ops_per_thread = 1000000;
static int live_per_thread = 4096;
static long ops_per_request; /* 0: no labels */
static int (*labels_push)(const char *, const char *);
static void (*labels_pop)(void);
static const char *const request_types[4] = {"get", "put", "list", "delete"};

static size_t random_size(uint64_t *rng)
{
    /* 8 * 2^(15 u): log-uniform over [8, 256 KiB]. */
    double u = (double)(xorshift(rng) >> 11) / 9007199254740992.0;
    size_t s = (size_t)(8.0 * __builtin_exp2(15.0 * u));
    return s < 8 ? 8 : s;
}

static void *churn(void *arg)
{
    uint64_t rng = 0x9E3779B97F4A7C15ull * (uintptr_t)(arg + 1);
    char **live = calloc((size_t)live_per_thread, sizeof *live);
    for (long i = 0; i < ops_per_thread; i++) {
        if (labels_push != NULL && i % ops_per_request == 0) {
            if (i > 0)
                labels_pop();
            labels_push("request", request_types[(i / ops_per_request) % 4]);
        }
        int k = (int)(xorshift(&rng) % (uint64_t)live_per_thread);
        free(live[k]);
        size_t n = random_size(&rng);
        live[k] = malloc(n);
        live[k][0] = (char)i;
        live[k][n - 1] = (char)i;
    }
    if (labels_push != NULL && ops_per_thread > 0)
        labels_pop();
    for (int k = 0; k < live_per_thread; k++)
        free(live[k]);
    free(live);
    return NULL;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    if (argc > 2)
        ops_per_thread = atol(argv[2]);
    if (argc > 3)
        live_per_thread = atoi(argv[3]);
    if (argc > 4)
        ops_per_request = atol(argv[4]);
    if (ops_per_request > 0) {
        labels_push = (int (*)(const char *, const char *))dlsym(RTLD_DEFAULT, "mprof_labels_push");
        labels_pop = (void (*)(void))dlsym(RTLD_DEFAULT, "mprof_labels_pop");
        if (labels_pop == NULL)
            labels_push = NULL;
    }
    pthread_t tids[64];
    if (threads < 1 || threads > 64)
        threads = 2;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < threads; i++)
        pthread_create(&tids[i], NULL, churn, (void *)(uintptr_t)i);
    for (int i = 0; i < threads; i++)
        pthread_join(tids[i], NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    void (*get_stats)(mprof_stats *) = (void (*)(mprof_stats *))dlsym(RTLD_DEFAULT, "mprof_get_stats");
    if (get_stats) {
        mprof_stats st;
        get_stats(&st);
        printf("%.4f %ld %zu %zu %llu\n", secs, ops_per_thread * threads, st.profiler_bytes,
               st.buckets, (unsigned long long)st.samples_taken);
    } else {
        printf("%.4f %ld 0 0 0\n", secs, ops_per_thread * threads);
    }
    return 0;
}
