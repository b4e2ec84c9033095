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
 *     "runtime": what the Lua runtime carries (Runtime:carry) }
 *
 * Versions: a reader takes any version from CARRY_OLDEST to its own
 * CARRY_VERSION (members it does not know are ignored, members it needs
 * and an older writer did not write get defaults); a newer one is refused
 * before anything is touched, so `baton upgrade` to an older binary that
 * cannot read ours is refused at its check, not after the exec. */

#include <jansson.h>
#include <stddef.h>

#define CARRY_FORMAT "baton-carry"
#define CARRY_VERSION 1
#define CARRY_OLDEST 1
#define CARRY_MAX (16u << 20) /* bytes: the output ring is the bulk of it */
#define CARRY_ENV "BATON_CARRY_FD"

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
/* Reads PATH: it must be a regular file of ours, mode 0600, no symlink.
 * Returns 0 with *DOC, -ENOENT when there is none, or another negative
 * errno with the reason in ERR. */
int carry_read_file(const char *path, json_t **doc, char *err, size_t errlen);

/* Where a supervisor of service NAME with control socket CONTROL keeps
 * its carried state and its keeper answers, in RUNDIR: NAME.HASH.carry and
 * NAME.HASH.keeper, HASH of the control socket's path (two services may
 * share a name; a control socket has one supervisor). */
void carry_paths(const char *rundir, const char *name, const char *control, char *carry,
                 size_t carrylen, char *keeper, size_t keeperlen);

/* Every fd DOC names (at most MAX into FDS); returns how many. */
size_t carry_fds(const json_t *doc, int *fds, size_t max);

/* Member KEY of OBJ as an int (DEF when absent or not a number). */
int carry_int(const json_t *obj, const char *key, int def);

#endif
