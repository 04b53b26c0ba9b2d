/*
 * Small shared helpers: diagnostics, path patterns, atomic file writes,
 * environment parsing.  Cold paths only.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

void mprof_warn(const char *fmt, ...)
{
    /* One write(2) per message, so that lines from several threads or from
     * the host's own stderr output never interleave mid-line. */
    char buf[1024];
    int saved_errno = errno;
    size_t n = (size_t)snprintf(buf, sizeof buf, "mprof: ");
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, sizeof buf - n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    n += (size_t)m;
    if (n > sizeof buf - 2)
        n = sizeof buf - 2;
    buf[n++] = '\n';
    (void)mprof_write_all(STDERR_FILENO, buf, n);
    errno = saved_errno;
}

int mprof_expand_path(const char *pattern, char *out, size_t outlen)
{
    size_t o = 0;
    for (const char *p = pattern; *p; p++) {
        char tmp[32];
        const char *piece = tmp;
        size_t plen;
        if (p[0] == '%' && p[1] == 'p') {
            plen = (size_t)snprintf(tmp, sizeof tmp, "%d", (int)getpid());
            p++;
        } else if (p[0] == '%' && p[1] == '%') {
            tmp[0] = '%';
            plen = 1;
            p++;
        } else {
            tmp[0] = *p;
            plen = 1;
        }
        if (o + plen + 1 > outlen) {
            errno = ENAMETOOLONG;
            return -1;
        }
        memcpy(out + o, piece, plen);
        o += plen;
    }
    out[o] = '\0';
    return 0;
}

int mprof_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int mprof_write_file_atomic(const char *path, int (*write_fn)(int fd, void *arg), void *arg)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    int rc = write_fn(fd, arg);
    int saved = errno;
    if (close(fd) != 0 && rc == 0) {
        rc = -1;
        saved = errno;
    }
    if (rc == 0 && rename(tmp, path) != 0) {
        rc = -1;
        saved = errno;
    }
    if (rc != 0) {
        unlink(tmp);
        errno = saved;
    }
    return rc;
}

const char *mprof_getenv(const char *name)
{
    /* Not getenv: a program may define its own getenv (bash does, backed by
     * its shell variables, which are empty until bash's main runs), and
     * that definition wins symbol resolution even for our calls.  glibc's
     * secure_getenv reads the environment the process received; it returns
     * NULL in set-user-id programs, where LD_PRELOAD is ignored anyway. */
    return secure_getenv(name);
}

int mprof_env_long(const char *name, long min, long max, long *out)
{
    const char *v = mprof_getenv(name);
    if (v == NULL || *v == '\0')
        return 0;
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    while (*end == ' ' || *end == '\t')
        end++;
    if (errno != 0 || end == v || *end != '\0' || x < min || x > max) {
        mprof_warn("ignoring %s=\"%s\": expected an integer from %ld to %ld; using the default", name,
                   v, min, max);
        return -1;
    }
    *out = x;
    return 1;
}
