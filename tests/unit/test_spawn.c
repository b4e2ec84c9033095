/* spawn.c: a real child sees the systemd socket-activation layout. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "loop/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static char err[512];

static int wait_code(pid_t pid)
{
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The child checks, in sh, what an app would check. Exit code = first failed check. */
static const char *check_script =
    "[ \"$LISTEN_PID\" = \"$$\" ] || exit 10\n"
    "[ \"$LISTEN_FDS\" = 2 ] || exit 11\n"
    "[ \"$LISTEN_FDNAMES\" = a:b ] || exit 12\n"
    "[ \"$EXTRA\" = yes ] || exit 13\n"
    "[ -S /proc/self/fd/3 ] || [ \"$(readlink /proc/self/fd/3 | cut -c1-7)\" = socket: ] || exit 14\n"
    "[ \"$(readlink /proc/self/fd/3)\" = \"$WANT3\" ] || exit 15\n"
    "[ \"$(readlink /proc/self/fd/4)\" = \"$WANT4\" ] || exit 16\n"
    "[ ! -e /proc/self/fd/$LEAK ] || exit 17\n"
    "[ \"$(readlink /proc/self/fd/0)\" = /dev/null ] || exit 18\n"
    "[ \"$(pwd)\" = /tmp ] || exit 19\n"
    "[ \"$(ps -o pgid= -p $$ | tr -d ' ')\" = \"$$\" ] || exit 20\n"
    "exit 0\n";

static void child_gets_fds_env_and_own_group(void **state)
{
    (void)state;
    int s1[2], s2[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s1), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s2), 0);
    /* Put the sources where the targets go, crossed: fd 4 must become fd 3
     * and fd 3 fd 4, which a naive dup2 loop gets wrong. */
    int a = s1[0], b = s2[0];
    int t3 = fcntl(a, F_DUPFD_CLOEXEC, 100), t4 = fcntl(b, F_DUPFD_CLOEXEC, 100);
    dup3(t3, 4, O_CLOEXEC);
    dup3(t4, 3, O_CLOEXEC);
    char want3[64], want4[64], link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", 4);
    ssize_t n = readlink(link, want3, sizeof want3 - 1);
    want3[n] = '\0';
    snprintf(link, sizeof link, "/proc/self/fd/%d", 3);
    n = readlink(link, want4, sizeof want4 - 1);
    want4[n] = '\0';
    setenv("WANT3", want3, 1);
    setenv("WANT4", want4, 1);
    setenv("LISTEN_PID", "1", 1); /* a stale value from our own environment is replaced */
    /* An fd without FD_CLOEXEC must still not reach the app. */
    int leak = open("/dev/null", O_RDONLY);
    char leakstr[16];
    snprintf(leakstr, sizeof leakstr, "%d", leak);
    setenv("LEAK", leakstr, 1);

    int fds[] = { 4, 3 };
    char *argv[] = { "sh", "-c", (char *)check_script, NULL };
    char *env[] = { "EXTRA=yes", "LISTEN_FDS=2", "LISTEN_FDNAMES=a:b", NULL };
    struct launch_plan o = { .argv = argv, .env = env, .cwd = "/tmp", .fds = fds, .nfds = 2 };
    pid_t pid;
    assert_int_equal(spawn_process(&o, &pid, err, sizeof err), 0);
    assert_int_equal(wait_code(pid), 0);
    close(leak);
    close(3);
    close(4);
    close(t3);
    close(t4);
    close(s1[1]);
    close(s2[1]);
    close(a);
    close(b);
}

static void missing_command_is_an_error_not_exit_127(void **state)
{
    (void)state;
    char *argv[] = { "baton-no-such-command", NULL };
    char *env[] = { NULL };
    struct launch_plan o = { .argv = argv, .env = env };
    pid_t pid;
    assert_int_equal(spawn_process(&o, &pid, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, "baton-no-such-command"));
    assert_non_null(strstr(err, "not found"));

    char *argv2[] = { "/nonexistent/app", NULL };
    o.argv = argv2;
    assert_int_equal(spawn_process(&o, &pid, err, sizeof err), -ENOENT);

    char *argv3[] = { "true", NULL };
    o.argv = argv3;
    o.cwd = "/nonexistent-dir";
    assert_int_equal(spawn_process(&o, &pid, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, "/nonexistent-dir"));
    /* The failed child was reaped: nothing left to wait for. */
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(child_gets_fds_env_and_own_group),
        cmocka_unit_test(missing_command_is_an_error_not_exit_127),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
