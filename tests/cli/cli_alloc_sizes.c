/*
 * A program whose heap is given on its command line, for the merge and
 * diff tests: cli_alloc_sizes GROW SHRINK keeps GROW KiB allocated in
 * grow_site(), SHRINK KiB in shrink_site() and 512 KiB in steady_site(),
 * in 1 KiB blocks, until it exits (where the heap profile is written).
 * Two runs with the sizes swapped give a diff whose truth is known: one
 * site grew by exactly what the other shrank, and one did not change.
 */
#include <stdio.h>
#include <stdlib.h>

static void *volatile keep[1 << 16];
static size_t nkeep;

__attribute__((noinline)) static void grow_site(long kib)
{
    for (long i = 0; i < kib; i++)
        keep[nkeep++] = malloc(1024);
}

__attribute__((noinline)) static void shrink_site(long kib)
{
    for (long i = 0; i < kib; i++)
        keep[nkeep++] = malloc(1024);
}

__attribute__((noinline)) static void steady_site(void)
{
    for (long i = 0; i < 512; i++)
        keep[nkeep++] = malloc(1024);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: cli_alloc_sizes GROW_KIB SHRINK_KIB\n");
        return 2;
    }
    long grow = atol(argv[1]), shrink = atol(argv[2]);
    if (grow < 0 || shrink < 0 || grow + shrink + 512 > (long)(sizeof keep / sizeof keep[0])) {
        fprintf(stderr, "cli_alloc_sizes: sizes from 0 to 65000 KiB in all\n");
        return 2;
    }
    grow_site(grow);
    shrink_site(shrink);
    steady_site();
    printf("kept %zu blocks\n", nkeep);
    return 0;
}
