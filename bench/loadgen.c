/* loadgen: an HTTP/1.1 load client that counts every way a request can fail.
 *
 *   loadgen --port PORT [--host 127.0.0.1] [--keepalive N] [--close N]
 *           [--duration SECONDS] [--timeout-ms MS] [--path /PATH] [--timeline]
 *           [--timeline-ms MS] [--retry-ms MS]
 *
 * --keepalive N connections send request after request on one connection;
 * --close N connections send one request with "Connection: close" each and
 * reconnect, so new connections arrive all the time. It runs until
 * --duration (default 60, at most 600) or SIGINT/SIGTERM, then lets requests
 * in flight finish (at most --timeout-ms) and prints one line:
 *
 *   loadgen: requests=N ok=N non2xx=N connect_errors=N resets=N eof=N
 *            timeouts=N p50_us=N p99_us=N max_us=N connects=N
 *
 * A connection the server closes between requests (after a response that
 * said Connection: close, or while idle with nothing asked) is no error;
 * a connection lost with a request outstanding is. --timeline prints
 * "t=SECONDS epoch_ms=MS ok=N errors=N" every second (every --timeline-ms).
 * A client whose connect failed waits --retry-ms (default 10) before it tries
 * again, as a real client backs off; a refusing port is not a tight loop.
 * Up to 16384 connections; it raises its open-file limit to the hard one.
 *
 * The client itself is src/loadclient.c (`baton drill` runs the same one);
 * this is its command line and its summary line. */

#include "client/loadclient.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <uv.h>

static uv_loop_t *loop;
static struct loadclient *lc;
static int stopping, timeline;
static uv_timer_t stop_timer, tick_timer;
static uv_signal_t sigint_h, sigterm_h;
static double t0;
static long tick_ms = 1000;
static unsigned long long last_ok, last_err; /* the timeline's previous tick */

static void on_done(struct loadclient *l, void *ctx)
{
    (void)l;
    (void)ctx;
    uv_stop(loop);
}

static void stop(void)
{
    if (stopping)
        return;
    stopping = 1;
    uv_timer_stop(&stop_timer);
    uv_close((uv_handle_t *)&sigint_h, NULL);
    uv_close((uv_handle_t *)&sigterm_h, NULL);
    uv_timer_stop(&tick_timer);
    uv_close((uv_handle_t *)&tick_timer, NULL);
    loadclient_stop(lc, on_done, NULL);
}

static void on_stop_timer(uv_timer_t *t)
{
    (void)t;
    stop();
}
static void on_signal(uv_signal_t *h, int s)
{
    (void)h;
    (void)s;
    stop();
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
    struct loadclient_counts n;
    loadclient_read(lc, &n);
    if (timeline) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        printf("t=%.3f epoch_ms=%llu ok=%llu errors=%llu\n", (double)uv_hrtime() / 1e9 - t0,
               (unsigned long long)ts.tv_sec * 1000 + (unsigned long long)ts.tv_nsec / 1000000,
               n.ok - last_ok, n.errors - last_err);
    }
    fflush(stdout);
    last_ok = n.ok;
    last_err = n.errors;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *path = "/";
    int port = 0, keep = 0, close_n = 0;
    double duration = 60;
    long timeout_ms = 5000, retry_ms = 10;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--timeline") == 0) {
            timeline = 1;
            continue;
        }
        if (strcmp(a, "--timeline-ms") == 0 && v) {
            timeline = 1;
            tick_ms = atol(v);
            i++;
            continue;
        }
        if (!v)
            goto usage;
        if (strcmp(a, "--host") == 0)
            host = v;
        else if (strcmp(a, "--port") == 0)
            port = atoi(v);
        else if (strcmp(a, "--keepalive") == 0)
            keep = atoi(v);
        else if (strcmp(a, "--close") == 0)
            close_n = atoi(v);
        else if (strcmp(a, "--duration") == 0)
            duration = atof(v);
        else if (strcmp(a, "--timeout-ms") == 0)
            timeout_ms = atol(v);
        else if (strcmp(a, "--path") == 0)
            path = v;
        else if (strcmp(a, "--retry-ms") == 0)
            retry_ms = atol(v);
        else
            goto usage;
        i++;
    }
    if (port <= 0 || port > 65535 || keep < 0 || close_n < 0 || keep + close_n == 0 ||
        keep + close_n > LOADCLIENT_MAX_CONNS || duration <= 0 || duration > 600 ||
        timeout_ms <= 0 || path[0] != '/' || strlen(path) > 128 || strpbrk(path, " \r\n") ||
        tick_ms < 10 || retry_ms < 0 || retry_ms > 10000)
        goto usage;
    struct sockaddr_in target;
    if (uv_ip4_addr(host, port, &target) < 0)
        goto usage;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    char host_header[128], err[256];
    snprintf(host_header, sizeof host_header, "%.100s:%d", host, port);
    signal(SIGPIPE, SIG_IGN);
    loop = uv_default_loop();
    struct loadclient_opts o = {
        .target = (const struct sockaddr *)&target,
        .host_header = host_header,
        .path = path,
        .keepalive = keep,
        .close = close_n,
        .timeout_ms = timeout_ms,
        .retry_ms = retry_ms,
        .log_name = "loadgen",
        .log = stderr,
    };
    lc = loadclient_new(loop, &o, err, sizeof err);
    if (!lc) {
        fprintf(stderr, "loadgen: %s\n", err);
        return 2;
    }
    t0 = (double)uv_hrtime() / 1e9;
    uv_timer_init(loop, &stop_timer);
    uv_timer_init(loop, &tick_timer);
    uv_timer_start(&stop_timer, on_stop_timer, (uint64_t)(duration * 1000), 0);
    uv_timer_start(&tick_timer, on_tick, (uint64_t)tick_ms, (uint64_t)tick_ms);
    uv_signal_init(loop, &sigint_h);
    uv_signal_init(loop, &sigterm_h);
    uv_signal_start(&sigint_h, on_signal, SIGINT);
    uv_signal_start(&sigterm_h, on_signal, SIGTERM);
    loadclient_start(lc);
    uv_run(loop, UV_RUN_DEFAULT);
    struct loadclient_counts st;
    loadclient_read(lc, &st);
    printf("loadgen: requests=%llu ok=%llu non2xx=%llu connect_errors=%llu resets=%llu eof=%llu "
           "timeouts=%llu p50_us=%llu p99_us=%llu max_us=%llu connects=%llu\n",
           st.requests, st.ok, st.non2xx, st.connect_errors, st.resets, st.eof, st.timeouts,
           (unsigned long long)st.p50_us, (unsigned long long)st.p99_us,
           (unsigned long long)st.max_us, st.connects);
    loadclient_free(lc);
    return 0;
usage:
    fprintf(stderr, "usage: loadgen --port PORT [--host 127.0.0.1] [--keepalive N] [--close N] "
                    "[--duration S] [--timeout-ms MS] [--path /PATH] [--timeline] "
                    "[--timeline-ms MS]\n");
    return 2;
}
