/* steer.c: steered listeners' groups, members and weights (see steer.h). */
#include "loop/steer.h"

#include "base/clock.h"
#include "base/log.h"
#include "os/reuseport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int steer_init(struct steer *s, uv_loop_t *loop, struct listener *ls, size_t nlisteners)
{
    memset(s, 0, sizeof *s);
    s->loop = loop;
    s->ls = ls;
    s->groups = calloc(nlisteners ? nlisteners : 1, sizeof *s->groups);
    if (!s->groups)
        return -ENOMEM;
    s->ngroups = nlisteners;
    s->migrate = os_tcp_migrate_req();
    return 0;
}

void steer_close(struct steer *s)
{
    for (size_t i = 0; i < s->ngroups; i++) {
        for (size_t j = 0; j < s->groups[i].n; j++)
            close(s->groups[i].v[j].fd);
        free(s->groups[i].v);
        s->ls[i].steer_fd = -1;
    }
    free(s->groups);
    s->groups = NULL;
    s->ngroups = 0;
    free(s->w);
    s->w = NULL;
    s->nw = 0;
}

void steer_stop(struct steer *s)
{
    if (s->timer_on && !uv_is_closing((uv_handle_t *)&s->leave))
        uv_close((uv_handle_t *)&s->leave, NULL);
    s->timer_on = -1; /* never again */
}

static struct steer_weight *weight_of(const struct steer *s, unsigned gen)
{
    for (size_t i = 0; i < s->nw; i++)
        if (s->w[i].gen == gen)
            return &s->w[i];
    return NULL;
}

int steer_weight(const struct steer *s, unsigned gen)
{
    const struct steer_weight *w = weight_of(s, gen);
    return w ? (int)w->weight : -1;
}

unsigned steer_queued(const struct steer *s, unsigned gen)
{
    unsigned sum = 0;
    for (size_t i = 0; i < s->ngroups; i++)
        for (size_t j = 0; j < s->groups[i].n; j++) {
            unsigned q = 1;
            if (s->groups[i].v[j].gen == gen && os_listen_queue(s->groups[i].v[j].fd, &q) == 0)
                sum += q;
            else if (s->groups[i].v[j].gen == gen)
                sum += 1;
        }
    return sum;
}

/* Attaches group G's program: each member's share is its generation's
 * weight. */
static int attach(struct steer *s, struct steer_group *g)
{
    if (g->n == 0)
        return 0;
    unsigned weights[OS_STEER_MAX] = { 0 }, total = 0;
    size_t n = g->n < OS_STEER_MAX ? g->n : OS_STEER_MAX;
    for (size_t i = 0; i < n; i++) {
        const struct steer_weight *w = weight_of(s, g->v[i].gen);
        weights[i] = w ? w->weight : 0;
        total += weights[i];
    }
    int r = os_steer_attach(g->v[n - 1].fd, weights, n);
    if (r == 0) /* all 0 is an even split: every member may be chosen */
        for (size_t i = 0; i < n; i++)
            g->v[i].routed = total ? weights[i] : 1;
    return r;
}

static int attach_all(struct steer *s)
{
    int r = 0;
    for (size_t i = 0; i < s->ngroups; i++) {
        int e = attach(s, &s->groups[i]);
        if (e < 0 && r == 0)
            r = e;
    }
    return r;
}

/* Forgets GEN's weight once it has no member left. */
static void drop_weight_if_gone(struct steer *s, unsigned gen)
{
    for (size_t i = 0; i < s->ngroups; i++)
        for (size_t j = 0; j < s->groups[i].n; j++)
            if (s->groups[i].v[j].gen == gen)
                return;
    for (size_t i = 0; i < s->nw; i++)
        if (s->w[i].gen == gen) {
            s->w[i] = s->w[--s->nw];
            return;
        }
}

static int leave_due(struct steer *s, double now);

int steer_join(struct steer *s, size_t li, unsigned gen, int *fd, char *err, size_t errlen)
{
    struct listener *l = &s->ls[li];
    struct steer_group *g = &s->groups[li];
    if (g->n >= OS_STEER_MAX) {
        snprintf(err, errlen, "listener '%s': %d generations already hold a member", l->name,
                 OS_STEER_MAX);
        return -EMFILE;
    }
    if (g->n == g->cap) {
        size_t cap = g->cap ? 2 * g->cap : 4;
        struct steer_member *v = realloc(g->v, cap * sizeof *v);
        if (!v)
            goto nomem;
        g->v = v;
        g->cap = cap;
    }
    struct steer_weight *w = weight_of(s, gen);
    if (!w) {
        struct steer_weight *nw = realloc(s->w, (s->nw + 1) * sizeof *nw);
        if (!nw)
            goto nomem;
        s->w = nw;
        int served = 0;
        for (size_t i = 0; i < s->nw; i++)
            served |= s->w[i].weight > 0;
        w = &s->w[s->nw++];
        *w = (struct steer_weight){ .gen = gen,
                                    .weight = served ? 0 : 100,
                                    .zero_since = clock_mono() };
    }
    int r = os_steer_member(&l->addr, l->addrlen, l->backlog);
    if (r < 0) {
        drop_weight_if_gone(s, gen);
        snprintf(err, errlen, "listener '%s' (%s): a steered member: %s", l->name, l->address,
                 strerror(-r));
        return r;
    }
    /* Port 0: the first member's port is the group's. */
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(r, (struct sockaddr *)&ss, &sl) == 0 && sl <= sizeof l->addr) {
        memcpy(&l->addr, &ss, sl);
        l->addrlen = sl;
    }
    g->v[g->n++] = (struct steer_member){ .gen = gen, .fd = r };
    l->steer_fd = r;
    *fd = r;
    if (s->on_member)
        s->on_member(s->ctx, li, gen, r);
    /* Last and with no share yet: members waiting to leave may now. */
    leave_due(s, clock_mono());
    int a = attach(s, g);
    if (a < 0)
        log_warn("listener '%s': steering program: %s (new connections split by hash)", l->name,
                 strerror(-a));
    return 0;
nomem:
    snprintf(err, errlen, "listener '%s': out of memory", l->name);
    return -ENOMEM;
}

int steer_set_weight(struct steer *s, unsigned gen, unsigned weight)
{
    struct steer_weight *w = weight_of(s, gen);
    if (!w)
        return -ENOENT;
    if (weight == 0 && w->weight > 0)
        w->zero_since = clock_mono();
    w->weight = weight > 100 ? 100 : weight;
    return attach_all(s);
}

int steer_restore(struct steer *s, size_t li, unsigned gen, int fd, unsigned weight,
                  double zero_since)
{
    if (li >= s->ngroups)
        return -EINVAL;
    struct steer_group *g = &s->groups[li];
    if (g->n >= OS_STEER_MAX)
        return -EMFILE;
    if (g->n == g->cap) {
        size_t cap = g->cap ? 2 * g->cap : 4;
        struct steer_member *v = realloc(g->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        g->v = v;
        g->cap = cap;
    }
    if (!weight_of(s, gen)) {
        struct steer_weight *nw = realloc(s->w, (s->nw + 1) * sizeof *nw);
        if (!nw)
            return -ENOMEM;
        s->w = nw;
        s->w[s->nw++] = (struct steer_weight){ .gen = gen,
                                               .weight = weight > 100 ? 100 : weight,
                                               .zero_since = zero_since > 0 ? zero_since
                                                                            : clock_mono() };
    }
    /* A port-0 listener's port is the group's: the next member binds it. */
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0 && sl <= sizeof s->ls[li].addr) {
        memcpy(&s->ls[li].addr, &ss, sl);
        s->ls[li].addrlen = sl;
    }
    g->v[g->n++] = (struct steer_member){ .gen = gen, .fd = fd };
    s->ls[li].steer_fd = fd;
    if (s->on_member)
        s->on_member(s->ctx, li, gen, fd);
    return 0;
}

int steer_restored(struct steer *s)
{
    return attach_all(s);
}

/* Whether member J of G may close now: the program attached never picks
 * it nor the last member, which the kernel moves into its slot (steer.h). */
static int close_is_safe(const struct steer_group *g, size_t j)
{
    return g->v[j].routed == 0 && g->v[g->n - 1].routed == 0;
}

/* Closes member J of group G as the kernel sees it: the last member moves
 * into its slot. */
static void member_close(struct steer *s, struct steer_group *g, size_t j)
{
    if (s->on_member)
        s->on_member(s->ctx, (size_t)(g - s->groups), g->v[j].gen, -1);
    /* Out of the group now: the keeper's copy closes only when it reads
     * its message, and a member joining meanwhile would take another slot
     * than the one the programs attached from now on expect. */
    os_steer_leave(g->v[j].fd);
    g->v[j] = g->v[--g->n];
}

/* Closes the leaving members whose time has come; 1 while any is left. */
static int leave_due(struct steer *s, double now)
{
    int waiting = 0, changed = 0;
    for (size_t i = 0; i < s->ngroups; i++) {
        struct steer_group *g = &s->groups[i];
        for (size_t j = 0; j < g->n;) {
            struct steer_member *m = &g->v[j];
            unsigned queue = 0;
            int have = os_listen_queue(m->fd, &queue) == 0;
            /* Handshakes chosen before its weight went to 0 had the grace
             * to end (a quiet drain set it long before the exit). */
            const struct steer_weight *w = weight_of(s, m->gen);
            double waited = now - m->left_at;
            double zero = now - (w ? w->zero_since : m->left_at);
            int go = m->leaving && (s->migrate == 1 || waited >= STEER_LEAVE_MAX ||
                                    (zero >= STEER_GRACE && have && queue == 0));
            if (!go) {
                waiting |= m->leaving;
                j++;
                continue;
            }
            if (!close_is_safe(g, j)) { /* held until the next member joins */
                j++;
                continue;
            }
            if (queue && s->migrate != 1)
                log_warn("generation %u left its steered group with %u connections queued", m->gen,
                         queue);
            unsigned gen = m->gen;
            member_close(s, g, j);
            s->ls[i].steer_fd = g->n ? g->v[g->n - 1].fd : -1;
            drop_weight_if_gone(s, gen);
            changed = 1;
        }
    }
    if (changed)
        attach_all(s);
    return waiting;
}

static void on_leave_timer(uv_timer_t *t)
{
    struct steer *s = t->data;
    if (!leave_due(s, clock_mono()))
        uv_timer_stop(t);
}

void steer_gen_exited(struct steer *s, unsigned gen)
{
    struct steer_weight *w = weight_of(s, gen);
    if (!w)
        return;
    double now = clock_mono();
    for (size_t i = 0; i < s->ngroups; i++)
        for (size_t j = 0; j < s->groups[i].n; j++)
            if (s->groups[i].v[j].gen == gen && !s->groups[i].v[j].leaving) {
                s->groups[i].v[j].leaving = 1;
                s->groups[i].v[j].left_at = now;
            }
    /* No new connection for it, whatever the policy said. */
    if (w->weight > 0)
        w->zero_since = now;
    w->weight = 0;
    attach_all(s);
    if (!leave_due(s, now))
        return;
    if (s->timer_on < 0)
        return;
    if (!s->timer_on) {
        if (uv_timer_init(s->loop, &s->leave) < 0)
            return;
        s->leave.data = s;
        s->timer_on = 1;
        /* Leaving members never keep the loop alive on their own. */
        uv_unref((uv_handle_t *)&s->leave);
    }
    uv_timer_start(&s->leave, on_leave_timer, 100, 100);
}
