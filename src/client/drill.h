#ifndef BATON_DRILL_H
#define BATON_DRILL_H

/* `baton drill`: rehearses restarts of a running service under load.
 *
 * It asks the supervisor for its listeners (status), runs a load
 * (loadclient.h: keep-alive and new-connection-per-request clients) on a
 * thread of its own against a TCP listener, asks for N restarts one after
 * the other over the control socket, waits for the drains to end, stops the
 * load, and reports each failed request by its cause with what to change.
 * Exit codes: 0 every restart took over and no request failed, 1 a request
 * failed or a restart did not take over, 2 usage, 3 not running. */

int drill_main(int argc, char **argv);

#endif
