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
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "shared/suggest.h"

#define LIBRARY_NAME "libmprof.so"

typedef struct run_args {
    /* The value of each setting given as a flag, by CLI_OPT_*; NULL where
     * none was. */
    const char *values[CLI_OPT_COUNT];
    char **program_argv; /* NULL-terminated, from argv */
} run_args;

static bool valid_http_address(const char *addr)
{
    /* ADDR:PORT, ADDR possibly empty or a bracketed IPv6 address; the
     * library does the real parsing, this catches the common slips
     * (a bare port, a missing colon) before the program starts.  Port 0
     * asks the kernel for a free one, which the library announces. */
    const char *colon = strrchr(addr, ':');
    long port;
    return colon != NULL && cli_parse_long(colon + 1, 0, 65535, &port);
}

/* Checks a flag's value against its setting's row; a usage error naming
 * what the flag wants otherwise. */
static int check_flag_value(const cli_setting *s, const char *value, bool missing)
{
    long number;
    switch (s->type) {
    case CLI_TYPE_INT:
        if (!missing && cli_parse_long(value, s->min, s->max, &number))
            return CLI_EXIT_OK;
        return cli_usage_error("run", "%s needs %s, an integer from %ld to %ld (%s), not '%s'",
                               s->flag, s->hint, s->min, s->max, s->doc, missing ? "" : value);
    case CLI_TYPE_PATH:
        if (!missing && value[0] != '\0')
            return CLI_EXIT_OK;
        return cli_usage_error("run", "%s needs a file name: %s", s->flag, s->doc);
    case CLI_TYPE_TEXT:
        if (s == &CLI_SETTINGS[CLI_OPT_HTTP] && !missing && !valid_http_address(value))
            missing = true;
        if (!missing && value[0] != '\0')
            return CLI_EXIT_OK;
        return cli_usage_error("run", "%s needs %s (%s), not '%s'", s->flag, s->hint, s->doc,
                               missing ? "" : value);
    }
    return CLI_EXIT_USAGE;
}

/* The flag closest to a mistyped one ("--rat"), or NULL. */
static const char *closest_flag(const char *arg)
{
    char name[MPROF_SUGGEST_MAXLEN + 1];
    snprintf(name, sizeof name, "%.*s", (int)strcspn(arg, "="), arg);
    const char *best = NULL;
    unsigned best_d = ~0u;
    for (int k = 1; k < CLI_OPT_COUNT; k++) {
        const char *flag = CLI_SETTINGS[k].flag;
        if (flag == NULL || !cli_setting_documented(&CLI_SETTINGS[k]))
            continue;
        unsigned d = mprof_edit_distance(name, flag);
        if (d <= mprof_suggest_limit(strlen(flag) - 2) && d < best_d) {
            best_d = d;
            best = flag;
        }
    }
    return best;
}

static int parse_run_args(int argc, char **argv, run_args *args)
{
    *args = (run_args){0};
    int i = 1;
    for (; i < argc; i++) {
        const char *arg = argv[i];
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
        /* --leaks alone is the full check: the one flag whose value may be
         * left out, so that the program after it is not taken for one. */
        if (strcmp(arg, "--leaks") == 0) {
            args->values[CLI_OPT_LEAKS] = "full";
            continue;
        }
        if (strcmp(arg, "--only-top") == 0) {
            /* MPROF_ONLY_TOP, a switch: the table's flags all take a value. */
            args->values[CLI_OPT_ONLY_TOP] = "1";
            continue;
        }
        int matched = 0;
        for (int k = 1; k < CLI_OPT_COUNT && !matched; k++) {
            const cli_setting *s = &CLI_SETTINGS[k];
            const char *value = NULL;
            int m;
            if (s->flag == NULL || (m = cli_option_value(argc, argv, &i, s->flag, &value)) == 0)
                continue;
            int rc = check_flag_value(s, value, m < 0);
            if (rc != CLI_EXIT_OK)
                return rc;
            args->values[k] = value;
            matched = 1;
        }
        if (matched)
            continue;
        const char *close = closest_flag(arg);
        if (close != NULL)
            return cli_usage_error("run", "unknown option '%s': did you mean %s?", arg, close);
        return cli_usage_error("run", "unknown option '%s' (if it is meant for the program, "
                                      "put -- before the program)", arg);
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
    const char *override = getenv(CLI_SETTINGS[CLI_OPT_LIB].name);
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
    /* The build tree (beside mprof), the install's own library folder as
     * configured (../lib/x86_64-linux-gnu from bin/), then the usual
     * layouts of a tree installed or unpacked by hand.  A folder already
     * tried (the configured one is often also ../lib) is skipped. */
    static const char *const relative_dirs[] = {
        "",
#ifdef MPROF_BIN_TO_LIB
        "/" MPROF_BIN_TO_LIB,
#endif
        "/../lib",
#ifdef MPROF_MULTIARCH
        "/../lib/" MPROF_MULTIARCH,
#endif
        "/../lib/mprof",
    };
    enum { N_DIRS = sizeof(relative_dirs) / sizeof(relative_dirs[0]) };
    char tried[N_DIRS * (PATH_MAX + 32) + 16] = "";
    for (size_t i = 0; i < N_DIRS; i++) {
        bool seen = strcmp(relative_dirs[i], "/") == 0; /* bin and lib are one folder */
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(relative_dirs[i], relative_dirs[j]) == 0;
        if (seen)
            continue;
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

/*
 * The run log (core/run_tree.c): an empty file of our own, where every
 * process of the tree lists the files it writes, so that the root prints
 * one line for all of them at its exit.  It is unlinked at once and left
 * open across the exec (the program and its children inherit the
 * descriptor), so that no file is left behind however the run ends;
 * MPROF_RUN_LOG names the descriptor and the file's device and inode, so
 * that a process whose descriptor was closed and reused writes nothing
 * there.  Without it (no writable $TMPDIR) each process prints its own
 * line, as without mprof run.
 */
static void create_run_log(void)
{
    const char *name = CLI_SETTINGS[CLI_OPT_RUN_LOG].name;
    unsetenv(name);
    const char *dir = getenv("TMPDIR");
    if (dir == NULL || dir[0] == '\0')
        dir = "/tmp";
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/mprof-run.%d.XXXXXX", dir, (int)getpid()) >=
        (int)sizeof path)
        return;
    int fd = mkstemp(path); /* without O_CLOEXEC: the program inherits it */
    if (fd < 0)
        return;
    unlink(path);
    struct stat st;
    char value[96];
    if (fstat(fd, &st) != 0 ||
        snprintf(value, sizeof value, "%d:%llu:%llu", fd, (unsigned long long)st.st_dev,
                 (unsigned long long)st.st_ino) >= (int)sizeof value ||
        setenv(name, value, 1) != 0)
        close(fd);
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

    /* Options override the environment.  Without a file option the run
     * still produces something useful, unless the environment already asks
     * for a file. */
    bool asks_for_file = false;
    for (int k = 1; k < CLI_OPT_COUNT; k++) {
        const cli_setting *s = &CLI_SETTINGS[k];
        if (s->type != CLI_TYPE_PATH || s->audience != CLI_AUDIENCE_USER)
            continue;
        const char *env = getenv(s->name);
        if (args.values[k] != NULL || (env != NULL && env[0] != '\0'))
            asks_for_file = true;
    }
    /* The leak check's own file stands for the heap profile's default. */
    if (args.values[CLI_OPT_LEAKS] != NULL && !asks_for_file)
        args.values[CLI_OPT_LEAKS_PROFILE] = "mprof.leaks.%p.pb.gz";
    else if (!asks_for_file)
        args.values[CLI_OPT_HEAP] = CLI_DEFAULT_HEAP_PROFILE;
    /* --trace FILE is the trace itself, not only where it goes. */
    if (args.values[CLI_OPT_TRACE_FILE] != NULL && args.values[CLI_OPT_TRACE] == NULL)
        args.values[CLI_OPT_TRACE] = "alloc";
    for (int k = 1; k < CLI_OPT_COUNT; k++) {
        const cli_setting *s = &CLI_SETTINGS[k];
        const char *v = args.values[k];
        if (v == NULL)
            continue;
        /* "-" (stderr, for --trace) is no file to make absolute. */
        bool file = s->type == CLI_TYPE_PATH && strcmp(v, "-") != 0;
        if ((file ? set_profile_env(s->name, v) : set_env(s->name, v)) != 0) {
            free(library);
            return CLI_EXIT_FAILURE;
        }
    }
    if (prepend_preload(library) != 0) {
        free(library);
        return CLI_EXIT_FAILURE;
    }
    free(library);
    create_run_log();

    execvp(args.program_argv[0], args.program_argv);
    /* Only reached when the program could not be started; 127 and 126 are
     * what shells and env(1) return, so scripts can tell this apart from
     * the program's own failures. */
    int err = errno;
    cli_error("cannot run '%s': %s", args.program_argv[0], strerror(err));
    return err == ENOENT ? 127 : 126;
}
