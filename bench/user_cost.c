/*
 * Helper of bench/user_cost_bench.sh: a plain program (it does not link
 * libmprof; what it asks of the profiler it finds with dlsym, so it also
 * runs unprofiled) with three modes.
 *
 *   user_cost write BLOCKS WRITES
 *       Allocates BLOCKS blocks (16 B..4 KiB) from 36 distinct call stacks
 *       (6 leaf functions at 6 recursion depths), then writes the heap
 *       profile to /dev/null WRITES times with mprof_write_heap_profile_fd,
 *       printing "write I MS" for each; then, five times each, one block
 *       from a call stack not seen before and a write: through a function
 *       of this program not called before ("newown I MS"), or allocated
 *       inside the C library ("newlibc I MS").  Run it with MPROF_RATE=1
 *       so that every block is in the profile.  Output is buffered (a
 *       static stdout buffer): printing allocates nothing.
 *
 *   user_cost serve BLOCKS SECONDS
 *       The same blocks, then prints "ready" and sleeps (at most SECONDS)
 *       until killed: a live process for MPROF_HTTP to serve.
 *
 *   user_cost mem live N SIZE
 *   user_cost mem churn THREADS OPS LIVE
 *       N live blocks of SIZE bytes, or bench/heap_churn's workload (same
 *       sizes and random sequence) stopped before its final frees, so that
 *       the blocks are still live.  Prints one line of key=value: the
 *       profiler's statistics (mprof_stats_read) at start and at the end,
 *       the C library's heap in use at start and at the end (mallinfo2:
 *       arena + mmapped chunks),
 *       and VmRSS / VmHWM from /proc/self/status.
 */
#define _GNU_SOURCE /* asprintf */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_rng.h"
#include "mprof.h"

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* ---------------------------------------------------- distinct stacks */

/* Built with -fno-optimize-sibling-calls (user_cost.cmake): every level of
 * the recursion stays a frame of its own. */
static volatile uintptr_t sink;

#define LEAF(n)                                                                                \
    __attribute__((noinline)) static void *leaf##n(size_t size)                                \
    {                                                                                          \
        char *p = malloc(size);                                                                \
        if (p) {                                                                               \
            p[0] = (char)n;                                                                    \
            p[size - 1] = (char)n;                                                             \
        }                                                                                      \
        sink += (uintptr_t)p & 1;                                                              \
        return p;                                                                              \
    }
LEAF(0)
LEAF(1)
LEAF(2)
LEAF(3)
LEAF(4)
LEAF(5)
/* Called only after the first writes: addresses new to the profile. */
LEAF(6)
LEAF(7)
LEAF(8)
LEAF(9)
LEAF(10)
static void *(*const leaves[11])(size_t) = {leaf0, leaf1, leaf2, leaf3, leaf4, leaf5,
                                            leaf6, leaf7, leaf8, leaf9, leaf10};

__attribute__((noinline)) static void *descend(int depth, int leaf, size_t size)
{
    void *p = depth == 0 ? leaves[leaf](size) : descend(depth - 1, leaf, size);
    sink += (uintptr_t)p & 1;
    return p;
}

static void **allocate_blocks(long n)
{
    void **blocks = calloc((size_t)n, sizeof *blocks);
    uint64_t rng = 0x2545F4914F6CDD1Dull;
    for (long i = 0; i < n; i++) {
        int stack = (int)(i % 36);
        size_t size = 16 + (size_t)(xorshift(&rng) % 4081);
        blocks[i] = descend(stack / 6, stack % 6, size);
    }
    return blocks;
}

/* A block allocated inside the C library, from a call site there that no
 * profile has had yet (libc's own addresses: its debug information is the
 * large one to read). */
__attribute__((noinline)) static void *libc_block(int k)
{
    char *p = NULL;
    switch (k) {
    case 0: p = strdup("user_cost: strdup"); break;
    case 1: p = strndup("user_cost: strndup", 12); break;
    case 2: if (asprintf(&p, "user_cost: %d", k) < 0) p = NULL; break;
    case 3: p = (char *)fopen("/dev/null", "r"); break;
    default: p = realpath("/dev/null", NULL); break;
    }
    sink += (uintptr_t)p & 1;
    return p;
}

/* One timed write to fd; -1 on failure. */
static double timed_write(int (*write_fd)(int), int fd)
{
    double t0 = now_ms();
    int rc = write_fd(fd);
    double t1 = now_ms();
    if (rc != 0) {
        fprintf(stderr, "user_cost: profile write failed: %s\n", strerror(errno));
        return -1;
    }
    return t1 - t0;
}

static int mode_write(long nblocks, int writes)
{
    int (*write_fd)(int) = (int (*)(int))dlsym(RTLD_DEFAULT, "mprof_write_heap_profile_fd");
    if (!write_fd) {
        fprintf(stderr, "user_cost: mprof_write_heap_profile_fd not found (not under libmprof?)\n");
        return 2;
    }
    void **blocks = allocate_blocks(nblocks);
    int fd = open("/dev/null", O_WRONLY);
    if (fd < 0) {
        perror("user_cost: /dev/null");
        return 2;
    }
    for (int i = 0; i < writes; i++) {
        double ms = timed_write(write_fd, fd);
        if (ms < 0)
            return 1;
        printf("write %d %.3f\n", i, ms);
    }
    /* What a long-running program pays: a write after it has allocated
     * from a call stack the profile has not had yet, with an address not
     * symbolized yet: in its own code (a function not called before), or
     * inside the C library.  Five of each, one new stack per write. */
    for (int i = 0; i < 5; i++) {
        void *p = descend(i, 6 + i, 64);
        double ms = timed_write(write_fd, fd);
        if (ms < 0)
            return 1;
        printf("newown %d %.3f\n", i, ms);
        sink += (uintptr_t)p & 1;
    }
    for (int i = 0; i < 5; i++) {
        void *p = libc_block(i);
        double ms = timed_write(write_fd, fd);
        if (ms < 0)
            return 1;
        printf("newlibc %d %.3f\n", i, ms);
        sink += (uintptr_t)p & 1;
    }
    close(fd);
    sink += (uintptr_t)blocks[0] & 1;
    return 0;
}

static int mode_serve(long nblocks, int seconds)
{
    void **blocks = allocate_blocks(nblocks);
    sink += (uintptr_t)blocks[0] & 1;
    printf("ready\n");
    fflush(stdout);
    /* Killed by the script once it has scraped; the bound is for a script
     * that died first. */
    for (int i = 0; i < seconds * 10; i++) {
        struct timespec d = {0, 100000000};
        nanosleep(&d, NULL);
    }
    return 0;
}

/* ---------------------------------------------------- memory */

struct stats_snap {
    mprof_stats st;
    int have;
};

static void read_stats(struct stats_snap *s)
{
    int (*rd)(void *, size_t) = (int (*)(void *, size_t))dlsym(RTLD_DEFAULT, "mprof_stats_read");
    memset(s, 0, sizeof *s);
    s->have = rd && rd(&s->st, sizeof s->st) == 0;
}

static long status_kb(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(key);
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, n) == 0 && line[n] == ':') {
            v = atol(line + n + 1);
            break;
        }
    fclose(f);
    return v;
}

/* bench/heap_churn.c's workload, without the final frees. */
static long churn_ops = 1000000;
static int churn_live = 4096;
static char **churn_sets[64];

static size_t random_size(uint64_t *rng)
{
    double u = (double)(xorshift(rng) >> 11) / 9007199254740992.0;
    size_t s = (size_t)(8.0 * __builtin_exp2(15.0 * u));
    return s < 8 ? 8 : s;
}

static void *churn(void *arg)
{
    uintptr_t t = (uintptr_t)arg;
    uint64_t rng = 0x9E3779B97F4A7C15ull * (t + 1);
    char **live = churn_sets[t];
    for (long i = 0; i < churn_ops; i++) {
        int k = (int)(xorshift(&rng) % (uint64_t)churn_live);
        free(live[k]);
        size_t n = random_size(&rng);
        live[k] = malloc(n);
        live[k][0] = (char)i;
        live[k][n - 1] = (char)i;
    }
    return NULL;
}

static int mode_mem(int argc, char **argv)
{
    struct stats_snap s0, s1;
    read_stats(&s0);
    struct mallinfo2 mi0 = mallinfo2();
    if (argc >= 5 && strcmp(argv[2], "live") == 0) {
        long n = atol(argv[3]);
        size_t size = (size_t)atol(argv[4]);
        char **blocks = malloc((size_t)n * sizeof *blocks);
        for (long i = 0; i < n; i++) {
            blocks[i] = malloc(size);
            memset(blocks[i], (int)i, size);
        }
        sink += (uintptr_t)blocks[n - 1] & 1;
    } else if (argc >= 6 && strcmp(argv[2], "churn") == 0) {
        int threads = atoi(argv[3]);
        churn_ops = atol(argv[4]);
        churn_live = atoi(argv[5]);
        if (threads < 1 || threads > 64 || churn_live < 1)
            return 2;
        pthread_t tids[64];
        for (int i = 0; i < threads; i++)
            churn_sets[i] = calloc((size_t)churn_live, sizeof(char *));
        for (int i = 0; i < threads; i++)
            pthread_create(&tids[i], NULL, churn, (void *)(uintptr_t)i);
        for (int i = 0; i < threads; i++)
            pthread_join(tids[i], NULL);
    } else {
        fprintf(stderr, "usage: user_cost mem live N SIZE | mem churn THREADS OPS LIVE\n");
        return 2;
    }
    read_stats(&s1);
    struct mallinfo2 mi = mallinfo2();
    printf("profiled=%d headers=%d prof_bytes0=%zu prof_bytes=%zu live0=%zu live=%zu buckets=%zu "
           "samples=%llu dropped=%llu heap0=%zu heap=%zu rss_kb=%ld hwm_kb=%ld\n",
           s1.have, s1.st.block_headers, s0.st.profiler_bytes, s1.st.profiler_bytes,
           s0.st.live_samples, s1.st.live_samples, s1.st.buckets,
           (unsigned long long)s1.st.samples_taken, (unsigned long long)s1.st.samples_dropped,
           mi0.uordblks + mi0.hblkhd, mi.uordblks + mi.hblkhd, status_kb("VmRSS"), status_kb("VmHWM"));
    return 0;
}

int main(int argc, char **argv)
{
    /* stdout's buffer allocated now, not at the first printf: that would
     * be a new call stack for the next profile write to symbolize. */
    static char outbuf[4096];
    setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
    if (argc >= 4 && strcmp(argv[1], "write") == 0)
        return mode_write(atol(argv[2]), atoi(argv[3]));
    if (argc >= 4 && strcmp(argv[1], "serve") == 0)
        return mode_serve(atol(argv[2]), atoi(argv[3]));
    if (argc >= 2 && strcmp(argv[1], "mem") == 0)
        return mode_mem(argc, argv);
    fprintf(stderr, "usage: user_cost write BLOCKS WRITES | serve BLOCKS SECONDS | mem ...\n");
    return 2;
}
