/* hello_server: a small HTTP/1.1 keep-alive server for baton's demo, tests
 * and benchmarks.
 *
 * Under baton (or systemd) it serves the socket passed in LISTEN_FDS (the
 * listener named "http", else fd 3) and says READY=1 once it accepts. On
 * SIGTERM it drains: it stops accepting (the supervisor keeps the socket and
 * the next generation accepts from the same queue), answers the next
 * request on each connection with "Connection: close", closes in stages
 * (FIN, then read until the client closes) so no response is destroyed by a
 * reset, closes connections that stay idle, and exits when none are left.
 *
 * It counts, in baton's shared stats region: http.requests (responses
 * written), http.errors (requests it could not parse), http.connections
 * (open now, a gauge) and http.shed (connections closed early by a gradual
 * drain). Counters keep counting across restarts. During a gradual drain
 * (the `gradual` policy) each keep-alive connection is closed after a
 * response once baton_drain_progress() passes a random threshold of its own.
 *
 * Options:
 *   --bind HOST:PORT  bind its own socket instead (for the benchmarks'
 *                     stop-then-start and SO_REUSEPORT baselines)
 *   --reuseport       with --bind: set SO_REUSEPORT
 *   --start-delay MS  wait this long before serving (a slow app start)
 *   --mode-file PATH  read at start: "crash" exits 3 at once ("crash-bytes"
 *                     too, after bytes that are not UTF-8 on stderr), "hang" never
 *                     says READY=1, "unhealthy" serves but answers /health
 *                     with 503, "errors" answers every other request 500
 *                     and counts it in http.errors, anything else serves (lets a test make the
 *                     *next* generation fail the way a bad deploy does)
 *   --health-port-base N
 *                     also serve on 127.0.0.1:N+BATON_GENERATION, a port of
 *                     this generation's own: a readiness probe there reaches
 *                     this generation, not whichever one accepts first
 *   --stay            after draining, keep running until killed (an app
 *                     that waits out a timer of its own)
 *   --exit-on-term    on SIGTERM exit at once, cutting every connection (a
 *                     stock server's careless drain, for the tests of
 *                     silent drains: docs/steering.md)
 *   --drain-signal S  drain on TERM (the default), INT or QUIT only, and
 *                     ignore the other two while serving: an app such as
 *                     nginx (QUIT) or lighttpd (INT)
 *
 * GET /health answers 200 "ok" (or 503, see above); any other request
 * answers 200 with a greeting naming the generation.
 */

#include "baton.h"

#include <arpa/inet.h>
#include <errno.h>
#include <http_parser.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#define IDLE_CLOSE_MS 1000 /* while draining, close a connection idle this long */
#define LINGER_MS 2000     /* after our FIN, wait this long for the client's */

struct conn {
    uv_tcp_t tcp;
    uv_timer_t linger;
    http_parser parser;
    struct conn *prev, *next;
    uint64_t last_active;
    int in_request; /* bytes of a request seen, response not yet sent */
    int health;     /* this request is GET /health */
    double shed_at; /* gradual drain: close once progress passes this */
    int closing;    /* sent Connection: close */
    int shut;
};

static uv_loop_t *loop;
static uv_tcp_t server;
static uv_signal_t sigterm, sigint, sigquit;
static uv_timer_t drain_timer;
static http_parser_settings settings;
static struct conn *conns;
static int draining, stay, unhealthy, failing;
static uv_tcp_t health_server;
static char body[128];
static struct baton_stats *stats;
static baton_metric m_requests, m_errors, m_connections, m_shed;

static void conn_unlink(struct conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
}

static void maybe_exit(void)
{
    if (draining && !conns && !stay) {
        fprintf(stderr, "hello[%d]: drained, exiting\n", (int)getpid());
        uv_stop(loop);
    }
}

static void on_linger_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_tcp_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    uv_close((uv_handle_t *)&c->linger, on_linger_closed);
}

static void conn_close(struct conn *c)
{
    if (uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    baton_gauge_add(&m_connections, -1);
    conn_unlink(c);
    uv_timer_stop(&c->linger);
    uv_close((uv_handle_t *)&c->tcp, on_tcp_closed);
    maybe_exit();
}

static void on_linger(uv_timer_t *t)
{
    conn_close(t->data);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct conn *c = req->data;
    (void)status;
    free(req);
    /* Keep reading until the client closes: closing now with unread data
     * would send a reset that can destroy the response in flight. */
    uv_timer_start(&c->linger, on_linger, LINGER_MS, 0);
}

static void conn_shutdown(struct conn *c)
{
    if (c->shut)
        return;
    c->shut = 1;
    uv_shutdown_t *req = malloc(sizeof *req);
    if (!req || uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
        free(req);
        conn_close(c);
        return;
    }
    req->data = c;
}

struct wreq {
    uv_write_t w;
    char buf[512];
};

static void on_write(uv_write_t *w, int status)
{
    struct conn *c = w->data;
    free(w);
    if (status < 0)
        conn_close(c);
    else
        baton_add(&m_requests, 1);
}

static int on_message_complete(http_parser *p)
{
    struct conn *c = p->data;
    int keep = http_should_keep_alive(p) && !draining;
    /* Gradual drain: this connection goes once the window's progress passes
     * its own random threshold; at progress p a fraction p of connections
     * has gone, whatever the request rate. The client reconnects, more and
     * more often to the new generation. */
    if (keep && !c->health) {
        double progress = baton_drain_progress(stats);
        if (progress > 0 && progress >= c->shed_at) {
            keep = 0;
            baton_add(&m_shed, 1);
        }
    }
    struct wreq *w = malloc(sizeof *w);
    if (!w)
        return -1;
    const char *status = "200 OK", *text = body;
    if (failing && !c->health) {
        status = "500 Internal Server Error";
        baton_add(&m_errors, 1);
    }
    if (c->health) {
        status = unhealthy ? "503 Service Unavailable" : "200 OK";
        text = unhealthy ? "unhealthy\n" : "ok\n";
    }
    int n = snprintf(w->buf, sizeof w->buf,
                     "HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n%s\r\n%s",
                     status, strlen(text), keep ? "" : "Connection: close\r\n", text);
    c->health = 0;
    uv_buf_t b = uv_buf_init(w->buf, (unsigned)n);
    w->w.data = c;
    if (uv_write(&w->w, (uv_stream_t *)&c->tcp, &b, 1, on_write) < 0) {
        free(w);
        return -1;
    }
    c->in_request = 0;
    c->last_active = uv_now(loop);
    if (!keep) {
        c->closing = 1;
        conn_shutdown(c);
        return -1; /* stop parsing: nothing after this response is answered */
    }
    return 0;
}

static int on_message_begin(http_parser *p)
{
    struct conn *c = p->data;
    c->in_request = 1;
    c->health = 0;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct conn *c = p->data;
    c->health = len == 7 && memcmp(at, "/health", 7) == 0;
    return 0;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char slab[65536];
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(slab, sizeof slab);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (nread == 0 || c->closing)
        return; /* after Connection: close, further bytes are drained unanswered */
    c->last_active = uv_now(loop);
    size_t done = http_parser_execute(&c->parser, &settings, buf->base, (size_t)nread);
    if (c->closing)
        return;
    if (done != (size_t)nread || HTTP_PARSER_ERRNO(&c->parser) != HPE_OK) {
        static const char bad[] =
            "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        baton_add(&m_errors, 1);
        struct wreq *w = malloc(sizeof *w);
        if (w) {
            memcpy(w->buf, bad, sizeof bad - 1);
            uv_buf_t b = uv_buf_init(w->buf, sizeof bad - 1);
            w->w.data = c;
            if (uv_write(&w->w, s, &b, 1, on_write) < 0)
                free(w);
        }
        c->closing = 1;
        conn_shutdown(c);
    }
}

static void on_connection(uv_stream_t *srv, int status)
{
    if (status < 0)
        return;
    struct conn *c = calloc(1, sizeof *c);
    if (!c)
        return;
    uv_tcp_init(loop, &c->tcp);
    uv_timer_init(loop, &c->linger);
    c->tcp.data = c->linger.data = c;
    if (uv_accept(srv, (uv_stream_t *)&c->tcp) < 0) {
        uv_close((uv_handle_t *)&c->tcp, on_tcp_closed);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    baton_gauge_add(&m_connections, 1);
    c->shed_at = drand48();
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->last_active = uv_now(loop);
    c->next = conns;
    if (conns)
        conns->prev = c;
    conns = c;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_drain_tick(uv_timer_t *t)
{
    (void)t;
    uint64_t now = uv_now(loop);
    struct conn *c = conns, *next;
    for (; c; c = next) {
        next = c->next;
        if (!c->in_request && !c->closing && now - c->last_active >= IDLE_CLOSE_MS) {
            c->closing = 1;
            conn_shutdown(c);
        }
    }
    maybe_exit();
}

static int exit_on_term; /* --exit-on-term */
/* The signal that drains it (--drain-signal); TERM, INT or QUIT. */
static int drain_signum = SIGTERM;

static void on_signal(uv_signal_t *h, int signum)
{
    (void)h;
    if (!draining && signum != drain_signum) {
        fprintf(stderr, "hello[%d]: %s: ignored (it drains on %s)\n", (int)getpid(),
                strsignal(signum), strsignal(drain_signum));
        return;
    }
    if (draining) {
        if (signum == SIGINT)
            exit(1);
        return;
    }
    if (exit_on_term && signum == SIGTERM) {
        fprintf(stderr, "hello[%d]: %s: exiting at once\n", (int)getpid(), strsignal(signum));
        _exit(0);
    }
    draining = 1;
    fprintf(stderr, "hello[%d]: %s: draining\n", (int)getpid(), strsignal(signum));
    baton_notify("STOPPING=1");
    uv_close((uv_handle_t *)&server, NULL); /* our copy only: the supervisor keeps the socket */
    if (uv_is_active((uv_handle_t *)&health_server))
        uv_close((uv_handle_t *)&health_server, NULL);
    uv_timer_start(&drain_timer, on_drain_tick, 100, 100);
    maybe_exit();
}

static int own_socket(const char *hostport, int reuseport)
{
    char host[64];
    const char *colon = strrchr(hostport, ':');
    if (!colon || (size_t)(colon - hostport) >= sizeof host)
        return -EINVAL;
    memcpy(host, hostport, (size_t)(colon - hostport));
    host[colon - hostport] = '\0';
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1)) };
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
        return -EINVAL;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (fd < 0)
        return -errno;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuseport)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 4096) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    return fd;
}

static const char *read_mode(const char *path)
{
    static char mode[32];
    FILE *f = path ? fopen(path, "r") : NULL;
    if (!f)
        return "ok";
    if (!fgets(mode, sizeof mode, f))
        mode[0] = '\0';
    fclose(f);
    mode[strcspn(mode, "\r\n")] = '\0';
    return mode;
}

int main(int argc, char **argv)
{
    const char *bind_addr = NULL, *mode_file = NULL;
    int reuseport = 0, start_delay = 0, health_base = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--bind") == 0 && i + 1 < argc)
            bind_addr = argv[++i];
        else if (strcmp(argv[i], "--reuseport") == 0)
            reuseport = 1;
        else if (strcmp(argv[i], "--start-delay") == 0 && i + 1 < argc)
            start_delay = atoi(argv[++i]);
        else if (strcmp(argv[i], "--mode-file") == 0 && i + 1 < argc)
            mode_file = argv[++i];
        else if (strcmp(argv[i], "--health-port-base") == 0 && i + 1 < argc)
            health_base = atoi(argv[++i]);
        else if (strcmp(argv[i], "--stay") == 0)
            stay = 1;
        else if (strcmp(argv[i], "--exit-on-term") == 0)
            exit_on_term = 1;
        else if (strcmp(argv[i], "--drain-signal") == 0 && i + 1 < argc) {
            const char *name = argv[++i];
            drain_signum = strcmp(name, "INT") == 0    ? SIGINT
                           : strcmp(name, "QUIT") == 0 ? SIGQUIT
                           : strcmp(name, "TERM") == 0 ? SIGTERM
                                                       : 0;
            if (!drain_signum) {
                fprintf(stderr, "hello: --drain-signal takes TERM, INT or QUIT\n");
                return 2;
            }
        } else {
            fprintf(stderr,
                    "usage: %s [--bind HOST:PORT [--reuseport]] [--start-delay MS] "
                    "[--mode-file PATH] [--health-port-base N] [--stay] "
                    "[--drain-signal TERM|INT|QUIT] [--exit-on-term]\n",
                    argv[0]);
            return 2;
        }
    }
    const char *mode = read_mode(mode_file);
    unhealthy = strcmp(mode, "unhealthy") == 0;
    failing = strcmp(mode, "errors") == 0;
    if (strcmp(mode, "crash") == 0) {
        fprintf(stderr, "hello[%d]: mode file says crash: exiting 3\n", (int)getpid());
        return 3;
    }
    if (strcmp(mode, "crash-bytes") == 0) {
        fprintf(stderr, "hello[%d]: caf\xe9 \xff\xfe: exiting 3\n", (int)getpid());
        return 3;
    }
    if (start_delay > 0)
        usleep((useconds_t)start_delay * 1000);

    int fd;
    if (bind_addr) {
        fd = own_socket(bind_addr, reuseport);
    } else {
        fd = baton_listener("http");
        if (fd < 0)
            fd = baton_listen_fds() > 0 ? BATON_LISTEN_FDS_START : -ENOENT;
    }
    if (fd < 0) {
        fprintf(stderr, "hello: no socket: %s (run it under baton, or give --bind)\n",
                strerror(-fd));
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    srand48((long)getpid());
    int rc = baton_stats_open(&stats);
    if (rc < 0 || (rc = baton_counter(stats, "http.requests", &m_requests)) < 0 ||
        (rc = baton_counter(stats, "http.errors", &m_errors)) < 0 ||
        (rc = baton_gauge(stats, "http.connections", &m_connections)) < 0 ||
        (rc = baton_counter(stats, "http.shed", &m_shed)) < 0) {
        fprintf(stderr, "hello: stats: %s\n", strerror(-rc));
        return 1;
    }
    snprintf(body, sizeof body, "hello from generation %u, pid %d\n", baton_generation(),
             (int)getpid());
    loop = uv_default_loop();
    settings.on_message_begin = on_message_begin;
    settings.on_message_complete = on_message_complete;
    settings.on_url = on_url;
    uv_tcp_init(loop, &server);
    uv_timer_init(loop, &drain_timer);
    int r = uv_tcp_open(&server, fd);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&server, 4096, on_connection);
    if (r < 0) {
        fprintf(stderr, "hello: listen on fd %d: %s\n", fd, uv_strerror(r));
        return 1;
    }
    if (health_base > 0) {
        char addr[32];
        snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)health_base + baton_generation());
        int hfd = own_socket(addr, 0);
        uv_tcp_init(loop, &health_server);
        if (hfd < 0 || uv_tcp_open(&health_server, hfd) < 0 ||
            uv_listen((uv_stream_t *)&health_server, 64, on_connection) < 0) {
            fprintf(stderr, "hello: health port %s: %s\n", addr, strerror(hfd < 0 ? -hfd : EINVAL));
            return 1;
        }
    }
    uv_signal_init(loop, &sigterm);
    uv_signal_init(loop, &sigint);
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_signal_start(&sigint, on_signal, SIGINT);
    uv_signal_init(loop, &sigquit);
    uv_signal_start(&sigquit, on_signal, SIGQUIT);

    if (strcmp(mode, "hang") == 0)
        fprintf(stderr, "hello[%d]: mode file says hang: never ready\n", (int)getpid());
    else
        baton_notify("READY=1\nSTATUS=serving");
    uv_run(loop, UV_RUN_DEFAULT);
    return 0;
}
