/*
 * mprof top: the text report of `go tool pprof -top`, without Go.
 *
 * The output is meant to be read side by side with pprof's (same header
 * lines, same columns, same number formatting), so that numbers can be
 * compared across tools and the tests can check them against pprof itself.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/profile_merge.h"
#include "cli/profile_reader.h"
#include "cli/tags.h"
#include "cli/timeline.h"
#include "cli/top_report.h"
#include "cli/units.h"

#define TOP_DEFAULT_ROWS 10
/* --tag options at once (each must match). */
#define TOP_MAX_TAGS 8

typedef struct top_args {
    /* The profiles, merged when several (profile_merge.h); the bases are
     * subtracted from them, as pprof -diff_base does. */
    pm_inputs in;
    const char *sample_index; /* NULL: the profile's default */
    long rows;
    bool cum_sort;
    bool timeline;                /* --timeline: the heap profile's memory timeline too */
    bool tags;                    /* --tags: the label summary instead */
    tag_filter tag[TOP_MAX_TAGS]; /* --tag KEY=VALUE */
    size_t ntags;
} top_args;

static int parse_top_args(int argc, char **argv, top_args *args)
{
    *args = (top_args){.rows = TOP_DEFAULT_ROWS};
    /* Freed by cmd_top. */
    if (pm_inputs_init(&args->in, argc) != 0) {
        cli_error("out of memory");
        return CLI_EXIT_FAILURE;
    }
    bool options_done = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *value;
        int m;
        if (options_done || arg[0] != '-' || strcmp(arg, "-") == 0) {
            args->in.paths[args->in.npaths++] = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            options_done = true;
        } else if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            cli_print_top_usage(stdout);
            exit(CLI_EXIT_OK);
        } else if (strcmp(arg, "--cum") == 0 || strcmp(arg, "-cum") == 0) {
            args->cum_sort = true;
        } else if (strcmp(arg, "--timeline") == 0) {
            args->timeline = true;
        } else if ((m = cli_option_value(argc, argv, &i, "--sample-index", &value)) != 0 ||
                   (m = cli_option_value(argc, argv, &i, "--sample_index", &value)) != 0 ||
                   (m = cli_option_value(argc, argv, &i, "-sample_index", &value)) != 0) {
            /* The last two are pprof's spelling, for fingers used to it. */
            if (m < 0 || value[0] == '\0')
                return cli_usage_error("top", "--sample-index needs a sample type name "
                                              "(inuse_space, cpu, ...) or an index");
            args->sample_index = value;
        } else if ((m = cli_option_value(argc, argv, &i, "--base", &value)) != 0 ||
                   (m = cli_option_value(argc, argv, &i, "--diff_base", &value)) != 0 ||
                   (m = cli_option_value(argc, argv, &i, "-diff_base", &value)) != 0) {
            /* pprof's -diff_base, whose figures --base reproduces. */
            if (m < 0 || value[0] == '\0')
                return cli_usage_error("top", "--base needs the profile to subtract, e.g. "
                                              "mprof top --base old.pb.gz new.pb.gz");
            args->in.bases[args->in.nbases++] = value;
        } else if (strcmp(arg, "--tags") == 0 || strcmp(arg, "-tags") == 0) {
            args->tags = true;
        } else if ((m = cli_option_value(argc, argv, &i, "--tag", &value)) != 0 ||
                   (m = cli_option_value(argc, argv, &i, "-tagfocus", &value)) != 0) {
            char err[512];
            if (m < 0)
                return cli_usage_error("top", "--tag needs KEY=VALUE (mprof top --tags PROFILE "
                                              "lists the labels)");
            if (args->ntags == TOP_MAX_TAGS)
                return cli_usage_error("top", "at most %d --tag options", TOP_MAX_TAGS);
            if (!tag_filter_parse(value, &args->tag[args->ntags], err, sizeof(err)))
                return cli_usage_error("top", "%s", err);
            args->ntags++;
        } else if ((m = cli_option_value(argc, argv, &i, "-n", &value)) != 0) {
            if (m < 0 || !cli_parse_long(value, 0, 1000000000, &args->rows))
                return cli_usage_error("top", "-n needs a number of rows >= 0 (0 = all), not '%s'",
                                       m < 0 ? "" : value);
        } else {
            return cli_unknown_option("top", arg);
        }
    }
    if (args->in.npaths == 0)
        return cli_usage_error("top", args->in.nbases > 0
                                          ? "--base needs a profile to compare with it: mprof "
                                            "top --base OLD NEW"
                                          : "no profile given: mprof top [OPTIONS] PROFILE...");
    for (size_t k = 0; k < args->in.npaths; k++)
        if (strcmp(args->in.paths[k], "-") == 0 && args->in.npaths + args->in.nbases > 1)
            return cli_usage_error("top", "standard input (\"-\") is read as the only profile, "
                                          "not with others: give the files' names");
    return CLI_EXIT_OK;
}

/* Everything a line of the report needs to format a value. */
typedef struct formatter {
    const char *sample_unit;
    char output_unit[UNITS_NAME_MAX];
} formatter;

static const char *format_value(const formatter *f, int64_t v, char *buf, size_t len)
{
    units_label(buf, len, v, f->sample_unit, f->output_unit);
    return buf;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* pprof's "Jan 2, 2006 at 3:04pm (MST)", in local time. */
static void print_time_label(int64_t time_nanos)
{
    time_t seconds = (time_t)(time_nanos / 1000000000);
    if (time_nanos < 0 && time_nanos % 1000000000 != 0)
        seconds--; /* floor, as Go's time.Unix does */
    struct tm tm;
    char text[128];
    if (localtime_r(&seconds, &tm) == NULL ||
        strftime(text, sizeof(text), "%b %-d, %Y at %-I:%M%P (%Z)", &tm) == 0)
        return;
    printf("Time: %s\n", text);
}

static void print_header(const pp_profile *p, size_t sample_index, const top_report *r,
                         const formatter *f, const top_options *o, const top_args *args)
{
    char a[64], b[64], pct[32];
    if (p->nmappings > 0) {
        if (p->mappings[0].filename[0] != '\0')
            printf("File: %s\n", base_name(p->mappings[0].filename));
        if (p->mappings[0].build_id[0] != '\0')
            printf("Build ID: %s\n", p->mappings[0].build_id);
    }
    /* Comments starting with '#' are meant for tools, not people. */
    for (size_t i = 0; i < p->ncomments; i++)
        if (p->comments[i][0] != '#')
            printf("%s\n", p->comments[i]);
    if (p->sample_types[sample_index].type[0] != '\0')
        printf("Type: %s\n", p->sample_types[sample_index].type);
    if (p->time_nanos != 0)
        print_time_label(p->time_nanos);
    if (p->duration_nanos != 0) {
        /* For time-valued samples, how much of the wall time was sampled. */
        char ratio[40] = "";
        char total_unit[UNITS_NAME_MAX];
        double total_nanos = units_scale(r->total, f->sample_unit, "nanoseconds", total_unit);
        if (strcmp(total_unit, "ns") == 0 && (int64_t)total_nanos != 0) {
            units_percentage(pct, sizeof(pct), (int64_t)total_nanos, p->duration_nanos);
            snprintf(ratio, sizeof(ratio), "(%s)", pct);
        }
        units_label(a, sizeof(a), p->duration_nanos, "nanoseconds", "auto");
        printf("Duration: %s, Total samples = %s %s\n", a, format_value(f, r->total, b, sizeof(b)),
               ratio);
    }
    if (args->ntags > 0) {
        /* pprof's legend of its filters, cut at 80 bytes as it does. */
        printf("Active filters:\n");
        for (size_t i = 0; i < args->ntags; i++) {
            char line[96];
            int len = snprintf(line, sizeof(line), "tagfocus=%s", args->tag[i].spec);
            printf("   %.80s%s\n", line, len > 80 ? "\xe2\x80\xa6" : "");
        }
    }
    units_percentage(pct, sizeof(pct), r->shown_flat, r->total);
    printf("Showing nodes accounting for %s, %s of %s total\n",
           format_value(f, r->shown_flat, a, sizeof(a)), pct + strspn(pct, " "),
           format_value(f, r->total, b, sizeof(b)));
    if (r->total != 0) {
        if (r->dropped_nodes > 0) {
            int64_t cutoff = (int64_t)((double)r->total * o->node_fraction);
            printf("Dropped %zu node%s (cum <= %s)\n", r->dropped_nodes,
                   r->dropped_nodes > 1 ? "s" : "",
                   format_value(f, cutoff < 0 ? -cutoff : cutoff, a, sizeof(a)));
        }
        if (r->nrows > 0 && r->nrows < r->candidate_nodes)
            printf("Showing top %zu nodes out of %zu\n", r->nrows, r->candidate_nodes);
    }
    printf("%10s %5s%% %5s%% %10s %5s%%\n", "flat", "flat", "sum", "cum", "cum");
}

static void print_rows(const top_report *r, const formatter *f)
{
    int64_t running = 0;
    for (size_t i = 0; i < r->nrows; i++) {
        const top_row *row = &r->rows[i];
        char flat[64], cum[64], flat_pct[32], sum_pct[32], cum_pct[32];
        running = (int64_t)((uint64_t)running + (uint64_t)row->flat);
        units_percentage(flat_pct, sizeof(flat_pct), row->flat, r->total);
        units_percentage(sum_pct, sizeof(sum_pct), running, r->total);
        units_percentage(cum_pct, sizeof(cum_pct), row->cum, r->total);
        printf("%10s %s %s %10s %s  %s%s%s\n", format_value(f, row->flat, flat, sizeof(flat)),
               flat_pct, sum_pct, format_value(f, row->cum, cum, sizeof(cum)), cum_pct, row->name,
               row->inline_label[0] ? " " : "", row->inline_label);
    }
}

/* --timeline: after the table, so the table reads as pprof's. */
static void print_timeline(const pp_profile *p, const char *path)
{
    timeline tl;
    char err[512];
    int has = timeline_find(p, &tl, err, sizeof err);
    if (has < 0) {
        cli_error("%s: warning: %s", path, err);
        return;
    }
    if (has == 0) {
        printf("Timeline: none in this profile (heap profiles of mprof carry one unless "
               "MPROF_TIMELINE=0)\n");
        return;
    }
    timeline_print_sparkline(stdout, &tl, 72);
    timeline_free(&tl);
}

static int run_top(const top_args *args);

int cmd_top(int argc, char **argv)
{
    top_args args;
    int rc = parse_top_args(argc, argv, &args);
    if (rc == CLI_EXIT_OK)
        rc = run_top(&args);
    for (size_t i = 0; i < args.ntags; i++)
        tag_filter_free(&args.tag[i]);
    pm_inputs_free(&args.in);
    return rc;
}

static int run_top(const top_args *a)
{
    char err[2048];
    pp_profile *p = pm_inputs_read(&a->in, err, sizeof(err));
    if (p == NULL) {
        cli_error("%s", err);
        return CLI_EXIT_FAILURE;
    }
    const char *name = pm_inputs_name(&a->in);

    size_t sample_index;
    switch (top_find_sample_index(p, a->sample_index, &sample_index, err, sizeof(err))) {
    case TOP_INDEX_OK:
        break;
    case TOP_INDEX_NO_TYPES:
        cli_error("%s: %s", name, err);
        pp_profile_free(p);
        return CLI_EXIT_FAILURE;
    case TOP_INDEX_UNKNOWN:
        cli_error("%s: %s", name, err);
        pp_profile_free(p);
        return CLI_EXIT_USAGE;
    }

    if (top_simplify_function_names(p) != 0) {
        cli_error("%s: out of memory", name);
        pp_profile_free(p);
        return CLI_EXIT_FAILURE;
    }
    char warning[256];
    if (top_prune_uninteresting(p, warning, sizeof(warning)) != 0)
        cli_error("%s: warning: %s", name, warning);

    /* --tag: percentages stay shares of the whole profile, as pprof's. */
    int64_t total_before_focus = top_total(p, sample_index);
    long kept = tag_focus(p, a->tag, a->ntags, err, sizeof(err));
    if (kept < 0) {
        cli_error("%s: %s", name, err);
        pp_profile_free(p);
        return CLI_EXIT_FAILURE;
    }
    if (kept == 0 && a->ntags > 0)
        cli_error("%s: warning: no sample has the labels asked for with --tag (mprof top "
                  "--tags %s lists them)", name, name);
    if (a->tags) {
        int trc = tags_print(stdout, p, sample_index, err, sizeof(err));
        if (trc != 0)
            cli_error("%s: %s", name, err);
        pp_profile_free(p);
        return trc == 0 ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
    }

    top_options options = {
        .sample_index = sample_index,
        .cum_sort = a->cum_sort,
        .node_count = (size_t)a->rows,
        .node_fraction = TOP_DEFAULT_NODE_FRACTION,
        .edge_fraction = TOP_DEFAULT_EDGE_FRACTION,
        .total = a->ntags > 0 ? &total_before_focus : NULL,
    };
    top_report report;
    int rc = top_report_build(p, &options, &report);
    if (rc != 0) {
        if (rc == -2)
            cli_error("%s: its call graph would take more memory than mprof spends on a profile "
                      "of its size (%d bytes a byte): no profiler writes a graph that dense; "
                      "if the file is genuine, read it with go tool pprof",
                      name, PP_MEMORY_PER_BYTE);
        else
            cli_error("%s: out of memory", name);
        pp_profile_free(p);
        return CLI_EXIT_FAILURE;
    }

    formatter f = {.sample_unit = p->sample_types[sample_index].unit};
    units_select_output(report.min_value, report.total, f.sample_unit, f.output_unit);
    print_header(p, sample_index, &report, &f, &options, a);
    print_rows(&report, &f);
    if (a->timeline)
        print_timeline(p, name);

    top_report_free(&report);
    pp_profile_free(p);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_error("error writing the report: %s", strerror(errno));
        return CLI_EXIT_FAILURE;
    }
    return CLI_EXIT_OK;
}
