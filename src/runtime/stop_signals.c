/*
 * Profiles on a stop signal.  SIGTERM is how systemd, docker and
 * kubernetes stop a service, SIGINT is Ctrl-C, SIGHUP a closed terminal,
 * SIGQUIT Ctrl-\; with their default action the process dies at once and
 * atexit never runs, so the profiles it was asked for were lost.
 *
 * At start-up, for each of those four signals whose action is the default
 * (not ignored, not the program's own handler: a program that handles a
 * signal stays in charge of it, and its normal exit writes the profiles),
 * and only when some profile has a file at exit, mprof installs a handler
 * and starts one thread of its own, "mprof-stop", which waits on a pipe
 * with every signal blocked.  The handler only writes the signal's number
 * into the pipe (async-signal-safe, never blocks).  The thread then runs
 * the exit writers (lifecycle.c, the same as at exit, once), restores the
 * default action and raises the signal again on itself: the process dies of
 * the same signal, with the status (128 + N, or a core for SIGQUIT) its
 * manager expects.  The program's other threads go on meanwhile: nothing
 * runs inside the handler's frame, so no lock it may hold is waited on.
 *
 * A second stop signal while the profiles are written kills at once (a
 * user pressing Ctrl-C twice).  A program that installs its own handler
 * later replaces ours, and is then in charge.  A forked child starts its
 * own thread (fork does not copy it); an exec'd one starts afresh.
 *
 * _exit.  The same thread writes the profiles of a program that leaves
 * through _exit or _Exit (interpose/exit.h has the rule of when): the
 * interposed _exit writes a 0 into the pipe and waits until the exit
 * writers are done, at most EXIT_WAIT_NS, then ends the process with its
 * status.  The thread therefore runs whenever some profile has a file at
 * exit, whether or not a stop signal is left at its default.  The writers
 * run on this thread, not the caller's, because the caller may be a
 * signal handler that interrupted a lock holder (malloc's, or the
 * profiler's free path): on its own thread such a lock would be a
 * deadlock; here it delays the exit by the deadline at most.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "interpose/exit.h"
#include "interpose/threads.h"
#include "profiles/registry.h"
#include "runtime/lifecycle.h"

static const int stop_signals[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT};
#define N_STOP ((int)(sizeof stop_signals / sizeof stop_signals[0]))

static _Atomic int wake_fd = -1;       /* write end; -1: no thread to wake */
static int read_fd = -1;
static _Atomic int stopping;           /* a stop signal is being handled */
static int installed[N_STOP];          /* our handler was installed at start */
static int thread_wanted;              /* some profile has a file at exit */

/* How long an _exit waits for the exit writers: far longer than they take
 * (symbolizing a large program takes seconds), short enough that an _exit
 * whose writers are stuck behind a lock it holds still ends. */
#define EXIT_WAIT_NS (30 * 1000000000LL)
/* The pipe's byte for an _exit (signal numbers are never 0). */
#define EXIT_REQUEST 0

/* The default action, now, for signo: raise it and die of it. */
static void die_of(int signo)
{
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(signo, &dfl, NULL);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, signo);
    pthread_sigmask(SIG_UNBLOCK, &one, NULL);
    raise(signo);
}

static void stop_handler(int signo)
{
    int saved = errno;
    int fd = atomic_load_explicit(&wake_fd, memory_order_relaxed);
    if (fd < 0 || atomic_exchange(&stopping, 1)) {
        /* No thread to write the profiles, or the second signal: the
         * default action, now (async-signal-safe calls only). */
        die_of(signo);
        errno = saved;
        return;
    }
    unsigned char b = (unsigned char)signo;
    ssize_t ignored = write(fd, &b, 1);
    (void)ignored;
    errno = saved;
}

static void *stop_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "mprof-stop");
    for (;;) {
        unsigned char b;
        ssize_t n = read(read_fd, &b, 1);
        if (n == 1) {
            mprof_lifecycle_run_exit();
            if (b == EXIT_REQUEST)
                continue; /* the caller of _exit ends the process */
            die_of(b);
            /* Not reached unless the signal is blocked elsewhere too. */
            syscall(SYS_exit_group, 128 + b);
        }
        if (n < 0 && errno == EINTR)
            continue;
        return NULL;
    }
}

/* Starts the waiting thread; 0 or -1 (the handlers then take the default
 * path). */
static int start_thread(void)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return -1;
    read_fd = fds[0];
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 << 10);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    sigset_t old;
    mprof_live_block_signals(&old);
    pthread_t t;
    int err = mprof_thread_create_unhooked(&t, &attr, stop_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (err != 0) {
        close(fds[0]);
        close(fds[1]);
        read_fd = -1;
        return -1;
    }
    atomic_store(&wake_fd, fds[1]);
    return 0;
}

/* The hook of the interposed _exit (interpose/exit.h): on the caller's
 * thread, maybe in a signal handler, so only async-signal-safe calls. */
static void exit_requested(void)
{
    uint32_t state = mprof_lifecycle_exit_state();
    if (state == EXIT_DONE || mprof_lifecycle_exit_is_mine())
        return;
    if (state == EXIT_NOT_RUN) {
        int fd = atomic_load(&wake_fd);
        unsigned char b = EXIT_REQUEST;
        if (fd < 0 || write(fd, &b, 1) != 1)
            return;
    }
    if (!mprof_lifecycle_wait_exit(EXIT_WAIT_NS)) {
        static const char msg[] =
            "mprof: _exit waited 30 s for the exit profiles and leaves without them: "
            "something the calling thread holds (a lock its signal handler interrupted?) "
            "blocks them; call _exit outside the handler, or write the profiles first "
            "with mprof_write_profile\n";
        ssize_t ignored = write(2, msg, sizeof msg - 1);
        (void)ignored;
    }
}

/* Whether any profile has a file at exit: otherwise a stop signal loses
 * nothing and the program keeps its default actions untouched. */
static int any_exit_file(void)
{
    const mprof_profile *kinds[MPROF_MAX_PROFILES];
    int n = mprof_profile_list(kinds, MPROF_MAX_PROFILES);
    for (int i = 0; i < n; i++)
        if (mprof_profile_exit_pattern(kinds[i]) != NULL)
            return 1;
    return 0;
}

void mprof_stop_signals_init(void)
{
    if (!any_exit_file())
        return;
    thread_wanted = 1;
    for (int i = 0; i < N_STOP; i++) {
        struct sigaction old;
        if (sigaction(stop_signals[i], NULL, &old) == 0 && !(old.sa_flags & SA_SIGINFO) &&
            old.sa_handler == SIG_DFL)
            installed[i] = 1;
    }
    if (start_thread() != 0)
        return;
    mprof_exit_hook_install(exit_requested);
    for (int i = 0; i < N_STOP; i++) {
        if (!installed[i])
            continue;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = stop_handler;
        /* The program's blocking calls carry on while the profiles are
         * written, as they would have if nothing had come. */
        sa.sa_flags = SA_RESTART;
        sigfillset(&sa.sa_mask);
        if (sigaction(stop_signals[i], &sa, NULL) != 0)
            installed[i] = 0;
    }
}

void mprof_stop_signals_postfork_child(void)
{
    /* fork copies neither the thread nor the right to its pipe. */
    int fd = atomic_exchange(&wake_fd, -1);
    if (fd >= 0)
        close(fd);
    if (read_fd >= 0)
        close(read_fd);
    read_fd = -1;
    atomic_store(&stopping, 0);
    if (thread_wanted)
        (void)start_thread();
}
