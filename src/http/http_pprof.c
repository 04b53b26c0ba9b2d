/*
 * The built-in /debug/pprof profiles, with the names and semantics of Go's
 * net/http/pprof: heap, allocs, profile (CPU), cmdline.  They run on the
 * server's worker thread (http_server.c) with the profiler guard held.
 *
 *   heap, allocs        the heap profile now (pprof protobuf; ?debug=1: the
 *                       legacy text form of Go's runtime/pprof)
 *   heap?seconds=N      the difference between two snapshots N seconds
 *   allocs?seconds=N    apart, as Go computes it: every value, in-use ones
 *                       included, is second minus first.  alloc_* is what
 *                       was allocated during the window; inuse_* is how
 *                       much the live heap grew (negative: shrank)
 *   profile?seconds=N   CPU profile over N seconds (default 30)
 *   cmdline             argv, NUL-separated
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "heap/sampler.h"
#include "http/http_internal.h"
#include "profiles/heap_profile.h"
#include "symbolize/symbolize.h"

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ------------------------------------------------------- heap records */

typedef struct record_set {
    mprof_mem_record *recs;
    size_t n, cap;
    int failed;
} record_set;

static void collect_record(const mprof_mem_record *rec, void *arg)
{
    record_set *set = arg;
    if (set->failed)
        return;
    if (set->n == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 256;
        mprof_mem_record *grown = realloc(set->recs, cap * sizeof *grown);
        if (grown == NULL) {
            set->failed = 1;
            return;
        }
        set->recs = grown;
        set->cap = cap;
    }
    set->recs[set->n++] = *rec;
}

/* Every bucket, fully freed ones included: a delta must see allocations
 * that were made and released within the window. */
static int collect_records(record_set *set)
{
    memset(set, 0, sizeof *set);
    if (mprof_heap_snapshot(collect_record, set, 1) != 0 || set->failed) {
        free(set->recs);
        set->recs = NULL;
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

/* Buckets are identified by size class and stack, as in the sampler. */
static int compare_bucket_keys(const void *a, const void *b)
{
    const mprof_mem_record *x = a, *y = b;
    if (x->size != y->size)
        return x->size < y->size ? -1 : 1;
    if (x->nstack != y->nstack)
        return x->nstack < y->nstack ? -1 : 1;
    return memcmp(x->stack, y->stack, (size_t)x->nstack * sizeof x->stack[0]);
}

/* --------------------------------------------------------- debug=1 text */

static int compare_inuse_bytes_desc(const void *a, const void *b)
{
    const mprof_mem_record *x = a, *y = b;
    int64_t ix = x->alloc_bytes - x->free_bytes, iy = y->alloc_bytes - y->free_bytes;
    return ix > iy ? -1 : ix < iy ? 1 : 0;
}

/* "#\t0x...\tfunction+0x...\tfile:line" lines, one per (inlined) frame. */
static void print_symbolized_stack(mprof_out *out, mprof_symbolizer *sym,
                                   const mprof_mem_record *r)
{
    for (int i = 0; i < r->nstack; i++) {
        uintptr_t pc = r->stack[i];
        mprof_frame frames[16];
        int nframes = sym ? mprof_sym_lookup(sym, pc, frames, 16) : 0;
        if (nframes <= 0) {
            mprof_out_printf(out, "#\t%#lx\n", (unsigned long)pc);
            continue;
        }
        for (int f = 0; f < nframes; f++) {
            const mprof_frame *fr = &frames[f];
            const char *name = fr->function ? fr->function : fr->system_name;
            mprof_out_printf(out, "#\t%#lx\t%s", (unsigned long)pc, name ? name : "?");
            /* The offset into the function, as Go prints it, is known
             * only for the function that physically holds pc (the last
             * frame) and only when the dynamic symbol table has it. */
            Dl_info info;
            if (f == nframes - 1 && fr->system_name && dladdr((void *)pc, &info) != 0 &&
                info.dli_sname && info.dli_saddr && strcmp(info.dli_sname, fr->system_name) == 0)
                mprof_out_printf(out, "+%#lx", (unsigned long)(pc - (uintptr_t)info.dli_saddr));
            if (fr->file)
                mprof_out_printf(out, "\t%s:%d", fr->file, fr->line);
            mprof_out_printf(out, "\n");
        }
    }
    mprof_out_printf(out, "\n");
}

/*
 * Go's legacy heap text (runtime/pprof writeHeapInternal with debug=1),
 * which `go tool pprof` still parses.  Counts are the sampled ones, not
 * estimates; the header's "heap/<2*rate>" tells the reader the rate to
 * unsample with (twice the rate, a convention pprof keeps from an early
 * C++ profiler).  Stacks are printed as return addresses, as Go does,
 * because the reader subtracts one from each.
 */
static int write_heap_text(int fd)
{
    record_set set;
    if (collect_records(&set) != 0)
        return -1;
    qsort(set.recs, set.n, sizeof *set.recs, compare_inuse_bytes_desc);

    int64_t alloc_objects = 0, alloc_bytes = 0, free_objects = 0, free_bytes = 0;
    for (size_t i = 0; i < set.n; i++) {
        alloc_objects += set.recs[i].alloc_objects;
        alloc_bytes += set.recs[i].alloc_bytes;
        free_objects += set.recs[i].free_objects;
        free_bytes += set.recs[i].free_bytes;
    }
    long rate = mprof_get_rate();
    mprof_out out;
    mprof_out_init(&out, fd);
    mprof_out_printf(&out, "heap profile: %lld: %lld [%lld: %lld] @ heap/%ld\n",
                     (long long)(alloc_objects - free_objects), (long long)(alloc_bytes - free_bytes),
                     (long long)alloc_objects, (long long)alloc_bytes, 2 * rate);

    mprof_symbolizer *sym = mprof_sym_open();
    for (size_t i = 0; i < set.n; i++) {
        const mprof_mem_record *r = &set.recs[i];
        mprof_out_printf(&out, "%lld: %lld [%lld: %lld] @",
                         (long long)(r->alloc_objects - r->free_objects),
                         (long long)(r->alloc_bytes - r->free_bytes), (long long)r->alloc_objects,
                         (long long)r->alloc_bytes);
        for (int k = 0; k < r->nstack; k++)
            mprof_out_printf(&out, " %#lx", (unsigned long)(r->stack[k] + 1));
        mprof_out_printf(&out, "\n");
        print_symbolized_stack(&out, sym, r);
    }
    if (sym)
        mprof_sym_close(sym);

    /* Go appends runtime.MemStats here; these are mprof's own numbers.
     * Comment lines: pprof skips them. */
    mprof_stats stats;
    mprof_get_stats(&stats);
    mprof_out_printf(&out,
                     "\n# mprof.Stats\n"
                     "# MemProfileRate = %ld\n"
                     "# Buckets = %zu\n"
                     "# LiveSamples = %zu\n"
                     "# SamplesTaken = %llu\n"
                     "# ProfilerBytes = %zu\n"
                     "# BlockHeaders = %d\n",
                     rate, stats.buckets, stats.live_samples,
                     (unsigned long long)stats.samples_taken, stats.profiler_bytes,
                     stats.block_headers);
    free(set.recs);
    return mprof_out_flush(&out);
}

/* ----------------------------------------------------------- snapshots */

static int heap_write(int fd, const mprof_http_params *params)
{
    if (params->debug != 0)
        return write_heap_text(fd);
    return mprof_heap_write_fd(fd, "inuse_space");
}

static int allocs_write(int fd, const mprof_http_params *params)
{
    if (params->debug != 0)
        return write_heap_text(fd);
    return mprof_heap_write_fd(fd, "alloc_space");
}

static long heap_count(void)
{
    mprof_stats stats;
    mprof_get_stats(&stats);
    return (long)stats.buckets;
}

/* ---------------------------------------------------------------- delta */

typedef struct heap_window {
    record_set before; /* sorted by bucket key */
    int64_t start_ns;
} heap_window;

static int heap_window_begin(int fd, const mprof_http_params *params, void **state)
{
    (void)fd;
    (void)params;
    heap_window *w = calloc(1, sizeof *w);
    if (w == NULL)
        return -1;
    w->start_ns = wall_ns();
    if (collect_records(&w->before) != 0) {
        free(w);
        return -1;
    }
    qsort(w->before.recs, w->before.n, sizeof *w->before.recs, compare_bucket_keys);
    *state = w;
    return 0;
}

static void heap_window_cancel(int fd, void *state)
{
    (void)fd;
    heap_window *w = state;
    if (w != NULL) {
        free(w->before.recs);
        free(w);
    }
}

static int64_t round_delta(double x) { return (int64_t)llround(x); }

static int heap_window_end_as(int fd, heap_window *w, int default_index)
{
    record_set after;
    if (collect_records(&after) != 0)
        return -1;
    int64_t end_ns = wall_ns();
    long rate = mprof_get_rate();
    mprof_pb *pb = mprof_heap_pb_new(default_index);
    if (pb == NULL) {
        free(after.recs);
        return -1;
    }
    mprof_pb_set_time(pb, end_ns, end_ns - w->start_ns);
    char comment[128];
    snprintf(comment, sizeof comment,
             "mprof %s heap delta over %.1f s: second snapshot minus first, sampling rate %ld",
             MPROF_VERSION, (double)(end_ns - w->start_ns) / 1e9, rate);
    mprof_pb_add_comment(pb, comment);

    /* The estimates (est_*) are differenced rather than the sampled
     * counts: each sample carries the weight of the rate it was taken at,
     * so the difference stays right if the rate changed in the window. */
    for (size_t i = 0; i < after.n; i++) {
        const mprof_mem_record *r = &after.recs[i];
        const mprof_mem_record *b =
            bsearch(r, w->before.recs, w->before.n, sizeof *r, compare_bucket_keys);
        double ao = r->est_alloc_objects, ab = r->est_alloc_bytes;
        double fo = r->est_free_objects, fb = r->est_free_bytes;
        if (b != NULL) {
            ao -= b->est_alloc_objects;
            ab -= b->est_alloc_bytes;
            fo -= b->est_free_objects;
            fb -= b->est_free_bytes;
        }
        int64_t values[4] = {round_delta(ao), round_delta(ab), round_delta(ao - fo),
                             round_delta(ab - fb)};
        if (values[0] == 0 && values[1] == 0 && values[2] == 0 && values[3] == 0)
            continue;
        mprof_heap_pb_add(pb, r, values);
    }
    int rc = mprof_pb_write(pb, fd);
    int saved = errno;
    mprof_pb_free(pb);
    free(after.recs);
    errno = saved;
    return rc;
}

static int heap_window_end(int fd, void *state, const mprof_http_params *params)
{
    (void)params;
    int rc = heap_window_end_as(fd, state, MPROF_HEAP_INUSE_SPACE);
    int saved = errno;
    heap_window_cancel(fd, state);
    errno = saved;
    return rc;
}

static int allocs_window_end(int fd, void *state, const mprof_http_params *params)
{
    (void)params;
    int rc = heap_window_end_as(fd, state, MPROF_HEAP_ALLOC_SPACE);
    int saved = errno;
    heap_window_cancel(fd, state);
    errno = saved;
    return rc;
}

/* ------------------------------------------------------------------ CPU */

static int cpu_begin(int fd, const mprof_http_params *params, void **state)
{
    (void)params;
    *state = NULL;
    /* EBUSY when a profile is running already (MPROF_CPU, the program's
     * own mprof_cpu_start, another request): the server answers 409. */
    return mprof_cpu_start_fd(fd, 0);
}

static int cpu_end(int fd, void *state, const mprof_http_params *params)
{
    (void)fd;
    (void)state;
    (void)params;
    if (mprof_cpu_stop() != 0) {
        /* Someone else stopped it (the program called mprof_cpu_stop, or
         * exit began): what they wrote into our buffer is still served. */
        off_t size = lseek(fd, 0, SEEK_END);
        if (size > 0)
            return 0;
        errno = ECANCELED;
        return -1;
    }
    return 0;
}

static void cpu_cancel(int fd, void *state)
{
    (void)fd;
    (void)state;
    (void)mprof_cpu_stop();
}

/* -------------------------------------------------------------- cmdline */

static int cmdline_write(int fd, const mprof_http_params *params)
{
    (void)params;
    int in = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return -1;
    /* The kernel ends every argument with a NUL; Go joins os.Args with NUL
     * separators, so the last NUL is held back until more text follows. */
    char buf[4096];
    int pending_nul = 0, rc = 0;
    for (;;) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -1;
            break;
        }
        if (n == 0)
            break;
        if (pending_nul && mprof_write_all(fd, "", 1) != 0) {
            rc = -1;
            break;
        }
        pending_nul = buf[n - 1] == '\0';
        if (mprof_write_all(fd, buf, (size_t)(n - pending_nul)) != 0) {
            rc = -1;
            break;
        }
    }
    int saved = errno;
    close(in);
    errno = saved;
    return rc;
}

/* ---------------------------------------------------------- registration */

static const mprof_http_profile heap_profile = {
    .name = "heap",
    .description = "A sampling of memory allocations of live objects. You can specify the "
                   "gc GET parameter to run GC before taking the heap sample (accepted; "
                   "there is no GC here).",
    .count = heap_count,
    .write = heap_write,
    .begin = heap_window_begin,
    .end = heap_window_end,
    .cancel = heap_window_cancel,
};

static const mprof_http_profile allocs_profile = {
    .name = "allocs",
    .description = "A sampling of all past memory allocations",
    .count = heap_count,
    .write = allocs_write,
    .begin = heap_window_begin,
    .end = allocs_window_end,
    .cancel = heap_window_cancel,
};

static const mprof_http_profile cpu_profile = {
    .name = "profile",
    .description = "CPU profile. You can specify the duration in the seconds GET parameter. "
                   "After you get the profile file, use the go tool pprof command to "
                   "investigate the profile.",
    .begin = cpu_begin,
    .end = cpu_end,
    .cancel = cpu_cancel,
    .default_seconds = 30,
};

static const mprof_http_profile cmdline_profile = {
    .name = "cmdline",
    .description = "The command line invocation of the current program",
    .flags = MPROF_HTTP_ALWAYS_TEXT,
    .write = cmdline_write,
};

void mprof_http_register_builtin_profiles(void)
{
    (void)mprof_http_register_profile(&allocs_profile);
    (void)mprof_http_register_profile(&cmdline_profile);
    (void)mprof_http_register_profile(&heap_profile);
    (void)mprof_http_register_profile(&cpu_profile);
}
