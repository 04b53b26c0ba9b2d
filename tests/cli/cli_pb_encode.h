/*
 * A minimal protobuf writer for the CLI tests: enough to build pprof
 * profiles field by field, including deliberately broken ones.  Header-only
 * so the unit tests and the synthetic-profile generator share it.  Memory
 * errors abort: these are tests.
 */
#ifndef MPROF_TEST_CLI_PB_ENCODE_H
#define MPROF_TEST_CLI_PB_ENCODE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pbuf {
    uint8_t *data;
    size_t len, cap;
} pbuf;

static inline void pbuf_reserve(pbuf *b, size_t more)
{
    if (b->len + more <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + more)
        cap *= 2;
    b->data = realloc(b->data, cap);
    if (b->data == NULL)
        abort();
    b->cap = cap;
}

static inline void pbuf_raw(pbuf *b, const void *data, size_t len)
{
    pbuf_reserve(b, len);
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
}

static inline void pbuf_free(pbuf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

static inline void pb_put_varint(pbuf *b, uint64_t v)
{
    uint8_t bytes[10];
    size_t n = 0;
    do {
        uint8_t byte = v & 0x7f;
        v >>= 7;
        bytes[n++] = byte | (v ? 0x80 : 0);
    } while (v);
    pbuf_raw(b, bytes, n);
}

static inline void pb_put_tag(pbuf *b, uint32_t field, int wire)
{
    pb_put_varint(b, ((uint64_t)field << 3) | (uint64_t)wire);
}

static inline void pb_put_uint(pbuf *b, uint32_t field, uint64_t v)
{
    pb_put_tag(b, field, 0);
    pb_put_varint(b, v);
}

static inline void pb_put_bytes(pbuf *b, uint32_t field, const void *data, size_t len)
{
    pb_put_tag(b, field, 2);
    pb_put_varint(b, len);
    pbuf_raw(b, data, len);
}

static inline void pb_put_msg(pbuf *b, uint32_t field, const pbuf *msg)
{
    pb_put_bytes(b, field, msg->data, msg->len);
}

/* ---------------------------------------------- pprof profile builder */

#define SP_MAX_STRINGS 4096

typedef struct synth_profile {
    pbuf body; /* everything but the string table */
    const char *strings[SP_MAX_STRINGS];
    int nstrings;
} synth_profile;

static inline void sp_init(synth_profile *sp)
{
    memset(sp, 0, sizeof(*sp));
    sp->strings[0] = "";
    sp->nstrings = 1;
}

/* Index of s in the string table, adding it.  The strings must outlive the
 * builder. */
static inline uint64_t sp_str(synth_profile *sp, const char *s)
{
    for (int i = 0; i < sp->nstrings; i++)
        if (strcmp(sp->strings[i], s) == 0)
            return (uint64_t)i;
    if (sp->nstrings == SP_MAX_STRINGS)
        abort();
    sp->strings[sp->nstrings] = s;
    return (uint64_t)sp->nstrings++;
}

static inline void sp_value_type(synth_profile *sp, uint32_t field, const char *type,
                                 const char *unit)
{
    pbuf m = {0};
    pb_put_uint(&m, 1, sp_str(sp, type));
    pb_put_uint(&m, 2, sp_str(sp, unit));
    pb_put_msg(&sp->body, field, &m);
    pbuf_free(&m);
}

static inline void sp_sample_type(synth_profile *sp, const char *type, const char *unit)
{
    sp_value_type(sp, 1, type, unit);
}

static inline void sp_mapping(synth_profile *sp, uint64_t id, uint64_t start, uint64_t limit,
                              uint64_t offset, const char *file, int has_functions)
{
    pbuf m = {0};
    pb_put_uint(&m, 1, id);
    pb_put_uint(&m, 2, start);
    pb_put_uint(&m, 3, limit);
    pb_put_uint(&m, 4, offset);
    pb_put_uint(&m, 5, sp_str(sp, file));
    if (has_functions)
        pb_put_uint(&m, 7, 1);
    pb_put_msg(&sp->body, 3, &m);
    pbuf_free(&m);
}

static inline void sp_function(synth_profile *sp, uint64_t id, const char *name)
{
    pbuf m = {0};
    pb_put_uint(&m, 1, id);
    pb_put_uint(&m, 2, sp_str(sp, name));
    pb_put_uint(&m, 3, sp_str(sp, name));
    pb_put_uint(&m, 4, sp_str(sp, "synthetic.c"));
    pb_put_msg(&sp->body, 5, &m);
    pbuf_free(&m);
}

/* function_ids innermost first; nlines 0 makes an unsymbolized location. */
static inline void sp_location(synth_profile *sp, uint64_t id, uint64_t mapping_id,
                               uint64_t address, const uint64_t *function_ids, int nlines)
{
    pbuf m = {0};
    pb_put_uint(&m, 1, id);
    if (mapping_id)
        pb_put_uint(&m, 2, mapping_id);
    pb_put_uint(&m, 3, address);
    for (int i = 0; i < nlines; i++) {
        pbuf line = {0};
        pb_put_uint(&line, 1, function_ids[i]);
        pb_put_uint(&line, 2, (uint64_t)(10 + i));
        pb_put_msg(&m, 4, &line);
        pbuf_free(&line);
    }
    pb_put_msg(&sp->body, 4, &m);
    pbuf_free(&m);
}

/* Location ids leaf first; values packed (as Go writes them). */
static inline void sp_sample(synth_profile *sp, const uint64_t *locs, int nlocs,
                             const int64_t *values, int nvalues)
{
    pbuf m = {0}, packed = {0};
    for (int i = 0; i < nlocs; i++)
        pb_put_varint(&packed, locs[i]);
    pb_put_bytes(&m, 1, packed.data, packed.len);
    packed.len = 0;
    for (int i = 0; i < nvalues; i++)
        pb_put_varint(&packed, (uint64_t)values[i]);
    pb_put_bytes(&m, 2, packed.data, packed.len);
    pb_put_msg(&sp->body, 2, &m);
    pbuf_free(&m);
    pbuf_free(&packed);
}

/* The finished protobuf: the body, then the string table (protobuf fields
 * may come in any order, and putting the table last checks that readers
 * resolve indexes after reading everything). */
static inline pbuf sp_finish(synth_profile *sp)
{
    pbuf out = {0};
    pbuf_raw(&out, sp->body.data, sp->body.len);
    for (int i = 0; i < sp->nstrings; i++)
        pb_put_bytes(&out, 6, sp->strings[i], strlen(sp->strings[i]));
    pbuf_free(&sp->body);
    return out;
}

#endif /* MPROF_TEST_CLI_PB_ENCODE_H */
