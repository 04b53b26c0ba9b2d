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
#include "symbolize/symbolize.h"

/* GNU build ids are 20 bytes (sha1) in practice; the note allows any size,
 * and we keep up to 64 bytes, which covers every hash ld offers. */
#define MAX_BUILD_ID 64

struct sym_mapping {
    mprof_mapping pub;                     /* what callers see */
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

struct mprof_symbolizer {
    Dwfl *dwfl;
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
                           char **path)
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
    /* dev and inode */
    for (int field = 0; field < 2; field++) {
        while (*p == ' ')
            p++;
        while (*p != ' ' && *p != '\0' && *p != '\n')
            p++;
    }
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
        uint64_t offset;
        char *path;
        if (!parse_maps_line(line, &start, &limit, &offset, &path))
            continue;
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

/* Build ids for executable mappings the loader does not know (a file mapped
 * PROT_EXEC by hand, say): let libdwfl read the file's notes. */
static void dwfl_build_ids(mprof_symbolizer *s)
{
    for (int m = 0; m < s->nmaps; m++) {
        struct sym_mapping *sm = &s->maps[m];
        if (sm->build_id[0] != '\0' || sm->path[0] != '/')
            continue;
        Dwfl_Module *mod = dwfl_addrmodule(s->dwfl, sm->pub.start);
        if (mod == NULL)
            continue;
        GElf_Addr bias, vaddr;
        const unsigned char *bits;
        if (dwfl_module_getelf(mod, &bias) == NULL)
            continue;
        int n = dwfl_module_build_id(mod, &bits, &vaddr);
        if (n > 0)
            hex_build_id(sm->build_id, bits, (size_t)n);
    }
}

/* ------------------------------------------------------------ open/close */

static const Dwfl_Callbacks proc_callbacks = {
    .find_elf = dwfl_linux_proc_find_elf,
    /* Separate debug info by build id and by .gnu_debuglink under the
     * default path (".debug" and /usr/lib/debug). */
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .debuginfo_path = NULL,
};

mprof_symbolizer *mprof_sym_open(void)
{
    mprof_symbolizer *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    if (read_maps(s) != 0)
        goto fail;
    s->dwfl = dwfl_begin(&proc_callbacks);
    if (s->dwfl == NULL) {
        errno = ENOMEM;
        goto fail;
    }
    dwfl_report_begin(s->dwfl);
    /* A failure here (maps unreadable) still leaves a usable, empty Dwfl:
     * every location then stays an address. */
    (void)dwfl_linux_proc_report(s->dwfl, getpid());
    dwfl_report_end(s->dwfl, NULL, NULL);
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
    if (sm->has_symbols < 0) {
        sm->has_symbols = 0;
        Dwfl_Module *mod = dwfl_addrmodule(s->dwfl, sm->pub.start);
        GElf_Addr bias;
        if (mod != NULL && dwfl_module_getelf(mod, &bias) != NULL &&
            dwfl_module_getsymtab(mod) > 0)
            sm->has_symbols = 1;
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

/* Name of the symbol whose [start, end) holds pc, the closest-starting one
 * when several do; NULL when none does. */
static const char *covering_symbol(const struct module_syms *ms, uintptr_t pc)
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
    return best != NULL ? best->name : NULL;
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
                        mprof_frame *out, int max)
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
    const char *file = NULL;
    int line = 0;
    Dwfl_Line *l = dwfl_module_getsrc(mod, pc);
    if (l != NULL)
        file = dwfl_lineinfo(l, NULL, &line, NULL, NULL, NULL);
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

int mprof_sym_lookup(mprof_symbolizer *s, uintptr_t pc, mprof_frame *out, int max)
{
    if (s == NULL || out == NULL || max <= 0 || s->dwfl == NULL)
        return 0;
    Dwfl_Module *mod = dwfl_addrmodule(s->dwfl, pc);
    if (mod == NULL)
        return 0;
    /* Our own index rather than dwfl_module_addrinfo: besides being a
     * linear scan, that falls back to the closest preceding sizeless symbol
     * when no sized one covers pc, exactly the guess we refuse. */
    struct module_syms *ms = module_syms(s, mod);
    const char *symname = ms != NULL ? covering_symbol(ms, pc) : NULL;
    if (symname == NULL)
        return 0;

    int n = dwarf_frames(s, mod, pc, out, max);
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
    Dwfl_Line *l = dwfl_module_getsrc(mod, pc);
    if (l != NULL) {
        int line = 0;
        f.file = dwfl_lineinfo(l, NULL, &line, NULL, NULL, NULL);
        f.line = f.file != NULL ? line : 0;
    }
    out[0] = f;
    return 1;
}
