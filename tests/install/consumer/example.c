/*
 * A program built against an installed (or add_subdirectory'd) mprof, as a
 * user's would be: it includes <mprof.h>, records every allocation and
 * writes its heap profile through the API.  What it keeps is known, so the
 * test can check the profile: 200 blocks of 64 KiB from consumer_keep().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mprof.h>

enum { BLOCKS = 200, BLOCK_SIZE = 64 * 1024 };
static char *kept[BLOCKS];

/* noinline: the site the profile must name. */
__attribute__((noinline)) static void consumer_keep(int i)
{
    kept[i] = malloc(BLOCK_SIZE);
    memset(kept[i], i, BLOCK_SIZE); /* used, so it is not optimized away */
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s PROFILE\n", argv[0]);
        return 2;
    }
    mprof_set_rate(1);
    for (int i = 0; i < BLOCKS; i++)
        consumer_keep(i);
    long sum = 0;
    for (int i = 0; i < BLOCKS; i++)
        sum += kept[i][i];
    int rc = mprof_write_profile("heap", argv[1]);
    const char *version = NULL;
    mprof_version(&version);
    printf("mprof %s, kept %d bytes (checksum %ld), write_profile: %d\n", version,
           BLOCKS * BLOCK_SIZE, sum, rc);
    return rc == 0 ? 0 : 1;
}
