#ifndef BATON_COMMANDS_H
#define BATON_COMMANDS_H

/* The commands of `baton`, once: main.c dispatches on them and prints
 * `baton --help` from them, client/cli.c takes their options and prints
 * their usage, `baton --commands` lists them for scripts/completion.bash
 * and tests/e2e/commands.sh, and the supervisor's control router answers
 * those it serves. A new command is a line of the table in commands.c. */

#include <stddef.h>
#include <stdio.h>

/* What a command is, beyond its name and usage. */
enum command_fact {
    /* Sent to the supervisor as {"cmd": NAME} by client/cli.c, and served
     * by the supervisor's control router. Without it the command is local:
     * main.c runs it in this process (run, check, drill, version). */
    CMD_SENT = 1 << 0,
    /* Finds a supervisor: takes -s CONTROL_SOCKET, -f SERVICE_FILE (or
     * --file, when its own -f means something else) and --json. */
    CMD_SOCKET = 1 << 1,
    /* Waits for the outcome, however long it takes (a drain may take
     * minutes); the others give up after 5 s. */
    CMD_WAITS = 1 << 2,
    /* Internal (the supervisor starts baton so): not in `baton --help`,
     * `baton --commands` or completion. */
    CMD_HIDDEN = 1 << 3,
    /* Its answer holds lists of any length (listeners, events, output
     * lines): the client asks for it in parts (loop/control.h), and the
     * 64 KiB bound of a line holds for each part. */
    CMD_PARTS = 1 << 4,
};

struct command {
    const char *name;
    /* Its own arguments and options, as usage shows them: "[-n N]",
     * "SERVICE_FILE", "[--progress | --quiet]". The options it takes are
     * those written here (command_takes), and those of CMD_SOCKET. */
    const char *args;
    /* One line for `baton --help` (a '\n' goes on, indented). */
    const char *summary;
    /* More for `baton NAME --help`, or NULL. */
    const char *help;
    unsigned facts; /* enum command_fact */
};

/* The table, in the order `baton --help` lists it; N set to its length. */
const struct command *commands_all(size_t *n);

/* The command NAME, or NULL. */
const struct command *commands_find(const char *name);

/* Whether C takes the option OPT ("-n", "--gen"), written in its args.
 * With ARG, the option's argument's placeholder ("N"), "" if none, is
 * copied there (ARGLEN bytes). */
int command_takes(const struct command *c, const char *opt, char *arg, size_t arglen);

/* The number of positional arguments C takes (SERVICE_FILE: 1). */
int command_positionals(const struct command *c);

/* `baton --help`: every command not hidden, then the common words. */
void commands_print_usage(FILE *to);

/* `baton --commands`: one line a command not hidden, its name then what it
 * takes, space-separated: a positional's placeholder (SERVICE_FILE), an
 * option (--json), an option with an argument as OPT=PLACEHOLDER
 * (-n=N, -f=SERVICE_FILE). --help is on every line. */
void commands_print_list(FILE *to);

#endif
