/*
 * Unit test of the pthread_create interposition (src/threads.c), compiled
 * into this executable with a stand-in for the arena, so that it also runs
 * under ASan and TSan (whose own pthread_create is then the "real" one the
 * wrapper finds with RTLD_NEXT).
 *
 *  1. No hooks registered: threads run and return values as usual.
 *  2. Hooks registered: on_create runs in the creator, on_start and on_exit
 *     in the new thread, for a return, a pthread_exit and a cancellation;
 *     re-registering is a no-op; the registry refuses a ninth set.
 *  3. Many threads created concurrently from several threads: every
 *     trampoline record comes back (creations == starts == exits) and the
 *     start routine's argument is never mixed up.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/core.h"
#include "unwind/unwind.h"
#include "encode/pprof.h"
#include "symbolize/symbolize.h"
#include "interpose/threads.h"
#include "http/http.h"
#include "profiles/heap_profile.h"
#include "runtime/lifecycle.h"
#include "../lib/check.h"

/* ------------------------------------------------ stand-ins for the rest */

__thread int mprof_tls_guard __attribute__((tls_model("initial-exec")));

void *mprof_arena_alloc(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* ------------------------------------------------------------------ test */


static _Atomic int creates, starts, exits;
static __thread int tls_started; /* on_start ran in this thread */

static void on_create(void) { atomic_fetch_add(&creates, 1); }
static void on_start(void)
{
    tls_started = 1;
    atomic_fetch_add(&starts, 1);
}
static void on_exit_hook(void)
{
    /* Must run in the thread that started. */
    if (tls_started)
        atomic_fetch_add(&exits, 1);
}
static const mprof_thread_hooks hooks = {on_create, on_start, on_exit_hook};
static const mprof_thread_hooks empty_hooks = {NULL, NULL, NULL};

static void *ret_arg(void *arg) { return arg; }

static void *exits_early(void *arg)
{
    pthread_exit(arg);
    return NULL;
}

static void *waits_for_cancel(void *arg)
{
    (void)arg;
    for (;;)
        pause(); /* a cancellation point */
    return NULL;
}

static void *sees_start_routine(void *arg)
{
    (void)arg;
    return mprof_thread_start_routine();
}

static void *creator(void *arg)
{
    long base = (long)(intptr_t)arg;
    for (long i = 0; i < 300; i++) {
        pthread_t t;
        void *ret = NULL;
        if (pthread_create(&t, NULL, ret_arg, (void *)(intptr_t)(base + i)) != 0) {
            CHECK(!"pthread_create failed");
            continue;
        }
        pthread_join(t, &ret);
        CHECK((long)(intptr_t)ret == base + i);
    }
    return NULL;
}

int main(void)
{
    pthread_t t;
    void *ret = NULL;

    /* 1: nothing registered. */
    CHECK(pthread_create(&t, NULL, ret_arg, (void *)42) == 0);
    pthread_join(t, &ret);
    CHECK(ret == (void *)42);
    CHECK(atomic_load(&starts) == 0);

    /* 2: hooks, three ways to end a thread. */
    CHECK(mprof_thread_hooks_register(&hooks) == 0);
    CHECK(mprof_thread_hooks_register(&hooks) == 0); /* no-op */
    CHECK(pthread_create(&t, NULL, ret_arg, (void *)7) == 0);
    pthread_join(t, &ret);
    CHECK(ret == (void *)7);
    CHECK(pthread_create(&t, NULL, exits_early, (void *)8) == 0);
    pthread_join(t, &ret);
    CHECK(ret == (void *)8);
    CHECK(pthread_create(&t, NULL, waits_for_cancel, NULL) == 0);
    pthread_cancel(t);
    pthread_join(t, &ret);
    CHECK(ret == PTHREAD_CANCELED);
    CHECK(atomic_load(&creates) == 3 && atomic_load(&starts) == 3 && atomic_load(&exits) == 3);
    CHECK(pthread_create(&t, NULL, sees_start_routine, NULL) == 0);
    pthread_join(t, &ret);
    CHECK(ret == (void *)sees_start_routine);
    CHECK(mprof_thread_start_routine() == NULL); /* main was not created by us */

    /* The registry holds 8 sets (one used above); a NULL-only set is fine. */
    static mprof_thread_hooks extra[8];
    int ok = 0;
    for (int i = 0; i < 8; i++)
        if (mprof_thread_hooks_register(&extra[i]) == 0)
            ok++;
    CHECK(ok == 7);
    errno = 0;
    CHECK(mprof_thread_hooks_register(&empty_hooks) == -1 && errno == ENOSPC);

    /* 3: concurrent creation, records recycled. */
    atomic_store(&creates, 0);
    atomic_store(&starts, 0);
    atomic_store(&exits, 0);
    pthread_t c[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&c[i], NULL, creator, (void *)(intptr_t)(i * 100000));
    for (int i = 0; i < 4; i++)
        pthread_join(c[i], NULL);
    /* The 4 creators themselves count too. */
    CHECK(atomic_load(&creates) == 4 + 1200);
    CHECK(atomic_load(&starts) == 4 + 1200);
    CHECK(atomic_load(&exits) == 4 + 1200);

    return check_result("test_cpu_thread_hooks");
}
