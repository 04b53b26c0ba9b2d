/*
 * RE2-syntax expressions matched by a Thompson-NFA simulation; the rules
 * and limits are in re_match.h.
 *
 * Two steps.  The parser turns the pattern into a tree of nodes (a flat
 * array, children linked by index), checking every limit on the way; its
 * recursion follows the groups, so it is at most RE_MAX_DEPTH deep (plus a
 * constant).  The compiler turns the tree into a program of instructions
 * (class, any, split, jump, assertion, match), stopping at RE_MAX_PROGRAM;
 * a counted repetition is its child compiled that many times.  Matching
 * keeps the set of program counters alive at the current position (a
 * sparse set: each counter once) and advances all of them one character
 * at a time, so no input is ever looked at twice.
 */
#include "cli/re_match.h"
#include "shared/hex_digit.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RUNE 0x10FFFFu
#define BAD_RUNE 0xFFFDu

/* ------------------------------------------------------------- UTF-8 */

/* The rune at s[0, len) and its width, as Go decodes: an invalid or
 * overlong sequence, or a surrogate, is U+FFFD of width 1. */
static uint32_t decode_rune(const unsigned char *s, size_t len, size_t *width)
{
    uint32_t c = s[0];
    *width = 1;
    if (c < 0x80)
        return c;
    size_t n;
    uint32_t min;
    if ((c & 0xE0) == 0xC0) {
        n = 2, min = 0x80, c &= 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        n = 3, min = 0x800, c &= 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        n = 4, min = 0x10000, c &= 0x07;
    } else {
        return BAD_RUNE;
    }
    if (len < n)
        return BAD_RUNE;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return BAD_RUNE;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min || c > MAX_RUNE || (c >= 0xD800 && c <= 0xDFFF))
        return BAD_RUNE;
    *width = n;
    return c;
}

/* ------------------------------------------------------------- nodes */

enum node_kind { N_EMPTY, N_CLASS, N_ANY, N_CONCAT, N_ALT, N_REPEAT, N_ASSERT };
enum assert_kind { A_BEGIN_TEXT, A_END_TEXT, A_BEGIN_LINE, A_END_LINE, A_WORD, A_NOT_WORD };

#define NONE UINT32_MAX

typedef struct node {
    uint8_t kind;
    uint8_t arg;          /* N_ANY: 1 when it matches '\n'; N_ASSERT: the kind */
    int32_t min, max;     /* N_REPEAT; max -1 for no bound */
    uint32_t child, next; /* first child; next sibling (NONE: none) */
    uint32_t ranges, nranges; /* N_CLASS: pairs in the range pool */
    uint32_t product;     /* counts of the counted repetitions in here, multiplied */
} node;

/* Flags of (?imsU). */
enum { F_FOLD = 1, F_DOTNL = 2, F_MULTILINE = 4 };

typedef struct parser {
    const unsigned char *s;
    size_t len, pos;
    node *nodes;
    size_t nnodes, nodes_cap;
    uint32_t *ranges; /* lo, hi pairs */
    size_t nranges, ranges_cap;
    int depth;
    unsigned flags;
    char *err;
    size_t errlen;
    bool failed;
} parser;

__attribute__((format(printf, 2, 3))) static uint32_t fail(parser *p, const char *fmt, ...)
{
    if (!p->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err, p->errlen, fmt, ap);
        va_end(ap);
        p->failed = true;
    }
    return NONE;
}

static uint32_t new_node(parser *p, uint8_t kind)
{
    if (p->nnodes == p->nodes_cap) {
        size_t cap = p->nodes_cap ? p->nodes_cap * 2 : 64;
        node *grown = realloc(p->nodes, cap * sizeof(*grown));
        if (grown == NULL)
            return fail(p, "out of memory");
        p->nodes = grown;
        p->nodes_cap = cap;
    }
    node *n = &p->nodes[p->nnodes];
    memset(n, 0, sizeof(*n));
    n->kind = kind;
    n->child = n->next = NONE;
    return (uint32_t)p->nnodes++;
}

static bool add_range(parser *p, uint32_t lo, uint32_t hi)
{
    if (p->nranges + 2 > p->ranges_cap) {
        size_t cap = p->ranges_cap ? p->ranges_cap * 2 : 64;
        uint32_t *grown = realloc(p->ranges, cap * sizeof(*grown));
        if (grown == NULL) {
            fail(p, "out of memory");
            return false;
        }
        p->ranges = grown;
        p->ranges_cap = cap;
    }
    p->ranges[p->nranges++] = lo;
    p->ranges[p->nranges++] = hi;
    return true;
}

/* ------------------------------------------------------------ classes */

/* A class is built at the end of the range pool, from pair index start
 * on; these rework that tail in place. */

static int compare_ranges(const void *a, const void *b)
{
    uint32_t x = ((const uint32_t *)a)[0], y = ((const uint32_t *)b)[0];
    return (x > y) - (x < y);
}

/* Sorted, overlapping and adjacent ranges merged. */
static void normalize(parser *p, size_t start)
{
    size_t n = (p->nranges - start) / 2;
    if (n == 0)
        return;
    uint32_t *r = p->ranges + start;
    qsort(r, n, 2 * sizeof(uint32_t), compare_ranges);
    size_t out = 0;
    for (size_t i = 1; i < n; i++) {
        if (r[2 * i] <= r[2 * out + 1] + 1) {
            if (r[2 * i + 1] > r[2 * out + 1])
                r[2 * out + 1] = r[2 * i + 1];
        } else {
            out++;
            r[2 * out] = r[2 * i];
            r[2 * out + 1] = r[2 * i + 1];
        }
    }
    p->nranges = start + 2 * (out + 1);
}

/* Every rune the (normalized) tail does not hold. */
static bool complement(parser *p, size_t start)
{
    normalize(p, start);
    size_t n = (p->nranges - start) / 2;
    uint32_t *copy = malloc((n ? n : 1) * 2 * sizeof(uint32_t));
    if (copy == NULL) {
        fail(p, "out of memory");
        return false;
    }
    memcpy(copy, p->ranges + start, n * 2 * sizeof(uint32_t));
    p->nranges = start;
    uint32_t next = 0;
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        if (copy[2 * i] > next)
            ok = add_range(p, next, copy[2 * i] - 1);
        next = copy[2 * i + 1] + 1;
    }
    if (ok && next <= MAX_RUNE)
        ok = add_range(p, next, MAX_RUNE);
    free(copy);
    return ok;
}

/* (?i): each ASCII letter range gains its other case. */
static bool fold_case(parser *p, size_t start)
{
    size_t end = p->nranges;
    for (size_t i = start; i < end; i += 2) {
        uint32_t lo = p->ranges[i], hi = p->ranges[i + 1];
        uint32_t a = lo > 'a' ? lo : 'a', b = hi < 'z' ? hi : 'z';
        if (a <= b && !add_range(p, a - 32, b - 32))
            return false;
        a = lo > 'A' ? lo : 'A', b = hi < 'Z' ? hi : 'Z';
        if (a <= b && !add_range(p, a + 32, b + 32))
            return false;
    }
    return true;
}

static bool add_ranges(parser *p, const char *pairs)
{
    for (size_t i = 0; pairs[i] != '\0'; i += 2)
        if (!add_range(p, (unsigned char)pairs[i], (unsigned char)pairs[i + 1]))
            return false;
    return true;
}

/* \d \s \w and their negations, into the tail. */
static bool perl_class(parser *p, char c)
{
    size_t start = p->nranges;
    const char *pairs = c == 'd' || c == 'D'   ? "09"
                        : c == 's' || c == 'S' ? "\t\n\f\r  "
                                               : "09AZ__az";
    if (!add_ranges(p, pairs))
        return false;
    return c >= 'a' || complement(p, start);
}

static const struct {
    const char *name, *pairs;
} posix_classes[] = {
    {"alnum", "09AZaz"}, {"alpha", "AZaz"},        {"ascii", "\x01\x7f"},
    {"blank", "\t\t  "}, {"cntrl", "\x01\x1f\x7f\x7f"}, {"digit", "09"},
    {"graph", "!~"},     {"lower", "az"},          {"print", " ~"},
    {"punct", "!/:@[`{~"}, {"space", "\t\r  "},    {"upper", "AZ"},
    {"word", "09AZ__az"}, {"xdigit", "09AFaf"},
};

/* "[:alpha:]" or "[:^alpha:]" at pos (after the class's '['), into the
 * tail; false without an error when there is none there. */
static bool posix_class(parser *p, bool *found)
{
    *found = false;
    const unsigned char *s = p->s + p->pos;
    size_t left = p->len - p->pos;
    if (left < 4 || s[0] != '[' || s[1] != ':')
        return true;
    const unsigned char *close = NULL;
    for (size_t i = 2; i + 1 < left; i++)
        if (s[i] == ':' && s[i + 1] == ']') {
            close = s + i;
            break;
        }
    if (close == NULL)
        return true;
    bool negated = s[2] == '^';
    const char *name = (const char *)s + 2 + negated;
    size_t name_len = (size_t)((const char *)close - name);
    for (size_t k = 0; k < sizeof(posix_classes) / sizeof(posix_classes[0]); k++) {
        if (strlen(posix_classes[k].name) == name_len &&
            memcmp(posix_classes[k].name, name, name_len) == 0) {
            size_t start = p->nranges;
            if (!add_ranges(p, posix_classes[k].pairs) || (negated && !complement(p, start)))
                return false;
            *found = true;
            p->pos += (size_t)(close - s) + 2;
            return true;
        }
    }
    fail(p, "invalid character class range: [:%.*s:]", (int)name_len, name);
    return false;
}

/* ------------------------------------------------------------ escapes */

enum escape_kind { E_RUNE, E_CLASS, E_ASSERT, E_QUOTE };

/*
 * The escape after a backslash at pos: a rune (*rune), a class added to
 * the tail (\d ...), an assertion (*rune is its kind; not in classes), or
 * \Q.  Returns the kind, or -1 with the error set.
 */
static int parse_escape(parser *p, bool in_class, uint32_t *rune)
{
    if (p->pos >= p->len) {
        fail(p, "trailing backslash at end of expression");
        return -1;
    }
    unsigned char c = p->s[p->pos++];
    switch (c) {
    case 'a': *rune = 7; return E_RUNE;
    case 'f': *rune = '\f'; return E_RUNE;
    case 't': *rune = '\t'; return E_RUNE;
    case 'n': *rune = '\n'; return E_RUNE;
    case 'r': *rune = '\r'; return E_RUNE;
    case 'v': *rune = '\v'; return E_RUNE;
    case 'd': case 'D': case 's': case 'S': case 'w': case 'W':
        return perl_class(p, (char)c) ? E_CLASS : -1;
    case 'Q':
        if (in_class)
            break;
        return E_QUOTE;
    case 'A': case 'z': case 'b': case 'B':
        if (in_class)
            break;
        *rune = c == 'A' ? A_BEGIN_TEXT : c == 'z' ? A_END_TEXT : c == 'b' ? A_WORD : A_NOT_WORD;
        return E_ASSERT;
    case 'p': case 'P':
        fail(p, "Unicode classes (\\%c) are not supported", c);
        return -1;
    case 'x': {
        uint32_t v = 0;
        if (p->pos < p->len && p->s[p->pos] == '{') {
            size_t digits = 0;
            for (p->pos++; p->pos < p->len && p->s[p->pos] != '}'; p->pos++, digits++) {
                int h = mprof_hex_digit(p->s[p->pos]);
                if (h < 0 || digits == 8)
                    break;
                v = v * 16 + (uint32_t)h;
            }
            if (p->pos >= p->len || p->s[p->pos] != '}' || digits == 0 || v > MAX_RUNE)
                break;
            p->pos++;
        } else {
            if (p->len - p->pos < 2 || mprof_hex_digit(p->s[p->pos]) < 0 ||
                mprof_hex_digit(p->s[p->pos + 1]) < 0)
                break;
            v = (uint32_t)(mprof_hex_digit(p->s[p->pos]) * 16 + mprof_hex_digit(p->s[p->pos + 1]));
            p->pos += 2;
        }
        *rune = v;
        return E_RUNE;
    }
    default:
        if (c >= '1' && c <= '9') {
            fail(p, "backreferences (\\%c) are not in RE2's syntax, which has none", c);
            return -1;
        }
        if (c == '0') {
            /* Octal, up to three digits in all. */
            uint32_t v = 0;
            for (int i = 0; i < 2 && p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '7';
                 i++)
                v = v * 8 + (uint32_t)(p->s[p->pos++] - '0');
            *rune = v;
            return E_RUNE;
        }
        /* Punctuation stands for itself; letters and digits are escapes
         * with a meaning, and an unknown one is a mistake. */
        if (c < 0x80 && !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                          (c >= 'A' && c <= 'Z'))) {
            *rune = c;
            return E_RUNE;
        }
        break;
    }
    fail(p, "invalid escape sequence \\%c", c);
    return -1;
}

/* One rune of the pattern, literal. */
static bool pattern_rune(parser *p, uint32_t *rune)
{
    size_t w;
    *rune = decode_rune(p->s + p->pos, p->len - p->pos, &w);
    if (*rune == BAD_RUNE && !(w == 3 && memcmp(p->s + p->pos, "\xEF\xBF\xBD", 3) == 0)) {
        fail(p, "invalid UTF-8 at byte %zu", p->pos);
        return false;
    }
    p->pos += w;
    return true;
}

/* A class node of the tail from start, folded and normalized. */
static uint32_t class_node(parser *p, size_t start, bool negated)
{
    if ((p->flags & F_FOLD) && !fold_case(p, start))
        return NONE;
    if (negated ? !complement(p, start) : (normalize(p, start), false))
        return NONE;
    uint32_t n = new_node(p, N_CLASS);
    if (n == NONE)
        return NONE;
    p->nodes[n].ranges = (uint32_t)start;
    p->nodes[n].nranges = (uint32_t)((p->nranges - start) / 2);
    return n;
}

static uint32_t literal(parser *p, uint32_t rune)
{
    size_t start = p->nranges;
    if (!add_range(p, rune, rune))
        return NONE;
    return class_node(p, start, false);
}

/* "[...]" with pos after the '['. */
static uint32_t parse_class(parser *p)
{
    size_t start = p->nranges;
    bool negated = p->pos < p->len && p->s[p->pos] == '^';
    if (negated)
        p->pos++;
    bool first = true;
    for (;;) {
        if (p->pos >= p->len)
            return fail(p, "missing closing ]");
        unsigned char c = p->s[p->pos];
        if (c == ']' && !first)
            break;
        first = false;
        bool found;
        if (!posix_class(p, &found))
            return NONE;
        if (found)
            continue;
        uint32_t lo;
        if (c == '\\') {
            p->pos++;
            int kind = parse_escape(p, true, &lo);
            if (kind < 0)
                return NONE;
            if (kind == E_CLASS)
                continue;
        } else if (!pattern_rune(p, &lo)) {
            return NONE;
        }
        uint32_t hi = lo;
        if (p->len - p->pos >= 2 && p->s[p->pos] == '-' && p->s[p->pos + 1] != ']') {
            p->pos++;
            if (p->s[p->pos] == '\\') {
                p->pos++;
                int kind = parse_escape(p, true, &hi);
                if (kind < 0)
                    return NONE;
                if (kind != E_RUNE)
                    return fail(p, "invalid character class range ending in a class");
            } else if (!pattern_rune(p, &hi)) {
                return NONE;
            }
            if (hi < lo)
                return fail(p, "invalid character class range: its end comes before its start");
        }
        if (!add_range(p, lo, hi))
            return NONE;
    }
    p->pos++; /* ']' */
    return class_node(p, start, negated);
}

/* --------------------------------------------------------------- tree */

static uint32_t parse_alt(parser *p);

/* "{n}", "{n,}" or "{n,m}" at pos: true (pos past it) with the counts,
 * false (pos unchanged) when it is not one, and then '{' is a literal. */
static bool parse_count(parser *p, int32_t *min, int32_t *max)
{
    size_t i = p->pos + 1;
    long n = -1, m = -1;
    bool comma = false;
    for (long *v = &n;; i++) {
        if (i >= p->len)
            return false;
        unsigned char c = p->s[i];
        if (c >= '0' && c <= '9') {
            /* Anything above the limit is refused below; keep it small. */
            *v = *v < 0 ? c - '0' : (*v > 100000 ? *v : *v * 10 + (c - '0'));
        } else if (c == ',' && !comma && n >= 0) {
            comma = true;
            v = &m;
        } else if (c == '}' && n >= 0) {
            break;
        } else {
            return false;
        }
    }
    p->pos = i + 1;
    *min = (int32_t)(n > 100000 ? 100001 : n);
    *max = !comma ? *min : m < 0 ? -1 : (int32_t)(m > 100000 ? 100001 : m);
    return true;
}

static bool at_repeat(parser *p)
{
    if (p->pos >= p->len)
        return false;
    unsigned char c = p->s[p->pos];
    if (c == '*' || c == '+' || c == '?')
        return true;
    if (c != '{')
        return false;
    size_t saved = p->pos;
    int32_t a, b;
    bool is = parse_count(p, &a, &b);
    p->pos = saved;
    return is;
}

/* "(...)" with pos after the '('; *none when it was only flags "(?i)". */
static uint32_t parse_group(parser *p, bool *none)
{
    *none = false;
    if (p->depth == RE_MAX_DEPTH)
        return fail(p, "groups are nested more than %d deep", RE_MAX_DEPTH);
    unsigned saved_flags = p->flags;
    if (p->pos < p->len && p->s[p->pos] == '?') {
        p->pos++;
        if (p->pos < p->len && (p->s[p->pos] == 'P' || p->s[p->pos] == '<')) {
            /* (?P<name>...) or (?<name>...): a capture, which is a group. */
            if (p->s[p->pos] == 'P')
                p->pos++;
            if (p->pos >= p->len || p->s[p->pos] != '<' || p->pos + 1 >= p->len ||
                p->s[p->pos + 1] == '=' || p->s[p->pos + 1] == '!')
                return fail(p, "lookaround is not in RE2's syntax");
            size_t name = ++p->pos;
            while (p->pos < p->len && p->s[p->pos] != '>') {
                unsigned char c = p->s[p->pos];
                if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                      (c >= 'A' && c <= 'Z') || c == '_'))
                    return fail(p, "invalid named capture");
                p->pos++;
            }
            if (p->pos >= p->len || p->pos == name)
                return fail(p, "invalid named capture");
            p->pos++;
        } else {
            bool clear = false, any = false;
            unsigned flags = p->flags;
            for (;; p->pos++) {
                if (p->pos >= p->len)
                    return fail(p, "missing closing ) after (?");
                unsigned char c = p->s[p->pos];
                unsigned bit = c == 'i' ? F_FOLD : c == 's' ? F_DOTNL : c == 'm' ? F_MULTILINE : 0;
                if (bit != 0 || c == 'U') {
                    flags = clear ? flags & ~bit : flags | bit;
                    any = true;
                } else if (c == '-' && !clear) {
                    clear = true;
                    any = false;
                } else if ((c == ':' || c == ')') && any) {
                    break;
                } else if (c == ':' && !clear) {
                    break; /* (?:...) */
                } else {
                    return fail(p, "invalid or unsupported group (?%c", c);
                }
            }
            p->flags = flags;
            if (p->s[p->pos++] == ')') {
                /* Flags for the rest of the enclosing group: the caller
                 * restores them where that group ends. */
                *none = true;
                return NONE;
            }
        }
    }
    p->depth++;
    uint32_t inner = parse_alt(p);
    p->depth--;
    p->flags = saved_flags;
    if (inner == NONE)
        return NONE;
    if (p->pos >= p->len || p->s[p->pos] != ')')
        return fail(p, "missing closing )");
    p->pos++;
    return inner;
}

/* An atom and its quantifier; *none when there was no atom (flags). */
static uint32_t parse_repeat(parser *p, bool *none)
{
    *none = false;
    unsigned char c = p->s[p->pos];
    uint32_t atom;
    if (at_repeat(p))
        return fail(p, "missing argument to repetition operator at byte %zu", p->pos);
    p->pos++;
    switch (c) {
    case '(':
        atom = parse_group(p, none);
        if (*none)
            return NONE;
        break;
    case '[': atom = parse_class(p); break;
    case '.':
        atom = new_node(p, N_ANY);
        if (atom != NONE)
            p->nodes[atom].arg = (p->flags & F_DOTNL) != 0;
        break;
    case '^':
    case '$':
        atom = new_node(p, N_ASSERT);
        if (atom != NONE)
            p->nodes[atom].arg = (uint8_t)(c == '^' ? (p->flags & F_MULTILINE ? A_BEGIN_LINE
                                                                              : A_BEGIN_TEXT)
                                                    : (p->flags & F_MULTILINE ? A_END_LINE
                                                                              : A_END_TEXT));
        break;
    case '\\': {
        size_t start = p->nranges;
        uint32_t rune;
        int kind = parse_escape(p, false, &rune);
        if (kind < 0)
            return NONE;
        if (kind == E_RUNE) {
            atom = literal(p, rune);
        } else if (kind == E_CLASS) {
            atom = class_node(p, start, false);
        } else if (kind == E_ASSERT) {
            atom = new_node(p, N_ASSERT);
            if (atom != NONE)
                p->nodes[atom].arg = (uint8_t)rune;
        } else {
            /* \Q...\E: literal text, a concatenation of its runes. */
            atom = new_node(p, N_CONCAT);
            uint32_t last = NONE;
            while (atom != NONE && p->pos < p->len &&
                   !(p->s[p->pos] == '\\' && p->pos + 1 < p->len && p->s[p->pos + 1] == 'E')) {
                uint32_t r, lit;
                if (!pattern_rune(p, &r) || (lit = literal(p, r)) == NONE)
                    return NONE;
                if (last == NONE)
                    p->nodes[atom].child = lit;
                else
                    p->nodes[last].next = lit;
                last = lit;
            }
            if (p->pos < p->len)
                p->pos += 2; /* \E */
        }
        break;
    }
    default: {
        p->pos--;
        uint32_t rune;
        if (!pattern_rune(p, &rune))
            return NONE;
        atom = literal(p, rune);
        break;
    }
    }
    if (atom == NONE || !at_repeat(p))
        return atom;

    int32_t min, max;
    bool counted = false;
    c = p->s[p->pos];
    if (c == '{') {
        parse_count(p, &min, &max);
        counted = true;
        if (min > RE_MAX_REPEAT || max > RE_MAX_REPEAT)
            return fail(p, "bad repetition count: RE2 allows at most %d", RE_MAX_REPEAT);
        if (max >= 0 && max < min)
            return fail(p, "bad repetition count {%d,%d}: the maximum is below the minimum", min,
                        max);
    } else {
        p->pos++;
        min = c == '+';
        max = c == '?' ? 1 : -1;
    }
    if (p->pos < p->len && p->s[p->pos] == '?')
        p->pos++; /* non-greedy: the same strings match */
    if (at_repeat(p))
        return fail(p, "bad repetition operator at byte %zu: a repetition of a repetition",
                    p->pos);
    uint32_t r = new_node(p, N_REPEAT);
    if (r == NONE)
        return NONE;
    uint64_t product = p->nodes[atom].product ? p->nodes[atom].product : 1;
    if (counted)
        product *= (uint64_t)(max > min ? max : min > 0 ? min : 1);
    if (counted && product > RE_MAX_REPEAT)
        return fail(p, "bad repetition operator: nested counted repetitions multiply to more "
                       "than %d", RE_MAX_REPEAT);
    node *n = &p->nodes[r];
    n->min = min;
    n->max = max;
    n->child = atom;
    n->product = (uint32_t)(counted ? product : p->nodes[atom].product);
    return r;
}

/* The largest product of the children, which a parent multiplies. */
static uint32_t children_product(const parser *p, uint32_t first)
{
    uint32_t m = 0;
    for (uint32_t c = first; c != NONE; c = p->nodes[c].next)
        if (p->nodes[c].product > m)
            m = p->nodes[c].product;
    return m;
}

static uint32_t parse_concat(parser *p)
{
    uint32_t cat = new_node(p, N_CONCAT), last = NONE;
    if (cat == NONE)
        return NONE;
    while (p->pos < p->len && p->s[p->pos] != '|' && p->s[p->pos] != ')') {
        bool none;
        uint32_t item = parse_repeat(p, &none);
        if (none)
            continue;
        if (item == NONE)
            return NONE;
        if (last == NONE)
            p->nodes[cat].child = item;
        else
            p->nodes[last].next = item;
        last = item;
    }
    p->nodes[cat].product = children_product(p, p->nodes[cat].child);
    return cat;
}

static uint32_t parse_alt(parser *p)
{
    uint32_t first = parse_concat(p);
    if (first == NONE || p->pos >= p->len || p->s[p->pos] != '|')
        return first;
    uint32_t alt = new_node(p, N_ALT), last = first;
    if (alt == NONE)
        return NONE;
    p->nodes[alt].child = first;
    while (p->pos < p->len && p->s[p->pos] == '|') {
        p->pos++;
        uint32_t next = parse_concat(p);
        if (next == NONE)
            return NONE;
        p->nodes[last].next = next;
        last = next;
    }
    p->nodes[alt].product = children_product(p, first);
    return alt;
}

/* ------------------------------------------------------------ program */

enum op { I_CLASS, I_ANY, I_SPLIT, I_JMP, I_ASSERT, I_MATCH };

typedef struct inst {
    uint8_t op;
    uint8_t arg;   /* I_ANY: matches '\n'; I_ASSERT: the kind */
    uint32_t x, y; /* I_SPLIT: both targets; I_JMP: x; I_CLASS: pairs x, count y */
} inst;

struct re_prog {
    inst *code;
    size_t ncode;
    uint32_t *ranges;
    /* Scratch of the matcher: two sparse sets of program counters and a
     * stack for following splits and jumps. */
    uint32_t *dense[2], *sparse[2], *stack;
};

typedef struct compiler {
    const parser *p;
    inst code[RE_MAX_PROGRAM];
    size_t n;
    bool full;
} compiler;

static uint32_t emit(compiler *c, uint8_t op, uint8_t arg, uint32_t x, uint32_t y)
{
    if (c->n == RE_MAX_PROGRAM) {
        c->full = true;
        return 0;
    }
    c->code[c->n] = (inst){.op = op, .arg = arg, .x = x, .y = y};
    return (uint32_t)c->n++;
}

/* The node's code at the end of the program; its recursion follows the
 * tree, whose depth the parser bounded. */
static void compile(compiler *c, uint32_t index)
{
    const node *n = &c->p->nodes[index];
    if (c->full)
        return;
    switch (n->kind) {
    case N_EMPTY: break;
    case N_CLASS: emit(c, I_CLASS, 0, n->ranges, n->nranges); break;
    case N_ANY: emit(c, I_ANY, n->arg, 0, 0); break;
    case N_ASSERT: emit(c, I_ASSERT, n->arg, 0, 0); break;
    case N_CONCAT:
        for (uint32_t k = n->child; k != NONE && !c->full; k = c->p->nodes[k].next)
            compile(c, k);
        break;
    case N_ALT: {
        /* split L1, next; L1: first; jmp end; next: split ... ; last */
        uint32_t jumps = NONE; /* a chain through the jumps' x, patched at the end */
        for (uint32_t k = n->child; k != NONE && !c->full; k = c->p->nodes[k].next) {
            if (c->p->nodes[k].next == NONE) {
                compile(c, k);
                break;
            }
            uint32_t split = emit(c, I_SPLIT, 0, 0, 0);
            c->code[split].x = split + 1;
            compile(c, k);
            uint32_t jmp = emit(c, I_JMP, 0, jumps, 0);
            jumps = jmp;
            c->code[split].y = (uint32_t)c->n;
        }
        if (c->full)
            return;
        while (jumps != NONE) {
            uint32_t next = c->code[jumps].x;
            c->code[jumps].x = (uint32_t)c->n;
            jumps = next;
        }
        break;
    }
    case N_REPEAT: {
        int32_t copies = n->max < 0 && n->min > 0 ? n->min - 1 : n->min;
        for (int32_t i = 0; i < copies && !c->full; i++)
            compile(c, n->child);
        if (n->max < 0 && n->min > 0) {
            /* x+: L: x; split L, next */
            uint32_t loop = (uint32_t)c->n;
            compile(c, n->child);
            emit(c, I_SPLIT, 0, loop, (uint32_t)c->n + 1);
        } else if (n->max < 0) {
            /* x*: L: split L1, out; L1: x; jmp L; out: */
            uint32_t split = emit(c, I_SPLIT, 0, 0, 0);
            c->code[split].x = split + 1;
            compile(c, n->child);
            emit(c, I_JMP, 0, split, 0);
            c->code[split].y = (uint32_t)c->n;
        } else {
            /* x{n,m}: n copies, then m - n optional ones (the same set
             * of strings as nesting them). */
            for (int32_t i = n->min; i < n->max && !c->full; i++) {
                uint32_t split = emit(c, I_SPLIT, 0, 0, 0);
                c->code[split].x = split + 1;
                compile(c, n->child);
                c->code[split].y = (uint32_t)c->n;
            }
        }
        break;
    }
    }
}

re_prog *re_compile(const char *pattern, char *err, size_t errlen)
{
    size_t len = strlen(pattern);
    if (len > RE_MAX_PATTERN) {
        snprintf(err, errlen, "it is %zu bytes long, and mprof takes at most %d", len,
                 RE_MAX_PATTERN);
        return NULL;
    }
    parser p = {.s = (const unsigned char *)pattern, .len = len, .err = err, .errlen = errlen};
    re_prog *re = NULL;
    compiler *c = NULL;
    uint32_t root = parse_alt(&p);
    if (root != NONE && p.pos < p.len)
        fail(&p, "unexpected ) at byte %zu", p.pos);
    if (p.failed)
        goto out;
    c = malloc(sizeof(*c));
    re = calloc(1, sizeof(*re));
    if (c == NULL || re == NULL) {
        fail(&p, "out of memory");
        goto out;
    }
    c->p = &p;
    c->n = 0;
    c->full = false;
    compile(c, root);
    emit(c, I_MATCH, 0, 0, 0);
    if (c->full) {
        fail(&p, "it compiles to more than %d instructions", RE_MAX_PROGRAM);
        goto out;
    }
    re->ncode = c->n;
    re->code = malloc(c->n * sizeof(inst));
    re->ranges = malloc((p.nranges ? p.nranges : 1) * sizeof(uint32_t));
    re->stack = malloc(c->n * 2 * sizeof(uint32_t));
    for (int k = 0; k < 2; k++) {
        /* calloc: the sparse sets read slots they never wrote, which is
         * correct for any value, and zeroed memory keeps checkers quiet. */
        re->dense[k] = calloc(c->n, sizeof(uint32_t));
        re->sparse[k] = calloc(c->n, sizeof(uint32_t));
    }
    if (re->code == NULL || re->ranges == NULL || re->stack == NULL || re->dense[0] == NULL ||
        re->dense[1] == NULL || re->sparse[0] == NULL || re->sparse[1] == NULL) {
        fail(&p, "out of memory");
        goto out;
    }
    memcpy(re->code, c->code, c->n * sizeof(inst));
    memcpy(re->ranges, p.ranges, p.nranges * sizeof(uint32_t));
out:
    free(c);
    free(p.nodes);
    free(p.ranges);
    if (p.failed) {
        re_free(re);
        return NULL;
    }
    return re;
}

void re_free(re_prog *re)
{
    if (re == NULL)
        return;
    free(re->code);
    free(re->ranges);
    free(re->stack);
    for (int k = 0; k < 2; k++) {
        free(re->dense[k]);
        free(re->sparse[k]);
    }
    free(re);
}

/* -------------------------------------------------------------- match */

#define NO_RUNE UINT32_MAX /* before the start, after the end */

typedef struct thread_list {
    uint32_t *dense, *sparse;
    uint32_t n;
} thread_list;

static bool contains(const thread_list *l, uint32_t pc)
{
    uint32_t i = l->sparse[pc];
    return i < l->n && l->dense[i] == pc;
}

static bool is_word(uint32_t c)
{
    return c != NO_RUNE && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                            (c >= 'A' && c <= 'Z') || c == '_');
}

static bool assertion_holds(uint8_t kind, uint32_t prev, uint32_t cur)
{
    switch (kind) {
    case A_BEGIN_TEXT: return prev == NO_RUNE;
    case A_END_TEXT: return cur == NO_RUNE;
    case A_BEGIN_LINE: return prev == NO_RUNE || prev == '\n';
    case A_END_LINE: return cur == NO_RUNE || cur == '\n';
    case A_WORD: return is_word(prev) != is_word(cur);
    default: return is_word(prev) == is_word(cur);
    }
}

/* Adds pc and everything reachable from it without reading a rune
 * (splits, jumps, assertions that hold between prev and cur).  Each pc
 * enters the list once, so this is at most the program's size per step. */
static bool add_thread(const re_prog *re, thread_list *l, uint32_t pc, uint32_t prev,
                       uint32_t cur, uint64_t *budget)
{
    uint32_t *stack = re->stack;
    size_t top = 0;
    stack[top++] = pc;
    while (top > 0) {
        pc = stack[--top];
        if (contains(l, pc))
            continue;
        if (*budget == 0)
            return false;
        (*budget)--;
        l->sparse[pc] = l->n;
        l->dense[l->n++] = pc;
        const inst *in = &re->code[pc];
        switch (in->op) {
        case I_JMP: stack[top++] = in->x; break;
        case I_SPLIT:
            stack[top++] = in->y;
            stack[top++] = in->x;
            break;
        case I_ASSERT:
            if (assertion_holds(in->arg, prev, cur))
                stack[top++] = pc + 1;
            break;
        default: break;
        }
    }
    return true;
}

static bool in_class(const re_prog *re, const inst *in, uint32_t c)
{
    const uint32_t *r = re->ranges + in->x;
    size_t lo = 0, hi = in->y;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c < r[2 * mid])
            hi = mid;
        else if (c > r[2 * mid + 1])
            lo = mid + 1;
        else
            return true;
    }
    return false;
}

int re_full_match(const re_prog *re, const char *text, size_t len, uint64_t *budget)
{
    const unsigned char *s = (const unsigned char *)text;
    thread_list lists[2] = {{re->dense[0], re->sparse[0], 0}, {re->dense[1], re->sparse[1], 0}};
    thread_list *now = &lists[0], *next = &lists[1];
    size_t pos = 0, width = 0;
    uint32_t prev = NO_RUNE;
    uint32_t cur = len > 0 ? decode_rune(s, len, &width) : NO_RUNE;
    if (!add_thread(re, now, 0, prev, cur, budget))
        return -1;
    for (;;) {
        if (now->n == 0)
            return 0;
        if (cur == NO_RUNE) {
            for (uint32_t i = 0; i < now->n; i++)
                if (re->code[now->dense[i]].op == I_MATCH)
                    return 1;
            return 0;
        }
        size_t next_pos = pos + width, next_width = 0;
        uint32_t after = next_pos < len ? decode_rune(s + next_pos, len - next_pos, &next_width)
                                        : NO_RUNE;
        next->n = 0;
        for (uint32_t i = 0; i < now->n; i++) {
            uint32_t pc = now->dense[i];
            const inst *in = &re->code[pc];
            bool step = (in->op == I_CLASS && in_class(re, in, cur)) ||
                        (in->op == I_ANY && (cur != '\n' || in->arg));
            if (step && !add_thread(re, next, pc + 1, cur, after, budget))
                return -1;
        }
        thread_list *t = now;
        now = next;
        next = t;
        prev = cur;
        cur = after;
        pos = next_pos;
        width = next_width;
    }
}
