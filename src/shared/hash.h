/*
 * shared/hash: the hash functions (mixers) behind the profiler's hash
 * tables, one copy each.  The tables themselves stay with their owners;
 * these only turn a key into well-spread bits.  Header-only and pure: no
 * state, no allocation, async-signal-safe, usable on hot paths.
 *
 * Each table takes the bits it needs: the low bits after a mixer that
 * spreads every input bit into them (mprof_mix64, mprof_hash_words, FNV),
 * or the high bits of mprof_hash_pointer, whose low bits are weak.
 */
#ifndef MPROF_SHARED_HASH_H
#define MPROF_SHARED_HASH_H

#include <stddef.h>
#include <stdint.h>

/* FNV-1a over n bytes, continuing from h (start with MPROF_FNV1A_OFFSET):
 * short keys such as names, where something stronger buys nothing.  Keys
 * made of several parts chain the calls; mprof_mix64 on the result
 * spreads it further where a table needs that. */
#define MPROF_FNV1A_OFFSET 14695981039346656037ull

static inline uint64_t mprof_fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ c[i]) * 1099511628211ull;
    return h;
}

/* FNV-1a of a NUL-terminated string, from the offset basis. */
static inline uint64_t mprof_fnv1a_str(const char *s)
{
    uint64_t h = MPROF_FNV1A_OFFSET;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* splitmix64's finalizer: every output bit depends on every input bit.
 * For low-entropy keys such as pcs and heap addresses, which share their
 * high bits and are aligned. */
static inline uint64_t mprof_mix64(uint64_t h)
{
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return h;
}

/* Fibonacci hashing of an address: one multiply spreads the bits that
 * addresses do not share into the top bits, which the caller uses (shift
 * right; the low bits of the product are as weak as the address's). */
static inline uint64_t mprof_hash_pointer(uintptr_t p)
{
    return (uint64_t)p * 0x9E3779B97F4A7C15ull;
}

/* A stack of n pcs (or any words) and a seed (its size, its depth):
 * stacks differ mostly in their first few frames, and tables index by the
 * low bits, so every bit depends on every word. */
static inline uint64_t mprof_hash_words(const uintptr_t *w, int n, uint64_t seed)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ seed;
    for (int i = 0; i < n; i++) {
        h ^= (uint64_t)w[i];
        h *= 0xff51afd7ed558ccdull;
        h ^= h >> 33;
    }
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 29;
    return h;
}

#endif /* MPROF_SHARED_HASH_H */
