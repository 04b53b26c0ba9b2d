/*
 * Private interfaces of the HTTP server (http_*.c) and of their unit tests.
 * Nothing outside http/ includes this.
 *
 * The request parser and the address parser are pure functions over caller
 * buffers: no I/O, no allocation, no global state.  That keeps the code that
 * reads bytes from strangers small enough to be tested exhaustively, under
 * ASan and TSan, without a socket in sight.
 */
#ifndef MPROF_HTTP_INTERNAL_H
#define MPROF_HTTP_INTERNAL_H

#include <netinet/in.h>
#include <signal.h>
#include <stddef.h>
#include <sys/socket.h>

#include "http/http.h"
#include "profiles/registry.h"

/* -------------------------------------------------------------- limits */

/* Largest request head (request line plus headers) accepted.  Clients of a
 * profiling endpoint send a line and a handful of short headers; 8 KiB is
 * what common servers allow by default and plenty for `go tool pprof`,
 * curl, Parca and Grafana Alloy. */
#define MPROF_HTTP_MAX_HEAD 8192
#define MPROF_HTTP_MAX_PATH 1024
#define MPROF_HTTP_MAX_QUERY 2048
#define MPROF_HTTP_MAX_HOST 256
#define MPROF_HTTP_MAX_HEADERS 64

/* Longest ?seconds= window.  Go has no limit of its own (only the server's
 * WriteTimeout); an hour is far beyond any scraper's interval and keeps a
 * mistyped value from pinning a CPU profile for days. */
#define MPROF_HTTP_MAX_SECONDS 3600L

/* Tunables of the server loop.  Fixed in production; the unit tests shorten
 * the timeouts so that slow-client cases run in well under a second. */
typedef struct mprof_http_limits {
    int max_connections;     /* sockets held at once, listening one excluded */
    int max_windows;         /* ?seconds= requests in progress at once */
    int head_timeout_ms;     /* accept -> complete request head */
    int write_idle_timeout_ms; /* no byte of the response accepted for this long */
    int drain_timeout_ms;    /* after the response: wait for the client's EOF */
} mprof_http_limits;

MPROF_HIDDEN extern mprof_http_limits mprof_http_limits_in_force;

/* ------------------------------------------------------ request parsing */

typedef enum mprof_http_method {
    MPROF_HTTP_GET,
    MPROF_HTTP_HEAD,
    MPROF_HTTP_OTHER_METHOD, /* syntactically valid, not served: 405 */
} mprof_http_method;

typedef struct mprof_http_request {
    mprof_http_method method;
    int http_minor;                    /* 0 or 1 of HTTP/1.x */
    char path[MPROF_HTTP_MAX_PATH];    /* percent-decoded, starts with '/' */
    char query[MPROF_HTTP_MAX_QUERY];  /* raw, without '?'; "" if none */
    int has_host;
    char host[MPROF_HTTP_MAX_HOST];    /* Host header value, trimmed */
} mprof_http_request;

/*
 * Looks for the end of a request head in buf[0, len): the empty line after
 * the request line and headers, ending in CRLF or a bare LF.  Returns the
 * length of the head including that empty line, or 0 if it has not arrived.
 * Empty lines before the request line are skipped, as RFC 9112 asks.
 */
MPROF_HIDDEN size_t mprof_http_head_length(const char *buf, size_t len);

/*
 * Parses a complete head (as delimited by mprof_http_head_length).  Returns
 * 0, or the HTTP status to answer with: 400 malformed, 414 target too long,
 * 431 too many or too long headers, 505 not HTTP/1.x.  Strict where
 * leniency is how request smuggling starts (whitespace before a header's
 * colon, obsolete line folding, two Host headers, control bytes).
 */
MPROF_HIDDEN int mprof_http_parse_head(const char *head, size_t len, mprof_http_request *req);

/*
 * Finds parameter name in a raw query string ("a=1&b=2").  Returns 1 and
 * the decoded value in value[0, valuelen) (NUL-terminated), 0 if absent,
 * -1 if the query is malformed (bad percent escape, NUL, value too long).
 * The first occurrence wins, as Go's Request.FormValue.
 */
MPROF_HIDDEN int mprof_http_query_value(const char *query, const char *name, char *value,
                                        size_t valuelen);

/*
 * Reads the parameters /debug/pprof understands from a raw query: seconds,
 * debug, gc.  Unknown parameters are ignored, as in Go, but every key and
 * value must decode (a malformed percent escape or a %00 anywhere is
 * refused), and a known parameter given twice is refused, naming it.
 * Returns 0, or -1 with *error pointing at a static sentence for the 400
 * response.  An empty value ("seconds=") counts as absent, as in Go.
 */
MPROF_HIDDEN int mprof_http_parse_params(const char *query, mprof_profile_params *params,
                                         const char **error);

/* True if the Host header names this machine's loopback: localhost,
 * 127.0.0.0/8 or [::1], with or without a port.  See http_server.c for why
 * a loopback-bound server refuses other names. */
MPROF_HIDDEN int mprof_http_host_is_loopback(const char *host);

/* --------------------------------------------------- listen addresses */

/*
 * Parses MPROF_HTTP / mprof_http_start's address: "HOST:PORT", ":PORT"
 * (loopback), "localhost:PORT", "[IPV6]:PORT".  HOST must be a numeric
 * address or "localhost": resolving names would load NSS modules inside the
 * host program, possibly from its library constructor.  Port 0 asks the
 * kernel for a free port.  Returns 0 or -1 with errno EINVAL.
 */
MPROF_HIDDEN int mprof_http_parse_listen_addr(const char *spec, struct sockaddr_storage *addr,
                                              socklen_t *addrlen);

/* True for 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104. */
MPROF_HIDDEN int mprof_http_addr_is_loopback(const struct sockaddr_storage *addr);

/* Address the running server listens on (the real port when 0 was asked
 * for).  0, or -1 when no server runs. */
MPROF_HIDDEN int mprof_http_local_addr(struct sockaddr_storage *addr);

/* "127.0.0.1:6060" or "[::1]:6060" into out. */
MPROF_HIDDEN void mprof_http_format_addr(const struct sockaddr_storage *addr, char *out,
                                         size_t outlen);

#endif /* MPROF_HTTP_INTERNAL_H */
