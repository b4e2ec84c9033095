#ifndef BATON_OS_REUSEPORT_H
#define BATON_OS_REUSEPORT_H

/* Steering a SO_REUSEPORT group with a classic BPF program: the platform
 * half of loop/steer.h. Linux only; elsewhere every call is -EOPNOTSUPP.
 *
 * A classic program (SO_ATTACH_REUSEPORT_CBPF) needs no privilege, works
 * in containers, and applies to the whole group whichever member it is
 * attached to; attaching again replaces it at once. Its return value is a
 * position in the group (members in the order they joined; when one
 * leaves, the last moves into its slot); a position past the group's size
 * makes the kernel fall back to its hash. */

#include <stddef.h>

/* The most members a program steers between (its size: 2 per member). */
#define OS_STEER_MAX 256

/* Attaches to FD's group a program that sends a new connection to
 * position i with probability WEIGHTS[i] / sum(WEIGHTS) (N positions).
 * All weights 0: an even split over the N. Returns 0 or a negative
 * errno (-EINVAL for N 0 or past OS_STEER_MAX). */
int os_steer_attach(int fd, const unsigned *weights, size_t n);

/* Creates a TCP listening socket in the SO_REUSEPORT group on ADDR (a
 * struct sockaddr of ADDRLEN bytes), close-on-exec, with BACKLOG. Returns
 * the fd or a negative errno. */
int os_steer_member(const void *addr, unsigned addrlen, int backlog);

/* Takes member FD out of its group now, though another process (the
 * keeper, a helper of the app's) holds it too (the last member moves into
 * its slot, its queue goes as at a close), and closes FD. */
void os_steer_leave(int fd);

/* The connections waiting in listening socket FD's accept queue: 0 with
 * *QUEUE, or a negative errno. */
int os_listen_queue(int fd, unsigned *queue);

/* Whether net.ipv4.tcp_migrate_req is on here (a closed member's queued
 * connections then move to another member instead of being reset): 1, 0,
 * or a negative errno (-ENOENT before Linux 5.14). */
int os_tcp_migrate_req(void);

#endif
