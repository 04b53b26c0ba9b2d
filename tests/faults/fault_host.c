/*
 * The host program of the fault tests (faults.sh): an ordinary program,
 * not linked with mprof, that puts the profiler in a bad situation and
 * checks that it keeps running.  Each mode ends by printing "host ok" and
 * exiting 0 when everything the host itself can see went right; the script
 * checks the rest (what mprof said, the files).  When preloaded, the
 * library's mprof_write_profile is found with dlsym, as a plugin would.
 *
 *   fds                      open descriptors until EMFILE, then allocate and
 *                            write a profile (which must fail cleanly)
 *   fdshold SECS             hold every descriptor for SECS, then give them back
 *   nomem                    impossible requests return NULL with ENOMEM; under
 *                            ulimit -v, allocate until malloc fails, 3 times
 *   rmdir DIR [SECS]         allocate, remove DIR (the output folder), allocate
 *                            on for SECS
 *   dlstorm LIB PATH SECS    2 threads dlopen/dlclose LIB and call into it while
 *                            main writes the heap profile to PATH again and again
 *   forkwrite PATH N         a thread writes profiles to PATH while main forks N
 *                            children that allocate and exit
 *   cputhreads SECS          waves of short-lived busy threads for SECS
 *   signals SECS             a storm of signals (kill, pthread_kill, sigqueue) at
 *                            allocating threads and at a thread writing profiles
 *   write PATH               write the heap profile to PATH, print its result
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef int (*write_fn)(const char *, const char *);

static write_fn writer(void)
{
    return (write_fn)dlsym(RTLD_DEFAULT, "mprof_write_profile");
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Allocation work with a known shape: a few live blocks, many freed. */
static void churn(int rounds)
{
    static __thread void *keep[64]; /* per thread: churn runs on several */
    for (int i = 0; i < rounds; i++) {
        void *p = malloc((size_t)(16 + (i % 97) * 8));
        if (p == NULL) {
            fprintf(stderr, "host: malloc failed in churn\n");
            exit(3);
        }
        memset(p, 1, 16);
        free(keep[i % 64]);
        keep[i % 64] = p;
    }
}

static int fail(const char *what)
{
    fprintf(stderr, "host: FAIL %s\n", what);
    return 1;
}

static int mode_fds(void)
{
    int n = 0;
    while (open("/dev/null", O_RDONLY) >= 0)
        n++;
    if (errno != EMFILE)
        return fail("open stopped for another reason than EMFILE");
    churn(20000);
    write_fn w = writer();
    if (w != NULL) {
        /* The profile cannot be written: no descriptor left.  The call
         * must say so by its return value, not crash or hang. */
        int rc = w("heap", "fds-explicit.pb.gz");
        printf("explicit write: %d (%s)\n", rc, rc < 0 ? strerror(-rc) : "ok");
    }
    printf("host held %d descriptors\n", n);
    printf("host ok\n");
    return 0;
}

/* All descriptors taken for secs seconds (a client of the HTTP server
 * waits in the listen backlog meanwhile), then given back. */
static int mode_fds_hold(double secs)
{
    int first = -1, fd, n = 0;
    while ((fd = open("/dev/null", O_RDONLY)) >= 0) {
        if (first < 0)
            first = fd;
        n++;
    }
    printf("holding %d descriptors\n", n);
    double end = now() + secs;
    while (now() < end) {
        churn(1000);
        usleep(10000);
    }
    for (int i = 0; i < n; i++)
        close(first + i);
    printf("released\n");
    usleep(1500000);
    printf("host ok\n");
    return 0;
}

static int expect_null(const char *what, void *p)
{
    if (p != NULL) {
        fprintf(stderr, "host: FAIL %s returned %p\n", what, p);
        return 1;
    }
    if (errno != ENOMEM) {
        fprintf(stderr, "host: FAIL %s: errno %d, not ENOMEM\n", what, errno);
        return 1;
    }
    return 0;
}

static int mode_nomem(void)
{
    int bad = 0;
    /* volatile: the compiler may not fold the impossible requests away. */
    volatile size_t huge = SIZE_MAX, half = SIZE_MAX / 2 + 1, edge = SIZE_MAX - 4095;
    errno = 0;
    bad += expect_null("malloc(SIZE_MAX)", malloc(huge));
    errno = 0;
    bad += expect_null("malloc(SIZE_MAX - 4095)", malloc(edge));
    errno = 0;
    bad += expect_null("calloc overflowing", calloc(half, 2));
    errno = 0;
    bad += expect_null("calloc(1, SIZE_MAX)", calloc(1, huge));
    /* A failed realloc leaves the block to its owner: still usable.  Kept
     * in a volatile so that the compiler does not take it for freed. */
    void *volatile r = malloc(100);
    errno = 0;
    bad += expect_null("realloc to SIZE_MAX", realloc(r, huge));
    memset(r, 2, 100);
    errno = 0;
    bad += expect_null("reallocarray overflowing", reallocarray(r, half, 2));
    free(r);
    errno = 0;
    bad += expect_null("aligned_alloc huge", aligned_alloc(4096, edge & ~(size_t)4095));
    errno = 0;
    bad += expect_null("memalign huge", memalign(64, edge));
    errno = 0;
    bad += expect_null("valloc huge", valloc(edge));
    errno = 0;
    bad += expect_null("pvalloc huge", pvalloc(edge));
    void *pm = (void *)1;
    int rc = posix_memalign(&pm, 64, edge);
    if (rc != ENOMEM)
        bad += fail("posix_memalign huge did not return ENOMEM");

    /* Under ulimit -v (the script sets one), the real limit: allocate
     * 1 MiB blocks until malloc says no, then give them back; three times,
     * so that mprof's state survives being out of memory repeatedly. */
    enum { MAXB = 1 << 16 };
    static void *blocks[MAXB];
    for (int round = 0; round < 3; round++) {
        int n = 0;
        while (n < MAXB && (blocks[n] = malloc(1 << 20)) != NULL) {
            memset(blocks[n], 3, 64);
            n++;
        }
        if (n == MAXB)
            return fail("no address-space limit: run under ulimit -v");
        /* Small requests when the big ones fail: NULL or a block, never a
         * crash; the host tolerates either. */
        for (int i = 0; i < 1000; i++)
            free(malloc((size_t)(i + 1)));
        for (int i = 0; i < n; i++)
            free(blocks[i]);
        printf("round %d: %d MiB before malloc failed\n", round, n);
    }
    churn(20000);
    if (bad)
        return 1;
    printf("host ok\n");
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static int mode_rmdir(const char *dir, double secs)
{
    churn(20000);
    /* Removed here, not by system("rm -rf"): the shell it starts would be
     * profiled too (it inherits LD_PRELOAD) and write its own profiles. */
    if (nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        return fail("removing the folder");
    struct stat st;
    if (stat(dir, &st) == 0)
        return fail("the folder is still there");
    /* Running on after it (periodic snapshots meet the missing folder). */
    double end = now() + secs;
    do
        churn(20000);
    while (now() < end);
    printf("host ok\n");
    return 0;
}

static atomic_int stop;

static void *dl_thread(void *arg)
{
    const char *lib = arg;
    long loops = 0;
    while (!atomic_load(&stop)) {
        void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
        if (h == NULL) {
            fprintf(stderr, "host: dlopen %s: %s\n", lib, dlerror());
            exit(4);
        }
        void *(*fn)(int) = (void *(*)(int))dlsym(h, "fault_lib_alloc");
        if (fn == NULL)
            exit(5);
        /* Blocks allocated from the library's code and freed after it is
         * gone: their stacks point into an unmapped object. */
        void *p = fn((int)(loops % 50));
        dlclose(h);
        free(p);
        loops++;
    }
    return (void *)loops;
}

static int mode_dlstorm(const char *lib, const char *path, double secs)
{
    write_fn w = writer();
    if (w == NULL)
        return fail("run with LD_PRELOAD=libmprof.so");
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, dl_thread, (void *)lib);
    int writes = 0, bad = 0;
    double end = now() + secs;
    while (now() < end) {
        int rc = w("heap", path);
        if (rc != 0) {
            fprintf(stderr, "host: write failed: %s\n", strerror(-rc));
            bad++;
        }
        writes++;
    }
    atomic_store(&stop, 1);
    long loops = 0;
    for (int i = 0; i < 2; i++) {
        void *r;
        pthread_join(t[i], &r);
        loops += (long)r;
    }
    printf("%d profiles written during %ld dlopen/dlclose\n", writes, loops);
    if (bad || writes < 2 || loops < 10)
        return fail("dlstorm");
    printf("host ok\n");
    return 0;
}

static const char *write_path;

static void *write_thread(void *arg)
{
    (void)arg;
    write_fn w = writer();
    long n = 0;
    while (!atomic_load(&stop)) {
        if (w(n % 3 ? "heap" : "threadcreate", write_path) != 0)
            exit(6);
        n++;
    }
    return (void *)n;
}

static int mode_forkwrite(const char *path, int children)
{
    if (writer() == NULL)
        return fail("run with LD_PRELOAD=libmprof.so");
    write_path = path;
    churn(5000);
    pthread_t t;
    pthread_create(&t, NULL, write_thread, NULL);
    int bad = 0;
    for (int i = 0; i < children; i++) {
        pid_t pid = fork();
        if (pid < 0)
            return fail("fork");
        if (pid == 0) {
            /* The child of a process that was writing a profile: its
             * locks must be usable, its allocator too. */
            churn(2000);
            _exit(0);
        }
        int status;
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "host: child %d ended with status %#x\n", i, status);
            bad++;
        }
    }
    atomic_store(&stop, 1);
    void *r;
    pthread_join(t, &r);
    printf("%d children forked during %ld profile writes\n", children, (long)r);
    if (bad)
        return 1;
    printf("host ok\n");
    return 0;
}

static void *busy_thread(void *arg)
{
    volatile double x = (double)(intptr_t)arg;
    double end = now() + 0.02;
    while (now() < end)
        for (int i = 0; i < 1000; i++)
            x = x * 1.0000001 + 1;
    free(malloc(64));
    return NULL;
}

static int mode_cputhreads(double secs)
{
    double end = now() + secs;
    long made = 0;
    while (now() < end) {
        pthread_t t[8];
        for (int i = 0; i < 8; i++) {
            if (pthread_create(&t[i], NULL, busy_thread, (void *)(intptr_t)i) != 0)
                return fail("pthread_create");
            /* Detached or joined: both ways of ending are exercised. */
            if (i % 2)
                pthread_detach(t[i]);
        }
        for (int i = 0; i < 8; i += 2)
            pthread_join(t[i], NULL);
        made += 8;
    }
    usleep(100000); /* the detached ones finish */
    printf("%ld threads came and went\n", made);
    printf("host ok\n");
    return 0;
}

static atomic_long handled;

static void on_signal(int sig)
{
    (void)sig;
    /* A host handler that allocates nothing but does touch errno-setting
     * calls, as real handlers do. */
    int e = errno;
    (void)getpid();
    atomic_fetch_add(&handled, 1);
    errno = e;
}

static void *alloc_thread(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop))
        churn(1000);
    return NULL;
}

static int mode_signals(const char *path, double secs)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    /* No SA_RESTART: every interrupted call of mprof's sees EINTR. */
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    sigaction(SIGALRM, &sa, NULL);
    sigaction(SIGCHLD, &sa, NULL);
    write_path = path;
    pthread_t t[3];
    pthread_create(&t[0], NULL, alloc_thread, NULL);
    pthread_create(&t[1], NULL, alloc_thread, NULL);
    int writing = writer() != NULL;
    if (writing)
        pthread_create(&t[2], NULL, write_thread, NULL);
    long sent = 0;
    double end = now() + secs;
    union sigval v = {.sival_int = 1};
    while (now() < end) {
        for (int i = 0; i < 100; i++) {
            kill(getpid(), SIGUSR1);
            pthread_kill(t[i % (writing ? 3 : 2)], i % 2 ? SIGUSR2 : SIGALRM);
            sigqueue(getpid(), SIGUSR2, v);
            sent += 3;
        }
        if (sent % 3000 == 0) {
            /* A child that exits at once: SIGCHLD too. */
            pid_t pid = fork();
            if (pid == 0)
                _exit(0);
            while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
            }
        }
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < (writing ? 3 : 2); i++)
        pthread_join(t[i], NULL);
    printf("%ld signals sent, %ld handled\n", sent, atomic_load(&handled));
    if (atomic_load(&handled) == 0)
        return fail("no signal handled");
    printf("host ok\n");
    return 0;
}

static int mode_write(const char *path)
{
    churn(20000);
    write_fn w = writer();
    if (w == NULL)
        return fail("run with LD_PRELOAD=libmprof.so");
    int rc = w("heap", path);
    printf("write: %d (%s)\n", rc, rc < 0 ? strerror(-rc) : "ok");
    churn(20000);
    printf("host ok\n");
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *m = argc > 1 ? argv[1] : "";
    if (!strcmp(m, "fds"))
        return mode_fds();
    if (!strcmp(m, "fdshold") && argc > 2)
        return mode_fds_hold(atof(argv[2]));
    if (!strcmp(m, "nomem"))
        return mode_nomem();
    if (!strcmp(m, "rmdir") && argc > 2)
        return mode_rmdir(argv[2], argc > 3 ? atof(argv[3]) : 0);
    if (!strcmp(m, "dlstorm") && argc > 4)
        return mode_dlstorm(argv[2], argv[3], atof(argv[4]));
    if (!strcmp(m, "forkwrite") && argc > 3)
        return mode_forkwrite(argv[2], atoi(argv[3]));
    if (!strcmp(m, "cputhreads") && argc > 2)
        return mode_cputhreads(atof(argv[2]));
    if (!strcmp(m, "signals") && argc > 3)
        return mode_signals(argv[2], atof(argv[3]));
    if (!strcmp(m, "write") && argc > 2)
        return mode_write(argv[2]);
    fprintf(stderr, "usage: fault_host MODE ARGS (see the comment at the top)\n");
    return 2;
}
