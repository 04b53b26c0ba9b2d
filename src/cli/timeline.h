/*
 * The memory timeline a heap profile carries (written by the library's
 * heap/timeline.c, docs/report.md "The timeline's encoding"): points of
 * (time, estimated bytes in use, estimated objects in use, estimated bytes
 * allocated since start), oldest first, in one comment of the profile:
 *
 *   #mprof-timeline v1 t0=UNIX_NS every=NS n=N T,B,O,A T,B,O,A ...
 *
 * T is milliseconds since t0; B, O and A are decimal integers.  A comment
 * starting with '#' is for tools (mprof top does not print it; pprof shows
 * it as a line of the header), and a comment keeps the file a valid pprof
 * profile: no sample type or value changes.
 *
 * The parse is strict and bounded, the profile being hostile like any
 * input: at most TIMELINE_MAX_POINTS points, every number checked, a
 * malformed comment is an error, not a partial timeline.
 */
#ifndef MPROF_CLI_TIMELINE_H
#define MPROF_CLI_TIMELINE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cli/profile_reader.h"

#define TIMELINE_COMMENT_PREFIX "#mprof-timeline v1 "
/* More than the library ever writes (its ring is at most 65536 points). */
#define TIMELINE_MAX_POINTS 65536

typedef struct timeline_point {
    int64_t t_ms;          /* since t0 */
    int64_t inuse_bytes;   /* estimated */
    int64_t inuse_objects; /* estimated */
    int64_t alloc_bytes;   /* estimated, since start: rate = its slope */
} timeline_point;

typedef struct timeline {
    int64_t t0_unix_ns;
    int64_t every_ns; /* the interval between points when written */
    timeline_point *points;
    size_t npoints;
} timeline;

/* 1 and *out filled (points malloc'd: timeline_free), 0 when the profile
 * has no timeline, -1 with err set when its comment is malformed or
 * memory runs out. */
int timeline_find(const pp_profile *p, timeline *out, char *err, size_t errlen);

void timeline_free(timeline *t);

/* The index of the point of most bytes in use (the first of equals); 0
 * for an empty timeline. */
size_t timeline_peak(const timeline *t);

/* `mprof top --timeline`: a text sparkline of bytes in use over `width`
 * columns, with the peak and the duration, on out. */
void timeline_print_sparkline(FILE *out, const timeline *t, int width);

#endif /* MPROF_CLI_TIMELINE_H */
