/*
 * Parsing of what arrives from the network: request heads, query strings,
 * Host headers, and the listen address given by the user.  Pure functions
 * (see http_internal.h): everything here is exercised by
 * tests/http/test_http_request.c under ASan and UBSan.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http_internal.h"
#include "shared/hex_digit.h"

/* ------------------------------------------------------------ helpers */

/* RFC 9110 token characters: method names and header field names. */
static int is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/*
 * Percent-decodes src[0, len) into out (NUL-terminated).  plus_is_space for
 * form-encoded query values.  Refuses malformed escapes and %00, so that a
 * decoded string can always be treated as a C string.  0 or -1.
 */
static int percent_decode(const char *src, size_t len, int plus_is_space, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c == '%') {
            if (i + 2 >= len)
                return -1;
            int hi = mprof_hex_digit((unsigned char)src[i + 1]);
            int lo = mprof_hex_digit((unsigned char)src[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (unsigned char)(hi * 16 + lo);
            if (c == '\0')
                return -1;
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        } else if (c == '\0') {
            return -1;
        }
        if (o + 1 >= outlen)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return 0;
}

/* Next line of head[pos, len): sets *line_len (without CR LF or LF) and
 * returns the position after the line end, or 0 if no line end follows. */
static size_t next_line(const char *head, size_t len, size_t pos, size_t *line_len)
{
    const char *nl = memchr(head + pos, '\n', len - pos);
    if (nl == NULL)
        return 0;
    size_t end = (size_t)(nl - head);
    size_t l = end - pos;
    if (l > 0 && head[end - 1] == '\r')
        l--;
    *line_len = l;
    return end + 1;
}

/* ------------------------------------------------------- request head */

size_t mprof_http_head_length(const char *buf, size_t len)
{
    size_t pos = 0;
    int seen_request_line = 0;
    for (;;) {
        size_t line_len;
        size_t next = next_line(buf, len, pos, &line_len);
        if (next == 0)
            return 0;
        if (line_len == 0) {
            if (seen_request_line)
                return next;
        } else {
            seen_request_line = 1;
        }
        pos = next;
    }
}

static int parse_request_line(const char *line, size_t len, mprof_http_request *req)
{
    /* method SP request-target SP HTTP-version, single spaces exactly:
     * tolerance for extra whitespace is where parsers start disagreeing. */
    const char *sp1 = memchr(line, ' ', len);
    if (sp1 == NULL || sp1 == line)
        return 400;
    size_t method_len = (size_t)(sp1 - line);
    for (size_t i = 0; i < method_len; i++)
        if (!is_tchar((unsigned char)line[i]))
            return 400;
    if (method_len == 3 && memcmp(line, "GET", 3) == 0)
        req->method = MPROF_HTTP_GET;
    else if (method_len == 4 && memcmp(line, "HEAD", 4) == 0)
        req->method = MPROF_HTTP_HEAD;
    else
        req->method = MPROF_HTTP_OTHER_METHOD;

    const char *target = sp1 + 1;
    const char *line_end = line + len;
    const char *sp2 = memchr(target, ' ', (size_t)(line_end - target));
    if (sp2 == NULL || sp2 == target)
        return 400;
    size_t target_len = (size_t)(sp2 - target);
    for (size_t i = 0; i < target_len; i++) {
        unsigned char c = (unsigned char)target[i];
        if (c <= 0x20 || c == 0x7f)
            return 400;
    }

    const char *version = sp2 + 1;
    size_t version_len = (size_t)(line_end - version);
    if (version_len != 8 || memcmp(version, "HTTP/", 5) != 0 || version[6] != '.' ||
        version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9')
        return 400;
    if (version[5] != '1')
        return 505;
    req->http_minor = version[7] - '0';

    /* absolute-form ("http://host/path"), sent through proxies: keep the
     * path.  The authority it names is checked like a Host header. */
    if (target_len >= 7 && strncasecmp(target, "http://", 7) == 0) {
        const char *authority = target + 7;
        const char *slash = memchr(authority, '/', (size_t)(sp2 - authority));
        size_t authority_len = (size_t)((slash ? slash : sp2) - authority);
        if (authority_len == 0 || authority_len >= sizeof req->host)
            return 400;
        memcpy(req->host, authority, authority_len);
        req->host[authority_len] = '\0';
        req->has_host = 1;
        if (slash == NULL) {
            target = "/";
            target_len = 1;
        } else {
            target_len = (size_t)(sp2 - slash);
            target = slash;
        }
    } else if (target_len == 1 && target[0] == '*') {
        /* OPTIONS *: asterisk-form; no path of ours matches it. */
        strcpy(req->path, "*");
        req->query[0] = '\0';
        return 0;
    }
    if (target[0] != '/')
        return 400;

    const char *question = memchr(target, '?', target_len);
    size_t path_len = question ? (size_t)(question - target) : target_len;
    if (path_len >= sizeof req->path)
        return 414;
    if (percent_decode(target, path_len, 0, req->path, sizeof req->path) != 0)
        return 400;
    if (question != NULL) {
        size_t query_len = target_len - path_len - 1;
        if (query_len >= sizeof req->query)
            return 414;
        memcpy(req->query, question + 1, query_len);
        req->query[query_len] = '\0';
    } else {
        req->query[0] = '\0';
    }
    return 0;
}

/* Trims optional whitespace (SP, HTAB) around a header value. */
static void trim_ows(const char **value, size_t *len)
{
    while (*len > 0 && (**value == ' ' || **value == '\t')) {
        (*value)++;
        (*len)--;
    }
    while (*len > 0 && ((*value)[*len - 1] == ' ' || (*value)[*len - 1] == '\t'))
        (*len)--;
}

int mprof_http_parse_head(const char *head, size_t len, mprof_http_request *req)
{
    memset(req, 0, sizeof *req);
    size_t pos = 0, line_len = 0;

    /* Skip empty lines before the request line. */
    for (;;) {
        size_t next = next_line(head, len, pos, &line_len);
        if (next == 0)
            return 400;
        if (line_len > 0)
            break;
        pos = next;
    }
    size_t next = next_line(head, len, pos, &line_len);
    for (size_t i = 0; i < line_len; i++) {
        unsigned char c = (unsigned char)head[pos + i];
        if (c == '\r' || c == '\0')
            return 400;
    }
    int status = parse_request_line(head + pos, line_len, req);
    if (status != 0)
        return status;
    /* In absolute-form the target's authority replaces any Host header
     * (RFC 9112, 3.2.2); the header is still parsed and counted. */
    int host_from_target = req->has_host;
    int host_headers = 0;
    pos = next;

    int headers = 0;
    for (;;) {
        next = next_line(head, len, pos, &line_len);
        if (next == 0)
            return 400; /* the caller passed an incomplete head */
        if (line_len == 0)
            break;
        if (++headers > MPROF_HTTP_MAX_HEADERS)
            return 431;
        const char *line = head + pos;
        /* Obsolete line folding: refused (RFC 9112 allows a 400). */
        if (line[0] == ' ' || line[0] == '\t')
            return 400;
        for (size_t i = 0; i < line_len; i++) {
            unsigned char c = (unsigned char)line[i];
            /* Control bytes other than HTAB have no place in a field. */
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                return 400;
        }
        const char *colon = memchr(line, ':', line_len);
        if (colon == NULL || colon == line)
            return 400;
        for (const char *p = line; p < colon; p++)
            if (!is_tchar((unsigned char)*p))
                return 400; /* includes whitespace before the colon */
        size_t name_len = (size_t)(colon - line);
        if (name_len == 4 && strncasecmp(line, "host", 4) == 0) {
            const char *value = colon + 1;
            size_t value_len = line_len - name_len - 1;
            trim_ows(&value, &value_len);
            if (++host_headers > 1)
                return 400; /* two Host headers: which one is meant? */
            if (!host_from_target) {
                if (value_len >= sizeof req->host)
                    return 400;
                memcpy(req->host, value, value_len);
                req->host[value_len] = '\0';
                req->has_host = 1;
            }
        }
        pos = next;
    }
    return 0;
}

/* ---------------------------------------------------------- parameters */

int mprof_http_query_value(const char *query, const char *name, char *value, size_t valuelen)
{
    const char *p = query;
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t pair_len = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', pair_len);
        size_t key_len = eq ? (size_t)(eq - p) : pair_len;
        /* A key that does not decode into this buffer is longer than any
         * parameter we know: it cannot match and is skipped, as Go skips
         * parameters it has no use for. */
        char key[64];
        if (key_len > 0 && percent_decode(p, key_len, 1, key, sizeof key) == 0 &&
            strcmp(key, name) == 0) {
            const char *v = eq ? eq + 1 : p + pair_len;
            size_t v_len = eq ? pair_len - key_len - 1 : 0;
            if (percent_decode(v, v_len, 1, value, valuelen) != 0)
                return -1;
            return 1;
        }
        if (amp == NULL)
            break;
        p = amp + 1;
    }
    return 0;
}

/* Strict non-negative decimal: digits only, no sign, no spaces, no
 * overflow.  0 with *out set, -1 otherwise. */
static int parse_decimal(const char *text, long max, long *out)
{
    if (*text == '\0')
        return -1;
    long v = 0;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        int d = *p - '0';
        if (v > (LONG_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (v > max)
        return -1;
    *out = v;
    return 0;
}

/* The parameters /debug/pprof reads, and the 400 sentence for each given
 * twice (which of two values was meant cannot be known, so neither is
 * taken). */
enum { PARAM_SECONDS, PARAM_DEBUG, PARAM_GC, NPARAMS };
static const char *const param_names[NPARAMS] = {"seconds", "debug", "gc"};
static const char *const param_twice[NPARAMS] = {
    "duplicate parameter \"seconds\": give it once",
    "duplicate parameter \"debug\": give it once",
    "duplicate parameter \"gc\": give it once",
};

int mprof_http_parse_params(const char *query, mprof_profile_params *params, const char **error)
{
    memset(params, 0, sizeof *params);
    /* Every pair is decoded, known or not, so that a malformed escape or a
     * %00 anywhere is refused, as docs/live.md says; the values of the
     * known ones are kept. */
    char values[NPARAMS][64];
    int given[NPARAMS] = {0};
    char key[MPROF_HTTP_MAX_QUERY], value[MPROF_HTTP_MAX_QUERY];
    for (const char *p = query; *p;) {
        const char *amp = strchr(p, '&');
        size_t pair_len = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', pair_len);
        size_t key_len = eq ? (size_t)(eq - p) : pair_len;
        const char *v = eq ? eq + 1 : p + pair_len;
        size_t v_len = eq ? pair_len - key_len - 1 : 0;
        /* The query is shorter than the buffers (the parser refuses
         * longer ones), so only a malformed escape or a %00 fails here. */
        if (percent_decode(p, key_len, 1, key, sizeof key) != 0 ||
            percent_decode(v, v_len, 1, value, sizeof value) != 0) {
            *error = "malformed query string: a bad percent escape or a %00";
            return -1;
        }
        for (int k = 0; k < NPARAMS; k++) {
            if (strcmp(key, param_names[k]) != 0)
                continue;
            if (given[k]) {
                *error = param_twice[k];
                return -1;
            }
            given[k] = 1;
            /* A value too long for a number is no number: "x" is refused
             * below like any other. */
            if (strlen(value) < sizeof values[k])
                strcpy(values[k], value);
            else
                strcpy(values[k], "x");
        }
        if (amp == NULL)
            break;
        p = amp + 1;
    }

    long v;
    /* An empty value ("seconds=") counts as absent, as in Go. */
    if (given[PARAM_SECONDS] && values[PARAM_SECONDS][0] != '\0') {
        if (parse_decimal(values[PARAM_SECONDS], MPROF_HTTP_MAX_SECONDS, &v) != 0 || v == 0) {
            *error = "invalid value for \"seconds\" - must be a positive integer, at most 3600";
            return -1;
        }
        params->seconds = v;
    }
    if (given[PARAM_DEBUG] && values[PARAM_DEBUG][0] != '\0') {
        if (parse_decimal(values[PARAM_DEBUG], 1000, &v) != 0) {
            *error = "invalid value for \"debug\" - must be a non-negative integer";
            return -1;
        }
        params->debug = (int)v;
    }
    if (given[PARAM_GC] && values[PARAM_GC][0] != '\0') {
        if (parse_decimal(values[PARAM_GC], 1000, &v) != 0) {
            *error = "invalid value for \"gc\" - must be a non-negative integer";
            return -1;
        }
        params->gc = (int)v;
    }
    return 0;
}

/* ---------------------------------------------------------------- host */

int mprof_http_host_is_loopback(const char *host)
{
    char name[MPROF_HTTP_MAX_HOST];
    size_t len = strlen(host);
    if (len == 0 || len >= sizeof name)
        return 0;
    memcpy(name, host, len + 1);

    /* Strip the port: "[v6]:port", "v4:port", "name:port". */
    if (name[0] == '[') {
        char *close = strchr(name, ']');
        if (close == NULL)
            return 0;
        if (close[1] != '\0' && close[1] != ':')
            return 0;
        *close = '\0';
        struct in6_addr a6;
        return inet_pton(AF_INET6, name + 1, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
    }
    char *colon = strchr(name, ':');
    if (colon != NULL)
        *colon = '\0';
    len = strlen(name);
    if (len > 0 && name[len - 1] == '.')
        name[--len] = '\0'; /* "localhost." is the same name */
    if (strcasecmp(name, "localhost") == 0)
        return 1;
    struct in_addr a4;
    return inet_pton(AF_INET, name, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127;
}

/* ------------------------------------------------------ listen address */

int mprof_http_parse_listen_addr(const char *spec, struct sockaddr_storage *addr,
                                 socklen_t *addrlen)
{
    memset(addr, 0, sizeof *addr);
    char host[128];
    const char *port_text;

    if (spec[0] == '[') {
        const char *close = strchr(spec, ']');
        if (close == NULL || close[1] != ':' || (size_t)(close - spec - 1) >= sizeof host)
            goto invalid;
        memcpy(host, spec + 1, (size_t)(close - spec - 1));
        host[close - spec - 1] = '\0';
        port_text = close + 2;
    } else {
        const char *colon = strrchr(spec, ':');
        if (colon == NULL || (size_t)(colon - spec) >= sizeof host)
            goto invalid;
        memcpy(host, spec, (size_t)(colon - spec));
        host[colon - spec] = '\0';
        if (strchr(host, ':') != NULL)
            goto invalid; /* bare IPv6 needs brackets */
        port_text = colon + 1;
    }

    long port;
    if (parse_decimal(port_text, 65535, &port) != 0)
        goto invalid;

    if (spec[0] == '[') {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)addr;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1)
            goto invalid;
        *addrlen = sizeof *a6;
        return 0;
    }
    struct sockaddr_in *a4 = (struct sockaddr_in *)addr;
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    if (host[0] == '\0' || strcasecmp(host, "localhost") == 0)
        a4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    else if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
        goto invalid;
    *addrlen = sizeof *a4;
    return 0;

invalid:
    errno = EINVAL;
    return -1;
}

int mprof_http_addr_is_loopback(const struct sockaddr_storage *addr)
{
    if (addr->ss_family == AF_INET) {
        const struct sockaddr_in *a4 = (const struct sockaddr_in *)addr;
        return (ntohl(a4->sin_addr.s_addr) >> 24) == 127;
    }
    if (addr->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)addr;
        if (IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr))
            return 1;
        return IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr) && a6->sin6_addr.s6_addr[12] == 127;
    }
    return 0;
}

void mprof_http_format_addr(const struct sockaddr_storage *addr, char *out, size_t outlen)
{
    char text[INET6_ADDRSTRLEN] = "?";
    if (addr->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)addr;
        inet_ntop(AF_INET6, &a6->sin6_addr, text, sizeof text);
        snprintf(out, outlen, "[%s]:%u", text, ntohs(a6->sin6_port));
    } else {
        const struct sockaddr_in *a4 = (const struct sockaddr_in *)addr;
        inet_ntop(AF_INET, &a4->sin_addr, text, sizeof text);
        snprintf(out, outlen, "%s:%u", text, ntohs(a4->sin_port));
    }
}
