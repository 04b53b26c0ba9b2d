/*
 * The bundled example for `make demo`: a toy request handler whose memory
 * grows.  Each "request" is written into a scratch buffer and parsed back
 * from it (freed), a response is formatted (freed), and the response is
 * stored in a cache that is never trimmed: the leak a heap profile should
 * point at.
 *
 *   leaky_cache REQUESTS          serve them, print one line
 *   leaky_cache REQUESTS RATE     the same, then the truth a heap profile
 *                                 taken at sampling rate RATE estimates
 *
 * Every buffer is used for what it holds, so -O2 keeps each allocation the
 * profile shows (a calloc'd buffer that is only written and freed is
 * removed by the compiler, and its site with it).
 *
 * The truth: the program counts, per allocating function, the bytes it
 * allocated and those still in use at exit, and the standard deviation of
 * the estimate a profile at rate R gives of them.  mprof samples as Go
 * does: a per-thread countdown of bytes, drawn from an exponential
 * distribution of mean R, so the sample points form a Poisson process
 * along the allocated bytes and a block of s bytes is sampled, independently
 * of every other block, with probability p = 1 - exp(-s/R); a sampled block
 * counts s/p bytes.  Each block's contribution is then s/p with probability
 * p and 0 otherwise: its mean is s (unbiased) and its variance
 *     s^2 (1-p)/p = s^2 exp(-s/R) / (1 - exp(-s/R)).
 * Summed over a site's blocks, the variance of its estimate.  For blocks
 * much smaller than R (the responses here: 1 KB against 512 KiB) each term
 * is about s*R, so a site of B bytes has a standard deviation of about
 * sqrt(B*R): 20 MB at the default rate, +-3.3 MB (16%).  For blocks of
 * several R the terms vanish: large blocks are nearly always sampled.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SCRATCH_SIZE = 16 * 1024, RESPONSE_SIZE = 2048 };

struct cache_entry {
    struct cache_entry *next;
    char *key;
    char *value;
};

static struct cache_entry *cache;

/* The truth, per allocating function. */
enum { SITE_STRDUP, SITE_REMEMBER, SITE_FORMAT, SITE_SCRATCH, SITES };
static const char *const site_name[SITES] = {"strdup", "remember", "format_response",
                                             "handle_request"};
static const char *const site_what[SITES] = {
    "the cache's keys and values (strdup in remember)", "the cache entries (malloc in remember)",
    "the responses (malloc, freed)", "the request scratch buffers (calloc, freed)"};
static struct {
    double alloc, alloc_var, in_use, in_use_var;
} truth[SITES];
static double rate; /* 0: not asked for */
/* Where the checksums go: a volatile store the compiler must make, so the
 * loop that reads the scratch buffer stays. */
static volatile unsigned checksum_sink;

/* One block of `size` bytes from `site`; freed later or kept to exit. */
static void account(int site, size_t size, int kept)
{
    double s = (double)size;
    double var = 0;
    if (rate > 1) {
        double q = exp(-s / rate); /* the odds of not being sampled */
        var = s * s * q / (1 - q);
    }
    truth[site].alloc += s;
    truth[site].alloc_var += var;
    if (kept) {
        truth[site].in_use += s;
        truth[site].in_use_var += var;
    }
}

static char *format_response(int id)
{
    char *buf = malloc(RESPONSE_SIZE);
    snprintf(buf, RESPONSE_SIZE, "response %d: %0*d", id, 1000, id);
    account(SITE_FORMAT, RESPONSE_SIZE, 0);
    return buf;
}

static char *keep_copy(const char *text)
{
    char *copy = strdup(text);
    account(SITE_STRDUP, strlen(text) + 1, 1);
    return copy;
}

static void remember(int id, const char *response)
{
    struct cache_entry *e = malloc(sizeof *e);
    account(SITE_REMEMBER, sizeof *e, 1);
    char key[32];
    snprintf(key, sizeof key, "request-%d", id);
    e->key = keep_copy(key);
    e->value = keep_copy(response); /* the leak: never evicted */
    e->next = cache;
    cache = e;
}

/* The request arrives in a zeroed scratch buffer and is parsed back from
 * it: the id, and a checksum of the whole buffer (headers and the zeroed
 * rest), so every byte of the calloc is read. */
static long handle_request(int id)
{
    char *scratch = calloc(1, SCRATCH_SIZE);
    account(SITE_SCRATCH, SCRATCH_SIZE, 0);
    int n = snprintf(scratch, SCRATCH_SIZE, "GET /items/%d HTTP/1.1\r\nHost: cache\r\n\r\n", id);
    unsigned checksum = 0;
    for (int i = 0; i < SCRATCH_SIZE; i++)
        checksum = checksum * 31 + (unsigned char)scratch[i];
    int parsed = atoi(scratch + strlen("GET /items/"));
    free(scratch);

    char *response = format_response(parsed);
    long len = (long)strlen(response);
    remember(parsed, response);
    free(response);
    checksum_sink ^= checksum + (unsigned)n;
    return len;
}

static void print_truth(void)
{
    printf("the truth at sampling rate %.0f (bytes, and the standard deviation of a\n"
           "profile's estimate of them):\n",
           rate);
    for (int i = 0; i < SITES; i++)
        printf("truth %-16s in_use %10.0f sd %9.0f   alloc %11.0f sd %9.0f   %s\n",
               site_name[i], truth[i].in_use, sqrt(truth[i].in_use_var), truth[i].alloc,
               sqrt(truth[i].alloc_var), site_what[i]);
}

int main(int argc, char **argv)
{
    int requests = argc > 1 ? atoi(argv[1]) : 20000;
    rate = argc > 2 ? atof(argv[2]) : 0;
    long bytes = 0;
    for (int i = 0; i < requests; i++)
        bytes += handle_request(i);
    printf("served %d requests, %ld bytes of responses\n", requests, bytes);
    if (rate > 0)
        print_truth();
    return 0;
}
