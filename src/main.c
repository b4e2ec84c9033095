/* baton: a restart orchestrator. One binary: `baton run` is the supervisor,
 * the other commands are clients of its control socket. */

#include "base/commands.h"
#include "client/cli.h"
#include "client/drill.h"
#include "handoff/keeper.h"
#include "base/log.h"
#include "run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The local commands: those of base/commands.c without CMD_SENT, each run
 * in this process. ARGV[0] is the command's name. */
static int local_run(int argc, char **argv)
{
    (void)argc;
    return run_service(argv[1]);
}

static int local_check(int argc, char **argv)
{
    (void)argc;
    return run_check(argv[1]);
}

static int local_version(int argc, char **argv)
{
    (void)argc, (void)argv;
    printf("baton %s\n", BATON_VERSION);
    return 0;
}

static int local_keeper(int argc, char **argv)
{
    (void)argc;
    return keeper_main(argv[1]);
}

static int local_upgrade_check(int argc, char **argv)
{
    (void)argc;
    return run_upgrade_check(argv[1]);
}

static const struct {
    const char *name;
    int (*main)(int argc, char **argv);
} locals[] = {
    { "run", local_run },       { "check", local_check },
    { "drill", drill_main },    { "version", local_version },
    { "keeper", local_keeper }, { "upgrade-check", local_upgrade_check },
};

/* A local command C: its --help, a usage error (2) when it is not given
 * as many positional arguments as it takes (a command without any parses
 * its own), or what it returns. */
static int run_local(const struct command *c, int argc, char **argv)
{
    int want = command_positionals(c);
    if (want > 0 && argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) &&
        !(c->facts & CMD_HIDDEN)) {
        printf("usage: baton %s %s\n%s\n", c->name, c->args, c->help ? c->help : c->summary);
        return 0;
    }
    if (want > 0 && argc != want + 1) {
        if (c->facts & CMD_HIDDEN)
            return -1;
        fprintf(stderr, "usage: baton %s %s\n", c->name, c->args);
        return 2;
    }
    for (size_t i = 0; i < sizeof locals / sizeof locals[0]; i++)
        if (strcmp(locals[i].name, c->name) == 0)
            return locals[i].main(argc, argv);
    return -1; /* in the table, not built in */
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        /* baton help --commands, as baton --commands */
        if (argc == 3 && strcmp(argv[1], "help") == 0 && strcmp(argv[2], "--commands") == 0) {
            commands_print_list(stdout);
            return 0;
        }
        commands_print_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--commands") == 0) { /* for completion and tests: not in --help */
        commands_print_list(stdout);
        return 0;
    }
    const char *lvl = getenv("BATON_LOG_LEVEL");
    if (lvl && log_level_parse(lvl) >= 0)
        log_set_level((enum log_level)log_level_parse(lvl));
    const char *fmt = getenv("BATON_LOG_FORMAT");
    if (fmt && log_format_parse(fmt) >= 0)
        log_set_format((enum log_format)log_format_parse(fmt));

    const struct command *c = commands_find(strcmp(cmd, "--version") == 0 ? "version" : cmd);
    int code = -1;
    if (c && (c->facts & CMD_SENT))
        code = cli_main(cmd, argc - 1, argv + 1);
    else if (c)
        code = run_local(c, argc - 1, argv + 1);
    if (code >= 0)
        return code;
    fprintf(stderr, "baton: unknown command '%s'\n\n", cmd);
    commands_print_usage(stderr);
    return 2;
}
