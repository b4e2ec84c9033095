#include "lua_bridge.h"

#include "listeners.h"
#include "log.h"
#include "lua_embedded.h"
#include "probe.h"
#include "supervisor.h"

#include <errno.h>
#include <lauxlib.h>
#include <luajit.h>
#include <lualib.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

/* --- baton.core: mechanisms, for the runtime ---------------------------- */

static struct supervisor *sup_of(lua_State *L)
{
    return lua_touserdata(L, lua_upvalueindex(1));
}

static int core_now(lua_State *L)
{
    lua_pushnumber(L, sup_now(sup_of(L)));
    return 1;
}

static void budget_credit(lua_State *L, uint64_t ns);

/* The Lua convention for a call that starts something: its id, or nil and
 * a message (R a negative libuv error). */
static int push_id_or_error(lua_State *L, int r, uint64_t id)
{
    if (r < 0) {
        lua_pushnil(L);
        lua_pushstring(L, uv_strerror(r));
        return 2;
    }
    lua_pushnumber(L, (lua_Number)id);
    return 1;
}

/* core.spawn([state]) -> id, pid | nil, err. STATE: "stored" (default),
 * "none" or "staged" (see handover.h). */
static int core_spawn(lua_State *L)
{
    static const char *const modes[] = { "stored", "none", "staged", NULL };
    enum spawn_state mode = (enum spawn_state)luaL_checkoption(L, 1, "stored", modes);
    unsigned id;
    pid_t pid;
    char err[512];
    uint64_t t0 = uv_hrtime();
    int r = sup_spawn(sup_of(L), mode, &id, &pid, err, sizeof err);
    /* fork and exec are the supervisor's time, not the policy's. */
    budget_credit(L, uv_hrtime() - t0);
    if (r < 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushinteger(L, id);
    lua_pushinteger(L, pid);
    return 2;
}

static const struct { const char *name; int sig; } signals[] = {
    { "TERM", SIGTERM }, { "INT", SIGINT }, { "QUIT", SIGQUIT }, { "HUP", SIGHUP },
    { "USR1", SIGUSR1 }, { "USR2", SIGUSR2 }, { "KILL", SIGKILL }, { "WINCH", SIGWINCH },
    { "CONT", SIGCONT }, { "STOP", SIGSTOP },
};

static int core_signal(lua_State *L)
{
    unsigned id = (unsigned)luaL_checkinteger(L, 1);
    const char *name = luaL_checkstring(L, 2);
    int group = lua_toboolean(L, 3);
    for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++) {
        if (strcmp(signals[i].name, name) != 0)
            continue;
        int r = sup_signal(sup_of(L), id, signals[i].sig, group);
        if (r < 0) {
            lua_pushnil(L);
            lua_pushstring(L, strerror(-r));
            return 2;
        }
        lua_pushboolean(L, 1);
        return 1;
    }
    lua_pushnil(L);
    lua_pushfstring(L, "unknown signal %s", name);
    return 2;
}

static int core_timer(lua_State *L)
{
    double s = luaL_checknumber(L, 1);
    uint64_t id;
    if (sup_timer_start(sup_of(L), s, &id) < 0)
        return luaL_error(L, "timer: out of memory");
    lua_pushnumber(L, (lua_Number)id);
    return 1;
}

static int core_cancel(lua_State *L)
{
    sup_timer_cancel(sup_of(L), (uint64_t)luaL_checknumber(L, 1));
    return 0;
}

static int core_log(lua_State *L)
{
    int level = log_level_parse(luaL_checkstring(L, 1));
    log_msg(level < 0 ? LOG_INFO : (enum log_level)level, "%s", luaL_checkstring(L, 2));
    return 0;
}

static int core_set_state(lua_State *L)
{
    sup_set_state(sup_of(L), (unsigned)luaL_checkinteger(L, 1), luaL_checkstring(L, 2));
    return 0;
}

static int core_reply(lua_State *L)
{
    if (lua_isnumber(L, 1))
        sup_reply(sup_of(L), (uint64_t)lua_tonumber(L, 1), lua_toboolean(L, 2),
                  luaL_optstring(L, 3, ""));
    return 0;
}

static int core_shutdown(lua_State *L)
{
    sup_shutdown(sup_of(L), (int)luaL_optinteger(L, 1, 0));
    return 0;
}

/* core.stat(name [, generation]) -> the service total (or that generation's
 * figure, nil if its lane has moved on); a histogram as {count=, sum=}. */
static int core_stat(lua_State *L)
{
    struct supervisor *s = sup_of(L);
    int i = stats_find(&s->stats, luaL_checkstring(L, 1));
    const struct stats_entry *e = i < 0 ? NULL : stats_entry_at(&s->stats, (uint32_t)i);
    int lane = -1;
    if (e && !lua_isnoneornil(L, 2)) {
        uint32_t g = (uint32_t)luaL_checkinteger(L, 2);
        lane = (int)stats_lane_of(g);
        if (stats_lane_generation(&s->stats, (unsigned)lane) != g)
            e = NULL;
    }
    if (!e) {
        lua_pushnil(L);
        return 1;
    }
    if (e->type != STATS_HISTOGRAM) {
        lua_pushnumber(L, stats_read(&s->stats, e, lane, 0));
        return 1;
    }
    double count = 0;
    for (unsigned b = 0; b <= e->nbuckets; b++)
        count += stats_read(&s->stats, e, lane, b);
    lua_createtable(L, 0, 2);
    lua_pushnumber(L, count);
    lua_setfield(L, -2, "count");
    lua_pushnumber(L, stats_read(&s->stats, e, lane, e->nbuckets + 1));
    lua_setfield(L, -2, "sum");
    return 1;
}

static int core_stat_add(lua_State *L)
{
    sup_stat_add(sup_of(L), luaL_checkstring(L, 1), luaL_optnumber(L, 2, 1));
    return 0;
}

static int core_stat_set(lua_State *L)
{
    sup_stat_set(sup_of(L), luaL_checkstring(L, 1), luaL_checknumber(L, 2));
    return 0;
}

static int core_stat_observe(lua_State *L)
{
    sup_stat_observe(sup_of(L), luaL_checkstring(L, 1), luaL_checknumber(L, 2));
    return 0;
}

/* --- the policy sandbox -------------------------------------------------
 *
 * Policy code runs in coroutines the runtime arms. Each time it resumes one
 * it gives it a budget (instructions, milliseconds, and a cap on the VM's
 * memory); when the count hook finds that budget spent it yields the
 * coroutine from inside the hook. A yield cannot be caught by the policy's
 * own pcall, so the runtime gets control back, abandons that coroutine and
 * applies the safe default.
 *
 * LuaJIT's hook is global to the VM, not per coroutine: it is installed once
 * and acts only on armed threads, so the runtime's own code is never
 * touched. The JIT is off in this VM (bridge_open): compiled loops would not
 * call the hook at all. */

/* Often enough that a loop of few instructions but costly C calls (string
 * building) is still checked within milliseconds. */
#define HOOK_STEP 20
#define MAX_ARMED 256

struct armed {
    lua_State *co;
    long left;                /* instructions */
    uint64_t deadline_ns;     /* end of this slice; 0: none */
    const char *killed;
};

static struct armed armed[MAX_ARMED];
static int narmed;
static size_t memory_cap_kb;

static struct armed *armed_find(lua_State *co)
{
    for (int i = 0; i < narmed; i++)
        if (armed[i].co == co)
            return &armed[i];
    return NULL;
}

static void policy_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    struct armed *a = armed_find(L);
    if (!a || a->killed)
        return;
    a->left -= HOOK_STEP;
    if (a->left <= 0)
        a->killed = "instruction budget";
    else if (memory_cap_kb && (size_t)lua_gc(L, LUA_GCCOUNT, 0) > memory_cap_kb)
        a->killed = "memory cap";
    else if (a->deadline_ns && uv_hrtime() > a->deadline_ns)
        /* Instructions that allocate or call C cost far more than others:
         * time is what the event loop cares about. */
        a->killed = "time budget";
    else
        return;
    lua_yield(L, 0);
}

static void budget_credit(lua_State *L, uint64_t ns)
{
    struct armed *a = armed_find(L);
    if (a && a->deadline_ns)
        a->deadline_ns += ns;
}

static lua_State *check_thread(lua_State *L, int idx)
{
    lua_State *co = lua_tothread(L, idx);
    luaL_argcheck(L, co != NULL, idx, "coroutine expected");
    return co;
}

/* core.arm(co): policy code runs in CO. */
static int core_arm(lua_State *L)
{
    lua_State *co = check_thread(L, 1);
    if (!armed_find(co)) {
        if (narmed == MAX_ARMED)
            return luaL_error(L, "too many policy coroutines at once (%d)", MAX_ARMED);
        armed[narmed++] = (struct armed){ .co = co };
    }
    return 0;
}

/* core.disarm(co): CO finished or was abandoned. */
static int core_disarm(lua_State *L)
{
    struct armed *a = armed_find(check_thread(L, 1));
    if (a)
        *a = armed[--narmed];
    return 0;
}

/* core.budget(co, instructions, memory_mb, slice_ms): before each resume of
 * CO; the limits hold until it yields. */
static int core_budget(lua_State *L)
{
    struct armed *a = armed_find(check_thread(L, 1));
    if (!a)
        return luaL_error(L, "budget for a coroutine that is not armed");
    a->left = (long)luaL_checknumber(L, 2);
    memory_cap_kb = (size_t)(luaL_optnumber(L, 3, 0) * 1024);
    double ms = luaL_optnumber(L, 4, 0);
    a->deadline_ns = ms > 0 ? uv_hrtime() + (uint64_t)(ms * 1e6) : 0;
    a->killed = NULL;
    return 0;
}

/* core.killed(co) -> "instruction budget" | "memory cap" | "time budget" | nil */
static int core_killed(lua_State *L)
{
    struct armed *a = armed_find(check_thread(L, 1));
    if (!a || !a->killed)
        return 0;
    lua_pushstring(L, a->killed);
    return 1;
}

/* core.probe(host, port, path|nil, timeout_s) -> id | nil, err; the result
 * comes later as the event ("probe", id, ok, detail). */
static void on_probe(uint64_t id, int ok, int status, const char *detail, void *data)
{
    struct supervisor *s = data;
    (void)status;
    bridge_dispatch(&s->lua, "probe", "iis", (long long)id, (long long)ok, detail);
}

static int core_probe(lua_State *L)
{
    struct supervisor *s = sup_of(L);
    const char *host = luaL_checkstring(L, 1);
    int port = (int)luaL_checkinteger(L, 2);
    const char *path = luaL_optstring(L, 3, NULL);
    double t = luaL_checknumber(L, 4);
    uint64_t id = 0;
    int r = port < 1 || port > 65535 ? UV_EINVAL
          : probe_start(s->loop, host, port, path, (unsigned)(t * 1000), on_probe, s, &id);
    return push_id_or_error(L, r, id);
}

/* core.watch(path) -> id | nil, err; changes come as ("watch", id). */
static int core_watch(lua_State *L)
{
    uint64_t id = 0;
    int r = sup_watch_add(sup_of(L), luaL_checkstring(L, 1), &id);
    return push_id_or_error(L, r, id);
}

static int core_unwatch(lua_State *L)
{
    sup_watch_remove(sup_of(L), (uint64_t)luaL_checknumber(L, 1));
    return 0;
}

/* core.state_info() -> nil (no state stored) | { version, size, generation,
 * stored_at } | false, err (the stored blob is bad). */
static int core_state_info(lua_State *L)
{
    struct state_info info;
    char err[512];
    int r = sup_state_info(sup_of(L), &info, err, sizeof err);
    if (r == -ENOENT) {
        lua_pushnil(L);
        return 1;
    }
    if (r < 0) {
        lua_pushboolean(L, 0);
        lua_pushstring(L, err);
        return 2;
    }
    lua_createtable(L, 0, 4);
    lua_pushnumber(L, info.schema);
    lua_setfield(L, -2, "version");
    lua_pushnumber(L, (lua_Number)info.length);
    lua_setfield(L, -2, "size");
    lua_pushinteger(L, info.generation);
    lua_setfield(L, -2, "generation");
    lua_pushnumber(L, info.stored_at);
    lua_setfield(L, -2, "stored_at");
    return 1;
}

/* core.state_read() -> the stored blob's payload as a string | nil, err.
 * A copy into the VM: only a migration needs it. */
static int core_state_read(lua_State *L)
{
    struct state_blob b;
    char err[512];
    if (sup_state_map(sup_of(L), &b, err, sizeof err) < 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushlstring(L, b.data, b.length);
    state_blob_close(&b);
    return 1;
}

/* core.state_stage(blob, version) -> true | nil, err: the next spawn with
 * "staged" passes BLOB (a migration's result) as the state. */
static int core_state_stage(lua_State *L)
{
    size_t len;
    const char *data = luaL_checklstring(L, 1, &len);
    lua_Number v = luaL_checknumber(L, 2);
    char err[512];
    if (v < 0 || v > UINT32_MAX || v != (lua_Number)(uint32_t)v)
        return luaL_argerror(L, 2, "a version is a whole number from 0 to 4294967295");
    if (sup_state_stage(sup_of(L), data, len, (uint32_t)v, err, sizeof err) < 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* core.drain_window(generation, seconds): a gradual drain starts now. */
static int core_drain_window(lua_State *L)
{
    struct supervisor *s = sup_of(L);
    uint32_t g = (uint32_t)luaL_checkinteger(L, 1);
    uint64_t now = uv_hrtime(); /* CLOCK_MONOTONIC, as libbaton reads it */
    stats_set_drain(&s->stats, g, now, now + (uint64_t)(luaL_checknumber(L, 2) * 1e9));
    return 0;
}

static const luaL_Reg core_fns[] = {
    { "probe", core_probe }, { "drain_window", core_drain_window }, { "watch", core_watch }, { "unwatch", core_unwatch },
    { "arm", core_arm }, { "disarm", core_disarm }, { "budget", core_budget },
    { "killed", core_killed },
    { "state_info", core_state_info }, { "state_read", core_state_read },
    { "state_stage", core_state_stage },
    { "stat", core_stat }, { "stat_add", core_stat_add }, { "stat_set", core_stat_set },
    { "stat_observe", core_stat_observe },
    { "now", core_now }, { "spawn", core_spawn }, { "signal", core_signal },
    { "timer", core_timer }, { "cancel", core_cancel }, { "log", core_log },
    { "set_state", core_set_state }, { "reply", core_reply },
    { "shutdown", core_shutdown }, { NULL, NULL },
};

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

static int preload_embedded(lua_State *L)
{
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "preload");
    for (const struct lua_embedded *e = lua_embedded; e->module; e++) {
        if (luaL_loadbuffer(L, e->source, e->len, e->chunkname) != 0) {
            log_error("embedded %s does not compile: %s", e->chunkname, lua_tostring(L, -1));
            lua_pop(L, 3);
            return -EINVAL;
        }
        lua_setfield(L, -2, e->module);
    }
    lua_pop(L, 2);
    return 0;
}

int bridge_open(struct bridge *b, struct supervisor *sup)
{
    memset(b, 0, sizeof *b);
    b->cfg_ref = b->rt_ref = LUA_NOREF;
    b->sup = sup;
    b->L = luaL_newstate();
    if (!b->L)
        return -ENOMEM;
    luaL_openlibs(b->L);
    /* Count hooks (the policy budget) do not fire in JIT-compiled code. */
    luaJIT_setmode(b->L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
    if (preload_embedded(b->L) < 0)
        return -EINVAL;

    lua_newtable(b->L);
    if (sup) {
        narmed = 0;
        lua_sethook(b->L, policy_hook, LUA_MASKCOUNT, HOOK_STEP);
        for (const luaL_Reg *f = core_fns; f->name; f++) {
            lua_pushlightuserdata(b->L, sup);
            lua_pushcclosure(b->L, f->func, 1);
            lua_setfield(b->L, -2, f->name);
        }
    }
    /* package.loaded["baton.core"] = core */
    lua_getglobal(b->L, "package");
    lua_getfield(b->L, -1, "loaded");
    lua_pushvalue(b->L, -3);
    lua_setfield(b->L, -2, "baton.core");
    lua_pop(b->L, 3);
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
    int ref, r = bridge_load_config_ref(b, file, runtime_dir, cfg, &ref, err, errlen);
    if (r < 0)
        return r;
    luaL_unref(b->L, LUA_REGISTRYINDEX, b->cfg_ref);
    b->cfg_ref = ref;
    return 0;
}

int bridge_load_config_ref(struct bridge *b, const char *file, const char *runtime_dir,
                           struct service_config *cfg, int *ref, char *err, size_t errlen)
{
    lua_State *L = b->L;
    int r = require(L, "baton.config", err, errlen);
    if (r < 0)
        return r;
    lua_getfield(L, -1, "load");
    lua_remove(L, -2);
    lua_pushstring(L, file);
    lua_createtable(L, 0, 2);
    lua_pushstring(L, runtime_dir);
    lua_setfield(L, -2, "runtime_dir");
    lua_pushcfunction(L, native_check_address);
    lua_setfield(L, -2, "check_address");
    if ((r = pcall(L, 2, 2, err, errlen)) < 0)
        return r;
    if (lua_isnil(L, -2)) {
        snprintf(err, errlen, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "invalid service file");
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
    *ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

void bridge_drop_config(struct bridge *b, int ref)
{
    luaL_unref(b->L, LUA_REGISTRYINDEX, ref);
}

void bridge_commit_config(struct bridge *b, int ref)
{
    luaL_unref(b->L, LUA_REGISTRYINDEX, b->cfg_ref);
    b->cfg_ref = ref;
    bridge_dispatch(b, "reload", "r", ref);
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

int bridge_start_runtime(struct bridge *b, char *err, size_t errlen)
{
    lua_State *L = b->L;
    int r;
    if ((r = require(L, "baton.runtime", err, errlen)) < 0)
        return r;
    lua_getfield(L, -1, "new");
    lua_remove(L, -2);
    if ((r = require(L, "baton.core", err, errlen)) < 0 ||
        (lua_rawgeti(L, LUA_REGISTRYINDEX, b->cfg_ref), 0) ||
        (r = require(L, "baton.policies.default", err, errlen)) < 0 ||
        (r = pcall(L, 3, 1, err, errlen)) < 0) {
        lua_settop(L, 0);
        return r;
    }
    b->rt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

void bridge_dispatch(struct bridge *b, const char *event, const char *fmt, ...)
{
    lua_State *L = b->L;
    if (b->rt_ref == LUA_NOREF)
        return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, b->rt_ref);
    lua_getfield(L, -1, "dispatch");
    lua_insert(L, -2);
    lua_pushstring(L, event);
    va_list ap;
    va_start(ap, fmt);
    int n = 2;
    for (const char *f = fmt; *f; f++, n++) {
        if (*f == 'i')
            lua_pushnumber(L, (lua_Number)va_arg(ap, long long));
        else if (*f == 'r')
            lua_rawgeti(L, LUA_REGISTRYINDEX, va_arg(ap, int));
        else {
            const char *s = va_arg(ap, const char *);
            if (s)
                lua_pushstring(L, s);
            else
                lua_pushnil(L);
        }
    }
    va_end(ap);
    char err[4096];
    if (pcall(L, n, 0, err, sizeof err) < 0)
        log_error("runtime: event '%s': %s", event, err);
}

void bridge_close(struct bridge *b)
{
    if (b->L)
        lua_close(b->L);
    b->L = NULL;
}
