#include "loop/probe.h"

#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROBE_MAX_RESPONSE 16384

struct probe {
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_write_t write;
    uv_timer_t timer;
    http_parser parser;
    uint64_t id;
    probe_cb cb;
    void *data;
    char *request; /* NULL for TCP probes */
    size_t seen;
    int status, reported, closing;
    char buf[4096];
    struct probe *prev, *next; /* every probe not yet freed */
};

static uint64_t next_id;
static struct probe *probes;

static void on_timer_closed(uv_handle_t *h)
{
    struct probe *p = h->data;
    if (p->prev)
        p->prev->next = p->next;
    else
        probes = p->next;
    if (p->next)
        p->next->prev = p->prev;
    free(p->request);
    free(p);
}

static void on_tcp_closed(uv_handle_t *h)
{
    struct probe *p = h->data;
    uv_close((uv_handle_t *)&p->timer, on_timer_closed);
}

static void finish(struct probe *p, int ok, const char *detail)
{
    if (!p->reported) {
        p->reported = 1;
        p->cb(p->id, ok, p->status, detail, p->data);
    }
    if (!p->closing) {
        p->closing = 1;
        uv_timer_stop(&p->timer);
        uv_close((uv_handle_t *)&p->tcp, on_tcp_closed);
    }
}

static void on_timeout(uv_timer_t *t)
{
    struct probe *p = t->data;
    finish(p, 0, "timed out");
}

static int on_headers_complete(http_parser *hp)
{
    struct probe *p = hp->data;
    p->status = (int)hp->status_code;
    return 1; /* the status is all we need */
}

static void on_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
    struct probe *p = h->data;
    (void)s;
    *b = uv_buf_init(p->buf, sizeof p->buf);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct probe *p = s->data;
    char detail[64];
    if (n < 0) {
        finish(p, 0, n == UV_EOF ? "closed before a status line" : uv_strerror((int)n));
        return;
    }
    static const http_parser_settings settings = { .on_headers_complete = on_headers_complete };
    p->seen += (size_t)n;
    http_parser_execute(&p->parser, &settings, b->base, (size_t)n);
    if (p->status) {
        snprintf(detail, sizeof detail, "status %d", p->status);
        finish(p, 1, detail);
    } else if (HTTP_PARSER_ERRNO(&p->parser) != HPE_OK) {
        finish(p, 0, "not an HTTP response");
    } else if (p->seen > PROBE_MAX_RESPONSE) {
        finish(p, 0, "no status line in 16 KiB");
    }
}

static void on_written(uv_write_t *w, int status)
{
    struct probe *p = w->data;
    if (status < 0)
        finish(p, 0, uv_strerror(status));
}

static void on_connect(uv_connect_t *c, int status)
{
    struct probe *p = c->data;
    if (status < 0) {
        finish(p, 0, uv_strerror(status));
        return;
    }
    if (!p->request) {
        finish(p, 1, "connected");
        return;
    }
    http_parser_init(&p->parser, HTTP_RESPONSE);
    p->parser.data = p;
    uv_buf_t b = uv_buf_init(p->request, (unsigned)strlen(p->request));
    p->write.data = p;
    if (uv_write(&p->write, (uv_stream_t *)&p->tcp, &b, 1, on_written) < 0 ||
        uv_read_start((uv_stream_t *)&p->tcp, on_alloc, on_read) < 0)
        finish(p, 0, "cannot send the request");
}

int probe_start(uv_loop_t *loop, const char *host, int port, const char *path, unsigned timeout_ms,
                probe_cb cb, void *data, uint64_t *id)
{
    struct sockaddr_storage ss;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) < 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) < 0)
        return UV_EINVAL;
    if (path && (path[0] != '/' || strpbrk(path, " \r\n")))
        return UV_EINVAL;
    struct probe *p = calloc(1, sizeof *p);
    if (!p)
        return UV_ENOMEM;
    p->id = ++next_id;
    p->cb = cb;
    p->data = data;
    p->next = probes;
    if (probes)
        probes->prev = p;
    probes = p;
    if (path && asprintf(&p->request,
                         "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: baton-probe\r\n"
                         "Connection: close\r\n\r\n",
                         path, host, port) < 0) {
        free(p);
        return UV_ENOMEM;
    }
    uv_tcp_init(loop, &p->tcp);
    uv_timer_init(loop, &p->timer);
    p->tcp.data = p->timer.data = p->connect.data = p;
    int r = uv_tcp_connect(&p->connect, &p->tcp, (struct sockaddr *)&ss, on_connect);
    if (r < 0) {
        p->reported = 1;
        p->closing = 1;
        uv_close((uv_handle_t *)&p->tcp, on_tcp_closed);
        return r;
    }
    uv_timer_start(&p->timer, on_timeout, timeout_ms, 0);
    *id = p->id;
    return 0;
}

void probe_cancel_all(void)
{
    for (struct probe *p = probes; p; p = p->next) {
        p->reported = 1; /* nobody is left to tell */
        finish(p, 0, "cancelled");
    }
}
