/* A leak under a heap label (mprof_labels_push): the leaks profile carries
 * the site's labels beside kind=direct, so a leak is found per tenant or
 * request.  Linked with libmprof; run with MPROF_LEAKS=1 by leaks_check.sh. */
#include <stdlib.h>
#include <string.h>

#include "mprof.h"

__attribute__((noipa)) void *tenant_leak(void)
{
    void *volatile p = malloc(123);
    p = NULL;
    return (void *)p;
}

int main(void)
{
    mprof_labels_push("tenant", "acme");
    tenant_leak();
    mprof_labels_pop();
    volatile char scrub[16384];
    memset((char *)scrub, 0, sizeof scrub);
    return 0;
}
