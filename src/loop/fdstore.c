/* fdstore.c: the fd store (see fdstore.h). */
#include "loop/fdstore.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void fdstore_init(struct fdstore *st, uv_loop_t *loop, size_t max, const char *state_name)
{
    memset(st, 0, sizeof *st);
    st->loop = loop;
    st->max = max;
    snprintf(st->state_name, sizeof st->state_name, "%s", state_name ? state_name : "state");
}

int fdstore_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > FDSTORE_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (name[i] < 0x21 || name[i] > 0x7e || name[i] == ':')
            return 0;
    return 1;
}

static void on_poll_closed(uv_handle_t *h)
{
    free(h);
}

static void entry_free(struct fdstore_entry *e)
{
    if (e->poll) {
        uv_poll_stop(e->poll);
        uv_close((uv_handle_t *)e->poll, on_poll_closed);
    }
    close(e->fd);
    free(e);
}

static void remove_at(struct fdstore *st, size_t i)
{
    entry_free(st->v[i]);
    memmove(&st->v[i], &st->v[i + 1], (st->len - i - 1) * sizeof st->v[0]);
    st->len--;
}

/* The kernel said something about a stored fd. Only a hang-up or an error
 * drops it; anything else (urgent data) stops the polling, so a
 * level-triggered event cannot spin the loop. */
static void on_poll(uv_poll_t *p, int status, int events)
{
    (void)status;
    (void)events;
    struct fdstore_entry *e = p->data;
    struct fdstore *st = e->store;
    struct pollfd pfd = { .fd = e->fd, .events = 0 };
    if (poll(&pfd, 1, 0) < 0 || !(pfd.revents & (POLLHUP | POLLERR | POLLNVAL))) {
        uv_poll_stop(p);
        return;
    }
    for (size_t i = 0; i < st->len; i++) {
        if (st->v[i] != e)
            continue;
        char name[sizeof e->name];
        unsigned gen = e->generation;
        memcpy(name, e->name, sizeof name);
        remove_at(st, i);
        st->dropped++;
        if (st->on_drop)
            st->on_drop(st, name, gen);
        return;
    }
}

/* Polls E's fd for a hang-up. Regular files and memfds cannot be polled
 * (epoll says EPERM): they are kept as they are. */
static void watch_hangup(struct fdstore *st, struct fdstore_entry *e)
{
    uv_poll_t *p = malloc(sizeof *p);
    if (!p)
        return;
    if (uv_poll_init(st->loop, p, e->fd) < 0) {
        free(p);
        return;
    }
    p->data = e;
    /* EPOLLHUP and EPOLLERR are always reported; UV_PRIORITIZED is the
     * narrowest interest that registers the fd. */
    if (uv_poll_start(p, UV_PRIORITIZED, on_poll) < 0) {
        uv_close((uv_handle_t *)p, on_poll_closed);
        return;
    }
    e->poll = p;
}

int fdstore_add(struct fdstore *st, const char *name, const int *fds, size_t n, unsigned generation,
                int poll, double now, char *err, size_t errlen)
{
    if (!name)
        name = "stored";
    if (!fdstore_name_valid(name)) {
        snprintf(err, errlen, "FDNAME must be 1-%d printable characters without ':'",
                 FDSTORE_NAME_MAX);
        st->refused += n;
        return -EINVAL;
    }
    int is_state = strcmp(name, st->state_name) == 0;
    if (is_state && n != 1) {
        snprintf(err, errlen, "FDNAME=%s holds one fd (the state blob), %zu were sent", name, n);
        st->refused += n;
        return -EINVAL;
    }
    size_t replaced = is_state && fdstore_find(st, name) ? 1 : 0;
    if (st->len - replaced + n > st->max) {
        snprintf(err, errlen, "the fd store is full (%zu of %zu fds held; fdstore_max)", st->len,
                 st->max);
        st->refused += n;
        return -ENOSPC;
    }
    if (st->len + n > st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 16;
        while (cap < st->len + n)
            cap *= 2;
        void *v = realloc(st->v, cap * sizeof st->v[0]);
        if (!v) {
            snprintf(err, errlen, "out of memory");
            return -ENOMEM;
        }
        st->v = v;
        st->cap = cap;
    }
    struct fdstore_entry *added[n ? n : 1];
    for (size_t i = 0; i < n; i++) {
        added[i] = calloc(1, sizeof *added[i]);
        if (!added[i]) {
            while (i--)
                free(added[i]);
            snprintf(err, errlen, "out of memory");
            return -ENOMEM;
        }
    }
    if (replaced)
        fdstore_remove(st, name);
    for (size_t i = 0; i < n; i++) {
        struct fdstore_entry *e = added[i];
        snprintf(e->name, sizeof e->name, "%s", name);
        e->fd = fds[i];
        e->seq = ++st->next_seq;
        e->generation = generation;
        e->stored_at = now;
        e->store = st;
        /* The fds come from SCM_RIGHTS with MSG_CMSG_CLOEXEC; they stay so
         * until a spawn places them, like every fd of the supervisor. */
        st->v[st->len++] = e;
        if (poll)
            watch_hangup(st, e);
    }
    return 0;
}

size_t fdstore_remove(struct fdstore *st, const char *name)
{
    size_t removed = 0;
    for (size_t i = st->len; i-- > 0;) {
        if (strcmp(st->v[i]->name, name) == 0) {
            remove_at(st, i);
            removed++;
        }
    }
    return removed;
}

const struct fdstore_entry *fdstore_find(const struct fdstore *st, const char *name)
{
    for (size_t i = st->len; i-- > 0;)
        if (strcmp(st->v[i]->name, name) == 0)
            return st->v[i];
    return NULL;
}

void fdstore_free(struct fdstore *st)
{
    for (size_t i = 0; i < st->len; i++)
        entry_free(st->v[i]);
    free(st->v);
    st->v = NULL;
    st->len = st->cap = 0;
}
