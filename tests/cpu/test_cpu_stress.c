/*
 * A program that knows nothing of mprof, for LD_PRELOAD runs.
 *
 *   test_cpu_stress burn MS       burns MS ms of CPU in stress_burn_fn
 *   test_cpu_stress stress SECS   for SECS seconds, at once: two threads
 *       malloc/realloc/free at random, one dlopens libz, checksums inside it
 *       and dlcloses it, one forks children that allocate, start a thread
 *       and exit through exit(3), one creates and joins short threads; the
 *       main thread burns.  Exits 1 if any child did not exit 0.
 *
 * Under `MPROF_CPU_HZ=1000 MPROF_RATE=1` every allocation is sampled by the
 * heap profiler while SIGPROF lands anywhere, including inside malloc, the
 * heap sampler, the dynamic loader and fork.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cpu_work.h"

static volatile uint64_t sink;
static _Atomic int stop;
static _Atomic int child_failures;
static _Atomic long forks, dlopens, threads_made;

__attribute__((noinline)) void stress_burn_fn(long iters) { sink += cpu_work_spin(sink, iters); }

static uint64_t rnd(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s >> 33;
}

static void *alloc_thread(void *arg)
{
    uint64_t s = (uintptr_t)arg;
    void *slots[256];
    memset(slots, 0, sizeof slots);
    while (!atomic_load(&stop)) {
        int i = (int)(rnd(&s) % 256);
        size_t n = 1 + rnd(&s) % 4096;
        switch (rnd(&s) % 4) {
        case 0:
            free(slots[i]);
            slots[i] = malloc(n);
            break;
        case 1:
            free(slots[i]);
            slots[i] = calloc(1, n);
            break;
        case 2: {
            void *p = realloc(slots[i], n);
            if (p != NULL)
                slots[i] = p;
            break;
        }
        default:
            free(slots[i]);
            slots[i] = NULL;
        }
        if (slots[i] != NULL)
            memset(slots[i], 1, 1);
    }
    for (int i = 0; i < 256; i++)
        free(slots[i]);
    return NULL;
}

static void *dlopen_thread(void *arg)
{
    (void)arg;
    unsigned char buf[65536];
    memset(buf, 7, sizeof buf);
    while (!atomic_load(&stop)) {
        void *h = dlopen("libz.so.1", RTLD_NOW | RTLD_LOCAL);
        if (h == NULL) {
            fprintf(stderr, "dlopen libz.so.1: %s\n", dlerror());
            return NULL;
        }
        unsigned long (*crc)(unsigned long, const unsigned char *, unsigned) =
            (unsigned long (*)(unsigned long, const unsigned char *, unsigned))dlsym(h, "crc32");
        if (crc != NULL)
            for (int i = 0; i < 20; i++)
                sink += crc(0, buf, sizeof buf);
        dlclose(h);
        atomic_fetch_add(&dlopens, 1);
    }
    return NULL;
}

static void *child_thread(void *arg)
{
    (void)arg;
    free(malloc(100));
    stress_burn_fn(100000);
    return NULL;
}

static void *fork_thread(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            atomic_fetch_add(&child_failures, 1);
            return NULL;
        }
        if (pid == 0) {
            /* The child runs normally: allocates, starts a thread, exits
             * through exit(3) so the profiler's exit path runs too. */
            char *p = malloc(1000);
            memset(p, 0, 1000);
            pthread_t t;
            if (pthread_create(&t, NULL, child_thread, NULL) != 0)
                _exit(2);
            pthread_join(t, NULL);
            free(p);
            stress_burn_fn(1000000);
            exit(0);
        }
        int status;
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "child %d ended with status %#x\n", (int)pid, status);
            atomic_fetch_add(&child_failures, 1);
        }
        atomic_fetch_add(&forks, 1);
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void *short_thread(void *arg)
{
    (void)arg;
    free(malloc(64));
    stress_burn_fn(200000);
    return NULL;
}

static void *churn_thread(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        pthread_t t;
        if (pthread_create(&t, NULL, short_thread, NULL) == 0) {
            pthread_join(t, NULL);
            atomic_fetch_add(&threads_made, 1);
        }
    }
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
    if (argc == 3 && strcmp(argv[1], "burn") == 0) {
        long iters = cpu_work_calibrate(1000000) * atol(argv[2]);
        stress_burn_fn(iters);
        return 0;
    }
    if (argc != 3 || strcmp(argv[1], "stress") != 0) {
        fprintf(stderr, "usage: %s burn MS | stress SECONDS\n", argv[0]);
        return 2;
    }
    double secs = atof(argv[2]);
    pthread_t th[5];
    pthread_create(&th[0], NULL, alloc_thread, (void *)1);
    pthread_create(&th[1], NULL, alloc_thread, (void *)2);
    pthread_create(&th[2], NULL, dlopen_thread, NULL);
    pthread_create(&th[3], NULL, fork_thread, NULL);
    pthread_create(&th[4], NULL, churn_thread, NULL);
    double end = now_s() + secs;
    while (now_s() < end)
        stress_burn_fn(100000);
    atomic_store(&stop, 1);
    for (int i = 0; i < 5; i++)
        pthread_join(th[i], NULL);
    printf("forks %ld, dlopen/dlclose %ld, short threads %ld, failed children %d\n",
           atomic_load(&forks), atomic_load(&dlopens), atomic_load(&threads_made),
           atomic_load(&child_failures));
    /* What the main thread burned, for comparison with its profile (the
     * machine may be busy: wall time says little). */
    printf("main_cpu_ms %lld\n", (long long)(cpu_work_thread_ns() / 1000000));
    return atomic_load(&child_failures) != 0;
}
