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

#include "loop/supervisor.h"

#include <jansson.h>

/* The document for a successor: the supervisor S's state, fds included,
 * RUNTIME (the runtime's carry; reference stolen; NULL: asked of the
 * runtime now), and the output ring when OUTPUT. NULL when out of memory.
 * (upgrade.h's collect.) */
json_t *takeover_collect(void *s, json_t *runtime, int output);

/* Whether DOC can be taken over under CFG (the service file read now):
 * the same service, the same listeners (names and addresses, in order).
 * Returns 0, or -EINVAL with the reason in ERR. */
int takeover_check(const json_t *doc, const struct service_config *cfg, char *err, size_t errlen);

/* Before supervisor_setup, with s->carried set: the listeners and the
 * stats region from the carried fds (setup opens the metrics, notify and
 * control sockets on theirs: carry_int(doc, NAME, -1)). Returns 0, or -1
 * (logged). */
int takeover_sockets(struct supervisor *s);
/* After setup: the fd store, the process table, the output pipes and
 * ring; and the upgrade's collector (upgrade.h). */
void takeover_state(struct supervisor *s);
/* After the service file is read, when nothing was carried in: if a
 * supervisor of this service died (its state is in the runtime folder and
 * its pid is not that process any more), takes what its keeper holds
 * and sets s->carried, s->adopting. Returns 1 then, 0 when there is
 * nothing to take over (or it cannot be: logged), -1 when that supervisor
 * still runs (ERR). */
int takeover_orphaned(struct supervisor *s, char *err, size_t errlen);
/* After supervisor_start: generations found gone are reported as exits,
 * now that the runtime has them; the document is let go. */
void takeover_finish(struct supervisor *s);

#endif
