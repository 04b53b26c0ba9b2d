/*
 * The regular expressions of a profile's frame filters (drop_frames,
 * keep_frames): RE2's syntax, which pprof writes and reads, matched with
 * RE2's guarantees.  The filters come from the file, so they are hostile
 * input like the rest of it; glibc's regcomp/regexec are not fit for that
 * (a stack overflow on 20,000 nested groups, gigabytes for a{32767}{32767},
 * exponential backtracking on backreferences, and a DFA cache that grows
 * without bound on ".*a.{30}", a pattern within any structural limit).
 *
 * Invariants:
 *  1. A pattern is compiled only within the limits below: RE_MAX_PATTERN
 *     bytes, groups nested RE_MAX_DEPTH deep, repetition counts up to
 *     RE_MAX_REPEAT and nested counted repetitions whose counts multiply
 *     to RE_MAX_REPEAT at most (RE2's own rules), no backreferences (RE2
 *     has none), and a program of RE_MAX_PROGRAM instructions.  The
 *     parser's recursion is bounded by the nesting limit.
 *  2. Matching is a Thompson-NFA simulation (Pike's VM without captures):
 *     time linear in the subject times the program, memory a fixed three
 *     arrays of the program's size, no backtracking, nothing cached.  Every
 *     thread step is counted against the caller's budget, so the work over
 *     a whole profile is bounded too.
 *
 * Supported: literals (UTF-8), ".", "[...]" with ranges, negation, POSIX
 * classes "[:alpha:]" and escapes, "\d \D \s \S \w \W", "\b \B \A \z",
 * "^ $", "* + ? {n} {n,} {n,m}" (a trailing "?" for non-greedy is accepted:
 * it does not change whether a string matches), "|", "(...)", "(?:...)",
 * "(?P<name>...)", "(?<name>...)", flags "(?i) (?s) (?m) (?U)" and their
 * scoped form "(?i:...)", "\Q...\E", "\x41 \x{263a} \123 \a \f \t \n \r
 * \v".  Case folding is ASCII's.  Refused with a reason: Unicode classes
 * ("\pL"), lookaround, backreferences, and anything outside the limits.
 */
#ifndef MPROF_CLI_RE_MATCH_H
#define MPROF_CLI_RE_MATCH_H

#include <stddef.h>
#include <stdint.h>

#define RE_MAX_PATTERN 4096
#define RE_MAX_DEPTH 32
#define RE_MAX_REPEAT 1000
#define RE_MAX_PROGRAM 20000

typedef struct re_prog re_prog;

/* Compiles pattern for whole-string matches (as pprof anchors its
 * filters: "^(" pattern ")$").  NULL with the reason in err. */
re_prog *re_compile(const char *pattern, char *err, size_t errlen);

/*
 * Whether the whole of s[0, len) matches: 1 or 0, or -1 when *budget (thread
 * steps, decremented as they are spent) ran out first.
 */
int re_full_match(const re_prog *re, const char *s, size_t len, uint64_t *budget);

void re_free(re_prog *re);

#endif /* MPROF_CLI_RE_MATCH_H */
