#ifndef BATON_SUPERVISOR_H
#define BATON_SUPERVISOR_H

/* The supervisor: one libuv loop that owns the listeners, the process table,
 * the notify and control sockets and the Lua VM.
 *
 * What it does itself is mechanism: bind, fork/exec, reap (every child,
 * orphans included: it is a child subreaper, and PID 1 in a container),
 * forward events to the policy. What to do about an event (start a
 * generation, drain one, roll back) is decided in Lua (lua/baton/runtime.lua
 * and the policy). The functions below are what the Lua bridge calls. */

#include "config.h"
#include "control.h"
#include "fdstore.h"
#include "generations.h"
#include "handover.h"
#include "libbaton/stats_shm.h"
#include "lua_bridge.h"
#include "metrics_http.h"
#include "notify.h"
#include "watch.h"

#include <limits.h>
#include <stdint.h>
#include <uv.h>

struct sup_timer;
struct sup_watch;

struct supervisor {
    uv_loop_t *loop;
    struct service_config cfg;
    struct bridge lua;
    struct generations gens;
    struct notify notify;
    struct control control;
    struct stats_region stats;   /* the service's shared metrics (BATON_STATS_FD) */
    struct fdstore fdstore;      /* fds generations hand on (FDSTORE=1), the state blob too */
    struct state_check state_check; /* the stored state blob, as checked on arrival */
    int staged_state;            /* a migrated state blob for the next spawn; -1: none */
    struct listener metrics_listener; /* the Prometheus/readiness endpoint's socket */
    struct metrics_http metrics;
    struct file_watch watch_service; /* reload when the service file changes */
    struct file_watch watch_policy;  /* ... or the policy file it names */
    uv_signal_t sig_hup, sig_term, sig_int, sig_chld;
    struct sup_timer *timers;   /* owned; pending Lua timers */
    struct sup_watch *watches;  /* owned; files policies watch */
    uint64_t next_timer;
    char rundir[PATH_MAX];      /* private, mode 0700: the notify socket lives here */
    char notify_path[PATH_MAX];
    int exit_code;
    int shutting_down;
    int stop_signals;           /* SIGTERM/SIGINT seen: the second one kills */
    double started;
};

/* `baton run FILE`: returns the process exit code. */
int supervisor_run(const char *file);
/* `baton check FILE`: returns 0 when the file and its policy are valid. */
int supervisor_check(const char *file);

/* For the Lua bridge (baton.core). Each returns 0 or a negative errno. */
double sup_now(struct supervisor *s);
/* Starts a generation with the listeners, the fd store (with the state
 * blob MODE says) and the stats region. */
int sup_spawn(struct supervisor *s, enum spawn_state mode, unsigned *id, pid_t *pid, char *err,
              size_t errlen);
int sup_signal(struct supervisor *s, unsigned id, int sig, int group);
int sup_timer_start(struct supervisor *s, double seconds, uint64_t *id);
void sup_timer_cancel(struct supervisor *s, uint64_t id);
int sup_set_state(struct supervisor *s, unsigned id, const char *state);
void sup_reply(struct supervisor *s, uint64_t req, int ok, const char *message);
void sup_shutdown(struct supervisor *s, int code);
/* Watches PATH for a policy trigger: each change is dispatched as
 * ("watch", id). */
int sup_watch_add(struct supervisor *s, const char *path, uint64_t *id);
void sup_watch_remove(struct supervisor *s, uint64_t id);

/* The supervisor's own metrics (lane 0 of the region): add to a counter, set
 * a gauge, observe a histogram of seconds. Registered on first use. */
void sup_stat_add(struct supervisor *s, const char *name, double n);
void sup_stat_set(struct supervisor *s, const char *name, double v);
void sup_stat_observe(struct supervisor *s, const char *name, double seconds);

#endif
