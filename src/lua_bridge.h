#ifndef BATON_LUA_BRIDGE_H
#define BATON_LUA_BRIDGE_H

/* The embedded LuaJIT VM: where every decision is made.
 *
 * bridge_open creates the VM, makes the embedded Lua modules requirable
 * (baton.config, baton.runtime, baton.policies.*) and, when given a
 * supervisor, registers `baton.core`: the mechanisms a policy may use
 * (spawn, signal, timers, reply, log). Events go the other way through
 * bridge_dispatch into runtime:dispatch(). A Lua error never propagates into
 * C: it is logged with its traceback. */

#include "config.h"

#include <lua.h>

struct supervisor;

struct bridge {
    lua_State *L;             /* owned */
    struct supervisor *sup;   /* NULL for `baton check` */
    int cfg_ref;              /* the normalized config table */
    int rt_ref;               /* the runtime object */
};

int bridge_open(struct bridge *b, struct supervisor *sup);

/* Loads and checks FILE (and its policy), fills CFG. Returns 0, or -EINVAL
 * with "FILE:LINE: key 'K': reason" in ERR. RUNTIME_DIR is where the default
 * control socket goes. */
int bridge_load_config(struct bridge *b, const char *file, const char *runtime_dir,
                       struct service_config *cfg, char *err, size_t errlen);

/* The same, leaving the running config alone: the new table's registry
 * reference goes to *REF, for bridge_commit_config or bridge_drop_config. */
int bridge_load_config_ref(struct bridge *b, const char *file, const char *runtime_dir,
                           struct service_config *cfg, int *ref, char *err, size_t errlen);
/* Makes REF the running config and hands it to runtime:dispatch("reload"). */
void bridge_commit_config(struct bridge *b, int ref);
void bridge_drop_config(struct bridge *b, int ref);
/* A string field of the running config (malloc'd), or NULL. */
char *bridge_config_string(struct bridge *b, const char *key);

/* Creates the runtime for the loaded config. */
int bridge_start_runtime(struct bridge *b, char *err, size_t errlen);

/* Calls runtime:dispatch(EVENT, args...). FMT has one letter per argument:
 * 'i' a long long, 's' a string (NULL: nil), 'r' a registry reference (int). */
void bridge_dispatch(struct bridge *b, const char *event, const char *fmt, ...);

void bridge_close(struct bridge *b);

#endif
