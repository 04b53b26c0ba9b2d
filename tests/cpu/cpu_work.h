/*
 * Shared helpers of the CPU profiler tests: CPU burners whose cost is set by
 * an iteration count (not by time, so that what a function costs does not
 * depend on where the samples fall), and thread-CPU clocks.
 */
#ifndef MPROF_TEST_CPU_WORK_H
#define MPROF_TEST_CPU_WORK_H

#include <stdint.h>
#include <time.h>

/* A dependent chain of multiply/xorshift steps: no vectorization, no
 * memory traffic, a steady cost per iteration.  The asm barrier keeps the
 * compiler from computing the result in closed form or hoisting it. */
static inline uint64_t cpu_work_spin(uint64_t x, long iters)
{
    for (long i = 0; i < iters; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x *= 0x9e3779b97f4a7c15ULL;
        __asm__ volatile("" : "+r"(x));
    }
    return x;
}

static inline int64_t cpu_work_thread_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Iterations that take about ns of CPU on this machine. */
static inline long cpu_work_calibrate(int64_t ns)
{
    long iters = 100000;
    for (;;) {
        int64_t t0 = cpu_work_thread_ns();
        (void)cpu_work_spin(t0, iters);
        int64_t dt = cpu_work_thread_ns() - t0;
        if (dt > 20000000)
            return (long)((double)iters * (double)ns / (double)dt) + 1;
        iters *= 2;
    }
}

#endif
