/* linux.c: the platform seam on Linux (see os.h). */
#include "os/os.h"

#include "os/conns.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

/* Headers older than the kernel (close_range came in 5.9, its CLOEXEC flag
 * in 5.11): the numbers are the kernel's ABI, the same on every
 * architecture of the unified table (all since 5.1, but alpha). */
#ifndef __NR_close_range
#if defined(__alpha__)
#define __NR_close_range 546
#else
#define __NR_close_range 436
#endif
#endif
/* pidfd_open came in 5.3; the same unified table. */
#ifndef __NR_pidfd_open
#if defined(__alpha__)
#define __NR_pidfd_open 544
#else
#define __NR_pidfd_open 434
#endif
#endif
#ifndef PR_SET_CHILD_SUBREAPER /* 3.4: headers older still */
#define PR_SET_CHILD_SUBREAPER 36
#define PR_GET_CHILD_SUBREAPER 37
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* -- fds -------------------------------------------------------------- */

static int fd_way = OS_FDS_CLOSE_RANGE;

void os_set_fd_way(int way)
{
    fd_way = way;
}

/* getdents64's record: glibc declares it only since 2.30, and only
 * through <dirent.h>'s DIR side. */
struct dirent64_rec {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

/* Linux releases the fd whatever close answers (EINTR, or EIO from a
 * flush: the fd is gone all the same), and EBADF says none was open: no
 * answer of close leaves an fd open, which is all this is for. */
static int close_one(int fd)
{
    (void)close(fd);
    return 0;
}

static int cloexec_one(int fd)
{
    int flags = fcntl(fd, F_GETFD);
    if (flags < 0)
        return errno == EBADF ? 0 : -errno;
    if (!(flags & FD_CLOEXEC) && fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0)
        return errno == EBADF ? 0 : -errno;
    return 0;
}

/* ONE for each fd >= LOWFD of /proc/self/fd. Reads the directory with
 * getdents64 into the stack, so it may run after fork: opendir allocates.
 * Closing fds while reading is safe: the kernel lists them by number from
 * the position reached, and the entries already read are not read again. */
static int each_listed(int lowfd, int (*one)(int fd))
{
    int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        return -errno;
    union {
        struct dirent64_rec align;
        char b[4096];
    } buf;
    int err = 0;
    for (;;) {
        long n = syscall(SYS_getdents64, dir, buf.b, sizeof buf.b);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            err = -errno;
        if (n <= 0)
            break;
        for (long off = 0; off < n;) {
            const struct dirent64_rec *d = (const struct dirent64_rec *)(buf.b + off);
            off += d->d_reclen;
            long fd = 0;
            const char *c = d->d_name;
            for (; *c >= '0' && *c <= '9' && fd <= INT_MAX / 10; c++)
                fd = fd * 10 + (*c - '0');
            if (*c || c == d->d_name || fd < lowfd || fd == dir)
                continue; /* "." and "..", or the walk's own fd */
            int r = one((int)fd);
            if (r < 0 && !err)
                err = r;
        }
    }
    close(dir);
    return err;
}

/* ONE for every fd number from LOWFD up to the open-file limit: the last
 * way, with no /proc. An fd above a limit lowered since it was opened is
 * missed; getrlimit is a plain system call, safe after fork. */
static int each_number(int lowfd, int (*one)(int fd))
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -errno;
    long max = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > INT_MAX ? INT_MAX : (long)rl.rlim_cur;
    int err = 0;
    for (long fd = lowfd < 0 ? 0 : lowfd; fd < max; fd++) {
        int r = one((int)fd);
        if (r < 0 && !err)
            err = r;
    }
    return err;
}

static int each_from(int lowfd, unsigned flags, int (*one)(int fd))
{
    if (lowfd < 0)
        return -EINVAL;
    if (fd_way == OS_FDS_CLOSE_RANGE) {
        if (syscall(__NR_close_range, (unsigned)lowfd, ~0U, flags) == 0)
            return 0;
        /* ENOSYS: before 5.9, or a seccomp filter that hides it; EINVAL:
         * CLOSE_RANGE_CLOEXEC before 5.11; EPERM: a filter that refuses. */
        if (errno != ENOSYS && errno != EINVAL && errno != EPERM)
            return -errno;
    }
    if (fd_way <= OS_FDS_PROC) {
        int r = each_listed(lowfd, one);
        /* No /proc, or no fd left to read it with: count up instead. */
        if (r != -ENOENT && r != -EACCES && r != -EMFILE && r != -ENFILE && r != -ENOTDIR)
            return r;
    }
    return each_number(lowfd, one);
}

int os_close_from(int lowfd)
{
    return each_from(lowfd, 0, close_one);
}

int os_cloexec_from(int lowfd)
{
    return each_from(lowfd, CLOSE_RANGE_CLOEXEC, cloexec_one);
}

/* -- unix sockets ----------------------------------------------------- */

int os_peer_uid(int fd, uid_t *uid, pid_t *pid)
{
    struct ucred cr;
    socklen_t len = sizeof cr;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
        return -errno;
    if (uid)
        *uid = cr.uid;
    if (pid)
        *pid = cr.pid;
    return 0;
}

int os_cred_enable(int fd)
{
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0)
        return -errno;
    return 0;
}

_Static_assert(CMSG_SPACE(sizeof(struct ucred)) <= OS_CRED_CMSG_ROOM, "room for the credentials");

int os_cred_read(const struct msghdr *msg, uid_t *uid, pid_t *pid)
{
    /* CMSG_NXTHDR takes a non-const header; it only reads it. */
    struct msghdr *mh = (struct msghdr *)msg;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS &&
            c->cmsg_len == CMSG_LEN(sizeof(struct ucred))) {
            struct ucred cr;
            memcpy(&cr, CMSG_DATA(c), sizeof cr);
            if (uid)
                *uid = cr.uid;
            if (pid)
                *pid = cr.pid;
            return 0;
        }
    return -ENOENT;
}

/* -- processes -------------------------------------------------------- */

int os_proc_watch_fd(pid_t pid)
{
    /* Close-on-exec by itself: a pidfd always is. */
    long fd = syscall(__NR_pidfd_open, pid, 0);
    if (fd < 0)
        return -errno;
    return (int)fd;
}

int os_become_subreaper(void)
{
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
        return -errno;
    return 0;
}

int os_set_name(const char *name)
{
    if (prctl(PR_SET_NAME, name) < 0)
        return -errno;
    return 0;
}

pid_t os_fork_reset_signals(const sigset_t *child_mask)
{
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    pid_t pid = fork();
    if (pid == 0) {
        /* SIGKILL, SIGSTOP and the C library's own refuse: no matter. */
        for (int sig = 1; sig < NSIG; sig++)
            signal(sig, SIG_DFL);
        sigprocmask(SIG_SETMASK, child_mask ? child_mask : &old, NULL);
        return 0;
    }
    int err = errno;
    sigprocmask(SIG_SETMASK, &old, NULL);
    return pid < 0 ? -err : pid;
}

/* -- this process's image ------------------------------------------------ */

ssize_t os_exe_path(char *buf, size_t len)
{
    if (len < 2)
        return -ENAMETOOLONG;
    ssize_t n = readlink(OS_EXE_RUNNING, buf, len - 1);
    if (n < 0)
        return -errno;
    if ((size_t)n == len - 1)
        return -ENAMETOOLONG; /* perhaps cut */
    buf[n] = '\0';
    static const char deleted[] = " (deleted)";
    size_t l = (size_t)n, d = sizeof deleted - 1;
    if (l > d && strcmp(buf + l - d, deleted) == 0) {
        l -= d;
        buf[l] = '\0';
    }
    return (ssize_t)l;
}

int os_exe_open(int flags)
{
    int fd = open(OS_EXE_RUNNING, flags);
    if (fd < 0)
        return -errno;
    return fd;
}

/* -- processes: /proc/PID/stat ---------------------------------------- */

int os_proc_stat(pid_t pid, struct os_proc_stat *st)
{
    /* The fields read end at the 24th: in 1 KiB whatever the command name
     * (up to 64 bytes) and the numbers hold. */
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    /* /proc/PID's files belong to the process's effective uid. */
    struct stat sb;
    if (fstat(fd, &sb) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    size_t got = 0;
    while (got < sizeof buf - 1) {
        ssize_t n = read(fd, buf + got, sizeof buf - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = -errno;
            close(fd);
            return e == -ESRCH ? -ENOENT : e; /* it died since the open */
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    /* Field 2 is the command name in parentheses, which may itself hold
     * spaces and ')': the fields after it start after the last ')'. */
    const char *p = strrchr(buf, ')');
    int ppid, session;
    memset(st, 0, sizeof *st);
    st->uid = sb.st_uid;
    /* 3 state, 4 ppid, 5 pgrp, 6 session, 7 tty_nr, 8 tpgid, 9-13 flags
     * and faults, 14 utime, 15 stime, 16-19 children's times, priority,
     * nice, 20 num_threads, 21 itrealvalue, 22 starttime, 23 vsize,
     * 24 rss. */
    if (!p || sscanf(p + 1,
                     " %c %d %*d %d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %ld "
                     "%*d %llu %*u %ld",
                     &st->state, &ppid, &session, &st->utime, &st->stime, &st->threads,
                     &st->start_ticks, &st->rss_pages) != 8)
        return -EINVAL;
    st->ppid = (pid_t)ppid;
    st->session = (pid_t)session;
    return 0;
}

/* -- the host ---------------------------------------------------------- */

/* How os_close_from and os_cloexec_from go when close_range is refused. */
static void fds_fallback(struct os_mechanism *m, const char *call, int err)
{
    int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
        close(dir);
        snprintf(m->detail, sizeof m->detail, "%s: %s; walks /proc/self/fd", call, strerror(err));
    } else {
        snprintf(m->detail, sizeof m->detail,
                 "%s: %s; no /proc: one call per fd number up to the open-file limit", call,
                 strerror(err));
    }
    m->support = OS_FALLBACK;
}

static void probe_fds(struct os_mechanism *m, const char *name, unsigned flags, const char *call)
{
    *m = (struct os_mechanism){ .name = name, .support = OS_NATIVE };
    /* The one fd number no process can hold: nothing is closed. */
    if (syscall(__NR_close_range, ~0U, ~0U, flags) < 0)
        fds_fallback(m, call, errno);
}

static void probe_pidfd(struct os_mechanism *m)
{
    *m = (struct os_mechanism){ .name = "pidfd", .support = OS_NATIVE };
    int fd = os_proc_watch_fd(getpid());
    if (fd >= 0) {
        close(fd);
        return;
    }
    m->support = OS_FALLBACK;
    snprintf(m->detail, sizeof m->detail,
             "pidfd_open: %s; an adopted generation is polled (kill 0 and its start time)",
             strerror(-fd));
}

static void probe_sock_diag(struct os_mechanism *m)
{
    *m = (struct os_mechanism){ .name = "sock_diag", .support = OS_NATIVE };
    /* A sandbox may refuse the socket or only the dump: a dump it is. */
    int r = conns_sock_diag_probe();
    if (r == 0)
        return;
    if (access("/proc/net/tcp", R_OK) == 0) {
        m->support = OS_FALLBACK;
        snprintf(m->detail, sizeof m->detail,
                 "netlink sock_diag: %s; reads /proc/net/tcp, tcp6 and unix", strerror(-r));
    } else {
        m->support = OS_LOST;
        snprintf(m->detail, sizeof m->detail,
                 "netlink sock_diag: %s, no /proc/net/tcp: connections and accept queues "
                 "per generation unknown",
                 strerror(-r));
    }
}

static void probe_subreaper(struct os_mechanism *m)
{
    *m = (struct os_mechanism){ .name = "subreaper", .support = OS_NATIVE };
    int is = 0;
    if (prctl(PR_GET_CHILD_SUBREAPER, &is) < 0 || !is) {
        int err = is ? 0 : errno;
        m->support = OS_LOST;
        snprintf(m->detail, sizeof m->detail,
                 "not a child subreaper%s%s: orphans of an app go to init, not to baton",
                 err ? ": " : "", err ? strerror(err) : "");
    }
}

static void probe_peer_creds(struct os_mechanism *m)
{
    *m = (struct os_mechanism){ .name = "peer_creds", .support = OS_NATIVE };
    int sv[2], err = 0;
    uid_t uid;
    if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) < 0)
        err = errno;
    else {
        int r = os_cred_enable(sv[0]);
        if (r == 0)
            r = os_peer_uid(sv[0], &uid, NULL);
        err = -r;
        close(sv[0]);
        close(sv[1]);
    }
    if (err) {
        m->support = OS_LOST;
        snprintf(m->detail, sizeof m->detail,
                 "%s: notify datagrams and control connections cannot be told apart by sender",
                 strerror(err));
    }
}

size_t os_host_report(struct os_mechanism *out, size_t n)
{
    struct os_mechanism all[OS_HOST_MECHANISMS];
    probe_fds(&all[0], "close_range", 0, "close_range");
    probe_fds(&all[1], "cloexec_range", CLOSE_RANGE_CLOEXEC, "close_range(CLOEXEC)");
    probe_pidfd(&all[2]);
    probe_sock_diag(&all[3]);
    probe_subreaper(&all[4]);
    probe_peer_creds(&all[5]);
    size_t k = n < OS_HOST_MECHANISMS ? n : OS_HOST_MECHANISMS;
    memcpy(out, all, k * sizeof *out);
    return k;
}
