/* reuseport.c: the classic BPF steering of a SO_REUSEPORT group (see
 * reuseport.h). */
#include "os/reuseport.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifdef __linux__
#include <linux/filter.h>
#endif

#if defined(__linux__) && defined(SO_ATTACH_REUSEPORT_CBPF)

int os_steer_attach(int fd, const unsigned *weights, size_t n)
{
    if (n == 0 || n > OS_STEER_MAX)
        return -EINVAL;
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += weights[i];
    struct sock_filter prog[2 * OS_STEER_MAX + 2];
    size_t len = 0;
    /* A = a random 32-bit number, fresh for each connection. */
    prog[len++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                               SKF_AD_OFF + SKF_AD_RANDOM);
    /* Position i owns [cum(i-1), cum(i)) of the 2^32 range: for each one
     * but the last with a share, "A < cum(i): return i". */
    size_t last = n;
    for (size_t i = 0; i < n; i++)
        if (!total || weights[i])
            last = i;
    uint64_t cum = 0;
    for (size_t i = 0; i < last; i++) {
        uint64_t w = total ? weights[i] : 1;
        if (!w)
            continue;
        cum += w;
        uint64_t t = (cum << 32) / (total ? total : n);
        prog[len++] = (struct sock_filter)BPF_JUMP(
            BPF_JMP | BPF_JGE | BPF_K, (uint32_t)(t > UINT32_MAX ? UINT32_MAX : t), 1, 0);
        prog[len++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, (uint32_t)i);
    }
    prog[len++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, (uint32_t)last);
    struct sock_fprog fp = { .len = (unsigned short)len, .filter = prog };
    if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &fp, sizeof fp) < 0)
        return -errno;
    return 0;
}

int os_listen_queue(int fd, unsigned *queue)
{
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    memset(&ti, 0, sizeof ti);
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
        return -errno;
    /* For a listening socket the kernel reports its accept queue here. */
    *queue = ti.tcpi_unacked;
    return 0;
}

int os_tcp_migrate_req(void)
{
    int fd = open("/proc/sys/net/ipv4/tcp_migrate_req", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char c = 0;
    ssize_t n = read(fd, &c, 1);
    int r = n == 1 ? (c == '1') : n < 0 ? -errno : -EIO;
    close(fd);
    return r;
}

#else

int os_steer_attach(int fd, const unsigned *weights, size_t n)
{
    (void)fd, (void)weights, (void)n;
    return -EOPNOTSUPP;
}

int os_listen_queue(int fd, unsigned *queue)
{
    (void)fd, (void)queue;
    return -EOPNOTSUPP;
}

int os_tcp_migrate_req(void)
{
    return -EOPNOTSUPP;
}

#endif

int os_steer_member(const void *addr, unsigned addrlen, int backlog)
{
    const struct sockaddr *sa = addr;
    int one = 1;
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
        (sa->sa_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0) ||
        bind(fd, sa, addrlen) < 0 || listen(fd, backlog) < 0) {
        int r = -errno;
        close(fd);
        return r;
    }
    return fd;
}

void os_steer_leave(int fd)
{
    /* A listening socket shut down for reading stops listening and leaves
     * its group at once (Linux: tcp_disconnect), whoever else holds it. */
    shutdown(fd, SHUT_RD);
    close(fd);
}
