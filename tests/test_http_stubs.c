/*
 * Stand-ins for the parts of mprof the live-profiling code calls, so that
 * http_server.c, http_request.c and dumps.c can be unit-tested (under ASan
 * and TSan) without the malloc interposer, the sampler or the CPU profiler
 * in the same process.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

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

int mprof_heap_write_fd(int fd, const char *default_type)
{
    stub_heap_writes++;
    char body[128];
    size_t n = (size_t)snprintf(body, sizeof body, "stub heap profile (%s)\n", default_type);
    return mprof_write_all(fd, body, n);
}

/* The unit tests register their own profiles. */
void mprof_http_register_builtin_profiles(void) {}
