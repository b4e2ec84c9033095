#ifndef BATON_H
#define BATON_H

/* libbaton: what an app needs to run under baton (or systemd), in plain C
 * with no dependency beyond libc.
 *
 * Sockets:   the supervisor passes its listeners as fds 3, 4, ... with
 *            LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES (sd_listen_fds(3)).
 * Readiness: send "READY=1" once you accept connections, "STOPPING=1" when
 *            you begin to drain, "STATUS=..." whenever you like
 *            (sd_notify(3), over $NOTIFY_SOCKET).
 *
 *     int fd = baton_listener("http");        // or baton_listen_fds() and fd 3
 *     ... listen/accept on fd ...
 *     baton_notify("READY=1");
 *
 * Errors are negative errno values. */

#ifdef __cplusplus
extern "C" {
#endif

#define BATON_LISTEN_FDS_START 3

/* Number of fds passed (0 when none, or when LISTEN_PID is not this
 * process). Each is marked close-on-exec. */
int baton_listen_fds(void);

/* The fd of the listener named NAME in LISTEN_FDNAMES, or -ENOENT. */
int baton_listener(const char *name);

/* Sends STATE (e.g. "READY=1\nSTATUS=serving") to $NOTIFY_SOCKET.
 * Returns 1 when sent, 0 when there is no NOTIFY_SOCKET. */
int baton_notify(const char *state);

/* The same with file descriptors attached (SCM_RIGHTS), for FDSTORE=1:
 * at most BATON_NOTIFY_MAX_FDS. */
#define BATON_NOTIFY_MAX_FDS 253
#include <stddef.h>
int baton_notify_fds(const char *state, const int *fds, size_t nfds);

/* The generation number this process belongs to (BATON_GENERATION), 0 if unset. */
unsigned baton_generation(void);

/* --- Stats: counters, gauges, histograms in the service's shared region ---
 *
 * The supervisor passes a shared-memory region (BATON_STATS_FD). Look a
 * metric up once, then update it: an update is one relaxed atomic on this
 * generation's slot, and counters keep counting across restarts.
 *
 *     struct baton_stats *st;
 *     baton_metric requests;
 *     baton_stats_open(&st);
 *     baton_counter(st, "http.requests", &requests);
 *     ... baton_add(&requests, 1);    // per request
 *
 * Names: 1-95 characters of [A-Za-z0-9_.:-]. Errors: -EINVAL (bad name or
 * bounds), -ENAMETOOLONG, -EEXIST (the name is registered with another type
 * or other bounds), -ENOSPC (the region is full), -EBUSY. */

#include <stdint.h>

struct baton_stats;

typedef struct baton_metric {
    uint64_t *slot;       /* this process's slot(s) in the region */
    const double *bounds; /* histograms: upper bounds, ascending */
    unsigned nbuckets;
    int type; /* 1 counter, 2 gauge, 3 histogram */
} baton_metric;

/* Maps the region from BATON_STATS_FD. Returns 0; or 1 when the process is
 * not under baton, with a private region instead so that the calls below
 * work unchanged (their numbers go nowhere); or a negative errno. */
int baton_stats_open(struct baton_stats **out);
void baton_stats_close(struct baton_stats *s);

int baton_counter(struct baton_stats *s, const char *name, baton_metric *m);
int baton_gauge(struct baton_stats *s, const char *name, baton_metric *m);
/* BOUNDS: N (1-15) ascending upper bounds; +Inf is implied. */
int baton_histogram(struct baton_stats *s, const char *name, const double *bounds, unsigned n,
                    baton_metric *m);

static inline void baton_add(const baton_metric *m, uint64_t n)
{
    __atomic_fetch_add(m->slot, n, __ATOMIC_RELAXED);
}
/* Gauges: up and down, or set. */
static inline void baton_gauge_add(const baton_metric *m, int64_t delta)
{
    __atomic_fetch_add(m->slot, (uint64_t)delta, __ATOMIC_RELAXED);
}
static inline void baton_set(const baton_metric *m, int64_t value)
{
    __atomic_store_n(m->slot, (uint64_t)value, __ATOMIC_RELAXED);
}
/* Histograms: one atomic for the bucket, one for the sum. */
void baton_observe(const baton_metric *m, double value);

/* Gradual drain: 0 while this generation serves normally; during a
 * gradual drain (the `gradual` policy), rises from 0 to 1 across the window
 * the supervisor set. Give each connection a random threshold in [0, 1)
 * when it is accepted, and close it after its next response once the
 * progress passes that threshold: at progress p a fraction p of the
 * connections has moved to the new generation, whatever the request rate
 * (a coin flip per request would move them all at once on a busy server). */
double baton_drain_progress(struct baton_stats *s);

/* --- State: what this process knew, for the next generation ---
 *
 * Save whenever you like (a checkpoint; the newest one wins) and when the
 * policy asks for a final one (the `handover` policy sends SIGUSR1). The
 * next generation loads it. SCHEMA is your own version number of what the
 * bytes mean: when the service file expects another, the policy migrates
 * the blob or refuses the restart, and an app never receives a blob that
 * is truncated, corrupt, unsealed or over the size limit.
 *
 *     baton_state_save(buf, len, 1);             // old generation
 *
 *     struct baton_state st;                     // new generation
 *     if (baton_state_load(&st) == 0) {
 *         restore(st.data, st.len, st.schema);
 *         baton_state_release(&st);
 *     }
 *
 * The blob is a sealed memfd with a small header (docs/state.md), stored
 * in the supervisor's fd store (FDSTORE=1, FDNAME=$BATON_STATE_NAME or
 * "state"): it outlives this process, SIGKILL included. */

#include <stdint.h>

struct baton_state {
    const void *data; /* the bytes, mapped read-only */
    size_t len;
    uint32_t schema;
    unsigned generation; /* that saved it; 0: unknown */
    const void *map_;    /* private */
    size_t map_len_;
};

/* Copies LEN bytes of BUF into a new sealed blob and stores it. Returns 1
 * when stored, 0 when there is no supervisor to store it with
 * (NOTIFY_SOCKET unset), or a negative errno. */
int baton_state_save(const void *buf, size_t len, uint32_t schema);

/* For large states built in place, without the copy: a writable buffer
 * of LEN bytes (*PAYLOAD) to fill, then commit. *TOKEN ties the two. */
int baton_state_begin(size_t len, void **payload, int *token);
int baton_state_commit(int token, void *payload, size_t len, uint32_t schema);

/* Maps the state this generation received, after checking it. 0, or
 * -ENOENT when there is none, or what state_blob checks found (-EPERM
 * unsealed, -EBADMSG not a blob, -ENODATA truncated (-ENOATTR on FreeBSD,
 * which has no ENODATA), -EILSEQ checksum). */
int baton_state_load(struct baton_state *st);
void baton_state_release(struct baton_state *st);

/* --- The fd store, for any other fds (connections, pipes) ---
 * Stored fds go to every later generation (after its listeners, named in
 * LISTEN_FDNAMES) until removed. POLL: drop a stored socket once it hangs
 * up (systemd's FDPOLL). */
int baton_fd_store(const char *name, const int *fds, size_t n, int poll);
int baton_fd_remove(const char *name);
/* Up to MAX fds named NAME that this process received; returns how many. */
int baton_fds(const char *name, int *fds, int max);

/* The same operations as exported functions, for FFI (lua/baton/app.lua)
 * and languages that cannot use the inline ones. */
void baton_metric_add(const baton_metric *m, uint64_t n);
void baton_metric_gauge_add(const baton_metric *m, int64_t delta);
void baton_metric_set(const baton_metric *m, int64_t value);

#ifdef __cplusplus
}
#endif

#endif
