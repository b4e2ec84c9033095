/* answers.c: what the supervisor answers of itself (see answers.h). */
#include "loop/answers.h"

#include "base/clock.h"
#include "loop/figures.h"
#include "loop/stats_export.h"
#include "loop/stats_own.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Figures the supervisor keeps elsewhere, copied in before each reading. */
static void refresh_own_stats(struct supervisor *s)
{
    stats_own_set(&s->stats, "baton.generations", (double)s->procs.len);
    stats_own_count(&s->stats, "baton.notify_rejected", (double)s->notify.rejected);
    stats_own_count(&s->stats, "baton.boundary_crossings", (double)s->api.crossings);
}

/* The runtime's answer to WHAT (events.h), as an object whose member LIST
 * is an array (an empty Lua table comes as {}). */
static json_t *query(struct supervisor *s, const char *what, int n, const char *list)
{
    json_t *v = s->sink.query ? s->sink.query(s->sink.ctx, what, clock_mono(), n) : NULL;
    if (!json_is_object(v)) {
        json_decref(v);
        v = json_object();
    }
    if (!json_is_array(json_object_get(v, list)))
        json_object_set_new(v, list, json_array());
    return v;
}

static json_t *view(struct supervisor *s)
{
    return query(s, "view", 0, "generations");
}

/* Unix seconds for a time of the loop's monotonic clock. */
static double unix_time(double mono)
{
    return mono + (clock_unix() - clock_mono());
}

/* An event of the runtime's (monotonic time) as the CLI shows it. */
static json_t *event_json(json_t *ev)
{
    json_t *j = json_pack("{s:f, s:O, s:O, s:O, s:O}", "time",
                          unix_time(json_number_value(json_object_get(ev, "time"))), "kind",
                          json_object_get(ev, "kind"), "generation",
                          json_object_get(ev, "generation"), "ok", json_object_get(ev, "ok"),
                          "reason", json_object_get(ev, "reason"));
    if (j && json_object_get(ev, "duration"))
        json_object_set(j, "duration", json_object_get(ev, "duration"));
    if (j && json_is_string(json_object_get(ev, "cause")))
        json_object_set(j, "cause", json_object_get(ev, "cause"));
    return j;
}

int answer_page(struct metrics_http *m, const char *path, char **body, size_t *len)
{
    struct supervisor *s = m->data;
    if (strcmp(path, "/metrics") == 0) {
        refresh_own_stats(s);
        unsigned live[s->procs.len + 1];
        for (size_t i = 0; i < s->procs.len; i++)
            live[i] = s->procs.v[i].id;
        json_t *v = view(s), *last = json_object_get(v, "last_restart");
        struct prom_facts f = {
            .service = s->cfg.name,
            .version = BATON_VERSION,
            .live = live,
            .nlive = s->procs.len,
            .active = (unsigned)json_integer_value(json_object_get(v, "active")),
        };
        if (json_is_object(last)) {
            f.last_restart = unix_time(json_number_value(json_object_get(last, "time")));
            f.last_restart_ok = json_is_true(json_object_get(last, "ok"));
        }
        /* Any local user can reach this page, as often as they like: the
         * kernel's figures (milliseconds with many connections) are read
         * again only after a second, or five times what the last read
         * took, whichever is longer. */
        static struct figures k;
        static double k_at = -1e9, k_cost;
        double t = clock_mono();
        if (t - k_at >= (5 * k_cost > 1 ? 5 * k_cost : 1)) {
            figures_free(&k);
            if (figures_read(&k, &s->procs, &s->cfg, 0) < 0)
                memset(&k, 0, sizeof k);
            k_at = t;
            k_cost = clock_mono() - t;
        }
        const char *names[s->cfg.nlisteners + 1];
        for (size_t i = 0; i < s->cfg.nlisteners; i++) /* NULL: per generation, none here */
            names[i] = s->cfg.listeners[i].per_generation ? NULL : s->cfg.listeners[i].name;
        if (k.ls && k.nls == s->cfg.nlisteners) {
            f.figures = &k;
            f.listener_names = names;
        }
        *body = stats_to_prometheus(&s->stats, &f, len);
        json_decref(v);
        return *body ? 200 : 500;
    }
    if (strcmp(path, "/ready") == 0) {
        json_t *v = view(s);
        int ok = json_is_true(json_object_get(v, "serving")) && !s->shutting_down;
        json_decref(v);
        *body = strdup(ok ? "ready\n" : "not ready\n");
        *len = strlen(*body);
        return ok ? 200 : 503;
    }
    if (strcmp(path, "/live") == 0) {
        /* Liveness: the loop answered, and so did the runtime. It does not
         * depend on a generation serving: the supervisor recovers those
         * itself, and a container restarted for it would drop what serves. */
        json_t *v = view(s);
        int ok = json_is_object(v);
        json_decref(v);
        *body = strdup(ok ? "alive\n" : "the runtime does not answer\n");
        *len = strlen(*body);
        return ok ? 200 : 503;
    }
    *body = strdup("not found: try /metrics, /ready or /live\n");
    *len = strlen(*body);
    return 404;
}

/* What the kernel says of a live generation (K, from figures F), as
 * `baton status` and `baton stats` both show it: connections (null when the
 * kernel could not say), of which closing, processes, the listeners it still
 * holds, memory, CPU. */
static void gen_figures_json(json_t *j, const struct figures *f, const struct conns_gen *k)
{
    json_object_set_new(j, "connections",
                        k && f->err == 0 ? json_integer(k->established + k->closing) : json_null());
    if (!k)
        return;
    json_object_set_new(j, "connections_closing", json_integer(k->closing));
    json_object_set_new(j, "processes", json_integer(k->nprocs));
    json_object_set_new(j, "listening", json_integer(k->listening));
    json_object_set_new(j, "rss_bytes", json_integer((json_int_t)k->rss_bytes));
    json_object_set_new(j, "cpu_seconds", json_real(k->cpu_seconds));
}

/* The runtime's generations, with the process facts the loop keeps:
 * uptime, the last STATUS= of a live one, how it ended; and what the kernel
 * says of each (F): connections (a contract: its open connections on the
 * service's listeners, 0 once exited), processes, memory, CPU. */
static json_t *generations_json(json_t *v, double t, struct supervisor *s, const struct figures *f)
{
    json_t *out = json_array();
    size_t i;
    json_t *g;
    json_array_foreach(json_object_get(v, "generations"), i, g) {
        unsigned id = (unsigned)json_integer_value(json_object_get(g, "id"));
        double started = json_number_value(json_object_get(g, "started"));
        json_t *exited = json_object_get(g, "exited_at"), *ready = json_object_get(g, "ready_at");
        struct proc *p = procs_by_id(&s->procs, id);
        json_t *j = json_pack("{s:i, s:O, s:O, s:f, s:s}", "id", (int)id, "pid",
                              json_object_get(g, "pid"), "state", json_object_get(g, "state"),
                              "uptime", (exited ? json_number_value(exited) : t) - started,
                              "status", p ? p->status : "");
        if (!j)
            continue;
        if (ready)
            json_object_set_new(j, "ready_after", json_real(json_number_value(ready) - started));
        if (p && p->adopted)
            json_object_set_new(j, "adopted", json_true());
        /* The contract: its share of new connections on steered listeners,
         * null where none (the runtime's view carries it). */
        json_t *w = json_object_get(g, "weight");
        json_object_set_new(j, "weight",
                            json_is_number(w) ? json_integer((json_int_t)json_number_value(w))
                                              : json_null());
        /* Its per_generation listeners' ports: { NAME = port }. */
        if (json_is_object(json_object_get(g, "ports")))
            json_object_set(j, "ports", json_object_get(g, "ports"));
        if (exited) /* the contract: 0 once exited */
            json_object_set_new(j, "connections", json_integer(0));
        else
            gen_figures_json(j, f, figures_gen(f, id));
        json_object_set_new(j, "started_at", json_real(unix_time(started)));
        if (exited) {
            json_object_set(j, "exit_code", json_object_get(g, "exit_code"));
            json_object_set(j, "exit_signal", json_object_get(g, "exit_signal"));
            json_object_set_new(j, "exited_at", json_real(unix_time(json_number_value(exited))));
            json_object_set(j, "end", json_object_get(g, "ended"));
        }
        json_array_append_new(out, j);
    }
    return out;
}

static json_t *status_json(struct supervisor *s)
{
    double t = clock_mono();
    struct figures f;
    int have = figures_read(&f, &s->procs, &s->cfg, 0) == 0;
    json_t *ls = json_array();
    for (size_t i = 0; i < s->cfg.nlisteners; i++) {
        char addr[256];
        listener_local_address(&s->cfg.listeners[i], addr, sizeof addr);
        json_t *l = json_pack("{s:s, s:s, s:i}", "name", s->cfg.listeners[i].name, "address", addr,
                              "fd", 3 + (int)i);
        if (l && s->cfg.listeners[i].steer) {
            json_object_set_new(l, "steer", json_true());
            /* Whether a member that leaves hands its queue to another. */
            json_object_set_new(l, "tcp_migrate_req",
                                s->steer.migrate >= 0 ? json_boolean(s->steer.migrate == 1)
                                                      : json_null());
        }
        if (l && s->cfg.listeners[i].per_generation)
            json_object_set_new(l, "per_generation", json_true());
        else if (l && have) {
            json_object_set_new(l, "queue", json_integer(f.ls[i].queue));
            json_object_set_new(l, "max_queue", json_integer(f.ls[i].max_queue));
        }
        json_array_append_new(ls, l);
    }
    json_t *v = view(s);
    static const struct figures none;
    json_t *j = json_pack("{s:b, s:s, s:i, s:f, s:o, s:o, s:o}", "ok", 1, "service", s->cfg.name,
                          "pid", (int)getpid(), "uptime", t - s->started, "listeners", ls,
                          "generations", generations_json(v, t, s, have ? &f : &none), "fdstore",
                          handover_status(&s->handover, t));
    if (j && have && f.overflows >= 0)
        json_object_set_new(j, "listen_overflows", json_integer(f.overflows));
    if (have)
        figures_free(&f);
    json_t *img = json_pack("{s:s, s:s, s:f, s:i}", "binary", s->image.binary, "version",
                            BATON_VERSION, "started_at", s->image.started_at, "upgrades",
                            (int)s->image.upgrades);
    if (img && s->image.adopted_at > 0)
        json_object_set_new(img, "adopted_at", json_real(s->image.adopted_at));
    for (size_t i = 0; img && i < s->nparts; i++)
        if (s->parts[i].status)
            s->parts[i].status(s->parts[i].ctx, img);
    if (j && img)
        json_object_set_new(j, "image", img);
    else
        json_decref(img);
    if (j) {
        json_t *last = json_object_get(v, "last_restart");
        if (json_is_object(last))
            json_object_set_new(j, "last_restart", event_json(last));
        json_object_set(j, "exited_not_shown", json_object_get(v, "exited_not_shown"));
        /* The policy gave up (start_limit): why, until `baton restart`. */
        if (json_is_string(json_object_get(v, "failed")))
            json_object_set(j, "failed", json_object_get(v, "failed"));
    }
    json_decref(v);
    json_t *host = json_object();
    for (size_t i = 0; host && i < s->nhost; i++) {
        const struct os_mechanism *m = &s->host[i];
        char text[sizeof m->detail + 16];
        snprintf(text, sizeof text, "%s%s%s", os_support_name(m->support), *m->detail ? ": " : "",
                 m->detail);
        json_object_set_new(host, m->name, json_string(text));
    }
    if (j && host)
        json_object_set_new(j, "host", host);
    else
        json_decref(host);
    if (j && s->metrics_listener.fd >= 0) {
        char addr[256];
        listener_local_address(&s->metrics_listener, addr, sizeof addr);
        json_object_set_new(j, "metrics", json_string(addr));
    }
    return j;
}

void answer_json(struct control *c, uint64_t req, json_t *j)
{
    if (j)
        control_reply(c, req, j);
    else
        control_reply_error(c, req, "out of memory");
}

void answer_status(struct supervisor *s, uint64_t req, json_t *args)
{
    (void)args;
    answer_json(&s->control, req, status_json(s));
}

/* {"cmd":"events","n":N}: the newest N events (all that are kept when N
 * is absent), oldest first, times in unix seconds. */
void answer_events(struct supervisor *s, uint64_t req, json_t *args)
{
    json_int_t n = json_integer_value(json_object_get(args, "n"));
    json_t *v = query(s, "events", n > 0 && n < 1000000 ? (int)n : 0, "events");
    json_t *out = json_array();
    size_t i;
    json_t *ev;
    json_array_foreach(json_object_get(v, "events"), i, ev)
        json_array_append_new(out, event_json(ev));
    answer_json(&s->control, req,
                json_pack("{s:b, s:o, s:I}", "ok", 1, "events", out, "not_kept",
                          json_integer_value(json_object_get(v, "not_kept"))));
    json_decref(v);
}

/* {"cmd":"logs","n":N,"gen":G,"after":SEQ}: what generations printed. */
void answer_logs(struct supervisor *s, uint64_t req, json_t *args)
{
    json_int_t n = json_integer_value(json_object_get(args, "n"));
    json_int_t gen = json_integer_value(json_object_get(args, "gen"));
    json_int_t after = json_integer_value(json_object_get(args, "after"));
    json_t *lines = output_json(&s->output, after > 0 ? (uint64_t)after : 0,
                                gen > 0 && gen < UINT32_MAX ? (unsigned)gen : 0,
                                n > 0 && n <= OUTPUT_LINES ? (size_t)n : 0);
    answer_json(&s->control, req,
                json_pack("{s:b, s:o, s:I}", "ok", 1, "lines", lines, "next",
                          (json_int_t)s->output.next_seq - 1));
}

/* What the kernel says now, for `baton stats`: each live generation's
 * connections, processes, memory, CPU; each listener's accept queue; the
 * namespace's overflow count. NULL when it cannot be read. */
static json_t *kernel_json(struct supervisor *s)
{
    struct figures f;
    if (figures_read(&f, &s->procs, &s->cfg, 0) < 0)
        return NULL;
    json_t *gens = json_array(), *ls = json_array();
    for (size_t i = 0; i < f.ngens; i++) {
        json_t *g = json_pack("{s:i}", "id", (int)f.ids[i]);
        if (g)
            gen_figures_json(g, &f, &f.gens[i]);
        json_array_append_new(gens, g);
    }
    for (size_t i = 0; i < f.nls; i++)
        if (!s->cfg.listeners[i].per_generation)
            json_array_append_new(ls, json_pack("{s:s, s:i, s:i}", "name", s->cfg.listeners[i].name,
                                                "queue", (int)f.ls[i].queue, "max_queue",
                                                (int)f.ls[i].max_queue));
    json_t *j = json_pack("{s:o, s:o}", "generations", gens, "listeners", ls);
    if (j && f.overflows >= 0)
        json_object_set_new(j, "listen_overflows", json_integer(f.overflows));
    if (j && f.err < 0)
        json_object_set_new(j, "error", json_string(strerror(-f.err)));
    figures_free(&f);
    return j;
}

void answer_stats(struct supervisor *s, uint64_t req, json_t *args)
{
    (void)args;
    refresh_own_stats(s);
    json_t *j = json_pack("{s:b, s:s, s:o}", "ok", 1, "service", s->cfg.name, "metrics",
                          stats_to_json(&s->stats));
    json_t *k = kernel_json(s);
    if (j && k)
        json_object_set_new(j, "kernel", k);
    else
        json_decref(k);
    answer_json(&s->control, req, j);
}
