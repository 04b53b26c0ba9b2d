/*
 * Two request types, labeled apart, allocating at the same line
 * (labels_check.sh): "upload" requests keep 48 MiB, "download"
 * requests 16 (in blocks of 4 MiB), all from handle() -> buffer_for(); a third batch allocated
 * under upload's label is freed by another thread, which carries no label,
 * so that the free must still find upload's bucket.  The heap profile must
 * split buffer_for's 64 MiB into 48 for request=upload and 16 for
 * request=download; the nested label tenant=acme must be on the first half
 * of the uploads only.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mprof.h"

#define MIB ((size_t)1 << 20)
/* 4 MiB blocks: at the default rate each is sampled with probability
 * 1 - e^-8, so the split is nearly exact and the test is about labels. */
#define BLOCK (4 * MIB)
#define KEEP(x) __asm__ volatile("" : : "r"(x) : "memory")

static void *kept[32];
static int nkept;
static void *handoff[8];

__attribute__((noipa)) void *buffer_for(void)
{
    void *p = malloc(BLOCK);
    memset(p, 1, 64);
    return p;
}

__attribute__((noipa)) void handle(int n)
{
    for (int i = 0; i < n; i++)
        kept[nkept++] = buffer_for();
}

static void upload_acme(void *arg) { handle(*(int *)arg); }

static void *freer(void *arg)
{
    (void)arg;
    for (int i = 0; i < 8; i++)
        free(handoff[i]);
    return NULL;
}

int main(void)
{
    int n = 6;
    if (mprof_labels_push("request", "upload") != 0)
        return 1;
    if (mprof_with_labels("tenant", "acme", upload_acme, &n) != 0)
        return 1;
    handle(6);
    for (int i = 0; i < 8; i++)
        handoff[i] = buffer_for(); /* upload's, freed by an unlabeled thread */
    mprof_labels_pop();
    pthread_t t;
    pthread_create(&t, NULL, freer, NULL);
    pthread_join(t, NULL);
    mprof_labels_push("request", "download");
    handle(4);
    mprof_labels_pop();
    /* Bad pushes change nothing and return errors. */
    if (mprof_labels_push("", "x") != -22 || mprof_labels_push(NULL, "x") >= 0)
        return 2;
    KEEP(kept[0]);
    printf("kept %d\n", nkept);
    return 0;
}
