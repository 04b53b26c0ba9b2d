/*
 * Allocation tracing: MPROF_TRACE=alloc prints every sampled allocation and
 * every free of a sampled block with its stack, as Go's
 * GODEBUG=allocfreetrace=1 does (the Go runtime's tracealloc/tracefree):
 *
 *     tracealloc(0x55d0c2f0a2a0, 4096)
 *     thread 81234:
 *     make_buffer
 *             /src/app/buffer.c:42
 *     main
 *             /src/app/main.c:17
 *
 * With MPROF_RATE=1 every allocation is sampled, which is how one object is
 * followed from birth to death.  docs/tracing.md has the user's side.
 *
 * Go prints from inside mallocgc, with the heap locked against nothing but
 * itself.  Here the record is born inside the host's malloc or free, where we
 * may not symbolize (libdw allocates and takes locks), do stdio, or block.
 * So the work is split in two:
 *
 *  - the hot path (mprof_trace_alloc/_free, called by the sampler after it
 *    has recorded a sample) only copies a fixed-size record - address, size,
 *    kind, thread id, call stack - into a bounded multi-producer queue in
 *    arena memory.  Claiming a slot is one compare-and-swap; a full queue
 *    means the record is dropped and counted, never that malloc waits;
 *
 *  - a background thread, holding the profiler guard for its whole life (so
 *    its own allocations, and libdw's, go straight to the real allocator),
 *    drains the queue, symbolizes with one long-lived symbolizer, formats
 *    and writes, and reports drops in the output where it notices them.
 *
 * The queue is D. Vyukov's bounded queue: every slot carries a sequence
 * number saying whose turn it is, so producers never wait for each other
 * (a producer preempted between claiming and publishing its slot delays only
 * the consumer, which sleeps and retries).  Sequence numbers are stored
 * relative to the slot index, so that zeroed arena memory already is a valid
 * empty queue: a forked child gets a fresh one without touching every slot.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shared/hash.h"
#include "core/options.h"
#include "core/os.h"
#include "profiles/hooks.h"
#include "symbolize/symbolize.h"
#include "unwind/unwind.h"
#include "interpose/threads.h"
#include "profiles/trace.h"

/* Records formatted per trip through the consumer lock: bounds the time an
 * exiting thread may wait for the lock behind the background thread. */
#define BATCH_RECORDS 256
/* Sleep of the background thread when the queue is empty.  Tracing is a
 * debugging mode; waking 500 times a second costs nothing measurable and
 * keeps producers from ever having to signal anyone. */
#define IDLE_SLEEP_NS (2 * 1000 * 1000)
/* How long exit waits for the background thread to write what is queued. */
#define EXIT_JOIN_SECONDS 5
/* Output is written when this much has been formatted, and after every
 * batch, so that a record is never split over two write(2) calls. */
#define OUT_FLUSH_BYTES (64 * 1024)
/* Frames kept per pc when symbolizing (inlined callees + the function). */
#define MAX_INLINE 16
/* Largest pc -> text cache before it is emptied and refilled. */
#define MAX_CACHE_ENTRIES (1u << 18)

enum { REC_ALLOC = 0, REC_FREE = 1, REC_SWEPT = 2 };

/* One traced event.  Fixed-size so that the hot path copies and never
 * allocates; 64 frames as the heap profile keeps. */
struct trace_record {
    uintptr_t addr;
    size_t size;
    int32_t tid;
    uint8_t kind;
    uint8_t nstack;
    uintptr_t stack[MPROF_MAX_STACK];
};

struct trace_slot {
    /* Turn of this slot, minus its index (see the file comment): the slot
     * at index i, for position pos = k * capacity + i, is free for the
     * producer of pos when seq == k * capacity, holds its record when
     * seq == k * capacity + 1, and is free for lap k + 1 after the consumer
     * stores (k + 1) * capacity. */
    _Atomic uint64_t seq;
    struct trace_record rec;
};

struct trace_queue {
    /* Producers' and the consumer's words on separate cache lines (explicit
     * padding: arena memory is only 16-byte aligned). */
    _Atomic uint64_t tail;    /* next position to claim */
    _Atomic uint64_t dropped; /* records lost to a full queue */
    char pad[64 - 2 * sizeof(uint64_t)];
    uint64_t head;            /* next position to read; consumer_lock */
    uint64_t mask;            /* capacity - 1, set before the queue is published */
    char pad2[64 - 2 * sizeof(uint64_t)];
    struct trace_slot slots[];
};


static _Atomic(struct trace_queue *) trace_queue;
static size_t queue_records; /* a power of two, set when the trace starts */

/* Thread id cached per thread: gettid is a system call, and the hot path
 * should not make one per record. */
static __thread int32_t tls_tid __attribute__((tls_model("initial-exec")));

/* ------------------------------------------------------------ hot path */

static struct trace_slot *claim_slot(struct trace_queue *q, uint64_t *pos_out)
{
    uint64_t pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
    for (;;) {
        uint64_t idx = pos & q->mask;
        struct trace_slot *s = &q->slots[idx];
        uint64_t seq = atomic_load_explicit(&s->seq, memory_order_acquire) + idx;
        int64_t dif = (int64_t)(seq - pos);
        if (dif == 0) {
            if (atomic_compare_exchange_weak_explicit(&q->tail, &pos, pos + 1,
                                                      memory_order_relaxed,
                                                      memory_order_relaxed)) {
                *pos_out = pos;
                return s;
            }
            /* Another producer took pos; pos now holds the new tail. */
        } else if (dif < 0) {
            /* The slot still holds the record of the previous lap: full. */
            atomic_fetch_add_explicit(&q->dropped, 1, memory_order_relaxed);
            return NULL;
        } else {
            pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
        }
    }
}

static inline void publish_slot(struct trace_queue *q, struct trace_slot *s, uint64_t pos)
{
    atomic_store_explicit(&s->seq, pos + 1 - (pos & q->mask), memory_order_release);
}

static inline int32_t current_tid(void)
{
    if (tls_tid == 0)
        tls_tid = (int32_t)mprof_gettid();
    return tls_tid;
}

void mprof_trace_alloc(uintptr_t addr, size_t size, const uintptr_t *stack, int n)
{
    struct trace_queue *q = atomic_load_explicit(&trace_queue, memory_order_acquire);
    uint64_t pos;
    struct trace_slot *s;
    if (q == NULL || (s = claim_slot(q, &pos)) == NULL)
        return;
    if (n > MPROF_MAX_STACK)
        n = MPROF_MAX_STACK;
    if (n < 0)
        n = 0;
    s->rec.addr = addr;
    s->rec.size = size;
    s->rec.tid = current_tid();
    s->rec.kind = REC_ALLOC;
    s->rec.nstack = (uint8_t)n;
    memcpy(s->rec.stack, stack, (size_t)n * sizeof *stack);
    publish_slot(q, s, pos);
}

void MPROF_ENTRY_TEXT mprof_trace_free(uintptr_t addr, size_t size, int swept)
{
    struct trace_queue *q = atomic_load_explicit(&trace_queue, memory_order_acquire);
    if (q == NULL)
        return;
    /* On the free path the guard is not held and errno must survive
     * (free() does not change it). */
    int saved_errno = errno;
    mprof_guard_enter();
    uint64_t pos;
    struct trace_slot *s = claim_slot(q, &pos);
    if (s != NULL) {
        /* Unwind straight into the slot: this function and the free
         * wrappers are in mprof_entry_text, so the stack starts at the
         * program's call of free (or of mprof_record_free). */
        int n = mprof_stack_capture(s->rec.stack, MPROF_MAX_STACK);
        s->rec.addr = addr;
        s->rec.size = size;
        s->rec.tid = current_tid();
        s->rec.kind = swept ? REC_SWEPT : REC_FREE;
        s->rec.nstack = (uint8_t)(n < 0 ? 0 : n);
        publish_slot(q, s, pos);
    }
    mprof_guard_leave();
    errno = saved_errno;
}

/* --------------------------------------------------------- consumer side */

/* Takes the record at the head; 0 when empty (or its producer has not
 * finished writing it yet: then it is read on a later try). */
static int dequeue(struct trace_queue *q, struct trace_record *out)
{
    uint64_t pos = q->head;
    uint64_t idx = pos & q->mask;
    struct trace_slot *s = &q->slots[idx];
    uint64_t seq = atomic_load_explicit(&s->seq, memory_order_acquire) + idx;
    if (seq != pos + 1)
        return 0;
    *out = s->rec;
    atomic_store_explicit(&s->seq, pos + q->mask + 1 - idx, memory_order_release);
    q->head = pos + 1;
    return 1;
}

/* Records claimed but not yet read (some perhaps still being written). */
static uint64_t pending(struct trace_queue *q)
{
    return atomic_load_explicit(&q->tail, memory_order_acquire) - q->head;
}

struct pc_text {
    uintptr_t pc;
    char *text; /* NULL: empty entry */
};

/* Everything the consumer owns.  Guarded by consumer_lock: the background
 * thread holds it while it drains a batch, and exit takes it to drain what
 * is left, so there is only ever one consumer. */
struct consumer {
    int fd;                /* trace output; -1 until opened */
    int own_fd;            /* we opened it (MPROF_TRACE_FILE) */
    char *out;             /* formatted, not yet written */
    size_t out_len, out_cap;
    int out_lost;          /* some text did not fit in memory */
    int write_failed;      /* the output is broken: tracing stopped */
    mprof_symbolizer *sym; /* NULL until first needed, or if it cannot open */
    int sym_tried;
    unsigned long long dl_adds, dl_subs; /* loaded objects at the last refresh */
    int64_t last_refresh_ns; /* CLOCK_MONOTONIC */
    struct pc_text *cache;
    size_t cache_cap, cache_used;
};

static pthread_mutex_t consumer_lock = PTHREAD_MUTEX_INITIALIZER;
static struct consumer consumer = {.fd = -1};

static char trace_file_pattern[PATH_MAX]; /* "" = stderr */

/* Makes room for extra more bytes; 0, or -1 when out of memory (the text
 * is then left out and out_flush says so). */
static int out_reserve(struct consumer *c, size_t extra)
{
    if (c->out_len + extra <= c->out_cap)
        return 0;
    size_t cap = c->out_cap ? c->out_cap : OUT_FLUSH_BYTES * 2;
    while (cap < c->out_len + extra)
        cap *= 2;
    char *p = realloc(c->out, cap);
    if (p == NULL) {
        c->out_lost = 1;
        return -1;
    }
    c->out = p;
    c->out_cap = cap;
    return 0;
}

static void out_printf(struct consumer *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void out_printf(struct consumer *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || out_reserve(c, (size_t)n + 1) != 0)
        return;
    va_start(ap, fmt);
    vsnprintf(c->out + c->out_len, c->out_cap - c->out_len, fmt, ap);
    va_end(ap);
    c->out_len += (size_t)n;
}

static void out_str(struct consumer *c, const char *s)
{
    size_t n = strlen(s);
    if (out_reserve(c, n) != 0)
        return;
    memcpy(c->out + c->out_len, s, n);
    c->out_len += n;
}

static void out_flush(struct consumer *c)
{
    static const char lost[] = "mprof: trace: out of memory; some trace lines are missing\n\n";
    int rc = 0;
    if (c->out_len > 0)
        rc = mprof_write_all(c->fd, c->out, c->out_len);
    if (rc == 0 && c->out_lost)
        rc = mprof_write_all(c->fd, lost, sizeof lost - 1);
    c->out_len = 0;
    c->out_lost = 0;
    if (rc != 0) {
        /* A closed pipe or a full disk: tracing cannot go on.  Turn it off
         * rather than fill the queue for nobody. */
        mprof_warn("trace: cannot write the allocation trace: %s; tracing stopped",
                   strerror(errno));
        atomic_store(&mprof_hot.tap_on, 0);
        c->write_failed = 1;
    }
}

/* -- symbolizing */

struct dl_counts {
    unsigned long long adds, subs;
};

static int read_dl_counts(struct dl_phdr_info *info, size_t size, void *arg)
{
    struct dl_counts *c = arg;
    if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs) {
        c->adds = info->dlpi_adds;
        c->subs = info->dlpi_subs;
    }
    return 1; /* the counters are global: the first object is enough */
}

static void cache_clear(struct consumer *c)
{
    for (size_t i = 0; i < c->cache_cap; i++)
        free(c->cache[i].text);
    if (c->cache != NULL)
        memset(c->cache, 0, c->cache_cap * sizeof *c->cache);
    c->cache_used = 0;
}

/* Opens a fresh view of the process's mappings and forgets every cached
 * name, which may belong to a library that has been unloaded since. */
static void refresh_symbolizer(struct consumer *c)
{
    mprof_sym_close(c->sym);
    c->sym = mprof_sym_open();
    c->sym_tried = 1;
    struct dl_counts counts = {0, 0};
    dl_iterate_phdr(read_dl_counts, &counts);
    c->dl_adds = counts.adds;
    c->dl_subs = counts.subs;
    c->last_refresh_ns = mprof_mono_ns();
    cache_clear(c);
}

/* A dlopen or dlclose since the last refresh changes which code lives
 * where.  glibc counts both; comparing them is cheaper than finding out pc
 * by pc.  Checked before each batch, and for a pc in no known mapping (a
 * library loaded while the batch was being written). */
static int loaded_objects_changed(const struct consumer *c)
{
    struct dl_counts counts = {0, 0};
    dl_iterate_phdr(read_dl_counts, &counts);
    return !c->sym_tried || counts.adds != c->dl_adds || counts.subs != c->dl_subs;
}

static void check_loaded_objects(struct consumer *c)
{
    if (loaded_objects_changed(c))
        refresh_symbolizer(c);
}

/* The lines printed for one pc, built with the symbolizer; malloc'd. */
static char *format_pc(struct consumer *c, uintptr_t pc)
{
    int mi = mprof_sym_find_mapping(c->sym, pc);
    if (mi < 0 &&
        (loaded_objects_changed(c) || mprof_mono_ns() - c->last_refresh_ns >= 1000000000)) {
        /* Code we have not seen mapped: a library loaded since the last
         * refresh, or code the loader does not know (JIT, a mapping made by
         * hand).  For the latter, look again at most once a second, so that
         * JIT code does not make us reread /proc/self/maps for every
         * record. */
        refresh_symbolizer(c);
        mi = mprof_sym_find_mapping(c->sym, pc);
    }
    mprof_frame frames[MAX_INLINE];
    int nf = mprof_sym_lookup(c->sym, pc, frames, MAX_INLINE);
    const mprof_mapping *m = mi >= 0 ? mprof_sym_mapping(c->sym, mi) : NULL;

    size_t cap = 256, len = 0;
    char *text = malloc(cap);
    if (text == NULL)
        return NULL;
    text[0] = '\0';
    for (int pass = 0; pass < 2; pass++) {
        /* First pass measures, second writes: the text is built once. */
        len = 0;
        char *dst = pass ? text : NULL;
        size_t room = pass ? cap : 0;
#define EMIT(...)                                                                        \
    do {                                                                                 \
        int w_ = snprintf(dst ? dst + len : NULL, dst ? room - len : 0, __VA_ARGS__);   \
        if (w_ > 0)                                                                      \
            len += (size_t)w_;                                                           \
    } while (0)
        int named = 0;
        for (int f = 0; f < nf; f++) {
            const char *name = frames[f].function ? frames[f].function : frames[f].system_name;
            if (name == NULL)
                continue;
            named = 1;
            /* Every frame but the last was inlined into the one after it. */
            EMIT("%s%s\n", name, f + 1 < nf ? " (inlined)" : "");
            if (frames[f].file != NULL)
                EMIT("\t%s:%d\n", frames[f].file, frames[f].line);
            else if (m != NULL)
                EMIT("\t%s+0x%llx\n", m->path[0] ? m->path : "?",
                     (unsigned long long)(pc - m->start + m->file_offset));
            else
                EMIT("\t?\n");
        }
        if (!named) {
            EMIT("0x%llx\n", (unsigned long long)pc);
            if (m != NULL)
                EMIT("\t%s+0x%llx\n", m->path[0] ? m->path : "?",
                     (unsigned long long)(pc - m->start + m->file_offset));
            else
                EMIT("\t?\n");
        }
#undef EMIT
        if (pass == 0 && len + 1 > cap) {
            cap = len + 1;
            char *bigger = realloc(text, cap);
            if (bigger == NULL) {
                free(text);
                return NULL;
            }
            text = bigger;
        }
    }
    return text;
}

static uint64_t hash_pc(uintptr_t pc) { return mprof_hash_pointer(pc) >> 17; }

/* Cached lines for pc: most stacks repeat, and a lookup in libdw costs
 * microseconds where a hash probe costs nanoseconds.  NULL when the cache
 * cannot grow (out of memory): the caller formats without it. */
static const char *pc_lines(struct consumer *c, uintptr_t pc)
{
    if ((c->cache_used + 1) * 2 > c->cache_cap) {
        if (c->cache_cap >= MAX_CACHE_ENTRIES) {
            cache_clear(c);
        } else {
            size_t ncap = c->cache_cap ? c->cache_cap * 2 : 1024;
            struct pc_text *n = calloc(ncap, sizeof *n);
            if (n == NULL)
                return NULL;
            for (size_t i = 0; i < c->cache_cap; i++) {
                if (c->cache[i].text == NULL)
                    continue;
                size_t j = hash_pc(c->cache[i].pc) & (ncap - 1);
                while (n[j].text != NULL)
                    j = (j + 1) & (ncap - 1);
                n[j] = c->cache[i];
            }
            free(c->cache);
            c->cache = n;
            c->cache_cap = ncap;
        }
    }
    /* At most half full here, so every probe ends at an empty slot. */
    size_t mask = c->cache_cap - 1;
    for (size_t j = hash_pc(pc) & mask; c->cache[j].text != NULL; j = (j + 1) & mask)
        if (c->cache[j].pc == pc)
            return c->cache[j].text;
    char *text = format_pc(c, pc);
    if (text == NULL)
        return NULL;
    /* Probe again: format_pc may have refreshed the symbolizer, which
     * empties the cache. */
    size_t j = hash_pc(pc) & mask;
    while (c->cache[j].text != NULL)
        j = (j + 1) & mask;
    c->cache[j].pc = pc;
    c->cache[j].text = text;
    c->cache_used++;
    return text;
}

static void format_record(struct consumer *c, const struct trace_record *r)
{
    out_printf(c, "%s(0x%llx, %zu)\n", r->kind == REC_ALLOC ? "tracealloc" : "tracefree",
               (unsigned long long)r->addr, r->size);
    if (r->kind == REC_SWEPT)
        out_printf(c, "thread %d (swept by the collector):\n", (int)r->tid);
    else
        out_printf(c, "thread %d:\n", (int)r->tid);
    for (int i = 0; i < r->nstack && i < MPROF_MAX_STACK; i++) {
        if (mprof_is_thread_start_frame(r->stack[i])) /* hidden: core.h */
            continue;
        const char *lines = pc_lines(c, r->stack[i]);
        if (lines != NULL) {
            out_str(c, lines);
        } else {
            char *text = format_pc(c, r->stack[i]);
            if (text != NULL)
                out_str(c, text);
            else
                out_printf(c, "0x%llx\n\t?\n", (unsigned long long)r->stack[i]);
            free(text);
        }
    }
    out_str(c, "\n");
}

static void report_drops(struct consumer *c, struct trace_queue *q)
{
    uint64_t n = atomic_exchange_explicit(&q->dropped, 0, memory_order_relaxed);
    if (n > 0)
        out_printf(c,
                   "mprof: trace: %llu records dropped (queue of %zu full; raise "
                   "MPROF_TRACE_BUFFER)\n\n",
                   (unsigned long long)n, queue_records);
}

/* Writes up to max queued records; consumer_lock held.  Returns how many. */
static size_t drain_batch(struct consumer *c, struct trace_queue *q, size_t max)
{
    if (c->fd < 0 || c->write_failed)
        return 0;
    size_t n = 0;
    struct trace_record rec;
    if (pending(q) > 0)
        check_loaded_objects(c);
    while (n < max && dequeue(q, &rec)) {
        format_record(c, &rec);
        n++;
        if (c->out_len >= OUT_FLUSH_BYTES)
            out_flush(c);
    }
    report_drops(c, q);
    out_flush(c);
    return n;
}

/* ---------------------------------------------------- background thread */

static pthread_t drainer;
static _Atomic int drainer_running;
static _Atomic int drainer_stop;

/* Opens MPROF_TRACE_FILE for this process (a forked child gets its own file,
 * as with MPROF_HEAP); consumer_lock held or single-threaded. */
static int open_output(struct consumer *c)
{
    if (trace_file_pattern[0] == '\0') {
        c->fd = STDERR_FILENO;
        c->own_fd = 0;
        return 0;
    }
    char path[PATH_MAX];
    if (mprof_output_path(trace_file_pattern, path, sizeof path) != 0) {
        mprof_warn("trace: MPROF_TRACE_FILE=\"%s\" is too long; tracing off", trace_file_pattern);
        return -1;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        mprof_warn("trace: cannot open %s: %s (set MPROF_TRACE_FILE to a writable path); "
                   "tracing off",
                   path, strerror(errno));
        return -1;
    }
    c->fd = fd;
    c->own_fd = 1;
    return 0;
}

static void sleep_ns(long ns)
{
    struct timespec ts = {0, ns};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void *drainer_main(void *arg)
{
    (void)arg;
    /* For life: everything this thread allocates (libdw included) goes to
     * the real allocator, unsampled and untraced. */
    mprof_guard_enter();
    pthread_setname_np(pthread_self(), "mprof-trace");
    pthread_mutex_lock(&consumer_lock);
    if (consumer.fd < 0 && open_output(&consumer) != 0)
        atomic_store(&mprof_hot.tap_on, 0);
    /* Read the mappings and symbol tables now, not when the first record
     * arrives: that takes tens of milliseconds, during which a burst of
     * allocations would find the queue full. */
    check_loaded_objects(&consumer);
    pthread_mutex_unlock(&consumer_lock);
    /* Until exit asks us to stop; the exiting thread then writes the rest
     * itself, up to what was queued when it started (threads still running
     * could otherwise keep us, and exit, going for ever). */
    while (!atomic_load(&drainer_stop)) {
        struct trace_queue *q = atomic_load_explicit(&trace_queue, memory_order_acquire);
        pthread_mutex_lock(&consumer_lock);
        size_t n = drain_batch(&consumer, q, BATCH_RECORDS);
        pthread_mutex_unlock(&consumer_lock);
        if (n == 0)
            sleep_ns(IDLE_SLEEP_NS);
    }
    mprof_guard_leave();
    return NULL;
}

/* Starts the background thread with the program's signals blocked: they
 * must go to its own threads, and a write to a closed pipe must give EPIPE
 * here, not kill the process with SIGPIPE.  Fault signals stay open
 * (blocking them cannot stop a fault, only make the kernel kill silently),
 * and SIGPROF too, so that the CPU profiler charges this thread's work. */
static int start_drainer(void)
{
    sigset_t all, old;
    sigfillset(&all);
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGBUS);
    sigdelset(&all, SIGFPE);
    sigdelset(&all, SIGILL);
    sigdelset(&all, SIGPROF);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    atomic_store(&drainer_stop, 0);
    int rc = mprof_thread_create_unhooked(&drainer, NULL, drainer_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        mprof_warn("trace: cannot start the trace writer thread: %s; tracing off", strerror(rc));
        return -1;
    }
    atomic_store(&drainer_running, 1);
    return 0;
}

static struct trace_queue *new_queue(size_t records)
{
    /* Zeroed arena memory is an empty queue (see trace_slot.seq). */
    return mprof_arena_alloc(sizeof(struct trace_queue) + records * sizeof(struct trace_slot));
}

/* ---------------------------------------------------------------- exit */

/* Writes what is queued now, from the exiting thread.  A producer caught
 * between claiming and publishing a slot (another thread, still running) is
 * given a moment, then its record is abandoned. */
static void drain_remaining(void)
{
    struct trace_queue *q = atomic_load_explicit(&trace_queue, memory_order_acquire);
    if (q == NULL)
        return;
    mprof_guard_enter();
    if (pthread_mutex_trylock(&consumer_lock) == 0) {
        if (consumer.fd < 0 && !consumer.write_failed && open_output(&consumer) != 0)
            consumer.write_failed = 1;
        uint64_t target = atomic_load(&q->tail);
        for (int waits = 0; q->head < target && waits < 50;) {
            size_t want = target - q->head < BATCH_RECORDS ? target - q->head : BATCH_RECORDS;
            if (drain_batch(&consumer, q, want) == 0) {
                if (consumer.write_failed)
                    break;
                sleep_ns(IDLE_SLEEP_NS);
                waits++;
            }
        }
        /* Drops counted after the last batch. */
        report_drops(&consumer, q);
        if (consumer.fd >= 0 && !consumer.write_failed)
            out_flush(&consumer);
        pthread_mutex_unlock(&consumer_lock);
    }
    mprof_guard_leave();
}

void mprof_trace_at_exit(void)
{
    if (atomic_load(&trace_queue) == NULL)
        return;
    if (atomic_exchange(&drainer_running, 0)) {
        atomic_store(&drainer_stop, 1);
        struct timespec deadline = mprof_deadline_in_ms(EXIT_JOIN_SECONDS * 1000);
        if (pthread_timedjoin_np(drainer, NULL, &deadline) != 0) {
            /* Blocked writing (a pipe nobody reads): leave it. */
            mprof_warn("trace: the trace writer is stuck; records still queued are lost");
            return;
        }
    }
    drain_remaining();
}

/* Frees made after the atexit handlers (C++ static destructors of shared
 * libraries, other libraries' destructors) are queued too: one more pass. */
__attribute__((destructor)) static void trace_at_unload(void)
{
    if (atomic_load(&trace_queue) != NULL && !atomic_load(&drainer_running))
        drain_remaining();
}

/* ---------------------------------------------------------------- fork */

/*
 * The child of a fork has no trace writer, a copy of the queue that may
 * hold slots claimed by threads that do not exist in it, and a copy of the
 * consumer's state that the parent's writer may have been changing.  It
 * gets a fresh queue (the parent prints what was queued before the fork),
 * a fresh consumer (the old symbolizer and buffers are abandoned, never
 * touched), its own output file and its own writer thread.
 */
void mprof_trace_postfork_child(void)
{
    if (atomic_load(&trace_queue) == NULL)
        return;
    tls_tid = 0;
    static const pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    memcpy(&consumer_lock, &fresh, sizeof fresh);
    if (consumer.own_fd)
        close(consumer.fd);
    memset(&consumer, 0, sizeof consumer);
    consumer.fd = -1;
    atomic_store(&drainer_running, 0);
    struct trace_queue *q = new_queue(queue_records);
    if (q != NULL)
        q->mask = queue_records - 1;
    atomic_store(&trace_queue, q);
    if (q == NULL || !atomic_load(&mprof_hot.tap_on)) {
        atomic_store(&mprof_hot.tap_on, 0);
        return;
    }
    mprof_guard_enter();
    if (start_drainer() != 0)
        atomic_store(&mprof_hot.tap_on, 0);
    mprof_guard_leave();
}

/* ------------------------------------------------------------ start-up */

static void start_trace(void)
{
    const char *mode = mprof_option_text(MPROF_OPT_TRACE);
    if (mode == NULL)
        return;
    if (strcmp(mode, "alloc") != 0) {
        mprof_warn("ignoring MPROF_TRACE=\"%s\": the trace mprof has is \"alloc\"", mode);
        return;
    }
    long records = mprof_option_long(MPROF_OPT_TRACE_BUFFER);
    /* Round up to a power of two: slot index = position & mask. */
    size_t cap = (size_t)mprof_option_min(MPROF_OPT_TRACE_BUFFER);
    while (cap < (size_t)records)
        cap <<= 1;
    queue_records = cap;

    /* "-" is stderr, as for mprof run --trace. */
    const char *file = mprof_option_text(MPROF_OPT_TRACE_FILE);
    if (file != NULL && strcmp(file, "-") != 0) {
        if (strlen(file) >= sizeof trace_file_pattern) {
            mprof_warn("ignoring MPROF_TRACE: MPROF_TRACE_FILE is too long");
            return;
        }
        strcpy(trace_file_pattern, file);
    }
    /* Open now, so that a bad path is reported at start-up rather than
     * after the program has run. */
    if (open_output(&consumer) != 0)
        return;

    struct trace_queue *q = new_queue(queue_records);
    if (q == NULL) {
        mprof_warn("trace: cannot map a queue of %zu records; tracing off", queue_records);
        return;
    }
    q->mask = queue_records - 1;
    atomic_store_explicit(&trace_queue, q, memory_order_release);
    if (start_drainer() != 0) {
        atomic_store(&trace_queue, NULL);
        return;
    }
    /* Last: from here on the sampler queues records. */
    static const mprof_heap_tap trace_tap = {.alloc = mprof_trace_alloc, .free = mprof_trace_free};
    mprof_heap_tap_install(&trace_tap);
    atomic_store(&mprof_hot.tap_on, 1);
}

/* Run by the life-cycle table after the sampler's row, so the sampler is
 * ready and the program has not yet allocated anything.  Its exit and fork
 * hooks do nothing unless this started a trace. */
void mprof_trace_init(void)
{
    mprof_guard_enter();
    start_trace();
    mprof_guard_leave();
}
