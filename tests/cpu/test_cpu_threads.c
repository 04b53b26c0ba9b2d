/*
 * Thread life cycles under the CPU profiler, driven through the API and
 * linked with the static archive (so libmprof.a's pthread_create wrapper is
 * what gives new threads their timers).  Writes three profiles into DIR;
 * cpu_threads.sh reads them with go tool pprof.
 *
 *  a.pprof  threads created after the start: one long-lived thread
 *           (late_thread_fn, 300 ms), and 200 short-lived ones, two at a
 *           time, each burning 5 ms in short_thread_fn (1000 ms in all;
 *           the CPU a thread spends after its last sampling tick is charged
 *           to its start routine, short_thread).
 *  b.pprof  the profiler stopped and started again: restart_fn, 300 ms,
 *           and a thread created while the profiler was stopped, found at
 *           the start in /proc/self/task: pre_existing_fn, 300 ms.
 *  c.pprof  a fork while profiling: the parent burns in parent_fn; the
 *           child burns in child_fn, creates a thread, starts and stops a
 *           profile of its own (child.<pid>.pprof) and exits 0.
 *
 * Exits non-zero if an API call fails or the child does not exit 0.
 *
 * usage: test_cpu_threads DIR
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cpu_work.h"
#include "../lib/check.h"
#include "mprof.h"

static long iters_per_ms;
static volatile uint64_t sink;

/* A macro, not a function: each profiled function must hold its own loop
 * (a shared helper would be reached by a tail call, and the function would
 * vanish from the stack). */
#define burn_ms(ms) (sink += cpu_work_spin(sink, iters_per_ms * (ms)))

__attribute__((noinline)) void late_thread_fn(void) { burn_ms(300); }
__attribute__((noinline)) void short_thread_fn(void) { burn_ms(5); }
__attribute__((noinline)) void restart_fn(void) { burn_ms(300); }
__attribute__((noinline)) void pre_existing_fn(void) { burn_ms(300); }
__attribute__((noinline)) void parent_fn(void) { burn_ms(300); }
__attribute__((noinline)) void child_fn(void) { burn_ms(100); }
__attribute__((noinline)) void child_thread_fn(void) { burn_ms(100); }

/* CPU the threads really used, as their own clocks tell, to compare the
 * profile with. */
static _Atomic int64_t late_cpu_ns, short_cpu_ns;

static void *late_thread(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "late");
    late_thread_fn();
    atomic_fetch_add(&late_cpu_ns, cpu_work_thread_ns());
    return NULL;
}

static void *short_thread(void *arg)
{
    (void)arg;
    short_thread_fn();
    atomic_fetch_add(&short_cpu_ns, cpu_work_thread_ns());
    return NULL;
}

static _Atomic int go_pre;
static void *pre_existing_thread(void *arg)
{
    (void)arg;
    while (!atomic_load(&go_pre))
        usleep(1000);
    pre_existing_fn();
    return NULL;
}

static void *child_thread(void *arg)
{
    (void)arg;
    child_thread_fn();
    return NULL;
}

static void path(char *out, size_t n, const char *dir, const char *name)
{
    snprintf(out, n, "%s/%s", dir, name);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    char p[4096];
    iters_per_ms = cpu_work_calibrate(1000000);

    /* a: threads created after the start, long and short. */
    path(p, sizeof p, dir, "a.pprof");
    /* 250 Hz: each 5 ms thread then expects 1.25 samples, and the total
     * over 200 threads has a relative standard error of about 2.5%. */
    REQUIRE(mprof_cpu_start(p, 250) == 0, "%s", strerror(errno));
    pthread_t late;
    REQUIRE(pthread_create(&late, NULL, late_thread, NULL) == 0, "%s", strerror(errno));
    for (int i = 0; i < 100; i++) {
        pthread_t t1, t2;
        REQUIRE(pthread_create(&t1, NULL, short_thread, NULL) == 0, "%s", strerror(errno));
        REQUIRE(pthread_create(&t2, NULL, short_thread, NULL) == 0, "%s", strerror(errno));
        pthread_join(t1, NULL);
        pthread_join(t2, NULL);
    }
    pthread_join(late, NULL);
    REQUIRE(mprof_cpu_stop() == 0, "%s", strerror(errno));
    printf("late_cpu_ms %lld\nshort_cpu_ms %lld\n", (long long)(late_cpu_ns / 1000000),
           (long long)(short_cpu_ns / 1000000));

    /* b: stop, then start again, with a thread that exists already. */
    pthread_t pre;
    REQUIRE(pthread_create(&pre, NULL, pre_existing_thread, NULL) == 0, "%s", strerror(errno));
    path(p, sizeof p, dir, "b.pprof");
    REQUIRE(mprof_cpu_start(p, 0) == 0, "%s", strerror(errno));
    atomic_store(&go_pre, 1);
    restart_fn();
    pthread_join(pre, NULL);
    REQUIRE(mprof_cpu_stop() == 0, "%s", strerror(errno));

    /* c: fork while profiling. */
    path(p, sizeof p, dir, "c.pprof");
    REQUIRE(mprof_cpu_start(p, 0) == 0, "%s", strerror(errno));
    parent_fn();
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0, "%s", strerror(errno));
    if (pid == 0) {
        /* The child inherits no profile: stop has nothing to stop, and it
         * must not touch the parent's file. */
        errno = 0;
        if (mprof_cpu_stop() != -1 || errno != EINVAL) {
            fprintf(stderr, "child: mprof_cpu_stop did not fail with EINVAL\n");
            _exit(3);
        }
        child_fn();
        pthread_t t;
        if (pthread_create(&t, NULL, child_thread, NULL) != 0)
            _exit(4);
        pthread_join(t, NULL);
        /* A profile of its own works. */
        path(p, sizeof p, dir, "child.%p.pprof");
        if (mprof_cpu_start(p, 0) != 0) {
            perror("child: mprof_cpu_start");
            _exit(5);
        }
        child_fn();
        if (mprof_cpu_stop() != 0) {
            perror("child: mprof_cpu_stop");
            _exit(6);
        }
        printf("child done\n");
        exit(0);
    }
    parent_fn();
    int status;
    REQUIRE(waitpid(pid, &status, 0) == pid, "%s", strerror(errno));
    REQUIRE(mprof_cpu_stop() == 0, "%s", strerror(errno));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "child ended with status %#x\n", status);
        return 1;
    }
    printf("parent done\n");
    return 0;
}
