/* os.c: the platform seam, each way it may take on any kernel. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "os/os.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* fds 40 and 41 below the line, 60 and 61 above it. */
#define LOW 50
static const int below[] = { 40, 41 }, above[] = { 60, 61 };

static void open_fds(void)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(dup2(p[i], below[i]), below[i]);
        assert_int_equal(dup2(p[i], above[i]), above[i]);
    }
    close(p[0]);
    close(p[1]);
}

static void close_fds(void)
{
    for (size_t i = 0; i < 2; i++) {
        close(below[i]);
        close(above[i]);
    }
}

static void closes(int way)
{
    os_set_fd_way(way);
    open_fds();
    assert_int_equal(os_close_from(LOW), 0);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(fcntl(below[i], F_GETFD), 0);
        assert_int_equal(fcntl(above[i], F_GETFD), -1);
        assert_int_equal(errno, EBADF);
    }
    close_fds();
    os_set_fd_way(OS_FDS_CLOSE_RANGE);
}

static void marks(int way)
{
    os_set_fd_way(way);
    open_fds();
    assert_int_equal(os_cloexec_from(LOW), 0);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(fcntl(below[i], F_GETFD), 0);
        assert_int_equal(fcntl(above[i], F_GETFD), FD_CLOEXEC);
    }
    close_fds();
    os_set_fd_way(OS_FDS_CLOSE_RANGE);
}

static void close_range_closes(void **state)
{
    (void)state;
    closes(OS_FDS_CLOSE_RANGE);
}

static void proc_walk_closes(void **state)
{
    (void)state;
    closes(OS_FDS_PROC);
}

static void counting_closes(void **state)
{
    (void)state;
    closes(OS_FDS_COUNT);
}

static void close_range_marks(void **state)
{
    (void)state;
    marks(OS_FDS_CLOSE_RANGE);
}

static void proc_walk_marks(void **state)
{
    (void)state;
    marks(OS_FDS_PROC);
}

static void counting_marks(void **state)
{
    (void)state;
    marks(OS_FDS_COUNT);
}

/* Where the callers use it: in a child between fork and exec. */
static void closes_after_fork(void **state)
{
    (void)state;
    open_fds();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        os_set_fd_way(OS_FDS_PROC);
        int bad = os_close_from(LOW) < 0 || fcntl(below[0], F_GETFD) < 0 ||
                  fcntl(below[1], F_GETFD) < 0 || fcntl(above[0], F_GETFD) >= 0 ||
                  fcntl(above[1], F_GETFD) >= 0;
        _exit(bad);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    /* The parent's are its own still. */
    assert_int_equal(fcntl(above[0], F_GETFD), 0);
    close_fds();
}

static void refuses_negative(void **state)
{
    (void)state;
    assert_int_equal(os_close_from(-1), -EINVAL);
    assert_int_equal(os_cloexec_from(-1), -EINVAL);
}

static void reads_own_stat(void **state)
{
    (void)state;
    struct os_proc_stat st;
    assert_int_equal(os_proc_stat(getpid(), &st), 0);
    assert_int_equal(st.state, 'R');
    assert_int_equal(st.ppid, getppid());
    assert_int_equal(st.session, getsid(0));
    assert_true(st.threads >= 1);
    assert_true(st.rss_pages > 0);
    assert_true(st.start_ticks > 0);
}

/* A child that has exited, not yet reaped: a zombie of the same start. */
static void reads_a_zombie(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(0);
    struct os_proc_stat st;
    for (int i = 0; i < 500; i++) {
        assert_int_equal(os_proc_stat(pid, &st), 0);
        if (st.state == 'Z')
            break;
        usleep(2000);
    }
    assert_int_equal(st.state, 'Z');
    assert_int_equal(st.ppid, getpid());
    assert_true(st.start_ticks > 0);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    assert_int_equal(os_proc_stat(pid, &st), -ENOENT);
}

static void names_own_image(void **state)
{
    (void)state;
    char path[4096], small[4];
    ssize_t n = os_exe_path(path, sizeof path);
    assert_true(n > 0);
    assert_int_equal(strlen(path), (size_t)n);
    assert_string_equal(strrchr(path, '/'), "/test_os");
    assert_int_equal(os_exe_path(small, sizeof small), -ENAMETOOLONG);
    int fd = os_exe_open(O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    struct stat a, b;
    assert_int_equal(fstat(fd, &a), 0);
    assert_int_equal(stat(path, &b), 0);
    assert_int_equal(a.st_ino, b.st_ino);
    close(fd);
}

static void on_usr1(int sig)
{
    (void)sig;
}

/* The child starts with default handlers and the mask asked for; the
 * parent keeps its own. */
static void forks_with_default_signals(void **state)
{
    (void)state;
    struct sigaction sa = { .sa_handler = on_usr1 }, was_usr1, was_pipe;
    sigset_t usr2, before, none;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    sigemptyset(&none);
    assert_int_equal(sigaction(SIGUSR1, &sa, &was_usr1), 0);
    sa.sa_handler = SIG_IGN;
    assert_int_equal(sigaction(SIGPIPE, &sa, &was_pipe), 0);
    assert_int_equal(sigprocmask(SIG_BLOCK, &usr2, &before), 0);
    for (int k = 0; k < 2; k++) {
        pid_t pid = os_fork_reset_signals(k ? &none : NULL);
        assert_true(pid >= 0);
        if (pid == 0) {
            struct sigaction now;
            sigset_t mask;
            int bad = sigaction(SIGUSR1, NULL, &now) < 0 || now.sa_handler != SIG_DFL;
            bad |= (sigaction(SIGPIPE, NULL, &now) < 0 || now.sa_handler != SIG_DFL) << 1;
            bad |= (sigprocmask(SIG_SETMASK, NULL, &mask) < 0 ||
                    sigismember(&mask, SIGUSR2) != !k || sigismember(&mask, SIGTERM))
                   << 2;
            _exit(bad);
        }
        int st;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    sigset_t mask;
    assert_int_equal(sigprocmask(SIG_SETMASK, &before, &mask), 0);
    assert_int_equal(sigismember(&mask, SIGUSR2), 1);
    assert_int_equal(sigismember(&mask, SIGTERM), 0);
    struct sigaction now;
    assert_int_equal(sigaction(SIGUSR1, &was_usr1, &now), 0);
    assert_ptr_equal(now.sa_handler, on_usr1);
    assert_int_equal(sigaction(SIGPIPE, &was_pipe, NULL), 0);
}

/* A child that is not waited for yet: os_proc_alive says it lives while it
 * runs, and not once it is a zombie; another start time (a reused pid) is
 * never it; a watch fd (where the kernel gives one) turns readable at the
 * exit. Under tests/kernel/oldkernel 4.18 the watch answers -ENOSYS. */
static void watches_a_process(void **state)
{
    (void)state;
    int go[2];
    assert_int_equal(pipe(go), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char c;
        close(go[1]);
        _exit(read(go[0], &c, 1) == 0 ? 0 : 1);
    }
    close(go[0]);
    struct os_proc_stat st;
    assert_int_equal(os_proc_stat(pid, &st), 0);
    assert_int_equal(os_proc_alive(pid, st.start_ticks), 1);
    assert_int_equal(os_proc_alive(pid, st.start_ticks + 1), 0);
    int fd = os_proc_watch_fd(pid);
    assert_true(fd >= 0 || fd == -ENOSYS || fd == -EPERM);
    struct pollfd p = { .fd = fd, .events = POLLIN };
    if (fd >= 0) {
        assert_int_equal(poll(&p, 1, 0), 0); /* not yet */
        assert_int_equal(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    }
    close(go[1]); /* it exits */
    if (fd >= 0) {
        assert_int_equal(poll(&p, 1, 5000), 1);
        close(fd);
    }
    int alive = 1;
    for (int i = 0; i < 500 && alive == 1; i++) {
        alive = os_proc_alive(pid, st.start_ticks);
        if (alive)
            usleep(2000);
    }
    assert_int_equal(alive, 0); /* a zombie: gone */
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    assert_int_equal(os_proc_alive(pid, st.start_ticks), 0);
    if (fd >= 0) /* reaped: no such process to watch */
        assert_int_equal(os_proc_watch_fd(pid), -ESRCH);
}

/* The sender of a datagram, from its credentials. */
static void reads_the_sender(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(os_cred_enable(sv[0]), 0);
    assert_int_equal(send(sv[1], "READY=1", 7, 0), 7);
    char buf[16];
    union {
        struct cmsghdr align;
        char b[OS_CRED_CMSG_ROOM];
    } control;
    struct iovec iov = { .iov_base = buf, .iov_len = sizeof buf };
    struct msghdr mh = { .msg_iov = &iov,
                         .msg_iovlen = 1,
                         .msg_control = control.b,
                         .msg_controllen = sizeof control.b };
    assert_int_equal(recvmsg(sv[0], &mh, 0), 7);
    uid_t uid = (uid_t)-1;
    pid_t pid = 0;
    assert_int_equal(os_cred_read(&mh, &uid, &pid), 0);
    assert_int_equal(uid, getuid());
    assert_int_equal(pid, getpid());
    /* Without SO_PASSCRED asked for: none. */
    assert_int_equal(send(sv[0], "x", 1, 0), 1);
    mh.msg_controllen = sizeof control.b;
    assert_int_equal(recvmsg(sv[1], &mh, 0), 1);
    assert_int_equal(os_cred_read(&mh, &uid, &pid), -ENOENT);
    close(sv[0]);
    close(sv[1]);
}

/* The host report: each mechanism once, by name, and where the kernel is
 * older (run under oldkernel) a fallback that says why. */
static void reports_the_host(void **state)
{
    (void)state;
    assert_int_equal(os_become_subreaper(), 0);
    struct os_mechanism m[OS_HOST_MECHANISMS + 2];
    assert_int_equal(os_host_report(m, OS_HOST_MECHANISMS + 2), OS_HOST_MECHANISMS);
    assert_int_equal(os_host_report(m, 2), 2);
    assert_int_equal(os_host_report(m, OS_HOST_MECHANISMS), OS_HOST_MECHANISMS);
    static const char *names[] = { "close_range", "cloexec_range", "pidfd",
                                   "sock_diag",   "subreaper",     "peer_creds" };
    for (size_t i = 0; i < OS_HOST_MECHANISMS; i++) {
        assert_string_equal(m[i].name, names[i]);
        assert_true(m[i].support == OS_NATIVE ? m[i].detail[0] == '\0' : m[i].detail[0] != '\0');
    }
    assert_int_equal(m[4].support, OS_NATIVE); /* a subreaper now */
    int fd = os_proc_watch_fd(getpid());
    assert_int_equal(m[2].support, fd >= 0 ? OS_NATIVE : OS_FALLBACK);
    if (fd >= 0)
        close(fd);
    else
        assert_non_null(strstr(m[2].detail, strerror(-fd)));
    assert_string_equal(os_support_name(OS_FALLBACK), "fallback");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(close_range_closes), cmocka_unit_test(proc_walk_closes),
        cmocka_unit_test(counting_closes),    cmocka_unit_test(close_range_marks),
        cmocka_unit_test(proc_walk_marks),    cmocka_unit_test(counting_marks),
        cmocka_unit_test(closes_after_fork),  cmocka_unit_test(refuses_negative),
        cmocka_unit_test(reads_own_stat),     cmocka_unit_test(reads_a_zombie),
        cmocka_unit_test(names_own_image),    cmocka_unit_test(forks_with_default_signals),
        cmocka_unit_test(watches_a_process),  cmocka_unit_test(reads_the_sender),
        cmocka_unit_test(reports_the_host),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
