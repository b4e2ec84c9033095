/* supervisor.c: the loop that owns everything and decides nothing.
 *
 * Start-up binds every listener, opens the notify and control sockets, then
 * hands the "start" event to the Lua runtime. From then on the loop turns
 * kernel events into runtime events (a child exited, a generation said
 * READY=1, a timer fired, a client asked for a restart) and carries out what
 * the runtime asks through baton.core (spawn, signal, timer, reply). It ends
 * when the runtime calls core.shutdown(), after every generation is gone. */

#include "supervisor.h"

#include "log.h"
#include "spawn.h"
#include "stats_export.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

struct sup_timer {
    uv_timer_t handle;
    uint64_t id;
    struct supervisor *s;
    struct sup_timer *next;
};

#define EXITED_HISTORY 8

double sup_now(struct supervisor *s)
{
    (void)s;
    return (double)uv_hrtime() / 1e9;
}

/* --- processes ----------------------------------------------------------- */

static char *strfmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *strfmt(const char *fmt, ...)
{
    va_list ap;
    char *out = NULL;
    va_start(ap, fmt);
    if (vasprintf(&out, fmt, ap) < 0)
        out = NULL;
    va_end(ap);
    return out;
}

/* LISTEN_FDNAMES: the listener names, then the stored fds' (STORED, may
 * be ""), colon-separated, in fd order. */
static char *fdnames(const struct service_config *cfg, const char *stored)
{
    size_t len = sizeof "LISTEN_FDNAMES=" + strlen(stored) + 1;
    for (size_t i = 0; i < cfg->nlisteners; i++)
        len += strlen(cfg->listeners[i].name) + 1;
    char *s = malloc(len);
    if (!s)
        return NULL;
    strcpy(s, "LISTEN_FDNAMES=");
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        if (i)
            strcat(s, ":");
        strcat(s, cfg->listeners[i].name);
    }
    if (*stored) {
        if (cfg->nlisteners)
            strcat(s, ":");
        strcat(s, stored);
    }
    return s;
}

int sup_spawn(struct supervisor *s, enum spawn_state mode, unsigned *id, pid_t *pid, char *err,
              size_t errlen)
{
    const struct service_config *cfg = &s->cfg;
    size_t nenv = 0;
    while (cfg->env[nenv])
        nenv++;
    unsigned next = s->gens.next_id + 1;
    int *stored;
    size_t nstored;
    char *stored_names;
    err[0] = '\0';
    int r = handover_fds(s, mode, &stored, &nstored, &stored_names, err, errlen);
    if (r < 0)
        return r;
    /* Listeners at 3.., the fd store after them (all in LISTEN_FDS), then
     * the stats region: after LISTEN_FDS, so an app that treats every
     * LISTEN_FDS fd as a socket never sees it. */
    size_t nlisten = cfg->nlisteners + nstored;
    size_t nfds = nlisten + 1;
    int fds[nfds];
    for (size_t i = 0; i < cfg->nlisteners; i++)
        fds[i] = cfg->listeners[i].fd;
    memcpy(fds + cfg->nlisteners, stored, nstored * sizeof *stored);
    fds[nlisten] = s->stats.fd;
    stats_assign_lane(&s->stats, next);

    enum { EXTRA = 7 };
    char *extra[EXTRA] = {
        strfmt("LISTEN_FDS=%zu", nlisten),
        fdnames(cfg, stored_names),
        strfmt("NOTIFY_SOCKET=%s", s->notify_path),
        strfmt("BATON_GENERATION=%u", next),
        strfmt("BATON_CONTROL=%s", cfg->control),
        strfmt("BATON_STATS_FD=%zu", 3 + nlisten),
        strfmt("BATON_STATE_NAME=%s", cfg->state_name),
    };
    free(stored);
    free(stored_names);
    char **env = calloc(nenv + EXTRA + 1, sizeof *env);
    r = -ENOMEM;
    for (size_t i = 0; i < EXTRA; i++)
        if (!extra[i])
            goto out;
    if (!env)
        goto out;
    memcpy(env, cfg->env, nenv * sizeof *env);
    memcpy(env + nenv, extra, sizeof extra);

    struct spawn_opts o = { .argv = cfg->argv, .env = env, .cwd = cfg->cwd,
                            .fds = fds, .nfds = nfds };
    r = spawn_process(&o, pid, err, errlen);
    if (r == 0) {
        handover_spawned(s, mode);
        struct generation *g = generations_add(&s->gens, *pid, sup_now(s));
        if (!g) {
            /* Cannot track it: do not leave an app we cannot drain. */
            kill(-*pid, SIGKILL);
            snprintf(err, errlen, "out of memory for the process table");
            r = -ENOMEM;
            goto out;
        }
        *id = g->id;
    }
out:
    if (r == -ENOMEM && err[0] == '\0')
        snprintf(err, errlen, "spawn: out of memory");
    for (size_t i = 0; i < EXTRA; i++)
        free(extra[i]);
    free(env);
    return r;
}

int sup_signal(struct supervisor *s, unsigned id, int sig, int group)
{
    struct generation *g = generations_by_id(&s->gens, id);
    if (!g || g->state == GEN_EXITED)
        return -ESRCH;
    if (kill(group ? -g->pid : g->pid, sig) < 0)
        return -errno;
    return 0;
}

int sup_set_state(struct supervisor *s, unsigned id, const char *state)
{
    struct generation *g = generations_by_id(&s->gens, id);
    int st = gen_state_parse(state);
    if (!g || st < 0)
        return -EINVAL;
    if (g->state != GEN_EXITED)
        g->state = (enum gen_state)st;
    return 0;
}

/* Every child is reaped here: generations' main processes (reported to the
 * runtime) and anything else that became ours as subreaper (just reaped). */
static void reap(struct supervisor *s)
{
    notify_drain(&s->notify);
    for (;;) {
        int st;
        pid_t pid = waitpid(-1, &st, WNOHANG);
        if (pid <= 0) {
            if (pid < 0 && errno == EINTR)
                continue;
            return;
        }
        struct generation *g = generations_by_pid(&s->gens, pid);
        if (!g) {
            log_debug("reaped pid %d (not a generation's main process)", (int)pid);
            continue;
        }
        g->state = GEN_EXITED;
        g->exited_at = sup_now(s);
        g->exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        g->exit_signal = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
        unsigned id = g->id;
        int code = g->exit_code, sig = g->exit_signal;
        generations_prune(&s->gens, EXITED_HISTORY);
        bridge_dispatch(&s->lua, "exit", "iii", (long long)id, (long long)code, (long long)sig);
    }
}

/* --- timers -------------------------------------------------------------- */

static void on_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

static void timer_unlink(struct supervisor *s, struct sup_timer *t)
{
    for (struct sup_timer **p = &s->timers; *p; p = &(*p)->next)
        if (*p == t) {
            *p = t->next;
            break;
        }
    uv_close((uv_handle_t *)&t->handle, on_timer_closed);
}

static void on_timer(uv_timer_t *h)
{
    struct sup_timer *t = h->data;
    struct supervisor *s = t->s;
    uint64_t id = t->id;
    timer_unlink(s, t);
    bridge_dispatch(&s->lua, "timer", "i", (long long)id);
}

int sup_timer_start(struct supervisor *s, double seconds, uint64_t *id)
{
    if (s->shutting_down)
        return -ECANCELED;
    struct sup_timer *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->s = s;
    t->id = ++s->next_timer;
    uv_timer_init(s->loop, &t->handle);
    t->handle.data = t;
    uint64_t ms = seconds <= 0 ? 0 : (uint64_t)(seconds * 1000.0 + 0.5);
    uv_timer_start(&t->handle, on_timer, ms, 0);
    t->next = s->timers;
    s->timers = t;
    *id = t->id;
    return 0;
}

void sup_timer_cancel(struct supervisor *s, uint64_t id)
{
    for (struct sup_timer *t = s->timers; t; t = t->next)
        if (t->id == id) {
            uv_timer_stop(&t->handle);
            timer_unlink(s, t);
            return;
        }
}

/* --- policy file watches -------------------------------------------------- */

struct sup_watch {
    struct file_watch w;
    uint64_t id;
    struct sup_watch *next;
};

static void on_policy_watch(struct file_watch *w)
{
    struct sup_watch *sw = (struct sup_watch *)w;
    struct supervisor *s = w->data;
    bridge_dispatch(&s->lua, "watch", "i", (long long)sw->id);
}

int sup_watch_add(struct supervisor *s, const char *path, uint64_t *id)
{
    struct sup_watch *sw = calloc(1, sizeof *sw);
    if (!sw)
        return -ENOMEM;
    sw->w.data = s;
    int r = file_watch_start(&sw->w, s->loop, path, on_policy_watch);
    if (r < 0) {
        free(sw);
        return r;
    }
    sw->id = ++s->next_timer; /* one id space with timers is enough */
    sw->next = s->watches;
    s->watches = sw;
    *id = sw->id;
    return 0;
}

static void free_watch(struct file_watch *w)
{
    free(w); /* first member of struct sup_watch */
}

void sup_watch_remove(struct supervisor *s, uint64_t id)
{
    for (struct sup_watch **p = &s->watches; *p; p = &(*p)->next)
        if ((*p)->id == id) {
            struct sup_watch *sw = *p;
            *p = sw->next;
            sw->w.on_stopped = free_watch;
            file_watch_stop(&sw->w);
            return;
        }
}

/* --- notify -------------------------------------------------------------- */

/* Which generation sent this? Its main process, or any process in its
 * process group (workers), or failing that a descendant (found through
 * /proc parent links, for apps that start their own process groups). */
static struct generation *sender_generation(struct supervisor *s, pid_t pid)
{
    struct generation *g = generations_by_pid(&s->gens, pid);
    if (g)
        return g;
    pid_t pg = getpgid(pid);
    if (pg > 0 && (g = generations_by_pid(&s->gens, pg)))
        return g;
    for (int depth = 0; depth < 16 && pid > 1; depth++) {
        char path[64], buf[512];
        snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return NULL;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0)
            return NULL;
        buf[n] = '\0';
        char *rp = strrchr(buf, ')'); /* the command name may hold spaces */
        int ppid;
        if (!rp || sscanf(rp + 1, " %*c %d", &ppid) != 1)
            return NULL;
        pid = ppid;
        if ((g = generations_by_pid(&s->gens, pid)))
            return g;
    }
    return NULL;
}

static void on_notify(struct notify *n, pid_t pid, const struct notify_msg *m, int *fds, size_t nfds)
{
    struct supervisor *s = n->data;
    struct generation *g = sender_generation(s, pid);
    if (!g) {
        for (size_t i = 0; i < nfds; i++)
            close(fds[i]);
        log_warn("notify: message from pid %d, which is no generation of ours: ignored", (int)pid);
        return;
    }
    unsigned id = g->id;
    if (nfds > 0 || m->fdstore || m->fdstoreremove)
        handover_notify(s, g, m, fds, nfds); /* may run Lua: look g up again after */
    if (!(g = generations_by_id(&s->gens, id)))
        return;
    if (m->status)
        snprintf(g->status, sizeof g->status, "%s", m->status);
    if (m->ready && g->ready_at == 0) {
        g->ready_at = sup_now(s);
        if (g->state == GEN_STARTING)
            g->state = GEN_READY;
        bridge_dispatch(&s->lua, "ready", "i", (long long)id);
    }
    if (m->stopping)
        bridge_dispatch(&s->lua, "stopping", "i", (long long)id);
}

/* --- stats ---------------------------------------------------------------- */

static uint64_t *own_slot(struct supervisor *s, const char *name, enum stats_type type,
                          const struct stats_entry **out)
{
    static const double seconds[] = { 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300 };
    int i = stats_register(&s->stats, name, type, seconds, sizeof seconds / sizeof seconds[0]);
    const struct stats_entry *e = i < 0 ? NULL : stats_entry_at(&s->stats, (uint32_t)i);
    if (!e) {
        log_warn("stats: cannot register %s: %s", name, strerror(i < 0 ? -i : EINVAL));
        return NULL;
    }
    *out = e;
    return stats_lane(&s->stats, e, 0);
}

void sup_stat_add(struct supervisor *s, const char *name, double n)
{
    const struct stats_entry *e;
    uint64_t *v = own_slot(s, name, STATS_COUNTER, &e);
    if (v && n > 0)
        __atomic_fetch_add(v, (uint64_t)n, __ATOMIC_RELAXED);
}

void sup_stat_set(struct supervisor *s, const char *name, double value)
{
    const struct stats_entry *e;
    uint64_t *v = own_slot(s, name, STATS_GAUGE, &e);
    if (v)
        __atomic_store_n(v, (uint64_t)(int64_t)value, __ATOMIC_RELAXED);
}

void sup_stat_observe(struct supervisor *s, const char *name, double seconds)
{
    const struct stats_entry *e;
    uint64_t *v = own_slot(s, name, STATS_HISTOGRAM, &e);
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

/* Figures the supervisor keeps elsewhere, copied in before each reading. */
static void refresh_own_stats(struct supervisor *s)
{
    sup_stat_set(s, "baton.generations", (double)generations_live(&s->gens));
    const struct stats_entry *e;
    uint64_t *v = own_slot(s, "baton.notify_rejected", STATS_COUNTER, &e);
    if (v)
        __atomic_store_n(v, (uint64_t)s->notify.rejected, __ATOMIC_RELAXED);
}

static int serving(struct supervisor *s)
{
    for (size_t i = 0; i < s->gens.len; i++)
        if (s->gens.v[i].state == GEN_ACTIVE)
            return 1;
    return 0;
}

static int on_page(struct metrics_http *m, const char *path, char **body, size_t *len)
{
    struct supervisor *s = m->data;
    if (strcmp(path, "/metrics") == 0) {
        refresh_own_stats(s);
        *body = stats_to_prometheus(&s->stats, len);
        return *body ? 200 : 500;
    }
    if (strcmp(path, "/ready") == 0) {
        int ok = serving(s) && !s->shutting_down;
        *body = strdup(ok ? "ready\n" : "not ready\n");
        *len = strlen(*body);
        return ok ? 200 : 503;
    }
    *body = strdup("not found: try /metrics or /ready\n");
    *len = strlen(*body);
    return 404;
}

/* --- reload --------------------------------------------------------------- */

static int str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* What cannot change while the service runs: its sockets and its region. */
static const char *fixed_key_changed(const struct service_config *a, const struct service_config *b)
{
    if (!str_eq(a->name, b->name))
        return "name";
    if (!str_eq(a->control, b->control))
        return "control";
    if (!str_eq(a->metrics, b->metrics))
        return "metrics";
    if (a->stats_capacity != b->stats_capacity)
        return "stats_capacity";
    if (!str_eq(a->state_name, b->state_name))
        return "state.name";
    if (a->nlisteners != b->nlisteners)
        return "listen";
    for (size_t i = 0; i < a->nlisteners; i++)
        if (!str_eq(a->listeners[i].name, b->listeners[i].name) ||
            !str_eq(a->listeners[i].address, b->listeners[i].address) ||
            a->listeners[i].backlog != b->listeners[i].backlog)
            return "listen";
    return NULL;
}

static void watch_policy_file(struct supervisor *s);

/* Re-reads the service file and its policy. The running ones stay unless
 * the new ones load, validate, and keep the fixed keys. */
static int reload(struct supervisor *s, char *msg, size_t len)
{
    uint64_t t0 = uv_hrtime();
    struct service_config n;
    int ref;
    char err[4096];
    if (bridge_load_config_ref(&s->lua, s->cfg.file, s->rundir, &n, &ref, err, sizeof err) < 0) {
        snprintf(msg, len, "%s", err);
        return -EINVAL;
    }
    const char *key = fixed_key_changed(&s->cfg, &n);
    if (key) {
        snprintf(msg, len, "%s: key '%s' changed: it cannot change while the service runs "
                 "(stop and run it again)", s->cfg.file, key);
        bridge_drop_config(&s->lua, ref);
        config_free(&n);
        return -EINVAL;
    }
    /* What the next generation is started with. */
    char **argv = s->cfg.argv, **env = s->cfg.env;
    char *cwd = s->cfg.cwd;
    s->cfg.argv = n.argv;
    s->cfg.env = n.env;
    s->cfg.cwd = n.cwd;
    n.argv = argv;
    n.env = env;
    n.cwd = cwd;
    s->cfg.state_max_size = n.state_max_size;
    s->cfg.fdstore_max = n.fdstore_max;
    handover_reconfigure(s);
    config_free(&n);
    bridge_commit_config(&s->lua, ref);
    watch_policy_file(s);
    char *policy = bridge_config_string(&s->lua, "policy_name");
    snprintf(msg, len, "reloaded %s (policy %s) in %.3f ms", s->cfg.file, policy ? policy : "?",
             (double)(uv_hrtime() - t0) / 1e6);
    free(policy);
    sup_stat_add(s, "baton.reloads", 1);
    return 0;
}

static void on_file_changed(struct file_watch *w)
{
    struct supervisor *s = w->data;
    char msg[4096];
    if (s->shutting_down)
        return;
    if (reload(s, msg, sizeof msg) == 0)
        log_info("%s changed: %s", w->name, msg);
    else
        log_error("%s changed, reload refused (still running the previous one): %s", w->name, msg);
}

/* The policy named by the running config, when it is a file of its own. */
static void watch_policy_file(struct supervisor *s)
{
    char *path = bridge_config_string(&s->lua, "policy_name");
    if (s->watch_policy.open && path && s->watch_policy.dir) {
        char cur[PATH_MAX];
        snprintf(cur, sizeof cur, "%s/%s", s->watch_policy.dir, s->watch_policy.name);
        if (strcmp(cur, path) == 0) {
            free(path);
            return;
        }
    }
    file_watch_stop(&s->watch_policy);
    if (path && strchr(path, '/')) {
        s->watch_policy.data = s;
        int r = file_watch_start(&s->watch_policy, s->loop, path, on_file_changed);
        if (r < 0)
            log_warn("cannot watch policy %s: %s (baton reload still works)", path, uv_strerror(r));
    }
    free(path);
}

/* --- control ------------------------------------------------------------- */

static json_t *status_json(struct supervisor *s)
{
    double now = sup_now(s);
    json_t *ls = json_array(), *gs = json_array();
    for (size_t i = 0; i < s->cfg.nlisteners; i++) {
        char addr[256];
        listener_local_address(&s->cfg.listeners[i], addr, sizeof addr);
        json_array_append_new(ls, json_pack("{s:s, s:s, s:i}", "name", s->cfg.listeners[i].name,
                                            "address", addr, "fd", 3 + (int)i));
    }
    for (size_t i = 0; i < s->gens.len; i++) {
        struct generation *g = &s->gens.v[i];
        double end = g->exited_at ? g->exited_at : now;
        json_t *j = json_pack("{s:i, s:i, s:s, s:f, s:s}", "id", (int)g->id, "pid", (int)g->pid,
                              "state", gen_state_name(g->state), "uptime", end - g->started,
                              "status", g->status);
        if (g->ready_at)
            json_object_set_new(j, "ready_after", json_real(g->ready_at - g->started));
        if (g->state == GEN_EXITED) {
            json_object_set_new(j, "exit_code", json_integer(g->exit_code));
            json_object_set_new(j, "exit_signal", json_integer(g->exit_signal));
        }
        json_array_append_new(gs, j);
    }
    json_t *j = json_pack("{s:b, s:s, s:i, s:f, s:o, s:o, s:o}", "ok", 1, "service", s->cfg.name,
                          "pid", (int)getpid(), "uptime", now - s->started,
                          "listeners", ls, "generations", gs, "fdstore", handover_status(s));
    if (j && s->metrics_listener.fd >= 0) {
        char addr[256];
        listener_local_address(&s->metrics_listener, addr, sizeof addr);
        json_object_set_new(j, "metrics", json_string(addr));
    }
    return j;
}

static void on_control(struct control *c, uint64_t req, const char *cmd, json_t *args)
{
    struct supervisor *s = c->data;
    (void)args;
    if (strcmp(cmd, "status") == 0) {
        json_t *j = status_json(s);
        if (j)
            control_reply(c, req, j);
        else
            control_reply_error(c, req, "out of memory");
    } else if (strcmp(cmd, "stats") == 0) {
        refresh_own_stats(s);
        json_t *j = json_pack("{s:b, s:s, s:o}", "ok", 1, "service", s->cfg.name,
                              "metrics", stats_to_json(&s->stats));
        if (j)
            control_reply(c, req, j);
        else
            control_reply_error(c, req, "out of memory");
    } else if (strcmp(cmd, "reload") == 0) {
        char msg[4096];
        if (reload(s, msg, sizeof msg) == 0) {
            log_info("baton reload: %s", msg);
            control_reply(c, req, json_pack("{s:b, s:s}", "ok", 1, "message", msg));
        } else {
            log_error("baton reload refused (still running the previous one): %s", msg);
            control_reply_error(c, req, "%s", msg);
        }
    } else if (strcmp(cmd, "restart") == 0) {
        bridge_dispatch(&s->lua, "restart", "is", (long long)req, "baton restart");
    } else if (strcmp(cmd, "stop") == 0) {
        bridge_dispatch(&s->lua, "stop", "i", (long long)req);
    } else if (strcmp(cmd, "rollback") == 0) {
        bridge_dispatch(&s->lua, "rollback", "i", (long long)req);
    } else {
        control_reply_error(c, req, "unknown command '%s' (known: reload, restart, rollback, stats, status, stop)", cmd);
    }
}

void sup_reply(struct supervisor *s, uint64_t req, int ok, const char *message)
{
    if (req == 0 || !s->control.open)
        return;
    json_t *j = json_pack("{s:b, s:s}", "ok", ok, ok ? "message" : "error", message);
    if (j)
        control_reply(&s->control, req, j);
}

/* --- signals ------------------------------------------------------------- */

static void kill_all(struct supervisor *s)
{
    for (size_t i = 0; i < s->gens.len; i++)
        if (s->gens.v[i].state != GEN_EXITED)
            kill(-s->gens.v[i].pid, SIGKILL);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct supervisor *s = h->data;
    switch (signum) {
    case SIGCHLD:
        reap(s);
        break;
    case SIGHUP:
        bridge_dispatch(&s->lua, "restart", "ss", (const char *)NULL, "SIGHUP");
        break;
    case SIGTERM:
    case SIGINT:
        if (s->stop_signals++ == 0) {
            log_info("%s: stopping gracefully (send it again to kill every generation now)",
                     strsignal(signum));
            bridge_dispatch(&s->lua, "stop", "s", (const char *)NULL);
        } else {
            log_warn("%s again: killing every generation now", strsignal(signum));
            kill_all(s);
        }
        break;
    }
}

static int start_signal(struct supervisor *s, uv_signal_t *h, int signum)
{
    int r = uv_signal_init(s->loop, h);
    if (r == 0) {
        h->data = s;
        r = uv_signal_start(h, on_signal, signum);
    }
    return r;
}

void sup_shutdown(struct supervisor *s, int code)
{
    if (s->shutting_down)
        return;
    s->shutting_down = 1;
    s->exit_code = code;
    if (generations_live(&s->gens) > 0) {
        log_warn("shutting down with %zu generation(s) still running: killing them",
                 generations_live(&s->gens));
        kill_all(s);
    }
    uv_close((uv_handle_t *)&s->sig_hup, NULL);
    uv_close((uv_handle_t *)&s->sig_term, NULL);
    uv_close((uv_handle_t *)&s->sig_int, NULL);
    uv_close((uv_handle_t *)&s->sig_chld, NULL);
    while (s->timers) {
        uv_timer_stop(&s->timers->handle);
        timer_unlink(s, s->timers);
    }
    notify_close(&s->notify);
    handover_free(s);
    metrics_http_close(&s->metrics);
    file_watch_stop(&s->watch_service);
    file_watch_stop(&s->watch_policy);
    while (s->watches)
        sup_watch_remove(s, s->watches->id);
    /* Replies already written finish first; the loop ends when they have. */
    control_close(&s->control);
}

/* --- start-up ------------------------------------------------------------ */

/* The folder for sockets: $XDG_RUNTIME_DIR, or /tmp/baton-UID, mode 0700
 * and ours (a folder someone else made could be watched or swapped). */
static int runtime_dir(char *out, size_t len)
{
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    if (xdg && xdg[0] == '/')
        snprintf(out, len, "%s", xdg);
    else
        snprintf(out, len, "/tmp/baton-%u", (unsigned)geteuid());
    if (mkdir(out, 0700) < 0 && errno != EEXIST)
        return -errno;
    struct stat st;
    if (lstat(out, &st) < 0)
        return -errno;
    if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 0077))
        return -EPERM;
    return 0;
}

static int bind_listeners(struct supervisor *s)
{
    for (size_t i = 0; i < s->cfg.nlisteners; i++) {
        char err[512];
        if (listener_bind(&s->cfg.listeners[i], err, sizeof err) < 0) {
            log_error("%s", err);
            return -1;
        }
        char addr[256];
        listener_local_address(&s->cfg.listeners[i], addr, sizeof addr);
        log_info("listening on %s as '%s' (fd %zu in each generation)", addr,
                 s->cfg.listeners[i].name, 3 + i);
    }
    return 0;
}

static int setup(struct supervisor *s, const char *file)
{
    char err[4096];
    int r;
    if ((r = runtime_dir(s->rundir, sizeof s->rundir)) < 0) {
        log_error("runtime folder %s: %s", s->rundir,
                  r == -EPERM ? "not ours or not mode 0700" : strerror(-r));
        return -1;
    }
    if (bridge_open(&s->lua, s) < 0) {
        log_error("cannot create the Lua VM");
        return -1;
    }
    if (bridge_load_config(&s->lua, file, s->rundir, &s->cfg, err, sizeof err) < 0) {
        log_error("%s", err);
        return -1;
    }
    lua_State *L = s->lua.L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->lua.cfg_ref);
    lua_getfield(L, -1, "log_level");
    if (lua_isstring(L, -1) && getenv("BATON_LOG_LEVEL") == NULL)
        log_set_level((enum log_level)log_level_parse(lua_tostring(L, -1)));
    lua_pop(L, 2);

    if (bind_listeners(s) < 0)
        return -1;
    handover_init(s);
    if ((r = stats_create(&s->stats, s->cfg.stats_capacity)) < 0) {
        log_error("stats region (%u metrics): %s", s->cfg.stats_capacity, strerror(-r));
        return -1;
    }
    if (s->cfg.metrics) {
        struct listener *m = &s->metrics_listener;
        m->name = "metrics";
        m->address = s->cfg.metrics;
        m->backlog = 64;
        s->metrics.data = s;
        if (listener_parse(m, m->address, err, sizeof err) < 0 ||
            listener_bind(m, err, sizeof err) < 0) {
            log_error("metrics endpoint: %s", err);
            return -1;
        }
        if ((r = metrics_http_open(&s->metrics, s->loop, m->fd, on_page)) < 0) {
            log_error("metrics endpoint %s: %s", m->address, uv_strerror(r));
            return -1;
        }
        char addr[256];
        listener_local_address(m, addr, sizeof addr);
        log_info("metrics on http://%s/metrics, readiness on /ready", addr + strlen("tcp://"));
    }

    int n = snprintf(s->notify_path, sizeof s->notify_path, "%s/%s.%d.notify", s->rundir,
                     s->cfg.name, (int)getpid());
    if (n < 0 || n >= 108) { /* sun_path */
        log_error("notify socket path under %s is too long for a unix socket", s->rundir);
        return -1;
    }
    s->notify.data = s;
    if ((r = notify_open(&s->notify, s->loop, s->notify_path, on_notify)) < 0) {
        log_error("notify socket %s: %s", s->notify_path, strerror(-r));
        return -1;
    }
    s->control.data = s;
    if ((r = control_open(&s->control, s->loop, s->cfg.control, on_control)) < 0) {
        log_error("control socket %s: %s", s->cfg.control,
                  r == UV_EADDRINUSE || r == -EADDRINUSE
                      ? "another supervisor is running there" : uv_strerror(r));
        return -1;
    }
    /* Orphans of our apps (a worker whose master died) are ours to reap,
     * not init's: nothing is left behind as a zombie. */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
        log_warn("PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
    if (start_signal(s, &s->sig_chld, SIGCHLD) < 0 || start_signal(s, &s->sig_hup, SIGHUP) < 0 ||
        start_signal(s, &s->sig_term, SIGTERM) < 0 || start_signal(s, &s->sig_int, SIGINT) < 0) {
        log_error("cannot install signal handlers");
        return -1;
    }
    signal(SIGPIPE, SIG_IGN);
    if (bridge_start_runtime(&s->lua, err, sizeof err) < 0) {
        log_error("policy runtime: %s", err);
        return -1;
    }
    s->watch_service.data = s;
    if ((r = file_watch_start(&s->watch_service, s->loop, s->cfg.file, on_file_changed)) < 0)
        log_warn("cannot watch %s: %s (baton reload still works)", s->cfg.file, uv_strerror(r));
    watch_policy_file(s);
    log_info("supervisor of '%s' running (pid %d), control socket %s", s->cfg.name,
             (int)getpid(), s->cfg.control);
    return 0;
}

static void close_handle(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void teardown(struct supervisor *s)
{
    if (!s->shutting_down) {
        /* setup() failed part way: close what it opened. */
        s->shutting_down = 1;
        notify_close(&s->notify);
        control_close(&s->control);
        uv_walk(s->loop, close_handle, NULL);
    }
    uv_run(s->loop, UV_RUN_DEFAULT);
    listener_close(&s->metrics_listener);
    handover_free(s);
    stats_close(&s->stats);
    config_free(&s->cfg); /* closes the listeners */
    bridge_close(&s->lua);
    generations_free(&s->gens);
    uv_loop_close(s->loop);
}

int supervisor_run(const char *file)
{
    static struct supervisor sup;
    struct supervisor *s = &sup;
    memset(s, 0, sizeof *s);
    s->notify.fd = -1;
    s->stats.fd = -1;
    s->metrics_listener.fd = -1;
    s->staged_state = -1;
    uv_loop_t loop;
    if (uv_loop_init(&loop) < 0)
        return 1;
    s->loop = &loop;
    s->started = sup_now(s);

    if (setup(s, file) < 0) {
        s->exit_code = 1;
        teardown(s);
        return 1;
    }
    bridge_dispatch(&s->lua, "start", "");
    uv_run(s->loop, UV_RUN_DEFAULT);
    log_info("supervisor exiting with code %d", s->exit_code);
    teardown(s);
    return s->exit_code;
}

int supervisor_check(const char *file)
{
    struct bridge b;
    struct service_config cfg;
    char err[4096], rundir[PATH_MAX];
    if (runtime_dir(rundir, sizeof rundir) < 0)
        snprintf(rundir, sizeof rundir, "/tmp");
    if (bridge_open(&b, NULL) < 0) {
        fprintf(stderr, "baton: cannot create the Lua VM\n");
        return 1;
    }
    int r = bridge_load_config(&b, file, rundir, &cfg, err, sizeof err);
    bridge_close(&b);
    if (r < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    printf("%s: ok (service '%s', %zu listener(s), control %s)\n", file, cfg.name,
           cfg.nlisteners, cfg.control);
    config_free(&cfg);
    return 0;
}
