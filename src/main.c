/* baton: a restart orchestrator. One binary: `baton run` is the supervisor,
 * the other commands are clients of its control socket. */

#include "client/cli.h"
#include "client/drill.h"
#include "handoff/keeper.h"
#include "base/log.h"
#include "run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: baton COMMAND [ARGS]\n"
    "\n"
    "  run FILE        run the supervisor for the service FILE, in the foreground\n"
    "  check FILE      check FILE and its policy; run nothing\n"
    "  restart         start a new generation; exit 0 once it took over, 1 if rolled back\n"
    "  status          generations, pids, states, uptimes\n"
    "  stats           metrics of the service and the supervisor, per generation\n"
    "  stop            drain every generation, then stop the supervisor\n"
    "  rollback        end a restart in its window (bluegreen): the new generation drains,\n"
    "                  the previous one serves on\n"
    "  reload          re-read the service file and its policy; refused (and the running\n"
    "                  one kept) if invalid\n"
    "  events [-n N]   the history: restarts, drains, crashes, reloads, rollbacks, why\n"
    "  logs [-f] [-n N] [--gen N]\n"
    "                  what generations printed (stdout, stderr); -f follows\n"
    "  upgrade [--binary PATH]\n"
    "                  replace the supervisor's own image in place (same pid), carrying\n"
    "                  its sockets, generations and drains; refused if the new one cannot\n"
    "                  take over\n"
    "  drill [-n N] [--listener NAME] [--connections N]\n"
    "                  rehearse N restarts under a load of its own; failed requests by\n"
    "                  cause, with what to change\n"
    "  version         the version (also --version)\n"
    "\n"
    "Client commands take -s CONTROL_SOCKET, or -f SERVICE_FILE (its control socket);\n"
    "else $BATON_CONTROL; else the one supervisor's socket in the runtime folder. And\n"
    "--json for machines; --help for each command.\n"
    "Exit codes: 0 done, 1 refused or rolled back, 2 usage, 3 not running.\n"
    "Environment: BATON_LOG_LEVEL=error|warn|info|debug, BATON_LOG_FORMAT=text|json for\n"
    "the supervisor's own log (over the service file's log_level and log_format).\n";

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    const char *lvl = getenv("BATON_LOG_LEVEL");
    if (lvl && log_level_parse(lvl) >= 0)
        log_set_level((enum log_level)log_level_parse(lvl));
    const char *fmt = getenv("BATON_LOG_FORMAT");
    if (fmt && log_format_parse(fmt) >= 0)
        log_set_format((enum log_format)log_format_parse(fmt));

    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("baton %s\n", BATON_VERSION);
        return 0;
    }
    if (strcmp(cmd, "run") == 0 || strcmp(cmd, "check") == 0) {
        if (argc == 3 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
            printf(
                "usage: baton %s SERVICE_FILE\n%s\n", cmd,
                strcmp(cmd, "run") == 0
                    ? "Runs the supervisor of the service in the foreground (docs/service-file.md)."
                    : "Checks the service file and its policy, prints the fd layout; runs nothing.");
            return 0;
        }
        if (argc != 3) {
            fprintf(stderr, "usage: baton %s SERVICE_FILE\n", cmd);
            return 2;
        }
        return strcmp(cmd, "run") == 0 ? run_service(argv[2]) : run_check(argv[2]);
    }
    if (strcmp(cmd, "restart") == 0 || strcmp(cmd, "status") == 0 || strcmp(cmd, "stop") == 0 ||
        strcmp(cmd, "stats") == 0 || strcmp(cmd, "reload") == 0 || strcmp(cmd, "rollback") == 0 ||
        strcmp(cmd, "events") == 0 || strcmp(cmd, "logs") == 0 || strcmp(cmd, "upgrade") == 0)
        return cli_main(cmd, argc - 1, argv + 1);
    if (strcmp(cmd, "keeper") == 0 && argc == 3)
        return keeper_main(argv[2]);
    if (strcmp(cmd, "upgrade-check") == 0 && argc == 3)
        return run_upgrade_check(argv[2]);
    if (strcmp(cmd, "drill") == 0)
        return drill_main(argc - 1, argv + 1);
    fprintf(stderr, "baton: unknown command '%s'\n\n%s", cmd, usage);
    return 2;
}
