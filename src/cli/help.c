/*
 * Usage texts and the table of environment variables.
 *
 * The help is the first documentation most users read, so it lists every
 * knob, including the MPROF_* variables that work without `mprof run`
 * (LD_PRELOAD=libmprof.so MPROF_HEAP=... ./prog), and ends with how to look
 * at the result.
 */
#include "cli/cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "mprof.h"

const cli_env_var CLI_ENV_VARS[] = {
    {"MPROF_RATE", "N", "bytes between heap samples (default 524288; 1 = all; 0 = off)"},
    {"MPROF_HEAP", "FILE", "heap profile written at exit (%p = pid)"},
    {"MPROF_CPU", "FILE", "CPU profile of the whole run, written at exit (%p = pid)"},
    {"MPROF_CPU_HZ", "N", "CPU samples per second of CPU time, 1..10000 (default 100)"},
    {"MPROF_HTTP", "ADDR:PORT", "serve /debug/pprof/ (\":6060\" = loopback only)"},
    {"MPROF_SIGNAL", "SIG",
     "signal (name or number) that writes a numbered heap profile"},
    {"MPROF_INTERVAL", "SECONDS", "seconds between periodic numbered heap profiles"},
    {"MPROF_BLOCK", "FILE", "block (lock wait) profile written at exit (%p = pid)"},
    {"MPROF_BLOCK_RATE", "NS",
     "record lock waits >= NS ns, shorter ones with odds wait/NS (default 0 = off)"},
    {"MPROF_MUTEX", "FILE", "mutex (lock holder) profile written at exit (%p = pid)"},
    {"MPROF_MUTEX_FRACTION", "N", "record 1 in N contended unlocks (default 0 = off)"},
    {"MPROF_THREADCREATE", "FILE", "thread-creation profile written at exit (%p = pid)"},
    {"MPROF_HEAPDUMP", "FILE", "heap dump (buckets and live sampled blocks) written at exit"},
    {"MPROF_TRACE", "alloc", "print every sampled allocation and free with its stack"},
    {"MPROF_TRACE_FILE", "FILE", "where MPROF_TRACE writes (%p = pid; default stderr)"},
    {"MPROF_TRACE_BUFFER", "N", "trace queue size in records, 64..131072 (default 4096)"},
    {"MPROF_CPU_ITIMER", "1", "use the process-wide setitimer instead of per-thread timers"},
    {"MPROF_HEADERS", "0",
     "find sampled blocks by table, not by a 32-byte header (default: header on glibc)"},
};
const size_t CLI_ENV_VAR_COUNT = sizeof(CLI_ENV_VARS) / sizeof(CLI_ENV_VARS[0]);

static void print_env_table(FILE *out)
{
    for (size_t i = 0; i < CLI_ENV_VAR_COUNT; i++) {
        char left[40];
        snprintf(left, sizeof(left), "%s=%s", CLI_ENV_VARS[i].name, CLI_ENV_VARS[i].value);
        fprintf(out, "  %-24s %s\n", left, CLI_ENV_VARS[i].meaning);
    }
}

static const char RUN_OPTIONS[] =
    "  --heap FILE           write a heap profile to FILE at exit (%p = pid)\n"
    "  --cpu FILE            profile CPU time for the whole run, written to FILE\n"
    "  --rate N              bytes between heap samples (default 524288; 1 = all)\n"
    "  --hz N                CPU samples per second (default 100)\n"
    "  --http ADDR:PORT      serve /debug/pprof/ while the program runs\n"
    "  --block FILE          write the block (lock wait) profile to FILE at exit\n"
    "  --block-rate NS       block profile rate in ns (default 1 with --block; 0 = off)\n"
    "  --mutex FILE          write the mutex (lock holder) profile to FILE at exit\n"
    "  --mutex-fraction N    record 1 in N contended unlocks (default 1 with --mutex)\n"
    "  --threadcreate FILE   write the thread-creation profile to FILE at exit\n"
    "  --heapdump FILE       write a heap dump (read it with mprof dump) at exit\n"
    "  --trace FILE|-        trace every sampled allocation and free with its stack\n"
    "  Without a profile option the heap profile goes to ./" CLI_DEFAULT_HEAP_PROFILE ".\n";

static const char TOP_OPTIONS[] =
    "  --sample-index NAME|N which value to show: inuse_space, alloc_space, cpu, ...\n"
    "                        or its index (default: the profile's default type)\n"
    "  -n N                  show the first N functions (default 10; 0 = all)\n"
    "  --cum                 sort by cumulative instead of flat value\n";

void cli_print_usage(FILE *out)
{
    fprintf(out,
            "mprof " MPROF_VERSION " - sampling heap and CPU profiler for native programs\n"
            "\n"
            "Usage:\n"
            "  mprof run [OPTIONS] [--] PROGRAM [ARGS...]  profile PROGRAM, libmprof.so preloaded\n"
            "  mprof top [OPTIONS] PROFILE                 top functions of a pprof profile\n"
            "  mprof dump [--pprof OUT] DUMP               print a heap dump or convert it to pprof\n"
            "  mprof help [run|top|dump]                   show this help or a command's\n"
            "  mprof --version                             print the version\n"
            "\n"
            "Options of run:\n%s"
            "\n"
            "Options of top:\n%s"
            "\n"
            "Environment, read by libmprof.so (mprof run sets them from its options;\n"
            "LD_PRELOAD=/path/to/libmprof.so with these works without mprof run):\n",
            RUN_OPTIONS, TOP_OPTIONS);
    print_env_table(out);
    fprintf(out, "\n"
                 "View a profile:\n"
                 "  mprof top FILE\n"
                 "  go tool pprof -top FILE      (or -http=:8080 FILE for a browser view)\n");
}

void cli_print_run_usage(FILE *out)
{
    fprintf(out,
            "Usage: mprof run [OPTIONS] [--] PROGRAM [ARGS...]\n"
            "\n"
            "Runs PROGRAM with libmprof.so preloaded; its exit status is PROGRAM's.\n"
            "libmprof.so is looked for next to the mprof executable, then in ../lib and\n"
            "../lib/mprof relative to it; MPROF_LIB=/path/to/libmprof.so overrides that.\n"
            "\n"
            "Options:\n%s"
            "\n"
            "Other MPROF_* variables in the environment reach the program unchanged:\n",
            RUN_OPTIONS);
    print_env_table(out);
}

void cli_print_top_usage(FILE *out)
{
    fprintf(out,
            "Usage: mprof top [OPTIONS] PROFILE\n"
            "\n"
            "Prints the functions with the largest values in a pprof profile (gzipped or\n"
            "not; PROFILE \"-\" reads standard input), as `go tool pprof -top` does.\n"
            "flat is the value in the function itself, cum includes its callees.\n"
            "\n"
            "Options:\n%s",
            TOP_OPTIONS);
}

void cli_error(const char *fmt, ...)
{
    /* One fprintf per message so concurrent output cannot split it. */
    char message[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    fprintf(stderr, "mprof: %s\n", message);
}

int cli_usage_error(const char *command, const char *fmt, ...)
{
    char message[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    if (command != NULL)
        fprintf(stderr, "mprof %s: %s\nRun 'mprof help %s' for usage.\n", command, message,
                command);
    else
        fprintf(stderr, "mprof: %s\nRun 'mprof --help' for usage.\n", message);
    return CLI_EXIT_USAGE;
}

int cli_option_value(int argc, char **argv, int *i, const char *name, const char **value)
{
    const char *arg = argv[*i];
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0)
        return 0;
    if (arg[n] == '=') {
        *value = arg + n + 1;
        return 1;
    }
    if (arg[n] != '\0')
        return 0;
    /* "--heap -- prog" is a forgotten file name, not a file called "--". */
    if (*i + 1 >= argc || strcmp(argv[*i + 1], "--") == 0)
        return -1;
    *value = argv[++*i];
    return 1;
}

bool cli_parse_long(const char *text, long min, long max, long *out)
{
    /* strtol alone accepts " 12", "12abc" and overflow; a profiler flag
     * that silently means something else is worse than an error. */
    if (text[0] == '\0' || text[0] == ' ' || text[0] == '\t')
        return false;
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}
