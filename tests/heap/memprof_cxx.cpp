// The memory-profiler test for C++: allocations made with new, new[] and
// by a growing container must be charged to the user's line, never to
// operator new, malloc or the profiler.  "LINE:" markers name the lines.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

struct Record {
    long id;
    char payload[56]; // 64 bytes in all
};

static Record *volatile record_sink;
static char *volatile array_sink;
static std::vector<Record *> kept;

__attribute__((noinline)) void make_records()
{
    for (int i = 0; i < 1000; i++) {
        record_sink = new Record(); // LINE:new
        delete record_sink;
    }
}

__attribute__((noinline)) void make_arrays()
{
    for (int i = 0; i < 100; i++) {
        array_sink = new char[4096]; // LINE:newarray
        delete[] array_sink;
    }
}

// Capacities 1, 2, 4, ... 131072 ints: 262143 * 4 = 1048572 bytes.
__attribute__((noinline)) size_t grow_vector()
{
    std::vector<int> v;
    for (int i = 0; i < 100000; i++)
        v.push_back(i); // LINE:vector
    return v.size();
}

__attribute__((noinline)) void keep_records()
{
    kept.reserve(16); // LINE:reserve
    for (int i = 0; i < 16; i++)
        kept.push_back(new Record()); // LINE:kept
}

int main()
{
    make_records();
    make_arrays();
    size_t n = grow_vector();
    keep_records();
    std::printf("%zu %zu\n", n, kept.size());
    return 0;
}
