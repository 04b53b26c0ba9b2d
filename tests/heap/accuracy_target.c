/*
 * Accuracy at the default sampling rate (512 KiB): sites with known totals,
 * large enough that the sampling error is small (the relative standard
 * error of a site is about sqrt((1 - p) / (n p)) for n blocks each sampled
 * with probability p = 1 - exp(-size / rate)):
 *
 *   small_blocks:   4 GiB in 4 Mi blocks of 1 KiB, freed      (~1.1% s.e.)
 *   large_blocks:   4 GiB in 16 Ki blocks of 256 KiB, freed   (~1.0%)
 *   mixed_blocks:   2 GiB in blocks of 1..64 KiB, freed       (~1.5%)
 *   retained:       1 GiB in 1 Ki blocks of 1 MiB, kept       (~1.3%)
 *
 * Freed memory is never touched beyond one byte and retained blocks are
 * mmap'ed by malloc and never touched, so the run needs little real memory.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static char *volatile sink;

__attribute__((noinline)) void small_blocks(void)
{
    for (long i = 0; i < 4L << 20; i++) {
        sink = malloc(1024);
        sink[0] = 1;
        free(sink);
    }
}

__attribute__((noinline)) void large_blocks(void)
{
    for (long i = 0; i < 16L << 10; i++) {
        sink = malloc(256 << 10);
        sink[0] = 1;
        free(sink);
    }
}

/* Sizes cycle deterministically through 1..64 KiB in 1 KiB steps: the
 * total is known exactly. */
__attribute__((noinline)) long mixed_blocks(void)
{
    long total = 0;
    for (long i = 0; total < 2L << 30; i++) {
        size_t n = (size_t)((i % 64) + 1) << 10;
        sink = malloc(n);
        sink[0] = 1;
        free(sink);
        total += (long)n;
    }
    return total;
}

static void *volatile retained_blocks[1024];

__attribute__((noinline)) void retained(void)
{
    for (int i = 0; i < 1024; i++)
        retained_blocks[i] = malloc(1 << 20);
}

int main(void)
{
    small_blocks();
    large_blocks();
    long mixed = mixed_blocks();
    retained();
    printf("mixed_total %ld\n", mixed);
    return 0;
}
