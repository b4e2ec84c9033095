#ifndef BATON_RUNDIR_H
#define BATON_RUNDIR_H

/* The runtime folder: where the supervisor's sockets and the state it
 * leaves a successor live ($XDG_RUNTIME_DIR, or /tmp/baton-UID), and where
 * a client looks for the one supervisor's control socket. */

#include <stddef.h>

/* Puts the folder's path in OUT, making it mode 0700 if missing, and
 * checks that it is a folder of ours that nobody else can reach (not a
 * symlink). Returns 0, or a negative errno (-EPERM: not ours, not 0700). */
int runtime_dir(char *out, size_t len);

#endif
