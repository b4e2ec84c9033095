#ifndef BATON_LUA_BUDGET_H
#define BATON_LUA_BUDGET_H

/* The policy budget, in the VM itself.
 *
 * Policy code runs only in coroutines that lua/baton/sandbox.lua resumes
 * through budget.resume(co, limits, ...). For the length of that resume
 * the coroutine has a budget: instructions (a count hook every
 * BUDGET_HOOK_STEP instructions), milliseconds, and the VM's memory, which
 * is refused at allocation: a policy that asks for a gigabyte string gets
 * a memory error before the gigabyte exists. When a limit is reached the
 * hook yields the coroutine from inside the hook; the policy's own pcall
 * cannot catch that, and the runtime abandons it. Code that is not resumed
 * this way (the runtime's own) has no budget and no memory cap.
 *
 * Where the coroutine cannot yield (inside a C function that called back
 * into Lua), the hook raises an error instead, and budget.stopped() tells
 * the policy's own pcall not to swallow it. budget.critical(fn) runs a few
 * steps of the runtime's own, called from policy code, without a stop or
 * the memory cap in between.
 *
 * LuaJIT's count hook is global to the VM, and compiled code does not call
 * it: budget_new_state turns the JIT off. */

#include <lua.h>
#include <stddef.h>
#include <stdint.h>

#define BUDGET_HOOK_STEP 20

/* A new VM with the budget's allocator and hook installed, the standard
 * libraries opened, the JIT off, and `baton.budget` = { resume, stopped,
 * critical } registered. NULL when out of memory. */
lua_State *budget_new_state(void);

/* Time spent in the supervisor's own calls (fork and exec of a spawn) is
 * not the policy's: gives it back to the budget running on L, if any. */
void budget_credit(lua_State *L, uint64_t ns);

/* Budgeted resumes so far (each a call from Lua into C). */
unsigned long budget_resumes(void);

#endif
