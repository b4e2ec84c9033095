#include "loop/notify.h"

#include "base/fdpass.h"
#include "base/nofile.h"
#include "base/unixpath.h"

#include "base/log.h"
#include "os/os.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -EINVAL;
    *out = v;
    return 0;
}

int notify_parse(char *text, struct notify_msg *m)
{
    memset(m, 0, sizeof *m);
    m->fdpoll = 1;
    char *line = text;
    while (line && *line) {
        char *next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        char *eq = strchr(line, '=');
        if (!eq)
            return -EINVAL;
        *eq = '\0';
        const char *k = line, *v = eq + 1;
        long n;
        if (strcmp(k, "READY") == 0)
            m->ready = strcmp(v, "1") == 0;
        else if (strcmp(k, "STOPPING") == 0)
            m->stopping = strcmp(v, "1") == 0;
        else if (strcmp(k, "RELOADING") == 0)
            m->reloading = strcmp(v, "1") == 0;
        else if (strcmp(k, "FDSTORE") == 0)
            m->fdstore = strcmp(v, "1") == 0;
        else if (strcmp(k, "FDSTOREREMOVE") == 0)
            m->fdstoreremove = strcmp(v, "1") == 0;
        else if (strcmp(k, "STATUS") == 0)
            m->status = v;
        else if (strcmp(k, "FDNAME") == 0)
            m->fdname = v;
        else if (strcmp(k, "FDPOLL") == 0)
            m->fdpoll = strcmp(v, "0") != 0;
        else if (strcmp(k, "MAINPID") == 0) {
            if (parse_int(v, 1, INT32_MAX, &n) < 0)
                return -EINVAL;
            m->mainpid = (pid_t)n;
        } else if (strcmp(k, "ERRNO") == 0) {
            if (parse_int(v, 0, 4095, &n) < 0)
                return -EINVAL;
            m->err = (int)n;
        }
        line = next;
    }
    return 0;
}

static void close_fds(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        close(fds[i]);
}

/* Reads one datagram. Returns 1 when one was handled (or dropped), 0 when
 * the socket is empty, negative errno on a socket error. */
static int receive_one(struct notify *n)
{
    char buf[NOTIFY_MAX + 1];
    union {
        struct cmsghdr align;
        char buf[OS_CRED_CMSG_ROOM + CMSG_SPACE(sizeof(int) * NOTIFY_MAX_FDS)];
    } control;
    struct iovec iov = { .iov_base = buf, .iov_len = NOTIFY_MAX };
    struct msghdr mh = { .msg_iov = &iov,
                         .msg_iovlen = 1,
                         .msg_control = control.buf,
                         .msg_controllen = sizeof control.buf };

    ssize_t len = recvmsg(n->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC);
    if (len < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : (errno == EINTR ? 1 : -errno);

    uid_t uid = 0;
    pid_t pid = 0;
    int cred = os_cred_read(&mh, &uid, &pid) == 0;
    int fds[NOTIFY_MAX_FDS];
    size_t nfds = fdpass_take(&mh, fds, NOTIFY_MAX_FDS);

    const char *why = NULL;
    if (!cred)
        why = "no sender credentials";
    else if (uid != geteuid() && uid != 0 && !(n->app_uid_set && uid == n->app_uid))
        why = "sender is another user";
    else if (mh.msg_flags & MSG_CTRUNC)
        why = "control data truncated";
    else if ((size_t)len > NOTIFY_MAX)
        why = "datagram too long";
    // cppcheck-suppress uninitvar ; recvmsg filled LEN bytes (cppcheck loses it past fdpass_take)
    else if (memchr(buf, '\0', (size_t)len))
        why = "datagram contains a NUL byte";

    struct notify_msg m;
    if (!why) {
        buf[len] = '\0';
        if (notify_parse(buf, &m) < 0)
            why = "malformed KEY=VALUE line";
    }
    if (why) {
        char fds_open[80] = "";
        if (mh.msg_flags & MSG_CTRUNC) /* the fds it carried did not fit: often RLIMIT_NOFILE */
            nofile_describe(fds_open, sizeof fds_open);
        n->rejected++;
        log_warn("notify: dropped a datagram from pid %d: %s%s%s%s", (int)pid, why,
                 *fds_open ? " (the supervisor: " : "", fds_open, *fds_open ? ")" : "");
        close_fds(fds, nfds);
        return 1;
    }
    n->cb(n, pid, &m, fds, nfds);
    return 1;
}

static void receive_some(struct notify *n, int max)
{
    for (int i = 0; i < max; i++) {
        int r = receive_one(n);
        if (r == 0)
            break;
        if (r < 0) {
            log_error("notify: recvmsg: %s", strerror(-r));
            break;
        }
    }
}

static void on_readable(uv_poll_t *h, int status, int events)
{
    struct notify *n = h->data;
    (void)events;
    if (status < 0) {
        log_error("notify: poll: %s", uv_strerror(status));
        return;
    }
    /* Bounded, so a flood of datagrams cannot starve the rest of the loop. */
    receive_some(n, 64);
}

void notify_drain(struct notify *n)
{
    if (n->fd >= 0)
        receive_some(n, NOTIFY_DRAIN_MAX);
}

int notify_open(struct notify *n, uv_loop_t *loop, const char *path, notify_cb cb)
{
    return notify_open_fd(n, loop, path, -1, cb);
}

int notify_open_fd(struct notify *n, uv_loop_t *loop, const char *path, int fd, notify_cb cb)
{
    struct sockaddr_un un = { .sun_family = AF_UNIX };
    int r;

    if (strlen(path) >= sizeof un.sun_path)
        return -ENAMETOOLONG;
    strcpy(un.sun_path, path);
    strcpy(n->path, path);
    n->cb = cb;
    n->rejected = 0;
    n->app_uid_set = 0;
    n->dir[0] = '\0';
    if (fd >= 0) { /* bound by the supervisor before: carried on (carry.h) */
        n->fd = fd;
        goto poll;
    }

    /* The path is ours (pid in its name, in our private folder), but the
     * same rule holds: only a stale socket of ours is removed. */
    if ((r = unixpath_claim(path)) < 0)
        return r;
    n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (n->fd < 0)
        return -errno;
    /* Created 0600 from the start: no window where another user could send. */
    mode_t old = umask(0177);
    r = bind(n->fd, (struct sockaddr *)&un, sizeof un) < 0 ? -errno : 0;
    umask(old);
    if (r == 0)
        r = os_cred_enable(n->fd);
    if (r < 0) {
        close(n->fd);
        return r;
    }
    /* Room for bursts: many processes may say READY=1 at once. */
    int rcvbuf = 1 << 20;
    setsockopt(n->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);

poll:
    if ((r = uv_poll_init(loop, &n->poll, n->fd)) < 0 ||
        (r = uv_poll_start(&n->poll, UV_READABLE, on_readable)) < 0) {
        close(n->fd);
        unlink(path);
        return r;
    }
    n->poll.data = n;
    return 0;
}

void notify_close(struct notify *n)
{
    if (n->fd < 0)
        return;
    uv_poll_stop(&n->poll);
    uv_close((uv_handle_t *)&n->poll, NULL);
    close(n->fd);
    n->fd = -1;
    unlink(n->path);
    if (n->dir[0])
        rmdir(n->dir);
}

int notify_private_dir(char *out, size_t len, const char *parent, uid_t uid, gid_t gid)
{
    char tmpl[PATH_MAX];
    const char *slash = strrchr(parent, '/');
    int n = slash && slash != parent ? snprintf(tmpl, sizeof tmpl, "%.*s/baton-notify-XXXXXX",
                                                (int)(slash - parent), parent)
                                     : snprintf(tmpl, sizeof tmpl, "/tmp/baton-notify-XXXXXX");
    if (n < 0 || (size_t)n >= sizeof tmpl || (size_t)n >= len)
        return -ENAMETOOLONG;
    if (!mkdtemp(tmpl)) /* mode 0700, a name nobody could have made first */
        return -errno;
    if (chown(tmpl, uid, gid) < 0) {
        int e = -errno;
        rmdir(tmpl);
        return e;
    }
    snprintf(out, len, "%s", tmpl);
    return 0;
}

void notify_forget_private(const char *path)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return;
    *slash = '\0';
    /* Opened without following a link, the socket removed relative to the
     * folder opened: a folder swapped for a link meanwhile is not entered.
     * rmdir then refuses a link (ENOTDIR) or a folder with anything in it. */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return;
    if (unlinkat(dfd, slash + 1, 0) < 0 && errno != ENOENT)
        log_warn("notify socket %s: cannot remove it: %s", path, strerror(errno));
    close(dfd);
    if (rmdir(dir) < 0 && errno != ENOENT)
        log_warn("notify folder %s: cannot remove it: %s", dir, strerror(errno));
}

int notify_allow(struct notify *n, uid_t uid, gid_t gid, const char *dir)
{
    n->app_uid_set = 1;
    n->app_uid = uid;
    if (dir)
        snprintf(n->dir, sizeof n->dir, "%s", dir);
    if (chown(n->path, uid, gid) < 0 || chmod(n->path, 0600) < 0)
        return -errno;
    return 0;
}
