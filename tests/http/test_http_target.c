/*
 * A long-running program for the live-profiling tests: it allocates and
 * burns CPU in functions with recognisable names, prints a progress line
 * every 100 ms (the tests check that it keeps running while the server is
 * attacked), and exits when a stop file appears or after a time limit.
 *
 *   test_http_target [--seconds N] [--stop-file PATH] [--fork-child]
 *
 * --fork-child forks once at start; the child keeps running (allocating,
 * silent) until the same stop file or limit.  The tests use it to check
 * that a child neither serves HTTP nor keeps the parent's port.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RETAINED_BLOCKS 256
#define RETAINED_SIZE (64 * 1024)

static void *retained[RETAINED_BLOCKS];
static int nretained;
static volatile unsigned long sink;

/* Live heap that grows to RETAINED_BLOCKS * 64 KiB and stays: "heap". */
__attribute__((noinline)) static void http_target_grow_heap(void)
{
    if (nretained < RETAINED_BLOCKS) {
        char *p = malloc(RETAINED_SIZE);
        if (p != NULL) {
            memset(p, 1, RETAINED_SIZE);
            retained[nretained++] = p;
        }
    }
}

/* Short-lived blocks: in "allocs", not in "heap". */
__attribute__((noinline)) static void http_target_churn(void)
{
    for (int i = 0; i < 200; i++) {
        char *p = malloc(4096 + (size_t)(i % 7) * 16);
        if (p != NULL) {
            p[0] = (char)i;
            sink += (unsigned char)p[0];
            free(p);
        }
    }
}

/* Pure CPU for "profile". */
__attribute__((noinline)) static void http_target_burn_cpu(long iterations)
{
    unsigned long x = sink | 1;
    for (long i = 0; i < iterations; i++)
        x = x * 6364136223846793005UL + 1442695040888963407UL;
    sink = x;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void run(double limit_s, const char *stop_file, int print)
{
    double start = now_s();
    unsigned long step = 0;
    while (now_s() - start < limit_s) {
        if (stop_file != NULL && access(stop_file, F_OK) == 0)
            break;
        double t0 = now_s();
        http_target_grow_heap();
        http_target_churn();
        /* About half of each 100 ms step on the CPU. */
        while (now_s() - t0 < 0.05)
            http_target_burn_cpu(200000);
        if (print) {
            printf("progress %lu\n", ++step);
            fflush(stdout);
        }
        double rest = 0.1 - (now_s() - t0);
        if (rest > 0) {
            struct timespec ts = {0, (long)(rest * 1e9)};
            nanosleep(&ts, NULL);
        }
    }
}

int main(int argc, char **argv)
{
    double limit_s = 120;
    const char *stop_file = NULL;
    int fork_child = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            limit_s = atof(argv[++i]);
        else if (strcmp(argv[i], "--stop-file") == 0 && i + 1 < argc)
            stop_file = argv[++i];
        else if (strcmp(argv[i], "--fork-child") == 0)
            fork_child = 1;
        else {
            fprintf(stderr, "usage: %s [--seconds N] [--stop-file PATH] [--fork-child]\n", argv[0]);
            return 2;
        }
    }
    if (fork_child) {
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            run(limit_s, stop_file, 0);
            _exit(0);
        }
        printf("child %d\n", (int)pid);
        fflush(stdout);
    }
    run(limit_s, stop_file, 1);
    printf("done\n");
    fflush(stdout);
    return 0;
}
