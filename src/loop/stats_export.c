#include "loop/stats_export.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *type_name(uint32_t t)
{
    return t == STATS_COUNTER ? "counter" : t == STATS_GAUGE ? "gauge" : "histogram";
}

static json_t *histogram_json(const struct stats_region *r, const struct stats_entry *e, int lane)
{
    json_t *buckets = json_array();
    double cum = 0;
    for (unsigned b = 0; b <= e->nbuckets; b++) {
        cum += stats_read(r, e, lane, b);
        json_t *le = b < e->nbuckets ? json_real(e->bounds[b]) : json_string("+Inf");
        json_array_append_new(buckets, json_pack("{s:o, s:f}", "le", le, "count", cum));
    }
    return json_pack("{s:o, s:f, s:f}", "buckets", buckets, "sum",
                     stats_read(r, e, lane, e->nbuckets + 1), "count", cum);
}

json_t *stats_to_json(const struct stats_region *r)
{
    json_t *out = json_array();
    for (uint32_t i = 0; i < r->hdr->capacity; i++) {
        const struct stats_entry *e = stats_entry_at(r, i);
        if (!e)
            continue;
        json_t *m = json_pack("{s:s, s:s}", "name", e->name, "type", type_name(e->type));
        json_t *gens = json_object();
        for (unsigned lane = 1; lane < STATS_LANES; lane++) {
            uint32_t g = stats_lane_generation(r, lane);
            if (g == 0)
                continue;
            char key[16];
            snprintf(key, sizeof key, "%u", g);
            json_object_set_new(gens, key,
                                e->type == STATS_HISTOGRAM
                                    ? histogram_json(r, e, (int)lane)
                                    : json_real(stats_read(r, e, (int)lane, 0)));
        }
        if (e->type == STATS_HISTOGRAM) {
            json_t *h = histogram_json(r, e, -1);
            json_object_update(m, h);
            json_decref(h);
        } else {
            json_object_set_new(m, "value", json_real(stats_read(r, e, -1, 0)));
            /* Folded out of lanes of generations long gone, and the
             * supervisor's own lane: with `generations`, they add up to value. */
            if (e->type == STATS_COUNTER)
                json_object_set_new(m, "retired", json_real((double)e->retired[0]));
            json_object_set_new(m, "supervisor", json_real(stats_read(r, e, 0, 0)));
        }
        json_object_set_new(m, "generations", gens);
        json_array_append_new(out, m);
    }
    return out;
}

/* A growing text buffer; on allocation failure it stops growing and the
 * caller gets NULL at the end. */
struct buf {
    char *p;
    size_t len, cap;
    int failed;
};

static void put(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct buf *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)(n > 0 ? n : 0);
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

static void prom_name(const char *in, char *out, size_t len, int counter)
{
    size_t n = 0;
    if (in[0] >= '0' && in[0] <= '9')
        out[n++] = '_';
    for (const char *p = in; *p && n + 1 < len; p++)
        out[n++] = (*p == '.' || *p == '-') ? '_' : *p;
    out[n] = '\0';
    if (counter && (n < 6 || strcmp(out + n - 6, "_total") != 0))
        snprintf(out + n, len - n, "_total");
}

static void prom_value(struct buf *b, double v)
{
    if (v == (double)(long long)v && v < 9e15 && v > -9e15)
        put(b, "%lld\n", (long long)v);
    else
        put(b, "%.17g\n", v);
}

/* What the supervisor's own metrics mean (docs/stats.md says the same). */
static const struct {
    const char *name, *help;
} own_help[] = {
    { "baton.restarts", "Restarts that took over (a new generation serves)." },
    { "baton.rollbacks", "Restarts rolled back: the serving generation was kept." },
    { "baton.crashes", "Serving generations that exited on their own." },
    { "baton.policy_errors", "Errors raised in policy hooks, and hooks stopped at a limit." },
    { "baton.reloads", "Reloads of the service file and policy that took." },
    { "baton.notify_rejected", "Notify datagrams dropped: malformed, foreign or too long." },
    { "baton.generations", "Generations whose processes run now." },
    { "baton.boundary_crossings", "Calls across the supervisor's C/Lua boundary." },
    { "baton.restart_seconds", "Seconds from a restart's request to its takeover." },
    { "baton.drain_seconds", "Seconds from a drain's signal to the old generation's exit." },
    { "baton.state_refused", "State blobs refused at a spawn (bad, or of another schema)." },
    { "baton.state_migrations", "State blobs migrated to the service's schema." },
};

static const char *help_of(const struct stats_entry *e)
{
    for (size_t i = 0; i < sizeof own_help / sizeof own_help[0]; i++)
        if (strcmp(own_help[i].name, e->name) == 0)
            return own_help[i].help;
    return NULL;
}

static void prom_histogram(struct buf *b, const struct stats_region *r, const struct stats_entry *e,
                           const char *name, const char *svc)
{
    double cum = 0;
    const char *help = help_of(e);
    put(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help ? help : e->name, name);
    for (unsigned k = 0; k <= e->nbuckets; k++) {
        cum += stats_read(r, e, -1, k);
        if (k < e->nbuckets)
            put(b, "%s_bucket{service=\"%s\",le=\"%.15g\"} ", name, svc, e->bounds[k]);
        else
            put(b, "%s_bucket{service=\"%s\",le=\"+Inf\"} ", name, svc);
        prom_value(b, cum);
    }
    put(b, "%s_sum{service=\"%s\"} ", name, svc);
    prom_value(b, stats_read(r, e, -1, e->nbuckets + 1));
    put(b, "%s_count{service=\"%s\"} ", name, svc);
    prom_value(b, cum);
}

static int live(const struct prom_facts *f, uint32_t g)
{
    for (size_t i = 0; i < f->nlive; i++)
        if (f->live[i] == g)
            return 1;
    return 0;
}

/* The kernel's figures: per live generation, per listener, overflows. */
static void prom_figures(struct buf *b, const struct prom_facts *f, const char *svc)
{
    const struct figures *k = f->figures;
    static const struct {
        const char *name, *type, *help;
    } per_gen[] = {
        { "baton_generation_connections", "gauge",
          "Open connections of a live generation on the service's listeners (established and "
          "closing), from the kernel." },
        { "baton_generation_processes", "gauge", "Processes of a live generation (its session)." },
        { "baton_generation_resident_bytes", "gauge",
          "Resident memory of a live generation's processes, in bytes." },
        { "baton_generation_cpu_seconds_total", "counter",
          "CPU time (user and system) of a live generation's processes, in seconds." },
    };
    for (size_t m = 0; m < sizeof per_gen / sizeof per_gen[0]; m++) {
        put(b, "# HELP %s %s\n# TYPE %s %s\n", per_gen[m].name, per_gen[m].help, per_gen[m].name,
            per_gen[m].type);
        for (size_t i = 0; i < k->ngens; i++) {
            const struct conns_gen *g = &k->gens[i];
            put(b, "%s{service=\"%s\",generation=\"%u\"} ", per_gen[m].name, svc, k->ids[i]);
            switch (m) {
            case 0: put(b, "%u\n", g->established + g->closing); break;
            case 1: put(b, "%u\n", g->nprocs); break;
            case 2: put(b, "%llu\n", (unsigned long long)g->rss_bytes); break;
            default: put(b, "%.3f\n", g->cpu_seconds); break;
            }
        }
    }
    put(b, "# HELP baton_listener_queue Connections waiting in a listener's accept queue.\n"
           "# TYPE baton_listener_queue gauge\n");
    for (size_t i = 0; i < k->nls; i++)
        if (f->listener_names[i])
            put(b, "baton_listener_queue{service=\"%s\",listener=\"%s\"} %u\n", svc,
                f->listener_names[i], k->ls[i].queue);
    put(b, "# HELP baton_listener_queue_max The most a listener's accept queue holds (its "
           "backlog).\n# TYPE baton_listener_queue_max gauge\n");
    for (size_t i = 0; i < k->nls; i++)
        if (f->listener_names[i])
            put(b, "baton_listener_queue_max{service=\"%s\",listener=\"%s\"} %u\n", svc,
                f->listener_names[i], k->ls[i].max_queue);
    if (k->overflows >= 0)
        put(b,
            "# HELP baton_listen_overflows_total Connections the kernel dropped because an accept "
            "queue was full (all listeners of the network namespace).\n"
            "# TYPE baton_listen_overflows_total counter\n"
            "baton_listen_overflows_total{service=\"%s\"} %lld\n",
            svc, (long long)k->overflows);
}

char *stats_to_prometheus(const struct stats_region *r, const struct prom_facts *f, size_t *len)
{
    struct buf b = { .cap = 4096 };
    b.p = malloc(b.cap);
    if (!b.p)
        return NULL;
    b.p[0] = '\0';
    const char *svc = f->service; /* a service name is [A-Za-z0-9_.-]: no escaping */
    put(&b,
        "# HELP baton_build_info The baton build that supervises the service.\n"
        "# TYPE baton_build_info gauge\nbaton_build_info{service=\"%s\",version=\"%s\"} 1\n",
        svc, f->version);
    put(&b,
        "# HELP baton_active_generation The generation that serves (0: none).\n"
        "# TYPE baton_active_generation gauge\nbaton_active_generation{service=\"%s\"} %u\n",
        svc, f->active);
    if (f->last_restart > 0)
        put(&b,
            "# HELP baton_last_restart_timestamp_seconds When the last restart was asked for.\n"
            "# TYPE baton_last_restart_timestamp_seconds gauge\n"
            "baton_last_restart_timestamp_seconds{service=\"%s\"} %.3f\n"
            "# HELP baton_last_restart_success 1 when the last restart took over, 0 when it "
            "rolled back.\n# TYPE baton_last_restart_success gauge\n"
            "baton_last_restart_success{service=\"%s\"} %d\n",
            svc, f->last_restart, svc, f->last_restart_ok);
    if (f->figures)
        prom_figures(&b, f, svc);
    for (uint32_t i = 0; i < r->hdr->capacity; i++) {
        const struct stats_entry *e = stats_entry_at(r, i);
        if (!e)
            continue;
        char name[STATS_NAME_MAX + 16], byg[STATS_NAME_MAX + 32], base[STATS_NAME_MAX + 16];
        int counter = e->type == STATS_COUNTER;
        prom_name(e->name, name, sizeof name, counter);
        if (e->type == STATS_HISTOGRAM) {
            prom_histogram(&b, r, e, name, svc);
            continue;
        }
        const char *type = counter ? "counter" : "gauge";
        const char *help = help_of(e);
        if (help)
            put(&b, "# HELP %s %s\n# TYPE %s %s\n%s{service=\"%s\"} ", name, help, name, type, name,
                svc);
        else
            put(&b,
                "# HELP %s The app's %s %s, all generations together.\n# TYPE %s %s\n"
                "%s{service=\"%s\"} ",
                name, type, e->name, name, type, name, svc);
        prom_value(&b, stats_read(r, e, -1, 0));
        /* The supervisor's own metrics (baton.*) have no per-generation view. */
        if (strncmp(e->name, "baton.", 6) == 0)
            continue;
        prom_name(e->name, base, sizeof base, 0);
        snprintf(byg, sizeof byg, "%s_by_generation%s", base, counter ? "_total" : "");
        put(&b, "# HELP %s The app's %s %s, per live generation.\n# TYPE %s %s\n", byg, type,
            e->name, byg, type);
        for (unsigned lane = 1; lane < STATS_LANES; lane++) {
            uint32_t g = stats_lane_generation(r, lane);
            if (g == 0 || !live(f, g))
                continue;
            put(&b, "%s{service=\"%s\",generation=\"%u\"} ", byg, svc, g);
            prom_value(&b, stats_read(r, e, (int)lane, 0));
        }
    }
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}
