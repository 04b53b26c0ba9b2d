/*
 * interpose: the functions mprof puts in front of the C library's: the
 * malloc family (preload.c) and pthread_create (threads.c).  Each wrapper
 * hands its event to heap/ or to the thread hooks and forwards to the real
 * function.  Depends on core, unwind and heap.
 */
#ifndef MPROF_INTERPOSE_H
#define MPROF_INTERPOSE_H

#include "core/core.h"

/* A block of the bootstrap pool (preload.c), as the interposer hands out
 * while it is still looking up the real allocator; free, realloc and
 * malloc_usable_size know it for one.  For tests: a program gets these only
 * in the race of two threads' first allocations. */
MPROF_HIDDEN void *mprof_boot_alloc(size_t size, size_t align);

#endif /* MPROF_INTERPOSE_H */
