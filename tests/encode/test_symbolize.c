/*
 * Symbolizer unit test: real addresses of this program and of stripped
 * Debian libraries, checked against what the source and the ELF files say.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "encoder_elf.h"
#include "core/core.h"
#include "unwind/unwind.h"
#include "encode/pprof.h"
#include "symbolize/symbolize.h"
#include "interpose/threads.h"
#include "http/http.h"
#include "profiles/heap_profile.h"
#include "runtime/lifecycle.h"

uintptr_t encoder_cxx_pc(int *line);

static T_NOIPA uintptr_t sym_alpha(int *line)
{
    *line = __LINE__; uintptr_t pc = t_capture_caller(); T_BARRIER();
    return pc;
}

/* always_inline is honoured at -O0 too, so the sanitizer (Debug) builds
 * see the same inline chain as the RelWithDebInfo build. */
static inline __attribute__((always_inline)) uintptr_t sym_inlined(int *line)
{
    *line = __LINE__; uintptr_t pc = t_capture_caller(); T_BARRIER();
    return pc;
}

static T_NOIPA uintptr_t sym_outer(int *inner_line, int *call_line)
{
    *call_line = __LINE__; uintptr_t pc = sym_inlined(inner_line); T_BARRIER();
    return pc;
}

static const char *base(const char *path)
{
    const char *s = path ? strrchr(path, '/') : NULL;
    return s ? s + 1 : path;
}

static void dump(const char *what, const mprof_frame *f, int n)
{
    fprintf(stderr, "  %s: %d frame(s)\n", what, n);
    for (int i = 0; i < n; i++)
        fprintf(stderr, "    [%d] %s (%s) %s:%d start %d\n", i, f[i].function ? f[i].function : "?",
                f[i].system_name ? f[i].system_name : "?", f[i].file ? f[i].file : "?",
                f[i].line, f[i].start_line);
}

static void test_own_functions(mprof_symbolizer *s)
{
    mprof_frame f[8];
    int line;
    uintptr_t pc = sym_alpha(&line);
    int n = mprof_sym_lookup(s, pc, f, 8);
    dump("sym_alpha", f, n);
    CHECK(n == 1, "one frame, got %d", n);
    if (n >= 1) {
        CHECK(f[0].function && strcmp(f[0].function, "sym_alpha") == 0, "name %s", f[0].function);
        CHECK(f[0].system_name && strcmp(f[0].system_name, "sym_alpha") == 0, "sysname");
        CHECK(f[0].file && strcmp(base(f[0].file), "test_symbolize.c") == 0, "file %s",
                f[0].file);
        CHECK(f[0].line == line, "line %d, expected %d", f[0].line, line);
        CHECK(f[0].start_line > 0 && f[0].start_line < line, "start_line %d", f[0].start_line);
    }

    int inner, call;
    pc = sym_outer(&inner, &call);
    n = mprof_sym_lookup(s, pc, f, 8);
    dump("sym_outer/sym_inlined", f, n);
    CHECK(n == 2, "inline chain of two, got %d", n);
    if (n == 2) {
        CHECK(f[0].function && strcmp(f[0].function, "sym_inlined") == 0, "inner %s",
                f[0].function);
        CHECK(f[0].line == inner, "inner line %d, expected %d", f[0].line, inner);
        CHECK(f[1].function && strcmp(f[1].function, "sym_outer") == 0, "outer %s",
                f[1].function);
        CHECK(f[1].line == call, "call line %d, expected %d", f[1].line, call);
        CHECK(f[1].file && strcmp(base(f[1].file), "test_symbolize.c") == 0, "file");
    }
    /* Fewer slots than inline depth: the physical function stays last. */
    n = mprof_sym_lookup(s, pc, f, 1);
    CHECK(n == 1 && f[0].function && strcmp(f[0].function, "sym_outer") == 0,
            "max=1 keeps the physical function, got %d %s", n, n ? f[0].function : "");

    /* C++: demangled name, mangled system name, via the dlopen fallback
     * since this C program has no libstdc++ of its own. */
    int had_demangler = dlsym(RTLD_DEFAULT, "__cxa_demangle") != NULL;
    pc = encoder_cxx_pc(&line);
    n = mprof_sym_lookup(s, pc, f, 8);
    dump("Widget::grow", f, n);
    CHECK(n == 1, "one frame, got %d", n);
    if (n >= 1) {
        CHECK(f[0].function && strcmp(f[0].function, "mprof_test::Widget::grow(int*)") == 0,
                "demangled %s (libstdc++ preloaded: %d)", f[0].function, had_demangler);
        CHECK(f[0].system_name &&
                    strncmp(f[0].system_name, "_ZN10mprof_test6Widget4grow", 27) == 0,
                "mangled %s", f[0].system_name);
        CHECK(f[0].line == line, "line %d expected %d", f[0].line, line);
        CHECK(f[0].file && strcmp(base(f[0].file), "encoder_cxx.cpp") == 0, "file %s", f[0].file);
    }
}

static void test_mappings(mprof_symbolizer *s)
{
    int line;
    uintptr_t pc = sym_alpha(&line);
    int mi = mprof_sym_find_mapping(s, pc);
    CHECK(mi >= 0, "own code in a mapping");
    if (mi < 0)
        return;
    const mprof_mapping *m = mprof_sym_mapping(s, mi);
    char exe[PATH_MAX], bid[160];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[len > 0 ? len : 0] = '\0';
    CHECK(strcmp(m->path, exe) == 0, "path %s vs %s", m->path, exe);
    CHECK(m->start <= pc && pc < m->limit, "range");
    CHECK(m->start % 4096 == 0 && m->limit % 4096 == 0, "page-aligned as in /proc/self/maps");
    t_build_id(exe, bid, sizeof bid);
    CHECK(bid[0] && strcmp(m->build_id, bid) == 0, "build id %s vs %s", m->build_id, bid);

    /* The file offset is that of the executable segment: the ELF program
     * header agrees once both are rounded to pages. */
    t_object obj;
    CHECK(t_object_of((void *)pc, &obj), "dl_iterate_phdr knows us");
    CHECK(m->start == (obj.exec_lo & ~(uintptr_t)4095), "start %#lx vs segment %#lx",
            (unsigned long)m->start, (unsigned long)obj.exec_lo);
    CHECK(m->file_offset == (obj.exec_off & ~(uint64_t)4095), "offset %#llx vs p_offset %#llx",
            (unsigned long long)m->file_offset, (unsigned long long)obj.exec_off);

    /* Every mapping is executable, sorted, disjoint; lookups find each. */
    int n = mprof_sym_mapping_count(s), vdso = 0;
    CHECK(n >= 3, "at least exe, libc, ld.so: %d", n);
    for (int i = 0; i < n; i++) {
        const mprof_mapping *a = mprof_sym_mapping(s, i);
        CHECK(a->start < a->limit, "non-empty");
        if (i > 0)
            CHECK(mprof_sym_mapping(s, i - 1)->limit <= a->start, "sorted");
        CHECK(mprof_sym_find_mapping(s, a->start) == i &&
                    mprof_sym_find_mapping(s, a->limit - 1) == i,
                "find %d", i);
        if (strcmp(a->path, "[vdso]") == 0)
            vdso = 1;
    }
    CHECK(vdso, "the vdso is listed");
    CHECK(mprof_sym_mapping(s, -1) == NULL && mprof_sym_mapping(s, n) == NULL, "bounds");
    CHECK(mprof_sym_find_mapping(s, 0) == -1 && mprof_sym_find_mapping(s, UINTPTR_MAX) == -1,
            "no mapping at the ends");
}

/* libz on Debian is stripped to .dynsym: exported functions are named,
 * static ones must not borrow a neighbour's name. */
static void test_stripped_library(mprof_symbolizer *s)
{
    mprof_frame f[8];
    void *deflate_addr = dlsym(RTLD_DEFAULT, "deflate");
    CHECK(deflate_addr != NULL, "deflate found");
    if (!deflate_addr)
        return;
    uintptr_t pc = (uintptr_t)deflate_addr + 16;
    int n = mprof_sym_lookup(s, pc, f, 8);
    dump("deflate+16", f, n);
    CHECK(n >= 1 && strcmp(f[n - 1].function, "deflate") == 0, "deflate named");

    int mi = mprof_sym_find_mapping(s, pc);
    t_object obj;
    t_object_of(deflate_addr, &obj);
    char bid[160];
    t_build_id(obj.path, bid, sizeof bid);
    CHECK(mi >= 0 && strcmp(mprof_sym_mapping(s, mi)->build_id, bid) == 0, "libz build id %s",
            bid);

    uintptr_t gap;
    char naive[256];
    CHECK(t_uncovered_pc(&obj, &gap, naive, sizeof naive), "libz has code no symbol covers");
    n = mprof_sym_lookup(s, gap, f, 8);
    fprintf(stderr, "  libz %#lx: covered by no symbol (nearest preceding: %s)\n",
            (unsigned long)gap, naive);
    dump("libz gap", f, n);
    CHECK(n == 0, "no name for uncovered libz code, got %s", n ? f[0].function : "");
    CHECK(mprof_sym_find_mapping(s, gap) == mi, "still in libz's mapping");
}

static void test_libc_gap(mprof_symbolizer *s)
{
    mprof_frame f[8];
    t_object obj;
    CHECK(t_object_of((void *)&getpid, &obj), "libc");
    uintptr_t gap;
    char naive[256];
    if (!t_uncovered_pc(&obj, &gap, naive, sizeof naive)) {
        fprintf(stderr, "  libc: every byte of .text is covered by a symbol; nothing to check\n");
        return;
    }
    int n = mprof_sym_lookup(s, gap, f, 8);
    fprintf(stderr, "  libc %#lx: covered by no symbol (nearest preceding: %s)\n",
            (unsigned long)gap, naive);
    dump("libc gap", f, n);
    CHECK(n == 0, "no name for uncovered libc code");
    /* While a libc function's body is named. */
    n = mprof_sym_lookup(s, (uintptr_t)dlsym(RTLD_DEFAULT, "getpid") + 1, f, 8);
    dump("getpid+1", f, n);
    CHECK(n >= 1 && f[n - 1].function != NULL, "libc function named");
}

static void test_vdso(mprof_symbolizer *s)
{
    mprof_frame f[8];
    void *h = dlopen("linux-vdso.so.1", RTLD_LAZY | RTLD_NOLOAD);
    void *fn = h ? dlsym(h, "__vdso_clock_gettime") : NULL;
    if (fn == NULL) {
        fprintf(stderr, "  no vdso clock_gettime here; skipped\n");
        return;
    }
    int mi = mprof_sym_find_mapping(s, (uintptr_t)fn + 1);
    CHECK(mi >= 0 && strcmp(mprof_sym_mapping(s, mi)->path, "[vdso]") == 0, "vdso mapping");
    if (mi >= 0)
        fprintf(stderr, "  vdso build id: \"%s\"\n", mprof_sym_mapping(s, mi)->build_id);
    int n = mprof_sym_lookup(s, (uintptr_t)fn + 1, f, 8);
    dump("vdso clock_gettime+1", f, n);
    CHECK(n >= 1 && strstr(f[n - 1].function, "clock_gettime") != NULL, "vdso function named");
}

/* Odd mappings: anonymous code, memfd, a deleted shared object.  They must
 * not crash; the anonymous ones give bare addresses. */
static void test_odd_mappings(void)
{
    mprof_frame f[8];
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    unsigned char *anon = mmap(NULL, pg, PROT_READ | PROT_WRITE | PROT_EXEC,
                               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(anon != MAP_FAILED, "anon mmap");
    memset(anon, 0xc3, pg);

    int mfd = memfd_create("mprof-jit", MFD_CLOEXEC);
    unsigned char junk[4096];
    memset(junk, 0x90, sizeof junk);
    memcpy(junk, "\177ELF", 4); /* looks like ELF, is not */
    CHECK(mfd >= 0 && write(mfd, junk, sizeof junk) == (ssize_t)sizeof junk, "memfd");
    void *mem = mmap(NULL, sizeof junk, PROT_READ | PROT_EXEC, MAP_SHARED, mfd, 0);
    CHECK(mem != MAP_FAILED, "memfd mmap");

    /* A copy of libz, loaded, then unlinked: "(deleted)" in the maps. */
    char tmpl[] = "/tmp/mprof-sym-XXXXXX";
    int tfd = mkstemp(tmpl);
    t_object zobj;
    t_object_of(dlsym(RTLD_DEFAULT, "deflate"), &zobj);
    int zfd = open(zobj.path, O_RDONLY);
    char buf[65536];
    ssize_t r;
    while (zfd >= 0 && (r = read(zfd, buf, sizeof buf)) > 0)
        CHECK(write(tfd, buf, (size_t)r) == r, "copy");
    close(zfd);
    close(tfd);
    void *dz = dlopen(tmpl, RTLD_NOW | RTLD_LOCAL);
    unlink(tmpl);
    void *dz_deflate = dz ? dlsym(dz, "deflate") : NULL;
    CHECK(dz_deflate != NULL && dz_deflate != dlsym(RTLD_DEFAULT, "deflate"),
            "deleted copy loaded separately: %s", dlerror());

    mprof_symbolizer *s = mprof_sym_open();
    CHECK(s != NULL, "open");
    if (s == NULL)
        return;
    int mi = mprof_sym_find_mapping(s, (uintptr_t)anon + 8);
    CHECK(mi >= 0 && mprof_sym_mapping(s, mi)->path[0] == '\0', "anonymous mapping, empty path");
    CHECK(mprof_sym_lookup(s, (uintptr_t)anon + 8, f, 8) == 0, "anonymous code unnamed");
    mi = mprof_sym_find_mapping(s, (uintptr_t)mem + 8);
    CHECK(mi >= 0 && strcmp(mprof_sym_mapping(s, mi)->path, "/memfd:mprof-jit") == 0,
            "memfd path %s", mi >= 0 ? mprof_sym_mapping(s, mi)->path : "-");
    CHECK(mprof_sym_lookup(s, (uintptr_t)mem + 8, f, 8) == 0, "memfd code unnamed");
    if (dz_deflate) {
        uintptr_t pc = (uintptr_t)dz_deflate + 16;
        mi = mprof_sym_find_mapping(s, pc);
        CHECK(mi >= 0 && strcmp(mprof_sym_mapping(s, mi)->path, tmpl) == 0,
                "deleted file keeps its name without \" (deleted)\": %s",
                mi >= 0 ? mprof_sym_mapping(s, mi)->path : "-");
        char bid[160];
        t_build_id(zobj.path, bid, sizeof bid);
        CHECK(mi >= 0 && strcmp(mprof_sym_mapping(s, mi)->build_id, bid) == 0,
                "deleted file's build id from memory");
        int n = mprof_sym_lookup(s, pc, f, 8);
        dump("deleted libz copy, deflate+16", f, n);
        CHECK(n == 0 || strcmp(f[n - 1].function, "deflate") == 0, "deleted copy: no wrong name");
    }
    CHECK(mprof_sym_lookup(s, 0, f, 8) == 0 && mprof_sym_lookup(s, 1, f, 8) == 0 &&
                mprof_sym_lookup(s, UINTPTR_MAX, f, 8) == 0,
            "nonsense addresses");
    CHECK(mprof_sym_lookup(s, (uintptr_t)&sym_alpha, f, 0) == 0, "max 0");
    mprof_sym_close(s);
    munmap(anon, pg);
    munmap(mem, sizeof junk);
    close(mfd);
    if (dz)
        dlclose(dz);
}

/* The result cache: a second symbolizer answers an address the first one
 * resolved with the same frames, without opening its DWARF reader. */
static void test_cache_reuse(void)
{
    mprof_frame a[8], b[8];
    int line;
    uintptr_t pc = sym_alpha(&line);
    mprof_symbolizer *s1 = mprof_sym_open();
    REQUIRE(s1 != NULL, "open");
    int na = mprof_sym_lookup(s1, pc, a, 8);
    REQUIRE(na >= 1 && a[0].function && strcmp(a[0].function, "sym_alpha") == 0, "sym_alpha");
    CHECK(mprof_sym_reader_opened(s1), "a new address opens the reader");
    size_t bytes, pcs;
    mprof_sym_cache_stats(&bytes, &pcs);
    CHECK(pcs >= 1 && bytes > 0, "cache holds %zu pcs in %zu bytes", pcs, bytes);
    mprof_sym_close(s1);

    mprof_symbolizer *s2 = mprof_sym_open();
    REQUIRE(s2 != NULL, "open");
    int nb = mprof_sym_lookup(s2, pc, b, 8);
    CHECK(nb == na && strcmp(b[0].function, a[0].function) == 0 && b[0].line == line &&
              b[0].file && strcmp(base(b[0].file), "test_symbolize.c") == 0,
          "cached frames equal");
    CHECK(!mprof_sym_reader_opened(s2), "a cached address opens no DWARF reader");
    /* A cached answer respects a smaller max, keeping the physical
     * function last. */
    int inner, call;
    uintptr_t ipc = sym_outer(&inner, &call);
    mprof_frame c[8];
    int nc = mprof_sym_lookup(s2, ipc, c, 8);
    CHECK(nc == 2, "inline chain of 2, got %d", nc);
    nc = mprof_sym_lookup(s2, ipc, c, 8); /* now from the cache */
    CHECK(nc == 2 && strcmp(c[1].function, "sym_outer") == 0, "cached chain");
    nc = mprof_sym_lookup(s2, ipc, c, 1);
    CHECK(nc == 1 && strcmp(c[0].function, "sym_outer") == 0, "max 1 keeps the physical frame");
    mprof_sym_close(s2);
}

/* A library unloaded and loaded again at another address: the new load's
 * frames resolve to its own function and line, and the old address, now
 * nothing, to no frames. */
static void test_cache_reload(const char *lib)
{
    if (lib == NULL) {
        fprintf(stderr, "  no test library given; reload test skipped\n");
        return;
    }
    void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    REQUIRE(h != NULL, "dlopen %s: %s", lib, dlerror());
    uintptr_t (*where)(int *) = (uintptr_t(*)(int *))dlsym(h, "symtest_where");
    REQUIRE(where != NULL, "symtest_where");
    int line1, line2;
    uintptr_t pc1 = where(&line1);
    mprof_frame f[8];
    mprof_symbolizer *s = mprof_sym_open();
    REQUIRE(s != NULL, "open");
    int n = mprof_sym_lookup(s, pc1, f, 8);
    CHECK(n >= 1 && strcmp(f[n - 1].function, "symtest_where") == 0 && f[0].line == line1,
          "first load: symtest_where at line %d", line1);
    mprof_sym_close(s);
    /* Where the first load's code was, keep an anonymous placeholder, so
     * that the loader must put the second one elsewhere. */
    t_object obj;
    REQUIRE(t_object_of((void *)where, &obj), "the library's object");
    uintptr_t page = pc1 & ~(uintptr_t)4095;
    dlclose(h);
    void *hold = mmap((void *)page, 4096, PROT_READ | PROT_EXEC,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    CHECK(hold == (void *)page, "placeholder at the old address");
    h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    REQUIRE(h != NULL, "dlopen again: %s", dlerror());
    where = (uintptr_t(*)(int *))dlsym(h, "symtest_where");
    uintptr_t pc2 = where(&line2);
    CHECK(pc2 != pc1, "loaded elsewhere");
    s = mprof_sym_open();
    REQUIRE(s != NULL, "open");
    n = mprof_sym_lookup(s, pc2, f, 8);
    CHECK(n >= 1 && strcmp(f[n - 1].function, "symtest_where") == 0 && f[0].line == line2,
          "second load: symtest_where at line %d, got %s:%d", line2, n ? f[n - 1].function : "-",
          n ? f[0].line : 0);
    n = mprof_sym_lookup(s, pc1, f, 8);
    CHECK(n == 0, "the first load's address now names nothing, got %s",
          n ? f[n - 1].function : "");
    mprof_sym_close(s);
    dlclose(h);
    if (hold != MAP_FAILED)
        munmap(hold, 4096);
}

/* A line only inside the function the symbol table names: _start (crt1,
 * no line table of its own) and a stripped library's exported function
 * must not get the nearest line of some other unit. */
extern void _start(void);

static void test_line_sanity(void)
{
    mprof_frame f[8];
    mprof_symbolizer *s = mprof_sym_open();
    REQUIRE(s != NULL, "open");
    int n = mprof_sym_lookup(s, (uintptr_t)&_start + 4, f, 8);
    dump("_start+4", f, n);
    CHECK(n >= 1 && strcmp(f[n - 1].function, "_start") == 0, "_start named");
    CHECK(n >= 1 && (f[0].file == NULL || strstr(f[0].file, "start.S") != NULL),
          "_start has no line or its own, got %s:%d", n ? f[0].file : "-", n ? f[0].line : 0);
    void *deflate_addr = dlsym(RTLD_DEFAULT, "deflate");
    n = deflate_addr ? mprof_sym_lookup(s, (uintptr_t)deflate_addr + 16, f, 8) : 0;
    CHECK(n >= 1 && (f[0].file == NULL || strstr(f[0].file, "deflate.c") != NULL),
          "deflate has no line or its own, got %s:%d", n ? f[0].file : "-", n ? f[0].line : 0);
    mprof_sym_close(s);
}

int main(int argc, char **argv)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    mprof_symbolizer *s = mprof_sym_open();
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CHECK(s != NULL, "mprof_sym_open");
    if (s == NULL)
        return 1;
    fprintf(stderr, "mprof_sym_open: %.2f ms, %d executable mappings\n",
            (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6,
            mprof_sym_mapping_count(s));
    test_mappings(s);
    test_own_functions(s);
    test_stripped_library(s);
    test_libc_gap(s);
    test_vdso(s);
    mprof_sym_close(s);
    mprof_sym_close(NULL);
    CHECK(mprof_sym_lookup(NULL, 1, NULL, 0) == 0 && mprof_sym_mapping_count(NULL) == 0, "NULL");
    test_odd_mappings();
    test_cache_reuse();
    test_cache_reload(argc > 1 ? argv[1] : NULL);
    test_line_sanity();
    return check_result("test_symbolize");
}
