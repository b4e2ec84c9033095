#include "loop/figures.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

int figures_read(struct figures *f, const struct procs *p, const struct service_config *cfg,
                 unsigned only)
{
    return figures_read_inos(f, p, cfg, only, NULL, 0);
}

int figures_read_inos(struct figures *f, const struct procs *p, const struct service_config *cfg,
                      unsigned only, uint32_t *inos, size_t max)
{
    memset(f, 0, sizeof *f);
    size_t n = 0;
    for (size_t i = 0; i < p->len; i++)
        if (!only || p->v[i].id == only)
            n++;
    f->ids = calloc(n ? n : 1, sizeof *f->ids);
    f->gens = calloc(n ? n : 1, sizeof *f->gens);
    f->ls = calloc(cfg->nlisteners ? cfg->nlisteners : 1, sizeof *f->ls);
    if (!f->ids || !f->gens || !f->ls) {
        figures_free(f);
        return -ENOMEM;
    }
    for (size_t i = 0; i < p->len; i++) {
        if (only && p->v[i].id != only)
            continue;
        f->ids[f->ngens] = p->v[i].id;
        f->gens[f->ngens].pid = p->v[i].pid;
        f->gens[f->ngens].inos = only ? inos : NULL;
        f->gens[f->ngens].max_inos = only ? max : 0;
        f->ngens++;
    }
    for (size_t i = 0; i < cfg->nlisteners; i++)
        f->ls[i].fd = cfg->listeners[i].steer ? cfg->listeners[i].steer_fd : cfg->listeners[i].fd;
    f->nls = cfg->nlisteners;
    f->err = conns_poll(f->ls, f->nls, f->gens, f->ngens);
    /* The overflow count is the namespace's, for status and /metrics; a
     * policy polling one generation does not read it (-EAGAIN: not read
     * this time; ENODATA would say it, but FreeBSD has no ENODATA). */
    f->overflows = only && only != UINT_MAX ? -EAGAIN : conns_listen_overflows();
    return 0;
}

const struct conns_gen *figures_gen(const struct figures *f, unsigned id)
{
    for (size_t i = 0; i < f->ngens; i++)
        if (f->ids[i] == id)
            return &f->gens[i];
    return NULL;
}

void figures_free(struct figures *f)
{
    free(f->ids);
    free(f->gens);
    free(f->ls);
    memset(f, 0, sizeof *f);
}
