/*
 * Small shared helpers: diagnostics, path patterns, atomic file writes,
 * environment parsing.  Cold paths only.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "core/options.h"
#include "core/spinlock.h"

__thread uint32_t mprof_tls_lock_token __attribute__((tls_model("initial-exec")));

void mprof_warn(const char *fmt, ...)
{
    /* One write(2) per message, so that lines from several threads or from
     * the host's own stderr output never interleave mid-line. */
    char buf[1024];
    int saved_errno = errno;
    size_t n = (size_t)snprintf(buf, sizeof buf, "mprof: ");
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, sizeof buf - n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    n += (size_t)m;
    if (n > sizeof buf - 2)
        n = sizeof buf - 2;
    buf[n++] = '\n';
    (void)mprof_write_all(STDERR_FILENO, buf, n);
    errno = saved_errno;
}

int mprof_expand_path(const char *pattern, char *out, size_t outlen)
{
    size_t o = 0;
    for (const char *p = pattern; *p; p++) {
        char tmp[32];
        const char *piece = tmp;
        size_t plen;
        if (p[0] == '%' && p[1] == 'p') {
            plen = (size_t)snprintf(tmp, sizeof tmp, "%d", (int)getpid());
            p++;
        } else if (p[0] == '%' && p[1] == '%') {
            tmp[0] = '%';
            plen = 1;
            p++;
        } else {
            tmp[0] = *p;
            plen = 1;
        }
        if (o + plen + 1 > outlen) {
            errno = ENAMETOOLONG;
            return -1;
        }
        memcpy(out + o, piece, plen);
        o += plen;
    }
    out[o] = '\0';
    return 0;
}

int mprof_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/*
 * The signals a write itself can raise in the calling thread: SIGXFSZ past
 * the host's `ulimit -f` and SIGPIPE on a FIFO whose reader left.  Their
 * default action kills the process, and a profile must never kill its host,
 * so they are blocked around the write, which then fails with EFBIG or
 * EPIPE, and the one the write raised is taken off the thread's pending set
 * before the old mask returns.  A signal the thread had blocked already is
 * left alone: pending, it may be the host's own.  mprof's own threads block
 * both for their whole life (mprof_live_block_signals); this is for writes
 * on the host's threads (at exit, mprof_write_profile).
 */
static void write_signals_block(sigset_t *old)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGXFSZ);
    sigaddset(&s, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &s, old);
}

static void write_signals_restore(const sigset_t *old, int failed_errno)
{
    int sig = failed_errno == EFBIG ? SIGXFSZ : failed_errno == EPIPE ? SIGPIPE : 0;
    if (sig != 0 && !sigismember(old, sig)) {
        sigset_t one;
        sigemptyset(&one);
        sigaddset(&one, sig);
        const struct timespec zero = {0, 0};
        while (sigtimedwait(&one, NULL, &zero) == sig) {
        }
    }
    pthread_sigmask(SIG_SETMASK, old, NULL);
}

/* Runs write_fn on fd and closes it: 0, or -1 with the first error. */
static int write_and_close(int fd, int (*write_fn)(int fd, void *arg), void *arg)
{
    sigset_t old;
    write_signals_block(&old);
    int rc = write_fn(fd, arg);
    int saved = errno;
    if (close(fd) != 0 && rc == 0) {
        rc = -1;
        saved = errno;
    }
    write_signals_restore(&old, rc != 0 ? saved : 0);
    errno = saved;
    return rc;
}

/* Under /dev or /proc: devices and the kernel's links, never replaced. */
static int is_system_path(const char *p)
{
    return strncmp(p, "/dev/", 5) == 0 || strncmp(p, "/proc/", 6) == 0;
}

int mprof_write_file_atomic(const char *path, int (*write_fn)(int fd, void *arg), void *arg)
{
    /* A path naming something other than a regular file (/dev/null, a
     * FIFO, a terminal), anything under /dev or /proc, or a link into
     * them (/dev/stdout, /proc/self/fd/1: maybe the regular file a shell
     * redirected to) is written in place, appended: a rename would replace
     * it with a regular file (for root, /dev/null or /dev/full of the whole
     * machine; or the file behind the shell's redirection).  Nothing can be
     * torn there: no half file gets a name.  O_NONBLOCK so that a FIFO
     * nobody reads fails (ENXIO) instead of blocking the host; the write
     * itself blocks as usual. */
    struct stat st, lst;
    int exists = stat(path, &st) == 0;
    if (exists && S_ISDIR(st.st_mode)) {
        errno = EISDIR;
        return -1;
    }
    char target[PATH_MAX];
    ssize_t tn = -1;
    if (lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode)) {
        tn = readlink(path, target, sizeof target - 1);
        if (tn > 0)
            target[tn] = '\0';
    }
    if ((exists && !S_ISREG(st.st_mode)) || is_system_path(path) ||
        (tn > 0 && is_system_path(target))) {
        int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
            return -1;
        int fl = fcntl(fd, F_GETFL);
        if (fl >= 0)
            (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
        return write_and_close(fd, write_fn, arg);
    }
    /* A symbolic link to a file: the file is replaced, the link stays;
     * a link to a file not there yet makes it (one level followed). */
    char real[PATH_MAX];
    if (tn > 0) {
        const char *slash = strrchr(path, '/');
        int dirlen = slash != NULL && target[0] != '/' ? (int)(slash - path + 1) : 0;
        if (realpath(path, real) != NULL ||
            snprintf(real, sizeof real, "%.*s%s", dirlen, path, target) < (int)sizeof real)
            path = real;
    }
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    int rc = write_and_close(fd, write_fn, arg);
    int saved = errno;
    if (rc == 0 && rename(tmp, path) != 0) {
        rc = -1;
        saved = errno;
    }
    if (rc != 0) {
        unlink(tmp);
        errno = saved;
    }
    return rc;
}

void mprof_write_advice(int err, const char *variable, char *out, size_t outlen)
{
    switch (err) {
    case ENOSPC:
    case EDQUOT:
        snprintf(out, outlen, "the disk is full: free space, or set %s to another file system",
                 variable);
        break;
    case EFBIG:
        snprintf(out, outlen, "larger than the process may write (ulimit -f): raise the limit");
        break;
    case EMFILE:
    case ENFILE:
        snprintf(out, outlen, "no file descriptor left: raise ulimit -n");
        break;
    case ENOMEM:
        snprintf(out, outlen, "out of memory: raise ulimit -v, or write it later");
        break;
    case ENXIO:
        snprintf(out, outlen, "a FIFO nobody reads: start its reader first");
        break;
    case ENOENT:
        snprintf(out, outlen, "the folder is gone: create it, or set %s to a folder that stays",
                 variable);
        break;
    default:
        snprintf(out, outlen, "set %s to a writable path", variable);
        break;
    }
}

/* pid of the process that read the environment; a forked child differs. */
static pid_t initial_pid;

/*
 * The "parent" whose files keep their exact name is the first profiled
 * process of a tree.  A forked child is easy to tell (its pid differs), but
 * a child that then execs a new program (shells, make and git start every
 * command that way) starts afresh: it learns the root's pid from
 * MPROF_ROOT_PID, which the root puts in the environment it passes on.
 */
void mprof_output_remember_root(void)
{
    long v = mprof_option_long(MPROF_OPT_ROOT_PID);
    if (v > 0) {
        initial_pid = (pid_t)v;
        return;
    }
    initial_pid = getpid();
    /* putenv with a string of ours, not setenv: setenv keeps a copy in a
     * tree of libc's (tsearch), allocated here unrecorded (the guard is
     * held), and the program's own setenv strings are then nodes below it:
     * the leak check, which cannot see through an unrecorded block, called
     * them leaked.  putenv allocates nothing but the environ array.  And
     * libc's, not whatever the program defines: bash replaces setenv and
     * putenv with versions backed by its shell variables, which do not
     * exist yet while constructors run. */
    static char root_pid_env[40];
    snprintf(root_pid_env, sizeof root_pid_env, "MPROF_ROOT_PID=%d", (int)initial_pid);
    int (*libc_putenv)(char *) = (int (*)(char *))dlsym(RTLD_NEXT, "putenv");
    if (libc_putenv != NULL)
        libc_putenv(root_pid_env);
}

/*
 * Resolves an output pattern for this process.  A forked child must never
 * overwrite its parent's file: when the pattern has no %p, the child's
 * path gets ".<pid>" appended.
 */
int mprof_output_path(const char *pattern, char *out, size_t outlen)
{
    if (mprof_expand_path(pattern, out, outlen) != 0)
        return -1;
    /* initial_pid is 0 only where the constructor never ran (unit tests
     * linking this file alone): nothing to tell a child from there. */
    if (initial_pid != 0 && getpid() != initial_pid && strstr(pattern, "%p") == NULL) {
        size_t n = strlen(out);
        if (snprintf(out + n, outlen - n, ".%d", (int)getpid()) >= (int)(outlen - n)) {
            errno = ENAMETOOLONG;
            return -1;
        }
    }
    return 0;
}

int mprof_write_output(const char *what, const char *variable, const char *pattern,
                       enum mprof_output_kind kind, int (*write_fn)(int fd, void *arg), void *arg)
{
    char path[PATH_MAX];
    mprof_guard_enter();
    int rc = mprof_output_path(pattern, path, sizeof path);
    if (rc != 0) {
        mprof_warn("cannot write %s: the path from \"%s\" is too long (set %s to a shorter "
                   "one)",
                   what, pattern, variable);
    } else if ((rc = mprof_write_file_atomic(path, write_fn, arg)) != 0) {
        int err = errno;
        char advice[160];
        mprof_write_advice(err, variable, advice, sizeof advice);
        mprof_warn("cannot write %s to %s: %s (%s)", what, path, strerror(err), advice);
    } else {
        (void)kind; /* the announcement tells a dump by its name */
        mprof_announce_written(what, path);
    }
    mprof_guard_leave();
    return rc;
}

ssize_t mprof_read_small_file(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n;
    do
        n = read(fd, buf, len - 1);
    while (n < 0 && errno == EINTR);
    close(fd);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    return n;
}

int mprof_output_is_root(void) { return initial_pid != 0 && getpid() == initial_pid; }

void mprof_announce_line(const char *what, const char *path)
{
    if (strstr(what, "dump") != NULL)
        mprof_warn("wrote %s to %s (read it with: mprof dump %s)", what, path, path);
    else
        mprof_warn("wrote %s to %s (view with: go tool pprof -top %s, or mprof top %s)", what,
                   path, path, path);
}

void mprof_announce_written(const char *what, const char *path)
{
    if (!mprof_run_tree_log_written(what, path))
        mprof_announce_line(what, path);
}

const char *mprof_getenv(const char *name)
{
    /* Not getenv: a program may define its own getenv (bash does, backed by
     * its shell variables, which are empty until bash's main runs), and
     * that definition wins symbol resolution even for our calls.  glibc's
     * secure_getenv reads the environment the process received; it returns
     * NULL in set-user-id programs, where LD_PRELOAD is ignored anyway. */
    return secure_getenv(name);
}

MPROF_API int mprof_version(const char **string)
{
    if (string != NULL)
        *string = MPROF_VERSION;
    return MPROF_VERSION_NUMBER;
}
