/*
 * mprof: sampling heap, CPU and live profiler for native programs.
 *
 * Public API.  Everything here is also reachable without relinking: load
 * libmprof.so with LD_PRELOAD and configure it with MPROF_* environment
 * variables (see README.md).  Link against libmprof (shared or static) to
 * drive the profiler from the program itself.
 *
 * Every function is thread-safe.  None of them may be called from a signal
 * handler.  They never abort the host program.  Functions returning int
 * return 0 on success; on failure the functions of the regular shape
 * (mprof_write_profile, mprof_write_profile_fd, mprof_stats_read) return
 * -errno and the older ones -1, both with errno set.
 */
#ifndef MPROF_H
#define MPROF_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this header; mprof_version() gives the library's. */
#define MPROF_VERSION_MAJOR 0
#define MPROF_VERSION_MINOR 1
#define MPROF_VERSION_PATCH 0
#define MPROF_VERSION "0.1.0"
/* One integer that orders versions: 0.1.0 is 100, 1.2.3 is 10203. */
#define MPROF_VERSION_NUMBER                                                                   \
    (MPROF_VERSION_MAJOR * 10000 + MPROF_VERSION_MINOR * 100 + MPROF_VERSION_PATCH)

/* Exported from libmprof even though the library is built with hidden
 * visibility by default. */
#define MPROF_API __attribute__((visibility("default")))

/*
 * The version of the library actually loaded, as MPROF_VERSION_NUMBER
 * (which says the version of the header compiled against); string: the
 * same as MPROF_VERSION, may be NULL.
 */
MPROF_API int mprof_version(const char **string);

/* Maximum number of frames kept for one recorded stack. */
#define MPROF_MAX_STACK 64

/* ------------------------------------------------------------------------ */
/* Heap sampling                                                            */
/* ------------------------------------------------------------------------ */

/*
 * Labels, as Go's pprof.Do: key=value pairs that the calling thread's
 * samples carry while they are set - heap, peak and lifetime, CPU, block
 * (the waiter's) and mutex (the releasing holder's) - so that a profile
 * splits a site by request type, tenant or phase (`go tool pprof
 * -tagfocus=request=upload`, `-tags`; `mprof top --tag`, `--tags`).  The
 * labels are part of a heap sample's bucket, so a block freed by another
 * thread still counts against the labels it was allocated under.  The CPU
 * signal handler reads them without a lock.  docs/labels.md has the rest.
 *
 * mprof_labels_push sets key to value for this thread (replacing the key's
 * value if it is set) until the matching mprof_labels_pop; 0, or -EINVAL
 * (key or value NULL, empty key, longer than 63 bytes), -E2BIG (more than
 * 16 nested pushes or 8 keys at once), -ENOSPC (more than 4096 distinct
 * label sets in the process) or -ENOMEM, the labels then unchanged (said
 * once on stderr).  mprof_labels_pop undoes the last successful push (no
 * effect without one).  mprof_with_labels pushes, calls fn(arg), pops; it
 * calls fn even when the push failed, and returns the push's result.
 */
MPROF_API int mprof_labels_push(const char *key, const char *value);
MPROF_API void mprof_labels_pop(void);
MPROF_API int mprof_with_labels(const char *key, const char *value, void (*fn)(void *arg),
                                void *arg);

/*
 * Sets the mean number of bytes allocated between two samples, as Go's
 * runtime.MemProfileRate.  1 records every allocation; 0 turns sampling off.
 * The calling thread uses the new rate at once; other threads pick it up at
 * their next sample.  The default is MPROF_RATE from the environment, or
 * 524288 (512 KiB).
 */
MPROF_API void mprof_set_rate(long rate);

/* Returns the current sampling rate in bytes (0 when sampling is off). */
MPROF_API long mprof_get_rate(void);

/*
 * The heap-profile cycle protocol of Go's runtime (memRecord in mprof.go).
 *
 * Each bucket keeps cumulative "active" counts, which is what a profile
 * shows, and a ring of three "future" cycles.  Allocations and explicit frees
 * are accounted to cycle C+2, frees found by a garbage collector's sweep to
 * C+1 (see mprof_record_free).  mprof_next_cycle() advances C; it is cheap
 * enough for a stop-the-world pause.  mprof_flush() then folds cycle C into
 * the active counts.  A program with explicit frees only never needs to call
 * either: writing a profile publishes every pending cycle first, so the
 * profile is an exact snapshot of the moment it was written.
 */
MPROF_API void mprof_next_cycle(void);
MPROF_API void mprof_flush(void);

/*
 * For runtimes that manage their own heap (a garbage-collected language
 * runtime, an arena allocator): report allocations and frees that do not go
 * through malloc.  mprof_record_alloc samples like malloc does (at the
 * current rate, charging the caller's stack); mprof_record_free matches a
 * block reported earlier.  A free found by the collector's sweep must say
 * so (MPROF_FREE_SWEPT): it is then accounted to cycle C+1, so that the
 * profile published at the next mark termination is consistent.
 */
enum mprof_free_kind { MPROF_FREE_EXPLICIT = 0, MPROF_FREE_SWEPT = 1 };
MPROF_API void mprof_record_alloc(const void *p, size_t size);
MPROF_API void mprof_record_free(const void *p, enum mprof_free_kind how);

/* One heap-profile record, as runtime.MemProfileRecord. */
typedef struct mprof_mem_record {
    int64_t alloc_bytes;   /* bytes allocated (sampled, not unsampled) */
    int64_t free_bytes;    /* bytes freed */
    int64_t alloc_objects; /* number of sampled allocations */
    int64_t free_objects;  /* number of sampled frees */
    /* Size class this bucket is keyed by: every block counted here is at
     * most this big and bigger than the class below (classes are multiples
     * of 16 up to 256 bytes, then eight per power of two). */
    size_t size;
    /* Unsampled estimates of the allocations and frees this bucket stands
     * for: each sample is weighted by 1 / (1 - exp(-size / rate)) with the
     * rate in force when it was taken (1 when every allocation is recorded),
     * so totals stay unbiased even when the rate changes while running. */
    double est_alloc_objects;
    double est_free_objects;
    double est_alloc_bytes; /* sum over samples of weight * block size */
    double est_free_bytes;
    int nstack;            /* frames used in stack[] */
    /* Call-site addresses, innermost first; stack[0] is in the function
     * that called the allocator. */
    uintptr_t stack[MPROF_MAX_STACK];
} mprof_mem_record;

/*
 * Copies the published heap profile into recs, as runtime.MemProfile.
 * Returns the number n of records; when n <= cap the records were copied,
 * otherwise recs is untouched and the caller should retry with a larger
 * array.  With include_inuse_zero == 0, buckets whose every allocation has
 * been freed are left out.
 */
MPROF_API int mprof_mem_profile(mprof_mem_record *recs, int cap, int include_inuse_zero);

/* ------------------------------------------------------------------------ */
/* Writing profiles                                                         */
/* ------------------------------------------------------------------------ */

/*
 * Writes the profile called name, as Go's pprof.Lookup(name).WriteTo: one
 * of the names served at /debug/pprof/ ("heap", "allocs", "block",
 * "mutex", "threadcreate", "goroutine", "heapdump", ...; the index page
 * and docs/live.md list them).  The path form writes gzipped pprof
 * protobuf (the heap dump format for "heapdump") atomically: a temporary
 * file in the same directory, then rename; "%p" in path becomes the
 * process id.  The fd form writes to an open descriptor (not closed):
 * debug 0 gives pprof protobuf, debug 1 and 2 Go's legacy text forms.
 * Returns 0, or -errno (errno set too): -EINVAL for an unknown name,
 * -ENOTSUP for "profile" (CPU), which exists only over a window: use
 * mprof_cpu_start / mprof_cpu_stop.
 */
MPROF_API int mprof_write_profile(const char *name, const char *path);
MPROF_API int mprof_write_profile_fd(const char *name, int fd, int debug);

/*
 * The functions below are the older, kind-specific names, kept as aliases:
 * mprof_write_heap_profile(path) is mprof_write_profile("heap", path),
 * mprof_write_heap_profile_fd(fd) is mprof_write_profile_fd("heap", fd, 0),
 * and so on, except that on failure they return -1 (errno set).
 */

/*
 * Writes the heap profile (gzipped pprof protobuf, self-symbolized) to path,
 * atomically: a temporary file in the same directory, then rename.  "%p" in
 * path becomes the process id.  The sample types are alloc_objects,
 * alloc_space, inuse_objects, inuse_space; default inuse_space.
 */
MPROF_API int mprof_write_heap_profile(const char *path);

/* Writes the heap profile to an open file descriptor (not closed). */
MPROF_API int mprof_write_heap_profile_fd(int fd);

/* Same data with alloc_space as the default sample type (Go's "allocs"). */
MPROF_API int mprof_write_allocs_profile_fd(int fd);

/*
 * Writes a heap dump to fd (not closed), after Go's debug.WriteHeapDump: the
 * process' memory statistics (glibc's mallinfo2, VmRSS and VmSize, the
 * profiler's own), every heap-profile bucket with its symbolized stack and
 * counts, and every live sampled block with its address, size and bucket.
 * The format is versioned and documented in docs/heap-dump.md; `mprof dump
 * FILE` prints a dump and converts it to a pprof profile.  The program is
 * not stopped: blocks allocated or freed while the dump is written may or
 * may not be in it.  Also served at /debug/pprof/heapdump and written at
 * exit with MPROF_HEAPDUMP=FILE.
 */
MPROF_API int mprof_write_heap_dump(int fd);

/* ------------------------------------------------------------------------ */
/* CPU profiling                                                            */
/* ------------------------------------------------------------------------ */

/*
 * Starts the CPU profiler: every thread of the process, present and future,
 * gets its own CPU-time timer firing hz times per CPU second (0 means
 * MPROF_CPU_HZ or 100).  The profile is written to path ("%p" = pid) when
 * mprof_cpu_stop() is called, or at exit.  Fails with EBUSY when a CPU
 * profile is already running, and with EEXIST when the program has its own
 * SIGPROF handler (mprof neither replaces nor chains it; it says so once on
 * stderr).
 */
MPROF_API int mprof_cpu_start(const char *path, int hz);

/* As mprof_cpu_start, writing to fd (not closed) at stop. */
MPROF_API int mprof_cpu_start_fd(int fd, int hz);

/* Stops the CPU profiler and writes the profile.  */
MPROF_API int mprof_cpu_stop(void);

/* ------------------------------------------------------------------------ */
/* Live profiling                                                           */
/* ------------------------------------------------------------------------ */

/*
 * Starts the /debug/pprof HTTP server on addr ("127.0.0.1:6060", ":6060"
 * means loopback, "0.0.0.0:6060" must be asked for explicitly).  The server
 * runs on its own thread; its allocations are not profiled.
 */
MPROF_API int mprof_http_start(const char *addr);

/* Stops the HTTP server and joins its thread. */
MPROF_API void mprof_http_stop(void);

/* ------------------------------------------------------------------------ */
/* Memory used by the profiler itself                                       */
/* ------------------------------------------------------------------------ */

typedef struct mprof_stats {
    /* Bytes of this struct the library filled in: fields that end beyond
     * it are not known to the library loaded (an older one) and are 0.
     * New fields are only ever added at the end. */
    size_t size;
    size_t profiler_bytes;   /* memory mapped by the profiler's own arenas */
    size_t buckets;          /* number of heap buckets */
    size_t live_samples;     /* sampled blocks currently tracked */
    uint64_t samples_taken;  /* sampled allocations since start */
    /* Samples not recorded because the profiler's memory cap was reached
     * (see README: bounded memory); their allocations are simply unprofiled. */
    uint64_t samples_dropped;
    /* How frees find sampled blocks: 1, by a header the block carries
     * (glibc's malloc underneath); 0, by the live-sample table (another
     * allocator underneath, or MPROF_HEADERS=0). */
    int block_headers;
    /* In a forked child: how many profiler updates other threads of the
     * parent were in the middle of at the fork (the child has none of
     * those threads, so it repaired what they left half done), and how
     * many sampled live blocks the repair forgot (their frees are not
     * counted, so their bytes stay in use in the child's profile).  Both
     * 0 in a process that was not forked. */
    uint64_t fork_lost_updates;
    uint64_t fork_lost_samples;
    /* The symbolizer's result cache, kept for the life of the process so
     * that a profile written again needs no DWARF work for the addresses
     * already seen: its bytes (bounded at 32 MiB) and the addresses it
     * holds.  libdw's own memory is not in it: libdw is open only while a
     * profile with new addresses is written. */
    uint64_t symbolizer_cache_bytes;
    uint64_t symbolizer_cache_pcs;
    /* The heap in use, estimated from the samples (weight * size of every
     * sampled allocation, less its free), as of the last few samples of
     * each thread; its high-water mark over the run; and the size of the
     * peak the "peak" profile holds (taken when the estimate passes its
     * last peak by 3%, so up to 3% below the high-water mark). */
    int64_t inuse_bytes_estimate;
    int64_t peak_inuse_bytes;
    int64_t peak_captured_bytes;
} mprof_stats;

/*
 * Fills out, a struct of size bytes (pass sizeof *out): the fields the
 * library knows, up to size; see the size field.  0, or -EINVAL when out
 * is NULL or size is smaller than the size field itself.
 */
MPROF_API int mprof_stats_read(mprof_stats *out, size_t size);

/* Alias of mprof_stats_read(out, sizeof *out) for this header's struct. */
MPROF_API void mprof_get_stats(mprof_stats *out);

/* ------------------------------------------------------------------------ */
/* Contention, thread creation and all-thread stacks                        */
/* ------------------------------------------------------------------------ */

/*
 * Block profile, as Go's runtime.SetBlockProfileRate: waits in
 * pthread_mutex_lock (and timedlock/clocklock), the rwlock lock functions and
 * pthread_cond_wait/timedwait/clockwait are timed; a wait of d ns is
 * recorded with probability 1 when d >= ns, else d/ns (and then weighted
 * ns/d, so totals stay unbiased), at the waiter's stack.  0 turns it off
 * (the default, unless MPROF_BLOCK_RATE or MPROF_BLOCK is set); 1 records
 * every wait.  Only waits that actually blocked count: an uncontended lock
 * is not an event.  Profiles read through the pprof types contentions/count
 * and delay/nanoseconds.  Needs the lock functions interposed: LD_PRELOAD,
 * or libmprof linked ahead of the C library.  See docs/contention.md.
 */
MPROF_API void mprof_set_block_rate(long ns);
MPROF_API long mprof_get_block_rate(void);

/*
 * Mutex profile, as Go's runtime.SetMutexProfileFraction: when a pthread
 * mutex or rwlock with waiters is released (unlock, or the release inside
 * pthread_cond_wait), the delay its waiters suffered during that critical
 * section is charged to the releasing stack; on average 1 in n such events
 * is recorded, weighted n.  0 turns it off (the default, unless
 * MPROF_MUTEX_FRACTION or MPROF_MUTEX is set).  A negative n only reads.
 * Returns the previous fraction.
 */
MPROF_API int mprof_set_mutex_fraction(int n);

/*
 * Write the block, mutex and thread-creation profiles to fd (not closed):
 * gzipped pprof protobuf when debug is 0, Go's legacy text form otherwise.
 * The thread-creation profile (Go's "threadcreate") counts every
 * pthread_create call by the creator's stack; it is always on.
 */
MPROF_API int mprof_write_block_profile_fd(int fd, int debug);
MPROF_API int mprof_write_mutex_profile_fd(int fd, int debug);
MPROF_API int mprof_write_threadcreate_profile_fd(int fd, int debug);

/*
 * The current stack of every thread of the process (Go's "goroutine"
 * profile), written to fd: debug 0 gives a pprof count profile (one sample
 * per distinct stack and thread name, count = threads), debug 1 the same as
 * legacy text, debug 2 every thread in full:
 *
 *     thread 4242 "worker" [sleeping]:
 *     wait_for_work(...)
 *             /src/pool.c:88
 *
 * Each other thread is asked with a real-time signal (SIGRTMIN+5 or the
 * next unused one) and unwinds its own stack in the handler; a thread
 * blocked in a call that a signal handler would make fail with EINTR
 * (nanosleep, poll, epoll_wait, ...) or that blocks the signal is not
 * signalled, its stack is read from outside instead (docs/threads.md).
 * The call waits at most half a second for answers and lists threads it
 * could not read by name and state, without a stack.
 */
MPROF_API int mprof_write_goroutine_profile_fd(int fd, int debug);

/*
 * As Go's runtime.Stack: formats the calling thread's stack into buf (and,
 * when all is non-zero, every other thread's after it, as above).  Writes
 * at most len bytes, always NUL-terminated when len > 0 (text cut short
 * when it does not fit); returns the length of the text, NUL excluded.
 */
MPROF_API int mprof_stack(char *buf, size_t len, int all);

#ifdef __cplusplus
}
#endif

#endif /* MPROF_H */
