#ifndef BATON_SUPERVISOR_STATE_H
#define BATON_SUPERVISOR_STATE_H

/* What the supervisor's loop owns, in one struct: supervisor.h's functions
 * run it, answers.h reads it. Only files of loop/ include this; the other
 * sides reach the loop through supervisor.h and core_api.h. */

#include "loop/config.h"
#include "loop/control.h"
#include "loop/core_api.h"
#include "loop/events.h"
#include "loop/handover.h"
#include "loop/launcher.h"
#include "loop/manager.h"
#include "libbaton/stats_shm.h"
#include "loop/metrics_http.h"
#include "loop/notify.h"
#include "loop/output.h"
#include "loop/procs.h"
#include "loop/steer.h"
#include "loop/timers.h"
#include "loop/watch.h"
#include "os/os.h"

#include <limits.h>
#include <uv.h>

/* A part of the supervisor that lives outside the loop (the upgrade, the
 * keeper link: handoff/): the loop tells it what it must see, and routes
 * to it the control command it answers. Any member may be NULL. */
struct supervisor_part {
    void *ctx;
    /* A child of ours, PID, was reaped with wait STATUS: 1 if it was this
     * part's (no generation's). */
    int (*reaped)(void *ctx, pid_t pid, int status);
    /* An event went to the runtime: what it carries may have changed. */
    void (*changed)(void *ctx);
    /* The control command COMMAND is this part's to answer. */
    const char *command;
    void (*answer)(void *ctx, uint64_t req, json_t *args);
    /* The loop ends (core.shutdown): close what runs. */
    void (*stop)(void *ctx);
    /* `baton status`: its facts, added to the image object. */
    void (*status)(void *ctx, json_t *image);
};

#define SUPERVISOR_MAX_PARTS 4

struct supervisor {
    uv_loop_t *loop;
    struct service_config cfg; /* owned; filled by the caller before setup */
    struct procs procs;
    struct notify notify;
    struct control control;
    struct stats_region stats;        /* the service's shared metrics (BATON_STATS_FD) */
    struct handover handover;         /* fds generations hand on, the state blob too */
    struct output output;             /* what generations print */
    struct manager manager;           /* the service manager above us, if any */
    struct listener metrics_listener; /* the Prometheus/readiness endpoint's socket */
    struct metrics_http metrics;
    struct timers timers;
    struct watches watches;
    struct launcher launcher;
    struct steer steer;      /* steered listeners' members and weights */
    struct core_api api;     /* what the runtime may call: views of the above */
    struct event_sink sink;  /* where events go (the runtime): set at start */
    struct event_sink relay; /* the loop's own pieces report here: supervisor_emit */
    uv_signal_t signals[4];  /* SIGCHLD, SIGHUP, SIGTERM, SIGINT */
    char rundir[PATH_MAX];   /* private, mode 0700: the notify socket lives here */
    char notify_path[PATH_MAX];
    int exit_code;
    int shutting_down;
    int stop_signals;    /* SIGTERM/SIGINT seen: the second one kills */
    double started;      /* monotonic: this supervisor's start (its pid's, across upgrades) */
    char file[PATH_MAX]; /* the service file, as `baton run` was given it */
    /* The image running now: `baton status` shows it. */
    struct {
        char binary[PATH_MAX];
        double started_at; /* unix seconds: this image's start */
        unsigned upgrades; /* images before it under this pid */
        double adopted_at; /* unix seconds; 0: it did not take over after a death */
    } image;
    /* What runs beside the loop without belonging to it (handoff/: the
     * upgrade, the keeper link): told of what each must see. */
    struct supervisor_part parts[SUPERVISOR_MAX_PARTS];
    size_t nparts;
    /* What this host gives, mechanism by mechanism (os_host_report, and
     * libbaton's sealed memory), probed once at start: logged, and shown
     * by `baton status`. */
    struct os_mechanism host[OS_HOST_MECHANISMS + 1];
    size_t nhost;
};

/* Member KEY of a carried document's object OBJ as an int (DEF when
 * absent or not a number): the loop's reading of its own part of the
 * carried state (carried.c; handoff/carry.h has the same for the
 * hand-off, which the loop may not include). */
int carried_int(const json_t *obj, const char *key, int def);

#endif
