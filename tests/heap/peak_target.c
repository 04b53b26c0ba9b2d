/*
 * Two phases for the peak profile (peak_check.sh): phase A holds 64 MiB
 * from one site (16 blocks of 4 MiB: at the default rate each such block is
 * sampled with probability 1 - e^-8, so the estimate is nearly exact and
 * the test is about the peak, not the sampling), frees it all; phase B
 * holds 16 MiB from another site until exit.  The peak profile must name
 * phase_a with 64 MiB, the exit profile phase_b with 16 MiB.
 *
 * With "api": the same through the embedding API (mprof_record_alloc /
 * mprof_record_free on blocks the program manages itself, in the
 * consistent-snapshot mode that mprof_next_cycle starts), written with
 * mprof_write_profile.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef MPROF_TARGET_API
#include "mprof.h"
#else /* unmodified program under LD_PRELOAD: no calls into mprof */
#define mprof_record_alloc(p, n) ((void)(p), (void)(n))
#define mprof_record_free(p, how) ((void)(p))
#define mprof_next_cycle() ((void)0)
#define mprof_flush() ((void)0)
#define mprof_write_profile(name, path) ((void)(name), (void)(path), -1)
#endif

#define BLOCK ((size_t)4 << 20)
#define KEEP(x) __asm__ volatile("" : : "r"(x) : "memory")

static int api;

/* The API mode's own "heap": a runtime's arena, never touched by malloc
 * (whose blocks the library, linked in, would sample too).  Its pages are
 * never written, so they cost nothing. */
static char arena[20][BLOCK];
static int arena_next;

static void *get(size_t n)
{
    if (api) {
        void *p = arena[arena_next++ % 20];
        mprof_record_alloc(p, n);
        return p;
    }
    void *p = malloc(n);
    memset(p, 1, 64);
    return p;
}

static void put(void *p)
{
    if (api)
        mprof_record_free(p, MPROF_FREE_EXPLICIT);
    else
        free(p);
}

__attribute__((noipa)) void *phase_a(void) { return get(BLOCK); }
__attribute__((noipa)) void *phase_b(void) { return get(BLOCK); }

int main(int argc, char **argv)
{
    api = argc > 1 && strcmp(argv[1], "api") == 0;
    if (api)
        mprof_next_cycle(); /* the collector-driven mode */
    void *a[16], *b[4];
    for (int i = 0; i < 16; i++)
        a[i] = phase_a();
    for (int i = 0; i < 16; i++)
        put(a[i]);
    if (api) {
        mprof_next_cycle();
        mprof_flush();
    }
    for (int i = 0; i < 4; i++)
        b[i] = phase_b();
    if (api) {
        mprof_next_cycle();
        mprof_flush();
        mprof_next_cycle();
        mprof_flush();
        if (mprof_write_profile("peak", argv[2]) != 0 || mprof_write_profile("heap", argv[3]) != 0) {
            perror("mprof_write_profile");
            return 1;
        }
    }
    KEEP(b[0]);
    KEEP(b[3]);
    return 0;
}
