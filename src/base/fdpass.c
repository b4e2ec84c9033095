/* fdpass.c: fds over unix sockets (see fdpass.h). */
#include "base/fdpass.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

union rights { /* a control buffer for FDPASS_MAX fds, aligned for cmsghdr */
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int) * FDPASS_MAX)];
};

ssize_t fdpass_send(int sock, const struct sockaddr *to, socklen_t tolen, const void *data,
                    size_t len, const int *fds, size_t nfds)
{
    if (nfds > FDPASS_MAX)
        return -EINVAL;
    struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
    struct msghdr m = {
        .msg_name = (void *)to, .msg_namelen = to ? tolen : 0, .msg_iov = &iov, .msg_iovlen = 1
    };
    union rights c;
    if (nfds) {
        memset(c.buf, 0, CMSG_SPACE(sizeof(int) * nfds));
        m.msg_control = c.buf;
        m.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        struct cmsghdr *h = CMSG_FIRSTHDR(&m);
        h->cmsg_level = SOL_SOCKET;
        h->cmsg_type = SCM_RIGHTS;
        h->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(h), fds, sizeof(int) * nfds);
    }
    ssize_t n;
    while ((n = sendmsg(sock, &m, MSG_NOSIGNAL)) < 0)
        if (errno != EINTR)
            return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    return n;
}

static void close_all(const int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        close(fds[i]);
}

size_t fdpass_take(struct msghdr *msg, int *fds, size_t max)
{
    size_t n = 0;
    for (struct cmsghdr *h = CMSG_FIRSTHDR(msg); h; h = CMSG_NXTHDR(msg, h)) {
        if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof fd);
            if (n < max)
                fds[n++] = fd;
            else
                close(fd); /* more than the caller takes: not ours to keep */
        }
    }
    return n;
}

ssize_t fdpass_recv(int sock, void *data, size_t len, int *fds, size_t max, size_t *nfds, int flags)
{
    union rights c;
    struct iovec iov = { .iov_base = data, .iov_len = len };
    struct msghdr m = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf, .msg_controllen = sizeof c.buf
    };
    ssize_t n;
    *nfds = 0;
    while ((n = recvmsg(sock, &m, flags | MSG_CMSG_CLOEXEC)) < 0)
        if (errno != EINTR)
            return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    size_t k = fdpass_take(&m, fds, max);
    if (m.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) {
        close_all(fds, k);
        return -EMSGSIZE;
    }
    *nfds = k;
    return n;
}

/* Waits for SOCK to be ready for EVENTS, after an EAGAIN. */
static int wait_for(int sock, short events)
{
    struct pollfd p = { .fd = sock, .events = events };
    while (poll(&p, 1, -1) < 0)
        if (errno != EINTR)
            return -errno;
    return 0;
}

int fdpass_send_all(int sock, const int *fds, size_t nfds)
{
    for (size_t sent = 0; sent < nfds;) {
        size_t k = nfds - sent < FDPASS_MAX ? nfds - sent : FDPASS_MAX;
        ssize_t r = fdpass_send(sock, NULL, 0, "F", 1, fds + sent, k);
        if (r == -EAGAIN && (r = wait_for(sock, POLLOUT)) == 0)
            continue;
        if (r < 0)
            return (int)r;
        sent += k;
    }
    return 0;
}

int fdpass_recv_all(int sock, int *fds, size_t nfds)
{
    size_t got = 0;
    while (got < nfds) {
        char byte;
        size_t k, want = nfds - got < FDPASS_MAX ? nfds - got : FDPASS_MAX;
        ssize_t r = fdpass_recv(sock, &byte, 1, fds + got, want, &k, 0);
        if (r == -EAGAIN && (r = wait_for(sock, POLLIN)) == 0)
            continue;
        if (r == 0)
            r = -EPIPE;
        else if (r > 0 && k == 0)
            r = -EPROTO;
        if (r < 0) {
            close_all(fds, got);
            return (int)r;
        }
        got += k;
    }
    return 0;
}
