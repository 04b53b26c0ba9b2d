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

/*
 * The settings, from the options table (shared/options.def): the help
 * texts, `mprof run`'s flags and the docs' tables are all written from it.
 * CLI_SETTINGS[CLI_OPT_RATE] is MPROF_RATE's row.
 */
typedef enum { CLI_TYPE_INT, CLI_TYPE_PATH, CLI_TYPE_TEXT } cli_setting_type;
typedef enum {
    CLI_AUDIENCE_USER,     /* documented everywhere */
    CLI_AUDIENCE_CLI,      /* read by this tool, not the library */
    CLI_AUDIENCE_TEST,     /* test knobs: left out of help and docs */
    CLI_AUDIENCE_INTERNAL, /* set by mprof itself */
} cli_setting_audience;

typedef struct cli_setting {
    const char *name; /* MPROF_RATE */
    cli_setting_type type;
    cli_setting_audience audience;
    const char *hint;         /* placeholder for its value, e.g. "FILE" */
    const char *default_text; /* in words */
    long min, max;            /* accepted range of an INT */
    const char *flag;         /* mprof run's flag, or NULL */
    const char *doc;          /* one line */
} cli_setting;

enum {
    CLI_OPT_NONE = 0,
#define MPROF_OPTION(ID, ...) CLI_OPT_##ID,
#include "shared/options.def"
#undef MPROF_OPTION
    CLI_OPT_COUNT
};

extern const cli_setting CLI_SETTINGS[CLI_OPT_COUNT];

/* The settings a user is shown: not test knobs, not mprof's own. */
bool cli_setting_documented(const cli_setting *s);

/* `mprof help --markdown settings|run`: the README's and docs/cli.md's
 * tables, which scripts/check-docs.sh compares with the files. */
int cli_print_markdown(FILE *out, const char *which);

/* Default heap profile of `mprof run`, relative to the current directory. */
#define CLI_DEFAULT_HEAP_PROFILE "mprof.heap.%p.pb.gz"

void cli_print_usage(FILE *out);
void cli_print_run_usage(FILE *out);
void cli_print_top_usage(FILE *out);
void cli_print_report_usage(FILE *out);

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
int cmd_report(int argc, char **argv); /* argv[0] is "report" */
int cmd_merge(int argc, char **argv); /* argv[0] is "merge" */
void cli_print_merge_usage(FILE *out);

#endif /* MPROF_CLI_H */
