/* takeover.c: what a supervisor writes of itself, and takes back (see
 * takeover.h and carry.h). */
#include "handoff/takeover.h"

#include "handoff/carry.h"
#include "base/clock.h"
#include "base/unixpath.h"
#include "handoff/keeper.h"
#include "base/log.h"
#include "loop/listeners.h"
#include "loop/procs.h"

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

json_t *takeover_document(json_t *doc, json_t *runtime, json_t *keeper)
{
    if (!doc) {
        json_decref(runtime);
        json_decref(keeper);
        return NULL;
    }
    json_object_set_new(doc, "format", json_string(CARRY_FORMAT));
    json_t *members = json_object_get(json_object_get(doc, "steer"), "members");
    json_object_set_new(doc, "version", json_integer(json_array_size(members) ? CARRY_VERSION : 1));
    json_object_set_new(doc, "baton", json_string(BATON_VERSION));
    if (keeper) /* an upgrade keeps the keeper */
        json_object_set_new(doc, "keeper", keeper);
    if (runtime)
        json_object_set_new(doc, "runtime", runtime);
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

/* Binds the metrics endpoint ADDRESS for a takeover (the supervisor's
 * setup uses it as if carried). Returns its fd, or -1 with the reason. */
static int bind_metrics(const char *address, char *err, size_t errlen)
{
    struct listener m = { .name = "metrics", .address = (char *)address, .backlog = 64, .fd = -1 };
    char why[512];
    if (listener_parse(&m, address, why, sizeof why) < 0 ||
        listener_bind(&m, why, sizeof why) < 0) {
        snprintf(err, errlen,
                 "metrics endpoint: %s: not taking the service back; its keeper holds it for "
                 "the next `baton run`",
                 why);
        return -1;
    }
    return m.fd;
}

/* Binds the control socket at PATH for a takeover (the supervisor's setup
 * uses it as if carried), as control.c would: only over a stale socket of
 * ours, mode 0600. Returns its fd, or -1 with the reason. */
static int bind_control(const char *path, char *err, size_t errlen)
{
    struct sockaddr_un un = { .sun_family = AF_UNIX };
    int r = strlen(path) < sizeof un.sun_path ? unixpath_claim(path) : -ENAMETOOLONG;
    int s = r < 0 ? -1 : socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (r == 0 && s >= 0) {
        snprintf(un.sun_path, sizeof un.sun_path, "%s", path);
        mode_t old = umask(0177);
        if (bind(s, (struct sockaddr *)&un, sizeof un) < 0 || listen(s, 16) < 0)
            r = -errno;
        umask(old);
    } else if (r == 0) {
        r = -errno;
    }
    if (r < 0) {
        snprintf(err, errlen,
                 "control socket %s: %s: not taking the service back; its keeper holds it for "
                 "the next `baton run`",
                 path, r == -EEXIST || r == -EADDRINUSE ? unixpath_strerror(r) : strerror(-r));
        if (s >= 0)
            close(s);
        return -1;
    }
    return s;
}

/* The keeper's member of listener LI for generation GEN goes where the file
 * names it; one the file does not name joined after its last write: it is
 * its group's last (a slot past every other). */
static void steer_piece(json_t *members, unsigned li, unsigned gen, int fd)
{
    size_t i;
    json_t *m;
    json_array_foreach(members, i, m) {
        if ((unsigned)carry_int(m, "listener", -1) == li &&
            (unsigned)carry_int(m, "generation", 0) == gen) {
            json_object_set_new(m, "fd", json_integer(fd));
            return;
        }
    }
    json_array_append_new(members,
                          json_pack("{s:i, s:i, s:i, s:i}", "listener", (int)li, "generation",
                                    (int)gen, "slot", (int)(1000000 + gen), "fd", fd));
}

int takeover_orphaned(struct takeover *t, const char *rundir, const struct service_config *cfg,
                      char *err, size_t errlen)
{
    char path[PATH_MAX + 320], kp[PATH_MAX + 320];
    carry_paths(rundir, cfg->name, cfg->control, path, sizeof path, kp, sizeof kp);
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
    snprintf(un.sun_path, sizeof un.sun_path, "%s", cfg->control);
    int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int live = c >= 0 && connect(c, (struct sockaddr *)&un, sizeof un) == 0;
    if (c >= 0)
        close(c);
    if (live) {
        snprintf(err, errlen, "control socket %s: another supervisor is running there (pid %d)",
                 cfg->control, (int)pid);
        json_decref(doc);
        return -1;
    }
    for (int i = 0; i < 40 && pid > 0 && ticks && proc_start_ticks(pid) == ticks; i++)
        usleep(50 * 1000);
    if (pid > 0 && ticks && proc_start_ticks(pid) == ticks) {
        snprintf(err, errlen, "the supervisor of '%s' (pid %d) still runs", cfg->name, (int)pid);
        json_decref(doc);
        return -1;
    }
    /* What is not carried is bound before anything is taken: a run that
     * cannot have its control socket or metrics port fails here, touching
     * nothing. */
    int metrics = -1, control = bind_control(cfg->control, err, errlen);
    if (control < 0 || (cfg->metrics && (metrics = bind_metrics(cfg->metrics, err, errlen)) < 0)) {
        if (control >= 0) {
            close(control);
            unlink(cfg->control);
        }
        json_decref(doc);
        return -1;
    }
    json_t *k = json_object_get(doc, "keeper");
    const char *kpath = json_string_value(json_object_get(k, "path"));
    struct keeper_piece *pieces = NULL;
    pid_t kpid = (pid_t)carry_int(k, "pid", 0);
    int n = -ENOENT, conn = -1;
    /* The keeper answers once it has seen the supervisor's death, which
     * may come a moment after ours: 2 s for it, while it lives. */
    for (int i = 0; kpath && i < 40; i++) {
        n = keeper_take(kpath, kpid, &pieces, &conn, err, errlen);
        if ((n != -ENOENT && n != -ECONNREFUSED) || kpid <= 0 || kill(kpid, 0) < 0)
            break;
        usleep(50 * 1000);
    }
    if (n < 0) {
        log_warn("the supervisor (pid %d) before this one died, and its service cannot be taken "
                 "back: %s; starting afresh",
                 (int)pid, kpath ? err : "no keeper");
        if (metrics >= 0)
            close(metrics);
        close(control);
        unlink(cfg->control); /* bound again by the fresh start */
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
    /* Steered members: the keeper's, in the slots the file names. */
    json_t *st = json_object_get(doc, "steer");
    if (!json_is_object(st))
        json_object_set_new(doc, "steer", st = json_pack("{s:[], s:[]}", "members", "weights"));
    json_t *members = json_object_get(st, "members");
    if (!json_is_array(members))
        json_object_set_new(st, "members", members = json_array());
    json_array_foreach(members, i, l)
        json_object_set_new(l, "fd", json_integer(-1));
    for (int j = 0; j < n; j++) {
        unsigned a, b;
        const char *head = pieces[j].head;
        int fd = pieces[j].fd;
        if (sscanf(head, "L %u", &a) == 1 && a < json_array_size(ls))
            json_object_set_new(json_array_get(ls, a), "fd", json_integer(fd));
        else if (sscanf(head, "R %u %u", &a, &b) == 2)
            steer_piece(members, a, b, fd);
        else if (strcmp(head, "S") == 0)
            json_object_set_new(doc, "stats", json_integer(fd));
        else if (sscanf(head, "P %u %u", &a, &b) == 2)
            json_array_append_new(pipes, json_pack("{s:i, s:i, s:i}", "generation", (int)a,
                                                   "stream", (int)b, "fd", fd));
        else
            close(fd);
    }
    free(pieces); /* the fds are the document's now */
    json_object_set_new(doc, "pipes", pipes);
    static const char *const gone[] = { "notify", "staged" };
    for (size_t g = 0; g < sizeof gone / sizeof gone[0]; g++)
        json_object_set_new(doc, gone[g], json_integer(-1));
    json_object_set_new(doc, "metrics", json_integer(metrics));
    json_object_set_new(doc, "control", json_integer(control));
    json_object_set_new(doc, "fdstore", json_array());
    json_object_del(doc, "upgrade");
    json_object_del(doc, "keeper");
    t->doc = doc;
    t->adopting = 1;
    t->keeper_conn = conn;
    snprintf(t->how, sizeof t->how, "adoption");
    log_info("the supervisor before this one (pid %d) died: taking its service back (%d fd(s) "
             "from its keeper)",
             (int)pid, n);
    return 1;
}

void takeover_answer(const struct takeover *t, struct control *c, const char *binary)
{
    if (!t->client)
        return;
    if (strcmp(t->how, "upgrade") != 0) {
        control_reply_error(c, t->client, "%s", t->how);
        return;
    }
    json_t *up = json_object_get(t->doc, "upgrade");
    double took = clock_mono() - json_number_value(json_object_get(up, "since"));
    json_t *j = json_pack("{s:b, s:s, s:i, s:s, s:s, s:f}", "ok", 1, "message", "upgraded", "pid",
                          (int)getpid(), "version", BATON_VERSION, "binary", binary, "duration",
                          took);
    if (j)
        control_reply(c, t->client, j);
    else
        control_reply_error(c, t->client, "out of memory");
}
