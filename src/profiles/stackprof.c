/*
 * Stack tables and text output for the stack-keyed profiles (block, mutex,
 * threadcreate, goroutine).  See stackprof.h.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shared/hash.h"
#include "profiles/labels_pb.h"
#include "profiles/stackprof.h"
#include "shared/hash_index.h"

/* ------------------------------------------------------------ stack table */

int mprof_stk_init(mprof_stk_table *t)
{
    if (atomic_load_explicit(&t->slots, memory_order_acquire) != NULL)
        return 0;
    _Atomic(mprof_stk_entry *) *slots =
        mprof_arena_alloc(MPROF_STK_CAPACITY * sizeof(_Atomic(mprof_stk_entry *)));
    if (slots == NULL)
        return -1;
    t->mask = MPROF_STK_CAPACITY - 1;
    _Atomic(mprof_stk_entry *) *expected = NULL;
    /* Two initialisers racing: the loser's zeroed array stays in the arena
     * unused, which happens at most once per table. */
    atomic_compare_exchange_strong_explicit(&t->slots, &expected, slots, memory_order_acq_rel,
                                            memory_order_acquire);
    return 0;
}

static void add_double(_Atomic double *p, double d)
{
    double old = atomic_load_explicit(p, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(p, &old, old + d, memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
}

static int same_stack(const mprof_stk_entry *e, uint64_t h, const uintptr_t *pcs, int n,
                      uint32_t labels)
{
    return e->hash == h && e->n == n && e->labels == labels &&
           memcmp(e->pcs, pcs, (size_t)n * sizeof *pcs) == 0;
}

void mprof_stk_add(mprof_stk_table *t, const uintptr_t *pcs, int n, uint32_t labels, double v0,
                   double v1)
{
    _Atomic(mprof_stk_entry *) *slots = atomic_load_explicit(&t->slots, memory_order_acquire);
    if (slots == NULL) {
        atomic_fetch_add_explicit(&t->dropped, 1, memory_order_relaxed);
        return;
    }
    if (n < 0)
        n = 0;
    if (n > MPROF_MAX_STACK)
        n = MPROF_MAX_STACK;
    uint64_t h = mprof_hash_words(pcs, n, (uint64_t)n ^ ((uint64_t)labels << 32));
    mprof_stk_entry *fresh = NULL, *e = NULL;
    uint32_t i = (uint32_t)h & t->mask;
    for (uint32_t probe = 0; probe <= t->mask; probe++, i = (i + 1) & t->mask) {
        e = atomic_load_explicit(&slots[i], memory_order_acquire);
        if (e == NULL) {
            if (fresh == NULL) {
                /* Keep a quarter of the slots empty: probe sequences stay
                 * short, and the profile's memory bounded. */
                if (atomic_fetch_add_explicit(&t->used, 1, memory_order_relaxed) >=
                    MPROF_STK_CAPACITY / 4 * 3) {
                    atomic_fetch_sub_explicit(&t->used, 1, memory_order_relaxed);
                    break;
                }
                fresh = mprof_arena_alloc(sizeof *fresh + (size_t)n * sizeof(uintptr_t));
                if (fresh == NULL) {
                    atomic_fetch_sub_explicit(&t->used, 1, memory_order_relaxed);
                    break;
                }
                fresh->hash = h;
                fresh->n = n;
                fresh->labels = labels;
                memcpy(fresh->pcs, pcs, (size_t)n * sizeof *pcs);
            }
            if (atomic_compare_exchange_strong_explicit(&slots[i], &e, fresh,
                                                        memory_order_acq_rel,
                                                        memory_order_acquire)) {
                e = fresh;
                fresh = NULL;
                goto found;
            }
            /* Someone filled the slot first: e is theirs; maybe our stack. */
        }
        if (same_stack(e, h, pcs, n, labels))
            goto found;
    }
    if (fresh != NULL)
        atomic_fetch_sub_explicit(&t->used, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&t->dropped, 1, memory_order_relaxed);
    return;
found:
    /* A prepared entry that lost the race to an identical one stays unused
     * in the arena: rare, and small. */
    if (fresh != NULL)
        atomic_fetch_sub_explicit(&t->used, 1, memory_order_relaxed);
    if (v0 != 0)
        add_double(&e->v[0], v0);
    if (v1 != 0)
        add_double(&e->v[1], v1);
}

mprof_stk_record *mprof_stk_set_push(mprof_stk_set *set)
{
    if (MPROF_GROW(set->recs, set->cap, (uint64_t)set->n + 1) != 0) {
        errno = ENOMEM;
        return NULL;
    }
    mprof_stk_record *r = &set->recs[set->n++];
    memset(r, 0, sizeof *r);
    return r;
}

void mprof_stk_set_free(mprof_stk_set *set)
{
    free(set->recs);
    memset(set, 0, sizeof *set);
}

int mprof_stk_snapshot(mprof_stk_table *t, mprof_stk_set *set)
{
    memset(set, 0, sizeof *set);
    _Atomic(mprof_stk_entry *) *slots = atomic_load_explicit(&t->slots, memory_order_acquire);
    if (slots == NULL)
        return 0;
    for (uint32_t i = 0; i <= t->mask; i++) {
        mprof_stk_entry *e = atomic_load_explicit(&slots[i], memory_order_acquire);
        if (e == NULL)
            continue;
        mprof_stk_record *r = mprof_stk_set_push(set);
        if (r == NULL) {
            mprof_stk_set_free(set);
            errno = ENOMEM;
            return -1;
        }
        r->n = e->n;
        r->labels = e->labels;
        memcpy(r->pcs, e->pcs, (size_t)e->n * sizeof e->pcs[0]);
        r->v[0] = atomic_load_explicit(&e->v[0], memory_order_relaxed);
        r->v[1] = atomic_load_explicit(&e->v[1], memory_order_relaxed);
    }
    return 0;
}

static int compare_records(const void *a, const void *b)
{
    const mprof_stk_record *x = a, *y = b;
    if (x->n != y->n)
        return x->n < y->n ? -1 : 1;
    if (x->labels != y->labels)
        return x->labels < y->labels ? -1 : 1;
    return memcmp(x->pcs, y->pcs, (size_t)x->n * sizeof x->pcs[0]);
}

void mprof_stk_set_sort(mprof_stk_set *set)
{
    if (set->n > 1)
        qsort(set->recs, set->n, sizeof *set->recs, compare_records);
}

const mprof_stk_record *mprof_stk_set_find(const mprof_stk_set *set, const mprof_stk_record *key)
{
    if (set->n == 0)
        return NULL;
    return bsearch(key, set->recs, set->n, sizeof *set->recs, compare_records);
}

/* ----------------------------------------------------------------- text */

/* The offset of pc in its function, when the dynamic symbol table knows
 * the function (Go prints "+0x1d"); 0 otherwise.  Only trusted when the
 * symbol found is the one the symbolizer named: dladdr's nearest exported
 * symbol is not necessarily pc's function. */
static int function_offset(uintptr_t pc, const char *system_name, uintptr_t *off)
{
    Dl_info info;
    if (system_name == NULL || dladdr((void *)pc, &info) == 0 || info.dli_sname == NULL ||
        info.dli_saddr == NULL || strcmp(info.dli_sname, system_name) != 0)
        return 0;
    *off = pc - (uintptr_t)info.dli_saddr;
    return 1;
}

#define MAX_INLINE_FRAMES 16

void mprof_text_legacy_addrs(mprof_text *t, const uintptr_t *pcs, int n)
{
    mprof_text_printf(t, " @");
    for (int i = 0; i < n; i++)
        if (!mprof_is_thread_start_frame(pcs[i])) /* hidden: core.h */
            mprof_text_printf(t, " %#lx", (unsigned long)(pcs[i] + 1));
    mprof_text_printf(t, "\n");
}

void mprof_text_legacy_stack(mprof_text *t, mprof_symbolizer *sym, const uintptr_t *pcs, int n)
{
    for (int i = 0; i < n; i++) {
        uintptr_t pc = pcs[i];
        if (mprof_is_thread_start_frame(pc)) /* hidden: core.h */
            continue;
        mprof_frame frames[MAX_INLINE_FRAMES];
        int nf = sym ? mprof_sym_lookup(sym, pc, frames, MAX_INLINE_FRAMES) : 0;
        if (nf <= 0) {
            mprof_text_printf(t, "#\t%#lx\n", (unsigned long)pc);
            continue;
        }
        for (int f = 0; f < nf; f++) {
            const mprof_frame *fr = &frames[f];
            const char *name = fr->function ? fr->function : fr->system_name;
            char off[32] = "";
            uintptr_t o;
            if (f == nf - 1 && function_offset(pc, fr->system_name, &o))
                snprintf(off, sizeof off, "+%#lx", (unsigned long)o);
            if (fr->file)
                mprof_text_printf(t, "#\t%#lx\t%s%s\t%s:%d\n", (unsigned long)pc,
                                  name ? name : "?", off, fr->file, fr->line);
            else
                mprof_text_printf(t, "#\t%#lx\t%s%s\n", (unsigned long)pc, name ? name : "?",
                                  off);
        }
    }
    mprof_text_printf(t, "\n");
}

void mprof_text_traceback(mprof_text *t, mprof_symbolizer *sym, const uintptr_t *pcs, int n)
{
    for (int i = 0; i < n; i++) {
        uintptr_t pc = pcs[i];
        if (mprof_is_thread_start_frame(pc)) /* hidden: core.h */
            continue;
        mprof_frame frames[MAX_INLINE_FRAMES];
        int nf = sym ? mprof_sym_lookup(sym, pc, frames, MAX_INLINE_FRAMES) : 0;
        if (nf <= 0) {
            /* No symbol: the object and the offset in it, which addr2line
             * or a debugger can resolve later. */
            int m = sym ? mprof_sym_find_mapping(sym, pc) : -1;
            const mprof_mapping *map = m >= 0 ? mprof_sym_mapping(sym, m) : NULL;
            if (map != NULL && map->path[0] != '\0')
                mprof_text_printf(t, "?(...)\n\t%s +%#lx\n", map->path,
                                  (unsigned long)(pc - map->start + map->file_offset));
            else
                mprof_text_printf(t, "?(...)\n\t? pc=%#lx\n", (unsigned long)pc);
            continue;
        }
        for (int f = 0; f < nf; f++) {
            const mprof_frame *fr = &frames[f];
            const char *name = fr->function ? fr->function : fr->system_name;
            mprof_text_printf(t, "%s(...)\n", name ? name : "?");
            char off[32] = "";
            uintptr_t o;
            if (f == nf - 1 && function_offset(pc, fr->system_name, &o))
                snprintf(off, sizeof off, " +%#lx", (unsigned long)o);
            if (fr->file) {
                mprof_text_printf(t, "\t%s:%d%s\n", fr->file, fr->line, off);
            } else {
                int m = mprof_sym_find_mapping(sym, pc);
                const mprof_mapping *map = m >= 0 ? mprof_sym_mapping(sym, m) : NULL;
                mprof_text_printf(t, "\t%s%s\n", map && map->path[0] ? map->path : "?", off);
            }
        }
    }
}

/* ------------------------------------------------------------ writing */

/* ------------------------------------------------------------ profiles */

static int compare_last_value_desc(const void *a, const void *b)
{
    const mprof_stk_record *x = a, *y = b;
    /* v[1] is the delay of a contention record and 0 in a count record,
     * whose count (v[0]) decides then. */
    if (x->v[1] != y->v[1])
        return x->v[1] > y->v[1] ? -1 : 1;
    if (x->v[0] != y->v[0])
        return x->v[0] > y->v[0] ? -1 : 1;
    return 0;
}

void mprof_stk_set_subtract(mprof_stk_set *set, const mprof_stk_set *before)
{
    for (size_t i = 0; i < set->n; i++) {
        const mprof_stk_record *b = mprof_stk_set_find(before, &set->recs[i]);
        if (b != NULL) {
            set->recs[i].v[0] -= b->v[0];
            set->recs[i].v[1] -= b->v[1];
        }
    }
}

static int64_t round_value(double x) { return (int64_t)llround(x); }

/* s in double quotes, as Go's %q would print it for the characters a
 * thread name or a label can hold: a quote, a backslash or a control
 * character (a newline would end the record) is escaped. */
static void text_quoted(mprof_text *t, const char *s)
{
    mprof_text_write(t, "\"", 1);
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            mprof_text_printf(t, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            mprof_text_printf(t, "\\x%02x", c);
        else
            mprof_text_write(t, (const char *)&c, 1);
    }
    mprof_text_write(t, "\"", 1);
}

/* A record's labels in the text forms, as Go prints a goroutine's:
 * # labels: {"thread":"name", "request":"upload"}; nothing without any. */
static void text_labels(mprof_text *t, const mprof_stk_record *r)
{
    mprof_label label[1 + MPROF_LABEL_MAX];
    int nl = 0;
    if (r->label != NULL)
        label[nl++] = (mprof_label){.key = "thread", .str = r->label};
    nl = mprof_labels_append(label, nl, r->labels);
    for (int i = 0; i < nl; i++) {
        mprof_text_printf(t, "%s", i == 0 ? "# labels: {" : ", ");
        text_quoted(t, label[i].key);
        mprof_text_write(t, ":", 1);
        text_quoted(t, label[i].str);
    }
    if (nl > 0)
        mprof_text_write(t, "}\n", 2);
}

int mprof_stk_write(int fd, int debug, const mprof_stk_profile *desc, mprof_stk_set *set)
{
    if (set->n > 1)
        qsort(set->recs, set->n, sizeof *set->recs, compare_last_value_desc);
    if (debug <= 0) {
        mprof_pb *pb = mprof_pb_new(desc->types, desc->nvalues, desc->period_type,
                                    desc->period_unit, desc->period);
        if (pb == NULL) {
            errno = ENOMEM;
            return -1;
        }
        mprof_pb_set_time(pb, desc->time_ns, desc->duration_ns);
        if (desc->comment != NULL)
            mprof_pb_add_comment(pb, desc->comment);
        for (size_t i = 0; i < set->n; i++) {
            const mprof_stk_record *r = &set->recs[i];
            int64_t values[2] = {round_value(r->v[0]), round_value(r->v[1])};
            if (values[0] == 0 && (desc->nvalues < 2 || values[1] == 0))
                continue;
            mprof_label label[1 + MPROF_LABEL_MAX];
            int nl = 0;
            if (r->label != NULL)
                label[nl++] = (mprof_label){.key = "thread", .str = r->label};
            nl = mprof_labels_append(label, nl, r->labels);
            mprof_pb_add_sample(pb, r->pcs, r->n, values, label, nl);
        }
        int rc = mprof_pb_write(pb, fd);
        int saved = errno;
        mprof_pb_free(pb);
        errno = saved;
        return rc;
    }

    mprof_text t;
    mprof_text_fd(&t, fd);
    if (desc->legacy_name != NULL) {
        /* Go's writeProfileInternal text: cycles are nanoseconds here. */
        mprof_text_printf(&t, "--- %s:\ncycles/second=1000000000\n", desc->legacy_name);
        if (desc->sampling_period > 0)
            mprof_text_printf(&t, "sampling period=%ld\n", desc->sampling_period);
    } else {
        double total = 0;
        for (size_t i = 0; i < set->n; i++)
            total += set->recs[i].v[0];
        mprof_text_printf(&t, "%s profile: total %lld\n", desc->name,
                          (long long)round_value(total));
    }
    mprof_symbolizer *sym = mprof_sym_open();
    for (size_t i = 0; i < set->n; i++) {
        const mprof_stk_record *r = &set->recs[i];
        int64_t count = round_value(r->v[0]), delay = round_value(r->v[1]);
        if (count == 0 && (desc->nvalues < 2 || delay == 0))
            continue;
        if (desc->legacy_name != NULL)
            mprof_text_printf(&t, "%lld %lld", (long long)delay, (long long)count);
        else
            mprof_text_printf(&t, "%lld", (long long)count);
        mprof_text_legacy_addrs(&t, r->pcs, r->n);
        text_labels(&t, r);
        mprof_text_legacy_stack(&t, sym, r->pcs, r->n);
    }
    if (desc->comment != NULL)
        mprof_text_printf(&t, "# %s\n", desc->comment);
    if (sym != NULL)
        mprof_sym_close(sym);
    return (int)mprof_text_finish(&t);
}

mprof_stk_set *mprof_stk_snapshot_sorted(mprof_stk_table *t)
{
    mprof_stk_set *set = calloc(1, sizeof *set);
    if (set == NULL)
        return NULL;
    if (mprof_stk_snapshot(t, set) != 0) {
        free(set);
        errno = ENOMEM;
        return NULL;
    }
    mprof_stk_set_sort(set);
    return set;
}

void mprof_stk_snapshot_free(void *snapshot)
{
    mprof_stk_set *set = snapshot;
    if (set != NULL) {
        mprof_stk_set_free(set);
        free(set);
    }
}
