/*
 * Fork under load, the ways programs fork: the stress half of the fork
 * protocol's tests (core_fork_stress.sh runs it under LD_PRELOAD at the
 * default rate, at rate 1 and with headers off, bounded in time, and prints
 * every thread's stack if it hangs).  Knows nothing of mprof.
 *
 *   fork_stress threads SECONDS   worker threads allocate, free, realloc and
 *                                 use stdio (fprintf, fflush(NULL), getline
 *                                 from a pipe: the cycle glibc's fork.c
 *                                 warns of) while two threads fork; each
 *                                 child allocates, frees, flushes and exits
 *   fork_stress signal SECONDS    a timer signal at 2 kHz forks from its
 *                                 handler (the child leaves with _exit)
 *                                 while the main thread allocates, frees and
 *                                 forks too
 *   fork_stress vfork SECONDS     vfork + exec of /bin/true, and
 *   fork_stress spawn SECONDS     posix_spawn of /bin/true, while worker
 *                                 threads allocate
 *
 * Prints "forks N" (children started and reaped) and exits 0, or 1 when a
 * child failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KEEP(x) __asm__ volatile("" : : "r"(x) : "memory")
#define WORKERS 3

extern char **environ;

static _Atomic int stop;
static _Atomic long forks, failures;
static int pipe_fds[2];

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Allocation traffic of every size class glibc has, some blocks kept a
 * while so that frees of sampled blocks happen too. */
static void churn_once(void **keep, unsigned *seed)
{
    size_t size = (size_t)(rand_r(seed) % 4096) + 1;
    if (rand_r(seed) % 64 == 0)
        size = (size_t)(rand_r(seed) % (1 << 20)) + 65536;
    unsigned slot = (unsigned)rand_r(seed) % 64;
    void *p = malloc(size);
    KEEP(p);
    if (p != NULL)
        memset(p, 1, size < 64 ? size : 64);
    if (rand_r(seed) % 4 == 0 && p != NULL) {
        void *q = realloc(p, size * 2);
        if (q != NULL)
            p = q;
    }
    free(keep[slot]);
    keep[slot] = p;
}

static void *worker(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    void *keep[64] = {0};
    FILE *null = fopen("/dev/null", "w");
    FILE *in = fdopen(dup(pipe_fds[0]), "r");
    char *line = NULL;
    size_t cap = 0;
    long n = 0;
    while (!atomic_load(&stop)) {
        churn_once(keep, &seed);
        if (null != NULL && ++n % 16 == 0)
            fprintf(null, "%ld %p\n", n, keep[n % 64]);
        if (n % 256 == 0)
            fflush(NULL);
        /* getline reallocs inside stdio's lock: the thread glibc's
         * tst-malloc-fork-deadlock puts beside a fork. */
        if (in != NULL && (uintptr_t)arg == 1 && n % 8 == 0) {
            if (write(pipe_fds[1], "a line of text for getline to read\n", 35) == 35)
                (void)getline(&line, &cap, in);
        }
    }
    for (int i = 0; i < 64; i++)
        free(keep[i]);
    free(line);
    if (null != NULL)
        fclose(null);
    if (in != NULL)
        fclose(in);
    return NULL;
}

static void reap(pid_t pid)
{
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        atomic_fetch_add(&failures, 1);
        fprintf(stderr, "fork_stress: child %d ended with status %#x\n", (int)pid, status);
    }
    atomic_fetch_add(&forks, 1);
}

/* What a forked child does: allocate, free, print, flush, leave. */
static void child_work(void)
{
    unsigned seed = (unsigned)getpid();
    void *keep[64] = {0};
    for (int i = 0; i < 200; i++)
        churn_once(keep, &seed);
    for (int i = 0; i < 64; i++)
        free(keep[i]);
    char *s = NULL;
    if (asprintf(&s, "child %d\n", (int)getpid()) > 0)
        free(s);
    fflush(NULL);
}

static void *forker(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        pid_t pid = fork();
        if (pid == 0) {
            child_work();
            _exit(0);
        }
        if (pid > 0)
            reap(pid);
    }
    return NULL;
}

static void start_workers(pthread_t *t)
{
    for (int i = 0; i < WORKERS; i++)
        pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i + 1));
}

static void stop_workers(pthread_t *t)
{
    atomic_store(&stop, 1);
    for (int i = 0; i < WORKERS; i++)
        pthread_join(t[i], NULL);
}

static int mode_threads(double secs)
{
    pthread_t t[WORKERS], f[2];
    start_workers(t);
    for (int i = 0; i < 2; i++)
        pthread_create(&f[i], NULL, forker, NULL);
    double end = now() + secs;
    while (now() < end)
        usleep(10000);
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(f[i], NULL);
    stop_workers(t);
    return 0;
}

/* Children forked by the handler; reaped by the main thread. */
static _Atomic long handler_forks;

static void on_timer(int sig)
{
    (void)sig;
    int saved = errno;
    pid_t pid = fork();
    if (pid == 0)
        _exit(0); /* only async-signal-safe calls in a child forked here */
    if (pid > 0)
        atomic_fetch_add(&handler_forks, 1);
    errno = saved;
}

static int mode_signal(double secs)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_timer;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 500}, {0, 500}};
    setitimer(ITIMER_REAL, &it, NULL);
    unsigned seed = 7;
    void *keep[64] = {0};
    double end = now() + secs;
    long n = 0;
    while (now() < end) {
        churn_once(keep, &seed);
        if (++n % 2000 == 0) {
            pid_t pid = fork();
            if (pid == 0) {
                child_work();
                _exit(0);
            }
            if (pid > 0)
                reap(pid);
        }
        int status;
        pid_t done;
        while ((done = waitpid(-1, &status, WNOHANG)) > 0) {
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                atomic_fetch_add(&failures, 1);
            atomic_fetch_add(&forks, 1);
        }
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    for (int i = 0; i < 64; i++)
        free(keep[i]);
    int status;
    pid_t done;
    while ((done = wait(&status)) > 0 || (done < 0 && errno == EINTR)) {
        if (done < 0)
            continue;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            atomic_fetch_add(&failures, 1);
        atomic_fetch_add(&forks, 1);
    }
    fprintf(stderr, "fork_stress: %ld forks from the signal handler\n",
            atomic_load(&handler_forks));
    return 0;
}

static int mode_exec(double secs, int use_spawn)
{
    pthread_t t[WORKERS];
    start_workers(t);
    char *argv[] = {"/bin/true", NULL};
    double end = now() + secs;
    while (now() < end) {
        pid_t pid;
        if (use_spawn) {
            if (posix_spawn(&pid, argv[0], NULL, NULL, argv, environ) != 0)
                continue;
        } else {
            pid = vfork();
            if (pid == 0) {
                execve(argv[0], argv, environ);
                _exit(127);
            }
            if (pid < 0)
                continue;
        }
        reap(pid);
    }
    stop_workers(t);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: fork_stress threads|signal|vfork|spawn SECONDS\n");
        return 2;
    }
    double secs = atof(argv[2]);
    if (pipe(pipe_fds) != 0)
        return 2;
    int rc;
    if (strcmp(argv[1], "threads") == 0)
        rc = mode_threads(secs);
    else if (strcmp(argv[1], "signal") == 0)
        rc = mode_signal(secs);
    else if (strcmp(argv[1], "vfork") == 0)
        rc = mode_exec(secs, 0);
    else if (strcmp(argv[1], "spawn") == 0)
        rc = mode_exec(secs, 1);
    else
        return 2;
    printf("forks %ld\n", atomic_load(&forks));
    return rc != 0 || atomic_load(&failures) != 0;
}
