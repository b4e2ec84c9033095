/* fdstore.c: names, limits, the state name's replacement rule, and the
 * hang-up polling on a real loop with real sockets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "loop/fdstore.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

static int memfd(void)
{
    int fd = memfd_create("t", MFD_CLOEXEC);
    assert_true(fd >= 0);
    return fd;
}

static int open_fds(void)
{
    int n = 0;
    for (int fd = 0; fd < 1024; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            n++;
    return n;
}

static void names_follow_systemd(void **state)
{
    (void)state;
    assert_true(fdstore_name_valid("state"));
    assert_true(fdstore_name_valid("conn-7.a_b"));
    assert_false(fdstore_name_valid(""));
    assert_false(fdstore_name_valid("a:b"));
    assert_false(fdstore_name_valid("a b"));
    assert_false(fdstore_name_valid("tab\there"));
    char longname[300];
    memset(longname, 'a', sizeof longname);
    longname[256] = '\0';
    assert_false(fdstore_name_valid(longname));
    longname[255] = '\0';
    assert_true(fdstore_name_valid(longname));
}

static void state_replaces_others_accumulate(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct fdstore st;
    fdstore_init(&st, &loop, 4, "state");
    char err[256];
    int before = open_fds();

    int a = memfd(), b = memfd();
    assert_int_equal(fdstore_add(&st, "state", &a, 1, 1, 0, 1.0, err, sizeof err), 0);
    assert_int_equal(fdstore_add(&st, "state", &b, 1, 2, 0, 2.0, err, sizeof err), 0);
    assert_int_equal(st.len, 1); /* the newest state wins */
    assert_int_equal(fdstore_find(&st, "state")->fd, b);
    assert_int_equal(fdstore_find(&st, "state")->generation, 2);
    assert_int_equal(fcntl(a, F_GETFD), -1); /* the replaced one is closed */

    int two[2] = { memfd(), memfd() };
    assert_int_equal(fdstore_add(&st, "state", two, 2, 3, 0, 3.0, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "holds one fd"));

    assert_int_equal(fdstore_add(&st, NULL, two, 2, 3, 0, 3.0, err, sizeof err), 0);
    assert_int_equal(st.len, 3);
    assert_string_equal(st.v[1]->name, "stored"); /* systemd's default name */

    int c = memfd(), d[2] = { memfd(), memfd() };
    assert_int_equal(fdstore_add(&st, "x", d, 2, 3, 0, 3.0, err, sizeof err), -ENOSPC);
    assert_non_null(strstr(err, "full"));
    assert_int_equal(fdstore_add(&st, "x", &c, 1, 3, 0, 3.0, err, sizeof err), 0);
    /* Replacing the state does not need room. */
    int e = memfd();
    assert_int_equal(fdstore_add(&st, "state", &e, 1, 4, 0, 4.0, err, sizeof err), 0);
    assert_int_equal(st.len, 4);
    assert_int_equal(fdstore_add(&st, "bad:name", d, 1, 3, 0, 3.0, err, sizeof err), -EINVAL);
    close(d[0]);
    close(d[1]);

    assert_int_equal(fdstore_remove(&st, "stored"), 2);
    assert_int_equal(fdstore_remove(&st, "nothing"), 0);
    assert_int_equal(st.len, 2);
    fdstore_free(&st);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(open_fds(), before); /* every fd it took is closed */
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void drops_a_stored_socket_that_hangs_up(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct fdstore st;
    fdstore_init(&st, &loop, 8, "state");
    char err[256];
    int kept[2], dropped[2], nopoll[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, kept), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, dropped), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, nopoll), 0);
    int m = memfd();
    assert_int_equal(fdstore_add(&st, "conn", &kept[0], 1, 1, 1, 0, err, sizeof err), 0);
    assert_int_equal(fdstore_add(&st, "conn", &dropped[0], 1, 1, 1, 0, err, sizeof err), 0);
    assert_int_equal(fdstore_add(&st, "pinned", &nopoll[0], 1, 1, 0, 0, err, sizeof err), 0);
    assert_int_equal(fdstore_add(&st, "state", &m, 1, 1, 1, 0, err, sizeof err), 0);
    assert_null(fdstore_find(&st, "state")->poll);  /* a memfd cannot be polled: kept as is */
    assert_int_equal(write(kept[1], "data", 4), 4); /* readable is no hang-up */
    close(dropped[1]);
    close(nopoll[1]);
    for (int i = 0; i < 20 && st.dropped == 0; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(st.dropped, 1);
    assert_int_equal(st.len, 3);
    assert_int_equal(st.v[0]->fd, kept[0]);
    assert_string_equal(st.v[1]->name, "pinned"); /* FDPOLL=0: kept though it hung up */
    fdstore_free(&st);
    close(kept[1]);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(names_follow_systemd),
        cmocka_unit_test(state_replaces_others_accumulate),
        cmocka_unit_test(drops_a_stored_socket_that_hangs_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
