/*
 * Flat/cum accounting for `mprof top`.  See top_report.h for the rules; the
 * comments here explain the mechanics.
 *
 * The graph is rebuilt from the samples at each trimming step rather than
 * edited, because dropping a node changes what its neighbours see: a sample
 * whose leaf function was dropped no longer contributes flat to anyone, and
 * the caller of a dropped function now "calls" the dropped one's callee.
 */
#include "cli/top_report.h"
#include "cli/profile_merge.h"
#include "cli/re_match.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shared/hash.h"
#include "shared/hash_index.h"

/* Sample values are attacker-controlled: sums wrap instead of overflowing
 * (undefined behaviour in C), which is also what Go's int64 does. */
static int64_t add_wrapping(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a + (uint64_t)b);
}

static int64_t abs_wrapping(int64_t v)
{
    return v < 0 ? (int64_t)(0 - (uint64_t)v) : v;
}

/* ------------------------------------------------------ display names */

static bool looks_like_demangled_cplusplus(const char *name)
{
    /* Java "Class.<init>" and Go "pkg.(*T[...]).Method" are not C++. */
    if (strstr(name, ".<") != NULL || strstr(name, "]).") != NULL)
        return false;
    return strpbrk(name, "<>[]") != NULL || strstr(name, "::") != NULL;
}

/* Removes every outermost open...close group, in place.  A stray close
 * stops the work where it is, as in pprof. */
static void remove_bracketed(char *s, char open, char close)
{
    size_t depth = 0, group_start = 0;
    for (size_t i = 0; s[i] != '\0'; i++) {
        if (s[i] == open) {
            if (depth++ == 0)
                group_start = i;
        } else if (s[i] == close) {
            if (depth == 0)
                return;
            if (--depth == 0) {
                memmove(s + group_start, s + i + 1, strlen(s + i + 1) + 1);
                i = group_start - 1; /* wraps for 0; i++ brings it back */
            }
        }
    }
}

int top_simplify_function_names(pp_profile *p)
{
    for (size_t i = 0; i < p->nfunctions; i++) {
        pp_function *f = &p->functions[i];
        if (f->name[0] != '\0' && strcmp(f->name, f->system_name) != 0)
            continue; /* the writer chose a display name: keep it */
        if (!looks_like_demangled_cplusplus(f->system_name)) {
            f->name = f->system_name;
            continue;
        }
        char *simple = strdup(f->system_name);
        if (simple == NULL)
            return -1;
        remove_bracketed(simple, '(', ')');
        remove_bracketed(simple, '<', '>');
        f->name = pp_profile_copy_string(p, simple, strlen(simple));
        free(simple);
        if (f->name == NULL)
            return -1;
    }
    return 0;
}

/* ------------------------------------------------------- drop_frames */

/*
 * The name a drop_frames expression is matched against: a C++ name loses
 * its parameter list ("foo(int)" -> "foo"), except for the parentheses of
 * "(anonymous namespace)" and "operator()", which are part of the name.
 */
static void simplify_function_name(const char *name, char *out, size_t outlen)
{
    static const char *const kept_parens[] = {"(anonymous namespace)", "operator()"};
    if (name[0] == '.')
        name++; /* PowerPC ELFv1 function descriptors */
    size_t cut = strlen(name);
    for (size_t i = 0; name[i] != '\0';) {
        bool skipped = false;
        for (size_t k = 0; k < sizeof(kept_parens) / sizeof(kept_parens[0]); k++) {
            size_t n = strlen(kept_parens[k]);
            if (strncmp(name + i, kept_parens[k], n) == 0) {
                i += n;
                skipped = true;
                break;
            }
        }
        if (skipped)
            continue;
        if (name[i] == '(') {
            cut = i;
            break;
        }
        i++;
    }
    snprintf(out, outlen, "%.*s", (int)cut, name);
}

/* Compiles a filter of the profile; false with the warning set. */
static bool compile_filter(re_prog **re, const char *field, const char *expr, char *warning,
                           size_t warnlen)
{
    char why[160];
    *re = re_compile(expr, why, sizeof(why));
    if (*re == NULL) {
        snprintf(warning, warnlen,
                 "ignoring the profile's frame filters: its %s \"%.80s%s\" is not an "
                 "expression mprof runs (%s), so no frames are dropped",
                 field, expr, strlen(expr) > 80 ? "..." : "", why);
        return false;
    }
    return true;
}

/* The thread steps the filters may take over one profile (re_match.h):
 * a second or two of work at the most, whatever the file holds; real
 * filters over real profiles take a few steps per character of their
 * function names. */
#ifndef FILTER_STEP_BUDGET
#define FILTER_STEP_BUDGET ((uint64_t)1 << 29)
#endif
/* The fuzz harnesses build with a smaller budget (tests/fuzz/): the same
 * code path runs out sooner, so sanitized replays of the step bomb stay
 * within their time limit; the mprof binary keeps the real one, which
 * tests/cli/cli_hostile.sh holds to. */

/*
 * Per function: whether its frames are dropped.  1 when the drop filter
 * matches its simplified name and the keep filter does not; -1 when the
 * step budget ran out.  Each function is matched once, however many lines
 * name it.
 */
static int function_verdicts(const pp_profile *p, re_prog *drop, re_prog *keep,
                             unsigned char *verdict)
{
    uint64_t budget = FILTER_STEP_BUDGET;
    char stack_buf[512];
    for (size_t i = 0; i < p->nfunctions; i++) {
        const char *name = p->functions[i].name;
        if (name[0] == '\0')
            continue;
        size_t len = strlen(name) + 1;
        char *simple = len <= sizeof(stack_buf) ? stack_buf : malloc(len);
        if (simple == NULL)
            continue; /* out of memory: the frame stays */
        simplify_function_name(name, simple, len);
        size_t n = strlen(simple);
        int drops = re_full_match(drop, simple, n, &budget);
        if (drops == 1 && keep != NULL) {
            int keeps = re_full_match(keep, simple, n, &budget);
            drops = keeps < 0 ? -1 : !keeps;
        }
        if (simple != stack_buf)
            free(simple);
        if (drops < 0)
            return -1;
        verdict[i] = (unsigned char)drops;
    }
    return 0;
}

int top_prune_uninteresting(pp_profile *p, char *warning, size_t warnlen)
{
    if (p->drop_frames[0] == '\0')
        return 0;
    re_prog *drop = NULL, *keep = NULL;
    unsigned char *dropped = NULL, *verdict = NULL;
    int rc = -1;
    if (!compile_filter(&drop, "drop_frames", p->drop_frames, warning, warnlen) ||
        (p->keep_frames[0] != '\0' &&
         !compile_filter(&keep, "keep_frames", p->keep_frames, warning, warnlen)))
        goto out;
    dropped = calloc(p->nfunctions ? p->nfunctions : 1, 1);
    verdict = calloc(p->nlocations ? p->nlocations : 1, 1);
    if (dropped == NULL || verdict == NULL) {
        snprintf(warning, warnlen, "ignoring the profile's frame filters: out of memory");
        goto out;
    }
    /* Every verdict first, so that a filter given up on leaves the
     * profile as it was. */
    if (function_verdicts(p, drop, keep, dropped) != 0) {
        snprintf(warning, warnlen,
                 "ignoring the profile's frame filters: matching them against its %zu "
                 "function names takes more than %llu steps, so no frames are dropped",
                 p->nfunctions, (unsigned long long)FILTER_STEP_BUDGET);
        goto out;
    }
    /* Per location: is its outermost frame dropped (the whole location
     * goes), or only inlined frames inside it (the location stays, cut
     * down to the frames that called the dropped one)? */
    enum { KEEP_ALL = 0, CUT_INSIDE = 1, DROP_WHOLE = 2 };
    for (size_t i = 0; i < p->nlocations; i++) {
        pp_location *loc = &p->locations[i];
        size_t j = loc->nlines;
        while (j-- > 0)
            if (dropped[loc->lines[j].function - p->functions])
                break;
        if (j == (size_t)-1)
            continue;
        if (j == loc->nlines - 1) {
            verdict[i] = DROP_WHOLE;
        } else {
            verdict[i] = CUT_INSIDE;
            loc->lines += j + 1;
            loc->nlines -= j + 1;
        }
    }
    for (size_t i = 0; i < p->nsamples; i++) {
        pp_sample *s = &p->samples[i];
        /* From the root towards the leaf: cut at the first dropped frame
         * below a frame of the program's own.  Leading dropped frames
         * (a filter matching main, say) are left, or nothing would remain. */
        bool seen_user_frame = false;
        for (size_t k = s->nlocations; k-- > 0;) {
            unsigned char v = verdict[s->locations[k] - p->locations];
            if (v == KEEP_ALL) {
                seen_user_frame = true;
                continue;
            }
            if (!seen_user_frame)
                continue;
            size_t first_kept = v == DROP_WHOLE ? k + 1 : k;
            s->locations += first_kept;
            s->nlocations -= first_kept;
            break;
        }
    }
    rc = 0;
out:
    free(dropped);
    free(verdict);
    re_free(drop);
    re_free(keep);
    return rc;
}

/* ------------------------------------------------------- sample index */

top_index_result top_find_sample_index(const pp_profile *p, const char *spec, size_t *index,
                                       char *err, size_t errlen)
{
    if (p->nsample_types == 0) {
        snprintf(err, errlen, "the profile has no sample types, so there is nothing to show");
        return TOP_INDEX_NO_TYPES;
    }
    if (spec == NULL || spec[0] == '\0') {
        for (size_t i = 0; p->default_sample_type[0] != '\0' && i < p->nsample_types; i++) {
            if (strcmp(p->sample_types[i].type, p->default_sample_type) == 0) {
                *index = i;
                return TOP_INDEX_OK;
            }
        }
        *index = p->nsample_types - 1; /* pprof's rule: the last type */
        return TOP_INDEX_OK;
    }
    char *end;
    errno = 0;
    long long n = strtoll(spec, &end, 10);
    if (end != spec && *end == '\0' && errno == 0) {
        if (n < 0 || (unsigned long long)n >= p->nsample_types) {
            snprintf(err, errlen, "sample index %s is outside the range [0..%zu]", spec,
                     p->nsample_types - 1);
            return TOP_INDEX_UNKNOWN;
        }
        *index = (size_t)n;
        return TOP_INDEX_OK;
    }
    /* Heap profiles once called their types "space" and "objects";
     * "inuse_space" finds those too. */
    const char *without_inuse = strncmp(spec, "inuse_", 6) == 0 ? spec + 6 : spec;
    for (size_t i = 0; i < p->nsample_types; i++) {
        const char *type = p->sample_types[i].type;
        if (strcmp(type, spec) == 0 || strcmp(type, without_inuse) == 0) {
            *index = i;
            return TOP_INDEX_OK;
        }
    }
    size_t used =
        (size_t)snprintf(err, errlen, "no sample type \"%s\" in this profile; it has", spec);
    for (size_t i = 0; i < p->nsample_types && used < errlen; i++)
        used += (size_t)snprintf(err + used, errlen - used, "%s %s", i ? "," : "",
                                 p->sample_types[i].type);
    if (used < errlen)
        snprintf(err + used, errlen - used, " (or give an index 0..%zu)", p->nsample_types - 1);
    return TOP_INDEX_UNKNOWN;
}

/* ------------------------------------------------------------- graph */

typedef struct node {
    const char *name; /* borrowed from the profile, or owned (see owned_names) */
    int64_t flat;
    int64_t cum;
    size_t last_sample; /* 1 + index of the last sample that added to cum */
    bool present;       /* in the current graph */
    bool inline_in, noinline_in;
} node;

typedef struct edge {
    size_t caller, callee;
    int64_t weight;
    size_t last_sample;
    bool inline_call; /* every traversal of this edge was an inlined call */
} edge;

typedef struct top_graph {
    node *nodes;
    uint32_t nnodes, nodes_cap;
    mprof_index name_index; /* name -> node */
    edge *edges;
    uint32_t nedges, edges_cap;
    mprof_index edge_index; /* (caller, callee) -> edge, rebuilt per pass */
    /* Per location: the node of each of its lines, innermost first. */
    size_t *loc_first; /* index into loc_nodes */
    size_t *loc_count;
    size_t *loc_nodes;
    char **owned_names;
    size_t nowned;
    /* The call edges the profile's memory budget pays for (pp_profile's
     * memory_budget): distinct edges are bounded by the location ids of
     * the samples, which cost a byte each in a file and over a hundred
     * here, so only the budget keeps a crafted file's graph in check. */
    size_t max_edges;
    bool over_budget;
} top_graph;

static int node_eq(const void *ctx, uint32_t idx, const void *key)
{
    return strcmp(((const top_graph *)ctx)->nodes[idx].name, (const char *)key) == 0;
}

/* Returns the node for name, creating it; SIZE_MAX when out of memory.
 * *is_new says whether name was stored (the caller then owns nothing). */
static size_t intern_node(top_graph *g, const char *name, bool *is_new)
{
    *is_new = false;
    uint32_t h = (uint32_t)mprof_fnv1a_str(name);
    mprof_index_slot *slot = mprof_index_find(&g->name_index, h, node_eq, g, name);
    if (slot == NULL)
        return SIZE_MAX;
    if (slot->idx1 != 0)
        return slot->idx1 - 1;
    if (MPROF_GROW(g->nodes, g->nodes_cap, (uint64_t)g->nnodes + 1) != 0)
        return SIZE_MAX;
    uint32_t i = g->nnodes++;
    memset(&g->nodes[i], 0, sizeof(node));
    g->nodes[i].name = name;
    mprof_index_added(&g->name_index, slot, i);
    *is_new = true;
    return i;
}

static int own_name(top_graph *g, char *name)
{
    char **owned = realloc(g->owned_names, (g->nowned + 1) * sizeof(*owned));
    if (owned == NULL)
        return -1;
    g->owned_names = owned;
    g->owned_names[g->nowned++] = name;
    return 0;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/*
 * Name of a frame without a function name: its object file in brackets
 * ("[libfoo.so]"), or "<unknown>" when it has no file.  All such frames of
 * one file share a row, as in pprof: for a stripped binary one row saying
 * how much time is spent in it reads better than dozens of addresses, and
 * the totals stay comparable with pprof's.
 */
static char *unnamed_frame_name(const pp_location *loc)
{
    const pp_mapping *m = loc->mapping;
    char *name = NULL;
    int rc;
    if (m != NULL && m->filename[0] != '\0')
        rc = asprintf(&name, "[%s]", base_name(m->filename));
    else
        rc = asprintf(&name, "<unknown>");
    return rc < 0 ? NULL : name;
}

/* Maps every line of every location to its node, once. */
static int map_locations(top_graph *g, const pp_profile *p)
{
    size_t nloc = p->nlocations ? p->nlocations : 1;
    size_t total_lines = 0;
    for (size_t i = 0; i < p->nlocations; i++)
        total_lines += p->locations[i].nlines ? p->locations[i].nlines : 1;
    g->loc_first = calloc(nloc, sizeof(size_t));
    g->loc_count = calloc(nloc, sizeof(size_t));
    g->loc_nodes = calloc(total_lines ? total_lines : 1, sizeof(size_t));
    if (g->loc_first == NULL || g->loc_count == NULL || g->loc_nodes == NULL)
        return -1;
    size_t next = 0;
    for (size_t i = 0; i < p->nlocations; i++) {
        const pp_location *loc = &p->locations[i];
        g->loc_first[i] = next;
        g->loc_count[i] = loc->nlines ? loc->nlines : 1;
        for (size_t j = 0; j < g->loc_count[i]; j++) {
            const char *name = NULL;
            if (loc->nlines > 0) {
                const pp_function *f = loc->lines[j].function;
                name = f->name[0] != '\0' ? f->name : f->system_name;
            }
            char *generated = NULL;
            if (name == NULL || name[0] == '\0') {
                generated = unnamed_frame_name(loc);
                if (generated == NULL)
                    return -1;
                name = generated;
            }
            bool is_new;
            size_t n = intern_node(g, name, &is_new);
            if (n == SIZE_MAX) {
                free(generated);
                return -1;
            }
            if (generated != NULL) {
                if (!is_new)
                    free(generated);
                else if (own_name(g, generated) != 0) {
                    free(generated);
                    return -1;
                }
            }
            g->loc_nodes[next++] = n;
        }
    }
    return 0;
}

static void clear_edges(top_graph *g)
{
    g->nedges = 0;
    mprof_index_clear(&g->edge_index);
}

struct edge_key {
    size_t caller, callee;
};

static int edge_eq(const void *ctx, uint32_t idx, const void *key)
{
    const edge *e = &((const top_graph *)ctx)->edges[idx];
    const struct edge_key *k = key;
    return e->caller == k->caller && e->callee == k->callee;
}

static edge *find_or_add_edge(top_graph *g, size_t caller, size_t callee, bool *is_new)
{
    *is_new = false;
    struct edge_key k = {caller, callee};
    size_t pair[2] = {caller, callee};
    uint32_t h = (uint32_t)mprof_mix64(mprof_fnv1a(MPROF_FNV1A_OFFSET, pair, sizeof(pair)));
    mprof_index_slot *slot = mprof_index_find(&g->edge_index, h, edge_eq, g, &k);
    if (slot == NULL)
        return NULL;
    if (slot->idx1 != 0)
        return &g->edges[slot->idx1 - 1];
    if (g->nedges >= g->max_edges) {
        g->over_budget = true;
        return NULL;
    }
    if (MPROF_GROW(g->edges, g->edges_cap, (uint64_t)g->nedges + 1) != 0)
        return NULL;
    edge *e = &g->edges[g->nedges];
    memset(e, 0, sizeof(*e));
    e->caller = caller;
    e->callee = callee;
    mprof_index_added(&g->edge_index, slot, g->nedges++);
    *is_new = true;
    return e;
}

/*
 * One pass over the samples.  kept == NULL keeps every node; otherwise
 * frames whose node is not kept are skipped, and a sample whose leaf frame
 * was skipped adds no flat value anywhere.
 */
static int build_graph(top_graph *g, const pp_profile *p, size_t value_index, const bool *kept)
{
    for (size_t i = 0; i < g->nnodes; i++) {
        g->nodes[i].flat = g->nodes[i].cum = 0;
        g->nodes[i].last_sample = 0;
        g->nodes[i].present = false;
    }
    clear_edges(g);
    for (size_t si = 0; si < p->nsamples; si++) {
        const pp_sample *s = &p->samples[si];
        int64_t w = s->values[value_index];
        if (w == 0)
            continue;
        size_t stamp = si + 1;
        size_t parent = SIZE_MAX;
        bool leaf_skipped = false;
        /* Root first, so "parent" is the caller of the current frame. */
        for (size_t li = s->nlocations; li-- > 0;) {
            size_t loc = (size_t)(s->locations[li] - p->locations);
            size_t first = g->loc_first[loc], count = g->loc_count[loc];
            for (size_t k = count; k-- > 0;) {
                size_t n = g->loc_nodes[first + k];
                if (kept != NULL && !kept[n]) {
                    leaf_skipped = true;
                    continue;
                }
                node *nd = &g->nodes[n];
                if (nd->last_sample != stamp) {
                    nd->last_sample = stamp;
                    nd->cum = add_wrapping(nd->cum, w);
                }
                if (parent != SIZE_MAX && parent != n) {
                    /* Every line but the outermost of a location was
                     * inlined into the line after it. */
                    bool inlined = k != count - 1;
                    bool is_new;
                    edge *e = find_or_add_edge(g, parent, n, &is_new);
                    if (e == NULL)
                        return -1;
                    if (is_new) {
                        e->inline_call = inlined;
                    }
                    if (e->last_sample != stamp) {
                        e->last_sample = stamp;
                        e->weight = add_wrapping(e->weight, w);
                        if (!inlined)
                            e->inline_call = false;
                    }
                }
                parent = n;
                leaf_skipped = false;
            }
        }
        if (parent != SIZE_MAX && !leaf_skipped)
            g->nodes[parent].flat = add_wrapping(g->nodes[parent].flat, w);
    }
    for (size_t i = 0; i < g->nnodes; i++) {
        node *nd = &g->nodes[i];
        nd->present = (kept == NULL || kept[i]) && (nd->cum != 0 || nd->flat != 0);
    }
    return 0;
}

static int compare_int64_desc(int64_t a, int64_t b)
{
    return (a < b) - (a > b);
}

typedef struct sort_context {
    const top_graph *graph;
    bool by_cum;
} sort_context;

/* pprof's order: the sort value, then the name, then the other value;
 * names are unique, so the order is total and the output reproducible. */
static int compare_nodes(const void *pa, const void *pb, void *context)
{
    const sort_context *ctx = context;
    const node *a = &ctx->graph->nodes[*(const size_t *)pa];
    const node *b = &ctx->graph->nodes[*(const size_t *)pb];
    int64_t a1 = ctx->by_cum ? a->cum : a->flat, b1 = ctx->by_cum ? b->cum : b->flat;
    int64_t a2 = ctx->by_cum ? a->flat : a->cum, b2 = ctx->by_cum ? b->flat : b->cum;
    int c = compare_int64_desc(abs_wrapping(a1), abs_wrapping(b1));
    if (c == 0)
        c = strcmp(a->name, b->name);
    if (c == 0)
        c = compare_int64_desc(abs_wrapping(a2), abs_wrapping(b2));
    return c;
}

/* Present nodes in report order. */
static size_t sorted_present_nodes(const top_graph *g, bool cum_sort, size_t *order)
{
    size_t n = 0;
    for (size_t i = 0; i < g->nnodes; i++)
        if (g->nodes[i].present)
            order[n++] = i;
    sort_context ctx = {g, cum_sort};
    qsort_r(order, n, sizeof(*order), compare_nodes, &ctx);
    return n;
}

static void free_graph(top_graph *g)
{
    if (g == NULL)
        return;
    for (size_t i = 0; i < g->nowned; i++)
        free(g->owned_names[i]);
    free(g->owned_names);
    free(g->nodes);
    mprof_index_free(&g->name_index);
    free(g->edges);
    mprof_index_free(&g->edge_index);
    free(g->loc_first);
    free(g->loc_count);
    free(g->loc_nodes);
    free(g);
}

int top_report_build(const pp_profile *p, const top_options *o, top_report *out)
{
    memset(out, 0, sizeof(*out));
    int failure = -1;
    top_graph *g = calloc(1, sizeof(*g));
    bool *kept = NULL;
    size_t *order = NULL;
    if (g == NULL)
        return -1;
    out->graph = g;
    if (map_locations(g, p) != 0)
        goto oom;
    /* What is left of the budget after the per-location and per-node
     * arrays, at the most an edge costs: the record and two index slots,
     * each array up to twice its size while it doubles. */
    size_t fixed = (2 * p->nlocations + g->nnodes * 2) * sizeof(size_t) +
                   g->nnodes * (sizeof(node) + 2 * sizeof(mprof_index_slot)) * 2;
    size_t per_edge = 2 * (sizeof(edge) + 2 * sizeof(mprof_index_slot));
    if (p->memory_budget == 0) /* a profile not made by the reader: no budget */
        g->max_edges = SIZE_MAX;
    else
        g->max_edges = p->memory_budget > fixed ? (p->memory_budget - fixed) / per_edge : 0;

    /* pprof's total: the sum of |value|, or in a diff (profile_merge.h)
     * the base's alone, so that shares read as "grew by 40% of what it
     * was". */
    int64_t base_total = 0;
    for (size_t i = 0; i < p->nsamples; i++) {
        int64_t v = abs_wrapping(p->samples[i].values[o->sample_index]);
        out->total = add_wrapping(out->total, v);
        if (p->samples[i].nlabels > 0 && pm_is_base_sample(&p->samples[i]))
            base_total = add_wrapping(base_total, v);
    }
    if (base_total > 0)
        out->total = base_total;

    kept = calloc(g->nnodes ? g->nnodes : 1, sizeof(bool));
    order = calloc(g->nnodes ? g->nnodes : 1, sizeof(size_t));
    if (kept == NULL || order == NULL)
        goto oom;

    /* Step 1: the full graph; cut-offs are shares of its flat sum. */
    if (build_graph(g, p, o->sample_index, NULL) != 0)
        goto oom;
    int64_t flat_sum = 0;
    size_t present = 0;
    for (size_t i = 0; i < g->nnodes; i++) {
        if (g->nodes[i].present) {
            flat_sum = add_wrapping(flat_sum, g->nodes[i].flat);
            present++;
        }
    }
    int64_t node_cutoff = abs_wrapping((int64_t)((double)flat_sum * o->node_fraction));
    int64_t edge_cutoff = abs_wrapping((int64_t)((double)flat_sum * o->edge_fraction));

    /* Step 2: drop nodes with a small cum. */
    if (node_cutoff > 0) {
        size_t nkept = 0;
        for (size_t i = 0; i < g->nnodes; i++) {
            kept[i] = g->nodes[i].present && abs_wrapping(g->nodes[i].cum) >= node_cutoff;
            nkept += kept[i];
        }
        if (nkept != present) {
            out->dropped_nodes = present - nkept;
            if (build_graph(g, p, o->sample_index, kept) != 0)
                goto oom;
        }
    }

    /* Step 3: keep the first node_count rows. */
    size_t nrows = sorted_present_nodes(g, o->cum_sort, order);
    out->candidate_nodes = nrows;
    if (o->node_count > 0 && nrows > o->node_count) {
        memset(kept, 0, g->nnodes * sizeof(bool));
        for (size_t i = 0; i < o->node_count; i++)
            kept[order[i]] = true;
        if (build_graph(g, p, o->sample_index, kept) != 0)
            goto oom;
        nrows = sorted_present_nodes(g, o->cum_sort, order);
    }

    /* Inline labels come from the call edges that carry enough weight. */
    for (size_t i = 0; i < g->nedges; i++) {
        const edge *e = &g->edges[i];
        if (abs_wrapping(e->weight) < edge_cutoff)
            continue;
        if (e->inline_call)
            g->nodes[e->callee].inline_in = true;
        else
            g->nodes[e->callee].noinline_in = true;
    }

    out->rows = calloc(nrows ? nrows : 1, sizeof(top_row));
    if (out->rows == NULL)
        goto oom;
    out->nrows = nrows;
    for (size_t i = 0; i < nrows; i++) {
        const node *nd = &g->nodes[order[i]];
        top_row *row = &out->rows[i];
        row->name = nd->name;
        row->flat = nd->flat;
        row->cum = nd->cum;
        row->inline_label = !nd->inline_in ? "" : nd->noinline_in ? "(partial-inline)" : "(inline)";
        out->shown_flat = add_wrapping(out->shown_flat, nd->flat);
        int64_t candidate =
            abs_wrapping(nd->flat) != 0 ? abs_wrapping(nd->flat) : abs_wrapping(nd->cum);
        if (candidate > 0 && (out->min_value == 0 || candidate < out->min_value))
            out->min_value = candidate;
    }
    free(kept);
    free(order);
    return 0;
oom:
    if (g->over_budget)
        failure = -2;
    free(kept);
    free(order);
    top_report_free(out);
    return failure;
}

void top_report_free(top_report *r)
{
    free(r->rows);
    free_graph(r->graph);
    memset(r, 0, sizeof(*r));
}
