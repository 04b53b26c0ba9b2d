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
#include "shared/suggest.h"

const cli_setting CLI_SETTINGS[CLI_OPT_COUNT] = {
#define MPROF_OPTION(ID, NAME, TYPE, AUDIENCE, HINT, DEFAULT, DEFAULT_TEXT, MIN, MAX, FLAG, DOC)  \
    [CLI_OPT_##ID] = {NAME,     CLI_TYPE_##TYPE, CLI_AUDIENCE_##AUDIENCE, HINT, DEFAULT_TEXT,         \
                      MIN,      MAX,             FLAG,                    DOC},
#include "shared/options.def"
#undef MPROF_OPTION
};

bool cli_setting_documented(const cli_setting *s)
{
    return s->name != NULL &&
           (s->audience == CLI_AUDIENCE_USER || s->audience == CLI_AUDIENCE_CLI);
}

/* Prints "  LEFT  TEXT" with TEXT wrapped at 79 columns, its continuation
 * lines indented to TEXT's column. */
static void print_wrapped(FILE *out, const char *left, int width, const char *text)
{
    const int limit = 79 - width - 3;
    int n = fprintf(out, "  %-*s ", width, left);
    if (n > width + 3) /* a long left column: the text starts below it */
        fprintf(out, "\n%*s", width + 3, "");
    while (*text != '\0') {
        int len = (int)strlen(text);
        int cut = len;
        if (len > limit) {
            cut = limit;
            while (cut > 0 && text[cut] != ' ')
                cut--;
            if (cut == 0)
                cut = limit;
        }
        fprintf(out, "%.*s\n", cut, text);
        text += cut;
        while (*text == ' ')
            text++;
        if (*text != '\0')
            fprintf(out, "%*s", width + 3, "");
    }
}

/* "doc (default: X)" when the default says more than "unset". */
static void describe(const cli_setting *s, char *buf, size_t len)
{
    if (strcmp(s->default_text, "unset") == 0)
        snprintf(buf, len, "%s", s->doc);
    else
        snprintf(buf, len, "%s (default %s)", s->doc, s->default_text);
}

static void print_env_table(FILE *out)
{
    for (int i = 1; i < CLI_OPT_COUNT; i++) {
        const cli_setting *s = &CLI_SETTINGS[i];
        if (!cli_setting_documented(s))
            continue;
        char left[64], text[512];
        snprintf(left, sizeof left, "%s=%s", s->name, s->hint);
        describe(s, text, sizeof text);
        print_wrapped(out, left, 24, text);
    }
}

static void print_run_options(FILE *out)
{
    for (int i = 1; i < CLI_OPT_COUNT; i++) {
        const cli_setting *s = &CLI_SETTINGS[i];
        if (s->flag == NULL || !cli_setting_documented(s))
            continue;
        char left[64], text[512];
        snprintf(left, sizeof left, "%s %s", s->flag, s->hint);
        describe(s, text, sizeof text);
        print_wrapped(out, left, 20, text);
    }
    print_wrapped(out, "--only-top", 20, "profile only the top process and the programs it "
                                          "execs in its place (sets MPROF_ONLY_TOP=1)");
    /* The rule cmd_run applies: any file option (a PATH row with a flag:
     * --heapdump and --trace too) turns the default heap profile off. */
    char files[512] = "";
    for (int i = 1; i < CLI_OPT_COUNT; i++) {
        const cli_setting *s = &CLI_SETTINGS[i];
        if (s->flag == NULL || s->type != CLI_TYPE_PATH || !cli_setting_documented(s))
            continue;
        size_t used = strlen(files);
        snprintf(files + used, sizeof files - used, "%s%s", used ? ", " : "", s->flag);
    }
    char rule[768];
    snprintf(rule, sizeof rule,
             "without any file option (%s), nor any of their MPROF_* variables in the "
             "environment, the heap profile goes to ./%s",
             files, CLI_DEFAULT_HEAP_PROFILE);
    print_wrapped(out, "Default:", 20, rule);
    fputs("  A program that starts others: one line at the end for the files of all.\n", out);
}

/* Markdown cell text: '|' would end the cell. */
static void print_cell(FILE *out, const char *text)
{
    for (const char *c = text; *c; c++) {
        if (*c == '|')
            fputs("\\|", out);
        else
            fputc(*c, out);
    }
}

int cli_print_markdown(FILE *out, const char *which)
{
    bool run = strcmp(which, "run") == 0;
    if (!run && strcmp(which, "settings") != 0)
        return cli_usage_error("help", "--markdown takes settings or run, not '%s'", which);
    fputs(run ? "| option | sets | meaning | default |\n|---|---|---|---|\n"
              : "| variable | meaning | default | `mprof run` |\n|---|---|---|---|\n",
          out);
    for (int i = 1; i < CLI_OPT_COUNT; i++) {
        const cli_setting *s = &CLI_SETTINGS[i];
        if (!cli_setting_documented(s) || (run && s->flag == NULL))
            continue;
        if (run)
            fprintf(out, "| `%s %s` | `%s` | ", s->flag, s->hint, s->name);
        else
            fprintf(out, "| `%s` | ", s->name);
        print_cell(out, s->doc);
        fputs(" | ", out);
        print_cell(out, s->default_text);
        if (run)
            fputs(" |\n", out);
        else if (s->flag != NULL)
            fprintf(out, " | `%s %s` |\n", s->flag, s->hint);
        else
            fputs(" | |\n", out);
    }
    return CLI_EXIT_OK;
}

/*
 * The options of the commands that read files, as the options table is
 * for mprof run's: their help and the "did you mean" for a mistyped one
 * come from here, and cli_help.sh checks that each is accepted by its
 * command's parser (cmd_top.c, cmd_dump.c) and that the help lists it.
 */
const cli_flag CLI_FLAGS[] = {
    {"top", "--sample-index", "NAME|N",
     "which value to show: inuse_space, alloc_space, cpu, ... or its index (default: the "
     "profile's default type)"},
    {"top", "-n", "N", "show the first N functions (default 10; 0 = all)"},
    {"top", "--cum", NULL, "sort by cumulative instead of flat value"},
    {"top", "--timeline", NULL, "also print a heap profile's memory timeline as a sparkline"},
    {"top", "--base", "OLD",
     "show what changed since OLD (new minus OLD), as go tool pprof -diff_base OLD; "
     "repeatable"},
    {"top", "--tag", "KEY=VALUE",
     "only samples labeled so (VALUE: regular expressions, comma-separated, as pprof's "
     "-tagfocus); repeatable"},
    {"top", "--tags", NULL, "list the label keys and values with their totals"},
    {"report", "-o", "FILE", "the page to write (default: PROFILE's name with .html)"},
    {"report", "--peak", "PEAK", "also draw a peak heap profile (mprof run --peak PEAK)"},
    {"report", "--base", "OLD",
     "draw what changed since OLD (new minus OLD), as mprof top --base; repeatable"},
    {"merge", "-o", "OUT", "where the merged profile goes (\"-\" = standard output); also --output"},
    {"merge", "--base", "OLD",
     "subtract OLD (repeatable): OUT is then the difference, as go tool pprof -diff_base OLD "
     "computes it, and mprof top OUT shows what grew and what shrank"},
    {"dump", "--pprof", "OUT",
     "instead, write the dump as a gzipped pprof heap profile (inuse_space, ...; names and "
     "lines included) to OUT (\"-\" = standard output)"},
};
const size_t CLI_NFLAGS = sizeof CLI_FLAGS / sizeof CLI_FLAGS[0];

void cli_print_flags(FILE *out, const char *command)
{
    for (size_t i = 0; i < CLI_NFLAGS; i++) {
        const cli_flag *f = &CLI_FLAGS[i];
        if (strcmp(f->command, command) != 0)
            continue;
        char left[64];
        snprintf(left, sizeof left, "%s%s%s", f->flag, f->hint ? " " : "", f->hint ? f->hint : "");
        print_wrapped(out, left, 22, f->doc);
    }
}

int cli_unknown_option(const char *command, const char *arg)
{
    char name[MPROF_SUGGEST_MAXLEN + 1];
    snprintf(name, sizeof name, "%.*s", (int)strcspn(arg, "="), arg);
    const char *best = NULL;
    unsigned best_d = ~0u;
    for (size_t i = 0; i < CLI_NFLAGS; i++) {
        const cli_flag *f = &CLI_FLAGS[i];
        if (strcmp(f->command, command) != 0)
            continue;
        /* "-n" is too short to suggest from: anything is one edit away. */
        size_t len = strlen(f->flag) - (f->flag[1] == '-' ? 2 : 1);
        unsigned d = mprof_edit_distance(name, f->flag);
        if (len >= 3 && d <= mprof_suggest_limit(len) && d < best_d) {
            best_d = d;
            best = f->flag;
        }
    }
    if (best != NULL)
        return cli_usage_error(command, "unknown option '%s': did you mean %s?", arg, best);
    return cli_usage_error(command, "unknown option '%s'", arg);
}

void cli_print_usage(FILE *out)
{
    fprintf(out,
            "mprof " MPROF_VERSION " - sampling heap and CPU profiler for native programs\n"
            "\n"
            "Usage:\n"
            "  mprof run [OPTIONS] [--] PROGRAM [ARGS...]  profile PROGRAM, libmprof.so preloaded\n"
            "  mprof top [OPTIONS] PROFILE...              top functions of pprof profiles (merged)\n"
            "  mprof report [-o FILE] PROFILE              one HTML page: flame graph, top, timeline\n"
            "  mprof merge PROFILE... -o OUT               sum profiles of one kind into one file\n"
            "  mprof dump [--pprof OUT] DUMP               print a heap dump or convert it to pprof\n"
            "  mprof help [run|top|report|merge|dump]      show this help or a command's\n"
            "  mprof --version                             print the version\n"
            "\n"
            "Options of run:\n");
    print_run_options(out);
    fputs("\nOptions of top:\n", out);
    cli_print_flags(out, "top");
    fputs("\nOptions of report:\n", out);
    cli_print_flags(out, "report");
    fputs("\nOptions of merge:\n", out);
    cli_print_flags(out, "merge");
    fputs("\nOptions of dump:\n", out);
    cli_print_flags(out, "dump");
    fputs("\n"
          "Environment, read by libmprof.so (mprof run sets them from its options;\n"
          "LD_PRELOAD=/path/to/libmprof.so with these works without mprof run):\n",
          out);
    print_env_table(out);
    fprintf(out, "\n"
                 "View a profile:\n"
                 "  mprof top FILE\n"
                 "  mprof report FILE            (a page for any browser, offline)\n"
                 "  go tool pprof -top FILE      (or -http=:8080 FILE for a browser view)\n");
}

void cli_print_run_usage(FILE *out)
{
    fprintf(out,
            "Usage: mprof run [OPTIONS] [--] PROGRAM [ARGS...]\n"
            "\n"
            "Runs PROGRAM with libmprof.so preloaded; its exit status is PROGRAM's.\n"
            "libmprof.so is looked for next to the mprof executable, then in\n"
            "../lib/MULTIARCH (e.g. ../lib/x86_64-linux-gnu), ../lib and ../lib/mprof\n"
            "relative to it; MPROF_LIB=/path/to/libmprof.so overrides that.\n"
            "\n"
            "Options:\n");
    print_run_options(out);
    fprintf(out, "\n"
                 "Other MPROF_* variables in the environment reach the program unchanged:\n");
    print_env_table(out);
}

void cli_print_top_usage(FILE *out)
{
    fprintf(out,
            "Usage: mprof top [OPTIONS] PROFILE...\n"
            "       mprof top --base OLD [OPTIONS] NEW...\n"
            "\n"
            "Prints the functions with the largest values in a pprof profile (gzipped or\n"
            "not; PROFILE \"-\" reads standard input), as `go tool pprof -top` does.\n"
            "flat is the value in the function itself, cum includes its callees.\n"
            "Several profiles of one kind are merged first (summed, as mprof merge does).\n"
            "With --base, the values are NEW minus OLD: growth is positive, shrinkage\n"
            "negative, rows sorted by the size of the change, shares of OLD's total.\n"
            "\n"
            "Options:\n");
    cli_print_flags(out, "top");
}

void cli_print_report_usage(FILE *out)
{
    fprintf(out,
            "Usage: mprof report [OPTIONS] PROFILE...\n"
            "\n"
            "Writes one self-contained HTML page of a pprof profile (any kind: heap, cpu,\n"
            "block, mutex, ...): a flame graph with zoom, search and hover, a switch between\n"
            "its sample types, the top table, and a heap profile's memory timeline.  The\n"
            "page makes no network request: open it from disk or send it by mail.\n"
            "Several profiles of one kind are merged first; with --base, the page draws\n"
            "NEW minus OLD (frames sized by the size of the change).\n"
            "\n"
            "Options:\n");
    cli_print_flags(out, "report");
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
