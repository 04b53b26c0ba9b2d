// A C++ function for the symbolizer and encoder tests: its symbol is
// mangled, its DWARF carries DW_AT_linkage_name, and the profile must show
// it demangled.  Built with -fno-exceptions -fno-rtti and linked by the C
// driver, so that the test programs do not load libstdc++ themselves and
// the symbolizer's dlopen fallback for __cxa_demangle is what gets used.
#include <cstdint>

namespace mprof_test {

struct Widget {
    int size = 0;
    std::uintptr_t grow(int *line);
};

__attribute__((noipa)) static std::uintptr_t capture_caller()
{
    std::uintptr_t ra = reinterpret_cast<std::uintptr_t>(__builtin_return_address(0));
    __asm__ volatile("" ::: "memory");
    return ra - 1;
}

__attribute__((noipa)) std::uintptr_t Widget::grow(int *line)
{
    size++;
    *line = __LINE__; std::uintptr_t pc = capture_caller(); __asm__ volatile("" ::: "memory");
    return pc;
}

} // namespace mprof_test

extern "C" std::uintptr_t encoder_cxx_pc(int *line)
{
    mprof_test::Widget w;
    return w.grow(line);
}
