/*
 * A program for cli_messages.sh: each mode is a situation one of mprof's
 * messages is about, run under the real libmprof.so.
 *
 *   messages_target sigprof STOP_FILE   installs its own SIGPROF handler,
 *                                       prints "ready", waits for STOP_FILE
 *   messages_target burn                burns about 0.3 s of CPU, allocates
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile unsigned long sink;
static volatile sig_atomic_t ticks;

static void own_handler(int sig)
{
    (void)sig;
    ticks++;
}

__attribute__((noinline)) static void messages_burn(void)
{
    struct timespec start, now;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &start);
    do {
        for (int i = 0; i < 100000; i++)
            sink = sink * 6364136223846793005UL + 1442695040888963407UL;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
    } while ((now.tv_sec - start.tv_sec) * 1000000000L + (now.tv_nsec - start.tv_nsec) <
             300000000L);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "sigprof") == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = own_handler;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGPROF, &sa, NULL);
        printf("ready\n");
        fflush(stdout);
        for (int i = 0; i < 1200 && access(argv[2], F_OK) != 0; i++)
            usleep(50000);
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "burn") == 0) {
        void *keep = malloc(1 << 20);
        messages_burn();
        sink += keep != NULL;
        return 0;
    }
    fprintf(stderr, "usage: messages_target sigprof STOP_FILE | burn\n");
    return 2;
}
