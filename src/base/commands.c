#include "base/commands.h"

#include <string.h>

/* `baton --help` lists them in this order. */
static const struct command table[] = {
    { "run", "SERVICE_FILE", "run the supervisor for the service, in the foreground",
      "Runs the supervisor of the service in the foreground (docs/service-file.md).", 0 },
    { "check", "SERVICE_FILE", "check the service file and its policy; run nothing",
      "Checks the service file and its policy, prints the fd layout; runs nothing.", 0 },
    { "restart", "[--progress | --quiet]",
      "start a new generation; exit 0 once it took over, 1 if rolled back",
      "On a terminal (or with --progress) each step of the restart is shown as the\n"
      "supervisor takes it. --json prints one object: ok, outcome (\"took over\",\n"
      "\"rolled back\" or \"refused\"), new, old, reason, duration, message.\n",
      CMD_SENT | CMD_SOCKET | CMD_WAITS },
    { "status", "", "generations, pids, states, uptimes", NULL, CMD_SENT | CMD_SOCKET | CMD_PARTS },
    { "stats", "", "metrics of the service and the supervisor, per generation", NULL,
      CMD_SENT | CMD_SOCKET | CMD_PARTS },
    { "stop", "", "drain every generation, then stop the supervisor", NULL,
      CMD_SENT | CMD_SOCKET | CMD_WAITS },
    { "rollback", "",
      "end a restart in its window (bluegreen): the new generation drains,\n"
      "the previous one serves on",
      NULL, CMD_SENT | CMD_SOCKET | CMD_WAITS },
    { "reload", "[--dry-run]",
      "re-read the service file and its policy; refused (and the running\n"
      "one kept) if invalid; --dry-run: only check them",
      "--dry-run has the running supervisor load and check the files as a reload\n"
      "would (against what cannot change while it runs) and apply nothing: exit 0\n"
      "if a reload would take them, 1 with the file, line and reason if not.\n",
      CMD_SENT | CMD_SOCKET },
    { "events", "[-n N]", "the history: restarts, drains, crashes, reloads, rollbacks, why", NULL,
      CMD_SENT | CMD_SOCKET | CMD_PARTS },
    { "logs", "[-f] [-n N] [--gen N]", "what generations printed (stdout, stderr); -f follows",
      NULL, CMD_SENT | CMD_SOCKET | CMD_PARTS },
    { "upgrade", "[--binary PATH]",
      "replace the supervisor's own image in place (same pid), carrying\n"
      "its sockets, generations and drains; refused if the new one cannot\n"
      "take over",
      "Replaces the supervisor's image in place (same pid) with PATH (default: the\n"
      "path it was started from, as it is now). Exit 0 once the new image answers,\n"
      "1 with the reason when it is refused (the old image serves on). --json prints\n"
      "one object: ok, pid, version, binary, duration, or error.\n",
      CMD_SENT | CMD_SOCKET | CMD_WAITS },
    { "drill", "[-n RESTARTS] [--listener NAME] [--connections N]",
      "rehearse RESTARTS restarts under a load of its own; failed requests\n"
      "by cause, with what to change",
      NULL, CMD_SOCKET },
    { "version", "", "the version (also --version)", NULL, 0 },
    /* Started by the supervisor: handoff/keeper.c, handoff/upgrade.c. */
    { "keeper", "FILE", "hold the listeners while the supervisor lives", NULL, CMD_HIDDEN },
    { "upgrade-check", "FILE", "check that this binary can take the carried state over", NULL,
      CMD_HIDDEN },
};

const struct command *commands_all(size_t *n)
{
    *n = sizeof table / sizeof table[0];
    return table;
}

const struct command *commands_find(const char *name)
{
    for (size_t i = 0; name && i < sizeof table / sizeof table[0]; i++)
        if (strcmp(table[i].name, name) == 0)
            return &table[i];
    return NULL;
}

/* A word of a command's args: an option ("--gen", with its placeholder
 * "N" when it takes one) or a positional ("SERVICE_FILE"; optional when in
 * brackets). Brackets, parentheses and '|' are the usage's, not words. */
struct word {
    char text[32], arg[32];
    int option, optional;
};

/* One token of P (at most LEN bytes into OUT), without its brackets: the
 * rest of P, or NULL at the end. *OPENS / *CLOSES: it began or ended a
 * bracket. */
static const char *token(const char *p, char *out, size_t len, int *opens, int *closes)
{
    while (*p == ' ')
        p++;
    if (!*p)
        return NULL;
    size_t n = strcspn(p, " ");
    const char *s = p, *e = p + n;
    *opens = *s == '[' || *s == '(';
    while (s < e && (*s == '[' || *s == '('))
        s++;
    *closes = e > s && (e[-1] == ']' || e[-1] == ')');
    while (e > s && (e[-1] == ']' || e[-1] == ')'))
        e--;
    size_t k = (size_t)(e - s) < len - 1 ? (size_t)(e - s) : len - 1;
    memcpy(out, s, k);
    out[k] = '\0';
    return p + n;
}

/* The next word of ARGS from P (ARGS itself at first), into W; NULL at the
 * end. DEPTH: the brackets open before P. */
static const char *next_word(const char *p, int *depth, struct word *w)
{
    int opens, closes;
    do {
        p = token(p, w->text, sizeof w->text, &opens, &closes);
        if (!p)
            return NULL;
    } while (strcmp(w->text, "|") == 0);
    *depth += opens;
    w->option = w->text[0] == '-';
    w->optional = *depth > 0;
    w->arg[0] = '\0';
    if (w->option && !closes) {
        /* The next token is its placeholder unless it is an option or '|'. */
        char t[32];
        int o2, c2;
        const char *q = token(p, t, sizeof t, &o2, &c2);
        if (q && !o2 && t[0] != '-' && strcmp(t, "|") != 0) {
            memcpy(w->arg, t, sizeof w->arg);
            p = q;
            closes = c2;
        }
    }
    *depth -= closes;
    return p;
}

int command_takes(const struct command *c, const char *opt, char *arg, size_t arglen)
{
    struct word w;
    int depth = 0;
    for (const char *p = c->args; (p = next_word(p, &depth, &w));) {
        if (w.option && strcmp(w.text, opt) == 0) {
            if (arg && arglen)
                snprintf(arg, arglen, "%s", w.arg);
            return 1;
        }
    }
    return 0;
}

int command_positionals(const struct command *c)
{
    struct word w;
    int depth = 0, n = 0;
    for (const char *p = c->args; (p = next_word(p, &depth, &w));)
        n += !w.option && !w.optional;
    return n;
}

/* TEXT with each '\n' going on INDENT spaces in. */
static void indented(FILE *to, const char *text, int indent)
{
    for (const char *p = text; *p; p++) {
        fputc(*p, to);
        if (*p == '\n' && p[1])
            fprintf(to, "%*s", indent, "");
    }
}

void commands_print_usage(FILE *to)
{
    fputs("usage: baton COMMAND [ARGS]\n\n", to);
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        const struct command *c = &table[i];
        if (c->facts & CMD_HIDDEN)
            continue;
        char head[128];
        snprintf(head, sizeof head, "%s%s%s", c->name, *c->args ? " " : "", c->args);
        /* The summary in a column of its own, under the head when that is long. */
        if (strlen(head) < 16)
            fprintf(to, "  %-16s", head);
        else
            fprintf(to, "  %s\n%18s", head, "");
        indented(to, c->summary, 18);
        fputc('\n', to);
    }
    fputs("\n"
          "Client commands take -s CONTROL_SOCKET, or -f SERVICE_FILE (its control socket);\n"
          "else $BATON_CONTROL; else the one supervisor's socket in the runtime folder. And\n"
          "--json for machines; --help for each command.\n"
          "Exit codes: 0 done, 1 refused or rolled back, 2 usage, 3 not running.\n"
          "Environment: BATON_LOG_LEVEL=error|warn|info|debug, BATON_LOG_FORMAT=text|json for\n"
          "the supervisor's own log (over the service file's log_level and log_format).\n",
          to);
}

void commands_print_list(FILE *to)
{
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        const struct command *c = &table[i];
        if (c->facts & CMD_HIDDEN)
            continue;
        fputs(c->name, to);
        if (c->facts & CMD_SOCKET)
            fprintf(to, " -s=CONTROL_SOCKET %s=SERVICE_FILE",
                    command_takes(c, "-f", NULL, 0) ? "--file" : "-f");
        struct word w;
        int depth = 0;
        for (const char *p = c->args; (p = next_word(p, &depth, &w));)
            fprintf(to, " %s%s%s", w.text, *w.arg ? "=" : "", w.arg);
        if (c->facts & CMD_SOCKET)
            fputs(" --json", to);
        fputs((c->facts & CMD_SOCKET) || command_positionals(c) > 0 ? " --help\n" : "\n", to);
    }
}
