#ifndef BATON_RUN_H
#define BATON_RUN_H

/* `baton run` and `baton check`: where the loop (supervisor.h) and the Lua
 * runtime (lua_bridge.h) are wired together, and the only file that knows
 * both. */

/* `baton run FILE`: returns the process exit code. */
int run_service(const char *file);
/* `baton check FILE`: prints the fd layout; returns 0 when the file and its
 * policy are valid, 1 otherwise (the reason on stderr). */
int run_check(const char *file);

#endif
