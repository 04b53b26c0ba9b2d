/*
 * mprof: the command-line tool.
 *
 *   mprof run [OPTIONS] [--] PROGRAM [ARGS...]   profile a program
 *   mprof top [OPTIONS] PROFILE...               read profiles (merged), or a diff
 *   mprof report [-o FILE] PROFILE               a profile as one HTML page
 *   mprof merge PROFILE... -o OUT                sum profiles into one file
 *   mprof dump [--pprof OUT] DUMP                read a heap dump
 *
 * The tool does not link the profiler: `run` preloads libmprof.so into the
 * program it starts, and `top` only reads files, so it works on profiles
 * from any pprof writer (Go programs included) on machines without Go.
 */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cmd_dump.h"
#include "cli/profile_reader.h"
#include "mprof.h"

/* MPROF_READ_LIMIT_MB, for the commands that read files (top, dump);
 * false, said, when it is not a number in its range. */
static bool apply_read_limit(void)
{
    const cli_setting *s = &CLI_SETTINGS[CLI_OPT_READ_LIMIT_MB];
    const char *value = getenv(s->name);
    long mib;
    if (value == NULL || value[0] == '\0')
        return true;
    if (!cli_parse_long(value, s->min, s->max, &mib)) {
        cli_error("%s=%s: expected a number of MiB from %ld to %ld; fix it, or unset it for the "
                  "default of %s",
                  s->name, value, s->min, s->max, s->default_text);
        return false;
    }
    pp_set_read_limit((size_t)mib << 20);
    return true;
}

static int help_command(int argc, char **argv)
{
    if (argc < 2) {
        cli_print_usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "--markdown") == 0)
        return cli_print_markdown(stdout, argc > 2 ? argv[2] : "");
    if (strcmp(argv[1], "run") == 0)
        cli_print_run_usage(stdout);
    else if (strcmp(argv[1], "top") == 0)
        cli_print_top_usage(stdout);
    else if (strcmp(argv[1], "dump") == 0)
        cli_print_dump_usage(stdout);
    else if (strcmp(argv[1], "report") == 0)
        cli_print_report_usage(stdout);
    else if (strcmp(argv[1], "merge") == 0)
        cli_print_merge_usage(stdout);
    else
        return cli_usage_error(NULL, "no help for '%s': the commands are run, top, report, merge and dump",
                               argv[1]);
    return CLI_EXIT_OK;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        /* A bare "mprof" is most likely someone finding out what it does;
         * the status says no work was done. */
        cli_print_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *command = argv[1];
    if (strcmp(command, "run") == 0)
        return cmd_run(argc - 1, argv + 1);
    if ((strcmp(command, "top") == 0 || strcmp(command, "dump") == 0 ||
         strcmp(command, "report") == 0 || strcmp(command, "merge") == 0) &&
        !apply_read_limit())
        return CLI_EXIT_USAGE;
    if (strcmp(command, "merge") == 0)
        return cmd_merge(argc - 1, argv + 1);
    if (strcmp(command, "top") == 0)
        return cmd_top(argc - 1, argv + 1);
    if (strcmp(command, "report") == 0)
        return cmd_report(argc - 1, argv + 1);
    if (strcmp(command, "dump") == 0)
        return cmd_dump(argc - 1, argv + 1);
    if (strcmp(command, "help") == 0)
        return help_command(argc - 1, argv + 1);
    if (strcmp(command, "--help") == 0 || strcmp(command, "-h") == 0) {
        cli_print_usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(command, "--version") == 0 || strcmp(command, "version") == 0) {
        printf("mprof %s\n", MPROF_VERSION);
        return CLI_EXIT_OK;
    }
    if (command[0] == '-')
        return cli_usage_error(NULL, "unknown option '%s'", command);
    return cli_usage_error(NULL, "unknown command '%s'", command);
}
