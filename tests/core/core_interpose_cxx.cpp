// C++ allocation under the interposer: operator new/delete in all their
// forms behave as without mprof (run by core_interpose.sh plain and under
// LD_PRELOAD, transcripts compared), and at MPROF_RATE=1 each new is
// recorded at the line that wrote it and each delete is matched.
#include <dlfcn.h>
#include <link.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <map>
#include <memory>
#include <new>
#include <string>
#include <typeinfo>
#include <vector>

#include "../lib/check.h"
#include "mprof.h"

#define NOIPA __attribute__((noipa, used))
#define KEEP(x) __asm__ volatile("" : : "r"(x) : "memory")


static int (*mem_profile)(mprof_mem_record *, int, int);
static int rate1;
static mprof_mem_record recs[4096];

struct site {
    long long allocs, frees, alloc_bytes, free_bytes;
};

static site site_of(const void *fn)
{
    site s = {0, 0, 0, 0};
    Dl_info info;
    const ElfW(Sym) *sym = nullptr;
    if (!dladdr1(fn, &info, (void **)&sym, RTLD_DL_SYMENT) || !sym || !sym->st_size) {
        fprintf(stderr, "no symbol for %p\n", fn);
        exit(2);
    }
    uintptr_t lo = (uintptr_t)info.dli_saddr, hi = lo + sym->st_size;
    int n = mem_profile(recs, 4096, 1);
    for (int i = 0; i < n && i < 4096; i++)
        if (recs[i].nstack > 0 && recs[i].stack[0] >= lo && recs[i].stack[0] < hi) {
            s.allocs += recs[i].alloc_objects;
            s.frees += recs[i].free_objects;
            s.alloc_bytes += recs[i].alloc_bytes;
            s.free_bytes += recs[i].free_bytes;
        }
    return s;
}

#define EXPECT_SITE(fn, a, f, ab, fb)                                                         \
    do {                                                                                      \
        if (rate1) {                                                                          \
            site s_ = site_of((const void *)&(fn));                                           \
            CHECK(s_.allocs == (a) && s_.frees == (f) && s_.alloc_bytes == (ab) &&            \
                      s_.free_bytes == (fb),                                                  \
                  "%s: mprof shows %lld allocs %lld frees %lld/%lld bytes, want %lld %lld "    \
                  "%lld/%lld",                                                                \
                  #fn, s_.allocs, s_.frees, s_.alloc_bytes, s_.free_bytes, (long long)(a),    \
                  (long long)(f), (long long)(ab), (long long)(fb));                          \
        }                                                                                     \
    } while (0)

struct Obj {
    char data[40];
};
struct alignas(64) A64 {
    char data[100];
};
struct alignas(4096) APage {
    char data[10];
};

static bool aligned(const void *p, size_t a) { return ((uintptr_t)p & (a - 1)) == 0; }
static volatile size_t vhuge = SIZE_MAX / 4;

extern "C" {
NOIPA Obj *new_obj() { Obj *p = new Obj; KEEP(p); return p; }
NOIPA char *new_array(size_t n) { char *p = new char[n]; KEEP(p); return p; }
NOIPA A64 *new_a64() { A64 *p = new A64; KEEP(p); return p; }
NOIPA A64 *new_a64_array(size_t n) { A64 *p = new A64[n]; KEEP(p); return p; }
NOIPA APage *new_apage() { APage *p = new APage; KEEP(p); return p; }
NOIPA Obj *new_nothrow() { Obj *p = new (std::nothrow) Obj; KEEP(p); return p; }
NOIPA void *new_operator(size_t n) { void *p = ::operator new(n); KEEP(p); return p; }
}

static int handler_calls;
static void new_handler()
{
    handler_calls++;
    std::set_new_handler(nullptr); // the next failure throws
}

int main()
{
    setvbuf(stdout, nullptr, _IOLBF, 0);
    mem_profile = (int (*)(mprof_mem_record *, int, int))dlsym(RTLD_DEFAULT, "mprof_mem_profile");
    const char *want = getenv("CORE_EXPECT_MPROF");
    if (want && *want == '1')
        CHECK(mem_profile != nullptr, "libmprof is not loaded");
    const char *r = getenv("MPROF_RATE");
    rate1 = mem_profile && r && strcmp(r, "1") == 0;

    // new / delete
    Obj *o = new_obj();
    CHECK(o && aligned(o, 16), "new Obj");
    EXPECT_SITE(new_obj, 1, 0, 40, 0);
    delete o;
    EXPECT_SITE(new_obj, 1, 1, 40, 40);
    printf("new/delete: ok\n");

    // new[] / delete[]
    char *a = new_array(1000);
    memset(a, 1, 1000);
    CHECK(malloc_usable_size(a) >= 1000, "new char[1000]");
    EXPECT_SITE(new_array, 1, 0, 1000, 0);
    delete[] a;
    EXPECT_SITE(new_array, 1, 1, 1000, 1000);
    printf("new[]/delete[]: ok\n");

    // sized delete
    void *v = new_operator(300);
    ::operator delete(v, 300);
    EXPECT_SITE(new_operator, 1, 1, 300, 300);
    printf("sized delete: ok\n");

    // aligned new
    A64 *p64 = new_a64();
    CHECK(aligned(p64, 64), "new A64 not 64-aligned");
    A64 *arr = new_a64_array(5);
    CHECK(aligned(arr, 64), "new A64[5] not 64-aligned");
    APage *pg = new_apage();
    CHECK(aligned(pg, 4096), "new APage not 4096-aligned");
    printf("aligned new: 64 %d, 64[] %d, 4096 %d\n", aligned(p64, 64), aligned(arr, 64),
           aligned(pg, 4096));
    EXPECT_SITE(new_a64, 1, 0, (long long)sizeof(A64), 0);
    EXPECT_SITE(new_apage, 1, 0, (long long)sizeof(APage), 0);
    delete p64;
    delete[] arr;
    delete pg;
    EXPECT_SITE(new_a64, 1, 1, (long long)sizeof(A64), (long long)sizeof(A64));
    EXPECT_SITE(new_a64_array, 1, 1, 5 * (long long)sizeof(A64), 5 * (long long)sizeof(A64));
    EXPECT_SITE(new_apage, 1, 1, (long long)sizeof(APage), (long long)sizeof(APage));

    // nothrow
    Obj *n = new_nothrow();
    CHECK(n != nullptr, "new (nothrow) Obj");
    delete n;
    EXPECT_SITE(new_nothrow, 1, 1, 40, 40);
    char *nh = new (std::nothrow) char[vhuge];
    CHECK(nh == nullptr, "new (nothrow) char[huge] returned non-NULL");
    void *nha = ::operator new(vhuge, std::align_val_t(64), std::nothrow);
    CHECK(nha == nullptr, "aligned nothrow new of a huge size returned non-NULL");
    printf("nothrow new huge: %s, aligned %s\n", nh ? "non-NULL" : "nullptr",
           nha ? "non-NULL" : "nullptr");

    // huge new throws std::bad_alloc, never crashes
    const char *what = "nothing";
    try {
        char *h = new char[vhuge];
        KEEP(h);
        delete[] h;
    } catch (const std::bad_alloc &e) {
        what = typeid(e).name();
    }
    CHECK(strcmp(what, "nothing") != 0, "new char[huge] did not throw");
    printf("new char[huge]: threw %s\n", what);
    what = "nothing";
    try {
        volatile size_t count = SIZE_MAX / 2;
        int *h = new int[count]; // size computation overflows
        KEEP(h);
        delete[] h;
    } catch (const std::bad_alloc &e) {
        what = typeid(e).name();
    }
    CHECK(strcmp(what, "nothing") != 0, "new int[SIZE_MAX/2] did not throw");
    printf("new int[overflow]: threw %s\n", what);
    what = "nothing";
    try {
        void *h = ::operator new(vhuge, std::align_val_t(128));
        KEEP(h);
    } catch (const std::bad_alloc &e) {
        what = typeid(e).name();
    }
    CHECK(strcmp(what, "nothing") != 0, "aligned new of a huge size did not throw");
    printf("aligned new huge: threw %s\n", what);

    // new_handler is called, then the failure throws
    std::set_new_handler(new_handler);
    what = "nothing";
    try {
        void *h = ::operator new(vhuge);
        KEEP(h);
    } catch (const std::bad_alloc &e) {
        what = typeid(e).name();
    }
    CHECK(handler_calls == 1 && strcmp(what, "nothing") != 0, "new_handler called %d times",
          handler_calls);
    printf("new_handler: called %d, threw %s\n", handler_calls, what);

    // containers
    std::vector<long> vec;
    for (long i = 0; i < 1000000; i++)
        vec.push_back(i);
    std::string s;
    for (int i = 0; i < 10000; i++)
        s += std::to_string(i);
    std::map<int, std::string> m;
    for (int i = 0; i < 10000; i++)
        m[i] = std::to_string(i * 3);
    auto sp = std::make_shared<std::vector<int>>(1000, 7);
    CHECK(vec[999999] == 999999 && s.size() == 38890 && m[9999] == "29997" && (*sp)[999] == 7,
          "containers");
    printf("containers: %zu %zu %zu %zu\n", vec.size(), s.size(), m.size(), sp->size());

    return check_result("core_interpose_cxx");
}
