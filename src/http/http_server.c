/*
 * The /debug/pprof HTTP server: a small HTTP/1.1 server living inside the
 * profiled program (design and choices: docs/live.md).
 *
 * Two threads, both created with the host's signals blocked (see
 * mprof_live_block_signals) and both holding the profiler guard for their
 * whole life, so nothing they allocate is sampled:
 *
 *  - the server thread runs a poll(2) loop over the listening socket and up
 *    to max_connections nonblocking client sockets.  It never blocks on
 *    anything but poll: every client is a small state machine with a
 *    deadline, so a slow, silent or hostile client costs one slot and is
 *    dropped when its deadline passes;
 *
 *  - the worker thread runs the profiles' callbacks (writing a heap
 *    profile symbolizes and compresses: milliseconds to seconds), one job
 *    at a time, in the order the requests became ready.  While it works the
 *    server thread keeps accepting, reading, timing out and answering.
 *
 * A profile over a window (?seconds=N, and the CPU profile) holds no thread
 * while the window is open: the worker runs the profile's begin callback,
 * the connection then waits in the poll loop until its deadline, and the
 * worker runs end.  A client that goes away meanwhile is noticed by poll
 * (POLLRDHUP / EOF) and its window is cancelled at once.
 *
 * Response bodies are written by the callbacks into an anonymous memory
 * file (memfd), never into a named file: a client that disconnects leaves
 * nothing on disk, and closing the descriptor frees everything.
 *
 * Every response ends the connection (Connection: close).  Profiling
 * clients make one request per connection anyway, and it leaves no idle
 * keep-alive connections to police.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/options.h"
#include "core/os.h"
#include "core/text.h"
#include "http/http_internal.h"
#include "interpose/threads.h"

mprof_http_limits mprof_http_limits_in_force = {
    .max_connections = 64,
    .max_windows = 4,
    .head_timeout_ms = 5000,
    .write_idle_timeout_ms = 10000,
    .drain_timeout_ms = 2000,
};

/* ============================================ descriptors and fork */

/*
 * Every descriptor the server owns is recorded here (as fd + 1, so that the
 * zeroed table is empty).  A child forked while the server runs has copies
 * of them all and no thread to serve them: mprof_http_after_fork_child
 * closes them, or the child would keep the port bound after the parent
 * exits.  Recording happens after open and forgetting before close, so the
 * child can never close a descriptor number the host has reused.
 */
#define MAX_OWNED_FDS 512
static _Atomic int owned_fds[MAX_OWNED_FDS];

static void own_fd(int fd)
{
    for (int i = 0; i < MAX_OWNED_FDS; i++) {
        int expected = 0;
        if (atomic_compare_exchange_strong(&owned_fds[i], &expected, fd + 1))
            return;
    }
    /* Table full: the descriptor merely leaks into a forked child. */
}

static void close_owned_fd(int fd)
{
    if (fd < 0)
        return;
    for (int i = 0; i < MAX_OWNED_FDS; i++) {
        int expected = fd + 1;
        if (atomic_compare_exchange_strong(&owned_fds[i], &expected, 0))
            break;
    }
    close(fd);
}

/* ====================================================== small helpers */

/* An unnamed file for a response body: nothing to clean up on any path. */
static int make_body_fd(void)
{
    int fd = memfd_create("mprof-http", MFD_CLOEXEC);
    if (fd < 0) {
        /* Old kernel or a seccomp filter: an O_TMPFILE file has no name
         * either. */
        const char *dir = mprof_getenv("TMPDIR");
        fd = open(dir && *dir ? dir : "/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    }
    if (fd >= 0)
        own_fd(fd);
    return fd;
}

/* ================================================== the server state */

enum conn_state {
    CONN_FREE,
    CONN_READING,  /* reading the request head */
    CONN_QUEUED,   /* a job waits for the worker */
    CONN_RUNNING,  /* the worker runs this connection's job */
    CONN_WAITING,  /* a profile window is open */
    CONN_SENDING,  /* writing the response */
    CONN_DRAINING, /* response sent; reading until the client's EOF */
};

enum job_kind { JOB_INDEX, JOB_WRITE, JOB_BEGIN, JOB_END, JOB_CANCEL };

struct conn {
    enum conn_state state;
    int sock;             /* -1 once the client is gone */
    int64_t deadline;     /* ms, CLOCK_MONOTONIC; 0: none */
    uint64_t queued_seq;  /* FIFO order of jobs */

    char *head;           /* MPROF_HTTP_MAX_HEAD bytes while READING */
    size_t head_len;

    const mprof_profile *profile;
    mprof_profile_params params;
    int head_only;        /* HEAD request */
    int windowed;
    enum job_kind job;
    mprof_profile_window *window_state; /* from begin, until end or cancel */
    int holds_window;     /* counted in loop.windows_open */

    int body_fd;          /* memfd with the body, or -1 */
    off_t body_len, body_sent;
    char *out;            /* status line, headers, small bodies */
    size_t out_len, out_sent;
    size_t drained;
};

struct worker {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int done_fd; /* eventfd: worker -> server thread */
    /* Under lock: */
    int has_job, finished, quit;
    enum job_kind kind;
    const mprof_profile *profile;
    mprof_profile_params params;
    int fd;
    mprof_profile_window *state;
    int result, error;
};

struct loop {
    int listen_fd;
    int stop_fd;
    int loopback;             /* bound to a loopback address */
    struct conn *conns;
    int nconns;
    struct pollfd *pfds;
    int *pfd_conn;            /* pfds index -> conns index */
    char *chunk;              /* send/drain buffer */
    size_t chunk_size;
    uint64_t next_seq;
    int windows_open;
    int64_t accept_paused_until;
    struct worker worker;
    int worker_started;
    int worker_busy;          /* a job is with the worker */
    int worker_conn;          /* its connection */
};

static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    int running;
    pthread_t thread;
    int listen_fd;
    int stop_fd;
    int done_fd; /* handed to the worker */
    struct sockaddr_storage addr;
} server = {.listen_fd = -1, .stop_fd = -1, .done_fd = -1};

/* ============================================================ worker */

static void index_page(int fd)
{
    const mprof_profile *profiles[MPROF_MAX_PROFILES];
    int n = mprof_profile_list(profiles, MPROF_MAX_PROFILES);
    mprof_text out;
    mprof_text_fd(&out, fd);
    mprof_text_printf(&out,
                     "<html>\n<head>\n<title>/debug/pprof/</title>\n"
                     "<style>\n.profile-name{\n\tdisplay:inline-block;\n\twidth:6rem;\n}\n"
                     "</style>\n</head>\n<body>\n/debug/pprof/<br>\n<br>\n"
                     "Types of profiles available:\n<table>\n"
                     "<thead><td>Count</td><td>Profile</td></thead>\n");
    for (int i = 0; i < n; i++) {
        long count = profiles[i]->count ? profiles[i]->count() : 0;
        /* Names are [a-z0-9_.-]: safe in an attribute without escaping. */
        mprof_text_printf(&out, "<tr><td>%ld</td><td><a href='%s?debug=1'>", count,
                         profiles[i]->name);
        mprof_text_html(&out, profiles[i]->name);
        mprof_text_printf(&out, "</a></td></tr>\n");
    }
    mprof_text_printf(&out, "</table>\n<br>\n<p>\nProfile Descriptions:\n<ul>\n");
    for (int i = 0; i < n; i++) {
        mprof_text_printf(&out, "<li><div class=profile-name>");
        mprof_text_html(&out, profiles[i]->name);
        mprof_text_printf(&out, ": </div> ");
        mprof_text_html(&out, profiles[i]->description ? profiles[i]->description : "");
        mprof_text_printf(&out, "</li>\n");
    }
    mprof_text_printf(&out,
                     "</ul>\n</p>\n<p>Served by mprof %s inside process %d.</p>\n"
                     "</body>\n</html>\n",
                     MPROF_VERSION, (int)getpid());
    (void)mprof_text_finish(&out);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    mprof_guard_enter();
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (!w->has_job && !w->quit)
            pthread_cond_wait(&w->wake, &w->lock);
        if (!w->has_job)
            break;
        enum job_kind kind = w->kind;
        const mprof_profile *p = w->profile;
        mprof_profile_params params = w->params;
        int fd = w->fd;
        mprof_profile_window *state = w->state;
        pthread_mutex_unlock(&w->lock);

        int result = 0;
        errno = 0;
        switch (kind) {
        case JOB_INDEX: index_page(fd); break;
        case JOB_WRITE: result = p->write(fd, &params, NULL); break;
        case JOB_BEGIN:
            state = NULL;
            result = mprof_profile_window_begin(p, fd, &params, &state);
            break;
        case JOB_END: result = mprof_profile_window_end(state, fd, &params); break;
        case JOB_CANCEL: mprof_profile_window_cancel(state, fd); break;
        }
        int error = errno;

        pthread_mutex_lock(&w->lock);
        w->result = result;
        w->error = error;
        w->state = state;
        w->has_job = 0;
        w->finished = 1;
        uint64_t one = 1;
        ssize_t ignored = write(w->done_fd, &one, sizeof one);
        (void)ignored;
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* ======================================================= connections */

static void window_release(struct loop *L, struct conn *c)
{
    if (c->holds_window) {
        c->holds_window = 0;
        L->windows_open--;
    }
}

static void conn_close_socket(struct conn *c)
{
    if (c->sock >= 0) {
        close_owned_fd(c->sock);
        c->sock = -1;
    }
}

static void conn_free(struct loop *L, struct conn *c)
{
    conn_close_socket(c);
    close_owned_fd(c->body_fd);
    window_release(L, c);
    free(c->head);
    free(c->out);
    memset(c, 0, sizeof *c);
    c->sock = -1;
    c->body_fd = -1;
    c->state = CONN_FREE;
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200: return "OK";
    case 301: return "Moved Permanently";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

static void http_date(char *out, size_t len)
{
    /* By hand rather than strftime: the host may have set a locale that
     * would translate the day and month names. */
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, len, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static void conn_send(struct loop *L, struct conn *c);

/*
 * Starts the response: status line and headers, then either body (inline,
 * small) or the conn's body_fd.  content_length < 0 leaves Content-Length
 * out (HEAD of a profile that was not generated).
 */
static void respond(struct loop *L, struct conn *c, int status, const char *content_type,
                    const char *extra_headers, const char *body, size_t body_len,
                    long long content_length)
{
    char date[64];
    http_date(date, sizeof date);
    char length_header[64] = "";
    if (content_length >= 0)
        snprintf(length_header, sizeof length_header, "Content-Length: %lld\r\n", content_length);
    const char *fmt = "HTTP/1.1 %d %s\r\n"
                      "Date: %s\r\n"
                      "Content-Type: %s\r\n"
                      "X-Content-Type-Options: nosniff\r\n"
                      "Cache-Control: no-store\r\n"
                      "%s%s"
                      "Connection: close\r\n\r\n";
    int n = snprintf(NULL, 0, fmt, status, reason_phrase(status), date, content_type,
                     extra_headers, length_header);
    size_t inline_len = c->head_only ? 0 : body_len;
    free(c->out);
    c->out = malloc((size_t)n + 1 + inline_len);
    if (c->out == NULL) {
        conn_free(L, c);
        return;
    }
    snprintf(c->out, (size_t)n + 1, fmt, status, reason_phrase(status), date, content_type,
             extra_headers, length_header);
    if (inline_len > 0)
        memcpy(c->out + n, body, inline_len);
    c->out_len = (size_t)n + inline_len;
    c->out_sent = 0;
    c->body_sent = 0;
    if (c->head_only && c->body_fd >= 0) {
        close_owned_fd(c->body_fd);
        c->body_fd = -1;
    }
    free(c->head);
    c->head = NULL;
    c->state = CONN_SENDING;
    c->deadline = mprof_mono_ms() + mprof_http_limits_in_force.write_idle_timeout_ms;
    conn_send(L, c);
}

/* Errors in the form `go tool pprof` shows to its user: text/plain with
 * X-Go-Pprof set makes it print the body after the status. */
static void respond_error(struct loop *L, struct conn *c, int status, const char *extra_headers,
                          const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void respond_error(struct loop *L, struct conn *c, int status, const char *extra_headers,
                          const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(message, sizeof message - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n > sizeof message - 2)
        n = sizeof message - 2;
    message[n++] = '\n';
    char headers[256];
    snprintf(headers, sizeof headers, "X-Go-Pprof: 1\r\n%s", extra_headers ? extra_headers : "");
    close_owned_fd(c->body_fd);
    c->body_fd = -1;
    respond(L, c, status, "text/plain; charset=utf-8", headers, message, (size_t)n, n);
}

/* Best effort answer to a client we will not serve, then close: used when
 * it is too slow or the server is full, where waiting for the socket to
 * become writable would hand the client the very slot we are reclaiming. */
static void reject_and_close(int sock, int status, const char *message)
{
    char buf[256];
    int n = snprintf(buf, sizeof buf,
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                     "X-Go-Pprof: 1\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s\n",
                     status, reason_phrase(status), strlen(message) + 1, message);
    ssize_t ignored = send(sock, buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)ignored;
}

static void queue_job(struct loop *L, struct conn *c, enum job_kind job)
{
    c->job = job;
    c->state = CONN_QUEUED;
    c->deadline = 0;
    c->queued_seq = L->next_seq++;
}

static const char *profile_content_type(const struct conn *c)
{
    if ((c->profile->flags & MPROF_PROFILE_TEXT) || (!c->windowed && c->params.debug != 0))
        return "text/plain; charset=utf-8";
    return "application/octet-stream";
}

/* Headers for a profile body: Go names the attachment after the profile,
 * "-delta" for a window over a profile that also exists as a snapshot. */
static void profile_headers(const struct conn *c, char *buf, size_t len)
{
    if (strcmp(profile_content_type(c), "application/octet-stream") != 0) {
        buf[0] = '\0';
        return;
    }
    int delta = c->windowed && c->profile->default_seconds <= 0;
    snprintf(buf, len, "Content-Disposition: attachment; filename=\"%s%s\"\r\n",
             c->profile->name, delta ? "-delta" : "");
}

static void respond_with_body(struct loop *L, struct conn *c, const char *content_type,
                              const char *extra_headers)
{
    struct stat st;
    if (fstat(c->body_fd, &st) != 0) {
        respond_error(L, c, 500, NULL, "cannot read the profile: %s", strerror(errno));
        return;
    }
    c->body_len = st.st_size;
    respond(L, c, 200, content_type, extra_headers, NULL, 0, (long long)st.st_size);
}

/* The request head is complete: decide what to do with it. */
static void route(struct loop *L, struct conn *c, size_t head_len)
{
    mprof_http_request req;
    int status = mprof_http_parse_head(c->head, head_len, &req);
    /* Everything needed is in req now; a window may last an hour. */
    free(c->head);
    c->head = NULL;
    if (status != 0) {
        respond_error(L, c, status, NULL, "%s", reason_phrase(status));
        return;
    }
    c->head_only = req.method == MPROF_HTTP_HEAD;

    /*
     * DNS rebinding: a web page can make a browser on this machine send
     * requests to 127.0.0.1 under a name the page controls, and read the
     * answers.  A loopback-bound server therefore only answers requests
     * that name the loopback; a missing Host (HTTP/1.0) is let through.
     */
    if (L->loopback && req.has_host && !mprof_http_host_is_loopback(req.host)) {
        respond_error(L, c, 403, NULL,
                      "this server listens on the loopback interface and answers only "
                      "requests for localhost, 127.0.0.1 or [::1]");
        return;
    }

    static const char prefix[] = "/debug/pprof/";
    const size_t prefix_len = sizeof prefix - 1;
    int is_index = strcmp(req.path, prefix) == 0;
    const mprof_profile *profile = NULL;
    if (!is_index && strncmp(req.path, prefix, prefix_len) == 0)
        profile = mprof_profile_lookup(req.path + prefix_len);

    if (strcmp(req.path, "/debug/pprof") == 0) {
        if (req.method == MPROF_HTTP_OTHER_METHOD) {
            respond_error(L, c, 405, "Allow: GET, HEAD\r\n", "method not allowed");
            return;
        }
        static const char moved[] = "<a href=\"/debug/pprof/\">Moved Permanently</a>.\n";
        respond(L, c, 301, "text/html; charset=utf-8", "Location: /debug/pprof/\r\n", moved,
                sizeof moved - 1, (long long)sizeof moved - 1);
        return;
    }
    if (!is_index && profile == NULL) {
        if (strncmp(req.path, prefix, prefix_len) == 0)
            respond_error(L, c, 404, NULL, "Unknown profile");
        else
            respond_error(L, c, 404, NULL, "404 page not found");
        return;
    }
    if (req.method == MPROF_HTTP_OTHER_METHOD) {
        respond_error(L, c, 405, "Allow: GET, HEAD\r\n", "method not allowed: use GET or HEAD");
        return;
    }

    if (is_index) {
        if (c->head_only) {
            respond(L, c, 200, "text/html; charset=utf-8", "", NULL, 0, -1);
            return;
        }
        c->body_fd = make_body_fd();
        if (c->body_fd < 0) {
            respond_error(L, c, 500, NULL, "cannot create a buffer: %s", strerror(errno));
            return;
        }
        queue_job(L, c, JOB_INDEX);
        return;
    }

    const char *error = NULL;
    if (mprof_http_parse_params(req.query, &c->params, &error) != 0) {
        respond_error(L, c, 400, NULL, "%s", error);
        return;
    }
    c->profile = profile;
    c->windowed = c->params.seconds > 0 || profile->default_seconds > 0;
    if (c->windowed) {
        if (!mprof_profile_has_window(profile)) {
            respond_error(L, c, 400, NULL,
                          "\"seconds\" parameter is not supported for this profile type");
            return;
        }
        /* debug with seconds is refused for every kind, as Go refuses it
         * for its deltas; a kind that is always windowed (the CPU
         * profile, where Go ignores debug) keeps answering debug alone,
         * which the index's links send. */
        if (c->params.debug != 0 && (profile->default_seconds <= 0 || c->params.seconds > 0)) {
            respond_error(L, c, 400, NULL, "seconds and debug params are incompatible");
            return;
        }
        if (c->params.seconds == 0)
            c->params.seconds = profile->default_seconds;
    }

    char headers[256];
    profile_headers(c, headers, sizeof headers);
    if (c->head_only) {
        /* HEAD never runs a profile: a 30-second CPU profile to produce
         * headers nobody reads would be a poor trade.  The headers are
         * those of the GET, less the Content-Length nobody knows yet. */
        respond(L, c, 200, profile_content_type(c), headers, NULL, 0, -1);
        return;
    }
    if (c->windowed && L->windows_open >= mprof_http_limits_in_force.max_windows) {
        respond_error(L, c, 503, "Retry-After: 10\r\n",
                      "too many profiles are being collected at once; retry later");
        return;
    }
    c->body_fd = make_body_fd();
    if (c->body_fd < 0) {
        respond_error(L, c, 500, NULL, "cannot create a buffer: %s", strerror(errno));
        return;
    }
    if (c->windowed) {
        c->holds_window = 1;
        L->windows_open++;
        queue_job(L, c, JOB_BEGIN);
    } else {
        queue_job(L, c, JOB_WRITE);
    }
}

/*
 * The client went away (EOF, reset, or the server is stopping).  Whatever
 * the connection was waiting for is abandoned; an open window still needs
 * its cancel callback, run by the worker like any other job.
 */
static void conn_client_gone(struct loop *L, struct conn *c)
{
    conn_close_socket(c);
    switch (c->state) {
    case CONN_QUEUED:
        if (c->job == JOB_END)
            c->job = JOB_CANCEL; /* keeps its place in the queue */
        else if (c->job != JOB_CANCEL)
            conn_free(L, c);     /* nothing started yet */
        break;
    case CONN_RUNNING:
        break; /* job_finished sees sock < 0 */
    case CONN_WAITING:
        queue_job(L, c, JOB_CANCEL);
        break;
    default:
        conn_free(L, c);
        break;
    }
}

static void conn_read_head(struct loop *L, struct conn *c)
{
    ssize_t n = recv(c->sock, c->head + c->head_len, MPROF_HTTP_MAX_HEAD - c->head_len, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        conn_free(L, c);
        return;
    }
    if (n < 0)
        return;
    c->head_len += (size_t)n;
    size_t head_len = mprof_http_head_length(c->head, c->head_len);
    if (head_len > 0) {
        route(L, c, head_len);
        return;
    }
    if (c->head_len == MPROF_HTTP_MAX_HEAD)
        respond_error(L, c, 431, NULL, "request head larger than %d bytes", MPROF_HTTP_MAX_HEAD);
}

/* Reads and discards what a client sends while its request is processed
 * (or after the response), to notice its EOF. */
static void conn_discard_input(struct loop *L, struct conn *c)
{
    ssize_t n = recv(c->sock, L->chunk, L->chunk_size, 0);
    if (n > 0) {
        c->drained += (size_t)n;
        /* A client streaming junk at us gets cut off. */
        if (c->drained > (1u << 20))
            conn_client_gone(L, c);
        return;
    }
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
        conn_client_gone(L, c);
}

static void conn_send(struct loop *L, struct conn *c)
{
    while (c->out_sent < c->out_len) {
        ssize_t n = send(c->sock, c->out + c->out_sent, c->out_len - c->out_sent,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                conn_free(L, c);
            return;
        }
        c->out_sent += (size_t)n;
        c->deadline = mprof_mono_ms() + mprof_http_limits_in_force.write_idle_timeout_ms;
    }
    /* The body goes from the memfd through a shared buffer.  Re-reading
     * with pread after a short send costs a memcpy, and saves a per-client
     * buffer; sendfile is not used because it cannot take MSG_NOSIGNAL. */
    while (!c->head_only && c->body_fd >= 0 && c->body_sent < c->body_len) {
        size_t want = (size_t)(c->body_len - c->body_sent);
        if (want > L->chunk_size)
            want = L->chunk_size;
        ssize_t got = pread(c->body_fd, L->chunk, want, c->body_sent);
        if (got <= 0) {
            if (got < 0 && errno == EINTR)
                continue;
            conn_free(L, c);
            return;
        }
        ssize_t n = send(c->sock, L->chunk, (size_t)got, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                conn_free(L, c);
            return;
        }
        c->body_sent += n;
        c->deadline = mprof_mono_ms() + mprof_http_limits_in_force.write_idle_timeout_ms;
    }
    /*
     * Done.  Closing now, with request bytes still unread, would make the
     * kernel answer with a reset that can destroy the response before the
     * client reads it; half-close instead and wait briefly for its EOF.
     */
    close_owned_fd(c->body_fd);
    c->body_fd = -1;
    free(c->out);
    c->out = NULL;
    shutdown(c->sock, SHUT_WR);
    c->state = CONN_DRAINING;
    c->drained = 0;
    c->deadline = mprof_mono_ms() + mprof_http_limits_in_force.drain_timeout_ms;
}

/* ====================================================== job handling */

static void start_next_job(struct loop *L)
{
    if (L->worker_busy)
        return;
    struct conn *next = NULL;
    int next_index = -1;
    for (int i = 0; i < L->nconns; i++) {
        struct conn *c = &L->conns[i];
        if (c->state == CONN_QUEUED && (next == NULL || c->queued_seq < next->queued_seq)) {
            next = c;
            next_index = i;
        }
    }
    if (next == NULL)
        return;
    next->state = CONN_RUNNING;
    struct worker *w = &L->worker;
    pthread_mutex_lock(&w->lock);
    w->kind = next->job;
    w->profile = next->profile;
    w->params = next->params;
    w->fd = next->body_fd;
    w->state = next->window_state;
    w->has_job = 1;
    w->finished = 0;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    L->worker_busy = 1;
    L->worker_conn = next_index;
}

static void job_finished(struct loop *L)
{
    struct worker *w = &L->worker;
    pthread_mutex_lock(&w->lock);
    int finished = w->finished;
    enum job_kind kind = w->kind;
    int result = w->result, error = w->error;
    mprof_profile_window *state = w->state;
    w->finished = 0;
    pthread_mutex_unlock(&w->lock);
    if (!finished)
        return;
    L->worker_busy = 0;
    struct conn *c = &L->conns[L->worker_conn];

    if (kind == JOB_BEGIN && result == 0)
        c->window_state = state;
    if (kind == JOB_END || kind == JOB_CANCEL)
        c->window_state = NULL;

    if (c->sock < 0) {
        /* The client left while the worker ran. */
        if (kind == JOB_BEGIN && result == 0)
            queue_job(L, c, JOB_CANCEL);
        else
            conn_free(L, c);
        return;
    }
    char headers[256];
    switch (kind) {
    case JOB_INDEX:
        respond_with_body(L, c, "text/html; charset=utf-8", "");
        break;
    case JOB_WRITE:
    case JOB_END:
        window_release(L, c);
        if (result != 0) {
            respond_error(L, c, 500, NULL, "could not write the %s profile: %s",
                          c->profile->name, strerror(error));
            break;
        }
        profile_headers(c, headers, sizeof headers);
        respond_with_body(L, c, profile_content_type(c), headers);
        break;
    case JOB_BEGIN:
        if (result == 0) {
            c->state = CONN_WAITING;
            c->deadline = mprof_mono_ms() + c->params.seconds * 1000;
            break;
        }
        window_release(L, c);
        /* Go's words ("Could not enable CPU profiling: cpu profiling already
         * in use"), from the kind's name for messages ("CPU profile" gives
         * "CPU"), and then what to do. */
        const char *what = mprof_profile_what(c->profile);
        char lower[32];
        size_t len = strlen(what);
        if (len > 8 && strcmp(what + len - 8, " profile") == 0)
            len -= 8;
        if (len >= sizeof lower)
            len = sizeof lower - 1;
        for (size_t i = 0; i < len; i++)
            lower[i] = (char)tolower((unsigned char)what[i]);
        lower[len] = '\0';
        if (error == EBUSY)
            respond_error(L, c, 409, NULL,
                          "Could not enable %.*s profiling: %s profiling already in use (by "
                          "another request, the program or MPROF_CPU); retry when it ends",
                          (int)len, what, lower);
        else if (error == EEXIST) /* cpu_profile.c: a SIGPROF handler not ours */
            respond_error(L, c, 409, NULL,
                          "Could not enable %.*s profiling: the program has its own SIGPROF "
                          "handler, which mprof neither replaces nor chains; turn off what "
                          "uses SIGPROF in the program to profile it",
                          (int)len, what);
        else
            respond_error(L, c, 500, NULL, "Could not enable %.*s profiling: %s", (int)len,
                          what, strerror(error));
        break;
    case JOB_CANCEL:
        conn_free(L, c);
        break;
    }
}

/* ======================================================== the loop */

static struct conn *free_slot(struct loop *L)
{
    for (int i = 0; i < L->nconns; i++)
        if (L->conns[i].state == CONN_FREE)
            return &L->conns[i];
    /*
     * Full.  A connection still sending its request head is the cheapest to
     * lose and the likeliest to be a slow or idle client: evict the oldest
     * one, so that a flood of half-open connections cannot lock out a real
     * client for a whole head timeout.
     */
    struct conn *oldest = NULL;
    for (int i = 0; i < L->nconns; i++) {
        struct conn *c = &L->conns[i];
        if (c->state == CONN_READING && (oldest == NULL || c->deadline < oldest->deadline))
            oldest = c;
    }
    if (oldest == NULL)
        return NULL;
    reject_and_close(oldest->sock, 503, "server busy");
    conn_free(L, oldest);
    return oldest;
}

static void accept_clients(struct loop *L)
{
    for (int i = 0; i < 32; i++) {
        int sock = accept4(L->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (sock < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* Out of descriptors or memory: the pending connection
                 * keeps the socket readable, so back off instead of
                 * spinning. */
                L->accept_paused_until = mprof_mono_ms() + 100;
            }
            return;
        }
        own_fd(sock);
        struct conn *c = free_slot(L);
        if (c == NULL) {
            reject_and_close(sock, 503, "server busy: too many connections");
            close_owned_fd(sock);
            continue;
        }
        c->head = malloc(MPROF_HTTP_MAX_HEAD);
        if (c->head == NULL) {
            close_owned_fd(sock);
            continue;
        }
        c->sock = sock;
        c->body_fd = -1;
        c->head_len = 0;
        c->state = CONN_READING;
        /* The whole head must arrive by this deadline, however it is
         * dribbled: a byte every second does not extend it. */
        c->deadline = mprof_mono_ms() + mprof_http_limits_in_force.head_timeout_ms;
    }
}

static void handle_deadlines(struct loop *L)
{
    int64_t now = mprof_mono_ms();
    for (int i = 0; i < L->nconns; i++) {
        struct conn *c = &L->conns[i];
        if (c->deadline == 0 || c->deadline > now)
            continue;
        switch (c->state) {
        case CONN_READING:
            reject_and_close(c->sock, 408, "request head not received in time");
            conn_free(L, c);
            break;
        case CONN_WAITING:
            queue_job(L, c, JOB_END);
            break;
        case CONN_SENDING:
        case CONN_DRAINING:
            conn_free(L, c);
            break;
        default:
            c->deadline = 0;
            break;
        }
    }
}

static int poll_timeout(struct loop *L)
{
    int64_t now = mprof_mono_ms();
    int64_t soonest = -1;
    for (int i = 0; i < L->nconns; i++) {
        int64_t d = L->conns[i].deadline;
        if (L->conns[i].state != CONN_FREE && d != 0 && (soonest < 0 || d < soonest))
            soonest = d;
    }
    if (L->accept_paused_until > now && (soonest < 0 || L->accept_paused_until < soonest))
        soonest = L->accept_paused_until;
    if (soonest < 0)
        return -1;
    int64_t wait = soonest - now;
    return wait < 0 ? 0 : wait > 60000 ? 60000 : (int)wait;
}

static void run_loop(struct loop *L)
{
    for (;;) {
        int n = 0;
        L->pfds[n++] = (struct pollfd){.fd = L->stop_fd, .events = POLLIN};
        L->pfds[n++] = (struct pollfd){.fd = L->worker.done_fd, .events = POLLIN};
        int listen_index = -1;
        if (L->accept_paused_until <= mprof_mono_ms()) {
            listen_index = n;
            L->pfds[n++] = (struct pollfd){.fd = L->listen_fd, .events = POLLIN};
        }
        for (int i = 0; i < L->nconns; i++) {
            struct conn *c = &L->conns[i];
            short events = 0;
            switch (c->state) {
            case CONN_READING:
            case CONN_DRAINING: events = POLLIN; break;
            case CONN_QUEUED:
            case CONN_RUNNING:
            case CONN_WAITING: events = POLLIN | POLLRDHUP; break;
            case CONN_SENDING: events = POLLOUT; break;
            default: break;
            }
            if (events == 0 || c->sock < 0)
                continue;
            L->pfd_conn[n] = i;
            L->pfds[n++] = (struct pollfd){.fd = c->sock, .events = events};
        }

        int ready = poll(L->pfds, (nfds_t)n, poll_timeout(L));
        if (ready < 0 && errno != EINTR)
            return;
        if (ready > 0) {
            if (L->pfds[0].revents)
                return; /* stop requested */
            if (L->pfds[1].revents) {
                uint64_t count;
                ssize_t ignored = read(L->worker.done_fd, &count, sizeof count);
                (void)ignored;
                job_finished(L);
            }
            for (int k = 2; k < n; k++) {
                short re = L->pfds[k].revents;
                if (re == 0 || k == listen_index)
                    continue;
                struct conn *c = &L->conns[L->pfd_conn[k]];
                if (c->sock != L->pfds[k].fd)
                    continue; /* reused slot since poll */
                if (re & POLLNVAL) {
                    conn_client_gone(L, c);
                    continue;
                }
                switch (c->state) {
                case CONN_READING: conn_read_head(L, c); break;
                case CONN_SENDING:
                    if (re & (POLLERR | POLLHUP))
                        conn_free(L, c);
                    else
                        conn_send(L, c);
                    break;
                case CONN_DRAINING:
                case CONN_QUEUED:
                case CONN_RUNNING:
                case CONN_WAITING:
                    if (re & (POLLERR | POLLHUP))
                        conn_client_gone(L, c);
                    else
                        conn_discard_input(L, c);
                    break;
                default: break;
                }
            }
            /* Accept last, so that a freed slot is reused in this round. */
            if (listen_index >= 0 && L->pfds[listen_index].revents)
                accept_clients(L);
        }
        handle_deadlines(L);
        start_next_job(L);
    }
}

/*
 * Stopping: every client is dropped, the worker finishes the job it has,
 * and open windows are cancelled here (the worker is gone by then), so that
 * a CPU profile started for a request never outlives the server.
 */
static void shut_down(struct loop *L)
{
    for (int i = 0; i < L->nconns; i++)
        if (L->conns[i].state != CONN_FREE)
            conn_client_gone(L, &L->conns[i]);
    if (L->worker_started) {
        pthread_mutex_lock(&L->worker.lock);
        L->worker.quit = 1;
        pthread_cond_signal(&L->worker.wake);
        pthread_mutex_unlock(&L->worker.lock);
        pthread_join(L->worker.thread, NULL);
        if (L->worker_busy)
            job_finished(L);
    }
    for (int i = 0; i < L->nconns; i++) {
        struct conn *c = &L->conns[i];
        if (c->state == CONN_QUEUED && c->job == JOB_CANCEL)
            mprof_profile_window_cancel(c->window_state, c->body_fd);
        if (c->state != CONN_FREE)
            conn_free(L, c);
    }
}

static void *server_main(void *arg)
{
    (void)arg;
    mprof_guard_enter();
    pthread_setname_np(pthread_self(), "mprof-http");

    struct loop *L = calloc(1, sizeof *L);
    int max = mprof_http_limits_in_force.max_connections;
    if (L != NULL) {
        L->listen_fd = server.listen_fd;
        L->stop_fd = server.stop_fd;
        L->loopback = mprof_http_addr_is_loopback(&server.addr);
        L->nconns = max;
        L->conns = calloc((size_t)max, sizeof *L->conns);
        L->pfds = calloc((size_t)max + 3, sizeof *L->pfds);
        L->pfd_conn = calloc((size_t)max + 3, sizeof *L->pfd_conn);
        L->chunk_size = 64 * 1024;
        L->chunk = malloc(L->chunk_size);
        L->worker.done_fd = server.done_fd;
    }
    if (L == NULL || L->conns == NULL || L->pfds == NULL || L->pfd_conn == NULL ||
        L->chunk == NULL) {
        mprof_warn("the /debug/pprof server is out of memory and stops");
        goto out;
    }
    for (int i = 0; i < max; i++) {
        L->conns[i].sock = -1;
        L->conns[i].body_fd = -1;
    }
    pthread_mutex_init(&L->worker.lock, NULL);
    pthread_cond_init(&L->worker.wake, NULL);
    if (mprof_thread_create_unhooked(&L->worker.thread, NULL, worker_main, &L->worker) != 0) {
        mprof_warn("cannot start the /debug/pprof worker thread; the server stops");
        goto out;
    }
    L->worker_started = 1;
    pthread_setname_np(L->worker.thread, "mprof-http-work");

    run_loop(L);
    shut_down(L);

out:
    if (L != NULL) {
        if (L->worker_started) {
            pthread_mutex_destroy(&L->worker.lock);
            pthread_cond_destroy(&L->worker.wake);
        }
        free(L->conns);
        free(L->pfds);
        free(L->pfd_conn);
        free(L->chunk);
        free(L);
    }
    return NULL;
}

/* ===================================================== start and stop */

MPROF_API int mprof_http_start(const char *addr_spec)
{
    mprof_guard_enter();
    pthread_mutex_lock(&start_lock);
    int rc = -1, saved_errno = 0;
    int fd = -1, stop_fd = -1, done_fd = -1;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char shown[128];

    if (server.running) {
        saved_errno = EBUSY;
        mprof_warn("the /debug/pprof server is already running");
        goto out;
    }
    if (addr_spec == NULL || mprof_http_parse_listen_addr(addr_spec, &addr, &addrlen) != 0) {
        saved_errno = EINVAL;
        mprof_warn("cannot serve /debug/pprof on \"%s\": expected HOST:PORT with a numeric "
                   "HOST, :PORT (loopback), localhost:PORT or [IPV6]:PORT",
                   addr_spec ? addr_spec : "(null)");
        goto out;
    }
    mprof_http_format_addr(&addr, shown, sizeof shown);
    fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&addr, addrlen) != 0 || listen(fd, 128) != 0) {
        saved_errno = errno;
        mprof_warn("cannot serve /debug/pprof on %s: %s; the program runs on without it", shown,
                   strerror(saved_errno));
        goto out;
    }
    /* With port 0 the kernel chose one: announce that one. */
    socklen_t bound_len = sizeof addr;
    getsockname(fd, (struct sockaddr *)&addr, &bound_len);
    mprof_http_format_addr(&addr, shown, sizeof shown);

    stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (stop_fd < 0 || done_fd < 0) {
        saved_errno = errno;
        mprof_warn("cannot serve /debug/pprof: eventfd: %s; the program runs on without it",
                   strerror(saved_errno));
        goto out;
    }
    own_fd(fd);
    own_fd(stop_fd);
    own_fd(done_fd);
    server.listen_fd = fd;
    server.stop_fd = stop_fd;
    server.done_fd = done_fd;
    server.addr = addr;

    sigset_t old;
    mprof_live_block_signals(&old);
    /* Unhooked: no CPU timer, no thread-creation sample for our thread. */
    int err = mprof_thread_create_unhooked(&server.thread, NULL, server_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err != 0) {
        saved_errno = err;
        mprof_warn("cannot start the /debug/pprof server thread: %s (out of threads or of "
                   "address space for its stack: raise ulimit -u or ulimit -v)",
                   strerror(err));
        close_owned_fd(fd);
        close_owned_fd(stop_fd);
        close_owned_fd(done_fd);
        server.listen_fd = server.stop_fd = server.done_fd = -1;
        fd = stop_fd = done_fd = -1;
        goto out;
    }
    fd = stop_fd = done_fd = -1;
    server.running = 1;
    rc = 0;
    if (mprof_http_addr_is_loopback(&addr))
        mprof_warn("serving http://%s/debug/pprof/", shown);
    else
        mprof_warn("serving /debug/pprof on %s \xe2\x80\x94 reachable from other hosts", shown);

out:
    if (fd >= 0)
        close(fd);
    if (stop_fd >= 0)
        close(stop_fd);
    if (done_fd >= 0)
        close(done_fd);
    pthread_mutex_unlock(&start_lock);
    mprof_guard_leave();
    if (rc != 0)
        errno = saved_errno;
    return rc;
}

/* Stops the server; with a timeout when called at exit, where a worker
 * stuck in a callback must not hold the program's exit hostage. */
static void stop_server(int timeout_ms)
{
    mprof_guard_enter();
    pthread_mutex_lock(&start_lock);
    if (server.running) {
        uint64_t one = 1;
        ssize_t ignored = write(server.stop_fd, &one, sizeof one);
        (void)ignored;
        int joined = 1;
        if (timeout_ms < 0) {
            pthread_join(server.thread, NULL);
        } else {
            struct timespec deadline = mprof_deadline_in_ms(timeout_ms);
            joined = pthread_timedjoin_np(server.thread, NULL, &deadline) == 0;
        }
        if (joined) {
            close_owned_fd(server.listen_fd);
            close_owned_fd(server.stop_fd);
            close_owned_fd(server.done_fd);
            server.listen_fd = server.stop_fd = server.done_fd = -1;
            server.running = 0;
        }
    }
    pthread_mutex_unlock(&start_lock);
    mprof_guard_leave();
}

MPROF_API void mprof_http_stop(void)
{
    stop_server(-1);
}

int mprof_http_local_addr(struct sockaddr_storage *addr)
{
    pthread_mutex_lock(&start_lock);
    int running = server.running;
    if (running)
        *addr = server.addr;
    pthread_mutex_unlock(&start_lock);
    return running ? 0 : -1;
}

/* ============================================================ hooks */

void mprof_http_init_from_env(void)
{
    const char *spec = mprof_option_text(MPROF_OPT_HTTP);
    if (spec != NULL)
        (void)mprof_http_start(spec);
}

void mprof_http_at_exit(void)
{
    stop_server(5000);
}

void mprof_http_after_fork_child(void)
{
    /* Only async-signal-safe work here: the child has one thread and may
     * have been forked while the server thread held any lock. */
    for (int i = 0; i < MAX_OWNED_FDS; i++) {
        int v = atomic_exchange(&owned_fds[i], 0);
        if (v != 0)
            close(v - 1);
    }
    server.running = 0;
    server.listen_fd = server.stop_fd = server.done_fd = -1;
    pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    memcpy(&start_lock, &fresh, sizeof fresh);
}
