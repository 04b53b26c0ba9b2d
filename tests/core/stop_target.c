/*
 * A program stopped by a signal (core_stop_signals.sh): it allocates from
 * stop_keep(), prints "ready", then waits to be stopped.
 *
 *   stop_target wait         default actions: dies of the signal it gets
 *   stop_target own          its own SIGTERM handler, which calls exit(3)
 *   stop_target fork         forks a child that allocates from
 *                            child_keep() and waits; prints "child PID"
 *                            (the script stops the child)
 *   stop_target threads      four threads allocate and free without end
 *                            while the main thread waits
 *   stop_target clearenv     forks a child that empties its environment
 *                            (clearenv, then a new environ, as nginx's
 *                            workers do), allocates from child_keep() and
 *                            exits; the parent waits for it and exits
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define NOIPA __attribute__((noipa, used))
#define KEEP(x) __asm__ volatile("" : : "r"(x) : "memory")

static void *kept[256];

NOIPA void stop_keep(void)
{
    for (int i = 0; i < 256; i++) {
        kept[i] = malloc(4096);
        memset(kept[i], 1, 64);
    }
}

NOIPA void child_keep(void)
{
    for (int i = 0; i < 128; i++) {
        kept[i] = malloc(8192);
        memset(kept[i], 2, 64);
    }
}

static void on_term(int signo)
{
    (void)signo;
    exit(3);
}

static void *churn(void *arg)
{
    (void)arg;
    for (;;) {
        void *p = malloc(100 + (size_t)(rand() % 5000));
        KEEP(p);
        free(p);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "wait";
    stop_keep();
    if (strcmp(mode, "own") == 0)
        signal(SIGTERM, on_term);
    if (strcmp(mode, "threads") == 0) {
        pthread_t t;
        for (int i = 0; i < 4; i++)
            pthread_create(&t, NULL, churn, NULL);
    }
    if (strcmp(mode, "clearenv") == 0) {
        pid_t pid = fork();
        if (pid == 0) {
            static char *fresh[] = {"PATH=/usr/bin", NULL};
            clearenv();
            environ = fresh;
            child_keep();
            printf("child %d\n", (int)getpid());
            exit(0);
        }
        int status;
        waitpid(pid, &status, 0);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
    }
    if (strcmp(mode, "fork") == 0) {
        pid_t pid = fork();
        if (pid == 0) {
            child_keep();
            printf("child %d\n", (int)getpid());
            fflush(stdout);
            for (;;)
                pause();
        }
        int status;
        waitpid(pid, &status, 0);
        printf("child status %d\n", WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status));
        return 0;
    }
    printf("ready\n");
    fflush(stdout);
    for (;;)
        pause();
}
