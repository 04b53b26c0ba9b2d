/*
 * The leak scan (leak_scan.h has what it decides and why).  In order:
 *
 *   1. list the blocks of the address table (its locks), the roots of the
 *      loaded objects (dl_iterate_phdr: the loader's lock) and, in sampled
 *      mode, the profiler's own ranges (sorted with qsort): what may
 *      allocate or lock comes first;
 *   2. stop the other threads (stop_world);
 *   3. list the blocks that carry a header (their records, lock-free) and
 *      sort all the blocks (a radix sort); read /proc/self/maps with raw
 *      system calls: every later read is clipped to its readable ranges,
 *      so a page unmapped meanwhile is never touched; drop the blocks no
 *      longer live; index them (find_block);
 *   4. mark from the roots, then from the blocks found, with an explicit
 *      stack (at most one entry per block: bounded); split what is left
 *      into direct and indirect;
 *   5. resume the threads.
 * Steps 2-5 neither allocate nor lock: their memory is mmap'd.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "core/options.h"
#include "core/os.h"
#include "heap/buckets.h"
#include "heap/leak_scan.h"
#include "heap/sampler.h"

/* Most threads stopped; more are scanned as unstopped (said in the report). */
#define MAX_THREADS 4096
/* Most root ranges from the loaded objects. */
#define MAX_ROOTS 4096
/* Most ranges the sampled scan skips: the arena's chunks and a few more. */
#define MAX_EXCLUDED 1100
/* Most mappings of /proc/self/maps kept. */
#define MAX_MAPS 65536
/* How long the scan waits for the threads to stop, and how long a stopped
 * thread waits for the end of the scan before it goes on by itself: a
 * scan stuck for a minute must not hang the program for good. */
#define STOP_TIMEOUT_NS (1000 * 1000000L)
#define HOLD_TIMEOUT_NS (60 * 1000000000L)
/* The red zone below a stopped thread's stack pointer (x86-64 ABI). */
#define RED_ZONE 128
/* A glibc thread's descriptor (struct pthread) above its thread pointer:
 * 2304 bytes in glibc 2.36, rounded up. */
#define TCB_SPAN 4096

/* ------------------------------------------------------------ memory */

static void *map_zeroed(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static size_t page_round(size_t n) { return (n + 4095) & ~(size_t)4095; }

/* ------------------------------------------------------------ ranges */

struct range {
    uintptr_t lo, hi;
};

struct scan_state {
    struct mprof_leak_block *b;
    size_t n;
    uintptr_t min, max; /* lowest block start, highest block end */
    struct range *maps; /* readable mappings, sorted */
    size_t nmaps;
    struct cluster *cl; /* the lookup index (find_block) */
    size_t ncl;
    uint32_t *pages;
    size_t index_bytes[2];
    uint32_t *stack;    /* marked blocks not yet scanned */
    size_t depth;
    uint64_t bytes_read;
};

/*
 * The index that finds the block a word points into.  Blocks are sorted
 * and split into clusters wherever two neighbours are more than
 * CLUSTER_GAP apart (the brk heap, each malloc arena, each mmap'd block);
 * each cluster has, per 4 KiB page of its span, the first block that
 * ends after the page's start.  A lookup is a binary search over the few
 * clusters, one load, then a binary search among the blocks of one page:
 * a binary search over all the blocks, each step a cache miss, cost the
 * scan 10 ns a word.  Size: 4 bytes a page of the clusters' spans, which
 * the gap bounds by the blocks' bytes plus CLUSTER_GAP per cluster.
 */
#define CLUSTER_GAP ((uintptr_t)1 << 20)
#define INDEX_PAGE_SHIFT 12

struct cluster {
    uintptr_t lo, hi; /* lo page-aligned; hi the last block's end */
    size_t first;     /* its first block */
    size_t page0;     /* its first page's entry in the page index */
};

/* In an array of n elements of `stride` bytes sorted by the uintptr_t at
 * offset `key` of each, from index lo: the index of the first element
 * whose key is above p (so lo - 1 is the last at or below it).  The one
 * binary search of the scan: blocks by start, clusters by start, mappings
 * by end. */
static size_t upper_bound(const void *base, size_t lo, size_t n, size_t stride, size_t key,
                          uintptr_t p)
{
    size_t hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        uintptr_t k;
        memcpy(&k, (const char *)base + mid * stride + key, sizeof k);
        if (k <= p)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static long find_in(const struct scan_state *s, size_t lo, size_t hi, uintptr_t p)
{
    /* The last block of [lo, hi) that starts at or below p. */
    lo = upper_bound(s->b, lo, hi, sizeof *s->b, offsetof(struct mprof_leak_block, addr), p);
    if (lo == 0)
        return -1;
    const struct mprof_leak_block *b = &s->b[lo - 1];
    size_t span = b->span ? b->span : 1; /* a malloc(0) block: its address */
    return p - b->addr < span ? (long)(lo - 1) : -1;
}

/* The block p points to or into, or -1. */
static long find_block(const struct scan_state *s, uintptr_t p)
{
    if (s->pages == NULL)
        return find_in(s, 0, s->n, p);
    size_t lo = upper_bound(s->cl, 0, s->ncl, sizeof *s->cl, offsetof(struct cluster, lo), p);
    if (lo == 0)
        return -1;
    const struct cluster *c = &s->cl[lo - 1];
    if (p >= c->hi)
        return -1;
    size_t page = c->page0 + ((p - c->lo) >> INDEX_PAGE_SHIFT);
    /* From the first block reaching into p's page to the first reaching
     * into the next one, inclusive. */
    size_t from = s->pages[page], to = s->pages[page + 1] + 1;
    if (to > s->n)
        to = s->n;
    long i = find_in(s, from, to, p);
    return i;
}

/* Builds the index over the sorted blocks, in memory mmap'd here (no
 * allocation: it runs with the threads stopped); without it (out of
 * memory) lookups search all blocks. */
static void build_index(struct scan_state *s)
{
    if (s->n == 0)
        return;
    size_t ncl = 1, npages = 0;
    for (size_t i = 1; i < s->n; i++)
        if (s->b[i].addr - (s->b[i - 1].addr + s->b[i - 1].size) > CLUSTER_GAP)
            ncl++;
    /* Pass 1: the clusters and their page counts. */
    size_t clbytes = page_round(ncl * sizeof(struct cluster));
    struct cluster *cl = map_zeroed(clbytes);
    if (cl == NULL)
        return;
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++) {
        const struct mprof_leak_block *b = &s->b[i];
        uintptr_t end = b->addr + (b->size ? b->size : 1);
        if (i == 0 || b->addr - cl[k - 1].hi > CLUSTER_GAP) {
            if (k > 0)
                npages += ((cl[k - 1].hi - cl[k - 1].lo) >> INDEX_PAGE_SHIFT) + 2;
            cl[k++] = (struct cluster){b->addr & ~(((uintptr_t)1 << INDEX_PAGE_SHIFT) - 1), end,
                                       i, 0};
        } else if (end > cl[k - 1].hi) {
            cl[k - 1].hi = end;
        }
    }
    npages += ((cl[k - 1].hi - cl[k - 1].lo) >> INDEX_PAGE_SHIFT) + 2;
    size_t pbytes = page_round(npages * sizeof(uint32_t));
    uint32_t *pages = map_zeroed(pbytes);
    if (pages == NULL || s->n > UINT32_MAX) {
        if (pages != NULL)
            munmap(pages, pbytes);
        munmap(cl, clbytes);
        return;
    }
    /* Pass 2: per page, the first block ending after its start. */
    size_t at = 0;
    for (size_t c = 0; c < k; c++) {
        size_t np = ((cl[c].hi - cl[c].lo) >> INDEX_PAGE_SHIFT) + 2;
        size_t end_block = c + 1 < k ? cl[c + 1].first : s->n;
        size_t i = cl[c].first;
        cl[c].page0 = at;
        for (size_t p = 0; p < np; p++) {
            uintptr_t page_lo = cl[c].lo + (p << INDEX_PAGE_SHIFT);
            while (i + 1 < end_block && s->b[i].addr + (s->b[i].size ? s->b[i].size : 1) <= page_lo)
                i++;
            pages[at++] = (uint32_t)i;
        }
    }
    s->cl = cl;
    s->ncl = k;
    s->pages = pages;
    s->index_bytes[0] = clbytes;
    s->index_bytes[1] = pbytes;
}

static void free_index(struct scan_state *s)
{
    if (s->cl != NULL)
        munmap(s->cl, s->index_bytes[0]);
    if (s->pages != NULL)
        munmap(s->pages, s->index_bytes[1]);
    s->cl = NULL;
    s->pages = NULL;
}

static long first_map_after(const struct scan_state *s, uintptr_t p)
{
    /* The first mapping ending above p. */
    return (long)upper_bound(s->maps, 0, s->nmaps, sizeof *s->maps, offsetof(struct range, hi), p);
}

/*
 * Marks every unmarked block a word of [lo, hi) points into with `tag`
 * (pushing it when tag is REACHABLE), skipping pointers into block `self`
 * (-1: none).  Only readable memory is read.
 */
static void scan_range(struct scan_state *s, uintptr_t lo, uintptr_t hi, uint8_t tag, long self)
{
    lo = (lo + 7) & ~(uintptr_t)7;
    for (size_t m = (size_t)first_map_after(s, lo); m < s->nmaps && s->maps[m].lo < hi; m++) {
        uintptr_t a = lo > s->maps[m].lo ? lo : s->maps[m].lo;
        uintptr_t z = hi < s->maps[m].hi ? hi : s->maps[m].hi;
        if (a >= z)
            continue;
        s->bytes_read += z - a;
        for (const uintptr_t *w = (const uintptr_t *)a; (uintptr_t)(w + 1) <= z; w++) {
            uintptr_t v = *w;
            if (v < s->min || v >= s->max)
                continue;
            long i = find_block(s, v);
            if (i < 0 || i == self)
                continue;
            uint8_t st = s->b[i].state;
            if (st == MPROF_LEAK_REACHABLE || st == MPROF_LEAK_GONE || st == tag)
                continue;
            s->b[i].state = tag;
            if (tag == MPROF_LEAK_REACHABLE)
                s->stack[s->depth++] = (uint32_t)i;
        }
    }
}

/* Marks everything reachable from the blocks on the stack. */
static void drain(struct scan_state *s)
{
    while (s->depth > 0) {
        const struct mprof_leak_block *b = &s->b[s->stack[--s->depth]];
        scan_range(s, b->addr, b->addr + b->size, MPROF_LEAK_REACHABLE, -1);
    }
}

static void mark_root(struct scan_state *s, uintptr_t lo, uintptr_t hi)
{
    scan_range(s, lo, hi, MPROF_LEAK_REACHABLE, -1);
    drain(s);
}

/* Scans [lo, hi) but the parts inside the sorted, disjoint ranges excl. */
static void scan_except(struct scan_state *s, uintptr_t lo, uintptr_t hi,
                        const struct range *excl, size_t nexcl)
{
    for (size_t i = 0; i < nexcl && lo < hi; i++) {
        if (excl[i].hi <= lo)
            continue;
        if (excl[i].lo >= hi)
            break;
        if (excl[i].lo > lo)
            scan_range(s, lo, excl[i].lo, MPROF_LEAK_REACHABLE, -1);
        lo = excl[i].hi;
    }
    if (lo < hi)
        scan_range(s, lo, hi, MPROF_LEAK_REACHABLE, -1);
}

static int by_lo(const void *a, const void *b)
{
    uintptr_t x = ((const struct range *)a)->lo, y = ((const struct range *)b)->lo;
    return (x > y) - (x < y);
}

/* Merges the overlapping ranges of r, sorted; returns the count left. */
static size_t merge_sorted(struct range *r, size_t n)
{
    if (n == 0)
        return 0;
    size_t k = 0;
    for (size_t i = 1; i < n; i++) {
        if (r[i].lo <= r[k].hi) {
            if (r[i].hi > r[k].hi)
                r[k].hi = r[i].hi;
        } else {
            r[++k] = r[i];
        }
    }
    return k + 1;
}

/* Sorts ranges and merges the overlapping ones; returns the count left. */
static size_t merge_ranges(struct range *r, size_t n)
{
    qsort(r, n, sizeof *r, by_lo);
    return merge_sorted(r, n);
}

/* Adds one range to sorted, merged ranges (room for it is the caller's),
 * without allocating: for the memory mapped with the threads stopped. */
static size_t add_range(struct range *r, size_t n, struct range x)
{
    size_t i = n;
    while (i > 0 && r[i - 1].lo > x.lo) {
        r[i] = r[i - 1];
        i--;
    }
    r[i] = x;
    return merge_sorted(r, n + 1);
}

/* The readable mapping containing p, or NULL. */
static const struct range *map_of(const struct scan_state *s, uintptr_t p)
{
    long m = first_map_after(s, p);
    return (size_t)m < s->nmaps && s->maps[m].lo <= p ? &s->maps[m] : NULL;
}

/* ------------------------------------------------------------ listing */

struct list_state {
    struct mprof_leak_block *b;
    size_t n, cap, bytes;
    int failed;
};

static void list_block(const mprof_live_block *blk, const uintptr_t *stack, int nstack,
                       size_t size_class, void *arg)
{
    (void)stack;
    (void)nstack;
    (void)size_class;
    struct list_state *l = arg;
    if (l->failed || blk->addr == 0)
        return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4096;
        size_t bytes = page_round(cap * sizeof *l->b);
        void *p = l->b ? mremap(l->b, l->bytes, bytes, MREMAP_MAYMOVE) : map_zeroed(bytes);
        if (p == MAP_FAILED || p == NULL) {
            l->failed = 1;
            return;
        }
        l->b = p;
        l->cap = bytes / sizeof *l->b;
        l->bytes = bytes;
    }
    l->b[l->n++] = (struct mprof_leak_block){blk->addr, blk->size, blk->size, blk->bucket,
                                             blk->weight, MPROF_LEAK_UNSEEN};
}

/*
 * Sorts the blocks by address with the threads stopped: qsort may malloc,
 * and a stopped thread may hold the allocator's lock.  An LSD radix sort,
 * 11 bits a pass, skipping the digits every address shares (the top ones,
 * the low alignment bits): 4 or 5 passes over the array and a copy of it,
 * mmap'd.  0, or -1 when the copy cannot be mapped.
 */
#define RADIX_BITS 11
static int sort_blocks(struct mprof_leak_block *b, size_t n)
{
    if (n < 2)
        return 0;
    size_t bytes = page_round(n * sizeof *b);
    struct mprof_leak_block *tmp = map_zeroed(bytes);
    if (tmp == NULL)
        return -1;
    uintptr_t any = 0, all = ~(uintptr_t)0;
    for (size_t i = 0; i < n; i++) {
        any |= b[i].addr;
        all &= b[i].addr;
    }
    struct mprof_leak_block *src = b, *dst = tmp;
    for (unsigned shift = 0; shift < 64; shift += RADIX_BITS) {
        uintptr_t mask = ((uintptr_t)1 << RADIX_BITS) - 1;
        if ((((any ^ all) >> shift) & mask) == 0)
            continue; /* the same digit in every address */
        size_t count[1 << RADIX_BITS] = {0};
        for (size_t i = 0; i < n; i++)
            count[(src[i].addr >> shift) & mask]++;
        size_t at = 0;
        for (size_t d = 0; d <= mask; d++) {
            size_t c = count[d];
            count[d] = at;
            at += c;
        }
        for (size_t i = 0; i < n; i++)
            dst[count[(src[i].addr >> shift) & mask]++] = src[i];
        struct mprof_leak_block *t = src;
        src = dst;
        dst = t;
    }
    if (src != b)
        memcpy(b, src, n * sizeof *b);
    munmap(tmp, bytes);
    return 0;
}

/* The roots of the loaded objects, and the dynamic linker's text. */
struct obj_roots {
    struct range r[MAX_ROOTS];
    int n;
    int dropped;
    struct range ldso[4];
    int nldso;
    struct range self[8]; /* libmprof's own segments */
    int nself;
};

static char self_marker; /* in libmprof's own data: names our object */

static int add_object(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct obj_roots *o = arg;
    int ours = 0, ldso = info->dlpi_name != NULL && strstr(info->dlpi_name, "/ld-linux") != NULL;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && (uintptr_t)&self_marker - lo < ph->p_memsz)
            ours = 1;
    }
    if (ours) {
        /* Our tables name every block: never a root. */
        for (int i = 0; i < info->dlpi_phnum && o->nself < 8; i++)
            if (info->dlpi_phdr[i].p_type == PT_LOAD)
                o->self[o->nself++] =
                    (struct range){info->dlpi_addr + info->dlpi_phdr[i].p_vaddr,
                                   info->dlpi_addr + info->dlpi_phdr[i].p_vaddr +
                                       info->dlpi_phdr[i].p_memsz};
        return 0;
    }
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if ((ph->p_flags & PF_X) && ldso && o->nldso < 4)
            o->ldso[o->nldso++] = (struct range){lo, lo + ph->p_memsz};
        if (!(ph->p_flags & PF_W))
            continue;
        if (o->n < MAX_ROOTS)
            o->r[o->n++] = (struct range){lo, lo + ph->p_memsz};
        else
            o->dropped++;
    }
    return 0;
}

/* ------------------------------------------------------------ stopping */

/* A slot's life: PENDING (signal sent) -> WRITING (its handler copies the
 * registers) -> STOPPED (read them; the thread waits), or PENDING ->
 * ABANDONED (no answer in time: a late handler finds it so and returns).
 * A slot still WRITING when the wait ends is not read; its thread waits
 * for the release all the same. */
enum { SLOT_FREE = 0, SLOT_PENDING, SLOT_WRITING, SLOT_STOPPED, SLOT_ABANDONED };

struct thread_slot {
    pid_t tid;
    _Atomic int state;
    uintptr_t tp;              /* its thread pointer (%fs base) */
    uintptr_t regs[NGREG];
};

struct world {
    struct thread_slot *slot; /* mmap'd, MAX_THREADS */
    int n;
    int stopped;
};

/* The one stop in progress: the handler finds its slot here.  Scans are
 * serialized (scan_lock). */
static struct thread_slot *_Atomic stop_slots;
static _Atomic int stop_nslots;
static _Atomic uint32_t stop_answers; /* futex word: bumped by each stopped thread */
static _Atomic uint32_t stop_release; /* futex word: the scan's generation done */
static int stop_signal;
static struct thread_slot *slot_mem; /* MAX_THREADS of them, never unmapped */
static pthread_mutex_t scan_lock = PTHREAD_MUTEX_INITIALIZER;

static uintptr_t thread_pointer(void)
{
    uintptr_t tp;
    __asm__("mov %%fs:0, %0" : "=r"(tp));
    return tp;
}

/* The stop signal's handler: async-signal-safe, no lock, no allocation. */
static void stop_handler(int sig, siginfo_t *info, void *ucontext)
{
    (void)sig;
    (void)info;
    int saved = errno;
    pid_t me = mprof_gettid();
    struct thread_slot *slots = atomic_load(&stop_slots);
    int n = atomic_load(&stop_nslots);
    uint32_t release = atomic_load(&stop_release);
    for (int i = 0; slots != NULL && i < n; i++) {
        struct thread_slot *t = &slots[i];
        if (t->tid != me)
            continue;
        int expected = SLOT_PENDING;
        if (!atomic_compare_exchange_strong(&t->state, &expected, SLOT_WRITING))
            break; /* too late: the scan went on without us */
        const ucontext_t *uc = ucontext;
        memcpy(t->regs, uc->uc_mcontext.gregs, sizeof t->regs);
        t->tp = thread_pointer();
        atomic_store(&t->state, SLOT_STOPPED);
        atomic_fetch_add(&stop_answers, 1);
        mprof_futex_wake(&stop_answers, 1);
        int64_t until = mprof_mono_ns() + HOLD_TIMEOUT_NS;
        while (atomic_load(&stop_release) == release) {
            int64_t left = until - mprof_mono_ns();
            if (left <= 0)
                break;
            mprof_futex_wait(&stop_release, release, left);
        }
        break;
    }
    errno = saved;
}

/* The first real-time signal at or above SIGRTMIN+6 that nobody handles
 * (allstacks takes from SIGRTMIN+5 up, the program may have any): ours for
 * good once taken, since a signal arriving late must find a handler. */
static int take_signal(void)
{
    if (stop_signal != 0) {
        struct sigaction cur;
        if (sigaction(stop_signal, NULL, &cur) == 0 && mprof_sigaction_is(&cur, stop_handler))
            return stop_signal;
    }
    for (int s = SIGRTMAX; s >= SIGRTMIN + 6; s--) {
        struct sigaction cur;
        if (sigaction(s, NULL, &cur) != 0 || cur.sa_handler != SIG_DFL)
            continue;
        struct sigaction sa = {0};
        sa.sa_sigaction = stop_handler;
        sa.sa_flags = SA_SIGINFO | SA_RESTART;
        sigfillset(&sa.sa_mask);
        if (sigaction(s, &sa, NULL) == 0)
            return stop_signal = s;
    }
    return 0;
}

struct linux_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

/* Reads /proc/self/task/TID/NAME into buf (NUL-terminated); length or -1. */
static ssize_t read_task_file(pid_t tid, const char *name, char *buf, size_t cap)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/%s", (int)tid, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    return n;
}

/* One of the profiler's own threads (named mprof-..., every signal
 * blocked): no program data on its stack, and it would not answer. */
static int own_thread(pid_t tid)
{
    char comm[32];
    return read_task_file(tid, "comm", comm, sizeof comm) > 0 && strncmp(comm, "mprof-", 6) == 0;
}

/* A thread that did not answer: its stack pointer, if it sits in a system
 * call (the kernel then gives it: "nr args... sp pc"), else 0. */
static uintptr_t blocked_sp(pid_t tid)
{
    char buf[256];
    /* "running": not in the kernel now.  A thread just created (the
     * profiler's own start with every signal blocked, before they name
     * themselves) gets there within a few milliseconds: 20 tries, 2 ms
     * apart, then it counts as not stopped. */
    for (int tries = 0;; tries++) {
        if (read_task_file(tid, "syscall", buf, sizeof buf) <= 0)
            return 0;
        if (buf[0] != 'r')
            break;
        if (tries == 20)
            return 0;
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    char *sp = NULL, *c = buf;
    for (int field = 0; *c != '\0'; field++) {
        while (*c == ' ')
            c++;
        if (field == 7)
            sp = c;
        while (*c != '\0' && *c != ' ')
            c++;
    }
    return sp != NULL ? (uintptr_t)strtoull(sp, NULL, 16) : 0;
}

/* Whether thread tid blocks sig (its status file's SigBlk): it would not
 * answer, and waiting for it would cost the whole timeout. */
static int blocks_signal(pid_t tid, int sig)
{
    char buf[2048];
    if (read_task_file(tid, "status", buf, sizeof buf) <= 0)
        return 0;
    const char *c = strstr(buf, "SigBlk:");
    if (c == NULL)
        return 0;
    unsigned long long mask = strtoull(c + 7, NULL, 16);
    return (mask >> (sig - 1)) & 1;
}

/* Lists the other threads into w->slot (pending); 0 or -1. */
static int list_threads(struct world *w, pid_t me)
{
    int fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    char buf[8192];
    long got;
    while ((got = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0) {
        for (long off = 0; off < got;) {
            const struct linux_dirent64 *d = (const void *)(buf + off);
            off += d->d_reclen;
            pid_t tid = (pid_t)atoi(d->d_name);
            if (tid <= 0 || tid == me)
                continue;
            if (w->n == MAX_THREADS)
                break;
            if (own_thread(tid))
                continue;
            struct thread_slot *t = &w->slot[w->n++];
            t->tid = tid;
            atomic_store(&t->state, SLOT_PENDING);
        }
    }
    close(fd);
    return 0;
}

static void stop_world(struct world *w)
{
    int sig = take_signal();
    atomic_store(&stop_answers, 0);
    atomic_store(&stop_slots, w->slot);
    atomic_store(&stop_nslots, w->n);
    int sent = 0;
    pid_t pid = getpid();
    for (int i = 0; i < w->n; i++) {
        if (sig != 0 && !blocks_signal(w->slot[i].tid, sig) &&
            syscall(SYS_tgkill, pid, w->slot[i].tid, sig) == 0)
            sent++;
        else
            atomic_store(&w->slot[i].state, SLOT_ABANDONED); /* gone, or no signal */
    }
    int64_t until = mprof_mono_ns() + STOP_TIMEOUT_NS;
    for (;;) {
        uint32_t seen = atomic_load(&stop_answers);
        if ((int)seen >= sent)
            break;
        int64_t left = until - mprof_mono_ns();
        if (left <= 0)
            break;
        mprof_futex_wait(&stop_answers, seen, left < 10000000 ? left : 10000000);
    }
    for (int i = 0; i < w->n; i++) {
        int expected = SLOT_PENDING;
        /* Late answers find their slot abandoned and return at once. */
        (void)atomic_compare_exchange_strong(&w->slot[i].state, &expected, SLOT_ABANDONED);
        /* One caught copying its registers: a few hundred bytes, done
         * at once unless it was descheduled; bounded all the same. */
        for (int spins = 0; atomic_load(&w->slot[i].state) == SLOT_WRITING && spins < 10000;
             spins++)
            sched_yield();
        w->stopped += atomic_load(&w->slot[i].state) == SLOT_STOPPED;
    }
}

static void resume_world(void)
{
    atomic_store(&stop_nslots, 0);
    atomic_store(&stop_slots, NULL);
    atomic_fetch_add(&stop_release, 1);
    mprof_futex_wake(&stop_release, INT32_MAX);
}

/* ------------------------------------------------------------ maps */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* One line of /proc/self/maps: "lo-hi perms off dev inode path". */
struct map_line {
    uintptr_t lo, hi;
    char r, w, p;
    int anonymous; /* no path, or [heap] / [stack] */
    int special;   /* [vvar], [vdso], [vsyscall] */
};

static int parse_map_line(const char *s, const char *end, struct map_line *m)
{
    uintptr_t v[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        int d, any = 0;
        while (s < end && (d = hexval(*s)) >= 0) {
            v[k] = v[k] << 4 | (uintptr_t)d;
            s++;
            any = 1;
        }
        if (!any || s >= end || *s != (k == 0 ? '-' : ' '))
            return -1;
        s++;
    }
    if (end - s < 4)
        return -1;
    m->lo = v[0];
    m->hi = v[1];
    m->r = s[0];
    m->w = s[1];
    m->p = s[3];
    /* The path is the sixth field: skip perms, offset, dev, inode. */
    for (int f = 0; f < 4; f++) {
        while (s < end && *s != ' ')
            s++;
        while (s < end && *s == ' ')
            s++;
    }
    m->anonymous = s >= end || strncmp(s, "[heap]", 6) == 0 || strncmp(s, "[stack]", 7) == 0;
    m->special = s < end && *s == '[' && !m->anonymous;
    return 0;
}

/*
 * Reads /proc/self/maps into maps (readable ranges) and, when writable is
 * not NULL, the private writable anonymous ranges too.  Raw system calls
 * into the caller's buffer: no allocation.
 */
static size_t read_maps(char *buf, size_t cap, struct range *maps, size_t max,
                        struct range *writable, size_t *nwritable)
{
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    size_t len = 0;
    ssize_t got;
    while (len < cap && (got = read(fd, buf + len, cap - len)) > 0)
        len += (size_t)got;
    close(fd);
    size_t n = 0;
    if (nwritable)
        *nwritable = 0;
    for (const char *s = buf; s < buf + len && n < max;) {
        const char *e = memchr(s, '\n', (size_t)(buf + len - s));
        if (e == NULL)
            e = buf + len; /* a cut last line: parsed if whole enough */
        struct map_line m;
        if (parse_map_line(s, e, &m) == 0 && m.r == 'r' && !m.special) {
            maps[n++] = (struct range){m.lo, m.hi};
            /* Anonymous writable memory (the objects' segments are roots
             * already).  Not file-backed mappings: a page past the end of
             * a truncated file raises SIGBUS when read, and devices'
             * mappings have side effects. */
            if (writable && m.w == 'w' && m.anonymous && *nwritable < max)
                writable[(*nwritable)++] = (struct range){m.lo, m.hi};
        }
        s = e + 1;
    }
    return n;
}

/* ------------------------------------------------------------ the scan */


/* A stopped thread's stack, registers, static TLS and descriptor. */
static void mark_thread(struct scan_state *s, uintptr_t sp, uintptr_t tp, const uintptr_t *regs,
                        int nregs, size_t tls_size)
{
    scan_range(s, (uintptr_t)regs, (uintptr_t)(regs + nregs), MPROF_LEAK_REACHABLE, -1);
    drain(s);
    const struct range *stack = map_of(s, sp);
    if (stack != NULL) {
        uintptr_t lo = sp > stack->lo + RED_ZONE ? sp - RED_ZONE : stack->lo;
        uintptr_t hi = stack->hi;
        /* A glibc thread: its TLS and descriptor sit at the top of its
         * stack block, the descriptor just above the thread pointer; above
         * that the mapping may have merged with unrelated memory. */
        if (tp > sp && tp < stack->hi && tp + TCB_SPAN < hi)
            hi = tp + TCB_SPAN;
        /* A stack the program allocated (pthread_attr_setstack, a
         * coroutine's): in use, and it ends where its block does, not
         * where the heap's mapping does. */
        long in = find_block(s, sp);
        if (in >= 0) {
            struct mprof_leak_block *b = &s->b[in];
            if (b->addr + b->size < hi)
                hi = b->addr + b->size;
            if (b->state == MPROF_LEAK_UNSEEN) {
                b->state = MPROF_LEAK_REACHABLE;
                s->stack[s->depth++] = (uint32_t)in;
            }
        }
        mark_root(s, lo, hi);
    }
    if (stack == NULL || tp < stack->lo || tp >= stack->hi) {
        /* The main thread's, or a stack the program gave: the TLS block
         * below the thread pointer and the descriptor above it. */
        uintptr_t lo = tp > tls_size ? tp - tls_size : 0;
        mark_root(s, lo, tp + TCB_SPAN);
    }
}

/* The static TLS size from the dynamic linker (what LeakSanitizer asks it
 * too); 0 when it will not say.  Asked once, at start-up
 * (mprof_leak_scan_init): dlsym at exit would clear the program's pending
 * dlerror() result, freeing what the scan is about to judge. */
static size_t tls_static_size;
static size_t static_tls_size(void);

void mprof_leak_scan_init(void)
{
    if (mprof_leak_mode() != MPROF_LEAKS_OFF)
        tls_static_size = static_tls_size();
}

static size_t static_tls_size(void)
{
    void (*get)(size_t *, size_t *) =
        (void (*)(size_t *, size_t *))dlsym(RTLD_DEFAULT, "_dl_get_tls_static_info");
    size_t size = 0, align = 0;
    if (get != NULL)
        get(&size, &align);
    return size < (1u << 24) ? size : 0;
}

/* Whether a block was allocated by the dynamic linker itself (its TLS
 * blocks, its link maps): reachable by LeakSanitizer's rule. */
static int from_loader(const struct mprof_leak_block *b, const struct obj_roots *o)
{
    if (b->bucket == NULL || b->bucket->nstack == 0)
        return 0;
    uintptr_t pc = b->bucket->stack[0];
    for (int i = 0; i < o->nldso; i++)
        if (pc - o->ldso[i].lo < o->ldso[i].hi - o->ldso[i].lo)
            return 1;
    return 0;
}

/* The span of a block whose glibc chunk begins 16 bytes before real. */
static void clip_to_chunk(struct mprof_leak_block *b, const struct scan_state *s, uintptr_t real)
{
    if (map_of(s, real - 16) == NULL)
        return;
    uint64_t csize = *(const uint64_t *)(real - 8);
    uintptr_t chunk_end = real - 16 + (csize & ~(uint64_t)7);
    if (!(csize & 2) && chunk_end > b->addr && chunk_end < b->addr + b->size)
        b->span = chunk_end - b->addr;
}

/* Whether a listed block is still the live block it was (header mode:
 * its record still names it); and its span (struct mprof_leak_block) from
 * glibc's chunk size when glibc's allocator is underneath. */
static int still_live(struct mprof_leak_block *b, const struct scan_state *s)
{
    if (!atomic_load(&mprof_hot.header_mode)) {
        if (map_of(s, b->addr) == NULL)
            return 0;
        if (atomic_load(&mprof_allocator_glibc) == 1)
            clip_to_chunk(b, s, b->addr);
        return 1;
    }
    if (map_of(s, b->addr - sizeof(struct mprof_block_header)) == NULL)
        return 0;
    const struct mprof_block_header *h = mprof_header_of((const void *)b->addr);
    if (!mprof_has_header((const void *)b->addr) || !mprof_header_intact(h->tag) ||
        h->rec == NULL)
        return 1; /* a block kept in the table (the boot pool's): trust the list */
    if (map_of(s, (uintptr_t)h->rec) == NULL)
        return 1; /* not a record: the header is the program's bytes now */
    if (atomic_load_explicit(&h->rec->addr, memory_order_relaxed) != b->addr)
        return 0;
    /* glibc's chunk: its size word just before the real allocation, the
     * real allocation offset bytes before the block; bit 1: mmapped (no
     * neighbour). */
    clip_to_chunk(b, s, b->addr - mprof_header_offset(h->tag));
    return 1;
}

int mprof_leak_scan_run(struct mprof_leak_scan *out, uintptr_t self_sp,
                        const uintptr_t *self_regs, int nregs, int sampled)
{
    *out = (struct mprof_leak_scan){0};
    out->sampled = sampled;
    int64_t t0 = mprof_mono_ns();
    pthread_mutex_lock(&scan_lock);

    /* 1: what needs the allocator or the loader's lock: the blocks of
     * the address table (few in header mode: the boot pool's), the roots
     * of the loaded objects. */
    struct list_state l = {0};
    if (mprof_live_foreach_table(list_block, &l) != 0 || l.failed) {
        if (l.b)
            munmap(l.b, l.bytes);
        pthread_mutex_unlock(&scan_lock);
        errno = ENOMEM;
        return -1;
    }
    size_t maps_buf_bytes = 8u << 20;
    /* The threads' slots are mapped once and kept: a signal delivered
     * late reads them after the scan is over. */
    if (slot_mem == NULL)
        slot_mem = map_zeroed(page_round(MAX_THREADS * sizeof(struct thread_slot)));
    size_t work_bytes = page_round(sizeof(struct obj_roots)) +
                        page_round(2 * MAX_MAPS * sizeof(struct range)) +
                        page_round(MAX_EXCLUDED * sizeof(struct range)) + maps_buf_bytes;
    char *work = slot_mem != NULL ? map_zeroed(work_bytes) : NULL;
    if (work == NULL) {
        if (l.b)
            munmap(l.b, l.bytes);
        pthread_mutex_unlock(&scan_lock);
        errno = ENOMEM;
        return -1;
    }
    char *cur = work;
    struct obj_roots *objs = (struct obj_roots *)cur;
    cur += page_round(sizeof *objs);
    struct world w = {.slot = slot_mem};
    struct range *maps = (struct range *)cur;
    struct range *writable = maps + MAX_MAPS;
    cur += page_round(2 * MAX_MAPS * sizeof(struct range));
    struct range *excl = (struct range *)cur;
    cur += page_round(MAX_EXCLUDED * sizeof(struct range));
    char *maps_buf = cur;
    dl_iterate_phdr(add_object, objs);
    size_t nexcl = 0;
    if (sampled) {
        /* What the whole-memory read skips: the profiler's own memory
         * (its segments, the arena, this scan's), listed and sorted now,
         * while sorting may still allocate. */
        uintptr_t alo[MAX_EXCLUDED - 16], ahi[MAX_EXCLUDED - 16];
        size_t na = mprof_arena_ranges(alo, ahi, MAX_EXCLUDED - 16);
        for (size_t i = 0; i < na; i++)
            excl[nexcl++] = (struct range){alo[i], ahi[i]};
        for (int i = 0; i < objs->nself; i++)
            excl[nexcl++] = objs->self[i];
        excl[nexcl++] = (struct range){(uintptr_t)work, (uintptr_t)work + work_bytes};
        nexcl = merge_ranges(excl, nexcl);
    }
    size_t tls_size = tls_static_size;
    pid_t me = mprof_gettid();
    (void)list_threads(&w, me);
    int64_t t1 = mprof_mono_ns();

    /* 2, 3: stop; list the blocks that carry a header, as they are at
     * the stop (lock-free: a block freed or allocated meanwhile is judged
     * as it is now), sort them all; see what is mapped. */
    stop_world(&w);
    (void)mprof_live_foreach_records(list_block, &l);
    size_t stack_bytes = page_round((l.n + 1) * sizeof(uint32_t));
    uint32_t *stack = l.failed ? NULL : map_zeroed(stack_bytes);
    if (stack == NULL || sort_blocks(l.b, l.n) != 0) {
        resume_world();
        if (stack != NULL)
            munmap(stack, stack_bytes);
        if (l.b)
            munmap(l.b, l.bytes);
        munmap(work, work_bytes);
        pthread_mutex_unlock(&scan_lock);
        errno = ENOMEM;
        return -1;
    }
    if (sampled) {
        /* The list of blocks and the mark stack, mapped since. */
        nexcl = add_range(excl, nexcl, (struct range){(uintptr_t)l.b, (uintptr_t)l.b + l.bytes});
        nexcl = add_range(excl, nexcl,
                          (struct range){(uintptr_t)stack, (uintptr_t)stack + stack_bytes});
    }
    size_t nwritable = 0;
    struct scan_state s = {.b = l.b, .n = l.n, .stack = stack};
    build_index(&s);
    s.maps = maps;
    s.nmaps = read_maps(maps_buf, maps_buf_bytes, maps, MAX_MAPS, sampled ? writable : NULL,
                        &nwritable);
    s.min = UINTPTR_MAX;
    for (size_t i = 0; i < s.n; i++) {
        struct mprof_leak_block *b = &s.b[i];
        if (!still_live(b, &s)) {
            b->state = MPROF_LEAK_GONE;
            continue;
        }
        if (b->addr < s.min)
            s.min = b->addr;
        uintptr_t end = b->addr + (b->size ? b->size : 1);
        if (end > s.max)
            s.max = end;
    }

    /* 4: mark. */
    if (sampled) {
        /* Every word anywhere but our own: roots, then every private
         * writable mapping, skipping the scan's own memory.  Nothing is
         * followed (all memory is read anyway). */
        for (int i = 0; i < objs->n; i++)
            scan_range(&s, objs->r[i].lo, objs->r[i].hi, MPROF_LEAK_REACHABLE, -1);
        for (size_t i = 0; i < nwritable; i++) {
            uintptr_t lo = writable[i].lo, hi = writable[i].hi;
            /* This thread's stack below its caller's frame: the scan's
             * own frames and their stale copies of every address. */
            if (self_sp >= lo && self_sp < hi)
                lo = self_sp;
            scan_except(&s, lo, hi, excl, nexcl);
        }
        for (int i = 0; i < w.n; i++)
            if (atomic_load(&w.slot[i].state) == SLOT_STOPPED)
                scan_range(&s, (uintptr_t)w.slot[i].regs, (uintptr_t)(w.slot[i].regs + NGREG),
                           MPROF_LEAK_REACHABLE, -1);
        scan_range(&s, (uintptr_t)self_regs, (uintptr_t)(self_regs + nregs),
                   MPROF_LEAK_REACHABLE, -1);
        s.depth = 0; /* the marks were all read already */
    } else {
        for (size_t i = 0; i < s.n; i++)
            if (s.b[i].state == MPROF_LEAK_UNSEEN && from_loader(&s.b[i], objs)) {
                s.b[i].state = MPROF_LEAK_REACHABLE;
                s.stack[s.depth++] = (uint32_t)i;
            }
        drain(&s);
        for (int i = 0; i < objs->n; i++)
            mark_root(&s, objs->r[i].lo, objs->r[i].hi);
        uintptr_t sp;
        mark_thread(&s, self_sp, thread_pointer(), self_regs, nregs, tls_size);
        for (int i = 0; i < w.n; i++) {
            struct thread_slot *t = &w.slot[i];
            if (atomic_load(&t->state) == SLOT_STOPPED) {
                mark_thread(&s, t->regs[REG_RSP], t->tp, t->regs, NGREG, tls_size);
            } else if ((sp = blocked_sp(t->tid)) != 0) {
                /* Blocking the signal, but still in the kernel: its stack
                 * from there (no registers: they are the kernel's). */
                const struct range *st = map_of(&s, sp);
                if (st != NULL)
                    mark_root(&s, sp > st->lo + RED_ZONE ? sp - RED_ZONE : st->lo, st->hi);
                w.stopped++;
            }
        }
        /* 5 (its part under the stop): leaked blocks pointed to by other
         * leaked blocks are indirect. */
        for (size_t i = 0; i < s.n; i++) {
            const struct mprof_leak_block *b = &s.b[i];
            if (b->state == MPROF_LEAK_UNSEEN || b->state == MPROF_LEAK_INDIRECT)
                scan_range(&s, b->addr, b->addr + b->size, MPROF_LEAK_INDIRECT, (long)i);
        }
    }
    resume_world();
    out->bytes_read = s.bytes_read;
    out->threads = 1 + w.stopped;
    out->threads_unstopped = w.n - w.stopped;
    free_index(&s);
    munmap(stack, stack_bytes);
    munmap(work, work_bytes);
    pthread_mutex_unlock(&scan_lock);
    out->blocks = l.b;
    out->n = l.n;
    out->blocks_bytes = l.bytes;
    int64_t t2 = mprof_mono_ns();
    out->list_ns = t1 - t0;
    out->scan_ns = t2 - t1;
    return 0;
}

void mprof_leak_scan_postfork_child(void)
{
    /* A scan in another thread of the parent (over HTTP) left it held. */
    pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    scan_lock = fresh;
}

void mprof_leak_scan_free(struct mprof_leak_scan *scan)
{
    if (scan->blocks != NULL)
        munmap(scan->blocks, scan->blocks_bytes);
    *scan = (struct mprof_leak_scan){0};
}

/* ------------------------------------------------------------ the mode */

static int leak_mode = -1;

int mprof_leak_mode(void)
{
    if (leak_mode >= 0)
        return leak_mode;
    const char *v = mprof_option_text(MPROF_OPT_LEAKS);
    int mode = MPROF_LEAKS_OFF;
    if (v == NULL || strcmp(v, "0") == 0 || strcmp(v, "off") == 0)
        mode = MPROF_LEAKS_OFF;
    else if (strcmp(v, "1") == 0 || strcmp(v, "full") == 0)
        mode = MPROF_LEAKS_FULL;
    else if (strcmp(v, "sampled") == 0)
        mode = MPROF_LEAKS_SAMPLED;
    else
        mprof_warn("MPROF_LEAKS=%s is not 1, full or sampled; no leak check: set one of "
                   "those, or unset it", v);
    return leak_mode = mode;
}
