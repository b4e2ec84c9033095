#ifndef BATON_FDPASS_H
#define BATON_FDPASS_H

/* File descriptors from one process to another over a unix socket
 * (SCM_RIGHTS): the keeper's channel, the service manager's notify socket,
 * the apps' notify datagrams. What the kernel does, once:
 *   - a message carries at most FDPASS_MAX fds (SCM_MAX_FD); one more and
 *     the kernel refuses the whole message (EINVAL);
 *   - a message's fds ride on its data: a stream socket needs one byte of
 *     it at least;
 *   - fds received here are close-on-exec (MSG_CMSG_CLOEXEC), so no exec
 *     in between leaks them;
 *   - a receiver that may not open them all (its open-file limit) loses
 *     the rest silently but for MSG_CTRUNC: checked, never ignored.
 * Errors are negative errno values. libbaton (what apps link) keeps its
 * own copy: it depends on nothing of the supervisor's. */

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#define FDPASS_MAX 253 /* SCM_MAX_FD */

/* Sends one message on SOCK: LEN bytes of DATA and NFDS fds (0 to
 * FDPASS_MAX), to TO (TOLEN bytes; NULL: the connected peer). EINTR is
 * retried, SIGPIPE never raised. Returns the bytes sent, or a negative
 * errno: -EINVAL for more than FDPASS_MAX fds, -EAGAIN when a non-blocking
 * socket is full, -EPIPE when the peer is gone. */
ssize_t fdpass_send(int sock, const struct sockaddr *to, socklen_t tolen, const void *data,
                    size_t len, const int *fds, size_t nfds);

/* Receives one message from SOCK: up to LEN bytes into DATA, its fds into
 * FDS (up to MAX; any more are closed) and their count into *NFDS. FLAGS
 * are recvmsg's (MSG_DONTWAIT). EINTR is retried. Returns the bytes
 * received, 0 at the end of a stream, or a negative errno: -EAGAIN, or
 * -EMSGSIZE when the kernel cut the message (data longer than LEN, or fds
 * the receiver could not take: MSG_TRUNC, MSG_CTRUNC), with the fds that
 * came closed and *NFDS 0. */
ssize_t fdpass_recv(int sock, void *data, size_t len, int *fds, size_t max, size_t *nfds,
                    int flags);

/* The fds of every SCM_RIGHTS message of MSG, as recvmsg filled it, into
 * FDS (up to MAX; any more are closed). For a receiver that reads other
 * control messages too (credentials) and so builds its own recvmsg.
 * Returns their count. */
size_t fdpass_take(struct msghdr *msg, int *fds, size_t max);

/* Sends NFDS fds, any number, as messages of up to FDPASS_MAX fds and one
 * byte each; waits while a non-blocking SOCK is full. The receiver must
 * know NFDS (fdpass_recv_all). Returns 0 or a negative errno. */
int fdpass_send_all(int sock, const int *fds, size_t nfds);

/* Receives the NFDS fds fdpass_send_all sent, in order, into FDS. Returns
 * 0, or a negative errno with none of them kept open: -EPIPE when the
 * sender stopped before the last, -EPROTO for a message without fds. */
int fdpass_recv_all(int sock, int *fds, size_t nfds);

#endif
