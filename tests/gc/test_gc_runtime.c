/*
 * The embedding API under a garbage collector: the toy mark-sweep runtime
 * of examples/toy_gc, every allocation sampled (MPROF_RATE=1), four mutator
 * threads allocating, linking, dropping and explicitly freeing objects while
 * a collector thread collects about every two milliseconds.
 *
 * What the cycle protocol (docs/gc-runtimes.md) guarantees, and what is
 * checked:
 *
 *   After mprof_next_cycle() at mark termination N and the mprof_flush()
 *   that follows, the published profile shows the heap as of mark
 *   termination N-1: every allocation made before MT N-1, minus every
 *   explicit free made before MT N-1, minus every sweep free of collections
 *   up to N-1.  For a mark-sweep collector whose sweep ends before the next
 *   collection starts, that is exactly the set of objects reachable (marked)
 *   at MT N-1.  Allocations and explicit frees since MT N-1, and the sweep
 *   of collection N, are not in it yet.  Before the second collection it is
 *   empty.
 *
 *  1. at every collection N, after the flush: the profile's in-use objects
 *     and bytes, per allocation site, equal the runtime's own count of the
 *     objects it marked at collection N-1 (exactly: at rate 1 a sample is
 *     an object, and the unsampled estimates equal the counts);
 *  2. concurrently, a reader thread takes the profile as often as it can:
 *     every snapshot equals the marked set of some collection between the
 *     ones it saw start before and after its read (the profile only ever
 *     moves from one consistent state to the next), and no bucket of the
 *     whole process is ever negative (frees above allocations);
 *  3. a heap profile written with mprof_write_heap_profile is read by
 *     `go tool pprof` and names the allocation sites.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../lib/check.h"
#include "mprof.h"
#include "toy_gc.h"

#define NMUTATORS 4
#define NROOTS 64
#define NCOLLECTIONS 150
#define MAX_RECS 8192
#define OPS_PER_CYCLE 4000

enum site { SITE_NODE, SITE_LEAF, SITE_OWNED, SITE_SCRATCH, NSITES };
static const char *const site_names[NSITES] = {"site_node", "site_leaf", "site_owned",
                                               "site_scratch"};

typedef struct tally {
    int64_t objects[NSITES];
    int64_t bytes[NSITES];
} tally;

static gc_heap *heap;
static _Atomic int stop_mutators, stop_reader;

/* marked[N]: what collection N marked, per site; written at its mark
 * termination, before `begun` says N. */
static tally marked[NCOLLECTIONS + 8];
static _Atomic uint64_t begun;

static _Atomic long exact_checks, reader_reads, reader_checked_buckets;

/* ------------------------------------------------------------ sites */

/* Exported (the test is linked with -rdynamic) and never inlined, so that
 * a bucket's stack names them; each touches its object after gc_alloc
 * returns, so the call is never a tail call that would hide the site. */
__attribute__((noinline)) gc_object *site_node(gc_mutator *m)
{
    gc_object *o = gc_alloc(m, 2, 16, SITE_NODE);
    if (o != NULL)
        ((char *)gc_payload(o))[0] = 'n';
    return o;
}

__attribute__((noinline)) gc_object *site_leaf(gc_mutator *m, size_t payload)
{
    gc_object *o = gc_alloc(m, 0, payload, SITE_LEAF);
    if (o != NULL)
        ((char *)gc_payload(o))[0] = 'l';
    return o;
}

__attribute__((noinline)) gc_object *site_owned(gc_mutator *m)
{
    gc_object *o = gc_alloc(m, 0, 200, SITE_OWNED);
    if (o != NULL)
        ((char *)gc_payload(o))[0] = 'o';
    return o;
}

__attribute__((noinline)) gc_object *site_scratch(gc_mutator *m)
{
    gc_object *o = gc_alloc(m, 0, 40, SITE_SCRATCH);
    if (o != NULL)
        ((char *)gc_payload(o))[0] = 's';
    return o;
}

/* [start, end) of the functions buckets are attributed by. */
static uintptr_t gc_alloc_range[2];
static uintptr_t site_range[NSITES][2];

static int symbol_range(void *fn, uintptr_t out[2])
{
    Dl_info info;
    const ElfW(Sym) *sym = NULL;
    if (dladdr1(fn, &info, (void **)&sym, RTLD_DL_SYMENT) == 0 || sym == NULL ||
        sym->st_size == 0)
        return -1;
    out[0] = (uintptr_t)info.dli_saddr;
    out[1] = out[0] + sym->st_size;
    return 0;
}

static int in_range(uintptr_t pc, const uintptr_t r[2]) { return pc >= r[0] && pc < r[1]; }

/* The site a bucket belongs to: allocated in gc_alloc, called from a site
 * function.  -1 for everything else (the process' own mallocs). */
static int site_of(const mprof_mem_record *r)
{
    if (r->nstack < 2 || !in_range(r->stack[0], gc_alloc_range))
        return -1;
    for (int s = 0; s < NSITES; s++)
        if (in_range(r->stack[1], site_range[s]))
            return s;
    return -2; /* gc_alloc called from elsewhere: must not happen */
}

/* ------------------------------------------------------------ profile */

/* Reads the published profile into t (per-site in-use) and checks every
 * bucket of the process for negative in-use.  Returns 0, -1 on failure. */
static int read_profile(mprof_mem_record *recs, tally *t, const char *who)
{
    memset(t, 0, sizeof *t);
    int n = mprof_mem_profile(recs, MAX_RECS, 1);
    if (n > MAX_RECS) {
        FAIL("%s: %d buckets, more than the test's %d", who, n, MAX_RECS);
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        const mprof_mem_record *r = &recs[i];
        if (r->free_objects > r->alloc_objects || r->free_bytes > r->alloc_bytes ||
            r->est_free_bytes > r->est_alloc_bytes + 1e-6) {
            FAIL("%s: bucket %d in use is negative: %lld objects, %lld bytes", who, i,
                 (long long)(r->alloc_objects - r->free_objects),
                 (long long)(r->alloc_bytes - r->free_bytes));
            rc = -1;
        }
        int s = site_of(r);
        if (s == -2) {
            FAIL("%s: a gc_alloc bucket from no known site", who);
            rc = -1;
        }
        if (s < 0)
            continue;
        /* Rate 1: every sample has weight 1, so the estimates are the
         * counts, exactly (sums of small integers in doubles). */
        if (r->est_alloc_objects != (double)r->alloc_objects ||
            r->est_free_bytes != (double)r->free_bytes) {
            FAIL("%s: estimates differ from counts at rate 1", who);
            rc = -1;
        }
        t->objects[s] += r->alloc_objects - r->free_objects;
        t->bytes[s] += r->alloc_bytes - r->free_bytes;
    }
    atomic_fetch_add(&reader_checked_buckets, n);
    return rc;
}

static int tally_equal(const tally *a, const tally *b)
{
    return memcmp(a, b, sizeof *a) == 0;
}

static void print_tally(const char *what, const tally *t)
{
    fprintf(stderr, "  %-28s", what);
    for (int s = 0; s < NSITES; s++)
        fprintf(stderr, " %s %lld/%lldB", site_names[s], (long long)t->objects[s],
                (long long)t->bytes[s]);
    fprintf(stderr, "\n");
}

/* ------------------------------------------------------------ hooks */

static void count_marked(const gc_object *o, int is_marked, void *arg)
{
    tally *t = arg;
    if (!is_marked || atomic_load(&((gc_object *)o)->state) != GC_LIVE)
        return;
    t->objects[o->tag] += 1;
    t->bytes[o->tag] += o->size;
}

/* World stopped: the runtime's own truth for this collection. */
static void at_mark_termination(gc_heap *h, uint64_t cycle, void *arg)
{
    (void)arg;
    if (cycle >= sizeof marked / sizeof marked[0])
        return;
    memset(&marked[cycle], 0, sizeof marked[cycle]);
    gc_foreach_object(h, count_marked, &marked[cycle]);
    atomic_store_explicit(&begun, cycle, memory_order_release);
}

static mprof_mem_record *collector_recs;

/* After mprof_flush at collection N: the profile is collection N-1's heap. */
static void after_flush(gc_heap *h, uint64_t cycle, void *arg)
{
    (void)h;
    (void)arg;
    if (cycle >= sizeof marked / sizeof marked[0])
        return;
    tally got;
    static const tally empty;
    const tally *want = cycle >= 2 ? &marked[cycle - 1] : &empty;
    if (read_profile(collector_recs, &got, "collector") != 0)
        return;
    if (!tally_equal(&got, want)) {
        FAIL("collection %llu: the published profile is not the heap of collection %llu",
             (unsigned long long)cycle, (unsigned long long)cycle - 1);
        print_tally("profile:", &got);
        print_tally("marked at the previous one:", want);
        if (cycle >= 1)
            print_tally("marked at this one:", &marked[cycle]);
    }
    atomic_fetch_add(&exact_checks, 1);
}

/* ------------------------------------------------------------ threads */

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void *mutator(void *arg)
{
    int id = (int)(intptr_t)arg;
    uint64_t seed = 0x9E3779B97F4A7C15ull * (uint64_t)(id + 1);
    gc_mutator *m = gc_mutator_attach(heap, NROOTS);
    gc_object **roots = gc_roots(m);
    uint64_t cycle = 0;
    int budget = 0;
    while (!atomic_load(&stop_mutators)) {
        /* A budget of operations per collection cycle, so that the heap
         * stays small and the run short however fast the machine is. */
        uint64_t now = atomic_load(&begun);
        if (now != cycle) {
            cycle = now;
            budget = OPS_PER_CYCLE;
        }
        if (budget <= 0) {
            gc_safepoint(m);
            struct timespec ts = {0, 100 * 1000};
            nanosleep(&ts, NULL);
            continue;
        }
        budget -= 16;
        for (int op = 0; op < 16; op++) {
            int r = (int)(rnd(&seed) % 100);
            int i = (int)(rnd(&seed) % NROOTS);
            gc_object *o = NULL;
            if (r < 35) {
                o = site_node(m);
                if (o == NULL)
                    break; /* arena full: let the collector run */
                /* Link to two other roots' objects, never to an owned one
                 * (an owned object has exactly one reference, its root). */
                for (int f = 0; f < 2; f++) {
                    gc_object *t = roots[rnd(&seed) % NROOTS];
                    if (t != NULL && t->tag != SITE_OWNED)
                        o->fields[f] = t;
                }
                roots[i] = o;
            } else if (r < 60) {
                o = site_leaf(m, 1 + rnd(&seed) % 300);
                if (o == NULL)
                    break;
                roots[i] = o;
            } else if (r < 75) {
                if (roots[i] != NULL && roots[i]->tag == SITE_OWNED) {
                    /* Released explicitly, possibly collections after it
                     * was allocated and published. */
                    gc_free(m, roots[i]);
                    roots[i] = NULL;
                } else {
                    o = site_owned(m);
                    if (o == NULL)
                        break;
                    roots[i] = o; /* whatever was there becomes garbage */
                }
            } else if (r < 90) {
                /* Freed before the next safepoint: never seen by a
                 * collection, allocation and free in the same cycle. */
                o = site_scratch(m);
                if (o == NULL)
                    break;
                gc_free(m, o);
            } else {
                roots[i] = NULL;
            }
        }
        gc_safepoint(m);
    }
    /* Leave the roots' objects reachable from a global, so that the final
     * heap (and the heap profile checked with pprof) is not empty. */
    gc_object *keep = NULL;
    for (int i = 0; i < NROOTS; i++) {
        if (roots[i] == NULL)
            continue;
        gc_object *holder;
        while ((holder = site_node(m)) == NULL)
            gc_safepoint(m);
        holder->fields[0] = roots[i];
        holder->fields[1] = keep;
        keep = holder;
    }
    gc_globals(heap)[id] = keep;
    gc_mutator_detach(m);
    return NULL;
}

static void *collector(void *arg)
{
    (void)arg;
    for (int n = 0; n < NCOLLECTIONS; n++) {
        struct timespec ts = {0, (1 + n % 3) * 1000 * 1000};
        nanosleep(&ts, NULL);
        gc_collect(heap);
    }
    return NULL;
}

/* Takes the profile as often as it can while everything runs. */
static void *reader(void *arg)
{
    (void)arg;
    mprof_mem_record *recs = malloc(MAX_RECS * sizeof *recs);
    static const tally empty;
    while (!atomic_load(&stop_reader)) {
        uint64_t before = atomic_load_explicit(&begun, memory_order_acquire);
        tally got;
        if (read_profile(recs, &got, "reader") != 0)
            continue;
        uint64_t after = atomic_load_explicit(&begun, memory_order_acquire);
        /* The last mark termination that had called mprof_next_cycle()
         * when the profile was read is between before - 1 and after; the
         * profile must be the heap of the collection before it. */
        int ok = 0;
        for (uint64_t k = before > 0 ? before - 1 : 0; k <= after && !ok; k++)
            ok = tally_equal(&got, k >= 2 ? &marked[k - 1] : &empty);
        if (!ok) {
            FAIL("reader: a profile that is no collection's heap (collections %llu..%llu)",
                 (unsigned long long)before, (unsigned long long)after);
            print_tally("profile:", &got);
        }
        atomic_fetch_add(&reader_reads, 1);
        struct timespec ts = {0, 50 * 1000};
        nanosleep(&ts, NULL);
    }
    free(recs);
    return NULL;
}

/* ------------------------------------------------------------ pprof */

static int run_pprof(const char *go, const char *profile, const char *out, const char *dir)
{
    pid_t pid = fork();
    if (pid == 0) {
        char home[4096], cache[4096], tmp[4096];
        snprintf(home, sizeof home, "HOME=%s", dir);
        snprintf(cache, sizeof cache, "GOCACHE=%s/gocache", dir);
        snprintf(tmp, sizeof tmp, "PPROF_TMPDIR=%s", dir);
        putenv(home);
        putenv(cache);
        putenv(tmp);
        putenv("PPROF_BINARY_PATH=/nonexistent");
        putenv("GOTOOLCHAIN=local");
        putenv("GOPROXY=off");
        unsetenv("LD_PRELOAD");
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0)
            _exit(127);
        dup2(fd, 1);
        dup2(fd, 2);
        execlp(go, go, "tool", "pprof", "-top", "-nodecount=200", "-nodefraction=0",
               "-sample_index=inuse_space", profile, (char *)NULL);
        _exit(127);
    }
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    char line[4096];
    int found = 0;
    while (!found && fgets(line, sizeof line, f) != NULL)
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

static int check_pprof(void)
{
    char dir[] = "/tmp/mprof-gc-runtime.XXXXXX";
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return -1;
    }
    char profile[4200], out[4200];
    snprintf(profile, sizeof profile, "%s/heap.pb.gz", dir);
    snprintf(out, sizeof out, "%s/pprof.txt", dir);
    int rc = 0;
    if (mprof_write_heap_profile(profile) != 0) {
        FAIL("mprof_write_heap_profile: %s", strerror(errno));
        rc = -1;
    } else {
        const char *go = getenv("MPROF_TEST_GO") ? getenv("MPROF_TEST_GO") : "go";
        int status = run_pprof(go, profile, out, dir);
        if (status != 0) {
            FAIL("go tool pprof exited with %d (is Go installed? make deps)", status);
            rc = -1;
        }
        for (int s = 0; s < NSITES && rc == 0; s++) {
            /* The scratch site is never in use at a collection. */
            int want = s != SITE_SCRATCH;
            if (file_contains(out, site_names[s]) != want) {
                FAIL("go tool pprof -top: %s %s", site_names[s],
                     want ? "missing" : "shown in use");
                rc = -1;
            }
        }
        if (!file_contains(out, "gc_alloc")) {
            FAIL("go tool pprof -top: gc_alloc missing");
            rc = -1;
        }
        if (rc != 0) {
            char cmd[4300];
            snprintf(cmd, sizeof cmd, "cat %s >&2", out);
            (void)!system(cmd);
        }
    }
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    (void)!system(cmd);
    return rc;
}

int main(void)
{
    if (mprof_get_rate() != 1) {
        fprintf(stderr, "run with MPROF_RATE=1 (rate is %ld)\n", mprof_get_rate());
        return 2;
    }
    if (symbol_range((void *)gc_alloc, gc_alloc_range) != 0 ||
        symbol_range((void *)site_node, site_range[SITE_NODE]) != 0 ||
        symbol_range((void *)site_leaf, site_range[SITE_LEAF]) != 0 ||
        symbol_range((void *)site_owned, site_range[SITE_OWNED]) != 0 ||
        symbol_range((void *)site_scratch, site_range[SITE_SCRATCH]) != 0) {
        fprintf(stderr, "cannot find the site functions' symbols (link with -rdynamic)\n");
        return 2;
    }
    collector_recs = malloc(MAX_RECS * sizeof *collector_recs);
    heap = gc_heap_new((size_t)256 << 20);
    if (heap == NULL || collector_recs == NULL) {
        perror("setup");
        return 2;
    }
    gc_hooks hooks = {.at_mark_termination = at_mark_termination, .after_flush = after_flush};
    gc_set_hooks(heap, &hooks);

    pthread_t mut[NMUTATORS], col, rd;
    pthread_create(&rd, NULL, reader, NULL);
    for (int i = 0; i < NMUTATORS; i++)
        pthread_create(&mut[i], NULL, mutator, (void *)(intptr_t)i);
    pthread_create(&col, NULL, collector, NULL);
    pthread_join(col, NULL);
    atomic_store(&stop_mutators, 1);
    for (int i = 0; i < NMUTATORS; i++)
        pthread_join(mut[i], NULL);
    atomic_store(&stop_reader, 1);
    pthread_join(rd, NULL);

    gc_stats st;
    gc_get_stats(heap, &st);
    printf("%llu collections, %ld exact checks after the flush, %ld concurrent reads "
           "(%ld buckets checked for negative in-use)\n",
           (unsigned long long)st.collections, (long)exact_checks, (long)reader_reads,
           (long)reader_checked_buckets);
    printf("runtime: %llu objects swept, %llu freed explicitly, %llu live (%llu bytes)\n",
           (unsigned long long)st.swept_objects, (unsigned long long)st.explicit_frees,
           (unsigned long long)st.live_objects, (unsigned long long)st.live_bytes);
    print_tally("marked at the last collection:", &marked[NCOLLECTIONS]);

    if (exact_checks != NCOLLECTIONS)
        FAIL("%ld exact checks, expected %d", (long)exact_checks, NCOLLECTIONS);
    if (reader_reads < 10)
        FAIL("the reader read only %ld times", (long)reader_reads);
    if (st.swept_objects == 0 || st.explicit_frees == 0 || st.live_objects == 0)
        FAIL("the workload did not exercise sweeps, explicit frees and survivors");
    for (int s = 0; s < SITE_SCRATCH; s++)
        if (marked[NCOLLECTIONS].objects[s] == 0)
            FAIL("no %s object survived the last collection", site_names[s]);

    /* Two more collections with the mutators gone: the profile is then the
     * final heap, and pprof must read it. */
    gc_collect(heap);
    gc_collect(heap);
    free(collector_recs);
    check_pprof();
    gc_heap_free(heap);

    return check_result("test_gc_runtime");
}
