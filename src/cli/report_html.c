/*
 * The HTML report's data: each profile as a call tree, written into the
 * embedded page (report_html.h says what the page holds and why).
 *
 * The data (build_data: a JSON header and binary arrays) is gzipped and
 * in base64, a third of its size as text: a report is mailed around.  The
 * JSON, read by web/report.html:
 *   {"meta": {...}, "profiles": [P, ...], "timeline": T or null}
 *   P = {"name", "types": [[type, unit], ...], "default": I, "period",
 *        "period_type", "strings": [...], "bin": {SECTION: [offset, count]}}
 * and the binary sections of each profile (little-endian):
 *   funcs   u32 pairs (name, file): indexes into "strings"
 *   back    u32 per node: i - its parent, 0 for a root (parents come first)
 *   func    u32 per node: its function, an index into funcs' pairs
 *   line    u32 per node: its line (0 unknown)
 *   vnode   u32: the nodes with samples of their own, ascending
 *   vals    f64, K per vnode entry: its self values, one per sample type
 * Self values are those of the samples whose leaf frame is the node; the
 * page adds them up into totals.  A value beyond 2^53 loses its last
 * digits as a double, far below what a flame graph can show.
 */
#include "cli/report_html.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli/profile_writer.h"
#include "cli/timeline.h"
#include "shared/hash.h"
#include "shared/hash_index.h"

/* ----------------------------------------------------------- the tree */

typedef struct rnode {
    int32_t parent;
    uint32_t func; /* index of its (name, file) pair in rtree.funcs */
    int64_t line;
    int64_t line_weight; /* |value| of the sample that gave the line */
} rnode;

typedef struct rtree {
    const pp_profile *p;
    size_t ntypes;
    rnode *nodes;
    uint32_t nnodes, nodes_cap;
    int64_t *values; /* nnodes * ntypes */
    uint32_t values_cap;
    /* The most nodes the profile's memory budget pays for (its tree, and
     * the page's data built from it); UINT32_MAX without a budget. */
    uint32_t max_nodes;
    mprof_index node_index;
    const char **strings;
    uint32_t nstrings, strings_cap;
    mprof_index string_index;
    uint32_t *funcs; /* (name, file) string index pairs */
    uint32_t nfuncs, funcs_cap; /* nfuncs pairs, room for funcs_cap numbers */
    mprof_index func_index;
    char **owned; /* names made up for frames without a function */
    uint32_t nowned, owned_cap;
} rtree;

static int string_eq(const void *ctx, uint32_t idx, const void *key)
{
    return strcmp(((const rtree *)ctx)->strings[idx], (const char *)key) == 0;
}

/* The index of s in the tree's string table, added if new; UINT32_MAX
 * when out of memory.  s must outlive the tree. */
static uint32_t intern(rtree *t, const char *s)
{
    mprof_index_slot *slot =
        mprof_index_find(&t->string_index, (uint32_t)mprof_fnv1a_str(s), string_eq, t, s);
    if (slot == NULL)
        return UINT32_MAX;
    if (slot->idx1 != 0)
        return slot->idx1 - 1;
    if (MPROF_GROW(t->strings, t->strings_cap, (uint64_t)t->nstrings + 1) != 0)
        return UINT32_MAX;
    t->strings[t->nstrings] = s;
    mprof_index_added(&t->string_index, slot, t->nstrings);
    return t->nstrings++;
}

static int func_eq(const void *ctx, uint32_t idx, const void *key)
{
    const uint32_t *f = &((const rtree *)ctx)->funcs[2 * (size_t)idx], *k = key;
    return f[0] == k[0] && f[1] == k[1];
}

/* The index of a function (name, file: string indexes), added if new;
 * UINT32_MAX when out of memory. */
static uint32_t func_of(rtree *t, uint32_t name, uint32_t file)
{
    uint32_t k[2] = {name, file};
    mprof_index_slot *slot = mprof_index_find(
        &t->func_index, (uint32_t)mprof_mix64(((uint64_t)name << 32) | file), func_eq, t, k);
    if (slot == NULL)
        return UINT32_MAX;
    if (slot->idx1 != 0)
        return slot->idx1 - 1;
    if (MPROF_GROW(t->funcs, t->funcs_cap, 2 * ((uint64_t)t->nfuncs + 1)) != 0)
        return UINT32_MAX;
    t->funcs[2 * (size_t)t->nfuncs] = name;
    t->funcs[2 * (size_t)t->nfuncs + 1] = file;
    mprof_index_added(&t->func_index, slot, t->nfuncs);
    return t->nfuncs++;
}

typedef struct node_key {
    int32_t parent;
    uint32_t func;
} node_key;

static int node_eq(const void *ctx, uint32_t idx, const void *key)
{
    const rnode *n = &((const rtree *)ctx)->nodes[idx];
    const node_key *k = key;
    return n->parent == k->parent && n->func == k->func;
}

/* The child of parent for a function; -1 when out of memory. */
static int32_t child(rtree *t, int32_t parent, uint32_t name, uint32_t file)
{
    uint32_t func = func_of(t, name, file);
    if (func == UINT32_MAX)
        return -1;
    node_key k = {parent, func};
    uint64_t h = mprof_mix64(((uint64_t)(uint32_t)parent << 32) ^ func);
    mprof_index_slot *slot = mprof_index_find(&t->node_index, (uint32_t)h, node_eq, t, &k);
    if (slot == NULL)
        return -1;
    if (slot->idx1 != 0)
        return (int32_t)(slot->idx1 - 1);
    if (t->nnodes >= t->max_nodes) {
        errno = E2BIG;
        return -1;
    }
    if (t->nnodes >= INT32_MAX || MPROF_GROW(t->nodes, t->nodes_cap, (uint64_t)t->nnodes + 1) != 0 ||
        MPROF_GROW(t->values, t->values_cap, ((uint64_t)t->nnodes + 1) * t->ntypes) != 0)
        return -1;
    t->nodes[t->nnodes] = (rnode){.parent = parent, .func = func, .line_weight = -1};
    memset(&t->values[(size_t)t->nnodes * t->ntypes], 0, t->ntypes * sizeof(int64_t));
    mprof_index_added(&t->node_index, slot, t->nnodes);
    return (int32_t)t->nnodes++;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* A frame without a function name: "[libfoo.so]" or "<unknown>", as
 * mprof top names it (top_report.h), so that table and graph agree. */
static const char *unnamed(rtree *t, const pp_location *loc)
{
    char *name = NULL;
    int rc = loc->mapping != NULL && loc->mapping->filename[0] != '\0'
                 ? asprintf(&name, "[%s]", base_name(loc->mapping->filename))
                 : asprintf(&name, "<unknown>");
    if (rc < 0)
        return NULL;
    if (MPROF_GROW(t->owned, t->owned_cap, (uint64_t)t->nowned + 1) != 0) {
        free(name);
        return NULL;
    }
    t->owned[t->nowned++] = name;
    return name;
}

static int64_t magnitude(int64_t v)
{
    return v < 0 ? (int64_t)(0 - (uint64_t)v) : v;
}

static int64_t add_wrapping(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a + (uint64_t)b);
}

/* One frame (a Line of a Location, or a Location without lines) under
 * parent; the node, or -1 when out of memory. */
static int32_t frame(rtree *t, int32_t parent, const pp_location *loc, const pp_line *line,
                     int64_t weight)
{
    const char *name = line != NULL ? line->function->name : "";
    const char *file = line != NULL ? line->function->filename : "";
    if (name[0] == '\0' && (name = unnamed(t, loc)) == NULL)
        return -1;
    uint32_t ni = intern(t, name), fi = intern(t, file);
    if (ni == UINT32_MAX || fi == UINT32_MAX)
        return -1;
    int32_t n = child(t, parent, ni, fi);
    /* The line shown is that of the heaviest sample through the node: one
     * line per node keeps the file small, and is the line that matters. */
    if (n >= 0 && line != NULL && weight > t->nodes[n].line_weight) {
        t->nodes[n].line = line->line;
        t->nodes[n].line_weight = weight;
    }
    return n;
}

/* A tree node's share of memory: the node, its values, its index slot
 * (the index at most half full) and its part of the page's data (binary,
 * then gzipped), counted generously. */
static size_t node_cost(size_t ntypes)
{
    return sizeof(rnode) + 2 * sizeof(mprof_index_slot) + 2 * (16 + 8 * ntypes);
}

/* Every sample added to its leaf's node, root first: the outermost
 * Location's physical function is the root frame, each Line of a Location
 * a frame of its own (an inlined function included), as in pprof's flame
 * graph.  0, or -1 when out of memory (errno E2BIG: over the budget). */
static int tree_build(rtree *t, const pp_profile *p)
{
    *t = (rtree){.p = p, .ntypes = p->nsample_types, .max_nodes = UINT32_MAX};
    /* A stack of one id can stand for thousands of inlined lines, so the
     * tree, unlike the file, can grow far faster than its bytes: the
     * budget (profile_reader.h) bounds it, as it bounds mprof top's
     * graph. */
    if (p->memory_budget != 0) {
        size_t max = p->memory_budget / node_cost(t->ntypes);
        t->max_nodes = max < UINT32_MAX ? (uint32_t)max : UINT32_MAX;
    }
    for (size_t s = 0; s < p->nsamples; s++) {
        const pp_sample *sm = &p->samples[s];
        int64_t weight = t->ntypes ? magnitude(sm->values[0]) : 0;
        int32_t node = -1;
        for (size_t i = sm->nlocations; i-- > 0;) {
            const pp_location *loc = sm->locations[i];
            if (loc->nlines == 0) {
                node = frame(t, node, loc, NULL, weight);
                if (node < 0)
                    return -1;
            }
            for (size_t j = loc->nlines; j-- > 0;)
                if ((node = frame(t, node, loc, &loc->lines[j], weight)) < 0)
                    return -1;
        }
        if (node < 0) {
            /* A sample without a stack still counts in the total, as in
             * mprof top: under a root of its own. */
            uint32_t ni = intern(t, "(no stack)"), fi = intern(t, "");
            if (ni == UINT32_MAX || fi == UINT32_MAX || (node = child(t, -1, ni, fi)) < 0)
                return -1;
        }
        int64_t *v = &t->values[(size_t)node * t->ntypes];
        for (size_t k = 0; k < t->ntypes; k++)
            v[k] = add_wrapping(v[k], sm->values[k]);
    }
    return 0;
}

static void tree_free(rtree *t)
{
    free(t->nodes);
    free(t->values);
    free(t->strings);
    free(t->funcs);
    mprof_index_free(&t->func_index);
    mprof_index_free(&t->node_index);
    mprof_index_free(&t->string_index);
    for (uint32_t i = 0; i < t->nowned; i++)
        free(t->owned[i]);
    free(t->owned);
}

/* ----------------------------------------------------------- the JSON */

/* A string as a JSON string that is also safe inside <script>: '<' is
 * written \u003c, so that no "</script>" or "<!--" in a function name (the
 * profile is hostile) ends the data early; control bytes escaped.  Bytes
 * that are not UTF-8 reach the page as U+FFFD. */
static void json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\')
            fprintf(out, "\\%c", *c);
        else if (*c < 0x20 || *c == '<' || *c == '>' || *c == '&' || *c == 0x7f)
            fprintf(out, "\\u%04x", *c);
        else
            fputc(*c, out);
    }
    fputc('"', out);
}

static void json_key(FILE *out, const char *key, bool first)
{
    if (!first)
        fputc(',', out);
    json_string(out, key);
    fputc(':', out);
}

/* The binary part, little-endian whatever the host. */
static void put_u32(FILE *bin, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    fwrite(b, 1, 4, bin);
}

static void put_f64(FILE *bin, double d)
{
    uint64_t v;
    memcpy(&v, &d, sizeof v);
    put_u32(bin, (uint32_t)v);
    put_u32(bin, (uint32_t)(v >> 32));
}

/* Starts a section of count elements in bin at a multiple of 8 (so that
 * the page maps it as a typed array without a copy), and names it in the
 * JSON as "name":[offset,count]. */
static void section(FILE *out, FILE *bin, const char *name, uint64_t count, bool first)
{
    long at = ftell(bin);
    while (at >= 0 && at % 8 != 0) {
        fputc(0, bin);
        at++;
    }
    json_key(out, name, first);
    fprintf(out, "[%ld,%" PRIu64 "]", at, count);
}

static bool has_values(const rtree *t, uint32_t node)
{
    for (size_t k = 0; k < t->ntypes; k++)
        if (t->values[(size_t)node * t->ntypes + k] != 0)
            return true;
    return false;
}

static void json_profile(FILE *out, FILE *bin, const rtree *t, const char *name)
{
    const pp_profile *p = t->p;
    fputc('{', out);
    json_key(out, "name", true);
    json_string(out, name ? name : "");
    json_key(out, "types", false);
    fputc('[', out);
    size_t def = p->nsample_types ? p->nsample_types - 1 : 0;
    for (size_t i = 0; i < p->nsample_types; i++) {
        fprintf(out, "%s[", i ? "," : "");
        json_string(out, p->sample_types[i].type);
        fputc(',', out);
        json_string(out, p->sample_types[i].unit);
        fputc(']', out);
        if (p->default_sample_type[0] != '\0' &&
            strcmp(p->default_sample_type, p->sample_types[i].type) == 0)
            def = i;
    }
    fprintf(out, "],\"default\":%zu,\"period\":%" PRId64 ",", def, p->period);
    json_key(out, "period_type", true);
    fputc('[', out);
    json_string(out, p->period_type.type);
    fputc(',', out);
    json_string(out, p->period_type.unit);
    fputs("],\"strings\":[", out);
    for (uint32_t i = 0; i < t->nstrings; i++) {
        if (i)
            fputc(',', out);
        json_string(out, t->strings[i]);
    }
    fputs("],\"bin\":{", out);
    uint32_t nvalued = 0;
    for (uint32_t i = 0; i < t->nnodes; i++)
        nvalued += has_values(t, i);
    section(out, bin, "funcs", 2 * (uint64_t)t->nfuncs, true);
    for (uint32_t i = 0; i < 2 * t->nfuncs; i++)
        put_u32(bin, t->funcs[i]);
    /* A parent as the distance back to it (0: a root): mostly 1, which
     * gzip all but removes. */
    section(out, bin, "back", t->nnodes, false);
    for (uint32_t i = 0; i < t->nnodes; i++)
        put_u32(bin, t->nodes[i].parent < 0 ? 0 : i - (uint32_t)t->nodes[i].parent);
    section(out, bin, "func", t->nnodes, false);
    for (uint32_t i = 0; i < t->nnodes; i++)
        put_u32(bin, t->nodes[i].func);
    section(out, bin, "line", t->nnodes, false);
    for (uint32_t i = 0; i < t->nnodes; i++) {
        int64_t line = t->nodes[i].line;
        put_u32(bin, line < 0 || line > INT32_MAX ? 0 : (uint32_t)line);
    }
    section(out, bin, "vnode", nvalued, false);
    for (uint32_t i = 0; i < t->nnodes; i++)
        if (has_values(t, i))
            put_u32(bin, i);
    section(out, bin, "vals", (uint64_t)nvalued * t->ntypes, false);
    for (uint32_t i = 0; i < t->nnodes; i++)
        if (has_values(t, i))
            for (size_t k = 0; k < t->ntypes; k++)
                put_f64(bin, (double)t->values[(size_t)i * t->ntypes + k]);
    fputs("}}", out); /* bin, the profile */
}

static void json_meta(FILE *out, const report_input *in)
{
    const pp_profile *p = in->profile;
    fputc('{', out);
    json_key(out, "file", true);
    json_string(out, in->profile_name ? in->profile_name : "");
    json_key(out, "program", false);
    json_string(out, p->nmappings > 0 ? p->mappings[0].filename : "");
    json_key(out, "build_id", false);
    json_string(out, p->nmappings > 0 ? p->mappings[0].build_id : "");
    fprintf(out, ",\"time_nanos\":%" PRId64 ",\"duration_nanos\":%" PRId64
                 ",\"generated\":%lld,",
            p->time_nanos, p->duration_nanos, in->generated_unix);
    json_key(out, "comments", true);
    fputc('[', out);
    bool first = true;
    for (size_t i = 0; i < p->ncomments; i++) {
        if (p->comments[i][0] == '#')
            continue; /* for tools (the timeline), not people */
        if (!first)
            fputc(',', out);
        first = false;
        json_string(out, p->comments[i]);
    }
    fputs("]}", out);
}

static void json_timeline(FILE *out, const timeline *tl)
{
    fprintf(out, "{\"t0\":%" PRId64 ",\"every_ns\":%" PRId64 ",\"points\":[", tl->t0_unix_ns,
            tl->every_ns);
    for (size_t i = 0; i < tl->npoints; i++) {
        const timeline_point *pt = &tl->points[i];
        fprintf(out, "%s%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64, i ? "," : "", pt->t_ms,
                pt->inuse_bytes, pt->inuse_objects, pt->alloc_bytes);
    }
    fputs("]}", out);
}

/* data, gzipped, as base64 in lines of 120 characters (the page's atob
 * skips the line ends); 0, or -1 when out of memory. */
static int write_gzip_base64(FILE *out, const char *data, size_t len)
{
    uint8_t *gz;
    size_t n;
    if (pp_gzip((const uint8_t *)data, len, &gz, &n) != 0)
        return -1;
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char line[124];
    size_t at = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)gz[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)gz[i + 1] << 8;
        if (i + 2 < n)
            v |= gz[i + 2];
        line[at++] = b64[(v >> 18) & 63];
        line[at++] = b64[(v >> 12) & 63];
        line[at++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
        line[at++] = i + 2 < n ? b64[v & 63] : '=';
        if (at == 120 || i + 3 >= n) {
            line[at++] = '\n';
            fwrite(line, 1, at, out);
            at = 0;
        }
    }
    free(gz);
    return 0;
}

/*
 * The page's data, into one malloc'd buffer: "MPR1", the JSON's length
 * (u32, little-endian), the JSON, zeros up to a multiple of 8, then the
 * binary sections the JSON's "bin" objects locate (offsets from there).
 * Numbers in bulk go as binary, so that the page maps them instead of
 * parsing text: what makes a report of 100,000 samples open in well under
 * a second.  0, or -1 when out of memory.
 */
static int build_data(const report_input *in, const rtree *trees, const char *const *names,
                      size_t n, char **data, size_t *data_len)
{
    char *json = NULL, *bin = NULL;
    size_t json_len = 0, bin_len = 0;
    FILE *out = open_memstream(&json, &json_len);
    FILE *b = open_memstream(&bin, &bin_len);
    int rc = -1;
    if (out == NULL || b == NULL)
        goto done;
    fputs("{\"meta\":", out);
    json_meta(out, in);
    fputs(",\"profiles\":[", out);
    for (size_t i = 0; i < n; i++) {
        if (i)
            fputc(',', out);
        json_profile(out, b, &trees[i], names[i]);
    }
    fputs("],\"timeline\":", out);
    if (in->timeline != NULL)
        json_timeline(out, in->timeline);
    else
        fputs("null", out);
    fputc('}', out);
    bool failed = ferror(out) || ferror(b);
    int c1 = fclose(out), c2 = fclose(b);
    out = b = NULL;
    if (failed || c1 != 0 || c2 != 0 || json == NULL || bin == NULL || json_len > UINT32_MAX)
        goto done;
    size_t head = 8 + json_len, pad = (8 - head % 8) % 8;
    *data_len = head + pad + bin_len;
    *data = malloc(*data_len);
    if (*data == NULL)
        goto done;
    memcpy(*data, "MPR1", 4);
    for (int i = 0; i < 4; i++)
        (*data)[4 + i] = (char)(json_len >> (8 * i));
    memcpy(*data + 8, json, json_len);
    memset(*data + head, 0, pad);
    memcpy(*data + head + pad, bin, bin_len);
    rc = 0;
done:
    if (out != NULL)
        fclose(out);
    if (b != NULL)
        fclose(b);
    free(json);
    free(bin);
    return rc;
}

int report_write_html(FILE *out, const report_input *in)
{
    const char *tpl = (const char *)mprof_report_template;
    const char *mark = memmem(tpl, mprof_report_template_len, REPORT_DATA_MARK,
                              strlen(REPORT_DATA_MARK));
    if (mark == NULL) {
        errno = EINVAL; /* a build of a broken template: its test fails */
        return -2;
    }
    rtree trees[2];
    const pp_profile *profiles[2] = {in->profile, in->peak};
    const char *names[2] = {in->profile_name, in->peak_name};
    size_t n = in->peak != NULL ? 2 : 1, built = 0;
    int rc = 0;
    for (; built < n && rc == 0; built++) {
        errno = 0;
        rc = tree_build(&trees[built], profiles[built]);
        if (rc != 0 && errno == E2BIG)
            rc = -3;
    }
    char *json = NULL;
    size_t json_len = 0;
    if (rc == 0)
        rc = build_data(in, trees, names, n, &json, &json_len);
    for (size_t i = 0; i < built; i++)
        tree_free(&trees[i]);
    if (rc != 0)
        return rc;
    const char *rest = mark + strlen(REPORT_DATA_MARK);
    fwrite(tpl, 1, (size_t)(mark - tpl), out);
    rc = write_gzip_base64(out, json, json_len);
    free(json);
    fwrite(rest, 1, mprof_report_template_len - (size_t)(rest - tpl), out);
    if (rc == 0 && (fflush(out) != 0 || ferror(out)))
        rc = -2;
    return rc;
}
