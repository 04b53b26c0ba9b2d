/*
 * Programs with known leaks, one per scenario (argv[1]), run under
 * `mprof run --leaks` and under LeakSanitizer (the same source built with
 * -fsanitize=leak) by leaks_check.sh, which compares the leaked sites and
 * their direct/indirect split.  Each allocation site is its own noinline
 * function, so that both tools name it; after the allocations, the stack
 * below is scrubbed so that no stale copy of a lost pointer remains where
 * either scan reads (both are conservative).
 *
 *   lost       a pointer overwritten: 1 direct leak (leak_lost)
 *   cycle      two blocks pointing to each other, both lost: 2 indirect
 *   tree       a lost root with two children: 1 direct + 2 indirect
 *   global     a block only a global points to: no leak
 *   interior   a block only a global's interior pointer reaches: no leak
 *   thread     a block only another thread's stack holds, while that
 *              thread waits: no leak
 *   tls        a block only a __thread variable of another thread holds
 *   dlopen     a block only a dlopen'ed library's global holds: no leak
 *   dltls      a block only a dlopen'ed library's __thread variable holds
 *              (dynamic TLS, reached through the DTV), in the main thread
 *              and in another one: no leak
 *   fork       the child leaks its own block (leak_in_child), the parent not
 *   mixed      lost + tree + global + interior together
 *   ownstack   a thread on a stack the program malloc'ed
 *              (pthread_attr_setstack), holding a block only there, and a
 *              block lost meanwhile: only that one leaked
 *   setenv     setenv and unsetenv: glibc keeps every string it copied in
 *              a tree of its own (tsearch, pointers tagged in their low
 *              bit): no leak, the profiler's own environment change aside
 *   churn      four threads replacing blocks of a global ring of theirs as
 *              fast as they can while main exits: no leak (the blocks
 *              allocated or freed around the stop are judged as they are)
 *   serve      a lost pointer, then "ready" on stdout and a wait until a
 *              signal ends it (SIGTERM: the report is made on the way out)
 *   sampled    for the sampled mode, at the default rate: 64 MiB lost in
 *              4 KiB blocks (leak_many); 32 MiB kept in a list only heap
 *              blocks point into, its head a global (keep_list); 32 MiB
 *              kept through a malloc'd array of pointers (keep_array); 2048
 *              lost roots each holding a 16 KiB child (many_roots,
 *              many_children)
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NOINLINE __attribute__((noipa))

struct node {
    struct node *a, *b;
    char pad[48];
};

void *volatile global_keep;
char *volatile global_interior;
static __thread void *volatile tls_keep;

NOINLINE void scrub_stack(void)
{
    volatile char buf[16384];
    memset((char *)buf, 0, sizeof buf);
}

NOINLINE void *leak_lost(void)
{
    void *volatile p = malloc(100);
    memset(p, 1, 100);
    p = NULL;
    return (void *)p;
}

NOINLINE struct node *cycle_node(void) { return calloc(1, sizeof(struct node)); }

NOINLINE void leak_cycle(void)
{
    struct node *x = cycle_node(), *y = cycle_node();
    x->a = y;
    y->a = x;
}

NOINLINE struct node *tree_root(void) { return calloc(1, sizeof(struct node)); }
NOINLINE struct node *tree_child(void) { return calloc(1, sizeof(struct node)); }

NOINLINE void leak_tree(void)
{
    struct node *r = tree_root();
    r->a = tree_child();
    r->b = tree_child();
}

NOINLINE void keep_global(void) { global_keep = malloc(200); }

NOINLINE void keep_interior(void)
{
    char *p = malloc(300);
    global_interior = p + 150;
}

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int ready;

NOINLINE void *thread_block(void) { return malloc(400); }

/* Tells main this thread holds its block, then waits for the exit. */
static void ready_then_wait(void)
{
    pthread_mutex_lock(&mu);
    ready = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    for (;;)
        pause();
}

static void *holder(void *arg)
{
    (void)arg;
    void *volatile mine = thread_block();
    ready_then_wait(); /* `mine` stays in this frame until the process exits */
    return (void *)mine;
}

NOINLINE void *tls_block(void) { return malloc(500); }

static void *tls_holder(void *arg)
{
    (void)arg;
    tls_keep = tls_block();
    ready_then_wait();
    return NULL;
}

static void start_and_wait(void *(*fn)(void *))
{
    pthread_t t;
    pthread_create(&t, NULL, fn, NULL);
    pthread_mutex_lock(&mu);
    while (!ready)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
}

#define CHURN_THREADS 4
#define CHURN_RING 64
void *volatile churn_ring[CHURN_THREADS][CHURN_RING];
static _Atomic int churn_started;

NOINLINE void *churn_block(size_t n) { return malloc(n); }

static void *churner(void *arg)
{
    void *volatile *ring = churn_ring[(intptr_t)arg];
    atomic_fetch_add(&churn_started, 1);
    for (unsigned i = 0;; i++) {
        unsigned k = i % CHURN_RING;
        free(ring[k]);
        ring[k] = churn_block(16 + (i * 37) % 2000);
    }
    return NULL;
}

static void start_churn(void)
{
    for (intptr_t t = 0; t < CHURN_THREADS; t++) {
        pthread_t th;
        pthread_create(&th, NULL, churner, (void *)t);
    }
    while (atomic_load(&churn_started) < CHURN_THREADS)
        usleep(1000);
    usleep(50000);
}

NOINLINE void *ownstack_block(void) { return malloc(900); }

static void *ownstack_holder(void *arg)
{
    (void)arg;
    void *volatile mine = ownstack_block();
    ready_then_wait();
    return (void *)mine;
}

static void start_on_own_stack(void)
{
    /* Under glibc's mmap threshold: in the heap, below the lost block,
     * so that a stack read to the end of its mapping would reach it. */
    size_t size = 64 << 10;
    void *stack = malloc(size);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstack(&attr, stack, size);
    pthread_t t;
    pthread_create(&t, &attr, ownstack_holder, NULL);
    pthread_mutex_lock(&mu);
    while (!ready)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
}

static void (*dl_keep)(void);

static void *dltls_holder(void *arg)
{
    (void)arg;
    dl_keep();
    ready_then_wait();
    return NULL;
}

NOINLINE void leak_in_child(void) { leak_lost(); }

NOINLINE void *leak_many(void) { return malloc(4096); }
NOINLINE void *keep_list_node(void) { return malloc(4096); }
NOINLINE void *keep_array_block(void) { return malloc(4096); }
NOINLINE struct node *many_roots(void) { return calloc(1, sizeof(struct node)); }
NOINLINE void *many_children(void) { return malloc(16384); }
void **volatile global_array;

NOINLINE void sampled_scenario(void)
{
    for (int i = 0; i < 16384; i++) {
        char *volatile p = leak_many();
        p[0] = 1;
        p = NULL;
    }
    void *head = NULL;
    for (int i = 0; i < 8192; i++) {
        void **n = keep_list_node();
        n[0] = head;
        head = n;
    }
    global_keep = head;
    void **arr = malloc(8192 * sizeof *arr);
    for (int i = 0; i < 8192; i++)
        arr[i] = keep_array_block();
    global_array = arr;
    for (int i = 0; i < 2048; i++) {
        struct node *volatile r = many_roots();
        r->a = many_children();
        r = NULL;
    }
}

int main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "mixed";
    int mixed = strcmp(what, "mixed") == 0;
    if (mixed || strcmp(what, "lost") == 0)
        leak_lost();
    if (strcmp(what, "cycle") == 0)
        leak_cycle();
    if (mixed || strcmp(what, "tree") == 0)
        leak_tree();
    if (mixed || strcmp(what, "global") == 0)
        keep_global();
    if (mixed || strcmp(what, "interior") == 0)
        keep_interior();
    if (strcmp(what, "thread") == 0)
        start_and_wait(holder);
    if (strcmp(what, "tls") == 0)
        start_and_wait(tls_holder);
    if (strcmp(what, "dlopen") == 0 || strcmp(what, "dltls") == 0) {
        if (argc < 3)
            return 2;
        void *h = dlopen(argv[2], RTLD_NOW);
        if (h == NULL) {
            fprintf(stderr, "dlopen: %s\n", dlerror());
            return 2;
        }
        int tls = strcmp(what, "dltls") == 0;
        void (*keep)(void) = (void (*)(void))dlsym(h, tls ? "lib_keep_tls" : "lib_keep");
        keep();
        if (tls) {
            dl_keep = keep;
            start_and_wait(dltls_holder);
        }
    }
    if (strcmp(what, "ownstack") == 0) {
        start_on_own_stack();
        leak_lost();
    }
    if (strcmp(what, "setenv") == 0) {
        setenv("LEAKS_A", "1", 1);
        setenv("LEAKS_B", "2", 1);
        setenv("LEAKS_A", "3", 1);
        setenv("LEAKS_C", "4", 1);
        unsetenv("LEAKS_B");
    }
    if (strcmp(what, "churn") == 0)
        start_churn();
    if (strcmp(what, "serve") == 0) {
        leak_lost();
        scrub_stack();
        printf("ready\n");
        fflush(stdout);
        for (;;)
            pause();
    }
    if (strcmp(what, "sampled") == 0)
        sampled_scenario();
    if (strcmp(what, "fork") == 0) {
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            leak_in_child();
            scrub_stack();
            exit(0);
        }
        int st;
        waitpid(pid, &st, 0);
        if (!WIFEXITED(st))
            return 3;
        printf("child status %d\n", WEXITSTATUS(st));
    }
    scrub_stack();
    return 0;
}
