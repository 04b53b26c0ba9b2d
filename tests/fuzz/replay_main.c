/*
 * The main of a harness built without libFuzzer: runs
 * LLVMFuzzerTestOneInput on every file named on the command line, and on
 * every file of every directory named (sorted, so runs compare), once.
 * This is how `make check` replays the corpora and the hostile inputs
 * with the project's own compiler; clang and libFuzzer are needed only to
 * find new inputs (fuzz.sh).
 *
 * Each input must finish within FUZZ_REPLAY_SECONDS (default 10): the
 * readers promise bounded time, so a slow input is a failure, reported
 * with its name like a crash.
 */
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static const char *current;

static void on_alarm(int sig)
{
    (void)sig;
    /* Only async-signal-safe calls: the input is stuck somewhere. */
    static const char msg[] = "fuzz replay: FAIL: too slow: ";
    ssize_t ignored = write(2, msg, sizeof msg - 1);
    ignored = write(2, current, strlen(current));
    ignored = write(2, "\n", 1);
    (void)ignored;
    _exit(3);
}

static int run_file(const char *path, unsigned seconds)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "fuzz replay: cannot open %s\n", path);
        return -1;
    }
    size_t cap = 1 << 16, len = 0;
    uint8_t *buf = malloc(cap);
    for (size_t n; buf != NULL && (n = fread(buf + len, 1, cap - len, f)) > 0;) {
        len += n;
        if (len == cap) {
            uint8_t *grown = realloc(buf, cap *= 2);
            if (grown == NULL)
                free(buf);
            buf = grown;
        }
    }
    fclose(f);
    if (buf == NULL) {
        fprintf(stderr, "fuzz replay: out of memory reading %s\n", path);
        return -1;
    }
    /* A copy of exactly the input's size, so that ASan sees a read past
     * its end as libFuzzer's own buffer would show it. */
    uint8_t *exact = malloc(len ? len : 1);
    if (exact == NULL) {
        free(buf);
        return -1;
    }
    memcpy(exact, buf, len);
    free(buf);
    current = path;
    alarm(seconds);
    LLVMFuzzerTestOneInput(exact, len);
    alarm(0);
    free(exact);
    return 0;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
        return 2;
    }
    if (LLVMFuzzerInitialize != NULL)
        LLVMFuzzerInitialize(&argc, &argv);
    const char *limit = getenv("FUZZ_REPLAY_SECONDS");
    unsigned seconds = limit != NULL && atoi(limit) > 0 ? (unsigned)atoi(limit) : 10;
    signal(SIGALRM, on_alarm);
    size_t inputs = 0;
    int failed = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "fuzz replay: no such file or directory: %s\n", argv[i]);
            failed = 1;
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            failed |= run_file(argv[i], seconds) != 0;
            inputs++;
            continue;
        }
        DIR *dir = opendir(argv[i]);
        if (dir == NULL) {
            failed = 1;
            continue;
        }
        char **names = NULL;
        size_t n = 0;
        for (struct dirent *e; (e = readdir(dir)) != NULL;) {
            if (e->d_name[0] == '.')
                continue;
            char **grown = realloc(names, (n + 1) * sizeof(*names));
            if (grown == NULL)
                break;
            names = grown;
            size_t len = strlen(argv[i]) + strlen(e->d_name) + 2;
            names[n] = malloc(len);
            if (names[n] == NULL)
                break;
            snprintf(names[n++], len, "%s/%s", argv[i], e->d_name);
        }
        closedir(dir);
        if (n > 0)
            qsort(names, n, sizeof(*names), compare_names);
        for (size_t k = 0; k < n; k++) {
            failed |= run_file(names[k], seconds) != 0;
            inputs++;
            free(names[k]);
        }
        free(names);
    }
    printf("%s: %zu inputs replayed%s\n", argv[0], inputs, failed ? ", some unreadable" : "");
    return failed;
}
