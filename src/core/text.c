/* The runtime's text writer (core/text.h). */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/text.h"

void mprof_text_fd(mprof_text *t, int fd)
{
    t->fd = fd;
    t->failed = 0;
    t->err = 0;
    t->buf = t->local;
    t->cap = sizeof t->local;
    t->len = 0;
}

void mprof_text_buffer(mprof_text *t, char *buf, size_t cap)
{
    t->fd = -1;
    t->failed = 0;
    t->err = 0;
    t->buf = buf;
    t->cap = cap;
    t->len = 0;
}

static void text_flush(mprof_text *t)
{
    if (t->fd < 0 || t->len == 0)
        return;
    if (!t->failed && mprof_write_all(t->fd, t->buf, t->len) != 0) {
        t->failed = 1;
        t->err = errno;
    }
    t->len = 0;
}

void mprof_text_write(mprof_text *t, const char *data, size_t len)
{
    if (t->fd >= 0) {
        if (t->len + len > t->cap)
            text_flush(t);
        if (len > t->cap) {
            if (!t->failed && mprof_write_all(t->fd, data, len) != 0) {
                t->failed = 1;
                t->err = errno;
            }
            return;
        }
        memcpy(t->buf + t->len, data, len);
        t->len += len;
        return;
    }
    /* Fixed buffer: keep one byte for the NUL, drop what does not fit. */
    if (t->cap == 0 || t->len >= t->cap - 1)
        return;
    size_t room = t->cap - 1 - t->len;
    if (len > room)
        len = room;
    memcpy(t->buf + t->len, data, len);
    t->len += len;
}

void mprof_text_printf(mprof_text *t, const char *fmt, ...)
{
    char line[PATH_MAX + 4096];
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (m <= 0)
        return;
    mprof_text_write(t, line, (size_t)m < sizeof line ? (size_t)m : sizeof line - 1);
}

void mprof_text_html(mprof_text *t, const char *text)
{
    for (const char *p = text; *p; p++) {
        switch (*p) {
        case '<': mprof_text_write(t, "&lt;", 4); break;
        case '>': mprof_text_write(t, "&gt;", 4); break;
        case '&': mprof_text_write(t, "&amp;", 5); break;
        case '"': mprof_text_write(t, "&#34;", 5); break;
        case '\'': mprof_text_write(t, "&#39;", 5); break;
        default: mprof_text_write(t, p, 1); break;
        }
    }
}

long mprof_text_finish(mprof_text *t)
{
    if (t->fd >= 0) {
        text_flush(t);
        if (t->failed) {
            errno = t->err;
            return -1;
        }
        return 0;
    }
    if (t->cap > 0)
        t->buf[t->len] = '\0';
    return (long)t->len;
}
