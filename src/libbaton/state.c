/* The app side of state handover and the fd store (baton.h). */
#include "baton.h"
#include "state_blob.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *state_name(void)
{
    const char *n = getenv("BATON_STATE_NAME");
    return n && *n ? n : "state";
}

int baton_fd_store(const char *name, const int *fds, size_t n, int poll)
{
    char msg[512];
    int len = snprintf(msg, sizeof msg, "FDSTORE=1\nFDNAME=%s%s", name, poll ? "" : "\nFDPOLL=0");
    if (len < 0 || (size_t)len >= sizeof msg || strchr(name, '\n') || strchr(name, ':'))
        return -EINVAL;
    return baton_notify_fds(msg, fds, n);
}

int baton_fd_remove(const char *name)
{
    char msg[512];
    int len = snprintf(msg, sizeof msg, "FDSTOREREMOVE=1\nFDNAME=%s", name);
    if (len < 0 || (size_t)len >= sizeof msg || strchr(name, '\n'))
        return -EINVAL;
    return baton_notify(msg);
}

static int store_state(int fd)
{
    int r = baton_fd_store(state_name(), &fd, 1, 0);
    close(fd); /* the supervisor holds its own copy now */
    return r;
}

int baton_state_save(const void *buf, size_t len, uint32_t schema)
{
    const char *sock = getenv("NOTIFY_SOCKET");
    if (!sock || !*sock)
        return 0;
    int fd = state_blob_create(buf, len, schema, baton_generation());
    return fd < 0 ? fd : store_state(fd);
}

int baton_state_begin(size_t len, void **payload, int *token)
{
    return state_blob_begin(len, payload, token);
}

int baton_state_commit(int token, void *payload, size_t len, uint32_t schema)
{
    int r = state_blob_seal(token, payload, len, schema, baton_generation());
    if (r < 0)
        return r;
    const char *sock = getenv("NOTIFY_SOCKET");
    if (!sock || !*sock) {
        close(token);
        return 0;
    }
    return store_state(token);
}

int baton_state_load(struct baton_state *st)
{
    memset(st, 0, sizeof *st);
    int fd;
    if (baton_fds(state_name(), &fd, 1) != 1)
        return -ENOENT;
    struct state_blob b;
    char err[256];
    int r = state_blob_open(fd, UINT64_MAX, STATE_BLOB_VERIFY | STATE_BLOB_POPULATE, &b, err,
                            sizeof err);
    if (r < 0)
        return r;
    *st = (struct baton_state){ .data = b.data,
                                .len = (size_t)b.length,
                                .schema = b.schema,
                                .generation = b.generation,
                                .map_ = b.map,
                                .map_len_ = b.map_len };
    return 0;
}

void baton_state_release(struct baton_state *st)
{
    struct state_blob b = { .map = st->map_, .map_len = st->map_len_ };
    state_blob_close(&b);
    memset(st, 0, sizeof *st);
}
