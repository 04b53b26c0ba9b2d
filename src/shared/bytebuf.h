/*
 * A growable byte buffer and the protobuf wire encoder built on it: the
 * one encoder of the library's pprof profiles (encode/pprof_builder.c) and
 * heap dumps (profiles/heap_dump.c) and of the CLI's dump conversion
 * (cli/cmd_dump.c), which do not link each other; header-only, so both
 * carry the same copy.  Also the one varint reader, for the CLI's
 * decoders of both formats.
 *
 * Out of memory is sticky: appends after a failed growth are dropped and
 * `oom` stays set (and travels from a nested message to its parent), so a
 * writer checks once at the end instead of after every field.
 *
 * Memory comes from realloc and goes back with mprof_bytebuf_free.  Cold
 * paths only.  In the library every writer runs with the profiler guard
 * held (core/core.h), so these reallocs go straight to the real allocator:
 * never sampled, never recursing into the profiler.
 */
#ifndef MPROF_BYTEBUF_H
#define MPROF_BYTEBUF_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shared/pprof_fields.h"

typedef struct mprof_bytebuf {
    unsigned char *p;
    size_t len, cap;
    int oom;
} mprof_bytebuf;

/* Room for extra more bytes: 0, or -1 (and oom set) if there is none. */
static inline int mprof_bytebuf_reserve(mprof_bytebuf *b, size_t extra)
{
    if (b->oom)
        return -1;
    if (b->cap - b->len >= extra)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < extra) {
        if (cap > SIZE_MAX / 2) {
            b->oom = 1;
            return -1;
        }
        cap *= 2;
    }
    unsigned char *p = realloc(b->p, cap);
    if (p == NULL) {
        b->oom = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

static inline void mprof_bytebuf_append(mprof_bytebuf *b, const void *p, size_t n)
{
    if (mprof_bytebuf_reserve(b, n) != 0)
        return;
    if (n > 0)
        memcpy(b->p + b->len, p, n);
    b->len += n;
}

static inline void mprof_bytebuf_free(mprof_bytebuf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* The bytes of v as a varint: 1 to 10. */
static inline size_t mprof_varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Unsigned LEB128, as protobuf varints. */
static inline void mprof_bytebuf_varint(mprof_bytebuf *b, uint64_t v)
{
    if (mprof_bytebuf_reserve(b, 10) != 0)
        return;
    unsigned char *p = b->p + b->len;
    while (v >= 0x80) {
        *p++ = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    *p++ = (unsigned char)v;
    b->len = (size_t)(p - b->p);
}

/*
 * Reads the varint at *p (not past end) into *v and moves *p past it: 0;
 * -1 if the data ends inside it; -2 if it does not fit in 64 bits (the
 * tenth byte may carry bit 63 only), which means the data is not what the
 * reader thinks it is.  The decoders of the CLI use it; the library only
 * writes.
 */
static inline int mprof_varint_read(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;
    for (int i = 0; i < 10; i++) {
        if (*p >= end)
            return -1;
        uint8_t b = *(*p)++;
        if (i == 9 && b > 1)
            return -2;
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if ((b & 0x80) == 0) {
            *v = x;
            return 0;
        }
    }
    return -2;
}

/* n as a varint, then the n bytes: a length-delimited run (a protobuf
 * bytes field's value, a heap dump's string or record payload). */
static inline void mprof_bytebuf_lenbytes(mprof_bytebuf *b, const void *p, size_t n)
{
    mprof_bytebuf_varint(b, n);
    mprof_bytebuf_append(b, p, n);
}

/* ------------------------------------------------------ protobuf fields */

/* A field's key: its number and wire type (WIRE_VARINT, WIRE_LEN). */
static inline void mprof_wire_tag(mprof_bytebuf *b, int field, int wire)
{
    mprof_bytebuf_varint(b, ((uint64_t)field << 3) | (uint64_t)wire);
}

/* An integer field (int64, uint64 or bool: all plain varints; a negative
 * int64 cast to uint64 takes ten bytes, as protobuf specifies).  Zero is
 * left out, as proto3 encoders do. */
static inline void mprof_wire_uint(mprof_bytebuf *b, int field, uint64_t v)
{
    if (v == 0)
        return;
    mprof_wire_tag(b, field, WIRE_VARINT);
    mprof_bytebuf_varint(b, v);
}

/* The key and length of a length-delimited field whose n bytes follow. */
static inline void mprof_wire_len(mprof_bytebuf *b, int field, size_t n)
{
    mprof_wire_tag(b, field, WIRE_LEN);
    mprof_bytebuf_varint(b, n);
}

/* A bytes or string field: written even when empty (the string table's
 * first entry is ""). */
static inline void mprof_wire_bytes(mprof_bytebuf *b, int field, const void *p, size_t n)
{
    mprof_wire_tag(b, field, WIRE_LEN);
    mprof_bytebuf_lenbytes(b, p, n);
}

static inline void mprof_wire_string(mprof_bytebuf *b, int field, const char *s)
{
    mprof_wire_bytes(b, field, s, strlen(s));
}

/* An embedded message built in sub: its key, length and bytes.  sub is
 * emptied for the next message (its memory kept); its oom passes to b.
 * A packed repeated field may be built the same way, its varints in sub. */
static inline void mprof_wire_message(mprof_bytebuf *b, int field, mprof_bytebuf *sub)
{
    mprof_wire_bytes(b, field, sub->p, sub->len);
    if (sub->oom)
        b->oom = 1;
    sub->len = 0;
}

/* A packed repeated integer field of n values, as proto3 writes repeated
 * scalars; nothing when n is 0.  One per element type; the 64-bit one
 * takes int64 arrays too (cast: negative values take ten bytes). */
#define MPROF_WIRE_PACKED(name, type)                                                      \
    static inline void name(mprof_bytebuf *b, int field, const type *v, size_t n)          \
    {                                                                                      \
        if (n == 0)                                                                        \
            return;                                                                        \
        size_t len = 0;                                                                    \
        for (size_t i = 0; i < n; i++)                                                     \
            len += mprof_varint_len(v[i]);                                                 \
        mprof_wire_len(b, field, len);                                                     \
        for (size_t i = 0; i < n; i++)                                                     \
            mprof_bytebuf_varint(b, v[i]);                                                 \
    }
MPROF_WIRE_PACKED(mprof_wire_packed_u32, uint32_t)
MPROF_WIRE_PACKED(mprof_wire_packed_u64, uint64_t)
#undef MPROF_WIRE_PACKED

#endif /* MPROF_BYTEBUF_H */
