/*
 * core: what every part of the profiler stands on.  The re-entrancy guard,
 * diagnostics on stderr, environment reads, atomic file writes and output
 * paths, and the arena that holds the profiler's own tables.  Nothing here
 * knows a profile, an allocator or a stack.  Included by every folder; it
 * includes nothing of mprof's but the public mprof.h.  Beside it,
 * core/os.h has the one copy of what the profiler asks the kernel and the
 * dynamic linker for (clocks, thread id, futex, random numbers, signal
 * handlers, the real functions behind our wrappers), and core/hash.h the
 * hash mixers.
 *
 * Two kinds of code live in the profiler:
 *
 *  - hot paths that run inside the host's malloc or in a signal handler
 *    (heap/, interpose/, unwind/, the CPU profiler's handler).  They never
 *    call malloc, never take a lock the interrupted code may hold, and keep
 *    their memory in arenas mapped with mmap (core/arena.c);
 *
 *  - cold paths that write profiles, symbolize, serve HTTP.  They run with
 *    the thread's profiler guard held (mprof_guard_enter), so every malloc
 *    they make, directly or inside libdw and zlib, goes straight to the real
 *    allocator: never sampled, never recursing into the profiler.
 */
#ifndef MPROF_CORE_H
#define MPROF_CORE_H

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mprof.h"

#define MPROF_HIDDEN __attribute__((visibility("hidden")))
#define MPROF_LIKELY(x) __builtin_expect(!!(x), 1)
#define MPROF_UNLIKELY(x) __builtin_expect(!!(x), 0)

/*
 * Code that must never appear in a recorded stack is placed in this section:
 * the stack capture drops leading frames whose address lies in it.  This
 * replaces a fixed "skip N frames" count, which is wrong as soon as
 * inlining, -O levels or static linking change the frame count; none of
 * them changes which section a function lives in.
 */
#define MPROF_ENTRY_TEXT __attribute__((section("mprof_entry_text"), noinline))

/*
 * The one function of mprof's that stays under a thread's whole life: the
 * trampoline under every start routine of a thread the program creates
 * (interpose/threads.c).  It says nothing about the program, so every
 * stack mprof writes (the pprof encoder, the text forms) leaves it out, as
 * Go's tracebacks and profiles leave out runtime.goexit; start_thread and
 * clone below it stay.  In a section of its own, so that the test is two
 * compares, without symbols.
 */
#define MPROF_THREAD_START_TEXT __attribute__((section("mprof_thread_start_text"), noinline))
extern const char __start_mprof_thread_start_text[] __attribute__((weak));
extern const char __stop_mprof_thread_start_text[] __attribute__((weak));

/* True when the call site pc (a frame of a stack) is in that trampoline. */
static inline int mprof_is_thread_start_frame(uintptr_t pc)
{
    return __start_mprof_thread_start_text != NULL &&
           pc >= (uintptr_t)__start_mprof_thread_start_text &&
           pc < (uintptr_t)__stop_mprof_thread_start_text;
}

/* ---------------------------------------------------------------- guard */

/*
 * Per-thread re-entrancy depth.  Non-zero means "this thread is inside the
 * profiler": its allocations are passed to the real allocator untouched.
 * initial-exec TLS: reading it never calls __tls_get_addr, which may malloc.
 */
extern __thread int mprof_tls_guard __attribute__((tls_model("initial-exec")));

static inline void mprof_guard_enter(void) { mprof_tls_guard++; }
static inline void mprof_guard_leave(void) { mprof_tls_guard--; }

/* ---------------------------------------------------------- diagnostics */

/* Prints "mprof: <message>\n" to stderr with a single write(2). */
MPROF_HIDDEN void mprof_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Expands "%p" to the pid and "%%" to "%".  Returns 0, or -1 if too long. */
MPROF_HIDDEN int mprof_expand_path(const char *pattern, char *out, size_t outlen);

/*
 * Writes a file atomically: creates "<path>.tmp.<pid>" beside it, calls
 * write_fn(fd, arg), fsyncs nothing (profiles are not precious) but renames
 * only after a complete write.  On any failure the temporary file is removed
 * and -1 returned with errno set.  A path that is not a regular file (a
 * device, a FIFO), or lies under /dev or /proc or links there
 * (/dev/stdout), is written in place (appended), never replaced; a
 * symbolic link's target is replaced, not the link.  SIGXFSZ and SIGPIPE raised by the
 * write become EFBIG and EPIPE: a profile never kills its host.
 */
MPROF_HIDDEN int mprof_write_file_atomic(const char *path, int (*write_fn)(int fd, void *arg),
                                         void *arg);

/* What to do about a write that failed with err, into out: "raise ulimit
 * -n", "set MPROF_HEAP to a writable path"; variable names the setting. */
MPROF_HIDDEN void mprof_write_advice(int err, const char *variable, char *out, size_t outlen);

/*
 * Writes one of the files named by an MPROF_* pattern at exit (heap
 * profile, heap dump, block/mutex/threadcreate profiles): path from
 * mprof_output_path, written atomically by write_fn, and one line on
 * stderr either way: where it went and how to read it, or what is wrong
 * and which setting to change.  what: "heap profile"; variable: the
 * setting the pattern came from, as the message names it ("MPROF_HEAP or
 * mprof run's --heap").  Runs with the guard held.
 */
enum mprof_output_kind { MPROF_OUTPUT_PPROF, MPROF_OUTPUT_DUMP };
MPROF_HIDDEN int mprof_write_output(const char *what, const char *variable, const char *pattern,
                                    enum mprof_output_kind kind,
                                    int (*write_fn)(int fd, void *arg), void *arg);

/* Writes all of buf to fd, retrying on EINTR and short writes. */
MPROF_HIDDEN int mprof_write_all(int fd, const void *buf, size_t len);

/* Reads a small file (a /proc entry) into buf, at most len - 1 bytes,
 * NUL-terminated, with open/read only (no stdio, no allocation: fit for
 * the constructor and for a signal's collector).  Its length, or -1. */
MPROF_HIDDEN ssize_t mprof_read_small_file(const char *path, char *buf, size_t len);

/* The process' environment variable `name`, read the way libc received it
 * (see util.c for why not getenv).  For the few variables that are not
 * settings (TMPDIR); every MPROF_* setting is read through core/options.h. */
MPROF_HIDDEN const char *mprof_getenv(const char *name);

/* ---------------------------------------------------------------- arena */

/*
 * Memory for the profiler's own tables.  Comes from mmap, never from the
 * host's malloc.  Zeroed.  Never returned; callers recycle through their own
 * free lists.  Returns NULL when the profiler's memory cap is reached or mmap
 * fails: callers then drop the sample (and count it) rather than fail the
 * host's allocation.
 */
MPROF_HIDDEN void *mprof_arena_alloc(size_t size);
MPROF_HIDDEN size_t mprof_arena_mapped(void);
/* The arena's chunks, up to max of them, as [lo[i], hi[i]); returns how
 * many.  For the sampled leak scan, which reads all writable memory but
 * the profiler's own: the profiler's tables name every sampled block. */
MPROF_HIDDEN size_t mprof_arena_ranges(uintptr_t *lo, uintptr_t *hi, size_t max);

/* Records the pid that read the environment, so a forked child can tell. */
MPROF_HIDDEN void mprof_output_remember_root(void);

/* Whether this process is the root of its tree: the first profiled
 * process, or a program it exec'd (same pid). */
MPROF_HIDDEN int mprof_output_is_root(void);

/*
 * Says that a file was written: under `mprof run`, a record in the run's
 * log, summarized by the root at its exit (core/run_tree.c); otherwise,
 * or once the root has summarized, the line "wrote WHAT to PATH (view
 * with: ...)" on stderr.  A "dump" in what is read with mprof dump.
 */
MPROF_HIDDEN void mprof_announce_written(const char *what, const char *path);
/* The line itself, always. */
MPROF_HIDDEN void mprof_announce_line(const char *what, const char *path);

/*
 * The processes of one run (core/run_tree.c).  select decides, once, at
 * start-up after the options, whether this process is profiled
 * (MPROF_ONLY, MPROF_ONLY_TOP); selected answers.  log_written appends a
 * record to the run log: 1, or 0 when there is no log (print the line).
 * at_exit is the root's summary.
 */
MPROF_HIDDEN void mprof_run_tree_select(void);
MPROF_HIDDEN int mprof_run_tree_selected(void);
MPROF_HIDDEN int mprof_run_tree_log_written(const char *what, const char *path);
MPROF_HIDDEN void mprof_run_tree_at_exit(void);

/*
 * Expands an output pattern (MPROF_HEAP, MPROF_CPU, ...) for this process:
 * "%p" becomes the pid; in a forked child a pattern without "%p" gets
 * ".<pid>" appended, so that a child never overwrites its parent's file.
 */
MPROF_HIDDEN int mprof_output_path(const char *pattern, char *out, size_t outlen);

/* The library's start-up (runtime/lifecycle.c), which the constructor runs:
 * every subsystem's init, in order, once.  Declared here, below every
 * folder, for the one reference that keeps it in static links (preload.c). */
MPROF_HIDDEN void mprof_lifecycle_start(void);

#endif /* MPROF_CORE_H */
