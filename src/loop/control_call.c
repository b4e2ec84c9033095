/* control_call.c: the client side of the control socket (control.h):
 * plain blocking sockets, the CLI has nothing else to do. Apart from
 * control.c, the supervisor's side, which runs on the loop. */
#include "loop/control.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Parses the first line of BUF (LEN bytes, ending at NL). Returns 1 when it
 * was a progress line (handed to ON_PROGRESS), 2 for a part of the answer
 * (appended to PARTS), 0 with *RESP for the answer, -EPROTO otherwise. */
static int take_line(const char *buf, size_t linelen, control_progress_cb on_progress, void *ctx,
                     json_t *parts, json_t **resp)
{
    json_error_t jerr;
    json_t *j = json_loadb(buf, linelen, 0, &jerr);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        return -EPROTO;
    }
    json_t *p = json_object_get(j, "progress"), *part = json_object_get(j, "part");
    if (p && !json_object_get(j, "ok")) {
        if (on_progress)
            on_progress(ctx, p);
        json_decref(j);
        return 1;
    }
    if (part && !json_object_get(j, "ok")) {
        int r = json_is_array(json_object_get(part, "in")) &&
                        json_is_array(json_object_get(part, "items"))
                    ? json_array_append(parts, part)
                    : -1;
        json_decref(j);
        return r == 0 ? 2 : -EPROTO;
    }
    *resp = j;
    return 0;
}

/* Puts the PARTS that came ahead of RESP back into it: each part's items
 * appended, in order, to the array at its path (made when absent). */
static int join_parts(json_t *resp, const json_t *parts)
{
    size_t i, k;
    json_t *part, *name;
    json_array_foreach(parts, i, part) {
        json_t *at = resp, *in = json_object_get(part, "in");
        size_t n = json_array_size(in);
        json_array_foreach(in, k, name) {
            const char *key = json_string_value(name);
            json_t *next = key ? json_object_get(at, key) : NULL;
            if (!key || !json_is_object(at))
                return -EPROTO;
            if (!next) {
                next = k + 1 < n ? json_object() : json_array();
                if (json_object_set_new(at, key, next) < 0)
                    return -ENOMEM;
            }
            at = next;
        }
        if (!json_is_array(at) || json_array_extend(at, json_object_get(part, "items")) < 0)
            return -EPROTO;
    }
    return 0;
}

int control_call(const char *path, json_t *req, int timeout_ms, control_progress_cb on_progress,
                 void *ctx, json_t **resp, char *err, size_t errlen)
{
    struct sockaddr_un un = { .sun_family = AF_UNIX };
    int r = 0;
    char *text = NULL, *buf = NULL;
    json_t *parts = NULL;
    *resp = NULL;
    if (strlen(path) >= sizeof un.sun_path) {
        snprintf(err, errlen, "control socket path too long: %s", path);
        return -ENAMETOOLONG;
    }
    strcpy(un.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&un, sizeof un) < 0) {
        r = -errno;
        snprintf(err, errlen, "cannot reach the supervisor at %s: %s%s", path, strerror(-r),
                 r == -ENOENT || r == -ECONNREFUSED ? " (is `baton run` running?)" : "");
        goto out;
    }
    text = json_dumps(req, JSON_COMPACT);
    if (!text) {
        r = -ENOMEM;
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    size_t tl = strlen(text);
    text[tl] = '\n';
    for (size_t off = 0; off <= tl;) {
        ssize_t n = send(fd, text + off, tl + 1 - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
            break; /* it answered early (a refusal): read that answer */
        if (n < 0) {
            r = -errno;
            snprintf(err, errlen, "sending to %s: %s", path, strerror(-r));
            goto out;
        }
        off += (size_t)n;
    }
    buf = malloc(CONTROL_MAX + 1);
    parts = json_array();
    if (!buf || !parts) {
        r = -ENOMEM;
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    size_t len = 0, total = 0;
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    /* Progress lines (asked for with "progress": true) come first, each a
     * line; the answer is the first line without them. */
    for (;;) {
        char *nl = memchr(buf, '\n', len);
        if (nl) {
            size_t linelen = (size_t)(nl - buf);
            int t = take_line(buf, linelen, on_progress, ctx, parts, resp);
            if (t == 0 && (r = join_parts(*resp, parts)) < 0) {
                json_decref(*resp);
                *resp = NULL;
                snprintf(err, errlen, "an answer from the supervisor in parts that do not fit it");
                goto out;
            }
            if (t == 0)
                break;
            if (t == 2)
                total += linelen + 1;
            if (t < 0 || total > CONTROL_ANSWER_MAX) {
                r = t < 0 ? -EPROTO : -E2BIG;
                if (t < 0)
                    snprintf(err, errlen, "unreadable answer from the supervisor");
                else
                    snprintf(err, errlen, "an answer from the supervisor longer than %d bytes",
                             CONTROL_ANSWER_MAX);
                goto out;
            }
            len -= linelen + 1;
            memmove(buf, nl + 1, len);
            continue;
        }
        if (len >= CONTROL_MAX) {
            r = -EPROTO;
            snprintf(err, errlen, "an answer from the supervisor longer than %d bytes",
                     CONTROL_MAX);
            goto out;
        }
        int wait = deadline < 0 ? -1 : (int)(deadline - now_ms());
        if (deadline >= 0 && wait <= 0) {
            r = -ETIMEDOUT;
            snprintf(err, errlen, "no answer from the supervisor within %d ms", timeout_ms);
            goto out;
        }
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int pr = poll(&p, 1, wait);
        if (pr <= 0)
            continue; /* EINTR, or the deadline: checked above */
        ssize_t n = recv(fd, buf + len, CONTROL_MAX - len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0 && len > 0) {
            /* An answer without its newline: take it as it is. */
            buf[len++] = '\n';
            continue;
        }
        if (n <= 0) {
            r = n == 0 ? -ECONNRESET : -errno;
            snprintf(err, errlen, "the supervisor closed the connection without an answer");
            goto out;
        }
        len += (size_t)n;
    }
out:
    if (fd >= 0)
        close(fd);
    free(text);
    free(buf);
    json_decref(parts);
    return r;
}
