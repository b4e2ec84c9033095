/* base/commands.c: the one table of baton's commands, and what its usage
 * strings say each command takes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "base/commands.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_find(void **state)
{
    (void)state;
    assert_non_null(commands_find("restart"));
    assert_string_equal(commands_find("logs")->name, "logs");
    assert_null(commands_find("nope"));
    assert_null(commands_find(""));
    assert_null(commands_find(NULL));
}

/* Names are unique; a command sent to the supervisor finds it. */
static void test_table(void **state)
{
    (void)state;
    size_t n;
    const struct command *t = commands_all(&n);
    assert_true(n >= 10);
    for (size_t i = 0; i < n; i++) {
        assert_ptr_equal(commands_find(t[i].name), &t[i]);
        assert_non_null(t[i].args);
        assert_non_null(t[i].summary);
        if (t[i].facts & CMD_SENT)
            assert_true(t[i].facts & CMD_SOCKET);
    }
    assert_true(commands_find("restart")->facts & CMD_WAITS);
    assert_false(commands_find("status")->facts & CMD_WAITS);
    assert_false(commands_find("drill")->facts & CMD_SENT);
    assert_true(commands_find("keeper")->facts & CMD_HIDDEN);
}

static void test_takes(void **state)
{
    (void)state;
    char arg[32];
    const struct command *logs = commands_find("logs");
    assert_true(command_takes(logs, "-f", arg, sizeof arg));
    assert_string_equal(arg, ""); /* -f follows */
    assert_true(command_takes(logs, "--gen", arg, sizeof arg));
    assert_string_equal(arg, "N");
    assert_true(command_takes(logs, "-n", NULL, 0));
    assert_false(command_takes(logs, "--binary", NULL, 0));
    assert_false(command_takes(commands_find("status"), "-n", NULL, 0));
    assert_true(command_takes(commands_find("events"), "-n", NULL, 0));
    assert_true(command_takes(commands_find("restart"), "--progress", arg, sizeof arg));
    assert_string_equal(arg, "");
    assert_true(command_takes(commands_find("restart"), "--quiet", arg, sizeof arg));
    assert_true(command_takes(commands_find("upgrade"), "--binary", arg, sizeof arg));
    assert_string_equal(arg, "PATH");
    assert_true(command_takes(commands_find("drill"), "--connections", arg, sizeof arg));
    assert_string_equal(arg, "N");
    assert_int_equal(command_positionals(commands_find("run")), 1);
    assert_int_equal(command_positionals(commands_find("check")), 1);
    assert_int_equal(command_positionals(commands_find("logs")), 0);
    assert_int_equal(command_positionals(commands_find("version")), 0);
}

/* --commands: one line a visible command, options as OPT=PLACEHOLDER. */
static void test_list(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    commands_print_list(f);
    fclose(f);
    assert_non_null(strstr(buf, "\nlogs -s=CONTROL_SOCKET --file=SERVICE_FILE -f -n=N --gen=N "
                                "--json --help\n"));
    assert_non_null(strstr(buf, "\nevents -s=CONTROL_SOCKET -f=SERVICE_FILE -n=N --json"));
    assert_true(strncmp(buf, "run SERVICE_FILE --help\n", 24) == 0);
    assert_null(strstr(buf, "keeper"));
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_takes),
        cmocka_unit_test(test_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
