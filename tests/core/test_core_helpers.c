/*
 * Unit test of the one-copy helpers every part of mprof shares:
 *
 *  1. shared/bytebuf.h, the protobuf wire encoder: the byte sequences of
 *     the protobuf encoding documentation (varint 150, string "testing",
 *     packed 3/270/86942, a nested message), varint lengths and the
 *     reader at every length boundary, malformed varints, zero fields
 *     left out, sticky out-of-memory passed from a nested message.
 *  2. core/os.h: clocks, deadlines, thread ids, futex wait and wake, the
 *     random generator, the our-handler test, and the real-function
 *     lookup, including its refusal to return our own definition.
 *  3. core/hash.h: the published FNV-1a and splitmix64 values, and
 *     mprof_hash_words depending on every word.
 *
 * Compiled alone (header-only code), so it also runs under ASan and TSan.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "shared/hash.h"
#include "core/os.h"
#include "shared/bytebuf.h"
#include "../lib/check.h"

/* b holds exactly the n bytes at want. */
static int holds(const mprof_bytebuf *b, const unsigned char *want, size_t n)
{
    return !b->oom && b->len == n && memcmp(b->p, want, n) == 0;
}

/* ------------------------------------------------------------ encoder */

static void test_varints(void)
{
    static const struct {
        uint64_t v;
        unsigned char bytes[10];
        size_t n;
    } cases[] = {
        {0, {0x00}, 1},
        {1, {0x01}, 1},
        {127, {0x7f}, 1},
        {128, {0x80, 0x01}, 2},
        {150, {0x96, 0x01}, 2},
        {300, {0xac, 0x02}, 2},
        {16383, {0xff, 0x7f}, 2},
        {16384, {0x80, 0x80, 0x01}, 3},
        {(uint64_t)1 << 63, {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, 10},
        {UINT64_MAX, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 10},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        mprof_bytebuf b = {0};
        mprof_bytebuf_varint(&b, cases[i].v);
        CHECK(holds(&b, cases[i].bytes, cases[i].n));
        CHECK(mprof_varint_len(cases[i].v) == cases[i].n);
        const uint8_t *p = b.p;
        uint64_t back = 12345;
        CHECK(mprof_varint_read(&p, b.p + b.len, &back) == 0);
        CHECK(back == cases[i].v && p == b.p + b.len);
        /* Cut short by one byte: the reader says so. */
        p = b.p;
        CHECK(mprof_varint_read(&p, b.p + b.len - 1, &back) == -1);
        mprof_bytebuf_free(&b);
        CHECK(b.p == NULL && b.len == 0 && b.cap == 0);
    }
    /* A tenth byte above 1, and an eleventh byte: more than 64 bits. */
    static const uint8_t big[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
    static const uint8_t longer[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                                     0x80, 0x80, 0x80, 0x80, 0x01};
    const uint8_t *p = big;
    uint64_t v;
    CHECK(mprof_varint_read(&p, big + sizeof big, &v) == -2);
    p = longer;
    CHECK(mprof_varint_read(&p, longer + sizeof longer, &v) == -2);
    p = big;
    CHECK(mprof_varint_read(&p, big, &v) == -1);
}

static void test_fields(void)
{
    mprof_bytebuf b = {0}, sub = {0};

    mprof_wire_uint(&b, 1, 0);
    CHECK(b.len == 0);
    mprof_wire_uint(&b, 1, 150);
    static const unsigned char uint150[] = {0x08, 0x96, 0x01};
    CHECK(holds(&b, uint150, sizeof uint150));

    b.len = 0;
    mprof_wire_string(&b, 2, "testing");
    static const unsigned char testing[] = {0x12, 0x07, 't', 'e', 's', 't', 'i', 'n', 'g'};
    CHECK(holds(&b, testing, sizeof testing));

    b.len = 0;
    mprof_wire_string(&b, 6, "");
    static const unsigned char empty[] = {0x32, 0x00};
    CHECK(holds(&b, empty, sizeof empty));

    b.len = 0;
    static const uint32_t packed[] = {3, 270, 86942};
    mprof_wire_packed_u32(&b, 4, packed, 3);
    static const unsigned char packed_bytes[] = {0x22, 0x06, 0x03, 0x8e, 0x02, 0x9e, 0xa7, 0x05};
    CHECK(holds(&b, packed_bytes, sizeof packed_bytes));
    mprof_wire_packed_u32(&b, 4, packed, 0);
    CHECK(b.len == sizeof packed_bytes);

    /* int64 -1 packed: ten bytes, as protobuf's int64. */
    b.len = 0;
    static const int64_t minus_one[] = {-1};
    mprof_wire_packed_u64(&b, 2, (const uint64_t *)minus_one, 1);
    CHECK(!b.oom && b.len == 12 && b.p[0] == 0x12 && b.p[1] == 10 && b.p[11] == 0x01);

    /* A nested message: key 3, length, then sub's bytes; sub is emptied
     * and its buffer kept for the next one. */
    b.len = 0;
    mprof_wire_uint(&sub, 1, 150);
    mprof_wire_message(&b, 3, &sub);
    static const unsigned char nested[] = {0x1a, 0x03, 0x08, 0x96, 0x01};
    CHECK(holds(&b, nested, sizeof nested));
    CHECK(sub.len == 0 && sub.p != NULL && !sub.oom);

    /* Out of memory is sticky and travels to the parent. */
    mprof_bytebuf big = {0};
    CHECK(mprof_bytebuf_reserve(&big, SIZE_MAX) == -1 && big.oom);
    mprof_bytebuf_varint(&big, 1);
    CHECK(big.len == 0 && big.p == NULL);
    sub.oom = 1;
    mprof_wire_message(&b, 3, &sub);
    CHECK(b.oom);

    mprof_bytebuf_free(&b);
    mprof_bytebuf_free(&sub);
    mprof_bytebuf_free(&big);
}

/* Many small appends: the buffer grows and keeps every byte. */
static void test_growth(void)
{
    mprof_bytebuf b = {0};
    for (uint64_t i = 0; i < 100000; i++)
        mprof_bytebuf_varint(&b, i);
    CHECK(!b.oom);
    const uint8_t *p = b.p, *end = b.p + b.len;
    int ok = 1;
    for (uint64_t i = 0; i < 100000 && ok; i++) {
        uint64_t v;
        ok = mprof_varint_read(&p, end, &v) == 0 && v == i;
    }
    CHECK(ok && p == end);
    mprof_bytebuf_free(&b);
}

/* ------------------------------------------------------------- os.h */

/* Exported from this executable (linked with -rdynamic) and found by a
 * global lookup: "ours", which the lookup must never hand back. */
__attribute__((visibility("default"), noinline)) int mprof_test_own_definition(void)
{
    return 42;
}

static void test_symbols(void)
{
    /* Not in any library after us; the global scope has only our own. */
    CHECK(dlsym(RTLD_DEFAULT, "mprof_test_own_definition") != NULL);
    CHECK(mprof_symbol_is_ours(dlsym(RTLD_DEFAULT, "mprof_test_own_definition")));
    CHECK(mprof_next_symbol("mprof_test_own_definition", NULL) == NULL);

    void *next = dlsym(RTLD_NEXT, "pthread_mutex_lock");
    CHECK(next != NULL && !mprof_symbol_is_ours(next));
    CHECK(mprof_next_symbol("pthread_mutex_lock", NULL) == next);
    /* An unknown version falls back to the default one. */
    CHECK(mprof_next_symbol("pthread_mutex_lock", "NO_SUCH_VERSION_1.0") == next);
#if defined(__x86_64__) && defined(__GLIBC__)
    void *cond = dlvsym(RTLD_NEXT, "pthread_cond_wait", "GLIBC_2.3.2");
    CHECK(cond != NULL && mprof_next_symbol("pthread_cond_wait", "GLIBC_2.3.2") == cond);
#endif
    CHECK(mprof_next_symbol("mprof_no_such_function_anywhere", NULL) == NULL);
    CHECK(!mprof_symbol_is_ours((void *)&dlsym));
    CHECK(mprof_symbol_is_ours((void *)&test_symbols));
}

static void test_clocks(void)
{
    int64_t a = mprof_mono_ns(), ms = mprof_mono_ms(), b = mprof_mono_ns();
    CHECK(a > 0 && b >= a);
    CHECK(ms >= a / 1000000 && ms <= b / 1000000);
    /* 2020-01-01 and 2200-01-01: a wall clock in nanoseconds. */
    int64_t wall = mprof_wall_ns();
    CHECK(wall > 1577836800LL * 1000000000 && wall < 7258118400LL * 1000000000);
    CHECK(mprof_clock_ns(CLOCK_THREAD_CPUTIME_ID) > 0);
    CHECK(mprof_clock_ns((clockid_t)0x7ffffff0) == 0); /* no such clock */

    struct timespec d = mprof_deadline_in_ms(1999);
    int64_t dn = (int64_t)d.tv_sec * 1000000000 + d.tv_nsec, now = mprof_wall_ns();
    CHECK(d.tv_nsec >= 0 && d.tv_nsec < 1000000000);
    CHECK(dn > now + 1900LL * 1000000 && dn <= now + 1999LL * 1000000);
}

static _Atomic uint32_t futex_word;
static _Atomic pid_t thread_tid;

static void *waiter(void *arg)
{
    (void)arg;
    atomic_store(&thread_tid, mprof_gettid());
    /* Until woken (the word changes to 1): the main thread wakes us well
     * before the ten seconds. */
    while (atomic_load(&futex_word) == 0)
        mprof_futex_wait(&futex_word, 0, 10LL * 1000000000);
    return NULL;
}

static void test_thread_and_futex(void)
{
    CHECK(mprof_gettid() == getpid());
    /* The word is not the value expected: returns at once, not in 10 s. */
    atomic_store(&futex_word, 1);
    int64_t t0 = mprof_mono_ns();
    mprof_futex_wait(&futex_word, 0, 10LL * 1000000000);
    CHECK(mprof_mono_ns() - t0 < 5LL * 1000000000);
    /* A timed wait with nobody to wake it ends by itself. */
    t0 = mprof_mono_ns();
    mprof_futex_wait(&futex_word, 1, 20 * 1000000);
    CHECK(mprof_mono_ns() - t0 < 5LL * 1000000000);

    atomic_store(&futex_word, 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, waiter, NULL) == 0);
    while (atomic_load(&thread_tid) == 0)
        usleep(1000);
    usleep(20000); /* most likely asleep in the futex by now */
    t0 = mprof_mono_ns();
    atomic_store(&futex_word, 1);
    mprof_futex_wake(&futex_word, INT_MAX);
    pthread_join(t, NULL);
    CHECK(mprof_mono_ns() - t0 < 5LL * 1000000000);
    CHECK(atomic_load(&thread_tid) != getpid());
}

static void test_random(void)
{
    uint64_t state = mprof_random_seed();
    CHECK(state != 0);
    uint64_t ones = 0, zeros = 0;
    int stuck = 0;
    for (int i = 0; i < 4096; i++) {
        uint64_t x = mprof_random(&state);
        ones |= x;
        zeros |= ~x;
        stuck |= state == 0;
    }
    CHECK(!stuck);
    CHECK(ones == UINT64_MAX && zeros == UINT64_MAX); /* every bit varies */
    /* The same state gives the same sequence (it is the state's only). */
    uint64_t s1 = 0x1234, s2 = 0x1234;
    CHECK(mprof_random(&s1) == mprof_random(&s2) && s1 == s2 && s1 != 0x1234);
}

static void handler_a(int sig, siginfo_t *si, void *uc) { (void)sig, (void)si, (void)uc; }
static void handler_b(int sig, siginfo_t *si, void *uc) { (void)sig, (void)si, (void)uc; }

static void test_sigaction(void)
{
    struct sigaction sa, old, seen;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = handler_a;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGUSR2, &sa, &old) == 0);
    CHECK(sigaction(SIGUSR2, NULL, &seen) == 0);
    CHECK(mprof_sigaction_is(&seen, handler_a));
    CHECK(!mprof_sigaction_is(&seen, handler_b));
    CHECK(sigaction(SIGUSR2, &old, NULL) == 0);
    CHECK(sigaction(SIGUSR2, NULL, &seen) == 0);
    CHECK(!mprof_sigaction_is(&seen, handler_a));
}

/* ----------------------------------------------------------- hash.h */

static void test_hashes(void)
{
    /* The FNV-1a 64 test vectors: "" is the offset basis. */
    CHECK(mprof_fnv1a_str("") == 0xcbf29ce484222325ull);
    CHECK(mprof_fnv1a_str("a") == 0xaf63dc4c8601ec8cull);
    CHECK(mprof_fnv1a(MPROF_FNV1A_OFFSET, "a", 1) == mprof_fnv1a_str("a"));
    CHECK(mprof_fnv1a(mprof_fnv1a(MPROF_FNV1A_OFFSET, "ab", 2), "c", 1) ==
          mprof_fnv1a_str("abc"));
    /* splitmix64's finalizer. */
    CHECK(mprof_mix64(0) == 0);
    CHECK(mprof_mix64(1) == 0x5692161d100b05e5ull);
    CHECK(mprof_hash_pointer(2) == 2 * 0x9E3779B97F4A7C15ull);

    uintptr_t w[8] = {0x401000, 0x401010, 0x402000, 0x7f0000001000, 5, 6, 7, 8};
    uint64_t h = mprof_hash_words(w, 8, 8);
    CHECK(mprof_hash_words(w, 8, 8) == h);
    CHECK(mprof_hash_words(w, 8, 9) != h);
    CHECK(mprof_hash_words(w, 7, 8) != h);
    for (int i = 0; i < 8; i++) {
        w[i] ^= 16;
        CHECK(mprof_hash_words(w, 8, 8) != h);
        w[i] ^= 16;
    }
}

int main(void)
{
    test_varints();
    test_fields();
    test_growth();
    test_symbols();
    test_clocks();
    test_thread_and_futex();
    test_random();
    test_sigaction();
    test_hashes();
    return check_result("test_core_helpers");
}
