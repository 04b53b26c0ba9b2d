/*
 * Stand-ins for the parts of mprof the live-profiling code calls, so that
 * http_server.c, http_request.c, snapshots.c and the registry can be unit-tested (under ASan
 * and TSan) without the malloc interposer, the sampler or the CPU profiler
 * in the same process.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "http/http_internal.h"
#include "runtime/lifecycle.h"
#include "test_http_stubs.h"

__thread int mprof_tls_guard __attribute__((tls_model("initial-exec")));

_Atomic int stub_heap_writes;

int mprof_thread_create_unhooked(pthread_t *thread, const pthread_attr_t *attr,
                                 void *(*start)(void *), void *arg)
{
    return pthread_create(thread, attr, start, arg);
}

static int stub_heap_write(int fd, const mprof_profile_params *params,
                           const mprof_profile_base *base)
{
    (void)params;
    (void)base;
    stub_heap_writes++;
    static const char body[] = "stub heap profile (inuse_space)\n";
    return mprof_write_all(fd, body, sizeof body - 1);
}

static const mprof_profile stub_heap = {
    .name = "heap",
    .description = "stub",
    .what = "heap profile",
    .exit_option = MPROF_OPT_HEAP,
    .write = stub_heap_write,
};

void stub_register_heap_kind(void) { (void)mprof_profile_register(&stub_heap); }

void mprof_live_block_signals(sigset_t *old)
{
    sigset_t blocked;
    sigfillset(&blocked);
    pthread_sigmask(SIG_SETMASK, &blocked, old);
}
