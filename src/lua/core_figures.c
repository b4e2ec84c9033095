/* core_figures.c: baton.core.figures, what the kernel says of the
 * listeners and the generations, and the quiet drain's cheap reads between
 * full ones (core_internal.h). Apart from core.c's other calls: it is the
 * one that reads the kernel. */
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
int core_figures(lua_State *L)
{
    struct core_api *a = core_api_of(L);
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
