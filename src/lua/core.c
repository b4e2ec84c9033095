/* lua_core.c: baton.core (see lua_core.h and core_api.h). */
#include "lua/core.h"
#include "lua/core_internal.h"

#include "base/clock.h"
#include "loop/figures.h"
#include "base/log.h"
#include "lua/budget.h"
#include "lua/json.h"
#include "loop/probe.h"
#include "loop/stats_own.h"
#include "base/utf8.h"
#include "os/os.h"

#include <errno.h>
#include <lauxlib.h>
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct core_api *core_api_of(lua_State *L)
{
    struct core_api *a = lua_touserdata(L, lua_upvalueindex(1));
    a->crossings++;
    return a;
}

/* The convention for a call that starts something: its id, or nil and a
 * message (R a negative errno or libuv error). */
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

/* spawn([state]) -> id, pid, ports | nil, err. STATE: "stored" (default),
 * "none" or "staged" (see handover.h). PORTS: { NAME = port } of its
 * per_generation listeners. */
static int core_spawn(lua_State *L)
{
    static const char *const modes[] = { "stored", "none", "staged", NULL };
    struct core_api *a = core_api_of(L);
    enum spawn_state mode = (enum spawn_state)luaL_checkoption(L, 1, "stored", modes);
    unsigned id;
    pid_t pid;
    char err[512];
    size_t nl = a->config->nlisteners;
    unsigned short ports[nl + 1];
    uint64_t t0 = uv_hrtime();
    int r = launcher_spawn(a->launcher, mode, clock_mono(), &id, &pid, ports, err, sizeof err);
    /* fork and exec are the supervisor's time, not the policy's. */
    budget_credit(L, uv_hrtime() - t0);
    if (r < 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushinteger(L, id);
    lua_pushinteger(L, pid);
    lua_createtable(L, 0, 1);
    for (size_t i = 0; i < nl; i++) {
        if (ports[i]) {
            lua_pushinteger(L, ports[i]);
            lua_setfield(L, -2, a->config->listeners[i].name);
        }
    }
    return 3;
}

/* The signals a policy may send, by the names lua/baton/gen.lua accepts. */
static const struct {
    const char *name;
    int sig;
} signals[] = {
    { "TERM", SIGTERM }, { "INT", SIGINT },   { "QUIT", SIGQUIT }, { "HUP", SIGHUP },
    { "USR1", SIGUSR1 }, { "USR2", SIGUSR2 }, { "KILL", SIGKILL }, { "WINCH", SIGWINCH },
    { "CONT", SIGCONT }, { "STOP", SIGSTOP },
};

static int core_signal(lua_State *L)
{
    struct core_api *a = core_api_of(L);
    unsigned id = (unsigned)luaL_checkinteger(L, 1);
    const char *name = luaL_checkstring(L, 2);
    int group = lua_toboolean(L, 3);
    for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++) {
        if (strcmp(signals[i].name, name) != 0)
            continue;
        int r = procs_signal(a->procs, id, signals[i].sig, group);
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
    struct core_api *a = core_api_of(L);
    uint64_t id;
    int r = timers_start(a->timers, luaL_checknumber(L, 1), &id);
    if (r < 0)
        return luaL_error(L, "timer: %s", strerror(-r));
    lua_pushnumber(L, (lua_Number)id);
    return 1;
}

static int core_cancel(lua_State *L)
{
    timers_cancel(core_api_of(L)->timers, (uint64_t)luaL_checknumber(L, 1));
    return 0;
}

/* The answer of a probe comes back as the event EV_PROBE. */
static void on_probe(uint64_t id, int ok, int status, const char *detail, void *data)
{
    struct core_api *a = data;
    (void)status;
    struct event ev = {
        .kind = EV_PROBE, .id = id, .code = ok, .name = detail, .now = clock_mono()
    };
    a->sink->event(a->sink->ctx, &ev);
}

static int core_probe(lua_State *L)
{
    struct core_api *a = core_api_of(L);
    const char *host = luaL_checkstring(L, 1);
    int port = (int)luaL_checkinteger(L, 2);
    const char *path = luaL_optstring(L, 3, NULL);
    double t = luaL_checknumber(L, 4);
    uint64_t id = 0;
    if (port < 1 || port > 65535 || t < 0 || t > 3600)
        return push_id_or_error(L, UV_EINVAL, id);
    /* A TCP probe of a socket the supervisor holds always passes: refused,
     * with why, so a wait_ready on it fails at once instead of never. */
    struct sockaddr_storage ss;
    const struct listener *own = NULL;
    if (!path && (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) == 0 ||
                  uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) == 0))
        own = listeners_reaching(a->config->listeners, a->config->nlisteners,
                                 (const struct sockaddr *)&ss);
    if (own) {
        lua_pushnil(L);
        lua_pushfstring(L,
                        "it is the service's own listener '%s': the supervisor holds that "
                        "socket, so the kernel completes a connection whether or not the app "
                        "accepts; use an http probe on the generation's own port ({port:NAME} "
                        "of a per_generation listener), or a tcp probe of a port the app binds",
                        own->name);
        return 2;
    }
    int r = probe_start(a->loop, host, port, path, (unsigned)(t * 1000), on_probe, a, &id);
    return push_id_or_error(L, r, id);
}

static int core_watch(lua_State *L)
{
    struct core_api *a = core_api_of(L);
    uint64_t id = 0;
    int r = watches_add(a->watches, luaL_checkstring(L, 1), &id);
    return push_id_or_error(L, r, id);
}

static int core_unwatch(lua_State *L)
{
    watches_remove(core_api_of(L)->watches, (uint64_t)luaL_checknumber(L, 1));
    return 0;
}

static int core_log(lua_State *L)
{
    core_api_of(L);
    int level = log_level_parse(luaL_checkstring(L, 1));
    log_msg(level < 0 ? LOG_INFO : (enum log_level)level, "%s", luaL_checkstring(L, 2));
    return 0;
}

/* At most this many fields in a reply's result table. */
#define REPLY_FIELDS 16

/* reply(req, ok, message[, fields]): REQ nil (nobody waits) is ignored.
 * FIELDS (the runtime's own table, never a policy's) adds string keys with
 * string, number or boolean values to the answer, e.g. a restart's result. */
static int core_reply(lua_State *L)
{
    struct core_api *a = core_api_of(L);
    if (!lua_isnumber(L, 1) || !a->control->open)
        return 0;
    int ok = lua_toboolean(L, 2);
    /* A reason may quote what an app wrote: any bytes. Made UTF-8, so the
     * answer is always sent (Jansson refuses invalid UTF-8). */
    char *msg = utf8_dup(luaL_optstring(L, 3, ""));
    json_t *j = msg ? json_pack("{s:b, s:s}", "ok", ok, ok ? "message" : "error", msg) : NULL;
    free(msg);
    if (!j)
        j = json_pack("{s:b, s:s}", "ok", ok, ok ? "message" : "error", "(out of memory)");
    if (j && lua_type(L, 4) == LUA_TTABLE) {
        int n = 0;
        lua_pushnil(L);
        while (n < REPLY_FIELDS && lua_next(L, 4) != 0) {
            if (lua_type(L, -2) == LUA_TSTRING && !json_object_get(j, lua_tostring(L, -2))) {
                const char *k = lua_tostring(L, -2);
                json_t *v = lua_scalar_json(L, -1); /* NULL: left out */
                if (v) {
                    json_object_set_new(j, k, v);
                    n++;
                }
            }
            lua_pop(L, 1);
        }
        if (n == REPLY_FIELDS)
            lua_pop(L, 1); /* the key the loop stopped at */
    }
    if (j)
        control_reply(a->control, (uint64_t)lua_tonumber(L, 1), j);
    return 0;
}

/* exec(req, carry): the supervisor becomes the new image `baton upgrade`
 * checked, carrying CARRY (the runtime's own plain data). Returns only when
 * it could not: nil, why. */
static int core_exec(lua_State *L)
{
    struct core_api *a = core_api_of(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    char err[512] = "out of memory";
    json_t *carry = lua_to_json(L, 2, 0);
    if (carry)
        a->exec(a->exec_owner, (uint64_t)luaL_checknumber(L, 1), carry, err, sizeof err);
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
}

static int core_shutdown(lua_State *L)
{
    struct core_api *a = core_api_of(L);
    a->shutdown(a->owner, (int)luaL_optinteger(L, 1, 0));
    return 0;
}

/* stat(name [, generation]) -> the service total (or that generation's
 * figure, nil if its lane has moved on); a histogram as {count=, sum=}. */
static int core_stat(lua_State *L)
{
    struct stats_region *r = core_api_of(L)->stats;
    int i = stats_find(r, luaL_checkstring(L, 1));
    const struct stats_entry *e = i < 0 ? NULL : stats_entry_at(r, (uint32_t)i);
    int lane = -1;
    if (e && !lua_isnoneornil(L, 2)) {
        uint32_t g = (uint32_t)luaL_checkinteger(L, 2);
        lane = (int)stats_lane_of(g);
        if (stats_lane_generation(r, (unsigned)lane) != g)
            e = NULL;
    }
    if (!e) {
        lua_pushnil(L);
        return 1;
    }
    if (e->type != STATS_HISTOGRAM) {
        lua_pushnumber(L, stats_read(r, e, lane, 0));
        return 1;
    }
    double count = 0;
    for (unsigned b = 0; b <= e->nbuckets; b++)
        count += stats_read(r, e, lane, b);
    lua_createtable(L, 0, 2);
    lua_pushnumber(L, count);
    lua_setfield(L, -2, "count");
    lua_pushnumber(L, stats_read(r, e, lane, e->nbuckets + 1));
    lua_setfield(L, -2, "sum");
    return 1;
}

static int core_stat_add(lua_State *L)
{
    stats_own_add(core_api_of(L)->stats, luaL_checkstring(L, 1), luaL_optnumber(L, 2, 1));
    return 0;
}

static int core_stat_observe(lua_State *L)
{
    stats_own_observe(core_api_of(L)->stats, luaL_checkstring(L, 1), luaL_checknumber(L, 2));
    return 0;
}

/* drain_window(generation, seconds): a gradual drain starts now. */
static int core_drain_window(lua_State *L)
{
    struct core_api *a = core_api_of(L);
    uint32_t g = (uint32_t)luaL_checkinteger(L, 1);
    uint64_t t = uv_hrtime(); /* CLOCK_MONOTONIC, as libbaton reads it */
    stats_set_drain(a->stats, g, t, t + (uint64_t)(luaL_checknumber(L, 2) * 1e9));
    return 0;
}

/* state_info() -> nil (none stored) | { version, size, generation,
 * stored_at } | false, err (the stored blob is bad) | false, err, true
 * (its checksum is still being verified: the event 'stored' comes once it
 * is). */
static int core_state_info(lua_State *L)
{
    struct state_info info;
    char err[512];
    int r = handover_state_info(core_api_of(L)->handover, &info, err, sizeof err);
    if (r == -ENOENT) {
        lua_pushnil(L);
        return 1;
    }
    if (r < 0) {
        lua_pushboolean(L, 0);
        lua_pushstring(L, err);
        lua_pushboolean(L, r == -EINPROGRESS);
        return 3;
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

static int push_blob(lua_State *L)
{
    const struct state_blob *b = lua_touserdata(L, 1);
    lua_pushlstring(L, b->data, b->length);
    return 1;
}

/* state_read() -> the stored blob's payload | nil, err. A copy into the
 * VM: only a migration needs it. */
static int core_state_read(lua_State *L)
{
    struct state_blob b;
    char err[512];
    if (handover_state_map(core_api_of(L)->handover, &b, err, sizeof err) < 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    /* The copy may raise (the VM's memory cap): the mapping is closed
     * either way, and the error raised after. */
    lua_pushcfunction(L, push_blob);
    lua_pushlightuserdata(L, &b);
    int r = lua_pcall(L, 1, 1, 0);
    state_blob_close(&b);
    if (r != 0)
        return lua_error(L);
    return 1;
}

/* state_stage(blob, version) -> true | nil, err: the next spawn with
 * "staged" passes BLOB (a migration's result) as the state. */
static int core_state_stage(lua_State *L)
{
    struct core_api *a = core_api_of(L);
    size_t len;
    const char *data = luaL_checklstring(L, 1, &len);
    lua_Number v = luaL_checknumber(L, 2);
    char err[512];
    if (v < 0 || v > UINT32_MAX || v != (lua_Number)(uint32_t)v)
        return luaL_argerror(L, 2, "a version is a whole number from 0 to 4294967295");
    if (handover_state_stage(a->handover, data, len, (uint32_t)v, err, sizeof err) < 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* apply_config(cfg[, check_only]) -> true | nil, err: CFG (a normalized
 * service file, from baton.config) is what the next generation starts
 * with; with CHECK_ONLY, only whether it could be (reload --dry-run). */
static int core_apply_config(lua_State *L)
{
    struct core_api *a = core_api_of(L);
    struct service_config next;
    char err[1024];
    luaL_checktype(L, 1, LUA_TTABLE);
    int check_only = lua_toboolean(L, 2);
    int r = config_from_lua(L, 1, &next, err, sizeof err);
    if (r == 0)
        r = check_only ? config_check(a->config, &next, err, sizeof err)
                       : config_apply(a->config, &next, err, sizeof err);
    config_free(&next);
    if (r < 0) {
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    if (check_only) {
        lua_pushboolean(L, 1);
        return 1;
    }
    handover_configure(a->handover, a->config->fdstore_max, a->config->state_max_size);
    lua_pushboolean(L, 1);
    return 1;
}

/* output(generation, n) -> its last N stderr lines, joined with " | ". */
static int core_output(lua_State *L)
{
    struct core_api *a = core_api_of(L);
    char buf[2048];
    lua_Integer n = luaL_optinteger(L, 2, 5);
    output_tail(a->output, (unsigned)luaL_checkinteger(L, 1),
                n < 1    ? 1
                : n > 20 ? 20
                         : (size_t)n,
                buf, sizeof buf);
    lua_pushstring(L, buf);
    return 1;
}

/* notify_manager(text) -> true (sent) | false (no service manager) | nil, err:
 * sd_notify to the manager above the supervisor (READY=1, RELOADING=1,
 * STOPPING=1, STATUS=...). */
static int core_notify_manager(lua_State *L)
{
    int r = manager_notify(core_api_of(L)->manager, luaL_checkstring(L, 1));
    if (r < 0) {
        lua_pushnil(L);
        lua_pushstring(L, strerror(-r));
        return 2;
    }
    lua_pushboolean(L, r > 0);
    return 1;
}

/* steer(gen[, weight]) -> weight, queued | nil, err: sets generation
 * GEN's share (0-100) of new connections on the steered listeners
 * (steer.h); returns its weight and the connections waiting in its
 * members' accept queues. */
static int core_steer(lua_State *L)
{
    struct core_api *a = core_api_of(L);
    lua_Integer gen = luaL_checkinteger(L, 1);
    if (lua_isnoneornil(L, 2)) {
        int w = gen >= 1 && gen <= UINT32_MAX ? steer_weight(a->steer, (unsigned)gen) : -1;
        if (w < 0) {
            lua_pushnil(L);
            lua_pushstring(L, "the generation holds no steered listener");
            return 2;
        }
        lua_pushinteger(L, w);
        lua_pushinteger(L, steer_queued(a->steer, (unsigned)gen));
        return 2;
    }
    lua_Number w = luaL_checknumber(L, 2);
    if (gen < 1 || gen > UINT32_MAX || !(w >= 0 && w <= 100)) {
        lua_pushnil(L);
        lua_pushstring(L, "a weight is a number from 0 to 100");
        return 2;
    }
    int r = steer_set_weight(a->steer, (unsigned)gen, (unsigned)(w + 0.5));
    if (r < 0) {
        lua_pushnil(L);
        lua_pushstring(L, r == -ENOENT ? "the generation holds no steered listener" : strerror(-r));
        return 2;
    }
    lua_pushinteger(L, steer_weight(a->steer, (unsigned)gen));
    lua_pushinteger(L, steer_queued(a->steer, (unsigned)gen));
    return 2;
}

static const luaL_Reg core_fns[] = {
    { "steer", core_steer },
    { "spawn", core_spawn },
    { "signal", core_signal },
    { "timer", core_timer },
    { "cancel", core_cancel },
    { "probe", core_probe },
    { "watch", core_watch },
    { "unwatch", core_unwatch },
    { "log", core_log },
    { "reply", core_reply },
    { "shutdown", core_shutdown },
    { "exec", core_exec },
    { "stat", core_stat },
    { "stat_add", core_stat_add },
    { "stat_observe", core_stat_observe },
    { "drain_window", core_drain_window },
    { "state_info", core_state_info },
    { "state_read", core_state_read },
    { "state_stage", core_state_stage },
    { "apply_config", core_apply_config },
    { "output", core_output },
    { "figures", core_figures },
    { "notify_manager", core_notify_manager },
    { NULL, NULL },
};

void lua_core_push(lua_State *L, struct core_api *api)
{
    lua_newtable(L);
    for (const luaL_Reg *f = core_fns; f->name; f++) {
        lua_pushlightuserdata(L, api);
        lua_pushcclosure(L, f->func, 1);
        lua_setfield(L, -2, f->name);
    }
}
