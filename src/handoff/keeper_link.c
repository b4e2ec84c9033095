/* keeper_link.c: the supervisor's side of the keeper and the carry file
 * (see keeper_link.h). */
#include "handoff/keeper_link.h"

#include "base/log.h"
#include "handoff/carry.h"
#include "handoff/keeper.h"
#include "loop/procs.h"
#include "os/os.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* A keeper is replaced at once after a death, unless the one that died
 * lived under KEEPER_MIN_LIFE_MS or could not be started: then after a
 * pause, doubled each time up to KEEPER_MAX_PAUSE_MS, so a keeper that
 * cannot stay up is not restarted in a tight loop. Until one runs, a
 * death of the supervisor is not survivable, and the log says so. */
#define KEEPER_MIN_LIFE_MS 1000
#define KEEPER_MAX_PAUSE_MS 30000

/* Sends to the keeper never wait (the channel is non-blocking): what the
 * channel does not take now waits in a queue, in order, each fd a
 * duplicate of ours (the original may close meanwhile), sent again from a
 * timer every KEEPER_RETRY_MS. A keeper that takes nothing queued for
 * KEEPER_STUCK_MS (stopped, hung), or lets the queue reach its bound, is
 * stuck: it is killed, and once reaped another one starts with every
 * piece (keeper_link_reaped). */
#define KEEPER_RETRY_MS 10
#define KEEPER_STUCK_MS 5000
#define KEEPER_QUEUE_MIN 256

struct keeper_msg {
    char head[32];
    int fd; /* ours, a duplicate; -1: none */
};

static uint64_t now_ms(struct keeper_link *k);
static void confirm_predecessor(struct keeper_link *k);

static void queue_clear(struct keeper_link *k)
{
    for (size_t i = 0; i < k->nqueue; i++)
        if (k->queue[i].fd >= 0)
            close(k->queue[i].fd);
    k->nqueue = 0;
    if (k->retry.data)
        uv_timer_stop(&k->retry);
}

/* The keeper is no keeper any more (it missed a piece, or is stuck): it
 * goes, and once reaped another one starts. */
static void drop_keeper(struct keeper_link *k, const char *why)
{
    log_warn("the keeper (pid %d) %s: replacing it; until another one holds everything, a "
             "supervisor that dies cannot be taken over",
             (int)k->pid, why);
    if (k->fd >= 0)
        close(k->fd);
    k->fd = -1;
    queue_clear(k);
    /* SIGKILL: a stopped keeper does not act on SIGTERM. */
    if (k->pid > 0)
        kill(k->pid, SIGKILL);
}

/* Sends what waits, in order, as far as the channel takes it. Returns 0,
 * or a negative errno when the keeper is dropped. */
static int flush(struct keeper_link *k)
{
    size_t sent = 0;
    int r = 0;
    while (sent < k->nqueue &&
           (r = keeper_send(k->fd, k->queue[sent].head, k->queue[sent].fd)) == 0) {
        if (k->queue[sent].fd >= 0)
            close(k->queue[sent].fd);
        sent++;
    }
    if (sent) {
        memmove(k->queue, k->queue + sent, (k->nqueue - sent) * sizeof *k->queue);
        k->nqueue -= sent;
        k->progress = now_ms(k);
    }
    if (r < 0 && r != -EAGAIN) {
        char why[160];
        snprintf(why, sizeof why, "could not be sent a piece: %s", strerror(-r));
        drop_keeper(k, why);
        return r;
    }
    if (k->nqueue && now_ms(k) - k->progress >= KEEPER_STUCK_MS) {
        char why[160];
        snprintf(why, sizeof why, "took nothing for %d s (%zu piece(s) waiting): it is stuck",
                 KEEPER_STUCK_MS / 1000, k->nqueue);
        drop_keeper(k, why);
        return -ETIMEDOUT;
    }
    return 0;
}

static void on_retry(uv_timer_t *t)
{
    struct keeper_link *k = t->data;
    if (k->fd >= 0 && flush(k) == 0 && k->nqueue)
        uv_timer_start(&k->retry, on_retry, KEEPER_RETRY_MS, 0);
    confirm_predecessor(k);
}

static void keep(struct keeper_link *k, const char *head, int fd)
{
    if (k->fd < 0)
        return;
    if (!k->nqueue) {
        int r = keeper_send(k->fd, head, fd);
        if (r == 0)
            return;
        if (r != -EAGAIN) {
            char why[160];
            snprintf(why, sizeof why, "could not be sent a piece: %s", strerror(-r));
            drop_keeper(k, why);
            return;
        }
        k->progress = now_ms(k);
    }
    if (k->nqueue == KEEPER_QUEUE_MIN + 2 * k->cfg->nlisteners) {
        drop_keeper(k, "let its queue fill: it is stuck");
        return;
    }
    if (k->nqueue == k->capqueue) {
        size_t ncap = k->capqueue ? k->capqueue * 2 : 64;
        struct keeper_msg *q = realloc(k->queue, ncap * sizeof *q);
        if (!q) {
            drop_keeper(k, "could not be sent a piece: out of memory");
            return;
        }
        k->queue = q;
        k->capqueue = ncap;
    }
    int copy = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
    if (fd >= 0 && copy < 0) {
        char why[160];
        snprintf(why, sizeof why, "could not be sent a piece: %s", strerror(errno));
        drop_keeper(k, why);
        return;
    }
    struct keeper_msg *m = &k->queue[k->nqueue++];
    snprintf(m->head, sizeof m->head, "%s", head);
    m->fd = copy;
    if (k->nqueue == 1)
        uv_timer_start(&k->retry, on_retry, KEEPER_RETRY_MS, 0);
}

static void keep_pipe(void *ctx, unsigned gen, int stream, int fd)
{
    char head[32];
    snprintf(head, sizeof head, "P %u %d", gen, stream);
    keep(ctx, head, fd);
}

/* A steered member joined (FD) or left (FD -1): the keeper holds it as long
 * as the group does, no longer (a member leaves its group when we shut it
 * down, whoever holds it: os_steer_leave; the copy would be a socket
 * that no longer listens, taken back by a successor). The order and the
 * weights go in the file (carried.c). */
static void keep_member(void *ctx, size_t li, unsigned gen, int fd)
{
    struct keeper_link *k = ctx;
    char head[32];
    snprintf(head, sizeof head, "%sR %zu %u", fd >= 0 ? "" : "X ", li, gen);
    keep(k, head, fd);
    k->dirty = 1;
}

/* Tells the keeper of each generation's main process it was not told of
 * yet (ALL: every one running), so that once orphaned it knows when the
 * last one is gone. */
static void keep_generations(struct keeper_link *k, int all)
{
    unsigned newest = k->gen_sent;
    for (size_t i = 0; k->procs && i < k->procs->len; i++) {
        const struct proc *p = &k->procs->v[i];
        if (!all && p->id <= k->gen_sent)
            continue;
        char head[64];
        snprintf(head, sizeof head, "G %u %d %llu", p->id, (int)p->pid, p->start_ticks);
        keep(k, head, -1);
        if (p->id > newest)
            newest = p->id;
    }
    k->gen_sent = newest;
}

/* The events that came since the last turn, appended to the events file
 * (carry.h): each costs its line. Once the file holds twice the events a
 * successor takes back, it is written afresh with those alone. */
static void write_events(struct keeper_link *k)
{
    json_t *r = k->events_since ? k->events_since(k->ctx, k->events_seq) : NULL;
    json_t *evs = json_object_get(r, "events");
    unsigned long long first = (unsigned long long)json_integer_value(json_object_get(r, "first"));
    unsigned long long total = (unsigned long long)json_integer_value(json_object_get(r, "total"));
    size_t n = json_is_array(evs) ? json_array_size(evs) : 0;
    if (n == 0 && k->events_fd >= 0) {
        json_decref(r);
        return;
    }
    int fresh = k->events_fd < 0 || k->events_lines + n > 2 * CARRY_EVENTS;
    if (fresh && k->events_seq > 0 && total > CARRY_EVENTS) {
        json_decref(r); /* only the newest, written afresh */
        r = k->events_since(k->ctx, total - CARRY_EVENTS);
        evs = json_object_get(r, "events");
        first = (unsigned long long)json_integer_value(json_object_get(r, "first"));
        n = json_is_array(evs) ? json_array_size(evs) : 0;
    }
    int err = 0;
    if (fresh) {
        if (k->events_fd >= 0)
            close(k->events_fd);
        k->events_fd = carry_events_open(k->events_path, 1);
        k->events_lines = 0;
        err = k->events_fd < 0 ? k->events_fd : 0;
    }
    if (err == 0 && n > 0)
        err = carry_events_append(k->events_fd, evs, first);
    if (err < 0) {
        log_warn("%s: %s", k->events_path, strerror(-err));
        if (k->events_fd >= 0)
            close(k->events_fd);
        k->events_fd = -1; /* written afresh at the next event */
    } else {
        k->events_lines += n;
        k->events_seq = total;
    }
    json_decref(r);
}

/* Once per turn of the loop after an event: what a successor would read
 * after a death (carry.h), written only when it changed; the events
 * appended. */
static void on_check(uv_check_t *h)
{
    struct keeper_link *k = h->data;
    if (!k->dirty || k->stopped)
        return;
    k->dirty = 0;
    keep_generations(k, 0);
    /* The document first: the events it came with are the ones to append. */
    json_t *doc = k->collect(k->ctx);
    write_events(k);
    if (!doc)
        return;
    json_object_set_new(doc, "start_ticks", json_integer((json_int_t)k->start_ticks));
    json_object_set_new(doc, "keeper",
                        json_pack("{s:i, s:s}", "pid", (int)k->pid, "path", k->path));
    json_object_set_new(doc, "events_file", json_string(k->events_path));
    /* The listeners, the bulk of it with many, change only with a reload:
     * their text is kept while the document holds the same object. */
    json_t *ls = json_incref(json_object_get(doc, "listeners"));
    json_object_del(doc, "listeners");
    if (ls != k->listeners) {
        free(k->listeners_text);
        json_decref(k->listeners);
        k->listeners = json_incref(ls);
        k->listeners_text = ls ? json_dumps(ls, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    }
    json_decref(ls);
    char *head = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS), *text = head;
    if (head && k->listeners_text && strlen(head) > 2) { /* {...} then ,"listeners":[...]} */
        size_t hl = strlen(head), ll = strlen(k->listeners_text);
        text = malloc(hl + ll + 16);
        if (text)
            snprintf(text, hl + ll + 16, "%.*s,\"listeners\":%s}", (int)(hl - 1), head,
                     k->listeners_text);
        free(head);
    }
    if (text && (!k->last || strcmp(text, k->last) != 0)) {
        int r = carry_write_file(k->carry_path, text);
        if (r < 0)
            log_warn("%s: %s", k->carry_path, strerror(-r));
        free(k->last);
        k->last = text;
        text = NULL;
    }
    free(text);
    json_decref(doc);
}

static uint64_t now_ms(struct keeper_link *k)
{
    uv_update_time(k->loop); /* the loop's clock may be stale: set-up waits */
    return uv_now(k->loop);
}

static void on_timer(uv_timer_t *t);

static void start_later(struct keeper_link *k, const char *what)
{
    k->pause = k->pause ? k->pause * 2 : KEEPER_MIN_LIFE_MS;
    if (k->pause > KEEPER_MAX_PAUSE_MS)
        k->pause = KEEPER_MAX_PAUSE_MS;
    log_warn("%s: another keeper in %llu ms; until then a supervisor that dies cannot be "
             "taken over",
             what, (unsigned long long)k->pause);
    uv_timer_start(&k->timer, on_timer, k->pause, 0);
}

/* Starts a keeper and hands it what it holds: the listeners, the stats
 * region and every pipe read now (a keeper started after a death of the
 * one before gets the pipes of generations already running). */
static void start_keeper(struct keeper_link *k)
{
    k->fd = keeper_spawn(OS_EXE_RUNNING, k->path, &k->pid);
    if (k->fd < 0) {
        char what[128];
        snprintf(what, sizeof what, "cannot start the keeper: %s", strerror(-k->fd));
        k->pid = 0;
        start_later(k, what);
        return;
    }
    k->started = now_ms(k);
    fcntl(k->fd, F_SETFL, fcntl(k->fd, F_GETFL) | O_NONBLOCK); /* keep() never waits */
    for (size_t i = 0; i < k->cfg->nlisteners; i++) {
        char head[32];
        snprintf(head, sizeof head, "L %zu", i);
        if (k->cfg->listeners[i].fd >= 0)
            keep(k, head, k->cfg->listeners[i].fd);
    }
    keep(k, "S", k->stats->fd);
    json_t *pipes = output_pipes_json(k->output);
    size_t i;
    json_t *p;
    json_array_foreach(pipes, i, p) {
        keep_pipe(k, (unsigned)carry_int(p, "generation", 0), carry_int(p, "stream", 2),
                  carry_int(p, "fd", -1));
    }
    json_decref(pipes);
    for (size_t li = 0; k->steer && li < k->steer->ngroups; li++)
        for (size_t j = 0; j < k->steer->groups[li].n; j++)
            keep_member(k, li, k->steer->groups[li].v[j].gen, k->steer->groups[li].v[j].fd);
    keep_generations(k, 1);
    k->dirty = 1; /* the file names the keeper */
    log_debug("keeper pid %d holds the listeners and the stats region", (int)k->pid);
    confirm_predecessor(k);
}

/* Once ours holds everything (nothing waits to be sent to it), the keeper
 * of the supervisor before may let go. */
static void confirm_predecessor(struct keeper_link *k)
{
    if (k->fd >= 0 && k->predecessor >= 0 && k->nqueue == 0) {
        /* Ours holds everything: the keeper of the supervisor before may
         * let go. */
        int r = keeper_confirm(k->predecessor);
        k->predecessor = -1;
        if (r < 0)
            log_warn("the keeper of the supervisor before this one gave up on us first (%s): "
                     "it still holds the service's fds",
                     strerror(-r));
        else
            log_info("the keeper of the supervisor before this one lets go: ours (pid %d) holds "
                     "the service",
                     (int)k->pid);
    }
}

static void on_timer(uv_timer_t *t)
{
    struct keeper_link *k = t->data;
    if (!k->stopped && k->pid == 0)
        start_keeper(k);
}

int keeper_link_reaped(void *ctx, pid_t pid, int status)
{
    struct keeper_link *k = ctx;
    if (pid != k->pid || pid <= 0)
        return 0;
    /* The keeper exited while we run (someone killed it; it never exits
     * on its own while we live). */
    char how[64];
    if (WIFSIGNALED(status))
        snprintf(how, sizeof how, "killed by signal %d", WTERMSIG(status));
    else
        snprintf(how, sizeof how, "exit code %d", WEXITSTATUS(status));
    if (k->fd >= 0)
        close(k->fd);
    k->fd = -1;
    k->pid = 0;
    k->dirty = 1;
    queue_clear(k);
    if (k->stopped)
        return 1;
    uint64_t lived = now_ms(k) - k->started;
    if (lived >= KEEPER_MIN_LIFE_MS) {
        k->pause = 0;
        log_warn("the keeper (pid %d) exited (%s): starting another", (int)pid, how);
        start_keeper(k);
        return 1;
    }
    char what[160];
    snprintf(what, sizeof what, "the keeper (pid %d) exited (%s) %llu ms after its start", (int)pid,
             how, (unsigned long long)lived);
    start_later(k, what);
    return 1;
}

void keeper_link_start(struct keeper_link *k, const char *rundir, const json_t *carried)
{
    carry_paths(rundir, k->cfg->name, k->cfg->control, k->carry_path, sizeof k->carry_path, k->path,
                sizeof k->path);
    carry_events_path(k->carry_path, k->events_path, sizeof k->events_path);
    k->events_fd = -1; /* written afresh: this runtime's history holds what was carried */
    k->events_seq = 0;
    k->start_ticks = proc_start_ticks(getpid());
    uv_timer_init(k->loop, &k->timer);
    k->timer.data = k;
    uv_timer_init(k->loop, &k->retry);
    k->retry.data = k;
    k->fd = carry_int(carried, "fd", -1);
    if (k->fd >= 0) { /* the same keeper, across the upgrade */
        k->pid = carry_int(carried, "pid", 0);
        k->started = 0; /* started long enough ago */
        fcntl(k->fd, F_SETFD, FD_CLOEXEC);
        fcntl(k->fd, F_SETFL, fcntl(k->fd, F_GETFL) | O_NONBLOCK);
    } else {
        /* From the loop: not while a new image takes over, when a crash
         * would go back to the old image and leave this keeper behind. */
        uv_timer_start(&k->timer, on_timer, 0, 0);
    }
    k->output->on_attach = keep_pipe;
    k->output->ctx = k;
    if (k->steer) {
        k->steer->on_member = keep_member;
        k->steer->ctx = k;
    }
    uv_check_init(k->loop, &k->check);
    k->check.data = k;
    uv_check_start(&k->check, on_check);
    k->dirty = 1;
}

json_t *keeper_link_carry(struct keeper_link *k)
{
    /* What waits to be sent would be lost with this image: a keeper that
     * would miss it goes, and the new image starts another. */
    if (k->fd >= 0 && k->nqueue && flush(k) == 0 && k->nqueue)
        drop_keeper(k, "has pieces waiting as the image is replaced");
    return k->fd >= 0 ? json_pack("{s:i, s:i}", "fd", k->fd, "pid", (int)k->pid) : NULL;
}

void keeper_link_changed(void *ctx)
{
    struct keeper_link *k = ctx;
    k->dirty = 1;
}

void keeper_link_stop(void *ctx)
{
    struct keeper_link *k = ctx;
    if (k->stopped)
        return;
    k->stopped = 1;
    /* A normal end: the keeper goes, and nothing is left to take over. */
    keep(k, "B", -1);
    if (k->nqueue && k->pid > 0) /* it would not hear the goodbye */
        kill(k->pid, SIGKILL);
    queue_clear(k);
    if (k->check.data)
        uv_close((uv_handle_t *)&k->check, NULL);
    if (k->timer.data)
        uv_close((uv_handle_t *)&k->timer, NULL);
    if (k->retry.data)
        uv_close((uv_handle_t *)&k->retry, NULL);
    if (k->carry_path[0])
        unlink(k->carry_path);
    if (k->events_path[0])
        unlink(k->events_path);
}

void keeper_link_status(void *ctx, json_t *image)
{
    struct keeper_link *k = ctx;
    if (k->pid > 0)
        json_object_set_new(image, "keeper", json_integer(k->pid));
}

void keeper_link_close(struct keeper_link *k)
{
    queue_clear(k);
    free(k->queue);
    k->queue = NULL;
    k->capqueue = 0;
    /* Never confirmed: that keeper holds on for the next `baton run`. */
    if (k->predecessor >= 0)
        close(k->predecessor);
    k->predecessor = -1;
    if (k->fd >= 0)
        close(k->fd);
    k->fd = -1;
    free(k->last);
    k->last = NULL;
    free(k->listeners_text);
    k->listeners_text = NULL;
    json_decref(k->listeners);
    k->listeners = NULL;
    if (k->events_fd >= 0)
        close(k->events_fd);
    k->events_fd = -1;
}
