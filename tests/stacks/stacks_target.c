/*
 * All-thread stacks with known truth, for stacks_all.sh.  Linked with
 * libmprof (it calls mprof_stack and mprof_write_goroutine_profile_fd).
 *
 * usage: stacks_target OUTDIR
 *
 * Threads:
 *   "parked"      blocked in read() on a pipe inside parked_in_known_function
 *   "sigblocker"  blocks every signal it can, then waits on the same pipe
 *   4 x "pool"    identical workers parked in pool_worker_waits (one stack,
 *                 count 4 in the count profile)
 *   "sleeper"     in one 3-second nanosleep(), which a signal handler would cut
 *                 short with EINTR: must sleep undisturbed
 *   "traced"      blocked in read() on another pipe and (when ptrace works
 *                 here) stopped by a child that attaches to it with
 *                 PTRACE_SEIZE + PTRACE_INTERRUPT: it is signalled but cannot
 *                 answer, so the collector must time out, then read its
 *                 stack from outside
 *
 * Writes OUTDIR/self.txt (mprof_stack(.., 0)), OUTDIR/all.txt
 * (mprof_stack(.., 1)), OUTDIR/goroutine.pb.gz, OUTDIR/goroutine.1.txt,
 * OUTDIR/goroutine.2.txt, and prints how long the collections took.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mprof.h"

static int pipe_fds[2];
static volatile pid_t traced_tid;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

__attribute__((noinline)) static void parked_in_known_function(void)
{
    char c;
    /* SA_RESTART: the profiler's signal must not make this return. */
    ssize_t n = read(pipe_fds[0], &c, 1); /* LINE:parked_read */
    if (n != 1)
        fprintf(stderr, "parked: read returned %zd (%s)\n", n, strerror(errno));
}

static void *parked_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "parked");
    parked_in_known_function();
    return NULL;
}

__attribute__((noinline)) static void sigblocker_waits(void)
{
    char c;
    if (read(pipe_fds[0], &c, 1) != 1)
        fprintf(stderr, "sigblocker: read failed\n");
}

static void *sigblocker_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "sigblocker");
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    sigblocker_waits();
    return NULL;
}

/* One nanosleep, not retried: a signal handler would make it fail with
 * EINTR, so it must never be signalled. */
static int sleeper_rc = -2;

__attribute__((noinline)) static void sleeper_in_nanosleep(void)
{
    struct timespec ts = {3, 0};
    sleeper_rc = nanosleep(&ts, NULL);
    if (sleeper_rc != 0)
        fprintf(stderr, "sleeper: nanosleep: %s\n", strerror(errno));
}

static void *sleeper_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "sleeper");
    sleeper_in_nanosleep();
    return NULL;
}

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_cond = PTHREAD_COND_INITIALIZER;
static int pool_stop;

__attribute__((noinline)) static void pool_worker_waits(void)
{
    pthread_mutex_lock(&pool_lock);
    while (!pool_stop)
        pthread_cond_wait(&pool_cond, &pool_lock);
    pthread_mutex_unlock(&pool_lock);
}

static void *pool_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "pool");
    pool_worker_waits();
    return NULL;
}

static int traced_pipe[2];

/* Blocked in read(), which a signal does not disturb (SA_RESTART): the
 * collector signals it, and since ptrace holds it stopped it cannot answer. */
__attribute__((noinline)) static void traced_thread_waits(void)
{
    char c;
    while (read(traced_pipe[0], &c, 1) < 0 && errno == EINTR)
        ;
}

static void *traced_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "traced");
    traced_tid = (pid_t)syscall(SYS_gettid);
    traced_thread_waits();
    return NULL;
}

/* Stops thread tid with ptrace from a child; returns the child's pid (kill
 * it to let the thread go), or -1 if ptrace is not allowed here. */
static pid_t stop_with_ptrace(pid_t tid)
{
    int ready[2];
    if (pipe(ready) != 0)
        return -1;
    prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
    pid_t child = fork();
    if (child < 0)
        return -1;
    if (child == 0) {
        char ok = 0;
        if (ptrace(PTRACE_SEIZE, tid, NULL, NULL) == 0 &&
            ptrace(PTRACE_INTERRUPT, tid, NULL, NULL) == 0) {
            int status;
            if (waitpid(tid, &status, __WALL) == tid)
                ok = 1;
        }
        (void)!write(ready[1], &ok, 1);
        if (!ok)
            _exit(1);
        for (;;)
            pause(); /* holds the thread stopped until killed */
    }
    close(ready[1]);
    char ok = 0;
    if (read(ready[0], &ok, 1) != 1 || !ok) {
        close(ready[0]);
        waitpid(child, NULL, 0);
        return -1;
    }
    close(ready[0]);
    return child;
}

__attribute__((noinline)) static int stack_caller_function(char *buf, size_t len, int all)
{
    return mprof_stack(buf, len, all); /* LINE:stack_caller */
}

static int write_file(const char *dir, const char *name, const char *text, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    fwrite(text, 1, len, f);
    fclose(f);
    return 0;
}

static int write_profile(const char *dir, const char *name, int debug)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return -1;
    int rc = mprof_write_goroutine_profile_fd(fd, debug);
    close(fd);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    if (pipe(pipe_fds) != 0 || pipe(traced_pipe) != 0)
        return 1;
    pthread_t parked, blocker, pool[4], traced, sleeper;
    pthread_create(&parked, NULL, parked_main, NULL);
    pthread_create(&blocker, NULL, sigblocker_main, NULL);
    for (int i = 0; i < 4; i++)
        pthread_create(&pool[i], NULL, pool_main, NULL);
    pthread_create(&traced, NULL, traced_main, NULL);
    pthread_create(&sleeper, NULL, sleeper_main, NULL);
    /* Let every thread reach its parking place. */
    struct timespec settle = {0, 200 * 1000000L};
    nanosleep(&settle, NULL);

    pid_t tracer = stop_with_ptrace(traced_tid);
    printf("ptrace_stop %s\n", tracer > 0 ? "yes" : "no");

    /* The buffer-size contract: truncation is safe and NUL-terminated. */
    char tiny[16];
    memset(tiny, 'x', sizeof tiny);
    int n = stack_caller_function(tiny, sizeof tiny, 0);
    printf("tiny %d %s\n", n, (n == (int)sizeof tiny - 1 && tiny[n] == '\0') ? "ok" : "bad");

    static char buf[1 << 20];
    n = stack_caller_function(buf, sizeof buf, 0);
    write_file(dir, "self.txt", buf, (size_t)n);

    double t0 = now_ms();
    n = stack_caller_function(buf, sizeof buf, 1);
    double t1 = now_ms();
    write_file(dir, "all.txt", buf, (size_t)n);
    printf("all_ms %.0f\n", t1 - t0);

    t0 = now_ms();
    int rc = write_profile(dir, "goroutine.2.txt", 2) | write_profile(dir, "goroutine.pb.gz", 0) |
             write_profile(dir, "goroutine.1.txt", 1);
    t1 = now_ms();
    printf("profiles_ms %.0f rc %d\n", t1 - t0, rc);

    if (tracer > 0) {
        kill(tracer, SIGKILL);
        waitpid(tracer, NULL, 0);
    }
    (void)!write(traced_pipe[1], "t", 1);
    pthread_join(traced, NULL);
    /* Release everyone and check that the parked read still works (it was
     * interrupted by the profiler's signals and restarted). */
    (void)!write(pipe_fds[1], "ab", 2);
    pthread_join(parked, NULL);
    pthread_join(blocker, NULL);
    pthread_mutex_lock(&pool_lock);
    pool_stop = 1;
    pthread_cond_broadcast(&pool_cond);
    pthread_mutex_unlock(&pool_lock);
    for (int i = 0; i < 4; i++)
        pthread_join(pool[i], NULL);
    pthread_join(sleeper, NULL);
    printf("sleeper rc=%d\n", sleeper_rc);
    printf("done\n");
    return rc != 0;
}
