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
 *   "R LI GEN"       + fd   generation GEN's member of steered listener LI
 *   "X HEAD"                let go of what HEAD names (a member that left
 *                           its group: its copy listens no more)
 *   "G GEN PID TICKS"       a generation's main process (no fd; TICKS its
 *                           start time, so a pid reused names no other)
 *   "B"                     goodbye: the supervisor ends normally
 * It holds them and does nothing else while the supervisor lives; a pipe
 * whose writers are all gone is let go. When the channel closes without
 * "B", the supervisor died: the keeper reads the pipes (so no app blocks
 * on a full one; their lines go to the keeper's stderr, tagged) and
 * answers at PATH (carry_paths; a unix SOCK_SEQPACKET socket, mode 0600, in the
 * supervisor's 0700 runtime folder; a peer of another uid is refused).
 * A hand-over has two phases, so that a `baton run` that fails half-way
 * never loses the service: the keeper sends a taker a copy of each fd as
 * above, then "E", and keeps its own; the taker answers "K" once a keeper
 * of its own holds them (keeper_confirm), and only then does this one
 * exit. A taker that hangs up first (it failed, or was killed) or says
 * nothing for KEEPER_CONFIRM_S leaves the keeper holding everything for
 * the next one; meanwhile it serves no other taker and leaves the pipes
 * to the taker. Orphaned, it also exits once nothing it holds still
 * serves: the last generation it was told of is gone (whoever still holds
 * a pipe, a detached helper of the app's say), or no generation's pipe is
 * left; the listeners close with it, so clients are refused rather than
 * left waiting in a queue. And on SIGTERM, and on "B".
 * It holds any number of fds, one a message.
 *
 * The supervisor carries its end across `baton upgrade`. */

#include <stddef.h>
#include <sys/types.h>

/* The longest head a keeper reads. */
#define KEEPER_HEAD_MAX 64

/* Seconds a taker has, from "E", to confirm with "K". */
#define KEEPER_CONFIRM_S 30

/* One thing a keeper holds: its head ("L 0", "S", "P 3 1") and its fd. */
struct keeper_piece {
    char head[32];
    int fd;
};

/* Supervisor: starts the keeper (BINARY, answering at PATH later). Returns
 * the channel's fd (close-on-exec) with *PID, or a negative errno. */
int keeper_spawn(const char *binary, const char *path, pid_t *pid);
/* Supervisor: sends HEAD (e.g. "L 0") with FD (-1: none) on CHANNEL.
 * Returns 0 or a negative errno. */
int keeper_send(int channel, const char *head, int fd);

/* A new supervisor, the first phase: connects to PATH, checks the keeper
 * is of our uid and is pid PID, and receives a copy of what it holds into
 * *PIECES (malloc'd; keeper_pieces_free). Returns how many, with *CONN the
 * connection to confirm on (keeper_confirm) or to close to give up; or a
 * negative errno with the reason in ERR (nothing kept open). */
int keeper_take(const char *path, pid_t pid, struct keeper_piece **pieces, int *conn, char *err,
                size_t errlen);
/* Closes the fds of N PIECES still >= 0, and frees them. */
void keeper_pieces_free(struct keeper_piece *pieces, size_t n);
/* The second phase: a keeper of ours holds everything, the one at CONN
 * may go. Closes CONN. Returns 0 or a negative errno (that keeper gave up
 * on us first: it still holds its copies). */
int keeper_confirm(int conn);

/* `baton keeper PATH`: the keeper's life, the channel at fd 3. */
int keeper_main(const char *path);

#endif
