/* The app side of the stats region (baton.h). */
#include "baton.h"
#include "stats_shm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct baton_stats {
    struct stats_region region;
    unsigned lane;
};

int baton_stats_open(struct baton_stats **out)
{
    struct baton_stats *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->region.fd = -1;
    const char *env = getenv("BATON_STATS_FD");
    int rc, private = 0;
    if (env && *env) {
        char *end;
        long fd = strtol(env, &end, 10);
        if (*end || fd < 0 || fd > 65535) {
            free(s);
            return -EINVAL;
        }
        /* Our own descriptor, so that closing ours never closes the app's. */
        int mine = fcntl((int)fd, F_DUPFD_CLOEXEC, 3);
        if (mine < 0) {
            rc = -errno;
            free(s);
            return rc;
        }
        if ((rc = stats_attach(&s->region, mine)) < 0) {
            close(mine);
            free(s);
            return rc;
        }
        s->lane = stats_lane_of(baton_generation());
    } else {
        if ((rc = stats_create(&s->region, 256)) < 0) {
            free(s);
            return rc;
        }
        private = 1;
        s->lane = 1;
    }
    *out = s;
    return private;
}

void baton_stats_close(struct baton_stats *s)
{
    if (!s)
        return;
    stats_close(&s->region);
    free(s);
}

static int lookup(struct baton_stats *s, const char *name, enum stats_type type,
                  const double *bounds, unsigned n, baton_metric *m)
{
    int i = stats_register(&s->region, name, type, bounds, n);
    if (i < 0)
        return i;
    const struct stats_entry *e = stats_entry_at(&s->region, (uint32_t)i);
    if (!e)
        return -EINVAL;
    m->slot = stats_lane(&s->region, e, s->lane);
    m->bounds = e->bounds;
    m->nbuckets = e->nbuckets;
    m->type = (int)type;
    return 0;
}

int baton_counter(struct baton_stats *s, const char *name, baton_metric *m)
{
    return lookup(s, name, STATS_COUNTER, NULL, 0, m);
}

int baton_gauge(struct baton_stats *s, const char *name, baton_metric *m)
{
    return lookup(s, name, STATS_GAUGE, NULL, 0, m);
}

int baton_histogram(struct baton_stats *s, const char *name, const double *bounds, unsigned n,
                    baton_metric *m)
{
    return lookup(s, name, STATS_HISTOGRAM, bounds, n, m);
}

void baton_observe(const baton_metric *m, double value)
{
    unsigned b = 0;
    while (b < m->nbuckets && value > m->bounds[b])
        b++;
    __atomic_fetch_add(&m->slot[b], 1, __ATOMIC_RELAXED);
    /* The sum is a double: add it with compare-and-swap on its bits. */
    uint64_t *sum = &m->slot[m->nbuckets + 1];
    uint64_t old = __atomic_load_n(sum, __ATOMIC_RELAXED), want;
    do {
        double d;
        memcpy(&d, &old, sizeof d);
        d += value;
        memcpy(&want, &d, sizeof want);
    } while (!__atomic_compare_exchange_n(sum, &old, want, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
}

void baton_metric_add(const baton_metric *m, uint64_t n)
{
    baton_add(m, n);
}
void baton_metric_gauge_add(const baton_metric *m, int64_t d)
{
    baton_gauge_add(m, d);
}
void baton_metric_set(const baton_metric *m, int64_t v)
{
    baton_set(m, v);
}

double baton_drain_progress(struct baton_stats *s)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return stats_drain_progress(&s->region, s->lane,
                                (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec);
}
