/*
 * The debug-info cache: decompressed copies of the separate debug files
 * that libdwfl finds, kept on disk by build id, as perf's build-id cache
 * and debuginfod's client cache keep theirs.
 *
 * Why: Debian compresses the DWARF of its -dbg packages (SHF_COMPRESSED,
 * zlib).  libdw inflates a section whole the first time it reads it, so
 * the first profile a process writes paid for inflating libc's 25 MB of
 * DWARF: about 40 ms, 58% of it in zlib and 32% in the kernel faulting in
 * the buffers, every process, every time (a build of 1,000 processes under
 * `mprof run` paid it 1,000 times).  An uncompressed copy is read through
 * mmap, only the pages a lookup touches, shared by every process of the
 * machine through the page cache.  The first process to need a file makes
 * the copy (it inflates the sections then anyway).
 *
 * Where: MPROF_SYMBOL_CACHE (a folder, or "off"); by default
 * $XDG_CACHE_HOME/mprof, else $HOME/.cache/mprof, read once at start-up.
 * Files: DIR/debug/<first two hex digits of the build id>/<rest>.debug.
 *
 * Hostile files: a cached file is used only when it is an ELF file whose
 * GNU build-id note is the one asked for and which has no compressed
 * section left; anything else (truncated, corrupt, another file) is
 * ignored and replaced.  Concurrent writers: each writes its own temporary
 * file in the same folder and renames it into place, so a reader sees the
 * old file, the new one or none, never a torn one.  An unwritable folder:
 * profiles are written as before, with one notice per process.  Bounded:
 * a file is cached only if its sections inflate to at most 512 MiB.
 */
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/core.h"
#include "core/options.h"
#include "symbolize/symbolize.h"

#define MAX_INFLATED ((uint64_t)512 << 20)

static char cache_dir[PATH_MAX]; /* "" = off; set once, at start-up */

void mprof_debug_cache_init(void)
{
    const char *opt = mprof_option_text(MPROF_OPT_SYMBOL_CACHE);
    if (opt != NULL && opt[0] != '\0') {
        if (strcmp(opt, "off") == 0 || strcmp(opt, "0") == 0)
            return;
        /* Relative to where the program started: it may chdir later. */
        char cwd[PATH_MAX];
        int n = opt[0] == '/' || getcwd(cwd, sizeof cwd) == NULL
                    ? snprintf(cache_dir, sizeof cache_dir, "%s", opt)
                    : snprintf(cache_dir, sizeof cache_dir, "%s/%s", cwd, opt);
        if (n < 0 || (size_t)n >= sizeof cache_dir)
            cache_dir[0] = '\0';
        return;
    }
    const char *xdg = mprof_getenv("XDG_CACHE_HOME");
    const char *home = mprof_getenv("HOME");
    int n = -1;
    if (xdg != NULL && xdg[0] == '/')
        n = snprintf(cache_dir, sizeof cache_dir, "%s/mprof", xdg);
    else if (home != NULL && home[0] == '/')
        n = snprintf(cache_dir, sizeof cache_dir, "%s/.cache/mprof", home);
    if (n < 0 || (size_t)n >= sizeof cache_dir)
        cache_dir[0] = '\0';
}

const char *mprof_debug_cache_dir(void) { return cache_dir; }

/* DIR/debug/ab/cdef....debug for the build id bits; 0, or -1 if too long. */
static int cache_path(const unsigned char *bits, int nbits, char *out, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    char id[2 * 64 + 1];
    if (nbits < 2 || nbits > 64)
        return -1;
    for (int i = 0; i < nbits; i++) {
        id[2 * i] = hex[bits[i] >> 4];
        id[2 * i + 1] = hex[bits[i] & 15];
    }
    id[2 * nbits] = '\0';
    int n = snprintf(out, cap, "%s/debug/%.2s/%s.debug", cache_dir, id, id + 2);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

/* Whether elf's GNU build-id note is bits[nbits]. */
static int has_build_id(Elf *elf, const unsigned char *bits, int nbits)
{
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(elf, scn)) != NULL) {
        GElf_Shdr sh;
        if (gelf_getshdr(scn, &sh) == NULL || sh.sh_type != SHT_NOTE)
            continue;
        Elf_Data *d = elf_getdata(scn, NULL);
        if (d == NULL)
            continue;
        size_t off = 0, name_off, desc_off;
        GElf_Nhdr nh;
        while ((off = gelf_getnote(d, off, &nh, &name_off, &desc_off)) > 0) {
            if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
                memcmp((char *)d->d_buf + name_off, "GNU", 4) == 0)
                return nh.n_descsz == (GElf_Word)nbits &&
                       memcmp((char *)d->d_buf + desc_off, bits, (size_t)nbits) == 0;
        }
    }
    return 0;
}

/* The total size elf's compressed sections inflate to (0: none). */
static uint64_t inflated_size(Elf *elf)
{
    uint64_t total = 0;
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(elf, scn)) != NULL) {
        GElf_Shdr sh;
        if (gelf_getshdr(scn, &sh) == NULL || !(sh.sh_flags & SHF_COMPRESSED))
            continue;
        GElf_Chdr ch;
        if (gelf_getchdr(scn, &ch) == NULL)
            return UINT64_MAX;
        total += ch.ch_size;
    }
    return total;
}

/* An fd of the valid cached copy at path, or -1. */
static int open_cached(const char *path, const unsigned char *bits, int nbits)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    int ok = elf != NULL && elf_kind(elf) == ELF_K_ELF && has_build_id(elf, bits, nbits) &&
             inflated_size(elf) == 0;
    if (elf != NULL)
        elf_end(elf);
    if (!ok) {
        close(fd);
        return -1;
    }
    return fd;
}

/* mkdir -p of path's folder. */
static int make_parents(const char *path)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return 0;
}

static int copy_fd(int from, int to)
{
    char buf[65536];
    for (;;) {
        ssize_t n = read(from, buf, sizeof buf);
        if (n == 0)
            return 0;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        for (ssize_t done = 0; done < n;) {
            ssize_t w = write(to, buf + done, (size_t)(n - done));
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                return -1;
            }
            done += w;
        }
    }
}

/* Writes the decompressed copy of the debug file src (an open fd) to path,
 * atomically.  0, or -1 with errno. */
static int write_cached(int src, const char *path)
{
    if (make_parents(path) != 0)
        return -1;
    char tmp[PATH_MAX + 32];
    /* One name per writing thread of the machine: pid and thread id. */
    snprintf(tmp, sizeof tmp, "%s.tmp.%d.%ld", path, (int)getpid(), (long)syscall(SYS_gettid));
    int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    int rc = -1;
    Elf *elf = NULL;
    if (lseek(src, 0, SEEK_SET) != 0 || copy_fd(src, fd) != 0)
        goto out;
    elf = elf_begin(fd, ELF_C_RDWR, NULL);
    if (elf == NULL || elf_kind(elf) != ELF_K_ELF)
        goto out;
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(elf, scn)) != NULL) {
        GElf_Shdr sh;
        if (gelf_getshdr(scn, &sh) == NULL)
            goto out;
        if ((sh.sh_flags & SHF_COMPRESSED) && elf_compress(scn, 0, 0) < 0)
            goto out;
    }
    if (elf_update(elf, ELF_C_WRITE) < 0)
        goto out;
    elf_end(elf);
    elf = NULL;
    if (close(fd) != 0) {
        fd = -1;
        goto out;
    }
    fd = -1;
    rc = rename(tmp, path);
out:;
    int saved = errno;
    if (elf != NULL)
        elf_end(elf);
    if (fd >= 0)
        close(fd);
    if (rc != 0)
        unlink(tmp);
    errno = saved;
    return rc;
}

/* Whether the debug file at fd has compressed sections worth caching. */
static int worth_caching(int fd)
{
    Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    if (elf == NULL)
        return 0;
    uint64_t n = elf_kind(elf) == ELF_K_ELF ? inflated_size(elf) : 0;
    elf_end(elf);
    return n > 0 && n <= MAX_INFLATED;
}

/*
 * A debuglink's file (.gnu_debuglink) where gdb and libdwfl look for it:
 * beside the object, in its .debug/ folder, and under /usr/lib/debug with
 * the object's folder.  Accepted only when its build id is the module's
 * (objects without one: any file of that name, as the CRC would cost a
 * read of the whole file).
 */
static int find_debuglink(const char *file_name, const char *debuglink,
                          const unsigned char *bits, int nbits, char **found)
{
    if (file_name == NULL || debuglink == NULL || debuglink[0] == '\0' ||
        strchr(debuglink, '/') != NULL)
        return -1;
    const char *slash = strrchr(file_name, '/');
    if (slash == NULL)
        return -1;
    int dirlen = (int)(slash - file_name);
    char path[PATH_MAX];
    for (int where = 0; where < 3; where++) {
        int n = where == 0   ? snprintf(path, sizeof path, "%.*s/%s", dirlen, file_name, debuglink)
                : where == 1 ? snprintf(path, sizeof path, "%.*s/.debug/%s", dirlen, file_name,
                                        debuglink)
                             : snprintf(path, sizeof path, "/usr/lib/debug%.*s/%s", dirlen,
                                        file_name, debuglink);
        if (n < 0 || (size_t)n >= sizeof path || strcmp(path, file_name) == 0)
            continue;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
        int ok = elf != NULL && elf_kind(elf) == ELF_K_ELF &&
                 (nbits <= 0 || has_build_id(elf, bits, nbits));
        if (elf != NULL)
            elf_end(elf);
        char *name = ok ? strdup(path) : NULL;
        if (name == NULL) {
            close(fd);
            continue;
        }
        *found = name;
        return fd;
    }
    return -1;
}

/*
 * libdwfl's find_debuginfo without its last resort.  dwfl_standard_find_
 * debuginfo, having found nothing on disk, asks debuginfod: it dlopens
 * libdebuginfod, whose constructor initializes libcurl and OpenSSL inside
 * the host, from whichever thread writes a profile, and may then wait on
 * the network.  That crashed a test process about once in 150 runs, and a
 * profiler fetches nothing over the network from inside someone's
 * process.  So: the build-id tree (/usr/lib/debug/.build-id, where Debian's
 * -dbg and -dbgsym packages install), then the debuglink's usual places;
 * nothing found means libdwfl uses the object's own symbols.
 */
int mprof_find_local_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname,
                               Dwarf_Addr base, const char *file_name,
                               const char *debuglink_file, GElf_Word debuglink_crc,
                               char **debuginfo_file_name)
{
    int fd = dwfl_build_id_find_debuginfo(mod, userdata, modname, base, file_name,
                                          debuglink_file, debuglink_crc, debuginfo_file_name);
    if (fd >= 0)
        return fd;
    const unsigned char *bits = NULL;
    GElf_Addr vaddr;
    int nbits = dwfl_module_build_id(mod, &bits, &vaddr);
    char *found = NULL;
    fd = find_debuglink(file_name, debuglink_file, bits, nbits, &found);
    if (fd < 0)
        return -1;
    free(*debuginfo_file_name);
    *debuginfo_file_name = found;
    return fd;
}

int mprof_debug_cache_find(Dwfl_Module *mod, void **userdata, const char *modname,
                           Dwarf_Addr base, const char *file_name, const char *debuglink_file,
                           GElf_Word debuglink_crc, char **debuginfo_file_name)
{
    const unsigned char *bits = NULL;
    GElf_Addr vaddr;
    int nbits = cache_dir[0] != '\0' ? dwfl_module_build_id(mod, &bits, &vaddr) : 0;
    char path[PATH_MAX];
    if (nbits > 0 && cache_path(bits, nbits, path, sizeof path) == 0) {
        int fd = open_cached(path, bits, nbits);
        if (fd >= 0) {
            char *name = strdup(path);
            if (name != NULL) {
                free(*debuginfo_file_name);
                *debuginfo_file_name = name;
                return fd;
            }
            close(fd);
        }
    } else {
        nbits = 0;
    }
    int fd = mprof_find_local_debuginfo(mod, userdata, modname, base, file_name, debuglink_file,
                                        debuglink_crc, debuginfo_file_name);
    if (fd < 0 || nbits <= 0 || !worth_caching(fd))
        return fd;
    if (write_cached(fd, path) != 0) {
        static _Atomic int said;
        if (!atomic_exchange(&said, 1)) {
            mprof_warn("cannot keep decompressed debug info in %s (%s): profiles are written, "
                       "their first write more slowly; set MPROF_SYMBOL_CACHE to a writable "
                       "folder, or to off",
                       cache_dir, strerror(errno));
        }
        return fd;
    }
    int cached = open_cached(path, bits, nbits);
    if (cached < 0)
        return fd;
    char *name = strdup(path);
    if (name == NULL) {
        close(cached);
        return fd;
    }
    close(fd);
    free(*debuginfo_file_name);
    *debuginfo_file_name = name;
    return cached;
}
