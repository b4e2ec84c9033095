#ifndef BATON_LUA_BRIDGE_H
#define BATON_LUA_BRIDGE_H

/* The embedded LuaJIT VM: where every decision is made.
 *
 * bridge_open creates the VM (lua_budget.h: the policy budget lives in it)
 * and makes the Lua half of baton, compiled into the binary, requirable:
 * the runtime, the config loader, the built-in policies, and their sources
 * for the policy sandbox. No Lua file is ever read from package.path.
 *
 * With a core (core_api.h), bridge_start_runtime creates the runtime, and
 * bridge_sink() is the event sink (events.h) the loop reports to: each
 * event becomes runtime:dispatch(now, name, ...). A Lua error never
 * propagates into C: it is logged with its traceback. The bridge never
 * includes the loop, and the loop never includes the bridge: run.c wires
 * them. */

#include "loop/config.h"
#include "loop/core_api.h"
#include "loop/events.h"

#include <lua.h>

struct bridge {
    lua_State *L;         /* owned */
    struct core_api *api; /* NULL until bridge_start_runtime (and for `baton check`) */
    int cfg_ref;          /* the normalized config table */
    int rt_ref;           /* the runtime object */
    struct event_sink sink;
    unsigned long resumes_seen; /* budgeted resumes already counted as crossings */
};

int bridge_open(struct bridge *b);

/* Loads and checks FILE (and its policy), fills CFG. Returns 0, or -EINVAL
 * with "FILE:LINE: key 'K': reason" in ERR. RUNTIME_DIR is where the default
 * control socket goes. */
int bridge_load_config(struct bridge *b, const char *file, const char *runtime_dir,
                       struct service_config *cfg, char *err, size_t errlen);

/* The control socket of the service FILE describes, read from its `control`
 * (or `name`) key alone: no policy loaded, no other key checked, so a
 * client reaches a supervisor whose files were since broken. Returns 0
 * with the path in OUT, or a negative errno with the reason in ERR. */
int bridge_control_path(struct bridge *b, const char *file, const char *runtime_dir, char *out,
                        size_t len, char *err, size_t errlen);

/* A string field of the loaded config (malloc'd), or NULL. */
char *bridge_config_string(struct bridge *b, const char *key);

/* Creates the runtime for the loaded config, bound to API. */
int bridge_start_runtime(struct bridge *b, struct core_api *api, char *err, size_t errlen);

/* The sink that hands events to the runtime (valid once it started). */
const struct event_sink *bridge_sink(struct bridge *b);

void bridge_close(struct bridge *b);

#endif
