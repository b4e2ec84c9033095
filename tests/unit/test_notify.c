/* notify.c: the sd_notify parser, and a real datagram socket on a real loop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "baton.h"
#include "loop/notify.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static void parses_known_keys(void **state)
{
    (void)state;
    char text[] = "READY=1\nSTATUS=serving 12 conns\nMAINPID=4242\nUNKNOWN=x\nFDNAME=state";
    struct notify_msg m;
    assert_int_equal(notify_parse(text, &m), 0);
    assert_true(m.ready);
    assert_false(m.stopping);
    assert_string_equal(m.status, "serving 12 conns");
    assert_int_equal(m.mainpid, 4242);
    assert_string_equal(m.fdname, "state");
}

static void refuses_malformed(void **state)
{
    (void)state;
    struct notify_msg m;
    char a[] = "READY";
    assert_int_equal(notify_parse(a, &m), -EINVAL);
    char b[] = "MAINPID=abc";
    assert_int_equal(notify_parse(b, &m), -EINVAL);
    char c[] = "MAINPID=-1";
    assert_int_equal(notify_parse(c, &m), -EINVAL);
    char d[] = "READY=0";
    assert_int_equal(notify_parse(d, &m), 0);
    assert_false(m.ready);
}

static int got, got_ready;
static pid_t got_pid;
static char got_status[64];

static void on_msg(struct notify *n, pid_t pid, const struct notify_msg *m, int *fds, size_t nfds)
{
    (void)n;
    for (size_t i = 0; i < nfds; i++)
        close(fds[i]);
    got++;
    got_pid = pid;
    got_ready = m->ready;
    snprintf(got_status, sizeof got_status, "%s", m->status ? m->status : "");
}

static void receives_with_credentials_and_drops_bad(void **state)
{
    (void)state;
    char dir[] = "/tmp/baton-test-notify-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/notify", dir);
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct notify n;
    assert_int_equal(notify_open(&n, &loop, path, on_msg), 0);
    n.data = NULL;

    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    setenv("NOTIFY_SOCKET", path, 1);
    assert_int_equal(baton_notify("READY=1\nSTATUS=up"), 1);
    /* A datagram with a NUL byte, and one over the size limit: dropped. */
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un un = { .sun_family = AF_UNIX };
    strcpy(un.sun_path, path);
    assert_int_equal(sendto(fd, "READY=1\0x", 9, 0, (struct sockaddr *)&un, sizeof un), 9);
    char big[NOTIFY_MAX + 100];
    memset(big, 'A', sizeof big);
    memcpy(big, "STATUS=", 7);
    assert_int_equal(sendto(fd, big, sizeof big, 0, (struct sockaddr *)&un, sizeof un),
                     (ssize_t)sizeof big);
    assert_int_equal(sendto(fd, "no equals sign", 14, 0, (struct sockaddr *)&un, sizeof un), 14);
    close(fd);

    for (int i = 0; i < 10 && n.rejected + (unsigned long)got < 4; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(got, 1);
    assert_int_equal(got_pid, getpid());
    assert_true(got_ready);
    assert_string_equal(got_status, "up");
    assert_int_equal(n.rejected, 3);

    notify_close(&n);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    assert_int_equal(stat(path, &st), -1);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_known_keys),
        cmocka_unit_test(refuses_malformed),
        cmocka_unit_test(receives_with_credentials_and_drops_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
