/*
 * Programs that leave through _exit (core_exit.sh).  Each allocates 256
 * blocks of 4 KiB from exit_keep() first, so that its heap profile can be
 * recognised; the status of each mode is what it passes to _exit.
 *
 *   exit_target _exit      _exit(7)
 *   exit_target _Exit      _Exit(8)
 *   exit_target handler    its SIGTERM handler calls _exit(5); prints
 *                          "ready" and waits for the signal
 *   exit_target fork       a fork() child allocates from child_keep() and
 *                          calls _exit(4); the parent waits, exit(0)
 *   exit_target vfork      a vfork() child calls _exit(9) at once, on the
 *                          parent's memory; the parent checks the status,
 *                          allocates from after_vfork() and returns 0;
 *                          prints "child PID"
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NOIPA __attribute__((noipa, used))

static void *kept[512];
static int nkept;

static void keep_blocks(int n)
{
    for (int i = 0; i < n && nkept < 512; i++) {
        kept[nkept] = malloc(4096);
        memset(kept[nkept++], 1, 64);
    }
}

NOIPA void exit_keep(void) { keep_blocks(256); }
NOIPA void child_keep(void) { keep_blocks(128); }
NOIPA void after_vfork(void) { keep_blocks(64); }

static void on_term(int sig)
{
    (void)sig;
    _exit(5);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    exit_keep();
    if (strcmp(mode, "_exit") == 0)
        _exit(7);
    if (strcmp(mode, "_Exit") == 0)
        _Exit(8);
    if (strcmp(mode, "handler") == 0) {
        signal(SIGTERM, on_term);
        printf("ready\n");
        fflush(stdout);
        for (;;)
            pause();
    }
    if (strcmp(mode, "fork") == 0) {
        pid_t pid = fork();
        if (pid == 0) {
            child_keep();
            _exit(4);
        }
        int st;
        if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 4)
            return 1;
        return 0;
    }
    if (strcmp(mode, "vfork") == 0) {
        pid_t pid = vfork();
        if (pid == 0)
            _exit(9);
        int st;
        if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 9)
            return 1;
        printf("child %d\n", (int)pid);
        after_vfork();
        return 0;
    }
    fprintf(stderr, "usage: exit_target _exit|_Exit|handler|fork|vfork\n");
    return 2;
}
