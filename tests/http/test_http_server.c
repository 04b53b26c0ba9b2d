/*
 * Unit test of the /debug/pprof server loop (http_server.c) with fake
 * profiles: status codes, headers, HEAD, windows and their cancellation,
 * slow and hostile clients, connection limits, stop/start, descriptors left
 * behind, fork.  Real sockets on 127.0.0.1, port chosen by the kernel.
 * Timeouts are shortened so that the whole test runs in a few seconds; it
 * runs under ASan/UBSan and TSan (label "sanitize").
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "http/http_internal.h"
#include "runtime/lifecycle.h"
#include "test_http_stubs.h"

#include "../lib/check.h"

/* ------------------------------------------------------- fake profiles */

static _Atomic int window_begins, window_ends, window_cancels;
static _Atomic int sleepy_release;

static long fake_count(void) { return 7; }

static int fake_write(int fd, const mprof_profile_params *p, const mprof_profile_base *base)
{
    (void)base;
    const char *body = p->debug ? "fake text profile\n" : "FAKE-PROTOBUF";
    return mprof_write_all(fd, body, strlen(body));
}

static int window_begin(int fd, const mprof_profile_params *p, void **state)
{
    (void)fd;
    window_begins++;
    long *seconds = malloc(sizeof *seconds);
    *seconds = p->seconds;
    *state = seconds;
    return 0;
}

static int window_end(int fd, void *state, const mprof_profile_params *p)
{
    (void)p;
    window_ends++;
    char body[64];
    int n = snprintf(body, sizeof body, "window of %ld s", *(long *)state);
    free(state);
    return mprof_write_all(fd, body, (size_t)n);
}

static void window_cancel(int fd, void *state)
{
    (void)fd;
    window_cancels++;
    free(state);
}

static int busy_begin(int fd, const mprof_profile_params *p, void **state)
{
    (void)fd;
    (void)p;
    (void)state;
    errno = EBUSY;
    return -1;
}

static int failing_write(int fd, const mprof_profile_params *p, const mprof_profile_base *base)
{
    (void)base;
    (void)fd;
    (void)p;
    errno = EIO;
    return -1;
}

#define BIG_SIZE (3 * 1024 * 1024)

static int big_write(int fd, const mprof_profile_params *p, const mprof_profile_base *base)
{
    (void)base;
    (void)p;
    char *buf = malloc(BIG_SIZE);
    for (int i = 0; i < BIG_SIZE; i++)
        buf[i] = (char)('a' + i % 26);
    int rc = mprof_write_all(fd, buf, BIG_SIZE);
    free(buf);
    return rc;
}

/* Holds the worker until the test releases it. */
static int sleepy_write(int fd, const mprof_profile_params *p, const mprof_profile_base *base)
{
    (void)base;
    (void)p;
    for (int i = 0; i < 500 && !sleepy_release; i++)
        usleep(10000);
    return mprof_write_all(fd, "slept", 5);
}

static const mprof_profile fake_profile = {
    .name = "fake", .description = "A <fake> profile & more", .count = fake_count,
    .write = fake_write};
static const mprof_profile window_profile = {
    .name = "window", .description = "windowed", .write = fake_write, .begin = window_begin,
    .end = window_end, .cancel = window_cancel};
static const mprof_profile timed_profile = {
    .name = "timed", .description = "always windowed", .begin = window_begin,
    .end = window_end, .cancel = window_cancel, .default_seconds = 1};
static const mprof_profile busy_profile = {
    .name = "busy", .description = "already running", .begin = busy_begin, .end = window_end,
    .cancel = window_cancel, .default_seconds = 1};
static const mprof_profile failing_profile = {
    .name = "failing", .description = "fails", .write = failing_write};
static const mprof_profile big_profile = {
    .name = "big", .description = "large body", .write = big_write};
static const mprof_profile sleepy_profile = {
    .name = "sleepy", .description = "slow to write", .write = sleepy_write};
static const mprof_profile text_profile = {
    .name = "text", .description = "always text", .flags = MPROF_PROFILE_TEXT,
    .write = fake_write};

/* ------------------------------------------------------------- client */

static int port;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int connect_server(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

typedef struct response {
    int status;
    char *data; /* whole response, NUL-terminated */
    size_t len;
    const char *body;
    size_t body_len;
} response;

/* Reads until EOF or timeout; 0 on EOF, -1 on timeout or error. */
static int read_all(int fd, response *r, double timeout_s)
{
    size_t cap = 1 << 16;
    r->data = malloc(cap);
    r->len = 0;
    double deadline = now_s() + timeout_s;
    for (;;) {
        int wait = (int)((deadline - now_s()) * 1000);
        if (wait <= 0)
            return -1;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, wait) <= 0)
            return -1;
        if (r->len + 4096 + 1 > cap) {
            cap *= 2;
            r->data = realloc(r->data, cap);
        }
        ssize_t n = recv(fd, r->data + r->len, cap - r->len - 1, 0);
        if (n == 0)
            break;
        if (n < 0)
            return errno == ECONNRESET ? 0 : -1;
        r->len += (size_t)n;
    }
    r->data[r->len] = '\0';
    return 0;
}

static void parse_response(response *r)
{
    r->status = 0;
    r->body = NULL;
    r->body_len = 0;
    if (r->len >= 12 && strncmp(r->data, "HTTP/1.1 ", 9) == 0)
        r->status = atoi(r->data + 9);
    char *end = strstr(r->data, "\r\n\r\n");
    if (end != NULL) {
        r->body = end + 4;
        r->body_len = r->len - (size_t)(r->body - r->data);
    }
}

/* Sends raw bytes, reads the whole answer. */
static response request_raw(const char *bytes, size_t len)
{
    response r = {0};
    int fd = connect_server();
    if (fd < 0)
        return r;
    if (len > 0)
        send(fd, bytes, len, MSG_NOSIGNAL);
    if (read_all(fd, &r, 10) == 0)
        parse_response(&r);
    else
        r.status = -1;
    close(fd);
    return r;
}

static response request(const char *method, const char *target)
{
    char buf[1024];
    int n = snprintf(buf, sizeof buf, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUser-Agent: t\r\n\r\n",
                     method, target, port);
    return request_raw(buf, (size_t)n);
}

static const char *header(const response *r, const char *name)
{
    static char value[256];
    char key[64];
    snprintf(key, sizeof key, "\r\n%s: ", name);
    const char *p = strstr(r->data ? r->data : "", key);
    if (p == NULL || (r->body != NULL && p > r->body))
        return NULL;
    p += strlen(key);
    size_t n = strcspn(p, "\r");
    if (n >= sizeof value)
        n = sizeof value - 1;
    memcpy(value, p, n);
    value[n] = '\0';
    return value;
}

static void response_free(response *r) { free(r->data); }

static int count_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* Waits until cond() or timeout. */
static int wait_for(int (*cond)(void), double timeout_s)
{
    double deadline = now_s() + timeout_s;
    while (now_s() < deadline) {
        if (cond())
            return 1;
        usleep(5000);
    }
    return cond();
}

static void start_server(void)
{
    CHECK(mprof_http_start("127.0.0.1:0") == 0);
    struct sockaddr_storage a;
    CHECK(mprof_http_local_addr(&a) == 0);
    port = ntohs(((struct sockaddr_in *)&a)->sin_port);
}

/* --------------------------------------------------------------- tests */

static void test_endpoints(void)
{
    response r = request("GET", "/debug/pprof/");
    CHECK(r.status == 200);
    CHECK(header(&r, "Content-Type") && strstr(header(&r, "Content-Type"), "text/html"));
    CHECK(r.body && strstr(r.body, "<td>7</td><td><a href='fake?debug=1'>fake</a>"));
    CHECK(r.body && strstr(r.body, "A &lt;fake&gt; profile &amp; more"));
    /* Alphabetical. */
    CHECK(r.body && strstr(r.body, ">big<") < strstr(r.body, ">window<"));
    response_free(&r);

    r = request("GET", "/debug/pprof/fake");
    CHECK(r.status == 200);
    CHECK(r.body_len == 13 && r.body && memcmp(r.body, "FAKE-PROTOBUF", 13) == 0);
    CHECK(header(&r, "Content-Type") && strcmp(header(&r, "Content-Type"), "application/octet-stream") == 0);
    CHECK(header(&r, "Content-Disposition") &&
          strcmp(header(&r, "Content-Disposition"), "attachment; filename=\"fake\"") == 0);
    CHECK(header(&r, "X-Content-Type-Options") && strcmp(header(&r, "X-Content-Type-Options"), "nosniff") == 0);
    CHECK(header(&r, "Content-Length") && atoi(header(&r, "Content-Length")) == 13);
    CHECK(header(&r, "Connection") && strcmp(header(&r, "Connection"), "close") == 0);
    response_free(&r);

    r = request("GET", "/debug/pprof/fake?debug=1&gc=1");
    CHECK(r.status == 200);
    CHECK(header(&r, "Content-Type") && strstr(header(&r, "Content-Type"), "text/plain"));
    CHECK(header(&r, "Content-Disposition") == NULL);
    CHECK(r.body && strcmp(r.body, "fake text profile\n") == 0);
    response_free(&r);

    r = request("GET", "/debug/pprof/text");
    CHECK(r.status == 200 && header(&r, "Content-Type") &&
          strstr(header(&r, "Content-Type"), "text/plain"));
    response_free(&r);

    r = request("HEAD", "/debug/pprof/fake");
    CHECK(r.status == 200 && r.body_len == 0);
    CHECK(header(&r, "Content-Disposition") != NULL);
    response_free(&r);
    r = request("HEAD", "/debug/pprof/");
    CHECK(r.status == 200 && r.body_len == 0);
    response_free(&r);
    int begins = window_begins;
    r = request("HEAD", "/debug/pprof/timed");
    CHECK(r.status == 200 && r.body_len == 0 && window_begins == begins); /* not run */
    response_free(&r);
    r = request("HEAD", "/debug/pprof/nope");
    CHECK(r.status == 404 && r.body_len == 0);
    response_free(&r);

    r = request("GET", "/debug/pprof");
    CHECK(r.status == 301 && header(&r, "Location") && strcmp(header(&r, "Location"), "/debug/pprof/") == 0);
    response_free(&r);

    r = request("GET", "/debug/pprof/nope");
    CHECK(r.status == 404 && header(&r, "X-Go-Pprof") != NULL);
    response_free(&r);
    r = request("GET", "/");
    CHECK(r.status == 404);
    response_free(&r);
    r = request("GET", "/debug/pprof/fake/");
    CHECK(r.status == 404);
    response_free(&r);

    r = request("POST", "/debug/pprof/fake");
    CHECK(r.status == 405 && header(&r, "Allow") && strcmp(header(&r, "Allow"), "GET, HEAD") == 0);
    response_free(&r);
    r = request("DELETE", "/debug/pprof/");
    CHECK(r.status == 405);
    response_free(&r);

    r = request("GET", "/debug/pprof/window?seconds=abc");
    CHECK(r.status == 400 && r.body && strstr(r.body, "seconds"));
    response_free(&r);
    r = request("GET", "/debug/pprof/window?seconds=-3");
    CHECK(r.status == 400);
    response_free(&r);
    r = request("GET", "/debug/pprof/window?seconds=100000");
    CHECK(r.status == 400);
    response_free(&r);
    r = request("GET", "/debug/pprof/window?seconds=1&debug=1");
    CHECK(r.status == 400);
    response_free(&r);
    r = request("GET", "/debug/pprof/fake?seconds=1");
    CHECK(r.status == 400 && r.body && strstr(r.body, "not supported"));
    response_free(&r);
    r = request("GET", "/debug/pprof/fake?debug=x");
    CHECK(r.status == 400);
    response_free(&r);

    r = request("GET", "/debug/pprof/busy");
    CHECK(r.status == 409 && header(&r, "X-Go-Pprof") != NULL);
    response_free(&r);
    r = request("GET", "/debug/pprof/failing");
    CHECK(r.status == 500 && r.body && strstr(r.body, "failing"));
    response_free(&r);

    r = request("GET", "/debug/pprof/big");
    CHECK(r.status == 200 && r.body_len == BIG_SIZE);
    int ok = r.body_len == BIG_SIZE;
    for (size_t i = 0; ok && i < BIG_SIZE; i++)
        ok = r.body[i] == (char)('a' + i % 26);
    CHECK(ok);
    response_free(&r);
}

static void test_protocol_errors(void)
{
    static const char rebinding[] = "GET /debug/pprof/ HTTP/1.1\r\nHost: evil.example\r\n\r\n";
    response r = request_raw(rebinding, sizeof rebinding - 1);
    CHECK(r.status == 403);
    response_free(&r);
    static const char http10[] = "GET /debug/pprof/fake HTTP/1.0\r\n\r\n";
    r = request_raw(http10, sizeof http10 - 1);
    CHECK(r.status == 200);
    response_free(&r);
    static const char http2[] = "GET / HTTP/2.0\r\n\r\n";
    r = request_raw(http2, sizeof http2 - 1);
    CHECK(r.status == 505);
    response_free(&r);
    static const char garbage[] = "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n";
    r = request_raw(garbage, sizeof garbage - 1);
    CHECK(r.status == 400);
    response_free(&r);
    static const char smuggle[] = "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n";
    r = request_raw(smuggle, sizeof smuggle - 1);
    CHECK(r.status == 400);
    response_free(&r);

    /* 64 KiB of headers: 431, and the answer survives the unread rest. */
    size_t huge_len = 64 * 1024;
    char *huge = malloc(huge_len);
    int n = snprintf(huge, huge_len, "GET /debug/pprof/ HTTP/1.1\r\nX-Big: ");
    memset(huge + n, 'x', huge_len - (size_t)n);
    r = request_raw(huge, huge_len);
    CHECK(r.status == 431);
    response_free(&r);
    free(huge);

    /* Client that connects and closes at once, or sends half a line. */
    int fd = connect_server();
    close(fd);
    /* Half a request line, then silence: cut off at the head timeout. */
    r = request_raw("GET /deb", 8);
    CHECK(r.status == 408 || r.status == 0);
    response_free(&r);
}

static int idle_closed_fd = -1;

static void test_slow_clients(void)
{
    /* A client that dribbles a byte every 100 ms never completes its head
     * within the (shortened) 600 ms: it is cut off, while others are
     * served at once. */
    int slow = connect_server();
    const char *line = "GET /debug/pprof/ HTTP/1.1\r\nX: ";
    double start = now_s();
    int cut = 0;
    for (int i = 0; i < 40 && !cut; i++) {
        char c = i < (int)strlen(line) ? line[i] : 'x';
        if (send(slow, &c, 1, MSG_NOSIGNAL) != 1)
            cut = 1;
        struct pollfd p = {.fd = slow, .events = POLLIN};
        if (poll(&p, 1, 100) > 0) {
            char buf[512];
            ssize_t got = recv(slow, buf, sizeof buf, 0);
            if (got >= 0) {
                cut = 1;
                if (got > 0)
                    CHECK(strncmp(buf, "HTTP/1.1 408", 12) == 0);
            }
        }
        if (i == 3) {
            double t0 = now_s();
            response r = request("GET", "/debug/pprof/fake");
            CHECK(r.status == 200);
            CHECK(now_s() - t0 < 0.5);
            response_free(&r);
        }
    }
    double took = now_s() - start;
    CHECK(cut);
    CHECK(took > 0.4 && took < 2.0);
    close(slow);

    /* A client that connects and says nothing. */
    idle_closed_fd = connect_server();
    response r = {0};
    CHECK(read_all(idle_closed_fd, &r, 3) == 0);
    CHECK(r.len == 0 || strncmp(r.data, "HTTP/1.1 408", 12) == 0);
    response_free(&r);
    close(idle_closed_fd);
}

static void *concurrent_client(void *arg)
{
    (void)arg;
    response r = request("GET", "/debug/pprof/fake");
    int ok = r.status == 200 && r.body_len == 13;
    response_free(&r);
    return (void *)(intptr_t)ok;
}

static void test_many_clients(void)
{
    enum { N = 50 };
    pthread_t threads[N];
    for (int i = 0; i < N; i++)
        pthread_create(&threads[i], NULL, concurrent_client, NULL);
    int ok = 0;
    for (int i = 0; i < N; i++) {
        void *result;
        pthread_join(threads[i], &result);
        ok += (int)(intptr_t)result;
    }
    CHECK(ok == N);
}

static int cancels_seen_target;
static int cancelled_enough(void) { return window_cancels >= cancels_seen_target; }

static void test_windows(int baseline_fds)
{
    /* A window runs its length, then answers. */
    double t0 = now_s();
    response r = request("GET", "/debug/pprof/window?seconds=1");
    double took = now_s() - t0;
    CHECK(r.status == 200 && r.body && strcmp(r.body, "window of 1 s") == 0);
    CHECK(header(&r, "Content-Disposition") &&
          strcmp(header(&r, "Content-Disposition"), "attachment; filename=\"window-delta\"") == 0);
    CHECK(took >= 0.9 && took < 3);
    response_free(&r);
    r = request("GET", "/debug/pprof/timed");
    CHECK(r.status == 200 && r.body && strcmp(r.body, "window of 1 s") == 0);
    CHECK(header(&r, "Content-Disposition") &&
          strcmp(header(&r, "Content-Disposition"), "attachment; filename=\"timed\"") == 0);
    response_free(&r);

    /* A client that leaves mid-window: cancelled, nothing left behind. */
    int ends = window_ends;
    cancels_seen_target = window_cancels + 1;
    int fd = connect_server();
    char buf[256];
    int n = snprintf(buf, sizeof buf, "GET /debug/pprof/window?seconds=30 HTTP/1.1\r\nHost: localhost\r\n\r\n");
    send(fd, buf, (size_t)n, MSG_NOSIGNAL);
    usleep(200000);
    close(fd);
    CHECK(wait_for(cancelled_enough, 2));
    CHECK(window_ends == ends);
    usleep(50000);
    CHECK(count_fds() == baseline_fds);

    /* While windows are open, other requests are answered; beyond
     * max_windows the server says 503. */
    int clients[4];
    for (int i = 0; i < 4; i++) {
        clients[i] = connect_server();
        n = snprintf(buf, sizeof buf, "GET /debug/pprof/window?seconds=30 HTTP/1.1\r\n\r\n");
        send(clients[i], buf, (size_t)n, MSG_NOSIGNAL);
    }
    usleep(200000);
    t0 = now_s();
    r = request("GET", "/debug/pprof/fake");
    CHECK(r.status == 200 && now_s() - t0 < 0.5);
    response_free(&r);
    r = request("GET", "/debug/pprof/window?seconds=30");
    CHECK(r.status == 503 && header(&r, "Retry-After") != NULL);
    response_free(&r);
    cancels_seen_target = window_cancels + 4;
    for (int i = 0; i < 4; i++)
        close(clients[i]);
    CHECK(wait_for(cancelled_enough, 2));
}

static void *sleepy_client(void *arg)
{
    (void)arg;
    response r = request("GET", "/debug/pprof/sleepy");
    int ok = r.status == 200 && r.body && strcmp(r.body, "slept") == 0;
    response_free(&r);
    return (void *)(intptr_t)ok;
}

static void test_busy_worker(void)
{
    /* The worker is held by a slow profile: requests that need no worker
     * (errors, HEAD) are still answered at once. */
    sleepy_release = 0;
    pthread_t t;
    pthread_create(&t, NULL, sleepy_client, NULL);
    usleep(100000);
    double t0 = now_s();
    response r = request("GET", "/debug/pprof/nope");
    CHECK(r.status == 404);
    response_free(&r);
    r = request("HEAD", "/debug/pprof/fake");
    CHECK(r.status == 200);
    response_free(&r);
    CHECK(now_s() - t0 < 0.5);
    sleepy_release = 1;
    void *ok;
    pthread_join(t, &ok);
    CHECK(ok == (void *)1);
}

static void test_stop_with_open_window(int baseline_fds)
{
    int fd = connect_server();
    char buf[128];
    int n = snprintf(buf, sizeof buf, "GET /debug/pprof/window?seconds=60 HTTP/1.1\r\n\r\n");
    send(fd, buf, (size_t)n, MSG_NOSIGNAL);
    cancels_seen_target = window_cancels + 1;
    usleep(200000);
    double t0 = now_s();
    mprof_http_stop();
    CHECK(now_s() - t0 < 1);
    CHECK(window_cancels >= cancels_seen_target);
    response r = {0};
    CHECK(read_all(fd, &r, 2) == 0); /* closed by the server */
    response_free(&r);
    close(fd);
    CHECK(count_fds() == baseline_fds);
    struct sockaddr_storage a;
    CHECK(mprof_http_local_addr(&a) == -1);
}

static void test_start_errors(void)
{
    start_server();
    errno = 0;
    CHECK(mprof_http_start("127.0.0.1:0") == -1 && errno == EBUSY);
    int taken = port;
    mprof_http_stop();

    /* Port in use: -1, EADDRINUSE. */
    int blocker = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(blocker, (struct sockaddr *)&a, sizeof a);
    listen(blocker, 1);
    socklen_t len = sizeof a;
    getsockname(blocker, (struct sockaddr *)&a, &len);
    char spec[64];
    snprintf(spec, sizeof spec, "127.0.0.1:%d", ntohs(a.sin_port));
    errno = 0;
    CHECK(mprof_http_start(spec) == -1 && errno == EADDRINUSE);
    close(blocker);
    (void)taken;

    errno = 0;
    CHECK(mprof_http_start("nonsense") == -1 && errno == EINVAL);
    CHECK(mprof_http_start("example.com:80") == -1 && errno == EINVAL);
}

static void test_eviction(void)
{
    /* With 4 slots all held by silent clients, a real client still gets
     * in: the oldest silent one is evicted. */
    mprof_http_limits saved = mprof_http_limits_in_force;
    mprof_http_limits_in_force.max_connections = 4;
    mprof_http_limits_in_force.head_timeout_ms = 5000;
    start_server();
    int idle[4];
    for (int i = 0; i < 4; i++)
        idle[i] = connect_server();
    usleep(100000);
    double t0 = now_s();
    response r = request("GET", "/debug/pprof/fake");
    CHECK(r.status == 200);
    CHECK(now_s() - t0 < 1);
    response_free(&r);
    for (int i = 0; i < 4; i++)
        close(idle[i]);
    mprof_http_stop();
    mprof_http_limits_in_force = saved;
}

static void test_fork(void)
{
    /* A child forked while the server runs closes the server's sockets:
     * once the parent stops, the port is free although the child lives. */
    start_server();
    int to_parent[2];
    CHECK(pipe(to_parent) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        /* Counted in the child, which has no other thread: in the parent,
         * the server's worker may still be closing a connection of an
         * earlier test between a count and the fork. */
        int fds_before = count_fds();
        mprof_http_after_fork_child();
        struct sockaddr_storage a;
        int ok = mprof_http_local_addr(&a) == -1;
        /* The listening socket and both eventfds are closed. */
        ok = ok && count_fds() == fds_before - 3;
        char c = ok ? 'y' : 'n';
        if (write(to_parent[1], &c, 1) != 1)
            _exit(1);
        sleep(2);
        _exit(0);
    }
    char c = 0;
    CHECK(read(to_parent[0], &c, 1) == 1 && c == 'y');
    char spec[64];
    snprintf(spec, sizeof spec, "127.0.0.1:%d", port);
    mprof_http_stop();
    /* Rebinding the same port succeeds only if no one holds it. */
    CHECK(mprof_http_start(spec) == 0);
    mprof_http_stop();
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(to_parent[0]);
    close(to_parent[1]);
}

int main(void)
{
    mprof_http_limits_in_force.head_timeout_ms = 600;
    mprof_http_limits_in_force.drain_timeout_ms = 300;
    mprof_http_limits_in_force.write_idle_timeout_ms = 2000;

    static const mprof_profile *profiles[] = {
        &fake_profile, &window_profile, &timed_profile, &busy_profile,
        &failing_profile, &big_profile, &sleepy_profile, &text_profile,
    };
    for (size_t i = 0; i < sizeof profiles / sizeof profiles[0]; i++)
        CHECK(mprof_profile_register(profiles[i]) == 0);
    CHECK(mprof_profile_register(&fake_profile) == -1 && errno == EEXIST);
    static const mprof_profile bad_name = {.name = "Bad/Name", .write = fake_write};
    CHECK(mprof_profile_register(&bad_name) == -1 && errno == EINVAL);

    int baseline_fds = count_fds();
    start_server();
    test_endpoints();
    test_protocol_errors();
    test_slow_clients();
    test_many_clients();
    test_windows(baseline_fds + 3); /* listening socket and two eventfds */
    test_busy_worker();
    test_stop_with_open_window(baseline_fds);
    test_start_errors();
    test_eviction();
    test_fork();
    CHECK(count_fds() == baseline_fds);

    return check_result("test_http_server");
}
