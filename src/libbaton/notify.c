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
    ssize_t n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&un, len);
    int r = n < 0 ? -errno : 1;
    close(fd);
    return r;
}
