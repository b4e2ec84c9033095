#include "baton.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long env_long(const char *name, long fallback)
{
    const char *s = getenv(name);
    char *end;
    if (!s || !*s)
        return fallback;
    errno = 0;
    long v = strtol(s, &end, 10);
    return errno || *end ? fallback : v;
}

int baton_listen_fds(void)
{
    long pid = env_long("LISTEN_PID", -1);
    long n = env_long("LISTEN_FDS", 0);
    /* At most what a process may hold (the kernel's nr_open default): a
     * bound on a number from the environment, not on what a service
     * passes (10,000 listeners is a service baton runs). */
    if (pid != (long)getpid() || n <= 0 || n > (1L << 20))
        return 0;
    for (int fd = BATON_LISTEN_FDS_START; fd < BATON_LISTEN_FDS_START + n; fd++) {
        int flags = fcntl(fd, F_GETFD);
        if (flags < 0)
            return -errno;
        if (fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0)
            return -errno;
    }
    return (int)n;
}

int baton_fds(const char *name, int *fds, int max)
{
    int n = baton_listen_fds();
    const char *names = getenv("LISTEN_FDNAMES");
    int found = 0;
    if (n <= 0 || !names)
        return 0;
    size_t len = strlen(name);
    for (int i = 0; i < n && *names; i++) {
        size_t field = strcspn(names, ":");
        if (field == len && strncmp(names, name, len) == 0 && found < max)
            fds[found++] = BATON_LISTEN_FDS_START + i;
        names += field;
        if (*names == ':')
            names++;
    }
    return found;
}

int baton_listener(const char *name)
{
    int fd;
    return baton_fds(name, &fd, 1) == 1 ? fd : -ENOENT;
}

unsigned baton_generation(void)
{
    long g = env_long("BATON_GENERATION", 0);
    return g > 0 ? (unsigned)g : 0;
}
