/*
 * The regular public API: mprof_write_profile / _fd for every kind of the
 * registry (linked against libmprof, as a program would), the -errno
 * shape, mprof_stats_read with a smaller and a larger struct, and the
 * version.  Writes the files into argv[1]; api_check.sh then reads each
 * with the real `go tool pprof` (and the heap dump with `mprof dump`).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/check.h"
#include "mprof.h"

static void *__attribute__((noinline)) worker(void *arg)
{
    (void)arg;
    /* Kept: the heap profile must show them in use. */
    void **keep = malloc(64 * sizeof *keep);
    for (int i = 0; i < 64; i++)
        keep[i] = malloc(64 * 1024);
    return keep;
}

/*
 * "test_api DIR env": run with MPROF_HEAP, MPROF_BLOCK and MPROF_SIGNAL set
 * by api_check.sh.  One signal must give a numbered file of each kind that
 * has a file at exit; then the program empties its environment, as nginx
 * workers and clearenv() callers do: the files at exit must still be
 * written, because settings are read at start.
 */
static int env_mode(const char *dir)
{
    void *held = malloc(1 << 20);
    CHECK(held != NULL, "malloc");
    raise(SIGUSR2);
    char heap[512], block[512];
    snprintf(heap, sizeof heap, "%s/exit.0001.pb.gz", dir);
    snprintf(block, sizeof block, "%s/block.0001.pb.gz", dir);
    for (int i = 0; i < 300 && (access(heap, F_OK) != 0 || access(block, F_OK) != 0); i++)
        usleep(10000);
    CHECK(access(heap, F_OK) == 0, "numbered heap profile %s", heap);
    CHECK(access(block, F_OK) == 0, "numbered block profile %s", block);
    clearenv();
    free(held);
    return check_result("test_api env");
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[2], "env") == 0)
        return env_mode(argv[1]);
    if (argc != 2) {
        fprintf(stderr, "usage: test_api DIR [env]\n");
        return 2;
    }
    const char *dir = argv[1];
    mprof_set_rate(1);
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    void *kept = NULL;
    pthread_join(t, &kept);
    CHECK(kept != NULL, "worker allocated");

    /* Version: the header's and the library's agree. */
    const char *vs = NULL;
    CHECK(mprof_version(&vs) == MPROF_VERSION_NUMBER, "library version %d", mprof_version(NULL));
    CHECK(vs != NULL && strcmp(vs, MPROF_VERSION) == 0, "version string %s", vs ? vs : "NULL");
    CHECK(MPROF_VERSION_NUMBER ==
               MPROF_VERSION_MAJOR * 10000 + MPROF_VERSION_MINOR * 100 + MPROF_VERSION_PATCH,
           "version number");

    /* Every kind a program may write by name, path and fd forms. */
    static const char *const kinds[] = {"heap",      "allocs",    "block",   "mutex",
                                        "threadcreate", "goroutine", "threads", "heapdump"};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s.%%p.out", dir, kinds[i]);
        int rc = mprof_write_profile(kinds[i], path);
        CHECK(rc == 0, "mprof_write_profile(%s) = %d", kinds[i], rc);
        snprintf(path, sizeof path, "%s/%s.txt", dir, kinds[i]);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        rc = mprof_write_profile_fd(kinds[i], fd, 1);
        CHECK(rc == 0, "mprof_write_profile_fd(%s, debug=1) = %d", kinds[i], rc);
        CHECK(lseek(fd, 0, SEEK_END) > 0, "%s: text written", kinds[i]);
        close(fd);
    }

    /* The -errno shape, errno set too. */
    errno = 0;
    int rc = mprof_write_profile("no-such-kind", "/tmp/x");
    CHECK(rc == -EINVAL && errno == EINVAL, "unknown name: %d", rc);
    rc = mprof_write_profile("profile", "/tmp/x");
    CHECK(rc == -ENOTSUP && errno == ENOTSUP, "window-only kind: %d", rc);
    rc = mprof_write_profile("heap", "/nonexistent-dir/heap.pb.gz");
    CHECK(rc == -ENOENT, "missing directory: %d", rc);
    rc = mprof_write_profile_fd("heap", -1, 0);
    CHECK(rc == -EINVAL, "bad fd: %d", rc);
    CHECK(mprof_write_profile(NULL, "/tmp/x") == -EINVAL, "NULL name");

    /* The old names stay, with their old shape. */
    char old[512];
    snprintf(old, sizeof old, "%s/alias.pb.gz", dir);
    CHECK(mprof_write_heap_profile(old) == 0, "alias mprof_write_heap_profile");
    errno = 0;
    CHECK(mprof_write_heap_profile("/nonexistent-dir/x") == -1 && errno == ENOENT,
           "alias keeps -1 and errno");

    /* Stats: the struct can grow; callers with an older, smaller struct
     * get what fits, callers with a newer, larger one get zeros beyond. */
    mprof_stats st;
    CHECK(mprof_stats_read(&st, sizeof st) == 0 && st.size == sizeof st, "size %zu", st.size);
    CHECK(st.samples_taken > 0 && st.buckets > 0, "stats filled: %llu samples",
           (unsigned long long)st.samples_taken);
    struct {
        mprof_stats s;
        char future[64];
    } bigger;
    memset(&bigger, 0xab, sizeof bigger);
    CHECK(mprof_stats_read(&bigger.s, sizeof bigger) == 0 && bigger.s.size == sizeof st,
           "larger struct: size %zu", bigger.s.size);
    int zeros = 1;
    for (size_t i = 0; i < sizeof bigger.future; i++)
        zeros &= bigger.future[i] == 0;
    CHECK(zeros, "bytes beyond the library's struct zeroed");
    size_t small = offsetof(mprof_stats, buckets);
    memset(&st, 0xab, sizeof st);
    CHECK(mprof_stats_read(&st, small) == 0 && st.size == small && st.buckets != 0 &&
               ((unsigned char *)&st)[small] == 0xab,
           "smaller struct: only %zu bytes written", small);
    CHECK(mprof_stats_read(&st, 1) == -EINVAL, "too small");
    CHECK(mprof_stats_read(NULL, sizeof st) == -EINVAL, "NULL");

    return check_result("test_api");
}
