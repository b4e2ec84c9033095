#ifndef BATON_EVENTS_H
#define BATON_EVENTS_H

/* The one way the loop reports what happened to whoever decides.
 *
 * The supervisor's loop (supervisor.c) turns kernel events into these and
 * hands each to a sink; it never knows who listens. run.c points the sink
 * at the Lua runtime (lua_bridge.c), which answers through the mechanisms
 * of core_api.h. A test can point it anywhere.
 *
 * Strings in an event are borrowed for the call: a sink copies what it
 * keeps. */

#include <jansson.h>
#include <stdint.h>

enum event_kind {
    EV_START,    /* the loop is up: start the service, or take it over (DATA) */
    EV_EXIT,     /* generation ID's main process exited: CODE, SIGNAL */
    EV_READY,    /* generation ID said READY=1 */
    EV_STOPPING, /* generation ID said STOPPING=1 */
    EV_STORED,   /* generation ID stored fds under NAME (FDSTORE=1) */
    EV_TIMER,    /* timer ID fired */
    EV_WATCH,    /* the file of watch ID changed */
    EV_PROBE,    /* probe ID answered: CODE 1 ok / 0 not, NAME the detail */
    EV_REQUEST,  /* control request REQ (0: nobody waits) named NAME; WHY says who asked */
    EV_UPGRADE,  /* `baton upgrade` REQ: the new image passed its check (CODE 1), or
                    not (CODE 0, NAME why) */
};

struct event {
    enum event_kind kind;
    uint64_t id;      /* generation, timer, watch or probe id; REQ for EV_REQUEST */
    int code, signal; /* EV_EXIT, EV_PROBE */
    const char *name; /* EV_STORED, EV_PROBE, EV_REQUEST */
    const char *why;  /* EV_REQUEST: "baton restart", "SIGHUP", ... */
    /* EV_START after a takeover: the runtime's carried state (the "runtime"
     * member of carry.h's document), NAME how the last supervisor ended
     * ("upgrade", "adoption", "upgrade failed: ..."), ID the request to
     * answer (0: none). NULL for a fresh start. */
    const json_t *data;
    double now; /* the loop's monotonic clock, seconds */
};

/* What the deciding side knows and the loop shows, as JSON (a new
 * reference, or NULL). WHAT "view": { "serving": bool, "active": id, "generations": [
 * { "id", "pid", "state", "started", "ready_at", "exited_at", "exit_code",
 * "exit_signal", "ended" }, ... ], "exited_not_shown", "last_restart" };
 * WHAT "events": { "events": [ { "time", "kind", "generation", "ok",
 * "reason", "duration" }, ... ] (the newest N, oldest first), "not_kept" }.
 * Times are the loop's monotonic seconds. */
struct event_sink {
    /* Returns 1 when what the deciding side carries for a successor (its
     * part of the carried state: handoff/carry.h) changed, else 0. */
    int (*event)(void *ctx, const struct event *ev);
    json_t *(*query)(void *ctx, const char *what, double now, int n);
    void *ctx;
};

#endif
