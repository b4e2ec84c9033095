#ifndef BATON_CONNS_H
#define BATON_CONNS_H

/* Live figures about each generation, read from the kernel without the
 * app's help: its open connections on the service's listeners, each
 * listener's accept queue, its processes' memory and CPU. Mechanism only:
 * what a policy makes of them (drain until nothing is open, hold a restart
 * while a queue grows) is the runtime's.
 *
 * One conns_poll reads, in this order:
 *   1. each listener's family, type and port or path (getsockname), and its
 *      inode (fstat): the kernel names sockets by inode;
 *   2. one NETLINK_SOCK_DIAG dump per family in use (TCP over IPv4, TCP
 *      over IPv6, unix): the listening sockets give their accept queue and
 *      backlog, the connections on the listeners' ports or paths a table
 *      inode -> open or closing. The TCP dumps carry a filter on the local
 *      port, so the kernel leaves out other services' connections. Where
 *      sock_diag is refused (EPERM, EACCES, EPROTONOSUPPORT...: a seccomp
 *      profile, gVisor), from the first refusal on: /proc/net/tcp, tcp6
 *      and unix read whole, and TCP_INFO on each TCP listener for its
 *      queue (linux_procnet.c); a unix listener's queue and a unix
 *      connection's shutdown are not there, and read as 0;
 *   3. each generation's processes: those of its session (its main process
 *      called setsid(), so the session id is the main pid), walked down
 *      from the main process through /proc/PID/task/TID/children, plus the
 *      session's orphans the caller adopted as a child subreaper. A kernel
 *      without CONFIG_PROC_CHILDREN gets one scan of /proc instead;
 *   4. per process, /proc/PID/stat (CPU, memory, session) and its fds:
 *      a "socket:[INODE]" link whose inode is in the table is one of the
 *      generation's connections, counted once however many of its
 *      processes share it (forked workers do).
 * So the kernel side costs a dump per family, not a syscall per connection;
 * the process side a few reads per process and a readlink per open fd.
 * That is Linux (os/linux_conns.c, linux_sockdiag.c, linux_procnet.c);
 * FreeBSD reads the same figures from its sysctls (os/freebsd_conns.c
 * says which).
 *
 * What the figures mean:
 *   - established: connections a process of the generation holds, in
 *     ESTABLISHED or SYN_RECV (a TCP Fast Open connection accepted before
 *     its handshake ended). One still in an accept queue belongs to no
 *     process yet: it is the listener's queue, not anyone's established.
 *   - closing: held while their close is under way: mostly CLOSE_WAIT (the
 *     client closed, the app has not yet); FIN_WAIT1/2, CLOSING and
 *     LAST_ACK only while the app keeps the fd after shutdown(). Once the
 *     app closes the fd the socket is no process's (TIME_WAIT, orphaned
 *     FIN_WAIT): not counted. A unix connection is closing once either
 *     side shut it down (its peer closed, or shutdown()).
 *   - nprocs: processes of the session found, the main one included; one
 *     we may not read (EACCES) is counted without its figures.
 *   - rss_bytes: the resident set of each process, summed: pages shared
 *     between processes (forked workers) are counted in each.
 *   - cpu_seconds: user and system time of the live processes: a process
 *     that exits takes its time with it, so the sum may go down.
 *   - queue, max_queue: a listening socket's accept queue now and its
 *     backlog, for TCP and unix. The kernel queues up to max_queue + 1.
 * Every figure is a snapshot: a connection may close while it is read.
 *
 * Bounds, so a poll's cost and memory stay bounded whatever the host holds:
 * CONNS_MAX_SOCKETS connections in the table and CONNS_MAX_PROCS processes
 * per generation; past either the figures are cut (logged once). Nothing
 * is kept between polls. Not thread-safe: call it from one thread. */

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CONNS_MAX_SOCKETS 1000000
#define CONNS_MAX_PROCS 4096

struct conns_listener { /* in: a listening socket the supervisor owns */
    int fd;
    /* out, from the kernel (0 for a socket that is not TCP or unix stream): */
    unsigned queue;     /* connections waiting in its accept queue now */
    unsigned max_queue; /* its backlog (the queue's maximum) */
};

struct conns_gen { /* in: one generation */
    pid_t pid;     /* its main process, leader of its session */
    /* out: */
    unsigned established; /* its connections on the listeners' ports/paths */
    unsigned closing;     /* its connections being closed (above) */
    unsigned nprocs;      /* processes in its session */
    unsigned listening;   /* the listeners its processes still hold: while
                           * nonzero it may accept, so its connection count
                           * may rise again */
    uint64_t rss_bytes;   /* summed over its processes */
    double cpu_seconds;   /* utime+stime summed over its processes */
    /* in, optional: room for MAX_INOS socket inodes; out: those of the
     * connections counted above (NINOS of them; more than MAX_INOS: only
     * that many kept), for conns_held between full reads. */
    uint32_t *inos;
    size_t max_inos, ninos;
};

/* Reads the figures of listeners LS and generations GS. Returns 0 or a
 * negative errno, with whatever could be read filled in all the same:
 * a socket error when neither sock_diag nor /proc/net could be read,
 * with the process figures but no connections or queues;
 * -ENOBUFS when a bound cut the figures; -ENOTSOCK or -EBADF for a
 * listener fd that is not a socket (its figures 0); -ENOMEM. */
int conns_poll(struct conns_listener *ls, size_t nls, struct conns_gen *gs, size_t ngs);

/* The processes of the generation whose main process is LEADER, found
 * as conns_poll finds them: at most MAX into PIDS, *N set to how many.
 * Returns 0 or a negative errno, as conns_poll. */
int conns_members(pid_t leader, pid_t *pids, size_t max, size_t *n);
/* The open fds of processes PIDS (N of them), summed into *FDS: one stat
 * of /proc/PID/fd each, whose size Linux 6.2+ makes the count of its fds.
 * A drain polls this between full reads: while no process of a generation
 * that holds no listener opened or closed an fd, its connections are
 * what they were. Returns 0, -ESRCH when one of them is gone, or
 * -EOPNOTSUPP when the kernel does not count (before 6.2). */
int conns_fds(const pid_t *pids, size_t n, uint64_t *fds);

/* How many of the connections INOS (NINOS socket inodes, sorted, from a
 * conns_poll) processes PIDS (N) still hold, into *HELD: a readlink of
 * each of their fds, no socket table. While a generation holds no
 * listener, no connection can join those, so this is its connection
 * count, at a cost in proportion to its fds, not to the host's
 * connections. Returns 0, -ESRCH when one of them is gone, -ENOMEM, or
 * -EOPNOTSUPP where the platform has no such read (FreeBSD: conns_fds
 * too; the drain then reads the tables each poll). */
int conns_held(const pid_t *pids, size_t n, const uint32_t *inos, size_t ninos, unsigned *held);

/* How processes are found: 1 walks the children files, 0 scans /proc as
 * on a kernel without CONFIG_PROC_CHILDREN, -1 (the default) finds out
 * which the kernel has. For tests, so both ways run on any kernel. */
void conns_set_children_files(int children);

/* The inode of a TCP socket listening on PORT (host order) over FAMILY
 * (AF_INET or AF_INET6), from one sock_diag dump of the listeners (or
 * /proc/net/tcp, tcp6 where sock_diag is refused): what names it in
 * /proc/PID/fd. Returns 0 with *INO, -ENOENT when none listens there, or
 * another negative errno. */
int conns_tcp_listener(int family, uint16_t port, uint64_t *ino);

/* Whether netlink sock_diag answers here: 0, or the negative errno of its
 * refusal. One dump of the listeners; for the host report (os.h). */
int conns_sock_diag_probe(void);

/* How the socket tables are read: 1 sock_diag, 0 /proc/net, -1 (the
 * default) sock_diag until it is refused. For tests, so both ways run on
 * any kernel. */
void conns_set_sock_diag(int on);

/* The kernel's count of accept queue overflows since boot, for the caller's
 * network namespace (TcpExtListenOverflows in /proc/net/netstat): a
 * connection the kernel dropped because a queue was full. Or a negative
 * errno (-ENOENT when the kernel does not report it). */
int64_t conns_listen_overflows(void);

#endif
