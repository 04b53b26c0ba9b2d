/*
 * A program whose live heap is known, for the heap-dump checks
 * (dump_check.sh).  Linked with libmprof; every allocation sampled.
 *
 *   dump_target write DUMP PROFILE   keep the blocks, then write a heap dump
 *                                    and a heap profile, back to back
 *   dump_target serve STOPFILE       keep the blocks and wait for STOPFILE
 *                                    (run with MPROF_HTTP=127.0.0.1:0)
 *
 * It keeps DUMP_KEPT blocks of 4096 bytes allocated in dump_keep_blocks
 * and three of 100 bytes in dump_keep_small, frees everything allocated in
 * dump_churn, and prints "kept 0xADDR" for each 4096-byte block.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mprof.h"

#define DUMP_KEPT 10

static void *kept[DUMP_KEPT];
static void *small[3];

__attribute__((noinline)) static void dump_keep_blocks(void)
{
    for (int i = 0; i < DUMP_KEPT; i++)
        kept[i] = malloc(4096); /* LINE:dump_keep */
}

__attribute__((noinline)) static void dump_keep_small(void)
{
    for (int i = 0; i < 3; i++)
        small[i] = malloc(100);
}

__attribute__((noinline)) static void dump_churn(void)
{
    for (int i = 0; i < 1000; i++) {
        char *volatile p = malloc(64 + (size_t)(i % 7) * 16);
        p[0] = 1;
        free(p);
    }
}

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 3) {
        fprintf(stderr, "usage: dump_target write DUMP PROFILE | serve STOPFILE\n");
        return 2;
    }
    /* Every allocation from here on; the calling thread switches at once. */
    mprof_set_rate(1);
    /* stdout's buffer is allocated by the first printf: do it before the
     * known blocks so that it is not mistaken for one of them. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("dump_target pid %d\n", (int)getpid());
    dump_keep_blocks();
    dump_keep_small();
    dump_churn();
    for (int i = 0; i < DUMP_KEPT; i++)
        printf("kept %p\n", kept[i]);

    if (strcmp(argv[1], "write") == 0 && argc == 4) {
        /* Nothing allocates between the two writes (the profiler's own
         * allocations are not sampled): the same moment for both. */
        int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || mprof_write_heap_dump(fd) != 0 || close(fd) != 0) {
            perror("heap dump");
            return 1;
        }
        if (mprof_write_heap_profile(argv[3]) != 0) {
            perror("heap profile");
            return 1;
        }
        printf("written\n");
    } else if (strcmp(argv[1], "serve") == 0) {
        printf("serving\n");
        while (access(argv[2], F_OK) != 0)
            usleep(20000);
    } else {
        fprintf(stderr, "dump_target: unknown mode %s\n", argv[1]);
        return 2;
    }
    for (int i = 0; i < DUMP_KEPT; i++)
        free(kept[i]);
    for (int i = 0; i < 3; i++)
        free(small[i]);
    return 0;
}
