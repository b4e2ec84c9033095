#ifndef BATON_PORTHOLDER_H
#define BATON_PORTHOLDER_H

/* Who holds a TCP port: when a listener cannot bind because its address
 * is in use, the error names the process, so an operator knows what to
 * stop (say, the generation a killed supervisor left serving). Linux
 * (os/linux_portholder.c) reads sock_diag (the listening socket's inode,
 * through conns.h; /proc/net/tcp{,6} where a sandbox refuses netlink) and
 * /proc/PID/fd (the process holding it); FreeBSD
 * (os/freebsd_portholder.c) the pcblist and kern.file sysctls. Slow, and
 * only on that error path. */

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

/* The first process holding a listening TCP socket on ADDR's port (any
 * local address that overlaps ADDR's). Returns 0 with *PID and COMM (its
 * name), -ENOENT when none is found (another user's process we may not
 * read, say), or another negative errno. */
int port_holder(const struct sockaddr *addr, pid_t *pid, char *comm, size_t commlen);

#endif
