/* supervisor.c: the loop that owns everything and decides nothing.
 *
 * Start-up binds every listener, opens the notify and control sockets, then
 * reports EV_START. From then on the loop turns kernel events into events
 * for the sink (a child exited, a generation said READY=1, a client asked
 * for a restart) and the runtime carries out what it decides through
 * core_api.h. It ends when the runtime calls shutdown, after every
 * generation is gone. */

#include "loop/supervisor.h"

#include "loop/answers.h"

#include "base/clock.h"
#include "base/commands.h"
#include "loop/figures.h"
#include "os/portholder.h"
#include "base/log.h"
#include "base/nofile.h"
#include "base/rundir.h"
#include "loop/probe.h"
#include "loop/stats_export.h"
#include "loop/stats_own.h"
#include "base/unixpath.h"
#include "os/os.h"
#include "libbaton/shmfd.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void supervisor_emit(struct supervisor *s, struct event ev)
{
    if (!s->sink.event)
        return;
    ev.now = clock_mono();
    int changed = s->sink.event(s->sink.ctx, &ev);
    /* What the loop carries changes only with its own events (an exit, a
     * stored fd, a request, ...); what the runtime carries, as it says.
     * A timer, watch or probe that changed nothing in the runtime (a
     * drain's poll, say) rewrites nothing. */
    if (ev.kind == EV_TIMER || ev.kind == EV_WATCH || ev.kind == EV_PROBE) {
        if (!changed)
            return;
    }
    for (size_t i = 0; i < s->nparts; i++)
        if (s->parts[i].changed)
            s->parts[i].changed(s->parts[i].ctx);
}

/* The sink the loop's own pieces report to (timers, watches, probes
 * through core_api.h): every event reaches the runtime through
 * supervisor_emit, so every part hears of it. */
static int relay_event(void *ctx, const struct event *ev)
{
    supervisor_emit(ctx, *ev);
    return 0;
}

static json_t *relay_query(void *ctx, const char *what, double now, int n)
{
    struct supervisor *s = ctx;
    return s->sink.query ? s->sink.query(s->sink.ctx, what, now, n) : NULL;
}

int supervisor_add_part(struct supervisor *s, const struct supervisor_part *part)
{
    if (s->nparts == SUPERVISOR_MAX_PARTS)
        return -ENOSPC;
    s->parts[s->nparts++] = *part;
    return 0;
}

/* Whether a part's child was reaped (the upgrade's check, the keeper). */
static int part_reaped(struct supervisor *s, pid_t pid, int status)
{
    for (size_t i = 0; i < s->nparts; i++)
        if (s->parts[i].reaped && s->parts[i].reaped(s->parts[i].ctx, pid, status))
            return 1;
    return 0;
}

#define emit supervisor_emit

void supervisor_emit_exit(struct supervisor *s, unsigned id, int code, int sig)
{
    struct proc *p = procs_by_id(&s->procs, id);
    if (p && p->watch) {
        uv_close((uv_handle_t *)p->watch, (uv_close_cb)free);
        if (p->pidfd >= 0)
            close(p->pidfd);
    }
    if (p)
        procs_remove(&s->procs, id);
    output_drain(&s->output, id);
    steer_gen_exited(&s->steer, id);
    emit(s, (struct event){ .kind = EV_EXIT, .id = id, .code = code, .signal = sig });
}

static void on_adopted_exit(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    struct supervisor *s = h->loop->data;
    unsigned id = (unsigned)(uintptr_t)h->data;
    uv_poll_stop(h);
    log_debug("adopted generation %u exited (its status goes to its parent, not to us)", id);
    supervisor_emit_exit(s, id, -1, 0);
}

/* Where the host gives no fd to watch a process by (Linux before 5.3, a
 * sandbox): how often an adopted generation is asked whether it lives.
 * Its death is noticed this late at worst; each look costs a kill(pid, 0)
 * and a read of /proc/PID/stat (bench/adopted_watch.sh measures it). */
#define ADOPTED_POLL_MS 100

static void on_adopted_tick(uv_timer_t *t)
{
    struct supervisor *s = t->loop->data;
    unsigned id = (unsigned)(uintptr_t)t->data;
    struct proc *p = procs_by_id(&s->procs, id);
    if (!p)
        return;
    /* An error (a /proc that cannot be read now) is no news: ask again. */
    if (os_proc_alive(p->pid, p->start_ticks) != 0)
        return;
    uv_timer_stop(t);
    log_debug("adopted generation %u exited (its status goes to its parent, not to us)", id);
    supervisor_emit_exit(s, id, -1, 0);
}

void supervisor_watch_adopted(struct supervisor *s, struct proc *p)
{
    p->adopted = 1;
    int fd = os_proc_watch_fd(p->pid), r = UV_ENOMEM;
    uv_poll_t *h = fd >= 0 ? malloc(sizeof *h) : NULL;
    if (h && (r = uv_poll_init(s->loop, h, fd)) == 0) {
        p->pidfd = fd;
        p->watch = h;
        h->data = (void *)(uintptr_t)p->id;
        uv_poll_start(h, UV_READABLE, on_adopted_exit);
        return;
    }
    free(h);
    if (fd >= 0) {
        log_warn("generation %u (pid %d): cannot poll its pidfd (%s): polling the process instead",
                 p->id, (int)p->pid, uv_strerror(r));
        close(fd);
    } else if (fd != -ESRCH) {
        /* ESRCH: it ended already; the first tick says so. */
        log_info("generation %u (pid %d): no pidfd (%s): watching it every %d ms", p->id,
                 (int)p->pid, strerror(-fd), ADOPTED_POLL_MS);
    }
    uv_timer_t *t = malloc(sizeof *t);
    if (!t || uv_timer_init(s->loop, t) < 0) {
        free(t);
        log_error("generation %u (pid %d): out of memory: its exit will go unnoticed", p->id,
                  (int)p->pid);
        return;
    }
    p->watch = t;
    t->data = (void *)(uintptr_t)p->id;
    uv_timer_start(t, on_adopted_tick, ADOPTED_POLL_MS, ADOPTED_POLL_MS);
}

/* --- the host ------------------------------------------------------------ */

/* Probes what the host gives, once, and says it in one line: which
 * mechanisms run natively, which fall back (and how), which are lost. */
static void host_report(struct supervisor *s)
{
    s->nhost = os_host_report(s->host, OS_HOST_MECHANISMS);
    const char *why;
    struct os_mechanism *m = &s->host[s->nhost++];
    *m = (struct os_mechanism){ .name = "memfd_seals", .support = OS_NATIVE };
    if (!shmfd_host_seals(&why)) {
        m->support = OS_FALLBACK;
        snprintf(m->detail, sizeof m->detail,
                 "%s; unlinked files, unsealed: state blobs checked whole at every open", why);
    }
    /* "native: a, b; fallback: c (how); lost: d (what)", cut at its size. */
    char line[2048];
    size_t len = 0;
    for (int level = OS_NATIVE; level <= OS_LOST; level++) {
        const char *sep = len ? "; " : "";
        for (size_t i = 0; i < s->nhost && len < sizeof line; i++) {
            const struct os_mechanism *h = &s->host[i];
            if ((int)h->support != level)
                continue;
            int n = snprintf(line + len, sizeof line - len, "%s%s%s%s%s%s%s", sep,
                             *sep == ',' ? "" : os_support_name(h->support),
                             *sep == ',' ? "" : ": ", h->name, *h->detail ? " (" : "", h->detail,
                             *h->detail ? ")" : "");
            len = n < 0 ? sizeof line : len + (size_t)n;
            sep = ", ";
        }
    }
    log_info("host: %s", line);
}

/* --- processes ----------------------------------------------------------- */

/* Every child is reaped here: generations' main processes (reported) and
 * anything else that became ours as subreaper (just reaped). */
void supervisor_reap(struct supervisor *s)
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
        if (part_reaped(s, pid, st))
            continue;
        struct proc *p = procs_by_pid(&s->procs, pid);
        if (!p) {
            log_debug("reaped pid %d (not a generation's main process)", (int)pid);
            continue;
        }
        supervisor_emit_exit(s, p->id, WIFEXITED(st) ? WEXITSTATUS(st) : -1,
                             WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    }
}

/* --- notify -------------------------------------------------------------- */

/* Which generation sent this? Its main process, a process of its session
 * (each generation leads one: spawn.c; workers stay in it, and no other
 * process can join it), or failing that a descendant (found through /proc
 * parent links, for apps that start sessions of their own). Not a process
 * group: any process of the same user may join one. */
static struct proc *sender(struct supervisor *s, pid_t pid)
{
    struct proc *p = procs_by_pid(&s->procs, pid);
    if (p)
        return p;
    pid_t sid = getsid(pid);
    if (sid > 0 && (p = procs_by_pid(&s->procs, sid)))
        return p;
    for (int depth = 0; depth < 16 && pid > 1; depth++) {
        struct os_proc_stat st;
        if (os_proc_stat(pid, &st) < 0)
            return NULL;
        pid = st.ppid;
        if ((p = procs_by_pid(&s->procs, pid)))
            return p;
    }
    return NULL;
}

/* A state blob's checksum was verified off the loop: it is stored now. */
static void on_state_checked(struct handover *h, unsigned id, const char *name)
{
    emit(h->data, (struct event){ .kind = EV_STORED, .id = id, .name = name });
}

static void on_notify(struct notify *n, pid_t pid, const struct notify_msg *m, int *fds,
                      size_t nfds)
{
    struct supervisor *s = n->data;
    struct proc *p = sender(s, pid);
    if (!p) {
        for (size_t i = 0; i < nfds; i++)
            close(fds[i]);
        log_warn("notify: message from pid %d, which is no generation of ours: ignored", (int)pid);
        return;
    }
    unsigned id = p->id;
    if (m->status)
        snprintf(p->status, sizeof p->status, "%s", m->status);
    if (nfds > 0 || m->fdstore || m->fdstoreremove) {
        const char *name = handover_notify(&s->handover, id, m, fds, nfds, clock_mono());
        if (name)
            emit(s, (struct event){ .kind = EV_STORED, .id = id, .name = name });
    }
    if (m->ready)
        emit(s, (struct event){ .kind = EV_READY, .id = id });
    if (m->stopping)
        emit(s, (struct event){ .kind = EV_STOPPING, .id = id });
}

/* The control commands are base/commands.c's sent to the supervisor
 * (CMD_SENT): the loop answers what it holds, a part answers its own
 * (upgrade), and the rest are the runtime's decisions, forwarded as
 * requests. */
static const struct {
    const char *name;
    void (*answer)(struct supervisor *s, uint64_t req, json_t *args);
} answers[] = {
    { "events", answer_events },
    { "logs", answer_logs },
    { "stats", answer_stats },
    { "status", answer_status },
};

static void on_control(struct control *c, uint64_t req, const char *cmd, json_t *args)
{
    struct supervisor *s = c->data;
    const struct command *known = commands_find(cmd);
    if (!known || !(known->facts & CMD_SENT)) {
        char names[128] = "";
        size_t n;
        const struct command *t = commands_all(&n);
        for (size_t i = 0; i < n; i++)
            if (t[i].facts & CMD_SENT)
                snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s",
                         *names ? ", " : "", t[i].name);
        control_reply_error(c, req, "unknown command '%s' (known: %s)", cmd, names);
        return;
    }
    for (size_t i = 0; i < s->nparts; i++)
        if (s->parts[i].command && strcmp(cmd, s->parts[i].command) == 0) {
            s->parts[i].answer(s->parts[i].ctx, req, args);
            return;
        }
    for (size_t i = 0; i < sizeof answers / sizeof answers[0]; i++)
        if (strcmp(cmd, answers[i].name) == 0) {
            answers[i].answer(s, req, args);
            return;
        }
    char why[64];
    snprintf(why, sizeof why, "baton %s", cmd);
    /* `baton reload --dry-run`: the runtime checks the files, applies nothing. */
    if (strcmp(cmd, "reload") == 0 && json_is_true(json_object_get(args, "dry_run")))
        cmd = "reload_check";
    emit(s, (struct event){ .kind = EV_REQUEST, .id = req, .name = cmd, .why = why });
}

/* --- signals ------------------------------------------------------------- */

static void on_signal(uv_signal_t *h, int signum)
{
    struct supervisor *s = h->data;
    switch (signum) {
    case SIGCHLD: supervisor_reap(s); break;
    case SIGHUP:
        emit(s, (struct event){ .kind = EV_REQUEST, .name = "restart", .why = "SIGHUP" });
        break;
    case SIGTERM:
    case SIGINT:
        if (s->stop_signals++ == 0) {
            log_info("%s: stopping gracefully (send it again to kill every generation now)",
                     strsignal(signum));
            emit(s, (struct event){ .kind = EV_REQUEST, .name = "stop", .why = strsignal(signum) });
        } else {
            log_warn("%s again: killing every generation now", strsignal(signum));
            procs_kill_all(&s->procs);
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

/* core.shutdown(code): the runtime is done; the loop ends once what is
 * already written has been sent. */
static void shutdown_loop(void *owner, int code)
{
    struct supervisor *s = owner;
    if (s->shutting_down)
        return;
    s->shutting_down = 1;
    s->exit_code = code;
    if (s->procs.len > 0) {
        log_warn("shutting down with %zu generation(s) still running: killing them", s->procs.len);
        procs_kill_all(&s->procs);
    }
    for (size_t i = 0; i < sizeof s->signals / sizeof s->signals[0]; i++)
        uv_close((uv_handle_t *)&s->signals[i], NULL);
    for (size_t i = 0; i < s->nparts; i++)
        if (s->parts[i].stop)
            s->parts[i].stop(s->parts[i].ctx);
    timers_close(&s->timers);
    watches_close(&s->watches);
    steer_stop(&s->steer);
    probe_cancel_all();
    output_close(&s->output);
    notify_close(&s->notify);
    handover_free(&s->handover);
    metrics_http_close(&s->metrics);
    control_close(&s->control);
}

/* --- start-up ------------------------------------------------------------ */

int supervisor_init(struct supervisor *s, uv_loop_t *loop)
{
    memset(s, 0, sizeof *s);
    /* First: what a service manager passed (fds at 3..) and its socket. */
    manager_init(&s->manager);
    s->loop = loop;
    s->notify.fd = -1;
    s->stats.fd = -1;
    s->metrics_listener.fd = -1;
    s->handover.staged = -1;
    s->relay = (struct event_sink){ .event = relay_event, .query = relay_query, .ctx = s };
    s->started = clock_mono();
    s->image.started_at = clock_unix();
    loop->data = s; /* for handles that carry another datum (adopted processes) */
    if (os_exe_path(s->image.binary, sizeof s->image.binary) < 0)
        s->image.binary[0] = '\0';
    int r = runtime_dir(s->rundir, sizeof s->rundir);
    if (r < 0)
        log_error("runtime folder %s: %s", s->rundir,
                  r == -EPERM ? "not ours or not mode 0700" : strerror(-r));
    return r;
}

static int bind_listeners(struct supervisor *s)
{
    int r;
    for (size_t i = 0; i < s->cfg.nlisteners; i++) {
        struct listener *l = &s->cfg.listeners[i];
        char err[512];
        if (l->per_generation) {
            log_info("'%s' (fd %zu): each generation gets its own, on %s", l->name, 3 + i,
                     l->address);
            continue;
        }
        if (l->steer) {
            log_info("'%s' (fd %zu): steered, each generation a member of one group on %s", l->name,
                     3 + i, l->address);
            continue;
        }
        /* A socket the service manager passed under this name (socket
         * activation) is used as it is; else the supervisor binds. */
        int fd = manager_take(&s->manager, l->name);
        if (fd >= 0 && listener_adopt(l, fd, err, sizeof err) < 0) {
            close(fd);
            log_error("%s", err);
            return -1;
        }
        char bound[256];
        if (fd >= 0 && listener_bound_as_configured(l, bound, sizeof bound) == 0)
            log_warn("listener '%s': the socket the service manager passed under this name is "
                     "bound to %s, the service file says %s: using the passed one",
                     l->name, bound, l->address);
        if (fd < 0 && (r = listener_bind(l, err, sizeof err)) < 0) {
            pid_t holder;
            char comm[64];
            if (r == -EADDRINUSE && l->kind == LISTENER_TCP &&
                port_holder((const struct sockaddr *)&l->addr, &holder, comm, sizeof comm) == 0)
                log_error("%s: held by pid %d (%s), which this supervisor cannot adopt (a "
                          "generation a killed supervisor left serves on, say): stop it, or give "
                          "this service another address",
                          err, (int)holder, comm);
            else
                log_error("%s", err);
            return -1;
        }
        char addr[256];
        listener_local_address(l, addr, sizeof addr);
        log_info("listening on %s as '%s' (fd %zu in each generation)%s", addr, l->name, 3 + i,
                 l->passed ? ", passed by the service manager" : "");
        /* One it bound itself goes to the manager's fd store: if the
         * supervisor dies, the manager restarts it with the same socket, and
         * connections wait in its queue meanwhile instead of being refused.
         * One the manager passed, it holds already. */
        /* Not a unix one: its file goes when baton exits, and a socket
         * given back without its path would reach nobody. */
        r = l->passed || l->kind == LISTENER_UNIX ? 0
                                                  : manager_store_fd(&s->manager, l->name, l->fd);
        if (r < 0)
            log_warn("listener '%s': FDSTORE=1 to the service manager: %s", l->name, strerror(-r));
        else if (r > 0)
            log_info("listener '%s' kept in the service manager's fd store too (FDSTORE=1)",
                     l->name);
    }
    manager_close_untaken(&s->manager);
    return 0;
}

static int open_metrics(struct supervisor *s, const json_t *carried_doc)
{
    char err[512];
    struct listener *m = &s->metrics_listener;
    m->name = "metrics";
    m->address = s->cfg.metrics;
    m->backlog = 64;
    s->metrics.data = s;
    /* After an upgrade, the socket the image before this one bound. */
    int carried = carried_int(carried_doc, "metrics", -1);
    if (listener_parse(m, m->address, err, sizeof err) < 0 ||
        (carried < 0 && listener_bind(m, err, sizeof err) < 0)) {
        log_error("metrics endpoint: %s", err);
        return -1;
    }
    if (carried >= 0)
        m->fd = carried;
    int r = metrics_http_open(&s->metrics, s->loop, m->fd, answer_page);
    if (r < 0) {
        log_error("metrics endpoint %s: %s", m->address, uv_strerror(r));
        return -1;
    }
    char addr[256];
    listener_local_address(m, addr, sizeof addr);
    log_info("metrics on http://%s/metrics, readiness on /ready", addr + strlen("tcp://"));
    return 0;
}

int supervisor_setup(struct supervisor *s, const json_t *carried)
{
    int r;
    if ((r = nofile_raise()) < 0)
        log_warn("cannot raise the open-file limit: %s", strerror(-r));
    /* What it may hold at once: the listeners, the fd store, the control
     * and metrics clients at their caps, and some 32 of its own (loop,
     * sockets, the stats region, a spawn's pipe). */
    char what[160];
    snprintf(what, sizeof what, "%zu listeners, fdstore_max %u, %d control and %d metrics clients",
             s->cfg.nlisteners, s->cfg.fdstore_max, CONTROL_MAX_CLIENTS,
             s->cfg.metrics ? METRICS_MAX_CLIENTS : 0);
    nofile_check(s->cfg.nlisteners + s->cfg.fdstore_max + CONTROL_MAX_CLIENTS +
                     (s->cfg.metrics ? METRICS_MAX_CLIENTS : 0) + 32,
                 what);
    /* A takeover (takeover.h) has its listeners and stats region already. */
    if (!carried && bind_listeners(s) < 0)
        return -1;
    if ((r = steer_init(&s->steer, s->loop, s->cfg.listeners, s->cfg.nlisteners)) < 0) {
        log_error("steered listeners: %s", strerror(-r));
        return -1;
    }
    handover_init(&s->handover, s->loop, s->cfg.fdstore_max, s->cfg.state_name,
                  s->cfg.state_max_size);
    if ((r = output_init(&s->output, s->loop)) < 0) {
        log_error("output ring: %s", strerror(-r));
        return -1;
    }
    s->handover.on_checked = on_state_checked;
    s->handover.data = s;
    if (!carried && (r = stats_create(&s->stats, s->cfg.stats_capacity)) < 0) {
        log_error("stats region (%u metrics): %s", s->cfg.stats_capacity, strerror(-r));
        return -1;
    }
    if (s->cfg.metrics && open_metrics(s, carried) < 0)
        return -1;
    /* A takeover keeps the path: the generations it adopts know that one.
     * Generations that run as another user (`user`, `group`) cannot enter
     * the runtime folder (0700, ours): their socket goes in a folder made
     * for that user alone (notify_private_dir). */
    const char *carried_path = json_string_value(json_object_get(carried, "notify_path"));
    int as_user = s->cfg.set_uid || s->cfg.set_gid;
    uid_t app_uid = s->cfg.set_uid ? s->cfg.uid : geteuid();
    gid_t app_gid = s->cfg.set_gid ? s->cfg.gid : getegid();
    int carried_notify = carried_int(carried, "notify", -1);
    if (carried_path && as_user && carried_notify < 0) {
        /* Taken back after a SIGKILL: that socket and its folder are the
         * generations' user's now, and removing a path in a folder another
         * user controls is only safe through the folder's fd. A new one; the
         * generations adopted keep the old path, so what they send later
         * goes unheard. */
        log_warn("notify socket %s belongs to user %u: removed, a new one for the generations "
                 "to come (the ones adopted are not heard any more)",
                 carried_path, (unsigned)app_uid);
        notify_forget_private(carried_path);
        carried_path = NULL;
    }
    char notify_dir[108] = "";
    if (!carried_path && as_user &&
        (r = notify_private_dir(notify_dir, sizeof notify_dir, s->rundir, app_uid, app_gid)) < 0) {
        log_error("notify socket's folder for user %u: %s", (unsigned)app_uid, strerror(-r));
        return -1;
    }
    int n = carried_path ? snprintf(s->notify_path, sizeof s->notify_path, "%s", carried_path)
            : as_user ? snprintf(s->notify_path, sizeof s->notify_path, "%s/%s.notify", notify_dir,
                                 s->cfg.name)
                      : snprintf(s->notify_path, sizeof s->notify_path, "%s/%s.%d.notify",
                                 s->rundir, s->cfg.name, (int)getpid());
    if (n < 0 || n >= 108) { /* sun_path */
        log_error("notify socket path under %s is too long for a unix socket", s->rundir);
        return -1;
    }
    s->notify.data = s;
    if ((r = notify_open_fd(&s->notify, s->loop, s->notify_path, carried_notify, on_notify)) < 0) {
        log_error("notify socket %s: %s", s->notify_path, unixpath_strerror(r));
        return -1;
    }
    if (as_user) {
        char dir[sizeof s->notify_path];
        snprintf(dir, sizeof dir, "%s", s->notify_path);
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = '\0';
        if ((r = notify_allow(&s->notify, app_uid, app_gid, slash ? dir : NULL)) < 0) {
            log_error("notify socket %s: cannot give it to user %u: %s", s->notify_path,
                      (unsigned)app_uid, strerror(-r));
            return -1;
        }
    }
    s->control.data = s;
    if ((r = control_open_fd(&s->control, s->loop, s->cfg.control,
                             carried_int(carried, "control", -1), on_control)) < 0) {
        log_error("control socket %s: %s", s->cfg.control,
                  r == UV_EADDRINUSE || r == -EADDRINUSE ? "another supervisor is running there"
                  : r == -EEXIST                         ? unixpath_strerror(r)
                                                         : uv_strerror(r));
        return -1;
    }
    /* Orphans of our apps (a worker whose master died) are ours to reap,
     * not init's: nothing is left behind as a zombie. */
    if ((r = os_become_subreaper()) < 0)
        log_warn("cannot become a child subreaper: %s", strerror(-r));
    host_report(s);
    static const int handled[] = { SIGCHLD, SIGHUP, SIGTERM, SIGINT };
    r = 0;
    for (size_t i = 0; i < sizeof handled / sizeof handled[0] && r == 0; i++)
        r = start_signal(s, &s->signals[i], handled[i]);
    if (r < 0) {
        log_error("cannot install signal handlers");
        return -1;
    }
    signal(SIGPIPE, SIG_IGN);
    s->launcher = (struct launcher){ .output = &s->output,
                                     .cfg = &s->cfg,
                                     .handover = &s->handover,
                                     .stats = &s->stats,
                                     .procs = &s->procs,
                                     .notify_path = s->notify_path,
                                     .steer = &s->steer };
    s->api = (struct core_api){
        .loop = s->loop,
        .launcher = &s->launcher,
        .procs = &s->procs,
        .timers = &s->timers,
        .watches = &s->watches,
        .handover = &s->handover,
        .stats = &s->stats,
        .control = &s->control,
        .config = &s->cfg,
        .output = &s->output,
        .steer = &s->steer,
        .manager = &s->manager,
        .sink = &s->relay,
        .shutdown = shutdown_loop,
        .owner = s,
    };
    /* Timers and watches report to the sink, which is set at start. */
    timers_init(&s->timers, s->loop, &s->relay);
    watches_init(&s->watches, s->loop, &s->relay);
    return 0;
}

void supervisor_start(struct supervisor *s, const struct event_sink *sink, const json_t *carried,
                      const char *how)
{
    s->sink = *sink;
    log_info("supervisor of '%s' running (pid %d), control socket %s", s->cfg.name, (int)getpid(),
             s->cfg.control);
    /* After a takeover, the runtime carries on from what it carried. */
    emit(s, (struct event){ .kind = EV_START, .data = carried, .name = carried ? how : NULL });
}

static void close_handle(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

int supervisor_finish(struct supervisor *s)
{
    if (s->sink.event)
        uv_run(s->loop, UV_RUN_DEFAULT);
    if (!s->shutting_down) {
        /* Set-up failed part way: close what it opened. */
        s->shutting_down = 1;
        notify_close(&s->notify);
        control_close(&s->control);
        uv_walk(s->loop, close_handle, NULL);
    }
    uv_run(s->loop, UV_RUN_DEFAULT);
    listener_close(&s->metrics_listener);
    handover_free(&s->handover);
    output_close(&s->output);
    stats_close(&s->stats);
    steer_close(&s->steer);
    config_free(&s->cfg); /* closes the listeners */
    manager_free(&s->manager);
    procs_free(&s->procs);
    return s->exit_code;
}
