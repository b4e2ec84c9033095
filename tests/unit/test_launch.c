/* launch.c: what a generation gets, in its documented order, from one place. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "loop/launch.h"

#include <errno.h>
#include <string.h>

static char err[512];
static char *argv[] = { "app", "--port", "80", NULL };
static char *env[] = { "A=1", "LOG=info", NULL };
static const int listener_fds[] = { 10, 11, 12 };
static const char *const listener_names[] = { "http", "admin", "dns" };

static struct launch_inputs inputs(const int *stored, size_t nstored, const char *names)
{
    return (struct launch_inputs){
        .argv = argv,
        .env = env,
        .cwd = "/srv",
        .listener_fds = listener_fds,
        .listener_names = listener_names,
        .nlisteners = 3,
        .stored_fds = stored,
        .stored_names = names,
        .nstored = nstored,
        .stats_fd = 20,
        .notify_path = "/run/x.notify",
        .control_path = "/run/x.sock",
        .state_name = "state",
        .generation = 7,
    };
}

/* Listeners at 3.., then the fd store, then the stats region after LISTEN_FDS. */
static void fds_in_order_listeners_store_stats(void **state)
{
    (void)state;
    const int stored[] = { 30, 31 };
    struct launch_inputs in = inputs(stored, 2, "state:conn");
    struct launch_plan p;
    assert_int_equal(launch_plan_build(&p, &in, err, sizeof err), 0);
    assert_int_equal(p.listen_fds, 5);
    assert_int_equal(p.nfds, 6);
    const int want[] = { 10, 11, 12, 30, 31, 20 };
    assert_memory_equal(p.fds, want, sizeof want);
    assert_string_equal(launch_plan_getenv(&p, "LISTEN_FDS"), "5");
    assert_string_equal(launch_plan_getenv(&p, "LISTEN_FDNAMES"), "http:admin:dns:state:conn");
    assert_string_equal(launch_plan_getenv(&p, "BATON_STATS_FD"), "8"); /* 3 + LISTEN_FDS */
    assert_ptr_equal(p.argv, argv);
    assert_string_equal(p.cwd, "/srv");
    launch_plan_free(&p);
}

/* The service file's env first, then baton's own variables, each once. */
static void environment_is_the_files_then_batons(void **state)
{
    (void)state;
    struct launch_inputs in = inputs(NULL, 0, "");
    struct launch_plan p;
    assert_int_equal(launch_plan_build(&p, &in, err, sizeof err), 0);
    const char *want[] = { "A=1",
                           "LOG=info",
                           "LISTEN_FDS=3",
                           "LISTEN_FDNAMES=http:admin:dns",
                           "NOTIFY_SOCKET=/run/x.notify",
                           "BATON_GENERATION=7",
                           "BATON_CONTROL=/run/x.sock",
                           "BATON_STATS_FD=6",
                           "BATON_STATE_NAME=state",
                           NULL };
    for (size_t i = 0; want[i]; i++) {
        assert_non_null(p.env[i]);
        assert_string_equal(p.env[i], want[i]);
    }
    assert_null(p.env[9]);
    /* LISTEN_PID is the child's own pid: spawn.c writes it after fork. */
    assert_null(launch_plan_getenv(&p, "LISTEN_PID"));
    assert_int_equal(p.nfds, 4);
    launch_plan_free(&p);
    assert_null(p.env);
    assert_null(p.fds);
}

/* Stored fds with no listeners: the names have no leading ':'. */
static void store_only_names(void **state)
{
    (void)state;
    const int stored[] = { 40 };
    struct launch_inputs in = inputs(stored, 1, "state");
    in.nlisteners = 0;
    struct launch_plan p;
    assert_int_equal(launch_plan_build(&p, &in, err, sizeof err), 0);
    assert_string_equal(launch_plan_getenv(&p, "LISTEN_FDNAMES"), "state");
    assert_string_equal(launch_plan_getenv(&p, "LISTEN_FDS"), "1");
    assert_int_equal(p.fds[0], 40);
    assert_int_equal(p.fds[1], 20);
    launch_plan_free(&p);
}

static void no_command_is_refused(void **state)
{
    (void)state;
    char *none[] = { NULL };
    struct launch_inputs in = inputs(NULL, 0, "");
    in.argv = none;
    struct launch_plan p;
    assert_int_equal(launch_plan_build(&p, &in, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "no command"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fds_in_order_listeners_store_stats),
        cmocka_unit_test(environment_is_the_files_then_batons),
        cmocka_unit_test(store_only_names),
        cmocka_unit_test(no_command_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
