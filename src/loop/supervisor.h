#ifndef BATON_SUPERVISOR_H
#define BATON_SUPERVISOR_H

/* The supervisor's loop: one libuv loop that owns the listeners, the
 * process table, the notify and control sockets, the stats region, the fd
 * store, timers and watches.
 *
 * What it does itself is mechanism: bind, fork/exec (through the launcher),
 * reap (every child, orphans included: it is a child subreaper, and PID 1
 * in a container), answer `baton status` and `baton stats` from what it
 * holds and what the runtime's view says. Everything else it reports
 * through one event sink (events.h) and carries out through the mechanisms
 * of core_api.h. It does not know who decides: run.c wires it to the Lua
 * runtime. */

#include "loop/supervisor_state.h"

/* Reports EV to the sink (stamped with the loop's clock). */
void supervisor_emit(struct supervisor *s, struct event ev);
/* EV_EXIT of generation ID, its process entry gone. */
void supervisor_emit_exit(struct supervisor *s, unsigned id, int code, int sig);
/* Watches P, an adopted process (not our child), for its exit through a
 * pidfd. */
void supervisor_watch_adopted(struct supervisor *s, struct proc *p);

/* Zeroes S, makes the runtime folder ($XDG_RUNTIME_DIR or /tmp/baton-UID,
 * mode 0700, ours). Returns 0 or a negative errno, logged. */
int supervisor_init(struct supervisor *s, uv_loop_t *loop);
/* With S->cfg loaded: binds the listeners, creates the stats region, opens
 * the metrics endpoint, the notify and control sockets, installs signal
 * handlers, and fills S->api. Returns 0, or -1 (logged). */
int supervisor_setup(struct supervisor *s);
/* The keeper: a new one, or (after an upgrade) the one carried; it gets
 * the listeners, the stats region and every output pipe from now on. */
void supervisor_keep(struct supervisor *s);
/* Where events go from now on; then EV_START. */
void supervisor_start(struct supervisor *s, const struct event_sink *sink);
/* Runs the loop until shutdown, closes everything; returns the exit code. */
int supervisor_finish(struct supervisor *s);

#endif
