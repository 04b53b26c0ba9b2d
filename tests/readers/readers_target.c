/*
 * A program that gives every profile kind something to show: heap blocks
 * kept and freed young (heap, allocs, peak, lifetime, heapdump), CPU burnt
 * in named functions (profile), threads waiting on one contended mutex
 * (block, mutex), threads created on the way (threadcreate) and threads
 * alive to be listed (goroutine, threads).
 *
 *   readers_target --seconds N --stop-file PATH
 *
 * Prints "ready" once every kind has had events, then runs until PATH
 * exists or N seconds have passed; a short peak of 8 MiB held and freed
 * early makes the peak profile differ from the heap at exit.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WORKERS 3
#define KEPT 64

static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
static volatile unsigned long sink;
static volatile int stop;
static void *kept[WORKERS][KEPT];

__attribute__((noinline)) static void readers_burn_cpu(long n)
{
    unsigned long x = sink | 1;
    for (long i = 0; i < n; i++)
        x = x * 6364136223846793005UL + 1442695040888963407UL;
    sink = x;
}

/* Holds the lock while burning CPU, so the other workers wait for it. */
__attribute__((noinline)) static void readers_contend(void)
{
    pthread_mutex_lock(&shared_lock);
    readers_burn_cpu(20000);
    pthread_mutex_unlock(&shared_lock);
}

/* Blocks freed at once (allocs, lifetime) and blocks kept (heap). */
__attribute__((noinline)) static void readers_allocate(int worker, unsigned long round)
{
    for (int i = 0; i < 32; i++) {
        char *p = malloc(1024 + (size_t)i * 64);
        if (p != NULL) {
            p[0] = (char)i;
            sink += (unsigned char)p[0];
        }
        free(p);
    }
    int slot = (int)(round % KEPT);
    free(kept[worker][slot]);
    kept[worker][slot] = malloc(16384);
    if (kept[worker][slot] != NULL)
        memset(kept[worker][slot], 1, 16384);
}

static void *readers_worker(void *arg)
{
    int worker = (int)(long)arg;
    for (unsigned long round = 0; !stop; round++) {
        readers_contend();
        readers_allocate(worker, round);
    }
    return NULL;
}

__attribute__((noinline)) static void *readers_short_thread(void *arg)
{
    readers_burn_cpu(1000);
    return arg;
}

/* The leak: blocks whose pointers are dropped, so the leaks profile has
 * samples (readers_peak, called next, overwrites this frame's stack). */
__attribute__((noinline)) static void readers_leak(void)
{
    for (int i = 0; i < 8; i++) {
        char *volatile p = malloc(65536);
        if (p != NULL)
            memset(p, 3, 65536);
        p = NULL;
    }
}

/* The peak: 8 MiB held together for a moment, then freed. */
__attribute__((noinline)) static void readers_peak(void)
{
    enum { N = 128 };
    void *blocks[N];
    for (int i = 0; i < N; i++) {
        blocks[i] = malloc(65536);
        if (blocks[i] != NULL)
            memset(blocks[i], 2, 65536);
    }
    for (int i = 0; i < N; i++)
        free(blocks[i]);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    double seconds = 60;
    const char *stop_file = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--seconds") == 0)
            seconds = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--stop-file") == 0)
            stop_file = argv[i + 1];
    }
    readers_leak();
    readers_peak();
    pthread_t workers[WORKERS];
    for (long i = 0; i < WORKERS; i++)
        pthread_create(&workers[i], NULL, readers_worker, (void *)i);
    double start = now();
    int said_ready = 0;
    while (now() - start < seconds && (stop_file == NULL || access(stop_file, F_OK) != 0)) {
        pthread_t t;
        if (pthread_create(&t, NULL, readers_short_thread, NULL) == 0)
            pthread_join(t, NULL);
        readers_burn_cpu(200000);
        if (!said_ready && now() - start > 0.5) {
            printf("ready\n");
            fflush(stdout);
            said_ready = 1;
        }
        usleep(10000);
    }
    stop = 1;
    for (int i = 0; i < WORKERS; i++)
        pthread_join(workers[i], NULL);
    return 0;
}
