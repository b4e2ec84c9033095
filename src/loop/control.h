#ifndef BATON_CONTROL_H
#define BATON_CONTROL_H

/* The control socket: how `baton restart|status|stop` reach the supervisor.
 *
 * A unix stream socket created mode 0600; each connection's peer is checked
 * with SO_PEERCRED (same uid, or root). One request per connection: a JSON
 * object on one line, at most CONTROL_MAX bytes, e.g. {"cmd":"restart"}.
 * One response: a JSON object on one line, {"ok":true,...} or
 * {"ok":false,"error":"..."}; then the connection is closed. A request with
 * "progress": true first gets the supervisor's own messages as they are
 * logged, each a line {"progress":{"time","level","message"}}, until its
 * response (`baton restart` on a terminal shows them). A request with
 * "parts": true takes an answer of any size: one longer than CONTROL_MAX
 * comes as part lines {"part":{"in":PATH,"items":[...]}} first, each at
 * most CONTROL_MAX bytes, then the answer's own line; PATH names an array
 * of the answer (["listeners"], ["kernel","listeners"]) to which the
 * part's items are appended, in the order the parts came. Without it, the
 * answer is one line, whatever its size. A reply may come
 * much later (a restart answers once its outcome is known): requests are
 * named by a numeric id, and a reply to a client that went away is dropped.
 * Bad input (too long, not JSON, no "cmd", silent for CONTROL_IDLE_MS) gets
 * an error response or a close; it never stops the supervisor. */

#include <jansson.h>
#include <stdint.h>
#include <uv.h>

#define CONTROL_MAX (64 * 1024)
/* The most an answer in parts may hold, all lines together: the client's
 * bound on what it keeps in memory (10,000 listeners take about 1 MiB). */
#define CONTROL_ANSWER_MAX (64 * 1024 * 1024)
#define CONTROL_IDLE_MS 10000
#define CONTROL_MAX_CLIENTS 64

struct control;
/* Called once per well-formed request; the owner answers with control_reply. */
typedef void (*control_cb)(struct control *c, uint64_t req, const char *cmd, json_t *args);

struct control_client;

struct control {
    uv_pipe_t server;
    char path[108];
    control_cb cb;
    void *data;
    struct control_client *clients; /* owned; a list */
    unsigned nclients;
    uint64_t next_req;
    int open;
};

/* Binds PATH. Only a stale socket of ours there is replaced: a live one is
 * -EADDRINUSE, anything else -EEXIST (see unixpath.h), left as it is. */
int control_open(struct control *c, uv_loop_t *loop, const char *path, control_cb cb);
/* The same on FD, the listening socket a supervisor before this one bound
 * at PATH (carry.h); FD -1: bind PATH. */
int control_open_fd(struct control *c, uv_loop_t *loop, const char *path, int fd, control_cb cb);
/* The connection of request REQ (the fd stays ours), or -ENOENT. */
int control_client_fd(struct control *c, uint64_t req);
/* Takes FD, the connection of a request the supervisor before this one
 * read and left to this one to answer. Returns its new request id (0:
 * out of memory, FD closed). */
uint64_t control_adopt_client(struct control *c, int fd);
/* Answers every request still waiting, except KEEP, with the error WHY. */
void control_abandon(struct control *c, uint64_t keep, const char *why);
/* Sends RESP (reference stolen) to request REQ and closes its connection.
 * Returns -ENOENT when the client is gone. */
int control_reply(struct control *c, uint64_t req, json_t *resp);
int control_reply_error(struct control *c, uint64_t req, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void control_close(struct control *c);

/* One request line (BUF, LEN bytes, no newline) as the server reads it:
 * 0 with *REQ (json_decref it) and *CMD (inside it), or -EINVAL with the
 * error the client is sent in ERR. */
int control_parse(const char *buf, size_t len, json_t **req, const char **cmd, char *err,
                  size_t errlen);

/* The client side (the CLI; control_call.c): sends REQ, waits up to
 * TIMEOUT_MS (-1: forever) for the response, handing each progress object
 * to ON_PROGRESS (may be NULL) on the way; the parts of an answer (REQ with
 * "parts": true) are joined into it, at most CONTROL_ANSWER_MAX bytes in
 * all. Returns 0 with *RESP set, or a negative errno with a
 * reason in ERR. */
typedef void (*control_progress_cb)(void *ctx, json_t *progress);
int control_call(const char *path, json_t *req, int timeout_ms, control_progress_cb on_progress,
                 void *ctx, json_t **resp, char *err, size_t errlen);

#endif
