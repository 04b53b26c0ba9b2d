/*
 * The clock and the sleep of the contention test programs: monotonic
 * nanoseconds to measure a wait with, and a sleep that a signal does not
 * cut short, to hold a lock for a known time.
 */
#ifndef MPROF_TEST_CONTENTION_WAITS_H
#define MPROF_TEST_CONTENTION_WAITS_H

#include <errno.h>
#include <stdint.h>
#include <time.h>

static inline int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

#endif /* MPROF_TEST_CONTENTION_WAITS_H */
