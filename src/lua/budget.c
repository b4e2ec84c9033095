/* lua_budget.c: the policy budget (see lua_budget.h). */
#include "lua/budget.h"

#include <errno.h>
#include <lauxlib.h>
#include <luajit.h>
#include <lualib.h>
#include <stdlib.h>
#include <time.h>
#include <uv.h>

/* The budget of one resume. The runtime never resumes a hook from inside
 * another (a migration runs in the caller's budget); a stack keeps nesting
 * harmless all the same, and budget.resume refuses it past MAX_DEPTH. */
struct budget {
    lua_State *co;
    long left;            /* instructions */
    uint64_t deadline_ns; /* wall clock (uv_hrtime); 0: none */
    uint64_t slice_ns;    /* the slice, in the thread's CPU time */
    uint64_t cpu_start;   /* the thread's CPU time at the resume */
    uint64_t credited;    /* time given back (budget_credit) */
    size_t cap;           /* bytes the VM may hold while it runs; 0: none */
    const char *stopped;  /* why it was stopped, or NULL */
    int critical;         /* inside budget.critical: the runtime's own steps */
};

#define MAX_DEPTH 8
static struct budget *stack[MAX_DEPTH];
static int depth;
static size_t vm_bytes;
static unsigned long resumes;

unsigned long budget_resumes(void)
{
    return resumes;
}

static struct budget *current(void)
{
    return depth > 0 ? stack[depth - 1] : NULL;
}

/* Every allocation of the VM passes here: while a budgeted coroutine runs,
 * growth past its cap is refused (the VM raises "not enough memory" in the
 * policy's code) and the coroutine is marked stopped. */
static void *vm_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud;
    if (nsize == 0) {
        free(ptr);
        vm_bytes -= osize;
        return NULL;
    }
    struct budget *b = current();
    if (b && b->cap && !b->critical && nsize > osize && vm_bytes + (nsize - osize) > b->cap) {
        if (!b->stopped)
            b->stopped = "memory cap";
        return NULL;
    }
    void *p = realloc(ptr, nsize);
    if (p)
        vm_bytes += nsize - osize;
    return p;
}

/* The supervisor thread's CPU time, in nanoseconds. */
static uint64_t cpu_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) < 0)
        return uv_hrtime();
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Whether B's slice is spent. The wall clock is the cheap first look (the
 * hook runs every BUDGET_HOOK_STEP instructions); past the deadline, the
 * thread's CPU time decides: a busy machine may hold the supervisor off
 * the CPU for longer than a slice (seen: 20 ms slices stopped under load
 * while the policy ran microseconds), and that is not the policy's doing.
 * When it is not spent, the deadline moves by what is left of it. */
static int slice_spent(struct budget *b)
{
    uint64_t now = uv_hrtime();
    if (!b->deadline_ns || now <= b->deadline_ns)
        return 0;
    uint64_t used = cpu_ns() - b->cpu_start;
    used = used > b->credited ? used - b->credited : 0;
    if (used >= b->slice_ns)
        return 1;
    b->deadline_ns = now + (b->slice_ns - used);
    return 0;
}

static void hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    struct budget *b = current();
    if (!b || b->co != L || b->critical)
        return;
    if (!b->stopped) {
        b->left -= BUDGET_HOOK_STEP;
        if (b->left <= 0)
            b->stopped = "instruction budget";
        else if (slice_spent(b))
            /* Instructions that allocate or call C cost far more than
             * others: time is what the event loop cares about. */
            b->stopped = "time budget";
        else
            return;
    }
    /* Where a yield is not possible (inside a C function that called back
     * into Lua: table.sort, gsub, tostring), this raises "attempt to yield
     * across C-call boundary" instead; the policy's own pcall re-raises
     * it (budget.stopped), so it reaches the top of the hook either way. */
    lua_yield(L, 0);
}

void budget_credit(lua_State *L, uint64_t ns)
{
    struct budget *b = current();
    if (b && b->co == L && b->deadline_ns) {
        b->deadline_ns += ns;
        b->credited += ns;
    }
}

static double limit(lua_State *L, int idx, const char *key)
{
    lua_getfield(L, idx, key);
    double v = lua_isnumber(L, -1) ? lua_tonumber(L, -1) : 0;
    lua_pop(L, 1);
    return v;
}

/* budget.resume(co, limits, ...) -> stopped | false, then what
 * coroutine.resume returns. LIMITS: { instructions, slice_ms, memory_mb }. */
static int budget_resume(lua_State *L)
{
    lua_State *co = lua_tothread(L, 1);
    luaL_argcheck(L, co != NULL, 1, "coroutine expected");
    luaL_checktype(L, 2, LUA_TTABLE);
    resumes++;
    int status = lua_status(co);
    if (!(status == LUA_YIELD || (status == 0 && lua_gettop(co) > 0)))
        return luaL_error(L, "cannot resume a coroutine that is not suspended");
    if (depth == MAX_DEPTH)
        return luaL_error(L, "budgeted resumes nested too deep");
    double ms = limit(L, 2, "slice_ms");
    struct budget b = {
        .co = co,
        .left = (long)limit(L, 2, "instructions"),
        .deadline_ns = ms > 0 ? uv_hrtime() + (uint64_t)(ms * 1e6) : 0,
        .slice_ns = (uint64_t)(ms * 1e6),
        .cpu_start = ms > 0 ? cpu_ns() : 0,
        .cap = (size_t)(limit(L, 2, "memory_mb") * 1024 * 1024),
    };
    if (b.left <= 0)
        b.left = 1;
    int nargs = lua_gettop(L) - 2;
    lua_xmove(L, co, nargs);
    stack[depth++] = &b;
    int r = lua_resume(co, nargs);
    depth--;
    if (b.stopped) { /* CO stays suspended where it stood: the runtime abandons it */
        lua_pushstring(L, b.stopped);
        return 1;
    }
    lua_pushboolean(L, 0);
    if (r == 0 || r == LUA_YIELD) {
        int n = lua_gettop(co);
        luaL_checkstack(L, n + 1, "too many results");
        lua_pushboolean(L, 1);
        lua_xmove(co, L, n);
        return 2 + n;
    }
    lua_pushboolean(L, 0);
    lua_xmove(co, L, 1);
    return 3;
}

/* budget.stopped() -> true once the running budget is spent: what the
 * policy's own pcall and xpcall ask before they swallow an error. */
static int budget_stopped(lua_State *L)
{
    struct budget *b = current();
    lua_pushboolean(L, b && b->co == L && b->stopped != NULL);
    return 1;
}

/* budget.active() -> true while budgeted code (a policy's) runs on L. */
static int budget_active(lua_State *L)
{
    struct budget *b = current();
    lua_pushboolean(L, b && b->co == L && !b->critical);
    return 1;
}

/* budget.critical(fn, ...) -> what fn returns: FN runs with the budget
 * held (no stop, no memory cap) until it returns. For the runtime's own
 * few steps that must happen together when a policy calls it (a spawned
 * process entered in the table, a drain started): a stop between two of
 * them would leave its state half-made. FN must not wait. */
static int budget_critical(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    struct budget *b = current();
    int held = b && b->co == L;
    int base = lua_gettop(L) - 1;
    if (held)
        b->critical++;
    int r = lua_pcall(L, base, LUA_MULTRET, 0);
    if (held)
        b->critical--;
    if (r != 0)
        return lua_error(L);
    return lua_gettop(L);
}

lua_State *budget_new_state(void)
{
    lua_State *L = lua_newstate(vm_alloc, NULL);
    if (!L)
        return NULL;
    luaL_openlibs(L);
    luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
    lua_sethook(L, hook, LUA_MASKCOUNT, BUDGET_HOOK_STEP);
    depth = 0;
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "loaded");
    lua_createtable(L, 0, 4);
    lua_pushcfunction(L, budget_active);
    lua_setfield(L, -2, "active");
    lua_pushcfunction(L, budget_resume);
    lua_setfield(L, -2, "resume");
    lua_pushcfunction(L, budget_stopped);
    lua_setfield(L, -2, "stopped");
    lua_pushcfunction(L, budget_critical);
    lua_setfield(L, -2, "critical");
    lua_setfield(L, -2, "baton.budget");
    lua_pop(L, 2);
    return L;
}
