/*
 * Two threads on two cores, profiled through the API.
 *
 * The main thread ("split-main") runs equal slices of work in split_three
 * or split_one, picking split_three three times out of four at random; a
 * second thread ("split-worker") burns in split_worker.  Random, not
 * alternating: thread CPU timers fire on the scheduler tick, and a fixed
 * alternation whose cycle divides the tick period would be sampled at the
 * same phase every time (aliasing) and show any split at all.  The program prints the CPU
 * time the kernel accounted to the process while the profiler ran
 * (getrusage) so that cpu_split.sh can compare it with the profile's total.
 *
 * usage: test_cpu_split PROFILE [HZ]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cpu_work.h"
#include "mprof.h"

#define MAIN_CPU_NS 3000000000L
#define WORKER_CPU_NS 2000000000L

static long unit_iters; /* ~0.1 ms */
static volatile uint64_t sink;

__attribute__((noinline)) void split_three(void) { sink += cpu_work_spin(sink, unit_iters); }
__attribute__((noinline)) void split_one(void) { sink += cpu_work_spin(sink ^ 1, unit_iters); }
__attribute__((noinline)) void split_worker(void) { sink += cpu_work_spin(sink ^ 2, unit_iters); }

static void pin(int cpu)
{
    /* On distinct cores if the machine has them: the point is two threads
     * truly running at once, which is where a process-wide timer fails. */
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 2)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu % n, &set);
    (void)sched_setaffinity(0, sizeof set, &set);
}

static void *worker(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "split-worker");
    pin(1);
    int64_t t0 = cpu_work_thread_ns();
    while (cpu_work_thread_ns() - t0 < WORKER_CPU_NS)
        split_worker();
    return NULL;
}

static double rusage_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PROFILE [HZ]\n", argv[0]);
        return 2;
    }
    int hz = argc > 2 ? atoi(argv[2]) : 0;
    pthread_setname_np(pthread_self(), "split-main");
    pin(0);
    unit_iters = cpu_work_calibrate(100000);

    double cpu0 = rusage_cpu_s();
    if (mprof_cpu_start(argv[1], hz) != 0) {
        perror("mprof_cpu_start");
        return 1;
    }
    pthread_t th;
    pthread_create(&th, NULL, worker, NULL);
    /* xorshift64*: well-mixed outputs (every k-th output of a plain LCG,
     * which is what a periodic sampler sees, can be skewed). */
    uint64_t rng = 0x2545f4914f6cdd1dULL ^ (uint64_t)cpu_work_thread_ns();
    int64_t t0 = cpu_work_thread_ns();
    while (cpu_work_thread_ns() - t0 < MAIN_CPU_NS) {
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        if (((rng * 0x2545f4914f6cdd1dULL) >> 32) % 4 != 0)
            split_three();
        else
            split_one();
    }
    pthread_join(th, NULL);
    double cpu1 = rusage_cpu_s();
    if (mprof_cpu_stop() != 0) {
        perror("mprof_cpu_stop");
        return 1;
    }
    printf("rusage_cpu_ms %.0f\n", (cpu1 - cpu0) * 1000);
    return 0;
}
