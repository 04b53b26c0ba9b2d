/* The library fault_host's dlopen storm loads and unloads: its blocks are
 * allocated from code that is gone by the time they are freed or
 * symbolized. */
#include <stdlib.h>
#include <string.h>

void *fault_lib_alloc(int n)
{
    void *p = malloc((size_t)(64 + n * 32));
    if (p != NULL)
        memset(p, 7, 64);
    return p;
}
