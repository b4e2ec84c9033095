#ifndef BATON_H
#define BATON_H

/* libbaton: what an app needs to run under baton (or systemd), in plain C
 * with no dependency beyond libc.
 *
 * Sockets:   the supervisor passes its listeners as fds 3, 4, ... with
 *            LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES (sd_listen_fds(3)).
 * Readiness: send "READY=1" once you accept connections, "STOPPING=1" when
 *            you begin to drain, "STATUS=..." whenever you like
 *            (sd_notify(3), over $NOTIFY_SOCKET).
 *
 *     int fd = baton_listener("http");        // or baton_listen_fds() and fd 3
 *     ... listen/accept on fd ...
 *     baton_notify("READY=1");
 *
 * Errors are negative errno values. */

#ifdef __cplusplus
extern "C" {
#endif

#define BATON_LISTEN_FDS_START 3

/* Number of fds passed (0 when none, or when LISTEN_PID is not this
 * process). Each is marked close-on-exec. */
int baton_listen_fds(void);

/* The fd of the listener named NAME in LISTEN_FDNAMES, or -ENOENT. */
int baton_listener(const char *name);

/* Sends STATE (e.g. "READY=1\nSTATUS=serving") to $NOTIFY_SOCKET.
 * Returns 1 when sent, 0 when there is no NOTIFY_SOCKET. */
int baton_notify(const char *state);

/* The generation number this process belongs to (BATON_GENERATION), 0 if unset. */
unsigned baton_generation(void);

#ifdef __cplusplus
}
#endif

#endif
