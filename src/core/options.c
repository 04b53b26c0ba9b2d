/*
 * The settings, read once from the environment against the options table
 * (shared/options.def); the rules are in core/options.h.
 */
#include "core/options.h"
#include "shared/bool_text.h"
#include "shared/suggest.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

enum option_type { TYPE_INT, TYPE_BOOL, TYPE_PATH, TYPE_TEXT };
enum option_audience { AUDIENCE_USER, AUDIENCE_CLI, AUDIENCE_TEST, AUDIENCE_INTERNAL };

struct option_row {
    const char *name;
    enum option_type type;
    enum option_audience audience;
    long deflt, min, max;
    const char *flag; /* mprof run's, or NULL */
};

static const struct option_row rows[MPROF_OPT_COUNT] = {
#define MPROF_OPTION(ID, NAME, TYPE, AUDIENCE, HINT, DEFAULT, DEFAULT_TEXT, MIN, MAX, FLAG, DOC)  \
    [MPROF_OPT_##ID] = {NAME, TYPE_##TYPE, AUDIENCE_##AUDIENCE, DEFAULT, MIN, MAX, FLAG},
#include "shared/options.def"
#undef MPROF_OPTION
};

/* Values, written by the one loading thread before `state` becomes
 * LOADED and never again (invariant 4). */
static int given[MPROF_OPT_COUNT];
static long numbers[MPROF_OPT_COUNT];
static const char *texts[MPROF_OPT_COUNT];
/* Copies of the PATH and TEXT values: the program may overwrite its
 * environment strings in place (setproctitle does).  Each value is below
 * PATH_MAX (invariant 2), and a program sets a handful. */
static char text_pool[16384];
static size_t text_pool_used;

enum { UNLOADED, LOADING, LOADED };
static _Atomic int state;
static __thread int loading_here;

extern char **environ;

static const char *keep_text(const char *name, const char *v)
{
    size_t n = strlen(v) + 1;
    if (n > PATH_MAX) {
        mprof_warn("ignoring %s: longer than %d bytes", name, PATH_MAX - 1);
        return NULL;
    }
    if (n > sizeof text_pool - text_pool_used) {
        mprof_warn("ignoring %s: the MPROF_* values together exceed %zu bytes", name,
                   sizeof text_pool);
        return NULL;
    }
    char *copy = text_pool + text_pool_used;
    memcpy(copy, v, n);
    text_pool_used += n;
    return copy;
}

static int parse_long(const struct option_row *r, const char *v, long *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    while (*end == ' ' || *end == '\t')
        end++;
    if (errno != 0 || end == v || *end != '\0' || x < r->min || x > r->max) {
        mprof_warn("ignoring %s=\"%s\": expected an integer from %ld to %ld; using the default",
                   r->name, v, r->min, r->max);
        return -1;
    }
    *out = x;
    return 0;
}

static int known_name(const char *name, size_t len)
{
    for (int i = 1; i < MPROF_OPT_COUNT; i++)
        if (strlen(rows[i].name) == len && memcmp(rows[i].name, name, len) == 0)
            return 1;
    return 0;
}

/* `part` ends with `word` at a '_' boundary, or starts with it at one:
 * MPROF_SAMPLE_RATE names RATE, MPROF_HEAP_FILE names HEAP. */
static int names_word(const char *part, const char *word)
{
    size_t p = strlen(part), w = strlen(word);
    if (p <= w)
        return 0;
    return (memcmp(part + p - w, word, w) == 0 && part[p - w - 1] == '_') ||
           (memcmp(part, word, w) == 0 && part[w] == '_');
}

const char *mprof_option_suggest(const char *unknown)
{
    static const size_t prefix = sizeof "MPROF_" - 1;
    if (strncmp(unknown, "MPROF_", prefix) != 0)
        return NULL;
    const char *part = unknown + prefix;
    const char *best = NULL;
    unsigned best_d = UINT_MAX;
    for (int i = 1; i < MPROF_OPT_COUNT; i++) {
        const struct option_row *r = &rows[i];
        if (r->audience == AUDIENCE_INTERNAL || r->audience == AUDIENCE_TEST)
            continue;
        const char *known = r->name + prefix;
        size_t len = strlen(known);
        unsigned limit = mprof_suggest_limit(len);
        unsigned d = mprof_edit_distance(part, known);
        if (d > limit)
            d = names_word(part, known) ? limit + 1 : UINT_MAX;
        if (d < best_d) {
            best_d = d;
            best = r->name;
        }
    }
    return best;
}

/* An MPROF_* name that is no setting: said once, by the first profiled
 * process of a tree only (MPROF_ROOT_PID is unset there), so that a build
 * run under mprof does not repeat it for every compiler it starts.
 * MPROF_TEST_* belongs to test harnesses (tests/README.md), known or not. */
static void warn_unknown(int is_root)
{
    if (!is_root || environ == NULL)
        return;
    for (char **e = environ; *e != NULL; e++) {
        if (strncmp(*e, "MPROF_", 6) != 0 || strncmp(*e, "MPROF_TEST_", 11) == 0)
            continue;
        const char *eq = strchr(*e, '=');
        size_t len = eq ? (size_t)(eq - *e) : strlen(*e);
        if (known_name(*e, len))
            continue;
        char name[64];
        if (len >= sizeof name)
            len = sizeof name - 1;
        memcpy(name, *e, len);
        name[len] = '\0';
        const char *close = mprof_option_suggest(name);
        if (close != NULL)
            mprof_warn("ignoring unknown setting %s: did you mean %s? (mprof help lists the "
                       "settings)", name, close);
        else
            mprof_warn("ignoring unknown setting %s (mprof help lists the settings)", name);
    }
}

static void load(void)
{
    /* In a set-user-id program secure_getenv answers NULL for everything,
     * and LD_PRELOAD was ignored anyway: stay silent, all defaults. */
    int secure = getauxval(AT_SECURE) != 0;
    for (int i = 1; i < MPROF_OPT_COUNT; i++) {
        const struct option_row *r = &rows[i];
        numbers[i] = r->deflt;
        /* Not getenv: a program may define its own (bash does, backed by
         * its shell variables, which are empty until bash's main runs).
         * secure_getenv reads the environment the process received. */
        const char *v = secure ? NULL : secure_getenv(r->name);
        if (v == NULL || *v == '\0')
            continue;
        if (r->type == TYPE_INT) {
            if (parse_long(r, v, &numbers[i]) == 0)
                given[i] = 1;
        } else if (r->type == TYPE_BOOL) {
            if (mprof_parse_bool(v, &numbers[i]) == 0)
                given[i] = 1;
            else
                mprof_warn("ignoring %s=\"%s\": expected " MPROF_BOOL_WORDS "; using the "
                           "default (%s)",
                           r->name, v, r->deflt ? "yes" : "no");
        } else if ((texts[i] = keep_text(r->name, v)) != NULL) {
            given[i] = 1;
        }
    }
    if (!secure)
        warn_unknown(!given[MPROF_OPT_ROOT_PID]);
}

void mprof_options_load(void)
{
    if (MPROF_LIKELY(atomic_load_explicit(&state, memory_order_acquire) == LOADED))
        return;
    if (loading_here)
        return; /* a read from inside the load itself: it sees defaults */
    int expected = UNLOADED;
    if (atomic_compare_exchange_strong(&state, &expected, LOADING)) {
        loading_here = 1;
        load();
        loading_here = 0;
        atomic_store_explicit(&state, LOADED, memory_order_release);
        return;
    }
    /* Another thread is loading: a few microseconds, once per process. */
    while (atomic_load_explicit(&state, memory_order_acquire) != LOADED)
        sched_yield();
}

void mprof_options_reset_for_test(void)
{
    memset(given, 0, sizeof given);
    memset(texts, 0, sizeof texts);
    text_pool_used = 0;
    atomic_store(&state, UNLOADED);
}

static int valid_id(enum mprof_option_id id)
{
    return id > MPROF_OPT_NONE && id < MPROF_OPT_COUNT;
}

int mprof_option_is_set(enum mprof_option_id id)
{
    mprof_options_load();
    return valid_id(id) && given[id];
}

long mprof_option_long(enum mprof_option_id id)
{
    mprof_options_load();
    if (!valid_id(id))
        return 0;
    return loading_here ? rows[id].deflt : numbers[id];
}

const char *mprof_option_text(enum mprof_option_id id)
{
    mprof_options_load();
    return valid_id(id) ? texts[id] : NULL;
}

long mprof_option_min(enum mprof_option_id id)
{
    return valid_id(id) ? rows[id].min : 0;
}

long mprof_option_max(enum mprof_option_id id)
{
    return valid_id(id) ? rows[id].max : 0;
}

const char *mprof_option_name(enum mprof_option_id id)
{
    return valid_id(id) ? rows[id].name : "";
}

const char *mprof_option_flag(enum mprof_option_id id)
{
    return valid_id(id) ? rows[id].flag : NULL;
}
