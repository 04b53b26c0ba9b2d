/*
 * Unit tests of the code that reads bytes from the network and from the
 * user: request heads, query parameters, Host names, listen addresses,
 * MPROF_SIGNAL names, dump file names.  Pure functions: built with
 * http_request.c, dumps.c and util.c only, run under ASan/UBSan and TSan.
 */
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http/http_internal.h"
#include "profiles/snapshots.h"

#include "../lib/check.h"

/* Parses a whole head of len bytes; returns the status (0 = fine). */
static int parse_n(const char *text, size_t len, mprof_http_request *req)
{
    size_t head = mprof_http_head_length(text, len);
    if (head == 0)
        return -1; /* incomplete */
    return mprof_http_parse_head(text, head, req);
}

static int parse(const char *text, mprof_http_request *req)
{
    return parse_n(text, strlen(text), req);
}

static void test_head_length(void)
{
    CHECK(mprof_http_head_length("", 0) == 0);
    CHECK(mprof_http_head_length("GET / HTTP/1.1\r\n", 16) == 0);
    CHECK(mprof_http_head_length("GET / HTTP/1.1\r\nHost: x\r\n", 25) == 0);
    CHECK(mprof_http_head_length("GET / HTTP/1.1\r\n\r\n", 18) == 18);
    CHECK(mprof_http_head_length("GET / HTTP/1.1\n\n", 16) == 16);
    CHECK(mprof_http_head_length("GET / HTTP/1.1\r\n\r\nextra", 23) == 18);
    /* Leading empty lines are not the end of a head. */
    CHECK(mprof_http_head_length("\r\n\r\n", 4) == 0);
    CHECK(mprof_http_head_length("\r\nGET / HTTP/1.1\r\n\r\n", 20) == 20);
}

static void test_request_line(void)
{
    mprof_http_request req;
    CHECK(parse("GET /debug/pprof/heap HTTP/1.1\r\nHost: 127.0.0.1:6060\r\n\r\n", &req) == 0);
    CHECK(req.method == MPROF_HTTP_GET);
    CHECK(strcmp(req.path, "/debug/pprof/heap") == 0);
    CHECK(req.query[0] == '\0');
    CHECK(req.has_host && strcmp(req.host, "127.0.0.1:6060") == 0);
    CHECK(req.http_minor == 1);

    CHECK(parse("HEAD /debug/pprof/profile?seconds=5&x=y HTTP/1.0\r\n\r\n", &req) == 0);
    CHECK(req.method == MPROF_HTTP_HEAD);
    CHECK(strcmp(req.path, "/debug/pprof/profile") == 0);
    CHECK(strcmp(req.query, "seconds=5&x=y") == 0);
    CHECK(!req.has_host);
    CHECK(req.http_minor == 0);

    CHECK(parse("POST /debug/pprof/heap HTTP/1.1\r\n\r\n", &req) == 0);
    CHECK(req.method == MPROF_HTTP_OTHER_METHOD);
    CHECK(parse("get /debug/pprof/heap HTTP/1.1\r\n\r\n", &req) == 0);
    CHECK(req.method == MPROF_HTTP_OTHER_METHOD); /* methods are case-sensitive */

    /* Percent-decoded path. */
    CHECK(parse("GET /debug/pprof/%68eap HTTP/1.1\r\n\r\n", &req) == 0);
    CHECK(strcmp(req.path, "/debug/pprof/heap") == 0);
    CHECK(parse("GET /debug/pprof/%00heap HTTP/1.1\r\n\r\n", &req) == 400);
    CHECK(parse("GET /debug/pprof/%zzheap HTTP/1.1\r\n\r\n", &req) == 400);
    CHECK(parse("GET /debug/pprof/heap% HTTP/1.1\r\n\r\n", &req) == 400);
    CHECK(parse("GET /debug/pprof/heap%4 HTTP/1.1\r\n\r\n", &req) == 400);

    /* absolute-form: authority becomes the host. */
    CHECK(parse("GET http://localhost:6060/debug/pprof/ HTTP/1.1\r\nHost: evil\r\n\r\n", &req) ==
          0);
    CHECK(strcmp(req.path, "/debug/pprof/") == 0);
    CHECK(strcmp(req.host, "localhost:6060") == 0);
    CHECK(parse("GET http://localhost:6060 HTTP/1.1\r\n\r\n", &req) == 0);
    CHECK(strcmp(req.path, "/") == 0);

    /* Malformed request lines. */
    CHECK(parse("GET\r\n\r\n", &req) == 400);
    CHECK(parse("GET /\r\n\r\n", &req) == 400);
    CHECK(parse("GET  / HTTP/1.1\r\n\r\n", &req) == 400);
    CHECK(parse("GET / HTTP/1.1 \r\n\r\n", &req) == 400);
    CHECK(parse("GET / HTTP/1.1\rX\r\n\r\n", &req) == 400);
    CHECK(parse("GET relative HTTP/1.1\r\n\r\n", &req) == 400);
    CHECK(parse("G(T / HTTP/1.1\r\n\r\n", &req) == 400);
    CHECK(parse("GET / FTP/1.1\r\n\r\n", &req) == 400);
    CHECK(parse("GET / HTTP/2.0\r\n\r\n", &req) == 505);
    CHECK(parse("GET / HTTP/0.9\r\n\r\n", &req) == 505);
    CHECK(parse("GET /a\x01 HTTP/1.1\r\n\r\n", &req) == 400);
    static const char tls_hello[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n";
    CHECK(parse_n(tls_hello, sizeof tls_hello - 1, &req) == 400);
    static const char nul_in_target[] = "GET /a\0b HTTP/1.1\r\n\r\n";
    CHECK(parse_n(nul_in_target, sizeof nul_in_target - 1, &req) == 400);

    /* Too long targets. */
    char big[MPROF_HTTP_MAX_HEAD];
    int n = snprintf(big, sizeof big, "GET /");
    memset(big + n, 'a', MPROF_HTTP_MAX_PATH + 10);
    n += MPROF_HTTP_MAX_PATH + 10;
    n += snprintf(big + n, sizeof big - (size_t)n, " HTTP/1.1\r\n\r\n");
    CHECK(parse(big, &req) == 414);
    n = snprintf(big, sizeof big, "GET /?");
    memset(big + n, 'a', MPROF_HTTP_MAX_QUERY + 10);
    n += MPROF_HTTP_MAX_QUERY + 10;
    snprintf(big + n, sizeof big - (size_t)n, " HTTP/1.1\r\n\r\n");
    CHECK(parse(big, &req) == 414);
}

static void test_headers(void)
{
    mprof_http_request req;
    CHECK(parse("GET / HTTP/1.1\r\nUser-Agent: curl\r\nhOsT:   [::1]:80  \r\nAccept: */*\r\n\r\n",
                &req) == 0);
    CHECK(strcmp(req.host, "[::1]:80") == 0);
    CHECK(parse("GET / HTTP/1.1\nHost: a\nX: y\n\n", &req) == 0); /* bare LF */
    CHECK(parse("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", &req) == 400);
    CHECK(parse("GET / HTTP/1.1\r\nHost : a\r\n\r\n", &req) == 400);
    CHECK(parse("GET / HTTP/1.1\r\nX: a\r\n folded\r\n\r\n", &req) == 400);
    CHECK(parse("GET / HTTP/1.1\r\nno colon\r\n\r\n", &req) == 400);
    CHECK(parse("GET / HTTP/1.1\r\n: empty name\r\n\r\n", &req) == 400);
    CHECK(parse("GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n", &req) == 400);
    CHECK(parse("GET / HTTP/1.1\r\nX: tab\there\r\n\r\n", &req) == 0);

    char many[MPROF_HTTP_MAX_HEAD];
    int n = snprintf(many, sizeof many, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < MPROF_HTTP_MAX_HEADERS + 1; i++)
        n += snprintf(many + n, sizeof many - (size_t)n, "X-%d: v\r\n", i);
    snprintf(many + n, sizeof many - (size_t)n, "\r\n");
    CHECK(parse(many, &req) == 431);
}

static void test_query(void)
{
    char v[64];
    CHECK(mprof_http_query_value("", "seconds", v, sizeof v) == 0);
    CHECK(mprof_http_query_value("seconds=5", "seconds", v, sizeof v) == 1 && strcmp(v, "5") == 0);
    CHECK(mprof_http_query_value("a=1&seconds=7&seconds=8", "seconds", v, sizeof v) == 1 &&
          strcmp(v, "7") == 0);
    CHECK(mprof_http_query_value("secondsx=1&xseconds=2", "seconds", v, sizeof v) == 0);
    CHECK(mprof_http_query_value("seconds", "seconds", v, sizeof v) == 1 && v[0] == '\0');
    CHECK(mprof_http_query_value("se%63onds=%33", "seconds", v, sizeof v) == 1 &&
          strcmp(v, "3") == 0);
    CHECK(mprof_http_query_value("x=a+b", "x", v, sizeof v) == 1 && strcmp(v, "a b") == 0);
    CHECK(mprof_http_query_value("x=%zz", "x", v, sizeof v) == -1);
    CHECK(mprof_http_query_value("x=%00", "x", v, sizeof v) == -1);
    char long_value[200];
    memset(long_value, 'a', sizeof long_value - 1);
    long_value[sizeof long_value - 1] = '\0';
    char query[256];
    snprintf(query, sizeof query, "x=%s", long_value);
    CHECK(mprof_http_query_value(query, "x", v, sizeof v) == -1);
    /* A malformed parameter we do not look at does not matter. */
    CHECK(mprof_http_query_value("junk=%zz&x=1", "x", v, sizeof v) == 1);

    mprof_profile_params p;
    const char *error = NULL;
    CHECK(mprof_http_parse_params("", &p, &error) == 0 && p.seconds == 0 && p.debug == 0);
    CHECK(mprof_http_parse_params("seconds=30&debug=1&gc=1", &p, &error) == 0);
    CHECK(p.seconds == 30 && p.debug == 1 && p.gc == 1);
    CHECK(mprof_http_parse_params("seconds=", &p, &error) == 0 && p.seconds == 0);
    CHECK(mprof_http_parse_params("seconds=3600", &p, &error) == 0 && p.seconds == 3600);
    CHECK(mprof_http_parse_params("seconds=3601", &p, &error) == -1 && error != NULL);
    CHECK(mprof_http_parse_params("seconds=0", &p, &error) == -1);
    CHECK(mprof_http_parse_params("seconds=-1", &p, &error) == -1);
    CHECK(mprof_http_parse_params("seconds=abc", &p, &error) == -1);
    CHECK(mprof_http_parse_params("seconds=1.5", &p, &error) == -1);
    CHECK(mprof_http_parse_params("seconds=+5", &p, &error) == -1);
    CHECK(mprof_http_parse_params("seconds=%205", &p, &error) == -1);
    CHECK(mprof_http_parse_params("seconds=99999999999999999999999", &p, &error) == -1);
    CHECK(mprof_http_parse_params("debug=x", &p, &error) == -1);
    CHECK(mprof_http_parse_params("gc=-1", &p, &error) == -1);
    CHECK(mprof_http_parse_params("debug=2&unknown=whatever", &p, &error) == 0 && p.debug == 2);

    /* Every pair must decode, the ones mprof does not read included
     * (docs/live.md): a malformed escape or a %00, in a key or a value. */
    const char *malformed[] = {"junk=%zz&seconds=5", "seconds=5&junk=%0",  "junk=%",
                               "ju%4nk=1",           "junk=a%00b",         "%00=1",
                               "seconds=5&x%00y=1",  "debug=1&junk=%G1"};
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        error = NULL;
        CHECK(mprof_http_parse_params(malformed[i], &p, &error) == -1 && error != NULL &&
                  strstr(error, "malformed") != NULL,
              "%s: %s", malformed[i], error ? error : "accepted");
    }
    /* Well-formed unknown ones, escapes and all, are still ignored. */
    CHECK(mprof_http_parse_params("junk=%41%2b&seconds=5&x=+", &p, &error) == 0 &&
          p.seconds == 5);
    /* A known parameter twice is refused, saying which, whatever the
     * values; spelled with an escape it is the same name. */
    const struct {
        const char *query, *name;
    } twice[] = {{"seconds=5&seconds=6", "\"seconds\""}, {"seconds=5&seconds=5", "\"seconds\""},
                 {"debug=1&gc=1&debug=", "\"debug\""},   {"gc=1&g%63=2", "\"gc\""},
                 {"seconds&seconds=1", "\"seconds\""}};
    for (size_t i = 0; i < sizeof twice / sizeof twice[0]; i++) {
        error = NULL;
        CHECK(mprof_http_parse_params(twice[i].query, &p, &error) == -1 && error != NULL &&
                  strstr(error, "duplicate") != NULL && strstr(error, twice[i].name) != NULL,
              "%s: %s", twice[i].query, error ? error : "accepted");
    }
    /* Unknown ones twice are nobody's concern. */
    CHECK(mprof_http_parse_params("x=1&x=2&seconds=3", &p, &error) == 0 && p.seconds == 3);
}

static void test_host(void)
{
    CHECK(mprof_http_host_is_loopback("localhost"));
    CHECK(mprof_http_host_is_loopback("LOCALHOST:6060"));
    CHECK(mprof_http_host_is_loopback("localhost.:6060"));
    CHECK(mprof_http_host_is_loopback("127.0.0.1"));
    CHECK(mprof_http_host_is_loopback("127.0.0.1:6060"));
    CHECK(mprof_http_host_is_loopback("127.1.2.3:1"));
    CHECK(mprof_http_host_is_loopback("[::1]:6060"));
    CHECK(mprof_http_host_is_loopback("[::1]"));
    CHECK(!mprof_http_host_is_loopback(""));
    CHECK(!mprof_http_host_is_loopback("evil.example"));
    CHECK(!mprof_http_host_is_loopback("localhost.evil.example"));
    CHECK(!mprof_http_host_is_loopback("10.0.0.1:6060"));
    CHECK(!mprof_http_host_is_loopback("[::2]:6060"));
    CHECK(!mprof_http_host_is_loopback("[::1"));
    CHECK(!mprof_http_host_is_loopback("[::1]x"));
}

static void test_listen_addr(void)
{
    struct sockaddr_storage a;
    socklen_t len;
    char shown[64];

    CHECK(mprof_http_parse_listen_addr(":6060", &a, &len) == 0);
    mprof_http_format_addr(&a, shown, sizeof shown);
    CHECK(strcmp(shown, "127.0.0.1:6060") == 0);
    CHECK(mprof_http_addr_is_loopback(&a));

    CHECK(mprof_http_parse_listen_addr("localhost:1", &a, &len) == 0);
    mprof_http_format_addr(&a, shown, sizeof shown);
    CHECK(strcmp(shown, "127.0.0.1:1") == 0);

    CHECK(mprof_http_parse_listen_addr("0.0.0.0:6060", &a, &len) == 0);
    CHECK(!mprof_http_addr_is_loopback(&a));
    CHECK(mprof_http_parse_listen_addr("127.0.0.2:0", &a, &len) == 0);
    CHECK(mprof_http_addr_is_loopback(&a));

    CHECK(mprof_http_parse_listen_addr("[::1]:6060", &a, &len) == 0);
    CHECK(a.ss_family == AF_INET6 && len == sizeof(struct sockaddr_in6));
    CHECK(mprof_http_addr_is_loopback(&a));
    mprof_http_format_addr(&a, shown, sizeof shown);
    CHECK(strcmp(shown, "[::1]:6060") == 0);
    CHECK(mprof_http_parse_listen_addr("[::]:6060", &a, &len) == 0);
    CHECK(!mprof_http_addr_is_loopback(&a));

    CHECK(mprof_http_parse_listen_addr("6060", &a, &len) == -1);
    CHECK(mprof_http_parse_listen_addr(":", &a, &len) == -1);
    CHECK(mprof_http_parse_listen_addr(":65536", &a, &len) == -1);
    CHECK(mprof_http_parse_listen_addr(":-1", &a, &len) == -1);
    CHECK(mprof_http_parse_listen_addr(":60x", &a, &len) == -1);
    CHECK(mprof_http_parse_listen_addr("example.com:80", &a, &len) == -1);
    CHECK(mprof_http_parse_listen_addr("::1:6060", &a, &len) == -1);
    CHECK(mprof_http_parse_listen_addr("[::1]6060", &a, &len) == -1);
    CHECK(mprof_http_parse_listen_addr("[zz]:6060", &a, &len) == -1);
    CHECK(mprof_http_parse_listen_addr("256.0.0.1:80", &a, &len) == -1);
}

static void test_signal_names(void)
{
    CHECK(mprof_parse_signal("SIGUSR2") == SIGUSR2);
    CHECK(mprof_parse_signal("usr1") == SIGUSR1);
    CHECK(mprof_parse_signal("SigHup") == SIGHUP);
    CHECK(mprof_parse_signal("12") == 12);
    CHECK(mprof_parse_signal("SIGRTMIN") == SIGRTMIN);
    CHECK(mprof_parse_signal("SIGRTMIN+3") == SIGRTMIN + 3);
    CHECK(mprof_parse_signal("RTMAX-1") == SIGRTMAX - 1);
    CHECK(mprof_parse_signal("SIGRTMIN+999") == -1);
    CHECK(mprof_parse_signal("SIGKILL") == -1);
    CHECK(mprof_parse_signal("STOP") == -1);
    CHECK(mprof_parse_signal("SIGSEGV") == -1);
    CHECK(mprof_parse_signal("SIGPROF") == -1);
    CHECK(mprof_parse_signal("9") == -1);
    CHECK(mprof_parse_signal("0") == -1);
    CHECK(mprof_parse_signal("32") == -1);
    CHECK(mprof_parse_signal("999") == -1);
    CHECK(mprof_parse_signal("") == -1);
    CHECK(mprof_parse_signal("SIGFOO") == -1);
    CHECK(mprof_parse_signal("12abc") == -1);
}

static void test_snapshot_paths(void)
{
    char out[256], want[256];
    snprintf(want, sizeof want, "mprof.heap.%d.0001.pb.gz", (int)getpid());
    CHECK(mprof_snapshot_path("mprof.heap.%p", 1, ".pb.gz", out, sizeof out) == 0 && strcmp(out, want) == 0);
    CHECK(mprof_snapshot_path("/tmp/srv.pb.gz", 12, ".pb.gz", out, sizeof out) == 0 &&
          strcmp(out, "/tmp/srv.0012.pb.gz") == 0);
    CHECK(mprof_snapshot_path("/tmp/srv.heap", 12345, ".pb.gz", out, sizeof out) == 0 &&
          strcmp(out, "/tmp/srv.heap.12345.pb.gz") == 0);
    CHECK(mprof_snapshot_path("/tmp/100%%", 1, ".pb.gz", out, sizeof out) == 0 &&
          strcmp(out, "/tmp/100%.0001.pb.gz") == 0);
    CHECK(mprof_snapshot_path(".pb.gz", 1, ".pb.gz", out, sizeof out) == 0 &&
          strcmp(out, ".pb.gz.0001.pb.gz") == 0);
    CHECK(mprof_snapshot_path("/tmp/a-long-name", 1, ".pb.gz", out, 20) == -1);
    /* The heap dump kind keeps its own name and gets no .pb.gz. */
    CHECK(mprof_snapshot_path("/tmp/srv.hd", 3, "", out, sizeof out) == 0 &&
          strcmp(out, "/tmp/srv.hd.0003") == 0);
}

int main(void)
{
    test_head_length();
    test_request_line();
    test_headers();
    test_query();
    test_host();
    test_listen_addr();
    test_signal_names();
    test_snapshot_paths();
    return check_result("test_http_request");
}
