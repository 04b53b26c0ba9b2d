/*
 * mprof: the command-line tool.
 *
 *   mprof run [OPTIONS] [--] PROGRAM [ARGS...]   profile a program
 *   mprof top [OPTIONS] PROFILE                  read a profile
 *   mprof dump [--pprof OUT] DUMP                read a heap dump
 *
 * The tool does not link the profiler: `run` preloads libmprof.so into the
 * program it starts, and `top` only reads files, so it works on profiles
 * from any pprof writer (Go programs included) on machines without Go.
 */
#include <string.h>

#include "cli/cli.h"
#include "cli/cmd_dump.h"
#include "mprof.h"

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
    else
        return cli_usage_error(NULL, "no help for '%s': the commands are run, top and dump",
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
    if (strcmp(command, "top") == 0)
        return cmd_top(argc - 1, argv + 1);
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
