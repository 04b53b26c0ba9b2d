/*
 * The malloc interposer's semantics, checked on an unmodified program.
 *
 * This program knows nothing of mprof: core_interpose.sh runs it plain,
 * then under LD_PRELOAD=libmprof.so with MPROF_RATE=1 and with the default
 * rate.  Every run must pass its own checks (glibc's documented behaviour)
 * and print the same transcript on stdout (sizes, alignments, errno values
 * and NULL-ness, never pointer values): the interposer must be invisible.
 *
 * When libmprof is loaded (found with dlsym) and MPROF_RATE=1, it also
 * checks, through mprof_mem_profile, that each allocation function's
 * blocks are recorded at the calling site and that every free, including
 * that of a block whose realloc failed, is matched (in-use back to 0).
 * Those checks print to stderr only, so the transcripts stay comparable.
 */
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core_test.h"
#include "mprof.h"

#define KEEP(x) __asm__ volatile("" : : "r"(x) : "memory")

/* Transcript line. */
#define T(...) printf(__VA_ARGS__)

static int (*mem_profile)(mprof_mem_record *, int, int);
static int rate1;

/* ------------------------------------------------------------ mprof view */

#define MAX_RECS 4096
static mprof_mem_record recs[MAX_RECS];

struct site {
    int64_t allocs, frees, alloc_bytes, free_bytes;
    int records;
};

static struct site site_of(const void *fn)
{
    struct site s = {0, 0, 0, 0, 0};
    uintptr_t lo, hi;
    core_fn_range(fn, &lo, &hi);
    int n = mem_profile(recs, MAX_RECS, 1);
    for (int i = 0; i < n && i < MAX_RECS; i++)
        if (recs[i].nstack > 0 && recs[i].stack[0] >= lo && recs[i].stack[0] < hi) {
            s.records++;
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
            struct site s_ = site_of((const void *)(fn));                                     \
            CHECK(s_.allocs == (a) && s_.frees == (f) && s_.alloc_bytes == (ab) &&            \
                      s_.free_bytes == (fb),                                                  \
                  "%s: mprof shows %lld allocs %lld frees %lld/%lld bytes, want %lld %lld "    \
                  "%lld/%lld",                                                                \
                  #fn, (long long)s_.allocs, (long long)s_.frees, (long long)s_.alloc_bytes,  \
                  (long long)s_.free_bytes, (long long)(a), (long long)(f), (long long)(ab),  \
                  (long long)(fb));                                                           \
        }                                                                                     \
    } while (0)

/* ------------------------------------------------------------ sites */

static void *blocks[16];

CORE_NOIPA void site_first(void)
{
    for (volatile int i = 0; i < 10; i++)
        blocks[i] = malloc(100);
}

/* Each site calls the allocator once, not as a tail call (KEEP after the
 * call), so that the call is inside the site's function. */
#define SITE(ret, name, params, call)                                                         \
    CORE_NOIPA ret name params                                                                \
    {                                                                                         \
        ret r_ = call;                                                                        \
        KEEP(r_);                                                                             \
        return r_;                                                                            \
    }
SITE(void *, site_realloc_victim, (void), malloc(1000))
SITE(void *, site_realloc_grow, (void *p, size_t n), realloc(p, n))
SITE(void *, site_realloc_fail, (void *p, size_t n), realloc(p, n))
SITE(void *, site_reallocarray, (void *p, size_t n, size_t m), reallocarray(p, n, m))
SITE(void *, site_calloc, (size_t n, size_t m), calloc(n, m))
SITE(int, site_posix_memalign, (void **p, size_t a, size_t n), posix_memalign(p, a, n))
SITE(void *, site_aligned_alloc, (size_t a, size_t n), aligned_alloc(a, n))
SITE(void *, site_memalign, (size_t a, size_t n), memalign(a, n))
SITE(void *, site_valloc, (size_t n), valloc(n))
SITE(void *, site_pvalloc, (size_t n), pvalloc(n))
SITE(void *, site_realloc_null, (size_t n), realloc(NULL, n))

/* Sizes no allocator can satisfy; volatile so that the compiler does not
 * warn about (or fold) the calls. */
static volatile size_t vmax = SIZE_MAX;

static int aligned(const void *p, size_t a) { return ((uintptr_t)p & (a - 1)) == 0; }

static int all_bytes(const void *p, int c, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != (unsigned char)c)
            return 0;
    return 1;
}

/* ------------------------------------------------------------ checks */

static void check_malloc(void)
{
    void *p = malloc(0);
    CHECK(p != NULL, "malloc(0) returned NULL");
    T("malloc(0): %s usable %zu\n", p ? "non-NULL" : "NULL", malloc_usable_size(p));
    free(p);

    errno = 0;
    p = malloc(vmax - 4096);
    CHECK(p == NULL && errno == ENOMEM, "malloc(huge): %p errno %d", p, errno);
    T("malloc(huge): %s errno %d\n", p ? "non-NULL" : "NULL", errno);

    /* A successful malloc leaves errno alone (so does the sampler). */
    errno = 4321;
    p = malloc(100);
    CHECK(errno == 4321, "malloc changed errno to %d", errno);
    T("errno after malloc: %d\n", errno);
    errno = 1234;
    free(p);
    CHECK(errno == 1234, "free changed errno to %d", errno);
    free(NULL);
    CHECK(errno == 1234, "free(NULL) changed errno to %d", errno);
    T("errno after free: %d\n", errno);

    T("malloc_usable_size(NULL): %zu\n", malloc_usable_size(NULL));
    CHECK(malloc_usable_size(NULL) == 0, "malloc_usable_size(NULL) != 0");
    static const size_t sizes[] = {1, 8, 24, 25, 100, 1000, 4096, 100000, 200000, 5000000};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        p = malloc(sizes[i]);
        size_t u = malloc_usable_size(p);
        CHECK(p != NULL && u >= sizes[i], "malloc(%zu): usable %zu", sizes[i], u);
        CHECK(aligned(p, 16), "malloc(%zu) not 16-aligned", sizes[i]);
        memset(p, 0x5a, u); /* the whole usable size is ours */
        /* Exact figures below glibc's mmap threshold only: above it, whether
         * a block is mmapped depends on the dynamic threshold, i.e. on the
         * history of earlier frees. */
        if (sizes[i] < 128 * 1024)
            T("malloc(%zu): usable %zu\n", sizes[i], u);
        else
            T("malloc(%zu): usable >= size\n", sizes[i]);
        free(p);
    }
}

static void check_calloc(void)
{
    const size_t bad[][2] = {
        {vmax, 2}, {2, vmax / 2 + 1}, {(size_t)1 << 32, (size_t)1 << 32}, {vmax, vmax}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        errno = 0;
        void *p = calloc(bad[i][0], bad[i][1]);
        CHECK(p == NULL && errno == ENOMEM, "calloc overflow %zu: %p errno %d", i, p, errno);
        T("calloc(overflow %zu): %s errno %d\n", i, p ? "non-NULL" : "NULL", errno);
    }
    void *c = site_calloc(10, 10);
    CHECK(c != NULL && all_bytes(c, 0, 100), "calloc(10, 10)");
    EXPECT_SITE(site_calloc, 1, 0, 100, 0);
    free(c);
    EXPECT_SITE(site_calloc, 1, 1, 100, 100);
    void *a = calloc(0, 10), *b = calloc(10, 0);
    CHECK(a != NULL && b != NULL, "calloc with a zero count returned NULL");
    T("calloc(0,10) %s calloc(10,0) %s\n", a ? "non-NULL" : "NULL", b ? "non-NULL" : "NULL");
    free(a);
    free(b);
    /* Zeroed, also when the memory is recycled from dirty blocks. */
    static const size_t sizes[] = {1, 16, 100, 1000, 40000, 300000, 3000000};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        for (int round = 0; round < 3; round++) {
            void *d = malloc(sizes[i]);
            memset(d, 0xff, malloc_usable_size(d));
            free(d);
            unsigned char *z = calloc(1, sizes[i]);
            CHECK(z != NULL && all_bytes(z, 0, sizes[i]), "calloc(1, %zu) not zeroed", sizes[i]);
            free(z);
        }
        T("calloc(1, %zu): zeroed\n", sizes[i]);
    }
}

static void check_realloc(void)
{
    /* realloc(NULL, n) is malloc(n). */
    void *p = site_realloc_null(100);
    CHECK(p != NULL && malloc_usable_size(p) >= 100, "realloc(NULL, 100)");
    T("realloc(NULL,100): usable %zu\n", malloc_usable_size(p));
    EXPECT_SITE(site_realloc_null, 1, 0, 100, 0);
    memset(p, 7, 100);
    /* Growth and shrink keep the contents. */
    p = realloc(p, 100000);
    CHECK(p != NULL && all_bytes(p, 7, 100), "realloc grow lost the contents");
    memset(p, 8, 100000);
    p = realloc(p, 50);
    CHECK(p != NULL && all_bytes(p, 8, 50), "realloc shrink lost the contents");
    T("realloc grow/shrink: contents kept, usable >= %d\n", malloc_usable_size(p) >= 50);
    EXPECT_SITE(site_realloc_null, 1, 1, 100, 100);

    /* realloc(p, 0): glibc frees p and returns NULL. */
    errno = 0;
    void *q = realloc(p, 0);
    CHECK(q == NULL, "realloc(p, 0) returned %p", q);
    T("realloc(p,0): %s errno %d\n", q ? "non-NULL" : "NULL", errno);
    q = realloc(NULL, 0);
    CHECK(q != NULL, "realloc(NULL, 0) returned NULL");
    T("realloc(NULL,0): %s\n", q ? "non-NULL" : "NULL");
    free(q);

    /* Failure: NULL, ENOMEM, the block still valid and still ours. */
    p = site_realloc_victim();
    memset(p, 0x3c, 1000);
    size_t u = malloc_usable_size(p);
    EXPECT_SITE(site_realloc_victim, 1, 0, 1000, 0);
    errno = 0;
    q = site_realloc_fail(p, vmax - 8192);
    int e = errno;
    CHECK(q == NULL && e == ENOMEM, "realloc(p, huge): %p errno %d", q, e);
    CHECK(all_bytes(p, 0x3c, 1000) && malloc_usable_size(p) == u,
          "the block of a failed realloc changed");
    T("realloc(p,huge): %s errno %d, block intact\n", q ? "non-NULL" : "NULL", e);
    EXPECT_SITE(site_realloc_victim, 1, 0, 1000, 0); /* still in use */
    EXPECT_SITE(site_realloc_fail, 0, 0, 0, 0);
    /* Grow it for real now: the old block's free is matched, the new one
     * belongs to the realloc site. */
    p = site_realloc_grow(p, 3000);
    CHECK(p != NULL && all_bytes(p, 0x3c, 1000), "realloc after a failed realloc");
    EXPECT_SITE(site_realloc_victim, 1, 1, 1000, 1000);
    EXPECT_SITE(site_realloc_grow, 1, 0, 3000, 0);
    /* reallocarray overflow: ENOMEM, block untouched and still tracked. */
    errno = 0;
    q = site_reallocarray(p, vmax / 2, 3);
    e = errno;
    CHECK(q == NULL && e == ENOMEM, "reallocarray overflow: %p errno %d", q, e);
    CHECK(all_bytes(p, 0x3c, 1000), "reallocarray overflow changed the block");
    T("reallocarray(p, overflow): %s errno %d\n", q ? "non-NULL" : "NULL", e);
    errno = 1234;
    free(p);
    CHECK(errno == 1234, "free of a (sampled) block changed errno to %d", errno);
    EXPECT_SITE(site_realloc_grow, 1, 1, 3000, 3000);
    EXPECT_SITE(site_reallocarray, 0, 0, 0, 0);

    q = site_reallocarray(NULL, 10, 10);
    CHECK(q != NULL && malloc_usable_size(q) >= 100, "reallocarray(NULL, 10, 10)");
    T("reallocarray(NULL,10,10): usable %zu\n", malloc_usable_size(q));
    EXPECT_SITE(site_reallocarray, 1, 0, 100, 0);
    q = reallocarray(q, 0, 0); /* realloc(q, 0): frees */
    CHECK(q == NULL, "reallocarray(p, 0, 0) returned %p", q);
    EXPECT_SITE(site_reallocarray, 1, 1, 100, 100);
}

static void check_aligned(void)
{
    /* posix_memalign: EINVAL for an alignment that is not a power of two
     * multiple of sizeof(void *); *out untouched. */
    static const size_t bad[] = {0, 1, 2, 3, 4, 12, 24, 48, 1000};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        void *p = (void *)0x1234;
        errno = 0;
        int rc = site_posix_memalign(&p, bad[i], 100);
        CHECK(rc == EINVAL && p == (void *)0x1234, "posix_memalign(align %zu): rc %d", bad[i], rc);
        T("posix_memalign(align %zu): rc %d errno %d out %s\n", bad[i], rc, errno,
          p == (void *)0x1234 ? "untouched" : "changed");
    }
    int n_ok = 0;
    int64_t bytes_ok = 0;
    for (size_t a = 8; a <= 65536; a *= 2) {
        static const size_t sizes[] = {1, 100, 5000, 200000};
        for (size_t i = 0; i < 4; i++) {
            void *p = NULL;
            int rc = site_posix_memalign(&p, a, sizes[i]);
            CHECK(rc == 0 && p != NULL && aligned(p, a) && malloc_usable_size(p) >= sizes[i],
                  "posix_memalign(%zu, %zu): rc %d %p", a, sizes[i], rc, p);
            memset(p, 1, sizes[i]);
            free(p);
            n_ok++;
            bytes_ok += (int64_t)sizes[i];
        }
        T("posix_memalign(align %zu): aligned\n", a);
    }
    EXPECT_SITE(site_posix_memalign, n_ok, n_ok, bytes_ok, bytes_ok);
    {
        void *p = NULL;
        int rc = posix_memalign(&p, 64, 0);
        T("posix_memalign(64, 0): rc %d %s\n", rc, p ? "non-NULL" : "NULL");
        free(p);
        p = (void *)0x1234;
        rc = posix_memalign(&p, 64, vmax - 100);
        CHECK(rc == ENOMEM && p == (void *)0x1234, "posix_memalign(huge): rc %d", rc);
        T("posix_memalign(64, huge): rc %d\n", rc);
    }

    /* aligned_alloc, memalign, valloc, pvalloc. */
    for (size_t a = 16; a <= 65536; a *= 4) {
        void *p = site_aligned_alloc(a, 3 * a);
        CHECK(p != NULL && aligned(p, a), "aligned_alloc(%zu)", a);
        free(p);
        p = site_memalign(a, 100);
        CHECK(p != NULL && aligned(p, a), "memalign(%zu)", a);
        free(p);
        T("aligned_alloc/memalign(%zu): aligned\n", a);
    }
    EXPECT_SITE(site_aligned_alloc, 7, 7, 3 * (16 + 64 + 256 + 1024 + 4096 + 16384 + 65536),
                3 * (16 + 64 + 256 + 1024 + 4096 + 16384 + 65536));
    EXPECT_SITE(site_memalign, 7, 7, 700, 700);
    static const size_t odd[] = {3, 24, 100};
    for (size_t i = 0; i < 3; i++) {
        errno = 0;
        void *p = aligned_alloc(odd[i], 64);
        int e1 = errno;
        int a1 = p ? (int)__builtin_ctzll((uintptr_t)p) : -1;
        free(p);
        errno = 0;
        void *q = memalign(odd[i], 64);
        int e2 = errno;
        int ok = q ? aligned(q, 16) : 0;
        free(q);
        T("aligned_alloc(%zu): %s errno %d align>=%s; memalign(%zu): %s errno %d\n", odd[i],
          p ? "non-NULL" : "NULL", e1, a1 >= 4 ? "16" : "?", odd[i], q ? "non-NULL" : "NULL", e2);
        (void)ok;
    }
    errno = 0;
    void *h = memalign(vmax / 2 + 2, 10);
    T("memalign(huge alignment): %s errno %d\n", h ? "non-NULL" : "NULL", errno);
    free(h);

    long page = sysconf(_SC_PAGESIZE);
    void *v = site_valloc(100);
    CHECK(v != NULL && aligned(v, (size_t)page), "valloc not page aligned");
    T("valloc(100): page aligned %d\n", v && aligned(v, (size_t)page));
    free(v);
    EXPECT_SITE(site_valloc, 1, 1, 100, 100);
    static const size_t psizes[] = {0, 1, 100, 4096, 5000};
    for (size_t i = 0; i < sizeof psizes / sizeof *psizes; i++) {
        void *p = site_pvalloc(psizes[i]);
        size_t u = p ? malloc_usable_size(p) : 0;
        size_t rounded = (psizes[i] + (size_t)page - 1) / (size_t)page * (size_t)page;
        CHECK(p != NULL && aligned(p, (size_t)page) && u >= rounded,
              "pvalloc(%zu): usable %zu, want >= %zu, page aligned", psizes[i], u, rounded);
        memset(p, 2, rounded);
        T("pvalloc(%zu): page aligned, usable >= %zu\n", psizes[i], rounded);
        free(p);
    }
}

/* libc's own allocations (strdup, stdio, ...) come through the same
 * functions and are freed by ours. */
static void check_libc_internal(void)
{
    char *s = strdup("interposed");
    char *t = NULL;
    int n = asprintf(&t, "%s %d", s, 42);
    CHECK(n == 13 && t && strcmp(t, "interposed 42") == 0, "asprintf");
    free(s);
    free(t);
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    for (int i = 0; i < 10000; i++)
        fprintf(m, "%d,", i);
    fclose(m);
    CHECK(len > 40000 && buf && strncmp(buf, "0,1,2,", 6) == 0, "open_memstream");
    free(buf);
    FILE *f = fopen("/proc/self/maps", "r");
    char *line = NULL;
    size_t cap = 0;
    int lines = 0;
    while (f && getline(&line, &cap, f) > 0)
        lines++;
    free(line);
    if (f)
        fclose(f);
    CHECK(lines > 5, "reading /proc/self/maps");
    void *lib = dlopen("libm.so.6", RTLD_NOW);
    CHECK(lib != NULL, "dlopen(libm): %s", dlerror());
    if (lib) {
        double (*cosp)(double) = (double (*)(double))dlsym(lib, "cos");
        CHECK(cosp && cosp(0.0) == 1.0, "dlsym(cos)");
        dlclose(lib);
    }
    T("libc internal allocations: ok\n");
}

/* Random churn with content checks. */
static void check_churn(void)
{
    enum { N = 512 };
    unsigned char *p[N] = {0};
    size_t sz[N] = {0};
    uint64_t x = 88172645463325252ull;
    for (int it = 0; it < 100000; it++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int i = (int)(x % N);
        if (p[i]) {
            CHECK(sz[i] == 0 || (p[i][0] == (unsigned char)i && p[i][sz[i] - 1] == (unsigned char)i),
                  "block %d corrupted", i);
            if ((x >> 32) & 1) {
                free(p[i]);
                p[i] = NULL;
                continue;
            }
            size_t n = (x >> 40) % 70000;
            unsigned char *q = realloc(p[i], n);
            if (n == 0) {
                p[i] = NULL;
                continue;
            }
            CHECK(q != NULL, "realloc");
            p[i] = q;
            sz[i] = n;
        } else {
            size_t n = 1 + (x >> 40) % 70000;
            p[i] = ((x >> 20) & 3) == 0 ? calloc(1, n) : malloc(n);
            sz[i] = n;
        }
        p[i][0] = p[i][sz[i] - 1] = (unsigned char)i;
    }
    for (int i = 0; i < N; i++)
        free(p[i]);
    T("churn: ok\n");
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* First thing: these must be sampled at MPROF_RATE=1. */
    site_first();

    mem_profile = (int (*)(mprof_mem_record *, int, int))dlsym(RTLD_DEFAULT, "mprof_mem_profile");
    const char *want = getenv("CORE_EXPECT_MPROF");
    if (want && *want == '1')
        CHECK(mem_profile != NULL, "libmprof is not loaded (LD_PRELOAD=%s)",
              getenv("LD_PRELOAD") ? getenv("LD_PRELOAD") : "");
    const char *r = getenv("MPROF_RATE");
    rate1 = mem_profile != NULL && r != NULL && strcmp(r, "1") == 0;
    fprintf(stderr, "test_interpose: mprof %s, rate-1 checks %s\n",
            mem_profile ? "loaded" : "not loaded", rate1 ? "on" : "off");
    /* How frees find sampled blocks: by header over glibc, by table over
     * another allocator or with MPROF_HEADERS=0 (core_interpose.sh says). */
    const char *want_headers = getenv("CORE_EXPECT_HEADERS");
    void (*get_stats)(mprof_stats *) = (void (*)(mprof_stats *))dlsym(RTLD_DEFAULT, "mprof_get_stats");
    if (want_headers != NULL && get_stats != NULL) {
        mprof_stats st;
        get_stats(&st);
        CHECK(st.block_headers == atoi(want_headers), "block_headers %d, expected %s",
              st.block_headers, want_headers);
    }

    EXPECT_SITE(site_first, 10, 0, 1000, 0);
    for (int i = 0; i < 10; i++)
        free(blocks[i]);
    EXPECT_SITE(site_first, 10, 10, 1000, 1000);

    check_malloc();
    check_calloc();
    check_realloc();
    check_aligned();
    check_libc_internal();
    check_churn();
    return check_result("test_interpose");
}
