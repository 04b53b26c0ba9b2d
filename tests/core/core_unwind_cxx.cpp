// Unwinder test contexts in C++, compiled -O2 -fomit-frame-pointer (see
// core_unwind.h).  Frames from templates, lambdas, std::function, a
// std::sort comparator, virtual calls, libstdc++'s std::call_once (through
// libstdc++.so and libc's pthread_once, neither with frame pointers) and a
// destructor run while an exception unwinds.
#include <algorithm>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <vector>

#include "core_unwind.h"

#define NOIPA __attribute__((noipa))
#define KEEP(x) __asm__ volatile("" : : "r"(x) : "memory")

namespace {

// Template recursion: one distinct function per level.
template <int N> struct Level {
    NOIPA static int go(probe_fn probe, void *arg)
    {
        volatile int x = N;
        int r = Level<N - 1>::go(probe, arg);
        return r + x;
    }
};
template <> struct Level<0> {
    NOIPA static int go(probe_fn probe, void *arg)
    {
        probe(arg);
        return 0;
    }
};

struct Base {
    virtual ~Base() = default;
    virtual int run(int depth, probe_fn probe, void *arg) = 0;
};
struct Derived : Base {
    NOIPA int run(int depth, probe_fn probe, void *arg) override
    {
        volatile int x = depth;
        int r = depth > 1 ? this->run(depth - 1, probe, arg) : (probe(arg), 0);
        return r + x;
    }
};

// Probes from its destructor.
struct ProbeOnDestroy {
    probe_fn probe;
    void *arg;
    NOIPA ~ProbeOnDestroy() { probe(arg); }
};

NOIPA int throw_through(int depth, probe_fn probe, void *arg)
{
    if (depth <= 1) {
        ProbeOnDestroy guard{probe, arg};
        throw std::runtime_error("unwind");
    }
    volatile int x = depth;
    int r = throw_through(depth - 1, probe, arg);
    return r + x;
}

NOIPA int lambda_recurse(int depth, probe_fn probe, void *arg)
{
    std::function<int(int)> f = [&](int d) -> int {
        volatile int x = d;
        int r = d > 1 ? f(d - 1) : (probe(arg), 0);
        return r + x;
    };
    return f(depth) + 1;
}

NOIPA int sort_comparator(int depth, probe_fn probe, void *arg)
{
    std::vector<int> v(64 + depth);
    for (size_t i = 0; i < v.size(); i++)
        v[i] = (int)((i * 7919u) % 101u);
    int calls = 0;
    std::sort(v.begin(), v.end(), [&](int a, int b) {
        if (++calls % 37 == 0)
            probe(arg);
        return a < b;
    });
    KEEP(calls);
    return v[0] + 1;
}

NOIPA int call_once_probe(int depth, probe_fn probe, void *arg)
{
    std::once_flag flag;
    int r = 0;
    std::call_once(flag, [&]() { r = u_o2_recurse(depth, probe, arg); });
    return r + 1;
}

template <typename F> NOIPA int apply_n(int n, F f)
{
    volatile int x = n;
    int r = n > 1 ? apply_n(n - 1, f) : f();
    return r + x;
}

} // namespace

extern "C" int u_cxx(int kind, int depth, probe_fn probe, void *arg)
{
    int r = 0;
    switch (kind) {
    case 0: { // template levels, then plain recursion to the depth asked
        r = depth >= 8 ? Level<8>::go(probe, arg) : Level<3>::go(probe, arg);
        break;
    }
    case 1: {
        Derived d;
        Base *b = &d;
        r = b->run(depth, probe, arg);
        break;
    }
    case 2:
        try {
            r = throw_through(depth, probe, arg);
        } catch (const std::exception &) {
            r = -1;
        }
        break;
    case 3:
        r = lambda_recurse(depth, probe, arg);
        break;
    case 4:
        r = sort_comparator(depth, probe, arg);
        break;
    case 5:
        r = call_once_probe(depth, probe, arg);
        break;
    case 6:
        r = apply_n(depth, [probe, arg]() {
            probe(arg);
            return 0;
        });
        break;
    default:
        try {
            throw std::runtime_error("probe in catch");
        } catch (const std::exception &) {
            r = u_o2_recurse(depth, probe, arg);
        }
        break;
    }
    KEEP(r);
    return r + 1;
}

extern "C" NOIPA int u_cxx_step(int depth, probe_fn probe, void *arg)
{
    std::function<int()> next = [=]() { return u_mixed(depth - 1, probe, arg); };
    int r = next();
    KEEP(r);
    return r + 1;
}
