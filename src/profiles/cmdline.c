/*
 * The "cmdline" kind, as Go's net/http/pprof serves it: the program's
 * arguments, NUL-separated, always as text.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "profiles/hooks.h"

static int cmdline_write(int fd, const mprof_profile_params *params,
                         const mprof_profile_base *base)
{
    (void)params;
    (void)base;
    int in = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return -1;
    /* The kernel ends every argument with a NUL; Go joins os.Args with NUL
     * separators, so the last NUL is held back until more text follows. */
    char buf[4096];
    int pending_nul = 0, rc = 0;
    for (;;) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -1;
            break;
        }
        if (n == 0)
            break;
        if (pending_nul && mprof_write_all(fd, "", 1) != 0) {
            rc = -1;
            break;
        }
        pending_nul = buf[n - 1] == '\0';
        if (mprof_write_all(fd, buf, (size_t)(n - pending_nul)) != 0) {
            rc = -1;
            break;
        }
    }
    int saved = errno;
    close(in);
    errno = saved;
    return rc;
}

static const mprof_profile cmdline_profile = {
    .name = "cmdline",
    .description = "The command line invocation of the current program",
    .flags = MPROF_PROFILE_TEXT,
    .write = cmdline_write,
};

void mprof_cmdline_init(void) { (void)mprof_profile_register(&cmdline_profile); }
