/*
 * Numbered profile files without HTTP, for programs that cannot open a port:
 *
 *   MPROF_SIGNAL=SIGUSR2   each delivery of the signal writes the profiles
 *   MPROF_INTERVAL=60      the profiles every 60 seconds
 *
 * What is written comes from the profile registry: every kind whose exit
 * option names a file (MPROF_HEAP, MPROF_BLOCK, MPROF_HEAPDUMP, ...) gets a
 * numbered file beside it, and the heap profile alone, named after
 * "mprof.heap.%p", when none does: mprof.heap.1234.0001.pb.gz, .0002, ...
 * in the order written, one sequence for both triggers.  A relative pattern
 * is resolved against the directory the program started in, so that a
 * program that changes directory (daemons chdir to /) still writes where it
 * was asked to.
 *
 * The signal handler only writes one byte into a nonblocking pipe, which is
 * async-signal-safe and never blocks (a full pipe means a snapshot is
 * pending anyway: signals that arrive while one is written are coalesced).
 * A thread of ours (signals blocked, profiler guard held) waits on the pipe
 * with a timeout for the interval, and writes each file atomically: a
 * reader never sees a half-written file.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/options.h"
#include "core/os.h"
#include "interpose/threads.h"
#include "profiles/hooks.h"
#include "profiles/snapshots.h"

/* ------------------------------------------------------------- parsing */

static const struct {
    const char *name;
    int signo;
} signal_names[] = {
    {"HUP", SIGHUP},     {"INT", SIGINT},       {"QUIT", SIGQUIT},   {"ILL", SIGILL},
    {"TRAP", SIGTRAP},   {"ABRT", SIGABRT},     {"IOT", SIGIOT},     {"BUS", SIGBUS},
    {"FPE", SIGFPE},     {"KILL", SIGKILL},     {"USR1", SIGUSR1},   {"SEGV", SIGSEGV},
    {"USR2", SIGUSR2},   {"PIPE", SIGPIPE},     {"ALRM", SIGALRM},   {"TERM", SIGTERM},
    {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD},   {"CONT", SIGCONT},   {"STOP", SIGSTOP},
    {"TSTP", SIGTSTP},   {"TTIN", SIGTTIN},     {"TTOU", SIGTTOU},   {"URG", SIGURG},
    {"XCPU", SIGXCPU},   {"XFSZ", SIGXFSZ},     {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF},
    {"WINCH", SIGWINCH}, {"IO", SIGIO},         {"POLL", SIGPOLL},   {"PWR", SIGPWR},
    {"SYS", SIGSYS},
};

/* Signals a dump trigger must not take: uncatchable ones, the ones the
 * kernel sends for faults (a handler that returns would loop on the fault),
 * and SIGPROF, which the CPU profiler owns. */
static int signal_refused(int signo)
{
    switch (signo) {
    case SIGKILL: case SIGSTOP: case SIGSEGV: case SIGBUS: case SIGFPE: case SIGILL:
    case SIGTRAP: case SIGSYS: case SIGABRT: case SIGPROF:
        return 1;
    default:
        return 0;
    }
}

static int parse_small_int(const char *text, int *out)
{
    if (*text == '\0' || strlen(text) > 3)
        return -1;
    int v = 0;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
    }
    *out = v;
    return 0;
}

int mprof_parse_signal(const char *text)
{
    if (text == NULL)
        return -1;
    int signo = -1, n;
    if (parse_small_int(text, &n) == 0) {
        signo = n;
    } else {
        const char *name = strncasecmp(text, "SIG", 3) == 0 ? text + 3 : text;
        if (strncasecmp(name, "RTMIN", 5) == 0) {
            if (name[5] == '\0')
                signo = SIGRTMIN;
            else if (name[5] == '+' && parse_small_int(name + 6, &n) == 0)
                signo = SIGRTMIN + n;
        } else if (strncasecmp(name, "RTMAX", 5) == 0) {
            if (name[5] == '\0')
                signo = SIGRTMAX;
            else if (name[5] == '-' && parse_small_int(name + 6, &n) == 0)
                signo = SIGRTMAX - n;
        } else {
            for (size_t i = 0; i < sizeof signal_names / sizeof signal_names[0]; i++)
                if (strcasecmp(name, signal_names[i].name) == 0)
                    signo = signal_names[i].signo;
        }
    }
    /* 32 and 33 are glibc's own real-time signals (thread cancellation,
     * setxid): below SIGRTMIN and not in the name table, so refused here. */
    if (signo < 1 || signo > SIGRTMAX || signal_refused(signo) ||
        (signo >= 32 && signo < SIGRTMIN))
        return -1;
    return signo;
}

int mprof_snapshot_path(const char *pattern, unsigned seq, const char *suffix, char *out,
                        size_t outlen)
{
    if (mprof_expand_path(pattern, out, outlen) != 0)
        return -1;
    size_t len = strlen(out);
    const size_t suffix_len = strlen(suffix);
    if (suffix_len > 0 && len > suffix_len && strcmp(out + len - suffix_len, suffix) == 0)
        len -= suffix_len;
    int n = snprintf(out + len, outlen - len, ".%04u%s", seq, suffix);
    if (n < 0 || (size_t)n >= outlen - len) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

/* --------------------------------------------------------------- state */

/* Write end of the wake-up pipe, read by the signal handler: -1 when there
 * is no snapshot thread to wake (not configured, stopped, or a forked
 * child). */
static _Atomic int wake_write_fd = -1;
static int wake_read_fd = -1;

/* One kind written on each trigger, with its absolute pattern. */
struct target {
    const mprof_profile *kind;
    char pattern[PATH_MAX];
    int failing; /* last write failed; warned already */
};

static struct {
    int running;
    pthread_t thread;
    int signo;                 /* 0: no signal trigger */
    long interval_s;           /* 0: no interval trigger */
    struct target targets[MPROF_MAX_PROFILES];
    int ntargets;
    unsigned seq;
} snaps;

static _Atomic int stop_requested;

static void snapshot_signal_handler(int signo)
{
    (void)signo;
    int saved_errno = errno;
    int fd = atomic_load_explicit(&wake_write_fd, memory_order_relaxed);
    if (fd >= 0) {
        char byte = 's';
        ssize_t ignored = write(fd, &byte, 1);
        (void)ignored;
    }
    errno = saved_errno;
}

static void signal_label(int signo, char *out, size_t len)
{
    for (size_t i = 0; i < sizeof signal_names / sizeof signal_names[0]; i++) {
        if (signal_names[i].signo == signo) {
            snprintf(out, len, "SIG%s", signal_names[i].name);
            return;
        }
    }
    snprintf(out, len, "SIGRTMIN+%d", signo - SIGRTMIN);
}

static void write_target(struct target *t, unsigned seq, const char *reason)
{
    const char *what = mprof_profile_what(t->kind);
    const char *suffix = (t->kind->flags & MPROF_PROFILE_HEAP_DUMP) ? "" : ".pb.gz";
    char path[PATH_MAX];
    if (mprof_snapshot_path(t->pattern, seq, suffix, path, sizeof path) != 0) {
        if (!t->failing)
            mprof_warn("%s not written: file name from \"%s\" too long", what, t->pattern);
        t->failing = 1;
        return;
    }
    if (mprof_profile_write_file(t->kind, path) != 0) {
        /* Once, not at every interval: a missing directory would otherwise
         * fill the program's stderr. */
        int err = errno;
        if (!t->failing) {
            char advice[160];
            mprof_write_advice(err, mprof_option_name(t->kind->exit_option), advice,
                               sizeof advice);
            mprof_warn("cannot write %s %s: %s (%s; further failures are not reported)", what,
                       path, strerror(err), advice);
        }
        t->failing = 1;
        return;
    }
    t->failing = 0;
    /* What it is (a heap profile, not a "dump", unless it is the heap
     * dump kind), why now, and the command that reads it. */
    mprof_warn("wrote %s %s (%s; %s %s)", what, path, reason,
               (t->kind->flags & MPROF_PROFILE_HEAP_DUMP) ? "read it with: mprof dump"
                                                          : "view with: mprof top",
               path);
}

static void snapshot_now(const char *reason)
{
    unsigned seq = ++snaps.seq;
    for (int i = 0; i < snaps.ntargets; i++)
        write_target(&snaps.targets[i], seq, reason);
}

static void *snapshot_main(void *arg)
{
    (void)arg;
    mprof_guard_enter();
    pthread_setname_np(pthread_self(), "mprof-snapshot");
    char signal_reason[48] = "";
    if (snaps.signo > 0) {
        char name[24];
        signal_label(snaps.signo, name, sizeof name);
        snprintf(signal_reason, sizeof signal_reason, "on %s", name);
    }
    char interval_reason[48];
    snprintf(interval_reason, sizeof interval_reason, "every %ld s", snaps.interval_s);

    int64_t next = snaps.interval_s > 0 ? mprof_mono_ms() + snaps.interval_s * 1000 : -1;
    while (!atomic_load(&stop_requested)) {
        int timeout = -1;
        if (next >= 0) {
            int64_t wait = next - mprof_mono_ms();
            timeout = wait < 0 ? 0 : wait > 3600000 ? 3600000 : (int)wait;
        }
        struct pollfd p = {.fd = wake_read_fd, .events = POLLIN};
        int ready = poll(&p, 1, timeout);
        if (atomic_load(&stop_requested))
            break;
        if (ready > 0) {
            char drain[64];
            while (read(wake_read_fd, drain, sizeof drain) > 0)
                ;
            snapshot_now(signal_reason);
        } else if (ready == 0 && next >= 0 && mprof_mono_ms() >= next) {
            snapshot_now(interval_reason);
            /* Missed intervals (a stopped process, a slow write) are
             * skipped, not caught up in a burst. */
            next += snaps.interval_s * 1000;
            int64_t now = mprof_mono_ms();
            if (next <= now)
                next = now + snaps.interval_s * 1000;
        }
    }
    return NULL;
}

/* ------------------------------------------------------------- hooks */

static int resolve_pattern(const char *pattern, char *out, size_t outlen)
{
    if (pattern[0] == '/') {
        if (strlen(pattern) >= outlen)
            return -1;
        strcpy(out, pattern);
        return 0;
    }
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd) == NULL)
        return -1;
    int n = snprintf(out, outlen, "%s/%s", cwd, pattern);
    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

static void add_target(const mprof_profile *kind, const char *pattern)
{
    struct target *t = &snaps.targets[snaps.ntargets];
    if (resolve_pattern(pattern, t->pattern, sizeof t->pattern) != 0) {
        mprof_warn("no numbered %s files: cannot resolve %s=\"%s\"",
                   mprof_profile_what(kind), mprof_option_name(kind->exit_option), pattern);
        return;
    }
    t->kind = kind;
    t->failing = 0;
    snaps.ntargets++;
}

/* Every kind with a file at exit; the heap profile when there is none. */
static void choose_targets(void)
{
    const mprof_profile *kinds[MPROF_MAX_PROFILES];
    int n = mprof_profile_list(kinds, MPROF_MAX_PROFILES);
    snaps.ntargets = 0;
    for (int i = 0; i < n; i++) {
        const char *pattern = mprof_profile_exit_pattern(kinds[i]);
        if (pattern != NULL && kinds[i]->write != NULL)
            add_target(kinds[i], pattern);
    }
    const mprof_profile *heap = mprof_profile_lookup("heap");
    if (snaps.ntargets == 0 && heap != NULL)
        add_target(heap, "mprof.heap.%p");
}

void mprof_snapshots_init(void)
{
    const char *signal_text = mprof_option_text(MPROF_OPT_SIGNAL);
    int signo = 0;
    if (signal_text != NULL) {
        signo = mprof_parse_signal(signal_text);
        if (signo < 0) {
            mprof_warn("ignoring MPROF_SIGNAL=\"%s\": expected a signal name or number such as "
                       "SIGUSR2, USR1, SIGRTMIN+1 or 12 (not KILL, STOP, PROF or a fault signal)",
                       signal_text);
            signo = 0;
        }
    }
    long interval = mprof_option_long(MPROF_OPT_INTERVAL);
    if (signo == 0 && interval == 0)
        return;

    choose_targets();
    if (snaps.ntargets == 0)
        return;

    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
        mprof_warn("MPROF_SIGNAL and MPROF_INTERVAL ignored: pipe: %s", strerror(errno));
        return;
    }
    wake_read_fd = fds[0];
    snaps.signo = signo;
    snaps.interval_s = interval;
    snaps.seq = 0;
    atomic_store(&stop_requested, 0);

    /* Thread before handler: a signal arriving in between finds the pipe
     * with nobody reading yet, which only delays its snapshot. */
    sigset_t old;
    mprof_live_block_signals(&old);
    int err = mprof_thread_create_unhooked(&snaps.thread, NULL, snapshot_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err != 0) {
        mprof_warn("MPROF_SIGNAL and MPROF_INTERVAL ignored: cannot start a thread: %s",
                   strerror(err));
        close(fds[0]);
        close(fds[1]);
        wake_read_fd = -1;
        return;
    }
    snaps.running = 1;
    atomic_store(&wake_write_fd, fds[1]);

    if (signo > 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = snapshot_signal_handler;
        /* SA_RESTART: the program's blocking calls carry on, instead of
         * failing with EINTR because someone asked for a profile. */
        sa.sa_flags = SA_RESTART;
        sigfillset(&sa.sa_mask);
        if (sigaction(signo, &sa, NULL) != 0) {
            mprof_warn("MPROF_SIGNAL ignored: sigaction: %s", strerror(errno));
            snaps.signo = 0;
        }
    }
}

void mprof_snapshots_at_exit(void)
{
    if (!snaps.running)
        return;
    atomic_store(&stop_requested, 1);
    int fd = atomic_load(&wake_write_fd);
    char byte = 'q';
    ssize_t ignored = write(fd, &byte, 1);
    (void)ignored;
    /* A write in progress is finished, but exit is not held up for long.
     * The pipe stays open: the handler may still run until the end. */
    struct timespec deadline = mprof_deadline_in_ms(5000);
    if (pthread_timedjoin_np(snaps.thread, NULL, &deadline) == 0)
        snaps.running = 0;
}

void mprof_snapshots_postfork_child(void)
{
    /* The child has no snapshot thread.  The inherited handler stays
     * installed (restoring the default action would let the signal kill
     * the child) but finds no pipe: the signal is then ignored.  The pipe
     * is the parent's and must not be written by the child. */
    int fd = atomic_exchange(&wake_write_fd, -1);
    if (fd >= 0)
        close(fd);
    if (wake_read_fd >= 0)
        close(wake_read_fd);
    wake_read_fd = -1;
    snaps.running = 0;
}
