/*
 * A write to a freed block where glibc keeps its tcache pointer, then two
 * mallocs: glibc aborts ("unaligned tcache chunk detected").  Run by
 * core_glibc_checks.sh plain, under mprof with headers off (glibc still
 * aborts) and with headers at rate 1 (it no longer does: README, "Frees").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
    char *volatile a = malloc(64);
    char *volatile b = malloc(64);
    free(b);
    free(a);
    memset(a, 0x41, 16); /* the use after free */
    void *volatile x = malloc(64);
    void *volatile y = malloc(64);
    printf("no abort %p %p\n", x, y);
    return 0;
}
