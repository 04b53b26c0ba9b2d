/*
 * Programs with known contention, for contention_*.sh.  Knows nothing
 * of mprof except, in "off" mode, the writer functions it looks up with
 * dlsym when libmprof is preloaded.
 *
 * usage: contention_target MODE [OUT]
 *
 *   mutex   a holder takes a mutex ROUNDS times and sleeps HOLD_MS inside it
 *           (holder_critical_section); each time a waiter blocks on it
 *           (waiter_blocks_here).  Prints the waiter's measured total wait.
 *   rwlock  the same with a rwlock: the writer holds it, a reader blocks.
 *   cond    producers and consumers on a bounded queue with condition
 *           variables (wait and timedwait): must finish with the right sum.
 *           Also a slow producer, so that the consumer's wait is known.
 *   short   as mutex, with SHORT_ROUNDS waits of SHORT_HOLD_MS each: waits
 *           shorter than the rate a test sets, to check the unsampling.
 *   stress  every wrapped function from 8 threads, profiles switched on and
 *           off meanwhile, forks: must finish with the right counts.
 *   serve   mutex rounds until the file OUT exists (HTTP tests).
 *   off     mutex contention; then writes the block and mutex profiles as
 *           text to OUT.block and OUT.mutex through the preloaded library.
 *
 * Lines the tests look for are marked with "LINE:<name>" comments.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "waits.h"

#define ROUNDS 25
#define HOLD_MS 20
/* "short": many waits shorter than the sampling rate the test sets. */
#define SHORT_ROUNDS 400
#define SHORT_HOLD_MS 2

static int rounds = ROUNDS, hold_ms = HOLD_MS;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static sem_t locked, done;
static int64_t waited_ns;
static volatile int sink;


/* ---------------------------------------------------------------- mutex */

__attribute__((noinline)) static void holder_critical_section(void)
{
    pthread_mutex_lock(&mu);
    sem_post(&locked);
    sleep_ms(hold_ms);
    pthread_mutex_unlock(&mu); /* LINE:holder_unlock */
    sink++;
}

__attribute__((noinline)) static void waiter_blocks_here(void)
{
    int64_t t0 = now_ns();
    pthread_mutex_lock(&mu); /* LINE:waiter_lock */
    waited_ns += now_ns() - t0;
    pthread_mutex_unlock(&mu);
    sink++;
}

static void *holder_main(void *arg)
{
    (void)arg;
    for (int i = 0; i < rounds; i++) {
        holder_critical_section();
        sem_wait(&done);
    }
    return NULL;
}

static void *waiter_main(void *arg)
{
    (void)arg;
    for (int i = 0; i < rounds; i++) {
        sem_wait(&locked);
        waiter_blocks_here();
        sem_post(&done);
    }
    return NULL;
}

static void run_mutex(void)
{
    sem_init(&locked, 0, 0);
    sem_init(&done, 0, 0);
    pthread_t h, w;
    pthread_create(&h, NULL, holder_main, NULL);
    pthread_create(&w, NULL, waiter_main, NULL);
    pthread_join(h, NULL);
    pthread_join(w, NULL);
    printf("waited_ms %.1f\n", (double)waited_ns / 1e6);
    printf("rounds %d\n", rounds);
}

/* --------------------------------------------------------------- rwlock */

__attribute__((noinline)) static void writer_critical_section(void)
{
    pthread_rwlock_wrlock(&rw);
    sem_post(&locked);
    sleep_ms(hold_ms);
    pthread_rwlock_unlock(&rw); /* LINE:writer_unlock */
    sink++;
}

__attribute__((noinline)) static void reader_blocks_here(void)
{
    int64_t t0 = now_ns();
    pthread_rwlock_rdlock(&rw); /* LINE:reader_lock */
    waited_ns += now_ns() - t0;
    pthread_rwlock_unlock(&rw);
    sink++;
}

static void *writer_main(void *arg)
{
    (void)arg;
    for (int i = 0; i < rounds; i++) {
        writer_critical_section();
        sem_wait(&done);
    }
    return NULL;
}

static void *reader_main(void *arg)
{
    (void)arg;
    for (int i = 0; i < rounds; i++) {
        sem_wait(&locked);
        reader_blocks_here();
        sem_post(&done);
    }
    return NULL;
}

static void run_rwlock(void)
{
    sem_init(&locked, 0, 0);
    sem_init(&done, 0, 0);
    pthread_t h, w;
    pthread_create(&h, NULL, writer_main, NULL);
    pthread_create(&w, NULL, reader_main, NULL);
    pthread_join(h, NULL);
    pthread_join(w, NULL);
    printf("waited_ms %.1f\n", (double)waited_ns / 1e6);
}

/* ------------------------------------------------------------ condvars */

#define QUEUE_CAP 16
#define PRODUCERS 4
#define CONSUMERS 4
#define ITEMS_PER_PRODUCER 20000

static struct {
    pthread_mutex_t lock;
    pthread_cond_t not_empty, not_full;
    long items[QUEUE_CAP];
    int head, count, producers_left;
} q = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER, {0},
       0, 0, 0};

static _Atomic long consumed_sum, consumed_count;

static void *producer_main(void *arg)
{
    long base = (long)(intptr_t)arg * ITEMS_PER_PRODUCER;
    for (long i = 1; i <= ITEMS_PER_PRODUCER; i++) {
        pthread_mutex_lock(&q.lock);
        while (q.count == QUEUE_CAP)
            pthread_cond_wait(&q.not_full, &q.lock);
        q.items[(q.head + q.count) % QUEUE_CAP] = base + i;
        q.count++;
        pthread_cond_signal(&q.not_empty);
        pthread_mutex_unlock(&q.lock);
    }
    pthread_mutex_lock(&q.lock);
    q.producers_left--;
    pthread_cond_broadcast(&q.not_empty);
    pthread_mutex_unlock(&q.lock);
    return NULL;
}

static void *consumer_main(void *arg)
{
    int timed = (int)(intptr_t)arg & 1;
    for (;;) {
        pthread_mutex_lock(&q.lock);
        while (q.count == 0 && q.producers_left > 0) {
            if (timed) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_nsec += 5000000;
                if (ts.tv_nsec >= 1000000000) {
                    ts.tv_sec++;
                    ts.tv_nsec -= 1000000000;
                }
                int rc = pthread_cond_timedwait(&q.not_empty, &q.lock, &ts);
                if (rc != 0 && rc != ETIMEDOUT) {
                    fprintf(stderr, "pthread_cond_timedwait: %s\n", strerror(rc));
                    exit(1);
                }
            } else {
                pthread_cond_wait(&q.not_empty, &q.lock);
            }
        }
        if (q.count == 0) {
            pthread_mutex_unlock(&q.lock);
            return NULL;
        }
        long v = q.items[q.head];
        q.head = (q.head + 1) % QUEUE_CAP;
        q.count--;
        pthread_cond_signal(&q.not_full);
        pthread_mutex_unlock(&q.lock);
        consumed_sum += v;
        consumed_count++;
    }
}

/* One item every HOLD_MS, so that the consumer waits ~HOLD_MS each time. */
static pthread_mutex_t slow_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t slow_cond = PTHREAD_COND_INITIALIZER;
static int slow_items, slow_done;

static void *slow_producer_main(void *arg)
{
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        sleep_ms(HOLD_MS);
        pthread_mutex_lock(&slow_lock);
        slow_items++;
        pthread_cond_signal(&slow_cond);
        pthread_mutex_unlock(&slow_lock);
    }
    pthread_mutex_lock(&slow_lock);
    slow_done = 1;
    pthread_cond_signal(&slow_cond);
    pthread_mutex_unlock(&slow_lock);
    return NULL;
}

__attribute__((noinline)) static void consumer_waits_here(void)
{
    pthread_mutex_lock(&slow_lock);
    for (;;) {
        while (slow_items == 0 && !slow_done)
            pthread_cond_wait(&slow_cond, &slow_lock); /* LINE:cond_wait */
        if (slow_items == 0)
            break;
        slow_items--;
    }
    pthread_mutex_unlock(&slow_lock);
}

static void run_cond(void)
{
    pthread_t p[PRODUCERS], c[CONSUMERS], slow;
    q.producers_left = PRODUCERS;
    for (long i = 0; i < CONSUMERS; i++)
        pthread_create(&c[i], NULL, consumer_main, (void *)(intptr_t)i);
    for (long i = 0; i < PRODUCERS; i++)
        pthread_create(&p[i], NULL, producer_main, (void *)(intptr_t)i);
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(p[i], NULL);
    for (int i = 0; i < CONSUMERS; i++)
        pthread_join(c[i], NULL);
    long n = (long)PRODUCERS * ITEMS_PER_PRODUCER;
    long want = n * (n + 1) / 2;
    printf("consumed %ld items, sum %ld (want %ld items, sum %ld)\n", (long)consumed_count,
           (long)consumed_sum, n, want);
    if (consumed_count != n || consumed_sum != want) {
        printf("FAIL: lost or duplicated items\n");
        exit(1);
    }
    pthread_create(&slow, NULL, slow_producer_main, NULL);
    consumer_waits_here();
    pthread_join(slow, NULL);
    printf("condvar ok\n");
}

/* --------------------------------------------------------------- stress */

/*
 * Every wrapped function from many threads at once, with the profiles
 * switched on and off underneath (through the preloaded library, found with
 * dlsym), and forks whose children lock too: must finish, with the counts
 * right.
 */
#define STRESS_THREADS 8
#define STRESS_ITERS 20000
#define STRESS_LOCKS 4

static pthread_mutex_t smu[STRESS_LOCKS] = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER,
                                            PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER};
static pthread_rwlock_t srw = PTHREAD_RWLOCK_INITIALIZER;
static pthread_cond_t scond = PTHREAD_COND_INITIALIZER;
static long scounter[STRESS_LOCKS];
static long srw_value;
static _Atomic int stress_running;

static void *stress_main(void *arg)
{
    unsigned seed = (unsigned)(intptr_t)arg * 2654435761u + 1;
    for (int i = 0; i < STRESS_ITERS; i++) {
        seed = seed * 1103515245u + 12345u;
        int k = (int)((seed >> 16) % STRESS_LOCKS);
        switch ((seed >> 8) % 8) {
        case 0: {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 5;
            if (pthread_mutex_timedlock(&smu[k], &ts) != 0)
                abort();
            scounter[k]++;
            pthread_mutex_unlock(&smu[k]);
            break;
        }
        case 1:
            pthread_rwlock_wrlock(&srw);
            srw_value++;
            pthread_rwlock_unlock(&srw);
            break;
        case 2:
            pthread_rwlock_rdlock(&srw);
            sink += (int)srw_value;
            pthread_rwlock_unlock(&srw);
            break;
        case 3: {
            /* A bounded wait that usually times out: the wake-up path and
             * the timeout path of the condvar wrapper. */
            pthread_mutex_lock(&smu[k]);
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 20000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            int rc = pthread_cond_timedwait(&scond, &smu[k], &ts);
            if (rc != 0 && rc != ETIMEDOUT)
                abort();
            scounter[k]++;
            pthread_mutex_unlock(&smu[k]);
            pthread_cond_broadcast(&scond);
            break;
        }
        default:
            pthread_mutex_lock(&smu[k]);
            scounter[k]++;
            pthread_mutex_unlock(&smu[k]);
            break;
        }
    }
    return NULL;
}

static void *toggler_main(void *arg)
{
    (void)arg;
    void (*set_rate)(long) = (void (*)(long))dlsym(RTLD_DEFAULT, "mprof_set_block_rate");
    int (*set_fraction)(int) = (int (*)(int))dlsym(RTLD_DEFAULT, "mprof_set_mutex_fraction");
    if (set_rate == NULL || set_fraction == NULL)
        return NULL;
    for (int i = 0; atomic_load(&stress_running); i++) {
        set_rate(i % 3 == 0 ? 0 : i % 3 == 1 ? 1 : 10000);
        set_fraction(i % 4);
        sleep_ms(1);
    }
    set_rate(1);
    set_fraction(1);
    return NULL;
}

static void run_stress(void)
{
    pthread_t t[STRESS_THREADS], toggler;
    atomic_store(&stress_running, 1);
    pthread_create(&toggler, NULL, toggler_main, NULL);
    for (long i = 0; i < STRESS_THREADS; i++)
        pthread_create(&t[i], NULL, stress_main, (void *)(intptr_t)i);
    int children = 0;
    for (int f = 0; f < 3; f++) {
        sleep_ms(20);
        pid_t pid = fork();
        if (pid == 0) {
            /* A child of a process whose locks were in use: its own locks
             * (and the profiler's tables) must work. */
            pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
            for (int i = 0; i < 1000; i++) {
                pthread_mutex_lock(&m);
                pthread_mutex_unlock(&m);
            }
            _exit(0);
        }
        if (pid > 0) {
            int status;
            if (waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0)
                children++;
        }
    }
    for (int i = 0; i < STRESS_THREADS; i++)
        pthread_join(t[i], NULL);
    atomic_store(&stress_running, 0);
    pthread_join(toggler, NULL);
    long total = 0;
    for (int k = 0; k < STRESS_LOCKS; k++)
        total += scounter[k];
    long want = 0;
    /* Every case but the two rwlock ones counts on a mutex: recompute the
     * same sequence of choices. */
    for (long i = 0; i < STRESS_THREADS; i++) {
        unsigned seed = (unsigned)i * 2654435761u + 1;
        for (int n = 0; n < STRESS_ITERS; n++) {
            seed = seed * 1103515245u + 12345u;
            unsigned c = (seed >> 8) % 8;
            want += c != 1 && c != 2;
        }
    }
    printf("stress: %ld of %ld mutex increments, %d of 3 children ok\n", total, want, children);
    if (total != want || children != 3)
        exit(1);
    printf("stress ok\n");
}

/* ---------------------------------------------------------------- serve */

/* Contention and thread creation until STOPFILE appears (for the HTTP
 * endpoint tests). */
static void run_serve(const char *stop_file)
{
    rounds = 5;
    for (int i = 0; i < 600 && access(stop_file, F_OK) != 0; i++) {
        run_mutex();
        fflush(stdout);
    }
}

/* ------------------------------------------------------------------ off */

static int write_with(const char *fn_name, const char *path)
{
    int (*fn)(int, int) = (int (*)(int, int))dlsym(RTLD_DEFAULT, fn_name);
    if (fn == NULL) {
        fprintf(stderr, "%s not found: is libmprof preloaded?\n", fn_name);
        return -1;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return -1;
    int rc = fn(fd, 1);
    close(fd);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s mutex|short|rwlock|cond|stress|serve|off [OUT]\n", argv[0]);
        return 2;
    }
    const char *mode = argv[1];
    if (strcmp(mode, "mutex") == 0) {
        run_mutex();
    } else if (strcmp(mode, "short") == 0) {
        rounds = SHORT_ROUNDS;
        hold_ms = SHORT_HOLD_MS;
        run_mutex();
    } else if (strcmp(mode, "stress") == 0) {
        run_stress();
    } else if (strcmp(mode, "serve") == 0 && argc > 2) {
        run_serve(argv[2]);
    } else if (strcmp(mode, "rwlock") == 0) {
        run_rwlock();
    } else if (strcmp(mode, "cond") == 0) {
        run_cond();
    } else if (strcmp(mode, "off") == 0 && argc > 2) {
        run_mutex();
        char path[4096];
        snprintf(path, sizeof path, "%s.block", argv[2]);
        if (write_with("mprof_write_block_profile_fd", path) != 0)
            return 1;
        snprintf(path, sizeof path, "%s.mutex", argv[2]);
        if (write_with("mprof_write_mutex_profile_fd", path) != 0)
            return 1;
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    return 0;
}
