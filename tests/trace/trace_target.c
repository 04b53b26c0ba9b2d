/*
 * A program whose allocations are known, for the allocation-trace checks
 * (trace_check.sh).  Knows nothing of mprof: it runs under LD_PRELOAD with
 * MPROF_RATE=1 and MPROF_TRACE=alloc.
 *
 *   trace_target one          allocate 4242 bytes in trace_alloc_site and
 *                             free them in trace_free_site
 *   trace_target burst N      N threads allocate and free 20000 blocks each
 *   trace_target dlopen LIB   a library loaded after start-up allocates
 *   trace_target fork         the parent and a forked child each allocate
 *
 * Every mode prints the addresses it allocated ("object 0x...").
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

__attribute__((noinline)) void *trace_alloc_site(size_t n)
{
    void *p = malloc(n); /* LINE:trace_alloc */
    return p;
}

__attribute__((noinline)) void trace_free_site(void *p)
{
    free(p); /* LINE:trace_free */
}

__attribute__((noinline)) static void *trace_child_site(size_t n)
{
    void *p = malloc(n); /* LINE:trace_child */
    return p;
}

static void *burst_thread(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20000; i++) {
        char *volatile p = malloc(48);
        p[0] = 1;
        free(p);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    /* Line-buffered stdout, set up before the traced allocations. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("trace_target pid %d\n", (int)getpid());
    const char *mode = argc > 1 ? argv[1] : "one";
    if (strcmp(mode, "one") == 0) {
        void *p = trace_alloc_site(4242);
        printf("object %p\n", p);
        trace_free_site(p);
    } else if (strcmp(mode, "burst") == 0 && argc > 2) {
        int n = atoi(argv[2]);
        pthread_t t[64];
        if (n < 1 || n > 64)
            return 2;
        for (int i = 0; i < n; i++)
            pthread_create(&t[i], NULL, burst_thread, NULL);
        for (int i = 0; i < n; i++)
            pthread_join(t[i], NULL);
        printf("burst done\n");
    } else if (strcmp(mode, "dlopen") == 0 && argc > 2) {
        void *lib = dlopen(argv[2], RTLD_NOW);
        if (lib == NULL) {
            fprintf(stderr, "dlopen: %s\n", dlerror());
            return 1;
        }
        void *(*site)(size_t) = (void *(*)(size_t))dlsym(lib, "trace_dl_alloc");
        if (site == NULL)
            return 1;
        void *p = site(3333);
        printf("object %p\n", p);
        free(p);
    } else if (strcmp(mode, "fork") == 0) {
        void *p = trace_alloc_site(1111);
        printf("object %p\n", p);
        pid_t child = fork();
        if (child == 0) {
            void *q = trace_child_site(2222);
            printf("child %d object %p\n", (int)getpid(), q);
            free(q);
            exit(0);
        }
        int status;
        waitpid(child, &status, 0);
        trace_free_site(p);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            return 1;
    } else {
        fprintf(stderr, "usage: trace_target one|burst N|dlopen LIB|fork\n");
        return 2;
    }
    return 0;
}
