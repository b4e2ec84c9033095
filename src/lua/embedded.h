#ifndef BATON_LUA_EMBEDDED_H
#define BATON_LUA_EMBEDDED_H
#include <stddef.h>

/* The Lua sources compiled into the binary (see cmake/embed_lua.cmake).
 * The table ends with an entry whose module is NULL. */
struct lua_embedded {
    const char *module;    /* "baton.runtime", "baton.policies.default" */
    const char *chunkname; /* "@lua/baton/runtime.lua": errors name the file */
    const char *source;
    size_t len;
};

extern const struct lua_embedded lua_embedded[];

#endif
