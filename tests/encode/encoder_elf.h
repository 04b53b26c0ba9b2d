/*
 * Test helpers for the symbolizer and encoder tests: facts about loaded
 * objects found independently of the code under test (plain libelf and
 * dl_iterate_phdr, no libdwfl), so that the tests check the symbolizer
 * against a second opinion rather than against itself.
 */
#ifndef ENCODER_ELF_H
#define ENCODER_ELF_H

#include <dlfcn.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <link.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/check.h"

#define T_NOIPA __attribute__((noipa))
#define T_BARRIER() __asm__ volatile("" ::: "memory")

/* The call site in the caller: return address - 1, as the stack capture
 * reports callers.  noipa: no inlining, cloning or merging of identical
 * functions, which would move the call sites the tests name. */
static T_NOIPA uintptr_t t_capture_caller(void)
{
    uintptr_t ra = (uintptr_t)__builtin_return_address(0);
    T_BARRIER();
    return ra - 1;
}

/* ------------------------------------------------------- loaded objects */

typedef struct t_object {
    char path[PATH_MAX];
    uintptr_t bias;           /* dlpi_addr */
    uintptr_t exec_lo, exec_hi; /* executable PT_LOAD, run-time addresses */
    uint64_t exec_off;          /* its p_offset in the file */
} t_object;

struct t_find_arg {
    uintptr_t addr;
    t_object *out;
    int found;
};

static int t_find_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct t_find_arg *a = arg;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
        if (a->addr < lo || a->addr >= hi)
            continue;
        a->found = 1;
        a->out->bias = info->dlpi_addr;
        if (info->dlpi_name && info->dlpi_name[0])
            snprintf(a->out->path, sizeof a->out->path, "%s", info->dlpi_name);
        else {
            ssize_t n = readlink("/proc/self/exe", a->out->path, sizeof a->out->path - 1);
            a->out->path[n > 0 ? n : 0] = '\0';
        }
        for (int j = 0; j < info->dlpi_phnum; j++) {
            const ElfW(Phdr) *x = &info->dlpi_phdr[j];
            if (x->p_type == PT_LOAD && (x->p_flags & PF_X)) {
                a->out->exec_lo = info->dlpi_addr + x->p_vaddr;
                a->out->exec_hi = a->out->exec_lo + x->p_memsz;
                a->out->exec_off = x->p_offset;
            }
        }
        return 1;
    }
    return 0;
}

/* The loaded object containing addr; 0 when none. */
static int t_object_of(const void *addr, t_object *out)
{
    memset(out, 0, sizeof *out);
    struct t_find_arg a = {(uintptr_t)addr, out, 0};
    dl_iterate_phdr(t_find_cb, &a);
    return a.found;
}

/* ------------------------------------------------------------ ELF files */

static Elf *t_elf_open(const char *path, int *fd)
{
    elf_version(EV_CURRENT);
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0)
        return NULL;
    Elf *e = elf_begin(*fd, ELF_C_READ, NULL);
    if (e == NULL) {
        close(*fd);
        *fd = -1;
    }
    return e;
}

static void t_elf_close(Elf *e, int fd)
{
    if (e)
        elf_end(e);
    if (fd >= 0)
        close(fd);
}

/* Lower-case hex GNU build id of an ELF file, "" if none. */
static void t_build_id(const char *path, char *out, size_t outlen)
{
    out[0] = '\0';
    int fd;
    Elf *e = t_elf_open(path, &fd);
    if (e == NULL)
        return;
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(e, scn)) != NULL) {
        GElf_Shdr sh;
        if (gelf_getshdr(scn, &sh) == NULL || sh.sh_type != SHT_NOTE)
            continue;
        Elf_Data *d = elf_getdata(scn, NULL);
        size_t off = 0, name_off, desc_off;
        GElf_Nhdr nh;
        while (d && (off = gelf_getnote(d, off, &nh, &name_off, &desc_off)) > 0) {
            if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
                memcmp((char *)d->d_buf + name_off, "GNU", 4) == 0) {
                const unsigned char *b = (const unsigned char *)d->d_buf + desc_off;
                size_t o = 0;
                for (size_t i = 0; i < nh.n_descsz && o + 3 <= outlen; i++)
                    o += (size_t)snprintf(out + o, outlen - o, "%02x", b[i]);
                t_elf_close(e, fd);
                return;
            }
        }
    }
    t_elf_close(e, fd);
}

typedef struct t_range {
    uint64_t lo, hi;
} t_range;

static int t_range_cmp(const void *a, const void *b)
{
    const t_range *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Appends every defined, sized symbol of path's symbol tables.  Returns the
 * address range of .text through *text when asked. */
static void t_collect_symbols(const char *path, t_range **r, size_t *n, size_t *cap,
                              t_range *text)
{
    int fd;
    Elf *e = t_elf_open(path, &fd);
    if (e == NULL)
        return;
    size_t shstrndx;
    if (elf_getshdrstrndx(e, &shstrndx) != 0)
        shstrndx = 0;
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(e, scn)) != NULL) {
        GElf_Shdr sh;
        if (gelf_getshdr(scn, &sh) == NULL)
            continue;
        const char *name = elf_strptr(e, shstrndx, sh.sh_name);
        if (text && name && strcmp(name, ".text") == 0 && sh.sh_type == SHT_PROGBITS) {
            text->lo = sh.sh_addr;
            text->hi = sh.sh_addr + sh.sh_size;
        }
        if (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM)
            continue;
        Elf_Data *d = elf_getdata(scn, NULL);
        size_t count = sh.sh_entsize ? sh.sh_size / sh.sh_entsize : 0;
        for (size_t i = 0; d && i < count; i++) {
            GElf_Sym s;
            if (gelf_getsym(d, (int)i, &s) == NULL || s.st_shndx == SHN_UNDEF || s.st_size == 0)
                continue;
            if (*n == *cap) {
                *cap = *cap ? *cap * 2 : 1024;
                *r = realloc(*r, *cap * sizeof **r);
            }
            (*r)[(*n)++] = (t_range){s.st_value, s.st_value + s.st_size};
        }
    }
    t_elf_close(e, fd);
}

/* Name of the closest symbol at or before vaddr in path's tables, sized or
 * not: what "nearest preceding symbol" symbolizers (nm-based) would say. */
static void t_nearest_symbol(const char *path, uint64_t vaddr, char *out, size_t outlen)
{
    out[0] = '\0';
    int fd;
    Elf *e = t_elf_open(path, &fd);
    if (e == NULL)
        return;
    uint64_t best = 0;
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(e, scn)) != NULL) {
        GElf_Shdr sh;
        if (gelf_getshdr(scn, &sh) == NULL ||
            (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM))
            continue;
        Elf_Data *d = elf_getdata(scn, NULL);
        size_t count = sh.sh_entsize ? sh.sh_size / sh.sh_entsize : 0;
        for (size_t i = 0; d && i < count; i++) {
            GElf_Sym s;
            if (gelf_getsym(d, (int)i, &s) == NULL || s.st_shndx == SHN_UNDEF ||
                GELF_ST_TYPE(s.st_info) != STT_FUNC || s.st_value > vaddr || s.st_value < best)
                continue;
            const char *nm = elf_strptr(e, sh.sh_link, s.st_name);
            if (nm && nm[0]) {
                best = s.st_value;
                snprintf(out, outlen, "%s", nm);
            }
        }
    }
    t_elf_close(e, fd);
}

/*
 * An address inside obj's .text that no symbol of the object covers, in
 * any table we can find: the file's .symtab and .dynsym, and the separate
 * debug file's under /usr/lib/debug/.build-id when installed.  Picks the
 * middle of the largest such gap.  Returns 0 when there is none.
 */
static int t_uncovered_pc(const t_object *obj, uintptr_t *pc, char *naive, size_t naivelen)
{
    t_range *r = NULL, text = {0, 0};
    size_t n = 0, cap = 0;
    t_collect_symbols(obj->path, &r, &n, &cap, &text);
    char bid[160], dbg[PATH_MAX];
    t_build_id(obj->path, bid, sizeof bid);
    if (strlen(bid) > 2) {
        snprintf(dbg, sizeof dbg, "/usr/lib/debug/.build-id/%.2s/%s.debug", bid, bid + 2);
        if (access(dbg, R_OK) == 0)
            t_collect_symbols(dbg, &r, &n, &cap, NULL);
    }
    if (text.hi <= text.lo) {
        free(r);
        return 0;
    }
    qsort(r, n, sizeof *r, t_range_cmp);
    uint64_t best_lo = 0, best_len = 0, cursor = text.lo;
    for (size_t i = 0; i <= n && cursor < text.hi; i++) {
        uint64_t next = i < n ? r[i].lo : text.hi;
        if (next > text.hi)
            next = text.hi;
        if (next > cursor && next - cursor > best_len) {
            best_lo = cursor;
            best_len = next - cursor;
        }
        if (i < n && r[i].hi > cursor)
            cursor = r[i].hi;
    }
    free(r);
    if (best_len == 0)
        return 0;
    uint64_t vaddr = best_lo + best_len / 2;
    *pc = obj->bias + (uintptr_t)vaddr;
    if (naive)
        t_nearest_symbol(obj->path, vaddr, naive, naivelen);
    return 1;
}

#endif /* ENCODER_ELF_H */
