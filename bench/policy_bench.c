/* policy_bench: what a policy decision costs when the supervisor asks Lua,
 * against the same decision made by a C function, in the same run.
 *
 * The decision: "is the new generation's error ratio over 1%?", given its
 * errors and requests. Measured three ways:
 *   C            a C function
 *   Lua pcall    lua_pcall of the Lua function, from C and back
 *   Lua hook     the path a policy hook takes in the supervisor: a fresh
 *                coroutine, xpcall with a traceback handler, the sandbox's
 *                count hook installed and the JIT off
 *
 *   policy_bench [CALLS]     (default 200,000) */
#include <lauxlib.h>
#include <lua.h>
#include <luajit.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

__attribute__((noinline)) static int decide(double errors, double requests)
{
    return requests >= 100 && errors / requests > 0.01;
}

static long hook_calls;
static void count_hook(lua_State *L, lua_Debug *ar)
{
    (void)L;
    (void)ar;
    hook_calls++;
}

static const char *lua_src =
    "local function decide(errors, requests)\n"
    "  return requests >= 100 and errors / requests > 0.01\n"
    "end\n"
    "local function hook(fn, ...)\n"
    "  local co = coroutine.create(function(...) return xpcall(fn, debug.traceback, ...) end)\n"
    "  local _, ok, verdict = coroutine.resume(co, ...)\n"
    "  return verdict\n"
    "end\n"
    "return decide, function(e, r) return hook(decide, e, r) end\n";

static double run_lua(lua_State *L, int ref, long n, long *yes)
{
    double t0 = now();
    for (long i = 0; i < n; i++) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
        lua_pushnumber(L, (double)(i % 50));
        lua_pushnumber(L, 1000);
        if (lua_pcall(L, 2, 1, 0) != 0) {
            fprintf(stderr, "%s\n", lua_tostring(L, -1));
            exit(1);
        }
        *yes += lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    return now() - t0;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 200000;
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF); /* as in the supervisor */
    lua_sethook(L, count_hook, LUA_MASKCOUNT, 20); /* as in the supervisor (HOOK_STEP) */
    if (luaL_dostring(L, lua_src) != 0) {
        fprintf(stderr, "%s\n", lua_tostring(L, -1));
        return 1;
    }
    int hook_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    int plain_ref = luaL_ref(L, LUA_REGISTRYINDEX);

    long yes_c = 0, yes_pcall = 0, yes_hook = 0;
    double best_c = 1e9, best_pcall = 1e9, best_hook = 1e9;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now();
        for (long i = 0; i < n; i++)
            yes_c += decide((double)(i % 50), 1000);
        double t = now() - t0;
        if (t < best_c)
            best_c = t;
        t = run_lua(L, plain_ref, n, &yes_pcall);
        if (t < best_pcall)
            best_pcall = t;
        t = run_lua(L, hook_ref, n, &yes_hook);
        if (t < best_hook)
            best_hook = t;
    }
    if (yes_c != yes_pcall || yes_c != yes_hook) {
        fprintf(stderr, "decisions differ: C %ld, pcall %ld, hook %ld\n", yes_c, yes_pcall,
                yes_hook);
        return 1;
    }
    double us_c = best_c / (double)n * 1e6, us_p = best_pcall / (double)n * 1e6,
           us_h = best_hook / (double)n * 1e6;
    printf("policy decision, %ld calls each (best of 3)\n", n);
    printf("  C function                          %8.4f us/decision   (baseline)\n", us_c);
    printf("  Lua, lua_pcall from C and back      %8.4f us/decision   ratio %.0f\n", us_p,
           us_p / us_c);
    printf("  Lua, the supervisor's hook path     %8.4f us/decision   ratio %.0f\n", us_h,
           us_h / us_c);
    printf("  (coroutine + xpcall + sandbox hook + JIT off; count hook fired %ld times)\n",
           hook_calls);
    lua_close(L);
    return 0;
}
