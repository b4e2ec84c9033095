#ifndef BATON_METRICS_HTTP_H
#define BATON_METRICS_HTTP_H

/* The supervisor's HTTP endpoint, for scrapers and orchestrators' probes:
 *
 *   GET /metrics   Prometheus text format (stats_to_prometheus)
 *   GET /ready     200 while a generation serves, 503 otherwise (for a
 *                  Kubernetes readiness probe)
 *
 * Requests are parsed with http-parser; one request per connection, at most
 * METRICS_MAX_REQUEST bytes, answered or closed within METRICS_TIMEOUT_MS;
 * at most METRICS_MAX_CLIENTS connections at once.
 * Bind it to loopback unless a scraper elsewhere needs it. */

#include <stddef.h>
#include <uv.h>

#define METRICS_MAX_REQUEST 8192
#define METRICS_TIMEOUT_MS 2000
/* Connections open at once; past this a new one is closed at once, so that
 * no client (another local user, say) can hold the supervisor's fds. */
#define METRICS_MAX_CLIENTS 32

struct metrics_http;
/* Fills *BODY (malloc'd) and *LEN for the page; returns the HTTP status. */
typedef int (*metrics_page_cb)(struct metrics_http *m, const char *path, char **body, size_t *len);

struct metrics_http {
    uv_tcp_t server;
    metrics_page_cb page;
    void *data;
    int open;
    unsigned nclients; /* open now */
    unsigned long requests;
    unsigned long refused; /* connections closed at once: over METRICS_MAX_CLIENTS */
};

/* Listens on FD (already bound and listening; owned by the caller's listener). */
int metrics_http_open(struct metrics_http *m, uv_loop_t *loop, int fd, metrics_page_cb page);
void metrics_http_close(struct metrics_http *m);

#endif
