/*
 * Heap dumps without HTTP, for programs that cannot open a port:
 *
 *   MPROF_SIGNAL=SIGUSR2   each delivery of the signal writes a heap profile
 *   MPROF_INTERVAL=60      a heap profile every 60 seconds
 *
 * Both write numbered files named after MPROF_HEAP (default
 * "mprof.heap.%p"): mprof.heap.1234.0001.pb.gz, .0002, ... in the order
 * written, one sequence for both triggers.  A relative pattern is resolved
 * against the directory the program started in, so that a program that
 * changes directory (daemons chdir to /) still dumps where it was asked to.
 *
 * The signal handler only writes one byte into a nonblocking pipe, which is
 * async-signal-safe and never blocks (a full pipe means a dump is pending
 * anyway: signals that arrive while one is written are coalesced).  A
 * thread of ours (signals blocked, profiler guard held) waits on the pipe
 * with a timeout for the interval, and writes the profile with
 * mprof_write_file_atomic: a reader never sees a half-written file.
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

#include "http/http_internal.h"
#include "interpose/threads.h"
#include "profiles/heap_profile.h"
#include "profiles/hooks.h"

/* ------------------------------------------------------------ threads */

void mprof_live_block_signals(sigset_t *old)
{
    sigset_t blocked;
    sigfillset(&blocked);
    /* Fault signals stay open: blocking them cannot stop a fault, only turn
     * its report into a silent kill.  SIGPROF stays open for the CPU
     * profiler: our threads are charged for the CPU they use, as the
     * profiling goroutines are in Go, rather than reported as threads that
     * block the profiler's signal. */
    sigdelset(&blocked, SIGSEGV);
    sigdelset(&blocked, SIGBUS);
    sigdelset(&blocked, SIGFPE);
    sigdelset(&blocked, SIGILL);
    sigdelset(&blocked, SIGPROF);
    pthread_sigmask(SIG_SETMASK, &blocked, old);
}

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

int mprof_dump_parse_signal(const char *text)
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

int mprof_dump_path(const char *pattern, unsigned seq, char *out, size_t outlen)
{
    if (mprof_expand_path(pattern, out, outlen) != 0)
        return -1;
    size_t len = strlen(out);
    static const char suffix[] = ".pb.gz";
    const size_t suffix_len = sizeof suffix - 1;
    if (len > suffix_len && strcmp(out + len - suffix_len, suffix) == 0)
        len -= suffix_len;
    int n = snprintf(out + len, outlen - len, ".%04u.pb.gz", seq);
    if (n < 0 || (size_t)n >= outlen - len) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

/* --------------------------------------------------------------- state */

/* Write end of the wake-up pipe, read by the signal handler: -1 when there
 * is no dump thread to wake (not configured, stopped, or a forked child). */
static _Atomic int wake_write_fd = -1;
static int wake_read_fd = -1;

static struct {
    int running;
    pthread_t thread;
    int signo;                 /* 0: no signal trigger */
    long interval_s;           /* 0: no interval trigger */
    char pattern[PATH_MAX];    /* absolute */
    unsigned seq;
    int failing;               /* last dump failed; warned already */
} dumps;

static _Atomic int stop_requested;

static void dump_signal_handler(int signo)
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

static int write_heap(int fd, void *arg)
{
    (void)arg;
    return mprof_heap_write_fd(fd, "inuse_space");
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

static void dump_now(const char *reason)
{
    char path[PATH_MAX];
    unsigned seq = ++dumps.seq;
    if (mprof_dump_path(dumps.pattern, seq, path, sizeof path) != 0) {
        if (!dumps.failing)
            mprof_warn("heap dump not written: file name from \"%s\" too long", dumps.pattern);
        dumps.failing = 1;
        return;
    }
    if (mprof_write_file_atomic(path, write_heap, NULL) != 0) {
        /* Once, not at every interval: a missing directory would otherwise
         * fill the program's stderr. */
        if (!dumps.failing)
            mprof_warn("cannot write heap dump %s: %s (further failures are not reported)", path,
                       strerror(errno));
        dumps.failing = 1;
        return;
    }
    dumps.failing = 0;
    mprof_warn("wrote heap dump %s (%s)", path, reason);
}

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *dump_main(void *arg)
{
    (void)arg;
    mprof_guard_enter();
    pthread_setname_np(pthread_self(), "mprof-dump");
    char signal_reason[48] = "";
    if (dumps.signo > 0) {
        char name[24];
        signal_label(dumps.signo, name, sizeof name);
        snprintf(signal_reason, sizeof signal_reason, "on %s", name);
    }
    char interval_reason[48];
    snprintf(interval_reason, sizeof interval_reason, "every %ld s", dumps.interval_s);

    int64_t next = dumps.interval_s > 0 ? monotonic_ms() + dumps.interval_s * 1000 : -1;
    while (!atomic_load(&stop_requested)) {
        int timeout = -1;
        if (next >= 0) {
            int64_t wait = next - monotonic_ms();
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
            dump_now(signal_reason);
        } else if (ready == 0 && next >= 0 && monotonic_ms() >= next) {
            dump_now(interval_reason);
            /* Missed intervals (a stopped process, a slow dump) are
             * skipped, not caught up in a burst. */
            next += dumps.interval_s * 1000;
            int64_t now = monotonic_ms();
            if (next <= now)
                next = now + dumps.interval_s * 1000;
        }
    }
    return NULL;
}

/* ------------------------------------------------------------- hooks */

static int resolve_pattern(const char *pattern)
{
    if (pattern[0] == '/') {
        if (strlen(pattern) >= sizeof dumps.pattern)
            return -1;
        strcpy(dumps.pattern, pattern);
        return 0;
    }
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd) == NULL)
        return -1;
    int n = snprintf(dumps.pattern, sizeof dumps.pattern, "%s/%s", cwd, pattern);
    return n < 0 || (size_t)n >= sizeof dumps.pattern ? -1 : 0;
}

void mprof_dumps_init_from_env(void)
{
    const char *signal_text = mprof_getenv("MPROF_SIGNAL");
    int signo = 0;
    if (signal_text != NULL && *signal_text != '\0') {
        signo = mprof_dump_parse_signal(signal_text);
        if (signo < 0) {
            mprof_warn("ignoring MPROF_SIGNAL=\"%s\": expected a signal name or number such as "
                       "SIGUSR2, USR1, SIGRTMIN+1 or 12 (not KILL, STOP, PROF or a fault signal)",
                       signal_text);
            signo = 0;
        }
    }
    long interval = 0;
    if (mprof_env_long("MPROF_INTERVAL", 1, 366L * 24 * 3600, &interval) != 1)
        interval = 0;
    if (signo == 0 && interval == 0)
        return;

    const char *pattern = mprof_getenv("MPROF_HEAP");
    if (pattern == NULL || *pattern == '\0')
        pattern = "mprof.heap.%p";
    if (resolve_pattern(pattern) != 0) {
        mprof_warn("heap dumps disabled: cannot resolve MPROF_HEAP=\"%s\"", pattern);
        return;
    }

    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
        mprof_warn("heap dumps disabled: pipe: %s", strerror(errno));
        return;
    }
    wake_read_fd = fds[0];
    dumps.signo = signo;
    dumps.interval_s = interval;
    dumps.seq = 0;
    atomic_store(&stop_requested, 0);

    /* Thread before handler: a signal arriving in between finds the pipe
     * with nobody reading yet, which only delays its dump. */
    sigset_t old;
    mprof_live_block_signals(&old);
    int err = mprof_thread_create_unhooked(&dumps.thread, NULL, dump_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err != 0) {
        mprof_warn("heap dumps disabled: cannot start a thread: %s", strerror(err));
        close(fds[0]);
        close(fds[1]);
        wake_read_fd = -1;
        return;
    }
    dumps.running = 1;
    atomic_store(&wake_write_fd, fds[1]);

    if (signo > 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = dump_signal_handler;
        /* SA_RESTART: the program's blocking calls carry on, instead of
         * failing with EINTR because someone asked for a profile. */
        sa.sa_flags = SA_RESTART;
        sigfillset(&sa.sa_mask);
        if (sigaction(signo, &sa, NULL) != 0) {
            mprof_warn("MPROF_SIGNAL ignored: sigaction: %s", strerror(errno));
            dumps.signo = 0;
        }
    }
}

void mprof_dumps_at_exit(void)
{
    if (!dumps.running)
        return;
    atomic_store(&stop_requested, 1);
    int fd = atomic_load(&wake_write_fd);
    char byte = 'q';
    ssize_t ignored = write(fd, &byte, 1);
    (void)ignored;
    /* A dump in progress is finished, but exit is not held up for long.
     * The pipe stays open: the handler may still run until the end. */
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 5;
    if (pthread_timedjoin_np(dumps.thread, NULL, &deadline) == 0)
        dumps.running = 0;
}

void mprof_dumps_after_fork_child(void)
{
    /* The child has no dump thread.  The inherited handler stays installed
     * (restoring the default action would let the signal kill the child)
     * but finds no pipe: the signal is then ignored.  The pipe is the
     * parent's and must not be written by the child. */
    int fd = atomic_exchange(&wake_write_fd, -1);
    if (fd >= 0)
        close(fd);
    if (wake_read_fd >= 0)
        close(wake_read_fd);
    wake_read_fd = -1;
    dumps.running = 0;
}
