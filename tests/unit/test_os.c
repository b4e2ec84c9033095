/* os.c: the platform seam, each way it may take on any kernel. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "os/os.h"

#include <errno.h>
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(close_range_closes), cmocka_unit_test(proc_walk_closes),
        cmocka_unit_test(counting_closes),    cmocka_unit_test(close_range_marks),
        cmocka_unit_test(proc_walk_marks),    cmocka_unit_test(counting_marks),
        cmocka_unit_test(closes_after_fork),  cmocka_unit_test(refuses_negative),
        cmocka_unit_test(reads_own_stat),     cmocka_unit_test(reads_a_zombie),
        cmocka_unit_test(names_own_image),    cmocka_unit_test(forks_with_default_signals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
