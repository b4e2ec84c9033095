/* carried.c: the loop's part of the carried state (carry.h): what it
 * writes of what it holds, and how it takes that back, component by
 * component (see supervisor.h). The document's envelope, the keeper's part
 * and the runtime's are the hand-off's (handoff/takeover.h); run.c puts
 * them together. */
#include "loop/supervisor.h"

#include "base/clock.h"
#include "base/log.h"
#include "os/os.h"
#include "os/reuseport.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int carried_int(const json_t *obj, const char *key, int def)
{
    json_t *v = json_object_get(obj, key);
    return json_is_integer(v) ? (int)json_integer_value(v) : def;
}

/* A carried fd was inherited without close-on-exec (so that it survived
 * the exec): no generation may inherit it in turn. */
static void set_cloexec(int fd)
{
    int fl = fd >= 0 ? fcntl(fd, F_GETFD) : -1;
    if (fl >= 0)
        fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
}

/* The listeners as carried: they do not change while the supervisor
 * runs (a reload that would change them is refused), and a document is
 * written after every change: built once, the same object each time (the
 * carry file's writer keeps its text too: keeper_link.c). Whether it is
 * still the same is a compare of the fds as they were (one not bound
 * then, say), not a lookup in the document per listener per change. */
static json_t *listeners_carried(const struct supervisor *s)
{
    static json_t *ls;
    static const struct listener *of;
    static int *fds;
    static size_t nfds;
    size_t n = s->cfg.nlisteners;
    int same = ls && of == s->cfg.listeners && nfds == n;
    for (size_t i = 0; same && i < n; i++)
        same = fds[i] == s->cfg.listeners[i].fd;
    if (same)
        return json_incref(ls);
    json_decref(ls);
    free(fds);
    ls = json_array();
    fds = calloc(n ? n : 1, sizeof *fds);
    of = s->cfg.listeners;
    nfds = 0;
    if (!fds) { /* no memory: built afresh next time */
        json_decref(ls);
        ls = NULL;
        return NULL;
    }
    for (size_t i = 0; ls && i < n; i++) {
        const struct listener *l = &s->cfg.listeners[i];
        fds[i] = l->fd;
        json_array_append_new(ls, json_pack("{s:s, s:s, s:i, s:b}", "name", l->name, "address",
                                            l->address, "fd", l->fd, "passed", l->passed));
    }
    nfds = ls ? n : 0;
    return json_incref(ls);
}

/* The steered listeners' members, each with its slot in its group's
 * order, and the weights: the kernel keeps the order while the sockets
 * stay open, and a successor attaches programs by it, so it is carried,
 * never derived (steer.h). */
static json_t *steer_carried(const struct steer *s)
{
    json_t *members = json_array(), *weights = json_array();
    for (size_t i = 0; i < s->ngroups; i++)
        for (size_t j = 0; j < s->groups[i].n; j++) {
            const struct steer_member *m = &s->groups[i].v[j];
            json_array_append_new(members, json_pack("{s:i, s:i, s:i, s:i, s:b}", "listener",
                                                     (int)i, "generation", (int)m->gen, "slot",
                                                     (int)j, "fd", m->fd, "leaving", m->leaving));
        }
    for (size_t i = 0; i < s->nw; i++)
        json_array_append_new(weights,
                              json_pack("{s:i, s:i, s:f}", "generation", (int)s->w[i].gen, "weight",
                                        (int)s->w[i].weight, "zero_since", s->w[i].zero_since));
    return json_pack("{s:o, s:o}", "members", members, "weights", weights);
}

/* Takes the carried members back (after an upgrade the fds inherited;
 * after a death the keeper's, set in DOC by takeover_orphaned), group by
 * group in their slot order. A
 * member named but not handed over (it left, and the file was not written
 * again before the death) left its slot as the kernel does: the group's
 * last member moved into it. */
static void take_steer(struct supervisor *s, const json_t *doc)
{
    json_t *st = json_object_get(doc, "steer");
    json_t *members = json_object_get(st, "members"), *e;
    size_t n = json_array_size(members), k;
    if (n == 0)
        return;
    for (size_t li = 0; li < s->cfg.nlisteners; li++) {
        struct {
            unsigned gen;
            int fd, slot;
        } v[OS_STEER_MAX];
        size_t nv = 0;
        json_array_foreach(members, k, e) {
            int fd = carried_int(e, "fd", -1);
            if ((size_t)carried_int(e, "listener", -1) != li)
                continue;
            if (!s->cfg.listeners[li].steer || nv == OS_STEER_MAX) {
                if (fd >= 0)
                    close(fd);
                continue;
            }
            size_t at = nv++; /* insertion by slot: few members */
            int slot = carried_int(e, "slot", INT_MAX);
            while (at > 0 && v[at - 1].slot > slot) {
                v[at] = v[at - 1];
                at--;
            }
            v[at].gen = (unsigned)carried_int(e, "generation", 0);
            v[at].fd = fd;
            v[at].slot = slot;
        }
        for (size_t j = 0; j < nv;) {
            if (v[j].fd >= 0) {
                j++;
                continue;
            }
            log_warn("listener '%s': generation %u's steered member was not handed over: the "
                     "group's last member took its slot",
                     s->cfg.listeners[li].name, v[j].gen);
            v[j] = v[--nv];
        }
        for (size_t j = 0; j < nv; j++) {
            unsigned w = 0;
            double zero = 0;
            size_t wi;
            json_t *we;
            json_array_foreach(json_object_get(st, "weights"), wi, we)
                if ((unsigned)carried_int(we, "generation", 0) == v[j].gen) {
                    w = (unsigned)carried_int(we, "weight", 0);
                    zero = json_number_value(json_object_get(we, "zero_since"));
                }
            set_cloexec(v[j].fd);
            int r = steer_restore(&s->steer, li, v[j].gen, v[j].fd, w, zero);
            if (r < 0) {
                log_error("listener '%s': generation %u's steered member: %s",
                          s->cfg.listeners[li].name, v[j].gen, strerror(-r));
                close(v[j].fd);
            }
        }
        if (nv)
            log_info("listener '%s': %zu steered member(s) carried over, in their order",
                     s->cfg.listeners[li].name, nv);
    }
    int r = steer_restored(&s->steer);
    if (r < 0)
        log_warn("steering programs: %s (new connections split by hash)", strerror(-r));
    /* A member whose generation exited already (it was leaving) leaves
     * again: nothing else would close it. */
    unsigned exited[OS_STEER_MAX];
    size_t ne = 0;
    for (size_t li = 0; li < s->steer.ngroups; li++)
        for (size_t j = 0; j < s->steer.groups[li].n; j++) {
            unsigned gen = s->steer.groups[li].v[j].gen;
            size_t q = 0;
            while (q < ne && exited[q] != gen)
                q++;
            if (q == ne && ne < OS_STEER_MAX && !procs_by_id(&s->procs, gen))
                exited[ne++] = gen;
        }
    for (size_t q = 0; q < ne; q++)
        steer_gen_exited(&s->steer, exited[q]);
}

json_t *supervisor_carry(struct supervisor *s, int output)
{
    json_t *ls = listeners_carried(s), *procs = json_array();
    for (size_t i = 0; i < s->procs.len; i++) {
        const struct proc *p = &s->procs.v[i];
        json_array_append_new(procs, json_pack("{s:i, s:i, s:f, s:I, s:s, s:b}", "id", (int)p->id,
                                               "pid", (int)p->pid, "started", p->started,
                                               "start_ticks", (json_int_t)p->start_ticks, "status",
                                               p->status, "adopted", p->adopted));
    }
    uv_os_fd_t control_fd = -1;
    if (s->control.open)
        uv_fileno((uv_handle_t *)&s->control.server, &control_fd);
    json_t *doc = json_pack(
        "{s:s, s:s, s:i, s:f, s:{s:s, s:s, s:f, s:i, s:f}, s:s, s:o, s:i, s:i, s:i, s:i, s:o, "
        "s:i, s:o, s:i, s:o, s:I, s:s}",
        "service", s->cfg.name, "file", s->file, "pid", (int)getpid(), "started", s->started,
        "image", "binary", s->image.binary, "version", BATON_VERSION, "started_at",
        s->image.started_at, "upgrades", (int)s->image.upgrades, "adopted_at", s->image.adopted_at,
        "manager_notify", s->manager.notify, "listeners", ls, "notify", s->notify.fd, "control",
        (int)control_fd, "stats", s->stats.fd, "metrics", s->metrics_listener.fd, "procs", procs,
        "last_id", (int)s->procs.last_id, "fdstore", handover_carry(&s->handover), "staged",
        s->handover.staged, "pipes", output_pipes_json(&s->output), "output_next",
        (json_int_t)s->output.next_seq, "notify_path", s->notify_path);
    if (doc)
        json_object_set_new(doc, "steer", steer_carried(&s->steer));
    if (doc && output) /* the copy on disk leaves it out: small, written often */
        json_object_set_new(doc, "output", output_json(&s->output, 0, 0, 0));
    return doc;
}

int supervisor_take_sockets(struct supervisor *s, const json_t *doc)
{
    char err[512];
    json_t *ls = json_object_get(doc, "listeners");
    for (size_t i = 0; i < s->cfg.nlisteners; i++) {
        struct listener *l = &s->cfg.listeners[i];
        json_t *c = json_array_get(ls, i);
        int fd = carried_int(c, "fd", -1);
        if (l->per_generation || l->steer)
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
    int r, fd = carried_int(doc, "stats", -1);
    if (fd < 0 || (r = stats_attach(&s->stats, fd)) < 0) {
        log_error("the carried stats region: %s", fd < 0 ? "none" : strerror(-r));
        return -1;
    }
    set_cloexec(fd);
    static const char *const sockets[] = { "metrics", "notify", "control" };
    for (size_t k = 0; k < 3; k++)
        set_cloexec(carried_int(doc, sockets[k], -1));
    const char *mn = json_string_value(json_object_get(doc, "manager_notify"));
    if (mn && !s->manager.notify[0])
        snprintf(s->manager.notify, sizeof s->manager.notify, "%s", mn);
    return 0;
}

/* The image's facts: an adoption is a new pid with its own start; an
 * upgrade counts one more image under the same pid; the old image taking
 * back over keeps its own start. */
static void take_image(struct supervisor *s, const json_t *doc, int adopting, const char *how)
{
    json_t *img = json_object_get(doc, "image");
    if (adopting) {
        s->image.adopted_at = clock_unix();
        return;
    }
    s->started = json_number_value(json_object_get(doc, "started"));
    s->image.upgrades = (unsigned)carried_int(img, "upgrades", 0);
    s->image.adopted_at = json_number_value(json_object_get(img, "adopted_at"));
    if (strcmp(how, "upgrade") == 0)
        s->image.upgrades++;
    else
        s->image.started_at = json_number_value(json_object_get(img, "started_at"));
}

/* The processes DOC names that are still there, and the same ones (their
 * start time: not another that got the pid), ours. Never trusted blindly. */
static void take_procs(struct supervisor *s, const json_t *doc, int adopting, unsigned *gone,
                       size_t maxgone, size_t *ngone)
{
    size_t i;
    json_t *e;
    s->procs.last_id = (unsigned)carried_int(doc, "last_id", 0);
    json_array_foreach(json_object_get(doc, "procs"), i, e) {
        unsigned id = (unsigned)carried_int(e, "id", 0);
        pid_t pid = (pid_t)carried_int(e, "pid", 0);
        unsigned long long ticks = (unsigned long long)json_integer_value(
            json_object_get(e, "start_ticks"));
        /* Ours: run by this user, or by the one the generations run as
         * (`user` in the service file). */
        struct os_proc_stat ps;
        int alive = id > 0 && pid > 1 && ticks != 0 && os_proc_stat(pid, &ps) == 0 &&
                    ps.start_ticks == ticks &&
                    (ps.uid == geteuid() || (s->cfg.set_uid && ps.uid == s->cfg.uid));
        struct proc *p = alive ? procs_add(&s->procs, id, pid,
                                           json_number_value(json_object_get(e, "started")))
                               : NULL;
        if (!p) {
            if (*ngone < maxgone)
                gone[(*ngone)++] = id;
            log_warn("generation %u (pid %d) is gone: it ended while no supervisor watched it", id,
                     (int)pid);
            continue;
        }
        p->start_ticks = ticks;
        snprintf(p->status, sizeof p->status, "%s",
                 json_string_value(json_object_get(e, "status")) ?: "");
        if (json_is_true(json_object_get(e, "adopted")) || adopting)
            supervisor_watch_adopted(s, p);
    }
}

uint64_t supervisor_take_state(struct supervisor *s, const json_t *doc, int adopting,
                               const char *how, unsigned *gone, size_t maxgone, size_t *ngone)
{
    size_t i;
    json_t *e;
    take_image(s, doc, adopting, how);
    int fd = carried_int(json_object_get(doc, "upgrade"), "client", -1);
    uint64_t client = fd >= 0 ? control_adopt_client(&s->control, fd) : 0;
    json_array_foreach(json_object_get(doc, "fdstore"), i, e)
        set_cloexec(carried_int(e, "fd", -1));
    int staged = carried_int(doc, "staged", -1);
    set_cloexec(staged);
    handover_restore(&s->handover, json_object_get(doc, "fdstore"), staged);
    output_restore(&s->output, json_object_get(doc, "output"));
    take_procs(s, doc, adopting, gone, maxgone, ngone);
    take_steer(s, doc);
    json_array_foreach(json_object_get(doc, "pipes"), i, e) {
        int pfd = carried_int(e, "fd", -1);
        if (pfd < 0)
            continue;
        set_cloexec(pfd);
        output_attach(&s->output, (unsigned)carried_int(e, "generation", 0),
                      carried_int(e, "stream", 2), pfd);
    }
    return client;
}
