/*
 * interpose/threads: pthread_create interposed, with hooks for the profilers
 * that must act in every thread (CPU timers, thread-creation records).
 */
#ifndef MPROF_INTERPOSE_THREADS_H
#define MPROF_INTERPOSE_THREADS_H

#include <pthread.h>
#include <signal.h>

#include "core/core.h"

/* -------------------------------------------------------------- threads */

/*
 * threads.c interposes pthread_create so that profilers can act in every
 * thread the program creates: the CPU profiler gives each new thread its
 * own CPU-time timer; a thread-creation profile records who created it.
 *
 * Hooks run outside the profiler guard unless they take it.  on_create runs
 * in the creating thread just before the real pthread_create (the wrapper is
 * in MPROF_ENTRY_TEXT, so mprof_stack_capture there starts at the caller of
 * pthread_create).  on_start runs in the new thread before its start
 * routine, on_exit in the same thread when the routine returns, calls
 * pthread_exit or is cancelled.  Neither of those may call malloc: the
 * thread's first allocation belongs to the program.  Threads that exist
 * before the first hook is registered, or that are created without
 * pthread_create (raw clone), are never seen by the hooks.
 */
typedef struct mprof_thread_hooks {
    void (*on_create)(void); /* each member may be NULL */
    void (*on_start)(void);
    void (*on_exit)(void);
} mprof_thread_hooks;

/* Registers a hook set (the struct must outlive the process: keep it
 * static).  Registering the same pointer twice is a no-op.  At most 8 sets;
 * -1 with ENOSPC beyond.  Safe to call at any time, from any thread. */
MPROF_HIDDEN int mprof_thread_hooks_register(const mprof_thread_hooks *hooks);

/* The start routine of the calling thread if the wrapper created it, else
 * NULL.  For hooks that need to charge something to the thread's code. */
MPROF_HIDDEN void *mprof_thread_start_routine(void);

/* pthread_create of the C library, bypassing the hooks: for the profiler's
 * own threads (the CPU profile writer, the HTTP server), which no profile
 * should count. */
MPROF_HIDDEN int mprof_thread_create_unhooked(pthread_t *thread, const pthread_attr_t *attr,
                                              void *(*start)(void *), void *arg);

/*
 * Blocks, in the calling thread, the signals a thread of ours must never
 * take, and returns the old mask; a thread created meanwhile inherits the
 * new one.  The host's handlers must keep running on the host's threads (a
 * program that sigwait()s in one thread counts on every other thread
 * blocking), and MPROF_SIGNAL must wake no one but its handler.  Fault
 * signals and SIGPROF stay open.
 */
MPROF_HIDDEN void mprof_live_block_signals(sigset_t *old);

#endif /* MPROF_INTERPOSE_THREADS_H */
