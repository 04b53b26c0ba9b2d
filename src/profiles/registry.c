/*
 * The profile registry (registry.h): the table of kinds, the one window
 * (delta) implementation, files at exit and the public write functions.
 *
 * Invariants:
 *   1. Entries are only ever added, never removed or changed, so a pointer
 *      handed out by lookup or list stays valid for the process' life.
 *   2. registry_lock guards the table's count and slots while a kind is
 *      added; readers copy under it.  No callback of a kind ever runs with
 *      registry_lock held (callbacks symbolize and allocate: seconds).
 *   3. A kind's file at exit is its exit option's value, read once at
 *      start-up (core/options.h), so it never changes either: a program
 *      that clears its environment still gets its profile.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "core/options.h"
#include "core/os.h"
#include "profiles/registry.h"

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static const mprof_profile *registry[MPROF_MAX_PROFILES];
static int registry_count;

static int valid_profile_name(const char *name)
{
    if (name == NULL || name[0] == '\0' || strlen(name) > 64)
        return 0;
    for (const char *p = name; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              c == '.'))
            return 0;
    }
    return 1;
}

/* A kind is written now (write), over a window (begin/end/cancel, all three
 * or none), or both; a delta needs a snapshot and its release together. */
static int valid_callbacks(const mprof_profile *p)
{
    if (p->write == NULL && p->begin == NULL)
        return 0;
    if ((p->begin != NULL) != (p->end != NULL) || (p->begin != NULL) != (p->cancel != NULL))
        return 0;
    if ((p->snapshot != NULL) != (p->snapshot_free != NULL))
        return 0;
    if (p->snapshot != NULL && (p->write == NULL || p->begin != NULL))
        return 0;
    if (p->default_seconds > 0 && p->begin == NULL)
        return 0;
    return 1;
}

int mprof_profile_register(const mprof_profile *profile)
{
    if (profile == NULL || !valid_profile_name(profile->name) || !valid_callbacks(profile)) {
        errno = EINVAL;
        return -1;
    }
    int rc = 0;
    pthread_mutex_lock(&registry_lock);
    for (int i = 0; i < registry_count; i++) {
        if (strcmp(registry[i]->name, profile->name) == 0) {
            errno = EEXIST;
            rc = -1;
        }
    }
    if (rc == 0 && registry_count == MPROF_MAX_PROFILES) {
        errno = ENOSPC;
        rc = -1;
    }
    if (rc == 0) {
        registry[registry_count] = profile;
        registry_count++;
    }
    pthread_mutex_unlock(&registry_lock);
    return rc;
}

/* Index of a registered kind; -1 if p is not one. */
static int index_of(const mprof_profile *p)
{
    int found = -1;
    pthread_mutex_lock(&registry_lock);
    for (int i = 0; i < registry_count && found < 0; i++)
        if (registry[i] == p)
            found = i;
    pthread_mutex_unlock(&registry_lock);
    return found;
}

const mprof_profile *mprof_profile_lookup(const char *name)
{
    const mprof_profile *found = NULL;
    if (name == NULL)
        return NULL;
    pthread_mutex_lock(&registry_lock);
    for (int i = 0; i < registry_count && found == NULL; i++)
        if (strcmp(registry[i]->name, name) == 0)
            found = registry[i];
    pthread_mutex_unlock(&registry_lock);
    return found;
}

int mprof_profile_list(const mprof_profile **out, int max)
{
    pthread_mutex_lock(&registry_lock);
    int n = registry_count < max ? registry_count : max;
    memcpy(out, registry, (size_t)n * sizeof *out);
    pthread_mutex_unlock(&registry_lock);
    /* Insertion sort by name: a handful of entries, listed alphabetically
     * as Go's index page does. */
    for (int i = 1; i < n; i++) {
        const mprof_profile *p = out[i];
        int j = i;
        while (j > 0 && strcmp(out[j - 1]->name, p->name) > 0) {
            out[j] = out[j - 1];
            j--;
        }
        out[j] = p;
    }
    return n;
}

const char *mprof_profile_exit_pattern(const mprof_profile *p)
{
    return index_of(p) >= 0 ? mprof_option_text(p->exit_option) : NULL;
}

int mprof_profile_has_window(const mprof_profile *p)
{
    return p->snapshot != NULL || p->begin != NULL;
}

/* ------------------------------------------------------------- windows */

struct mprof_profile_window {
    const mprof_profile *p;
    mprof_profile_base base; /* snapshot kinds */
    void *state;             /* begin/end kinds */
};

int mprof_profile_window_begin(const mprof_profile *p, int fd, const mprof_profile_params *params,
                               mprof_profile_window **out)
{
    if (!mprof_profile_has_window(p)) {
        errno = ENOTSUP;
        return -1;
    }
    mprof_profile_window *w = calloc(1, sizeof *w);
    if (w == NULL)
        return -1;
    w->p = p;
    if (p->snapshot != NULL) {
        w->base.start_mono_ns = mprof_mono_ns();
        w->base.snapshot = p->snapshot();
        if (w->base.snapshot == NULL) {
            int saved = errno ? errno : ENOMEM;
            free(w);
            errno = saved;
            return -1;
        }
    } else if (p->begin(fd, params, &w->state) != 0) {
        int saved = errno;
        free(w);
        errno = saved;
        return -1;
    }
    *out = w;
    return 0;
}

void mprof_profile_window_cancel(mprof_profile_window *w, int fd)
{
    if (w == NULL)
        return;
    if (w->p->snapshot != NULL)
        w->p->snapshot_free(w->base.snapshot);
    else
        w->p->cancel(fd, w->state);
    free(w);
}

int mprof_profile_window_end(mprof_profile_window *w, int fd, const mprof_profile_params *params)
{
    int rc;
    if (w->p->snapshot != NULL) {
        rc = w->p->write(fd, params, &w->base);
        int saved = errno;
        w->p->snapshot_free(w->base.snapshot);
        errno = saved;
    } else {
        rc = w->p->end(fd, w->state, params);
    }
    int saved = errno;
    free(w);
    errno = saved;
    return rc;
}

/* ------------------------------------------------------------- writing */

int mprof_profile_write(const mprof_profile *p, int fd, int debug)
{
    if (p->write == NULL) {
        errno = ENOTSUP;
        return -1;
    }
    mprof_profile_params params = {.seconds = 0, .debug = debug, .gc = 0};
    mprof_guard_enter();
    int rc = p->write(fd, &params, NULL);
    int saved = errno;
    mprof_guard_leave();
    errno = saved;
    return rc;
}

static int write_now(int fd, void *arg) { return mprof_profile_write(arg, fd, 0); }

int mprof_profile_write_file(const mprof_profile *p, const char *path)
{
    if (p->write == NULL) {
        errno = ENOTSUP;
        return -1;
    }
    mprof_guard_enter();
    int rc = mprof_write_file_atomic(path, write_now, (void *)p);
    int saved = errno;
    mprof_guard_leave();
    errno = saved;
    return rc;
}

void mprof_profiles_at_exit(void)
{
    const mprof_profile *kinds[MPROF_MAX_PROFILES];
    pthread_mutex_lock(&registry_lock);
    int n = registry_count;
    memcpy(kinds, registry, (size_t)n * sizeof kinds[0]);
    pthread_mutex_unlock(&registry_lock);
    for (int i = n - 1; i >= 0; i--) {
        const mprof_profile *p = kinds[i];
        const char *pattern = mprof_option_text(p->exit_option);
        if (pattern == NULL || p->write == NULL)
            continue;
        /* Named as both ways of setting it: "MPROF_HEAP or mprof run's
         * --heap", so a user of mprof run recognises what he typed. */
        char setting[96];
        const char *flag = mprof_option_flag(p->exit_option);
        snprintf(setting, sizeof setting, "%s%s%s", mprof_option_name(p->exit_option),
                 flag ? " or mprof run's " : "", flag ? flag : "");
        (void)mprof_write_output(mprof_profile_what(p), setting, pattern,
                                 (p->flags & MPROF_PROFILE_HEAP_DUMP) ? MPROF_OUTPUT_DUMP
                                                                      : MPROF_OUTPUT_PPROF,
                                 write_now, (void *)p);
    }
}

/* A forked child has one thread; the HTTP worker may have held the lock
 * for a lookup when another thread forked. */
void mprof_profiles_postfork_child(void)
{
    static const pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    memcpy(&registry_lock, &fresh, sizeof fresh);
}

/* ----------------------------------------------------------- public API */

/* The public write functions' shape: 0, or -errno with errno set too. */
static int failed(int error)
{
    errno = error;
    return -error;
}

MPROF_API int mprof_write_profile_fd(const char *name, int fd, int debug)
{
    const mprof_profile *p = mprof_profile_lookup(name);
    if (p == NULL || fd < 0 || debug < 0)
        return failed(EINVAL);
    return mprof_profile_write(p, fd, debug) == 0 ? 0 : failed(errno);
}

MPROF_API int mprof_write_profile(const char *name, const char *path)
{
    const mprof_profile *p = mprof_profile_lookup(name);
    char expanded[PATH_MAX];
    if (p == NULL || path == NULL)
        return failed(EINVAL);
    if (mprof_expand_path(path, expanded, sizeof expanded) != 0)
        return failed(ENAMETOOLONG);
    return mprof_profile_write_file(p, expanded) == 0 ? 0 : failed(errno);
}
