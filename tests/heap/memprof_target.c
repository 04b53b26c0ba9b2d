/*
 * The Go runtime's memory-profiler test (TestMemoryProfiler in
 * runtime/pprof/mprof_test.go), ported to C.  Three kinds of allocation with known byte counts at known lines:
 *
 *   allocate_transient_1m:  1024 blocks of 1 KiB, each freed at once
 *   allocate_transient_2m:  one 2 MiB block, freed
 *   allocate_persistent_1k: 32 blocks of 32 B, kept
 *
 * Built twice from this file: linked with libmprof and driving it through
 * the API (MPROF_TARGET_API), and as an unmodified program that knows
 * nothing of mprof, profiled through LD_PRELOAD and MPROF_* variables.
 * The "LINE:" markers let the test script find the expected line numbers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef MPROF_TARGET_API
#include "mprof.h"
#endif

/* volatile: the compiler must not elide malloc/free pairs. */
static void *volatile mem_sink;

struct obj32 {
    struct obj32 *link;
    char pad[32 - sizeof(void *)];
};
static struct obj32 *volatile persistent_sink;

__attribute__((noinline)) void allocate_transient_1m(void)
{
    for (int i = 0; i < 1024; i++) {
        mem_sink = malloc(1024); /* LINE:transient1m */
        free(mem_sink);
    }
}

__attribute__((noinline)) void allocate_transient_2m(void)
{
    if (persistent_sink != NULL) /* as in Go's test: prevents inlining tricks */
        abort();
    mem_sink = malloc(2 << 20); /* LINE:transient2m */
    memset(mem_sink, 1, 4096);
    free(mem_sink);
}

__attribute__((noinline)) void allocate_persistent_1k(void)
{
    for (int i = 0; i < 32; i++) {
        struct obj32 *o = malloc(sizeof *o); /* LINE:persistent1k */
        o->link = persistent_sink;
        persistent_sink = o;
    }
}

int main(int argc, char **argv)
{
#ifdef MPROF_TARGET_API
    if (argc < 2) {
        fprintf(stderr, "usage: %s PROFILE\n", argv[0]);
        return 2;
    }
    mprof_set_rate(1);
#else
    (void)argc;
    (void)argv;
#endif
    allocate_transient_1m();
    allocate_transient_2m();
    allocate_persistent_1k();
    mem_sink = NULL;
#ifdef MPROF_TARGET_API
    if (mprof_write_heap_profile(argv[1]) != 0) {
        perror("mprof_write_heap_profile");
        return 1;
    }
#endif
    return 0;
}
