/*
 * Reading the memory timeline from a heap profile's comment, and its text
 * sparkline (timeline.h has the encoding and the bounds).
 */
#include "cli/timeline.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli/units.h"

/* One decimal int64 at *s (optionally negative), advancing *s; false on
 * anything else or overflow. */
static bool parse_i64(const char **s, int64_t *out)
{
    const char *p = *s;
    bool neg = *p == '-';
    if (neg)
        p++;
    if (*p < '0' || *p > '9')
        return false;
    uint64_t v = 0;
    while (*p >= '0' && *p <= '9') {
        if (v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(*p++ - '0');
    }
    if (v > (uint64_t)INT64_MAX)
        return false;
    *out = neg ? -(int64_t)v : (int64_t)v;
    *s = p;
    return true;
}

static bool parse_field(const char **s, const char *name, int64_t *out)
{
    size_t n = strlen(name);
    if (strncmp(*s, name, n) != 0)
        return false;
    *s += n;
    if (!parse_i64(s, out))
        return false;
    if (**s == ' ')
        (*s)++;
    return true;
}

int timeline_find(const pp_profile *p, timeline *out, char *err, size_t errlen)
{
    *out = (timeline){0};
    const char *c = NULL;
    for (size_t i = 0; i < p->ncomments && c == NULL; i++)
        if (strncmp(p->comments[i], TIMELINE_COMMENT_PREFIX, strlen(TIMELINE_COMMENT_PREFIX)) == 0)
            c = p->comments[i] + strlen(TIMELINE_COMMENT_PREFIX);
    if (c == NULL)
        return 0;
    int64_t n;
    if (!parse_field(&c, "t0=", &out->t0_unix_ns) || !parse_field(&c, "every=", &out->every_ns) ||
        !parse_field(&c, "n=", &n) || n < 0 || n > TIMELINE_MAX_POINTS) {
        snprintf(err, errlen, "its timeline comment has a malformed header (expected '%st0=NS "
                              "every=NS n=N' with N at most %d); the profile's samples are "
                              "fine, only the timeline cannot be drawn",
                 TIMELINE_COMMENT_PREFIX, TIMELINE_MAX_POINTS);
        return -1;
    }
    out->points = n ? malloc((size_t)n * sizeof *out->points) : NULL;
    if (n && out->points == NULL) {
        snprintf(err, errlen, "out of memory reading its timeline");
        return -1;
    }
    for (int64_t i = 0; i < n; i++) {
        timeline_point *pt = &out->points[i];
        if (!parse_i64(&c, &pt->t_ms) || *c++ != ',' || !parse_i64(&c, &pt->inuse_bytes) ||
            *c++ != ',' || !parse_i64(&c, &pt->inuse_objects) || *c++ != ',' ||
            !parse_i64(&c, &pt->alloc_bytes) || (*c != ' ' && *c != '\0') ||
            (i > 0 && pt->t_ms < out->points[i - 1].t_ms)) {
            snprintf(err, errlen, "its timeline comment's point %" PRId64 " of %" PRId64
                                  " is malformed (expected T,B,O,A with T not decreasing); the "
                                  "profile's samples are fine, only the timeline cannot be drawn",
                     i + 1, n);
            timeline_free(out);
            return -1;
        }
        if (*c == ' ')
            c++;
    }
    if (*c != '\0') {
        snprintf(err, errlen, "its timeline comment has more than the %" PRId64
                              " points it announces; the profile's samples are fine, only the "
                              "timeline cannot be drawn",
                 n);
        timeline_free(out);
        return -1;
    }
    out->npoints = (size_t)n;
    return 1;
}

void timeline_free(timeline *t)
{
    free(t->points);
    *t = (timeline){0};
}

size_t timeline_peak(const timeline *t)
{
    size_t best = 0;
    for (size_t i = 1; i < t->npoints; i++)
        if (t->points[i].inuse_bytes > t->points[best].inuse_bytes)
            best = i;
    return best;
}

void timeline_print_sparkline(FILE *out, const timeline *t, int width)
{
    /* Eight heights of U+2581..U+2588, as spark(1) draws them. */
    static const char *const bars[8] = {"\u2581", "\u2582", "\u2583", "\u2584",
                                        "\u2585", "\u2586", "\u2587", "\u2588"};
    if (t->npoints == 0) {
        fprintf(out, "Timeline: no points (the profile was written before the first)\n");
        return;
    }
    if (width < 1)
        width = 1;
    size_t cols = t->npoints < (size_t)width ? t->npoints : (size_t)width;
    size_t peak = timeline_peak(t);
    int64_t max = t->points[peak].inuse_bytes;
    char a[64], b[64], d[64];
    units_label(a, sizeof a, max, "bytes", "auto");
    units_label(b, sizeof b, t->points[t->npoints - 1].inuse_bytes, "bytes", "auto");
    units_label(d, sizeof d, t->points[t->npoints - 1].t_ms * 1000000, "nanoseconds", "auto");
    fprintf(out, "Timeline: %zu points over %s, in use at the end %s, peak %s at +%.3fs\n",
            t->npoints, d, b, a, (double)t->points[peak].t_ms / 1000.0);
    /* Each column shows the largest point of its share of the points, so
     * a narrow peak is never averaged away. */
    for (size_t col = 0; col < cols; col++) {
        size_t from = col * t->npoints / cols, to = (col + 1) * t->npoints / cols;
        int64_t v = 0;
        for (size_t i = from; i < to; i++)
            if (t->points[i].inuse_bytes > v)
                v = t->points[i].inuse_bytes;
        int h = max > 0 && v > 0 ? (int)((double)v / (double)max * 7.0 + 0.5) : 0;
        fputs(bars[h < 0 ? 0 : h > 7 ? 7 : h], out);
    }
    fputc('\n', out);
}
