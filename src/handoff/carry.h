#ifndef BATON_CARRY_H
#define BATON_CARRY_H

/* What one supervisor leaves to the next: the carried state.
 *
 * One JSON document, in two situations:
 *   - `baton upgrade`: the supervisor execs a new image of itself (same
 *     pid) and passes the document in a memfd named by BATON_CARRY_FD; its
 *     "fds" members name descriptors the new image inherits.
 *   - adoption: the supervisor keeps the document in its runtime folder
 *     (NAME.HASH.carry, mode 0600: carry_paths) and updates it as generations come and go; a
 *     new `baton run` after its death reads it, checks every process in it
 *     against the kernel, and gets the descriptors from the keeper
 *     (keeper.h) instead.
 *
 * The document, format "baton-carry":
 *   { "format": "baton-carry", "version": CARRY_VERSION, "baton": VERSION,
 *     "service": name, "file": the service file as `baton run` was given it,
 *     "pid": the supervisor's, "started": its start (monotonic seconds),
 *     "image": { "binary", "version", "started_at" (unix), "upgrades" },
 *     "manager_notify": NOTIFY_SOCKET of a service manager above, or "",
 *     "listeners": [ { "name", "address", "fd", "passed" } ... ] (config order),
 *     "notify", "control", "stats", "metrics": fds (-1: none),
 *     "procs": [ { "id", "pid", "started", "start_ticks", "status",
 *                  "stdout", "stderr" (fds), "adopted" } ... ], "last_id",
 *     "fdstore": [ { "name", "fd", "generation", "stored_at", "poll" } ... ],
 *     "staged": fd, "output": [ lines of output.h ], "output_next",
 *     "upgrade": { "client": fd, "since": monotonic, "old_image": fd },
 *     "steer": { "members": [ { "listener", "generation", "slot" (its
 *                 place in the group's order), "fd", "leaving" } ... ],
 *                "weights": [ { "generation", "weight", "zero_since" (monotonic:
 *                since when it is 0) } ... ] } (version 2),
 *     "runtime": what the Lua runtime carries (Runtime:carry),
 *     "events_file": in the copy on disk, the file of events below }
 *
 * The copy on disk is rewritten when what it holds changes, which the
 * history does after every restart: so its runtime part leaves the events
 * out, and they go, one JSON object a line ({ "seq": N, ...the event }),
 * to their own file (NAME.HASH.events, mode 0600) as they happen: an event
 * costs its own line. That file is appended to, and rewritten with the
 * newest CARRY_EVENTS only when it grew past twice that. A reader folds it
 * back in (carry_read_file): "runtime"."events" (the newest CARRY_EVENTS,
 * oldest first; a line cut short by a death is skipped) and
 * "events_not_kept" (how many came before them). A reader that does not
 * know "events_file" takes the service over without its history.
 *
 * Versions: a reader takes any version from CARRY_OLDEST to its own
 * CARRY_VERSION (members it does not know are ignored, members it needs
 * and an older writer did not write get defaults); a newer one is refused
 * before anything is touched, so `baton upgrade` to an older binary that
 * cannot read ours is refused at its check, not after the exec. */

#include <jansson.h>
#include <stddef.h>

#define CARRY_FORMAT "baton-carry"
/* Version 2 adds "steer": a writer says 2 only when it names steered
 * members (a reader of version 1 would leave them out of their groups'
 * order, or leak them into generations), else 1, which any reader takes. */
#define CARRY_VERSION 2
#define CARRY_OLDEST 1
#define CARRY_MAX (16u << 20) /* bytes: the output ring is the bulk of it */
#define CARRY_ENV "BATON_CARRY_FD"
#define CARRY_EVENTS \
    256 /* the events a successor takes back: the runtime's history holds as many */

/* A sealed memfd holding DOC, not close-on-exec. Returns the fd or a
 * negative errno. */
int carry_to_memfd(const json_t *doc);
/* Reads and checks the document in FD (from its start; at most CARRY_MAX
 * bytes): format, version. Returns 0 with *DOC, or a negative errno with
 * the reason in ERR. */
int carry_read_fd(int fd, json_t **doc, char *err, size_t errlen);
/* Writes TEXT (a document, as JSON) to PATH atomically (a temporary file
 * renamed over it), mode 0600. Returns 0 or a negative errno. */
int carry_write_file(const char *path, const char *text);
/* Reads PATH: it must be a regular file of ours, mode 0600, no symlink;
 * so must the events file it names, whose events it folds into *DOC (an
 * events file that cannot be read is logged and leaves the history out).
 * Returns 0 with *DOC, -ENOENT when there is none, or another negative
 * errno with the reason in ERR. */
int carry_read_file(const char *path, json_t **doc, char *err, size_t errlen);

/* Opens PATH (an events file) to append to, or, with FRESH, empties it
 * first; mode 0600, close-on-exec, no symlink. Returns the fd or a
 * negative errno. */
int carry_events_open(const char *path, int fresh);
/* Appends EVENTS (a JSON array of events, oldest first, the first one
 * number FIRST) to the events file FD, one line each, in one write.
 * Returns 0 or a negative errno. */
int carry_events_append(int fd, const json_t *events, unsigned long long first);

/* Where a supervisor of service NAME with control socket CONTROL keeps
 * its carried state and its keeper answers, in RUNDIR: NAME.HASH.carry and
 * NAME.HASH.keeper, HASH of the control socket's path (two services may
 * share a name; a control socket has one supervisor). */
void carry_paths(const char *rundir, const char *name, const char *control, char *carry,
                 size_t carrylen, char *keeper, size_t keeperlen);
/* The events file beside CARRY (NAME.HASH.carry): NAME.HASH.events. */
void carry_events_path(const char *carry, char *events, size_t len);

/* Every fd DOC names (at most MAX into FDS); returns how many. */
size_t carry_fds(const json_t *doc, int *fds, size_t max);

/* Member KEY of OBJ as an int (DEF when absent or not a number). */
int carry_int(const json_t *obj, const char *key, int def);

#endif
