/*
 * CPU profiler.
 *
 * Sampling.  Every thread gets its own POSIX timer on its own CPU-time clock
 * (timer_create on the thread's CPUCLOCK with SIGEV_THREAD_ID), which sends
 * SIGPROF to that very thread each 1/hz second of CPU it consumes.  This is
 * what Go does since 1.18.  The process-wide setitimer(ITIMER_PROF) that
 * older profilers use has two faults: the kernel delivers its signal to
 * whichever thread it likes, so the wrong thread is charged, and a standard
 * signal does not queue, so when several threads are busy the expirations
 * that fall while one is pending are lost.  setitimer is kept only as the
 * fallback when timer_create is refused (a seccomp filter, an old kernel),
 * and the profile says so in a comment.
 *
 * Threads present at start are found in /proc/self/task; threads created
 * later get their timer from a pthread_create hook (threads.c) in their own
 * first instructions; threads created some other way (raw clone) are found
 * by a rescan of /proc/self/task every second.  A timer outlives its
 * thread (POSIX timers belong to the process), so the thread-exit hook
 * deletes it, and the same rescan deletes the timers of threads that exited
 * without the hook.
 *
 * Capture.  The SIGPROF handler unwinds the interrupted stack straight into
 * a slot of a lock-free ring (cpu_ring.h) and returns; it never allocates,
 * never locks, and touches only the ring, a few atomics, initial-exec
 * thread-locals and now and then a system call (gettid and prctl to fill
 * the thread's cached tid and name, a futex wake when the ring is half
 * full).  It is therefore safe wherever it lands: inside malloc, inside the
 * heap sampler, inside the dynamic loader.
 *
 * Thread ends.  The kernel drops the expiries that fall after a thread's
 * last scheduler tick; the exit hook records them itself (see tls_gen).
 *
 * Aggregation.  A writer thread of our own, running with the profiler guard
 * held for its whole life so that none of its allocations is sampled, drains
 * the ring every 50 ms (sooner when woken) into the profile builder, which
 * merges identical (stack, thread, labels) samples as they come.  At stop,
 * the builder symbolizes and writes the profile.
 *
 * Labels.  The handler copies the interrupted thread's label-set id
 * (mprof_tls_labels, heap/labels.h: one initial-exec thread-local that
 * mprof_labels_push changes after the set is interned and published) into
 * the record; the writer turns it into pprof string labels from the
 * interned table, which is append-only and read without a lock.  A
 * thread with no labels costs the same as before: one more load and store
 * per sample.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core/options.h"
#include "core/os.h"
#include "profiles/cpu_ring.h"
#include "encode/pprof.h"
#include "unwind/unwind.h"
#include "interpose/threads.h"
#include "profiles/hooks.h"
#include "profiles/labels_pb.h"


/* 2048 records of ~560 bytes (1.1 MiB, mapped only once CPU profiling is
 * used): 8 busy threads at the 250 signals per second that the scheduler
 * tick allows fill it in a second, so a writer thread starved of CPU by a
 * loaded machine still rarely loses samples.  The writer is woken at half
 * full. */
#define RING_SLOTS 2048
/* Threads profiled at once; beyond this, threads go unprofiled and the
 * profile says how many. */
#define MAX_TIMERS 4096
#define WRITER_WAIT_NS (50 * 1000000L)
#define RESCAN_NS (1000 * 1000000L)
/* A signal standing for more than this much CPU time arrived "late": beyond
 * any scheduler-tick granularity, so SIGPROF was blocked or the thread spent
 * that long in one system call. */
#define LATE_NS (20 * 1000000L)

/* glibc 2.36 does not name the thread-id member of struct sigevent. */
#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

/* -------------------------------------------------- pseudo-functions */

/*
 * Samples that have no real stack are charged to these functions, which
 * exist only so that their names reach the profile through the normal
 * symbolization path: their address is used as the sample's only location
 * (Go does the same with runtime._LostExternalCode).  They are never
 * called.  Different bodies keep the compiler from folding them into one
 * address.
 */
static volatile int pseudo_sink;
/* The ring was full when the signal came: the stack was not recorded. */
__attribute__((noinline, used)) void mprof_lost_samples(void) { pseudo_sink = 1; }
/* The unwinder found no frame at all in the interrupted context. */
__attribute__((noinline, used)) void mprof_unknown_stack(void) { pseudo_sink = 2; }

/* ------------------------------------------------------------- state */

enum cpu_mode { MODE_THREAD_TIMERS, MODE_ITIMER };

/* Serializes start, stop, exit and the fork reset; never taken by the
 * handler or by the thread hooks. */
static pthread_mutex_t api_lock = PTHREAD_MUTEX_INITIALIZER;

/* Everything a running profile needs; changed only under api_lock (the
 * writer thread reads the fields it needs, which are set before it starts). */
static struct {
    int running;
    int from_env;      /* MPROF_CPU: announce on stderr when written */
    int fd;            /* -1 when writing to path */
    char path[PATH_MAX];
    int hz;
    int64_t period_ns;
    enum cpu_mode mode;
    int timer_errno;   /* why timer_create failed, in MODE_ITIMER; 0 if forced */
    pid_t pid;         /* of the process that started it (a forked child differs) */
    int64_t start_wall_ns, start_mono_ns;
    mprof_pb *pb;      /* owned by the writer thread while it runs */
    pthread_t writer;
} cpu;

/* Read by the handler. */
static _Atomic int accepting;      /* record samples */
static _Atomic int handlers_active;
static _Atomic int64_t late_signals;
static mprof_cpu_ring ring;
static mprof_cpu_slot *ring_slots;
static uint64_t wake_at; /* ring occupancy at which a handler wakes the writer */

/* Writer thread control. */
static _Atomic uint32_t writer_wake; /* futex word: bumped to wake the writer */
static _Atomic int writer_stop;
static _Atomic pid_t writer_tid;


/*
 * Per-thread bookkeeping of timer expirations, for the end of a thread's
 * life.  The kernel checks thread CPU timers on the scheduler tick (every
 * 4 ms at Debian's 250 Hz), and when a thread exits, an expiry that fell
 * after its last tick is dropped without a signal.  A thread lives on
 * average half a tick past its last check, so each thread's end loses half
 * a tick of CPU: 40% of the time of threads that live 5 ms at 100 Hz.  To
 * keep short-lived threads whole, a thread that got its timer from the
 * start hook knows the CPU time of its first expiry; at exit it computes
 * how many expiries its CPU clock has passed, subtracts the ones its
 * handler saw, and records the difference itself (charged to its start
 * routine: where in it the time went is no longer known).
 */
static _Atomic int profile_gen; /* bumped at every start */
static __thread int tls_gen __attribute__((tls_model("initial-exec")));
static __thread int64_t tls_first_expiry __attribute__((tls_model("initial-exec")));
static __thread uint64_t tls_delivered __attribute__((tls_model("initial-exec")));
static _Atomic int hooks_registered;

/* ------------------------------------------------------ small helpers */


/*
 * The calling thread's tid and name, cached per thread: system calls cost
 * microseconds each on some virtual machines, a large share of a sample's
 * cost.  The tid never changes (the fork handler clears the one thread's
 * cache in the child); the name can (pthread_setname_np), so the handler
 * reads it again every NAME_REFRESH samples: a thread renamed after its
 * first sample keeps the old name for at most that many more.
 */
#define NAME_REFRESH 16
static __thread pid_t tls_tid __attribute__((tls_model("initial-exec")));
static __thread char tls_name[16] __attribute__((tls_model("initial-exec")));
static __thread unsigned tls_name_age __attribute__((tls_model("initial-exec")));

static pid_t current_tid(void)
{
    if (MPROF_UNLIKELY(tls_tid == 0))
        tls_tid = mprof_gettid();
    return tls_tid;
}

/* Copies the thread's name into out[16].  Async-signal-safe. */
static void current_name(char *out)
{
    if (tls_name_age++ % NAME_REFRESH == 0 && prctl(PR_GET_NAME, tls_name, 0, 0, 0) != 0)
        tls_name[0] = '\0';
    tls_name[sizeof tls_name - 1] = '\0';
    memcpy(out, tls_name, sizeof tls_name);
}

/* What every record says of the thread that took it, the stack aside:
 * plain loads of initial-exec thread-locals (and now and then gettid or
 * prctl), so async-signal-safe. */
static void fill_thread(mprof_cpu_rec *rec, uint32_t weight)
{
    rec->tid = current_tid();
    rec->weight = weight;
    rec->labels = mprof_tls_labels;
    current_name(rec->name);
}

/* ------------------------------------------------------ signal handler */

/*
 * Async-signal-safe throughout: see the file comment.  handlers_active lets
 * stop wait until no handler can still be writing into the ring, so that
 * the ring can be drained completely and later reused.
 */
static void MPROF_ENTRY_TEXT cpu_sigprof(int sig, siginfo_t *si, void *ucontext)
{
    (void)sig;
    int saved_errno = errno;
    atomic_fetch_add(&handlers_active, 1);
    /* Only our timers: SI_TIMER from timer_create, SI_KERNEL from
     * setitimer.  A SIGPROF sent with kill or tgkill is not CPU time. */
    if (atomic_load(&accepting) && si != NULL &&
        (si->si_code == SI_TIMER || si->si_code == SI_KERNEL)) {
        uint32_t weight = 1;
        if (si->si_code == SI_TIMER && si->si_overrun > 0) {
            weight += (uint32_t)si->si_overrun;
            if ((int64_t)si->si_overrun * cpu.period_ns >= LATE_NS)
                atomic_fetch_add_explicit(&late_signals, 1, memory_order_relaxed);
        }
        tls_delivered += weight;
        uint64_t pos;
        mprof_cpu_rec *rec = mprof_cpu_ring_claim(&ring, &pos);
        if (rec != NULL) {
            int n = mprof_stack_capture_ucontext(ucontext, rec->pcs, MPROF_MAX_STACK);
            rec->npcs = n > 0 ? (uint32_t)n : 0;
            fill_thread(rec, weight);
            mprof_cpu_ring_publish(&ring, pos);
            /* Wake the writer once per half ring rather than per sample. */
            if (mprof_cpu_ring_used(&ring) == wake_at) {
                atomic_fetch_add(&writer_wake, 1);
                mprof_futex_wake(&writer_wake, 1);
            }
        } else {
            mprof_cpu_ring_drop(&ring, weight);
        }
    }
    atomic_fetch_sub(&handlers_active, 1);
    errno = saved_errno;
}

/*
 * Installs the handler unless the program has its own.  We never replace a
 * program's SIGPROF handler (it may be its own profiler, or a timer it uses
 * for something else entirely) and never chain to it (it would receive
 * signals at a rate and from timers it never asked for).  Our handler, once
 * installed, stays: a SIGPROF still pending when profiling stops would kill
 * the process under SIG_DFL, and when not profiling the handler only returns.
 */
static int install_handler(void)
{
    static int warned;
    struct sigaction old;
    if (sigaction(SIGPROF, NULL, &old) != 0)
        return -1;
    if (mprof_sigaction_is(&old, cpu_sigprof))
        return 0;
    if (!(old.sa_flags & SA_SIGINFO) && (old.sa_handler == SIG_DFL || old.sa_handler == SIG_IGN)) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = cpu_sigprof;
        sa.sa_flags = SA_SIGINFO | SA_RESTART;
        sigemptyset(&sa.sa_mask);
        return sigaction(SIGPROF, &sa, NULL);
    }
    if (!warned) {
        warned = 1;
        mprof_warn("CPU profiling not started: the program has its own SIGPROF handler, "
                   "which mprof neither replaces nor chains (the other profiles work as "
                   "usual); to profile CPU, turn off whatever in the program uses SIGPROF "
                   "(its own profiler or timer)");
    }
    errno = EEXIST;
    return -1;
}

/* ------------------------------------------------------------- timers */

/*
 * The timer table.  Slot i is in use when tid != 0.  Arena memory, so that
 * the thread hooks never call malloc.  timer_lock is taken by the hooks of
 * starting and exiting threads, by start/stop and by the writer's rescan;
 * never by the handler.
 */
struct timer_slot {
    pid_t tid;
    timer_t timer;
};

static pthread_mutex_t timer_lock = PTHREAD_MUTEX_INITIALIZER;
static struct timer_slot *timer_slots; /* MAX_TIMERS, allocated once */
static int timer_high;                 /* slots [0, timer_high) may be in use */
static _Atomic int timer_count;        /* used slots: the exit hook's fast path */
static _Atomic int timers_on;          /* new threads get a timer */
static uint64_t timer_rng;             /* first-expiry spreading */
static int64_t threads_refused;        /* threads left without a timer: table full */
static int64_t threads_sigblocked;     /* blocked SIGPROF at start */

/*
 * The CPU-time clock of another thread of this process, by tid: the
 * kernel's encoding (CPUCLOCK_PERTHREAD | CPUCLOCK_SCHED in the low bits,
 * ~tid above), which glibc's pthread_getcpuclockid uses too.  Needed for
 * threads found in /proc/self/task, which we know only by tid.
 */
static clockid_t thread_cpu_clock(pid_t tid)
{
    return (clockid_t)((~(unsigned)tid << 3) | 6u);
}

static int64_t next_first_expiry(int64_t period)
{
    /* The spread only has to keep threads started together from all
     * sampling in phase. */
    if (timer_rng == 0)
        timer_rng = mprof_random_seed();
    return 1 + (int64_t)(mprof_random(&timer_rng) % (uint64_t)period);
}

/* Called with timer_lock held.  0, or -1 with errno from the kernel. */
static int arm_timer(pid_t tid, int self, timer_t *out, int64_t *first_out)
{
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = SIGPROF;
    sev.sigev_notify_thread_id = tid;
    timer_t t;
    /* glibc's timer_create is a plain system call for SIGEV_THREAD_ID (it
     * allocates only for SIGEV_THREAD). */
    if (timer_create(self ? CLOCK_THREAD_CPUTIME_ID : thread_cpu_clock(tid), &sev, &t) != 0)
        return -1;
    int64_t first = next_first_expiry(cpu.period_ns);
    struct itimerspec its = {
        .it_interval = {cpu.period_ns / 1000000000, cpu.period_ns % 1000000000},
        .it_value = {first / 1000000000, first % 1000000000},
    };
    if (timer_settime(t, 0, &its, NULL) != 0) {
        int e = errno;
        timer_delete(t);
        errno = e;
        return -1;
    }
    *out = t;
    if (first_out != NULL)
        *first_out = first;
    return 0;
}

static int find_slot(pid_t tid)
{
    for (int i = 0; i < timer_high; i++)
        if (timer_slots[i].tid == tid)
            return i;
    return -1;
}

static void free_slot(int i)
{
    timer_delete(timer_slots[i].timer);
    timer_slots[i].tid = 0;
    atomic_fetch_sub(&timer_count, 1);
    while (timer_high > 0 && timer_slots[timer_high - 1].tid == 0)
        timer_high--;
}

/* Gives thread tid a timer.  timer_lock held.  first_out: as arm_timer. */
static int add_thread(pid_t tid, int self, int64_t *first_out)
{
    int free_i = -1;
    for (int i = 0; i < timer_high && free_i < 0; i++)
        if (timer_slots[i].tid == 0)
            free_i = i;
    if (free_i < 0) {
        if (timer_high >= MAX_TIMERS) {
            errno = EAGAIN; /* the caller counts it */
            return -1;
        }
        free_i = timer_high;
    }
    timer_t t;
    if (arm_timer(tid, self, &t, first_out) != 0)
        return -1;
    timer_slots[free_i].tid = tid;
    timer_slots[free_i].timer = t;
    if (free_i == timer_high)
        timer_high++;
    atomic_fetch_add(&timer_count, 1);
    return 0;
}

/*
 * Whether slot i's thread has exited.  The kernel disarms a thread CPU timer
 * when its thread exits (it can never fire again) but keeps the timer, and
 * timer_gettime then reports it disarmed, interval included; every timer we
 * arm has a non-zero interval.
 */
static int timer_is_dead(int i)
{
    struct itimerspec cur;
    if (timer_gettime(timer_slots[i].timer, &cur) != 0)
        return 1;
    return cur.it_interval.tv_sec == 0 && cur.it_interval.tv_nsec == 0 &&
           cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 0;
}

/* Whether tid's SIGPROF is blocked, from /proc (start-up diagnostics). */
static int thread_blocks_sigprof(pid_t tid)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/self/task/%d/status", (int)tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    const char *p = strstr(buf, "\nSigBlk:");
    if (p == NULL)
        return 0;
    unsigned long long mask = strtoull(p + 8, NULL, 16);
    return (mask >> (SIGPROF - 1)) & 1;
}

/*
 * Brings the table in line with /proc/self/task: timers for threads that
 * have none, and away with the timers of threads that are gone.  timer_lock
 * held for the whole scan, so no thread can add itself meanwhile (a starting
 * thread waits in its hook): every slot present belongs to a thread that
 * existed before the scan began and must appear in it unless it has exited.
 */
static void rescan_threads(int at_start)
{
    pid_t self_writer = atomic_load(&writer_tid);
    DIR *d = opendir("/proc/self/task");
    if (d == NULL)
        return;
    /* Seen marks: slots are compared by tid against the listing. */
    static unsigned char seen[MAX_TIMERS];
    memset(seen, 0, sizeof seen);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end;
        long v = strtol(e->d_name, &end, 10);
        if (*end != '\0' || v <= 0)
            continue;
        pid_t tid = (pid_t)v;
        if (tid == self_writer)
            continue;
        int i = find_slot(tid);
        if (i >= 0 && timer_is_dead(i)) {
            /* The tid was reused by a thread that did not come through
             * pthread_create: the old timer is the dead thread's. */
            free_slot(i);
            i = -1;
        }
        if (i >= 0) {
            seen[i] = 1;
            continue;
        }
        if (add_thread(tid, tid == current_tid(), NULL) == 0) {
            i = find_slot(tid);
            if (i >= 0)
                seen[i] = 1;
            if (at_start && thread_blocks_sigprof(tid))
                threads_sigblocked++;
        } else if (errno == EAGAIN && at_start) {
            /* Later scans retry the same threads: count them once. */
            threads_refused++;
        }
        /* Any other failure is a thread that exited during the scan. */
    }
    closedir(d);
    for (int i = 0; i < timer_high; i++)
        if (timer_slots[i].tid != 0 && !seen[i])
            free_slot(i);
}

/* pthread_create hooks (threads.c). */
static void cpu_thread_started(void)
{
    if (!atomic_load_explicit(&timers_on, memory_order_relaxed))
        return;
    pid_t tid = current_tid();
    pthread_mutex_lock(&timer_lock);
    if (atomic_load(&timers_on)) {
        /* A slot with our tid belongs to a dead thread whose tid was reused
         * (a thread starts only once), or was made for us by a scan that
         * ran since we were cloned: either way, replace it. */
        int i = find_slot(tid);
        if (i >= 0)
            free_slot(i);
        tls_delivered = 0;
        int64_t cpu_now = mprof_clock_ns(CLOCK_THREAD_CPUTIME_ID), first;
        if (add_thread(tid, 1, &first) == 0) {
            tls_first_expiry = cpu_now + first;
            tls_gen = atomic_load(&profile_gen);
        } else if (errno == EAGAIN) {
            threads_refused++;
        }
    }
    pthread_mutex_unlock(&timer_lock);
}

/*
 * Records a sample from outside the signal handler, with the same protocol
 * as the handler (handlers_active, accepting) so that stop waits for it.
 */
static void MPROF_ENTRY_TEXT record_tail(uint32_t weight)
{
    atomic_fetch_add(&handlers_active, 1);
    if (atomic_load(&accepting)) {
        uint64_t pos;
        mprof_cpu_rec *rec = mprof_cpu_ring_claim(&ring, &pos);
        if (rec != NULL) {
            int n = 0;
            void *start = mprof_thread_start_routine();
            if (start != NULL)
                rec->pcs[n++] = (uintptr_t)start;
            n += mprof_stack_capture(rec->pcs + n, MPROF_MAX_STACK - n);
            rec->npcs = (uint32_t)n;
            fill_thread(rec, weight);
            mprof_cpu_ring_publish(&ring, pos);
        } else {
            mprof_cpu_ring_drop(&ring, weight);
        }
    }
    atomic_fetch_sub(&handlers_active, 1);
}

static void MPROF_ENTRY_TEXT cpu_thread_exiting(void)
{
    if (atomic_load_explicit(&timer_count, memory_order_relaxed) == 0)
        return;
    /* SIGPROF stays blocked from here to the thread's end: a signal still
     * pending from the deleted timer must not be counted after we
     * accounted for it below. */
    sigset_t prof;
    sigemptyset(&prof);
    sigaddset(&prof, SIGPROF);
    pthread_sigmask(SIG_BLOCK, &prof, NULL);
    pid_t tid = current_tid();
    pthread_mutex_lock(&timer_lock);
    int i = find_slot(tid);
    int ours = i >= 0 && atomic_load(&timers_on) && tls_gen == atomic_load(&profile_gen);
    if (i >= 0)
        free_slot(i);
    int64_t period = cpu.period_ns;
    pthread_mutex_unlock(&timer_lock);
    if (!ours || period <= 0)
        return;
    int64_t cpu_now = mprof_clock_ns(CLOCK_THREAD_CPUTIME_ID);
    if (cpu_now < tls_first_expiry)
        return;
    uint64_t expected = 1 + (uint64_t)((cpu_now - tls_first_expiry) / period);
    if (expected > tls_delivered)
        record_tail((uint32_t)(expected - tls_delivered));
}

static const mprof_thread_hooks cpu_hooks = {
    .on_create = NULL,
    .on_start = cpu_thread_started,
    .on_exit = cpu_thread_exiting,
};

/* Starts sampling every thread.  api_lock held. */
static void timers_start(void)
{
    pthread_mutex_lock(&timer_lock);
    if (timer_slots == NULL)
        timer_slots = mprof_arena_alloc(MAX_TIMERS * sizeof *timer_slots);
    timer_rng = mprof_random_seed();
    threads_refused = 0;
    threads_sigblocked = 0;
    cpu.mode = MODE_THREAD_TIMERS;
    cpu.timer_errno = 0;

    /* MPROF_CPU_ITIMER=yes asks for the fallback: to compare the two, and so
     * that the tests can reach it. */
    int forced = mprof_option_long(MPROF_OPT_CPU_ITIMER) == 1;
    if (forced || timer_slots == NULL || add_thread(current_tid(), 1, NULL) != 0) {
        /* Per-thread timers cannot be had (or we have nowhere to keep
         * them): one process-wide timer instead. */
        cpu.mode = MODE_ITIMER;
        cpu.timer_errno = forced ? 0 : timer_slots == NULL ? ENOMEM : errno;
        struct itimerval it = {
            .it_interval = {cpu.period_ns / 1000000000, (cpu.period_ns % 1000000000) / 1000},
            .it_value = {cpu.period_ns / 1000000000, (cpu.period_ns % 1000000000) / 1000},
        };
        if (it.it_interval.tv_sec == 0 && it.it_interval.tv_usec == 0)
            it.it_interval.tv_usec = it.it_value.tv_usec = 1;
        setitimer(ITIMER_PROF, &it, NULL);
    } else {
        if (thread_blocks_sigprof(current_tid()))
            threads_sigblocked++;
        atomic_store(&timers_on, 1);
        rescan_threads(1);
    }
    pthread_mutex_unlock(&timer_lock);
    /* Once per process: a scraper takes a CPU profile every few seconds
     * for days, and the host's log must not fill with the same line. */
    static _Atomic int said;
    if (threads_sigblocked > 0 && !atomic_exchange(&said, 1))
        mprof_warn("%lld thread(s) block SIGPROF: their CPU time is charged to where they "
                   "unblock it (said once)",
                   (long long)threads_sigblocked);
}

/* Stops every timer.  api_lock held. */
static void timers_stop(void)
{
    if (cpu.mode == MODE_ITIMER) {
        struct itimerval zero;
        memset(&zero, 0, sizeof zero);
        setitimer(ITIMER_PROF, &zero, NULL);
        return;
    }
    pthread_mutex_lock(&timer_lock);
    atomic_store(&timers_on, 0);
    for (int i = 0; i < timer_high; i++)
        if (timer_slots[i].tid != 0)
            free_slot(i);
    pthread_mutex_unlock(&timer_lock);
}

/* ------------------------------------------------------- writer thread */

static void drain_ring(mprof_pb *pb)
{
    static const char *const no_name = "";
    const mprof_cpu_rec *r;
    while ((r = mprof_cpu_ring_peek(&ring)) != NULL) {
        int64_t values[2] = {r->weight, (int64_t)r->weight * cpu.period_ns};
        mprof_label labels[2 + MPROF_LABEL_MAX] = {
            {.key = "thread", .str = r->name[0] ? r->name : no_name},
            {.key = "tid", .str = NULL, .num = r->tid, .num_unit = NULL},
        };
        int nl = mprof_labels_append(labels, 2, r->labels);
        if (r->npcs > 0) {
            mprof_pb_add_sample(pb, r->pcs, (int)r->npcs, values, labels, nl);
        } else {
            uintptr_t pc = (uintptr_t)&mprof_unknown_stack;
            mprof_pb_add_sample(pb, &pc, 1, values, labels, nl);
        }
        mprof_cpu_ring_release(&ring);
    }
}

static void *cpu_writer_main(void *arg)
{
    (void)arg;
    /* For the thread's whole life: its allocations (the builder's tables)
     * go straight to the real allocator, unsampled. */
    mprof_guard_enter();
    prctl(PR_SET_NAME, "mprof-cpu", 0, 0, 0);
    atomic_store(&writer_tid, current_tid());
    mprof_pb *pb = cpu.pb;
    int64_t last_scan = mprof_mono_ns();
    for (;;) {
        /* Read the stop flag before draining: stop sets it only once no
         * handler can still publish, so this drain is then the last. */
        int stopping = atomic_load(&writer_stop);
        uint32_t seen = atomic_load(&writer_wake);
        drain_ring(pb);
        if (stopping)
            break;
        int64_t now = mprof_mono_ns();
        if (cpu.mode == MODE_THREAD_TIMERS && now - last_scan >= RESCAN_NS) {
            last_scan = now;
            pthread_mutex_lock(&timer_lock);
            if (atomic_load(&timers_on))
                rescan_threads(0);
            pthread_mutex_unlock(&timer_lock);
        }
        mprof_futex_wait(&writer_wake, seen, WRITER_WAIT_NS);
    }
    return NULL;
}

/* ----------------------------------------------------------- start/stop */

static void ensure_hooks(void)
{
    int expected = 0;
    if (atomic_compare_exchange_strong(&hooks_registered, &expected, 1))
        (void)mprof_thread_hooks_register(&cpu_hooks);
}


/*
 * In a forked child: the timers were not inherited (POSIX timers and
 * itimers never are), the writer thread does not exist, and any lock may be
 * held by a thread that does not exist either.  Forget it all without
 * touching it: fresh locks, no profile (the parent writes its own; a child
 * that wants one starts it again, or execs with MPROF_CPU set).  The
 * builder and its memory are abandoned, not freed: the writer may have been
 * halfway through changing them.
 */
static void forget_parent_profile(void)
{
    static const pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    /* The child's one thread has a tid of its own. */
    tls_tid = 0;
    tls_name_age = 0;
    memcpy(&timer_lock, &fresh, sizeof fresh);
    atomic_store(&accepting, 0);
    atomic_store(&handlers_active, 0);
    atomic_store(&timers_on, 0);
    atomic_store(&timer_count, 0);
    if (timer_slots != NULL)
        memset(timer_slots, 0, MAX_TIMERS * sizeof *timer_slots);
    timer_high = 0;
    cpu.running = 0;
    cpu.pb = NULL;
    atomic_store(&writer_tid, 0);
    atomic_store(&writer_stop, 0);
}

/*
 * In a forked child whose fork handler did not reset us (the heap sampler
 * registers it, and does not if its tables failed to map): the profile and
 * its writer thread are the parent's; never join or write them.
 */
static void forget_if_forked(void)
{
    if (cpu.running && cpu.pid != getpid())
        forget_parent_profile(); /* api_lock is ours: keep it */
}

/* api_lock held, guard held. */
static int start_locked(const char *path, int fd, int hz, int from_env)
{
    forget_if_forked();
    if (cpu.running) {
        errno = EBUSY;
        return -1;
    }
    if (hz < 0 || hz > mprof_option_max(MPROF_OPT_CPU_HZ)) {
        errno = EINVAL;
        return -1;
    }
    if (hz == 0)
        hz = (int)mprof_option_long(MPROF_OPT_CPU_HZ);
    ensure_hooks();

    if (ring_slots == NULL) {
        ring_slots = mprof_arena_alloc(RING_SLOTS * sizeof *ring_slots);
        if (ring_slots == NULL) {
            errno = ENOMEM;
            return -1;
        }
    }
    if (install_handler() != 0)
        return -1;

    static const char *const types[] = {"samples", "count", "cpu", "nanoseconds"};
    int64_t period = 1000000000 / hz;
    mprof_pb *pb = mprof_pb_new(types, 2, "cpu", "nanoseconds", period);
    if (pb == NULL) {
        errno = ENOMEM;
        return -1;
    }
    mprof_pb_set_default_sample_type(pb, 1);

    cpu.fd = fd;
    if (path != NULL)
        snprintf(cpu.path, sizeof cpu.path, "%s", path);
    else
        cpu.path[0] = '\0';
    cpu.from_env = from_env;
    cpu.hz = hz;
    cpu.period_ns = period;
    cpu.pb = pb;
    /* MPROF_TEST_CPU_RING=N (a power of two, 2..RING_SLOTS) shrinks the
     * ring and leaves the writer to its 50 ms rounds, so that the tests can
     * make the ring overflow and check that the loss shows in the profile. */
    long slots = RING_SLOTS;
    wake_at = RING_SLOTS / 2;
    if (mprof_option_is_set(MPROF_OPT_TEST_CPU_RING)) {
        long v = mprof_option_long(MPROF_OPT_TEST_CPU_RING);
        if (v >= 2 && v <= RING_SLOTS && (v & (v - 1)) == 0) {
            slots = v;
            wake_at = UINT64_MAX;
        }
    }
    mprof_cpu_ring_init(&ring, ring_slots, (uint64_t)slots);
    atomic_store(&late_signals, 0);
    atomic_store(&writer_stop, 0);
    atomic_store(&writer_tid, 0);

    /* The writer must not take the program's signals (nor SIGPROF in
     * setitimer mode, where the kernel picks any thread that does not
     * block it). */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = mprof_thread_create_unhooked(&cpu.writer, NULL, cpu_writer_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        mprof_pb_free(pb);
        cpu.pb = NULL;
        errno = rc;
        return -1;
    }
    /* Its tid keeps it out of the thread scan. */
    while (atomic_load(&writer_tid) == 0)
        sched_yield();

    cpu.pid = getpid();
    cpu.start_wall_ns = mprof_wall_ns();
    cpu.start_mono_ns = mprof_mono_ns();
    /* Warm the unwinder outside a signal handler (mprof_stack_init does it
     * too, but not if the library constructor did not run). */
    uintptr_t warm[4];
    (void)mprof_stack_capture(warm, 4);
    atomic_fetch_add(&profile_gen, 1);
    atomic_store(&accepting, 1);
    timers_start();
    cpu.running = 1;
    return 0;
}

static int write_cb(int fd, void *arg) { return mprof_pb_write(arg, fd); }

/* api_lock held, guard held.  Stops sampling and writes the profile. */
static int stop_locked(int at_exit)
{
    forget_if_forked();
    if (!cpu.running) {
        errno = EINVAL;
        return -1;
    }
    timers_stop();
    /* Pending signals may still come in; the handler ignores them from
     * now on.  Wait for those already past the check. */
    atomic_store(&accepting, 0);
    while (atomic_load(&handlers_active) != 0)
        sched_yield();
    atomic_store(&writer_stop, 1);
    atomic_fetch_add(&writer_wake, 1);
    mprof_futex_wake(&writer_wake, 1);
    pthread_join(cpu.writer, NULL);
    cpu.running = 0;

    mprof_pb *pb = cpu.pb;
    cpu.pb = NULL;
    int64_t duration = mprof_mono_ns() - cpu.start_mono_ns;
    mprof_pb_set_time(pb, cpu.start_wall_ns, duration);

    char comment[512];
    if (cpu.mode == MODE_THREAD_TIMERS) {
        snprintf(comment, sizeof comment,
                 "mprof %s CPU profile: per-thread CPU-time timers at %d Hz", MPROF_VERSION,
                 cpu.hz);
    } else {
        char why[96];
        if (cpu.timer_errno != 0)
            snprintf(why, sizeof why, "per-thread timers unavailable (timer_create: %s)",
                     strerror(cpu.timer_errno));
        else
            snprintf(why, sizeof why, "MPROF_CPU_ITIMER=yes");
        snprintf(comment, sizeof comment,
                 "mprof %s CPU profile at %d Hz: %s, so the process-wide "
                 "setitimer(ITIMER_PROF) was used, which can lose samples when several "
                 "threads are busy and charges whichever thread the kernel picks",
                 MPROF_VERSION, cpu.hz, why);
    }
    mprof_pb_add_comment(pb, comment);

    uint64_t lost = atomic_load(&ring.dropped);
    if (lost > 0) {
        /* Never silently: the lost CPU time is a sample of its own. */
        uintptr_t pc = (uintptr_t)&mprof_lost_samples;
        int64_t values[2] = {(int64_t)lost, (int64_t)lost * cpu.period_ns};
        mprof_pb_add_sample(pb, &pc, 1, values, NULL, 0);
        snprintf(comment, sizeof comment,
                 "%llu samples lost (sample ring full), shown as mprof_lost_samples",
                 (unsigned long long)lost);
        mprof_pb_add_comment(pb, comment);
    }
    int64_t late = atomic_load(&late_signals);
    if (late > 0) {
        snprintf(comment, sizeof comment,
                 "%lld signals arrived over %d ms late (SIGPROF blocked, or a long system "
                 "call): their CPU time is charged to where the signal was taken",
                 (long long)late, (int)(LATE_NS / 1000000));
        mprof_pb_add_comment(pb, comment);
    }
    if (threads_refused > 0) {
        snprintf(comment, sizeof comment,
                 "%lld threads not profiled: more than %d threads at once",
                 (long long)threads_refused, MAX_TIMERS);
        mprof_pb_add_comment(pb, comment);
    }

    int rc;
    if (cpu.fd >= 0) {
        rc = mprof_pb_write(pb, cpu.fd);
    } else {
        rc = mprof_write_file_atomic(cpu.path, write_cb, pb);
        if (rc == 0 && (at_exit || cpu.from_env))
            mprof_announce_written("CPU profile", cpu.path);
    }
    int saved = errno;
    if (rc != 0 && cpu.fd >= 0) {
        mprof_warn("cannot write CPU profile: %s", strerror(saved));
    } else if (rc != 0) {
        char advice[160];
        mprof_write_advice(saved, "MPROF_CPU", advice, sizeof advice);
        mprof_warn("cannot write CPU profile to %s: %s (%s)", cpu.path, strerror(saved), advice);
    }
    mprof_pb_free(pb);
    errno = saved;
    return rc;
}

/* The directory must be writable now, not only at the end of a long run. */
static int check_output_dir(const char *path)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    return access(dir, W_OK);
}

static int start_path(const char *pattern, int hz, int from_env)
{
    if (pattern == NULL || pattern[0] == '\0') {
        errno = EINVAL;
        return -1;
    }
    char path[PATH_MAX];
    if (mprof_output_path(pattern, path, sizeof path) != 0)
        return -1;
    if (check_output_dir(path) != 0)
        return -1;
    mprof_guard_enter();
    pthread_mutex_lock(&api_lock);
    int rc = start_locked(path, -1, hz, from_env);
    int saved = errno;
    pthread_mutex_unlock(&api_lock);
    mprof_guard_leave();
    errno = saved;
    return rc;
}

MPROF_API int mprof_cpu_start(const char *path, int hz) { return start_path(path, hz, 0); }

MPROF_API int mprof_cpu_start_fd(int fd, int hz)
{
    if (fd < 0) {
        errno = EBADF;
        return -1;
    }
    mprof_guard_enter();
    pthread_mutex_lock(&api_lock);
    int rc = start_locked(NULL, fd, hz, 0);
    int saved = errno;
    pthread_mutex_unlock(&api_lock);
    mprof_guard_leave();
    errno = saved;
    return rc;
}

MPROF_API int mprof_cpu_stop(void)
{
    mprof_guard_enter();
    pthread_mutex_lock(&api_lock);
    int rc = stop_locked(0);
    int saved = errno;
    pthread_mutex_unlock(&api_lock);
    mprof_guard_leave();
    errno = saved;
    return rc;
}

/* ---------------------------------------------------------- registry */

/* /debug/pprof/profile exists only over a window, as in Go. */
static int cpu_begin(int fd, const mprof_profile_params *params, void **state)
{
    (void)params;
    *state = NULL;
    /* EBUSY when a profile is running already (MPROF_CPU, the program's
     * own mprof_cpu_start, another request): the server answers 409. */
    return mprof_cpu_start_fd(fd, 0);
}

static int cpu_end(int fd, void *state, const mprof_profile_params *params)
{
    (void)state;
    (void)params;
    if (mprof_cpu_stop() != 0) {
        /* Someone else stopped it (the program called mprof_cpu_stop, or
         * exit began): what they wrote into our buffer is still served. */
        off_t size = lseek(fd, 0, SEEK_END);
        if (size > 0)
            return 0;
        errno = ECANCELED;
        return -1;
    }
    return 0;
}

static void cpu_cancel(int fd, void *state)
{
    (void)fd;
    (void)state;
    (void)mprof_cpu_stop();
}

static const mprof_profile cpu_profile = {
    .name = "profile",
    .description = "CPU profile. You can specify the duration in the seconds GET parameter. "
                   "After you get the profile file, use the go tool pprof command to "
                   "investigate the profile.",
    .what = "CPU profile",
    .begin = cpu_begin,
    .end = cpu_end,
    .cancel = cpu_cancel,
    .default_seconds = 30,
};

/* ------------------------------------------------ life-cycle hooks */

void mprof_cpu_init_from_env(void)
{
    /* Hooks first, profile or not: a profile started later through the API
     * then still learns of every thread's exit. */
    ensure_hooks();
    (void)mprof_profile_register(&cpu_profile);
    const char *pattern = mprof_option_text(MPROF_OPT_CPU);
    if (pattern == NULL || pattern[0] == '\0')
        return;
    /* EEXIST: the foreign SIGPROF handler, already said once in full. */
    if (start_path(pattern, 0, 1) != 0 && errno != EEXIST) {
        int err = errno;
        char advice[160];
        if (err == EAGAIN || err == ENOMEM)
            snprintf(advice, sizeof advice,
                     "out of threads or of address space: raise ulimit -u or ulimit -v");
        else
            mprof_write_advice(err, "MPROF_CPU", advice, sizeof advice);
        mprof_warn("CPU profiler not started (MPROF_CPU=%s): %s (%s)", pattern, strerror(err),
                   advice);
    }
}

void mprof_cpu_at_exit(void)
{
    mprof_guard_enter();
    pthread_mutex_lock(&api_lock);
    if (cpu.running)
        (void)stop_locked(1);
    pthread_mutex_unlock(&api_lock);
    mprof_guard_leave();
}

/* See forget_parent_profile; here api_lock may be held by a vanished
 * thread too. */
void mprof_cpu_after_fork_child(void)
{
    static const pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    memcpy(&api_lock, &fresh, sizeof fresh);
    forget_parent_profile();
}
