/*
 * Sites with known lifetimes for the lifetime profile (lifetime_check.sh):
 *
 *   churn_site     allocates and frees 2,000,000 blocks of 256 bytes in a
 *                  tight loop: every one short-lived (well under 1 ms)
 *   slow_site      64 blocks of 1 MiB, kept 1.2 s, then freed: none
 *                  short-lived, mean lifetime about 1.2 s
 *
 * Prints the true counts for the script.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEEP(x) __asm__ volatile("" : : "r"(x) : "memory")
#define CHURN 2000000

/* KEEP after the call: no tail call, so the call site is in the site. */
__attribute__((noipa)) void *churn_site(void)
{
    void *p = malloc(256);
    KEEP(p);
    return p;
}

__attribute__((noipa)) void *slow_site(void)
{
    void *p = malloc(1 << 20);
    KEEP(p);
    return p;
}

int main(void)
{
    void *slow[64];
    for (int i = 0; i < 64; i++) {
        slow[i] = slow_site();
        memset(slow[i], 1, 64);
    }
    for (int i = 0; i < CHURN; i++) {
        void *p = churn_site();
        KEEP(p);
        free(p);
    }
    struct timespec ts = {1, 200000000};
    nanosleep(&ts, NULL);
    for (int i = 0; i < 64; i++)
        free(slow[i]);
    printf("churn %d slow 64\n", CHURN);
    return 0;
}
