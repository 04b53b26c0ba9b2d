/*
 * The program `mprof report` is tested on (report_browser.sh): its memory
 * rises to a known peak and falls, and one function holds most of it, so
 * that the page must draw that function's frame, a search must find it,
 * and the heap's timeline must show a rise and a fall.
 *
 *   report_target [MS]   runs about MS milliseconds (default 600)
 *
 * report_hot_site: allocates the blocks kept until the peak (80% of the
 * bytes); report_cold_site: the rest.  noinline and a volatile sink keep
 * both as frames of their own at -O2.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void *volatile sink;

__attribute__((noinline)) void *report_hot_site(size_t n)
{
    void *p = malloc(n);
    memset(p, 1, n);
    sink = p;
    return p;
}

__attribute__((noinline)) void *report_cold_site(size_t n)
{
    void *p = malloc(n);
    memset(p, 2, n);
    sink = p;
    return p;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

#define BLOCKS 4000

int main(int argc, char **argv)
{
    double ms = argc > 1 ? atof(argv[1]) : 600;
    static void *hot[BLOCKS], *cold[BLOCKS];
    double start = now_ms();
    /* Up for the first half, a block at a time, then down again. */
    for (int i = 0; i < BLOCKS; i++) {
        hot[i] = report_hot_site(4096);
        cold[i] = report_cold_site(1024);
        while (now_ms() - start < ms / 2 * (i + 1) / BLOCKS) {
        }
    }
    for (int i = 0; i < BLOCKS; i++) {
        free(hot[i]);
        free(cold[i]);
        while (now_ms() - start < ms / 2 + ms / 2 * (i + 1) / BLOCKS) {
        }
    }
    /* What the heap profile at exit still holds: the hot site again. */
    for (int i = 0; i < BLOCKS / 4; i++)
        hot[i] = report_hot_site(4096);
    return 0;
}
