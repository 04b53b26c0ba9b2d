/*
 * The memory timeline's ring (heap/timeline.h), driven directly: points
 * are taken as due, bounded by the ring, decimated to the larger point of
 * each pair with the interval doubled, so that a long run keeps its span
 * and its peak; off at 0.  Run with MPROF_RATE=0, so that no sampled
 * allocation of the test's own adds a point.
 */
#include <stdint.h>
#include <time.h>

#include "core/os.h"
#include "core_test.h"
#include "heap/timeline.h"

#define FIRST_EVERY_NS 10000000LL /* timeline.c's first interval */

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int main(void)
{
    static mprof_timeline_point pts[1024];
    int64_t every, t0_wall, t0_mono;

    /* Off: nothing kept, nothing copied. */
    mprof_timeline_init(0);
    CHECK(mprof_timeline_capacity() == 0);
    mprof_timeline_note(1, 1, 1, 1);
    CHECK(mprof_timeline_copy(pts, 1024, &every, &t0_wall, &t0_mono) == 0);

    /* A ring of 8: 100 forced points, bytes rising by 1 with one spike. */
    mprof_timeline_init(8);
    CHECK(mprof_timeline_capacity() == 8);
    for (int i = 0; i < 100; i++)
        mprof_timeline_note(i == 37 ? 1000000 : i, i, 10 * i, 1);
    size_t n = mprof_timeline_copy(pts, 1024, &every, &t0_wall, &t0_mono);
    CHECK(n > 4 && n <= 8, "%zu points kept in a ring of 8", n);
    int64_t max = 0;
    for (size_t i = 0; i < n; i++) {
        if (pts[i].inuse_bytes > max)
            max = pts[i].inuse_bytes;
        if (i > 0)
            CHECK(pts[i].mono_ns >= pts[i - 1].mono_ns, "point %zu before point %zu", i, i - 1);
        CHECK(pts[i].mono_ns >= t0_mono);
    }
    CHECK(max == 1000000, "the spike was decimated away: largest %lld", (long long)max);
    /* 100 points through a ring of 8: at least 12 halvings... of the
     * interval, each doubling it (8 -> 4 per halving, 4 new per round). */
    CHECK(every >= FIRST_EVERY_NS << 10, "interval %lld after 100 points in 8",
          (long long)every);
    CHECK(pts[n - 1].inuse_bytes == 99 && pts[n - 1].alloc_bytes == 990,
          "the last point is not the newest: %lld", (long long)pts[n - 1].inuse_bytes);
    CHECK(t0_wall > 1600000000LL * 1000000000LL, "t0 is not a wall-clock time");

    /* Not forced: a point only when due, once per interval.  100,000
     * notes in a loop keep at most one point per 10 ms the loop took (the
     * bound follows the time measured, so a slow machine cannot fail it). */
    mprof_timeline_init(1024);
    int64_t start = mprof_mono_ns();
    for (int i = 0; i < 100000; i++)
        mprof_timeline_note(i, i, i, 0);
    int64_t elapsed = mprof_mono_ns() - start;
    n = mprof_timeline_copy(pts, 1024, &every, &t0_wall, &t0_mono);
    CHECK(n >= 1 && (int64_t)n <= 2 + elapsed / FIRST_EVERY_NS,
          "%zu points from notes over %lld ns", n, (long long)elapsed);
    CHECK(pts[0].inuse_bytes == 0, "the first note, due at start, is not the first point");
    CHECK(every == FIRST_EVERY_NS);
    sleep_ms(15);
    mprof_timeline_note(-7, 7, 7, 0);
    size_t n2 = mprof_timeline_copy(pts, 1024, &every, &t0_wall, &t0_mono);
    CHECK(n2 == n + 1 && pts[n2 - 1].inuse_bytes == -7, "%zu points after the interval, want %zu",
          n2, n + 1);

    /* A copy into less room gets the newest points. */
    n = mprof_timeline_copy(pts, 1, &every, &t0_wall, &t0_mono);
    CHECK(n == 1 && pts[0].inuse_bytes == -7);
    return check_result("timeline");
}
