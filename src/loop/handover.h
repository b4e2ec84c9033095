#ifndef BATON_HANDOVER_H
#define BATON_HANDOVER_H

/* What one generation hands to the next: the fd store (fdstore.h) and,
 * in it, the state blob (libbaton/state_blob.h).
 *
 * A generation stores fds over NOTIFY_SOCKET (FDSTORE=1); each generation
 * started afterwards receives them after its listeners:
 *
 *   fd 3 ..                listeners, in config order
 *   fd 3+nlisteners ..     stored fds, in the order they were stored
 *   LISTEN_FDS             listeners + stored fds
 *   LISTEN_FDNAMES         their names, colon-separated
 *   BATON_STATS_FD         the next fd after all of them
 *
 * The state blob is checked when it arrives (sealed, header, size,
 * checksum) and the verdict kept: its seals keep it as it was checked. A
 * generation never receives a blob that failed: the runtime refuses the
 * restart (or, when nothing serves, starts the generation without it). A
 * migrated blob is "staged": it goes to the next spawn in place of the
 * stored one, which stays in the store until a generation stores anew. */

#include "loop/fdstore.h"
#include "libbaton/state_blob.h"
#include "loop/notify.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Which state blob a spawn passes. */
enum spawn_state {
    SPAWN_STATE_STORED, /* the one in the store, if any */
    SPAWN_STATE_NONE,   /* none: the store's other fds only */
    SPAWN_STATE_STAGED, /* the one handover_state_stage() made */
};

/* The verdict on the stored state blob, kept from when it arrived. */
struct state_check {
    uint64_t seq; /* the fd store entry it is about; 0: none yet */
    int rc;       /* 0 or the negative errno of state_blob_open */
    char err[256];
    uint32_t schema, generation;
    uint64_t length;
    double stored_at;
};

/* What a policy learns about the stored state blob. */
struct state_info {
    uint32_t schema;
    uint32_t generation; /* that stored it */
    uint64_t length;
    double stored_at; /* monotonic seconds */
};

/* The fd store, the verdict on its state blob, and a staged (migrated)
 * blob: everything that passes from one generation to the next. Owns the
 * store's fds and the staged blob's. */
struct handover {
    uv_loop_t *loop;
    struct fdstore store;
    struct state_check check; /* the stored state blob, as checked on arrival */
    int staged;               /* a migrated blob for the next spawn; -1: none */
    uint64_t max_size;        /* state.max_size */
    int closed;
    /* Called once a state blob's checksum was verified (NAME, stored by
     * generation ID): the verdict is in `check`. May be NULL. */
    void (*on_checked)(struct handover *h, unsigned id, const char *name);
    void *data;
};

void handover_init(struct handover *h, uv_loop_t *loop, size_t fdstore_max, const char *state_name,
                   uint64_t max_size);
void handover_free(struct handover *h);
/* Applies a reloaded fdstore_max / state max_size. */
void handover_configure(struct handover *h, size_t fdstore_max, uint64_t max_size);

/* FDSTORE=1 / FDSTOREREMOVE=1 from generation ID. Takes the fds: keeps
 * them or closes them. Returns the name they were stored under (valid
 * until the next call), or NULL when nothing was stored or, for a state
 * blob whose checksum is being verified, not yet: on_checked says it. */
const char *handover_notify(struct handover *h, unsigned id, const struct notify_msg *m, int *fds,
                            size_t nfds, double now);

/* The fds a new generation gets after its listeners (*FDS, *N; free()
 * *FDS) and their names, colon-separated (*NAMES: "" when none; free()
 * it). Returns 0 or a negative errno with a reason in ERR. */
int handover_fds(struct handover *h, enum spawn_state mode, int **fds, size_t *n, char **names,
                 char *err, size_t errlen);
/* After a spawn: a staged blob is used once. */
void handover_spawned(struct handover *h, enum spawn_state mode);

/* The stored state blob: 0 with INFO; -ENOENT when there is none;
 * -EINPROGRESS while its checksum is being verified; another negative
 * errno with the reason in ERR when it is bad. */
int handover_state_info(struct handover *h, struct state_info *info, char *err, size_t errlen);
/* Maps the stored blob read-only for a migration; state_blob_close() it. */
int handover_state_map(struct handover *h, struct state_blob *b, char *err, size_t errlen);
/* Makes a blob of DATA at SCHEMA for the next spawn (SPAWN_STATE_STAGED). */
int handover_state_stage(struct handover *h, const void *data, size_t len, uint32_t schema,
                         char *err, size_t errlen);

/* For a supervisor that takes over (carry.h): the store's entries as
 * [ { name, fd, generation, stored_at, poll } ] (the fds stay ours), ... */
json_t *handover_carry(const struct handover *h);
/* ... and them taken back (the fds are ours now; the state blob is checked
 * again), with STAGED, a staged blob's fd or -1. */
void handover_restore(struct handover *h, const json_t *entries, int staged);

/* The store, for `baton status`. */
json_t *handover_status(struct handover *h, double now);

#endif
