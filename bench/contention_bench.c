/*
 * Uncontended lock/unlock cost, for bench/contention_bench.sh: one thread
 * takes and releases a pthread mutex, then a rwlock (read side), N times
 * each, and prints the mean nanoseconds per lock+unlock pair.  The same
 * unmodified binary is run plain and under libmprof.
 *
 * usage: contention_bench N
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* noinline and volatile pointers: the compiler must make every call. */
__attribute__((noinline)) static double bench_mutex(pthread_mutex_t *volatile m, long n)
{
    double t0 = now_ns();
    for (long i = 0; i < n; i++) {
        pthread_mutex_lock(m);
        pthread_mutex_unlock(m);
    }
    return (now_ns() - t0) / (double)n;
}

__attribute__((noinline)) static double bench_rwlock(pthread_rwlock_t *volatile l, long n)
{
    double t0 = now_ns();
    for (long i = 0; i < n; i++) {
        pthread_rwlock_rdlock(l);
        pthread_rwlock_unlock(l);
    }
    return (now_ns() - t0) / (double)n;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 20000000;
    static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    static pthread_rwlock_t l = PTHREAD_RWLOCK_INITIALIZER;
    /* Warm-up: resolve the PLT entries and fault in everything. */
    bench_mutex(&m, n / 20);
    bench_rwlock(&l, n / 20);
    double mu = bench_mutex(&m, n);
    double rw = bench_rwlock(&l, n);
    printf("%.2f %.2f\n", mu, rw);
    return 0;
}
