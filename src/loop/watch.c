#include "loop/watch.h"

#include "base/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* FNV-1a of the file's content, read in bounded chunks; 0 when unreadable. */
static uint64_t content_hash(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return 0;
    uint64_t h = 1469598103934665603ULL;
    char buf[65536];
    ssize_t n;
    size_t total = 0;
    while (total <= WATCH_HASH_MAX && (n = read(fd, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; i++)
            h = (h ^ (unsigned char)buf[i]) * 1099511628211ULL;
        total += (size_t)n;
    }
    close(fd);
    return h;
}

/* What the path leads to now, symlinks followed. A small regular file is
 * known by its content: one the kubelet rewrote unchanged beside a key
 * that did change is not a change. Others by inode, size and mtime. */
static void identify(const struct file_watch *w, struct file_id *id)
{
    struct stat st;
    memset(id, 0, sizeof *id);
    if (stat(w->path, &st) < 0)
        return; /* gone: all zero */
    id->dev = st.st_dev;
    id->ino = st.st_ino;
    id->size = st.st_size;
    id->mtime = st.st_mtim;
    if (S_ISREG(st.st_mode) && st.st_size <= WATCH_HASH_MAX) {
        id->hash = content_hash(w->path);
        id->hashed = 1;
    }
}

static int same_id(const struct file_id *a, const struct file_id *b)
{
    if (a->hashed && b->hashed)
        return a->size == b->size && a->hash == b->hash;
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

static void on_settled(uv_timer_t *t)
{
    struct file_watch *w = t->data;
    struct file_id now;
    identify(w, &now);
    int changed = w->named || !same_id(&now, &w->last);
    w->named = 0;
    w->last = now;
    if (changed)
        w->cb(w);
}

/* An event on the file's own name is a change. An event on another name
 * in the folder may be one too: Kubernetes updates a ConfigMap volume by
 * renaming a symlink ("..data") that the file's own symlink goes through,
 * so the file's identity is compared once things settle. Events on its own
 * name restart the settling; others do not, so a busy folder cannot
 * postpone a change forever. */
static void on_event(uv_fs_event_t *e, const char *filename, int events, int status)
{
    struct file_watch *w = e->data;
    (void)events;
    if (status < 0 || !filename)
        return;
    if (strcmp(filename, w->name) == 0) {
        w->named = 1;
        uv_timer_start(&w->settle, on_settled, WATCH_SETTLE_MS, 0);
    } else if (!uv_is_active((uv_handle_t *)&w->settle)) {
        uv_timer_start(&w->settle, on_settled, WATCH_SETTLE_MS, 0);
    }
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
    w->path = strdup(path);
    if (!w->dir || !w->name || !w->path)
        goto fail;
    w->cb = cb;
    w->named = 0;
    identify(w, &w->last);
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
    free(w->path);
    w->dir = w->name = w->path = NULL;
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
    free(w->path);
    w->dir = w->name = w->path = NULL;
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
