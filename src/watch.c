#include "watch.h"

#include "clock.h"

#include <errno.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>

static void on_settled(uv_timer_t *t)
{
    struct file_watch *w = t->data;
    w->cb(w);
}

static void on_event(uv_fs_event_t *e, const char *filename, int events, int status)
{
    struct file_watch *w = e->data;
    (void)events;
    if (status < 0 || !filename || strcmp(filename, w->name) != 0)
        return;
    uv_timer_start(&w->settle, on_settled, WATCH_SETTLE_MS, 0);
}

static void on_closed(uv_handle_t *h);

int file_watch_start(struct file_watch *w, uv_loop_t *loop, const char *path, file_watch_cb cb)
{
    char *a = strdup(path), *b = strdup(path);
    int r = -ENOMEM;
    if (!a || !b)
        goto fail;
    w->dir = strdup(dirname(a));
    w->name = strdup(basename(b));
    if (!w->dir || !w->name)
        goto fail;
    w->cb = cb;
    if ((r = uv_fs_event_init(loop, &w->event)) < 0)
        goto fail;
    uv_timer_init(loop, &w->settle);
    w->event.data = w->settle.data = w;
    if ((r = uv_fs_event_start(&w->event, on_event, w->dir, 0)) < 0) {
        /* The handles close through the loop: W stays in use until then
         * (on_stopped says when, as after file_watch_stop). */
        w->closing = 2;
        uv_close((uv_handle_t *)&w->event, on_closed);
        uv_close((uv_handle_t *)&w->settle, on_closed);
        goto fail;
    }
    w->open = 1;
    free(a);
    free(b);
    return 0;
fail:
    free(a);
    free(b);
    free(w->dir);
    free(w->name);
    w->dir = w->name = NULL;
    return r;
}

static void on_closed(uv_handle_t *h)
{
    struct file_watch *w = h->data;
    if (--w->closing == 0 && w->on_stopped)
        w->on_stopped(w);
}

void file_watch_stop(struct file_watch *w)
{
    if (!w->open)
        return;
    w->open = 0;
    w->closing = 2;
    uv_close((uv_handle_t *)&w->event, on_closed);
    uv_close((uv_handle_t *)&w->settle, on_closed);
    free(w->dir);
    free(w->name);
    w->dir = w->name = NULL;
}

/* --- watches by id ------------------------------------------------------ */

struct watch_entry {
    struct file_watch w; /* first: a file_watch callback finds its entry */
    uint64_t id;
    struct watches *set;
    struct watch_entry *next;
};

void watches_init(struct watches *ws, uv_loop_t *loop, const struct event_sink *sink)
{
    ws->loop = loop;
    ws->sink = sink;
    ws->list = NULL;
    ws->next_id = 0;
}

static void on_changed(struct file_watch *w)
{
    struct watch_entry *e = (struct watch_entry *)w;
    struct event ev = { .kind = EV_WATCH, .id = e->id, .now = clock_mono() };
    if (e->set->sink->event)
        e->set->sink->event(e->set->sink->ctx, &ev);
}

static void free_entry(struct file_watch *w)
{
    free(w); /* first member of struct watch_entry */
}

int watches_add(struct watches *ws, const char *path, uint64_t *id)
{
    struct watch_entry *e = calloc(1, sizeof *e);
    if (!e)
        return UV_ENOMEM;
    e->set = ws;
    e->w.on_stopped = free_entry;
    int r = file_watch_start(&e->w, ws->loop, path, on_changed);
    if (r < 0) {
        if (!e->w.closing) /* else free_entry runs once its handles closed */
            free(e);
        return r;
    }
    e->id = ++ws->next_id;
    e->next = ws->list;
    ws->list = e;
    *id = e->id;
    return 0;
}

void watches_remove(struct watches *ws, uint64_t id)
{
    for (struct watch_entry **p = &ws->list; *p; p = &(*p)->next)
        if ((*p)->id == id) {
            struct watch_entry *e = *p;
            *p = e->next;
            file_watch_stop(&e->w);
            return;
        }
}

void watches_close(struct watches *ws)
{
    while (ws->list)
        watches_remove(ws, ws->list->id);
}
