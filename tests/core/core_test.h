/*
 * Small helpers shared by the core tests (sampler, buckets, cycles,
 * unwinder, interposer, threads, fork), on top of tests/lib/check.h.
 * Header-only: each test is one program.
 *
 * Functions whose address ranges a test checks are marked CORE_NOIPA: no
 * inlining, cloning, splitting or identical-code folding, so that the
 * function is exactly one symbol [addr, addr + size) and the call sites the
 * profiler records lie inside it.  The test programs are linked with
 * -rdynamic so that dladdr1() finds those symbols in .dynsym.
 */
#ifndef CORE_TEST_H
#define CORE_TEST_H

#include <dlfcn.h>
#include <link.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/check.h"

#define CORE_NOIPA __attribute__((noipa, used))

/* [lo, hi) of the symbol containing fn; 0 on success.  Aborts the test when
 * the symbol cannot be found (the build is wrong, not the profiler). */
static inline void core_fn_range(const void *fn, uintptr_t *lo, uintptr_t *hi)
{
    Dl_info info;
    const ElfW(Sym) *sym = NULL;
    if (dladdr1(fn, &info, (void **)&sym, RTLD_DL_SYMENT) == 0 || sym == NULL ||
        info.dli_saddr == NULL || sym->st_size == 0) {
        fprintf(stderr, "cannot find the symbol of %p (link with -rdynamic?)\n", fn);
        exit(2);
    }
    *lo = (uintptr_t)info.dli_saddr;
    *hi = *lo + sym->st_size;
}

static inline int core_pc_in(uintptr_t pc, const void *fn)
{
    uintptr_t lo, hi;
    core_fn_range(fn, &lo, &hi);
    return pc >= lo && pc < hi;
}

/* "name+0xoff" for messages. */
static inline const char *core_pc_name(uintptr_t pc, char *buf, size_t len)
{
    Dl_info info;
    if (dladdr((void *)pc, &info) && info.dli_sname)
        snprintf(buf, len, "%s+0x%lx", info.dli_sname,
                 (unsigned long)(pc - (uintptr_t)info.dli_saddr));
    else if (dladdr((void *)pc, &info) && info.dli_fname)
        snprintf(buf, len, "%s@0x%lx", strrchr(info.dli_fname, '/') ? strrchr(info.dli_fname, '/') + 1
                                                                   : info.dli_fname,
                 (unsigned long)(pc - (uintptr_t)info.dli_fbase));
    else
        snprintf(buf, len, "0x%lx", (unsigned long)pc);
    return buf;
}

static inline void core_print_stack(const char *title, const uintptr_t *pcs, int n)
{
    char buf[256];
    fprintf(stderr, "  %s (%d frames):\n", title, n);
    for (int i = 0; i < n; i++)
        fprintf(stderr, "    #%-2d %s\n", i, core_pc_name(pcs[i], buf, sizeof buf));
}

#endif
