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
 * handlers, and fills S->api. After a takeover, CARRIED is the carried
 * state (carry.h), whose listeners and stats region are in place already
 * (supervisor_take_sockets) and whose sockets are used instead of new
 * ones; NULL otherwise. Returns 0, or -1 (logged). */
int supervisor_setup(struct supervisor *s, const json_t *carried);
/* Adds PART (copied) to what the loop tells (supervisor_state.h).
 * Returns 0, or -ENOSPC past SUPERVISOR_MAX_PARTS. */
int supervisor_add_part(struct supervisor *s, const struct supervisor_part *part);
/* Where events go from now on; then EV_START, with the runtime's CARRIED
 * part and HOW the supervisor before ended after a takeover (NULL: a
 * fresh start). */
void supervisor_start(struct supervisor *s, const struct event_sink *sink, const json_t *carried,
                      const char *how);
/* Reaps every child that exited (what SIGCHLD does): generations'
 * exits go to the sink, the parts' children to their part. */
void supervisor_reap(struct supervisor *s);
/* Runs the loop until shutdown, closes everything; returns the exit code. */
int supervisor_finish(struct supervisor *s);

/* The carried state (carry.h), the loop's part of it: what it holds, fds
 * included, with the output ring when OUTPUT (carried.c). NULL when out
 * of memory. */
json_t *supervisor_carry(struct supervisor *s, int output);
/* Before supervisor_setup, after a takeover: the listeners and the stats
 * region from DOC's fds. Returns 0, or -1 (logged). */
int supervisor_take_sockets(struct supervisor *s, const json_t *doc);
/* After supervisor_setup: the fd store, the process table (each process
 * checked against the kernel; ADOPTING: none is our child, each is
 * watched through a pidfd), the output pipes and ring, the image's facts
 * (HOW the one before ended). Generations found gone go to GONE (at most
 * MAXGONE; *NGONE of them), to be reported once the runtime runs. Returns
 * the control client the `baton upgrade` waits on (0: none). */
uint64_t supervisor_take_state(struct supervisor *s, const json_t *doc, int adopting,
                               const char *how, unsigned *gone, size_t maxgone, size_t *ngone);

#endif
