/*
 * Labels: the interned label sets and each thread's current one (what it
 * owns and its invariants: labels.h).
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "core/spinlock.h"
#include "heap/labels.h"
#include "shared/hash.h"

__thread uint32_t mprof_tls_labels __attribute__((tls_model("initial-exec")));
static __thread uint32_t tls_stack[MPROF_LABEL_DEPTH];
static __thread int tls_depth;

/* sets[id - 1]; published with a release store once complete. */
static const struct mprof_labelset *_Atomic sets[MPROF_LABEL_SETS];
static uint32_t nsets; /* labels lock */
/* Interning: open addressing over ids by hash, twice the sets.  Written
 * under the labels lock, a slot once and for good, with a release store
 * after its set was published; so a push that finds its set already made
 * (the common case: a server pushes the same few labels per request)
 * probes without the lock, and only a miss takes it and probes again. */
static _Atomic uint32_t index_of[2 * MPROF_LABEL_SETS];
static spinlock labels_lock;

const struct mprof_labelset *mprof_labelset_get(uint32_t id)
{
    if (id == 0 || id > MPROF_LABEL_SETS)
        return NULL;
    return atomic_load_explicit(&sets[id - 1], memory_order_acquire);
}

static void said_once(const char *what)
{
    static _Atomic int said;
    if (!atomic_exchange(&said, 1))
        mprof_warn("label not set: %s (further failures are not reported)", what);
}

static uint64_t hash_pairs(const char *const *k, const char *const *v, uint32_t n)
{
    uint64_t h = 0x6c61626c;
    for (uint32_t i = 0; i < n; i++)
        h = mprof_mix64(h ^ mprof_fnv1a_str(k[i]) ^ mprof_mix64(mprof_fnv1a_str(v[i]) + i));
    return h;
}

static int same_pairs(const struct mprof_labelset *s, const char *const *k, const char *const *v,
                      uint32_t n)
{
    if (s->n != n)
        return 0;
    for (uint32_t i = 0; i < n; i++)
        if (strcmp(s->key[i], k[i]) != 0 || strcmp(s->value[i], v[i]) != 0)
            return 0;
    return 1;
}

static char *arena_strdup(const char *s)
{
    size_t len = strlen(s) + 1;
    char *c = mprof_arena_alloc(len);
    if (c != NULL)
        memcpy(c, s, len);
    return c;
}

/* The slot of the set k/v in index_of, or of the empty slot where it
 * would go (*id 0).  Lock-free: see index_of. */
static size_t probe(uint64_t h, const char *const *k, const char *const *v, uint32_t n,
                    uint32_t *id)
{
    size_t mask = 2 * MPROF_LABEL_SETS - 1, j = h & mask;
    uint32_t x;
    for (; (x = atomic_load_explicit(&index_of[j], memory_order_acquire)) != 0;
         j = (j + 1) & mask) {
        const struct mprof_labelset *s = atomic_load_explicit(&sets[x - 1], memory_order_acquire);
        if (s->hash == h && same_pairs(s, k, v, n)) {
            *id = x;
            return j;
        }
    }
    *id = 0;
    return j;
}

/* The id of the set of pairs k/v (sorted by key), made if new; 0 with
 * errno when a bound or memory runs out. */
static uint32_t intern(const char *const *k, const char *const *v, uint32_t n)
{
    if (n == 0)
        return 0;
    uint64_t h = hash_pairs(k, v, n);
    uint32_t id = 0;
    (void)probe(h, k, v, n, &id);
    if (id != 0)
        return id;
    spin_lock(&labels_lock);
    /* Again under the lock: another push may have made it meanwhile. */
    size_t j = probe(h, k, v, n, &id);
    if (id != 0)
        goto out;
    if (nsets == MPROF_LABEL_SETS) {
        errno = ENOSPC;
        goto out;
    }
    struct mprof_labelset *s = mprof_arena_alloc(sizeof *s);
    if (s == NULL) {
        errno = ENOMEM;
        goto out;
    }
    s->n = n;
    s->hash = h;
    for (uint32_t i = 0; i < n; i++) {
        s->key[i] = arena_strdup(k[i]);
        s->value[i] = arena_strdup(v[i]);
        if (s->key[i] == NULL || s->value[i] == NULL) {
            errno = ENOMEM;
            goto out; /* the arena's memory is lost, not the set's id */
        }
    }
    s->id = ++nsets;
    atomic_store_explicit(&sets[s->id - 1], s, memory_order_release);
    atomic_store_explicit(&index_of[j], s->id, memory_order_release);
    id = s->id;
out:
    spin_unlock(&labels_lock);
    return id;
}

int mprof_labels_push(const char *key, const char *value)
{
    if (key == NULL || value == NULL || key[0] == '\0' || strlen(key) > MPROF_LABEL_LEN ||
        strlen(value) > MPROF_LABEL_LEN) {
        said_once("key or value empty, NULL or longer than 63 bytes");
        return -EINVAL;
    }
    if (tls_depth == MPROF_LABEL_DEPTH) {
        said_once("more than 16 nested mprof_labels_push");
        return -E2BIG;
    }
    /* The current pairs with key set to value, kept sorted by key. */
    const char *k[MPROF_LABEL_MAX + 1], *v[MPROF_LABEL_MAX + 1];
    uint32_t n = 0;
    const struct mprof_labelset *cur = mprof_labelset_get(mprof_tls_labels);
    int placed = 0;
    for (uint32_t i = 0; cur != NULL && i < cur->n; i++) {
        int c = strcmp(cur->key[i], key);
        if (!placed && c >= 0) {
            k[n] = key;
            v[n++] = value;
            placed = 1;
            if (c == 0)
                continue; /* replaced */
        }
        k[n] = cur->key[i];
        v[n++] = cur->value[i];
    }
    if (!placed) {
        k[n] = key;
        v[n++] = value;
    }
    if (n > MPROF_LABEL_MAX) {
        said_once("more than 8 keys at once");
        return -E2BIG;
    }
    mprof_guard_enter();
    uint32_t id = intern(k, v, n);
    int err = errno;
    mprof_guard_leave();
    if (id == 0) {
        said_once(err == ENOSPC ? "more than 4096 distinct label sets in the process"
                                : "out of profiler memory");
        return -(err == ENOSPC ? ENOSPC : ENOMEM);
    }
    tls_stack[tls_depth++] = mprof_tls_labels;
    mprof_tls_labels = id;
    return 0;
}

void mprof_labels_pop(void)
{
    if (tls_depth > 0)
        mprof_tls_labels = tls_stack[--tls_depth];
}

int mprof_with_labels(const char *key, const char *value, void (*fn)(void *arg), void *arg)
{
    int rc = mprof_labels_push(key, value);
    if (fn != NULL)
        fn(arg);
    if (rc == 0)
        mprof_labels_pop();
    return rc;
}

void mprof_labels_repair(uint32_t me, struct mprof_fork_repair *r)
{
    uint32_t owner = spin_owner(&labels_lock);
    if (owner == me) {
        r->held_here++;
    } else if (owner != 0) {
        /* A lost push may have half made a set: it was not published (the
         * id is stored last), and its index slot was not written. */
        spin_reset(&labels_lock);
        r->lost_updates++;
    }
}
