/*
 * Heap dumps: the whole state of the heap profiler in one file, after Go's
 * runtime/debug.WriteHeapDump (Go's heap dump format: TagMemProf for every bucket,
 * TagAllocSample for every sampled object still alive).
 *
 * A heap profile answers "which stacks hold memory"; a dump also answers
 * "which objects": the address and size of every sampled block still
 * allocated, and the bucket (stack) that allocated it, next to the process'
 * memory statistics.  `mprof dump FILE` prints it and converts it to a pprof
 * profile.  The format is documented in docs/heap-dump.md; keep the two in
 * step (and bump MPROF_DUMP_VERSION only when a record's meaning changes: new
 * fields go at the end of a record, new records get new tags, and readers
 * skip both).
 *
 * Unlike Go's, the program is not stopped while the dump is taken.  The
 * live blocks are copied first, then the buckets, so every block's bucket is
 * in the dump; blocks allocated or freed meanwhile may or may not be.  For a
 * program whose frees are explicit the bucket counts are the real-time
 * profile, as mprof_write_heap_profile writes it at the same moment; for a
 * garbage-collected runtime they are the profile published at the last mark
 * termination (Go's three-cycle memRecord accounting), while the live blocks are those of the moment.
 *
 * Cold path: everything runs with the profiler guard held.
 */
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shared/hash.h"
#include "shared/hash_index.h"
#include "core/os.h"
#include "profiles/hooks.h"
#include "shared/bytebuf.h"
#include "shared/heap_dump_format.h"
#include "symbolize/symbolize.h"
#include "profiles/registry.h"
#include "heap/sampler.h"

/* Defined in symbolize.c; declared here as pprof_builder.c does. */
MPROF_HIDDEN int mprof_sym_mapping_symbolized(mprof_symbolizer *s, int i);



#define MAX_INLINE 16
#define FLUSH_BYTES (64 * 1024)

/* ------------------------------------------------------------ encoding */

/* IEEE 754 binary64, little-endian. */
static void db_f64(mprof_bytebuf *b, double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    unsigned char tmp[8];
    for (int i = 0; i < 8; i++)
        tmp[i] = (unsigned char)(u >> (8 * i));
    mprof_bytebuf_append(b, tmp, 8);
}

static void db_str(mprof_bytebuf *b, const char *s)
{
    mprof_bytebuf_lenbytes(b, s, s ? strlen(s) : 0);
}

/* ------------------------------------------------------------- writer */

typedef struct pc_entry {
    uintptr_t pc;
    uint32_t mapping; /* dump mapping id, 0 = none */
    uint32_t first;   /* index into writer.lines */
    uint32_t nlines;
} pc_entry;

typedef struct dline {
    uint32_t function, system_name, file; /* string ids */
    int64_t line, start_line;
} dline;

typedef struct str_entry {
    const char *s; /* points into the symbolizer: valid until it is closed */
    uint32_t id;
} str_entry;

typedef struct writer {
    int fd;
    mprof_bytebuf out; /* encoded, not yet written */
    mprof_bytebuf rec; /* payload of the record being built */
    int io_error;

    mprof_symbolizer *sym;
    uint32_t *map_ids; /* symbolizer mapping index -> dump id */

    /* Strings and pcs seen so far, each found through its index; string
     * ids are positions + 1 (0 = none). */
    str_entry *strs;
    uint32_t strs_cap, nstrs;
    mprof_index str_index;
    pc_entry *pcs;
    uint32_t pcs_cap, npcs;
    mprof_index pc_index;
    dline *lines;
    uint32_t lines_cap, nlines;
    int oom;
} writer;

static int w_flush(writer *w)
{
    if (w->out.oom || w->rec.oom || w->oom) {
        errno = ENOMEM;
        return -1;
    }
    if (w->out.len > 0 && !w->io_error && mprof_write_all(w->fd, w->out.p, w->out.len) != 0)
        w->io_error = errno ? errno : EIO;
    w->out.len = 0;
    if (w->io_error) {
        errno = w->io_error;
        return -1;
    }
    return 0;
}

/* Appends the record built in w->rec: tag, payload length, payload. */
static int w_record(writer *w, enum mprof_dump_tag tag)
{
    mprof_bytebuf_varint(&w->out, (uint64_t)tag);
    mprof_bytebuf_lenbytes(&w->out, w->rec.p, w->rec.len);
    w->rec.len = 0;
    if (w->out.oom || w->rec.oom)
        return w_flush(w);
    return w->out.len >= FLUSH_BYTES ? w_flush(w) : 0;
}

static int str_eq(const void *ctx, uint32_t idx, const void *key)
{
    return strcmp(((const writer *)ctx)->strs[idx].s, (const char *)key) == 0;
}

static int pc_eq(const void *ctx, uint32_t idx, const void *key)
{
    return ((const writer *)ctx)->pcs[idx].pc == *(const uintptr_t *)key;
}

/* String id for s (0 for NULL or ""), writing a String record the first
 * time s is seen. */
static uint32_t w_string(writer *w, const char *s)
{
    if (s == NULL || s[0] == '\0' || w->oom)
        return 0;
    mprof_index_slot *slot =
        mprof_index_find(&w->str_index, (uint32_t)mprof_fnv1a_str(s), str_eq, w, s);
    if (slot != NULL && slot->idx1 != 0)
        return w->strs[slot->idx1 - 1].id;
    if (slot == NULL || MPROF_GROW(w->strs, w->strs_cap, w->nstrs + 1) != 0) {
        w->oom = 1;
        return 0;
    }
    uint32_t id = w->nstrs + 1;
    w->strs[w->nstrs] = (str_entry){.s = s, .id = id};
    mprof_index_added(&w->str_index, slot, w->nstrs++);
    /* The String record goes out before the record that uses it, which is
     * still being built in w->rec: encode it straight into w->out. */
    mprof_bytebuf tmp = {0};
    mprof_bytebuf_varint(&tmp, id);
    db_str(&tmp, s);
    mprof_bytebuf_varint(&w->out, TAG_STRING);
    mprof_bytebuf_lenbytes(&w->out, tmp.p, tmp.len);
    if (tmp.oom)
        w->oom = 1;
    mprof_bytebuf_free(&tmp);
    return id;
}

static uint64_t hash_pc(uintptr_t pc) { return mprof_hash_pointer(pc) >> 20; }

/* Symbolizes pc once per dump: buckets share most of their frames. */
static const pc_entry *w_pc(writer *w, uintptr_t pc)
{
    static const pc_entry bare = {0};
    if (w->oom)
        return &bare;
    mprof_index_slot *slot =
        mprof_index_find(&w->pc_index, (uint32_t)hash_pc(pc), pc_eq, w, &pc);
    if (slot == NULL) {
        w->oom = 1;
        return &bare;
    }
    if (slot->idx1 != 0)
        return &w->pcs[slot->idx1 - 1];

    pc_entry e = {.pc = pc, .first = w->nlines};
    int mi = mprof_sym_find_mapping(w->sym, pc);
    e.mapping = mi >= 0 && w->map_ids != NULL ? w->map_ids[mi] : 0;
    mprof_frame frames[MAX_INLINE];
    int nf = mprof_sym_lookup(w->sym, pc, frames, MAX_INLINE);
    for (int f = 0; f < nf; f++) {
        if (frames[f].function == NULL && frames[f].system_name == NULL)
            continue;
        if (MPROF_GROW(w->lines, w->lines_cap, w->nlines + 1) != 0) {
            w->oom = 1;
            return &bare;
        }
        /* As the pprof writer does: a missing demangled name is the symbol
         * name, and the other way round. */
        const char *name = frames[f].function ? frames[f].function : frames[f].system_name;
        const char *sys = frames[f].system_name ? frames[f].system_name : frames[f].function;
        dline *l = &w->lines[w->nlines++];
        l->function = w_string(w, name);
        l->system_name = w_string(w, sys);
        l->file = w_string(w, frames[f].file);
        l->line = frames[f].line > 0 ? frames[f].line : 0;
        l->start_line = frames[f].start_line > 0 ? frames[f].start_line : 0;
        e.nlines++;
    }
    /* No find on pc_index since slot was found (w_string uses its own). */
    if (MPROF_GROW(w->pcs, w->pcs_cap, w->npcs + 1) != 0) {
        w->oom = 1;
        return &bare;
    }
    w->pcs[w->npcs] = e;
    mprof_index_added(&w->pc_index, slot, w->npcs);
    return &w->pcs[w->npcs++];
}

/* --------------------------------------------------------- collection */

typedef struct live_copy {
    uintptr_t addr;
    size_t size;
    double weight;
    const uintptr_t *stack; /* the bucket's, permanent */
    int nstack;
    size_t size_class;
    uint32_t bucket; /* dump bucket id */
} live_copy;

typedef struct collection {
    live_copy *live;
    size_t nlive, live_cap;
    mprof_mem_record *recs;
    size_t nrecs, recs_cap;
    int oom;
} collection;

static void collect_live(const mprof_live_block *blk, const uintptr_t *stack, int nstack,
                         size_t size_class, void *arg)
{
    collection *c = arg;
    if (c->oom)
        return;
    if (c->nlive == c->live_cap) {
        size_t ncap = c->live_cap ? c->live_cap * 2 : 256;
        live_copy *n = realloc(c->live, ncap * sizeof *n);
        if (n == NULL) {
            c->oom = 1;
            return;
        }
        c->live = n;
        c->live_cap = ncap;
    }
    c->live[c->nlive++] = (live_copy){
        .addr = blk->addr,
        .size = blk->size,
        .weight = blk->weight,
        .stack = stack,
        .nstack = nstack,
        .size_class = size_class,
    };
}

static int add_record(collection *c, const mprof_mem_record *r)
{
    if (c->nrecs == c->recs_cap) {
        size_t ncap = c->recs_cap ? c->recs_cap * 2 : 64;
        mprof_mem_record *n = realloc(c->recs, ncap * sizeof *n);
        if (n == NULL) {
            c->oom = 1;
            return -1;
        }
        c->recs = n;
        c->recs_cap = ncap;
    }
    c->recs[c->nrecs++] = *r;
    return 0;
}

/* The dump format has no labels: buckets that differ only by their label
 * set are listed as separate records with the same stack. */
static void collect_bucket(const mprof_mem_record *r, uint32_t labels, void *arg)
{
    (void)labels;
    collection *c = arg;
    if (!c->oom)
        (void)add_record(c, r);
}

/*
 * Gives every live block the id of its bucket (1 + index in c->recs).
 * Buckets are keyed by (stack, size class) in the sampler, so the match is
 * exact.  Every block's bucket existed before the block entered the live
 * table, and the live table was copied before the buckets, so a miss is
 * not expected; should one happen, the block gets a bucket of its own with
 * zero counts rather than a dangling id.
 */
static int match_buckets(collection *c)
{
    size_t cap = 64;
    while (cap < (c->nrecs + c->nlive) * 2)
        cap *= 2;
    uint32_t *tab = calloc(cap, sizeof *tab); /* 1 + index into recs, 0 empty */
    if (tab == NULL)
        return -1;
    size_t mask = cap - 1;
    for (size_t i = 0; i < c->nrecs; i++) {
        const mprof_mem_record *r = &c->recs[i];
        size_t j = mprof_hash_words(r->stack, r->nstack, r->size) & mask;
        while (tab[j] != 0)
            j = (j + 1) & mask;
        tab[j] = (uint32_t)(i + 1);
    }
    for (size_t k = 0; k < c->nlive; k++) {
        live_copy *l = &c->live[k];
        size_t j = mprof_hash_words(l->stack, l->nstack, l->size_class) & mask;
        uint32_t found = 0;
        for (; tab[j] != 0; j = (j + 1) & mask) {
            const mprof_mem_record *r = &c->recs[tab[j] - 1];
            if (r->size == l->size_class && r->nstack == l->nstack &&
                (l->nstack == 0 ||
                 memcmp(r->stack, l->stack, (size_t)l->nstack * sizeof *l->stack) == 0)) {
                found = tab[j];
                break;
            }
        }
        if (found == 0) {
            mprof_mem_record r;
            memset(&r, 0, sizeof r);
            r.size = l->size_class;
            r.nstack = l->nstack > MPROF_MAX_STACK ? MPROF_MAX_STACK : l->nstack;
            if (r.nstack > 0)
                memcpy(r.stack, l->stack, (size_t)r.nstack * sizeof r.stack[0]);
            if (add_record(c, &r) != 0) {
                free(tab);
                return -1;
            }
            found = (uint32_t)c->nrecs;
            /* tab is sized for every record: insert the new one too. */
            while (tab[j] != 0)
                j = (j + 1) & mask;
            tab[j] = found;
        }
        l->bucket = found;
    }
    free(tab);
    return 0;
}

/* ----------------------------------------------------- memory statistics */

typedef struct memstats {
    unsigned present;
    uint64_t malloc_arena, malloc_mmap, malloc_mmap_count, malloc_inuse, malloc_free,
        malloc_keepcost;
    uint64_t vm_size, vm_rss, vm_hwm, vm_data;
    mprof_stats prof;
} memstats;

/* Reads "Name:   1234 kB" lines of /proc/self/status; 0 on success. */
static int read_proc_status(memstats *m)
{
    FILE *f = fopen("/proc/self/status", "re");
    if (f == NULL)
        return -1;
    char line[256];
    int found = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        static const struct {
            const char *name;
            size_t off;
        } fields[] = {
            {"VmSize:", offsetof(memstats, vm_size)},
            {"VmRSS:", offsetof(memstats, vm_rss)},
            {"VmHWM:", offsetof(memstats, vm_hwm)},
            {"VmData:", offsetof(memstats, vm_data)},
        };
        for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
            size_t n = strlen(fields[i].name);
            if (strncmp(line, fields[i].name, n) != 0)
                continue;
            unsigned long long kb;
            if (sscanf(line + n, "%llu", &kb) == 1) {
                *(uint64_t *)((char *)m + fields[i].off) = (uint64_t)kb * 1024;
                found++;
            }
        }
    }
    fclose(f);
    return found > 0 ? 0 : -1;
}

static void read_memstats(memstats *m)
{
    memset(m, 0, sizeof *m);
    /* glibc's own view of its heap, kept only when glibc's malloc is the
     * allocator: with jemalloc or tcmalloc behind the interposer it
     * describes glibc's idle heap ("in use 0 B"), which read as wrong. */
    if (atomic_load_explicit(&mprof_allocator_glibc, memory_order_relaxed) != 0) {
        struct mallinfo2 mi = mallinfo2();
        m->malloc_arena = mi.arena;
        m->malloc_mmap = mi.hblkhd;
        m->malloc_mmap_count = mi.hblks;
        m->malloc_inuse = mi.uordblks;
        m->malloc_free = mi.fordblks;
        m->malloc_keepcost = mi.keepcost;
        m->present |= MPROF_DUMP_STATS_MALLOC;
    }
    if (read_proc_status(m) == 0)
        m->present |= MPROF_DUMP_STATS_PROC;
    mprof_get_stats(&m->prof);
}

/* ------------------------------------------------------------ the dump */

static void put_header(writer *w)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    long rate = mprof_get_rate();
    mprof_bytebuf_varint(&w->rec, (uint64_t)getpid());
    mprof_bytebuf_varint(&w->rec, (uint64_t)mprof_wall_ns());
    mprof_bytebuf_varint(&w->rec, rate > 0 ? (uint64_t)rate : 0);
    mprof_bytebuf_varint(&w->rec, sizeof(void *));
    db_str(&w->rec, MPROF_VERSION);
    db_str(&w->rec, exe);
}

static void put_memstats(writer *w, const memstats *m)
{
    mprof_bytebuf *b = &w->rec;
    mprof_bytebuf_varint(b, m->present);
    mprof_bytebuf_varint(b, m->malloc_arena);
    mprof_bytebuf_varint(b, m->malloc_mmap);
    mprof_bytebuf_varint(b, m->malloc_mmap_count);
    mprof_bytebuf_varint(b, m->malloc_inuse);
    mprof_bytebuf_varint(b, m->malloc_free);
    mprof_bytebuf_varint(b, m->malloc_keepcost);
    mprof_bytebuf_varint(b, m->vm_size);
    mprof_bytebuf_varint(b, m->vm_rss);
    mprof_bytebuf_varint(b, m->vm_hwm);
    mprof_bytebuf_varint(b, m->vm_data);
    mprof_bytebuf_varint(b, m->prof.profiler_bytes);
    mprof_bytebuf_varint(b, m->prof.buckets);
    mprof_bytebuf_varint(b, m->prof.live_samples);
    mprof_bytebuf_varint(b, m->prof.samples_taken);
}

static void strip_deleted(char *path)
{
    static const char deleted[] = " (deleted)";
    size_t n = strlen(path), dl = sizeof deleted - 1;
    if (n >= dl && strcmp(path + n - dl, deleted) == 0)
        path[n - dl] = '\0';
}

static int put_mapping(writer *w, int mi, uint32_t id)
{
    const mprof_mapping *m = mprof_sym_mapping(w->sym, mi);
    uint32_t path = w_string(w, m->path);
    uint32_t build_id = w_string(w, m->build_id);
    mprof_bytebuf_varint(&w->rec, id);
    mprof_bytebuf_varint(&w->rec, m->start);
    mprof_bytebuf_varint(&w->rec, m->limit);
    mprof_bytebuf_varint(&w->rec, m->file_offset);
    mprof_bytebuf_varint(&w->rec, path);
    mprof_bytebuf_varint(&w->rec, build_id);
    mprof_bytebuf_varint(&w->rec, mprof_sym_mapping_symbolized(w->sym, mi) ? MPROF_DUMP_MAPPING_HAS_SYMBOLS : 0);
    w->map_ids[mi] = id;
    return w_record(w, TAG_MAPPING);
}

/* Every executable mapping, the main executable first: pprof takes the
 * first mapping of a profile as the main binary, and `mprof dump --pprof`
 * keeps the order. */
static int put_mappings(writer *w)
{
    int n = mprof_sym_mapping_count(w->sym);
    if (n <= 0)
        return 0;
    w->map_ids = calloc((size_t)n, sizeof *w->map_ids);
    if (w->map_ids == NULL) {
        errno = ENOMEM;
        return -1;
    }
    uint32_t next = 1;
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) {
        exe[len] = '\0';
        strip_deleted(exe);
        for (int i = 0; i < n; i++) {
            const mprof_mapping *m = mprof_sym_mapping(w->sym, i);
            char path[PATH_MAX];
            snprintf(path, sizeof path, "%s", m->path);
            strip_deleted(path);
            if (strcmp(path, exe) == 0) {
                if (put_mapping(w, i, next++) != 0)
                    return -1;
                break;
            }
        }
    }
    for (int i = 0; i < n; i++)
        if (w->map_ids[i] == 0 && put_mapping(w, i, next++) != 0)
            return -1;
    return 0;
}

static int put_bucket(writer *w, const mprof_mem_record *r, uint32_t id)
{
    /* Frames first: their strings must be written before this record,
     * which refers to them.  Copies, since the table may grow. */
    pc_entry frames[MPROF_MAX_STACK];
    uintptr_t pcs[MPROF_MAX_STACK];
    int max = r->nstack > MPROF_MAX_STACK ? MPROF_MAX_STACK : r->nstack, n = 0;
    for (int i = 0; i < max; i++) {
        if (mprof_is_thread_start_frame(r->stack[i])) /* hidden: core.h */
            continue;
        pcs[n] = r->stack[i];
        frames[n++] = *w_pc(w, r->stack[i]);
    }
    mprof_bytebuf *b = &w->rec;
    mprof_bytebuf_varint(b, id);
    mprof_bytebuf_varint(b, r->size);
    mprof_bytebuf_varint(b, (uint64_t)r->alloc_objects);
    mprof_bytebuf_varint(b, (uint64_t)r->free_objects);
    mprof_bytebuf_varint(b, (uint64_t)r->alloc_bytes);
    mprof_bytebuf_varint(b, (uint64_t)r->free_bytes);
    db_f64(b, r->est_alloc_objects);
    db_f64(b, r->est_free_objects);
    db_f64(b, r->est_alloc_bytes);
    db_f64(b, r->est_free_bytes);
    mprof_bytebuf_varint(b, (uint64_t)n);
    for (int i = 0; i < n; i++) {
        const pc_entry *e = &frames[i];
        mprof_bytebuf_varint(b, pcs[i]);
        mprof_bytebuf_varint(b, e->mapping);
        mprof_bytebuf_varint(b, e->nlines);
        for (uint32_t k = 0; k < e->nlines; k++) {
            const dline *l = &w->lines[e->first + k];
            mprof_bytebuf_varint(b, l->function);
            mprof_bytebuf_varint(b, l->system_name);
            mprof_bytebuf_varint(b, l->file);
            mprof_bytebuf_varint(b, (uint64_t)l->line);
            mprof_bytebuf_varint(b, (uint64_t)l->start_line);
        }
    }
    return w_record(w, TAG_MEMPROF);
}

static int write_dump(int fd)
{
    collection c;
    memset(&c, 0, sizeof c);
    writer w;
    memset(&w, 0, sizeof w);
    w.fd = fd;
    int rc = -1;

    /* Live blocks before buckets: see match_buckets. */
    if (mprof_live_foreach(collect_live, &c) != 0 || c.oom)
        goto oom;
    if (mprof_heap_snapshot(collect_bucket, &c, 1) != 0 || c.oom)
        goto oom;
    if (match_buckets(&c) != 0)
        goto oom;
    memstats ms;
    read_memstats(&ms);

    mprof_bytebuf_append(&w.out, MPROF_DUMP_MAGIC, MPROF_DUMP_MAGIC_LEN);
    mprof_bytebuf_varint(&w.out, MPROF_DUMP_VERSION);
    put_header(&w);
    if (w_record(&w, TAG_HEADER) != 0)
        goto out;
    put_memstats(&w, &ms);
    if (w_record(&w, TAG_MEMSTATS) != 0)
        goto out;

    w.sym = mprof_sym_open(); /* NULL: bare addresses, still a valid dump */
    if (put_mappings(&w) != 0)
        goto out;
    for (size_t i = 0; i < c.nrecs; i++)
        if (put_bucket(&w, &c.recs[i], (uint32_t)(i + 1)) != 0)
            goto out;
    for (size_t i = 0; i < c.nlive; i++) {
        const live_copy *l = &c.live[i];
        mprof_bytebuf_varint(&w.rec, l->addr);
        mprof_bytebuf_varint(&w.rec, l->size);
        mprof_bytebuf_varint(&w.rec, l->bucket);
        db_f64(&w.rec, l->weight);
        if (w_record(&w, TAG_ALLOC_SAMPLE) != 0)
            goto out;
    }
    if (w_record(&w, TAG_EOF) != 0)
        goto out;
    rc = w_flush(&w);
    goto out;
oom:
    errno = ENOMEM;
out:;
    int saved = errno;
    mprof_sym_close(w.sym);
    free(w.map_ids);
    free(w.strs);
    mprof_index_free(&w.str_index);
    free(w.pcs);
    mprof_index_free(&w.pc_index);
    free(w.lines);
    mprof_bytebuf_free(&w.out);
    mprof_bytebuf_free(&w.rec);
    free(c.live);
    free(c.recs);
    errno = saved;
    return rc;
}

int mprof_write_heap_dump(int fd)
{
    if (fd < 0) {
        errno = EBADF;
        return -1;
    }
    mprof_guard_enter();
    int rc = write_dump(fd);
    mprof_guard_leave();
    return rc;
}

/* ------------------------------------------------------------ triggers */

/* ?debug=N: a short text summary for a browser; the dump itself is binary
 * and read with `mprof dump`. */
static int write_summary(int fd)
{
    memstats m;
    read_memstats(&m);
    char text[2048], malloc_line[256];
    if (m.present & MPROF_DUMP_STATS_MALLOC)
        snprintf(malloc_line, sizeof malloc_line,
                 "glibc malloc (mallinfo2): %llu bytes in use, %llu free, %llu from the OS in "
                 "its arenas, %llu in %llu mmapped blocks",
                 (unsigned long long)m.malloc_inuse, (unsigned long long)m.malloc_free,
                 (unsigned long long)m.malloc_arena, (unsigned long long)m.malloc_mmap,
                 (unsigned long long)m.malloc_mmap_count);
    else
        snprintf(malloc_line, sizeof malloc_line,
                 "malloc: not glibc's (another allocator is behind mprof), so no malloc "
                 "statistics; the process figures below still hold");
    int n = snprintf(
        text, sizeof text,
        "mprof heap dump summary (fetch without ?debug= for the binary dump and read it with\n"
        "`mprof dump FILE`)\n\n"
        "pid %d, sampling rate %ld bytes\n"
        "%s\n"
        "process: VmSize %llu bytes, VmRSS %llu, VmHWM %llu, VmData %llu\n"
        "profiler: %zu buckets, %zu live sampled blocks, %llu samples taken, %zu bytes of its "
        "own memory\n",
        (int)getpid(), mprof_get_rate(), malloc_line,
        (unsigned long long)m.vm_size, (unsigned long long)m.vm_rss,
        (unsigned long long)m.vm_hwm, (unsigned long long)m.vm_data, m.prof.buckets,
        m.prof.live_samples, (unsigned long long)m.prof.samples_taken, m.prof.profiler_bytes);
    if (n < 0)
        return -1;
    return mprof_write_all(fd, text, (size_t)n < sizeof text ? (size_t)n : sizeof text - 1);
}

/* debug=1: the summary alone, as text (the index page links there). */
static int heapdump_write(int fd, const mprof_profile_params *params,
                          const mprof_profile_base *base)
{
    (void)base; /* no delta form */
    if (params != NULL && params->debug != 0)
        return write_summary(fd);
    return mprof_write_heap_dump(fd);
}

static long heapdump_count(void)
{
    mprof_stats st;
    mprof_get_stats(&st);
    return (long)st.live_samples;
}

static const mprof_profile heapdump_profile = {
    .name = "heapdump",
    .description = "A heap dump: memory statistics, every heap-profile bucket and every live "
                   "sampled object with its address (read it with mprof dump FILE)",
    .what = "heap dump",
    .exit_option = MPROF_OPT_HEAPDUMP,
    .flags = MPROF_PROFILE_HEAP_DUMP,
    .count = heapdump_count,
    .write = heapdump_write,
};

void mprof_heap_dump_init(void) { (void)mprof_profile_register(&heapdump_profile); }
