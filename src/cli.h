#ifndef BATON_CLI_H
#define BATON_CLI_H

/* The client commands of `baton`: each sends one request to the control
 * socket and prints the answer. Exit codes: 0 success, 1 the supervisor
 * said no (a restart rolled back, a refused request), 2 usage and other
 * errors, 3 no supervisor is running (no socket, or nobody answers). */

int cli_main(const char *cmd, int argc, char **argv);

#endif
