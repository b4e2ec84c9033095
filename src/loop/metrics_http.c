#include "loop/metrics_http.h"

#include "base/log.h"
#include "base/nofile.h"

#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct client {
    uv_tcp_t tcp;
    uv_timer_t timer;
    http_parser parser;
    struct metrics_http *m;
    char url[256];
    size_t urllen, seen;
    int url_too_long, done;
};

struct reply {
    uv_write_t w;
    char head[256];
    char *body;
};

static void on_timer_closed(uv_handle_t *h)
{
    struct client *c = h->data;
    c->m->nclients--;
    free(c);
}
static void on_tcp_closed(uv_handle_t *h)
{
    struct client *c = h->data;
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

static void client_close(struct client *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, on_tcp_closed);
}

static void on_written(uv_write_t *w, int status)
{
    struct reply *r = (struct reply *)w;
    (void)status;
    client_close(w->data);
    free(r->body);
    free(r);
}

static void respond(struct client *c, int status, const char *reason, char *body, size_t len,
                    int head_only)
{
    struct reply *r = malloc(sizeof *r);
    if (!r) {
        free(body);
        client_close(c);
        return;
    }
    r->body = body;
    int n = snprintf(r->head, sizeof r->head,
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                     status, reason, len);
    uv_buf_t bufs[2] = { uv_buf_init(r->head, (unsigned)n), uv_buf_init(body, (unsigned)len) };
    r->w.data = c;
    uv_read_stop((uv_stream_t *)&c->tcp);
    if (uv_write(&r->w, (uv_stream_t *)&c->tcp, bufs, head_only || !body ? 1 : 2, on_written) < 0) {
        free(body);
        free(r);
        client_close(c);
    }
}

static void respond_text(struct client *c, int status, const char *reason, const char *msg)
{
    respond(c, status, reason, strdup(msg), strlen(msg), 0);
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct client *c = p->data;
    if (c->urllen + len >= sizeof c->url) {
        c->url_too_long = 1;
        return 0;
    }
    memcpy(c->url + c->urllen, at, len);
    c->urllen += len;
    c->url[c->urllen] = '\0';
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct client *c = p->data;
    size_t len = 0;
    c->done = 1;
    c->m->requests++;
    int head = p->method == HTTP_HEAD;
    if (p->method != HTTP_GET && !head) {
        respond_text(c, 405, "Method Not Allowed", "only GET and HEAD\n");
        return 1;
    }
    if (c->url_too_long) {
        respond_text(c, 414, "URI Too Long", "URI too long\n");
        return 1;
    }
    char *q = strchr(c->url, '?');
    if (q)
        *q = '\0';
    char *body = NULL;
    int status = c->m->page(c->m, c->url, &body, &len);
    const char *reason = status == 200   ? "OK"
                         : status == 404 ? "Not Found"
                         : status == 503 ? "Service Unavailable"
                                         : "Error";
    respond(c, status, reason, body, body ? len : 0, head);
    return 1; /* one request per connection */
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_message_complete = on_message_complete,
};

static void on_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
    static char slab[4096];
    (void)h;
    (void)s;
    *b = uv_buf_init(slab, sizeof slab);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct client *c = s->data;
    if (n < 0) {
        client_close(c);
        return;
    }
    c->seen += (size_t)n;
    if (c->seen > METRICS_MAX_REQUEST) {
        respond_text(c, 431, "Request Header Fields Too Large", "request too large\n");
        return;
    }
    size_t done = http_parser_execute(&c->parser, &settings, b->base, (size_t)n);
    if (!c->done && (done != (size_t)n || HTTP_PARSER_ERRNO(&c->parser) != HPE_OK)) {
        respond_text(c, 400, "Bad Request", "bad request\n");
    }
}

static void on_timeout(uv_timer_t *t)
{
    client_close(t->data);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct metrics_http *m = server->data;
    if (status < 0) {
        char fds[64];
        nofile_describe(fds, sizeof fds);
        log_warn("metrics endpoint: accept: %s (the supervisor: %s)", uv_strerror(status), fds);
        return;
    }
    struct client *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->m = m;
    m->nclients++;
    uv_tcp_init(server->loop, &c->tcp);
    uv_timer_init(server->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
        client_close(c);
        return;
    }
    if (m->nclients > METRICS_MAX_CLIENTS) {
        /* Accepted only to be closed: the kernel's queue does not fill, and
         * the fds stay the supervisor's. */
        if (m->refused++ % 1000 == 0)
            log_warn("metrics endpoint: %u connections open at once: closing new ones "
                     "(%lu so far)",
                     METRICS_MAX_CLIENTS, m->refused);
        client_close(c);
        return;
    }
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    uv_timer_start(&c->timer, on_timeout, METRICS_TIMEOUT_MS, 0);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

int metrics_http_open(struct metrics_http *m, uv_loop_t *loop, int fd, metrics_page_cb page)
{
    int r;
    m->page = page;
    if ((r = uv_tcp_init(loop, &m->server)) < 0)
        return r;
    m->server.data = m;
    /* A dup: libuv closes what it is given, the listener keeps its own. */
    int mine = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (mine < 0 || (r = uv_tcp_open(&m->server, mine)) < 0 ||
        (r = uv_listen((uv_stream_t *)&m->server, 64, on_connection)) < 0) {
        if (mine < 0)
            r = uv_translate_sys_error(errno);
        uv_close((uv_handle_t *)&m->server, NULL);
        return r;
    }
    m->open = 1;
    return 0;
}

void metrics_http_close(struct metrics_http *m)
{
    if (!m->open)
        return;
    m->open = 0;
    uv_close((uv_handle_t *)&m->server, NULL);
}
