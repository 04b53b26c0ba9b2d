/*
 * Threads created from two known sites, for threads_create.sh: 7 from
 * create_from_site_a, 3 from create_from_site_b (and one std-free helper
 * thread that is not created at all: the main thread).  Knows nothing of
 * mprof; the profile comes from MPROF_THREADCREATE at exit.
 */
#include <pthread.h>
#include <stdio.h>

#define SITE_A_THREADS 7
#define SITE_B_THREADS 3

static void *short_lived(void *arg)
{
    return arg;
}

__attribute__((noinline)) static void create_from_site_a(pthread_t *t)
{
    pthread_create(t, NULL, short_lived, NULL); /* LINE:site_a */
}

__attribute__((noinline)) static void create_from_site_b(pthread_t *t)
{
    pthread_create(t, NULL, short_lived, NULL); /* LINE:site_b */
}

int main(void)
{
    pthread_t a[SITE_A_THREADS], b[SITE_B_THREADS];
    for (int i = 0; i < SITE_A_THREADS; i++)
        create_from_site_a(&a[i]);
    for (int i = 0; i < SITE_B_THREADS; i++)
        create_from_site_b(&b[i]);
    for (int i = 0; i < SITE_A_THREADS; i++)
        pthread_join(a[i], NULL);
    for (int i = 0; i < SITE_B_THREADS; i++)
        pthread_join(b[i], NULL);
    printf("created %d + %d threads\n", SITE_A_THREADS, SITE_B_THREADS);
    return 0;
}
