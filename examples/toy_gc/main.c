/*
 * toy_gc_demo: a small "server" on the toy collector, profiled by mprof.
 *
 *   toy_gc_demo [PROFILE]      (default toy_gc.heap.pb.gz)
 *
 * Two mutator threads handle requests: each request parses into a few
 * temporary objects (garbage after the request), builds a response buffer
 * that is freed explicitly, and remembers a session object in a table that
 * only ever grows - the leak the heap profile should point at.  The main
 * thread collects every 5 ms until they have handled 20000 requests each,
 * then writes the heap profile:
 *
 *   go tool pprof -top toy_gc.heap.pb.gz     (or: mprof top toy_gc.heap.pb.gz)
 *
 * shows remember_session holding memory, and the temporaries not.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mprof.h"
#include "toy_gc.h"

#define NROOTS 4
#define NMUTATORS 2
#define REQUESTS 20000
enum { ROOT_REQUEST = 0 };

static gc_heap *heap;
static _Atomic int finished; /* mutators done */

/* Retries after a safepoint when the arena is full, letting the collector
 * make room. */
static gc_object *alloc(gc_mutator *m, int nfields, size_t payload, uint32_t tag)
{
    gc_object *o;
    while ((o = gc_alloc(m, nfields, payload, tag)) == NULL)
        gc_safepoint(m);
    return o;
}

/* A request's parse tree: garbage once the request is done. */
__attribute__((noinline)) static gc_object *parse_request(gc_mutator *m, int n)
{
    gc_object *list = NULL;
    for (int i = 0; i < n; i++) {
        gc_object *tok = alloc(m, 1, 24, 1);
        tok->fields[0] = list;
        list = tok;
        gc_roots(m)[ROOT_REQUEST] = list; /* reachable while we work */
    }
    return list;
}

/* The response: freed explicitly once sent. */
__attribute__((noinline)) static gc_object *make_response(gc_mutator *m)
{
    gc_object *r = alloc(m, 0, 512, 2);
    memset(gc_payload(r), 'x', 512);
    return r;
}

/* The leak: a session per request, chained into a global table (one slot
 * per mutator) that is never trimmed. */
__attribute__((noinline)) static void remember_session(gc_mutator *m, int id)
{
    gc_object *s = alloc(m, 1, 96, 3);
    s->fields[0] = gc_globals(heap)[id];
    gc_globals(heap)[id] = s;
}

static void *mutator(void *arg)
{
    int id = (int)(intptr_t)arg;
    gc_mutator *m = gc_mutator_attach(heap, NROOTS);
    if (m == NULL)
        return NULL;
    for (int i = 0; i < REQUESTS; i++) {
        parse_request(m, 8);
        gc_object *r = make_response(m);
        gc_free(m, r);
        remember_session(m, id);
        gc_roots(m)[ROOT_REQUEST] = NULL;
        gc_safepoint(m);
    }
    gc_mutator_detach(m);
    atomic_fetch_add(&finished, 1);
    return NULL;
}

int main(int argc, char **argv)
{
    const char *profile = argc > 1 ? argv[1] : "toy_gc.heap.pb.gz";
    if (getenv("MPROF_RATE") == NULL)
        mprof_set_rate(4096); /* small objects: sample densely by default */
    heap = gc_heap_new(64 << 20);
    if (heap == NULL) {
        perror("gc_heap_new");
        return 1;
    }
    pthread_t t[NMUTATORS];
    for (int i = 0; i < NMUTATORS; i++)
        pthread_create(&t[i], NULL, mutator, (void *)(intptr_t)i);
    /* The collector: also what frees room when the arena is full. */
    while (atomic_load(&finished) < NMUTATORS) {
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
        gc_collect(heap);
    }
    for (int i = 0; i < NMUTATORS; i++)
        pthread_join(t[i], NULL);
    /* The profile published by the last collection shows the heap as of the
     * collection before it; one more makes it show the heap as it is now
     * (the mutators have stopped). */
    gc_collect(heap);
    gc_collect(heap);

    gc_stats st;
    gc_get_stats(heap, &st);
    printf("%llu collections; %llu objects (%llu bytes) live; %llu swept, %llu freed "
           "explicitly\n",
           (unsigned long long)st.collections, (unsigned long long)st.live_objects,
           (unsigned long long)st.live_bytes, (unsigned long long)st.swept_objects,
           (unsigned long long)st.explicit_frees);
    if (mprof_write_heap_profile(profile) != 0) {
        perror(profile);
        return 1;
    }
    printf("heap profile written to %s\n  go tool pprof -top %s\n", profile, profile);
    gc_heap_free(heap);
    return 0;
}
