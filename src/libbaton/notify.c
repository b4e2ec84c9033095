#include "baton.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int baton_notify(const char *state)
{
    return baton_notify_fds(state, NULL, 0);
}

int baton_notify_fds(const char *state, const int *fds, size_t nfds)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un un = { .sun_family = AF_UNIX };
    socklen_t len;
    if (!path || !*path)
        return 0;
    size_t pl = strlen(path);
    if (pl >= sizeof un.sun_path)
        return -ENAMETOOLONG;
    memcpy(un.sun_path, path, pl);
    if (path[0] == '@')
        un.sun_path[0] = '\0'; /* abstract namespace */
    len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + pl);

    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (nfds > BATON_NOTIFY_MAX_FDS) {
        close(fd);
        return -E2BIG;
    }
    struct iovec iov = { .iov_base = (void *)state, .iov_len = strlen(state) };
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * BATON_NOTIFY_MAX_FDS)];
    } control;
    struct msghdr mh = { .msg_name = &un, .msg_namelen = len, .msg_iov = &iov, .msg_iovlen = 1 };
    if (nfds > 0) {
        memset(&control, 0, sizeof control);
        mh.msg_control = control.buf;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);
    int r = n < 0 ? -errno : 1;
    close(fd);
    return r;
}
