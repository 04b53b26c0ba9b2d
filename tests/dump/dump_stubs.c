/*
 * Stand-ins for the parts of mprof that src/heap_dump.c calls (sampler,
 * symbolizer, HTTP registry, CLI helpers), so that the dump writer and the
 * reader of `mprof dump` can be tested together, with chosen contents, under
 * ASan and TSan, without the malloc interposer in the process.
 *
 * The "process" they describe: two executable mappings (the test program
 * itself and a fake library), and a symbolizer that names pcs by a rule the
 * test can predict (see dump_stub_frames).
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "dump_stubs.h"
#include "core/core.h"
#include "unwind/unwind.h"
#include "encode/pprof.h"
#include "symbolize/symbolize.h"
#include "interpose/threads.h"
#include "profiles/heap_profile.h"
#include "runtime/lifecycle.h"
#include "heap/sampler.h"

__thread int mprof_tls_guard __attribute__((tls_model("initial-exec")));

dump_stub_state dump_stub;

/* ------------------------------------------------------------ sampler */

long mprof_get_rate(void) { return dump_stub.rate; }

void mprof_get_stats(mprof_stats *out)
{
    memset(out, 0, sizeof *out);
    out->profiler_bytes = 123456;
    out->buckets = (size_t)dump_stub.nrecs;
    out->live_samples = (size_t)dump_stub.nlive;
    out->samples_taken = 777;
}

int mprof_live_foreach(mprof_live_fn fn, void *arg)
{
    for (int i = 0; i < dump_stub.nlive; i++) {
        const dump_stub_live *l = &dump_stub.live[i];
        mprof_live_block blk = {.addr = l->addr, .bucket = NULL, .size = l->size,
                                .weight = l->weight};
        fn(&blk, l->stack, l->nstack, l->size_class, arg);
    }
    return 0;
}

int mprof_heap_snapshot(mprof_bucket_fn fn, void *arg, int include_inuse_zero)
{
    (void)include_inuse_zero;
    for (int i = 0; i < dump_stub.nrecs; i++)
        fn(&dump_stub.recs[i], 0, arg);
    return 0;
}

/* ------------------------------------------------------------ symbolizer */

static int symbolizer_token;
static char exe_path[PATH_MAX];
static mprof_mapping maps[2];

mprof_symbolizer *mprof_sym_open(void)
{
    ssize_t n = readlink("/proc/self/exe", exe_path, sizeof exe_path - 1);
    exe_path[n > 0 ? n : 0] = '\0';
    /* The library first, so that the writer has to put the executable
     * first itself. */
    maps[0] = (mprof_mapping){.start = DUMP_STUB_LIB_START, .limit = DUMP_STUB_LIB_LIMIT,
                              .file_offset = 0x1000, .path = "/usr/lib/libfake.so.1",
                              .build_id = ""};
    maps[1] = (mprof_mapping){.start = DUMP_STUB_EXE_START, .limit = DUMP_STUB_EXE_LIMIT,
                              .file_offset = 0, .path = exe_path,
                              .build_id = "0123456789abcdef"};
    return (mprof_symbolizer *)&symbolizer_token;
}

void mprof_sym_close(mprof_symbolizer *s) { (void)s; }
int mprof_sym_mapping_count(mprof_symbolizer *s) { return s ? 2 : 0; }

const mprof_mapping *mprof_sym_mapping(mprof_symbolizer *s, int i)
{
    return s && i >= 0 && i < 2 ? &maps[i] : NULL;
}

int mprof_sym_find_mapping(mprof_symbolizer *s, uintptr_t pc)
{
    for (int i = 0; s && i < 2; i++)
        if (pc >= maps[i].start && pc < maps[i].limit)
            return i;
    return -1;
}

int mprof_sym_mapping_symbolized(mprof_symbolizer *s, int i) { return s && i == 1; }

static const char *const names[] = {"alpha", "beta", "gamma", "delta"};

int dump_stub_frames(uintptr_t pc, mprof_frame *out, int max)
{
    if (pc < DUMP_STUB_EXE_START || pc >= DUMP_STUB_EXE_LIMIT)
        return 0;
    /* pc's low bits decide: (pc >> 4) % 4 names the function, pcs with
     * bit 8 set have a callee inlined at them. */
    int n = 0;
    if ((pc & 0x100) && n < max) {
        out[n++] = (mprof_frame){.function = "inlined_helper(int)",
                                 .system_name = "_Z14inlined_helperi",
                                 .file = "/src/helper.h", .line = (int)(pc & 0xff) + 1,
                                 .start_line = 3};
    }
    if (n < max)
        out[n++] = (mprof_frame){.function = names[(pc >> 4) % 4],
                                 .system_name = names[(pc >> 4) % 4],
                                 .file = "/src/main.c", .line = (int)(pc & 0xff) + 10,
                                 .start_line = 7};
    return n;
}

int mprof_sym_lookup(mprof_symbolizer *s, uintptr_t pc, mprof_frame *out, int max)
{
    return s ? dump_stub_frames(pc, out, max) : 0;
}

/* ------------------------------------------------------------ the rest */

/* The CLI's helpers (help.c), as used by cmd_dump.c. */
void cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "mprof: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

int cli_usage_error(const char *command, const char *fmt, ...)
{
    (void)command;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    return CLI_EXIT_USAGE;
}

/* The interposer's answer: the dumps described here come from glibc's
 * malloc, so their malloc statistics are written. */
_Atomic int mprof_allocator_glibc = 1;

/* Help texts and "did you mean" are cli_help.sh's to test, with help.c. */
void cli_print_flags(FILE *out, const char *command)
{
    fprintf(out, "  (the options of %s)\n", command);
}

int cli_unknown_option(const char *command, const char *arg)
{
    fprintf(stderr, "mprof %s: unknown option '%s'\n", command, arg);
    return CLI_EXIT_USAGE;
}

int cli_option_value(int argc, char **argv, int *i, const char *name, const char **value)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0)
        return 0;
    if (argv[*i][n] == '=') {
        *value = argv[*i] + n + 1;
        return 1;
    }
    if (argv[*i][n] != '\0')
        return 0;
    if (*i + 1 >= argc)
        return -1;
    *value = argv[++*i];
    return 1;
}
