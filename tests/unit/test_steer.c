/* steer.c and os/reuseport.c: members of a real SO_REUSEPORT group on
 * loopback, weights, and positions tracked across a member's leaving. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "loop/steer.h"
#include "os/reuseport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct listener l;
static struct steer st;
static uv_loop_t loop;

static void setup_listener(void)
{
    char err[256];
    memset(&l, 0, sizeof l);
    l.name = "http";
    l.address = "tcp://127.0.0.1:0";
    l.backlog = 64;
    l.fd = -1;
    l.steer = 1;
    l.steer_fd = -1;
    assert_int_equal(listener_parse(&l, l.address, err, sizeof err), 0);
    assert_int_equal(uv_loop_init(&loop), 0);
    assert_int_equal(steer_init(&st, &loop, &l, 1), 0);
}

static void teardown_listener(void)
{
    steer_stop(&st);
    uv_run(&loop, UV_RUN_NOWAIT);
    steer_close(&st);
    uv_loop_close(&loop);
}

/* Connects once; returns the index in FDS of the member that got it. */
static int which(const int *fds, size_t n)
{
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(c >= 0);
    assert_int_equal(connect(c, (struct sockaddr *)&l.addr, l.addrlen), 0);
    struct pollfd p[8];
    for (size_t i = 0; i < n; i++)
        p[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
    assert_true(poll(p, n, 2000) == 1);
    int got = -1;
    for (size_t i = 0; i < n; i++)
        if (p[i].revents & POLLIN) {
            int a = accept(fds[i], NULL, NULL);
            assert_true(a >= 0);
            close(a);
            got = (int)i;
        }
    close(c);
    return got;
}

static void all_to(const int *fds, size_t n, int want)
{
    for (int i = 0; i < 30; i++)
        assert_int_equal(which(fds, n), want);
}

static void weights_pick_members(void **state)
{
    (void)state;
    setup_listener();
    char err[256];
    int fds[3];
    for (unsigned g = 1; g <= 3; g++)
        assert_int_equal(steer_join(&st, 0, g, &fds[g - 1], err, sizeof err), 0);
    /* The first generation gets 100, later ones 0 until weighed. */
    assert_int_equal(steer_weight(&st, 1), 100);
    assert_int_equal(steer_weight(&st, 2), 0);
    assert_int_equal(steer_weight(&st, 9), -1);
    assert_int_equal(steer_set_weight(&st, 9, 10), -ENOENT);
    all_to(fds, 3, 0);
    assert_int_equal(steer_set_weight(&st, 1, 0), 0);
    assert_int_equal(steer_set_weight(&st, 2, 100), 0);
    all_to(fds, 3, 1);
    assert_int_equal(steer_set_weight(&st, 2, 0), 0);
    assert_int_equal(steer_set_weight(&st, 3, 100), 0);
    all_to(fds, 3, 2);
    teardown_listener();
}

/* Generation 1 leaves from the first slot: the kernel moves the last
 * member into it, and the program must follow. */
static void positions_follow_a_leave(void **state)
{
    (void)state;
    setup_listener();
    char err[256];
    int fds[4];
    for (unsigned g = 1; g <= 3; g++)
        assert_int_equal(steer_join(&st, 0, g, &fds[g - 1], err, sizeof err), 0);
    assert_int_equal(steer_set_weight(&st, 1, 0), 0);
    assert_int_equal(steer_set_weight(&st, 2, 100), 0);
    steer_gen_exited(&st, 1);
    usleep((useconds_t)(STEER_GRACE * 1e6) + 100000);
    /* Generation 4 joins last with no share: generation 1 may leave now. */
    assert_int_equal(steer_join(&st, 0, 4, &fds[3], err, sizeof err), 0);
    assert_int_equal(steer_weight(&st, 1), -1);
    int alive[3] = { fds[1], fds[2], fds[3] };
    all_to(alive, 3, 0);
    assert_int_equal(steer_set_weight(&st, 2, 0), 0);
    assert_int_equal(steer_set_weight(&st, 4, 100), 0);
    all_to(alive, 3, 2);
    assert_int_equal(steer_set_weight(&st, 3, 100), 0);
    assert_int_equal(steer_set_weight(&st, 4, 0), 0);
    all_to(alive, 3, 1);
    teardown_listener();
}

/* A split is a probability: 90/10 over 2,000 connections. */
static void split_is_a_probability(void **state)
{
    (void)state;
    setup_listener();
    char err[256];
    int fds[2], n2 = 0;
    for (unsigned g = 1; g <= 2; g++)
        assert_int_equal(steer_join(&st, 0, g, &fds[g - 1], err, sizeof err), 0);
    assert_int_equal(steer_set_weight(&st, 1, 90), 0);
    assert_int_equal(steer_set_weight(&st, 2, 10), 0);
    for (int i = 0; i < 2000; i++)
        n2 += which(fds, 2) == 1;
    assert_in_range(n2, 140, 260);
    teardown_listener();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(weights_pick_members),
        cmocka_unit_test(positions_follow_a_leave),
        cmocka_unit_test(split_is_a_probability),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
