/*
 * Interfaces between mprof's parts.  Not installed; the public API is
 * include/mprof.h.
 *
 * Two kinds of code live in the profiler:
 *
 *  - hot paths that run inside the host's malloc or in a signal handler
 *    (sampler.c, preload.c, stack.c, the CPU profiler's handler).  They never
 *    call malloc, never take a lock the interrupted code may hold, and keep
 *    their memory in arenas mapped with mmap (arena.c);
 *
 *  - cold paths that write profiles, symbolize, serve HTTP.  They run with
 *    the thread's profiler guard held (mprof_guard_enter), so every malloc
 *    they make, directly or inside libdw and zlib, goes straight to the real
 *    allocator: never sampled, never recursing into the profiler.
 */
#ifndef MPROF_INTERNAL_H
#define MPROF_INTERNAL_H

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
 * replaces the fixed "skip N frames" count whose off-by-three error seed 000
 * fixed: inlining, -O levels and static linking change frame counts, but not
 * which section a function lives in.
 */
#define MPROF_ENTRY_TEXT __attribute__((section("mprof_entry_text"), noinline))

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
/* Whether p lies in the object holding mprof's own code: a symbol lookup
 * that found one of our own wrappers must not forward to it. */
MPROF_HIDDEN int mprof_symbol_is_ours(const void *p);

MPROF_HIDDEN void mprof_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Expands "%p" to the pid and "%%" to "%".  Returns 0, or -1 if too long. */
MPROF_HIDDEN int mprof_expand_path(const char *pattern, char *out, size_t outlen);

/*
 * Writes a file atomically: creates "<path>.tmp.<pid>" beside it, calls
 * write_fn(fd, arg), fsyncs nothing (profiles are not precious) but renames
 * only after a complete write.  On any failure the temporary file is removed
 * and -1 returned with errno set.
 */
MPROF_HIDDEN int mprof_write_file_atomic(const char *path, int (*write_fn)(int fd, void *arg),
                                         void *arg);

/*
 * Writes one of the files named by an MPROF_* pattern at exit (heap
 * profile, heap dump, block/mutex/threadcreate profiles): path from
 * mprof_output_path, written atomically by write_fn, and one line on
 * stderr either way: where it went and how to read it, or what is wrong
 * and which variable to change.  what: "heap profile"; variable: the
 * MPROF_* name the pattern came from.  Runs with the guard held.
 */
enum mprof_output_kind { MPROF_OUTPUT_PPROF, MPROF_OUTPUT_DUMP };
MPROF_HIDDEN int mprof_write_output(const char *what, const char *variable, const char *pattern,
                                    enum mprof_output_kind kind,
                                    int (*write_fn)(int fd, void *arg), void *arg);

/* Writes all of buf to fd, retrying on EINTR and short writes. */
MPROF_HIDDEN int mprof_write_all(int fd, const void *buf, size_t len);

/* The process' environment variable `name`, read the way libc received it
 * (see util.c for why not getenv).  Use for every MPROF_* read. */
MPROF_HIDDEN const char *mprof_getenv(const char *name);

/* Parses a decimal integer environment value: 0 if unset or empty, 1 when
 * *out was set.  On a bad or out-of-range value prints one warning naming
 * the variable and returns -1, leaving *out unchanged. */
MPROF_HIDDEN int mprof_env_long(const char *name, long min, long max, long *out);

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

/* -------------------------------------------------------- stack capture */

/*
 * Captures the calling thread's stack as call-site addresses (return
 * address minus one for every caller frame), innermost first, starting at
 * the first frame outside mprof and outside the allocator entry points
 * (libstdc++'s operator new and friends).  Uses the DWARF CFI unwinder of
 * libgcc, which finds frame descriptions through glibc's lock-free
 * _dl_find_object: no malloc, no loader lock, correct through code built
 * without frame pointers.  Returns the number of frames stored.
 */
MPROF_HIDDEN int mprof_stack_capture(uintptr_t *pcs, int max);

/* A frame's registers, enough to start a CFI walk there. */
struct mprof_unwind_regs {
    uintptr_t pc, sp, bp;
};

/*
 * Reads the current function's pc, sp and bp at one point, so that the
 * unwind rule found for that pc describes exactly these values.  A walk can
 * start from them later, from a function called deeper down, as long as
 * this frame is still live: the frames above it do not change meanwhile.
 */
#define MPROF_READ_REGS(r)                                                                         \
    __asm__ volatile("leaq 0(%%rip), %0\n\tmovq %%rsp, %1\n\tmovq %%rbp, %2"                     \
                     : "=r"((r).pc), "=r"((r).sp), "=r"((r).bp))


/*
 * mprof_stack_capture for the heap sampler, starting at a frame whose
 * registers an allocation entry point read with MPROF_READ_REGS (the frame
 * must be in the entry section and still live), so the sampler's own
 * frames are never walked; and remembering this thread's last walk: a
 * sample taken from the same place as the previous one is recognised by
 * re-reading the stack words that walk read, not walked again (stack.c).
 * Not for signal handlers.  Returns the frames (*n of them, at most
 * MPROF_MAX_STACK), in the thread's memo or, without one, in scratch; they
 * stay valid until the thread's next call.  *site: see struct
 * mprof_site_memo.
 */
struct mprof_site_memo;
MPROF_HIDDEN const uintptr_t *mprof_stack_capture_sampler(const struct mprof_unwind_regs *regs,
                                                          uintptr_t *scratch, int *n,
                                                          struct mprof_site_memo **site);

/*
 * What the sampler keeps about the allocation site of its last walk, in
 * the same per-thread memo (*site from mprof_stack_capture_sampler, NULL
 * when the profiler is out of memory).  `gen` changes with every new walk:
 * a slot filled under another generation belongs to another stack.
 */
#define MPROF_SITE_SLOTS 128
struct mprof_site_memo {
    uint32_t gen;
    int stack_hash_valid; /* cleared by every new walk */
    uint64_t stack_hash;
    struct {
        uint32_t gen;
        uint32_t tag;
        void *value;
    } slot[MPROF_SITE_SLOTS];
};

/* The same walk done entirely by libgcc: the reference the fast unwinder
 * is tested against, and its fallback. */
MPROF_HIDDEN int mprof_stack_capture_libgcc(uintptr_t *pcs, int max);

/*
 * Same, from inside a signal handler: returns the interrupted code's stack,
 * pcs[0] being the exact interrupted instruction address.  Async-signal-safe.
 */
MPROF_HIDDEN int mprof_stack_capture_signal(uintptr_t *pcs, int max);

/*
 * The same from the ucontext a SA_SIGINFO handler receives: walks from the
 * interrupted registers with the lock-free fast unwinder, falling back to
 * mprof_stack_capture_signal.  Async-signal-safe.  Prefer this one.
 */
MPROF_HIDDEN int mprof_stack_capture_ucontext(void *ucontext, uintptr_t *pcs, int max);

/* Called once at start-up (outside any malloc) to locate the frames to skip
 * and to make libgcc's unwinder ready. */
MPROF_HIDDEN void mprof_stack_init(void);

/* ----------------------------------------------------- profile builder */

/*
 * Builds one pprof profile (profile.proto) from raw samples, symbolizes it
 * against the current process, gzips it and writes it.  Cold path: call
 * with the guard held.  Sample stacks are call-site addresses as returned by
 * mprof_stack_capture (they are written unmodified as Location.address).
 */
typedef struct mprof_pb mprof_pb;

typedef struct mprof_label {
    const char *key;
    const char *str;      /* string value, or NULL for a numeric label */
    int64_t num;
    const char *num_unit; /* may be NULL */
} mprof_label;

/* sample_types: ntypes pairs {"alloc_space", "bytes", ...}. */
MPROF_HIDDEN mprof_pb *mprof_pb_new(const char *const *sample_types, int ntypes,
                                    const char *period_type, const char *period_unit,
                                    int64_t period);
MPROF_HIDDEN void mprof_pb_add_sample(mprof_pb *pb, const uintptr_t *pcs, int npcs,
                                      const int64_t *values, const mprof_label *labels,
                                      int nlabels);
MPROF_HIDDEN void mprof_pb_set_time(mprof_pb *pb, int64_t time_nanos, int64_t duration_nanos);
MPROF_HIDDEN void mprof_pb_add_comment(mprof_pb *pb, const char *comment);
MPROF_HIDDEN void mprof_pb_set_drop_frames(mprof_pb *pb, const char *regex);
/* Index into sample_types of the type a viewer should show by default. */
MPROF_HIDDEN void mprof_pb_set_default_sample_type(mprof_pb *pb, int type_index);
/* Symbolizes, encodes, gzips and writes to fd.  0 or -1. */
MPROF_HIDDEN int mprof_pb_write(mprof_pb *pb, int fd);
MPROF_HIDDEN void mprof_pb_free(mprof_pb *pb);

/* ------------------------------------------------------------ symbolizer */

typedef struct mprof_symbolizer mprof_symbolizer;

typedef struct mprof_mapping {
    uintptr_t start, limit; /* executable segment [start, limit) */
    uint64_t file_offset;
    const char *path;       /* "" for anonymous; "[vdso]" as the kernel names it */
    const char *build_id;   /* lower-case hex of the GNU build id, "" if none */
} mprof_mapping;

typedef struct mprof_frame {
    const char *function;    /* demangled name; NULL when unknown */
    const char *system_name; /* name as in the symbol table (mangled) */
    const char *file;        /* source file, NULL when no line info */
    int line;
    int start_line;          /* line of the function's declaration, 0 if unknown */
} mprof_frame;

/* Snapshot of the executable mappings of this process plus a DWARF reader.
 * Strings it returns live until mprof_sym_close. */
MPROF_HIDDEN mprof_symbolizer *mprof_sym_open(void);
MPROF_HIDDEN void mprof_sym_close(mprof_symbolizer *s);
MPROF_HIDDEN int mprof_sym_mapping_count(mprof_symbolizer *s);
MPROF_HIDDEN const mprof_mapping *mprof_sym_mapping(mprof_symbolizer *s, int i);
/* Whether mapping i's object could be read (its symbol table at least), so
 * that the profile may tell pprof not to re-symbolize it: pprof's
 * nearest-symbol guessing from a stripped binary would misname frames that
 * we deliberately left as addresses. */
MPROF_HIDDEN int mprof_sym_mapping_symbolized(mprof_symbolizer *s, int i);
/* Index of the mapping containing pc, or -1. */
MPROF_HIDDEN int mprof_sym_find_mapping(mprof_symbolizer *s, uintptr_t pc);
/*
 * Frames at pc, innermost (inlined) first, the last being the function that
 * physically contains pc.  A function is named only when pc lies inside its
 * symbol's [value, value + size); otherwise 0 frames are returned and the
 * location stays an address within its mapping.  Returns the frame count.
 */
MPROF_HIDDEN int mprof_sym_lookup(mprof_symbolizer *s, uintptr_t pc, mprof_frame *out, int max);

/* ------------------------------------------------------------ heap side */

/* Bytes until the next sample for a given mean rate (exponential draw;
 * 0 when rate <= 1).  Exposed for the distribution test. */
/* A block of the bootstrap pool (preload.c), as the interposer hands out
 * while it is still looking up the real allocator; free, realloc and
 * malloc_usable_size know it for one.  For tests: a program gets these only
 * in the race of two threads' first allocations. */
MPROF_HIDDEN void *mprof_boot_alloc(size_t size, size_t align);
MPROF_HIDDEN int64_t mprof_next_interval(long rate);
/* -ln(r / 2^53) for r in [1, 2^53], as mprof_next_interval draws it. */
MPROF_HIDDEN double mprof_neg_log_unit(uint64_t r);

/* Heap profile writer (heap_profile.c): default_type is "inuse_space" or
 * "alloc_space". */
MPROF_HIDDEN int mprof_heap_write_fd(int fd, const char *default_type);

/*
 * Building blocks of every heap profile (snapshots, HTTP deltas, dumps
 * converted back): Go's four sample types in Go's order, period = the
 * current rate, the allocator entry points as drop_frames, and one sample
 * per bucket labelled with its mean block size.  Cold path.
 */
enum { MPROF_HEAP_ALLOC_SPACE = 1, MPROF_HEAP_INUSE_SPACE = 3 };
MPROF_HIDDEN mprof_pb *mprof_heap_pb_new(int default_type_index);
/* values: alloc_objects, alloc_space, inuse_objects, inuse_space. */
MPROF_HIDDEN void mprof_heap_pb_add(mprof_pb *pb, const mprof_mem_record *r,
                                    const int64_t values[4]);

/* Called at exit (also in a forked child that exits); writes MPROF_HEAP. */
MPROF_HIDDEN void mprof_heap_write_at_exit(void);

/* Records the pid that read the environment, so a forked child can tell. */
MPROF_HIDDEN void mprof_output_remember_root(void);

/*
 * Expands an output pattern (MPROF_HEAP, MPROF_CPU, ...) for this process:
 * "%p" becomes the pid; in a forked child a pattern without "%p" gets
 * ".<pid>" appended, so that a child never overwrites its parent's file.
 */
MPROF_HIDDEN int mprof_output_path(const char *pattern, char *out, size_t outlen);

/* Snapshot of the buckets for writers.  Calls fn for every bucket after
 * publishing all pending cycles, with the profile lock NOT held (the
 * records were copied first).  */
typedef void (*mprof_bucket_fn)(const mprof_mem_record *rec, void *arg);
MPROF_HIDDEN int mprof_heap_snapshot(mprof_bucket_fn fn, void *arg, int include_inuse_zero);

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

/* ----------------------------------------------------------- start-up */

/* Defined in init.c; see there. */
extern const int mprof_init_anchor MPROF_HIDDEN;


/* Called from the library constructor, in order. */
MPROF_HIDDEN void mprof_sampler_init(void);
MPROF_HIDDEN void mprof_cpu_init_from_env(void);
MPROF_HIDDEN void mprof_http_init_from_env(void);

/* Called at exit (atexit), in order. */
MPROF_HIDDEN void mprof_cpu_at_exit(void);
MPROF_HIDDEN void mprof_http_at_exit(void);

/* Called in a forked child before it returns from fork. */
MPROF_HIDDEN void mprof_cpu_after_fork_child(void);
MPROF_HIDDEN void mprof_http_after_fork_child(void);

/* ------------------------------------------------------ live profiling */

/*
 * The /debug/pprof server (http_server.c) serves every profile registered
 * here under /debug/pprof/<name> and lists it on the index page, as Go's
 * net/http/pprof does for runtime/pprof.Profiles().  A subsystem registers
 * its profile once from its init function, before or after the server
 * starts; the built-in ones are heap, allocs, profile (CPU) and cmdline.
 */

/* Query parameters of a request, already validated. */
typedef struct mprof_http_params {
    long seconds; /* ?seconds=N (1..3600); 0 when absent */
    int debug;    /* ?debug=N: 0 (absent) pprof protobuf, >0 legacy text */
    int gc;       /* ?gc=N: accepted for Go compatibility; there is no GC */
} mprof_http_params;

/* flags */
#define MPROF_HTTP_ALWAYS_TEXT 1u /* served as text/plain whatever debug says */

typedef struct mprof_http_profile {
    const char *name;        /* [a-z0-9_.-]+, the path under /debug/pprof/ */
    const char *description; /* one sentence for the index page */
    unsigned flags;
    /* Index page "Count" column (Go: records in the profile); NULL: 0. */
    long (*count)(void);
    /*
     * The profile as it is now, into fd: gzipped pprof protobuf when
     * params->debug is 0, text otherwise.  0, or -1 with errno.  NULL when
     * the profile exists only over a window (CPU).
     */
    int (*write)(int fd, const mprof_http_params *params);
    /*
     * The profile over a window of params->seconds (?seconds=N, or
     * default_seconds when the request has none): begin opens the window
     * (returning -1 with errno EBUSY gives 409 Conflict); end, called when
     * the window has passed, writes the result into fd and releases state;
     * cancel releases state without a result (the client went away or the
     * server is stopping); fd is the same in all three and is valid until
     * end or cancel returns.  NULL begin: "seconds" gives 400, as in Go.
     */
    int (*begin)(int fd, const mprof_http_params *params, void **state);
    int (*end)(int fd, void *state, const mprof_http_params *params);
    void (*cancel)(int fd, void *state);
    long default_seconds; /* > 0: always windowed (CPU: 30, like Go) */
} mprof_http_profile;

/*
 * Adds a profile to /debug/pprof.  The struct must stay valid for the life
 * of the process (a static const).  Its callbacks run on the server's worker
 * thread, one callback at a time across all profiles, with the profiler
 * guard held; they may take as long as they need (they do not hold up
 * other clients) but must not block forever.  Returns 0, or -1 with errno
 * EEXIST (name taken), EINVAL (bad name) or ENOSPC (table full).
 */
MPROF_HIDDEN int mprof_http_register_profile(const mprof_http_profile *profile);

/*
 * Heap dumps without HTTP (dumps.c): MPROF_SIGNAL and MPROF_INTERVAL.
 * Called from the mprof_http_* hooks above, so the constructor, atexit and
 * fork handlers need no entries of their own.
 */
MPROF_HIDDEN void mprof_dumps_init_from_env(void);
MPROF_HIDDEN void mprof_dumps_at_exit(void);
MPROF_HIDDEN void mprof_dumps_after_fork_child(void);

#endif /* MPROF_INTERNAL_H */
