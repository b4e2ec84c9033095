/* linux_portholder.c: who holds a TCP port, on Linux (see portholder.h). */
#include "os/portholder.h"

#include "os/conns.h"

#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The inode of a socket listening on PORT in /proc/net/FILE, or 0: where
 * a sandbox refuses the sock_diag dump (Docker's default seccomp profile,
 * gVisor), /proc/net/tcp{,6} remain. */
static unsigned long proc_net_inode(const char *file, unsigned port)
{
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/net/%s", file);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    unsigned long found = 0;
    /* "  sl  local_address rem_address   st tx_queue:rx_queue tr tm->when
     *  retrnsmt uid timeout inode": local as HEX_ADDR:HEX_PORT, st 0A is
     *  LISTEN. */
    while (!found && fgets(line, sizeof line, f)) {
        char local[64];
        unsigned st;
        unsigned long inode;
        if (sscanf(line, " %*u: %63s %*s %x %*s %*s %*s %*u %*u %lu", local, &st, &inode) != 3)
            continue;
        const char *colon = strrchr(local, ':');
        if (st == 0x0A && colon && strtoul(colon + 1, NULL, 16) == port)
            found = inode;
    }
    fclose(f);
    return found;
}

/* The inode of a socket listening on PORT over FAMILY, or 0: from the
 * kernel's sock_diag (conns.c reads the TCP table), or /proc/net/FILE
 * when netlink is refused. */
static unsigned long listening_inode(int family, const char *file, unsigned port)
{
    uint64_t ino;
    int r = conns_tcp_listener(family, (uint16_t)port, &ino);
    if (r == 0)
        return (unsigned long)ino;
    return r == -ENOENT ? 0 : proc_net_inode(file, port);
}

/* Whether process PID holds socket INODE. */
static int holds(pid_t pid, unsigned long inode)
{
    char dir[64], want[64];
    snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pid);
    snprintf(want, sizeof want, "socket:[%lu]", inode);
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int yes = 0;
    // cppcheck-suppress readdirCalled
    for (struct dirent *e; !yes && (e = readdir(d));) {
        char link[64];
        ssize_t n = readlinkat(dirfd(d), e->d_name, link, sizeof link - 1);
        if (n > 0) {
            link[n] = '\0';
            yes = strcmp(link, want) == 0;
        }
    }
    closedir(d);
    return yes;
}

int port_holder(const struct sockaddr *addr, pid_t *pid, char *comm, size_t commlen)
{
    unsigned port;
    if (addr->sa_family == AF_INET)
        port = ntohs(((const struct sockaddr_in *)addr)->sin_port);
    else if (addr->sa_family == AF_INET6)
        port = ntohs(((const struct sockaddr_in6 *)addr)->sin6_port);
    else
        return -EAFNOSUPPORT;
    unsigned long inode = listening_inode(AF_INET, "tcp", port);
    if (!inode)
        inode = listening_inode(AF_INET6, "tcp6", port);
    if (!inode)
        return -ENOENT;
    DIR *d = opendir("/proc");
    if (!d)
        return -errno;
    int r = -ENOENT;
    // cppcheck-suppress readdirCalled
    for (struct dirent *e; r == -ENOENT && (e = readdir(d));) {
        char *end;
        long p = strtol(e->d_name, &end, 10);
        if (*end || p <= 0 || !holds((pid_t)p, inode))
            continue;
        *pid = (pid_t)p;
        char path[64];
        snprintf(path, sizeof path, "/proc/%ld/comm", p);
        FILE *f = fopen(path, "re");
        comm[0] = '\0';
        if (f) {
            if (fgets(comm, (int)commlen, f))
                comm[strcspn(comm, "\n")] = '\0';
            fclose(f);
        }
        r = 0;
    }
    closedir(d);
    return r;
}
