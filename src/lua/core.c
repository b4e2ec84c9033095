/* lua_core.c: baton.core (see lua_core.h and core_api.h). */
#include "lua/core.h"

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

static struct core_api *api_of(lua_State *L)
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
    struct core_api *a = api_of(L);
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
    struct core_api *a = api_of(L);
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
    struct core_api *a = api_of(L);
    uint64_t id;
    int r = timers_start(a->timers, luaL_checknumber(L, 1), &id);
    if (r < 0)
        return luaL_error(L, "timer: %s", strerror(-r));
    lua_pushnumber(L, (lua_Number)id);
    return 1;
}

static int core_cancel(lua_State *L)
{
    timers_cancel(api_of(L)->timers, (uint64_t)luaL_checknumber(L, 1));
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
    struct core_api *a = api_of(L);
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
    struct core_api *a = api_of(L);
    uint64_t id = 0;
    int r = watches_add(a->watches, luaL_checkstring(L, 1), &id);
    return push_id_or_error(L, r, id);
}

static int core_unwatch(lua_State *L)
{
    watches_remove(api_of(L)->watches, (uint64_t)luaL_checknumber(L, 1));
    return 0;
}

static int core_log(lua_State *L)
{
    api_of(L);
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
    struct core_api *a = api_of(L);
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
    struct core_api *a = api_of(L);
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
    struct core_api *a = api_of(L);
    a->shutdown(a->owner, (int)luaL_optinteger(L, 1, 0));
    return 0;
}

/* stat(name [, generation]) -> the service total (or that generation's
 * figure, nil if its lane has moved on); a histogram as {count=, sum=}. */
static int core_stat(lua_State *L)
{
    struct stats_region *r = api_of(L)->stats;
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
    stats_own_add(api_of(L)->stats, luaL_checkstring(L, 1), luaL_optnumber(L, 2, 1));
    return 0;
}

static int core_stat_observe(lua_State *L)
{
    stats_own_observe(api_of(L)->stats, luaL_checkstring(L, 1), luaL_checknumber(L, 2));
    return 0;
}

/* drain_window(generation, seconds): a gradual drain starts now. */
static int core_drain_window(lua_State *L)
{
    struct core_api *a = api_of(L);
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
    int r = handover_state_info(api_of(L)->handover, &info, err, sizeof err);
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
    if (handover_state_map(api_of(L)->handover, &b, err, sizeof err) < 0) {
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
    struct core_api *a = api_of(L);
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
    struct core_api *a = api_of(L);
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
/* Sets a generation's figures in the table on top of the stack. */
/* Sets a generation's figures (read number READ) in the table on top of
 * the stack. Without CONNS (the kernel's dump failed) its connections are
 * unknown: left nil, never 0, so no drain ends on them. */
static void set_gen_figures(lua_State *L, const struct conns_gen *g, int conns, unsigned long read)
{
    if (conns) {
        lua_pushnumber(L, g->established + g->closing);
        lua_setfield(L, -2, "connections");
        lua_pushnumber(L, g->closing);
        lua_setfield(L, -2, "closing");
    }
    lua_pushnumber(L, (lua_Number)read);
    lua_setfield(L, -2, "read");
    lua_pushnumber(L, g->nprocs);
    lua_setfield(L, -2, "processes");
    lua_pushnumber(L, g->listening);
    lua_setfield(L, -2, "listening");
    /* Read after the connections: stopped now (SIGSTOP), it was stopped
     * through no read before this one (steps.no_connections). */
    struct os_proc_stat st;
    lua_pushboolean(L, g->pid > 0 && os_proc_stat(g->pid, &st) == 0 && st.state == 'T');
    lua_setfield(L, -2, "stopped");
    lua_pushnumber(L, (double)g->rss_bytes);
    lua_setfield(L, -2, "rss");
    lua_pushnumber(L, g->cpu_seconds);
    lua_setfield(L, -2, "cpu");
}

static void push_gen_figures(lua_State *L, const struct conns_gen *g, unsigned long read)
{
    lua_createtable(L, 0, 8);
    set_gen_figures(L, g, 1, read);
}

/* Seconds a quiet drain's polls may go on counting fds alone (1,000 times
 * what a full read cost, within these), and the processes of a generation
 * they count (more: every poll reads it all). */
#define QUIET_MIN 2.0
#define QUIET_MAX 10.0

static double quiet_for(double cost)
{
    return 1000 * cost < QUIET_MIN ? QUIET_MIN : 1000 * cost > QUIET_MAX ? QUIET_MAX : 1000 * cost;
}
#define QUIET_PIDS 64
#define QUIET_INOS 4096

static int by_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* figures([id]) -> { connections, closing, processes, rss, cpu (of
 * generation ID, when given and live), listeners = { NAME = { queue,
 * max_queue } }, overflows } | nil, err. Read from the kernel now. */
static int core_figures(lua_State *L)
{
    struct core_api *a = api_of(L);
    unsigned id = lua_isnumber(L, 1) ? (unsigned)lua_tonumber(L, 1) : 0;
    struct figures f;
    if (id == 0 && !lua_isnoneornil(L, 1))
        return luaL_error(L, "figures: a generation id or nothing");
    /* A generation's figures cost a walk of its processes' fds (about 3 us
     * per connection): a policy polling every 10 ms during a drain of
     * thousands of connections would spend a core on it. So once a read
     * takes over a millisecond, one generation's figures are read again
     * only after five times what the last read took (at most a fifth of
     * the supervisor's time), and the last read serves meanwhile; unless
     * its processes' fds say that every connection may have closed. */
    static struct {
        unsigned id;
        double at, cost;
        struct conns_gen g;
        unsigned long read;
        pid_t pids[QUIET_PIDS]; /* its processes at that read, and their fds */
        size_t npids;
        uint64_t fds;
        uint32_t inos[QUIET_INOS]; /* its connections at that read, sorted */
        size_t ninos;
        int settled; /* the read before it found no listener either */
    } last;
    static unsigned long reads; /* fresh reads so far: each result says which */
    double now = clock_mono();
    /* A drain waiting for idleness polls every 10 ms, mostly while nothing
     * changes, and a full read dumps the kernel's TCP table (the whole
     * hash, TIME_WAIT included: milliseconds on a busy host). So once the
     * last read found the generation holding something to wait for (a
     * connection, or a listener it may accept on), a poll first counts
     * its processes' open fds, one stat each (conns_fds): while that count
     * is what it was, no connection was accepted or closed, and the last
     * read serves; while it only went down, by fewer than the connections
     * it held, it serves counted down. A full read comes once it went up
     * (an accept), or down by as many as it held connections (the last
     * one may have closed), or a process went; and at least every
     * QUIET_MIN to QUIET_MAX seconds: what the count cannot see (a
     * connection closed as another file was opened) ends a drain that
     * late at worst. */
    int all_closed = 0;
    if (id && last.id == id && last.npids > 0 && now - last.at < quiet_for(last.cost)) {
        uint64_t fds, t0 = uv_hrtime();
        int r = conns_fds(last.pids, last.npids, &fds);
        budget_credit(L, uv_hrtime() - t0);
        uint64_t held = last.g.established + last.g.closing;
        if (r == 0 && fds <= last.fds && fds + held > last.fds) {
            /* Nothing, or fewer fds than it held connections, gone: the
             * last read serves, its connections counted down by the fds
             * gone (its read number stays: no drain ends on it). */
            struct conns_gen g = last.g;
            uint64_t gone = last.fds - fds;
            unsigned from_est = gone < g.established ? (unsigned)gone : g.established;
            g.established -= from_est;
            g.closing -= (unsigned)(gone - from_est);
            push_gen_figures(L, &g, last.read);
            return 1;
        }
        /* As many fds gone as it held connections: maybe the last one
         * closed, which a drain wants to know at once. */
        all_closed = r < 0 || fds + held <= last.fds;
        /* Its fds against the connections it held (conns_held: a readlink
         * an fd) say whether it holds any, without the kernel's table:
         * none can have joined, as it held no listener at two reads in a
         * row (the first may have missed one accepted as its listener
         * closed; the second, dumped after, did not). None left: a fresh
         * read of that, which may end a drain. */
        unsigned still = 0;
        if (r == 0 && all_closed && last.settled && last.ninos <= QUIET_INOS &&
            conns_held(last.pids, last.npids, last.inos, last.ninos, &still) == 0 && still == 0) {
            last.g.established = last.g.closing = 0;
            last.read = ++reads;
            last.npids = 0; /* nothing left to wait for: full reads from now */
            push_gen_figures(L, &last.g, last.read);
            return 1;
        }
    }
    /* Fewer gone: the throttle holds (above). */
    if (id && last.id == id && !all_closed && last.cost > 0.001 && now - last.at < 5 * last.cost) {
        push_gen_figures(L, &last.g, last.read); /* the last read serves; no listeners */
        return 1;
    }
    /* Without an id, only the listeners: a generation that is not in the
     * process table (-1: none matches) is not polled. Reading the kernel is
     * the supervisor's time, not the policy's: its budget is credited. */
    uint64_t t0 = uv_hrtime(), fds = 0;
    pid_t pids[QUIET_PIDS];
    size_t npids = 0;
    const struct proc *p = id ? procs_by_id(a->procs, id) : NULL;
    if (p &&
        (conns_members(p->pid, pids, QUIET_PIDS, &npids) < 0 || conns_fds(pids, npids, &fds) < 0))
        npids = 0;
    int settled = id && last.id == id && last.g.listening == 0;
    int r = figures_read_inos(&f, a->procs, a->config, id ? id : (unsigned)-1, last.inos,
                              QUIET_INOS);
    budget_credit(L, uv_hrtime() - t0);
    if (r < 0) {
        lua_pushnil(L);
        lua_pushstring(L, "out of memory");
        return 2;
    }
    lua_createtable(L, 0, 8);
    const struct conns_gen *g = id ? figures_gen(&f, id) : NULL;
    reads++;
    if (id) {
        /* A read whose connections are unknown is not kept for later. */
        last.id = g && f.err == 0 ? id : 0;
        last.at = now;
        last.cost = clock_mono() - now;
        last.read = reads;
        if (g)
            last.g = *g;
        /* What a quiet poll compares with (above), counted before the
         * figures were read: a close between the two shows as a change
         * (another full read), never as none. */
        last.npids = g && (g->listening > 0 || g->established + g->closing > 0) ? npids : 0;
        last.fds = fds;
        memcpy(last.pids, pids, npids * sizeof *pids);
        last.ninos = g ? g->ninos : 0;
        last.settled = settled && g && g->listening == 0;
        if (g && g->listening == 0 && !last.settled)
            last.npids = 0; /* one more full read first: the one that settles it */
        if (last.ninos <= QUIET_INOS)
            qsort(last.inos, last.ninos, sizeof *last.inos, by_u32);
    }
    if (g)
        set_gen_figures(L, g, f.err == 0, reads);
    lua_createtable(L, 0, (int)f.nls);
    for (size_t i = 0; i < f.nls; i++) {
        lua_createtable(L, 0, 2);
        lua_pushnumber(L, f.ls[i].queue);
        lua_setfield(L, -2, "queue");
        lua_pushnumber(L, f.ls[i].max_queue);
        lua_setfield(L, -2, "max_queue");
        lua_setfield(L, -2, a->config->listeners[i].name);
    }
    lua_setfield(L, -2, "listeners");
    if (f.overflows >= 0) {
        lua_pushnumber(L, (double)f.overflows);
        lua_setfield(L, -2, "overflows");
    }
    if (f.err < 0) {
        lua_pushstring(L, strerror(-f.err));
        lua_setfield(L, -2, "error");
    }
    figures_free(&f);
    return 1;
}

static int core_output(lua_State *L)
{
    struct core_api *a = api_of(L);
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
    int r = manager_notify(api_of(L)->manager, luaL_checkstring(L, 1));
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
    struct core_api *a = api_of(L);
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
