/* A library whose constructor allocates before libmprof's runs (the
 * program's libraries are initialized before LD_PRELOAD'ed ones): the head
 * of a list that main then extends.  The items are reachable only through
 * the head; a leak check that had not recorded the head would call them
 * leaked. */
#include <stdlib.h>

struct item {
    struct item *next;
    char pad[40];
};

struct item *volatile early_head;

__attribute__((constructor)) static void early_init(void)
{
    early_head = calloc(1, sizeof(struct item));
}

__attribute__((noipa)) struct item *early_item(void) { return calloc(1, sizeof(struct item)); }

void early_add(int n)
{
    for (int i = 0; i < n; i++) {
        struct item *it = early_item();
        it->next = early_head->next;
        early_head->next = it;
    }
}
