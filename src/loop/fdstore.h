#ifndef BATON_FDSTORE_H
#define BATON_FDSTORE_H

/* The fd store: file descriptors a generation hands to the next ones,
 * systemd's FDSTORE=1 protocol (systemd.io/FILE_DESCRIPTOR_STORE).
 *
 * A generation sends "FDSTORE=1\nFDNAME=name" over NOTIFY_SOCKET with fds
 * attached; the store keeps its own duplicates (the sender may close its
 * copies, or die: what was stored stays), and every generation started
 * afterwards receives them after its listeners, in LISTEN_FDS, named in
 * LISTEN_FDNAMES, in the order they were stored. "FDSTOREREMOVE=1" with
 * FDNAME= removes every fd of that name.
 *
 * One name is special, the state name ("state" unless the service file
 * says otherwise): it holds one fd, a state blob, and a newer one replaces
 * it (the newest state wins). Other names accumulate, as in systemd.
 *
 * A stored socket or pipe is polled: once it reports POLLHUP or POLLERR (a
 * client closed a stored connection) it is dropped, unless it was stored
 * with FDPOLL=0. Regular files and memfds cannot be polled and are kept. */

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define FDSTORE_NAME_MAX 255 /* systemd's limit for FDNAME= */

struct fdstore;

struct fdstore_entry {
    char name[FDSTORE_NAME_MAX + 1];
    int fd;              /* owned */
    uint64_t seq;        /* 1, 2, ...: tells a replaced entry from its successor */
    unsigned generation; /* that stored it */
    double stored_at;    /* monotonic seconds */
    uv_poll_t *poll;     /* NULL when not polled */
    struct fdstore *store;
};

struct fdstore {
    uv_loop_t *loop;
    struct fdstore_entry **v; /* owned; pointers stay put while polled */
    size_t len, cap;
    size_t max; /* fds the store may hold */
    uint64_t next_seq;
    char state_name[FDSTORE_NAME_MAX + 1];
    unsigned long dropped; /* polled fds dropped after a hang-up */
    unsigned long refused; /* fds refused: store full, bad name */
    /* Called after a polled fd was dropped; may be NULL. */
    void (*on_drop)(struct fdstore *st, const char *name, unsigned generation);
    void *data;
};

void fdstore_init(struct fdstore *st, uv_loop_t *loop, size_t max, const char *state_name);

/* A name systemd would accept: 1-255 printable ASCII characters, no ':'. */
int fdstore_name_valid(const char *name);

/* Stores FDS under NAME (NULL: "stored", systemd's default) for GENERATION.
 * On success the store owns the fds; on failure they stay the caller's and
 * the reason is in ERR: -EINVAL (bad name; more than one fd for the state
 * name), -ENOSPC (the store would hold more than its max). */
int fdstore_add(struct fdstore *st, const char *name, const int *fds, size_t n, unsigned generation,
                int poll, double now, char *err, size_t errlen);

/* Removes (and closes) every fd named NAME. Returns how many. */
size_t fdstore_remove(struct fdstore *st, const char *name);

/* The newest entry named NAME, or NULL. */
const struct fdstore_entry *fdstore_find(const struct fdstore *st, const char *name);

/* Closes everything. Poll handles close through the loop: run it once more. */
void fdstore_free(struct fdstore *st);

#endif
