/* takeover.c: what a supervisor writes of itself, and takes back (see
 * takeover.h and carry.h). */
#include "handoff/takeover.h"

#include "handoff/carry.h"
#include "base/clock.h"
#include "handoff/keeper.h"
#include "base/log.h"
#include "loop/stats_own.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static void set_cloexec(int fd)
{
    int fl = fcntl(fd, F_GETFD);
    if (fl >= 0)
        fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
}

json_t *takeover_collect(void *owner, json_t *runtime, int output)
{
    struct supervisor *s = owner;
    if (!runtime && s->sink.query)
        runtime = s->sink.query(s->sink.ctx, "carry", clock_mono(), 0);
    json_t *ls = json_array(), *procs = json_array();
    for (size_t i = 0; i < s->cfg.nlisteners; i++) {
        const struct listener *l = &s->cfg.listeners[i];
        json_array_append_new(ls, json_pack("{s:s, s:s, s:i, s:b}", "name", l->name, "address",
                                            l->address, "fd", l->fd, "passed", l->passed));
    }
    for (size_t i = 0; i < s->procs.len; i++) {
        const struct proc *p = &s->procs.v[i];
        json_array_append_new(procs, json_pack("{s:i, s:i, s:f, s:I, s:s, s:b}", "id", (int)p->id,
                                               "pid", (int)p->pid, "started", p->started,
                                               "start_ticks", (json_int_t)p->start_ticks, "status",
                                               p->status, "adopted", p->pidfd >= 0));
    }
    uv_os_fd_t control_fd = -1;
    if (s->control.open)
        uv_fileno((uv_handle_t *)&s->control.server, &control_fd);
    json_t *doc = json_pack(
        "{s:s, s:i, s:s, s:s, s:s, s:i, s:f, s:{s:s, s:s, s:f, s:i, s:f}, s:s, s:o, s:i, s:i, "
        "s:i, s:i, s:o, s:i, s:o, s:i, s:o, s:o, s:I, s:s}",
        "format", CARRY_FORMAT, "version", CARRY_VERSION, "baton", BATON_VERSION, "service",
        s->cfg.name, "file", s->file, "pid", (int)getpid(), "started", s->started, "image",
        "binary", s->image.binary, "version", BATON_VERSION, "started_at", s->image.started_at,
        "upgrades", (int)s->image.upgrades, "adopted_at", s->image.adopted_at, "manager_notify",
        s->manager.notify, "listeners", ls, "notify", s->notify.fd, "control", (int)control_fd,
        "stats", s->stats.fd, "metrics", s->metrics_listener.fd, "procs", procs, "last_id",
        (int)s->procs.last_id, "fdstore", handover_carry(&s->handover), "staged",
        s->handover.staged, "pipes", output_pipes_json(&s->output), "output",
        output_json(&s->output, 0, 0, 0), "output_next", (json_int_t)s->output.next_seq,
        "notify_path", s->notify_path);
    if (doc && !output) /* the copy on disk: small, written often */
        json_object_del(doc, "output");
    if (doc && s->keeper_fd >= 0) /* an upgrade keeps the keeper */
        json_object_set_new(doc, "keeper",
                            json_pack("{s:i, s:i}", "fd", s->keeper_fd, "pid", (int)s->keeper_pid));
    if (doc && runtime)
        json_object_set_new(doc, "runtime", runtime);
    else
        json_decref(runtime);
    return doc;
}

int takeover_check(const json_t *doc, const struct service_config *cfg, char *err, size_t errlen)
{
    const char *name = json_string_value(json_object_get(doc, "service"));
    if (!name || strcmp(name, cfg->name) != 0) {
        snprintf(err, errlen, "the carried state is of service '%s', the service file names '%s'",
                 name ? name : "?", cfg->name);
        return -EINVAL;
    }
    json_t *ls = json_object_get(doc, "listeners");
    if (json_array_size(ls) != cfg->nlisteners) {
        snprintf(err, errlen,
                 "the service has %zu listener(s), the service file now names %zu: a change of "
                 "listeners needs a new `baton run`, not a takeover",
                 json_array_size(ls), cfg->nlisteners);
        return -EINVAL;
    }
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        json_t *l = json_array_get(ls, i);
        const char *n = json_string_value(json_object_get(l, "name"));
        const char *a = json_string_value(json_object_get(l, "address"));
        if (!n || !a || strcmp(n, cfg->listeners[i].name) != 0 ||
            strcmp(a, cfg->listeners[i].address) != 0) {
            snprintf(err, errlen,
                     "listener %zu is '%s' on %s, the service file now says '%s' on %s: a change "
                     "of listeners needs a new `baton run`, not a takeover",
                     i + 1, n ? n : "?", a ? a : "?", cfg->listeners[i].name,
                     cfg->listeners[i].address);
            return -EINVAL;
        }
    }
    return 0;
}

int takeover_sockets(struct supervisor *s)
{
    const json_t *doc = s->carried;
    char err[512];
    json_t *ls = json_object_get(doc, "listeners");
    for (size_t i = 0; i < s->cfg.nlisteners; i++) {
        struct listener *l = &s->cfg.listeners[i];
        json_t *c = json_array_get(ls, i);
        int fd = carry_int(c, "fd", -1);
        if (l->per_generation)
            continue;
        if (fd < 0 || listener_adopt(l, fd, err, sizeof err) < 0) {
            log_error("listener '%s': the carried socket: %s", l->name,
                      fd < 0 ? "none was carried" : err);
            return -1;
        }
        set_cloexec(fd);
        l->passed = json_is_true(json_object_get(c, "passed"));
        char addr[256];
        listener_local_address(l, addr, sizeof addr);
        log_info("listening on %s as '%s' (fd %zu in each generation), carried over", addr, l->name,
                 3 + i);
    }
    int r, fd = carry_int(doc, "stats", -1);
    if (fd < 0 || (r = stats_attach(&s->stats, fd)) < 0) {
        log_error("the carried stats region: %s", fd < 0 ? "none" : strerror(-r));
        return -1;
    }
    set_cloexec(fd);
    static const char *const sockets[] = { "metrics", "notify", "control" };
    for (size_t k = 0; k < 3; k++)
        if ((fd = carry_int(doc, sockets[k], -1)) >= 0)
            set_cloexec(fd);
    const char *mn = json_string_value(json_object_get(doc, "manager_notify"));
    if (mn && !s->manager.notify[0])
        snprintf(s->manager.notify, sizeof s->manager.notify, "%s", mn);
    return 0;
}

void takeover_state(struct supervisor *s)
{
    json_t *doc = s->carried, *e;
    size_t i;
    json_t *img = json_object_get(doc, "image");
    if (s->adopting) { /* a new pid: its own start; the image says it took over */
        s->image.adopted_at = clock_unix();
    } else {
        s->started = json_number_value(json_object_get(doc, "started"));
        s->image.upgrades = (unsigned)carry_int(img, "upgrades", 0);
        s->image.adopted_at = json_number_value(json_object_get(img, "adopted_at"));
        if (strcmp(s->carried_how, "upgrade") == 0)
            s->image.upgrades++;
        else /* back on the old image: its own start */
            s->image.started_at = json_number_value(json_object_get(img, "started_at"));
    }
    json_t *up = json_object_get(doc, "upgrade");
    int fd = carry_int(up, "client", -1);
    if (fd >= 0)
        s->upgrade_client = control_adopt_client(&s->control, fd);
    json_array_foreach(json_object_get(doc, "fdstore"), i, e)
        set_cloexec(carry_int(e, "fd", -1));
    int staged = carry_int(doc, "staged", -1);
    if (staged >= 0)
        set_cloexec(staged);
    handover_restore(&s->handover, json_object_get(doc, "fdstore"), staged);
    output_restore(&s->output, json_object_get(doc, "output"));
    s->procs.last_id = (unsigned)carry_int(doc, "last_id", 0);
    json_array_foreach(json_object_get(doc, "procs"), i, e) {
        unsigned id = (unsigned)carry_int(e, "id", 0);
        pid_t pid = (pid_t)carry_int(e, "pid", 0);
        unsigned long long ticks = (unsigned long long)json_integer_value(
            json_object_get(e, "start_ticks"));
        /* Never trusted blindly: the process must be there, and be the
         * same one (its start time), not another that got its pid. */
        char proc[64];
        struct stat st;
        snprintf(proc, sizeof proc, "/proc/%d", (int)pid);
        int alive = id > 0 && pid > 1 && proc_start_ticks(pid) == ticks && ticks != 0 &&
                    stat(proc, &st) == 0 && st.st_uid == geteuid();
        struct proc *p = alive ? procs_add(&s->procs, id, pid,
                                           json_number_value(json_object_get(e, "started")))
                               : NULL;
        if (!p) {
            if (s->ngone < sizeof s->gone / sizeof s->gone[0])
                s->gone[s->ngone++] = id;
            log_warn("generation %u (pid %d) is gone: it ended while no supervisor watched it", id,
                     (int)pid);
            continue;
        }
        p->start_ticks = ticks;
        snprintf(p->status, sizeof p->status, "%s",
                 json_string_value(json_object_get(e, "status")) ?: "");
        if (json_is_true(json_object_get(e, "adopted")) || s->adopting)
            supervisor_watch_adopted(s, p);
    }
    json_array_foreach(json_object_get(doc, "pipes"), i, e) {
        int fd = carry_int(e, "fd", -1);
        if (fd < 0)
            continue;
        set_cloexec(fd);
        output_attach(&s->output, (unsigned)carry_int(e, "generation", 0),
                      carry_int(e, "stream", 2), fd);
    }
}

int takeover_orphaned(struct supervisor *s, char *err, size_t errlen)
{
    char path[PATH_MAX + 320], kp[PATH_MAX + 320];
    carry_paths(s->rundir, s->cfg.name, s->cfg.control, path, sizeof path, kp, sizeof kp);
    json_t *doc = NULL;
    int r = carry_read_file(path, &doc, err, errlen);
    if (r == -ENOENT)
        return 0;
    if (r < 0) {
        log_warn("not taking over: %s", err);
        return 0;
    }
    pid_t pid = (pid_t)carry_int(doc, "pid", 0);
    unsigned long long ticks = (unsigned long long)json_integer_value(
        json_object_get(doc, "start_ticks"));
    /* One that answers on its control socket runs: refused at once. One
     * killed a moment ago may still be ending: 2 s for it. */
    struct sockaddr_un un = { .sun_family = AF_UNIX };
    snprintf(un.sun_path, sizeof un.sun_path, "%s", s->cfg.control);
    int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int live = c >= 0 && connect(c, (struct sockaddr *)&un, sizeof un) == 0;
    if (c >= 0)
        close(c);
    if (live) {
        snprintf(err, errlen, "control socket %s: another supervisor is running there (pid %d)",
                 s->cfg.control, (int)pid);
        json_decref(doc);
        return -1;
    }
    for (int i = 0; i < 40 && pid > 0 && ticks && proc_start_ticks(pid) == ticks; i++)
        usleep(50 * 1000);
    if (pid > 0 && ticks && proc_start_ticks(pid) == ticks) {
        snprintf(err, errlen, "the supervisor of '%s' (pid %d) still runs", s->cfg.name, (int)pid);
        json_decref(doc);
        return -1;
    }
    json_t *k = json_object_get(doc, "keeper");
    const char *kpath = json_string_value(json_object_get(k, "path"));
    static char heads[KEEPER_MAX_FDS][32];
    int fds[KEEPER_MAX_FDS];
    pid_t kpid = (pid_t)carry_int(k, "pid", 0);
    int n = -ENOENT;
    /* The keeper answers once it has seen the supervisor's death, which
     * may come a moment after ours: 2 s for it, while it lives. */
    for (int i = 0; kpath && i < 40; i++) {
        n = keeper_take(kpath, kpid, heads, fds, KEEPER_MAX_FDS, err, errlen);
        if ((n != -ENOENT && n != -ECONNREFUSED) || kpid <= 0 || kill(kpid, 0) < 0)
            break;
        usleep(50 * 1000);
    }
    if (n < 0) {
        log_warn("the supervisor (pid %d) before this one died, and its service cannot be taken "
                 "back: %s; starting afresh",
                 (int)pid, kpath ? err : "no keeper");
        unlink(path);
        json_decref(doc);
        return 0;
    }
    /* What the keeper held replaces the dead supervisor's fd numbers;
     * what it did not hold (the fd store, the sockets bound at a path) is
     * made anew. */
    json_t *ls = json_object_get(doc, "listeners"), *pipes = json_array(), *l;
    size_t i;
    json_array_foreach(ls, i, l)
        json_object_set_new(l, "fd", json_integer(-1));
    json_object_set_new(doc, "stats", json_integer(-1));
    for (int j = 0; j < n; j++) {
        unsigned a, b;
        if (sscanf(heads[j], "L %u", &a) == 1 && a < json_array_size(ls))
            json_object_set_new(json_array_get(ls, a), "fd", json_integer(fds[j]));
        else if (strcmp(heads[j], "S") == 0)
            json_object_set_new(doc, "stats", json_integer(fds[j]));
        else if (sscanf(heads[j], "P %u %u", &a, &b) == 2)
            json_array_append_new(pipes, json_pack("{s:i, s:i, s:i}", "generation", (int)a,
                                                   "stream", (int)b, "fd", fds[j]));
        else
            close(fds[j]);
    }
    json_object_set_new(doc, "pipes", pipes);
    static const char *const gone[] = { "notify", "control", "metrics", "staged" };
    for (size_t g = 0; g < 4; g++)
        json_object_set_new(doc, gone[g], json_integer(-1));
    json_object_set_new(doc, "fdstore", json_array());
    json_object_del(doc, "upgrade");
    json_object_del(doc, "keeper");
    s->carried = doc;
    s->adopting = 1;
    snprintf(s->carried_how, sizeof s->carried_how, "adoption");
    log_info("the supervisor before this one (pid %d) died: taking its service back (%d fd(s) "
             "from its keeper)",
             (int)pid, n);
    return 1;
}

void takeover_finish(struct supervisor *s)
{
    for (size_t i = 0; i < s->ngone; i++)
        supervisor_emit_exit(s, s->gone[i], -1, 0);
    s->ngone = 0;
    json_decref(s->carried);
    s->carried = NULL;
}
