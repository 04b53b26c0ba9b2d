/*
 * core: the one text writer of the runtime, for every text body mprof
 * produces (the HTTP index page, Go's legacy debug=1/2 profile texts,
 * mprof_stack's buffer).  No stdio: a FILE would take the host's stdio
 * locks, which a thread of the host may hold across a fork or a signal.
 *
 * Two modes: to a descriptor (buffered, flushed when full and at finish;
 * the first write error is kept and reported by finish), or into a caller's
 * fixed buffer (text beyond it dropped, always NUL-terminated).
 */
#ifndef MPROF_CORE_TEXT_H
#define MPROF_CORE_TEXT_H

#include <stddef.h>

#include "core/core.h"

typedef struct mprof_text {
    int fd;     /* >= 0: flushed there; -1: fixed buffer */
    int failed; /* a write failed (errno kept in err) */
    int err;
    char *buf;
    size_t cap, len;
    char local[16384];
} mprof_text;

MPROF_HIDDEN void mprof_text_fd(mprof_text *t, int fd);
MPROF_HIDDEN void mprof_text_buffer(mprof_text *t, char *buf, size_t cap);
MPROF_HIDDEN void mprof_text_write(mprof_text *t, const char *data, size_t len);
/* A line longer than 4 KiB plus PATH_MAX is cut: no allocation here. */
MPROF_HIDDEN void mprof_text_printf(mprof_text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* text with &, <, >, " and ' escaped for HTML. */
MPROF_HIDDEN void mprof_text_html(mprof_text *t, const char *text);
/* fd mode: writes what is buffered; 0, or -1 with errno of the first
 * failed write.  Buffer mode: NUL-terminates and returns the length. */
MPROF_HIDDEN long mprof_text_finish(mprof_text *t);

#endif /* MPROF_CORE_TEXT_H */
