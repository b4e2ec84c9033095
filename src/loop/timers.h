#ifndef BATON_TIMERS_H
#define BATON_TIMERS_H

/* One-shot timers by id, for the runtime: each reports EV_TIMER with its id
 * to the sink when it fires, once, and is then forgotten. Ids are never
 * reused. */

#include "loop/events.h"

#include <stdint.h>
#include <uv.h>

struct timer;

struct timers {
    uv_loop_t *loop;
    const struct event_sink *sink;
    struct timer *list; /* owned; pending timers */
    uint64_t next_id;
    int closed;
};

void timers_init(struct timers *t, uv_loop_t *loop, const struct event_sink *sink);
/* Starts a timer of SECONDS (<= 0: the next turn of the loop). Returns 0
 * with *ID, -ECANCELED once closed, or -ENOMEM. */
int timers_start(struct timers *t, double seconds, uint64_t *id);
/* Cancels timer ID; nothing when it already fired or never was. */
void timers_cancel(struct timers *t, uint64_t id);
/* Cancels every timer; the handles close through the loop. */
void timers_close(struct timers *t);

#endif
