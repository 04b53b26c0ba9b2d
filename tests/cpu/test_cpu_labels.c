/*
 * Labeled CPU samples (cpu_labels.sh): all CPU is burnt in one function,
 * burn_slice, under labels whose true CPU time each thread measures with
 * its own CPU clock, so that the profile's split by label can be checked
 * against it.
 *
 *  - The main thread ("labels-main") runs under request=upload, in slices
 *    of 20 ms of CPU, each slice under phase=a or phase=b, picked at random
 *    three times out of four for a: the label changes some 60 times, and
 *    each slice spans several sampling periods, so that the split is
 *    measured, not a coin toss per sample (a slice of 0.1 ms would put each
 *    sample's label at random, a binomial error of 10% on phase=b).
 *  - A worker thread ("labels-worker") burns at the same time under
 *    request=download: labels are per thread.
 *  - Then the main thread pops every label and burns unlabeled.
 *
 * Prints "NAME_ms N" for upload, download, a, b and unlabeled.
 *
 * usage: test_cpu_labels PROFILE [HZ]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "cpu_work.h"
#include "mprof.h"

#define SLICE_NS 20000000L
#define MAIN_NS 1200000000L
#define WORKER_NS 400000000L
#define UNLABELED_NS 200000000L

static long unit_iters; /* ~0.1 ms */
static volatile uint64_t sink;

__attribute__((noinline)) void burn_slice(int64_t ns)
{
    int64_t t0 = cpu_work_thread_ns();
    while (cpu_work_thread_ns() - t0 < ns)
        sink += cpu_work_spin(sink, unit_iters);
}

static int64_t worker_ns;

static void *worker(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "labels-worker");
    if (mprof_labels_push("request", "download") != 0)
        abort();
    int64_t t0 = cpu_work_thread_ns();
    burn_slice(WORKER_NS);
    worker_ns = cpu_work_thread_ns() - t0;
    mprof_labels_pop();
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PROFILE [HZ]\n", argv[0]);
        return 2;
    }
    int hz = argc > 2 ? atoi(argv[2]) : 0;
    pthread_setname_np(pthread_self(), "labels-main");
    unit_iters = cpu_work_calibrate(100000);
    if (mprof_cpu_start(argv[1], hz) != 0) {
        perror("mprof_cpu_start");
        return 1;
    }
    pthread_t t;
    if (pthread_create(&t, NULL, worker, NULL) != 0)
        return 1;

    int64_t ns[2] = {0, 0}; /* phase a, phase b */
    uint64_t rng = 0x9e3779b97f4a7c15ULL;
    if (mprof_labels_push("request", "upload") != 0)
        return 1;
    int64_t start = cpu_work_thread_ns();
    while (cpu_work_thread_ns() - start < MAIN_NS) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        int b = rng % 4 == 0;
        if (mprof_labels_push("phase", b ? "b" : "a") != 0)
            return 1;
        int64_t t0 = cpu_work_thread_ns();
        burn_slice(SLICE_NS);
        ns[b] += cpu_work_thread_ns() - t0;
        mprof_labels_pop();
    }
    int64_t upload = cpu_work_thread_ns() - start;
    mprof_labels_pop();
    int64_t t0 = cpu_work_thread_ns();
    burn_slice(UNLABELED_NS);
    int64_t unlabeled = cpu_work_thread_ns() - t0;
    pthread_join(t, NULL);
    if (mprof_cpu_stop() != 0) {
        perror("mprof_cpu_stop");
        return 1;
    }
    printf("upload_ms %.1f\ndownload_ms %.1f\na_ms %.1f\nb_ms %.1f\nunlabeled_ms %.1f\n",
           upload / 1e6, worker_ns / 1e6, ns[0] / 1e6, ns[1] / 1e6, unlabeled / 1e6);
    return 0;
}
