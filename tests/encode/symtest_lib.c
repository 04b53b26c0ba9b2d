/*
 * A library the symbolizer test loads, unloads and loads again at another
 * address (test_symbolize.c, test_cache_reload): the frames of the second
 * load must name this function at this line, not what the result cache
 * remembered of the first load.
 */
#include <stdint.h>

/* The call site in its caller, as an unwinder records it. */
static __attribute__((noipa)) uintptr_t capture(void)
{
    return (uintptr_t)__builtin_return_address(0) - 1;
}

__attribute__((noipa)) uintptr_t symtest_where(int *line)
{
    *line = __LINE__; uintptr_t pc = capture(); __asm__ volatile("" ::: "memory");
    return pc;
}
