/*
 * Unit tests of the mprof CLI's pure parts: the protobuf/gzip reader (every
 * rejection path has a test: a reader of untrusted files is only as good as
 * its error handling), unit formatting, sample-index choice, frame dropping
 * and the flat/cum accounting.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "cli_pb_encode.h"
#include "../lib/check.h"
#include "cli/profile_reader.h"
#include "cli/timeline.h"
#include "cli/top_report.h"
#include "cli/units.h"

/* Parses data and checks that it fails with a message containing want. */
static void expect_parse_error(const pbuf *data, const char *want, int line)
{
    char err[512] = "";
    pp_profile *p = pp_profile_parse(data->p, data->len, err, sizeof(err));
    if (p != NULL) {
        FAIL_LINE(line, "parse succeeded, want error containing \"%s\"", want);
        pp_profile_free(p);
        return;
    }
    CHECK_LINE(line, strstr(err, want) != NULL, "error \"%s\" does not contain \"%s\"", err, want);
}
#define EXPECT_PARSE_ERROR(data, want) expect_parse_error((data), (want), __LINE__)

static pp_profile *parse_ok(const pbuf *data, int line)
{
    char err[512] = "";
    pp_profile *p = pp_profile_parse(data->p, data->len, err, sizeof(err));
    CHECK_LINE(line, p != NULL, "parse failed: %s", err);
    return p;
}
#define PARSE_OK(data) parse_ok((data), __LINE__)

/* A small valid profile: main -> work -> leaf, values {count, bytes}. */
static pbuf small_profile(void)
{
    synth_profile sp;
    sp_init(&sp);
    sp_sample_type(&sp, "objects", "count");
    sp_sample_type(&sp, "space", "bytes");
    sp_mapping(&sp, 1, 0x1000, 0x2000, 0, "/bin/app", 1);
    sp_function(&sp, 1, "main");
    sp_function(&sp, 2, "work");
    sp_function(&sp, 3, "leaf");
    uint64_t f1[] = {1}, f2[] = {2}, f3[] = {3};
    sp_location(&sp, 1, 1, 0x1100, f1, 1);
    sp_location(&sp, 2, 1, 0x1200, f2, 1);
    sp_location(&sp, 3, 1, 0x1300, f3, 1);
    uint64_t s1[] = {3, 2, 1}, s2[] = {2, 1};
    int64_t v1[] = {2, 2048}, v2[] = {1, 512};
    sp_sample(&sp, s1, 3, v1, 2);
    sp_sample(&sp, s2, 2, v2, 2);
    return sp_finish(&sp);
}

/* ------------------------------------------------------------- reader */

static void test_valid_profile(void)
{
    pbuf data = small_profile();
    pp_profile *p = PARSE_OK(&data);
    if (p != NULL) {
        CHECK(p->nsample_types == 2);
        CHECK_STR(p->sample_types[1].type, "space");
        CHECK_STR(p->sample_types[1].unit, "bytes");
        CHECK(p->nsamples == 2);
        CHECK(p->samples[0].nlocations == 3);
        CHECK(p->samples[0].values[1] == 2048);
        CHECK_STR(p->samples[0].locations[0]->lines[0].function->name, "leaf");
        CHECK(p->samples[0].locations[0]->mapping == &p->mappings[0]);
        CHECK_STR(p->mappings[0].filename, "/bin/app");
        CHECK(p->mappings[0].has_functions);
        CHECK_STR(p->default_sample_type, "");
        pp_profile_free(p);
    }
    mprof_bytebuf_free(&data);
}

static void test_unpacked_and_unknown_fields(void)
{
    /* Repeated integers one per tag, and fields of every wire type the
     * reader does not know (including a nested group): all must be read
     * or skipped. */
    pbuf b = {0}, m = {0};
    pb_put_uint(&m, 1, 1);
    pb_put_uint(&m, 2, 2);
    pb_put_msg(&b, 1, &m); /* sample_type {type: "a", unit: "b"} */
    mprof_bytebuf_free(&m);
    pb_put_uint(&m, 1, 1);
    pb_put_uint(&m, 2, 1);
    pb_put_msg(&b, 5, &m); /* function {id 1, name "a"} */
    mprof_bytebuf_free(&m);
    pb_put_uint(&m, 1, 7);
    pbuf line = {0};
    pb_put_uint(&line, 1, 1);
    pb_put_msg(&m, 4, &line);
    mprof_bytebuf_free(&line);
    pb_put_msg(&b, 4, &m); /* location {id 7, line {function 1}} */
    mprof_bytebuf_free(&m);
    pb_put_uint(&m, 1, 7);  /* location_id, unpacked */
    pb_put_uint(&m, 2, 42); /* value, unpacked */
    mprof_wire_tag(&m, 9, 1);   /* unknown fixed64 */
    mprof_bytebuf_append(&m, "12345678", 8);
    mprof_wire_tag(&m, 10, 5); /* unknown fixed32 */
    mprof_bytebuf_append(&m, "1234", 4);
    pb_put_msg(&b, 2, &m);
    mprof_bytebuf_free(&m);
    pb_put_uint(&b, 100, 5);                /* unknown varint */
    mprof_wire_bytes(&b, 101, "skip me", 7);    /* unknown bytes */
    mprof_wire_tag(&b, 102, 3);                 /* group { */
    pb_put_uint(&b, 1, 1);                  /*   varint */
    mprof_wire_tag(&b, 103, 3);                 /*   group { */
    mprof_wire_tag(&b, 103, 4);                 /*   } */
    mprof_wire_tag(&b, 102, 4);                 /* } */
    mprof_wire_bytes(&b, 6, "", 0);
    mprof_wire_bytes(&b, 6, "a", 1);
    mprof_wire_bytes(&b, 6, "b", 1);
    pp_profile *p = PARSE_OK(&b);
    if (p != NULL) {
        CHECK(p->nsamples == 1);
        CHECK(p->samples[0].nlocations == 1);
        CHECK(p->samples[0].values[0] == 42);
        CHECK(p->samples[0].locations[0]->id == 7);
        pp_profile_free(p);
    }
    mprof_bytebuf_free(&b);
}

static void test_malformed(void)
{
    pbuf b = {0};

    /* Truncated varint (time_nanos): a continuation bit on the last byte. */
    mprof_bytebuf_append(&b, "\x48\x80", 2);
    EXPECT_PARSE_ERROR(&b, "truncated varint");
    mprof_bytebuf_free(&b);

    /* A varint of 11 bytes. */
    mprof_bytebuf_append(&b, "\x48\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12);
    EXPECT_PARSE_ERROR(&b, "overflows 64 bits");
    mprof_bytebuf_free(&b);

    /* Length prefix past the end. */
    mprof_wire_tag(&b, 6, 2);
    mprof_bytebuf_varint(&b, 200);
    mprof_bytebuf_append(&b, "\x01\x02\x03", 3);
    EXPECT_PARSE_ERROR(&b, "runs past the end");
    mprof_bytebuf_free(&b);

    /* Text is called text. */
    mprof_bytebuf_append(&b, "heap profile: 1: 2 [3: 4] @ heap/1048576\n", 41);
    EXPECT_PARSE_ERROR(&b, "this is text");
    mprof_bytebuf_free(&b);

    /* Invalid wire type 7 on a known and an unknown field, and field
     * number 0. */
    mprof_bytebuf_append(&b, "\x0f", 1);
    EXPECT_PARSE_ERROR(&b, "invalid wire type 7");
    mprof_bytebuf_free(&b);
    mprof_bytebuf_append(&b, "\xff\x01", 2);
    EXPECT_PARSE_ERROR(&b, "invalid wire type 7");
    mprof_bytebuf_free(&b);
    mprof_bytebuf_append(&b, "\x00\x00", 2);
    EXPECT_PARSE_ERROR(&b, "invalid field number 0");
    mprof_bytebuf_free(&b);

    /* A known field with the wrong wire type: sample as a varint. */
    pb_put_uint(&b, 2, 1);
    EXPECT_PARSE_ERROR(&b, "Profile.sample has wire type varint");
    mprof_bytebuf_free(&b);

    /* An unclosed group, and an end-group that matches nothing. */
    mprof_wire_tag(&b, 50, 3);
    pb_put_uint(&b, 1, 1);
    EXPECT_PARSE_ERROR(&b, "not closed");
    mprof_bytebuf_free(&b);
    mprof_wire_tag(&b, 50, 4);
    EXPECT_PARSE_ERROR(&b, "unmatched end of group");
    mprof_bytebuf_free(&b);

    /* No string table at all, and a first string that is not empty. */
    pb_put_uint(&b, 12, 5);
    EXPECT_PARSE_ERROR(&b, "string table is empty");
    mprof_bytebuf_free(&b);
    mprof_wire_bytes(&b, 6, "x", 1);
    EXPECT_PARSE_ERROR(&b, "string_table[0]");
    mprof_bytebuf_free(&b);

    /* A string index out of range. */
    pbuf m = {0};
    pb_put_uint(&m, 1, 5);
    pb_put_msg(&b, 1, &m);
    mprof_bytebuf_free(&m);
    mprof_wire_bytes(&b, 6, "", 0);
    EXPECT_PARSE_ERROR(&b, "string index 5 is out of range");
    mprof_bytebuf_free(&b);

    /* A negative string index (int64 -1 as a 10-byte varint). */
    pb_put_uint(&b, 14, (uint64_t)-1);
    mprof_wire_bytes(&b, 6, "", 0);
    EXPECT_PARSE_ERROR(&b, "string index -1");
    mprof_bytebuf_free(&b);

    /* time_nanos twice: two profiles concatenated. */
    pb_put_uint(&b, 9, 1);
    pb_put_uint(&b, 9, 2);
    mprof_wire_bytes(&b, 6, "", 0);
    EXPECT_PARSE_ERROR(&b, "concatenated");
    mprof_bytebuf_free(&b);
}

static void test_broken_references(void)
{
    synth_profile sp;
    uint64_t f1[] = {1}, f9[] = {9};
    uint64_t loc1[] = {1}, loc5[] = {5};
    int64_t v1[] = {1}, v2[] = {1, 2};

    /* Sample refers to a missing location. */
    sp_init(&sp);
    sp_sample_type(&sp, "t", "count");
    sp_function(&sp, 1, "f");
    sp_location(&sp, 1, 0, 0x10, f1, 1);
    sp_sample(&sp, loc5, 1, v1, 1);
    pbuf b = sp_finish(&sp);
    EXPECT_PARSE_ERROR(&b, "refers to location 5");
    mprof_bytebuf_free(&b);

    /* Line refers to a missing function. */
    sp_init(&sp);
    sp_sample_type(&sp, "t", "count");
    sp_location(&sp, 1, 0, 0x10, f9, 1);
    sp_sample(&sp, loc1, 1, v1, 1);
    b = sp_finish(&sp);
    EXPECT_PARSE_ERROR(&b, "function 9");
    mprof_bytebuf_free(&b);

    /* Location refers to a missing mapping. */
    sp_init(&sp);
    sp_sample_type(&sp, "t", "count");
    sp_function(&sp, 1, "f");
    sp_location(&sp, 1, 3, 0x10, f1, 1);
    b = sp_finish(&sp);
    EXPECT_PARSE_ERROR(&b, "mapping 3");
    mprof_bytebuf_free(&b);

    /* Duplicate and zero ids. */
    sp_init(&sp);
    sp_function(&sp, 1, "f");
    sp_function(&sp, 1, "g");
    b = sp_finish(&sp);
    EXPECT_PARSE_ERROR(&b, "same id 1");
    mprof_bytebuf_free(&b);
    sp_init(&sp);
    sp_function(&sp, 0, "f");
    b = sp_finish(&sp);
    EXPECT_PARSE_ERROR(&b, "id 0");
    mprof_bytebuf_free(&b);

    /* Sample value count differs from the number of sample types. */
    sp_init(&sp);
    sp_sample_type(&sp, "t", "count");
    sp_sample(&sp, NULL, 0, v2, 2);
    b = sp_finish(&sp);
    EXPECT_PARSE_ERROR(&b, "has 2 values");
    mprof_bytebuf_free(&b);

    /* Samples without sample types. */
    sp_init(&sp);
    sp_sample(&sp, NULL, 0, NULL, 0);
    b = sp_finish(&sp);
    EXPECT_PARSE_ERROR(&b, "no sample types");
    mprof_bytebuf_free(&b);
}

static pbuf gzip_bytes(const pbuf *in)
{
    pbuf out = {0};
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        abort();
    mprof_bytebuf_reserve(&out, deflateBound(&zs, in->len) + 64);
    zs.next_in = in->p;
    zs.avail_in = (uInt)in->len;
    zs.next_out = out.p;
    zs.avail_out = (uInt)out.cap;
    if (deflate(&zs, Z_FINISH) != Z_STREAM_END)
        abort();
    out.len = zs.total_out;
    deflateEnd(&zs);
    return out;
}

static void test_gzip(void)
{
    pbuf raw = small_profile();
    pbuf gz = gzip_bytes(&raw);
    pp_profile *p = PARSE_OK(&gz);
    CHECK(p != NULL && p->nsamples == 2);
    pp_profile_free(p);

    /* Two gzip members read as one stream, as gzip(1) and Go do: the
     * protobuf split in two halves. */
    pbuf first = {0}, second = {0};
    mprof_bytebuf_append(&first, raw.p, raw.len / 2);
    mprof_bytebuf_append(&second, raw.p + raw.len / 2, raw.len - raw.len / 2);
    pbuf gz1 = gzip_bytes(&first), gz2 = gzip_bytes(&second), both = {0};
    mprof_bytebuf_append(&both, gz1.p, gz1.len);
    mprof_bytebuf_append(&both, gz2.p, gz2.len);
    p = PARSE_OK(&both);
    CHECK(p != NULL && p->nsamples == 2);
    pp_profile_free(p);

    /* Every truncation of the gzip stream fails cleanly. */
    for (size_t len = 1; len < gz.len; len++) {
        pbuf cut = {0};
        mprof_bytebuf_append(&cut, gz.p, len);
        char err[256];
        pp_profile *q = pp_profile_parse(cut.p, cut.len, err, sizeof(err));
        CHECK(q == NULL);
        pp_profile_free(q);
        mprof_bytebuf_free(&cut);
    }
    pbuf cut = {0};
    mprof_bytebuf_append(&cut, gz.p, gz.len - 10);
    EXPECT_PARSE_ERROR(&cut, "truncated gzip");
    mprof_bytebuf_free(&cut);

    /* A flipped bit in the CRC, and garbage after the stream. */
    pbuf bad = {0};
    mprof_bytebuf_append(&bad, gz.p, gz.len);
    bad.p[bad.len - 6] ^= 1;
    EXPECT_PARSE_ERROR(&bad, "corrupt gzip");
    mprof_bytebuf_free(&bad);
    mprof_bytebuf_append(&bad, gz.p, gz.len);
    mprof_bytebuf_append(&bad, "junk", 4);
    EXPECT_PARSE_ERROR(&bad, "after the end of the gzip stream");
    mprof_bytebuf_free(&bad);

    /* Empty input. */
    EXPECT_PARSE_ERROR(&bad, "empty");

    mprof_bytebuf_free(&raw);
    mprof_bytebuf_free(&gz);
    mprof_bytebuf_free(&first);
    mprof_bytebuf_free(&second);
    mprof_bytebuf_free(&gz1);
    mprof_bytebuf_free(&gz2);
    mprof_bytebuf_free(&both);
}

static void test_truncations_never_crash(void)
{
    /* Every prefix and every single-byte corruption of a valid profile
     * either parses or fails with a message; under ASan this also proves
     * no read goes out of bounds. */
    pbuf raw = small_profile();
    for (size_t len = 0; len < raw.len; len++) {
        char err[256] = "";
        pp_profile *p = pp_profile_parse(raw.p, len, err, sizeof(err));
        CHECK(p != NULL || err[0] != '\0');
        pp_profile_free(p);
    }
    for (size_t i = 0; i < raw.len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            raw.p[i] ^= (uint8_t)(1 << bit);
            char err[256] = "";
            pp_profile *p = pp_profile_parse(raw.p, raw.len, err, sizeof(err));
            CHECK(p != NULL || err[0] != '\0');
            if (p != NULL) {
                /* Whatever parsed must also be reportable. */
                size_t index;
                char e2[256];
                if (top_find_sample_index(p, NULL, &index, e2, sizeof(e2)) == TOP_INDEX_OK) {
                    top_options o = {index, false, 0, TOP_DEFAULT_NODE_FRACTION,
                                     TOP_DEFAULT_EDGE_FRACTION};
                    top_report r;
                    CHECK(top_report_build(p, &o, &r) == 0);
                    top_report_free(&r);
                }
            }
            pp_profile_free(p);
            raw.p[i] ^= (uint8_t)(1 << bit);
        }
    }
    mprof_bytebuf_free(&raw);
}

/* -------------------------------------------------------------- units */

static const char *label(int64_t v, const char *from, const char *to)
{
    static char buf[8][64];
    static int next;
    char *b = buf[next++ % 8];
    units_label(b, 64, v, from, to);
    return b;
}

static const char *output_unit(int64_t min, int64_t total, const char *unit)
{
    static char buf[UNITS_NAME_MAX];
    units_select_output(min, total, unit, buf);
    return buf;
}

static const char *percent(int64_t v, int64_t total)
{
    static char buf[4][32];
    static int next;
    char *b = buf[next++ % 4];
    units_percentage(b, 32, v, total);
    return b;
}

static void test_units(void)
{
    CHECK_STR(label(1572864, "bytes", "MB"), "1.50MB");
    CHECK_STR(label(1572864, "bytes", "minimum"), "1.50MB");
    CHECK_STR(label(512 * 1024, "bytes", "minimum"), "512kB");
    CHECK_STR(label(1000, "bytes", "minimum"), "1000B");
    CHECK_STR(label(96, "bytes", "kB"), "0.09kB");
    CHECK_STR(label(0, "bytes", "MB"), "0");
    CHECK_STR(label(3LL << 30, "Bytes", "auto"), "3GB");
    CHECK_STR(label(-1536, "bytes", "kB"), "-1.50kB");
    CHECK_STR(label(10000000, "nanoseconds", "minimum"), "10ms");
    CHECK_STR(label(10000000, "nanoseconds", "s"), "0.01s");
    CHECK_STR(label(7200LL * 1000000000, "nanoseconds", "auto"), "2hrs");
    CHECK_STR(label(1500, "microseconds", "ms"), "1.50ms");
    CHECK_STR(label(2, "seconds", "ms"), "2000ms");
    CHECK_STR(label(12345, "count", "count"), "12345");
    CHECK_STR(label(7, "widgets", "widgets"), "7widgets");
    CHECK_STR(label(7, "count", "minimum"), "7");

    /* One unit for the whole report. */
    CHECK_STR(output_unit(10000000, 2000000000, "nanoseconds"), "s");    /* 0.01s .. 2s */
    CHECK_STR(output_unit(10000000, 500000000, "nanoseconds"), "ms");    /* 10ms .. 500ms */
    CHECK_STR(output_unit(96, 2600000, "bytes"), "kB");                  /* 0.09kB .. */
    CHECK_STR(output_unit(512 * 1024, 1536 * 1024, "bytes"), "kB");
    CHECK_STR(output_unit(5, 100, "count"), "count");
    CHECK_STR(output_unit(0, 100, "bytes"), "minimum");

    CHECK_STR(percent(1, 1), "  100%");
    CHECK_STR(percent(5361, 10000), "53.61%");
    CHECK_STR(percent(53, 1000), " 5.30%");
    CHECK_STR(percent(12, 10000), " 0.12%");
    CHECK_STR(percent(0, 10), "    0%");
    CHECK_STR(percent(5, 0), "    0%");
    CHECK_STR(percent(-1, 4), "25.00%");
}

/* ------------------------------------------------------------- report */

static void test_sample_index(void)
{
    pbuf data = small_profile();
    pp_profile *p = PARSE_OK(&data);
    if (p == NULL)
        return;
    size_t i = 99;
    char err[256];
    CHECK(top_find_sample_index(p, NULL, &i, err, sizeof(err)) == TOP_INDEX_OK && i == 1);
    CHECK(top_find_sample_index(p, "objects", &i, err, sizeof(err)) == TOP_INDEX_OK && i == 0);
    CHECK(top_find_sample_index(p, "inuse_space", &i, err, sizeof(err)) == TOP_INDEX_OK && i == 1);
    CHECK(top_find_sample_index(p, "0", &i, err, sizeof(err)) == TOP_INDEX_OK && i == 0);
    CHECK(top_find_sample_index(p, "2", &i, err, sizeof(err)) == TOP_INDEX_UNKNOWN);
    CHECK(top_find_sample_index(p, "cpu", &i, err, sizeof(err)) == TOP_INDEX_UNKNOWN);
    CHECK(strstr(err, "objects, space") != NULL);
    p->default_sample_type = "objects";
    CHECK(top_find_sample_index(p, NULL, &i, err, sizeof(err)) == TOP_INDEX_OK && i == 0);
    p->default_sample_type = "no-such-type"; /* falls back to the last */
    CHECK(top_find_sample_index(p, "", &i, err, sizeof(err)) == TOP_INDEX_OK && i == 1);
    p->nsample_types = 0;
    CHECK(top_find_sample_index(p, NULL, &i, err, sizeof(err)) == TOP_INDEX_NO_TYPES);
    pp_profile_free(p);
    mprof_bytebuf_free(&data);
}

static const top_row *find_row(const top_report *r, const char *name)
{
    for (size_t i = 0; i < r->nrows; i++)
        if (strcmp(r->rows[i].name, name) == 0)
            return &r->rows[i];
    return NULL;
}

static void test_flat_cum(void)
{
    /* main -> rec -> rec -> rec(inlined into rec) -> leaf; plus an
     * unsymbolized frame in a library. */
    synth_profile sp;
    sp_init(&sp);
    sp_sample_type(&sp, "samples", "count");
    sp_mapping(&sp, 1, 0x1000, 0x9000, 0, "/bin/app", 1);
    sp_mapping(&sp, 2, 0x7f0000, 0x800000, 0x2000, "/usr/lib/libfoo.so.1", 0);
    sp_function(&sp, 1, "main");
    sp_function(&sp, 2, "rec");
    sp_function(&sp, 3, "leaf");
    uint64_t f_main[] = {1}, f_rec[] = {2}, f_rec2[] = {2, 2}, f_leaf[] = {3};
    sp_location(&sp, 1, 1, 0x1100, f_main, 1);
    sp_location(&sp, 2, 1, 0x1200, f_rec, 1);
    sp_location(&sp, 3, 1, 0x1300, f_rec2, 2);
    sp_location(&sp, 4, 1, 0x1400, f_leaf, 1);
    sp_location(&sp, 5, 2, 0x7f0010, NULL, 0);
    uint64_t s1[] = {4, 3, 2, 1}, s2[] = {5, 2, 1}, s3[] = {1};
    int64_t v1[] = {10}, v2[] = {5}, v3[] = {1};
    sp_sample(&sp, s1, 4, v1, 1);
    sp_sample(&sp, s2, 3, v2, 1);
    sp_sample(&sp, s3, 1, v3, 1);
    pbuf data = sp_finish(&sp);
    pp_profile *p = PARSE_OK(&data);
    mprof_bytebuf_free(&data);
    if (p == NULL)
        return;
    top_options o = {0, false, 0, TOP_DEFAULT_NODE_FRACTION, TOP_DEFAULT_EDGE_FRACTION};
    top_report r;
    CHECK(top_report_build(p, &o, &r) == 0);
    CHECK(r.total == 16);
    CHECK(r.nrows == 4);
    const top_row *rec = find_row(&r, "rec"), *leaf = find_row(&r, "leaf"),
                  *lib = find_row(&r, "[libfoo.so.1]"), *main_row = find_row(&r, "main");
    CHECK(rec != NULL && rec->flat == 0 && rec->cum == 15); /* once per sample */
    CHECK(leaf != NULL && leaf->flat == 10 && leaf->cum == 10);
    CHECK(lib != NULL && lib->flat == 5);
    CHECK(main_row != NULL && main_row->flat == 1 && main_row->cum == 16);
    CHECK(r.nrows > 0 && strcmp(r.rows[0].name, "leaf") == 0); /* flat order */
    CHECK(r.shown_flat == 16);
    /* rec inlined into itself is a self-call, not an inlined caller: the
     * only caller that counts is main, which does not inline it. */
    CHECK(rec != NULL && strcmp(rec->inline_label, "") == 0);
    top_report_free(&r);

    /* Cum order and a row limit. */
    o.cum_sort = true;
    o.node_count = 2;
    CHECK(top_report_build(p, &o, &r) == 0);
    CHECK(r.nrows == 2 && r.candidate_nodes == 4);
    CHECK(r.nrows == 2 && strcmp(r.rows[0].name, "main") == 0 &&
          strcmp(r.rows[1].name, "rec") == 0);
    top_report_free(&r);
    pp_profile_free(p);
}

static void test_drop_frames(void)
{
    synth_profile sp;
    sp_init(&sp);
    sp_sample_type(&sp, "space", "bytes");
    sp_function(&sp, 1, "main");
    sp_function(&sp, 2, "operator new(unsigned long)");
    sp_function(&sp, 3, "std::vector<int>::push(int const&)");
    sp_function(&sp, 4, "malloc");
    uint64_t f_main[] = {1}, f_new[] = {2}, f_push[] = {3}, f_malloc_in_push[] = {4, 3};
    sp_location(&sp, 1, 0, 0x100, f_main, 1);
    sp_location(&sp, 2, 0, 0x200, f_new, 1);
    sp_location(&sp, 3, 0, 0x300, f_push, 1);
    sp_location(&sp, 4, 0, 0x400, f_malloc_in_push, 2);
    uint64_t s1[] = {2, 3, 1}, s2[] = {4, 1}, s3[] = {2};
    int64_t v1[] = {100}, v2[] = {10}, v3[] = {1};
    sp_sample(&sp, s1, 3, v1, 1);
    sp_sample(&sp, s2, 2, v2, 1);
    sp_sample(&sp, s3, 1, v3, 1);
    pb_put_uint(&sp.body, 7, sp_str(&sp, "malloc|operator new"));
    pbuf data = sp_finish(&sp);
    pp_profile *p = PARSE_OK(&data);
    mprof_bytebuf_free(&data);
    if (p == NULL)
        return;
    char warning[256];
    CHECK(top_simplify_function_names(p) == 0);
    CHECK_STR(p->functions[2].name, "std::vector::push");
    CHECK(top_prune_uninteresting(p, warning, sizeof(warning)) == 0);
    CHECK(p->samples[0].nlocations == 2); /* operator new gone */
    CHECK(p->samples[1].nlocations == 2 && p->locations[3].nlines == 1); /* inlined malloc gone */
    CHECK(p->samples[2].nlocations == 1); /* nothing but dropped frames: kept */
    top_options o = {0, false, 0, 0, 0};
    top_report r;
    CHECK(top_report_build(p, &o, &r) == 0);
    const top_row *push = find_row(&r, "std::vector::push");
    CHECK(push != NULL && push->flat == 110);
    CHECK(find_row(&r, "malloc") == NULL);
    top_report_free(&r);
    pp_profile_free(p);

    /* An expression POSIX cannot compile leaves the profile untouched. */
    sp_init(&sp);
    sp_sample_type(&sp, "space", "bytes");
    pb_put_uint(&sp.body, 7, sp_str(&sp, "a(b"));
    data = sp_finish(&sp);
    p = PARSE_OK(&data);
    mprof_bytebuf_free(&data);
    if (p != NULL) {
        CHECK(top_prune_uninteresting(p, warning, sizeof(warning)) == -1);
        CHECK(strstr(warning, "a(b") != NULL);
        pp_profile_free(p);
    }
}

/* timeline_find (cli/timeline.h) on a profile with one comment. */
static int find_timeline(const char *comment, timeline *t, char *err, size_t errlen)
{
    const char *comments[2] = {"a comment for people", comment};
    pp_profile p = {.comments = comments, .ncomments = 2};
    return timeline_find(&p, t, err, errlen);
}

static void test_timeline(void)
{
    timeline t;
    char err[512];
    CHECK(find_timeline("no timeline here", &t, err, sizeof err) == 0);
    CHECK(find_timeline("#mprof-timeline v1 t0=5 every=10 n=3 0,100,1,100 10,300,3,400 "
                        "25,200,2,600",
                        &t, err, sizeof err) == 1);
    CHECK(t.npoints == 3 && t.t0_unix_ns == 5 && t.every_ns == 10);
    CHECK(t.points[1].inuse_bytes == 300 && t.points[2].t_ms == 25 && t.points[2].alloc_bytes == 600);
    CHECK(timeline_peak(&t) == 1);
    timeline_free(&t);
    CHECK(find_timeline("#mprof-timeline v1 t0=5 every=10 n=0", &t, err, sizeof err) == 1);
    CHECK(t.npoints == 0);
    timeline_free(&t);
    /* Hostile: every one refused with a message, none read half. */
    static const char *const bad[] = {
        "#mprof-timeline v1 t0=5 every=10",                       /* no n */
        "#mprof-timeline v1 t0=5 every=10 n=2 0,1,1,1",           /* fewer points */
        "#mprof-timeline v1 t0=5 every=10 n=1 0,1,1,1 5,1,1,1",   /* more points */
        "#mprof-timeline v1 t0=5 every=10 n=2 10,1,1,1 5,1,1,1",  /* time goes back */
        "#mprof-timeline v1 t0=5 every=10 n=1 0,1,1",             /* three numbers */
        "#mprof-timeline v1 t0=5 every=10 n=1 0,1,x,1",           /* not a number */
        "#mprof-timeline v1 t0=5 every=10 n=1 0,99999999999999999999,1,1", /* overflow */
        "#mprof-timeline v1 t0=5 every=10 n=99999999 0,1,1,1",    /* too many */
        "#mprof-timeline v1 t0=5 every=10 n=-1",                  /* negative */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        CHECK(find_timeline(bad[i], &t, err, sizeof err) == -1);
        CHECK(err[0] != '\0' && t.points == NULL);
    }
}

int main(void)
{
    test_valid_profile();
    test_unpacked_and_unknown_fields();
    test_malformed();
    test_broken_references();
    test_gzip();
    test_truncations_never_crash();
    test_units();
    test_sample_index();
    test_flat_cum();
    test_drop_frames();
    test_timeline();
    return check_result("cli_unit_tests");
}
