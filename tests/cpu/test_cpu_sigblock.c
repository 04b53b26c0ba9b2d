/*
 * A notice said once, not per profile: a thread that blocks SIGPROF while
 * the program takes five CPU profiles in a row (as a scraper of
 * /debug/pprof/profile would, every 15 s, for days).  The library must
 * say "thread(s) block SIGPROF" once in the process, not five times; the
 * script counts the lines.  Self-checking for the profiles themselves.
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "../lib/check.h"
#include "mprof.h"

static volatile int stop;

static void *blocker(void *arg)
{
    (void)arg;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGPROF);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    while (!stop)
        usleep(1000);
    return NULL;
}

int main(void)
{
    pthread_t t;
    CHECK(pthread_create(&t, NULL, blocker, NULL) == 0, "thread");
    usleep(20000);
    for (int i = 0; i < 5; i++) {
        int fd = open("/dev/null", O_WRONLY);
        CHECK(mprof_cpu_start_fd(fd, 100) == 0, "start %d", i);
        usleep(50000);
        CHECK(mprof_cpu_stop() == 0, "stop %d", i);
        close(fd);
    }
    stop = 1;
    pthread_join(t, NULL);
    return check_result("test_cpu_sigblock");
}
