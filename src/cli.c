#include "cli.h"

#include "control.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage_client(const char *cmd)
{
    fprintf(stderr,
            "usage: baton %s [-s CONTROL_SOCKET] [--json]\n"
            "The control socket is -s, else $BATON_CONTROL.\n",
            cmd);
}

static void print_status(json_t *r)
{
    printf("service %s (supervisor pid %lld, up %.1fs)\n",
           json_string_value(json_object_get(r, "service")),
           (long long)json_integer_value(json_object_get(r, "pid")),
           json_number_value(json_object_get(r, "uptime")));
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(r, "listeners"), i, v)
        printf("  listener %-12s %s (fd %lld)\n", json_string_value(json_object_get(v, "name")),
               json_string_value(json_object_get(v, "address")),
               (long long)json_integer_value(json_object_get(v, "fd")));
    printf("  %-4s %-8s %-9s %10s  %s\n", "gen", "pid", "state", "uptime", "status");
    json_array_foreach(json_object_get(r, "generations"), i, v) {
        const char *state = json_string_value(json_object_get(v, "state"));
        printf("  %-4lld %-8lld %-9s %9.1fs  %s",
               (long long)json_integer_value(json_object_get(v, "id")),
               (long long)json_integer_value(json_object_get(v, "pid")), state,
               json_number_value(json_object_get(v, "uptime")),
               json_string_value(json_object_get(v, "status")));
        if (strcmp(state, "exited") == 0) {
            long long sig = json_integer_value(json_object_get(v, "exit_signal"));
            if (sig)
                printf(" (signal %lld)", sig);
            else
                printf(" (exit code %lld)",
                       (long long)json_integer_value(json_object_get(v, "exit_code")));
        }
        printf("\n");
    }
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
}

int cli_main(const char *cmd, int argc, char **argv)
{
    const char *sock = getenv("BATON_CONTROL");
    int json = 0, timeout_ms = 5000;
    static const struct option opts[] = {
        { "socket", required_argument, NULL, 's' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "s:jh", opts, NULL)) != -1) {
        switch (c) {
        case 's': sock = optarg; break;
        case 'j': json = 1; break;
        case 'h': usage_client(cmd); return 0;
        default: usage_client(cmd); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "baton %s: unexpected argument '%s'\n", cmd, argv[optind]);
        return 2;
    }
    if (!sock || !*sock) {
        fprintf(stderr, "baton %s: no control socket: give -s PATH or set BATON_CONTROL\n", cmd);
        return 2;
    }
    /* restart and stop answer when they are done: a drain may take minutes. */
    if (strcmp(cmd, "restart") == 0 || strcmp(cmd, "stop") == 0 || strcmp(cmd, "rollback") == 0)
        timeout_ms = -1;

    json_t *req = json_pack("{s:s}", "cmd", cmd), *resp = NULL;
    char err[512];
    int r = control_call(sock, req, timeout_ms, &resp, err, sizeof err);
    json_decref(req);
    if (r < 0) {
        fprintf(stderr, "baton %s: %s\n", cmd, err);
        return 2;
    }
    int ok = json_is_true(json_object_get(resp, "ok"));
    if (json) {
        char *text = json_dumps(resp, JSON_INDENT(2));
        printf("%s\n", text ? text : "{}");
        free(text);
    } else if (!ok) {
        fprintf(stderr, "baton %s: %s\n", cmd, json_string_value(json_object_get(resp, "error")));
    } else if (strcmp(cmd, "status") == 0) {
        print_status(resp);
    } else if (strcmp(cmd, "stats") == 0) {
        print_stats(resp);
    } else {
        const char *m = json_string_value(json_object_get(resp, "message"));
        printf("%s\n", m ? m : "ok");
    }
    if (json && !ok)
        fprintf(stderr, "baton %s: %s\n", cmd, json_string_value(json_object_get(resp, "error")));
    json_decref(resp);
    return ok ? 0 : 1;
}
