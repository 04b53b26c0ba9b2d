/*
 * Unit test of the CPU sample ring (src/cpu_ring.h), built alone so that it
 * also runs under ASan and TSan.
 *
 *  1. One thread: FIFO order, a full ring refuses and counts the drop with
 *     its weight, and positions wrap around many laps.
 *  2. Four writers against one concurrent reader: every record is either
 *     read exactly once, in each writer's order, or counted as dropped;
 *     never torn (each record's payload is checked against its header).
 *  3. Writers that are signal handlers: SIGALRM handlers on several threads
 *     push while their threads also push from normal code; the same
 *     accounting must hold.  (A handler interrupting its own thread between
 *     claim and publish is the case that forbids any lock.)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "profiles/cpu_ring.h"
#include "../lib/check.h"


static void fill(mprof_cpu_rec *r, int writer, uint64_t seq, uint32_t npcs)
{
    r->tid = writer;
    r->weight = 1;
    r->npcs = npcs;
    for (uint32_t i = 0; i < npcs; i++)
        r->pcs[i] = (uintptr_t)(seq * 1000 + i);
    memset(r->name, 'a' + writer, sizeof r->name - 1);
    r->name[sizeof r->name - 1] = '\0';
}

/* A record's payload is a function of (writer, seq): a torn read shows. */
static int intact(const mprof_cpu_rec *r, uint64_t *seq_out)
{
    if (r->npcs == 0 || r->npcs > MPROF_MAX_STACK)
        return 0;
    uint64_t seq = r->pcs[0] / 1000;
    for (uint32_t i = 0; i < r->npcs; i++)
        if (r->pcs[i] != (uintptr_t)(seq * 1000 + i))
            return 0;
    for (size_t i = 0; i + 1 < sizeof r->name; i++)
        if (r->name[i] != 'a' + r->tid)
            return 0;
    *seq_out = seq;
    return 1;
}

static void test_single(void)
{
    enum { N = 8 };
    static mprof_cpu_slot slots[N];
    mprof_cpu_ring r;
    mprof_cpu_ring_init(&r, slots, N);
    CHECK(mprof_cpu_ring_peek(&r) == NULL);
    uint64_t pos;
    for (int i = 0; i < N; i++) {
        mprof_cpu_rec *rec = mprof_cpu_ring_claim(&r, &pos);
        CHECK(rec != NULL && pos == (uint64_t)i);
        fill(rec, 0, (uint64_t)i, 3);
        mprof_cpu_ring_publish(&r, pos);
    }
    CHECK(mprof_cpu_ring_claim(&r, &pos) == NULL);
    mprof_cpu_ring_drop(&r, 5);
    CHECK(atomic_load(&r.dropped) == 5 && atomic_load(&r.dropped_recs) == 1);
    CHECK(mprof_cpu_ring_used(&r) == N);
    for (int i = 0; i < N; i++) {
        const mprof_cpu_rec *rec = mprof_cpu_ring_peek(&r);
        uint64_t seq;
        CHECK(rec != NULL && intact(rec, &seq) && seq == (uint64_t)i);
        mprof_cpu_ring_release(&r);
    }
    CHECK(mprof_cpu_ring_peek(&r) == NULL);

    /* A claimed but unpublished slot holds the reader back, not later
     * ones' writers. */
    uint64_t p1, p2;
    mprof_cpu_rec *a = mprof_cpu_ring_claim(&r, &p1);
    mprof_cpu_rec *b = mprof_cpu_ring_claim(&r, &p2);
    CHECK(a != NULL && b != NULL && p2 == p1 + 1);
    fill(b, 0, 100, 1);
    mprof_cpu_ring_publish(&r, p2);
    CHECK(mprof_cpu_ring_peek(&r) == NULL);
    fill(a, 0, 99, 1);
    mprof_cpu_ring_publish(&r, p1);
    uint64_t seq;
    CHECK(mprof_cpu_ring_peek(&r) != NULL && intact(mprof_cpu_ring_peek(&r), &seq) && seq == 99);
    mprof_cpu_ring_release(&r);
    CHECK(mprof_cpu_ring_peek(&r) != NULL && intact(mprof_cpu_ring_peek(&r), &seq) && seq == 100);
    mprof_cpu_ring_release(&r);

    /* Many laps. */
    for (uint64_t i = 0; i < 100000; i++) {
        mprof_cpu_rec *rec = mprof_cpu_ring_claim(&r, &pos);
        CHECK(rec != NULL);
        fill(rec, 1, i, 1 + (uint32_t)(i % MPROF_MAX_STACK));
        mprof_cpu_ring_publish(&r, pos);
        if (i % 3 == 2)
            for (int k = 0; k < 3; k++) {
                CHECK(mprof_cpu_ring_peek(&r) != NULL);
                mprof_cpu_ring_release(&r);
            }
    }
    while (mprof_cpu_ring_peek(&r) != NULL)
        mprof_cpu_ring_release(&r);
    CHECK(mprof_cpu_ring_used(&r) == 0);
}

/* ---------------------------------------------------------- concurrent */

enum { WRITERS = 4, PER_WRITER = 200000, SLOTS = 64 };
static mprof_cpu_slot cslots[SLOTS];
static mprof_cpu_ring cring;
static _Atomic int writers_done;

static void push(int writer, uint64_t seq)
{
    uint64_t pos;
    mprof_cpu_rec *rec = mprof_cpu_ring_claim(&cring, &pos);
    if (rec == NULL) {
        mprof_cpu_ring_drop(&cring, 1);
        return;
    }
    fill(rec, writer, seq, 1 + (uint32_t)(seq % 8));
    mprof_cpu_ring_publish(&cring, pos);
}

static void *writer_main(void *arg)
{
    int w = (int)(intptr_t)arg;
    for (uint64_t i = 0; i < PER_WRITER; i++)
        push(w, i);
    atomic_fetch_add(&writers_done, 1);
    return NULL;
}

/* Reads until the writers are done and the ring is empty; checks order and
 * integrity; returns how many records were read. */
static uint64_t read_all(int nwriters, _Atomic int *done, int ndone)
{
    int64_t last[16];
    for (int i = 0; i < 16; i++)
        last[i] = -1;
    uint64_t got = 0;
    for (;;) {
        int finished = atomic_load(done) == ndone;
        const mprof_cpu_rec *rec;
        while ((rec = mprof_cpu_ring_peek(&cring)) != NULL) {
            uint64_t seq;
            CHECK(rec->tid >= 0 && rec->tid < nwriters);
            CHECK(intact(rec, &seq));
            if (rec->tid >= 0 && rec->tid < nwriters) {
                CHECK((int64_t)seq > last[rec->tid]);
                last[rec->tid] = (int64_t)seq;
            }
            got++;
            mprof_cpu_ring_release(&cring);
        }
        if (finished)
            return got;
    }
}

static void test_concurrent(void)
{
    mprof_cpu_ring_init(&cring, cslots, SLOTS);
    atomic_store(&writers_done, 0);
    pthread_t th[WRITERS];
    for (int i = 0; i < WRITERS; i++)
        pthread_create(&th[i], NULL, writer_main, (void *)(intptr_t)i);
    uint64_t got = read_all(WRITERS, &writers_done, WRITERS);
    for (int i = 0; i < WRITERS; i++)
        pthread_join(th[i], NULL);
    uint64_t dropped = atomic_load(&cring.dropped_recs);
    printf("concurrent: %llu read, %llu dropped of %d\n", (unsigned long long)got,
           (unsigned long long)dropped, WRITERS * PER_WRITER);
    CHECK(got + dropped == (uint64_t)WRITERS * PER_WRITER);
    CHECK(atomic_load(&cring.dropped) == dropped);
}

/* ------------------------------------------------------ signal writers */

enum { SIG_THREADS = 3, SIG_PUSHES = 100000 };
/* Writer ids: thread i pushes as i, its signal handler as SIG_THREADS + i,
 * each with its own sequence, so that both orders can be checked. */
static __thread int sig_writer;        /* 1 + i on writer threads, 0 elsewhere */
static __thread uint64_t handler_seq;
static _Atomic int sig_done;
static _Atomic uint64_t sig_pushed;

static void on_alarm(int sig)
{
    (void)sig;
    if (sig_writer == 0)
        return; /* the reader thread */
    push(SIG_THREADS + sig_writer - 1, handler_seq++);
    atomic_fetch_add(&sig_pushed, 1);
}

static void *sig_writer_main(void *arg)
{
    sig_writer = (int)(intptr_t)arg + 1;
    sigset_t alrm;
    sigemptyset(&alrm);
    sigaddset(&alrm, SIGALRM);
    pthread_sigmask(SIG_UNBLOCK, &alrm, NULL);
    for (uint64_t i = 0; i < SIG_PUSHES; i++) {
        push(sig_writer - 1, i);
        atomic_fetch_add(&sig_pushed, 1);
        /* Slow down so that timer signals interleave with the pushes. */
        for (volatile int k = 0; k < 200; k++)
            ;
    }
    atomic_fetch_add(&sig_done, 1);
    return NULL;
}

static void test_signals(void)
{
    mprof_cpu_ring_init(&cring, cslots, SLOTS);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    /* The timer's signals go to the writers: the reader blocks them. */
    sigset_t alrm;
    sigemptyset(&alrm);
    sigaddset(&alrm, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &alrm, NULL);
    struct itimerval it = {{0, 200}, {0, 200}};
    setitimer(ITIMER_REAL, &it, NULL);
    pthread_t th[SIG_THREADS];
    for (int i = 0; i < SIG_THREADS; i++)
        pthread_create(&th[i], NULL, sig_writer_main, (void *)(intptr_t)i);
    uint64_t got = read_all(2 * SIG_THREADS, &sig_done, SIG_THREADS);
    struct itimerval off;
    memset(&off, 0, sizeof off);
    setitimer(ITIMER_REAL, &off, NULL);
    for (int i = 0; i < SIG_THREADS; i++)
        pthread_join(th[i], NULL);
    /* Drain what handlers pushed after the writers finished. */
    while (mprof_cpu_ring_peek(&cring) != NULL) {
        got++;
        mprof_cpu_ring_release(&cring);
    }
    uint64_t dropped = atomic_load(&cring.dropped_recs);
    uint64_t pushed = atomic_load(&sig_pushed);
    printf("signals: %llu pushed (%llu from handlers), %llu read, %llu dropped\n",
           (unsigned long long)pushed,
           (unsigned long long)(pushed - (uint64_t)SIG_THREADS * SIG_PUSHES),
           (unsigned long long)got, (unsigned long long)dropped);
    CHECK(got + dropped == pushed);
}

int main(void)
{
    test_single();
    test_concurrent();
    test_signals();
    return check_result("test_cpu_ring");
}
