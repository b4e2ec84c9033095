#ifndef BATON_KEEPER_LINK_H
#define BATON_KEEPER_LINK_H

/* The supervisor's side of the keeper (keeper.h), and the copy of the
 * carried state (carry.h) a successor reads after a death: the two things
 * that make a supervisor's death survivable, kept together because the
 * file names the keeper and the keeper is useless without the file.
 *
 * The link starts a keeper (or, after an upgrade, keeps the one carried),
 * hands it a duplicate of each listener, the stats region, every output
 * pipe and each steered member while its group holds it, replaces one that dies (after a pause when it dies young) or
 * stays stuck (sends never block the loop: a keeper that takes nothing
 * queued for 5 s, SIGSTOPped say, is killed and replaced), and
 * rewrites NAME.HASH.carry once per turn of the loop after an event
 * (keeper_link_changed), only when the document changed, and appends the
 * events that came meanwhile to NAME.HASH.events. A normal end
 * says goodbye to the keeper and removes the file: nothing is left to
 * take over.
 *
 * It owns the channel's fd, its timer and check handles, the file; it
 * reads (never changes) the listeners, the stats region and the output
 * pipes it is pointed at. */

#include "loop/config.h"
#include "loop/output.h"
#include "loop/procs.h"
#include "loop/steer.h"
#include "libbaton/stats_shm.h"

#include <jansson.h>
#include <limits.h>
#include <uv.h>

struct keeper_link {
    /* Set by the owner before keeper_link_start. */
    uv_loop_t *loop;
    const struct service_config *cfg; /* the listeners' fds */
    const struct stats_region *stats;
    struct output *output;     /* its pipes; new ones are sent as they attach */
    const struct procs *procs; /* each generation's main process, sent once */
    struct steer *steer;       /* its members, sent as they join and leave; or NULL */
    /* The carried state as a successor would read it (no output ring, no
     * fds to inherit), or NULL. */
    json_t *(*collect)(void *ctx);
    /* The events after number SEQ: { "events": [...], "first": the first
     * one's number, "total": the newest one's } (the runtime's
     * "events_since"), or NULL. */
    json_t *(*events_since)(void *ctx, unsigned long long seq);
    void *ctx;

    /* After a death, the keeper of the supervisor before, which holds
     * its copies until ours holds everything (keeper_confirm); -1: none. */
    int predecessor;
    int fd;           /* the channel; -1: no keeper */
    pid_t pid;        /* 0: none runs */
    uint64_t started; /* the loop's clock, ms */
    uint64_t pause;   /* ms before the next one, after quick deaths */
    int stopped;      /* the loop ends: no new keeper, no new file */
    int dirty;        /* the file may be stale */
    uv_timer_t timer; /* the next keeper's start */
    /* What the channel did not take yet, in order (keeper_link.c): sends
     * never wait; a keeper that takes nothing for a while is replaced. */
    struct keeper_msg *queue;
    size_t nqueue, capqueue;
    uint64_t progress;                /* the loop's clock when the queue last moved */
    unsigned gen_sent;                /* the newest generation the keeper was told of */
    uv_timer_t retry;                 /* the queue's next try */
    uv_check_t check;                 /* the file's rewrite, once a turn */
    char *last;                       /* what the file holds */
    json_t *listeners;                /* the document's listeners last written, */
    char *listeners_text;             /* and their text (they change only with a reload) */
    int events_fd;                    /* the events file, to append to; -1: not open */
    unsigned long long events_seq;    /* the newest event it holds */
    size_t events_lines;              /* the lines it holds */
    char events_path[PATH_MAX + 320]; /* its events (carry.h) */
    unsigned long long start_ticks;   /* this process's: the file names it */
    char path[PATH_MAX + 320];        /* where the keeper answers a taker */
    char carry_path[PATH_MAX + 320];  /* the file */
};

/* Starts the link for the supervisor whose runtime folder is RUNDIR:
 * CARRIED is the keeper an upgrade carried ({ "fd", "pid" }), or NULL to
 * start a new one (from the loop, once it runs: a crash while a new image
 * takes over must not leave a keeper behind). */
void keeper_link_start(struct keeper_link *k, const char *rundir, const json_t *carried);
/* What an upgrade carries of the link: { "fd", "pid" } (NULL: no keeper). */
json_t *keeper_link_carry(struct keeper_link *k);

/* The supervisor's parts (supervisor.h) the link is, each with K: */
/* A child was reaped: 1 if it was the keeper (then another one starts). */
int keeper_link_reaped(void *k, pid_t pid, int status);
/* What the runtime carries may have changed: the file is rewritten at the
 * end of this turn of the loop if its text changed. */
void keeper_link_changed(void *k);
/* The loop ends normally: goodbye to the keeper, the file removed. */
void keeper_link_stop(void *k);
/* `baton status`: the keeper's pid in the image object. */
void keeper_link_status(void *k, json_t *image);

/* After the loop ran out: closes the channel, frees the file's text. */
void keeper_link_close(struct keeper_link *k);

#endif
