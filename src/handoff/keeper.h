#ifndef BATON_KEEPER_H
#define BATON_KEEPER_H

/* The keeper: a small process that outlives the supervisor, so that a new
 * `baton run` can take the service back after the supervisor died (an OOM
 * kill, a bug, a mistaken SIGKILL) without systemd, as root or as an
 * ordinary user (pidfd_getfd from a generation would need ptrace rights,
 * which Yama's default ptrace_scope denies an ordinary user).
 *
 * `baton run` starts it (`baton keeper PATH`, the supervisor's own binary)
 * with one end of a SOCK_SEQPACKET socketpair, and sends it a duplicate of
 * each thing a successor needs and could not make anew:
 *   "L INDEX"        + fd   a listener (config order)
 *   "S"              + fd   the stats region (counters keep counting)
 *   "P GEN STREAM"   + fd   a generation's stdout (1) or stderr (2) pipe
 *                           read end: kept open, an app never gets EPIPE
 *   "B"                     goodbye: the supervisor ends normally
 * It holds them and does nothing else while the supervisor lives; a pipe
 * whose writers are all gone is let go. When the channel closes without
 * "B", the supervisor died: the keeper reads the pipes (so no app blocks
 * on a full one; their lines go to the keeper's stderr, tagged) and
 * answers at PATH (carry_paths; a unix SOCK_SEQPACKET socket, mode 0600, in the
 * supervisor's 0700 runtime folder; a peer of another uid is refused):
 * to a taker it sends each fd as above, then "E", and exits. It also exits
 * once no generation's pipe is left (nothing to take back: the port is
 * free again), on SIGTERM, and on "B".
 *
 * The supervisor carries its end across `baton upgrade`. */

#include <stddef.h>
#include <sys/types.h>

#define KEEPER_MAX_FDS 512

/* Supervisor: starts the keeper (BINARY, answering at PATH later). Returns
 * the channel's fd (close-on-exec) with *PID, or a negative errno. */
int keeper_spawn(const char *binary, const char *path, pid_t *pid);
/* Supervisor: sends HEAD (e.g. "L 0") with FD (-1: none) on CHANNEL.
 * Returns 0 or a negative errno. */
int keeper_send(int channel, const char *head, int fd);

/* A new supervisor: connects to PATH, checks the keeper is of our uid and
 * is pid PID, and receives what it holds: for each, HEADS[i] (a copy of
 * the head, at most 32 bytes) and FDS[i]. Returns how many, or a negative
 * errno with the reason in ERR. */
int keeper_take(const char *path, pid_t pid, char heads[][32], int *fds, size_t max, char *err,
                size_t errlen);

/* `baton keeper PATH`: the keeper's life, the channel at fd 3. */
int keeper_main(const char *path);

#endif
