/*
 * The unwinder's rule cache across dlclose: code unloaded and other code
 * loaded at the same addresses must not be unwound with the rules of the
 * code that was there.
 *
 * Two libraries built from unwind_reload.S have reload_fn at the same
 * offset, its call site at the same address, and different unwind rules
 * there (a 4 KiB frame-pointer frame, or an RSP frame of 32 bytes).  Each
 * is loaded in turn, usually at the address the other one left; reload_fn
 * calls back into probe, which captures the stack.  Frame 2 must be
 * reload_caller: with the other library's rule cached for the call site,
 * the walk reads the return address from the wrong slot and reaches
 * main, or gives up.
 *
 * Usage: test_unwind_reload LIB_A LIB_B
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "core_test.h"
#include "core/core.h"
#include "unwind/unwind.h"
#include "encode/pprof.h"
#include "symbolize/symbolize.h"
#include "interpose/threads.h"
#include "http/http.h"
#include "profiles/heap_profile.h"
#include "runtime/lifecycle.h"

static uintptr_t got[16];
static int ngot;

CORE_NOIPA void probe(void)
{
    ngot = mprof_stack_capture(got, 16);
    __asm__ volatile("");
}

CORE_NOIPA void reload_caller(void (*fn)(void (*)(void)))
{
    fn(probe);
    __asm__ volatile("");
}

static int in(uintptr_t pc, const void *fn)
{
    uintptr_t lo, hi;
    core_fn_range(fn, &lo, &hi);
    return pc > lo && pc <= hi; /* return addresses: after the call */
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s LIB_A LIB_B\n", argv[0]);
        return 2;
    }
    uintptr_t base[2] = {0, 0};
    int same_place = 0;
    for (int round = 0; round < 6; round++) {
        const char *lib = argv[1 + round % 2];
        void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
        if (h == NULL) {
            CHECK(0, "dlopen %s: %s", lib, dlerror());
            break;
        }
        void (*fn)(void (*)(void)) = (void (*)(void (*)(void)))dlsym(h, "reload_fn");
        CHECK(fn != NULL, "no reload_fn in %s", lib);
        if (fn == NULL)
            break;
        if (base[round % 2] == 0)
            base[round % 2] = (uintptr_t)fn;
        same_place |= base[0] != 0 && base[0] == base[1];
        ngot = 0;
        reload_caller(fn);
        uintptr_t f = (uintptr_t)fn;
        CHECK(ngot >= 3 && in(got[0], (const void *)probe) && got[1] > f && got[1] < f + 64 &&
                  in(got[2], (const void *)reload_caller),
              "round %d (%s at %p): frames %d: %#lx %#lx %#lx, want probe, reload_fn, "
              "reload_caller",
              round, round % 2 ? "B" : "A", (void *)fn, ngot, (unsigned long)got[0],
              (unsigned long)got[1], (unsigned long)got[2]);
        dlclose(h);
    }
    /* Only a library loaded where the other one was can find a stale rule;
     * glibc reuses the address, and the test says so if it did not. */
    CHECK(same_place, "the two libraries never shared an address (%#lx, %#lx): nothing tested",
          (unsigned long)base[0], (unsigned long)base[1]);
    return check_result("test_unwind_reload");
}
