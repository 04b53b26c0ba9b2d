/*
 * Writing pprof profiles from the CLI: the inverse of profile_reader.h.
 *
 * The CLI does not link the library's encoder (src/encode/, which builds
 * profiles from raw samples and symbolizes them); it writes what it has
 * already decoded, merged or converted, with the one protobuf wire encoder
 * of shared/bytebuf.h.  Any pp_profile can be written: one the reader
 * decoded, one profile_merge.h built, one assembled by hand.  Ids in the
 * output are positions (a location's id is its index in
 * pp_profile.locations + 1), so the pointers are what counts, not the ids
 * the records carry.
 */
#ifndef MPROF_CLI_PROFILE_WRITER_H
#define MPROF_CLI_PROFILE_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "cli/profile_reader.h"

/*
 * Encodes p as a gzipped pprof profile (profile.proto), which go tool
 * pprof, pprof-format and mprof top read.  0 and a malloc'd buffer, or -1
 * with err set (out of memory: the only way it fails).
 */
int pp_profile_encode(const pp_profile *p, uint8_t **out, size_t *outlen, char *err,
                      size_t errlen);

/* Compresses data as one gzip member (the files mprof writes: merge, dump
 * --pprof, report's page): 0 and a malloc'd buffer, or -1 when out of
 * memory or over 4 GiB. */
int pp_gzip(const uint8_t *in, size_t inlen, uint8_t **out, size_t *outlen);

/*
 * Writes buf to path through a temporary file beside it and a rename, so
 * that a reader never sees half a profile; "-" is standard output.  0, or
 * -1 with err set ("cannot write ...: No space left on device"), and no
 * file left behind.
 */
int pp_write_output(const char *path, const uint8_t *buf, size_t len, char *err, size_t errlen);

#endif /* MPROF_CLI_PROFILE_WRITER_H */
