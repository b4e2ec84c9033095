#ifndef BATON_LUA_JSON_H
#define BATON_LUA_JSON_H

/* Lua values of the runtime's own (plain data, never a policy's) as JSON,
 * for the control socket's answers. Strings are made UTF-8 on the way (a
 * reason may quote what an app wrote: any bytes), whole numbers become
 * JSON integers without an out-of-range cast. */

#include <jansson.h>
#include <lua.h>

/* The boolean, number or string at IDX as JSON; NULL for anything else, a
 * NaN or an infinity, or when out of memory. */
json_t *lua_scalar_json(lua_State *L, int idx);

/* The value at IDX as JSON: scalars as lua_scalar_json (null where it has
 * none), a table with a length as an array, another as an object of its
 * string keys; NULL past DEPTH 8 of nesting. */
json_t *lua_to_json(lua_State *L, int idx, int depth);

/* Pushes V as Lua values: objects and arrays as tables, null as nil.
 * Returns 0, or -1 (nothing pushed) past DEPTH 8 or without stack room. */
int lua_push_json(lua_State *L, const json_t *v, int depth);

#endif
