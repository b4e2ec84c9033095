#ifndef BATON_MANAGER_H
#define BATON_MANAGER_H

/* The service manager above the supervisor, when there is one (systemd,
 * or anything speaking its protocols): what it passed at start and where
 * to tell it how the service is.
 *
 * At start the supervisor reads, and removes from its environment,
 * NOTIFY_SOCKET (sd_notify(3): a Type=notify service says READY=1,
 * RELOADING=1, STOPPING=1, STATUS=) and LISTEN_FDS / LISTEN_PID /
 * LISTEN_FDNAMES (sd_listen_fds(3): socket activation). A passed socket
 * whose name is a listener's is used in place of binding one, so a socket
 * unit's privileged port or unix path works; one no listener takes is
 * closed, with a warning. Without a manager, nothing here does anything. */

#include <stddef.h>

#define MANAGER_MAX_FDS 256

struct manager {
    char notify[108];             /* NOTIFY_SOCKET; "" when none */
    int fds[MANAGER_MAX_FDS];     /* passed sockets; -1 once taken */
    char *names[MANAGER_MAX_FDS]; /* owned */
    size_t nfds;
};

/* Reads (and unsets) what the manager passed. Returns 0, or -EINVAL when
 * LISTEN_* is malformed (logged, and nothing passed is used). */
int manager_init(struct manager *m);
/* The passed socket named NAME (taken: it is the caller's now), or -1. */
int manager_take(struct manager *m, const char *name);
/* Closes the passed sockets nobody took, with a warning naming them. */
void manager_close_untaken(struct manager *m);
/* Sends TEXT (newline-separated KEY=VALUE) to NOTIFY_SOCKET. Returns 1
 * when sent, 0 when there is no manager, or a negative errno. */
int manager_notify(const struct manager *m, const char *text);
/* Keeps a duplicate of FD in the manager's fd store under NAME
 * (FDSTORE=1, FDNAME=NAME, the fd attached): a supervisor the manager
 * restarts gets it back, passed as LISTEN_FDS under that name, so its
 * listeners never close (systemd needs FileDescriptorStoreMax= in the
 * unit). Returns 1 when sent, 0 when there is no manager, or -errno. */
int manager_store_fd(const struct manager *m, const char *name, int fd);
void manager_free(struct manager *m);

#endif
