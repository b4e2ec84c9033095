#ifndef BATON_TAKEOVER_H
#define BATON_TAKEOVER_H

/* The supervisor's side of the carried state (carry.h): what it writes of
 * itself, and how a supervisor takes it back, after `baton upgrade` (the
 * same pid, a new image: upgrade.h) or after its death (a new pid: adopt.h).
 *
 * A takeover is checked before anything is touched (takeover_check), so a
 * new image that refuses falls back to the old one with everything intact;
 * then each piece is taken back in place of being created: the listeners
 * in place of binding, the stats region in place of a new one (counters
 * keep counting), the notify and control sockets, the fd store, the
 * process table, the output pipes and ring. The runtime's part goes up
 * with EV_START (events.h). */

#include "loop/config.h"
#include "loop/control.h"

#include <jansson.h>
#include <limits.h>
#include <stdint.h>

/* A takeover under way: the carried document until the runtime has it,
 * how the supervisor before ended, the `baton upgrade` to answer, and the
 * generations found gone (reported as exits once the runtime runs).
 * run.c owns it; the loop's part of the document is the loop's to write
 * and take back (supervisor.h: supervisor_carry, supervisor_take_*). */
struct takeover {
    json_t *doc;       /* NULL: a fresh start */
    char how[512];     /* "upgrade", "adoption", "upgrade failed, ...: why" */
    int adopting;      /* after a death: a new pid, no process is our child */
    uint64_t client;   /* the `baton upgrade` that waits (0: none) */
    unsigned gone[64]; /* generations that ended while no supervisor watched */
    size_t ngone;
    /* After a death: the dead supervisor's keeper, waiting for us to say
     * that a keeper of ours holds everything (keeper_confirm); -1: none. */
    int keeper_conn;
};

/* Completes DOC (the loop's part, supervisor_carry) into the carried
 * state: the envelope (format, version), the runtime's part RUNTIME
 * (reference stolen; NULL: none) and the keeper's KEEPER (stolen; NULL:
 * none). Returns DOC. */
json_t *takeover_document(json_t *doc, json_t *runtime, json_t *keeper);

/* Whether DOC can be taken over under CFG (the service file read now):
 * the same service, the same listeners (names and addresses, in order).
 * Returns 0, or -EINVAL with the reason in ERR. */
int takeover_check(const json_t *doc, const struct service_config *cfg, char *err, size_t errlen);

/* After the service file (CFG) is read, when nothing was carried in: if a
 * supervisor of this service died (its state is in RUNDIR and its pid is
 * not that process any more), takes what its keeper holds into T (doc,
 * how, adopting, keeper_conn): that keeper keeps its copies until
 * told, so a run that fails after this loses nothing. The control
 * socket and the metrics endpoint are bound first (into DOC's "control"
 * and "metrics"): a run that cannot have them takes nothing. Returns 1 then, 0 when there is nothing to take over
 * (or it cannot be: logged), -1 when this run must not go on (ERR):
 * that supervisor still runs, or the control socket or the metrics
 * endpoint cannot be ours. */
int takeover_orphaned(struct takeover *t, const char *rundir, const struct service_config *cfg,
                      char *err, size_t errlen);

/* Answers the `baton upgrade` that waits on T (through C): upgraded, with
 * this image's BINARY and how long it took; or why not. */
void takeover_answer(const struct takeover *t, struct control *c, const char *binary);

#endif
