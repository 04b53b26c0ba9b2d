/*
 * Pieces shared by the `mprof` subcommands.
 *
 * Exit statuses follow the usual Unix split, which scripts rely on:
 * 0 success, 1 the work failed (unreadable or corrupt profile, I/O error),
 * 2 the command line was wrong.  `mprof run` instead ends with the exit
 * status of the program it runs, since it becomes that program.
 */
#ifndef MPROF_CLI_H
#define MPROF_CLI_H

#include <stdbool.h>
#include <stdio.h>

enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_FAILURE = 1,
    CLI_EXIT_USAGE = 2,
};

/* One MPROF_* variable read by libmprof.so.  The help text and docs/cli.md
 * are both written from this table: keep them in step. */
typedef struct cli_env_var {
    const char *name;
    const char *value;   /* placeholder for its value, e.g. "FILE" */
    const char *meaning; /* one line, defaults included */
} cli_env_var;

extern const cli_env_var CLI_ENV_VARS[];
extern const size_t CLI_ENV_VAR_COUNT;

/* Default heap profile of `mprof run`, relative to the current directory. */
#define CLI_DEFAULT_HEAP_PROFILE "mprof.heap.%p.pb.gz"

void cli_print_usage(FILE *out);
void cli_print_run_usage(FILE *out);
void cli_print_top_usage(FILE *out);

/* "mprof: <message>" on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "mprof <command>: <message>" plus a pointer to the command's help, on
 * stderr; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *command, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Matches argv[*i] against an option taking a value, given as
 * "--name VALUE" or "--name=VALUE".  Returns 1 and sets *value (advancing
 * *i past a separate value) on a match, 0 when argv[*i] is another option,
 * -1 when the value is missing.
 */
int cli_option_value(int argc, char **argv, int *i, const char *name, const char **value);

/* Parses a whole decimal integer in [min, max]. */
bool cli_parse_long(const char *text, long min, long max, long *out);

int cmd_run(int argc, char **argv); /* argv[0] is "run" */
int cmd_top(int argc, char **argv); /* argv[0] is "top" */

#endif /* MPROF_CLI_H */
