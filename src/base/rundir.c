/* rundir.c: the runtime folder (see rundir.h). */
#include "base/rundir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* The folder for sockets: $XDG_RUNTIME_DIR, or /tmp/baton-UID, mode 0700
 * and ours (a folder someone else made could be watched or swapped). */
int runtime_dir(char *out, size_t len)
{
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    if (xdg && xdg[0] == '/')
        snprintf(out, len, "%s", xdg);
    else
        snprintf(out, len, "/tmp/baton-%u", (unsigned)geteuid());
    if (mkdir(out, 0700) < 0 && errno != EEXIST)
        return -errno;
    /* The folder itself, never what a symlink there points to: opened
     * without following one, then checked through the open fd. */
    int fd = open(out, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ELOOP || errno == ENOTDIR ? -EPERM : -errno;
    struct stat st;
    int r = fstat(fd, &st) < 0 ? -errno : 0;
    close(fd);
    if (r == 0 && (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 0077)))
        r = -EPERM;
    return r;
}
