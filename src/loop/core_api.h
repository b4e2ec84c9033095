#ifndef BATON_CORE_API_H
#define BATON_CORE_API_H

/* The boundary between mechanism (C) and decision (Lua), in one header.
 *
 * Going up, the loop reports what happened through one event sink
 * (events.h). Going down, the Lua runtime may call these mechanisms and no
 * others; lua_core.c binds each, as `baton.core`, to a call on one narrow
 * object (never the whole supervisor). lua/baton/runtime.lua lists the
 * same functions in _M.CORE and refuses a core that offers one more or
 * less, so this table, the binding and the test kit's fake cannot drift.
 *
 *   Lua (baton.core)                    C
 *   spawn(state) -> id, pid             launcher_spawn(launcher, ...)        launch.h
 *   signal(id, name, group)             procs_signal(procs, ...)             procs.h
 *   timer(seconds) -> tid, cancel(tid)  timers_start/cancel(timers, ...)     timers.h
 *   probe(host, port, path, t) -> id    probe_start(loop, ...) -> EV_PROBE   probe.h
 *   watch(path) -> id, unwatch(id)      watches_add/remove(watches, ...)     watch.h
 *   log(level, message)                 log_msg()                            log.h
 *   reply(req, ok, message)             control_reply(control, ...)          control.h
 *   shutdown(code)                      shutdown(owner, code)                (the loop)
 *   stat(name[, gen])                   stats_find/stats_read(stats, ...)    libbaton/stats_shm.h
 *   stat_add(name, n)                   stats_own_add(stats, ...)            stats_own.h
 *   stat_observe(name, seconds)         stats_own_observe(stats, ...)        stats_own.h
 *   drain_window(gen, seconds)          stats_set_drain(stats, ...)          libbaton/stats_shm.h
 *   state_info() / state_read()         handover_state_info/map(handover)    handover.h
 *   state_stage(blob, version)          handover_state_stage(handover, ...)  handover.h
 *   apply_config(cfg[, check_only])     config_apply/config_check(config,..) config.h
 *   output(gen, n) -> text              output_tail(output, ...)             output.h
 *   figures([gen]) -> table             figures_read(procs, config, ...)     figures.h
 *   notify_manager(text)                manager_notify(manager, ...)         manager.h
 *   exec(req, carry)                    upgrade_exec(exec_owner, ...)        upgrade.h
 *   steer(gen, weight)                  steer_set_weight(steer, ...)         steer.h
 *
 * Every call returns at once; what comes later (a timer, a probe's answer,
 * a file change, a process's exit) arrives as an event. */

#include "loop/config.h"
#include "loop/control.h"
#include "loop/events.h"
#include "loop/handover.h"
#include "loop/launcher.h"
#include "loop/manager.h"
#include "loop/output.h"
#include "libbaton/stats_shm.h"
#include "loop/procs.h"
#include "loop/steer.h"
#include "loop/timers.h"
#include "loop/watch.h"

#include <uv.h>

struct core_api {
    uv_loop_t *loop;
    struct launcher *launcher;
    struct procs *procs;
    struct timers *timers;
    struct watches *watches;
    struct handover *handover;
    struct stats_region *stats;
    struct control *control;
    struct service_config *config;
    struct output *output;
    struct steer *steer;
    const struct manager *manager;
    const struct event_sink *sink; /* where probe answers go */
    void (*shutdown)(void *owner, int code);
    /* baton upgrade's last step; returns only on failure (see upgrade.h). */
    int (*exec)(void *exec_owner, uint64_t req, json_t *runtime, char *err, size_t errlen);
    void *owner;             /* shutdown's: the loop */
    void *exec_owner;        /* exec's: the upgrade (run.c wires it) */
    unsigned long crossings; /* calls across the boundary, both ways */
};

#endif
