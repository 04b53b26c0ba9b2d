/*
 * Fuzz harness: `mprof dump`'s reader (src/cli/cmd_dump.c): decode, print,
 * convert to pprof, and read that conversion back with the pprof reader.
 * Besides never crashing, the round trip must hold: a dump the reader
 * accepts converts into a profile the pprof reader accepts, with one
 * sample per bucket and no negative total (abort() otherwise, which the
 * fuzzer reports as a finding).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cmd_dump.h"
#include "cli/profile_reader.h"

static FILE *sink;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    pp_set_read_limit((size_t)16 << 20);
    sink = fopen("/dev/null", "w");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[1024];
    hd_dump *d = hd_parse(data, size, err, sizeof err);
    if (d == NULL)
        return 0;
    if (sink != NULL)
        hd_print(sink, d);
    uint8_t *pb;
    size_t pblen;
    if (hd_to_pprof(d, &pb, &pblen, err, sizeof err) == 0) {
        pp_profile *p = pp_profile_parse(pb, pblen, err, sizeof err);
        if (p == NULL) {
            fprintf(stderr, "fuzz_dump: the conversion is no valid profile: %s\n", err);
            abort();
        }
        if (p->nsamples != d->nbuckets) {
            fprintf(stderr, "fuzz_dump: %zu buckets became %zu samples\n", d->nbuckets,
                    p->nsamples);
            abort();
        }
        for (size_t k = 0; k < p->nsample_types; k++) {
            int64_t total = 0;
            for (size_t i = 0; i < p->nsamples; i++) {
                int64_t v = p->samples[i].values[k];
                if (v < 0 || total > INT64_MAX - v) {
                    fprintf(stderr, "fuzz_dump: value type %zu: negative or overflowing total\n",
                            k);
                    abort();
                }
                total += v;
            }
        }
        pp_profile_free(p);
        free(pb);
    }
    hd_free(d);
    return 0;
}
