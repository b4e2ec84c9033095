#ifndef BATON_LOADCLIENT_H
#define BATON_LOADCLIENT_H

/* An HTTP/1.1 load client on a libuv loop that counts every way a request
 * can fail, and why. bench/loadgen and `baton drill` are built on it.
 *
 * KEEPALIVE clients send request after request on one connection (the next
 * as soon as the response is complete); CLOSE clients send one request with
 * "Connection: close" each and reconnect, so new connections arrive all the
 * time. A client whose connect failed waits RETRY_MS before it tries again.
 *
 * A connection the server closes between requests (after a response that
 * said Connection: close, or while idle with nothing asked) is no error; a
 * connection lost with a request outstanding is, and so is a request with
 * no complete response after TIMEOUT_MS, a non-2xx answer and a failed
 * connect. Each failure is counted twice: once in the legacy fields loadgen
 * prints (resets, eof, timeouts, non2xx, connect_errors) and once by cause
 * (enum loadclient_cause), which says where in the exchange it happened.
 *
 * Everything runs on the loop's thread: call every function there, or
 * before the loop runs / after it returned. One loadclient per loop; several
 * loops (threads) may each have their own. */

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#define LOADCLIENT_MAX_CONNS 16384

enum loadclient_cause {
    LOADCLIENT_CONNECT,          /* the connect itself failed: refused, reset, unreachable */
    LOADCLIENT_KEEPALIVE_CLOSED, /* EOF or reset with a request outstanding on a reused
                                    connection, before any byte of its response */
    LOADCLIENT_NEW_CLOSED,       /* the same on a new connection (its first request) */
    LOADCLIENT_CUT,              /* EOF or reset after part of the response, or a malformed one */
    LOADCLIENT_TIMEOUT,          /* no complete response within timeout_ms */
    LOADCLIENT_NON2XX,           /* a complete response, not 2xx */
    LOADCLIENT_CAUSES
};

struct loadclient_opts {
    const struct sockaddr *target; /* IPv4 or IPv6, copied */
    const char *host_header;       /* the Host: value, e.g. "127.0.0.1:8080" (< 128 bytes) */
    const char *path;              /* "/" when NULL; must start with '/', < 128 bytes */
    int keepalive, close;          /* clients of each kind; together 1..LOADCLIENT_MAX_CONNS */
    long timeout_ms;               /* a request's bound; 5000 when 0 */
    long retry_ms;                 /* back-off after a failed connect, 0..10000 */
    const char *log_name; /* with LOG: the first few connect errors, "NAME: connect: ..." */
    FILE *log;            /* or NULL: quiet */
};

struct loadclient_counts {
    /* As loadgen prints them. requests counts requests sent and failed
     * connects; resets and eof are requests lost to a reset or to an EOF
     * (or a malformed response). */
    unsigned long long requests, ok, non2xx, connect_errors, resets, eof, timeouts, connects;
    unsigned long long by_cause[LOADCLIENT_CAUSES];
    unsigned long long errors; /* every failure: the sum of by_cause */
    uint64_t p50_us, p99_us, max_us;
};

struct loadclient;

/* Makes a load client on LOOP (nothing runs until loadclient_start).
 * NULL with a reason in ERR when OPTS is out of bounds or memory is short. */
struct loadclient *loadclient_new(uv_loop_t *loop, const struct loadclient_opts *opts, char *err,
                                  size_t errlen);
/* Every client connects and sends its first request. */
void loadclient_start(struct loadclient *lc);
/* Sends no new request; idle connections close at once, a request in flight
 * gets the rest of its timeout to finish (then counts as a timeout). DONE
 * (may be NULL) is called once every handle is closed: then the loop has
 * nothing of this client left and loadclient_free may be called (before
 * loadclient_start, DONE runs at once). Calling it again does nothing. */
typedef void (*loadclient_done_cb)(struct loadclient *lc, void *ctx);
void loadclient_stop(struct loadclient *lc, loadclient_done_cb done, void *ctx);
/* The counts so far (latencies of the complete responses). */
void loadclient_read(const struct loadclient *lc, struct loadclient_counts *out);
/* Frees LC: before loadclient_start, or after its DONE callback ran. */
void loadclient_free(struct loadclient *lc);

/* A word for a cause, for machines ("connect", "keepalive_closed",
 * "new_connection_closed", "cut", "timeout", "non2xx"). */
const char *loadclient_cause_name(enum loadclient_cause c);

#endif
