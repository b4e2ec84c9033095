/* lua_bridge.c: the embedded VM, and events into the runtime (see lua_bridge.h). */
#include "lua/bridge.h"
#include "lua/json.h"

#include "loop/listeners.h"
#include "base/log.h"
#include "lua/budget.h"
#include "lua/core.h"
#include "lua/embedded.h"

#include <errno.h>
#include <grp.h>
#include <lauxlib.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>

/* --- helpers the config loader uses, with or without a supervisor ------- */

static int native_check_address(lua_State *L)
{
    struct listener l = { .fd = -1 };
    char why[256];
    if (listener_parse(&l, luaL_checkstring(L, 1), why, sizeof why) < 0) {
        lua_pushnil(L);
        lua_pushstring(L, why);
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* user(name | uid) -> uid, gid (its primary group), name | nil, why: the
 * service file's `user`, looked up in the system's user database now, so
 * `baton check` refuses one that does not exist. */
static int native_user(lua_State *L)
{
    struct passwd pw, *res = NULL;
    char buf[16384];
    int r;
    if (lua_type(L, 1) == LUA_TNUMBER)
        r = getpwuid_r((uid_t)lua_tonumber(L, 1), &pw, buf, sizeof buf, &res);
    else
        r = getpwnam_r(luaL_checkstring(L, 1), &pw, buf, sizeof buf, &res);
    if (!res) {
        lua_pushnil(L);
        if (r != 0)
            lua_pushfstring(L, "cannot look up user %s: %s", lua_tostring(L, 1), strerror(r));
        else
            lua_pushfstring(L, "no user %s on this system", lua_tostring(L, 1));
        return 2;
    }
    lua_pushnumber(L, pw.pw_uid);
    lua_pushnumber(L, pw.pw_gid);
    lua_pushstring(L, pw.pw_name);
    return 3;
}

/* group(name | gid) -> gid, name | nil, why. */
static int native_group(lua_State *L)
{
    struct group gr, *res = NULL;
    char buf[16384];
    int r;
    if (lua_type(L, 1) == LUA_TNUMBER)
        r = getgrgid_r((gid_t)lua_tonumber(L, 1), &gr, buf, sizeof buf, &res);
    else
        r = getgrnam_r(luaL_checkstring(L, 1), &gr, buf, sizeof buf, &res);
    if (!res) {
        lua_pushnil(L);
        if (r != 0)
            lua_pushfstring(L, "cannot look up group %s: %s", lua_tostring(L, 1), strerror(r));
        else
            lua_pushfstring(L, "no group %s on this system", lua_tostring(L, 1));
        return 2;
    }
    lua_pushnumber(L, gr.gr_gid);
    lua_pushstring(L, gr.gr_name);
    return 2;
}

/* --- the VM ------------------------------------------------------------- */

static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    lua_getglobal(L, "debug");
    lua_getfield(L, -1, "traceback");
    lua_pushstring(L, msg ? msg : "(error object is not a string)");
    lua_pushinteger(L, 2);
    lua_call(L, 2, 1);
    return 1;
}

/* Runs the function below NARGS arguments on the stack, protected. Returns
 * 0 with NRES results pushed, or -EINVAL with the message (and traceback)
 * in ERR. */
static int pcall(lua_State *L, int nargs, int nres, char *err, size_t errlen)
{
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, traceback);
    lua_insert(L, base);
    int r = lua_pcall(L, nargs, nres, base);
    lua_remove(L, base);
    if (r != 0) {
        snprintf(err, errlen, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
        lua_pop(L, 1);
        return -EINVAL;
    }
    return 0;
}

/* package.preload[module] = its compiled chunk, and
 * package.loaded["baton.sources"][module] = its source, for the sandbox,
 * which loads a fresh instance of a module for each policy. */
static int load_embedded(lua_State *L)
{
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "loaded");
    lua_newtable(L);
    lua_getfield(L, -3, "preload");
    for (const struct lua_embedded *e = lua_embedded; e->module; e++) {
        lua_pushlstring(L, e->source, e->len);
        lua_setfield(L, -3, e->module);
        if (luaL_loadbuffer(L, e->source, e->len, e->chunkname) != 0) {
            log_error("embedded %s does not compile: %s", e->chunkname, lua_tostring(L, -1));
            lua_pop(L, 5);
            return -EINVAL;
        }
        lua_setfield(L, -2, e->module);
    }
    lua_pop(L, 1);
    lua_setfield(L, -2, "baton.sources");
    /* Nothing of baton's is read from disk: no Lua file from package.path,
     * and C modules (lua-cjson) only from the system's folders. */
    lua_pushliteral(L, "");
    lua_setfield(L, -3, "path");
    lua_pushliteral(L, "/usr/lib/x86_64-linux-gnu/lua/5.1/?.so;/usr/lib/lua/5.1/?.so;"
                       "/usr/local/lib/lua/5.1/?.so");
    lua_setfield(L, -3, "cpath");
    /* package.loaded["baton.native"] = { check_address = ... } */
    lua_createtable(L, 0, 3);
    lua_pushcfunction(L, native_check_address);
    lua_setfield(L, -2, "check_address");
    lua_pushcfunction(L, native_user);
    lua_setfield(L, -2, "user");
    lua_pushcfunction(L, native_group);
    lua_setfield(L, -2, "group");
    lua_setfield(L, -2, "baton.native");
    lua_pop(L, 2);
    return 0;
}

int bridge_open(struct bridge *b)
{
    memset(b, 0, sizeof *b);
    b->cfg_ref = b->rt_ref = LUA_NOREF;
    b->L = budget_new_state();
    if (!b->L)
        return -ENOMEM;
    /* No code of baton's needs it, and bytecode is one more way in. */
    lua_getglobal(b->L, "string");
    lua_pushnil(b->L);
    lua_setfield(b->L, -2, "dump");
    lua_pop(b->L, 1);
    if (load_embedded(b->L) < 0)
        return -EINVAL;
    /* Patterns in budgeted code are bounded (lua/baton/patterns.lua). */
    char err[512];
    if (luaL_dostring(b->L, "local budget = package.loaded['baton.budget']\n"
                            "require('baton.patterns').install(string, budget.active)") != 0) {
        snprintf(err, sizeof err, "%s", lua_tostring(b->L, -1));
        log_error("cannot bound string patterns: %s", err);
        return -EINVAL;
    }
    return 0;
}

static int require(lua_State *L, const char *mod, char *err, size_t errlen)
{
    lua_getglobal(L, "require");
    lua_pushstring(L, mod);
    return pcall(L, 1, 1, err, errlen);
}

int bridge_load_config(struct bridge *b, const char *file, const char *runtime_dir,
                       struct service_config *cfg, char *err, size_t errlen)
{
    lua_State *L = b->L;
    int r = require(L, "baton.config", err, errlen);
    if (r < 0)
        return r;
    lua_getfield(L, -1, "load");
    lua_remove(L, -2);
    lua_pushstring(L, file);
    lua_createtable(L, 0, 1);
    lua_pushstring(L, runtime_dir);
    lua_setfield(L, -2, "runtime_dir");
    if ((r = pcall(L, 2, 2, err, errlen)) < 0)
        return r;
    if (lua_isnil(L, -2)) {
        snprintf(err, errlen, "%s",
                 lua_tostring(L, -1) ? lua_tostring(L, -1) : "invalid service file");
        lua_pop(L, 2);
        return -EINVAL;
    }
    lua_pop(L, 1);
    r = config_from_lua(L, -1, cfg, err, errlen);
    if (r < 0) {
        lua_pop(L, 1);
        config_free(cfg);
        return r;
    }
    luaL_unref(L, LUA_REGISTRYINDEX, b->cfg_ref);
    b->cfg_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

int bridge_control_path(struct bridge *b, const char *file, const char *runtime_dir, char *out,
                        size_t len, char *err, size_t errlen)
{
    lua_State *L = b->L;
    int r = require(L, "baton.config", err, errlen);
    if (r < 0)
        return r;
    lua_getfield(L, -1, "control");
    lua_remove(L, -2);
    lua_pushstring(L, file);
    lua_createtable(L, 0, 1);
    lua_pushstring(L, runtime_dir);
    lua_setfield(L, -2, "runtime_dir");
    if ((r = pcall(L, 2, 2, err, errlen)) < 0)
        return r;
    r = 0;
    if (lua_type(L, -2) != LUA_TSTRING) {
        snprintf(err, errlen, "%s",
                 lua_tostring(L, -1) ? lua_tostring(L, -1) : "no control socket in the file");
        r = -EINVAL;
    } else if (lua_objlen(L, -2) >= len) {
        snprintf(err, errlen, "%s: its control socket's path is too long", file);
        r = -ENAMETOOLONG;
    } else {
        snprintf(out, len, "%s", lua_tostring(L, -2));
    }
    lua_pop(L, 2);
    return r;
}

char *bridge_config_string(struct bridge *b, const char *key)
{
    lua_State *L = b->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, b->cfg_ref);
    lua_getfield(L, -1, key);
    char *v = lua_type(L, -1) == LUA_TSTRING ? strdup(lua_tostring(L, -1)) : NULL;
    lua_pop(L, 2);
    return v;
}

/* --- events in, the view out -------------------------------------------- */

static const char *const event_names[] = {
    [EV_START] = "start",       [EV_EXIT] = "exit",     [EV_READY] = "ready",
    [EV_STOPPING] = "stopping", [EV_STORED] = "stored", [EV_TIMER] = "timer",
    [EV_WATCH] = "watch",       [EV_PROBE] = "probe",   [EV_UPGRADE] = "upgrade",
};

/* Pushes runtime[METHOD] and the runtime; returns 0, or -1 (nothing pushed).
 * Counts the call, and the budgeted resumes since the last one, as
 * crossings of the boundary. */
static int push_method(struct bridge *b, const char *method)
{
    if (b->rt_ref == LUA_NOREF)
        return -1;
    unsigned long resumes = budget_resumes();
    b->api->crossings += 1 + resumes - b->resumes_seen;
    b->resumes_seen = resumes;
    lua_rawgeti(b->L, LUA_REGISTRYINDEX, b->rt_ref);
    lua_getfield(b->L, -1, method);
    lua_insert(b->L, -2);
    return 0;
}

static int on_event(void *ctx, const struct event *ev)
{
    struct bridge *b = ctx;
    lua_State *L = b->L;
    if (push_method(b, "dispatch") < 0)
        return 0;
    lua_pushnumber(L, ev->now);
    int n = 3;
    switch (ev->kind) {
    case EV_REQUEST: /* runtime:dispatch(now, "restart", req, why) */
        lua_pushstring(L, ev->name);
        if (ev->id)
            lua_pushnumber(L, (lua_Number)ev->id);
        else
            lua_pushnil(L);
        if (ev->why)
            lua_pushstring(L, ev->why);
        else
            lua_pushnil(L);
        n += 3;
        break;
    case EV_EXIT:
        lua_pushstring(L, event_names[ev->kind]);
        lua_pushnumber(L, (lua_Number)ev->id);
        lua_pushinteger(L, ev->code);
        lua_pushinteger(L, ev->signal);
        n += 4;
        break;
    case EV_PROBE:
        lua_pushstring(L, event_names[ev->kind]);
        lua_pushnumber(L, (lua_Number)ev->id);
        lua_pushinteger(L, ev->code);
        lua_pushstring(L, ev->name ? ev->name : "");
        n += 4;
        break;
    case EV_STORED:
        lua_pushstring(L, event_names[ev->kind]);
        lua_pushnumber(L, (lua_Number)ev->id);
        lua_pushstring(L, ev->name);
        n += 3;
        break;
    case EV_START: /* runtime:dispatch(now, "start"[, carry, how, req]) */
        lua_pushstring(L, event_names[ev->kind]);
        n += 1;
        if (ev->data) {
            if (lua_push_json(L, ev->data, 0) < 0)
                lua_pushnil(L);
            lua_pushstring(L, ev->name ? ev->name : "upgrade");
            if (ev->id)
                lua_pushnumber(L, (lua_Number)ev->id);
            else
                lua_pushnil(L);
            n += 3;
        }
        break;
    case EV_UPGRADE: /* runtime:dispatch(now, "upgrade", req, ok, why) */
        lua_pushstring(L, event_names[ev->kind]);
        lua_pushnumber(L, (lua_Number)ev->id);
        lua_pushinteger(L, ev->code);
        if (ev->name)
            lua_pushstring(L, ev->name);
        else
            lua_pushnil(L);
        n += 4;
        break;
    default:
        lua_pushstring(L, event_names[ev->kind]);
        lua_pushnumber(L, (lua_Number)ev->id);
        n += 2;
        break;
    }
    char err[4096];
    if (pcall(L, n - 1, 1, err, sizeof err) < 0) {
        log_error("runtime: event: %s", err);
        return 1; /* it may have changed anything */
    }
    int changed = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return changed;
}

static json_t *on_query(void *ctx, const char *what, double now, int n)
{
    struct bridge *b = ctx;
    if (push_method(b, "query") < 0)
        return NULL;
    lua_pushstring(b->L, what);
    lua_pushnumber(b->L, now);
    if (n > 0)
        lua_pushinteger(b->L, n);
    else
        lua_pushnil(b->L);
    char err[4096];
    if (pcall(b->L, 4, 1, err, sizeof err) < 0) {
        log_error("runtime: query %s: %s", what, err);
        return NULL;
    }
    json_t *j = lua_to_json(b->L, -1, 0);
    lua_pop(b->L, 1);
    return j;
}

int bridge_start_runtime(struct bridge *b, struct core_api *api, char *err, size_t errlen)
{
    lua_State *L = b->L;
    int r;
    b->api = api;
    if ((r = require(L, "baton.runtime", err, errlen)) < 0)
        return r;
    lua_getfield(L, -1, "new");
    lua_remove(L, -2);
    lua_core_push(L, api);
    lua_rawgeti(L, LUA_REGISTRYINDEX, b->cfg_ref);
    if ((r = require(L, "baton.config", err, errlen)) < 0) {
        lua_settop(L, 0);
        return r;
    }
    /* runtime.new(core, cfg, config.load_policy("default")) */
    lua_getfield(L, -1, "load_policy");
    lua_remove(L, -2);
    lua_pushliteral(L, "default");
    if ((r = pcall(L, 1, 1, err, errlen)) < 0 || (r = pcall(L, 3, 1, err, errlen)) < 0) {
        lua_settop(L, 0);
        return r;
    }
    b->rt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    b->sink = (struct event_sink){ .event = on_event, .query = on_query, .ctx = b };
    return 0;
}

const struct event_sink *bridge_sink(struct bridge *b)
{
    return &b->sink;
}

void bridge_close(struct bridge *b)
{
    if (b->L)
        lua_close(b->L);
    b->L = NULL;
}
