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
#include "loop/timers.h"
#include "handoff/upgrade.h"
#include "loop/watch.h"

#include <limits.h>
#include <uv.h>

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
    struct core_api api;    /* what the runtime may call: views of the above */
    struct event_sink sink; /* where events go: set at start */
    uv_signal_t sig_hup, sig_term, sig_int, sig_chld;
    char rundir[PATH_MAX]; /* private, mode 0700: the notify socket lives here */
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
    struct upgrade upgrade;
    /* A takeover (takeover.h): the carried document until the runtime has
     * it, how the supervisor before ended, the `baton upgrade` to answer,
     * and generations found gone (reported as exits once the runtime runs). */
    json_t *carried;
    char carried_how[512];
    uint64_t upgrade_client;
    int adopting;
    unsigned gone[64];
    size_t ngone;
    /* The keeper (keeper.h) and what a successor reads after a death: the
     * carried state, kept up to date at CARRY_PATH (carry.h). */
    int keeper_fd;
    pid_t keeper_pid;        /* 0: none runs */
    uint64_t keeper_started; /* the loop's clock, ms */
    uint64_t keeper_pause;   /* ms before the next one, after quick deaths */
    uv_timer_t keeper_timer;
    char keeper_path[PATH_MAX + 320];
    char carry_path[PATH_MAX + 320];
    uv_check_t carry_check;
    int carry_dirty;
    unsigned long long start_ticks; /* this process's (procs.h): the file names it */
    char *carry_last;               /* what CARRY_PATH holds */
};

#endif
