/*
 * Contexts for the unwinder test (test_unwind.c): call chains built from
 * code compiled in different ways, each calling probe(arg) at its deepest
 * point.  The probe compares mprof_stack_capture (the fast caching CFI
 * unwinder) with mprof_stack_capture_libgcc (libgcc's _Unwind_Backtrace).
 *
 *   test_unwind_o2.c   -O2 -fomit-frame-pointer: RSP-based frames, alloca
 *                      and VLA frames (RBP-based CFA), a realigned frame,
 *                      64 generated functions chained at random
 *   test_unwind_o0.c   -O0 (RBP frames as the compiler's simplest output)
 *   core_unwind_cxx.cpp  -O2 -fomit-frame-pointer C++: templates, lambdas,
 *                      std::function, std::sort comparator, virtual calls,
 *                      std::call_once and a destructor run by an exception
 */
#ifndef CORE_UNWIND_H
#define CORE_UNWIND_H

#ifdef __cplusplus
extern "C" {
#endif

typedef void (*probe_fn)(void *arg);

/* test_unwind_o2.c */
int u_o2_recurse(int depth, probe_fn probe, void *arg);
int u_o2_alloca(int depth, probe_fn probe, void *arg);
int u_o2_vla(int depth, probe_fn probe, void *arg);
int u_o2_aligned(int depth, probe_fn probe, void *arg);
int u_o2_gen(int depth, unsigned seed, probe_fn probe, void *arg);
/* Recursion that goes through every kind of frame in turn. */
int u_mixed(int depth, probe_fn probe, void *arg);
int u_o2_step(int depth, probe_fn probe, void *arg);
int u_o2_alloca_step(int depth, probe_fn probe, void *arg);

/* test_unwind_o0.c */
int u_o0_recurse(int depth, probe_fn probe, void *arg);
int u_o0_step(int depth, probe_fn probe, void *arg);

/* core_unwind_cxx.cpp; kind 0..7, see there */
int u_cxx(int kind, int depth, probe_fn probe, void *arg);
int u_cxx_step(int depth, probe_fn probe, void *arg);
#define U_CXX_KINDS 8

#ifdef __cplusplus
}
#endif

#endif
