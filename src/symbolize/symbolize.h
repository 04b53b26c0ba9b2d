/*
 * symbolize: addresses to functions, files and lines.  A snapshot of the
 * process' executable mappings and a DWARF reader (libdw).  Cold path only:
 * it allocates, so callers hold the profiler guard.  Depends on core only.
 */
#ifndef MPROF_SYMBOLIZE_H
#define MPROF_SYMBOLIZE_H

#include <elfutils/libdwfl.h>

#include "core/core.h"

/* ------------------------------------------------------------ symbolizer */

typedef struct mprof_symbolizer mprof_symbolizer;

typedef struct mprof_mapping {
    uintptr_t start, limit; /* executable segment [start, limit) */
    uint64_t file_offset;
    const char *path;       /* "" for anonymous; "[vdso]" as the kernel names it */
    const char *build_id;   /* lower-case hex of the GNU build id, "" if none */
} mprof_mapping;

typedef struct mprof_frame {
    const char *function;    /* demangled name; NULL when unknown */
    const char *system_name; /* name as in the symbol table (mangled) */
    const char *file;        /* source file, NULL when no line info */
    int line;
    int start_line;          /* line of the function's declaration, 0 if unknown */
} mprof_frame;

/* Snapshot of the executable mappings of this process plus a DWARF reader,
 * which opens only for addresses the process-wide result cache has not seen
 * (symbolize.c, "result cache").  Strings it returns live until
 * mprof_sym_close.  Any thread; several may be open at once. */
MPROF_HIDDEN mprof_symbolizer *mprof_sym_open(void);
MPROF_HIDDEN void mprof_sym_close(mprof_symbolizer *s);
MPROF_HIDDEN int mprof_sym_mapping_count(mprof_symbolizer *s);
MPROF_HIDDEN const mprof_mapping *mprof_sym_mapping(mprof_symbolizer *s, int i);
/* Whether mapping i's object could be read (its symbol table at least), so
 * that the profile may tell pprof not to re-symbolize it: pprof's
 * nearest-symbol guessing from a stripped binary would misname frames that
 * we deliberately left as addresses. */
MPROF_HIDDEN int mprof_sym_mapping_symbolized(mprof_symbolizer *s, int i);
/* Index of the mapping containing pc, or -1. */
MPROF_HIDDEN int mprof_sym_find_mapping(mprof_symbolizer *s, uintptr_t pc);
/*
 * Frames at pc, innermost (inlined) first, the last being the function that
 * physically contains pc.  A function is named only when pc lies inside its
 * symbol's [value, value + size); otherwise 0 frames are returned and the
 * location stays an address within its mapping.  Returns the frame count.
 */
MPROF_HIDDEN int mprof_sym_lookup(mprof_symbolizer *s, uintptr_t pc, mprof_frame *out, int max);

/* Whether s had to open its DWARF reader (some address was not cached):
 * for the tests. */
MPROF_HIDDEN int mprof_sym_reader_opened(const mprof_symbolizer *s);
/* The result cache's size in bytes and the addresses it holds, for
 * mprof_get_stats. */
MPROF_HIDDEN void mprof_sym_cache_stats(size_t *bytes, size_t *pcs);
/* The debug-info cache (debug_cache.c): init reads its folder once, at
 * start-up; find is libdwfl's find_debuginfo callback, which answers with
 * the cached decompressed copy of a separate debug file, making it the
 * first time. */
MPROF_HIDDEN void mprof_debug_cache_init(void);
MPROF_HIDDEN const char *mprof_debug_cache_dir(void);
MPROF_HIDDEN int mprof_debug_cache_find(Dwfl_Module *mod, void **userdata, const char *modname,
                                        Dwarf_Addr base, const char *file_name,
                                        const char *debuglink_file, GElf_Word debuglink_crc,
                                        char **debuginfo_file_name);
/* libdwfl's find_debuginfo on local files only (the build-id tree, then
 * the debuglink's places), never debuginfod: for every Dwfl of ours. */
MPROF_HIDDEN int mprof_find_local_debuginfo(Dwfl_Module *mod, void **userdata,
                                            const char *modname, Dwarf_Addr base,
                                            const char *file_name, const char *debuglink_file,
                                            GElf_Word debuglink_crc, char **debuginfo_file_name);
/* Lifecycle (runtime/lifecycle.c): a forked child's repair of the cache's
 * lock, if a thread fork left behind held it. */
MPROF_HIDDEN void mprof_sym_postfork_child(void);

#endif /* MPROF_SYMBOLIZE_H */
