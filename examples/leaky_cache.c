/*
 * The bundled example for `make demo`: a toy request handler whose memory
 * grows.  Each "request" parses a line into a record (freed), formats a
 * response (freed), and stores the response in a cache that is never
 * trimmed: the leak a heap profile should point at.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cache_entry {
    struct cache_entry *next;
    char *key;
    char *value;
};

static struct cache_entry *cache;

static char *format_response(int id)
{
    char *buf = malloc(2048);
    snprintf(buf, 2048, "response %d: %0*d", id, 1000, id);
    return buf;
}

static void remember(int id, const char *response)
{
    struct cache_entry *e = malloc(sizeof *e);
    char key[32];
    snprintf(key, sizeof key, "request-%d", id);
    e->key = strdup(key);
    e->value = strdup(response); /* the leak: never evicted */
    e->next = cache;
    cache = e;
}

static long handle_request(int id)
{
    char *scratch = calloc(64, 1024); /* per-request scratch, freed */
    memset(scratch, id & 0xff, 1024);
    char *response = format_response(id);
    long len = (long)strlen(response);
    remember(id, response);
    free(response);
    free(scratch);
    return len;
}

int main(int argc, char **argv)
{
    int requests = argc > 1 ? atoi(argv[1]) : 20000;
    long bytes = 0;
    for (int i = 0; i < requests; i++)
        bytes += handle_request(i);
    printf("served %d requests, %ld bytes of responses\n", requests, bytes);
    return 0;
}
