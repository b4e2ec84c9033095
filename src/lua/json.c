#include "lua/json.h"

#include "base/utf8.h"

#include <stdlib.h>

json_t *lua_scalar_json(lua_State *L, int idx)
{
    switch (lua_type(L, idx)) {
    case LUA_TBOOLEAN: return json_boolean(lua_toboolean(L, idx));
    case LUA_TNUMBER: {
        double d = lua_tonumber(L, idx);
        if (d >= -9e15 && d <= 9e15 && d == (double)(long long)d) /* whole: no UB cast */
            return json_integer((json_int_t)d);
        return json_real(d); /* NULL for NaN and infinities */
    }
    case LUA_TSTRING: {
        char *t = utf8_dup(lua_tostring(L, idx));
        json_t *v = t ? json_string(t) : NULL;
        free(t);
        return v;
    }
    default: return NULL;
    }
}

json_t *lua_to_json(lua_State *L, int idx, int depth)
{
    idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
    if (lua_type(L, idx) != LUA_TTABLE) {
        json_t *v = lua_scalar_json(L, idx);
        return v ? v : json_null();
    }
    if (depth > 8)
        return NULL;
    size_t n = lua_objlen(L, idx);
    json_t *out = n > 0 ? json_array() : json_object();
    if (n > 0) {
        for (size_t i = 1; i <= n; i++) {
            lua_rawgeti(L, idx, (int)i);
            json_array_append_new(out, lua_to_json(L, -1, depth + 1));
            lua_pop(L, 1);
        }
        return out;
    }
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) == LUA_TSTRING)
            json_object_set_new(out, lua_tostring(L, -2), lua_to_json(L, -1, depth + 1));
        lua_pop(L, 1);
    }
    return out;
}

int lua_push_json(lua_State *L, const json_t *v, int depth)
{
    if (depth > 8 || !lua_checkstack(L, 3))
        return -1;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *x;
        lua_createtable(L, 0, (int)json_object_size(v));
        json_object_foreach((json_t *)v, k, x) {
            if (lua_push_json(L, x, depth + 1) < 0) {
                lua_pop(L, 1);
                return -1;
            }
            lua_setfield(L, -2, k);
        }
        return 0;
    }
    case JSON_ARRAY: {
        lua_createtable(L, (int)json_array_size(v), 0);
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (lua_push_json(L, json_array_get(v, i), depth + 1) < 0) {
                lua_pop(L, 1);
                return -1;
            }
            lua_rawseti(L, -2, (int)i + 1);
        }
        return 0;
    }
    case JSON_STRING: lua_pushlstring(L, json_string_value(v), json_string_length(v)); return 0;
    case JSON_INTEGER: lua_pushnumber(L, (lua_Number)json_integer_value(v)); return 0;
    case JSON_REAL: lua_pushnumber(L, json_real_value(v)); return 0;
    case JSON_TRUE: lua_pushboolean(L, 1); return 0;
    case JSON_FALSE: lua_pushboolean(L, 0); return 0;
    default: lua_pushnil(L); return 0;
    }
}
