/*
 * A write to a freed block where glibc keeps its tcache pointer, then two
 * mallocs: glibc aborts ("unaligned tcache chunk detected").  Run by
 * core_glibc_checks.sh plain, under mprof with headers off (glibc still
 * aborts) and with headers at rate 1 (it no longer does: README, "Frees").
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
    char *volatile a = malloc(64);
    char *volatile b = malloc(64);
    free(b);
    free(a);
    /* The use after free: a "next" pointer glibc will find misaligned.
     * glibc stores it mangled (safe-linking: XOR with the field's address
     * >> 12), so the value written is mangled the same way; a fixed
     * pattern would decode to an aligned address one run in 16 (ASLR) and
     * make glibc crash instead of aborting. */
    uintptr_t misaligned = 0x10008;
    uintptr_t mangled = ((uintptr_t)a >> 12) ^ misaligned;
    memcpy(a, &mangled, sizeof mangled);
    void *volatile x = malloc(64);
    void *volatile y = malloc(64);
    printf("no abort %p %p\n", x, y);
    return 0;
}
