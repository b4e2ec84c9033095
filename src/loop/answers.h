#ifndef BATON_ANSWERS_H
#define BATON_ANSWERS_H

/* What the supervisor answers of itself: `baton status`, `stats`,
 * `events` and `logs` on the control socket, and the pages of the metrics
 * endpoint (/metrics, /ready, /live).
 *
 * Each answer joins what the loop holds (process facts, listeners, the
 * output ring, the stats region), what the kernel says now (figures.h)
 * and the runtime's view (the sink's query, events.h); none of them
 * changes anything. Times go out as unix seconds. */

#include "loop/supervisor_state.h"

#include <jansson.h>

/* {"cmd":"status"}: the service, its listeners, generations, fd store,
 * the supervisor's image (DESIGN.md's contract for `status --json`). */
void answer_status(struct supervisor *s, uint64_t req, json_t *args);
/* {"cmd":"stats"}: the stats region and the kernel's figures. */
void answer_stats(struct supervisor *s, uint64_t req, json_t *args);
/* {"cmd":"events","n":N}: the newest N events (all kept when N is absent). */
void answer_events(struct supervisor *s, uint64_t req, json_t *args);
/* {"cmd":"logs","n":N,"gen":G,"after":SEQ}: what generations printed. */
void answer_logs(struct supervisor *s, uint64_t req, json_t *args);
/* Replies J (reference stolen) to REQ, or "out of memory" when J is NULL. */
void answer_json(struct control *c, uint64_t req, json_t *j);

/* The metrics endpoint's pages (metrics_http.h's callback; M->data is the
 * supervisor): the HTTP status, with a malloc'ed body. */
int answer_page(struct metrics_http *m, const char *path, char **body, size_t *len);

#endif
