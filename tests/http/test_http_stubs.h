/* Shared by the live-profiling unit tests; see test_http_stubs.c. */
#ifndef TEST_HTTP_STUBS_H
#define TEST_HTTP_STUBS_H

#include <stdio.h>

/* Number of heap profiles "written" by the stub "heap" kind. */
extern _Atomic int stub_heap_writes;

/* Registers the stub "heap" kind (exit option MPROF_HEAP), once. */
void stub_register_heap_kind(void);

#endif
