#ifndef BATON_LAUNCHER_H
#define BATON_LAUNCHER_H

/* Starting a generation: its launch plan (launch.h) from the running
 * config, the fd store and the stats region, handed to spawn_process, and
 * the new process entered in the process table. */

#include "loop/config.h"
#include "loop/handover.h"
#include "libbaton/stats_shm.h"
#include "loop/output.h"
#include "loop/procs.h"
#include "loop/steer.h"

struct launcher {
    const struct service_config *cfg;
    struct handover *handover;
    struct stats_region *stats;
    struct procs *procs;
    struct output *output; /* reads each generation's stdout and stderr */
    const char *notify_path;
    struct steer *steer; /* steered listeners' members */
};

/* Starts generation procs->last_id + 1 with the state blob MODE says.
 * A per_generation listener gets a socket bound for it alone: its port goes
 * to PORTS[i] (cfg->nlisteners entries; 0 for the shared ones), and the
 * supervisor's copy is closed once passed. A steered listener gets a
 * member of its group, which the supervisor keeps (steer.h). Returns 0 with *ID and *PID, or
 * a negative errno with a reason in ERR. */
int launcher_spawn(struct launcher *l, enum spawn_state mode, double now, unsigned *id, pid_t *pid,
                   unsigned short *ports, char *err, size_t errlen);

#endif
