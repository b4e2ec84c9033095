#ifndef BATON_FIGURES_H
#define BATON_FIGURES_H

/* Live figures of the service, read from the kernel now (conns.h): for
 * each live generation its open connections on the service's listeners,
 * its processes, memory and CPU time; for each listener its accept queue;
 * the kernel's count of accept queue overflows. No app cooperation: any
 * app, libbaton or not. The one place that turns the process table and the
 * listeners into a conns_poll, for `baton status`, /metrics and the
 * runtime (baton.core.figures). */

#include "loop/config.h"
#include "os/conns.h"
#include "loop/procs.h"

#include <stdint.h>

struct figures {
    size_t ngens;
    unsigned *ids;             /* owned: generation ids, as procs has them */
    struct conns_gen *gens;    /* owned: their figures */
    size_t nls;                /* cfg->nlisteners */
    struct conns_listener *ls; /* owned: in the listeners' order */
    int64_t overflows;         /* -errno when unreadable */
    int err;                   /* conns_poll's result: 0, or -errno (figures partial) */
};

/* Reads the figures of generation ONLY (0: every live one) and of every
 * listener. Returns 0, or -ENOMEM (then F holds nothing to free). */
int figures_read(struct figures *f, const struct procs *p, const struct service_config *cfg,
                 unsigned only);
/* The same, with room for the inodes of generation ONLY's connections
 * (conns_gen.inos: MAX of them) at INOS. */
int figures_read_inos(struct figures *f, const struct procs *p, const struct service_config *cfg,
                      unsigned only, uint32_t *inos, size_t max);
/* Generation ID's figures in F, or NULL. */
const struct conns_gen *figures_gen(const struct figures *f, unsigned id);
void figures_free(struct figures *f);

#endif
