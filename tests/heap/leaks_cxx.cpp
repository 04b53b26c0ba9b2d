// C++ programs with known leaks for leaks_check.sh (as leaks_target.c):
//   container  a heap-allocated std::map whose owner pointer is lost: the
//              map object is a direct leak, its nodes and strings indirect
//   dtor       memory a static object's destructor frees at exit: no leak
//   vector     a std::vector kept by a global: no leak
#include <cstring>
#include <map>
#include <string>
#include <vector>

#define NOINLINE __attribute__((noipa))

NOINLINE void scrub_stack()
{
    volatile char buf[16384];
    memset((char *)buf, 0, sizeof buf);
}

NOINLINE std::map<int, std::string> *make_map()
{
    return new std::map<int, std::string>();
}

NOINLINE void leak_container()
{
    std::map<int, std::string> *volatile m = make_map();
    for (int i = 0; i < 4; i++)
        (*m)[i] = std::string(40, 'a' + i); // past the small-string buffer: heap
    m = nullptr;
}

struct Owner {
    char *buf = nullptr;
    ~Owner() { delete[] buf; }
};
static Owner owner;

NOINLINE void fill_owner() { owner.buf = new char[700]; }

std::vector<int> *volatile kept;
NOINLINE void keep_vector()
{
    kept = new std::vector<int>(100, 7);
}

int main(int argc, char **argv)
{
    std::string what = argc > 1 ? argv[1] : "container";
    if (what == "container")
        leak_container();
    if (what == "dtor")
        fill_owner();
    if (what == "vector")
        keep_vector();
    scrub_stack();
    return 0;
}
