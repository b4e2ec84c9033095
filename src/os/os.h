#ifndef BATON_OS_H
#define BATON_OS_H

/* The platform seam: the few low-level facts of the kernel that baton's
 * other folders need, each written once here (Linux: os/linux.c). What the
 * rest of the supervisor may not assume of the kernel under it (a call
 * newer than the oldest kernel it runs on, a /proc file's layout) stays on
 * this side.
 *
 * What is here:
 *   fds            os_close_from, os_cloexec_from: shed fds before an exec
 *   unix sockets   os_peer_uid: who connected; os_cred_enable,
 *                  os_cred_read: who sent a datagram
 *   processes      os_fork_reset_signals: a child with a new process's
 *                  signals; os_proc_stat: /proc/PID/stat's fields;
 *                  os_proc_watch_fd, os_proc_alive: watch a process that
 *                  is not our child; os_become_subreaper; os_set_name
 *   own image      os_exe_path, os_exe_open, OS_EXE_RUNNING
 *   the host       os_host_report: what runs natively, what falls back,
 *                  what is lost
 * Sealed shared memory is libbaton/shmfd.h's: apps link it, and libbaton
 * depends on libc alone.
 *
 * Each mechanism tries the best call the platform has and falls back when
 * the kernel or a sandbox refuses it (ENOSYS, EPERM, EACCES, or EINVAL for
 * a flag newer than the kernel); docs/portability.md says per platform
 * what each costs and what is lost.
 * Beside it in os/, per platform: conns.h (a generation's connections,
 * queues and processes: linux_conns.c with linux_sockdiag.c and
 * linux_procnet.c, freebsd_conns.c) and portholder.h (who holds a port:
 * linux_portholder.c, freebsd_portholder.c). Passing
 * fds over a socket is base/fdpass.h: libc alone, no kernel fact to hide.
 *
 * Errors are negative errno values, returned; nothing sets errno for the
 * caller to read. Functions marked async-signal-safe may run in a child
 * between fork and exec: they take no lock and allocate nothing. */

#include <signal.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

/* -- fds -------------------------------------------------------------- */

/* Closes every fd >= LOWFD. Returns 0 or a negative errno.
 *
 * close_range(2) where the kernel has it (5.9); where it answers ENOSYS
 * (an older kernel, a seccomp filter), EINVAL or EPERM, the fds listed in
 * /proc/self/fd; without /proc, every fd up to the open-file limit.
 * Async-signal-safe: the walk reads the directory with getdents64 into a
 * buffer on the stack, not with opendir (which allocates). */
int os_close_from(int lowfd);

/* Marks every fd >= LOWFD close-on-exec, so an exec leaves them behind
 * while the fds stay usable until then. Returns 0 or a negative errno.
 * close_range(CLOSE_RANGE_CLOEXEC) where the kernel has it (5.11), else
 * the same fallbacks as os_close_from. Async-signal-safe. */
int os_cloexec_from(int lowfd);

/* The way the two above take, for tests, so each fallback runs on any
 * kernel: OS_FDS_CLOSE_RANGE (the default) tries close_range first,
 * OS_FDS_PROC starts at /proc/self/fd, OS_FDS_COUNT counts up to the
 * open-file limit. */
enum { OS_FDS_CLOSE_RANGE, OS_FDS_PROC, OS_FDS_COUNT };
void os_set_fd_way(int way);

/* -- unix sockets ----------------------------------------------------- */

/* Who is at the other end of unix socket FD, as the kernel saw it when
 * the peer connected (SO_PEERCRED): its effective uid in *UID and its pid
 * in *PID, 0 where the platform does not say (FreeBSD before 13); either
 * may be NULL. Returns 0 or a negative errno. */
int os_peer_uid(int fd, uid_t *uid, pid_t *pid);

/* Asks the kernel to attach the sender's credentials to every datagram
 * received on unix datagram socket FD (Linux SO_PASSCRED). On FreeBSD
 * there is nothing to ask: the sender attaches SCM_CREDS itself (libbaton's
 * baton_notify does) and the kernel fills it in. Returns 0 or a negative
 * errno. */
int os_cred_enable(int fd);

/* Control buffer bytes recvmsg needs for the credentials os_cred_enable
 * asks for (any platform's): add it to the room for passed fds. */
#define OS_CRED_CMSG_ROOM 512

/* The sender of a datagram received on a socket os_cred_enable was called
 * on, from MSG's control data: its uid (effective on BSD, real on Linux,
 * as each kernel reports it) in *UID and its pid in *PID (FreeBSD: from
 * the SCM_CREDS the sender attached).
 * Returns 0, or -ENOENT when MSG carries no credentials. */
int os_cred_read(const struct msghdr *msg, uid_t *uid, pid_t *pid);

/* -- processes -------------------------------------------------------- */

/* fork, the child's signals set as a new process's: every disposition
 * SIG_DFL (an ignored one too) and the mask CHILD_MASK (NULL: the
 * caller's). Every signal stays blocked across the fork, so no handler of
 * the parent's runs in the child before the reset (libuv's would write
 * into the parent's signal pipe). Returns the child's pid in the parent,
 * 0 in the child, or a negative errno. The child may call
 * async-signal-safe functions only, as after any fork. */
pid_t os_fork_reset_signals(const sigset_t *child_mask);

struct os_proc_stat { /* /proc/PID/stat: the fields baton reads */
    char state;       /* 'R', 'S', 'D', 'Z' (a zombie), ... */
    pid_t ppid;
    pid_t session;
    long threads;
    long rss_pages;                  /* resident set, in pages */
    unsigned long long utime, stime; /* CPU time, clock ticks (_SC_CLK_TCK) */
    /* Its start, clock ticks after boot: with the pid, it names one
     * process and no later one that gets the same pid. */
    unsigned long long start_ticks;
    /* Its effective uid (Linux: the owner of /proc/PID, which is that;
     * FreeBSD: ki_uid): whose process a pid in a file names. */
    uid_t uid;
};

/* Reads process PID's stat. Returns 0, -ENOENT when there is no such
 * process, -EINVAL when the file does not parse, or another negative
 * errno. */
int os_proc_stat(pid_t pid, struct os_proc_stat *st);

/* An fd that turns readable once process PID has exited, for a process
 * that is not our child (no SIGCHLD, no wait): Linux pidfd_open (5.3),
 * BSD a kqueue holding EVFILT_PROC/NOTE_EXIT. Close-on-exec; the caller
 * owns it and only polls it for readability. Returns the fd, or a
 * negative errno: -ESRCH when PID is gone already, -ENOSYS (or -EPERM,
 * -EACCES: a sandbox) when the host gives no such fd, and then the caller
 * polls os_proc_alive on a short timer instead. */
int os_proc_watch_fd(pid_t pid);

/* Whether PID is still the process that started at START_TICKS (as
 * os_proc_stat gives it): 1 it is, 0 it is gone or a zombie, or its pid
 * now names another process, or a negative errno. kill(PID, 0) then its
 * start time, so a reused pid is never taken for it. */
int os_proc_alive(pid_t pid, unsigned long long start_ticks);

/* Makes this process the reaper of its descendants' orphans, which then
 * become its children to wait for (Linux PR_SET_CHILD_SUBREAPER, 3.4;
 * FreeBSD procctl PROC_REAP_ACQUIRE). Returns 0 or a negative errno. */
int os_become_subreaper(void);

/* The name ps shows for this process (Linux: up to 15 bytes; a longer one
 * is cut). Best effort: returns 0 or a negative errno. */
int os_set_name(const char *name);

/* -- this process's image ------------------------------------------------ */

/* A path that names the image this process runs, whatever became of its
 * file since (replaced by a package upgrade, deleted): for execve. On
 * FreeBSD, procfs's name for it (procfs must be mounted). */
#ifdef __FreeBSD__
#define OS_EXE_RUNNING "/proc/curproc/file"
#else
#define OS_EXE_RUNNING "/proc/self/exe"
#endif

/* The path this image was started from, NUL-terminated in BUF. Its file
 * may have been replaced since (a package upgrade renames a new one over
 * it: the one a restart wants); one deleted since is named all the same,
 * without the kernel's " (deleted)". Returns its length, or a negative
 * errno (-ENAMETOOLONG when LEN is too short). */
ssize_t os_exe_path(char *buf, size_t len);

/* The image this process runs, opened with FLAGS (O_RDONLY, O_CLOEXEC):
 * the same file even once its path names another. Returns the fd or a
 * negative errno. */
int os_exe_open(int flags);

/* -- the host ---------------------------------------------------------- */

enum os_support {
    OS_NATIVE,   /* the best call runs */
    OS_FALLBACK, /* refused; a slower way gives the same result */
    OS_LOST,     /* refused, and nothing gives it: DETAIL says what is lost */
};

struct os_mechanism {
    const char *name; /* "close_range", "cloexec_range", "pidfd", "sock_diag",
                       * "subreaper", "peer_creds", "memfd_seals" */
    enum os_support support;
    char detail[120]; /* what runs instead, or what is lost; "" when native */
};

/* What this host gives, mechanism by mechanism, probed now (each probe
 * a call or two with nothing left behind), into up to N entries of OUT.
 * Returns how many were filled. Sealed memory is libbaton's to probe
 * (shmfd.h): the caller adds it. */
#define OS_HOST_MECHANISMS 6
size_t os_host_report(struct os_mechanism *out, size_t n);

/* "native", "fallback" or "lost". */
const char *os_support_name(enum os_support s);

#endif
