/* Shared by the live-profiling unit tests; see test_http_stubs.c. */
#ifndef TEST_HTTP_STUBS_H
#define TEST_HTTP_STUBS_H

#include <stdio.h>

/* Number of heap profiles "written" by the stub mprof_heap_write_fd. */
extern _Atomic int stub_heap_writes;

#endif
