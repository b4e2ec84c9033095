/* loadgen: an HTTP/1.1 load client that counts every way a request can fail.
 *
 *   loadgen --port PORT [--host 127.0.0.1] [--keepalive N] [--close N]
 *           [--duration SECONDS] [--timeout-ms MS] [--path /PATH] [--timeline]
 *           [--timeline-ms MS] [--retry-ms MS]
 *
 * --keepalive N connections send request after request on one connection;
 * --close N connections send one request with "Connection: close" each and
 * reconnect, so new connections arrive all the time. It runs until
 * --duration (default 60, at most 600) or SIGINT/SIGTERM, then lets requests
 * in flight finish (at most --timeout-ms) and prints one line:
 *
 *   loadgen: requests=N ok=N non2xx=N connect_errors=N resets=N eof=N
 *            timeouts=N p50_us=N p99_us=N max_us=N connects=N
 *
 * A connection the server closes between requests (after a response that
 * said Connection: close, or while idle with nothing asked) is no error;
 * a connection lost with a request outstanding is. --timeline prints
 * "t=SECONDS epoch_ms=MS ok=N errors=N" every second (every --timeline-ms).
 * A client whose connect failed waits --retry-ms (default 10) before it tries
 * again, as a real client backs off; a refusing port is not a tight loop.
 * Up to 16384 connections; it raises its open-file limit to the hard one. */

#include <arpa/inet.h>
#include <errno.h>
#include <http_parser.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <uv.h>

enum { MAX_CONNS = 16384, LAT_BUCKETS = 4096 };

struct client {
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_timer_t retry; /* the back-off after a failed connect */
    uv_write_t write;
    http_parser parser;
    int keepalive;
    int outstanding; /* a request was sent, its response not complete */
    int alive;       /* the tcp handle is open */
    int server_said_close;
    int connect_failed;
    int writing;          /* c->write is in flight: it may not be reused yet */
    int send_after_write; /* the next request waits for that write to finish */
    uint64_t sent_at;     /* uv_hrtime of the request */
};

static struct {
    unsigned long long requests, ok, non2xx, connect_errors, resets, eof, timeouts, connects;
    unsigned long long sec_ok, sec_err;
} st;
/* Latency histogram, log-linear: exact below 128 us, then 64 buckets per
 * power of two (under 1.6% wide), so 10,000 busy connections (100+ ms) are
 * measured as well as one idle one. */
static unsigned long long lat[LAT_BUCKETS];
static uint64_t lat_max;

static uv_loop_t *loop;
static struct sockaddr_in target;
static http_parser_settings settings;
static struct client *clients;
static int nclients, stopping, timeline;
static uv_timer_t stop_timer, tick_timer, flight_timer;
static uv_signal_t sigint_h, sigterm_h;
static char req_keep[256], req_close[256];
static double t0;
static uint64_t timeout_ns;
static long tick_ms = 1000, retry_ms = 10;

static void start_client(struct client *c);
static void send_request(struct client *c);

static size_t bucket_of(uint64_t us)
{
    if (us < 128)
        return (size_t)us;
    int e = 63 - __builtin_clzll(us) - 6; /* us >> e is in [64, 128) */
    return (size_t)e * 64 + (size_t)(us >> e);
}

static uint64_t bucket_top(size_t i) /* the largest latency bucket i holds, in us */
{
    if (i < 128)
        return i;
    size_t e = i / 64 - 1;
    return (((uint64_t)(i - e * 64) + 1) << e) - 1;
}

static void record_latency(uint64_t ns)
{
    uint64_t us = ns / 1000;
    size_t b = bucket_of(us);
    lat[b < LAT_BUCKETS ? b : LAT_BUCKETS - 1]++;
    if (us > lat_max)
        lat_max = us;
}

static uint64_t percentile(double p)
{
    unsigned long long total = 0, seen = 0;
    for (size_t i = 0; i < LAT_BUCKETS; i++)
        total += lat[i];
    if (!total)
        return 0;
    unsigned long long want = (unsigned long long)(p * (double)total);
    for (size_t i = 0; i < LAT_BUCKETS; i++) {
        seen += lat[i];
        if (seen > want) {
            uint64_t top = bucket_top(i);
            return top < lat_max ? top : lat_max;
        }
    }
    return lat_max;
}

static int all_idle(void)
{
    for (int i = 0; i < nclients; i++)
        if (clients[i].alive)
            return 0;
    return 1;
}

static void on_retry(uv_timer_t *t)
{
    start_client(t->data);
}

static void on_closed(uv_handle_t *h)
{
    struct client *c = h->data;
    c->alive = 0;
    if (stopping) {
        if (all_idle())
            uv_stop(loop);
    } else if (c->connect_failed) {
        c->connect_failed = 0;
        uv_timer_start(&c->retry, on_retry, (uint64_t)retry_ms, 0);
    } else {
        start_client(c);
    }
}

static void client_close(struct client *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, on_closed);
}

/* A request was outstanding and the connection died: that is a failure. */
static void fail(struct client *c, unsigned long long *counter)
{
    if (c->outstanding) {
        (*counter)++;
        st.sec_err++;
        c->outstanding = 0;
    }
    client_close(c);
}

static void on_written(uv_write_t *w, int status)
{
    struct client *c = w->data;
    c->writing = 0;
    if (status < 0) {
        c->send_after_write = 0;
        fail(c, status == UV_ECONNRESET || status == UV_EPIPE ? &st.resets : &st.eof);
    } else if (c->send_after_write) {
        c->send_after_write = 0;
        send_request(c);
    }
}

static void send_request(struct client *c)
{
    if (stopping) {
        client_close(c);
        return;
    }
    const char *r = c->keepalive ? req_keep : req_close;
    uv_buf_t b = uv_buf_init((char *)r, (unsigned)strlen(r));
    c->write.data = c;
    c->outstanding = 1;
    c->sent_at = uv_hrtime();
    st.requests++;
    if (uv_write(&c->write, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0)
        fail(c, &st.resets);
    else
        c->writing = 1;
}

static int on_headers_complete(http_parser *p)
{
    struct client *c = p->data;
    c->server_said_close = !http_should_keep_alive(p);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct client *c = p->data;
    if (!c->outstanding)
        return 0;
    c->outstanding = 0;
    record_latency(uv_hrtime() - c->sent_at);
    if (p->status_code >= 200 && p->status_code < 300) {
        st.ok++;
        st.sec_ok++;
    } else {
        st.non2xx++;
        st.sec_err++;
    }
    if (c->keepalive && !c->server_said_close && !stopping) {
        /* The answer can be read before the callback of the write that asked
         * for it has run; the one write request must not be reused until then. */
        if (c->writing)
            c->send_after_write = 1;
        else
            send_request(c);
    } else
        client_close(c);
    return 0;
}

static void on_alloc(uv_handle_t *h, size_t s, uv_buf_t *buf)
{
    static char slab[65536];
    (void)h;
    (void)s;
    *buf = uv_buf_init(slab, sizeof slab);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct client *c = s->data;
    if (n == UV_EOF) {
        fail(c, &st.eof);
        return;
    }
    if (n < 0) {
        fail(c, n == UV_ECONNRESET ? &st.resets : &st.eof);
        return;
    }
    size_t done = http_parser_execute(&c->parser, &settings, buf->base, (size_t)n);
    if (done != (size_t)n && !uv_is_closing((uv_handle_t *)&c->tcp))
        fail(c, &st.eof);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct client *c = req->data;
    if (status == UV_ECANCELED && stopping) {
        client_close(c); /* our own shutdown, not the server's failure: no request was sent */
        return;
    }
    if (status < 0) {
        if (st.connect_errors < 5) /* the first few say why */
            fprintf(stderr, "loadgen: connect: %s\n", uv_strerror(status));
        st.requests++;
        st.connect_errors++;
        st.sec_err++;
        c->connect_failed = 1;
        client_close(c);
        return;
    }
    st.connects++;
    uv_tcp_nodelay(&c->tcp, 1);
    http_parser_init(&c->parser, HTTP_RESPONSE);
    c->parser.data = c;
    c->server_said_close = 0;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    send_request(c);
}

static void start_client(struct client *c)
{
    if (stopping)
        return;
    uv_tcp_init(loop, &c->tcp);
    c->tcp.data = c;
    c->alive = 1;
    c->outstanding = 0;
    c->writing = c->send_after_write = 0;
    c->connect.data = c;
    int r = uv_tcp_connect(&c->connect, &c->tcp, (struct sockaddr *)&target, on_connect);
    if (r < 0) {
        if (st.connect_errors < 5)
            fprintf(stderr, "loadgen: connect: %s\n", uv_strerror(r));
        st.requests++;
        st.connect_errors++;
        st.sec_err++;
        c->connect_failed = 1;
        client_close(c);
    }
}

static void on_flight_timeout(uv_timer_t *t)
{
    (void)t;
    /* Whatever is still outstanding now has timed out. */
    for (int i = 0; i < nclients; i++)
        if (clients[i].alive)
            fail(&clients[i], &st.timeouts);
}

static void stop(void)
{
    if (stopping)
        return;
    stopping = 1;
    uv_timer_stop(&stop_timer);
    uv_close((uv_handle_t *)&sigint_h, NULL);
    uv_close((uv_handle_t *)&sigterm_h, NULL);
    uv_timer_stop(&tick_timer);
    uv_close((uv_handle_t *)&tick_timer, NULL);
    uv_unref((uv_handle_t *)&flight_timer);
    uv_timer_start(&flight_timer, on_flight_timeout, timeout_ns / 1000000, 0);
    for (int i = 0; i < nclients; i++) {
        uv_timer_stop(&clients[i].retry);
        if (clients[i].alive && !clients[i].outstanding)
            client_close(&clients[i]);
    }
    if (all_idle())
        uv_stop(loop);
}

static void on_stop_timer(uv_timer_t *t)
{
    (void)t;
    stop();
}
static void on_signal(uv_signal_t *h, int s)
{
    (void)h;
    (void)s;
    stop();
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
    /* Requests stuck longer than the timeout count as timeouts, now. */
    uint64_t now = uv_hrtime();
    for (int i = 0; i < nclients; i++)
        if (clients[i].alive && clients[i].outstanding && now - clients[i].sent_at > timeout_ns)
            fail(&clients[i], &st.timeouts);
    if (timeline) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        printf("t=%.3f epoch_ms=%llu ok=%llu errors=%llu\n", (double)uv_hrtime() / 1e9 - t0,
               (unsigned long long)ts.tv_sec * 1000 + (unsigned long long)ts.tv_nsec / 1000000,
               st.sec_ok, st.sec_err);
    }
    fflush(stdout);
    st.sec_ok = st.sec_err = 0;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *path = "/";
    int port = 0, keep = 0, close_n = 0;
    double duration = 60;
    long timeout_ms = 5000;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--timeline") == 0) {
            timeline = 1;
            continue;
        }
        if (strcmp(a, "--timeline-ms") == 0 && v) {
            timeline = 1;
            tick_ms = atol(v);
            i++;
            continue;
        }
        if (!v)
            goto usage;
        if (strcmp(a, "--host") == 0)
            host = v;
        else if (strcmp(a, "--port") == 0)
            port = atoi(v);
        else if (strcmp(a, "--keepalive") == 0)
            keep = atoi(v);
        else if (strcmp(a, "--close") == 0)
            close_n = atoi(v);
        else if (strcmp(a, "--duration") == 0)
            duration = atof(v);
        else if (strcmp(a, "--timeout-ms") == 0)
            timeout_ms = atol(v);
        else if (strcmp(a, "--path") == 0)
            path = v;
        else if (strcmp(a, "--retry-ms") == 0)
            retry_ms = atol(v);
        else
            goto usage;
        i++;
    }
    if (port <= 0 || port > 65535 || keep < 0 || close_n < 0 || keep + close_n == 0 ||
        keep + close_n > MAX_CONNS || duration <= 0 || duration > 600 || timeout_ms <= 0 ||
        path[0] != '/' || strlen(path) > 128 || strpbrk(path, " \r\n") || tick_ms < 10 ||
        retry_ms < 0 || retry_ms > 10000)
        goto usage;
    if (uv_ip4_addr(host, port, &target) < 0)
        goto usage;
    timeout_ns = (uint64_t)timeout_ms * 1000000;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    snprintf(req_keep, sizeof req_keep, "GET %s HTTP/1.1\r\nHost: %s:%d\r\n\r\n", path, host, port);
    snprintf(req_close, sizeof req_close,
             "GET %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n\r\n", path, host, port);
    signal(SIGPIPE, SIG_IGN);
    loop = uv_default_loop();
    settings.on_headers_complete = on_headers_complete;
    settings.on_message_complete = on_message_complete;
    nclients = keep + close_n;
    clients = calloc((size_t)nclients, sizeof *clients);
    if (!clients)
        return 1;
    t0 = (double)uv_hrtime() / 1e9;
    uv_timer_init(loop, &stop_timer);
    uv_timer_init(loop, &tick_timer);
    uv_timer_init(loop, &flight_timer);
    uv_timer_start(&stop_timer, on_stop_timer, (uint64_t)(duration * 1000), 0);
    uv_timer_start(&tick_timer, on_tick, (uint64_t)tick_ms, (uint64_t)tick_ms);
    uv_signal_init(loop, &sigint_h);
    uv_signal_init(loop, &sigterm_h);
    uv_signal_start(&sigint_h, on_signal, SIGINT);
    uv_signal_start(&sigterm_h, on_signal, SIGTERM);
    for (int i = 0; i < nclients; i++) {
        clients[i].keepalive = i < keep;
        uv_timer_init(loop, &clients[i].retry);
        clients[i].retry.data = &clients[i];
        start_client(&clients[i]);
    }
    uv_run(loop, UV_RUN_DEFAULT);
    printf("loadgen: requests=%llu ok=%llu non2xx=%llu connect_errors=%llu resets=%llu eof=%llu "
           "timeouts=%llu p50_us=%llu p99_us=%llu max_us=%llu connects=%llu\n",
           st.requests, st.ok, st.non2xx, st.connect_errors, st.resets, st.eof, st.timeouts,
           (unsigned long long)percentile(0.50), (unsigned long long)percentile(0.99),
           (unsigned long long)lat_max, st.connects);
    return 0;
usage:
    fprintf(stderr, "usage: loadgen --port PORT [--host 127.0.0.1] [--keepalive N] [--close N] "
                    "[--duration S] [--timeout-ms MS] [--path /PATH] [--timeline] "
                    "[--timeline-ms MS]\n");
    return 2;
}
