/*
 * The leak check (MPROF_LEAKS; docs/leaks.md): at exit, the scan of
 * heap/leak_scan.h, its report on stderr in LeakSanitizer's shape, and the
 * "leaks" profile kind (leaked_objects, leaked_space, label
 * kind=direct|indirect), which `go tool pprof` and `mprof top` read.
 *
 * Leaked blocks are grouped by allocation site (bucket) and kind; a group
 * is left out of the report, the profile and the exit status when it is
 * smaller than MPROF_LEAKS_MIN_BYTES in total, or when a frame of its
 * stack matches a line of MPROF_LEAKS_SUPPRESSIONS (then counted under
 * "Suppressions used").  The exit status (MPROF_LEAKS_EXITCODE, 23 as
 * LeakSanitizer's) replaces the program's when a normal exit finds any.
 *
 * The scan runs once at exit (the lifecycle row "leak check", before the
 * profile files are written, which then use its result); a write of the
 * kind at any other time (HTTP, mprof_write_profile) runs a scan of its
 * own.  In sampled mode the counts are estimates (each sampled block
 * weighs 1 / P(sampled)) and every leak is direct (leak_scan.h says why).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/options.h"
#include "core/os.h"
#include "encode/pprof.h"
#include "heap/buckets.h"
#include "heap/labels.h"
#include "heap/leak_scan.h"
#include "heap/sampler.h"
#include "profiles/hooks.h"
#include "profiles/registry.h"
#include "shared/pprof_fields.h"
#include "symbolize/symbolize.h"

/* Suppression patterns: at most this many, each at most 255 bytes. */
#define MAX_SUPPRESSIONS 256
#define MAX_SUPPRESSION_LEN 256
/* The suppressions file is read whole up to this size. */
#define MAX_SUPPRESSIONS_FILE (1 << 20)
/* Frames printed per leak (inlined frames included). */
#define MAX_PRINTED_FRAMES 64

struct leak_group {
    const struct mprof_bucket *bucket;
    int indirect;
    uint64_t objects, bytes;   /* as found */
    double wobjects, wbytes;   /* unsampled estimates (equal at rate 1) */
    int suppressed;            /* index + 1 of the matching pattern, 0: none */
};

struct leak_result {
    struct leak_group *g; /* reported first, then suppressed, then too small */
    size_t n, reported;
    uint64_t direct_bytes, direct_objects, indirect_bytes, indirect_objects;
    struct mprof_leak_scan scan; /* the scan's figures (its blocks gone: NULL) */
    int64_t report_ns;
};

static struct {
    char pattern[MAX_SUPPRESSIONS][MAX_SUPPRESSION_LEN];
    uint64_t hits[MAX_SUPPRESSIONS], hit_bytes[MAX_SUPPRESSIONS];
    int n;
} supp;

static struct leak_result exit_result; /* the scan at exit, kept for the files */
static int exit_scanned;
static int exit_found;                 /* leaks reported at exit */

/* ------------------------------------------------------------ suppressions */

/*
 * LeakSanitizer's pattern rule: '*' matches any text, a leading '^' and a
 * trailing '$' anchor, and otherwise a pattern matches anywhere in the
 * text.  Iterative with one backtrack point per '*': linear in practice,
 * and bounded by len(pattern) * len(text).
 */
static int pattern_match(const char *pat, const char *text)
{
    size_t pl = strlen(pat);
    int anchor_start = pl > 0 && pat[0] == '^';
    int anchor_end = pl > 0 && pat[pl - 1] == '$';
    const char *p = pat + anchor_start;
    const char *pend = pat + pl - anchor_end;
    if (p >= pend)
        return 1;
    for (const char *start = text;; start++) {
        const char *t = start, *q = p;
        const char *star = NULL, *star_t = NULL;
        for (;;) {
            if (q < pend && *q == '*') {
                star = ++q;
                star_t = t;
                continue;
            }
            if (q == pend && (!anchor_end || *t == '\0'))
                return 1;
            if (q < pend && *t != '\0' && *q == *t) {
                q++;
                t++;
                continue;
            }
            if (star != NULL && *star_t != '\0') {
                q = star;
                t = ++star_t;
                continue;
            }
            break;
        }
        if (anchor_start || *start == '\0')
            return 0;
    }
}

/* Reads the suppressions file once, at start-up (the program may chdir
 * later).  Bad lines and too many are said once, with the file's name. */
static void load_suppressions(void)
{
    const char *path = mprof_option_text(MPROF_OPT_LEAKS_SUPPRESSIONS);
    if (path == NULL)
        return;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        mprof_warn("cannot read MPROF_LEAKS_SUPPRESSIONS=%s: %s; no leak is suppressed (fix "
                   "the path or unset it)", path, strerror(errno));
        return;
    }
    char *buf = malloc(MAX_SUPPRESSIONS_FILE + 1);
    size_t len = 0;
    ssize_t got = 0;
    while (buf != NULL && len < MAX_SUPPRESSIONS_FILE &&
           (got = read(fd, buf + len, MAX_SUPPRESSIONS_FILE - len)) > 0)
        len += (size_t)got;
    close(fd);
    if (buf == NULL)
        return;
    buf[len] = '\0';
    int too_long = 0, too_many = 0;
    for (char *line = buf; line < buf + len;) {
        char *nl = strchr(line, '\n');
        char *end = nl ? nl : buf + len;
        char *next = nl ? nl + 1 : buf + len;
        while (line < end && (*line == ' ' || *line == '\t'))
            line++;
        while (end > line && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
            end--;
        if (end - line >= 5 && strncmp(line, "leak:", 5) == 0)
            line += 5;
        if (line < end && *line != '#') {
            if (end - line >= MAX_SUPPRESSION_LEN)
                too_long++;
            else if (supp.n == MAX_SUPPRESSIONS)
                too_many++;
            else {
                memcpy(supp.pattern[supp.n], line, (size_t)(end - line));
                supp.pattern[supp.n++][end - line] = '\0';
            }
        }
        line = next;
    }
    free(buf);
    if (too_long || too_many)
        mprof_warn("MPROF_LEAKS_SUPPRESSIONS=%s: %d line(s) of %d bytes or more and %d beyond "
                   "the first %d patterns were skipped; shorten or merge them",
                   path, too_long, MAX_SUPPRESSION_LEN, too_many, MAX_SUPPRESSIONS);
}

/* The first pattern matching a frame of the stack (function, file or
 * library), + 1; 0 when none does. */
static int suppressed_by(mprof_symbolizer *sym, const struct mprof_bucket *b)
{
    if (supp.n == 0 || sym == NULL)
        return 0;
    for (int f = 0; f < b->nstack; f++) {
        mprof_frame frames[16];
        int nf = mprof_sym_lookup(sym, b->stack[f], frames, 16);
        int mi = mprof_sym_find_mapping(sym, b->stack[f]);
        const char *lib = mi >= 0 ? mprof_sym_mapping(sym, mi)->path : NULL;
        for (int k = 0; k < supp.n; k++) {
            for (int i = 0; i < nf; i++)
                if ((frames[i].function && pattern_match(supp.pattern[k], frames[i].function)) ||
                    (frames[i].system_name &&
                     pattern_match(supp.pattern[k], frames[i].system_name)) ||
                    (frames[i].file && pattern_match(supp.pattern[k], frames[i].file)))
                    return k + 1;
            if (lib != NULL && lib[0] != '\0' && pattern_match(supp.pattern[k], lib))
                return k + 1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------ grouping */

static int by_site(const void *a, const void *b)
{
    const struct mprof_leak_block *x = *(const struct mprof_leak_block *const *)a;
    const struct mprof_leak_block *y = *(const struct mprof_leak_block *const *)b;
    if (x->bucket != y->bucket)
        return (uintptr_t)x->bucket < (uintptr_t)y->bucket ? -1 : 1;
    return (x->state > y->state) - (x->state < y->state);
}

/* Reported first, direct before indirect, then the largest first (as
 * LeakSanitizer prints them); then the suppressed, then the small. */
static long group_rank(const struct leak_group *g, long min_bytes)
{
    return g->suppressed ? 2 : (g->wbytes < (double)min_bytes ? 3 : 0);
}

static long min_bytes_setting;

static int by_report_order(const void *a, const void *b)
{
    const struct leak_group *x = a, *y = b;
    long rx = group_rank(x, min_bytes_setting), ry = group_rank(y, min_bytes_setting);
    if (rx != ry)
        return rx < ry ? -1 : 1;
    if (x->indirect != y->indirect)
        return x->indirect - y->indirect;
    if (x->wbytes != y->wbytes)
        return x->wbytes > y->wbytes ? -1 : 1;
    return (x->wobjects < y->wobjects) - (x->wobjects > y->wobjects);
}

/* The scan's leaked blocks as groups (malloc'd; guard held).  0 or -1. */
static int group_leaks(const struct mprof_leak_scan *scan, struct leak_result *r)
{
    *r = (struct leak_result){.scan = *scan};
    r->scan.blocks = NULL;
    size_t nleaked = 0;
    for (size_t i = 0; i < scan->n; i++)
        nleaked += scan->blocks[i].state == MPROF_LEAK_UNSEEN ||
                   scan->blocks[i].state == MPROF_LEAK_INDIRECT;
    if (nleaked == 0)
        return 0;
    const struct mprof_leak_block **v = malloc(nleaked * sizeof *v);
    r->g = malloc(nleaked * sizeof *r->g);
    if (v == NULL || r->g == NULL) {
        free(v);
        free(r->g);
        r->g = NULL;
        errno = ENOMEM;
        return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < scan->n; i++)
        if (scan->blocks[i].state == MPROF_LEAK_UNSEEN ||
            scan->blocks[i].state == MPROF_LEAK_INDIRECT)
            v[k++] = &scan->blocks[i];
    qsort(v, nleaked, sizeof *v, by_site);
    for (size_t i = 0; i < nleaked; i++) {
        const struct mprof_leak_block *b = v[i];
        int indirect = b->state == MPROF_LEAK_INDIRECT;
        struct leak_group *g = r->n ? &r->g[r->n - 1] : NULL;
        if (g == NULL || g->bucket != b->bucket || g->indirect != indirect) {
            g = &r->g[r->n++];
            *g = (struct leak_group){.bucket = b->bucket, .indirect = indirect};
        }
        g->objects++;
        g->bytes += b->size;
        g->wobjects += b->weight;
        g->wbytes += (double)b->weight * (double)b->size;
    }
    free(v);
    mprof_symbolizer *sym = supp.n ? mprof_sym_open() : NULL;
    for (size_t i = 0; i < r->n; i++)
        r->g[i].suppressed = suppressed_by(sym, r->g[i].bucket);
    if (sym != NULL)
        mprof_sym_close(sym);
    min_bytes_setting = mprof_option_long(MPROF_OPT_LEAKS_MIN_BYTES);
    qsort(r->g, r->n, sizeof *r->g, by_report_order);
    for (size_t i = 0; i < r->n; i++) {
        const struct leak_group *g = &r->g[i];
        if (group_rank(g, min_bytes_setting) != 0)
            continue;
        r->reported++;
        uint64_t bytes = (uint64_t)(g->wbytes + 0.5), objects = (uint64_t)(g->wobjects + 0.5);
        if (g->indirect) {
            r->indirect_bytes += bytes;
            r->indirect_objects += objects;
        } else {
            r->direct_bytes += bytes;
            r->direct_objects += objects;
        }
    }
    return 0;
}

/* ------------------------------------------------------------ the report */

struct out {
    char buf[8192];
    size_t len;
};

static void out_flush(struct out *o)
{
    (void)mprof_write_all(2, o->buf, o->len);
    o->len = 0;
}

static void out_printf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_printf(struct out *o, const char *fmt, ...)
{
    if (o->len > sizeof o->buf - 1024)
        out_flush(o);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->len, sizeof o->buf - o->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->len += (size_t)n < sizeof o->buf - o->len ? (size_t)n : sizeof o->buf - o->len - 1;
}

static void print_stack(struct out *o, mprof_symbolizer *sym, const struct mprof_bucket *b)
{
    int printed = 0;
    for (int f = 0; f < b->nstack && printed < MAX_PRINTED_FRAMES; f++) {
        uintptr_t pc = b->stack[f];
        mprof_frame frames[16];
        int nf = sym ? mprof_sym_lookup(sym, pc, frames, 16) : 0;
        int mi = sym ? mprof_sym_find_mapping(sym, pc) : -1;
        const mprof_mapping *m = mi >= 0 ? mprof_sym_mapping(sym, mi) : NULL;
        if (nf == 0) {
            if (m != NULL)
                out_printf(o, "    #%d 0x%lx (%s+0x%lx)\n", printed++, (unsigned long)pc,
                           m->path[0] ? m->path : "?",
                           (unsigned long)(pc - m->start + m->file_offset));
            else
                out_printf(o, "    #%d 0x%lx\n", printed++, (unsigned long)pc);
            continue;
        }
        for (int i = 0; i < nf && printed < MAX_PRINTED_FRAMES; i++) {
            const char *fn = frames[i].function ? frames[i].function : frames[i].system_name;
            if (frames[i].file)
                out_printf(o, "    #%d 0x%lx in %s %s:%d\n", printed++, (unsigned long)pc,
                           fn ? fn : "??", frames[i].file, frames[i].line);
            else
                out_printf(o, "    #%d 0x%lx in %s (%s)\n", printed++, (unsigned long)pc,
                           fn ? fn : "??", m && m->path[0] ? m->path : "?");
        }
    }
}

static void print_report(const struct leak_result *r)
{
    struct out o = {.len = 0};
    if (r->reported == 0) {
        out_printf(&o, "mprof: leak check (%s): no leaks in %zu blocks%s\n",
                   r->scan.sampled ? "sampled" : "full", r->scan.n,
                   r->scan.sampled ? " (sampled blocks that nothing points to)" : "");
    } else {
        out_printf(&o, "=================================================================\n"
                       "mprof: ERROR: leak check (%s): detected memory leaks%s\n",
                   r->scan.sampled ? "sampled" : "full",
                   r->scan.sampled ? " (estimates at the sampling rate; see docs/leaks.md)" : "");
        mprof_symbolizer *sym = mprof_sym_open();
        for (size_t i = 0; i < r->reported; i++) {
            const struct leak_group *g = &r->g[i];
            out_printf(&o, "\n%s leak of %llu byte(s) in %llu object(s) allocated from:\n",
                       g->indirect ? "Indirect" : "Direct",
                       (unsigned long long)(g->wbytes + 0.5),
                       (unsigned long long)(g->wobjects + 0.5));
            print_stack(&o, sym, g->bucket);
        }
        if (sym != NULL)
            mprof_sym_close(sym);
        out_printf(&o, "\nSUMMARY: mprof: %llu byte(s) leaked in %llu allocation(s): "
                       "%llu bytes in %llu blocks direct / %llu bytes in %llu blocks indirect\n",
                   (unsigned long long)(r->direct_bytes + r->indirect_bytes),
                   (unsigned long long)(r->direct_objects + r->indirect_objects),
                   (unsigned long long)r->direct_bytes, (unsigned long long)r->direct_objects,
                   (unsigned long long)r->indirect_bytes, (unsigned long long)r->indirect_objects);
    }
    uint64_t shits[MAX_SUPPRESSIONS] = {0}, sbytes[MAX_SUPPRESSIONS] = {0};
    int any = 0;
    for (size_t i = r->reported; i < r->n; i++) {
        const struct leak_group *g = &r->g[i];
        if (g->suppressed) {
            shits[g->suppressed - 1] += (uint64_t)(g->wobjects + 0.5);
            sbytes[g->suppressed - 1] += (uint64_t)(g->wbytes + 0.5);
            any = 1;
        }
    }
    if (any) {
        out_printf(&o, "-----------------------------------------------------\n"
                       "Suppressions used:\n  count      bytes template\n");
        for (int k = 0; k < supp.n; k++)
            if (shits[k])
                out_printf(&o, "%7llu %10llu %s\n", (unsigned long long)shits[k],
                           (unsigned long long)sbytes[k], supp.pattern[k]);
        out_printf(&o, "-----------------------------------------------------\n");
    }
    out_printf(&o, "mprof: leak check: %zu blocks, %.1f MB read, %d thread(s); listed in %.1f ms, "
                   "scanned in %.1f ms (threads stopped), grouped in %.1f ms\n",
               r->scan.n, (double)r->scan.bytes_read / 1e6, r->scan.threads,
               (double)r->scan.list_ns / 1e6, (double)r->scan.scan_ns / 1e6,
               (double)r->report_ns / 1e6);
    if (r->scan.threads_unstopped > 0)
        out_printf(&o, "mprof: leak check: %d thread(s) did not stop for the scan (blocking its "
                       "signal?): what only their stacks hold may be reported as leaked\n",
                   r->scan.threads_unstopped);
    out_flush(&o);
}

/* ------------------------------------------------------------ scans */

static int scan_now(struct leak_result *r, uintptr_t sp, const uintptr_t *regs)
{
    struct mprof_leak_scan scan;
    /* The full rule needs every block recorded: anything but rate 1 (a
     * write of the kind without MPROF_LEAKS, over HTTP) gets the sampled
     * one, which never calls a block that an unrecorded one points to
     * leaked. */
    int sampled = mprof_leak_mode() == MPROF_LEAKS_SAMPLED || mprof_get_rate() != 1;
    if (mprof_leak_scan_run(&scan, sp, regs, 7, sampled) != 0)
        return -1;
    int64_t t0 = mprof_mono_ns();
    int rc = group_leaks(&scan, r);
    r->report_ns = mprof_mono_ns() - t0;
    mprof_leak_scan_free(&scan);
    return rc;
}

/* The at-exit row: called from the lifecycle's exit writers.  Not inlined,
 * so that its frame, where the scan starts reading this thread's stack,
 * lies above every frame of the scan's own. */
__attribute__((noinline)) void mprof_leaks_at_exit(void)
{
    uintptr_t regs[7];
    MPROF_LEAK_SAVE_REGS(regs);
    if (mprof_leak_mode() == MPROF_LEAKS_OFF)
        return;
    mprof_guard_enter();
    if (scan_now(&exit_result, (uintptr_t)__builtin_frame_address(0), regs) != 0) {
        mprof_warn("leak check: the scan could not run (%s); no leak report", strerror(errno));
    } else {
        exit_scanned = 1;
        print_report(&exit_result);
        exit_found = exit_result.reported > 0;
    }
    mprof_guard_leave();
}

void mprof_leaks_exit_status(void)
{
    long code = mprof_option_long(MPROF_OPT_LEAKS_EXITCODE);
    if (!exit_found || code == 0)
        return;
    /* As LeakSanitizer does: the status says the leaks, whatever the
     * program's was.  The program's buffered output is written first. */
    fflush(NULL);
    _exit((int)code);
}

/* ------------------------------------------------------------ the kind */

static const char *const leak_types[] = {"leaked_objects", "count", "leaked_space", "bytes"};

static int write_result(int fd, const struct leak_result *r)
{
    mprof_pb *pb = mprof_pb_new(leak_types, 2, "space", "bytes", mprof_get_rate());
    if (pb == NULL) {
        errno = ENOMEM;
        return -1;
    }
    mprof_pb_set_drop_frames(pb, MPROF_HEAP_DROP_FRAMES);
    mprof_pb_set_default_sample_type(pb, 1);
    char comment[512];
    snprintf(comment, sizeof comment,
             "mprof %s leaks profile (%s): %llu bytes in %llu blocks direct, %llu bytes in "
             "%llu blocks indirect; %zu blocks scanned, %d threads (%d not stopped)%s",
             MPROF_VERSION, r->scan.sampled ? "sampled" : "full",
             (unsigned long long)r->direct_bytes, (unsigned long long)r->direct_objects,
             (unsigned long long)r->indirect_bytes, (unsigned long long)r->indirect_objects,
             r->scan.n, r->scan.threads, r->scan.threads_unstopped,
             r->scan.sampled ? "; estimates at the sampling rate: sampled blocks nothing points to"
                        : "");
    mprof_pb_add_comment(pb, comment);
    for (size_t i = 0; i < r->reported; i++) {
        const struct leak_group *g = &r->g[i];
        int64_t values[2] = {(int64_t)(g->wobjects + 0.5), (int64_t)(g->wbytes + 0.5)};
        /* The kind, then the site's heap labels (mprof_labels_push): which
         * request's or tenant's memory leaked. */
        mprof_label label[MPROF_LABEL_MAX + 1];
        int nl = 0;
        label[nl++] = (mprof_label){.key = "kind", .str = g->indirect ? "indirect" : "direct"};
        const struct mprof_labelset *set = mprof_labelset_get(g->bucket->labels);
        for (uint32_t k = 0; set != NULL && k < set->n; k++)
            label[nl++] = (mprof_label){.key = set->key[k], .str = set->value[k]};
        mprof_pb_add_sample(pb, g->bucket->stack, g->bucket->nstack, values, label, nl);
    }
    int rc = mprof_pb_write(pb, fd);
    int saved = errno;
    mprof_pb_free(pb);
    errno = saved;
    return rc;
}

__attribute__((noinline)) static int leaks_write(int fd, const mprof_profile_params *params,
                                                 const mprof_profile_base *base)
{
    uintptr_t regs[7];
    MPROF_LEAK_SAVE_REGS(regs);
    (void)params;
    (void)base;
    if (exit_scanned)
        return write_result(fd, &exit_result);
    struct leak_result r;
    if (scan_now(&r, (uintptr_t)__builtin_frame_address(0), regs) != 0)
        return -1;
    int rc = write_result(fd, &r);
    int saved = errno;
    free(r.g);
    errno = saved;
    return rc;
}

static long leaks_count(void) { return exit_scanned ? (long)exit_result.reported : 0; }

static const mprof_profile leaks_profile = {
    .name = "leaks",
    .description = "Blocks nothing reachable points to (a conservative scan as LeakSanitizer's), "
                   "per allocation site, labelled kind=direct|indirect; MPROF_RATE=1 for all",
    .what = "leaks profile",
    .exit_option = MPROF_OPT_LEAKS_PROFILE,
    .count = leaks_count,
    .write = leaks_write,
};

void mprof_leaks_init(void)
{
    (void)mprof_profile_register(&leaks_profile);
    if (mprof_leak_mode() != MPROF_LEAKS_OFF) {
        mprof_leak_scan_init();
        load_suppressions();
    }
}
