/*
 * Unit tests of profile merging (src/cli/profile_merge.h) and the CLI's
 * pprof writer (src/cli/profile_writer.h), on synthetic profiles whose
 * merged figures are known by construction: the same program at two load
 * addresses (ASLR), with the records numbered differently in each file;
 * labels given in another order; a function that differs only by its
 * file; a diff; incompatible profiles.  The end-to-end comparison with
 * go tool pprof on real profiles is cli_merge_vs_pprof.sh.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_pb_encode.h"
#include "../lib/check.h"
#include "cli/profile_merge.h"
#include "cli/profile_reader.h"
#include "cli/profile_writer.h"
#include "cli/top_report.h"

/* A sample with one string label and one numeric label (in that order,
 * or the other when swapped). */
static void sample_with_labels(synth_profile *sp, const uint64_t *locs, int nlocs,
                               const int64_t *values, int nvalues, const char *thread,
                               int64_t bytes, int swapped)
{
    pbuf label[2] = {{0}, {0}};
    pbuf *str = &label[swapped ? 1 : 0], *num = &label[swapped ? 0 : 1];
    pb_put_uint(str, 1, sp_str(sp, "thread"));
    pb_put_uint(str, 2, sp_str(sp, thread));
    pb_put_uint(num, 1, sp_str(sp, "bytes"));
    pb_put_uint(num, 3, (uint64_t)bytes);
    pb_put_uint(num, 4, sp_str(sp, "bytes"));
    sp_sample_labelled(sp, locs, nlocs, values, nvalues, label, 2);
    mprof_bytebuf_free(&label[0]);
    mprof_bytebuf_free(&label[1]);
}

/*
 * The program: main -> work -> leaf in /bin/app, leaf's allocation also
 * reached from main -> other.  Loaded at base, its records numbered from
 * id_base (ids are per file: the merge must not go by them), the
 * functions defined in reverse order when reversed.  Values {count, bytes}
 * scaled by k.
 */
static pp_profile *program_profile(uint64_t base, uint64_t id_base, int reversed, int64_t k,
                                   int swapped_labels, int64_t time_nanos)
{
    synth_profile sp;
    sp_init(&sp);
    sp_sample_type(&sp, "objects", "count");
    sp_sample_type(&sp, "space", "bytes");
    sp_value_type(&sp, 11, "space", "bytes"); /* period type */
    pb_put_uint(&sp.body, 12, 512 * (uint64_t)k); /* period */
    pb_put_uint(&sp.body, 9, (uint64_t)time_nanos);
    pb_put_uint(&sp.body, 10, 1000);                   /* duration */
    pb_put_uint(&sp.body, 13, sp_str(&sp, "a comment")); /* comment */
    uint64_t m = id_base + 1;
    sp_mapping(&sp, m, base, base + 0x8800, 0, "/bin/app", 1);
    const char *names[4] = {"main", "work", "leaf", "other"};
    for (int i = 0; i < 4; i++) {
        int j = reversed ? 3 - i : i;
        sp_function(&sp, id_base + 10 + (uint64_t)j, names[j]);
    }
    uint64_t f_main[] = {id_base + 10}, f_work[] = {id_base + 11}, f_leaf[] = {id_base + 12},
             f_other[] = {id_base + 13};
    uint64_t l_main = id_base + 100, l_work = id_base + 101, l_leaf = id_base + 102,
             l_other = id_base + 103;
    sp_location(&sp, l_leaf, m, base + 0x300, f_leaf, 1);
    sp_location(&sp, l_main, m, base + 0x100, f_main, 1);
    sp_location(&sp, l_other, m, base + 0x400, f_other, 1);
    sp_location(&sp, l_work, m, base + 0x200, f_work, 1);
    uint64_t s1[] = {l_leaf, l_work, l_main}, s2[] = {l_leaf, l_other, l_main};
    int64_t v1[] = {2 * k, 2048 * k}, v2[] = {k, 100 * k}, zero[] = {0, 0};
    sample_with_labels(&sp, s1, 3, v1, 2, "worker", 1024, swapped_labels);
    sample_with_labels(&sp, s2, 3, v2, 2, "worker", 100, swapped_labels);
    sample_with_labels(&sp, s2, 3, zero, 2, "idle", 0, 0); /* all zero: left out */
    pbuf data = sp_finish(&sp);
    char err[256];
    pp_profile *p = pp_profile_parse(data.p, data.len, err, sizeof err);
    CHECK(p != NULL, "parse: %s", err);
    mprof_bytebuf_free(&data);
    return p;
}

static const pp_sample *find_sample(const pp_profile *p, const char *leaf, const char *caller)
{
    for (size_t i = 0; i < p->nsamples; i++) {
        const pp_sample *s = &p->samples[i];
        if (s->nlocations >= 2 && strcmp(s->locations[0]->lines[0].function->name, leaf) == 0 &&
            strcmp(s->locations[1]->lines[0].function->name, caller) == 0)
            return s;
    }
    return NULL;
}

static void test_merge_unifies_by_content(void)
{
    pp_profile *a = program_profile(0x555500000000, 0, 0, 1, 0, 2000);
    pp_profile *b = program_profile(0x560000000000, 50, 1, 3, 1, 1000);
    REQUIRE(a != NULL && b != NULL);
    pm_source src[] = {{a, "a.pb.gz", false}, {b, "b.pb.gz", false}};
    char err[512];
    pp_profile *m = pm_merge(src, 2, err, sizeof err);
    REQUIRE(m != NULL, "merge: %s", err);
    CHECK(m->nmappings == 1, "one mapping at two load addresses, got %zu", m->nmappings);
    CHECK(m->mappings[0].memory_start == 0x555500000000); /* the first profile's */
    CHECK(m->nfunctions == 4, "got %zu functions", m->nfunctions);
    CHECK(m->nlocations == 4, "got %zu locations", m->nlocations);
    CHECK(m->nsamples == 2, "got %zu samples (labels in another order are the same)",
          m->nsamples);
    const pp_sample *s1 = find_sample(m, "leaf", "work"), *s2 = find_sample(m, "leaf", "other");
    CHECK(s1 != NULL && s1->values[0] == 2 + 6 && s1->values[1] == 2048 + 6144);
    CHECK(s2 != NULL && s2->values[0] == 1 + 3 && s2->values[1] == 100 + 300);
    /* b's leaf moved to a's address: the same location. */
    CHECK(s1 != NULL && s1->locations[0]->address == 0x555500000300);
    CHECK(s1 != NULL && s1->locations[0]->mapping == &m->mappings[0]);
    CHECK(s1 != NULL && s1->nlabels == 2);
    /* The header: earliest time, summed durations, largest period, the
     * comment once. */
    CHECK(m->time_nanos == 1000);
    CHECK(m->duration_nanos == 2000);
    CHECK(m->period == 512 * 3);
    CHECK_STR(m->period_type.type, "space");
    CHECK(m->ncomments == 1);

    /* Written and read back: the same profile, and the inputs may go. */
    pp_profile_free(a);
    pp_profile_free(b);
    uint8_t *buf;
    size_t len;
    REQUIRE(pp_profile_encode(m, &buf, &len, err, sizeof err) == 0, "%s", err);
    pp_profile *r = pp_profile_parse(buf, len, err, sizeof err);
    free(buf);
    REQUIRE(r != NULL, "reading the merged file: %s", err);
    CHECK(r->nsamples == 2 && r->nlocations == 4 && r->nfunctions == 4 && r->nmappings == 1);
    const pp_sample *r1 = find_sample(r, "leaf", "work");
    CHECK(r1 != NULL && r1->values[1] == 8192 && r1->nlabels == 2);
    CHECK(r->mappings[0].has_functions);
    CHECK(r->period == 1536 && r->time_nanos == 1000 && r->duration_nanos == 2000);
    CHECK(r->ncomments == 1 && strcmp(r->comments[0], "a comment") == 0);
    pp_profile_free(r);
    pp_profile_free(m);
}

static void test_diff(void)
{
    pp_profile *old = program_profile(0x1000000, 0, 0, 1, 0, 5);
    pp_profile *new = program_profile(0x2000000, 7, 0, 4, 0, 6);
    REQUIRE(old != NULL && new != NULL);
    pm_source src[] = {{new, "new.pb.gz", false}, {old, "old.pb.gz", true}};
    char err[512];
    pp_profile *d = pm_merge(src, 2, err, sizeof err);
    REQUIRE(d != NULL, "%s", err);
    /* The base's samples stay apart, negated and labelled. */
    CHECK(d->nsamples == 4, "got %zu samples", d->nsamples);
    int64_t net = 0, base = 0;
    size_t labelled = 0;
    for (size_t i = 0; i < d->nsamples; i++) {
        net += d->samples[i].values[1];
        if (pm_is_base_sample(&d->samples[i])) {
            labelled++;
            base += d->samples[i].values[1];
            CHECK(d->samples[i].values[1] < 0);
        }
    }
    CHECK(labelled == 2);
    CHECK(net == (2048 + 100) * 3, "net %lld", (long long)net);
    CHECK(base == -(2048 + 100));
    /* The report's total is the base's (pprof -diff_base). */
    top_options o = {1, false, 0, 0, 0};
    top_report r;
    CHECK(top_report_build(d, &o, &r) == 0);
    CHECK(r.total == 2048 + 100, "total %lld", (long long)r.total);
    CHECK(r.nrows > 0 && strcmp(r.rows[0].name, "leaf") == 0 && r.rows[0].flat == 2148 * 3);
    top_report_free(&r);
    pp_profile_free(d);
    pp_profile_free(old);
    pp_profile_free(new);
}

/* Same name, another file: another function, so another location. */
static void test_function_identity(void)
{
    synth_profile sp;
    sp_init(&sp);
    sp_sample_type(&sp, "space", "bytes");
    pbuf f = {0};
    pb_put_uint(&f, 1, 1);
    pb_put_uint(&f, 2, sp_str(&sp, "leaf"));
    pb_put_uint(&f, 4, sp_str(&sp, "other.c"));
    pb_put_msg(&sp.body, 5, &f);
    mprof_bytebuf_free(&f);
    uint64_t fn[] = {1}, locs[] = {1};
    int64_t v[] = {7};
    sp_location(&sp, 1, 0, 0x300, fn, 1);
    sp_sample(&sp, locs, 1, v, 1);
    pbuf data = sp_finish(&sp);
    char err[512];
    pp_profile *x = pp_profile_parse(data.p, data.len, err, sizeof err);
    mprof_bytebuf_free(&data);
    sp_init(&sp);
    sp_sample_type(&sp, "space", "bytes");
    sp_function(&sp, 1, "leaf"); /* in synthetic.c */
    sp_location(&sp, 1, 0, 0x300, fn, 1);
    sp_sample(&sp, locs, 1, v, 1);
    data = sp_finish(&sp);
    pp_profile *y = pp_profile_parse(data.p, data.len, err, sizeof err);
    mprof_bytebuf_free(&data);
    REQUIRE(x != NULL && y != NULL);
    pm_source src[] = {{x, "x", false}, {y, "y", false}, {x, "x again", false}};
    pp_profile *m = pm_merge(src, 3, err, sizeof err);
    REQUIRE(m != NULL, "%s", err);
    CHECK(m->nfunctions == 2 && m->nlocations == 2 && m->nsamples == 2);
    CHECK(m->nsamples == 2 && m->samples[0].values[0] == 14 && m->samples[1].values[0] == 7);
    pp_profile_free(m);
    pp_profile_free(x);
    pp_profile_free(y);
}

static pp_profile *typed_profile(const char *t1, const char *u1, const char *t2, const char *u2,
                                 const char *period_type, const char *period_unit)
{
    synth_profile sp;
    sp_init(&sp);
    sp_sample_type(&sp, t1, u1);
    if (t2 != NULL)
        sp_sample_type(&sp, t2, u2);
    if (period_type != NULL)
        sp_value_type(&sp, 11, period_type, period_unit);
    pbuf data = sp_finish(&sp);
    char err[256];
    pp_profile *p = pp_profile_parse(data.p, data.len, err, sizeof err);
    mprof_bytebuf_free(&data);
    CHECK(p != NULL, "%s", err);
    return p;
}

static void test_incompatible(void)
{
    pp_profile *heap = typed_profile("alloc_space", "bytes", "inuse_space", "bytes", "space",
                                     "bytes");
    pp_profile *cpu = typed_profile("samples", "count", "cpu", "nanoseconds", "cpu",
                                    "nanoseconds");
    pp_profile *other_period = typed_profile("alloc_space", "bytes", "inuse_space", "bytes",
                                             "objects", "count");
    pp_profile *no_period = typed_profile("alloc_space", "bytes", "inuse_space", "bytes", NULL,
                                          NULL);
    REQUIRE(heap && cpu && other_period && no_period);
    char err[1024];
    pm_source a = {heap, "heap.pb.gz", false}, b = {cpu, "cpu.pb.gz", false};
    CHECK(!pm_check_compatible(&a, &b, err, sizeof err));
    CHECK(strstr(err, "heap.pb.gz (sample types alloc_space/bytes, inuse_space/bytes)") != NULL,
          "%s", err);
    CHECK(strstr(err, "cpu.pb.gz (sample types samples/count, cpu/nanoseconds)") != NULL, "%s",
          err);
    CHECK(strstr(err, "heap with heap") != NULL, "%s", err);
    pm_source both[] = {a, b};
    CHECK(pm_merge(both, 2, err, sizeof err) == NULL && strstr(err, "cannot merge") != NULL);
    pm_source c = {other_period, "p.pb.gz", false}, d = {no_period, "n.pb.gz", false};
    CHECK(!pm_check_compatible(&a, &c, err, sizeof err));
    CHECK(strstr(err, "period type space/bytes") != NULL && strstr(err, "objects/count"), "%s",
          err);
    CHECK(pm_check_compatible(&a, &d, err, sizeof err), "no period type on one side: %s", err);
    pp_profile_free(heap);
    pp_profile_free(cpu);
    pp_profile_free(other_period);
    pp_profile_free(no_period);
}

int main(void)
{
    test_merge_unifies_by_content();
    test_diff();
    test_function_identity();
    test_incompatible();
    return check_result("cli_merge_tests");
}
