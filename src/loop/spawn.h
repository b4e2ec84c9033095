#ifndef BATON_SPAWN_H
#define BATON_SPAWN_H

/* Starting one process of a generation from its launch plan (launch.h),
 * the way systemd starts a socket-activated service:
 *
 *   fds[i] is placed at fd 3+i (listeners first, then stored fds), every
 *   other descriptor of the supervisor is closed at exec; LISTEN_PID is the
 *   child's own pid (written after fork, so it is right); stdin is
 *   /dev/null, stdout and stderr the plan's pipes (or the supervisor's); signal dispositions
 *   and mask are reset; the child leads a new session (and process group),
 *   so a terminal's Ctrl-C reaches the supervisor alone and the drain stays
 *   its decision, and no process outside the generation can join its group.
 *
 * argv[0] without a slash is looked up in PATH (of ENV if it sets one) before
 * fork, so "command not found" is an error here, not a silent exit 127. */

#include "loop/launch.h"

#include <sys/types.h>

/* execvp's PATH search (PATH of ENV if it sets one, else the supervisor's),
 * done in the parent so that a missing command is reported as such, and
 * by `baton check`. Returns a malloc'd path, or NULL with errno set. */
char *spawn_resolve(const char *cmd, char *const *env);

/* Returns 0 with *PID set, or a negative errno with a reason in ERR (exec
 * failures included: the child reports them over a close-on-exec pipe). */
int spawn_process(const struct launch_plan *o, pid_t *pid, char *err, size_t errlen);

#endif
