/* linux_conns_fds.c: a quiet drain's cheap reads between the kernel's
 * full ones (conns.h: conns_fds, conns_held): a generation's own fds in
 * /proc/PID/fd, no socket table. Apart from linux_conns.c, which reads
 * the tables. */
#include "os/conns.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int conns_fds(const pid_t *pids, size_t n, uint64_t *fds)
{
    *fds = 0;
    for (size_t i = 0; i < n; i++) {
        char path[64];
        struct stat st;
        snprintf(path, sizeof path, "/proc/%d/fd", (int)pids[i]);
        if (stat(path, &st) < 0)
            return errno == ENOENT ? -ESRCH : -errno;
        if (st.st_size <= 0)
            return -EOPNOTSUPP; /* a kernel that does not count: size 0 */
        *fds += (uint64_t)st.st_size;
    }
    return 0;
}

static int by_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

int conns_held(const pid_t *pids, size_t n, const uint32_t *inos, size_t ninos, unsigned *held)
{
    *held = 0;
    unsigned char *seen = ninos ? calloc(ninos, 1) : NULL; /* each once: forks share them */
    if (ninos && !seen)
        return -ENOMEM;
    int err = 0;
    for (size_t i = 0; i < n && !err; i++) {
        char path[64], link[64];
        snprintf(path, sizeof path, "/proc/%d/fd", (int)pids[i]);
        DIR *d = opendir(path);
        if (!d) {
            err = errno == ENOENT ? -ESRCH : -errno;
            break;
        }
        const struct dirent *e;
        // cppcheck-suppress readdirCalled
        while ((e = readdir(d))) {
            ssize_t len = readlinkat(dirfd(d), e->d_name, link, sizeof link - 1);
            if (len < 10 || memcmp(link, "socket:[", 8) != 0 || !ninos)
                continue;
            link[len] = '\0';
            uint32_t ino = (uint32_t)strtoul(link + 8, NULL, 10);
            const uint32_t *at = bsearch(&ino, inos, ninos, sizeof ino, by_u32);
            if (at && !seen[at - inos]) {
                seen[at - inos] = 1;
                (*held)++;
            }
        }
        closedir(d);
    }
    free(seen);
    return err;
}
