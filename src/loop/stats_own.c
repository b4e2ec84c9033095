/* stats_own.c: the supervisor's own metrics, lane 0 (see stats_own.h). */
#include "loop/stats_own.h"

#include "base/log.h"

#include <errno.h>
#include <string.h>

static uint64_t *own_slot(struct stats_region *r, const char *name, enum stats_type type,
                          const struct stats_entry **out)
{
    static const double seconds[] = { 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300 };
    int i = stats_register(r, name, type, seconds, sizeof seconds / sizeof seconds[0]);
    const struct stats_entry *e = i < 0 ? NULL : stats_entry_at(r, (uint32_t)i);
    if (!e) {
        log_warn("stats: cannot register %s: %s", name, strerror(i < 0 ? -i : EINVAL));
        return NULL;
    }
    *out = e;
    return stats_lane(r, e, 0);
}

void stats_own_add(struct stats_region *r, const char *name, double n)
{
    const struct stats_entry *e;
    uint64_t *v = own_slot(r, name, STATS_COUNTER, &e);
    if (v && n > 0)
        __atomic_fetch_add(v, (uint64_t)n, __ATOMIC_RELAXED);
}

void stats_own_set(struct stats_region *r, const char *name, double value)
{
    const struct stats_entry *e;
    uint64_t *v = own_slot(r, name, STATS_GAUGE, &e);
    if (v)
        __atomic_store_n(v, (uint64_t)(int64_t)value, __ATOMIC_RELAXED);
}

void stats_own_count(struct stats_region *r, const char *name, double total)
{
    const struct stats_entry *e;
    uint64_t *v = own_slot(r, name, STATS_COUNTER, &e);
    if (v)
        __atomic_store_n(v, (uint64_t)total, __ATOMIC_RELAXED);
}

void stats_own_observe(struct stats_region *r, const char *name, double seconds)
{
    const struct stats_entry *e;
    uint64_t *v = own_slot(r, name, STATS_HISTOGRAM, &e);
    if (!v)
        return;
    unsigned b = 0;
    while (b < e->nbuckets && seconds > e->bounds[b])
        b++;
    v[b]++; /* lane 0 has one writer: us */
    double sum;
    memcpy(&sum, &v[e->nbuckets + 1], sizeof sum);
    sum += seconds;
    memcpy(&v[e->nbuckets + 1], &sum, sizeof sum);
}
