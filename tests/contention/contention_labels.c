/*
 * Labeled block and mutex samples (contention_labels.sh).  One mutex, two
 * threads, ROUNDS rounds: the holder takes the mutex and keeps it HOLD_MS
 * while the waiter blocks on it, both at the same lines every round; a
 * round is labeled request=upload two times out of three (by its index)
 * and request=download otherwise, on both threads.  The waiter measures
 * its own wait in each round, which is the truth of both profiles: the
 * block profile charges it to the waiter's line, the mutex profile to the
 * holder's unlock line, each under the label of the round.
 *
 * Prints "upload_ms N" and "download_ms N"; with TEXT, also writes the
 * block profile's text form (debug=1) there.
 *
 * usage: contention_labels [TEXT]
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "mprof.h"
#include "waits.h"

#define ROUNDS 24
#define HOLD_MS 20

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static sem_t locked, done;
static int64_t waited_ns[2]; /* upload, download */

static const char *request_of(int round) { return round % 3 == 2 ? "download" : "upload"; }


__attribute__((noinline)) void labeled_holder(void)
{
    pthread_mutex_lock(&mu);
    sem_post(&locked);
    sleep_ms(HOLD_MS);
    pthread_mutex_unlock(&mu); /* LINE:labeled_unlock */
}

__attribute__((noinline)) int64_t labeled_waiter(void)
{
    int64_t t0 = now_ns();
    pthread_mutex_lock(&mu); /* LINE:labeled_lock */
    int64_t d = now_ns() - t0;
    pthread_mutex_unlock(&mu);
    return d;
}

static void *holder(void *arg)
{
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        mprof_labels_push("request", request_of(i));
        labeled_holder();
        mprof_labels_pop();
        sem_wait(&done);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    sem_init(&locked, 0, 0);
    sem_init(&done, 0, 0);
    pthread_t t;
    if (pthread_create(&t, NULL, holder, NULL) != 0)
        return 1;
    for (int i = 0; i < ROUNDS; i++) {
        if (mprof_labels_push("request", request_of(i)) != 0)
            return 1;
        sem_wait(&locked);
        waited_ns[i % 3 == 2] += labeled_waiter();
        mprof_labels_pop();
        sem_post(&done);
    }
    pthread_join(t, NULL);
    printf("upload_ms %.1f\ndownload_ms %.1f\n", waited_ns[0] / 1e6, waited_ns[1] / 1e6);
    if (argc > 1) {
        int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || mprof_write_profile_fd("block", fd, 1) != 0 || close(fd) != 0)
            return 1;
    }
    return 0;
}
