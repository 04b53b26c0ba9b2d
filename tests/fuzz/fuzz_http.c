/*
 * Fuzz harness: what the /debug/pprof server reads from the network and
 * the user (src/http/http_request.c): request heads, the query of a parsed
 * head, the input itself as a query string and as a listen address, and
 * Host names.  Pure functions over buffers: nothing here may crash, read
 * out of bounds or leave a result it did not promise (the checks below
 * abort on a broken promise).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* As a request head, the way the server loop sees it. */
    size_t head = mprof_http_head_length((const char *)data, size);
    if (head > size)
        abort();
    mprof_http_request req;
    if (head > 0 && mprof_http_parse_head((const char *)data, head, &req) == 0) {
        if (req.path[0] != '/' && strcmp(req.path, "*") != 0)
            abort();
        mprof_profile_params params;
        const char *error = NULL;
        if (mprof_http_parse_params(req.query, &params, &error) == 0) {
            if (params.seconds < 0 || params.seconds > MPROF_HTTP_MAX_SECONDS ||
                params.debug < 0 || params.gc < 0)
                abort();
        } else if (error == NULL) {
            abort();
        }
        if (req.has_host)
            (void)mprof_http_host_is_loopback(req.host);
    }

    /* As a C string: a query, a Host, a listen address. */
    char *s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    mprof_profile_params params;
    const char *error = NULL;
    if (mprof_http_parse_params(s, &params, &error) != 0 && error == NULL)
        abort();
    char value[64];
    int found = mprof_http_query_value(s, "seconds", value, sizeof value);
    if (found == 1 && strlen(value) >= sizeof value)
        abort();
    (void)mprof_http_host_is_loopback(s);
    struct sockaddr_storage addr;
    socklen_t addrlen;
    if (mprof_http_parse_listen_addr(s, &addr, &addrlen) == 0) {
        char shown[128];
        mprof_http_format_addr(&addr, shown, sizeof shown);
        (void)mprof_http_addr_is_loopback(&addr);
    }
    free(s);
    return 0;
}
