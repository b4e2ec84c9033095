#include "client/cli.h"

#include "base/clock.h"
#include "base/commands.h"
#include "base/rundir.h"

#include "loop/control.h"
#include "run.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage_client(FILE *to, const struct command *c)
{
    /* A command whose -f is its own names the service file with --file. */
    fprintf(to,
            "usage: baton %s [-s CONTROL_SOCKET | %s SERVICE_FILE] %s%s[--json]\n"
            "The control socket: -s PATH; else $BATON_CONTROL; else the `control` of the\n"
            "service file -f names; else the only supervisor's socket in the runtime folder\n"
            "($XDG_RUNTIME_DIR, else /tmp/baton-UID).\n"
            "Exit codes: 0 done, 1 refused or rolled back, 2 usage, 3 not running.\n",
            c->name, command_takes(c, "-f", NULL, 0) ? "--file" : "-f", c->args,
            *c->args ? " " : "");
    if (c->help)
        fputs(c->help, to);
}

/* A progress line of `baton restart`: the supervisor's message, timed from
 * the request. */
static void print_progress(void *ctx, json_t *p)
{
    const double *t0 = ctx;
    const char *level = json_string_value(json_object_get(p, "level"));
    double t = json_number_value(json_object_get(p, "time")) - *t0;
    printf("  %7.3fs  %s%s%s\n", t < 0 ? 0 : t, level && strcmp(level, "info") != 0 ? level : "",
           level && strcmp(level, "info") != 0 ? ": " : "",
           json_string_value(json_object_get(p, "message")));
    fflush(stdout);
}

/* The one supervisor's socket in the runtime folder: 0 with OUT, -ENOENT
 * (none: not running), or -EEXIST (several: say which with -s or -f). */
static int find_socket(char *out, size_t len, char *err, size_t errlen)
{
    char dir[512];
    if (runtime_dir(dir, sizeof dir) < 0) {
        snprintf(err, errlen, "no runtime folder: give -s or -f");
        return -ENOENT;
    }
    DIR *d = opendir(dir);
    int found = 0;
    char names[512] = "";
    /* A DIR of our own in a single-threaded client; readdir_r is deprecated. */
    // cppcheck-suppress readdirCalled
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        struct stat st;
        char path[1024];
        if (n < 6 || strcmp(e->d_name + n - 5, ".sock") != 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode))
            continue;
        if (found++ == 0)
            snprintf(out, len, "%s", path);
        snprintf(names + strlen(names), sizeof names - strlen(names), " %s", e->d_name);
    }
    if (d)
        closedir(d);
    if (found == 0) {
        snprintf(err, errlen, "no supervisor's socket in %.300s (give -s PATH or -f SERVICE_FILE)",
                 dir);
        return -ENOENT;
    }
    if (found > 1) {
        snprintf(err, errlen,
                 "several supervisors in %.300s:%.500s (give -s PATH or -f SERVICE_FILE)", dir,
                 names);
        return -EEXIST;
    }
    return 0;
}

int cli_control_socket(const char *sock, const char *file, char *path, size_t pathlen,
                       const char **result, char *err, size_t errlen)
{
    if (!sock && !file)
        sock = getenv("BATON_CONTROL");
    if (!sock && file) {
        if (run_control_path(file, path, pathlen, err, errlen) < 0)
            return 2;
        sock = path;
    }
    if (!sock || !*sock) {
        int r = find_socket(path, pathlen, err, errlen);
        if (r < 0)
            return r == -ENOENT ? 3 : 2;
        sock = path;
    }
    *result = sock;
    return 0;
}

/* A list longer than this is summed up in text (--json has it whole): a
 * thousand listeners would hide the generations below them. */
#define TEXT_LIST_MAX 20

/* A unix time (JSON number) as the local "YYYY-MM-DD HH:MM:SS". */
static void local_time(json_t *unix_seconds, char *buf, size_t len)
{
    time_t t = (time_t)json_number_value(unix_seconds);
    struct tm tm;
    strftime(buf, len, "%Y-%m-%d %H:%M:%S", localtime_r(&t, &tm));
}

static void print_events(json_t *r)
{
    long long not_kept = json_integer_value(json_object_get(r, "not_kept"));
    if (not_kept > 0)
        printf("(%lld older event%s not shown)\n", not_kept, not_kept == 1 ? "" : "s");
    printf("%-19s %-9s %4s %-4s %8s  %s\n", "time", "kind", "gen", "ok", "took", "reason");
    size_t i;
    json_t *ev;
    json_array_foreach(json_object_get(r, "events"), i, ev) {
        char when[32];
        local_time(json_object_get(ev, "time"), when, sizeof when);
        json_t *took = json_object_get(ev, "duration");
        char took_s[32] = "";
        if (took)
            snprintf(took_s, sizeof took_s, "%.3fs", json_number_value(took));
        printf("%-19s %-9s %4lld %-4s %8s  %s\n", when,
               json_string_value(json_object_get(ev, "kind")),
               (long long)json_integer_value(json_object_get(ev, "generation")),
               json_is_true(json_object_get(ev, "ok")) ? "yes" : "NO", took_s,
               json_string_value(json_object_get(ev, "reason")));
    }
}

static void print_status(json_t *r)
{
    printf("service %s (supervisor pid %lld, up %.1fs)\n",
           json_string_value(json_object_get(r, "service")),
           (long long)json_integer_value(json_object_get(r, "pid")),
           json_number_value(json_object_get(r, "uptime")));
    size_t i;
    json_t *v;
    json_t *img = json_object_get(r, "image");
    if (json_is_object(img)) {
        double at = json_number_value(json_object_get(img, "started_at"));
        long long ups = json_integer_value(json_object_get(img, "upgrades"));
        json_t *adopted = json_object_get(img, "adopted_at");
        printf("  image    baton %s (%s), running for %.0fs",
               json_string_value(json_object_get(img, "version")),
               json_string_value(json_object_get(img, "binary")), clock_unix() - at);
        if (ups > 0)
            printf(", after %lld upgrade%s", ups, ups == 1 ? "" : "s");
        if (adopted)
            printf(", took the service over %.0fs ago after its supervisor died",
                   clock_unix() - json_number_value(adopted));
        printf("\n");
    }
    json_t *ls = json_object_get(r, "listeners");
    json_array_foreach(ls, i, v) {
        if (i == TEXT_LIST_MAX - 1 && json_array_size(ls) > TEXT_LIST_MAX) {
            printf("  ... and %zu more listeners (fds %lld to %lld; `baton status --json` lists "
                   "them all)\n",
                   json_array_size(ls) - i, (long long)json_integer_value(json_object_get(v, "fd")),
                   (long long)json_integer_value(
                       json_object_get(json_array_get(ls, json_array_size(ls) - 1), "fd")));
            break;
        }
        printf("  listener %-12s %s (fd %lld)%s", json_string_value(json_object_get(v, "name")),
               json_string_value(json_object_get(v, "address")),
               (long long)json_integer_value(json_object_get(v, "fd")),
               json_is_true(json_object_get(v, "per_generation"))
                   ? ", per_generation: each generation its own port (below)"
                   : "");
        json_t *mig = json_object_get(v, "tcp_migrate_req");
        if (json_is_true(json_object_get(v, "steer")))
            printf(", steered (tcp_migrate_req %s)",
                   json_is_boolean(mig) ? (json_is_true(mig) ? "on" : "off") : "unknown");
        printf("\n");
    }
    json_t *failed = json_object_get(r, "failed");
    if (json_is_string(failed))
        printf("  FAILED   %s: nothing is started again until `baton restart`\n",
               json_string_value(failed));
    printf("  %-4s %-8s %-9s %10s  %s\n", "gen", "pid", "state", "uptime", "status");
    json_array_foreach(json_object_get(r, "generations"), i, v) {
        const char *state = json_string_value(json_object_get(v, "state"));
        printf("  %-4lld %-8lld %-9s %9.1fs  %s",
               (long long)json_integer_value(json_object_get(v, "id")),
               (long long)json_integer_value(json_object_get(v, "pid")), state,
               json_number_value(json_object_get(v, "uptime")),
               json_string_value(json_object_get(v, "status")));
        if (strcmp(state, "exited") == 0) {
            const char *end = json_string_value(json_object_get(v, "end"));
            printf("%s", end ? end : "exited");
        }
        if (json_is_true(json_object_get(v, "adopted")))
            printf(" (adopted)");
        json_t *w = json_object_get(v, "weight");
        if (json_is_integer(w) && strcmp(state, "exited") != 0)
            printf(" [weight %lld]", (long long)json_integer_value(w));
        const char *pname;
        json_t *port;
        json_object_foreach(json_object_get(v, "ports"), pname, port)
            printf(" [%s: port %lld]", pname, (long long)json_integer_value(port));
        printf("\n");
    }
    long long hidden = json_integer_value(json_object_get(r, "exited_not_shown"));
    if (hidden > 0)
        printf("  (%lld older exited generation%s not shown)\n", hidden, hidden == 1 ? "" : "s");
    json_t *last = json_object_get(r, "last_restart");
    if (json_is_object(last))
        printf("  last restart %s, %.0fs ago, in %.3fs: %s\n",
               json_is_true(json_object_get(last, "ok")) ? "took over" : "ROLLED BACK",
               clock_unix() - json_number_value(json_object_get(last, "time")),
               json_number_value(json_object_get(last, "duration")),
               json_string_value(json_object_get(last, "reason")));
    json_array_foreach(json_object_get(r, "fdstore"), i, v) {
        printf("  stored   %-12s from generation %lld, %.1fs ago",
               json_string_value(json_object_get(v, "name")),
               (long long)json_integer_value(json_object_get(v, "generation")),
               json_number_value(json_object_get(v, "age")));
        json_t *err = json_object_get(v, "error"), *bytes = json_object_get(v, "bytes");
        if (err)
            printf(": BAD: %s", json_string_value(err));
        else if (bytes)
            printf(": state, schema %lld, %lld bytes",
                   (long long)json_integer_value(json_object_get(v, "schema")),
                   (long long)json_integer_value(bytes));
        printf("\n");
    }
}

static void print_stats(json_t *r)
{
    size_t i;
    json_t *m;
    printf("%-32s %-9s %14s  %s\n", "metric", "type", "total", "by generation");
    json_array_foreach(json_object_get(r, "metrics"), i, m) {
        const char *type = json_string_value(json_object_get(m, "type"));
        int hist = strcmp(type, "histogram") == 0;
        json_t *total = json_object_get(m, hist ? "count" : "value");
        printf("%-32s %-9s %14.15g ", json_string_value(json_object_get(m, "name")), type,
               json_number_value(total));
        const char *g;
        json_t *v;
        json_object_foreach(json_object_get(m, "generations"), g, v) {
            double x = hist ? json_number_value(json_object_get(v, "count")) : json_number_value(v);
            printf(" %s=%.15g", g, x);
        }
        if (hist)
            printf("  (sum %.6g)", json_number_value(json_object_get(m, "sum")));
        printf("\n");
    }
    json_t *k = json_object_get(r, "kernel");
    if (!json_is_object(k))
        return;
    printf("\nfrom the kernel (any app):\n");
    json_array_foreach(json_object_get(k, "generations"), i, m) {
        json_t *conns = json_object_get(m, "connections");
        char n[32] = "? (unreadable)";
        if (json_is_integer(conns))
            snprintf(n, sizeof n, "%lld", (long long)json_integer_value(conns));
        printf("  generation %lld: %s connections (%lld closing), %lld processes, %.1f MiB "
               "resident, %.2f s CPU\n",
               (long long)json_integer_value(json_object_get(m, "id")), n,
               (long long)json_integer_value(json_object_get(m, "connections_closing")),
               (long long)json_integer_value(json_object_get(m, "processes")),
               (double)json_integer_value(json_object_get(m, "rss_bytes")) / 1048576.0,
               json_number_value(json_object_get(m, "cpu_seconds")));
    }
    json_t *ls = json_object_get(k, "listeners");
    long long waiting = 0, fullest = -1;
    const char *fullest_name = "";
    json_array_foreach(ls, i, m) {
        long long q = json_integer_value(json_object_get(m, "queue"));
        waiting += q;
        if (q > fullest) {
            fullest = q;
            fullest_name = json_string_value(json_object_get(m, "name"));
        }
        if (json_array_size(ls) > TEXT_LIST_MAX)
            continue; /* summed up below */
        printf("  listener %s: %lld waiting to be accepted (at most %lld)\n",
               json_string_value(json_object_get(m, "name")), q,
               (long long)json_integer_value(json_object_get(m, "max_queue")));
    }
    if (json_array_size(ls) > TEXT_LIST_MAX)
        printf("  %zu listeners: %lld waiting to be accepted in all, the most at %s (%lld); "
               "`baton stats --json` has each\n",
               json_array_size(ls), waiting, fullest_name ? fullest_name : "?", fullest);
    if (json_object_get(k, "listen_overflows"))
        printf("  accept queue overflows (all listeners of the network namespace): %lld\n",
               (long long)json_integer_value(json_object_get(k, "listen_overflows")));
}

/* baton logs: the newest N lines (of generation GEN), then with FOLLOW each
 * new one as it comes (asked for every 200 ms) until the supervisor goes. */
static int print_logs(const char *sock, long n, long gen, int follow, int json)
{
    long long after = 0;
    for (int first = 1;; first = 0) {
        json_t *req = json_pack("{s:s, s:I, s:I}", "cmd", "logs", "after", (json_int_t)after, "gen",
                                (json_int_t)gen),
               *resp = NULL;
        if (first && n != 0) /* -n 0 (n -1): one line asked, for its place only */
            json_object_set_new(req, "n", json_integer(n > 0 ? n : 1));
        json_object_set_new(req, "parts", json_true()); /* a megabyte of lines: in parts */
        char err[512];
        int r = control_call(sock, req, 5000, NULL, NULL, &resp, err, sizeof err);
        json_decref(req);
        if (r < 0) {
            if (!first)
                return 0; /* following, and the supervisor has gone */
            fprintf(stderr, "baton logs: %s\n", err);
            return r == -ENOENT || r == -ECONNREFUSED ? 3 : 2;
        }
        size_t i;
        json_t *l;
        /* -n 0: the first answer only says where the output is now. */
        json_t *lines = first && n < 0 ? NULL : json_object_get(resp, "lines");
        json_array_foreach(lines, i, l) {
            if (json) { /* one JSON object per line: the contract */
                char *text = json_dumps(l, JSON_COMPACT | JSON_REAL_PRECISION(15));
                printf("%s\n", text ? text : "{}");
                free(text);
            } else {
                char when[32];
                local_time(json_object_get(l, "time"), when, sizeof when);
                printf("%s gen %lld %s| %s\n", when,
                       (long long)json_integer_value(json_object_get(l, "generation")),
                       strcmp(json_string_value(json_object_get(l, "stream")), "stdout") == 0
                           ? "out"
                           : "err",
                       json_string_value(json_object_get(l, "line")));
            }
            after = json_integer_value(json_object_get(l, "seq"));
        }
        if (after == 0)
            after = json_integer_value(json_object_get(resp, "next"));
        json_decref(resp);
        fflush(stdout);
        if (!follow)
            return 0;
        struct timespec pause = { 0, 200 * 1000000L };
        nanosleep(&pause, NULL);
    }
}

int cli_main(const char *cmd, int argc, char **argv)
{
    const struct command *c = commands_find(cmd);
    if (!c || !(c->facts & CMD_SENT)) {
        fprintf(stderr, "baton: '%s' is not a client command\n", cmd);
        return 2;
    }
    const char *sock = NULL, *file = NULL;
    int json = 0, timeout_ms = 5000, follow = 0;
    long n = 0, gen = 0;
    /* -f is the service file, unless the command's own (logs: it follows,
     * as tail -f does). */
    int own_f = command_takes(c, "-f", NULL, 0);
    int logs = strcmp(cmd, "logs") == 0, restart = strcmp(cmd, "restart") == 0;
    int progress = restart && isatty(STDOUT_FILENO); /* -1: --quiet */
    static const struct option opts[] = {
        { "socket", required_argument, NULL, 's' },
        { "file", required_argument, NULL, 'S' },
        { "json", no_argument, NULL, 'j' },
        { "gen", required_argument, NULL, 'g' },
        { "follow", no_argument, NULL, 'F' },
        { "progress", no_argument, NULL, 'P' },
        { "quiet", no_argument, NULL, 'q' },
        { "binary", required_argument, NULL, 'B' },
        { "dry-run", no_argument, NULL, 'D' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *binary = NULL;
    int c2, dry_run = 0;
    optind = 1;
    while ((c2 = getopt_long(argc, argv, own_f ? "s:fn:jh" : "s:f:n:jh", opts, NULL)) != -1) {
        /* An option the command does not take: say which commands do. */
        const char *opt = c2 == 'n'   ? "-n"
                          : c2 == 'g' ? "--gen"
                          : c2 == 'P' ? "--progress"
                          : c2 == 'q' ? "--quiet"
                          : c2 == 'B' ? "--binary"
                          : c2 == 'D' ? "--dry-run"
                                      : NULL;
        if (opt && !command_takes(c, opt, NULL, 0)) {
            char by[128] = "";
            size_t all;
            const struct command *t = commands_all(&all);
            for (size_t i = 0; i < all; i++)
                if ((t[i].facts & CMD_SENT) && command_takes(&t[i], opt, NULL, 0))
                    snprintf(by + strlen(by), sizeof by - strlen(by), "%s%s", *by ? ", " : "",
                             t[i].name);
            fprintf(stderr, "baton %s: %s is for %s\n", cmd, opt, *by ? by : "no command");
            return 2;
        }
        switch (c2) {
        case 's': sock = optarg; break;
        case 'S': file = optarg; break;
        case 'f':
            if (own_f)
                follow = 1;
            else
                file = optarg;
            break;
        case 'F': follow = own_f; break; /* --follow: -f, where -f follows */
        case 'P':
        case 'q': progress = c2 == 'P'; break;
        case 'j': json = 1; break;
        case 'B': binary = optarg; break;
        case 'D': dry_run = 1; break;
        case 'n':
        case 'g': {
            char *end;
            long v = strtol(optarg, &end, 10);
            /* logs -n 0: none of the lines already written (with -f: only
             * what comes from now on, as tail -f -n 0). */
            long lowest = c2 == 'n' && logs ? 0 : 1;
            if (*end || v < lowest || v > 1000000) {
                fprintf(stderr, "baton %s: %s takes a %s count\n", cmd, opt,
                        lowest ? "positive" : "whole");
                return 2;
            }
            if (c2 == 'n')
                n = v ? v : -1; /* -1: -n 0 */
            else
                gen = v;
            break;
        }
        case 'h': usage_client(stdout, c); return 0;
        default: usage_client(stderr, c); return 2;
        }
    }
    if (optind < argc) {
        /* `baton logs -f svc.lua`: -f follows here, as tail -f does. */
        if (own_f && follow)
            fprintf(stderr,
                    "baton %s: unexpected argument '%s' (-f follows here; name the service "
                    "file with --file %s)\n",
                    cmd, argv[optind], argv[optind]);
        else
            fprintf(stderr, "baton %s: unexpected argument '%s'\n", cmd, argv[optind]);
        return 2;
    }
    char path[PATH_MAX], err[1024];
    int code = cli_control_socket(sock, file, path, sizeof path, &sock, err, sizeof err);
    if (code) {
        fprintf(stderr, "baton %s: %s\n", cmd, err);
        return code;
    }
    /* restart, stop and the like answer when they are done: a drain may take
     * minutes; upgrade waits for a restart under way, then its check. */
    if (c->facts & CMD_WAITS)
        timeout_ms = -1;
    char abs[PATH_MAX];
    if (binary && !realpath(binary, abs)) {
        fprintf(stderr, "baton upgrade: %s: %s\n", binary, strerror(errno));
        return 2;
    }

    if (logs)
        return print_logs(sock, n, gen, follow, json);
    json_t *req = json_pack("{s:s}", "cmd", cmd), *resp = NULL;
    if (n > 0)
        json_object_set_new(req, "n", json_integer(n));
    if (c->facts & CMD_PARTS) /* lists of any length: the answer in parts */
        json_object_set_new(req, "parts", json_true());
    if (binary)
        json_object_set_new(req, "binary", json_string(abs));
    if (dry_run)
        json_object_set_new(req, "dry_run", json_true());
    progress = progress > 0 && !json; /* --json: one object on stdout, nothing else */
    if (progress)
        json_object_set_new(req, "progress", json_true());
    double t0 = clock_unix();
    int r = control_call(sock, req, timeout_ms, progress ? print_progress : NULL, &t0, &resp, err,
                         sizeof err);
    json_decref(req);
    if (r < 0) {
        if (json) { /* the failure as the contract's object, still nothing on stderr */
            json_t *j = json_pack("{s:b, s:s}", "ok", 0, "error", err);
            if (j && restart)
                json_object_set_new(j, "outcome", json_string("unreachable"));
            char *text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
            printf("%s\n", text ? text : "{}");
            free(text);
            json_decref(j);
        } else {
            fprintf(stderr, "baton %s: %s\n", cmd, err);
        }
        return r == -ENOENT || r == -ECONNREFUSED ? 3 : 2;
    }
    int ok = json_is_true(json_object_get(resp, "ok"));
    if (json && ok && strcmp(cmd, "events") == 0) {
        /* The contract: a JSON array of events, nothing else. */
        char *text = json_dumps(json_object_get(resp, "events"),
                                JSON_INDENT(2) | JSON_REAL_PRECISION(15));
        printf("%s\n", text ? text : "[]");
        free(text);
    } else if (json) {
        char *text = json_dumps(resp, JSON_INDENT(2) | JSON_REAL_PRECISION(15));
        printf("%s\n", text ? text : "{}");
        free(text);
    } else if (!ok) {
        fprintf(stderr, "baton %s: %s\n", cmd, json_string_value(json_object_get(resp, "error")));
    } else if (strcmp(cmd, "status") == 0) {
        print_status(resp);
    } else if (strcmp(cmd, "stats") == 0) {
        print_stats(resp);
    } else if (strcmp(cmd, "events") == 0) {
        print_events(resp);
    } else if (strcmp(cmd, "upgrade") == 0) {
        printf("upgraded: pid %lld now runs baton %s (%s), %.3fs\n",
               (long long)json_integer_value(json_object_get(resp, "pid")),
               json_string_value(json_object_get(resp, "version")),
               json_string_value(json_object_get(resp, "binary")),
               json_number_value(json_object_get(resp, "duration")));
    } else {
        const char *m = json_string_value(json_object_get(resp, "message"));
        printf("%s\n", m ? m : "ok");
    }
    json_decref(resp);
    return ok ? 0 : 1;
}
