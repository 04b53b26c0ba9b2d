/* Unwinder test contexts compiled -O0 (see core_unwind.h). */
#include "core_test.h"
#include "core_unwind.h"

CORE_NOIPA int u_o0_recurse(int depth, probe_fn probe, void *arg)
{
    int local[3];
    local[depth % 3] = depth;
    int r;
    if (depth > 1)
        r = u_o0_recurse(depth - 1, probe, arg);
    else {
        probe(arg);
        r = 0;
    }
    return r + local[depth % 3];
}

CORE_NOIPA int u_o0_step(int depth, probe_fn probe, void *arg)
{
    int r = u_mixed(depth - 1, probe, arg);
    return r + depth;
}
