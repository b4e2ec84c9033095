#include "loop/config.h"

#include <errno.h>
#include <grp.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h> /* getgrouplist: FreeBSD declares it here, glibc in grp.h */

static char *field_string(lua_State *L, int idx, const char *key)
{
    lua_getfield(L, idx, key);
    char *s = lua_isstring(L, -1) ? strdup(lua_tostring(L, -1)) : NULL;
    lua_pop(L, 1);
    return s;
}

/* An array of strings at IDX[KEY] into a NULL-terminated vector. */
static char **field_strings(lua_State *L, int idx, const char *key)
{
    lua_getfield(L, idx, key);
    size_t n = lua_istable(L, -1) ? lua_objlen(L, -1) : 0;
    char **v = calloc(n + 1, sizeof *v);
    for (size_t i = 0; v && i < n; i++) {
        lua_rawgeti(L, -1, (int)i + 1);
        v[i] = strdup(lua_tostring(L, -1) ? lua_tostring(L, -1) : "");
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return v;
}

static int read_listeners(lua_State *L, int idx, struct service_config *cfg, char *err,
                          size_t errlen)
{
    lua_getfield(L, idx, "listen");
    size_t n = lua_objlen(L, -1);
    cfg->listeners = calloc(n ? n : 1, sizeof *cfg->listeners);
    if (!cfg->listeners) {
        lua_pop(L, 1);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        struct listener *l = &cfg->listeners[i];
        l->fd = -1;
        cfg->nlisteners++;
        lua_rawgeti(L, -1, (int)i + 1);
        int t = lua_gettop(L);
        l->name = field_string(L, t, "name");
        l->address = field_string(L, t, "address");
        lua_getfield(L, t, "backlog");
        l->backlog = (int)lua_tointeger(L, -1);
        lua_getfield(L, t, "per_generation");
        l->per_generation = lua_toboolean(L, -1);
        lua_getfield(L, t, "steer");
        l->steer = lua_toboolean(L, -1);
        l->steer_fd = -1;
        lua_pop(L, 4);
        if (!l->name || !l->address)
            return -ENOMEM;
        char why[256];
        if (listener_parse(l, l->address, why, sizeof why) < 0) {
            snprintf(err, errlen, "%s: listener '%s': %s", cfg->file, l->name, why);
            lua_pop(L, 1);
            return -EINVAL;
        }
    }
    lua_pop(L, 1);
    return 0;
}

/* The rlimit resource of a `limits` key (config.lua's LIMITS), or -1. */
static int limit_resource(const char *name)
{
    static const struct {
        const char *name;
        int resource;
    } names[] = {
        { "nofile", RLIMIT_NOFILE },     { "core", RLIMIT_CORE },   { "nproc", RLIMIT_NPROC },
        { "memlock", RLIMIT_MEMLOCK },   { "stack", RLIMIT_STACK }, { "as", RLIMIT_AS },
        { "fsize", RLIMIT_FSIZE },       { "cpu", RLIMIT_CPU },     { "data", RLIMIT_DATA },
        { "rss", RLIMIT_RSS },
    /* Linux's own: elsewhere the key is refused as unknown to this host. */
#ifdef RLIMIT_MSGQUEUE
        { "msgqueue", RLIMIT_MSGQUEUE },
#endif
#ifdef RLIMIT_NICE
        { "nice", RLIMIT_NICE },
#endif
#ifdef RLIMIT_RTPRIO
        { "rtprio", RLIMIT_RTPRIO },
#endif
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i].name) == 0)
            return names[i].resource;
    return -1;
}

static rlim_t limit_value(lua_Number v)
{
    return v < 0 ? RLIM_INFINITY : (rlim_t)v;
}

/* `limits` = { NAME = { soft, hard } } (normalized, -1: unlimited). */
static int read_limits(lua_State *L, int idx, struct service_config *cfg, char *err, size_t errlen)
{
    lua_getfield(L, idx, "limits");
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        return 0;
    }
    size_t n = 0;
    for (lua_pushnil(L); lua_next(L, -2); lua_pop(L, 1))
        n++;
    cfg->limits = calloc(n ? n : 1, sizeof *cfg->limits);
    if (!cfg->limits) {
        lua_pop(L, 1);
        return -ENOMEM;
    }
    for (lua_pushnil(L); lua_next(L, -2); lua_pop(L, 1)) {
        const char *name = lua_tostring(L, -2);
        int res = name ? limit_resource(name) : -1;
        if (res < 0 || !lua_istable(L, -1)) {
            snprintf(err, errlen, "%s: key 'limits': unknown limit '%s'", cfg->file,
                     name ? name : "?");
            lua_pop(L, 3);
            return -EINVAL;
        }
        struct config_limit *l = &cfg->limits[cfg->nlimits++];
        l->resource = res;
        lua_rawgeti(L, -1, 1);
        lua_rawgeti(L, -2, 2);
        l->soft = limit_value(lua_tonumber(L, -2));
        l->hard = limit_value(lua_tonumber(L, -1));
        lua_pop(L, 2);
    }
    lua_pop(L, 1);
    return 0;
}

/* `uid`, `gid` and `user` as config.lua resolved them; the supplementary
 * groups of USER, read from the group database now. */
static int read_identity(lua_State *L, int idx, struct service_config *cfg, char *err,
                         size_t errlen)
{
    lua_getfield(L, idx, "uid");
    lua_getfield(L, idx, "gid");
    cfg->set_uid = lua_isnumber(L, -2);
    cfg->set_gid = lua_isnumber(L, -1);
    cfg->uid = (uid_t)lua_tonumber(L, -2);
    cfg->gid = (gid_t)lua_tonumber(L, -1);
    lua_pop(L, 2);
    if (!cfg->set_uid)
        return 0;
    char *user = field_string(L, idx, "user");
    if (!user)
        return -ENOMEM;
    int n = 64;
    for (int tries = 0; tries < 8; tries++) {
        gid_t *g = realloc(cfg->groups, (size_t)n * sizeof *g);
        if (!g) {
            free(user);
            return -ENOMEM;
        }
        cfg->groups = g;
        int got = n;
        if (getgrouplist(user, cfg->gid, cfg->groups, &got) >= 0) {
            cfg->ngroups = (size_t)got;
            free(user);
            return 0;
        }
        n = got > n ? got : n * 2;
    }
    snprintf(err, errlen, "%s: key 'user': %s belongs to too many groups", cfg->file, user);
    free(user);
    return -EINVAL;
}

int config_from_lua(lua_State *L, int idx, struct service_config *cfg, char *err, size_t errlen)
{
    idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
    memset(cfg, 0, sizeof *cfg);
    cfg->file = field_string(L, idx, "file");
    cfg->name = field_string(L, idx, "name");
    cfg->control = field_string(L, idx, "control");
    cfg->cwd = field_string(L, idx, "cwd");
    cfg->metrics = field_string(L, idx, "metrics");
    lua_getfield(L, idx, "stats_capacity");
    cfg->stats_capacity = (unsigned)lua_tointeger(L, -1);
    lua_getfield(L, idx, "fdstore_max");
    cfg->fdstore_max = (unsigned)lua_tointeger(L, -1);
    lua_pop(L, 2);
    lua_getfield(L, idx, "state");
    if (lua_istable(L, -1)) {
        cfg->state_name = field_string(L, lua_gettop(L), "name");
        lua_getfield(L, -1, "max_size");
        cfg->state_max_size = (uint64_t)lua_tonumber(L, -1);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    cfg->argv = field_strings(L, idx, "command");
    cfg->env = field_strings(L, idx, "env");
    if (!cfg->file || !cfg->name || !cfg->control || !cfg->argv || !cfg->env || !cfg->argv[0] ||
        !cfg->state_name) {
        snprintf(err, errlen, "config: incomplete normalized table (out of memory?)");
        return -ENOMEM;
    }
    int r = read_listeners(L, idx, cfg, err, errlen);
    if (r == 0)
        r = read_limits(L, idx, cfg, err, errlen);
    if (r == 0)
        r = read_identity(L, idx, cfg, err, errlen);
    if (r == -ENOMEM)
        snprintf(err, errlen, "config: out of memory");
    return r;
}

static void free_strings(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

void config_free(struct service_config *cfg)
{
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        listener_close(&cfg->listeners[i]);
        free(cfg->listeners[i].name);
        free(cfg->listeners[i].address);
    }
    free(cfg->listeners);
    free_strings(cfg->argv);
    free_strings(cfg->env);
    free(cfg->file);
    free(cfg->name);
    free(cfg->control);
    free(cfg->cwd);
    free(cfg->metrics);
    free(cfg->state_name);
    free(cfg->groups);
    free(cfg->limits);
    memset(cfg, 0, sizeof *cfg);
}

static int str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* What cannot change while the service runs: its sockets and its region. */
static const char *fixed_key_changed(const struct service_config *a, const struct service_config *b)
{
    if (!str_eq(a->name, b->name))
        return "name";
    if (!str_eq(a->control, b->control))
        return "control";
    if (!str_eq(a->metrics, b->metrics))
        return "metrics";
    if (a->stats_capacity != b->stats_capacity)
        return "stats_capacity";
    if (!str_eq(a->state_name, b->state_name))
        return "state.name";
    if (a->set_uid != b->set_uid || (a->set_uid && a->uid != b->uid))
        return "user";
    if (a->set_gid != b->set_gid || (a->set_gid && a->gid != b->gid))
        return "group";
    if (a->nlisteners != b->nlisteners)
        return "listen";
    for (size_t i = 0; i < a->nlisteners; i++)
        if (!str_eq(a->listeners[i].name, b->listeners[i].name) ||
            !str_eq(a->listeners[i].address, b->listeners[i].address) ||
            a->listeners[i].backlog != b->listeners[i].backlog ||
            a->listeners[i].per_generation != b->listeners[i].per_generation ||
            a->listeners[i].steer != b->listeners[i].steer)
            return "listen";
    return NULL;
}

#define SWAP(a, b)              \
    do {                        \
        __typeof__(a) t_ = (a); \
        (a) = (b);              \
        (b) = t_;               \
    } while (0)

int config_check(const struct service_config *running, const struct service_config *next, char *err,
                 size_t errlen)
{
    const char *key = fixed_key_changed(running, next);
    if (key) {
        snprintf(err, errlen,
                 "%s: key '%s' changed: it cannot change while the service runs "
                 "(stop and run it again)",
                 running->file, key);
        return -EINVAL;
    }
    return 0;
}

int config_apply(struct service_config *running, struct service_config *next, char *err,
                 size_t errlen)
{
    int r = config_check(running, next, err, errlen);
    if (r < 0)
        return r;
    SWAP(running->argv, next->argv);
    SWAP(running->env, next->env);
    SWAP(running->cwd, next->cwd);
    SWAP(running->limits, next->limits);
    SWAP(running->nlimits, next->nlimits);
    SWAP(running->groups, next->groups);
    SWAP(running->ngroups, next->ngroups);
    running->state_max_size = next->state_max_size;
    running->fdstore_max = next->fdstore_max;
    return 0;
}
