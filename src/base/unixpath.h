#ifndef BATON_UNIXPATH_H
#define BATON_UNIXPATH_H

/* Unix socket paths baton binds (listeners, the control socket, the notify
 * socket): the one rule for what may be removed before binding. Only a
 * stale socket of our own is: a socket file owned by our uid that nobody
 * accepts on (a supervisor that died left it). Anything else at the path
 * (a regular file, a folder, a symlink, someone else's socket, a live
 * socket) is left exactly as it is, and the bind is refused. */

/* Returns 0 when PATH is free to bind (nothing there, or a stale socket of
 * ours, now removed); -EADDRINUSE when a live socket answers there; -EEXIST
 * when something that is not a socket of ours is there; another negative
 * errno when PATH cannot be examined. */
int unixpath_claim(const char *path);

/* A sentence for unixpath_claim's error R, for messages. */
const char *unixpath_strerror(int r);

#endif
