#ifndef BATON_LISTENERS_H
#define BATON_LISTENERS_H

/* Listening sockets owned by the supervisor.
 *
 * Each listener is bound once, when the supervisor starts, and stays open
 * until it exits: every generation inherits the same socket, so the kernel
 * keeps one accept queue and a restart never resets a queued connection.
 * The supervisor never accepts on them, and leaves them in blocking mode, as
 * systemd does (O_NONBLOCK lives on the shared file description; each app
 * sets what it needs).
 *
 * Addresses: "tcp://127.0.0.1:8080", "tcp://[::1]:8080", "udp://HOST:PORT",
 * "unix:/path". Hosts are numeric; port 0 picks a free port (see
 * listener_local_address). */

#include <stddef.h>
#include <sys/socket.h>

enum listener_kind { LISTENER_TCP, LISTENER_UDP, LISTENER_UNIX };

struct listener {
    char *name;    /* owned; the LISTEN_FDNAMES entry */
    char *address; /* owned; as the service file wrote it */
    enum listener_kind kind;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    int backlog;
    int fd;     /* owned; -1 until bound */
    int passed; /* the service manager passed it (socket activation): not ours to unlink */
    /* Each generation gets a socket of its own, bound at its spawn on a
     * port the kernel picks (tcp://HOST:0), and closed in the supervisor
     * once passed: a probe of it reaches that generation and no other.
     * FD stays -1 here. */
    int per_generation;
    /* Steered (loop/steer.h): each generation gets a member of its own in
     * one SO_REUSEPORT group on ADDR, which the supervisor holds while the
     * generation lives; FD stays -1 here, STEER_FD borrows the newest
     * member (for the kernel's figures), -1 when none. */
    int steer;
    int steer_fd;
};

/* Parses ADDRESS into L (kind, addr). Returns 0, or -EINVAL with a reason in
 * ERR. Does not touch name/address/fd. */
int listener_parse(struct listener *l, const char *address, char *err, size_t errlen);

/* Binds (and listens, for stream kinds) L->addr. A stale unix socket file
 * (nobody accepting) is replaced; a live one is EADDRINUSE. Returns 0 or a
 * negative errno with a reason naming the address in ERR. */
int listener_bind(struct listener *l, char *err, size_t errlen);

/* Writes the address the socket is bound to (with the real port when the
 * service asked for port 0) into BUF, in the service file's notation. */
int listener_local_address(const struct listener *l, char *buf, size_t len);

/* The TCP listener among LS[0..N) that the supervisor holds and a
 * connection to SA would reach, or NULL. A probe of such a listener proves
 * nothing: the kernel completes the handshake into the supervisor's socket
 * whether or not any generation accepts. */
const struct listener *listeners_reaching(const struct listener *ls, size_t n,
                                          const struct sockaddr *sa);

/* Uses FD, a socket the service manager passed for L (socket activation),
 * in place of binding: it must be of L's kind (a listening stream socket
 * for tcp:// and unix:, a datagram socket for udp://). Returns 0, or
 * -EINVAL with the reason in ERR (FD stays the caller's). */
int listener_adopt(struct listener *l, int fd, char *err, size_t errlen);
/* Whether L's socket (one the service manager passed, say) is bound where
 * the service file's address says (a port 0 there matches any port), with
 * the address it is bound to in BOUND, in the service file's notation.
 * Returns 1, 0 when it differs, or a negative errno. */
int listener_bound_as_configured(const struct listener *l, char *bound, size_t len);
/* Closes the socket and removes a unix socket's file (not one the service
 * manager passed). Idempotent. */
void listener_close(struct listener *l);

#endif
