#ifndef BATON_NOFILE_H
#define BATON_NOFILE_H

/* The open-file limit (RLIMIT_NOFILE), the supervisor's and its apps'.
 *
 * The supervisor holds many fds (listeners, clients of the control and
 * metrics sockets, the fd store): at start it raises its own soft limit to
 * the hard one. Each generation gets the original soft limit back (set in
 * the child before exec): an app using select() breaks above 1024, and
 * systemd starts services at a soft 1024 for that reason. */

#include <stddef.h>
#include <sys/resource.h>

/* Raises the soft limit to the hard one and remembers the original for
 * children. Returns 0 or a negative errno. */
int nofile_raise(void);
/* The limit a generation gets (the original soft one). */
const struct rlimit *nofile_for_children(void);
/* Warns (logged) when the limit is below NEED, the fds the supervisor may
 * hold at once, with what it may hold them for. */
void nofile_check(unsigned long need, const char *what);
/* "61 of 1024 fds open": for a message about running short. */
void nofile_describe(char *buf, size_t len);

#endif
