/*
 * All-thread stacks: Go's goroutine profile and runtime.Stack for the
 * threads of a native process (docs/threads.md).
 *
 * A thread's registers exist only in that thread, or in the kernel while it
 * sleeps, so each thread's stack is taken one of two ways:
 *
 *  - by signal: the collector sends the thread a real-time signal with
 *    rt_tgsigqueueinfo, whose payload names a slot of a preallocated array
 *    (arena memory, never freed) and the collection's generation.  The
 *    handler - async-signal-safe: no malloc, no lock, no stdio - claims its
 *    slot with one compare-and-swap from (generation, PENDING) to
 *    (generation, WRITING), unwinds its own interrupted stack into it with
 *    mprof_stack_capture_signal, publishes (generation, DONE) and wakes the
 *    collector through a futex word.  The collector waits STACKS_TIMEOUT_NS
 *    at most, then takes back the slots of threads that did not answer
 *    (PENDING -> ABANDONED): a signal delivered later finds nothing to do;
 *
 *  - from outside, for threads a signal would hurt or cannot reach: those
 *    blocked in a system call that a handler makes fail with EINTR whatever
 *    SA_RESTART says (nanosleep, poll, epoll_wait, ...), those that block
 *    the signal, and those that did not answer in time.  While a thread is
 *    blocked in the kernel its user stack is still, and the kernel gives
 *    its stack pointer and pc (/proc/self/task/TID/syscall); libdwfl
 *    unwinds from there reading memory through /proc/self/mem, which fails
 *    cleanly where a load would fault.  The syscall file is read again
 *    afterwards to make sure the thread did not move meanwhile.
 *
 * The signal is a real-time one that nobody handles: the first free of
 * SIGRTMIN+5 .. SIGRTMAX, taken when the first collection needs it.  If the
 * program later installs its own handler there, the next collection moves
 * to another free signal; we never replace or chain to a program's handler.
 * SA_RESTART is set, so the system calls we do signal threads in (read,
 * write, futex waits, wait4, ...) restart transparently.
 */
#include <dirent.h>
#include <dwarf.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include "profiles/hooks.h"
#include "symbolize/symbolize.h"
#include "profiles/stackprof.h"

/* Total time a collection waits for answers. */
#define STACKS_TIMEOUT_NS (500 * 1000000L)
/* Extra time granted to a handler caught half-way through its unwind. */
#define WRITING_GRACE_NS (100 * 1000000L)
/* Threads listed per collection; beyond this they are reported as such. */
#define MAX_THREADS 32768

/* Slot tickets: (generation << 2) | state. */
enum { SLOT_ABANDONED = 0, SLOT_PENDING = 1, SLOT_WRITING = 2, SLOT_DONE = 3 };
/* The signal payload: (generation << IDX_BITS) | slot index, in a pointer. */
#define IDX_BITS 20
#define GEN_MASK ((1ULL << (64 - IDX_BITS - 2)) - 1)

struct slot {
    _Atomic uint64_t ticket;
    pid_t tid; /* set before the ticket is made PENDING */
    int n;
    uintptr_t pcs[MPROF_MAX_STACK];
};

struct slot_array {
    uint32_t cap;
    _Atomic uint32_t answers; /* futex word: bumped by every answering handler */
    struct slot s[];
};

static struct slot_array *_Atomic slots;
static uint64_t generation; /* under collect_lock */
static pthread_mutex_t collect_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int stack_signal; /* 0 until chosen */


/*
 * Samples without a stack are charged to these, as the CPU profiler does
 * with its lost samples: pprof then shows why a thread has no stack.  Never
 * called; different bodies keep them from being folded together.
 */
static volatile int pseudo_sink;
__attribute__((noinline, used)) void mprof_thread_blocks_signal(void) { pseudo_sink = 1; }
__attribute__((noinline, used)) void mprof_thread_did_not_answer(void) { pseudo_sink = 2; }
__attribute__((noinline, used)) void mprof_thread_stack_unavailable(void) { pseudo_sink = 3; }

/* ------------------------------------------------------------ handler */

/* Async-signal-safe: atomics, the signal-frame unwinder, raw syscalls. */
static void MPROF_ENTRY_TEXT stacks_handler(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    int saved_errno = errno;
    /* Only our own requests: SI_QUEUE from this very process. */
    if (si == NULL || si->si_code != SI_QUEUE || si->si_pid != getpid())
        goto out;
    uint64_t v = (uint64_t)(uintptr_t)si->si_value.sival_ptr;
    uint32_t idx = (uint32_t)(v & ((1u << IDX_BITS) - 1));
    uint64_t gen = v >> IDX_BITS;
    struct slot_array *arr = atomic_load_explicit(&slots, memory_order_acquire);
    if (arr == NULL || idx >= arr->cap)
        goto out;
    struct slot *s = &arr->s[idx];
    uint64_t expected = gen << 2 | SLOT_PENDING;
    if (!atomic_compare_exchange_strong_explicit(&s->ticket, &expected, gen << 2 | SLOT_WRITING,
                                                 memory_order_acquire, memory_order_relaxed))
        goto out; /* a stale request: the collector gave up on it */
    s->n = s->tid == mprof_gettid() ? mprof_stack_capture_ucontext(uc, s->pcs, MPROF_MAX_STACK) : 0;
    atomic_store_explicit(&s->ticket, gen << 2 | SLOT_DONE, memory_order_release);
    atomic_fetch_add_explicit(&arr->answers, 1, memory_order_release);
    mprof_futex_wake(&arr->answers, INT_MAX);
out:
    errno = saved_errno;
}

/* The signal to use, installing the handler on first use or when the
 * program took our signal over.  Under collect_lock.  -1 if none is free. */
static int ensure_handler(void)
{
    static int warned_taken, warned_none;
    int sig = atomic_load(&stack_signal);
    struct sigaction old;
    if (sig != 0) {
        if (sigaction(sig, NULL, &old) == 0 && mprof_sigaction_is(&old, stacks_handler))
            return sig;
        if (!warned_taken) {
            warned_taken = 1;
            mprof_warn("the program installed its own handler for SIGRTMIN+%d, which mprof "
                       "used for thread stacks; moving to another signal",
                       sig - SIGRTMIN);
        }
    }
    for (int s = SIGRTMIN + 5; s <= SIGRTMAX; s++) {
        if (s == sig || sigaction(s, NULL, &old) != 0)
            continue;
        if (mprof_sigaction_is(&old, stacks_handler)) {
            atomic_store(&stack_signal, s);
            return s;
        }
        /* Only a signal nobody uses: default action, no handler. */
        if ((old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL)
            continue;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = stacks_handler;
        /* SA_ONSTACK: a thread with an alternate signal stack (one near the
         * end of its own) unwinds from there.  All signals blocked while
         * the handler runs, so nothing else lands in the middle of an
         * unwind - except the fault signals, which blocked would turn a
         * fault's report into a silent kill. */
        sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
        sigfillset(&sa.sa_mask);
        sigdelset(&sa.sa_mask, SIGSEGV);
        sigdelset(&sa.sa_mask, SIGBUS);
        sigdelset(&sa.sa_mask, SIGILL);
        sigdelset(&sa.sa_mask, SIGFPE);
        if (sigaction(s, &sa, NULL) == 0) {
            atomic_store(&stack_signal, s);
            return s;
        }
    }
    if (!warned_none) {
        warned_none = 1;
        mprof_warn("no free real-time signal for taking thread stacks; other threads' stacks "
                   "are not available");
    }
    atomic_store(&stack_signal, 0);
    return -1;
}

/* ------------------------------------------------------------ collection */

enum thread_status {
    TS_STACK,     /* stack taken (see how) */
    TS_BLOCKED,   /* blocks the signal and is not in a system call: no way in */
    TS_NO_ANSWER, /* asked, did not answer in time, and could not be read */
    TS_GONE,      /* exited meanwhile, or a zombie */
    TS_NO_SIGNAL, /* no signal could be had, and not in a system call */
    TS_MOVED,     /* read from outside, but it woke up meanwhile */
    TS_UNREADABLE, /* not signalled, and the read from outside failed */
};

enum stack_source { FROM_SELF, FROM_SIGNAL, FROM_OUTSIDE };

struct thread_info {
    pid_t tid;
    char state;
    enum thread_status status;
    enum stack_source how;
    char name[64];
    /* From /proc/self/task/TID/syscall: the system call it is blocked in
     * (>= 0), -1 blocked outside any, -2 running or unknown; with the user
     * stack pointer and pc when blocked. */
    long sys_nr;
    uintptr_t sys_sp, sys_pc;
    char sys_line[256];
    int n, slot;
    uintptr_t pcs[MPROF_MAX_STACK];
};

struct collection {
    struct thread_info *t;
    size_t n;
    int sig;
    int64_t time_ns;
};

/* Name and state from /proc/self/task/TID/stat: "tid (comm) S ...".  The
 * name may itself contain ") ", so the last ')' ends it. */
static int read_stat(pid_t tid, struct thread_info *ti)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
    if (mprof_read_small_file(path, buf, sizeof buf) <= 0)
        return -1;
    char *open_paren = strchr(buf, '('), *close_paren = strrchr(buf, ')');
    if (open_paren == NULL || close_paren == NULL || close_paren < open_paren ||
        close_paren[1] != ' ')
        return -1;
    size_t len = (size_t)(close_paren - open_paren - 1);
    if (len >= sizeof ti->name)
        len = sizeof ti->name - 1;
    memcpy(ti->name, open_paren + 1, len);
    ti->name[len] = '\0';
    ti->state = close_paren[2];
    return 0;
}

/*
 * /proc/self/task/TID/syscall: "running", or "NR ARG1..ARG6 SP PC" (hex
 * but NR) while blocked in a system call, or "-1 SP PC" while blocked
 * outside one.  Readable for the threads of one's own process whatever the
 * ptrace policy.  The kernel waits for the thread to be off CPU, so SP and
 * PC are its user-space registers at the moment it entered the kernel.
 */
static void read_syscall(pid_t tid, struct thread_info *ti)
{
    char path[64];
    ti->sys_nr = -2;
    ti->sys_sp = ti->sys_pc = 0;
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
    if (mprof_read_small_file(path, ti->sys_line, sizeof ti->sys_line) <= 0) {
        ti->sys_line[0] = '\0';
        return;
    }
    char *p = ti->sys_line, *end;
    long nr = strtol(p, &end, 10);
    if (end == p)
        return; /* "running" */
    unsigned long v[8];
    int nv = 0;
    p = end;
    while (nv < 8) {
        unsigned long x = strtoul(p, &end, 16);
        if (end == p)
            break;
        v[nv++] = x;
        p = end;
    }
    if (nr == -1 && nv >= 2) {
        ti->sys_sp = v[0];
        ti->sys_pc = v[1];
    } else if (nr >= 0 && nv == 8) {
        ti->sys_sp = v[6];
        ti->sys_pc = v[7];
    } else {
        return;
    }
    ti->sys_nr = nr;
}

/* First argument of the system call (a file descriptor, for the ones that
 * matter below). */
static long syscall_arg0(const struct thread_info *ti)
{
    const char *p = strchr(ti->sys_line, ' ');
    return p != NULL ? (long)strtoul(p + 1, NULL, 16) : -1;
}

/* A socket with a receive or send timeout: the kernel then fails its
 * blocking calls with EINTR after a handler, SA_RESTART or not.  fd is the
 * thread's, and ours too (one table per process); a descriptor closed or
 * reused meanwhile only gives a wrong answer to this question. */
static int socket_has_timeout(long fd)
{
    struct timeval tv;
    socklen_t len = sizeof tv;
    if (fd < 0 || fd > INT_MAX)
        return 0;
    if (getsockopt((int)fd, SOL_SOCKET, SO_RCVTIMEO, &tv, &len) == 0 &&
        (tv.tv_sec != 0 || tv.tv_usec != 0))
        return 1;
    len = sizeof tv;
    return getsockopt((int)fd, SOL_SOCKET, SO_SNDTIMEO, &tv, &len) == 0 &&
           (tv.tv_sec != 0 || tv.tv_usec != 0);
}

/*
 * System calls that a signal handler makes fail with EINTR whatever
 * SA_RESTART says (signal(7), "Interruption of system calls and library
 * functions by signal handlers").  A thread blocked in one is never
 * signalled: its stack is read from outside instead.
 */
static int interrupted_by_handler(const struct thread_info *ti)
{
    switch (ti->sys_nr) {
    case SYS_nanosleep: case SYS_clock_nanosleep: case SYS_pause: case SYS_rt_sigsuspend:
    case SYS_rt_sigtimedwait: case SYS_poll: case SYS_ppoll: case SYS_select:
    case SYS_pselect6: case SYS_epoll_wait: case SYS_epoll_pwait: case SYS_io_getevents:
    case SYS_semop: case SYS_semtimedop: case SYS_msgrcv: case SYS_msgsnd:
#ifdef SYS_epoll_pwait2
    case SYS_epoll_pwait2:
#endif
#ifdef SYS_io_pgetevents
    case SYS_io_pgetevents:
#endif
#ifdef SYS_io_uring_enter
    case SYS_io_uring_enter:
#endif
        return 1;
    case SYS_read: case SYS_write: case SYS_readv: case SYS_writev: case SYS_recvfrom:
    case SYS_recvmsg: case SYS_sendto: case SYS_sendmsg: case SYS_accept: case SYS_accept4:
    case SYS_connect: case SYS_recvmmsg: case SYS_sendmmsg:
        return socket_has_timeout(syscall_arg0(ti));
    default:
        return 0;
    }
}

static const char *syscall_name(long nr)
{
    static const struct {
        long nr;
        const char *name;
    } names[] = {
        {SYS_read, "read"}, {SYS_write, "write"}, {SYS_poll, "poll"}, {SYS_select, "select"},
        {SYS_readv, "readv"}, {SYS_writev, "writev"}, {SYS_pread64, "pread"},
        {SYS_pwrite64, "pwrite"}, {SYS_ioctl, "ioctl"}, {SYS_nanosleep, "nanosleep"},
        {SYS_pause, "pause"}, {SYS_accept, "accept"}, {SYS_accept4, "accept4"},
        {SYS_connect, "connect"}, {SYS_recvfrom, "recvfrom"}, {SYS_recvmsg, "recvmsg"},
        {SYS_sendto, "sendto"}, {SYS_sendmsg, "sendmsg"}, {SYS_wait4, "wait4"},
        {SYS_waitid, "waitid"}, {SYS_futex, "futex"}, {SYS_epoll_wait, "epoll_wait"},
        {SYS_epoll_pwait, "epoll_pwait"}, {SYS_clock_nanosleep, "clock_nanosleep"},
        {SYS_ppoll, "ppoll"}, {SYS_pselect6, "pselect6"}, {SYS_rt_sigtimedwait, "sigtimedwait"},
        {SYS_rt_sigsuspend, "sigsuspend"}, {SYS_flock, "flock"}, {SYS_fcntl, "fcntl"},
        {SYS_openat, "openat"}, {SYS_semop, "semop"}, {SYS_semtimedop, "semtimedop"},
        {SYS_msgrcv, "msgrcv"}, {SYS_msgsnd, "msgsnd"}, {SYS_io_getevents, "io_getevents"},
        {SYS_sched_yield, "sched_yield"}, {SYS_recvmmsg, "recvmmsg"},
        {SYS_sendmmsg, "sendmmsg"}, {SYS_fsync, "fsync"}, {SYS_fdatasync, "fdatasync"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].nr == nr)
            return names[i].name;
    return NULL;
}

static int blocks_signal(pid_t tid, int sig)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/self/task/%d/status", (int)tid);
    if (mprof_read_small_file(path, buf, sizeof buf) <= 0)
        return 0;
    const char *p = strstr(buf, "\nSigBlk:");
    if (p == NULL)
        return 0;
    unsigned long long mask = strtoull(p + 8, NULL, 16);
    return sig >= 1 && sig <= 64 && ((mask >> (sig - 1)) & 1);
}

static const char *state_name(char c)
{
    switch (c) {
    case 'R': return "running";
    case 'S': return "sleeping";
    case 'D': return "disk sleep";
    case 'T': return "stopped";
    case 't': return "tracing stop";
    case 'Z': return "zombie";
    case 'X': return "dead";
    case 'I': return "idle";
    case 'P': return "parked";
    case 'W': return "waking";
    default: return "unknown";
    }
}

static void free_collection(struct collection *c)
{
    free(c->t);
    c->t = NULL;
    c->n = 0;
}

/* The calling thread's entry: its stack is taken directly, not by signal,
 * and it is running (it is the one collecting). */
static void fill_self(struct thread_info *t, pid_t self)
{
    t->tid = self;
    t->status = TS_STACK;
    t->how = FROM_SELF;
    t->slot = -1;
    t->sys_nr = -2;
    if (read_stat(self, t) != 0)
        t->name[0] = '\0';
    t->state = 'R';
}

/* Lists the threads (self first).  Guard held. */
static int list_threads(struct collection *c, pid_t self)
{
    size_t cap = 64;
    c->t = calloc(cap, sizeof *c->t);
    if (c->t == NULL)
        return -1;
    c->n = 1;
    fill_self(&c->t[0], self);
    DIR *d = opendir("/proc/self/task");
    if (d == NULL)
        return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end;
        long v = strtol(e->d_name, &end, 10);
        if (*end != '\0' || v <= 0 || (pid_t)v == self)
            continue;
        if (c->n == MAX_THREADS)
            break;
        if (c->n == cap) {
            struct thread_info *grown = realloc(c->t, 2 * cap * sizeof *grown);
            if (grown == NULL)
                break;
            c->t = grown;
            cap *= 2;
        }
        struct thread_info *ti = &c->t[c->n];
        memset(ti, 0, sizeof *ti);
        ti->tid = (pid_t)v;
        ti->slot = -1;
        ti->sys_nr = -2;
        if (read_stat(ti->tid, ti) != 0)
            continue; /* exited while we listed */
        c->n++;
    }
    closedir(d);
    return 0;
}

/* ------------------------------------------------- reading from outside */

/*
 * The stack of a thread that is blocked in the kernel can be read without
 * interrupting it: its user-space stack does not change while it is
 * blocked, and the kernel tells us its stack pointer and pc
 * (/proc/self/task/TID/syscall).  libdwfl unwinds from those two registers
 * with the modules' CFI, reading memory through /proc/self/mem, which
 * fails cleanly (EIO) where a direct load would fault - the thread may wake
 * up and move on while we read.  Afterwards the syscall file is read again:
 * if it changed, the thread woke up meanwhile and what we read is thrown
 * away.
 *
 * Only two registers are known, so the walk stops at the first frame whose
 * unwind rule needs another one that no frame below saved (typically a
 * function that keeps its frame address in RBP); the stack may then be
 * incomplete at its outer end.  The signal path has every register and is
 * preferred whenever a signal does no harm.
 */
struct outside {
    Dwfl *dwfl;
    int failed;
    int mem_fd;
    pid_t tid;
    Dwarf_Word sp, pc;
    int n;
    uintptr_t *pcs;
};

static pid_t outside_next_thread(Dwfl *dwfl, void *arg, void **thread_argp)
{
    (void)dwfl;
    (void)arg;
    (void)thread_argp;
    return 0; /* threads are asked for by tid only */
}

static bool outside_get_thread(Dwfl *dwfl, pid_t tid, void *arg, void **thread_argp)
{
    (void)dwfl;
    struct outside *o = arg;
    if (tid != o->tid)
        return false;
    *thread_argp = o;
    return true;
}

static bool outside_memory_read(Dwfl *dwfl, Dwarf_Addr addr, Dwarf_Word *result, void *arg)
{
    (void)dwfl;
    struct outside *o = arg;
    if (addr > (Dwarf_Addr)INT64_MAX - 8)
        return false;
    return pread(o->mem_fd, result, sizeof *result, (off_t)addr) == (ssize_t)sizeof *result;
}

static bool outside_initial_registers(Dwfl_Thread *thread, void *thread_arg)
{
    struct outside *o = thread_arg;
    Dwarf_Word sp = o->sp;
    /* DWARF register 7 is RSP on x86-64. */
    if (!dwfl_thread_state_registers(thread, 7, 1, &sp))
        return false;
    dwfl_thread_state_register_pc(thread, o->pc);
    return true;
}

static const Dwfl_Thread_Callbacks outside_callbacks = {
    .next_thread = outside_next_thread,
    .get_thread = outside_get_thread,
    .memory_read = outside_memory_read,
    .set_initial_registers = outside_initial_registers,
};

static int outside_frame(Dwfl_Frame *frame, void *arg)
{
    struct outside *o = arg;
    Dwarf_Addr pc;
    bool activation;
    if (!dwfl_frame_pc(frame, &pc, &activation) || pc == 0)
        return DWARF_CB_ABORT;
    /* As the other captures: exact for the interrupted frame, the call
     * instruction (return address - 1) for its callers. */
    o->pcs[o->n++] = (uintptr_t)(activation ? pc : pc - 1);
    return o->n < MPROF_MAX_STACK ? DWARF_CB_OK : DWARF_CB_ABORT;
}

static int outside_open(struct outside *o)
{
    if (o->dwfl != NULL)
        return 0;
    if (o->failed)
        return -1;
    static const Dwfl_Callbacks callbacks = {
        .find_elf = dwfl_linux_proc_find_elf,
        .find_debuginfo = mprof_find_local_debuginfo, /* never debuginfod */
    };
    o->failed = 1;
    o->mem_fd = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
    if (o->mem_fd < 0)
        return -1;
    o->dwfl = dwfl_begin(&callbacks);
    if (o->dwfl == NULL)
        return -1;
    dwfl_report_begin(o->dwfl);
    int rc = dwfl_linux_proc_report(o->dwfl, getpid());
    if (dwfl_report_end(o->dwfl, NULL, NULL) != 0 || rc != 0 ||
        !dwfl_attach_state(o->dwfl, NULL, getpid(), &outside_callbacks, o)) {
        dwfl_end(o->dwfl);
        o->dwfl = NULL;
        return -1;
    }
    o->failed = 0;
    return 0;
}

static void outside_close(struct outside *o)
{
    if (o->dwfl != NULL)
        dwfl_end(o->dwfl);
    if (o->mem_fd >= 0)
        close(o->mem_fd);
    memset(o, 0, sizeof *o);
    o->mem_fd = -1;
}

/* Reads ti's stack from outside; ti->sys_* must be fresh.  Sets status. */
static void read_from_outside(struct outside *o, struct thread_info *ti)
{
    if (ti->sys_nr < -1 || outside_open(o) != 0) {
        if (ti->status != TS_NO_ANSWER)
            ti->status = TS_UNREADABLE;
        return;
    }
    char before[sizeof ti->sys_line];
    memcpy(before, ti->sys_line, sizeof before);
    o->tid = ti->tid;
    o->sp = ti->sys_sp;
    o->pc = ti->sys_pc;
    o->n = 0;
    o->pcs = ti->pcs;
    (void)dwfl_getthread_frames(o->dwfl, ti->tid, outside_frame, o);
    read_syscall(ti->tid, ti);
    if (strcmp(before, ti->sys_line) != 0) {
        ti->n = 0;
        ti->status = TS_MOVED;
        return;
    }
    ti->n = o->n;
    ti->how = FROM_OUTSIDE;
    ti->status = TS_STACK;
}

/* --------------------------------------------------------- signalling */

/* A slot array for at least n threads.  Arrays are never freed: a late
 * handler may still look at an old one (and find nothing to claim). */
static struct slot_array *slots_for(size_t n)
{
    struct slot_array *arr = atomic_load(&slots);
    if (arr != NULL && arr->cap >= n)
        return arr;
    uint32_t cap = arr != NULL ? arr->cap : 64;
    while (cap < n)
        cap *= 2;
    struct slot_array *fresh = mprof_arena_alloc(sizeof *fresh + cap * sizeof fresh->s[0]);
    if (fresh == NULL)
        return arr; /* the threads beyond its capacity go unasked */
    fresh->cap = cap;
    atomic_store_explicit(&slots, fresh, memory_order_release);
    return fresh;
}

static int send_request(int sig, pid_t tid, uint64_t gen, uint32_t idx)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = sig;
    si.si_code = SI_QUEUE;
    si.si_pid = getpid();
    si.si_uid = getuid();
    si.si_value.sival_ptr = (void *)(uintptr_t)(gen << IDX_BITS | idx);
    return (int)syscall(SYS_rt_tgsigqueueinfo, getpid(), tid, sig, &si);
}

/*
 * Takes the stack of every thread but the caller: by signal where that is
 * harmless, from outside where a signal would hurt (or cannot get in).
 * collect_lock and the guard held.
 */
static void take_stacks(struct collection *c)
{
    int sig = ensure_handler();
    c->sig = sig;
    struct slot_array *arr = sig > 0 ? slots_for(c->n) : NULL;
    uint64_t gen = generation = (generation + 1) & GEN_MASK;
    uint32_t seen = arr ? atomic_load(&arr->answers) : 0;
    size_t asked = 0;
    struct outside o;
    memset(&o, 0, sizeof o);
    o.mem_fd = -1;

    /* Decide for each thread, and send the signals first: the handlers
     * run while we read the others from outside. */
    for (size_t i = 1; i < c->n; i++) {
        struct thread_info *ti = &c->t[i];
        ti->status = TS_NO_SIGNAL;
        if (ti->state == 'Z' || ti->state == 'X') {
            ti->status = TS_GONE;
            continue;
        }
        read_syscall(ti->tid, ti);
        int in_kernel = ti->sys_nr >= -1;
        int blocked = sig > 0 && blocks_signal(ti->tid, sig);
        if (sig <= 0 || arr == NULL || i >= arr->cap || blocked ||
            (ti->sys_nr >= 0 && interrupted_by_handler(ti))) {
            /* Read from outside below, if it is in the kernel at all. */
            if (!in_kernel)
                ti->status = blocked ? TS_BLOCKED : TS_NO_SIGNAL;
            continue;
        }
        struct slot *s = &arr->s[i];
        s->tid = ti->tid;
        s->n = 0;
        atomic_store_explicit(&s->ticket, gen << 2 | SLOT_PENDING, memory_order_release);
        if (send_request(sig, ti->tid, gen, (uint32_t)i) != 0) {
            atomic_store(&s->ticket, (uint64_t)SLOT_ABANDONED);
            ti->status = TS_GONE;
            continue;
        }
        ti->slot = (int)i;
        ti->status = TS_NO_ANSWER; /* until it answers */
        asked++;
    }
    for (size_t i = 1; i < c->n; i++) {
        struct thread_info *ti = &c->t[i];
        if (ti->slot < 0 && ti->status == TS_NO_SIGNAL && ti->sys_nr >= -1)
            read_from_outside(&o, ti);
    }

    /* Wait for every answer, or the deadline.  "seen" is read before the
     * slots are counted, so an answer between the count and the wait
     * makes the wait return at once. */
    int64_t deadline = mprof_mono_ns() + STACKS_TIMEOUT_NS;
    for (int tick = 0; asked > 0; tick++) {
        size_t pending = 0;
        for (size_t i = 1; i < c->n; i++) {
            struct thread_info *ti = &c->t[i];
            if (ti->slot < 0)
                continue;
            struct slot *s = &arr->s[ti->slot];
            uint64_t tk = atomic_load_explicit(&s->ticket, memory_order_acquire);
            if (tk == (gen << 2 | SLOT_DONE))
                continue;
            /* A thread that exited with our signal pending will never
             * answer: stop waiting for it (checked every 10 ms tick). */
            uint64_t expected = gen << 2 | SLOT_PENDING;
            if (tick > 0 && tk == expected &&
                syscall(SYS_tgkill, getpid(), ti->tid, 0) != 0 && errno == ESRCH &&
                atomic_compare_exchange_strong(&s->ticket, &expected, (uint64_t)SLOT_ABANDONED)) {
                ti->slot = -1;
                ti->status = TS_GONE;
                continue;
            }
            pending++;
        }
        int64_t left = deadline - mprof_mono_ns();
        if (pending == 0 || left <= 0)
            break;
        mprof_futex_wait(&arr->answers, seen, left < 10000000 ? left : 10000000);
        seen = atomic_load(&arr->answers);
    }

    /* Collect, and take back the slots of the threads that did not answer. */
    int poisoned = 0;
    for (size_t i = 1; i < c->n; i++) {
        struct thread_info *ti = &c->t[i];
        if (ti->slot < 0)
            continue;
        struct slot *s = &arr->s[ti->slot];
        uint64_t expected = gen << 2 | SLOT_PENDING;
        if (atomic_compare_exchange_strong(&s->ticket, &expected, (uint64_t)SLOT_ABANDONED)) {
            /* Never answered (stopped, traced, or it blocked the signal
             * after we looked): if it sits in the kernel, its stack can
             * still be read.  The pending signal finds nothing to do when
             * it is finally delivered. */
            read_syscall(ti->tid, ti);
            if (ti->sys_nr >= -1)
                read_from_outside(&o, ti);
            continue;
        }
        if (expected == (gen << 2 | SLOT_WRITING)) {
            /* Caught mid-unwind: give it a little longer. */
            int64_t grace_end = mprof_mono_ns() + WRITING_GRACE_NS;
            while (atomic_load_explicit(&s->ticket, memory_order_acquire) ==
                       (gen << 2 | SLOT_WRITING) &&
                   mprof_mono_ns() < grace_end)
                mprof_futex_wait(&arr->answers, atomic_load(&arr->answers), 5000000);
            expected = atomic_load_explicit(&s->ticket, memory_order_acquire);
            if (expected != (gen << 2 | SLOT_DONE)) {
                /* Still writing: this array may be written to after we
                 * return, so it must never be handed out again. */
                poisoned = 1;
                continue;
            }
        }
        if (expected == (gen << 2 | SLOT_DONE)) {
            ti->n = s->n < 0 ? 0 : s->n > MPROF_MAX_STACK ? MPROF_MAX_STACK : s->n;
            memcpy(ti->pcs, s->pcs, (size_t)ti->n * sizeof ti->pcs[0]);
            ti->status = TS_STACK;
            ti->how = FROM_SIGNAL;
        }
    }
    if (poisoned)
        atomic_store(&slots, NULL);
    outside_close(&o);
}

/*
 * Takes every thread's stack.  self_pcs: the caller's own stack, captured
 * by the public entry point (so that it starts at the program's frame).
 */
static int collect(struct collection *c, int all, const uintptr_t *self_pcs, int self_n)
{
    memset(c, 0, sizeof *c);
    c->time_ns = mprof_wall_ns();
    pid_t self = mprof_gettid();
    if (!all) {
        c->t = calloc(1, sizeof *c->t);
        if (c->t == NULL)
            return -1;
        c->n = 1;
        fill_self(&c->t[0], self);
    } else {
        pthread_mutex_lock(&collect_lock);
        int rc = list_threads(c, self);
        if (rc == 0)
            take_stacks(c);
        pthread_mutex_unlock(&collect_lock);
        if (rc != 0) {
            free_collection(c);
            errno = ENOMEM;
            return -1;
        }
    }
    c->t[0].n = self_n;
    memcpy(c->t[0].pcs, self_pcs, (size_t)self_n * sizeof self_pcs[0]);
    return 0;
}

/* ----------------------------------------------------------------- text */

static void signal_name(int sig, char *out, size_t len)
{
    if (sig >= SIGRTMIN)
        snprintf(out, len, "SIGRTMIN+%d", sig - SIGRTMIN);
    else
        snprintf(out, len, "signal %d", sig);
}

static const char *unavailable_reason(const struct thread_info *ti, int sig, char *buf,
                                      size_t len)
{
    char name[32];
    signal_name(sig, name, sizeof name);
    switch (ti->status) {
    case TS_BLOCKED:
        snprintf(buf, len, "the thread blocks %s and is running", name);
        break;
    case TS_NO_ANSWER:
        snprintf(buf, len, "no answer to %s within %ld ms", name,
                 (long)(STACKS_TIMEOUT_NS / 1000000));
        break;
    case TS_GONE:
        snprintf(buf, len, "the thread has exited");
        break;
    case TS_MOVED:
        snprintf(buf, len, "the thread woke up while its stack was being read");
        break;
    case TS_UNREADABLE:
        snprintf(buf, len, "not signalled (it would be disturbed or cannot be reached), and "
                           "its stack could not be read from outside");
        break;
    case TS_NO_SIGNAL:
        snprintf(buf, len, "no signal available to ask the thread");
        break;
    default:
        snprintf(buf, len, "no frames");
        break;
    }
    return buf;
}

/* "[sleeping, in epoll_wait]": the scheduler state, and the system call
 * when the thread is blocked in one, as Go shows "[chan receive]". */
static void state_text(const struct thread_info *ti, char *out, size_t len)
{
    const char *state = state_name(ti->state);
    if (ti->sys_nr >= 0) {
        const char *name = syscall_name(ti->sys_nr);
        if (name != NULL)
            snprintf(out, len, "%s, in %s", state, name);
        else
            snprintf(out, len, "%s, in syscall %ld", state, ti->sys_nr);
    } else {
        snprintf(out, len, "%s", state);
    }
}

/* Go's debug=2 form: one block per thread, the caller's own first. */
static void write_traceback_text(mprof_text *t, const struct collection *c)
{
    mprof_symbolizer *sym = mprof_sym_open();
    for (size_t i = 0; i < c->n; i++) {
        const struct thread_info *ti = &c->t[i];
        char state[96];
        state_text(ti, state, sizeof state);
        if (i > 0)
            mprof_text_printf(t, "\n");
        mprof_text_printf(t, "thread %d \"%s\" [%s]:\n", (int)ti->tid, ti->name, state);
        if (ti->status == TS_STACK && ti->n > 0) {
            mprof_text_traceback(t, sym, ti->pcs, ti->n);
            if (ti->how == FROM_OUTSIDE)
                mprof_text_printf(t, "\t(read without interrupting the thread: the outermost "
                                     "frames may be missing)\n");
        } else {
            char why[128];
            mprof_text_printf(t, "\t(no stack: %s)\n",
                              unavailable_reason(ti, c->sig, why, sizeof why));
        }
    }
    if (sym != NULL)
        mprof_sym_close(sym);
}

/* ------------------------------------------------------- count profile */

static const char *const goroutine_types[] = {"goroutine", "count"};

/* One record per thread, merged by (stack, name): the goroutine profile of
 * Go, where a sample's count is how many threads share it. */
static int write_count_profile(int fd, int debug, const struct collection *c)
{
    mprof_stk_set set = {0};
    for (size_t i = 0; i < c->n; i++) {
        const struct thread_info *ti = &c->t[i];
        mprof_stk_record key;
        memset(&key, 0, sizeof key);
        if (ti->status == TS_STACK && ti->n > 0) {
            key.n = ti->n;
            memcpy(key.pcs, ti->pcs, (size_t)ti->n * sizeof ti->pcs[0]);
        } else {
            key.n = 1;
            key.pcs[0] = ti->status == TS_BLOCKED     ? (uintptr_t)&mprof_thread_blocks_signal
                         : ti->status == TS_NO_ANSWER ? (uintptr_t)&mprof_thread_did_not_answer
                                                      : (uintptr_t)&mprof_thread_stack_unavailable;
        }
        key.label = ti->name;
        mprof_stk_record *match = NULL;
        for (size_t k = 0; k < set.n && match == NULL; k++) {
            mprof_stk_record *r = &set.recs[k];
            if (r->n == key.n && strcmp(r->label, key.label) == 0 &&
                memcmp(r->pcs, key.pcs, (size_t)key.n * sizeof key.pcs[0]) == 0)
                match = r;
        }
        if (match == NULL) {
            match = mprof_stk_set_push(&set);
            if (match == NULL) {
                mprof_stk_set_free(&set);
                errno = ENOMEM;
                return -1;
            }
            *match = key;
        }
        match->v[0] += 1;
    }
    char comment[256], sig[32] = "none";
    if (c->sig > 0)
        signal_name(c->sig, sig, sizeof sig);
    snprintf(comment, sizeof comment,
             "mprof %s goroutine profile: one count per OS thread, stacks taken with %s or "
             "read from outside threads blocked in system calls",
             MPROF_VERSION, sig);
    mprof_stk_profile d = {
        .name = "goroutine",
        .legacy_name = NULL,
        .nvalues = 1,
        .types = goroutine_types,
        .period_type = "goroutine",
        .period_unit = "count",
        .period = 1,
        .comment = comment,
        .time_ns = c->time_ns,
        .duration_ns = 0,
    };
    int rc = mprof_stk_write(fd, debug, &d, &set);
    int saved = errno;
    mprof_stk_set_free(&set);
    errno = saved;
    return rc;
}

/* --------------------------------------------------------- public API */

/* The guard for the symbolizer's and the collector's allocations, and no
 * cancellation: the collector must not be left half-way with its lock
 * held (open and read are cancellation points). */
struct api_state {
    int cancel;
};

static void api_enter(struct api_state *s)
{
    mprof_guard_enter();
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &s->cancel);
}

static void api_leave(struct api_state *s)
{
    int ignored;
    pthread_setcancelstate(s->cancel, &ignored);
    mprof_guard_leave();
}

static int write_goroutine(int fd, int debug, const uintptr_t *self_pcs, int self_n)
{
    struct collection c;
    if (collect(&c, 1, self_pcs, self_n) != 0)
        return -1;
    int rc;
    if (debug >= 2) {
        mprof_text t;
        mprof_text_fd(&t, fd);
        write_traceback_text(&t, &c);
        rc = (int)mprof_text_finish(&t);
    } else {
        rc = write_count_profile(fd, debug, &c);
    }
    int saved = errno;
    free_collection(&c);
    errno = saved;
    return rc;
}

MPROF_API int MPROF_ENTRY_TEXT mprof_write_goroutine_profile_fd(int fd, int debug)
{
    uintptr_t pcs[MPROF_MAX_STACK];
    int n = mprof_stack_capture(pcs, MPROF_MAX_STACK);
    struct api_state s;
    api_enter(&s);
    int rc = write_goroutine(fd, debug, pcs, n);
    int saved = errno;
    api_leave(&s);
    errno = saved;
    return rc;
}

MPROF_API int MPROF_ENTRY_TEXT mprof_stack(char *buf, size_t len, int all)
{
    uintptr_t pcs[MPROF_MAX_STACK];
    int n = mprof_stack_capture(pcs, MPROF_MAX_STACK);
    if (buf == NULL || len == 0)
        return 0;
    struct api_state s;
    api_enter(&s);
    struct collection c;
    long written = 0;
    if (collect(&c, all, pcs, n) == 0) {
        mprof_text t;
        mprof_text_buffer(&t, buf, len);
        write_traceback_text(&t, &c);
        written = mprof_text_finish(&t);
        free_collection(&c);
    } else {
        buf[0] = '\0';
    }
    api_leave(&s);
    return written > INT_MAX ? INT_MAX : (int)written;
}

/* ---------------------------------------------------------------- HTTP */

static long goroutine_count(void)
{
    DIR *d = opendir("/proc/self/task");
    if (d == NULL)
        return 0;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* On the server's worker thread: its own stack is the server's, which is
 * honest (Go's profile shows the goroutine serving the request too). */
static int MPROF_ENTRY_TEXT goroutine_http_write(int fd, const mprof_profile_params *p,
                                                  const mprof_profile_base *base)
{
    (void)base; /* a picture of now: no delta */
    uintptr_t pcs[MPROF_MAX_STACK];
    int n = mprof_stack_capture(pcs, MPROF_MAX_STACK);
    struct api_state s;
    api_enter(&s);
    int rc = write_goroutine(fd, p->debug, pcs, n);
    int saved = errno;
    api_leave(&s);
    errno = saved;
    return rc;
}

static const mprof_profile goroutine_profile = {
    .name = "goroutine",
    .description = "Stack traces of all current threads (Go's goroutine profile). Use "
                   "debug=2 as a query parameter to export in the same format as an "
                   "unrecovered panic.",
    .count = goroutine_count,
    .write = goroutine_http_write,
};

static const mprof_profile threads_profile = {
    .name = "threads",
    .description = "Same as goroutine: stack traces of all current threads",
    .count = goroutine_count,
    .write = goroutine_http_write,
};

/* ------------------------------------------------------------ life cycle */

/* A forked child has one thread; the collector lock may have been held by
 * another. */
void mprof_allstacks_postfork_child(void)
{
    static const pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    memcpy(&collect_lock, &fresh, sizeof fresh);
}

void mprof_allstacks_init(void)
{
    mprof_guard_enter();
    (void)mprof_profile_register(&goroutine_profile);
    (void)mprof_profile_register(&threads_profile);
    mprof_guard_leave();
}
