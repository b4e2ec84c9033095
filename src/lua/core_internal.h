#ifndef BATON_LUA_CORE_INTERNAL_H
#define BATON_LUA_CORE_INTERNAL_H

/* What core.c and core_figures.c share: baton.core's calls live in both,
 * each an upvalue-bound C function (lua_core_push in core.h). */

#include "loop/core_api.h"

#include <lua.h>

/* The core_api a call was bound to (its first upvalue), each call counted
 * as a crossing of the boundary. */
struct core_api *core_api_of(lua_State *L);

/* figures([generation]) -> listeners and generations as the kernel sees
 * them (core_figures.c; the runtime's Runtime:figures). */
int core_figures(lua_State *L);

#endif
