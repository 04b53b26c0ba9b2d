/*
 * The heap profile as pprof (Go's "heap" and "allocs" kinds): the buckets
 * of the sampler turned into samples with Go's four value types, unsampled
 * by the one rule of shared/heap_values.h, symbolized, written; Go's legacy
 * text form for debug=1; and the delta of two snapshots for ?seconds=N.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heap/labels.h"
#include "heap/peak.h"
#include "heap/sampler.h"
#include "heap/timeline.h"
#include "interpose/threads.h"
#include "profiles/heap_profile.h"
#include "profiles/hooks.h"
#include "profiles/stackprof.h"
#include "shared/heap_values.h"
#include "shared/pprof_fields.h"

static const char *const heap_sample_types[] = {
    "alloc_objects", "count", "alloc_space", "bytes",
    "inuse_objects", "count", "inuse_space", "bytes",
};

/*
 * Every heap profile (snapshots, deltas): Go's four sample types in Go's
 * order, period = the current rate, the allocator entry points as
 * drop_frames, and one sample per bucket labelled with its mean block size.
 * default_type_index names the type pprof shows first.
 */
enum { MPROF_HEAP_ALLOC_SPACE = 1, MPROF_HEAP_INUSE_SPACE = 3 };

static mprof_pb *heap_pb_new(int default_type_index)
{
    long rate = mprof_get_rate();
    mprof_pb *pb = mprof_pb_new(heap_sample_types, 4, "space", "bytes", rate > 0 ? rate : 0);
    if (pb == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    mprof_pb_set_drop_frames(pb, MPROF_HEAP_DROP_FRAMES);
    mprof_pb_set_default_sample_type(pb, default_type_index);
    return pb;
}

/* values: alloc_objects, alloc_space, inuse_objects, inuse_space.
 * labels: the bucket's label set (heap/labels.h), written as string
 * labels, which -tagfocus and -tags read. */
static void heap_pb_add(mprof_pb *pb, const mprof_mem_record *r, uint32_t labels,
                        const int64_t values[4])
{
    /* The "bytes" label is the mean block size of the site (exact when the
     * site always asks for the same size), which is what -tagfocus=bytes
     * users filter on; the bucket's size class is only a grouping key. */
    int64_t mean = r->alloc_objects > 0 ? r->alloc_bytes / r->alloc_objects : (int64_t)r->size;
    mprof_label label[1 + MPROF_LABEL_MAX] = {
        {.key = "bytes", .str = NULL, .num = mean, .num_unit = "bytes"}};
    int n = 1;
    const struct mprof_labelset *set = mprof_labelset_get(labels);
    for (uint32_t i = 0; set != NULL && i < set->n; i++)
        label[n++] = (mprof_label){.key = set->key[i], .str = set->value[i]};
    mprof_pb_add_sample(pb, r->stack, r->nstack, values, label, n);
}

static mprof_heap_estimates estimates_of(const mprof_mem_record *r)
{
    mprof_heap_estimates e = {
        .alloc_objects = r->est_alloc_objects,
        .alloc_bytes = r->est_alloc_bytes,
        .free_objects = r->est_free_objects,
        .free_bytes = r->est_free_bytes,
        .all_freed = r->alloc_objects == r->free_objects,
    };
    return e;
}

/* ------------------------------------------------------- record sets */

/* A bucket's record and its label set. */
typedef struct heap_rec {
    mprof_mem_record r;
    uint32_t labels;
} heap_rec;

/* Every bucket, fully freed ones included (a delta must see allocations
 * made and released within its window), malloc'd under the guard. */
typedef struct record_set {
    heap_rec *recs;
    size_t n, cap;
    int failed;
} record_set;

static void collect_record(const mprof_mem_record *rec, uint32_t labels, void *arg)
{
    record_set *set = arg;
    if (set->failed)
        return;
    if (set->n == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 256;
        heap_rec *grown = realloc(set->recs, cap * sizeof *grown);
        if (grown == NULL) {
            set->failed = 1;
            return;
        }
        set->recs = grown;
        set->cap = cap;
    }
    set->recs[set->n].r = *rec;
    set->recs[set->n++].labels = labels;
}

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

/* Buckets are identified by size class, stack and labels, as in the
 * sampler. */
static int compare_bucket_keys(const void *a, const void *b)
{
    const heap_rec *hx = a, *hy = b;
    const mprof_mem_record *x = &hx->r, *y = &hy->r;
    if (hx->labels != hy->labels)
        return hx->labels < hy->labels ? -1 : 1;
    if (x->size != y->size)
        return x->size < y->size ? -1 : 1;
    if (x->nstack != y->nstack)
        return x->nstack < y->nstack ? -1 : 1;
    return memcmp(x->stack, y->stack, (size_t)x->nstack * sizeof x->stack[0]);
}

static void sort_records(record_set *set, int (*cmp)(const void *, const void *))
{
    /* qsort and bsearch are not given a NULL base, even for n = 0. */
    if (set->n > 1)
        qsort(set->recs, set->n, sizeof *set->recs, cmp);
}

static const mprof_mem_record *find_record(const record_set *set, const mprof_mem_record *r,
                                           uint32_t labels)
{
    if (set->n == 0)
        return NULL;
    heap_rec key = {.r = *r, .labels = labels};
    const heap_rec *found = bsearch(&key, set->recs, set->n, sizeof *set->recs,
                                    compare_bucket_keys);
    return found != NULL ? &found->r : NULL;
}

/* The registry's snapshot callback: the base of a delta, sorted by key. */
static void *heap_snapshot(void)
{
    record_set *set = malloc(sizeof *set);
    if (set == NULL)
        return NULL;
    if (collect_records(set) != 0) {
        free(set);
        return NULL;
    }
    sort_records(set, compare_bucket_keys);
    return set;
}

static void heap_snapshot_free(void *snapshot)
{
    record_set *set = snapshot;
    if (set != NULL) {
        free(set->recs);
        free(set);
    }
}

/* ------------------------------------------------------------- pprof */

/* One bucket into the profile being built, straight from the sampler's
 * snapshot: no copy of the buckets is kept for a write. */
struct add_ctx {
    mprof_pb *pb;
    const record_set *before; /* NULL: the profile now */
};

static void add_bucket(const mprof_mem_record *r, uint32_t labels, void *arg)
{
    const struct add_ctx *ctx = arg;
    mprof_heap_estimates e = estimates_of(r);
    int64_t values[4];
    if (ctx->before != NULL) {
        /* The estimates are differenced rather than the sampled counts:
         * each sample carries the weight of the rate it was taken at, so
         * the difference stays right if the rate changed in the window. */
        const mprof_mem_record *old = find_record(ctx->before, r, labels);
        mprof_heap_estimates b = {0};
        if (old != NULL)
            b = estimates_of(old);
        mprof_heap_values(&e, &b, values);
        if (values[0] == 0 && values[1] == 0 && values[2] == 0 && values[3] == 0)
            return;
    } else {
        mprof_heap_values(&e, NULL, values);
    }
    heap_pb_add(ctx->pb, r, labels, values);
}

/*
 * The memory timeline (heap/timeline.h) as one comment, in the encoding
 * docs/report.md and cli/timeline.h describe:
 *   #mprof-timeline v1 t0=UNIX_NS every=NS n=N T,B,O,A ...
 * (T: ms since t0; B, O: bytes and objects in use; A: bytes allocated).
 * A comment keeps the file a plain pprof profile for every reader.  The
 * current estimates are added as its last point first.  Nothing is added
 * when the timeline is off or out of memory: the profile is whole without.
 */
static void add_timeline_comment(mprof_pb *pb)
{
    size_t cap = mprof_timeline_capacity();
    if (cap == 0)
        return;
    mprof_peak_timeline_point();
    mprof_timeline_point *pts = malloc(cap * sizeof *pts);
    /* 4 numbers of at most 20 digits and a sign, 4 separators. */
    size_t len = 128 + cap * 4 * 22;
    char *text = malloc(len);
    int64_t every, t0_wall, t0_mono;
    size_t n = pts && text ? mprof_timeline_copy(pts, cap, &every, &t0_wall, &t0_mono) : 0;
    if (n != 0) {
        size_t at = (size_t)snprintf(text, len, "#mprof-timeline v1 t0=%lld every=%lld n=%zu",
                                     (long long)t0_wall, (long long)every, n);
        for (size_t i = 0; i < n && at < len; i++)
            at += (size_t)snprintf(text + at, len - at, " %lld,%lld,%lld,%lld",
                                   (long long)((pts[i].mono_ns - t0_mono) / 1000000),
                                   (long long)pts[i].inuse_bytes, (long long)pts[i].inuse_objects,
                                   (long long)pts[i].alloc_bytes);
        if (at < len)
            mprof_pb_add_comment(pb, text);
    }
    free(text);
    free(pts);
}

/* The profile now, or (base given) now minus base; in either case Go's
 * four types with default_index the one pprof shows first. */
static int write_pprof(int fd, int default_index, const mprof_profile_base *base)
{
    long rate = mprof_get_rate();
    mprof_pb *pb = heap_pb_new(default_index);
    if (pb == NULL)
        return -1;
    char comment[160];
    if (base != NULL) {
        int64_t end_wall = mprof_wall_ns(), span = mprof_mono_ns() - base->start_mono_ns;
        mprof_pb_set_time(pb, end_wall, span);
        snprintf(comment, sizeof comment,
                 "mprof %s heap delta over %.1f s: second snapshot minus first, sampling rate "
                 "%ld",
                 MPROF_VERSION, (double)span / 1e9, rate);
    } else {
        snprintf(comment, sizeof comment, "mprof %s heap profile, sampling rate %ld bytes",
                 MPROF_VERSION, rate);
    }
    mprof_pb_add_comment(pb, comment);
    /* A forked child whose repair dropped half-done updates of the
     * parent's other threads (heap/sampler.h, "Fork") says so: its figures
     * are off by those. */
    uint64_t lost_updates, lost_blocks;
    mprof_sampler_fork_losses(&lost_updates, &lost_blocks);
    if (lost_updates != 0) {
        snprintf(comment, sizeof comment,
                 "forked while %llu profiler update(s) of other threads were in progress: "
                 "%llu inherited sample(s) dropped",
                 (unsigned long long)lost_updates, (unsigned long long)lost_blocks);
        mprof_pb_add_comment(pb, comment);
    }
    if (base == NULL)
        add_timeline_comment(pb);
    struct add_ctx ctx = {.pb = pb, .before = base ? base->snapshot : NULL};
    int rc = -1;
    if (mprof_heap_snapshot(add_bucket, &ctx, 1) == 0)
        rc = mprof_pb_write(pb, fd);
    else
        errno = ENOMEM;
    int saved = errno;
    mprof_pb_free(pb);
    errno = saved;
    return rc;
}

/* ------------------------------------------------------- debug=1 text */

static int compare_inuse_bytes_desc(const void *a, const void *b)
{
    const mprof_mem_record *x = &((const heap_rec *)a)->r, *y = &((const heap_rec *)b)->r;
    int64_t ix = x->alloc_bytes - x->free_bytes, iy = y->alloc_bytes - y->free_bytes;
    return ix > iy ? -1 : ix < iy ? 1 : 0;
}

/*
 * Go's legacy heap text (runtime/pprof writeHeapInternal with debug=1),
 * which `go tool pprof` still parses.  Counts are the sampled ones, not
 * estimates; the header's "heap/<2*rate>" tells the reader the rate to
 * unsample with (twice the rate, a convention pprof keeps from an early
 * C++ profiler).  Stacks are printed as return addresses, as Go does,
 * because the reader subtracts one from each.
 */
static int write_records_text(int fd, record_set set)
{
    sort_records(&set, compare_inuse_bytes_desc);

    int64_t alloc_objects = 0, alloc_bytes = 0, free_objects = 0, free_bytes = 0;
    for (size_t i = 0; i < set.n; i++) {
        alloc_objects += set.recs[i].r.alloc_objects;
        alloc_bytes += set.recs[i].r.alloc_bytes;
        free_objects += set.recs[i].r.free_objects;
        free_bytes += set.recs[i].r.free_bytes;
    }
    long rate = mprof_get_rate();
    mprof_text t;
    mprof_text_fd(&t, fd);
    mprof_text_printf(&t, "heap profile: %lld: %lld [%lld: %lld] @ heap/%ld\n",
                      (long long)(alloc_objects - free_objects),
                      (long long)(alloc_bytes - free_bytes), (long long)alloc_objects,
                      (long long)alloc_bytes, 2 * rate);

    mprof_symbolizer *sym = mprof_sym_open();
    for (size_t i = 0; i < set.n; i++) {
        const mprof_mem_record *r = &set.recs[i].r;
        mprof_text_printf(&t, "%lld: %lld [%lld: %lld]",
                          (long long)(r->alloc_objects - r->free_objects),
                          (long long)(r->alloc_bytes - r->free_bytes),
                          (long long)r->alloc_objects, (long long)r->alloc_bytes);
        mprof_text_legacy_addrs(&t, r->stack, r->nstack);
        mprof_text_legacy_stack(&t, sym, r->stack, r->nstack);
    }
    if (sym)
        mprof_sym_close(sym);

    /* Go appends runtime.MemStats here; these are mprof's own numbers.
     * Comment lines: pprof skips them. */
    mprof_stats stats;
    mprof_get_stats(&stats);
    mprof_text_printf(&t,
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
    return (int)mprof_text_finish(&t);
}

static int write_heap_text(int fd)
{
    record_set set;
    if (collect_records(&set) != 0)
        return -1;
    return write_records_text(fd, set);
}

/* ------------------------------------------------------------- peak */

/*
 * The peak: the buckets as the sampler captured them when its in-use
 * estimate was highest (heap/peak.h), with Go's four types: in use at the
 * peak, and allocated up to it.  When the heap now is at least as high as
 * the captured peak (a program still growing at exit, or one too small to
 * have passed the first capture), the peak is now, and the profile is the
 * heap profile's own view.
 */
static int peak_collect(record_set *set, int64_t *bytes, int64_t *wall_ns)
{
    memset(set, 0, sizeof *set);
    if (mprof_peak_snapshot(collect_record, set, bytes, wall_ns) != 0 || set->failed) {
        free(set->recs);
        set->recs = NULL;
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

static int peak_is_now(int64_t captured)
{
    mprof_stats st;
    mprof_get_stats(&st);
    return captured == 0 || st.inuse_bytes_estimate >= captured;
}

/* The captured peak set (bytes in use at wall_ns) as pprof; frees set. */
static int write_peak_pprof(int fd, record_set set, int64_t bytes, int64_t wall_ns)
{
    mprof_pb *pb = heap_pb_new(MPROF_HEAP_INUSE_SPACE);
    if (pb == NULL) {
        free(set.recs);
        return -1;
    }
    mprof_pb_set_time(pb, wall_ns, 0);
    char comment[200];
    snprintf(comment, sizeof comment,
             "mprof %s peak heap profile: %.1f MiB in use (sampled estimate) at its peak, "
             "%.1f s before this write; sampling rate %ld bytes",
             MPROF_VERSION, (double)bytes / (1 << 20),
             (double)(mprof_wall_ns() - wall_ns) / 1e9, mprof_get_rate());
    mprof_pb_add_comment(pb, comment);
    struct add_ctx ctx = {.pb = pb, .before = NULL};
    for (size_t i = 0; i < set.n; i++)
        add_bucket(&set.recs[i].r, set.recs[i].labels, &ctx);
    int rc = mprof_pb_write(pb, fd);
    int saved = errno;
    mprof_pb_free(pb);
    free(set.recs);
    errno = saved;
    return rc;
}

static int peak_write(int fd, const mprof_profile_params *params, const mprof_profile_base *base)
{
    (void)base; /* no window: a peak is not cumulative */
    record_set set;
    int64_t bytes, wall_ns;
    if (peak_collect(&set, &bytes, &wall_ns) != 0)
        return -1;
    if (peak_is_now(bytes)) {
        free(set.recs);
        return params->debug == 0 ? write_pprof(fd, MPROF_HEAP_INUSE_SPACE, NULL)
                                  : write_heap_text(fd);
    }
    return params->debug == 0 ? write_peak_pprof(fd, set, bytes, wall_ns)
                              : write_records_text(fd, set);
}

static long peak_count(void)
{
    record_set set;
    int64_t bytes, wall_ns;
    if (peak_collect(&set, &bytes, &wall_ns) != 0)
        return 0;
    free(set.recs);
    return (long)set.n;
}

/* A thread's pending part of the estimate must not leave with it. */
static const mprof_thread_hooks peak_thread_hooks = {.on_exit = mprof_peak_thread_exit};

/* ---------------------------------------------------------- registry */

static int heap_write(int fd, const mprof_profile_params *params, const mprof_profile_base *base)
{
    if (params->debug != 0)
        return write_heap_text(fd);
    return write_pprof(fd, MPROF_HEAP_INUSE_SPACE, base);
}

static int allocs_write(int fd, const mprof_profile_params *params,
                        const mprof_profile_base *base)
{
    if (params->debug != 0)
        return write_heap_text(fd);
    return write_pprof(fd, MPROF_HEAP_ALLOC_SPACE, base);
}

static long heap_count(void)
{
    mprof_stats stats;
    mprof_get_stats(&stats);
    return (long)stats.buckets;
}

static const mprof_profile heap_profile = {
    .name = "heap",
    .description = "A sampling of memory allocations of live objects. You can specify the "
                   "gc GET parameter to run GC before taking the heap sample (accepted; "
                   "there is no GC here).",
    .what = "heap profile",
    .exit_option = MPROF_OPT_HEAP,
    .count = heap_count,
    .write = heap_write,
    .snapshot = heap_snapshot,
    .snapshot_free = heap_snapshot_free,
};

static const mprof_profile allocs_profile = {
    .name = "allocs",
    .description = "A sampling of all past memory allocations",
    .what = "allocs profile",
    .count = heap_count,
    .write = allocs_write,
    .snapshot = heap_snapshot,
    .snapshot_free = heap_snapshot_free,
};

static const mprof_profile peak_profile = {
    .name = "peak",
    .description = "The sampled heap as it stood when the memory in use was highest: what "
                   "made the process reach its peak",
    .what = "peak heap profile",
    .exit_option = MPROF_OPT_PEAK,
    .count = peak_count,
    .write = peak_write,
};

/* Registered first of all kinds: its file at exit is written last. */
void mprof_heap_profile_init(void)
{
    (void)mprof_profile_register(&heap_profile);
    (void)mprof_profile_register(&allocs_profile);
    (void)mprof_profile_register(&peak_profile);
    (void)mprof_thread_hooks_register(&peak_thread_hooks);
}

/* --------------------------------------------------------- public API */

/* The older names: aliases of the registry's write of their kind, with
 * their 0 / -1 shape. */
int mprof_write_heap_profile_fd(int fd) { return mprof_profile_write(&heap_profile, fd, 0); }
int mprof_write_allocs_profile_fd(int fd) { return mprof_profile_write(&allocs_profile, fd, 0); }

int mprof_write_heap_profile(const char *pattern)
{
    char path[PATH_MAX];
    if (pattern == NULL) {
        errno = EINVAL;
        return -1;
    }
    if (mprof_expand_path(pattern, path, sizeof path) != 0)
        return -1;
    return mprof_profile_write_file(&heap_profile, path);
}
