#ifndef BATON_RUN_H
#define BATON_RUN_H

#include <stddef.h>

/* `baton run` and `baton check`: where the loop (supervisor.h) and the Lua
 * runtime (lua_bridge.h) are wired together, and the only file that knows
 * both. */

/* `baton run FILE`: returns the process exit code. */
int run_service(const char *file);
/* The control socket of the service FILE describes (its `control` key, or
 * the default for its name), read from that key alone so that a broken
 * policy or key elsewhere in the file does not lock the client commands
 * out: 0 with the path in OUT, or a negative errno with the reason in ERR. */
int run_control_path(const char *file, char *out, size_t len, char *err, size_t errlen);

/* `baton check FILE`: prints the fd layout; returns 0 when the file and its
 * policy are valid, 1 otherwise (the reason on stderr). */
int run_check(const char *file);

/* `baton upgrade-check FILE`: run by `baton upgrade` on the new binary,
 * with the carried state at BATON_CARRY_FD (upgrade.h). Prints
 * {"ok":true,"version"} or {"ok":false,"error"}; returns 0 or 1. */
int run_upgrade_check(const char *file);

#endif
