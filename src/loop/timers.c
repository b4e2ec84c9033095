/* timers.c: one-shot timers by id (see timers.h). */
#include "loop/timers.h"

#include "base/clock.h"

#include <errno.h>
#include <stdlib.h>

struct timer {
    uv_timer_t handle;
    uint64_t id;
    struct timers *set;
    struct timer *next;
};

void timers_init(struct timers *t, uv_loop_t *loop, const struct event_sink *sink)
{
    t->loop = loop;
    t->sink = sink;
    t->list = NULL;
    t->next_id = 0;
    t->closed = 0;
}

static void on_closed(uv_handle_t *h)
{
    free(h->data);
}

static void unlink_timer(struct timers *set, struct timer *t)
{
    for (struct timer **p = &set->list; *p; p = &(*p)->next)
        if (*p == t) {
            *p = t->next;
            break;
        }
    uv_close((uv_handle_t *)&t->handle, on_closed);
}

static void on_fire(uv_timer_t *h)
{
    struct timer *t = h->data;
    struct timers *set = t->set;
    struct event ev = { .kind = EV_TIMER, .id = t->id, .now = clock_mono() };
    unlink_timer(set, t);
    if (set->sink->event)
        set->sink->event(set->sink->ctx, &ev);
}

int timers_start(struct timers *set, double seconds, uint64_t *id)
{
    if (set->closed)
        return -ECANCELED;
    struct timer *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->set = set;
    t->id = ++set->next_id;
    uv_timer_init(set->loop, &t->handle);
    t->handle.data = t;
    uint64_t ms = seconds <= 0 ? 0 : (uint64_t)(seconds * 1000.0 + 0.5);
    uv_timer_start(&t->handle, on_fire, ms, 0);
    t->next = set->list;
    set->list = t;
    *id = t->id;
    return 0;
}

void timers_cancel(struct timers *set, uint64_t id)
{
    for (struct timer *t = set->list; t; t = t->next)
        if (t->id == id) {
            uv_timer_stop(&t->handle);
            unlink_timer(set, t);
            return;
        }
}

void timers_close(struct timers *set)
{
    set->closed = 1;
    while (set->list) {
        uv_timer_stop(&set->list->handle);
        unlink_timer(set, set->list);
    }
}
