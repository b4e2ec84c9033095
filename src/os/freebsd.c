/* freebsd.c: the platform seam on FreeBSD (see os.h), from FreeBSD's own
 * manual pages: closefrom(2), fcntl(2), unix(4) (LOCAL_PEERCRED),
 * sysctl(3) (kern.proc.*), procctl(2). Written for FreeBSD 12.1, the
 * oldest release baton supports there: it has neither close_range (12.2)
 * nor memfd_create (13.0), so nothing here needs them (shared memory is
 * libbaton/shmfd.c's: shm_open(SHM_ANON) there, without seals). Not
 * compiled on Linux: scripts/check_freebsd.sh checks it against FreeBSD's
 * headers. */
#include "os/os.h"

#include "os/conns.h"

#include <sys/param.h> /* __FreeBSD_version, before the others */
#include <sys/event.h>
#include <sys/procctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/sysctl.h>
#include <sys/time.h>
#include <sys/ucred.h>
#include <sys/un.h>
#include <sys/user.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* -- fds -------------------------------------------------------------- */

static int fd_way = OS_FDS_CLOSE_RANGE;

void os_set_fd_way(int way)
{
    fd_way = way;
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

/* FreeBSD releases the fd whatever close(2) answers, as Linux does. */
static int close_one(int fd)
{
    (void)close(fd);
    return 0;
}

/* ONE for every open fd >= LOWFD, found by counting up. FreeBSD has no
 * /proc/self/fd to list them (procfs is optional and lists no fds;
 * /dev/fd shows only 0-2 unless fdescfs is mounted on it), so the walk
 * stops once it has met as many open fds as kern.proc.nfds says this
 * process holds, and at the open-file limit in any case. Both are plain
 * system calls: safe after fork. An fd opened by another thread while this
 * runs may be missed, as with any walk. */
static int each_open(int lowfd, int (*one)(int fd))
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -errno;
    long max = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > INT_MAX ? INT_MAX : (long)rl.rlim_cur;
    int mib[4] = { CTL_KERN, KERN_PROC, KERN_PROC_NFDS, 0 }; /* 0: this process */
    int nfds = 0;
    size_t len = sizeof nfds;
    long left = LONG_MAX; /* open fds not met yet; unknown: walk to the limit */
    if (fd_way != OS_FDS_COUNT && sysctl(mib, 4, &nfds, &len, NULL, 0) == 0 && nfds >= 0)
        left = nfds;
    int err = 0;
    for (long fd = 0; fd < max && left > 0; fd++) {
        if (fcntl((int)fd, F_GETFD) < 0)
            continue; /* EBADF: not open */
        left--;
        if (fd < lowfd)
            continue;
        int r = one((int)fd);
        if (r < 0 && !err)
            err = r;
    }
    return err;
}

int os_close_from(int lowfd)
{
    if (lowfd < 0)
        return -EINVAL;
    if (fd_way == OS_FDS_CLOSE_RANGE) {
        /* closefrom(2), a system call since FreeBSD 8.0: it returns
         * nothing and ignores every error, and leaves no fd open. */
        closefrom(lowfd);
        return 0;
    }
    return each_open(lowfd, close_one);
}

int os_cloexec_from(int lowfd)
{
    if (lowfd < 0)
        return -EINVAL;
    /* close_range(CLOSE_RANGE_CLOEXEC) came with FreeBSD 13.1: on 12 every
     * way is the walk. */
    return each_open(lowfd, cloexec_one);
}

/* -- unix sockets ----------------------------------------------------- */

int os_peer_uid(int fd, uid_t *uid, pid_t *pid)
{
    /* unix(4): LOCAL_PEERCRED gives the credentials the peer had when it
     * connected (or listened): struct xucred, its effective uid. The
     * peer's pid joined it in FreeBSD 13 (cr_pid); before, it is unknown
     * and *PID is 0. */
    struct xucred cr;
    socklen_t len = sizeof cr;
    memset(&cr, 0, sizeof cr);
    /* The level is 0 (SOL_LOCAL, named in <sys/un.h> from FreeBSD 13). */
    if (getsockopt(fd, 0, LOCAL_PEERCRED, &cr, &len) < 0)
        return -errno;
    if (len != sizeof cr || cr.cr_version != XUCRED_VERSION)
        return -EPROTO;
    if (uid)
        *uid = cr.cr_uid;
    if (pid) {
#if __FreeBSD_version >= 1300000
        *pid = cr.cr_pid;
#else
        *pid = 0;
#endif
    }
    return 0;
}

/* unix(4) gives a datagram's receiver its sender's credentials two ways,
 * which exclude each other: LOCAL_CREDS on the receiver makes the kernel
 * attach a struct sockcred to every datagram, uids but no pid (the pid
 * came with FreeBSD 13's sockcred2), and discards any credentials a
 * sender attached; without it, a sender may attach an SCM_CREDS struct
 * cmsgcred, which the kernel fills in, pid included, so it cannot lie.
 * baton needs the pid to tell which generation spoke, and libbaton's
 * senders attach the cmsgcred (libbaton/notify.c): so LOCAL_CREDS stays
 * off, and a datagram whose sender attached nothing carries no
 * credentials (os_cred_read: -ENOENT). */
int os_cred_enable(int fd)
{
    (void)fd;
    return 0;
}

_Static_assert(CMSG_SPACE(sizeof(struct cmsgcred)) <= OS_CRED_CMSG_ROOM,
               "room for the credentials");

int os_cred_read(const struct msghdr *msg, uid_t *uid, pid_t *pid)
{
    /* CMSG_NXTHDR takes a non-const header; it only reads it. */
    struct msghdr *mh = (struct msghdr *)msg;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_CREDS ||
            c->cmsg_len != CMSG_LEN(sizeof(struct cmsgcred)))
            continue;
        struct cmsgcred cr;
        memcpy(&cr, CMSG_DATA(c), sizeof cr);
        if (uid)
            *uid = cr.cmcred_euid;
        if (pid)
            *pid = cr.cmcred_pid;
        return 0;
    }
    return -ENOENT;
}

/* -- processes -------------------------------------------------------- */

pid_t os_fork_reset_signals(const sigset_t *child_mask)
{
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    pid_t pid = fork();
    if (pid == 0) {
        /* NSIG counts the old signals only: the real-time ones go up to
         * SIGRTMAX. The unused numbers between answer EINVAL: no matter. */
        for (int sig = 1; sig <= SIGRTMAX; sig++)
            signal(sig, SIG_DFL);
        sigprocmask(SIG_SETMASK, child_mask ? child_mask : &old, NULL);
        return 0;
    }
    int err = errno;
    sigprocmask(SIG_SETMASK, &old, NULL);
    return pid < 0 ? -err : pid;
}

/* The kernel's boot time, to turn a process's start (a wall-clock time in
 * kinfo_proc) into clock ticks after boot as os.h promises. Read once:
 * kern.boottime moves only when the clock is stepped, and a value fixed
 * for this process's life is what keeps start_ticks comparable. */
static int boot_time(struct timeval *tv)
{
    static struct timeval boot;
    static int known;
    if (!known) {
        int mib[2] = { CTL_KERN, KERN_BOOTTIME };
        size_t len = sizeof boot;
        if (sysctl(mib, 2, &boot, &len, NULL, 0) < 0)
            return -errno;
        known = 1;
    }
    *tv = boot;
    return 0;
}

static unsigned long long tv_ticks(const struct timeval *tv, long hz)
{
    if (tv->tv_sec < 0)
        return 0;
    return (unsigned long long)tv->tv_sec * (unsigned long long)hz +
           (unsigned long long)tv->tv_usec * (unsigned long long)hz / 1000000ULL;
}

int os_proc_stat(pid_t pid, struct os_proc_stat *st)
{
    /* sysctl(3) kern.proc.pid.PID: one struct kinfo_proc (user.h). */
    struct kinfo_proc kp;
    size_t len = sizeof kp;
    int mib[4] = { CTL_KERN, KERN_PROC, KERN_PROC_PID, (int)pid };
    if (sysctl(mib, 4, &kp, &len, NULL, 0) < 0)
        return errno == ESRCH ? -ENOENT : -errno;
    if (len == 0)
        return -ENOENT; /* no such process */
    if (len != sizeof kp || kp.ki_structsize != (int)sizeof kp)
        return -EINVAL;
    long hz = sysconf(_SC_CLK_TCK);
    if (hz <= 0)
        return -EINVAL;
    memset(st, 0, sizeof *st);
    /* proc.h's states, as the letters of Linux's stat that callers read:
     * a zombie is 'Z', a stopped process 'T', a runnable one 'R'. */
    switch (kp.ki_stat) {
    case SRUN: st->state = 'R'; break;
    case SSTOP: st->state = 'T'; break;
    case SZOMB: st->state = 'Z'; break;
    case SIDL: st->state = 'I'; break;
    case SWAIT: st->state = 'W'; break;
    case SLOCK: st->state = 'L'; break;
    default: st->state = 'S'; break; /* SSLEEP */
    }
    st->ppid = kp.ki_ppid;
    st->session = kp.ki_sid;
    st->uid = kp.ki_uid;
    st->threads = kp.ki_numthreads;
    st->rss_pages = (long)kp.ki_rssize;
    st->utime = tv_ticks(&kp.ki_rusage.ru_utime, hz);
    st->stime = tv_ticks(&kp.ki_rusage.ru_stime, hz);
    struct timeval boot, since;
    int r = boot_time(&boot);
    if (r < 0)
        return r;
    timersub(&kp.ki_start, &boot, &since);
    st->start_ticks = tv_ticks(&since, hz);
    return 0;
}

/* kqueue(2): an EVFILT_PROC filter with NOTE_EXIT fires when the process
 * exits, for any process we may see, child or not; the kqueue's fd polls
 * readable while the event is pending. A zombie already dead fires at
 * once. The kqueue is not inherited across fork, but exec keeps it: hence
 * FD_CLOEXEC. ESRCH when no such process. */
int os_proc_watch_fd(pid_t pid)
{
    int kq = kqueue();
    if (kq < 0)
        return -errno;
    struct kevent ev;
    EV_SET(&ev, (uintptr_t)pid, EVFILT_PROC, EV_ADD, NOTE_EXIT, 0, NULL);
    if (fcntl(kq, F_SETFD, FD_CLOEXEC) < 0 || kevent(kq, &ev, 1, NULL, 0, NULL) < 0) {
        int e = errno;
        close(kq);
        return -e;
    }
    return kq;
}

int os_become_subreaper(void)
{
    /* procctl(2): orphans of descendants forked from now on come to us.
     * EBUSY: this process is a reaper already. */
    if (procctl(P_PID, getpid(), PROC_REAP_ACQUIRE, NULL) < 0 && errno != EBUSY)
        return -errno;
    return 0;
}

int os_set_name(const char *name)
{
    /* setproctitle(3): what ps shows as the command line; a leading '-'
     * leaves the program's name out. The command name itself (ps -o comm)
     * only an exec changes on FreeBSD. */
    setproctitle("-%s", name);
    return 0;
}

/* -- this process's image ------------------------------------------------ */

ssize_t os_exe_path(char *buf, size_t len)
{
    if (len < 2)
        return -ENAMETOOLONG;
    /* kern.proc.pathname.-1: this process's image, from the name cache
     * (sysctl(3)); ENOMEM when BUF is too short. */
    int mib[4] = { CTL_KERN, KERN_PROC, KERN_PROC_PATHNAME, -1 };
    size_t n = len;
    if (sysctl(mib, 4, buf, &n, NULL, 0) < 0)
        return errno == ENOMEM ? -ENAMETOOLONG : -errno;
    if (n == 0 || n > len || buf[n - 1] != '\0')
        return -ENOENT; /* the kernel could not name it */
    return (ssize_t)(n - 1);
}

int os_exe_open(int flags)
{
    /* procfs(5)'s name of the running image, where procfs is mounted (it
     * is not by default): the same file even once its path names another.
     * Else the path the image was started from, which after a package
     * upgrade may be the new file: FreeBSD offers no other handle on the
     * running image. (OS_EXE_RUNNING is Linux's name: see os.h.) */
    int fd = open("/proc/curproc/file", flags);
    if (fd < 0) {
        char path[PATH_MAX];
        ssize_t n = os_exe_path(path, sizeof path);
        if (n < 0)
            return (int)n;
        fd = open(path, flags);
    }
    if (fd < 0)
        return -errno;
    return fd;
}

/* -- the host ---------------------------------------------------------- */

static void set(struct os_mechanism *m, const char *name, enum os_support s, const char *detail)
{
    *m = (struct os_mechanism){ .name = name, .support = s };
    snprintf(m->detail, sizeof m->detail, "%s", detail);
}

static void probe_pidfd(struct os_mechanism *m)
{
    int fd = os_proc_watch_fd(getpid());
    if (fd >= 0) {
        close(fd);
        set(m, "pidfd", OS_NATIVE, ""); /* kqueue EVFILT_PROC, BSD's own way */
        return;
    }
    char d[sizeof m->detail];
    snprintf(d, sizeof d, "kqueue EVFILT_PROC: %s; an adopted generation is polled", strerror(-fd));
    set(m, "pidfd", OS_FALLBACK, d);
}

static void probe_conns(struct os_mechanism *m)
{
    uint64_t so;
    /* A listener on port 0, which none is: -ENOENT says the table read. */
    int r = conns_tcp_listener(AF_INET, 0, &so);
    if (r == 0 || r == -ENOENT) {
        set(m, "sock_diag", OS_FALLBACK, "the pcblist and kern.file sysctls: whole tables a poll");
        return;
    }
    char d[sizeof m->detail];
    snprintf(d, sizeof d, "net.inet.tcp.pcblist: %s: connections per generation unknown",
             strerror(-r));
    set(m, "sock_diag", OS_LOST, d);
}

static void probe_subreaper(struct os_mechanism *m)
{
    struct procctl_reaper_status rs;
    memset(&rs, 0, sizeof rs);
    if (procctl(P_PID, getpid(), PROC_REAP_STATUS, &rs) == 0 &&
        (rs.rs_flags & REAPER_STATUS_OWNED)) {
        set(m, "subreaper", OS_NATIVE, "");
        return;
    }
    set(m, "subreaper", OS_LOST, "not a reaper: orphans of an app go to init, not to baton");
}

static void probe_peer_creds(struct os_mechanism *m)
{
    int sv[2], err = 0;
    uid_t uid;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        err = errno;
    else {
        err = -os_peer_uid(sv[0], &uid, NULL);
        close(sv[0]);
        close(sv[1]);
    }
    char d[sizeof m->detail];
    if (err)
        snprintf(d, sizeof d, "LOCAL_PEERCRED: %s: control connections cannot be told apart",
                 strerror(err));
    else
        snprintf(
            d, sizeof d,
            "notify: only senders attaching SCM_CREDS (libbaton) heard; a peer's pid: FreeBSD 13");
    set(m, "peer_creds", OS_LOST, d);
}

size_t os_host_report(struct os_mechanism *out, size_t n)
{
    struct os_mechanism all[OS_HOST_MECHANISMS];
    /* The names are the mechanisms' roles, Linux's calls: closefrom(2)
     * and kqueue are FreeBSD's native ways to the same ends. */
    set(&all[0], "close_range", OS_NATIVE, "");
    set(&all[1], "cloexec_range", OS_FALLBACK,
        "no close_range(CLOEXEC) before FreeBSD 13.1: fcntl per fd up to the last open one");
    probe_pidfd(&all[2]);
    probe_conns(&all[3]);
    probe_subreaper(&all[4]);
    probe_peer_creds(&all[5]);
    size_t k = n < OS_HOST_MECHANISMS ? n : OS_HOST_MECHANISMS;
    memcpy(out, all, k * sizeof *out);
    return k;
}
