/*
 * toy_gc: a stop-the-world mark-sweep collector over its own arena, and the
 * five calls through which it keeps mprof's heap profile right.  See
 * toy_gc.h for the interface and docs/gc-runtimes.md for the protocol.
 *
 * Memory: one mmap'd arena, carved by a bump pointer into objects whose
 * sizes are multiples of 16 bytes; freed objects go to a free list per size
 * and are reused.  Every object allocated since the last collection, and
 * every survivor, is on the heap's object list, which the sweep walks.
 *
 * The order of the reports is what makes the profile consistent, and each
 * call site below says why it is where it is.
 */
#include "toy_gc.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "mprof.h"

#define GRAIN 16
#define MAX_OBJECT 4096
#define NCLASSES (MAX_OBJECT / GRAIN + 1)

struct gc_mutator {
    gc_heap *heap;
    struct gc_mutator *next;
    int nroots;
    gc_object **roots;
};

struct gc_heap {
    /* The world: mutators hold it for reading while they run, a collection
     * takes it for writing, which is "stop the world". */
    pthread_rwlock_t world;
    /* Arena, free lists, object list and mutator list.  Order: world, then
     * lock. */
    pthread_mutex_t lock;
    pthread_mutex_t collect_lock; /* one collection at a time */
    char *arena;
    size_t arena_size, bump;
    gc_object *free_lists[NCLASSES];
    gc_object *objects;    /* allocated since the last collection, and survivors */
    gc_object *sweep_list; /* the collection's snapshot of objects */
    gc_mutator *mutators;
    gc_object *globals[GC_GLOBALS];
    gc_hooks hooks;
    uint64_t cycle;
    gc_stats stats;
};

gc_heap *gc_heap_new(size_t arena_bytes)
{
    gc_heap *h = calloc(1, sizeof *h);
    if (h == NULL)
        return NULL;
    h->arena_size = arena_bytes & ~(size_t)(GRAIN - 1);
    h->arena = mmap(NULL, h->arena_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                    -1, 0);
    if (h->arena == MAP_FAILED) {
        free(h);
        return NULL;
    }
    /* Writers first: a collection waiting for the world must not be
     * starved by mutators that keep coming back from their safepoints. */
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&h->world, &attr);
    pthread_rwlockattr_destroy(&attr);
    pthread_mutex_init(&h->lock, NULL);
    pthread_mutex_init(&h->collect_lock, NULL);

    /*
     * From here on the process' heap profile follows our collections.  Until
     * mprof_next_cycle() is first called, mprof assumes every free is
     * explicit and publishes every event at once whenever a profile is read;
     * a read before our first collection would then publish allocations
     * whose sweep frees cannot have happened yet, and the profile would
     * never be consistent again for them.  An empty cycle now switches it to
     * publishing only what a mark termination has made final.
     */
    mprof_next_cycle();
    mprof_flush();
    return h;
}

void gc_heap_free(gc_heap *h)
{
    if (h == NULL)
        return;
    /* Every object still in the heap dies with it.  mprof must hear of it:
     * it remembers sampled addresses, and once the arena is unmapped the
     * same addresses may come back from malloc. */
    for (gc_object *o = h->objects; o != NULL; o = o->next)
        if (atomic_load(&o->state) == GC_LIVE)
            mprof_record_free(o, MPROF_FREE_EXPLICIT);
    munmap(h->arena, h->arena_size);
    pthread_rwlock_destroy(&h->world);
    pthread_mutex_destroy(&h->lock);
    pthread_mutex_destroy(&h->collect_lock);
    free(h);
}

gc_mutator *gc_mutator_attach(gc_heap *h, int nroots)
{
    gc_mutator *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    m->roots = calloc((size_t)(nroots > 0 ? nroots : 1), sizeof *m->roots);
    if (m->roots == NULL) {
        free(m);
        return NULL;
    }
    m->heap = h;
    m->nroots = nroots;
    pthread_mutex_lock(&h->lock);
    m->next = h->mutators;
    h->mutators = m;
    pthread_mutex_unlock(&h->lock);
    pthread_rwlock_rdlock(&h->world);
    return m;
}

void gc_mutator_detach(gc_mutator *m)
{
    gc_heap *h = m->heap;
    pthread_mutex_lock(&h->lock);
    for (gc_mutator **p = &h->mutators; *p != NULL; p = &(*p)->next) {
        if (*p == m) {
            *p = m->next;
            break;
        }
    }
    pthread_mutex_unlock(&h->lock);
    pthread_rwlock_unlock(&h->world);
    free(m->roots);
    free(m);
}

gc_object **gc_roots(gc_mutator *m) { return m->roots; }
gc_object **gc_globals(gc_heap *h) { return h->globals; }

void gc_safepoint(gc_mutator *m)
{
    pthread_rwlock_unlock(&m->heap->world);
    pthread_rwlock_rdlock(&m->heap->world);
}

gc_object *gc_alloc(gc_mutator *m, int nfields, size_t payload_bytes, uint32_t tag)
{
    gc_heap *h = m->heap;
    if (nfields < 0 || nfields > 64 || payload_bytes > MAX_OBJECT) {
        errno = EINVAL;
        return NULL;
    }
    size_t size = sizeof(gc_object) + (size_t)nfields * sizeof(gc_object *) + payload_bytes;
    size = (size + GRAIN - 1) & ~(size_t)(GRAIN - 1);
    if (size > MAX_OBJECT) {
        errno = EINVAL;
        return NULL;
    }
    gc_object *o = NULL;
    pthread_mutex_lock(&h->lock);
    size_t cls = size / GRAIN;
    if (h->free_lists[cls] != NULL) {
        o = h->free_lists[cls];
        h->free_lists[cls] = o->next;
    } else if (h->arena_size - h->bump >= size) {
        o = (gc_object *)(h->arena + h->bump);
        h->bump += size;
    }
    if (o != NULL) {
        memset(o, 0, size);
        o->size = (uint32_t)size;
        o->nfields = (uint16_t)nfields;
        o->tag = tag;
        o->next = h->objects;
        h->objects = o;
    }
    pthread_mutex_unlock(&h->lock);
    if (o == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    /*
     * Reported while this thread still holds the world: a collection cannot
     * come between the object joining the heap and mprof hearing of it, so
     * both are on the same side of every mark termination.  mprof samples
     * it at its rate and charges it to the caller's stack (this function is
     * the innermost frame, as mallocgc is in Go's profiles).
     */
    mprof_record_alloc(o, size);
    return o;
}

void gc_free(gc_mutator *m, gc_object *o)
{
    (void)m;
    if (o == NULL)
        return;
    /*
     * mprof first, then the state: once the sweep sees GC_FREED it may hand
     * the memory to another allocation, whose mprof_record_alloc must come
     * after this free or the profiler would match the wrong block.  An
     * explicit free is final at once: mprof accounts it to cycle C+2, with
     * the allocations of this cycle.
     */
    mprof_record_free(o, MPROF_FREE_EXPLICIT);
    atomic_store_explicit(&o->state, GC_FREED, memory_order_release);
}

/* ------------------------------------------------------------ collection */

typedef struct mark_stack {
    gc_object **v;
    size_t n, cap;
} mark_stack;

static void push(mark_stack *s, gc_object *o)
{
    if (o == NULL || o->mark)
        return;
    o->mark = 1;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        gc_object **v = realloc(s->v, cap * sizeof *v);
        if (v == NULL)
            abort(); /* a toy: a real collector would fall back on a slower mark */
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = o;
}

/* The world is stopped. */
static void mark(gc_heap *h)
{
    mark_stack s = {0};
    pthread_mutex_lock(&h->lock);
    for (int i = 0; i < GC_GLOBALS; i++)
        push(&s, h->globals[i]);
    for (gc_mutator *m = h->mutators; m != NULL; m = m->next)
        for (int i = 0; i < m->nroots; i++)
            push(&s, m->roots[i]);
    pthread_mutex_unlock(&h->lock);
    while (s.n > 0) {
        gc_object *o = s.v[--s.n];
        for (int i = 0; i < o->nfields; i++)
            push(&s, o->fields[i]);
    }
    free(s.v);
}

/* Runs with the world started again: mutators only ever touch reachable
 * objects, and the sweep frees only unreachable ones. */
static void sweep(gc_heap *h)
{
    gc_object *survivors = NULL, *last = NULL, *freed = NULL;
    uint64_t live = 0, live_bytes = 0, swept = 0, explicit_frees = 0;
    for (gc_object *o = h->sweep_list, *next; o != NULL; o = next) {
        next = o->next;
        if (atomic_load_explicit(&o->state, memory_order_acquire) == GC_FREED) {
            /* mprof heard of it in gc_free. */
            explicit_frees++;
        } else if (!o->mark) {
            /*
             * Found dead by this collection.  mprof accounts a sweep free to
             * cycle C+1: after the next mark termination publishes it, the
             * profile shows this collection's heap, allocations (C+2 when
             * they were made) and sweep frees together.  Reported before the
             * memory can be reused, for the reason given in gc_free.
             */
            mprof_record_free(o, MPROF_FREE_SWEPT);
            swept++;
        } else {
            o->mark = 0;
            o->next = survivors;
            survivors = o;
            if (last == NULL)
                last = o;
            live++;
            live_bytes += o->size;
            continue;
        }
        o->next = freed;
        freed = o;
    }
    h->sweep_list = NULL;
    pthread_mutex_lock(&h->lock);
    if (survivors != NULL) {
        last->next = h->objects;
        h->objects = survivors;
    }
    for (gc_object *o = freed, *next; o != NULL; o = next) {
        next = o->next;
        size_t cls = o->size / GRAIN;
        o->next = h->free_lists[cls];
        h->free_lists[cls] = o;
    }
    h->stats.live_objects = live;
    h->stats.live_bytes = live_bytes;
    h->stats.swept_objects += swept;
    h->stats.explicit_frees += explicit_frees;
    pthread_mutex_unlock(&h->lock);
}

void gc_collect(gc_heap *h)
{
    pthread_mutex_lock(&h->collect_lock);
    pthread_rwlock_wrlock(&h->world); /* every mutator is at a safepoint */
    mark(h);
    /* The heap as of this collection: everything allocated so far.  Later
     * allocations go on a fresh list and are not swept this time. */
    pthread_mutex_lock(&h->lock);
    h->sweep_list = h->objects;
    h->objects = NULL;
    uint64_t cycle = ++h->cycle;
    h->stats.collections = cycle;
    pthread_mutex_unlock(&h->lock);
    if (h->hooks.at_mark_termination != NULL)
        h->hooks.at_mark_termination(h, cycle, h->hooks.arg);
    /*
     * Mark termination, with the world still stopped: every allocation and
     * explicit free so far has been reported under the world lock, so all
     * of them fall in cycles up to this one and none after.  This is the
     * cheap half (a counter increment), fit for a pause.
     */
    mprof_next_cycle();
    pthread_rwlock_unlock(&h->world);
    /* The expensive half, with the world running: publishes the cycle the
     * increment completed (the heap as of the previous collection, its
     * sweep frees included) and frees its slot for reuse. */
    mprof_flush();
    if (h->hooks.after_flush != NULL)
        h->hooks.after_flush(h, cycle, h->hooks.arg);
    /* The sweep ends before the next collection can start (collect_lock),
     * so all of its frees are in before the next mark termination. */
    sweep(h);
    pthread_mutex_unlock(&h->collect_lock);
}

void gc_set_hooks(gc_heap *h, const gc_hooks *hooks)
{
    pthread_mutex_lock(&h->collect_lock);
    h->hooks = *hooks;
    pthread_mutex_unlock(&h->collect_lock);
}

void gc_foreach_object(gc_heap *h, void (*fn)(const gc_object *o, int marked, void *arg),
                       void *arg)
{
    for (const gc_object *o = h->sweep_list; o != NULL; o = o->next)
        fn(o, o->mark, arg);
}

void gc_get_stats(gc_heap *h, gc_stats *out)
{
    pthread_mutex_lock(&h->lock);
    *out = h->stats;
    pthread_mutex_unlock(&h->lock);
}
