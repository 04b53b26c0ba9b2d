/*
 * Fork under the profiler.  Run by core_fork.sh under LD_PRELOAD with
 * MPROF_RATE=1 and MPROF_HEAP set; knows nothing of mprof.
 *
 * The parent starts a thread that allocates and frees in a loop (so that
 * forks happen while another thread is inside malloc and the sampler,
 * holding their locks), then forks NFORKS children one after another, some
 * while earlier children are still running.  Each child allocates 1000
 * blocks of 1 KiB in child_work() (kept until exit) and leaves with
 * exit(0), which writes its own heap profile.  The parent keeps 64 blocks
 * of 512 B from parent_keep() and exits normally.
 *
 * With the argument "exec", each child execs this program again (as a
 * shell or git would) with "--exec-child", which runs child_work() and
 * exits: a new process image, which must still write its own profile.
 *
 * Prints "parent PID" and "child PID" lines for the script.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NOIPA __attribute__((noipa, used))
#define KEEP(x) __asm__ volatile("" : : "r"(x) : "memory")
#define NFORKS 5

static _Atomic int stop;
static _Atomic long churn_ops;

NOIPA void *churn_alloc(size_t n)
{
    void *p = malloc(n);
    KEEP(p);
    return p;
}

static void *churn(void *arg)
{
    (void)arg;
    void *slots[64] = {0};
    unsigned x = 12345;
    while (!atomic_load(&stop)) {
        x = x * 1103515245u + 12345u;
        int i = (int)((x >> 16) % 64);
        free(slots[i]);
        slots[i] = churn_alloc(16 + (x >> 8) % 4000);
        atomic_fetch_add(&churn_ops, 1);
    }
    for (int i = 0; i < 64; i++)
        free(slots[i]);
    return NULL;
}

static void *child_blocks[1000];

NOIPA void child_work(void)
{
    for (volatile int i = 0; i < 1000; i++) {
        child_blocks[i] = malloc(1024);
        memset(child_blocks[i], i, 1024);
    }
}

static void *parent_blocks[64];

NOIPA void parent_keep(void)
{
    for (volatile int i = 0; i < 64; i++)
        parent_blocks[i] = malloc(512);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--exec-child") == 0) {
        child_work();
        exit(0);
    }
    int exec_children = argc > 1 && strcmp(argv[1], "exec") == 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("parent %d\n", (int)getpid());
    parent_keep();
    pthread_t t;
    pthread_create(&t, NULL, churn, NULL);
    /* Let the churn thread get going. */
    while (atomic_load(&churn_ops) < 1000)
        sched_yield();

    pid_t kids[NFORKS];
    for (int k = 0; k < NFORKS; k++) {
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0) {
            /* The child: only this thread exists here. */
            if (exec_children) {
                execl("/proc/self/exe", argv[0], "--exec-child", (char *)NULL);
                _exit(127);
            }
            child_work();
            exit(0);
        }
        kids[k] = pid;
        printf("child %d\n", (int)pid);
        if (k % 2 == 1) { /* sometimes wait, sometimes fork the next one at once */
            int st;
            waitpid(pid, &st, 0);
            kids[k] = 0;
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                fprintf(stderr, "child %d: status 0x%x\n", (int)pid, st);
                return 1;
            }
        }
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    int bad = 0;
    for (int k = 0; k < NFORKS; k++) {
        if (kids[k] == 0)
            continue;
        int st;
        waitpid(kids[k], &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "child %d: status 0x%x\n", (int)kids[k], st);
            bad = 1;
        }
    }
    atomic_store(&stop, 1);
    pthread_join(t, NULL);
    return bad;
}
