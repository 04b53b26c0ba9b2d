/*
 * The processes of one run: which of them are profiled (MPROF_ONLY,
 * MPROF_ONLY_TOP), and the one line that says what they all wrote.
 *
 * Selection.  A build, a test suite or a shim (pyenv's python3 is a bash
 * script) starts many programs from the one mprof was asked to profile;
 * every one of them loads the library, since LD_PRELOAD and the MPROF_*
 * settings pass to every child.  MPROF_ONLY_TOP=1 keeps only the top
 * process: the one whose pid is the tree's root pid (MPROF_ROOT_PID, set
 * by the first profiled process), which includes every program it execs
 * in place of itself (a shim's final `exec python3`).  MPROF_ONLY=NAME,...
 * keeps only the processes whose program is one of the names: the base
 * name of /proc/self/exe, of argv[0], or the kernel's comm, equal to NAME
 * or to NAME followed by a version (python3 matches python3.11, which is
 * what /usr/bin/python3 resolves to).  A process left out runs with the
 * library loaded but idle (runtime/lifecycle.c runs only the rows every
 * process needs): no profile, no thread, no signal handler, heap sampling
 * off (one counter decrement per allocation, and a slow-path visit per 16
 * MiB); its environment still carries the settings to its children.
 *
 * The summary.  `mprof run` creates an empty run log (MPROF_RUN_LOG: a
 * file in $TMPDIR, unlinked at once and left open for the program to
 * inherit, so that nothing is ever left behind) before it execs the
 * program.  Every process of the tree appends one line per file it writes
 * ("what\tpid\tpath") instead of printing its own "wrote" line; the root,
 * at its exit, reads the log, marks it summarized, and prints one line for
 * all of them.  The log is read and marked under flock(LOCK_EX), and
 * appended to under the same lock after checking the mark: a process that
 * outlives the root (a daemon) finds it marked and prints its own line, as
 * does one whose program closed the inherited descriptor (Python's
 * subprocess does), so no file goes unannounced.  A root that leaves
 * through _exit (dash, at the end of every script) runs the summary from
 * interpose/exit.c; one killed outright (SIGKILL) prints none.
 *
 * Without MPROF_RUN_LOG (the library preloaded by hand, or the log could
 * not be created) every process prints its own line, as always.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "core/options.h"

static int selected = 1; /* set once, by mprof_run_tree_select, before any thread */

static const char *base_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* name is want, or want followed by a version: digits and dots. */
static int name_matches(const char *name, const char *want, size_t want_len)
{
    if (want_len == 0 || strncmp(name, want, want_len) != 0)
        return 0;
    for (const char *c = name + want_len; *c; c++)
        if (!(*c >= '0' && *c <= '9') && *c != '.')
            return 0;
    return 1;
}

/* Whether one of the comma-separated names of list names this program. */
static int program_matches(const char *list)
{
    char exe[4096], cmdline[4096], comm[64];
    const char *names[3];
    int n = 0;
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) {
        exe[len] = '\0';
        names[n++] = base_of(exe);
    }
    if (mprof_read_small_file("/proc/self/cmdline", cmdline, sizeof cmdline) > 0)
        names[n++] = base_of(cmdline); /* argv[0]: up to its NUL */
    if (mprof_read_small_file("/proc/self/comm", comm, sizeof comm) > 0) {
        comm[strcspn(comm, "\n")] = '\0';
        names[n++] = comm;
    }
    for (const char *w = list; *w;) {
        size_t wl = strcspn(w, ",");
        for (int i = 0; i < n; i++)
            if (name_matches(names[i], w, wl))
                return 1;
        w += wl;
        if (*w == ',')
            w++;
    }
    return 0;
}

void mprof_run_tree_select(void)
{
    long root = mprof_option_long(MPROF_OPT_ROOT_PID);
    int is_top = root <= 0 || root == (long)getpid();
    if (mprof_option_long(MPROF_OPT_ONLY_TOP) && !is_top)
        selected = 0;
    const char *only = mprof_option_text(MPROF_OPT_ONLY);
    if (selected && only != NULL && only[0] != '\0' && !program_matches(only))
        selected = 0;
}

int mprof_run_tree_selected(void) { return selected; }

/* ------------------------------------------------------------- the log */

/*
 * The run log: a file without a name (mprof run unlinks it at once), open
 * on descriptor FD in every process that inherited it, and named in
 * MPROF_RUN_LOG as "FD:DEV:INO".  A process checks that its FD is still
 * that file (a program may have closed it and opened another there: then
 * the log is not ours to write) and opens it anew through /proc, for an
 * open file description of its own: flock locks belong to descriptions,
 * and the inherited one is shared by the whole tree.  The root marks the
 * log summarized by taking its permissions away (fchmod 0: the file has
 * no name, so its mode means nothing else).  Returns the new descriptor,
 * locked, or -1: no log, or summarized (print the line yourself).
 */
static int open_log_locked(void)
{
    const char *log = mprof_option_text(MPROF_OPT_RUN_LOG);
    unsigned long long fd_in, dev, ino;
    if (log == NULL || sscanf(log, "%llu:%llu:%llu", &fd_in, &dev, &ino) != 3 ||
        fd_in > 1u << 20)
        return -1;
    struct stat st;
    if (fstat((int)fd_in, &st) != 0 || !S_ISREG(st.st_mode) || st.st_dev != (dev_t)dev ||
        st.st_ino != (ino_t)ino || st.st_nlink != 0)
        return -1;
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%llu", fd_in);
    int fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC);
    if (fd < 0)
        return -1; /* EACCES once summarized (fchmod 0), or no /proc */
    while (flock(fd, LOCK_EX) != 0 && errno == EINTR) {
    }
    if (fstat(fd, &st) != 0 || st.st_ino != (ino_t)ino || (st.st_mode & 0777) == 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int mprof_run_tree_log_written(const char *what, const char *path)
{
    if (strchr(what, '\t') != NULL || strchr(path, '\n') != NULL || strchr(path, '\t') != NULL)
        return 0; /* a line of its own, then: the log's fields would not parse */
    int fd = open_log_locked();
    if (fd < 0)
        return 0;
    char line[4200];
    int n = snprintf(line, sizeof line, "%s\t%d\t%s\n", what, (int)getpid(), path);
    int ok = n > 0 && (size_t)n < sizeof line && mprof_write_all(fd, line, (size_t)n) == 0;
    close(fd); /* unlocks */
    return ok;
}

/* ---------------------------------------------------------- the summary */

#define MAX_KINDS 8
#define MAX_PIDS_SHOWN 8

typedef struct kind_summary {
    char what[64];
    int count;
    char first[4096];   /* the first file of the kind */
    size_t prefix_len;  /* common to every file of the kind */
    size_t suffix_len;
    char pids[MAX_PIDS_SHOWN * 12];
} kind_summary;

/* Shrinks the common prefix and suffix of k's files to fit path. */
static void common_parts(kind_summary *k, const char *path)
{
    size_t len = strlen(path), first_len = strlen(k->first);
    size_t p = 0;
    while (p < k->prefix_len && p < len && path[p] == k->first[p])
        p++;
    k->prefix_len = p;
    size_t s = 0;
    while (s < k->suffix_len && s < len - p && s < first_len - p &&
           path[len - 1 - s] == k->first[first_len - 1 - s])
        s++;
    k->suffix_len = s;
}

static void add_record(kind_summary *kinds, int *nkinds, char *line)
{
    char *tab1 = strchr(line, '\t');
    char *tab2 = tab1 ? strchr(tab1 + 1, '\t') : NULL;
    if (tab2 == NULL)
        return;
    *tab1 = *tab2 = '\0';
    const char *what = line, *pid = tab1 + 1, *path = tab2 + 1;
    kind_summary *k = NULL;
    for (int i = 0; i < *nkinds && k == NULL; i++)
        if (strcmp(kinds[i].what, what) == 0)
            k = &kinds[i];
    if (k == NULL) {
        if (*nkinds == MAX_KINDS)
            return;
        k = &kinds[(*nkinds)++];
        memset(k, 0, sizeof *k);
        snprintf(k->what, sizeof k->what, "%.*s", (int)sizeof k->what - 1, what);
        snprintf(k->first, sizeof k->first, "%.*s", (int)sizeof k->first - 1, path);
        k->prefix_len = k->suffix_len = strlen(k->first);
    } else {
        common_parts(k, path);
    }
    if (k->count < MAX_PIDS_SHOWN) {
        size_t used = strlen(k->pids);
        snprintf(k->pids + used, sizeof k->pids - used, "%s%s", used ? " " : "", pid);
    }
    k->count++;
}

/* "12 heap profiles in DIR (pids 1 2 3 ...): mprof top DIR/x.pb.gz, or
 * all merged: mprof top 'DIR/mprof.heap.*.pb.gz'" */
static size_t describe_kind(char *out, size_t len, const kind_summary *k)
{
    char dir[4096];
    size_t dlen = strlen(k->first);
    const char *slash = strrchr(k->first, '/');
    if (slash != NULL && (size_t)(slash - k->first) <= k->prefix_len)
        dlen = (size_t)(slash - k->first);
    else
        dlen = 0;
    snprintf(dir, sizeof dir, "%.*s", (int)dlen, k->first);
    size_t first_len = strlen(k->first);
    /* The files differ by pid: the glob's star takes every digit around
     * the part they differ in ("mprof.heap.*.pb.gz", not ".30*."). */
    size_t prefix = k->prefix_len, suffix = k->suffix_len;
    while (k->count > 1 && prefix > 0 && k->first[prefix - 1] >= '0' && k->first[prefix - 1] <= '9')
        prefix--;
    while (k->count > 1 && suffix > 0 && k->first[first_len - suffix] >= '0' &&
           k->first[first_len - suffix] <= '9')
        suffix--;
    if (k->count == 1) {
        int one = snprintf(out, len, "%s %s (pid %s; view: mprof top %s)", k->what, k->first,
                           k->pids, k->first);
        return one < 0 ? 0 : (size_t)one < len ? (size_t)one : len - 1;
    }
    int n = snprintf(out, len, "%d %ss in %s (pid%s %s%s); view one: mprof top %s, all merged: "
                               "mprof top %.*s*%s",
                     k->count, k->what, dlen ? dir : ".", k->count > 1 ? "s" : "", k->pids,
                     k->count > MAX_PIDS_SHOWN ? " ..." : "", k->first, (int)prefix, k->first,
                     k->first + first_len - suffix);
    return n < 0 ? 0 : (size_t)n < len ? (size_t)n : len - 1;
}

void mprof_run_tree_at_exit(void)
{
    /* The root alone summarizes: the others' lines wait for it. */
    if (!mprof_output_is_root())
        return;
    int fd = open_log_locked();
    if (fd < 0)
        return;
    mprof_guard_enter();
    /* Read in chunks, whole lines parsed, the rest carried over: a log of
     * any length costs this buffer (the root's exit: one thread, once). */
    static char text[1 << 16];
    static kind_summary kinds[MAX_KINDS];
    int nkinds = 0, records = 0;
    size_t have = 0;
    off_t off = 0;
    for (;;) {
        ssize_t n = pread(fd, text + have, sizeof text - 1 - have, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += n;
        have += (size_t)n;
        text[have] = '\0';
        char *line = text;
        for (char *end; (end = strchr(line, '\n')) != NULL; line = end + 1) {
            *end = '\0';
            records++;
            add_record(kinds, &nkinds, line);
        }
        have -= (size_t)(line - text);
        if (have == sizeof text - 1)
            have = 0; /* a line longer than the buffer: not one we wrote */
        memmove(text, line, have);
    }
    /* Summarized: writers that come later print their own line. */
    (void)fchmod(fd, 0);
    close(fd);

    if (records == nkinds) {
        /* One file of each kind (one process wrote them, or each kind came
         * from another): the lines a process alone prints, one a file. */
        for (int i = 0; i < nkinds; i++)
            mprof_announce_line(kinds[i].what, kinds[i].first);
    } else if (records > 1) {
        char msg[1000];
        size_t used = 0;
        for (int i = 0; i < nkinds && used < sizeof msg - 1; i++) {
            if (i > 0)
                used += (size_t)snprintf(msg + used, sizeof msg - used, "; ");
            if (used < sizeof msg - 1)
                used += describe_kind(msg + used, sizeof msg - used, &kinds[i]);
        }
        mprof_warn("%s", msg);
    }
    mprof_guard_leave();
}
