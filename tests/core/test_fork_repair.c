/*
 * The forked child's repair (heap/sampler.h, "Fork"), made deterministic:
 * instead of hoping a fork lands while some thread is inside the sampler,
 * the test holds the locks itself, on fake addresses recorded through the
 * public API at rate 1.
 *
 *   lost   another thread holds a live-table shard lock and a ring slot
 *          lock (as a thread caught mid-update by fork would) while the
 *          main thread forks.  The child, which has no such thread, must
 *          not hang on either lock, must count two lost updates and forget
 *          exactly the blocks of that shard, and must go on sampling and
 *          freeing into the repaired shard; the parent is unchanged
 *   own    the forking thread itself holds both locks (as the frame that a
 *          signal handler calling fork interrupted would).  The child must
 *          keep them (that frame unlocks them when the handler returns),
 *          count nothing lost, and have every block afterwards
 *
 * Each child runs under alarm(): a lock the repair missed fails the test
 * with SIGALRM instead of hanging it.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core_test.h"
#include "heap/buckets.h"
#include "heap/live_table.h"
#include "mprof.h"

#define NOBJ 2048
static char fake_heap[NOBJ][16] __attribute__((aligned(64)));

/* At rate 1, then off again: the test's own mallocs (pthread_create's,
 * stdio's) must not add samples to the counts it checks. */
CORE_NOIPA static void record_all(void)
{
    mprof_set_rate(1);
    for (int i = 0; i < NOBJ; i++)
        mprof_record_alloc(fake_heap[i], 16);
    mprof_set_rate(0);
}

static struct live_shard *shard_of(const void *p) { return live_place_of((uintptr_t)p).shard; }

/* How many of the fake blocks live in shard s. */
static size_t blocks_in(const struct live_shard *s)
{
    size_t n = 0;
    for (int i = 0; i < NOBJ; i++)
        n += shard_of(fake_heap[i]) == s;
    return n;
}

/* A block held in its shard's own entries (not its overflow table), and a
 * ring slot of the bucket it was charged to: the slot lock a thread
 * counting the bucket's next event would take.  NULL if none is. */
static struct ring_slot *slot_of_some_block(const void **block)
{
    for (int i = 0; i < NOBJ; i++) {
        struct live_shard *s = shard_of(fake_heap[i]);
        for (int k = 0; k < 2; k++)
            if (s->addr[k] == (uintptr_t)fake_heap[i] && s->bucket[k] != NULL) {
                *block = fake_heap[i];
                return &bucket_shards(s->bucket[k])[0].future[0];
            }
    }
    return NULL;
}

static size_t live_samples(void)
{
    mprof_stats st;
    mprof_get_stats(&st);
    return st.live_samples;
}

/* The locks a thread mid-update holds: a block's shard and a slot of its
 * bucket. */
struct held {
    struct live_shard *shard;
    struct ring_slot *slot;
    uint64_t slot_allocs;
};

static void hold(struct held *h)
{
    spin_lock(&h->shard->lock);
    h->slot_allocs = slot_lock(h->slot);
}

static void release(struct held *h)
{
    slot_unlock(h->slot, h->slot_allocs);
    spin_unlock(&h->shard->lock);
}

static struct held held;
static _Atomic int holding, may_release;

static void *holder(void *arg)
{
    (void)arg;
    hold(&held);
    atomic_store(&holding, 1);
    while (!atomic_load(&may_release))
        usleep(1000);
    release(&held);
    return NULL;
}

/* The child's checks after the sampler's repair; exit status = failures. */
static void child_checks(int own, size_t before, size_t in_shard)
{
    alarm(20);
    if (own) {
        /* Checked before anything else: every profiler call that takes
         * these locks would wait for this very frame, as a handler that
         * allocates waits for the malloc it interrupted. */
        CHECK(spin_owner(&held.shard->lock) != 0, "the child dropped its own frame's shard lock");
        CHECK(atomic_load(&held.slot->allocs_locked) & SLOT_LOCK,
              "the child dropped its own frame's slot lock");
        release(&held); /* the interrupted frame finishing */
    } else {
        CHECK(spin_owner(&held.shard->lock) == 0, "the lost thread's shard lock is still held");
        CHECK(!(atomic_load(&held.slot->allocs_locked) & SLOT_LOCK),
              "the lost thread's slot lock is still held");
    }
    mprof_stats st;
    mprof_get_stats(&st);
    uint64_t want_updates = own ? 0 : 2, want_lost = own ? 0 : in_shard;
    CHECK(st.fork_lost_updates == want_updates, "lost updates %llu, want %llu",
          (unsigned long long)st.fork_lost_updates, (unsigned long long)want_updates);
    CHECK(st.fork_lost_samples == want_lost, "lost samples %llu, want %llu",
          (unsigned long long)st.fork_lost_samples, (unsigned long long)want_lost);
    size_t want = own ? before : before - in_shard;
    size_t now = live_samples();
    CHECK(now == want, "%zu live samples in the child, want %zu", now, want);
    /* Both structures work again: free everything (the forgotten blocks
     * look unsampled), read a profile (the fold takes every slot lock),
     * sample the shard's blocks anew. */
    for (int i = 0; i < NOBJ; i++)
        mprof_record_free(fake_heap[i], MPROF_FREE_EXPLICIT);
    CHECK(live_samples() == before - NOBJ, "%zu live samples after freeing all, want %zu",
          live_samples(), before - NOBJ);
    static mprof_mem_record recs[256];
    CHECK(mprof_mem_profile(recs, 256, 1) >= 0, "cannot read the profile");
    record_all();
    CHECK(live_samples() == before, "%zu live samples after sampling again, want %zu",
          live_samples(), before);
    _exit(check_failures() ? 1 : 0);
}

static int run(int own)
{
    record_all();
    size_t before = live_samples();
    REQUIRE(before >= NOBJ, "%zu live samples, want at least %d", before, NOBJ);
    const void *block = NULL;
    held.slot = slot_of_some_block(&block);
    REQUIRE(held.slot != NULL, "no block in its shard's own entries");
    held.shard = shard_of(block);
    size_t in_shard = blocks_in(held.shard);

    pthread_t t;
    if (own) {
        hold(&held);
    } else {
        REQUIRE(pthread_create(&t, NULL, holder, NULL) == 0);
        while (!atomic_load(&holding))
            usleep(1000);
    }
    pid_t pid = fork();
    REQUIRE(pid >= 0, "fork failed");
    if (pid == 0)
        child_checks(own, before, in_shard);
    if (own) {
        release(&held);
    } else {
        atomic_store(&may_release, 1);
        pthread_join(t, NULL);
    }
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    if (WIFSIGNALED(status))
        FAIL("child killed by signal %d%s", WTERMSIG(status),
             WTERMSIG(status) == SIGALRM ? " (hung on a lock the repair missed)" : "");
    else
        CHECK(WEXITSTATUS(status) == 0, "child reported %d failure(s)", WEXITSTATUS(status));

    /* The parent is untouched. */
    mprof_stats st;
    mprof_get_stats(&st);
    CHECK(st.fork_lost_updates == 0 && st.fork_lost_samples == 0, "the parent counts losses");
    CHECK(live_samples() == before, "%zu live samples in the parent, want %zu", live_samples(),
          before);
    return check_result(own ? "fork_repair own" : "fork_repair lost");
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "lost") == 0)
        return run(0);
    if (argc == 2 && strcmp(argv[1], "own") == 0)
        return run(1);
    fprintf(stderr, "usage: test_fork_repair lost|own\n");
    return 2;
}
