/*
 * profiles: the parsing behind MPROF_SIGNAL and the numbered file names of
 * snapshots.c, pure functions exposed for their unit tests.
 */
#ifndef MPROF_PROFILES_SNAPSHOTS_H
#define MPROF_PROFILES_SNAPSHOTS_H

#include <stddef.h>

#include "core/core.h"

/*
 * Parses MPROF_SIGNAL: a name with or without "SIG" ("SIGUSR2", "usr2"),
 * "SIGRTMIN+N" / "RTMIN+N", or a number.  Refuses signals that cannot be
 * caught, that report faults, and SIGPROF (the CPU profiler's).  Returns the
 * signal number or -1.
 */
MPROF_HIDDEN int mprof_parse_signal(const char *text);

/*
 * Builds the name of snapshot number seq from an exit-file pattern: "%p"
 * expanded, a trailing suffix (".pb.gz" for pprof kinds, "" for the heap
 * dump) removed, then ".NNNN" and the suffix appended (at least four
 * digits).  "mprof.heap.%p" -> "mprof.heap.1234.0001.pb.gz",
 * "/tmp/srv.pb.gz" -> "/tmp/srv.0001.pb.gz".  0 or -1 (name too long).
 */
MPROF_HIDDEN int mprof_snapshot_path(const char *pattern, unsigned seq, const char *suffix,
                                     char *out, size_t outlen);

#endif /* MPROF_PROFILES_SNAPSHOTS_H */
