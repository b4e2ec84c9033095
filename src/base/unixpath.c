/* unixpath.c: claiming a unix socket path (see unixpath.h). */
#include "base/unixpath.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int unixpath_claim(const char *path)
{
    struct sockaddr_un un = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof un.sun_path)
        return -ENAMETOOLONG;
    strcpy(un.sun_path, path);
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISSOCK(st.st_mode) || st.st_uid != geteuid())
        return -EEXIST;
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe < 0)
        return -errno;
    int r = connect(probe, (const struct sockaddr *)&un, sizeof un);
    int saved = errno;
    close(probe);
    if (r == 0)
        return -EADDRINUSE;
    /* A datagram socket (a notify socket) refuses a stream connect with
     * EPROTOTYPE: ask it as what it is. */
    if (saved == EPROTOTYPE) {
        probe = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (probe < 0)
            return -errno;
        r = connect(probe, (const struct sockaddr *)&un, sizeof un);
        saved = errno;
        close(probe);
        if (r == 0)
            return -EADDRINUSE;
    }
    if (saved != ECONNREFUSED && saved != ENOENT)
        return -saved;
    return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
}

const char *unixpath_strerror(int r)
{
    switch (r) {
    case -EADDRINUSE: return "a live socket is there (another supervisor?)";
    case -EEXIST: return "something that is not a stale socket of ours is there: left as it is";
    case -ENAMETOOLONG: return "path too long for a unix socket";
    default: return strerror(-r);
    }
}
