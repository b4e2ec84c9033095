#ifndef BATON_LUA_CORE_H
#define BATON_LUA_CORE_H

/* `baton.core`: the mechanisms of core_api.h as Lua functions, for the
 * runtime (lua/baton/runtime.lua) and for nothing else: a policy cannot
 * require it. Each call counts one crossing in api->crossings. */

#include "loop/core_api.h"

#include <lua.h>

/* Pushes the baton.core table bound to API (which must outlive the VM). */
void lua_core_push(lua_State *L, struct core_api *api);

#endif
