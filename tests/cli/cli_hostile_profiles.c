/*
 * Writes crafted profiles that attack `mprof top` rather than test its
 * arithmetic (issue 17): frame filters that glibc's regex engine cannot
 * take (a stack overflow, gigabytes, exponential backtracking), and
 * decompression and density bombs (a small file that decodes into far
 * more memory than it holds).  cli_hostile.sh runs `mprof top` on each
 * under `timeout` and `ulimit -v`; the fuzz corpus keeps small copies of
 * the filter ones (tests/fuzz/corpus/profile/).
 *
 * Usage: cli_hostile_profiles OUTDIR [MIB]
 *   MIB scales the bombs (default 1024: the 1 GiB string table of the
 *   issue); the filter profiles are always the same few hundred bytes.
 *
 * The bombs are written as gzip without compressing gigabytes: one block
 * of the repeated pattern is deflated once, ending in a full flush (which
 * makes the bytes after it independent of what came before), and then
 * repeated; the trailer's CRC comes from crc32_combine.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "cli_pb_encode.h"

static const char *outdir;

static FILE *open_out(const char *name)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", outdir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        perror(path);
        exit(1);
    }
    return f;
}

static void close_out(FILE *f, const char *name)
{
    if (ferror(f) || fclose(f) != 0) {
        fprintf(stderr, "cli_hostile_profiles: cannot write %s\n", name);
        exit(1);
    }
}

static void write_gzip(const char *name, const pbuf *data)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", outdir, name);
    gzFile f = gzopen(path, "wb9");
    if (f == NULL || gzwrite(f, data->p, (unsigned)data->len) != (int)data->len ||
        gzclose(f) != Z_OK) {
        fprintf(stderr, "cli_hostile_profiles: cannot write %s\n", path);
        exit(1);
    }
}

/* ------------------------------------------------------ frame filters */

/* A small heap-like profile whose functions include runs of 'a' (what the
 * hostile expressions backtrack over) and whose drop_frames (and, when
 * given, keep_frames) is the expression under test. */
static void filter_profile(const char *name, const char *drop, const char *keep)
{
    static char long_a[4001];
    memset(long_a, 'a', sizeof(long_a) - 1);
    synth_profile sp;
    sp_init(&sp);
    sp_sample_type(&sp, "space", "bytes");
    sp_function(&sp, 1, "main");
    sp_function(&sp, 2, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    sp_function(&sp, 3, "malloc");
    sp_function(&sp, 4, long_a);
    uint64_t f1[] = {1}, f2[] = {2}, f3[] = {3}, f4[] = {4};
    sp_location(&sp, 1, 0, 0x100, f1, 1);
    sp_location(&sp, 2, 0, 0x200, f2, 1);
    sp_location(&sp, 3, 0, 0x300, f3, 1);
    sp_location(&sp, 4, 0, 0x400, f4, 1);
    uint64_t s1[] = {3, 2, 1}, s2[] = {4, 1}, s3[] = {2, 1};
    int64_t v1[] = {1000}, v2[] = {500}, v3[] = {250};
    sp_sample(&sp, s1, 3, v1, 1);
    sp_sample(&sp, s2, 2, v2, 1);
    sp_sample(&sp, s3, 2, v3, 1);
    pb_put_uint(&sp.body, PROFILE_DROP_FRAMES, sp_str(&sp, drop));
    if (keep != NULL)
        pb_put_uint(&sp.body, PROFILE_KEEP_FRAMES, sp_str(&sp, keep));
    pbuf out = sp_finish(&sp);
    write_gzip(name, &out);
    mprof_bytebuf_free(&out);
}

/* s repeated n times, then t repeated m times, then u (a static buffer
 * per call site is enough: each profile is written before the next). */
static char *repeat3(const char *s, int n, const char *t, int m, const char *u)
{
    size_t len = strlen(s) * (size_t)n + strlen(t) * (size_t)m + strlen(u) + 1;
    char *r = malloc(len), *p = r;
    if (r == NULL)
        abort();
    for (int i = 0; i < n; i++)
        p = stpcpy(p, s);
    for (int i = 0; i < m; i++)
        p = stpcpy(p, t);
    strcpy(p, u);
    return r;
}

/* Within every limit, and still what undoes glibc: nfunctions functions
 * named by random runs of 'a' and 'b' (len bytes each; only 'a' with
 * a_only, then a number to keep the names apart), all called from main,
 * matched against drop. */
static void filter_profile_many(const char *name, const char *drop, int nfunctions, int len,
                                int a_only)
{
    static char names[2000][4097];
    synth_profile sp;
    sp_init(&sp);
    sp_sample_type(&sp, "space", "bytes");
    sp_function(&sp, 1, "main");
    uint64_t f1[] = {1};
    sp_location(&sp, 1, 0, 0x100, f1, 1);
    srand(17);
    for (int i = 0; i < nfunctions; i++) {
        for (int k = 0; k < len; k++)
            names[i][k] = a_only ? 'a' : "ab"[rand() & 1];
        names[i][len] = '\0';
        /* i % 100000: five digits, as the compiler can see (-Wformat-truncation
         * fails the sanitizer builds otherwise). */
        if (a_only)
            snprintf(names[i] + len - 5, 6, "%05u", (unsigned)i % 100000u);
        sp_function(&sp, (uint64_t)i + 2, names[i]);
        uint64_t f[] = {(uint64_t)i + 2};
        sp_location(&sp, (uint64_t)i + 2, 0, 0x1000 + 16 * (uint64_t)i, f, 1);
        uint64_t stack[] = {(uint64_t)i + 2, 1};
        int64_t v[] = {1 + i % 7};
        sp_sample(&sp, stack, 2, v, 1);
    }
    pb_put_uint(&sp.body, PROFILE_DROP_FRAMES, sp_str(&sp, drop));
    pbuf out = sp_finish(&sp);
    write_gzip(name, &out);
    mprof_bytebuf_free(&out);
}

static void filter_profiles(void)
{
    /* 20,000 nested groups: glibc's regcomp recurses once per level. */
    char *parens = repeat3("(", 20000, "a", 1, "");
    char *parens_all = repeat3(parens, 1, ")", 20000, "");
    filter_profile("regex_parens.pb.gz", parens_all, NULL);
    /* Counted repetition inside counted repetition: 32767^2 copies. */
    filter_profile("regex_repeat.pb.gz", "a{32767}{32767}", NULL);
    /* The same, spread over a sequence within the length limit. */
    char *seq = repeat3("a{1000}", 500, "", 0, "");
    filter_profile("regex_repeat_sequence.pb.gz", seq, NULL);
    /* 1,000 nested stars over a run of 'a'. */
    char *stars = repeat3("(", 1000, "a*", 1, "");
    char *stars_all = repeat3(stars, 1, ")*", 1000, "");
    filter_profile("regex_nested_star.pb.gz", stars_all, NULL);
    /* Backreferences (from \2: mprof wraps the filter in a group of its own):
     * glibc backtracks over every split of the a's. */
    filter_profile("regex_backref.pb.gz",
                   "(a*)(a*)(a*)(a*)(a*)(a*)(a*)(a*)(a*)\\9\\8\\7\\6\\5\\4\\3\\2x", NULL);
    /* The hostile one in keep_frames, behind an ordinary drop_frames. */
    filter_profile("regex_keep_hostile.pb.gz", "malloc", stars_all);
    /* Within the limits: a DFA of 2^16 states over 1,000 names of 1,000
     * characters (glibc: seconds and hundreds of MB; an NFA: milliseconds). */
    filter_profile_many("regex_dfa.pb.gz", "(a|b)*a(a|b){15}|.*b.{30}a", 1000, 1000, 0);
    /* 31 nested stars (the deepest that is allowed), over long names. */
    char *stars31 = repeat3("(", 31, "a*", 1, "");
    char *stars31_all = repeat3(stars31, 1, ")*", 31, "b");
    filter_profile_many("regex_nested31.pb.gz", stars31_all, 200, 4000, 1);
    /* A thousand alternatives alive at every character of 2,000 names of
     * 4,000: past the step budget, so the filter is given up. */
    char *alts = repeat3("(a", 1, "|a", 999, ")*b");
    filter_profile_many("regex_steps.pb.gz", alts, 2000, 4000, 1);
    /* And ordinary pprof filters, which must keep working. */
    filter_profile("regex_ordinary.pb.gz", "^runtime\\.|malloc|.*alloc.*|foo|bar", "main");
    free(parens);
    free(parens_all);
    free(seq);
    free(stars);
    free(stars_all);
    free(stars31);
    free(stars31_all);
    free(alts);
}

/* --------------------------------------------------------------- bombs */

/*
 * A gzip file whose protobuf is head, then pattern repeated to fill
 * total_mib MiB, then tail.  pattern must divide 1 MiB evenly.
 */
static void bomb(const char *name, const pbuf *head, const uint8_t *pattern, size_t plen,
                 size_t total_mib, const pbuf *tail)
{
    enum { BLOCK = 1 << 20 };
    if (BLOCK % plen != 0)
        abort();
    uint8_t *block = malloc(BLOCK);
    uint8_t *out = malloc(2 * BLOCK);
    if (block == NULL || out == NULL)
        abort();
    for (size_t i = 0; i < BLOCK; i += plen)
        memcpy(block + i, pattern, plen);

    z_stream z;
    memset(&z, 0, sizeof(z));
    if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK)
        abort();
    FILE *f = open_out(name);
    uLong crc = crc32(0L, Z_NULL, 0);
    uint64_t isize = 0;
    /* deflate(in, len, flush): writes what comes out. */
#define DEFLATE(in, len, flush, keep)                                                            \
    do {                                                                                         \
        z.next_in = (Bytef *)(in);                                                               \
        z.avail_in = (uInt)(len);                                                                \
        do {                                                                                     \
            z.next_out = out;                                                                    \
            z.avail_out = 2 * BLOCK;                                                             \
            deflate(&z, (flush));                                                                \
            fwrite(out, 1, 2 * BLOCK - z.avail_out, f);                                          \
            if (keep) {                                                                          \
                memcpy(kept + kept_len, out, 2 * BLOCK - z.avail_out);                           \
                kept_len += 2 * BLOCK - z.avail_out;                                             \
            }                                                                                    \
        } while (z.avail_out == 0);                                                              \
    } while (0)
    static uint8_t kept[1 << 20];
    size_t kept_len = 0;
    DEFLATE(head->p, head->len, Z_FULL_FLUSH, 0);
    if (head->len > 0) /* crc32 of a NULL buffer is its initial value, 0 */
        crc = crc32(crc, head->p, (uInt)head->len);
    isize += head->len;
    /* The first block after a full flush, kept: every later one is the
     * same bytes. */
    DEFLATE(block, BLOCK, Z_FULL_FLUSH, 1);
    uLong block_crc = crc32(0L, block, BLOCK);
    for (size_t i = 1; i < total_mib; i++)
        fwrite(kept, 1, kept_len, f);
    for (size_t i = 0; i < total_mib; i++)
        crc = crc32_combine(crc, block_crc, BLOCK);
    isize += (uint64_t)total_mib * BLOCK;
    /* The tail through the same stream: its state matches one block,
     * which is what the repeated copies left behind. */
    z.next_in = (Bytef *)tail->p;
    z.avail_in = (uInt)tail->len;
    z.next_out = out;
    z.avail_out = 2 * BLOCK;
    /* Finish without the trailer deflate computes (its CRC covers one
     * block only): raw-deflate trailers are written by hand below. */
    deflate(&z, Z_FULL_FLUSH);
    fwrite(out, 1, 2 * BLOCK - z.avail_out, f);
    if (tail->len > 0)
        crc = crc32(crc, tail->p, (uInt)tail->len);
    isize += tail->len;
    /* The last deflate block: an empty final fixed block (3 bits, 0b011,
     * plus end of block 0000000), byte-aligned: 0x03 0x00. */
    static const uint8_t final_block[] = {0x03, 0x00};
    fwrite(final_block, 1, sizeof(final_block), f);
    uint8_t trailer[8];
    for (int i = 0; i < 4; i++) {
        trailer[i] = (uint8_t)(crc >> (8 * i));
        trailer[4 + i] = (uint8_t)(isize >> (8 * i));
    }
    fwrite(trailer, 1, sizeof(trailer), f);
    close_out(f, name);
    deflateEnd(&z);
#undef DEFLATE
    free(block);
    free(out);
}

static void bombs(size_t mib)
{
    pbuf none = {0};
    /* An empty string table entry, "" (field 6, length 0): two bytes that
     * were a pointer, a 16-byte arena slot and a 16-byte record. */
    static const uint8_t empty_string[] = {0x32, 0x00};
    bomb("strings_bomb.pb.gz", &none, empty_string, sizeof(empty_string), mib, &none);
    /* The strings bomb within the size limit: a quarter of it. */
    bomb("strings_dense.pb.gz", &none, empty_string, sizeof(empty_string), mib / 4 ? mib / 4 : 1,
         &none);

    /* Samples of one value (field 2: {value: 1}), four bytes each, after
     * a sample type: what decoded to 22 times its size. */
    synth_profile sp;
    sp_init(&sp);
    sp_sample_type(&sp, "space", "bytes");
    pbuf head = sp_finish(&sp);
    static const uint8_t tiny_sample[] = {0x12, 0x02, 0x10, 0x01};
    bomb("samples_dense.pb.gz", &head, tiny_sample, sizeof(tiny_sample), mib / 8 ? mib / 8 : 1,
         &none);
    mprof_bytebuf_free(&head);

    /* Samples of 250 location ids each, one byte per id: the id array is
     * 8 bytes an id, twice (ids, then pointers). */
    sp_init(&sp);
    sp_sample_type(&sp, "space", "bytes");
    sp_function(&sp, 1, "f");
    uint64_t f1[] = {1};
    sp_location(&sp, 1, 0, 0x100, f1, 1);
    head = sp_finish(&sp);
    static uint8_t ids_sample[256];
    /* 0x12 0xfd 0x01: message length 253 as a two-byte varint; inside it,
     * 0x0a 0xf8 0x01 (packed ids, 248 bytes), 248 x 0x01, 0x10 0x01. */
    uint8_t *q = ids_sample;
    *q++ = 0x12;
    *q++ = 0xfd;
    *q++ = 0x01; /* 253 */
    *q++ = 0x0a;
    *q++ = 0xf8;
    *q++ = 0x01; /* 248 */
    memset(q, 0x01, 248);
    q += 248;
    *q++ = 0x10;
    *q++ = 0x01;
    if (q - ids_sample != 256)
        abort();
    bomb("location_ids_dense.pb.gz", &head, ids_sample, sizeof(ids_sample),
         mib / 8 ? mib / 8 : 1, &none);
    mprof_bytebuf_free(&head);
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: cli_hostile_profiles OUTDIR [MIB]\n");
        return 2;
    }
    outdir = argv[1];
    size_t mib = argc == 3 ? (size_t)strtoul(argv[2], NULL, 10) : 1024;
    filter_profiles();
    if (mib > 0)
        bombs(mib);
    return 0;
}
