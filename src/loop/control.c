#include "loop/control.h"

#include "base/nofile.h"
#include "base/unixpath.h"
#include "base/utf8.h"

#include "base/clock.h"
#include "base/log.h"
#include "os/os.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

struct control_client {
    uv_pipe_t pipe;
    uv_timer_t idle;
    struct control *ctl;
    struct control_client *next;
    uint64_t req; /* 0 until a request was read */
    char *buf;
    size_t len;
    int closing;
    int replying; /* a response is being written */
    int progress; /* it asked for the supervisor's messages until the answer */
    int parts;    /* it takes an answer longer than a line in parts */
};

static void unlink_client(struct control_client *cl)
{
    struct control_client **p = &cl->ctl->clients;
    while (*p && *p != cl)
        p = &(*p)->next;
    if (*p)
        *p = cl->next;
    cl->ctl->nclients--;
}

static void on_idle_closed(uv_handle_t *h)
{
    struct control_client *cl = h->data;
    free(cl->buf);
    free(cl);
}

static void on_pipe_closed(uv_handle_t *h)
{
    struct control_client *cl = h->data;
    uv_close((uv_handle_t *)&cl->idle, on_idle_closed);
}

static void client_close(struct control_client *cl)
{
    if (cl->closing)
        return;
    cl->closing = 1;
    unlink_client(cl);
    uv_timer_stop(&cl->idle);
    uv_close((uv_handle_t *)&cl->pipe, on_pipe_closed);
}

static struct control_client *find_client(struct control *c, uint64_t req)
{
    for (struct control_client *cl = c->clients; cl; cl = cl->next)
        if (cl->req == req)
            return cl;
    return NULL;
}

struct write_req {
    uv_write_t w;
    struct control_client *cl;
    char *data;
    int final; /* the answer: the connection closes once it is written */
};

static void on_written(uv_write_t *w, int status)
{
    struct write_req *wr = (struct write_req *)w;
    /* A client that left early is no concern of ours; one that left
     * during its progress lines gets no answer either. */
    if (wr->final || status < 0)
        client_close(wr->cl);
    free(wr->data);
    free(wr);
}

/* The answer could not be written within CONTROL_IDLE_MS: a client that
 * asked for progress and never reads would hold its slot for ever. */
static void on_stuck(uv_timer_t *t)
{
    struct control_client *cl = t->data;
    log_warn("control: a client did not read its answer within %d ms; closing it", CONTROL_IDLE_MS);
    client_close(cl);
}

/* Writes TEXT (malloc'ed, LEN bytes and room for one more: owned) as one
 * line; FINAL makes it the answer. */
static int send_text(struct control_client *cl, char *text, size_t len, int final)
{
    struct write_req *wr = cl->closing ? NULL : malloc(sizeof *wr);
    if (!wr) {
        free(text);
        client_close(cl);
        return -ENOMEM;
    }
    text[len] = '\n'; /* overwrite the NUL: the line ends the message */
    wr->cl = cl;
    wr->data = text;
    wr->final = final;
    if (final) {
        cl->replying = 1;
        uv_read_stop((uv_stream_t *)&cl->pipe);
        uv_timer_start(&cl->idle, on_stuck, CONTROL_IDLE_MS, 0);
    }
    uv_buf_t b = uv_buf_init(text, (unsigned)len + 1);
    int r = uv_write(&wr->w, (uv_stream_t *)&cl->pipe, &b, 1, on_written);
    if (r < 0) {
        free(text);
        free(wr);
        client_close(cl);
    }
    return r;
}

/* Writes J (reference stolen) as one line; FINAL makes it the answer. */
static int send_line(struct control_client *cl, json_t *j, int final)
{
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!text) {
        client_close(cl);
        return -ENOMEM;
    }
    return send_text(cl, text, strlen(text), final);
}

/* A part line being filled: {"part":{"in":PATH,"items":[ITEM,...]}}. */
struct part {
    char *buf;        /* CONTROL_MAX + 1 bytes; NULL: none under way */
    size_t len, head; /* head: the bytes before the first item */
};

static int part_start(struct part *p, const char *path_json)
{
    p->buf = malloc(CONTROL_MAX + 1);
    if (!p->buf)
        return -ENOMEM;
    int n = snprintf(p->buf, CONTROL_MAX, "{\"part\":{\"in\":%s,\"items\":[", path_json);
    if (n < 0 || n >= CONTROL_MAX / 2)
        return -E2BIG;
    p->len = p->head = (size_t)n;
    return 0;
}

/* Ends the part under way, if any, and writes it. */
static int part_flush(struct control_client *cl, struct part *p)
{
    if (!p->buf)
        return 0;
    memcpy(p->buf + p->len, "]}}", 4);
    int r = send_text(cl, p->buf, p->len + 3, 0);
    p->buf = NULL;
    return r;
}

/* Moves the items of ARR (the answer's array at PATH, a JSON array of
 * member names: stolen) into part lines of at most CONTROL_MAX bytes each,
 * in order; ARR is left empty. An item too long for a line of its own is
 * -E2BIG: the answers' items are bounded far below that (a listener, an
 * event whose reason quotes a few output lines, one output line). */
static int send_parts_of(struct control_client *cl, json_t *path, json_t *arr)
{
    char *path_json = path ? json_dumps(path, JSON_COMPACT) : NULL;
    json_decref(path);
    struct part p = { 0 };
    int r = path_json ? 0 : -ENOMEM;
    size_t i;
    json_t *item;
    json_array_foreach(arr, i, item) {
        if (r < 0)
            break;
        char *t = json_dumps(item, JSON_COMPACT | JSON_ENCODE_ANY);
        size_t n = t ? strlen(t) : 0;
        if (!t)
            r = -ENOMEM;
        else if (p.buf && p.len + 1 + n + 4 > CONTROL_MAX)
            r = part_flush(cl, &p);
        if (r == 0 && !p.buf)
            r = part_start(&p, path_json);
        if (r == 0 && p.head + n + 4 > CONTROL_MAX)
            r = -E2BIG;
        if (r == 0) {
            if (p.len > p.head)
                p.buf[p.len++] = ',';
            memcpy(p.buf + p.len, t, n);
            p.len += n;
        }
        free(t);
    }
    if (r == 0)
        r = part_flush(cl, &p);
    free(p.buf);
    free(path_json);
    json_array_clear(arr);
    return r;
}

/* An answer of any size, to a client that asked with "parts": true: the
 * arrays of RESP (stolen), its members' and its objects' members', go
 * ahead in part lines, and RESP's own line holds the rest (control.h). */
static int send_in_parts(struct control_client *cl, json_t *resp)
{
    int r = 0;
    const char *k, *k2;
    json_t *v, *v2;
    json_object_foreach(resp, k, v) {
        if (r == 0 && json_is_array(v) && json_array_size(v) > 0)
            r = send_parts_of(cl, json_pack("[s]", k), v);
        if (!json_is_object(v))
            continue;
        json_object_foreach(v, k2, v2)
            if (r == 0 && json_is_array(v2) && json_array_size(v2) > 0)
                r = send_parts_of(cl, json_pack("[s, s]", k, k2), v2);
    }
    if (cl->closing) {
        json_decref(resp);
        return -EPIPE;
    }
    char *text = r == 0 ? json_dumps(resp, JSON_COMPACT) : NULL;
    json_decref(resp);
    if (text && strlen(text) < CONTROL_MAX)
        return send_text(cl, text, strlen(text), 1);
    free(text);
    log_warn("control: an answer could not be cut into lines of %d bytes: %s", CONTROL_MAX,
             strerror(r < 0 ? -r : E2BIG));
    return send_line(cl,
                     json_pack("{s:b, s:s}", "ok", 0, "error",
                               "the answer could not be cut into lines a client reads"),
                     1);
}

static int send_json(struct control_client *cl, json_t *resp)
{
    if (!cl->parts)
        return send_line(cl, resp, 1);
    char *text = json_dumps(resp, JSON_COMPACT);
    if (!text) {
        json_decref(resp);
        client_close(cl);
        return -ENOMEM;
    }
    size_t len = strlen(text);
    if (len < CONTROL_MAX) { /* one line, as to any client */
        json_decref(resp);
        return send_text(cl, text, len, 1);
    }
    free(text);
    return send_in_parts(cl, resp);
}

/* The log tap: each supervisor message goes, as a progress line, to every
 * client that asked for them and still waits for its answer. A client that
 * does not read is skipped once CONTROL_MAX bytes wait for it: a slow
 * terminal never grows the supervisor's memory. */
static void on_log(void *ctx, enum log_level level, const char *msg)
{
    struct control *c = ctx;
    for (struct control_client *cl = c->clients; cl; cl = cl->next) {
        if (!cl->progress || !cl->req || cl->closing || cl->replying ||
            uv_stream_get_write_queue_size((uv_stream_t *)&cl->pipe) > CONTROL_MAX)
            continue;
        char *text = utf8_dup(msg); /* it may quote what an app wrote */
        json_t *j = text ? json_pack("{s:{s:f, s:s, s:s}}", "progress", "time", clock_unix(),
                                     "level", log_level_name(level), "message", text)
                         : NULL;
        free(text);
        if (j)
            send_line(cl, j, 0);
    }
}

static json_t *error_json(const char *fmt, va_list ap)
{
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    return json_pack("{s:b, s:s}", "ok", 0, "error", msg);
}

static void client_error(struct control_client *cl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    json_t *j = error_json(fmt, ap);
    va_end(ap);
    if (j)
        send_json(cl, j);
    else
        client_close(cl);
}

int control_reply(struct control *c, uint64_t req, json_t *resp)
{
    struct control_client *cl = find_client(c, req);
    if (!cl || cl->closing || cl->replying) {
        json_decref(resp);
        return -ENOENT;
    }
    return send_json(cl, resp);
}

int control_reply_error(struct control *c, uint64_t req, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    json_t *j = error_json(fmt, ap);
    va_end(ap);
    return j ? control_reply(c, req, j) : -ENOMEM;
}

int control_parse(const char *buf, size_t len, json_t **req, const char **cmd, char *err,
                  size_t errlen)
{
    json_error_t jerr;
    *req = json_loadb(buf, len, 0, &jerr);
    if (!*req || !json_is_object(*req)) {
        snprintf(err, errlen, "bad request: %s", *req ? "not a JSON object" : jerr.text);
        json_decref(*req);
        *req = NULL;
        return -EINVAL;
    }
    *cmd = json_string_value(json_object_get(*req, "cmd"));
    if (!*cmd) {
        snprintf(err, errlen, "bad request: no \"cmd\" string");
        json_decref(*req);
        *req = NULL;
        return -EINVAL;
    }
    return 0;
}

static void handle_line(struct control_client *cl, size_t linelen)
{
    json_t *req;
    const char *cmd;
    char err[256];
    if (control_parse(cl->buf, linelen, &req, &cmd, err, sizeof err) < 0) {
        client_error(cl, "%s", err);
        return;
    }
    struct control *c = cl->ctl;
    uv_timer_stop(&cl->idle);
    uv_read_stop((uv_stream_t *)&cl->pipe);
    cl->req = ++c->next_req;
    cl->progress = json_is_true(json_object_get(req, "progress"));
    cl->parts = json_is_true(json_object_get(req, "parts"));
    c->cb(c, cl->req, cmd, req);
    json_decref(req);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct control_client *cl = h->data;
    (void)suggested;
    if (!cl->buf)
        cl->buf = malloc(CONTROL_MAX + 1);
    if (!cl->buf || cl->len >= CONTROL_MAX) {
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    *buf = uv_buf_init(cl->buf + cl->len, (unsigned)(CONTROL_MAX - cl->len));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct control_client *cl = s->data;
    (void)buf;
    if (nread == UV_ENOBUFS) {
        client_error(cl, "bad request: longer than %d bytes", CONTROL_MAX);
        return;
    }
    if (nread < 0) {
        /* EOF without a full line: take what came as the request, if any. */
        if (nread == UV_EOF && cl->len > 0) {
            handle_line(cl, cl->len);
            return;
        }
        client_close(cl);
        return;
    }
    size_t start = cl->len;
    cl->len += (size_t)nread;
    char *nl = memchr(cl->buf + start, '\n', (size_t)nread);
    if (nl)
        handle_line(cl, (size_t)(nl - cl->buf));
}

static void on_idle(uv_timer_t *t)
{
    struct control_client *cl = t->data;
    log_warn("control: client sent no request within %d ms; closing it", CONTROL_IDLE_MS);
    client_close(cl);
}

static int peer_allowed(uv_pipe_t *p)
{
    uv_os_fd_t fd;
    uid_t uid;
    if (uv_fileno((uv_handle_t *)p, &fd) < 0 || os_peer_uid(fd, &uid, NULL) < 0)
        return 0;
    return uid == geteuid() || uid == 0;
}

static void on_connection(uv_stream_t *server, int status)
{
    struct control *c = server->data;
    if (status < 0) {
        char fds[64];
        nofile_describe(fds, sizeof fds);
        log_warn("control: accept: %s (the supervisor: %s)", uv_strerror(status), fds);
        return;
    }
    struct control_client *cl = calloc(1, sizeof *cl);
    if (!cl)
        return;
    cl->ctl = c;
    uv_pipe_init(server->loop, &cl->pipe, 0);
    uv_timer_init(server->loop, &cl->idle);
    cl->pipe.data = cl->idle.data = cl;
    cl->next = c->clients;
    c->clients = cl;
    c->nclients++;
    if (uv_accept(server, (uv_stream_t *)&cl->pipe) < 0) {
        client_close(cl);
        return;
    }
    if (!peer_allowed(&cl->pipe)) {
        log_warn("control: refused a client of another user");
        client_error(cl, "permission denied");
        return;
    }
    if (c->nclients > CONTROL_MAX_CLIENTS) {
        client_error(cl, "busy: %d clients already connected", CONTROL_MAX_CLIENTS);
        return;
    }
    uv_timer_start(&cl->idle, on_idle, CONTROL_IDLE_MS, 0);
    uv_read_start((uv_stream_t *)&cl->pipe, on_alloc, on_read);
}

int control_open(struct control *c, uv_loop_t *loop, const char *path, control_cb cb)
{
    return control_open_fd(c, loop, path, -1, cb);
}

int control_open_fd(struct control *c, uv_loop_t *loop, const char *path, int fd, control_cb cb)
{
    struct sockaddr_un un;
    int r;
    if (strlen(path) >= sizeof un.sun_path)
        return -ENAMETOOLONG;
    /* A live socket is another supervisor's; anything but a stale socket
     * of ours is not ours to remove (unixpath.h). */
    if (fd < 0 && (r = unixpath_claim(path)) < 0)
        return r;
    strcpy(c->path, path);
    c->cb = cb;
    c->clients = NULL;
    c->nclients = 0;
    if ((r = uv_pipe_init(loop, &c->server, 0)) < 0)
        return r;
    c->server.data = c;
    if (fd >= 0) {
        r = uv_pipe_open(&c->server, fd);
    } else {
        mode_t old = umask(0177);
        r = uv_pipe_bind(&c->server, path);
        umask(old);
    }
    if (r == 0)
        r = uv_listen((uv_stream_t *)&c->server, 16, on_connection);
    if (r < 0) {
        uv_close((uv_handle_t *)&c->server, NULL);
        return r;
    }
    c->open = 1;
    log_set_tap(on_log, c);
    return 0;
}

int control_client_fd(struct control *c, uint64_t req)
{
    struct control_client *cl = find_client(c, req);
    uv_os_fd_t fd;
    if (!cl || cl->closing || uv_fileno((uv_handle_t *)&cl->pipe, &fd) < 0)
        return -ENOENT;
    return fd;
}

uint64_t control_adopt_client(struct control *c, int fd)
{
    struct control_client *cl = calloc(1, sizeof *cl);
    if (!cl) {
        close(fd);
        return 0;
    }
    cl->ctl = c;
    uv_pipe_init(c->server.loop, &cl->pipe, 0);
    uv_timer_init(c->server.loop, &cl->idle);
    cl->pipe.data = cl->idle.data = cl;
    cl->next = c->clients;
    c->clients = cl;
    c->nclients++;
    cl->req = ++c->next_req;
    if (uv_pipe_open(&cl->pipe, fd) < 0) {
        close(fd);
        client_close(cl);
        return 0;
    }
    return cl->req;
}

void control_abandon(struct control *c, uint64_t keep, const char *why)
{
    struct control_client *cl = c->clients, *next;
    for (; cl; cl = next) {
        next = cl->next;
        if (cl->req && cl->req != keep && !cl->replying)
            client_error(cl, "%s", why);
    }
}

void control_close(struct control *c)
{
    if (!c->open)
        return;
    c->open = 0;
    log_set_tap(NULL, NULL);
    /* A client still waiting for an answer gets one; writes under way finish. */
    struct control_client *cl = c->clients, *next;
    for (; cl; cl = next) {
        next = cl->next;
        if (cl->replying)
            continue;
        if (cl->req)
            client_error(cl, "the supervisor is shutting down");
        else
            client_close(cl);
    }
    uv_close((uv_handle_t *)&c->server, NULL);
    unlink(c->path);
}
