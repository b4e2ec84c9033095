#include "client/loadclient.h"

#include <errno.h>
#include <http_parser.h>
#include <stdlib.h>
#include <string.h>

enum { LAT_BUCKETS = 4096, SCAN_MS = 100 };

struct client {
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_timer_t retry; /* the back-off after a failed connect */
    uv_write_t write;
    http_parser parser;
    struct loadclient *lc;
    int keepalive;
    int outstanding; /* a request was sent, its response not complete */
    int alive;       /* the tcp handle is open */
    int server_said_close;
    int connect_failed;
    int writing;          /* c->write is in flight: it may not be reused yet */
    int send_after_write; /* the next request waits for that write to finish */
    int reused;           /* this connection already completed a response */
    int partial;          /* a byte of the outstanding request's response came */
    uint64_t sent_at;     /* uv_hrtime of the request */
};

enum fail_kind { FAIL_RESET, FAIL_EOF, FAIL_BAD, FAIL_TIMEOUT };

struct loadclient {
    uv_loop_t *loop;
    struct sockaddr_storage target;
    http_parser_settings settings;
    struct client *clients;
    int nclients;
    int started, stopping, finishing;
    int handles; /* of ours still open once finishing: retry, scan and flight timers */
    uv_timer_t scan_timer, flight_timer;
    uint64_t timeout_ns;
    long retry_ms;
    FILE *log;
    char log_name[32];
    char req_keep[320], req_close[320];
    loadclient_done_cb done;
    void *done_ctx;
    struct loadclient_counts st;
    /* Latency histogram, log-linear: exact below 128 us, then 64 buckets per
     * power of two (under 1.6% wide), so 10,000 busy connections (100+ ms)
     * are measured as well as one idle one. */
    unsigned long long lat[LAT_BUCKETS];
    uint64_t lat_max;
    char slab[65536]; /* read buffer: one loop, one read at a time */
};

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

static void record_latency(struct loadclient *lc, uint64_t ns)
{
    uint64_t us = ns / 1000;
    size_t b = bucket_of(us);
    lc->lat[b < LAT_BUCKETS ? b : LAT_BUCKETS - 1]++;
    if (us > lc->lat_max)
        lc->lat_max = us;
}

static uint64_t percentile(const struct loadclient *lc, double p)
{
    unsigned long long total = 0, seen = 0;
    for (size_t i = 0; i < LAT_BUCKETS; i++)
        total += lc->lat[i];
    if (!total)
        return 0;
    unsigned long long want = (unsigned long long)(p * (double)total);
    for (size_t i = 0; i < LAT_BUCKETS; i++) {
        seen += lc->lat[i];
        if (seen > want) {
            uint64_t top = bucket_top(i);
            return top < lc->lat_max ? top : lc->lat_max;
        }
    }
    return lc->lat_max;
}

static void count_cause(struct loadclient *lc, enum loadclient_cause cause)
{
    lc->st.by_cause[cause]++;
    lc->st.errors++;
}

static int all_idle(const struct loadclient *lc)
{
    for (int i = 0; i < lc->nclients; i++)
        if (lc->clients[i].alive)
            return 0;
    return 1;
}

static void on_own_closed(uv_handle_t *h)
{
    struct loadclient *lc = h->data;
    if (--lc->handles == 0 && lc->done)
        lc->done(lc, lc->done_ctx);
}

/* Stopping, and every connection is closed: close our timers, then DONE. */
static void maybe_finish(struct loadclient *lc)
{
    if (!lc->stopping || lc->finishing || !all_idle(lc))
        return;
    lc->finishing = 1;
    lc->handles = 2 + lc->nclients;
    uv_close((uv_handle_t *)&lc->scan_timer, on_own_closed);
    uv_close((uv_handle_t *)&lc->flight_timer, on_own_closed);
    for (int i = 0; i < lc->nclients; i++)
        uv_close((uv_handle_t *)&lc->clients[i].retry, on_own_closed);
}

static void on_retry(uv_timer_t *t)
{
    start_client(t->data);
}

static void on_closed(uv_handle_t *h)
{
    struct client *c = h->data;
    c->alive = 0;
    if (c->lc->stopping) {
        maybe_finish(c->lc);
    } else if (c->connect_failed) {
        c->connect_failed = 0;
        uv_timer_start(&c->retry, on_retry, (uint64_t)c->lc->retry_ms, 0);
    } else {
        start_client(c);
    }
}

static void client_close(struct client *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, on_closed);
}

/* The connection died (or the request took too long): a failure when a
 * request was outstanding, classified by where in the exchange it was. */
static void fail(struct client *c, enum fail_kind kind)
{
    struct loadclient *lc = c->lc;
    if (c->outstanding) {
        c->outstanding = 0;
        switch (kind) {
        case FAIL_RESET: lc->st.resets++; break;
        case FAIL_EOF:
        case FAIL_BAD: lc->st.eof++; break;
        case FAIL_TIMEOUT: lc->st.timeouts++; break;
        }
        enum loadclient_cause cause = kind == FAIL_TIMEOUT             ? LOADCLIENT_TIMEOUT
                                      : kind == FAIL_BAD || c->partial ? LOADCLIENT_CUT
                                      : c->reused                      ? LOADCLIENT_KEEPALIVE_CLOSED
                                                                       : LOADCLIENT_NEW_CLOSED;
        count_cause(lc, cause);
    }
    client_close(c);
}

static void on_written(uv_write_t *w, int status)
{
    struct client *c = w->data;
    c->writing = 0;
    if (status < 0) {
        c->send_after_write = 0;
        fail(c, status == UV_ECONNRESET || status == UV_EPIPE ? FAIL_RESET : FAIL_EOF);
    } else if (c->send_after_write) {
        c->send_after_write = 0;
        send_request(c);
    }
}

static void send_request(struct client *c)
{
    struct loadclient *lc = c->lc;
    if (lc->stopping) {
        client_close(c);
        return;
    }
    const char *r = c->keepalive ? lc->req_keep : lc->req_close;
    uv_buf_t b = uv_buf_init((char *)r, (unsigned)strlen(r));
    c->write.data = c;
    c->outstanding = 1;
    c->partial = 0;
    c->sent_at = uv_hrtime();
    lc->st.requests++;
    if (uv_write(&c->write, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0)
        fail(c, FAIL_RESET);
    else
        c->writing = 1;
}

static int on_message_begin(http_parser *p)
{
    struct client *c = p->data;
    c->partial = 1;
    return 0;
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
    struct loadclient *lc = c->lc;
    if (!c->outstanding)
        return 0;
    c->outstanding = 0;
    c->partial = 0;
    c->reused = 1;
    record_latency(lc, uv_hrtime() - c->sent_at);
    if (p->status_code >= 200 && p->status_code < 300) {
        lc->st.ok++;
    } else {
        lc->st.non2xx++;
        count_cause(lc, LOADCLIENT_NON2XX);
    }
    if (c->keepalive && !c->server_said_close && !lc->stopping) {
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
    struct client *c = h->data;
    (void)s;
    *buf = uv_buf_init(c->lc->slab, sizeof c->lc->slab);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct client *c = s->data;
    if (n == UV_EOF) {
        fail(c, FAIL_EOF);
        return;
    }
    if (n < 0) {
        fail(c, n == UV_ECONNRESET ? FAIL_RESET : FAIL_EOF);
        return;
    }
    size_t done = http_parser_execute(&c->parser, &c->lc->settings, buf->base, (size_t)n);
    if (done != (size_t)n && !uv_is_closing((uv_handle_t *)&c->tcp))
        fail(c, FAIL_BAD);
}

static void connect_failed(struct client *c, int status)
{
    struct loadclient *lc = c->lc;
    if (lc->log && lc->st.connect_errors < 5) /* the first few say why */
        fprintf(lc->log, "%s: connect: %s\n", lc->log_name, uv_strerror(status));
    lc->st.requests++;
    lc->st.connect_errors++;
    count_cause(lc, LOADCLIENT_CONNECT);
    c->connect_failed = 1;
    client_close(c);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct client *c = req->data;
    if (status == UV_ECANCELED && c->lc->stopping) {
        client_close(c); /* our own shutdown, not the server's failure: no request was sent */
        return;
    }
    if (status < 0) {
        connect_failed(c, status);
        return;
    }
    c->lc->st.connects++;
    uv_tcp_nodelay(&c->tcp, 1);
    http_parser_init(&c->parser, HTTP_RESPONSE);
    c->parser.data = c;
    c->server_said_close = 0;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    send_request(c);
}

static void start_client(struct client *c)
{
    struct loadclient *lc = c->lc;
    if (lc->stopping)
        return;
    uv_tcp_init(lc->loop, &c->tcp);
    c->tcp.data = c;
    c->alive = 1;
    c->outstanding = c->partial = c->reused = 0;
    c->writing = c->send_after_write = 0;
    c->connect.data = c;
    int r = uv_tcp_connect(&c->connect, &c->tcp, (struct sockaddr *)&lc->target, on_connect);
    if (r < 0)
        connect_failed(c, r);
}

/* Requests stuck longer than the timeout count as timeouts, now. */
static void on_scan(uv_timer_t *t)
{
    struct loadclient *lc = t->data;
    uint64_t now = uv_hrtime();
    for (int i = 0; i < lc->nclients; i++) {
        struct client *c = &lc->clients[i];
        if (c->alive && c->outstanding && now - c->sent_at > lc->timeout_ns)
            fail(c, FAIL_TIMEOUT);
    }
}

/* Stopping, and the in-flight requests had their time: whatever is still
 * outstanding has timed out. */
static void on_flight_timeout(uv_timer_t *t)
{
    struct loadclient *lc = t->data;
    for (int i = 0; i < lc->nclients; i++)
        if (lc->clients[i].alive)
            fail(&lc->clients[i], FAIL_TIMEOUT);
}

struct loadclient *loadclient_new(uv_loop_t *loop, const struct loadclient_opts *o, char *err,
                                  size_t errlen)
{
    const char *path = o->path ? o->path : "/";
    long timeout_ms = o->timeout_ms ? o->timeout_ms : 5000;
    int n = o->keepalive + o->close;
    if (o->keepalive < 0 || o->close < 0 || n < 1 || n > LOADCLIENT_MAX_CONNS) {
        snprintf(err, errlen, "connections: 1 to %d in all", LOADCLIENT_MAX_CONNS);
        return NULL;
    }
    if (path[0] != '/' || strlen(path) >= 128 || strpbrk(path, " \r\n")) {
        snprintf(err, errlen, "path: starts with '/', under 128 bytes, no space or newline");
        return NULL;
    }
    if (!o->host_header || strlen(o->host_header) >= 128 || strpbrk(o->host_header, " \r\n")) {
        snprintf(err, errlen, "host header: under 128 bytes, no space or newline");
        return NULL;
    }
    if (timeout_ms < 1 || timeout_ms > 3600000 || o->retry_ms < 0 || o->retry_ms > 10000) {
        snprintf(err, errlen, "timeout: 1 ms to 1 h; retry: 0 to 10000 ms");
        return NULL;
    }
    if (!o->target || (o->target->sa_family != AF_INET && o->target->sa_family != AF_INET6)) {
        snprintf(err, errlen, "target: an IPv4 or IPv6 address");
        return NULL;
    }
    struct loadclient *lc = calloc(1, sizeof *lc);
    struct client *clients = calloc((size_t)n, sizeof *clients);
    if (!lc || !clients) {
        free(lc);
        free(clients);
        snprintf(err, errlen, "%s", strerror(ENOMEM));
        return NULL;
    }
    lc->loop = loop;
    memcpy(&lc->target, o->target,
           o->target->sa_family == AF_INET ? sizeof(struct sockaddr_in)
                                           : sizeof(struct sockaddr_in6));
    lc->clients = clients;
    lc->nclients = n;
    lc->timeout_ns = (uint64_t)timeout_ms * 1000000;
    lc->retry_ms = o->retry_ms;
    lc->log = o->log;
    snprintf(lc->log_name, sizeof lc->log_name, "%s", o->log_name ? o->log_name : "load");
    snprintf(lc->req_keep, sizeof lc->req_keep, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path,
             o->host_header);
    snprintf(lc->req_close, sizeof lc->req_close,
             "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, o->host_header);
    lc->settings.on_message_begin = on_message_begin;
    lc->settings.on_headers_complete = on_headers_complete;
    lc->settings.on_message_complete = on_message_complete;
    for (int i = 0; i < n; i++) {
        clients[i].lc = lc;
        clients[i].keepalive = i < o->keepalive;
    }
    return lc;
}

void loadclient_start(struct loadclient *lc)
{
    if (lc->started)
        return;
    lc->started = 1;
    uv_timer_init(lc->loop, &lc->scan_timer);
    uv_timer_init(lc->loop, &lc->flight_timer);
    lc->scan_timer.data = lc->flight_timer.data = lc;
    uv_timer_start(&lc->scan_timer, on_scan, SCAN_MS, SCAN_MS);
    for (int i = 0; i < lc->nclients; i++) {
        uv_timer_init(lc->loop, &lc->clients[i].retry);
        lc->clients[i].retry.data = &lc->clients[i];
        start_client(&lc->clients[i]);
    }
}

void loadclient_stop(struct loadclient *lc, loadclient_done_cb done, void *ctx)
{
    if (lc->stopping)
        return;
    lc->stopping = 1;
    if (!lc->started) { /* nothing of ours is on the loop */
        if (done)
            done(lc, ctx);
        return;
    }
    lc->done = done;
    lc->done_ctx = ctx;
    uv_timer_start(&lc->flight_timer, on_flight_timeout, lc->timeout_ns / 1000000, 0);
    for (int i = 0; i < lc->nclients; i++) {
        struct client *c = &lc->clients[i];
        uv_timer_stop(&c->retry);
        if (c->alive && !c->outstanding)
            client_close(c);
    }
    maybe_finish(lc);
}

void loadclient_read(const struct loadclient *lc, struct loadclient_counts *out)
{
    *out = lc->st;
    out->p50_us = percentile(lc, 0.50);
    out->p99_us = percentile(lc, 0.99);
    out->max_us = lc->lat_max;
}

void loadclient_free(struct loadclient *lc)
{
    if (!lc)
        return;
    free(lc->clients);
    free(lc);
}

const char *loadclient_cause_name(enum loadclient_cause c)
{
    static const char *const names[LOADCLIENT_CAUSES] = {
        [LOADCLIENT_CONNECT] = "connect",
        [LOADCLIENT_KEEPALIVE_CLOSED] = "keepalive_closed",
        [LOADCLIENT_NEW_CLOSED] = "new_connection_closed",
        [LOADCLIENT_CUT] = "cut",
        [LOADCLIENT_TIMEOUT] = "timeout",
        [LOADCLIENT_NON2XX] = "non2xx",
    };
    return (unsigned)c < LOADCLIENT_CAUSES ? names[c] : "?";
}
