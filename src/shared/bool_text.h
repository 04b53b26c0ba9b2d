/*
 * The words a yes/no setting takes (a BOOL row of shared/options.def:
 * MPROF_CPU_ITIMER, MPROF_HEADERS), read the same by the library
 * (core/options.c) and the command-line tool: yes/no, true/false, on/off,
 * 1/0, in any case.  Anything else is refused with a message, never taken
 * as "no": MPROF_CPU_ITIMER=yes once meant nothing, silently.
 * Header-only, so that both sides share it without linking each other.
 */
#ifndef MPROF_SHARED_BOOL_TEXT_H
#define MPROF_SHARED_BOOL_TEXT_H

#include <strings.h>

/* What a message lists as accepted. */
#define MPROF_BOOL_WORDS "yes or no (also true/false, on/off, 1/0)"

/* 1 or 0 into *out, and 0 returned; -1 when text is no such word. */
static inline int mprof_parse_bool(const char *text, long *out)
{
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};
    for (unsigned i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

#endif /* MPROF_SHARED_BOOL_TEXT_H */
