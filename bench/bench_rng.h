/*
 * The benchmarks' random numbers: xorshift64, fast and the same sequence
 * for a seed on every run, so that variants of a round do the same work.
 */
#ifndef MPROF_BENCH_RNG_H
#define MPROF_BENCH_RNG_H

#include <stdint.h>

static inline uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

#endif /* MPROF_BENCH_RNG_H */
