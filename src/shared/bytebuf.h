/*
 * A growable byte buffer with protobuf-style varints, header-only so that
 * both the library (heap dumps) and the CLI (dump conversion), which do not
 * link each other, share one copy.  Out of memory is sticky: appends after
 * a failed growth are dropped and `oom` stays set, so a writer checks once
 * at the end instead of after every field.  Cold paths only: it allocates.
 */
#ifndef MPROF_BYTEBUF_H
#define MPROF_BYTEBUF_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct mprof_bytebuf {
    unsigned char *p;
    size_t len, cap;
    int oom;
} mprof_bytebuf;

static inline void mprof_bytebuf_reserve(mprof_bytebuf *b, size_t extra)
{
    if (b->oom || b->len + extra <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra)
        cap *= 2;
    unsigned char *p = realloc(b->p, cap);
    if (p == NULL) {
        b->oom = 1;
        return;
    }
    b->p = p;
    b->cap = cap;
}

static inline void mprof_bytebuf_append(mprof_bytebuf *b, const void *p, size_t n)
{
    mprof_bytebuf_reserve(b, n);
    if (b->oom)
        return;
    if (n > 0)
        memcpy(b->p + b->len, p, n);
    b->len += n;
}

/* Unsigned LEB128, as protobuf varints. */
static inline void mprof_bytebuf_varint(mprof_bytebuf *b, uint64_t v)
{
    unsigned char tmp[10];
    size_t n = 0;
    do {
        tmp[n++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v != 0);
    mprof_bytebuf_append(b, tmp, n);
}

#endif /* MPROF_BYTEBUF_H */
