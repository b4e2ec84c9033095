/* output.c: what generations print (see output.h). */
#include "loop/output.h"
#include "base/sanitize.h"

#include "base/clock.h"
#include "base/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct output_pipe {
    uv_pipe_t pipe;
    struct output *o;
    unsigned generation;
    int stream;
    char line[OUTPUT_LINE_MAX];
    size_t len;
    struct output_pipe *next;
};

int output_init(struct output *o, uv_loop_t *loop)
{
    memset(o, 0, sizeof *o);
    o->loop = loop;
    o->next_seq = 1;
    o->ring = calloc(OUTPUT_LINES, sizeof *o->ring);
    return o->ring ? 0 : -ENOMEM;
}

static void drop_oldest(struct output *o)
{
    struct output_line *l = &o->ring[o->first];
    o->bytes -= strlen(l->text);
    free(l->text);
    l->text = NULL;
    o->first = (o->first + 1) % OUTPUT_LINES;
    o->count--;
}

/* Keeps TEXT (owned) as the newest line of the ring. */
static void ring_push(struct output *o, uint64_t seq, double time, unsigned gen, int stream,
                      char *text)
{
    while (o->count > 0 && (o->count == OUTPUT_LINES || o->bytes + strlen(text) > OUTPUT_BYTES))
        drop_oldest(o);
    struct output_line *l = &o->ring[(o->first + o->count) % OUTPUT_LINES];
    *l = (struct output_line){
        .seq = seq, .time = time, .generation = gen, .stream = stream, .text = text
    };
    o->count++;
    o->bytes += strlen(text);
}

static void keep_line(struct output_pipe *p)
{
    struct output *o = p->o;
    /* Written as the supervisor's own, tagged, and kept for `baton logs`
     * as sanitize.h shows it: no app drives a terminal or forges the
     * supervisor's lines, and any bytes in are UTF-8 out (JSON). */
    static char safe[SANITIZE_MAX(OUTPUT_LINE_MAX)];
    sanitize_line(p->line, p->len, safe, sizeof safe);
    p->len = 0;
    log_app_line(p->generation, p->stream == 1 ? "stdout" : "stderr", safe);
    char *text = strdup(safe);
    if (!text || !o->ring) {
        free(text);
        return;
    }
    ring_push(o, o->next_seq++, clock_unix(), p->generation, p->stream, text);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char slab[65536];
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(slab, sizeof slab);
}

static void on_closed(uv_handle_t *h)
{
    free(h->data);
}

static void pipe_close(struct output_pipe *p)
{
    struct output *o = p->o;
    for (struct output_pipe **q = &o->pipes; *q; q = &(*q)->next)
        if (*q == p) {
            *q = p->next;
            break;
        }
    if (p->len > 0)
        keep_line(p); /* a last line without its newline */
    uv_close((uv_handle_t *)&p->pipe, on_closed);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct output_pipe *p = s->data;
    if (n < 0) {
        pipe_close(p);
        return;
    }
    for (ssize_t i = 0; i < n; i++) {
        char c = buf->base[i];
        if (c == '\n') {
            keep_line(p);
            continue;
        }
        if (p->len == OUTPUT_LINE_MAX - 1)
            keep_line(p); /* cut: the rest is a line of its own */
        p->line[p->len++] = c;
    }
}

void output_drain(struct output *o, unsigned gen)
{
    static char buf[65536];
    for (struct output_pipe *p = o->pipes; p; p = p->next) {
        uv_os_fd_t fd;
        if (p->generation != gen || uv_fileno((uv_handle_t *)&p->pipe, &fd) < 0)
            continue;
        /* Bounded: what is in the pipe now, not what a busy writer adds. */
        for (int i = 0; i < 16; i++) {
            ssize_t n = read(fd, buf, sizeof buf);
            if (n <= 0)
                break;
            uv_buf_t b = uv_buf_init(buf, (unsigned)n);
            on_read((uv_stream_t *)&p->pipe, n, &b);
        }
    }
}

int output_attach(struct output *o, unsigned gen, int stream, int fd)
{
    struct output_pipe *p = calloc(1, sizeof *p);
    int r = p ? uv_pipe_init(o->loop, &p->pipe, 0) : UV_ENOMEM;
    if (r < 0) {
        free(p);
        close(fd);
        return r;
    }
    p->pipe.data = p;
    p->o = o;
    p->generation = gen;
    p->stream = stream;
    if ((r = uv_pipe_open(&p->pipe, fd)) < 0 ||
        (r = uv_read_start((uv_stream_t *)&p->pipe, on_alloc, on_read)) < 0) {
        close(fd);
        uv_close((uv_handle_t *)&p->pipe, on_closed);
        return r;
    }
    p->next = o->pipes;
    o->pipes = p;
    if (o->on_attach)
        o->on_attach(o->ctx, gen, stream, fd);
    return 0;
}

json_t *output_json(const struct output *o, uint64_t after, unsigned gen, size_t n)
{
    json_t *out = json_array();
    size_t take = 0, start = o->count;
    /* Walk back from the newest for N matching lines, then emit in order. */
    while (start > 0 && (n == 0 || take < n)) {
        const struct output_line *l = &o->ring[(o->first + start - 1) % OUTPUT_LINES];
        if (l->seq <= after)
            break;
        start--;
        if (!gen || l->generation == gen)
            take++;
    }
    for (size_t i = start; out && i < o->count; i++) {
        const struct output_line *l = &o->ring[(o->first + i) % OUTPUT_LINES];
        if (l->seq <= after || (gen && l->generation != gen))
            continue;
        json_array_append_new(out,
                              json_pack("{s:I, s:f, s:i, s:s, s:s}", "seq", (json_int_t)l->seq,
                                        "time", l->time, "generation", (int)l->generation, "stream",
                                        l->stream == 1 ? "stdout" : "stderr", "line", l->text));
    }
    return out;
}

void output_tail(const struct output *o, unsigned gen, size_t n, char *buf, size_t len)
{
    size_t start = o->count, found = 0;
    buf[0] = '\0';
    while (start > 0 && found < n) {
        const struct output_line *l = &o->ring[(o->first + start - 1) % OUTPUT_LINES];
        start--;
        if (l->generation == gen && l->stream == 2)
            found++;
    }
    for (size_t i = start; i < o->count; i++) {
        const struct output_line *l = &o->ring[(o->first + i) % OUTPUT_LINES];
        if (l->generation != gen || l->stream != 2)
            continue;
        size_t used = strlen(buf);
        snprintf(buf + used, len - used, "%s%s", used ? " | " : "", l->text);
    }
}

void output_close(struct output *o)
{
    if (o->closed)
        return;
    o->closed = 1;
    while (o->pipes) {
        struct output_pipe *p = o->pipes;
        o->pipes = p->next;
        uv_read_stop((uv_stream_t *)&p->pipe);
        uv_close((uv_handle_t *)&p->pipe, on_closed);
    }
    while (o->ring && o->count > 0)
        drop_oldest(o);
    free(o->ring);
    o->ring = NULL;
}

json_t *output_pipes_json(const struct output *o)
{
    json_t *out = json_array();
    for (struct output_pipe *p = o->pipes; out && p; p = p->next) {
        uv_os_fd_t fd;
        if (uv_fileno((const uv_handle_t *)&p->pipe, &fd) == 0)
            json_array_append_new(out,
                                  json_pack("{s:i, s:i, s:i}", "generation", (int)p->generation,
                                            "stream", p->stream, "fd", fd));
    }
    return out;
}

void output_restore(struct output *o, const json_t *lines)
{
    size_t i;
    json_t *l;
    json_array_foreach(lines, i, l) {
        const char *text = json_string_value(json_object_get(l, "line"));
        const char *stream = json_string_value(json_object_get(l, "stream"));
        json_int_t seq = json_integer_value(json_object_get(l, "seq"));
        char *copy = text ? strdup(text) : NULL;
        if (!copy || seq < (json_int_t)o->next_seq || !o->ring) {
            free(copy);
            continue;
        }
        o->next_seq = (uint64_t)seq + 1;
        ring_push(o, (uint64_t)seq, json_number_value(json_object_get(l, "time")),
                  (unsigned)json_integer_value(json_object_get(l, "generation")),
                  stream && strcmp(stream, "stdout") == 0 ? 1 : 2, copy);
    }
}
