/*
 * A minimal protobuf writer for the CLI tests: enough to build pprof
 * profiles field by field, including deliberately broken ones.  Header-only
 * so the unit tests and the synthetic-profile generator share it.
 */
#ifndef MPROF_TEST_CLI_PB_ENCODE_H
#define MPROF_TEST_CLI_PB_ENCODE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/bytebuf.h"

/* The library's own encoder (shared/bytebuf.h), under short names; only
 * pb_put_uint differs: it writes zero too, as a hand-made (or broken)
 * profile may. */
typedef mprof_bytebuf pbuf;

static inline void pb_put_uint(pbuf *b, uint32_t field, uint64_t v)
{
    mprof_wire_tag(b, (int)field, WIRE_VARINT);
    mprof_bytebuf_varint(b, v);
}

static inline void pb_put_msg(pbuf *b, uint32_t field, const pbuf *msg)
{
    mprof_wire_bytes(b, (int)field, msg->p, msg->len);
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
    mprof_bytebuf_free(&m);
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
    mprof_bytebuf_free(&m);
}

static inline void sp_function(synth_profile *sp, uint64_t id, const char *name)
{
    pbuf m = {0};
    pb_put_uint(&m, 1, id);
    pb_put_uint(&m, 2, sp_str(sp, name));
    pb_put_uint(&m, 3, sp_str(sp, name));
    pb_put_uint(&m, 4, sp_str(sp, "synthetic.c"));
    pb_put_msg(&sp->body, 5, &m);
    mprof_bytebuf_free(&m);
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
        mprof_bytebuf_free(&line);
    }
    pb_put_msg(&sp->body, 4, &m);
    mprof_bytebuf_free(&m);
}

/* Location ids leaf first; values packed (as Go writes them); then the
 * nlabels Label messages given, in that order. */
static inline void sp_sample_labelled(synth_profile *sp, const uint64_t *locs, int nlocs,
                                      const int64_t *values, int nvalues, const pbuf *labels,
                                      int nlabels)
{
    pbuf m = {0}, packed = {0};
    for (int i = 0; i < nlocs; i++)
        mprof_bytebuf_varint(&packed, locs[i]);
    mprof_wire_bytes(&m, 1, packed.p, packed.len);
    packed.len = 0;
    for (int i = 0; i < nvalues; i++)
        mprof_bytebuf_varint(&packed, (uint64_t)values[i]);
    mprof_wire_bytes(&m, 2, packed.p, packed.len);
    for (int i = 0; i < nlabels; i++)
        pb_put_msg(&m, 3, &labels[i]);
    pb_put_msg(&sp->body, 2, &m);
    mprof_bytebuf_free(&m);
    mprof_bytebuf_free(&packed);
}

static inline void sp_sample(synth_profile *sp, const uint64_t *locs, int nlocs,
                             const int64_t *values, int nvalues)
{
    sp_sample_labelled(sp, locs, nlocs, values, nvalues, NULL, 0);
}

/* The finished protobuf: the body, then the string table (protobuf fields
 * may come in any order, and putting the table last checks that readers
 * resolve indexes after reading everything). */
static inline pbuf sp_finish(synth_profile *sp)
{
    pbuf out = {0};
    mprof_bytebuf_append(&out, sp->body.p, sp->body.len);
    for (int i = 0; i < sp->nstrings; i++)
        mprof_wire_bytes(&out, 6, sp->strings[i], strlen(sp->strings[i]));
    mprof_bytebuf_free(&sp->body);
    return out;
}

#endif /* MPROF_TEST_CLI_PB_ENCODE_H */
