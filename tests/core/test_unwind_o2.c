/*
 * Unwinder test contexts compiled -O2 -fomit-frame-pointer (see
 * core_unwind.h).  Every function does work after its call so that no call
 * is a tail call (a tail call removes the frame for both unwinders alike,
 * but then the context would not test anything).
 */
#include <alloca.h>
#include <string.h>

#include "core_test.h"
#include "core_unwind.h"

#define KEEP(x) __asm__ volatile("" : : "r"(x) : "memory")

CORE_NOIPA int u_o2_recurse(int depth, probe_fn probe, void *arg)
{
    volatile int local[4];
    local[depth & 3] = depth;
    int r = depth > 1 ? u_o2_recurse(depth - 1, probe, arg) : (probe(arg), 0);
    return r + local[depth & 3];
}

/* alloca: the frame size is dynamic, so the CFA is RBP-based even with
 * -fomit-frame-pointer. */
CORE_NOIPA int u_o2_alloca(int depth, probe_fn probe, void *arg)
{
    size_t n = 16 + (size_t)depth * 40;
    char *buf = alloca(n);
    memset(buf, depth, n);
    KEEP(buf);
    int r = depth > 1 ? u_o2_alloca(depth - 1, probe, arg) : (probe(arg), 0);
    return r + buf[depth];
}

CORE_NOIPA int u_o2_vla(int depth, probe_fn probe, void *arg)
{
    char vla[depth * 24 + 8];
    vla[0] = (char)depth;
    vla[depth * 24 + 7] = 1;
    KEEP(vla);
    int r = depth > 1 ? u_o2_vla(depth - 1, probe, arg) : (probe(arg), 0);
    return r + vla[0] + vla[depth * 24 + 7];
}

/* Over-aligned locals: GCC realigns the stack (and %rsp) in the prologue;
 * the CFI then describes the CFA through another register or an
 * expression. */
CORE_NOIPA int u_o2_aligned(int depth, probe_fn probe, void *arg)
{
    char buf[128] __attribute__((aligned(128)));
    buf[depth & 127] = (char)depth;
    KEEP(buf);
    int r = depth > 1 ? u_o2_aligned(depth - 1, probe, arg) : (probe(arg), 0);
    return r + buf[depth & 127];
}

/* 64 functions with different frame sizes, chained by a seed: many
 * distinct return addresses, so the unwinder's direct-mapped rule cache
 * sees misses, hits and evictions. */
typedef int (*gen_fn)(int depth, unsigned seed, probe_fn probe, void *arg);
extern const gen_fn u_gen_table[64];

#define GEN(i)                                                                                \
    CORE_NOIPA int u_gen_##i(int depth, unsigned seed, probe_fn probe, void *arg)             \
    {                                                                                         \
        volatile char pad[8 * ((i) % 7) + 8];                                                 \
        pad[0] = (char)depth;                                                                 \
        int r;                                                                                \
        if (depth <= 1) {                                                                     \
            probe(arg);                                                                       \
            r = 0;                                                                            \
        } else {                                                                              \
            seed = seed * 1103515245u + 12345u;                                               \
            r = u_gen_table[(seed >> 16) % 64](depth - 1, seed, probe, arg);                  \
        }                                                                                     \
        return r + pad[0] + (i);                                                              \
    }
#define GEN8(a) GEN(a##0) GEN(a##1) GEN(a##2) GEN(a##3) GEN(a##4) GEN(a##5) GEN(a##6) GEN(a##7)
GEN(0) GEN(1) GEN(2) GEN(3) GEN(4) GEN(5) GEN(6) GEN(7)
GEN8(1) GEN8(2) GEN8(3) GEN8(4) GEN8(5) GEN8(6) GEN8(7)
#define T8(a) u_gen_##a##0, u_gen_##a##1, u_gen_##a##2, u_gen_##a##3, \
              u_gen_##a##4, u_gen_##a##5, u_gen_##a##6, u_gen_##a##7
/* GEN8(1) defines u_gen_10..u_gen_17, etc.: 8 + 7 * 8 = 64 functions. */
const gen_fn u_gen_table[64] = {
    u_gen_0, u_gen_1, u_gen_2, u_gen_3, u_gen_4, u_gen_5, u_gen_6, u_gen_7,
    T8(1), T8(2), T8(3), T8(4), T8(5), T8(6), T8(7),
};

CORE_NOIPA int u_o2_gen(int depth, unsigned seed, probe_fn probe, void *arg)
{
    int r = u_gen_table[seed % 64](depth, seed, probe, arg);
    KEEP(r);
    return r + 1;
}

/* The mixed recursion: each level is a different kind of frame. */
CORE_NOIPA int u_o2_step(int depth, probe_fn probe, void *arg)
{
    volatile int x = depth;
    int r = u_mixed(depth - 1, probe, arg);
    return r + x;
}

CORE_NOIPA int u_o2_alloca_step(int depth, probe_fn probe, void *arg)
{
    char *buf = alloca(32 + (size_t)depth * 8);
    buf[0] = (char)depth;
    KEEP(buf);
    int r = u_mixed(depth - 1, probe, arg);
    return r + buf[0];
}

CORE_NOIPA int u_mixed(int depth, probe_fn probe, void *arg)
{
    int r;
    if (depth <= 0) {
        probe(arg);
        r = 0;
    } else {
        switch (depth % 4) {
        case 0: r = u_o2_step(depth, probe, arg); break;
        case 1: r = u_o0_step(depth, probe, arg); break;
        case 2: r = u_o2_alloca_step(depth, probe, arg); break;
        default: r = u_cxx_step(depth, probe, arg); break;
        }
    }
    KEEP(r);
    return r + 1;
}
