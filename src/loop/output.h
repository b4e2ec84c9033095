#ifndef BATON_OUTPUT_H
#define BATON_OUTPUT_H

/* What generations print: each one's stdout and stderr come through pipes
 * the supervisor reads as they fill (so an app never blocks on a slow
 * reader), are cut into lines (at most OUTPUT_LINE_MAX bytes; a longer one
 * is cut and the rest is a line of its own), written to the supervisor's
 * own output tagged with the generation and stream, and kept in a bounded
 * ring (OUTPUT_LINES lines, OUTPUT_BYTES bytes of text: the oldest go) for
 * `baton logs` and for the reason of a generation that failed. */

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define OUTPUT_LINE_MAX 4096
#define OUTPUT_LINES 4096
#define OUTPUT_BYTES (1 << 20)

struct output_line {
    uint64_t seq; /* 1, 2, ...: for `baton logs -f` */
    double time;  /* unix seconds */
    unsigned generation;
    int stream; /* 1 stdout, 2 stderr */
    char *text; /* owned */
};

struct output_pipe;

struct output {
    uv_loop_t *loop;
    struct output_line *ring; /* owned, OUTPUT_LINES */
    size_t first, count, bytes;
    uint64_t next_seq;
    struct output_pipe *pipes; /* owned: open read ends */
    int closed;
    /* Called with each pipe attached (its fd stays ours): the keeper
     * (keeper.h) holds a duplicate. May be NULL. */
    void (*on_attach)(void *ctx, unsigned gen, int stream, int fd);
    void *ctx;
};

int output_init(struct output *o, uv_loop_t *loop);
/* Reads FD (a pipe's read end, now owned) as generation GEN's STREAM (1 or
 * 2) until its writers are all gone. Returns 0 or a negative errno (FD is
 * closed then). */
int output_attach(struct output *o, unsigned gen, int stream, int fd);
/* Reads now what generation GEN's pipes hold (the supervisor calls it
 * before it reports the generation's exit, so its last words are kept). */
void output_drain(struct output *o, unsigned gen);
/* The newest lines (at most N; 0: all) after sequence number AFTER, of
 * generation GEN (0: all), oldest first, as a JSON array of { seq, time,
 * generation, stream ("stdout"/"stderr"), line }. */
json_t *output_json(const struct output *o, uint64_t after, unsigned gen, size_t n);
/* The last N stderr lines of generation GEN, oldest first, joined with
 * " | " into BUF (empty when there are none). */
void output_tail(const struct output *o, unsigned gen, size_t n, char *buf, size_t len);
/* For a supervisor that takes over: the pipes read now, as
 * [ { generation, stream, fd } ] (the fds stay ours), ... */
json_t *output_pipes_json(const struct output *o);
/* ... and the ring's lines as output_json gave them, kept again with their
 * sequence numbers (lines older than the ring's newest are skipped). */
void output_restore(struct output *o, const json_t *lines);
/* Stops reading (the pipes close through the loop) and frees the ring. */
void output_close(struct output *o);

#endif
