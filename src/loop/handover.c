/* handover.c: the fd store and the state blob, between generations
 * (see handover.h). */
#include "loop/handover.h"

#include "base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void on_dropped(struct fdstore *st, const char *name, unsigned generation)
{
    (void)st;
    log_info("fd store: an fd '%s' stored by generation %u hung up: dropped", name, generation);
}

void handover_init(struct handover *h, uv_loop_t *loop, size_t fdstore_max, const char *state_name,
                   uint64_t max_size)
{
    memset(h, 0, sizeof *h);
    h->loop = loop;
    fdstore_init(&h->store, loop, fdstore_max, state_name);
    h->store.on_drop = on_dropped;
    h->store.data = h;
    h->staged = -1;
    h->max_size = max_size;
}

void handover_free(struct handover *h)
{
    h->closed = 1; /* a check still running finishes, unheard */
    fdstore_free(&h->store);
    if (h->staged >= 0)
        close(h->staged);
    h->staged = -1;
}

void handover_configure(struct handover *h, size_t fdstore_max, uint64_t max_size)
{
    h->store.max = fdstore_max;
    h->max_size = max_size;
}

/* The checksum of a state blob is verified on libuv's thread pool: a 1 GiB
 * blob takes a quarter of a second, which the event loop (the control
 * socket, the notify socket, every timer) must not wait for. */
struct check_work {
    uv_work_t req;
    struct handover *h;
    int fd; /* a dup: the store may replace its own meanwhile */
    uint64_t seq, max, t0;
    unsigned stored_by;
    char name[FDSTORE_NAME_MAX + 1];
    struct state_check verdict; /* rc, err, schema, length, generation */
};

/* Verifies the blob in FD, checksum included, into C's rc, err, schema,
 * length and generation. */
static void verify_into(int fd, uint64_t max, struct state_check *c)
{
    struct state_blob b;
    c->rc = state_blob_open(fd, max, STATE_BLOB_VERIFY, &b, c->err, sizeof c->err);
    if (c->rc == 0) {
        c->schema = b.schema;
        c->length = b.length;
        c->generation = b.generation;
        state_blob_close(&b);
    }
}

/* WHERE: ", off the event loop" when the thread pool checked it. */
static void log_verdict(const struct state_check *c, unsigned stored_by, uint64_t t0,
                        const char *where)
{
    if (c->rc == 0)
        log_info("fd store: generation %u stored its state: %llu bytes, schema %u (checked in "
                 "%.1f ms%s)",
                 stored_by, (unsigned long long)c->length, c->schema,
                 (double)(uv_hrtime() - t0) / 1e6, where);
    else
        log_error("fd store: generation %u stored a bad state blob: %s; a restart will refuse it",
                  stored_by, c->err);
}

static void verify_work(uv_work_t *req)
{
    struct check_work *w = req->data;
    verify_into(w->fd, w->max, &w->verdict);
}

static void verify_done(uv_work_t *req, int status)
{
    struct check_work *w = req->data;
    struct handover *h = w->h;
    struct state_check *c = &h->check;
    close(w->fd);
    if (status == 0 && c->seq == w->seq && c->rc == -EINPROGRESS) {
        uint64_t seq = c->seq;
        double stored_at = c->stored_at;
        *c = w->verdict;
        c->seq = seq;
        c->stored_at = stored_at;
        log_verdict(c, w->stored_by, w->t0, ", off the event loop");
        if (h->on_checked && !h->closed)
            h->on_checked(h, w->stored_by, w->name);
    }
    free(w);
}

/* Checks the state blob ENTRY when it arrives and keeps the verdict. What
 * needs no reading of the payload (seals, header, the size against
 * state.max_size, from the header and fstat) is checked here; the
 * checksum on the thread pool. Returns 0 when the verdict is known now,
 * 1 when it comes later (through on_checked). */
static int check_state(struct handover *h, const struct fdstore_entry *e)
{
    struct state_check *c = &h->check;
    struct state_blob b;
    uint64_t t0 = uv_hrtime();
    c->seq = e->seq;
    c->stored_at = e->stored_at;
    c->rc = state_blob_open(e->fd, h->max_size, 0, &b, c->err, sizeof c->err);
    if (c->rc == -E2BIG) {
        static const char prefix[] = "over state.max_size: ";
        size_t n = strnlen(c->err, sizeof c->err - sizeof prefix);
        memmove(c->err + sizeof prefix - 1, c->err, n);
        memcpy(c->err, prefix, sizeof prefix - 1);
        c->err[sizeof prefix - 1 + n] = '\0';
    }
    if (c->rc < 0) {
        log_verdict(c, e->generation, t0, "");
        return 0;
    }
    state_blob_close(&b);
    struct check_work *w = calloc(1, sizeof *w);
    int fd = w ? fcntl(e->fd, F_DUPFD_CLOEXEC, 3) : -1;
    if (fd >= 0) {
        *w = (struct check_work){ .h = h,
                                  .fd = fd,
                                  .seq = e->seq,
                                  .max = h->max_size,
                                  .t0 = t0,
                                  .stored_by = e->generation };
        snprintf(w->name, sizeof w->name, "%s", e->name);
        w->req.data = w;
        if (uv_queue_work(h->loop, &w->req, verify_work, verify_done) == 0) {
            c->rc = -EINPROGRESS;
            snprintf(c->err, sizeof c->err, "still being checked");
            return 1;
        }
        close(fd);
    }
    free(w);
    /* No thread for it: check it here, late rather than never. */
    verify_into(e->fd, h->max_size, c);
    log_verdict(c, e->generation, t0, "");
    return 0;
}

const char *handover_notify(struct handover *h, unsigned id, const struct notify_msg *m, int *fds,
                            size_t nfds, double now)
{
    char err[512];
    if (m->fdstoreremove && m->fdname) {
        size_t n = fdstore_remove(&h->store, m->fdname);
        log_debug("fd store: generation %u removed %zu fd(s) named '%s'", id, n, m->fdname);
    }
    if (!m->fdstore) {
        if (nfds > 0)
            log_warn("notify: generation %u sent %zu fd(s) without FDSTORE=1: closed", id, nfds);
        for (size_t i = 0; i < nfds; i++)
            close(fds[i]);
        return NULL;
    }
    if (nfds == 0)
        return NULL;
    int r = fdstore_add(&h->store, m->fdname, fds, nfds, id, m->fdpoll, now, err, sizeof err);
    if (r < 0) {
        log_error("fd store: generation %u: %zu fd(s) refused: %s", id, nfds, err);
        for (size_t i = 0; i < nfds; i++)
            close(fds[i]);
        return NULL;
    }
    const char *name = m->fdname ? m->fdname : "stored";
    if (strcmp(name, h->store.state_name) == 0) {
        if (check_state(h, fdstore_find(&h->store, name)))
            return NULL; /* stored; said so once it is checked (on_checked) */
    } else
        log_debug("fd store: generation %u stored %zu fd(s) as '%s'", id, nfds, name);
    return name;
}

static int append_name(char **names, size_t *len, const char *name)
{
    size_t add = strlen(name) + 1;
    char *n = realloc(*names, *len + add + 1);
    if (!n)
        return -ENOMEM;
    if (*len)
        n[(*len)++] = ':';
    memcpy(n + *len, name, add);
    *len += add - 1;
    *names = n;
    return 0;
}

int handover_fds(struct handover *h, enum spawn_state mode, int **fds, size_t *n, char **names,
                 char *err, size_t errlen)
{
    struct fdstore *st = &h->store;
    size_t len = 0, k = 0;
    *fds = calloc(st->len + 1, sizeof **fds);
    *names = calloc(1, 1);
    *n = 0;
    if (!*fds || !*names)
        goto nomem;
    if (mode == SPAWN_STATE_STAGED && h->staged < 0) {
        snprintf(err, errlen, "no staged state blob to pass");
        free(*fds);
        free(*names);
        return -EINVAL;
    }
    for (size_t i = 0; i < st->len; i++) {
        const struct fdstore_entry *e = st->v[i];
        int fd = e->fd;
        if (strcmp(e->name, st->state_name) == 0) {
            if (mode == SPAWN_STATE_NONE)
                continue;
            if (mode == SPAWN_STATE_STAGED)
                fd = h->staged;
        }
        (*fds)[k++] = fd;
        if (append_name(names, &len, e->name) < 0)
            goto nomem;
    }
    /* A migrated blob with nothing stored under the name (removed meanwhile). */
    if (mode == SPAWN_STATE_STAGED && !fdstore_find(st, st->state_name)) {
        (*fds)[k++] = h->staged;
        if (append_name(names, &len, st->state_name) < 0)
            goto nomem;
    }
    *n = k;
    return 0;
nomem:
    free(*fds);
    free(*names);
    snprintf(err, errlen, "out of memory");
    return -ENOMEM;
}

void handover_spawned(struct handover *h, enum spawn_state mode)
{
    if (mode == SPAWN_STATE_STAGED && h->staged >= 0) {
        close(h->staged);
        h->staged = -1;
    }
}

int handover_state_info(struct handover *h, struct state_info *info, char *err, size_t errlen)
{
    const struct fdstore_entry *e = fdstore_find(&h->store, h->store.state_name);
    if (!e)
        return -ENOENT;
    struct state_check *c = &h->check;
    if (c->seq != e->seq)
        check_state(h, e);
    if (c->rc == -EINPROGRESS) {
        snprintf(err, errlen, "the state blob stored by generation %u is still being checked",
                 e->generation);
        return c->rc;
    }
    if (c->rc < 0) {
        snprintf(err, errlen, "the state blob stored by generation %u: %s", e->generation, c->err);
        return c->rc;
    }
    if (c->length > h->max_size) {
        snprintf(err, errlen,
                 "the state blob stored by generation %u holds %llu bytes, over "
                 "state.max_size (%llu)",
                 e->generation, (unsigned long long)c->length, (unsigned long long)h->max_size);
        return -E2BIG;
    }
    *info = (struct state_info){ .schema = c->schema,
                                 .generation = e->generation,
                                 .length = c->length,
                                 .stored_at = c->stored_at };
    return 0;
}

int handover_state_map(struct handover *h, struct state_blob *b, char *err, size_t errlen)
{
    struct state_info info;
    int r = handover_state_info(h, &info, err, errlen);
    if (r == -ENOENT)
        snprintf(err, errlen, "no state blob is stored");
    if (r < 0)
        return r;
    /* Checked when it arrived, and sealed since. */
    return state_blob_open(fdstore_find(&h->store, h->store.state_name)->fd, h->max_size,
                           STATE_BLOB_POPULATE, b, err, errlen);
}

int handover_state_stage(struct handover *h, const void *data, size_t len, uint32_t schema,
                         char *err, size_t errlen)
{
    if (len > h->max_size) {
        snprintf(err, errlen, "the migrated state holds %zu bytes, over state.max_size (%llu)", len,
                 (unsigned long long)h->max_size);
        return -E2BIG;
    }
    int fd = state_blob_create(data, len, schema, 0);
    if (fd < 0) {
        snprintf(err, errlen, "cannot write the migrated state: %s", strerror(-fd));
        return fd;
    }
    if (h->staged >= 0)
        close(h->staged);
    h->staged = fd;
    return 0;
}

json_t *handover_status(struct handover *h, double now)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < h->store.len; i++) {
        const struct fdstore_entry *e = h->store.v[i];
        json_t *j = json_pack("{s:s, s:i, s:f, s:b}", "name", e->name, "generation",
                              (int)e->generation, "age", now - e->stored_at, "polled",
                              e->poll != NULL);
        if (j && strcmp(e->name, h->store.state_name) == 0 && h->check.seq == e->seq) {
            const struct state_check *c = &h->check;
            if (c->rc == -EINPROGRESS) {
                json_object_set_new(j, "checking", json_true());
            } else if (c->rc == 0) {
                json_object_set_new(j, "schema", json_integer(c->schema));
                json_object_set_new(j, "bytes", json_integer((json_int_t)c->length));
            } else {
                json_object_set_new(j, "error", json_string(c->err));
            }
        }
        json_array_append_new(a, j);
    }
    return a;
}

json_t *handover_carry(const struct handover *h)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < h->store.len; i++) {
        const struct fdstore_entry *e = h->store.v[i];
        json_array_append_new(a, json_pack("{s:s, s:i, s:i, s:f, s:b}", "name", e->name, "fd",
                                           e->fd, "generation", (int)e->generation, "stored_at",
                                           e->stored_at, "poll", e->poll != NULL));
    }
    return a;
}

void handover_restore(struct handover *h, const json_t *entries, int staged)
{
    size_t i;
    json_t *e;
    char err[256];
    json_array_foreach(entries, i, e) {
        const char *name = json_string_value(json_object_get(e, "name"));
        int fd = (int)json_integer_value(json_object_get(e, "fd"));
        if (!name || fd < 3)
            continue;
        unsigned gen = (unsigned)json_integer_value(json_object_get(e, "generation"));
        double at = json_number_value(json_object_get(e, "stored_at"));
        if (fdstore_add(&h->store, name, &fd, 1, gen, json_is_true(json_object_get(e, "poll")), at,
                        err, sizeof err) < 0) {
            log_warn("fd store: '%s' of generation %u not carried over: %s", name, gen, err);
            close(fd);
            continue;
        }
        if (strcmp(name, h->store.state_name) == 0)
            check_state(h, fdstore_find(&h->store, name)); /* checked again: trust nothing */
    }
    h->staged = staged;
}
