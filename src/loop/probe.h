#ifndef BATON_PROBE_H
#define BATON_PROBE_H

/* Readiness probes, for policies: does HOST:PORT accept a TCP connection;
 * does GET PATH there answer with a status. Each runs on the loop with its
 * own timeout and reports once through the callback: ok, and a short
 * detail ("connection refused", "status 503", "timed out after 1000 ms").
 *
 * Probe a generation's own address (a health port it binds itself), not a
 * shared listener: a shared socket may be answered by the old generation. */

#include <stdint.h>
#include <uv.h>

struct probe;
typedef void (*probe_cb)(uint64_t id, int ok, int status, const char *detail, void *data);

/* PATH NULL: a TCP probe. Returns 0 and the probe's id, or a negative errno. */
int probe_start(uv_loop_t *loop, const char *host, int port, const char *path, unsigned timeout_ms,
                probe_cb cb, void *data, uint64_t *id);

/* Ends every probe under way, unreported: the supervisor is shutting down,
 * and a probe must not keep the loop (and the listeners) alive. */
void probe_cancel_all(void);

#endif
