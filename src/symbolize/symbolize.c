/*
 * Symbolizer: turns call-site addresses of this process into function names,
 * source files and lines, with inlined frames, using elfutils' libdwfl.
 *
 * Cold path (profile writing), run with the thread's profiler guard held, so
 * malloc here and inside libdw goes to the real allocator unsampled.
 *
 * Two rules shape it:
 *
 *  - a function is named only when the address lies inside a symbol's
 *    [st_value, st_value + st_size).  Debian ships its libraries stripped to
 *    .dynsym, which lacks every static function: "nearest preceding symbol"
 *    would name an exported neighbour for code that is not it, and a wrong
 *    name misleads more than an address does;
 *
 *  - nothing here may crash the host on odd mappings (deleted files, memfd,
 *    anonymous JIT code, unreadable files).  We only read memory the dynamic
 *    loader vouches for (dl_iterate_phdr) and leave everything else to
 *    libdwfl, which reads files or /proc/self/mem, never raw pointers.
 */
#include <dlfcn.h>
#include <dwarf.h>
#include <elf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shared/hash.h"
#include "shared/hash_index.h"
#include "symbolize/symbolize.h"

/* GNU build ids are 20 bytes (sha1) in practice; the note allows any size,
 * and we keep up to 64 bytes, which covers every hash ld offers. */
#define MAX_BUILD_ID 64

struct sym_mapping {
    mprof_mapping pub;                     /* what callers see */
    uint64_t key;                          /* of address, offset, inode, path; 0 if anonymous */
    char *path;                            /* owned; pub.path points here */
    char build_id[2 * MAX_BUILD_ID + 1];   /* pub.build_id points here */
    int has_symbols;                       /* -1 unknown, 0 no, 1 yes */
};

/* Cache of demangled names, keyed by the mangled string's content. */
struct demangle_entry {
    char *mangled;   /* owned copy */
    char *demangled; /* owned, from __cxa_demangle; NULL when it failed */
};

/* A module's sized symbols sorted by address, built on first use.
 * libdwfl's dwfl_module_addrinfo scans the whole table on every call
 * (0.2 ms per lookup in libc's 10,000 symbols): a profile's thousands of pcs
 * want a binary search. */
struct sym_entry {
    uintptr_t start, end; /* run-time addresses, [start, end) */
    uintptr_t max_end;    /* largest end among entries 0..this one */
    const char *name;     /* in the module's ELF string table */
    int rank;             /* binding preference at equal start */
};

struct module_syms {
    Dwfl_Module *mod;
    struct sym_entry *e;
    size_t n;
};

/* A compilation unit's subprograms by address range, built on first use.
 * dwarf_getscopes walks the unit's DIE tree from the root for every pc,
 * which costs O(functions in the unit) per lookup: ruinous for amalgamated
 * sources (sqlite3.c is one unit) and large C++ files.  With this index a
 * lookup is a binary search plus a walk inside one function. */
struct cu_func {
    Dwarf_Addr lo, hi; /* DWARF (unbiased) addresses, [lo, hi) */
    size_t order;      /* position in the DIE tree, to keep sorting stable */
    Dwarf_Die die;
};

struct cu_index {
    const void *key; /* the unit DIE's address in .debug_info; NULL = free */
    struct cu_func *f;
    size_t n;
};

struct sym_cache;

struct mprof_symbolizer {
    Dwfl *dwfl;      /* made on the first lookup the cache cannot answer */
    int dwfl_tried;  /* dwfl_begin was attempted (it may have failed) */
    struct sym_cache *cache; /* shared, referenced until mprof_sym_close */

    struct module_syms *mods;
    size_t nmods, mods_cap;
    struct cu_index *cus; /* open addressing, power-of-two size */
    size_t cus_cap, cus_count;
    struct sym_mapping *maps; /* executable mappings, sorted by start */
    int nmaps;

    struct demangle_entry *dm; /* open addressing, power-of-two size */
    size_t dm_cap, dm_count;
};

/* ------------------------------------------------------------ demangling */

typedef char *(*cxa_demangle_fn)(const char *mangled, char *buf, size_t *len, int *status);

static cxa_demangle_fn cxa_demangle;
static pthread_once_t cxa_demangle_once = PTHREAD_ONCE_INIT;

static void find_cxa_demangle(void)
{
    /* The profiler is plain C and must not drag libstdc++ into C programs.
     * A C++ host has it loaded already; otherwise load it privately, once,
     * and never unload it (it registers atexit handlers and TLS). */
    void *f = dlsym(RTLD_DEFAULT, "__cxa_demangle");
    if (f == NULL) {
        void *h = dlopen("libstdc++.so.6", RTLD_LAZY | RTLD_LOCAL);
        if (h != NULL)
            f = dlsym(h, "__cxa_demangle");
    }
    cxa_demangle = (cxa_demangle_fn)f;
}

static int dm_grow(mprof_symbolizer *s)
{
    size_t ncap = s->dm_cap ? s->dm_cap * 2 : 256;
    struct demangle_entry *n = calloc(ncap, sizeof *n);
    if (n == NULL)
        return -1;
    for (size_t i = 0; i < s->dm_cap; i++) {
        if (s->dm[i].mangled == NULL)
            continue;
        size_t j = mprof_fnv1a_str(s->dm[i].mangled) & (ncap - 1);
        while (n[j].mangled != NULL)
            j = (j + 1) & (ncap - 1);
        n[j] = s->dm[i];
    }
    free(s->dm);
    s->dm = n;
    s->dm_cap = ncap;
    return 0;
}

/* Demangled form of a C++ symbol, or NULL when it is not one (or the
 * demangler is unavailable).  The string lives until mprof_sym_close. */
static const char *demangle(mprof_symbolizer *s, const char *mangled)
{
    if (mangled == NULL || mangled[0] != '_' || mangled[1] != 'Z')
        return NULL;
    if (s->dm_count * 2 >= s->dm_cap && dm_grow(s) != 0)
        return NULL;
    size_t j = mprof_fnv1a_str(mangled) & (s->dm_cap - 1);
    while (s->dm[j].mangled != NULL) {
        if (strcmp(s->dm[j].mangled, mangled) == 0)
            return s->dm[j].demangled;
        j = (j + 1) & (s->dm_cap - 1);
    }
    pthread_once(&cxa_demangle_once, find_cxa_demangle);
    char *out = NULL;
    if (cxa_demangle != NULL) {
        int status = -1;
        out = cxa_demangle(mangled, NULL, NULL, &status);
        if (status != 0) {
            free(out);
            out = NULL;
        }
    }
    char *key = strdup(mangled);
    if (key == NULL) {
        free(out);
        return NULL;
    }
    s->dm[j].mangled = key;
    s->dm[j].demangled = out;
    s->dm_count++;
    return out;
}

/* ------------------------------------------------------------- mappings */

static void hex_build_id(char *out, const unsigned char *bits, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (n > MAX_BUILD_ID)
        n = MAX_BUILD_ID;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[bits[i] >> 4];
        out[2 * i + 1] = hex[bits[i] & 15];
    }
    out[2 * n] = '\0';
}

/* Parses one /proc/self/maps line; returns 1 for an executable mapping. */
static int parse_maps_line(char *line, uintptr_t *start, uintptr_t *limit, uint64_t *offset,
                           uint64_t *inode, char **path)
{
    char *p = line, *end;
    *start = (uintptr_t)strtoull(p, &end, 16);
    if (end == p || *end != '-')
        return 0;
    p = end + 1;
    *limit = (uintptr_t)strtoull(p, &end, 16);
    if (end == p || *end != ' ')
        return 0;
    p = end + 1;
    /* perms: "r-xp" */
    if (strlen(p) < 5 || p[4] != ' ')
        return 0;
    int exec = p[2] == 'x';
    p += 5;
    *offset = strtoull(p, &end, 16);
    if (end == p)
        return 0;
    p = end;
    /* dev, then inode (kept: a library rebuilt in place of another at the
     * same path and address is another file) */
    while (*p == ' ')
        p++;
    while (*p != ' ' && *p != '\0' && *p != '\n')
        p++;
    *inode = strtoull(p, &end, 10);
    p = end;
    while (*p == ' ')
        p++;
    /* The rest of the line is the path, which may contain spaces. */
    size_t n = strcspn(p, "\n");
    p[n] = '\0';
    /* The kernel marks unlinked files; the name is still the useful part
     * (and what Go's runtime writes). */
    static const char deleted[] = " (deleted)";
    size_t dl = sizeof deleted - 1;
    if (n >= dl && strcmp(p + n - dl, deleted) == 0)
        p[n - dl] = '\0';
    *path = p;
    return exec && *limit > *start;
}

static int read_maps(mprof_symbolizer *s)
{
    FILE *f = fopen("/proc/self/maps", "re");
    if (f == NULL)
        return -1;
    char *line = NULL;
    size_t linecap = 0;
    int cap = 0, rc = 0;
    while (getline(&line, &linecap, f) > 0) {
        uintptr_t start, limit;
        uint64_t offset, inode = 0;
        char *path;
        if (!parse_maps_line(line, &start, &limit, &offset, &inode, &path))
            continue;
        /* What the cached results depend on (see "result cache"). */
        uint64_t key = 0;
        if (path[0] != '\0') {
            key = mprof_mix64(mprof_fnv1a_str(path) ^ mprof_mix64(inode)) ^
                  mprof_mix64(limit + 0x9e3779b97f4a7c15ull * offset);
            key += key == 0;
        }
        if (s->nmaps == cap) {
            int ncap = cap ? cap * 2 : 64;
            struct sym_mapping *n = realloc(s->maps, (size_t)ncap * sizeof *n);
            if (n == NULL) {
                rc = -1;
                break;
            }
            s->maps = n;
            cap = ncap;
        }
        struct sym_mapping *m = &s->maps[s->nmaps];
        memset(m, 0, sizeof *m);
        m->path = strdup(path);
        if (m->path == NULL) {
            rc = -1;
            break;
        }
        m->key = key;
        m->pub.start = start;
        m->pub.limit = limit;
        m->pub.file_offset = offset;
        m->has_symbols = -1;
        s->nmaps++;
    }
    free(line);
    fclose(f);
    /* Pointers into the array are taken only now that it stops moving. */
    for (int i = 0; i < s->nmaps; i++) {
        s->maps[i].pub.path = s->maps[i].path;
        s->maps[i].pub.build_id = s->maps[i].build_id;
    }
    return rc;
}

static int find_mapping(const mprof_symbolizer *s, uintptr_t pc)
{
    int lo = 0, hi = s->nmaps;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (pc < s->maps[mid].pub.start)
            hi = mid;
        else if (pc >= s->maps[mid].pub.limit)
            lo = mid + 1;
        else
            return mid;
    }
    return -1;
}

/* Finds the NT_GNU_BUILD_ID note in a PT_NOTE segment of a loaded object. */
static int note_build_id(const unsigned char *p, size_t size, size_t align,
                         const unsigned char **bits, size_t *nbits)
{
    size_t off = 0;
    while (size - off >= sizeof(ElfW(Nhdr))) {
        ElfW(Nhdr) nh;
        memcpy(&nh, p + off, sizeof nh);
        size_t name_off = off + sizeof nh;
        size_t desc_off = name_off + ((nh.n_namesz + align - 1) & ~(align - 1));
        size_t next = desc_off + ((nh.n_descsz + align - 1) & ~(align - 1));
        if (desc_off > size || nh.n_descsz > size - desc_off)
            return 0;
        if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
            memcmp(p + name_off, "GNU", 4) == 0 && nh.n_descsz > 0) {
            *bits = p + desc_off;
            *nbits = nh.n_descsz;
            return 1;
        }
        if (next <= off)
            return 0;
        off = next;
    }
    return 0;
}

static int phdr_build_ids(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    mprof_symbolizer *s = arg;
    const unsigned char *bits = NULL;
    size_t nbits = 0;
    /* The notes are read in place: PT_NOTE lies in the object's first
     * loaded segment, which the loader mapped readable. */
    for (int i = 0; i < info->dlpi_phnum && bits == NULL; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE)
            continue;
        size_t align = ph->p_align == 8 ? 8 : 4;
        note_build_id((const unsigned char *)(info->dlpi_addr + ph->p_vaddr), ph->p_filesz,
                      align, &bits, &nbits);
    }
    if (bits == NULL)
        return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
            continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
        for (int m = 0; m < s->nmaps; m++) {
            struct sym_mapping *sm = &s->maps[m];
            if (sm->pub.start < hi && lo < sm->pub.limit && sm->build_id[0] == '\0')
                hex_build_id(sm->build_id, bits, nbits);
        }
    }
    return 0;
}

/* ------------------------------------------------------------ result cache */

/*
 * What lookups found, kept for the life of the process, so that a profile
 * written again (every scrape of a live server, every periodic snapshot)
 * costs no DWARF work for the addresses already seen, and does not even
 * open libdwfl when it has seen them all.  Opening libdwfl and decompressing
 * a library's debug sections is most of a first write's cost (tens of ms
 * for libc's), and a Dwfl kept open would hold file descriptors in the
 * host, which daemons close behind our back; results hold neither.
 *
 * A cache is valid while the file-backed executable mappings it was made
 * for are all still there, unchanged (address, offset, inode and path).
 * mprof_sym_open compares: when one was unmapped or replaced (dlclose, a
 * library loaded again elsewhere), it starts a new cache, and the old one
 * is freed when its last symbolizer closes (the strings a symbolizer
 * returned must live until then).  When mappings were only added (dlopen,
 * or the demangler's libstdc++ that the first write loads), the cache
 * stays and forgets only its "nothing here" answers, which a new mapping
 * may contradict.  Anonymous code is in no module and changes nothing.
 *
 * Invariants: cache_lock guards `current`, every cache's refs and contents;
 * it is held for a probe or an insert, never across libdwfl work, and never
 * by the allocation path.  A cache's strings and frames never move or die
 * while refs > 0.  Memory is bounded: past CACHE_MAX_PCS addresses or
 * CACHE_MAX_BYTES, nothing more is added (lookups then cost what they did
 * without a cache).
 */
#define CACHE_MAX_PCS (1u << 17)
#define CACHE_MAX_BYTES ((size_t)32 << 20)
#define CACHE_MAX_FRAMES 64 /* inline depth kept per address */

/* The pc table is its own rather than shared/hash_index.h's: it forgets
 * entries (cache_drop_negatives), which that index, add-only, does not. */
struct cache_slot {
    uintptr_t pc;   /* 0: free */
    uint32_t first; /* index in frames */
    uint32_t n;     /* frames at pc; 0 = known to have none */
};

struct str_chunk {
    struct str_chunk *next;
    size_t used, cap;
    char data[];
};

struct map_info { /* what needs libdwfl to learn about a mapping */
    uintptr_t start;
    signed char has_symbols;        /* -1 unknown */
    signed char build_id_known;
    char build_id[2 * MAX_BUILD_ID + 1];
};

struct cache_map { /* a file-backed executable mapping the cache relies on */
    uintptr_t start;
    uint64_t key;
};

struct sym_cache {
    struct cache_map *valid_for; /* sorted by start */
    size_t nvalid;
    int refs;
    struct cache_slot *slots; /* open addressing, power-of-two size */
    size_t cap, count;
    mprof_frame *frames;
    size_t nframes, frames_cap;
    const char **strs; /* interned strings, indexed by str_index */
    uint32_t strs_cap, strs_count;
    mprof_index str_index;
    struct str_chunk *chunks;
    struct map_info *maps;
    size_t nmaps, maps_cap;
    size_t bytes; /* everything above */
    int full;     /* a bound was reached: no more inserts */
};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sym_cache *current;
/* Whether this thread holds cache_lock (a forked child keeps the lock if
 * its own interrupted frame held it, and makes it anew otherwise). */
static __thread int tls_holds_cache_lock;

static void cache_lock_take(void)
{
    pthread_mutex_lock(&cache_lock);
    tls_holds_cache_lock = 1;
}

static void cache_lock_give(void)
{
    tls_holds_cache_lock = 0;
    pthread_mutex_unlock(&cache_lock);
}

static void cache_free(struct sym_cache *c)
{
    if (c == NULL)
        return;
    while (c->chunks != NULL) {
        struct str_chunk *next = c->chunks->next;
        free(c->chunks);
        c->chunks = next;
    }
    free(c->slots);
    free(c->frames);
    free(c->strs);
    mprof_index_free(&c->str_index);
    free(c->maps);
    free(c->valid_for);
    free(c);
}

/* Whether every mapping c relies on is among s's (both sorted by start);
 * *added: s has others too. */
static int cache_still_valid(const struct sym_cache *c, const mprof_symbolizer *s, int *added)
{
    size_t i = 0, file_backed = 0;
    for (int m = 0; m < s->nmaps; m++) {
        if (s->maps[m].key == 0)
            continue;
        file_backed++;
        if (i < c->nvalid && c->valid_for[i].start == s->maps[m].pub.start &&
            c->valid_for[i].key == s->maps[m].key)
            i++;
        else if (i < c->nvalid && c->valid_for[i].start <= s->maps[m].pub.start)
            return 0; /* c's mapping i is gone or changed */
    }
    *added = file_backed > c->nvalid;
    return i == c->nvalid;
}

/* Forgets c's "no frames" answers (a new mapping may hold those pcs).
 * cache_lock held. */
static void cache_drop_negatives(struct sym_cache *c)
{
    struct cache_slot *ns = calloc(c->cap ? c->cap : 1, sizeof *ns);
    if (ns == NULL) {
        /* Cannot rebuild: forget the addresses altogether. */
        memset(c->slots, 0, c->cap * sizeof *c->slots);
        c->count = 0;
        return;
    }
    size_t kept = 0;
    for (size_t i = 0; i < c->cap; i++) {
        if (c->slots[i].pc == 0 || c->slots[i].n == 0)
            continue;
        size_t j = mprof_mix64(c->slots[i].pc) & (c->cap - 1);
        while (ns[j].pc != 0)
            j = (j + 1) & (c->cap - 1);
        ns[j] = c->slots[i];
        kept++;
    }
    free(c->slots);
    c->slots = ns;
    c->count = kept;
}

/* Records s's file-backed mappings as those c relies on.  0, or -1 out of
 * memory.  cache_lock held. */
static int cache_set_valid_for(struct sym_cache *c, const mprof_symbolizer *s)
{
    struct cache_map *v = malloc(((size_t)s->nmaps + 1) * sizeof *v);
    if (v == NULL)
        return -1;
    size_t n = 0;
    for (int m = 0; m < s->nmaps; m++)
        if (s->maps[m].key != 0)
            v[n++] = (struct cache_map){s->maps[m].pub.start, s->maps[m].key};
    free(c->valid_for);
    c->valid_for = v;
    c->nvalid = n;
    return 0;
}

/* The cache valid for s's mappings, referenced once more; NULL out of
 * memory (s then works without one).  cache_lock held. */
static struct sym_cache *cache_get_locked(const mprof_symbolizer *s)
{
    int added = 0;
    if (current != NULL && !cache_still_valid(current, s, &added)) {
        if (current->refs == 0)
            cache_free(current);
        /* else its last mprof_sym_close frees it */
        current = NULL;
    }
    if (current != NULL && added) {
        if (cache_set_valid_for(current, s) != 0)
            return NULL;
        cache_drop_negatives(current);
    }
    if (current == NULL) {
        struct sym_cache *c = calloc(1, sizeof *c);
        if (c == NULL)
            return NULL;
        if (cache_set_valid_for(c, s) != 0) {
            free(c);
            return NULL;
        }
        current = c;
    }
    current->refs++;
    return current;
}

static void cache_put(struct sym_cache *c)
{
    if (c == NULL)
        return;
    cache_lock_take();
    if (--c->refs == 0 && c != current)
        cache_free(c);
    cache_lock_give();
}

static int str_eq(const void *ctx, uint32_t idx, const void *key)
{
    const struct sym_cache *c = ctx;
    return strcmp(c->strs[idx], key) == 0;
}

/* s interned in c (one copy per distinct string); NULL for NULL or out of
 * room.  cache_lock held. */
static const char *intern(struct sym_cache *c, const char *str)
{
    if (str == NULL)
        return NULL;
    uint32_t h = (uint32_t)mprof_fnv1a_str(str);
    uint32_t old_cap = c->str_index.cap;
    mprof_index_slot *sl = mprof_index_find(&c->str_index, h, str_eq, c, str);
    if (sl == NULL)
        return NULL;
    c->bytes += (size_t)(c->str_index.cap - old_cap) * sizeof *sl;
    if (sl->idx1 != 0)
        return c->strs[sl->idx1 - 1];
    uint32_t old_strs = c->strs_cap;
    if (MPROF_GROW(c->strs, c->strs_cap, (uint64_t)c->strs_count + 1) != 0)
        return NULL;
    c->bytes += (size_t)(c->strs_cap - old_strs) * sizeof *c->strs;
    size_t len = strlen(str) + 1;
    if (c->chunks == NULL || c->chunks->cap - c->chunks->used < len) {
        size_t cap = len > 65536 ? len : 65536;
        struct str_chunk *k = malloc(sizeof *k + cap);
        if (k == NULL)
            return NULL;
        k->next = c->chunks;
        k->used = 0;
        k->cap = cap;
        c->chunks = k;
        c->bytes += sizeof *k + cap;
    }
    char *copy = c->chunks->data + c->chunks->used;
    memcpy(copy, str, len);
    c->chunks->used += len;
    c->strs[c->strs_count] = copy;
    mprof_index_added(&c->str_index, sl, c->strs_count++);
    return copy;
}

/* The slot of pc: its entry, or the free slot where it would go.  NULL when
 * the table is empty.  cache_lock held. */
static struct cache_slot *cache_slot(struct sym_cache *c, uintptr_t pc)
{
    if (c->cap == 0)
        return NULL;
    size_t j = mprof_mix64(pc) & (c->cap - 1);
    while (c->slots[j].pc != 0 && c->slots[j].pc != pc)
        j = (j + 1) & (c->cap - 1);
    return &c->slots[j];
}

/* Copies n frames into out[max] as mprof_sym_lookup returns them: when
 * they do not fit, the physical function (the last) stays last.  Returns
 * the count copied. */
static int copy_frames(mprof_frame *out, int max, const mprof_frame *f, int n)
{
    if (n > max) {
        memcpy(out, f, (size_t)(max - 1) * sizeof *out);
        out[max - 1] = f[n - 1];
        return max;
    }
    memcpy(out, f, (size_t)n * sizeof *out);
    return n;
}

/* Copies the n frames at pc out of the cache as mprof_sym_lookup returns
 * them (the physical function last when n > max); -1 if pc is not cached. */
static int cache_lookup(struct sym_cache *c, uintptr_t pc, mprof_frame *out, int max)
{
    int n = -1;
    cache_lock_take();
    struct cache_slot *sl = cache_slot(c, pc);
    if (sl != NULL && sl->pc == pc) {
        n = copy_frames(out, max, &c->frames[sl->first], (int)sl->n);
    }
    cache_lock_give();
    return n;
}

/* Enters pc's n frames, their strings interned; on success the frames in
 * `f` are rewritten to point at the cache's copies. */
static void cache_insert(struct sym_cache *c, uintptr_t pc, mprof_frame *f, int n)
{
    cache_lock_take();
    if (c->full || c->count >= CACHE_MAX_PCS || c->bytes >= CACHE_MAX_BYTES) {
        c->full = 1;
        goto out;
    }
    if ((c->count + 1) * 2 > c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 4096;
        struct cache_slot *ns = calloc(ncap, sizeof *ns);
        if (ns == NULL)
            goto out;
        for (size_t i = 0; i < c->cap; i++) {
            if (c->slots[i].pc == 0)
                continue;
            size_t j = mprof_mix64(c->slots[i].pc) & (ncap - 1);
            while (ns[j].pc != 0)
                j = (j + 1) & (ncap - 1);
            ns[j] = c->slots[i];
        }
        c->bytes += (ncap - c->cap) * sizeof *ns;
        free(c->slots);
        c->slots = ns;
        c->cap = ncap;
    }
    struct cache_slot *sl = cache_slot(c, pc);
    if (sl->pc == pc)
        goto out; /* another writer got there first */
    if (c->nframes + (size_t)n > c->frames_cap) {
        size_t ncap = c->frames_cap ? c->frames_cap * 2 : 4096;
        while (ncap < c->nframes + (size_t)n)
            ncap *= 2;
        mprof_frame *nf = realloc(c->frames, ncap * sizeof *nf);
        if (nf == NULL)
            goto out;
        c->bytes += (ncap - c->frames_cap) * sizeof *nf;
        c->frames = nf;
        c->frames_cap = ncap;
    }
    mprof_frame copy[CACHE_MAX_FRAMES];
    for (int i = 0; i < n; i++) {
        copy[i] = f[i];
        copy[i].function = intern(c, f[i].function);
        copy[i].system_name = intern(c, f[i].system_name);
        copy[i].file = intern(c, f[i].file);
        if ((f[i].function && !copy[i].function) || (f[i].system_name && !copy[i].system_name) ||
            (f[i].file && !copy[i].file))
            goto out; /* out of memory: leave pc uncached */
    }
    memcpy(&c->frames[c->nframes], copy, (size_t)n * sizeof *copy);
    memcpy(f, copy, (size_t)n * sizeof *copy);
    sl->pc = pc;
    sl->first = (uint32_t)c->nframes;
    sl->n = (uint32_t)n;
    c->nframes += (size_t)n;
    c->count++;
out:
    cache_lock_give();
}

/* The cached facts of the mapping starting at start, entered empty when
 * new; NULL out of memory.  cache_lock held. */
static struct map_info *map_info_locked(struct sym_cache *c, uintptr_t start)
{
    for (size_t i = 0; i < c->nmaps; i++)
        if (c->maps[i].start == start)
            return &c->maps[i];
    if (c->nmaps == c->maps_cap) {
        size_t ncap = c->maps_cap ? c->maps_cap * 2 : 64;
        struct map_info *n = realloc(c->maps, ncap * sizeof *n);
        if (n == NULL)
            return NULL;
        c->bytes += (ncap - c->maps_cap) * sizeof *n;
        c->maps = n;
        c->maps_cap = ncap;
    }
    struct map_info *m = &c->maps[c->nmaps++];
    memset(m, 0, sizeof *m);
    m->start = start;
    m->has_symbols = -1;
    return m;
}

int mprof_sym_reader_opened(const mprof_symbolizer *s) { return s != NULL && s->dwfl_tried; }

void mprof_sym_cache_stats(size_t *bytes, size_t *pcs)
{
    *bytes = *pcs = 0;
    cache_lock_take();
    if (current != NULL) {
        *bytes = sizeof *current + current->bytes;
        *pcs = current->count;
    }
    cache_lock_give();
}

/* A forked child, on its one thread: cache_lock held by a thread fork left
 * behind may have left `current` half updated; it is dropped (leaked, as
 * are the references the lost threads' symbolizers held) and the lock
 * made anew.  Held by this thread's own interrupted frame: kept. */
void mprof_sym_postfork_child(void)
{
    if (tls_holds_cache_lock)
        return;
    if (pthread_mutex_trylock(&cache_lock) == 0) {
        pthread_mutex_unlock(&cache_lock);
        return;
    }
    static const pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    memcpy(&cache_lock, &fresh, sizeof fresh);
    current = NULL;
}

/* ------------------------------------------------------------ open/close */

static const Dwfl_Callbacks proc_callbacks = {
    .find_elf = dwfl_linux_proc_find_elf,
    /* Separate debug info by build id and by .gnu_debuglink under the
     * default path (".debug" and /usr/lib/debug), decompressed once into
     * the debug-info cache (debug_cache.c). */
    .find_debuginfo = mprof_debug_cache_find, /* libdwfl's, through the cache */
    .debuginfo_path = NULL,
};

/* libdwfl over the process' modules, made on first need: a write whose
 * addresses are all cached never opens it.  0, or -1 when it cannot be
 * made (every location then stays an address). */
static int ensure_dwfl(mprof_symbolizer *s)
{
    if (!s->dwfl_tried) {
        s->dwfl_tried = 1;
        s->dwfl = dwfl_begin(&proc_callbacks);
        if (s->dwfl != NULL) {
            dwfl_report_begin(s->dwfl);
            /* A failure here (maps unreadable) still leaves a usable,
             * empty Dwfl. */
            (void)dwfl_linux_proc_report(s->dwfl, getpid());
            dwfl_report_end(s->dwfl, NULL, NULL);
        }
    }
    return s->dwfl != NULL ? 0 : -1;
}

/* Build ids for executable mappings the loader does not know (a file mapped
 * PROT_EXEC by hand, say): let libdwfl read the file's notes, once per cache. */
static void dwfl_build_ids(mprof_symbolizer *s)
{
    for (int m = 0; m < s->nmaps; m++) {
        struct sym_mapping *sm = &s->maps[m];
        if (sm->build_id[0] != '\0' || sm->path[0] != '/')
            continue;
        if (s->cache != NULL) {
            cache_lock_take();
            struct map_info *mi = map_info_locked(s->cache, sm->pub.start);
            int known = mi != NULL && mi->build_id_known;
            if (known)
                memcpy(sm->build_id, mi->build_id, sizeof sm->build_id);
            cache_lock_give();
            if (known)
                continue;
        }
        if (ensure_dwfl(s) != 0)
            return;
        Dwfl_Module *mod = dwfl_addrmodule(s->dwfl, sm->pub.start);
        GElf_Addr bias, vaddr;
        const unsigned char *bits;
        if (mod != NULL && dwfl_module_getelf(mod, &bias) != NULL) {
            int n = dwfl_module_build_id(mod, &bits, &vaddr);
            if (n > 0)
                hex_build_id(sm->build_id, bits, (size_t)n);
        }
        if (s->cache != NULL) {
            cache_lock_take();
            struct map_info *mi = map_info_locked(s->cache, sm->pub.start);
            if (mi != NULL) {
                memcpy(mi->build_id, sm->build_id, sizeof mi->build_id);
                mi->build_id_known = 1;
            }
            cache_lock_give();
        }
    }
}

mprof_symbolizer *mprof_sym_open(void)
{
    mprof_symbolizer *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    if (read_maps(s) != 0)
        goto fail;
    cache_lock_take();
    s->cache = cache_get_locked(s);
    cache_lock_give();
    dl_iterate_phdr(phdr_build_ids, s);
    dwfl_build_ids(s);
    return s;
fail:
    mprof_sym_close(s);
    return NULL;
}

void mprof_sym_close(mprof_symbolizer *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->dm_cap; i++) {
        free(s->dm[i].mangled);
        free(s->dm[i].demangled);
    }
    free(s->dm);
    for (size_t i = 0; i < s->cus_cap; i++)
        free(s->cus[i].f);
    free(s->cus);
    for (size_t i = 0; i < s->nmods; i++)
        free(s->mods[i].e);
    free(s->mods);
    for (int i = 0; i < s->nmaps; i++)
        free(s->maps[i].path);
    free(s->maps);
    if (s->dwfl != NULL)
        dwfl_end(s->dwfl);
    cache_put(s->cache);
    free(s);
}

int mprof_sym_mapping_count(mprof_symbolizer *s)
{
    return s != NULL ? s->nmaps : 0;
}

const mprof_mapping *mprof_sym_mapping(mprof_symbolizer *s, int i)
{
    if (s == NULL || i < 0 || i >= s->nmaps)
        return NULL;
    return &s->maps[i].pub;
}

int mprof_sym_find_mapping(mprof_symbolizer *s, uintptr_t pc)
{
    return s != NULL ? find_mapping(s, pc) : -1;
}

int mprof_sym_mapping_symbolized(mprof_symbolizer *s, int i)
{
    if (s == NULL || i < 0 || i >= s->nmaps)
        return 0;
    struct sym_mapping *sm = &s->maps[i];
    if (sm->has_symbols < 0 && s->cache != NULL) {
        cache_lock_take();
        struct map_info *mi = map_info_locked(s->cache, sm->pub.start);
        if (mi != NULL)
            sm->has_symbols = mi->has_symbols;
        cache_lock_give();
    }
    if (sm->has_symbols < 0) {
        sm->has_symbols = 0;
        GElf_Addr bias;
        Dwfl_Module *mod = ensure_dwfl(s) == 0 ? dwfl_addrmodule(s->dwfl, sm->pub.start) : NULL;
        if (mod != NULL && dwfl_module_getelf(mod, &bias) != NULL &&
            dwfl_module_getsymtab(mod) > 0)
            sm->has_symbols = 1;
        if (s->cache != NULL && s->dwfl != NULL) {
            cache_lock_take();
            struct map_info *mi = map_info_locked(s->cache, sm->pub.start);
            if (mi != NULL)
                mi->has_symbols = (signed char)sm->has_symbols;
            cache_lock_give();
        }
    }
    return sm->has_symbols;
}

/* ------------------------------------------------------- symbol index */

static int sym_entry_cmp(const void *pa, const void *pb)
{
    const struct sym_entry *a = pa, *b = pb;
    if (a->start != b->start)
        return a->start < b->start ? -1 : 1;
    /* Preferred names first among symbols at one address. */
    return a->rank - b->rank;
}

static int build_module_syms(struct module_syms *ms)
{
    int nsyms = dwfl_module_getsymtab(ms->mod);
    if (nsyms <= 0)
        return 0;
    ms->e = malloc((size_t)nsyms * sizeof *ms->e);
    if (ms->e == NULL)
        return -1;
    for (int i = 0; i < nsyms; i++) {
        GElf_Sym sym;
        GElf_Addr addr;
        GElf_Word shndx;
        const char *name = dwfl_module_getsym_info(ms->mod, i, &sym, &addr, &shndx, NULL, NULL);
        int type = GELF_ST_TYPE(sym.st_info);
        /* Zero-sized symbols never name anything (see the top of the
         * file); sections, files and TLS offsets are not code. */
        if (name == NULL || name[0] == '\0' || sym.st_size == 0 || shndx == SHN_UNDEF ||
            shndx == SHN_ABS || shndx == (GElf_Word)-1 || type == STT_SECTION ||
            type == STT_FILE || type == STT_TLS)
            continue;
        if (addr + sym.st_size < addr)
            continue;
        int bind = GELF_ST_BIND(sym.st_info);
        struct sym_entry *e = &ms->e[ms->n++];
        e->start = (uintptr_t)addr;
        e->end = (uintptr_t)(addr + sym.st_size);
        e->name = name;
        /* As libdwfl: a global name over a weak alias over a local one;
         * then functions over data. */
        e->rank = (bind == STB_GLOBAL ? 0 : bind == STB_WEAK ? 2 : 4) +
                  (type == STT_FUNC || type == STT_GNU_IFUNC ? 0 : 1);
    }
    qsort(ms->e, ms->n, sizeof *ms->e, sym_entry_cmp);
    uintptr_t m = 0;
    for (size_t i = 0; i < ms->n; i++) {
        if (ms->e[i].end > m)
            m = ms->e[i].end;
        ms->e[i].max_end = m;
    }
    return 0;
}

static struct module_syms *module_syms(mprof_symbolizer *s, Dwfl_Module *mod)
{
    /* A profile touches a few dozen modules at most: a linear list. */
    for (size_t i = 0; i < s->nmods; i++)
        if (s->mods[i].mod == mod)
            return &s->mods[i];
    if (s->nmods == s->mods_cap) {
        size_t ncap = s->mods_cap ? s->mods_cap * 2 : 16;
        struct module_syms *n = realloc(s->mods, ncap * sizeof *n);
        if (n == NULL)
            return NULL;
        s->mods = n;
        s->mods_cap = ncap;
    }
    struct module_syms *ms = &s->mods[s->nmods];
    memset(ms, 0, sizeof *ms);
    ms->mod = mod;
    if (build_module_syms(ms) != 0) {
        free(ms->e);
        return NULL;
    }
    s->nmods++;
    return ms;
}

/* The symbol whose [start, end) holds pc, the closest-starting one when
 * several do; NULL when none does. */
static const struct sym_entry *covering_symbol(const struct module_syms *ms, uintptr_t pc)
{
    /* Last entry starting at or before pc. */
    size_t lo = 0, hi = ms->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ms->e[mid].start <= pc)
            lo = mid + 1;
        else
            hi = mid;
    }
    /* Walk back while some earlier symbol may still reach pc; entries at
     * one address are in preference order, so keep the first of the group
     * that covers. */
    const struct sym_entry *best = NULL;
    for (size_t i = lo; i-- > 0 && ms->e[i].max_end > pc;) {
        const struct sym_entry *e = &ms->e[i];
        if (best != NULL && e->start != best->start)
            break;
        if (pc < e->end)
            best = e;
    }
    return best;
}

/* The file and line of the line-table row for pc, only when that row lies
 * inside the function the symbol table names: libdw answers with the
 * nearest row below pc, which for code without line information (_start,
 * a stripped object's functions) is the last row of some other unit's
 * function ("_start at unique_ptr.h:395").  A frame then has its function
 * and no line, which is true; a wrong line is not. */
static const char *checked_line(Dwfl_Module *mod, uintptr_t pc, const struct sym_entry *sym,
                                int *line)
{
    *line = 0;
    Dwfl_Line *l = dwfl_module_getsrc(mod, pc);
    if (l == NULL)
        return NULL;
    Dwarf_Addr addr = 0;
    int ln = 0;
    const char *file = dwfl_lineinfo(l, &addr, &ln, NULL, NULL, NULL);
    if (file == NULL || addr < sym->start || addr >= sym->end || addr > pc)
        return NULL;
    *line = ln;
    return file;
}

/* ---------------------------------------------------------------- lookup */

/* Names of a subprogram or inlined_subroutine DIE.  dwarf_attr_integrate
 * follows DW_AT_abstract_origin and DW_AT_specification, where inlined
 * instances and out-of-class C++ definitions keep their names. */
static int die_names(mprof_symbolizer *s, Dwarf_Die *die, mprof_frame *f)
{
    Dwarf_Attribute attr;
    const char *linkage = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_linkage_name, &attr));
    if (linkage == NULL)
        linkage = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr));
    const char *name = dwarf_diename(die);
    if (linkage != NULL) {
        const char *d = demangle(s, linkage);
        /* Without a demangler, DW_AT_name alone ("grow") loses the class
         * and namespace; the mangled name lets pprof demangle it. */
        f->function = d != NULL ? d : linkage;
        f->system_name = linkage;
    } else if (name != NULL) {
        f->function = name;
        f->system_name = name;
    } else {
        return 0;
    }
    int decl = 0;
    f->start_line = dwarf_decl_line(die, &decl) == 0 && decl > 0 ? decl : 0;
    return 1;
}

static int is_function_scope(int tag)
{
    return tag == DW_TAG_subprogram || tag == DW_TAG_inlined_subroutine ||
           tag == DW_TAG_entry_point;
}

/* ------------------------------------------------------ DWARF scopes */

static int cu_func_cmp(const void *pa, const void *pb)
{
    const struct cu_func *a = pa, *b = pb;
    if (a->lo != b->lo)
        return a->lo < b->lo ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

static int index_subprograms(Dwarf_Die *parent, struct cu_func **v, size_t *n, size_t *cap,
                             int depth)
{
    Dwarf_Die child;
    if (dwarf_child(parent, &child) != 0)
        return 0;
    do {
        int tag = dwarf_tag(&child);
        if (tag == DW_TAG_subprogram) {
            Dwarf_Addr base, lo, hi;
            ptrdiff_t off = 0;
            /* Several ranges when the compiler split the function (.cold). */
            while ((off = dwarf_ranges(&child, off, &base, &lo, &hi)) > 0) {
                if (hi <= lo)
                    continue;
                if (*n == *cap) {
                    size_t ncap = *cap ? *cap * 2 : 64;
                    struct cu_func *nv = realloc(*v, ncap * sizeof *nv);
                    if (nv == NULL)
                        return -1;
                    *v = nv;
                    *cap = ncap;
                }
                (*v)[*n] = (struct cu_func){lo, hi, *n, child};
                (*n)++;
            }
        } else if ((tag == DW_TAG_namespace || tag == DW_TAG_module) && depth < 16) {
            /* Definitions normally sit at unit level (C++ ones refer to
             * their class by DW_AT_specification), but may be nested in
             * namespaces; anything rarer falls back to dwarf_getscopes. */
            if (index_subprograms(&child, v, n, cap, depth + 1) != 0)
                return -1;
        }
    } while (dwarf_siblingof(&child, &child) == 0);
    return 0;
}

static int cus_grow(mprof_symbolizer *s)
{
    size_t ncap = s->cus_cap ? s->cus_cap * 2 : 256;
    struct cu_index *n = calloc(ncap, sizeof *n);
    if (n == NULL)
        return -1;
    for (size_t i = 0; i < s->cus_cap; i++) {
        if (s->cus[i].key == NULL)
            continue;
        size_t j = mprof_mix64((uintptr_t)s->cus[i].key) & (ncap - 1);
        while (n[j].key != NULL)
            j = (j + 1) & (ncap - 1);
        n[j] = s->cus[i];
    }
    free(s->cus);
    s->cus = n;
    s->cus_cap = ncap;
    return 0;
}

static const struct cu_index *cu_index(mprof_symbolizer *s, Dwarf_Die *cudie)
{
    if (cudie->addr == NULL)
        return NULL;
    if (s->cus_count * 2 >= s->cus_cap && cus_grow(s) != 0)
        return NULL;
    size_t j = mprof_mix64((uintptr_t)cudie->addr) & (s->cus_cap - 1);
    while (s->cus[j].key != NULL) {
        if (s->cus[j].key == cudie->addr)
            return &s->cus[j];
        j = (j + 1) & (s->cus_cap - 1);
    }
    struct cu_index ci = {cudie->addr, NULL, 0};
    size_t cap = 0;
    if (index_subprograms(cudie, &ci.f, &ci.n, &cap, 0) != 0) {
        free(ci.f);
        return NULL;
    }
    qsort(ci.f, ci.n, sizeof *ci.f, cu_func_cmp);
    s->cus[j] = ci;
    s->cus_count++;
    return &s->cus[j];
}

static int has_scope_children(int tag)
{
    return tag == DW_TAG_subprogram || tag == DW_TAG_inlined_subroutine ||
           tag == DW_TAG_lexical_block || tag == DW_TAG_try_block || tag == DW_TAG_catch_block;
}

/* Scopes at DWARF address pc, innermost first, ending with the function
 * that holds it: the DIE tree's real nesting, where each
 * inlined_subroutine sits inside its caller.  Returns a malloc'd array and
 * its size, or 0. */
static int find_scopes(mprof_symbolizer *s, Dwarf_Die *cudie, Dwarf_Addr pc, Dwarf_Die **out)
{
    *out = NULL;
    const struct cu_index *ci = cu_index(s, cudie);
    const struct cu_func *fn = NULL;
    if (ci != NULL) {
        size_t lo = 0, hi = ci->n;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (ci->f[mid].lo <= pc)
                lo = mid + 1;
            else
                hi = mid;
        }
        /* Assembly units may describe one code range under several names
         * (aliases): take the first in DIE order, as dwarf_getscopes does. */
        while (lo > 1 && ci->f[lo - 2].lo == ci->f[lo - 1].lo && pc < ci->f[lo - 2].hi)
            lo--;
        if (lo > 0 && pc < ci->f[lo - 1].hi)
            fn = &ci->f[lo - 1];
    }
    if (fn != NULL) {
        enum { MAX_DEPTH = 64 };
        Dwarf_Die path[MAX_DEPTH];
        int depth = 0;
        path[depth++] = fn->die;
        while (depth < MAX_DEPTH) {
            Dwarf_Die child;
            int found = 0;
            if (dwarf_child(&path[depth - 1], &child) == 0) {
                do {
                    if (has_scope_children(dwarf_tag(&child)) && dwarf_haspc(&child, pc) > 0)
                        found = 1;
                } while (!found && dwarf_siblingof(&child, &child) == 0);
            }
            if (!found)
                break;
            path[depth++] = child;
        }
        Dwarf_Die *v = malloc((size_t)depth * sizeof *v);
        if (v == NULL)
            return 0;
        for (int i = 0; i < depth; i++)
            v[i] = path[depth - 1 - i];
        *out = v;
        return depth;
    }

    /* Not in the index (a function nested in a class or in another
     * function, say): the general, slower search. */
    Dwarf_Die *scopes = NULL;
    int nscopes = dwarf_getscopes(cudie, pc, &scopes);
    if (nscopes <= 0) {
        free(scopes);
        return 0;
    }
    /* dwarf_getscopes continues from an inlined instance into its abstract
     * definition's scopes; restart from the innermost DIE and walk its
     * real parents instead. */
    Dwarf_Die innermost = scopes[0];
    free(scopes);
    scopes = NULL;
    nscopes = dwarf_getscopes_die(&innermost, &scopes);
    if (nscopes <= 0) {
        free(scopes);
        return 0;
    }
    *out = scopes;
    return nscopes;
}

/* Inline chain at pc from DWARF.  Fills up to max frames, innermost first,
 * and returns the count, or 0 when DWARF has no function covering pc. */
static int dwarf_frames(mprof_symbolizer *s, Dwfl_Module *mod, uintptr_t pc,
                        const struct sym_entry *sym, mprof_frame *out, int max)
{
    Dwarf_Addr bias = 0;
    Dwarf_Die *cudie = dwfl_module_addrdie(mod, pc, &bias);
    if (cudie == NULL)
        return 0;
    Dwarf_Die *scopes = NULL;
    int nscopes = find_scopes(s, cudie, pc - bias, &scopes);
    if (nscopes <= 0) {
        free(scopes);
        return 0;
    }

    /* The innermost frame's position comes from the line table; every
     * inlined_subroutine then gives its caller's position. */
    int line = 0;
    const char *file = checked_line(mod, pc, sym, &line);
    Dwarf_Files *files = NULL;
    size_t nfiles = 0;
    if (dwarf_getsrcfiles(cudie, &files, &nfiles) != 0)
        files = NULL;

    int n = 0, physical = -1;
    for (int i = 0; i < nscopes; i++) {
        int tag = dwarf_tag(&scopes[i]);
        if (!is_function_scope(tag))
            continue;
        mprof_frame f = {.file = file, .line = line};
        if (!die_names(s, &scopes[i], &f))
            f.function = f.system_name = NULL;
        /* Keep the physical function last even when the inline chain is
         * deeper than max: overwrite the last slot with outer frames. */
        if (n < max)
            out[n++] = f;
        else
            out[max - 1] = f;
        if (tag != DW_TAG_inlined_subroutine) {
            physical = i;
            break;
        }
        Dwarf_Attribute attr;
        Dwarf_Word cf = 0, cl = 0;
        file = NULL;
        line = 0;
        /* DW_AT_call_file indexes the unit's file table as libdw numbers
         * it for either DWARF version (a placeholder at 0 before v5). */
        if (files != NULL &&
            dwarf_formudata(dwarf_attr(&scopes[i], DW_AT_call_file, &attr), &cf) == 0 &&
            cf < nfiles)
            file = dwarf_filesrc(files, cf, NULL, NULL);
        if (dwarf_formudata(dwarf_attr(&scopes[i], DW_AT_call_line, &attr), &cl) == 0)
            line = (int)cl;
    }
    free(scopes);
    if (physical < 0)
        return 0; /* inlined code outside any subprogram: malformed, ignore */
    return n;
}

/* The frames at pc from libdwfl: mprof_sym_lookup without the cache. */
static int resolve(mprof_symbolizer *s, uintptr_t pc, mprof_frame *out, int max)
{
    Dwfl_Module *mod = dwfl_addrmodule(s->dwfl, pc);
    if (mod == NULL)
        return 0;
    /* Our own index rather than dwfl_module_addrinfo: besides being a
     * linear scan, that falls back to the closest preceding sizeless symbol
     * when no sized one covers pc, exactly the guess we refuse. */
    struct module_syms *ms = module_syms(s, mod);
    const struct sym_entry *sym = ms != NULL ? covering_symbol(ms, pc) : NULL;
    if (sym == NULL)
        return 0;
    const char *symname = sym->name;

    int n = dwarf_frames(s, mod, pc, sym, out, max);
    if (n > 0) {
        /* A nameless function DIE (odd producers) still has its symbol. */
        if (out[n - 1].function == NULL) {
            const char *d = demangle(s, symname);
            out[n - 1].function = d != NULL ? d : symname;
            out[n - 1].system_name = symname;
        }
        return n;
    }

    /* No DWARF for it: the symbol table's name, and the line table's
     * position if there is one (assembly sources have lines, no DIEs). */
    mprof_frame f = {0};
    const char *d = demangle(s, symname);
    f.function = d != NULL ? d : symname;
    f.system_name = symname;
    f.file = checked_line(mod, pc, sym, &f.line);
    out[0] = f;
    return 1;
}

int mprof_sym_lookup(mprof_symbolizer *s, uintptr_t pc, mprof_frame *out, int max)
{
    if (s == NULL || out == NULL || max <= 0)
        return 0;
    if (s->cache != NULL && pc != 0) {
        int n = cache_lookup(s->cache, pc, out, max);
        if (n >= 0)
            return n;
    }
    if (ensure_dwfl(s) != 0)
        return 0;
    mprof_frame all[CACHE_MAX_FRAMES];
    int n = resolve(s, pc, all, CACHE_MAX_FRAMES);
    if (s->cache != NULL && pc != 0)
        cache_insert(s->cache, pc, all, n);
    return copy_frames(out, max, all, n);
}
