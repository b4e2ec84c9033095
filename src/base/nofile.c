/* nofile.c: the supervisor's and its apps' open-file limit (see nofile.h). */
#include "base/nofile.h"

#include "base/log.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>

static struct rlimit original;
static int raised;

int nofile_raise(void)
{
    struct rlimit r;
    if (raised) /* once: what children get back is the limit we started with */
        return 0;
    if (getrlimit(RLIMIT_NOFILE, &r) < 0)
        return -errno;
    original = r;
    raised = 1;
    if (r.rlim_cur == r.rlim_max)
        return 0;
    r.rlim_cur = r.rlim_max;
    return setrlimit(RLIMIT_NOFILE, &r) < 0 ? -errno : 0;
}

const struct rlimit *nofile_for_children(void)
{
    return raised ? &original : NULL;
}

void nofile_describe(char *buf, size_t len)
{
    struct rlimit r;
    long open = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d) { /* itself takes one: not counted */
        /* readdir on a DIR of our own is thread-safe; readdir_r is deprecated. */
        // cppcheck-suppress readdirCalled
        while (readdir(d))
            open++;
        closedir(d);
        open -= 3; /* ".", ".." and the folder's own fd */
    }
    if (getrlimit(RLIMIT_NOFILE, &r) < 0 || !d)
        snprintf(buf, len, "open-file limit unknown");
    else
        snprintf(buf, len, "%ld of %llu fds open", open, (unsigned long long)r.rlim_cur);
}

void nofile_check(unsigned long need, const char *what)
{
    struct rlimit r;
    /* rlim_t is unsigned on Linux; on FreeBSD it is signed but never
     * negative (RLIM_INFINITY is its largest value): compared unsigned. */
    if (getrlimit(RLIMIT_NOFILE, &r) == 0 && (unsigned long long)r.rlim_cur < need)
        log_warn("the open-file limit is %llu and the supervisor may need up to %lu fds (%s): "
                 "raise the hard limit (ulimit -Hn, LimitNOFILE=) or it may run short, and "
                 "say so in these logs",
                 (unsigned long long)r.rlim_cur, need, what);
}
