/*
 * The three-cycle accounting that makes heap profiles consistent snapshots
 * (as Go's memRecord.future does), driven
 * through the public API on fake addresses (slots of a static array, never
 * touched by malloc) at rate 1:
 *
 *   timeline   allocations and explicit frees at cycle C are published by
 *              the flush of cycle C+2, sweep frees by the flush of C+1; a
 *              read between next_cycle and flush completes that flush, and
 *              publishes nothing newer
 *   model      a long random sequence of alloc / explicit free / sweep free
 *              / next_cycle / flush / read compared, at every read, with a
 *              model of what must be published; in-use never negative
 *   threads    4 threads allocating and freeing (explicitly, and as
 *              "sweeps" once a collection has passed) while a driver thread
 *              runs next_cycle/flush and a reader reads: in-use never
 *              negative, and exact totals at the end
 *
 * Once mprof_next_cycle() has been called the profiler publishes only
 * complete cycles, as Go does; each mode runs in its own process.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core_test.h"
#include "mprof.h"

#define MAX_RECS 4096
static mprof_mem_record recs[MAX_RECS];

/* Fake heap: the profiler only ever sees these addresses. */
#define NOBJ 4096
static char fake_heap[NOBJ][16] __attribute__((aligned(64)));

/* The only call site of mprof_record_alloc: buckets differ by size class.
 * The empty asm keeps the calls out of tail position, so that the caller
 * of mprof_record_alloc is fake_alloc. */
CORE_NOIPA void fake_alloc(int obj, size_t size)
{
    mprof_record_alloc(fake_heap[obj], size);
    __asm__ volatile("" ::: "memory");
}
CORE_NOIPA void fake_free(int obj, int swept)
{
    mprof_record_free(fake_heap[obj], swept ? MPROF_FREE_SWEPT : MPROF_FREE_EXPLICIT);
    __asm__ volatile("" ::: "memory");
}

/* Bucket sizes: four size classes. */
static const size_t bucket_size[4] = {32, 64, 96, 128};

struct counts {
    int64_t allocs, frees, alloc_bytes, free_bytes;
};

/* Published counts of the fake_alloc buckets, by size class; checks that
 * no record anywhere has negative in-use. */
static void read_buckets(struct counts out[4])
{
    memset(out, 0, 4 * sizeof *out);
    int n = mprof_mem_profile(recs, MAX_RECS, 1);
    if (n > MAX_RECS) {
        fprintf(stderr, "too many records\n");
        exit(2);
    }
    uintptr_t lo, hi;
    core_fn_range((const void *)fake_alloc, &lo, &hi);
    for (int i = 0; i < n; i++) {
        const mprof_mem_record *r = &recs[i];
        CHECK(r->alloc_objects >= r->free_objects && r->alloc_bytes >= r->free_bytes,
              "negative in-use: %lld allocs %lld frees, %lld/%lld bytes",
              (long long)r->alloc_objects, (long long)r->free_objects, (long long)r->alloc_bytes,
              (long long)r->free_bytes);
        if (r->nstack < 1 || r->stack[0] < lo || r->stack[0] >= hi)
            continue;
        int b = -1;
        for (int k = 0; k < 4; k++)
            if (r->size == bucket_size[k])
                b = k;
        CHECK(b >= 0, "fake_alloc record with size class %zu", r->size);
        if (b < 0)
            continue;
        out[b].allocs += r->alloc_objects;
        out[b].frees += r->free_objects;
        out[b].alloc_bytes += r->alloc_bytes;
        out[b].free_bytes += r->free_bytes;
    }
}

static void enter_gc_mode(void)
{
    mprof_set_rate(1);
    /* From the first next_cycle on, only complete cycles are published. */
    mprof_next_cycle();
    mprof_flush();
}

/* ------------------------------------------------------------ timeline */

static int expect(const char *when, int64_t allocs, int64_t frees)
{
    struct counts c[4];
    read_buckets(c);
    CHECK(c[1].allocs == allocs && c[1].frees == frees,
          "%s: published %lld allocs %lld frees, want %lld and %lld", when,
          (long long)c[1].allocs, (long long)c[1].frees, (long long)allocs, (long long)frees);
    CHECK(c[1].alloc_bytes == allocs * 64 && c[1].free_bytes == frees * 64,
          "%s: published %lld/%lld bytes", when, (long long)c[1].alloc_bytes,
          (long long)c[1].free_bytes);
    return 0;
}

static void gc(void)
{
    mprof_next_cycle();
    mprof_flush();
}

static int test_timeline(void)
{
    enter_gc_mode();

    /* An allocation at C: published by the flush of C+2. */
    fake_alloc(0, 64);
    expect("alloc at C, before any cycle", 0, 0);
    gc();
    expect("alloc at C, after one cycle", 0, 0);
    gc();
    expect("alloc at C, after two cycles", 1, 0);

    /* A sweep free (found by a collection after the allocation): published
     * by the next flush. */
    fake_free(0, 1);
    expect("sweep free, before its cycle", 1, 0);
    gc();
    expect("sweep free, after one cycle", 1, 1);

    /* Allocation and explicit free in the same cycle: both at C+2,
     * published together, never the free first. */
    fake_alloc(1, 64);
    fake_free(1, 0);
    expect("alloc+explicit free at C", 1, 1);
    gc();
    expect("alloc+explicit free, after one cycle", 1, 1);
    gc();
    expect("alloc+explicit free, after two cycles", 2, 2);

    /* Allocated at C, swept at C+1: alloc goes to C+2, the free to C+2 as
     * well: the same flush. */
    fake_alloc(2, 64);
    mprof_next_cycle();
    mprof_flush();
    fake_free(2, 1);
    expect("alloc at C, swept at C+1", 2, 2);
    gc();
    expect("alloc at C, swept at C+1, one cycle later", 3, 3);

    /* A read between next_cycle and flush completes the pending flush (as
     * runtime.MemProfile does) and publishes nothing newer. */
    fake_alloc(3, 64);
    gc();
    mprof_next_cycle(); /* no flush */
    expect("read with a pending flush", 4, 3);
    mprof_flush(); /* already done by the read: no-op */
    expect("flush after the read", 4, 3);
    fake_alloc(4, 64); /* at C+2 of the new cycle */
    fake_free(4, 0);
    expect("fresh alloc+free, no cycle", 4, 3);

    /* A free of an address never reported, or reported twice: ignored. */
    fake_free(100, 0);
    fake_free(3, 0);
    fake_free(3, 0);
    fake_free(3, 1);
    gc();
    gc();
    expect("double free ignored", 5, 5);

    /* NULL and unknown pointers: harmless. */
    mprof_record_alloc(NULL, 64);
    mprof_record_free(NULL, MPROF_FREE_EXPLICIT);
    mprof_record_free(NULL, MPROF_FREE_SWEPT);
    gc();
    gc();
    expect("NULL ignored", 5, 5);
    return check_result("cycles_timeline");
}

/* ------------------------------------------------------------ model */

/* Event: +/-1 object of a bucket, published once flushed >= target. */
struct event {
    uint32_t target;
    uint8_t bucket;
    uint8_t is_free;
};

static struct event *events;
static size_t nevents, cap_events;

static void add_event(uint32_t target, int bucket, int is_free)
{
    if (nevents == cap_events) {
        cap_events = cap_events ? cap_events * 2 : 4096;
        events = realloc(events, cap_events * sizeof *events);
        if (events == NULL)
            abort();
    }
    events[nevents++] = (struct event){target, (uint8_t)bucket, (uint8_t)is_free};
}

static uint64_t rng_state;
static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)((rng_state >> 11) % n);
}

static int test_model(void)
{
    enter_gc_mode();
    const char *seed_env = getenv("CORE_SEED");
    uint64_t seed = seed_env ? strtoull(seed_env, NULL, 0) : (uint64_t)time(NULL) ^ (uint64_t)getpid();
    rng_state = seed | 1;
    printf("  seed %llu (rerun with CORE_SEED=%llu)\n", (unsigned long long)seed,
           (unsigned long long)seed);

    /* Per object: -1 free, else its bucket; and the cycle it was
     * allocated in. */
    enum { NM = 64 };
    int obj_bucket[NM];
    uint32_t obj_cycle[NM];
    for (int i = 0; i < NM; i++)
        obj_bucket[i] = -1;

    uint32_t cycle = 0;        /* model's C, counted from entering GC mode */
    int64_t flushed = -1;      /* last cycle folded into the published profile */
    int pending = 0;           /* next_cycle done, flush not yet */
    /* entering GC mode flushed cycle 0 */
    flushed = 0;
    int reads = 0, max_inuse = 0, steps = 40000;
    for (int step = 0; step < steps && !check_failures(); step++) {
        uint32_t op = rnd(100);
        if (op < 35) { /* alloc */
            int o = (int)rnd(NM);
            if (obj_bucket[o] >= 0)
                continue;
            int b = (int)rnd(4);
            /* any size in the class: 17..32, 49..64, ... */
            size_t size = bucket_size[b] - rnd(16);
            fake_alloc(o, size);
            obj_bucket[o] = b;
            obj_cycle[o] = cycle;
            add_event(cycle + 2, b, 0);
        } else if (op < 55) { /* explicit free */
            int o = (int)rnd(NM);
            if (obj_bucket[o] < 0)
                continue;
            fake_free(o, 0);
            add_event(cycle + 2, obj_bucket[o], 1);
            obj_bucket[o] = -1;
        } else if (op < 75) { /* sweep free: only of objects older than a collection */
            int o = (int)rnd(NM);
            if (obj_bucket[o] < 0 || obj_cycle[o] == cycle)
                continue;
            fake_free(o, 1);
            add_event(cycle + 1, obj_bucket[o], 1);
            obj_bucket[o] = -1;
        } else if (op < 82) { /* next_cycle (after completing any pending flush) */
            if (pending) {
                mprof_flush();
                flushed = cycle;
                pending = 0;
            }
            mprof_next_cycle();
            cycle++;
            pending = 1;
        } else if (op < 88) { /* flush */
            mprof_flush();
            if (pending) {
                flushed = cycle;
                pending = 0;
            }
        } else { /* read: completes a pending flush */
            struct counts got[4], want[4];
            read_buckets(got);
            if (pending) {
                flushed = cycle;
                pending = 0;
            }
            memset(want, 0, sizeof want);
            for (size_t i = 0; i < nevents; i++)
                if ((int64_t)events[i].target <= flushed) {
                    if (events[i].is_free)
                        want[events[i].bucket].frees++;
                    else
                        want[events[i].bucket].allocs++;
                }
            for (int b = 0; b < 4; b++) {
                CHECK(got[b].allocs == want[b].allocs && got[b].frees == want[b].frees,
                      "step %d, cycle %u, bucket %d: published %lld allocs %lld frees, model "
                      "%lld and %lld",
                      step, cycle, b, (long long)got[b].allocs, (long long)got[b].frees,
                      (long long)want[b].allocs, (long long)want[b].frees);
                CHECK(want[b].allocs >= want[b].frees, "the model itself went negative");
                if (got[b].allocs - got[b].frees > max_inuse)
                    max_inuse = (int)(got[b].allocs - got[b].frees);
            }
            reads++;
        }
    }
    /* Free everything, run three collections: all published, in-use 0. */
    for (int o = 0; o < NM; o++)
        if (obj_bucket[o] >= 0) {
            fake_free(o, 0);
            add_event(cycle + 2, obj_bucket[o], 1);
        }
    for (int i = 0; i < 3; i++)
        gc();
    struct counts got[4];
    read_buckets(got);
    int64_t total_allocs = 0;
    for (size_t i = 0; i < nevents; i++)
        total_allocs += !events[i].is_free;
    int64_t sum = 0;
    for (int b = 0; b < 4; b++) {
        CHECK(got[b].allocs == got[b].frees && got[b].alloc_bytes == got[b].free_bytes,
              "bucket %d at the end: %lld allocs %lld frees", b, (long long)got[b].allocs,
              (long long)got[b].frees);
        sum += got[b].allocs;
    }
    CHECK(sum == total_allocs, "%lld allocations published, %lld made", (long long)sum,
          (long long)total_allocs);
    printf("  %d steps, %u cycles, %d reads compared, %lld allocations, max in-use %d\n", steps,
           cycle, reads, (long long)total_allocs, max_inuse);
    free(events);
    return check_result("cycles_model");
}

/* ------------------------------------------------------------ threads */

#define NTHREADS 4
#define PER_THREAD (NOBJ / NTHREADS)
static _Atomic uint64_t gen;   /* completed next_cycle calls */
static _Atomic int workers_done;
static _Atomic int stop_reader;
static _Atomic int64_t made[4]; /* allocations per bucket */

struct pending_sweep {
    int obj;
    uint64_t gen_after;
};

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    int base = id * PER_THREAD;
    uint64_t x = 0x9E3779B97F4A7C15ull * (uint64_t)(id + 1);
    struct pending_sweep *sweeps = calloc(PER_THREAD, sizeof *sweeps);
    int *live = calloc(PER_THREAD, sizeof *live);
    int nsweeps = 0;
    if (sweeps == NULL || live == NULL)
        abort();
    for (int iter = 0; iter < 150000; iter++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int k = (int)((x >> 20) % PER_THREAD);
        int o = base + k;
        if (live[k] == 0) {
            int b = (int)((x >> 8) % 4);
            fake_alloc(o, bucket_size[b]);
            atomic_fetch_add(&made[b], 1);
            live[k] = 1;
        } else if (live[k] == 1) {
            if ((x >> 40) & 1) {
                fake_free(o, 0); /* explicit: any time */
                live[k] = 0;
            } else {
                /* To be swept: only after a collection that started after
                 * the allocation.  gen is bumped after next_cycle returns,
                 * so two bumps after this read guarantee one next_cycle
                 * entirely after the allocation. */
                sweeps[nsweeps].obj = k;
                sweeps[nsweeps].gen_after = atomic_load(&gen) + 2;
                nsweeps++;
                live[k] = 2;
            }
        }
        /* Sweep what is due. */
        uint64_t g = atomic_load(&gen);
        for (int i = 0; i < nsweeps;) {
            if (sweeps[i].gen_after <= g) {
                fake_free(base + sweeps[i].obj, 1);
                live[sweeps[i].obj] = 0;
                sweeps[i] = sweeps[--nsweeps];
            } else {
                i++;
            }
        }
    }
    /* The rest: explicit frees of live ones, sweeps when due. */
    for (int k = 0; k < PER_THREAD; k++)
        if (live[k] == 1) {
            fake_free(base + k, 0);
            live[k] = 0;
        }
    while (nsweeps > 0) {
        uint64_t g = atomic_load(&gen);
        for (int i = 0; i < nsweeps;) {
            if (sweeps[i].gen_after <= g) {
                fake_free(base + sweeps[i].obj, 1);
                live[sweeps[i].obj] = 0;
                sweeps[i] = sweeps[--nsweeps];
            } else {
                i++;
            }
        }
        sched_yield();
    }
    free(sweeps);
    free(live);
    atomic_fetch_add(&workers_done, 1);
    return NULL;
}

static _Atomic long negative_seen, reads_done;

/* The reader thread and the driver each read into their own buffer. */
static mprof_mem_record reader_recs[MAX_RECS], driver_recs[MAX_RECS];

static void check_no_negative(mprof_mem_record *r)
{
    int n = mprof_mem_profile(r, MAX_RECS, 1);
    if (n > MAX_RECS)
        return;
    for (int i = 0; i < n; i++)
        if (r[i].alloc_objects < r[i].free_objects || r[i].alloc_bytes < r[i].free_bytes)
            atomic_fetch_add(&negative_seen, 1);
    atomic_fetch_add(&reads_done, 1);
}

static void *reader(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop_reader))
        check_no_negative(reader_recs);
    return NULL;
}

static int test_threads(void)
{
    enter_gc_mode();
    pthread_t t[NTHREADS], rd;
    for (int i = 0; i < NTHREADS; i++)
        pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i);
    pthread_create(&rd, NULL, reader, NULL);
    long cycles = 0;
    while (atomic_load(&workers_done) < NTHREADS) {
        mprof_next_cycle();
        atomic_fetch_add(&gen, 1);
        /* Let events land between next_cycle and flush, as a concurrent
         * sweep would. */
        sched_yield();
        mprof_flush();
        check_no_negative(driver_recs);
        cycles++;
        struct timespec ts = {0, 50000};
        nanosleep(&ts, NULL);
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    atomic_store(&stop_reader, 1);
    pthread_join(rd, NULL);
    for (int i = 0; i < 3; i++)
        gc();
    struct counts got[4];
    read_buckets(got);
    int64_t total = 0;
    for (int b = 0; b < 4; b++) {
        CHECK(got[b].allocs == atomic_load(&made[b]),
              "bucket %d: %lld allocations published, %lld made", b, (long long)got[b].allocs,
              (long long)atomic_load(&made[b]));
        CHECK(got[b].frees == got[b].allocs && got[b].free_bytes == got[b].alloc_bytes,
              "bucket %d: %lld allocs, %lld frees at the end", b, (long long)got[b].allocs,
              (long long)got[b].frees);
        CHECK(got[b].alloc_bytes == got[b].allocs * (int64_t)bucket_size[b],
              "bucket %d: %lld bytes for %lld allocations", b, (long long)got[b].alloc_bytes,
              (long long)got[b].allocs);
        total += got[b].allocs;
    }
    CHECK(atomic_load(&negative_seen) == 0, "negative in-use seen %ld times",
          atomic_load(&negative_seen));
    printf("  %ld cycles, %ld concurrent reads, %lld allocations\n", cycles,
           atomic_load(&reads_done), (long long)total);
    return check_result("cycles_threads");
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "timeline") == 0)
        return test_timeline();
    if (strcmp(mode, "model") == 0)
        return test_model();
    if (strcmp(mode, "threads") == 0)
        return test_threads();
    fprintf(stderr, "usage: %s timeline|model|threads\n", argv[0]);
    return 2;
}
