/*
 * The pprof writer of the CLI (profile_writer.h).  Everything but the
 * string table goes into one buffer as it is met, interning each string;
 * the string table follows at the end (protobuf fields may come in any
 * order, and every pprof reader resolves indexes after the whole message
 * is read).
 */
#include "cli/profile_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "shared/bytebuf.h"
#include "shared/hash.h"
#include "shared/hash_index.h"
#include "shared/pprof_fields.h"

typedef struct writer {
    const pp_profile *p;
    mprof_bytebuf out, msg, sub;
    /* The string table: strings[0] is "", each string once. */
    const char **strings;
    uint32_t nstrings, strings_cap;
    mprof_index string_index;
    bool oom;
} writer;

static int string_eq(const void *ctx, uint32_t idx, const void *key)
{
    return strcmp(((const writer *)ctx)->strings[idx], (const char *)key) == 0;
}

/* The index of s in the string table, adding it. */
static uint64_t intern(writer *w, const char *s)
{
    if (s == NULL || s[0] == '\0')
        return 0;
    uint32_t h = (uint32_t)mprof_mix64(mprof_fnv1a_str(s));
    mprof_index_slot *slot = mprof_index_find(&w->string_index, h, string_eq, w, s);
    if (slot != NULL && slot->idx1 != 0)
        return slot->idx1 - 1;
    if (slot == NULL || MPROF_GROW(w->strings, w->strings_cap, (uint64_t)w->nstrings + 1) != 0) {
        w->oom = true;
        return 0;
    }
    w->strings[w->nstrings] = s;
    mprof_index_added(&w->string_index, slot, w->nstrings);
    return w->nstrings++;
}

static void put_value_type(writer *w, mprof_bytebuf *into, int field, const pp_value_type *vt)
{
    mprof_wire_uint(&w->sub, VALUE_TYPE_TYPE, intern(w, vt->type));
    mprof_wire_uint(&w->sub, VALUE_TYPE_UNIT, intern(w, vt->unit));
    mprof_wire_message(into, field, &w->sub);
}

static void put_sample(writer *w, const pp_sample *s)
{
    const pp_profile *p = w->p;
    mprof_bytebuf *m = &w->msg, *sub = &w->sub;
    for (size_t k = 0; k < s->nlocations; k++)
        mprof_bytebuf_varint(sub, (uint64_t)(s->locations[k] - p->locations) + 1);
    if (s->nlocations > 0)
        mprof_wire_message(m, SAMPLE_LOCATION_ID, sub);
    mprof_wire_packed_u64(m, SAMPLE_VALUE, (const uint64_t *)s->values, p->nsample_types);
    for (size_t k = 0; k < s->nlabels; k++) {
        const pp_label *l = &s->labels[k];
        mprof_wire_uint(sub, LABEL_KEY, intern(w, l->key));
        if (l->str != NULL) {
            mprof_wire_uint(sub, LABEL_STR, intern(w, l->str));
        } else {
            mprof_wire_uint(sub, LABEL_NUM, (uint64_t)l->num);
            mprof_wire_uint(sub, LABEL_NUM_UNIT, intern(w, l->num_unit));
        }
        mprof_wire_message(m, SAMPLE_LABEL, sub);
    }
    mprof_wire_message(&w->out, PROFILE_SAMPLE, m);
}

static void put_mapping(writer *w, size_t i)
{
    const pp_mapping *mp = &w->p->mappings[i];
    mprof_bytebuf *m = &w->msg;
    mprof_wire_uint(m, MAPPING_ID, i + 1);
    mprof_wire_uint(m, MAPPING_MEMORY_START, mp->memory_start);
    mprof_wire_uint(m, MAPPING_MEMORY_LIMIT, mp->memory_limit);
    mprof_wire_uint(m, MAPPING_FILE_OFFSET, mp->file_offset);
    mprof_wire_uint(m, MAPPING_FILENAME, intern(w, mp->filename));
    mprof_wire_uint(m, MAPPING_BUILD_ID, intern(w, mp->build_id));
    mprof_wire_uint(m, MAPPING_HAS_FUNCTIONS, mp->has_functions);
    mprof_wire_uint(m, MAPPING_HAS_FILENAMES, mp->has_filenames);
    mprof_wire_uint(m, MAPPING_HAS_LINE_NUMBERS, mp->has_line_numbers);
    mprof_wire_uint(m, MAPPING_HAS_INLINE_FRAMES, mp->has_inline_frames);
    mprof_wire_message(&w->out, PROFILE_MAPPING, m);
}

static void put_location(writer *w, size_t i)
{
    const pp_profile *p = w->p;
    const pp_location *loc = &p->locations[i];
    mprof_bytebuf *m = &w->msg, *sub = &w->sub;
    mprof_wire_uint(m, LOCATION_ID, i + 1);
    if (loc->mapping != NULL)
        mprof_wire_uint(m, LOCATION_MAPPING_ID, (uint64_t)(loc->mapping - p->mappings) + 1);
    mprof_wire_uint(m, LOCATION_ADDRESS, loc->address);
    for (size_t k = 0; k < loc->nlines; k++) {
        const pp_line *ln = &loc->lines[k];
        mprof_wire_uint(sub, LINE_FUNCTION_ID, (uint64_t)(ln->function - p->functions) + 1);
        mprof_wire_uint(sub, LINE_LINE, (uint64_t)ln->line);
        mprof_wire_uint(sub, LINE_COLUMN, (uint64_t)ln->column);
        mprof_wire_message(m, LOCATION_LINE, sub);
    }
    mprof_wire_uint(m, LOCATION_IS_FOLDED, loc->is_folded);
    mprof_wire_message(&w->out, PROFILE_LOCATION, m);
}

static void put_function(writer *w, size_t i)
{
    const pp_function *f = &w->p->functions[i];
    mprof_bytebuf *m = &w->msg;
    mprof_wire_uint(m, FUNCTION_ID, i + 1);
    mprof_wire_uint(m, FUNCTION_NAME, intern(w, f->name));
    mprof_wire_uint(m, FUNCTION_SYSTEM_NAME, intern(w, f->system_name));
    mprof_wire_uint(m, FUNCTION_FILENAME, intern(w, f->filename));
    mprof_wire_uint(m, FUNCTION_START_LINE, (uint64_t)f->start_line);
    mprof_wire_message(&w->out, PROFILE_FUNCTION, m);
}

int pp_profile_encode(const pp_profile *p, uint8_t **out, size_t *outlen, char *err,
                      size_t errlen)
{
    writer w;
    memset(&w, 0, sizeof w);
    w.p = p;
    int rc = -1;
    /* strings[0] is "", which intern never looks up (it answers 0). */
    if (MPROF_GROW(w.strings, w.strings_cap, 1) != 0)
        goto out;
    w.strings[w.nstrings++] = "";

    for (size_t i = 0; i < p->nsample_types; i++)
        put_value_type(&w, &w.out, PROFILE_SAMPLE_TYPE, &p->sample_types[i]);
    for (size_t i = 0; i < p->nsamples; i++)
        put_sample(&w, &p->samples[i]);
    for (size_t i = 0; i < p->nmappings; i++)
        put_mapping(&w, i);
    for (size_t i = 0; i < p->nlocations; i++)
        put_location(&w, i);
    for (size_t i = 0; i < p->nfunctions; i++)
        put_function(&w, i);
    mprof_wire_uint(&w.out, PROFILE_DROP_FRAMES, intern(&w, p->drop_frames));
    mprof_wire_uint(&w.out, PROFILE_KEEP_FRAMES, intern(&w, p->keep_frames));
    mprof_wire_uint(&w.out, PROFILE_TIME_NANOS, (uint64_t)p->time_nanos);
    mprof_wire_uint(&w.out, PROFILE_DURATION_NANOS, (uint64_t)p->duration_nanos);
    if (p->period_type.type[0] != '\0' || p->period_type.unit[0] != '\0')
        put_value_type(&w, &w.out, PROFILE_PERIOD_TYPE, &p->period_type);
    mprof_wire_uint(&w.out, PROFILE_PERIOD, (uint64_t)p->period);
    for (size_t i = 0; i < p->ncomments; i++)
        mprof_wire_uint(&w.out, PROFILE_COMMENT, intern(&w, p->comments[i]));
    mprof_wire_uint(&w.out, PROFILE_DEFAULT_SAMPLE_TYPE, intern(&w, p->default_sample_type));
    for (uint32_t i = 0; i < w.nstrings; i++)
        mprof_wire_string(&w.out, PROFILE_STRING_TABLE, w.strings[i]);
    if (w.oom || w.out.oom || w.msg.oom || w.sub.oom)
        goto out;
    if (pp_gzip(w.out.p, w.out.len, out, outlen) != 0)
        goto out;
    rc = 0;
out:
    if (rc != 0)
        snprintf(err, errlen, "out of memory while encoding the profile");
    mprof_bytebuf_free(&w.out);
    mprof_bytebuf_free(&w.msg);
    mprof_bytebuf_free(&w.sub);
    free(w.strings);
    mprof_index_free(&w.string_index);
    return rc;
}

int pp_gzip(const uint8_t *in, size_t inlen, uint8_t **out, size_t *outlen)
{
    if (inlen > UINT32_MAX)
        return -1; /* zlib counts in 32 bits */
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
        Z_OK)
        return -1;
    size_t cap = deflateBound(&z, (uLong)inlen) + 64;
    uint8_t *buf = malloc(cap);
    if (buf == NULL) {
        deflateEnd(&z);
        return -1;
    }
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)inlen;
    z.next_out = buf;
    z.avail_out = (uInt)cap;
    int rc = deflate(&z, Z_FINISH);
    *outlen = cap - z.avail_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(buf);
        return -1;
    }
    *out = buf;
    return 0;
}

int pp_write_output(const char *path, const uint8_t *buf, size_t len, char *err, size_t errlen)
{
    if (strcmp(path, "-") == 0) {
        if (fwrite(buf, 1, len, stdout) != len || fflush(stdout) != 0) {
            snprintf(err, errlen, "cannot write the profile to standard output: %s",
                     strerror(errno));
            return -1;
        }
        return 0;
    }
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp) {
        snprintf(err, errlen, "%.200s...: file name too long; give a shorter output path", path);
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s; write to a directory you can write to",
                 tmp, strerror(errno));
        return -1;
    }
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, buf + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(n < 0 ? errno : ENOSPC));
            close(fd);
            unlink(tmp);
            return -1;
        }
        off += (size_t)n;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}
