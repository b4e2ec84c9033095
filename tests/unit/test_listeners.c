/* listeners.c: address parsing and binding, on real sockets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "loop/listeners.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static char err[512];

static void parses_good_addresses(void **state)
{
    (void)state;
    struct listener l = { .fd = -1 };
    assert_int_equal(listener_parse(&l, "tcp://127.0.0.1:8080", err, sizeof err), 0);
    assert_int_equal(l.kind, LISTENER_TCP);
    assert_int_equal(l.addr.ss_family, AF_INET);
    assert_int_equal(listener_parse(&l, "tcp://[::1]:0", err, sizeof err), 0);
    assert_int_equal(l.addr.ss_family, AF_INET6);
    assert_int_equal(listener_parse(&l, "udp://127.0.0.1:53", err, sizeof err), 0);
    assert_int_equal(l.kind, LISTENER_UDP);
    assert_int_equal(listener_parse(&l, "unix:/tmp/x.sock", err, sizeof err), 0);
    assert_int_equal(l.kind, LISTENER_UNIX);
}

static void refuses_bad_addresses(void **state)
{
    (void)state;
    const char *bad[] = { "tcp://127.0.0.1",     "tcp://127.0.0.1:65536",
                          "tcp://localhost:80",  "tcp://[::1:80",
                          "http://127.0.0.1:80", "unix:relative.sock",
                          "tcp://127.0.0.1:8x",  "tcp://:80" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct listener l = { .fd = -1 };
        err[0] = '\0';
        assert_int_equal(listener_parse(&l, bad[i], err, sizeof err), -EINVAL);
        assert_true(strlen(err) > 0);
    }
    char longpath[200] = "unix:/";
    memset(longpath + 6, 'a', 150);
    struct listener l = { .fd = -1 };
    assert_int_equal(listener_parse(&l, longpath, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "too long"));
}

static void binds_port_zero_and_reports_real_port(void **state)
{
    (void)state;
    struct listener l = { .name = "http", .address = "tcp://127.0.0.1:0", .backlog = 16, .fd = -1 };
    assert_int_equal(listener_parse(&l, l.address, err, sizeof err), 0);
    assert_int_equal(listener_bind(&l, err, sizeof err), 0);
    char addr[128];
    assert_int_equal(listener_local_address(&l, addr, sizeof addr), 0);
    assert_non_null(strstr(addr, "tcp://127.0.0.1:"));
    assert_string_not_equal(addr, "tcp://127.0.0.1:0");

    /* A second bind of the same address is an error that names it. */
    struct listener dup = { .name = "again", .backlog = 16, .fd = -1 };
    dup.address = addr;
    assert_int_equal(listener_parse(&dup, addr, err, sizeof err), 0);
    assert_int_equal(listener_bind(&dup, err, sizeof err), -EADDRINUSE);
    assert_non_null(strstr(err, addr));
    assert_non_null(strstr(err, "in use"));
    listener_close(&l);
    assert_int_equal(l.fd, -1);
}

static void unix_stale_socket_is_replaced_live_one_is_not(void **state)
{
    (void)state;
    char path[] = "/tmp/baton-test-unix-XXXXXX";
    int tmp = mkstemp(path);
    close(tmp);
    unlink(path);
    char address[128];
    snprintf(address, sizeof address, "unix:%s", path);

    struct listener a = { .name = "a", .address = address, .backlog = 4, .fd = -1 };
    assert_int_equal(listener_parse(&a, address, err, sizeof err), 0);
    assert_int_equal(listener_bind(&a, err, sizeof err), 0);
    struct listener b = a;
    b.fd = -1;
    assert_int_equal(listener_bind(&b, err, sizeof err), -EADDRINUSE);

    /* Closing the fd but leaving the file: a stale socket, replaced. */
    close(a.fd);
    a.fd = -1;
    assert_int_equal(listener_bind(&b, err, sizeof err), 0);
    listener_close(&b);
    struct stat st;
    assert_int_equal(stat(path, &st), -1);

    /* A regular file in the way is not ours to remove. */
    FILE *f = fopen(path, "w");
    fclose(f);
    assert_int_equal(listener_bind(&b, err, sizeof err), -EEXIST);
    assert_non_null(strstr(err, "not a stale socket of ours"));
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_good_addresses),
        cmocka_unit_test(refuses_bad_addresses),
        cmocka_unit_test(binds_port_zero_and_reports_real_port),
        cmocka_unit_test(unix_stale_socket_is_replaced_live_one_is_not),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
