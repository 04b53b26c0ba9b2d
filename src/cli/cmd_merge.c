/*
 * mprof merge: several profiles summed into one file (profile_merge.h),
 * the file `go tool pprof -proto A B > OUT` would write; with --base, the
 * difference, as `go tool pprof -proto -diff_base OLD NEW` writes it.
 *
 * The output is written atomically (a temporary file renamed), so that a
 * reader never sees half of it, and only once every input was read and
 * merged: a failure leaves no file behind.
 */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/profile_merge.h"
#include "cli/profile_reader.h"
#include "cli/profile_writer.h"

void cli_print_merge_usage(FILE *out)
{
    fprintf(out,
            "Usage: mprof merge [--base OLD]... PROFILE... -o OUT\n"
            "\n"
            "Sums pprof profiles of one kind (the same sample types: heap with heap, CPU with\n"
            "CPU) into one gzipped pprof profile, as `go tool pprof -proto A B` does: the\n"
            "processes of a build, the workers of a server, several runs.  Functions,\n"
            "locations and mappings are matched by what they are (name, file, line, the\n"
            "address within its library), not by their ids, so profiles of different runs\n"
            "of a program line up.\n"
            "\n"
            "Options:\n");
    cli_print_flags(out, "merge");
}

int cmd_merge(int argc, char **argv)
{
    pm_inputs in;
    const char *output = NULL;
    int rc = CLI_EXIT_USAGE;
    if (pm_inputs_init(&in, argc) != 0) {
        cli_error("out of memory");
        rc = CLI_EXIT_FAILURE;
        goto out;
    }
    bool options_done = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *value;
        int m;
        if (options_done || arg[0] != '-') {
            in.paths[in.npaths++] = arg;
        } else if (strcmp(arg, "--") == 0) {
            options_done = true;
        } else if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            cli_print_merge_usage(stdout);
            rc = CLI_EXIT_OK;
            goto out;
        } else if ((m = cli_option_value(argc, argv, &i, "-o", &value)) != 0 ||
                   (m = cli_option_value(argc, argv, &i, "--output", &value)) != 0) {
            if (m < 0 || value[0] == '\0') {
                cli_usage_error("merge", "-o needs the file to write, e.g. -o merged.pb.gz");
                goto out;
            }
            output = value;
        } else if ((m = cli_option_value(argc, argv, &i, "--base", &value)) != 0) {
            if (m < 0 || value[0] == '\0') {
                cli_usage_error("merge", "--base needs the profile to subtract, e.g. "
                                         "--base old.pb.gz");
                goto out;
            }
            in.bases[in.nbases++] = value;
        } else if (strcmp(arg, "-") == 0) {
            cli_usage_error("merge", "profiles are read from files: give their names, not "
                                     "\"-\"");
            goto out;
        } else {
            cli_unknown_option("merge", arg);
            goto out;
        }
    }
    if (in.npaths == 0) {
        cli_usage_error("merge", "no profiles given: mprof merge A.pb.gz B.pb.gz -o OUT.pb.gz");
        goto out;
    }
    if (output == NULL) {
        cli_usage_error("merge", "where should the merged profile go? add -o OUT.pb.gz "
                                 "(or -o - for standard output)");
        goto out;
    }

    char err[2048];
    rc = CLI_EXIT_FAILURE;
    pp_profile *p = pm_inputs_read(&in, err, sizeof err);
    if (p == NULL) {
        cli_error("%s", err);
        goto out;
    }
    uint8_t *buf;
    size_t len;
    if (pp_profile_encode(p, &buf, &len, err, sizeof err) != 0) {
        cli_error("%s", err);
    } else {
        if (pp_write_output(output, buf, len, err, sizeof err) != 0) {
            cli_error("%s", err);
        } else {
            rc = CLI_EXIT_OK;
            if (strcmp(output, "-") != 0)
                cli_error("wrote %s: %zu profile%s merged%s, %zu samples (view with: mprof "
                          "top %s)",
                          output, in.npaths, in.npaths == 1 ? "" : "s",
                          in.nbases == 0 ? "" : in.nbases == 1 ? ", the base subtracted"
                                                         : ", the bases subtracted",
                          p->nsamples, output);
        }
        free(buf);
    }
    pp_profile_free(p);
out:
    pm_inputs_free(&in);
    return rc;
}
