/*
 * toy_gc: a small stop-the-world mark-sweep collector, written to show how a
 * runtime that owns its heap reports to mprof (docs/gc-runtimes.md).
 *
 * Objects live in the runtime's own arena, not in malloc's heap, so mprof's
 * malloc interposer never sees them.  The runtime tells mprof itself:
 *
 *   allocation                 mprof_record_alloc(obj, size)
 *   explicit free (gc_free)    mprof_record_free(obj, MPROF_FREE_EXPLICIT)
 *   freed by the sweep         mprof_record_free(obj, MPROF_FREE_SWEPT)
 *   mark termination           mprof_next_cycle(), world still stopped
 *   after restarting the world mprof_flush()
 *
 * and the heap profile it gets is Go's consistent snapshot (memRecord's three cycles): the
 * profile published at collection N shows exactly the objects that were
 * reachable at collection N-1.
 *
 * Mutator threads attach to the heap and hold it "running" (a read lock on
 * the world) between safepoints; a collection takes the world's write lock,
 * which stops every attached mutator at its next safepoint.  References a
 * mutator keeps across a safepoint must be in its roots.
 */
#ifndef TOY_GC_H
#define TOY_GC_H

#include <stddef.h>
#include <stdint.h>

typedef struct gc_heap gc_heap;
typedef struct gc_mutator gc_mutator;

typedef struct gc_object {
    struct gc_object *next; /* the heap's object list, or a free list */
    uint32_t size;          /* bytes, header included: what mprof is told */
    uint16_t nfields;       /* pointer fields, traced by the collector */
    uint8_t mark;
    _Atomic uint8_t state;  /* GC_LIVE, or GC_FREED by gc_free */
    uint32_t tag;           /* the mutator's own label (the tests use it) */
    struct gc_object *fields[];
    /* then the payload */
} gc_object;

enum { GC_LIVE = 0, GC_FREED = 1 };

/* A heap with arena_bytes of object space.  NULL on failure. */
gc_heap *gc_heap_new(size_t arena_bytes);
/* Every mutator must have detached. */
void gc_heap_free(gc_heap *h);

/* Attaches the calling thread with nroots root slots (all NULL) and marks it
 * running; detach before the thread ends. */
gc_mutator *gc_mutator_attach(gc_heap *h, int nroots);
void gc_mutator_detach(gc_mutator *m);
gc_object **gc_roots(gc_mutator *m);

/* GC_GLOBALS root slots of the heap itself (a runtime's globals), for
 * objects that outlive the thread that made them.  Written by attached
 * mutators; two mutators must not write the same slot. */
#define GC_GLOBALS 16
gc_object **gc_globals(gc_heap *h);

/* Lets a pending collection run.  Objects not reachable from roots may be
 * freed by it. */
void gc_safepoint(gc_mutator *m);

/*
 * A new object with nfields NULL pointer fields and payload_bytes of zeroed
 * payload, tagged with tag.  NULL when the arena is full: call
 * gc_safepoint (to let a collection free space) and retry.
 */
gc_object *gc_alloc(gc_mutator *m, int nfields, size_t payload_bytes, uint32_t tag);

/* Frees an object that nothing references any more (a scope ended, a
 * buffer was released): its memory is reused after the next sweep. */
void gc_free(gc_mutator *m, gc_object *o);

static inline void *gc_payload(gc_object *o) { return &o->fields[o->nfields]; }

/*
 * A full collection, from any thread that is not an attached mutator:
 * stop the world, mark from every mutator's roots, sweep.  Serialized with
 * other collections.
 */
void gc_collect(gc_heap *h);

/* Hooks for tests and tools.  at_mark_termination runs with the world
 * stopped, after marking and before mprof_next_cycle(); after_flush runs
 * after the world restarted and mprof_flush() returned, before the sweep.
 * gc_foreach_object may be called from at_mark_termination: it visits
 * every object allocated before this collection, with its mark. */
typedef struct gc_hooks {
    void (*at_mark_termination)(gc_heap *h, uint64_t cycle, void *arg);
    void (*after_flush)(gc_heap *h, uint64_t cycle, void *arg);
    void *arg;
} gc_hooks;
void gc_set_hooks(gc_heap *h, const gc_hooks *hooks);
void gc_foreach_object(gc_heap *h, void (*fn)(const gc_object *o, int marked, void *arg),
                       void *arg);

typedef struct gc_stats {
    uint64_t collections;
    uint64_t live_objects, live_bytes; /* after the last sweep */
    uint64_t swept_objects, explicit_frees;
} gc_stats;
void gc_get_stats(gc_heap *h, gc_stats *out);

#endif /* TOY_GC_H */
