#include "client/drill.h"

#include "client/cli.h"
#include "base/clock.h"
#include "loop/control.h"
#include "client/loadclient.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <time.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DRILL_MAX 1000          /* restarts, and connections */
#define STATUS_WAIT_MS 5000     /* a status answer */
#define RESTART_WAIT_MS 600000  /* a restart's answer (it comes once its outcome is known) */
#define PAUSE_MS 200            /* between one restart's answer and the next request */
#define WARMUP_MS 3000          /* at most, for the load's first answer */
#define BASELINE_MS 1000        /* of load before the first restart: what fails without one */
#define DRAIN_WAIT_MS 60000     /* at most, after the last restart, for the drains to end */
#define SETTLE_MS 300           /* load after the drains, before it stops */
#define REQUEST_TIMEOUT_MS 5000 /* a request without its complete answer: a timeout */

/* What each cause means, and what to change. */
static const struct {
    const char *what, *advice;
} causes[LOADCLIENT_CAUSES] = {
    [LOADCLIENT_CONNECT] = { "refused or reset at connect",
                             "a baton bug: never expected (the listening socket is passed to "
                             "every generation and stays open across restarts); report it with "
                             "the output of `baton events` and the supervisor's log" },
    [LOADCLIENT_KEEPALIVE_CLOSED] = { "keep-alive connection closed under a request",
                                      "the app's drain: it closes idle keep-alive connections while a request may be on "
                                      "the wire (RFC 9112 \xc2\xa7"
                                      "9.6); answer the next request on each connection with `Connection: close` "
                                      "instead, and let the drain end when no connection is left (policy graceful)" },
    [LOADCLIENT_NEW_CLOSED] = { "new connection closed before its answer",
                                "the app closes connections it accepted without answering the request on them "
                                "(most often at its drain): answer every request it has read, with `Connection: "
                                "close`, before it closes; if the app never does that, it is a baton bug" },
    [LOADCLIENT_CUT] = { "response cut mid-way",
                         "the app exits before it finishes: wait for in-flight requests before "
                         "exiting" },
    [LOADCLIENT_TIMEOUT] = { "timed out (no complete answer within 5 s)",
                             "a generation held a request without answering: the new one says READY=1 before it "
                             "serves (say it once it answers), or the old one stops reading at SIGTERM but keeps "
                             "the connection open (keep answering until it closes each connection)" },
    [LOADCLIENT_NON2XX] = { "answered with a status other than 2xx",
                            "the app answered errors around a restart: a new generation serving before it can "
                            "(say READY=1 once it can answer), or an old one refusing requests while it drains "
                            "(answer them, with `Connection: close`)" },
};

/* The load, on a thread with a loop of its own; the main thread sees a
 * snapshot of the counts, copied every 100 ms, under MU. */
struct load {
    uv_loop_t loop;
    uv_async_t stop;
    uv_timer_t snap_timer;
    struct loadclient *lc;
    pthread_t thread;
    pthread_mutex_t mu;
    struct loadclient_counts snap;
};

static void load_snapshot(struct load *l)
{
    struct loadclient_counts n;
    loadclient_read(l->lc, &n);
    pthread_mutex_lock(&l->mu);
    l->snap = n;
    pthread_mutex_unlock(&l->mu);
}

static void on_snap(uv_timer_t *t)
{
    load_snapshot(t->data);
}

static void on_stop(uv_async_t *a)
{
    struct load *l = a->data;
    uv_close((uv_handle_t *)&l->stop, NULL);
    uv_close((uv_handle_t *)&l->snap_timer, NULL);
    loadclient_stop(l->lc, NULL, NULL); /* the loop ends once its handles are closed */
}

static void *load_thread(void *arg)
{
    struct load *l = arg;
    loadclient_start(l->lc);
    uv_run(&l->loop, UV_RUN_DEFAULT);
    load_snapshot(l);
    return NULL;
}

static struct loadclient_counts load_counts(struct load *l)
{
    pthread_mutex_lock(&l->mu);
    struct loadclient_counts n = l->snap;
    pthread_mutex_unlock(&l->mu);
    return n;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static void usage(FILE *to)
{
    fprintf(to,
            "usage: baton drill [-s CONTROL_SOCKET | -f SERVICE_FILE] [-n RESTARTS] "
            "[--listener NAME]\n"
            "                   [--connections N] [--json]\n"
            "Rehearses RESTARTS (default 5, at most %d) restarts of the running service, one\n"
            "after the other, while a load of HTTP/1.1 GET / runs against its first TCP\n"
            "listener (or NAME): N clients (default 16, at most %d), half on keep-alive\n"
            "connections, half on a new connection per request. Then reports each failed\n"
            "request by its cause, with what to change.\n"
            "Exit codes: 0 every restart took over and no request failed, 1 a request failed\n"
            "or a restart did not take over, 2 usage, 3 not running.\n",
            DRILL_MAX, DRILL_MAX);
}

/* "tcp://HOST:PORT" or "tcp://[V6]:PORT" as an address to connect to (a
 * wildcard host is reached on loopback) and the Host header. 0 or -EINVAL. */
static int parse_tcp(const char *address, struct sockaddr_storage *ss, char *host_header,
                     size_t hlen)
{
    char host[INET6_ADDRSTRLEN + 2];
    if (strncmp(address, "tcp://", 6) != 0)
        return -EINVAL;
    const char *a = address + 6, *colon = strrchr(a, ':');
    if (!colon || colon == a)
        return -EINVAL;
    size_t n = (size_t)(colon - a);
    if (a[0] == '[') {
        if (n < 3 || a[n - 1] != ']')
            return -EINVAL;
        a++;
        n -= 2;
    }
    if (n >= sizeof host)
        return -EINVAL;
    memcpy(host, a, n);
    host[n] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 1 || port > 65535)
        return -EINVAL;
    int v6 = strchr(host, ':') != NULL;
    if (strcmp(host, "0.0.0.0") == 0)
        snprintf(host, sizeof host, "127.0.0.1");
    else if (strcmp(host, "::") == 0)
        snprintf(host, sizeof host, "::1");
    memset(ss, 0, sizeof *ss);
    if (v6 ? uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss)
           : uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss))
        return -EINVAL;
    snprintf(host_header, hlen, v6 ? "[%s]:%ld" : "%s:%ld", host, port);
    return 0;
}

/* Every generation that is not the active one has exited (or status went
 * unanswered: nothing to wait for). */
static int drains_over(const char *sock)
{
    json_t *req = json_pack("{s:s}", "cmd", "status"), *resp = NULL;
    char err[256];
    int r = control_call(sock, req, STATUS_WAIT_MS, NULL, NULL, &resp, err, sizeof err);
    json_decref(req);
    if (r < 0)
        return 1;
    int over = 1;
    size_t i;
    json_t *g;
    json_array_foreach(json_object_get(resp, "generations"), i, g) {
        const char *state = json_string_value(json_object_get(g, "state"));
        if (state && strcmp(state, "active") != 0 && strcmp(state, "exited") != 0)
            over = 0;
    }
    json_decref(resp);
    return over;
}

static void print_json(json_t *j)
{
    char *text = j ? json_dumps(j, JSON_INDENT(2) | JSON_REAL_PRECISION(15)) : NULL;
    printf("%s\n", text ? text : "{}");
    free(text);
}

/* A failure before the drill began: on stderr, or as {"ok":false,"error"}. */
static int early_fail(int json, int code, const char *err)
{
    if (json) {
        json_t *j = json_pack("{s:b, s:s}", "ok", 0, "error", err);
        print_json(j);
        json_decref(j);
    } else {
        fprintf(stderr, "baton drill: %s\n", err);
    }
    return code;
}

static int parse_count(const char *s, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < 1 || v > DRILL_MAX)
        return -1;
    *out = v;
    return 0;
}

int drill_main(int argc, char **argv)
{
    const char *sock = NULL, *file = NULL, *want = NULL;
    long restarts = 5, conns = 16;
    int json = 0, c;
    static const struct option opts[] = {
        { "socket", required_argument, NULL, 's' },
        { "file", required_argument, NULL, 'f' },
        { "restarts", required_argument, NULL, 'n' },
        { "listener", required_argument, NULL, 'L' },
        { "connections", required_argument, NULL, 'c' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    optind = 1;
    while ((c = getopt_long(argc, argv, "s:f:n:jh", opts, NULL)) != -1) {
        switch (c) {
        case 's': sock = optarg; break;
        case 'f': file = optarg; break;
        case 'L': want = optarg; break;
        case 'j': json = 1; break;
        case 'n':
        case 'c':
            if (parse_count(optarg, c == 'n' ? &restarts : &conns) < 0) {
                fprintf(stderr, "baton drill: %s takes a count from 1 to %d\n",
                        c == 'n' ? "-n" : "--connections", DRILL_MAX);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "baton drill: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }

    char path[PATH_MAX], err[1024];
    int code = cli_control_socket(sock, file, path, sizeof path, &sock, err, sizeof err);
    if (code)
        return early_fail(json, code, err);

    /* The listener: its address from the supervisor. */
    json_t *req = json_pack("{s:s}", "cmd", "status"), *status = NULL;
    int r = control_call(sock, req, STATUS_WAIT_MS, NULL, NULL, &status, err, sizeof err);
    json_decref(req);
    if (r < 0)
        return early_fail(json, r == -ENOENT || r == -ECONNREFUSED ? 3 : 2, err);
    const char *name = NULL, *address = NULL;
    size_t i;
    json_t *l;
    json_array_foreach(json_object_get(status, "listeners"), i, l) {
        const char *n = json_string_value(json_object_get(l, "name"));
        const char *a = json_string_value(json_object_get(l, "address"));
        if (!n || !a || (want && strcmp(n, want) != 0))
            continue;
        if (strncmp(a, "tcp://", 6) != 0 || json_is_true(json_object_get(l, "per_generation"))) {
            if (!want)
                continue;
            snprintf(err, sizeof err,
                     "listener '%s' (%s) is not one TCP socket the generations share: drill "
                     "needs a tcp:// listener",
                     n, a);
            json_decref(status);
            return early_fail(json, 2, err);
        }
        name = n;
        address = a;
        break;
    }
    struct sockaddr_storage target;
    char host_header[128], where[320], service[128];
    snprintf(service, sizeof service, "%s",
             json_string_value(json_object_get(status, "service"))
                 ? json_string_value(json_object_get(status, "service"))
                 : "?");
    if (!name) {
        snprintf(err, sizeof err, want ? "no listener named '%s'" : "no tcp:// listener%s",
                 want ? want : " (drill loads a TCP listener the generations share)");
        json_decref(status);
        return early_fail(json, 2, err);
    }
    snprintf(where, sizeof where, "%s (%s)", name, address);
    if (parse_tcp(address, &target, host_header, sizeof host_header) < 0) {
        snprintf(err, sizeof err, "listener %s: an address drill cannot read", where);
        json_decref(status);
        return early_fail(json, 2, err);
    }
    char lname[64], laddr[256];
    snprintf(lname, sizeof lname, "%s", name);
    snprintf(laddr, sizeof laddr, "%s", address);
    json_decref(status);

    /* The load, on its own thread and loop. */
    int keep = (int)(conns + 1) / 2, close_n = (int)conns / 2;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    struct load *ld = calloc(1, sizeof *ld);
    if (!ld || uv_loop_init(&ld->loop) < 0) {
        free(ld);
        return early_fail(json, 2, "out of memory");
    }
    struct loadclient_opts o = {
        .target = (const struct sockaddr *)&target,
        .host_header = host_header,
        .path = "/",
        .keepalive = keep,
        .close = close_n,
        .timeout_ms = REQUEST_TIMEOUT_MS,
        .retry_ms = 10,
    };
    ld->lc = loadclient_new(&ld->loop, &o, err, sizeof err);
    if (!ld->lc) {
        uv_loop_close(&ld->loop);
        free(ld);
        return early_fail(json, 2, err);
    }
    pthread_mutex_init(&ld->mu, NULL);
    uv_async_init(&ld->loop, &ld->stop, on_stop);
    uv_timer_init(&ld->loop, &ld->snap_timer);
    ld->stop.data = ld->snap_timer.data = ld;
    uv_timer_start(&ld->snap_timer, on_snap, 100, 100);
    if (pthread_create(&ld->thread, NULL, load_thread, ld) != 0) {
        /* Nothing runs the loop: close what is on it here. */
        uv_close((uv_handle_t *)&ld->stop, NULL);
        uv_close((uv_handle_t *)&ld->snap_timer, NULL);
        uv_run(&ld->loop, UV_RUN_DEFAULT);
        uv_loop_close(&ld->loop);
        loadclient_free(ld->lc);
        free(ld);
        return early_fail(json, 2, "cannot start the load's thread");
    }
    if (!json) {
        printf("drill: %ld restart%s of service %s under load on listener %s: %d keep-alive and "
               "%d new-connection clients\n",
               restarts, restarts == 1 ? "" : "s", service, where, keep, close_n);
        fflush(stdout);
    }
    for (double t0 = clock_mono(); load_counts(ld).ok == 0 && clock_mono() - t0 < WARMUP_MS / 1e3;)
        sleep_ms(20);
    /* No 2xx yet: nothing to measure a restart by, so none is asked. Else
     * a second of load with no restart: what fails then is the app's own
     * doing (one that does not keep connections alive, say), and is not
     * blamed on its drain. */
    struct loadclient_counts base = load_counts(ld);
    if (base.ok > 0) {
        sleep_ms(BASELINE_MS);
        base = load_counts(ld);
    }
    char lost[1100] = ""; /* why the drill ended early */
    if (base.ok == 0)
        snprintf(lost, sizeof lost,
                 "no 2xx answer to GET / from listener %s within %d s (%llu non-2xx, %llu failed "
                 "connects, %llu other failures): no restart was asked",
                 where, WARMUP_MS / 1000, base.by_cause[LOADCLIENT_NON2XX],
                 base.by_cause[LOADCLIENT_CONNECT],
                 base.errors - base.by_cause[LOADCLIENT_NON2XX] -
                     base.by_cause[LOADCLIENT_CONNECT]);

    /* The restarts, one after the other. */
    json_t *outcomes = json_array();
    long took_over = 0, rolled_back = 0, refused = 0, asked = 0;
    for (long k = 1; k <= restarts && !lost[0]; k++) {
        if (k > 1)
            sleep_ms(PAUSE_MS);
        json_t *rq = json_pack("{s:s}", "cmd", "restart"), *resp = NULL;
        asked++;
        r = control_call(sock, rq, RESTART_WAIT_MS, NULL, NULL, &resp, err, sizeof err);
        json_decref(rq);
        if (r < 0) {
            snprintf(lost, sizeof lost, "restart %ld: %s", k, err);
            if (!json)
                printf("  restart %ld/%ld: %s\n", k, restarts, err);
            break;
        }
        const char *outcome = json_string_value(json_object_get(resp, "outcome"));
        if (!outcome)
            outcome = json_is_true(json_object_get(resp, "ok")) ? "took over" : "refused";
        int ok = json_is_true(json_object_get(resp, "ok"));
        if (ok)
            took_over++;
        else if (strcmp(outcome, "rolled back") == 0)
            rolled_back++;
        else
            refused++;
        json_t *one = json_pack("{s:I, s:s, s:b}", "restart", (json_int_t)k, "outcome", outcome,
                                "ok", ok);
        static const char *const keys[] = {
            "new", "old", "duration", "reason", "message", "error"
        };
        for (size_t q = 0; one && q < sizeof keys / sizeof *keys; q++) {
            json_t *v = json_object_get(resp, keys[q]);
            if (v)
                json_object_set(one, keys[q], v);
        }
        json_array_append_new(outcomes, one);
        if (!json) {
            const char *m = json_string_value(json_object_get(resp, ok ? "message" : "error"));
            struct loadclient_counts n = load_counts(ld);
            printf("  restart %ld/%ld: %s in %.3fs; so far %llu ok, %llu failed\n", k, restarts,
                   m ? m : outcome, json_number_value(json_object_get(resp, "duration")), n.ok,
                   n.errors);
            fflush(stdout);
        }
        json_decref(resp);
        if (!ok)
            break; /* the next restart would rehearse the same failure */
    }

    /* The drains of the last generations, then a little more load. */
    int drained = 1;
    if (!lost[0]) {
        double t0 = clock_mono();
        while (!(drained = drains_over(sock)) && clock_mono() - t0 < DRAIN_WAIT_MS / 1e3)
            sleep_ms(100);
    }
    sleep_ms(SETTLE_MS);
    uv_async_send(&ld->stop);
    pthread_join(ld->thread, NULL);
    struct loadclient_counts n = ld->snap;
    uv_loop_close(&ld->loop);
    loadclient_free(ld->lc);
    pthread_mutex_destroy(&ld->mu);
    free(ld);

    /* The verdict. */
    int failed = n.errors > 0 || took_over < restarts || n.ok == 0;
    char verdict[1400];
    if (lost[0])
        snprintf(verdict, sizeof verdict, "FAIL: %s", lost);
    else if (rolled_back || refused)
        snprintf(verdict, sizeof verdict,
                 "FAIL: restart %ld %s (see `baton events`); %llu request%s failed", asked,
                 rolled_back ? "rolled back" : "was refused", n.errors, n.errors == 1 ? "" : "s");
    else if (n.errors && base.errors)
        snprintf(verdict, sizeof verdict,
                 "FAIL: %llu of %llu requests failed during %ld restarts, and %llu of them in the "
                 "%d s before the first: the app fails without restarts too",
                 n.errors, n.requests, took_over, base.errors, BASELINE_MS / 1000);
    else if (n.errors)
        snprintf(verdict, sizeof verdict, "FAIL: %llu of %llu requests failed during %ld restarts",
                 n.errors, n.requests, took_over);
    else
        snprintf(verdict, sizeof verdict, "PASS: %ld restart%s under load, no request failed",
                 took_over, took_over == 1 ? "" : "s");

    if (json) {
        json_t *fails = json_object(), *list = json_array();
        for (int q = 0; q < LOADCLIENT_CAUSES; q++) {
            json_object_set_new(fails, loadclient_cause_name((enum loadclient_cause)q),
                                json_integer((json_int_t)n.by_cause[q]));
            if (n.by_cause[q])
                json_array_append_new(list,
                                      json_pack("{s:s, s:I, s:s, s:s}", "cause",
                                                loadclient_cause_name((enum loadclient_cause)q),
                                                "count", (json_int_t)n.by_cause[q], "what",
                                                causes[q].what, "advice", causes[q].advice));
        }
        json_t *j = json_pack(
            "{s:b, s:s, s:s, s:{s:s, s:s}, s:{s:i, s:i}, s:{s:I, s:I, s:I, s:I, s:I},"
            " s:o, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I}, s:o, s:o, s:b}",
            "ok", !failed, "verdict", verdict, "service", service, "listener", "name", lname,
            "address", laddr, "connections", "keepalive", keep, "close", close_n, "restarts",
            "asked", (json_int_t)restarts, "done", (json_int_t)(took_over + rolled_back),
            "took_over", (json_int_t)took_over, "rolled_back", (json_int_t)rolled_back, "refused",
            (json_int_t)refused, "outcomes", outcomes, "requests", "sent", (json_int_t)n.requests,
            "ok", (json_int_t)n.ok, "failed", (json_int_t)n.errors, "connects",
            (json_int_t)n.connects, "p50_us", (json_int_t)n.p50_us, "p99_us", (json_int_t)n.p99_us,
            "max_us", (json_int_t)n.max_us, "failures", fails, "causes", list, "drains_ended",
            drained);
        if (j && lost[0])
            json_object_set_new(j, "error", json_string(lost));
        if (j)
            json_object_set_new(json_object_get(j, "requests"), "failed_before_restarts",
                                json_integer((json_int_t)base.errors));
        print_json(j);
        json_decref(j);
        return failed ? 1 : 0;
    }
    json_decref(outcomes);
    if (asked == 0)
        printf("restarts: none asked\n");
    else
        printf("restarts: %ld of %ld took over, %ld rolled back%s%s\n", took_over, restarts,
               rolled_back, refused ? ", 1 refused" : "",
               asked < restarts ? " (the drill stops at the first that does not take over)" : "");
    printf("requests: %llu ok of %llu sent (p50 %.3f ms, p99 %.3f ms, max %.3f ms)\n", n.ok,
           n.requests, (double)n.p50_us / 1e3, (double)n.p99_us / 1e3, (double)n.max_us / 1e3);
    if (base.errors && base.ok)
        printf("note: %llu of these failures came before the first restart: not the restarts' "
               "doing\n",
               base.errors);
    if (!drained)
        printf("note: a generation was still draining %d s after the last restart; what it "
               "did after that is not counted\n",
               DRAIN_WAIT_MS / 1000);
    if (n.errors == 0) {
        printf("failures: none\n");
    } else {
        printf("failures by cause:\n");
        for (int q = 0; q < LOADCLIENT_CAUSES; q++) {
            if (!n.by_cause[q])
                continue;
            printf("  %8llu  %s\n", n.by_cause[q], causes[q].what);
            if (asked && base.by_cause[q])
                printf("            %llu of them before any restart: the app does this without "
                       "restarts (does it keep connections alive? a connection it closes after an "
                       "answer must say `Connection: close` in it), not only at its drain\n",
                       base.by_cause[q]);
            else if (asked)
                printf("            what to change: %s\n", causes[q].advice);
        }
    }
    printf("verdict: %s\n", verdict);
    return failed ? 1 : 0;
}
