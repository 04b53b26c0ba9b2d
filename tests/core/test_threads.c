/*
 * Threads: 8 threads allocate (malloc, calloc), reallocate and free
 * concurrently, passing blocks to each other through a shared queue so that
 * most blocks are freed by a thread other than the one that allocated them.
 * At MPROF_RATE=1 every allocation is sampled, so the profile must account
 * for them exactly: at the end, when everything has been freed, every
 * bucket of these sites has as many frees as allocations (in-use 0), and
 * the totals equal the program's own counts.  Contents are checked too
 * (a block handed out twice, or freed under someone, shows as corruption).
 *
 * Built twice: test_threads knows nothing of mprof (run under LD_PRELOAD,
 * the API found with dlsym); test_threads_static links libmprof.a (its
 * malloc interposes by static linking), for the sanitizer builds (TSan).
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_test.h"
#include "mprof.h"

#define NTHREADS 8
#define ITERS 50000
#define QCAP 2048
#define KEEP(x) __asm__ volatile("" : : "r"(x) : "memory")

struct block {
    uint32_t magic, size; /* size of the whole block */
    unsigned char fill;
};

static struct {
    pthread_mutex_t lock;
    struct block *q[QCAP];
    int head, count;
} queue = {PTHREAD_MUTEX_INITIALIZER, {0}, 0, 0};

static _Atomic long n_allocs, n_reallocs, n_frees, corrupt;
static _Atomic long long bytes_allocated;

static int push(struct block *b)
{
    int ok = 0;
    pthread_mutex_lock(&queue.lock);
    if (queue.count < QCAP) {
        queue.q[(queue.head + queue.count) % QCAP] = b;
        queue.count++;
        ok = 1;
    }
    pthread_mutex_unlock(&queue.lock);
    return ok;
}

static struct block *pop(void)
{
    struct block *b = NULL;
    pthread_mutex_lock(&queue.lock);
    if (queue.count > 0) {
        b = queue.q[queue.head];
        queue.head = (queue.head + 1) % QCAP;
        queue.count--;
    }
    pthread_mutex_unlock(&queue.lock);
    return b;
}

static void fill(struct block *b, uint32_t size, unsigned char c)
{
    b->magic = 0xB10CB10C;
    b->size = size;
    b->fill = c;
    memset((char *)b + sizeof *b, c, size - sizeof *b);
}

static void verify(const struct block *b)
{
    const unsigned char *p = (const unsigned char *)b + sizeof *b;
    if (b->magic != 0xB10CB10C || p[0] != b->fill || p[b->size - sizeof *b - 1] != b->fill)
        atomic_fetch_add(&corrupt, 1);
}

/* The allocation sites whose buckets are checked. */
CORE_NOIPA struct block *thr_alloc(uint32_t size, int zeroed)
{
    struct block *b = zeroed ? calloc(1, size) : malloc(size);
    KEEP(b);
    return b;
}

CORE_NOIPA struct block *thr_realloc(struct block *b, uint32_t size)
{
    struct block *n = realloc(b, size);
    KEEP(n);
    return n;
}

static void release(struct block *b)
{
    verify(b);
    b->magic = 0;
    free(b);
    atomic_fetch_add(&n_frees, 1);
}

static void *worker(void *arg)
{
    uint64_t x = 0x9E3779B97F4A7C15ull * ((uintptr_t)arg + 1);
    for (int i = 0; i < ITERS; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint32_t op = (uint32_t)(x % 10);
        uint32_t size = (uint32_t)sizeof(struct block) + 1 + (uint32_t)((x >> 16) % 3000);
        if (op < 5) {
            struct block *b = thr_alloc(size, op == 0);
            if (b == NULL)
                abort();
            atomic_fetch_add(&n_allocs, 1);
            atomic_fetch_add(&bytes_allocated, size);
            fill(b, size, (unsigned char)(x >> 40));
            if (!push(b))
                release(b);
        } else {
            struct block *b = pop();
            if (b == NULL)
                continue;
            verify(b);
            if (op < 7) {
                unsigned char c = b->fill;
                struct block *n = thr_realloc(b, size);
                if (n == NULL)
                    abort();
                atomic_fetch_add(&n_reallocs, 1);
                atomic_fetch_add(&bytes_allocated, size);
                /* the kept prefix must have survived */
                uint32_t keep = n->size < size ? n->size : size;
                const unsigned char *p = (const unsigned char *)n + sizeof *n;
                if (n->magic != 0xB10CB10C || p[0] != c || p[keep - sizeof *n - 1] != c)
                    atomic_fetch_add(&corrupt, 1);
                fill(n, size, (unsigned char)(x >> 48));
                if (!push(n))
                    release(n);
            } else {
                release(b);
            }
        }
    }
    return NULL;
}

#define MAX_RECS 16384
static mprof_mem_record recs[MAX_RECS];

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    int (*mem_profile)(mprof_mem_record *, int, int) =
        (int (*)(mprof_mem_record *, int, int))dlsym(RTLD_DEFAULT, "mprof_mem_profile");
    long (*get_rate)(void) = (long (*)(void))dlsym(RTLD_DEFAULT, "mprof_get_rate");
    CHECK(mem_profile != NULL && get_rate != NULL, "libmprof is not loaded");
    if (mem_profile == NULL || get_rate == NULL)
        return check_result("threads");
    CHECK(get_rate() == 1, "run with MPROF_RATE=1 (rate is %ld)", get_rate());

    pthread_t t[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)i);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    struct block *b;
    while ((b = pop()) != NULL)
        release(b);

    long allocs = atomic_load(&n_allocs), reallocs = atomic_load(&n_reallocs);
    CHECK(atomic_load(&corrupt) == 0, "%ld corrupted blocks", atomic_load(&corrupt));
    CHECK(atomic_load(&n_frees) == allocs, "test bookkeeping: %ld frees for %ld allocations",
          atomic_load(&n_frees), allocs);

    int n = mem_profile(recs, MAX_RECS, 1);
    CHECK(n <= MAX_RECS, "%d records", n);
    uintptr_t alo, ahi, rlo, rhi;
    core_fn_range((const void *)thr_alloc, &alo, &ahi);
    core_fn_range((const void *)thr_realloc, &rlo, &rhi);
    long long a_objs = 0, a_frees = 0, r_objs = 0, r_frees = 0, bytes = 0, fbytes = 0;
    int buckets = 0, bad = 0;
    for (int i = 0; i < n && i < MAX_RECS; i++) {
        const mprof_mem_record *r = &recs[i];
        int is_a = r->nstack > 0 && r->stack[0] >= alo && r->stack[0] < ahi;
        int is_r = r->nstack > 0 && r->stack[0] >= rlo && r->stack[0] < rhi;
        if (!is_a && !is_r)
            continue;
        buckets++;
        if (r->alloc_objects != r->free_objects || r->alloc_bytes != r->free_bytes) {
            if (bad++ < 5)
                fprintf(stderr, "bucket size %zu: %lld allocs %lld frees, %lld/%lld bytes\n",
                        r->size, (long long)r->alloc_objects, (long long)r->free_objects,
                        (long long)r->alloc_bytes, (long long)r->free_bytes);
        }
        if (is_a) {
            a_objs += r->alloc_objects;
            a_frees += r->free_objects;
        } else {
            r_objs += r->alloc_objects;
            r_frees += r->free_objects;
        }
        bytes += r->alloc_bytes;
        fbytes += r->free_bytes;
    }
    CHECK(bad == 0, "%d of %d buckets have blocks in use after everything was freed", bad, buckets);
    CHECK(a_objs == allocs, "malloc/calloc site: %lld sampled, %ld made", a_objs, allocs);
    CHECK(r_objs == reallocs, "realloc site: %lld sampled, %ld made", r_objs, reallocs);
    CHECK(a_frees + r_frees == a_objs + r_objs, "%lld frees matched for %lld allocations",
          a_frees + r_frees, a_objs + r_objs);
    CHECK(bytes == atomic_load(&bytes_allocated) && fbytes == bytes,
          "bytes: %lld allocated, %lld freed in the profile, %lld by the program", bytes, fbytes,
          atomic_load(&bytes_allocated));
    printf("  %d threads: %ld allocations, %ld reallocations, %d buckets, all matched\n",
           NTHREADS, allocs, reallocs, buckets);
    return check_result("threads");
}
