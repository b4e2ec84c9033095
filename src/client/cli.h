#ifndef BATON_CLI_H
#define BATON_CLI_H

/* The client commands of `baton`: each sends one request to the control
 * socket and prints the answer. Exit codes: 0 success, 1 the supervisor
 * said no (a restart rolled back, a refused request), 2 usage and other
 * errors, 3 no supervisor is running (no socket, or nobody answers). */

#include <stddef.h>

int cli_main(const char *cmd, int argc, char **argv);

/* The control socket a client command talks to: SOCK (-s) if given; else
 * $BATON_CONTROL; else the `control` of the service file FILE (-f); else
 * the only supervisor's socket in the runtime folder. Returns 0 with
 * *RESULT (SOCK, the environment's, or PATH, PATHLEN bytes), or the exit
 * code to end with (2 usage, 3 not running) and the reason in ERR. */
int cli_control_socket(const char *sock, const char *file, char *path, size_t pathlen,
                       const char **result, char *err, size_t errlen);

#endif
