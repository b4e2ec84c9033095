/* fdpass.c: fds through a real socketpair, past SCM_MAX_FD and past the
 * receiver's open-file limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "base/fdpass.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define MANY 300 /* more than one message holds */

/* N memfds, the Ith of size I + 1: which one arrived where shows. */
static void make_fds(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        fds[i] = memfd_create("fdpass", MFD_CLOEXEC);
        assert_true(fds[i] >= 0);
        assert_int_equal(ftruncate(fds[i], (off_t)i + 1), 0);
    }
}

static void close_fds(const int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        close(fds[i]);
}

static void all_arrive(int type)
{
    static int out[MANY], in[MANY];
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv), 0);
    make_fds(out, MANY);
    assert_int_equal(fdpass_send_all(sv[0], out, MANY), 0);
    assert_int_equal(fdpass_recv_all(sv[1], in, MANY), 0);
    for (size_t i = 0; i < MANY; i++) {
        struct stat st;
        assert_int_equal(fstat(in[i], &st), 0);
        assert_int_equal(st.st_size, (off_t)i + 1);
        assert_int_equal(fcntl(in[i], F_GETFD), FD_CLOEXEC);
    }
    close_fds(out, MANY);
    close_fds(in, MANY);
    close(sv[0]);
    close(sv[1]);
}

static void many_arrive_on_a_stream(void **state)
{
    (void)state;
    all_arrive(SOCK_STREAM);
}

static void many_arrive_as_packets(void **state)
{
    (void)state;
    all_arrive(SOCK_SEQPACKET);
}

/* One message: its data and its fds; more fds than the receiver takes are
 * closed, not leaked; more than the kernel allows is refused here. */
static void one_message(void **state)
{
    (void)state;
    int sv[2], out[FDPASS_MAX + 1], in[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    make_fds(out, FDPASS_MAX + 1);
    assert_int_equal(fdpass_send(sv[0], NULL, 0, "x", 1, out, FDPASS_MAX + 1), -EINVAL);
    assert_int_equal(fdpass_send(sv[0], NULL, 0, "head", 4, out, 3), 4);
    char buf[16];
    size_t n;
    assert_int_equal(fdpass_recv(sv[1], buf, sizeof buf, in, 2, &n, 0), 4);
    assert_memory_equal(buf, "head", 4);
    assert_int_equal(n, 2);
    struct stat st;
    assert_int_equal(fstat(in[1], &st), 0);
    assert_int_equal(st.st_size, 2);
    close_fds(in, 2);
    /* Nothing waiting: a non-blocking read says so. */
    assert_int_equal(fdpass_recv(sv[1], buf, sizeof buf, in, 2, &n, MSG_DONTWAIT), -EAGAIN);
    /* A message without fds. */
    assert_int_equal(fdpass_send(sv[0], NULL, 0, "E", 1, NULL, 0), 1);
    assert_int_equal(fdpass_recv(sv[1], buf, sizeof buf, in, 2, &n, 0), 1);
    assert_int_equal(n, 0);
    close_fds(out, FDPASS_MAX + 1);
    close(sv[0]);
    close(sv[1]);
}

/* A receiver at its open-file limit: the kernel cuts the fds, and the
 * receive says so rather than return fewer. */
static void cut_fds_are_an_error(void **state)
{
    (void)state;
    int sv[2], out[8], in[8];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    make_fds(out, 8);
    assert_int_equal(fdpass_send(sv[0], NULL, 0, "x", 1, out, 8), 1);
    int top = fcntl(0, F_DUPFD, 0); /* the lowest free fd: those below are open */
    assert_true(top >= 0);
    close(top);
    struct rlimit was, low;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &was), 0);
    low = was;
    low.rlim_cur = (rlim_t)top + 2; /* room for two of the eight */
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    char c;
    size_t n = 99;
    ssize_t r = fdpass_recv(sv[1], &c, 1, in, 8, &n, 0);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &was), 0);
    assert_int_equal(r, -EMSGSIZE);
    assert_int_equal(n, 0);
    /* The two that came are closed again. */
    assert_int_equal(fcntl(top, F_GETFD), -1);
    assert_int_equal(fcntl(top + 1, F_GETFD), -1);
    close_fds(out, 8);
    close(sv[0]);
    close(sv[1]);
}

/* The sender hangs up before the last: nothing half-received stays open. */
static void short_count_is_an_error(void **state)
{
    (void)state;
    int sv[2], out[3], in[5];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    make_fds(out, 3);
    assert_int_equal(fdpass_send_all(sv[0], out, 3), 0);
    close(sv[0]);
    int top = fcntl(0, F_DUPFD, 0);
    close(top);
    assert_int_equal(fdpass_recv_all(sv[1], in, 5), -EPIPE);
    assert_int_equal(fcntl(top, F_GETFD), -1);
    close_fds(out, 3);
    close(sv[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(many_arrive_on_a_stream),
        cmocka_unit_test(many_arrive_as_packets),
        cmocka_unit_test(one_message),
        cmocka_unit_test(cut_fds_are_an_error),
        cmocka_unit_test(short_count_is_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
