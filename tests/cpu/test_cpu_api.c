/*
 * The CPU profiler's API contract: argument errors, EBUSY, writing to a
 * file descriptor, and a program whose own SIGPROF handler must be left
 * alone.  Self-checking; cpu_api.sh also reads what it wrote to stderr and
 * the profile it wrote to stdout's neighbour.
 *
 * usage: test_cpu_api DIR
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cpu_work.h"
#include "../lib/check.h"
#include "mprof.h"

static volatile sig_atomic_t own_handler_calls;
static void own_handler(int sig)
{
    (void)sig;
    own_handler_calls++;
}

static volatile uint64_t sink;
__attribute__((noinline)) void api_burn(void) { sink += cpu_work_spin(sink, 60000000); }

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    char path[4096], fdpath[4096], bad[4096];
    snprintf(path, sizeof path, "%s/api.pprof", dir);
    snprintf(fdpath, sizeof fdpath, "%s/fd.pprof", dir);
    snprintf(bad, sizeof bad, "%s/no/such/dir/x.pprof", dir);

    /* Nothing running: stop fails. */
    errno = 0;
    CHECK(mprof_cpu_stop() == -1 && errno == EINVAL, "errno %s", strerror(errno));
    /* Bad arguments. */
    errno = 0;
    CHECK(mprof_cpu_start(path, -1) == -1 && errno == EINVAL, "errno %s", strerror(errno));
    errno = 0;
    CHECK(mprof_cpu_start(path, 1000000) == -1 && errno == EINVAL, "errno %s", strerror(errno));
    errno = 0;
    CHECK(mprof_cpu_start(NULL, 100) == -1 && errno == EINVAL, "errno %s", strerror(errno));
    errno = 0;
    CHECK(mprof_cpu_start_fd(-1, 100) == -1 && errno == EBADF, "errno %s", strerror(errno));
    /* An unwritable destination is refused at start, not lost at stop. */
    errno = 0;
    CHECK(mprof_cpu_start(bad, 100) == -1 && errno == ENOENT, "errno %s", strerror(errno));

    /* One profile at a time. */
    CHECK(mprof_cpu_start(path, 200) == 0, "errno %s", strerror(errno));
    errno = 0;
    CHECK(mprof_cpu_start(path, 200) == -1 && errno == EBUSY, "errno %s", strerror(errno));
    errno = 0;
    CHECK(mprof_cpu_start_fd(1, 200) == -1 && errno == EBUSY, "errno %s", strerror(errno));
    api_burn();
    CHECK(mprof_cpu_stop() == 0, "errno %s", strerror(errno));
    struct stat st;
    CHECK(stat(path, &st) == 0 && st.st_size > 0, "errno %s", strerror(errno));

    /* To a file descriptor, which stays open. */
    int fd = open(fdpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0, "errno %s", strerror(errno));
    CHECK(mprof_cpu_start_fd(fd, 0) == 0, "errno %s", strerror(errno));
    api_burn();
    CHECK(mprof_cpu_stop() == 0, "errno %s", strerror(errno));
    CHECK(fcntl(fd, F_GETFD) != -1, "errno %s", strerror(errno));
    close(fd);
    unsigned char magic[2] = {0, 0};
    fd = open(fdpath, O_RDONLY);
    CHECK(fd >= 0 && read(fd, magic, 2) == 2 && magic[0] == 0x1f && magic[1] == 0x8b, "errno %s", strerror(errno));
    close(fd);

    /* The program's own SIGPROF handler: mprof refuses to start (twice,
     * warning once) and the handler stays the program's. */
    struct sigaction sa, cur;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = own_handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGPROF, &sa, NULL);
    errno = 0;
    CHECK(mprof_cpu_start(path, 100) == -1 && errno == EEXIST, "errno %s", strerror(errno));
    errno = 0;
    CHECK(mprof_cpu_start(path, 100) == -1 && errno == EEXIST, "errno %s", strerror(errno));
    sigaction(SIGPROF, NULL, &cur);
    CHECK(cur.sa_handler == own_handler, "errno %s", strerror(errno));
    raise(SIGPROF);
    CHECK(own_handler_calls == 1, "errno %s", strerror(errno));

    /* Back to SIG_DFL: mprof may install its handler again. */
    sa.sa_handler = SIG_DFL;
    sigaction(SIGPROF, &sa, NULL);
    CHECK(mprof_cpu_start(path, 100) == 0, "errno %s", strerror(errno));
    api_burn();
    CHECK(mprof_cpu_stop() == 0, "errno %s", strerror(errno));
    /* A stray SIGPROF after the stop is ignored, not fatal. */
    raise(SIGPROF);

    return check_result("test_cpu_api");
}
