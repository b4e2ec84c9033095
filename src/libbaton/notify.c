#include "baton.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Where a datagram's receiver learns the sender's pid only if the sender
 * asks (FreeBSD before 13: unix(4)), each message carries an SCM_CREDS
 * struct cmsgcred, which the kernel fills in, so the sender cannot lie:
 * the supervisor tells which generation spoke by it. Linux attaches the
 * credentials itself (SO_PASSCRED on the receiver). */
#if defined(SCM_CREDS) && defined(CMGROUP_MAX)
#define SEND_CREDS 1
#define CRED_SPACE CMSG_SPACE(sizeof(struct cmsgcred))
#else
#define SEND_CREDS 0
#define CRED_SPACE 0
#endif

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
        char buf[CMSG_SPACE(sizeof(int) * BATON_NOTIFY_MAX_FDS) + CRED_SPACE];
    } control;
    struct msghdr mh = { .msg_name = &un, .msg_namelen = len, .msg_iov = &iov, .msg_iovlen = 1 };
    size_t used = 0; /* control bytes filled */
    memset(&control, 0, sizeof control);
    if (nfds > 0) {
        struct cmsghdr *c = (struct cmsghdr *)control.buf;
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
        used = CMSG_SPACE(sizeof(int) * nfds);
    }
#if SEND_CREDS
    struct cmsghdr *cred = (struct cmsghdr *)(control.buf + used);
    cred->cmsg_level = SOL_SOCKET;
    cred->cmsg_type = SCM_CREDS;
    cred->cmsg_len = CMSG_LEN(sizeof(struct cmsgcred));
    used += CRED_SPACE;
#endif
    if (used) {
        mh.msg_control = control.buf;
        mh.msg_controllen = (socklen_t)used;
    }
    ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);
    int r = n < 0 ? -errno : 1;
    close(fd);
    return r;
}
