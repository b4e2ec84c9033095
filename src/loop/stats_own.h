#ifndef BATON_STATS_OWN_H
#define BATON_STATS_OWN_H

/* The supervisor's own metrics (baton.restarts, baton.drain_seconds, ...):
 * lane 0 of the service's stats region, which only the supervisor writes.
 * Each is registered on first use; a name the region cannot take is
 * logged once per call and skipped. */

#include "libbaton/stats_shm.h"

void stats_own_add(struct stats_region *r, const char *name, double n);
void stats_own_set(struct stats_region *r, const char *name, double v);
/* A counter whose value the supervisor keeps elsewhere (it only grows),
 * copied in before a reading. */
void stats_own_count(struct stats_region *r, const char *name, double total);
/* A histogram of seconds (0.01 .. 300). */
void stats_own_observe(struct stats_region *r, const char *name, double seconds);

#endif
