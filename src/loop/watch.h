#ifndef BATON_WATCH_H
#define BATON_WATCH_H

/* Watching one file for changes, the way editors and deploy tools change
 * files: written in place, replaced by a rename, or reached through a
 * symlink that is swapped (a Kubernetes ConfigMap volume). The folder is
 * watched (a rename replaces the inode a file watch would follow); an event
 * on the file's name is a change, and after an event on another name the
 * file's identity tells, symlinks followed: its content for a regular file
 * of at most WATCH_HASH_MAX bytes, else its device, inode, size and mtime.
 * A burst of events within WATCH_SETTLE_MS is reported once, after it
 * settles. */

#include "loop/events.h"

#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include <uv.h>

#define WATCH_SETTLE_MS 200
#define WATCH_HASH_MAX (4 * 1024 * 1024)

struct file_watch;
typedef void (*file_watch_cb)(struct file_watch *w);

struct file_id {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    uint64_t hash; /* of the content, when HASHED */
    int hashed;
};

struct file_watch {
    uv_fs_event_t event;
    uv_timer_t settle;
    char *dir, *name, *path; /* owned */
    struct file_id last;     /* what PATH led to when last looked at */
    int named;               /* an event on its own name since then */
    file_watch_cb cb;
    file_watch_cb on_stopped; /* optional: once its handles are closed (to free W) */
    void *data;
    int open;
    int closing; /* handles still closing */
};

/* Returns 0, or a negative libuv error; when W->closing is then set, its
 * handles are closing and W stays in use until on_stopped is called. */
int file_watch_start(struct file_watch *w, uv_loop_t *loop, const char *path, file_watch_cb cb);
/* Stops watching; W's memory may go once on_stopped was called. */
void file_watch_stop(struct file_watch *w);

/* Watches by id, for the runtime: each change of a watched file reports
 * EV_WATCH with the watch's id to the sink. */
struct watch_entry;

struct watches {
    uv_loop_t *loop;
    const struct event_sink *sink;
    struct watch_entry *list; /* owned */
    uint64_t next_id;
};

void watches_init(struct watches *ws, uv_loop_t *loop, const struct event_sink *sink);
/* Returns 0 with *ID, or a negative libuv error. */
int watches_add(struct watches *ws, const char *path, uint64_t *id);
void watches_remove(struct watches *ws, uint64_t id);
void watches_close(struct watches *ws);

#endif
