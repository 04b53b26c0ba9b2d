/*
 * The leak benchmark's program (bench/leaks_bench.sh): a heap like a
 * server's at exit.  N records of 32-288 bytes, each with a name string,
 * kept in chained hash buckets from a global table; 4N short-lived
 * allocations churned meanwhile; then one record in ten unlinked and lost
 * (with its name: a direct and an indirect leak each), and one in fifty
 * lost as a pair pointing to each other (a cycle).  Usage: leaks_work N
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bench_rng.h"

struct rec {
    struct rec *next;
    char *name;
    struct rec *peer;
    char body[];
};

/* Global and volatile: the compiler may not keep the table in a register
 * only, as it could a static that main alone uses. */
struct rec **volatile table;
size_t nbuckets;

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 200000;
    uint64_t rng = 88172645463325252ull;
    nbuckets = n / 4 + 1;
    table = calloc(nbuckets, sizeof *table);
    void *churn[256] = {0};
    for (size_t i = 0; i < n; i++) {
        size_t size = 32 + xorshift(&rng) % 256;
        struct rec *r = malloc(sizeof *r + size);
        memset(r->body, (int)i, size);
        r->name = malloc(24);
        memcpy(r->name, "record-name-0123456789", 23);
        r->name[23] = 0;
        r->peer = NULL;
        size_t b = xorshift(&rng) % nbuckets;
        r->next = table[b];
        table[b] = r;
        for (int k = 0; k < 4; k++) {
            size_t slot = xorshift(&rng) % 256;
            free(churn[slot]);
            churn[slot] = malloc(16 + xorshift(&rng) % 512);
        }
    }
    for (int k = 0; k < 256; k++)
        free(churn[k]);
    /* Lose one record in ten (it keeps its name: indirect). */
    for (size_t b = 0; b < nbuckets; b++) {
        struct rec **pp = &table[b];
        while (*pp != NULL) {
            if ((xorshift(&rng) % 10) == 0) {
                struct rec *lost = *pp;
                *pp = lost->next;
                lost->next = NULL;
            } else {
                pp = &(*pp)->next;
            }
        }
    }
    /* Cycles: n / 50 pairs pointing to each other, lost. */
    for (size_t i = 0; i < n / 50; i++) {
        struct rec *a = malloc(sizeof *a + 16), *c = malloc(sizeof *c + 16);
        a->peer = c;
        c->peer = a;
        a->next = c->next = NULL;
        a->name = c->name = NULL;
    }
    return 0;
}
