/* A library the trace test loads with dlopen after tracing has started:
 * its code was in no mapping the trace writer had seen. */
#include <stdlib.h>

__attribute__((noinline)) void *trace_dl_alloc(size_t n)
{
    void *p = malloc(n); /* LINE:trace_dl */
    return p;
}
