/* linux_procnet.c: what linux_conns.c asks of the kernel's socket tables where
 * netlink sock_diag is refused (a seccomp profile such as Docker's
 * default, gVisor): /proc/net/tcp, tcp6 and unix, read whole and matched
 * to the listeners by port or path, and each listener's queue by TCP_INFO
 * on the listener itself. Slower than sock_diag (the kernel formats every
 * TCP socket of the namespace as text; no filter by port) and it loses
 * two figures: a unix listener's queue and a unix connection's shutdown
 * (not in /proc/net/unix), which read as 0. */
#include "os/conns.h"
#include "os/conns_poll.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

/* The kernel's TCP states as /proc/net/tcp prints them (include/net/tcp_states.h). */
enum {
    ST_ESTABLISHED = 1,
    ST_SYN_RECV = 3,
    ST_TIME_WAIT = 6,
    ST_CLOSE = 7,
    ST_LISTEN = 10,
};
/* Lines are about 150 bytes (tcp6: 180); a unix line holds a path of up to
 * 108 bytes. Longer lines do not occur; one would be skipped. */
#define LINE_MAX_LEN 512

static const char *hex(const char *s, unsigned *v)
{
    unsigned x = 0;
    const char *start = s;
    for (;; s++) {
        unsigned d = *s >= '0' && *s <= '9'   ? (unsigned)(*s - '0')
                     : *s >= 'A' && *s <= 'F' ? (unsigned)(*s - 'A' + 10)
                     : *s >= 'a' && *s <= 'f' ? (unsigned)(*s - 'a' + 10)
                                              : 16;
        if (d == 16)
            break;
        x = x << 4 | d;
    }
    *v = x;
    return s == start ? NULL : s;
}

/* The local port and state of one line of /proc/net/tcp or tcp6:
 *   sl: local_address rem_address st tx_queue:rx_queue ... inode ...
 * with addresses as HEX:PORT. By hand, not sscanf: a host may list tens
 * of thousands of sockets (TIME_WAIT mostly) at every poll, and most lines
 * are dropped on these two fields. Returns 1 with *REST after the state,
 * or 0 for a line that is not one (the header). */
static int tcp_head(const char *line, unsigned *port, unsigned *state, const char **rest)
{
    const char *s = strchr(line, ':'), *a;
    unsigned skip; /* an address's hex (8 or 32 digits) overflows it: no matter */
    if (!s)
        return 0;
    for (s++; *s == ' '; s++)
        ;
    if (!(a = hex(s, &skip)) || *a != ':' || !(s = hex(a + 1, port)) || *s != ' ')
        return 0;
    if (!(a = hex(s + 1, &skip)) || *a != ':' || !(s = hex(a + 1, &skip)) || *s != ' ')
        return 0;
    if (!(s = hex(s + 1, state)))
        return 0;
    *rest = s;
    return 1;
}

/* The inode, after the state: tx:rx tr:when retrnsmt uid timeout inode. */
static int tcp_inode(const char *rest, unsigned long *ino)
{
    return sscanf(rest, " %*x:%*x %*x:%*x %*x %*u %*d %lu", ino) == 1;
}

/* Read in 64 KiB pieces: each read of a /proc/net table makes the kernel
 * find its place in it again, so fewer reads cost less. One buffer: conns
 * is not thread-safe (conns.h). */
static FILE *open_table(int family)
{
    static char buf[65536];
    FILE *f = fopen(family == AF_INET6  ? "/proc/net/tcp6"
                    : family == AF_INET ? "/proc/net/tcp"
                                        : "/proc/net/unix",
                    "re");
    if (f)
        setvbuf(f, buf, _IOFBF, sizeof buf);
    return f;
}

/* A listener's queue from the listener: for a listening socket TCP_INFO
 * reports its accept queue in tcpi_unacked and its backlog in tcpi_sacked. */
static void tcp_queue(struct poll *p, size_t i)
{
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    memset(&ti, 0, sizeof ti);
    if (getsockopt(p->ls[i].fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
        ti.tcpi_state == ST_LISTEN)
        conns__listener_queue(p, (uint32_t)p->info[i].ino, ti.tcpi_unacked, ti.tcpi_sacked);
}

void conns__proc_queues(struct poll *p)
{
    for (size_t i = 0; i < p->nls; i++)
        if (p->info[i].family == AF_INET || p->info[i].family == AF_INET6)
            tcp_queue(p, i);
}

int conns__proc_tcp(struct poll *p, int family)
{
    size_t mine = 0;
    for (size_t i = 0; i < p->nls; i++)
        mine += p->info[i].family == family;
    if (!mine)
        return 0;
    FILE *f = open_table(family);
    if (!f)
        return -errno;
    char line[LINE_MAX_LEN];
    int err = 0;
    while (err != -ENOMEM && fgets(line, sizeof line, f)) {
        unsigned port, state;
        unsigned long ino;
        const char *rest;
        if (!tcp_head(line, &port, &state, &rest))
            continue;
        /* As the dump: no listener, TIME_WAIT or closed socket, and none
         * that no process holds (inode 0: queued for accept, orphaned). */
        if (state == ST_LISTEN || state == ST_TIME_WAIT || state == ST_CLOSE)
            continue;
        for (size_t i = 0; i < p->nls; i++) {
            if (p->info[i].family != family || p->info[i].port != port)
                continue;
            if (tcp_inode(rest, &ino) && ino) {
                int r = conns__table_add(p, (uint32_t)ino,
                                         state != ST_ESTABLISHED && state != ST_SYN_RECV);
                if (r < 0 && !err)
                    err = r;
            }
            break;
        }
    }
    if (ferror(f) && !err)
        err = -EIO;
    fclose(f);
    return err == -ENOBUFS ? 0 : err; /* a cut is the table's to report */
}

/* The path of a /proc/net/unix line, as the kernel prints it: after the
 * inode, a path as is, an abstract name with '@' for its leading NUL (and
 * for any NUL in it). Compared with a listener's name the same way. */
static int unix_name_is(const struct lsn *l, const char *shown, size_t len)
{
    if (!l->namelen)
        return 0;
    const char *name = l->un.sun_path;
    size_t n = l->namelen;
    if (name[0] != '\0') /* a path: up to its NUL, if the length counts one */
        n = strnlen(name, n);
    if (n != len)
        return 0;
    for (size_t k = 0; k < n; k++)
        if (shown[k] != (name[k] == '\0' ? '@' : name[k]))
            return 0;
    return 1;
}

int conns__proc_unix(struct poll *p)
{
    size_t i = 0;
    while (i < p->nls && p->info[i].family != AF_UNIX)
        i++;
    if (i == p->nls)
        return 0;
    FILE *f = open_table(AF_UNIX);
    if (!f)
        return -errno;
    /* Num RefCount Protocol Flags Type St Inode Path */
    char line[LINE_MAX_LEN];
    int err = 0;
    while (err != -ENOMEM && fgets(line, sizeof line, f)) {
        unsigned type, st;
        unsigned long flags, ino;
        int at = 0;
        if (sscanf(line, "%*[0-9A-Fa-f]: %*x %*x %lx %x %x %lu %n", &flags, &type, &st, &ino,
                   &at) != 4 ||
            !at)
            continue;
        size_t len = strcspn(line + at, "\n");
        /* __SO_ACCEPTCON (1 << 16): a listener; st 3: SS_CONNECTED. */
        if ((flags & (1ul << 16)) || st != 3 || !ino || !len)
            continue;
        for (size_t k = 0; k < p->nls; k++)
            if (p->info[k].family == AF_UNIX && (unsigned)p->info[k].type == type &&
                unix_name_is(&p->info[k], line + at, len)) {
                int r = conns__table_add(p, (uint32_t)ino, 0);
                if (r < 0 && !err)
                    err = r;
                break;
            }
    }
    if (ferror(f) && !err)
        err = -EIO;
    fclose(f);
    return err == -ENOBUFS ? 0 : err;
}

int conns__proc_listener(int family, uint16_t port, uint64_t *ino)
{
    FILE *f = open_table(family);
    if (!f)
        return -errno;
    char line[LINE_MAX_LEN];
    int r = -ENOENT;
    while (r == -ENOENT && fgets(line, sizeof line, f)) {
        unsigned lport, state;
        unsigned long i;
        const char *rest;
        if (tcp_head(line, &lport, &state, &rest) && state == ST_LISTEN && lport == port &&
            tcp_inode(rest, &i)) {
            *ino = i;
            r = 0;
        }
    }
    fclose(f);
    return r;
}
