#ifndef BATON_GENERATIONS_H
#define BATON_GENERATIONS_H

/* The process table: one entry per generation, live or recently gone.
 *
 * The supervisor owns the processes (it forked them and reaps them); the
 * policy decides what happens to them and tells this table which state to
 * show. Entries are looked up by id or pid each time: pointers are not kept
 * across calls that may add an entry. */

#include <stddef.h>
#include <sys/types.h>

enum gen_state {
    GEN_STARTING,   /* spawned, not ready yet */
    GEN_READY,      /* sent READY=1, not serving yet (policy has not promoted it) */
    GEN_ACTIVE,     /* the generation that serves */
    GEN_DRAINING,   /* asked to finish and exit */
    GEN_EXITED,     /* gone */
};

struct generation {
    unsigned id;          /* 1, 2, ...: BATON_GENERATION */
    pid_t pid;            /* main process; leader of its process group */
    enum gen_state state;
    double started;       /* monotonic seconds */
    double ready_at;      /* 0 until READY=1 */
    double exited_at;     /* 0 while running */
    int exit_code;        /* -1 when killed by a signal */
    int exit_signal;      /* 0 when it exited */
    char status[256];     /* last STATUS= it sent */
};

struct generations {
    struct generation *v; /* owned */
    size_t len, cap;
    unsigned next_id;
};

/* Adds a generation in GEN_STARTING with the next id. NULL when out of memory. */
struct generation *generations_add(struct generations *g, pid_t pid, double now);
struct generation *generations_by_id(struct generations *g, unsigned id);
/* A live generation whose main process is PID. */
struct generation *generations_by_pid(struct generations *g, pid_t pid);
size_t generations_live(const struct generations *g);
/* Forgets exited generations beyond the newest KEEP of them. */
void generations_prune(struct generations *g, size_t keep);
void generations_free(struct generations *g);

const char *gen_state_name(enum gen_state s);
int gen_state_parse(const char *name); /* -EINVAL for an unknown name */

#endif
