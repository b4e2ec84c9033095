/* freebsd_portholder.c: who holds a TCP port, on FreeBSD (see portholder.h).
 *
 * The listening socket's kernel address from net.inet.tcp.pcblist
 * (conns_tcp_listener), the process holding it from kern.file (struct
 * xfile: pid and the same address), its name from kern.proc.pid: three
 * sysctls, on the error path only. */
#include "os/portholder.h"

#include "os/conns.h"

#include <sys/param.h>
#include <sys/file.h>
#include <sys/sysctl.h>
#include <sys/user.h>

#include <netinet/in.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The first process holding socket SO, from kern.file. */
static int so_holder(uint64_t so, pid_t *pid)
{
    int mib[2] = { CTL_KERN, KERN_FILE };
    size_t len = 0;
    if (sysctl(mib, 2, NULL, &len, NULL, 0) < 0)
        return -errno;
    len += len / 4 + 4096; /* room for files opened meanwhile */
    /* One open file of the host's each: bounded as conns' dumps are. */
    if (len > ((size_t)256 << 20))
        return -ENOBUFS;
    struct xfile *xf = malloc(len);
    if (!xf)
        return -ENOMEM;
    int r = -ENOENT;
    if (sysctl(mib, 2, xf, &len, NULL, 0) < 0)
        r = -errno;
    else if (len >= sizeof *xf && xf[0].xf_size != sizeof *xf)
        r = -EINVAL; /* a layout this build does not know */
    else
        for (size_t i = 0; i < len / sizeof *xf; i++)
            if (xf[i].xf_type == DTYPE_SOCKET && xf[i].xf_data == so) {
                *pid = xf[i].xf_pid;
                r = 0;
                break;
            }
    free(xf);
    return r;
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
    uint64_t so;
    int r = conns_tcp_listener(AF_INET, (uint16_t)port, &so);
    if (r == -ENOENT)
        r = conns_tcp_listener(AF_INET6, (uint16_t)port, &so);
    if (r < 0)
        return r;
    if ((r = so_holder(so, pid)) < 0)
        return r;
    struct kinfo_proc kp;
    size_t len = sizeof kp;
    int mib[4] = { CTL_KERN, KERN_PROC, KERN_PROC_PID, (int)*pid };
    if (commlen)
        comm[0] = '\0';
    if (commlen && sysctl(mib, 4, &kp, &len, NULL, 0) == 0 && len == sizeof kp)
        snprintf(comm, commlen, "%s", kp.ki_comm);
    return 0;
}
