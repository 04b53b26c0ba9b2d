/*
 * The allocation trace's queue and writer (src/trace.c), on their own, with
 * stand-ins for the stack capture, the symbolizer and the arena, so that
 * the lock-free queue runs under TSan and ASan (make check-sanitizers).
 *
 * The test re-executes itself with MPROF_TRACE=alloc (trace.c reads the
 * environment in its init hook, which the child runs, and writes at exit
 * in its exit hook, which the child registers, as the library's life-cycle
 * table would).  The child has four threads report 40000
 * allocations and frees each through the sampler's entry points into a
 * queue of 256 records, pausing now and then so that both the full and the
 * draining queue are exercised, and exits.  The parent reads the trace:
 *
 *  - every record is whole and well-formed, its frames symbolized;
 *  - no record is printed twice, and printed + dropped = reported;
 *  - within one thread, records appear in the order they were made.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "unwind/unwind.h"
#include "encode/pprof.h"
#include "symbolize/symbolize.h"
#include "interpose/threads.h"
#include "http/http.h"
#include "profiles/heap_profile.h"
#include "runtime/lifecycle.h"
#include "profiles/trace.h"
#include "../lib/check.h"

#define NTHREADS 4
#define PER_THREAD 20000 /* allocations; as many frees */

/* ------------------------------------------------------------ stand-ins */

__thread int mprof_tls_guard __attribute__((tls_model("initial-exec")));
struct mprof_hot mprof_hot; /* the sampler's, where tap_on lives */

/* The sampler's: trace.c installs itself as the tap; calls go direct here. */
void mprof_heap_tap_install(const mprof_heap_tap *tap) { (void)tap; }

void *mprof_arena_alloc(size_t size) { return calloc(1, size); }

int mprof_thread_create_unhooked(pthread_t *thread, const pthread_attr_t *attr,
                                 void *(*start)(void *), void *arg)
{
    return pthread_create(thread, attr, start, arg);
}

/* The free path's stack: two frames the stub symbolizer knows. */
int mprof_stack_capture(uintptr_t *pcs, int max)
{
    if (max < 2)
        return 0;
    pcs[0] = 0x5000;
    pcs[1] = 0x6010;
    return 2;
}

static int sym_token;
static const mprof_mapping stub_map = {.start = 0x1000, .limit = 0x10000, .file_offset = 0,
                                       .path = "/stub/program", .build_id = ""};

mprof_symbolizer *mprof_sym_open(void) { return (mprof_symbolizer *)&sym_token; }
void mprof_sym_close(mprof_symbolizer *s) { (void)s; }
int mprof_sym_find_mapping(mprof_symbolizer *s, uintptr_t pc)
{
    return s && pc >= stub_map.start && pc < stub_map.limit ? 0 : -1;
}
const mprof_mapping *mprof_sym_mapping(mprof_symbolizer *s, int i)
{
    return s && i == 0 ? &stub_map : NULL;
}

/* pc 0xN000..: function fn_N at /stub/src.c line N; pcs ending in 0x10
 * have an inlined callee. */
int mprof_sym_lookup(mprof_symbolizer *s, uintptr_t pc, mprof_frame *out, int max)
{
    static const char *const names[] = {"fn_0", "fn_1", "fn_2", "fn_3", "fn_4",
                                        "fn_5", "fn_6", "fn_7", "fn_8", "fn_9"};
    if (s == NULL || pc < stub_map.start || pc >= 0xa000 || max < 2)
        return 0;
    int n = 0;
    if ((pc & 0xff) == 0x10)
        out[n++] = (mprof_frame){.function = "inlined_one", .system_name = "inlined_one",
                                 .file = "/stub/inl.h", .line = 7};
    out[n++] = (mprof_frame){.function = names[pc >> 12], .system_name = names[pc >> 12],
                             .file = "/stub/src.c", .line = (int)(pc >> 12)};
    return n;
}

/* ------------------------------------------------------------ child */

static void *producer(void *arg)
{
    uintptr_t t = (uintptr_t)arg;
    uintptr_t stack[3] = {0x1000 + 0x1000 * t, 0x9010, 0xdead0};
    for (uintptr_t i = 0; i < PER_THREAD; i++) {
        /* Address: thread and sequence number, so the parent can check
         * order and uniqueness. */
        uintptr_t addr = (t << 40) | (i << 4);
        mprof_trace_alloc(addr, (size_t)i + 1, stack, 3);
        mprof_trace_free(addr, (size_t)i + 1, (int)(i & 1));
        if (i % 250 == 0) {
            struct timespec ts = {0, 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

static int child(void)
{
    /* The library's constructor and atexit handler, for this row alone. */
    mprof_trace_init();
    atexit(mprof_trace_at_exit);
    if (!mprof_trace_enabled()) {
        fprintf(stderr, "tracing is not on in the child\n");
        return 1;
    }
    pthread_t th[NTHREADS];
    for (uintptr_t t = 0; t < NTHREADS; t++)
        pthread_create(&th[t], NULL, producer, (void *)t);
    for (int t = 0; t < NTHREADS; t++)
        pthread_join(th[t], NULL);
    return 0; /* the atexit handler writes what is queued */
}

/* ------------------------------------------------------------ parent */


/* Per thread: last sequence number seen for allocs and frees. */
static long last_seq[NTHREADS][2];
static unsigned char *seen; /* [thread][seq][kind] */

static void parse_trace(FILE *f, long *records, long *dropped)
{
    char line[512];
    enum { HEAD, THREAD, FRAMES } state = HEAD;
    int kind = 0, frames = 0, inlined = 0, swept = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        unsigned long long addr, size, n;
        if (state == HEAD) {
            if (sscanf(line, "mprof: trace: %llu records dropped", &n) == 1) {
                *dropped += (long)n;
                continue;
            }
            if (line[0] == '\n')
                continue;
            char what[16];
            if (sscanf(line, "%15[a-z](0x%llx, %llu)", what, &addr, &size) != 3) {
                CHECK(0, "unexpected line: %s", line);
                continue;
            }
            kind = strcmp(what, "tracefree") == 0;
            CHECK(kind || strcmp(what, "tracealloc") == 0, "record kind %s", what);
            unsigned long t = (unsigned long)(addr >> 40);
            long seq = (long)((addr >> 4) & 0xfffffffff);
            CHECK(t < NTHREADS && seq < PER_THREAD && (unsigned long long)seq + 1 == size,
                  "record %s(0x%llx, %llu) was never made", what, addr, size);
            if (t < NTHREADS && seq < PER_THREAD) {
                unsigned char *s = &seen[((size_t)t * PER_THREAD + (size_t)seq) * 2 + (size_t)kind];
                CHECK(*s == 0, "record %s(0x%llx) printed twice", what, addr);
                *s = 1;
                CHECK(seq > last_seq[t][kind], "thread %lu's records out of order", t);
                last_seq[t][kind] = seq;
            }
            swept = kind && (seq & 1);
            (*records)++;
            state = THREAD;
        } else if (state == THREAD) {
            CHECK(strncmp(line, "thread ", 7) == 0, "thread line: %s", line);
            /* Odd frees were reported as found by a collector's sweep. */
            CHECK((strstr(line, "(swept by the collector)") != NULL) == swept,
                  "sweep marker wrong: %s", line);
            frames = inlined = 0;
            state = FRAMES;
        } else if (line[0] == '\n') {
            /* Function lines: alloc fn_N, inlined_one + fn_9, 0xdead0;
             * free fn_5, inlined_one + fn_6. */
            CHECK(frames == (kind ? 3 : 4) && inlined == 1, "a record with %d frames, %d inlined",
                  frames, inlined);
            state = HEAD;
        } else if (line[0] != '\t') {
            frames++;
            inlined += strcmp(line, "inlined_one (inlined)\n") == 0;
        } else {
            CHECK(strncmp(line, "\t/stub/", 7) == 0 || strcmp(line, "\t?\n") == 0,
                  "position line: %s", line);
        }
    }
    CHECK(state == HEAD, "the trace ends inside a record");
}

int main(int argc, char **argv)
{
    (void)argc;
    if (getenv("TRACE_UNIT_CHILD") != NULL)
        return child();

    char dir[] = "/tmp/mprof-trace-unit.XXXXXX";
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    char path[256];
    snprintf(path, sizeof path, "%s/trace", dir);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("TRACE_UNIT_CHILD", "1", 1);
        setenv("MPROF_TRACE", "alloc", 1);
        setenv("MPROF_TRACE_FILE", path, 1);
        setenv("MPROF_TRACE_BUFFER", "256", 1);
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child exit status %d", status);

    seen = calloc((size_t)NTHREADS * PER_THREAD * 2, 1);
    for (int t = 0; t < NTHREADS; t++)
        last_seq[t][0] = last_seq[t][1] = -1;
    long records = 0, dropped = 0;
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "no trace file %s", path);
    if (f != NULL) {
        parse_trace(f, &records, &dropped);
        fclose(f);
    }
    long total = 2L * NTHREADS * PER_THREAD;
    printf("%ld records printed, %ld dropped, %ld made\n", records, dropped, total);
    CHECK(records + dropped == total, "printed + dropped = %ld, made %ld", records + dropped,
          total);
    CHECK(records > 256, "the writer drained only %ld records", records);
    free(seen);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    (void)!system(cmd);
    return check_result("trace_unit");
}
