#ifndef BATON_CONNS_POLL_H
#define BATON_CONNS_POLL_H

/* The inside of one conns_poll (conns.h) on Linux, shared by its halves
 * only: linux_conns.c (the /proc side: processes, their fds), and the
 * kernel's socket tables read by linux_sockdiag.c or, where sock_diag is
 * refused, linux_procnet.c. Nothing else includes this. */

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

struct conns_listener; /* conns.h */
struct conns_gen;

struct sockent {   /* a connection on a listener's port or path */
    uint32_t ino;  /* its socket inode: what /proc/PID/fd links name */
    uint32_t seen; /* 1 + the index of the last generation that counted it */
    uint8_t closing;
};

struct table {
    struct sockent *v;
    size_t len, cap;
};

struct lsn {      /* what the poll learnt of a listener */
    uint64_t ino; /* its socket inode */
    int family;   /* AF_INET, AF_INET6, AF_UNIX; 0: not a socket we read */
    int type;     /* SOCK_STREAM (or SOCK_SEQPACKET for unix) */
    uint16_t port;
    struct sockaddr_un un; /* unix: its name, NAMELEN bytes of sun_path */
    size_t namelen;
};

struct member { /* a process of generation GEN */
    size_t gen;
    pid_t pid;
    long threads;
};

/* A listener by its socket's inode (conns_poll: sorted by INO). */
struct lsn_at {
    uint64_t ino;
    size_t i;
};

struct poll {
    struct conns_listener *ls;
    struct lsn *info;
    /* The read listeners sorted by inode: a socket of the dump or of a
     * process's fds is looked up, not compared with every listener (with
     * 10,000 listeners a generation holds 10,000 sockets: 10^8 compares a
     * poll). NULL where none was read. */
    struct lsn_at *byino;
    size_t nbyino;
    /* The TCP listeners' ports, a bit each, [0] AF_INET, [1] AF_INET6:
     * whether a dumped connection is on one of them, without a pass over
     * the listeners (with 10,000 the dump is not filtered by port). */
    uint8_t ports[2][65536 / 8];
    uint32_t *held; /* per listener: the mark of the last generation seen holding it */
    size_t nls;
    struct conns_gen *gs;
    size_t ngs;
    struct table t;
    struct member *m;
    size_t mlen, mcap;
    char *children; /* CHILDREN_BUF bytes: one children file at a time */
    pid_t *adopted; /* the caller's children but the main processes */
    size_t nadopted;
    int cut; /* a bound cut the figures */
};

/* linux_conns.c: a connection (socket inode INO) on a listener's port or path. */
int conns__table_add(struct poll *p, uint32_t ino, int closing);
/* linux_conns.c: whether PORT is a TCP listener's of FAMILY. */
int conns__port_ours(const struct poll *p, int family, uint16_t port);
/* linux_conns.c: listener INO's accept queue now and at most. */
void conns__listener_queue(struct poll *p, uint32_t ino, unsigned queue, unsigned max);
/* linux_sockdiag.c: the TCP sockets of FAMILY on the listeners' ports,
 * and the unix sockets on their paths, into P. 0 or a negative errno. */
int conns__dump_tcp(struct poll *p, int family);
int conns__dump_unix(struct poll *p);
/* linux_sockdiag.c: conns_tcp_listener by sock_diag. */
int conns__diag_listener(int family, uint16_t port, uint64_t *ino);
/* linux_procnet.c: the same three from /proc/net/tcp, tcp6 and unix, where
 * sock_diag is refused. */
int conns__proc_tcp(struct poll *p, int family);
/* linux_procnet.c: each TCP listener's queue and backlog (TCP_INFO). */
void conns__proc_queues(struct poll *p);
int conns__proc_unix(struct poll *p);
int conns__proc_listener(int family, uint16_t port, uint64_t *ino);

#endif
