/*
 * Unit test of snapshots.c in-process, with a stub heap kind in the registry: bad settings
 * are refused with a warning; MPROF_SIGNAL and MPROF_INTERVAL write
 * numbered, complete files (no temporary left); a forked child ignores
 * the signal instead of dying or waking the parent's dump thread.
 * Runs under ASan/UBSan and TSan.
 */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "http/http_internal.h"
#include "runtime/lifecycle.h"
#include "test_http_stubs.h"

#include "../lib/check.h"

static char dir[256];

static int file_exists(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat st;
    return stat(path, &st) == 0 && st.st_size > 0;
}

static int wait_for_file(const char *name, double timeout_s)
{
    for (int i = 0; i < (int)(timeout_s * 100); i++) {
        if (file_exists(name))
            return 1;
        usleep(10000);
    }
    return file_exists(name);
}

static int count_entries(const char *containing)
{
    int n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, containing) != NULL)
            n++;
    closedir(d);
    return n;
}

int main(void)
{
    snprintf(dir, sizeof dir, "%s/mprof-dumps.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    CHECK(mkdtemp(dir) != NULL);

    /* Refused settings: a warning each, no thread, no handler. */
    struct sigaction segv_before, segv_after;
    sigaction(SIGSEGV, NULL, &segv_before);
    setenv("MPROF_SIGNAL", "SIGKILL", 1);
    setenv("MPROF_INTERVAL", "soon", 1);
    mprof_options_reset_for_test();
    mprof_snapshots_init();
    setenv("MPROF_SIGNAL", "SIGSEGV", 1);
    setenv("MPROF_INTERVAL", "0", 1);
    mprof_options_reset_for_test();
    mprof_snapshots_init();
    sigaction(SIGSEGV, NULL, &segv_after);
    CHECK(segv_after.sa_handler == segv_before.sa_handler); /* untouched */

    char pattern[300];
    snprintf(pattern, sizeof pattern, "%s/dump.pb.gz", dir);
    setenv("MPROF_HEAP", pattern, 1);
    setenv("MPROF_SIGNAL", "usr2", 1);
    setenv("MPROF_INTERVAL", "1", 1);
    mprof_options_reset_for_test();
    stub_register_heap_kind();
    mprof_snapshots_init();

    /* Signals from another thread's point of view: raise() in main. */
    raise(SIGUSR2);
    CHECK(wait_for_file("dump.0001.pb.gz", 2));
    raise(SIGUSR2);
    CHECK(wait_for_file("dump.0002.pb.gz", 2));
    /* The interval dump comes about a second after start. */
    CHECK(wait_for_file("dump.0003.pb.gz", 3));

    /* A burst of signals is coalesced, never lost entirely. */
    int before = stub_heap_writes;
    for (int i = 0; i < 100; i++)
        raise(SIGUSR2);
    for (int i = 0; i < 200 && stub_heap_writes == before; i++)
        usleep(10000);
    CHECK(stub_heap_writes > before);

    /* A forked child: the signal is ignored (the child survives) and the
     * parent's dump thread is not woken by it. */
    usleep(300000);
    pid_t pid = fork();
    if (pid == 0) {
        mprof_snapshots_postfork_child();
        int writes = stub_heap_writes;
        raise(SIGUSR2);
        usleep(200000);
        _exit(stub_heap_writes == writes ? 0 : 3);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    mprof_snapshots_at_exit();
    CHECK(count_entries(".tmp") == 0);
    CHECK(count_entries("dump.") >= 3);

    char path[512];
    snprintf(path, sizeof path, "%s/dump.0001.pb.gz", dir);
    FILE *f = fopen(path, "r");
    char content[128] = "";
    if (f != NULL) {
        if (fgets(content, sizeof content, f) == NULL)
            content[0] = '\0';
        fclose(f);
    }
    CHECK(strcmp(content, "stub heap profile (inuse_space)\n") == 0);

    /* Clean up. */
    DIR *d = opendir(dir);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);

    return check_result("test_http_dumps");
}
