/*
 * mprof run: start a program with libmprof.so preloaded.
 *
 * The command translates its options into the MPROF_* environment that
 * libmprof.so reads, puts the library in front of LD_PRELOAD and then execs
 * the program in place of itself.  No fork, no waiting: the program gets
 * mprof's pid, its terminal and signals, and the caller sees its exit status
 * or the signal that killed it exactly as without mprof.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

#define LIBRARY_NAME "libmprof.so"

/* Upper bound for --hz: beyond this the timer signals cost more than the
 * program being measured. */
#define MAX_CPU_HZ 10000
/* Limits of the contention settings, as libmprof checks them: an hour of
 * nanoseconds, and one event in a billion. */
#define MAX_BLOCK_RATE 3600000000000L
#define MAX_MUTEX_FRACTION 1000000000L

typedef struct run_args {
    const char *heap_path;
    const char *cpu_path;
    const char *rate;
    const char *hz;
    const char *http;
    const char *block_path, *block_rate;     /* contention profiles */
    const char *mutex_path, *mutex_fraction;
    const char *threadcreate_path;
    const char *heapdump_path;
    const char *trace_path; /* "-" = stderr */
    char **program_argv; /* NULL-terminated, from argv */
} run_args;

static bool valid_http_address(const char *addr)
{
    /* ADDR:PORT, ADDR possibly empty or a bracketed IPv6 address; the
     * library does the real parsing, this catches the common slips
     * (a bare port, a missing colon) before the program starts. */
    const char *colon = strrchr(addr, ':');
    long port;
    return colon != NULL && cli_parse_long(colon + 1, 1, 65535, &port);
}

static int parse_run_args(int argc, char **argv, run_args *args)
{
    *args = (run_args){0};
    int i = 1;
    for (; i < argc; i++) {
        const char *arg = argv[i];
        const char *value;
        int m;
        if (strcmp(arg, "--") == 0) {
            i++;
            break;
        }
        if (arg[0] != '-' || arg[1] == '\0')
            break; /* the program: everything from here on is its own */
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            cli_print_run_usage(stdout);
            exit(CLI_EXIT_OK);
        }
        long number;
        if ((m = cli_option_value(argc, argv, &i, "--heap", &value)) != 0) {
            if (m < 0 || value[0] == '\0')
                return cli_usage_error("run",
                                       "--heap needs a file name, e.g. --heap heap.%%p.pb.gz");
            args->heap_path = value;
        } else if ((m = cli_option_value(argc, argv, &i, "--cpu", &value)) != 0) {
            if (m < 0 || value[0] == '\0')
                return cli_usage_error("run", "--cpu needs a file name, e.g. --cpu cpu.pb.gz");
            args->cpu_path = value;
        } else if ((m = cli_option_value(argc, argv, &i, "--rate", &value)) != 0) {
            if (m < 0 || !cli_parse_long(value, 0, LONG_MAX, &number))
                return cli_usage_error("run", "--rate needs a number of bytes >= 0 (1 = every "
                                              "allocation, 0 = off), not '%s'", m < 0 ? "" : value);
            args->rate = value;
        } else if ((m = cli_option_value(argc, argv, &i, "--hz", &value)) != 0) {
            if (m < 0 || !cli_parse_long(value, 1, MAX_CPU_HZ, &number))
                return cli_usage_error("run", "--hz needs a number of samples per second from 1 "
                                              "to %d, not '%s'", MAX_CPU_HZ, m < 0 ? "" : value);
            args->hz = value;
        } else if ((m = cli_option_value(argc, argv, &i, "--http", &value)) != 0) {
            if (m < 0 || !valid_http_address(value))
                return cli_usage_error("run", "--http needs ADDR:PORT, e.g. --http 127.0.0.1:6060 "
                                              "or --http :6060, not '%s'", m < 0 ? "" : value);
            args->http = value;
        } else if ((m = cli_option_value(argc, argv, &i, "--block", &value)) != 0) {
            if (m < 0 || value[0] == '\0')
                return cli_usage_error("run", "--block needs a file name, e.g. --block "
                                              "block.pb.gz");
            args->block_path = value;
        } else if ((m = cli_option_value(argc, argv, &i, "--block-rate", &value)) != 0) {
            if (m < 0 || !cli_parse_long(value, 0, MAX_BLOCK_RATE, &number))
                return cli_usage_error("run", "--block-rate needs nanoseconds >= 0 (1 = every "
                                              "wait, 0 = off), not '%s'", m < 0 ? "" : value);
            args->block_rate = value;
        } else if ((m = cli_option_value(argc, argv, &i, "--mutex", &value)) != 0) {
            if (m < 0 || value[0] == '\0')
                return cli_usage_error("run", "--mutex needs a file name, e.g. --mutex "
                                              "mutex.pb.gz");
            args->mutex_path = value;
        } else if ((m = cli_option_value(argc, argv, &i, "--mutex-fraction", &value)) != 0) {
            if (m < 0 || !cli_parse_long(value, 0, MAX_MUTEX_FRACTION, &number))
                return cli_usage_error("run", "--mutex-fraction needs N >= 0 (1 in N contended "
                                              "unlocks; 1 = all, 0 = off), not '%s'",
                                       m < 0 ? "" : value);
            args->mutex_fraction = value;
        } else if ((m = cli_option_value(argc, argv, &i, "--threadcreate", &value)) != 0) {
            if (m < 0 || value[0] == '\0')
                return cli_usage_error("run", "--threadcreate needs a file name, e.g. "
                                              "--threadcreate threads.pb.gz");
            args->threadcreate_path = value;
        } else if ((m = cli_option_value(argc, argv, &i, "--heapdump", &value)) != 0) {
            if (m < 0 || value[0] == '\0')
                return cli_usage_error("run", "--heapdump needs a file name, e.g. "
                                              "--heapdump heap.dump");
            args->heapdump_path = value;
        } else if ((m = cli_option_value(argc, argv, &i, "--trace", &value)) != 0) {
            if (m < 0 || value[0] == '\0')
                return cli_usage_error("run", "--trace needs a file name (or - for stderr), "
                                              "e.g. --trace trace.txt");
            args->trace_path = value;
        } else {
            return cli_usage_error("run", "unknown option '%s' (if it is meant for the program, "
                                          "put -- before the program)", arg);
        }
    }
    if (i >= argc)
        return cli_usage_error("run",
                               "no program given: mprof run [OPTIONS] [--] PROGRAM [ARGS...]");
    args->program_argv = argv + i;
    return CLI_EXIT_OK;
}

static bool is_readable_file(const char *path)
{
    return access(path, R_OK) == 0;
}

/*
 * Finds libmprof.so and returns its absolute path (malloc'd), or NULL after
 * printing why.  The search mirrors the layouts mprof ships in: the build
 * directory (library beside the tool) and an installation prefix
 * (bin/mprof with lib/ or lib/mprof/).
 */
static char *find_library(void)
{
    const char *override = getenv("MPROF_LIB");
    if (override != NULL && override[0] != '\0') {
        /* An explicit choice is never second-guessed by the search. */
        char *resolved = realpath(override, NULL);
        if (resolved == NULL || !is_readable_file(resolved)) {
            cli_error("MPROF_LIB=%s: %s; point MPROF_LIB at libmprof.so or unset it", override,
                      strerror(errno ? errno : ENOENT));
            free(resolved);
            return NULL;
        }
        return resolved;
    }

    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0) {
        cli_error("cannot find " LIBRARY_NAME ": /proc/self/exe is unreadable; set MPROF_LIB to "
                  "its path");
        return NULL;
    }
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash != NULL)
        *slash = '\0';
    static const char *const relative_dirs[] = {"", "/../lib", "/../lib/mprof"};
    char tried[3 * PATH_MAX + 16] = "";
    for (size_t i = 0; i < sizeof(relative_dirs) / sizeof(relative_dirs[0]); i++) {
        char candidate[PATH_MAX + 32];
        snprintf(candidate, sizeof(candidate), "%s%s/" LIBRARY_NAME, exe, relative_dirs[i]);
        if (is_readable_file(candidate)) {
            char *resolved = realpath(candidate, NULL);
            if (resolved != NULL)
                return resolved;
        }
        size_t used = strlen(tried);
        snprintf(tried + used, sizeof(tried) - used, "%s%s", used ? ", " : "", candidate);
    }
    cli_error("cannot find " LIBRARY_NAME " (looked for %s); build it with 'make' or set "
              "MPROF_LIB to its path", tried);
    return NULL;
}

/*
 * Makes a profile path absolute against the current directory, so that a
 * program that changes directory still writes where the user meant.  '%'
 * in the directory part is doubled, since the library expands %p and %% in
 * the whole path; the user's own part keeps its %p.
 */
static char *absolute_profile_path(const char *path)
{
    if (path[0] == '/')
        return strdup(path);
    char *cwd = getcwd(NULL, 0);
    if (cwd == NULL)
        return strdup(path); /* relative then; better than refusing to run */
    size_t percents = 0;
    for (const char *c = cwd; *c; c++)
        percents += *c == '%';
    size_t len = strlen(cwd) + percents + 1 + strlen(path) + 1;
    char *out = malloc(len);
    if (out != NULL) {
        char *w = out;
        for (const char *c = cwd; *c; c++) {
            *w++ = *c;
            if (*c == '%')
                *w++ = '%';
        }
        snprintf(w, len - (size_t)(w - out), "/%s", path);
    }
    free(cwd);
    return out;
}

static int set_env(const char *name, const char *value)
{
    if (setenv(name, value, 1) != 0) {
        cli_error("cannot set %s: %s", name, strerror(errno));
        return -1;
    }
    return 0;
}

static int set_profile_env(const char *name, const char *path)
{
    char *absolute = absolute_profile_path(path);
    if (absolute == NULL) {
        cli_error("out of memory");
        return -1;
    }
    int rc = set_env(name, absolute);
    free(absolute);
    return rc;
}

/* Puts library first in LD_PRELOAD, keeping what the user preloads: the
 * first preloaded malloc wins, and the profiler must see every call. */
static int prepend_preload(const char *library)
{
    const char *existing = getenv("LD_PRELOAD");
    if (existing == NULL || existing[0] == '\0')
        return set_env("LD_PRELOAD", library);
    size_t len = strlen(library) + 1 + strlen(existing) + 1;
    char *value = malloc(len);
    if (value == NULL) {
        cli_error("out of memory");
        return -1;
    }
    snprintf(value, len, "%s:%s", library, existing);
    int rc = set_env("LD_PRELOAD", value);
    free(value);
    return rc;
}

int cmd_run(int argc, char **argv)
{
    run_args args;
    int rc = parse_run_args(argc, argv, &args);
    if (rc != CLI_EXIT_OK)
        return rc;

    char *library = find_library();
    if (library == NULL)
        return CLI_EXIT_USAGE;

    /* Options override the environment; without a profile option the run
     * still produces something useful, unless the environment already
     * asks for a profile. */
    bool env_asks_for_profile = (getenv("MPROF_HEAP") && getenv("MPROF_HEAP")[0]) ||
                                (getenv("MPROF_CPU") && getenv("MPROF_CPU")[0]);
    const char *heap_path = args.heap_path;
    bool option_asks_for_profile = args.cpu_path || args.block_path || args.mutex_path ||
                                   args.threadcreate_path || args.heapdump_path ||
                                   args.trace_path;
    if (heap_path == NULL && !option_asks_for_profile && !env_asks_for_profile)
        heap_path = CLI_DEFAULT_HEAP_PROFILE;
    if ((heap_path && set_profile_env("MPROF_HEAP", heap_path) != 0) ||
        (args.cpu_path && set_profile_env("MPROF_CPU", args.cpu_path) != 0) ||
        (args.rate && set_env("MPROF_RATE", args.rate) != 0) ||
        (args.hz && set_env("MPROF_CPU_HZ", args.hz) != 0) ||
        (args.http && set_env("MPROF_HTTP", args.http) != 0) ||
        (args.block_path && set_profile_env("MPROF_BLOCK", args.block_path) != 0) ||
        (args.block_rate && set_env("MPROF_BLOCK_RATE", args.block_rate) != 0) ||
        (args.mutex_path && set_profile_env("MPROF_MUTEX", args.mutex_path) != 0) ||
        (args.mutex_fraction && set_env("MPROF_MUTEX_FRACTION", args.mutex_fraction) != 0) ||
        (args.threadcreate_path &&
         set_profile_env("MPROF_THREADCREATE", args.threadcreate_path) != 0) ||
        (args.heapdump_path && set_profile_env("MPROF_HEAPDUMP", args.heapdump_path) != 0) ||
        (args.trace_path && set_env("MPROF_TRACE", "alloc") != 0) ||
        (args.trace_path && strcmp(args.trace_path, "-") != 0 &&
         set_profile_env("MPROF_TRACE_FILE", args.trace_path) != 0) ||
        prepend_preload(library) != 0) {
        free(library);
        return CLI_EXIT_FAILURE;
    }
    free(library);

    execvp(args.program_argv[0], args.program_argv);
    /* Only reached when the program could not be started; 127 and 126 are
     * what shells and env(1) return, so scripts can tell this apart from
     * the program's own failures. */
    int err = errno;
    cli_error("cannot run '%s': %s", args.program_argv[0], strerror(err));
    return err == ENOENT ? 127 : 126;
}
