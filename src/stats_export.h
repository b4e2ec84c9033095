#ifndef BATON_STATS_EXPORT_H
#define BATON_STATS_EXPORT_H

/* The stats region as people and machines read it: JSON for `baton stats`
 * and policies' tools, Prometheus text exposition format (0.0.4) for
 * scrapers.
 *
 * Prometheus names: '.' and '-' become '_'; a counter gets "_total" (unless
 * it has it). Each counter and gauge is one series with the service total
 * (it never resets across restarts) and a family NAME_by_generation with a
 * `generation` label for each generation that still has its lane. Histograms
 * are exported as service totals. */

#include "libbaton/stats_shm.h"

#include <jansson.h>
#include <stddef.h>

/* [{"name","type","value","generations":{"3":v,...},...}], histograms with
 * "buckets":[{"le":b,"count":n},...] (cumulative), "sum", "count". */
json_t *stats_to_json(const struct stats_region *r);

/* A malloc'd, NUL-terminated Prometheus text page; *LEN its length. */
char *stats_to_prometheus(const struct stats_region *r, size_t *len);

#endif
