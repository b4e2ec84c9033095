#ifndef BATON_NOTIFY_H
#define BATON_NOTIFY_H

/* The NOTIFY_SOCKET every generation gets: systemd's sd_notify(3) protocol.
 *
 * An AF_UNIX datagram socket at a path in the supervisor's private runtime
 * directory (mode 0700; the socket itself 0600). Each datagram is
 * newline-separated KEY=VALUE. The sender is identified by the kernel
 * (SO_PASSCRED / SCM_CREDENTIALS), never by the text: a datagram from
 * another uid (other than root) is dropped. Datagrams over NOTIFY_MAX bytes,
 * with a NUL byte, or truncated control data are dropped with a warning.
 * File descriptors that arrive with a message are handed to the callback,
 * which owns them (closes them when it does not keep them). */

#include "base/fdpass.h"

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <uv.h>

#define NOTIFY_MAX 4096
#define NOTIFY_MAX_FDS FDPASS_MAX /* what one datagram can carry */

struct notify_msg {
    bool ready, stopping, reloading, fdstore, fdstoreremove;
    const char *status; /* points into the datagram; NULL when absent */
    const char *fdname;
    pid_t mainpid; /* 0 when absent */
    int err;       /* ERRNO=, 0 when absent */
    int fdpoll;    /* FDPOLL=: 1 (the default) or 0 */
};

/* Parses a NUL-terminated datagram in place (turns newlines into NULs).
 * Unknown keys are ignored, as systemd does. Returns 0 or -EINVAL. */
int notify_parse(char *text, struct notify_msg *m);

struct notify;
typedef void (*notify_cb)(struct notify *n, pid_t pid, const struct notify_msg *m, int *fds,
                          size_t nfds);

struct notify {
    uv_poll_t poll;
    int fd; /* owned */
    char path[108];
    notify_cb cb;
    void *data;
    unsigned long rejected; /* datagrams dropped as malformed or foreign */
    /* The generations' user when the service names one (notify_allow):
     * its datagrams are accepted too. */
    int app_uid_set;
    uid_t app_uid;
    char dir[PATH_MAX]; /* a folder made for the socket, removed with it; "" if none */
};

/* A folder beside PARENT (the runtime folder, 0700 and the supervisor's)
 * made for the notify socket of generations that run as UID:GID: mode 0700,
 * owned by them, so they and no other user reach what is inside. Its path
 * goes in OUT. Returns 0 or a negative errno. */
int notify_private_dir(char *out, size_t len, const char *parent, uid_t uid, gid_t gid);
/* Removes the socket at PATH and its folder, made by notify_private_dir
 * for a supervisor before this one (taken back after a SIGKILL), without
 * following a link another user may have put there: the folder is theirs.
 * What cannot be removed is left. */
void notify_forget_private(const char *path);
/* After notify_open*: the socket file becomes UID:GID's (mode 0600), their
 * datagrams are accepted, and DIR (from notify_private_dir; NULL: none) is
 * removed when the socket is closed. Returns 0 or a negative errno. */
int notify_allow(struct notify *n, uid_t uid, gid_t gid, const char *dir);

int notify_open(struct notify *n, uv_loop_t *loop, const char *path, notify_cb cb);
/* The same on FD, the socket a supervisor before this one bound at PATH
 * (carry.h); FD -1: bind PATH. */
int notify_open_fd(struct notify *n, uv_loop_t *loop, const char *path, int fd, notify_cb cb);
/* Handles every datagram already queued (at most NOTIFY_DRAIN_MAX) now:
 * the supervisor calls it before it reaps, so that what a process sent
 * before it died (its last FDSTORE=1) is taken while the sender is still
 * known as a generation. */
#define NOTIFY_DRAIN_MAX 1024
void notify_drain(struct notify *n);

/* Stops polling and closes the socket, removing its file. */
void notify_close(struct notify *n);

#endif
