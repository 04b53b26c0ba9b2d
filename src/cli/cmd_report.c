/*
 * mprof report: a profile as one self-contained HTML page (report_html.h,
 * docs/report.md).
 *
 * The command reads and prepares each profile as `mprof top` does (simple
 * names, the profile's drop_frames), so that the page's table and mprof
 * top agree, then hands the page writer one pp_profile.  Several profiles,
 * and `--base OLD NEW`, are merged into that one profile first by the
 * profile merge (cli/profile_merge.h), as mprof top merges them: a diff's
 * values are signed, and the page sizes frames by magnitude.
 *
 * The page is written to a temporary file beside the output and renamed
 * over it, so a reader never sees half a report.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/profile_merge.h"
#include "cli/profile_reader.h"
#include "cli/report_html.h"
#include "cli/timeline.h"
#include "cli/top_report.h"

typedef struct report_args {
    pm_inputs in; /* every profile, and the bases (--base); freed by cmd_report */
    const char *peak;
    const char *output; /* NULL: PROFILE's name with .html */
} report_args;

static int parse_report_args(int argc, char **argv, report_args *a)
{
    *a = (report_args){0};
    if (pm_inputs_init(&a->in, argc) != 0) {
        cli_error("out of memory");
        return CLI_EXIT_FAILURE;
    }
    bool options_done = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *value;
        int m;
        if (options_done || arg[0] != '-' || strcmp(arg, "-") == 0) {
            a->in.paths[a->in.npaths++] = arg;
        } else if (strcmp(arg, "--") == 0) {
            options_done = true;
        } else if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            cli_print_report_usage(stdout);
            exit(CLI_EXIT_OK);
        } else if ((m = cli_option_value(argc, argv, &i, "-o", &value)) != 0 ||
                   (m = cli_option_value(argc, argv, &i, "--output", &value)) != 0) {
            if (m < 0 || value[0] == '\0')
                return cli_usage_error("report", "-o needs the file to write, e.g. -o report.html");
            a->output = value;
        } else if ((m = cli_option_value(argc, argv, &i, "--base", &value)) != 0) {
            if (m < 0 || value[0] == '\0')
                return cli_usage_error("report", "--base needs the profile to subtract, e.g. "
                                                 "mprof report --base old.pb.gz new.pb.gz");
            a->in.bases[a->in.nbases++] = value;
        } else if ((m = cli_option_value(argc, argv, &i, "--peak", &value)) != 0) {
            if (m < 0 || value[0] == '\0')
                return cli_usage_error("report", "--peak needs a peak heap profile "
                                                 "(mprof run --peak FILE writes one)");
            a->peak = value;
        } else {
            return cli_unknown_option("report", arg);
        }
    }
    if (a->in.npaths == 0)
        return cli_usage_error("report", "no profile given: mprof report [-o FILE] PROFILE...");
    return CLI_EXIT_OK;
}

/* Reads the profiles, merged and less the bases (one alone is read as
 * it is), and prepares the result as mprof top does; NULL, said.  path
 * names it in messages. */
static pp_profile *load_profiles(const pm_inputs *in, const char *path)
{
    char err[2048];
    pp_profile *p = pm_inputs_read(in, err, sizeof err);
    if (p == NULL) {
        cli_error("%s", err);
        return NULL;
    }
    if (p->nsample_types == 0) {
        cli_error("%s: the profile has no sample types, so there is nothing to draw; is it a "
                  "pprof profile?",
                  path);
        pp_profile_free(p);
        return NULL;
    }
    if (top_simplify_function_names(p) != 0) {
        cli_error("%s: out of memory", path);
        pp_profile_free(p);
        return NULL;
    }
    if (top_prune_uninteresting(p, err, sizeof err) != 0)
        cli_error("%s: warning: %s", path, err);
    return p;
}

/* PROFILE's name, its .pb.gz (or .pb, .gz) replaced by .html, in the
 * current directory; malloc'd. */
static char *default_output(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = strcmp(path, "-") == 0 ? "profile" : slash ? slash + 1 : path;
    size_t n = strlen(base);
    static const char *const suffixes[] = {".pb.gz", ".pprof", ".pb", ".gz", ".prof"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        size_t s = strlen(suffixes[i]);
        if (n > s && strcmp(base + n - s, suffixes[i]) == 0) {
            n -= s;
            break;
        }
    }
    char *out = NULL;
    return asprintf(&out, "%.*s.html", (int)n, base) < 0 ? NULL : out;
}

static int write_atomically(const char *output, const report_input *in)
{
    char *tmp = NULL;
    if (asprintf(&tmp, "%s.tmp.%ld", output, (long)getpid()) < 0) {
        cli_error("out of memory");
        return CLI_EXIT_FAILURE;
    }
    FILE *f = fopen(tmp, "w");
    if (f == NULL) {
        cli_error("cannot write %s: %s; pick another place with -o FILE", output,
                  strerror(errno));
        free(tmp);
        return CLI_EXIT_FAILURE;
    }
    int rc = report_write_html(f, in);
    int saved = errno;
    if (fclose(f) != 0 && rc == 0) {
        rc = -2;
        saved = errno;
    }
    if (rc == 0 && rename(tmp, output) != 0) {
        rc = -2;
        saved = errno;
    }
    if (rc != 0) {
        unlink(tmp);
        if (rc == -3)
            cli_error("%s: its call tree would take more memory than mprof spends on a profile "
                      "of its size (%d bytes a byte): no profiler writes stacks that dense; if "
                      "the file is genuine, read it with go tool pprof",
                      in->profile_name, PP_MEMORY_PER_BYTE);
        else if (rc == -1)
            cli_error("out of memory building the report of %s", in->profile_name);
        else
            cli_error("cannot write %s: %s; check the space left, or pick another place with -o",
                      output, strerror(saved));
    }
    free(tmp);
    return rc == 0 ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
}

int cmd_report(int argc, char **argv)
{
    report_args a;
    int rc = parse_report_args(argc, argv, &a);
    if (rc != CLI_EXIT_OK) {
        pm_inputs_free(&a.in);
        return rc;
    }
    /* What the page and the messages call the input; the first profile
     * also names the default output. */
    const char *first = a.in.paths[0];
    char name[512];
    if (a.in.npaths == 1 && a.in.nbases == 0)
        snprintf(name, sizeof name, "%s", first);
    else if (a.in.nbases > 0)
        snprintf(name, sizeof name, "%s minus %s%s", first, a.in.bases[0],
                 a.in.npaths + a.in.nbases > 2 ? " (and more)" : "");
    else
        snprintf(name, sizeof name, "%zu profiles merged (%s, ...)", a.in.npaths, first);
    char *output = a.output != NULL ? strdup(a.output) : default_output(first);
    pp_profile *p = output != NULL ? load_profiles(&a.in, name) : NULL;
    pm_inputs peak_in = {.paths = &a.peak, .npaths = 1};
    pp_profile *peak = p != NULL && a.peak != NULL ? load_profiles(&peak_in, a.peak) : NULL;
    pm_inputs_free(&a.in);
    if (output == NULL || p == NULL || (a.peak != NULL && peak == NULL)) {
        if (output == NULL)
            cli_error("out of memory");
        free(output);
        pp_profile_free(p);
        pp_profile_free(peak);
        return CLI_EXIT_FAILURE;
    }
    timeline tl;
    char err[512];
    int has = timeline_find(p, &tl, err, sizeof err);
    if (has < 0)
        cli_error("%s: warning: %s", name, err);
    report_input in = {
        .profile = p,
        .profile_name = name,
        .peak = peak,
        .peak_name = a.peak,
        .timeline = has > 0 ? &tl : NULL,
        .generated_unix = (long long)time(NULL),
    };
    rc = write_atomically(output, &in);
    if (rc == CLI_EXIT_OK)
        fprintf(stderr, "mprof: wrote %s; open it in a browser (it needs no network)\n", output);
    if (has > 0)
        timeline_free(&tl);
    free(output);
    pp_profile_free(p);
    pp_profile_free(peak);
    return rc;
}
