#ifndef BATON_STATS_EXPORT_H
#define BATON_STATS_EXPORT_H

/* The stats region as people and machines read it: JSON for `baton stats`
 * and policies' tools, Prometheus text exposition format (0.0.4) for
 * scrapers.
 *
 * Prometheus names: '.' and '-' become '_'; a counter gets "_total" (unless
 * it has it). Each counter and gauge is one series with the service total
 * (it never resets across restarts) and a family NAME_by_generation with a
 * `generation` label for each live generation (no series per restart
 * forever). Histograms are exported as service totals. HELP says what
 * each of the supervisor's own metrics means; baton_build_info,
 * baton_active_generation and baton_last_restart_{timestamp_seconds,
 * success} come from prom_facts, and so do the kernel's figures: per live
 * generation baton_generation_{connections, processes, resident_bytes,
 * cpu_seconds_total}, per listener baton_listener_queue{,_max}, and
 * baton_listen_overflows_total. */

#include "loop/figures.h"
#include "libbaton/stats_shm.h"

#include <jansson.h>
#include <stddef.h>

/* [{"name","type","value","generations":{"3":v,...},...}], histograms with
 * "buckets":[{"le":b,"count":n},...] (cumulative), "sum", "count". */
json_t *stats_to_json(const struct stats_region *r);

/* What the page says beyond the region: who, which build, how the service
 * is. Every series gets a service="..." label; per-generation series are
 * written only for the live generations in LIVE. */
struct prom_facts {
    const char *service, *version;
    const unsigned *live; /* live generations */
    size_t nlive;
    unsigned active;     /* the serving generation; 0: none */
    double last_restart; /* unix seconds; 0: none yet */
    int last_restart_ok;
    /* What the kernel says (figures.h); NULL: not read. Its generations
     * are the live ones, its listeners named by LISTENER_NAMES (NULL: a
     * per_generation listener, which the supervisor does not hold). */
    const struct figures *figures;
    const char *const *listener_names;
};

/* A malloc'd, NUL-terminated Prometheus text page; *LEN its length. */
char *stats_to_prometheus(const struct stats_region *r, const struct prom_facts *f, size_t *len);

#endif
